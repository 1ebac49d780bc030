// Over 600 lines: the dashboard's handlers and their view models; views can move to their own module in phase B.
//! The dashboard: a small web page on the admin server, in French, for the agglo's
//! operator (docs/operations.md, "The dashboard"). Server-rendered from templates compiled
//! into the binary (`gateway/templates/`, minijinja): no JavaScript, no front-end build.
//!
//! - `GET /`: one line per commune × connector (last success, counts of the day, dead
//!   letters, breaker, last errors in plain words), then the dead letters with a button
//!   to replay or discard each one, then the démarches that no route takes, with the same
//!   buttons;
//! - `GET /search?q=`: the whole history of a démarche, by number or envelope id;
//! - `POST /dead-letters/replay`, `POST /dead-letters/discard`, `POST /unrouted/replay`,
//!   `POST /unrouted/discard`, `POST /logout`: forms carrying a CSRF token;
//! - `GET|POST /login`: when a token is configured, the form that opens a session (an
//!   `HttpOnly`, `SameSite=Strict` cookie) for a browser; after a few failures from one
//!   address (or many from all) within a minute, `429` with `Retry-After`.
//!
//! Everything it shows and does goes through [`crate::operator::history`] and [`crate::operator::actions`],
//! like the JSON API and the CLI.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::value::Serde;
use minijinja::{context, Environment};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::admin::state::{self as admin, AdminState, SESSION_COOKIE, SESSION_LIFETIME};
use crate::operator::actions::{DeadQuery, DiscardRequest, Held, ReplayRequest};
use crate::operator::dead::{DeadError, DeadLetter};
use crate::operator::history::{self, france_offset, Line};
use crate::pipeline::breaker::BreakerState;
use crate::routing::CommunePattern;

/// Who a discard made on the dashboard is recorded as.
pub const DASHBOARD_DISCARDER: &str = "tableau de bord";

/// The dashboard's pages (behind the admin server's authentication).
pub fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/", get(dashboard))
        .route("/search", get(search))
        .route("/dead-letters/replay", post(replay))
        .route("/dead-letters/discard", post(discard))
        .route("/unrouted/replay", post(unrouted_replay))
        .route("/unrouted/discard", post(unrouted_discard))
        .route("/logout", post(logout))
}

/// The login form, reachable without authentication.
pub fn login_routes() -> Router<Arc<AdminState>> {
    Router::new().route("/login", get(login_form).post(login))
}

fn templates() -> &'static Environment<'static> {
    static TEMPLATES: OnceLock<Environment<'static>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let mut env = Environment::new();
        // Names ending in .html: every value is HTML-escaped.
        for (name, text) in [
            ("base.html", include_str!("../../templates/base.html")),
            ("login.html", include_str!("../../templates/login.html")),
            (
                "dashboard.html",
                include_str!("../../templates/dashboard.html"),
            ),
            ("search.html", include_str!("../../templates/search.html")),
        ] {
            if let Err(error) = env.add_template(name, text) {
                // Compiled in and covered by the tests: only a broken build gets here.
                warn!(%error, template = name, "dashboard template does not parse");
            }
        }
        env
    })
}

fn render(name: &str, values: minijinja::Value) -> Response {
    match templates()
        .get_template(name)
        .and_then(|template| template.render(values))
    {
        Ok(page) => Html(page).into_response(),
        Err(error) => {
            warn!(%error, template = name, "the dashboard page cannot be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("la page ne peut pas être affichée : {error}\n"),
            )
                .into_response()
        }
    }
}

/// The login page (for the admin server's 401 answer to a browser).
pub fn login_page_html(error: Option<&str>) -> Html<String> {
    let page = templates()
        .get_template("login.html")
        .and_then(|template| template.render(context! { error => error }))
        .unwrap_or_else(|error| format!("login page unavailable: {error}"));
    Html(page)
}

async fn login_form(State(state): State<Arc<AdminState>>) -> Response {
    if state.token.is_none() {
        return Redirect::to("/").into_response();
    }
    login_page_html(None).into_response()
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

async fn login(
    State(state): State<Arc<AdminState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Form(form): Form<Login>,
) -> Response {
    let Some(token) = &state.token else {
        return Redirect::to("/").into_response();
    };
    // Checked before the token, so that guessing gains nothing once the limit is reached.
    if let Err(wait) = state.logins.check(client.ip()) {
        warn!(client = %client.ip(), "dashboard login refused: too many failures in the last minute");
        return too_many_logins(wait);
    }
    if !admin::same_secret(form.token.trim(), token.expose_secret()) {
        state.logins.failed(client.ip());
        warn!(client = %client.ip(), "dashboard login refused: wrong token");
        return (
            StatusCode::UNAUTHORIZED,
            login_page_html(Some("Ce jeton n'est pas le bon.")),
        )
            .into_response();
    }
    let id = state.sessions.open();
    info!("dashboard login");
    let cookie = format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    );
    session_response(&cookie)
}

/// `429` with `Retry-After` (whole seconds, at least 1) and the login page saying why.
fn too_many_logins(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let message = format!("Trop de tentatives de connexion manquées : réessayez dans {seconds} s.");
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        login_page_html(Some(&message)),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

fn session_response(cookie: &str) -> Response {
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
struct Logout {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Form(form): Form<Logout>,
) -> Response {
    if let Some(refused) = check_csrf(&state, &headers, &form.csrf) {
        return refused;
    }
    if let Some(id) = admin::session_cookie(&headers) {
        state.sessions.close(&id);
    }
    session_response(&format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
    ))
}

/// `None` when the form's CSRF token is the one of this browser's page; the refusal
/// otherwise.
fn check_csrf(state: &AdminState, headers: &HeaderMap, given: &str) -> Option<Response> {
    if !given.is_empty() && admin::same_secret(given, &state.csrf_for(headers)) {
        return None;
    }
    warn!("dashboard form refused: missing or wrong CSRF token");
    Some(
        (
            StatusCode::FORBIDDEN,
            Html(
                "<!doctype html><html lang=\"fr\"><meta charset=\"utf-8\"><title>Refusé</title>\
                 <p>Formulaire refusé : il ne vient pas de ce tableau de bord, ou la page est \
                 trop ancienne. <a href=\"/\">Recharger le tableau de bord</a> et recommencer.</p></html>",
            ),
        )
            .into_response(),
    )
}

/// A line of the dashboard's table.
#[derive(Serialize)]
struct LineView {
    commune: String,
    connector: String,
    last_success: String,
    delivered_today: u64,
    failed_today: u64,
    retrying: u64,
    dead_letters: usize,
    breaker: &'static str,
    breaker_class: &'static str,
    errors: Vec<ErrorView>,
}

#[derive(Serialize)]
struct ErrorView {
    when: String,
    plain: &'static str,
    raw: String,
    envelope_id: String,
    display_id: Option<String>,
    attempt: u32,
    search_url: String,
}

#[derive(Serialize)]
struct DeadView {
    id: String,
    commune: String,
    form: String,
    connector: String,
    status_word: &'static str,
    attempts: u32,
    age: String,
    plain: &'static str,
    reason: String,
    readable: bool,
    search_url: String,
}

#[derive(Deserialize, Default)]
struct Notice {
    notice: Option<String>,
    id: Option<String>,
}

async fn dashboard(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(notice): Query<Notice>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let since = history::start_of_day_in_france(now);
    let mut error = None;
    let lines = match history::overview(&state.store, &since).await {
        Ok(lines) => lines,
        Err(e) => {
            error = Some(format!(
                "{}. Les chiffres ne sont pas disponibles.",
                store_trouble(&e)
            ));
            Vec::new()
        }
    };
    let (letters, dead_error) = match held_list(&state, Held::DeadLetters).await {
        Ok(letters) => (letters, None),
        Err(e) => (Vec::new(), Some(dead_letters_unreadable(&e))),
    };
    let (unrouted, unrouted_error) = match held_list(&state, Held::Unrouted).await {
        Ok(letters) => (letters, None),
        Err(e) => (
            Vec::new(),
            Some(format!(
                "Les démarches sans route ne peuvent pas être lues (RabbitMQ ne répond pas ?) : {e}"
            )),
        ),
    };
    let lines = line_views(&state, lines, &letters);
    let dead: Vec<DeadView> = letters.iter().map(dead_view).collect();
    let unrouted: Vec<DeadView> = unrouted.iter().map(dead_view).collect();
    let notice = match (notice.notice.as_deref(), notice.id.as_deref()) {
        (Some("replayed"), Some(id)) => Some(format!(
            "La démarche {id} a été renvoyée à son logiciel : elle va être livrée de nouveau."
        )),
        (Some("discarded"), Some(id)) => Some(format!(
            "La démarche {id} a été abandonnée ; la raison est conservée."
        )),
        (Some("nothing"), Some(id)) => Some(format!(
            "La démarche {id} n'était plus dans les lettres mortes (déjà renvoyée ou abandonnée ?)."
        )),
        (Some("unrouted-replayed"), Some(id)) => Some(format!(
            "La démarche {id} a été publiée de nouveau : la route qui la prend va la livrer."
        )),
        (Some("unrouted-nothing"), Some(id)) => Some(format!(
            "La démarche {id} n'était plus parmi les démarches sans route (déjà renvoyée ou abandonnée ?)."
        )),
        _ => None,
    };
    render(
        "dashboard.html",
        context! {
            now => local_time(&aiguillage_bus::format_utc(now)),
            lines => minijinja::Value::from(Serde(&lines)),
            dead => minijinja::Value::from(Serde(&dead)),
            dead_error => dead_error,
            unrouted => minijinja::Value::from(Serde(&unrouted)),
            unrouted_error => unrouted_error,
            notice => notice,
            error => error,
            csrf => state.csrf_for(&headers),
            logged_in => admin::session_cookie(&headers).is_some_and(|id| state.sessions.is_open(&id)),
        },
    )
}

/// Every dead letter, or every unrouted démarche, left in place.
async fn held_list(state: &AdminState, held: Held) -> Result<Vec<DeadLetter>, DeadError> {
    let connection = state.link.get(&state.config.bus).await?;
    let listing = state
        .operator(held, &connection)
        .list(&DeadQuery::default())
        .await?;
    Ok(listing.letters)
}

fn dead_letters_unreadable(error: &DeadError) -> String {
    format!("Les lettres mortes ne peuvent pas être lues (RabbitMQ ne répond pas ?) : {error}")
}

/// The lines of the store, plus those the routes promise and those that only have dead
/// letters, with the breaker of each connector.
fn line_views(state: &AdminState, lines: Vec<Line>, letters: &[DeadLetter]) -> Vec<LineView> {
    let mut by_key: BTreeMap<(String, String), Line> = lines
        .into_iter()
        .map(|line| ((line.commune.clone(), line.connector.clone()), line))
        .collect();
    let blank = |commune: &str, connector: &str| Line {
        commune: commune.to_owned(),
        connector: connector.to_owned(),
        ..Line::default()
    };
    for route in &state.config.routes {
        if let CommunePattern::Code(code) = &route.commune {
            by_key
                .entry((code.clone(), route.connector.clone()))
                .or_insert_with(|| blank(code, &route.connector));
        }
    }
    let mut dead: BTreeMap<(String, String), usize> = BTreeMap::new();
    for letter in letters {
        let key = (letter.commune.clone(), letter.connector.clone());
        by_key
            .entry(key.clone())
            .or_insert_with(|| blank(&letter.commune, &letter.connector));
        *dead.entry(key).or_default() += 1;
    }
    by_key
        .into_iter()
        .map(|(key, line)| {
            let (breaker, breaker_class) = match state.connectors.get(&line.connector) {
                Some(c) => breaker_words(c.breaker.state()),
                None => ("connecteur retiré de la configuration", "warn"),
            };
            LineView {
                dead_letters: dead.get(&key).copied().unwrap_or(0),
                last_success: line
                    .last_success
                    .as_deref()
                    .map_or_else(|| "jamais".to_owned(), local_time),
                delivered_today: line.delivered_today,
                failed_today: line.failed_today,
                retrying: line.retrying,
                breaker,
                breaker_class,
                errors: line
                    .last_errors
                    .into_iter()
                    .map(|e| ErrorView {
                        when: local_time(&e.at),
                        plain: plain_french(&e.error),
                        search_url: search_url(&e.envelope_id),
                        raw: e.error,
                        envelope_id: e.envelope_id,
                        display_id: e.display_id,
                        attempt: e.attempt,
                    })
                    .collect(),
                commune: line.commune,
                connector: line.connector,
            }
        })
        .collect()
}

fn dead_view(letter: &DeadLetter) -> DeadView {
    DeadView {
        id: letter.id.clone(),
        commune: letter.commune.clone(),
        form: letter.form.clone(),
        connector: letter.connector.clone(),
        status_word: status_words(&letter.status).0,
        attempts: letter.attempts,
        age: letter.age.clone().unwrap_or_else(|| "?".into()),
        plain: plain_french(&letter.reason),
        reason: letter.reason.clone(),
        readable: letter.readable,
        search_url: search_url(&letter.id),
    }
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
}

#[derive(Serialize)]
struct DeliveryView {
    envelope_id: String,
    display_id: Option<String>,
    connector: String,
    commune: String,
    form: String,
    status: String,
    status_word: &'static str,
    status_class: &'static str,
    attempts: u32,
    reference: Option<String>,
    timeline: Vec<Step>,
}

#[derive(Serialize)]
struct Step {
    at: String,
    when: String,
    text: String,
    raw: Option<String>,
}

async fn search(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(search): Query<Search>,
) -> Response {
    let q = search.q.trim().to_owned();
    let (deliveries, error) = if q.is_empty() {
        (
            Vec::new(),
            Some("Saisissez un numéro de démarche ou un identifiant.".to_owned()),
        )
    } else {
        match history::search(&state.store, &q).await {
            Ok(found) => (found, None),
            Err(e) => (Vec::new(), Some(store_trouble(&e))),
        }
    };
    let views: Vec<DeliveryView> = deliveries.into_iter().map(delivery_view).collect();
    render(
        "search.html",
        context! {
            q => q,
            deliveries => minijinja::Value::from(Serde(&views)),
            error => error,
            csrf => state.csrf_for(&headers),
            logged_in => admin::session_cookie(&headers).is_some_and(|id| state.sessions.is_open(&id)),
        },
    )
}

fn delivery_view(d: history::Delivery) -> DeliveryView {
    let (status_word, status_class) = status_words(&d.status);
    let mut timeline = vec![Step {
        at: d.first_seen_at.clone(),
        when: local_time(&d.first_seen_at),
        text: "reçue par la passerelle".into(),
        raw: None,
    }];
    for error in &d.errors {
        timeline.push(Step {
            at: error.at.clone(),
            when: local_time(&error.at),
            text: format!(
                "essai {} en échec : {}",
                error.attempt,
                plain_french(&error.error)
            ),
            raw: Some(error.error.clone()),
        });
    }
    for discard in &d.discards {
        timeline.push(Step {
            at: discard.at.clone(),
            when: local_time(&discard.at),
            text: format!("abandonnée par {} : {}", discard.by, discard.reason),
            raw: None,
        });
    }
    let last = match (d.status.as_str(), &d.reference) {
        ("delivered", Some(reference)) => format!("livrée, référence {reference} dans le logiciel"),
        ("delivered", None) => "livrée".to_owned(),
        _ => format!("{status_word} (après {} essai(s))", d.attempts),
    };
    timeline.push(Step {
        at: d.updated_at.clone(),
        when: local_time(&d.updated_at),
        text: last,
        raw: None,
    });
    // Times are stored with a fixed width: text order is time order.
    timeline.sort_by(|a, b| a.at.cmp(&b.at));
    DeliveryView {
        envelope_id: d.envelope_id,
        display_id: d.display_id,
        connector: d.connector,
        commune: d.commune,
        form: d.form,
        status: d.status,
        status_word,
        status_class,
        attempts: d.attempts,
        reference: d.reference,
        timeline,
    }
}

#[derive(Deserialize)]
struct DeadForm {
    #[serde(default)]
    csrf: String,
    /// Absent on the unrouted démarches' forms.
    #[serde(default)]
    connector: String,
    id: String,
    #[serde(default)]
    reason: String,
}

async fn replay(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Form(form): Form<DeadForm>,
) -> Response {
    replay_held(&state, &headers, form, Held::DeadLetters).await
}

async fn unrouted_replay(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Form(form): Form<DeadForm>,
) -> Response {
    replay_held(&state, &headers, form, Held::Unrouted).await
}

async fn discard(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Form(form): Form<DeadForm>,
) -> Response {
    discard_held(&state, &headers, form, Held::DeadLetters).await
}

async fn unrouted_discard(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Form(form): Form<DeadForm>,
) -> Response {
    discard_held(&state, &headers, form, Held::Unrouted).await
}

/// The connector a form names: none for an unrouted démarche, which has none.
fn form_connector(form: &DeadForm, held: Held) -> Option<String> {
    match held {
        Held::DeadLetters => Some(form.connector.clone()),
        Held::Unrouted => None,
    }
}

async fn replay_held(
    state: &AdminState,
    headers: &HeaderMap,
    form: DeadForm,
    held: Held,
) -> Response {
    if let Some(refused) = check_csrf(state, headers, &form.csrf) {
        return refused;
    }
    let request = ReplayRequest {
        id: Some(form.id.clone()),
        connector: form_connector(&form, held),
        ..ReplayRequest::default()
    };
    let result = match state.link.get(&state.config.bus).await {
        Ok(connection) => {
            state
                .operator(held, &connection)
                .replay(&state.store, &request, &mut |_| {})
                .await
        }
        Err(e) => Err(DeadError::from(e)),
    };
    let (replayed, nothing) = match held {
        Held::DeadLetters => ("replayed", "nothing"),
        Held::Unrouted => ("unrouted-replayed", "unrouted-nothing"),
    };
    match result {
        Ok(report) if !report.done.is_empty() => {
            info!(demarche.id = %form.id, connector = %form.connector, ?held, "replayed from the dashboard");
            notice_redirect(replayed, &form.id)
        }
        Ok(report) => match report.skipped.first() {
            Some(skipped) => action_failed(&format!(
                "La démarche {} n'a pas été renvoyée : {}",
                form.id, skipped.skipped_because
            )),
            None => notice_redirect(nothing, &form.id),
        },
        Err(e) => action_failed(&format!(
            "La démarche {} n'a pas pu être renvoyée : {e}",
            form.id
        )),
    }
}

async fn discard_held(
    state: &AdminState,
    headers: &HeaderMap,
    form: DeadForm,
    held: Held,
) -> Response {
    if let Some(refused) = check_csrf(state, headers, &form.csrf) {
        return refused;
    }
    if form.reason.trim().is_empty() {
        return action_failed(
            "Dites pourquoi vous abandonnez cette démarche : la raison est conservée.",
        );
    }
    let request = DiscardRequest {
        id: Some(form.id.clone()),
        connector: form_connector(&form, held),
        reason: form.reason.clone(),
        ..DiscardRequest::default()
    };
    let result = match state.link.get(&state.config.bus).await {
        Ok(connection) => {
            state
                .operator(held, &connection)
                .discard(&state.store, &request, DASHBOARD_DISCARDER, &mut |_| {})
                .await
        }
        Err(e) => Err(DeadError::from(e)),
    };
    let nothing = match held {
        Held::DeadLetters => "nothing",
        Held::Unrouted => "unrouted-nothing",
    };
    match result {
        Ok(report) if !report.done.is_empty() => {
            info!(demarche.id = %form.id, connector = %form.connector, ?held, "discarded from the dashboard");
            notice_redirect("discarded", &form.id)
        }
        Ok(_) => notice_redirect(nothing, &form.id),
        Err(e) => action_failed(&format!(
            "La démarche {} n'a pas pu être abandonnée : {e}",
            form.id
        )),
    }
}

fn notice_redirect(notice: &str, id: &str) -> Response {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("notice", notice)
        .append_pair("id", id)
        .finish();
    Redirect::to(&format!("/?{query}")).into_response()
}

fn action_failed(message: &str) -> Response {
    let page = templates()
        .get_template("base.html")
        .and_then(|template| template.render(context! { error => message }))
        .unwrap_or_else(|_| message.to_owned());
    (StatusCode::CONFLICT, Html(page)).into_response()
}

fn search_url(term: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", term)
        .finish();
    format!("/search?{query}")
}

/// A stored time (RFC 3339 UTC) as people in France read it: `29/11/2026 10:12:05`.
pub fn local_time(stored: &str) -> String {
    match OffsetDateTime::parse(stored, &Rfc3339) {
        Ok(at) => {
            let at = at.to_offset(france_offset(at));
            format!(
                "{:02}/{:02}/{} {:02}:{:02}:{:02}",
                at.day(),
                u8::from(at.month()),
                at.year(),
                at.hour(),
                at.minute(),
                at.second()
            )
        }
        Err(_) => stored.to_owned(),
    }
}

/// The words of a status, and the page's class for it.
fn status_words(status: &str) -> (&'static str, &'static str) {
    match status {
        "delivered" => ("livrée", "ok"),
        "retrying" => ("en attente d'un nouvel essai", "warn"),
        "rejected" => ("refusée (lettre morte)", "bad"),
        "dead" => ("abandonnée après plusieurs essais (lettre morte)", "bad"),
        "unrouted" => ("sans route : aucune route ne la prend", "warn"),
        _ => ("inconnue", "warn"),
    }
}

fn breaker_words(state: BreakerState) -> (&'static str, &'static str) {
    match state {
        BreakerState::Closed => ("répond", "ok"),
        BreakerState::Open => (
            "en pause : le logiciel ne répond plus, la passerelle vérifie régulièrement s'il revient",
            "bad",
        ),
        BreakerState::HalfOpen => ("essai de reprise en cours", "warn"),
    }
}

/// A failure's reason, as a connector reports it (in French for what the gateway and the
/// shipped connectors refuse; a target's own answer as it came), said in plain French for
/// the operator: what is wrong and who can fix it. The reason itself is always shown
/// beside it.
pub fn plain_french(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    let answered = |codes: &[&str]| {
        codes.iter().any(|code| {
            r.contains(&format!("answered {code}")) || r.contains(&format!("a répondu {code}"))
        })
    };
    // Reasons recorded before they were French stay in the store: both are recognised.
    if r.starts_with("invalid envelope") || r.starts_with("enveloppe invalide") {
        "Le portail a envoyé un message qui n'est pas une démarche valide : à abandonner, et à signaler aux administrateurs du portail."
    } else if r.contains("delivery limit")
        || r.contains("delivery_limit")
        || r.contains("limite de livraisons")
    {
        "La passerelle elle-même a échoué plusieurs fois sur cette démarche : prévenir les développeurs avant de la renvoyer."
    } else if r.starts_with("la règle légale")
        || r.contains("ne peut pas être émis")
        || r.contains("ne peut pas être écrite")
        || r.starts_with("dossier refusé")
    {
        "Le connecteur a refusé le document avant de le livrer (règle légale, champ manquant ou invalide) : lire le motif ; faire corriger la démarche sur le portail ou le mapping, puis renvoyer."
    } else if r.starts_with("mapping") || r.contains("file field") || r.contains("champ fichier") {
        "La correspondance (mapping) ne sait pas produire le document pour cette démarche : faire corriger le mapping, redémarrer la passerelle, puis renvoyer."
    } else if answered(&["401", "403"]) {
        "Le logiciel refuse les identifiants de la passerelle : les corriger dans la configuration, redémarrer, puis renvoyer."
    } else if answered(&["404", "405", "301", "302", "307", "308"]) {
        "L'adresse du logiciel dans la configuration n'est pas la bonne : la corriger, redémarrer, puis renvoyer."
    } else if answered(&["429"]) {
        "Le logiciel demande de ralentir (trop de demandes) : la passerelle réessaiera."
    } else if answered(&["500", "502", "503", "504", "408"])
        || r.contains("answered 5")
        || r.contains("a répondu 5")
    {
        "Le logiciel est en panne ou en maintenance : attendre son retour (voir avec l'éditeur ou la commune), puis renvoyer."
    } else if r.contains("timed out")
        || r.contains("timeout")
        || r.contains("n'a pas répondu dans le délai")
    {
        "Le logiciel ne répond pas à temps : vérifier qu'il fonctionne, puis renvoyer."
    } else if r.contains("no space") || r.contains("disk full") || r.contains("quota") {
        "Le disque où la passerelle dépose les fichiers est plein : libérer de la place, puis renvoyer."
    } else if r.contains("permission denied") {
        "La passerelle n'a pas le droit d'écrire là où elle dépose les fichiers : corriger les droits, puis renvoyer."
    } else if r.contains("connection refused")
        || r.contains("unreachable")
        || r.contains("request to")
        || r.contains("dns")
        // Not a bare "connect": the French reasons speak of the "connecteur".
        || r.contains("cannot connect")
        || r.contains("connection")
        || r.contains("connexion")
        || r.contains("se connecter")
        || r.contains("injoignable")
        || r.contains("la requête vers")
    {
        "Le logiciel est injoignable (connexion impossible) : vérifier qu'il fonctionne et que le réseau passe, puis renvoyer."
    } else if r.contains("answered 4")
        || r.contains("a répondu 4")
        || r.contains("refuse")
        || r.contains("reject")
    {
        "Le logiciel a refusé les données de la démarche : lire son message ; corriger ses réglages puis renvoyer, ou faire corriger la démarche sur le portail et abandonner celle-ci."
    } else {
        "Erreur technique : voir le détail, et la documentation des lettres mortes."
    }
}

/// A store error as the dashboard shows it: its own words already say "base de la
/// passerelle indisponible", so they are shown once, as a sentence (issue #17).
fn store_trouble(error: &crate::store::StoreError) -> String {
    let text = error.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests;
