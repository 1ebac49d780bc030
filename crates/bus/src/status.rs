//! Outcomes and status events: the words of the contract for what happened to a démarche
//! with a connector, and the one builder every status event goes through.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use time::OffsetDateTime;

use crate::publisher::{persistent_json, short, BusError, Publisher};

/// Where a démarche stands with one connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The business software accepted it.
    Delivered,
    /// A transient failure; it will be tried again.
    Retrying,
    /// A permanent failure; it is in the dead letters.
    Rejected,
    /// Retries exhausted; it is in the dead letters.
    Dead,
}

impl Status {
    /// The contract's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::Rejected => "rejected",
            Self::Dead => "dead",
        }
    }

    /// True when nothing more will happen without an operator (delivered or dead-lettered).
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Retrying)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "delivered" => Self::Delivered,
            "retrying" => Self::Retrying,
            "rejected" => Self::Rejected,
            "dead" => Self::Dead,
            other => return Err(UnknownStatus(other.to_owned())),
        })
    }
}

/// A word that is not one of the contract's statuses (read from a store or a header).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("statut inconnu `{0}`")]
pub struct UnknownStatus(pub String);

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
            at: now_text(),
        }
    }

    /// With the target's reference (delivered) when there is one.
    #[must_use]
    pub fn with_reference(mut self, reference: Option<String>) -> Self {
        self.reference = reference;
        self
    }

    /// With the failure's reason (every status but `delivered`).
    #[must_use]
    pub fn with_error(mut self, error: Option<String>) -> Self {
        self.error = error;
        self
    }

    /// With what the connector reported beyond the reference.
    #[must_use]
    pub fn with_details(mut self, details: BTreeMap<String, String>) -> Self {
        self.details = details;
        self
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

/// Now, as stored: RFC 3339 UTC with exactly three decimals, so that the text sorts as
/// the time does.
pub fn now_text() -> String {
    format_utc(OffsetDateTime::now_utc())
}

/// A time as stored: `2026-11-28T09:12:00.000Z`.
pub fn format_utc(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
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
    fn stored_times_have_a_fixed_width_so_that_text_order_is_time_order() {
        let whole = time::macros::datetime!(2026-11-28 09:12:00 UTC);
        let later = time::macros::datetime!(2026-11-28 09:12:00.06 UTC);
        assert_eq!(format_utc(whole), "2026-11-28T09:12:00.000Z");
        assert_eq!(format_utc(later), "2026-11-28T09:12:00.060Z");
        assert!(format_utc(whole) < format_utc(later));
        let paris = time::macros::datetime!(2026-11-28 10:12:00 +01:00);
        assert_eq!(format_utc(paris), "2026-11-28T09:12:00.000Z");
    }
}
