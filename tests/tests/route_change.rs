//! A route moved from one connector to another loses nothing: the démarches already queued
//! for the old connector were published when the new one had no binding for them, so the
//! old connector passes them on instead of dropping them (see gateway/src/pipeline/fence.rs).

use std::time::Duration;

use aiguillage_tests::rest_target::RestTarget;
use aiguillage_tests::{envelope, Scenario, StoreKind};

const CLISSON: &str = "44043";

fn rest(target: &RestTarget, path: &str) -> String {
    format!(
        "url = \"{}\"\nreference_pointer = \"/numero\"",
        target.url(path)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demarches_queued_before_a_route_moved_reach_the_new_connector() {
    let target = RestTarget::start().await;
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    // Before: the school forms go to `famille`, the swimming pool to `mairie`.
    scenario
        .connector("famille", "rest", &rest(&target, "accept/famille"))
        .connector("mairie", "rest", &rest(&target, "accept/mairie"))
        .connector("education", "rest", &rest(&target, "accept/education"))
        .route(CLISSON, &["inscription-*"], "famille")
        .route(CLISSON, &["piscine"], "mairie");
    let running = scenario.start().await;
    running.shutdown().await;

    // The gateway is stopped (an upgrade, a configuration change): démarches queue up.
    let moved = scenario.envelopes(CLISSON, "inscription-cantine", 40);
    let others = scenario.envelopes(CLISSON, "piscine", 10);
    scenario.publish(&moved).await;
    scenario.publish(&others).await;

    // After: the school forms move to `education`. `famille` holds the only copies of the
    // queued school forms: `education` had no binding when they came.
    scenario
        .clear_configuration()
        .connector("famille", "rest", &rest(&target, "accept/famille"))
        .connector("mairie", "rest", &rest(&target, "accept/mairie"))
        .connector("education", "rest", &rest(&target, "accept/education"))
        .route(CLISSON, &["inscription-*"], "education")
        .route(CLISSON, &["piscine"], "mairie")
        // A broad route of `mairie` for another form: its binding (`44043.*`) gives it a
        // copy of every form, which it must drop once past its fence.
        .route(CLISSON, &["etat-*"], "mairie");
    let running = scenario.start().await;
    assert!(
        target.wait_for_effects(50, Duration::from_secs(60)).await,
        "only {} of 50 démarches arrived",
        target.effect_count()
    );
    // Every queued démarche arrives once, where the new routes send it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let effects = target.effects();
    let at = |path: &str| effects.iter().filter(|e| e.path.ends_with(path)).count();
    eprintln!(
        "paths: {:?}",
        effects
            .iter()
            .map(|e| e.path.clone())
            .collect::<std::collections::BTreeSet<_>>()
    );
    assert_eq!(
        at("accept/education"),
        40,
        "the moved form reaches its new connector"
    );
    assert_eq!(at("accept/mairie"), 10);
    assert_eq!(
        at("accept/famille"),
        0,
        "the old connector delivers nothing"
    );
    let keys: std::collections::HashSet<_> = effects.iter().map(|e| e.key.clone()).collect();
    assert_eq!(keys.len(), 50, "each démarche once");

    // Once past their fences, copies through broad bindings are dropped again: a new school
    // form reaches `education` once, and `mairie` does not pass its copy on.
    let requests_before = target.total_requests();
    scenario
        .publish(&[envelope(
            &scenario.prefix,
            CLISSON,
            "inscription-cantine",
            99,
        )])
        .await;
    assert!(target.wait_for_effects(51, Duration::from_secs(30)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(target.total_requests(), requests_before + 1);
    for queue in ["famille", "mairie", "education"] {
        assert!(
            scenario
                .wait_for_depth(
                    &scenario.bus().connector_queue(queue),
                    0,
                    Duration::from_secs(10)
                )
                .await,
            "`{queue}`'s queue is empty, its fence marker included"
        );
    }

    scenario.finish(running).await;
}
