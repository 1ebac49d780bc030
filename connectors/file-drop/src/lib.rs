//! The `file-drop` connector of Aiguillage: writes each démarche as a JSON file into a
//! directory that a business software imports from.
//!
//! ```toml
//! [[connectors]]
//! name = "etat-civil-import"
//! kind = "file-drop"
//! directory = "/var/spool/etat-civil/import"   # must exist and be writable
//! file_name = "{commune}_{form}_{id}.json"     # default "{id}.json"
//! create_subdirectories = false                # default: no `/` in file_name
//! pretty = true                                # default: indented JSON
//! ```
//!
//! - **Content**: the document (the mapped envelope) as JSON, UTF-8, ending with a newline.
//! - **Names**: from the `file_name` template; every value taken from the message is made
//!   safe (see [`FileDropConfig::file_name`]), and the rendered path is checked to be a
//!   plain relative path, so no message can write outside `directory`.
//! - **Atomicity**: the file is written under a hidden temporary name
//!   (`.<name>.<random>.tmp`), synced, then published under its name with a hard link, and
//!   the directory is synced: a consumer sees the whole file or nothing.
//! - **Idempotency**: a file is never overwritten. A redelivery of the same envelope finds
//!   its file with the same bytes and succeeds; a different document under an existing
//!   name is a permanent failure.
//! - **Failures**: disk full, quota, permissions and other I/O errors are transient (fix the
//!   disk and the démarche goes through on retry); an unsafe name or a conflicting file is
//!   permanent. Messages name the path, never the content.
//! - **Receipt**: the reference is the file's path relative to `directory`, e.g.
//!   `44043_demande-acte-naissance_42.json`.
//! - **Remote directories**: with an `sftp` table the files go to that directory on an SFTP
//!   server, with the same guarantees (see [`transport`]).
//!
//! The [`transport`] and [`name`] modules, shared by every connector that drops files,
//! live in the SDK (feature `files`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod connector;

/// Safe file names and name templates: the SDK's (feature `files`), re-exported here where
/// the file connectors first found them.
pub use aiguillage_connector::name;
/// The file transport (local directory or SFTP): the SDK's (feature `files`), re-exported
/// here where the file connectors first found them.
pub use aiguillage_connector::transport;

pub use config::{
    FileDropConfig, DEFAULT_CREATE_SUBDIRECTORIES, DEFAULT_FILE_NAME, DEFAULT_PRETTY,
};
pub use connector::FileDropConnector;
