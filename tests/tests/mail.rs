//! The SDK's `mail` feature against a real SMTP server (tests/smtp/server.py, aiosmtpd)
//! started by each test: a mail with attachments arrives intact, and every kind of failure
//! gets the classification the SDK documents.

use aiguillage_connector::mail::{Mail, MailConfig, Mailer};
use aiguillage_connector::testkit::assert_french;
use aiguillage_connector::{ConfigError, ConnectorError, Setup};
use aiguillage_tests::smtp::{SmtpOptions, SmtpServer};
use serde_json::{json, Value};
use sha2::{Digest, Sha512};

const SUBJECT: &str = "Dépôt DP 44043-DP-3f9a1c0b7e2d — Clisson (Sèvre-et-Maine, été, Œuvre, ça)";
const MESSAGE_ID: &str = "<44043-DP-3f9a1c0b7e2d@aiguillage>";
const SERVICE: &str = "instruction.ads@agglo.example";

fn mailer(table: Value) -> Result<Mailer, ConfigError> {
    let config: MailConfig = serde_json::from_value(table).expect("a [connectors.mail] table");
    Mailer::new(config, &Setup::new("mail-test", "/nonexistent-config-dir"))
}

fn mailer_for(server: &SmtpServer) -> Mailer {
    mailer(server.mail_table()).expect("the server's configuration")
}

fn with(mut table: Value, key: &str, value: Value) -> Value {
    table[key] = value;
    table
}

/// Bytes that do not compress and are not text: every byte value, in a scrambled order.
fn binary(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn sha512(bytes: &[u8]) -> Vec<u8> {
    Sha512::digest(bytes).to_vec()
}

fn simple_mail(to: &str) -> Mail<'static> {
    Mail::new(MESSAGE_ID, SUBJECT)
        .to(to)
        .text("Un dossier a été déposé.\n")
}

#[tokio::test]
async fn a_mail_with_two_attachments_arrives_intact() {
    let server = SmtpServer::start().unwrap();
    let mailer = mailer_for(&server);
    mailer
        .probe()
        .await
        .unwrap_or_else(|e| panic!("{}\n{}", e.report(), server.log()));

    let package = binary(5 * 1024 * 1024);
    let pdf = b"%PDF-1.7\n% plan de situation\n%%EOF\n".to_vec();
    let text = "Bonjour,\n\nLe dossier 44043-DP-3f9a1c0b7e2d a été déposé le 12 mars : \
                pièces jointes ci-dessous.\n";
    let mail = Mail::new(MESSAGE_ID, SUBJECT)
        .to(SERVICE)
        .to("Mairie de Clisson <urbanisme@clisson.example>")
        .text(text)
        .attach("44043-DP-3f9a1c0b7e2d.zip", "application/zip", &package[..])
        .attach("DP1 plan de situation.pdf", "application/pdf", pdf.clone());
    mailer
        .send(&mail)
        .await
        .unwrap_or_else(|e| panic!("{}\n{}", e.report(), server.log()));

    let received = server.messages().unwrap();
    assert_eq!(received.len(), 1, "one message in the spool");
    let received = &received[0];
    assert_eq!(received.subject.as_deref(), Some(SUBJECT));
    assert_eq!(
        received.message_id.as_deref(),
        Some("44043-DP-3f9a1c0b7e2d@aiguillage")
    );
    assert_eq!(received.from.as_deref(), Some("aiguillage@agglo.example"));
    assert_eq!(received.to, [SERVICE, "urbanisme@clisson.example"]);
    assert_eq!(
        received.text.as_deref().map(|t| t.replace("\r\n", "\n")),
        Some(text.to_owned())
    );
    assert_eq!(received.attachments.len(), 2);
    let zip = &received.attachments[0];
    assert_eq!(zip.file_name.as_deref(), Some("44043-DP-3f9a1c0b7e2d.zip"));
    assert_eq!(zip.media_type.as_deref(), Some("application/zip"));
    assert_eq!(zip.bytes.len(), package.len());
    assert_eq!(
        sha512(&zip.bytes),
        sha512(&package),
        "the package's SHA-512"
    );
    let plan = &received.attachments[1];
    assert_eq!(plan.file_name.as_deref(), Some("DP1 plan de situation.pdf"));
    assert_eq!(plan.media_type.as_deref(), Some("application/pdf"));
    assert_eq!(sha512(&plan.bytes), sha512(&pdf), "the PDF's SHA-512");
    // The headers travel MIME-encoded: nothing in the raw message depends on 8BITMIME.
    assert!(received.raw.is_ascii());

    // A retry sends the same Message-ID, for the receiver to recognise it.
    mailer.send(&mail).await.unwrap();
    let received = server.messages().unwrap();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].message_id, received[1].message_id);
}

#[tokio::test]
async fn implicit_tls_works_too() {
    let server = SmtpServer::start_with(SmtpOptions {
        implicit_tls: true,
        ..SmtpOptions::default()
    })
    .unwrap();
    let mailer = mailer(with(server.mail_table(), "security", json!("tls"))).unwrap();
    mailer
        .send(&simple_mail(SERVICE))
        .await
        .unwrap_or_else(|e| panic!("{}\n{}", e.report(), server.log()));
    assert_eq!(server.messages().unwrap().len(), 1);
}

fn assert_transient(error: &ConnectorError, says: &str) {
    // What the operator reads, in the test's output.
    eprintln!("transient: {}", error.report());
    assert!(!error.is_permanent(), "transient: {}", error.report());
    assert_french(&error.report());
    assert!(
        error.report().contains(says),
        "`{says}` in: {}",
        error.report()
    );
}

#[tokio::test]
async fn a_wrong_password_is_transient_and_never_shown() {
    let server = SmtpServer::start().unwrap();
    let wrong = "faux-mot-de-passe-7c1e";
    let mailer = mailer(with(server.mail_table(), "password", json!(wrong))).unwrap();
    for error in [
        mailer.send(&simple_mail(SERVICE)).await.unwrap_err(),
        mailer.probe().await.unwrap_err(),
    ] {
        assert_transient(
            &error,
            "a refusé la connexion de l'utilisateur `aiguillage`",
        );
        assert!(error.report().contains("535"), "{}", error.report());
        assert!(!error.report().contains(wrong), "{}", error.report());
        assert!(!format!("{error:?}").contains(wrong), "{error:?}");
        assert!(!error.report().contains(server.password()));
    }
    assert!(server.messages().unwrap().is_empty());
}

#[tokio::test]
async fn a_recipient_refused_with_550_is_permanent_with_the_server_reply() {
    let refused = "inconnu@agglo.example";
    let server = SmtpServer::start_with(SmtpOptions {
        fail_550: vec![refused.into()],
        ..SmtpOptions::default()
    })
    .unwrap();
    let error = mailer_for(&server)
        .send(&simple_mail(refused))
        .await
        .unwrap_err();
    assert!(error.is_permanent(), "{}", error.report());
    let report = error.report();
    eprintln!("permanent: {report}");
    assert_french(&report);
    assert!(report.contains("a refusé le mail"), "{report}");
    assert!(report.contains("550"), "{report}");
    assert!(report.contains("User unknown"), "{report}");
    assert!(server.messages().unwrap().is_empty());
}

#[tokio::test]
async fn a_recipient_refused_with_451_is_transient() {
    let later = "plein@agglo.example";
    let server = SmtpServer::start_with(SmtpOptions {
        fail_451: vec![later.into()],
        ..SmtpOptions::default()
    })
    .unwrap();
    let error = mailer_for(&server)
        .send(&simple_mail(later))
        .await
        .unwrap_err();
    assert_transient(&error, "451");
    assert!(
        error.report().contains("try again later"),
        "{}",
        error.report()
    );
    assert!(server.messages().unwrap().is_empty());
}

#[tokio::test]
async fn a_server_that_is_down_or_silent_is_transient() {
    let mut server = SmtpServer::start().unwrap();
    let down = mailer_for(&server);
    server.stop();
    let error = down.send(&simple_mail(SERVICE)).await.unwrap_err();
    assert_transient(&error, "le dialogue avec le serveur SMTP smtp://localhost:");
    assert_transient(&down.probe().await.unwrap_err(), "le dialogue avec");

    // A server that accepts the connection and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let table = json!({
        "host": "localhost", "port": port, "from": "aiguillage@agglo.example",
        "timeout": "1s", "ca_file": server.ca_file(),
    });
    let error = mailer(table)
        .unwrap()
        .send(&simple_mail(SERVICE))
        .await
        .unwrap_err();
    assert_transient(&error, "a pris plus de 1s (`mail.timeout`)");
    held.abort();
}

#[test]
fn plain_text_to_another_host_is_refused_at_start() {
    let table = json!({
        "host": "smtp.agglo.example", "security": "none", "from": "aiguillage@agglo.example",
    });
    let error = mailer(table).unwrap_err();
    assert_eq!(error.key(), "mail.security");
    assert_french(&error.to_string());
    assert!(error.to_string().contains("en clair"), "{error}");
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_fails_with_a_clear_message() {
    let server = SmtpServer::start().unwrap();
    let mut table = server.mail_table();
    table.as_object_mut().unwrap().remove("ca_file");
    let mailer = mailer(table).unwrap();
    let error = mailer.send(&simple_mail(SERVICE)).await.unwrap_err();
    assert_transient(&error, "la négociation TLS avec le serveur SMTP");
    assert!(
        error.report().contains("`mail.ca_file`"),
        "{}",
        error.report()
    );
    assert!(
        error.report().to_lowercase().contains("unknownissuer")
            || error.report().to_lowercase().contains("unknown issuer"),
        "{}",
        error.report()
    );
    assert!(server.messages().unwrap().is_empty());
}
