//! Authentication to the target: fixed credentials, or OAuth 2.0 client-credentials
//! tokens cached across deliveries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aiguillage_connector::secret::{self, ExposeSecret, SecretString};
use aiguillage_connector::{ConfigError, ConnectorError, Setup};
use reqwest::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::{parse_http_url, AuthConfig};
use aiguillage_connector::http::{read_limited, refusal, transport_error};

/// A token is renewed this long before the authorisation server says it expires, so
/// that it does not expire on its way to the target.
const REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// The largest token endpoint answer read: a token answer is a few kilobytes at most.
const MAX_TOKEN_ANSWER: usize = 256 * 1024;

/// Identifies the OAuth 2.0 token a request was sent with, to renew exactly that one
/// when the target refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenId(u64);

/// The authentication of the connector, with its secrets resolved.
#[derive(Debug)]
pub(crate) enum Auth {
    None,
    Basic {
        username: String,
        password: SecretString,
    },
    Bearer {
        token: SecretString,
    },
    ApiKey {
        header: HeaderName,
        value: HeaderValue,
    },
    // Boxed: one per connector, much larger than the other variants.
    OAuth2(Box<OAuth2>),
}

impl Auth {
    /// Resolves the secrets of `config` and checks its keys.
    ///
    /// `timeout` is the HTTP client's, used in the messages of token requests.
    pub(crate) fn new(
        config: AuthConfig,
        setup: &Setup,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        Ok(match config {
            AuthConfig::None => Self::None,
            AuthConfig::Basic {
                username,
                password,
                password_file,
            } => {
                // RFC 7617: the user-id of basic authentication cannot contain a colon.
                if username.contains(':') {
                    return Err(ConfigError::invalid(
                        "auth.username",
                        "un nom d'utilisateur d'authentification basique ne peut pas contenir `:`",
                    ));
                }
                let password =
                    secret::resolve("auth.password", password, password_file.as_deref(), setup)?;
                Self::Basic { username, password }
            }
            AuthConfig::Bearer { token, token_file } => {
                let token = secret::resolve("auth.token", token, token_file.as_deref(), setup)?;
                if HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).is_err() {
                    return Err(ConfigError::invalid(
                        "auth.token",
                        "le jeton contient des caractères qu'un en-tête ne peut pas porter (saut de ligne, caractère de contrôle)",
                    ));
                }
                Self::Bearer { token }
            }
            AuthConfig::ApiKey {
                header,
                value,
                value_file,
            } => {
                let name = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                    ConfigError::invalid(
                        "auth.header",
                        format!("`{header}` n'est pas un nom d'en-tête valide, par exemple \"X-Api-Key\""),
                    )
                })?;
                let value = secret::resolve("auth.value", value, value_file.as_deref(), setup)?;
                let mut value = HeaderValue::from_str(value.expose_secret()).map_err(|_| {
                    ConfigError::invalid(
                        "auth.value",
                        "la clé contient des caractères qu'un en-tête ne peut pas porter (saut de ligne, caractère de contrôle)",
                    )
                })?;
                value.set_sensitive(true);
                Self::ApiKey {
                    header: name,
                    value,
                }
            }
            AuthConfig::Oauth2 {
                token_url,
                client_id,
                client_secret,
                client_secret_file,
                scope,
                audience,
            } => {
                let token_url = parse_http_url("auth.token_url", &token_url)?;
                if client_id.is_empty() {
                    return Err(ConfigError::invalid(
                        "auth.client_id",
                        "l'identifiant client est vide : indiquer celui que le serveur d'autorisation a fourni",
                    ));
                }
                let client_secret = secret::resolve(
                    "auth.client_secret",
                    client_secret,
                    client_secret_file.as_deref(),
                    setup,
                )?;
                Self::OAuth2(Box::new(OAuth2 {
                    token_url,
                    client_id,
                    client_secret,
                    scope,
                    audience,
                    timeout,
                    answered: AtomicU64::new(0),
                    cache: Mutex::new(Cache::default()),
                }))
            }
        })
    }

    /// The header this authentication sets, which extra `headers` must not override.
    pub(crate) fn header(&self) -> Option<&HeaderName> {
        match self {
            Self::None => None,
            Self::Basic { .. } | Self::Bearer { .. } | Self::OAuth2(_) => {
                Some(&reqwest::header::AUTHORIZATION)
            }
            Self::ApiKey { header, .. } => Some(header),
        }
    }

    /// Adds the credentials to `request`, fetching an OAuth 2.0 token when none is fresh.
    ///
    /// Returns which token was used, if any, for [`Auth::refused`].
    pub(crate) async fn authorize(
        &self,
        client: &Client,
        request: RequestBuilder,
    ) -> Result<(RequestBuilder, Option<TokenId>), ConnectorError> {
        Ok(match self {
            Self::None => (request, None),
            Self::Basic { username, password } => (
                request.basic_auth(username, Some(password.expose_secret())),
                None,
            ),
            Self::Bearer { token } => (request.bearer_auth(token.expose_secret()), None),
            Self::ApiKey { header, value } => (request.header(header, value.clone()), None),
            Self::OAuth2(oauth2) => {
                let token = oauth2.token(client).await?;
                (
                    request.header(reqwest::header::AUTHORIZATION, token.authorization),
                    Some(token.id),
                )
            }
        })
    }

    /// Tells that the target answered 401 to a request sent with `used`: returns whether
    /// sending it again may succeed (a new OAuth 2.0 token will then be fetched).
    pub(crate) async fn refused(&self, used: Option<TokenId>) -> bool {
        match (self, used) {
            (Self::OAuth2(oauth2), Some(used)) => {
                oauth2.forget(used).await;
                true
            }
            _ => false,
        }
    }
}

/// An OAuth 2.0 client-credentials client (RFC 6749 section 4.4) with its token cache.
#[derive(Debug)]
pub(crate) struct OAuth2 {
    token_url: url::Url,
    client_id: String,
    client_secret: SecretString,
    scope: Option<String>,
    audience: Option<String>,
    timeout: Duration,
    /// How many token requests got an answer (or failed), read without the lock so that
    /// a delivery can tell whether one failed while it waited for the lock.
    answered: AtomicU64,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    token: Option<Token>,
    issued: u64,
    /// The last failed token request (its number in `answered`), shared with the
    /// deliveries that waited for it rather than each trying again in turn.
    failure: Option<(u64, Failure)>,
}

#[derive(Debug, Clone)]
struct Token {
    id: TokenId,
    /// `Bearer …`, marked sensitive so that it never prints.
    authorization: HeaderValue,
    /// When to stop using it; `None` when the server gave no lifetime: then it is kept
    /// until the target refuses it.
    renew_at: Option<Instant>,
}

/// A [`ConnectorError`] kept to be given to several deliveries.
#[derive(Debug, Clone)]
struct Failure {
    message: String,
    permanent: bool,
    after: Option<Duration>,
}

impl Failure {
    fn of(error: &ConnectorError) -> Self {
        Self {
            message: error.report(),
            permanent: error.is_permanent(),
            after: error.retry_after_delay(),
        }
    }

    fn to_error(&self) -> ConnectorError {
        match (self.permanent, self.after) {
            (true, _) => ConnectorError::permanent(self.message.clone()),
            (false, Some(after)) => ConnectorError::retry_after(self.message.clone(), after),
            (false, None) => ConnectorError::transient(self.message.clone()),
        }
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<Lifetime>,
}

/// `expires_in` is a number in RFC 6749, but some servers send it as a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Lifetime {
    Seconds(u64),
    Text(String),
}

impl Lifetime {
    fn seconds(&self) -> Option<u64> {
        match self {
            Self::Seconds(seconds) => Some(*seconds),
            Self::Text(text) => text.trim().parse().ok(),
        }
    }
}

impl OAuth2 {
    /// A fresh token: the cached one, or a new one. Only one token request runs at a
    /// time; the deliveries that need a token meanwhile wait for its result.
    async fn token(&self, client: &Client) -> Result<Token, ConnectorError> {
        let answered_before = self.answered.load(Ordering::Acquire);
        let mut cache = self.cache.lock().await;
        if let Some(token) = &cache.token {
            if token.renew_at.is_none_or(|at| Instant::now() < at) {
                return Ok(token.clone());
            }
        }
        if let Some((answer, failure)) = &cache.failure {
            if *answer > answered_before {
                return Err(failure.to_error());
            }
        }
        let asked_at = Instant::now();
        let fetched = self.fetch(client).await;
        let answer = self.answered.fetch_add(1, Ordering::AcqRel) + 1;
        match fetched {
            Ok((mut authorization, lifetime)) => {
                authorization.set_sensitive(true);
                cache.issued += 1;
                let token = Token {
                    id: TokenId(cache.issued),
                    authorization,
                    // A lifetime too long for an `Instant` is as good as none.
                    renew_at: lifetime.and_then(|lifetime| {
                        asked_at.checked_add(lifetime - REFRESH_MARGIN.min(lifetime / 2))
                    }),
                };
                cache.token = Some(token.clone());
                cache.failure = None;
                Ok(token)
            }
            Err(error) => {
                cache.token = None;
                cache.failure = Some((answer, Failure::of(&error)));
                Err(error)
            }
        }
    }

    /// Drops the token `used` if it is still the cached one (another delivery may have
    /// renewed it already).
    async fn forget(&self, used: TokenId) {
        let mut cache = self.cache.lock().await;
        if cache.token.as_ref().is_some_and(|token| token.id == used) {
            cache.token = None;
        }
    }

    /// Asks the token endpoint for a token: its `Authorization` value and lifetime.
    async fn fetch(
        &self,
        client: &Client,
    ) -> Result<(HeaderValue, Option<Duration>), ConnectorError> {
        let endpoint = format!("le point d'accès des jetons OAuth2 {}", self.token_url);
        // The serializer is not `Send`: it must be gone before the first await.
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if let Some(scope) = &self.scope {
                form.append_pair("scope", scope);
            }
            if let Some(audience) = &self.audience {
                form.append_pair("audience", audience);
            }
            form.finish()
        };
        // RFC 6749 2.3.1: the client id and secret are form-encoded, then sent with
        // HTTP basic authentication.
        let username: String =
            url::form_urlencoded::byte_serialize(self.client_id.as_bytes()).collect();
        let password = SecretString::from(
            url::form_urlencoded::byte_serialize(self.client_secret.expose_secret().as_bytes())
                .collect::<String>(),
        );
        let response = client
            .post(self.token_url.clone())
            .basic_auth(username, Some(password.expose_secret()))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(form)
            .send()
            .await
            .map_err(|error| transport_error(&endpoint, error, self.timeout))?;
        let status = response.status();
        if !status.is_success() {
            let hint = if status.is_client_error()
                && !matches!(
                    status,
                    StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS
                ) {
                " (vérifier `auth.client_id`, `auth.client_secret`, `auth.scope` et `auth.token_url`)"
            } else {
                ""
            };
            return Err(refusal(&endpoint, response, hint).await);
        }
        let malformed = |why: String| {
            ConnectorError::transient(format!(
                "{endpoint} a répondu {status} sans jeton d'accès utilisable : {why}"
            ))
        };
        let (body, _) = read_limited(response, MAX_TOKEN_ANSWER)
            .await
            .map_err(|error| transport_error(&endpoint, error, self.timeout))?;
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|error| {
            malformed(format!(
                "ce n'est pas une réponse de jeton en JSON (décodeur : « {error} »)"
            ))
        })?;
        let authorization = HeaderValue::from_str(&format!("Bearer {}", answer.access_token))
            .map_err(|_| {
                malformed(
                    "le jeton contient des caractères qu'un en-tête ne peut pas porter".into(),
                )
            })?;
        if answer.access_token.is_empty() {
            return Err(malformed("`access_token` est vide".into()));
        }
        let lifetime = answer
            .expires_in
            .as_ref()
            .and_then(Lifetime::seconds)
            .map(Duration::from_secs);
        Ok((authorization, lifetime))
    }
}
