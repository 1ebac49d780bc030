//! The `file-drop` connector passes the SDK's conformance kit, its target being a real
//! directory. A directory cannot be made to answer "503" or hang (and permissions do not
//! stop root, who runs CI): those checks are skipped, the report says so, and the
//! connector's own tests cover its failures.

use aiguillage_connector::testkit::{self, DirectoryTarget, Kit};
use aiguillage_connector_file_drop::FileDropConfig;
use serde_json::json;

#[tokio::test]
async fn the_file_drop_connector_passes_the_conformance_kit() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let connector = testkit::build::<FileDropConfig>(json!({ "directory": dir.path() }));
    // A whole file is JSON ending with a newline.
    let target = DirectoryTarget::new(dir.path()).complete_when(|bytes| {
        bytes.ends_with(b"\n") && serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
    });
    let report = Kit::new(connector, &target)
        .sample(json!({ "commune": "44043", "fields": { "nom": "Durand", "prenom": "Anne" } }))
        .run()
        .await;
    report.assert_passed_including(&[
        "idempotent",
        "cancellation safe",
        "no panic on hostile documents",
    ]);
}
