//! Golden tests of the shipped mappings (`mappings/`), data-driven from `tests/fixtures/`.
//!
//! Each directory `tests/fixtures/<domain>/` holds w.c.s.-shaped envelopes `<name>.json`
//! mapped with the domain's mapping (`mappings/<domain>/`, which holds exactly one `.toml`
//! file, unless the directory has a `mapping.txt` naming the file relative to the
//! repository root). Next to each envelope, exactly one of:
//!
//! - `<name>.expected.json`: the document the mapping must produce, exactly; when the
//!   mapping hands attachments over, `<name>.expected-attachments.json` lists them
//!   (`field`, `filename`, `content_type`, `bytes`);
//! - `<name>.expected-error.txt`: the error the mapping must give, exactly.
//!
//! `AIGUILLAGE_BLESS=1 cargo test -p aiguillage-gateway --test mappings` rewrites these
//! files from what the mappings produce now (review the diff before committing!). It is
//! refused when the `CI` environment variable is set: CI only ever compares.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use aiguillage_bus::envelope::Envelope;
use aiguillage_gateway::mapping::{Mapped, Mapping};
use serde_json::Value;

/// The repository root (the workspace).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the gateway crate sits in the workspace")
        .to_path_buf()
}

/// How messages name a file: relative to the repository root, with `/`, as a route's
/// `mapping = "mappings/…"` names it.
fn display(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn bless() -> bool {
    let wanted = std::env::var("AIGUILLAGE_BLESS").is_ok_and(|v| v == "1");
    if wanted && std::env::var_os("CI").is_some() {
        panic!("AIGUILLAGE_BLESS=1 is refused under CI: golden files are only compared there");
    }
    wanted
}

/// Every file under `dir` (recursively) whose name ends with `suffix`, sorted.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(suffix))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_shipped_mapping_loads() {
    let mappings = files(&root().join("mappings"), ".toml");
    assert!(!mappings.is_empty(), "no mapping under mappings/");
    let mut failures = Vec::new();
    for path in &mappings {
        match Mapping::load(path, &display(path)) {
            Ok(mapping) => {
                if mapping.description().is_none_or(|d| d.trim().is_empty()) {
                    failures.push(format!(
                        "{}: no [mapping] description: say which forms it serves",
                        display(path)
                    ));
                }
            }
            Err(error) => failures.push(error.to_string()),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The mapping that a fixture directory's envelopes go through.
fn mapping_for(domain_dir: &Path) -> Result<PathBuf, String> {
    let domain = domain_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let named = domain_dir.join("mapping.txt");
    if named.is_file() {
        let text = std::fs::read_to_string(&named).map_err(|e| e.to_string())?;
        return Ok(root().join(text.trim()));
    }
    let dir = root().join("mappings").join(domain);
    if !dir.is_dir() {
        return Err(format!(
            "{}: no directory mappings/{domain}/ (name the mapping in {}/mapping.txt)",
            display(domain_dir),
            display(domain_dir)
        ));
    }
    match files(&dir, ".toml").as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "{}: mappings/{domain}/ holds no mapping file",
            display(domain_dir)
        )),
        many => Err(format!(
            "{}: mappings/{domain}/ holds {} mapping files: name the one to use in {}/mapping.txt",
            display(domain_dir),
            many.len(),
            display(domain_dir)
        )),
    }
}

/// What the golden attachment file records of each attachment (never its content).
fn attachments_summary(mapped: &Mapped) -> Value {
    Value::Array(
        mapped
            .attachments
            .iter()
            .map(|a| {
                serde_json::json!({
                    "field": a.field,
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "bytes": a.content.len(),
                })
            })
            .collect(),
    )
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON");
    text.push('\n');
    text
}

/// A line diff (longest common subsequence), `-` expected and `+` actual, with 3 lines
/// of context around each change.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let mut out = String::new();
    let mut last_shown: Option<usize> = None;
    for (k, (sign, line)) in ops.iter().enumerate() {
        let near = changed.iter().any(|&c| c.abs_diff(k) <= 3);
        if !near {
            continue;
        }
        if last_shown.is_some_and(|l| l + 1 != k) {
            out.push_str("   …\n");
        }
        let _ = writeln!(out, " {sign} {line}");
        last_shown = Some(k);
    }
    out
}

/// Checks (or, when blessing, writes) one golden file; returns a failure message.
fn golden(path: &Path, actual: &str, bless: bool) -> Option<String> {
    if bless {
        std::fs::write(path, actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return None;
    }
    match std::fs::read_to_string(path) {
        Ok(expected) if expected == actual => None,
        Ok(expected) => Some(format!(
            "{} differs (- expected, + actual):\n{}",
            display(path),
            diff(&expected, actual)
        )),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Some(format!(
            "{} is missing (AIGUILLAGE_BLESS=1 writes it; review it before committing); the mapping gives:\n{actual}",
            display(path)
        )),
        Err(error) => Some(format!("{}: cannot read: {error}", display(path))),
    }
}

/// Every `pieces[].code` of a document is the name of an attachment, and the other way
/// round: connectors pair them by that name.
fn pieces_match_attachments(document: &Value, mapped: &Mapped) -> Option<String> {
    let pieces = document.get("pieces")?.as_array()?;
    let mut codes: Vec<&str> = pieces
        .iter()
        .filter_map(|p| p.get("code").and_then(Value::as_str))
        .collect();
    let mut names: Vec<&str> = mapped
        .attachments
        .iter()
        .map(|a| a.field.as_str())
        .collect();
    codes.sort_unstable();
    names.sort_unstable();
    (codes != names)
        .then(|| format!("pieces[].code {codes:?} do not match the attachments' names {names:?}"))
}

fn check_fixture(mapping: &Mapping, fixture: &Path, bless: bool) -> Vec<String> {
    let name = fixture
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".json"))
        .expect("a .json fixture");
    let dir = fixture.parent().expect("in a directory");
    let expected_json = dir.join(format!("{name}.expected.json"));
    let expected_attachments = dir.join(format!("{name}.expected-attachments.json"));
    let expected_error = dir.join(format!("{name}.expected-error.txt"));
    let here = display(fixture);

    let body = std::fs::read(fixture).unwrap_or_else(|e| panic!("{here}: {e}"));
    let envelope = match Envelope::parse(&body, 16 << 20) {
        Ok(envelope) => envelope,
        Err(rejection) => {
            return vec![format!("{here}: not a valid envelope: {}", rejection.error)]
        }
    };
    let mut failures = Vec::new();
    match mapping.apply(&envelope) {
        Ok(mapped) => {
            if !bless && expected_error.exists() {
                failures.push(format!(
                    "{here}: mapped without error, but {} expects one",
                    display(&expected_error)
                ));
            }
            if bless {
                let _ = std::fs::remove_file(&expected_error);
            }
            failures.extend(golden(&expected_json, &pretty(&mapped.document), bless));
            if mapped.attachments.is_empty() {
                if bless {
                    let _ = std::fs::remove_file(&expected_attachments);
                } else if expected_attachments.exists() {
                    failures.push(format!(
                        "{here}: no attachment handed over, but {} lists some",
                        display(&expected_attachments)
                    ));
                }
            } else {
                failures.extend(golden(
                    &expected_attachments,
                    &pretty(&attachments_summary(&mapped)),
                    bless,
                ));
            }
            if let Some(problem) = pieces_match_attachments(&mapped.document, &mapped) {
                failures.push(format!("{here}: {problem}"));
            }
        }
        Err(error) => {
            if !bless && expected_json.exists() {
                failures.push(format!(
                    "{here}: expected the document in {}, got the error: {error}",
                    display(&expected_json)
                ));
            } else {
                if bless {
                    let _ = std::fs::remove_file(&expected_json);
                    let _ = std::fs::remove_file(&expected_attachments);
                }
                failures.extend(golden(&expected_error, &format!("{error}\n"), bless));
            }
        }
    }
    failures
}

#[test]
fn each_fixture_maps_to_its_golden_output() {
    let bless = bless();
    let fixtures_dir = root().join("tests").join("fixtures");
    let domains = subdirectories(&fixtures_dir);
    assert!(
        !domains.is_empty(),
        "no fixture directory under tests/fixtures/"
    );
    let mut failures = Vec::new();
    let mut count = BTreeMap::new();
    for domain in &domains {
        let fixtures: Vec<PathBuf> = files(domain, ".json")
            .into_iter()
            .filter(|p| {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                !n.ends_with(".expected.json") && !n.ends_with(".expected-attachments.json")
            })
            .collect();
        if fixtures.is_empty() {
            failures.push(format!(
                "{}: no fixture (<name>.json) in this directory",
                display(domain)
            ));
        }
        let mapping_path = match mapping_for(domain) {
            Ok(path) => path,
            Err(message) => {
                failures.push(message);
                continue;
            }
        };
        let mapping = match Mapping::load(&mapping_path, &display(&mapping_path)) {
            Ok(mapping) => mapping,
            Err(error) => {
                failures.push(error.to_string());
                continue;
            }
        };
        for fixture in &fixtures {
            failures.extend(check_fixture(&mapping, fixture, bless));
        }
        // A golden file whose fixture is gone is stale.
        for suffix in [
            ".expected.json",
            ".expected-attachments.json",
            ".expected-error.txt",
        ] {
            for golden in files(domain, suffix) {
                let n = golden.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let stem = n.strip_suffix(suffix).unwrap_or(n);
                if !golden.with_file_name(format!("{stem}.json")).exists() {
                    failures.push(format!(
                        "{}: no fixture {stem}.json for this golden file",
                        display(&golden)
                    ));
                }
            }
        }
        count.insert(display(domain), fixtures.len());
    }
    assert!(
        failures.is_empty(),
        "{} problem(s) in the mapping golden tests (AIGUILLAGE_BLESS=1 rewrites the golden files; review the diff):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    eprintln!("fixtures checked: {count:?}");
}

#[test]
fn the_diff_shows_what_changed() {
    let expected = "{\n  \"a\": 1,\n  \"b\": 2,\n  \"c\": 3\n}\n";
    let actual = "{\n  \"a\": 1,\n  \"b\": 20,\n  \"c\": 3\n}\n";
    let shown = diff(expected, actual);
    assert!(shown.contains(" -   \"b\": 2,"), "{shown}");
    assert!(shown.contains(" +   \"b\": 20,"), "{shown}");
    assert!(diff(expected, expected).is_empty());
}
