//! The durable holding of items for later batches (`aiguillage_gateway::pipeline::holding`), on the
//! real stores: an owner is held once, a sealed batch takes no more items, a lease lets one
//! instance claim a batch at a time, a claim after a crash gives the same items, and, with
//! two gateway instances holding and sealing at the same time, every item ends in exactly
//! one batch.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use aiguillage_connector::holding::{Held, Holding};
use aiguillage_connector::testkit::assert_french;
use aiguillage_gateway::pipeline::holding::StoreHolding;
use aiguillage_gateway::store::Store;
use aiguillage_tests::{on_both_stores, Scenario, StoreKind};
use serde_json::json;

/// A scenario for its store alone (its connector only lets it clean up after itself).
async fn scenario(kind: StoreKind) -> Scenario {
    Scenario::for_store(kind, "facture").await
}

fn held(owner: &str) -> Held {
    Held {
        owner: owner.into(),
        commune: "44043".into(),
        form: "inscription-cantine".into(),
        item: json!({ "owner": owner, "montant": "8.00" }),
    }
}

fn owners(items: &[Held]) -> Vec<String> {
    items.iter().map(|h| h.owner.clone()).collect()
}

async fn hold_seal_claim_and_write(kind: StoreKind) {
    let scenario = scenario(kind).await;
    let store = Store::open(scenario.store_url(), 4).await.expect("store");
    let first = StoreHolding::new(store.clone(), "finances");
    let second = StoreHolding::new(store.clone(), "finances");
    let other_connector = StoreHolding::new(store.clone(), "autres-finances");

    assert_eq!(
        first.hold("2026-11-29", &held("a")).await.unwrap(),
        "2026-11-29"
    );
    // A redelivery holds nothing twice, whatever batch it asks for.
    assert_eq!(
        second.hold("2026-11-30", &held("a")).await.unwrap(),
        "2026-11-29"
    );
    first.hold("2026-11-29", &held("b")).await.unwrap();
    // Another connector's items are its own.
    other_connector
        .hold("2026-11-29", &held("a"))
        .await
        .unwrap();
    let pending = first.pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].items, pending[0].sealed), (2, false));

    let items = first
        .claim("2026-11-29", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("claimed");
    assert_eq!(owners(&items), ["a", "b"]);
    assert_eq!(items[0], held("a"), "the item as it was held");
    // Sealed: no item joins it any more; a later batch takes it.
    assert!(first.hold("2026-11-29", &held("c")).await.is_err());
    assert_eq!(
        first.hold("2026-11-30", &held("c")).await.unwrap(),
        "2026-11-30"
    );
    // The other instance cannot claim it while the lease runs; the same one can again
    // (after a crash of its flush), and gets the same items.
    assert!(second
        .claim("2026-11-29", Duration::from_secs(60))
        .await
        .unwrap()
        .is_none());
    let again = first
        .claim("2026-11-29", Duration::ZERO)
        .await
        .unwrap()
        .expect("claimed again by its lease holder");
    assert_eq!(again, items);
    // The lease (zero) has expired: the other instance takes over, same items.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let taken_over = second
        .claim("2026-11-29", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("an expired lease is taken over");
    assert_eq!(taken_over, items);

    second.written("2026-11-29").await.unwrap();
    assert!(first
        .claim("2026-11-29", Duration::ZERO)
        .await
        .unwrap()
        .is_none());
    // Restarted: what is held is still there.
    store.close().await;
    let store = Store::open(scenario.store_url(), 4).await.expect("store");
    let restarted = StoreHolding::new(store.clone(), "finances");
    let pending = restarted.pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].batch, "2026-11-30");
    let items = restarted
        .claim("2026-11-30", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owners(&items), ["c"]);
    store.close().await;
    scenario.cleanup().await;
}

on_both_stores!(hold_seal_claim_and_write_on, hold_seal_claim_and_write);

/// Two instances hold 200 items into batch 1 while one of them seals it halfway: each
/// item refused by the sealed batch is held into batch 2 by its retry. Every item is in
/// exactly one of the two batches, and batch 1 claimed again gives what it gave first.
async fn items_racing_a_seal_end_in_exactly_one_batch(kind: StoreKind) {
    let scenario = scenario(kind).await;
    let first_store = Store::open(scenario.store_url(), 4).await.expect("store");
    let second_store = Store::open(scenario.store_url(), 4).await.expect("store");
    let instances = [
        Arc::new(StoreHolding::new(first_store.clone(), "finances")),
        Arc::new(StoreHolding::new(second_store.clone(), "finances")),
    ];
    const ITEMS: usize = 200;
    let mut tasks = Vec::new();
    for n in 0..ITEMS {
        let holding = instances[n % 2].clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("portail:cantine:{n:03}");
            // A refused hold (sealed batch, or a busy SQLite) is retried, as the
            // redelivered message would be: in batch 2 once batch 1 is sealed.
            let mut batch = "1";
            loop {
                match holding.hold(batch, &held(&owner)).await {
                    Ok(holder) => return (owner, holder),
                    Err(error) => {
                        let reason = error.to_string();
                        // What the agent reads in a dead letter if the retries run out.
                        assert_french(&reason);
                        if reason.contains("est scellé") {
                            batch = "2";
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
        }));
        if n == ITEMS / 2 {
            let sealer = instances[1].clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    match sealer.claim("1", Duration::from_secs(60)).await {
                        Ok(_) => return (String::new(), String::new()),
                        Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
                    }
                }
            }));
        }
    }
    let mut answers = Vec::new();
    for task in tasks {
        let (owner, batch) = task.await.unwrap();
        if !owner.is_empty() {
            answers.push((owner, batch));
        }
    }
    assert_eq!(answers.len(), ITEMS);
    let one = instances[1]
        .claim("1", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("its lease holder claims it again");
    let two = instances[0]
        .claim("2", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap_or_default();
    let in_one: BTreeSet<String> = owners(&one).into_iter().collect();
    let in_two: BTreeSet<String> = owners(&two).into_iter().collect();
    assert!(in_one.is_disjoint(&in_two), "an item in two batches");
    assert_eq!(in_one.len() + in_two.len(), ITEMS, "an item lost");
    for (owner, batch) in &answers {
        let holder = if in_one.contains(owner) { "1" } else { "2" };
        assert_eq!(batch, holder, "{owner} was told it is in {batch}");
    }
    // Once sealed, batch 1 does not change.
    assert_eq!(
        owners(
            &instances[1]
                .claim("1", Duration::from_secs(60))
                .await
                .unwrap()
                .unwrap()
        ),
        owners(&one)
    );
    first_store.close().await;
    second_store.close().await;
    scenario.cleanup().await;
}

on_both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    items_racing_a_seal_end_in_exactly_one_batch_on,
    items_racing_a_seal_end_in_exactly_one_batch
);
