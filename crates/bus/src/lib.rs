//! The bus contract of Aiguillage (`docs/bus-contract.md`) and the domain types every
//! other crate may use; it imports nothing of the gateway.
//!
//! - [`ids`]: the commune's INSEE code and the form's slug, as validated types;
//! - [`envelope`]: what the portal publishes for each démarche, and why one is refused;
//! - [`status`]: the outcome words and the status event (one builder for all of them);
//! - [`config`]: the `[bus]` section (connection and topology names) and a configuration
//!   problem, the leaf configuration types the gateway and the Publik bridge share;
//! - [`topology`]: the exchanges and queues every party declares alike;
//! - [`publisher`]: the connection and the publisher that waits for the broker's confirms;
//! - [`headers`]: the AMQP headers of a message sent on, and [`Republish`] which writes them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod envelope;
pub mod headers;
pub mod ids;
pub mod publisher;
pub mod status;
pub mod topology;

pub use config::{compact_duration, redact_url, BusConfig, Problem};
pub use envelope::{Envelope, EnvelopeError};
pub use headers::Republish;
pub use ids::{is_form_slug, is_insee_code, FormSlug, InseeCode};
pub use publisher::{BusError, Publisher};
pub use status::{format_utc, now_text, Status, StatusEvent, UnknownStatus};
