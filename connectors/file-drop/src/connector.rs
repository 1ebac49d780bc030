//! The `file-drop` connector: writes each document as a JSON file, atomically and at most
//! once per name.

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use aiguillage_connector::{
    async_trait, ConfigError, Connector, ConnectorError, Context, Document, Receipt, Setup,
};

use crate::name::{Template, Values};
use crate::FileDropConfig;

/// Tries at finding a free temporary name before giving up; a clash needs two equal
/// random 64-bit values in the same directory, so more than one retry means a bug.
const TEMP_NAME_TRIES: u32 = 8;

/// Prefix of the files the health probe creates (hidden, like every temporary file).
const PROBE_NAME: &str = "aiguillage-probe";

/// Delivers démarches as JSON files into a directory. Built from a [`FileDropConfig`].
///
/// Each file is written under a hidden temporary name, synced, then published under its
/// final name with a hard link, which never replaces an existing file: a consumer never
/// sees a partial file, and a file is never overwritten. Delivering the same envelope
/// again finds the same name with the same bytes and succeeds without writing; a
/// different document under an existing name is refused as a permanent failure.
///
/// If the consumer removes a file before a redelivery of its envelope, the redelivery
/// writes it again: the directory cannot remember what it no longer holds.
#[derive(Debug)]
pub struct FileDropConnector {
    directory: PathBuf,
    template: Template,
    pretty: bool,
}

impl FileDropConnector {
    /// Checks `config` and builds the connector.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on `file_name` for a template that is refused (unknown placeholder,
    /// unbalanced brace, no `{id}`, `/` without `create_subdirectories`, a hidden or too
    /// long name), or on `directory` when it is empty, missing, not a directory, not
    /// writable or on a filesystem without hard links.
    pub fn new(config: FileDropConfig, setup: &Setup) -> Result<Self, ConfigError> {
        let template = Template::parse(&config.file_name, config.create_subdirectories)
            .map_err(|error| ConfigError::invalid("file_name", error.to_string()))?;
        if config.directory.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                "directory",
                "the path is empty: set it to the directory the files are dropped into",
            ));
        }
        let directory = setup.resolve(&config.directory);
        probe(&directory).map_err(|error| ConfigError::invalid("directory", error.to_string()))?;
        Ok(Self {
            directory,
            template,
            pretty: config.pretty,
        })
    }

    /// The directory the files are dropped into, resolved.
    pub fn directory(&self) -> &Path {
        &self.directory
    }
}

#[async_trait]
impl Connector for FileDropConnector {
    async fn deliver(&self, document: &Document, ctx: &Context) -> Result<Receipt, ConnectorError> {
        let values = Values {
            id: ctx.envelope_id(),
            commune: ctx.commune(),
            form: ctx.form(),
            connector: ctx.connector(),
        };
        let relative = self
            .template
            .render(&values)
            .map_err(|error| ConnectorError::permanent(error.to_string()))?;
        let bytes = encode(document, self.pretty)?;

        let directory = self.directory.clone();
        let name = relative.clone();
        let outcome = tokio::task::spawn_blocking(move || publish(&directory, &name, &bytes))
            .await
            .map_err(|error| {
                ConnectorError::transient(format!(
                    "writing {} did not finish: {error}",
                    self.directory.join(&relative).display()
                ))
                .with_source(error)
            })??;

        ctx.span().in_scope(|| match outcome {
            Outcome::Written => tracing::debug!(file = %relative, "file dropped"),
            Outcome::AlreadyThere => {
                tracing::debug!(file = %relative, "file already dropped with the same content");
            }
        });
        Ok(Receipt::with_reference(relative))
    }

    async fn health(&self) -> Result<(), ConnectorError> {
        let directory = self.directory.clone();
        tokio::task::spawn_blocking(move || probe(&directory))
            .await
            .map_err(|error| {
                ConnectorError::transient(format!(
                    "the probe of {} did not finish: {error}",
                    self.directory.display()
                ))
                .with_source(error)
            })?
            .map_err(|error| ConnectorError::transient(error.to_string()).with_source(error))
    }
}

/// The document as written: JSON, UTF-8, ending with a newline.
fn encode(document: &Document, pretty: bool) -> Result<Vec<u8>, ConnectorError> {
    let encoded = if pretty {
        serde_json::to_vec_pretty(document)
    } else {
        serde_json::to_vec(document)
    };
    let mut bytes = encoded.map_err(|error| {
        ConnectorError::permanent("cannot encode the document as JSON").with_source(error)
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// What publishing a file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The file was written.
    Written,
    /// A file with the same name and bytes was there: an earlier delivery of the envelope.
    AlreadyThere,
}

/// Writes `bytes` to `directory/relative` without ever replacing an existing file.
///
/// `relative` has been checked by [`crate::name::check_relative`].
fn publish(directory: &Path, relative: &str, bytes: &[u8]) -> Result<Outcome, ConnectorError> {
    let mut components: Vec<&str> = relative.split('/').collect();
    let Some(file_name) = components.pop() else {
        return Err(ConnectorError::permanent("refusing an empty file name"));
    };
    let mut parent = directory.to_path_buf();
    for component in components {
        parent.push(component);
        ensure_directory(&parent)?;
    }
    let target = parent.join(file_name);

    // A redelivery usually finds its file: answer without writing anything.
    if existing(&target, bytes)? == Existing::Same {
        // The earlier attempt may have stopped before syncing the directory.
        sync_directory(&parent)?;
        return Ok(Outcome::AlreadyThere);
    }

    let mut temp = TempFile::create(&parent, file_name)
        .map_err(|error| io_failure("create a temporary file in", &parent, error))?;
    temp.write_and_sync(bytes)
        .map_err(|error| io_failure("write", &temp.path, error))?;

    // `hard_link` fails when the name exists, where `rename` would replace it.
    let outcome = match fs::hard_link(&temp.path, &target) {
        Ok(()) => Outcome::Written,
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            // Another delivery of the same name published first.
            match existing(&target, bytes)? {
                Existing::Same => Outcome::AlreadyThere,
                Existing::Absent => {
                    return Err(ConnectorError::transient(format!(
                        "{} appeared and vanished while it was being published",
                        target.display()
                    )))
                }
            }
        }
        Err(error) => return Err(io_failure("publish", &target, error)),
    };
    temp.remove();
    sync_directory(&parent)?;
    Ok(outcome)
}

/// Creates `path` if missing; its parent exists.
fn ensure_directory(path: &Path) -> Result<(), ConnectorError> {
    match fs::create_dir(path) {
        Ok(()) => match path.parent() {
            // The new entry must survive a crash like the file that will be in it.
            Some(parent) => sync_directory(parent),
            None => Ok(()),
        },
        Err(error) if error.kind() == ErrorKind::AlreadyExists => match fs::metadata(path) {
            Ok(metadata) if metadata.is_dir() => Ok(()),
            Ok(_) => Err(ConnectorError::transient(format!(
                "{} exists and is not a directory: remove or rename it",
                path.display()
            ))),
            Err(error) => Err(io_failure("inspect", path, error)),
        },
        Err(error) => Err(io_failure("create the directory", path, error)),
    }
}

/// What is found under the final name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    Absent,
    Same,
}

/// Compares the file at `target`, if any, with `bytes`.
///
/// # Errors
///
/// A permanent failure when something else is there: it is never overwritten.
fn existing(target: &Path, bytes: &[u8]) -> Result<Existing, ConnectorError> {
    let metadata = match fs::symlink_metadata(target) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Existing::Absent),
        Err(error) => return Err(io_failure("inspect", target, error)),
    };
    if !metadata.is_file() {
        return Err(ConnectorError::permanent(format!(
            "{} already exists and is not a regular file; refusing to overwrite",
            target.display()
        )));
    }
    let conflict = || {
        ConnectorError::permanent(format!(
            "file {} already exists with different content; refusing to overwrite",
            target.display()
        ))
    };
    if metadata.len() != bytes.len() as u64 {
        return Err(conflict());
    }
    match fs::read(target) {
        Ok(content) if content == bytes => Ok(Existing::Same),
        Ok(_) => Err(conflict()),
        // The consumer took it in the meantime.
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(Existing::Absent),
        Err(error) => Err(io_failure("read", target, error)),
    }
}

/// An I/O failure: transient, since the operator can fix the disk or the permissions and
/// the same document will then go through.
fn io_failure(action: &str, path: &Path, error: io::Error) -> ConnectorError {
    let hint = match error.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
            " (free some space or raise the quota; the démarche will be retried)"
        }
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
            " (give the gateway's user write access; the démarche will be retried)"
        }
        _ => "",
    };
    ConnectorError::transient(format!("cannot {action} {}: {error}{hint}", path.display()))
        .with_source(error)
}

/// Makes the directory's entries (a new file's name) durable.
fn sync_directory(directory: &Path) -> Result<(), ConnectorError> {
    #[cfg(unix)]
    {
        File::open(directory)
            .and_then(|handle| handle.sync_all())
            .map_err(|error| io_failure("sync the directory", directory, error))
    }
    // Elsewhere a directory cannot be opened as a file; its entries are synced with it.
    #[cfg(not(unix))]
    {
        let _ = directory;
        Ok(())
    }
}

/// A random part for temporary names, without a dependency: `RandomState` is seeded from
/// the operating system, and the counter keeps two names of one process apart.
fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// A hidden temporary file, removed when dropped (on every error path) unless already
/// removed.
#[derive(Debug)]
struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    /// Creates `.<name>.<random>.tmp` in `directory`, where consumers that skip hidden or
    /// `.tmp` files will not pick it up.
    fn create(directory: &Path, name: &str) -> io::Result<Self> {
        let mut tries = 0;
        loop {
            let path = directory.join(format!(".{name}.{}.tmp", random_suffix()));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(Self {
                        path,
                        file: Some(file),
                    })
                }
                Err(error)
                    if error.kind() == ErrorKind::AlreadyExists && tries < TEMP_NAME_TRIES =>
                {
                    tries += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn write_and_sync(&mut self, bytes: &[u8]) -> io::Result<()> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("the temporary file is closed"))?;
        file.write_all(bytes)?;
        file.sync_all()
    }

    fn remove(&mut self) {
        self.file = None;
        if let Err(error) = fs::remove_file(&self.path) {
            if error.kind() != ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), %error, "cannot remove a temporary file");
            }
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            self.remove();
        }
    }
}

/// Why the directory is not usable.
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error("{} does not exist: create it or fix the path", .0.display())]
    Missing(PathBuf),
    #[error("{} is not a directory: give the path of a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("cannot inspect {}: {source}", path.display())]
    Inspect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create a file in {}: {source} (give the gateway's user write access to it)", path.display())]
    NotWritable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot create a hard link in {}: {source} (files are published with hard links: \
         use a filesystem that supports them)",
        path.display()
    )]
    NoHardLink {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Checks that `directory` is a directory where files and hard links can be created, by
/// creating and removing hidden probe files.
fn probe(directory: &Path) -> Result<(), ProbeError> {
    let metadata = fs::metadata(directory).map_err(|source| {
        if source.kind() == ErrorKind::NotFound {
            ProbeError::Missing(directory.to_path_buf())
        } else {
            ProbeError::Inspect {
                path: directory.to_path_buf(),
                source,
            }
        }
    })?;
    if !metadata.is_dir() {
        return Err(ProbeError::NotADirectory(directory.to_path_buf()));
    }
    let temp =
        TempFile::create(directory, PROBE_NAME).map_err(|source| ProbeError::NotWritable {
            path: directory.to_path_buf(),
            source,
        })?;
    let link = directory.join(format!(".{PROBE_NAME}.{}.lnk", random_suffix()));
    fs::hard_link(&temp.path, &link).map_err(|source| ProbeError::NoHardLink {
        path: directory.to_path_buf(),
        source,
    })?;
    fs::remove_file(&link).map_err(|source| ProbeError::NotWritable {
        path: directory.to_path_buf(),
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_failures_are_transient_and_name_the_path() {
        let path = Path::new("/srv/drop/x.json");
        for kind in [
            ErrorKind::StorageFull,
            ErrorKind::QuotaExceeded,
            ErrorKind::PermissionDenied,
            ErrorKind::ReadOnlyFilesystem,
            ErrorKind::Other,
        ] {
            let error = io_failure("write", path, io::Error::from(kind));
            assert!(!error.is_permanent(), "{kind:?}");
            assert!(error
                .to_string()
                .starts_with("cannot write /srv/drop/x.json: "));
        }
        #[cfg(target_os = "linux")]
        {
            // ENOSPC and EDQUOT as the kernel reports them.
            for code in [28, 122] {
                let error = io_failure("write", path, io::Error::from_raw_os_error(code));
                assert!(!error.is_permanent());
                assert!(error.to_string().contains("free some space"), "{error}");
            }
        }
    }

    #[test]
    fn documents_end_with_a_newline() {
        let document = serde_json::json!({"a": [1, 2]});
        assert_eq!(encode(&document, false).unwrap(), b"{\"a\":[1,2]}\n");
        let pretty = String::from_utf8(encode(&document, true).unwrap()).unwrap();
        assert!(pretty.starts_with("{\n  \"a\": [\n"), "{pretty}");
        assert!(pretty.ends_with("}\n"));
    }

    #[test]
    fn the_temporary_file_is_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = {
            let mut temp = TempFile::create(dir.path(), "x.json").unwrap();
            temp.write_and_sync(b"partial").unwrap();
            let name = temp
                .path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert!(
                name.starts_with(".x.json.") && name.ends_with(".tmp"),
                "{name}"
            );
            temp.path.clone()
        };
        assert!(!path.exists());
    }
}
