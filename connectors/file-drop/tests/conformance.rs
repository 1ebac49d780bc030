//! The `file-drop` connector passes the SDK's conformance kit, its target being a real
//! directory. A directory cannot be made to answer "503" or hang (and permissions do not
//! stop root, who runs CI): those checks are skipped, the report says so, and the
//! connector's own tests cover its failures.

use std::path::{Path, PathBuf};

use aiguillage_connector::testkit::{Answer, Kit, Target};
use aiguillage_connector::{async_trait, ConnectorKind, Setup};
use aiguillage_connector_file_drop::FileDropConfig;
use serde_json::json;

/// The import directory, seen by the kit.
struct Directory(PathBuf);

impl Directory {
    /// The published files of `key`: the default name `{id}.json` makes the key safe by
    /// replacing `:` with `_` and appending `-` and a hash.
    fn files(&self, key: &str) -> Vec<PathBuf> {
        let prefix = format!("{}-", key.replace(':', "_"));
        std::fs::read_dir(&self.0)
            .expect("the directory is readable")
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with(&prefix))
            })
            .collect()
    }
}

#[async_trait]
impl Target for Directory {
    async fn effects(&self, key: &str) -> usize {
        self.files(key).len()
    }

    async fn partial(&self, key: &str) -> bool {
        self.files(key).iter().any(|path| {
            let bytes = std::fs::read(path).unwrap_or_default();
            !bytes.ends_with(b"\n") || serde_json::from_slice::<serde_json::Value>(&bytes).is_err()
        })
    }

    async fn stage(&self, answer: Answer) -> bool {
        answer == Answer::Accept
    }
}

#[tokio::test]
async fn the_file_drop_connector_passes_the_conformance_kit() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let connector = ConnectorKind::of::<FileDropConfig>()
        .build(
            json!({ "directory": dir.path() }),
            &Setup::new("conformance", Path::new(".")),
        )
        .expect("a valid configuration");
    let target = Directory(dir.path().to_owned());
    let report = Kit::new(connector, &target)
        .sample(json!({ "commune": "44043", "fields": { "nom": "Durand", "prenom": "Anne" } }))
        .run()
        .await;
    report.assert_passed();
    // The checks a directory can stage did run.
    for ran in [
        "idempotent",
        "cancellation safe",
        "no panic on hostile documents",
    ] {
        assert_eq!(
            report.verdict(ran),
            Some(&aiguillage_connector::testkit::Verdict::Passed),
            "{report}"
        );
    }
}
