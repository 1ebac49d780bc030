//! Metrics, served in the Prometheus text format on the admin server's `/metrics`
//! (docs/operations.md lists each one, with its labels and when it changes).
//!
//! Design: **one recorder per gateway instance, no global.** [`Metrics`] owns a
//! `PrometheusRecorder` and is passed explicitly to whoever records (the pipelines, the
//! supervisor, the admin server), which call the recorder's `register_*` methods rather
//! than the `metrics::counter!` macros. The macros need a process-wide recorder, and
//! `metrics::with_local_recorder` only covers synchronous code, while a delivery awaits
//! across threads. So several gateways in one process (the end-to-end tests start them
//! in-process) each count their own démarches, and nothing is installed globally.
//!
//! Labels have bounded values only: `connector` (from the configuration), `commune` (an
//! INSEE code, checked), `form` (a slug, checked, that a route takes), `outcome` and
//! `queue` (fixed words). Never an envelope id or a message.

use std::sync::Arc;
use std::time::Duration;

use ::metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit,
};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::pipeline::breaker::BreakerState;
use aiguillage_bus::Status;

/// Counter: messages a connector handled (each attempt, each redelivery).
pub const RECEIVED: &str = "aiguillage_messages_received_total";
/// Counter: outcomes recorded, by `outcome` (`delivered`, `retrying`, `rejected`, `dead`).
pub const MESSAGES: &str = "aiguillage_messages_total";
/// Histogram: publish (or submission) time → delivered, per connector.
pub const DELIVERY_LATENCY: &str = "aiguillage_delivery_latency_seconds";
/// Histogram: duration of the connector's call to the target, per connector.
pub const TARGET_CALL: &str = "aiguillage_target_call_seconds";
/// Gauge: deliveries being handled now, per connector.
pub const IN_FLIGHT: &str = "aiguillage_in_flight";
/// Gauge: the circuit breaker's state, per connector (0 closed, 1 half-open, 2 open).
pub const BREAKER_STATE: &str = "aiguillage_breaker_state";
/// Counter: times a connector's breaker opened.
pub const BREAKER_OPENED: &str = "aiguillage_breaker_opened_total";
/// Gauge: messages ready in a connector's queue (`queue="main"`) or dead letters (`"dead"`).
pub const QUEUE_MESSAGES: &str = "aiguillage_queue_messages";
/// Gauge: démarches waiting in the unrouted queue (no route takes them).
pub const UNROUTED_MESSAGES: &str = "aiguillage_unrouted_messages";
/// Counter: times the bus session failed and the gateway started to reconnect.
pub const BUS_RECONNECTS: &str = "aiguillage_bus_reconnects_total";
/// Gauge: always 1, labelled with the gateway's `version`.
pub const BUILD_INFO: &str = "aiguillage_build_info";
/// Counter: webhooks the Publik intake answered, by `result` (`accepted`, `forbidden`,
/// `invalid`, `unavailable`).
pub const PUBLIK_WEBHOOKS: &str = "aiguillage_publik_webhooks_total";
/// Counter: status events the Publik notifier handled, by `portal` and `result` (`sent`,
/// `skipped`, `retried`, `refused`).
pub const PUBLIK_NOTIFICATIONS: &str = "aiguillage_publik_notifications_total";

/// Every metric the gateway exposes (the documentation lists the same).
pub const ALL: [&str; 13] = [
    RECEIVED,
    MESSAGES,
    DELIVERY_LATENCY,
    TARGET_CALL,
    IN_FLIGHT,
    BREAKER_STATE,
    BREAKER_OPENED,
    QUEUE_MESSAGES,
    UNROUTED_MESSAGES,
    BUS_RECONNECTS,
    BUILD_INFO,
    PUBLIK_WEBHOOKS,
    PUBLIK_NOTIFICATIONS,
];

/// Buckets of the target call, in seconds: 5 ms to the longest sensible timeout.
const TARGET_CALL_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Buckets of the delivery latency, in seconds: 100 ms to 3 days (retries last ~22 h by
/// default, and a démarche may wait in the dead letters until it is replayed).
const DELIVERY_LATENCY_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0, 43_200.0, 86_400.0,
    259_200.0,
];

const METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// Which queue of a connector a depth is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    /// The connector's queue: démarches waiting to be delivered.
    Main,
    /// Its dead letters.
    Dead,
}

impl QueueKind {
    /// The `queue` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Main => "main",
            Self::Dead => "dead",
        }
    }
}

/// The metrics of one gateway instance (cheap to clone: shared).
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl Metrics {
    /// A fresh set for a gateway with these connectors: their gauges, breaker counters and
    /// histograms start at zero, so that `/metrics` shows every connector from the start.
    pub fn new<'a>(connectors: impl IntoIterator<Item = &'a str>) -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(TARGET_CALL.into()), TARGET_CALL_BUCKETS)
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full(DELIVERY_LATENCY.into()),
                    DELIVERY_LATENCY_BUCKETS,
                )
            })
            .expect("the bucket lists are constant and not empty")
            .build_recorder();
        let handle = recorder.handle();
        let metrics = Self {
            recorder: Arc::new(recorder),
            handle,
        };
        metrics.describe();
        metrics
            .gauge(
                BUILD_INFO,
                vec![label("version", env!("CARGO_PKG_VERSION"))],
            )
            .set(1.0);
        metrics.counter(BUS_RECONNECTS, Vec::new()).absolute(0);
        for connector in connectors {
            let _ = metrics.connector(connector);
            metrics.breaker(connector, BreakerState::Closed, 0);
        }
        metrics
    }

    fn describe(&self) {
        let r = &self.recorder;
        let text = |t: &'static str| SharedString::from(t);
        r.describe_counter(
            KeyName::from(RECEIVED),
            None,
            text("Messages a connector handled: each attempt and each redelivery counts."),
        );
        r.describe_counter(
            KeyName::from(MESSAGES),
            None,
            text("Outcomes recorded: delivered, retrying, rejected or dead."),
        );
        r.describe_histogram(
            KeyName::from(DELIVERY_LATENCY),
            Some(Unit::Seconds),
            text("From the AMQP timestamp of the message (else the envelope's submitted_at) to its delivery."),
        );
        r.describe_histogram(
            KeyName::from(TARGET_CALL),
            Some(Unit::Seconds),
            text("Duration of a connector's call to its target."),
        );
        r.describe_gauge(
            KeyName::from(IN_FLIGHT),
            None,
            text("Deliveries being handled now."),
        );
        r.describe_gauge(
            KeyName::from(BREAKER_STATE),
            None,
            text("Circuit breaker: 0 closed, 1 half-open, 2 open (deliveries paused)."),
        );
        r.describe_counter(
            KeyName::from(BREAKER_OPENED),
            None,
            text("Times the circuit breaker opened since the gateway started."),
        );
        r.describe_gauge(
            KeyName::from(QUEUE_MESSAGES),
            None,
            text("Messages ready in a connector's queue (main) or dead letters (dead), read every admin.queue_depth_interval while connected."),
        );
        r.describe_gauge(
            KeyName::from(UNROUTED_MESSAGES),
            None,
            text("Démarches waiting in the unrouted queue (no route takes them), read every admin.queue_depth_interval while connected."),
        );
        r.describe_counter(
            KeyName::from(BUS_RECONNECTS),
            None,
            text("Times the bus session failed and the gateway started to reconnect."),
        );
        r.describe_counter(
            KeyName::from(PUBLIK_WEBHOOKS),
            None,
            text("Webhooks the Publik intake answered: accepted (202, on the bus), forbidden (signature), invalid (400), unavailable (503)."),
        );
        r.describe_counter(
            KeyName::from(PUBLIK_NOTIFICATIONS),
            None,
            text("Status events the Publik notifier handled: sent to the portal, skipped (no trigger), retried (portal unavailable), refused (to its dead letters)."),
        );
        r.describe_gauge(
            KeyName::from(BUILD_INFO),
            None,
            text("Always 1; the version label says which gateway runs."),
        );
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    fn gauge(&self, name: &'static str, labels: Vec<Label>) -> Gauge {
        self.recorder
            .register_gauge(&Key::from_parts(name, labels), &METADATA)
    }

    fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        self.recorder
            .register_histogram(&Key::from_parts(name, labels), &METADATA)
    }

    /// The handles of one connector.
    pub fn connector(&self, name: &str) -> ConnectorMetrics {
        let by_connector = || vec![label("connector", name)];
        ConnectorMetrics {
            metrics: self.clone(),
            name: SharedString::from(name.to_owned()),
            in_flight: self.gauge(IN_FLIGHT, by_connector()),
            target_call: self.histogram(TARGET_CALL, by_connector()),
            delivery_latency: self.histogram(DELIVERY_LATENCY, by_connector()),
        }
    }

    /// The Publik intake answered a webhook with `result`.
    pub fn publik_webhook(&self, result: &'static str) {
        self.counter(PUBLIK_WEBHOOKS, vec![label("result", result)])
            .increment(1);
    }

    /// The Publik notifier handled a status event for `portal` with `result`.
    pub fn publik_notification(&self, portal: &str, result: &'static str) {
        self.counter(
            PUBLIK_NOTIFICATIONS,
            vec![label("portal", portal), label("result", result)],
        )
        .increment(1);
    }

    /// The bus session failed and a new one starts.
    pub fn bus_reconnecting(&self) {
        self.counter(BUS_RECONNECTS, Vec::new()).increment(1);
    }

    /// Messages ready in a queue of `connector`, as the broker just said.
    pub fn queue_depth(&self, connector: &str, queue: QueueKind, messages: u32) {
        self.gauge(
            QUEUE_MESSAGES,
            vec![
                label("connector", connector),
                label("queue", queue.as_str()),
            ],
        )
        .set(f64::from(messages));
    }

    /// Démarches in the unrouted queue, as the broker just said.
    pub fn unrouted_depth(&self, messages: u32) {
        self.gauge(UNROUTED_MESSAGES, Vec::new())
            .set(f64::from(messages));
    }

    /// The state of `connector`'s breaker and how many times it opened.
    pub fn breaker(&self, connector: &str, state: BreakerState, opened: u64) {
        let value = match state {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        };
        self.gauge(BREAKER_STATE, vec![label("connector", connector)])
            .set(value);
        self.counter(BREAKER_OPENED, vec![label("connector", connector)])
            .absolute(opened);
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Folds the recorded histogram samples into their buckets (they accumulate until a
    /// render or this): call it every few seconds even when nobody scrapes.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// The metrics of one connector, with its per-connector handles kept.
#[derive(Clone)]
pub struct ConnectorMetrics {
    metrics: Metrics,
    name: SharedString,
    in_flight: Gauge,
    target_call: Histogram,
    delivery_latency: Histogram,
}

impl ConnectorMetrics {
    fn labels(&self, commune: &str, form: &str) -> Vec<Label> {
        vec![
            label("commune", commune),
            label("form", form),
            Label::new("connector", self.name.clone()),
        ]
    }

    /// A message of `commune` and `form` was handled by this connector.
    pub fn received(&self, commune: &str, form: &str) {
        self.metrics
            .counter(RECEIVED, self.labels(commune, form))
            .increment(1);
    }

    /// An outcome was recorded for a message of `commune` and `form`.
    pub fn outcome(&self, commune: &str, form: &str, status: Status) {
        let mut labels = self.labels(commune, form);
        labels.push(label("outcome", status.as_str()));
        self.metrics.counter(MESSAGES, labels).increment(1);
    }

    /// A démarche was delivered `latency` after it was published (or submitted).
    pub fn delivered_after(&self, latency: Duration) {
        self.delivery_latency.record(latency.as_secs_f64());
    }

    /// The connector's call to its target took `duration`.
    pub fn target_call(&self, duration: Duration) {
        self.target_call.record(duration.as_secs_f64());
    }

    /// Counts a delivery in flight until the returned guard is dropped (also when its
    /// task is aborted).
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.increment(1.0);
        InFlight(self.in_flight.clone())
    }
}

/// A delivery in flight, counted until dropped.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

fn label(key: &'static str, value: &str) -> Label {
    Label::new(key, value.to_owned())
}

/// The Publik bridge counts through the gateway's metrics.
impl aiguillage_publik::PublikMetrics for Metrics {
    fn publik_webhook(&self, result: &'static str) {
        Metrics::publik_webhook(self, result);
    }

    fn publik_notification(&self, portal: &str, result: &'static str) {
        Metrics::publik_notification(self, portal, result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_rendered_once_recorded() {
        let metrics = Metrics::new(["famille"]);
        let famille = metrics.connector("famille");
        famille.received("44043", "inscription-cantine");
        famille.outcome("44043", "inscription-cantine", Status::Delivered);
        famille.delivered_after(Duration::from_millis(1500));
        famille.target_call(Duration::from_millis(20));
        metrics.queue_depth("famille", QueueKind::Dead, 3);
        metrics.unrouted_depth(2);
        metrics.publik_webhook("accepted");
        metrics.publik_notification("csm", "sent");
        let text = metrics.render();
        for name in ALL {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} missing:\n{text}"
            );
        }
        assert!(text.contains(
            r#"aiguillage_messages_total{commune="44043",form="inscription-cantine",connector="famille",outcome="delivered"} 1"#
        ), "{text}");
        assert!(
            text.contains(r#"aiguillage_queue_messages{connector="famille",queue="dead"} 3"#),
            "{text}"
        );
        assert!(
            text.contains("\naiguillage_unrouted_messages 2\n"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"aiguillage_delivery_latency_seconds_bucket{connector="famille",le="2.5"} 1"#
            ),
            "{text}"
        );
    }

    #[test]
    fn instances_do_not_share_their_counts() {
        let one = Metrics::new(["a"]);
        let two = Metrics::new(["a"]);
        one.connector("a").received("44043", "f");
        assert!(one.render().contains("aiguillage_messages_received_total"));
        assert!(!two.render().contains("aiguillage_messages_received_total{"));
    }

    #[test]
    fn in_flight_counts_until_dropped() {
        let metrics = Metrics::new(["a"]);
        let a = metrics.connector("a");
        let first = a.in_flight();
        let second = a.in_flight();
        assert!(metrics
            .render()
            .contains(r#"aiguillage_in_flight{connector="a"} 2"#));
        drop(first);
        drop(second);
        assert!(metrics
            .render()
            .contains(r#"aiguillage_in_flight{connector="a"} 0"#));
    }

    #[test]
    fn breaker_state_is_a_number() {
        let metrics = Metrics::new(["a"]);
        metrics.breaker("a", BreakerState::Open, 3);
        let text = metrics.render();
        assert!(
            text.contains(r#"aiguillage_breaker_state{connector="a"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"aiguillage_breaker_opened_total{connector="a"} 3"#),
            "{text}"
        );
    }
}
