//! The AMQP headers the gateway writes on the messages it sends on (retries, copies passed
//! on, dead letters, replays, fence markers), and how they are read back.

use lapin::types::{AMQPValue, FieldArray, FieldTable};
use lapin::BasicProperties;

use crate::publisher::long_string;

/// Header: the number of the attempt this message is for (absent means 1).
pub const HEADER_ATTEMPT: &str = "x-aiguillage-attempt";
/// Header: the reasons of the failed attempts so far, oldest first.
pub const HEADER_ERRORS: &str = "x-aiguillage-errors";
/// Header on dead letters: why it is there.
pub const HEADER_REASON: &str = "x-aiguillage-reason";
/// Header on dead letters: `rejected` or `dead`.
pub const HEADER_STATUS: &str = "x-aiguillage-status";
/// Header on dead letters: the connector that gave up.
pub const HEADER_CONNECTOR: &str = "x-aiguillage-connector";
/// Header on dead letters and retries: the routing key the portal published with.
pub const HEADER_ROUTING_KEY: &str = "x-aiguillage-routing-key";
/// Header on dead letters: when it was dead-lettered (RFC 3339).
pub const HEADER_DEAD_AT: &str = "x-aiguillage-dead-at";
/// Header on a message replayed from the dead letters: when an operator replayed it (RFC 3339).
pub const HEADER_REPLAYED_AT: &str = "x-aiguillage-replayed-at";
/// Header of a fence marker: the token of the consuming session that put it in its queue
/// (see `fence.rs`).
pub const HEADER_FENCE: &str = "x-aiguillage-fence";
/// Header on a copy that a connector passed on to the connectors whose route takes it:
/// how many times it was passed on.
pub const HEADER_FORWARDS: &str = "x-aiguillage-forwards";
/// Header RabbitMQ sets on a message a quorum queue delivers again (its count of returns).
pub const HEADER_DELIVERY_COUNT: &str = "x-delivery-count";
/// Header RabbitMQ adds when it dead-letters a message itself (e.g. at the delivery limit).
pub const HEADER_X_DEATH: &str = "x-death";

/// How many error reasons travel with a message (the oldest are dropped).
pub const MAX_ERROR_HISTORY: usize = 20;

/// The routing key the portal published a message with (retries and replays travel
/// under another key and carry the original in a header).
pub fn original_routing_key(delivery: &lapin::message::Delivery) -> String {
    match delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(HEADER_ROUTING_KEY))
    {
        Some(AMQPValue::LongString(key)) => String::from_utf8_lossy(key.as_bytes()).into_owned(),
        _ => delivery.routing_key.to_string(),
    }
}

/// The attempt number a message carries (1 when it carries none).
pub fn attempt_of(headers: Option<&FieldTable>) -> u32 {
    let value = headers.and_then(|h| h.inner().get(HEADER_ATTEMPT));
    let attempt = match value {
        Some(AMQPValue::LongUInt(n)) => i64::from(*n),
        Some(AMQPValue::LongInt(n)) => i64::from(*n),
        Some(AMQPValue::LongLongInt(n)) => *n,
        Some(AMQPValue::ShortUInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortShortUInt(n)) => i64::from(*n),
        _ => 1,
    };
    u32::try_from(attempt.max(1)).unwrap_or(u32::MAX)
}

/// The error history a message carries.
pub fn errors_of(headers: Option<&FieldTable>) -> Vec<String> {
    match headers.and_then(|h| h.inner().get(HEADER_ERRORS)) {
        Some(AMQPValue::FieldArray(array)) => array
            .as_slice()
            .iter()
            .filter_map(|value| match value {
                AMQPValue::LongString(text) => {
                    Some(String::from_utf8_lossy(text.as_bytes()).into_owned())
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The headers of a message sent on: the original ones with `updates` applied.
pub fn headers_with(original: Option<&FieldTable>, updates: Vec<(&str, AMQPValue)>) -> FieldTable {
    let mut headers = original.cloned().unwrap_or_default();
    for (key, value) in updates {
        headers.insert(key.into(), value);
    }
    headers
}

/// The headers of a message without `keys` (absent keys are ignored).
pub fn headers_without(original: Option<&FieldTable>, keys: &[&str]) -> FieldTable {
    let mut headers = original.map(|h| h.inner().clone()).unwrap_or_default();
    headers.retain(|key, _| !keys.contains(&key.as_str()));
    FieldTable::from(headers)
}

/// The properties of a message sent on: the original ones (message id, content type,
/// timestamp…), persistent, with new headers; never an expiration (a dead letter must not
/// expire, a replayed démarche neither; a retry sets its own).
pub fn forwarded_properties(original: &BasicProperties, headers: FieldTable) -> BasicProperties {
    let mut properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(headers);
    if let Some(value) = original.content_type() {
        properties = properties.with_content_type(value.clone());
    }
    if let Some(value) = original.content_encoding() {
        properties = properties.with_content_encoding(value.clone());
    }
    if let Some(value) = original.message_id() {
        properties = properties.with_message_id(value.clone());
    }
    if let Some(value) = original.correlation_id() {
        properties = properties.with_correlation_id(value.clone());
    }
    if let Some(value) = original.timestamp() {
        properties = properties.with_timestamp(*value);
    }
    if let Some(value) = original.app_id() {
        properties = properties.with_app_id(value.clone());
    }
    if let Some(value) = original.kind() {
        properties = properties.with_type(value.clone());
    }
    properties
}

/// A text header (`None` when absent or not text).
pub fn header_text(headers: Option<&FieldTable>, key: &str) -> Option<String> {
    match headers.and_then(|h| h.inner().get(key)) {
        Some(AMQPValue::LongString(text)) => {
            Some(String::from_utf8_lossy(text.as_bytes()).into_owned())
        }
        Some(AMQPValue::ShortString(text)) => Some(text.as_str().to_owned()),
        _ => None,
    }
}

/// The error history as a header value, keeping the most recent reasons.
pub fn errors_value(mut errors: Vec<String>) -> AMQPValue {
    if errors.len() > MAX_ERROR_HISTORY {
        errors.drain(..errors.len() - MAX_ERROR_HISTORY);
    }
    let values: Vec<AMQPValue> = errors.iter().map(|e| long_string(e)).collect();
    AMQPValue::FieldArray(FieldArray::from(values))
}

/// The headers and properties of a message the gateway sends on (a retry, a copy passed on,
/// a dead letter, a replay, a fence marker put back): the original message's properties
/// (message id, content type, timestamp…), persistent, never expiring, with its headers
/// updated. One type, so that every republish carries the same layout.
#[derive(Debug, Clone, Default)]
pub struct Republish {
    headers: FieldTable,
}

impl Republish {
    /// Starts from the original message's headers (none when it had none).
    pub fn of(original: Option<&FieldTable>) -> Self {
        Self {
            headers: original.cloned().unwrap_or_default(),
        }
    }

    /// Sets `key` to `value`.
    #[must_use]
    pub fn set(mut self, key: &str, value: AMQPValue) -> Self {
        self.headers.insert(key.into(), value);
        self
    }

    /// Sets a text header.
    #[must_use]
    pub fn set_text(self, key: &str, value: &str) -> Self {
        self.set(key, long_string(value))
    }

    /// Sets the attempt number ([`HEADER_ATTEMPT`]).
    #[must_use]
    pub fn attempt(self, attempt: u32) -> Self {
        self.set(HEADER_ATTEMPT, AMQPValue::LongUInt(attempt))
    }

    /// Sets the error history ([`HEADER_ERRORS`]), keeping the most recent reasons.
    #[must_use]
    pub fn errors(self, errors: Vec<String>) -> Self {
        self.set(HEADER_ERRORS, errors_value(errors))
    }

    /// Removes `keys` (absent keys are ignored).
    #[must_use]
    pub fn remove(self, keys: &[&str]) -> Self {
        Self {
            headers: headers_without(Some(&self.headers), keys),
        }
    }

    /// The headers as written.
    pub fn headers(&self) -> &FieldTable {
        &self.headers
    }

    /// The properties to publish with (see [`forwarded_properties`]).
    pub fn properties(self, original: &BasicProperties) -> BasicProperties {
        forwarded_properties(original, self.headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_header_defaults_to_one() {
        assert_eq!(attempt_of(None), 1);
        let headers = headers_with(None, vec![(HEADER_ATTEMPT, AMQPValue::LongUInt(4))]);
        assert_eq!(attempt_of(Some(&headers)), 4);
        let headers = headers_with(None, vec![(HEADER_ATTEMPT, long_string("x"))]);
        assert_eq!(attempt_of(Some(&headers)), 1);
    }

    #[test]
    fn error_history_is_bounded_and_ordered() {
        let errors: Vec<String> = (0..30).map(|i| format!("e{i}")).collect();
        let headers = headers_with(None, vec![(HEADER_ERRORS, errors_value(errors))]);
        let read = errors_of(Some(&headers));
        assert_eq!(read.len(), MAX_ERROR_HISTORY);
        assert_eq!(read.first().map(String::as_str), Some("e10"));
        assert_eq!(read.last().map(String::as_str), Some("e29"));
    }
}
