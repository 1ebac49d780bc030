use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::Connector;

/// A connector's configuration, read from its `[[connectors]]` table, and the factory of
/// the connector.
///
/// The gateway removes the keys it owns (`name`, `kind`, `concurrency`, `retry`) and
/// deserialises the rest into this type: use `#[serde(deny_unknown_fields)]` so that a
/// misspelt key is refused at start, and document every field where it is declared.
pub trait ConnectorConfig: DeserializeOwned + Send + 'static {
    /// The connector kind, as written in `kind = "…"`: lowercase, e.g. `rest`,
    /// `file-drop`, `etat-civil/cityweb`.
    const KIND: &'static str;

    /// Checks the configuration and builds the connector.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the key at fault and how to fix it (a bad URL, a missing
    /// secret, a directory that does not exist).
    fn build(self, setup: &Setup) -> Result<Arc<dyn Connector>, ConfigError>;
}

/// What the gateway tells a connector when building it.
#[derive(Debug, Clone)]
pub struct Setup {
    name: String,
    base_dir: PathBuf,
}

impl Setup {
    /// A setup for the connector instance `name`, resolving relative paths from `base_dir`.
    pub fn new(name: impl Into<String>, base_dir: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            base_dir: base_dir.into(),
        }
    }

    /// The connector instance's name (its `name` key).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Resolves a path of the configuration: relative paths are relative to the directory
    /// of the configuration file.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }
}

/// A configuration refused when the gateway starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key has a wrong value; `key` is its path inside the connector's table.
    #[error("`{key}`: {message}")]
    Invalid {
        /// The key at fault, e.g. `auth.token_url`.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A secret is neither given inline nor readable from its file.
    #[error("`{key}`: {message}")]
    MissingSecret {
        /// The key of the secret, e.g. `auth.password`.
        key: String,
        /// Where it was looked for and how to give it.
        message: String,
    },
}

impl ConfigError {
    /// An invalid value at `key`.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// A missing secret at `key`.
    pub fn missing_secret(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::MissingSecret {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The key at fault.
    pub fn key(&self) -> &str {
        match self {
            Self::Invalid { key, .. } | Self::MissingSecret { key, .. } => key,
        }
    }
}

type BuildFn = fn(serde_json::Value, &Setup) -> Result<Arc<dyn Connector>, ConfigError>;

/// A connector kind as the gateway registers it: its name and its factory, with the
/// configuration type erased.
#[derive(Clone, Copy)]
pub struct ConnectorKind {
    name: &'static str,
    build: BuildFn,
}

impl std::fmt::Debug for ConnectorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorKind")
            .field("name", &self.name)
            .finish()
    }
}

impl ConnectorKind {
    /// The kind whose configuration is `C`.
    pub fn of<C: ConnectorConfig>() -> Self {
        Self {
            name: C::KIND,
            build: build_erased::<C>,
        }
    }

    /// The kind's name (`kind = "…"`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Deserialises `table` (the connector's keys) and builds the connector.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for an unknown or mistyped key, or whatever
    /// [`ConnectorConfig::build`] refuses.
    pub fn build(
        &self,
        table: serde_json::Value,
        setup: &Setup,
    ) -> Result<Arc<dyn Connector>, ConfigError> {
        (self.build)(table, setup)
    }
}

fn build_erased<C: ConnectorConfig>(
    table: serde_json::Value,
    setup: &Setup,
) -> Result<Arc<dyn Connector>, ConfigError> {
    let config: C = serde_path_to_error::deserialize(table).map_err(|error| {
        let path = error.path().to_string();
        let key = if path == "." { String::new() } else { path };
        ConfigError::invalid(key, error.into_inner().to_string())
    })?;
    config.build(setup)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{async_trait, ConnectorError, Context, Document, Receipt};

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Probe {
        #[allow(dead_code)]
        url: String,
        #[serde(default)]
        #[allow(dead_code)]
        timeout: Option<u64>,
    }

    struct Nothing;

    #[async_trait]
    impl Connector for Nothing {
        async fn deliver(&self, _: &Document, _: &Context) -> Result<Receipt, ConnectorError> {
            Ok(Receipt::new())
        }
    }

    impl ConnectorConfig for Probe {
        const KIND: &'static str = "probe";
        fn build(self, _: &Setup) -> Result<Arc<dyn Connector>, ConfigError> {
            Ok(Arc::new(Nothing))
        }
    }

    #[test]
    fn erased_build_names_the_bad_key() {
        let kind = ConnectorKind::of::<Probe>();
        assert_eq!(kind.name(), "probe");
        let setup = Setup::new("c", "/etc/aiguillage");
        let error = kind
            .build(serde_json::json!({"url": "x", "timeout": "soon"}), &setup)
            .err()
            .expect("a mistyped key is refused");
        assert_eq!(error.key(), "timeout");
        let error = kind
            .build(serde_json::json!({"url": "x", "tiemout": 3}), &setup)
            .err()
            .expect("an unknown key is refused");
        assert!(
            error.to_string().contains("unknown field `tiemout`"),
            "{error}"
        );
    }

    #[test]
    fn relative_paths_are_resolved_from_the_config_directory() {
        let setup = Setup::new("c", "/etc/aiguillage");
        assert_eq!(
            setup.resolve(Path::new("secrets/token")),
            PathBuf::from("/etc/aiguillage/secrets/token")
        );
        assert_eq!(setup.resolve(Path::new("/run/x")), PathBuf::from("/run/x"));
    }
}
