// Over 600 lines: dead letters and unrouted démarches share one machinery (list, replay, discard); to split by action in phase B.
//! Dead letters, the operator's tools: list them, replay them once the cause is fixed, or
//! discard them for good with a reason (`aiguillage dead list|replay|discard`).
//!
//! A dead letter is a démarche a connector gave up on: `rejected` (a permanent failure, sent
//! there at once) or `dead` (a transient failure that outlasted the retry policy). Each
//! connector has its dead-letter queue ([`BusConfig::dead_queue`]); the message in it is
//! the original envelope, with the reason and the attempt history in its headers (see
//! [`bus`]'s `HEADER_*`). Nothing in these queues expires by itself: they are declared with
//! no TTL, no length limit and no delivery limit, so a dead letter stays until an operator
//! replays or discards it.
//!
//! Reading never consumes: see [`Reader`].
//!
//! The démarches that no route takes (the queue [`BusConfig::unrouted_queue`]) are read,
//! replayed and discarded by the same machinery (`aiguillage unrouted
//! list|replay|discard`, see [`DeadLetters::unrouted`]): they are listed with the
//! connector [`UNROUTED`] and the status `unrouted`, and a replay publishes them again on
//! the démarches exchange under their routing key, once a route takes them.

use std::fmt::Write as _;

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::routing::Router;
use crate::store::{Discard, Store, StoreError};
use aiguillage_bus::envelope::Envelope;
use aiguillage_bus::BusConfig;
use aiguillage_bus::Status;
use aiguillage_bus::{BusError, Publisher};

/// The id shown for a dead letter whose body is not a valid envelope.
pub const UNREADABLE: &str = "unreadable";

/// The connector named for a démarche that no route takes (in listings, and in the store
/// for its discard).
pub const UNROUTED: &str = "unrouted";

/// A dead-letter operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DeadError {
    /// `replay` without any selector.
    #[error(
        "dites quelles lettres mortes rejouer : donnez --id ID, un filtre (--connector, --commune, --form) ou --all"
    )]
    NoReplaySelector,
    /// `discard` without any selector.
    #[error(
        "dites quelles lettres mortes abandonner : donnez --id ID ou un filtre (--connector, --commune, --form) ; il n'y a pas de --all, un abandon est définitif"
    )]
    NoDiscardSelector,
    /// `discard` with an empty reason.
    #[error("donnez la raison de l'abandon par --reason \"…\" : elle est gardée dans la base")]
    NoReason,
    /// `--connector` names no configured connector.
    #[error(
        "connecteur `{name}` inconnu (configurés : {known}) : donnez l'un des noms des [[connectors]] de la configuration"
    )]
    UnknownConnector {
        /// The name given.
        name: String,
        /// The configured names.
        known: String,
    },
    /// The bus failed; what was not acknowledged stays in the dead letters.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The store failed; the dead letter at hand stays in the queue.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `--connector` (or `connector`) on the démarches that no route takes.
    #[error("les démarches sans route n'ont pas de connecteur : choisissez-les par --id, --commune ou --form")]
    ConnectorOnUnrouted,
}

/// One dead letter, as read from its queue (nothing is removed by reading it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The envelope id, or [`UNREADABLE`] when the body is not a valid envelope.
    pub id: String,
    /// Commune INSEE code (for an unreadable body: what could be read of it, or the
    /// routing key's first word; `unknown` otherwise).
    pub commune: String,
    /// Form slug (same fallbacks as `commune`).
    pub form: String,
    /// The connector whose dead-letter queue holds it.
    pub connector: String,
    /// `rejected` (permanent failure) or `dead` (retries exhausted).
    pub status: String,
    /// Why it is there.
    pub reason: String,
    /// Attempts made.
    pub attempts: u32,
    /// When it was dead-lettered (RFC 3339), when known.
    pub dead_at: Option<String>,
    /// How long ago, readable (`3h 05m`), when known.
    pub age: Option<String>,
    /// How long ago, in seconds, when known.
    pub age_seconds: Option<u64>,
    /// The reasons of the failed attempts, oldest first.
    pub errors: Vec<String>,
    /// The routing key the portal published it with.
    pub routing_key: String,
    /// True when the body is a valid envelope (only those can be replayed).
    pub readable: bool,
}

impl DeadLetter {
    /// Reads a dead letter of `connector` from its body and headers, at `now`.
    pub fn read(
        connector: &str,
        body: &[u8],
        headers: Option<&FieldTable>,
        max_bytes: usize,
        now: OffsetDateTime,
    ) -> Self {
        let death = first_x_death(headers);
        let routing_key = aiguillage_bus::headers::header_text(
            headers,
            aiguillage_bus::headers::HEADER_ROUTING_KEY,
        )
        .or_else(|| death.and_then(x_death_routing_key))
        .unwrap_or_default();
        let (id, commune, form, readable) = match Envelope::parse(body, max_bytes) {
            Ok(envelope) => (
                envelope.id,
                envelope.commune.into_string(),
                envelope.form.into_string(),
                true,
            ),
            Err(rejection) => {
                // Like the pipeline's status event: what the body says, else the routing key.
                let mut words = routing_key.splitn(2, '.').map(str::to_owned);
                let from_key_commune = words.next().filter(|w| !w.is_empty());
                let from_key_form = words.next().filter(|w| !w.is_empty());
                let salvage = rejection.salvage;
                (
                    UNREADABLE.to_owned(),
                    salvage
                        .commune
                        .or(from_key_commune)
                        .unwrap_or_else(|| "unknown".into()),
                    salvage
                        .form
                        .or(from_key_form)
                        .unwrap_or_else(|| "unknown".into()),
                    false,
                )
            }
        };
        let status = match aiguillage_bus::headers::header_text(
            headers,
            aiguillage_bus::headers::HEADER_STATUS,
        )
        .as_deref()
        {
            Some("rejected") => Status::Rejected,
            // `dead`, or dead-lettered by RabbitMQ itself at the delivery limit.
            _ => Status::Dead,
        };
        let reason =
            aiguillage_bus::headers::header_text(headers, aiguillage_bus::headers::HEADER_REASON)
                .or_else(|| death.and_then(x_death_reason))
                .unwrap_or_else(|| "no reason recorded".into());
        let dead_at =
            aiguillage_bus::headers::header_text(headers, aiguillage_bus::headers::HEADER_DEAD_AT)
                .or_else(|| death.and_then(x_death_time));
        let age_seconds = seconds_since(dead_at.as_deref(), now);
        Self {
            id,
            commune,
            form,
            connector: connector.to_owned(),
            status: status.as_str().to_owned(),
            reason,
            attempts: aiguillage_bus::headers::attempt_of(headers),
            dead_at,
            age: age_seconds.map(human_age),
            age_seconds,
            errors: aiguillage_bus::headers::errors_of(headers),
            routing_key,
            readable,
        }
    }
}

/// Seconds from `at` (RFC 3339) to `now`, when `at` is known.
fn seconds_since(at: Option<&str>, now: OffsetDateTime) -> Option<u64> {
    at.and_then(|at| OffsetDateTime::parse(at, &Rfc3339).ok())
        .map(|at| u64::try_from((now - at).whole_seconds().max(0)).unwrap_or(0))
}

/// A Unix time in seconds (an AMQP timestamp) as RFC 3339.
fn unix_time_text(seconds: u64) -> Option<String> {
    let seconds = i64::try_from(seconds).ok()?;
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

/// An unrouted démarche as a listing shows it: the connector [`UNROUTED`], the status
/// `unrouted`, since when it waits (when the portal published it, if it said), and why no
/// route takes it according to `router`.
fn read_unrouted(
    router: &Router,
    delivery: &Delivery,
    max_bytes: usize,
    now: OffsetDateTime,
) -> DeadLetter {
    let original = delivery.properties.headers().as_ref();
    // The broker's alternate exchange keeps the portal's routing key on the message itself.
    let routing_key = aiguillage_bus::headers::original_routing_key(delivery);
    let headers = aiguillage_bus::headers::headers_with(
        original,
        vec![(
            aiguillage_bus::headers::HEADER_ROUTING_KEY,
            aiguillage_bus::publisher::long_string(&routing_key),
        )],
    );
    let mut letter = DeadLetter::read(UNROUTED, &delivery.data, Some(&headers), max_bytes, now);
    letter.status = UNROUTED.to_owned();
    letter.reason = unrouted_reason(router, &letter);
    letter.dead_at = delivery.properties.timestamp().and_then(unix_time_text);
    letter.age_seconds = seconds_since(letter.dead_at.as_deref(), now);
    letter.age = letter.age_seconds.map(human_age);
    letter
}

/// Why a démarche waits with the unrouted ones, in French: the operator reads it.
fn unrouted_reason(router: &Router, letter: &DeadLetter) -> String {
    if !letter.readable {
        return format!(
            "enveloppe illisible, publiée sous la clé `{}` : aucune route ne peut la prendre",
            letter.routing_key
        );
    }
    let key_note = if letter.routing_key == format!("{}.{}", letter.commune, letter.form) {
        String::new()
    } else {
        format!(
            " ; publiée sous la clé `{}`, qui ne correspond pas à l'enveloppe",
            letter.routing_key
        )
    };
    let takers = router.takers(&letter.commune, &letter.form);
    if takers.is_empty() {
        format!(
            "aucune route ne prend le formulaire `{}` de la commune {}{key_note}",
            letter.form, letter.commune
        )
    } else {
        format!(
            "une route la prend désormais ({}) : rejouez-la{key_note}",
            takers.join(", ")
        )
    }
}

fn first_x_death(headers: Option<&FieldTable>) -> Option<&FieldTable> {
    match headers.and_then(|h| h.inner().get(aiguillage_bus::headers::HEADER_X_DEATH)) {
        Some(AMQPValue::FieldArray(deaths)) => match deaths.as_slice().first() {
            Some(AMQPValue::FieldTable(death)) => Some(death),
            _ => None,
        },
        _ => None,
    }
}

fn x_death_reason(death: &FieldTable) -> Option<String> {
    let reason = aiguillage_bus::headers::header_text(Some(death), "reason")?;
    Some(if reason == "delivery_limit" {
        "RabbitMQ l'a mise en lettre morte à la limite de livraisons (bus.delivery_limit) : aucun résultat n'a jamais été enregistré, la passerelle s'est arrêtée ou a planté chaque fois qu'elle la traitait".into()
    } else {
        format!("RabbitMQ dead-lettered it ({reason})")
    })
}

fn x_death_time(death: &FieldTable) -> Option<String> {
    match death.inner().get("time") {
        Some(AMQPValue::Timestamp(seconds)) => unix_time_text(*seconds),
        _ => None,
    }
}

fn x_death_routing_key(death: &FieldTable) -> Option<String> {
    match death.inner().get("routing-keys") {
        Some(AMQPValue::FieldArray(keys)) => match keys.as_slice().first() {
            Some(AMQPValue::LongString(key)) => {
                Some(String::from_utf8_lossy(key.as_bytes()).into_owned())
            }
            _ => None,
        },
        _ => None,
    }
}

/// A duration for people: `45s`, `12m`, `3h 05m`, `2d 04h`.
pub fn human_age(seconds: u64) -> String {
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    if seconds < 60 {
        format!("{seconds}s")
    } else if seconds < 3600 {
        format!("{minutes}m")
    } else if seconds < 86_400 {
        format!("{hours}h {minutes:02}m")
    } else {
        format!("{days}d {hours:02}h")
    }
}

/// Which dead letters an operation is about. Every criterion given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The envelope id (`unreadable` selects the bodies that are not valid envelopes).
    pub id: Option<String>,
    /// Only this connector's dead letters.
    pub connector: Option<String>,
    /// Only this commune's (INSEE code).
    pub commune: Option<String>,
    /// Only this form's (slug).
    pub form: Option<String>,
}

impl Filter {
    /// True when no criterion is given (everything matches).
    pub fn is_empty(&self) -> bool {
        self.id.is_none()
            && self.connector.is_none()
            && self.commune.is_none()
            && self.form.is_none()
    }

    /// True when `letter` meets every criterion given.
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        let holds =
            |wanted: &Option<String>, actual: &str| wanted.as_deref().is_none_or(|w| w == actual);
        holds(&self.id, &letter.id)
            && holds(&self.connector, &letter.connector)
            && holds(&self.commune, &letter.commune)
            && holds(&self.form, &letter.form)
    }

    /// The connectors whose dead letters to read: the one given, or all of `configured`.
    ///
    /// # Errors
    ///
    /// [`DeadError::UnknownConnector`] when the one given is not configured.
    pub fn connectors<'a>(&'a self, configured: &'a [String]) -> Result<Vec<&'a str>, DeadError> {
        match &self.connector {
            None => Ok(configured.iter().map(String::as_str).collect()),
            Some(name) if configured.contains(name) => Ok(vec![name.as_str()]),
            Some(name) => Err(DeadError::UnknownConnector {
                name: name.clone(),
                known: configured.join(", "),
            }),
        }
    }
}

/// The dead letters a replay or a discard acts on: never "everything" by accident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    filter: Filter,
}

impl Selection {
    /// For a replay: a filter, or `all` to say explicitly "every dead letter".
    ///
    /// # Errors
    ///
    /// [`DeadError::NoReplaySelector`] when the filter is empty and `all` is not given.
    pub fn for_replay(filter: Filter, all: bool) -> Result<Self, DeadError> {
        if filter.is_empty() && !all {
            return Err(DeadError::NoReplaySelector);
        }
        Ok(Self { filter })
    }

    /// For a discard: a filter, which must say something (there is no "all").
    ///
    /// # Errors
    ///
    /// [`DeadError::NoDiscardSelector`] when the filter is empty.
    pub fn for_discard(filter: Filter) -> Result<Self, DeadError> {
        if filter.is_empty() {
            return Err(DeadError::NoDiscardSelector);
        }
        Ok(Self { filter })
    }

    /// The filter.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }
}

/// Reads one dead-letter queue without consuming it.
///
/// Each message is fetched with `basic.get` and not acknowledged, on a channel of its
/// own; closing the channel ([`Reader::close`]) hands every message not acknowledged back
/// to the queue — and so does a crash of this process, when the broker sees the
/// connection drop. For a quorum queue such a return counts as a delivery (it increments
/// `x-delivery-count`), which would matter on a queue with a delivery limit or a
/// dead-letter exchange. The dead-letter queues have neither: `bus::declare_topology`
/// declares them with no argument but `x-queue-type = quorum` — no `x-delivery-limit`, no
/// `x-message-ttl`, no `x-max-length`, no `x-dead-letter-exchange` — so reading a dead
/// letter never moves, drops or expires it. Keep it that way.
///
/// At most as many messages as the queue held when opened are read: a dead letter that
/// arrives meanwhile (e.g. a replayed one failing again) waits for the next run.
pub struct Reader<'r> {
    channel: Channel,
    queue: String,
    connector: String,
    remaining: u32,
    max_bytes: usize,
    /// Set when reading the unrouted démarches: what the routes say of each.
    unrouted: Option<&'r Router>,
}

impl<'r> Reader<'r> {
    /// Opens `connector`'s dead-letter queue; `None` when it does not exist yet (the
    /// gateway declares it when it starts with that connector).
    ///
    /// # Errors
    ///
    /// [`DeadError::Bus`] when the broker fails.
    pub async fn open(
        connection: &Connection,
        bus: &BusConfig,
        connector: &str,
    ) -> Result<Option<Self>, DeadError> {
        Self::open_queue(connection, bus, connector, None).await
    }

    /// Opens the queue of the démarches that no route takes (declared, like the dead
    /// letters, with no TTL, length or delivery limit: reading never moves one); `router`
    /// says why each one is there.
    ///
    /// # Errors
    ///
    /// [`DeadError::Bus`] when the broker fails.
    pub async fn open_unrouted(
        connection: &Connection,
        bus: &BusConfig,
        router: &'r Router,
    ) -> Result<Option<Self>, DeadError> {
        Self::open_queue(connection, bus, UNROUTED, Some(router)).await
    }

    async fn open_queue(
        connection: &Connection,
        bus: &BusConfig,
        connector: &str,
        unrouted: Option<&'r Router>,
    ) -> Result<Option<Self>, DeadError> {
        let queue = match unrouted {
            Some(_) => bus.unrouted_queue(),
            None => bus.dead_queue(connector),
        };
        let channel = connection
            .create_channel()
            .await
            .map_err(|source| BusError::Amqp {
                context: format!("impossible d'ouvrir un canal pour lire `{queue}`"),
                source,
            })?;
        let remaining = match aiguillage_bus::topology::queue_depth(&channel, &queue).await {
            Ok(depth) => depth,
            Err(error) if aiguillage_bus::publisher::is_not_found(&error) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        Ok(Some(Self {
            channel,
            queue,
            connector: connector.to_owned(),
            remaining,
            max_bytes: bus.max_message_bytes,
            unrouted,
        }))
    }

    /// The next dead letter, held (not acknowledged) until [`Reader::close`].
    ///
    /// # Errors
    ///
    /// [`DeadError::Bus`] when the broker fails.
    pub async fn next(&mut self) -> Result<Option<(Delivery, DeadLetter)>, DeadError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let got = self
            .channel
            .basic_get(
                self.queue.as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await
            .map_err(|source| BusError::Amqp {
                context: format!("lecture impossible de `{}`", self.queue),
                source,
            })?;
        let Some(message) = got else {
            return Ok(None);
        };
        self.remaining -= 1;
        let delivery = message.delivery;
        let now = OffsetDateTime::now_utc();
        let letter = match self.unrouted {
            Some(router) => read_unrouted(router, &delivery, self.max_bytes, now),
            None => DeadLetter::read(
                &self.connector,
                &delivery.data,
                delivery.properties.headers().as_ref(),
                self.max_bytes,
                now,
            ),
        };
        Ok(Some((delivery, letter)))
    }

    /// Closes the channel: every dead letter read and not acknowledged goes back to the queue.
    pub async fn close(self) {
        // A failure here means the channel is already gone: the broker requeues all the same.
        let _ = self
            .channel
            .close(
                200,
                "dead letters read: the others go back to the queue".into(),
            )
            .await;
    }
}

/// What `list` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The dead letters matching the filter, queue by queue, oldest first in each.
    pub letters: Vec<DeadLetter>,
    /// Dead-letter queues that do not exist yet (the gateway never ran with the connector).
    pub missing_queues: Vec<String>,
}

/// What happened to one dead letter in a replay or a discard, as it happens.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Sent back to its connector's queue (replay), or removed and recorded (discard).
    Done(&'a DeadLetter),
    /// Matched but left in the dead letters, and why.
    Skipped(&'a DeadLetter, &'a str),
}

/// Counts of a replay or a discard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Dead letters replayed or discarded.
    pub done: usize,
    /// Dead letters that matched but were left in place.
    pub skipped: usize,
    /// Dead-letter queues that do not exist yet.
    pub missing_queues: Vec<String>,
}

/// The dead letters of a gateway: its broker, its bus settings and its connectors; or its
/// démarches that no route takes ([`DeadLetters::unrouted`]).
pub struct DeadLetters<'a> {
    connection: &'a Connection,
    bus: &'a BusConfig,
    connectors: Vec<String>,
    /// Set for the unrouted démarches: the routes, which say why each one waits and whether
    /// a replay can deliver it.
    unrouted: Option<&'a Router>,
}

impl<'a> DeadLetters<'a> {
    /// The dead letters of `connectors` (the configured names) on `connection`.
    pub fn new(connection: &'a Connection, bus: &'a BusConfig, connectors: Vec<String>) -> Self {
        Self {
            connection,
            bus,
            connectors,
            unrouted: None,
        }
    }

    /// The démarches that no route takes, on `connection`, judged by `router` (the routes
    /// of the configuration).
    pub fn unrouted(connection: &'a Connection, bus: &'a BusConfig, router: &'a Router) -> Self {
        Self {
            connection,
            bus,
            connectors: Vec::new(),
            unrouted: Some(router),
        }
    }

    /// The queues an operation reads: the connectors' dead letters, or the unrouted queue
    /// (which has no connector to filter on).
    fn targets<'f>(&'f self, filter: &'f Filter) -> Result<Vec<&'f str>, DeadError> {
        match self.unrouted {
            Some(_) if filter.connector.is_some() => Err(DeadError::ConnectorOnUnrouted),
            Some(_) => Ok(vec![UNROUTED]),
            None => filter.connectors(&self.connectors),
        }
    }

    async fn open(&self, target: &str) -> Result<Option<Reader<'a>>, DeadError> {
        match self.unrouted {
            Some(router) => Reader::open_unrouted(self.connection, self.bus, router).await,
            None => Reader::open(self.connection, self.bus, target).await,
        }
    }

    fn queue(&self, target: &str) -> String {
        match self.unrouted {
            Some(_) => self.bus.unrouted_queue(),
            None => self.bus.dead_queue(target),
        }
    }

    /// Lists the dead letters of every connector (or of the filter's connector) that match
    /// `filter`, leaving every one of them in its queue.
    ///
    /// # Errors
    ///
    /// [`DeadError`] for an unknown connector or a broker failure.
    pub async fn list(&self, filter: &Filter) -> Result<Listing, DeadError> {
        let mut listing = Listing::default();
        for connector in self.targets(filter)? {
            let Some(mut reader) = self.open(connector).await? else {
                listing.missing_queues.push(self.queue(connector));
                continue;
            };
            let read = async {
                while let Some((_delivery, letter)) = reader.next().await? {
                    if filter.matches(&letter) {
                        listing.letters.push(letter);
                    }
                }
                Ok::<_, DeadError>(())
            }
            .await;
            reader.close().await;
            read?;
        }
        Ok(listing)
    }

    /// Sends the selected dead letters back to their connector's queue with the attempt count
    /// reset, each confirmed by the broker; the others stay in the dead letters. `progress`
    /// hears of each one as it is handled.
    ///
    /// Not replayed, and reported as skipped: a body that is not a valid envelope (a replay
    /// cannot change it: discard it), and a démarche the store says is delivered (a duplicate
    /// left by a crash: discard it).
    ///
    /// # Errors
    ///
    /// [`DeadError`] for an unknown connector, or when the bus or the store fails; what was
    /// replayed before stays replayed, the rest stays in the dead letters.
    pub async fn replay(
        &self,
        store: &Store,
        selection: &Selection,
        progress: &mut (dyn FnMut(Progress<'_>) + Send),
    ) -> Result<Summary, DeadError> {
        let targets = self.targets(selection.filter())?;
        let replay = Replay {
            bus: self.bus,
            store,
            filter: selection.filter(),
            publisher: Publisher::open(self.connection).await?,
            replayed_at: aiguillage_bus::now_text(),
        };
        let result = match self.unrouted {
            Some(router) => {
                let unrouted = ReplayUnrouted {
                    replay: &replay,
                    router,
                };
                self.handle_each(&targets, &unrouted, progress).await
            }
            None => self.handle_each(&targets, &replay, progress).await,
        };
        // Closed here rather than when dropped: a close racing the connection's own close
        // makes the client log a spurious connection error.
        let _ = replay
            .publisher
            .channel()
            .close(200, "replayed".into())
            .await;
        result
    }

    /// Removes the selected dead letters for good: each discard is first recorded in the store
    /// (what, why, who, when), then the dead letter is acknowledged. A crash in between
    /// records the discard twice at worst, never loses the record.
    ///
    /// # Errors
    ///
    /// [`DeadError`] for an empty reason, an unknown connector, or when the bus or the store
    /// fails; what was discarded before stays discarded.
    pub async fn discard(
        &self,
        store: &Store,
        selection: &Selection,
        reason: &str,
        by: &str,
        progress: &mut (dyn FnMut(Progress<'_>) + Send),
    ) -> Result<Summary, DeadError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(DeadError::NoReason);
        }
        let targets = self.targets(selection.filter())?;
        let discard = Discarding {
            store,
            filter: selection.filter(),
            reason,
            by,
        };
        self.handle_each(&targets, &discard, progress).await
    }

    /// Reads the dead-letter queue of each of `targets` and hands every message to `handler`;
    /// what it does not acknowledge goes back to the queue when the queue is closed.
    async fn handle_each(
        &self,
        targets: &[&str],
        handler: &impl Handler,
        progress: &mut (dyn FnMut(Progress<'_>) + Send),
    ) -> Result<Summary, DeadError> {
        let mut summary = Summary::default();
        for &connector in targets {
            let Some(mut reader) = self.open(connector).await? else {
                summary.missing_queues.push(self.queue(connector));
                continue;
            };
            let read = async {
                while let Some((delivery, letter)) = reader.next().await? {
                    match handler.handle(connector, &delivery, &letter).await? {
                        Handled::Ignored => {}
                        Handled::Skipped(why) => {
                            summary.skipped += 1;
                            progress(Progress::Skipped(&letter, &why));
                        }
                        Handled::Done => {
                            summary.done += 1;
                            progress(Progress::Done(&letter));
                        }
                    }
                }
                Ok::<_, DeadError>(())
            }
            .await;
            reader.close().await;
            read?;
        }
        Ok(summary)
    }
}

/// What became of one dead letter read by a replay or a discard.
enum Handled {
    /// Not selected (or this run's own copy come back): left in the queue, silently.
    Ignored,
    /// Selected but left in the queue, and why.
    Skipped(String),
    /// Replayed or discarded: acknowledged.
    Done,
}

/// What a replay or a discard does with each dead letter read.
trait Handler: Sync {
    /// Handles one dead letter of `connector`; acknowledges it only when done with it.
    /// (`Send`, so that the admin server can replay and discard from its handlers.)
    fn handle(
        &self,
        connector: &str,
        delivery: &Delivery,
        letter: &DeadLetter,
    ) -> impl std::future::Future<Output = Result<Handled, DeadError>> + Send;
}

/// A replay in progress.
struct Replay<'a> {
    bus: &'a BusConfig,
    store: &'a Store,
    filter: &'a Filter,
    publisher: Publisher,
    /// Marks the copies of this run: one that fails at once comes back to the dead
    /// letters with this mark, and is not replayed a second time by the same run.
    replayed_at: String,
}

impl Replay<'_> {
    /// True when `letter` is not selected, or is a copy this run replayed that came back.
    fn ignores(&self, delivery: &Delivery, letter: &DeadLetter) -> bool {
        let headers = delivery.properties.headers().as_ref();
        let mark = aiguillage_bus::headers::header_text(
            headers,
            aiguillage_bus::headers::HEADER_REPLAYED_AT,
        );
        !self.filter.matches(letter) || mark.as_deref() == Some(self.replayed_at.as_str())
    }

    /// Acknowledges the message read, once its copy is published.
    async fn ack(
        &self,
        delivery: &Delivery,
        letter: &DeadLetter,
        queue: &str,
    ) -> Result<Handled, DeadError> {
        delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .map_err(|source| BusError::Amqp {
                context: format!(
                    "`{}` a été rejouée mais n'a pas pu être acquittée (elle reste dans `{queue}` : abandonnez-la)",
                    letter.id,
                ),
                source,
            })?;
        Ok(Handled::Done)
    }
}

impl Handler for Replay<'_> {
    async fn handle(
        &self,
        connector: &str,
        delivery: &Delivery,
        letter: &DeadLetter,
    ) -> Result<Handled, DeadError> {
        if self.ignores(delivery, letter) {
            return Ok(Handled::Ignored);
        }
        if !letter.readable {
            return Ok(Handled::Skipped(
                "ce n'est pas une enveloppe valide : la rejouer n'y changerait rien (abandonnez-la, et faites-la publier de nouveau par le portail si besoin)".into(),
            ));
        }
        let recorded = self.store.outcome(&letter.id, connector).await?;
        if let Some(outcome) = recorded.filter(|o| o.status == Status::Delivered) {
            return Ok(Handled::Skipped(format!(
                "déjà livrée (référence {}) : cette lettre morte est un doublon, abandonnez-la",
                outcome.reference.as_deref().unwrap_or("aucune")
            )));
        }
        // The order matters. 1. Reset the store row, so that the pipeline takes the copy
        // for a démarche still to deliver: reset after publishing, and the gateway could
        // take the copy first, find the outcome `rejected` or `dead` (final) and
        // acknowledge it without delivering — the replay lost. 2. Publish the copy, with a
        // confirm. 3. Acknowledge the dead letter. A crash between 1 and 2 leaves the dead
        // letter where it was (replay it again); a crash between 2 and 3 leaves it there
        // too while the copy is delivered: a duplicate, which the store and the target's
        // idempotency key absorb (a later replay of it is skipped as delivered). Never a
        // loss.
        self.store.reset_for_replay(&letter.id, connector).await?;
        let properties = replay_properties(&delivery.properties, letter, &self.replayed_at);
        self.publisher
            .publish(
                "",
                &self.bus.connector_queue(connector),
                &delivery.data,
                properties,
                true,
            )
            .await?;
        self.ack(delivery, letter, &self.bus.dead_queue(connector))
            .await
    }
}

/// A replay of démarches that no route took: published again on the démarches exchange,
/// under the portal's routing key, once a route of the configuration takes them.
struct ReplayUnrouted<'a> {
    replay: &'a Replay<'a>,
    router: &'a Router,
}

impl Handler for ReplayUnrouted<'_> {
    async fn handle(
        &self,
        _connector: &str,
        delivery: &Delivery,
        letter: &DeadLetter,
    ) -> Result<Handled, DeadError> {
        let replay = self.replay;
        if replay.ignores(delivery, letter) {
            return Ok(Handled::Ignored);
        }
        if !letter.readable {
            return Ok(Handled::Skipped(
                "ce n'est pas une enveloppe valide : aucune route ne peut la prendre (abandonnez-la, et faites-la publier de nouveau par le portail si besoin)".into(),
            ));
        }
        if self.router.takers(&letter.commune, &letter.form).is_empty() {
            return Ok(Handled::Skipped(format!(
                "aucune route de la configuration ne prend encore le formulaire `{}` de la commune {} : ajoutez-la, redémarrez la passerelle, puis rejouez ; la démarche reste avec les démarches sans route",
                letter.form, letter.commune
            )));
        }
        // Everything as the portal sent it (message id, headers) but the replay's date: the
        // store and the targets' idempotency absorb a démarche delivered twice. Published
        // under its routing key, it reaches the queues the running gateway binds; one that
        // none binds yet comes back here through the alternate exchange, never lost.
        let headers = aiguillage_bus::headers::headers_with(
            delivery.properties.headers().as_ref(),
            vec![(
                aiguillage_bus::headers::HEADER_REPLAYED_AT,
                aiguillage_bus::publisher::long_string(&replay.replayed_at),
            )],
        );
        let properties =
            aiguillage_bus::headers::forwarded_properties(&delivery.properties, headers);
        replay
            .publisher
            .publish(
                &replay.bus.exchange,
                &letter.routing_key,
                &delivery.data,
                properties,
                true,
            )
            .await?;
        replay
            .ack(delivery, letter, &replay.bus.unrouted_queue())
            .await
    }
}

/// A discard in progress.
struct Discarding<'a> {
    store: &'a Store,
    filter: &'a Filter,
    reason: &'a str,
    by: &'a str,
}

impl Handler for Discarding<'_> {
    async fn handle(
        &self,
        connector: &str,
        delivery: &Delivery,
        letter: &DeadLetter,
    ) -> Result<Handled, DeadError> {
        if !self.filter.matches(letter) {
            return Ok(Handled::Ignored);
        }
        // Recorded first, acknowledged second: the record is never lost.
        self.store
            .record_discard(&Discard {
                envelope_id: letter.id.clone(),
                connector: connector.to_owned(),
                commune: letter.commune.clone(),
                form: letter.form.clone(),
                reason: self.reason.to_owned(),
                discarded_by: self.by.to_owned(),
                discarded_at: aiguillage_bus::now_text(),
                // Proves later which body was thrown away without keeping it.
                body_sha256: Some(sha256_hex(&delivery.data)),
            })
            .await?;
        delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .map_err(|source| BusError::Amqp {
                context: format!(
                    "l'abandon de `{}` a été enregistré mais sa lettre morte n'a pas pu être acquittée (abandonnez-la de nouveau)",
                    letter.id
                ),
                source,
            })?;
        Ok(Handled::Done)
    }
}

/// The properties of a replayed copy: the dead letter's, with the dead-letter headers
/// removed, the attempt count back to 1, the error history and the portal's routing key
/// kept, and the replay's date added.
fn replay_properties(
    dead: &BasicProperties,
    letter: &DeadLetter,
    replayed_at: &str,
) -> BasicProperties {
    let original = dead.headers().as_ref();
    let mut headers = aiguillage_bus::headers::headers_without(
        original,
        &[
            aiguillage_bus::headers::HEADER_REASON,
            aiguillage_bus::headers::HEADER_STATUS,
            aiguillage_bus::headers::HEADER_DEAD_AT,
            // The broker's count of returns, grown by every `dead list`: not the copy's.
            aiguillage_bus::headers::HEADER_DELIVERY_COUNT,
        ],
    );
    headers.insert(
        aiguillage_bus::headers::HEADER_ATTEMPT.into(),
        AMQPValue::LongUInt(1),
    );
    headers.insert(
        aiguillage_bus::headers::HEADER_REPLAYED_AT.into(),
        aiguillage_bus::publisher::long_string(replayed_at),
    );
    if !headers.contains_key(aiguillage_bus::headers::HEADER_ROUTING_KEY) {
        // Dead-lettered by RabbitMQ itself: the envelope says where the portal sent it.
        headers.insert(
            aiguillage_bus::headers::HEADER_ROUTING_KEY.into(),
            aiguillage_bus::publisher::long_string(&format!("{}.{}", letter.commune, letter.form)),
        );
    }
    aiguillage_bus::headers::forwarded_properties(dead, headers)
}

/// The dead letters as a table for people, the reason last (it is the longest).
pub fn render_table(letters: &[DeadLetter]) -> String {
    const HEADINGS: [&str; 8] = [
        "ID",
        "COMMUNE",
        "FORMULAIRE",
        "CONNECTEUR",
        "STATUT",
        "TENTATIVES",
        "DEPUIS",
        "RAISON",
    ];
    let rows: Vec<[String; 8]> = letters
        .iter()
        .map(|l| {
            [
                l.id.clone(),
                l.commune.clone(),
                l.form.clone(),
                l.connector.clone(),
                l.status.clone(),
                l.attempts.to_string(),
                l.age.clone().unwrap_or_else(|| "?".into()),
                l.reason.clone(),
            ]
        })
        .collect();
    render_rows(&HEADINGS, &rows)
}

/// The unrouted démarches as a table for people (in French, as the operator reads it), the
/// reason last.
pub fn render_unrouted_table(letters: &[DeadLetter]) -> String {
    const HEADINGS: [&str; 6] = ["ID", "COMMUNE", "FORMULAIRE", "CLÉ", "DEPUIS", "RAISON"];
    let rows: Vec<[String; 6]> = letters
        .iter()
        .map(|l| {
            [
                l.id.clone(),
                l.commune.clone(),
                l.form.clone(),
                l.routing_key.clone(),
                l.age.clone().unwrap_or_else(|| "?".into()),
                l.reason.clone(),
            ]
        })
        .collect();
    render_rows(&HEADINGS, &rows)
}

/// Aligned columns, the last one left as long as it is.
fn render_rows<const N: usize>(headings: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = headings.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (index, cell) in cells.iter().enumerate() {
            if index + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let pad = widths[index].saturating_sub(cell.chars().count());
                let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(headings);
    for row in rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells);
    }
    out
}

/// The SHA-256 of a body, in lowercase hexadecimal.
fn sha256_hex(body: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(body)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests;
