// Over 600 lines: Pipeline::process and consume are still two long functions; phase B turns process into a list of named steps.
//! Delivery: the pipeline of one message, and the consumer that runs it for one connector.
//!
//! Read `Pipeline::process` top to bottom: parse → route → already recorded? → map →
//! deliver → send on (dead letters or a retry tier) → record → status event → ack; then
//! [`Pipeline::handle`] counts what became of the message, in one place. Every
//! step that must survive a crash happens, and is confirmed, before the ack: a crash at
//! any point gives a redelivery, which the store (and the target's idempotency key)
//! absorbs, never a loss.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aiguillage_connector::{ConnectorError, Context, Receipt};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::Channel;
use time::OffsetDateTime;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::admin::metrics::ConnectorMetrics;
use crate::config::ConnectorInstance;
use crate::mapping;
use crate::pipeline::breaker::{Breaker, BreakerState};
use crate::pipeline::fence::{self, Fence, Seen};
use crate::pipeline::holding::StoreHolding;
use crate::pipeline::numbering::StoreNumbering;
use crate::routing::{Decision, Router};
use crate::store::{Outcome, Store, StoreError};
use aiguillage_bus::envelope::{Envelope, EnvelopeError, Rejection, Salvage};
use aiguillage_bus::BusConfig;
use aiguillage_bus::Status;
use aiguillage_bus::{BusError, Publisher, StatusEvent};

/// A failure of the gateway's own infrastructure (bus or store) while handling a message:
/// the message is left unacknowledged and the session restarts.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ack could not be sent.
    #[error("cannot acknowledge the message: {0}")]
    Ack(lapin::Error),
}

/// The state each connector keeps across bus sessions, by connector name.
pub type Connectors = Arc<std::collections::BTreeMap<String, ConnectorState>>;

/// What a connector keeps from one bus session to the next: its circuit breaker (a
/// reconnection does not forget a failing target) and its metrics.
#[derive(Clone)]
pub struct ConnectorState {
    /// The connector's circuit breaker.
    pub breaker: Arc<Breaker>,
    /// The connector's metrics.
    pub metrics: ConnectorMetrics,
}

/// Everything one connector's pipeline needs.
pub struct Pipeline {
    instance: ConnectorInstance,
    bus: Arc<BusConfig>,
    router: Arc<Router>,
    store: Store,
    /// The store's durable numbering, handed to the connector in each context.
    numbering: Arc<StoreNumbering>,
    /// The connector's durable holding of documents for later batches.
    holding: Arc<StoreHolding>,
    publisher: Publisher,
    tiers: Vec<Duration>,
    stop: watch::Receiver<bool>,
    breaker: Arc<Breaker>,
    metrics: ConnectorMetrics,
}

/// What happened to a delivery attempt.
enum Attempt {
    Delivered(Receipt),
    /// Held for a later batch: recorded and announced by the flush that writes it.
    Held,
    Failed(ConnectorError),
}

/// How many times a copy is passed on between connectors before it goes to the unrouted
/// démarches (see [`Pipeline::pass_on`]).
const MAX_FORWARDS: u32 = 3;

/// What became of a message, once acknowledged (for the metrics).
enum Handled {
    /// Not this connector's: another connector's copy, or sent to the unrouted démarches.
    NotMine,
    /// Its outcome was recorded before (a redelivery): announced again, not delivered.
    AlreadyRecorded { commune: String, form: String },
    /// Held by the connector for a later batch (see flusher.rs).
    Held { commune: String, form: String },
    /// A new outcome, recorded and announced; `since` is when the message was published.
    Outcome {
        commune: String,
        form: String,
        status: Status,
        since: Option<OffsetDateTime>,
    },
}

/// The commune and form of a message whose envelope cannot be read, in the metrics (what
/// the body says is not trusted as a label).
const UNKNOWN: &str = "unknown";

impl Pipeline {
    /// A pipeline for `instance`, publishing on `publisher`.
    pub fn new(
        instance: ConnectorInstance,
        bus: Arc<BusConfig>,
        router: Arc<Router>,
        store: Store,
        publisher: Publisher,
        stop: watch::Receiver<bool>,
        state: ConnectorState,
    ) -> Self {
        let tiers = instance.retry.tiers();
        let numbering = Arc::new(StoreNumbering::new(store.clone()));
        let holding = Arc::new(StoreHolding::new(store.clone(), &instance.name));
        Self {
            numbering,
            holding,
            instance,
            bus,
            router,
            store,
            publisher,
            tiers,
            stop,
            breaker: state.breaker,
            metrics: state.metrics,
        }
    }

    /// Runs a store operation until it succeeds: while the store is down the message is
    /// held (not acked, not failed), so that an outage of the store costs time, not
    /// messages. Gives up only when the gateway stops (the broker then redelivers).
    async fn persist<T, F, Fut>(&self, what: &str, mut operation: F) -> Result<T, PipelineError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut delay = Duration::from_millis(100);
        let mut failing = false;
        loop {
            match operation().await {
                Ok(value) => {
                    if failing {
                        info!(what, "store answers again");
                    }
                    return Ok(value);
                }
                Err(error) => {
                    if *self.stop.borrow() {
                        return Err(error.into());
                    }
                    if !failing {
                        warn!(what, %error, "store unavailable: holding the message until it answers");
                        failing = true;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Handles one message, from its body to its ack, and counts what became of it.
    /// `slot` is one of the connector's `concurrency` slots: it is given back as soon as
    /// the outcome is recorded, so that announcing and acknowledging (which involve
    /// neither the target nor the store) overlap with the next deliveries.
    ///
    /// # Errors
    ///
    /// [`PipelineError`] when the bus or the store fails: the message is not acknowledged
    /// (nor counted).
    pub async fn handle(
        &self,
        delivery: &Delivery,
        slot: OwnedSemaphorePermit,
        before_fence: bool,
    ) -> Result<(), PipelineError> {
        let handled = self.process(delivery, slot, before_fence).await?;
        self.account(handled);
        Ok(())
    }

    /// The one place where what became of a message reaches the metrics.
    fn account(&self, handled: Handled) {
        match handled {
            Handled::NotMine => {}
            Handled::AlreadyRecorded { commune, form } | Handled::Held { commune, form } => {
                self.metrics.received(&commune, &form);
            }
            Handled::Outcome {
                commune,
                form,
                status,
                since,
            } => {
                self.metrics.received(&commune, &form);
                self.metrics.outcome(&commune, &form, status);
                if let (Status::Delivered, Some(since)) = (status, since) {
                    // A publisher's clock ahead of ours counts as no delay.
                    let latency = Duration::try_from(OffsetDateTime::now_utc() - since)
                        .unwrap_or(Duration::ZERO);
                    self.metrics.delivered_after(latency);
                }
            }
        }
    }

    /// The pipeline of one message, from its body to its ack.
    async fn process(
        &self,
        delivery: &Delivery,
        slot: OwnedSemaphorePermit,
        before_fence: bool,
    ) -> Result<Handled, PipelineError> {
        // A copy of another connector's démarche may be its only copy (see fence.rs).
        let may_be_alone = before_fence || fence::may_be_alone(delivery);
        let headers = delivery.properties.headers().as_ref();
        let attempt = aiguillage_bus::headers::attempt_of(headers);
        let connector = self.instance.name.as_str();

        let mut envelope = match Envelope::parse(&delivery.data, self.bus.max_message_bytes) {
            Ok(envelope) => envelope,
            Err(rejection) => {
                let Rejection { error, salvage } = *rejection;
                return self
                    .reject_invalid(delivery, &error, salvage, attempt, may_be_alone)
                    .await;
            }
        };
        let span = info_span!(
            "demarche",
            demarche.id = %envelope.id,
            commune = %envelope.commune,
            form = %envelope.form,
            connector,
            attempt,
        );
        async move {
            let routing_key = aiguillage_bus::headers::original_routing_key(delivery);
            let route = match self.router.decide(connector, &envelope.commune, &envelope.form, &routing_key) {
                Decision::Deliver(route) => route,
                Decision::NotMine { takers, forward } => {
                    if forward {
                        warn!(takers = ?takers, routing_key = %routing_key, "the routing key disagrees with the envelope: passed on to the connectors its commune and form name");
                        self.pass_on(delivery, &takers).await?;
                    } else if may_be_alone {
                        info!(takers = ?takers, "taken by another connector's route, and queued before this configuration: passed on");
                        self.pass_on(delivery, &takers).await?;
                    } else {
                        debug!("taken by another connector's route");
                    }
                    return ack(delivery).await.map(|()| Handled::NotMine);
                }
                Decision::Unrouted => {
                    // Nobody else sees it: the operator must hear of it (see `aiguillage unrouted`).
                    warn!(commune = %envelope.commune, form = %envelope.form, routing_key = %routing_key, "no route takes this démarche: kept in the unrouted démarches");
                    self.send_to_unrouted(delivery).await?;
                    return ack(delivery).await.map(|()| Handled::NotMine);
                }
            };

            let recorded = self
                .persist("read the outcome", || self.store.outcome(&envelope.id, connector))
                .await?;
            if let Some(recorded) = recorded {
                if recorded.status.is_final() {
                    // Delivered before a crash or a lost ack: say it again, deliver nothing.
                    debug!(status = %recorded.status, "outcome already recorded: not delivered again");
                    StatusEvent::new(&envelope.id, &envelope.commune, &envelope.form, connector, recorded.status, recorded.attempts)
                        .with_reference(recorded.reference)
                        .with_error(recorded.last_error)
                        .with_details(recorded.details)
                        .publish(&self.publisher, &self.bus.status_exchange).await?;
                    ack(delivery).await?;
                    return Ok(Handled::AlreadyRecorded {
                        commune: envelope.commune.to_string(),
                        form: envelope.form.to_string(),
                    });
                }
            }

            let started = Instant::now();
            // Read before the identity mapping takes the form data away.
            let display_id = envelope.display_id();
            let mapped = match &route.mapping {
                Some(mapping) => mapping.apply(&envelope),
                None => mapping::identity(&mut envelope),
            };
            let result = match mapped {
                // The message names the mapping file, the field and the value: the
                // operator fixes the mapping and replays.
                Err(error) => Attempt::Failed(ConnectorError::permanent(error.to_string())),
                Ok(mapped) => {
                    let ctx = Context::new(&envelope.id, &envelope.commune, &envelope.form, connector)
                        .with_attempt(attempt)
                        .with_attachments(mapped.attachments)
                        .with_numbering(self.numbering.clone())
                        .with_holding(self.holding.clone())
                        .with_span(tracing::Span::current());
                    let called = Instant::now();
                    let result = self.instance.connector.deliver(&mapped.document, &ctx).await;
                    self.metrics.target_call(called.elapsed());
                    self.observe(&result);
                    match result {
                        Ok(receipt) if receipt.held => Attempt::Held,
                        Ok(receipt) => Attempt::Delivered(receipt),
                        Err(error) => Attempt::Failed(error),
                    }
                }
            };
            let duration_ms = started.elapsed().as_millis() as u64;
            if let Attempt::Held = result {
                // Durable in the store: acked now, recorded and announced when written.
                info!(duration_ms, "held for a later batch");
                drop(slot);
                ack(delivery).await?;
                return Ok(Handled::Held {
                    commune: envelope.commune.to_string(),
                    form: envelope.form.to_string(),
                });
            }

            let mut outcome = Outcome {
                envelope_id: envelope.id.clone(),
                connector: connector.to_owned(),
                commune: envelope.commune.to_string(),
                form: envelope.form.to_string(),
                status: Status::Delivered,
                attempts: attempt,
                reference: None,
                last_error: None,
                display_id,
                details: Default::default(),
            };
            match result {
                Attempt::Delivered(receipt) => {
                    info!(duration_ms, reference = receipt.reference.as_deref().unwrap_or(""), "delivered");
                    outcome.reference = receipt.reference;
                    outcome.details = receipt.details;
                }
                Attempt::Held => {}
                Attempt::Failed(error) => {
                    let reason = error.report();
                    let mut history = aiguillage_bus::headers::errors_of(headers);
                    history.push(format!("tentative {attempt} : {reason}"));
                    outcome.last_error = Some(reason.clone());
                    outcome.status = if error.is_permanent() {
                        Status::Rejected
                    } else if attempt >= self.instance.retry.max_attempts {
                        Status::Dead
                    } else {
                        Status::Retrying
                    };
                    // The copy is confirmed before the outcome is recorded and the original
                    // acked: a crash in between duplicates the message, never loses it.
                    match outcome.status {
                        Status::Retrying => {
                            let tier = self.tier_for(attempt, error.retry_after_delay());
                            warn!(duration_ms, error = %reason, retry_in_ms = self.tiers[tier].as_millis() as u64, "transient failure: will retry");
                            self.send_to_retry(delivery, tier, attempt + 1, history).await?;
                        }
                        status => {
                            warn!(duration_ms, error = %reason, %status, "failed: sent to the dead letters");
                            self.send_to_dead_letters(delivery, status, &reason, history).await?;
                        }
                    }
                }
            }
            self.persist("record the outcome", || self.store.record(&outcome))
                .await?;
            // Given back once the outcome is durable, not before: a crash can then find at
            // most `concurrency` démarches delivered but not recorded (delivered again, with
            // the same idempotency key).
            drop(slot);
            StatusEvent::new(&envelope.id, &envelope.commune, &envelope.form, connector, outcome.status, attempt)
                .with_reference(outcome.reference)
                .with_error(outcome.last_error)
                .with_details(outcome.details)
                .publish(&self.publisher, &self.bus.status_exchange).await?;
            ack(delivery).await?;
            Ok(Handled::Outcome {
                status: outcome.status,
                since: Some(published_at(delivery, &envelope)),
                commune: outcome.commune,
                form: outcome.form,
            })
        }
        .instrument(span)
        .await
    }

    /// A message that is not a valid envelope is kept in the dead letters with the reason,
    /// and announced when its id can be read.
    async fn reject_invalid(
        &self,
        delivery: &Delivery,
        error: &EnvelopeError,
        salvage: Salvage,
        attempt: u32,
        may_be_alone: bool,
    ) -> Result<Handled, PipelineError> {
        // Several connectors may hold a copy (broad bindings): the routing key decides,
        // like the body would have, which of them keeps it.
        let key = aiguillage_bus::headers::original_routing_key(delivery);
        if let Some((commune, form)) = key.split_once('.') {
            if let Decision::NotMine { takers, .. } =
                self.router.decide(&self.instance.name, commune, form, &key)
            {
                if may_be_alone {
                    self.pass_on(delivery, &takers).await?;
                }
                debug!(routing_key = %key, "invalid envelope: another connector's copy keeps it");
                return ack(delivery).await.map(|()| Handled::NotMine);
            }
        }
        let reason = format!("enveloppe invalide : {error}");
        warn!(
            connector = %self.instance.name,
            demarche.id = salvage.id.as_deref().unwrap_or("unreadable"),
            routing_key = %delivery.routing_key,
            error = %reason,
            "rejected: sent to the dead letters"
        );
        let mut history =
            aiguillage_bus::headers::errors_of(delivery.properties.headers().as_ref());
        history.push(format!("tentative {attempt} : {reason}"));
        self.send_to_dead_letters(delivery, Status::Rejected, &reason, history)
            .await?;
        if let Some(id) = salvage.id {
            // The routing key says where the portal meant it to go when the body does not.
            let mut words = key.splitn(2, '.');
            let commune = salvage
                .commune
                .unwrap_or_else(|| words.next().unwrap_or_default().to_owned());
            let form = salvage
                .form
                .unwrap_or_else(|| words.next().unwrap_or_default().to_owned());
            StatusEvent::new(
                &id,
                &commune,
                &form,
                &self.instance.name,
                Status::Rejected,
                attempt,
            )
            .with_error(Some(reason))
            .publish(&self.publisher, &self.bus.status_exchange)
            .await?;
        }
        ack(delivery).await?;
        Ok(Handled::Outcome {
            commune: UNKNOWN.into(),
            form: UNKNOWN.into(),
            status: Status::Rejected,
            since: None,
        })
    }

    /// Feeds the breaker: a refusal proves the target is up as much as a success does.
    fn observe<T>(&self, result: &Result<T, ConnectorError>) {
        let connector = self.instance.name.as_str();
        match result {
            Err(error) if !error.is_permanent() => {
                if self.breaker.record_failure() {
                    warn!(connector, "circuit breaker open: deliveries paused until the target answers its health check");
                }
            }
            _ => {
                if self.breaker.record_success() {
                    info!(connector, "circuit breaker closed: deliveries resume");
                }
            }
        }
    }

    fn tier_for(&self, attempt: u32, asked: Option<Duration>) -> usize {
        let tier = self.instance.retry.tier_after(attempt, self.tiers.len());
        match asked {
            // The target asked for a delay: wait at least that long if a tier allows it.
            Some(after) if self.tiers[tier] < after => self
                .tiers
                .iter()
                .position(|delay| *delay >= after)
                .unwrap_or(self.tiers.len() - 1),
            _ => tier,
        }
    }

    async fn send_to_retry(
        &self,
        delivery: &Delivery,
        tier: usize,
        next_attempt: u32,
        history: Vec<String>,
    ) -> Result<(), BusError> {
        let original = delivery.properties.headers().as_ref();
        let mut updates = vec![
            (
                aiguillage_bus::headers::HEADER_ATTEMPT,
                AMQPValue::LongUInt(next_attempt),
            ),
            (
                aiguillage_bus::headers::HEADER_ERRORS,
                aiguillage_bus::headers::errors_value(history),
            ),
        ];
        if !original.is_some_and(|h| h.contains_key(aiguillage_bus::headers::HEADER_ROUTING_KEY)) {
            updates.push((
                aiguillage_bus::headers::HEADER_ROUTING_KEY,
                aiguillage_bus::publisher::long_string(delivery.routing_key.as_str()),
            ));
        }
        // Jitter: each message waits 80 to 100 % of its tier's delay, so that démarches
        // that failed together do not all come back together. (A per-message TTL only
        // shortens the queue's; at the head of a FIFO the spread costs at most 20 %.)
        let jittered = self.tiers[tier].mul_f64(rand::random_range(0.8..=1.0));
        let properties = aiguillage_bus::headers::forwarded_properties(
            &delivery.properties,
            aiguillage_bus::headers::headers_with(original, updates),
        )
        .with_expiration(aiguillage_bus::publisher::short(
            &jittered.as_millis().to_string(),
        ));
        let queue = self.bus.retry_queue(&self.instance.name, self.tiers[tier]);
        self.publisher
            .publish("", &queue, &delivery.data, properties, true)
            .await
    }

    /// Passes a copy on to the queues of the connectors whose routes take it (or, when no
    /// route does, to the unrouted démarches): it was queued here before this
    /// configuration's bindings, so they may have no copy of their own. A copy passed on
    /// [`MAX_FORWARDS`] times (instances disagreeing on the routes during a rolling
    /// restart) goes to the unrouted démarches instead of travelling on.
    async fn pass_on(&self, delivery: &Delivery, takers: &[&str]) -> Result<(), BusError> {
        let original = delivery.properties.headers().as_ref();
        let forwards =
            match original.and_then(|h| h.inner().get(aiguillage_bus::headers::HEADER_FORWARDS)) {
                Some(AMQPValue::LongUInt(n)) => *n,
                _ => 0,
            };
        if takers.is_empty() || forwards >= MAX_FORWARDS {
            return self.send_to_unrouted(delivery).await;
        }
        let routing_key = aiguillage_bus::headers::original_routing_key(delivery);
        let headers = aiguillage_bus::headers::headers_with(
            original,
            vec![
                (
                    aiguillage_bus::headers::HEADER_ROUTING_KEY,
                    aiguillage_bus::publisher::long_string(&routing_key),
                ),
                (
                    aiguillage_bus::headers::HEADER_FORWARDS,
                    AMQPValue::LongUInt(forwards + 1),
                ),
            ],
        );
        let properties =
            aiguillage_bus::headers::forwarded_properties(&delivery.properties, headers);
        for taker in takers {
            self.publisher
                .publish(
                    "",
                    &self.bus.connector_queue(taker),
                    &delivery.data,
                    properties.clone(),
                    true,
                )
                .await?;
        }
        Ok(())
    }

    /// Keeps a copy that no route takes in the unrouted démarches, under the routing key
    /// the portal published it with.
    async fn send_to_unrouted(&self, delivery: &Delivery) -> Result<(), BusError> {
        self.publisher
            .publish(
                &self.bus.unrouted_exchange(),
                &aiguillage_bus::headers::original_routing_key(delivery),
                &delivery.data,
                delivery.properties.clone(),
                true,
            )
            .await
    }

    async fn send_to_dead_letters(
        &self,
        delivery: &Delivery,
        status: Status,
        reason: &str,
        history: Vec<String>,
    ) -> Result<(), BusError> {
        let original = delivery.properties.headers().as_ref();
        let mut updates = vec![
            (
                aiguillage_bus::headers::HEADER_REASON,
                aiguillage_bus::publisher::long_string(reason),
            ),
            (
                aiguillage_bus::headers::HEADER_STATUS,
                aiguillage_bus::publisher::long_string(status.as_str()),
            ),
            (
                aiguillage_bus::headers::HEADER_CONNECTOR,
                aiguillage_bus::publisher::long_string(&self.instance.name),
            ),
            (
                aiguillage_bus::headers::HEADER_DEAD_AT,
                aiguillage_bus::publisher::long_string(&aiguillage_bus::now_text()),
            ),
            (
                aiguillage_bus::headers::HEADER_ERRORS,
                aiguillage_bus::headers::errors_value(history),
            ),
        ];
        if !original.is_some_and(|h| h.contains_key(aiguillage_bus::headers::HEADER_ROUTING_KEY)) {
            updates.push((
                aiguillage_bus::headers::HEADER_ROUTING_KEY,
                aiguillage_bus::publisher::long_string(delivery.routing_key.as_str()),
            ));
        }
        let properties = aiguillage_bus::headers::forwarded_properties(
            &delivery.properties,
            aiguillage_bus::headers::headers_with(original, updates),
        );
        let queue = self.bus.dead_queue(&self.instance.name);
        self.publisher
            .publish("", &queue, &delivery.data, properties, true)
            .await
    }
}

/// When a message was published: its AMQP `timestamp` when the publisher set one (whole
/// seconds; kept through retries and replays), else when the démarche was submitted.
fn published_at(delivery: &Delivery, envelope: &Envelope) -> OffsetDateTime {
    delivery
        .properties
        .timestamp()
        .filter(|seconds| *seconds > 0)
        .and_then(|seconds| i64::try_from(seconds).ok())
        .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
        .unwrap_or(envelope.submitted_at)
}

async fn ack(delivery: &Delivery) -> Result<(), PipelineError> {
    delivery
        .acker
        .ack(BasicAckOptions::default())
        .await
        .map(|_| ())
        .map_err(PipelineError::Ack)
}

/// How long a health probe may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(30);

/// Consumes one connector's queue until `stop` turns true or the channel fails.
///
/// Up to `concurrency` messages are handled at once; on stop, consuming is cancelled and
/// the messages in flight get `grace` to finish (what does not finish is redelivered).
///
/// # Errors
///
/// A message when the channel or a pipeline fails (the session restarts), or on
/// declaration errors at start.
pub async fn consume(
    pipeline: Arc<Pipeline>,
    channel: Channel,
    mut fence: Fence,
    prefetch: u16,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) -> Result<(), String> {
    let name = pipeline.instance.name.clone();
    let queue = pipeline.bus.connector_queue(&name);
    let concurrency = pipeline.instance.concurrency;
    let prefetch = prefetch.max(u16::try_from(concurrency).unwrap_or(u16::MAX));
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(|e| format!("connecteur `{name}` : impossible de régler le prefetch : {e}"))?;
    let tag = format!("aiguillage-{name}-{}", std::process::id());
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            aiguillage_bus::publisher::short(&tag),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("connecteur `{name}` : impossible de consommer `{queue}` : {e}"))?;
    info!(connector = %name, %queue, concurrency, prefetch, "consuming");

    let slots = Arc::new(Semaphore::new(concurrency));
    let mut in_flight: JoinSet<Result<(), PipelineError>> = JoinSet::new();
    // A delivery taken from the consumer while the breaker opened: held, not lost.
    let mut held: Option<(Delivery, bool)> = None;
    let breaker = pipeline.breaker.clone();
    let failure: Option<String> = 'consume: loop {
        // The breaker gates what is taken: open, probe until the target answers; half-open,
        // one delivery at a time until its result closes or reopens it.
        match breaker.state() {
            BreakerState::Open => {
                let mut probe = 0u32;
                loop {
                    // A failed handler means the bus or the store is gone: restart the session.
                    tokio::select! {
                        biased;
                        _ = stop.changed() => break 'consume None,
                        Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                            if let Some(error) = handler_failure(joined) {
                                break 'consume Some(format!("connecteur `{name}` : {error}"));
                            }
                            continue;
                        }
                        _ = tokio::time::sleep(breaker.probe_delay(probe)) => {}
                    }
                    let health =
                        tokio::time::timeout(HEALTH_TIMEOUT, pipeline.instance.connector.health())
                            .await;
                    match health {
                        Ok(Ok(())) => break,
                        Ok(Err(error)) => {
                            info!(connector = %name, probe, error = %error.report(), "health probe failed: deliveries stay paused")
                        }
                        Err(_) => {
                            info!(connector = %name, probe, "health probe timed out: deliveries stay paused")
                        }
                    }
                    probe = probe.saturating_add(1);
                }
                info!(connector = %name, "target answers its health check: trying one delivery");
                breaker.half_open();
                continue;
            }
            BreakerState::HalfOpen if !in_flight.is_empty() => {
                tokio::select! {
                    biased;
                    _ = stop.changed() => break None,
                    Some(joined) = in_flight.join_next() => {
                        if let Some(error) = handler_failure(joined) {
                            break Some(format!("connecteur `{name}` : {error}"));
                        }
                    }
                }
                continue;
            }
            _ => {}
        }

        let permit = tokio::select! {
            biased;
            _ = stop.changed() => break None,
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                match handler_failure(joined) {
                    Some(error) => break Some(format!("connecteur `{name}` : {error}")),
                    None => continue,
                }
            }
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break Some("le sémaphore des livraisons est fermé".into()),
            },
        };
        let (delivery, before_fence) = match held.take() {
            Some(held) => held,
            None => {
                let delivery = tokio::select! {
                    biased;
                    _ = stop.changed() => break None,
                    next = consumer.next() => match next {
                        Some(Ok(delivery)) => delivery,
                        Some(Err(error)) => break Some(format!("connecteur `{name}` : le consommateur a échoué : {error}")),
                        None => break Some(format!("connecteur `{name}` : le broker a annulé le consommateur")),
                    },
                };
                // Classified in the order received: the fence is a place in the queue.
                match fence.see(&delivery) {
                    Seen::Demarche { before_fence } => (delivery, before_fence),
                    Seen::OwnMarker => {
                        debug!(connector = %name, "fence reached: every copy from here on was queued under this configuration");
                        if let Err(error) = ack(&delivery).await {
                            break Some(format!("connecteur `{name}` : {error}"));
                        }
                        continue;
                    }
                    Seen::OtherMarker => {
                        let settled = match fence.put_back(&pipeline.publisher, &delivery).await {
                            Ok(_) => ack(&delivery).await.map_err(|e| e.to_string()),
                            Err(error) => Err(error.to_string()),
                        };
                        if let Err(error) = settled {
                            break Some(format!("connecteur `{name}` : {error}"));
                        }
                        continue;
                    }
                }
            }
        };
        if breaker.state() == BreakerState::Open {
            held = Some((delivery, before_fence));
            continue;
        }
        let pipeline = pipeline.clone();
        let counted = pipeline.metrics.in_flight();
        in_flight.spawn(async move {
            let result = pipeline.handle(&delivery, permit, before_fence).await;
            drop(counted);
            result
        });
    };

    if let Some(error) = failure {
        in_flight.abort_all();
        return Err(error);
    }
    // Graceful stop: take nothing more, let what is in flight finish and be acked.
    let _ = channel
        .basic_cancel(
            aiguillage_bus::publisher::short(&tag),
            BasicCancelOptions::default(),
        )
        .await;
    let drained = tokio::time::timeout(grace, async {
        while let Some(joined) = in_flight.join_next().await {
            if let Some(error) = handler_failure(joined) {
                warn!(connector = %name, %error, "a delivery failed during shutdown: it will be redelivered");
            }
        }
    })
    .await;
    if drained.is_err() {
        warn!(connector = %name, left = in_flight.len(), "grace period over: unfinished deliveries will be redelivered");
        in_flight.abort_all();
    }
    // Closed here rather than when dropped: a close racing the connection's own close
    // makes the client log a spurious connection error.
    let _ = channel.close(200, "stopping".into()).await;
    let _ = pipeline
        .publisher
        .channel()
        .close(200, "stopping".into())
        .await;
    Ok(())
}

fn handler_failure(
    joined: Result<Result<(), PipelineError>, tokio::task::JoinError>,
) -> Option<String> {
    match joined {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error.to_string()),
        Err(error) if error.is_cancelled() => None,
        Err(error) => Some(format!("une tâche de livraison a paniqué : {error}")),
    }
}
