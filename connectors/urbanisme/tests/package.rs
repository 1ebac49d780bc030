//! A package for each dossier type, checked from the outside: the zip's entries and their
//! order, dossier.json against the shipped JSON Schema, dossier.xml against the shipped
//! XSD with the real xmllint and read back into the same values, the manifest's sizes and
//! hashes recomputed.

mod common;

use aiguillage_connector_urbanisme::dossier_id;
use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha512};

fn sha512(bytes: &[u8]) -> String {
    Sha512::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks one zip package thoroughly; returns its dossier.json.
fn check_package(
    dir: &std::path::Path,
    dossier: &str,
    document: &Value,
    attachments: &[aiguillage_connector::Attachment],
) -> Value {
    assert_eq!(visible_files(dir), vec![format!("{dossier}.zip")]);
    let entries = zip_entries(&dir.join(format!("{dossier}.zip")));
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    let pieces = document["pieces"].as_array().unwrap();
    assert_eq!(names[0], "dossier.json");
    assert_eq!(names[1], "dossier.xml");
    assert_eq!(names.last(), Some(&"manifest.json"));
    assert_eq!(names.len(), pieces.len() + 3);

    // The pièces: named from their code and media type, their bytes untouched.
    for (n, piece) in pieces.iter().enumerate() {
        let code = piece["code"].as_str().unwrap();
        let attachment = attachments.iter().find(|a| a.field == code).unwrap();
        let ext = match attachment.content_type.as_str() {
            "application/pdf" => "pdf",
            "image/png" => "png",
            "image/jpeg" => "jpg",
            other => panic!("{other}"),
        };
        assert_eq!(entries[n + 2].0, format!("pieces/{code}.{ext}"));
        assert_eq!(entries[n + 2].1, attachment.content);
    }

    // dossier.json: the document, unchanged, plus what the connector adds.
    let json: Value = serde_json::from_slice(&entries[0].1).unwrap();
    let errors = json_schema_errors(&json);
    assert!(
        errors.is_empty(),
        "dossier.json against the schema: {errors:#?}"
    );
    assert_eq!(json["format"], "aiguillage/urbanisme-dossier");
    assert_eq!(json["version"], 1);
    assert_eq!(json["dossier"], dossier);
    let mut stripped = json.clone();
    for key in ["format", "version", "dossier"] {
        stripped.as_object_mut().unwrap().remove(key);
    }
    for parcelle in stripped["terrain"]["parcelles"].as_array_mut().unwrap() {
        assert!(parcelle
            .as_object_mut()
            .unwrap()
            .remove("reference")
            .is_some());
    }
    for piece in stripped["pieces"].as_array_mut().unwrap() {
        for key in ["chemin", "type_media", "taille", "sha512"] {
            assert!(
                piece.as_object_mut().unwrap().remove(key).is_some(),
                "{key}"
            );
        }
    }
    assert_eq!(
        &stripped, document,
        "dossier.json holds every key of the document unchanged"
    );
    // Keys sorted, pretty-printed.
    let text = String::from_utf8(entries[0].1.clone()).unwrap();
    assert!(text.starts_with("{\n  \"cerfa\": {"), "{text}");
    assert!(text.ends_with("}\n"));

    // dossier.xml: valid against the XSD (real xmllint) and the same values.
    xmllint(&entries[1].1).unwrap_or_else(|why| panic!("dossier.xml against the XSD: {why}"));
    assert_eq!(
        xml_to_value(&entries[1].1),
        json,
        "dossier.xml reads back as dossier.json"
    );

    // manifest.json: every other file, in order, with sizes and hashes recomputed here.
    let manifest: Value = serde_json::from_slice(&entries.last().unwrap().1).unwrap();
    assert_eq!(manifest["format"], "aiguillage/urbanisme-dossier");
    assert_eq!(manifest["version"], 1);
    assert_eq!(manifest["dossier"], dossier);
    assert_eq!(manifest["identifiant"], document["identifiant"]);
    let fichiers = manifest["fichiers"].as_array().unwrap();
    assert_eq!(fichiers.len(), entries.len() - 1);
    for (fichier, (name, bytes)) in fichiers.iter().zip(&entries) {
        assert_eq!(fichier["chemin"], name.as_str());
        assert_eq!(fichier["taille"], bytes.len() as u64);
        assert_eq!(fichier["sha512"], sha512(bytes), "{name}");
        let expected = match name.rsplit('.').next().unwrap() {
            "json" => "application/json",
            "xml" => "application/xml",
            "pdf" => "application/pdf",
            "png" => "image/png",
            _ => "image/jpeg",
        };
        assert_eq!(fichier["type_media"], expected);
    }
    // dossier.json announces the same hashes for the pièces.
    for (piece, fichier) in json["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&fichiers[2..])
    {
        assert_eq!(piece["chemin"], fichier["chemin"]);
        assert_eq!(piece["sha512"], fichier["sha512"]);
        assert_eq!(piece["taille"], fichier["taille"]);
    }
    json
}

#[tokio::test]
async fn a_package_for_each_dossier_type() {
    for type_dossier in TYPES {
        let dir = tempfile::tempdir().unwrap();
        let connector = connector(dir.path(), json!({}));
        let id = format!("clisson-sevre-maine:depot:{type_dossier}-1");
        let (document, attachments) = sample(type_dossier, &id);
        let receipt = connector
            .deliver(&document, &context(&id, attachments.clone()))
            .await
            .unwrap_or_else(|e| panic!("{type_dossier}: {}", e.report()));
        let dossier = dossier_id("44043", type_dossier, &id);
        assert_eq!(receipt.reference.as_deref(), Some(dossier.as_str()));
        let json = check_package(dir.path(), &dossier, &document, &attachments);
        assert_eq!(json["type_dossier"], type_dossier);
        assert_eq!(
            json["terrain"]["parcelles"][0]["reference"],
            "44043000ZK0087"
        );
        assert_eq!(
            json["terrain"]["parcelles"][1]["reference"],
            "44043000ZK0088"
        );
    }
}

#[tokio::test]
async fn the_fixtures_deliver_and_their_packages_check_out() {
    for (name, type_dossier) in [("dp-sci-ravalement", "DP"), ("pcmi-maison-couple", "PCMI")] {
        let dir = tempfile::tempdir().unwrap();
        let connector = connector(dir.path(), json!({}));
        let document = fixture(name);
        let id = document["identifiant"].as_str().unwrap().to_owned();
        let attachments = fixture_attachments(name);
        let receipt = connector
            .deliver(&document, &context(&id, attachments.clone()))
            .await
            .unwrap_or_else(|e| panic!("{name}: {}", e.report()));
        let dossier = receipt.reference.clone().unwrap();
        assert_eq!(dossier, dossier_id("44043", type_dossier, &id));
        // The AEE's data, for the delivered status event.
        assert_eq!(receipt.details["dossier"], dossier);
        assert_eq!(
            receipt.details["date_depot"],
            document["date_depot"].as_str().unwrap()
        );
        assert_eq!(receipt.details.len(), 2);
        check_package(dir.path(), &dossier, &document, &attachments);
    }
}

#[tokio::test]
async fn zip_entries_are_stored_and_dated_at_the_deposit() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path(), json!({}));
    let document = fixture("pcmi-maison-couple");
    let id = document["identifiant"].as_str().unwrap().to_owned();
    let dossier = connector
        .deliver(
            &document,
            &context(&id, fixture_attachments("pcmi-maison-couple")),
        )
        .await
        .unwrap()
        .reference
        .unwrap();
    // Read by Python's zipfile, independently of the zip crate that wrote it.
    let script = r#"
import hashlib, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
out = []
for info in z.infolist():
    out.append({"name": info.filename, "stored": info.compress_type == zipfile.ZIP_STORED,
                "date": list(info.date_time), "extra": len(info.extra),
                "sha512": hashlib.sha512(z.read(info)).hexdigest()})
print(json.dumps(out))
"#;
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.path().join(format!("{dossier}.zip")))
        .output()
        .expect("python3 is installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let entries: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let manifest: Value = serde_json::from_slice(
        &zip_entries(&dir.path().join(format!("{dossier}.zip")))
            .pop()
            .unwrap()
            .1,
    )
    .unwrap();
    // dossier.json, dossier.xml, the eight pièces of the PCMI, then the manifest.
    assert_eq!(entries.len(), 11);
    assert_eq!(
        entries.len(),
        manifest["fichiers"].as_array().unwrap().len() + 1
    );
    for (n, entry) in entries.iter().enumerate() {
        assert_eq!(entry["stored"], true, "{entry}");
        // date_depot 2026-12-02T11:08:54+01:00, in its own offset.
        assert_eq!(entry["date"], json!([2026, 12, 2, 11, 8, 54]), "{entry}");
        assert_eq!(entry["extra"], 0, "no extra field that could vary: {entry}");
        if n < 5 {
            assert_eq!(manifest["fichiers"][n]["sha512"], entry["sha512"]);
        }
    }
}

#[tokio::test]
async fn directory_packages_have_the_same_files_and_the_manifest_last() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path(), json!({ "package": "directory" }));
    let document = fixture("dp-sci-ravalement");
    let id = document["identifiant"].as_str().unwrap().to_owned();
    let attachments = fixture_attachments("dp-sci-ravalement");
    let dossier = connector
        .deliver(&document, &context(&id, attachments.clone()))
        .await
        .unwrap()
        .reference
        .unwrap();
    let files = visible_files(dir.path());
    assert_eq!(
        files,
        [
            "dossier.json",
            "dossier.xml",
            "manifest.json",
            "pieces/DP1.pdf",
            "pieces/DP4.pdf",
            "pieces/DP7.jpg"
        ]
        .map(|f| format!("{dossier}/{f}"))
    );
    let root = dir.path().join(&dossier);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(root.join("manifest.json")).unwrap()).unwrap();
    let fichiers = manifest["fichiers"].as_array().unwrap();
    assert_eq!(fichiers.len(), 5);
    let mut latest_other = std::time::SystemTime::UNIX_EPOCH;
    for fichier in fichiers {
        let path = root.join(fichier["chemin"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(fichier["sha512"], sha512(&bytes));
        assert_eq!(fichier["taille"], bytes.len() as u64);
        latest_other = latest_other.max(std::fs::metadata(&path).unwrap().modified().unwrap());
    }
    let json: Value =
        serde_json::from_slice(&std::fs::read(root.join("dossier.json")).unwrap()).unwrap();
    assert!(json_schema_errors(&json).is_empty());
    xmllint(&std::fs::read(root.join("dossier.xml")).unwrap()).unwrap();
    // Published last: its presence means the directory is complete.
    let manifest_time = std::fs::metadata(root.join("manifest.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert!(manifest_time >= latest_other);
}

#[test]
fn a_directory_package_lists_the_manifest_last() {
    let document = fixture("dp-sci-ravalement");
    let id = document["identifiant"].as_str().unwrap().to_owned();
    let attachments = fixture_attachments("dp-sci-ravalement");
    let depot = aiguillage_connector_urbanisme::Depot::from_document(&document).unwrap();
    let limits = aiguillage_connector_urbanisme::Limits {
        max_piece_bytes: 1 << 20,
        max_package_bytes: 1 << 22,
    };
    let valid =
        aiguillage_connector_urbanisme::validate(&document, depot, &id, &attachments, limits)
            .unwrap();
    let work = tempfile::tempdir().unwrap();
    let package = aiguillage_connector_urbanisme::package::build(
        &document,
        &valid,
        aiguillage_connector_urbanisme::PackageFormat::Directory,
        work.path(),
    )
    .unwrap();
    let files: Vec<String> = package.files().into_iter().map(|(r, _)| r).collect();
    let dossier = package.dossier().to_owned();
    assert_eq!(files.first().unwrap(), &format!("{dossier}/dossier.json"));
    assert_eq!(files.last().unwrap(), &format!("{dossier}/manifest.json"));
    assert_eq!(files.len(), 6);
    // The work directory goes with the package.
    let path = package.path();
    assert!(path.is_dir());
    drop(package);
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
}
