//! Cost of mapping one démarche with a shipped mapping (target: well under 50 µs).
//!
//! `cargo bench -p aiguillage-gateway --bench mapping`; results in docs/performance.md.

use std::hint::black_box;
use std::path::Path;

use aiguillage_bus::envelope::Envelope;
use aiguillage_gateway::mapping::Mapping;
use criterion::{criterion_group, criterion_main, Criterion};

fn workspace(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn bench(c: &mut Criterion) {
    let cases = [
        (
            "etat-civil/demande-acte",
            "tests/fixtures/etat-civil/naissance-cpi-titulaire.json",
        ),
        (
            "etat-civil/demande-acte",
            "tests/fixtures/etat-civil/mariage-extaf-parent.json",
        ),
    ];
    for (mapping_name, fixture) in cases {
        let file = format!("mappings/{mapping_name}.toml");
        let mapping = Mapping::load(&workspace(&file), &file).expect("the shipped mapping loads");
        let body = std::fs::read(workspace(fixture)).expect("the fixture exists");
        let envelope = Envelope::parse(&body, usize::MAX).expect("a valid envelope");
        mapping.apply(&envelope).expect("the fixture maps");
        let name = Path::new(fixture)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(fixture);
        c.bench_function(&format!("map {mapping_name} {name}"), |b| {
            b.iter(|| mapping.apply(black_box(&envelope)).expect("maps"))
        });
        c.bench_function(
            &format!("parse envelope {name} ({} bytes)", body.len()),
            |b| b.iter(|| Envelope::parse(black_box(&body), usize::MAX).expect("valid")),
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
