//! A directory on an SFTP server (the import directory of a business software hosted on
//! another machine), with OpenSSH's semantics.
//!
//! Each publication opens its own SSH connection (a few tens of milliseconds on a local
//! network; état-civil volumes are a few dozen files a day), so that a server restart or
//! a dropped connection never leaves a stale session behind. The server's host key is
//! checked against a `known_hosts` file unless the configuration turns checking off.
//!
//! A file is uploaded under a hidden temporary name (`.<name>.<random>.tmp`), synced
//! (`fsync@openssh.com` when the server offers it), then renamed. SFTP's `rename` (protocol
//! version 3, OpenSSH's `sftp-server`) fails when the new name exists: a file is never
//! replaced. Do not point this at a server whose `rename` replaces files.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::secret::{self, ExposeSecret, SecretString};
use crate::{async_trait, ConfigError, ConnectorError, Setup};
use russh::client;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::{OpenFlags, StatusCode};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::{temp_name, Published, Transport};
use crate::name::check_relative;

/// Default of `sftp.port`.
pub const DEFAULT_SFTP_PORT: u16 = 22;

/// Default of `sftp.timeout`: connecting, authenticating and writing one file.
pub const DEFAULT_SFTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The `sftp` table of a connector that drops files: `directory` is then a path on the
/// SFTP server (absolute, or relative to the login directory).
///
/// ```toml
/// [connectors.sftp]
/// host = "cityweb.clisson.local"
/// user = "aiguillage"
/// private_key_file = "/run/credentials/aiguillage/cityweb-key"
/// known_hosts = "/etc/aiguillage/known_hosts"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SftpConfig {
    /// The server's host name or IP address. Required.
    pub host: String,

    /// The server's SSH port; default 22.
    #[serde(default = "default_port")]
    pub port: u16,

    /// The user to log in as. Required.
    pub user: String,

    /// The user's password (a secret: prefer `password_file`). Give a password or a
    /// private key, not both.
    #[serde(default)]
    pub password: Option<SecretString>,

    /// A file holding the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,

    /// A private key file in OpenSSH format (`ssh-keygen -t ed25519`), readable by the
    /// gateway's user; its public key goes into the server's `authorized_keys`.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,

    /// The passphrase of an encrypted private key (a secret: prefer `passphrase_file`).
    #[serde(default)]
    pub passphrase: Option<SecretString>,

    /// A file holding the passphrase of the private key.
    #[serde(default)]
    pub passphrase_file: Option<PathBuf>,

    /// The `known_hosts` file holding the server's host key (OpenSSH format, hashed or
    /// not: `ssh-keyscan -p PORT HOST >> FILE`, then check the fingerprint with the
    /// server's administrator). Default: `~/.ssh/known_hosts` of the gateway's user.
    #[serde(default)]
    pub known_hosts: Option<PathBuf>,

    /// Whether the server's host key is checked; default `true`. `false` accepts any
    /// server that answers at `host`, including an impostor: use it only for a first test
    /// on a trusted network.
    #[serde(default = "default_check_host_key")]
    pub check_host_key: bool,

    /// Longest time for one publication (connect, log in, write, rename); default `30s`.
    /// Past it the delivery is a transient failure, retried later.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_port() -> u16 {
    DEFAULT_SFTP_PORT
}

fn default_check_host_key() -> bool {
    true
}

fn default_timeout() -> Duration {
    DEFAULT_SFTP_TIMEOUT
}

impl SftpConfig {
    /// A configuration for `user@host` with every other key at its default (no
    /// authentication yet: set `password` or `private_key_file`).
    pub fn new(host: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: DEFAULT_SFTP_PORT,
            user: user.into(),
            password: None,
            password_file: None,
            private_key_file: None,
            passphrase: None,
            passphrase_file: None,
            known_hosts: None,
            check_host_key: true,
            timeout: DEFAULT_SFTP_TIMEOUT,
        }
    }
}

/// How the connector logs in.
#[derive(Clone)]
pub enum SftpAuth {
    /// With a password.
    Password(SecretString),
    /// With a private key.
    Key(Arc<PrivateKey>),
}

impl std::fmt::Debug for SftpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password(***)"),
            Self::Key(key) => write!(f, "Key({})", key.algorithm()),
        }
    }
}

/// A directory on an SFTP server.
#[derive(Debug, Clone)]
pub struct SftpDirectory {
    host: String,
    port: u16,
    user: String,
    auth: SftpAuth,
    /// `None` when host keys are not checked.
    known_hosts: Option<PathBuf>,
    timeout: Duration,
    directory: String,
    journal: bool,
}

impl SftpDirectory {
    /// Keeps a journal of the files published on the server, as
    /// [`super::LocalDirectory::with_journal`] does (`.aiguillage-published/` in the
    /// directory).
    #[must_use]
    pub fn with_journal(mut self) -> Self {
        self.journal = true;
        self
    }

    /// Checks `config` and reads its secrets and key; does not connect (so that
    /// `aiguillage check` works away from the server).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on the `sftp.…` key at fault: no host or user, no way or two ways
    /// to log in, an unreadable key or secret file, a missing `known_hosts` file.
    pub fn new(config: SftpConfig, directory: &Path, setup: &Setup) -> Result<Self, ConfigError> {
        if config.host.trim().is_empty() {
            return Err(ConfigError::invalid(
                "sftp.host",
                "l'hôte est vide : indiquer le nom ou l'adresse du serveur SFTP",
            ));
        }
        if config.user.trim().is_empty() {
            return Err(ConfigError::invalid(
                "sftp.user",
                "l'utilisateur est vide : indiquer le compte avec lequel la passerelle se connecte",
            ));
        }
        if config.port == 0 {
            return Err(ConfigError::invalid(
                "sftp.port",
                "le port 0 n'est pas joignable : indiquer le port du serveur SFTP (22 en général)",
            ));
        }
        if config.timeout.is_zero() {
            return Err(ConfigError::invalid(
                "sftp.timeout",
                "le délai doit être supérieur à zéro, par exemple \"30s\"",
            ));
        }
        let Some(directory) = directory.to_str().map(str::to_owned) else {
            return Err(ConfigError::invalid(
                "directory",
                "le chemin n'est pas en UTF-8 valide",
            ));
        };
        let has_password = config.password.is_some() || config.password_file.is_some();
        let auth = match (has_password, &config.private_key_file) {
            (true, Some(_)) => {
                return Err(ConfigError::invalid(
                    "sftp.private_key_file",
                    "indiquer soit un mot de passe (`sftp.password` ou `sftp.password_file`), soit une clé privée, pas les deux",
                ))
            }
            (true, None) => SftpAuth::Password(secret::resolve(
                "sftp.password",
                config.password,
                config.password_file.as_deref(),
                setup,
            )?),
            (false, Some(path)) => {
                let passphrase = if config.passphrase.is_some() || config.passphrase_file.is_some() {
                    Some(secret::resolve(
                        "sftp.passphrase",
                        config.passphrase,
                        config.passphrase_file.as_deref(),
                        setup,
                    )?)
                } else {
                    None
                };
                let path = setup.resolve(path);
                let key = russh::keys::load_secret_key(
                    &path,
                    passphrase.as_ref().map(|p| p.expose_secret()),
                )
                .map_err(|error| {
                    ConfigError::invalid(
                        "sftp.private_key_file",
                        format!(
                            "impossible de lire la clé privée {} : {error} (une clé privée OpenSSH, lisible par l'utilisateur de la passerelle ; régler `sftp.passphrase_file` si elle est chiffrée)",
                            path.display()
                        ),
                    )
                })?;
                SftpAuth::Key(Arc::new(key))
            }
            (false, None) => {
                return Err(ConfigError::missing_secret(
                    "sftp.password",
                    "aucun moyen de se connecter : régler `sftp.private_key_file` (recommandé) ou `sftp.password_file`",
                ))
            }
        };
        let known_hosts = if config.check_host_key {
            let path = match &config.known_hosts {
                Some(path) => setup.resolve(path),
                None => std::env::home_dir()
                    .map(|home| home.join(".ssh/known_hosts"))
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            "sftp.known_hosts",
                            "l'utilisateur de la passerelle n'a pas de répertoire personnel : régler `sftp.known_hosts`",
                        )
                    })?,
            };
            if !path.is_file() {
                return Err(ConfigError::invalid(
                    "sftp.known_hosts",
                    format!(
                        "{} n'existe pas : y enregistrer la clé d'hôte du serveur (`ssh-keyscan -p {} {} >> {}`, puis comparer l'empreinte avec l'administrateur du serveur)",
                        path.display(),
                        config.port,
                        config.host,
                        path.display()
                    ),
                ));
            }
            Some(path)
        } else {
            None
        };
        Ok(Self {
            host: config.host,
            port: config.port,
            user: config.user,
            auth,
            known_hosts,
            timeout: config.timeout,
            directory,
            journal: false,
        })
    }

    fn remote(&self, relative: &str) -> String {
        if self.directory.ends_with('/') {
            format!("{}{relative}", self.directory)
        } else {
            format!("{}/{relative}", self.directory)
        }
    }

    /// Connects, checks the host key, logs in and opens the SFTP subsystem.
    async fn open(&self) -> Result<Connection, ConnectorError> {
        let refused = Arc::new(Mutex::new(None));
        let handler = HostKeyCheck {
            host: self.host.clone(),
            port: self.port,
            known_hosts: self.known_hosts.clone(),
            refused: refused.clone(),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(self.timeout),
            ..client::Config::default()
        });
        let mut session =
            match client::connect(config, (self.host.as_str(), self.port), handler).await {
                Ok(session) => session,
                Err(error) => {
                    let reason = refused.lock().ok().and_then(|mut r| r.take());
                    return Err(match reason {
                        Some(reason) => ConnectorError::transient(format!(
                            "le serveur SSH {} a été refusé : {reason}",
                            self.location()
                        )),
                        None => ConnectorError::transient(format!(
                            "impossible de se connecter au serveur SSH {} : {error}",
                            self.location()
                        ))
                        .with_source(error),
                    });
                }
            };
        let auth = match &self.auth {
            SftpAuth::Password(password) => {
                session
                    .authenticate_password(&self.user, password.expose_secret())
                    .await
            }
            SftpAuth::Key(key) => {
                let hash = session
                    .best_supported_rsa_hash()
                    .await
                    .ok()
                    .flatten()
                    .flatten();
                session
                    .authenticate_publickey(
                        &self.user,
                        PrivateKeyWithHashAlg::new(key.clone(), hash),
                    )
                    .await
            }
        }
        .map_err(|error| self.failure("se connecter à", error))?;
        if !auth.success() {
            return Err(ConnectorError::transient(format!(
                "le serveur SSH {} refuse la connexion de l'utilisateur `{}` (vérifier le mot de passe, ou que la clé publique est dans son authorized_keys)",
                self.location(),
                self.user
            )));
        }
        let channel = session
            .channel_open_session()
            .await
            .map_err(|error| self.failure("ouvrir une session sur", error))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|error| self.failure("démarrer SFTP sur", error))?;
        let sftp = SftpSession::new(channel.into_stream())
            .await
            .map_err(|error| self.failure("démarrer SFTP sur", error))?;
        Ok(Connection { session, sftp })
    }

    fn failure(
        &self,
        action: &str,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> ConnectorError {
        ConnectorError::transient(format!(
            "impossible {} {} : {error}",
            super::local::infinitive(action),
            self.location()
        ))
        .with_source(error)
    }

    async fn publish_on(
        &self,
        sftp: &SftpSession,
        relative: &str,
        bytes: &[u8],
    ) -> Result<Published, ConnectorError> {
        let target = self.remote(relative);
        if self.existing(sftp, &target, bytes).await? == Existing::Same {
            if self.journal {
                self.record(sftp, relative, bytes).await?;
            }
            return Ok(Published::AlreadyThere);
        }
        if self.journal {
            if let Some(published) = self
                .journal_verdict(sftp, relative, &target, || super::local::hex_digest(bytes))
                .await?
            {
                return Ok(published);
            }
        }
        let temp = self.temp_beside(sftp, relative).await?;
        let written = self.write_temp(sftp, &temp, bytes).await;
        if let Err(error) = written {
            let _ = sftp.remove_file(temp.as_str()).await;
            return Err(error);
        }
        let outcome = match sftp.rename(temp.as_str(), target.as_str()).await {
            Ok(()) => Ok(Published::Written),
            Err(error) => {
                let _ = sftp.remove_file(temp.as_str()).await;
                // The name was taken in the meantime (rename never replaces), or the
                // rename failed: what is there now decides.
                match self.existing(sftp, &target, bytes).await? {
                    Existing::Same => Ok(Published::AlreadyThere),
                    Existing::Absent => {
                        Err(self.sftp_failure("renommer l'envoi en", &target, error))
                    }
                }
            }
        }?;
        if self.journal {
            self.record(sftp, relative, bytes).await?;
        }
        Ok(outcome)
    }

    /// [`SftpDirectory::publish_on`] for the content of the local file `source`, read and
    /// written in chunks.
    async fn publish_file_on(
        &self,
        sftp: &SftpSession,
        relative: &str,
        source: &Path,
    ) -> Result<Published, ConnectorError> {
        let target = self.remote(relative);
        let local_failure = |action: &str, error: std::io::Error| {
            ConnectorError::transient(format!(
                "impossible {} {} : {error}",
                super::local::infinitive(action),
                source.display()
            ))
            .with_source(error)
        };
        let file = tokio::fs::File::open(source)
            .await
            .map_err(|error| local_failure("ouvrir le fichier à publier", error))?;
        let (length, digest) = digest_of(file, None)
            .await
            .map_err(|error| local_failure("lire le fichier à publier", error))?;
        if self.existing_digest(sftp, &target, length, &digest).await? == Existing::Same {
            if self.journal {
                self.record_digest(sftp, relative, &digest).await?;
            }
            return Ok(Published::AlreadyThere);
        }
        if self.journal {
            if let Some(published) = self
                .journal_verdict(sftp, relative, &target, || digest.clone())
                .await?
            {
                return Ok(published);
            }
        }
        let temp = self.temp_beside(sftp, relative).await?;
        let written = match self.write_temp_from(sftp, &temp, source).await {
            Ok(written) if written == (length, digest.clone()) => Ok(()),
            Ok(_) => Err(ConnectorError::transient(format!(
                "{} a changé pendant sa publication sous le nom {target} sur {} : rien n'a été publié",
                source.display(),
                self.location()
            ))),
            Err(error) => Err(error),
        };
        if let Err(error) = written {
            let _ = sftp.remove_file(temp.as_str()).await;
            return Err(error);
        }
        let outcome = match sftp.rename(temp.as_str(), target.as_str()).await {
            Ok(()) => Ok(Published::Written),
            Err(error) => {
                let _ = sftp.remove_file(temp.as_str()).await;
                match self.existing_digest(sftp, &target, length, &digest).await? {
                    Existing::Same => Ok(Published::AlreadyThere),
                    Existing::Absent => {
                        Err(self.sftp_failure("renommer l'envoi en", &target, error))
                    }
                }
            }
        }?;
        if self.journal {
            self.record_digest(sftp, relative, &digest).await?;
        }
        Ok(outcome)
    }

    /// Uploads the local file `source` to `temp` in chunks, syncs it, and returns the size
    /// and SHA-256 of what was written.
    async fn write_temp_from(
        &self,
        sftp: &SftpSession,
        temp: &str,
        source: &Path,
    ) -> Result<(u64, String), ConnectorError> {
        let local = tokio::fs::File::open(source).await.map_err(|error| {
            ConnectorError::transient(format!(
                "impossible d'ouvrir le fichier à publier {} : {error}",
                source.display()
            ))
            .with_source(error)
        })?;
        let mut file = sftp
            .open_with_flags(
                temp,
                OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE,
            )
            .await
            .map_err(|error| self.sftp_failure("créer", temp, error))?;
        let written = digest_of(local, Some(&mut file))
            .await
            .map_err(|error| self.io_failure("écrire", temp, error))?;
        file.sync_all()
            .await
            .map_err(|error| self.sftp_failure("synchroniser", temp, error))?;
        file.shutdown()
            .await
            .map_err(|error| self.io_failure("fermer", temp, error))?;
        Ok(written)
    }

    /// Compares the remote file `target`, if any, with content of `length` bytes and
    /// SHA-256 `digest`, reading it in chunks.
    async fn existing_digest(
        &self,
        sftp: &SftpSession,
        target: &str,
        length: u64,
        digest: &str,
    ) -> Result<Existing, ConnectorError> {
        let metadata = match sftp.symlink_metadata(target).await {
            Ok(metadata) => metadata,
            Err(russh_sftp::client::error::Error::Status(status))
                if status.status_code == StatusCode::NoSuchFile =>
            {
                return Ok(Existing::Absent)
            }
            Err(error) => return Err(self.sftp_failure("examiner", target, error)),
        };
        if !metadata.is_regular() {
            return Err(ConnectorError::permanent(format!(
                "{target} existe déjà sur {} et n'est pas un fichier ordinaire : il ne sera pas remplacé",
                self.location()
            )));
        }
        let conflict = || {
            ConnectorError::permanent(format!(
                "le fichier {target} existe déjà sur {} avec un autre contenu : il ne sera pas remplacé",
                self.location()
            ))
        };
        if metadata.size != Some(length) {
            return Err(conflict());
        }
        let file = match sftp.open(target).await {
            Ok(file) => file,
            Err(russh_sftp::client::error::Error::Status(status))
                if status.status_code == StatusCode::NoSuchFile =>
            {
                return Ok(Existing::Absent)
            }
            Err(error) => return Err(self.sftp_failure("lire", target, error)),
        };
        match digest_of(file, None).await {
            Ok((_, found)) if found == digest => Ok(Existing::Same),
            Ok(_) => Err(conflict()),
            Err(error) => Err(self.io_failure("lire", target, error)),
        }
    }

    fn journal_entry(&self, relative: &str) -> String {
        self.remote(&format!("{}/{relative}.sha256", super::JOURNAL_DIRECTORY))
    }

    /// Creates the missing directories of `relative` and returns a hidden temporary name
    /// beside its final one.
    async fn temp_beside(
        &self,
        sftp: &SftpSession,
        relative: &str,
    ) -> Result<String, ConnectorError> {
        let mut components: Vec<&str> = relative.split('/').collect();
        let Some(file_name) = components.pop() else {
            return Err(ConnectorError::permanent("nom de fichier vide refusé"));
        };
        let mut parent = self.directory.trim_end_matches('/').to_owned();
        for component in components {
            parent = format!("{parent}/{component}");
            self.ensure_directory(sftp, &parent).await?;
        }
        Ok(format!("{parent}/{}", temp_name(file_name)))
    }

    /// What the journal says of `relative`, to be published as `target` with the SHA-256
    /// `digest`: published already (`Some`), or not recorded (`None`).
    ///
    /// # Errors
    ///
    /// A permanent failure when other content was published under that name.
    async fn journal_verdict(
        &self,
        sftp: &SftpSession,
        relative: &str,
        target: &str,
        digest: impl FnOnce() -> String,
    ) -> Result<Option<Published>, ConnectorError> {
        match self.recorded(sftp, relative).await? {
            Some(recorded) if recorded == digest() => Ok(Some(Published::AlreadyThere)),
            Some(_) => Err(ConnectorError::permanent(format!(
                "un fichier au contenu différent a déjà été publié sous le nom {target} sur {} (enregistré dans {}) : un autre ne sera pas publié",
                self.location(),
                self.remote(super::JOURNAL_DIRECTORY)
            ))),
            None => Ok(None),
        }
    }

    async fn recorded(
        &self,
        sftp: &SftpSession,
        relative: &str,
    ) -> Result<Option<String>, ConnectorError> {
        let entry = self.journal_entry(relative);
        match sftp.read(entry.as_str()).await {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).trim().to_owned())),
            Err(russh_sftp::client::error::Error::Status(status))
                if status.status_code == StatusCode::NoSuchFile =>
            {
                Ok(None)
            }
            Err(error) => Err(self.sftp_failure("lire", &entry, error)),
        }
    }

    /// Records the digest of `relative` (a temporary entry renamed to its name; an entry
    /// already there is kept).
    async fn record(
        &self,
        sftp: &SftpSession,
        relative: &str,
        bytes: &[u8],
    ) -> Result<(), ConnectorError> {
        self.record_digest(sftp, relative, &super::local::hex_digest(bytes))
            .await
    }

    /// Records `digest` (SHA-256 in hex) for `relative`, as [`SftpDirectory::record`] does.
    async fn record_digest(
        &self,
        sftp: &SftpSession,
        relative: &str,
        digest: &str,
    ) -> Result<(), ConnectorError> {
        if self.recorded(sftp, relative).await?.is_some() {
            return Ok(());
        }
        let entry = self.journal_entry(relative);
        let mut parent = self.directory.trim_end_matches('/').to_owned();
        let journal_relative = format!("{}/{relative}", super::JOURNAL_DIRECTORY);
        let mut components: Vec<&str> = journal_relative.split('/').collect();
        let file_name = components.pop().unwrap_or_default();
        for component in components {
            parent = format!("{parent}/{component}");
            self.ensure_directory(sftp, &parent).await?;
        }
        let temp = format!("{parent}/{}", temp_name(&format!("{file_name}.sha256")));
        let line = format!("{digest}\n");
        if let Err(error) = self.write_temp(sftp, &temp, line.as_bytes()).await {
            let _ = sftp.remove_file(temp.as_str()).await;
            return Err(error);
        }
        if let Err(error) = sftp.rename(temp.as_str(), entry.as_str()).await {
            let _ = sftp.remove_file(temp.as_str()).await;
            if self.recorded(sftp, relative).await?.is_none() {
                return Err(self.sftp_failure("enregistrer", &entry, error));
            }
        }
        Ok(())
    }

    async fn write_temp(
        &self,
        sftp: &SftpSession,
        temp: &str,
        bytes: &[u8],
    ) -> Result<(), ConnectorError> {
        let mut file = sftp
            .open_with_flags(
                temp,
                OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE,
            )
            .await
            .map_err(|error| self.sftp_failure("créer", temp, error))?;
        file.write_all(bytes)
            .await
            .map_err(|error| self.io_failure("écrire", temp, error))?;
        file.sync_all()
            .await
            .map_err(|error| self.sftp_failure("synchroniser", temp, error))?;
        file.shutdown()
            .await
            .map_err(|error| self.io_failure("fermer", temp, error))
    }

    async fn ensure_directory(&self, sftp: &SftpSession, path: &str) -> Result<(), ConnectorError> {
        match sftp.metadata(path).await {
            Ok(metadata) if metadata.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(ConnectorError::transient(format!(
                    "{} existe sur {} et n'est pas un répertoire : le supprimer ou le renommer",
                    path,
                    self.location()
                )))
            }
            Err(_) => {}
        }
        match sftp.create_dir(path).await {
            Ok(()) => Ok(()),
            // Created by a concurrent delivery?
            Err(error) => match sftp.metadata(path).await {
                Ok(metadata) if metadata.is_dir() => Ok(()),
                _ => Err(self.sftp_failure("créer le répertoire", path, error)),
            },
        }
    }

    async fn existing(
        &self,
        sftp: &SftpSession,
        target: &str,
        bytes: &[u8],
    ) -> Result<Existing, ConnectorError> {
        let metadata = match sftp.symlink_metadata(target).await {
            Ok(metadata) => metadata,
            Err(russh_sftp::client::error::Error::Status(status))
                if status.status_code == StatusCode::NoSuchFile =>
            {
                return Ok(Existing::Absent)
            }
            Err(error) => return Err(self.sftp_failure("examiner", target, error)),
        };
        if !metadata.is_regular() {
            return Err(ConnectorError::permanent(format!(
                "{target} existe déjà sur {} et n'est pas un fichier ordinaire : il ne sera pas remplacé",
                self.location()
            )));
        }
        let conflict = || {
            ConnectorError::permanent(format!(
                "le fichier {target} existe déjà sur {} avec un autre contenu : il ne sera pas remplacé",
                self.location()
            ))
        };
        if metadata.size != Some(bytes.len() as u64) {
            return Err(conflict());
        }
        match sftp.read(target).await {
            Ok(content) if content == bytes => Ok(Existing::Same),
            Ok(_) => Err(conflict()),
            Err(russh_sftp::client::error::Error::Status(status))
                if status.status_code == StatusCode::NoSuchFile =>
            {
                Ok(Existing::Absent)
            }
            Err(error) => Err(self.sftp_failure("lire", target, error)),
        }
    }

    fn sftp_failure(
        &self,
        action: &str,
        path: &str,
        error: russh_sftp::client::error::Error,
    ) -> ConnectorError {
        let hint = match &error {
            russh_sftp::client::error::Error::Status(status)
                if status.status_code == StatusCode::PermissionDenied =>
            {
                " (donner à l'utilisateur SFTP le droit d'écrire ; la démarche sera réessayée)"
            }
            _ => "",
        };
        ConnectorError::transient(format!(
            "impossible {} {path} sur {} : {error}{hint}",
            super::local::infinitive(action),
            self.location()
        ))
        .with_source(error)
    }

    fn io_failure(&self, action: &str, path: &str, error: std::io::Error) -> ConnectorError {
        ConnectorError::transient(format!(
            "impossible {} {path} sur {} : {error}",
            super::local::infinitive(action),
            self.location()
        ))
        .with_source(error)
    }

    async fn with_timeout<T>(
        &self,
        what: &str,
        work: impl std::future::Future<Output = Result<T, ConnectorError>>,
    ) -> Result<T, ConnectorError> {
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(ConnectorError::transient(format!(
                "{what} sur {} a pris plus de {:?} (`sftp.timeout`)",
                self.location(),
                self.timeout
            ))),
        }
    }
}

/// The size and SHA-256 (hex) of what `reader` gives, read in chunks, each also written
/// to `copy` when given.
async fn digest_of(
    mut reader: impl tokio::io::AsyncRead + Unpin,
    mut copy: Option<&mut (dyn tokio::io::AsyncWrite + Unpin + Send)>,
) -> std::io::Result<(u64, String)> {
    use sha2::{Digest, Sha256};
    use tokio::io::AsyncReadExt;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; super::CHUNK];
    let mut length = 0u64;
    loop {
        let read = reader.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        if let Some(copy) = copy.as_mut() {
            copy.write_all(&buffer[..read]).await?;
        }
        length += read as u64;
    }
    let digest = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Ok((length, digest))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    Absent,
    Same,
}

/// An open SFTP session and the SSH connection under it.
struct Connection {
    session: client::Handle<HostKeyCheck>,
    sftp: SftpSession,
}

impl Connection {
    async fn close(self) {
        let _ = self.sftp.close().await;
        let _ = self
            .session
            .disconnect(russh::Disconnect::ByApplication, "done", "en")
            .await;
    }
}

#[async_trait]
impl Transport for SftpDirectory {
    async fn publish(&self, relative: &str, bytes: Vec<u8>) -> Result<Published, ConnectorError> {
        check_relative(relative).map_err(|error| ConnectorError::permanent(error.to_string()))?;
        self.with_timeout("la publication d'un fichier", async {
            let connection = self.open().await?;
            let outcome = self.publish_on(&connection.sftp, relative, &bytes).await;
            connection.close().await;
            outcome
        })
        .await
    }

    async fn publish_file(&self, relative: &str, path: &Path) -> Result<Published, ConnectorError> {
        check_relative(relative).map_err(|error| ConnectorError::permanent(error.to_string()))?;
        self.with_timeout("la publication d'un fichier", async {
            let connection = self.open().await?;
            let outcome = self.publish_file_on(&connection.sftp, relative, path).await;
            connection.close().await;
            outcome
        })
        .await
    }

    async fn probe(&self) -> Result<(), ConnectorError> {
        self.with_timeout("la vérification", async {
            let connection = self.open().await?;
            let outcome = match connection.sftp.metadata(self.directory.as_str()).await {
                Ok(metadata) if metadata.is_dir() => Ok(()),
                Ok(_) => Err(ConnectorError::transient(format!(
                    "{} sur {} n'est pas un répertoire : indiquer dans `directory` un répertoire du serveur",
                    self.directory,
                    self.location()
                ))),
                Err(error) => Err(self.sftp_failure("examiner", &self.directory, error)),
            };
            connection.close().await;
            outcome
        })
        .await
    }

    fn location(&self) -> String {
        let slash = if self.directory.starts_with('/') {
            ""
        } else {
            "/"
        };
        format!(
            "sftp://{}@{}:{}{slash}{}",
            self.user, self.host, self.port, self.directory
        )
    }
}

/// The SSH client's handler: accepts the server only if its host key is in `known_hosts`.
struct HostKeyCheck {
    host: String,
    port: u16,
    known_hosts: Option<PathBuf>,
    /// Why the key was refused, for the error message.
    refused: Arc<Mutex<Option<String>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let Some(known_hosts) = &self.known_hosts else {
            return Ok(true);
        };
        let PublicKeyOrCertificate::PublicKey { key, .. } = server_public_key else {
            self.refuse(
                "il a présenté un certificat ; seules les clés d'hôte inscrites dans known_hosts sont acceptées"
                    .into(),
            );
            return Ok(false);
        };
        let fingerprint = key.fingerprint(Default::default());
        match russh::keys::check_known_hosts_path(&self.host, self.port, key, known_hosts) {
            Ok(true) => Ok(true),
            Ok(false) => {
                self.refuse(format!(
                    "sa clé d'hôte ({} {fingerprint}) n'est pas dans {} (l'enregistrer avec `ssh-keyscan -p {} {}` après avoir vérifié l'empreinte avec l'administrateur du serveur)",
                    key.algorithm(),
                    known_hosts.display(),
                    self.port,
                    self.host
                ));
                Ok(false)
            }
            Err(russh::keys::Error::KeyChanged { line }) => {
                self.refuse(format!(
                    "sa clé d'hôte ({} {fingerprint}) n'est pas celle enregistrée à la ligne {line} de {} : quelqu'un se fait peut-être passer pour le serveur, ou sa clé a changé (demander à son administrateur avant de mettre le fichier à jour)",
                    key.algorithm(),
                    known_hosts.display()
                ));
                Ok(false)
            }
            Err(error) => {
                self.refuse(format!(
                    "impossible de lire {} : {error}",
                    known_hosts.display()
                ));
                Ok(false)
            }
        }
    }
}

impl HostKeyCheck {
    fn refuse(&self, reason: String) {
        if let Ok(mut slot) = self.refused.lock() {
            *slot = Some(reason);
        }
    }
}
