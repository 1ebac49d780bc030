//! The facturation connector end to end, on the real RabbitMQ: w.c.s.-shaped bills go
//! through the shipped mapping and the `facturation/pes` connector, with the gateway's
//! store numbering, into a finance software's import directory; every file validates
//! against the PES V2 schema, carries its own bordereau number and is accepted by the
//! finance-software simulator (`aiguillage_tests::pes_sim`); a démarche published twice
//! gives one titre; a bill of zero or less is dead-lettered with the Treasury's reason.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aiguillage_tests::pes_sim::PesSim;
use aiguillage_tests::xmllint::{self, Schema};
use aiguillage_tests::{
    count_status, golden_envelope, golden_envelopes, header_text, workspace, Scenario,
    StatusEvents, StoreKind,
};
use serde_json::Value;

/// A SIRET whose key checks (fictitious).
const SIRET: &str = "21440043800005";

fn mapping() -> PathBuf {
    workspace().join("mappings/facturation/titre-recette.toml")
}

/// A golden w.c.s. démarche of tests/fixtures/facturation, with an id unique to the test.
fn fixture(name: &str, prefix: &str) -> Value {
    golden_envelope("facturation", name, prefix)
}

fn finances(scenario: &mut Scenario, import: &Path) {
    finances_with(scenario, import, "pj_attachment = \"facture\"");
}

/// The finance connector with `keys` added to its configuration.
fn finances_with(scenario: &mut Scenario, import: &Path, keys: &str) {
    scenario
        .connector(
            "clisson-finances",
            "facturation/pes",
            &format!(
                "directory = {}\nid_coll = \"{SIRET}\"\ncod_col = \"043\"\ncod_bud = \"00\"\nid_post = \"044012\"\nlibelle = \"COMMUNE DE CLISSON\"\n{keys}",
                serde_json::json!(import.display().to_string())
            ),
        )
        .route_with_mapping(
            "44043",
            &["carte-acces-dechetterie", "inscription-cantine", "piscine-cartes-entrees"],
            "clisson-finances",
            &mapping(),
        );
}

/// The PES files in `import` (hidden temporary files and the simulator's answers left
/// out), sorted.
fn pes_files(import: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(import)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            p.is_file()
                && !name.starts_with('.')
                && !name.starts_with("ACK_")
                && !name.starts_with("NACK_")
        })
        .collect();
    out.sort();
    out
}

fn value_of(xml: &str, name: &str) -> String {
    let open = format!("<{name} V=\"");
    let at = xml.find(&open).unwrap_or_else(|| panic!("{name} in {xml}")) + open.len();
    xml[at..at + xml[at..].find('"').unwrap()].to_owned()
}

/// How many bills the two-instance tests publish.
const BILLS: usize = 40;

/// Publishes [`BILLS`] bills (the golden ones in turn, each with an id of its own) to
/// gateways already running, then half of them again, so that redeliveries race with the
/// first deliveries; waits until every one was delivered.
async fn publish_racing_bills(scenario: &Scenario, events: &mut StatusEvents) {
    let demarches: Vec<Value> = (0..BILLS)
        .map(|n| {
            let mut envelope = fixture(GOLDEN[n % GOLDEN.len()], &scenario.prefix);
            let id = format!("{}-{n}", envelope["id"].as_str().unwrap());
            envelope["id"] = Value::String(id);
            envelope
        })
        .collect();
    scenario.publish(&demarches).await;
    scenario.publish(&demarches[..BILLS / 2]).await;
    events
        .wait_until(Duration::from_secs(90), |seen| {
            seen.iter()
                .filter(|(_, e)| e["status"] == "delivered")
                .map(|(_, e)| e["id"].as_str().unwrap().to_owned())
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                >= BILLS
        })
        .await;
    events.settle(Duration::from_millis(500)).await;
}

/// A PES file's text (ISO-8859-1, one byte a character).
fn latin1_text(file: &Path) -> String {
    std::fs::read(file)
        .unwrap()
        .iter()
        .map(|&b| char::from(b))
        .collect()
}

const GOLDEN: [&str; 3] = [
    "cantine-trois-enfants",
    "dechetterie-carte",
    "piscine-cartes",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bills_reach_the_finance_import_as_valid_numbered_pes_files() {
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    let import = scenario.subdir("finances/pes");
    finances(&mut scenario, &import);
    let finance_software = PesSim::start(&import);
    let (mut events, running) = scenario.launch().await;

    let demarches = golden_envelopes("facturation", &GOLDEN, &scenario.prefix);
    scenario.publish_first_twice(&demarches).await;

    let seen = events
        .wait_until(Duration::from_secs(60), |seen| {
            count_status(seen, "delivered") >= 3
        })
        .await;
    assert!(count_status(seen, "delivered") >= 3, "{seen:#?}");
    events.settle(Duration::from_millis(500)).await;
    // The duplicate may be reported delivered too (it found its file): three démarches.
    let delivered: std::collections::BTreeSet<&str> = events
        .with_status("delivered")
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(delivered.len(), 3, "{delivered:?}");

    let files = pes_files(&import);
    assert_eq!(files.len(), 3, "one file per démarche: {files:?}");
    xmllint::assert_valid(Schema::PesAller, &files);
    let mut bordereaux = Vec::new();
    let mut total = 0u64;
    for file in &files {
        let xml = latin1_text(file);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"));
        assert_eq!(value_of(&xml, "IdColl"), SIRET);
        assert_eq!(value_of(&xml, "Exer"), "2026");
        bordereaux.push(value_of(&xml, "IdBord").parse::<u64>().unwrap());
        let amount = value_of(&xml, "MtBordHt").replace('.', "");
        total += amount.parse::<u64>().unwrap();
    }
    bordereaux.sort_unstable();
    assert_eq!(bordereaux, [1, 2, 3], "consecutive, never reused");
    // The finance software takes every file: schema, sums, counts and numbers as Hélios
    // checks them.
    let answers = finance_software.wait_for(3, Duration::from_secs(30)).await;
    assert_eq!(answers.len(), 3, "{answers:#?}");
    for answer in &answers {
        assert!(answer.accepted, "{answer:#?}");
        assert!(import.join(&answer.answer).is_file());
    }
    let mut acknowledged: Vec<u64> = answers
        .iter()
        .flat_map(|a| a.bordereaux.iter().map(|&(_, id_bord, _)| id_bord))
        .collect();
    acknowledged.sort_unstable();
    assert_eq!(acknowledged, [1, 2, 3]);
    // 109.75 + 8.00 + 69.00
    assert_eq!(total, 18675);
    // Each status event names exercice, bordereau and titre.
    for event in events.with_status("delivered") {
        let reference = event["reference"].as_str().unwrap();
        assert!(reference.starts_with("2026-B"), "{reference}");
    }

    scenario.finish(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bill_of_zero_or_less_is_dead_lettered_with_the_treasury_s_reason() {
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    let import = scenario.subdir("finances/pes");
    finances(&mut scenario, &import);
    let (mut events, running) = scenario.launch().await;

    let demarches: Vec<Value> = ["0.00", "-8.00"]
        .iter()
        .enumerate()
        .map(|(n, tarif)| {
            let mut demarche = fixture("dechetterie-carte", &scenario.prefix);
            demarche["id"] = Value::String(format!("{}-{n}", demarche["id"].as_str().unwrap()));
            demarche["formdata"]["fields"]["prestations"][0]["prestation_structured"]["tarif"] =
                (*tarif).into();
            demarche
        })
        .collect();
    scenario.publish(&demarches).await;

    let seen = events
        .wait_until(Duration::from_secs(60), |seen| seen.len() >= 2)
        .await;
    assert_eq!(seen.len(), 2, "{seen:#?}");
    let dead_queue = scenario.bus().dead_queue("clisson-finances");
    assert!(
        scenario
            .wait_for_depth(&dead_queue, 2, Duration::from_secs(10))
            .await
    );
    let dead = scenario.peek(&dead_queue).await;
    for (demarche, tarif) in demarches.iter().zip(["0.00", "-8.00"]) {
        let event = seen
            .iter()
            .map(|(_, event)| event)
            .find(|event| event["id"] == demarche["id"])
            .unwrap_or_else(|| panic!("no status event for {tarif}: {seen:#?}"));
        assert_eq!(event["status"], "rejected", "{event:#}");
        let reason = event["error"].as_str().unwrap().to_owned();
        assert!(
            reason.contains("lignes[0].montant_ht")
                && reason.contains(&format!("`{tarif}`"))
                && reason.contains("nul ou négatif"),
            "{reason}"
        );
        let (body, headers) = dead
            .iter()
            .find(|(body, _)| body["id"] == demarche["id"])
            .unwrap_or_else(|| panic!("{tarif} is not in the dead letters"));
        assert_eq!(body, demarche, "the dead letter is the original démarche");
        assert_eq!(header_text(headers, "x-aiguillage-reason"), reason);
    }
    assert!(pes_files(&import).is_empty());

    scenario.finish(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bill_with_its_pdf_reaches_the_finance_software_with_its_pes_pj() {
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    let import = scenario.subdir("finances/pes");
    finances(&mut scenario, &import);
    let finance_software = PesSim::start(&import);
    let (mut events, running) = scenario.launch().await;

    let with_pdf = fixture("cantine-avec-facture", &scenario.prefix);
    let with_png = fixture("cantine-facture-pas-pdf", &scenario.prefix);
    scenario
        .publish(&[with_pdf.clone(), with_png.clone()])
        .await;

    let seen = events
        .wait_until(Duration::from_secs(60), |seen| seen.len() >= 2)
        .await;
    let status = |id: &Value| {
        seen.iter()
            .map(|(_, event)| event)
            .find(|event| &event["id"] == id)
            .unwrap_or_else(|| panic!("no status event for {id}: {seen:#?}"))
            .clone()
    };
    assert_eq!(status(&with_pdf["id"])["status"], "delivered");
    let refused = status(&with_png["id"]);
    assert_eq!(refused["status"], "rejected");
    let reason = refused["error"].as_str().unwrap();
    assert!(
        reason.contains("champ fichier `facture`")
            && reason.contains("le type de contenu `image/png` n'est pas accepté"),
        "{reason}"
    );

    let files = pes_files(&import);
    assert_eq!(files.len(), 1, "{files:?}");
    let xml = latin1_text(&files[0]);
    assert!(xml.contains("<PES_PJ>") && xml.contains("<PJRef>"), "{xml}");
    assert_eq!(value_of(&xml, "NomPJ"), "facture-32-1207.pdf");
    let answers = finance_software.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(answers.len(), 1);
    assert!(answers[0].accepted, "{:#?}", answers[0]);

    scenario.finish(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateway_instances_on_postgresql_never_reuse_a_bordereau_number() {
    let mut scenario = Scenario::new(StoreKind::Postgres).await;
    let import = scenario.subdir("finances/pes");
    finances(&mut scenario, &import);
    let mut events = scenario.status_events().await;
    let first = scenario.start().await;
    let second = scenario.start().await;

    publish_racing_bills(&scenario, &mut events).await;

    let files = pes_files(&import);
    assert_eq!(files.len(), BILLS, "one file per démarche");
    let mut bordereaux: Vec<u64> = files
        .iter()
        .map(|file| {
            let xml = latin1_text(file);
            value_of(&xml, "IdBord").parse().unwrap()
        })
        .collect();
    bordereaux.sort_unstable();
    let expected: Vec<u64> = (1..=BILLS as u64).collect();
    assert_eq!(bordereaux, expected, "every number once, none reused");

    first.shutdown().await;
    second.shutdown().await;
    scenario.cleanup().await;
}

/// Grouped: the bus messages are acknowledged once the titres are held, and the
/// `delivered` events come when the bordereau holding them is written: one file of three
/// titres, accepted by the finance software.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_bills_make_one_bordereau_announced_when_written() {
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    let import = scenario.subdir("finances/pes");
    finances_with(&mut scenario, &import, "grouping = { titres = 3 }");
    let finance_software = PesSim::start(&import);
    let (mut events, running) = scenario.launch().await;

    let demarches: Vec<Value> = GOLDEN
        .iter()
        .map(|name| fixture(name, &scenario.prefix))
        .collect();
    scenario.publish(&demarches[..2]).await;
    // Two held: acknowledged, not announced, nothing written.
    let queue = scenario.bus().connector_queue("clisson-finances");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while scenario.queue_depth(&queue).await > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(pes_files(&import).is_empty());
    let early = events.settle(Duration::from_millis(200)).await.to_vec();
    assert!(early.is_empty(), "{early:#?}");

    scenario.publish(&demarches[2..]).await;
    let seen = events
        .wait_until(Duration::from_secs(30), |seen| {
            count_status(seen, "delivered") >= 3
        })
        .await;
    assert_eq!(count_status(seen, "delivered"), 3, "{seen:#?}");
    let mut references: Vec<String> = events
        .with_status("delivered")
        .iter()
        .map(|e| e["reference"].as_str().unwrap().to_owned())
        .collect();
    references.sort();
    assert_eq!(references, ["2026-B1-T1", "2026-B1-T2", "2026-B1-T3"]);
    let files = pes_files(&import);
    assert_eq!(files.len(), 1, "{files:?}");
    let xml = latin1_text(&files[0]);
    assert_eq!(value_of(&xml, "NbrPce"), "3");
    // 109.75 + 8.00 + 69.00
    assert_eq!(value_of(&xml, "MtBordHt"), "186.75");
    let answers = finance_software.wait_for(1, Duration::from_secs(30)).await;
    assert!(answers[0].accepted, "{answers:#?}");
    assert_eq!(answers[0].bordereaux, [(2026, 1, 3)]);

    scenario.finish(running).await;
}

/// Grouped, two instances on PostgreSQL, redeliveries racing: every titre in exactly one
/// bordereau, no bordereau number reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_grouping_instances_on_postgresql_put_each_titre_in_one_bordereau() {
    let mut scenario = Scenario::new(StoreKind::Postgres).await;
    let import = scenario.subdir("finances/pes");
    finances_with(&mut scenario, &import, "grouping = { titres = 4 }");
    let finance_software = PesSim::start(&import);
    let mut events = scenario.status_events().await;
    let first = scenario.start().await;
    let second = scenario.start().await;

    publish_racing_bills(&scenario, &mut events).await;

    let files = pes_files(&import);
    assert_eq!(files.len(), BILLS / 4, "{files:?}");
    let mut bordereaux = Vec::new();
    let mut titres = Vec::new();
    for file in &files {
        let xml = latin1_text(file);
        bordereaux.push(value_of(&xml, "IdBord").parse::<u64>().unwrap());
        titres.extend(aiguillage_tests::pes_sim::values_of(&xml, "IdPce"));
    }
    bordereaux.sort_unstable();
    assert_eq!(bordereaux, (1..=(BILLS / 4) as u64).collect::<Vec<_>>());
    let unique: std::collections::BTreeSet<&String> = titres.iter().collect();
    assert_eq!(
        (titres.len(), unique.len()),
        (BILLS, BILLS),
        "each titre once"
    );
    let answers = finance_software
        .wait_for(BILLS / 4, Duration::from_secs(30))
        .await;
    assert!(answers.iter().all(|a| a.accepted), "{answers:#?}");

    first.shutdown().await;
    second.shutdown().await;
    scenario.cleanup().await;
}
