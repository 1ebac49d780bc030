//! A simulator of the import daemon of a Cityweb-family état-civil software.
//!
//! Like the real software it watches its import directory (and its sub-directories
//! `NAI/`, `MAR/`…), takes each new file, validates it against the Cityweb schema with
//! `xmllint --noout --nonet --schema …/etatcivil.xsd`, moves it to `done/` or `error/`
//! (keeping its relative path) and appends a line to its log, `import.log` (Unix time,
//! outcome, file, and xmllint's complaint):
//!
//! ```text
//! 1764394800.123 done NAI/clisson-sevre-maine_demande-acte-naissance_142-3f2a….xml
//! 1764394800.456 error NAI/x.xml: …/x.xml:3: element natureDocument: Schemas validity error …
//! ```
//!
//! Hidden files and `*.tmp` files are skipped, as the real software skips files that are
//! still being written: a connector that writes under a hidden temporary name and then
//! renames is never read half-written.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::watch::{files_under as visible_files_under, Watcher};

/// The Cityweb schema: `CITYWEB_XSD`, else the copy vendored in the repository
/// (`schemas/cityweb/etatcivil.xsd`).
pub fn cityweb_schema() -> PathBuf {
    if let Ok(path) = std::env::var("CITYWEB_XSD") {
        return PathBuf::from(path);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    root.join("schemas/cityweb/etatcivil.xsd")
}

/// One file the simulator imported or rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Its path relative to the import directory (`NAI/….xml`).
    pub file: String,
    /// Whether the schema accepted it (moved to `done/`) or not (`error/`).
    pub accepted: bool,
    /// xmllint's complaint, for a rejected file.
    pub error: String,
}

/// A running import daemon; it stops when dropped.
pub struct CitywebSim {
    /// The directory it imports from.
    pub import: PathBuf,
    /// Where accepted files go.
    pub done: PathBuf,
    /// Where rejected files go.
    pub error: PathBuf,
    /// Its log file.
    pub log_file: PathBuf,
    log: Arc<Mutex<Vec<Imported>>>,
    _watcher: Watcher,
}

impl CitywebSim {
    /// Watches `import` (created if missing), with `done/`, `error/` and `import.log` in
    /// `out`; polls every 100 ms.
    pub fn start(import: &Path, out: &Path) -> Self {
        let schema = cityweb_schema();
        assert!(
            schema.is_file(),
            "the Cityweb schema is not at {} (set CITYWEB_XSD)",
            schema.display()
        );
        let version = Command::new("xmllint").arg("--version").output();
        assert!(
            version.is_ok(),
            "xmllint is not installed: apt-get install -y libxml2-utils (.ci/run installs it)"
        );
        std::fs::create_dir_all(import).expect("the import directory");
        let done = out.join("done");
        let error = out.join("error");
        std::fs::create_dir_all(&done).expect("done/");
        std::fs::create_dir_all(&error).expect("error/");
        let log_file = out.join("import.log");
        let log = Arc::new(Mutex::new(Vec::new()));
        let daemon = Daemon {
            import: import.to_path_buf(),
            done: done.clone(),
            error: error.clone(),
            log_file: log_file.clone(),
            schema,
            log: log.clone(),
        };
        Self {
            import: import.to_path_buf(),
            done,
            error,
            log_file,
            log,
            _watcher: Watcher::spawn(move || daemon.sweep()),
        }
    }

    /// What it imported so far, in order.
    pub fn imported(&self) -> Vec<Imported> {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// Waits until it handled `count` files, at most `timeout`; returns what it handled.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Imported> {
        let deadline = Instant::now() + timeout;
        loop {
            let imported = self.imported();
            if imported.len() >= count || Instant::now() >= deadline {
                return imported;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The files in `done/`, relative, sorted.
    pub fn done_files(&self) -> Vec<String> {
        files_under(&self.done)
    }

    /// The files in `error/`, relative, sorted.
    pub fn error_files(&self) -> Vec<String> {
        files_under(&self.error)
    }
}

struct Daemon {
    import: PathBuf,
    done: PathBuf,
    error: PathBuf,
    log_file: PathBuf,
    schema: PathBuf,
    log: Arc<Mutex<Vec<Imported>>>,
}

impl Daemon {
    fn sweep(&self) {
        for relative in files_under(&self.import) {
            let path = self.import.join(&relative);
            let output = Command::new("xmllint")
                .args(["--noout", "--nonet", "--schema"])
                .arg(&self.schema)
                .arg(&path)
                .output();
            let (accepted, error) = match output {
                Ok(output) if output.status.success() => (true, String::new()),
                Ok(output) => (
                    false,
                    String::from_utf8_lossy(&output.stderr)
                        .lines()
                        .filter(|line| !line.ends_with("fails to validate"))
                        .collect::<Vec<_>>()
                        .join(" | "),
                ),
                Err(error) => (false, format!("cannot run xmllint: {error}")),
            };
            let target = if accepted { &self.done } else { &self.error }.join(&relative);
            if let Some(parent) = target.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            if std::fs::rename(&path, &target).is_err() {
                continue;
            }
            let line = format!(
                "{} {} {relative}{}\n",
                now(),
                if accepted { "done" } else { "error" },
                if accepted {
                    String::new()
                } else {
                    format!(": {error}")
                }
            );
            use std::io::Write as _;
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log_file)
            {
                let _ = file.write_all(line.as_bytes());
            }
            if let Ok(mut log) = self.log.lock() {
                log.push(Imported {
                    file: relative,
                    accepted,
                    error,
                });
            }
        }
    }
}

/// Seconds since the epoch with milliseconds (no date crate in this package).
fn now() -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}", since.as_secs(), since.subsec_millis())
}

/// The visible regular files under `root`, relative with `/`, sorted.
fn files_under(root: &Path) -> Vec<String> {
    visible_files_under(root, |_| true)
}
