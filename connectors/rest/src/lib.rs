//! The `rest` connector of Aiguillage: delivers each démarche as a JSON body to an HTTP
//! API.
//!
//! Each delivery is one request (`POST` by default) to the configured `url`, whose body
//! is the document and whose headers carry:
//! - `Idempotency-Key`: the envelope id, the same on every redelivery, so that the target
//!   can apply the démarche once;
//! - `X-Aiguillage-Commune`, `X-Aiguillage-Form`, `X-Aiguillage-Attempt`: the commune's
//!   INSEE code, the form slug and the attempt number (1 for the first);
//! - `Content-Type: application/json`, the extra `headers` of the configuration, and the
//!   credentials of `auth` (basic, bearer, API key, or an OAuth 2.0 client-credentials
//!   token shared by all deliveries and renewed before it expires or when the target
//!   answers 401).
//!
//! How the target's answer decides the démarche's fate:
//!
//! | answer | outcome |
//! |---|---|
//! | 2xx | delivered, with a reference read at `reference_pointer` in the JSON answer |
//! | 408, 429, 5xx | transient, retried (after `Retry-After` when the target gives one) |
//! | timeout, connection error | transient |
//! | 3xx, other 4xx | permanent, with the status and the start of the answer |
//!
//! The configuration is [`RestConfig`]; register the kind with
//! `ConnectorKind::of::<RestConfig>()`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod auth;
mod config;
mod connector;

pub use config::{AuthConfig, Method, RestConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};
pub use connector::RestConnector;
