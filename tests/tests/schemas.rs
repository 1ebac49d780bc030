//! The official schemas vendored in `schemas/` are the publishers' files, byte for byte:
//! every file of each bundle is listed in its `SHA256SUMS`, and every listed file has that
//! digest. An edit, a lost file or a checkout that rewrote line endings fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

/// Every file under `dir`, relative to it, with `/` separators.
fn files_under(dir: &Path, base: &Path, into: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files_under(&path, base, into);
        } else {
            let relative = path.strip_prefix(base).expect("under the bundle");
            into.insert(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// Checks one bundle; the list of problems (empty when it holds).
fn check_bundle(bundle: &Path) -> Vec<String> {
    let sums = std::fs::read_to_string(bundle.join("SHA256SUMS"))
        .unwrap_or_else(|e| panic!("{}/SHA256SUMS: {e}", bundle.display()));
    let mut problems = Vec::new();
    let mut listed = BTreeSet::new();
    for (number, line) in sums.lines().enumerate() {
        let Some((digest, name)) = line.split_once("  ") else {
            problems.push(format!(
                "SHA256SUMS line {}: not `digest  name`",
                number + 1
            ));
            continue;
        };
        listed.insert(name.to_owned());
        match std::fs::read(bundle.join(name)) {
            Ok(bytes) => {
                let actual: String = Sha256::digest(&bytes)
                    .iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect();
                if actual != digest {
                    problems.push(format!("{name}: sha256 {actual}, SHA256SUMS says {digest}"));
                }
            }
            Err(error) => problems.push(format!("{name}: {error}")),
        }
    }
    let mut present = BTreeSet::new();
    files_under(bundle, bundle, &mut present);
    for name in present {
        if name != "SHA256SUMS" && name != "README.md" && !listed.contains(&name) {
            problems.push(format!("{name}: present but not in SHA256SUMS"));
        }
    }
    problems
}

#[test]
fn the_cityweb_schema_is_the_publishers_file() {
    let problems = check_bundle(&schemas().join("cityweb"));
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_pes_v2_bundle_is_the_dgfip_set_including_the_acknowledgment_schema() {
    let bundle = schemas().join("pes-v2");
    let problems = check_bundle(&bundle);
    assert!(problems.is_empty(), "{problems:#?}");
    // The return flow (PES_ACQUIT) is part of the bundle, with its common types.
    for entry in [
        "PES_V2/Rev0/PES_Aller.xsd",
        "PES_V2/Rev0/PES_V2_Acquit_Autonome_V2.xsd",
        "PES_V2/CommunAck.xsd",
    ] {
        assert!(bundle.join(entry).is_file(), "{entry} is missing");
    }
}

#[test]
fn a_changed_byte_is_caught() {
    let copy = tempfile::tempdir().expect("a temporary directory");
    let source = schemas().join("cityweb");
    for name in ["SHA256SUMS", "etatcivil.xsd"] {
        std::fs::copy(source.join(name), copy.path().join(name)).expect("copied");
    }
    assert!(check_bundle(copy.path()).is_empty());
    let xsd = copy.path().join("etatcivil.xsd");
    let mut bytes = std::fs::read(&xsd).expect("read");
    bytes.push(b'\n');
    std::fs::write(&xsd, bytes).expect("written");
    std::fs::write(copy.path().join("extra.xsd"), "<x/>").expect("written");
    let problems = check_bundle(copy.path());
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].starts_with("etatcivil.xsd: sha256"),
        "{problems:#?}"
    );
    assert!(
        problems[1].starts_with("extra.xsd: present"),
        "{problems:#?}"
    );
}
