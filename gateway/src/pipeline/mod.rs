//! The pipeline of one message, and what keeps it safe: [`delivery`] (parse, route, skip
//! if recorded, map, deliver, settle, record, announce, ack), the [`fence`] that keeps one
//! consuming session per connector, the [`breaker`] that pauses a failing target, the
//! [`holding`] area and its [`flusher`] for batching connectors, and the [`numbering`]
//! sequences connectors draw from.

pub mod breaker;
pub mod delivery;
pub mod fence;
pub mod flusher;
pub mod holding;
pub mod numbering;
