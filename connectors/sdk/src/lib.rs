//! The connector SDK of Aiguillage.
//!
//! A connector delivers one mapped démarche into a business software (état civil,
//! urbanisme, facturation, or anything with an API or an import directory). The gateway
//! owns everything around it: consuming the bus, routing, mapping, retries, dead letters,
//! the store and status events. A connector only answers one question per call: *did the
//! target accept this document?*, with a [`Receipt`] or a [`ConnectorError`] that says
//! whether trying again can help.
//!
//! A connector crate depends on this crate only. It provides:
//! - a configuration type implementing [`ConnectorConfig`] (serde, read from the
//!   connector's `[[connectors]]` table of the gateway configuration), which is also the
//!   factory of the connector;
//! - a type implementing [`Connector`].
//!
//! ```
//! use std::sync::Arc;
//! use aiguillage_connector::{
//!     async_trait, ConfigError, Connector, ConnectorConfig, ConnectorError, Context,
//!     Document, Receipt, Setup,
//! };
//!
//! /// Configuration of the `null` connector: accepts everything.
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct NullConfig {
//!     /// Reference returned for every démarche.
//!     reference: String,
//! }
//!
//! struct NullConnector {
//!     reference: String,
//! }
//!
//! impl ConnectorConfig for NullConfig {
//!     const KIND: &'static str = "null";
//!
//!     fn build(self, _setup: &Setup) -> Result<Arc<dyn Connector>, ConfigError> {
//!         Ok(Arc::new(NullConnector { reference: self.reference }))
//!     }
//! }
//!
//! #[async_trait]
//! impl Connector for NullConnector {
//!     async fn deliver(&self, _doc: &Document, ctx: &Context) -> Result<Receipt, ConnectorError> {
//!         Ok(Receipt::with_reference(format!("{}-{}", self.reference, ctx.envelope_id())))
//!     }
//! }
//! ```
//!
//! # Core and building blocks
//!
//! Without features this crate is the **core**, all a connector author needs: the
//! [`Connector`] trait, [`Context`] (with [`Attachment`]), [`Receipt`], [`ConnectorError`],
//! the configuration ([`ConnectorConfig`], [`ConnectorKind`], [`Setup`], [`ConfigError`],
//! and [`secret`] for the secrets it reads) and [`reason`] (serde's refusals in French).
//!
//! Everything else is a **building block**, opt-in by a Cargo feature of the same name:
//! `files` (`transport`: local or SFTP import directories; `name`: safe file names),
//! `mail` (SMTP), `xml` (`xml` and `charset`), `http` (API clients), `numbering` (durable
//! sequences, `Context::numbering`), `batching` (`holding`: deliveries held and written
//! later in batches, through the `holding::Batching` extension returned by
//! `Connector::batching`), `siret` (the SIRET check) and `testkit` (the conformance kit).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "xml")]
pub mod charset;
mod config;
mod context;
mod error;
#[cfg(feature = "batching")]
pub mod holding;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "mail")]
pub mod mail;
#[cfg(feature = "files")]
pub mod name;
#[cfg(feature = "numbering")]
pub mod numbering;
pub mod reason;
pub mod secret;
#[cfg(feature = "siret")]
pub mod siret;
#[cfg(feature = "testkit")]
pub mod testkit;
#[cfg(feature = "files")]
pub mod transport;
#[cfg(feature = "xml")]
pub mod xml;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use async_trait::async_trait;
pub use config::{ConfigError, ConnectorConfig, ConnectorKind, Setup};
pub use context::{Attachment, Context};
pub use error::{BoxError, ConnectorError};

/// The document a connector delivers: the envelope after its route's mapping.
///
/// Without a mapping it is the whole envelope (`id`, `commune`, `form`, `submitted_at`,
/// `formdata`) as JSON.
pub type Document = serde_json::Value;

/// Delivers mapped démarches into one target (one instance per `[[connectors]]` entry).
///
/// The gateway holds connectors as `Arc<dyn Connector>` and calls [`Connector::deliver`]
/// concurrently (up to the connector's `concurrency`), so implementations share their
/// clients and keep per-call state on the stack.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// Delivers one document to the target.
    ///
    /// The same envelope may be delivered more than once (after a crash, a lost ack or a
    /// retry): pass [`Context::idempotency_key`] to the target wherever it supports one
    /// (an `Idempotency-Key` header, a file name, an external reference) so that the
    /// target applies it once.
    ///
    /// # Errors
    ///
    /// A [`ConnectorError`] whose variant decides what the gateway does next:
    /// [`ConnectorError::Transient`] and [`ConnectorError::RetryAfter`] are retried,
    /// [`ConnectorError::Permanent`] goes to the dead letters at once.
    async fn deliver(&self, document: &Document, ctx: &Context) -> Result<Receipt, ConnectorError>;

    /// Tells whether the target is reachable, without delivering anything.
    ///
    /// The gateway calls it to probe a target that failed (before resuming deliveries)
    /// and for its readiness report. The default says healthy.
    ///
    /// # Errors
    ///
    /// A [`ConnectorError`] describing why the target cannot be reached.
    async fn health(&self) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Checks `document` as [`Connector::deliver`] would before writing anything (its
    /// shape, the target's own rules such as who may obtain a copie intégrale), without
    /// delivering it, taking a number or touching the target. `aiguillage map --config …
    /// --connector …` calls it, so that a commune writing its mapping sees the refusal
    /// there rather than at delivery. The default accepts every document.
    ///
    /// # Errors
    ///
    /// The permanent [`ConnectorError`] that [`Connector::deliver`] would return for it.
    fn check(&self, _document: &Document, _ctx: &Context) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// The batching extension of a connector that holds deliveries ([`Receipt::held`]) to
    /// write them later in batches; the default, `None`, for one that delivers each
    /// démarche at once. The gateway asks once when it starts, and then calls the
    /// extension's [`flush`](holding::Batching::flush) every
    /// [`flush_every`](holding::Batching::flush_every).
    #[cfg(feature = "batching")]
    fn batching(&self) -> Option<&dyn holding::Batching> {
        None
    }
}

#[async_trait]
impl<C: Connector + ?Sized> Connector for Arc<C> {
    async fn deliver(&self, document: &Document, ctx: &Context) -> Result<Receipt, ConnectorError> {
        (**self).deliver(document, ctx).await
    }

    async fn health(&self) -> Result<(), ConnectorError> {
        (**self).health().await
    }

    fn check(&self, document: &Document, ctx: &Context) -> Result<(), ConnectorError> {
        (**self).check(document, ctx)
    }

    #[cfg(feature = "batching")]
    fn batching(&self) -> Option<&dyn holding::Batching> {
        (**self).batching()
    }
}

/// What the target said when it accepted a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Receipt {
    /// The target's own identifier for what it created (a request number, a file name),
    /// reported in the `delivered` status event; `None` when it gives none.
    pub reference: Option<String>,
    /// The document is held durably ([`holding`]) to be written later in a batch: the
    /// gateway acknowledges the message but records and announces nothing yet; the flush
    /// that writes the batch does ([`holding::Batching::flush`]).
    #[cfg(feature = "batching")]
    pub held: bool,
    /// Facts about the delivery that the portal needs beyond the reference, reported in the
    /// `delivered` status event's `details` object (for example the dossier identifier and
    /// the deposit date of an urbanisme application, from which the portal sends the
    /// citizen's electronic receipt). Keys are short `snake_case` words; empty by default,
    /// and then the event has no `details`.
    pub details: BTreeMap<String, String>,
}

impl Receipt {
    /// A receipt without a reference.
    pub fn new() -> Self {
        Self::default()
    }

    /// A receipt carrying the target's reference.
    pub fn with_reference(reference: impl Into<String>) -> Self {
        Self {
            reference: Some(reference.into()),
            ..Self::default()
        }
    }

    /// The receipt of a document held for a later batch (see [`Receipt::held`]).
    #[cfg(feature = "batching")]
    pub fn held() -> Self {
        Self {
            held: true,
            ..Self::default()
        }
    }

    /// Adds one of the [`Receipt::details`] (a later value for the same key replaces it).
    ///
    /// ```
    /// use aiguillage_connector::Receipt;
    ///
    /// let receipt = Receipt::with_reference("44043-DP-3f9a1c0b7e2d")
    ///     .with_detail("date_depot", "2026-11-27T14:31:09+01:00");
    /// assert_eq!(receipt.details["date_depot"], "2026-11-27T14:31:09+01:00");
    /// ```
    #[must_use]
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }
}
