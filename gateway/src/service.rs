//! The service: opens the store, starts the admin server, then keeps a bus session running
//! (connect, declare, consume) until told to stop, reconnecting with backoff whenever the
//! bus fails.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, error, info, warn};

use crate::admin::metrics::{Metrics, QueueKind};
use crate::admin::{self, state::AdminState};
use crate::bus::topology;
use crate::bus::BusStatus;
use crate::config::Config;
use crate::pipeline::breaker::{Breaker, BreakerState};
use crate::pipeline::delivery::{self, ConnectorState, Connectors, Pipeline};
use crate::pipeline::fence::Fence;
use crate::pipeline::flusher;
use crate::routing::Router;
use crate::store::{Binding, Store, StoreError};
use aiguillage_bus::Publisher;

/// The gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store cannot be opened or migrated.
    #[error("ouverture impossible de la base de la passerelle : {0}")]
    Store(#[from] StoreError),
    /// The admin server cannot listen.
    #[error(transparent)]
    Admin(#[from] admin::server::BindError),
    /// The Publik intake cannot listen.
    #[error(transparent)]
    Intake(#[from] aiguillage_publik::intake::BindError),
}

/// A running gateway.
pub struct Running {
    connectors: Connectors,
    stop: watch::Sender<bool>,
    bus: watch::Receiver<BusStatus>,
    task: JoinHandle<()>,
    store: Store,
    metrics: Metrics,
    admin: Option<admin::server::Server>,
    upkeep: JoinHandle<()>,
    intake: Option<aiguillage_publik::intake::IntakeServer>,
    notifiers: Vec<JoinHandle<()>>,
}

impl Running {
    /// True while connected to the bus with every connector consuming.
    pub fn is_ready(&self) -> bool {
        *self.bus.borrow() == BusStatus::Ready
    }

    /// Whether the bus session is ready, and why not.
    pub fn bus_status(&self) -> BusStatus {
        self.bus.borrow().clone()
    }

    /// Waits until ready, at most `timeout`; tells whether it is.
    pub async fn wait_ready(&mut self, timeout: Duration) -> bool {
        let wait = self.bus.wait_for(|status| *status == BusStatus::Ready);
        matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(_)))
    }

    /// The state of a connector's circuit breaker and how many times it opened.
    pub fn breaker(&self, connector: &str) -> Option<(BreakerState, u64)> {
        self.connectors
            .get(connector)
            .map(|c| (c.breaker.state(), c.breaker.times_opened()))
    }

    /// The outcome store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The address the admin server listens on (the port actually bound when the
    /// configuration said 0); `None` when `admin.enabled` is false.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(admin::server::Server::addr)
    }

    /// The address the Publik intake listens on; `None` when it is not enabled.
    pub fn intake_addr(&self) -> Option<SocketAddr> {
        self.intake
            .as_ref()
            .map(aiguillage_publik::intake::IntakeServer::addr)
    }

    /// Stops taking messages, lets in-flight deliveries finish (within the grace period),
    /// closes the connection and the store, then the admin server (`/readyz` says
    /// `stopping` meanwhile).
    pub async fn shutdown(self) {
        // The portal's webhooks first: what they send from now on gets an answer that
        // makes w.c.s. send it again later.
        if let Some(intake) = self.intake {
            intake.stop().await;
        }
        crate::systemd::notify("STOPPING=1\nSTATUS=arrêt : fin des livraisons en cours");
        self.stop.send_replace(true);
        for notifier in self.notifiers {
            let _ = notifier.await;
        }
        if let Err(error) = self.task.await {
            error!(%error, "the gateway task failed while stopping");
        }
        if let Some(admin) = self.admin {
            admin.stop().await;
        }
        self.upkeep.abort();
    }
}

/// Opens the store, starts the admin server and starts consuming.
///
/// # Errors
///
/// [`StartError`] when the store cannot be opened or the admin server cannot listen; bus
/// failures are retried instead.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let store = Store::open(
        config.store.url.expose_secret(),
        config.store.max_connections,
    )
    .await?;
    let config = Arc::new(config);
    let metrics = Metrics::new(config.connectors.iter().map(|c| c.name.as_str()));
    let connectors: Connectors = Arc::new(
        config
            .connectors
            .iter()
            .map(|c| {
                let state = ConnectorState {
                    breaker: Arc::new(Breaker::new(c.breaker.clone())),
                    metrics: metrics.connector(&c.name),
                };
                (c.name.clone(), state)
            })
            .collect(),
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let (bus_tx, bus_rx) = watch::channel(BusStatus::NotReady("pas encore connecté".into()));
    let admin = if config.admin.enabled {
        let listener = match admin::server::bind(config.admin.listen).await {
            Ok(listener) => listener,
            Err(error) => {
                store.close().await;
                return Err(error.into());
            }
        };
        let server = admin::server::serve(
            listener,
            AdminState {
                token: config.admin.token.clone(),
                bus: bus_rx.clone(),
                store: store.clone(),
                metrics: metrics.clone(),
                connectors: connectors.clone(),
                config: config.clone(),
                link: admin::state::BusLink::default(),
                sessions: admin::state::Sessions::default(),
                csrf: admin::state::random_hex(),
                logins: crate::admin::guard::LoginLimiter::default(),
                routes: Router::new(config.routes.clone()),
            },
        );
        info!(admin = %server.addr(), "admin server listening (/healthz, /readyz, /metrics, /api/, dashboard at /)");
        Some(server)
    } else {
        None
    };
    let intake = match &config.publik.intake {
        Some(intake) => {
            match aiguillage_publik::intake::start(
                &config.bus,
                intake,
                &config.publik.portals,
                Arc::new(metrics.clone()),
            )
            .await
            {
                Ok(server) => Some(server),
                Err(error) => {
                    if let Some(admin) = admin {
                        admin.stop().await;
                    }
                    store.close().await;
                    return Err(error.into());
                }
            }
        }
        None => None,
    };
    let notifiers = aiguillage_publik::notifier::spawn_all(
        &config.bus,
        &config.publik,
        &(Arc::new(store.clone()) as aiguillage_publik::SentStatuses),
        &stop_rx,
        &(Arc::new(metrics.clone()) as aiguillage_publik::Metrics),
    );
    let upkeep = tokio::spawn(upkeep(metrics.clone()));
    let task = tokio::spawn(supervise(
        config,
        store.clone(),
        connectors.clone(),
        metrics.clone(),
        stop_rx,
        bus_tx,
    ));
    Ok(Running {
        connectors,
        stop: stop_tx,
        bus: bus_rx,
        task,
        store,
        metrics,
        admin,
        upkeep,
        intake,
        notifiers,
    })
}

/// Folds histogram samples into their buckets every few seconds, scraped or not.
async fn upkeep(metrics: Metrics) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        metrics.upkeep();
    }
}

async fn supervise(
    config: Arc<Config>,
    store: Store,
    connectors: Connectors,
    metrics: Metrics,
    mut stop: watch::Receiver<bool>,
    bus_status: watch::Sender<BusStatus>,
) {
    let router = Arc::new(Router::new(config.routes.clone()));
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            break;
        }
        let started = Instant::now();
        let lasting = Lasting {
            connectors: &connectors,
            metrics: &metrics,
            bus_status: &bus_status,
        };
        match session(&config, &router, &store, lasting, &mut stop).await {
            Ok(()) => break,
            Err(reason) => {
                bus_status.send_replace(BusStatus::NotReady(format!(
                    "non connecté : {reason} (reconnexion en cours)"
                )));
                crate::systemd::notify(&format!(
                    "STATUS=bus injoignable, reconnexion en cours : {reason}"
                ));
                metrics.bus_reconnecting();
                // A session that ran a while was a success: start the backoff over.
                if started.elapsed() > Duration::from_secs(30) {
                    failures = 0;
                }
                let delay = aiguillage_bus::publisher::reconnect_delay(failures);
                failures = failures.saturating_add(1);
                warn!(error = %reason, retry_in_ms = delay.as_millis() as u64, "bus session ended: reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => break,
                }
            }
        }
    }
    bus_status.send_replace(BusStatus::NotReady("arrêt en cours".into()));
    store.close().await;
    info!("gateway stopped");
}

/// What a session uses and leaves to the next one.
#[derive(Clone, Copy)]
struct Lasting<'a> {
    connectors: &'a Connectors,
    metrics: &'a Metrics,
    bus_status: &'a watch::Sender<BusStatus>,
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
        aiguillage_bus::topology::unbind(channel, exchange, &binding.queue, &binding.routing_key)
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
    lasting: Lasting<'_>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let bus_config = Arc::new(config.bus.clone());
    let connection = aiguillage_bus::publisher::connect(
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
        .map_err(|e| format!("impossible d'ouvrir un canal : {e}"))?;
    topology::declare_topology(&setup, &config.bus, &config.connectors, router)
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
        let channel = connection.create_channel().await.map_err(|e| {
            format!(
                "impossible d'ouvrir un canal pour `{}` : {e}",
                instance.name
            )
        })?;
        // Before anything is consumed, and before the gateway says it is ready: the
        // marker's place in the queue separates what was queued under older bindings.
        let fence = Fence::put(&publisher, &bus_config.connector_queue(&instance.name))
            .await
            .map_err(|e| {
                format!(
                    "impossible de poser le marqueur de séparation dans la file de `{}` : {e}",
                    instance.name
                )
            })?;
        let pipeline = Arc::new(Pipeline::new(
            instance.clone(),
            bus_config.clone(),
            router.clone(),
            store.clone(),
            publisher,
            workers_stop.clone(),
            lasting
                .connectors
                .get(&instance.name)
                .cloned()
                .unwrap_or_else(|| ConnectorState {
                    breaker: Arc::new(Breaker::new(instance.breaker.clone())),
                    metrics: lasting.metrics.connector(&instance.name),
                }),
        ));
        workers.spawn(delivery::consume(
            pipeline,
            channel,
            fence,
            config.bus.prefetch,
            workers_stop.clone(),
            config.shutdown.grace,
        ));
        if let Some(every) = instance.connector.batching().map(|b| b.flush_every()) {
            let publisher = Publisher::open(&connection)
                .await
                .map_err(|e| e.to_string())?;
            workers.spawn(flusher::run(
                instance.clone(),
                store.clone(),
                publisher,
                bus_config.status_exchange.clone(),
                every,
                workers_stop.clone(),
            ));
        }
    }
    let mut depths: Option<lapin::Channel> = None;
    lasting.bus_status.send_replace(BusStatus::Ready);
    info!(bus = %config.bus.redacted_url(), connectors = config.connectors.len(), "gateway ready");
    // Only now, topology declared and every connector consuming: a unit ordered after
    // this one (After=aiguillage.service) may publish at once.
    crate::systemd::notify(&format!(
        "READY=1\nSTATUS=prêt : {} connecteur(s) à l'écoute sur le bus",
        config.connectors.len()
    ));

    let result = tokio::select! {
        _ = stop.changed() => {
            info!("stopping: finishing the deliveries in flight");
            lasting.bus_status.send_replace(BusStatus::NotReady("arrêt en cours".into()));
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
                Ok(Ok(())) => "un connecteur a cessé de consommer".into(),
                Err(error) => format!("la tâche d'un connecteur a échoué : {error}"),
            })
        }
        () = watch_queue_depths(&connection, config, lasting.metrics, &mut depths) => Ok(()),
    };
    workers.abort_all();
    if let Some(channel) = depths {
        let _ = channel.close(200, "stopping".into()).await;
    }
    let _ = connection.close(200, "aiguillage stopping".into()).await;
    result
}

/// Reads the depth of each connector's queue and dead letters, and of the unrouted queue,
/// with a passive declare, every `admin.queue_depth_interval` while the session lasts
/// (never returns). A failed read is retried at the next tick: the session notices a lost
/// connection by itself.
async fn watch_queue_depths(
    connection: &lapin::Connection,
    config: &Config,
    metrics: &Metrics,
    channel: &mut Option<lapin::Channel>,
) {
    let mut every = tokio::time::interval(config.admin.queue_depth_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        for instance in &config.connectors {
            for (kind, queue) in [
                (QueueKind::Main, config.bus.connector_queue(&instance.name)),
                (QueueKind::Dead, config.bus.dead_queue(&instance.name)),
            ] {
                if let Some(messages) = read_queue_depth(connection, channel, &queue).await {
                    metrics.queue_depth(&instance.name, kind, messages);
                }
            }
        }
        let unrouted = config.bus.unrouted_queue();
        if let Some(messages) = read_queue_depth(connection, channel, &unrouted).await {
            metrics.unrouted_depth(messages);
        }
    }
}

/// The depth of `queue`, read on `channel` (opened when it is `None`, and kept when the
/// read succeeds); `None` when it cannot be read now.
async fn read_queue_depth(
    connection: &lapin::Connection,
    channel: &mut Option<lapin::Channel>,
    queue: &str,
) -> Option<u32> {
    let open = match channel.take() {
        Some(open) => open,
        None => match connection.create_channel().await {
            Ok(open) => open,
            Err(error) => {
                debug!(%error, "cannot open a channel to read the queue depths");
                return None;
            }
        },
    };
    let read = tokio::time::timeout(
        QUEUE_DEPTH_TIMEOUT,
        aiguillage_bus::topology::queue_depth(&open, queue),
    )
    .await;
    match read {
        Ok(Ok(messages)) => {
            *channel = Some(open);
            Some(messages)
        }
        // A passive declare of a missing queue closes its channel: the next read opens
        // another.
        Ok(Err(error)) => {
            debug!(%error, %queue, "cannot read the queue depth");
            None
        }
        Err(_) => {
            debug!(%queue, "no answer reading the queue depth");
            None
        }
    }
}

/// How long a passive declare may take.
const QUEUE_DEPTH_TIMEOUT: Duration = Duration::from_secs(5);
