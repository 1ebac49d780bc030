//! The fixture layer itself, on the machine's RabbitMQ: a scenario's queues and exchanges
//! go when its test panics, and the start-of-suite sweep removes the test objects older
//! than a day and nothing else.

use aiguillage_tests::broker::{self, amqp_url};
use aiguillage_tests::rest_target::RestTarget;
use aiguillage_tests::Scenario;
use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ExchangeKind};

async fn channel() -> (Connection, Channel) {
    let connection = Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
        .await
        .expect("RabbitMQ (rabbitmq-server -detached)");
    let channel = connection.create_channel().await.expect("a channel");
    (connection, channel)
}

/// A broker object, to look for.
#[derive(Clone, Copy)]
enum Object<'a> {
    Queue(&'a str),
    Exchange(&'a str),
}

/// Whether `object` exists (a passive declare, on a connection of its own since a refusal
/// closes the channel).
async fn exists(object: Object<'_>) -> bool {
    let (connection, channel) = channel().await;
    let found = match object {
        Object::Queue(name) => {
            let passive = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            let declared = channel.queue_declare(name.into(), passive, FieldTable::default());
            declared.await.is_ok()
        }
        Object::Exchange(name) => {
            let passive = ExchangeDeclareOptions {
                passive: true,
                ..ExchangeDeclareOptions::default()
            };
            let declared = channel.exchange_declare(
                name.into(),
                ExchangeKind::Topic,
                passive,
                FieldTable::default(),
            );
            declared.await.is_ok()
        }
    };
    let _ = connection.close(200, "done".into()).await;
    found
}

async fn queue_exists(queue: &str) -> bool {
    exists(Object::Queue(queue)).await
}

async fn exchange_exists(exchange: &str) -> bool {
    exists(Object::Exchange(exchange)).await
}

/// A test that panics with its gateway running: its connector queue and its exchanges
/// are gone once it has failed, without any clean-up call in the test.
#[test]
fn a_test_that_panics_leaves_nothing_on_the_broker() {
    let (names, names_rx) = std::sync::mpsc::channel();
    let failed = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let target = RestTarget::start().await;
            let scenario = Scenario::famille(&target.url("accept/famille"), "").await;
            let _running = scenario.start().await;
            let bus = scenario.bus();
            names
                .send((bus.connector_queue("famille"), bus.exchange.clone()))
                .expect("the names");
            panic!("the test fails with its gateway running");
        });
    })
    .join();
    assert!(failed.is_err(), "the test body panicked");
    let (queue, exchange) = names_rx.recv().expect("the scenario's names");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        assert!(!queue_exists(&queue).await, "{queue} is left on the broker");
        assert!(
            !exchange_exists(&exchange).await,
            "{exchange} is left on the broker"
        );
    });
}

/// Test objects stamped two days ago are swept; a test's object of an hour ago, and
/// objects not named by the tests (even with the same shape but another prefix), stay.
#[tokio::test]
async fn the_sweep_removes_only_test_objects_older_than_a_day() {
    let now = broker::now().as_secs();
    let fresh = broker::unique("t");
    let tail = fresh.split_once('-').expect("a stamped name").1;
    let (_, after_stamp) = tail.split_once('-').expect("a stamped name");
    let old = format!("t-{}-{after_stamp}", now - 2 * 24 * 3600);
    let hour_ago = format!("t-{}-{after_stamp}", now - 3600);
    let foreign = format!("aiguillage-{}-{after_stamp}", now - 2 * 24 * 3600);
    let queues = [
        format!("{old}.famille"),
        format!("{hour_ago}.famille"),
        format!("{foreign}.famille"),
    ];
    let exchange = format!("{old}.demarches");

    let (connection, channel) = channel().await;
    for queue in &queues {
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("declare a queue");
    }
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("declare an exchange");

    let removed = broker::sweep(now).await;
    let left = [
        queue_exists(&queues[0]).await,
        queue_exists(&queues[1]).await,
        queue_exists(&queues[2]).await,
        exchange_exists(&exchange).await,
    ];
    // What the sweep kept goes now (and so would anything it missed).
    broker::delete_objects(&connection, &queues, std::slice::from_ref(&exchange)).await;
    let _ = connection.close(200, "done".into()).await;

    assert_eq!(left, [false, true, true, false], "{queues:?} {exchange}");
    // Other stale objects of killed runs may have been swept with them.
    assert!(removed >= 2, "{removed}");
}
