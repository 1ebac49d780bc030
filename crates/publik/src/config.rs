// Over 600 lines: the [publik] section as written and its checks, one section of the file; raw types and checks can split in phase B.
//! `[publik]`: the intake where w.c.s. webhooks arrive, and the portals they come from
//! (their keys, the rule that gives each form's commune, the triggers the notifier calls).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aiguillage_connector::{ConfigError as ConnectorConfigError, Setup};
use secrecy::SecretString;
use serde::Deserialize;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset, Weekday};

use aiguillage_bus::{is_form_slug, is_insee_code};
use aiguillage_bus::{BusConfig, Problem};

/// The default address of the intake: loopback only (put a TLS reverse proxy in front).
pub const DEFAULT_INTAKE_LISTEN: &str = "127.0.0.1:9470";

/// `[publik]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawPublik {
    /// `[publik.intake]`.
    intake: RawIntake,
    /// `[[publik.portals]]`.
    portals: Vec<RawPortal>,
}

/// `[publik.intake]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawIntake {
    /// Whether the gateway listens for w.c.s. webhooks.
    enabled: bool,
    /// `IP:port` it listens on.
    listen: String,
    /// The path of the webhook, e.g. `/intake`.
    path: String,
    /// Largest accepted request body, in bytes (files travel base64 inside it).
    max_body_bytes: usize,
    /// How far a signature's timestamp may be from the gateway's clock.
    #[serde(with = "humantime_serde")]
    window: Duration,
    /// Nonces remembered at once within the window (beyond, requests get 503).
    nonce_capacity: usize,
    /// The `Retry-After` of a 503 (broker unavailable).
    #[serde(with = "humantime_serde")]
    retry_after: Duration,
    /// How long connecting to the broker and waiting for a publisher confirm may take.
    #[serde(with = "humantime_serde")]
    publish_timeout: Duration,
}

impl Default for RawIntake {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: DEFAULT_INTAKE_LISTEN.into(),
            path: "/intake".into(),
            max_body_bytes: 16 * 1024 * 1024,
            window: Duration::from_secs(30),
            nonce_capacity: 100_000,
            retry_after: Duration::from_secs(30),
            publish_timeout: Duration::from_secs(10),
        }
    }
}

/// A `[[publik.portals]]` entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPortal {
    name: String,
    #[serde(default)]
    url: Option<String>,
    orig: Origs,
    #[serde(default)]
    secret: Option<SecretString>,
    #[serde(default)]
    secret_file: Option<PathBuf>,
    #[serde(default = "default_timezone")]
    timezone: String,
    #[serde(default)]
    forms: Vec<RawForm>,
    #[serde(default)]
    notify: RawNotify,
}

fn default_timezone() -> String {
    "Europe/Paris".into()
}

/// A `[[publik.portals.forms]]` entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForm {
    slug: String,
    #[serde(default)]
    commune: Option<String>,
    #[serde(default)]
    commune_field: Option<String>,
    #[serde(default)]
    triggers: Triggers,
}

/// `[publik.portals.notify]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawNotify {
    enabled: bool,
    orig: String,
    secret: Option<SecretString>,
    secret_file: Option<PathBuf>,
    triggers: Triggers,
    concurrency: u16,
    #[serde(with = "humantime_serde")]
    timeout: Duration,
    #[serde(with = "humantime_serde")]
    retry_initial: Duration,
    #[serde(with = "humantime_serde")]
    retry_max_delay: Duration,
}

impl Default for RawNotify {
    fn default() -> Self {
        Self {
            enabled: false,
            orig: "aiguillage".into(),
            secret: None,
            secret_file: None,
            triggers: Triggers::default(),
            concurrency: 4,
            timeout: Duration::from_secs(30),
            retry_initial: Duration::from_secs(10),
            retry_max_delay: Duration::from_secs(10 * 60),
        }
    }
}

/// The `orig` of a portal's webhooks: one name, or several (`["portail.agglo.fr",
/// "wcs.agglo.fr"]`) when w.c.s. signs some calls itself through `[wscall-secrets]`,
/// with its own host name as `orig`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Origs {
    One(String),
    Several(Vec<String>),
}

impl Origs {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(orig) => vec![orig],
            Self::Several(origs) => origs,
        }
    }
}

/// Which w.c.s. API a trigger calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    /// A jump trigger of the démarche's current status (an "Automatic jump" "After call
    /// to webservice trigger"): `…/jump/trigger/<name>/`. Only there while the démarche is
    /// in that status.
    Jump,
    /// A global action's webservice trigger (*Déclencheur: appel webservice*):
    /// `…/hooks/<name>/`. Available whatever the démarche's status.
    Hook,
}

/// A workflow trigger: written `"name"` (a jump trigger), `{ jump = "name" }` or
/// `{ hook = "name" }` (a global action's trigger).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// Which API.
    pub kind: TriggerKind,
    /// Its identifier in the workflow.
    pub name: String,
}

impl Trigger {
    /// A jump trigger named `name`.
    pub fn jump(name: &str) -> Self {
        Self {
            kind: TriggerKind::Jump,
            name: name.to_owned(),
        }
    }

    /// A global action's trigger named `name`.
    pub fn hook(name: &str) -> Self {
        Self {
            kind: TriggerKind::Hook,
            name: name.to_owned(),
        }
    }
}

impl<'de> Deserialize<'de> for Trigger {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Trigger;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "un nom de déclencheur (\"nom\"), ou { jump = \"nom\" } ou { hook = \"nom\" }",
                )
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Trigger, E> {
                Ok(Trigger::jump(name))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Trigger, A::Error> {
                use serde::de::Error;
                let mut found: Option<Trigger> = None;
                while let Some(key) = map.next_key::<String>()? {
                    let kind = match key.as_str() {
                        "jump" => TriggerKind::Jump,
                        "hook" => TriggerKind::Hook,
                        other => {
                            return Err(A::Error::custom(format!(
                                "clé inconnue `{other}` dans un déclencheur : écrivez {{ jump = \"nom\" }} ou {{ hook = \"nom\" }}"
                            )))
                        }
                    };
                    let name: String = map.next_value()?;
                    if found.is_some() {
                        return Err(A::Error::custom(
                            "un déclencheur est `jump` ou `hook`, pas les deux",
                        ));
                    }
                    found = Some(Trigger { kind, name });
                }
                found.ok_or_else(|| {
                    A::Error::custom(
                        "déclencheur vide : écrivez { jump = \"nom\" } ou { hook = \"nom\" }",
                    )
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The workflow trigger called for each final status (none: that status is not sent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    /// For `delivered`: the business software accepted the démarche.
    pub delivered: Option<Trigger>,
    /// For `rejected`: refused for good (bad data, mapping error, refused by the software).
    pub rejected: Option<Trigger>,
    /// For `dead`: the retries were exhausted.
    pub dead: Option<Trigger>,
}

impl Triggers {
    /// The trigger for `status`.
    pub fn get(&self, status: &str) -> Option<&Trigger> {
        match status {
            "delivered" => self.delivered.as_ref(),
            "rejected" => self.rejected.as_ref(),
            "dead" => self.dead.as_ref(),
            _ => None,
        }
    }

    fn or(&self, fallback: &Self) -> Self {
        Self {
            delivered: self
                .delivered
                .clone()
                .or_else(|| fallback.delivered.clone()),
            rejected: self.rejected.clone().or_else(|| fallback.rejected.clone()),
            dead: self.dead.clone().or_else(|| fallback.dead.clone()),
        }
    }
}

/// The statuses the notifier reports.
pub const NOTIFIED_STATUSES: [&str; 3] = ["delivered", "rejected", "dead"];

/// `[publik]`, checked.
#[derive(Debug, Clone, Default)]
pub struct PublikConfig {
    /// The intake, when enabled.
    pub intake: Option<IntakeConfig>,
    /// The portals, by `orig` of their webhooks.
    pub portals: Vec<Arc<Portal>>,
}

/// `[publik.intake]`, checked.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// Where it listens.
    pub listen: SocketAddr,
    /// The webhook's path.
    pub path: String,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// The window around the clock.
    pub window: Duration,
    /// Nonces remembered at once.
    pub nonce_capacity: usize,
    /// `Retry-After` of a 503.
    pub retry_after: Duration,
    /// Broker connect and confirm timeout.
    pub publish_timeout: Duration,
}

/// How a naive `receipt_time` (w.c.s. exports local times without offset) is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timezone {
    /// Metropolitan France: +01:00, +02:00 in summer time (EU rule: last Sunday of March
    /// to last Sunday of October, 01:00 UTC).
    EuropeParis,
    /// A fixed offset (`UTC`, `+04:00` for La Réunion…).
    Fixed(UtcOffset),
}

impl Timezone {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "Europe/Paris" => Some(Self::EuropeParis),
            "UTC" | "Z" => Some(Self::Fixed(UtcOffset::UTC)),
            other => {
                let (sign, rest) = match other.as_bytes().first()? {
                    b'+' => (1, &other[1..]),
                    b'-' => (-1, &other[1..]),
                    _ => return None,
                };
                let (hours, minutes) = rest.split_once(':')?;
                let hours: i8 = hours.parse().ok()?;
                let minutes: i8 = minutes.parse().ok()?;
                UtcOffset::from_hms(sign * hours, sign * minutes, 0)
                    .ok()
                    .map(Self::Fixed)
            }
        }
    }

    /// The offset of a local time. In the autumn hour that happens twice, the first one
    /// (summer time) is taken.
    pub fn offset_of(self, local: PrimitiveDateTime) -> UtcOffset {
        match self {
            Self::Fixed(offset) => offset,
            Self::EuropeParis => {
                let summer = UtcOffset::from_hms(2, 0, 0).unwrap_or(UtcOffset::UTC);
                let winter = UtcOffset::from_hms(1, 0, 0).unwrap_or(UtcOffset::UTC);
                let as_summer = local.assume_offset(summer);
                if is_eu_summer_time(as_summer) {
                    summer
                } else {
                    winter
                }
            }
        }
    }
}

/// True between the last Sunday of March and the last Sunday of October, 01:00 UTC.
fn is_eu_summer_time(at: OffsetDateTime) -> bool {
    let at = at.to_offset(UtcOffset::UTC);
    let year = at.year();
    let change = |month: Month| {
        let mut day = Date::from_calendar_date(year, month, 31).ok()?;
        while day.weekday() != Weekday::Sunday {
            day = day.previous_day()?;
        }
        Some(PrimitiveDateTime::new(day, time::Time::from_hms(1, 0, 0).ok()?).assume_utc())
    };
    match (change(Month::March), change(Month::October)) {
        (Some(start), Some(end)) => at >= start && at < end,
        _ => false,
    }
}

/// Where a form's commune comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommuneRule {
    /// Every démarche of the form is for this commune (INSEE code).
    Fixed(String),
    /// A field of the démarche holds the INSEE code (its `_raw` variant when it has one,
    /// as a list field's code is there).
    Field(String),
}

/// A form of a portal, checked.
#[derive(Debug, Clone)]
pub struct FormRule {
    /// The form's slug (w.c.s.'s `url_name`).
    pub slug: String,
    /// How its commune is found.
    pub commune: CommuneRule,
    /// Its triggers (the portal's `notify.triggers` where it sets none).
    pub triggers: Triggers,
}

/// `[publik.portals.notify]`, checked: the status events sent back to this portal.
#[derive(Clone)]
pub struct NotifyConfig {
    /// The name the gateway signs with (w.c.s. finds the key under it in `api-secrets`).
    pub orig: String,
    /// The key shared with the portal for these calls.
    pub secret: SecretString,
    /// Calls in flight at once.
    pub concurrency: u16,
    /// How long one call may take.
    pub timeout: Duration,
    /// First delay before calling again after a failure; each later one doubles.
    pub retry_initial: Duration,
    /// The longest delay; the notifier keeps trying at this pace until the portal answers.
    pub retry_max_delay: Duration,
}

impl fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("orig", &self.orig)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl NotifyConfig {
    /// The retry delays: `retry_initial` doubling up to `retry_max_delay`.
    pub fn tiers(&self) -> Vec<Duration> {
        let mut tiers = vec![self.retry_initial];
        while let Some(last) = tiers.last().copied() {
            if last >= self.retry_max_delay || tiers.len() >= 32 {
                break;
            }
            tiers.push(last.saturating_mul(2).min(self.retry_max_delay));
        }
        tiers
    }
}

/// A portal, checked.
#[derive(Clone)]
pub struct Portal {
    /// Its name: the first part of each envelope id (`{name}:{form}:{number}`).
    pub name: String,
    /// Base URL of its w.c.s. (where the notifier calls the démarches' API).
    pub url: Option<url::Url>,
    /// The `orig` values its webhooks are signed with (all with its key).
    pub origs: Vec<String>,
    /// The key its webhooks are signed with.
    pub secret: SecretString,
    /// How its naive local times are read.
    pub timezone: Timezone,
    /// Its forms, by slug.
    pub forms: BTreeMap<String, FormRule>,
    /// The notifier, when enabled.
    pub notify: Option<NotifyConfig>,
}

impl fmt::Debug for Portal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Portal")
            .field("name", &self.name)
            .field("origs", &self.origs)
            .field("forms", &self.forms.keys().collect::<Vec<_>>())
            .field("notify", &self.notify)
            .finish_non_exhaustive()
    }
}

impl Portal {
    /// The queue of its notifier, `<prefix>.publik.<name>`.
    pub fn notify_queue(&self, bus: &BusConfig) -> String {
        format!("{}.publik.{}", bus.queue_prefix, self.name)
    }

    /// The dead letters of its notifier: statuses the portal refused for good.
    pub fn notify_dead_queue(&self, bus: &BusConfig) -> String {
        format!("{}.dead", self.notify_queue(bus))
    }

    /// A retry queue of its notifier.
    pub fn notify_retry_queue(&self, bus: &BusConfig, delay: Duration) -> String {
        format!(
            "{}.retry.{}",
            self.notify_queue(bus),
            aiguillage_bus::compact_duration(delay)
        )
    }

    /// Every queue its notifier declares (for cleaning a test or demo up).
    pub fn notify_queues(&self, bus: &BusConfig) -> Vec<String> {
        let mut queues = vec![self.notify_queue(bus), self.notify_dead_queue(bus)];
        if let Some(notify) = &self.notify {
            queues.extend(
                notify
                    .tiers()
                    .into_iter()
                    .map(|delay| self.notify_retry_queue(bus, delay)),
            );
        }
        queues
    }
}

/// One line for `aiguillage check`: where the intake listens and which portals are
/// notified; `None` when `[publik]` is empty.
pub fn summary(publik: &PublikConfig) -> Option<String> {
    if publik.intake.is_none() && publik.portals.is_empty() {
        return None;
    }
    let intake = match &publik.intake {
        Some(intake) => format!("Publik intake on http://{}{}", intake.listen, intake.path),
        None => "Publik intake off".to_owned(),
    };
    let portals: Vec<String> = publik
        .portals
        .iter()
        .map(|p| {
            format!(
                "{} ({} form{}, status sent back: {})",
                p.name,
                p.forms.len(),
                if p.forms.len() == 1 { "" } else { "s" },
                if p.notify.is_some() { "yes" } else { "no" }
            )
        })
        .collect();
    Some(format!("{intake}; portals: {}", portals.join(", ")))
}

/// The keys of the webhooks, by `orig` (a portal with several `orig` has its key under
/// each).
pub fn webhook_keys(portals: &[Arc<Portal>]) -> HashMap<String, SecretString> {
    portals
        .iter()
        .flat_map(|p| p.origs.iter().map(|orig| (orig.clone(), p.secret.clone())))
        .collect()
}

/// Checks `[publik]`, adding each problem found.
pub fn check(
    raw: RawPublik,
    bus: &BusConfig,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
) -> PublikConfig {
    let mut problem = |key: String, message: String| problems.push(Problem { key, message });
    let intake = if raw.intake.enabled {
        let i = raw.intake;
        let listen = match i.listen.parse::<SocketAddr>() {
            Ok(listen) => Some(listen),
            Err(_) => {
                problem(
                    "publik.intake.listen".into(),
                    format!("`{}` n'est pas une adresse et un port : écrivez IP:port, par exemple \"{DEFAULT_INTAKE_LISTEN}\"", i.listen),
                );
                None
            }
        };
        if !i.path.starts_with('/') || i.path.contains(['?', '#', ' ']) || i.path.len() > 200 {
            problem(
                "publik.intake.path".into(),
                format!(
                    "`{}` n'est pas un chemin d'URL : écrivez par exemple \"/intake\"",
                    i.path
                ),
            );
        }
        if i.max_body_bytes == 0 || i.max_body_bytes > bus.max_message_bytes {
            problem(
                "publik.intake.max_body_bytes".into(),
                format!(
                    "doit être entre 1 et bus.max_message_bytes ({}) : une démarche plus grosse ne pourrait pas passer par le bus",
                    bus.max_message_bytes
                ),
            );
        }
        if i.window < Duration::from_secs(1) || i.window > Duration::from_secs(3600) {
            problem(
                "publik.intake.window".into(),
                "doit être entre 1s et 1h (w.c.s. utilise 30s)".into(),
            );
        }
        if i.nonce_capacity == 0 {
            problem(
                "publik.intake.nonce_capacity".into(),
                "doit valoir au moins 1".into(),
            );
        }
        if i.publish_timeout.is_zero() {
            problem(
                "publik.intake.publish_timeout".into(),
                "doit être positif".into(),
            );
        }
        listen.map(|listen| IntakeConfig {
            listen,
            path: i.path,
            max_body_bytes: i.max_body_bytes,
            window: i.window,
            nonce_capacity: i.nonce_capacity,
            retry_after: i.retry_after.max(Duration::from_secs(1)),
            publish_timeout: i.publish_timeout,
        })
    } else {
        None
    };

    let mut portals = Vec::new();
    let mut names = BTreeMap::new();
    let mut origs = BTreeMap::new();
    for (index, raw_portal) in raw.portals.into_iter().enumerate() {
        let key = |field: &str| format!("publik.portals[{index}].{field}");
        let name_ok = !raw_portal.name.is_empty()
            && raw_portal.name.len() <= 100
            && raw_portal.name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
            });
        if !name_ok {
            problem(key("name"), format!("`{}` n'est pas un nom de portail valide : lettres minuscules, chiffres, `-`, `_` et `.` (il commence chaque identifiant d'enveloppe), par exemple \"clisson-sevre-maine\"", raw_portal.name));
        } else if names.insert(raw_portal.name.clone(), index).is_some() {
            problem(
                key("name"),
                format!("`{}` nomme deux portails", raw_portal.name),
            );
        }
        let portal_origs = raw_portal.orig.into_vec();
        if portal_origs.is_empty() {
            problem(
                key("orig"),
                "ne doit pas être vide : c'est l'`orig` (un nom, ou une liste) avec lequel w.c.s. signe ses webhooks"
                    .into(),
            );
        }
        for orig in &portal_origs {
            if orig.is_empty() {
                problem(
                    key("orig"),
                    "ne doit pas être vide : c'est un `orig` avec lequel w.c.s. signe ses webhooks"
                        .into(),
                );
            } else if origs.insert(orig.clone(), index).is_some() {
                problem(
                    key("orig"),
                    format!("`{orig}` est donné deux fois (pour deux portails, ou deux fois pour un) : la clé ne pourrait pas être choisie"),
                );
            }
        }
        let setup = Setup::new(&raw_portal.name, base_dir);
        let secret = match aiguillage_connector::secret::resolve(
            "secret",
            raw_portal.secret,
            raw_portal.secret_file.as_deref(),
            &setup,
        ) {
            Ok(secret) => Some(secret),
            Err(error) => {
                problem(key("secret"), secret_message(error));
                None
            }
        };
        let timezone = Timezone::parse(&raw_portal.timezone).unwrap_or_else(|| {
            problem(key("timezone"), format!("`{}` n'est pas pris en charge : écrivez \"Europe/Paris\", \"UTC\" ou un décalage fixe comme \"+04:00\"", raw_portal.timezone));
            Timezone::EuropeParis
        });
        let url = match &raw_portal.url {
            None => None,
            Some(text) => match url::Url::parse(text) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
                _ => {
                    problem(key("url"), format!("`{text}` n'est pas une URL http(s) : écrivez l'URL de base de w.c.s., par exemple \"https://demarches.example.fr/\""));
                    None
                }
            },
        };
        let notify_raw = raw_portal.notify;
        let notify = if notify_raw.enabled {
            if url.is_none() && raw_portal.url.is_none() {
                problem(key("url"), "obligatoire quand notify.enabled vaut true : le notificateur y appelle l'API des démarches".into());
            }
            let secret = match (&notify_raw.secret, &notify_raw.secret_file) {
                (None, None) => secret.clone(),
                _ => match aiguillage_connector::secret::resolve(
                    "secret",
                    notify_raw.secret.clone(),
                    notify_raw.secret_file.as_deref(),
                    &setup,
                ) {
                    Ok(secret) => Some(secret),
                    Err(error) => {
                        problem(key("notify.secret"), secret_message(error));
                        None
                    }
                },
            };
            if notify_raw.orig.is_empty() {
                problem(
                    key("notify.orig"),
                    "ne doit pas être vide : c'est le nom avec lequel la passerelle signe ses appels".into(),
                );
            }
            if notify_raw.concurrency == 0 {
                problem(key("notify.concurrency"), "doit valoir au moins 1".into());
            }
            if notify_raw.retry_initial.is_zero()
                || notify_raw.retry_max_delay < notify_raw.retry_initial
            {
                problem(key("notify"), "`retry_initial` doit être positif et `retry_max_delay` au moins égal à `retry_initial`".into());
            }
            if notify_raw.timeout.is_zero() {
                problem(key("notify.timeout"), "doit être positif".into());
            }
            secret.map(|secret| NotifyConfig {
                orig: notify_raw.orig.clone(),
                secret,
                concurrency: notify_raw.concurrency.max(1),
                timeout: notify_raw.timeout,
                retry_initial: notify_raw.retry_initial.max(Duration::from_millis(1)),
                retry_max_delay: notify_raw.retry_max_delay.max(notify_raw.retry_initial),
            })
        } else {
            None
        };
        let mut forms = BTreeMap::new();
        for (form_index, raw_form) in raw_portal.forms.into_iter().enumerate() {
            let key = |field: &str| format!("publik.portals[{index}].forms[{form_index}].{field}");
            if !is_form_slug(&raw_form.slug) {
                problem(
                    key("slug"),
                    format!(
                        "`{}` n'est pas un identifiant de formulaire (lettres minuscules, chiffres, `-`, `_`)",
                        raw_form.slug
                    ),
                );
                continue;
            }
            let commune = match (raw_form.commune, raw_form.commune_field) {
                (Some(code), None) if is_insee_code(&code) => CommuneRule::Fixed(code),
                (Some(code), None) => {
                    problem(
                        key("commune"),
                        format!("`{code}` n'est pas un code INSEE de 5 caractères"),
                    );
                    continue;
                }
                (None, Some(field)) if !field.is_empty() => CommuneRule::Field(field),
                (Some(_), Some(_)) => {
                    problem(key("commune"), "donnez soit `commune` (un code INSEE), soit `commune_field` (le champ qui le contient), pas les deux".into());
                    continue;
                }
                _ => {
                    problem(key("commune"), "manquant : donnez `commune` (le code INSEE de toutes les démarches de ce formulaire) ou `commune_field` (le champ qui le contient)".into());
                    continue;
                }
            };
            let triggers = raw_form.triggers.or(&notify_raw.triggers);
            for trigger in [&triggers.delivered, &triggers.rejected, &triggers.dead]
                .into_iter()
                .flatten()
            {
                let name = &trigger.name;
                if name.is_empty() || name.contains(['/', '?', '#', ' ']) {
                    problem(
                        key("triggers"),
                        format!("`{name}` n'est pas un nom de déclencheur (ni `/`, ni `?`, ni `#`, ni espace)"),
                    );
                }
            }
            if forms
                .insert(
                    raw_form.slug.clone(),
                    FormRule {
                        slug: raw_form.slug.clone(),
                        commune,
                        triggers,
                    },
                )
                .is_some()
            {
                problem(
                    key("slug"),
                    format!("`{}` figure deux fois pour ce portail", raw_form.slug),
                );
            }
        }
        if forms.is_empty() {
            problem(key("forms"), "aucun formulaire : ajoutez une entrée [[publik.portals.forms]] avec `slug` et `commune` ou `commune_field`".into());
        }
        if let Some(secret) = secret {
            portals.push(Arc::new(Portal {
                name: raw_portal.name,
                url,
                origs: portal_origs,
                secret,
                timezone,
                forms,
                notify,
            }));
        }
    }
    if intake.is_some() && portals.is_empty() && problems.is_empty() {
        problems.push(Problem {
            key: "publik.portals".into(),
            message:
                "la réception est activée mais aucun portail n'est configuré : ajoutez une entrée [[publik.portals]]"
                    .into(),
        });
    }
    PublikConfig { intake, portals }
}

fn secret_message(error: ConnectorConfigError) -> String {
    match error {
        ConnectorConfigError::Invalid { message, .. }
        | ConnectorConfigError::MissingSecret { message, .. } => message,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
