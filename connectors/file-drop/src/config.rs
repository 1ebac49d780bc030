//! The configuration of a `file-drop` connector, read from its `[[connectors]]` table.

use std::path::PathBuf;
use std::sync::Arc;

use aiguillage_connector::{ConfigError, Connector, ConnectorConfig, Setup};
use serde::Deserialize;

use crate::transport::SftpConfig;
use crate::FileDropConnector;

/// Default of `file_name`: one file per envelope, named after its id.
pub const DEFAULT_FILE_NAME: &str = "{id}.json";

/// Default of `create_subdirectories`: a template with `/` is refused, so that a typo cannot
/// scatter files into directories nobody watches.
pub const DEFAULT_CREATE_SUBDIRECTORIES: bool = false;

/// Default of `pretty`: indented JSON, easier to read for an agent opening the file.
pub const DEFAULT_PRETTY: bool = true;

/// Configuration of a `file-drop` connector: each démarche is written as a JSON file into
/// a directory that the business software imports from.
///
/// ```toml
/// [[connectors]]
/// name = "etat-civil-import"
/// kind = "file-drop"
/// directory = "/var/spool/etat-civil/import"
/// file_name = "{commune}_{form}_{id}.json"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FileDropConfig {
    /// The directory the files are dropped into. Required.
    ///
    /// It must exist and be writable by the gateway when the gateway starts, on a
    /// filesystem that supports hard links (each file is published with one, so that it
    /// appears complete or not at all). A relative path is relative to the directory of the
    /// configuration file. The directory is trusted: symbolic links in it are followed.
    /// With `sftp`, it is the directory on the SFTP server instead (absolute, or relative
    /// to the login directory), checked only when files are published.
    pub directory: PathBuf,

    /// The SFTP server to drop the files on, when the directory is on another machine;
    /// default: none, `directory` is local. See [`SftpConfig`].
    #[serde(default)]
    pub sftp: Option<SftpConfig>,

    /// The template of each file's path relative to `directory`; default `{id}.json`.
    ///
    /// Placeholders: `{id}` (the envelope id, required so that two démarches never share
    /// a file), `{commune}` (INSEE code), `{form}` (form slug) and `{connector}` (this
    /// connector's `name`). Each value is made safe for a file name: characters other than
    /// `A-Z a-z 0-9 . _ -` become `_`, leading dots are replaced, long values are cut, and a
    /// value that had to be changed gets a short hash of the original appended so that two
    /// different values never give the same name. There is no `{attempt}`: a retry must
    /// write the same file. Braces are allowed only around a placeholder, and a name may
    /// not start with `.` (hidden names are the connector's temporary files).
    #[serde(default = "default_file_name")]
    pub file_name: String,

    /// Whether `file_name` may contain `/` to sort files into sub-directories of
    /// `directory` (created when missing); default `false`.
    #[serde(default = "default_create_subdirectories")]
    pub create_subdirectories: bool,

    /// Whether the JSON is indented; default `true`. Either way the file is UTF-8 and ends
    /// with a newline.
    #[serde(default = "default_pretty")]
    pub pretty: bool,
}

impl FileDropConfig {
    /// A configuration dropping files into `directory`, with every other key at its
    /// default.
    pub fn new(directory: impl Into<PathBuf>) -> Self {
        Self {
            directory: directory.into(),
            sftp: None,
            file_name: default_file_name(),
            create_subdirectories: DEFAULT_CREATE_SUBDIRECTORIES,
            pretty: DEFAULT_PRETTY,
        }
    }
}

// serde's `default = "…"` takes functions; the constants above are the documented values.
fn default_file_name() -> String {
    DEFAULT_FILE_NAME.to_owned()
}

fn default_create_subdirectories() -> bool {
    DEFAULT_CREATE_SUBDIRECTORIES
}

fn default_pretty() -> bool {
    DEFAULT_PRETTY
}

impl ConnectorConfig for FileDropConfig {
    const KIND: &'static str = "file-drop";

    fn build(self, setup: &Setup) -> Result<Arc<dyn Connector>, ConfigError> {
        Ok(Arc::new(FileDropConnector::new(self, setup)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_directory_is_required() {
        let config: FileDropConfig =
            serde_json::from_value(serde_json::json!({"directory": "drop"})).unwrap();
        assert_eq!(config.directory, FileDropConfig::new("drop").directory);
        assert!(config.sftp.is_none());
        assert_eq!(config.file_name, "{id}.json");
        assert!(!config.create_subdirectories);
        assert!(config.pretty);
    }

    #[test]
    fn unknown_and_missing_keys_are_refused() {
        let error = serde_json::from_value::<FileDropConfig>(serde_json::json!({
            "directory": "drop",
            "filename": "{id}.json",
        }))
        .unwrap_err();
        assert!(
            error.to_string().contains("unknown field `filename`"),
            "{error}"
        );
        let error = serde_json::from_value::<FileDropConfig>(serde_json::json!({})).unwrap_err();
        assert!(
            error.to_string().contains("missing field `directory`"),
            "{error}"
        );
    }
}
