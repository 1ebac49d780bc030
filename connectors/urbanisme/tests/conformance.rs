//! The `urbanisme/dossier` connector passes the SDK's conformance kit on a real import
//! directory. The package is named after the dossier identifier (not the envelope id), so
//! the target finds a démarche's package by that identifier, and gives the pièces found in
//! the zip back to the "attachments intact" check.

mod common;

use std::path::PathBuf;

use aiguillage_connector::testkit::{Answer, Kit, Target};
use aiguillage_connector::{async_trait, Attachment};
use aiguillage_connector_urbanisme::dossier_id;
use common::*;
use serde_json::json;

struct PackageDirectory {
    root: PathBuf,
}

impl PackageDirectory {
    fn package(&self, key: &str) -> PathBuf {
        self.root
            .join(format!("{}.zip", dossier_id("44043", "DP", key)))
    }
}

#[async_trait]
impl Target for PackageDirectory {
    async fn effects(&self, key: &str) -> usize {
        let name = format!("{}.zip", dossier_id("44043", "DP", key));
        visible_files(&self.root)
            .iter()
            .filter(|f| **f == name)
            .count()
    }

    async fn partial(&self, key: &str) -> bool {
        let path = self.package(key);
        path.exists()
            && std::fs::File::open(&path)
                .ok()
                .and_then(|file| zip::ZipArchive::new(file).ok())
                .is_none_or(|zip| zip.file_names().all(|name| name != "manifest.json"))
    }

    async fn attachments(&self, key: &str) -> Option<Vec<Vec<u8>>> {
        let path = self.package(key);
        if !path.exists() {
            return Some(Vec::new());
        }
        Some(
            zip_entries(&path)
                .into_iter()
                .filter(|(name, _)| name.starts_with("pieces/"))
                .map(|(_, bytes)| bytes)
                .collect(),
        )
    }

    async fn stage(&self, answer: Answer) -> bool {
        answer == Answer::Accept
    }
}

#[tokio::test]
async fn the_urbanisme_connector_passes_the_conformance_kit() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path(), json!({}));
    let sample = fixture("dp-sci-ravalement");
    let files = fixture_attachments("dp-sci-ravalement");
    let target = PackageDirectory {
        root: dir.path().to_owned(),
    };
    // Big pièces holding every byte value, for the "attachments intact" check.
    let mut big_pdf = b"%PDF-1.7\n".to_vec();
    big_pdf.extend((0..=255u8).cycle().take(70_000));
    let intact = vec![
        Attachment::new("DP1", "plan.pdf", "application/pdf", big_pdf),
        Attachment::new(
            "DP4",
            "facades.pdf",
            "application/pdf",
            files[1].content.clone(),
        ),
        Attachment::new("DP7", "photo.jpg", "image/jpeg", jpeg()),
    ];
    let report = Kit::new(connector, &target)
        .sample_for(move |key| {
            let mut document = sample.clone();
            document["identifiant"] = key.into();
            document
        })
        .prepare(move |ctx| ctx.with_attachments(files.clone()))
        .attachments(intact)
        .run()
        .await;
    report.assert_passed_including(&[
        "accepts the sample",
        "idempotent",
        "cancellation safe",
        "attachments intact",
        "no panic on hostile documents",
    ]);
}
