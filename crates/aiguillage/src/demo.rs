// Over 600 lines: the demo's script, its fixtures and its output in one file, read top to bottom.
//! `aiguillage demo`: the gateway at work on this machine's RabbitMQ, in one command.
//!
//! It writes a real configuration file (two communes, four connectors: an état-civil
//! connector per commune writing Cityweb XML files through the shipped mapping, and a
//! billing API per commune served locally), starts the gateway in-process with an embedded
//! SQLite store, publishes démarches as the portal would (one of them twice, one that no
//! route takes, one that the billing software refuses), shows a Cityweb file it wrote,
//! turns the refusal into a dead letter, fixes its cause and replays it through the same
//! operator API as `aiguillage dead replay`. Its queues and exchanges carry the
//! `aiguillage-demo` prefix and are removed at the end, so it never touches a real
//! deployment on the same broker. What it prints is for a commune's agent: in French.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use futures_util::StreamExt;
use lapin::options::BasicAckOptions;
use serde_json::{json, Value};

use aiguillage_gateway::bus::topology;
use aiguillage_gateway::config::Config;
use aiguillage_gateway::operator::actions::{DeadQuery, Operator, ReplayRequest};
use aiguillage_gateway::registry::Registry;

const PREFIX: &str = "aiguillage-demo";
const CONNECTORS: [&str; 4] = [
    "clisson-etat-civil",
    "gorges-etat-civil",
    "clisson-famille",
    "gorges-famille",
];
/// The shipped mapping, copied next to the configuration so that the demo runs from
/// anywhere (an installed binary has no repository beside it).
const MAPPING: &str = include_str!("../../../mappings/etat-civil/demande-acte.toml");
const MAPPING_PATH: &str = "mappings/etat-civil/demande-acte.toml";
const NAISSANCE: &str =
    include_str!("../../../tests/fixtures/etat-civil/naissance-cpi-titulaire.json");
const MARIAGE: &str = include_str!("../../../tests/fixtures/etat-civil/mariage-extaf-parent.json");
const DECES: &str = include_str!("../../../tests/fixtures/etat-civil/deces-cpi-notaire.json");
/// The family the billing software of Gorges does not know until the demo creates it.
const UNKNOWN_FAMILY: &str = "Petit";

/// A billing API that honours `Idempotency-Key`, as the demo's "logiciel métier".
#[derive(Default)]
struct BillingApi {
    /// Idempotency key → the number it was given.
    accepted: Mutex<BTreeMap<String, String>>,
    requests: Mutex<usize>,
    /// The forms it billed, to show that only billing forms reach it.
    forms: Mutex<BTreeSet<String>>,
    /// `commune/family` pairs it does not know (it refuses to bill them).
    unknown: Mutex<BTreeSet<String>>,
}

async fn bill(
    State(api): State<Arc<BillingApi>>,
    UrlPath(commune): UrlPath<String>,
    headers: HeaderMap,
    Json(document): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"erreur": "en-tête Idempotency-Key manquant"})),
        );
    };
    if let Ok(mut requests) = api.requests.lock() {
        *requests += 1;
    }
    let fields = &document["formdata"]["fields"];
    let family = fields["enfant_nom"]
        .as_str()
        .or_else(|| fields["nom"].as_str())
        .unwrap_or_default();
    let unknown = api
        .unknown
        .lock()
        .map(|unknown| unknown.contains(&format!("{commune}/{family}")))
        .unwrap_or(false);
    if unknown {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "erreur": format!("famille {family} inconnue du logiciel de facturation : à créer avant de facturer")
            })),
        );
    }
    let Ok(mut accepted) = api.accepted.lock() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({})));
    };
    if let (Ok(mut forms), Some(form)) = (api.forms.lock(), document["form"].as_str()) {
        forms.insert(form.to_owned());
    }
    let next = accepted.len() + 1;
    let number = accepted
        .entry(key.to_owned())
        .or_insert_with(|| format!("{}-2026-{next:05}", commune.to_uppercase()))
        .clone();
    (StatusCode::CREATED, Json(json!({ "numero": number })))
}

fn demarche(id: u32, commune: &str, form: &str, fields: Value) -> Value {
    json!({
        "id": format!("demo-agglo:{form}:{id}"),
        "commune": commune,
        "form": form,
        "submitted_at": "2026-11-28T10:12:00+01:00",
        "formdata": {
            "id": id,
            "display_id": format!("{}-{id}", form.len()),
            "receipt_time": "2026-11-28T10:12:00+01:00",
            "url": format!("https://demarches.example.invalid/{form}/{id}/"),
            "user": {"id": 7, "name": "Camille Durand", "email": "camille.durand@example.invalid"},
            "fields": fields,
            "workflow": {"status": {"id": "1", "name": "Nouveau"}},
            "submission": {"channel": "web", "backoffice": false}
        }
    })
}

/// A demande d'acte as the portal exports it (the repository's samples), for `commune`.
fn demande_acte(sample: &str, id: u32, commune: &str, place: &str) -> Value {
    let mut value: Value = serde_json::from_str(sample).unwrap_or_else(|_| json!({}));
    let form = value["form"].as_str().unwrap_or_default().to_owned();
    value["id"] = json!(format!("demo-agglo:{form}:{id}"));
    value["commune"] = json!(commune);
    value["formdata"]["id"] = json!(id);
    value["formdata"]["display_id"] = json!(format!("{}-{id}", form.len()));
    value["formdata"]["fields"]["commune_evenement"] = json!(place);
    value
}

fn demarches() -> Vec<Value> {
    vec![
        demande_acte(NAISSANCE, 1001, "44043", "Clisson"),
        demande_acte(MARIAGE, 1002, "44043", "Clisson"),
        demarche(
            2001,
            "44043",
            "inscription-cantine",
            json!({
                "enfant_nom": "Durand", "enfant_prenom": "Léa", "ecole": "École du Val de Moine",
                "jours": ["lundi", "mardi", "jeudi", "vendredi"]
            }),
        ),
        demarche(
            2002,
            "44043",
            "carte-dechetterie",
            json!({
                "nom": "Bernard", "adresse": "3 rue de la Garenne, 44190 Clisson", "montant": "15,00"
            }),
        ),
        demarche(
            3001,
            "44064",
            "inscription-centre-loisirs",
            json!({
                "enfant_nom": UNKNOWN_FAMILY, "enfant_prenom": "Hugo", "semaines": ["2026-W52"]
            }),
        ),
        demande_acte(DECES, 3002, "44064", "Gorges"),
        demarche(
            4001,
            "44043",
            "permis-de-construire",
            json!({
                "parcelle": "AB 123", "surface_creee": "35"
            }),
        ),
    ]
}

/// The status of an event, for the agent (also in `aiguillage history` and `dead`).
pub(crate) fn status_fr(status: &str) -> &str {
    match status {
        "delivered" => "livrée",
        "rejected" => "refusée",
        "dead" => "abandonnée",
        "retrying" => "en attente d'un nouvel essai",
        "unrouted" => "sans route",
        other => other,
    }
}

/// Runs the demo against the broker at `amqp_url`, writing into `dir`.
///
/// # Errors
///
/// When the broker cannot be reached (with the command that starts it) or a démarche does
/// not arrive in time.
pub async fn run(amqp_url: &str, dir: &Path, registry: &Registry) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("impossible de créer {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("impossible de résoudre {}", dir.display()))?;
    let clisson_dir = dir.join("etat-civil-clisson");
    let gorges_dir = dir.join("etat-civil-gorges");
    for drop_dir in [&clisson_dir, &gorges_dir] {
        // A previous run's files would be shown as this run's.
        let _ = std::fs::remove_dir_all(drop_dir);
        std::fs::create_dir_all(drop_dir)
            .with_context(|| format!("impossible de créer {}", drop_dir.display()))?;
    }
    let mapping = dir.join(MAPPING_PATH);
    if let Some(parent) = mapping.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&mapping, MAPPING)
        .with_context(|| format!("impossible d'écrire {}", mapping.display()))?;
    let store_path = dir.join("aiguillage-demo.db");
    let _ = std::fs::remove_file(&store_path);

    // The local business software: a billing API for both communes.
    let api = Arc::new(BillingApi::default());
    if let Ok(mut unknown) = api.unknown.lock() {
        unknown.insert(format!("gorges/{UNKNOWN_FAMILY}"));
    }
    let app = Router::new()
        .route("/{commune}/factures", post(bill))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_addr: SocketAddr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let config_path = dir.join("aiguillage-demo.toml");
    std::fs::write(
        &config_path,
        demo_config(amqp_url, api_addr, &store_path, &clisson_dir, &gorges_dir),
    )?;
    let config =
        Config::load(&config_path, registry).map_err(|error| anyhow::anyhow!("{error}"))?;
    let bus_config = config.bus.clone();

    let connection = aiguillage_bus::publisher::connect(&bus_config, "aiguillage-demo").await.map_err(|error| {
        anyhow::anyhow!("{error}\nRabbitMQ est-il démarré ? Lancez-le avec `rabbitmq-server -detached` (ou donnez --amqp-url)")
    })?;
    let channel = connection.create_channel().await?;
    remove_topology(&channel, &bus_config).await;

    // Listen to status events before anything is published.
    aiguillage_bus::topology::declare_demarches_exchange(&channel, &bus_config).await?;
    let mut events =
        aiguillage_bus::topology::watch_status_events(&channel, &bus_config, "demo-status").await?;

    println!("Démonstration d'Aiguillage");
    println!("  configuration :        {}", config_path.display());
    println!("  bus RabbitMQ :         {}", bus_config.redacted_url());
    println!("  API de facturation :   http://{api_addr}/{{commune}}/factures");
    println!(
        "  état civil (Cityweb) : {} et {}",
        clisson_dir.display(),
        gorges_dir.display()
    );

    let mut running = aiguillage_gateway::service::start(config).await?;
    if !running.wait_ready(Duration::from_secs(20)).await {
        running.shutdown().await;
        bail!("la passerelle ne s'est pas connectée au bus en 20 s");
    }
    if let Some(admin) = running.admin_addr() {
        println!("  tableau de bord :      http://{admin}/ (pendant la démonstration)");
    }
    println!();

    let outcome = exchange(&connection, &bus_config, &mut events, &running, &api, &dir).await;
    running.shutdown().await;
    remove_topology(&channel, &bus_config).await;
    let _ = connection.close(200, "demo done".into()).await;
    server.abort();
    outcome?;

    println!();
    println!(
        "Les fichiers livrés et la base SQLite sont dans {}.",
        dir.display()
    );
    println!(
        "La configuration écrite reste valable : `aiguillage check --config {}`.",
        config_path.display()
    );
    println!(
        "Pour relancer la passerelle avec elle : `aiguillage run --config {}` (l'API de facturation locale n'existait que pendant la démonstration : les démarches de facturation y attendront, avec de nouvelles tentatives, qu'une API réponde à http://{api_addr}/).",
        config_path.display()
    );
    Ok(())
}

/// Publishes, reports, and takes the refused démarche through the dead letters and back.
async fn exchange(
    connection: &lapin::Connection,
    bus_config: &aiguillage_bus::BusConfig,
    events: &mut lapin::Consumer,
    running: &aiguillage_gateway::service::Running,
    api: &BillingApi,
    dir: &Path,
) -> anyhow::Result<()> {
    let all = demarches();
    let mut bodies: Vec<(String, Vec<u8>)> = all
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap_or_default().to_owned(),
                d.to_string().into_bytes(),
            )
        })
        .collect();
    // The portal may publish the same démarche twice (a retried webhook): it must arrive once.
    bodies.push(bodies[2].clone());
    let published =
        aiguillage_gateway::bus::publish::publish_on(connection, bus_config, &bodies).await?;
    println!(
        "{} messages publiés ({} démarches, dont une deux fois)",
        published.len(),
        all.len()
    );

    let routed: Vec<String> = all
        .iter()
        .filter(|d| d["form"] != "permis-de-construire")
        .filter_map(|d| d["id"].as_str().map(str::to_owned))
        .collect();
    let mut outcomes: HashMap<String, Value> = HashMap::new();
    while outcomes.len() < routed.len() {
        let Some(event) = next_event(events, Duration::from_secs(30)).await else {
            bail!(
                "seules {} des {} démarches ont reçu un état en 30 s",
                outcomes.len(),
                routed.len()
            );
        };
        // A retry is not an outcome: its final state follows.
        if let (Some(id), false) = (event["id"].as_str(), event["status"] == "retrying") {
            outcomes.insert(id.to_owned(), event.clone());
        }
    }
    // Let the duplicate be handled too before counting what the API received.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let channel = connection.create_channel().await?;
    let unrouted = aiguillage_bus::topology::queue_depth(&channel, &bus_config.unrouted_queue())
        .await
        .unwrap_or(0);

    println!();
    println!(
        "{:<42} {:<7} {:<20} {:<10} destination",
        "démarche", "commune", "connecteur", "état"
    );
    let mut cityweb_file: Option<PathBuf> = None;
    for demarche in &all {
        let id = demarche["id"].as_str().unwrap_or_default();
        let commune = demarche["commune"].as_str().unwrap_or_default();
        match outcomes.get(id) {
            Some(event) => {
                let connector = event["connector"].as_str().unwrap_or_default();
                let reference = event["reference"].as_str().unwrap_or("");
                let status = event["status"].as_str().unwrap_or_default();
                let place = if status != "delivered" {
                    format!("motif : {}", event["error"].as_str().unwrap_or(""))
                } else if connector.ends_with("etat-civil") {
                    let file = etat_civil_dir(dir, connector).join(reference);
                    cityweb_file.get_or_insert(file.clone());
                    format!("fichier Cityweb {}", file.display())
                } else {
                    format!("API de facturation, numéro {reference}")
                };
                println!(
                    "{id:<42} {commune:<7} {connector:<20} {:<10} {place}",
                    status_fr(status)
                );
            }
            None => println!(
                "{id:<42} {commune:<7} {:<20} {:<10} gardée dans la file `{}` pour l'exploitant",
                "(aucune route)",
                "non routée",
                bus_config.unrouted_queue()
            ),
        }
    }
    let (requests, distinct) = (
        api.requests.lock().map(|r| *r).unwrap_or(0),
        api.accepted.lock().map(|a| a.len()).unwrap_or(0),
    );
    println!();
    println!("API de facturation : {requests} requête(s), {distinct} démarche(s) facturée(s) (le doublon n'a pas été livré une deuxième fois)");
    println!("file des démarches non routées : {unrouted} démarche(s)");

    if let Some(file) = cityweb_file {
        println!();
        println!("Un fichier Cityweb écrit par le connecteur état civil ({}, avec le mapping {MAPPING_PATH}) :", file.display());
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("impossible de lire {}", file.display()))?;
        for line in text.lines().take(14) {
            println!("  | {line}");
        }
        println!("  | …");
    }

    // The refused démarche: a dead letter, its cause fixed, replayed.
    let refused = all
        .iter()
        .filter_map(|d| d["id"].as_str())
        .find(|id| {
            outcomes
                .get(*id)
                .is_some_and(|e| e["status"] != "delivered")
        })
        .map(str::to_owned);
    let Some(refused) = refused else {
        bail!("la démarche refusée par la facturation de Gorges n'a pas été refusée");
    };
    let names: Vec<String> = CONNECTORS.iter().map(|c| (*c).to_owned()).collect();
    let operator = Operator::new(connection, bus_config, names);
    let query = DeadQuery {
        id: Some(refused.clone()),
        ..DeadQuery::default()
    };
    let mut letter = None;
    for _ in 0..50 {
        letter = operator.list(&query).await?.letters.into_iter().next();
        if letter.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let Some(letter) = letter else {
        bail!("la démarche refusée {refused} n'est pas arrivée dans les lettres mortes");
    };
    println!();
    println!(
        "Lettre morte : {} (connecteur {}, {} tentative(s)) ; motif : {}",
        letter.id, letter.connector, letter.attempts, letter.reason
    );
    println!("  (ce que montrent `aiguillage dead list` et le tableau de bord)");
    if let Ok(mut unknown) = api.unknown.lock() {
        unknown.clear();
    }
    println!("Correction de la cause : la famille {UNKNOWN_FAMILY} est créée dans le logiciel de facturation de Gorges.");
    let request = ReplayRequest {
        id: Some(refused.clone()),
        ..ReplayRequest::default()
    };
    let report = operator
        .replay(running.store(), &request, &mut |_| {})
        .await?;
    if report.done.is_empty() {
        bail!("la lettre morte {refused} n'a pas été rejouée");
    }
    println!("Rejouée (comme `aiguillage dead replay --id {refused}`) :");
    loop {
        let Some(event) = next_event(events, Duration::from_secs(30)).await else {
            bail!("la démarche rejouée {refused} n'a pas reçu d'état en 30 s");
        };
        if event["id"].as_str() == Some(refused.as_str()) {
            let status = event["status"].as_str().unwrap_or_default();
            println!(
                "  {refused} : {}, API de facturation, numéro {}",
                status_fr(status),
                event["reference"].as_str().unwrap_or("")
            );
            if status != "delivered" {
                bail!("la démarche rejouée {refused} est {}", status_fr(status));
            }
            break;
        }
    }
    // Only billing forms reach billing (a route `*` once sent it a death-certificate request).
    let forms = api
        .forms
        .lock()
        .map(|f| f.iter().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    println!();
    println!("API de facturation : formulaires reçus : {forms}");
    Ok(())
}

/// The next status event, acknowledged, within `timeout`.
async fn next_event(events: &mut lapin::Consumer, timeout: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let next = tokio::time::timeout_at(deadline, events.next()).await;
        let Ok(Some(Ok(delivery))) = next else {
            return None;
        };
        let _ = delivery.ack(BasicAckOptions::default()).await;
        if let Ok(event) = serde_json::from_slice::<Value>(&delivery.data) {
            return Some(event);
        }
    }
}

fn etat_civil_dir(dir: &Path, connector: &str) -> PathBuf {
    match connector {
        "gorges-etat-civil" => dir.join("etat-civil-gorges"),
        _ => dir.join("etat-civil-clisson"),
    }
}

fn demo_config(
    amqp_url: &str,
    api: SocketAddr,
    store: &Path,
    clisson: &Path,
    gorges: &Path,
) -> String {
    let quote = |text: &str| toml_string(text);
    format!(
        r#"# Written by `aiguillage demo`: a complete gateway configuration to read and adapt.
# Every key can be overridden by the environment, e.g. AIGUILLAGE__BUS__PREFETCH=32.
# `aiguillage check --config` this file to validate it, `aiguillage run --config` it to run
# the gateway again. The billing API below was served by the demo while it ran: without it,
# billing démarches wait in their queue (retried) until an API answers at that address.

[bus]
url = {url}
prefetch = 64
# The demo's own names, so that it never touches a real deployment on the same broker.
exchange = "{PREFIX}.demarches"
status_exchange = "{PREFIX}.demarches.status"
queue_prefix = "{PREFIX}"

[store]
url = {store}

[shutdown]
grace = "5s"

[admin]
# /healthz, /readyz, /metrics and the dashboard; a free port, so that the demo never
# clashes with a gateway running on this machine (a real one keeps 127.0.0.1:9464).
listen = "127.0.0.1:0"

# Clisson's état-civil software (Cityweb family) imports one XML file per request from a
# directory; the route's mapping turns the portal's form into the request.
[[connectors]]
name = "clisson-etat-civil"
kind = "etat-civil/cityweb"
directory = {clisson}

# Gorges has the same kind of software.
[[connectors]]
name = "gorges-etat-civil"
kind = "etat-civil/cityweb"
directory = {gorges}

# Clisson's billing software has an HTTP API.
[[connectors]]
name = "clisson-famille"
kind = "rest"
url = "http://{api}/clisson/factures"
reference_pointer = "/numero"
timeout = "10s"
concurrency = 4

# Gorges uses another instance of the same kind of software.
[[connectors]]
name = "gorges-famille"
kind = "rest"
url = "http://{api}/gorges/factures"
reference_pointer = "/numero"

[[routes]]
commune = "44043"
forms = ["demande-acte-*"]
connector = "clisson-etat-civil"
mapping = "{MAPPING_PATH}"

[[routes]]
commune = "44043"
forms = ["inscription-*", "carte-dechetterie"]
connector = "clisson-famille"

# Only the billing forms go to billing: a route `*` would send a death-certificate request
# to the billing API.
[[routes]]
commune = "44064"
forms = ["demande-acte-*"]
connector = "gorges-etat-civil"
mapping = "{MAPPING_PATH}"

[[routes]]
commune = "44064"
forms = ["inscription-*"]
connector = "gorges-famille"
"#,
        url = quote(amqp_url),
        store = quote(&format!("sqlite://{}", store.display())),
        clisson = quote(&clisson.display().to_string()),
        gorges = quote(&gorges.display().to_string()),
    )
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

async fn remove_topology(channel: &lapin::Channel, bus_config: &aiguillage_bus::BusConfig) {
    let queues: Vec<String> = CONNECTORS
        .iter()
        .flat_map(|name| {
            topology::connector_queues(
                bus_config,
                name,
                &aiguillage_gateway::config::RetryPolicy::default(),
            )
        })
        .collect();
    aiguillage_bus::topology::delete_topology(channel, bus_config, &queues).await;
}

/// The default directory of the demo's output, for the README.
pub fn default_dir() -> PathBuf {
    PathBuf::from("demo-output")
}
