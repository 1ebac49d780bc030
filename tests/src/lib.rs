//! End-to-end test harness of Aiguillage, against the machine's real RabbitMQ, SQLite and
//! PostgreSQL, plus simulators of the business software we cannot run.
//!
//! Each [`Scenario`] isolates itself: its exchanges and queues carry a unique prefix, its
//! SQLite file lives in its own temporary directory and its PostgreSQL tables in their
//! own schema; [`Scenario::cleanup`] removes them. A missing service fails the test (with
//! the command that starts it): nothing is skipped silently.

pub mod ads_sim;
pub mod cityweb_sim;
pub mod pes_sim;
pub mod rest_target;
pub mod smtp;
pub mod watch;
pub mod wcs_sim;
pub mod webdriver;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aiguillage_bus::BusConfig;
use aiguillage_gateway::config::Config;
use aiguillage_gateway::service::{self, Running};
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::types::FieldTable;
use serde_json::{json, Value};

/// The broker of the machine (override with `AIGUILLAGE_TEST_AMQP_URL`).
pub fn amqp_url() -> String {
    std::env::var("AIGUILLAGE_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// The PostgreSQL database of the machine (override with `AIGUILLAGE_TEST_POSTGRES_URL`).
pub fn postgres_url() -> String {
    std::env::var("AIGUILLAGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A name unique to this test run and call.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// Which store a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// An SQLite file in the scenario's directory.
    Sqlite,
    /// A schema of its own in the machine's PostgreSQL.
    Postgres,
}

/// An isolated gateway setup: configuration, names, store.
pub struct Scenario {
    /// Unique prefix of every broker object.
    pub prefix: String,
    /// The scenario's directory (config, SQLite file, dropped files).
    pub dir: tempfile::TempDir,
    store_url: String,
    pg_schema: Option<String>,
    connectors: Vec<String>,
    routes: Vec<String>,
    extra: String,
    bus_extra: String,
    admin_extra: String,
    bus_url: Option<String>,
}

impl Scenario {
    /// A new scenario on `store`.
    pub async fn new(store: StoreKind) -> Self {
        let prefix = unique("t");
        let dir = tempfile::tempdir().expect("temporary directory");
        let (store_url, pg_schema) = match store {
            StoreKind::Sqlite => (
                format!("sqlite://{}", dir.path().join("store.db").display()),
                None,
            ),
            StoreKind::Postgres => {
                let schema = prefix.replace('-', "_");
                let admin = admin_pool().await;
                sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
                    .execute(&admin)
                    .await
                    .expect("create the test schema");
                admin.close().await;
                let url = format!("{}?options=-c%20search_path%3D{schema}", postgres_url());
                (url, Some(schema))
            }
        };
        Self {
            prefix,
            dir,
            store_url,
            pg_schema,
            connectors: Vec::new(),
            routes: Vec::new(),
            extra: String::new(),
            bus_extra: String::new(),
            admin_extra: String::new(),
            bus_url: None,
        }
    }

    /// Makes the gateway connect to `url` instead of the machine's broker (e.g. a proxy
    /// that a test cuts); the harness itself keeps using the broker directly.
    pub fn bus_url(&mut self, url: &str) -> &mut Self {
        self.bus_url = Some(url.to_owned());
        self
    }

    /// Adds a `[[connectors]]` entry (TOML keys after `name` and `kind`).
    pub fn connector(&mut self, name: &str, kind: &str, keys: &str) -> &mut Self {
        self.connectors.push(format!(
            "[[connectors]]\nname = \"{name}\"\nkind = \"{kind}\"\n{keys}\n"
        ));
        self
    }

    /// Forgets the connectors and routes, to describe a new configuration of the same
    /// deployment (same broker objects, same store).
    pub fn clear_configuration(&mut self) -> &mut Self {
        self.connectors.clear();
        self.routes.clear();
        self
    }

    /// Adds a `[[routes]]` entry.
    pub fn route(&mut self, commune: &str, forms: &[&str], connector: &str) -> &mut Self {
        self.routes.push(format!(
            "[[routes]]\ncommune = \"{commune}\"\nforms = {}\nconnector = \"{connector}\"\n",
            json!(forms)
        ));
        self
    }

    /// Adds a `[[routes]]` entry that names a mapping file.
    pub fn route_with_mapping(
        &mut self,
        commune: &str,
        forms: &[&str],
        connector: &str,
        mapping: &std::path::Path,
    ) -> &mut Self {
        self.routes.push(format!(
            "[[routes]]\ncommune = \"{commune}\"\nforms = {}\nconnector = \"{connector}\"\nmapping = {}\n",
            json!(forms),
            json!(mapping.display().to_string())
        ));
        self
    }

    /// Adds raw TOML at the top level (e.g. a `[shutdown]` table).
    pub fn extra(&mut self, toml: &str) -> &mut Self {
        self.extra.push_str(toml);
        self.extra.push('\n');
        self
    }

    /// Adds a key to the `[bus]` table (e.g. `max_message_bytes = 4096`).
    pub fn bus_key(&mut self, line: &str) -> &mut Self {
        self.bus_extra.push_str(line);
        self.bus_extra.push('\n');
        self
    }

    /// Adds a key to the `[admin]` table (e.g. `token = "…"`). Without a `listen` key the
    /// admin server listens on a free loopback port (see [`Running::admin_addr`]), so that
    /// gateways run side by side.
    pub fn admin_key(&mut self, line: &str) -> &mut Self {
        self.admin_extra.push_str(line);
        self.admin_extra.push('\n');
        self
    }

    /// A directory inside the scenario's directory (created).
    pub fn subdir(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(&path).expect("create a directory");
        path
    }

    /// Writes the configuration file and returns its path.
    pub fn write_config(&self) -> PathBuf {
        let path = self.dir.path().join("aiguillage.toml");
        let listen = if self
            .admin_extra
            .lines()
            .any(|line| line.trim_start().starts_with("listen"))
        {
            ""
        } else {
            "listen = \"127.0.0.1:0\"\n"
        };
        let text = format!(
            "[bus]\nurl = \"{}\"\nexchange = \"{p}.demarches\"\nstatus_exchange = \"{p}.status\"\nqueue_prefix = \"{p}\"\n{}\n[store]\nurl = \"{}\"\n\n[admin]\n{listen}{}\n{}\n{}\n{}",
            self.bus_url.clone().unwrap_or_else(amqp_url),
            self.bus_extra,
            self.store_url,
            self.admin_extra,
            self.extra,
            self.connectors.join("\n"),
            self.routes.join("\n"),
            p = self.prefix,
        );
        std::fs::write(&path, text).expect("write the configuration");
        path
    }

    /// The checked configuration.
    pub fn config(&self) -> Config {
        let path = self.write_config();
        Config::load_with_env(&path, &HashMap::new(), &aiguillage::builtin_registry())
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// The bus section.
    pub fn bus(&self) -> BusConfig {
        self.config().bus
    }

    /// Starts the gateway in-process and waits until it consumes.
    pub async fn start(&self) -> Running {
        let mut running = service::start(self.config())
            .await
            .expect("start the gateway");
        assert!(
            running.wait_ready(Duration::from_secs(30)).await,
            "the gateway did not connect to RabbitMQ at {} within 30 s (start it: rabbitmq-server -detached)",
            amqp_url()
        );
        running
    }

    /// An open connection to the broker.
    pub async fn connection(&self) -> lapin::Connection {
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
            .await
            .unwrap_or_else(|error| panic!("RabbitMQ is not reachable at {} ({error}): start it with `rabbitmq-server -detached`", amqp_url()))
    }

    /// Publishes envelopes as the portal does (confirmed).
    pub async fn publish(&self, envelopes: &[Value]) {
        let bodies: Vec<(String, Vec<u8>)> = envelopes
            .iter()
            .map(|e| (e["id"].to_string(), e.to_string().into_bytes()))
            .collect();
        self.publish_raw(&bodies).await;
    }

    /// Publishes bodies as they are (checked as envelopes first).
    pub async fn publish_raw(&self, bodies: &[(String, Vec<u8>)]) {
        let connection = self.connection().await;
        aiguillage_gateway::bus::publish::publish_on(&connection, &self.bus(), bodies)
            .await
            .expect("publish");
        let _ = connection.close(200, "done".into()).await;
    }

    /// Publishes a body without any check, with a routing key (for hostile messages).
    pub async fn publish_unchecked(&self, routing_key: &str, body: &[u8]) {
        let connection = self.connection().await;
        let bus = self.bus();
        let publisher = aiguillage_bus::Publisher::open(&connection)
            .await
            .expect("channel");
        aiguillage_bus::topology::declare_demarches_exchange(publisher.channel(), &bus)
            .await
            .expect("declare");
        publisher
            .publish(
                &bus.exchange,
                routing_key,
                body,
                aiguillage_bus::publisher::persistent_json(),
                false,
            )
            .await
            .expect("publish");
        let _ = connection.close(200, "done".into()).await;
    }

    /// Starts collecting status events (bind before publishing).
    pub async fn status_events(&self) -> StatusEvents {
        let connection = self.connection().await;
        let channel = connection.create_channel().await.expect("channel");
        let mut consumer =
            aiguillage_bus::topology::watch_status_events(&channel, &self.bus(), "test-events")
                .await
                .expect("follow the status events");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let _keep = (connection, channel);
            while let Some(Ok(delivery)) = consumer.next().await {
                let _ = delivery.ack(BasicAckOptions::default()).await;
                let routing_key = delivery.routing_key.to_string();
                if let Ok(event) = serde_json::from_slice::<Value>(&delivery.data) {
                    if tx.send((routing_key, event)).is_err() {
                        break;
                    }
                }
            }
        });
        StatusEvents {
            rx,
            seen: Vec::new(),
        }
    }

    /// Messages in a queue of this scenario (passive declare).
    pub async fn queue_depth(&self, queue: &str) -> u32 {
        let connection = self.connection().await;
        let channel = connection.create_channel().await.expect("channel");
        let depth = aiguillage_bus::topology::queue_depth(&channel, queue)
            .await
            .expect("queue exists");
        let _ = connection.close(200, "done".into()).await;
        depth
    }

    /// Takes every message of a queue (acking them): body and headers.
    pub async fn drain(&self, queue: &str) -> Vec<(Value, FieldTable)> {
        let connection = self.connection().await;
        let channel = connection.create_channel().await.expect("channel");
        let mut out = Vec::new();
        while let Some(message) = channel
            .basic_get(queue.into(), BasicGetOptions::default())
            .await
            .expect("basic.get")
        {
            let delivery = message.delivery;
            let body = serde_json::from_slice(&delivery.data).unwrap_or(Value::Null);
            let headers = delivery.properties.headers().clone().unwrap_or_default();
            delivery.ack(BasicAckOptions::default()).await.expect("ack");
            out.push((body, headers));
        }
        let _ = connection.close(200, "done".into()).await;
        out
    }

    /// Reads every message of a queue without taking it (body and headers): each is
    /// fetched unacknowledged, then the channel is closed and the broker puts them back.
    pub async fn peek(&self, queue: &str) -> Vec<(Value, FieldTable)> {
        let connection = self.connection().await;
        let channel = connection.create_channel().await.expect("channel");
        let mut out = Vec::new();
        while let Some(message) = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: false })
            .await
            .expect("basic.get")
        {
            let delivery = message.delivery;
            let body = serde_json::from_slice(&delivery.data).unwrap_or(Value::Null);
            let headers = delivery.properties.headers().clone().unwrap_or_default();
            out.push((body, headers));
        }
        let _ = channel.close(200, "peeked".into()).await;
        let _ = connection.close(200, "done".into()).await;
        out
    }

    /// Waits until a queue holds exactly `depth` messages, at most `timeout`; tells whether it does.
    pub async fn wait_for_depth(&self, queue: &str, depth: u32, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.queue_depth(queue).await == depth {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The store's URL (an SQLite file of the scenario, or its own PostgreSQL schema).
    pub fn store_url(&self) -> &str {
        &self.store_url
    }

    /// Removes the scenario's queues, exchanges and PostgreSQL schema.
    pub async fn cleanup(self) {
        let config = self.config();
        let connection = self.connection().await;
        let channel = connection.create_channel().await.expect("channel");
        let bus = &config.bus;
        let mut queues: Vec<String> = config
            .connectors
            .iter()
            .flat_map(|instance| {
                aiguillage_gateway::bus::topology::connector_queues(
                    bus,
                    &instance.name,
                    &instance.retry,
                )
            })
            .collect();
        queues.extend(
            config
                .publik
                .portals
                .iter()
                .flat_map(|portal| portal.notify_queues(bus)),
        );
        aiguillage_bus::topology::delete_topology(&channel, bus, &queues).await;
        let _ = connection.close(200, "done".into()).await;
        if let Some(schema) = self.pg_schema {
            let admin = admin_pool().await;
            let _ = sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                .execute(&admin)
                .await;
            admin.close().await;
        }
    }
}

async fn admin_pool() -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&postgres_url())
        .await
        .unwrap_or_else(|error| panic!("PostgreSQL is not reachable at {} ({error}): start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`", postgres_url()))
}

/// Closes the broker connections whose name contains `marker` (a scenario's prefix names
/// its gateway's connection) with `rabbitmqctl close_connection`; how many were closed.
pub fn close_connections_named(marker: &str) -> usize {
    let output = std::process::Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "--no-table-headers",
            "--silent",
            "pid",
            "client_properties",
        ])
        .output()
        .expect("rabbitmqctl (the tests run on the machine's RabbitMQ)");
    let listing = String::from_utf8_lossy(&output.stdout);
    let mut closed = 0;
    for line in listing.lines().filter(|line| line.contains(marker)) {
        let pid = line.split_whitespace().next().unwrap_or_default();
        let status = std::process::Command::new("rabbitmqctl")
            .args(["close_connection", pid, "closed by an end-to-end test"])
            .status()
            .expect("rabbitmqctl close_connection");
        assert!(status.success());
        closed += 1;
    }
    closed
}

/// `GET` of a path on a running gateway's admin server, with a bearer token if given:
/// the status code and the body.
pub async fn admin_get(running: &Running, path: &str, token: Option<&str>) -> (u16, String) {
    let addr = running
        .admin_addr()
        .expect("the admin server is enabled in this scenario");
    let mut request = reqwest::Client::new().get(format!("http://{addr}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {path} on the admin server: {error}"));
    let status = response.status().as_u16();
    let body = response.text().await.expect("the body of the answer");
    (status, body)
}

/// Status events collected from a scenario's status exchange.
pub struct StatusEvents {
    rx: tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
    seen: Vec<(String, Value)>,
}

impl StatusEvents {
    /// Waits until `predicate` holds over the events seen, at most `timeout`; returns them.
    pub async fn wait_until(
        &mut self,
        timeout: Duration,
        predicate: impl Fn(&[(String, Value)]) -> bool,
    ) -> &[(String, Value)] {
        let deadline = tokio::time::Instant::now() + timeout;
        while !predicate(&self.seen) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(event)) => self.seen.push(event),
                _ => break,
            }
        }
        &self.seen
    }

    /// Collects whatever arrives within `window`.
    pub async fn settle(&mut self, window: Duration) -> &[(String, Value)] {
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            self.seen.push(event);
        }
        &self.seen
    }

    /// The events with `status`.
    pub fn with_status(&self, status: &str) -> Vec<&Value> {
        self.seen
            .iter()
            .map(|(_, e)| e)
            .filter(|e| e["status"] == status)
            .collect()
    }
}

/// A header of a message as text (empty when absent or not a string).
pub fn header_text(headers: &FieldTable, key: &str) -> String {
    match headers.inner().get(key) {
        Some(lapin::types::AMQPValue::LongString(s)) => {
            String::from_utf8_lossy(s.as_bytes()).into_owned()
        }
        _ => String::new(),
    }
}

/// A header of a message as a list of texts.
pub fn header_list(headers: &FieldTable, key: &str) -> Vec<String> {
    match headers.inner().get(key) {
        Some(lapin::types::AMQPValue::FieldArray(items)) => items
            .as_slice()
            .iter()
            .filter_map(|v| match v {
                lapin::types::AMQPValue::LongString(s) => {
                    Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Counts the events with `status`.
pub fn count_status(events: &[(String, Value)], status: &str) -> usize {
    events.iter().filter(|(_, e)| e["status"] == status).count()
}

/// A realistic envelope: a w.c.s.-shaped démarche of `commune` on `form`.
pub fn envelope(prefix: &str, commune: &str, form: &str, number: u32) -> Value {
    json!({
        "id": format!("{prefix}:{form}:{number}"),
        "commune": commune,
        "form": form,
        "submitted_at": "2026-11-28T10:12:00+01:00",
        "formdata": {
            "id": number,
            "display_id": format!("12-{number}"),
            "display_name": format!("Demande n°12-{number}"),
            "receipt_time": "2026-11-28T10:12:00+01:00",
            "url": format!("https://demarches.example.invalid/{form}/{number}/"),
            "criticality_level": 0,
            "user": {"id": 7, "name": "Camille Durand", "email": "camille.durand@example.invalid", "NameID": ["a1b2c3"]},
            "fields": {
                "nom": "Durand", "prenoms": "Camille Marie",
                "nature_document": "Copie intégrale", "nature_document_raw": "CPI",
                "nature_document_structured": {"id": "CPI", "text": "Copie intégrale"},
                "date_naissance": "1990-04-12", "lieu_naissance": "Clisson",
                "adresse": "3 rue de la Garenne", "code_postal": "44190", "ville": "Clisson",
                "nombre_exemplaires": 1
            },
            "workflow": {"status": {"id": "1", "name": "Nouveau"}, "fields": {}},
            "submission": {"channel": "web", "backoffice": false}
        }
    })
}

/// Runs a test's `body`, catching its panic, so that the scenario's queues and exchanges
/// can be removed even when the test fails; then [`fail_as`] fails as the body did.
pub async fn catching<F: std::future::Future<Output = ()>>(
    body: F,
) -> Result<(), Box<dyn std::any::Any + Send>> {
    use futures_util::FutureExt as _;
    std::panic::AssertUnwindSafe(body).catch_unwind().await
}

/// Fails as the test's body did (see [`catching`]), once the caller has cleaned up.
pub fn fail_as(outcome: Result<(), Box<dyn std::any::Any + Send>>) {
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
