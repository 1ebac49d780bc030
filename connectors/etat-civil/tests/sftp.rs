//! The connector over SFTP, against a real OpenSSH server started by the test: the golden
//! requests land in the server's import directory, valid against the schema, once.

mod common;
#[path = "../../file-drop/tests/common/sshd.rs"]
mod sshd;

use aiguillage_connector::Context;
use aiguillage_connector_etat_civil::EtatCivilConfig;
use common::{fixtures, xmllint};
use serde_json::json;
use sshd::Sshd;

#[tokio::test]
async fn golden_requests_land_on_the_sftp_server_once_and_valid() {
    let sshd = Sshd::start();
    let connector = sshd
        .connector::<EtatCivilConfig>(
            json!({
                "encoding": "iso-8859-1",
            }),
            "gorges-cityweb",
        )
        .await;
    let mut written = Vec::new();
    for (name, document) in fixtures() {
        let id = document["identifiant"].as_str().unwrap();
        let ctx = Context::new(id, "44064", "demande-acte", "gorges-cityweb");
        let receipt = connector
            .deliver(&document, &ctx)
            .await
            .unwrap_or_else(|e| panic!("{name}: {}\n{}", e.report(), sshd.log()));
        // A redelivery finds the file and writes nothing.
        let again = connector
            .deliver(&document, &ctx.with_attempt(2))
            .await
            .unwrap();
        assert_eq!(receipt, again);
        written.push(sshd.drop_dir().join(receipt.reference.unwrap()));
    }
    assert_eq!(written.len(), 4);
    for path in &written {
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.starts_with(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"));
    }
    xmllint(&written).unwrap();
    let count = walk(&sshd.drop_dir(), false);
    assert_eq!(count, 4, "one file per request, no temporary file left");
    assert_eq!(
        walk(&sshd.drop_dir(), true),
        8,
        "and one journal entry each"
    );

    // The software imports a file and removes it; a redelivery does not write it again.
    let (name, document) = fixtures().remove(0);
    std::fs::remove_file(&written[0]).unwrap();
    let id = document["identifiant"].as_str().unwrap();
    let ctx = Context::new(id, "44064", "demande-acte", "gorges-cityweb").with_attempt(3);
    connector
        .deliver(&document, &ctx)
        .await
        .unwrap_or_else(|e| panic!("{name}: {}", e.report()));
    assert!(!written[0].exists(), "{name} was written again");
    assert_eq!(walk(&sshd.drop_dir(), false), 3);
}

/// Files under `dir`; `hidden`: the journal's too.
fn walk(dir: &std::path::Path, hidden: bool) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|entry| hidden || !entry.file_name().to_string_lossy().starts_with('.'))
        .map(|entry| {
            if entry.path().is_dir() {
                walk(&entry.path(), hidden)
            } else {
                1
            }
        })
        .sum()
}
