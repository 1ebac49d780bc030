//! The Publik form engine (w.c.s.), simulated for its two conversations with the gateway:
//!
//! - **out**: a workflow "webhook" action POSTs a démarche (its JSON export) to the
//!   intake, on a URL signed as w.c.s. signs it (`orig`, then `algo`, `timestamp`, `nonce`
//!   and `signature`, see `aiguillage_gateway::publik::signature`);
//! - **in**: `POST /api/forms/<form>/<number>/jump/trigger/<trigger>/`, the API the
//!   notifier calls. Like w.c.s., it checks the signature of the query string against the
//!   key of its `orig` (403 otherwise, with `err_desc`), refuses a body that is not JSON
//!   (400), answers 404 for a démarche it never made (see [`WcsSim::formdata`]), answers
//!   `{"err": 0, "url": null}` otherwise, and records the call. While
//!   [`WcsSim::set_failing`] says so it answers 503, as a portal being upgraded does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aiguillage_gateway::publik::signature::{Algo, Signer, Verifier};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use secrecy::SecretString;
use serde_json::{json, Value};

/// A trigger call the simulator accepted.
#[derive(Debug, Clone)]
pub struct TriggerCall {
    /// The form's slug.
    pub form: String,
    /// The démarche's number.
    pub number: String,
    /// The trigger.
    pub trigger: String,
    /// The `orig` it was signed for.
    pub orig: String,
    /// The JSON body (the status event).
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    calls: Vec<TriggerCall>,
    refused: Vec<String>,
    failing: bool,
    failed: u64,
    /// The démarches made by [`WcsSim::formdata`]: (form, number).
    known: std::collections::HashSet<(String, String)>,
    /// Whether a trigger on a démarche it never made is accepted (the `wcs-sim` program).
    accept_unknown: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    verifier: Verifier,
}

/// The running simulator.
#[derive(Clone)]
pub struct WcsSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    webhook_orig: String,
    webhook_key: SecretString,
    client: reqwest::Client,
}

impl WcsSim {
    /// Starts it on a free local port. It signs its webhooks as `webhook_orig` with
    /// `webhook_key`, and accepts trigger calls signed as `caller_orig` with `caller_key`.
    pub async fn start(
        webhook_orig: &str,
        webhook_key: &str,
        caller_orig: &str,
        caller_key: &str,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        Self::serve(listener, webhook_orig, webhook_key, caller_orig, caller_key)
    }

    /// Serves on `listener` (for the `wcs-sim` program, which chooses its port).
    pub fn serve(
        listener: tokio::net::TcpListener,
        webhook_orig: &str,
        webhook_key: &str,
        caller_orig: &str,
        caller_key: &str,
    ) -> Self {
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            verifier: Verifier::new(
                HashMap::from([(
                    caller_orig.to_owned(),
                    SecretString::from(caller_key.to_owned()),
                )]),
                Duration::from_secs(30),
                1_000_000,
            ),
        });
        let app = Router::new()
            .route(
                "/api/forms/{form}/{number}/jump/trigger/{trigger}/",
                post(trigger),
            )
            .route(
                "/api/forms/{form}/{number}/jump/trigger/{trigger}",
                post(trigger),
            )
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            shared,
            webhook_orig: webhook_orig.to_owned(),
            webhook_key: SecretString::from(webhook_key.to_owned()),
            client: reqwest::Client::new(),
        }
    }

    /// Its base URL, `http://127.0.0.1:<port>/` (the portal's `url` in the gateway).
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Accepts trigger calls on démarches it never made (for the `wcs-sim` program, which
    /// stands for a portal whose démarches it does not know).
    pub fn accept_unknown(&self) {
        self.lock().accept_unknown = true;
    }

    /// A démarche as w.c.s. exports it (`get_json_export_dict`): naive local times, the
    /// form's slug in `url` and `api_url`, the commune as a list field (`commune` shown,
    /// `commune_raw` the INSEE code). From now on the simulator knows it.
    pub fn formdata(&self, form: &str, number: u64, commune: &str) -> Value {
        self.lock()
            .known
            .insert((form.to_owned(), number.to_string()));
        let base = self.base_url();
        json!({
            "id": number,
            "internal_id": number.to_string(),
            "display_id": format!("12-{number}"),
            "display_name": format!("Demande n°12-{number}"),
            "receipt_time": "2026-11-28T10:12:00",
            "last_update_time": "2026-11-28T10:12:00",
            "url": format!("{base}{form}/{number}/"),
            "api_url": format!("{base}api/forms/{form}/{number}/"),
            "backoffice_url": format!("{base}backoffice/management/{form}/{number}/"),
            "criticality_level": 0,
            "user": {"id": 7, "name": "Camille Durand", "email": "camille.durand@example.invalid", "NameID": ["a1b2c3"]},
            "fields": {
                "nom": "Durand", "prenoms": "Camille Marie",
                "commune": "Commune", "commune_raw": commune,
                "nature_document": "Copie intégrale", "nature_document_raw": "CPI",
                "date_naissance": "1990-04-12", "lieu_naissance": "Clisson"
            },
            "workflow": {"status": {"id": "1", "name": "Nouveau"}, "real_status": {"id": "1", "name": "Nouveau"}},
            "submission": {"channel": "web", "backoffice": false},
            "evolution": [{"status": "1", "time": "2026-11-28T10:12:00", "who": {"id": 7, "name": "Camille Durand"}}]
        })
    }

    /// `url` signed as a w.c.s. webhook action signs it (`orig` first, then the rest).
    pub fn signed_url(&self, url: &str) -> String {
        Signer {
            orig: Some(&self.webhook_orig),
            key: &self.webhook_key,
            algo: Algo::Sha256,
        }
        .sign_url(url)
    }

    /// Sends `body` as a webhook action does (POST, JSON) to the signed `url`: the status
    /// code, its `Retry-After` if any, and the JSON answer.
    pub async fn post_signed(&self, url: &str, body: &[u8]) -> (u16, Option<String>, Value) {
        let response = self
            .client
            .post(self.signed_url(url))
            .header("content-type", "application/json")
            .header("user-agent", "w.c.s./0 (simulator)")
            .body(body.to_vec())
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap_or_else(|error| panic!("POST {url}: {error}"));
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let answer = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, retry_after, answer)
    }

    /// Sends a démarche to the intake at `url`.
    pub async fn send_webhook(&self, url: &str, formdata: &Value) -> (u16, Option<String>, Value) {
        self.post_signed(url, formdata.to_string().as_bytes()).await
    }

    /// The trigger calls accepted so far.
    pub fn calls(&self) -> Vec<TriggerCall> {
        self.lock().calls.clone()
    }

    /// Why trigger calls were refused (bad signatures…).
    pub fn refused(&self) -> Vec<String> {
        self.lock().refused.clone()
    }

    /// Calls answered 503 while failing.
    pub fn failed(&self) -> u64 {
        self.lock().failed
    }

    /// While `true`, trigger calls get 503.
    pub fn set_failing(&self, failing: bool) {
        self.lock().failing = failing;
    }

    /// Waits until at least `count` calls were accepted, at most `timeout`.
    pub async fn wait_for_calls(&self, count: usize, timeout: Duration) -> Vec<TriggerCall> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let calls = self.calls();
            if calls.len() >= count || tokio::time::Instant::now() >= deadline {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn trigger(
    State(shared): State<Arc<Shared>>,
    Path((form, number, trigger)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let refuse = |code: StatusCode, reason: String| {
        shared
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .refused
            .push(reason.clone());
        (code, Json(json!({"err": 1, "err_desc": reason})))
    };
    let verified = match shared.verifier.check(query.as_deref().unwrap_or("")) {
        Ok(verified) => verified,
        Err(error) => return refuse(StatusCode::FORBIDDEN, error.to_string()),
    };
    let body = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(body) => body,
            Err(error) => return refuse(StatusCode::BAD_REQUEST, format!("invalid JSON: {error}")),
        }
    };
    let mut inner = shared
        .inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !inner.accept_unknown && !inner.known.contains(&(form.clone(), number.clone())) {
        let reason = format!("no démarche {number} in form `{form}`");
        inner.refused.push(reason.clone());
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"err": 1, "err_class": "Page not found", "err_desc": reason})),
        );
    }
    if inner.failing {
        inner.failed += 1;
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"err": 1, "err_desc": "maintenance"})),
        );
    }
    inner.calls.push(TriggerCall {
        form,
        number,
        trigger,
        orig: verified.orig,
        body,
    });
    (StatusCode::OK, Json(json!({"err": 0, "url": null})))
}
