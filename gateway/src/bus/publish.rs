//! Publishing envelopes on the bus as the portal does (for operators, the demo and tests).

use lapin::Connection;

use aiguillage_bus::envelope::{Envelope, EnvelopeError};
use aiguillage_bus::BusConfig;
use aiguillage_bus::{BusError, Publisher};

/// An envelope could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The file is not a valid envelope; nothing was published for it.
    #[error("{source_name} : enveloppe invalide : {error}")]
    Invalid {
        /// Where it came from (a file name).
        source_name: String,
        /// What is wrong.
        error: EnvelopeError,
    },
    /// The broker failed.
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// An envelope published and confirmed by the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Envelope id.
    pub id: String,
    /// Routing key used, `{commune}.{form}`.
    pub routing_key: String,
}

/// Publishes on an open connection. Every body is checked first: if one is invalid,
/// nothing is published.
///
/// # Errors
///
/// [`PublishError`] for an invalid envelope or a broker failure.
pub async fn publish_on(
    connection: &Connection,
    bus: &BusConfig,
    envelopes: &[(String, Vec<u8>)],
) -> Result<Vec<Published>, PublishError> {
    let mut checked = Vec::with_capacity(envelopes.len());
    for (source_name, body) in envelopes {
        let envelope = Envelope::parse(body, bus.max_message_bytes).map_err(|rejection| {
            PublishError::Invalid {
                source_name: source_name.clone(),
                error: rejection.error,
            }
        })?;
        checked.push((envelope, body));
    }
    let publisher = Publisher::open(connection).await?;
    aiguillage_bus::topology::declare_demarches_exchange(publisher.channel(), bus).await?;
    let mut published = Vec::with_capacity(checked.len());
    for (envelope, body) in checked {
        let routing_key = format!("{}.{}", envelope.commune, envelope.form);
        // The publish time: the gateway's delivery latency is measured from it.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.as_secs())
            .unwrap_or(0);
        let properties = aiguillage_bus::publisher::persistent_json()
            .with_message_id(aiguillage_bus::publisher::short(&envelope.id))
            .with_timestamp(now);
        // Mandatory: with the alternate exchange nothing is returned, but if the exchange
        // were declared without it the operator must hear that a démarche went nowhere.
        publisher
            .publish(&bus.exchange, &routing_key, body, properties, true)
            .await?;
        published.push(Published {
            id: envelope.id,
            routing_key,
        });
    }
    // Closed here rather than when dropped, which would race the connection's close.
    let _ = publisher.channel().close(200, "published".into()).await;
    Ok(published)
}

/// Connects, publishes, disconnects.
///
/// # Errors
///
/// [`PublishError`] for an invalid envelope or a broker failure.
pub async fn publish(
    bus: &BusConfig,
    envelopes: &[(String, Vec<u8>)],
) -> Result<Vec<Published>, PublishError> {
    let connection = aiguillage_bus::publisher::connect(bus, "aiguillage-publish").await?;
    let result = publish_on(&connection, bus, envelopes).await;
    let _ = connection.close(200, "published".into()).await;
    result
}
