//! Publik, the portal: the loop between w.c.s. (its form engine) and the bus.
//!
//! - [`signature`]: Publik's signed URLs, as w.c.s. makes and checks them;
//! - [`intake`]: `POST /intake`, where a w.c.s. webhook action sends a démarche, put on
//!   the bus as an envelope with a publisher confirm before it is acknowledged;
//! - [`notifier`]: the status events sent back to w.c.s. as workflow jump triggers;
//! - [`config`]: the `[publik]` section of the configuration.
//!
//! The portal's side is documented for its administrators in `docs/publik.md`.

pub mod config;
pub mod intake;
pub mod notifier;
pub mod signature;
