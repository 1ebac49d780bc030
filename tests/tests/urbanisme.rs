//! The urbanisme connector end to end, on the real RabbitMQ: w.c.s.-shaped deposits go
//! through the shipped mapping and the `urbanisme/dossier` connector to a simulated
//! instruction service (service ADS), which checks each package as an importer would
//! (manifest hashes, required pièces, parcels) and registers it:
//!
//! - over SFTP to a real OpenSSH server: one package per dossier, registered once, even
//!   when the portal publishes a deposit again, concurrently or later; the `delivered` event carries the AEE's
//!   data (the dossier identifier and the deposit date);
//! - a deposit without its plan de situation is refused with the pièce named and
//!   dead-lettered, and nothing reaches the service;
//! - by e-mail to a real SMTP server (STARTTLS, AUTH): one message per dossier (published
//!   twice at once), the package attached with its SHA-512 in the text, or, over the
//!   attachment limit, dropped in the directory (the same bytes) with a mail saying where.

#[path = "../../connectors/file-drop/tests/common/sshd.rs"]
mod sshd;

use std::path::{Path, PathBuf};
use std::time::Duration;

use aiguillage_tests::ads_sim::{is_registration_number, AdsSim, STATE_DIR};
use aiguillage_tests::smtp::{ReceivedMail, SmtpServer};
use aiguillage_tests::{
    count_status, golden_envelope, header_text, workspace, Scenario, StatusEvents, StoreKind,
};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};
use sshd::Sshd;

fn mapping() -> PathBuf {
    workspace().join("mappings/urbanisme/depot.toml")
}

const DP: &str = "dp-sci-ravalement";
const PCMI: &str = "pcmi-maison-couple";

/// A w.c.s. deposit of tests/fixtures/urbanisme, with an id unique to the test.
fn fixture(name: &str, prefix: &str) -> Value {
    golden_envelope("urbanisme", name, prefix)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The dossier identifier the contract gives an envelope (docs/connectors/urbanisme.md):
/// `{commune}-{type_dossier}-{12 hex of SHA-256(envelope id)}`, computed here, not asked
/// of the connector.
fn dossier_of(envelope: &Value, type_dossier: &str) -> String {
    let id = envelope["id"].as_str().unwrap();
    format!(
        "{}-{type_dossier}-{}",
        envelope["commune"].as_str().unwrap(),
        &hex(&Sha256::digest(id.as_bytes()))[..12]
    )
}

/// A JSON object as a TOML inline table (the harnesses describe their tables in JSON; a
/// JSON string, number or boolean is written the same in TOML).
fn toml_inline(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let pairs: Vec<String> = map
                .iter()
                .map(|(key, value)| format!("{key} = {}", toml_inline(value)))
                .collect();
            format!("{{ {} }}", pairs.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml_inline).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// Routes the deposit forms of Clisson (44043) to `connector` through the shipped mapping.
fn route(scenario: &mut Scenario, connector: &str) {
    scenario.route_with_mapping("44043", &["depot-*"], connector, &mapping());
}

/// Checks every `delivered` event: its reference is the dossier of its envelope and its
/// details are the AEE's data (the dossier and the deposit date, the envelope's
/// `submitted_at`). `expected` maps an envelope to its dossier.
fn check_delivered(events: &StatusEvents, expected: &[(&Value, &str)]) {
    let delivered = events.with_status("delivered");
    for event in &delivered {
        let (envelope, dossier) = expected
            .iter()
            .find(|(envelope, _)| envelope["id"] == event["id"])
            .unwrap_or_else(|| panic!("a delivered event for an unknown envelope: {event:#}"));
        assert_eq!(event["reference"], *dossier, "{event:#}");
        assert_eq!(event["details"]["dossier"], event["reference"], "{event:#}");
        assert_eq!(
            event["details"]["date_depot"], envelope["submitted_at"],
            "{event:#}"
        );
    }
    for (envelope, dossier) in expected {
        assert!(
            delivered.iter().any(|event| event["id"] == envelope["id"]),
            "no delivered event for {dossier}: {delivered:#?}"
        );
    }
}

/// The files named `name` in `dir` and in the simulator's `.ads-sim/traites/` of `dir`
/// (where it moves a package once answered, as `<nanos>-<name>`).
fn copies_of(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy() == name)
        .map(|entry| entry.path())
        .collect();
    let traites = dir.join(STATE_DIR).join("traites");
    if let Ok(entries) = std::fs::read_dir(traites) {
        found.extend(
            entries
                .flatten()
                .filter(|entry| {
                    entry
                        .file_name()
                        .to_string_lossy()
                        .split_once('-')
                        .is_some_and(|(_, rest)| rest == name)
                })
                .map(|entry| entry.path()),
        );
    }
    found
}

/// The zip packages waiting in `dir` (not yet taken by the simulator).
fn zips_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".zip"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_reach_the_instruction_service_over_sftp_once_each_with_the_aee_data() {
    let sshd = Sshd::start();
    let drop = sshd.drop_dir();
    let sim = AdsSim::start(&drop, None);
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    scenario.connector(
        "ads-sftp",
        "urbanisme/dossier",
        &format!(
            "directory = {}\nsftp = {}",
            serde_json::json!(drop.display().to_string()),
            toml_inline(&sshd.sftp_table(&sshd.known_hosts()))
        ),
    );
    route(&mut scenario, "ads-sftp");
    let (mut events, running) = scenario.launch().await;

    let dp = fixture(DP, &scenario.prefix);
    let pcmi = fixture(PCMI, &scenario.prefix);
    let dp_dossier = dossier_of(&dp, "DP");
    let pcmi_dossier = dossier_of(&pcmi, "PCMI");
    // The DP three times, as a portal may publish it again: twice in one batch (the
    // connector takes both concurrently, before the store records either), once in a
    // later publication. Each message gets its `delivered` event, the dossier one package.
    scenario
        .publish(&[dp.clone(), pcmi.clone(), dp.clone()])
        .await;
    scenario.publish(std::slice::from_ref(&dp)).await;

    let seen = events
        .wait_until(Duration::from_secs(20), |seen| {
            count_status(seen, "delivered") >= 4
        })
        .await;
    assert_eq!(
        count_status(seen, "delivered"),
        4,
        "{seen:#?}\n{}",
        sshd.log()
    );
    check_delivered(&events, &[(&dp, &dp_dossier), (&pcmi, &pcmi_dossier)]);

    let answers = sim.wait_for(2, Duration::from_secs(15)).await;
    // Let a second package of the same dossier show itself before counting.
    events.settle(Duration::from_millis(1500)).await;
    assert_eq!(
        count_status(events.settle(Duration::ZERO).await, "delivered"),
        4
    );
    assert!(sim.rejected().is_empty(), "{answers:#?}");
    assert_eq!(
        sim.duplicates(),
        0,
        "a dossier reached the service twice: {:#?}",
        sim.answers()
    );
    assert_eq!(sim.received(), 2, "{:#?}", sim.answers());
    for (dossier, series) in [
        (&dp_dossier, "DP 044 043 26 "),
        (&pcmi_dossier, "PC 044 043 26 "),
    ] {
        let accepted = sim
            .accepted()
            .into_iter()
            .find(|answer| &answer.dossier == dossier)
            .unwrap_or_else(|| panic!("{dossier} not registered: {:#?}", sim.answers()));
        assert_eq!(accepted.source, format!("inbox/{dossier}.zip"));
        let numero = accepted.numero.unwrap();
        assert!(
            is_registration_number(&numero) && numero.starts_with(series),
            "{numero}"
        );
        let answer = sim.answer_file(dossier).expect("the ACCEPTE_ answer");
        assert_eq!(answer["numero_enregistrement"], numero.as_str());
        assert_eq!(answer["dossier"], dossier.as_str());
        // One zip per dossier, whether still in the drop directory or taken in.
        let copies = copies_of(&drop, &format!("{dossier}.zip"));
        assert_eq!(copies.len(), 1, "{copies:?}");
    }
    assert!(zips_in(&drop).is_empty(), "{:?}", zips_in(&drop));

    scenario.finish(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_without_its_plan_de_situation_is_dead_lettered_with_the_piece_named() {
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    let inbox = scenario.subdir("ads/depots");
    let sim = AdsSim::start(&inbox, None);
    scenario.connector(
        "ads-local",
        "urbanisme/dossier",
        &format!(
            "directory = {}",
            serde_json::json!(inbox.display().to_string())
        ),
    );
    route(&mut scenario, "ads-local");
    let (mut events, running) = scenario.launch().await;

    // The citizen's plan de situation never came: the form's file field is empty, so the
    // mapping leaves DP1 out of the pièces and of the attachments.
    let mut deposit = fixture(DP, &scenario.prefix);
    deposit["formdata"]["fields"]["dp1"] = Value::Null;
    scenario.publish(std::slice::from_ref(&deposit)).await;

    let reason = events.only_rejection(Duration::from_secs(20)).await;
    assert!(
        reason.contains("DP1 (Plan de situation du terrain)"),
        "{reason}"
    );
    let (dead, headers) = scenario.dead_letter("ads-local").await;
    assert_eq!(dead, deposit, "the dead letter is the original deposit");
    assert_eq!(header_text(&headers, "x-aiguillage-reason"), reason);

    // Nothing reached the instruction service.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sim.received(), 0, "{:#?}", sim.answers());
    let visible: Vec<String> = std::fs::read_dir(&inbox)
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.') && name != "reponses")
        .collect();
    assert!(visible.is_empty(), "{visible:?}");
    assert_eq!(
        std::fs::read_dir(&sim.reponses).unwrap().count(),
        0,
        "no answer without a package"
    );

    scenario.finish(running).await;
}

/// A scenario whose connector `ads-mail` mails dossiers to `server`, dropping those over
/// `attach_max_bytes` into `directory`.
fn mail_connector(
    scenario: &mut Scenario,
    server: &SmtpServer,
    directory: &Path,
    attach_max_bytes: u64,
) {
    let mut mail = server.mail_table();
    mail["security"] = "starttls".into();
    mail["from"] = "Aiguillage <aiguillage@agglo.example>".into();
    mail["to"] = "ads@agglo.example".into();
    mail["attach_max_bytes"] = attach_max_bytes.into();
    scenario.connector(
        "ads-mail",
        "urbanisme/dossier",
        &format!(
            "directory = {}\nmail = {}",
            serde_json::json!(directory.display().to_string()),
            toml_inline(&mail)
        ),
    );
    route(scenario, "ads-mail");
}

/// Publishes `deposit` twice and waits until both are answered and the connector is quiet;
/// every message the server received.
async fn deliver_twice(
    scenario: &Scenario,
    events: &mut StatusEvents,
    deposit: &Value,
    dossier: &str,
    server: &SmtpServer,
) -> Vec<ReceivedMail> {
    scenario.publish(&[deposit.clone(), deposit.clone()]).await;
    let seen = events
        .wait_until(Duration::from_secs(20), |seen| {
            count_status(seen, "delivered") >= 2
        })
        .await;
    assert_eq!(
        count_status(seen, "delivered"),
        2,
        "{seen:#?}\n{}",
        server.log()
    );
    check_delivered(events, &[(deposit, dossier)]);
    // A second message would come now.
    events.settle(Duration::from_millis(1500)).await;
    assert_eq!(events.with_status("delivered").len(), 2);
    // The copy delivered at the same moment waited for the first one's mail instead of
    // failing: no retry, and so no `retrying` event for the portal.
    assert!(
        events.with_status("retrying").is_empty(),
        "{:#?}",
        events.with_status("retrying")
    );
    server.messages().unwrap()
}

/// The common parts of the one message a dossier gives.
fn check_message(mail: &ReceivedMail, dossier: &str) {
    assert_eq!(
        mail.message_id.as_deref(),
        Some(format!("{dossier}@aiguillage").as_str())
    );
    let subject = mail.subject.as_deref().unwrap_or_default();
    assert!(subject.contains(dossier), "{subject}");
    assert_eq!(mail.from.as_deref(), Some("aiguillage@agglo.example"));
    assert_eq!(mail.to, ["ads@agglo.example"]);
}

/// Checks a zip package's manifest against its entries (the simulator checks it too; this
/// says what is wrong if it does not).
fn check_manifest(zip: &[u8], dossier: &str) {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a zip");
    let mut entries = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        entries.push((entry.name().to_owned(), bytes));
    }
    let (last, manifest) = entries.pop().unwrap();
    assert_eq!(last, "manifest.json");
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["dossier"], dossier);
    let listed = manifest["fichiers"].as_array().unwrap();
    assert_eq!(listed.len(), entries.len(), "{manifest:#}");
    for ((name, bytes), fichier) in entries.iter().zip(listed) {
        assert_eq!(fichier["chemin"], name.as_str());
        assert_eq!(fichier["taille"], bytes.len());
        assert_eq!(fichier["sha512"], hex(&Sha512::digest(bytes)).as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_is_mailed_once_with_its_package_attached_or_dropped_when_too_large() {
    // Attached: the limit is the default, 10 MiB.
    let server = SmtpServer::start().expect("the SMTP test server");
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    let directory = scenario.subdir("ads/depots");
    mail_connector(&mut scenario, &server, &directory, 10 * 1024 * 1024);
    let (mut events, running) = scenario.launch().await;
    let deposit = fixture(DP, &scenario.prefix);
    let dossier = dossier_of(&deposit, "DP");

    let messages = deliver_twice(&scenario, &mut events, &deposit, &dossier, &server).await;
    assert_eq!(messages.len(), 1, "one e-mail per dossier: {messages:#?}");
    let mail = &messages[0];
    check_message(mail, &dossier);
    let zips: Vec<_> = mail
        .attachments
        .iter()
        .filter(|a| a.file_name.as_deref() == Some(&format!("{dossier}.zip")))
        .collect();
    assert_eq!(zips.len(), 1, "{:?}", mail.attachments);
    let attached = zips[0].bytes.clone();
    // The mail states the package's SHA-512, for the agent to check what they import.
    let text = mail.text.as_deref().unwrap_or_default();
    let digest = hex(&Sha512::digest(&attached));
    assert!(
        text.contains(&format!(
            "{dossier}.zip ({} octets, SHA-512 {digest})",
            attached.len()
        )),
        "the mail gives the attachment's size and SHA-512 ({digest}): {text}"
    );
    check_manifest(&attached, &dossier);
    assert!(zips_in(&directory).is_empty(), "attached, not dropped");
    // The instruction service reads its mailbox: it registers the attached package. (Started
    // only now: it moves each message it answered out of the spool that `messages` reads.)
    let sim = AdsSim::start(&directory, Some(&server.spool()));
    let answers = sim.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert!(answers[0].accepted && !answers[0].duplicate, "{answers:#?}");
    assert!(answers[0].source.starts_with("mail/"), "{answers:#?}");
    assert_eq!(answers[0].dossier, dossier);
    assert!(is_registration_number(
        answers[0].numero.as_deref().unwrap()
    ));
    scenario.finish(running).await;
    drop(sim);

    // Dropped: the same envelope, to a connector whose attachment limit (1,000 bytes) is
    // below the package's size.
    let large = SmtpServer::start().expect("the SMTP test server");
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    let directory = scenario.subdir("ads/depots");
    mail_connector(&mut scenario, &large, &directory, 1000);
    let (mut events, running) = scenario.launch().await;

    let messages = deliver_twice(&scenario, &mut events, &deposit, &dossier, &large).await;
    assert_eq!(messages.len(), 1, "one e-mail per dossier: {messages:#?}");
    let mail = &messages[0];
    check_message(mail, &dossier);
    assert!(
        !mail.attachments.iter().any(|a| a
            .file_name
            .as_deref()
            .is_some_and(|name| name.ends_with(".zip"))
            || a.media_type.as_deref() == Some("application/zip")),
        "{:?}",
        mail.attachments
    );
    let text = mail.text.as_deref().unwrap_or_default();
    assert!(text.contains(&dossier), "{text}");
    assert!(
        text.contains(&directory.display().to_string()),
        "the mail says where the package is ({}): {text}",
        directory.display()
    );
    let dropped = directory.join(format!("{dossier}.zip"));
    let bytes = std::fs::read(&dropped).expect("the package dropped in the directory");
    // The same envelope gives the same bytes, attached or dropped.
    assert_eq!(
        hex(&Sha512::digest(&bytes)),
        hex(&Sha512::digest(&attached))
    );
    assert!(bytes.len() > 1000);
    // The service registers the dropped package and sets the summary mail aside.
    let sim = AdsSim::start(&directory, Some(&large.spool()));
    sim.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let answers = sim.answers();
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert!(answers[0].accepted && !answers[0].duplicate, "{answers:#?}");
    assert_eq!(answers[0].source, format!("inbox/{dossier}.zip"));
    assert_eq!(
        sim.ignored().len(),
        1,
        "the summary mail: {:?}",
        sim.ignored()
    );
    scenario.finish(running).await;
}
