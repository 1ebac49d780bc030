//! Cost of turning mapped bills into a PES V2 file: one titre per bordereau (the default),
//! and a bordereau of 50 titres.
//!
//! `cargo bench -p aiguillage-connector-facturation --bench encode`; results in
//! docs/performance.md. The inputs are the repository's fixtures as the shipped mapping
//! maps them (`tests/fixtures/facturation/*.expected.json`).

use std::hint::black_box;
use std::path::Path;

use aiguillage_connector_facturation::{
    encode, Bordereau, Collectivite, EncodeOptions, Piece, Titre,
};
use criterion::{criterion_group, criterion_main, Criterion};

fn collectivite() -> Collectivite {
    Collectivite {
        id_coll: "21440043800005".into(),
        cod_col: "043".into(),
        cod_bud: "00".into(),
        id_post: "044012".into(),
        libelle: Some("COMMUNE DE CLISSON".into()),
    }
}

fn bordereau<'a>(titres: impl Iterator<Item = &'a Titre>) -> Bordereau<'a> {
    let pieces: Vec<Piece<'a>> = titres
        .enumerate()
        .map(|(n, titre)| Piece {
            id_pce: n as u64 + 1,
            titre,
            pj: None,
        })
        .collect();
    Bordereau {
        nom_fic: "PESALR1_2026_0000042_bench.xml".into(),
        exercice: pieces[0].titre.exercice(),
        id_bord: 42,
        date: pieces[0].titre.date_emission.clone(),
        pieces,
    }
}

fn bench(c: &mut Criterion) {
    let collectivite = collectivite();
    let options = EncodeOptions::default();
    let mut titres = Vec::new();
    for fixture in ["cantine-trois-enfants", "dechetterie-carte"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/facturation")
            .join(format!("{fixture}.expected.json"));
        let text = std::fs::read_to_string(&path).expect("the fixture exists");
        let document: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let titre = Titre::from_document(&document).expect("the fixture checks");
        c.bench_function(&format!("check {fixture}"), |b| {
            b.iter(|| Titre::from_document(black_box(&document)).expect("checks"))
        });
        let single = bordereau(std::iter::once(&titre));
        let bytes = encode(&collectivite, &single, options)
            .expect("encodes")
            .len();
        c.bench_function(
            &format!("encode {fixture}, one titre ({bytes} bytes)"),
            |b| b.iter(|| encode(&collectivite, black_box(&single), options).expect("encodes")),
        );
        titres.push(titre);
    }
    let fifty = bordereau(titres.iter().cycle().take(50));
    let bytes = encode(&collectivite, &fifty, options)
        .expect("encodes")
        .len();
    c.bench_function(
        &format!("encode a bordereau of 50 titres ({bytes} bytes)"),
        |b| b.iter(|| encode(&collectivite, black_box(&fifty), options).expect("encodes")),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
