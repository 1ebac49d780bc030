//! The `webhook` connector: its signature matches an HMAC computed independently, it
//! refuses a bad configuration by naming the key, and it passes the SDK's conformance kit
//! against the kit's HTTP stub.

use std::path::Path;
use std::time::Duration;

use aiguillage_connector::testkit::{assert_french, HttpStub, Kit};
use aiguillage_connector::{ConnectorKind, Setup};
use aiguillage_connector_webhook::{sign, WebhookConfig};
use serde_json::json;

fn setup() -> Setup {
    Setup::new("astreinte-voirie", Path::new("."))
}

#[test]
fn the_signature_is_the_hmac_of_timestamp_dot_body() {
    // Computed with Python's standard library:
    // hmac.new(b"0123456789abcdef-secret", b'1764410000.{"nom":"Durand"}', hashlib.sha256).hexdigest()
    assert_eq!(
        sign(
            b"0123456789abcdef-secret",
            1_764_410_000,
            br#"{"nom":"Durand"}"#
        ),
        "t=1764410000,v1=e57fc7ba54f9edbd82366572a2dfeadf4028fdda67a084e830bd60bb905745cc"
    );
}

#[test]
fn a_bad_configuration_names_its_key() {
    let kind = ConnectorKind::of::<WebhookConfig>();
    let refused = |table| kind.build(table, &setup()).err().expect("refused");
    let error = refused(json!({ "url": "ftp://example.org", "secret": "0123456789abcdef" }));
    assert_eq!(error.key(), "url");
    // The operator reads these in `aiguillage check`: in French, like every reason.
    assert_french(&error.to_string());
    let error = refused(json!({ "url": "https://example.org/hook", "secret": "short" }));
    assert_eq!(error.key(), "secret");
    assert_french(&error.to_string());
    let error = refused(json!({ "url": "https://example.org/hook" }));
    assert_eq!(error.key(), "secret");
    assert_french(&error.to_string());
    let error = refused(
        json!({ "url": "https://example.org/hook", "secret": "0123456789abcdef", "timeout": "0s" }),
    );
    assert_eq!(error.key(), "timeout");
    assert_french(&error.to_string());
}

#[tokio::test]
async fn the_webhook_connector_passes_the_conformance_kit() {
    let stub = HttpStub::start().await;
    let connector = ConnectorKind::of::<WebhookConfig>()
        .build(
            json!({ "url": stub.url(), "secret": "0123456789abcdef-secret", "timeout": "2s" }),
            &setup(),
        )
        .expect("a valid configuration");
    Kit::new(connector, &stub)
        .sample(
            json!({ "id": "portail:signalement-voirie:7", "fields": { "lieu": "rue du Port" } }),
        )
        .timeout(Duration::from_secs(2))
        .run()
        .await
        .assert_passed();
}
