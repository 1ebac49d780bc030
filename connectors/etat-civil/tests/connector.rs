//! The connector on a local import directory: files, names, redeliveries, refusals and the
//! legal rules.

mod common;

use std::path::Path;

use aiguillage_connector::testkit::assert_french;
use aiguillage_connector::{Connector, ConnectorKind, Context, Setup};
use aiguillage_connector_etat_civil::{rules, EtatCivilConfig};
use common::{fixtures, xmllint};
use serde_json::{json, Value};

fn setup() -> Setup {
    Setup::new("clisson-cityweb", "/nonexistent-config-dir")
}

fn build(table: Value) -> std::sync::Arc<dyn Connector> {
    ConnectorKind::of::<EtatCivilConfig>()
        .build(table, &setup())
        .unwrap_or_else(|error| panic!("{error}"))
}

fn context(document: &Value) -> Context {
    let id = document["identifiant"].as_str().unwrap();
    let form = id.split(':').nth(1).unwrap_or("demande-acte-naissance");
    Context::new(id, "44043", form, "clisson-cityweb")
}

fn golden(name: &str) -> Value {
    fixtures()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, doc)| doc)
        .unwrap()
}

fn files(directory: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![directory.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            // The connector's journal (`.aiguillage-published/`) is not an import file.
            if path.file_name().unwrap().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(directory).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn each_golden_request_becomes_one_valid_file_in_its_event_directory() {
    let dir = tempfile::tempdir().unwrap();
    let connector = build(json!({"directory": dir.path()}));
    let mut references = Vec::new();
    for (name, document) in fixtures() {
        let receipt = connector
            .deliver(&document, &context(&document))
            .await
            .unwrap_or_else(|error| panic!("{name}: {}", error.report()));
        references.push(receipt.reference.unwrap());
    }
    let written = files(dir.path());
    let mut sorted = references.clone();
    sorted.sort();
    assert_eq!(written, sorted);
    for reference in &references {
        let event = reference.split('/').next().unwrap();
        assert!(["NAI", "MAR", "DEC"].contains(&event), "{reference}");
        assert!(reference.ends_with(".xml"), "{reference}");
        assert!(
            reference.contains("clisson-sevre-maine_demande-acte-"),
            "{reference}"
        );
    }
    let paths: Vec<_> = written.iter().map(|f| dir.path().join(f)).collect();
    xmllint(&paths).unwrap();
}

#[tokio::test]
async fn the_same_envelope_twice_gives_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let connector = build(json!({"directory": dir.path()}));
    let document = golden("naissance-cpi-titulaire");
    let ctx = context(&document);
    let first = connector.deliver(&document, &ctx).await.unwrap();
    let again = connector
        .deliver(&document, &ctx.clone().with_attempt(2))
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(files(dir.path()).len(), 1);

    // Several deliveries at once agree too.
    let mut tasks = Vec::new();
    for attempt in 3..8 {
        let connector = connector.clone();
        let document = document.clone();
        let ctx = ctx.clone().with_attempt(attempt);
        tasks.push(tokio::spawn(async move {
            connector.deliver(&document, &ctx).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), first);
    }
    assert_eq!(files(dir.path()).len(), 1);

    // A different request under the same envelope id is refused, never overwritten.
    let mut changed = document.clone();
    changed["nombre_exemplaires"] = json!(3);
    let error = connector.deliver(&changed, &ctx).await.unwrap_err();
    assert!(error.is_permanent());
    assert!(
        error.to_string().contains("autre contenu")
            || error.to_string().contains("contenu différent"),
        "{error}"
    );
}

#[tokio::test]
async fn a_file_the_software_took_is_not_written_again_on_redelivery() {
    let dir = tempfile::tempdir().unwrap();
    let connector = build(json!({"directory": dir.path()}));
    let document = golden("deces-cpi-notaire");
    let ctx = context(&document);
    let first = connector.deliver(&document, &ctx).await.unwrap();
    let name = first.reference.clone().unwrap();
    // The software imports the file and moves it away.
    std::fs::remove_file(dir.path().join(&name)).unwrap();
    // The gateway died before recording the outcome: the démarche comes again.
    let again = connector
        .deliver(&document, &ctx.clone().with_attempt(2))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert!(files(dir.path()).is_empty(), "not written a second time");
    let journal = dir
        .path()
        .join(".aiguillage-published")
        .join(format!("{name}.sha256"));
    assert_eq!(std::fs::read_to_string(&journal).unwrap().trim().len(), 64);
    // Another document under the same name is still refused.
    let mut changed = document.clone();
    changed["motif"] = json!("Autre motif");
    let error = connector.deliver(&changed, &ctx).await.unwrap_err();
    assert!(error.is_permanent());
    assert!(
        error
            .to_string()
            .contains("contenu différent a déjà été publié"),
        "{error}"
    );
}

#[tokio::test]
async fn names_follow_the_template_and_the_options() {
    let dir = tempfile::tempdir().unwrap();
    let connector = build(json!({
        "directory": dir.path(),
        "file_name": "{commune}-{id}.xml",
        "event_subdirectories": false,
        "encoding": "iso-8859-1",
    }));
    let document = golden("mariage-extaf-parent");
    let receipt = connector
        .deliver(&document, &context(&document))
        .await
        .unwrap();
    let name = receipt.reference.unwrap();
    assert!(
        name.starts_with("44043-clisson-sevre-maine_demande-acte-mariage_57-"),
        "{name}"
    );
    assert!(!name.contains('/'));
    let bytes = std::fs::read(dir.path().join(&name)).unwrap();
    assert!(bytes.starts_with(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"));
    assert!(
        bytes.windows(3).any(|w| w == b"G\xe9t"),
        "Gétigné in Latin-1"
    );
    xmllint(&[dir.path().join(&name)]).unwrap();
}

#[tokio::test]
async fn a_document_that_cannot_be_written_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let connector = build(json!({"directory": dir.path()}));
    let document = golden("naissance-cpi-titulaire");
    let ctx = context(&document);
    let cases = [
        (
            "/nombre_exemplaires",
            json!(0),
            "champ `nombre_exemplaires` : 0 exemplaires demandés",
        ),
        (
            "/evenement/titulaire/nom",
            json!("A\u{7}B"),
            "champ `evenement.titulaire.nom` : contient le caractère de contrôle U+0007",
        ),
        (
            "/identifiant",
            json!("autre:1"),
            "champ `identifiant` : `autre:1` n'est pas l'identifiant de l'enveloppe",
        ),
    ];
    for (pointer, value, expected) in cases {
        let mut bad = document.clone();
        *bad.pointer_mut(pointer).unwrap() = value;
        let error = connector.deliver(&bad, &ctx).await.unwrap_err();
        assert!(error.is_permanent(), "{error}");
        assert!(error.to_string().contains(expected), "{error}");
        assert_french(&error.report());
    }
    assert!(files(dir.path()).is_empty());
}

/// What a commune agent or the operator reads when a démarche fails here: the realistic
/// bad documents, a directory gone and the configurations refused at start.
#[tokio::test]
async fn every_failure_is_told_in_french() {
    let dir = tempfile::tempdir().unwrap();
    let connector = build(json!({"directory": dir.path()}));
    let document = golden("naissance-cpi-titulaire");
    let ctx = context(&document);
    let change = |pointer: &str, value: Value| {
        let mut doc = document.clone();
        *doc.pointer_mut(pointer).unwrap() = value;
        doc
    };
    let without = |key: &str| {
        let mut doc = document.clone();
        doc.as_object_mut().unwrap().remove(key);
        doc
    };
    let bad_documents = [
        json!([]),
        json!("une demande"),
        json!({}),
        without("evenement"),
        without("nature_document"),
        change("/nature_document", json!("CPX")),
        change("/nombre_exemplaires", json!("deux")),
        change("/nombre_exemplaires", json!(0)),
        change("/evenement/titulaire/nom", json!("")),
        change("/evenement/titulaire/nom", json!("A\u{0}B")),
        {
            let mut doc = document.clone();
            doc["champ_en_trop"] = json!(1);
            doc
        },
        change("/identifiant", json!("autre:1")),
        asked_by("naissance-cpi-titulaire", Some("autre"), "CPI", "NAI"),
        asked_by("naissance-cpi-titulaire", None, "EXTAF", "DEC"),
    ];
    for bad in bad_documents {
        let error = connector.deliver(&bad, &ctx).await.unwrap_err();
        assert!(error.is_permanent(), "{bad}: {error}");
        assert_french(&error.report());
    }
    assert!(files(dir.path()).is_empty());

    let gone = dir.path().join("import");
    std::fs::create_dir(&gone).unwrap();
    let connector = build(json!({"directory": gone}));
    std::fs::remove_dir(&gone).unwrap();
    let error = connector.deliver(&document, &ctx).await.unwrap_err();
    assert!(!error.is_permanent(), "{}", error.report());
    assert_french(&error.report());

    for table in [
        json!({"directory": ""}),
        json!({"directory": dir.path().join("missing")}),
        json!({"directory": dir.path(), "file_name": "x.xml"}),
        json!({"directory": dir.path(), "file_name": "{id}-{attempt}.xml"}),
        json!({"directory": dir.path(), "file_name": "{date}-{id}.xml"}),
        json!({"directory": dir.path(), "file_name": ".{id}.xml"}),
        json!({"directory": dir.path(), "file_name": "{id"}),
    ] {
        let error = ConnectorKind::of::<EtatCivilConfig>()
            .build(table.clone(), &setup())
            .err()
            .unwrap_or_else(|| panic!("{table} accepted"));
        assert_french(&error.to_string());
    }
}

/// The golden birth request, asked by someone else.
fn asked_by(document: &str, qualite: Option<&str>, nature: &str, event: &str) -> Value {
    let mut doc = golden(document);
    doc["nature_document"] = json!(nature);
    doc["evenement"]["nature_evenement"] = json!(event);
    match qualite {
        Some(qualite) => {
            doc["demandeur"] = json!({"qualite_demandeur": qualite, "individu": {"nom": "DURAND", "prenoms": "Kévin"}});
        }
        None => {
            doc.as_object_mut().unwrap().remove("demandeur");
        }
    }
    doc
}

#[tokio::test]
async fn the_legal_rules_refuse_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let connector = build(json!({"directory": dir.path()}));
    // (requester, document, event, refused by)
    let cases: &[(Option<&str>, &str, &str, Option<&str>)] = &[
        (None, "CPI", "NAI", None),
        (Some("mere"), "CPI", "NAI", None),
        (Some("grand-parent"), "EXTAF", "NAI", None),
        (Some("petit-enfant"), "EXTPL", "NAI", None),
        (Some("conjoint"), "CPI", "MAR", None),
        (Some("representant-legal"), "EXTAF", "MAR", None),
        (Some("notaire"), "CPI", "NAI", None),
        (Some("avocat"), "EXTAF", "REC", None),
        (Some("autre"), "CPI", "NAI", Some("filiation-naissance")),
        (
            Some("frere-soeur"),
            "EXTAF",
            "NAI",
            Some("filiation-naissance"),
        ),
        (Some("autre"), "EXTPL", "REC", Some("filiation-naissance")),
        (Some("frere-soeur"), "CPI", "MAR", Some("filiation-mariage")),
        (Some("autre"), "EXTSF", "NAI", None),
        (Some("frere-soeur"), "EXTSF", "MAR", None),
        (Some("autre"), "CPI", "DEC", None),
        (Some("autre"), "EXTPL", "DEC", None),
        (Some("notaire"), "EXTSF", "DEC", Some("deces-pas-d-extrait")),
        (None, "EXTAF", "DEC", Some("deces-pas-d-extrait")),
    ];
    for (qualite, nature, event, refused_by) in cases {
        let doc = asked_by("naissance-cpi-titulaire", *qualite, nature, event);
        let outcome = connector.deliver(&doc, &context(&doc)).await;
        match (refused_by, outcome) {
            (None, Ok(_)) => {}
            (Some(rule), Err(error)) => {
                assert!(error.is_permanent());
                assert!(
                    error
                        .to_string()
                        .starts_with(&format!("la règle légale `{rule}` refuse")),
                    "{error}"
                );
            }
            (expected, outcome) => {
                panic!("{qualite:?} {nature} {event}: expected {expected:?}, got {outcome:?}")
            }
        }
        // Clean up so that the next case may write the same name.
        for file in files(dir.path()) {
            std::fs::remove_file(dir.path().join(file)).unwrap();
        }
        let _ = std::fs::remove_dir_all(dir.path().join(".aiguillage-published"));
    }

    // The cousin of the issue: a copie intégrale of a birth act.
    let doc = asked_by("naissance-cpi-titulaire", Some("autre"), "CPI", "NAI");
    let error = connector.deliver(&doc, &context(&doc)).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "la règle légale `filiation-naissance` refuse la demande de copie intégrale d'un acte de naissance faite par `autre` (toute autre personne) : {}",
            rules::RULES[0].text
        )
    );
    assert!(files(dir.path()).is_empty());
}

#[test]
fn the_documentation_shows_the_rules_table_of_the_code() {
    let root = common::workspace_root();
    let doc = std::fs::read_to_string(root.join("docs/connectors/etat-civil.md"))
        .expect("docs/connectors/etat-civil.md");
    assert!(
        doc.contains(&rules::markdown_table()),
        "docs/connectors/etat-civil.md must hold the table of rules.rs exactly:\n{}",
        rules::markdown_table()
    );
}

#[test]
fn configurations_are_checked_at_build() {
    let refuse = |table: Value| {
        ConnectorKind::of::<EtatCivilConfig>()
            .build(table, &setup())
            .err()
            .expect("refused")
    };
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        refuse(json!({"directory": dir.path(), "file_name": "x.xml"})).key(),
        "file_name"
    );
    assert_eq!(
        refuse(json!({"directory": dir.path().join("missing")})).key(),
        "directory"
    );
    let error = refuse(json!({"directory": dir.path(), "encoding": "latin-9"}));
    assert!(
        error.to_string().contains("unknown variant `latin-9`"),
        "{error}"
    );
    let error = refuse(json!({"directory": dir.path(), "pretty": true}));
    assert!(
        error.to_string().contains("unknown field `pretty`"),
        "{error}"
    );
}
