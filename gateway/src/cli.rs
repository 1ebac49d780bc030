//! The command line: `run`, `check`, `publish` and `demo`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::registry::Registry;
use crate::telemetry::{self, LogFormat};

/// Aiguillage: delivers the démarches of a Publik portal into the communes' business software.
#[derive(Debug, Parser)]
#[command(name = "aiguillage", version, about, long_about = None)]
pub struct Cli {
    /// Log format: `human` (default) or `json` (one object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "AIGUILLAGE_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway: consume démarches and deliver them until SIGTERM or SIGINT.
    Run {
        /// The gateway's TOML configuration (keys overridable by AIGUILLAGE__SECTION__KEY variables).
        #[arg(long, short, env = "AIGUILLAGE_CONFIG")]
        config: PathBuf,
    },
    /// Check a configuration without running: exit 0 when valid, 1 with every problem listed.
    Check {
        /// The gateway's TOML configuration.
        #[arg(long, short, env = "AIGUILLAGE_CONFIG")]
        config: PathBuf,
    },
    /// Publish envelopes (JSON files) on the bus as the portal does, each confirmed by the broker.
    Publish {
        /// The gateway's TOML configuration (for the bus URL and exchange).
        #[arg(long, short, env = "AIGUILLAGE_CONFIG")]
        config: PathBuf,
        /// Envelope files: `{"id", "commune", "form", "submitted_at", "formdata"}`.
        #[arg(required = true)]
        envelopes: Vec<PathBuf>,
    },
    /// Show the gateway at work on this machine's RabbitMQ: a local état-civil import
    /// directory and a local billing API receive a few démarches of two communes.
    Demo {
        /// The broker to use.
        #[arg(
            long,
            env = "AIGUILLAGE__BUS__URL",
            default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
        )]
        amqp_url: String,
        /// Where the demo writes its configuration, store and delivered files.
        #[arg(long, default_value = "demo-output")]
        dir: PathBuf,
    },
}

/// Parses the command line and runs the verb; the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own report: only problems are logged unless RUST_LOG says more.
    let default_filter = match cli.command {
        Command::Demo { .. } => "warn,lapin=error",
        _ => telemetry::DEFAULT_FILTER,
    };
    telemetry::init(cli.log_format, default_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one verb.
///
/// # Errors
///
/// Whatever stops the verb, with context for the operator.
pub async fn execute(command: Command) -> anyhow::Result<ExitCode> {
    let registry = Registry::builtin();
    match command {
        Command::Run { config } => {
            let config = Config::load(&config, &registry)?;
            let mut running = crate::service::start(config).await?;
            let ready = running.wait_ready(std::time::Duration::from_secs(0)).await;
            if !ready {
                tracing::info!("connecting to the bus");
            }
            shutdown_signal().await;
            running.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config: path } => match Config::load(&path, &registry) {
            Ok(config) => {
                println!(
                    "{}: valid ({} connector{}, {} route{})",
                    path.display(),
                    config.connectors.len(),
                    if config.connectors.len() == 1 {
                        ""
                    } else {
                        "s"
                    },
                    config.routes.len(),
                    if config.routes.len() == 1 { "" } else { "s" },
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                eprintln!("{error}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Publish { config, envelopes } => {
            let config = Config::load(&config, &registry)?;
            let mut bodies = Vec::new();
            for path in envelopes {
                let body = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                bodies.push((path.display().to_string(), body));
            }
            let published = crate::publish::publish(&config.bus, &bodies).await?;
            for item in published {
                println!("published {} ({})", item.id, item.routing_key);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { amqp_url, dir } => {
            crate::demo::run(&amqp_url, &dir).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
}
