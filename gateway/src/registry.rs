//! The connector kinds this gateway build knows.
//!
//! The library knows no kind by itself: the `aiguillage` crate registers the built-in ones
//! (`aiguillage::builtin_registry`), and a provider's binary adds its own
//! (`aiguillage::Gateway::builtin().connector::<MyConfig>()`).

use aiguillage_connector::{ConnectorConfig, ConnectorKind};

/// Connector kinds by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    kinds: Vec<ConnectorKind>,
}

impl Registry {
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
