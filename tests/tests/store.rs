//! The store's grouped reads and group commits, on the real databases: outcomes read and
//! recorded at the same moment are batched into one statement, and each caller must still
//! get exactly its own answer.

use aiguillage_bus::Status;
use aiguillage_gateway::store::{Outcome, Store};
use aiguillage_tests::{on_both_stores, Scenario, StoreKind};
use futures_util::future::join_all;

/// How many démarches are recorded and read at once: more than a group holds (256), and
/// not a power of two, so that groups are split into several chunks.
const DEMARCHES: u32 = 300;

fn outcome(n: u32, connector: &str) -> Outcome {
    let status = match n % 3 {
        0 => Status::Delivered,
        1 => Status::Retrying,
        _ => Status::Rejected,
    };
    Outcome {
        envelope_id: format!("portail:cantine:{n}"),
        connector: connector.into(),
        commune: "44043".into(),
        form: "inscription-cantine".into(),
        status,
        attempts: n % 5 + 1,
        reference: (status == Status::Delivered).then(|| format!("REF-{n}-{connector}")),
        last_error: (status != Status::Delivered).then(|| format!("error {n}")),
        // Some with the démarche's number, some without (outcomes of older versions).
        display_id: (n % 2 == 0).then(|| format!("32-{n}")),
        // Some delivered outcomes carry details (an urbanisme dossier's receipt).
        details: if status == Status::Delivered && n % 2 == 0 {
            [("dossier".to_owned(), format!("44043-DP-{n:012}"))].into()
        } else {
            Default::default()
        },
    }
}

async fn each_caller_gets_its_own_outcome(kind: StoreKind) {
    let scenario = Scenario::for_store(kind, "inscription-cantine").await;
    let store = Store::open(scenario.store_url(), 4).await.expect("store");

    // Recorded at once: one démarche with two connectors, every third one only with the
    // first; all in flight together, so they share group commits.
    let outcomes: Vec<Outcome> = (0..DEMARCHES)
        .flat_map(|n| {
            let mut both = vec![outcome(n, "finances")];
            if n % 3 != 0 {
                both.push(outcome(n, "archives"));
            }
            both
        })
        .collect();
    let recorded = join_all(outcomes.iter().map(|o| store.record(o))).await;
    assert!(recorded.iter().all(Result::is_ok), "{recorded:?}");

    // A later outcome of the same démarche replaces the earlier one.
    let mut replayed = outcome(1, "finances");
    replayed.status = Status::Delivered;
    replayed.reference = Some("REF-replayed".into());
    store.record(&replayed).await.expect("recorded");

    // Read at once: each known pair (some asked twice in the same group), pairs never
    // recorded, and a connector the démarche never went to.
    let mut asked: Vec<(String, &str)> = Vec::new();
    for n in 0..DEMARCHES + 20 {
        asked.push((format!("portail:cantine:{n}"), "finances"));
        asked.push((format!("portail:cantine:{n}"), "archives"));
        if n % 7 == 0 {
            asked.push((format!("portail:cantine:{n}"), "finances"));
        }
    }
    let answers = join_all(asked.iter().map(|(id, c)| store.outcome(id, c))).await;
    for ((id, connector), answer) in asked.iter().zip(answers) {
        let answer = answer.expect("the store answers");
        let n: u32 = id.rsplit(':').next().unwrap().parse().unwrap();
        let expected = if n >= DEMARCHES || (*connector == "archives" && n % 3 == 0) {
            None
        } else if n == 1 && *connector == "finances" {
            Some(replayed.clone())
        } else {
            Some(outcome(n, connector))
        };
        assert_eq!(answer, expected, "outcome of {id} with {connector}");
    }

    store.close().await;
    scenario.cleanup().await;
}

on_both_stores!(
    #[tokio::test]
    grouped_reads_and_writes_answer_each_caller_on,
    each_caller_gets_its_own_outcome
);

/// The statuses the Publik notifier's portal took: found by démarche, connector and
/// status, the first record kept when one is recorded again.
async fn the_statuses_a_portal_took_are_found_again(kind: StoreKind) {
    let scenario = Scenario::for_store(kind, "inscription-cantine").await;
    let store = Store::open(scenario.store_url(), 2).await.expect("store");
    let id = "csm:inscription-cantine:7";
    assert_eq!(
        store
            .notification_sent_at(id, "finances", "delivered")
            .await
            .unwrap(),
        None
    );
    store
        .record_notification(id, "finances", "delivered", "csm")
        .await
        .expect("recorded");
    let first = store
        .notification_sent_at(id, "finances", "delivered")
        .await
        .unwrap()
        .expect("found");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store
        .record_notification(id, "finances", "delivered", "csm")
        .await
        .expect("recorded again");
    assert_eq!(
        store
            .notification_sent_at(id, "finances", "delivered")
            .await
            .unwrap(),
        Some(first),
        "the first record is kept"
    );
    for (connector, status) in [("archives", "delivered"), ("finances", "rejected")] {
        assert_eq!(
            store
                .notification_sent_at(id, connector, status)
                .await
                .unwrap(),
            None,
            "another connector's or another status is not taken ({connector}, {status})"
        );
    }
    store.close().await;
    scenario.cleanup().await;
}

on_both_stores!(
    #[tokio::test]
    the_statuses_a_portal_took_are_found_again_on,
    the_statuses_a_portal_took_are_found_again
);
