//! The load: realistic envelopes, stamped with their publish time, published with
//! pipelined confirms (all at once to fill a backlog, or paced at a steady rate).

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Connection};
use serde_json::Value;

/// The w.c.s. envelopes of the repository's fixtures (2.5 to 4.4 KiB each), used in turn.
const FIXTURES: [&str; 6] = [
    include_str!("../../tests/fixtures/etat-civil/naissance-cpi-titulaire.json"),
    include_str!("../../tests/fixtures/etat-civil/mariage-extaf-parent.json"),
    include_str!("../../tests/fixtures/etat-civil/deces-cpi-notaire.json"),
    include_str!("../../tests/fixtures/facturation/cantine-trois-enfants.json"),
    include_str!("../../tests/fixtures/facturation/dechetterie-carte.json"),
    include_str!("../../tests/fixtures/facturation/piscine-cartes.json"),
];

/// The état-civil fixtures that the shipped `etat-civil/demande-acte` mapping maps.
const ETAT_CIVIL_FIXTURES: [&str; 3] = [
    include_str!("../../tests/fixtures/etat-civil/naissance-cpi-titulaire.json"),
    include_str!("../../tests/fixtures/etat-civil/mariage-extaf-parent.json"),
    include_str!("../../tests/fixtures/etat-civil/deces-cpi-notaire.json"),
];

const PLACEHOLDER: &str = "@@BENCH-ID@@";

/// Confirms awaited at most at once while filling a queue.
const CONFIRM_WINDOW: usize = 2048;

/// One envelope, cut around its `id` so that a body costs two copies.
struct Template {
    head: Vec<u8>,
    tail: Vec<u8>,
    routing_key: String,
}

/// The bodies the bench publishes: fixtures in turn, each with a unique id that carries
/// its sequence number and its publish time (`b.<seq>.<unix µs>`), so that a sink in
/// another process can tell the latency from the id alone.
pub struct Envelopes {
    templates: Vec<Template>,
}

impl Envelopes {
    /// Every fixture (for connectors that receive the whole envelope).
    pub fn all() -> anyhow::Result<Self> {
        Self::from(&FIXTURES)
    }

    /// The état-civil requests only (for the état-civil connector and its mapping).
    pub fn etat_civil() -> anyhow::Result<Self> {
        Self::from(&ETAT_CIVIL_FIXTURES)
    }

    fn from(fixtures: &[&str]) -> anyhow::Result<Self> {
        let mut templates = Vec::new();
        for text in fixtures {
            let mut value: Value = serde_json::from_str(text).context("a fixture envelope")?;
            value["id"] = Value::String(PLACEHOLDER.into());
            let routing_key = format!(
                "{}.{}",
                value["commune"].as_str().unwrap_or_default(),
                value["form"].as_str().unwrap_or_default()
            );
            let body = serde_json::to_string(&value)?;
            let Some((head, tail)) = body.split_once(PLACEHOLDER) else {
                bail!("the placeholder id is not in the fixture");
            };
            templates.push(Template {
                head: head.as_bytes().to_vec(),
                tail: tail.as_bytes().to_vec(),
                routing_key,
            });
        }
        Ok(Self { templates })
    }

    /// The mean body size, in bytes.
    pub fn mean_size(&self) -> usize {
        let total: usize = self
            .templates
            .iter()
            .map(|t| t.head.len() + t.tail.len() + 24)
            .sum();
        total / self.templates.len().max(1)
    }

    /// Body, id and routing key of message `seq`, stamped now.
    fn body(&self, seq: u64) -> (Vec<u8>, String, &str, u64) {
        let template = &self.templates[(seq % self.templates.len() as u64) as usize];
        let now = now_micros();
        let id = format!("b.{seq}.{now}");
        let mut body = Vec::with_capacity(template.head.len() + id.len() + template.tail.len());
        body.extend_from_slice(&template.head);
        body.extend_from_slice(id.as_bytes());
        body.extend_from_slice(&template.tail);
        (body, id, &template.routing_key, now)
    }
}

/// The sequence number and publish time (unix µs) carried by an id `b.<seq>.<µs>`.
pub fn parse_id(id: &str) -> Option<(u64, u64)> {
    let mut parts = id.strip_prefix("b.")?.split('.');
    let seq = parts.next()?.parse().ok()?;
    let published = parts.next()?.parse().ok()?;
    Some((seq, published))
}

/// Microseconds since the Unix epoch (the clock every process of the machine shares).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A channel in confirm mode.
pub async fn confirm_channel(connection: &Connection) -> anyhow::Result<Channel> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

async fn publish_one(
    channel: &Channel,
    envelopes: &Envelopes,
    exchange: &str,
    fixed_key: Option<&str>,
    seq: u64,
) -> anyhow::Result<lapin::PublisherConfirm> {
    let (body, id, routing_key, now) = envelopes.body(seq);
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(id.as_str().into())
        .with_timestamp(now / 1_000_000);
    let confirm = channel
        .basic_publish(
            exchange.into(),
            fixed_key.unwrap_or(routing_key).into(),
            BasicPublishOptions::default(),
            &body,
            properties,
        )
        .await?;
    Ok(confirm)
}

async fn settle(confirm: lapin::PublisherConfirm) -> anyhow::Result<()> {
    let confirmation = confirm.await?;
    if confirmation.is_nack() {
        bail!("the broker refused (nack) a message of the load");
    }
    Ok(())
}

/// Publishes messages `seqs` as fast as confirms allow (persistent, with pipelined
/// confirms). `fixed_key` replaces the envelope's routing key (to fill a queue through the
/// default exchange).
pub async fn fill(
    channel: &Channel,
    envelopes: &Envelopes,
    exchange: &str,
    fixed_key: Option<&str>,
    seqs: std::ops::Range<u64>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut pending = VecDeque::with_capacity(CONFIRM_WINDOW);
    for seq in seqs {
        if pending.len() >= CONFIRM_WINDOW {
            if let Some(confirm) = pending.pop_front() {
                settle(confirm).await?;
            }
        }
        pending.push_back(publish_one(channel, envelopes, exchange, fixed_key, seq).await?);
    }
    for confirm in pending {
        settle(confirm).await?;
    }
    Ok(started.elapsed())
}

/// Publishes messages `seqs` at `rate` messages per second (persistent, confirmed),
/// evenly over time: the steady load of the latency measurement.
pub async fn paced(
    channel: &Channel,
    envelopes: &Envelopes,
    exchange: &str,
    seqs: std::ops::Range<u64>,
    rate: f64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut pending = VecDeque::new();
    let mut next = seqs.start;
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while next < seqs.end {
        tick.tick().await;
        let due = seqs.start + (started.elapsed().as_secs_f64() * rate) as u64;
        while next < due.min(seqs.end) {
            pending.push_back(publish_one(channel, envelopes, exchange, None, next).await?);
            next += 1;
        }
        while pending.len() > 256 {
            if let Some(confirm) = pending.pop_front() {
                settle(confirm).await?;
            }
        }
    }
    for confirm in pending {
        settle(confirm).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_valid_envelopes_of_realistic_size() {
        let envelopes = Envelopes::all().unwrap();
        let (body, id, key, _) = envelopes.body(7);
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["id"], id.as_str());
        assert!(key.contains('.'));
        assert!((2048..=4608).contains(&body.len()), "{}", body.len());
        assert_eq!(parse_id(&id).map(|(seq, _)| seq), Some(7));
    }
}
