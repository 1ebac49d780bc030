//! The operator's actions on dead letters, in one implementation: the CLI (`aiguillage dead
//! list|replay|discard`), the admin API (`/api/dead-letters…`) and the dashboard's buttons
//! all call these functions with the same requests, so that they check the same things
//! (an explicit selection, a reason for a discard, a known connector) and do the same.
//! The démarches that no route takes go through the same requests
//! ([`Operator::unrouted`]: `aiguillage unrouted …`, `/api/unrouted…`, the dashboard), with
//! no connector to name.

use lapin::Connection;
use serde::{Deserialize, Serialize};

use crate::operator::dead::{
    DeadError, DeadLetter, DeadLetters, Filter, Listing, Progress, Selection,
};
use crate::routing::Router;
use crate::store::Store;
use aiguillage_bus::BusConfig;

/// Which démarches held aside a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The dead letters of the connectors.
    DeadLetters,
    /// The démarches that no route takes.
    Unrouted,
}

/// Which dead letters: every criterion given must hold (none: all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadQuery {
    /// The envelope id (`unreadable`: the bodies that are not valid envelopes).
    pub id: Option<String>,
    /// Only this connector's.
    pub connector: Option<String>,
    /// Only this commune's (INSEE code).
    pub commune: Option<String>,
    /// Only this form's (slug).
    pub form: Option<String>,
}

impl DeadQuery {
    /// The filter it means; empty texts count as not given.
    pub fn filter(&self) -> Filter {
        let given = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Filter {
            id: given(&self.id),
            connector: given(&self.connector),
            commune: given(&self.commune),
            form: given(&self.form),
        }
    }
}

/// A replay: which dead letters, or `all` to say explicitly "every one (of the filter)".
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// The envelope id.
    pub id: Option<String>,
    /// Only this connector's.
    pub connector: Option<String>,
    /// Only this commune's.
    pub commune: Option<String>,
    /// Only this form's.
    pub form: Option<String>,
    /// Every dead letter matching the other criteria (required when none is given).
    #[serde(default)]
    pub all: bool,
}

/// A discard: which dead letters (there is no "all"), why and who.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscardRequest {
    /// The envelope id.
    pub id: Option<String>,
    /// Only this connector's.
    pub connector: Option<String>,
    /// Only this commune's.
    pub commune: Option<String>,
    /// Only this form's.
    pub form: Option<String>,
    /// Why, kept in the store (required).
    #[serde(default)]
    pub reason: String,
    /// Who, kept in the store (the caller's default when absent).
    pub by: Option<String>,
}

/// A dead letter that matched but was left in place, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The dead letter.
    #[serde(flatten)]
    pub letter: DeadLetter,
    /// Why it stays.
    pub skipped_because: String,
}

/// What a replay or a discard did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Replayed (sent back to the connector's queue) or discarded (removed, recorded).
    pub done: Vec<DeadLetter>,
    /// Matched but left in the dead letters.
    pub skipped: Vec<Skipped>,
    /// Dead-letter queues that do not exist yet (the gateway never ran with the connector).
    pub missing_queues: Vec<String>,
}

/// The dead letters of a gateway: its broker connection, bus settings and connectors; or
/// its démarches that no route takes.
pub struct Operator<'a> {
    letters: DeadLetters<'a>,
}

impl<'a> Operator<'a> {
    /// The dead letters of `connectors` (the configured names) on `connection`.
    pub fn new(connection: &'a Connection, bus: &'a BusConfig, connectors: Vec<String>) -> Self {
        Self {
            letters: DeadLetters::new(connection, bus, connectors),
        }
    }

    /// The démarches that no route takes, judged by `router` (see
    /// [`DeadLetters::unrouted`]); a request naming a connector is refused.
    pub fn unrouted(connection: &'a Connection, bus: &'a BusConfig, router: &'a Router) -> Self {
        Self {
            letters: DeadLetters::unrouted(connection, bus, router),
        }
    }

    /// The operator of `held`: the dead letters of `connectors`, or the unrouted
    /// démarches judged by `router` (for the admin server, which serves both).
    pub fn of(
        held: Held,
        connection: &'a Connection,
        bus: &'a BusConfig,
        connectors: Vec<String>,
        router: &'a Router,
    ) -> Self {
        match held {
            Held::DeadLetters => Self::new(connection, bus, connectors),
            Held::Unrouted => Self::unrouted(connection, bus, router),
        }
    }

    /// Lists the dead letters matching `query`, leaving them all in their queues.
    ///
    /// # Errors
    ///
    /// [`DeadError`] for an unknown connector or a broker failure.
    pub async fn list(&self, query: &DeadQuery) -> Result<Listing, DeadError> {
        self.letters.list(&query.filter()).await
    }

    /// Replays the selected dead letters (see [`DeadLetters::replay`]); `progress` hears of
    /// each one as it is handled.
    ///
    /// # Errors
    ///
    /// [`DeadError::NoReplaySelector`] when nothing is selected and `all` is not given, an
    /// unknown connector, or a bus or store failure (what was replayed stays replayed).
    pub async fn replay(
        &self,
        store: &Store,
        request: &ReplayRequest,
        progress: &mut (dyn FnMut(Progress<'_>) + Send),
    ) -> Result<Report, DeadError> {
        let query = DeadQuery {
            id: request.id.clone(),
            connector: request.connector.clone(),
            commune: request.commune.clone(),
            form: request.form.clone(),
        };
        let selection = Selection::for_replay(query.filter(), request.all)?;
        let mut report = Report::default();
        let summary = self
            .letters
            .replay(store, &selection, &mut |step| {
                collect(&mut report, step);
                progress(step);
            })
            .await?;
        report.missing_queues = summary.missing_queues;
        Ok(report)
    }

    /// Discards the selected dead letters for good, recording each (see
    /// [`DeadLetters::discard`]); `by` is used when the request names nobody.
    ///
    /// # Errors
    ///
    /// [`DeadError::NoDiscardSelector`] when nothing is selected, [`DeadError::NoReason`]
    /// without a reason, an unknown connector, or a bus or store failure.
    pub async fn discard(
        &self,
        store: &Store,
        request: &DiscardRequest,
        by: &str,
        progress: &mut (dyn FnMut(Progress<'_>) + Send),
    ) -> Result<Report, DeadError> {
        let query = DeadQuery {
            id: request.id.clone(),
            connector: request.connector.clone(),
            commune: request.commune.clone(),
            form: request.form.clone(),
        };
        let selection = Selection::for_discard(query.filter())?;
        if request.reason.trim().is_empty() {
            return Err(DeadError::NoReason);
        }
        let by = request
            .by
            .as_deref()
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .unwrap_or(by);
        let mut report = Report::default();
        let summary = self
            .letters
            .discard(store, &selection, &request.reason, by, &mut |step| {
                collect(&mut report, step);
                progress(step);
            })
            .await?;
        report.missing_queues = summary.missing_queues;
        Ok(report)
    }
}

fn collect(report: &mut Report, step: Progress<'_>) {
    match step {
        Progress::Done(letter) => report.done.push(letter.clone()),
        Progress::Skipped(letter, why) => report.skipped.push(Skipped {
            letter: letter.clone(),
            skipped_because: why.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_texts_do_not_select() {
        let query = DeadQuery {
            id: Some("  ".into()),
            connector: Some("famille".into()),
            ..DeadQuery::default()
        };
        assert_eq!(
            query.filter(),
            Filter {
                connector: Some("famille".into()),
                ..Filter::default()
            }
        );
        assert!(DeadQuery::default().filter().is_empty());
    }

    #[test]
    fn requests_refuse_unknown_keys() {
        let typo = serde_json::from_str::<ReplayRequest>(r#"{"ids": ["x"]}"#);
        assert!(typo
            .unwrap_err()
            .to_string()
            .contains("unknown field `ids`"));
        let ok: DiscardRequest =
            serde_json::from_str(r#"{"id": "x", "reason": "doublon"}"#).unwrap();
        assert_eq!(ok.reason, "doublon");
    }
}
