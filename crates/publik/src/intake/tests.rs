use super::*;
use crate::config::{FormRule, Timezone, Triggers};
use secrecy::SecretString;
use std::collections::BTreeMap;

fn portal() -> Portal {
    let mut forms = BTreeMap::new();
    for (slug, commune) in [
        ("demande-acte-naissance", CommuneRule::Fixed("44043".into())),
        ("inscription-cantine", CommuneRule::Field("commune".into())),
    ] {
        forms.insert(
            slug.to_owned(),
            FormRule {
                slug: slug.into(),
                commune,
                triggers: Triggers::default(),
            },
        );
    }
    Portal {
        name: "csm".into(),
        url: None,
        origs: vec!["demarches.example.invalid".into()],
        secret: SecretString::from("k".to_owned()),
        timezone: Timezone::EuropeParis,
        forms,
        notify: None,
    }
}

fn formdata(form: &str) -> Map<String, Value> {
    json!({
        "id": 42,
        "receipt_time": "2026-11-28T10:12:00",
        "url": format!("https://demarches.example.invalid/{form}/42/"),
        "api_url": format!("https://demarches.example.invalid/api/forms/{form}/42/"),
        "fields": {"commune": "Gorges", "commune_raw": "44064"}
    })
    .as_object()
    .cloned()
    .unwrap()
}

#[test]
fn the_envelope_follows_the_contract() {
    let envelope = envelope_of(&portal(), formdata("demande-acte-naissance")).unwrap();
    assert_eq!(envelope["id"], "csm:demande-acte-naissance:42");
    assert_eq!(envelope["commune"], "44043");
    assert_eq!(envelope["form"], "demande-acte-naissance");
    assert_eq!(envelope["submitted_at"], "2026-11-28T10:12:00+01:00");
    assert_eq!(envelope["formdata"]["id"], 42);
    let envelope = envelope_of(&portal(), formdata("inscription-cantine")).unwrap();
    assert_eq!(
        envelope["commune"], "44064",
        "the _raw code of a list field"
    );
}

#[test]
fn each_defect_has_its_reason() {
    let mut no_form = formdata("x");
    no_form.remove("api_url");
    no_form.insert("url".into(), "nope".into());
    assert_eq!(envelope_of(&portal(), no_form), Err(IntakeError::NoForm));
    let error = envelope_of(&portal(), formdata("permis-de-construire")).unwrap_err();
    assert!(error.to_string().contains("unknown form `permis-de-construire` for portal `csm` (configured: demande-acte-naissance, inscription-cantine)"), "{error}");
    let mut bad = formdata("inscription-cantine");
    bad["fields"]["commune_raw"] = "Gorges".into();
    assert!(matches!(
        envelope_of(&portal(), bad),
        Err(IntakeError::InvalidCommune { .. })
    ));
    let mut bad = formdata("inscription-cantine");
    bad.insert("fields".into(), json!({}));
    assert_eq!(
        envelope_of(&portal(), bad),
        Err(IntakeError::NoCommune("commune".into()))
    );
    let mut bad = formdata("demande-acte-naissance");
    bad.insert("receipt_time".into(), "hier".into());
    assert!(matches!(
        envelope_of(&portal(), bad),
        Err(IntakeError::InvalidReceiptTime(_))
    ));
    let mut bad = formdata("demande-acte-naissance");
    bad.insert("id".into(), "1:2".into());
    assert_eq!(envelope_of(&portal(), bad), Err(IntakeError::InvalidId));
}
