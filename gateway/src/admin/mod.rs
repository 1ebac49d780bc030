//! The admin HTTP server, for the operator and the supervision (docs/operations.md):
//!
//! - `GET /healthz`: 200 `ok` while the process runs;
//! - `GET /readyz`: 200 `ok` when the bus session is ready (connected, topology declared,
//!   every connector consuming) and the store answers; 503 otherwise, one reason a line
//!   (`bus: …`, `store: …`);
//! - `GET /metrics`: the metrics in the Prometheus text format;
//! - the JSON admin API under `/api/` ([`crate::admin::api`]);
//! - the dashboard, for people, at `/` ([`crate::admin::dashboard`]).
//!
//! With `admin.token` (or `admin.token_file`) set, every route but `/healthz` and the
//! login form (`/login`) requires `Authorization: Bearer <token>`, compared in constant
//! time, or the session cookie that the login form sets for a browser; 401 otherwise.
//!
//! Before that, token or none, every route answers only to its own host names (421
//! otherwise) and refuses a state-changing request from a page of another origin (403),
//! and the login form refuses repeated failures (429): [`crate::admin::guard`].

//!
//! [`server`] binds and routes; [`state`] is what every handler reads; [`api`] and
//! [`dashboard`] are the two faces over the same [`crate::operator`] actions; [`guard`]
//! checks hosts, origins and login attempts; [`metrics`] counts.

pub mod api;
pub mod dashboard;
pub mod guard;
pub mod metrics;
pub mod server;
pub mod state;
