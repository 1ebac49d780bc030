//! The baseline: a bare lapin consumer that only acknowledges, on a quorum queue declared
//! like a connector's queue and pre-filled with the same persistent envelopes.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::Connection;

use crate::load::{self, Envelopes};

/// What the bare consumer did.
pub struct Baseline {
    /// Messages per second, first delivery to last ack.
    pub rate: f64,
    /// How long filling the queue took.
    pub fill: Duration,
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}

/// Fills `<prefix>.baseline` with `messages` envelopes, consumes them all with
/// `prefetch` and manual acks, and deletes the queue.
pub async fn run(
    connection: &Connection,
    prefix: &str,
    messages: u64,
    prefetch: u16,
    deadline: Duration,
) -> anyhow::Result<Baseline> {
    let queue = format!("{prefix}.baseline");
    let channel = load::confirm_channel(connection).await?;
    // The arguments of a connector's queue (docs/bus-contract.md), so that the broker
    // does the same work for both.
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), text("quorum"));
    arguments.insert("x-delivery-limit".into(), AMQPValue::LongUInt(20));
    arguments.insert("x-dead-letter-exchange".into(), text(""));
    arguments.insert(
        "x-dead-letter-routing-key".into(),
        text(&format!("{queue}.dead")),
    );
    arguments.insert("x-dead-letter-strategy".into(), text("at-least-once"));
    arguments.insert("x-overflow".into(), text("reject-publish"));
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await
        .context("declare the baseline queue")?;
    let result = consume(connection, &channel, &queue, messages, prefetch, deadline).await;
    let _ = channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = channel.close(200, "baseline done".into()).await;
    result
}

async fn consume(
    connection: &Connection,
    publisher: &lapin::Channel,
    queue: &str,
    messages: u64,
    prefetch: u16,
    deadline: Duration,
) -> anyhow::Result<Baseline> {
    let envelopes = Envelopes::all()?;
    let fill = load::fill(publisher, &envelopes, "", Some(queue), 0..messages).await?;

    let channel = connection.create_channel().await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "bench-baseline".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut first: Option<Instant> = None;
    let mut acked = 0u64;
    let limit = tokio::time::Instant::now() + deadline;
    while acked < messages {
        let next = tokio::time::timeout_at(limit, consumer.next()).await;
        let delivery = match next {
            Ok(Some(Ok(delivery))) => delivery,
            Ok(Some(Err(error))) => bail!("the bare consumer failed: {error}"),
            Ok(None) => bail!("the broker cancelled the bare consumer"),
            Err(_) => bail!("the bare consumer acked {acked} of {messages} in {deadline:?}"),
        };
        first.get_or_insert_with(Instant::now);
        delivery.ack(BasicAckOptions::default()).await?;
        acked += 1;
    }
    let span = first.map(|t| t.elapsed()).unwrap_or_default();
    let _ = channel.close(200, "baseline done".into()).await;
    Ok(Baseline {
        rate: (messages.saturating_sub(1)) as f64 / span.as_secs_f64().max(1e-9),
        fill,
    })
}
