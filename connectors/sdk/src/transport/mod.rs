//! Where a connector's files go, shared by every connector that drops files into an import
//! directory (`file-drop`, `etat-civil/cityweb`): a [`LocalDirectory`], or a directory on an
//! SFTP server ([`SftpDirectory`]).
//!
//! Both give the same guarantees: a file appears under its final name complete or not at
//! all (it is written under a hidden temporary name `.<name>.<random>.tmp`, then given its
//! name), and a file is never replaced. Publishing a name that holds the same bytes
//! already succeeds without writing (a redelivery); a name that holds other bytes is a
//! permanent failure. Connectivity, disk and permission problems are transient.

mod local;
mod sftp;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::{async_trait, ConfigError, ConnectorError, Setup};

pub use local::{LocalDirectory, ProbeError, JOURNAL_DIRECTORY};
pub use sftp::{SftpAuth, SftpConfig, SftpDirectory, DEFAULT_SFTP_PORT, DEFAULT_SFTP_TIMEOUT};

/// What publishing a file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// The file was written.
    Written,
    /// A file with the same name and bytes was there: an earlier delivery of the envelope.
    AlreadyThere,
}

/// A directory that files are published into.
#[async_trait]
pub trait Transport: Send + Sync + std::fmt::Debug + 'static {
    /// Publishes `bytes` under `relative` (a plain relative path with `/` separators; missing
    /// sub-directories are created), atomically and never replacing an existing file.
    ///
    /// # Errors
    ///
    /// A permanent [`ConnectorError`] when a different file holds the name (or the name is
    /// unsafe); a transient one for any connectivity, disk or permission problem.
    async fn publish(&self, relative: &str, bytes: Vec<u8>) -> Result<Published, ConnectorError>;

    /// Publishes the content of the local file at `path` under `relative`, with the same
    /// guarantees as [`Transport::publish`] (a temporary name then the final one, never
    /// replacing a file, the same bytes already there: [`Published::AlreadyThere`], other
    /// bytes: a permanent failure, the journal), without holding the file in memory: it
    /// is read and written in chunks, and compared with a file already there by its
    /// SHA-256. For large files (a dossier package of tens of MiB) that a connector builds
    /// in a temporary file.
    ///
    /// The file must not change while it is published: a file that does is a transient
    /// failure (nothing is published).
    ///
    /// There is no default implementation: one reading the file into memory would break
    /// the promise made to the callers.
    ///
    /// # Errors
    ///
    /// As [`Transport::publish`]; a transient [`ConnectorError`] when `path` cannot be
    /// read.
    async fn publish_file(&self, relative: &str, path: &Path) -> Result<Published, ConnectorError>;

    /// Checks that files can be published, without publishing any.
    ///
    /// # Errors
    ///
    /// A transient [`ConnectorError`] saying why the directory is not usable.
    async fn probe(&self) -> Result<(), ConnectorError>;

    /// Where the files go, for messages: a path, or `sftp://user@host:port/path`.
    fn location(&self) -> String;
}

/// The transport of a connector whose configuration has a `directory` key and an optional
/// `sftp` table: the local directory (resolved from the configuration's directory, and
/// checked), or that directory on the SFTP server.
///
/// # Errors
///
/// A [`ConfigError`] on `directory` (empty, missing, not writable) or on an `sftp` key.
pub fn build(
    directory: &Path,
    sftp: Option<SftpConfig>,
    setup: &Setup,
) -> Result<Arc<dyn Transport>, ConfigError> {
    build_with(directory, sftp, setup, false)
}

/// [`build`], with a journal of the files published when `journal` (see
/// [`LocalDirectory::with_journal`] and [`SftpDirectory::with_journal`]).
///
/// # Errors
///
/// As [`build`].
pub fn build_with(
    directory: &Path,
    sftp: Option<SftpConfig>,
    setup: &Setup,
    journal: bool,
) -> Result<Arc<dyn Transport>, ConfigError> {
    if directory.as_os_str().is_empty() {
        return Err(ConfigError::invalid(
            "directory",
            "le chemin est vide : indiquer le répertoire où déposer les fichiers",
        ));
    }
    match sftp {
        None => {
            let directory = setup.resolve(directory);
            let local = LocalDirectory::open(directory)
                .map_err(|error| ConfigError::invalid("directory", error.to_string()))?;
            Ok(Arc::new(if journal { local.with_journal() } else { local }))
        }
        Some(config) => {
            let remote = SftpDirectory::new(config, directory, setup)?;
            Ok(Arc::new(if journal {
                remote.with_journal()
            } else {
                remote
            }))
        }
    }
}

/// Size of the chunks [`Transport::publish_file`] reads and writes.
pub(crate) const CHUNK: usize = 256 * 1024;

/// The hidden temporary name of `name`: `.<name>.<random>.tmp`, which importers that skip
/// hidden or `.tmp` files do not pick up.
pub(crate) fn temp_name(name: &str) -> String {
    format!(".{name}.{}.tmp", random_suffix())
}

/// A random part for temporary names, without a dependency: `RandomState` is seeded from
/// the operating system, and the counter keeps two names of one process apart.
pub(crate) fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}
