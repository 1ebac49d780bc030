//! The `rest` connector against a real HTTP server on 127.0.0.1 that records what it
//! receives and answers as each test says.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aiguillage_connector::testkit::assert_french;
use aiguillage_connector::{
    ConfigError, Connector, ConnectorConfig, ConnectorError, ConnectorKind, Context, Setup,
};
use aiguillage_connector_rest::{RestConfig, RestConnector};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// A request the server received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// What the server answers to one request.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    fn json(status: u16, body: Value) -> Self {
        Self::status(status)
            .body(body.to_string())
            .header("content-type", "application/json")
    }

    fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Respond = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

#[derive(Clone)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    respond: Respond,
}

struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    async fn start(respond: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        let shared = Shared {
            seen: Arc::default(),
            respond: Arc::new(respond),
        };
        let seen = shared.seen.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(handle).with_state(shared);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self, path: &str) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|s| s.path == path).cloned().collect()
    }
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seen = Seen {
        method,
        path: uri.path().to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    shared.seen.lock().unwrap().push(seen.clone());
    let reply = (shared.respond)(&seen);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

fn setup() -> Setup {
    Setup::new("target", std::env::temp_dir())
}

fn build(config: Value) -> Result<Arc<dyn Connector>, ConfigError> {
    ConnectorKind::of::<RestConfig>().build(config, &setup())
}

fn connector(config: Value) -> Arc<dyn Connector> {
    build(config).unwrap()
}

fn config_error(config: Value) -> ConfigError {
    build(config).err().expect("the configuration is refused")
}

fn ctx() -> Context {
    Context::new("portal:42:1", "44043", "demande-acte", "target").with_attempt(2)
}

fn document() -> Value {
    json!({"nom": "Dupont", "marker": "DOCUMENT-BODY"})
}

async fn deliver_err(connector: &Arc<dyn Connector>) -> ConnectorError {
    let error = connector
        .deliver(&document(), &ctx())
        .await
        .expect_err("the delivery fails");
    // Every failure ends up in a status event or a dead letter a commune agent reads.
    assert_french(&error.report());
    error
}

#[tokio::test]
async fn a_2xx_answer_is_delivered_with_the_reference_and_all_headers() {
    let server = Server::start(|_| Reply::json(201, json!({"data": {"numero": "PC-12"}}))).await;
    let connector = connector(json!({
        "url": server.url("/api/demandes"),
        "reference_pointer": "/data/numero",
        "headers": {"X-Tenant": "nantes"},
    }));
    let receipt = connector.deliver(&document(), &ctx()).await.unwrap();
    assert_eq!(receipt.reference.as_deref(), Some("PC-12"));

    let seen = server.seen("/api/demandes");
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.header("idempotency-key"), Some("portal:42:1"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-aiguillage-commune"), Some("44043"));
    assert_eq!(request.header("x-aiguillage-form"), Some("demande-acte"));
    assert_eq!(request.header("x-aiguillage-attempt"), Some("2"));
    assert_eq!(request.header("x-tenant"), Some("nantes"));
    assert_eq!(request.header("authorization"), None);
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body, document());
}

#[tokio::test]
async fn a_2xx_answer_without_the_reference_is_still_delivered() {
    let server = Server::start(|_| Reply::json(200, json!({"status": "ok"}))).await;
    let with_pointer = connector(json!({"url": server.url("/api"), "reference_pointer": "/id"}));
    let receipt = with_pointer.deliver(&document(), &ctx()).await.unwrap();
    assert_eq!(receipt.reference, None);

    let server = Server::start(|_| Reply::status(204)).await;
    let with_pointer = connector(json!({"url": server.url("/api"), "reference_pointer": "/id"}));
    let receipt = with_pointer.deliver(&document(), &ctx()).await.unwrap();
    assert_eq!(receipt.reference, None);

    let put = connector(json!({"url": server.url("/api"), "method": "PUT"}));
    let receipt = put.deliver(&document(), &ctx()).await.unwrap();
    assert_eq!(receipt.reference, None);
    assert_eq!(server.seen("/api")[1].method, Method::PUT);
}

#[tokio::test]
async fn a_422_is_permanent_and_quotes_the_answer() {
    let server = Server::start(|_| {
        Reply::json(
            422,
            json!({"errors": [{"field": "date", "message": "invalide"}]}),
        )
    })
    .await;
    let connector = connector(json!({"url": server.url("/api")}));
    let error = deliver_err(&connector).await;
    assert!(error.is_permanent(), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(r#"a répondu 422 Unprocessable Entity : {"errors":[{"field":"date","message":"invalide"}]}"#),
        "{message}"
    );
    assert!(!message.contains("DOCUMENT-BODY"), "{message}");
}

#[tokio::test]
async fn a_long_answer_is_cut_on_a_character_boundary() {
    let server = Server::start(|_| Reply::status(400).body("é".repeat(2000))).await;
    let connector = connector(json!({"url": server.url("/api")}));
    let error = deliver_err(&connector).await;
    assert!(error.is_permanent());
    let message = error.to_string();
    let quoted = message.split_once(": ").unwrap().1;
    assert_eq!(quoted, format!("{}…", "é".repeat(500)));
}

#[tokio::test]
async fn a_503_with_retry_after_asks_for_that_delay() {
    let server = Server::start(|_| {
        Reply::status(503)
            .header("retry-after", "7")
            .body("maintenance")
    })
    .await;
    let connector = connector(json!({"url": server.url("/api")}));
    let error = deliver_err(&connector).await;
    assert_eq!(error.retry_after_delay(), Some(Duration::from_secs(7)));
    assert!(
        error
            .to_string()
            .contains("503 Service Unavailable : maintenance"),
        "{error}"
    );
}

#[tokio::test]
async fn a_500_408_or_429_is_transient() {
    for status in [500, 502, 408, 429] {
        let server = Server::start(move |_| Reply::status(status)).await;
        let connector = connector(json!({"url": server.url("/api")}));
        let error = deliver_err(&connector).await;
        assert!(
            matches!(error, ConnectorError::Transient { .. }),
            "{status}: {error:?}"
        );
        assert!(error.to_string().contains(&status.to_string()), "{error}");
    }
}

#[tokio::test]
async fn a_redirect_is_permanent_and_not_followed() {
    let server = Server::start(|seen| {
        if seen.path == "/old" {
            Reply::status(301).header("location", "/new")
        } else {
            Reply::status(200)
        }
    })
    .await;
    let connector = connector(json!({"url": server.url("/old")}));
    let error = deliver_err(&connector).await;
    assert!(error.is_permanent());
    assert!(error.to_string().contains("redirigé vers /new"), "{error}");
    assert!(server.seen("/new").is_empty());
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let connector = connector(json!({"url": format!("http://{addr}/api")}));
    let error = deliver_err(&connector).await;
    assert!(
        matches!(error, ConnectorError::Transient { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with(&format!("impossible de se connecter à la cible {addr}")),
        "{error}"
    );
    let error = connector.health().await.unwrap_err();
    assert!(
        matches!(error, ConnectorError::Transient { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_slow_target_is_a_transient_timeout() {
    let server = Server::start(|_| Reply::status(200).delay(Duration::from_secs(3))).await;
    let connector = connector(json!({"url": server.url("/api"), "timeout": "200ms"}));
    let started = std::time::Instant::now();
    let error = deliver_err(&connector).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(error, ConnectorError::Transient { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("n'a pas répondu dans le délai de 200ms"),
        "{error}"
    );
}

#[tokio::test]
async fn fixed_credentials_are_sent() {
    let server = Server::start(|_| Reply::status(200)).await;
    let secret_file = std::env::temp_dir().join(format!("rest-test-pw-{}", std::process::id()));
    std::fs::write(&secret_file, "pw\n").unwrap();
    let configs = [
        (
            "/basic",
            json!({"type": "basic", "username": "agent", "password_file": secret_file}),
            "authorization",
            "Basic YWdlbnQ6cHc=",
        ),
        (
            "/bearer",
            json!({"type": "bearer", "token": "t0k"}),
            "authorization",
            "Bearer t0k",
        ),
        (
            "/api-key",
            json!({"type": "api-key", "header": "X-Api-Key", "value": "k3y"}),
            "x-api-key",
            "k3y",
        ),
    ];
    for (path, auth, header, expected) in configs {
        let connector = connector(json!({"url": server.url(path), "auth": auth}));
        connector.deliver(&document(), &ctx()).await.unwrap();
        assert_eq!(
            server.seen(path)[0].header(header),
            Some(expected),
            "{path}"
        );
    }
    std::fs::remove_file(secret_file).unwrap();
}

#[tokio::test]
async fn health_counts_any_answer_but_5xx_as_reachable() {
    let server = Server::start(|seen| match seen.path.as_str() {
        "/down" => Reply::status(503),
        "/api" => Reply::status(405),
        _ => Reply::status(200),
    })
    .await;
    let head = connector(json!({"url": server.url("/api")}));
    head.health().await.unwrap();
    assert_eq!(server.seen("/api")[0].method, Method::HEAD);

    let probe = connector(json!({"url": server.url("/api"), "health_url": server.url("/health")}));
    probe.health().await.unwrap();
    assert_eq!(server.seen("/health")[0].method, Method::GET);

    let down = connector(json!({"url": server.url("/api"), "health_url": server.url("/down")}));
    let error = down.health().await.unwrap_err();
    assert!(
        matches!(error, ConnectorError::Transient { .. }),
        "{error:?}"
    );
}

/// An authorisation server at `/token` issuing `tok-1`, `tok-2`… and a target at `/api`
/// accepting only tokens numbered `valid_from` or more.
struct OAuth2Target {
    server: Server,
    valid_from: Arc<AtomicUsize>,
}

impl OAuth2Target {
    async fn start(expires_in: u64, token_delay: Duration) -> Self {
        let issued = Arc::new(AtomicUsize::new(0));
        let valid_from = Arc::new(AtomicUsize::new(1));
        let accepted = valid_from.clone();
        let server = Server::start(move |seen| match seen.path.as_str() {
            "/token" => {
                let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
                Reply::json(
                    200,
                    json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": expires_in}),
                )
                .delay(token_delay)
            }
            _ => {
                let n: usize = seen
                    .header("authorization")
                    .and_then(|value| value.strip_prefix("Bearer tok-"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                if n >= accepted.load(Ordering::SeqCst) {
                    Reply::json(201, json!({"id": n}))
                } else {
                    Reply::status(401).body(r#"{"error":"invalid_token"}"#)
                }
            }
        })
        .await;
        Self { server, valid_from }
    }

    fn connector(&self) -> Arc<dyn Connector> {
        connector(json!({
            "url": self.server.url("/api"),
            "reference_pointer": "/id",
            "auth": {
                "type": "oauth2",
                "token_url": self.server.url("/token"),
                "client_id": "client",
                "client_secret": "s3cret",
                "scope": "demandes:write",
                "audience": "urbanisme",
            },
        }))
    }

    fn token_requests(&self) -> Vec<Seen> {
        self.server.seen("/token")
    }
}

#[tokio::test]
async fn an_oauth2_token_is_fetched_once_for_concurrent_deliveries() {
    let target = OAuth2Target::start(3600, Duration::from_millis(200)).await;
    let connector = target.connector();
    let mut deliveries = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let connector = connector.clone();
        deliveries.spawn(async move { connector.deliver(&document(), &ctx()).await });
    }
    while let Some(result) = deliveries.join_next().await {
        let receipt = result.unwrap().unwrap();
        assert_eq!(receipt.reference.as_deref(), Some("1"));
    }
    let tokens = target.token_requests();
    assert_eq!(tokens.len(), 1);
    let token = &tokens[0];
    assert_eq!(token.method, Method::POST);
    assert_eq!(
        token.header("authorization"),
        Some("Basic Y2xpZW50OnMzY3JldA==")
    );
    assert_eq!(
        token.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        token.body,
        "grant_type=client_credentials&scope=demandes%3Awrite&audience=urbanisme"
    );
    let deliveries = target.server.seen("/api");
    assert_eq!(deliveries.len(), 20);
    assert!(deliveries
        .iter()
        .all(|seen| seen.header("authorization") == Some("Bearer tok-1")));
}

#[tokio::test]
async fn an_oauth2_token_is_renewed_before_it_expires() {
    let target = OAuth2Target::start(1, Duration::ZERO).await;
    let connector = target.connector();
    connector.deliver(&document(), &ctx()).await.unwrap();
    connector.deliver(&document(), &ctx()).await.unwrap();
    assert_eq!(target.token_requests().len(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let receipt = connector.deliver(&document(), &ctx()).await.unwrap();
    assert_eq!(receipt.reference.as_deref(), Some("2"));
    assert_eq!(target.token_requests().len(), 2);
}

#[tokio::test]
async fn an_oauth2_token_refused_with_401_is_renewed_and_the_request_sent_again() {
    let target = OAuth2Target::start(3600, Duration::ZERO).await;
    let connector = target.connector();
    connector.deliver(&document(), &ctx()).await.unwrap();
    // The target revokes tok-1 before it expires.
    target.valid_from.store(2, Ordering::SeqCst);
    let receipt = connector.deliver(&document(), &ctx()).await.unwrap();
    assert_eq!(receipt.reference.as_deref(), Some("2"));
    assert_eq!(target.token_requests().len(), 2);
    let deliveries = target.server.seen("/api");
    assert_eq!(deliveries.len(), 3);
    assert_eq!(deliveries[1].header("authorization"), Some("Bearer tok-1"));
    assert_eq!(deliveries[2].header("authorization"), Some("Bearer tok-2"));
    assert_eq!(deliveries[2].header("idempotency-key"), Some("portal:42:1"));
}

#[tokio::test]
async fn a_second_401_with_a_new_token_is_permanent() {
    let target = OAuth2Target::start(3600, Duration::ZERO).await;
    target.valid_from.store(usize::MAX, Ordering::SeqCst);
    let connector = target.connector();
    let error = deliver_err(&connector).await;
    assert!(error.is_permanent(), "{error:?}");
    assert!(error.to_string().contains("401 Unauthorized"), "{error}");
    assert_eq!(target.token_requests().len(), 2);
    assert_eq!(target.server.seen("/api").len(), 2);
}

#[tokio::test]
async fn token_endpoint_failures_are_classified() {
    let server = Server::start(|seen| match seen.path.as_str() {
        "/refused" => Reply::json(401, json!({"error": "invalid_client"})),
        "/down" => Reply::status(503),
        "/html" => Reply::status(200).body("<html>maintenance</html>"),
        _ => Reply::status(200),
    })
    .await;
    let with_token_url = |path: &str| {
        connector(json!({
            "url": server.url("/api"),
            "auth": {
                "type": "oauth2",
                "token_url": server.url(path),
                "client_id": "client",
                "client_secret": "s3cret",
            },
        }))
    };

    let error = deliver_err(&with_token_url("/refused")).await;
    assert!(error.is_permanent(), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&server.url("/refused")), "{message}");
    assert!(message.contains("401 Unauthorized"), "{message}");
    assert!(message.contains("invalid_client"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");

    let error = deliver_err(&with_token_url("/down")).await;
    assert!(
        matches!(error, ConnectorError::Transient { .. }),
        "{error:?}"
    );

    let error = deliver_err(&with_token_url("/html")).await;
    assert!(
        matches!(error, ConnectorError::Transient { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("sans jeton d'accès utilisable"),
        "{error}"
    );
    assert!(server.seen("/api").is_empty());
}

#[test]
fn config_errors_the_connector_finds_are_told_in_french() {
    // serde's own messages (unknown key, bad value) are put in French by the gateway,
    // which adds the closest key; these are the connector's own checks.
    for config in [
        json!({"url": "urbanisme.example.fr/api"}),
        json!({"url": "ftp://example.fr/"}),
        json!({"url": "https://agent:pw@example.fr/"}),
        json!({"url": "https://example.fr/", "timeout": "0s"}),
        json!({"url": "https://example.fr/", "connect_timeout": "0s"}),
        json!({"url": "https://example.fr/", "reference_pointer": "id"}),
        json!({"url": "https://example.fr/", "auth": {"type": "basic", "username": "agent"}}),
        json!({"url": "https://example.fr/", "auth": {"type": "basic", "username": "a:b", "password": "p"}}),
        json!({"url": "https://example.fr/", "auth": {"type": "bearer", "token": "a\nb"}}),
        json!({"url": "https://example.fr/", "auth": {"type": "bearer", "token": "t", "token_file": "x"}}),
        json!({"url": "https://example.fr/", "auth": {"type": "bearer", "token": ""}}),
        json!({"url": "https://example.fr/", "auth": {"type": "api-key", "header": "X Cle", "value": "v"}}),
        json!({"url": "https://example.fr/", "auth": {"type": "api-key", "header": "X-Cle", "value": "a\nb"}}),
        json!({"url": "https://example.fr/", "auth": {"type": "oauth2", "token_url": "/token", "client_id": "c", "client_secret": "s"}}),
        json!({"url": "https://example.fr/", "auth": {"type": "oauth2", "token_url": "https://idp.example.fr/token", "client_id": "", "client_secret": "s"}}),
        json!({"url": "https://example.fr/", "auth": {"type": "bearer", "token_file": "absent"}}),
        json!({"url": "https://example.fr/", "headers": {"Idempotency-Key": "x"}}),
        json!({"url": "https://example.fr/", "headers": {"X Bad": "x"}}),
        json!({"url": "https://example.fr/", "headers": {"X-Bad": "a\nb"}}),
        json!({"url": "https://example.fr/", "headers": {"Authorization": "x"}, "auth": {"type": "bearer", "token": "t"}}),
    ] {
        let error = build(config.clone())
            .err()
            .unwrap_or_else(|| panic!("{config} accepted"));
        assert_french(&error.to_string());
    }
}

#[test]
fn config_errors_name_the_key() {
    let error = config_error(json!({"url": "urbanisme.example.fr/api"}));
    assert_eq!(error.key(), "url");
    assert!(
        error.to_string().contains("URL http ou https absolue"),
        "{error}"
    );

    let error = config_error(json!({"url": "ftp://example.fr/"}));
    assert_eq!(error.key(), "url");

    let error = config_error(json!({"url": "https://example.fr/", "tiemout": "3s"}));
    assert!(
        error.to_string().contains("unknown field `tiemout`"),
        "{error}"
    );

    let error = config_error(json!({"url": "https://example.fr/", "timeout": "soon"}));
    assert_eq!(error.key(), "timeout");

    let error = config_error(json!({"url": "https://example.fr/", "timeout": "0s"}));
    assert_eq!(error.key(), "timeout");

    let error = config_error(json!({"url": "https://example.fr/", "method": "GET"}));
    assert_eq!(error.key(), "method");

    let error = config_error(json!({"url": "https://example.fr/", "reference_pointer": "id"}));
    assert_eq!(error.key(), "reference_pointer");

    let error = config_error(json!({
        "url": "https://example.fr/",
        "auth": {"type": "basic", "username": "agent"},
    }));
    assert!(
        matches!(error, ConfigError::MissingSecret { .. }),
        "{error:?}"
    );
    assert_eq!(error.key(), "auth.password");
    assert!(
        error.to_string().contains("`auth.password_file`"),
        "{error}"
    );

    let error = config_error(json!({
        "url": "https://example.fr/",
        "auth": {"type": "oauth2", "token_url": "/token", "client_id": "c", "client_secret": "s"},
    }));
    assert_eq!(error.key(), "auth.token_url");

    let error = config_error(json!({
        "url": "https://example.fr/",
        "auth": {"type": "bearer", "token": "t", "tokn_file": "x"},
    }));
    assert!(
        error.to_string().contains("unknown field `tokn_file`"),
        "{error}"
    );

    let error = config_error(json!({
        "url": "https://example.fr/",
        "auth": {"type": "kerberos"},
    }));
    assert!(error.to_string().contains("kerberos"), "{error}");

    let error = config_error(json!({
        "url": "https://example.fr/",
        "headers": {"Idempotency-Key": "x"},
    }));
    assert_eq!(error.key(), "headers.Idempotency-Key");

    let error = config_error(json!({
        "url": "https://example.fr/",
        "headers": {"Authorization": "x"},
        "auth": {"type": "bearer", "token": "t"},
    }));
    assert_eq!(error.key(), "headers.Authorization");

    let error = config_error(json!({
        "url": "https://example.fr/",
        "headers": {"X-Bad": "a\nb"},
    }));
    assert_eq!(error.key(), "headers.X-Bad");
}

#[test]
fn debug_does_not_print_secrets() {
    let configs = [
        json!({"type": "basic", "username": "agent", "password": "SECRET-1"}),
        json!({"type": "bearer", "token": "SECRET-1"}),
        json!({"type": "api-key", "header": "X-Api-Key", "value": "SECRET-1"}),
        json!({
            "type": "oauth2",
            "token_url": "https://auth.example.fr/token",
            "client_id": "client",
            "client_secret": "SECRET-1",
        }),
    ];
    for auth in configs {
        let config: RestConfig = serde_json::from_value(json!({
            "url": "https://example.fr/api",
            "headers": {"X-Other-Key": "SECRET-2"},
            "auth": auth,
        }))
        .unwrap();
        let text = format!("{config:?}");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(
            text.contains("x-other-key") || text.contains("X-Other-Key"),
            "{text}"
        );

        let connector = RestConnector::new(config.clone(), &setup()).unwrap();
        let text = format!("{connector:?}");
        assert!(!text.contains("SECRET"), "{text}");

        assert_eq!(<RestConfig as ConnectorConfig>::KIND, "rest");
        assert!(config.build(&setup()).is_ok());
    }
}

#[tokio::test]
async fn deliveries_waiting_for_a_failed_token_request_share_its_failure() {
    let server = Server::start(|seen| match seen.path.as_str() {
        "/token" => Reply::status(503).delay(Duration::from_millis(200)),
        _ => Reply::status(200),
    })
    .await;
    let connector = connector(json!({
        "url": server.url("/api"),
        "auth": {
            "type": "oauth2",
            "token_url": server.url("/token"),
            "client_id": "client",
            "client_secret": "s3cret",
        },
    }));
    let mut deliveries = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let connector = connector.clone();
        deliveries.spawn(async move { connector.deliver(&document(), &ctx()).await });
    }
    while let Some(result) = deliveries.join_next().await {
        let error = result.unwrap().expect_err("no token, no delivery");
        assert!(
            matches!(error, ConnectorError::Transient { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("503"), "{error}");
    }
    assert_eq!(server.seen("/token").len(), 1);
    // A later delivery asks again.
    deliver_err(&connector).await;
    assert_eq!(server.seen("/token").len(), 2);
}
