//! The `etat-civil/cityweb` connector passes the SDK's conformance kit on a real import
//! directory (checks a directory cannot stage are skipped; the connector's own tests cover
//! its failures).

mod common;

use aiguillage_connector::testkit::{self, DirectoryTarget, Kit};
use aiguillage_connector_etat_civil::EtatCivilConfig;
use serde_json::json;

#[tokio::test]
async fn the_etat_civil_connector_passes_the_conformance_kit() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let connector = testkit::build::<EtatCivilConfig>(json!({ "directory": dir.path() }));
    let sample = common::fixture("naissance-cpi-titulaire");
    // A whole Cityweb file: the XML declaration through the root's closing tag.
    let target = DirectoryTarget::new(dir.path()).complete_when(|bytes| {
        bytes.starts_with(b"<?xml") && bytes.trim_ascii_end().ends_with(b">")
    });
    let report = Kit::new(connector, &target)
        .sample_for(move |key| {
            // The mapping writes the envelope id as the identifiant.
            let mut document = sample.clone();
            document["identifiant"] = key.into();
            document
        })
        .run()
        .await;
    report.assert_passed_including(&[
        "idempotent",
        "cancellation safe",
        "no panic on hostile documents",
    ]);
}
