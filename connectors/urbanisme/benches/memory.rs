//! Peak memory of packaging a dossier whose pièces are large: 4 pièces of 20 MiB, already
//! in memory as the delivery's attachments (as the gateway gives them).
//!
//! Run: `cargo bench -p aiguillage-connector-urbanisme --bench memory` (Linux: reads
//! `VmHWM` from /proc/self/status, and resets it between phases through
//! /proc/self/clear_refs). Not run by `cargo test`.
//!
//! Phase 1 is the package alone (validation, dossier.json/xml, the zip written to the work
//! directory): its growth must stay well under the attachments' size (no second copy).
//! Phase 2 is a whole delivery into a local directory: the package, then the zip streamed
//! from the work directory by the transport (`Transport::publish_file`).

use std::path::Path;
use std::time::Instant;

use aiguillage_connector::{Attachment, ConnectorKind, Context, Setup};
use aiguillage_connector_urbanisme::{
    package, validate, Depot, Limits, PackageFormat, UrbanismeConfig,
};
use serde_json::{json, Value};

const PIECE_BYTES: usize = 20 * 1024 * 1024;

fn status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    status
        .lines()
        .find(|line| line.starts_with(key))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .expect("the key is in /proc/self/status")
}

fn reset_peak() {
    // "5" resets the peak resident set size (VmHWM) to the current one (Linux ≥ 4.0).
    std::fs::write("/proc/self/clear_refs", "5").expect("/proc/self/clear_refs is writable");
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/urbanisme/pcmi-maison-couple.expected.json");
    let mut document: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let id = document["identifiant"].as_str().unwrap().to_owned();
    let codes = ["PCMI1", "PCMI2", "PCMI4", "PCMI5"];
    document["pieces"] = Value::Array(
        codes
            .iter()
            .map(|code| json!({ "code": code, "libelle": "Pièce", "fichier": format!("{code}.pdf") }))
            .collect(),
    );
    // Every page written, so that the attachments are resident before measuring.
    let attachments: Vec<Attachment> = codes
        .iter()
        .enumerate()
        .map(|(n, code)| {
            let mut content = b"%PDF-1.7\n".to_vec();
            content.extend((0..PIECE_BYTES - 9).map(|i| (i as u8) ^ (n as u8)));
            Attachment::new(*code, format!("{code}.pdf"), "application/pdf", content)
        })
        .collect();
    let total: usize = attachments.iter().map(|a| a.content.len()).sum();
    let limits = Limits {
        max_piece_bytes: 25 << 20,
        max_package_bytes: 100 << 20,
    };

    // Phase 1: the package.
    reset_peak();
    let before = status_kib("VmHWM:");
    let started = Instant::now();
    let depot = Depot::from_document(&document).unwrap();
    let valid = validate(&document, depot, &id, &attachments, limits).unwrap();
    let package =
        package::build(&document, &valid, PackageFormat::Zip, &std::env::temp_dir()).unwrap();
    let elapsed = started.elapsed();
    let after = status_kib("VmHWM:");
    let zip_bytes = std::fs::metadata(package.path()).unwrap().len();
    drop(package);
    println!(
        "package: attachments {:.1} MiB, zip {:.1} MiB, peak RSS {:.1} → {:.1} MiB, growth {:.1} MiB ({:.2}× the attachments), {:.0} ms",
        total as f64 / 1048576.0,
        zip_bytes as f64 / 1048576.0,
        mib(before),
        mib(after),
        mib(after - before),
        (after - before) as f64 * 1024.0 / total as f64,
        elapsed.as_secs_f64() * 1000.0
    );

    // Phase 2: a whole delivery into a local directory.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let drop_dir = tempfile::tempdir().unwrap();
    let connector = ConnectorKind::of::<UrbanismeConfig>()
        .build(
            json!({ "directory": drop_dir.path() }),
            &Setup::new("bench", Path::new(".")),
        )
        .unwrap();
    let ctx = Context::new(&id, "44043", "depot-permis-construire", "bench")
        .with_attachments(attachments);
    reset_peak();
    let before = status_kib("VmHWM:");
    let started = Instant::now();
    runtime
        .block_on(connector.deliver(&document, &ctx))
        .unwrap();
    let elapsed = started.elapsed();
    let after = status_kib("VmHWM:");
    println!(
        "delivery (package + publish of the file): peak RSS {:.1} → {:.1} MiB, growth {:.1} MiB ({:.2}× the attachments), {:.0} ms",
        mib(before),
        mib(after),
        mib(after - before),
        (after - before) as f64 * 1024.0 / total as f64,
        elapsed.as_secs_f64() * 1000.0
    );
}
