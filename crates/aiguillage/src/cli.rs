// Over 600 lines: every subcommand of the standard CLI; one module per subcommand in phase B.
//! The command line: `run`, `check`, `publish`, `dead`, `unrouted`, `history`, `map` and
//! `demo`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use secrecy::ExposeSecret;

use aiguillage_gateway::config::Config;
use aiguillage_gateway::operator::actions::{
    DeadQuery, DiscardRequest, Held, Operator, ReplayRequest, Report,
};
use aiguillage_gateway::operator::dead::{self, DeadError, Filter, Progress, Selection};
use aiguillage_gateway::registry::Registry;
use aiguillage_gateway::routing::Router;
use aiguillage_gateway::telemetry::{self, LogFormat};

/// The configuration `run` and `check` read when neither `--config` nor
/// `AIGUILLAGE_CONFIG` is given: where the Debian package installs it.
pub const DEFAULT_CONFIG: &str = "/etc/aiguillage/gateway.toml";

/// Aiguillage: delivers the démarches of a Publik portal into the communes' business software.
#[derive(Debug, Parser)]
#[command(name = "aiguillage", version, about, long_about = None)]
pub struct Cli {
    /// Log format: `human` (default) or `json` (one object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "AIGUILLAGE_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway: consume démarches and deliver them until SIGTERM or SIGINT.
    Run {
        /// The gateway's TOML configuration (keys overridable by AIGUILLAGE__SECTION__KEY variables).
        #[arg(long, short, env = "AIGUILLAGE_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Check a configuration without running: exit 0 when valid, 1 with every problem listed.
    Check {
        /// The gateway's TOML configuration.
        #[arg(long, short, env = "AIGUILLAGE_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Publish envelopes (JSON files) on the bus as the portal does, each confirmed by the broker.
    Publish {
        /// The gateway's TOML configuration (for the bus URL and exchange).
        #[arg(long, short, env = "AIGUILLAGE_CONFIG")]
        config: PathBuf,
        /// Envelope files: `{"id", "commune", "form", "submitted_at", "formdata"}`.
        #[arg(required = true)]
        envelopes: Vec<PathBuf>,
    },
    /// Dead letters: the démarches a connector gave up on (list, replay, discard).
    ///
    /// A dead letter is `rejected` (the target or the gateway refused it for good) or `dead`
    /// (the target kept failing until the retry policy gave up). It stays on the bus until
    /// you replay or discard it; nothing expires by itself. See docs/dead-letters.md.
    Dead {
        /// What to do with them.
        #[command(subcommand)]
        action: DeadAction,
    },
    /// Unrouted démarches: those that no route takes, kept in the unrouted queue (list,
    /// replay, discard).
    ///
    /// A démarche is unrouted when no [[routes]] entry takes its commune and form. It waits
    /// until you replay it (once a route takes it and the gateway runs with that route) or
    /// discard it; nothing expires by itself. See docs/dead-letters.md.
    Unrouted {
        /// What to do with them.
        #[command(subcommand)]
        action: UnroutedAction,
    },
    /// The whole history of a démarche, found by its number (display_id, e.g. 12-42) or its
    /// envelope id: with each connector, its status, attempts, reference, every failed
    /// attempt and discard (what the dashboard's search and /api/deliveries show).
    History {
        /// The gateway's TOML configuration (for the store).
        #[arg(long, short, env = "AIGUILLAGE_CONFIG")]
        config: PathBuf,
        /// The démarche's number or envelope id.
        term: String,
        /// The JSON of /api/deliveries instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Try a mapping on a sample démarche, without any broker: prints the document it makes
    /// (JSON) or the first error, with the field and the value. With `--config` and
    /// `--connector`, the connector then checks the document as it would before delivering
    /// it (its shape, its legal rules), without delivering it.
    Map {
        /// The mapping file (TOML).
        #[arg(long, short)]
        mapping: PathBuf,
        /// The sample: an envelope (`{"id", "commune", "form", "submitted_at", "formdata"}`)
        /// or a bare w.c.s. form data export.
        sample: PathBuf,
        /// The commune (INSEE code) of the démarche: required when the sample is bare form
        /// data.
        #[arg(long)]
        commune: Option<String>,
        /// The form slug of the démarche: required when the sample is bare form data.
        #[arg(long)]
        form: Option<String>,
        /// The gateway's configuration, to check the document with `--connector`.
        #[arg(long, short, requires = "connector")]
        config: Option<PathBuf>,
        /// The connector (its `name` in `--config`) whose checks the document must pass.
        #[arg(long, requires = "config")]
        connector: Option<String>,
    },
    /// Show the gateway at work on this machine's RabbitMQ (in French): démarches of two
    /// communes become Cityweb files (through the shipped mapping) or bills of a local
    /// billing API; a refused one becomes a dead letter, is fixed and replayed.
    Demo {
        /// The broker to use.
        #[arg(
            long,
            env = "AIGUILLAGE__BUS__URL",
            default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
        )]
        amqp_url: String,
        /// Where the demo writes its configuration, store and delivered files.
        #[arg(long, default_value = "demo-output")]
        dir: PathBuf,
    },
}

/// What to do with dead letters.
#[derive(Debug, Subcommand)]
pub enum DeadAction {
    /// List the dead letters, leaving them where they are: id, commune, form, connector,
    /// status, attempts, age and reason of each.
    ///
    /// A body that is not a valid envelope is listed with the id `unreadable`.
    List {
        /// The gateway's TOML configuration (for the bus and the connectors).
        #[arg(long, short, env = "AIGUILLAGE_CONFIG")]
        config: PathBuf,
        /// Only the dead letter of this envelope id (`unreadable`: the invalid bodies).
        #[arg(long)]
        id: Option<String>,
        /// Which dead letters.
        #[command(flatten)]
        filter: DeadFilter,
        /// One JSON object per line instead of a table (with the error history of each).
        #[arg(long)]
        json: bool,
    },
    /// Send dead letters back to their connector for delivery, with the attempt count reset
    /// (fix the cause first). The others stay in the dead letters.
    ///
    /// Say which: --id, a filter, or --all for every one. A body that is not a valid
    /// envelope, or a démarche already delivered, is skipped (discard it).
    Replay {
        /// The gateway's TOML configuration (for the bus, the store and the connectors).
        #[arg(long, short, env = "AIGUILLAGE_CONFIG")]
        config: PathBuf,
        /// The dead letter of this envelope id.
        #[arg(long)]
        id: Option<String>,
        /// Which dead letters.
        #[command(flatten)]
        filter: DeadFilter,
        /// Every dead letter (of the --connector, --commune or --form given, if any).
        #[arg(long)]
        all: bool,
    },
    /// Remove dead letters for good, recording in the store what, why, who and when.
    ///
    /// Say which: --id or a filter (there is no --all: a discard cannot be undone).
    Discard {
        /// The gateway's TOML configuration (for the bus, the store and the connectors).
        #[arg(long, short, env = "AIGUILLAGE_CONFIG")]
        config: PathBuf,
        /// The dead letter of this envelope id (`unreadable`: the invalid bodies).
        #[arg(long)]
        id: Option<String>,
        /// Which dead letters.
        #[command(flatten)]
        filter: DeadFilter,
        /// Why they are discarded, kept in the store (e.g. "sent on paper, ticket 1234").
        #[arg(long)]
        reason: String,
        /// Who discards them, kept in the store (default: $USER, else "unknown").
        #[arg(long)]
        by: Option<String>,
    },
}

/// What to do with unrouted démarches (the options of `dead`, without --connector).
#[derive(Debug, Subcommand)]
pub enum UnroutedAction {
    /// List the unrouted démarches, leaving them where they are: id, commune, form, routing
    /// key, age and why no route takes each.
    List {
        /// The gateway's TOML configuration (for the bus and the routes).
        #[arg(long, short, env = "AIGUILLAGE_CONFIG")]
        config: PathBuf,
        /// Only the démarche of this envelope id (`unreadable`: the invalid bodies).
        #[arg(long)]
        id: Option<String>,
        /// Which démarches.
        #[command(flatten)]
        filter: UnroutedFilter,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Publish unrouted démarches again on the démarches exchange, under the routing key
    /// the portal used (add the route and restart the gateway first). One that no route of
    /// the configuration takes yet stays where it is, and is reported.
    ///
    /// Say which: --id, a filter, or --all for every one.
    Replay {
        /// The gateway's TOML configuration (for the bus and the routes).
        #[arg(long, short, env = "AIGUILLAGE_CONFIG")]
        config: PathBuf,
        /// The démarche of this envelope id.
        #[arg(long)]
        id: Option<String>,
        /// Which démarches.
        #[command(flatten)]
        filter: UnroutedFilter,
        /// Every unrouted démarche (of the --commune or --form given, if any).
        #[arg(long)]
        all: bool,
    },
    /// Remove unrouted démarches for good, recording in the store what (with the body's
    /// SHA-256), why, who and when.
    ///
    /// Say which: --id or a filter (there is no --all: a discard cannot be undone).
    Discard {
        /// The gateway's TOML configuration (for the bus, the store and the routes).
        #[arg(long, short, env = "AIGUILLAGE_CONFIG")]
        config: PathBuf,
        /// The démarche of this envelope id (`unreadable`: the invalid bodies).
        #[arg(long)]
        id: Option<String>,
        /// Which démarches.
        #[command(flatten)]
        filter: UnroutedFilter,
        /// Why they are discarded, kept in the store (e.g. "commune hors agglomération").
        #[arg(long)]
        reason: String,
        /// Who discards them, kept in the store (default: $USER, else "unknown").
        #[arg(long)]
        by: Option<String>,
    },
}

/// The filters of the `unrouted` verbs; every one given must hold.
#[derive(Debug, Clone, Default, Args)]
pub struct UnroutedFilter {
    /// Only those of this commune (INSEE code, e.g. 44043).
    #[arg(long)]
    pub commune: Option<String>,
    /// Only those of this form (slug, e.g. permis-de-construire).
    #[arg(long)]
    pub form: Option<String>,
}

impl From<UnroutedFilter> for DeadFilter {
    fn from(filter: UnroutedFilter) -> Self {
        Self {
            connector: None,
            commune: filter.commune,
            form: filter.form,
        }
    }
}

impl From<UnroutedAction> for DeadAction {
    /// The `dead` verb that does the same on the unrouted queue.
    fn from(action: UnroutedAction) -> Self {
        match action {
            UnroutedAction::List {
                config,
                id,
                filter,
                json,
            } => Self::List {
                config,
                id,
                filter: filter.into(),
                json,
            },
            UnroutedAction::Replay {
                config,
                id,
                filter,
                all,
            } => Self::Replay {
                config,
                id,
                filter: filter.into(),
                all,
            },
            UnroutedAction::Discard {
                config,
                id,
                filter,
                reason,
                by,
            } => Self::Discard {
                config,
                id,
                filter: filter.into(),
                reason,
                by,
            },
        }
    }
}

/// The filters common to the `dead` verbs; every one given must hold.
#[derive(Debug, Clone, Default, Args)]
pub struct DeadFilter {
    /// Only the dead letters of this connector (a [[connectors]] name).
    #[arg(long)]
    pub connector: Option<String>,
    /// Only those of this commune (INSEE code, e.g. 44043).
    #[arg(long)]
    pub commune: Option<String>,
    /// Only those of this form (slug, e.g. demande-acte-naissance).
    #[arg(long)]
    pub form: Option<String>,
}

impl DeadFilter {
    fn with_id(self, id: Option<String>) -> Filter {
        Filter {
            id,
            connector: self.connector,
            commune: self.commune,
            form: self.form,
        }
    }
}

/// Parses the command line and runs the verb with the connector kinds of `registry`; the
/// process's exit code.
pub fn main(registry: Registry) -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own report: only problems are logged unless RUST_LOG says more.
    let default_filter = match cli.command {
        Command::Demo { .. }
        | Command::Dead { .. }
        | Command::Unrouted { .. }
        | Command::Map { .. }
        | Command::History { .. } => "warn,lapin=error",
        _ => telemetry::DEFAULT_FILTER,
    };
    telemetry::init(cli.log_format, default_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("erreur : impossible de démarrer le moteur asynchrone : {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command, &registry)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("erreur : {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one verb.
///
/// # Errors
///
/// Whatever stops the verb, with context for the operator.
pub async fn execute(command: Command, registry: &Registry) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { config } => {
            let config = Config::load(&config, registry)?;
            let mut running = aiguillage_gateway::service::start(config).await?;
            let ready = running.wait_ready(std::time::Duration::from_secs(0)).await;
            if !ready {
                tracing::info!("connecting to the bus");
            }
            shutdown_signal().await;
            running.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config: path } => match Config::load(&path, registry) {
            Ok(config) => {
                println!(
                    "{}: valide ({} connecteur{}, {} route{})",
                    path.display(),
                    config.connectors.len(),
                    if config.connectors.len() == 1 {
                        ""
                    } else {
                        "s"
                    },
                    config.routes.len(),
                    if config.routes.len() == 1 { "" } else { "s" },
                );
                if let Some(summary) = aiguillage_publik::config::summary(&config.publik) {
                    println!("{}: {summary}", path.display());
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                eprintln!("{error}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Publish { config, envelopes } => {
            let config = Config::load(&config, registry)?;
            let mut bodies = Vec::new();
            for path in envelopes {
                let body = std::fs::read(&path)
                    .with_context(|| format!("lecture impossible de {}", path.display()))?;
                bodies.push((path.display().to_string(), body));
            }
            let published = aiguillage_gateway::bus::publish::publish(&config.bus, &bodies).await?;
            for item in published {
                println!("publiée {} ({})", item.id, item.routing_key);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Map {
            mapping,
            sample,
            commune,
            form,
            config,
            connector,
        } => {
            let target = config.zip(connector);
            try_mapping(
                &mapping,
                &sample,
                commune.as_deref(),
                form.as_deref(),
                target
                    .as_ref()
                    .map(|(config, name)| (config.as_path(), name.as_str())),
                registry,
            )
        }
        Command::Demo { amqp_url, dir } => {
            crate::demo::run(&amqp_url, &dir, registry).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Dead { action } => execute_dead(action, Held::DeadLetters, registry).await,
        Command::Unrouted { action } => execute_dead(action.into(), Held::Unrouted, registry).await,
        Command::History { config, term, json } => {
            let config = Config::load(&config, registry)?;
            let store = open_store(&config).await?;
            let found = aiguillage_gateway::operator::history::search(&store, &term).await;
            store.close().await;
            let found = found?;
            if json {
                let term = term.trim();
                println!(
                    "{}",
                    serde_json::json!({ "query": term, "deliveries": found })
                );
            } else {
                print!("{}", render_history(&found));
            }
            if found.is_empty() {
                eprintln!(
                    "aucune démarche n'a le numéro ou l'id `{}` dans la base",
                    term.trim()
                );
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The history of démarches as text for people, one block per connector.
pub fn render_history(found: &[aiguillage_gateway::operator::history::Delivery]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for d in found {
        if d.connector == dead::UNROUTED {
            // No route took it: there is no delivery to tell, only its discard.
            let _ = writeln!(
                out,
                "{} → pas de route (commune {}, formulaire {}) : sans route",
                d.envelope_id, d.commune, d.form
            );
            for x in &d.discards {
                let _ = writeln!(out, "  {}  abandonnée par {} : {}", x.at, x.by, x.reason);
            }
            continue;
        }
        let _ = writeln!(
            out,
            "{}{} → {} : {} après {} tentative{}{}",
            d.envelope_id,
            d.display_id
                .as_deref()
                .map(|n| format!(" (n° {n})"))
                .unwrap_or_default(),
            d.connector,
            crate::demo::status_fr(&d.status),
            d.attempts,
            if d.attempts == 1 { "" } else { "s" },
            d.reference
                .as_deref()
                .map(|r| format!(", référence {r}"))
                .unwrap_or_default(),
        );
        let _ = writeln!(out, "  {}  première réception", d.first_seen_at);
        for e in &d.errors {
            let _ = writeln!(
                out,
                "  {}  tentative {} échouée : {}",
                e.at, e.attempt, e.error
            );
        }
        for x in &d.discards {
            let _ = writeln!(out, "  {}  abandonnée par {} : {}", x.at, x.by, x.reason);
        }
        let _ = writeln!(
            out,
            "  {}  {}",
            d.updated_at,
            crate::demo::status_fr(&d.status)
        );
    }
    out
}

/// Runs a `dead` verb on `held` (the dead letters, or the unrouted démarches with the
/// same options but --connector). Selectors are checked before anything is opened.
async fn execute_dead(
    action: DeadAction,
    held: Held,
    registry: &Registry,
) -> anyhow::Result<ExitCode> {
    let words = Words::of(held);
    match action {
        DeadAction::List {
            config,
            id,
            filter,
            json,
        } => {
            let filter = DeadQuery {
                id,
                connector: filter.connector,
                commune: filter.commune,
                form: filter.form,
            };
            let config = Config::load(&config, registry)?;
            let connection = aiguillage_bus::publisher::connect(
                &config.bus,
                &format!("aiguillage-{}-list", words.verb),
            )
            .await?;
            let router = Router::new(config.routes.clone());
            let operator = operator(held, &connection, &config, &router);
            let listing = operator.list(&filter).await;
            let _ = connection.close(200, "listed".into()).await;
            let listing = listing?;
            words.warn_missing(&listing.missing_queues);
            if json {
                for letter in &listing.letters {
                    println!("{}", serde_json::to_string(letter)?);
                }
            } else if listing.letters.is_empty() {
                println!("{}", words.none);
            } else {
                print!("{}", (words.table)(&listing.letters));
                println!("{}", (words.count)(listing.letters.len()));
            }
            Ok(ExitCode::SUCCESS)
        }
        DeadAction::Replay {
            config,
            id,
            filter,
            all,
        } => {
            let wanted_id = id.clone();
            let request = ReplayRequest {
                id,
                connector: filter.connector,
                commune: filter.commune,
                form: filter.form,
                all,
            };
            // Refused before anything is opened (the operator checks it again, the same way).
            Selection::for_replay(
                DeadQuery {
                    id: request.id.clone(),
                    connector: request.connector.clone(),
                    commune: request.commune.clone(),
                    form: request.form.clone(),
                }
                .filter(),
                all,
            )?;
            let config = Config::load(&config, registry)?;
            let store = open_store(&config).await?;
            let connection = aiguillage_bus::publisher::connect(
                &config.bus,
                &format!("aiguillage-{}-replay", words.verb),
            )
            .await?;
            let router = Router::new(config.routes.clone());
            let operator = operator(held, &connection, &config, &router);
            let summary = operator
                .replay(&store, &request, &mut |progress| {
                    (words.progress)(words.replayed_each, progress)
                })
                .await;
            let _ = connection.close(200, "replayed".into()).await;
            store.close().await;
            let summary = summary?;
            words.warn_missing(&summary.missing_queues);
            println!(
                "{} {}{}",
                (words.count)(summary.done.len()),
                words.replayed,
                (words.skipped)(summary.skipped.len())
            );
            Ok(words.not_found(wanted_id.as_deref(), &summary))
        }
        DeadAction::Discard {
            config,
            id,
            filter,
            reason,
            by,
        } => {
            let wanted_id = id.clone();
            Selection::for_discard(filter.clone().with_id(id.clone()))?;
            if reason.trim().is_empty() {
                return Err(DeadError::NoReason.into());
            }
            let by = by
                .or_else(|| std::env::var("USER").ok())
                .filter(|name| !name.trim().is_empty())
                .unwrap_or_else(|| "unknown".into());
            let request = DiscardRequest {
                id,
                connector: filter.connector,
                commune: filter.commune,
                form: filter.form,
                reason,
                by: Some(by.clone()),
            };
            let config = Config::load(&config, registry)?;
            let store = open_store(&config).await?;
            let connection = aiguillage_bus::publisher::connect(
                &config.bus,
                &format!("aiguillage-{}-discard", words.verb),
            )
            .await?;
            let router = Router::new(config.routes.clone());
            let operator = operator(held, &connection, &config, &router);
            let summary = operator
                .discard(&store, &request, &by, &mut |progress| {
                    (words.progress)(words.discarded, progress)
                })
                .await;
            let _ = connection.close(200, "discarded".into()).await;
            store.close().await;
            let summary = summary?;
            words.warn_missing(&summary.missing_queues);
            println!(
                "{} {} {by}{}",
                (words.count)(summary.done.len()),
                words.discarded_by,
                (words.skipped)(summary.skipped.len())
            );
            Ok(words.not_found(wanted_id.as_deref(), &summary))
        }
    }
}

fn operator<'a>(
    held: Held,
    connection: &'a lapin::Connection,
    config: &'a Config,
    router: &'a Router,
) -> Operator<'a> {
    Operator::of(
        held,
        connection,
        &config.bus,
        connector_names(config),
        router,
    )
}

/// What the `dead` and `unrouted` verbs print: in French, like the dashboard, since a
/// commune agent or the operator reads them (issue #17).
struct Words {
    /// The verb, in connection names.
    verb: &'static str,
    /// The listing when nothing is there.
    none: &'static str,
    replayed: &'static str,
    /// Said of each one replayed, as it is.
    replayed_each: &'static str,
    discarded: &'static str,
    discarded_by: &'static str,
    count: fn(usize) -> String,
    skipped: fn(usize) -> String,
    table: fn(&[dead::DeadLetter]) -> String,
    progress: fn(&str, Progress<'_>),
    missing: fn(&str) -> String,
    unknown_id: fn(&str) -> String,
}

impl Words {
    fn of(held: Held) -> Self {
        match held {
            Held::DeadLetters => Self {
                verb: "dead",
                none: "aucune lettre morte",
                replayed: "rejouée(s)",
                replayed_each: "rejouée",
                discarded: "abandonnée",
                discarded_by: "abandonnée(s) par",
                count: |n| match n {
                    0 => "aucune lettre morte".into(),
                    1 => "1 lettre morte".into(),
                    n => format!("{n} lettres mortes"),
                },
                skipped,
                table: dead::render_table,
                progress: print_progress,
                missing: |queue| {
                    format!("note : la file des lettres mortes `{queue}` n'existe pas encore (la passerelle la déclare à son démarrage) : rien à y lire")
                },
                unknown_id: |id| {
                    format!("erreur : aucune lettre morte n'a l'id `{id}` (voyez-les avec `aiguillage dead list`)")
                },
            },
            Held::Unrouted => Self {
                verb: "unrouted",
                none: "aucune démarche sans route",
                replayed: "republiée(s)",
                replayed_each: "republiée",
                discarded: "abandonnée",
                discarded_by: "abandonnée(s) par",
                count: |n| match n {
                    0 => "aucune démarche sans route".into(),
                    1 => "1 démarche sans route".into(),
                    n => format!("{n} démarches sans route"),
                },
                skipped,
                table: dead::render_unrouted_table,
                progress: print_unrouted_progress,
                missing: |queue| {
                    format!("note : la file `{queue}` n'existe pas encore (la passerelle la déclare à son démarrage) : rien à y lire")
                },
                unknown_id: |id| {
                    format!("erreur : aucune démarche sans route n'a l'id `{id}` (voyez-les avec `aiguillage unrouted list`)")
                },
            },
        }
    }

    fn warn_missing(&self, queues: &[String]) {
        for queue in queues {
            eprintln!("{}", (self.missing)(queue));
        }
    }

    /// Exit 1 when an --id was asked for and nothing has it: a script must notice.
    fn not_found(&self, id: Option<&str>, summary: &Report) -> ExitCode {
        match id {
            Some(id) if summary.done.is_empty() && summary.skipped.is_empty() => {
                eprintln!("{}", (self.unknown_id)(id));
                ExitCode::FAILURE
            }
            _ => ExitCode::SUCCESS,
        }
    }
}

fn connector_names(config: &Config) -> Vec<String> {
    config.connectors.iter().map(|c| c.name.clone()).collect()
}

async fn open_store(config: &Config) -> anyhow::Result<aiguillage_gateway::store::Store> {
    aiguillage_gateway::store::Store::open(
        config.store.url.expose_secret(),
        config.store.max_connections,
    )
    .await
    .context("ouverture impossible de la base de la passerelle")
}

fn print_progress(done: &str, progress: Progress<'_>) {
    println!("{}", progress_line(done, progress));
}

/// One line of `dead replay`/`dead discard` progress (apart so that a test reads it).
fn progress_line(done: &str, progress: Progress<'_>) -> String {
    match progress {
        Progress::Done(letter) => format!(
            "{} {done} ({}, {} {}, était {} après {} tentative{})",
            letter.id,
            letter.connector,
            letter.commune,
            letter.form,
            crate::demo::status_fr(&letter.status),
            letter.attempts,
            if letter.attempts == 1 { "" } else { "s" }
        ),
        Progress::Skipped(letter, why) => {
            format!(
                "{} ({}) laissée en place : {why}",
                letter.id, letter.connector
            )
        }
    }
}

fn print_unrouted_progress(done: &str, progress: Progress<'_>) {
    match progress {
        Progress::Done(letter) => println!(
            "{} {done} ({} {}, clé {})",
            letter.id, letter.commune, letter.form, letter.routing_key
        ),
        Progress::Skipped(letter, why) => println!("{} laissée en place : {why}", letter.id),
    }
}

fn skipped(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(", {n} laissée(s) en place")
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
}

/// `aiguillage map`: the tool a commune uses to write its mapping. Its messages are in
/// French: the commune's agents read them.
fn try_mapping(
    path: &std::path::Path,
    sample: &std::path::Path,
    commune: Option<&str>,
    form: Option<&str>,
    target: Option<(&std::path::Path, &str)>,
    registry: &Registry,
) -> anyhow::Result<ExitCode> {
    // The connector first: a configuration that names no such connector is known before
    // any mapping is tried.
    let connector = match target {
        None => None,
        Some((config_path, name)) => {
            let config = match Config::load(config_path, registry) {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("{error}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let Some(instance) = config.connectors.into_iter().find(|c| c.name == name) else {
                eprintln!(
                    "{} : aucun connecteur ne s'appelle `{name}` dans cette configuration (`name` d'un bloc [[connectors]])",
                    config_path.display()
                );
                return Ok(ExitCode::FAILURE);
            };
            Some(instance)
        }
    };
    let mapping =
        match aiguillage_gateway::mapping::Mapping::load(path, &path.display().to_string()) {
            Ok(mapping) => mapping,
            Err(error) => {
                eprintln!("{error}");
                return Ok(ExitCode::FAILURE);
            }
        };
    let text = std::fs::read(sample)
        .with_context(|| format!("lecture impossible de {}", sample.display()))?;
    let value: serde_json::Value = match serde_json::from_slice(&text) {
        Ok(value) => value,
        Err(error) => {
            eprintln!("{} : JSON invalide : {error}", sample.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let body = if value.get("formdata").is_some() {
        value
    } else {
        // Bare form data: wrap it as the portal's envelope would. The commune and the form
        // are not in a w.c.s. export, and mappings read both (code tables by form, rules
        // by commune): a made-up value would map differently from the real démarche.
        let (Some(commune), Some(form)) = (commune, form) else {
            eprintln!(
                "{} : ce sont les données d'un formulaire seules, pas une enveloppe : indiquer la commune (code INSEE) et le formulaire (son slug) de la démarche, par exemple `--commune 44043 --form demande-acte-naissance`",
                sample.display()
            );
            return Ok(ExitCode::FAILURE);
        };
        let number = value
            .get("id")
            .map(|id| id.to_string())
            .unwrap_or_else(|| "1".into());
        serde_json::json!({
            "id": format!("sample:{form}:{}", number.trim_matches('"')),
            "commune": commune,
            "form": form,
            "submitted_at": aiguillage_bus::now_text(),
            "formdata": value,
        })
    };
    let envelope =
        match aiguillage_bus::envelope::Envelope::parse(body.to_string().as_bytes(), usize::MAX) {
            Ok(envelope) => envelope,
            Err(rejection) => {
                eprintln!(
                    "{} : enveloppe invalide : {}",
                    sample.display(),
                    rejection.error
                );
                return Ok(ExitCode::FAILURE);
            }
        };
    match mapping.apply(&envelope) {
        Ok(mapped) => {
            println!("{}", serde_json::to_string_pretty(&mapped.document)?);
            for attachment in &mapped.attachments {
                eprintln!(
                    "pièce jointe `{}` : {} ({}, {} octets)",
                    attachment.field,
                    attachment.filename,
                    attachment.content_type,
                    attachment.content.len()
                );
            }
            let Some(instance) = connector else {
                return Ok(ExitCode::SUCCESS);
            };
            let ctx = aiguillage_connector::Context::new(
                &envelope.id,
                &envelope.commune,
                &envelope.form,
                &instance.name,
            )
            .with_attachments(mapped.attachments);
            match instance.connector.check(&mapped.document, &ctx) {
                Ok(()) => {
                    eprintln!(
                        "connecteur `{}` ({}) : document accepté (vérifié sans être livré)",
                        instance.name, instance.kind
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    eprintln!(
                        "connecteur `{}` ({}) : document refusé : {}",
                        instance.name,
                        instance.kind,
                        error.report()
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Err(error) => {
            eprintln!("{error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests;
