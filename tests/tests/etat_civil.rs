//! The état-civil connector end to end, on the real RabbitMQ: w.c.s.-shaped demandes d'acte
//! go through the shipped mapping and the `etat-civil/cityweb` connector into the import
//! directory of a simulated Cityweb software, which validates each file against the schema;
//! a request that the law refuses is dead-lettered with the rule named; a gateway killed
//! while writing leaves no partial file for the importer.

use std::path::PathBuf;
use std::time::Duration;

use aiguillage_tests::cityweb_sim::CitywebSim;
use aiguillage_tests::{
    count_status, gateway_bin, golden_envelope, golden_envelopes, header_text, workspace, Scenario,
    StoreKind,
};
use serde_json::Value;

fn mapping() -> PathBuf {
    workspace().join("mappings/etat-civil/demande-acte.toml")
}

/// A golden w.c.s. démarche of tests/fixtures/etat-civil, with an id unique to the test.
fn fixture(name: &str, prefix: &str) -> Value {
    golden_envelope("etat-civil", name, prefix)
}

fn cityweb(scenario: &mut Scenario, import: &std::path::Path, extra: &str) {
    scenario
        .connector(
            "clisson-cityweb",
            "etat-civil/cityweb",
            &format!(
                "directory = {}\n{extra}",
                serde_json::json!(import.display().to_string())
            ),
        )
        .route_with_mapping("44043", &["demande-acte-*"], "clisson-cityweb", &mapping());
}

const GOLDEN: [&str; 4] = [
    "naissance-cpi-titulaire",
    "naissance-annee-seule",
    "mariage-extaf-parent",
    "deces-cpi-notaire",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demandes_d_acte_reach_the_software_s_done_folder_through_the_shipped_mapping() {
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    let import = scenario.subdir("cityweb/import");
    let sim = CitywebSim::start(&import, &scenario.subdir("cityweb"));
    cityweb(&mut scenario, &import, "");
    let (mut events, running) = scenario.launch().await;

    let demarches = golden_envelopes("etat-civil", &GOLDEN, &scenario.prefix);
    scenario.publish_first_twice(&demarches).await;

    let seen = events
        .wait_until(Duration::from_secs(60), |seen| {
            count_status(seen, "delivered") >= 4
        })
        .await;
    assert_eq!(count_status(seen, "delivered"), 4, "{seen:#?}");
    let imported = sim.wait_for(4, Duration::from_secs(30)).await;
    assert_eq!(imported.len(), 4, "{imported:#?}");
    for file in &imported {
        assert!(
            file.accepted,
            "the software refused {}: {}",
            file.file, file.error
        );
    }
    let done = sim.done_files();
    let events_dirs: Vec<&str> = done.iter().map(|f| f.split('/').next().unwrap()).collect();
    assert_eq!(
        events_dirs.iter().filter(|d| **d == "NAI").count(),
        2,
        "{done:?}"
    );
    assert!(
        events_dirs.contains(&"MAR") && events_dirs.contains(&"DEC"),
        "{done:?}"
    );
    // Each status event names its file, which the software imported.
    for (_, event) in events.with_status("delivered").iter().map(|e| ((), e)) {
        let reference = event["reference"].as_str().unwrap();
        assert!(
            done.iter().any(|f| f == reference),
            "{reference} not in {done:?}"
        );
    }
    // The duplicate did not reach the software again.
    events.settle(Duration::from_millis(500)).await;
    assert_eq!(sim.imported().len(), 4);
    assert!(sim.error_files().is_empty());
    let log = std::fs::read_to_string(&sim.log_file).unwrap();
    assert_eq!(
        log.lines().filter(|l| l.contains(" done ")).count(),
        4,
        "{log}"
    );

    // The birth with only a year: the file holds the period of that year.
    let annee = done
        .iter()
        .find(|f| f.contains("naissance_151"))
        .expect("the 1923 birth");
    let xml = std::fs::read_to_string(sim.done.join(annee)).unwrap();
    assert!(xml.contains("<dateDebut>1923-01-01</dateDebut>"), "{xml}");
    assert!(xml.contains("<dateFin>1923-12-31</dateFin>"), "{xml}");
    assert!(
        xml.contains("<qualiteDemandeur>petit-enfant</qualiteDemandeur>"),
        "{xml}"
    );

    scenario.finish(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copie_integrale_asked_by_a_cousin_is_dead_lettered_with_the_rule_named() {
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    let import = scenario.subdir("cityweb/import");
    let sim = CitywebSim::start(&import, &scenario.subdir("cityweb"));
    cityweb(&mut scenario, &import, "");
    let (mut events, running) = scenario.launch().await;

    // Camille's cousin asks for her full birth certificate ("Autre" on the form).
    let mut demarche = fixture("naissance-cpi-titulaire", &scenario.prefix);
    let fields = &mut demarche["formdata"]["fields"];
    fields["qualite_demandeur"] = "Autre (héritier, généalogiste…)".into();
    fields["qualite_demandeur_raw"] = "autre".into();
    fields["demandeur_civilite"] = "Monsieur".into();
    fields["demandeur_nom"] = "Lebrun".into();
    fields["demandeur_prenoms"] = "Kévin".into();
    scenario.publish(std::slice::from_ref(&demarche)).await;

    let seen = events
        .wait_until(Duration::from_secs(60), |seen| !seen.is_empty())
        .await;
    assert_eq!(seen[0].1["status"], "rejected", "{seen:#?}");
    let reason = seen[0].1["error"].as_str().unwrap().to_owned();
    assert!(
        reason.starts_with("la règle légale `filiation-naissance` refuse la demande de copie intégrale d'un acte de naissance faite par `autre` (toute autre personne) : "),
        "{reason}"
    );
    let (dead, headers) = scenario.dead_letter("clisson-cityweb").await;
    assert_eq!(dead, demarche, "the dead letter is the original démarche");
    assert_eq!(header_text(&headers, "x-aiguillage-reason"), reason);

    // Nothing reached the software.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sim.imported().is_empty());
    assert!(std::fs::read_dir(&import).unwrap().next().is_none());

    scenario.finish(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_while_writing_leaves_no_partial_file_for_the_importer() {
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    let import = scenario.subdir("cityweb/import");
    let sim = CitywebSim::start(&import, &scenario.subdir("cityweb"));
    cityweb(
        &mut scenario,
        &import,
        "concurrency = 8\nretry = { initial = \"200ms\", max_delay = \"1s\" }",
    );
    let queue = scenario.bus().connector_queue("clisson-cityweb");

    let spawn = |round: u32| scenario.spawn_gateway(gateway_bin!(), &["run"], round);
    let mut gateway = spawn(1);
    let connection = scenario.connection().await;
    for _ in 0..300 {
        let channel = connection.create_channel().await.unwrap();
        if aiguillage_bus::topology::queue_depth(&channel, &queue)
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 1,000 births of distinct envelopes, killed with SIGKILL once some are in.
    let total = 1000;
    let base = fixture("naissance-cpi-titulaire", &scenario.prefix);
    let demarches: Vec<Value> = (0..total)
        .map(|n| {
            let mut demarche = base.clone();
            demarche["id"] = Value::String(format!("{}:{n}", base["id"].as_str().unwrap()));
            demarche
        })
        .collect();
    let written = |import: &std::path::Path| -> usize {
        std::fs::read_dir(import.join("NAI"))
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0)
    };
    // The gateway consumes while the démarches are being published: watch the directory
    // meanwhile, and kill it as soon as files come in.
    let watch = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while written(&import) + sim.imported().len() < 30 && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        gateway.kill().await.expect("SIGKILL the gateway");
    };
    tokio::join!(scenario.publish(&demarches), watch);
    let at_kill = written(&import) + sim.imported().len();
    assert!(
        (30..total).contains(&at_kill),
        "killed in the middle ({at_kill} written)"
    );

    // Whatever the kill interrupted, the importer only ever saw whole, valid files.
    let mut gateway = spawn(2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let distinct = |imported: &[aiguillage_tests::cityweb_sim::Imported]| {
        let mut names: Vec<_> = imported.iter().map(|f| f.file.clone()).collect();
        names.sort();
        names.dedup();
        names.len()
    };
    while distinct(&sim.imported()) < total && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let a late redelivery show itself before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    gateway.kill().await.ok();
    let imported = sim.imported();
    let rejected: Vec<_> = imported.iter().filter(|f| !f.accepted).collect();
    assert!(
        rejected.is_empty(),
        "partial or invalid files were imported: {rejected:#?}"
    );
    if distinct(&imported) != total {
        let store = aiguillage_gateway::store::Store::open(
            &format!(
                "sqlite://{}",
                scenario.dir.path().join("store.db").display()
            ),
            1,
        )
        .await
        .unwrap();
        let mut counts = Vec::new();
        for status in [
            aiguillage_bus::Status::Delivered,
            aiguillage_bus::Status::Retrying,
            aiguillage_bus::Status::Rejected,
            aiguillage_bus::Status::Dead,
        ] {
            counts.push((
                status,
                store.count("clisson-cityweb", status).await.unwrap(),
            ));
        }
        let dead = scenario.bus().dead_queue("clisson-cityweb");
        panic!(
            "{} of {total} démarches reached the software; store: {counts:?}; queue {}, dead letters {}; import dir {:?}",
            distinct(&imported),
            scenario.queue_depth(&queue).await,
            scenario.queue_depth(&dead).await,
            std::fs::read_dir(&import).unwrap().flatten().map(|e| e.file_name()).collect::<Vec<_>>()
        );
    }
    // The connector's journal keeps a redelivered démarche whose file the software already
    // took from being written again; only a kill between the file's publication and its
    // journal entry (the directory's fsync) lets one through (docs/connectors/etat-civil.md):
    // at most the deliveries in flight (concurrency 8), in practice 0 or 1.
    let again = imported.len() - total;
    assert!(again <= 8, "{again} files imported twice");
    eprintln!(
        "killed after {at_kill} files: {} imports, {again} of them a second time",
        imported.len()
    );
    let _ = connection.close(200, "done".into()).await;
    scenario.cleanup().await;
}
