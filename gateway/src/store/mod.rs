// Over 600 lines: one SQL table per block of methods on Store; to split by table (outcomes, bindings, notifications, sequences) in phase B.
//! The store: the durable record of each delivery's outcome.
//!
//! An outcome is recorded before the message is acknowledged, and a redelivered message
//! whose outcome is recorded is not delivered again: that is what turns the bus's
//! at-least-once into effectively-once. SQLite (embedded, one instance) and PostgreSQL
//! (several instances) run the same SQL.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use aiguillage_bus::{now_text, Status, UnknownStatus};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The recorded outcome of one (envelope, connector).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Envelope id.
    pub envelope_id: String,
    /// Connector name.
    pub connector: String,
    /// Commune INSEE code.
    pub commune: String,
    /// Form slug.
    pub form: String,
    /// Where it stands.
    pub status: Status,
    /// Attempts made so far.
    pub attempts: u32,
    /// The target's reference, once delivered.
    pub reference: Option<String>,
    /// The last failure's reason.
    pub last_error: Option<String>,
    /// The démarche number people see (w.c.s.'s `display_id`), when the envelope has one.
    pub display_id: Option<String>,
    /// What the connector reported beyond the reference, once delivered
    /// ([`aiguillage_connector::Receipt::details`]); empty otherwise.
    pub details: BTreeMap<String, String>,
}

/// A dead letter an operator discarded (`aiguillage dead discard`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discard {
    /// Envelope id (`unreadable` when the body was not a valid envelope).
    pub envelope_id: String,
    /// The connector whose dead letters held it.
    pub connector: String,
    /// Commune INSEE code (as far as it could be read).
    pub commune: String,
    /// Form slug (as far as it could be read).
    pub form: String,
    /// Why the operator discarded it.
    pub reason: String,
    /// Who discarded it.
    pub discarded_by: String,
    /// When (RFC 3339, UTC, milliseconds).
    pub discarded_at: String,
    /// SHA-256 of the body, hexadecimal, when known.
    pub body_sha256: Option<String>,
}

/// The store cannot be used; nothing is acknowledged until it can.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or is unreachable (its own words quoted: they reach reasons,
    /// the dashboard and the CLI, in French).
    #[error("base de la passerelle indisponible : « {0} »")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("la mise à jour du schéma de la base de la passerelle a échoué : « {0} »")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A row holds something this version does not understand.
    #[error("la base de la passerelle contient une valeur inattendue : {0}")]
    Corrupt(String),
    /// A group of outcomes could not be committed (each of them gets this), or the store
    /// is closed.
    #[error("base de la passerelle indisponible : {0}")]
    Unavailable(String),
}

impl From<UnknownStatus> for StoreError {
    fn from(error: UnknownStatus) -> Self {
        Self::Corrupt(error.to_string())
    }
}

/// A binding of a connector's queue on the démarches exchange.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Binding {
    /// The connector's queue.
    pub queue: String,
    /// The topic pattern.
    pub routing_key: String,
    /// The connector.
    pub connector: String,
}

/// The outcome store.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// The outcomes waiting to be committed (see [`Store::record`]).
    commits: mpsc::Sender<PendingOutcome>,
    /// The outcomes waiting to be read (see [`Store::outcome`]).
    reads: mpsc::Sender<PendingRead>,
}

/// A read of an outcome waiting for the grouped read, and who waits for it.
struct PendingRead {
    envelope_id: String,
    connector: String,
    done: oneshot::Sender<Result<Option<Outcome>, String>>,
}

/// An outcome waiting for the group commit, and who waits for it.
struct PendingOutcome {
    outcome: Outcome,
    at: String,
    done: oneshot::Sender<Result<(), String>>,
}

/// The most outcomes committed in one transaction.
const MAX_GROUP: usize = 256;

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `url` (creating an SQLite file if needed) and migrates it.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database is unreachable or cannot be migrated.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let url = if url.starts_with("sqlite:") && !url.contains("mode=") {
            // Created on first start, as the configuration reference promises.
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        } else {
            url.to_owned()
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            // No ping before each use: it doubled the round trips of every statement
            // (measured: docs/performance.md). A connection that died is found by the
            // statement itself, whose error makes the caller retry (the pool then opens
            // a new connection).
            .test_before_acquire(false)
            .after_connect(|connection, _| {
                Box::pin(async move {
                    if connection.backend_name() == "PostgreSQL" {
                        // Statements are prepared once and reused: after five runs,
                        // PostgreSQL may keep a generic plan chosen while the table was
                        // small, a sequential scan that then grows with the table (the
                        // grouped read took 2.6 times longer at 100,000 démarches). Each
                        // run is planned with its own values instead: an index scan.
                        sqlx::query("SET plan_cache_mode = force_custom_plan")
                            .execute(connection)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        if url.starts_with("sqlite:") {
            // Write-ahead log: a commit is one fsync of the log instead of three (journal,
            // database, journal removal), and readers do not wait for the writer. Kept in
            // the file; `synchronous` stays FULL, so a commit is durable when it returns.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        MIGRATOR.run(&pool).await?;
        let (commits, pending) = mpsc::channel(MAX_GROUP * 4);
        tokio::spawn(commit_in_groups(pool.clone(), pending));
        let (reads, waiting) = mpsc::channel(MAX_GROUP * 4);
        tokio::spawn(read_in_groups(pool.clone(), waiting));
        Ok(Self {
            pool,
            commits,
            reads,
        })
    }

    /// Checks that the database answers.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The recorded outcome of `envelope_id` with `connector`, if any.
    ///
    /// Reads asked at the same time are made together, in one query (as outcomes are
    /// committed together, see [`Store::record`]): every message asks before it is
    /// delivered, and one round trip per message was the store's largest cost.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read.
    pub async fn outcome(
        &self,
        envelope_id: &str,
        connector: &str,
    ) -> Result<Option<Outcome>, StoreError> {
        let (done, read) = oneshot::channel();
        let pending = PendingRead {
            envelope_id: envelope_id.to_owned(),
            connector: connector.to_owned(),
            done,
        };
        let closed = || StoreError::Unavailable("la base est fermée".into());
        self.reads.send(pending).await.map_err(|_| closed())?;
        read.await
            .map_err(|_| closed())?
            .map_err(StoreError::Unavailable)
    }

    /// Records an outcome (inserting or replacing the previous one), and, for a failed
    /// attempt, its reason in the error history. Returns once it is committed.
    ///
    /// Outcomes recorded at the same time are committed together, in one transaction
    /// (a group commit): while one group is being written, the next one gathers. Nobody
    /// waits for a group to fill, and each caller still returns only when its own outcome
    /// is durable.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written: the caller must not ack.
    pub async fn record(&self, outcome: &Outcome) -> Result<(), StoreError> {
        let (done, committed) = oneshot::channel();
        let pending = PendingOutcome {
            outcome: outcome.clone(),
            at: now_text(),
            done,
        };
        let closed = || StoreError::Unavailable("la base est fermée".into());
        self.commits.send(pending).await.map_err(|_| closed())?;
        committed
            .await
            .map_err(|_| closed())?
            .map_err(StoreError::Unavailable)
    }

    /// The failed attempts of `envelope_id` with `connector`, oldest first:
    /// `(attempt, reason, when)`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read.
    pub async fn errors(
        &self,
        envelope_id: &str,
        connector: &str,
    ) -> Result<Vec<(u32, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT attempt, error, at FROM delivery_errors \
             WHERE envelope_id = $1 AND connector = $2 ORDER BY at, attempt",
        )
        .bind(envelope_id)
        .bind(connector)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let attempt: i64 = row.try_get("attempt")?;
                Ok((
                    u32::try_from(attempt).unwrap_or(0),
                    row.try_get("error")?,
                    row.try_get("at")?,
                ))
            })
            .collect()
    }

    /// Counts the recorded outcomes of a connector by status.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read.
    pub async fn count(&self, connector: &str, status: Status) -> Result<u64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM deliveries WHERE connector = $1 AND status = $2",
        )
        .bind(connector)
        .bind(status.as_str())
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = row.try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Prepares the outcome of `envelope_id` with `connector` for a replay from the dead
    /// letters: status `retrying` and 0 attempts, so that the pipeline does not skip the
    /// replayed copy as already final. The error history and the last error are kept.
    /// A delivered outcome is left alone (a replayed copy of it is then acknowledged
    /// without a second delivery). True when a row was reset; false when there is no
    /// row (the pipeline then handles the copy as a new démarche) or it is delivered.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written: do not replay then.
    pub async fn reset_for_replay(
        &self,
        envelope_id: &str,
        connector: &str,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE deliveries SET status = $1, attempts = 0, updated_at = $2 \
             WHERE envelope_id = $3 AND connector = $4 AND status <> $5",
        )
        .bind(Status::Retrying.as_str())
        .bind(now_text())
        .bind(envelope_id)
        .bind(connector)
        .bind(Status::Delivered.as_str())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Records that an operator discarded a dead letter.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written: do not remove the dead letter then.
    pub async fn record_discard(&self, discard: &Discard) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO discards \
               (envelope_id, connector, commune, form, reason, discarded_by, discarded_at, body_sha256) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&discard.envelope_id)
        .bind(&discard.connector)
        .bind(&discard.commune)
        .bind(&discard.form)
        .bind(&discard.reason)
        .bind(&discard.discarded_by)
        .bind(&discard.discarded_at)
        .bind(discard.body_sha256.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The recorded discards of `envelope_id`, oldest first.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read.
    pub async fn discards(&self, envelope_id: &str) -> Result<Vec<Discard>, StoreError> {
        let rows = sqlx::query(
            "SELECT envelope_id, connector, commune, form, reason, discarded_by, discarded_at, body_sha256 \
             FROM discards WHERE envelope_id = $1 ORDER BY discarded_at",
        )
        .bind(envelope_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Discard {
                    envelope_id: row.try_get("envelope_id")?,
                    connector: row.try_get("connector")?,
                    commune: row.try_get("commune")?,
                    form: row.try_get("form")?,
                    reason: row.try_get("reason")?,
                    discarded_by: row.try_get("discarded_by")?,
                    discarded_at: row.try_get("discarded_at")?,
                    body_sha256: row.try_get("body_sha256")?,
                })
            })
            .collect()
    }

    /// Records that the Publik notifier sent `status` of `envelope_id` (from `connector`)
    /// to `portal` and that the portal took it. Recording it again keeps the first row.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written.
    pub async fn record_notification(
        &self,
        envelope_id: &str,
        connector: &str,
        status: &str,
        portal: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO publik_notifications (envelope_id, connector, status, portal, sent_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (envelope_id, connector, status) DO NOTHING",
        )
        .bind(envelope_id)
        .bind(connector)
        .bind(status)
        .bind(portal)
        .bind(now_text())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// When the Publik notifier's `status` of `envelope_id` (from `connector`) was taken
    /// by its portal, if it was.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read.
    pub async fn notification_sent_at(
        &self,
        envelope_id: &str,
        connector: &str,
        status: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT sent_at FROM publik_notifications \
             WHERE envelope_id = $1 AND connector = $2 AND status = $3",
        )
        .bind(envelope_id)
        .bind(connector)
        .bind(status)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| row.try_get::<String, _>(0))
            .transpose()
            .map_err(Into::into)
    }

    /// The bindings recorded for `exchange`: `(queue, routing key, connector)`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read.
    pub async fn bindings(&self, exchange: &str) -> Result<Vec<Binding>, StoreError> {
        let rows = sqlx::query(
            "SELECT queue, routing_key, connector FROM bindings WHERE exchange = $1 ORDER BY queue, routing_key",
        )
        .bind(exchange)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Binding {
                    queue: row.try_get("queue")?,
                    routing_key: row.try_get("routing_key")?,
                    connector: row.try_get("connector")?,
                })
            })
            .collect()
    }

    /// Records a binding made on `exchange` (nothing if already recorded).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written.
    pub async fn record_binding(
        &self,
        exchange: &str,
        binding: &Binding,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO bindings (exchange, queue, routing_key, connector, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (exchange, queue, routing_key) DO NOTHING",
        )
        .bind(exchange)
        .bind(&binding.queue)
        .bind(&binding.routing_key)
        .bind(&binding.connector)
        .bind(now_text())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets a binding that was removed from the broker.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be written.
    pub async fn forget_binding(
        &self,
        exchange: &str,
        binding: &Binding,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM bindings WHERE exchange = $1 AND queue = $2 AND routing_key = $3")
            .bind(exchange)
            .bind(&binding.queue)
            .bind(&binding.routing_key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The pool, for the read-only queries of the operator's views ([`crate::operator::history`]).
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The group committer: takes what is waiting (at most [`MAX_GROUP`]), commits it in one
/// transaction, answers each caller, and starts over.
async fn commit_in_groups(pool: AnyPool, mut pending: mpsc::Receiver<PendingOutcome>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while pending.recv_many(&mut group, MAX_GROUP).await > 0 {
        let text = |error: StoreError| match error {
            StoreError::Database(error) => format!("« {error} »"),
            other => other.to_string(),
        };
        match write_group(&pool, &group).await {
            Ok(()) => {
                for waiting in group.drain(..) {
                    let _ = waiting.done.send(Ok(()));
                }
            }
            // One outcome the database refuses must not hold the others: each on its own.
            Err(_) if group.len() > 1 => {
                for waiting in group.drain(..) {
                    let result = write_group(&pool, std::slice::from_ref(&waiting))
                        .await
                        .map_err(text);
                    let _ = waiting.done.send(result);
                }
            }
            Err(error) => {
                let error = text(error);
                for waiting in group.drain(..) {
                    let _ = waiting.done.send(Err(error.clone()));
                }
            }
        }
    }
}

/// The grouped reader: takes the reads waiting (at most [`MAX_GROUP`]), makes them in one
/// query, answers each, and starts over.
async fn read_in_groups(pool: AnyPool, mut pending: mpsc::Receiver<PendingRead>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while pending.recv_many(&mut group, MAX_GROUP).await > 0 {
        match read_group(&pool, &group).await {
            Ok(found) => {
                for waiting in group.drain(..) {
                    // Cloned, not taken: the same démarche may be asked twice in a group.
                    let outcome = found
                        .iter()
                        .find(|o| {
                            o.envelope_id == waiting.envelope_id && o.connector == waiting.connector
                        })
                        .cloned();
                    let _ = waiting.done.send(Ok(outcome));
                }
            }
            Err(error) => {
                let error = match error {
                    StoreError::Database(error) => format!("« {error} »"),
                    other => other.to_string(),
                };
                for waiting in group.drain(..) {
                    let _ = waiting.done.send(Err(error.clone()));
                }
            }
        }
    }
}

/// The recorded outcomes of a group of reads, in one statement per [`MAX_GROUP`] reads.
/// The number of ids asked is rounded up to a power of two (the last id repeated), so that
/// the database sees a handful of distinct statements, each prepared once.
async fn read_group(pool: &AnyPool, group: &[PendingRead]) -> Result<Vec<Outcome>, StoreError> {
    let mut found = Vec::new();
    let mut rest = group;
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(rest.len().min(MAX_GROUP));
        let size = chunk.len().next_power_of_two();
        rest = after;
        let mut sql = String::from(
            "SELECT envelope_id, connector, commune, form, status, attempts, reference, last_error, display_id, details \
             FROM deliveries WHERE envelope_id IN (",
        );
        push_placeholders(&mut sql, 1, size, 1);
        sql.push(')');
        let mut query = sqlx::query(&sql);
        for n in 0..size {
            query = query.bind(&chunk[n.min(chunk.len() - 1)].envelope_id);
        }
        for row in query.fetch_all(pool).await? {
            let outcome = outcome_from_row(&row)?;
            // Rows of other connectors for the same démarche are not asked for.
            if chunk
                .iter()
                .any(|r| r.envelope_id == outcome.envelope_id && r.connector == outcome.connector)
            {
                found.push(outcome);
            }
        }
    }
    Ok(found)
}

/// The size of the next statement of a group commit of `left` outcomes: the largest power
/// of two not above it, at most [`MAX_GROUP`] (a row may not be repeated in an upsert, so
/// these statements are not padded).
fn chunk_size(left: usize) -> usize {
    let below = if left.is_power_of_two() {
        left
    } else {
        left.next_power_of_two() / 2
    };
    below.clamp(1, MAX_GROUP)
}

/// Appends `rows` groups of `width` placeholders (`($1, $2), ($3, $4)` for width 2, or
/// `$1, $2` for width 1), numbered from `first`.
fn push_placeholders(sql: &mut String, first: usize, rows: usize, width: usize) {
    use std::fmt::Write as _;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        if width > 1 {
            sql.push('(');
        }
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "${}", first + row * width + column);
        }
        if width > 1 {
            sql.push(')');
        }
    }
}

/// The values of one outcome in a multi-row upsert.
const OUTCOME_COLUMNS: usize = 12;

async fn write_group(pool: &AnyPool, group: &[PendingOutcome]) -> Result<(), StoreError> {
    // One row per démarche and connector: a statement may not update the same row twice
    // (PostgreSQL refuses it), and of two outcomes of the same démarche recorded at once
    // (a duplicate publication delivered concurrently) the later one is the one to keep.
    let mut seen = std::collections::HashSet::with_capacity(group.len());
    let mut latest: Vec<&PendingOutcome> = group
        .iter()
        .rev()
        .filter(|p| seen.insert((&p.outcome.envelope_id, &p.outcome.connector)))
        .collect();
    latest.reverse();
    let mut tx = pool.begin().await?;
    let mut rest = latest.as_slice();
    while !rest.is_empty() {
        let size = chunk_size(rest.len()).min(rest.len());
        let (chunk, after) = rest.split_at(size);
        rest = after;
        let mut sql = String::from(
            "INSERT INTO deliveries \
               (envelope_id, connector, commune, form, status, attempts, reference, last_error, first_seen_at, updated_at, display_id, details) \
             VALUES ",
        );
        push_placeholders(&mut sql, 1, size, OUTCOME_COLUMNS);
        sql.push_str(
            " ON CONFLICT (envelope_id, connector) DO UPDATE SET \
               status = excluded.status, attempts = excluded.attempts, reference = excluded.reference, \
               last_error = excluded.last_error, updated_at = excluded.updated_at, \
               display_id = COALESCE(excluded.display_id, deliveries.display_id), details = excluded.details",
        );
        let mut query = sqlx::query(&sql);
        for PendingOutcome { outcome, at, .. } in chunk {
            query = query
                .bind(&outcome.envelope_id)
                .bind(&outcome.connector)
                .bind(&outcome.commune)
                .bind(&outcome.form)
                .bind(outcome.status.as_str())
                .bind(i64::from(outcome.attempts))
                .bind(outcome.reference.as_deref())
                .bind(outcome.last_error.as_deref())
                .bind(at)
                .bind(at)
                .bind(outcome.display_id.as_deref())
                .bind(details_text(&outcome.details));
        }
        query.execute(&mut *tx).await?;
    }
    for PendingOutcome { outcome, at, .. } in group {
        if outcome.status != Status::Delivered {
            if let Some(error) = &outcome.last_error {
                sqlx::query(
                    "INSERT INTO delivery_errors (envelope_id, connector, attempt, error, at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&outcome.envelope_id)
                .bind(&outcome.connector)
                .bind(i64::from(outcome.attempts))
                .bind(error)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

/// How many times a number is tried when another instance took the same one first.
const NUMBER_TRIES: u32 = 16;

impl Store {
    /// The number of `owner` in `sequence`: the one it already has, or the next one.
    ///
    /// The insert takes `MAX(value) + 1`; when two instances take the same value at once,
    /// one insert fails on the primary key and that instance tries again. The owner's
    /// unique index makes a second number for the same owner impossible.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read or written, or when the number
    /// could not be taken in [`NUMBER_TRIES`] tries.
    pub async fn number(&self, sequence: &str, owner: &str) -> Result<u64, StoreError> {
        let mut last_error = None;
        for _ in 0..NUMBER_TRIES {
            if let Some(value) = self.assigned_number(sequence, owner).await? {
                return Ok(value);
            }
            let inserted = sqlx::query(
                "INSERT INTO numbers (sequence, value, owner, assigned_at) \
                 SELECT $1, COALESCE(MAX(value), 0) + 1, $2, $3 FROM numbers WHERE sequence = $1",
            )
            .bind(sequence)
            .bind(owner)
            .bind(now_text())
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => {}
                // Another instance took this value, or numbered this owner, first.
                Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                    last_error = Some(sqlx::Error::Database(error));
                }
                Err(error) => return Err(error.into()),
            }
        }
        match self.assigned_number(sequence, owner).await? {
            Some(value) => Ok(value),
            None => Err(StoreError::Unavailable(format!(
                "aucun numéro n'a pu être pris dans la séquence `{sequence}` en {NUMBER_TRIES} essais, d'autres instances prenant chaque fois le numéro d'abord (« {} »)",
                last_error.map_or_else(String::new, |e| e.to_string())
            ))),
        }
    }

    async fn assigned_number(
        &self,
        sequence: &str,
        owner: &str,
    ) -> Result<Option<u64>, StoreError> {
        let row = sqlx::query("SELECT value FROM numbers WHERE sequence = $1 AND owner = $2")
            .bind(sequence)
            .bind(owner)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let value: i64 = row.try_get(0)?;
            u64::try_from(value).map_err(|_| {
                StoreError::Corrupt(format!("numéro {value} dans la séquence `{sequence}`"))
            })
        })
        .transpose()
    }
}

fn outcome_from_row(row: &AnyRow) -> Result<Outcome, StoreError> {
    let status: String = row.try_get("status")?;
    let attempts: i64 = row.try_get("attempts")?;
    Ok(Outcome {
        envelope_id: row.try_get("envelope_id")?,
        connector: row.try_get("connector")?,
        commune: row.try_get("commune")?,
        form: row.try_get("form")?,
        status: status.parse()?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        reference: row.try_get("reference")?,
        last_error: row.try_get("last_error")?,
        display_id: row.try_get("display_id")?,
        details: details_from_text(row.try_get("details")?),
    })
}

/// The details as stored: a JSON object, or NULL when there are none.
fn details_text(details: &BTreeMap<String, String>) -> Option<String> {
    (!details.is_empty()).then(|| serde_json::to_string(details).unwrap_or_default())
}

/// The stored details; a value this gateway did not write (edited by hand) reads as none
/// rather than failing every read of the démarche.
fn details_from_text(text: Option<String>) -> BTreeMap<String, String> {
    text.and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// The Publik notifier records the statuses each portal took in the store.
#[async_trait::async_trait]
impl aiguillage_publik::NotificationLog for Store {
    async fn record_notification(
        &self,
        envelope_id: &str,
        connector: &str,
        status: &str,
        portal: &str,
    ) -> Result<(), aiguillage_publik::LogError> {
        Store::record_notification(self, envelope_id, connector, status, portal)
            .await
            .map_err(Into::into)
    }

    async fn notification_sent_at(
        &self,
        envelope_id: &str,
        connector: &str,
        status: &str,
    ) -> Result<Option<String>, aiguillage_publik::LogError> {
        Store::notification_sent_at(self, envelope_id, connector, status)
            .await
            .map_err(Into::into)
    }
}

#[cfg(test)]
mod tests;
