//! `manifest.json`: the last file of a package, listing every other file with its size,
//! media type and SHA-512 (the hash Plat'AU requires). In a directory package it is
//! written last: its presence means the directory is complete.

use serde::{Deserialize, Serialize};

use crate::json::{FORMAT, VERSION};

/// The manifest of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `aiguillage/urbanisme-dossier`.
    pub format: String,
    /// `1`.
    pub version: u32,
    /// The dossier identifier.
    pub dossier: String,
    /// The envelope id.
    pub identifiant: String,
    /// Every other file of the package, in the package's order.
    pub fichiers: Vec<Fichier>,
}

/// A file of the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fichier {
    /// Its path in the package (`pieces/DP1.pdf`).
    pub chemin: String,
    /// Its size in bytes.
    pub taille: u64,
    /// Its media type.
    pub type_media: String,
    /// Its SHA-512, 128 lowercase hex digits.
    pub sha512: String,
}

/// The name of the manifest in a package.
pub const MANIFEST: &str = "manifest.json";

impl Manifest {
    /// An empty manifest for `dossier`.
    pub fn new(dossier: &str, identifiant: &str) -> Self {
        Self {
            format: FORMAT.into(),
            version: VERSION,
            dossier: dossier.into(),
            identifiant: identifiant.into(),
            fichiers: Vec::new(),
        }
    }

    /// Its bytes: pretty JSON in the order above, ending with a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}
