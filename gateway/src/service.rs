//! The service: opens the store, then keeps a bus session running (connect, declare,
//! consume) until told to stop, reconnecting with backoff whenever the bus fails.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{error, info, warn};

use crate::breaker::{Breaker, BreakerState};
use crate::bus::{self, Publisher};
use crate::config::Config;
use crate::delivery::{self, Pipeline};
use crate::routing::Router;
use crate::store::{Binding, Store, StoreError};

/// The gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store cannot be opened or migrated.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
}

/// A running gateway.
pub struct Running {
    breakers: Breakers,
    stop: watch::Sender<bool>,
    ready: watch::Receiver<bool>,
    task: JoinHandle<()>,
    store: Store,
}

impl Running {
    /// True while connected to the bus with every connector consuming.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until ready, at most `timeout`; tells whether it is.
    pub async fn wait_ready(&mut self, timeout: Duration) -> bool {
        let wait = self.ready.wait_for(|ready| *ready);
        matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(_)))
    }

    /// The state of a connector's circuit breaker and how many times it opened.
    pub fn breaker(&self, connector: &str) -> Option<(BreakerState, u64)> {
        self.breakers
            .get(connector)
            .map(|b| (b.state(), b.times_opened()))
    }

    /// The outcome store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops taking messages, lets in-flight deliveries finish (within the grace period),
    /// closes the connection and the store.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        if let Err(error) = self.task.await {
            error!(%error, "the gateway task failed while stopping");
        }
    }
}

/// Opens the store and starts consuming.
///
/// # Errors
///
/// [`StartError`] when the store cannot be opened; bus failures are retried instead.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let store = Store::open(
        config.store.url.expose_secret(),
        config.store.max_connections,
    )
    .await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, ready_rx) = watch::channel(false);
    // Breakers outlive bus sessions: a reconnection does not forget a failing target.
    let breakers: Breakers = Arc::new(
        config
            .connectors
            .iter()
            .map(|c| (c.name.clone(), Arc::new(Breaker::new(c.breaker.clone()))))
            .collect(),
    );
    let task = tokio::spawn(supervise(
        Arc::new(config),
        store.clone(),
        breakers.clone(),
        stop_rx,
        ready_tx,
    ));
    Ok(Running {
        breakers,
        stop: stop_tx,
        ready: ready_rx,
        task,
        store,
    })
}

/// The breakers of the connectors, by name.
type Breakers = Arc<HashMap<String, Arc<Breaker>>>;

async fn supervise(
    config: Arc<Config>,
    store: Store,
    breakers: Breakers,
    mut stop: watch::Receiver<bool>,
    ready: watch::Sender<bool>,
) {
    let router = Arc::new(Router::new(config.routes.clone()));
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            break;
        }
        let started = Instant::now();
        match session(&config, &router, &store, &breakers, &mut stop, &ready).await {
            Ok(()) => break,
            Err(reason) => {
                ready.send_replace(false);
                // A session that ran a while was a success: start the backoff over.
                if started.elapsed() > Duration::from_secs(30) {
                    failures = 0;
                }
                let delay = bus::reconnect_delay(failures);
                failures = failures.saturating_add(1);
                warn!(error = %reason, retry_in_ms = delay.as_millis() as u64, "bus session ended: reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => break,
                }
            }
        }
    }
    ready.send_replace(false);
    store.close().await;
    info!("gateway stopped");
}

/// Records the bindings the routes need and removes those an older configuration made:
/// a route taken out must stop feeding its connector's queue.
async fn prune_stale_bindings(
    channel: &lapin::Channel,
    config: &Config,
    router: &Router,
    store: &Store,
) -> Result<(), String> {
    let exchange = config.bus.exchange.as_str();
    let wanted: BTreeSet<Binding> = config
        .connectors
        .iter()
        .flat_map(|instance| {
            let queue = config.bus.connector_queue(&instance.name);
            router
                .binding_keys(&instance.name)
                .into_iter()
                .map(move |routing_key| Binding {
                    queue: queue.clone(),
                    routing_key,
                    connector: instance.name.clone(),
                })
        })
        .collect();
    for binding in &wanted {
        store
            .record_binding(exchange, binding)
            .await
            .map_err(|e| e.to_string())?;
    }
    let configured: BTreeSet<&str> = config.connectors.iter().map(|c| c.name.as_str()).collect();
    for binding in store.bindings(exchange).await.map_err(|e| e.to_string())? {
        if wanted.contains(&binding) {
            continue;
        }
        bus::unbind(channel, exchange, &binding.queue, &binding.routing_key)
            .await
            .map_err(|e| e.to_string())?;
        store
            .forget_binding(exchange, &binding)
            .await
            .map_err(|e| e.to_string())?;
        if configured.contains(binding.connector.as_str()) {
            info!(connector = %binding.connector, routing_key = %binding.routing_key, "removed a binding that no route needs anymore");
        } else {
            warn!(
                connector = %binding.connector,
                queue = %binding.queue,
                "this connector is no longer configured: its queue is unbound but keeps its messages (replay them or delete the queue)"
            );
        }
    }
    Ok(())
}

/// One connection's life: declare, consume with every connector, until stop or failure.
async fn session(
    config: &Arc<Config>,
    router: &Arc<Router>,
    store: &Store,
    breakers: &Breakers,
    stop: &mut watch::Receiver<bool>,
    ready: &watch::Sender<bool>,
) -> Result<(), String> {
    let bus_config = Arc::new(config.bus.clone());
    let connection = bus::connect(
        &config.bus,
        // Names the connection for the operator (rabbitmqctl list_connections).
        &format!(
            "aiguillage-gateway {} pid {}",
            config.bus.queue_prefix,
            std::process::id()
        ),
    )
    .await
    .map_err(|e| e.to_string())?;
    let setup = connection
        .create_channel()
        .await
        .map_err(|e| format!("cannot open a channel: {e}"))?;
    bus::declare_topology(&setup, &config.bus, &config.connectors, router)
        .await
        .map_err(|e| e.to_string())?;
    prune_stale_bindings(&setup, config, router, store).await?;
    let _ = setup.close(200, "topology declared".into()).await;

    let (stop_workers, workers_stop) = watch::channel(false);
    let mut workers = JoinSet::new();
    for instance in &config.connectors {
        let publisher = Publisher::open(&connection)
            .await
            .map_err(|e| e.to_string())?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| format!("cannot open a channel for `{}`: {e}", instance.name))?;
        let pipeline = Arc::new(Pipeline::new(
            instance.clone(),
            bus_config.clone(),
            router.clone(),
            store.clone(),
            publisher,
            workers_stop.clone(),
            breakers
                .get(&instance.name)
                .cloned()
                .unwrap_or_else(|| Arc::new(Breaker::new(instance.breaker.clone()))),
        ));
        workers.spawn(delivery::consume(
            pipeline,
            channel,
            config.bus.prefetch,
            workers_stop.clone(),
            config.shutdown.grace,
        ));
    }
    ready.send_replace(true);
    info!(bus = %config.bus.redacted_url(), connectors = config.connectors.len(), "gateway ready");

    let result = tokio::select! {
        _ = stop.changed() => {
            info!("stopping: finishing the deliveries in flight");
            ready.send_replace(false);
            stop_workers.send_replace(true);
            while let Some(joined) = workers.join_next().await {
                if let Ok(Err(error)) = joined {
                    warn!(%error, "a connector stopped with an error");
                }
            }
            Ok(())
        }
        Some(joined) = workers.join_next() => {
            Err(match joined {
                Ok(Err(error)) => error,
                Ok(Ok(())) => "a connector stopped consuming".into(),
                Err(error) => format!("a connector task failed: {error}"),
            })
        }
    };
    workers.abort_all();
    let _ = connection.close(200, "aiguillage stopping".into()).await;
    result
}
