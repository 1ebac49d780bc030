//! A mapping error on a démarche, end to end: dead-lettered with the field named; once the
//! mapping file is fixed (and the gateway restarted), a replay delivers it.

use std::time::Duration;

use aiguillage_tests::rest_target::RestTarget;
use aiguillage_tests::{count_status, envelope, header_text, Scenario, StoreKind};

const MAPPING: &str = r#"
[tables.nature_document]
"Extrait avec filiation" = "EXTAF"

[document]
identifiant = "{{ envelope.id }}"
nature_document = { template = "{{ fields.nature_document }}", table = "nature_document", required = true }
nom = "{{ fields.nom|upper }}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_error_is_dead_lettered_and_replayed_once_the_mapping_is_fixed() {
    let target = RestTarget::start().await;
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    let mapping = scenario.dir.path().join("demande-acte.toml");
    std::fs::write(&mapping, MAPPING).unwrap();
    scenario
        .rest("etat-civil", &target.url("accept/etat-civil"), "")
        .route_with_mapping("44043", &["demande-acte-*"], "etat-civil", &mapping);
    let (mut events, running) = scenario.launch().await;

    // The fixture asks for a "Copie intégrale", which the mapping's code table lacks.
    let demarche = envelope(&scenario.prefix, "44043", "demande-acte-naissance", 1);
    scenario.publish(std::slice::from_ref(&demarche)).await;
    let seen = events
        .wait_until(Duration::from_secs(30), |seen| !seen.is_empty())
        .await;
    assert_eq!(seen[0].1["status"], "rejected");
    let expected = format!(
        "mapping {} : champ `nature_document` : `Copie intégrale` n'est pas dans la table de codes `nature_document` (connus : Extrait avec filiation) : l'ajouter à [tables.nature_document]",
        mapping.display()
    );
    assert_eq!(seen[0].1["error"], expected.as_str());
    assert_eq!(target.total_requests(), 0, "nothing reached the software");
    let dead_queue = scenario.bus().dead_queue("etat-civil");
    let dead = scenario.peek(&dead_queue).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(header_text(&dead[0].1, "x-aiguillage-reason"), expected);

    // The agent fixes the mapping; the gateway reloads it at start.
    std::fs::write(
        &mapping,
        MAPPING.replace(
            "[tables.nature_document]\n",
            "[tables.nature_document]\n\"Copie intégrale\" = \"CPI\"\n",
        ),
    )
    .unwrap();
    running.shutdown().await;
    let running = scenario.start().await;
    let config = scenario.write_config();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_aiguillage-e2e"))
        .args([
            "dead",
            "replay",
            "--id",
            demarche["id"].as_str().unwrap(),
            "--config",
        ])
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let seen = events
        .wait_until(Duration::from_secs(30), |seen| {
            count_status(seen, "delivered") == 1
        })
        .await;
    assert_eq!(count_status(seen, "delivered"), 1);
    assert_eq!(target.effect_count(), 1);
    let document = &target.effects()[0].body;
    assert_eq!(
        document,
        &serde_json::json!({"identifiant": demarche["id"], "nature_document": "CPI", "nom": "DURAND"}),
        "the software received the mapped document, not the envelope"
    );
    assert_eq!(scenario.queue_depth(&dead_queue).await, 0);

    scenario.finish(running).await;
}
