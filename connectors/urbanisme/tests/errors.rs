//! What a deposit the connector must refuse gives: a permanent failure whose message names
//! every problem, and nothing written (no package, nothing left in the work directory).

mod common;

use aiguillage_connector::testkit::assert_french;
use aiguillage_connector::{Attachment, ConnectorError, ConnectorKind, Setup};
use aiguillage_connector_urbanisme::UrbanismeConfig;
use common::*;
use serde_json::{json, Value};

struct Case {
    dir: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    async fn deliver(
        &self,
        extra: Value,
        document: &Value,
        attachments: Vec<Attachment>,
    ) -> ConnectorError {
        let mut config = json!({ "work_directory": self.work.path() });
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let connector = connector(self.dir.path(), config);
        let id = document["identifiant"].as_str().unwrap_or("x").to_owned();
        let error = connector
            .deliver(document, &context(&id, attachments))
            .await
            .expect_err("the deposit is refused");
        assert!(error.is_permanent(), "{}", error.report());
        // What the instruction service's agent reads in the dead letter.
        assert_french(&error.report());
        assert!(
            visible_files(self.dir.path()).is_empty(),
            "nothing is published"
        );
        assert_eq!(
            std::fs::read_dir(self.work.path()).unwrap().count(),
            0,
            "nothing is left in the work directory"
        );
        error
    }
}

fn dp() -> (Value, Vec<Attachment>) {
    (
        fixture("dp-sci-ravalement"),
        fixture_attachments("dp-sci-ravalement"),
    )
}

#[tokio::test]
async fn a_missing_required_piece_is_named_with_its_label() {
    let (mut document, mut attachments) = dp();
    document["pieces"].as_array_mut().unwrap().remove(0);
    attachments.remove(0);
    let error = Case::new().deliver(json!({}), &document, attachments).await;
    assert_eq!(
        error.to_string(),
        "dossier refusé : pièce obligatoire manquante pour un DP : DP1 (Plan de situation du terrain)"
    );
}

#[tokio::test]
async fn every_missing_piece_of_a_pcmi_is_listed() {
    let (mut document, _) = sample("PCMI", "x:1");
    document["pieces"] = json!([]);
    let error = Case::new().deliver(json!({}), &document, vec![]).await;
    let message = error.to_string();
    assert!(
        message.contains("pièces obligatoires manquantes pour un PCMI : PCMI1 (Plan de situation du terrain), PCMI2 (Plan de masse des constructions à édifier ou à modifier), PCMI3 (Plan en coupe du terrain et de la construction), PCMI4 (Notice décrivant le terrain et présentant le projet), PCMI5"),
        "{message}"
    );
}

#[tokio::test]
async fn a_malformed_parcel_is_named_with_its_number_and_value() {
    let (mut document, attachments) = dp();
    document["terrain"]["parcelles"] = json!([
        { "prefixe": "000", "section": "AB", "numero": 245 },
        { "prefixe": "0000", "section": "ABC", "numero": 12345 }
    ]);
    let error = Case::new().deliver(json!({}), &document, attachments).await;
    let message = error.to_string();
    assert!(
        message.starts_with("dossier refusé, 3 problèmes : "),
        "{message}"
    );
    assert!(message.contains("parcelle 2 : préfixe `0000`"), "{message}");
    assert!(
        message.contains("parcelle 2 : section `ABC` : 1 ou 2 caractères A-Z ou 0-9 attendus"),
        "{message}"
    );
    assert!(
        message.contains("parcelle 2 : numéro 12345 : un nombre de 1 à 9999 attendu"),
        "{message}"
    );
    assert!(!message.contains("parcelle 1"), "{message}");
}

#[tokio::test]
async fn no_parcel_and_a_bad_insee_code_are_refused() {
    let (mut document, attachments) = dp();
    document["terrain"]["parcelles"] = json!([]);
    document["terrain"]["commune_insee"] = json!("4404");
    let error = Case::new().deliver(json!({}), &document, attachments).await;
    let message = error.to_string();
    assert!(
        message.contains("terrain.parcelles : au moins une parcelle"),
        "{message}"
    );
    assert!(
        message.contains("terrain.commune_insee `4404`"),
        "{message}"
    );
}

#[tokio::test]
async fn an_oversized_piece_and_package_are_refused() {
    let (document, mut attachments) = dp();
    attachments[0].content.resize(2000, b' ');
    let error = Case::new()
        .deliver(
            json!({ "max_piece_bytes": 1000, "max_package_bytes": 2500 }),
            &document,
            attachments,
        )
        .await;
    let message = error.to_string();
    assert!(
        message.contains("pièce DP1 : 2000 octets, plus que la limite de 1000 octets par pièce"),
        "{message}"
    );
    assert!(
        message
            .contains("les pièces font 2806 octets, plus que la limite de 2500 octets par dossier"),
        "{message}"
    );
}

#[tokio::test]
async fn bytes_that_are_not_what_they_claim_are_refused() {
    let (document, mut attachments) = dp();
    attachments[0].content = b"MZ\x90\x00 an executable".to_vec();
    attachments[2].content_type = "image/gif".into();
    let error = Case::new().deliver(json!({}), &document, attachments).await;
    let message = error.to_string();
    assert!(
        message.contains("pièce DP1 : déclarée application/pdf mais le contenu n'en est pas un PDF (fichier `plan-situation.pdf`)"),
        "{message}"
    );
    assert!(
        message.contains("pièce DP7 : type `image/gif` refusé (PDF, JPEG ou PNG attendus)"),
        "{message}"
    );
}

#[tokio::test]
async fn pieces_and_attachments_must_match_one_to_one() {
    let (document, mut attachments) = dp();
    attachments.remove(1);
    attachments.push(Attachment::new(
        "DP9",
        "plan.pdf",
        "application/pdf",
        pdf("DP9"),
    ));
    attachments.push(Attachment::new("DP7", "encore.jpg", "image/jpeg", jpeg()));
    let error = Case::new().deliver(json!({}), &document, attachments).await;
    let message = error.to_string();
    assert!(
        message.contains("pièce DP4 : aucun fichier joint de ce nom"),
        "{message}"
    );
    assert!(
        message.contains("pièce DP7 : 2 fichiers joints de ce nom"),
        "{message}"
    );
    assert!(
        message.contains("fichier joint `DP9` (`plan.pdf`) : aucune pièce de ce code"),
        "{message}"
    );
}

#[tokio::test]
async fn an_unknown_key_is_refused_with_its_path() {
    let (mut document, attachments) = dp();
    document["terrain"]["adresse"]["code_postale"] = json!("44190");
    let error = Case::new().deliver(json!({}), &document, attachments).await;
    let message = error.to_string();
    assert!(
        message.contains("champ `terrain.adresse.code_postale`"),
        "{message}"
    );
    assert!(
        message.contains("champ `code_postale` inconnu"),
        "{message}"
    );
}

#[tokio::test]
async fn a_bad_siret_an_unknown_type_and_another_envelope_are_listed() {
    let (mut document, attachments) = dp();
    document["demandeurs"][0]["siret"] = json!("83251496700018");
    document["type_dossier"] = json!("PCX");
    document["identifiant"] = json!("clisson-sevre-maine:depot-declaration-prealable:999");
    let case = Case::new();
    let connector = connector(case.dir.path(), json!({}));
    let error = connector
        .deliver(
            &document,
            &context(
                "clisson-sevre-maine:depot-declaration-prealable:212",
                attachments,
            ),
        )
        .await
        .unwrap_err();
    assert!(error.is_permanent());
    assert_french(&error.report());
    let message = error.to_string();
    assert!(
        message.contains("demandeur 1 : SIRET `83251496700018` invalide"),
        "{message}"
    );
    assert!(
        message
            .contains("type_dossier `PCX` inconnu (connus : DP, DPMI, PC, PCMI, PA, PD, CUa, CUb)"),
        "{message}"
    );
    assert!(message.contains("identifiant `clisson-sevre-maine:depot-declaration-prealable:999` : ce n'est pas l'id de l'enveloppe"), "{message}");
}

#[tokio::test]
async fn la_poste_siret_is_checked_its_own_way() {
    let (mut document, attachments) = dp();
    // La Poste: the digits add up to a multiple of 5 (its Luhn key would be wrong).
    document["demandeurs"][0]["siret"] = json!("35600000049837");
    let dir = tempfile::tempdir().unwrap();
    let id = document["identifiant"].as_str().unwrap().to_owned();
    connector(dir.path(), json!({}))
        .deliver(&document, &context(&id, attachments))
        .await
        .unwrap();
}

#[tokio::test]
async fn control_characters_and_empty_texts_are_refused_by_path() {
    let (mut document, attachments) = dp();
    document["projet"]["description"] = json!("Abri\u{1}");
    document["demandeurs"][0]["adresse"]["ville"] = json!("  ");
    let error = Case::new().deliver(json!({}), &document, attachments).await;
    let message = error.to_string();
    assert!(
        message.contains("projet.description : caractère interdit U+0001"),
        "{message}"
    );
    assert!(
        message.contains("demandeurs[0].adresse.ville : texte vide"),
        "{message}"
    );
}

#[tokio::test]
async fn documents_of_the_wrong_shape_are_refused_in_french() {
    let (document, attachments) = dp();
    let mut without_terrain = document.clone();
    without_terrain.as_object_mut().unwrap().remove("terrain");
    let mut typed = document.clone();
    typed["terrain"]["parcelles"] = json!("AB 245");
    for bad in [
        json!([]),
        json!("un dépôt"),
        json!({}),
        without_terrain,
        typed,
    ] {
        Case::new()
            .deliver(json!({}), &bad, attachments.clone())
            .await;
    }
}

/// What the operator reads when a package cannot be dropped, and when `aiguillage check`
/// refuses a configuration.
#[tokio::test]
async fn transport_and_configuration_failures_are_told_in_french() {
    let (document, attachments) = dp();
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("depot");
    std::fs::create_dir(&drop).unwrap();
    let gone = connector(&drop, json!({}));
    std::fs::remove_dir(&drop).unwrap();
    let id = document["identifiant"].as_str().unwrap().to_owned();
    let error = gone
        .deliver(&document, &context(&id, attachments))
        .await
        .unwrap_err();
    assert!(!error.is_permanent(), "{}", error.report());
    assert_french(&error.report());

    let file = dir.path().join("un-fichier");
    std::fs::write(&file, "").unwrap();
    let mail = |extra: Value| {
        let mut mail = json!({ "host": "smtp.agglo.example", "from": "aiguillage@agglo.example", "to": "ads@agglo.example" });
        mail.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        mail
    };
    for extra in [
        json!({ "max_piece_bytes": 0 }),
        json!({ "max_package_bytes": 0 }),
        json!({ "work_directory": &file }),
        json!({ "mail": mail(json!({})), "package": "directory" }),
        json!({ "mail": mail(json!({ "to": [] })) }),
        json!({ "mail": mail(json!({ "to": "service-ads" })) }),
        json!({ "mail": mail(json!({ "attach_max_bytes": 0 })) }),
        json!({ "mail": mail(json!({ "host": " " })) }),
        json!({ "mail": mail(json!({ "port": 0 })) }),
        json!({ "mail": mail(json!({ "timeout": "0s" })) }),
        json!({ "mail": mail(json!({ "security": "none" })) }),
        json!({ "mail": mail(json!({ "from": "aiguillage" })) }),
        json!({ "mail": mail(json!({ "user": " " })) }),
        json!({ "mail": mail(json!({ "user": "aiguillage" })) }),
        json!({ "mail": mail(json!({ "password": "s3cr3t" })) }),
        json!({ "mail": mail(json!({ "user": "aiguillage", "password_file": "absent" })) }),
        json!({ "mail": mail(json!({ "ca_file": &file })) }),
    ] {
        let mut config = json!({ "directory": dir.path() });
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let error = ConnectorKind::of::<UrbanismeConfig>()
            .build(config, &Setup::new("urbanisme-test", dir.path()))
            .err()
            .unwrap_or_else(|| panic!("{extra} accepted"));
        assert_french(&error.to_string());
    }
}
