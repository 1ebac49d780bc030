//! The connector through its `Connector` trait: files in the directory, numbering kept
//! across retries, consecutive per démarche, restarting with the exercice, and the checks
//! that refuse what the Treasury would bounce.

mod common;

use std::sync::Arc;

use aiguillage_connector::numbering::MemoryNumbering;
use aiguillage_connector::testkit::assert_french;
use aiguillage_connector::{Connector, Context, Setup};
use aiguillage_connector_facturation::{Grouping, PesConfig, PesConnector};
use common::{
    config, connector, context, embedded_file, fixtures, latin1, pdf, value_of, values_of, xmllint,
    SIRET,
};
use serde_json::{json, Value};

fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    out.sort();
    out
}

fn golden(name: &str) -> Value {
    fixtures()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("fixture {name}"))
        .1
}

#[tokio::test]
async fn the_golden_titres_become_valid_numbered_files() {
    let dir = tempfile::tempdir().unwrap();
    let pes = connector(config(dir.path()));
    let numbering = Arc::new(MemoryNumbering::default());
    let mut references = Vec::new();
    for (_, doc) in fixtures() {
        let receipt = pes.deliver(&doc, &context(&doc, &numbering)).await.unwrap();
        references.push(receipt.reference.clone().unwrap());
    }
    let expected: Vec<String> = (1..=fixtures().len())
        .map(|n| format!("2026-B{n}-T{n}"))
        .collect();
    assert_eq!(references, expected);
    let written = files(dir.path());
    assert_eq!(written.len(), fixtures().len());
    let first = written[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        first.starts_with("PESALR1_2026_0000001_"),
        "{first}: exercice and bordereau in the name"
    );
    let text = latin1(&std::fs::read(&written[0]).unwrap());
    assert_eq!(value_of(&text, "NomFic").unwrap(), first);
    xmllint(&written).unwrap();
}

#[tokio::test]
async fn the_same_envelope_twice_gives_one_file_and_keeps_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let pes = connector(config(dir.path()));
    let numbering = Arc::new(MemoryNumbering::default());
    let doc = golden("cantine-trois-enfants");
    let first = pes.deliver(&doc, &context(&doc, &numbering)).await.unwrap();
    let again = pes
        .deliver(&doc, &context(&doc, &numbering).with_attempt(2))
        .await
        .unwrap();
    assert_eq!(first.reference, again.reference);
    assert_eq!(files(dir.path()).len(), 1);
    // A second démarche takes the next number.
    let other = golden("piscine-cartes");
    let receipt = pes
        .deliver(&other, &context(&other, &numbering))
        .await
        .unwrap();
    assert_eq!(receipt.reference.as_deref(), Some("2026-B2-T2"));
}

#[tokio::test]
async fn a_new_exercice_restarts_at_one() {
    let dir = tempfile::tempdir().unwrap();
    let pes = connector(config(dir.path()));
    let numbering = Arc::new(MemoryNumbering::default());
    for (index, date) in ["2026-12-30", "2026-12-31", "2027-01-02"]
        .iter()
        .enumerate()
    {
        let mut doc = golden("dechetterie-carte");
        let id = format!("portail:carte-acces-dechetterie:{index}");
        doc["reference"] = json!(id);
        doc["date_emission"] = json!(date);
        pes.deliver(&doc, &context(&doc, &numbering)).await.unwrap();
    }
    let names: Vec<String> = files(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names[0].starts_with("PESALR1_2026_0000001_"), "{names:?}");
    assert!(names[1].starts_with("PESALR1_2026_0000002_"), "{names:?}");
    assert!(names[2].starts_with("PESALR1_2027_0000001_"), "{names:?}");
    let text = latin1(&std::fs::read(dir.path().join(&names[2])).unwrap());
    assert_eq!(value_of(&text, "Exer").unwrap(), "2027");
    assert_eq!(value_of(&text, "IdBord").unwrap(), "1");
}

/// (what is wrong, the change, words the reason must hold)
fn refusals() -> Vec<(&'static str, Value, &'static str)> {
    let base = golden("dechetterie-carte");
    let change = |pointer: &str, value: Value| {
        let mut doc = base.clone();
        *doc.pointer_mut(pointer).unwrap() = value;
        doc
    };
    vec![
        (
            "empty debtor name",
            change("/debiteur/nom", json!(" ")),
            "debiteur.nom",
        ),
        (
            "zero amount",
            change("/lignes/0/montant_ht", json!("0.00")),
            "nul ou négatif",
        ),
        (
            "negative amount",
            change("/lignes/0/montant_ht", json!("-8.00")),
            "nul ou négatif",
        ),
        (
            "three decimals",
            change("/lignes/0/montant_ht", json!("8.005")),
            "plus de 2 décimales",
        ),
        (
            "amount that is not quantity × unit price",
            change("/lignes/0/montant_ht", json!("9.00")),
            "`9.00` n'est pas quantite × prix_unitaire arrondi au centime : 1.0000 × 8.0000 = 8.00",
        ),
        (
            "unit price with five decimals",
            change("/lignes/0/prix_unitaire", json!("8.00001")),
            "lignes[0].prix_unitaire",
        ),
        (
            "zero quantity",
            change("/lignes/0/quantite", json!("0")),
            "lignes[0].quantite",
        ),
        ("no line", change("/lignes", json!([])), "au moins une"),
        ("MLLE", change("/debiteur/civilite", json!("MLLE")), "MLLE"),
        (
            "abroad",
            change("/debiteur/adresse/pays", json!("BELGIQUE")),
            "étranger",
        ),
        (
            "postal code",
            change("/debiteur/adresse/code_postal", json!("4419")),
            "5 chiffres",
        ),
        (
            "nature",
            change("/imputation/nature", json!("70A")),
            "imputation.nature",
        ),
        (
            "date",
            change("/date_emission", json!("28/11/2026")),
            "date_emission",
        ),
        (
            "reference",
            change("/reference", json!("autre")),
            "identifiant de l'enveloppe",
        ),
        (
            "name too long",
            change("/debiteur/nom", json!("N".repeat(39))),
            "38",
        ),
        (
            "missing name",
            {
                let mut doc = base.clone();
                doc["debiteur"].as_object_mut().unwrap().remove("nom");
                doc
            },
            "nom",
        ),
    ]
}

#[tokio::test]
async fn what_the_treasury_would_bounce_is_refused_for_good_and_takes_no_number() {
    let dir = tempfile::tempdir().unwrap();
    let pes = connector(config(dir.path()));
    let numbering = Arc::new(MemoryNumbering::default());
    let ctx = Context::new(
        "clisson-sevre-maine:carte-acces-dechetterie:418",
        "44043",
        "carte-acces-dechetterie",
        "clisson-finances",
    )
    .with_numbering(numbering.clone());
    for (what, doc, words) in refusals() {
        let error = pes.deliver(&doc, &ctx).await.unwrap_err();
        assert!(error.is_permanent(), "{what}: {error}");
        assert!(error.to_string().contains(words), "{what}: {error}");
        assert_french(&error.report());
    }
    assert!(files(dir.path()).is_empty());
    // None of them took a number.
    let good = golden("piscine-cartes");
    let receipt = pes
        .deliver(&good, &context(&good, &numbering))
        .await
        .unwrap();
    assert_eq!(receipt.reference.as_deref(), Some("2026-B1-T1"));
}

#[test]
fn a_wrong_configuration_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new("clisson-finances", "/");
    let build = |config: PesConfig| PesConnector::new(config, &setup).map(|_| ()).unwrap_err();
    let base = || config(dir.path());
    let mut bad = base();
    bad.id_coll = "21440043800006".into();
    let error = build(bad);
    assert_eq!(error.key(), "id_coll");
    assert!(error.to_string().contains("SIRET"), "{error}");
    assert_french(&error.to_string());
    // What `aiguillage check` tells the operator, key by key: in French.
    let mut cases: Vec<(PesConfig, &str)> = Vec::new();
    let mut bad = base();
    bad.cod_col = "000".into();
    cases.push((bad, "cod_col"));
    let mut bad = base();
    bad.cod_bud = "001".into();
    cases.push((bad, "cod_bud"));
    let mut bad = base();
    bad.id_post = String::new();
    cases.push((bad, "id_post"));
    let mut bad = base();
    bad.libelle = Some("Clisson\nbudget".into());
    cases.push((bad, "libelle"));
    cases.push((base().with_file_name("{bordereau}.xml"), "file_name"));
    cases.push((base().with_file_name("{id}/{attempt}.xml"), "file_name"));
    cases.push((base().with_pj_attachment(" "), "pj_attachment"));
    cases.push((base().with_pj_max_bytes(0), "pj_max_bytes"));
    cases.push((
        base()
            .with_grouping(Grouping::titres(3))
            .with_pj_attachment("facture"),
        "grouping",
    ));
    cases.push((base().with_grouping(Grouping::titres(0)), "grouping"));
    cases.push((
        PesConfig::new(dir.path().join("missing"), SIRET, "043", "00", "044012"),
        "directory",
    ));
    for (config, key) in cases {
        let error = build(config);
        assert_eq!(error.key(), key, "{error}");
        assert_french(&error.to_string());
    }
}

#[tokio::test]
async fn a_directory_gone_at_delivery_is_transient_and_told_in_french() {
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("pes");
    std::fs::create_dir(&drop).unwrap();
    let pes = connector(config(&drop));
    std::fs::remove_dir(&drop).unwrap();
    let numbering = Arc::new(MemoryNumbering::default());
    let doc = golden("dechetterie-carte");
    let error = pes
        .deliver(&doc, &context(&doc, &numbering))
        .await
        .unwrap_err();
    assert!(!error.is_permanent(), "{}", error.report());
    assert_french(&error.report());
}

#[test]
fn the_configuration_reads_from_toml_with_its_defaults() {
    let text = format!(
        "directory = \"/tmp\"\nid_coll = \"{SIRET}\"\ncod_col = \"043\"\ncod_bud = \"00\"\nid_post = \"044012\"\n"
    );
    let config: PesConfig =
        serde_json::from_value(serde_json::to_value(toml_like(&text)).unwrap()).unwrap();
    assert_eq!(
        config.file_name,
        aiguillage_connector_facturation::DEFAULT_FILE_NAME
    );
    assert_eq!(
        config.encoding,
        aiguillage_connector_facturation::Encoding::Latin1
    );
    let unknown = json!({"directory": "/tmp", "id_coll": SIRET, "cod_col": "043", "cod_bud": "00", "id_post": "1", "siret": "x"});
    assert!(serde_json::from_value::<PesConfig>(unknown).is_err());
}

/// `key = "value"` lines as a JSON object (the gateway gives the table as JSON).
fn toml_like(text: &str) -> Value {
    let mut map = serde_json::Map::new();
    for line in text.lines() {
        let (key, value) = line.split_once(" = ").unwrap();
        map.insert(key.into(), json!(value.trim_matches('"')));
    }
    Value::Object(map)
}

#[tokio::test]
async fn without_numbering_the_delivery_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pes = connector(config(dir.path()));
    let doc = golden("dechetterie-carte");
    let ctx = Context::new(
        doc["reference"].as_str().unwrap(),
        "44043",
        "carte-acces-dechetterie",
        "c",
    );
    let error = pes.deliver(&doc, &ctx).await.unwrap_err();
    assert!(error.is_permanent());
    assert_french(&error.report());
}

fn bill_pdf(content: Vec<u8>, content_type: &str) -> aiguillage_connector::Attachment {
    aiguillage_connector::Attachment::new("facture", "facture-32-1204.pdf", content_type, content)
}

#[tokio::test]
async fn with_pj_attachment_the_bill_s_pdf_is_embedded_and_referenced() {
    let dir = tempfile::tempdir().unwrap();
    let pes = connector(config(dir.path()).with_pj_attachment("facture"));
    let numbering = Arc::new(MemoryNumbering::default());
    let doc = golden("cantine-trois-enfants");
    let ctx = context(&doc, &numbering).with_attachments(vec![
        aiguillage_connector::Attachment::new(
            "justificatif",
            "quotient.jpg",
            "image/jpeg",
            vec![1, 2],
        ),
        bill_pdf(pdf(), "application/pdf"),
    ]);
    pes.deliver(&doc, &ctx).await.unwrap();
    // A retry writes the same bytes: the transport finds its file.
    pes.deliver(&doc, &ctx.clone().with_attempt(2))
        .await
        .unwrap();
    let written = files(dir.path());
    assert_eq!(written.len(), 1);
    xmllint(&written).unwrap();
    let text = latin1(&std::fs::read(&written[0]).unwrap());
    let id = format!("{SIRET}B00E2026T00000001");
    assert_eq!(values_of(&text, "IdUnique"), [id.clone(), id]);
    assert_eq!(values_of(&text, "NomPJ"), ["facture-32-1204.pdf"; 2]);
    assert_eq!(
        embedded_file(&text),
        pdf(),
        "only the configured attachment"
    );

    // Without the attachment, the titre is issued without PJ.
    let other = golden("piscine-cartes");
    pes.deliver(&other, &context(&other, &numbering))
        .await
        .unwrap();
    let written = files(dir.path());
    let text = latin1(&std::fs::read(&written[1]).unwrap());
    assert!(
        !text.contains("PES_PJ") && !text.contains("PJRef"),
        "{text}"
    );
    xmllint(&written).unwrap();
}

#[tokio::test]
async fn without_pj_attachment_no_pj_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let pes = connector(config(dir.path()));
    let numbering = Arc::new(MemoryNumbering::default());
    let doc = golden("cantine-trois-enfants");
    let ctx = context(&doc, &numbering).with_attachments(vec![bill_pdf(pdf(), "application/pdf")]);
    pes.deliver(&doc, &ctx).await.unwrap();
    let text = latin1(&std::fs::read(&files(dir.path())[0]).unwrap());
    assert!(!text.contains("PES_PJ"), "{text}");
}

#[tokio::test]
async fn a_pj_that_is_not_a_pdf_or_too_large_is_refused_and_takes_no_number() {
    let dir = tempfile::tempdir().unwrap();
    let pes = connector(
        config(dir.path())
            .with_pj_attachment("facture")
            .with_pj_max_bytes(1_000),
    );
    let numbering = Arc::new(MemoryNumbering::default());
    let doc = golden("cantine-trois-enfants");
    let small_pdf = b"%PDF-1.4\n%%EOF\n".to_vec();
    for (attachment, expected) in [
        (
            bill_pdf(b"GIF89a....".to_vec(), "application/pdf"),
            "son contenu n'est pas un PDF",
        ),
        (
            bill_pdf(small_pdf.clone(), "image/png"),
            "déclarée `image/png`",
        ),
        (
            bill_pdf(pdf(), "application/pdf"),
            "plus que les 1000 de `pj_max_bytes`",
        ),
    ] {
        let ctx = context(&doc, &numbering).with_attachments(vec![attachment]);
        let error = pes.deliver(&doc, &ctx).await.unwrap_err();
        assert!(error.is_permanent(), "{error}");
        assert_french(&error.report());
        let text = error.to_string();
        assert!(
            text.contains("pièce jointe `facture` (facture-32-1204.pdf)")
                && text.contains(expected),
            "{text}"
        );
    }
    assert!(files(dir.path()).is_empty());
    // No number was taken by the refusals.
    let ctx =
        context(&doc, &numbering).with_attachments(vec![bill_pdf(small_pdf, "application/pdf")]);
    let receipt = pes.deliver(&doc, &ctx).await.unwrap();
    assert_eq!(receipt.reference.as_deref(), Some("2026-B1-T1"));
}

#[tokio::test]
async fn grouped_titres_are_held_then_written_as_one_valid_bordereau() {
    use aiguillage_connector::holding::{FlushContext, Holding, MemoryHolding};

    let dir = tempfile::tempdir().unwrap();
    let refused = PesConnector::new(
        config(dir.path())
            .with_grouping(Grouping::titres(3))
            .with_pj_attachment("facture"),
        &Setup::new("clisson-finances", "/"),
    )
    .unwrap_err();
    assert!(refused.to_string().contains("grouping"), "{refused}");
    let pes = connector(config(dir.path()).with_grouping(Grouping::titres(3)));
    assert!(pes.flush_every().is_some());
    let numbering = Arc::new(MemoryNumbering::default());
    let holding = Arc::new(MemoryHolding::default());
    let mut owners = Vec::new();
    for (_, doc) in fixtures() {
        let ctx = context(&doc, &numbering).with_holding(holding.clone());
        let receipt = pes.deliver(&doc, &ctx).await.unwrap();
        assert!(receipt.held, "held, not written yet");
        // A redelivery holds nothing twice.
        assert!(pes.deliver(&doc, &ctx.with_attempt(2)).await.unwrap().held);
        owners.push(doc["reference"].as_str().unwrap().to_owned());
    }
    assert!(
        files(dir.path()).is_empty(),
        "nothing written before the flush"
    );
    let flush = FlushContext::new("clisson-finances", holding.clone(), numbering.clone());
    let batches = pes.flush(&flush).await.unwrap();
    assert_eq!(batches.len(), 1, "the full bordereau only: {batches:?}");
    assert_eq!(batches[0].batch, "2026-N00000001");
    let references: Vec<_> = batches[0]
        .demarches
        .iter()
        .map(|d| d.reference.clone().unwrap())
        .collect();
    assert_eq!(references, ["2026-B1-T1", "2026-B1-T2", "2026-B1-T3"]);
    let written = files(dir.path());
    assert_eq!(written.len(), 1);
    xmllint(&written).unwrap();
    let text = latin1(&std::fs::read(&written[0]).unwrap());
    assert_eq!(value_of(&text, "NbrPce").unwrap(), "3");
    assert_eq!(values_of(&text, "IdPce"), ["1", "2", "3"]);
    // Flushed again before being marked written (a crash): the same file, not a second.
    let again = pes.flush(&flush).await.unwrap();
    assert_eq!(again, batches);
    assert_eq!(files(dir.path()).len(), 1);
    holding.written("2026-N00000001").await.unwrap();
    assert!(
        pes.flush(&flush).await.unwrap().is_empty(),
        "the fourth waits"
    );
}
