//! Failure handling with each fault injected for real: transient failures retried through
//! the delay queues, a target down for 20 s behind its circuit breaker while another
//! connector keeps delivering, and the broker dropping the gateway's connection.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use aiguillage_gateway::pipeline::breaker::BreakerState;
use aiguillage_tests::rest_target::RestTarget;
use aiguillage_tests::{close_connections_named, count_status, envelope, ids, Scenario, StoreKind};

/// A target that fails the first 3 calls of each démarche and accepts the 4th: every
/// démarche is delivered once, after 3 `retrying` events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_until_delivered() {
    let target = RestTarget::start().await;
    let scenario = Scenario::famille(&target.url("fail-first/3/famille"), "retry = { max_attempts = 5, initial = \"200ms\", max_delay = \"400ms\" }\nbreaker = { failures = 0 }").await;
    let (mut events, running) = scenario.launch().await;

    let envelopes = scenario.envelopes("44043", "inscription-cantine", 20);
    scenario.publish(&envelopes).await;

    let seen = events
        .wait_until(Duration::from_secs(60), |seen| {
            count_status(seen, "delivered") >= 20
        })
        .await;
    assert_eq!(count_status(seen, "delivered"), 20);
    let seen = events.settle(Duration::from_millis(300)).await;
    let mut by_id: HashMap<&str, Vec<(&str, u64)>> = HashMap::new();
    for (_, event) in seen {
        by_id
            .entry(event["id"].as_str().unwrap())
            .or_default()
            .push((
                event["status"].as_str().unwrap(),
                event["attempts"].as_u64().unwrap(),
            ));
    }
    assert_eq!(by_id.len(), 20);
    for (id, history) in &by_id {
        assert_eq!(
            history,
            &vec![
                ("retrying", 1),
                ("retrying", 2),
                ("retrying", 3),
                ("delivered", 4)
            ],
            "events of {id}"
        );
    }
    assert_eq!(target.effect_count(), 20, "each démarche applied once");
    assert!(
        target.requests_per_key().values().all(|&n| n == 4),
        "4 calls per démarche"
    );
    let errors = running
        .store()
        .errors(envelopes[0]["id"].as_str().unwrap(), "famille")
        .await
        .unwrap();
    assert_eq!(
        errors.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "the error history is recorded"
    );
    assert!(errors[0].1.contains("503"), "{}", errors[0].1);

    scenario.finish(running).await;
}

/// A target refusing connections for 20 s while 500 démarches arrive: all delivered once
/// it is back, its breaker opened and closed, and another connector kept delivering
/// without delay meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_down_for_20_s_pauses_only_its_connector() {
    let down = RestTarget::start().await;
    let other = RestTarget::start().await;
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    scenario
        .rest("famille", &down.url("accept/famille"), "connect_timeout = \"1s\"\nretry = { max_attempts = 100, initial = \"500ms\", max_delay = \"2s\" }\nbreaker = { failures = 3, probe_initial = \"200ms\", probe_max = \"1s\" }")
        .rest("etat-civil", &other.url("accept/etat-civil"), "")
        .route("44043", &["inscription-*"], "famille")
        .route("44043", &["demande-acte-*"], "etat-civil");
    let (mut events, running) = scenario.launch().await;

    down.stop().await;
    let outage = Instant::now();
    let envelopes = scenario.envelopes("44043", "inscription-cantine", 500);
    scenario.publish(&envelopes).await;

    // Meanwhile, the other connector: each démarche delivered promptly.
    let mut worst = Duration::ZERO;
    let mut n = 0;
    while outage.elapsed() < Duration::from_secs(20) {
        let e = envelope(
            &scenario.prefix,
            "44043",
            "demande-acte-naissance",
            10_000 + n,
        );
        let published = Instant::now();
        scenario.publish(std::slice::from_ref(&e)).await;
        assert!(
            other
                .wait_for_effects(n as usize + 1, Duration::from_secs(10))
                .await,
            "the other connector stalled"
        );
        worst = worst.max(published.elapsed());
        n += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        n >= 20,
        "the other connector was exercised throughout the outage ({n})"
    );
    assert!(
        worst < Duration::from_secs(2),
        "the other connector was delayed: {worst:?}"
    );
    let (state, opened) = running.breaker("famille").unwrap();
    assert_eq!(
        state,
        BreakerState::Open,
        "the breaker is open during the outage"
    );
    assert!(opened >= 1);
    assert_eq!(down.total_requests(), 0);
    assert_eq!(
        running.breaker("etat-civil").unwrap().1,
        0,
        "the other breaker never opened"
    );

    down.restart().await;
    assert!(
        down.wait_for_effects(500, Duration::from_secs(90)).await,
        "only {} of 500 delivered after the target came back",
        down.effect_count()
    );
    let seen = events
        .wait_until(Duration::from_secs(30), |seen| {
            count_status(seen, "delivered") >= 500 + n as usize
        })
        .await;
    assert_eq!(count_status(seen, "delivered"), 500 + n as usize);
    let keys: BTreeSet<_> = down.effects().into_iter().map(|e| e.key).collect();
    assert_eq!(keys.len(), 500, "each démarche applied once");
    assert_eq!(down.effect_count(), 500);
    let (state, _) = running.breaker("famille").unwrap();
    assert_eq!(state, BreakerState::Closed, "the breaker closed by itself");

    scenario.finish(running).await;
}

/// The broker drops the gateway's connection in the middle of 2,000 démarches: the
/// gateway reconnects by itself and every démarche is applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_reconnects_when_the_broker_drops_its_connection() {
    let target = RestTarget::start().await;
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    scenario
        .connector(
            "famille",
            "rest",
            &format!(
                "url = \"{}\"\nconcurrency = 8",
                // 20 ms a démarche: still delivering when the connection is closed
                // (`rabbitmqctl` takes a second or two to do it).
                target.url("slow/20/famille")
            ),
        )
        .route("44043", &["*"], "famille");
    let mut running = scenario.start().await;

    let envelopes = scenario.envelopes("44043", "inscription-cantine", 2000);
    let expected = ids(&envelopes);
    scenario.publish(&envelopes).await;
    assert!(target.wait_for_effects(500, Duration::from_secs(60)).await);

    let closed = close_connections_named(&scenario.prefix);
    assert_eq!(closed, 1, "the gateway's connection was found and closed");
    let at_close = target.effect_count();
    assert!(
        at_close < 2000,
        "closed in the middle ({at_close} delivered)"
    );

    assert!(
        target
            .wait_for_effects(2000, Duration::from_secs(120))
            .await,
        "only {} of 2000 delivered after the connection was closed",
        target.effect_count()
    );
    assert!(
        running.wait_ready(Duration::from_secs(10)).await,
        "ready again"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let keys: BTreeSet<String> = target.effects().into_iter().map(|e| e.key).collect();
    assert_eq!(keys, expected);
    assert_eq!(target.effect_count(), 2000, "each démarche applied once");
    let replays = target.total_requests() - 2000;
    eprintln!("connection closed after {at_close} deliveries; {replays} request(s) repeated");
    assert!(
        replays <= 8,
        "{replays} requests repeated, more than the 8 in flight"
    );

    scenario.finish(running).await;
}
