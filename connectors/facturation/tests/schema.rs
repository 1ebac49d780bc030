//! Every shape of file the connector writes validates against the PES V2 schema with
//! `xmllint --noout --nonet --schema PES_V2/Rev0/PES_Aller.xsd`, and random valid bills give
//! valid files whose totals add up.

mod common;

use aiguillage_connector_facturation::{
    encode, Bordereau, Cents, Collectivite, EncodeOptions, Encoding, Piece, PieceJointe, Titre,
};
use common::{
    embedded_file, fixtures, latin1, pdf, validate_bytes, value_of, values_of, xmllint, SIRET,
};
use proptest::prelude::*;
use serde_json::{json, Value};

fn collectivite() -> Collectivite {
    Collectivite {
        id_coll: SIRET.into(),
        cod_col: "043".into(),
        cod_bud: "00".into(),
        id_post: "044012".into(),
        libelle: Some("COMMUNE DE CLISSON".into()),
    }
}

fn titre(document: &Value) -> Titre {
    Titre::from_document(document).unwrap_or_else(|error| panic!("{error}: {document:#}"))
}

fn file(titres: &[Titre], options: EncodeOptions) -> Vec<u8> {
    let bordereau = Bordereau {
        nom_fic: "PESALR1_2026_0000042_test.xml".into(),
        exercice: titres[0].exercice(),
        id_bord: 42,
        date: titres[0].date_emission.clone(),
        pieces: titres
            .iter()
            .enumerate()
            .map(|(index, titre)| Piece {
                id_pce: 318 + index as u64,
                titre,
                pj: None,
            })
            .collect(),
    };
    encode(&collectivite(), &bordereau, options).expect("encodes")
}

fn minimal() -> Value {
    json!({
        "reference": "portail:carte-acces-dechetterie:1",
        "service": "dechetterie",
        "objet": "Carte d'accès aux déchetteries - démarche 31-1",
        "date_emission": "2026-11-28",
        "imputation": {"nature": "70688", "code_produit": "DECH"},
        "debiteur": {
            "civilite": "M", "nom": "DURAND", "prenom": "PAUL",
            "adresse": {"ligne": "1 RUE DE NANTES", "code_postal": "44190", "ville": "CLISSON"}
        },
        "lignes": [{"libelle": "Carte - 1 x 8,00 EUR", "quantite": "1.00", "prix_unitaire": "8.00", "montant_ht": "8.00"}]
    })
}

/// Accents, apostrophes, markup characters, transliterated letters, VAT, every optional.
fn everything() -> Value {
    json!({
        "reference": "portail:inscription-cantine:7",
        "reference_portail": "32-7",
        "service": "cantine",
        "objet": "Restauration scolaire - Décembre 2026 - l'\"étude\" <A> & B",
        "date_emission": "2026-12-31",
        "date_echeance": "2027-01-31",
        "imputation": {"nature": "7067", "fonction": "251", "code_produit": "CANT"},
        "debiteur": {
            "civilite": "MME", "nom": "D'ŒUVRE-NGUYỄN", "prenom": "ÉLODIE", "reference_tiers": "FAM004512",
            "courriel": "e@example.org",
            "adresse": {"ligne": "9 ALLÉE DES CHÂTAIGNIERS", "complement": "RÉSIDENCE « LES COTEAUX » – BÂT. B",
                        "code_postal": "44190", "ville": "CLISSON", "pays": "FRANCE"}
        },
        "lignes": [
            {"libelle": "Repas – Léa\tBaudry - 13 x 3,20 EUR", "quantite": "13.00", "prix_unitaire": "3.20", "montant_ht": "41.60"},
            {"libelle": "Garderie", "quantite": "1", "prix_unitaire": "0.25", "montant_ht": "0.25", "taux_tva": "5.50"},
            {"libelle": "Atelier", "quantite": "2", "prix_unitaire": "10", "montant_ht": "20", "taux_tva": "20.00"}
        ]
    })
}

const LATIN1: EncodeOptions = EncodeOptions {
    encoding: Encoding::Latin1,
    transliterate: true,
};
const UTF8: EncodeOptions = EncodeOptions {
    encoding: Encoding::Utf8,
    transliterate: true,
};

#[test]
fn every_shape_validates_against_the_pes_schema() {
    let mut files = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let mut shapes: Vec<(String, Vec<Titre>)> = fixtures()
        .into_iter()
        .map(|(name, doc)| (format!("golden {name}"), vec![titre(&doc)]))
        .collect();
    shapes.push(("minimal".into(), vec![titre(&minimal())]));
    shapes.push(("everything".into(), vec![titre(&everything())]));
    // A bordereau of several titres: what grouping will write.
    let all: Vec<Titre> = fixtures().iter().map(|(_, doc)| titre(doc)).collect();
    shapes.push(("every golden titre in one bordereau".into(), all));
    for (name, titres) in &shapes {
        for (encoding, options) in [("latin1", LATIN1), ("utf8", UTF8)] {
            let path = dir
                .path()
                .join(format!("{}-{encoding}.xml", name.replace(' ', "_")));
            std::fs::write(&path, file(titres, options)).unwrap();
            files.push(path);
        }
    }
    if let Err(error) = xmllint(&files) {
        panic!("{error}");
    }
}

fn piece_jointe(id_pce: u64) -> PieceJointe {
    PieceJointe {
        id_unique: format!("{SIRET}B00E2026T{id_pce:08}"),
        nom: "facture-32-1204.pdf".into(),
        description: "Restauration scolaire - Décembre 2026 - démarche 32-1204".into(),
        mime_type: "application/pdf".into(),
        content: pdf(),
    }
}

#[test]
fn titres_with_their_pdf_validate_with_pes_pj_and_pjref() {
    let dir = tempfile::tempdir().unwrap();
    let titres: Vec<Titre> = fixtures().iter().map(|(_, doc)| titre(doc)).collect();
    let pjs: Vec<PieceJointe> = (0..titres.len() as u64)
        .map(|n| piece_jointe(318 + n))
        .collect();
    let mut files = Vec::new();
    // One titre with its PDF; three titres of which two have one (a PJ is optional).
    for (name, count, with_pj) in [
        ("one", 1, vec![true]),
        ("three", 3, vec![true, false, true]),
    ] {
        for (encoding, options) in [("latin1", LATIN1), ("utf8", UTF8)] {
            let bordereau = Bordereau {
                nom_fic: "PESALR1_2026_0000042_test.xml".into(),
                exercice: 2026,
                id_bord: 42,
                date: "2026-11-28".into(),
                pieces: (0..count)
                    .map(|n| Piece {
                        id_pce: 318 + n as u64,
                        titre: &titres[n],
                        pj: with_pj[n].then_some(&pjs[n]),
                    })
                    .collect(),
            };
            let bytes = encode(&collectivite(), &bordereau, options).unwrap();
            let path = dir.path().join(format!("pj-{name}-{encoding}.xml"));
            std::fs::write(&path, &bytes).unwrap();
            files.push(path);
        }
    }
    if let Err(error) = xmllint(&files) {
        panic!("{error}");
    }
    let text = latin1(&std::fs::read(&files[2]).unwrap());
    // Each PJRef names a PJ of the file, in the piece that has one.
    let ids = values_of(&text, "IdUnique");
    assert_eq!(
        ids,
        [
            format!("{SIRET}B00E2026T00000318"),
            format!("{SIRET}B00E2026T00000320"),
            format!("{SIRET}B00E2026T00000318"),
            format!("{SIRET}B00E2026T00000320"),
        ],
        "two PJRef in the pieces, then two PJ in PES_PJ"
    );
    assert_eq!(values_of(&text, "Support"), ["01", "01"]);
    assert_eq!(values_of(&text, "TypePJ"), ["002", "002"]);
    assert!(text.find("<PES_PJ>").unwrap() > text.find("</PES_RecetteAller>").unwrap());
    // The file inside is the PDF, gzip-ed then in base 64 as the PES asks.
    assert_eq!(embedded_file(&text), pdf());
}

#[test]
fn the_encoding_is_declared_and_honoured() {
    let bytes = file(&[titre(&everything())], LATIN1);
    let text = latin1(&bytes);
    assert!(
        text.starts_with("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"),
        "{text}"
    );
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "Latin-1 bytes, not UTF-8"
    );
    assert!(bytes.contains(&0xC9), "É as one byte");
    assert_eq!(value_of(&text, "Prenom").unwrap(), "ÉLODIE");
    // Œ and ễ transliterated, the apostrophe escaped.
    assert_eq!(value_of(&text, "Nom").unwrap(), "D&apos;OEUVRE-NGUYEN");
    assert_eq!(
        value_of(&text, "Adr3").unwrap(),
        "RÉSIDENCE « LES COTEAUX » - BÂT. B"
    );
    let utf8 = String::from_utf8(file(&[titre(&everything())], UTF8)).unwrap();
    assert!(utf8.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert_eq!(value_of(&utf8, "Nom").unwrap(), "D&apos;ŒUVRE-NGUYỄN");
}

#[test]
fn values_in_schema_order_and_totals() {
    let doc = everything();
    let text = latin1(&file(&[titre(&doc)], LATIN1));
    assert_eq!(value_of(&text, "NbrPce").unwrap(), "1");
    assert_eq!(value_of(&text, "MtBordHt").unwrap(), "61.85");
    assert_eq!(values_of(&text, "MtHT"), ["41.60", "0.25", "20.00"]);
    assert_eq!(values_of(&text, "TxTva"), ["5.50", "20.00"]);
    // 0.25 × 5.5 % = 0.01375 → 0.01; 20.00 × 20 % = 4.00.
    assert_eq!(values_of(&text, "MtTVA"), ["0.01", "4.00"]);
    assert_eq!(values_of(&text, "IdLigne"), ["1", "2", "3"]);
    assert_eq!(values_of(&text, "Nom").len(), 3, "the debtor on every line");
    assert_eq!(value_of(&text, "Exer").unwrap(), "2026");
    assert_eq!(value_of(&text, "DteBordEm").unwrap(), "2026-12-31");
    assert_eq!(value_of(&text, "IdColl").unwrap(), SIRET);
    // The tab of a libelle became a space.
    assert!(values_of(&text, "ObjLignePce")[0].contains("Léa Baudry"));
}

#[test]
fn texts_the_pes_cannot_hold_are_refused_with_their_field() {
    let mut doc = minimal();
    doc["debiteur"]["nom"] = json!("X".repeat(39));
    let bordereau_error = |doc: &Value, options| {
        let t = titre(doc);
        let bordereau = Bordereau {
            nom_fic: "f.xml".into(),
            exercice: 2026,
            id_bord: 1,
            date: "2026-11-28".into(),
            pieces: vec![Piece {
                id_pce: 1,
                titre: &t,
                pj: None,
            }],
        };
        encode(&collectivite(), &bordereau, options).unwrap_err()
    };
    let error = bordereau_error(&doc, LATIN1);
    assert_eq!(error.field, "debiteur.nom");
    assert!(error.reason.contains("38"), "{error}");

    let mut doc = minimal();
    doc["debiteur"]["prenom"] = json!("PAUL\u{1}");
    assert_eq!(bordereau_error(&doc, LATIN1).field, "debiteur.prenom");

    let mut doc = minimal();
    doc["debiteur"]["nom"] = json!("ŒUF");
    let strict = EncodeOptions {
        encoding: Encoding::Latin1,
        transliterate: false,
    };
    assert!(bordereau_error(&doc, strict)
        .reason
        .contains("transliterate"));
}

fn line() -> impl Strategy<Value = (u64, Option<u32>, String)> {
    (
        1u64..=50_000_000,
        prop::option::of(prop::sample::select(vec![550u32, 1000, 2000, 210])),
        "L[A-Za-zÀ-ÿ' &<>\"œ-]{0,39}",
    )
}

fn bill() -> impl Strategy<Value = (Value, Vec<u64>)> {
    (
        prop::collection::vec(line(), 1..6),
        "[A-Z][A-Za-zÀ-ÿ' -]{0,30}",
        "[A-Z][A-Za-zÀ-ÿ -]{0,30}",
        2000u16..2100,
        1u8..=12,
        1u8..=28,
    )
        .prop_map(|(lines, nom, prenom, year, month, day)| {
            let cents: Vec<u64> = lines.iter().map(|(c, _, _)| *c).collect();
            let lignes: Vec<Value> = lines
                .iter()
                .map(|(c, rate, libelle)| {
                    let mut l = json!({
                        "libelle": libelle, "quantite": "1.00",
                        "prix_unitaire": Cents(*c).to_string(), "montant_ht": Cents(*c).to_string()
                    });
                    if let Some(rate) = rate {
                        l["taux_tva"] = json!(format!("{}.{:02}", rate / 100, rate % 100));
                    }
                    l
                })
                .collect();
            let mut doc = minimal();
            doc["debiteur"]["nom"] = json!(nom);
            doc["debiteur"]["prenom"] = json!(prenom);
            doc["date_emission"] = json!(format!("{year:04}-{month:02}-{day:02}"));
            doc["lignes"] = json!(lignes);
            (doc, cents)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random valid bills, several per bordereau: valid XML whose totals add up.
    #[test]
    fn random_bills_give_valid_files_whose_totals_add_up(bills in prop::collection::vec(bill(), 1..4)) {
        let titres: Vec<Titre> = bills.iter().map(|(doc, _)| titre(doc)).collect();
        let expected: u64 = bills.iter().flat_map(|(_, cents)| cents).sum();
        let bytes = file(&titres, LATIN1);
        let text = latin1(&bytes);
        prop_assert_eq!(value_of(&text, "MtBordHt").unwrap(), Cents(expected).to_string());
        prop_assert_eq!(value_of(&text, "NbrPce").unwrap(), titres.len().to_string());
        let lines: Vec<String> = values_of(&text, "MtHT");
        let sum: u64 = lines.iter().map(|l| Cents::parse_positive(l).unwrap().0).sum();
        prop_assert_eq!(sum, expected);
        let ids = values_of(&text, "IdPce");
        let unique: std::collections::BTreeSet<_> = ids.iter().collect();
        prop_assert_eq!(unique.len(), ids.len(), "IdPce unique in the bordereau");
        if let Err(error) = validate_bytes(&bytes) {
            return Err(TestCaseError::fail(format!("{error}\n{text}")));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Thousands of random bills (without xmllint, which the test above runs): the
    /// bordereau's total is the exact sum of its lines, every line is written, and the
    /// counts hold.
    #[test]
    fn totals_add_up_over_thousands_of_bills(bills in prop::collection::vec(bill(), 1..5)) {
        let titres: Vec<Titre> = bills.iter().map(|(doc, _)| titre(doc)).collect();
        let expected: u64 = bills.iter().flat_map(|(_, cents)| cents).sum();
        let lines: usize = bills.iter().map(|(_, cents)| cents.len()).sum();
        let text = latin1(&file(&titres, LATIN1));
        prop_assert_eq!(value_of(&text, "MtBordHt").unwrap(), Cents(expected).to_string());
        prop_assert_eq!(values_of(&text, "MtHT").len(), lines);
        prop_assert_eq!(values_of(&text, "Tiers").len(), 0);
        prop_assert_eq!(text.matches("<Tiers>").count(), lines);
        prop_assert_eq!(values_of(&text, "IdPce").len(), titres.len());
    }
}
