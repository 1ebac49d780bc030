//! Helpers of the connector's tests: the PES V2 schema, `xmllint`, the golden titres, and
//! a connector writing into a temporary directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use aiguillage_connector::numbering::MemoryNumbering;
use aiguillage_connector::{Context, Setup};
use aiguillage_connector_facturation::{PesConfig, PesConnector};
use serde_json::Value;

/// A SIRET whose key checks (fictitious).
pub const SIRET: &str = "21440043800005";

// The schemas, xmllint and the golden documents, shared with the end-to-end tests.
#[path = "../../../../tests/src/xmllint.rs"]
mod shared;

use shared::Schema;

/// Validates files with `xmllint --noout --nonet --schema`; the error output when one fails.
pub fn xmllint(files: &[PathBuf]) -> Result<(), String> {
    Schema::PesAller.validate(files)
}

/// Validates one file's bytes.
pub fn validate_bytes(bytes: &[u8]) -> Result<(), String> {
    Schema::PesAller.validate_bytes("pes.xml", bytes)
}

/// The golden titres of the shipped mapping: (name, document).
pub fn fixtures() -> Vec<(String, Value)> {
    shared::golden_documents("facturation", 3, |text| {
        serde_json::from_str(text).expect("a JSON document")
    })
}

/// The golden document `name`.
pub fn fixture(name: &str) -> Value {
    shared::named(fixtures(), name)
}

/// The configuration of the tests, writing into `directory`.
pub fn config(directory: &Path) -> PesConfig {
    PesConfig::new(directory, SIRET, "043", "00", "044012")
}

/// A connector writing into `directory`.
pub fn connector(config: PesConfig) -> PesConnector {
    PesConnector::new(config, &Setup::new("clisson-finances", "/")).expect("the connector")
}

/// A context for `document` (its `reference` as envelope id) with `numbering`.
pub fn context(document: &Value, numbering: &Arc<MemoryNumbering>) -> Context {
    let id = document["reference"].as_str().unwrap();
    let form = id.split(':').nth(1).unwrap_or("facture");
    Context::new(id, "44043", form, "clisson-finances").with_numbering(numbering.clone())
}

/// The text of the first `V` attribute of element `name` in `xml`.
pub fn value_of(xml: &str, name: &str) -> Option<String> {
    values_of(xml, name).into_iter().next()
}

/// The `V` attributes of every element `name` in `xml`, in order.
pub fn values_of(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name} V=\"");
    xml.match_indices(&open)
        .map(|(at, _)| {
            let rest = &xml[at + open.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

/// ISO-8859-1 bytes as a string.
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// A small but well-formed PDF, as a portal's workflow makes a bill.
pub fn pdf() -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n".to_vec();
    // Binary content, as in every real PDF, and more than one stored gzip block.
    pdf.extend((0..70_000u32).map(|n| (n.wrapping_mul(2_654_435_761) >> 13) as u8));
    pdf.extend_from_slice(b"\n%%EOF\n");
    pdf
}

/// The bytes of the `PES_PJ` file `Fichier` of `xml`: base 64 decoded, then gunzip-ed by
/// the system's `gzip -dc` (a real reader, not ours).
pub fn embedded_file(xml: &str) -> Vec<u8> {
    use base64::Engine as _;
    use std::io::Write as _;
    let open = xml
        .find("<Fichier MIMEType=\"application/pdf\">")
        .expect("a Fichier");
    let rest = &xml[open..];
    let text = &rest[rest.find('>').unwrap() + 1..rest.find("</Fichier>").unwrap()];
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let gzip = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base 64");
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&gzip));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "gzip -dc: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}
