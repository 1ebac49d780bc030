//! Every shape of file the connector writes validates against the Cityweb schema with
//! `xmllint --noout --nonet --schema`, and reads back to the values it was written from.

mod common;

use aiguillage_connector_etat_civil::{encode, DemandeActe, EncodeOptions, Encoding};
use common::{fixtures, normal_form, parse, read_back, validate_bytes, xmllint};
use serde_json::{json, Value};

const UTF8: EncodeOptions = EncodeOptions {
    encoding: Encoding::Utf8,
    transliterate: true,
};
const LATIN1: EncodeOptions = EncodeOptions {
    encoding: Encoding::Latin1,
    transliterate: true,
};

fn demande(document: &Value) -> DemandeActe {
    DemandeActe::from_document(document).unwrap_or_else(|error| panic!("{error}: {document:#}"))
}

/// A birth certificate asked by the person, the smallest document.
fn minimal() -> Value {
    json!({
        "identifiant": "clisson-sevre-maine:demande-acte-naissance:1",
        "date_demande": "2026-11-28T10:12:00+01:00",
        "nature_document": "EXTSF",
        "nombre_exemplaires": 1,
        "origine": "internet",
        "evenement": {
            "nature_evenement": "NAI",
            "date_evenement": {"date_debut": "1990-04-12"},
            "lieu_evenement": {"ville": "Clisson"},
            "titulaire": {"nom": "DURAND", "prenoms": "Camille"}
        },
        "adresse_livraison": {"ligne1": "12 rue des Lilas", "ville": "Clisson", "pays": "France"}
    })
}

/// Every element the connector can write, at least once.
fn everything() -> Value {
    let parent = |nom: &str, prenoms: &str| json!({"nom": nom, "prenoms": prenoms});
    json!({
        "identifiant": "clisson-sevre-maine:demande-acte-mariage:57",
        "reference_portail": "13-57",
        "date_demande": "2026-11-29T18:47:31Z",
        "nature_document": "EXTAF",
        "nombre_exemplaires": 3,
        "motif": "Règlement d'une succession : l'étude <Bertin> & fils",
        "origine": "courrier",
        "demandeur": {
            "qualite_demandeur": "mere",
            "individu": {"nom": "GUILBAUD", "nom_usage": "LEROY", "prenoms": "Françoise", "genre": "Mme"}
        },
        "evenement": {
            "nature_evenement": "MAR",
            "date_evenement": {"date_debut": "2019-06", "date_fin": "2020"},
            "lieu_evenement": {"ville": "Clisson", "province": "Loire-Atlantique", "pays": "France"},
            "titulaire": {
                "nom": "D'ARGENSON", "nom_usage": "LE GOFF", "prenoms": "Thomas Bernard",
                "genre": "M", "sexe": "M",
                "naissance": {"date": "1988-07", "lieu": {"ville": "Nantes", "province": "Loire-Atlantique", "pays": "France"}},
                "pere": parent("D'ARGENSON", "Bernard"),
                "mere": parent("GUILBAUD", "Françoise")
            },
            "conjoint": {
                "nom": "NGUYỄN", "nom_usage": "D'ARGENSON", "prenoms": "Amélie Thi", "genre": "Mlle", "sexe": "F",
                "naissance": {"date": "1989", "lieu": {"ville": "Hô Chi Minh-Ville", "pays": "Viêt Nam"}},
                "pere": parent("NGUYỄN", "Van Minh"),
                "mere": parent("LE GOFF", "Annick")
            }
        },
        "adresse_livraison": {
            "ligne1": "5 impasse des Vignes", "ligne2": "Bât. \"A\" & <B>",
            "code_postal": "44190", "ville": "Gétigné", "pays": "France",
            "courriel": "f.leroy@example.org", "telephone": "+33 2 40 00 00 00"
        }
    })
}

fn with(mut document: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    document
        .pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .insert(key.to_owned(), value);
    document
}

fn without(mut document: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    document
        .pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key);
    document
}

/// The variants the tests write: (what it shows, document).
fn variants() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = fixtures()
        .into_iter()
        .map(|(name, doc)| (format!("golden {name}"), doc))
        .collect();
    out.push(("minimal".into(), minimal()));
    out.push(("everything".into(), everything()));
    for event in ["NAI", "MAR", "DEC", "REC"] {
        for document in ["CPI", "EXTAF", "EXTSF", "EXTPL"] {
            let doc = with(minimal(), "/evenement/nature_evenement", json!(event));
            let doc = with(doc, "/nature_document", json!(document));
            out.push((format!("{event} {document}"), doc));
        }
    }
    for type_interesse in ["reconnu", "auteur"] {
        let doc = with(minimal(), "/evenement/nature_evenement", json!("REC"));
        let doc = with(doc, "/evenement/type_interesse", json!(type_interesse));
        out.push((format!("REC {type_interesse}"), doc));
    }
    for (label, debut, fin) in [
        ("year only", json!("1923"), None),
        ("month only", json!("1924-02"), None),
        ("range of years", json!("1920"), Some(json!("1925"))),
        (
            "range of days",
            json!("1920-03-01"),
            Some(json!("1920-03-31")),
        ),
        (
            "from a day to a month",
            json!("1920-03-01"),
            Some(json!("1921-02")),
        ),
    ] {
        let mut doc = with(minimal(), "/evenement/date_evenement/date_debut", debut);
        if let Some(fin) = fin {
            doc = with(doc, "/evenement/date_evenement/date_fin", fin);
        }
        doc = with(
            doc,
            "/evenement/titulaire/naissance",
            json!({"date": "1923"}),
        );
        out.push((format!("dates: {label}"), doc));
    }
    for (label, name) in [
        ("apostrophe", "D'ARTAGNAN"),
        ("typographic apostrophe", "D’ARTAGNAN"),
        ("accents", "ÉLÉONORE-ÇÀÏÔÙ"),
        ("ampersand", "DUPONT & DURAND"),
        ("less than", "A<B"),
        ("markup", "</nomDeFamille><x>"),
        ("quotes", "\"LE\" 'BRUN'"),
        ("oe ligature", "CŒUR DE LŒIL"),
        ("non-Latin", "王 秀英 Ψ Дмитрий"),
        ("emoji", "SMITH 😀"),
        // Only characters that ISO-8859-1 transliterates to nothing: refused there, not
        // written blank (found by the roundtrip property test).
        ("invisible only", "\u{feff}\u{200b}"),
        ("lines", "LIGNE 1\r\nLIGNE 2\tTAB"),
        ("entity-looking text", "&amp; &#0; &lt;"),
        ("CDATA-looking text", "]]> <![CDATA[x]]>"),
    ] {
        let doc = with(minimal(), "/evenement/titulaire/nom", json!(name));
        let doc = with(doc, "/motif", json!(name));
        out.push((format!("text: {label}"), doc));
    }
    out.push((
        "no optional field at all".into(),
        without(without(minimal(), "/nombre_exemplaires"), "/origine"),
    ));
    out
}

#[test]
fn every_variant_validates_in_utf8_and_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (index, (label, document)) in variants().into_iter().enumerate() {
        let demande = demande(&document);
        let bytes = encode(&demande, UTF8).unwrap_or_else(|error| panic!("{label}: {error}"));
        assert_eq!(
            read_back(&parse(&bytes, false)),
            normal_form(&demande),
            "{label}"
        );
        let path = dir.path().join(format!("{index:03}.xml"));
        std::fs::write(&path, &bytes).unwrap();
        files.push(path);
    }
    if let Err(errors) = xmllint(&files) {
        panic!("xmllint refused files:\n{errors}");
    }
}

#[test]
fn every_variant_validates_in_iso_8859_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (index, (label, document)) in variants().into_iter().enumerate() {
        let demande = demande(&document);
        let bytes = match encode(&demande, LATIN1) {
            Ok(bytes) => bytes,
            Err(error) if label == "text: emoji" || label == "text: invisible only" => {
                assert_eq!(error.field, "evenement.titulaire.nom", "{error}");
                continue;
            }
            Err(error) => panic!("{label}: {error}"),
        };
        assert!(bytes.starts_with(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"));
        let path = dir.path().join(format!("{index:03}.xml"));
        std::fs::write(&path, &bytes).unwrap();
        files.push(path);
        let all_latin1 = document.to_string().chars().all(|c| u32::from(c) <= 0xff);
        if all_latin1 {
            // No transliteration: the values come back as they were.
            assert_eq!(
                read_back(&parse(&bytes, true)),
                normal_form(&demande),
                "{label}"
            );
        }
    }
    if let Err(errors) = xmllint(&files) {
        panic!("xmllint refused files:\n{errors}");
    }
}

#[test]
fn latin1_transliterates_or_refuses_as_configured() {
    let doc = with(
        minimal(),
        "/evenement/titulaire/nom",
        json!("CŒUR D’ARTAGNAN Łukasz"),
    );
    let bytes = encode(&demande(&doc), LATIN1).unwrap();
    let root = parse(&bytes, true);
    let nom = root
        .child("evenement")
        .unwrap()
        .child("interesse")
        .unwrap()
        .child("noms")
        .unwrap()
        .text_of("nomDeFamille");
    assert_eq!(nom.as_deref(), Some("COEUR D'ARTAGNAN Lukasz"));
    // Latin-1 letters stay single bytes.
    let doc = with(minimal(), "/evenement/titulaire/nom", json!("HÉLÈNE"));
    let bytes = encode(&demande(&doc), LATIN1).unwrap();
    assert!(bytes.windows(6).any(|w| w == b"H\xc9L\xc8NE"));

    let strict = EncodeOptions {
        transliterate: false,
        ..LATIN1
    };
    let error = encode(&demande(&with(minimal(), "/motif", json!("Cœur"))), strict).unwrap_err();
    assert_eq!(error.field, "motif");
    assert!(error.to_string().contains("U+0153"), "{error}");
    assert!(
        error.to_string().contains("`transliterate` est désactivé"),
        "{error}"
    );
}

#[test]
fn control_characters_are_refused_with_the_field_named() {
    for (pointer, field) in [
        (
            "/evenement/titulaire/prenoms",
            "evenement.titulaire.prenoms",
        ),
        ("/adresse_livraison/ligne1", "adresse_livraison.ligne1"),
        ("/demandeur", "demandeur.individu.nom"),
    ] {
        let doc = if pointer == "/demandeur" {
            with(
                minimal(),
                "/demandeur",
                json!({"qualite_demandeur": "pere", "individu": {"nom": "A\u{1}B"}}),
            )
        } else {
            with(minimal(), pointer, json!("bad\u{0}text"))
        };
        let error = encode(&demande(&doc), UTF8).unwrap_err();
        assert_eq!(error.field, field, "{error}");
        assert!(
            error.to_string().contains("caractère de contrôle U+00"),
            "{error}"
        );
    }
}

#[test]
fn refused_documents_name_the_field() {
    let cases = [
        (
            with(minimal(), "/nombre_exemplaires", json!(0)),
            "nombre_exemplaires",
            "au moins 1",
        ),
        (
            with(minimal(), "/nature_document", json!("CCC")),
            "nature_document",
            "valeur `CCC` inconnue",
        ),
        (
            with(
                minimal(),
                "/evenement/date_evenement/date_debut",
                json!("vers 1920"),
            ),
            "evenement.date_evenement.date_debut",
            "n'est ni une date",
        ),
        (
            with(
                minimal(),
                "/evenement/date_evenement/date_fin",
                json!("1980"),
            ),
            "evenement.date_evenement.date_fin",
            "finit (1980) avant de commencer",
        ),
        (
            with(minimal(), "/evenement/titulaire/nom", json!("  ")),
            "evenement.titulaire.nom",
            "est vide",
        ),
        (
            with(minimal(), "/evenement/titulaire/surnom", json!("X")),
            "evenement.titulaire.surnom",
            "champ `surnom` inconnu",
        ),
        (
            without(minimal(), "/adresse_livraison"),
            "",
            "champ `adresse_livraison` manquant",
        ),
    ];
    for (doc, field, reason) in cases {
        let error = DemandeActe::from_document(&doc).unwrap_err();
        assert_eq!(error.field, field, "{error}");
        assert!(error.to_string().contains(reason), "{error}");
    }
    let error = encode(
        &demande(&with(minimal(), "/date_demande", json!("28/11/2026"))),
        UTF8,
    )
    .unwrap_err();
    assert_eq!(error.field, "date_demande");
}

#[test]
fn the_requester_gets_the_address_and_dates_become_a_period() {
    let bytes = encode(&demande(&everything()), UTF8).unwrap();
    let root = parse(&bytes, false);
    assert_eq!(
        root.names(),
        [
            "identifiant",
            "demandeur",
            "natureDocument",
            "nbExemplaire",
            "dateDemande",
            "evenement",
            "motif",
            "origine"
        ]
    );
    let demandeur = root.child("demandeur").unwrap();
    assert!(demandeur
        .child("individu")
        .unwrap()
        .child("adresse")
        .is_some());
    let evenement = root.child("evenement").unwrap();
    assert_eq!(
        evenement.names(),
        [
            "interesse",
            "conjoint",
            "natureEvenement",
            "dateEvenement",
            "lieuEvenement",
            "natureReconnaissance"
        ]
    );
    assert!(evenement
        .child("interesse")
        .unwrap()
        .child("adresse")
        .is_none());
    let dates = evenement.child("dateEvenement").unwrap();
    assert_eq!(dates.text_of("dateDebut").as_deref(), Some("2019-06-01"));
    assert_eq!(dates.text_of("dateFin").as_deref(), Some("2020-12-31"));
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("<date>1988-07</date>"), "{text}");
    assert!(text.contains("<date>1989</date>"), "{text}");
    assert!(
        text.contains("l&apos;étude &lt;Bertin&gt; &amp; fils"),
        "{text}"
    );
    // Validated here on its own too, so that a failure points at this file.
    validate_bytes(text.as_bytes()).unwrap();
}
