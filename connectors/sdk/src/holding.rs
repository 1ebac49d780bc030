//! Items a connector delivers later, in batches (the titres of a day's PES bordereau),
//! held durably by the gateway so that the bus message can be acknowledged at once.
//!
//! A connector must not keep such items in memory: the gateway restarts at any time and
//! runs in several instances. It hands each item to the gateway, which keeps it in its
//! store (SQLite, or PostgreSQL shared by every instance), committed before
//! [`Holding::hold`] returns. Later, one instance claims a batch ([`Holding::claim`]: a
//! lease, and the batch is sealed so that no item joins it any more), writes it, and marks
//! it written ([`Holding::written`]).
//!
//! The guarantees: an owner (an envelope id) is held once, in one batch, whatever the
//! redeliveries; an item held while its batch is being sealed is either in the sealed batch
//! or refused (and then held in a later batch by its retry), never in two and never lost;
//! a claimed batch always gives the same items, so writing it again after a crash gives the
//! same file.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::numbering::Numbering;
use crate::ConnectorError;

/// What [`Connector::flush`](crate::Connector::flush) is given: the connector's holding
/// and the durable numbering.
#[derive(Debug, Clone)]
pub struct FlushContext {
    connector: String,
    holding: Arc<dyn Holding>,
    numbering: Arc<dyn Numbering>,
}

impl FlushContext {
    /// The context of `connector`'s flushes.
    pub fn new(
        connector: impl Into<String>,
        holding: Arc<dyn Holding>,
        numbering: Arc<dyn Numbering>,
    ) -> Self {
        Self {
            connector: connector.into(),
            holding,
            numbering,
        }
    }

    /// The connector's name.
    pub fn connector(&self) -> &str {
        &self.connector
    }

    /// The connector's held items.
    pub fn holding(&self) -> &dyn Holding {
        self.holding.as_ref()
    }

    /// The durable numbering.
    pub fn numbering(&self) -> &dyn Numbering {
        self.numbering.as_ref()
    }
}

/// A batch a flush wrote durably, and the démarches it holds: the gateway records each as
/// delivered and announces it, then marks the batch written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushedBatch {
    /// The batch's key.
    pub batch: String,
    /// Its démarches.
    pub demarches: Vec<Flushed>,
}

/// One démarche of a flushed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flushed {
    /// The envelope id (the owner it was held for).
    pub owner: String,
    /// Its commune.
    pub commune: String,
    /// Its form.
    pub form: String,
    /// The target's reference for it, reported in its `delivered` status event.
    pub reference: Option<String>,
}

/// One item held for a later batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Whose item it is: the envelope id (one item per owner).
    pub owner: String,
    /// The démarche's commune, for its status event once the batch is written.
    pub commune: String,
    /// The démarche's form, for its status event.
    pub form: String,
    /// What the connector needs to write it later (the checked, numbered titre).
    pub item: serde_json::Value,
}

/// A batch that is not written yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingBatch {
    /// Its key, chosen by the connector (e.g. the period's cut-off).
    pub batch: String,
    /// How many items it holds.
    pub items: u64,
    /// Whether it is sealed (claimed once: no item joins it any more).
    pub sealed: bool,
    /// When its first item was held (RFC 3339, UTC).
    pub opened_at: String,
}

/// Durable holding of items in batches, scoped to one connector. Provided by the gateway.
#[async_trait]
pub trait Holding: Send + Sync + fmt::Debug {
    /// Holds `held` in `batch`, committed before it returns, and returns the batch that
    /// holds it: `batch`, or the batch where the same owner was held before (a redelivery
    /// holds nothing twice).
    ///
    /// # Errors
    ///
    /// [`ConnectorError::Transient`] when the store cannot be reached, or when `batch` is
    /// sealed already (being written): hold it in a later batch, or let the delivery be
    /// retried.
    async fn hold(&self, batch: &str, held: &Held) -> Result<String, ConnectorError>;

    /// The batches not written yet, by key.
    ///
    /// # Errors
    ///
    /// [`ConnectorError::Transient`] when the store cannot be reached.
    async fn pending(&self) -> Result<Vec<PendingBatch>, ConnectorError>;

    /// Claims `batch` for `lease`, seals it and returns its items ordered by owner; `None`
    /// when another instance's lease on it has not expired, or it is written already.
    /// Claiming it again (after a crash, or when the lease expired) gives the same items.
    ///
    /// # Errors
    ///
    /// [`ConnectorError::Transient`] when the store cannot be reached.
    async fn claim(
        &self,
        batch: &str,
        lease: Duration,
    ) -> Result<Option<Vec<Held>>, ConnectorError>;

    /// Marks `batch` written (its file is durable): it is never claimed again.
    ///
    /// # Errors
    ///
    /// [`ConnectorError::Transient`] when the store cannot be reached.
    async fn written(&self, batch: &str) -> Result<(), ConnectorError>;
}

/// A [`Holding`] in memory, for tests and examples: it forgets everything when dropped,
/// so it must never stand in for the gateway's in production. Leases are not modelled
/// (one process).
#[derive(Debug, Default)]
pub struct MemoryHolding {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    /// batch → (sealed, written, items by owner).
    batches: BTreeMap<String, (bool, bool, BTreeMap<String, Held>)>,
    /// batch → when its first item was held.
    opened: BTreeMap<String, String>,
    /// owner → batch.
    owners: BTreeMap<String, String>,
}

impl MemoryHolding {
    fn state(&self) -> Result<std::sync::MutexGuard<'_, MemoryState>, ConnectorError> {
        self.state
            .lock()
            .map_err(|_| ConnectorError::transient("le verrou de la mise en attente est corrompu (un traitement a échoué en le tenant)"))
    }
}

#[async_trait]
impl Holding for MemoryHolding {
    async fn hold(&self, batch: &str, held: &Held) -> Result<String, ConnectorError> {
        let mut state = self.state()?;
        if let Some(existing) = state.owners.get(&held.owner) {
            return Ok(existing.clone());
        }
        let entry = state.batches.entry(batch.to_owned()).or_default();
        if entry.0 {
            return Err(ConnectorError::transient(format!(
                "le lot `{batch}` est scellé : mettre l'élément dans un lot suivant"
            )));
        }
        entry.2.insert(held.owner.clone(), held.clone());
        state
            .opened
            .entry(batch.to_owned())
            .or_insert_with(now_rfc3339);
        state.owners.insert(held.owner.clone(), batch.to_owned());
        Ok(batch.to_owned())
    }

    async fn pending(&self) -> Result<Vec<PendingBatch>, ConnectorError> {
        let state = self.state()?;
        Ok(state
            .batches
            .iter()
            .filter(|(_, (_, written, _))| !written)
            .map(|(batch, (sealed, _, items))| PendingBatch {
                batch: batch.clone(),
                items: items.len() as u64,
                sealed: *sealed,
                opened_at: state.opened.get(batch).cloned().unwrap_or_default(),
            })
            .collect())
    }

    async fn claim(
        &self,
        batch: &str,
        _lease: Duration,
    ) -> Result<Option<Vec<Held>>, ConnectorError> {
        let mut state = self.state()?;
        let Some(entry) = state.batches.get_mut(batch) else {
            return Ok(None);
        };
        if entry.1 {
            return Ok(None);
        }
        entry.0 = true;
        Ok(Some(entry.2.values().cloned().collect()))
    }

    async fn written(&self, batch: &str) -> Result<(), ConnectorError> {
        let mut state = self.state()?;
        if let Some(entry) = state.batches.get_mut(batch) {
            entry.1 = true;
        }
        Ok(())
    }
}

/// Now, RFC 3339 UTC (the SDK has no date crate).
fn now_rfc3339() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = ((seconds / 86_400) as i64, seconds % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(owner: &str) -> Held {
        Held {
            owner: owner.into(),
            commune: "44043".into(),
            form: "f".into(),
            item: serde_json::json!({ "owner": owner }),
        }
    }

    #[tokio::test]
    async fn an_owner_is_held_once_and_a_sealed_batch_takes_no_more() {
        let holding = MemoryHolding::default();
        assert_eq!(holding.hold("b1", &held("a")).await.unwrap(), "b1");
        assert_eq!(holding.hold("b2", &held("a")).await.unwrap(), "b1");
        holding.hold("b1", &held("b")).await.unwrap();
        let items = holding.claim("b1", Duration::ZERO).await.unwrap().unwrap();
        assert_eq!(items, [held("a"), held("b")]);
        assert!(holding.hold("b1", &held("c")).await.is_err());
        assert_eq!(holding.hold("b2", &held("c")).await.unwrap(), "b2");
        holding.written("b1").await.unwrap();
        assert!(holding.claim("b1", Duration::ZERO).await.unwrap().is_none());
        let pending = holding.pending().await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].batch, "b2");
    }
}
