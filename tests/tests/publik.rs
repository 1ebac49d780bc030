//! The loop with Publik, end to end on the machine's RabbitMQ: w.c.s. webhooks (from the
//! simulator, signed as w.c.s. signs them) through the intake onto the bus, and the status
//! events back to the portal as signed workflow triggers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aiguillage_gateway::admin::metrics::Metrics;
use aiguillage_publik::intake;
use aiguillage_tests::rest_target::RestTarget;
use aiguillage_tests::wcs_sim::WcsSim;
use aiguillage_tests::{Scenario, StoreKind};
use futures_util::StreamExt;
use lapin::types::FieldTable;
use serde_json::Value;

const PORTAL: &str = "csm";
const WCS_ORIG: &str = "demarches.csm.invalid";
const WCS_KEY: &str = "cle-du-portail-pour-ses-webhooks";
const GATEWAY_ORIG: &str = "aiguillage";
const GATEWAY_KEY: &str = "cle-de-la-passerelle-pour-les-triggers";

/// `[publik]` for a scenario: the intake on a free port, one portal with two forms (the
/// commune from a field, and a fixed one), its notifier towards `wcs_url` when given.
fn publik_toml(wcs_url: &str, notify: bool, extra_intake: &str) -> String {
    format!(
        r#"[publik.intake]
enabled = true
listen = "127.0.0.1:0"
path = "/intake"
retry_after = "5s"
{extra_intake}

[[publik.portals]]
name = "{PORTAL}"
url = "{wcs_url}"
orig = "{WCS_ORIG}"
secret = "{WCS_KEY}"

[publik.portals.notify]
enabled = {notify}
orig = "{GATEWAY_ORIG}"
secret = "{GATEWAY_KEY}"
retry_initial = "300ms"
retry_max_delay = "600ms"
triggers = {{ delivered = "transmis-logiciel-metier", rejected = "refus-logiciel-metier", dead = "echec-transmission" }}

[[publik.portals.forms]]
slug = "demande-acte-naissance"
commune_field = "commune"

[[publik.portals.forms]]
slug = "inscription-cantine"
commune = "44043"
"#
    )
}

/// A scenario whose routes take none of the portal's forms: every envelope the intake
/// publishes lands in the unrouted queue, where the test reads it.
async fn intake_scenario(wcs: &WcsSim, extra_intake: &str) -> Scenario {
    routing_elsewhere(&publik_toml(&wcs.base_url(), false, extra_intake)).await
}

/// A scenario with the Publik configuration `publik` and one file-drop connector whose
/// route takes none of the portal's forms.
async fn routing_elsewhere(publik: &str) -> Scenario {
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    scenario
        .connector(
            "elsewhere",
            "file-drop",
            &format!("directory = \"{}\"", scenario.subdir("drop").display()),
        )
        .route("44043", &["autre-formulaire"], "elsewhere")
        .extra(publik);
    scenario
}

/// Sends Clisson's `demande-acte-naissance` number `number` (as `wcs` describes it) from
/// `sim` to the intake at `url` with `method`: the status and the answer.
async fn send_demande(
    sim: &WcsSim,
    wcs: &WcsSim,
    method: reqwest::Method,
    url: &str,
    number: u64,
) -> (u16, Value) {
    let formdata = wcs.formdata("demande-acte-naissance", number, "44043");
    sim.send_webhook_with(method, url, &formdata).await
}

/// The refused statuses kept aside in `dead_queue` (taken), once there is one.
async fn kept_aside(scenario: &Scenario, dead_queue: &str) -> Vec<(Value, FieldTable)> {
    assert!(
        scenario
            .wait_for_depth(dead_queue, 1, Duration::from_secs(30))
            .await,
        "the refused status is kept aside"
    );
    scenario.drain(dead_queue).await
}

async fn start_intake(scenario: &Scenario) -> (intake::IntakeServer, String) {
    let (server, url, _) = start_intake_with_metrics(scenario).await;
    (server, url)
}

async fn start_intake_with_metrics(scenario: &Scenario) -> (intake::IntakeServer, String, Metrics) {
    let config = scenario.config();
    let metrics = Metrics::new([]);
    let server = intake::start(
        &config.bus,
        config.publik.intake.as_ref().expect("intake enabled"),
        &config.publik.portals,
        std::sync::Arc::new(metrics.clone()),
    )
    .await
    .expect("the intake listens");
    let url = format!("http://{}/intake", server.addr());
    (server, url, metrics)
}

/// The value of the sample of `metric` whose labels are exactly `labels`, in the
/// Prometheus text the admin server serves (0 when absent).
fn sample(metrics: &Metrics, metric: &str, labels: &str) -> u64 {
    let prefix = format!("{metric}{{{labels}}} ");
    metrics
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |value| value.trim().parse().expect("a count"))
}

async fn wcs() -> WcsSim {
    WcsSim::start(WCS_ORIG, WCS_KEY, GATEWAY_ORIG, GATEWAY_KEY).await
}

/// The envelope ids in the unrouted queue (taken).
async fn unrouted_ids(scenario: &Scenario) -> Vec<String> {
    let queue = scenario.bus().unrouted_queue();
    scenario
        .drain(&queue)
        .await
        .into_iter()
        .map(|(body, _)| body["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_signed_webhook_becomes_an_envelope_on_the_bus() {
    let wcs = wcs().await;
    let scenario = intake_scenario(&wcs, "").await;
    let (server, url) = start_intake(&scenario).await;

    let (status, _, answer) = wcs
        .send_webhook(&url, &wcs.formdata("demande-acte-naissance", 42, "44064"))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["err"], 0);
    assert_eq!(answer["id"], "csm:demande-acte-naissance:42");

    let queue = scenario.bus().unrouted_queue();
    let messages = scenario.drain(&queue).await;
    assert_eq!(messages.len(), 1);
    let envelope = &messages[0].0;
    assert_eq!(envelope["id"], "csm:demande-acte-naissance:42");
    assert_eq!(envelope["commune"], "44064", "from the field's _raw code");
    assert_eq!(envelope["form"], "demande-acte-naissance");
    assert_eq!(envelope["submitted_at"], "2026-11-28T10:12:00+01:00");
    assert_eq!(envelope["formdata"]["display_id"], "12-42");
    assert_eq!(envelope["formdata"]["fields"]["nom"], "Durand");

    server.stop().await;
    scenario.cleanup().await;
}

#[tokio::test]
async fn the_503_of_an_unreachable_broker_does_not_tell_where_the_broker_is() {
    let wcs = wcs().await;
    let scenario = intake_scenario(&wcs, "").await;
    // A port nothing listens on: the intake cannot reach its broker.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut config = scenario.config();
    config.bus.url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f").into();
    let server = intake::start(
        &config.bus,
        config.publik.intake.as_ref().expect("intake enabled"),
        &config.publik.portals,
        std::sync::Arc::new(Metrics::new([])),
    )
    .await
    .expect("the intake listens");
    let url = format!("http://{}/intake", server.addr());

    let (status, retry_after, answer) = wcs
        .send_webhook(&url, &wcs.formdata("demande-acte-naissance", 7, "44043"))
        .await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(
        retry_after.as_deref(),
        Some("5"),
        "a 503 says when to come back"
    );
    assert_eq!(answer["err"], 1);
    assert_eq!(answer["err_desc"], intake::BUS_UNAVAILABLE);
    let body = answer.to_string();
    for detail in [port.to_string().as_str(), "127.0.0.1", "amqp", "guest"] {
        assert!(!body.contains(detail), "{detail} in {body}");
    }

    server.stop().await;
    scenario.cleanup().await;
}

#[tokio::test]
async fn the_intake_refuses_what_it_cannot_take_with_a_precise_reason_and_publishes_nothing() {
    let wcs = wcs().await;
    let scenario = intake_scenario(&wcs, "max_body_bytes = 20000").await;
    let (server, url, metrics) = start_intake_with_metrics(&scenario).await;
    let client = reqwest::Client::new();
    let good = wcs
        .formdata("demande-acte-naissance", 1, "44043")
        .to_string();

    // Unsigned.
    let response = client.post(&url).body(good.clone()).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer["err_desc"]
            .as_str()
            .unwrap()
            .contains("no `signature`"),
        "{answer}"
    );

    // Signed with another key.
    let impostor = WcsSim::start(WCS_ORIG, "not the key", GATEWAY_ORIG, GATEWAY_KEY).await;
    let (status, _, answer) = impostor.post_signed(&url, good.as_bytes()).await;
    assert_eq!(status, 403);
    assert!(
        answer["err_desc"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{answer}"
    );

    // Signed by a portal the gateway does not know.
    let stranger = WcsSim::start("inconnu.invalid", WCS_KEY, GATEWAY_ORIG, GATEWAY_KEY).await;
    let (status, _, answer) = stranger.post_signed(&url, good.as_bytes()).await;
    assert_eq!(status, 403);
    assert!(
        answer["err_desc"]
            .as_str()
            .unwrap()
            .contains("unknown orig `inconnu.invalid`"),
        "{answer}"
    );

    // Not JSON, not an object, an unknown form, no commune.
    for (body, reason) in [
        ("{\"id\": ".to_owned(), "not valid JSON"),
        ("[1, 2]".to_owned(), "must be the démarche as a JSON object"),
        (
            wcs.formdata("permis-de-construire", 2, "44043").to_string(),
            "unknown form `permis-de-construire` for portal `csm` (configured: demande-acte-naissance, inscription-cantine)",
        ),
        (
            {
                let mut formdata = wcs.formdata("demande-acte-naissance", 3, "44043");
                formdata["fields"].as_object_mut().unwrap().remove("commune_raw");
                formdata["fields"].as_object_mut().unwrap().remove("commune");
                formdata.to_string()
            },
            "no field `commune` holding the commune",
        ),
        (
            wcs.formdata("demande-acte-naissance", 4, "Clisson").to_string(),
            "`Clisson`, which is not a 5-character INSEE code",
        ),
    ] {
        let (status, _, answer) = wcs.post_signed(&url, body.as_bytes()).await;
        assert_eq!(status, 400, "{answer}");
        let desc = answer["err_desc"].as_str().unwrap();
        assert!(desc.contains(reason), "{desc} !~ {reason}");
    }

    // Larger than max_body_bytes.
    let mut big = wcs.formdata("demande-acte-naissance", 5, "44043");
    big["fields"]["piece"] = "x".repeat(30_000).into();
    let (status, _, _) = wcs.send_webhook(&url, &big).await;
    assert_eq!(status, 413);

    // The body is not covered by the signature, but a signed URL serves once: the same
    // URL with another body is a replay.
    let signed = wcs.signed_url(&url);
    let first = client
        .post(&signed)
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 202);
    let other = wcs
        .formdata("demande-acte-naissance", 666, "44043")
        .to_string();
    let second = client.post(&signed).body(other).send().await.unwrap();
    assert_eq!(second.status(), 403);
    let answer: Value = second.json().await.unwrap();
    assert!(
        answer["err_desc"]
            .as_str()
            .unwrap()
            .contains("nonce already used"),
        "{answer}"
    );

    assert_eq!(
        unrouted_ids(&scenario).await,
        vec!["csm:demande-acte-naissance:1".to_owned()],
        "only the valid webhook reached the bus"
    );
    // The operator sees the same in /metrics.
    let webhooks = |result: &str| {
        sample(
            &metrics,
            "aiguillage_publik_webhooks_total",
            &format!("result=\"{result}\""),
        )
    };
    assert_eq!(webhooks("accepted"), 1);
    assert_eq!(
        webhooks("forbidden"),
        4,
        "unsigned, wrong key, unknown portal, replay"
    );
    assert_eq!(webhooks("invalid"), 6, "five 400s and a 413");
    assert_eq!(webhooks("unavailable"), 0);
    server.stop().await;
    scenario.cleanup().await;
}

#[tokio::test]
async fn two_thousand_webhooks_from_concurrent_clients_give_two_thousand_envelopes() {
    const COUNT: u64 = 2000;
    const CLIENTS: usize = 32;
    let wcs = wcs().await;
    let scenario = intake_scenario(&wcs, "").await;
    let (server, url) = start_intake(&scenario).await;

    let started = Instant::now();
    let statuses: Vec<(u64, u16)> = futures_util::stream::iter(1..=COUNT)
        .map(|number| {
            let wcs = wcs.clone();
            let url = url.clone();
            async move {
                let form = if number % 2 == 0 {
                    "demande-acte-naissance"
                } else {
                    "inscription-cantine"
                };
                let (status, _, _) = wcs
                    .send_webhook(&url, &wcs.formdata(form, number, "44043"))
                    .await;
                (number, status)
            }
        })
        .buffer_unordered(CLIENTS)
        .collect()
        .await;
    let elapsed = started.elapsed();
    eprintln!(
        "{COUNT} webhooks from {CLIENTS} clients in {:.2} s ({:.0}/s), each confirmed by the broker",
        elapsed.as_secs_f64(),
        COUNT as f64 / elapsed.as_secs_f64()
    );
    assert!(
        statuses.iter().all(|(_, status)| *status == 202),
        "every webhook accepted"
    );

    let ids = unrouted_ids(&scenario).await;
    assert_eq!(ids.len(), COUNT as usize, "one message per webhook");
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), COUNT as usize, "no duplicate");
    for number in 1..=COUNT {
        let form = if number % 2 == 0 {
            "demande-acte-naissance"
        } else {
            "inscription-cantine"
        };
        assert!(
            distinct.contains(&format!("csm:{form}:{number}")),
            "no loss ({number})"
        );
    }
    server.stop().await;
    scenario.cleanup().await;
}

/// A TCP proxy between the intake and RabbitMQ, cut for real: open connections closed,
/// new ones closed as soon as accepted (the shared broker itself is never stopped).
struct Proxy {
    addr: std::net::SocketAddr,
    cut: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (cut_flag, all) = (cut.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if cut_flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                all.lock().unwrap().push(link);
            }
        });
        Self { addr, cut, links }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// `host:port` of an AMQP URL.
fn broker_address(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, rest)| rest);
    let host = rest.split('/').next().unwrap_or(rest);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5672")
    }
}

#[tokio::test]
async fn with_the_broker_cut_midway_every_webhook_gets_202_and_is_on_the_bus_or_gets_503() {
    const COUNT: u64 = 1000;
    const CUT_AFTER: usize = 300;
    let wcs = wcs().await;
    let proxy = Proxy::start(broker_address(&aiguillage_tests::amqp_url())).await;
    let mut scenario = intake_scenario(&wcs, "").await;
    scenario.bus_url(&format!("amqp://guest:guest@{}/%2f", proxy.addr));
    let (server, url) = start_intake(&scenario).await;

    let accepted = Arc::new(AtomicUsize::new(0));
    let proxy = Arc::new(proxy);
    let results: Vec<(u64, u16, Option<String>)> = futures_util::stream::iter(1..=COUNT)
        .map(|number| {
            let (wcs, url, accepted, proxy) =
                (wcs.clone(), url.clone(), accepted.clone(), proxy.clone());
            async move {
                let (status, retry_after, _) = wcs
                    .send_webhook(&url, &wcs.formdata("inscription-cantine", number, "44043"))
                    .await;
                if status == 202 && accepted.fetch_add(1, Ordering::SeqCst) + 1 == CUT_AFTER {
                    proxy.cut();
                }
                (number, status, retry_after)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    let mut by_status: BTreeMap<u16, Vec<u64>> = BTreeMap::new();
    for (number, status, retry_after) in &results {
        by_status.entry(*status).or_default().push(*number);
        if *status == 503 {
            assert_eq!(
                retry_after.as_deref(),
                Some("5"),
                "a 503 says when to come back"
            );
        }
    }
    eprintln!(
        "broker cut after {CUT_AFTER} confirmed: {} answered 202, {} answered 503",
        by_status.get(&202).map_or(0, Vec::len),
        by_status.get(&503).map_or(0, Vec::len)
    );
    assert!(
        by_status
            .keys()
            .all(|status| *status == 202 || *status == 503),
        "only 202 or 503: {:?}",
        by_status.keys().collect::<Vec<_>>()
    );
    let ok = by_status.get(&202).cloned().unwrap_or_default();
    let unavailable = by_status.get(&503).cloned().unwrap_or_default();
    assert!(ok.len() >= CUT_AFTER, "the cut came midway");
    assert!(!unavailable.is_empty(), "the cut was felt");

    let on_bus: BTreeSet<String> = unrouted_ids(&scenario).await.into_iter().collect();
    for number in &ok {
        assert!(
            on_bus.contains(&format!("csm:inscription-cantine:{number}")),
            "démarche {number} answered 202 but is not on the bus"
        );
    }

    // As w.c.s. does after a 503: the portal sends them again once the broker is back.
    proxy.restore();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for number in &unavailable {
        let (status, _, answer) = wcs
            .send_webhook(&url, &wcs.formdata("inscription-cantine", *number, "44043"))
            .await;
        assert_eq!(status, 202, "{answer}");
    }
    let again: BTreeSet<String> = unrouted_ids(&scenario).await.into_iter().collect();
    for number in &unavailable {
        assert!(again.contains(&format!("csm:inscription-cantine:{number}")));
    }
    server.stop().await;
    scenario.cleanup().await;
}

/// Clisson's two connectors on `target` (état civil accepted with a `numero` reference,
/// billing refused), each with its route, and the Publik section `publik`. The intake has
/// its own listener: it needs no admin server.
async fn clisson_scenario(target: &RestTarget, publik: &str) -> Scenario {
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    scenario
        .rest(
            "clisson-etat-civil",
            &target.url("accept/clisson"),
            "reference_pointer = \"/numero\"",
        )
        .rest("clisson-famille", &target.url("reject/famille"), "")
        .route("44043", &["demande-acte-naissance"], "clisson-etat-civil")
        .route("44043", &["inscription-cantine"], "clisson-famille")
        .extra(publik)
        .admin_key("enabled = false");
    scenario
}

/// The full loop: the portal's webhook → the intake → the bus → the `rest` connector → a
/// `delivered` status event → the notifier → a signed trigger call on the démarche,
/// carrying the business software's reference; a refusal comes back as its own trigger,
/// and a portal outage delays the status without losing it.
#[tokio::test]
async fn round_trip_from_the_portal_to_the_software_and_back() {
    let wcs = wcs().await;
    let target = RestTarget::start().await;
    let scenario = clisson_scenario(&target, &publik_toml(&wcs.base_url(), true, "")).await;
    let running = scenario.start().await;
    let url = format!("http://{}/intake", running.intake_addr().expect("intake"));

    let (status, _, answer) = wcs
        .send_webhook(&url, &wcs.formdata("demande-acte-naissance", 42, "44043"))
        .await;
    assert_eq!(status, 202, "{answer}");
    let calls = wcs.wait_for_calls(1, Duration::from_secs(30)).await;
    assert_eq!(calls.len(), 1, "refused: {:?}", wcs.refused());
    let call = &calls[0];
    assert_eq!(call.form, "demande-acte-naissance");
    assert_eq!(call.number, "42");
    assert_eq!(call.trigger, "transmis-logiciel-metier");
    assert_eq!(call.orig, GATEWAY_ORIG);
    assert_eq!(call.body["status"], "delivered");
    assert_eq!(call.body["id"], "csm:demande-acte-naissance:42");
    let reference = call.body["reference"].as_str().expect("a reference");
    assert_eq!(
        target
            .effects()
            .iter()
            .find(|e| e.key == "csm:demande-acte-naissance:42")
            .map(|e| e.reference.clone()),
        Some(reference.to_owned()),
        "the reference is the software's"
    );

    // A démarche the software refuses: the `rejected` trigger, with the reason.
    let (status, _, _) = wcs
        .send_webhook(&url, &wcs.formdata("inscription-cantine", 7, "44064"))
        .await;
    assert_eq!(status, 202);
    let calls = wcs.wait_for_calls(2, Duration::from_secs(30)).await;
    let refusal = calls
        .iter()
        .find(|c| c.number == "7")
        .expect("the rejected trigger");
    assert_eq!(refusal.trigger, "refus-logiciel-metier");
    assert_eq!(refusal.body["status"], "rejected");
    assert!(refusal.body["error"]
        .as_str()
        .is_some_and(|e| !e.is_empty()));

    // The portal down for a while: the status waits in the retry queues, then arrives.
    wcs.set_failing(true);
    let (status, _, _) = wcs
        .send_webhook(&url, &wcs.formdata("demande-acte-naissance", 43, "44043"))
        .await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    while wcs.failed() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        wcs.failed() >= 3,
        "the notifier tried again during the outage"
    );
    assert_eq!(wcs.calls().len(), 2);
    wcs.set_failing(false);
    let calls = wcs.wait_for_calls(3, Duration::from_secs(30)).await;
    let late = calls
        .iter()
        .find(|c| c.number == "43")
        .expect("delivered after the outage");
    assert_eq!(late.trigger, "transmis-logiciel-metier");
    assert_eq!(late.body["status"], "delivered");
    assert!(
        wcs.refused().is_empty(),
        "every call was signed right: {:?}",
        wcs.refused()
    );
    let dead_queue = format!("{}.publik.{PORTAL}.dead", scenario.prefix);
    assert_eq!(scenario.queue_depth(&dead_queue).await, 0);

    // A status the portal refuses for good (a démarche it does not have: 404) is not
    // retried forever: it is kept in the notifier's dead letters with the portal's reason.
    scenario
        .publish(&[aiguillage_tests::envelope(
            PORTAL,
            "44043",
            "demande-acte-naissance",
            999,
        )])
        .await;
    let kept = kept_aside(&scenario, &dead_queue).await;
    assert_eq!(kept[0].0["id"], "csm:demande-acte-naissance:999");
    assert_eq!(kept[0].0["status"], "delivered");
    let reason = aiguillage_tests::header_text(&kept[0].1, "x-aiguillage-reason");
    assert!(
        reason.contains("404") && reason.contains("no démarche 999"),
        "{reason}"
    );
    assert_eq!(
        wcs.calls().len(),
        3,
        "no trigger on a démarche the portal does not have"
    );
    let notifications = |result: &str| {
        sample(
            running.metrics(),
            "aiguillage_publik_notifications_total",
            &format!("portal=\"{PORTAL}\",result=\"{result}\""),
        )
    };
    assert_eq!(notifications("sent"), 3);
    assert!(
        notifications("retried") >= 3,
        "{}",
        notifications("retried")
    );
    assert_eq!(notifications("refused"), 1);
    assert_eq!(
        sample(
            running.metrics(),
            "aiguillage_publik_webhooks_total",
            "result=\"accepted\""
        ),
        3
    );

    scenario.finish(running).await;
}

/// Publishes a status event again on the status exchange, as the bus does after a crash
/// between the portal's answer and the notifier's acknowledgement.
async fn publish_status_event_again(scenario: &Scenario, event: &Value) {
    let connection = scenario.connection().await;
    let bus = scenario.bus();
    let publisher = aiguillage_bus::Publisher::open(&connection)
        .await
        .expect("channel");
    let key = format!(
        "{}.{}.{}",
        event["commune"].as_str().unwrap(),
        event["form"].as_str().unwrap(),
        event["status"].as_str().unwrap()
    );
    publisher
        .publish(
            &bus.status_exchange,
            &key,
            event.to_string().as_bytes(),
            aiguillage_bus::publisher::persistent_json(),
            true,
        )
        .await
        .expect("publish");
    let _ = connection.close(200, "done".into()).await;
}

/// What w.c.s. answers a jump trigger, reproduced by the simulator: 403 "Formdata
/// currently processing actions." while the démarche still runs the actions of the status
/// whose webhook called the gateway (a fast connector's `delivered` arrives then), 404 once
/// the jump moved it on, 403 "Unsufficient roles." for a caller without the roles. Every
/// status ends applied; a second call of an applied trigger is "already applied", not a
/// dead letter; a global action's hook is called on its own URL; the roles refusal is kept
/// aside with w.c.s.'s words.
#[tokio::test]
async fn every_status_ends_applied_against_the_portals_real_answers() {
    const COUNT: u64 = 10;
    let wcs = wcs().await;
    wcs.set_processing_window(Duration::from_secs(2));
    let target = RestTarget::start().await;
    let scenario = clisson_scenario(
        &target,
        &format!(
            "{}triggers = {{ rejected = {{ hook = \"refus-logiciel-metier\" }} }}\n",
            publik_toml(&wcs.base_url(), true, "")
        ),
    )
    .await;
    let running = scenario.start().await;
    let dead_queue = format!("{}.publik.{PORTAL}.dead", scenario.prefix);
    let url = format!("http://{}/intake", running.intake_addr().expect("intake"));
    let notifications = |result: &str| {
        sample(
            running.metrics(),
            "aiguillage_publik_notifications_total",
            &format!("portal=\"{PORTAL}\",result=\"{result}\""),
        )
    };

    // Ten démarches whose `delivered` comes back while the portal still runs their
    // actions.
    let statuses: Vec<u16> = futures_util::stream::iter(1..=COUNT)
        .map(|number| {
            let (wcs, url) = (wcs.clone(), url.clone());
            async move {
                let formdata = wcs.formdata("demande-acte-naissance", number, "44043");
                wcs.send_webhook(&url, &formdata).await.0
            }
        })
        .buffer_unordered(10)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    let calls = wcs
        .wait_for_calls(COUNT as usize, Duration::from_secs(60))
        .await;
    assert_eq!(calls.len(), COUNT as usize, "refused: {:?}", wcs.refused());
    let numbers: BTreeSet<&str> = calls.iter().map(|c| c.number.as_str()).collect();
    assert_eq!(numbers.len(), COUNT as usize, "one jump per démarche");
    assert!(calls
        .iter()
        .all(|c| c.trigger == "transmis-logiciel-metier" && !c.hook));
    assert!(
        wcs.processing_refused() >= 1,
        "the statuses did arrive during the processing window"
    );
    // The portal records a jump before its answer reaches the notifier, which counts
    // it as sent only then: wait for the count rather than read it at once.
    let deadline = Instant::now() + Duration::from_secs(30);
    while notifications("sent") < COUNT && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(notifications("sent"), COUNT);
    assert!(notifications("retried") >= wcs.processing_refused());
    assert_eq!(notifications("refused"), 0);
    assert_eq!(scenario.queue_depth(&dead_queue).await, 0, "no dead letter");

    // The same status again (a crash between the portal's 2xx and the ack): the jump
    // is gone from the démarche's new status (404), and the store shows it was taken.
    publish_status_event_again(&scenario, &calls[0].body).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while notifications("already_applied") < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(notifications("already_applied"), 1);
    assert_eq!(wcs.moved_on(), 1, "the portal answered 404");
    assert_eq!(wcs.calls().len(), COUNT as usize);
    assert_eq!(
        scenario.queue_depth(&dead_queue).await,
        0,
        "not a dead letter"
    );

    // A refusal goes to the global action's hook, which works whatever the status.
    let (status, _, _) = wcs
        .send_webhook(&url, &wcs.formdata("inscription-cantine", 20, "44043"))
        .await;
    assert_eq!(status, 202);
    let calls = wcs
        .wait_for_calls(COUNT as usize + 1, Duration::from_secs(30))
        .await;
    let refusal = calls
        .iter()
        .find(|c| c.number == "20")
        .expect("the hook was called");
    assert!(refusal.hook, "called on …/hooks/refus-logiciel-metier/");
    assert_eq!(refusal.trigger, "refus-logiciel-metier");
    assert_eq!(refusal.body["status"], "rejected");

    // A caller without the roles: refused for good, with w.c.s.'s reason.
    wcs.set_processing_window(Duration::ZERO);
    wcs.set_refuse_roles(true);
    let (status, _, _) = wcs
        .send_webhook(&url, &wcs.formdata("demande-acte-naissance", 30, "44043"))
        .await;
    assert_eq!(status, 202);
    let kept = kept_aside(&scenario, &dead_queue).await;
    assert_eq!(kept[0].0["id"], "csm:demande-acte-naissance:30");
    let reason = aiguillage_tests::header_text(&kept[0].1, "x-aiguillage-reason");
    assert!(
        reason.contains("403") && reason.contains("Unsufficient roles."),
        "{reason}"
    );
    assert_eq!(notifications("refused"), 1);
    scenario.finish(running).await;
}

/// The "Webservice" action offers POST, PUT and PATCH with the same body: all three are
/// taken. A portal whose w.c.s. signs some calls itself (`[wscall-secrets]`, with its own
/// host name as `orig`) lists both names; a name it does not list is still refused.
#[tokio::test]
async fn put_and_patch_are_taken_and_a_portal_may_sign_with_several_origs() {
    let wcs = wcs().await;
    let scenario = routing_elsewhere(&publik_toml(&wcs.base_url(), false, "").replace(
        &format!("orig = \"{WCS_ORIG}\""),
        &format!("orig = [\"{WCS_ORIG}\", \"wcs.csm.invalid\"]"),
    ))
    .await;
    let (server, url) = start_intake(&scenario).await;
    let host_signed = WcsSim::start("wcs.csm.invalid", WCS_KEY, GATEWAY_ORIG, GATEWAY_KEY).await;
    let (status, answer) = send_demande(&wcs, &wcs, reqwest::Method::PUT, &url, 1).await;
    assert_eq!(status, 202, "PUT: {answer}");
    let (status, answer) = send_demande(&host_signed, &wcs, reqwest::Method::PATCH, &url, 2).await;
    assert_eq!(status, 202, "PATCH signed with the host name: {answer}");
    let (status, _, answer) = host_signed
        .send_webhook(&url, &wcs.formdata("demande-acte-naissance", 3, "44043"))
        .await;
    assert_eq!(status, 202, "POST signed with the host name: {answer}");
    let stranger = WcsSim::start("autre.invalid", WCS_KEY, GATEWAY_ORIG, GATEWAY_KEY).await;
    let (status, answer) = send_demande(&stranger, &wcs, reqwest::Method::PUT, &url, 4).await;
    assert_eq!(status, 403, "an orig not listed: {answer}");
    let ids: BTreeSet<String> = unrouted_ids(&scenario).await.into_iter().collect();
    assert_eq!(
        ids,
        (1..=3)
            .map(|n| format!("csm:demande-acte-naissance:{n}"))
            .collect::<BTreeSet<_>>()
    );
    server.stop().await;
    scenario.cleanup().await;
}

/// What w.c.s.'s "Webservice" action sends with "Transmettre toutes les données de la
/// demande/fiche" (`get_json_export_dict`, and the action's extra data under `extra`): a
/// back-office submission with text, list, date and file fields (content in base64) and
/// non-ASCII text arrives on the bus as it was sent, byte for byte in its JSON values.
#[tokio::test]
async fn a_full_wcs_export_arrives_intact() {
    let wcs = wcs().await;
    let scenario = intake_scenario(&wcs, "").await;
    let (server, url) = start_intake(&scenario).await;
    let base = wcs.base_url();
    let formdata = serde_json::json!({
        "id": 57,
        "internal_id": "57",
        "display_id": "12-57",
        "display_name": "Demande d'acte de naissance n°12-57",
        "digests": {"default": "Nguyễn Thị Ánh — copie intégrale"},
        "text": "Demande d'acte de naissance",
        "receipt_time": "2026-07-14T09:30:05",
        "last_update_time": "2026-07-14T09:31:00",
        "url": format!("{base}demande-acte-naissance/57/"),
        "api_url": format!("{base}api/forms/demande-acte-naissance/57/"),
        "backoffice_url": format!("{base}backoffice/management/demande-acte-naissance/57/"),
        "criticality_level": 0,
        "user": {"id": 12, "name": "Nguyễn Thị Ánh", "email": "anh.nguyen@example.invalid", "NameID": ["f00d"]},
        "submission": {"channel": "courrier", "backoffice": true, "agent": {"id": 3, "name": "Agent d'accueil"}},
        "fields": {
            "nom": "Nguyễn", "prenoms": "Thị Ánh Éloïse",
            "commune": "Gorges", "commune_raw": "44064",
            "nature_document": "Copie intégrale", "nature_document_raw": "CPI",
            "nature_document_structured": {"id": "CPI", "text": "Copie intégrale"},
            "date_naissance": "1988-02-29",
            "adresse": "12, rue de l'Église\n44190 Gorges",
            "justificatif": {
                "field_id": "7",
                "filename": "livret-de-famille-é.pdf",
                "content_type": "application/pdf",
                "content": "JVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nPj4KZW5kb2JqCg=="
            },
            "pieces": [{"filename": "a.png", "content_type": "image/png", "content": "iVBORw0KGgo="}],
            "motif": null,
            "nombre_copies": 2,
            "urgence": true
        },
        "workflow": {
            "status": {"id": "recu", "name": "Reçue"},
            "real_status": {"id": "recu", "name": "Reçue"},
            "fields": {"numero_dossier": "ÉC-2026-57"},
            "data": {"transmis": false}
        },
        "evolution": [{"status": "recu", "time": "2026-07-14T09:30:05", "who": {"id": 3, "name": "Agent d'accueil"}, "parts": []}],
        "roles": {"_receiver": [{"id": "a1", "name": "État civil de Gorges", "slug": "etat-civil-gorges"}]},
        "extra": {"commune_insee": "44064", "origine": "guichet — accueil", "priorite": 2}
    });
    let (status, _, answer) = wcs.send_webhook(&url, &formdata).await;
    assert_eq!(status, 202, "{answer}");
    let messages = scenario.drain(&scenario.bus().unrouted_queue()).await;
    assert_eq!(messages.len(), 1);
    let envelope = &messages[0].0;
    assert_eq!(
        envelope["formdata"], formdata,
        "every value as w.c.s. sent it"
    );
    assert_eq!(envelope["commune"], "44064");
    assert_eq!(
        envelope["submitted_at"], "2026-07-14T09:30:05+02:00",
        "a summer local time"
    );
    server.stop().await;
    scenario.cleanup().await;
}
