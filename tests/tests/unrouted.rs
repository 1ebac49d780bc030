//! The démarches that no route takes, end to end on the real RabbitMQ: exactly one copy of
//! each waits in the unrouted queue.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::time::Duration;

use aiguillage_tests::rest_target::RestTarget;
use aiguillage_tests::{envelope, Scenario, StoreKind};
use futures_util::FutureExt as _;

const CLISSON: &str = "44043";
const GORGES: &str = "44064";

/// Runs `test` on `scenario`, then removes the scenario's queues and exchanges, even when
/// the test fails.
async fn with_cleanup(
    mut scenario: Scenario,
    test: impl for<'a> FnOnce(&'a mut Scenario) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>,
) {
    let result = AssertUnwindSafe(test(&mut scenario)).catch_unwind().await;
    scenario.cleanup().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// Two connectors whose routes bind `44043.*`, and an envelope published under
/// `44043.permis-de-construire` whose body says Gorges: both connectors hold a copy, no
/// route takes it, and exactly one copy must wait in the unrouted queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_disagrees_with_its_body_leaves_one_unrouted_copy() {
    let target = RestTarget::start().await;
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    scenario
        .connector(
            "famille",
            "rest",
            &format!("url = \"{}\"", target.url("accept/x")),
        )
        .connector(
            "etat-civil",
            "rest",
            &format!("url = \"{}\"", target.url("accept/y")),
        )
        .route(CLISSON, &["inscription-*"], "famille")
        .route(CLISSON, &["demande-acte-*"], "etat-civil");
    with_cleanup(scenario, |scenario| {
        Box::pin(async move {
            let running = scenario.start().await;
            let stray = envelope(&scenario.prefix, GORGES, "permis-de-construire", 1);
            scenario
                .publish_unchecked(
                    &format!("{CLISSON}.permis-de-construire"),
                    stray.to_string().as_bytes(),
                )
                .await;

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
            running.shutdown().await;
        })
    })
    .await;
}
