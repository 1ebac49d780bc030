//! The connector over SFTP, against a real OpenSSH server started by the test: the golden
//! titres land in the server's import directory, valid against the PES schema, once, and a
//! file the software already took away is not written again on a redelivery.

mod common;
#[path = "../../file-drop/tests/common/sshd.rs"]
mod sshd;

use std::sync::Arc;

use aiguillage_connector::numbering::MemoryNumbering;
use aiguillage_connector_facturation::PesConfig;
use common::{context, fixtures, xmllint, SIRET};
use serde_json::json;
use sshd::Sshd;

fn visible_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.') && e.path().is_file())
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn golden_titres_land_on_the_sftp_server_once_and_valid() {
    let sshd = Sshd::start();
    let connector = sshd
        .connector::<PesConfig>(
            json!({
                "id_coll": SIRET, "cod_col": "043", "cod_bud": "00", "id_post": "044012",
            }),
            "gorges-finances",
        )
        .await;
    let numbering = Arc::new(MemoryNumbering::default());
    for (name, document) in fixtures() {
        let ctx = context(&document, &numbering);
        let receipt = connector
            .deliver(&document, &ctx)
            .await
            .unwrap_or_else(|e| panic!("{name}: {}\n{}", e.report(), sshd.log()));
        let again = connector
            .deliver(&document, &ctx.with_attempt(2))
            .await
            .unwrap();
        assert_eq!(receipt, again);
    }
    let written = visible_files(&sshd.drop_dir());
    assert_eq!(
        written.len(),
        fixtures().len(),
        "one file per titre, no temporary file left"
    );
    xmllint(&written).unwrap();

    // The software imports a file and removes it; a redelivery does not write it again.
    let (name, document) = fixtures().remove(0);
    let before = visible_files(&sshd.drop_dir());
    for file in &before {
        std::fs::remove_file(file).unwrap();
    }
    connector
        .deliver(&document, &context(&document, &numbering).with_attempt(3))
        .await
        .unwrap_or_else(|e| panic!("{name}: {}", e.report()));
    assert!(
        visible_files(&sshd.drop_dir()).is_empty(),
        "{name} was written again"
    );
}
