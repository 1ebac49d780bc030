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
use std::time::Duration;

use crate::import_sim::{claim, now, Checks, ImportSim, Journal};
use crate::watch::files_under as visible_files_under;
use crate::xmllint::{self, Schema};

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
    core: ImportSim<Imported>,
}

impl CitywebSim {
    /// Watches `import` (created if missing), with `done/`, `error/` and `import.log` in
    /// `out`; polls every 100 ms.
    pub fn start(import: &Path, out: &Path) -> Self {
        let schema = Schema::Cityweb.existing();
        xmllint::require();
        std::fs::create_dir_all(import).expect("the import directory");
        let done = out.join("done");
        let error = out.join("error");
        std::fs::create_dir_all(&done).expect("done/");
        std::fs::create_dir_all(&error).expect("error/");
        let log_file = out.join("import.log");
        let daemon = Daemon {
            import: import.to_path_buf(),
            done: done.clone(),
            error: error.clone(),
            log_file: log_file.clone(),
            schema,
        };
        Self {
            import: import.to_path_buf(),
            done,
            error,
            log_file,
            core: ImportSim::start(daemon),
        }
    }

    /// What it imported so far, in order.
    pub fn imported(&self) -> Vec<Imported> {
        self.core.answers()
    }

    /// Waits until it handled `count` files, at most `timeout`; returns what it handled.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Imported> {
        self.core.wait_for(count, timeout).await
    }

    /// The program's loop: prints what it imports until interrupted.
    pub async fn report_until_interrupted(&self) {
        let report = |file: &Imported| {
            if file.accepted {
                format!("done {}", file.file)
            } else {
                format!("error {}: {}", file.file, file.error)
            }
        };
        self.core
            .report_until_interrupted(report, str::to_owned)
            .await;
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
}

impl Checks for Daemon {
    type Answer = Imported;

    fn sweep(&mut self, journal: &Journal<Imported>) {
        for relative in files_under(&self.import) {
            let path = self.import.join(&relative);
            let (accepted, error) = match xmllint::validate(&self.schema, &[&path]) {
                Ok(()) => (true, String::new()),
                Err(complaint) => (false, xmllint::one_line(&complaint, |_| true)),
            };
            let target = if accepted { &self.done } else { &self.error }.join(&relative);
            if !claim(&path, &target) {
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
            journal.answer(Imported {
                file: relative,
                accepted,
                error,
            });
        }
    }
}

/// The visible regular files under `root`, relative with `/`, sorted.
fn files_under(root: &Path) -> Vec<String> {
    visible_files_under(root, |_| true)
}
