//! Cost of turning one mapped demande d'acte into its Cityweb XML file.
//!
//! `cargo bench -p aiguillage-connector-etat-civil --bench encode`; results in
//! docs/performance.md. The inputs are the repository's fixtures as the shipped mapping
//! maps them (`tests/fixtures/etat-civil/*.expected.json`).

use std::hint::black_box;
use std::path::Path;

use aiguillage_connector_etat_civil::{encode, DemandeActe, EncodeOptions, Encoding};
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    for fixture in ["naissance-cpi-titulaire", "mariage-extaf-parent"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/etat-civil")
            .join(format!("{fixture}.expected.json"));
        let text = std::fs::read_to_string(&path).expect("the fixture exists");
        let document: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let demande = DemandeActe::from_document(&document).expect("the fixture checks");
        c.bench_function(&format!("check {fixture}"), |b| {
            b.iter(|| DemandeActe::from_document(black_box(&document)).expect("checks"))
        });
        for encoding in [Encoding::Utf8, Encoding::Latin1] {
            let options = EncodeOptions {
                encoding,
                transliterate: true,
            };
            let bytes = encode(&demande, options).expect("encodes").len();
            c.bench_function(
                &format!("encode {fixture} {} ({bytes} bytes)", encoding.xml_name()),
                |b| b.iter(|| encode(black_box(&demande), options).expect("encodes")),
            );
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
