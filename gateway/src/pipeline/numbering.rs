//! The durable numbering that connectors get through their context, kept in the store.

use aiguillage_connector::numbering::Numbering;
use aiguillage_connector::{async_trait, ConnectorError};

use crate::store::Store;

/// [`Numbering`] backed by the gateway's store: shared by every instance that uses the
/// same database, and kept across restarts.
#[derive(Debug, Clone)]
pub struct StoreNumbering {
    store: Store,
}

impl StoreNumbering {
    /// Numbering in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Numbering for StoreNumbering {
    async fn number(&self, sequence: &str, owner: &str) -> Result<u64, ConnectorError> {
        // The store unreachable is a passing state: the delivery is retried and then gets
        // the number it may already have.
        self.store
            .number(sequence, owner)
            .await
            .map_err(|error| ConnectorError::transient(format!("numérotation : {error}")))
    }
}
