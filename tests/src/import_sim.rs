//! The import-folder simulator core that the Cityweb, PES and ADS simulators plug their
//! checks into. They all do the same around their own checks: watch a folder every
//! 100 ms ([`crate::watch`]), claim each finished file (move it out of the way), write an
//! answer under a hidden name then rename it, keep a journal of their answers that a test
//! waits on, and, as programs, print each answer until Ctrl-C. That is written here once;
//! a simulator keeps only its [`Checks`] and its answers' format.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::watch::Watcher;

/// What a simulator does at each sweep of its folders: look at what arrived, check it,
/// answer and record the answers in the journal.
pub trait Checks: Send + 'static {
    /// What the journal records of one answer.
    type Answer: Clone + Send + 'static;

    /// One pass over the simulator's folders.
    fn sweep(&mut self, journal: &Journal<Self::Answer>);
}

/// The answers a simulator gave since it started, and the inputs it set aside without an
/// answer (e.g. a message with no package), shared by its thread and the test.
pub struct Journal<A> {
    inner: Arc<Mutex<Entries<A>>>,
}

struct Entries<A> {
    answers: Vec<A>,
    ignored: Vec<String>,
}

impl<A: Clone> Journal<A> {
    fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Entries {
                answers: Vec::new(),
                ignored: Vec::new(),
            })),
        }
    }

    fn share(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }

    /// Records an answer.
    pub fn answer(&self, answer: A) {
        if let Ok(mut entries) = self.inner.lock() {
            entries.answers.push(answer);
        }
    }

    /// Records an input set aside without an answer.
    pub fn ignore(&self, what: String) {
        if let Ok(mut entries) = self.inner.lock() {
            entries.ignored.push(what);
        }
    }

    fn answers(&self) -> Vec<A> {
        self.inner
            .lock()
            .map(|entries| entries.answers.clone())
            .unwrap_or_default()
    }

    fn ignored(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|entries| entries.ignored.clone())
            .unwrap_or_default()
    }
}

/// A running simulator: its checks sweep on a thread of their own until it is dropped.
pub struct ImportSim<A> {
    journal: Journal<A>,
    _watcher: Watcher,
}

impl<A: Clone + Send + 'static> ImportSim<A> {
    /// Starts sweeping with `checks` now and every 100 ms.
    pub fn start<C: Checks<Answer = A>>(mut checks: C) -> Self {
        let journal = Journal::new();
        let shared = journal.share();
        Self {
            journal,
            _watcher: Watcher::spawn(move || checks.sweep(&shared)),
        }
    }

    /// Every answer given since it started, in order.
    pub fn answers(&self) -> Vec<A> {
        self.journal.answers()
    }

    /// What it set aside without an answer, in order.
    pub fn ignored(&self) -> Vec<String> {
        self.journal.ignored()
    }

    /// Waits until it gave `count` answers, at most `timeout`; returns its answers.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<A> {
        let deadline = Instant::now() + timeout;
        loop {
            let answers = self.answers();
            if answers.len() >= count || Instant::now() >= deadline {
                return answers;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The program's loop: prints each new answer (`report`) and each input set aside
    /// (`ignored`) until interrupted (Ctrl-C).
    pub async fn report_until_interrupted(
        &self,
        report: impl Fn(&A) -> String,
        ignored: impl Fn(&str) -> String,
    ) {
        let (mut answered, mut set_aside) = (0, 0);
        until_interrupted(|| {
            let answers = self.answers();
            for answer in &answers[answered..] {
                eprintln!("{}", report(answer));
            }
            answered = answers.len();
            let aside = self.ignored();
            for what in &aside[set_aside..] {
                eprintln!("{}", ignored(what));
            }
            set_aside = aside.len();
        })
        .await;
    }
}

/// A simulator program's loop: calls `tick` every 200 ms until interrupted (Ctrl-C).
pub async fn until_interrupted(mut tick: impl FnMut()) {
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        tick();
    }
}

/// Writes an answer file atomically: under a hidden temporary name (that no reader
/// takes, see [`crate::watch::being_written`]), then renamed to `dir/name`.
pub fn write_answer(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let target = dir.join(name);
    let temporary = dir.join(format!(".{name}.tmp"));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, &target)?;
    Ok(target)
}

/// Claims a file: moves `path` to `into` (creating its parents); false when it could not
/// (it stays, and is tried again at the next sweep).
pub fn claim(path: &Path, into: &Path) -> bool {
    if let Some(parent) = into.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::rename(path, into).is_ok()
}

/// Seconds since the epoch with milliseconds, for a simulator's log lines.
pub fn now() -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}", since.as_secs(), since.subsec_millis())
}
