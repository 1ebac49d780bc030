//! Aiguillage, the gateway: consumes démarches from the bus and delivers each one,
//! effectively once, through the connector its route names.
//!
//! The bus contract (envelope, status events, headers, the confirmed publisher) is the
//! `aiguillage-bus` crate and the Publik bridge the `aiguillage-publik` crate; the binary,
//! its command line and the built-in connector list are the `aiguillage` crate. This
//! library is everything in between, so that tests can start a gateway in-process with
//! [`service::start`]. Folders by responsibility, bottom to top:
//!
//! - [`config`]: the TOML file, every key overridable by the environment;
//! - [`mapping`] and [`routing`]: which connector takes a démarche, and what it receives;
//! - [`store`]: the durable record of outcomes (effectively-once);
//! - [`bus`]: the gateway's queues and bindings on top of the contract's topology;
//! - [`pipeline`]: the delivery of one message and what keeps it safe (fence, breaker,
//!   holding and flusher, numbering);
//! - [`operator`]: dead letters, unrouted démarches, history and the operator's actions;
//! - [`admin`]: health, readiness, metrics, the JSON API and the dashboard over HTTP;
//! - [`service`]: the supervisor that keeps it all running, with [`systemd`] and
//!   [`telemetry`];
//! - [`registry`]: the connector kinds a build knows.
#![forbid(unsafe_code)]

pub mod admin;
pub mod bus;
pub mod config;
pub mod mapping;
pub mod operator;
pub mod pipeline;
pub mod registry;
pub mod routing;
pub mod service;
pub mod store;
pub mod systemd;
pub mod telemetry;
