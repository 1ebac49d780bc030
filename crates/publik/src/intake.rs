//! The intake: `POST /intake` (the path is configurable), where a w.c.s. "Webservice"
//! action sends a démarche (`PUT` and `PATCH`, which the action offers too with the same
//! body, are taken the same way). The request is checked (Publik signature of its query string, size,
//! JSON, a configured form), turned into an envelope (bus contract), published on the
//! démarches exchange, and acknowledged with `202` only once the broker has confirmed it.
//!
//! | answer | when |
//! |---|---|
//! | `202 {"err": 0, "id": "…"}` | the envelope is on the bus (publisher confirm received) |
//! | `400 {"err": 1, "err_desc": "…"}` | not JSON, not a démarche, unknown form, no commune… |
//! | `403` | the signature is missing, wrong, expired, from the future, replayed, unknown orig |
//! | `413` | the body is larger than `publik.intake.max_body_bytes` |
//! | `503` + `Retry-After` | the broker is unreachable or did not confirm: send it again |
//!
//! A `503` may hide a message that the broker did receive (the confirm was lost with the
//! connection): sent again, it has the same envelope id, which the gateway delivers once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use lapin::Connection;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Mutex};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use super::config::{webhook_keys, CommuneRule, IntakeConfig, Portal};
use super::signature::{SignatureError, Verifier};
use crate::Metrics;
use aiguillage_bus::envelope::{Envelope, EnvelopeError};
use aiguillage_bus::is_insee_code;
use aiguillage_bus::BusConfig;
use aiguillage_bus::Publisher;

/// After a failed connection to the broker, requests get `503` at once for this long
/// instead of each trying again.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// The body of the 503 when the broker did not take a démarche: the same whatever the
/// cause, which is logged.
pub const BUS_UNAVAILABLE: &str = "le bus de messages est momentanément indisponible : renvoyez la démarche plus tard (the message bus is unavailable: send it again later)";

/// The intake cannot listen.
#[derive(Debug, thiserror::Error)]
#[error("the Publik intake cannot listen on {addr} (`publik.intake.listen`: choose a free port, or set `publik.intake.enabled = false`)")]
pub struct BindError {
    /// The address of the configuration.
    pub addr: SocketAddr,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Why a démarche sent by w.c.s. cannot become an envelope (a `400`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    /// The body is not JSON.
    #[error("the body is not valid JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not an object.
    #[error(
        "the body must be the démarche as a JSON object (w.c.s. webhook with \"post formdata\")"
    )]
    NotAnObject,
    /// A field the envelope needs is absent or of the wrong type.
    #[error("the démarche has no usable `{0}` field")]
    Missing(&'static str),
    /// Neither `api_url` nor `url` tells the form.
    #[error("cannot tell the form: neither `api_url` (…/api/forms/<slug>/<id>/) nor `url` (…/<slug>/<id>/) has its slug")]
    NoForm,
    /// The form is not configured for this portal.
    #[error("unknown form `{form}` for portal `{portal}` (configured: {known}): add a [[publik.portals.forms]] entry")]
    UnknownForm {
        /// The form's slug.
        form: String,
        /// The portal.
        portal: String,
        /// The forms configured.
        known: String,
    },
    /// The démarche's `id` cannot be part of an envelope id.
    #[error("the démarche's `id` must be a number or a short text without `:`")]
    InvalidId,
    /// The commune field is absent.
    #[error(
        "the démarche has no field `{0}` holding the commune (publik.portals.forms.commune_field)"
    )]
    NoCommune(String),
    /// The commune field does not hold an INSEE code.
    #[error("the field `{field}` holds `{value}`, which is not a 5-character INSEE code")]
    InvalidCommune {
        /// The field.
        field: String,
        /// Its value, bounded.
        value: String,
    },
    /// `receipt_time` is not a date-time.
    #[error(
        "`receipt_time` `{0}` is not a date-time (YYYY-MM-DDTHH:MM:SS, with or without offset)"
    )]
    InvalidReceiptTime(String),
    /// The envelope made is not valid (e.g. too large for the bus).
    #[error("the envelope is not valid: {0}")]
    Envelope(EnvelopeError),
}

/// Turns the démarche w.c.s. sends (its JSON export) into the envelope of the bus
/// contract: `id` = `{portal}:{form}:{formdata id}`, `commune` by the form's rule, `form`
/// from its `api_url` (or `url`), `submitted_at` from `receipt_time` (a naive local time is
/// read in the portal's timezone).
///
/// # Errors
///
/// [`IntakeError`] saying what is missing or wrong.
pub fn envelope_of(portal: &Portal, formdata: Map<String, Value>) -> Result<Value, IntakeError> {
    let form = form_slug(&formdata).ok_or(IntakeError::NoForm)?;
    let Some(rule) = portal.forms.get(&form) else {
        return Err(IntakeError::UnknownForm {
            form: shorten(&form),
            portal: portal.name.clone(),
            known: portal.forms.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    };
    let number = match formdata.get("id") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => return Err(IntakeError::Missing("id")),
    };
    if number.is_empty()
        || number.len() > 64
        || number.contains(':')
        || number.chars().any(char::is_control)
    {
        return Err(IntakeError::InvalidId);
    }
    let commune = match &rule.commune {
        CommuneRule::Fixed(code) => code.clone(),
        CommuneRule::Field(field) => {
            let fields = formdata.get("fields").and_then(Value::as_object);
            let raw = fields.and_then(|f| f.get(&format!("{field}_raw")));
            let value = raw
                .filter(|v| !v.is_null())
                .or_else(|| fields.and_then(|f| f.get(field)))
                .filter(|v| !v.is_null())
                .ok_or_else(|| IntakeError::NoCommune(field.clone()))?;
            let text = match value {
                Value::String(s) => s.trim().to_owned(),
                Value::Number(n) => n.to_string(),
                other => other.to_string(),
            };
            if !is_insee_code(&text) {
                return Err(IntakeError::InvalidCommune {
                    field: field.clone(),
                    value: shorten(&text),
                });
            }
            text
        }
    };
    let receipt = formdata
        .get("receipt_time")
        .and_then(Value::as_str)
        .ok_or(IntakeError::Missing("receipt_time"))?;
    let submitted_at = parse_receipt_time(receipt, portal)
        .ok_or_else(|| IntakeError::InvalidReceiptTime(shorten(receipt)))?;
    Ok(json!({
        "id": format!("{}:{form}:{number}", portal.name),
        "commune": commune,
        "form": form,
        "submitted_at": submitted_at.format(&Rfc3339).unwrap_or_default(),
        "formdata": formdata,
    }))
}

/// The form's slug: from `api_url` (`…/api/forms/<slug>/<id>/`), else from `url`
/// (`…/<slug>/<id>/`).
fn form_slug(formdata: &Map<String, Value>) -> Option<String> {
    let segments = |key: &str| -> Option<Vec<String>> {
        let text = formdata.get(key)?.as_str()?;
        let parsed = url::Url::parse(text).ok()?;
        Some(
            parsed
                .path_segments()?
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    };
    if let Some(path) = segments("api_url") {
        if let Some(at) = path
            .windows(2)
            .position(|w| w[0] == "api" && w[1] == "forms")
        {
            if let Some(slug) = path.get(at + 2) {
                return Some(slug.clone());
            }
        }
    }
    let path = segments("url")?;
    (path.len() >= 2).then(|| path[path.len() - 2].clone())
}

/// `receipt_time` with its offset, or naive (w.c.s.'s export) read in the portal's zone.
fn parse_receipt_time(text: &str, portal: &Portal) -> Option<OffsetDateTime> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(at);
    }
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    let local = PrimitiveDateTime::parse(text, format).ok()?;
    Some(local.assume_offset(portal.timezone.offset_of(local)))
}

/// The running intake.
pub struct IntakeServer {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    link: Arc<Link>,
}

impl IntakeServer {
    /// The address it listens on (the port bound when the configuration said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops it, letting the requests in progress finish, then closes its connection.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        self.link.close().await;
    }
}

struct IntakeState {
    verifier: Verifier,
    portals: HashMap<String, Arc<Portal>>,
    bus: BusConfig,
    link: Arc<Link>,
    retry_after: Duration,
    metrics: Metrics,
}

/// Binds the intake's address and serves it.
///
/// # Errors
///
/// [`BindError`] when the address is taken or not this machine's.
pub async fn start(
    bus: &BusConfig,
    intake: &IntakeConfig,
    portals: &[Arc<Portal>],
    metrics: Metrics,
) -> Result<IntakeServer, BindError> {
    let listener = TcpListener::bind(intake.listen)
        .await
        .map_err(|source| BindError {
            addr: intake.listen,
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(intake.listen);
    let link = Arc::new(Link::new(bus.clone(), intake.publish_timeout));
    let state = Arc::new(IntakeState {
        verifier: Verifier::new(webhook_keys(portals), intake.window, intake.nonce_capacity),
        portals: portals
            .iter()
            .flat_map(|p| p.origs.iter().map(move |orig| (orig.clone(), p.clone())))
            .collect(),
        bus: bus.clone(),
        link: link.clone(),
        retry_after: intake.retry_after,
        metrics,
    });
    let app = Router::new()
        .route(&intake.path, post(receive).put(receive).patch(receive))
        .layer(DefaultBodyLimit::max(intake.max_body_bytes))
        .with_state(state);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(error) = served {
            error!(%error, "the Publik intake stopped");
        }
    });
    info!(intake = %addr, path = %intake.path, "Publik intake listening");
    Ok(IntakeServer {
        addr,
        stop,
        task,
        link,
    })
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn refusal(status: StatusCode, reason: &str) -> Response {
    answer(status, json!({"err": 1, "err_desc": reason}))
}

fn unavailable(state: &IntakeState, reason: &str) -> Response {
    let mut response = refusal(StatusCode::SERVICE_UNAVAILABLE, reason);
    if let Ok(value) = HeaderValue::from_str(&state.retry_after.as_secs().max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

async fn receive(
    State(state): State<Arc<IntakeState>>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let response = answer_webhook(&state, query, body).await;
    let result = match response.status() {
        StatusCode::ACCEPTED => "accepted",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "invalid",
    };
    state.metrics.publik_webhook(result);
    response
}

/// The answer to one webhook: 202 once the démarche is on the bus, 403, 400 or 503.
async fn answer_webhook(
    state: &Arc<IntakeState>,
    query: Option<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            warn!(status = status.as_u16(), reason = %rejection.body_text(), "webhook refused: unreadable body");
            return refusal(status, &rejection.body_text());
        }
    };
    let verified = match state.verifier.check(query.as_deref().unwrap_or("")) {
        Ok(verified) => verified,
        Err(error) => {
            warn!(reason = %error, "webhook refused: signature");
            if error.is_transient() {
                return unavailable(state, &error.to_string());
            }
            return refusal(
                StatusCode::FORBIDDEN,
                &format!("signature refused: {error}"),
            );
        }
    };
    let Some(portal) = state.portals.get(&verified.orig) else {
        // The verifier only knows the portals' keys: this cannot happen.
        return refusal(
            StatusCode::FORBIDDEN,
            &SignatureError::UnknownOrig(verified.orig).to_string(),
        );
    };
    let envelope = match serde_json::from_slice::<Value>(&body) {
        Err(error) => Err(IntakeError::NotJson(error.to_string())),
        Ok(Value::Object(formdata)) => envelope_of(portal, formdata),
        Ok(_) => Err(IntakeError::NotAnObject),
    };
    let envelope = match envelope {
        Ok(envelope) => envelope,
        Err(error) => {
            warn!(portal = %portal.name, reason = %error, "webhook refused: not a démarche the gateway can take");
            return refusal(StatusCode::BAD_REQUEST, &error.to_string());
        }
    };
    let bytes = serde_json::to_vec(&envelope).unwrap_or_default();
    // The contract's own check: what goes on the bus is a valid envelope.
    let checked = match Envelope::parse(&bytes, state.bus.max_message_bytes) {
        Ok(checked) => checked,
        Err(rejection) => {
            let error = IntakeError::Envelope(rejection.error);
            warn!(portal = %portal.name, reason = %error, "webhook refused: not a démarche the gateway can take");
            return refusal(StatusCode::BAD_REQUEST, &error.to_string());
        }
    };
    let routing_key = format!("{}.{}", checked.commune, checked.form);
    match state.link.publish(&routing_key, &checked.id, &bytes).await {
        Ok(()) => {
            info!(demarche.id = %checked.id, commune = %checked.commune, form = %checked.form, portal = %portal.name, "démarche received from the portal and published");
            answer(StatusCode::ACCEPTED, json!({"err": 0, "id": checked.id}))
        }
        Err(reason) => {
            warn!(demarche.id = %checked.id, portal = %portal.name, reason = %reason, "webhook answered 503: the broker did not confirm the démarche");
            // The reason (the broker's address, its error) is for the log only: the
            // caller is told to come back, not how the gateway's network is laid out.
            unavailable(state, BUS_UNAVAILABLE)
        }
    }
}

/// The intake's own connection to the broker: opened on the first request, replaced when
/// it fails, shared by every request (one confirm-mode channel carries many publishes).
struct Link {
    bus: BusConfig,
    timeout: Duration,
    state: Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    current: Option<Session>,
    generation: u64,
    down_until: Option<Instant>,
    last_error: String,
}

struct Session {
    generation: u64,
    connection: Connection,
    publisher: Publisher,
}

impl Link {
    fn new(bus: BusConfig, timeout: Duration) -> Self {
        Self {
            bus,
            timeout,
            state: Mutex::new(LinkState::default()),
        }
    }

    /// The current publisher, connecting first if needed.
    async fn publisher(&self) -> Result<(u64, Publisher), String> {
        let mut state = self.state.lock().await;
        if let Some(session) = &state.current {
            if session.connection.status().connected() {
                return Ok((session.generation, session.publisher.clone()));
            }
            if let Some(old) = state.current.take() {
                tokio::spawn(close(old.connection));
            }
        }
        if let Some(until) = state.down_until {
            if Instant::now() < until {
                return Err(state.last_error.clone());
            }
        }
        let opened = tokio::time::timeout(self.timeout, async {
            let connection =
                aiguillage_bus::publisher::connect(&self.bus, "aiguillage-publik-intake")
                    .await
                    .map_err(|e| e.to_string())?;
            let publisher = Publisher::open(&connection)
                .await
                .map_err(|e| e.to_string())?;
            aiguillage_bus::topology::declare_demarches_exchange(publisher.channel(), &self.bus)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((connection, publisher))
        })
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no connection to the broker within {} s",
                self.timeout.as_secs()
            ))
        });
        match opened {
            Ok((connection, publisher)) => {
                state.generation += 1;
                state.down_until = None;
                let generation = state.generation;
                state.current = Some(Session {
                    generation,
                    connection,
                    publisher: publisher.clone(),
                });
                debug!("the Publik intake is connected to the broker");
                Ok((generation, publisher))
            }
            Err(reason) => {
                state.down_until = Some(Instant::now() + RECONNECT_PAUSE);
                state.last_error = reason.clone();
                Err(reason)
            }
        }
    }

    /// Publishes an envelope and waits for the broker's confirm.
    async fn publish(&self, routing_key: &str, id: &str, body: &[u8]) -> Result<(), String> {
        let (generation, publisher) = self.publisher().await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.as_secs())
            .unwrap_or(0);
        let properties = aiguillage_bus::publisher::persistent_json()
            .with_message_id(aiguillage_bus::publisher::short(id))
            .with_timestamp(now);
        let published = tokio::time::timeout(
            self.timeout,
            publisher.publish(&self.bus.exchange, routing_key, body, properties, true),
        )
        .await;
        let reason = match published {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no confirm within {} s", self.timeout.as_secs()),
        };
        self.invalidate(generation).await;
        Err(reason)
    }

    /// Drops the session `generation` after a failure (a newer one is kept).
    async fn invalidate(&self, generation: u64) {
        let mut state = self.state.lock().await;
        if state.current.as_ref().map(|s| s.generation) == Some(generation) {
            if let Some(old) = state.current.take() {
                tokio::spawn(close(old.connection));
            }
        }
    }

    async fn close(&self) {
        let old = self.state.lock().await.current.take();
        if let Some(old) = old {
            close(old.connection).await;
        }
    }
}

async fn close(connection: Connection) {
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        connection.close(200, "aiguillage intake stopping".into()),
    )
    .await;
}

/// Values from outside are quoted in reasons, but bounded.
fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        text.escape_debug().to_string()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{}…", head.escape_debug())
    }
}

#[cfg(test)]
mod tests;
