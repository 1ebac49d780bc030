use std::fmt;
use std::time::{Duration, Instant};

use aiguillage_connector::{
    async_trait, ConfigError, Connector, ConnectorError, Context, Document, Receipt, Setup,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

use aiguillage_connector::http::{client_builder, read_limited, refusal, transport_error};

use crate::auth::Auth;
use crate::config::{parse_http_url, RestConfig};

/// The most of an answer read for the receipt's reference.
const MAX_ANSWER: usize = 1024 * 1024;

/// The most of an unused answer read so that its connection goes back to the pool;
/// past it the connection is closed instead.
const MAX_DRAINED: usize = 64 * 1024;

/// Headers the connector sets on every delivery, which `headers` cannot override.
const OWNED_HEADERS: [&str; 7] = [
    "idempotency-key",
    "x-aiguillage-commune",
    "x-aiguillage-form",
    "x-aiguillage-attempt",
    "content-length",
    "transfer-encoding",
    "host",
];

/// Delivers démarches as JSON to an HTTP API: the `rest` connector.
///
/// One HTTP client (and its pool of kept-alive connections) serves all the deliveries
/// of the connector.
pub struct RestConnector {
    client: Client,
    url: url::Url,
    method: reqwest::Method,
    headers: HeaderMap,
    timeout: Duration,
    reference_pointer: Option<String>,
    health_url: Option<url::Url>,
    auth: Auth,
    /// How messages name the target: `the target <host[:port]>`.
    target: String,
}

impl fmt::Debug for RestConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestConnector")
            .field("url", &self.url.as_str())
            .field("method", &self.method)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("reference_pointer", &self.reference_pointer)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl RestConnector {
    /// Checks `config`, resolves its secrets and builds the connector and its HTTP client.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the key at fault: a URL that is not absolute `http` or
    /// `https`, an invalid header, a zero timeout, a malformed `reference_pointer`, a
    /// missing or unreadable secret.
    pub fn new(config: RestConfig, setup: &Setup) -> Result<Self, ConfigError> {
        let url = parse_http_url("url", &config.url)?;
        let health_url = config
            .health_url
            .as_deref()
            .map(|text| parse_http_url("health_url", text))
            .transpose()?;
        for (key, value) in [
            ("timeout", config.timeout),
            ("connect_timeout", config.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(
                    key,
                    "le délai doit être supérieur à zéro, par exemple \"30s\"",
                ));
            }
        }
        if let Some(pointer) = &config.reference_pointer {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                return Err(ConfigError::invalid(
                    "reference_pointer",
                    format!("`{pointer}` n'est pas un pointeur JSON : il commence par `/`, par exemple \"/id\" ou \"/data/numero\""),
                ));
            }
        }
        let auth = Auth::new(config.auth, setup, config.timeout)?;
        let headers = extra_headers(&config.headers, &auth)?;
        let client = client_builder(config.timeout, config.connect_timeout)
            .build()
            .map_err(|error| {
                ConfigError::invalid(
                    "url",
                    format!("le client HTTP n'a pas pu être créé : {error}"),
                )
            })?;
        let target = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("la cible {host}:{port}"),
            (Some(host), None) => format!("la cible {host}"),
            (None, _) => "la cible".to_owned(),
        };
        Ok(Self {
            client,
            url,
            method: config.method.to_http(),
            headers,
            timeout: config.timeout,
            reference_pointer: config.reference_pointer,
            health_url,
            auth,
            target,
        })
    }

    /// The headers of one delivery, before authentication.
    fn delivery_headers(&self, ctx: &Context) -> Result<HeaderMap, ConnectorError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        for (name, value) in &self.headers {
            headers.insert(name, value.clone());
        }
        let attempt = ctx.attempt().to_string();
        for (name, what, value) in [
            ("idempotency-key", "envelope id", ctx.idempotency_key()),
            ("x-aiguillage-commune", "commune", ctx.commune()),
            ("x-aiguillage-form", "form", ctx.form()),
            ("x-aiguillage-attempt", "attempt", attempt.as_str()),
        ] {
            let value = HeaderValue::from_str(value).map_err(|_| {
                ConnectorError::permanent(format!(
                    "`{}` ({what}) ne peut pas être envoyé dans l'en-tête {name} : il contient des caractères qu'un en-tête ne peut pas porter",
                    value.escape_debug()
                ))
            })?;
            headers.insert(HeaderName::from_static(name), value);
        }
        Ok(headers)
    }

    /// The receipt of an accepted delivery, with the reference found in the answer.
    async fn receipt(&self, response: Response, ctx: &Context) -> Receipt {
        let Some(pointer) = &self.reference_pointer else {
            // Only read so that the connection can be reused.
            let _ = read_limited(response, MAX_DRAINED).await;
            return Receipt::new();
        };
        let status = response.status();
        let reference = match read_limited(response, MAX_ANSWER).await {
            Err(error) => Err(format!("sa réponse n'a pas pu être lue ({error})")),
            Ok((_, true)) => Err(format!("sa réponse dépasse {MAX_ANSWER} octets")),
            Ok((body, false)) => match serde_json::from_slice::<Value>(&body) {
                Err(_) => Err("sa réponse n'est pas du JSON".to_owned()),
                Ok(answer) => reference_at(&answer, pointer),
            },
        };
        match reference {
            Ok(reference) => Receipt::with_reference(reference),
            Err(reason) => {
                tracing::warn!(
                    parent: ctx.span(),
                    status = status.as_u16(),
                    reference_pointer = %pointer,
                    "{} accepted the démarche without a reference: {reason}",
                    self.target,
                );
                Receipt::new()
            }
        }
    }
}

#[async_trait]
impl Connector for RestConnector {
    async fn deliver(&self, document: &Document, ctx: &Context) -> Result<Receipt, ConnectorError> {
        let body = serde_json::to_vec(document).map_err(|error| {
            ConnectorError::permanent("le document n'a pas pu être encodé en JSON")
                .with_source(error)
        })?;
        let headers = self.delivery_headers(ctx)?;
        let mut renewed = false;
        loop {
            let request = self
                .client
                .request(self.method.clone(), self.url.clone())
                .headers(headers.clone())
                .body(body.clone());
            let (request, token) = self.auth.authorize(&self.client, request).await?;
            let started = Instant::now();
            let response = request
                .send()
                .await
                .map_err(|error| transport_error(&self.target, error, self.timeout))?;
            let status = response.status();
            tracing::debug!(
                parent: ctx.span(),
                status = status.as_u16(),
                duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "target answered"
            );
            if status.is_success() {
                return Ok(self.receipt(response, ctx).await);
            }
            // An OAuth 2.0 token may be revoked before it expires: one new try with a
            // new token tells a revoked token from credentials the target refuses.
            if status == StatusCode::UNAUTHORIZED && !renewed && self.auth.refused(token).await {
                tracing::info!(
                    parent: ctx.span(),
                    "{} refused the oauth2 token, trying again with a new one",
                    self.target,
                );
                renewed = true;
                continue;
            }
            let hint = match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => " (vérifier `auth`)",
                StatusCode::NOT_FOUND => " (vérifier `url`)",
                StatusCode::METHOD_NOT_ALLOWED => " (vérifier `method`)",
                _ => "",
            };
            return Err(refusal(&self.target, response, hint).await);
        }
    }

    async fn health(&self) -> Result<(), ConnectorError> {
        let request = match &self.health_url {
            Some(url) => self.client.get(url.clone()),
            None => self.client.head(self.url.clone()),
        };
        let response = request
            .send()
            .await
            .map_err(|error| transport_error(&self.target, error, self.timeout))?;
        if response.status().is_server_error() {
            return Err(refusal(&self.target, response, "").await);
        }
        let _ = read_limited(response, MAX_DRAINED).await;
        Ok(())
    }
}

/// Checks the extra `headers` of the configuration.
fn extra_headers(
    headers: &std::collections::BTreeMap<String, String>,
    auth: &Auth,
) -> Result<HeaderMap, ConfigError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let key = format!("headers.{name}");
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ConfigError::invalid(
                &key,
                format!("`{name}` n'est pas un nom d'en-tête valide, par exemple \"X-Tenant\""),
            )
        })?;
        if OWNED_HEADERS.contains(&header.as_str()) || header.as_str().starts_with("x-aiguillage-")
        {
            return Err(ConfigError::invalid(
                &key,
                "le connecteur pose cet en-tête lui-même : le retirer de `headers`",
            ));
        }
        if auth.header() == Some(&header) {
            return Err(ConfigError::invalid(
                &key,
                "`auth` pose cet en-tête : le retirer de `headers`",
            ));
        }
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            ConfigError::invalid(
                &key,
                "la valeur contient des caractères qu'un en-tête ne peut pas porter (saut de ligne, caractère de contrôle)",
            )
        })?;
        // An operator may put a key here rather than in `auth`: never print it.
        value.set_sensitive(true);
        map.insert(header, value);
    }
    Ok(map)
}

/// The reference at `pointer` in the target's answer, or why there is none.
fn reference_at(answer: &Value, pointer: &str) -> Result<String, String> {
    match answer.pointer(pointer) {
        None => Err(format!("sa réponse n'a rien en `{pointer}`")),
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        Some(Value::Number(number)) => Ok(number.to_string()),
        Some(other) => {
            let kind = match other {
                Value::Null => "null",
                Value::Bool(_) => "un booléen",
                Value::String(_) => "un texte vide",
                Value::Array(_) => "un tableau",
                Value::Object(_) => "un objet",
                Value::Number(_) => "un nombre",
            };
            Err(format!(
                "sa réponse a {kind} en `{pointer}`, ni un texte ni un nombre"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_strings_or_numbers() {
        let answer = serde_json::json!({"id": 42, "data": {"numero": "PC-1"}, "empty": ""});
        assert_eq!(reference_at(&answer, "/id").unwrap(), "42");
        assert_eq!(reference_at(&answer, "/data/numero").unwrap(), "PC-1");
        assert!(reference_at(&answer, "/data")
            .unwrap_err()
            .contains("un objet"));
        assert!(reference_at(&answer, "/empty").is_err());
        assert!(reference_at(&answer, "/missing")
            .unwrap_err()
            .contains("rien en `/missing`"));
    }
}
