//! The deployment files shipped in the repository stay in step with the gateway: the
//! docker-compose stack parses (Debian's `docker-compose config`) and its gateway's
//! configuration, with the environment the compose file gives it, passes the gateway's own
//! check; the systemd unit passes `systemd-analyze verify`. No Docker engine is needed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use aiguillage_gateway::config::Config;
use aiguillage_gateway::registry::Registry;

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

#[test]
fn the_compose_stack_parses_and_its_gateway_configuration_passes_check() {
    let resolved = compose_config();
    let lines: Vec<&str> = resolved.lines().collect();
    let services = block(&lines, "services:", 0);
    for service in ["rabbitmq:", "postgres:", "gateway:", "cityweb-sim:"] {
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

    // The configuration laid out as in the container (/srv/aiguillage): the file, the
    // shipped mappings and the import directories of the volumes.
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("gateway.toml");
    std::fs::copy(repository().join("deploy/compose/gateway.toml"), &config)
        .expect("deploy/compose/gateway.toml");
    std::os::unix::fs::symlink(repository().join("mappings"), dir.path().join("mappings"))
        .expect("link the mappings");
    for spool in ["cityweb-import", "pes-import"] {
        assert!(
            volumes.contains(&format!(":/srv/aiguillage/spool/{spool}:rw")),
            "the volume of spool/{spool} is mounted:\n{volumes}"
        );
        std::fs::create_dir_all(dir.path().join("spool").join(spool)).expect("spool");
    }
    let config = Config::load_with_env(&config, &environment, &Registry::builtin())
        .unwrap_or_else(|error| panic!("the compose stack's configuration is refused:\n{error}"));
    assert_eq!(config.admin.listen.to_string(), "0.0.0.0:9464");
    assert!(
        config.admin.token.is_some(),
        "the token comes from the environment"
    );
    let names: Vec<&str> = config.connectors.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["clisson-cityweb", "clisson-finances"]);

    // Without the environment the admin server would listen on the network without a
    // token: the check refuses it, so the compose file must keep giving one.
    let refused = Config::load_with_env(
        &dir.path().join("gateway.toml"),
        &HashMap::new(),
        &Registry::builtin(),
    );
    let error = refused.expect_err("refused without a token").to_string();
    assert!(error.contains("admin.listen"), "{error}");
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(repository().join("deploy/systemd/aiguillage.service"))
        .expect("deploy/systemd/aiguillage.service");
    assert!(unit
        .contains("ExecStart=/usr/local/bin/aiguillage run --config /etc/aiguillage/gateway.toml"));
    // Verified against the binary built here, at the path the unit names.
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("aiguillage.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/aiguillage",
            env!("CARGO_BIN_EXE_aiguillage-e2e"),
        ),
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
