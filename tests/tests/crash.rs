//! The gateway killed with SIGKILL mid-stream and started again loses nothing and
//! delivers nothing twice.

use std::collections::BTreeSet;
use std::time::Duration;

use aiguillage_bus::Status;
use aiguillage_gateway::store::Store;
use aiguillage_tests::rest_target::RestTarget;
use aiguillage_tests::{gateway_bin, ids, Scenario};
use tokio::process::Child;

const CONCURRENCY: usize = 8;

fn spawn_gateway(scenario: &Scenario, round: u32) -> Child {
    scenario.spawn_gateway(gateway_bin!(), &["--log-format", "json", "run"], round)
}

/// One `rest` connector, `famille`, taking every form of Clisson [`CONCURRENCY`] at a
/// time, with a shutdown grace period if given.
async fn famille_scenario(target: &RestTarget, grace: Option<&str>) -> Scenario {
    let mut scenario = Scenario::famille(
        &target.url("accept/famille"),
        &format!("concurrency = {CONCURRENCY}"),
    )
    .await;
    if let Some(grace) = grace {
        scenario.extra(&format!("[shutdown]\ngrace = \"{grace}\""));
    }
    scenario
}

/// Waits until the gateway declared its queue (it is then consuming or about to).
async fn wait_for_queue(scenario: &Scenario, queue: &str) {
    let connection = scenario.connection().await;
    for _ in 0..300 {
        let channel = connection.create_channel().await.unwrap();
        if aiguillage_bus::topology::queue_depth(&channel, queue)
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the gateway did not declare {queue} within 30 s");
}

/// Declares the scenario's queues and bindings as its gateway will, so that a backlog can
/// wait in the queue before any gateway runs.
async fn declare_topology(scenario: &Scenario) {
    let config = scenario.config();
    let connection = scenario.connection().await;
    let channel = connection.create_channel().await.unwrap();
    let router = aiguillage_gateway::routing::Router::new(config.routes.clone());
    aiguillage_gateway::bus::topology::declare_topology(
        &channel,
        &config.bus,
        &config.connectors,
        &router,
    )
    .await
    .expect("declare the topology");
    let _ = connection.close(200, "declared".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_2000_demarches_loses_nothing_and_duplicates_nothing() {
    let target = RestTarget::start().await;
    let scenario = famille_scenario(&target, Some("10s")).await;
    let queue = scenario.bus().connector_queue("famille");

    // The backlog is in place first: the gateway delivers faster than a publisher that
    // waits for each confirm, and it must be killed in the middle of its work.
    declare_topology(&scenario).await;
    let envelopes = scenario.envelopes("44043", "inscription-cantine", 2000);
    let expected = ids(&envelopes);
    scenario.publish(&envelopes).await;
    let mut gateway = spawn_gateway(&scenario, 1);
    wait_for_queue(&scenario, &queue).await;

    assert!(
        target.wait_for_effects(600, Duration::from_secs(60)).await,
        "deliveries started"
    );
    gateway.kill().await.expect("SIGKILL the gateway");
    let at_kill = target.effect_count();
    assert!(at_kill < 2000, "killed in the middle ({at_kill} delivered)");

    let mut gateway = spawn_gateway(&scenario, 2);
    assert!(
        target
            .wait_for_effects(2000, Duration::from_secs(120))
            .await,
        "only {} of 2000 delivered after the restart",
        target.effect_count()
    );
    // Let any straggler show itself before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let effects = target.effects();
    let keys: BTreeSet<String> = effects.iter().map(|e| e.key.clone()).collect();
    assert_eq!(effects.len(), 2000, "each démarche applied once");
    assert_eq!(keys, expected, "exactly the published ids");
    // Only the deliveries in flight when the process died can reach the target twice
    // (their outcome was not recorded yet); the target's idempotency absorbs them. Every
    // other redelivered message must be stopped by the store.
    let replays = target.total_requests() - 2000;
    eprintln!("killed after {at_kill} deliveries; {replays} request(s) repeated after the restart");
    assert!(
        replays <= CONCURRENCY as u64,
        "{replays} requests repeated, more than the {CONCURRENCY} in flight"
    );

    // SIGTERM: a clean stop, exit code 0.
    let pid = gateway.id().expect("running").to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), gateway.wait())
        .await
        .expect("stopped within the grace period")
        .unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");

    let store = Store::open(
        &format!(
            "sqlite://{}",
            scenario.dir.path().join("store.db").display()
        ),
        1,
    )
    .await
    .unwrap();
    assert_eq!(
        store.count("famille", Status::Delivered).await.unwrap(),
        2000
    );
    store.close().await;
    assert_eq!(scenario.queue_depth(&queue).await, 0, "nothing left behind");
    scenario.cleanup().await;
}

/// SIGKILL at random points during 5,000 démarches, three times in a row, restarting each
/// time: the target ends with 5,000 distinct démarches and no duplicate effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sigkills_during_5000_demarches_lose_nothing() {
    let target = RestTarget::start().await;
    let scenario = famille_scenario(&target, None).await;
    let queue = scenario.bus().connector_queue("famille");

    let mut gateway = spawn_gateway(&scenario, 1);
    wait_for_queue(&scenario, &queue).await;
    let envelopes = scenario.envelopes("44043", "inscription-cantine", 5000);
    let expected = ids(&envelopes);
    // Published while the gateway runs and gets killed, as the portal would.
    let publisher = {
        let scenario_bodies: Vec<(String, Vec<u8>)> = envelopes
            .iter()
            .map(|e| (e["id"].to_string(), e.to_string().into_bytes()))
            .collect();
        let connection = scenario.connection().await;
        let bus = scenario.bus();
        tokio::spawn(async move {
            for chunk in scenario_bodies.chunks(250) {
                aiguillage_gateway::bus::publish::publish_on(&connection, &bus, chunk)
                    .await
                    .expect("publish");
            }
        })
    };

    for round in 1..=3u32 {
        // A random point after the restart: between 200 and 1,200 more deliveries.
        let point = target.effect_count() + rand::random_range(200..1200);
        assert!(
            target
                .wait_for_effects(point, Duration::from_secs(90))
                .await,
            "round {round}: stuck at {} deliveries",
            target.effect_count()
        );
        gateway.kill().await.expect("SIGKILL the gateway");
        eprintln!(
            "round {round}: killed after {} deliveries",
            target.effect_count()
        );
        gateway = spawn_gateway(&scenario, round + 1);
    }
    publisher.await.expect("all published");
    assert!(
        target
            .wait_for_effects(5000, Duration::from_secs(120))
            .await,
        "only {} of 5000 delivered",
        target.effect_count()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let keys: BTreeSet<String> = target.effects().into_iter().map(|e| e.key).collect();
    assert_eq!(keys, expected, "exactly the published ids");
    assert_eq!(target.effect_count(), 5000, "each démarche applied once");
    let replays = target.total_requests() - 5000;
    eprintln!("{replays} request(s) repeated over three kills");
    assert!(
        replays <= 3 * CONCURRENCY as u64,
        "{replays} repeated requests: more than what was in flight at the kills"
    );
    gateway.kill().await.unwrap();
    scenario.cleanup().await;
}

/// SIGTERM during load: the gateway stops taking messages, finishes those in flight and
/// exits 0 within its grace period; the next instance delivers the rest, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_cleanly_and_loses_nothing() {
    let target = RestTarget::start().await;
    let scenario = famille_scenario(&target, Some("5s")).await;
    let queue = scenario.bus().connector_queue("famille");
    // The backlog is in place first, so that the stop comes under load.
    declare_topology(&scenario).await;
    let envelopes = scenario.envelopes("44043", "inscription-cantine", 1500);
    scenario.publish(&envelopes).await;
    let mut gateway = spawn_gateway(&scenario, 1);
    wait_for_queue(&scenario, &queue).await;
    assert!(target.wait_for_effects(300, Duration::from_secs(60)).await);

    let pid = gateway.id().expect("running").to_string();
    let signalled = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), gateway.wait())
        .await
        .expect("exited within the grace period")
        .unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let at_stop = target.effect_count();
    eprintln!(
        "stopped after {at_stop} deliveries in {:?}",
        signalled.elapsed()
    );
    assert!(at_stop < 1500, "stopped under load");
    // Stopped means stopped: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(target.effect_count(), at_stop);

    let mut gateway = spawn_gateway(&scenario, 2);
    assert!(
        target
            .wait_for_effects(1500, Duration::from_secs(120))
            .await,
        "the rest is delivered by the next instance"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(target.effect_count(), 1500, "each démarche applied once");
    assert_eq!(
        target.total_requests(),
        1500,
        "a clean stop repeats nothing"
    );
    gateway.kill().await.unwrap();
    scenario.cleanup().await;
}
