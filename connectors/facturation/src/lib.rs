//! The `facturation/pes` connector of Aiguillage: each mapped « titre de recette »
//! (docs/documents.md, section « Facturation ») is written as one DGFiP PES V2
//! `PES_Aller` file with a `PES_RecetteAller` part (`schemas/pes-v2/`), one
//! bordereau holding one titre, into the import directory of the commune's finance
//! software, locally or over SFTP.
//!
//! ```toml
//! [[connectors]]
//! name = "clisson-finances"
//! kind = "facturation/pes"
//! directory = "/var/spool/finances/clisson/pes"  # or the directory on the SFTP server
//! id_coll = "21440043800005"                     # SIRET of the collectivité (checked)
//! cod_col = "043"                                # code collectivité (Hélios)
//! cod_bud = "00"                                 # code budget
//! id_post = "044012"                             # codique of the poste comptable
//! file_name = "PESALR1_{exercice}_{bordereau}_{id}.xml"  # default
//! encoding = "iso-8859-1"                        # default, the PES encoding
//! ```
//!
//! - **Content**: [`encode()`]: the schema's element order, every value in the `V`
//!   attribute, amounts computed exactly in cents from the document's decimal strings.
//! - **Treasury rules**: [`titre::Titre::from_document`] refuses what Hélios would bounce
//!   (zero or negative amounts, more than two decimals, a missing debtor name…), before
//!   any number is taken.
//! - **Numbering**: `IdBord` and `IdPce` come from the gateway's durable numbering, one
//!   number per envelope: a retry or a redelivery keeps its numbers.
//! - **Pieces justificatives**: with `pj_attachment`, the bill's PDF is embedded as
//!   `PES_PJ` (gzip-ed, base 64: [`gzip`]) and referenced from its titre by `PJRef`.
//! - **Files**: the shared transport of `file-drop` (hidden temporary name, then the final
//!   name, never replacing a file; a redelivery finds its file and succeeds).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod amount;
mod config;
mod connector;
pub mod encode;
pub mod grouping;
pub mod gzip;
/// The SIRET check: the SDK's ([`aiguillage_connector::siret`]), re-exported here where it
/// was first written.
pub use aiguillage_connector::siret;
pub mod titre;

pub use amount::Cents;
pub use config::{
    Encoding, Grouping, PesConfig, DEFAULT_ENCODING, DEFAULT_FILE_NAME, DEFAULT_PJ_MAX_BYTES,
    DEFAULT_TRANSLITERATE,
};
pub use connector::PesConnector;
pub use encode::{encode, Bordereau, Collectivite, EncodeOptions, Piece, PieceJointe};
pub use titre::{FieldError, Titre};
