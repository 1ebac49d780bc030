//! `aiguillage map`: a mapping tried on a sample démarche, without any broker.

use std::process::Command;

const MAPPING: &str = r#"
[tables.nature]
"Copie intégrale" = "CPI"

[document]
identifiant = "{{ envelope.id }}"
nature = { template = "{{ fields.nature }}", table = "nature", required = true }
nom = "{{ fields.nom|upper }}"
"#;

fn run(mapping: &str, sample: &serde_json::Value) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.toml"), mapping).unwrap();
    std::fs::write(dir.path().join("sample.json"), sample.to_string()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_aiguillage"))
        .current_dir(dir.path())
        .args([
            "map",
            "--mapping",
            "m.toml",
            "sample.json",
            "--commune",
            "44043",
            "--form",
            "demande-acte",
        ])
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bare_form_data_is_mapped_and_printed_as_json() {
    let sample =
        serde_json::json!({"id": 42, "fields": {"nature": "Copie intégrale", "nom": "Durand"}});
    let (code, stdout, stderr) = run(MAPPING, &sample);
    assert_eq!(code, 0, "{stderr}");
    let document: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        document,
        serde_json::json!({"identifiant": "sample:demande-acte:42", "nature": "CPI", "nom": "DURAND"})
    );
}

#[test]
fn an_envelope_is_mapped_as_it_is() {
    let sample = serde_json::json!({
        "id": "clisson:demande-acte:7", "commune": "44043", "form": "demande-acte",
        "submitted_at": "2026-11-28T10:12:00+01:00",
        "formdata": {"fields": {"nature": "Copie intégrale", "nom": "Martin"}}
    });
    let (code, stdout, _) = run(MAPPING, &sample);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("\"identifiant\": \"clisson:demande-acte:7\""),
        "{stdout}"
    );
}

#[test]
fn a_mapping_error_on_the_sample_is_explained() {
    let sample = serde_json::json!({"fields": {"nature": "Copie", "nom": "Durand"}});
    let (code, stdout, stderr) = run(MAPPING, &sample);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert_eq!(
        stderr.trim(),
        "mapping m.toml : champ `nature` : `Copie` n'est pas dans la table de codes `nature` (connus : Copie intégrale) : l'ajouter à [tables.nature]"
    );
}

#[test]
fn a_broken_mapping_names_its_line() {
    let (code, _, stderr) = run(
        &MAPPING.replace("{{ fields.nom|upper }}", "{{ fields.nom|upper }"),
        &serde_json::json!({}),
    );
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("m.toml:8: champ `nom` : erreur dans le modèle : « "),
        "{stderr}"
    );
}

/// `aiguillage map` with `args`, from `dir`: (exit code, stdout, stderr).
fn map_in(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_aiguillage"))
        .current_dir(dir)
        .arg("map")
        .args(args)
        .env_remove("AIGUILLAGE_CONFIG")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bare_form_data_without_its_commune_or_form_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.toml"), MAPPING).unwrap();
    let sample = serde_json::json!({"id": 42, "fields": {"nature": "Copie intégrale"}});
    std::fs::write(dir.path().join("sample.json"), sample.to_string()).unwrap();
    for args in [
        &[
            "--mapping",
            "m.toml",
            "sample.json",
            "--form",
            "demande-acte",
        ][..],
        &["--mapping", "m.toml", "sample.json", "--commune", "44043"][..],
    ] {
        let (code, stdout, stderr) = map_in(dir.path(), args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(
            stderr.contains("sample.json : ce sont les données d'un formulaire seules")
                && stderr.contains("--commune 44043 --form"),
            "{args:?}: {stderr}"
        );
    }
}

/// The repository root, where the shipped mappings and fixtures are.
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// A configuration with the état-civil connector `clisson-etat-civil` writing into `dir`.
fn etat_civil_config(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("import")).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        r#"
[bus]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"

[store]
url = "sqlite://aiguillage.db"

[[connectors]]
name = "clisson-etat-civil"
kind = "etat-civil/cityweb"
directory = "import"

[[routes]]
commune = "44043"
forms = ["demande-acte-*"]
connector = "clisson-etat-civil"
mapping = "demande-acte.toml"
"#,
    )
    .unwrap();
    std::fs::copy(
        root().join("mappings/etat-civil/demande-acte.toml"),
        dir.join("demande-acte.toml"),
    )
    .unwrap();
    config
}

/// The golden démarche `name` of tests/fixtures/etat-civil, changed by `change`, written
/// into `dir` as `sample.json`.
fn etat_civil_sample(
    dir: &std::path::Path,
    name: &str,
    change: impl FnOnce(&mut serde_json::Value),
) {
    let text =
        std::fs::read_to_string(root().join(format!("tests/fixtures/etat-civil/{name}.json")))
            .unwrap();
    let mut sample: serde_json::Value = serde_json::from_str(&text).unwrap();
    change(&mut sample);
    std::fs::write(dir.join("sample.json"), sample.to_string()).unwrap();
}

#[test]
fn with_the_connector_a_document_its_rules_refuse_is_refused_by_map() {
    let dir = tempfile::tempdir().unwrap();
    etat_civil_config(dir.path());
    // A copie intégrale of a birth act asked by a cousin: the mapping makes it, the
    // connector's legal rules refuse it.
    etat_civil_sample(dir.path(), "naissance-cpi-titulaire", |sample| {
        let fields = &mut sample["formdata"]["fields"];
        fields["qualite_demandeur"] = "Autre (héritier, généalogiste…)".into();
        fields["demandeur_nom"] = "Durand".into();
        fields["demandeur_prenoms"] = "Paul".into();
    });
    let args = ["--mapping", "demande-acte.toml", "sample.json"];
    // Without the connector, only the mapping runs: it succeeds.
    let (code, stdout, stderr) = map_in(dir.path(), &args);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("\"qualite_demandeur\": \"autre\""),
        "{stdout}"
    );
    let with_connector = [
        &args[..],
        &[
            "--config",
            "gateway.toml",
            "--connector",
            "clisson-etat-civil",
        ],
    ]
    .concat();
    let (code, stdout, stderr) = map_in(dir.path(), &with_connector);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stdout.contains("\"nature_document\": \"CPI\""),
        "the document is shown: {stdout}"
    );
    assert!(
        stderr.contains("connecteur `clisson-etat-civil` (etat-civil/cityweb) : document refusé : la règle légale `filiation-naissance` refuse la demande de copie intégrale d'un acte de naissance faite par `autre` (toute autre personne)"),
        "{stderr}"
    );
    // Nothing was delivered.
    assert_eq!(
        std::fs::read_dir(dir.path().join("import"))
            .unwrap()
            .count(),
        0
    );

    // The titulaire's own request passes the same checks.
    etat_civil_sample(dir.path(), "naissance-cpi-titulaire", |_| {});
    let (code, _, stderr) = map_in(dir.path(), &with_connector);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("document accepté"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("import"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn an_unknown_connector_or_a_connector_without_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    etat_civil_config(dir.path());
    etat_civil_sample(dir.path(), "naissance-cpi-titulaire", |_| {});
    let (code, stdout, stderr) = map_in(
        dir.path(),
        &[
            "--mapping",
            "demande-acte.toml",
            "sample.json",
            "--config",
            "gateway.toml",
            "--connector",
            "clisson-etat-civi",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("aucun connecteur ne s'appelle `clisson-etat-civi`"),
        "{stderr}"
    );
    let (code, _, stderr) = map_in(
        dir.path(),
        &[
            "--mapping",
            "demande-acte.toml",
            "sample.json",
            "--connector",
            "x",
        ],
    );
    assert_eq!(
        code, 2,
        "clap refuses --connector without --config: {stderr}"
    );
}

#[test]
fn a_requester_known_only_by_the_portal_account_is_mapped_from_it() {
    let dir = tempfile::tempdir().unwrap();
    etat_civil_config(dir.path());
    let with_connector = [
        "--mapping",
        "demande-acte.toml",
        "sample.json",
        "--config",
        "gateway.toml",
        "--connector",
        "clisson-etat-civil",
    ];
    // The mother asks; the form asks only for the relationship: the identity is the
    // account's, as w.c.s. exports it for a form (`user.name`, no profile fields).
    etat_civil_sample(dir.path(), "mariage-extaf-parent", |sample| {
        let fields = sample["formdata"]["fields"].as_object_mut().unwrap();
        fields.retain(|key, _| !key.starts_with("demandeur_"));
    });
    let (code, stdout, stderr) = map_in(dir.path(), &with_connector);
    assert_eq!(code, 0, "{stderr}");
    let document: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        document["demandeur"],
        serde_json::json!({"qualite_demandeur": "mere", "individu": {"nom": "FRANÇOISE LEROY"}})
    );

    // With the profile's fields (a card's export, or a portal that adds them), they are used.
    etat_civil_sample(dir.path(), "mariage-extaf-parent", |sample| {
        let fields = sample["formdata"]["fields"].as_object_mut().unwrap();
        fields.retain(|key, _| !key.starts_with("demandeur_"));
        sample["formdata"]["user"]["first_name"] = "Françoise".into();
        sample["formdata"]["user"]["last_name"] = "Leroy".into();
    });
    let (code, stdout, stderr) = map_in(dir.path(), &with_connector);
    assert_eq!(code, 0, "{stderr}");
    let document: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        document["demandeur"]["individu"],
        serde_json::json!({"nom": "LEROY", "prenoms": "Françoise"})
    );

    // Typed in at the counter by an agent, for someone without an account: no `user`.
    etat_civil_sample(dir.path(), "mariage-extaf-parent", |sample| {
        let fields = sample["formdata"]["fields"].as_object_mut().unwrap();
        fields.retain(|key, _| !key.starts_with("demandeur_"));
        let formdata = sample["formdata"].as_object_mut().unwrap();
        formdata.remove("user");
        formdata.insert(
            "submission".into(),
            serde_json::json!({"channel": "counter", "backoffice": true}),
        );
    });
    let (code, stdout, stderr) = map_in(dir.path(), &with_connector);
    assert_eq!(code, 1, "{stderr}");
    let document: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        document["demandeur"],
        serde_json::json!({"qualite_demandeur": "mere"})
    );
    assert!(
        stderr.contains("champ `demandeur.individu.nom` : manquant : le demandeur n'est pas la personne concernée")
            && stderr.contains("remplir `demandeur.individu.nom` dans le mapping"),
        "{stderr}"
    );
}
