//! `dossier.json`: the deposit as the mapping wrote it (every key, unchanged), with what
//! the connector adds: `format`, `version`, `dossier`, each parcel's `reference` and each
//! pièce's `chemin`, `type_media`, `taille` and `sha512`. Pretty-printed, keys sorted,
//! UTF-8, ending with a newline. Its JSON Schema is `schema/dossier.schema.json`.

use serde_json::{json, Map, Value};

use crate::validate::ValidDossier;

/// The `format` of `dossier.json` and `manifest.json`.
pub const FORMAT: &str = "aiguillage/urbanisme-dossier";

/// The version of the package format.
pub const VERSION: u32 = 1;

/// The JSON Schema (draft 2020-12) of `dossier.json`, as shipped.
pub const SCHEMA: &str = include_str!("../schema/dossier.schema.json");

/// What the package says of a file: its size and SHA-512 (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// Size in bytes.
    pub taille: u64,
    /// SHA-512, 128 lowercase hex digits.
    pub sha512: String,
}

/// The `dossier.json` value of `dossier`, read from `document`; `digests` has one entry per
/// pièce, in order.
pub fn value(document: &Value, dossier: &ValidDossier<'_>, digests: &[Digest]) -> Value {
    let mut value = document.clone();
    if let Some(map) = value.as_object_mut() {
        map.insert("format".into(), json!(FORMAT));
        map.insert("version".into(), json!(VERSION));
        map.insert("dossier".into(), json!(dossier.dossier));
    }
    if let Some(parcelles) = value
        .pointer_mut("/terrain/parcelles")
        .and_then(Value::as_array_mut)
    {
        for (parcelle, reference) in parcelles.iter_mut().zip(&dossier.references) {
            if let Some(map) = parcelle.as_object_mut() {
                map.insert("reference".into(), json!(reference));
            }
        }
    }
    if let Some(pieces) = value.pointer_mut("/pieces").and_then(Value::as_array_mut) {
        for ((piece, valid), digest) in pieces.iter_mut().zip(&dossier.pieces).zip(digests) {
            if let Some(map) = piece.as_object_mut() {
                map.insert("chemin".into(), json!(valid.chemin));
                map.insert("type_media".into(), json!(valid.media_type.as_str()));
                map.insert("taille".into(), json!(digest.taille));
                map.insert("sha512".into(), json!(digest.sha512));
            }
        }
    }
    sorted(value)
}

/// The bytes of `dossier.json`.
pub fn to_bytes(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// `value` with the keys of every object in sorted order, whatever map serde_json uses
/// (another crate of the build may turn on its `preserve_order`).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = Map::new();
            for (key, item) in entries {
                out.insert(key, sorted(item));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}
