//! The business software of the `rest` case: a local HTTP API (keep-alive) that accepts
//! every démarche and notes when it arrived.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

use crate::load;

/// One démarche received: (sequence number, published at, arrived at), in unix µs.
pub type Arrival = (u64, u64, u64);

/// What the sink received.
#[derive(Default)]
pub struct Received {
    arrivals: Mutex<Vec<Arrival>>,
}

impl Received {
    /// The arrivals so far, and forgets them.
    pub fn take(&self) -> Vec<Arrival> {
        self.arrivals
            .lock()
            .map(|mut a| std::mem::take(&mut *a))
            .unwrap_or_default()
    }
}

async fn accept(
    State(received): State<Arc<Received>>,
    headers: HeaderMap,
    body: Bytes,
) -> (
    StatusCode,
    [(header::HeaderName, &'static str); 1],
    &'static str,
) {
    let now = load::now_micros();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .and_then(load::parse_id);
    match key {
        Some((seq, published)) if !body.is_empty() => {
            if let Ok(mut arrivals) = received.arrivals.lock() {
                arrivals.push((seq, published, now));
            }
            (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/json")],
                "{}",
            )
        }
        _ => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"error\":\"no bench id\"}",
        ),
    }
}

/// A running sink.
pub struct Sink {
    /// Where it listens (loopback).
    pub addr: SocketAddr,
    /// What it received.
    pub received: Arc<Received>,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    /// Starts a sink on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let received = Arc::new(Received::default());
        let app = Router::new()
            .route("/demarches", post(accept))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            received,
            task,
        })
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
