//! The connection to the broker and the confirmed publisher: every message the gateway
//! or the Publik bridge puts on the bus waits for the broker's confirm.

use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use secrecy::ExposeSecret;

use crate::config::BusConfig;

/// The bus failed; the gateway reconnects.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker refused an operation or the connection dropped.
    #[error("{context} : {source}")]
    Amqp {
        /// What the gateway was doing.
        context: String,
        /// The client's error.
        #[source]
        source: lapin::Error,
    },
    /// The broker did not confirm a publish.
    #[error("le broker n'a pas confirmé le message publié sur `{0}` (nack)")]
    Nacked(String),
    /// A mandatory publish found no queue.
    #[error("le message publié sur `{0}` a été renvoyé faute de route : la file manque")]
    Returned(String),
}

/// Adds what the gateway was doing to a client error.
pub trait Context<T> {
    /// The error as a [`BusError::Amqp`] saying what failed.
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
        .context(|| format!("connexion impossible au broker {}", bus.redacted_url()))
}

/// Delay before reconnecting after `failures` consecutive failures: 0.5 s doubling to 30 s.
pub fn reconnect_delay(failures: u32) -> Duration {
    let millis = 500u64.saturating_mul(1u64 << failures.min(6));
    Duration::from_millis(millis.min(30_000))
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
            .context(|| "impossible d'ouvrir un canal de publication".into())?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .context(|| "impossible d'activer les confirmations de publication".into())?;
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
            .context(|| format!("publication impossible sur `{exchange}`"))?
            .await
            .context(|| format!("aucune confirmation du message publié sur `{exchange}`"))?;
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

/// True when the broker answered that a queue or exchange does not exist (404 NOT_FOUND).
pub fn is_not_found(error: &BusError) -> bool {
    matches!(
        error,
        BusError::Amqp { source, .. }
            if matches!(source.kind(), lapin::ErrorKind::ProtocolError(e) if e.get_id() == 404)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
