//! Aiguillage, the binary: the standard command line ([`cli`]), the [`demo`], and the
//! connector kinds built in ([`builtin_registry`]).
//!
//! A provider who writes a connector needs no fork: their own binary is the built-in kinds
//! plus theirs, then the standard CLI (`check`, `run`, `map`, `dead`, …):
//!
//! ```no_run
//! # use aiguillage_connector::ConnectorConfig;
//! # fn demo<MyConfig: ConnectorConfig>() -> std::process::ExitCode {
//! aiguillage::Gateway::builtin()          // the built-in kinds
//!     .connector::<MyConfig>()            // the provider's kind
//!     .main()                             // the standard CLI
//! # }
//! ```
//!
//! (docs/connector-guide.md §4.)
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::process::ExitCode;

use aiguillage_connector::ConnectorConfig;
use aiguillage_gateway::registry::Registry;

pub mod cli;
pub mod demo;

/// The connector kinds built into the `aiguillage` binary.
pub fn builtin_registry() -> Registry {
    Registry::default()
        .with::<aiguillage_connector_rest::RestConfig>()
        .with::<aiguillage_connector_file_drop::FileDropConfig>()
        .with::<aiguillage_connector_etat_civil::EtatCivilConfig>()
        .with::<aiguillage_connector_facturation::PesConfig>()
        .with::<aiguillage_connector_webhook::WebhookConfig>()
        .with::<aiguillage_connector_urbanisme::UrbanismeConfig>()
}

/// A gateway binary being put together: the connector kinds it knows, then its CLI.
#[derive(Debug, Clone, Default)]
pub struct Gateway {
    registry: Registry,
}

impl Gateway {
    /// The kinds built into `aiguillage` ([`builtin_registry`]).
    pub fn builtin() -> Self {
        Self {
            registry: builtin_registry(),
        }
    }

    /// No kind at all (a binary with only its own connectors).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Adds the kind whose configuration is `C` (a kind of the same name is replaced).
    #[must_use]
    pub fn connector<C: ConnectorConfig>(mut self) -> Self {
        self.registry = self.registry.with::<C>();
        self
    }

    /// The kinds known so far.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Parses the command line and runs the verb with these kinds: the process's exit code.
    pub fn main(self) -> ExitCode {
        cli::main(self.registry)
    }
}
