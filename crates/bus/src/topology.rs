//! The topology every party of the bus contract declares alike: the démarches exchange
//! with its alternate exchange and unrouted queue, the status exchange, quorum queues.
//! (The connectors' own queues, which depend on the gateway's configuration, are declared
//! by the gateway from these.)

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, ExchangeKind};

use crate::config::BusConfig;
use crate::publisher::{long_string, short, BusError, Context};

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
        .context(|| format!("impossible de déclarer l'échange `{}`", bus.status_exchange))
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
        .context(|| "impossible de déclarer une file pour les statuts".into())?;
    channel
        .queue_bind(
            queue.name().clone(),
            bus.status_exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .context(|| format!("impossible de se lier à `{}`", bus.status_exchange))?;
    channel
        .basic_consume(
            queue.name().clone(),
            short(tag),
            lapin::options::BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .context(|| "impossible de consommer les statuts".into())
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
        .context(|| format!("impossible de délier `{queue}` de `{exchange}` (`{routing_key}`)"))
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
        .context(|| format!("impossible de déclarer l'échange `{unrouted_exchange}`"))?;
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
        .context(|| format!("impossible de lier `{unrouted_queue}` à `{unrouted_exchange}`"))?;
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
        .context(|| format!("impossible de déclarer l'échange `{}`", bus.exchange))
}

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

/// Declares a durable quorum queue with `arguments`.
///
/// # Errors
///
/// [`BusError`] when the queue exists with other arguments.
pub async fn declare_quorum_queue(
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
        .context(|| format!("impossible de déclarer la file `{name}` (si elle existe avec d'autres arguments, supprimez-la ou alignez la configuration)"))
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
        .context(|| format!("impossible d'inspecter la file `{name}`"))
}
