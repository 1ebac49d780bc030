//! Property test: any valid request gives a file that the Cityweb schema accepts and that
//! reads back to the same values.

mod common;

use aiguillage_connector_etat_civil::document::{
    Adresse, DateEvenement, Demandeur, Evenement, Individu, Lieu, Naissance,
};
use aiguillage_connector_etat_civil::{
    encode, DemandeActe, EncodeOptions, Encoding, Genre, NatureDocument, NatureEvenement, Origine,
    PartialDate, QualiteDemandeur, Sexe, TypeInteresse,
};
use common::{normal_form, parse, read_back, validate_bytes};
use proptest::prelude::*;

fn writable(c: char) -> bool {
    !matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{fffe}' | '\u{ffff}')
}

/// Texts citizens type, and hostile ones.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        "[A-Za-z' -]{1,20}",
        "[A-ZÉÈÊËÀÂÎÏÔÙÛÜÇŒ'&<>\" -]{1,20}",
        "[&<>\"'\\]\\[!;#\t\r\n a-z]{1,20}",
        prop::collection::vec(any::<char>(), 1..16).prop_map(|chars| chars
            .into_iter()
            .filter(|&c| writable(c))
            .collect::<String>()),
    ]
    .prop_filter("required texts are not blank", |s| !s.trim().is_empty())
    .boxed()
}

fn opt<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    prop::option::of(s)
}

fn partial_date() -> impl Strategy<Value = PartialDate> {
    (1u16..=9999, 0u8..=12, 0u8..=31).prop_map(|(year, month, day)| {
        let text = match (month, day) {
            (0, _) => format!("{year:04}"),
            (m, 0) => format!("{year:04}-{m:02}"),
            (m, d) => format!("{year:04}-{m:02}-{:02}", d.min(28)),
        };
        PartialDate::parse(&text).unwrap()
    })
}

fn lieu() -> BoxedStrategy<Lieu> {
    (text(), opt(text()), opt(text()))
        .prop_map(|(ville, province, pays)| Lieu {
            ville,
            province,
            pays,
        })
        .boxed()
}

fn pick<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    prop::sample::select(all)
}

fn parent() -> BoxedStrategy<Individu> {
    (text(), opt(text()))
        .prop_map(|(nom, prenoms)| Individu {
            nom,
            nom_usage: None,
            prenoms,
            genre: None,
            sexe: None,
            naissance: None,
            pere: None,
            mere: None,
        })
        .boxed()
}

fn individu() -> BoxedStrategy<Individu> {
    (
        (
            text(),
            opt(text()),
            opt(text()),
            opt(pick(Genre::ALL)),
            opt(pick(Sexe::ALL)),
        ),
        opt((partial_date(), opt(lieu()))),
        opt(parent()),
        opt(parent()),
    )
        .prop_map(
            |((nom, nom_usage, prenoms, genre, sexe), naissance, pere, mere)| Individu {
                nom,
                nom_usage,
                prenoms,
                genre,
                sexe,
                naissance: naissance.map(|(date, lieu)| Naissance {
                    date: Some(date),
                    lieu,
                }),
                pere: pere.map(Box::new),
                mere: mere.map(Box::new),
            },
        )
        .boxed()
}

fn adresse() -> BoxedStrategy<Adresse> {
    (
        text(),
        opt(text()),
        opt("[0-9]{5}"),
        text(),
        opt(text()),
        opt(text()),
        opt(text()),
    )
        .prop_map(
            |(ligne1, ligne2, code_postal, ville, pays, courriel, telephone)| Adresse {
                ligne1,
                ligne2,
                code_postal,
                ville,
                pays,
                courriel,
                telephone,
            },
        )
        .boxed()
}

fn date_time() -> impl Strategy<Value = String> {
    (
        1000u16..=9999,
        1u8..=12,
        1u8..=28,
        0u8..24,
        0u8..60,
        0u8..60,
        prop_oneof![
            Just("Z".to_owned()),
            (-14i8..=14).prop_map(|h| format!(
                "{}{:02}:00",
                if h < 0 { '-' } else { '+' },
                h.unsigned_abs()
            ))
        ],
    )
        .prop_map(|(y, mo, d, h, mi, s, offset)| {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{offset}")
        })
}

fn demande() -> BoxedStrategy<DemandeActe> {
    (
        (
            "[a-z0-9:-]{1,60}",
            date_time(),
            pick(NatureDocument::ALL),
            opt(1i64..=1000),
            opt(text()),
            opt(pick(Origine::ALL)),
        ),
        (
            pick(NatureEvenement::ALL),
            opt(pick(TypeInteresse::ALL)),
            partial_date(),
            opt(partial_date()),
            lieu(),
        ),
        (
            individu(),
            opt(individu()),
            opt((pick(QualiteDemandeur::ALL), individu())),
            adresse(),
        ),
    )
        .prop_map(|(top, event, people)| {
            let (identifiant, date_demande, nature_document, nombre_exemplaires, motif, origine) =
                top;
            let (nature_evenement, type_interesse, debut, fin, lieu_evenement) = event;
            let (titulaire, conjoint, demandeur, adresse_livraison) = people;
            // A period in order.
            let date_fin = fin.map(|fin| {
                if fin.last_day() < debut.first_day() {
                    debut
                } else {
                    fin
                }
            });
            DemandeActe {
                identifiant,
                reference_portail: None,
                date_demande,
                nature_document,
                nombre_exemplaires,
                motif,
                origine,
                evenement: Evenement {
                    nature_evenement,
                    type_interesse,
                    date_evenement: DateEvenement {
                        date_debut: debut,
                        date_fin,
                    },
                    lieu_evenement,
                    titulaire,
                    conjoint,
                },
                demandeur: demandeur.map(|(qualite_demandeur, individu)| Demandeur {
                    qualite_demandeur,
                    individu,
                }),
                adresse_livraison,
            }
        })
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn valid_requests_validate_and_read_back(demande in demande()) {
        // Through JSON, as the gateway hands it over.
        let document = serde_json::to_value(&demande).unwrap();
        let read = DemandeActe::from_document(&document).unwrap();
        prop_assert_eq!(&read, &demande);
        let bytes = encode(&read, EncodeOptions { encoding: Encoding::Utf8, transliterate: true }).unwrap();
        if let Err(errors) = validate_bytes(&bytes) {
            prop_assert!(false, "xmllint refused:\n{}\n{}", errors, String::from_utf8_lossy(&bytes));
        }
        prop_assert_eq!(read_back(&parse(&bytes, false)), normal_form(&demande));
    }

    #[test]
    fn latin1_files_validate_or_name_the_field(demande in demande()) {
        match encode(&demande, EncodeOptions { encoding: Encoding::Latin1, transliterate: true }) {
            Ok(bytes) => {
                if let Err(errors) = validate_bytes(&bytes) {
                    prop_assert!(false, "xmllint refused:\n{}", errors);
                }
                let _ = read_back(&parse(&bytes, true));
            }
            Err(error) => prop_assert!(error.to_string().contains("ISO-8859-1"), "{}", error),
        }
    }
}

#[test]
fn xmllint_does_refuse_an_invalid_file() {
    // The tests above would prove nothing if the validation said yes to everything.
    let bad = b"<?xml version=\"1.0\"?><demandeEtatCivil><identifiant>x</identifiant></demandeEtatCivil>\n";
    assert!(validate_bytes(bad).is_err());
}
