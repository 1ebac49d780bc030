//! The connector over SFTP, against a real OpenSSH server started by the test: the package
//! lands in the server's import directory whole, once, in both package formats.

mod common;
#[path = "../../file-drop/tests/common/sshd.rs"]
mod sshd;

use common::*;
use serde_json::{json, Value};
use sshd::Sshd;

#[tokio::test]
async fn packages_land_on_the_sftp_server_once() {
    let sshd = Sshd::start();
    for format in ["zip", "directory"] {
        let connector = connector(
            &sshd.drop_dir(),
            json!({ "package": format, "sftp": sshd.sftp_table(&sshd.known_hosts()) }),
        );
        connector
            .health()
            .await
            .unwrap_or_else(|e| panic!("{}\n{}", e.report(), sshd.log()));
        let mut document = fixture("pcmi-maison-couple");
        let id = format!("clisson-sevre-maine:depot-permis-construire:sftp-{format}");
        document["identifiant"] = json!(id);
        let attachments = fixture_attachments("pcmi-maison-couple");
        let receipt = connector
            .deliver(&document, &context(&id, attachments.clone()))
            .await
            .unwrap_or_else(|e| panic!("{format}: {}\n{}", e.report(), sshd.log()));
        let again = connector
            .deliver(&document, &context(&id, attachments).with_attempt(2))
            .await
            .unwrap();
        assert_eq!(receipt, again);
        let dossier = receipt.reference.unwrap();
        let manifest: Value = if format == "zip" {
            let path = sshd.drop_dir().join(format!("{dossier}.zip"));
            serde_json::from_slice(&zip_entries(&path).pop().unwrap().1).unwrap()
        } else {
            let path = sshd.drop_dir().join(&dossier).join("manifest.json");
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
        };
        assert_eq!(manifest["dossier"], dossier.as_str());
        // dossier.json, dossier.xml and the eight pièces of the PCMI.
        assert_eq!(manifest["fichiers"].as_array().unwrap().len(), 10);
    }
    let files = visible_files(&sshd.drop_dir());
    assert_eq!(
        files.len(),
        1 + 11,
        "one zip, one directory of 11 files: {files:?}"
    );
}
