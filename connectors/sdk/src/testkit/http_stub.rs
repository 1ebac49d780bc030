//! A stub HTTP API for connectors that call one: it behaves like a well-made target (it
//! applies a démarche once per `Idempotency-Key`) and answers what the kit stages.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{Answer, Target};

/// What the stub has received and how it answers.
#[derive(Default)]
struct Inner {
    answer: Option<Answer>,
    /// Each request applied: its `Idempotency-Key` (if any) and its body. A key seen
    /// before is not applied again, as a target honouring the header does.
    applied: Vec<(Option<String>, String)>,
}

/// A stub HTTP API on `127.0.0.1`, for [`Kit`](super::Kit): any method, any path.
///
/// It accepts (201, `{"id": "STUB-<n>"}`) and applies each request once per
/// `Idempotency-Key` header (a request without one is applied every time); staged answers
/// are 503 (transient), 422 (permanent), or no answer at all (hang). It stops when dropped.
pub struct HttpStub {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    server: JoinHandle<()>,
}

impl HttpStub {
    /// Starts the stub on a free port.
    ///
    /// # Panics
    ///
    /// When no local port can be bound (a test environment problem).
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the test kit's HTTP stub cannot bind a local port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().fallback(answer).with_state(inner.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            inner,
            server,
        }
    }

    /// The URL to configure the connector with: `http://127.0.0.1:<port>/demarches`.
    pub fn url(&self) -> String {
        format!("http://{}/demarches", self.addr)
    }

    /// How many requests were applied (a repeated `Idempotency-Key` counts once).
    pub fn applied(&self) -> usize {
        self.lock().applied.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for HttpStub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let staged = inner
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .answer
        .unwrap_or(Answer::Accept);
    match staged {
        Answer::Transient => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "stub: down for maintenance",
            )
                .into_response()
        }
        Answer::Permanent => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                r#"{"error": "stub: invalid document"}"#,
            )
                .into_response()
        }
        Answer::Hang => std::future::pending::<()>().await,
        _ => {}
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let mut inner = inner.lock().unwrap_or_else(PoisonError::into_inner);
    let seen = key
        .as_ref()
        .is_some_and(|key| inner.applied.iter().any(|(k, _)| k.as_ref() == Some(key)));
    if !seen {
        let body = String::from_utf8_lossy(&body).into_owned();
        inner.applied.push((key, body));
    }
    let id = inner.applied.len();
    (StatusCode::CREATED, format!(r#"{{"id": "STUB-{id}"}}"#)).into_response()
}

#[async_trait]
impl Target for HttpStub {
    async fn effects(&self, key: &str) -> usize {
        self.lock()
            .applied
            .iter()
            .filter(|(header, body)| match header {
                Some(header) => header == key,
                // Without the header, the body tells whose démarche it was.
                None => body.contains(key),
            })
            .count()
    }

    async fn stage(&self, answer: Answer) -> bool {
        self.lock().answer = Some(answer);
        true
    }
}
