//! A directory that a connector drops files into (an import folder), seen by the kit.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{Answer, Target};

/// Tells whether a file's bytes are a whole document (a truncated file is not).
pub type Complete = fn(&[u8]) -> bool;

/// An import directory as a [`Target`](super::Target): the files of a démarche are the
/// visible files (hidden names, starting with `.`, are the connector's temporary files and
/// journals) under it, at any depth, whose name holds its idempotency key made safe — each
/// character other than `[A-Za-z0-9._-]` replaced by `_`, as the SDK's file-drop transport
/// names files after `{id}`.
///
/// A directory cannot be made to answer "unavailable" or to hang (and permissions do not
/// stop root): [`Target::stage`] accepts only [`Answer::Accept`], and the checks that need
/// more are skipped.
pub struct DirectoryTarget {
    root: PathBuf,
    complete: Complete,
}

impl DirectoryTarget {
    /// The directory at `root`; a file counts as complete when it is not empty.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            complete: |bytes| !bytes.is_empty(),
        }
    }

    /// How to tell a whole file from a truncated one (e.g. "parses as JSON", "ends with
    /// the closing root tag"), for the cancellation check.
    pub fn complete_when(mut self, complete: Complete) -> Self {
        self.complete = complete;
        self
    }

    /// The visible files whose name holds `key` made safe.
    pub fn files(&self, key: &str) -> Vec<PathBuf> {
        let safe: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut found = Vec::new();
        walk(&self.root, &mut |path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // `…_7-<hash>.json` or `…_7.json`, not `…_70.json`.
            if let Some(rest) = name.find(&safe).map(|at| &name[at + safe.len()..]) {
                if rest.starts_with(['-', '.']) || rest.is_empty() {
                    found.push(path.to_owned());
                }
            }
        });
        found
    }
}

/// Calls `visit` for each visible file under `dir`.
fn walk(dir: &Path, visit: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            walk(&path, visit);
        } else {
            visit(&path);
        }
    }
}

#[async_trait]
impl Target for DirectoryTarget {
    async fn effects(&self, key: &str) -> usize {
        self.files(key).len()
    }

    async fn partial(&self, key: &str) -> bool {
        self.files(key)
            .iter()
            .any(|path| !(self.complete)(&std::fs::read(path).unwrap_or_default()))
    }

    async fn stage(&self, answer: Answer) -> bool {
        answer == Answer::Accept
    }
}
