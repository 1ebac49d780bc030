//! `aiguillage demo`: the gateway at work on this machine's RabbitMQ, in one command.
//!
//! It writes a real configuration file (two communes, three connectors: an état-civil
//! import directory and two billing APIs served locally), starts the gateway in-process
//! with an embedded SQLite store, publishes démarches as the portal would (one of them
//! twice, one that no route takes), waits for their status events and prints where each
//! one went. Its queues and exchanges carry the `aiguillage-demo` prefix and are removed
//! at the end, so it never touches a real deployment on the same broker.

use std::collections::{BTreeMap, HashMap};
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

use crate::bus;
use crate::config::Config;
use crate::registry::Registry;

const PREFIX: &str = "aiguillage-demo";
const CONNECTORS: [&str; 3] = ["clisson-etat-civil", "clisson-famille", "gorges-famille"];

/// A billing API that honours `Idempotency-Key`, as the demo's "logiciel métier".
#[derive(Default)]
struct BillingApi {
    /// Idempotency key → the number it was given.
    accepted: Mutex<BTreeMap<String, String>>,
    requests: Mutex<usize>,
}

async fn bill(
    State(api): State<Arc<BillingApi>>,
    UrlPath(commune): UrlPath<String>,
    headers: HeaderMap,
    Json(_document): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "Idempotency-Key required"})),
        );
    };
    if let Ok(mut requests) = api.requests.lock() {
        *requests += 1;
    }
    let Ok(mut accepted) = api.accepted.lock() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({})));
    };
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

fn demarches() -> Vec<Value> {
    vec![
        demarche(
            1001,
            "44043",
            "demande-acte-naissance",
            json!({
                "nature_document": "Copie intégrale", "nature_document_raw": "CPI",
                "nom": "Durand", "prenoms": "Camille Marie", "date_naissance": "1990-04-12",
                "lieu_naissance": "Clisson", "nombre_exemplaires": 1
            }),
        ),
        demarche(
            1002,
            "44043",
            "demande-acte-mariage",
            json!({
                "nature_document": "Extrait avec filiation", "nature_document_raw": "EXTAF",
                "nom": "Martin", "prenoms": "Louis", "date_mariage": "2015-06-20"
            }),
        ),
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
                "enfant_nom": "Petit", "enfant_prenom": "Hugo", "semaines": ["2026-W52"]
            }),
        ),
        demarche(
            3002,
            "44064",
            "demande-acte-deces",
            json!({
                "nom": "Moreau", "prenoms": "Jeanne", "date_deces": "2026-11-02"
            }),
        ),
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

/// Runs the demo against the broker at `amqp_url`, writing into `dir`.
///
/// # Errors
///
/// When the broker cannot be reached (with the command that starts it) or a démarche does
/// not arrive in time.
pub async fn run(amqp_url: &str, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let drop_dir = dir.join("etat-civil-clisson");
    std::fs::create_dir_all(&drop_dir)?;
    let store_path = dir.join("aiguillage-demo.db");
    let _ = std::fs::remove_file(&store_path);

    // The local business software: a billing API for both communes.
    let api = Arc::new(BillingApi::default());
    let app = Router::new()
        .route("/{commune}/factures", post(bill))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_addr: SocketAddr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let config_path = dir.join("aiguillage-demo.toml");
    std::fs::write(
        &config_path,
        demo_config(amqp_url, api_addr, &store_path, &drop_dir),
    )?;
    let config = Config::load(&config_path, &Registry::builtin())
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let bus_config = config.bus.clone();

    let connection = bus::connect(&bus_config, "aiguillage-demo").await.map_err(|error| {
        anyhow::anyhow!("{error}\nIs RabbitMQ running? Start it with `rabbitmq-server -detached` (or give --amqp-url)")
    })?;
    let channel = connection.create_channel().await?;
    remove_topology(&channel, &bus_config).await;

    // Listen to status events before anything is published.
    bus::declare_demarches_exchange(&channel, &bus_config).await?;
    let mut events = bus::watch_status_events(&channel, &bus_config, "demo-status").await?;

    println!("Aiguillage demo");
    println!("  configuration: {}", config_path.display());
    println!("  broker:        {}", bus_config.redacted_url());
    println!("  billing API:   http://{api_addr}/{{commune}}/factures");
    println!("  état civil:    {}", drop_dir.display());

    let mut running = crate::service::start(config).await?;
    if !running.wait_ready(Duration::from_secs(20)).await {
        running.shutdown().await;
        bail!("the gateway did not connect to the broker within 20 s");
    }
    if let Some(admin) = running.admin_addr() {
        println!("  metrics:       http://{admin}/metrics (while the demo runs)");
    }
    println!();

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
    let published = crate::publish::publish_on(&connection, &bus_config, &bodies).await?;
    println!(
        "published {} messages ({} démarches, one of them twice)",
        published.len(),
        all.len()
    );

    let routed: Vec<String> = all
        .iter()
        .filter(|d| d["form"] != "permis-de-construire")
        .filter_map(|d| d["id"].as_str().map(str::to_owned))
        .collect();
    let mut outcomes: HashMap<String, Value> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while outcomes.len() < routed.len() {
        let next = tokio::time::timeout_at(deadline, events.next()).await;
        let Ok(Some(Ok(delivery))) = next else {
            running.shutdown().await;
            bail!(
                "only {} of {} démarches reported a status within 30 s",
                outcomes.len(),
                routed.len()
            );
        };
        let _ = delivery.ack(BasicAckOptions::default()).await;
        if let Ok(event) = serde_json::from_slice::<Value>(&delivery.data) {
            if let Some(id) = event["id"].as_str() {
                outcomes.insert(id.to_owned(), event.clone());
            }
        }
    }
    // Let the duplicate be handled too before counting what the API received.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let unrouted = bus::queue_depth(&channel, &bus_config.unrouted_queue())
        .await
        .unwrap_or(0);

    println!();
    println!(
        "{:<42} {:<6} {:<20} {:<10} where",
        "démarche", "commune", "connector", "status"
    );
    for demarche in &all {
        let id = demarche["id"].as_str().unwrap_or_default();
        let commune = demarche["commune"].as_str().unwrap_or_default();
        match outcomes.get(id) {
            Some(event) => {
                let connector = event["connector"].as_str().unwrap_or_default();
                let reference = event["reference"].as_str().unwrap_or("");
                let place = match connector {
                    "clisson-etat-civil" => format!("file {}", drop_dir.join(reference).display()),
                    _ => format!("billing API, numero {reference}"),
                };
                println!(
                    "{id:<42} {commune:<6}  {connector:<20} {:<10} {place}",
                    event["status"].as_str().unwrap_or_default()
                );
            }
            None => println!(
                "{id:<42} {commune:<6}  {:<20} {:<10} kept in queue `{}` for the operator",
                "(no route)",
                "unrouted",
                bus_config.unrouted_queue()
            ),
        }
    }
    let (requests, distinct) = (
        api.requests.lock().map(|r| *r).unwrap_or(0),
        api.accepted.lock().map(|a| a.len()).unwrap_or(0),
    );
    println!();
    println!("billing API: {requests} request(s), {distinct} distinct démarche(s) billed (the duplicate was not delivered again)");
    println!("unrouted queue holds {unrouted} démarche(s)");
    println!(
        "delivered files and the SQLite store are in {}",
        dir.display()
    );

    running.shutdown().await;
    remove_topology(&channel, &bus_config).await;
    let _ = connection.close(200, "demo done".into()).await;
    server.abort();
    Ok(())
}

fn demo_config(amqp_url: &str, api: SocketAddr, store: &Path, drop_dir: &Path) -> String {
    let quote = |text: &str| toml_string(text);
    format!(
        r#"# Written by `aiguillage demo`: a complete gateway configuration to read and adapt.
# Every key can be overridden by the environment, e.g. AIGUILLAGE__BUS__PREFETCH=32.

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
# /healthz, /readyz and /metrics; a free port, so that the demo never clashes with a gateway
# running on this machine (a real one keeps the default 127.0.0.1:9464).
listen = "127.0.0.1:0"

# Clisson's état-civil software imports one file per request from a directory.
[[connectors]]
name = "clisson-etat-civil"
kind = "file-drop"
directory = {drop}
file_name = "{{form}}/{{id}}.json"
create_subdirectories = true

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

[[routes]]
commune = "44043"
forms = ["inscription-*", "carte-dechetterie"]
connector = "clisson-famille"

[[routes]]
commune = "44064"
forms = ["*"]
connector = "gorges-famille"
"#,
        url = quote(amqp_url),
        store = quote(&format!("sqlite://{}", store.display())),
        drop = quote(&drop_dir.display().to_string()),
    )
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

async fn remove_topology(channel: &lapin::Channel, bus_config: &crate::config::BusConfig) {
    let queues: Vec<String> = CONNECTORS
        .iter()
        .flat_map(|name| {
            bus::connector_queues(bus_config, name, &crate::config::RetryPolicy::default())
        })
        .collect();
    bus::delete_topology(channel, bus_config, &queues).await;
}

/// The default directory of the demo's output, for the README.
pub fn default_dir() -> PathBuf {
    PathBuf::from("demo-output")
}
