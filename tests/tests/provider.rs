//! A provider's own gateway binary, built outside the workspace: the built-in kinds plus
//! its own (`registre-local`, defined in the provider's project), then the standard CLI.
//! Its `check` accepts a configuration using the provider's kind, and its `run` delivers a
//! démarche through RabbitMQ with it (docs/connector-guide.md §4).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aiguillage_bus::BusConfig;
use aiguillage_gateway::config::RetryPolicy;
use aiguillage_tests::{amqp_url, envelope, unique, workspace};
use futures_util::StreamExt;
use lapin::options::BasicAckOptions;
use serde_json::Value;

/// The provider's binary: exactly the ten lines of docs/connector-guide.md §4.
const MAIN: &str = r#"fn main() -> std::process::ExitCode {
    aiguillage::Gateway::builtin()            // the built-in kinds
        .connector::<registre_local::RegistreConfig>() // the provider's kind
        .main()                               // the standard CLI (check, run, map, dead, ...)
}
"#;

/// The provider's connector: each démarche written as `<directory>/<id>.json`.
const LIB: &str = r#"//! `registre-local`: each démarche written as a JSON file in a directory.
use std::path::PathBuf;
use std::sync::Arc;

use aiguillage_connector::{
    async_trait, ConfigError, Connector, ConnectorConfig, ConnectorError, Context, Document,
    Receipt, Setup,
};

/// `[[connectors]]` of kind `registre-local`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistreConfig {
    /// Where the files go.
    pub directory: PathBuf,
}

impl ConnectorConfig for RegistreConfig {
    const KIND: &'static str = "registre-local";

    fn build(self, setup: &Setup) -> Result<Arc<dyn Connector>, ConfigError> {
        let directory = setup.resolve(&self.directory);
        if !directory.is_dir() {
            return Err(ConfigError::invalid("directory", "n'est pas un dossier"));
        }
        Ok(Arc::new(Registre { directory }))
    }
}

struct Registre {
    directory: PathBuf,
}

#[async_trait]
impl Connector for Registre {
    async fn deliver(&self, document: &Document, ctx: &Context) -> Result<Receipt, ConnectorError> {
        let name: String = ctx
            .idempotency_key()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
            .collect();
        let path = self.directory.join(format!("{name}.json"));
        write_file(&path, document.to_string().into_bytes())
            .map_err(|e| ConnectorError::transient(format!("écriture impossible : {e}")))?;
        Ok(Receipt::with_reference(name))
    }
}

fn write_file(path: &std::path::Path, bytes: Vec<u8>) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}
"#;

/// The workspace's target directory (shared, so that the dependencies are not rebuilt).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// Writes the provider's project in `dir` and builds it offline; its binary.
fn build_provider(dir: &Path) -> PathBuf {
    let root = workspace();
    let manifest = format!(
        r#"[package]
name = "registre-local"
version = "0.1.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
aiguillage = {{ path = "{root}/crates/aiguillage" }}
aiguillage-connector = {{ path = "{root}/connectors/sdk" }}
serde = {{ version = "1", features = ["derive"] }}

# The workspace's profile, so that the dependencies already built are used as they are.
[profile.dev.package."*"]
opt-level = 1
debug = false
"#,
        root = root.display()
    );
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join("src/main.rs"), MAIN).unwrap();
    std::fs::write(dir.join("src/lib.rs"), LIB).unwrap();
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--offline", "--quiet"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir());
    // What `cargo test` sets for this test (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, …) would
    // change what build scripts see, and make the shared dependencies build again.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR" {
            build.env_remove(key.as_ref());
        }
    }
    let output = build.output().expect("run cargo");
    assert!(
        output.status.success(),
        "the provider's binary does not build:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    target_dir().join("debug").join("registre-local")
}

/// Kills the provider's gateway when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_provider_binary_built_outside_the_workspace_checks_and_delivers_with_its_own_kind() {
    let project = tempfile::tempdir().unwrap();
    let binary = build_provider(project.path());

    let prefix = unique("provider");
    let work = tempfile::tempdir().unwrap();
    let registre = work.path().join("registre");
    std::fs::create_dir_all(&registre).unwrap();
    let config = work.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[bus]\nurl = \"{url}\"\nexchange = \"{prefix}.demarches\"\nstatus_exchange = \"{prefix}.status\"\nqueue_prefix = \"{prefix}\"\n\n[store]\nurl = \"sqlite://{store}\"\n\n[admin]\nenabled = false\n\n[[connectors]]\nname = \"registre\"\nkind = \"registre-local\"\ndirectory = \"{registre}\"\n\n[[routes]]\ncommune = \"44043\"\nforms = [\"*\"]\nconnector = \"registre\"\n",
            url = amqp_url(),
            store = work.path().join("store.db").display(),
            registre = registre.display(),
        ),
    )
    .unwrap();

    // `check` knows the provider's kind, and still the built-in ones.
    let check = Command::new(&binary)
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "check refused the provider's configuration:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let bus = BusConfig {
        url: amqp_url().into(),
        exchange: format!("{prefix}.demarches"),
        status_exchange: format!("{prefix}.status"),
        queue_prefix: prefix.clone(),
        ..BusConfig::default()
    };
    let outcome = deliver_once(&binary, &config, &bus, &registre, &prefix).await;

    // The queues and exchanges of the test go, whatever happened.
    let connection = aiguillage_bus::publisher::connect(&bus, "provider-test-cleanup")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let queues = aiguillage_gateway::bus::topology::connector_queues(
        &bus,
        "registre",
        &RetryPolicy::default(),
    );
    aiguillage_bus::topology::delete_topology(&channel, &bus, &queues).await;
    let _ = connection.close(200, "done".into()).await;

    let event = outcome.unwrap_or_else(|reason| panic!("{reason}"));
    assert_eq!(event["connector"], "registre");
    assert_eq!(event["status"], "delivered");
}

/// Runs the provider's gateway, publishes one démarche with its `publish` and waits for
/// the `delivered` status event and the file; the event.
async fn deliver_once(
    binary: &Path,
    config: &Path,
    bus: &BusConfig,
    registre: &Path,
    prefix: &str,
) -> Result<Value, String> {
    let gateway = Running(
        Command::new(binary)
            .args(["run", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the provider's gateway: {e}"))?,
    );
    let connection = aiguillage_bus::publisher::connect(bus, "provider-test")
        .await
        .map_err(|e| e.to_string())?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| e.to_string())?;
    // Ready once it consumes its queue: the queue is declared before its bindings, and a
    // démarche published in between would go to the unrouted queue.
    let queue = bus.connector_queue("registre");
    let mut ready = false;
    for _ in 0..300 {
        let probe = connection
            .create_channel()
            .await
            .map_err(|e| e.to_string())?;
        let passive = lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        if let Ok(declared) = probe
            .queue_declare(queue.as_str().into(), passive, Default::default())
            .await
        {
            if declared.consumer_count() > 0 {
                ready = true;
                break;
            }
            let _ = probe.close(200, "probed".into()).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !ready {
        return Err(format!(
            "the provider's gateway did not consume `{queue}` within 30 s"
        ));
    }
    let mut events = aiguillage_bus::topology::watch_status_events(&channel, bus, "provider-test")
        .await
        .map_err(|e| e.to_string())?;

    let demarche = envelope(prefix, "44043", "demande-acte-naissance", 1);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), demarche.to_string()).unwrap();
    let published = Command::new(binary)
        .args(["publish", "--config"])
        .arg(config)
        .arg(file.path())
        .output()
        .map_err(|e| e.to_string())?;
    if !published.status.success() {
        return Err(format!(
            "publish failed: {}",
            String::from_utf8_lossy(&published.stderr)
        ));
    }

    let event = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(delivery)) = events.next().await {
            let _ = delivery.ack(BasicAckOptions::default()).await;
            if let Ok(event) = serde_json::from_slice::<Value>(&delivery.data) {
                if event["id"] == demarche["id"] {
                    return Some(event);
                }
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or("no status event for the démarche within 30 s")?;
    let written = std::fs::read_dir(registre)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .count();
    if written != 1 {
        return Err(format!(
            "{written} files in the provider's directory, 1 expected"
        ));
    }
    drop(gateway);
    let _ = connection.close(200, "done".into()).await;
    Ok(event)
}
