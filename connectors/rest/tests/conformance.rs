//! The `rest` connector passes the SDK's conformance kit against the kit's HTTP stub.

use std::path::Path;
use std::time::Duration;

use aiguillage_connector::testkit::{HttpStub, Kit};
use aiguillage_connector::{ConnectorKind, Setup};
use aiguillage_connector_rest::RestConfig;
use serde_json::json;

#[tokio::test]
async fn the_rest_connector_passes_the_conformance_kit() {
    let stub = HttpStub::start().await;
    let connector = ConnectorKind::of::<RestConfig>()
        .build(
            json!({ "url": stub.url(), "timeout": "2s", "reference_pointer": "/id" }),
            &Setup::new("conformance", Path::new(".")),
        )
        .expect("a valid configuration");
    let sample = json!({
        "id": "portail:inscription-cantine:12",
        "commune": "44043",
        "form": "inscription-cantine",
        "formdata": { "fields": { "nom": "Durand", "prenom": "Anne" } },
    });
    Kit::new(connector, &stub)
        .sample(sample)
        .timeout(Duration::from_secs(2))
        .run()
        .await
        .assert_passed();
}
