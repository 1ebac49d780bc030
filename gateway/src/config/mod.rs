// Over 600 lines: loading and checking every section of the file; sections, environment overrides and checks split out in phase B.
//! The gateway's configuration: one TOML file, every key overridable by the environment.
//!
//! `AIGUILLAGE__BUS__URL=…` overrides `bus.url`; entries of `[[connectors]]` and
//! `[[routes]]` are addressed by index (`AIGUILLAGE__ROUTES__0__COMMUNE`) and connectors
//! also by name (`AIGUILLAGE__CONNECTORS__CLISSON_FAMILLE__URL` for `clisson-famille`).
//! Every problem is reported at once, each naming where the key is written (file, line and
//! column, or the environment variable), the key and the fix (see `source`).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aiguillage_connector::{ConfigError as ConnectorConfigError, Connector, ConnectorKind, Setup};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use aiguillage_bus::{redact_url, BusConfig, Problem};

pub mod source;

use crate::config::source::{deserialize_each, is_secret_key, Location, Sources, SyntaxError};
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
    pub publik: aiguillage_publik::config::PublikConfig,
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

/// A configuration the gateway refuses to start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file cannot be read.
    #[error("impossible de lire la configuration {file} : {message}")]
    Unreadable {
        /// The configuration file.
        file: PathBuf,
        /// Why.
        message: String,
    },
    /// The file is not valid TOML.
    #[error("{}", render_syntax(file, errors))]
    Syntax {
        /// The configuration file.
        file: PathBuf,
        /// Every syntax error found, in file order.
        errors: Vec<SyntaxError>,
    },
    /// The file was read but some keys are wrong.
    #[error("{}", render_problems(file, problems, locations))]
    Invalid {
        /// The configuration file.
        file: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
        /// Where the key of each problem was given, when known (same order).
        locations: Vec<Option<Location>>,
    },
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn render_syntax(file: &Path, errors: &[SyntaxError]) -> String {
    let mut out = format!(
        "la configuration {} n'est pas du TOML valide ({}) :",
        file.display(),
        plural(errors.len(), "erreur", "erreurs")
    );
    for error in errors {
        out.push_str(&format!(
            "\n  {}:{}:{}: {error}",
            file.display(),
            error.line,
            error.column
        ));
    }
    out
}

fn render_problems(file: &Path, problems: &[Problem], locations: &[Option<Location>]) -> String {
    let mut out = format!(
        "la configuration {} a {} :",
        file.display(),
        plural(problems.len(), "problème", "problèmes")
    );
    for (index, problem) in problems.iter().enumerate() {
        let at = match locations.get(index).cloned().flatten() {
            Some(Location::File { line, column }) => format!("{}:{line}:{column}", file.display()),
            Some(Location::Env(variable)) => {
                format!("{} (variable d'environnement {variable})", file.display())
            }
            None => file.display().to_string(),
        };
        out.push_str(&format!(
            "\n  {at}: `{}` : {}",
            problem.key, problem.message
        ));
    }
    out
}

impl ConfigFileError {
    /// The problems found (empty when the file could not be read or parsed at all).
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Unreadable { .. } | Self::Syntax { .. } => &[],
            Self::Invalid { problems, .. } => problems,
        }
    }

    /// Where the key of each problem was given (same order as [`Self::problems`]).
    pub fn locations(&self) -> &[Option<Location>] {
        match self {
            Self::Unreadable { .. } | Self::Syntax { .. } => &[],
            Self::Invalid { locations, .. } => locations,
        }
    }
}

/// The configuration as written, section by section (each deserialised on its own, so that
/// a problem in one does not hide those of the others).
struct RawConfig {
    bus: BusConfig,
    store: StoreConfig,
    connectors: Vec<Value>,
    /// `None` for an entry that could not be read (its problems are already reported): the
    /// others keep their index.
    routes: Vec<Option<RawRoute>>,
    shutdown: ShutdownConfig,
    admin: RawAdmin,
    publik: aiguillage_publik::config::RawPublik,
}

/// The sections of the file.
const SECTIONS: [&str; 7] = [
    "bus",
    "store",
    "connectors",
    "routes",
    "shutdown",
    "admin",
    "publik",
];

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
                "fichier introuvable (donnez le chemin de la configuration TOML de la passerelle avec --config)"
                    .into(),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|error| unreadable(error.to_string()))?;
        let mut sources = Sources::parse(&text).map_err(|errors| ConfigFileError::Syntax {
            file: path.to_path_buf(),
            errors,
        })?;
        let (scalar_env, entry_env) = split_env(env);
        for variable in scalar_env.keys() {
            let key = variable
                .split("__")
                .skip(1)
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            sources.record_env(key, variable.clone());
        }
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
        apply_entry_overrides(&mut tree, &entry_env, &mut sources, &mut problems);
        let raw = read_sections(tree, &mut problems);
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let config = check(raw, &base_dir, registry, &mut problems);
        // A value of the wrong type is removed to check the rest, and a check may then find
        // the key missing: the operator needs only the first message about that key.
        let mut wrong: BTreeSet<String> = BTreeSet::new();
        problems.retain(|problem| {
            if wrong.contains(&problem.key) {
                return false;
            }
            if problem.message.starts_with("type incorrect")
                || problem.message.contains("écrit comme un nombre")
            {
                wrong.insert(problem.key.clone());
            }
            true
        });
        if problems.is_empty() {
            Ok(config)
        } else {
            let mut located: Vec<(Problem, Option<Location>)> = problems
                .into_iter()
                .map(|problem| {
                    let unknown_key = problem.message.starts_with("clé inconnue");
                    let location = sources.locate(&problem.key, unknown_key);
                    (problem, location)
                })
                .collect();
            // In the order of the file, so that the operator fixes it from top to bottom;
            // those set by the environment, or not written at all, come last.
            located.sort_by_key(|(_, location)| match location {
                Some(Location::File { line, column }) => (0, *line, *column),
                Some(Location::Env(_)) => (1, 0, 0),
                None => (2, 0, 0),
            });
            let (problems, locations) = located.into_iter().unzip();
            Err(ConfigFileError::Invalid {
                file: path.to_path_buf(),
                problems,
                locations,
            })
        }
    }
}

/// Reads each section on its own, so that every problem of every section is reported.
fn read_sections(tree: Value, problems: &mut Vec<Problem>) -> RawConfig {
    let mut root = match tree {
        Value::Object(root) => root,
        _ => serde_json::Map::new(),
    };
    let known: Vec<String> = SECTIONS.iter().map(|s| (*s).to_owned()).collect();
    let unknown: Vec<String> = root
        .keys()
        .filter(|key| !SECTIONS.contains(&key.as_str()))
        .cloned()
        .collect();
    for key in unknown {
        root.remove(&key);
        let message = match crate::config::source::closest(&key, &known) {
            Some(best) => format!("section inconnue `{key}` ; vouliez-vous dire `{best}` ?"),
            None => format!(
                "section inconnue `{key}` (sections possibles : {})",
                known.join(", ")
            ),
        };
        problems.push(Problem { key, message });
    }
    let mut section = |name: &str| root.remove(name);
    fn table<T: serde::de::DeserializeOwned + Default>(
        value: Option<Value>,
        name: &str,
        problems: &mut Vec<Problem>,
    ) -> T {
        let label = format!("dans [{name}]");
        value
            .and_then(|value| deserialize_each(value, name, &label, problems))
            .unwrap_or_default()
    }
    let bus = table(section("bus"), "bus", problems);
    let store = table(section("store"), "store", problems);
    let shutdown = table(section("shutdown"), "shutdown", problems);
    let admin = table(section("admin"), "admin", problems);
    let publik = table(section("publik"), "publik", problems);
    let mut list = |name: &str, problems: &mut Vec<Problem>| match section(name) {
        None => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            problems.push(Problem {
                key: name.into(),
                message: format!(
                    "doit être une liste de tables : écrivez chaque entrée sous un en-tête [[{name}]]"
                ),
            });
            Vec::new()
        }
    };
    let connectors = list("connectors", problems);
    let routes = list("routes", problems)
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            deserialize_each(
                entry,
                &format!("routes[{index}]"),
                "dans [[routes]]",
                problems,
            )
        })
        .collect();
    RawConfig {
        bus,
        store,
        connectors,
        routes,
        shutdown,
        admin,
        publik,
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
    sources: &mut Sources,
    problems: &mut Vec<Problem>,
) {
    for (parts, raw_value) in entries {
        let variable = format!("{ENV_PREFIX}__{}", parts.join("__"));
        if parts.len() < 3 {
            problems.push(Problem {
                key: variable,
                message: "nommez une entrée et une clé, par exemple AIGUILLAGE__CONNECTORS__<NOM>__URL ou AIGUILLAGE__ROUTES__0__COMMUNE".into(),
            });
            continue;
        }
        let section = parts[0].to_ascii_lowercase();
        let Some(list) = tree.get_mut(&section).and_then(Value::as_array_mut) else {
            problems.push(Problem {
                key: variable,
                message: format!("le fichier n'a aucune entrée [[{section}]] à remplacer"),
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
        let Some((index, entry)) = index.and_then(|i| list.get_mut(i).map(|entry| (i, entry)))
        else {
            problems.push(Problem {
                key: variable,
                message: format!("aucune entrée [[{section}]] `{selector}` (donnez son rang à partir de 0 ou, pour un connecteur, son nom en capitales avec `_` pour `-`)"),
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
        let keys: Vec<String> = parts[2..].iter().map(|p| p.to_ascii_lowercase()).collect();
        sources.record_env(format!("{section}[{index}].{}", keys.join(".")), variable);
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
    let publik = aiguillage_publik::config::check(raw.publik, &bus, base_dir, problems);

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
            message: "aucun connecteur n'est défini : ajoutez une entrée [[connectors]] avec `name` et `kind`"
                .into(),
        });
    }

    let mut routes = Vec::new();
    let mut mappings = MappingCache::default();
    for (index, raw_route) in raw.routes.into_iter().enumerate() {
        let Some(raw_route) = raw_route else {
            continue;
        };
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
                    "aucun connecteur nommé `{}` (définis : {}) : corrigez le nom ou ajoutez une entrée [[connectors]]",
                    raw_route.connector,
                    if known.is_empty() { "aucun".into() } else { known.join(", ") }
                ),
            });
        }
        if raw_route.forms.is_empty() {
            problems.push(Problem {
                key: key("forms"),
                message:
                    "vide : donnez au moins un identifiant de formulaire ou un motif, par exemple [\"demande-acte-*\"]"
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
            message: "aucune route n'est définie : ajoutez une entrée [[routes]] avec `commune`, `forms` et `connector`".into(),
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
                            "{error} (essayez-le avec `aiguillage map --mapping {} EXEMPLE.json`)",
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
                "`{}` n'est pas une URL AMQP : écrivez amqp://user:password@host:5672/%2f (ou amqps://)",
                bus.redacted_url()
            ),
        }),
        Err(error) => problems.push(Problem {
            key: "bus.url".into(),
            message: format!("URL invalide ({error}) : écrivez amqp://user:password@host:5672/%2f"),
        }),
    }
    if bus.prefetch == 0 {
        problems.push(Problem {
            key: "bus.prefetch".into(),
            message:
                "doit valoir au moins 1 (0 laisserait le broker envoyer des messages sans limite)"
                    .into(),
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
                message: "doit être un nom non vide d'au plus 200 caractères".into(),
            });
        }
    }
    if bus.delivery_limit == 0 {
        problems.push(Problem {
            key: "bus.delivery_limit".into(),
            message: "doit valoir au moins 1".into(),
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
                message: "l'URL SQLite n'a pas de fichier : écrivez sqlite://aiguillage.db".into(),
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
                message: format!(
                    "URL invalide ({error}) : écrivez postgres://user@host:5432/database"
                ),
            }),
        }
    } else {
        problems.push(Problem {
            key: "store.url".into(),
            message: format!(
                "stockage non pris en charge `{}` : écrivez sqlite://aiguillage.db (une instance) ou postgres://user@host/db (plusieurs)",
                redact_url(&raw)
            ),
        });
    }
    if store.max_connections == 0 {
        problems.push(Problem {
            key: "store.max_connections".into(),
            message: "doit valoir au moins 1".into(),
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
            message: "doit valoir au moins 1s".into(),
        });
    }
    for name in &raw.public_names {
        match crate::admin::guard::check_public_name(name) {
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
                message: "donné deux fois : gardez `token_file` et retirez `token`".into(),
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
                message: format!("le jeton est trop court : utilisez au moins {MIN_ADMIN_TOKEN_CHARS} caractères (par exemple `openssl rand -hex 32`)"),
            });
        } else if !token.chars().all(|c| c.is_ascii_graphic()) {
            problems.push(Problem {
                key: key.into(),
                message: "le jeton doit être en ASCII imprimable sans espace (il voyage dans un en-tête HTTP ; par exemple `openssl rand -hex 32`)".into(),
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
                        "`{listen}` n'est pas une adresse locale (loopback), et le serveur d'administration répondrait à quiconque l'atteint : définissez `admin.token_file` (ou `admin.token`) pour exiger un jeton, ou écoutez sur 127.0.0.1"
                    ),
                });
            }
        }
        Err(_) => problems.push(Problem {
            key: "admin.listen".into(),
            message: format!(
                "`{}` n'est pas une adresse et un port : écrivez IP:port, par exemple \"{DEFAULT_ADMIN_LISTEN}\" (un nom d'hôte n'est pas accepté)",
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
            message: "doit être une table ([[connectors]] avec name, kind et les clés du type)"
                .into(),
        });
        return None;
    };
    // Named by its name when it has one: the operator knows their connectors by name.
    let label = match table.get("name").and_then(Value::as_str) {
        Some(name) => format!("dans [[connectors]] `{name}`"),
        None => format!("dans [[connectors]] `connectors[{index}]`"),
    };
    let common_table: serde_json::Map<String, Value> = COMMON_KEYS
        .iter()
        .filter_map(|k| table.remove(*k).map(|v| ((*k).to_owned(), v)))
        .collect();
    let common: Option<Common> = deserialize_each(
        Value::Object(common_table),
        &format!("connectors[{index}]"),
        &label,
        problems,
    );
    let Some(common) = common else {
        if let Some(last) = problems.last_mut() {
            if last.message.starts_with("la clé `name` manque")
                || last.message.starts_with("la clé `kind` manque")
            {
                last.message
                    .push_str(" : chaque entrée [[connectors]] a besoin de `name` et `kind`");
            }
        }
        return None;
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
            message: format!("`{}` est déjà le nom d'un autre connecteur : les noms doivent être uniques (ils nomment les files)", common.name),
        });
        return None;
    }
    if common.concurrency == 0 || common.concurrency > 1024 {
        problems.push(Problem {
            key: key("concurrency"),
            message: "doit être entre 1 et 1024".into(),
        });
    }
    if common.retry.max_attempts == 0 {
        problems.push(Problem {
            key: key("retry.max_attempts"),
            message: "doit valoir au moins 1 (1 : aucune nouvelle tentative)".into(),
        });
    }
    if common.retry.initial.is_zero() || common.retry.max_delay < common.retry.initial {
        problems.push(Problem {
            key: key("retry"),
            message: "`initial` doit être positif et `max_delay` au moins égal à `initial`".into(),
        });
    }
    if common.breaker.probe_initial.is_zero()
        || common.breaker.probe_max < common.breaker.probe_initial
    {
        problems.push(Problem {
            key: key("breaker"),
            message:
                "`probe_initial` doit être positif et `probe_max` au moins égal à `probe_initial`"
                    .into(),
        });
    }
    let Some(kind) = registry.kind(&common.kind) else {
        problems.push(Problem {
            key: key("kind"),
            message: {
                let known: Vec<String> = registry.names().iter().map(|n| (*n).to_owned()).collect();
                let guess = crate::config::source::closest(&common.kind, &known)
                    .map(|best| format!(" ; vouliez-vous dire `{best}` ?"))
                    .unwrap_or_default();
                format!(
                    "type de connecteur inconnu `{}` (connus : {}){guess}",
                    common.kind,
                    known.join(", ")
                )
            },
        });
        return None;
    };
    let setup = Setup::new(&common.name, base_dir);
    let connector = build_connector(index, kind, table, &setup, &label, problems)?;
    Some(ConnectorInstance {
        name: common.name,
        kind: common.kind,
        concurrency: common.concurrency.clamp(1, 1024),
        retry: common.retry,
        breaker: common.breaker,
        connector,
    })
}

/// Builds a connector from its kind's keys, reporting each problem. A misspelt key is
/// removed and the build tried again, so that every misspelt key is reported at once (the
/// kind refuses them while deserialising, before it builds anything).
fn build_connector(
    index: usize,
    kind: &ConnectorKind,
    mut table: serde_json::Map<String, Value>,
    setup: &Setup,
    label: &str,
    problems: &mut Vec<Problem>,
) -> Option<Arc<dyn Connector>> {
    let key = |field: &str| {
        if field.is_empty() {
            format!("connectors[{index}]")
        } else {
            format!("connectors[{index}].{field}")
        }
    };
    for _ in 0..64 {
        let error = match kind.build(Value::Object(table.clone()), setup) {
            Ok(connector) => return Some(connector),
            Err(error) => error,
        };
        let (inner_key, message) = match &error {
            ConnectorConfigError::Invalid { key, message }
            | ConnectorConfigError::MissingSecret { key, message } => {
                (key.clone(), message.clone())
            }
            other => (String::new(), other.to_string()),
        };
        let full_key = key(&inner_key);
        // A nested table (`sftp`, `mail`) is named by its own path. In the entry itself,
        // the gateway's own keys are known too: `concurency` is their misspelling.
        let (label, extra): (String, &[&str]) = if inner_key.contains('.') {
            (crate::config::source::table_label(&full_key), &[])
        } else {
            (label.to_owned(), &COMMON_KEYS)
        };
        let message = crate::config::source::explain(&full_key, &label, &message, extra);
        let unknown = message.starts_with("clé inconnue");
        problems.push(Problem {
            key: full_key,
            message,
        });
        let mut value = Value::Object(table);
        if !unknown || !crate::config::source::remove_dotted(&mut value, &inner_key) {
            return None;
        }
        let Value::Object(rest) = value else {
            return None;
        };
        table = rest;
    }
    None
}

/// Connector names become queue names and metric labels: keep them plain.
fn check_connector_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        return Err(format!(
            "`{name}` n'est pas un nom de connecteur valide : lettres minuscules, chiffres, `-` et `_` (100 au plus), par exemple `clisson-cityweb`"
        ));
    }
    // `<prefix>.unrouted` is the queue of the démarches no route takes, and `unrouted` the
    // name their discards are recorded under: a connector of that name would share both.
    if RESERVED_CONNECTOR_NAMES.contains(&name) {
        return Err(format!(
            "`{name}` est réservé par la passerelle (la file `…{name}` des démarches sans route) : choisissez un autre nom, par exemple `clisson-{name}`"
        ));
    }
    Ok(())
}

/// Names a connector may not take (see [`check_connector_name`]).
const RESERVED_CONNECTOR_NAMES: &[&str] = &["unrouted"];

#[cfg(test)]
mod tests;
