//! The configuration of a `facturation/pes` connector, read from its `[[connectors]]`
//! table.

use std::path::PathBuf;
use std::sync::Arc;

use aiguillage_connector::transport::SftpConfig;
use aiguillage_connector::{ConfigError, Connector, ConnectorConfig, Setup};
use serde::Deserialize;

use crate::PesConnector;

/// Default of `file_name`: the PES file type, the exercice, the bordereau number (7
/// digits) and the envelope id, e.g.
/// `PESALR1_2026_0000042_clisson-sevre-maine_inscription-cantine_1204.xml`.
pub const DEFAULT_FILE_NAME: &str = "PESALR1_{exercice}_{bordereau}_{id}.xml";

/// Default of `encoding`: ISO-8859-1, the encoding of PES files.
pub const DEFAULT_ENCODING: Encoding = Encoding::Latin1;

/// Default of `transliterate`: `œ` becomes `oe` rather than the titre being refused.
pub const DEFAULT_TRANSLITERATE: bool = true;

/// Default of `pj_max_bytes`: 5 MiB, the largest bill PDF embedded in a PES file.
pub const DEFAULT_PJ_MAX_BYTES: usize = 5 * 1024 * 1024;

/// The character encoding of the files (ISO-8859-1 by default: what Hélios and the finance
/// software expect).
pub use aiguillage_connector::charset::Encoding;

/// Configuration of a `facturation/pes` connector: each titre de recette becomes one PES
/// V2 `PES_Aller` file (one bordereau, one titre) in the finance software's import
/// directory.
///
/// ```toml
/// [[connectors]]
/// name = "clisson-finances"
/// kind = "facturation/pes"
/// directory = "/var/spool/finances/clisson/pes"
/// id_coll = "21440043800005"
/// cod_col = "043"
/// cod_bud = "00"
/// id_post = "044012"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PesConfig {
    /// The finance software's PES import directory. Required.
    ///
    /// Local: it must exist and be writable by the gateway when it starts (relative paths
    /// are relative to the configuration file). With `sftp`: the directory on the server.
    pub directory: PathBuf,

    /// The SFTP server holding the import directory; default none (local directory).
    #[serde(default)]
    pub sftp: Option<SftpConfig>,

    /// SIRET of the collectivité whose budget the titres belong to (`IdColl`): 14 digits,
    /// key checked. Required.
    pub id_coll: String,

    /// Code collectivité given by the Treasury (`CodCol`): 1 to 3 letters or digits.
    /// Required.
    pub cod_col: String,

    /// Code budget (`CodBud`): 2 letters or digits, `00` for the main budget. Required.
    pub cod_bud: String,

    /// Codique of the poste comptable (`IdPost`), e.g. `044012`. Required.
    pub id_post: String,

    /// Name of the collectivité and budget (`LibelleColBud`, 38 characters at most);
    /// default none.
    #[serde(default)]
    pub libelle: Option<String>,

    /// The template of each file's name; default
    /// `PESALR1_{exercice}_{bordereau}_{id}.xml`. Placeholders `{id}` (required),
    /// `{commune}`, `{form}`, `{connector}` as for `file-drop`, plus `{exercice}` (4
    /// digits) and `{bordereau}` (`IdBord`, 7 digits). It may contain `/`.
    #[serde(default = "default_file_name")]
    pub file_name: String,

    /// The files' encoding: `"iso-8859-1"` (default, the PES encoding) or `"utf-8"`.
    #[serde(default = "default_encoding")]
    pub encoding: Encoding,

    /// In ISO-8859-1, whether characters outside it are transliterated (`œ` → `oe`;
    /// default `true`) or the titre refused with the field named (`false`).
    #[serde(default = "default_transliterate")]
    pub transliterate: bool,

    /// The name of the attachment (as the mapping hands it over, e.g. `facture`) that is
    /// the bill's PDF, embedded in the file as a `PES_PJ` piece justificative and
    /// referenced from its titre by `PJRef`; default none: no PJ is written. A titre whose
    /// démarche has no such attachment is issued without PJ (make the attachment
    /// `required` in the mapping to refuse it instead); one that is not a PDF, or larger
    /// than `pj_max_bytes`, is refused.
    #[serde(default)]
    pub pj_attachment: Option<String>,

    /// The largest PDF embedded as PJ, in bytes; default 5 MiB (5242880).
    #[serde(default = "default_pj_max_bytes")]
    pub pj_max_bytes: usize,

    /// Titres grouped into one bordereau per period (`{ every = "1d", at = "17:00" }`) or
    /// per number of titres (`{ titres = 50 }`); default none: one bordereau per démarche.
    #[serde(default)]
    pub grouping: Option<Grouping>,
}

/// How titres are grouped into bordereaux (see docs/connectors/facturation.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Grouping {
    /// A bordereau every this long (`"1d"`), cut at `at`.
    #[serde(default, with = "humantime_serde")]
    pub every: Option<std::time::Duration>,
    /// The time of day of the cut (`"17:00"`, UTC); default `"00:00"`.
    #[serde(default)]
    pub at: Option<String>,
    /// A bordereau every this many titres.
    #[serde(default)]
    pub titres: Option<u32>,
    /// With `titres`: the longest a titre waits for its bordereau to fill; default `"1d"`.
    #[serde(default, with = "humantime_serde")]
    pub max_wait: Option<std::time::Duration>,
}

impl Grouping {
    /// One bordereau every `titres` titres.
    pub fn titres(titres: u32) -> Self {
        Self {
            every: None,
            at: None,
            titres: Some(titres),
            max_wait: None,
        }
    }
}

impl PesConfig {
    /// A configuration writing into the local `directory` for the given collectivité,
    /// every other key at its default.
    pub fn new(
        directory: impl Into<PathBuf>,
        id_coll: impl Into<String>,
        cod_col: impl Into<String>,
        cod_bud: impl Into<String>,
        id_post: impl Into<String>,
    ) -> Self {
        Self {
            directory: directory.into(),
            sftp: None,
            id_coll: id_coll.into(),
            cod_col: cod_col.into(),
            cod_bud: cod_bud.into(),
            id_post: id_post.into(),
            libelle: None,
            file_name: default_file_name(),
            encoding: DEFAULT_ENCODING,
            transliterate: DEFAULT_TRANSLITERATE,
            pj_attachment: None,
            pj_max_bytes: DEFAULT_PJ_MAX_BYTES,
            grouping: None,
        }
    }

    /// Sets `grouping`.
    #[must_use]
    pub fn with_grouping(mut self, grouping: Grouping) -> Self {
        self.grouping = Some(grouping);
        self
    }

    /// Sets `pj_attachment`: the bill's PDF is embedded as `PES_PJ`.
    #[must_use]
    pub fn with_pj_attachment(mut self, name: impl Into<String>) -> Self {
        self.pj_attachment = Some(name.into());
        self
    }

    /// Sets `pj_max_bytes`.
    #[must_use]
    pub fn with_pj_max_bytes(mut self, max: usize) -> Self {
        self.pj_max_bytes = max;
        self
    }

    /// Sets `file_name`.
    #[must_use]
    pub fn with_file_name(mut self, file_name: impl Into<String>) -> Self {
        self.file_name = file_name.into();
        self
    }

    /// Sets `encoding`.
    #[must_use]
    pub fn with_encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Sets `libelle`.
    #[must_use]
    pub fn with_libelle(mut self, libelle: impl Into<String>) -> Self {
        self.libelle = Some(libelle.into());
        self
    }

    /// Sets `sftp`.
    #[must_use]
    pub fn with_sftp(mut self, sftp: SftpConfig) -> Self {
        self.sftp = Some(sftp);
        self
    }
}

fn default_file_name() -> String {
    DEFAULT_FILE_NAME.to_owned()
}

fn default_encoding() -> Encoding {
    DEFAULT_ENCODING
}

fn default_pj_max_bytes() -> usize {
    DEFAULT_PJ_MAX_BYTES
}

fn default_transliterate() -> bool {
    DEFAULT_TRANSLITERATE
}

impl ConnectorConfig for PesConfig {
    const KIND: &'static str = "facturation/pes";

    fn build(self, setup: &Setup) -> Result<Arc<dyn Connector>, ConfigError> {
        Ok(Arc::new(PesConnector::new(self, setup)?))
    }
}
