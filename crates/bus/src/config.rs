//! The leaf configuration types the bus contract's parties share: the `[bus]` section
//! (which also computes the names of the topology) and a configuration problem.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// `[bus]`: the RabbitMQ connection and the names of the topology (the defaults are the
/// bus contract; change them only to isolate a test or a second environment on one broker).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// AMQP URL, `amqp://user:password@host:5672/vhost` (`%2f` is the default vhost).
    /// Holds a password: never logged (see [`BusConfig::redacted_url`]).
    pub url: SecretString,
    /// File holding the broker password, which replaces the password of `url`.
    pub password_file: Option<PathBuf>,
    /// Messages each connector's consumer may hold unacknowledged (AMQP prefetch).
    pub prefetch: u16,
    /// The topic exchange where the portal publishes démarches.
    pub exchange: String,
    /// The topic exchange where status events are published.
    pub status_exchange: String,
    /// Prefix of every queue the gateway declares (`<prefix>.<connector>`, `<prefix>.unrouted`).
    pub queue_prefix: String,
    /// Largest accepted message body, in bytes; larger ones are dead-lettered.
    pub max_message_bytes: usize,
    /// Deliveries of one message before RabbitMQ itself dead-letters it (protects against a
    /// message that crashes the gateway again and again).
    pub delivery_limit: u32,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from(DEFAULT_BUS_URL.to_owned()),
            password_file: None,
            prefetch: 64,
            exchange: "demarches".into(),
            status_exchange: "demarches.status".into(),
            queue_prefix: "aiguillage".into(),
            max_message_bytes: 32 * 1024 * 1024,
            delivery_limit: 20,
        }
    }
}

const DEFAULT_BUS_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

impl BusConfig {
    /// The URL without its password, for logs and messages.
    pub fn redacted_url(&self) -> String {
        redact_url(self.url.expose_secret())
    }

    /// The alternate exchange of `exchange`: démarches that no route takes.
    pub fn unrouted_exchange(&self) -> String {
        format!("{}.unrouted", self.exchange)
    }

    /// The queue bound to the alternate exchange.
    pub fn unrouted_queue(&self) -> String {
        format!("{}.unrouted", self.queue_prefix)
    }

    /// The queue of a connector.
    pub fn connector_queue(&self, connector: &str) -> String {
        format!("{}.{connector}", self.queue_prefix)
    }

    /// The dead-letter queue of a connector.
    pub fn dead_queue(&self, connector: &str) -> String {
        format!("{}.{connector}.dead", self.queue_prefix)
    }

    /// The retry queue of a connector for one delay, e.g. `aiguillage.famille.retry.5m`.
    ///
    /// Named by its delay rather than its rank so that changing a retry policy declares new
    /// queues instead of clashing with the existing ones' arguments (RabbitMQ refuses to
    /// redeclare a queue with another TTL); the old ones drain back by themselves.
    pub fn retry_queue(&self, connector: &str, delay: Duration) -> String {
        format!(
            "{}.{connector}.retry.{}",
            self.queue_prefix,
            compact_duration(delay)
        )
    }
}

impl fmt::Debug for BusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusConfig")
            .field("url", &self.redacted_url())
            .field("prefetch", &self.prefetch)
            .field("exchange", &self.exchange)
            .field("status_exchange", &self.status_exchange)
            .field("queue_prefix", &self.queue_prefix)
            .finish_non_exhaustive()
    }
}

/// `300s` → `5m`, `1500ms` → `1500ms`, `6h` → `6h`: short and exact.
pub fn compact_duration(delay: Duration) -> String {
    let millis = delay.as_millis();
    match millis {
        0 => "0ms".into(),
        m if m % 3_600_000 == 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 => format!("{}m", m / 60_000),
        m if m % 1_000 == 0 => format!("{}s", m / 1_000),
        m => format!("{m}ms"),
    }
}

/// Replaces the password of a URL by `***`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparsable URL>".into(),
    }
}

/// One problem in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key at fault, e.g. `connectors[1].kind`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}
