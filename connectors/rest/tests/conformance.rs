//! The `rest` connector passes the SDK's conformance kit against the kit's HTTP stub.

use std::time::Duration;

use aiguillage_connector::testkit::{self, HttpStub, Kit};
use aiguillage_connector_rest::RestConfig;
use serde_json::json;

#[tokio::test]
async fn the_rest_connector_passes_the_conformance_kit() {
    let stub = HttpStub::start().await;
    let connector = testkit::build::<RestConfig>(
        json!({ "url": stub.url(), "timeout": "2s", "reference_pointer": "/id" }),
    );
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
