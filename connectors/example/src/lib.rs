//! The `webhook` connector: each démarche is POSTed as JSON to a URL, signed with
//! HMAC-SHA256 so that the receiver can check it comes from the gateway.
//!
//! It is also the tutorial of `docs/connector-guide.md`: a small, complete connector.
//!
//! ```toml
//! [[connectors]]
//! name = "astreinte-voirie"
//! kind = "webhook"
//! url = "https://astreinte.example.org/hooks/demarches"
//! secret_file = "/etc/aiguillage/astreinte.key"   # or `secret = "…"`
//! timeout = "10s"                                 # default 10s
//! ```
//!
//! Each request carries:
//! - the document as its JSON body;
//! - `Idempotency-Key`: the envelope id (the same on every redelivery);
//! - `X-Aiguillage-Signature: t=<unix seconds>,v1=<hex>`, where `<hex>` is the
//!   HMAC-SHA256, keyed with the secret, of `<unix seconds>.<body>`. The receiver
//!   recomputes it, compares in constant time, and refuses a `t` too far from its clock.
//!
//! A 2xx answer delivers the démarche; 408, 429 and 5xx, a timeout or a connection error
//! are transient (retried); any other answer is a permanent refusal (dead letter): the
//! SDK's `http` module classifies them, as for the `rest` connector.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aiguillage_connector::http::{client_builder, read_limited, refusal, transport_error};
use aiguillage_connector::{
    async_trait, secret, ConfigError, Connector, ConnectorConfig, ConnectorError, Context,
    Document, Receipt, Setup,
};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The configuration of a `webhook` connector (its `[[connectors]]` table).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where each démarche is POSTed: an absolute `http` or `https` URL.
    pub url: String,
    /// The signing secret, inline (prefer `secret_file`).
    pub secret: Option<SecretString>,
    /// A file holding the signing secret (relative to the configuration's directory).
    pub secret_file: Option<PathBuf>,
    /// How long a request may take before it counts as a transient failure.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

impl ConnectorConfig for WebhookConfig {
    const KIND: &'static str = "webhook";

    fn build(self, setup: &Setup) -> Result<Arc<dyn Connector>, ConfigError> {
        // Everything that can be wrong in the configuration is found here, when the
        // gateway starts (or at `aiguillage check`), not at the first démarche.
        let url = reqwest::Url::parse(&self.url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or_else(|| {
                ConfigError::invalid(
                    "url",
                    format!("`{}` n'est pas une URL http(s) absolue, par exemple \"https://hooks.example.org/aiguillage\"", self.url),
                )
            })?;
        if self.timeout.is_zero() {
            return Err(ConfigError::invalid(
                "timeout",
                "le délai doit être supérieur à zéro, par exemple \"30s\"",
            ));
        }
        let secret = secret::resolve("secret", self.secret, self.secret_file.as_deref(), setup)?;
        if secret.expose_secret().len() < 16 {
            return Err(ConfigError::invalid(
                "secret",
                "le secret de signature doit compter au moins 16 caractères",
            ));
        }
        // The SDK's defaults: the whole request bounded, no redirects followed.
        let client = client_builder(self.timeout, self.timeout)
            .build()
            .map_err(|error| {
                ConfigError::invalid(
                    "url",
                    format!("le client HTTP n'a pas pu être créé : {error}"),
                )
            })?;
        let who = format!("le webhook {}", url.host_str().unwrap_or_default());
        Ok(Arc::new(WebhookConnector {
            client,
            url,
            secret,
            who,
            timeout: self.timeout,
        }))
    }
}

/// Delivers démarches to a signed webhook. One HTTP client (and its kept-alive
/// connections) serves every delivery.
pub struct WebhookConnector {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: SecretString,
    /// How messages name the target: `the webhook <host>` (never the URL: it may hold a
    /// key).
    who: String,
    timeout: Duration,
}

impl WebhookConnector {
    /// The signature header's value for `body` sent at `timestamp` (unix seconds).
    pub fn signature(&self, timestamp: u64, body: &[u8]) -> String {
        sign(self.secret.expose_secret().as_bytes(), timestamp, body)
    }
}

/// `t=<timestamp>,v1=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[async_trait]
impl Connector for WebhookConnector {
    async fn deliver(&self, document: &Document, ctx: &Context) -> Result<Receipt, ConnectorError> {
        // Serialising a JSON value cannot fail: no map has non-text keys.
        let body = serde_json::to_vec(document).map_err(|error| {
            ConnectorError::permanent(format!("le document n'a pas pu être encodé : {error}"))
        })?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let answer = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            // The receiver applies a démarche once, however often it is redelivered.
            .header("idempotency-key", ctx.idempotency_key())
            .header("x-aiguillage-signature", self.signature(now, &body))
            .body(body)
            .send()
            .await;
        // No answer (connection refused, timeout): worth trying again later.
        let response = answer.map_err(|error| transport_error(&self.who, error, self.timeout))?;
        if response.status().is_success() {
            // Read (a little of) the answer, so that its connection is kept alive.
            let _ = read_limited(response, 64 * 1024).await;
            return Ok(Receipt::new());
        }
        // 408, 429 and 5xx are transient (after `Retry-After` if given); any other answer
        // refuses this document for good: the operator fixes the cause and replays it.
        Err(refusal(&self.who, response, " (vérifier `url` et `secret`)").await)
    }

    async fn health(&self) -> Result<(), ConnectorError> {
        // Reachable is enough: any answer but a server error.
        match self.client.head(self.url.clone()).send().await {
            Ok(response) if !response.status().is_server_error() => Ok(()),
            Ok(response) => Err(ConnectorError::transient(format!(
                "le webhook a répondu {}",
                response.status()
            ))),
            Err(error) => Err(ConnectorError::transient(format!(
                "le webhook est injoignable : {error}"
            ))),
        }
    }
}
