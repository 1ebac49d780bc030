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

/// The workspace's root (the directory with `tests/fixtures`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| dir.join("tests/fixtures/facturation").is_dir())
        .expect("the workspace root, with tests/fixtures/facturation")
        .to_path_buf()
}

/// The PES V2 entry schema: `PES_XSD`, else the copy vendored in the repository
/// (`schemas/pes-v2/PES_V2/Rev0/PES_Aller.xsd`).
pub fn schema() -> PathBuf {
    if let Ok(path) = std::env::var("PES_XSD") {
        return PathBuf::from(path);
    }
    let path = workspace_root().join("schemas/pes-v2/PES_V2/Rev0/PES_Aller.xsd");
    assert!(
        path.is_file(),
        "the PES V2 schema is not at {} (set PES_XSD)",
        path.display()
    );
    path
}

/// Validates files with `xmllint --noout --nonet --schema`; the error output when one fails.
pub fn xmllint(files: &[PathBuf]) -> Result<(), String> {
    let output = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(schema())
        .args(files)
        .output()
        .expect("xmllint (apt-get install -y libxml2-utils; .ci/run installs it)");
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Validates one file's bytes.
pub fn validate_bytes(bytes: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pes.xml");
    std::fs::write(&path, bytes).unwrap();
    xmllint(&[path])
}

/// The golden titres of the shipped mapping: (name, document).
pub fn fixtures() -> Vec<(String, Value)> {
    let dir = workspace_root().join("tests/fixtures/facturation");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".expected.json") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((stem.to_owned(), serde_json::from_str(&text).unwrap()));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 3, "golden titres in {}", dir.display());
    out
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
