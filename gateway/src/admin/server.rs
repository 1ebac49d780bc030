//! The admin HTTP server: binding, the routes, authentication.

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
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::error;

use crate::admin::guard::HostPolicy;
use crate::admin::state::{same_token, session_cookie, AdminState};
use crate::bus::BusStatus;

/// How long `/readyz` waits for the store.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The admin server cannot listen.
#[derive(Debug, thiserror::Error)]
#[error("le serveur d'administration ne peut pas écouter sur {addr} (`admin.listen` : choisissez un port libre, ou mettez `admin.enabled = false`)")]
pub struct BindError {
    /// The address of the configuration.
    pub addr: SocketAddr,
    /// Why.
    #[source]
    pub source: std::io::Error,
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
        .merge(crate::admin::api::routes())
        .merge(crate::admin::dashboard::routes())
        // Routes above this layer require the token (or a session); /healthz and the
        // login form below do not (a liveness probe holds no secret and says nothing).
        .route_layer(middleware::from_fn_with_state(state.clone(), require_auth))
        .route("/healthz", get(healthz))
        .merge(crate::admin::dashboard::login_routes())
        // Outermost, on every route and on the 404s too: a request for another host is
        // answered nothing else, whatever its token (DNS rebinding).
        .layer(middleware::from_fn_with_state(
            hosts,
            crate::admin::guard::check_host_and_origin,
        ))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<AdminState>>) -> (StatusCode, String) {
    let mut reasons = Vec::new();
    if let BusStatus::NotReady(reason) = state.bus.borrow().clone() {
        reasons.push(format!("bus : {reason}"));
    }
    match tokio::time::timeout(STORE_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => reasons.push(format!("base : {error}")),
        Err(_) => reasons.push(format!(
            "base : pas de réponse en {} s",
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
            crate::admin::dashboard::login_page_html(None),
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
