//! The JSON admin API, on the admin server and behind its authentication
//! (docs/operations.md, "Admin API"):
//!
//! - `GET /api/deliveries?q=ID_OR_NUMBER`: the whole history of a démarche, found by its
//!   envelope id or its number (`display_id`), one entry per connector;
//! - `GET /api/overview`: one line per commune × connector (what the dashboard shows);
//! - `GET /api/dead-letters?connector=&commune=&form=&id=`: the dead letters (left in place);
//! - `POST /api/dead-letters/replay` and `POST /api/dead-letters/discard`, with a JSON body;
//! - `GET /api/unrouted?commune=&form=&id=`, `POST /api/unrouted/replay` and
//!   `POST /api/unrouted/discard`: the same for the démarches that no route takes (no
//!   `connector`).
//!
//! The dead-letter and unrouted routes call [`crate::operator::actions`], as `aiguillage dead` and
//! `aiguillage unrouted` do. A `POST`
//! takes `application/json` only: a web page of another site cannot send that without the
//! browser asking first (CORS), which this server never allows, so the API needs no CSRF
//! token (the dashboard's forms have one). A page that rebinds its own domain to this
//! server would be of the same origin and need no CORS: the admin server's Host check
//! ([`crate::admin::guard`]) refuses it before any route.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::admin::state::AdminState;
use crate::operator::actions::{DeadQuery, DiscardRequest, Held, ReplayRequest};
use crate::operator::dead::DeadError;
use crate::operator::history;
use crate::store::StoreError;

/// Who a discard made through the API is recorded as, when the request names nobody.
pub const API_DISCARDER: &str = "admin API";

/// The API's routes (authentication is the admin server's).
pub fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/api/deliveries", get(deliveries))
        .route("/api/overview", get(overview))
        .route("/api/dead-letters", get(dead_letters))
        .route("/api/dead-letters/replay", post(replay))
        .route("/api/dead-letters/discard", post(discard))
        .route("/api/unrouted", get(unrouted))
        .route("/api/unrouted/replay", post(unrouted_replay))
        .route("/api/unrouted/discard", post(unrouted_discard))
}

/// An error of the API: its status and a JSON body `{"error": "…"}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<DeadError> for ApiError {
    fn from(error: DeadError) -> Self {
        let status = match &error {
            DeadError::NoReplaySelector
            | DeadError::NoDiscardSelector
            | DeadError::NoReason
            | DeadError::UnknownConnector { .. }
            | DeadError::ConnectorOnUnrouted => StatusCode::BAD_REQUEST,
            // What was not acknowledged stays in the dead letters: try again later.
            DeadError::Bus(_) | DeadError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self(status, error.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self(rejection.status(), rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self(rejection.status(), rejection.body_text())
    }
}

/// `?q=`: an envelope id or a démarche number.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Search {
    q: Option<String>,
}

async fn deliveries(
    State(state): State<Arc<AdminState>>,
    query: Result<Query<Search>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(search) = query?;
    let term = search.q.unwrap_or_default();
    let term = term.trim();
    if term.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "say what to look for: ?q= an envelope id or a démarche number (display_id)".into(),
        ));
    }
    let found = history::search(&state.store, term).await?;
    Ok(Json(json!({ "query": term, "deliveries": found })).into_response())
}

async fn overview(State(state): State<Arc<AdminState>>) -> Result<Response, ApiError> {
    let since = history::start_of_day_in_france(OffsetDateTime::now_utc());
    let lines = history::overview(&state.store, &since).await?;
    Ok(Json(json!({ "since": since, "lines": lines })).into_response())
}

async fn dead_letters(
    State(state): State<Arc<AdminState>>,
    query: Result<Query<DeadQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    list(&state, Held::DeadLetters, query?.0).await
}

async fn unrouted(
    State(state): State<Arc<AdminState>>,
    query: Result<Query<DeadQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    list(&state, Held::Unrouted, query?.0).await
}

async fn replay(
    State(state): State<Arc<AdminState>>,
    request: Result<Json<ReplayRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    replay_held(&state, Held::DeadLetters, request?.0).await
}

async fn unrouted_replay(
    State(state): State<Arc<AdminState>>,
    request: Result<Json<ReplayRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    replay_held(&state, Held::Unrouted, request?.0).await
}

async fn discard(
    State(state): State<Arc<AdminState>>,
    request: Result<Json<DiscardRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    discard_held(&state, Held::DeadLetters, request?.0).await
}

async fn unrouted_discard(
    State(state): State<Arc<AdminState>>,
    request: Result<Json<DiscardRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    discard_held(&state, Held::Unrouted, request?.0).await
}

/// The dead letters (`{"dead_letters": […]}`) or the unrouted démarches
/// (`{"unrouted": […]}`) matching `query`, left in place.
async fn list(state: &AdminState, held: Held, query: DeadQuery) -> Result<Response, ApiError> {
    let connection = state
        .link
        .get(&state.config.bus)
        .await
        .map_err(DeadError::from)?;
    let listing = state.operator(held, &connection).list(&query).await?;
    let key = match held {
        Held::DeadLetters => "dead_letters",
        Held::Unrouted => "unrouted",
    };
    Ok(Json(json!({
        key: listing.letters,
        "missing_queues": listing.missing_queues,
    }))
    .into_response())
}

async fn replay_held(
    state: &AdminState,
    held: Held,
    request: ReplayRequest,
) -> Result<Response, ApiError> {
    let connection = state
        .link
        .get(&state.config.bus)
        .await
        .map_err(DeadError::from)?;
    let report = state
        .operator(held, &connection)
        .replay(&state.store, &request, &mut |_| {})
        .await?;
    Ok(Json(report).into_response())
}

async fn discard_held(
    state: &AdminState,
    held: Held,
    request: DiscardRequest,
) -> Result<Response, ApiError> {
    let connection = state
        .link
        .get(&state.config.bus)
        .await
        .map_err(DeadError::from)?;
    let report = state
        .operator(held, &connection)
        .discard(&state.store, &request, API_DISCARDER, &mut |_| {})
        .await?;
    Ok(Json(report).into_response())
}
