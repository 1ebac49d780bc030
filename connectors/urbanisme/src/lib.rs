//! The `urbanisme/dossier` connector of Aiguillage: each mapped deposit (docs/documents.md,
//! « Urbanisme: dépôt ») — a déclaration préalable, a permis de construire, d'aménager or
//! de démolir, a certificat d'urbanisme — becomes a complete, self-describing **dossier
//! package** for the instruction service (service ADS), dropped into its import directory,
//! locally or over SFTP, or sent by e-mail ([`mail`]).
//!
//! ```toml
//! [[connectors]]
//! name = "ads-agglo"
//! kind = "urbanisme/dossier"
//! directory = "/var/spool/ads/depots"      # or the directory on the SFTP server
//! package = "zip"                          # default; "directory" for <dossier>/
//! max_piece_bytes = 26214400               # default, 25 MiB per pièce
//! max_package_bytes = 104857600            # default, 100 MiB of pièces per dossier
//! # work_directory = "/var/tmp/aiguillage" # default: the system's temporary directory
//! ```
//!
//! - **Identifier**: `{commune}-{type_dossier}-{h}` ([`dossier_id`]), `h` from the
//!   SHA-256 of the envelope id: the same for every delivery of the envelope.
//! - **Package** ([`package`]): `dossier.json` ([`json`], JSON Schema
//!   `schema/dossier.schema.json`), `dossier.xml` ([`xml`], `schema/dossier.xsd`),
//!   `pieces/<CODE>.<ext>`, then `manifest.json` ([`manifest`]: size, media type and
//!   SHA-512 of every other file). A zip with stored entries dated at the deposit date
//!   (the same envelope gives the same bytes), or a directory whose manifest is written
//!   last.
//! - **Validation** ([`validate()`]), before anything is written: cadastral parcels
//!   ([`cadastre`]), required pièces per dossier type ([`tables`], kept as data in
//!   `data/*.toml`), pièces ↔ attachments one to one, media types and their magic bytes,
//!   sizes, SIRET. Every violation is listed in one permanent failure.
//! - **Memory**: the pièces are written from the attachments' bytes, never copied, and
//!   the package is published from its file (`Transport::publish_file`).
//! - **Failures**: the document's problems are permanent; the work directory, the disk,
//!   the network and the SFTP server give transient ones.
//! - **Receipt**: the reference is the dossier identifier; its details `dossier` and
//!   `date_depot` (the deposit date as the document gives it) are the AEE's data.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cadastre;
mod config;
mod connector;
pub mod document;
pub mod json;
pub mod mail;
pub mod manifest;
pub mod package;
mod quote;
pub mod tables;
pub mod validate;
pub mod xml;

pub use config::{UrbanismeConfig, DEFAULT_MAX_PACKAGE_BYTES, DEFAULT_MAX_PIECE_BYTES};
pub use connector::UrbanismeConnector;
pub use document::{Depot, ShapeError};
pub use mail::{MailDelivery, DEFAULT_ATTACH_MAX_BYTES};
pub use manifest::{Fichier, Manifest};
pub use package::{Package, PackageError, PackageFormat};
pub use validate::{dossier_id, validate, Limits, MediaType, ValidDossier, Violations};
