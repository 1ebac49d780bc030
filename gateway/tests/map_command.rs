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
        "mapping m.toml: field `nature`: `Copie` is not in code table `nature` (known: Copie intégrale): add it to [tables.nature]"
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
        stderr.starts_with("m.toml:8: field `nom`: template error"),
        "{stderr}"
    );
}
