//! The SFTP transport against a real OpenSSH server started by the test: delivery, a
//! redelivery, a conflicting file, a wrong or unknown host key, and a server that is down
//! then back.

mod common;

use std::path::Path;
use std::sync::Arc;

use aiguillage_connector::testkit::assert_french;
use aiguillage_connector::{Connector, ConnectorKind, Context, Setup};
use aiguillage_connector_file_drop::transport::{self, Published, SftpConfig, Transport};
use aiguillage_connector_file_drop::FileDropConfig;
use common::sshd::Sshd;
use serde_json::json;

fn setup() -> Setup {
    Setup::new("sftp-test", "/nonexistent-config-dir")
}

fn sftp_transport(sshd: &Sshd, known_hosts: &Path) -> Arc<dyn Transport> {
    let config: SftpConfig = serde_json::from_value(sshd.sftp_table(known_hosts)).unwrap();
    transport::build(&sshd.drop_dir(), Some(config), &setup()).expect("the SFTP configuration")
}

fn files(directory: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![directory.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(directory).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn files_are_published_once_and_never_replaced() {
    let sshd = Sshd::start();
    let transport = sftp_transport(&sshd, &sshd.known_hosts());
    let bytes = b"<demandeEtatCivil/>\n".to_vec();

    let outcome = transport.publish("NAI/a.xml", bytes.clone()).await;
    assert_eq!(
        outcome.unwrap_or_else(|e| panic!("{}\n{}", e.report(), sshd.log())),
        Published::Written
    );
    assert_eq!(
        std::fs::read(sshd.drop_dir().join("NAI/a.xml")).unwrap(),
        bytes
    );

    // A redelivery finds its file.
    assert_eq!(
        transport.publish("NAI/a.xml", bytes.clone()).await.unwrap(),
        Published::AlreadyThere
    );
    // Another content under the same name is refused for good.
    let error = transport
        .publish("NAI/a.xml", b"other".to_vec())
        .await
        .unwrap_err();
    assert!(error.is_permanent(), "{error}");
    assert!(
        error.to_string().contains("autre contenu")
            || error.to_string().contains("contenu différent"),
        "{error}"
    );
    assert_eq!(
        std::fs::read(sshd.drop_dir().join("NAI/a.xml")).unwrap(),
        bytes
    );
    // Nothing else is left, no temporary file.
    assert_eq!(files(&sshd.drop_dir()), ["NAI/a.xml"]);
    transport.probe().await.unwrap();
    assert!(transport.location().starts_with(&format!(
        "sftp://{}@127.0.0.1:{}/",
        sshd.user(),
        sshd.port
    )));
}

#[tokio::test]
async fn concurrent_publications_of_one_name_agree() {
    let sshd = Sshd::start();
    let transport = sftp_transport(&sshd, &sshd.known_hosts());
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let transport = transport.clone();
        tasks.push(tokio::spawn(async move {
            transport.publish("x.xml", b"same".to_vec()).await
        }));
    }
    let mut written = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() == Published::Written {
            written += 1;
        }
    }
    assert_eq!(written, 1);
    assert_eq!(files(&sshd.drop_dir()), ["x.xml"]);
}

#[tokio::test]
async fn a_wrong_host_key_is_refused() {
    let sshd = Sshd::start();
    let transport = sftp_transport(&sshd, &sshd.wrong_known_hosts());
    let error = transport.publish("a.xml", b"x".to_vec()).await.unwrap_err();
    assert!(
        !error.is_permanent(),
        "the operator can fix known_hosts: {error}"
    );
    assert!(
        error
            .to_string()
            .contains("n'est pas celle enregistrée à la ligne 1"),
        "{error}"
    );
    assert_french(&error.report());
    assert!(
        error.to_string().contains("SHA256:"),
        "the fingerprint is shown: {error}"
    );
    assert!(files(&sshd.drop_dir()).is_empty());
    assert!(transport.probe().await.is_err());

    // A known_hosts file that does not know the server at all.
    let unknown = sshd.dir.path().join("unrelated_known_hosts");
    std::fs::write(&unknown, "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBwmHzV7tzQ4D8bFZtU0XvOe2d7b8m5xS0y4Rk5sGm7b\n").unwrap();
    let transport = sftp_transport(&sshd, &unknown);
    let error = transport.publish("a.xml", b"x".to_vec()).await.unwrap_err();
    assert!(error.to_string().contains("n'est pas dans"), "{error}");
    assert_french(&error.report());
    assert!(files(&sshd.drop_dir()).is_empty());
}

#[tokio::test]
async fn a_server_down_is_a_transient_failure_and_the_retry_goes_through() {
    let mut sshd = Sshd::start();
    let config = FileDropConfig::new(sshd.drop_dir());
    let mut table = serde_json::to_value(json!({"directory": config.directory})).unwrap();
    table["sftp"] = sshd.sftp_table(&sshd.known_hosts());
    let connector = ConnectorKind::of::<FileDropConfig>()
        .build(table, &setup())
        .expect("a file-drop connector over SFTP");
    let ctx = Context::new(
        "clisson:demande-acte-naissance:1",
        "44043",
        "demande-acte-naissance",
        "sftp-test",
    );
    let document = json!({"nom": "DURAND"});

    sshd.stop();
    let error = connector.deliver(&document, &ctx).await.unwrap_err();
    assert!(!error.is_permanent(), "{error}");
    assert!(
        error
            .to_string()
            .contains("impossible de se connecter au serveur SSH"),
        "{error}"
    );
    assert_french(&error.report());
    assert!(connector.health().await.is_err());

    sshd.restart();
    let receipt = connector
        .deliver(&document, &ctx.clone().with_attempt(2))
        .await
        .unwrap_or_else(|e| panic!("{}\n{}", e.report(), sshd.log()));
    let name = receipt.reference.unwrap();
    assert_eq!(files(&sshd.drop_dir()), std::slice::from_ref(&name));
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sshd.drop_dir().join(&name)).unwrap()).unwrap();
    assert_eq!(written, document);
    connector.health().await.unwrap();
}

#[tokio::test]
async fn a_password_logs_in_and_a_wrong_one_is_refused() {
    let (sshd, user, password) = Sshd::start_with_password_user();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("password"), format!("{password}\n")).unwrap();
    let known_hosts = sshd.known_hosts();
    let with = |password_file: &str| {
        let config: SftpConfig = serde_json::from_value(json!({
            "host": "127.0.0.1",
            "port": sshd.port,
            "user": user,
            "password_file": password_file,
            "known_hosts": known_hosts,
        }))
        .unwrap();
        transport::build(
            &sshd.drop_dir(),
            Some(config),
            &Setup::new("sftp-test", dir.path()),
        )
        .expect("the SFTP configuration")
    };
    let transport = with("password");
    let outcome = transport.publish("NAI/p.xml", b"<x/>".to_vec()).await;
    assert_eq!(
        outcome.unwrap_or_else(|e| panic!("{}\n{}", e.report(), sshd.log())),
        Published::Written
    );
    assert_eq!(files(&sshd.drop_dir()), ["NAI/p.xml"]);

    std::fs::write(dir.path().join("wrong"), "not-the-password").unwrap();
    let error = with("wrong")
        .publish("NAI/q.xml", b"<x/>".to_vec())
        .await
        .unwrap_err();
    assert!(!error.is_permanent(), "{error}");
    assert!(
        error
            .to_string()
            .contains(&format!("refuse la connexion de l'utilisateur `{user}`")),
        "{error}"
    );
}

#[test]
fn sftp_configurations_are_checked_at_build() {
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, "").unwrap();
    let build = |sftp: serde_json::Value| {
        ConnectorKind::of::<FileDropConfig>()
            .build(json!({"directory": "/srv/import", "sftp": sftp}), &setup())
            .err()
            .expect("refused")
    };
    let error = build(json!({"host": "h", "user": "u", "known_hosts": known_hosts}));
    assert_eq!(error.key(), "sftp.password", "{error}");
    assert_french(&error.to_string());
    let error = build(
        json!({"host": "h", "user": "u", "password": "p", "private_key_file": "/k", "known_hosts": known_hosts}),
    );
    assert_eq!(error.key(), "sftp.private_key_file", "{error}");
    assert_french(&error.to_string());
    let error = build(
        json!({"host": "h", "user": "u", "password": "p", "known_hosts": dir.path().join("missing")}),
    );
    assert_eq!(error.key(), "sftp.known_hosts", "{error}");
    assert!(error.to_string().contains("ssh-keyscan -p 22 h"), "{error}");
    assert_french(&error.to_string());
    let error = build(
        json!({"host": "h", "user": "u", "private_key_file": dir.path().join("nokey"), "known_hosts": known_hosts}),
    );
    assert_eq!(error.key(), "sftp.private_key_file", "{error}");
    assert_french(&error.to_string());
    let error = build(
        json!({"host": "h", "user": "u", "password": "p", "known_hosts": known_hosts, "hots": 1}),
    );
    assert!(
        error.to_string().contains("unknown field `hots`"),
        "{error}"
    );
    // With checking off no known_hosts is needed; nothing connects at build.
    ConnectorKind::of::<FileDropConfig>()
        .build(json!({"directory": "/srv/import", "sftp": {"host": "h", "user": "u", "password": "p", "check_host_key": false}}), &setup())
        .expect("accepted");
}

/// Writes `size` bytes of a scrambled sequence in 1 MiB chunks; `last` replaces the last
/// byte (a file that differs from the other only there).
fn write_large_file(path: &Path, size: usize, last: Option<u8>) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut chunk = vec![0u8; 1024 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        for byte in &mut chunk[..n] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = (state >> 32) as u8;
        }
        left -= n;
        if left == 0 {
            if let Some(last) = last {
                chunk[n - 1] = last;
            }
        }
        file.write_all(&chunk[..n]).unwrap();
    }
}

fn sha256_of(path: &Path) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path).unwrap();
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).unwrap();
        if n == 0 {
            return hasher.finalize().to_vec();
        }
        hasher.update(&buffer[..n]);
    }
}

#[tokio::test]
async fn a_large_file_is_streamed_once_and_never_replaced() {
    const SIZE: usize = 50 * 1024 * 1024;
    let sshd = Sshd::start();
    let mut table = sshd.sftp_table(&sshd.known_hosts());
    table["timeout"] = json!("120s");
    let config: SftpConfig = serde_json::from_value(table).unwrap();
    let transport = transport::build_with(&sshd.drop_dir(), Some(config), &setup(), true)
        .expect("the SFTP configuration");
    let local = tempfile::tempdir().unwrap();
    let source = local.path().join("package.zip");
    write_large_file(&source, SIZE, None);

    let started = std::time::Instant::now();
    let outcome = transport
        .publish_file("dossiers/44043-DP-3f9a1c0b7e2d.zip", &source)
        .await
        .unwrap_or_else(|e| panic!("{}\n{}", e.report(), sshd.log()));
    eprintln!("50 MiB over SFTP in {:?}", started.elapsed());
    assert_eq!(outcome, Published::Written);
    let target = sshd.drop_dir().join("dossiers/44043-DP-3f9a1c0b7e2d.zip");
    assert_eq!(std::fs::metadata(&target).unwrap().len(), SIZE as u64);
    assert_eq!(sha256_of(&target), sha256_of(&source));

    // A redelivery finds the file and writes nothing.
    let modified = std::fs::metadata(&target).unwrap().modified().unwrap();
    assert_eq!(
        transport
            .publish_file("dossiers/44043-DP-3f9a1c0b7e2d.zip", &source)
            .await
            .unwrap(),
        Published::AlreadyThere
    );
    assert_eq!(
        std::fs::metadata(&target).unwrap().modified().unwrap(),
        modified
    );

    // Same size, last byte different: refused for good, the file untouched.
    let last = std::fs::read(&target).map(|bytes| bytes[SIZE - 1]).unwrap();
    let other = local.path().join("other.zip");
    write_large_file(&other, SIZE, Some(last ^ 0xA5));
    let error = transport
        .publish_file("dossiers/44043-DP-3f9a1c0b7e2d.zip", &other)
        .await
        .unwrap_err();
    assert!(error.is_permanent(), "{}", error.report());
    assert!(
        error.to_string().contains("autre contenu")
            || error.to_string().contains("contenu différent"),
        "{error}"
    );
    assert_eq!(sha256_of(&target), sha256_of(&source));

    // Taken away by the importer: the journal remembers it.
    std::fs::remove_file(&target).unwrap();
    assert_eq!(
        transport
            .publish_file("dossiers/44043-DP-3f9a1c0b7e2d.zip", &source)
            .await
            .unwrap(),
        Published::AlreadyThere
    );
    assert!(!target.exists());
    // Nothing but the journal is left: no temporary file.
    assert_eq!(
        files(&sshd.drop_dir()),
        [".aiguillage-published/dossiers/44043-DP-3f9a1c0b7e2d.zip.sha256"]
    );
}
