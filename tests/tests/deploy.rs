//! The deployment files shipped in the repository stay in step with the gateway: the
//! docker-compose stack parses (Debian's `docker-compose config`) and its gateway's
//! configuration, with the environment the compose file gives it, passes the gateway's own
//! check, and delivers the sample démarches that docs/install.md tells an operator to
//! publish (the gateway in-process, the Cityweb simulator importing what it drops); the
//! systemd unit passes `systemd-analyze verify`. No Docker engine is needed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::Duration;

use aiguillage_gateway::config::Config;
use aiguillage_tests::ads_sim::AdsSim;
use aiguillage_tests::cityweb_sim::CitywebSim;
use aiguillage_tests::pes_sim::PesSim;
use aiguillage_tests::{amqp_url, unique};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_owned()
}

/// `docker-compose config` of the repository's file: the stack, resolved.
fn compose_config() -> String {
    let output = Command::new("docker-compose")
        .current_dir(repository())
        .args(["--file", "docker-compose.yml", "config"])
        .env_remove("RABBITMQ_PASSWORD")
        .env_remove("POSTGRES_PASSWORD")
        .env_remove("AIGUILLAGE_ADMIN_TOKEN")
        .output()
        .expect("docker-compose (Debian package `docker-compose`; .ci/run installs it)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "docker-compose.yml does not parse:\n{stderr}"
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// The lines of a block of the resolved YAML: those below `header` (at `indent` spaces)
/// indented deeper, or list items at the same indentation.
fn block<'a>(lines: &[&'a str], header: &str, indent: usize) -> Vec<&'a str> {
    let head = format!("{}{header}", " ".repeat(indent));
    let Some(start) = lines.iter().position(|line| *line == head) else {
        return Vec::new();
    };
    lines[start + 1..]
        .iter()
        .take_while(|line| {
            let deeper = line.len() > indent && line[..=indent].trim().is_empty();
            deeper || line.starts_with(&format!("{}- ", " ".repeat(indent)))
        })
        .copied()
        .collect()
}

/// The gateway's environment in the compose stack, and the configuration laid out as in
/// the container (/srv/aiguillage: the file, the shipped mappings, the volumes' import
/// directories) in `dir`; returns the configuration's path.
fn compose_gateway(dir: &Path) -> (PathBuf, HashMap<String, String>) {
    let resolved = compose_config();
    let lines: Vec<&str> = resolved.lines().collect();
    let services = block(&lines, "services:", 0);
    for service in [
        "rabbitmq:",
        "postgres:",
        "gateway:",
        "cityweb-sim:",
        "pes-sim:",
        "ads-sim:",
    ] {
        assert!(
            services.contains(&format!("  {service}").as_str()),
            "service {service} missing:\n{resolved}"
        );
    }
    let gateway = block(&services, "gateway:", 2);
    let environment: HashMap<String, String> = block(&gateway, "environment:", 4)
        .iter()
        .filter_map(|line| line.trim().split_once(": "))
        .map(|(key, value)| {
            let value = value.trim().trim_matches('\'').trim_matches('"');
            (key.to_owned(), value.to_owned())
        })
        .collect();
    for key in [
        "AIGUILLAGE__BUS__URL",
        "AIGUILLAGE__STORE__URL",
        "AIGUILLAGE__ADMIN__TOKEN",
    ] {
        assert!(
            environment.contains_key(key),
            "{key} missing: {environment:?}"
        );
    }
    let volumes = block(&gateway, "volumes:", 4).join("\n");
    assert!(
        volumes.contains("deploy/compose/gateway.toml:/srv/aiguillage/gateway.toml:ro"),
        "the gateway's configuration is mounted from deploy/compose/gateway.toml:\n{volumes}"
    );

    let config = dir.join("gateway.toml");
    std::fs::copy(repository().join("deploy/compose/gateway.toml"), &config)
        .expect("deploy/compose/gateway.toml");
    std::os::unix::fs::symlink(repository().join("mappings"), dir.join("mappings"))
        .expect("link the mappings");
    for spool in ["cityweb-import", "pes-import", "ads-depots"] {
        assert!(
            volumes.contains(&format!(":/srv/aiguillage/spool/{spool}:rw")),
            "the volume of spool/{spool} is mounted:\n{volumes}"
        );
        std::fs::create_dir_all(dir.join("spool").join(spool)).expect("spool");
    }
    (config, environment)
}

#[test]
fn the_compose_stack_parses_and_its_gateway_configuration_passes_check() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (path, environment) = compose_gateway(dir.path());
    let config = Config::load_with_env(&path, &environment, &aiguillage::builtin_registry())
        .unwrap_or_else(|error| panic!("the compose stack's configuration is refused:\n{error}"));
    assert_eq!(config.admin.listen.to_string(), "0.0.0.0:9464");
    assert!(
        config.admin.token.is_some(),
        "the token comes from the environment"
    );
    let names: Vec<&str> = config.connectors.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["clisson-cityweb", "clisson-finances", "agglo-ads"]);

    // Without the environment the admin server would listen on the network without a
    // token: the check refuses it, so the compose file must keep giving one.
    let refused = Config::load_with_env(&path, &HashMap::new(), &aiguillage::builtin_registry());
    let error = refused.expect_err("refused without a token").to_string();
    assert!(error.contains("admin.listen"), "{error}");
}

/// What docs/install.md has an operator do with the stack: publish a sample demande d'acte
/// and a sample canteen bill of Clisson. Here the gateway runs in-process with the stack's
/// configuration, on this machine's RabbitMQ (with names of its own) and an SQLite store
/// instead of the containers; the Cityweb simulator imports what the gateway drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_stack_delivers_the_sample_demarches_of_the_install_guide() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (path, mut environment) = compose_gateway(dir.path());
    let prefix = unique("compose");
    for (key, value) in [
        ("AIGUILLAGE__BUS__URL", amqp_url()),
        ("AIGUILLAGE__BUS__EXCHANGE", format!("{prefix}.demarches")),
        (
            "AIGUILLAGE__BUS__STATUS_EXCHANGE",
            format!("{prefix}.status"),
        ),
        ("AIGUILLAGE__BUS__QUEUE_PREFIX", prefix.clone()),
        (
            "AIGUILLAGE__STORE__URL",
            format!("sqlite://{}", dir.path().join("store.db").display()),
        ),
        ("AIGUILLAGE__ADMIN__LISTEN", "127.0.0.1:0".into()),
    ] {
        environment.insert(key.into(), value);
    }
    let config = Config::load_with_env(&path, &environment, &aiguillage::builtin_registry())
        .unwrap_or_else(|error| panic!("{error}"));
    let bus = config.bus.clone();
    let queues: Vec<String> = config
        .connectors
        .iter()
        .flat_map(|c| aiguillage_gateway::bus::topology::connector_queues(&bus, &c.name, &c.retry))
        .collect();
    let sim = CitywebSim::start(
        &dir.path().join("spool/cityweb-import"),
        &dir.path().join("spool/cityweb-out"),
    );
    let finances = PesSim::start(&dir.path().join("spool/pes-import"));
    let instruction = AdsSim::start(&dir.path().join("spool/ads-depots"), None);
    let mut running = aiguillage_gateway::service::start(config)
        .await
        .expect("start");
    assert!(running.wait_ready(Duration::from_secs(30)).await);

    let samples = repository().join("tests/fixtures");
    let bodies: Vec<(String, Vec<u8>)> = [
        "etat-civil/naissance-cpi-titulaire.json",
        "facturation/cantine-trois-enfants.json",
        "urbanisme/dp-sci-ravalement.json",
    ]
    .iter()
    .map(|name| {
        let body = std::fs::read(samples.join(name)).expect("sample");
        (name.to_string(), body)
    })
    .collect();
    let connection = lapin::Connection::connect(&amqp_url(), Default::default())
        .await
        .expect("RabbitMQ");
    aiguillage_gateway::bus::publish::publish_on(&connection, &bus, &bodies)
        .await
        .expect("publish the samples");

    let imported = sim.wait_for(1, Duration::from_secs(30)).await;
    let acquits = finances.wait_for(1, Duration::from_secs(30)).await;
    let registered = instruction.wait_for(1, Duration::from_secs(30)).await;
    let pes = dir.path().join("spool/pes-import");
    let mut bills: Vec<String> = Vec::new();
    for _ in 0..300 {
        bills = std::fs::read_dir(&pes)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    // Not the finance software's ACK_/NACK_ answers beside them.
                    .filter(|name| name.ends_with(".xml") && name.starts_with("PESALR1_"))
                    .collect()
            })
            .unwrap_or_default();
        if !bills.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let history = aiguillage_gateway::operator::history::search(running.store(), "12-142").await;

    // Cleaned up before the assertions: a failure must not leave queues behind.
    running.shutdown().await;
    let channel = connection.create_channel().await.expect("channel");
    aiguillage_bus::topology::delete_topology(&channel, &bus, &queues).await;
    let _ = connection.close(200, "done".into()).await;

    assert_eq!(imported.len(), 1, "{imported:?}");
    assert!(imported[0].accepted, "{:?}", imported[0]);
    assert_eq!(
        bills.len(),
        1,
        "one PES file for the canteen bill: {bills:?}"
    );
    assert_eq!(acquits.len(), 1, "{acquits:?}");
    assert!(
        acquits[0].accepted,
        "the finance software refused the bill: {acquits:?}"
    );
    assert_eq!(registered.len(), 1, "{registered:?}");
    assert!(
        registered[0].accepted,
        "the instruction service refused the application: {registered:?}"
    );
    let history = history.expect("the store");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].status, "delivered");
    assert_eq!(history[0].connector, "clisson-cityweb");
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(repository().join("deploy/systemd/aiguillage.service"))
        .expect("deploy/systemd/aiguillage.service");
    assert!(
        unit.contains("ExecStart=/usr/bin/aiguillage run --config /etc/aiguillage/gateway.toml")
    );
    // Readiness comes from the gateway itself once its topology is declared
    // (first_hour.rs checks what it sends).
    assert!(unit.contains("\nType=notify\n"), "{unit}");
    // A credential file that is absent must not stop the unit: LoadCredential= names the
    // credentials directory (every file in it is loaded), never a file that may be missing.
    let loaded: Vec<&str> = unit
        .lines()
        .filter_map(|line| line.strip_prefix("LoadCredential="))
        .collect();
    assert_eq!(
        loaded,
        ["aiguillage:/etc/aiguillage/credentials"],
        "credentials come from the directory only"
    );
    // Verified against the binary built here, at the path the unit names.
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("aiguillage.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/aiguillage", env!("CARGO_BIN_EXE_aiguillage-e2e")),
    )
    .expect("write the unit");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .expect("systemd-analyze (Debian package `systemd`)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify complains about the unit:\n{stderr}"
    );
}

/// The Debian package's /etc/aiguillage/gateway.toml is valid as shipped: every section
/// with safe defaults. Here its example connector's directory (which the package's
/// postinst creates) is a temporary one.
#[test]
fn the_debian_package_configuration_passes_check() {
    let path = repository().join("crates/aiguillage/debian/gateway.toml");
    let dir = tempfile::tempdir().expect("temporary directory");
    let environment = HashMap::from([(
        "AIGUILLAGE__CONNECTORS__EXEMPLE__DIRECTORY".to_owned(),
        dir.path().display().to_string(),
    )]);
    let config = Config::load_with_env(&path, &environment, &aiguillage::builtin_registry())
        .unwrap_or_else(|error| {
            panic!("crates/aiguillage/debian/gateway.toml is refused:\n{error}")
        });
    assert_eq!(config.admin.listen.to_string(), "127.0.0.1:9464");
    assert_eq!(config.connectors.len(), 1);
    // The example route takes no real commune's démarches.
    assert!(
        matches!(
            &config.routes[0].commune,
            aiguillage_gateway::routing::CommunePattern::Code(code) if code == "00000"
        ),
        "{:?}",
        config.routes[0].commune
    );
    let text = std::fs::read_to_string(&path).expect("read");
    for section in [
        "[bus]",
        "[store]",
        "[shutdown]",
        "[admin]",
        "[[connectors]]",
        "[[routes]]",
    ] {
        assert!(
            text.contains(&format!("\n{section}\n")),
            "{section} missing"
        );
    }
    // The package puts it, the unit and the postinst where the docs say.
    let manifest =
        std::fs::read_to_string(repository().join("crates/aiguillage/Cargo.toml")).unwrap();
    for asset in [
        r#"["target/release/aiguillage", "usr/bin/", "755"]"#,
        r#"["debian/gateway.toml", "etc/aiguillage/gateway.toml", "644"]"#,
        r#"unit-scripts = "../../deploy/systemd""#,
        r#"maintainer-scripts = "debian/""#,
    ] {
        assert!(
            manifest.contains(asset),
            "crates/aiguillage/Cargo.toml lacks {asset}"
        );
    }
}
