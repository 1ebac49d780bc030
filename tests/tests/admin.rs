//! The admin server of a running gateway, end to end: health and readiness (with the
//! broker dropping the gateway's connection for real), the metrics after real deliveries,
//! every documented metric present, the bearer token, and the guards against DNS rebinding,
//! cross-origin requests and token guessing (docs/security.md).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aiguillage_tests::rest_target::RestTarget;
use aiguillage_tests::{
    admin_get, close_connections_named, count_status, envelope, Scenario, StoreKind,
};
use prometheus_parse::{Sample, Scrape, Value};

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
        .unwrap_or_else(|error| panic!("/metrics is not Prometheus text ({error}):\n{text}"))
}

/// The value of the sample `name` whose labels are exactly `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|sample| sample.metric == name && has_labels(sample, labels))
        .and_then(|sample| match sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
            _ => None,
        })
}

fn has_labels(sample: &Sample, labels: &[(&str, &str)]) -> bool {
    sample.labels.len() == labels.len()
        && labels
            .iter()
            .all(|(key, value)| sample.labels.get(key) == Some(*value))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_follow_the_bus_connection() {
    let target = RestTarget::start().await;
    let scenario = Scenario::famille(&target.url("accept/famille"), "").await;
    let mut running = scenario.start().await;

    assert_eq!(
        admin_get(&running, "/healthz", None).await,
        (200, "ok\n".into())
    );
    assert_eq!(
        admin_get(&running, "/readyz", None).await,
        (200, "ok\n".into())
    );

    // Watch /readyz while the broker drops the connection: rabbitmqctl may return after the
    // gateway has already reconnected, so the watch starts first.
    let seen: Arc<Mutex<Vec<(u16, String)>>> = Arc::default();
    let (stop_watching, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let url = format!("http://{}/readyz", running.admin_addr().unwrap());
    let watcher = tokio::spawn({
        let seen = seen.clone();
        async move {
            let client = reqwest::Client::new();
            loop {
                if let Ok(response) = client.get(&url).send().await {
                    let status = response.status().as_u16();
                    let body = response.text().await.unwrap_or_default();
                    seen.lock().unwrap().push((status, body));
                }
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        }
    });
    assert_eq!(
        close_connections_named(&scenario.prefix),
        1,
        "the gateway's connection was found and closed"
    );
    // Not ready until it reconnects, ready again by itself.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ready_again = {
            let seen = seen.lock().unwrap();
            let lost = seen.iter().position(|(status, _)| *status == 503);
            lost.is_some_and(|at| seen[at..].iter().any(|(status, _)| *status == 200))
        };
        if ready_again {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz did not go 503 then 200: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_watching.send(());
    watcher.await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let lost: Vec<&String> = seen
        .iter()
        .filter(|(status, _)| *status == 503)
        .map(|(_, body)| body)
        .collect();
    assert!(
        lost.iter()
            .all(|body| body.starts_with("bus : non connecté")),
        "503 says why: {lost:?}"
    );
    assert!(running.wait_ready(Duration::from_secs(1)).await);

    // The reconnection is counted, and the gateway delivers again.
    let (_, text) = admin_get(&running, "/metrics", None).await;
    let scrape = parse(&text);
    assert!(
        value(&scrape, "aiguillage_bus_reconnects_total", &[]).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    scenario
        .publish(&[envelope(
            &scenario.prefix,
            "44043",
            "inscription-cantine",
            1,
        )])
        .await;
    assert!(target.wait_for_effects(1, Duration::from_secs(30)).await);

    scenario.finish(running).await;
}

/// The scenario of the metrics tests: 10 démarches delivered by `famille`, 1 rejected by
/// `refus` (its target answers 422).
async fn deliver_ten_reject_one() -> (Scenario, aiguillage_gateway::service::Running, RestTarget) {
    let target = RestTarget::start().await;
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    scenario
        .rest("famille", &target.url("accept/famille"), "")
        .rest("refus", &target.url("reject/refus"), "")
        .route("44043", &["inscription-*"], "famille")
        .route("44043", &["demande-acte-*"], "refus")
        .admin_key("queue_depth_interval = \"1s\"");
    let (mut events, running) = scenario.launch().await;
    let mut envelopes: Vec<_> = (0..10)
        .map(|n| envelope(&scenario.prefix, "44043", "inscription-cantine", n))
        .collect();
    envelopes.push(envelope(
        &scenario.prefix,
        "44043",
        "demande-acte-naissance",
        100,
    ));
    scenario.publish(&envelopes).await;
    let seen = events
        .wait_until(Duration::from_secs(30), |seen| {
            count_status(seen, "delivered") >= 10 && count_status(seen, "rejected") >= 1
        })
        .await;
    assert_eq!(count_status(seen, "delivered"), 10);
    assert_eq!(count_status(seen, "rejected"), 1);
    (scenario, running, target)
}

/// Scrapes until `ready` holds (the counts follow the acks, the queue depths are read every
/// second here), at most 15 s.
async fn scrape_until(
    running: &aiguillage_gateway::service::Running,
    ready: impl Fn(&Scrape) -> bool,
) -> (Scrape, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, text) = admin_get(running, "/metrics", None).await;
        assert_eq!(status, 200, "{text}");
        let scrape = parse(&text);
        if ready(&scrape) || tokio::time::Instant::now() >= deadline {
            return (scrape, text);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_was_delivered_and_rejected() {
    let (scenario, running, _target) = deliver_ten_reject_one().await;
    let dead = [("connector", "refus"), ("queue", "dead")];
    let (scrape, text) = scrape_until(&running, |scrape| {
        value(scrape, "aiguillage_queue_messages", &dead) == Some(1.0)
            && value(
                scrape,
                "aiguillage_messages_total",
                &[
                    ("commune", "44043"),
                    ("form", "inscription-cantine"),
                    ("connector", "famille"),
                    ("outcome", "delivered"),
                ],
            ) == Some(10.0)
    })
    .await;
    let get = |name: &str, labels: &[(&str, &str)]| value(&scrape, name, labels);
    let famille = [
        ("commune", "44043"),
        ("form", "inscription-cantine"),
        ("connector", "famille"),
    ];
    let refus = [
        ("commune", "44043"),
        ("form", "demande-acte-naissance"),
        ("connector", "refus"),
    ];
    let with = |labels: &[(&'static str, &'static str)], outcome: &'static str| {
        let mut labels = labels.to_vec();
        labels.push(("outcome", outcome));
        labels
    };

    // Counters: exactly what happened, with its labels, and nothing else.
    assert_eq!(
        get("aiguillage_messages_received_total", &famille),
        Some(10.0),
        "{text}"
    );
    assert_eq!(
        get("aiguillage_messages_received_total", &refus),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        get("aiguillage_messages_total", &with(&famille, "delivered")),
        Some(10.0),
        "{text}"
    );
    assert_eq!(
        get("aiguillage_messages_total", &with(&refus, "rejected")),
        Some(1.0),
        "{text}"
    );
    let outcomes: Vec<&Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "aiguillage_messages_total")
        .collect();
    assert_eq!(outcomes.len(), 2, "no other outcome: {text}");

    // Histograms: one observation per delivery (latency) and per call (target).
    let by = |connector| [("connector", connector)];
    assert_eq!(
        get("aiguillage_delivery_latency_seconds_count", &by("famille")),
        Some(10.0),
        "{text}"
    );
    assert_eq!(
        get("aiguillage_delivery_latency_seconds_count", &by("refus")),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        get("aiguillage_target_call_seconds_count", &by("famille")),
        Some(10.0),
        "{text}"
    );
    assert_eq!(
        get("aiguillage_target_call_seconds_count", &by("refus")),
        Some(1.0),
        "{text}"
    );
    let histogram = scrape
        .samples
        .iter()
        .find(|s| s.metric == "aiguillage_target_call_seconds" && has_labels(s, &by("famille")))
        .unwrap_or_else(|| panic!("the target call histogram has buckets: {text}"));
    assert!(matches!(&histogram.value, Value::Histogram(buckets) if buckets.len() > 5));
    // Measured from the publish time (the AMQP timestamp the publisher set, whole seconds),
    // not from the envelope's submission a day before.
    let latency = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "aiguillage_delivery_latency_seconds" && has_labels(s, &by("famille"))
        })
        .unwrap_or_else(|| panic!("the latency histogram has buckets: {text}"));
    let Value::Histogram(buckets) = &latency.value else {
        panic!("{text}")
    };
    assert!(
        buckets
            .iter()
            .any(|b| b.less_than == 15.0 && b.count == 10.0),
        "all 10 delivered within 15 s of their publication: {text}"
    );

    // Gauges: nothing in flight, breakers closed, queue depths as the broker says.
    for connector in ["famille", "refus"] {
        assert_eq!(
            get("aiguillage_in_flight", &by(connector)),
            Some(0.0),
            "{text}"
        );
        assert_eq!(
            get("aiguillage_breaker_state", &by(connector)),
            Some(0.0),
            "{text}"
        );
        assert_eq!(
            get("aiguillage_breaker_opened_total", &by(connector)),
            Some(0.0),
            "{text}"
        );
        assert_eq!(
            get(
                "aiguillage_queue_messages",
                &[("connector", connector), ("queue", "main")]
            ),
            Some(0.0),
            "{text}"
        );
    }
    assert_eq!(
        get(
            "aiguillage_queue_messages",
            &[("connector", "famille"), ("queue", "dead")]
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(get("aiguillage_queue_messages", &dead), Some(1.0), "{text}");
    assert_eq!(
        get("aiguillage_bus_reconnects_total", &[]),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        get(
            "aiguillage_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains(&scenario.prefix),
        "no envelope id in a label: {text}"
    );

    scenario.finish(running).await;
}

/// The documentation's list of metrics and the gateway's agree, and a gateway at work
/// exposes every one: a metric renamed or dropped fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_metric_is_exposed() {
    let operations = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/operations.md"
    ))
    .expect("docs/operations.md");
    let documented: BTreeSet<String> = operations
        .lines()
        .filter_map(|line| line.strip_prefix("| `aiguillage_"))
        .filter_map(|rest| rest.split('`').next())
        .map(|name| format!("aiguillage_{}", name.split('{').next().unwrap_or(name)))
        .collect();
    let known: BTreeSet<String> = aiguillage_gateway::admin::metrics::ALL
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    assert_eq!(
        documented, known,
        "docs/operations.md lists the gateway's metrics"
    );

    let (scenario, running, _target) = deliver_ten_reject_one().await;
    let (scrape, text) = scrape_until(&running, |scrape| {
        documented
            .iter()
            .filter(|name| !name.starts_with("aiguillage_publik_"))
            .all(|name| scrape.samples.iter().any(|s| s.metric == *name))
    })
    .await;
    // The Publik intake's and notifier's counters appear once they count something, in a
    // gateway with Publik configured: tests/tests/publik.rs checks them there.
    for name in documented
        .iter()
        .filter(|name| !name.starts_with("aiguillage_publik_"))
    {
        assert!(
            scrape.samples.iter().any(|s| s.metric == *name),
            "{name} is documented but missing from /metrics:\n{text}"
        );
        assert!(scrape.docs.contains_key(name), "{name} has no HELP line");
    }

    scenario.finish(running).await;
}

/// The admin token of [`token_scenario`].
const TOKEN: &str = "f3b1c9d2e8a7465b9c0d1e2f3a4b5c6d";

/// One connector of Clisson on `target`, and an admin server that requires [`TOKEN`].
async fn token_scenario(target: &RestTarget) -> Scenario {
    let mut scenario = Scenario::famille(&target.url("accept/famille"), "").await;
    scenario.admin_key(&format!("token = \"{TOKEN}\""));
    scenario
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_token_guards_every_route_but_healthz() {
    let target = RestTarget::start().await;
    let scenario = token_scenario(&target).await;
    let running = scenario.start().await;

    assert_eq!(admin_get(&running, "/healthz", None).await.0, 200);
    for path in ["/readyz", "/metrics"] {
        let (status, body) = admin_get(&running, path, None).await;
        assert_eq!(status, 401, "{path} without a token: {body}");
        assert!(!body.contains("aiguillage_"), "{body}");
        let (status, _) = admin_get(&running, path, Some("f3b1c9d2e8a7465b9c0d1e2f3a4b5c6")).await;
        assert_eq!(status, 401, "{path} with a wrong token");
        let (status, body) = admin_get(&running, path, Some(TOKEN)).await;
        assert_eq!(status, 200, "{path} with the token: {body}");
    }
    let (_, metrics) = admin_get(&running, "/metrics", Some(TOKEN)).await;
    assert!(metrics.contains("aiguillage_build_info"), "{metrics}");

    scenario.finish(running).await;
}

/// Runs `checks` against the admin server at `addr`, then stops the gateway and removes
/// the scenario's queues and exchanges whatever the outcome, and only then fails if a
/// check did.
async fn checked<F>(
    scenario: Scenario,
    running: aiguillage_gateway::service::Running,
    checks: impl FnOnce(String) -> F,
) where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let base = format!("http://{}", running.admin_addr().unwrap());
    let outcome = tokio::spawn(checks(base)).await;
    scenario.finish(running).await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Sends `request` with `Host: host` (and the headers given): the status and the body.
async fn with_host(
    request: reqwest::RequestBuilder,
    host: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut request = request
        .header("host", host)
        .timeout(Duration::from_secs(10));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the admin server answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_another_host_or_from_another_origin_is_refused() {
    let target = RestTarget::start().await;
    let mut scenario = Scenario::famille(&target.url("accept/famille"), "").await;
    scenario.admin_key("public_names = [\"aiguillage.agglo.invalid\"]");
    let running = scenario.start().await;

    checked(scenario, running, |base| async move {
        let http = reqwest::Client::new();
        let port = base.rsplit(':').next().unwrap().to_owned();
        let discard = format!("{base}/api/dead-letters/discard");
        let body = r#"{"connector": "famille", "id": "x", "reason": "test"}"#;
        let json = [("content-type", "application/json")];

        // The issue's reproduction: no token, a page of a rebinding domain.
        let rebound = format!("attacker-rebind.example:{port}");
        for path in [
            "/api/deliveries?q=1",
            "/api/overview",
            "/",
            "/metrics",
            "/healthz",
            "/nowhere",
        ] {
            let (status, text) = with_host(http.get(format!("{base}{path}")), &rebound, &[]).await;
            assert_eq!(status, 421, "GET {path} for {rebound}: {text}");
            assert!(text.contains("Hôte inconnu"), "{text}");
        }
        let (status, _) = with_host(http.post(&discard).body(body), &rebound, &json).await;
        assert_eq!(status, 421, "the discard of the issue");

        // Its own names: the listen address, loopback names, the public name.
        for host in [
            format!("127.0.0.1:{port}"),
            "127.0.0.1".to_owned(),
            format!("localhost:{port}"),
            "aiguillage.agglo.invalid".to_owned(),
        ] {
            let (status, text) =
                with_host(http.get(format!("{base}/api/overview")), &host, &[]).await;
            assert_eq!(status, 200, "GET /api/overview for {host}: {text}");
        }

        // A state change from a page of another origin, even to the right host: 403.
        let own = format!("127.0.0.1:{port}");
        for origin in [
            "http://attacker.example".to_owned(),
            format!("http://localhost:{port}"),
            "http://127.0.0.1:8080".to_owned(),
            "null".to_owned(),
        ] {
            let mut headers = json.to_vec();
            headers.push(("origin", origin.as_str()));
            let (status, text) = with_host(http.post(&discard).body(body), &own, &headers).await;
            assert_eq!(status, 403, "POST from {origin}: {text}");
            assert!(text.contains("autre site"), "{text}");
        }
        let cross_site = [json[0], ("sec-fetch-site", "cross-site")];
        let (status, _) = with_host(http.post(&discard).body(body), &own, &cross_site).await;
        assert_eq!(status, 403, "a browser saying cross-site without Origin");
        let (status, _) = with_host(
            http.post(format!("{base}/dead-letters/discard"))
                .body("csrf=x&connector=famille&id=x"),
            &own,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", "http://attacker.example"),
            ],
        )
        .await;
        assert_eq!(status, 403, "the dashboard's form too");

        // Its own page, the public name's page, or a script without Origin: let through
        // (to the API, which then answers on the request itself).
        let own_origin = format!("http://127.0.0.1:{port}");
        for headers in [
            vec![json[0], ("origin", own_origin.as_str())],
            vec![json[0], ("origin", "https://aiguillage.agglo.invalid")],
            vec![json[0]],
        ] {
            let (status, text) = with_host(http.post(&discard).body(body), &own, &headers).await;
            assert_ne!(status, 403, "{headers:?}: {text}");
            assert_ne!(status, 421, "{headers:?}: {text}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_too_another_host_is_refused_and_failed_logins_are_limited() {
    let target = RestTarget::start().await;
    let scenario = token_scenario(&target).await;
    let running = scenario.start().await;

    checked(scenario, running, |base| async move {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let port = base.rsplit(':').next().unwrap().to_owned();
        let (status, _) = with_host(
            http.get(format!("{base}/metrics")).bearer_auth(TOKEN),
            &format!("attacker-rebind.example:{port}"),
            &[],
        )
        .await;
        assert_eq!(status, 421, "the token does not make another host ours");

        let own = format!("127.0.0.1:{port}");
        let form = [("content-type", "application/x-www-form-urlencoded")];
        let login = format!("{base}/login");
        for attempt in 1..=aiguillage_gateway::admin::guard::LOGIN_FAILURES_PER_ADDRESS {
            let (status, text) = with_host(
                http.post(&login).body("token=wrong-token-guess"),
                &own,
                &form,
            )
            .await;
            assert_eq!(status, 401, "failure {attempt}: {text}");
        }
        // Held back now, even with the right token: guessing gains nothing.
        let response = http
            .post(&login)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 429);
        let wait: u64 = response
            .headers()
            .get("retry-after")
            .expect("Retry-After")
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "Retry-After: {wait}");
        let text = response.text().await.unwrap();
        assert!(text.contains("Trop de tentatives"), "{text}");
        // A script with the bearer token is not held back by the form's limit.
        let (status, _) = with_host(
            http.get(format!("{base}/readyz")).bearer_auth(TOKEN),
            &own,
            &[],
        )
        .await;
        assert_eq!(status, 200);
    })
    .await;
}
