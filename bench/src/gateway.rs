//! The gateway under test: a separate `aiguillage run` process, its configuration, its
//! admin server (readiness and the count of outcomes) and its `/proc` figures.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::process::{Child, Command};

/// CPU time and peak memory of a process, read from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    /// User plus system CPU seconds since it started.
    pub cpu_seconds: f64,
    /// Peak resident set size (VmHWM), in KiB.
    pub peak_rss_kib: u64,
    /// Context switches of all its threads since they started (voluntary: a thread that
    /// waits to be woken up; involuntary: preempted).
    pub context_switches: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`.
pub fn proc_stats(pid: u32, ticks_per_second: f64) -> anyhow::Result<ProcStats> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count from the closing parenthesis.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("unexpected /proc/<pid>/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime); field 3 is fields[0] here.
    let ticks: u64 = fields.get(11).and_then(|t| t.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|t| t.parse().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let peak_rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0);
    Ok(ProcStats {
        cpu_seconds: ticks as f64 / ticks_per_second,
        peak_rss_kib,
        context_switches: context_switches(pid),
    })
}

/// The context switches of every thread of `pid` (threads that ended are not counted:
/// the gateway's threads live as long as it does).
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter_map(|line| {
                    line.strip_prefix("voluntary_ctxt_switches:")
                        .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
                        .and_then(|n| n.trim().parse::<u64>().ok())
                })
                .collect::<Vec<_>>()
        })
        .sum()
}

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`, 100 on Linux).
pub fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The `aiguillage` binary: `--gateway`, else next to this program.
pub fn locate(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("aiguillage"),
    };
    if !path.is_file() {
        bail!(
            "the gateway binary {} is missing: build it first with `cargo build --release -p aiguillage-gateway` (same target directory as the bench), or give --gateway PATH",
            path.display()
        );
    }
    Ok(path)
}

/// A free loopback port for the gateway's admin server.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `aiguillage check`: `Err` with its output when the configuration is refused.
pub async fn check(binary: &Path, config: &Path) -> anyhow::Result<Result<(), String>> {
    let output = Command::new(binary)
        .args(["check", "--config"])
        .arg(config)
        .output()
        .await?;
    if output.status.success() {
        Ok(Ok(()))
    } else {
        Ok(Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

/// A running `aiguillage run` process.
pub struct Gateway {
    child: Child,
    pid: u32,
    admin: String,
    client: reqwest::Client,
    log: PathBuf,
}

impl Gateway {
    /// Starts `aiguillage run --config <config>`, its logs into `log`, with the default
    /// log level (the service logs one line per delivery, as in production).
    pub fn spawn(
        binary: &Path,
        config: &Path,
        admin_port: u16,
        log: &Path,
    ) -> anyhow::Result<Self> {
        let file = std::fs::File::create(log)?;
        let child = Command::new(binary)
            .args(["run", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let pid = child.id().context("the gateway exited at once")?;
        Ok(Self {
            child,
            pid,
            admin: format!("http://127.0.0.1:{admin_port}"),
            client: reqwest::Client::new(),
            log: log.to_path_buf(),
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The end of its log, for an error message.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn exited(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the gateway exited ({status}); its log ends with:\n{}",
                self.log_tail()
            );
        }
        Ok(())
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.exited()?;
            let ready = self
                .client
                .get(format!("{}/readyz", self.admin))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "the gateway was not ready within {timeout:?}; its log ends with:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The outcomes counted so far: (delivered, any other outcome).
    pub async fn outcomes(&mut self) -> anyhow::Result<(u64, u64)> {
        self.exited()?;
        let text = self
            .client
            .get(format!("{}/metrics", self.admin))
            .timeout(Duration::from_secs(5))
            .send()
            .await?
            .text()
            .await?;
        let (mut delivered, mut other) = (0u64, 0u64);
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("aiguillage_messages_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let count = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
            if labels.contains("outcome=\"delivered\"") {
                delivered += count;
            } else {
                other += count;
            }
        }
        Ok((delivered, other))
    }

    /// Polls the outcomes until `expected` are delivered, at most `timeout`.
    pub async fn wait_delivered(&mut self, expected: u64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (delivered, other) = self.outcomes().await?;
            if other > 0 {
                bail!(
                    "{other} message(s) were not delivered (retried, rejected or dead); the gateway's log ends with:\n{}",
                    self.log_tail()
                );
            }
            if delivered >= expected {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("timed out: {delivered} of {expected} delivered within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then SIGKILL if it has not stopped within `grace`.
    pub async fn stop(mut self, grace: Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}
