//! The gateway spine end to end: real RabbitMQ, real SQLite and PostgreSQL.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aiguillage_tests::rest_target::RestTarget;
use aiguillage_tests::{count_status, envelope, on_both_stores, Scenario, StoreKind};
use lapin::types::AMQPValue;

const CLISSON: &str = "44043";
const GORGES: &str = "44064";

on_both_stores!(
    thousand_demarches_arrive_once_at_the_right_target,
    thousand_demarches
);
on_both_stores!(
    the_same_envelope_twice_reaches_its_target_once,
    same_envelope_twice
);

/// 1,000 démarches for two communes and three connectors (rest ×2, file-drop) all arrive
/// exactly once at the right target, each with one `delivered` event carrying its reference.
async fn thousand_demarches(store: StoreKind) {
    let target = RestTarget::start().await;
    let mut scenario = Scenario::new(store).await;
    let drop_dir = scenario.subdir("etat-civil");
    scenario
        .rest(
            "clisson-famille",
            &target.url("accept/clisson"),
            "reference_pointer = \"/numero\"\nconcurrency = 8",
        )
        .rest(
            "gorges-famille",
            &target.url("accept/gorges"),
            "reference_pointer = \"/numero\"",
        )
        .connector(
            "clisson-etat-civil",
            "file-drop",
            &format!("directory = \"{}\"", drop_dir.display()),
        )
        .route(CLISSON, &["inscription-*"], "clisson-famille")
        .route(CLISSON, &["demande-acte-naissance"], "clisson-etat-civil")
        .route(GORGES, &["*"], "gorges-famille");
    let (mut events, running) = scenario.launch().await;

    let mut expected: HashMap<String, &str> = HashMap::new();
    let mut envelopes = Vec::new();
    for n in 0..1000u32 {
        let (commune, form, connector) = match n % 3 {
            0 => (CLISSON, "inscription-cantine", "clisson-famille"),
            1 => (CLISSON, "demande-acte-naissance", "clisson-etat-civil"),
            _ => (GORGES, "inscription-centre-loisirs", "gorges-famille"),
        };
        let e = envelope(&scenario.prefix, commune, form, n);
        expected.insert(e["id"].as_str().unwrap().to_owned(), connector);
        envelopes.push(e);
    }
    scenario.publish(&envelopes).await;

    let seen = events
        .wait_until(Duration::from_secs(120), |seen| {
            count_status(seen, "delivered") >= 1000
        })
        .await;
    assert_eq!(count_status(seen, "delivered"), 1000, "delivered events");
    let seen = events.settle(Duration::from_millis(500)).await;
    assert_eq!(seen.len(), 1000, "exactly one status event per démarche");
    let mut ids = BTreeSet::new();
    for (routing_key, event) in seen {
        let id = event["id"].as_str().unwrap();
        assert!(ids.insert(id.to_owned()), "two events for {id}");
        assert_eq!(
            event["connector"], expected[id],
            "{id} went to the wrong connector"
        );
        assert_eq!(event["attempts"], 1);
        assert!(event["error"].is_null());
        let reference = event["reference"].as_str().expect("a reference");
        assert!(!reference.is_empty());
        assert_eq!(
            routing_key,
            &format!(
                "{}.{}.delivered",
                event["commune"].as_str().unwrap(),
                event["form"].as_str().unwrap()
            )
        );
    }

    // The HTTP targets: each id once, at the right path, with the envelope as body.
    let effects = target.effects();
    assert_eq!(effects.len(), 667);
    let mut keys = BTreeSet::new();
    for effect in &effects {
        assert!(
            keys.insert(effect.key.clone()),
            "{} applied twice",
            effect.key
        );
        let want = if expected[&effect.key] == "clisson-famille" {
            "accept/clisson"
        } else {
            "accept/gorges"
        };
        assert_eq!(effect.path, want, "{} at the wrong target", effect.key);
        assert_eq!(effect.body["id"], effect.key.as_str());
        assert!(effect.body["formdata"]["fields"]["nom"].is_string());
    }
    assert_eq!(target.total_requests(), 667, "no request was sent twice");
    assert_eq!(target.requests_without_key(), 0);

    // The import directory: one file per état-civil démarche.
    let files: Vec<_> = std::fs::read_dir(&drop_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        files.len(),
        333,
        "one file per démarche, no temporary file left"
    );
    for file in &files {
        let document: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        assert_eq!(
            expected[document["id"].as_str().unwrap()],
            "clisson-etat-civil"
        );
    }

    scenario.finish(running).await;
}

/// The portal publishes the same démarche twice: the target sees it once, and the second
/// copy is acknowledged with the recorded outcome.
async fn same_envelope_twice(store: StoreKind) {
    let target = RestTarget::start().await;
    let mut scenario = Scenario::new(store).await;
    scenario
        .rest(
            "famille",
            &target.url("accept/x"),
            "reference_pointer = \"/numero\"",
        )
        .route(CLISSON, &["*"], "famille");
    let (mut events, running) = scenario.launch().await;

    let e = envelope(&scenario.prefix, CLISSON, "inscription-cantine", 1);
    scenario.publish(std::slice::from_ref(&e)).await;
    events
        .wait_until(Duration::from_secs(30), |seen| !seen.is_empty())
        .await;
    scenario.publish(std::slice::from_ref(&e)).await;
    let seen = events
        .wait_until(Duration::from_secs(30), |seen| seen.len() >= 2)
        .await;
    assert_eq!(seen.len(), 2);
    // The second event repeats the recorded outcome: same reference, one attempt.
    assert_eq!(seen[0].1["reference"], seen[1].1["reference"]);
    assert_eq!(seen[1].1["attempts"], 1);
    assert_eq!(
        target.total_requests(),
        1,
        "the duplicate never reached the target"
    );
    assert_eq!(target.effect_count(), 1);
    let outcome = running
        .store()
        .outcome(e["id"].as_str().unwrap(), "famille")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        outcome.reference.as_deref(),
        seen[0].1["reference"].as_str()
    );

    scenario.finish(running).await;
}

/// A form that no route takes is consumed by no connector: it waits in the unrouted queue
/// for the operator, untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_matching_no_route_waits_in_the_unrouted_queue() {
    let target = RestTarget::start().await;
    let scenario = Scenario::famille_and_etat_civil(&target).await;
    let (mut events, running) = scenario.launch().await;

    let stray = envelope(&scenario.prefix, CLISSON, "permis-de-construire", 1);
    let other_commune = envelope(&scenario.prefix, GORGES, "inscription-cantine", 2);
    let routed = envelope(&scenario.prefix, CLISSON, "inscription-cantine", 3);
    scenario
        .publish(&[stray.clone(), other_commune.clone(), routed.clone()])
        .await;

    let seen = events
        .wait_until(Duration::from_secs(30), |seen| !seen.is_empty())
        .await;
    assert_eq!(seen[0].1["id"], routed["id"]);
    events.settle(Duration::from_millis(500)).await;
    assert_eq!(
        events.with_status("delivered").len(),
        1,
        "only the routed démarche has an outcome"
    );
    assert_eq!(target.effect_count(), 1);

    let bus = scenario.bus();
    for connector in ["famille", "etat-civil"] {
        assert_eq!(
            scenario.queue_depth(&bus.connector_queue(connector)).await,
            0
        );
        assert_eq!(scenario.queue_depth(&bus.dead_queue(connector)).await, 0);
    }
    let unrouted = scenario.drain(&bus.unrouted_queue()).await;
    assert_eq!(
        unrouted.len(),
        2,
        "each unrouted démarche is kept once, not once per broad binding"
    );
    let ids: BTreeSet<_> = unrouted
        .iter()
        .map(|(body, _)| body["id"].as_str().unwrap().to_owned())
        .collect();
    let want: BTreeSet<_> = [&stray, &other_commune]
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids, want,
        "the unrouted queue keeps exactly the démarches no route takes"
    );

    scenario.finish(running).await;
}

/// A target answering 422 gets a `rejected` status and the message lands in the dead
/// queue with the reason; the other démarches keep flowing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_demarche_is_dead_lettered_with_its_reason_and_others_flow() {
    let target = RestTarget::start().await;
    let scenario = Scenario::urbanisme_refused(&target, "reject/urba").await;
    let (mut events, running) = scenario.launch().await;

    let refused = envelope(&scenario.prefix, CLISSON, "declaration-prealable", 1);
    let mut batch = vec![refused.clone()];
    for n in 2..52 {
        batch.push(envelope(
            &scenario.prefix,
            CLISSON,
            "inscription-cantine",
            n,
        ));
    }
    scenario.publish(&batch).await;

    let seen = events
        .wait_until(Duration::from_secs(60), |seen| seen.len() >= 51)
        .await;
    assert_eq!(count_status(seen, "delivered"), 50);
    let rejected = events.with_status("rejected");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["id"], refused["id"]);
    let error = rejected[0]["error"].as_str().unwrap();
    assert!(error.contains("422"), "{error}");
    assert!(
        error.contains("nom_usage"),
        "the target's explanation is kept: {error}"
    );

    let bus = scenario.bus();
    let dead = scenario.drain(&bus.dead_queue("urbanisme")).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].0, refused,
        "the dead letter is the original envelope"
    );
    let headers = dead[0].1.inner();
    let text = |key: &str| match headers.get(key) {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => panic!("header {key}: {other:?}"),
    };
    assert!(text("x-aiguillage-reason").contains("422"));
    assert_eq!(text("x-aiguillage-status"), "rejected");
    assert_eq!(text("x-aiguillage-connector"), "urbanisme");
    let outcome = running
        .store()
        .outcome(refused["id"].as_str().unwrap(), "urbanisme")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.status, aiguillage_bus::Status::Rejected);

    scenario.finish(running).await;
}

/// A route taken out of the configuration stops feeding its connector: at the next start
/// its binding is removed, and a démarche it used to take waits in the unrouted queue
/// instead of vanishing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_route_stops_taking_demarches_and_nothing_is_lost() {
    let target = RestTarget::start().await;
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    scenario
        .rest("famille", &target.url("accept/famille"), "")
        .route(CLISSON, &["inscription-cantine"], "famille")
        .route(CLISSON, &["piscine"], "famille");
    let running = scenario.start().await;
    running.shutdown().await;

    // The agglo stops routing the swimming pool through this connector.
    scenario
        .clear_configuration()
        .rest("famille", &target.url("accept/famille"), "")
        .route(CLISSON, &["inscription-cantine"], "famille");
    let narrowed = scenario;
    let mut events = narrowed.status_events().await;
    let running = narrowed.start().await;

    let kept = envelope(&narrowed.prefix, CLISSON, "inscription-cantine", 1);
    let dropped_route = envelope(&narrowed.prefix, CLISSON, "piscine", 2);
    narrowed
        .publish(&[dropped_route.clone(), kept.clone()])
        .await;
    events
        .wait_until(Duration::from_secs(30), |seen| !seen.is_empty())
        .await;
    events.settle(Duration::from_millis(500)).await;
    assert_eq!(target.effect_count(), 1);
    assert_eq!(target.effects()[0].key, kept["id"].as_str().unwrap());
    let unrouted = narrowed.drain(&narrowed.bus().unrouted_queue()).await;
    assert_eq!(
        unrouted.len(),
        1,
        "the démarche of the removed route is kept for the operator"
    );
    assert_eq!(unrouted[0].0["id"], dropped_route["id"]);

    running.shutdown().await;
    narrowed.cleanup().await;
}
