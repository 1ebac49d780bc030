//! The durable holding of items that connectors deliver later in batches
//! (`aiguillage_connector::holding`), kept in the store: shared by every instance that uses
//! the same database, and kept across restarts. Tables: migration `…_held.sql`.

use std::time::Duration;

use aiguillage_connector::holding::{Held, Holding, PendingBatch};
use aiguillage_connector::{async_trait, ConnectorError};
use sqlx::Row;
use time::OffsetDateTime;

use crate::store::Store;
use aiguillage_bus::{format_utc, now_text};

/// [`Holding`] for one connector, backed by the gateway's store.
#[derive(Debug, Clone)]
pub struct StoreHolding {
    store: Store,
    connector: String,
    /// Who takes leases: unique to this holding (one per connector and process).
    instance: String,
}

impl StoreHolding {
    /// The holding of `connector`'s items in `store`.
    pub fn new(store: Store, connector: impl Into<String>) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Self {
            store,
            connector: connector.into(),
            instance: format!(
                "{}-{}-{nanos:x}-{:x}",
                hostname(),
                std::process::id(),
                rand::random::<u32>()
            ),
        }
    }

    /// The holding of `connector`'s items for the instance named `instance`: a process
    /// restarted under the name it had takes its leases back at once, instead of waiting
    /// for them to expire.
    pub fn for_instance(
        store: Store,
        connector: impl Into<String>,
        instance: impl Into<String>,
    ) -> Self {
        Self {
            store,
            connector: connector.into(),
            instance: instance.into(),
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "host".into())
}

/// The store unreachable, or refusing, is a passing state: the delivery is retried. The
/// database's own words are quoted as it said them.
fn transient(what: &str, error: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::transient(format!(
        "mise en attente : {what} dans la base de la passerelle : « {error} »"
    ))
}

#[async_trait]
impl Holding for StoreHolding {
    async fn hold(&self, batch: &str, held: &Held) -> Result<String, ConnectorError> {
        let pool = self.store.pool();
        let fail = |error: sqlx::Error| transient("l'élément n'a pas pu être enregistré", error);
        let mut tx = pool.begin().await.map_err(fail)?;
        let now = now_text();
        // A write first: on SQLite the transaction takes the write lock now (waiting for
        // another hold, with the busy timeout) instead of failing later when it upgrades.
        sqlx::query(
            "INSERT INTO held_batches (connector, batch, state, items, opened_at) \
             VALUES ($1, $2, 'open', 0, $3) ON CONFLICT (connector, batch) DO NOTHING",
        )
        .bind(&self.connector)
        .bind(batch)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        let existing =
            sqlx::query("SELECT batch FROM held_items WHERE connector = $1 AND owner = $2")
                .bind(&self.connector)
                .bind(&held.owner)
                .fetch_optional(&mut *tx)
                .await
                .map_err(fail)?;
        if let Some(row) = existing {
            let batch: String = row.try_get(0).map_err(fail)?;
            tx.rollback().await.map_err(fail)?;
            return Ok(batch);
        }
        // Takes the batch row's lock: a seal in progress is waited for, then seen.
        let counted = sqlx::query(
            "UPDATE held_batches SET items = items + 1 \
             WHERE connector = $1 AND batch = $2 AND state = 'open'",
        )
        .bind(&self.connector)
        .bind(batch)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        if counted.rows_affected() == 0 {
            tx.rollback().await.map_err(fail)?;
            return Err(ConnectorError::transient(format!(
                "le lot `{batch}` est scellé : mettre l'élément dans un lot suivant"
            )));
        }
        let item = serde_json::to_string(&held.item)
            .map_err(|error| transient("l'élément n'a pas pu être enregistré", error))?;
        sqlx::query(
            "INSERT INTO held_items (connector, owner, batch, commune, form, item, held_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&self.connector)
        .bind(&held.owner)
        .bind(batch)
        .bind(&held.commune)
        .bind(&held.form)
        .bind(item)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(batch.to_owned())
    }

    async fn pending(&self) -> Result<Vec<PendingBatch>, ConnectorError> {
        let fail = |error: sqlx::Error| transient("les lots n'ont pas pu être lus", error);
        let rows = sqlx::query(
            "SELECT batch, items, state, opened_at FROM held_batches \
             WHERE connector = $1 AND state <> 'written' ORDER BY batch",
        )
        .bind(&self.connector)
        .fetch_all(self.store.pool())
        .await
        .map_err(fail)?;
        rows.iter()
            .map(|row| {
                let items: i64 = row.try_get("items").map_err(fail)?;
                let state: String = row.try_get("state").map_err(fail)?;
                Ok(PendingBatch {
                    batch: row.try_get("batch").map_err(fail)?,
                    items: u64::try_from(items).unwrap_or(0),
                    sealed: state == "sealed",
                    opened_at: row.try_get("opened_at").map_err(fail)?,
                })
            })
            .collect()
    }

    async fn claim(
        &self,
        batch: &str,
        lease: Duration,
    ) -> Result<Option<Vec<Held>>, ConnectorError> {
        let fail = |error: sqlx::Error| transient("le lot n'a pas pu être réservé", error);
        let now = OffsetDateTime::now_utc();
        let until = now + lease;
        let mut tx = self.store.pool().begin().await.map_err(fail)?;
        let leased = sqlx::query(
            "UPDATE held_batches SET lease_owner = $3, lease_until = $4 \
             WHERE connector = $1 AND batch = $2 AND state <> 'written' \
               AND (lease_until IS NULL OR lease_until < $5 OR lease_owner = $3)",
        )
        .bind(&self.connector)
        .bind(batch)
        .bind(&self.instance)
        .bind(format_utc(until))
        .bind(format_utc(now))
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        if leased.rows_affected() == 0 {
            tx.rollback().await.map_err(fail)?;
            return Ok(None);
        }
        // The lease update above holds the batch row's lock: holds in flight have
        // committed (their items are read below) or will find the batch sealed.
        sqlx::query(
            "UPDATE held_batches SET state = 'sealed' \
             WHERE connector = $1 AND batch = $2 AND state = 'open'",
        )
        .bind(&self.connector)
        .bind(batch)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        let rows = sqlx::query(
            "SELECT owner, commune, form, item FROM held_items \
             WHERE connector = $1 AND batch = $2 ORDER BY owner",
        )
        .bind(&self.connector)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await
        .map_err(fail)?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let item: String = row.try_get("item").map_err(fail)?;
            items.push(Held {
                owner: row.try_get("owner").map_err(fail)?,
                commune: row.try_get("commune").map_err(fail)?,
                form: row.try_get("form").map_err(fail)?,
                item: serde_json::from_str(&item).map_err(|error| {
                    ConnectorError::permanent(format!(
                        "mise en attente : l'élément mis en attente pour `{}` n'est plus du JSON valide : « {error} »",
                        row.try_get::<String, _>("owner").unwrap_or_default()
                    ))
                })?,
            });
        }
        tx.commit().await.map_err(fail)?;
        Ok(Some(items))
    }

    async fn written(&self, batch: &str) -> Result<(), ConnectorError> {
        sqlx::query(
            "UPDATE held_batches SET state = 'written', lease_owner = NULL, lease_until = NULL \
             WHERE connector = $1 AND batch = $2",
        )
        .bind(&self.connector)
        .bind(batch)
        .execute(self.store.pool())
        .await
        .map_err(|error| transient("le lot n'a pas pu être marqué comme écrit", error))?;
        Ok(())
    }
}
