//! The configuration of an `etat-civil/cityweb` connector, read from its `[[connectors]]`
//! table.

use std::path::PathBuf;
use std::sync::Arc;

use aiguillage_connector::transport::SftpConfig;
use aiguillage_connector::{ConfigError, Connector, ConnectorConfig, Setup};
use serde::Deserialize;

use crate::{Encoding, EtatCivilConnector};

/// Default of `file_name`: the file is named after the envelope id, like the Cityweb
/// family's own exporters name it after `identifiant`.
pub const DEFAULT_FILE_NAME: &str = "{id}.xml";

/// Default of `event_subdirectories`: one sub-directory per event type (`NAI/`, `MAR/`,
/// `DEC/`, `REC/`), as the Cityweb family imports them.
pub const DEFAULT_EVENT_SUBDIRECTORIES: bool = true;

/// Default of `encoding`: UTF-8.
pub const DEFAULT_ENCODING: Encoding = Encoding::Utf8;

/// Default of `transliterate`: in ISO-8859-1, `œ` becomes `oe` rather than the request
/// being refused.
pub const DEFAULT_TRANSLITERATE: bool = true;

/// Configuration of an `etat-civil/cityweb` connector: each demande d'acte becomes one
/// `demandeEtatCivil` XML file in the import directory of the état-civil software.
///
/// ```toml
/// [[connectors]]
/// name = "clisson-cityweb"
/// kind = "etat-civil/cityweb"
/// directory = "/var/spool/cityweb/clisson/import"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EtatCivilConfig {
    /// The software's import directory. Required.
    ///
    /// Local: it must exist and be writable by the gateway when it starts (relative paths
    /// are relative to the configuration file). With `sftp`: the directory on the server.
    pub directory: PathBuf,

    /// The SFTP server holding the import directory; default none (local directory).
    #[serde(default)]
    pub sftp: Option<SftpConfig>,

    /// The template of each file's name; default `{id}.xml`. Placeholders `{id}`
    /// (required), `{commune}`, `{form}`, `{connector}`, made safe for a file name as for
    /// `file-drop`. It may contain `/` to add sub-directories.
    #[serde(default = "default_file_name")]
    pub file_name: String,

    /// Whether files go into `NAI/`, `MAR/`, `DEC/` or `REC/` after their event; default
    /// `true`. The sub-directories are created when missing.
    #[serde(default = "default_event_subdirectories")]
    pub event_subdirectories: bool,

    /// The files' encoding: `"utf-8"` (default) or `"iso-8859-1"` for software that reads
    /// nothing else.
    #[serde(default = "default_encoding")]
    pub encoding: Encoding,

    /// In ISO-8859-1, whether characters outside it are transliterated (`œ` → `oe`,
    /// `Ł` → `L`, `’` → `'`; default `true`) or the request refused with the field named
    /// (`false`). A character with no Latin equivalent (an emoji) is refused either way.
    #[serde(default = "default_transliterate")]
    pub transliterate: bool,
}

impl EtatCivilConfig {
    /// A configuration writing into the local `directory`, every other key at its default.
    pub fn new(directory: impl Into<PathBuf>) -> Self {
        Self {
            directory: directory.into(),
            sftp: None,
            file_name: default_file_name(),
            event_subdirectories: DEFAULT_EVENT_SUBDIRECTORIES,
            encoding: DEFAULT_ENCODING,
            transliterate: DEFAULT_TRANSLITERATE,
        }
    }
}

fn default_file_name() -> String {
    DEFAULT_FILE_NAME.to_owned()
}

fn default_event_subdirectories() -> bool {
    DEFAULT_EVENT_SUBDIRECTORIES
}

fn default_encoding() -> Encoding {
    DEFAULT_ENCODING
}

fn default_transliterate() -> bool {
    DEFAULT_TRANSLITERATE
}

impl ConnectorConfig for EtatCivilConfig {
    const KIND: &'static str = "etat-civil/cityweb";

    fn build(self, setup: &Setup) -> Result<Arc<dyn Connector>, ConfigError> {
        Ok(Arc::new(EtatCivilConnector::new(self, setup)?))
    }
}
