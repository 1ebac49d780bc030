//! Logs: human-readable by default, JSON lines with `--log-format json`; the level comes
//! from `RUST_LOG` (default `info`). See docs/logging.md for the conventions.

use std::io::IsTerminal as _;

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

/// Whether human logs are coloured: only on a terminal (journald, files and pipes would
/// otherwise receive raw escape sequences), and never when `NO_COLOR` has a non-empty
/// value (https://no-color.org).
pub fn use_colour(no_color: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
    let disabled = no_color.is_some_and(|value| !value.is_empty());
    terminal && !disabled
}

/// Installs the global subscriber (once; later calls do nothing); `default_filter` applies
/// when `RUST_LOG` is not set.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let colour = use_colour(
        std::env::var_os("NO_COLOR").as_deref(),
        std::io::stderr().is_terminal(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
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

#[cfg(test)]
mod tests {
    use super::use_colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(None, true));
        assert!(!use_colour(None, false));
        assert!(!use_colour(Some(OsStr::new("1")), true));
        // An empty NO_COLOR does not count (no-color.org).
        assert!(use_colour(Some(OsStr::new("")), true));
    }
}
