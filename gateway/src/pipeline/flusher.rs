//! The flusher of a connector that holds deliveries for later batches (`Connector::batching`,
//! every `Batching::flush_every`): it asks the connector to write the batches that are due,
//! then, for each batch written, records each démarche's `delivered` outcome, publishes its
//! status event, and only then marks the batch written.
//!
//! A crash at any point loses nothing and issues nothing twice: before the file, the next
//! flush claims the same sealed batch (same items, same bordereau number); after the file,
//! the connector writes the same bytes again, which the transport takes as already there,
//! and the outcomes and events are recorded and published again (at least once, as the
//! pipeline already re-announces a redelivered démarche).

use std::sync::Arc;
use std::time::Duration;

use aiguillage_connector::holding::{FlushContext, FlushedBatch, Holding};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::ConnectorInstance;
use crate::pipeline::holding::StoreHolding;
use crate::pipeline::numbering::StoreNumbering;
use crate::store::{Outcome, Store};
use aiguillage_bus::Status;
use aiguillage_bus::{Publisher, StatusEvent};

/// Flushes `instance` every `every` until `stop`.
///
/// # Errors
///
/// Never in practice: a failed flush or announcement is logged and tried again at the next
/// tick (what is held stays held). The signature matches the other connector workers.
pub async fn run(
    instance: ConnectorInstance,
    store: Store,
    publisher: Publisher,
    status_exchange: String,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let connector = instance.name.clone();
    let holding = Arc::new(StoreHolding::new(store.clone(), &connector));
    let ctx = FlushContext::new(
        &connector,
        holding.clone(),
        Arc::new(StoreNumbering::new(store.clone())),
    );
    // Spawned only for a connector that batches (see `service.rs`).
    let Some(batching) = instance.connector.batching() else {
        return Ok(());
    };
    loop {
        tokio::select! {
            changed = stop.changed() => {
                // The session is gone: so is this flusher (what is held stays held).
                if changed.is_err() {
                    return Ok(());
                }
            }
            () = tokio::time::sleep(every) => {}
        }
        if *stop.borrow() {
            return Ok(());
        }
        let batches = match batching.flush(&ctx).await {
            Ok(batches) => batches,
            Err(error) => {
                warn!(%connector, error = %error.report(), "flush failed: tried again later");
                continue;
            }
        };
        for batch in batches {
            match announce(&batch, &connector, &store, &publisher, &status_exchange).await {
                Ok(()) => {
                    if let Err(error) = holding.written(&batch.batch).await {
                        warn!(%connector, batch = %batch.batch, error = %error.report(), "cannot mark the batch written: it is flushed again");
                    } else {
                        info!(%connector, batch = %batch.batch, demarches = batch.demarches.len(), "batch written");
                    }
                }
                Err(error) => {
                    warn!(%connector, batch = %batch.batch, %error, "cannot record or announce the batch: it is flushed again");
                }
            }
        }
    }
}

/// Records each démarche of `batch` as delivered and publishes its status event.
async fn announce(
    batch: &FlushedBatch,
    connector: &str,
    store: &Store,
    publisher: &Publisher,
    status_exchange: &str,
) -> Result<(), String> {
    for demarche in &batch.demarches {
        let outcome = Outcome {
            envelope_id: demarche.owner.clone(),
            connector: connector.to_owned(),
            commune: demarche.commune.clone(),
            form: demarche.form.clone(),
            status: Status::Delivered,
            attempts: 1,
            reference: demarche.reference.clone(),
            last_error: None,
            // Kept from an earlier outcome if there was one; a held démarche has none.
            display_id: None,
            details: Default::default(),
        };
        store.record(&outcome).await.map_err(|e| e.to_string())?;
        StatusEvent::new(
            &demarche.owner,
            &demarche.commune,
            &demarche.form,
            connector,
            Status::Delivered,
            1,
        )
        .with_reference(demarche.reference.clone())
        .publish(publisher, status_exchange)
        .await
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}
