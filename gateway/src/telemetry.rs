//! Logs: human-readable by default, JSON lines with `--log-format json`; the level comes
//! from `RUST_LOG` (default `info`). See docs/logging.md for the conventions.

use tracing_subscriber::EnvFilter;

/// The log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The default filter of the service.
pub const DEFAULT_FILTER: &str = "info,lapin=warn,sqlx=warn,amq_protocol=warn";

/// Installs the global subscriber (once; later calls do nothing); `default_filter` applies
/// when `RUST_LOG` is not set.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}
