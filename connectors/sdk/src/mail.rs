//! Sending e-mail over SMTP, for connectors whose target takes documents by mail (an
//! instruction service's mailbox): a [`MailConfig`] table in the connector's configuration,
//! a [`Mailer`] built from it, and [`Mail`]s with attachments.
//!
//! The connection is encrypted (STARTTLS, required, by default; or implicit TLS), the
//! server's certificate is checked against the system's roots plus an optional `ca_file`,
//! and the password is read from the environment or a file, never written in clear in the
//! configuration. Each [`Mailer::send`] opens its own connection (a few mails a day per
//! connector: no pool to go stale).
//!
//! # How failures are classified
//!
//! | what happened | [`ConnectorError`] |
//! |---|---|
//! | connection refused, DNS failure, timeout, TLS handshake refused (certificate unknown or expired), connection dropped | transient |
//! | a 4xx reply anywhere (`451 try again later`, `452 mailbox full`) | transient |
//! | a 5xx reply to the sender, a recipient or the message (`550 no such user`, `552 message too big`) | **permanent**, with the server's reply |
//! | a 5xx reply before the message (greeting, EHLO, STARTTLS), no STARTTLS offered | transient |
//! | authentication refused (`535 5.7.8`), no common authentication mechanism | transient |
//!
//! Authentication failures are transient on purpose: a permanent error means *this
//! document* will always fail ([`ConnectorError::Permanent`]), and a wrong password is
//! not the démarche's fault — every démarche meets it until the operator fixes the
//! gateway's configuration, and then the same démarche goes through. Retrying with
//! backoff keeps the démarches instead of dead-lettering all of them, and the
//! connector's health check ([`Mailer::probe`]) reports the refusal. The SFTP transport
//! treats a refused login the same way.
//!
//! Messages never hold the password (it is also scrubbed from the server's replies, in
//! case a server echoes it).
//!
//! # Redeliveries
//!
//! A démarche may be delivered twice (a crash after the server accepted the mail and
//! before the gateway recorded it). Give each [`Mail`] a Message-ID derived from the
//! envelope (`<{dossier}@aiguillage>`): the same démarche always gives the same
//! Message-ID, which lets the receiver recognise the duplicate.
//!
//! ```
//! use aiguillage_connector::mail::{Mail, MailConfig, Mailer};
//! use aiguillage_connector::Setup;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # std::fs::write(dir.path().join("smtp-password"), "s3cr3t\n")?;
//! // The `[connectors.mail]` table of a connector's configuration.
//! let config: MailConfig = toml::from_str(r#"
//!     host = "smtp.agglo.example"
//!     user = "aiguillage"
//!     password_file = "smtp-password"
//!     from = "Aiguillage <aiguillage@agglo.example>"
//! "#)?;
//! let mailer = Mailer::new(config, &Setup::new("urbanisme", dir.path()))?;
//!
//! let pdf = b"%PDF-1.7 ...".to_vec();
//! let mail = Mail::new("<44043-DP-3f9a1c0b7e2d@aiguillage>", "Dépôt DP 44043-DP-3f9a1c0b7e2d — Clisson")
//!     .to("instruction.ads@agglo.example")
//!     .text("Un nouveau dossier a été déposé.\n")
//!     .attach("DP1.pdf", "application/pdf", &pdf[..]);
//! # let _ = (mailer, mail);
//! // mailer.send(&mail).await?;   (in the connector's `deliver`)
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment as MimeAttachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;
use serde::Deserialize;

use crate::secret::{self, ExposeSecret, SecretString};
use crate::{ConfigError, ConnectorError, Setup};

/// Default of `port` with `security = "starttls"` or `"none"` (the submission port).
pub const DEFAULT_SUBMISSION_PORT: u16 = 587;

/// Default of `port` with `security = "tls"` (submissions, implicit TLS).
pub const DEFAULT_SUBMISSIONS_PORT: u16 = 465;

/// Default of `timeout`: connecting, authenticating and sending one mail.
pub const DEFAULT_MAIL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the polite `QUIT` after an accepted mail may take; its failure changes nothing.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS, which the server must offer (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte ("implicit TLS", port 465).
    Tls,
    /// No encryption: only to a server on the gateway's own machine (a loopback address),
    /// such as a local relay.
    None,
}

/// The `mail` table of a connector that sends e-mail.
///
/// ```toml
/// [connectors.mail]
/// host = "smtp.agglo.example"
/// # port = 587                  # 465 with security = "tls"
/// # security = "starttls"       # or "tls"; "none" only for a relay on 127.0.0.1
/// user = "aiguillage"
/// password_file = "/run/credentials/aiguillage/smtp-password"
/// from = "Aiguillage <aiguillage@agglo.example>"
/// # timeout = "30s"
/// # ca_file = "/etc/aiguillage/agglo-ca.pem"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MailConfig {
    /// The SMTP server's host name or IP address; also the name its certificate must
    /// carry. Required.
    pub host: String,

    /// The server's port; default 587, or 465 with `security = "tls"`.
    #[serde(default)]
    pub port: Option<u16>,

    /// `"starttls"` (default: STARTTLS is required, a server that does not offer it is
    /// refused), `"tls"` (implicit TLS) or `"none"` (plain text, refused unless `host` is a
    /// loopback address).
    #[serde(default)]
    pub security: Security,

    /// The account to authenticate as (AUTH PLAIN or LOGIN, only over TLS unless the
    /// server is on the loopback). Without it, no authentication.
    #[serde(default)]
    pub user: Option<String>,

    /// The account's password (a secret: prefer `password_file`, or the environment
    /// variable that overrides this key).
    #[serde(default)]
    pub password: Option<SecretString>,

    /// A file holding the password (e.g. a systemd or Docker credential).
    #[serde(default)]
    pub password_file: Option<PathBuf>,

    /// The sender, `addr@example.org` or `Name <addr@example.org>`. Required.
    pub from: String,

    /// Longest time for one mail (connect, STARTTLS, authenticate, send); default `30s`.
    /// Past it the delivery is a transient failure, retried later.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,

    /// A PEM file of extra root certificates trusted for the server (a private CA, or the
    /// server's self-signed certificate), on top of the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_timeout() -> Duration {
    DEFAULT_MAIL_TIMEOUT
}

impl MailConfig {
    /// A configuration for `host` sending as `from`, every other key at its default (no
    /// authentication).
    pub fn new(host: impl Into<String>, from: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: None,
            security: Security::default(),
            user: None,
            password: None,
            password_file: None,
            from: from.into(),
            timeout: DEFAULT_MAIL_TIMEOUT,
            ca_file: None,
        }
    }
}

/// Sends mails through one SMTP server, as configured by a [`MailConfig`].
#[derive(Clone)]
pub struct Mailer {
    host: String,
    port: u16,
    security: Security,
    /// `None` with `security = "none"`.
    tls: Option<TlsParameters>,
    credentials: Option<(String, SecretString)>,
    from: Mailbox,
    timeout: Duration,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The "is this host on the gateway's machine" test of `security = "none"`.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Mailer {
    /// Checks `config` (the sender's address, the security, the port), reads the password
    /// and the `ca_file`; does not connect (so that `aiguillage check` works away from the
    /// server).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on the `mail.…` key at fault: an empty host, port 0, a sender that
    /// is not an address, `security = "none"` to a host that is not a loopback address, a
    /// user without password (or the reverse), an unreadable secret, an unreadable or
    /// non-PEM `ca_file`.
    pub fn new(config: MailConfig, setup: &Setup) -> Result<Self, ConfigError> {
        let host = config.host.trim().to_owned();
        if host.is_empty() {
            return Err(ConfigError::invalid(
                "mail.host",
                "l'hôte est vide : indiquer le nom ou l'adresse du serveur SMTP",
            ));
        }
        let port = config.port.unwrap_or(match config.security {
            Security::Tls => DEFAULT_SUBMISSIONS_PORT,
            Security::Starttls | Security::None => DEFAULT_SUBMISSION_PORT,
        });
        if port == 0 {
            return Err(ConfigError::invalid(
                "mail.port",
                "le port 0 n'est pas joignable : indiquer le port du serveur SMTP (587 ou 465)",
            ));
        }
        if config.timeout.is_zero() {
            return Err(ConfigError::invalid(
                "mail.timeout",
                "le délai doit être supérieur à zéro, par exemple \"30s\"",
            ));
        }
        if config.security == Security::None && !is_loopback(&host) {
            return Err(ConfigError::invalid(
                "mail.security",
                format!(
                    "`none` envoie les mails (et le mot de passe) en clair : ce n'est permis que vers un serveur de cette machine (localhost, 127.0.0.1, ::1), pas vers `{host}` ; utiliser `starttls` (port 587) ou `tls` (port 465)"
                ),
            ));
        }
        let from: Mailbox = config.from.trim().parse().map_err(|error| {
            ConfigError::invalid(
                "mail.from",
                format!(
                    "`{}` n'est pas une adresse électronique ({error}) : écrire `addr@example.org` ou `Nom <addr@example.org>`",
                    config.from
                ),
            )
        })?;
        let has_password = config.password.is_some() || config.password_file.is_some();
        let credentials = match (config.user, has_password) {
            (Some(user), _) if user.trim().is_empty() => {
                return Err(ConfigError::invalid(
                    "mail.user",
                    "l'utilisateur est vide : indiquer le compte SMTP, ou retirer la clé pour envoyer sans authentification",
                ))
            }
            (Some(user), _) => {
                let password = secret::resolve(
                    "mail.password",
                    config.password,
                    config.password_file.as_deref(),
                    setup,
                )?;
                Some((user, password))
            }
            (None, true) => {
                return Err(ConfigError::invalid(
                    "mail.user",
                    "un mot de passe est donné sans `mail.user` : indiquer le compte auquel il appartient",
                ))
            }
            (None, false) => None,
        };
        let tls = match config.security {
            Security::None => None,
            Security::Starttls | Security::Tls => {
                let mut builder = TlsParameters::builder(host.clone());
                if let Some(path) = &config.ca_file {
                    let path = setup.resolve(path);
                    let pem = std::fs::read(&path).map_err(|error| {
                        ConfigError::invalid(
                            "mail.ca_file",
                            format!(
                                "impossible de lire {} : {error} (corriger le chemin ou les droits du fichier)",
                                path.display()
                            ),
                        )
                    })?;
                    let not_pem = || {
                        ConfigError::invalid(
                            "mail.ca_file",
                            format!(
                                "{} ne contient aucun certificat PEM (`-----BEGIN CERTIFICATE-----`)",
                                path.display()
                            ),
                        )
                    };
                    if !pem
                        .windows(b"-----BEGIN CERTIFICATE-----".len())
                        .any(|window| window == b"-----BEGIN CERTIFICATE-----")
                    {
                        return Err(not_pem());
                    }
                    let certificate = Certificate::from_pem(&pem).map_err(|_| not_pem())?;
                    builder = builder.add_root_certificate(certificate);
                }
                Some(builder.build_rustls().map_err(|error| {
                    ConfigError::invalid(
                        "mail.ca_file",
                        format!("la configuration TLS pour `{host}` a échoué : {error}"),
                    )
                })?)
            }
        };
        Ok(Self {
            host,
            port,
            security: config.security,
            tls,
            credentials,
            from,
            timeout: config.timeout,
        })
    }

    /// Where the mails go, for messages: `smtp://host:port` (`smtps://` with implicit TLS).
    pub fn location(&self) -> String {
        let scheme = match self.security {
            Security::Tls => "smtps",
            Security::Starttls | Security::None => "smtp",
        };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    /// Sends `mail`: connects, secures the connection, authenticates, and hands the
    /// message over; succeeds once the server has accepted it (`250` after the data).
    ///
    /// # Errors
    ///
    /// A permanent [`ConnectorError`] when the mail itself is refused (a 5xx reply to a
    /// recipient or the message, with the server's words) or cannot be built (no
    /// recipient, a bad address, media type or Message-ID); a transient one otherwise
    /// (see the [module's table](self)).
    pub async fn send(&self, mail: &Mail<'_>) -> Result<(), ConnectorError> {
        let (envelope, bytes) = self.build(mail)?;
        let mut connection = self
            .within_timeout("l'envoi du mail", async {
                let mut connection = self.open().await?;
                match connection.send(&envelope, &bytes).await {
                    Ok(_) => Ok(connection),
                    Err(error) => {
                        connection.abort().await;
                        Err(self.classify(Stage::Send, error))
                    }
                }
            })
            .await?;
        // The server has taken the mail: the goodbye is a courtesy.
        let _ = tokio::time::timeout(QUIT_TIMEOUT, connection.quit()).await;
        Ok(())
    }

    /// Checks that mails can be sent, without sending any: connects, secures the
    /// connection, authenticates, and quits.
    ///
    /// # Errors
    ///
    /// A transient [`ConnectorError`] saying what failed (connection, TLS, login).
    pub async fn probe(&self) -> Result<(), ConnectorError> {
        let mut connection = self
            .within_timeout("la vérification de la connexion", self.open())
            .await?;
        connection
            .quit()
            .await
            .map_err(|error| self.classify(Stage::Greeting, error))?;
        Ok(())
    }

    /// The envelope and the RFC 5322 bytes of `mail`.
    fn build(
        &self,
        mail: &Mail<'_>,
    ) -> Result<(lettre::address::Envelope, Vec<u8>), ConnectorError> {
        if mail.to.is_empty() {
            return Err(ConnectorError::permanent(
                "le mail n'a aucun destinataire : indiquer au moins une adresse",
            ));
        }
        let message_id = message_id(&mail.message_id)?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(mail.subject.as_str())
            .message_id(Some(message_id))
            .date_now();
        for to in &mail.to {
            let mailbox: Mailbox = to.trim().parse().map_err(|error| {
                ConnectorError::permanent(format!(
                    "`{to}` n'est pas une adresse électronique ({error})"
                ))
            })?;
            builder = builder.to(mailbox);
        }
        let text = SinglePart::plain(mail.text.clone());
        let message = if mail.attachments.is_empty() {
            builder.singlepart(text)
        } else {
            let mut parts = MultiPart::mixed().singlepart(text);
            for attachment in &mail.attachments {
                let content_type = ContentType::parse(&attachment.media_type).map_err(|error| {
                    ConnectorError::permanent(format!(
                        "pièce jointe `{}` : `{}` n'est pas un type de média ({error})",
                        attachment.file_name, attachment.media_type
                    ))
                })?;
                parts = parts.singlepart(
                    MimeAttachment::new(attachment.file_name.clone())
                        .body(attachment.bytes.to_vec(), content_type),
                );
            }
            builder.multipart(parts)
        }
        .map_err(|error| {
            ConnectorError::permanent(format!("le mail n'a pas pu être composé : {error}"))
                .with_source(error)
        })?;
        let envelope = message.envelope().clone();
        Ok((envelope, message.formatted()))
    }

    /// Connects, says EHLO, secures the connection and logs in.
    async fn open(&self) -> Result<AsyncSmtpConnection, ConnectorError> {
        let hello = ClientId::default();
        let implicit = match self.security {
            Security::Tls => self.tls.clone(),
            Security::Starttls | Security::None => None,
        };
        let mut connection = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &hello,
            implicit,
            None,
        )
        .await
        .map_err(|error| self.classify(Stage::Greeting, error))?;
        if self.security == Security::Starttls {
            if !connection.can_starttls() {
                connection.abort().await;
                return Err(ConnectorError::transient(format!(
                    "le serveur SMTP {} ne propose pas STARTTLS, que `mail.security = \"starttls\"` exige (l'activer sur le serveur, ou utiliser `security = \"tls\"` sur son port TLS implicite)",
                    self.location()
                )));
            }
            if let Some(tls) = self.tls.clone() {
                if let Err(error) = connection.starttls(tls, &hello).await {
                    // No QUIT: after a failed handshake lettre has no stream left to say it
                    // on (and panics if asked to); dropping the connection closes it.
                    drop(connection);
                    return Err(self.classify(Stage::Tls, error));
                }
            }
        }
        if let Some((user, password)) = &self.credentials {
            let credentials = Credentials::new(user.clone(), password.expose_secret().to_owned());
            if let Err(error) = connection
                .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await
            {
                connection.abort().await;
                return Err(self.classify(Stage::Auth, error));
            }
        }
        Ok(connection)
    }

    async fn within_timeout<T>(
        &self,
        what: &str,
        work: impl std::future::Future<Output = Result<T, ConnectorError>>,
    ) -> Result<T, ConnectorError> {
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(ConnectorError::transient(format!(
                "{what} par {} a pris plus de {:?} (`mail.timeout`)",
                self.location(),
                self.timeout
            ))),
        }
    }

    /// Turns lettre's error at `stage` into the gateway's decision (see the module's table).
    fn classify(&self, stage: Stage, error: lettre::transport::smtp::Error) -> ConnectorError {
        let location = self.location();
        let reply = self.scrub(&error_chain(&error));
        let message = match stage {
            Stage::Send if error.is_permanent() => {
                return ConnectorError::permanent(format!(
                    "le serveur SMTP {location} a refusé le mail : « {reply} »"
                ))
            }
            Stage::Send => format!("le serveur SMTP {location} n'a pas pris le mail : « {reply} »"),
            Stage::Auth => {
                let user = self.credentials.as_ref().map_or("", |(user, _)| user.as_str());
                if error.is_client() {
                    format!(
                        "la connexion au serveur SMTP {location} en tant que `{user}` a échoué : « {reply} » (le serveur ne propose ni AUTH PLAIN ni AUTH LOGIN sur cette connexion)"
                    )
                } else if error.is_permanent() {
                    format!(
                        "le serveur SMTP {location} a refusé la connexion de l'utilisateur `{user}` : « {reply} » (vérifier `mail.user` et le mot de passe ; les démarches attendent et seront réessayées)"
                    )
                } else {
                    format!("la connexion au serveur SMTP {location} en tant que `{user}` a échoué : « {reply} »")
                }
            }
            Stage::Tls | Stage::Greeting if is_certificate_problem(&error) => format!(
                "la négociation TLS avec le serveur SMTP {location} a échoué : « {reply} » (si le certificat du serveur vient d'une autorité privée ou est auto-signé, régler `mail.ca_file` sur le fichier PEM de cette autorité ; le certificat doit nommer `{}`)",
                self.host
            ),
            Stage::Tls => {
                format!(
                    "la sécurisation par STARTTLS de la connexion au serveur SMTP {location} a échoué : « {reply} »"
                )
            }
            Stage::Greeting if error.is_timeout() => {
                format!("le serveur SMTP {location} n'a pas répondu à temps : « {reply} »")
            }
            Stage::Greeting => format!("le dialogue avec le serveur SMTP {location} a échoué : « {reply} »"),
        };
        ConnectorError::transient(message).with_source(ScrubbedError(reply))
    }

    /// `text` without the password, in case a server echoes what it was sent.
    fn scrub(&self, text: &str) -> String {
        match &self.credentials {
            Some((_, password)) if !password.expose_secret().is_empty() => {
                text.replace(password.expose_secret(), "***")
            }
            _ => text.to_owned(),
        }
    }
}

/// Where in the SMTP dialogue an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Connecting, the greeting and EHLO (and the handshake of implicit TLS).
    Greeting,
    /// STARTTLS and its handshake.
    Tls,
    /// AUTH.
    Auth,
    /// MAIL FROM, RCPT TO, DATA and the message.
    Send,
}

/// lettre's error with its sources on one line: a server's reply as it said it (`550 5.1.1
/// …`, without lettre's "permanent error", which would contradict a transient
/// classification), anything else with its causes.
fn error_chain(error: &lettre::transport::smtp::Error) -> String {
    if let Some(code) = error.status() {
        return match std::error::Error::source(error) {
            Some(reply) => format!("{code} {reply}"),
            None => code.to_string(),
        };
    }
    let mut out = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

fn is_certificate_problem(error: &lettre::transport::smtp::Error) -> bool {
    let text = error_chain(error).to_ascii_lowercase();
    error.is_tls() || text.contains("certificate") || text.contains("unknownissuer")
}

/// The source kept on a transient error: lettre's error as text, already scrubbed (lettre's
/// own error is not kept, so that nothing unscrubbed travels in the chain).
#[derive(Debug)]
struct ScrubbedError(String);

impl std::fmt::Display for ScrubbedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScrubbedError {}

/// Checks a Message-ID and gives it its angle brackets (`<id@domain>`).
fn message_id(id: &str) -> Result<String, ConnectorError> {
    let inner = id
        .strip_prefix('<')
        .and_then(|rest| rest.strip_suffix('>'))
        .unwrap_or(id);
    let valid = inner.contains('@')
        && !inner.starts_with('@')
        && !inner.ends_with('@')
        && inner
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && !matches!(byte, b'<' | b'>' | b'"' | b'\\'));
    if valid {
        Ok(format!("<{inner}>"))
    } else {
        Err(ConnectorError::permanent(format!(
            "`{id}` n'est pas un Message-ID : écrire `<quelque-chose@domaine>` en caractères ASCII imprimables seulement"
        )))
    }
}

/// One e-mail: recipients, subject, a plain-text body, attachments, and the Message-ID
/// that the caller chooses (the same for every delivery of one démarche).
#[derive(Debug, Clone)]
pub struct Mail<'a> {
    message_id: String,
    subject: String,
    to: Vec<String>,
    text: String,
    attachments: Vec<MailAttachment<'a>>,
}

/// A file attached to a [`Mail`].
#[derive(Debug, Clone)]
pub struct MailAttachment<'a> {
    /// The name the receiver sees (UTF-8; encoded as MIME requires).
    pub file_name: String,
    /// Its media type, e.g. `application/zip`.
    pub media_type: String,
    /// Its content, borrowed or owned.
    pub bytes: Cow<'a, [u8]>,
}

impl<'a> Mail<'a> {
    /// A mail with its Message-ID (`<id@domain>`, angle brackets optional) and subject
    /// (UTF-8, encoded as MIME requires), no recipient, an empty body and no attachment.
    pub fn new(message_id: impl Into<String>, subject: impl Into<String>) -> Self {
        Self {
            message_id: message_id.into(),
            subject: subject.into(),
            to: Vec::new(),
            text: String::new(),
            attachments: Vec::new(),
        }
    }

    /// Adds a recipient (`addr@example.org` or `Name <addr@example.org>`).
    #[must_use]
    pub fn to(mut self, address: impl Into<String>) -> Self {
        self.to.push(address.into());
        self
    }

    /// Sets the plain-text body (UTF-8).
    #[must_use]
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = text.into();
        self
    }

    /// Attaches `bytes` as `file_name` of type `media_type`.
    #[must_use]
    pub fn attach(
        mut self,
        file_name: impl Into<String>,
        media_type: impl Into<String>,
        bytes: impl Into<Cow<'a, [u8]>>,
    ) -> Self {
        self.attachments.push(MailAttachment {
            file_name: file_name.into(),
            media_type: media_type.into(),
            bytes: bytes.into(),
        });
        self
    }

    /// The Message-ID as given.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The recipients.
    pub fn recipients(&self) -> &[String] {
        &self.to
    }

    /// The attachments.
    pub fn attachments(&self) -> &[MailAttachment<'a>] {
        &self.attachments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(dir: &std::path::Path) -> Setup {
        Setup::new("mail-test", dir)
    }

    fn config(text: &str) -> MailConfig {
        toml::from_str(text).unwrap_or_else(|error| panic!("{error}"))
    }

    fn refused(config: MailConfig, dir: &std::path::Path) -> ConfigError {
        Mailer::new(config, &setup(dir)).expect_err("the configuration is refused")
    }

    #[test]
    fn defaults_are_starttls_on_587_with_30_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let config = config("host = \"smtp.example.org\"\nfrom = \"a@example.org\"");
        assert_eq!(config.security, Security::Starttls);
        assert_eq!(config.timeout, Duration::from_secs(30));
        let mailer = Mailer::new(config, &setup(dir.path())).unwrap();
        assert_eq!(mailer.location(), "smtp://smtp.example.org:587");
        let tls = Mailer::new(
            self::config(
                "host = \"smtp.example.org\"\nfrom = \"a@example.org\"\nsecurity = \"tls\"",
            ),
            &setup(dir.path()),
        )
        .unwrap();
        assert_eq!(tls.location(), "smtps://smtp.example.org:465");
    }

    #[test]
    fn unknown_keys_and_securities_are_refused() {
        let error =
            toml::from_str::<MailConfig>("host = \"h\"\nfrom = \"a@example.org\"\npasword = \"x\"")
                .unwrap_err();
        assert!(
            error.to_string().contains("unknown field `pasword`"),
            "{error}"
        );
        let error = toml::from_str::<MailConfig>(
            "host = \"h\"\nfrom = \"a@example.org\"\nsecurity = \"ssl\"",
        )
        .unwrap_err();
        assert!(error.to_string().contains("starttls"), "{error}");
    }

    #[test]
    fn plain_text_is_only_for_the_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let error = refused(
            config("host = \"smtp.example.org\"\nfrom = \"a@example.org\"\nsecurity = \"none\""),
            dir.path(),
        );
        assert_eq!(error.key(), "mail.security");
        assert!(error.to_string().contains("smtp.example.org"), "{error}");
        assert!(error.to_string().contains("en clair"), "{error}");
        for host in ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.53"] {
            let mut config = MailConfig::new(host, "a@example.org");
            config.security = Security::None;
            let mailer = Mailer::new(config, &setup(dir.path()))
                .unwrap_or_else(|error| panic!("{host}: {error}"));
            assert_eq!(mailer.port, 587);
        }
        let mut config = MailConfig::new("10.0.0.1", "a@example.org");
        config.security = Security::None;
        assert_eq!(refused(config, dir.path()).key(), "mail.security");
    }

    #[test]
    fn the_sender_must_be_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let error = refused(
            MailConfig::new("smtp.example.org", "aiguillage"),
            dir.path(),
        );
        assert_eq!(error.key(), "mail.from");
        assert!(error.to_string().contains("`aiguillage`"), "{error}");
        Mailer::new(
            MailConfig::new("smtp.example.org", "Aiguillage de l'agglo <a@example.org>"),
            &setup(dir.path()),
        )
        .unwrap();
    }

    #[test]
    fn the_password_comes_with_a_user_from_a_file_or_inline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cr3t\n").unwrap();
        let mut config = MailConfig::new("smtp.example.org", "a@example.org");
        config.user = Some("aiguillage".into());
        let error = refused(config.clone(), dir.path());
        assert_eq!(error.key(), "mail.password");
        assert!(matches!(error, ConfigError::MissingSecret { .. }));
        config.password_file = Some("pw".into());
        let mailer = Mailer::new(config.clone(), &setup(dir.path())).unwrap();
        let (_, password) = mailer.credentials.as_ref().unwrap();
        assert_eq!(password.expose_secret(), "s3cr3t");
        assert!(!format!("{mailer:?}").contains("s3cr3t"));
        config.password = Some(SecretString::from("other".to_owned()));
        assert_eq!(refused(config.clone(), dir.path()).key(), "mail.password");
        config.password_file = Some("missing".into());
        config.password = None;
        assert_eq!(
            refused(config.clone(), dir.path()).key(),
            "mail.password_file"
        );
        let mut config = MailConfig::new("smtp.example.org", "a@example.org");
        config.password = Some(SecretString::from("s3cr3t".to_owned()));
        assert_eq!(refused(config, dir.path()).key(), "mail.user");
    }

    #[test]
    fn the_ca_file_must_be_a_readable_pem_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = MailConfig::new("smtp.example.org", "a@example.org");
        config.ca_file = Some("missing.pem".into());
        let error = refused(config.clone(), dir.path());
        assert_eq!(error.key(), "mail.ca_file");
        assert!(error.to_string().contains("missing.pem"), "{error}");
        std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
        config.ca_file = Some("junk.pem".into());
        let error = refused(config, dir.path());
        assert!(
            error.to_string().contains("aucun certificat PEM"),
            "{error}"
        );
    }

    #[test]
    fn empty_host_zero_port_and_zero_timeout_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            refused(MailConfig::new(" ", "a@example.org"), dir.path()).key(),
            "mail.host"
        );
        let mut config = MailConfig::new("h", "a@example.org");
        config.port = Some(0);
        assert_eq!(refused(config, dir.path()).key(), "mail.port");
        let mut config = MailConfig::new("h", "a@example.org");
        config.timeout = Duration::ZERO;
        assert_eq!(refused(config, dir.path()).key(), "mail.timeout");
    }

    #[test]
    fn its_futures_can_be_awaited_in_a_connector() {
        // `Connector::deliver` futures are `Send` (the gateway spawns them).
        fn send_and_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(
            MailConfig::new("smtp.example.org", "a@example.org"),
            &setup(dir.path()),
        )
        .unwrap();
        send_and_sync(&mailer);
        let mail = Mail::new("<x@y>", "s").to("a@example.org");
        send_and_sync(&mail);
        send(mailer.send(&mail));
        send(mailer.probe());
    }

    #[test]
    fn message_ids_are_checked_and_bracketed() {
        assert_eq!(message_id("a@b").unwrap(), "<a@b>");
        assert_eq!(
            message_id("<44043-DP-1@aiguillage>").unwrap(),
            "<44043-DP-1@aiguillage>"
        );
        for bad in [
            "",
            "<>",
            "no-at",
            "a b@c",
            "a@b\r\nBcc: x@y",
            "<a@b",
            "@b",
            "é@b",
        ] {
            let error = message_id(bad).unwrap_err();
            assert!(error.is_permanent(), "{bad}");
        }
    }

    #[test]
    fn a_mail_without_recipient_or_with_a_bad_one_is_refused_before_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(
            MailConfig::new("smtp.example.org", "a@example.org"),
            &setup(dir.path()),
        )
        .unwrap();
        let error = mailer.build(&Mail::new("<x@y>", "s")).unwrap_err();
        assert!(error.is_permanent());
        let error = mailer
            .build(&Mail::new("<x@y>", "s").to("nobody"))
            .unwrap_err();
        assert!(error.to_string().contains("`nobody`"), "{error}");
        let error = mailer
            .build(&Mail::new("<x@y>", "s").to("a@example.org").attach(
                "x",
                "not a type",
                &b"x"[..],
            ))
            .unwrap_err();
        assert!(error.to_string().contains("not a type"), "{error}");
        let (envelope, bytes) = mailer
            .build(
                &Mail::new("x@y", "Dépôt — Clisson")
                    .to("a@example.org")
                    .text("é"),
            )
            .unwrap();
        assert_eq!(envelope.to().len(), 1);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.is_ascii(), "the subject and body are MIME-encoded");
        assert!(text.contains("Message-ID: <x@y>"), "{text}");
    }
}
