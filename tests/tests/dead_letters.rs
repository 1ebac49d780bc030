//! Dead letters, the operator's tools, end to end on the real RabbitMQ: `aiguillage dead
//! list|replay|discard` run as a real process against a running gateway.

use std::process::Output;
use std::time::Duration;

use aiguillage_tests::rest_target::RestTarget;
use aiguillage_tests::{
    count_status, envelope, gateway_bin, header_list, header_text, json_lines, on_both_stores,
    stderr, stdout, Scenario, StoreKind,
};

const CLISSON: &str = "44043";

/// Runs `aiguillage dead <args…> --config <the scenario's configuration>`.
async fn dead(scenario: &Scenario, args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<&str> = std::iter::once("dead")
        .chain(args.iter().copied())
        .collect();
    scenario.cli(gateway_bin!(), &args, env).await
}

on_both_stores!(
    a_dead_demarche_is_replayed_once_its_target_is_back,
    dead_then_replayed
);

/// Target down: 3 attempts, then the dead letters with the history of the 3 failures.
/// Target back: `dead replay --id` sends it again, it is delivered at its first attempt.
async fn dead_then_replayed(store: StoreKind) {
    let target = RestTarget::start().await;
    target.set_failing(true);
    let mut scenario = Scenario::new(store).await;
    scenario
        .rest("etat-civil", &target.url("switch/etat-civil"), "reference_pointer = \"/numero\"\nretry = { max_attempts = 3, initial = \"100ms\", max_delay = \"200ms\" }\nbreaker = { failures = 0 }")
        .route(CLISSON, &["demande-acte-*"], "etat-civil");
    let (mut events, running) = scenario.launch().await;
    let bus = scenario.bus();
    let dead_queue = bus.dead_queue("etat-civil");

    let demarche = envelope(&scenario.prefix, CLISSON, "demande-acte-naissance", 1);
    let id = demarche["id"].as_str().unwrap().to_owned();
    scenario.publish(std::slice::from_ref(&demarche)).await;

    let seen = events
        .wait_until(Duration::from_secs(30), |seen| {
            count_status(seen, "dead") >= 1
        })
        .await;
    let history: Vec<(&str, u64)> = seen
        .iter()
        .map(|(_, e)| {
            (
                e["status"].as_str().unwrap(),
                e["attempts"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [("retrying", 1), ("retrying", 2), ("dead", 3)],
        "a `dead` event after 2 `retrying` ones"
    );
    assert!(
        scenario
            .wait_for_depth(&dead_queue, 1, Duration::from_secs(5))
            .await
    );
    let kept = scenario.peek(&dead_queue).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(
        kept[0].0, demarche,
        "the dead letter is the original envelope"
    );
    assert_eq!(header_text(&kept[0].1, "x-aiguillage-status"), "dead");
    let errors = header_list(&kept[0].1, "x-aiguillage-errors");
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors.iter().all(|e| e.contains("503")), "{errors:?}");
    let recorded = running.store().errors(&id, "etat-civil").await.unwrap();
    assert_eq!(
        recorded
            .iter()
            .map(|(attempt, _, _)| *attempt)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );

    target.set_failing(false);
    let replay = dead(&scenario, &["replay", "--id", &id], &[]).await;
    assert!(replay.status.success(), "{}", stderr(&replay));
    let out = stdout(&replay);
    assert!(out.contains(&format!("{id} rejouée (etat-civil")), "{out}");
    assert!(out.contains("1 lettre morte rejouée(s)"), "{out}");

    events
        .wait_until(Duration::from_secs(30), |seen| {
            count_status(seen, "delivered") >= 1
        })
        .await;
    let delivered = events.with_status("delivered");
    assert_eq!(delivered.len(), 1, "the replayed démarche is delivered");
    assert_eq!(delivered[0]["id"], id.as_str());
    assert_eq!(delivered[0]["attempts"], 1, "the attempt count starts over");
    assert_eq!(target.effect_count(), 1);
    assert_eq!(target.effects()[0].key, id);
    assert!(
        scenario
            .wait_for_depth(&dead_queue, 0, Duration::from_secs(10))
            .await
    );
    let outcome = running
        .store()
        .outcome(&id, "etat-civil")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.status, aiguillage_bus::Status::Delivered);
    assert_eq!(outcome.attempts, 1);
    assert_eq!(
        running
            .store()
            .errors(&id, "etat-civil")
            .await
            .unwrap()
            .len(),
        3,
        "the error history outlives the replay"
    );

    scenario.finish(running).await;
}

/// `dead list` shows a refused démarche and a body that is not an envelope, each with its
/// reason, filters by connector, and leaves every message in its queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_list_shows_every_dead_letter_and_takes_none() {
    let target = RestTarget::start().await;
    let scenario = Scenario::urbanisme_refused(&target, "reject/urbanisme").await;
    let (mut events, running) = scenario.launch().await;
    let bus = scenario.bus();
    let (urbanisme, famille) = (bus.dead_queue("urbanisme"), bus.dead_queue("famille"));

    let refused = envelope(&scenario.prefix, CLISSON, "declaration-prealable", 1);
    let refused_id = refused["id"].as_str().unwrap();
    scenario.publish(std::slice::from_ref(&refused)).await;
    scenario
        .publish_unchecked("44043.inscription-cantine", br#"{"id": "x", "commune": "#)
        .await;
    events
        .wait_until(Duration::from_secs(30), |seen| {
            count_status(seen, "rejected") >= 1
        })
        .await;
    assert!(
        scenario
            .wait_for_depth(&urbanisme, 1, Duration::from_secs(10))
            .await
    );
    assert!(
        scenario
            .wait_for_depth(&famille, 1, Duration::from_secs(10))
            .await
    );

    let listed = dead(&scenario, &["list", "--json"], &[]).await;
    assert!(listed.status.success(), "{}", stderr(&listed));
    let letters = json_lines(&listed);
    assert_eq!(letters.len(), 2, "{}", stdout(&listed));
    let rejected = letters
        .iter()
        .find(|l| l["id"] == refused_id)
        .expect("the refused démarche");
    assert_eq!(rejected["connector"], "urbanisme");
    assert_eq!(rejected["commune"], CLISSON);
    assert_eq!(rejected["form"], "declaration-prealable");
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["attempts"], 1);
    let reason = rejected["reason"].as_str().unwrap();
    assert!(
        reason.contains("422") && reason.contains("nom_usage"),
        "{reason}"
    );
    assert!(
        rejected["age"].is_string(),
        "the age comes from the dead-at header"
    );
    let unreadable = letters
        .iter()
        .find(|l| l["id"] == "unreadable")
        .expect("the invalid body");
    assert_eq!(unreadable["connector"], "famille");
    assert_eq!(unreadable["status"], "rejected");
    assert_eq!(unreadable["commune"], CLISSON, "from the routing key");
    assert_eq!(unreadable["form"], "inscription-cantine");
    let reason = unreadable["reason"].as_str().unwrap();
    assert!(
        reason.contains("le corps n'est pas du JSON valide"),
        "{reason}"
    );

    let table = dead(&scenario, &["list"], &[]).await;
    assert!(table.status.success(), "{}", stderr(&table));
    let text = stdout(&table);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].ends_with("RAISON"),
        "{text}"
    );
    assert!(
        text.contains(refused_id) && text.contains("unreadable"),
        "{text}"
    );
    assert!(text.contains("le corps n'est pas du JSON valide"), "{text}");
    assert_eq!(lines.last(), Some(&"2 lettres mortes"), "{text}");

    let only = dead(
        &scenario,
        &["list", "--json", "--connector", "urbanisme"],
        &[],
    )
    .await;
    let letters = json_lines(&only);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["id"], refused_id);
    let only = dead(
        &scenario,
        &[
            "list",
            "--json",
            "--connector",
            "famille",
            "--form",
            "inscription-cantine",
        ],
        &[],
    )
    .await;
    let letters = json_lines(&only);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["id"], "unreadable");
    let unknown = dead(&scenario, &["list", "--connector", "cityweb"], &[]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("connecteur `cityweb` inconnu"),
        "{}",
        stderr(&unknown)
    );

    assert!(
        scenario
            .wait_for_depth(&urbanisme, 1, Duration::from_secs(10))
            .await,
        "listing takes nothing"
    );
    assert!(
        scenario
            .wait_for_depth(&famille, 1, Duration::from_secs(10))
            .await,
        "listing takes nothing"
    );
    assert_eq!(
        json_lines(&dead(&scenario, &["list", "--json"], &[]).await).len(),
        2,
        "a second listing sees the same dead letters"
    );

    scenario.finish(running).await;
}

/// `dead discard` wants a selector and a reason; with both it removes exactly the dead
/// letter named and records what, why and who in the store (PostgreSQL here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_discard_removes_exactly_what_it_is_told_and_records_it() {
    let target = RestTarget::start().await;
    let mut scenario = Scenario::new(StoreKind::Postgres).await;
    scenario
        .rest("urbanisme", &target.url("reject/urbanisme"), "")
        .route(CLISSON, &["declaration-prealable"], "urbanisme");
    let (mut events, running) = scenario.launch().await;
    let queue = scenario.bus().dead_queue("urbanisme");

    let first = envelope(&scenario.prefix, CLISSON, "declaration-prealable", 1);
    let second = envelope(&scenario.prefix, CLISSON, "declaration-prealable", 2);
    let (first_id, second_id) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );
    scenario.publish(&[first.clone(), second.clone()]).await;
    events
        .wait_until(Duration::from_secs(30), |seen| {
            count_status(seen, "rejected") >= 2
        })
        .await;
    assert!(
        scenario
            .wait_for_depth(&queue, 2, Duration::from_secs(10))
            .await
    );

    let reason = "envoyée par courrier, ticket 1234";
    let no_selector = dead(&scenario, &["discard", "--reason", reason], &[]).await;
    assert_eq!(no_selector.status.code(), Some(1));
    assert!(
        stderr(&no_selector).contains("--id"),
        "{}",
        stderr(&no_selector)
    );
    let no_reason = dead(&scenario, &["discard", "--id", first_id], &[]).await;
    assert!(!no_reason.status.success());
    assert!(
        stderr(&no_reason).contains("--reason"),
        "{}",
        stderr(&no_reason)
    );
    let blank_reason = dead(
        &scenario,
        &["discard", "--id", first_id, "--reason", " "],
        &[],
    )
    .await;
    assert_eq!(blank_reason.status.code(), Some(1));
    assert!(
        scenario
            .wait_for_depth(&queue, 2, Duration::from_secs(10))
            .await,
        "nothing discarded when refused"
    );

    let discarded = dead(
        &scenario,
        &["discard", "--id", first_id, "--reason", reason],
        &[("USER", "agent-clisson")],
    )
    .await;
    assert!(discarded.status.success(), "{}", stderr(&discarded));
    let out = stdout(&discarded);
    assert!(
        out.contains(&format!("{first_id} abandonnée (urbanisme")),
        "{out}"
    );
    assert!(
        out.contains("1 lettre morte abandonnée(s) par agent-clisson"),
        "{out}"
    );

    assert!(
        scenario
            .wait_for_depth(&queue, 1, Duration::from_secs(10))
            .await
    );
    let left = scenario.peek(&queue).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0["id"], second_id, "only the one named is gone");
    let rows = running.store().discards(first_id).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].reason, reason);
    assert_eq!(rows[0].discarded_by, "agent-clisson");
    assert_eq!(rows[0].connector, "urbanisme");
    assert_eq!(rows[0].commune, CLISSON);
    assert_eq!(rows[0].form, "declaration-prealable");
    assert!(!rows[0].discarded_at.is_empty());
    assert!(running
        .store()
        .discards(second_id)
        .await
        .unwrap()
        .is_empty());

    let missing = dead(
        &scenario,
        &["discard", "--id", first_id, "--reason", reason, "--by", "x"],
        &[],
    )
    .await;
    assert_eq!(
        missing.status.code(),
        Some(1),
        "an --id that is not there is an error"
    );
    assert!(
        scenario
            .wait_for_depth(&queue, 1, Duration::from_secs(10))
            .await
    );

    scenario.finish(running).await;
}

/// `dead replay` with no selector replays nothing and says how to select.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_replay_without_a_selector_is_refused() {
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    scenario
        .connector("famille", "rest", "url = \"http://127.0.0.1:9/x\"")
        .route(CLISSON, &["*"], "famille");
    let refused = dead(&scenario, &["replay"], &[]).await;
    assert_eq!(refused.status.code(), Some(1));
    let message = stderr(&refused);
    for hint in ["--id", "--all", "--connector"] {
        assert!(message.contains(hint), "{message}");
    }
    assert!(stdout(&refused).is_empty());
    scenario.cleanup().await;
}
