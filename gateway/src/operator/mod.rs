//! What the operator reads and does, for the admin API, the dashboard and the CLI alike:
//! the [`dead`] letters and the unrouted démarches, the [`history`] of deliveries, and
//! the operator's [`actions`] on them.

pub mod actions;
pub mod dead;
pub mod history;
