//! End-to-end test harness of Aiguillage, against the machine's real RabbitMQ, SQLite and
//! PostgreSQL, plus simulators of the business software we cannot run.
//!
//! The fixture layer:
//! - [`Scenario`] (module [`scenario`]) isolates a test: its exchanges and queues carry a
//!   unique, time-stamped prefix ([`broker::unique`]), its SQLite file lives in its own
//!   temporary directory and its PostgreSQL tables in their own schema. Presets add the
//!   usual connectors ([`Scenario::rest`]), start the gateway in-process with the status
//!   events followed ([`Scenario::launch`]) or as a process ([`Scenario::spawn_gateway`]),
//!   run its command line ([`Scenario::cli`]), and stop ([`Scenario::finish`]).
//!   [`Scenario::cleanup`] removes what it declared, and so does dropping it: a test that
//!   panics leaves nothing on the broker.
//! - [`broker::sweep_stale`], at the first scenario of a test binary, removes the test
//!   queues and exchanges older than a day (runs that were killed).
//! - [`import_sim`] is the import-folder simulator core of the Cityweb, PES and ADS
//!   simulators; [`xmllint`] validates against the vendored schemas.
//! - [`on_both_stores!`] runs a test on SQLite and on PostgreSQL.
//!
//! A missing service fails the test (with the command that starts it): nothing is
//! skipped silently.

pub mod ads_sim;
pub mod broker;
pub mod cityweb_sim;
pub mod import_sim;
pub mod pes_sim;
pub mod rest_target;
pub mod scenario;
pub mod smtp;
pub mod watch;
pub mod wcs_sim;
pub mod webdriver;
pub mod xmllint;

pub use broker::{amqp_url, close_connections_named, unique};
pub use scenario::{admin_get, postgres_url, Running, Scenario, StatusEvents, StoreKind};

use lapin::types::FieldTable;
use serde_json::{json, Value};

/// A header of a message as text (empty when absent or not a string).
pub fn header_text(headers: &FieldTable, key: &str) -> String {
    match headers.inner().get(key) {
        Some(lapin::types::AMQPValue::LongString(s)) => {
            String::from_utf8_lossy(s.as_bytes()).into_owned()
        }
        _ => String::new(),
    }
}

/// A header of a message as a list of texts.
pub fn header_list(headers: &FieldTable, key: &str) -> Vec<String> {
    match headers.inner().get(key) {
        Some(lapin::types::AMQPValue::FieldArray(items)) => items
            .as_slice()
            .iter()
            .filter_map(|v| match v {
                lapin::types::AMQPValue::LongString(s) => {
                    Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The repository's root (with `mappings/`, `schemas/`, `tests/fixtures/`).
pub fn workspace() -> std::path::PathBuf {
    xmllint::workspace_root()
}

/// A golden w.c.s. démarche, `tests/fixtures/{folder}/{name}.json`, with an id unique to
/// the test (`{prefix}:` before its own).
pub fn golden_envelope(folder: &str, name: &str, prefix: &str) -> Value {
    let path = workspace().join(format!("tests/fixtures/{folder}/{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let mut envelope: Value = serde_json::from_str(&text).expect("a JSON démarche");
    let id = envelope["id"].as_str().unwrap_or_default().to_owned();
    envelope["id"] = Value::String(format!("{prefix}:{id}"));
    envelope
}

/// The golden démarches `names` of `tests/fixtures/{folder}` (see [`golden_envelope`]).
pub fn golden_envelopes(folder: &str, names: &[&str], prefix: &str) -> Vec<Value> {
    names
        .iter()
        .map(|name| golden_envelope(folder, name, prefix))
        .collect()
}

/// Defines a module `$name` with the test `$body(store)` run twice: on SQLite and on
/// PostgreSQL (`mod $name { fn sqlite; fn postgres }`), as a multi-thread tokio test unless
/// test attributes come first (e.g. `#[tokio::test]`).
#[macro_export]
macro_rules! on_both_stores {
    ($(#[$test:meta])+ $name:ident, $body:ident) => {
        mod $name {
            use super::*;
            $(#[$test])+
            async fn sqlite() {
                $body($crate::StoreKind::Sqlite).await;
            }
            $(#[$test])+
            async fn postgres() {
                $body($crate::StoreKind::Postgres).await;
            }
        }
    };
    ($name:ident, $body:ident) => {
        $crate::on_both_stores!(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $name,
            $body
        );
    };
}

/// The gateway's command line as this package builds it (`aiguillage-e2e`), for
/// [`Scenario::cli`] and [`Scenario::spawn_gateway`]: a macro, since Cargo names the path
/// only to the test that expands it.
#[macro_export]
macro_rules! gateway_bin {
    () => {
        std::path::Path::new(env!("CARGO_BIN_EXE_aiguillage-e2e"))
    };
}

/// What a program wrote on its standard output.
pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What a program wrote on its standard error.
pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that a program's standard output contains `text` (showing it otherwise).
#[track_caller]
pub fn assert_says(output: &std::process::Output, text: &str) {
    let said = stdout(output);
    assert!(said.contains(text), "{said}");
}

/// A program's standard output read as one JSON object per line.
pub fn json_lines(output: &std::process::Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

/// The ids of `envelopes`.
pub fn ids(envelopes: &[Value]) -> std::collections::BTreeSet<String> {
    envelopes
        .iter()
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect()
}

/// Counts the events with `status`.
pub fn count_status(events: &[(String, Value)], status: &str) -> usize {
    events.iter().filter(|(_, e)| e["status"] == status).count()
}

/// A realistic envelope: a w.c.s.-shaped démarche of `commune` on `form`.
pub fn envelope(prefix: &str, commune: &str, form: &str, number: u32) -> Value {
    json!({
        "id": format!("{prefix}:{form}:{number}"),
        "commune": commune,
        "form": form,
        "submitted_at": "2026-11-28T10:12:00+01:00",
        "formdata": {
            "id": number,
            "display_id": format!("12-{number}"),
            "display_name": format!("Demande n°12-{number}"),
            "receipt_time": "2026-11-28T10:12:00+01:00",
            "url": format!("https://demarches.example.invalid/{form}/{number}/"),
            "criticality_level": 0,
            "user": {"id": 7, "name": "Camille Durand", "email": "camille.durand@example.invalid", "NameID": ["a1b2c3"]},
            "fields": {
                "nom": "Durand", "prenoms": "Camille Marie",
                "nature_document": "Copie intégrale", "nature_document_raw": "CPI",
                "nature_document_structured": {"id": "CPI", "text": "Copie intégrale"},
                "date_naissance": "1990-04-12", "lieu_naissance": "Clisson",
                "adresse": "3 rue de la Garenne", "code_postal": "44190", "ville": "Clisson",
                "nombre_exemplaires": 1
            },
            "workflow": {"status": {"id": "1", "name": "Nouveau"}, "fields": {}},
            "submission": {"channel": "web", "backoffice": false}
        }
    })
}
