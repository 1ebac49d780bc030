//! The `facturation/pes` connector passes the SDK's conformance kit on a real import
//! directory, numbering with the SDK's in-memory numbering (checks a directory cannot
//! stage are skipped; the connector's own tests cover its failures).

mod common;

use std::sync::Arc;

use aiguillage_connector::numbering::MemoryNumbering;
use aiguillage_connector::testkit::{self, DirectoryTarget, Kit};
use aiguillage_connector_facturation::PesConfig;
use serde_json::json;

#[tokio::test]
async fn the_facturation_connector_passes_the_conformance_kit() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let connector = testkit::build::<PesConfig>(json!({
        "directory": dir.path(),
        "id_coll": "21440043800005",
        "cod_col": "043",
        "cod_bud": "00",
        "id_post": "044012",
        // Named after the envelope id, so that the kit finds each démarche's file.
        "file_name": "{id}.xml",
    }));
    let sample = common::fixture("dechetterie-carte");
    let target = DirectoryTarget::new(dir.path()).complete_when(|bytes| {
        bytes.starts_with(b"<?xml") && bytes.trim_ascii_end().ends_with(b"PES_Aller>")
    });
    let numbering = Arc::new(MemoryNumbering::default());
    let report = Kit::new(connector, &target)
        .sample_for(move |key| {
            // The mapping writes the envelope id as the titre's reference.
            let mut document = sample.clone();
            document["reference"] = key.into();
            document
        })
        .prepare(move |ctx| ctx.with_numbering(numbering.clone()))
        .run()
        .await;
    report.assert_passed_including(&[
        "idempotent",
        "cancellation safe",
        "no panic on hostile documents",
    ]);
}
