//! A real SMTP server for the mail tests: `tests/smtp/server.py` (Debian's
//! `python3-aiosmtpd`, which `.ci/run` installs when missing), started by the test on a
//! free port of 127.0.0.1 with a certificate made for the test, and stopped when dropped.
//!
//! The server requires STARTTLS (or implicit TLS), then AUTH with [`SmtpServer::user`] and
//! [`SmtpServer::password`], and saves each accepted message as `<n>.eml` in
//! [`SmtpServer::spool`]; [`SmtpServer::messages`] reads them back, parsed.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use aiguillage_tests::smtp::{SmtpOptions, SmtpServer};
//! let server = SmtpServer::start()?;
//! // A [connectors.mail] table: host = "localhost", port = server.port(),
//! // ca_file = server.ca_file(), user = server.user(), password = server.password().
//! let refusing = SmtpServer::start_with(SmtpOptions {
//!     fail_550: vec!["inconnu@agglo.example".into()],
//!     ..SmtpOptions::default()
//! })?;
//! let received = server.messages()?;
//! # let _ = (refusing, received);
//! # Ok(())
//! # }
//! ```

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};
use mail_parser::{MessageParser, MimeHeaders};

/// How long the server may take to start (Python's start-up on a loaded CI machine).
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// What the server refuses, and how it speaks TLS.
#[derive(Debug, Clone, Default)]
pub struct SmtpOptions {
    /// Recipients answered `451` (try again later).
    pub fail_451: Vec<String>,
    /// Recipients answered `550` (no such mailbox).
    pub fail_550: Vec<String>,
    /// TLS from the first byte (port 465 style) instead of STARTTLS.
    pub implicit_tls: bool,
}

/// A running SMTP server; killed when dropped.
pub struct SmtpServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    user: String,
    password: String,
}

/// A message the server accepted, parsed.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The bytes as received.
    pub raw: Vec<u8>,
    /// The `Message-ID` header, without its angle brackets.
    pub message_id: Option<String>,
    /// The decoded subject.
    pub subject: Option<String>,
    /// The `From` address.
    pub from: Option<String>,
    /// The `To` addresses.
    pub to: Vec<String>,
    /// The first plain-text body.
    pub text: Option<String>,
    /// The attachments, decoded.
    pub attachments: Vec<ReceivedAttachment>,
}

/// An attachment of a [`ReceivedMail`].
#[derive(Debug, Clone)]
pub struct ReceivedAttachment {
    /// Its file name, decoded.
    pub file_name: Option<String>,
    /// Its media type (`type/subtype`).
    pub media_type: Option<String>,
    /// Its content, decoded from its transfer encoding.
    pub bytes: Vec<u8>,
}

/// Debian's Python (with `python3-aiosmtpd`), not one a version manager put first on the
/// `PATH`.
fn python() -> PathBuf {
    let debian = Path::new("/usr/bin/python3");
    if debian.is_file() {
        debian.to_path_buf()
    } else {
        PathBuf::from("python3")
    }
}

fn server_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp/server.py")
}

fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .context("run openssl (apt-get install -y openssl)")?;
    if !output.status.success() {
        bail!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A test CA (`ca.pem`) and a server certificate it signed for `localhost` and
/// `127.0.0.1` (`server.pem`, `server.key`). rustls refuses a CA certificate used as the
/// server's own, so the self-signed part is the CA, as with a commune's private CA.
fn make_certificates(dir: &Path) -> anyhow::Result<()> {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Aiguillage test CA",
    ]);
    openssl(dir, &ca)?;
    let mut request = vec!["req"];
    request.extend(ec);
    request.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &request)?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    )
}

impl SmtpServer {
    /// Starts a server that accepts every recipient, with STARTTLS.
    ///
    /// # Errors
    ///
    /// When `openssl` or `python3-aiosmtpd` is missing, or the server does not start.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(SmtpOptions::default())
    }

    /// Starts a server with `options`.
    ///
    /// # Errors
    ///
    /// As [`SmtpServer::start`].
    pub fn start_with(options: SmtpOptions) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("temporary directory")?;
        make_certificates(dir.path())?;
        let spool = dir.path().join("spool");
        std::fs::create_dir(&spool)?;
        let user = "aiguillage".to_owned();
        let password = crate::unique("mot-de-passe");
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let mut command = Command::new(python());
        command
            .arg(server_script())
            .arg("--cert")
            .arg(dir.path().join("server.pem"))
            .arg("--key")
            .arg(dir.path().join("server.key"))
            .args(["--user", &user, "--password", &password])
            .arg("--spool")
            .arg(&spool);
        if options.implicit_tls {
            command.arg("--implicit-tls");
        }
        for address in &options.fail_451 {
            command.args(["--fail-451", address]);
        }
        for address in &options.fail_550 {
            command.args(["--fail-550", address]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("start tests/smtp/server.py with /usr/bin/python3")?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut server = Self {
            child: Some(child),
            dir,
            port: 0,
            user,
            password,
        };
        // The port line, read on a thread so that a server that hangs cannot hang the test.
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver.recv_timeout(START_TIMEOUT).unwrap_or_default();
        server.port = match line.trim().parse() {
            Ok(port) => port,
            Err(_) => bail!(
                "the SMTP test server did not start (is python3-aiosmtpd installed? apt-get install -y python3-aiosmtpd): {}",
                server.log()
            ),
        };
        server.wait_until_it_answers(options.implicit_tls)?;
        Ok(server)
    }

    /// Waits for the server's greeting (`220`); with implicit TLS the server says nothing
    /// before the handshake, so an accepted connection is all there is to wait for.
    fn wait_until_it_answers(&self, implicit_tls: bool) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                if implicit_tls {
                    return Ok(());
                }
                stream.set_read_timeout(Some(Duration::from_millis(500)))?;
                let mut greeting = [0u8; 3];
                if stream.read_exact(&mut greeting).is_ok() && &greeting == b"220" {
                    return Ok(());
                }
            }
            if std::time::Instant::now() > deadline {
                bail!(
                    "the SMTP test server on port {} does not answer: {}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its port on 127.0.0.1 (the certificate names `localhost` and `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM file of the CA that signed the server's certificate (`mail.ca_file`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The directory of the accepted messages (`<n>.eml`).
    pub fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// The only user the server lets in.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// That user's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The `[connectors.mail]` table for this server (STARTTLS, the test CA, the user).
    pub fn mail_table(&self) -> serde_json::Value {
        serde_json::json!({
            "host": "localhost",
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "from": "Aiguillage <aiguillage@agglo.example>",
            "ca_file": self.ca_file(),
            "timeout": "20s",
        })
    }

    /// The messages accepted so far, in the order received.
    ///
    /// # Errors
    ///
    /// When the spool cannot be read or a message does not parse.
    pub fn messages(&self) -> anyhow::Result<Vec<ReceivedMail>> {
        let mut numbered = Vec::new();
        for entry in std::fs::read_dir(self.spool())? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(number) = name
                .strip_suffix(".eml")
                .and_then(|n| n.parse::<u64>().ok())
            {
                numbered.push((number, name));
            }
        }
        numbered.sort();
        numbered
            .into_iter()
            .map(|(_, name)| {
                let raw = std::fs::read(self.spool().join(&name))?;
                parse(raw).with_context(|| format!("parse {name}"))
            })
            .collect()
    }

    /// Stops the server (kills it); it does not come back.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn parse(raw: Vec<u8>) -> anyhow::Result<ReceivedMail> {
    let message = MessageParser::default()
        .parse(&raw)
        .context("not an RFC 5322 message")?;
    let addresses = |address: Option<&mail_parser::Address<'_>>| -> Vec<String> {
        address
            .map(|list| {
                list.iter()
                    .filter_map(|addr| addr.address().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let attachments = message
        .attachments()
        .map(|part| ReceivedAttachment {
            file_name: part.attachment_name().map(str::to_owned),
            media_type: part.content_type().map(|ct| match ct.subtype() {
                Some(subtype) => format!("{}/{subtype}", ct.ctype()),
                None => ct.ctype().to_owned(),
            }),
            bytes: part.contents().to_vec(),
        })
        .collect();
    let mail = ReceivedMail {
        message_id: message.message_id().map(str::to_owned),
        subject: message.subject().map(str::to_owned),
        from: addresses(message.from()).into_iter().next(),
        to: addresses(message.to()),
        text: message.body_text(0).map(|text| text.into_owned()),
        attachments,
        raw: Vec::new(),
    };
    Ok(ReceivedMail { raw, ..mail })
}
