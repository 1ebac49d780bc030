//! Aiguillage, the gateway: consumes démarches from the bus and delivers each one,
//! effectively once, through the connector its route names.
//!
//! `main.rs` only parses the command line ([`cli`]); everything else is here so that
//! tests can start a gateway in-process with [`service::start`].
//!
//! Modules by responsibility: [`config`] (the TOML file), [`bus`] (RabbitMQ topology,
//! publishing, status events), [`routing`], [`mapping`], [`delivery`] (the pipeline of one
//! message), [`store`] (outcomes), [`service`] (the supervisor that keeps it all running),
//! [`admin`] (health, readiness and [`metrics`] over HTTP, with the JSON [`admin_api`] and
//! the [`dashboard`]), [`history`] and [`operator`] (what the operator reads and does, for
//! the API, the dashboard and the CLI alike), [`registry`] (connector kinds), [`cli`] and
//! [`demo`].
#![forbid(unsafe_code)]

pub mod admin;
pub mod admin_api;
pub mod admin_guard;
pub mod breaker;
pub mod bus;
pub mod cli;
pub mod config;
pub mod config_source;
pub mod dashboard;
pub mod dead;
pub mod delivery;
pub mod demo;
pub mod fence;
pub mod flusher;
pub mod history;
pub mod holding;
pub mod mapping;
pub mod metrics;
pub mod numbering;
pub mod operator;
pub mod publish;
pub mod registry;
pub mod routing;
pub mod service;
pub mod store;
pub mod systemd;
pub mod telemetry;
