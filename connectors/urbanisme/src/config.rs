//! The configuration of an `urbanisme/dossier` connector, read from its `[[connectors]]`
//! table.

use std::path::PathBuf;
use std::sync::Arc;

use aiguillage_connector::transport::SftpConfig;
use aiguillage_connector::{ConfigError, Connector, ConnectorConfig, Setup};
use serde::Deserialize;

use crate::{MailDelivery, PackageFormat, UrbanismeConnector};

/// Default of `max_piece_bytes`: 25 MiB, above the 20 MiB the portal's form allows.
pub const DEFAULT_MAX_PIECE_BYTES: u64 = 25 * 1024 * 1024;

/// Default of `max_package_bytes`: 100 MiB of pièces per dossier.
pub const DEFAULT_MAX_PACKAGE_BYTES: u64 = 100 * 1024 * 1024;

/// Configuration of an `urbanisme/dossier` connector: each deposit becomes a dossier
/// package (`dossier.json`, `dossier.xml`, the pièces, `manifest.json`) in the instruction
/// service's import directory.
///
/// ```toml
/// [[connectors]]
/// name = "ads-agglo"
/// kind = "urbanisme/dossier"
/// directory = "/var/spool/ads/depots"      # or the directory on the SFTP server
/// package = "zip"                          # default; or "directory"
/// max_piece_bytes = 26214400               # default, 25 MiB
/// max_package_bytes = 104857600            # default, 100 MiB
/// # work_directory = "/var/tmp/aiguillage" # default: the system's temporary directory
///
/// # By e-mail instead (the directory then takes the packages too large to attach):
/// # [connectors.mail]
/// # host = "smtp.agglo.example"
/// # user = "aiguillage"
/// # password_file = "/etc/aiguillage/smtp-password"
/// # from = "Aiguillage <aiguillage@agglo.example>"
/// # to = "ads@agglo.example"
/// # attach_max_bytes = 10485760            # default, 10 MiB
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UrbanismeConfig {
    /// The instruction service's import directory. Required.
    ///
    /// Local: it must exist and be writable by the gateway when it starts (relative paths
    /// are relative to the configuration file). With `sftp`: the directory on the server.
    pub directory: PathBuf,

    /// The SFTP server holding the import directory; default none (local directory). The
    /// same table as for `file-drop` and `etat-civil/cityweb`.
    #[serde(default)]
    pub sftp: Option<SftpConfig>,

    /// `"zip"` (default): one file `<dossier>.zip`; `"directory"`: a directory
    /// `<dossier>/` whose `manifest.json` is written last (an importer must ignore a
    /// directory without it).
    #[serde(default)]
    pub package: PackageFormat,

    /// The largest pièce accepted, in bytes; default 25 MiB. A larger one is refused
    /// (permanent failure naming the pièce).
    #[serde(default = "default_max_piece_bytes")]
    pub max_piece_bytes: u64,

    /// The largest total of the pièces of one dossier, in bytes; default 100 MiB.
    #[serde(default = "default_max_package_bytes")]
    pub max_package_bytes: u64,

    /// Where packages are built before they are published (a temporary directory per
    /// delivery, always removed); default the system's temporary directory (`$TMPDIR`,
    /// `/tmp`). It needs room for the largest package.
    #[serde(default)]
    pub work_directory: Option<PathBuf>,

    /// Deliver by e-mail instead ([`MailDelivery`]): the package attached to a mail to the
    /// instruction service, or, above `mail.attach_max_bytes`, dropped in `directory` and
    /// the mail saying where. Default none (the package is only dropped).
    #[serde(default)]
    pub mail: Option<MailDelivery>,
}

impl UrbanismeConfig {
    /// A configuration writing zips into the local `directory`, every other key at its
    /// default.
    pub fn new(directory: impl Into<PathBuf>) -> Self {
        Self {
            directory: directory.into(),
            sftp: None,
            package: PackageFormat::default(),
            max_piece_bytes: DEFAULT_MAX_PIECE_BYTES,
            max_package_bytes: DEFAULT_MAX_PACKAGE_BYTES,
            work_directory: None,
            mail: None,
        }
    }
}

fn default_max_piece_bytes() -> u64 {
    DEFAULT_MAX_PIECE_BYTES
}

fn default_max_package_bytes() -> u64 {
    DEFAULT_MAX_PACKAGE_BYTES
}

impl ConnectorConfig for UrbanismeConfig {
    const KIND: &'static str = "urbanisme/dossier";

    fn build(self, setup: &Setup) -> Result<Arc<dyn Connector>, ConfigError> {
        Ok(Arc::new(UrbanismeConnector::new(self, setup)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_directory_is_required() {
        let config: UrbanismeConfig =
            serde_json::from_value(serde_json::json!({"directory": "ads"})).unwrap();
        assert_eq!(config.package, PackageFormat::Zip);
        assert_eq!(config.max_piece_bytes, 25 * 1024 * 1024);
        assert_eq!(config.max_package_bytes, 100 * 1024 * 1024);
        assert!(config.work_directory.is_none() && config.sftp.is_none());
    }

    #[test]
    fn unknown_keys_and_formats_are_refused() {
        let error = serde_json::from_value::<UrbanismeConfig>(
            serde_json::json!({"directory": "ads", "max_piece_size": 1}),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("unknown field `max_piece_size`"),
            "{error}"
        );
        let error = serde_json::from_value::<UrbanismeConfig>(
            serde_json::json!({"directory": "ads", "package": "tar"}),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("unknown variant `tar`"),
            "{error}"
        );
    }
}
