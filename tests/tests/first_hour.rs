//! An operator's first hour with the programs the project ships: every one answers
//! `--help` without doing anything, logs carry no colour codes outside a terminal (or
//! with `NO_COLOR`), and under systemd (`Type=notify`) the gateway says it is ready only
//! once its queues exist, and says when it stops.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aiguillage_tests::{Scenario, StoreKind};

/// Every program of the tests package (the gateway's own command line is built here as
/// `aiguillage-e2e`; the bench has its own test).
const PROGRAMS: [(&str, &str); 5] = [
    ("aiguillage-e2e", env!("CARGO_BIN_EXE_aiguillage-e2e")),
    ("cityweb-sim", env!("CARGO_BIN_EXE_cityweb-sim")),
    ("pes-sim", env!("CARGO_BIN_EXE_pes-sim")),
    ("ads-sim", env!("CARGO_BIN_EXE_ads-sim")),
    ("wcs-sim", env!("CARGO_BIN_EXE_wcs-sim")),
];

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs `command` to its end, at most 10 s: a program that took `--help` for an argument
/// would start working and never stop (pes-sim did).
fn output_within_10s(command: &mut Command) -> std::process::Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the program");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} still runs after 10 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn every_program_answers_help_and_creates_nothing() {
    for (name, program) in PROGRAMS {
        for flag in ["--help", "-h"] {
            let dir = tempfile::tempdir().expect("temporary directory");
            let output = output_within_10s(
                Command::new(program)
                    .arg(flag)
                    .current_dir(dir.path())
                    .stdin(Stdio::null()),
            );
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "{name} {flag} exits with {:?}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(stdout.contains("Usage:"), "{name} {flag}:\n{stdout}");
            assert!(
                entries(dir.path()).is_empty(),
                "{name} {flag} created {:?}",
                entries(dir.path())
            );
        }
    }
}

#[test]
fn every_program_refuses_an_unknown_option_and_creates_nothing() {
    for (name, program) in PROGRAMS {
        let dir = tempfile::tempdir().expect("temporary directory");
        let output = output_within_10s(
            Command::new(program)
                .arg("--no-such-option")
                .current_dir(dir.path())
                .stdin(Stdio::null()),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains("--no-such-option"), "{name}: {stderr}");
        assert!(
            entries(dir.path()).is_empty(),
            "{name} created {:?}",
            entries(dir.path())
        );
    }
}

/// A configuration whose broker does not answer (port 1): the gateway starts, logs and
/// retries, and no broker object is created.
async fn unreachable_bus_config() -> Scenario {
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    let drop_dir = scenario.subdir("drop");
    scenario
        .bus_url("amqp://guest:guest@127.0.0.1:1/%2f")
        .connector(
            "famille",
            "file-drop",
            &format!("directory = \"{}\"", drop_dir.display()),
        )
        .route("44043", &["*"], "famille");
    scenario
}

/// The gateway's log output for about two seconds of `run` (on a pseudo-terminal made by
/// util-linux's `script` when `terminal`), with `extra` environment.
fn run_logs(config: &Path, terminal: bool, extra: &[(&str, &str)]) -> Vec<u8> {
    let gateway = env!("CARGO_BIN_EXE_aiguillage-e2e");
    let run = format!("{gateway} run --config {}", config.display());
    let mut command = if terminal {
        let mut command = Command::new("script");
        // script's own typescript goes to /dev/null; the pty's output to its stdout.
        command.args([
            "--quiet",
            "--return",
            "--command",
            &format!("timeout --signal=TERM 2 {run}"),
            "/dev/null",
        ]);
        command
    } else {
        let mut command = Command::new("timeout");
        command.args(["--signal=TERM", "2", gateway, "run", "--config"]);
        command.arg(config);
        command
    };
    command
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .envs(extra.iter().copied())
        .stdin(Stdio::null());
    let output = command.output().expect("run the gateway");
    let mut logs = output.stdout;
    logs.extend_from_slice(&output.stderr);
    assert!(
        String::from_utf8_lossy(&logs).contains("admin server listening"),
        "the gateway logged:\n{}",
        String::from_utf8_lossy(&logs)
    );
    logs
}

#[tokio::test]
async fn logs_have_colours_only_on_a_terminal_and_never_with_no_color() {
    let scenario = unreachable_bus_config().await;
    let config = scenario.write_config();
    let escape = |logs: &[u8]| logs.contains(&0x1b);

    let piped = run_logs(&config, false, &[]);
    assert!(
        !escape(&piped),
        "colour codes in piped logs:\n{}",
        String::from_utf8_lossy(&piped)
    );
    let terminal = run_logs(&config, true, &[]);
    assert!(
        escape(&terminal),
        "a terminal gets colours:\n{}",
        String::from_utf8_lossy(&terminal)
    );
    let no_color = run_logs(&config, true, &[("NO_COLOR", "1")]);
    assert!(
        !escape(&no_color),
        "NO_COLOR=1 still coloured:\n{}",
        String::from_utf8_lossy(&no_color)
    );
}

/// The datagrams received on `socket` until `until` matches one of them, at most `timeout`.
fn receive_until(socket: &UnixDatagram, timeout: Duration, until: &str) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        if let Ok(n) = socket.recv(&mut buffer) {
            let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
            let done = text.lines().any(|line| line == until);
            received.push(text);
            if done {
                break;
            }
        }
    }
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_systemd_ready_comes_once_the_queues_exist_and_stopping_at_sigterm() {
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    let drop_dir = scenario.subdir("drop");
    scenario
        .connector(
            "famille",
            "file-drop",
            &format!("directory = \"{}\"", drop_dir.display()),
        )
        .route("44043", &["*"], "famille");
    let config = scenario.write_config();
    let queue = scenario.bus().connector_queue("famille");
    let socket_path = scenario.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notification socket");

    let connection = scenario.connection().await;
    let channel = connection.create_channel().await.expect("channel");
    let existed_before = aiguillage_bus::topology::queue_depth(&channel, &queue)
        .await
        .is_ok();
    let mut gateway = tokio::process::Command::new(env!("CARGO_BIN_EXE_aiguillage-e2e"))
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the gateway");

    let (socket, ready) = tokio::task::spawn_blocking(move || {
        let ready = receive_until(&socket, Duration::from_secs(30), "READY=1");
        (socket, ready)
    })
    .await
    .expect("receive");
    // Checked right when READY=1 arrived: the queue must already be there.
    let channel = connection.create_channel().await.expect("channel");
    let queue_at_ready = aiguillage_bus::topology::queue_depth(&channel, &queue)
        .await
        .is_ok();

    let pid = gateway.id().expect("running").to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let stopping = tokio::task::spawn_blocking(move || {
        receive_until(&socket, Duration::from_secs(20), "STOPPING=1")
    })
    .await
    .expect("receive");
    let status = tokio::time::timeout(Duration::from_secs(30), gateway.wait()).await;

    // Cleaned up before the assertions: a failure must not leave queues behind.
    let _ = connection.close(200, "done".into()).await;
    scenario.cleanup().await;

    assert!(
        !existed_before,
        "the queue {queue} existed before the start"
    );
    assert!(
        ready
            .last()
            .is_some_and(|m| m.lines().any(|l| l == "READY=1")),
        "no READY=1 within 30 s: {ready:?}"
    );
    assert!(
        queue_at_ready,
        "READY=1 was sent before the queue {queue} existed"
    );
    assert!(
        ready
            .last()
            .is_some_and(|m| m.lines().any(|l| l.starts_with("STATUS="))),
        "READY=1 comes with a STATUS= line for `systemctl status`: {ready:?}"
    );
    assert!(
        stopping
            .iter()
            .any(|m| m.lines().any(|l| l == "STOPPING=1")),
        "no STOPPING=1 after SIGTERM: {stopping:?}"
    );
    let status = status.expect("stopped within 30 s").expect("wait");
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
}
