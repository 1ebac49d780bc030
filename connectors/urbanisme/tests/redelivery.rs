//! The same envelope twice: the same bytes, published once.

mod common;

use aiguillage_connector::transport::{LocalDirectory, Published, Transport};
use aiguillage_connector_urbanisme::{package, validate, Depot, Limits, PackageFormat};
use common::*;
use serde_json::json;

#[tokio::test]
async fn the_same_envelope_twice_gives_one_package() {
    for format in ["zip", "directory"] {
        let dir = tempfile::tempdir().unwrap();
        let connector = connector(dir.path(), json!({ "package": format }));
        let document = fixture("pcmi-maison-couple");
        let id = document["identifiant"].as_str().unwrap().to_owned();
        let attachments = fixture_attachments("pcmi-maison-couple");
        let first = connector
            .deliver(&document, &context(&id, attachments.clone()))
            .await
            .unwrap();
        let files = visible_files(dir.path());
        let bytes: Vec<Vec<u8>> = files
            .iter()
            .map(|f| std::fs::read(dir.path().join(f)).unwrap())
            .collect();
        let again = connector
            .deliver(&document, &context(&id, attachments).with_attempt(2))
            .await
            .unwrap();
        assert_eq!(first, again, "{format}");
        assert_eq!(visible_files(dir.path()), files, "{format}: nothing more");
        for (file, before) in files.iter().zip(&bytes) {
            assert_eq!(&std::fs::read(dir.path().join(file)).unwrap(), before);
        }
        if format == "zip" {
            assert_eq!(files.len(), 1);
        }
    }
}

#[tokio::test]
async fn two_builds_are_byte_identical_and_the_second_publish_finds_the_first() {
    let document = fixture("dp-sci-ravalement");
    let id = document["identifiant"].as_str().unwrap().to_owned();
    let attachments = fixture_attachments("dp-sci-ravalement");
    let limits = Limits {
        max_piece_bytes: 1 << 20,
        max_package_bytes: 1 << 22,
    };
    let build = || {
        let depot = Depot::from_document(&document).unwrap();
        let valid = validate(&document, depot, &id, &attachments, limits).unwrap();
        let work = std::env::temp_dir();
        let package = package::build(&document, &valid, PackageFormat::Zip, &work).unwrap();
        let bytes = std::fs::read(package.path()).unwrap();
        (package.name(), bytes)
    };
    let (name, first) = build();
    // A second later: the entries carry the deposit date, not the time of writing.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (again_name, again) = build();
    assert_eq!(name, again_name);
    assert!(first == again, "the same envelope gives the same bytes");

    let dir = tempfile::tempdir().unwrap();
    let transport = LocalDirectory::open(dir.path().to_owned()).unwrap();
    assert_eq!(
        transport.publish(&name, first).await.unwrap(),
        Published::Written
    );
    assert_eq!(
        transport.publish(&name, again).await.unwrap(),
        Published::AlreadyThere
    );
    assert_eq!(visible_files(dir.path()), vec![name]);
}

#[tokio::test]
async fn a_package_taken_away_is_not_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path(), json!({}));
    let document = fixture("dp-sci-ravalement");
    let id = document["identifiant"].as_str().unwrap().to_owned();
    let attachments = fixture_attachments("dp-sci-ravalement");
    let dossier = connector
        .deliver(&document, &context(&id, attachments.clone()))
        .await
        .unwrap()
        .reference
        .unwrap();
    // The instruction service imports the package and removes it.
    std::fs::remove_file(dir.path().join(format!("{dossier}.zip"))).unwrap();
    connector
        .deliver(&document, &context(&id, attachments))
        .await
        .unwrap();
    assert!(
        visible_files(dir.path()).is_empty(),
        "the journal remembers it"
    );
}
