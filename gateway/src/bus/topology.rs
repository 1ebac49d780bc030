//! The gateway's side of the topology: each connector's quorum queue (bound by its
//! routes), its retry tiers and its dead-letter queue, on top of what every party of the
//! bus contract declares (`aiguillage_bus::topology`).

use aiguillage_bus::config::BusConfig;
use aiguillage_bus::publisher::{long_string, BusError, Context};
use aiguillage_bus::topology::{
    declare_demarches_exchange, declare_quorum_queue, declare_status_exchange,
};
use lapin::options::QueueBindOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::Channel;

use crate::config::ConnectorInstance;
use crate::routing::Router;

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
                .context(|| {
                    format!(
                        "impossible de lier `{queue}` à `{}` par `{key}`",
                        bus.exchange
                    )
                })?;
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
