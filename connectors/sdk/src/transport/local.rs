//! A local directory (or a network share mounted on the gateway's machine): files are
//! written under a hidden temporary name, synced, then published with a hard link, which
//! never replaces an existing file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use crate::{async_trait, ConnectorError};

use super::{random_suffix, temp_name, Published, Transport};
use crate::name::check_relative;

/// Tries at finding a free temporary name before giving up; a clash needs two equal
/// random 64-bit values in the same directory, so more than one retry means a bug.
const TEMP_NAME_TRIES: u32 = 8;

/// Prefix of the files the health probe creates (hidden, like every temporary file).
const PROBE_NAME: &str = "aiguillage-probe";

/// The hidden directory where a [`LocalDirectory`] with a journal records what it published.
pub const JOURNAL_DIRECTORY: &str = ".aiguillage-published";

/// A local directory that files are dropped into.
#[derive(Debug, Clone)]
pub struct LocalDirectory {
    directory: PathBuf,
    journal: bool,
}

impl LocalDirectory {
    /// The directory at `directory` (already resolved), checked: it exists, files and hard
    /// links can be created in it.
    ///
    /// # Errors
    ///
    /// A [`ProbeError`] saying what is wrong and how to fix it.
    pub fn open(directory: PathBuf) -> Result<Self, ProbeError> {
        probe(&directory)?;
        Ok(Self {
            directory,
            journal: false,
        })
    }

    /// Keeps a journal of the files published, so that a file the software has already
    /// taken away (imported, then moved or deleted) is not written again when the same
    /// démarche is redelivered (after a crash between the write and the recording of its
    /// outcome). For each file `NAI/x.xml` it keeps the SHA-256 of its bytes in
    /// `.aiguillage-published/NAI/x.xml.sha256` (hidden, a few dozen bytes per file, never
    /// removed by the gateway: the operator may prune entries older than the store's
    /// memory of outcomes).
    #[must_use]
    pub fn with_journal(mut self) -> Self {
        self.journal = true;
        self
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.directory
    }
}

#[async_trait]
impl Transport for LocalDirectory {
    async fn publish(&self, relative: &str, bytes: Vec<u8>) -> Result<Published, ConnectorError> {
        check_relative(relative).map_err(|error| ConnectorError::permanent(error.to_string()))?;
        let directory = self.directory.clone();
        let name = relative.to_owned();
        let journal = self.journal;
        tokio::task::spawn_blocking(move || publish(&directory, &name, &bytes, journal))
            .await
            .map_err(|error| {
                ConnectorError::transient(format!(
                    "l'écriture de {} n'a pas abouti : {error}",
                    self.directory.join(relative).display()
                ))
                .with_source(error)
            })?
    }

    async fn publish_file(&self, relative: &str, path: &Path) -> Result<Published, ConnectorError> {
        check_relative(relative).map_err(|error| ConnectorError::permanent(error.to_string()))?;
        let directory = self.directory.clone();
        let name = relative.to_owned();
        let source = path.to_path_buf();
        let journal = self.journal;
        tokio::task::spawn_blocking(move || publish_file(&directory, &name, &source, journal))
            .await
            .map_err(|error| {
                ConnectorError::transient(format!(
                    "l'écriture de {} n'a pas abouti : {error}",
                    self.directory.join(relative).display()
                ))
                .with_source(error)
            })?
    }

    async fn probe(&self) -> Result<(), ConnectorError> {
        let directory = self.directory.clone();
        tokio::task::spawn_blocking(move || probe(&directory))
            .await
            .map_err(|error| {
                ConnectorError::transient(format!(
                    "la vérification de {} n'a pas abouti : {error}",
                    self.directory.display()
                ))
                .with_source(error)
            })?
            .map_err(|error| ConnectorError::transient(error.to_string()).with_source(error))
    }

    fn location(&self) -> String {
        self.directory.display().to_string()
    }
}

/// Writes `bytes` to `directory/relative` without ever replacing an existing file.
///
/// `relative` has been checked by [`crate::name::check_relative`].
pub(crate) fn publish(
    directory: &Path,
    relative: &str,
    bytes: &[u8],
    journal: bool,
) -> Result<Published, ConnectorError> {
    let (parent, file_name) = parent_of(directory, relative)?;
    let target = parent.join(file_name);

    // A redelivery usually finds its file: answer without writing anything.
    if existing(&target, bytes)? == Existing::Same {
        // The earlier attempt may have stopped before syncing the directory.
        sync_directory(&parent)?;
        if journal {
            record(directory, relative, bytes)?;
        }
        return Ok(Published::AlreadyThere);
    }
    // Or the software took it away already.
    if journal {
        if let Some(published) =
            journal_verdict(directory, relative, &target, || hex_digest(bytes))?
        {
            return Ok(published);
        }
    }

    let mut temp = TempFile::create(&parent, file_name)
        .map_err(|error| io_failure("créer un fichier temporaire dans", &parent, error))?;
    temp.write_and_sync(bytes)
        .map_err(|error| io_failure("écrire", &temp.path, error))?;

    // `hard_link` fails when the name exists, where `rename` would replace it.
    let outcome = match fs::hard_link(&temp.path, &target) {
        Ok(()) => Published::Written,
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            // Another delivery of the same name published first.
            match existing(&target, bytes)? {
                Existing::Same => Published::AlreadyThere,
                Existing::Absent => {
                    return Err(ConnectorError::transient(format!(
                        "{} est apparu puis a disparu pendant sa publication",
                        target.display()
                    )))
                }
            }
        }
        Err(error) => return Err(io_failure("publier", &target, error)),
    };
    temp.remove();
    sync_directory(&parent)?;
    if journal {
        record(directory, relative, bytes)?;
    }
    Ok(outcome)
}

/// Publishes the content of the file `source` as `directory/relative`, as [`publish`]
/// does, reading and writing it in chunks.
///
/// `relative` has been checked by [`crate::name::check_relative`].
pub(crate) fn publish_file(
    directory: &Path,
    relative: &str,
    source: &Path,
    journal: bool,
) -> Result<Published, ConnectorError> {
    // What is to be published, by its size and digest: one read of the source, so that a
    // redelivery writes nothing.
    let (length, digest) = file_digest(source)
        .map_err(|error| io_failure("lire le fichier à publier", source, error))?;
    let (parent, file_name) = parent_of(directory, relative)?;
    let target = parent.join(file_name);

    if existing_digest(&target, length, &digest)? == Existing::Same {
        sync_directory(&parent)?;
        if journal {
            record_digest(directory, relative, &digest)?;
        }
        return Ok(Published::AlreadyThere);
    }
    if journal {
        if let Some(published) = journal_verdict(directory, relative, &target, || digest.clone())? {
            return Ok(published);
        }
    }

    let mut temp = TempFile::create(&parent, file_name)
        .map_err(|error| io_failure("créer un fichier temporaire dans", &parent, error))?;
    let copied = temp
        .copy_and_sync(source)
        .map_err(|error| io_failure("copier le fichier à publier dans", &temp.path, error))?;
    if copied != (length, digest.clone()) {
        return Err(ConnectorError::transient(format!(
            "{} a changé pendant sa publication sous le nom {} : rien n'a été publié",
            source.display(),
            target.display()
        )));
    }

    let outcome = match fs::hard_link(&temp.path, &target) {
        Ok(()) => Published::Written,
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            match existing_digest(&target, length, &digest)? {
                Existing::Same => Published::AlreadyThere,
                Existing::Absent => {
                    return Err(ConnectorError::transient(format!(
                        "{} est apparu puis a disparu pendant sa publication",
                        target.display()
                    )))
                }
            }
        }
        Err(error) => return Err(io_failure("publier", &target, error)),
    };
    temp.remove();
    sync_directory(&parent)?;
    if journal {
        record_digest(directory, relative, &digest)?;
    }
    Ok(outcome)
}

/// The size and SHA-256 (hex) of the file at `path`, read in chunks.
fn file_digest(path: &Path) -> io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    digest_reader(&mut file)
}

/// The size and SHA-256 (hex) of what `reader` gives, read in chunks.
fn digest_reader(reader: &mut impl Read) -> io::Result<(u64, String)> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; super::CHUNK];
    let mut length = 0u64;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&buffer[..read]);
        length += read as u64;
    }
    Ok((length, hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Compares the file at `target`, if any, with content of `length` bytes and SHA-256
/// `digest`, reading it in chunks.
///
/// # Errors
///
/// A permanent failure when something else is there: it is never overwritten.
fn existing_digest(target: &Path, length: u64, digest: &str) -> Result<Existing, ConnectorError> {
    let metadata = match fs::symlink_metadata(target) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Existing::Absent),
        Err(error) => return Err(io_failure("examiner", target, error)),
    };
    if !metadata.is_file() {
        return Err(ConnectorError::permanent(format!(
            "{} existe déjà et n'est pas un fichier ordinaire : il ne sera pas remplacé",
            target.display()
        )));
    }
    let conflict = || {
        ConnectorError::permanent(format!(
            "le fichier {} existe déjà avec un autre contenu : il ne sera pas remplacé",
            target.display()
        ))
    };
    if metadata.len() != length {
        return Err(conflict());
    }
    match file_digest(target) {
        Ok((_, found)) if found == digest => Ok(Existing::Same),
        Ok(_) => Err(conflict()),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(Existing::Absent),
        Err(error) => Err(io_failure("lire", target, error)),
    }
}

/// The SHA-256 of `bytes` in hex, as journal entries hold it.
pub(crate) fn hex_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

fn journal_entry(directory: &Path, relative: &str) -> PathBuf {
    directory
        .join(JOURNAL_DIRECTORY)
        .join(format!("{relative}.sha256"))
}

/// Creates the missing directories of `relative` under `directory`; returns the file's
/// parent directory and name.
fn parent_of<'r>(
    directory: &Path,
    relative: &'r str,
) -> Result<(PathBuf, &'r str), ConnectorError> {
    let mut components: Vec<&str> = relative.split('/').collect();
    let Some(file_name) = components.pop() else {
        return Err(ConnectorError::permanent("nom de fichier vide refusé"));
    };
    let mut parent = directory.to_path_buf();
    for component in components {
        parent.push(component);
        ensure_directory(&parent)?;
    }
    Ok((parent, file_name))
}

/// What the journal says of `relative`, to be published as `target` with the SHA-256
/// `digest`: published already (`Some`), or not recorded (`None`).
///
/// # Errors
///
/// A permanent failure when other content was published under that name.
fn journal_verdict(
    directory: &Path,
    relative: &str,
    target: &Path,
    digest: impl FnOnce() -> String,
) -> Result<Option<Published>, ConnectorError> {
    match recorded(directory, relative)? {
        Some(recorded) if recorded == digest() => Ok(Some(Published::AlreadyThere)),
        Some(_) => Err(ConnectorError::permanent(format!(
            "un fichier au contenu différent a déjà été publié sous le nom {} (enregistré dans {}) : un autre ne sera pas publié",
            target.display(),
            directory.join(JOURNAL_DIRECTORY).display()
        ))),
        None => Ok(None),
    }
}

/// The digest recorded for `relative`, if any.
fn recorded(directory: &Path, relative: &str) -> Result<Option<String>, ConnectorError> {
    let entry = journal_entry(directory, relative);
    match fs::read_to_string(&entry) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io_failure("lire", &entry, error)),
    }
}

/// Records the digest of the file published as `relative` (atomically: a temporary entry
/// renamed over the name, so that a crash never leaves a truncated digest).
fn record(directory: &Path, relative: &str, bytes: &[u8]) -> Result<(), ConnectorError> {
    record_digest(directory, relative, &hex_digest(bytes))
}

/// Records `digest` (SHA-256 in hex) for the file published as `relative`.
fn record_digest(directory: &Path, relative: &str, digest: &str) -> Result<(), ConnectorError> {
    let entry = journal_entry(directory, relative);
    let Some(parent) = entry.parent() else {
        return Ok(());
    };
    fs::create_dir_all(parent).map_err(|error| io_failure("créer le répertoire", parent, error))?;
    let name = entry
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut temp = TempFile::create(parent, &name)
        .map_err(|error| io_failure("créer un fichier temporaire dans", parent, error))?;
    temp.write_and_sync(format!("{digest}\n").as_bytes())
        .map_err(|error| io_failure("écrire", &temp.path, error))?;
    fs::rename(&temp.path, &entry).map_err(|error| io_failure("enregistrer", &entry, error))?;
    temp.file = None;
    sync_directory(parent)
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
                "{} existe et n'est pas un répertoire : le supprimer ou le renommer",
                path.display()
            ))),
            Err(error) => Err(io_failure("examiner", path, error)),
        },
        Err(error) => Err(io_failure("créer le répertoire", path, error)),
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
        Err(error) => return Err(io_failure("examiner", target, error)),
    };
    if !metadata.is_file() {
        return Err(ConnectorError::permanent(format!(
            "{} existe déjà et n'est pas un fichier ordinaire : il ne sera pas remplacé",
            target.display()
        )));
    }
    let conflict = || {
        ConnectorError::permanent(format!(
            "le fichier {} existe déjà avec un autre contenu : il ne sera pas remplacé",
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
        Err(error) => Err(io_failure("lire", target, error)),
    }
}

/// `de <action>`, elided before a vowel (`d'écrire`, `de lire`).
pub(crate) fn infinitive(action: &str) -> String {
    if action.starts_with(['a', 'e', 'é', 'i', 'o', 'u']) {
        format!("d'{action}")
    } else {
        format!("de {action}")
    }
}

/// An I/O failure: transient, since the operator can fix the disk or the permissions and
/// the same document will then go through. `action` is a French infinitive (`écrire`).
pub(crate) fn io_failure(action: &str, path: &Path, error: io::Error) -> ConnectorError {
    let hint = match error.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
            " (libérer de la place ou relever le quota ; la démarche sera réessayée)"
        }
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
            " (donner à l'utilisateur de la passerelle le droit d'écrire ; la démarche sera réessayée)"
        }
        _ => "",
    };
    ConnectorError::transient(format!(
        "impossible {} {} : {error}{hint}",
        infinitive(action),
        path.display()
    ))
    .with_source(error)
}

/// Makes the directory's entries (a new file's name) durable.
fn sync_directory(directory: &Path) -> Result<(), ConnectorError> {
    #[cfg(unix)]
    {
        File::open(directory)
            .and_then(|handle| handle.sync_all())
            .map_err(|error| io_failure("synchroniser le répertoire", directory, error))
    }
    // Elsewhere a directory cannot be opened as a file; its entries are synced with it.
    #[cfg(not(unix))]
    {
        let _ = directory;
        Ok(())
    }
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
            let path = directory.join(temp_name(name));
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
            .ok_or_else(|| io::Error::other("le fichier temporaire est déjà fermé"))?;
        file.write_all(bytes)?;
        file.sync_all()
    }

    /// Copies the file at `source` into this one in chunks, syncs, and returns the size and
    /// SHA-256 of what was copied.
    fn copy_and_sync(&mut self, source: &Path) -> io::Result<(u64, String)> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("le fichier temporaire est déjà fermé"))?;
        let mut reader = Tee {
            inner: File::open(source)?,
            copy: file,
        };
        let digest = digest_reader(&mut reader)?;
        reader.copy.sync_all()?;
        Ok(digest)
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

/// A reader that writes what it reads into `copy`.
struct Tee<'a> {
    inner: File,
    copy: &'a mut File,
}

impl Read for Tee<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.copy.write_all(&buffer[..read])?;
        Ok(read)
    }
}

/// Why a local directory is not usable.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{} n'existe pas : le créer ou corriger le chemin", .0.display())]
    /// The directory does not exist.
    Missing(PathBuf),
    #[error("{} n'est pas un répertoire : donner le chemin d'un répertoire", .0.display())]
    /// The path is not a directory.
    NotADirectory(PathBuf),
    #[error("impossible d'examiner {} : {source}", path.display())]
    /// Its metadata cannot be read.
    Inspect {
        /// The directory.
        path: PathBuf,
        #[source]
        /// The system's error.
        source: io::Error,
    },
    #[error("impossible de créer un fichier dans {} : {source} (donner à l'utilisateur de la passerelle le droit d'y écrire)", path.display())]
    /// Files cannot be created in it.
    NotWritable {
        /// The directory.
        path: PathBuf,
        #[source]
        /// The system's error.
        source: io::Error,
    },
    #[error(
        "impossible de créer un lien physique dans {} : {source} (les fichiers sont publiés par liens \
         physiques : utiliser un système de fichiers qui les permet)",
        path.display()
    )]
    /// Its filesystem has no hard links.
    NoHardLink {
        /// The directory.
        path: PathBuf,
        #[source]
        /// The system's error.
        source: io::Error,
    },
}

/// Checks that `directory` is a directory where files and hard links can be created, by
/// creating and removing hidden probe files.
pub(crate) fn probe(directory: &Path) -> Result<(), ProbeError> {
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
            let error = io_failure("écrire", path, io::Error::from(kind));
            assert!(!error.is_permanent(), "{kind:?}");
            assert!(error
                .to_string()
                .starts_with("impossible d'écrire /srv/drop/x.json : "));
        }
        #[cfg(target_os = "linux")]
        {
            // ENOSPC and EDQUOT as the kernel reports them.
            for code in [28, 122] {
                let error = io_failure("écrire", path, io::Error::from_raw_os_error(code));
                assert!(!error.is_permanent());
                assert!(error.to_string().contains("libérer de la place"), "{error}");
            }
        }
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
