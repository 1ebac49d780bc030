//! What the store knows of the démarches, for the operator: the whole history of one
//! démarche (found by its envelope id or its number `display_id`), and one line per
//! commune × connector for the dashboard. Read-only queries: the pipeline never waits on
//! them.
//!
//! The admin API (`/api/deliveries`, `/api/overview`), the dashboard and the CLI read the
//! same functions, so that they always say the same thing.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;
use time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset, Weekday};

use crate::operator::dead::UNROUTED;
use crate::store::{Store, StoreError};
use aiguillage_bus::{format_utc, Status};

/// The most deliveries a search returns (a démarche has one per connector that takes it).
pub const SEARCH_LIMIT: i64 = 50;

/// How many recent errors the overview keeps per commune × connector.
pub const ERRORS_PER_LINE: usize = 3;

/// How many recent failed attempts the overview reads in all.
const RECENT_ERRORS: i64 = 500;

/// A failed attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptError {
    /// The attempt's number (1 for the first).
    pub attempt: u32,
    /// The reason, as the connector reported it.
    pub error: String,
    /// When (RFC 3339 UTC).
    pub at: String,
}

/// A discard of the démarche's dead letter by an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscardRecord {
    /// Why.
    pub reason: String,
    /// Who.
    pub by: String,
    /// When (RFC 3339 UTC).
    pub at: String,
}

/// The whole history of one démarche with one connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The envelope id.
    pub envelope_id: String,
    /// The démarche number people see, when known.
    pub display_id: Option<String>,
    /// The connector.
    pub connector: String,
    /// Commune INSEE code.
    pub commune: String,
    /// Form slug.
    pub form: String,
    /// Where it stands: `delivered`, `retrying`, `rejected` or `dead` (the status event's
    /// word); `unrouted` for a démarche that no route took, discarded from the unrouted
    /// queue (connector [`UNROUTED`]).
    pub status: String,
    /// Attempts made (since the last replay, if any).
    pub attempts: u32,
    /// The business software's reference, once delivered.
    pub reference: Option<String>,
    /// The last failure's reason.
    pub last_error: Option<String>,
    /// When the gateway first recorded an outcome for it (RFC 3339 UTC).
    pub first_seen_at: String,
    /// When its outcome last changed.
    pub updated_at: String,
    /// Every failed attempt, oldest first (kept across replays).
    pub errors: Vec<AttemptError>,
    /// Its dead letter's discards, oldest first.
    pub discards: Vec<DiscardRecord>,
}

/// Finds the démarches whose envelope id or number (`display_id`) is `term`, with their
/// whole history, oldest first; at most [`SEARCH_LIMIT`].
///
/// # Errors
///
/// [`StoreError`] when the store cannot be read.
pub async fn search(store: &Store, term: &str) -> Result<Vec<Delivery>, StoreError> {
    let term = term.trim();
    let rows = sqlx::query(
        "SELECT envelope_id, display_id, connector, commune, form, status, attempts, reference, \
                last_error, first_seen_at, updated_at \
         FROM deliveries WHERE envelope_id = $1 OR display_id = $1 \
         ORDER BY first_seen_at, envelope_id, connector LIMIT $2",
    )
    .bind(term)
    .bind(SEARCH_LIMIT)
    .fetch_all(store.pool())
    .await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in &rows {
        let status: String = row.try_get("status")?;
        // Checked, so that a value this version does not know is reported, not shown.
        let status: Status = status.parse()?;
        let attempts: i64 = row.try_get("attempts")?;
        let envelope_id: String = row.try_get("envelope_id")?;
        let connector: String = row.try_get("connector")?;
        let errors = store
            .errors(&envelope_id, &connector)
            .await?
            .into_iter()
            .map(|(attempt, error, at)| AttemptError { attempt, error, at })
            .collect();
        let discards = store
            .discards(&envelope_id)
            .await?
            .into_iter()
            .filter(|d| d.connector == connector)
            .map(|d| DiscardRecord {
                reason: d.reason,
                by: d.discarded_by,
                at: d.discarded_at,
            })
            .collect();
        found.push(Delivery {
            display_id: row.try_get("display_id")?,
            commune: row.try_get("commune")?,
            form: row.try_get("form")?,
            status: status.as_str().to_owned(),
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            reference: row.try_get("reference")?,
            last_error: row.try_get("last_error")?,
            first_seen_at: row.try_get("first_seen_at")?,
            updated_at: row.try_get("updated_at")?,
            envelope_id,
            connector,
            errors,
            discards,
        });
    }
    // A démarche that no route took has no delivery: its discard is its whole history.
    for discard in store.discards(term).await? {
        if discard.connector != UNROUTED {
            continue;
        }
        found.push(Delivery {
            display_id: None,
            status: UNROUTED.to_owned(),
            attempts: 0,
            reference: None,
            last_error: None,
            first_seen_at: discard.discarded_at.clone(),
            updated_at: discard.discarded_at.clone(),
            errors: Vec::new(),
            discards: vec![DiscardRecord {
                reason: discard.reason,
                by: discard.discarded_by,
                at: discard.discarded_at,
            }],
            envelope_id: discard.envelope_id,
            connector: discard.connector,
            commune: discard.commune,
            form: discard.form,
        });
    }
    Ok(found)
}

/// A recent failure on a line of the overview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecentError {
    /// The démarche's envelope id.
    pub envelope_id: String,
    /// Its number, when known.
    pub display_id: Option<String>,
    /// The attempt.
    pub attempt: u32,
    /// The reason, as the connector reported it.
    pub error: String,
    /// When (RFC 3339 UTC).
    pub at: String,
}

/// What the store says of one commune × connector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Line {
    /// Commune INSEE code.
    pub commune: String,
    /// Connector name.
    pub connector: String,
    /// When a démarche was last delivered (RFC 3339 UTC), if ever.
    pub last_success: Option<String>,
    /// Démarches delivered since `since`.
    pub delivered_today: u64,
    /// Démarches that went to the dead letters (rejected or dead) since `since`.
    pub failed_today: u64,
    /// Démarches waiting for another attempt now.
    pub retrying: u64,
    /// The latest failed attempts, newest first (at most [`ERRORS_PER_LINE`]).
    pub last_errors: Vec<RecentError>,
}

/// One line per commune × connector the store knows, in (commune, connector) order, with
/// the counts since `since` (RFC 3339 UTC text, e.g. [`start_of_day_in_france`]).
///
/// # Errors
///
/// [`StoreError`] when the store cannot be read.
pub async fn overview(store: &Store, since: &str) -> Result<Vec<Line>, StoreError> {
    let pool = store.pool();
    let mut lines: BTreeMap<(String, String), Line> = BTreeMap::new();
    let count = |row: &sqlx::any::AnyRow| -> Result<u64, StoreError> {
        let n: i64 = row.try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    };

    let last_success = sqlx::query(
        "SELECT commune, connector, MAX(updated_at) AS at FROM deliveries \
         WHERE status = $1 GROUP BY commune, connector",
    )
    .bind(Status::Delivered.as_str())
    .fetch_all(pool)
    .await?;
    for row in &last_success {
        let at: Option<String> = row.try_get("at")?;
        line(&mut lines, row)?.last_success = at;
    }

    let today = sqlx::query(
        "SELECT commune, connector, status, COUNT(*) AS n FROM deliveries \
         WHERE updated_at >= $1 GROUP BY commune, connector, status",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    for row in &today {
        let status: String = row.try_get("status")?;
        let n = count(row)?;
        let entry = line(&mut lines, row)?;
        match status.parse()? {
            Status::Delivered => entry.delivered_today += n,
            Status::Rejected | Status::Dead => entry.failed_today += n,
            Status::Retrying => {}
        }
    }

    let retrying = sqlx::query(
        "SELECT commune, connector, COUNT(*) AS n FROM deliveries \
         WHERE status = $1 GROUP BY commune, connector",
    )
    .bind(Status::Retrying.as_str())
    .fetch_all(pool)
    .await?;
    for row in &retrying {
        let n = count(row)?;
        line(&mut lines, row)?.retrying = n;
    }

    let errors = sqlx::query(
        // The latest failures first (index on `at`), then their outcome rows by primary
        // key: joining first would read every outcome (100 ms instead of 1.4 ms on
        // PostgreSQL with 200,000 outcomes).
        "SELECT d.commune, e.connector, e.envelope_id, d.display_id, e.attempt, e.error, e.at \
         FROM (SELECT envelope_id, connector, attempt, error, at FROM delivery_errors \
               ORDER BY at DESC LIMIT $1) e \
         JOIN deliveries d ON d.envelope_id = e.envelope_id AND d.connector = e.connector \
         ORDER BY e.at DESC",
    )
    .bind(RECENT_ERRORS)
    .fetch_all(pool)
    .await?;
    for row in &errors {
        let attempt: i64 = row.try_get("attempt")?;
        let recent = RecentError {
            envelope_id: row.try_get("envelope_id")?,
            display_id: row.try_get("display_id")?,
            attempt: u32::try_from(attempt).unwrap_or(0),
            error: row.try_get("error")?,
            at: row.try_get("at")?,
        };
        let entry = line(&mut lines, row)?;
        if entry.last_errors.len() < ERRORS_PER_LINE {
            entry.last_errors.push(recent);
        }
    }
    Ok(lines.into_values().collect())
}

/// The line of the row's commune and connector, created if new.
fn line<'a>(
    lines: &'a mut BTreeMap<(String, String), Line>,
    row: &sqlx::any::AnyRow,
) -> Result<&'a mut Line, StoreError> {
    let commune: String = row.try_get("commune")?;
    let connector: String = row.try_get("connector")?;
    Ok(lines
        .entry((commune.clone(), connector.clone()))
        .or_insert_with(|| Line {
            commune,
            connector,
            ..Line::default()
        }))
}

/// Midnight in France (Europe/Paris: UTC+1, UTC+2 in summer time) of the day `now` falls
/// on there, as stored (RFC 3339 UTC text): where the dashboard's "today" starts.
pub fn start_of_day_in_france(now: OffsetDateTime) -> String {
    let local = now.to_offset(france_offset(now));
    let midnight = local.replace_time(Time::MIDNIGHT);
    // The offset of midnight itself (a change of time happens at 2 or 3 in the morning).
    let midnight = midnight
        .replace_offset(france_offset(midnight - Duration::hours(2)))
        .to_offset(UtcOffset::UTC);
    format_utc(midnight)
}

/// The offset of France at `at`: summer time from the last Sunday of March to the last
/// Sunday of October, changing at 01:00 UTC (EU rule; no time-zone database needed).
pub fn france_offset(at: OffsetDateTime) -> UtcOffset {
    let at = at.to_offset(UtcOffset::UTC);
    let change = |month: Month| {
        let last = Date::from_calendar_date(at.year(), month, 31).unwrap_or(at.date());
        let back = last.weekday().number_days_from_sunday();
        let sunday = last - Duration::days(i64::from(back));
        debug_assert_eq!(sunday.weekday(), Weekday::Sunday);
        sunday.with_time(Time::from_hms(1, 0, 0).unwrap_or(Time::MIDNIGHT))
    };
    let (start, end) = (change(Month::March), change(Month::October));
    let utc = time::PrimitiveDateTime::new(at.date(), at.time());
    let hours = if utc >= start && utc < end { 2 } else { 1 };
    UtcOffset::from_hms(hours, 0, 0).unwrap_or(UtcOffset::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn france_is_one_hour_ahead_in_winter_and_two_in_summer() {
        assert_eq!(
            france_offset(datetime!(2026-11-29 12:00 UTC)).whole_hours(),
            1
        );
        assert_eq!(
            france_offset(datetime!(2026-07-14 12:00 UTC)).whole_hours(),
            2
        );
        // 2026: summer time from Sunday 29 March to Sunday 25 October, 01:00 UTC.
        assert_eq!(
            france_offset(datetime!(2026-03-29 00:59 UTC)).whole_hours(),
            1
        );
        assert_eq!(
            france_offset(datetime!(2026-03-29 01:00 UTC)).whole_hours(),
            2
        );
        assert_eq!(
            france_offset(datetime!(2026-10-25 00:59 UTC)).whole_hours(),
            2
        );
        assert_eq!(
            france_offset(datetime!(2026-10-25 01:00 UTC)).whole_hours(),
            1
        );
    }

    #[test]
    fn today_starts_at_midnight_in_france() {
        // 29 November, 00:30 in Paris is still 28 November in UTC.
        assert_eq!(
            start_of_day_in_france(datetime!(2026-11-28 23:30 UTC)),
            "2026-11-28T23:00:00.000Z"
        );
        assert_eq!(
            start_of_day_in_france(datetime!(2026-11-29 09:00 UTC)),
            "2026-11-28T23:00:00.000Z"
        );
        assert_eq!(
            start_of_day_in_france(datetime!(2026-07-14 09:00 UTC)),
            "2026-07-13T22:00:00.000Z"
        );
    }
}
