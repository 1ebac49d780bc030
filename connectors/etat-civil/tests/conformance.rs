//! The `etat-civil/cityweb` connector passes the SDK's conformance kit on a real import
//! directory (checks a directory cannot stage are skipped; the connector's own tests cover
//! its failures).

use std::path::Path;

use aiguillage_connector::testkit::{DirectoryTarget, Kit, Verdict};
use aiguillage_connector::{ConnectorKind, Setup};
use aiguillage_connector_etat_civil::EtatCivilConfig;
use serde_json::{json, Value};

#[tokio::test]
async fn the_etat_civil_connector_passes_the_conformance_kit() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let connector = ConnectorKind::of::<EtatCivilConfig>()
        .build(
            json!({ "directory": dir.path() }),
            &Setup::new("conformance", Path::new(".")),
        )
        .expect("a valid configuration");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/etat-civil/naissance-cpi-titulaire.expected.json");
    let sample: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).expect("the fixture exists"))
            .expect("valid JSON");
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
    report.assert_passed();
    for ran in [
        "idempotent",
        "cancellation safe",
        "no panic on hostile documents",
    ] {
        assert_eq!(report.verdict(ran), Some(&Verdict::Passed), "{report}");
    }
}
