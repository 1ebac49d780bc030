//! The durable numbering that connectors get from the gateway (bordereau numbers of a PES
//! file…), on the real stores: one number per owner, unique in its sequence, kept across
//! restarts, and shared by several gateway instances on PostgreSQL.

use std::collections::BTreeSet;

use aiguillage_gateway::store::Store;
use aiguillage_tests::{on_both_stores, Scenario, StoreKind};

/// A scenario for its store alone (its connector only lets it clean up after itself).
async fn scenario(kind: StoreKind) -> Scenario {
    Scenario::for_store(kind, "facture").await
}

async fn numbers_are_given_once_per_owner(kind: StoreKind) {
    let scenario = scenario(kind).await;
    let store = Store::open(scenario.store_url(), 4).await.expect("store");
    let bordereaux = "pes/bordereau/21440043800019/01/2026";
    assert_eq!(
        store.number(bordereaux, "portail:cantine:1").await.unwrap(),
        1
    );
    assert_eq!(
        store.number(bordereaux, "portail:cantine:2").await.unwrap(),
        2
    );
    // A retry of the first démarche keeps its number.
    assert_eq!(
        store.number(bordereaux, "portail:cantine:1").await.unwrap(),
        1
    );
    // Another sequence (the next exercice) starts again at 1.
    let next_year = "pes/bordereau/21440043800019/01/2027";
    assert_eq!(
        store.number(next_year, "portail:cantine:3").await.unwrap(),
        1
    );
    assert_eq!(
        store.number(bordereaux, "portail:cantine:3").await.unwrap(),
        3
    );

    // Restarted: the numbers are still there.
    drop(store);
    let store = Store::open(scenario.store_url(), 4).await.expect("store");
    assert_eq!(
        store.number(bordereaux, "portail:cantine:2").await.unwrap(),
        2
    );
    assert_eq!(
        store.number(bordereaux, "portail:cantine:4").await.unwrap(),
        4
    );
    scenario.cleanup().await;
}

on_both_stores!(
    #[tokio::test]
    numbers_are_given_once_per_owner_on,
    numbers_are_given_once_per_owner
);

/// Two gateway instances (two pools) numbering at the same time, each owner asked for by
/// both: every owner gets one number, and the numbers are exactly 1..=N.
async fn concurrent_instances_never_share_a_number(kind: StoreKind) {
    let scenario = scenario(kind).await;
    let first = Store::open(scenario.store_url(), 4).await.expect("store");
    let second = Store::open(scenario.store_url(), 4).await.expect("store");
    let sequence = "pes/bordereau/x/01/2026";
    let owners: Vec<String> = (0..60).map(|i| format!("portail:piscine:{i}")).collect();
    let mut tasks = Vec::new();
    for (index, owner) in owners.iter().enumerate() {
        for store in [&first, &second] {
            let store = store.clone();
            let owner = owner.clone();
            tasks.push(tokio::spawn(async move {
                (owner.clone(), store.number(sequence, &owner).await)
            }));
        }
        if index % 10 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let mut by_owner = std::collections::BTreeMap::new();
    for task in tasks {
        let (owner, number) = task.await.expect("task");
        let number = number.unwrap_or_else(|e| panic!("{owner}: {e}"));
        let previous = by_owner.insert(owner.clone(), number);
        assert!(
            previous.is_none_or(|p| p == number),
            "{owner} got {previous:?} and {number}"
        );
    }
    let numbers: BTreeSet<u64> = by_owner.values().copied().collect();
    assert_eq!(numbers, (1..=owners.len() as u64).collect::<BTreeSet<_>>());
    scenario.cleanup().await;
}

on_both_stores!(
    concurrent_instances_never_share_a_number_on,
    concurrent_instances_never_share_a_number
);
