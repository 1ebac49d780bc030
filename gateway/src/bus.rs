//! The bus: the RabbitMQ connection, the topology the gateway declares, publishing with
//! confirms, and the status events (all of it the bus contract of `docs/bus-contract.md`).

use std::collections::BTreeMap;
use std::time::Duration;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::config::{BusConfig, ConnectorInstance};
use crate::routing::Router;
use crate::store::Status;

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
const MAX_ERROR_HISTORY: usize = 20;

/// The bus failed; the gateway reconnects.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker refused an operation or the connection dropped.
    #[error("{context}: {source}")]
    Amqp {
        /// What the gateway was doing.
        context: String,
        /// The client's error.
        #[source]
        source: lapin::Error,
    },
    /// The broker did not confirm a publish.
    #[error("the broker did not confirm the message published to `{0}` (nack)")]
    Nacked(String),
    /// A mandatory publish found no queue.
    #[error("the message published to `{0}` was returned unroutable: the queue is missing")]
    Returned(String),
}

trait Context<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, BusError>;
}

impl<T> Context<T> for Result<T, lapin::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, BusError> {
        self.map_err(|source| BusError::Amqp {
            context: context(),
            source,
        })
    }
}

/// Connects to the broker.
///
/// # Errors
///
/// [`BusError`] when the broker cannot be reached or refuses the credentials.
pub async fn connect(bus: &BusConfig, name: &str) -> Result<Connection, BusError> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(bus.url.expose_secret(), properties)
        .await
        .context(|| format!("cannot connect to the broker at {}", bus.redacted_url()))
}

/// Declares what the gateway needs, idempotently: the démarches exchange with its
/// alternate exchange and unrouted queue, the status exchange, and for each connector its
/// quorum queue (bound by its routes), its retry tiers and its dead-letter queue.
///
/// # Errors
///
/// [`BusError`] when the broker refuses a declaration, e.g. a queue that exists with other
/// arguments (`PRECONDITION_FAILED`).
pub async fn declare_topology(
    channel: &Channel,
    bus: &BusConfig,
    connectors: &[ConnectorInstance],
    router: &Router,
) -> Result<(), BusError> {
    declare_demarches_exchange(channel, bus).await?;
    declare_status_exchange(channel, bus).await?;

    for instance in connectors {
        let name = &instance.name;
        let queue = bus.connector_queue(name);
        let dead = bus.dead_queue(name);
        declare_quorum_queue(channel, &dead, FieldTable::default()).await?;

        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongUInt(bus.delivery_limit),
        );
        // A message that crashes the gateway again and again ends in the dead letters
        // (RabbitMQ's own dead-lettering, at-least-once), not in a loop.
        arguments.insert("x-dead-letter-exchange".into(), long_string(""));
        arguments.insert("x-dead-letter-routing-key".into(), long_string(&dead));
        arguments.insert(
            "x-dead-letter-strategy".into(),
            long_string("at-least-once"),
        );
        arguments.insert("x-overflow".into(), long_string("reject-publish"));
        declare_quorum_queue(channel, &queue, arguments).await?;

        for delay in instance.retry.tiers() {
            let mut arguments = FieldTable::default();
            let ttl = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
            arguments.insert("x-message-ttl".into(), AMQPValue::LongUInt(ttl));
            arguments.insert("x-dead-letter-exchange".into(), long_string(""));
            arguments.insert("x-dead-letter-routing-key".into(), long_string(&queue));
            arguments.insert(
                "x-dead-letter-strategy".into(),
                long_string("at-least-once"),
            );
            arguments.insert("x-overflow".into(), long_string("reject-publish"));
            declare_quorum_queue(channel, &bus.retry_queue(name, delay), arguments).await?;
        }

        for key in router.binding_keys(name) {
            channel
                .queue_bind(
                    queue.as_str().into(),
                    bus.exchange.as_str().into(),
                    key.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .context(|| format!("cannot bind `{queue}` to `{}` with `{key}`", bus.exchange))?;
        }
    }
    Ok(())
}

/// The queues the gateway declares for a connector: its queue, its dead letters, its retry
/// queues.
pub fn connector_queues(
    bus: &BusConfig,
    name: &str,
    retry: &crate::config::RetryPolicy,
) -> Vec<String> {
    let mut queues = vec![bus.connector_queue(name), bus.dead_queue(name)];
    queues.extend(
        retry
            .tiers()
            .into_iter()
            .map(|delay| bus.retry_queue(name, delay)),
    );
    queues
}

/// Deletes every queue and exchange of a deployment (for the demo and the tests, which
/// create their own; never for a real deployment).
pub async fn delete_topology(channel: &Channel, bus: &BusConfig, queues: &[String]) {
    for queue in queues.iter().chain(std::iter::once(&bus.unrouted_queue())) {
        let _ = channel
            .queue_delete(
                queue.as_str().into(),
                lapin::options::QueueDeleteOptions::default(),
            )
            .await;
    }
    for exchange in [
        bus.exchange.clone(),
        bus.unrouted_exchange(),
        bus.status_exchange.clone(),
    ] {
        let _ = channel
            .exchange_delete(
                exchange.as_str().into(),
                lapin::options::ExchangeDeleteOptions::default(),
            )
            .await;
    }
}

/// Declares the status exchange (topic, durable).
///
/// # Errors
///
/// [`BusError`] when the broker refuses the declaration.
pub async fn declare_status_exchange(channel: &Channel, bus: &BusConfig) -> Result<(), BusError> {
    channel
        .exchange_declare(
            bus.status_exchange.as_str().into(),
            ExchangeKind::Topic,
            durable_exchange(),
            FieldTable::default(),
        )
        .await
        .context(|| format!("cannot declare the exchange `{}`", bus.status_exchange))
}

/// Follows every status event from now on, on a private queue that disappears with the
/// channel (for the demo and the tests; an operator's subscriber binds its own queue).
///
/// # Errors
///
/// [`BusError`] when the broker refuses a declaration.
pub async fn watch_status_events(
    channel: &Channel,
    bus: &BusConfig,
    tag: &str,
) -> Result<lapin::Consumer, BusError> {
    declare_status_exchange(channel, bus).await?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .context(|| "cannot declare a queue for status events".into())?;
    channel
        .queue_bind(
            queue.name().clone(),
            bus.status_exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .context(|| format!("cannot bind to `{}`", bus.status_exchange))?;
    channel
        .basic_consume(
            queue.name().clone(),
            short(tag),
            lapin::options::BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .context(|| "cannot consume status events".into())
}

/// Removes a binding of `queue` on `exchange`.
///
/// # Errors
///
/// [`BusError`] when the broker refuses.
pub async fn unbind(
    channel: &Channel,
    exchange: &str,
    queue: &str,
    routing_key: &str,
) -> Result<(), BusError> {
    channel
        .queue_unbind(
            queue.into(),
            exchange.into(),
            short(routing_key),
            FieldTable::default(),
        )
        .await
        .context(|| format!("cannot unbind `{queue}` from `{exchange}` (`{routing_key}`)"))
}

/// Declares the `demarches` exchange exactly as the contract says (everyone who declares
/// it must use the same arguments), with its alternate exchange and unrouted queue.
///
/// # Errors
///
/// [`BusError`] when the broker refuses a declaration.
pub async fn declare_demarches_exchange(
    channel: &Channel,
    bus: &BusConfig,
) -> Result<(), BusError> {
    let unrouted_exchange = bus.unrouted_exchange();
    let unrouted_queue = bus.unrouted_queue();
    channel
        .exchange_declare(
            unrouted_exchange.as_str().into(),
            ExchangeKind::Fanout,
            durable_exchange(),
            FieldTable::default(),
        )
        .await
        .context(|| format!("cannot declare the exchange `{unrouted_exchange}`"))?;
    declare_quorum_queue(channel, &unrouted_queue, FieldTable::default()).await?;
    channel
        .queue_bind(
            unrouted_queue.as_str().into(),
            unrouted_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .context(|| format!("cannot bind `{unrouted_queue}` to `{unrouted_exchange}`"))?;
    let mut arguments = FieldTable::default();
    arguments.insert("alternate-exchange".into(), long_string(&unrouted_exchange));
    channel
        .exchange_declare(
            bus.exchange.as_str().into(),
            ExchangeKind::Topic,
            durable_exchange(),
            arguments,
        )
        .await
        .context(|| format!("cannot declare the exchange `{}`", bus.exchange))
}

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

pub(crate) async fn declare_quorum_queue(
    channel: &Channel,
    name: &str,
    mut arguments: FieldTable,
) -> Result<(), BusError> {
    arguments.insert("x-queue-type".into(), long_string("quorum"));
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await
        .map(|_| ())
        .context(|| format!("cannot declare the queue `{name}` (if it exists with other arguments, delete it or align the configuration)"))
}

/// Messages in a queue, read with a passive declare (no management plugin needed).
///
/// # Errors
///
/// [`BusError`] when the queue does not exist (the broker closes the channel).
pub async fn queue_depth(channel: &Channel, name: &str) -> Result<u32, BusError> {
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map(|queue| queue.message_count())
        .context(|| format!("cannot inspect the queue `{name}`"))
}

/// A channel in confirm mode: every publish waits for the broker's confirm.
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
}

impl Publisher {
    /// Opens a confirm-mode channel on `connection`.
    ///
    /// # Errors
    ///
    /// [`BusError`] when the channel cannot be opened.
    pub async fn open(connection: &Connection) -> Result<Self, BusError> {
        let channel = connection
            .create_channel()
            .await
            .context(|| "cannot open a publishing channel".into())?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .context(|| "cannot enable publisher confirms".into())?;
        Ok(Self { channel })
    }

    /// The underlying channel (for declarations).
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Publishes and waits for the broker's confirm. With `mandatory`, a message that
    /// reaches no queue is an error.
    ///
    /// # Errors
    ///
    /// [`BusError`] when the broker nacks, returns the message or the channel fails.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
        mandatory: bool,
    ) -> Result<(), BusError> {
        let routing_key =
            ShortString::try_new(routing_key).map_err(|_| BusError::Returned(exchange.into()))?;
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key,
                BasicPublishOptions {
                    mandatory,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await
            .context(|| format!("cannot publish to `{exchange}`"))?
            .await
            .context(|| format!("no confirm for the message published to `{exchange}`"))?;
        if confirm.is_nack() {
            return Err(BusError::Nacked(exchange.into()));
        }
        if confirm.take_message().is_some() {
            return Err(BusError::Returned(if exchange.is_empty() {
                "the default exchange".into()
            } else {
                exchange.into()
            }));
        }
        Ok(())
    }
}

/// A status event (bus contract): what happened to a démarche with a connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusEvent {
    /// The envelope id.
    pub id: String,
    /// INSEE code of the commune.
    pub commune: String,
    /// Form slug.
    pub form: String,
    /// Connector name.
    pub connector: String,
    /// `delivered`, `retrying`, `rejected` or `dead`.
    pub status: &'static str,
    /// The target's reference, when delivered and it gave one.
    pub reference: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// The failure's reason, for every status but `delivered`.
    pub error: Option<String>,
    /// What the connector reported beyond the reference (`Receipt::details`), on
    /// `delivered` only; left out of the body when empty, so that events of connectors
    /// that report none keep the contract's exact shape.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
    /// When (RFC 3339, UTC, milliseconds).
    pub at: String,
}

impl StatusEvent {
    /// A new event, dated now.
    pub fn new(
        id: &str,
        commune: &str,
        form: &str,
        connector: &str,
        status: Status,
        attempts: u32,
    ) -> Self {
        Self {
            id: id.into(),
            commune: commune.into(),
            form: form.into(),
            connector: connector.into(),
            status: status.as_str(),
            reference: None,
            attempts,
            error: None,
            details: BTreeMap::new(),
            at: crate::store::now_text(),
        }
    }

    /// Publishes the event on the status exchange, routing key `{commune}.{form}.{status}`,
    /// and waits for the confirm.
    ///
    /// # Errors
    ///
    /// [`BusError`] when the broker does not confirm it.
    pub async fn publish(&self, publisher: &Publisher, exchange: &str) -> Result<(), BusError> {
        // Commune and form may be unreadable on a rejected message: keep the key to 3 words.
        let word = |w: &str| {
            if w.is_empty() || w.contains('.') || w.len() > 100 {
                "unknown".to_owned()
            } else {
                w.to_owned()
            }
        };
        let routing_key = format!(
            "{}.{}.{}",
            word(&self.commune),
            word(&self.form),
            self.status
        );
        let body = serde_json::to_vec(self).unwrap_or_default();
        let properties = persistent_json().with_message_id(short(&format!(
            "{}:{}:{}:{}",
            self.connector, self.status, self.attempts, self.id
        )));
        publisher
            .publish(exchange, &routing_key, &body, properties, false)
            .await
    }
}

/// Properties of every message the gateway publishes: persistent JSON.
pub fn persistent_json() -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
}

/// A short string, cut to the AMQP limit of 255 bytes on a character boundary.
pub fn short(text: &str) -> ShortString {
    let mut end = text.len().min(255);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    ShortString::try_new(&text[..end]).unwrap_or_default()
}

/// A long-string header value.
pub fn long_string(text: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(text.as_bytes().to_vec()))
}

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

/// True when the broker answered that a queue or exchange does not exist (404 NOT_FOUND).
pub fn is_not_found(error: &BusError) -> bool {
    matches!(
        error,
        BusError::Amqp { source, .. }
            if matches!(source.kind(), lapin::ErrorKind::ProtocolError(e) if e.get_id() == 404)
    )
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

/// Delay before reconnecting after `failures` consecutive failures: 0.5 s doubling to 30 s.
pub fn reconnect_delay(failures: u32) -> Duration {
    let millis = 500u64.saturating_mul(1u64 << failures.min(6));
    Duration::from_millis(millis.min(30_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_events_have_details_only_when_the_connector_gave_some() {
        let mut event = StatusEvent::new("a:b:1", "44043", "depot", "ads", Status::Delivered, 1);
        let body = serde_json::to_value(&event).unwrap();
        let keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "at",
                "attempts",
                "commune",
                "connector",
                "error",
                "form",
                "id",
                "reference",
                "status"
            ],
            "the contract's exact shape, without `details`"
        );
        event
            .details
            .insert("dossier".into(), "44043-DP-3f9a1c0b7e2d".into());
        let body = serde_json::to_value(&event).unwrap();
        assert_eq!(body["details"]["dossier"], "44043-DP-3f9a1c0b7e2d");
    }

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

    #[test]
    fn short_strings_are_cut_on_a_char_boundary() {
        let long = "é".repeat(200);
        let cut = short(&long);
        assert!(cut.as_str().len() <= 255);
        assert!(cut.as_str().chars().all(|c| c == 'é'));
    }

    #[test]
    fn reconnect_delay_grows_and_caps() {
        assert_eq!(reconnect_delay(0), Duration::from_millis(500));
        assert_eq!(reconnect_delay(2), Duration::from_secs(2));
        assert_eq!(reconnect_delay(50), Duration::from_secs(30));
    }
}
