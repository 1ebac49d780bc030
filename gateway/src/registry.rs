//! The connector kinds this gateway build knows.
//!
//! Adding a connector crate to the gateway is one line in [`Registry::builtin`] (and the
//! crate in `Cargo.toml`).

use aiguillage_connector::{ConnectorConfig, ConnectorKind};

/// Connector kinds by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    kinds: Vec<ConnectorKind>,
}

impl Registry {
    /// The kinds built into this binary.
    pub fn builtin() -> Self {
        Self::default()
            .with::<aiguillage_connector_rest::RestConfig>()
            .with::<aiguillage_connector_file_drop::FileDropConfig>()
            .with::<aiguillage_connector_etat_civil::EtatCivilConfig>()
            .with::<aiguillage_connector_facturation::PesConfig>()
            .with::<aiguillage_connector_webhook::WebhookConfig>()
            .with::<aiguillage_connector_urbanisme::UrbanismeConfig>()
    }

    /// Adds the kind whose configuration is `C` (a later registration of the same name wins).
    #[must_use]
    pub fn with<C: ConnectorConfig>(mut self) -> Self {
        let kind = ConnectorKind::of::<C>();
        self.kinds.retain(|k| k.name() != kind.name());
        self.kinds.push(kind);
        self
    }

    /// The kind named `name`.
    pub fn kind(&self, name: &str) -> Option<&ConnectorKind> {
        self.kinds.iter().find(|k| k.name() == name)
    }

    /// The known kind names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.kinds.iter().map(ConnectorKind::name).collect();
        names.sort_unstable();
        names
    }
}
