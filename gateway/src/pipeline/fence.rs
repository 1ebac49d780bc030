//! Fences: what keeps a démarche queued before a route moved from being dropped.
//!
//! A connector's queue may hold copies that are not its own: a broad binding (`44043.*`)
//! also catches forms that another connector's route takes, and the connector drops those
//! copies, because the broker gave the taker its own. That reasoning fails for the copies
//! queued **before** a configuration change: when a route moves from connector A to B,
//! what waits in A's queue was published when B had no binding for it, so B has no copy.
//!
//! So each consuming session first puts a **fence marker** (an empty message carrying a
//! token of its own) at the tail of its queue, before it takes anything. Everything the
//! session receives before its marker was queued before the session's topology (its
//! bindings) was in place: a copy that another connector's route takes is passed on to
//! that connector's queue rather than dropped. Once the session receives its marker, the
//! bindings of the current configuration were in place for every later message, and the
//! copies of other connectors are dropped again. Copies that may be alone whatever their
//! place are always passed on: those coming back from a retry queue or from an operator's
//! replay (they carry the original routing key), and those the broker delivers again.
//!
//! A copy passed on twice is absorbed by the taker's store (its outcome is recorded once);
//! a copy dropped would be lost. Several gateway instances share a queue, so a session may
//! receive another session's marker: it puts it back at the tail once, where its owner may
//! find it. It drops it instead when it already put it back, when the broker delivers it
//! again (the session that held it is gone, and a marker is only ever held by a session
//! for a moment), or when it is older than [`MARKER_LIFETIME`]. A session that never finds
//! its marker only keeps passing copies on, which is safe.

use std::collections::HashSet;
use std::time::Duration;

use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;
use time::OffsetDateTime;

use aiguillage_bus::{BusError, Publisher};

/// How long another session's marker is put back in the queue for its owner.
pub const MARKER_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Header of a marker: when it was first put in the queue (Unix seconds).
const HEADER_FENCE_AT: &str = "x-aiguillage-fence-at";

/// One consuming session's fence in its queue.
#[derive(Debug)]
pub struct Fence {
    queue: String,
    token: String,
    passed: bool,
    /// Other sessions' markers this session put back once already.
    put_back: HashSet<String>,
}

/// How many put-back tokens a session remembers (a few per other instance in practice).
const PUT_BACK_MEMORY: usize = 1024;

/// What a delivery is, seen from the fence.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// A démarche; `before_fence` when it was queued before this session's bindings.
    Demarche { before_fence: bool },
    /// This session's own marker: the fence is passed.
    OwnMarker,
    /// Another session's marker, to put back in the queue (or drop if too old).
    OtherMarker,
}

impl Fence {
    /// Puts a new marker at the tail of `queue`, confirmed, before the session consumes.
    ///
    /// # Errors
    ///
    /// [`BusError`] when the marker cannot be published: the session restarts.
    pub async fn put(publisher: &Publisher, queue: &str) -> Result<Self, BusError> {
        let token = format!(
            "{}-{}-{:x}",
            std::process::id(),
            OffsetDateTime::now_utc().unix_timestamp_nanos(),
            rand::random::<u64>()
        );
        let headers = FieldTable::from(std::collections::BTreeMap::from([
            (
                HEADER_FENCE_AT.into(),
                AMQPValue::LongLongInt(now_seconds()),
            ),
            (
                aiguillage_bus::headers::HEADER_FENCE.into(),
                aiguillage_bus::publisher::long_string(&token),
            ),
        ]));
        publisher
            .publish("", queue, b"", marker_properties(headers), true)
            .await?;
        Ok(Self {
            queue: queue.to_owned(),
            token,
            passed: false,
            put_back: HashSet::new(),
        })
    }

    /// Classifies a delivery, in the order the session receives them.
    pub fn see(&mut self, delivery: &Delivery) -> Seen {
        let headers = delivery.properties.headers().as_ref();
        match aiguillage_bus::headers::header_text(headers, aiguillage_bus::headers::HEADER_FENCE) {
            Some(token) if token == self.token => {
                self.passed = true;
                Seen::OwnMarker
            }
            Some(_) => Seen::OtherMarker,
            None => Seen::Demarche {
                before_fence: !self.passed,
            },
        }
    }

    /// Puts another session's marker back at the tail of the queue, unless it is too old.
    /// Returns whether it was put back.
    ///
    /// # Errors
    ///
    /// [`BusError`] when it cannot be published (the delivery is then not acked).
    pub async fn put_back(
        &mut self,
        publisher: &Publisher,
        delivery: &Delivery,
    ) -> Result<bool, BusError> {
        let headers = delivery.properties.headers().as_ref();
        let token =
            aiguillage_bus::headers::header_text(headers, aiguillage_bus::headers::HEADER_FENCE)
                .unwrap_or_default();
        if delivery.redelivered || self.put_back.contains(&token) {
            return Ok(false);
        }
        let at = match headers.and_then(|h| h.inner().get(HEADER_FENCE_AT)) {
            Some(AMQPValue::LongLongInt(at)) => *at,
            _ => 0,
        };
        let age = u64::try_from(now_seconds().saturating_sub(at)).unwrap_or(0);
        if age > MARKER_LIFETIME.as_secs() {
            return Ok(false);
        }
        let headers = headers.cloned().unwrap_or_default();
        publisher
            .publish("", &self.queue, b"", marker_properties(headers), true)
            .await?;
        if self.put_back.len() >= PUT_BACK_MEMORY {
            self.put_back.clear();
        }
        self.put_back.insert(token);
        Ok(true)
    }
}

/// Whether a copy may be the only one whatever its place in the queue: back from a retry
/// queue or a replay (it carries the original routing key), or delivered again.
pub fn may_be_alone(delivery: &Delivery) -> bool {
    delivery.redelivered
        || delivery
            .properties
            .headers()
            .as_ref()
            .is_some_and(|h| h.contains_key(aiguillage_bus::headers::HEADER_ROUTING_KEY))
}

fn marker_properties(headers: FieldTable) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(headers)
}

fn now_seconds() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}
