//! The démarches that no route takes, end to end on the real RabbitMQ: exactly one copy of
//! each waits in the unrouted queue, and `aiguillage unrouted list|replay|discard` shows
//! and deals with them.

use std::process::Output;
use std::time::Duration;

use aiguillage_tests::rest_target::RestTarget;
use aiguillage_tests::{
    admin_get, assert_says, envelope, gateway_bin, json_lines, stdout, Scenario, StoreKind,
};
use serde_json::{json, Value};

const CLISSON: &str = "44043";
const GORGES: &str = "44064";

/// Publishes a permis de construire of Gorges under Clisson's routing key (the mistake
/// these tests make): the envelope.
async fn publish_stray(scenario: &Scenario) -> Value {
    let stray = envelope(&scenario.prefix, GORGES, "permis-de-construire", 1);
    scenario
        .publish_unchecked(
            &format!("{CLISSON}.permis-de-construire"),
            stray.to_string().as_bytes(),
        )
        .await;
    stray
}

/// A scenario with two connectors of Clisson whose routes bind `44043.*` (billing and
/// état civil, both REST on `target`).
async fn clisson_scenario(target: &RestTarget) -> Scenario {
    Scenario::famille_and_etat_civil(target).await
}

/// Two connectors whose routes bind `44043.*`, and an envelope published under
/// `44043.permis-de-construire` whose body says Gorges: both connectors hold a copy, no
/// route takes it, and exactly one copy must wait in the unrouted queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_disagrees_with_its_body_leaves_one_unrouted_copy() {
    let target = RestTarget::start().await;
    let scenario = clisson_scenario(&target).await;
    let running = scenario.start().await;
    let stray = publish_stray(&scenario).await;

    let bus = scenario.bus();
    for connector in ["famille", "etat-civil"] {
        assert!(
            scenario
                .wait_for_depth(&bus.connector_queue(connector), 0, Duration::from_secs(30))
                .await,
            "`{connector}` handles its copy"
        );
    }
    assert!(
        scenario
            .wait_for_depth(&bus.unrouted_queue(), 1, Duration::from_secs(30))
            .await
    );
    // A second copy would come from the other connector within this time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let unrouted = scenario.drain(&bus.unrouted_queue()).await;
    assert_eq!(
        unrouted.len(),
        1,
        "one copy in the unrouted queue, not one per connector bound to 44043.*"
    );
    assert_eq!(unrouted[0].0["id"], stray["id"]);
    assert_eq!(target.effect_count(), 0);
    scenario.finish(running).await;
}

/// The same mistake, but a route of a third connector takes the démarche its body names
/// (Gorges), and that connector's queue, bound to `44064.*`, got no copy: one of the two
/// holders passes its copy on, so it is delivered once and nothing waits unrouted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_disagrees_with_its_body_still_reaches_the_connector_its_body_names() {
    let target = RestTarget::start().await;
    let mut scenario = clisson_scenario(&target).await;
    scenario
        .rest("urbanisme-gorges", &target.url("accept/gorges"), "")
        .route(GORGES, &["permis-*"], "urbanisme-gorges");
    let running = scenario.start().await;
    publish_stray(&scenario).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while target.effect_count() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A second delivery would come from the other holder within this time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        target.effect_count(),
        1,
        "delivered once, by the connector whose route takes its commune and form"
    );
    assert!(
        target.effects()[0].path.ends_with("accept/gorges"),
        "{:?}",
        target.effects()
    );
    let bus = scenario.bus();
    assert!(
        scenario
            .wait_for_depth(&bus.unrouted_queue(), 0, Duration::from_secs(5))
            .await,
        "nothing waits in the unrouted queue"
    );
    scenario.finish(running).await;
}

/// Runs `aiguillage unrouted discard --id <id> --reason <reason> <extra…>`.
async fn discard(scenario: &Scenario, id: &str, reason: &str, extra: &[&str]) -> Output {
    let mut args = vec!["unrouted", "discard", "--id", id, "--reason", reason];
    args.extend_from_slice(extra);
    cli(scenario, &args).await
}

/// Runs `aiguillage <args…> --config <the scenario's configuration>`.
async fn cli(scenario: &Scenario, args: &[&str]) -> Output {
    scenario.cli(gateway_bin!(), args, &[]).await
}

fn sha256_hex(body: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(body)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The unrouted démarches of a gateway are listed (CLI, API, metrics) without being taken,
/// replayed once a route takes them (and left in place, with the reason, while none does),
/// and discarded with who, why and the body's SHA-256, which `history` shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrouted_demarches_are_listed_replayed_once_routed_and_discarded() {
    let target = RestTarget::start().await;
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    scenario
        .rest("famille", &target.url("accept/x"), "")
        .route(CLISSON, &["inscription-*"], "famille")
        .admin_key("queue_depth_interval = \"1s\"");
    let running = scenario.start().await;
    let mut events = scenario.status_events().await;
    // Taken by `famille`'s broad binding then kept by it; and two that no binding takes.
    let permis = envelope(&scenario.prefix, CLISSON, "permis-de-construire", 1);
    let cantine = envelope(&scenario.prefix, GORGES, "inscription-cantine", 2);
    let piscine = envelope(&scenario.prefix, GORGES, "piscine", 3);
    scenario
        .publish(&[permis.clone(), cantine.clone(), piscine.clone()])
        .await;
    let queue = scenario.bus().unrouted_queue();
    assert!(
        scenario
            .wait_for_depth(&queue, 3, Duration::from_secs(30))
            .await
    );

    // Listed, not taken: by the CLI (JSON and table), the API and the gauge.
    let listed = cli(&scenario, &["unrouted", "list", "--json"]).await;
    assert!(listed.status.success(), "{listed:?}");
    let lines = json_lines(&listed);
    assert_eq!(lines.len(), 3, "{}", stdout(&listed));
    let line = lines
        .iter()
        .find(|l| l["id"] == permis["id"])
        .expect("the permis is listed");
    assert_eq!(line["commune"], CLISSON);
    assert_eq!(line["form"], "permis-de-construire");
    assert_eq!(line["status"], "unrouted");
    assert_eq!(line["routing_key"], "44043.permis-de-construire");
    assert!(
        line["reason"].as_str().unwrap().contains(
            "aucune route ne prend le formulaire `permis-de-construire` de la commune 44043"
        ),
        "{line}"
    );
    let table = stdout(&cli(&scenario, &["unrouted", "list", "--commune", GORGES]).await);
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains("2 démarches sans route"), "{table}");
    assert!(!table.contains("permis-de-construire"), "{table}");
    assert_eq!(
        scenario.queue_depth(&queue).await,
        3,
        "listing takes nothing"
    );
    let (status, body) = admin_get(&running, "/api/unrouted?form=piscine", None).await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["unrouted"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["unrouted"][0]["id"], piscine["id"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, metrics) = admin_get(&running, "/metrics", None).await;
        if metrics.contains("\naiguillage_unrouted_messages 3\n") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no gauge of the unrouted queue:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The dashboard shows them, and its button does not replay one no route takes.
    let (status, page) = admin_get(&running, "/", None).await;
    assert_eq!(status, 200, "{page}");
    let section = page
        .split("<table id=\"unrouted\">")
        .nth(1)
        .expect("the dashboard's section of the unrouted démarches");
    assert!(
        section.contains(permis["id"].as_str().unwrap()),
        "{section}"
    );
    assert!(
        section.contains("aucune route ne prend le formulaire"),
        "{section}"
    );
    let csrf = page
        .split("data-csrf=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's CSRF token");
    let addr = running.admin_addr().expect("admin server");
    let answer = reqwest::Client::new()
        .post(format!("http://{addr}/unrouted/replay"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={csrf}&id={}",
            permis["id"].as_str().unwrap().replace(':', "%3A")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 409);
    let text = answer.text().await.unwrap();
    assert!(
        text.contains("aucune route de la configuration ne prend encore"),
        "{text}"
    );
    assert_eq!(scenario.queue_depth(&queue).await, 3);

    // No route takes it yet: the replay leaves it where it is, and says why.
    let early = cli(
        &scenario,
        &["unrouted", "replay", "--form", "inscription-cantine"],
    )
    .await;
    assert!(early.status.success(), "{early:?}");
    assert_says(&early, "aucune route de la configuration ne prend encore");
    assert_eq!(scenario.queue_depth(&queue).await, 3);
    let vague = cli(&scenario, &["unrouted", "replay"]).await;
    assert!(!vague.status.success(), "a replay says which démarches");
    assert_eq!(scenario.queue_depth(&queue).await, 3);
    running.shutdown().await;

    // The route is added and the gateway restarted: the replay delivers it, once.
    scenario.route(GORGES, &["inscription-*"], "famille");
    let running = scenario.start().await;
    let listed = json_lines(
        &cli(
            &scenario,
            &[
                "unrouted",
                "list",
                "--json",
                "--id",
                cantine["id"].as_str().unwrap(),
            ],
        )
        .await,
    );
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("une route la prend désormais (famille)"),
        "{}",
        listed[0]
    );
    let replayed = cli(
        &scenario,
        &[
            "unrouted",
            "replay",
            "--commune",
            GORGES,
            "--form",
            "inscription-cantine",
        ],
    )
    .await;
    assert!(replayed.status.success(), "{replayed:?}");
    assert_says(&replayed, "1 démarche sans route republiée");
    let seen = events
        .wait_until(Duration::from_secs(30), |seen| {
            seen.iter().any(|(_, e)| e["status"] == "delivered")
        })
        .await;
    let delivered: Vec<&Value> = seen
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e["status"] == "delivered")
        .collect();
    assert_eq!(delivered.len(), 1, "{seen:?}");
    assert_eq!(delivered[0]["id"], cantine["id"]);
    assert_eq!(delivered[0]["commune"], GORGES);
    assert_eq!(target.effect_count(), 1);
    assert_eq!(scenario.queue_depth(&queue).await, 2);

    // A connector means nothing here: refused by the API, absent from the CLI.
    let client = reqwest::Client::new();
    let addr = running.admin_addr().expect("admin server");
    let refused = client
        .post(format!("http://{addr}/api/unrouted/discard"))
        .json(&json!({"connector": "famille", "reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let text = refused.text().await.unwrap();
    assert!(text.contains("pas de connecteur"), "{text}");
    assert!(
        !cli(&scenario, &["unrouted", "list", "--connector", "famille"])
            .await
            .status
            .success()
    );

    // Discarded for good: who, why, the body's SHA-256, in the store and the history.
    let no_reason = discard(&scenario, piscine["id"].as_str().unwrap(), " ", &[]).await;
    assert!(!no_reason.status.success());
    assert_eq!(scenario.queue_depth(&queue).await, 2);
    let discarded = discard(
        &scenario,
        piscine["id"].as_str().unwrap(),
        "piscine fermée, démarche de test",
        &["--by", "camille"],
    )
    .await;
    assert!(discarded.status.success(), "{discarded:?}");
    assert_eq!(scenario.queue_depth(&queue).await, 1);
    let rows = running
        .store()
        .discards(piscine["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].connector, "unrouted");
    assert_eq!(rows[0].discarded_by, "camille");
    assert_eq!(rows[0].reason, "piscine fermée, démarche de test");
    assert_eq!(rows[0].commune, GORGES);
    assert_eq!(
        rows[0].body_sha256.as_deref(),
        Some(sha256_hex(piscine.to_string().as_bytes()).as_str())
    );
    let history = cli(&scenario, &["history", piscine["id"].as_str().unwrap()]).await;
    assert!(history.status.success(), "{history:?}");
    let history = stdout(&history);
    assert!(
        history.contains("abandonnée par camille : piscine fermée"),
        "{history}"
    );

    // The last one stays, untouched.
    let left = scenario.peek(&queue).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0["id"], permis["id"]);
    scenario.finish(running).await;
}

/// A démarche that a connector keeps in the unrouted queue is a warning in the gateway's
/// log, with its commune and form: nothing else (no status event, no store row) tells of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demarche_kept_unrouted_is_logged_as_a_warning_with_its_commune_and_form() {
    let target = RestTarget::start().await;
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    scenario.rest("famille", &target.url("accept/x"), "").route(
        CLISSON,
        &["inscription-*"],
        "famille",
    );
    let log_path = scenario.dir.path().join("gateway.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut gateway = tokio::process::Command::new(env!("CARGO_BIN_EXE_aiguillage-e2e"))
        .args(["--log-format", "json", "run", "--config"])
        .arg(scenario.write_config())
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start the gateway");
    // Its queue bound to `44043.*` before the portal publishes.
    let queue = scenario.bus().connector_queue("famille");
    let connection = scenario.connection().await;
    let mut declared = false;
    for _ in 0..300 {
        let channel = connection.create_channel().await.unwrap();
        if aiguillage_bus::topology::queue_depth(&channel, &queue)
            .await
            .is_ok()
        {
            declared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = connection.close(200, "done".into()).await;
    assert!(declared, "the gateway declared its queue");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let permis = envelope(&scenario.prefix, CLISSON, "permis-de-construire", 1);
    scenario.publish(&[permis]).await;
    assert!(
        scenario
            .wait_for_depth(&scenario.bus().unrouted_queue(), 1, Duration::from_secs(30))
            .await
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let line = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .find(|line| line.contains("no route takes this démarche"))
        {
            break line.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no warning in the log:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let event: Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(event["level"], "WARN", "{line}");
    assert!(line.contains("\"commune\":\"44043\""), "{line}");
    assert!(line.contains("\"form\":\"permis-de-construire\""), "{line}");
    gateway.kill().await.expect("stop the gateway");
}
