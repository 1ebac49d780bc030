//! The admin HTTP server, for the operator and the supervision (docs/operations.md):
//!
//! - `GET /healthz`: 200 `ok` while the process runs;
//! - `GET /readyz`: 200 `ok` when the bus session is ready (connected, topology declared,
//!   every connector consuming) and the store answers; 503 otherwise, one reason a line
//!   (`bus: …`, `store: …`);
//! - `GET /metrics`: the metrics in the Prometheus text format.
//!
//! With `admin.token` (or `admin.token_file`) set, every route but `/healthz` requires
//! `Authorization: Bearer <token>`, compared in constant time; 401 otherwise.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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

use crate::metrics::Metrics;
use crate::service::{BusStatus, Connectors};
use crate::store::Store;

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
    }
}

/// Serves the admin routes on `listener` until [`Server::stop`].
pub fn serve(listener: TcpListener, state: AdminState) -> Server {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let app = router(Arc::new(state));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(error) = served {
            error!(%error, "the admin server stopped");
        }
    });
    Server { addr, stop, task }
}

/// The admin routes.
pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        // Routes above this layer require the token; /healthz below does not (a liveness
        // probe holds no secret and says nothing).
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .route("/healthz", get(healthz))
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

async fn require_token(
    State(state): State<Arc<AdminState>>,
    request: Request,
    next: Next,
) -> Response {
    match &state.token {
        Some(token) if !is_authorized(request.headers(), token) => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"aiguillage\""),
            )],
            "a bearer token is required: Authorization: Bearer <admin.token>\n",
        )
            .into_response(),
        _ => next.run(request).await,
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
