//! The Publik form engine (w.c.s.), simulated for its two conversations with the gateway:
//!
//! - **out**: a workflow "webhook" action POSTs a démarche (its JSON export) to the
//!   intake, on a URL signed as w.c.s. signs it (`orig`, then `algo`, `timestamp`, `nonce`
//!   and `signature`, see `aiguillage_publik::signature`);
//! - **in**: `POST /api/forms/<form>/<number>/jump/trigger/<trigger>/` (a jump trigger of
//!   the démarche's current status) and `POST /api/forms/<form>/<number>/hooks/<trigger>/`
//!   (a global action's webservice trigger), the APIs the notifier calls. As w.c.s. does
//!   (`wcs/wf/jump.py`, `wcs/forms/workflows.py`), with its JSON errors
//!   (`err`, `err_class`, `err_code`, `err_desc`):
//!   - the signature of the query string is checked against the key of its `orig` (403);
//!   - a démarche it never made (see [`WcsSim::formdata`]) is 404;
//!   - during the processing window after its webhook action called the gateway
//!     ([`WcsSim::set_processing_window`]), the démarche is still running its workflow
//!     actions: 403 `Formdata currently processing actions.`;
//!   - a jump trigger moves the démarche to the next status, where no trigger waits: any
//!     later jump trigger on it is 404 (`Page not found`), as after a crash between the
//!     portal's 2xx and the gateway's acknowledgement; a global hook works whatever the
//!     status;
//!   - while [`WcsSim::set_refuse_roles`] says so, 403 `Unsufficient roles.` (jump) or
//!     `Insufficient roles.` (hook), w.c.s.'s own words;
//!   - otherwise `{"err": 0, "url": null}` (jump) or `{"err": 0}` (hook), and the call
//!     is recorded. While [`WcsSim::set_failing`] says so it answers 503, as a portal
//!     being upgraded does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aiguillage_publik::signature::{Algo, Signer, Verifier};
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
    /// Whether it was a global action's hook (`…/hooks/<trigger>/`), not a jump.
    pub hook: bool,
}

/// A démarche the simulator made.
#[derive(Default)]
struct Demarche {
    /// Until when its workflow actions run (its webhook action called the gateway).
    processing_until: Option<Instant>,
    /// Whether a jump trigger moved it on: its new status has no trigger.
    moved: bool,
}

#[derive(Default)]
struct Inner {
    calls: Vec<TriggerCall>,
    refused: Vec<String>,
    failing: bool,
    failed: u64,
    /// The démarches made by [`WcsSim::formdata`], by (form, number).
    known: HashMap<(String, String), Demarche>,
    /// How long a démarche runs its actions after its webhook is sent.
    processing_window: Duration,
    /// Calls answered 403 "processing actions".
    processing_refused: u64,
    /// Jump calls answered 404 because the démarche had moved on.
    moved_on: u64,
    /// Whether calls are refused for their roles.
    refuse_roles: bool,
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
            .route("/api/forms/{form}/{number}/hooks/{trigger}/", post(hook))
            .route("/api/forms/{form}/{number}/hooks/{trigger}", post(hook))
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
            .entry((form.to_owned(), number.to_string()))
            .or_default();
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

    /// Sends a démarche to the intake at `url`. From now on, for the processing window,
    /// the démarche runs its workflow actions (the webhook action is one of them).
    pub async fn send_webhook(&self, url: &str, formdata: &Value) -> (u16, Option<String>, Value) {
        self.start_processing(formdata);
        self.post_signed(url, formdata.to_string().as_bytes()).await
    }

    /// Sends a démarche with another method of the "Webservice" action (`PUT`, `PATCH`):
    /// the same body, signed the same way.
    pub async fn send_webhook_with(
        &self,
        method: reqwest::Method,
        url: &str,
        formdata: &Value,
    ) -> (u16, Value) {
        self.start_processing(formdata);
        let response = self
            .client
            .request(method, self.signed_url(url))
            .header("content-type", "application/json")
            .body(formdata.to_string())
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap_or_else(|error| panic!("{url}: {error}"));
        let status = response.status().as_u16();
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    }

    fn start_processing(&self, formdata: &Value) {
        let api_url = formdata["api_url"].as_str().unwrap_or_default();
        let segments: Vec<&str> = api_url.split('/').filter(|s| !s.is_empty()).collect();
        let [.., "forms", form, number] = segments.as_slice() else {
            return;
        };
        let mut inner = self.lock();
        let until = Instant::now() + inner.processing_window;
        inner
            .known
            .entry(((*form).to_owned(), (*number).to_owned()))
            .or_default()
            .processing_until = Some(until);
    }

    /// After each webhook it sends, a démarche runs its workflow actions for `window`
    /// (0 by default): trigger calls meanwhile get w.c.s.'s 403 "processing actions".
    pub fn set_processing_window(&self, window: Duration) {
        self.lock().processing_window = window;
    }

    /// Calls answered 403 "Formdata currently processing actions." so far.
    pub fn processing_refused(&self) -> u64 {
        self.lock().processing_refused
    }

    /// Jump calls answered 404 because the démarche had moved on.
    pub fn moved_on(&self) -> u64 {
        self.lock().moved_on
    }

    /// While `true`, trigger calls are refused for their roles (403).
    pub fn set_refuse_roles(&self, refuse: bool) {
        self.lock().refuse_roles = refuse;
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

/// w.c.s.'s JSON error: `{"err": 1, "err_class", "err_code", "err_desc"}`.
fn wcs_error(code: StatusCode, err_desc: Option<&str>) -> (StatusCode, Json<Value>) {
    let (class, err_code) = match code {
        StatusCode::FORBIDDEN => ("Access denied", "access-denied"),
        StatusCode::NOT_FOUND => ("Page not found", "not-found"),
        _ => ("Publishing error", "publishing-error"),
    };
    (
        code,
        Json(json!({"err": 1, "err_class": class, "err_code": err_code, "err_desc": err_desc})),
    )
}

async fn trigger(
    State(shared): State<Arc<Shared>>,
    Path((form, number, trigger)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    answer(&shared, form, number, trigger, query, &body, false)
}

async fn hook(
    State(shared): State<Arc<Shared>>,
    Path((form, number, trigger)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    answer(&shared, form, number, trigger, query, &body, true)
}

fn answer(
    shared: &Shared,
    form: String,
    number: String,
    trigger: String,
    query: Option<String>,
    body: &[u8],
    hook: bool,
) -> (StatusCode, Json<Value>) {
    let mut inner = shared
        .inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let verified = match shared.verifier.check(query.as_deref().unwrap_or("")) {
        Ok(verified) => verified,
        Err(error) => {
            inner.refused.push(error.to_string());
            return wcs_error(StatusCode::FORBIDDEN, Some(&error.to_string()));
        }
    };
    let body = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(body) => body,
            Err(error) => {
                let reason = format!("invalid JSON: {error}");
                inner.refused.push(reason.clone());
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"err": 1, "err_desc": reason})),
                );
            }
        }
    };
    let accept_unknown = inner.accept_unknown;
    let key = (form.clone(), number.clone());
    if !accept_unknown && !inner.known.contains_key(&key) {
        let reason = format!("no démarche {number} in form `{form}`");
        inner.refused.push(reason.clone());
        return wcs_error(StatusCode::NOT_FOUND, Some(&reason));
    }
    if inner.failing {
        inner.failed += 1;
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"err": 1, "err_desc": "maintenance"})),
        );
    }
    let refuse_roles = inner.refuse_roles;
    let demarche = inner.known.entry(key).or_default();
    let processing = demarche
        .processing_until
        .is_some_and(|until| Instant::now() < until);
    let moved = demarche.moved;
    // The order of w.c.s.'s checks: a jump looks at the processing first, then for the
    // trigger in the current status, then at the roles; a hook at the roles first.
    if hook && refuse_roles {
        inner.refused.push("Insufficient roles.".into());
        return wcs_error(StatusCode::FORBIDDEN, Some("Insufficient roles."));
    }
    if processing {
        inner.processing_refused += 1;
        return wcs_error(
            StatusCode::FORBIDDEN,
            Some("Formdata currently processing actions."),
        );
    }
    if !hook && moved {
        inner.moved_on += 1;
        return wcs_error(StatusCode::NOT_FOUND, None);
    }
    if !hook && refuse_roles {
        inner.refused.push("Unsufficient roles.".into());
        return wcs_error(StatusCode::FORBIDDEN, Some("Unsufficient roles."));
    }
    if !hook {
        if let Some(demarche) = inner.known.get_mut(&(form.clone(), number.clone())) {
            demarche.moved = true;
        }
    }
    inner.calls.push(TriggerCall {
        form,
        number,
        trigger,
        orig: verified.orig,
        body,
        hook,
    });
    if hook {
        (StatusCode::OK, Json(json!({"err": 0})))
    } else {
        (StatusCode::OK, Json(json!({"err": 0, "url": null})))
    }
}
