//! The vendored schemas (`schemas/` of the repository) and `xmllint` against them, for the
//! simulators, the end-to-end tests and the connectors' own tests.
//!
//! Only `std` here: the connectors' test helpers (`connectors/*/tests/common`) include this
//! very file with `#[path]`, so that validating against the schemas is written once
//! without a crate of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A schema vendored in the repository, that an environment variable may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Cityweb's `etatcivil.xsd` (`CITYWEB_XSD`).
    Cityweb,
    /// The DGFiP's `PES_Aller.xsd` of PES V2 (`PES_XSD`).
    PesAller,
}

impl Schema {
    /// The variable that names another copy of the schema.
    pub fn variable(self) -> &'static str {
        match self {
            Self::Cityweb => "CITYWEB_XSD",
            Self::PesAller => "PES_XSD",
        }
    }

    /// Where the repository vendors it, from the workspace root.
    pub fn vendored(self) -> &'static str {
        match self {
            Self::Cityweb => "schemas/cityweb/etatcivil.xsd",
            Self::PesAller => "schemas/pes-v2/PES_V2/Rev0/PES_Aller.xsd",
        }
    }

    /// The schema's file: the variable's path, else the vendored copy (not checked).
    pub fn path(self) -> PathBuf {
        match std::env::var(self.variable()) {
            Ok(path) => PathBuf::from(path),
            Err(_) => workspace_root().join(self.vendored()),
        }
    }

    /// The schema's file, asserted to exist (with what to set when it does not).
    pub fn existing(self) -> PathBuf {
        let path = self.path();
        assert!(
            path.is_file(),
            "the schema is not at {} (set {})",
            path.display(),
            self.variable()
        );
        path
    }

    /// Validates `files` against the schema: xmllint's complaint when one is not valid.
    pub fn validate<P: AsRef<Path>>(self, files: &[P]) -> Result<(), String> {
        validate(&self.existing(), files)
    }

    /// Validates a document's bytes (written to a temporary file named `name`).
    pub fn validate_bytes(self, name: &str, bytes: &[u8]) -> Result<(), String> {
        let dir = std::env::temp_dir().join(format!(
            "aiguillage-xmllint-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("the document to validate");
        let outcome = self.validate(&[&path]);
        let _ = std::fs::remove_dir_all(&dir);
        outcome
    }
}

/// The workspace's root: the first directory above this crate with the `schemas/` folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("schemas").is_dir() && dir.join("Cargo.lock").is_file())
        .expect("the workspace root, with schemas/")
        .to_path_buf()
}

/// The golden documents of `tests/fixtures/<folder>`: (name, its `<name>.expected.json`
/// read by `parse`), sorted by name; at least `at_least` of them.
pub fn golden_documents<T>(
    folder: &str,
    at_least: usize,
    parse: impl Fn(&str) -> T,
) -> Vec<(String, T)> {
    let dir = workspace_root().join("tests/fixtures").join(folder);
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("the golden documents in {}: {error}", dir.display()));
    for entry in entries {
        let path = entry.expect("a golden document").path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if let Some(stem) = name.strip_suffix(".expected.json") {
            let text = std::fs::read_to_string(&path).expect("a golden document's text");
            out.push((stem.to_owned(), parse(&text)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= at_least,
        "golden documents in {}",
        dir.display()
    );
    out
}

/// The document named `name` among `documents`.
pub fn named<T>(documents: Vec<(String, T)>, name: &str) -> T {
    documents
        .into_iter()
        .find_map(|(stem, document)| (stem == name).then_some(document))
        .unwrap_or_else(|| panic!("the golden document {name}"))
}

/// Asserts that xmllint is installed (with how to install it).
pub fn require() {
    assert!(
        Command::new("xmllint").arg("--version").output().is_ok(),
        "xmllint is not installed: apt-get install -y libxml2-utils (.ci/run installs it)"
    );
}

/// Runs `xmllint --noout --nonet --schema` on `files`: `Ok` when all are valid, else
/// xmllint's error output (or why it could not run).
pub fn validate<P: AsRef<Path>>(schema: &Path, files: &[P]) -> Result<(), String> {
    run(schema, files).map_err(|error| format!("cannot run xmllint: {error}"))?
}

/// Runs `xmllint --noout --nonet --schema` on `files`: the error when it cannot run, else
/// whether all are valid (xmllint's error output when not).
pub fn run<P: AsRef<Path>>(schema: &Path, files: &[P]) -> std::io::Result<Result<(), String>> {
    let output = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(schema)
        .args(files.iter().map(AsRef::as_ref))
        .output()?;
    Ok(if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    })
}

/// Asserts that `files` are valid against `schema`, with xmllint's complaint otherwise.
pub fn assert_valid<P: AsRef<Path>>(schema: Schema, files: &[P]) {
    if let Err(complaint) = schema.validate(files) {
        panic!("not valid against {}: {complaint}", schema.vendored());
    }
}

/// xmllint's complaint on one line: its lines that say something (not `keep`-rejected),
/// joined with ` | `.
pub fn one_line(complaint: &str, keep: impl Fn(&str) -> bool) -> String {
    complaint
        .lines()
        .filter(|line| !line.ends_with("fails to validate") && keep(line))
        .collect::<Vec<_>>()
        .join(" | ")
}
