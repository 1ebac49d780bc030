//! The gateway's configuration: one TOML file, every key overridable by the environment.
//!
//! `AIGUILLAGE__BUS__URL=…` overrides `bus.url`; entries of `[[connectors]]` and
//! `[[routes]]` are addressed by index (`AIGUILLAGE__ROUTES__0__COMMUNE`) and connectors
//! also by name (`AIGUILLAGE__CONNECTORS__CLISSON_FAMILLE__URL` for `clisson-famille`).
//! Every problem is reported at once, each naming the file, the key and the fix.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aiguillage_connector::{ConfigError as ConnectorConfigError, Connector, Setup};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::mapping::Mapping;
use crate::registry::Registry;
use crate::routing::{CommunePattern, Route};

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "AIGUILLAGE";

/// A configuration checked and ready to run: connectors built, routes compiled.
pub struct Config {
    /// The bus connection and topology names.
    pub bus: BusConfig,
    /// The outcome store.
    pub store: StoreConfig,
    /// The connector instances, in file order.
    pub connectors: Vec<ConnectorInstance>,
    /// The routes, in file order. A démarche goes to every connector that has a matching
    /// route (two connectors can receive the same démarche).
    pub routes: Vec<Route>,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// The admin HTTP server (health, readiness, metrics).
    pub admin: AdminConfig,
    /// Publik: the webhook intake and the portals (`docs/publik.md`).
    pub publik: crate::publik::config::PublikConfig,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bus", &self.bus)
            .field("store", &self.store)
            .field(
                "connectors",
                &self.connectors.iter().map(|c| &c.name).collect::<Vec<_>>(),
            )
            .field("routes", &self.routes)
            .field("admin", &self.admin)
            .field("publik", &self.publik)
            .finish()
    }
}

/// `[bus]`: the RabbitMQ connection and the names of the topology (the defaults are the
/// bus contract; change them only to isolate a test or a second environment on one broker).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// AMQP URL, `amqp://user:password@host:5672/vhost` (`%2f` is the default vhost).
    /// Holds a password: never logged (see [`BusConfig::redacted_url`]).
    pub url: SecretString,
    /// File holding the broker password, which replaces the password of `url`.
    pub password_file: Option<PathBuf>,
    /// Messages each connector's consumer may hold unacknowledged (AMQP prefetch).
    pub prefetch: u16,
    /// The topic exchange where the portal publishes démarches.
    pub exchange: String,
    /// The topic exchange where status events are published.
    pub status_exchange: String,
    /// Prefix of every queue the gateway declares (`<prefix>.<connector>`, `<prefix>.unrouted`).
    pub queue_prefix: String,
    /// Largest accepted message body, in bytes; larger ones are dead-lettered.
    pub max_message_bytes: usize,
    /// Deliveries of one message before RabbitMQ itself dead-letters it (protects against a
    /// message that crashes the gateway again and again).
    pub delivery_limit: u32,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from(DEFAULT_BUS_URL.to_owned()),
            password_file: None,
            prefetch: 64,
            exchange: "demarches".into(),
            status_exchange: "demarches.status".into(),
            queue_prefix: "aiguillage".into(),
            max_message_bytes: 32 * 1024 * 1024,
            delivery_limit: 20,
        }
    }
}

const DEFAULT_BUS_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

impl BusConfig {
    /// The URL without its password, for logs and messages.
    pub fn redacted_url(&self) -> String {
        redact_url(self.url.expose_secret())
    }

    /// The alternate exchange of `exchange`: démarches that no route takes.
    pub fn unrouted_exchange(&self) -> String {
        format!("{}.unrouted", self.exchange)
    }

    /// The queue bound to the alternate exchange.
    pub fn unrouted_queue(&self) -> String {
        format!("{}.unrouted", self.queue_prefix)
    }

    /// The queue of a connector.
    pub fn connector_queue(&self, connector: &str) -> String {
        format!("{}.{connector}", self.queue_prefix)
    }

    /// The dead-letter queue of a connector.
    pub fn dead_queue(&self, connector: &str) -> String {
        format!("{}.{connector}.dead", self.queue_prefix)
    }

    /// The retry queue of a connector for one delay, e.g. `aiguillage.famille.retry.5m`.
    ///
    /// Named by its delay rather than its rank so that changing a retry policy declares new
    /// queues instead of clashing with the existing ones' arguments (RabbitMQ refuses to
    /// redeclare a queue with another TTL); the old ones drain back by themselves.
    pub fn retry_queue(&self, connector: &str, delay: Duration) -> String {
        format!(
            "{}.{connector}.retry.{}",
            self.queue_prefix,
            compact_duration(delay)
        )
    }
}

impl fmt::Debug for BusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusConfig")
            .field("url", &self.redacted_url())
            .field("prefetch", &self.prefetch)
            .field("exchange", &self.exchange)
            .field("status_exchange", &self.status_exchange)
            .field("queue_prefix", &self.queue_prefix)
            .finish_non_exhaustive()
    }
}

/// `300s` → `5m`, `1500ms` → `1500ms`, `6h` → `6h`: short and exact.
pub fn compact_duration(delay: Duration) -> String {
    let millis = delay.as_millis();
    match millis {
        0 => "0ms".into(),
        m if m % 3_600_000 == 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 => format!("{}m", m / 60_000),
        m if m % 1_000 == 0 => format!("{}s", m / 1_000),
        m => format!("{m}ms"),
    }
}

/// Replaces the password of a URL by `***`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparsable URL>".into(),
    }
}

/// `[store]`: where outcomes are recorded.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://path/to/file.db` (embedded, one instance) or `postgres://…` (several
    /// instances sharing one store). A relative SQLite path is relative to the config file.
    pub url: SecretString,
    /// File holding the database password, which replaces the password of `url`.
    pub password_file: Option<PathBuf>,
    /// Largest number of open database connections.
    pub max_connections: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://aiguillage.db".to_owned()),
            password_file: None,
            max_connections: 8,
        }
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &redact_url(self.url.expose_secret()))
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

/// `[shutdown]`: what happens on SIGTERM or SIGINT.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// How long in-flight deliveries may take to finish before the gateway exits anyway
    /// (what did not finish is redelivered by the broker).
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(30),
        }
    }
}

/// `[admin]` as written: the admin HTTP server (`/healthz`, `/readyz`, `/metrics`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAdmin {
    /// Whether the admin server runs at all.
    enabled: bool,
    /// The address and port it listens on, `IP:port` (`127.0.0.1:0` picks a free port).
    /// Off the public network by default; any address that is not a loopback one needs a
    /// token.
    listen: String,
    /// The bearer token required on every route but `/healthz`
    /// (`Authorization: Bearer <token>`). A secret: prefer `token_file`.
    token: Option<SecretString>,
    /// File holding the bearer token (instead of `token`).
    token_file: Option<PathBuf>,
    /// The names (`host` or `host:port`) under which people reach the admin server besides
    /// its listen address and the loopback names, e.g. behind a reverse proxy: any other
    /// `Host` is answered 421 (DNS rebinding, docs/security.md).
    public_names: Vec<String>,
    /// How often the depth of each connector's queue and dead letters is read (passive
    /// queue declare) for the metrics, while connected.
    #[serde(with = "humantime_serde")]
    queue_depth_interval: Duration,
}

/// The default address of the admin server: loopback only.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9464";

impl Default for RawAdmin {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: DEFAULT_ADMIN_LISTEN.into(),
            token: None,
            token_file: None,
            public_names: Vec::new(),
            queue_depth_interval: Duration::from_secs(15),
        }
    }
}

/// `[admin]`, checked: the admin HTTP server.
#[derive(Clone)]
pub struct AdminConfig {
    /// Whether the admin server runs.
    pub enabled: bool,
    /// Where it listens.
    pub listen: SocketAddr,
    /// The bearer token every route but `/healthz` requires, if any.
    pub token: Option<SecretString>,
    /// The other names it answers to (`Host`), checked.
    pub public_names: Vec<String>,
    /// How often queue depths are read for the metrics.
    pub queue_depth_interval: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            token: None,
            public_names: Vec::new(),
            queue_depth_interval: Duration::from_secs(15),
        }
    }
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("enabled", &self.enabled)
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("public_names", &self.public_names)
            .field("queue_depth_interval", &self.queue_depth_interval)
            .finish()
    }
}

/// `retry` of a connector: how transient failures are retried.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included; then the démarche goes to the dead letters.
    pub max_attempts: u32,
    /// Delay before the second attempt; each later delay doubles.
    #[serde(with = "humantime_serde")]
    pub initial: Duration,
    /// The longest delay between two attempts.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 10 attempts, 5 min doubling up to 6 h: about 22 hours from the first to the last.
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial: Duration::from_secs(5 * 60),
            max_delay: Duration::from_secs(6 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The delay tiers: tier `k` holds a message for `tiers()[k]`; after attempt `n` failed
    /// the message waits in tier `min(n - 1, last)`.
    pub fn tiers(&self) -> Vec<Duration> {
        let mut tiers: Vec<Duration> = Vec::new();
        let mut delay = self.initial;
        for _ in 1..self.max_attempts {
            let capped = delay.min(self.max_delay);
            if tiers.last() == Some(&capped) {
                break;
            }
            tiers.push(capped);
            delay = delay.saturating_mul(2);
        }
        tiers
    }

    /// The tier a message enters after its attempt `attempt` failed.
    pub fn tier_after(&self, attempt: u32, tier_count: usize) -> usize {
        let index = attempt.saturating_sub(1) as usize;
        index.min(tier_count.saturating_sub(1))
    }
}

/// `breaker` of a connector: when a target keeps failing, stop sending it démarches (they
/// wait in the queue) and probe its health check until it answers again.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerPolicy {
    /// Consecutive transient failures that open the breaker; 0 never opens it.
    pub failures: u32,
    /// First delay between two health probes while open; each later one doubles.
    #[serde(with = "humantime_serde")]
    pub probe_initial: Duration,
    /// The longest delay between two health probes.
    #[serde(with = "humantime_serde")]
    pub probe_max: Duration,
}

impl Default for BreakerPolicy {
    /// Opens after 5 consecutive transient failures; probes after 1 s, doubling up to 1 min.
    fn default() -> Self {
        Self {
            failures: 5,
            probe_initial: Duration::from_secs(1),
            probe_max: Duration::from_secs(60),
        }
    }
}

/// A built connector instance with the settings the gateway keeps for it.
#[derive(Clone)]
pub struct ConnectorInstance {
    /// Unique name; names its queues.
    pub name: String,
    /// The connector kind.
    pub kind: String,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Retry policy for transient failures.
    pub retry: RetryPolicy,
    /// When to pause deliveries to a failing target.
    pub breaker: BreakerPolicy,
    /// The connector.
    pub connector: Arc<dyn Connector>,
}

/// One problem in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key at fault, e.g. `connectors[1].kind`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// A configuration the gateway refuses to start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file cannot be read or is not valid TOML.
    #[error("cannot read the configuration {file}: {message}")]
    Unreadable {
        /// The configuration file.
        file: PathBuf,
        /// Why.
        message: String,
    },
    /// The file was read but some keys are wrong.
    #[error("{}", render_problems(file, problems))]
    Invalid {
        /// The configuration file.
        file: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

fn render_problems(file: &Path, problems: &[Problem]) -> String {
    let mut out = format!(
        "the configuration {} has {} problem{}:",
        file.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for problem in problems {
        out.push_str(&format!(
            "\n  {}: `{}`: {}",
            file.display(),
            problem.key,
            problem.message
        ));
    }
    out
}

impl ConfigFileError {
    /// The problems found (empty when the file could not be read at all).
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Unreadable { .. } => &[],
            Self::Invalid { problems, .. } => problems,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    bus: BusConfig,
    #[serde(default)]
    store: StoreConfig,
    #[serde(default)]
    connectors: Vec<Value>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    shutdown: ShutdownConfig,
    #[serde(default)]
    admin: RawAdmin,
    #[serde(default)]
    publik: crate::publik::config::RawPublik,
}

/// A `[[routes]]` entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    /// INSEE code of the commune, or `*` for every commune.
    commune: String,
    /// Glob patterns over form slugs (`inscription-*`).
    forms: Vec<String>,
    /// The connector that delivers what this route takes.
    connector: String,
    /// The mapping file (relative to this configuration); without it the connector
    /// receives the whole envelope.
    #[serde(default)]
    mapping: Option<PathBuf>,
}

/// The keys of a `[[connectors]]` entry that the gateway owns; the others go to the kind.
#[derive(Deserialize)]
struct Common {
    name: String,
    kind: String,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    #[serde(default)]
    retry: RetryPolicy,
    #[serde(default)]
    breaker: BreakerPolicy,
}

fn default_concurrency() -> usize {
    4
}

const COMMON_KEYS: [&str; 5] = ["name", "kind", "concurrency", "retry", "breaker"];

impl Config {
    /// Reads, overrides from the process environment, checks and builds a configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigFileError`] listing every problem, each with its key and fix.
    pub fn load(path: &Path, registry: &Registry) -> Result<Self, ConfigFileError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::load_with_env(path, &env, registry)
    }

    /// Like [`Config::load`], with the environment given (tests use it).
    ///
    /// # Errors
    ///
    /// [`ConfigFileError`] listing every problem, each with its key and fix.
    pub fn load_with_env(
        path: &Path,
        env: &HashMap<String, String>,
        registry: &Registry,
    ) -> Result<Self, ConfigFileError> {
        let unreadable = |message: String| ConfigFileError::Unreadable {
            file: path.to_path_buf(),
            message,
        };
        if !path.is_file() {
            return Err(unreadable(
                "no such file (give the path of the gateway's TOML configuration with --config)"
                    .into(),
            ));
        }
        let (scalar_env, entry_env) = split_env(env);
        let tree: Value = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(scalar_env)),
            )
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|error| unreadable(error.to_string()))?;
        let mut tree = tree;
        let mut problems = Vec::new();
        apply_entry_overrides(&mut tree, &entry_env, &mut problems);

        let raw: RawConfig = match serde_path_to_error::deserialize(tree) {
            Ok(raw) => raw,
            Err(error) => {
                let key = error.path().to_string();
                let message = error.into_inner().to_string();
                // serde quotes the offending value: never a secret's.
                let message = if is_secret_key(&key) && message.contains('`') {
                    "invalid value (not shown: it is a secret); give it as text, or by file"
                        .to_owned()
                } else {
                    message
                };
                problems.push(Problem { key, message });
                return Err(ConfigFileError::Invalid {
                    file: path.to_path_buf(),
                    problems,
                });
            }
        };
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let config = check(raw, &base_dir, registry, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigFileError::Invalid {
                file: path.to_path_buf(),
                problems,
            })
        }
    }
}

/// Environment variables for `[[connectors]]` and `[[routes]]` entries are applied by us:
/// the config crate cannot address array elements.
/// Overrides of `[[connectors]]`/`[[routes]]` entries: the key path and the value.
type EntryOverrides = Vec<(Vec<String>, String)>;

fn split_env(env: &HashMap<String, String>) -> (config::Map<String, String>, EntryOverrides) {
    let mut scalars = config::Map::new();
    let mut entries = Vec::new();
    let prefix = format!("{ENV_PREFIX}__");
    for (key, value) in env {
        let Some(rest) = key.strip_prefix(&prefix) else {
            continue;
        };
        let parts: Vec<String> = rest.split("__").map(str::to_owned).collect();
        let section = parts[0].to_ascii_lowercase();
        if section == "connectors" || section == "routes" {
            entries.push((parts, value.clone()));
        } else {
            scalars.insert(key.clone(), value.clone());
        }
    }
    entries.sort();
    (scalars, entries)
}

fn apply_entry_overrides(
    tree: &mut Value,
    entries: &[(Vec<String>, String)],
    problems: &mut Vec<Problem>,
) {
    for (parts, raw_value) in entries {
        let variable = format!("{ENV_PREFIX}__{}", parts.join("__"));
        if parts.len() < 3 {
            problems.push(Problem {
                key: variable,
                message: "name an entry and a key, e.g. AIGUILLAGE__CONNECTORS__<NAME>__URL or AIGUILLAGE__ROUTES__0__COMMUNE".into(),
            });
            continue;
        }
        let section = parts[0].to_ascii_lowercase();
        let Some(list) = tree.get_mut(&section).and_then(Value::as_array_mut) else {
            problems.push(Problem {
                key: variable,
                message: format!("the file has no [[{section}]] entry to override"),
            });
            continue;
        };
        let selector = &parts[1];
        let index = selector.parse::<usize>().ok().or_else(|| {
            list.iter().position(|entry| {
                entry
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| env_name(name) == selector.to_ascii_uppercase())
            })
        });
        let Some(entry) = index.and_then(|i| list.get_mut(i)) else {
            problems.push(Problem {
                key: variable,
                message: format!("no [[{section}]] entry `{selector}` (use its index, or for connectors its name in capitals with `_` for `-`)"),
            });
            continue;
        };
        let mut node = entry;
        for part in &parts[2..parts.len() - 1] {
            let key = part.to_ascii_lowercase();
            if !node.is_object() {
                break;
            }
            node = node
                .as_object_mut()
                .map(|map| {
                    map.entry(key)
                        .or_insert_with(|| Value::Object(Default::default()))
                })
                .expect("checked to be an object");
        }
        if let Some(map) = node.as_object_mut() {
            let leaf = parts[parts.len() - 1].to_ascii_lowercase();
            let value = parse_env_value(&leaf, map.get(&leaf), raw_value);
            map.insert(leaf, value);
        }
    }
}

fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Environment values are text; they take the type of the value they replace (so that
/// `…__COMMUNE=44064` stays text and `…__CONCURRENCY=8` a number). A key absent from the
/// file becomes a number or a boolean when it reads as one, except secrets and codes,
/// which stay text whatever they look like.
fn parse_env_value(key: &str, current: Option<&Value>, raw: &str) -> Value {
    let number = || raw.parse::<i64>().ok().map(Value::from);
    let boolean = || match raw {
        "true" => Some(Value::Bool(true)),
        "false" => Some(Value::Bool(false)),
        _ => None,
    };
    let text = || Value::String(raw.to_owned());
    match current {
        Some(Value::String(_)) => text(),
        Some(Value::Number(_)) => number().unwrap_or_else(text),
        Some(Value::Bool(_)) => boolean().unwrap_or_else(text),
        _ if is_secret_key(key) || matches!(key, "commune" | "name" | "connector" | "url") => {
            text()
        }
        _ => number().or_else(boolean).unwrap_or_else(text),
    }
}

/// Keys whose values are secrets: never quoted in messages, never guessed as numbers.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.rsplit('.').next().unwrap_or(key);
    ["password", "token", "secret", "value", "key"]
        .iter()
        .any(|word| key.contains(word))
        && !key.ends_with("_file")
}

fn check(
    raw: RawConfig,
    base_dir: &Path,
    registry: &Registry,
    problems: &mut Vec<Problem>,
) -> Config {
    let mut bus = raw.bus;
    check_bus(&mut bus, base_dir, problems);
    let mut store = raw.store;
    check_store(&mut store, base_dir, problems);
    let admin = check_admin(raw.admin, base_dir, problems);
    let publik = crate::publik::config::check(raw.publik, &bus, base_dir, problems);

    let mut connectors = Vec::new();
    let mut names = BTreeSet::new();
    for (index, table) in raw.connectors.into_iter().enumerate() {
        if let Some(instance) =
            check_connector(index, table, base_dir, registry, &mut names, problems)
        {
            connectors.push(instance);
        }
    }
    if names.is_empty() && problems.is_empty() {
        problems.push(Problem {
            key: "connectors".into(),
            message: "no connector is defined: add a [[connectors]] entry with `name` and `kind`"
                .into(),
        });
    }

    let mut routes = Vec::new();
    let mut mappings = MappingCache::default();
    for (index, raw_route) in raw.routes.into_iter().enumerate() {
        let key = |field: &str| format!("routes[{index}].{field}");
        let commune = match CommunePattern::parse(&raw_route.commune) {
            Ok(commune) => Some(commune),
            Err(message) => {
                problems.push(Problem {
                    key: key("commune"),
                    message,
                });
                None
            }
        };
        if !names.contains(&raw_route.connector) {
            let known: Vec<_> = names.iter().map(String::as_str).collect();
            problems.push(Problem {
                key: key("connector"),
                message: format!(
                    "no connector named `{}` (defined: {}): fix the name or add a [[connectors]] entry",
                    raw_route.connector,
                    if known.is_empty() { "none".into() } else { known.join(", ") }
                ),
            });
        }
        if raw_route.forms.is_empty() {
            problems.push(Problem {
                key: key("forms"),
                message:
                    "empty: list at least one form slug or glob pattern, e.g. [\"demande-acte-*\"]"
                        .into(),
            });
        }
        let mut forms = Vec::new();
        for (form_index, form) in raw_route.forms.iter().enumerate() {
            match crate::routing::FormPattern::parse(form) {
                Ok(pattern) => forms.push(pattern),
                Err(message) => problems.push(Problem {
                    key: format!("routes[{index}].forms[{form_index}]"),
                    message,
                }),
            }
        }
        let mapping = match &raw_route.mapping {
            None => None,
            Some(path) => match mappings.load(base_dir, path) {
                Ok(mapping) => Some(mapping),
                Err(message) => {
                    problems.push(Problem {
                        key: key("mapping"),
                        message,
                    });
                    None
                }
            },
        };
        if let Some(commune) = commune {
            routes.push(Route {
                commune,
                forms,
                connector: raw_route.connector,
                mapping,
            });
        }
    }
    if routes.is_empty() && problems.is_empty() {
        problems.push(Problem {
            key: "routes".into(),
            message: "no route is defined: add a [[routes]] entry with `commune`, `forms` and `connector`".into(),
        });
    }
    Config {
        bus,
        store,
        connectors,
        routes,
        shutdown: raw.shutdown,
        admin,
        publik,
    }
}

/// Each mapping file is loaded once, however many routes name it.
#[derive(Default)]
struct MappingCache {
    loaded: HashMap<PathBuf, Result<Arc<Mapping>, String>>,
}

impl MappingCache {
    fn load(&mut self, base_dir: &Path, path: &Path) -> Result<Arc<Mapping>, String> {
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            base_dir.join(path)
        };
        self.loaded
            .entry(full.clone())
            .or_insert_with(|| {
                Mapping::load(&full, &path.display().to_string())
                    .map(Arc::new)
                    .map_err(|error| {
                        format!(
                            "{error} (try it with `aiguillage map --mapping {} SAMPLE.json`)",
                            full.display()
                        )
                    })
            })
            .clone()
    }
}

fn check_bus(bus: &mut BusConfig, base_dir: &Path, problems: &mut Vec<Problem>) {
    match url::Url::parse(bus.url.expose_secret()) {
        Ok(mut parsed)
            if matches!(parsed.scheme(), "amqp" | "amqps") && parsed.host().is_some() =>
        {
            if let Some(file) = &bus.password_file {
                match read_secret_file(base_dir, file) {
                    Ok(password) => {
                        if parsed.set_password(Some(password.expose_secret())).is_ok() {
                            bus.url = SecretString::from(parsed.to_string());
                        }
                    }
                    Err(message) => problems.push(Problem {
                        key: "bus.password_file".into(),
                        message,
                    }),
                }
            }
        }
        Ok(_) => problems.push(Problem {
            key: "bus.url".into(),
            message: format!(
                "`{}` is not an AMQP URL: write amqp://user:password@host:5672/%2f (or amqps://)",
                bus.redacted_url()
            ),
        }),
        Err(error) => problems.push(Problem {
            key: "bus.url".into(),
            message: format!("invalid URL ({error}): write amqp://user:password@host:5672/%2f"),
        }),
    }
    if bus.prefetch == 0 {
        problems.push(Problem {
            key: "bus.prefetch".into(),
            message: "must be at least 1 (0 would let the broker send unlimited messages)".into(),
        });
    }
    for (key, value) in [
        ("bus.exchange", &bus.exchange),
        ("bus.status_exchange", &bus.status_exchange),
        ("bus.queue_prefix", &bus.queue_prefix),
    ] {
        if value.is_empty() || value.len() > 200 {
            problems.push(Problem {
                key: key.into(),
                message: "must be a non-empty name of at most 200 characters".into(),
            });
        }
    }
    if bus.delivery_limit == 0 {
        problems.push(Problem {
            key: "bus.delivery_limit".into(),
            message: "must be at least 1".into(),
        });
    }
}

fn check_store(store: &mut StoreConfig, base_dir: &Path, problems: &mut Vec<Problem>) {
    let raw = store.url.expose_secret().to_owned();
    if let Some(path) = raw.strip_prefix("sqlite://") {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        if path.is_empty() {
            problems.push(Problem {
                key: "store.url".into(),
                message: "the SQLite URL has no file: write sqlite://aiguillage.db".into(),
            });
            return;
        }
        if path != ":memory:" && !Path::new(path).is_absolute() {
            let absolute = base_dir.join(path);
            let mut url = format!("sqlite://{}", absolute.display());
            if !query.is_empty() {
                url.push('?');
                url.push_str(query);
            }
            store.url = SecretString::from(url);
        }
    } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        match url::Url::parse(&raw) {
            Ok(mut parsed) => {
                if let Some(file) = &store.password_file {
                    match read_secret_file(base_dir, file) {
                        Ok(password) => {
                            if parsed.set_password(Some(password.expose_secret())).is_ok() {
                                store.url = SecretString::from(parsed.to_string());
                            }
                        }
                        Err(message) => problems.push(Problem {
                            key: "store.password_file".into(),
                            message,
                        }),
                    }
                }
            }
            Err(error) => problems.push(Problem {
                key: "store.url".into(),
                message: format!("invalid URL ({error}): write postgres://user@host:5432/database"),
            }),
        }
    } else {
        problems.push(Problem {
            key: "store.url".into(),
            message: format!(
                "unsupported store `{}`: write sqlite://aiguillage.db (one instance) or postgres://user@host/db (several)",
                redact_url(&raw)
            ),
        });
    }
    if store.max_connections == 0 {
        problems.push(Problem {
            key: "store.max_connections".into(),
            message: "must be at least 1".into(),
        });
    }
}

fn check_admin(raw: RawAdmin, base_dir: &Path, problems: &mut Vec<Problem>) -> AdminConfig {
    let mut admin = AdminConfig {
        enabled: raw.enabled,
        queue_depth_interval: raw.queue_depth_interval,
        ..AdminConfig::default()
    };
    if raw.queue_depth_interval < Duration::from_secs(1) {
        problems.push(Problem {
            key: "admin.queue_depth_interval".into(),
            message: "must be at least 1s".into(),
        });
    }
    for name in &raw.public_names {
        match crate::admin_guard::check_public_name(name) {
            Ok(()) => admin.public_names.push(name.clone()),
            Err(message) => problems.push(Problem {
                key: "admin.public_names".into(),
                message,
            }),
        }
    }
    let token_given = raw.token.is_some() || raw.token_file.is_some();
    admin.token = match (raw.token, &raw.token_file) {
        (Some(_), Some(_)) => {
            problems.push(Problem {
                key: "admin.token".into(),
                message: "given twice: keep `token_file` and remove `token`".into(),
            });
            None
        }
        (Some(token), None) => Some(token),
        (None, Some(file)) => match read_secret_file(base_dir, file) {
            Ok(token) => Some(token),
            Err(message) => {
                problems.push(Problem {
                    key: "admin.token_file".into(),
                    message,
                });
                None
            }
        },
        (None, None) => None,
    };
    if let Some(token) = &admin.token {
        let token = token.expose_secret();
        let key = if raw.token_file.is_some() {
            "admin.token_file"
        } else {
            "admin.token"
        };
        if token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
            problems.push(Problem {
                key: key.into(),
                message: format!("the token is too short: use at least {MIN_ADMIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 32`)"),
            });
        } else if !token.chars().all(|c| c.is_ascii_graphic()) {
            problems.push(Problem {
                key: key.into(),
                message: "the token must be printable ASCII without spaces (it travels in an HTTP header; e.g. `openssl rand -hex 32`)".into(),
            });
        }
    }
    match raw.listen.parse::<SocketAddr>() {
        Ok(listen) => {
            admin.listen = listen;
            if admin.enabled && !listen.ip().is_loopback() && !token_given {
                problems.push(Problem {
                    key: "admin.listen".into(),
                    message: format!(
                        "`{listen}` is not a loopback address, and the admin server would answer anyone who reaches it: set `admin.token_file` (or `admin.token`) to require a bearer token, or listen on 127.0.0.1"
                    ),
                });
            }
        }
        Err(_) => problems.push(Problem {
            key: "admin.listen".into(),
            message: format!(
                "`{}` is not an address and port: write IP:port, e.g. \"{DEFAULT_ADMIN_LISTEN}\" (a host name is not accepted)",
                raw.listen
            ),
        }),
    }
    admin
}

/// The shortest bearer token the admin server accepts.
const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// A secret read from its file, the SDK's way (connectors read theirs the same way).
fn read_secret_file(base_dir: &Path, file: &Path) -> Result<SecretString, String> {
    aiguillage_connector::secret::resolve("password", None, Some(file), &Setup::new("", base_dir))
        .map_err(|error| match error {
            ConnectorConfigError::Invalid { message, .. }
            | ConnectorConfigError::MissingSecret { message, .. } => message,
            other => other.to_string(),
        })
}

fn check_connector(
    index: usize,
    table: Value,
    base_dir: &Path,
    registry: &Registry,
    names: &mut BTreeSet<String>,
    problems: &mut Vec<Problem>,
) -> Option<ConnectorInstance> {
    let key = |field: &str| format!("connectors[{index}].{field}");
    let Value::Object(mut table) = table else {
        problems.push(Problem {
            key: format!("connectors[{index}]"),
            message: "must be a table ([[connectors]] with name, kind and the kind's keys)".into(),
        });
        return None;
    };
    let common_table: serde_json::Map<String, Value> = COMMON_KEYS
        .iter()
        .filter_map(|k| table.remove(*k).map(|v| ((*k).to_owned(), v)))
        .collect();
    let common: Common = match serde_path_to_error::deserialize(Value::Object(common_table)) {
        Ok(common) => common,
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner().to_string();
            let message = if inner.starts_with("missing field `") {
                format!("{inner}: every [[connectors]] entry needs `name` and `kind`")
            } else {
                inner
            };
            problems.push(Problem {
                key: if path == "." {
                    format!("connectors[{index}]")
                } else {
                    key(&path)
                },
                message,
            });
            return None;
        }
    };
    if let Err(message) = check_connector_name(&common.name) {
        problems.push(Problem {
            key: key("name"),
            message,
        });
        return None;
    }
    if !names.insert(common.name.clone()) {
        problems.push(Problem {
            key: key("name"),
            message: format!("`{}` is already the name of another connector: names must be unique (they name the queues)", common.name),
        });
        return None;
    }
    if common.concurrency == 0 || common.concurrency > 1024 {
        problems.push(Problem {
            key: key("concurrency"),
            message: "must be between 1 and 1024".into(),
        });
    }
    if common.retry.max_attempts == 0 {
        problems.push(Problem {
            key: key("retry.max_attempts"),
            message: "must be at least 1 (1 means no retry)".into(),
        });
    }
    if common.retry.initial.is_zero() || common.retry.max_delay < common.retry.initial {
        problems.push(Problem {
            key: key("retry"),
            message: "`initial` must be positive and `max_delay` at least `initial`".into(),
        });
    }
    if common.breaker.probe_initial.is_zero()
        || common.breaker.probe_max < common.breaker.probe_initial
    {
        problems.push(Problem {
            key: key("breaker"),
            message: "`probe_initial` must be positive and `probe_max` at least `probe_initial`"
                .into(),
        });
    }
    let Some(kind) = registry.kind(&common.kind) else {
        problems.push(Problem {
            key: key("kind"),
            message: format!(
                "unknown connector kind `{}` (known: {})",
                common.kind,
                registry.names().join(", ")
            ),
        });
        return None;
    };
    let setup = Setup::new(&common.name, base_dir);
    match kind.build(Value::Object(table), &setup) {
        Ok(connector) => Some(ConnectorInstance {
            name: common.name,
            kind: common.kind,
            concurrency: common.concurrency.clamp(1, 1024),
            retry: common.retry,
            breaker: common.breaker,
            connector,
        }),
        Err(error) => {
            let (inner_key, message) = match &error {
                ConnectorConfigError::Invalid { key, message }
                | ConnectorConfigError::MissingSecret { key, message } => {
                    (key.clone(), message.clone())
                }
                other => (String::new(), other.to_string()),
            };
            // serde quotes the offending value: never a secret's.
            // An `auth` table is deserialised as a whole: its errors carry no finer key.
            let secretive =
                is_secret_key(&inner_key) || inner_key == "auth" || inner_key.starts_with("auth.");
            let message = if secretive && message.contains('`') && message.starts_with("invalid") {
                "invalid value (not shown: it is a secret); give it as text".to_owned()
            } else {
                message
            };
            problems.push(Problem {
                key: if inner_key.is_empty() {
                    format!("connectors[{index}]")
                } else {
                    key(&inner_key)
                },
                message,
            });
            None
        }
    }
}

/// Connector names become queue names and metric labels: keep them plain.
fn check_connector_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid connector name: use lowercase letters, digits, `-` and `_` (at most 100), e.g. `clisson-cityweb`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn default_retry_policy_spreads_over_about_a_day() {
        let policy = RetryPolicy::default();
        let tiers = policy.tiers();
        let total: Duration = (1..policy.max_attempts)
            .map(|attempt| tiers[policy.tier_after(attempt, tiers.len())])
            .sum();
        assert!(total > Duration::from_secs(20 * 3600), "{total:?}");
        assert!(total < Duration::from_secs(26 * 3600), "{total:?}");
        assert_eq!(*tiers.last().unwrap(), Duration::from_secs(6 * 3600));
    }

    #[test]
    fn tiers_stop_growing_at_max_delay() {
        let policy = RetryPolicy {
            max_attempts: 6,
            initial: Duration::from_millis(100),
            max_delay: Duration::from_millis(250),
        };
        assert_eq!(
            policy.tiers(),
            vec![
                Duration::from_millis(100),
                Duration::from_millis(200),
                Duration::from_millis(250)
            ]
        );
        assert_eq!(policy.tier_after(1, 3), 0);
        assert_eq!(policy.tier_after(5, 3), 2);
    }

    #[test]
    fn retry_queues_are_named_by_their_delay() {
        let bus = BusConfig::default();
        assert_eq!(
            bus.retry_queue("famille", Duration::from_secs(300)),
            "aiguillage.famille.retry.5m"
        );
        assert_eq!(
            bus.retry_queue("famille", Duration::from_millis(1500)),
            "aiguillage.famille.retry.1500ms"
        );
        assert_eq!(
            bus.retry_queue("famille", Duration::from_secs(6 * 3600)),
            "aiguillage.famille.retry.6h"
        );
        assert_eq!(
            bus.retry_queue("famille", Duration::from_secs(90)),
            "aiguillage.famille.retry.90s"
        );
    }

    #[test]
    fn redaction_hides_the_password() {
        assert_eq!(
            redact_url("amqp://guest:s3cret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
    }

    #[test]
    fn connector_names_are_plain() {
        assert!(check_connector_name("clisson-cityweb").is_ok());
        assert!(check_connector_name("Clisson").is_err());
        assert!(check_connector_name("a.b").is_err());
        assert!(check_connector_name("").is_err());
    }
}
