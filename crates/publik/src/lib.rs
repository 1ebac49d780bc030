//! Publik, the portal: the loop between w.c.s. (its form engine) and the bus.
//!
//! - [`signature`]: Publik's signed URLs, as w.c.s. makes and checks them;
//! - [`intake`]: `POST /intake`, where a w.c.s. webhook action sends a démarche, put on
//!   the bus as an envelope with a publisher confirm before it is acknowledged;
//! - [`notifier`]: the status events sent back to w.c.s. as workflow jump triggers;
//! - [`config`]: the `[publik]` section of the configuration.
//!
//! The portal's side is documented for its administrators in `docs/publik.md`.
//!
//! The bridge depends on the bus contract (`aiguillage-bus`), not on the gateway: what it
//! needs of the host, its metrics and the record of the statuses sent, comes in as the
//! [`PublikMetrics`] and [`NotificationLog`] traits, which the gateway implements.
#![forbid(unsafe_code)]

use std::sync::Arc;

pub mod config;
pub mod intake;
pub mod notifier;
pub mod signature;

/// What the bridge counts, for the host's metrics.
pub trait PublikMetrics: Send + Sync {
    /// The intake answered a w.c.s. webhook with `result`.
    fn publik_webhook(&self, result: &'static str);
    /// The notifier handled a status event for `portal` with `result`.
    fn publik_notification(&self, portal: &str, result: &'static str);
}

/// The host's metrics, shared by the intake and the notifiers.
pub type Metrics = Arc<dyn PublikMetrics>;

/// A failure of the host's record (the store), told as it is.
pub type LogError = Box<dyn std::error::Error + Send + Sync>;

/// The notifier's durable record of the statuses each portal took, so that a second
/// call's 404 is known for what it is.
#[async_trait::async_trait]
pub trait NotificationLog: Send + Sync {
    /// Records that `portal` took `status` of the démarche `envelope_id` with `connector`.
    async fn record_notification(
        &self,
        envelope_id: &str,
        connector: &str,
        status: &str,
        portal: &str,
    ) -> Result<(), LogError>;

    /// When that status was taken, if it was.
    async fn notification_sent_at(
        &self,
        envelope_id: &str,
        connector: &str,
        status: &str,
    ) -> Result<Option<String>, LogError>;
}

/// The host's record of the statuses sent.
pub type SentStatuses = Arc<dyn NotificationLog>;
