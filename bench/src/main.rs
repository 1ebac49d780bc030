//! `aiguillage-bench`: the gateway end to end against a bare consumer, on the same local
//! RabbitMQ, in one run. See docs/performance.md ("End to end") for what it measures and
//! how to read its table.
//!
//! For each N of `--messages`: a bare lapin consumer drains a quorum queue pre-filled with
//! N persistent envelopes (the baseline); then, for each case, a connector's queue is
//! pre-filled with the same N envelopes, the `aiguillage` binary is started as a separate
//! process, and the bench times the backlog's delivery at the target, reads the gateway's
//! CPU time and peak RSS from `/proc`, and finally publishes at half the rate measured to
//! time publish→delivered latency. Everything it creates carries a unique prefix and is
//! removed at the end; it only talks to loopback addresses and stops by itself.
#![forbid(unsafe_code)]

mod baseline;
mod gateway;
mod load;
mod sink;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aiguillage_bus::BusConfig;
use aiguillage_gateway::config::Config;
use aiguillage_gateway::routing::Router;
use anyhow::{bail, Context as _};
use clap::Parser;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

use crate::gateway::{Gateway, ProcStats};
use crate::load::Envelopes;

/// The connector kind of the état-civil case (issue #6).
const ETAT_CIVIL_KIND: &str = "etat-civil/cityweb";

#[derive(Parser, Debug)]
#[command(
    name = "aiguillage-bench",
    about = "End-to-end benchmark of the gateway against a bare consumer on the same local RabbitMQ"
)]
struct Cli {
    /// Backlog sizes, each run in turn (e.g. 10000,100000).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    messages: Vec<u64>,
    /// Cases to run: rest-sqlite, rest-postgres, file-drop-sqlite, file-drop-postgres,
    /// etat-civil-sqlite.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "rest-sqlite,rest-postgres,file-drop-sqlite,etat-civil-sqlite"
    )]
    cases: Vec<String>,
    /// The `aiguillage` binary (default: next to this program, i.e. built in the same
    /// target directory with `cargo build --release -p aiguillage-gateway`).
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// The broker (a loopback address).
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    /// The PostgreSQL database of the PostgreSQL cases (a loopback address); the bench
    /// works in a schema of its own and drops it.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    /// Prefetch of the bare consumer and of the gateway (`bus.prefetch`); default: the
    /// gateway's default.
    #[arg(long)]
    prefetch: Option<u16>,
    /// The connector's `concurrency`; default: the gateway's default.
    #[arg(long)]
    concurrency: Option<usize>,
    /// How long the paced load of the latency measurement lasts, in seconds.
    #[arg(long, default_value_t = 10)]
    paced_seconds: u64,
    /// The whole run stops after this many minutes (what is left is reported as such).
    #[arg(long, default_value_t = 45)]
    max_minutes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rest,
    FileDrop,
    EtatCivil,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    kind: Kind,
    store: StoreKind,
}

impl Case {
    fn parse(text: &str) -> anyhow::Result<Self> {
        let (kind, store) = text
            .rsplit_once('-')
            .with_context(|| format!("unknown case `{text}`"))?;
        let kind = match kind {
            "rest" => Kind::Rest,
            "file-drop" => Kind::FileDrop,
            "etat-civil" => Kind::EtatCivil,
            _ => bail!("unknown case `{text}` (kinds: rest, file-drop, etat-civil)"),
        };
        let store = match store {
            "sqlite" => StoreKind::Sqlite,
            "postgres" => StoreKind::Postgres,
            _ => bail!("unknown case `{text}` (stores: sqlite, postgres)"),
        };
        Ok(Self { kind, store })
    }

    fn label(self) -> &'static str {
        match self.kind {
            Kind::Rest => "`rest` → HTTP sink",
            Kind::FileDrop => "`file-drop` → temp dir",
            Kind::EtatCivil => "`etat-civil/cityweb` + mapping",
        }
    }

    fn store_label(self) -> &'static str {
        match self.store {
            StoreKind::Sqlite => "SQLite",
            StoreKind::Postgres => "PostgreSQL",
        }
    }
}

/// One line of the table.
struct Row {
    what: String,
    store: String,
    messages: u64,
    result: Result<Measured, String>,
}

#[derive(Default)]
struct Measured {
    rate: f64,
    /// p50, p99 in ms, and the paced rate.
    latency: Option<(f64, f64, f64)>,
    stats: Option<ProcStats>,
    cpu_per_1000: Option<f64>,
    /// Context switches of the gateway's threads per démarche of the backlog.
    switches_per_message: Option<f64>,
}

struct Bench {
    cli: Cli,
    binary: PathBuf,
    connection: lapin::Connection,
    prefetch: u16,
    ticks: f64,
    deadline: Instant,
}

impl Bench {
    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    for url in [&cli.amqp_url, &cli.postgres_url] {
        let host = url
            .split('@')
            .nth(1)
            .unwrap_or(url)
            .split([':', '/'])
            .next()
            .unwrap_or_default();
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            bail!("the bench only runs against loopback services, not `{host}`");
        }
    }
    let cases = cli
        .cases
        .iter()
        .map(|c| Case::parse(c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let binary = gateway::locate(cli.gateway.clone())?;
    let connect = lapin::Connection::connect(
        &cli.amqp_url,
        lapin::ConnectionProperties::default().with_connection_name("aiguillage-bench".into()),
    );
    // A broker that accepts the TCP connection but not the AMQP handshake must not hang us.
    let connection = tokio::time::timeout(Duration::from_secs(20), connect)
        .await
        .map_err(|_| anyhow::anyhow!("RabbitMQ did not answer the AMQP handshake within 20 s"))?
        .with_context(|| {
            "RabbitMQ is not reachable on 127.0.0.1:5672: start it with `rabbitmq-server -detached`"
        })?;
    let prefetch = cli.prefetch.unwrap_or(BusConfig::default().prefetch);
    let bench = Bench {
        deadline: Instant::now() + Duration::from_secs(cli.max_minutes * 60),
        binary,
        connection,
        prefetch,
        ticks: gateway::ticks_per_second(),
        cli,
    };

    print_conditions(&bench).await;
    let mut rows = Vec::new();
    let mut baselines = Vec::new();
    for &n in &bench.cli.messages {
        eprintln!("== N = {n}: bare consumer (prefetch {})", bench.prefetch);
        let prefix = unique_prefix();
        let baseline = tokio::time::timeout(
            bench.left(),
            baseline::run(&bench.connection, &prefix, n, bench.prefetch, bench.left()),
        )
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("not finished: --max-minutes reached")));
        let rate = match &baseline {
            Ok(b) => {
                eprintln!(
                    "   filled in {:.1} s ({:.0}/s published), drained at {:.0}/s",
                    b.fill.as_secs_f64(),
                    n as f64 / b.fill.as_secs_f64(),
                    b.rate
                );
                Some(b.rate)
            }
            Err(error) => {
                eprintln!("   failed: {error:#}");
                None
            }
        };
        baselines.push((n, rate));
        rows.push(Row {
            what: "bare lapin consumer (ack only)".into(),
            store: "–".into(),
            messages: n,
            result: baseline
                .map(|b| Measured {
                    rate: b.rate,
                    ..Measured::default()
                })
                .map_err(|e| format!("{e:#}")),
        });
        for &case in &cases {
            eprintln!("== N = {n}: {} / {}", case.label(), case.store_label());
            let result = if bench.left().is_zero() {
                Err("not run: --max-minutes reached".into())
            } else {
                run_case(&bench, case, n).await
            };
            match &result {
                Ok(m) => eprintln!(
                    "   {:.0}/s, CPU {:.3} s/1000, {:.1} context switches/msg, peak RSS {:.1} MiB{}",
                    m.rate,
                    m.cpu_per_1000.unwrap_or(0.0),
                    m.switches_per_message.unwrap_or(0.0),
                    m.stats
                        .map(|s| s.peak_rss_kib as f64 / 1024.0)
                        .unwrap_or(0.0),
                    m.latency
                        .map(|(p50, p99, at)| format!(
                            ", latency p50 {p50:.1} ms p99 {p99:.1} ms at {at:.0}/s"
                        ))
                        .unwrap_or_default()
                ),
                Err(error) => eprintln!("   {error}"),
            }
            rows.push(Row {
                what: case.label().into(),
                store: case.store_label().into(),
                messages: n,
                result,
            });
        }
    }
    let _ = bench.connection.close(200, "bench done".into()).await;
    print_table(&rows, &baselines);
    Ok(())
}

fn unique_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("aiguillage-bench-{}-{nanos:x}", std::process::id())
}

/// Prints the machine and what else runs on it: the numbers mean little without.
async fn print_conditions(bench: &Bench) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .map(|l| l.trim().to_owned())
        })
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let compiling = std::process::Command::new("pgrep")
        .args(["-c", "rustc"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|t| t.trim().to_owned())
        .unwrap_or_else(|| "?".into());
    let rabbit = std::process::Command::new("timeout")
        .args(["10", "rabbitmqctl", "version"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|t| format!("RabbitMQ {}", t.trim()))
        .unwrap_or_else(|| "RabbitMQ (version unknown)".into());
    println!("machine: {cores} cores ({cpu}), {memory} RAM");
    println!(
        "load average at start: {} ; rustc processes running: {compiling}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "broker: {} ({rabbit}); gateway binary: {}",
        redact(&bench.cli.amqp_url),
        bench.binary.display()
    );
    println!(
        "prefetch {} ; connector concurrency {}",
        bench.prefetch,
        bench
            .cli
            .concurrency
            .map_or("(gateway default)".into(), |c| c.to_string())
    );
}

fn redact(url: &str) -> String {
    aiguillage_bus::redact_url(url)
}

/// Where a case's pieces live, to clean them up whatever happened.
struct Setup {
    dir: tempfile::TempDir,
    prefix: String,
    pg_schema: Option<String>,
    config: Option<Config>,
}

async fn run_case(bench: &Bench, case: Case, n: u64) -> Result<Measured, String> {
    let mut setup = Setup {
        dir: tempfile::tempdir().map_err(|e| e.to_string())?,
        prefix: unique_prefix(),
        pg_schema: None,
        config: None,
    };
    let result = tokio::time::timeout(bench.left(), measure_case(bench, case, n, &mut setup))
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("not finished: --max-minutes reached")));
    cleanup(bench, setup).await;
    result.map_err(|error| format!("{error:#}"))
}

async fn cleanup(bench: &Bench, setup: Setup) {
    if let Some(config) = &setup.config {
        if let Ok(channel) = bench.connection.create_channel().await {
            let queues: Vec<String> = config
                .connectors
                .iter()
                .flat_map(|c| {
                    aiguillage_gateway::bus::topology::connector_queues(
                        &config.bus,
                        &c.name,
                        &c.retry,
                    )
                })
                .collect();
            aiguillage_bus::topology::delete_topology(&channel, &config.bus, &queues).await;
            let _ = channel.close(200, "cleaned".into()).await;
        }
    }
    if let Some(schema) = setup.pg_schema {
        if let Ok(pool) = pg_pool(&bench.cli.postgres_url).await {
            let _ = sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                .execute(&pool)
                .await;
            pool.close().await;
        }
    }
    drop(setup.dir);
}

async fn pg_pool(url: &str) -> anyhow::Result<sqlx::PgPool> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .with_context(|| format!("PostgreSQL is not reachable at {}: start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`", redact(url)))
}

fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

async fn measure_case(
    bench: &Bench,
    case: Case,
    n: u64,
    setup: &mut Setup,
) -> anyhow::Result<Measured> {
    let dir = setup.dir.path().to_path_buf();
    let store_url = match case.store {
        StoreKind::Sqlite => format!("sqlite://{}", dir.join("store.db").display()),
        StoreKind::Postgres => {
            let schema = setup.prefix.replace('-', "_");
            let pool = pg_pool(&bench.cli.postgres_url).await?;
            sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
                .execute(&pool)
                .await?;
            pool.close().await;
            setup.pg_schema = Some(schema.clone());
            let separator = if bench.cli.postgres_url.contains('?') {
                '&'
            } else {
                '?'
            };
            format!(
                "{}{separator}options=-c%20search_path%3D{schema}",
                bench.cli.postgres_url
            )
        }
    };
    let sink = match case.kind {
        Kind::Rest => Some(sink::Sink::start().await?),
        _ => None,
    };
    let drop_dir = dir.join("drop");
    std::fs::create_dir_all(&drop_dir)?;
    let connector_keys = match case.kind {
        Kind::Rest => format!(
            "url = \"http://{}/demarches\"\ntimeout = \"30s\"\n",
            sink.as_ref()
                .map(|s| s.addr.to_string())
                .unwrap_or_default()
        ),
        Kind::FileDrop => format!(
            "directory = {}\npretty = false\n",
            toml_string(&drop_dir.display().to_string())
        ),
        // The slot of issue #6: its keys follow the connector's documentation once it lands.
        Kind::EtatCivil => format!(
            "directory = {}\n",
            toml_string(&drop_dir.display().to_string())
        ),
    };
    let kind = match case.kind {
        Kind::Rest => "rest",
        Kind::FileDrop => "file-drop",
        Kind::EtatCivil => ETAT_CIVIL_KIND,
    };
    let mapping = match case.kind {
        Kind::EtatCivil => format!(
            "mapping = {}\n",
            toml_string(&format!(
                "{}/../mappings/etat-civil/demande-acte.toml",
                env!("CARGO_MANIFEST_DIR")
            ))
        ),
        _ => String::new(),
    };
    let concurrency = bench
        .cli
        .concurrency
        .map(|c| format!("concurrency = {c}\n"))
        .unwrap_or_default();
    let admin_port = gateway::free_port()?;
    let p = &setup.prefix;
    let config_text = format!(
        "[bus]\nurl = {url}\nprefetch = {prefetch}\nexchange = \"{p}.demarches\"\nstatus_exchange = \"{p}.status\"\nqueue_prefix = \"{p}\"\n\n\
         [store]\nurl = {store}\n\n[shutdown]\ngrace = \"10s\"\n\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\n\
         [[connectors]]\nname = \"bench\"\nkind = \"{kind}\"\n{connector_keys}{concurrency}\
         retry = {{ max_attempts = 3, initial = \"1s\", max_delay = \"2s\" }}\n\n\
         [[routes]]\ncommune = \"*\"\nforms = [\"*\"]\nconnector = \"bench\"\n{mapping}",
        url = toml_string(&bench.cli.amqp_url),
        prefetch = bench.prefetch,
        store = toml_string(&store_url),
    );
    let config_path = dir.join("aiguillage.toml");
    std::fs::write(&config_path, config_text)?;

    if case.kind == Kind::EtatCivil {
        let known_here = aiguillage::builtin_registry()
            .kind(ETAT_CIVIL_KIND)
            .is_some();
        let checked = gateway::check(&bench.binary, &config_path).await?;
        if let Err(output) = checked {
            if output.contains("unknown connector kind") || !known_here {
                bail!("skipped: the kind `{ETAT_CIVIL_KIND}` is not in this build yet (issue #6)");
            }
            bail!("the configuration of this case is refused:\n{output}");
        }
    }

    let config = Config::load(&config_path, &aiguillage::builtin_registry())
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let router = Router::new(config.routes.clone());
    let channel = load::confirm_channel(&bench.connection).await?;
    aiguillage_gateway::bus::topology::declare_topology(
        &channel,
        &config.bus,
        &config.connectors,
        &router,
    )
    .await?;
    let exchange = config.bus.exchange.clone();
    let queue = config.bus.connector_queue("bench");
    let bus = config.bus.clone();
    setup.config = Some(config);

    // The backlog, in place before the gateway starts.
    let envelopes = match case.kind {
        Kind::EtatCivil => Envelopes::etat_civil()?,
        _ => Envelopes::all()?,
    };
    let filled = load::fill(&channel, &envelopes, &exchange, None, 0..n).await?;
    let depth = channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?
        .message_count();
    if u64::from(depth) != n {
        bail!("the queue holds {depth} messages after filling it with {n}");
    }
    eprintln!(
        "   backlog of {n} ({} B each on average) in place in {:.1} s",
        envelopes.mean_size(),
        filled.as_secs_f64()
    );

    let mut gateway = Gateway::spawn(
        &bench.binary,
        &config_path,
        admin_port,
        &dir.join("gateway.log"),
    )?;
    let outcome = drive(
        bench,
        case,
        n,
        &mut gateway,
        &channel,
        &envelopes,
        &exchange,
        &bus,
        sink.as_ref(),
        &drop_dir,
    )
    .await;
    gateway.stop(Duration::from_secs(15)).await;
    let _ = channel.close(200, "case done".into()).await;
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    bench: &Bench,
    case: Case,
    n: u64,
    gateway: &mut Gateway,
    channel: &lapin::Channel,
    envelopes: &Envelopes,
    exchange: &str,
    bus: &BusConfig,
    sink: Option<&sink::Sink>,
    drop_dir: &Path,
) -> anyhow::Result<Measured> {
    gateway
        .wait_ready(Duration::from_secs(60).min(bench.left()))
        .await?;
    gateway.wait_delivered(n, bench.left()).await?;
    let backlog_stats = gateway::proc_stats(gateway.pid(), bench.ticks)?;
    let arrivals = arrivals(case, sink, drop_dir)?;
    let rate = backlog_rate(&arrivals, n)?;

    // The latency at half the saturating rate, on the same gateway, its queue now empty.
    let paced_rate = (rate / 2.0).max(1.0);
    let paced = ((paced_rate * bench.cli.paced_seconds as f64) as u64).max(100);
    // A file's modification time is only as fine as the kernel's tick (4 ms): without an
    // HTTP sink, a démarche counts as delivered when its `delivered` status event arrives.
    let events = match case.kind {
        Kind::Rest => None,
        _ => Some(follow_status_events(bench, bus).await?),
    };
    load::paced(channel, envelopes, exchange, n..n + paced, paced_rate).await?;
    gateway
        .wait_delivered(n + paced, Duration::from_secs(120).min(bench.left()))
        .await?;
    let all = match events {
        None => arrivals_after(sink)?,
        Some(events) => events.finish(paced).await,
    };
    let mut latencies: Vec<u64> = all
        .iter()
        .filter(|(seq, _, _)| *seq >= n)
        .map(|(_, published, arrived)| arrived.saturating_sub(*published))
        .collect();
    latencies.sort_unstable();
    let final_stats = gateway::proc_stats(gateway.pid(), bench.ticks)?;
    Ok(Measured {
        rate,
        latency: percentiles(&latencies).map(|(p50, p99)| (p50, p99, paced_rate)),
        stats: Some(final_stats),
        cpu_per_1000: Some(backlog_stats.cpu_seconds * 1000.0 / n as f64),
        switches_per_message: Some(backlog_stats.context_switches as f64 / n as f64),
    })
}

/// The arrivals of the backlog: at the HTTP sink, or the files' modification times.
fn arrivals(
    case: Case,
    sink: Option<&sink::Sink>,
    drop_dir: &Path,
) -> anyhow::Result<Vec<sink::Arrival>> {
    match (case.kind, sink) {
        (Kind::Rest, Some(sink)) => Ok(sink.received.take()),
        _ => scan_files(drop_dir),
    }
}

fn arrivals_after(sink: Option<&sink::Sink>) -> anyhow::Result<Vec<sink::Arrival>> {
    sink.map(|sink| sink.received.take())
        .context("no HTTP sink in this case")
}

/// The `delivered` status events of the paced load, as they arrive.
struct StatusEvents {
    connection: lapin::Channel,
    task: tokio::task::JoinHandle<Vec<sink::Arrival>>,
    seen: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl StatusEvents {
    /// Waits (at most 30 s) until `count` events arrived; returns them.
    async fn finish(self, count: u64) -> Vec<sink::Arrival> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.seen.load(std::sync::atomic::Ordering::Relaxed) < count
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.connection.close(200, "events done".into()).await;
        self.task.await.unwrap_or_default()
    }
}

async fn follow_status_events(bench: &Bench, bus: &BusConfig) -> anyhow::Result<StatusEvents> {
    use futures_util::StreamExt as _;
    let channel = bench.connection.create_channel().await?;
    let mut consumer =
        aiguillage_bus::topology::watch_status_events(&channel, bus, "bench-events").await?;
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = seen.clone();
    let task = tokio::spawn(async move {
        let mut out = Vec::new();
        while let Some(Ok(delivery)) = consumer.next().await {
            let now = load::now_micros();
            let _ = delivery
                .ack(lapin::options::BasicAckOptions::default())
                .await;
            let event: serde_json::Value =
                serde_json::from_slice(&delivery.data).unwrap_or_default();
            if event["status"] != "delivered" {
                continue;
            }
            if let Some((seq, published)) = event["id"].as_str().and_then(load::parse_id) {
                out.push((seq, published, now));
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        out
    });
    Ok(StatusEvents {
        connection: channel,
        task,
        seen,
    })
}

/// The files written: (seq, published, modified) from their names
/// (`b.<seq>.<µs>…`) and modification times.
fn scan_files(dir: &Path) -> anyhow::Result<Vec<sink::Arrival>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Some(start) = name.find("b.") else {
                continue;
            };
            let Some((seq, published)) = load::parse_id(&name[start..]) else {
                continue;
            };
            let modified = entry
                .metadata()?
                .modified()?
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0);
            out.push((seq, published, modified));
        }
    }
    Ok(out)
}

/// Messages per second over the backlog: first to last arrival of messages `0..n`, each
/// counted once (a redelivery arrives again).
fn backlog_rate(arrivals: &[sink::Arrival], n: u64) -> anyhow::Result<f64> {
    let mut first_seen = std::collections::HashMap::with_capacity(arrivals.len());
    for &(seq, _, arrived) in arrivals.iter().filter(|(seq, _, _)| *seq < n) {
        first_seen
            .entry(seq)
            .and_modify(|t: &mut u64| *t = (*t).min(arrived))
            .or_insert(arrived);
    }
    if (first_seen.len() as u64) < n {
        bail!(
            "the target received {} distinct démarches of {n}",
            first_seen.len()
        );
    }
    let first = first_seen.values().min().copied().unwrap_or(0);
    let last = first_seen.values().max().copied().unwrap_or(0);
    let span = (last.saturating_sub(first)) as f64 / 1e6;
    Ok((n.saturating_sub(1)) as f64 / span.max(1e-6))
}

/// p50 and p99 of sorted µs values, in ms.
fn percentiles(sorted: &[u64]) -> Option<(f64, f64)> {
    if sorted.is_empty() {
        return None;
    }
    let at = |q: f64| {
        let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[index] as f64 / 1000.0
    };
    Some((at(0.50), at(0.99)))
}

fn print_table(rows: &[Row], baselines: &[(u64, Option<f64>)]) {
    println!();
    println!("| case | store | N | msg/s | vs bare | p50 / p99 ms (at msg/s) | peak RSS MiB | CPU s / 1000 msg |");
    println!("|---|---|---:|---:|---:|---|---:|---:|");
    for row in rows {
        let base = baselines
            .iter()
            .find(|(n, _)| *n == row.messages)
            .and_then(|(_, rate)| *rate);
        match &row.result {
            Ok(m) => {
                let ratio = base
                    .map(|b| format!("{:.0} %", 100.0 * m.rate / b))
                    .unwrap_or_else(|| "–".into());
                let latency = m
                    .latency
                    .map(|(p50, p99, at)| format!("{p50:.1} / {p99:.1} (at {at:.0})"))
                    .unwrap_or_else(|| "–".into());
                let rss = m
                    .stats
                    .map(|s| format!("{:.1}", s.peak_rss_kib as f64 / 1024.0))
                    .unwrap_or_else(|| "–".into());
                let cpu = m
                    .cpu_per_1000
                    .map(|c| format!("{c:.3}"))
                    .unwrap_or_else(|| "–".into());
                println!(
                    "| {} | {} | {} | {:.0} | {ratio} | {latency} | {rss} | {cpu} |",
                    row.what, row.store, row.messages, m.rate
                );
            }
            Err(error) => {
                let first_line = error.lines().next().unwrap_or_default();
                println!(
                    "| {} | {} | {} | {first_line} | | | | |",
                    row.what, row.store, row.messages
                );
            }
        }
    }
    // Flat cost: the rate at the largest N against the smallest, per case.
    let sizes: Vec<u64> = {
        let mut s: Vec<u64> = rows.iter().map(|r| r.messages).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    if let (Some(&small), Some(&large)) = (sizes.first(), sizes.last()) {
        if small != large {
            println!();
            for row in rows.iter().filter(|r| r.messages == large) {
                let Ok(big) = &row.result else { continue };
                let small_rate = rows
                    .iter()
                    .find(|r| r.messages == small && r.what == row.what && r.store == row.store)
                    .and_then(|r| r.result.as_ref().ok())
                    .map(|m| m.rate);
                if let Some(small_rate) = small_rate {
                    println!(
                        "flat cost, {} / {}: {large} messages at {:.0} % of the rate at {small}",
                        row.what,
                        row.store,
                        100.0 * big.rate / small_rate
                    );
                }
            }
        }
    }
}
