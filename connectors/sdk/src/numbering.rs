//! Numbers that a target requires and that must survive restarts: bordereau numbers of a
//! finance file, sequence numbers of an import, chronological registers.
//!
//! A connector must not keep such a counter itself: it runs in several gateway instances
//! and restarts at any time. It asks the gateway, which keeps every sequence in its store
//! (SQLite, or PostgreSQL shared by all instances). A number is given to an **owner** (in
//! practice the envelope id) once: asking again for the same owner gives the same number,
//! so a retry or a redelivery after a crash never takes a second one.
//!
//! ```
//! # use aiguillage_connector::{Context, ConnectorError, numbering::MemoryNumbering};
//! # use std::sync::Arc;
//! # async fn example() -> Result<(), ConnectorError> {
//! let ctx = Context::new("portail:facture:7", "44043", "facture", "finances")
//!     .with_numbering(Arc::new(MemoryNumbering::default()));
//! let sequence = "pes/bordereau/21440043800019/01/2026";
//! let first = ctx.numbering()?.number(sequence, ctx.envelope_id()).await?;
//! let again = ctx.numbering()?.number(sequence, ctx.envelope_id()).await?;
//! assert_eq!((first, again), (1, 1));
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::ConnectorError;

/// Durable, shared sequences of numbers, one number per owner. Provided by the gateway
/// through [`Context::numbering`](crate::Context::numbering).
#[async_trait]
pub trait Numbering: Send + Sync + fmt::Debug {
    /// The number of `owner` in `sequence`: the next one (1, 2, 3… in the order they were
    /// asked for) the first time, the same one every time after.
    ///
    /// Numbers are unique within a sequence, and increase in the order owners first ask.
    /// A number is kept even if the delivery that asked for it then fails: a sequence can
    /// have gaps, never duplicates.
    ///
    /// # Errors
    ///
    /// [`ConnectorError::Transient`] when the store cannot be reached: the delivery is
    /// retried later, and gets the same number if it had one.
    async fn number(&self, sequence: &str, owner: &str) -> Result<u64, ConnectorError>;
}

/// A [`Numbering`] in memory, for tests and examples: it forgets everything when dropped,
/// so it must never stand in for the gateway's in production.
#[derive(Debug, Default)]
pub struct MemoryNumbering {
    sequences: Mutex<HashMap<String, HashMap<String, u64>>>,
}

#[async_trait]
impl Numbering for MemoryNumbering {
    async fn number(&self, sequence: &str, owner: &str) -> Result<u64, ConnectorError> {
        let mut sequences = self.sequences.lock().map_err(|_| {
            ConnectorError::transient(
                "le verrou de la numérotation est corrompu (un traitement a échoué en le tenant)",
            )
        })?;
        let owners = sequences.entry(sequence.to_owned()).or_default();
        let next = owners.len() as u64 + 1;
        Ok(*owners.entry(owner.to_owned()).or_insert(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_number_per_owner_and_sequence() {
        let numbering = MemoryNumbering::default();
        let run =
            |s: &'static str, o: &'static str| poll_once(numbering.number(s, o)).expect("numbers");
        assert_eq!(run("a", "x"), 1);
        assert_eq!(run("a", "y"), 2);
        assert_eq!(run("a", "x"), 1);
        assert_eq!(run("b", "x"), 1);
    }

    /// Polls once: the memory numbering never waits.
    fn poll_once<F: std::future::Future>(future: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut context = Context::from_waker(Waker::noop());
        let mut future = std::pin::pin!(future);
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("the memory numbering never waits"),
        }
    }
}
