//! The `file-drop` connector against a real directory.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use aiguillage_connector::testkit::assert_french;
use aiguillage_connector::{ConfigError, Connector, ConnectorError, ConnectorKind, Context, Setup};
use aiguillage_connector_file_drop::{FileDropConfig, FileDropConnector};
use serde_json::json;

fn setup() -> Setup {
    Setup::new("depot-etat-civil", "/nonexistent-config-dir")
}

fn connector(directory: &Path) -> FileDropConnector {
    FileDropConnector::new(FileDropConfig::new(directory), &setup()).unwrap()
}

fn context(id: &str) -> Context {
    Context::new(id, "44043", "demande-acte-naissance", "depot-etat-civil")
}

fn document(n: u32) -> serde_json::Value {
    json!({"id": n, "formdata": {"nom": "Dupont", "prénom": "Zoé"}})
}

/// Every file under `directory`, relative, with `/` separators.
fn files(directory: &Path) -> Vec<String> {
    fn walk(root: &Path, directory: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap();
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(directory, directory, &mut out);
    out.sort();
    out
}

fn assert_no_temporary_files(directory: &Path) {
    let hidden: Vec<_> = files(directory)
        .into_iter()
        .filter(|file| file.split('/').any(|part| part.starts_with('.')))
        .collect();
    assert!(hidden.is_empty(), "left behind: {hidden:?}");
}

fn build_error(config: serde_json::Value, setup: &Setup) -> ConfigError {
    ConnectorKind::of::<FileDropConfig>()
        .build(config, setup)
        .err()
        .expect("the configuration is refused")
}

#[tokio::test]
async fn writes_the_document_under_the_default_name() {
    let dir = tempfile::tempdir().unwrap();
    let receipt = connector(dir.path())
        .deliver(&document(1), &context("abc-42"))
        .await
        .unwrap();
    assert_eq!(receipt.reference.as_deref(), Some("abc-42.json"));
    let text = std::fs::read_to_string(dir.path().join("abc-42.json")).unwrap();
    assert!(text.ends_with("}\n"), "{text}");
    assert!(
        text.contains("\n  \"formdata\""),
        "pretty by default: {text}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed, document(1));
    assert_eq!(files(dir.path()), ["abc-42.json"]);
}

#[tokio::test]
async fn the_template_and_compact_output_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let config = json!({
        "directory": dir.path(),
        "file_name": "{commune}_{form}_{id}.json",
        "pretty": false,
    });
    let connector = ConnectorKind::of::<FileDropConfig>()
        .build(config, &setup())
        .unwrap();
    let receipt = connector
        .deliver(&json!({"a": 1}), &context("42"))
        .await
        .unwrap();
    let name = "44043_demande-acte-naissance_42.json";
    assert_eq!(receipt.reference.as_deref(), Some(name));
    assert_eq!(
        std::fs::read(dir.path().join(name)).unwrap(),
        b"{\"a\":1}\n"
    );
}

#[tokio::test]
async fn the_same_envelope_twice_gives_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path());
    let first = connector
        .deliver(&document(1), &context("e-1"))
        .await
        .unwrap();
    let again = connector
        .deliver(&document(1), &context("e-1").with_attempt(2))
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(files(dir.path()), ["e-1.json"]);
    assert_no_temporary_files(dir.path());
}

#[tokio::test]
async fn concurrent_deliveries_of_one_envelope_agree() {
    let dir = tempfile::tempdir().unwrap();
    let connector = Arc::new(connector(dir.path()));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let connector = Arc::clone(&connector);
            tokio::spawn(async move { connector.deliver(&document(7), &context("e-7")).await })
        })
        .collect();
    for task in tasks {
        let receipt = task.await.unwrap().unwrap();
        assert_eq!(receipt.reference.as_deref(), Some("e-7.json"));
    }
    assert_eq!(files(dir.path()), ["e-7.json"]);
}

#[tokio::test]
async fn a_different_document_under_an_existing_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path());
    connector
        .deliver(&document(1), &context("e-1"))
        .await
        .unwrap();
    let original = std::fs::read(dir.path().join("e-1.json")).unwrap();

    let error = connector
        .deliver(&document(2), &context("e-1"))
        .await
        .unwrap_err();
    assert!(error.is_permanent(), "{error}");
    let message = error.to_string();
    let path = dir.path().join("e-1.json");
    assert_eq!(
        message,
        format!(
            "le fichier {} existe déjà avec un autre contenu : il ne sera pas remplacé",
            path.display()
        )
    );
    assert!(!message.contains("Dupont"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), original);
    assert_no_temporary_files(dir.path());
}

#[tokio::test]
async fn a_foreign_file_of_the_same_size_is_not_taken_for_ours() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path());
    let size = serde_json::to_vec_pretty(&document(1)).unwrap().len() + 1;
    std::fs::write(dir.path().join("e-1.json"), vec![b'x'; size]).unwrap();
    let error = connector
        .deliver(&document(1), &context("e-1"))
        .await
        .unwrap_err();
    assert!(error.is_permanent(), "{error}");
    assert_eq!(
        std::fs::read(dir.path().join("e-1.json")).unwrap(),
        vec![b'x'; size]
    );
}

#[tokio::test]
async fn hostile_ids_stay_inside_the_directory_and_apart() {
    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path());
    let long = "x".repeat(5000);
    let hostile = [
        "../../etc/passwd",
        "..",
        ".",
        "...",
        "/abs",
        "/",
        "a\0b",
        "a/b",
        "a:b",
        "a\\b",
        "a b",
        "",
        "é",
        "e",
        long.as_str(),
        "x",
        ".hidden",
        "_hidden",
        "con:nul",
    ];
    let mut references = HashSet::new();
    for (n, id) in hostile.iter().enumerate() {
        let receipt = connector
            .deliver(&document(n as u32), &context(id))
            .await
            .unwrap_or_else(|error| panic!("{id:?}: {error}"));
        let reference = receipt.reference.unwrap();
        assert!(!reference.contains('/'), "{id:?} gave {reference}");
        assert!(!reference.starts_with('.'), "{id:?} gave {reference}");
        assert!(
            reference.len() <= 255,
            "{id:?} gave {} bytes",
            reference.len()
        );
        let path = dir.path().join(&reference);
        assert_eq!(path.parent(), Some(dir.path()));
        assert!(path.is_file(), "{id:?} gave {reference}");
        assert!(
            references.insert(reference.clone()),
            "{id:?} collides on {reference}"
        );
    }
    assert_eq!(files(dir.path()).len(), hostile.len());
    assert!(!Path::new("/etc/passwd.json").exists());
    assert_no_temporary_files(dir.path());
}

#[tokio::test]
async fn hostile_values_cannot_climb_out_of_subdirectories() {
    let dir = tempfile::tempdir().unwrap();
    let config = json!({
        "directory": dir.path(),
        "file_name": "{commune}/{form}/{id}.json",
        "create_subdirectories": true,
    });
    let connector = ConnectorKind::of::<FileDropConfig>()
        .build(config, &setup())
        .unwrap();
    let receipt = connector
        .deliver(&document(1), &context("e-1"))
        .await
        .unwrap();
    assert_eq!(
        receipt.reference.as_deref(),
        Some("44043/demande-acte-naissance/e-1.json")
    );
    let hostile = Context::new("../../x", "..", "/etc", "c");
    let receipt = connector.deliver(&document(2), &hostile).await.unwrap();
    let reference = receipt.reference.unwrap();
    assert_eq!(reference.split('/').count(), 3, "{reference}");
    assert!(dir.path().join(&reference).is_file());
    assert_eq!(files(dir.path()).len(), 2);
    assert_no_temporary_files(dir.path());
}

#[test]
fn templates_are_checked_at_build() {
    let dir = tempfile::tempdir().unwrap();
    for (template, expected) in [
        (
            "{attempt}-{id}.json",
            "un nouvel essai doit écrire le même nom de fichier",
        ),
        ("{id}-{date}.json", "variable `{date}` inconnue"),
        ("{id.json", "n'est pas refermée"),
        ("{id}}.json", "ne ferme aucune variable"),
        ("export.json", "doit contenir `{id}`"),
        ("{commune}/{id}.json", "create_subdirectories = true"),
        (".{id}.json", "noms cachés"),
    ] {
        let error = build_error(
            json!({"directory": dir.path(), "file_name": template}),
            &setup(),
        );
        assert_eq!(error.key(), "file_name", "{template}: {error}");
        assert!(error.to_string().contains(expected), "{template}: {error}");
        assert_french(&error.to_string());
    }
}

#[test]
fn unknown_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let error = build_error(
        json!({"directory": dir.path(), "overwrite": true}),
        &setup(),
    );
    assert!(
        error.to_string().contains("unknown field `overwrite`"),
        "{error}"
    );
}

#[test]
fn a_missing_directory_is_refused_at_build() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let error = build_error(json!({"directory": &missing}), &setup());
    assert_eq!(error.key(), "directory");
    let message = error.to_string();
    assert!(message.starts_with("`directory`: "), "{message}");
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(message.contains("le créer"), "{message}");

    let error = build_error(json!({"directory": ""}), &setup());
    assert_eq!(error.key(), "directory");

    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let error = build_error(json!({"directory": &file}), &setup());
    assert_eq!(error.key(), "directory");
    assert!(error.to_string().contains("pas un répertoire"), "{error}");
}

#[test]
fn a_relative_directory_is_resolved_from_the_configuration() {
    let base = tempfile::tempdir().unwrap();
    std::fs::create_dir(base.path().join("drop")).unwrap();
    let setup = Setup::new("c", base.path());
    let connector = FileDropConnector::new(FileDropConfig::new("drop"), &setup).unwrap();
    assert_eq!(
        connector.location(),
        base.path().join("drop").display().to_string()
    );
    assert!(FileDropConnector::new(FileDropConfig::new("other"), &setup).is_err());
    assert_no_temporary_files(base.path());
}

#[tokio::test]
async fn a_directory_gone_after_start_is_a_transient_failure() {
    let dir = tempfile::tempdir().unwrap();
    let drop_dir = dir.path().join("drop");
    std::fs::create_dir(&drop_dir).unwrap();
    let connector = connector(&drop_dir);
    assert!(connector.health().await.is_ok());
    std::fs::remove_dir(&drop_dir).unwrap();

    let error = connector
        .deliver(&document(1), &context("e-1"))
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Transient { .. }), "{error}");
    assert!(
        error.to_string().contains(&drop_dir.display().to_string()),
        "{error}"
    );
    let error = connector.health().await.unwrap_err();
    assert!(matches!(error, ConnectorError::Transient { .. }), "{error}");
    assert!(error.to_string().contains("n'existe pas"), "{error}");

    // Once the operator recreates it, the retry goes through.
    std::fs::create_dir(&drop_dir).unwrap();
    connector
        .deliver(&document(1), &context("e-1"))
        .await
        .unwrap();
    assert_eq!(files(&drop_dir), ["e-1.json"]);
}

#[cfg(target_os = "linux")]
#[test]
fn a_directory_where_nothing_can_be_created_is_refused_at_build() {
    // procfs refuses new files even to root, unlike a mode of 0o555.
    let error = build_error(json!({"directory": "/proc"}), &setup());
    assert_eq!(error.key(), "directory");
    assert!(
        error
            .to_string()
            .contains("impossible de créer un fichier dans /proc"),
        "{error}"
    );
}

#[tokio::test]
async fn health_fails_when_the_directory_is_replaced_by_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let drop_dir = dir.path().join("drop");
    std::fs::create_dir(&drop_dir).unwrap();
    let connector = connector(&drop_dir);
    std::fs::remove_dir(&drop_dir).unwrap();
    std::fs::write(&drop_dir, "").unwrap();
    let error = connector.health().await.unwrap_err();
    assert!(matches!(error, ConnectorError::Transient { .. }), "{error}");
    assert!(
        error.to_string().contains("n'est pas un répertoire"),
        "{error}"
    );
    let error = connector
        .deliver(&document(1), &context("e-1"))
        .await
        .unwrap_err();
    assert!(!error.is_permanent(), "{error}");
}

#[cfg(unix)]
#[tokio::test]
async fn health_agrees_with_a_read_only_directory() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let connector = connector(dir.path());
    assert!(connector.health().await.is_ok());
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();

    // Root ignores the mode, so the truth is what a plain write does.
    let probe = dir.path().join("probe");
    let writable = std::fs::write(&probe, "").is_ok();
    let _ = std::fs::remove_file(&probe);
    let health = connector.health().await;
    let delivery = connector.deliver(&document(1), &context("e-1")).await;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    assert_eq!(health.is_ok(), writable, "{health:?}");
    assert_eq!(delivery.is_ok(), writable, "{delivery:?}");
    if let Err(error) = delivery {
        assert!(!error.is_permanent(), "{error}");
        assert!(error.to_string().contains("write access"), "{error}");
    }
    assert_no_temporary_files(dir.path());
}

/// What the operator reads when a drop fails: the directory gone, a file where a
/// sub-directory should be, a name already taken, and the configurations refused at start.
#[tokio::test]
async fn every_failure_is_told_in_french() {
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("depot");
    std::fs::create_dir(&drop).unwrap();
    let gone = connector(&drop);
    std::fs::remove_dir(&drop).unwrap();
    let error = gone
        .deliver(&document(1), &context("e-1"))
        .await
        .unwrap_err();
    assert!(!error.is_permanent(), "{}", error.report());
    assert_french(&error.report());

    let nested = ConnectorKind::of::<FileDropConfig>()
        .build(
            json!({
                "directory": dir.path(),
                "file_name": "{commune}/{id}.json",
                "create_subdirectories": true,
            }),
            &setup(),
        )
        .unwrap();
    std::fs::write(dir.path().join("44043"), "un fichier, pas un répertoire").unwrap();
    let error = nested
        .deliver(&document(1), &context("e-1"))
        .await
        .unwrap_err();
    assert_french(&error.report());

    let taken = connector(dir.path());
    taken.deliver(&document(1), &context("e-2")).await.unwrap();
    let error = taken
        .deliver(&document(2), &context("e-2"))
        .await
        .unwrap_err();
    assert!(error.is_permanent(), "{}", error.report());
    assert_french(&error.report());

    let file = dir.path().join("un-fichier");
    std::fs::write(&file, "").unwrap();
    for table in [
        json!({"directory": ""}),
        json!({"directory": dir.path().join("absent")}),
        json!({"directory": &file}),
        json!({"directory": dir.path(), "file_name": "{id}-{attempt}.json"}),
        json!({"directory": dir.path(), "file_name": "{id}/../x.json", "create_subdirectories": true}),
        json!({"directory": dir.path(), "file_name": "{id}\\x.json"}),
        json!({"directory": dir.path(), "file_name": format!("{}{{id}}", "x".repeat(300))}),
    ] {
        let error = build_error(table, &setup());
        assert_french(&error.to_string());
    }
}
