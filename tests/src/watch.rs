//! The "watch an import folder" loop every simulator runs: a thread that sweeps a directory
//! every 100 ms until the simulator is dropped, and the rule by which a file still being
//! written is left alone.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a simulator looks at its import directory.
pub const SWEEP_EVERY: Duration = Duration::from_millis(100);

/// A thread calling a sweep function every [`SWEEP_EVERY`]; it stops (and is joined) when
/// dropped, so a simulator that goes out of scope no longer touches its directory.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts calling `sweep` now and every [`SWEEP_EVERY`] after it returns.
    pub fn spawn(mut sweep: impl FnMut() + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                sweep();
                std::thread::sleep(SWEEP_EVERY);
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether a directory entry is still being written: a connector writes under a hidden
/// temporary name (`.name.xxx.tmp`) and renames when done, so hidden entries and `*.tmp`
/// are never read half-written. (Simulators keep their own state in hidden directories
/// for the same reason: they are not input.)
pub fn being_written(name: &str) -> bool {
    name.starts_with('.') || name.ends_with(".tmp")
}

/// The regular files under `root` that are not [`being_written`] (nor inside a hidden
/// directory) and that `keep` accepts (given the file name), relative with `/`, sorted.
pub fn files_under(root: &Path, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if being_written(&name) {
                continue;
            }
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => stack.push(path),
                Ok(kind) if kind.is_file() && keep(&name) => {
                    if let Ok(relative) = path.strip_prefix(root) {
                        out.push(relative.to_string_lossy().replace('\\', "/"));
                    }
                }
                _ => {}
            }
        }
    }
    out.sort();
    out
}
