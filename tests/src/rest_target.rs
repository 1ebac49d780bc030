//! A business-software HTTP API, simulated: it honours `Idempotency-Key` as real APIs do
//! (a repeated key replays the first answer and has no second effect), and behaves by
//! path so that one simulator serves every scenario:
//!
//! - `/accept/…`: 201 with `{"numero": "REF-<n>"}`;
//! - `/reject/…`: 422 with a validation message (a permanent refusal);
//! - `/fail-first/<n>/…`: 503 for the first `n` requests of each key, then 201;
//! - `/switch/…`: 503 while [`RestTarget::set_failing`] says so, 201 otherwise;
//! - `/slow/<ms>/…`: like `/accept/…`, after `<ms>` milliseconds (a software that takes
//!   its time, so that a test can act while deliveries are still going on).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{json, Value};

/// One effect of the target: a démarche it accepted.
#[derive(Debug, Clone)]
pub struct Effect {
    /// The `Idempotency-Key` it came with.
    pub key: String,
    /// The path it was sent to.
    pub path: String,
    /// The JSON body.
    pub body: Value,
    /// The reference the target gave.
    pub reference: String,
}

#[derive(Default)]
struct Inner {
    effects: Vec<Effect>,
    by_key: HashMap<String, usize>,
    requests: HashMap<String, u32>,
    total_requests: u64,
    missing_key: u64,
    failing: bool,
}

/// The running simulator.
#[derive(Clone)]
pub struct RestTarget {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    server: Arc<Mutex<Option<Server>>>,
}

struct Server {
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl RestTarget {
    /// Starts the simulator on a free local port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let addr = listener.local_addr().expect("local address");
        let target = Self {
            addr,
            inner: Arc::new(Mutex::new(Inner::default())),
            server: Arc::new(Mutex::new(None)),
        };
        target.serve(listener);
        target
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .route("/{*path}", any(handle))
            .with_state(self.inner.clone());
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = signal.await;
                })
                .await;
        });
        *self.server.lock().expect("lock") = Some(Server { shutdown, task });
    }

    /// Takes the target down: its port refuses connections until [`RestTarget::restart`].
    pub async fn stop(&self) {
        let server = self.server.lock().expect("lock").take();
        if let Some(server) = server {
            let _ = server.shutdown.send(());
            let _ = server.task.await;
        }
    }

    /// Brings the target back on the same port.
    pub async fn restart(&self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("bind the same port again");
        self.serve(listener);
    }

    /// The URL of `path` on the simulator.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// The effects so far, in order.
    pub fn effects(&self) -> Vec<Effect> {
        self.inner.lock().expect("lock").effects.clone()
    }

    /// The number of effects so far.
    pub fn effect_count(&self) -> usize {
        self.inner.lock().expect("lock").effects.len()
    }

    /// Makes `/switch/…` answer 503 (`true`) or accept (`false`).
    pub fn set_failing(&self, failing: bool) {
        self.inner.lock().expect("lock").failing = failing;
    }

    /// Requests received in all (replays included).
    pub fn total_requests(&self) -> u64 {
        self.inner.lock().expect("lock").total_requests
    }

    /// Requests received per idempotency key.
    pub fn requests_per_key(&self) -> HashMap<String, u32> {
        self.inner.lock().expect("lock").requests.clone()
    }

    /// Requests that came without an `Idempotency-Key` (the gateway must always send one).
    pub fn requests_without_key(&self) -> u64 {
        self.inner.lock().expect("lock").missing_key
    }

    /// Waits until at least `count` effects happened; false on timeout.
    pub async fn wait_for_effects(&self, count: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.effect_count() >= count {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.effect_count() >= count
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(rest) = path.strip_prefix("slow/") {
        let millis: u64 = rest
            .split('/')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(10);
        tokio::time::sleep(Duration::from_millis(millis)).await;
    }
    let mut state = inner.lock().expect("lock");
    state.total_requests += 1;
    let Some(key) = key else {
        state.missing_key += 1;
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "Idempotency-Key header required"})),
        );
    };
    let seen = {
        let count = state.requests.entry(key.clone()).or_insert(0);
        *count += 1;
        *count
    };
    if let Some(&index) = state.by_key.get(&key) {
        let reference = state.effects[index].reference.clone();
        return (
            StatusCode::CREATED,
            Json(json!({"numero": reference, "replayed": true})),
        );
    }
    let mut words = path.split('/');
    match words.next() {
        Some("reject") => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": "le champ nom_usage est obligatoire"})),
            )
        }
        Some("fail-first") => {
            let failures: u32 = words.next().and_then(|n| n.parse().ok()).unwrap_or(1);
            if seen <= failures {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "maintenance"})),
                );
            }
        }
        Some("switch") => {
            if state.failing {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "maintenance"})),
                );
            }
        }
        Some("accept" | "slow") => {}
        _ => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "unknown path"})),
            )
        }
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "body is not JSON"})),
        );
    };
    let reference = format!("REF-{:06}", state.effects.len() + 1);
    let index = state.effects.len();
    state.effects.push(Effect {
        key: key.clone(),
        path,
        body,
        reference: reference.clone(),
    });
    state.by_key.insert(key, index);
    (StatusCode::CREATED, Json(json!({"numero": reference})))
}
