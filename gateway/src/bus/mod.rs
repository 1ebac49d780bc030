//! The gateway's side of the bus: each connector's queues and bindings ([`topology`]),
//! publishing envelopes as the portal does ([`publish`]), and the state of the bus session.
//! The contract itself (envelope, status events, headers, publisher) is `aiguillage_bus`.

pub mod publish;
pub mod topology;

/// Whether the bus session is ready: connected, topology declared, every connector
/// consuming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusStatus {
    /// Ready.
    Ready,
    /// Not ready, and why (for `/readyz` and the operator).
    NotReady(String),
}
