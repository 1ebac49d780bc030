//! The `etat-civil/cityweb` connector of Aiguillage: each mapped « demande d'acte »
//! (docs/documents.md) is written as one Cityweb `demandeEtatCivil` XML file
//! (`schemas/cityweb/etatcivil.xsd`) into the état-civil software's import
//! directory, locally or over SFTP.
//!
//! ```toml
//! [[connectors]]
//! name = "clisson-cityweb"
//! kind = "etat-civil/cityweb"
//! directory = "/var/spool/cityweb/clisson/import"   # or the directory on the SFTP server
//! file_name = "{id}.xml"                             # default
//! event_subdirectories = true                        # default: NAI/, MAR/, DEC/, REC/
//! encoding = "utf-8"                                 # or "iso-8859-1"
//! transliterate = true                               # default, in ISO-8859-1: œ → oe
//! ```
//!
//! - **Content**: [`encode()`]: the schema's element order, every text escaped, control
//!   characters refused, incomplete dates turned into periods.
//! - **Legal rules**: [`rules::RULES`], checked before anything is written.
//! - **Files**: the shared transport of `file-drop` (hidden temporary name, then the final
//!   name, never replacing a file; a redelivery finds its file and succeeds).
//! - **Failures**: a document that cannot be written or a request the law refuses is a
//!   permanent failure naming the field or the rule; the disk, the network and the SFTP
//!   server give transient ones.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod connector;
pub mod document;
pub mod encode;
pub mod rules;

pub use config::{
    EtatCivilConfig, DEFAULT_ENCODING, DEFAULT_EVENT_SUBDIRECTORIES, DEFAULT_FILE_NAME,
    DEFAULT_TRANSLITERATE,
};
pub use connector::EtatCivilConnector;
pub use document::{
    DemandeActe, FieldError, Genre, NatureDocument, NatureEvenement, Origine, PartialDate,
    QualiteDemandeur, Sexe, TypeInteresse,
};
pub use encode::{encode, EncodeOptions, Encoding};
