//! The scenario fixture: an isolated gateway set-up (broker objects under a unique,
//! time-stamped prefix, an SQLite file in its own directory or a PostgreSQL schema of its
//! own, connectors and routes), the in-process gateway started on it, and the clean-up
//! that removes its queues, exchanges and schema when the test ends, passes or panics.
//!
//! This module and [`crate::broker`] are where the harness reaches into
//! `aiguillage_gateway`, so that a move of the gateway's modules touches the tests here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use aiguillage_bus::BusConfig;
use aiguillage_gateway::config::Config;
use aiguillage_gateway::service;
/// The in-process gateway that [`Scenario::start`] returns.
pub use aiguillage_gateway::service::Running;
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::types::FieldTable;
use serde_json::{json, Value};
use tokio::process::Child;

use crate::broker::{amqp_url, sweep_stale, unique};
use crate::rest_target::RestTarget;

/// The PostgreSQL database of the machine (override with `AIGUILLAGE_TEST_POSTGRES_URL`).
pub fn postgres_url() -> String {
    std::env::var("AIGUILLAGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
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
    /// Set once [`Scenario::cleanup`] has run, so that `Drop` does not run it again.
    cleaned: bool,
}

impl Scenario {
    /// A new scenario on `store`.
    pub async fn new(store: StoreKind) -> Self {
        // The first scenario of a test binary removes what killed runs left.
        sweep_stale().await;
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
            cleaned: false,
        }
    }

    /// A scenario for its store alone: its one connector, `finances` (a `rest` connector
    /// to a closed port, routed `44043` `form`), only gives it broker objects to clean up.
    pub async fn for_store(store: StoreKind, form: &str) -> Self {
        let mut scenario = Self::new(store).await;
        scenario
            .rest("finances", "http://127.0.0.1:9/", "")
            .route("44043", &[form], "finances");
        scenario
    }

    /// One `rest` connector, `famille`, posting to `url` (with more TOML `keys`) every
    /// form of Clisson (44043): the smallest gateway that delivers.
    pub async fn famille(url: &str, keys: &str) -> Self {
        let mut scenario = Self::new(StoreKind::Sqlite).await;
        scenario
            .rest("famille", url, keys)
            .route("44043", &["*"], "famille");
        scenario
    }

    /// Two `rest` connectors of Clisson (44043) on `target`: `famille` (accepting at
    /// `accept/x`) takes `inscription-*`, `etat-civil` (`accept/y`) takes `demande-acte-*`.
    pub async fn famille_and_etat_civil(target: &RestTarget) -> Self {
        let mut scenario = Self::new(StoreKind::Sqlite).await;
        scenario
            .rest("famille", &target.url("accept/x"), "")
            .rest("etat-civil", &target.url("accept/y"), "")
            .route("44043", &["inscription-*"], "famille")
            .route("44043", &["demande-acte-*"], "etat-civil");
        scenario
    }

    /// Two `rest` connectors of Clisson (44043) on `target`: `urbanisme`, whose target
    /// refuses (`reject_path`), takes `declaration-prealable`; `famille` (`accept/famille`)
    /// takes `inscription-*`.
    pub async fn urbanisme_refused(target: &RestTarget, reject_path: &str) -> Self {
        let mut scenario = Self::new(StoreKind::Sqlite).await;
        scenario
            .rest("urbanisme", &target.url(reject_path), "")
            .rest("famille", &target.url("accept/famille"), "")
            .route("44043", &["declaration-prealable"], "urbanisme")
            .route("44043", &["inscription-*"], "famille");
        scenario
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

    /// Adds a `rest` connector that posts to `url`, with more TOML `keys` (may be empty).
    pub fn rest(&mut self, name: &str, url: &str, keys: &str) -> &mut Self {
        self.connector(name, "rest", &format!("url = \"{url}\"\n{keys}"))
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
        let path = self.config_path();
        std::fs::write(&path, self.config_text()).expect("write the configuration");
        path
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("aiguillage.toml")
    }

    /// The configuration file's text.
    fn config_text(&self) -> String {
        let listen = if self
            .admin_extra
            .lines()
            .any(|line| line.trim_start().starts_with("listen"))
        {
            ""
        } else {
            "listen = \"127.0.0.1:0\"\n"
        };
        format!(
            "[bus]\nurl = \"{}\"\nexchange = \"{p}.demarches\"\nstatus_exchange = \"{p}.status\"\nqueue_prefix = \"{p}\"\n{}\n[store]\nurl = \"{}\"\n\n[admin]\n{listen}{}\n{}\n{}\n{}",
            self.bus_url.clone().unwrap_or_else(amqp_url),
            self.bus_extra,
            self.store_url,
            self.admin_extra,
            self.extra,
            self.connectors.join("\n"),
            self.routes.join("\n"),
            p = self.prefix,
        )
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

    /// Follows the status events, then starts the gateway: how most tests begin.
    pub async fn launch(&self) -> (StatusEvents, Running) {
        let events = self.status_events().await;
        (events, self.start().await)
    }

    /// Stops the gateway, then removes the scenario's broker objects and schema.
    pub async fn finish(self, running: Running) {
        running.shutdown().await;
        self.cleanup().await;
    }

    /// `count` envelopes of `commune` on `form` (see [`crate::envelope`]), numbered from 0.
    pub fn envelopes(&self, commune: &str, form: &str, count: u32) -> Vec<Value> {
        (0..count)
            .map(|n| crate::envelope(&self.prefix, commune, form, n))
            .collect()
    }

    /// Runs the gateway's command line `bin` (see [`crate::gateway_bin`]) as
    /// `bin <args…> --config <this scenario's configuration>`, without the caller's
    /// `AIGUILLAGE*` variables and with `env`.
    pub async fn cli(&self, bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let config = self.write_config();
        let mut command = tokio::process::Command::new(bin);
        command.args(args).arg("--config").arg(&config);
        for (key, _) in std::env::vars() {
            if key.starts_with("AIGUILLAGE") {
                command.env_remove(key);
            }
        }
        command.envs(env.iter().copied());
        command
            .output()
            .await
            .expect("run the gateway's command line")
    }

    /// Starts the gateway `bin` as a process of its own, `bin <args…> --config <this
    /// scenario's configuration>`, its log in `gateway-<round>.log` of the scenario's
    /// directory; it is killed when dropped (tests kill and restart it).
    pub fn spawn_gateway(&self, bin: &Path, args: &[&str], round: u32) -> Child {
        let config = self.write_config();
        let log = std::fs::File::create(self.dir.path().join(format!("gateway-{round}.log")))
            .expect("the gateway's log file");
        tokio::process::Command::new(bin)
            .args(args)
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start the gateway")
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

    /// Publishes `envelopes`, then the first one again, as the portal may publish a
    /// démarche twice.
    pub async fn publish_first_twice(&self, envelopes: &[Value]) {
        self.publish(envelopes).await;
        self.publish(&envelopes[..1]).await;
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
        self.get_all(queue, true).await
    }

    /// Reads every message of a queue without taking it (body and headers): each is
    /// fetched unacknowledged, then the channel is closed and the broker puts them back.
    pub async fn peek(&self, queue: &str) -> Vec<(Value, FieldTable)> {
        self.get_all(queue, false).await
    }

    /// Every message of a queue, acked (taken) or left unacknowledged until the channel
    /// closes (put back).
    async fn get_all(&self, queue: &str, take: bool) -> Vec<(Value, FieldTable)> {
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
            if take {
                delivery.ack(BasicAckOptions::default()).await.expect("ack");
            }
            out.push((body, headers));
        }
        let _ = channel.close(200, "done".into()).await;
        let _ = connection.close(200, "done".into()).await;
        out
    }

    /// The one dead letter of `connector` (body and headers), waited for at most 10 s
    /// and left in its queue.
    pub async fn dead_letter(&self, connector: &str) -> (Value, FieldTable) {
        let queue = self.bus().dead_queue(connector);
        assert!(
            self.wait_for_depth(&queue, 1, Duration::from_secs(10))
                .await,
            "one dead letter of `{connector}`"
        );
        self.peek(&queue).await.swap_remove(0)
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

    /// Removes the scenario's queues, exchanges and PostgreSQL schema. Without this call
    /// the same happens when the scenario is dropped (a test that panics included).
    pub async fn cleanup(mut self) {
        let teardown = self.teardown();
        self.cleaned = true;
        teardown.run().await;
    }

    /// What to remove: the broker objects of the configuration as it stands, the schema.
    fn teardown(&mut self) -> Teardown {
        Teardown {
            prefix: self.prefix.clone(),
            config_path: self.config_path(),
            config_text: self.config_text(),
            pg_schema: self.pg_schema.take(),
        }
    }
}

impl Drop for Scenario {
    /// The clean-up of a test that did not reach [`Scenario::cleanup`] (it panicked, or
    /// returned early). `Drop` cannot await, and the test's runtime may be the
    /// current-thread one that this very call blocks: the clean-up runs on a thread of its
    /// own with a runtime of its own, and a failure there (broker gone) is only reported.
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        self.cleaned = true;
        // Nothing here may panic: during a test's panic that would abort the run. What
        // can fail (reading the configuration, the broker) happens on the other thread.
        let teardown = self.teardown();
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the clean-up");
            runtime.block_on(teardown.run());
        })
        .join();
        if done.is_err() {
            eprintln!("scenario {}: the clean-up failed", self.prefix);
        }
    }
}

/// A scenario's broker objects and schema, to remove.
struct Teardown {
    prefix: String,
    config_path: PathBuf,
    config_text: String,
    pg_schema: Option<String>,
}

impl Teardown {
    async fn run(self) {
        let config = std::fs::write(&self.config_path, &self.config_text)
            .map_err(|error| error.to_string())
            .and_then(|()| {
                Config::load_with_env(
                    &self.config_path,
                    &HashMap::new(),
                    &aiguillage::builtin_registry(),
                )
                .map_err(|error| error.to_string())
            });
        match config {
            Ok(config) => remove_topology(&config).await,
            Err(error) => eprintln!(
                "scenario {}: its broker objects stay (configuration: {error})",
                self.prefix
            ),
        }
        if let Some(schema) = self.pg_schema {
            let admin = admin_pool().await;
            let _ = sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                .execute(&admin)
                .await;
            admin.close().await;
        }
    }
}

/// Deletes the queues and exchanges that the gateway declares for `config`.
async fn remove_topology(config: &Config) {
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
    if let Ok(connection) =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await
    {
        if let Ok(channel) = connection.create_channel().await {
            aiguillage_bus::topology::delete_topology(&channel, bus, &queues).await;
        }
        let _ = connection.close(200, "done".into()).await;
    }
}

async fn admin_pool() -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&postgres_url())
        .await
        .unwrap_or_else(|error| panic!("PostgreSQL is not reachable at {} ({error}): start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`", postgres_url()))
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

    /// Waits until `count` events with `status` arrived, at most `timeout`; returns every
    /// event seen.
    pub async fn wait_for_count(
        &mut self,
        status: &str,
        count: usize,
        timeout: Duration,
    ) -> &[(String, Value)] {
        self.wait_until(timeout, |seen| crate::count_status(seen, status) >= count)
            .await
    }

    /// Waits for the first event, at most `timeout`, and checks that it is the only one
    /// and a rejection: its reason.
    pub async fn only_rejection(&mut self, timeout: Duration) -> String {
        let seen = self.wait_until(timeout, |seen| !seen.is_empty()).await;
        assert_eq!(seen.len(), 1, "{seen:#?}");
        assert_eq!(seen[0].1["status"], "rejected", "{seen:#?}");
        seen[0].1["error"].as_str().unwrap_or_default().to_owned()
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
