//! `aiguillage demo`, the README's main command, run as a process on the machine's
//! RabbitMQ: it speaks French, writes Cityweb files valid against the official schema
//! through the shipped mapping, sends only billing forms to the billing API, turns a
//! refused démarche into a dead letter and replays it to delivery, removes its queues, and
//! leaves a configuration that `aiguillage check` accepts.

use std::path::{Path, PathBuf};
use std::process::Command;

use aiguillage_gateway::config::Config;
use aiguillage_tests::watch::files_under;
use aiguillage_tests::xmllint::Schema;

fn xml_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir, |name| name.ends_with(".xml"))
        .into_iter()
        .map(|relative| dir.join(relative))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_maps_to_cityweb_bills_only_billing_forms_and_replays_a_dead_letter() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = Command::new(env!("CARGO_BIN_EXE_aiguillage-e2e"))
        .args(["demo", "--amqp-url", &aiguillage_tests::amqp_url(), "--dir"])
        .arg(dir.path())
        .env_remove("AIGUILLAGE__BUS__URL")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let config_path = dir.path().join("aiguillage-demo.toml");

    // Cleaned up before the assertions (the demo removes its topology itself; this is for
    // a demo that failed half-way).
    let config = Config::load(&config_path, &aiguillage::builtin_registry());
    let mut leftovers = Vec::new();
    if let Ok(config) = &config {
        let connection = lapin::Connection::connect(
            &aiguillage_tests::amqp_url(),
            lapin::ConnectionProperties::default(),
        )
        .await
        .expect("RabbitMQ");
        let queues: Vec<String> = config
            .connectors
            .iter()
            .flat_map(|c| {
                aiguillage_gateway::bus::topology::connector_queues(&config.bus, &c.name, &c.retry)
            })
            .collect();
        for queue in &queues {
            let channel = connection.create_channel().await.expect("channel");
            if aiguillage_bus::topology::queue_depth(&channel, queue)
                .await
                .is_ok()
            {
                leftovers.push(queue.clone());
            }
        }
        let channel = connection.create_channel().await.expect("channel");
        aiguillage_bus::topology::delete_topology(&channel, &config.bus, &queues).await;
        let _ = connection.close(200, "done".into()).await;
    }

    assert!(
        output.status.success(),
        "the demo failed:\n{stdout}\n{stderr}"
    );
    assert!(
        leftovers.is_empty(),
        "the demo left queues behind: {leftovers:?}"
    );
    // In French, for a commune's agent.
    for expected in [
        "Démonstration d'Aiguillage",
        "messages publiés",
        "non routée",
        "Lettre morte : demo-agglo:inscription-centre-loisirs:3001",
        "famille Petit inconnue",
        "Correction de la cause",
        "demo-agglo:inscription-centre-loisirs:3001 : livrée",
        "aiguillage run --config",
    ] {
        assert!(stdout.contains(expected), "`{expected}` missing:\n{stdout}");
    }

    // Only billing forms reached the billing API (a death-certificate request once did).
    let billed = stdout
        .lines()
        .find(|line| line.starts_with("API de facturation : formulaires reçus :"))
        .unwrap_or_else(|| panic!("no list of billed forms:\n{stdout}"));
    assert!(!billed.contains("demande-acte"), "{billed}");
    assert!(billed.contains("inscription-centre-loisirs"), "{billed}");

    // The demandes d'acte became Cityweb files, valid against the official schema, and one
    // of them is shown.
    let clisson = xml_files(&dir.path().join("etat-civil-clisson"));
    let gorges = xml_files(&dir.path().join("etat-civil-gorges"));
    assert_eq!(clisson.len(), 2, "birth and marriage: {clisson:?}");
    assert_eq!(gorges.len(), 1, "the death certificate request: {gorges:?}");
    for file in clisson.iter().chain(&gorges) {
        if let Err(complaint) = Schema::Cityweb.validate(&[file]) {
            panic!("{} is not valid Cityweb: {complaint}", file.display());
        }
    }
    assert!(stdout.contains("Un fichier Cityweb écrit"), "{stdout}");
    assert!(
        stdout.contains("  | <?xml"),
        "an excerpt is shown:\n{stdout}"
    );
    assert!(
        std::fs::read_to_string(dir.path().join("mappings/etat-civil/demande-acte.toml"))
            .is_ok_and(|text| text
                == std::fs::read_to_string(
                    Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../mappings/etat-civil/demande-acte.toml")
                )
                .unwrap()),
        "the shipped mapping is copied beside the configuration"
    );

    // The configuration it leaves still passes the gateway's check.
    let check = Command::new(env!("CARGO_BIN_EXE_aiguillage-e2e"))
        .args(["check", "--config"])
        .arg(&config_path)
        .output()
        .expect("run check");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let config = config.expect("the demo's configuration");
    let routes: Vec<(String, String)> = config
        .routes
        .iter()
        .map(|r| (format!("{:?}", r.commune), r.connector.clone()))
        .collect();
    // A `*` of a commune sent a death-certificate request to billing once.
    assert!(
        config
            .routes
            .iter()
            .filter(|r| r.connector.ends_with("famille"))
            .all(|r| r.forms.iter().all(|f| f.as_str() != "*")),
        "no `*` route to billing: {routes:?}"
    );
}
