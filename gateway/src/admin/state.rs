//! What the admin server reads and keeps: the shared state, the browsers' sessions, and
//! the constant-time comparison of secrets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::watch;

use crate::admin::guard::LoginLimiter;
use crate::admin::metrics::Metrics;
use crate::bus::BusStatus;
use crate::config::Config;
use crate::operator::actions::{Held, Operator};
use crate::pipeline::delivery::Connectors;
use crate::store::Store;
use aiguillage_bus::{BusConfig, BusError};

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

/// Compares in constant time: the digests have the same length whatever was sent, so
/// neither the token's content nor its length shows in the response time.
pub(crate) fn same_token(given: &str, expected: &str) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    given.as_slice().ct_eq(expected.as_slice()).into()
}
