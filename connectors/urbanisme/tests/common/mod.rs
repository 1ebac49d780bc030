//! Sample deposits, their attachments, and readers of the packages, shared by the tests.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aiguillage_connector::{Attachment, Connector, ConnectorKind, Context, Setup};
use aiguillage_connector_urbanisme::tables::Tables;
use aiguillage_connector_urbanisme::UrbanismeConfig;
use base64::Engine as _;
use serde_json::{json, Value};

/// Every dossier type of the contract.
pub const TYPES: [&str; 8] = ["DP", "DPMI", "PC", "PCMI", "PA", "PD", "CUa", "CUb"];

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn crate_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

/// A small PDF naming `what`.
pub fn pdf(what: &str) -> Vec<u8> {
    format!("%PDF-1.4\n% {what}\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
        .into_bytes()
}

/// A PNG signature and a header (enough for the magic bytes), then every byte value.
pub fn png() -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    bytes.extend((0..=255u8).cycle().take(3000));
    bytes
}

/// A JPEG start of image, then every byte value.
pub fn jpeg() -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..=255u8).rev().cycle().take(2000));
    bytes
}

/// A fixture document (`<name>.expected.json`).
pub fn fixture(name: &str) -> Value {
    let path = repo().join(format!("tests/fixtures/urbanisme/{name}.expected.json"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("the fixture exists"))
        .expect("valid JSON")
}

/// The attachments of a fixture, decoded from its w.c.s. envelope and named as
/// `<name>.expected-attachments.json` says.
pub fn fixture_attachments(name: &str) -> Vec<Attachment> {
    let dir = repo().join("tests/fixtures/urbanisme");
    let envelope: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
            .unwrap();
    let expected: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}.expected-attachments.json"))).unwrap(),
    )
    .unwrap();
    expected
        .iter()
        .map(|a| {
            let field = a["field"].as_str().unwrap();
            let file = &envelope["formdata"]["fields"][field.to_lowercase()];
            let content = base64::engine::general_purpose::STANDARD
                .decode(file["content"].as_str().unwrap())
                .unwrap();
            assert_eq!(content.len() as u64, a["bytes"].as_u64().unwrap());
            Attachment::new(
                field,
                a["filename"].as_str().unwrap(),
                a["content_type"].as_str().unwrap(),
                content,
            )
        })
        .collect()
}

/// A complete deposit of type `type_dossier` for envelope `id`, with its attachments: the
/// required pièces of the type (the second one a PNG, the third a JPEG, the rest PDF).
pub fn sample(type_dossier: &str, id: &str) -> (Value, Vec<Attachment>) {
    let tables = Tables::shipped();
    let t = tables.type_dossier(type_dossier).expect("a known type");
    let mut document = fixture("pcmi-maison-couple");
    document["identifiant"] = json!(id);
    document["type_dossier"] = json!(type_dossier);
    document["cerfa"] = json!({ "numero": t.cerfa[0], "revision": "01" });
    let mut pieces = Vec::new();
    let mut attachments = Vec::new();
    for (n, code) in t.pieces_obligatoires.iter().enumerate() {
        let (file, content_type, bytes) = match n {
            1 => (format!("{code}.png"), "image/png", png()),
            2 => (format!("{code} photo.jpeg"), "image/jpeg", jpeg()),
            _ => (format!("../{code} plan.pdf"), "application/pdf", pdf(code)),
        };
        pieces.push(json!({
            "code": code,
            "libelle": tables.libelle(code).unwrap(),
            "fichier": file,
        }));
        attachments.push(Attachment::new(code.as_str(), file, content_type, bytes));
    }
    document["pieces"] = Value::Array(pieces);
    (document, attachments)
}

/// A connector writing into `directory`, with extra configuration keys.
pub fn connector(directory: &Path, extra: Value) -> Arc<dyn Connector> {
    let mut config = json!({ "directory": directory });
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    ConnectorKind::of::<UrbanismeConfig>()
        .build(config, &Setup::new("urbanisme-test", Path::new(".")))
        .expect("a valid configuration")
}

pub fn context(id: &str, attachments: Vec<Attachment>) -> Context {
    Context::new(id, "44043", "depot-permis-construire", "urbanisme-test")
        .with_attachments(attachments)
}

/// The entries of a zip, in order: name and bytes (read with the zip crate).
pub fn zip_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    let file = std::fs::File::open(path).expect("the zip exists");
    let mut archive = zip::ZipArchive::new(file).expect("a valid zip");
    (0..archive.len())
        .map(|n| {
            let mut entry = archive.by_index(n).unwrap();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            (entry.name().to_owned(), bytes)
        })
        .collect()
}

/// The visible files under `dir` (not the journal, not temporary files), relative, sorted.
pub fn visible_files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Reads `dossier.xml` back into the JSON value it must equal (`dossier.json`'s): an
/// element with children is an object, one with text a string (a number for a parcel's
/// `numero` and a pièce's `taille`), the wrapped lists arrays; the root's attributes are
/// `format`, `version` (a number) and `dossier`.
pub fn xml_to_value(xml: &[u8]) -> Value {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    reader.config_mut().trim_text(false);
    // (name, object built so far, text)
    let mut stack: Vec<(String, serde_json::Map<String, Value>, String)> = Vec::new();
    let mut buf = Vec::new();
    let mut root = None;
    loop {
        match reader.read_event_into(&mut buf).expect("well-formed XML") {
            Event::Start(start) => {
                let name = start.local_name().as_ref().to_owned();
                let mut map = serde_json::Map::new();
                if stack.is_empty() {
                    assert_eq!(name, "dossier");
                    for attribute in start.attributes() {
                        let attribute = attribute.unwrap();
                        let key = attribute.key.as_ref().to_owned();
                        let value = attribute
                            .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                            .unwrap()
                            .into_owned();
                        match key.as_str() {
                            "xmlns" => {
                                assert_eq!(value, "urn:aiguillage:urbanisme:dossier:1")
                            }
                            "version" => {
                                map.insert(key, json!(value.parse::<u64>().unwrap()));
                            }
                            _ => {
                                map.insert(key, json!(value));
                            }
                        }
                    }
                }
                stack.push((name, map, String::new()));
            }
            Event::Text(text) => {
                if let Some(top) = stack.last_mut() {
                    top.2.push_str(&text.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                let top = stack.last_mut().unwrap();
                let name = reference.to_string();
                let c = match name.as_str() {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    _ => reference
                        .resolve_char_ref()
                        .unwrap()
                        .expect("a character reference"),
                };
                top.2.push(c);
            }
            Event::End(_) => {
                let (name, map, text) = stack.pop().unwrap();
                let parent = stack.last().map(|p| p.0.clone()).unwrap_or_default();
                let value = if !map.is_empty()
                    || ["demandeurs", "parcelles", "pieces"].contains(&name.as_str())
                {
                    Value::Object(map)
                } else if name == "taille" || (name == "numero" && parent == "parcelle") {
                    json!(text.parse::<i64>().unwrap())
                } else {
                    json!(text)
                };
                match stack.last_mut() {
                    None => root = Some(value),
                    Some((parent, map, _)) => {
                        if ["demandeurs", "parcelles", "pieces"].contains(&parent.as_str()) {
                            // The items of a wrapped list, under one key while reading.
                            map.entry("items")
                                .or_insert_with(|| json!([]))
                                .as_array_mut()
                                .unwrap()
                                .push(value);
                        } else {
                            let value = match value {
                                Value::Object(mut items)
                                    if ["demandeurs", "parcelles", "pieces"]
                                        .contains(&name.as_str()) =>
                                {
                                    items.remove("items").unwrap_or(json!([]))
                                }
                                other => other,
                            };
                            assert!(map.insert(name.clone(), value).is_none(), "{name} twice");
                        }
                    }
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Empty(_) | Event::Comment(_) => {}
            other => panic!("unexpected XML event {other:?}"),
        }
        buf.clear();
    }
    root.expect("a root element")
}

/// Runs xmllint on `xml` with the shipped XSD; returns its complaints when invalid.
pub fn xmllint(xml: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dossier.xml");
    std::fs::write(&path, xml).unwrap();
    let output = std::process::Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(crate_dir().join("schema/dossier.xsd"))
        .arg(&path)
        .output()
        .expect("xmllint is installed (Debian: libxml2-utils)");
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Validates `dossier.json` against the shipped JSON Schema; returns the errors.
pub fn json_schema_errors(instance: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(crate_dir().join("schema/dossier.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("a valid JSON Schema");
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}
