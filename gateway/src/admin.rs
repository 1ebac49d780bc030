//! The admin HTTP server, for the operator and the supervision (docs/operations.md):
//!
//! - `GET /healthz`: 200 `ok` while the process runs;
//! - `GET /readyz`: 200 `ok` when the bus session is ready (connected, topology declared,
//!   every connector consuming) and the store answers; 503 otherwise, one reason a line
//!   (`bus: …`, `store: …`);
//! - `GET /metrics`: the metrics in the Prometheus text format;
//! - the JSON admin API under `/api/` ([`crate::admin_api`]);
//! - the dashboard, for people, at `/` ([`crate::dashboard`]).
//!
//! With `admin.token` (or `admin.token_file`) set, every route but `/healthz` and the
//! login form (`/login`) requires `Authorization: Bearer <token>`, compared in constant
//! time, or the session cookie that the login form sets for a browser; 401 otherwise.
//!
//! Before that, token or none, every route answers only to its own host names (421
//! otherwise) and refuses a state-changing request from a page of another origin (403),
//! and the login form refuses repeated failures (429): [`crate::admin_guard`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::error;

use crate::admin_guard::{HostPolicy, LoginLimiter};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::operator::{Held, Operator};
use crate::service::{BusStatus, Connectors};
use crate::store::Store;
use aiguillage_bus::BusConfig;
use aiguillage_bus::BusError;

/// How long `/readyz` waits for the store.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The admin server cannot listen.
#[derive(Debug, thiserror::Error)]
#[error("the admin server cannot listen on {addr} (`admin.listen`: choose a free port, or set `admin.enabled = false`)")]
pub struct BindError {
    /// The address of the configuration.
    pub addr: SocketAddr,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// What the admin server reads.
pub struct AdminState {
    /// The bearer token required on every route but `/healthz`, if any.
    pub token: Option<SecretString>,
    /// Whether the bus session is ready.
    pub bus: watch::Receiver<BusStatus>,
    /// The outcome store, pinged by `/readyz`.
    pub store: Store,
    /// The gateway's metrics.
    pub metrics: Metrics,
    /// The connectors' breakers, read when `/metrics` is rendered.
    pub connectors: Connectors,
    /// The configuration (bus settings, connectors and routes, for the API and dashboard).
    pub config: Arc<Config>,
    /// The admin server's own connection to the broker, for the dead letters.
    pub link: BusLink,
    /// The browsers logged in with the token.
    pub sessions: Sessions,
    /// The CSRF token of the dashboard's forms when no session is used (no token
    /// configured, or a bearer token sent by a script): random, drawn at start.
    pub csrf: String,
    /// The failed sign-ins of the last minute.
    pub logins: LoginLimiter,
    /// The configured routes, which say why a démarche is unrouted and whether a replay
    /// can deliver it (built once from `config.routes`).
    pub routes: crate::routing::Router,
}

impl AdminState {
    /// The configured connector names, in file order.
    pub fn connector_names(&self) -> Vec<String> {
        self.config
            .connectors
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    /// The operator of `held` on `connection` (the admin server's link): the API and the
    /// dashboard reach the dead letters and the unrouted démarches the same way.
    pub fn operator<'a>(&'a self, held: Held, connection: &'a lapin::Connection) -> Operator<'a> {
        Operator::of(
            held,
            connection,
            &self.config.bus,
            self.connector_names(),
            &self.routes,
        )
    }

    /// The CSRF token a form of this request's page must send back: its session's, or
    /// the server's own.
    pub fn csrf_for(&self, headers: &HeaderMap) -> String {
        session_cookie(headers)
            .and_then(|id| self.sessions.csrf(&id))
            .unwrap_or_else(|| self.csrf.clone())
    }
}

/// The admin server's connection to the broker, opened on first use and again when lost.
#[derive(Default)]
pub struct BusLink {
    connection: tokio::sync::Mutex<Option<Arc<lapin::Connection>>>,
}

impl BusLink {
    /// The connection, opened if there is none or it was lost.
    ///
    /// # Errors
    ///
    /// [`BusError`] when the broker cannot be reached.
    pub async fn get(&self, config: &BusConfig) -> Result<Arc<lapin::Connection>, BusError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref().filter(|c| c.status().connected()) {
            return Ok(connection.clone());
        }
        let name = format!(
            "aiguillage-admin {} pid {}",
            config.queue_prefix,
            std::process::id()
        );
        let connection = Arc::new(aiguillage_bus::publisher::connect(config, &name).await?);
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Closes the connection, if open.
    pub async fn close(&self) {
        if let Some(connection) = self.connection.lock().await.take() {
            let _ = connection.close(200, "admin server stopping".into()).await;
        }
    }
}

/// The name of the dashboard's session cookie.
pub const SESSION_COOKIE: &str = "aiguillage_session";

/// How long a browser stays logged in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Browser sessions opened with the token: in memory (a restart logs everyone out), by
/// the SHA-256 of their cookie, each with its CSRF token.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

struct Session {
    csrf: String,
    expires: Instant,
}

impl Sessions {
    /// Opens a session: the cookie value to give the browser.
    pub fn open(&self) -> String {
        let id = random_hex();
        let now = Instant::now();
        let mut open = self.lock();
        open.retain(|_, session| session.expires > now);
        open.insert(
            digest_hex(&id),
            Session {
                csrf: random_hex(),
                expires: now + SESSION_LIFETIME,
            },
        );
        id
    }

    /// The CSRF token of a session still open.
    pub fn csrf(&self, id: &str) -> Option<String> {
        self.lock()
            .get(&digest_hex(id))
            .filter(|session| session.expires > Instant::now())
            .map(|session| session.csrf.clone())
    }

    /// True when `id` is a session still open.
    pub fn is_open(&self, id: &str) -> bool {
        self.csrf(id).is_some()
    }

    /// Closes a session.
    pub fn close(&self, id: &str) {
        self.lock().remove(&digest_hex(id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding it cannot leave the map half-changed: use it as it is.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// 32 random bytes in hexadecimal (a session id, a CSRF token).
pub fn random_hex() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The session cookie's value, if the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// True when `given` is the expected token, compared in constant time.
pub fn same_secret(given: &str, expected: &str) -> bool {
    same_token(given, expected)
}

/// Binds the admin server's address.
///
/// # Errors
///
/// [`BindError`] when the address is taken or not this machine's.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// The running admin server.
pub struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    state: Arc<AdminState>,
}

impl Server {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops it, letting the requests in progress finish.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        self.state.link.close().await;
    }
}

/// Serves the admin routes on `listener` until [`Server::stop`].
pub fn serve(listener: TcpListener, state: AdminState) -> Server {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let state = Arc::new(state);
    let app = router(state.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // The client's address, for the login form's limits.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(error) = served {
            error!(%error, "the admin server stopped");
        }
    });
    Server {
        addr,
        stop,
        task,
        state,
    }
}

/// The admin routes.
pub fn router(state: Arc<AdminState>) -> Router {
    let hosts = Arc::new(HostPolicy::new(
        state.config.admin.listen.ip(),
        &state.config.admin.public_names,
    ));
    Router::new()
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::admin_api::routes())
        .merge(crate::dashboard::routes())
        // Routes above this layer require the token (or a session); /healthz and the
        // login form below do not (a liveness probe holds no secret and says nothing).
        .route_layer(middleware::from_fn_with_state(state.clone(), require_auth))
        .route("/healthz", get(healthz))
        .merge(crate::dashboard::login_routes())
        // Outermost, on every route and on the 404s too: a request for another host is
        // answered nothing else, whatever its token (DNS rebinding).
        .layer(middleware::from_fn_with_state(
            hosts,
            crate::admin_guard::check_host_and_origin,
        ))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<AdminState>>) -> (StatusCode, String) {
    let mut reasons = Vec::new();
    if let BusStatus::NotReady(reason) = state.bus.borrow().clone() {
        reasons.push(format!("bus: {reason}"));
    }
    match tokio::time::timeout(STORE_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => reasons.push(format!("store: {error}")),
        Err(_) => reasons.push(format!(
            "store: no answer within {} s",
            STORE_TIMEOUT.as_secs()
        )),
    }
    if reasons.is_empty() {
        (StatusCode::OK, "ok\n".into())
    } else {
        let mut body = reasons.join("\n");
        body.push('\n');
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

async fn metrics(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    // The breakers are read now rather than pushed on each change: always current.
    for (name, connector) in state.connectors.iter() {
        state.metrics.breaker(
            name,
            connector.breaker.state(),
            connector.breaker.times_opened(),
        );
    }
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        state.metrics.render(),
    )
}

async fn require_auth(
    State(state): State<Arc<AdminState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &state.token else {
        return next.run(request).await;
    };
    let headers = request.headers();
    let session = session_cookie(headers).is_some_and(|id| state.sessions.is_open(&id));
    if session || is_authorized(headers, token) {
        return next.run(request).await;
    }
    let path = request.uri().path();
    let for_machines = path.starts_with("/api/") || path == "/metrics" || path == "/readyz";
    let challenge = [(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"aiguillage\""),
    )];
    if for_machines || request.method() != axum::http::Method::GET {
        (
            StatusCode::UNAUTHORIZED,
            challenge,
            "a bearer token is required: Authorization: Bearer <admin.token>\n",
        )
            .into_response()
    } else {
        // A person with a browser: the login form, still with the 401 it deserves.
        (
            StatusCode::UNAUTHORIZED,
            challenge,
            crate::dashboard::login_page_html(None),
        )
            .into_response()
    }
}

/// True when the request carries `Authorization: Bearer <token>`.
fn is_authorized(headers: &HeaderMap, token: &SecretString) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, given)| given.trim());
    given.is_some_and(|given| same_token(given, token.expose_secret()))
}

/// Compares in constant time: the digests have the same length whatever was sent, so
/// neither the token's content nor its length shows in the response time.
fn same_token(given: &str, expected: &str) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    given.as_slice().ct_eq(expected.as_slice()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(authorization).unwrap(),
        );
        headers
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let token = SecretString::from("0123456789abcdef0123".to_owned());
        assert!(is_authorized(
            &headers("Bearer 0123456789abcdef0123"),
            &token
        ));
        assert!(is_authorized(
            &headers("bearer 0123456789abcdef0123"),
            &token
        ));
        assert!(!is_authorized(
            &headers("Bearer 0123456789abcdef012"),
            &token
        ));
        assert!(!is_authorized(
            &headers("Bearer 0123456789abcdef01234"),
            &token
        ));
        assert!(!is_authorized(
            &headers("Basic 0123456789abcdef0123"),
            &token
        ));
        assert!(!is_authorized(&headers("0123456789abcdef0123"), &token));
        assert!(!is_authorized(&HeaderMap::new(), &token));
    }
}
