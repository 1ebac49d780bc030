use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aiguillage_connector::secret::SecretString;
use aiguillage_connector::{ConfigError, Connector, ConnectorConfig, Setup};
use serde::Deserialize;

use crate::RestConnector;

/// The `timeout` used when none is given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The `connect_timeout` used when none is given.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Configuration of a `rest` connector: each démarche is sent as a JSON body to one URL.
///
/// ```toml
/// [[connectors]]
/// name = "urbanisme"
/// kind = "rest"
/// url = "https://urbanisme.example.fr/api/demandes"
/// method = "POST"
/// timeout = "30s"
/// reference_pointer = "/data/numero"
/// headers = { "X-Tenant" = "44043" }
///
/// [connectors.auth]
/// type = "oauth2"
/// token_url = "https://auth.example.fr/oauth/token"
/// client_id = "aiguillage"
/// client_secret_file = "/run/credentials/urbanisme-secret"
/// scope = "demandes:write"
/// ```
// `Debug` is written by hand: header values may hold a key the operator put there.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestConfig {
    /// The absolute `http` or `https` URL each démarche is sent to. Credentials do not
    /// belong in it: use `auth`.
    pub url: String,

    /// The HTTP method of the delivery: `POST` (the default), `PUT` or `PATCH`.
    #[serde(default)]
    pub method: Method,

    /// Extra headers sent with every delivery, e.g. `{ "X-Tenant" = "44043" }`. They may
    /// override `Content-Type`, not the headers the connector owns (`Idempotency-Key`,
    /// `X-Aiguillage-*`, and `Authorization` when `auth` sets it).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,

    /// How long a whole request may take, e.g. `"30s"`, `"2m"` (default 30s). Past it the
    /// delivery is a transient failure, retried later.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,

    /// How long connecting to the target may take (default 10s).
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,

    /// A JSON pointer (RFC 6901) into the target's JSON answer to take the receipt's
    /// reference from, e.g. `"/id"` or `"/data/numero"`. Without it the receipt has no
    /// reference. When the answer lacks it, the démarche is still delivered, without a
    /// reference, and a warning is logged.
    #[serde(default)]
    pub reference_pointer: Option<String>,

    /// A URL to probe the target's health with a `GET`. Without it the health check is a
    /// `HEAD` of `url`. Any answer but a 5xx counts as reachable.
    #[serde(default)]
    pub health_url: Option<String>,

    /// How the connector authenticates to the target (default: no authentication).
    #[serde(default)]
    pub auth: AuthConfig,
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

fn default_connect_timeout() -> Duration {
    DEFAULT_CONNECT_TIMEOUT
}

impl fmt::Debug for RestConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestConfig")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("reference_pointer", &self.reference_pointer)
            .field("health_url", &self.health_url)
            .field("auth", &self.auth)
            .finish()
    }
}

/// The HTTP method of a delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `POST`: the target creates a resource for the démarche.
    #[default]
    Post,
    /// `PUT`: the target stores the démarche at `url`.
    Put,
    /// `PATCH`: the target updates what is at `url`.
    Patch,
}

impl Method {
    pub(crate) fn to_http(self) -> reqwest::Method {
        match self {
            Self::Post => reqwest::Method::POST,
            Self::Put => reqwest::Method::PUT,
            Self::Patch => reqwest::Method::PATCH,
        }
    }
}

/// How the connector authenticates to the target: the `auth` table, chosen by its `type`.
///
/// Every secret is given either inline (`password = "…"`) or by file
/// (`password_file = "…"`, relative to the configuration's directory); it is never logged.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AuthConfig {
    /// `type = "none"`: no authentication (the default).
    #[default]
    None,
    /// `type = "basic"`: HTTP basic authentication.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        #[serde(default)]
        password: Option<SecretString>,
        /// A file holding the password, instead of `password`.
        #[serde(default)]
        password_file: Option<PathBuf>,
    },
    /// `type = "bearer"`: a fixed bearer token, sent as `Authorization: Bearer …`.
    Bearer {
        /// The token.
        #[serde(default)]
        token: Option<SecretString>,
        /// A file holding the token, instead of `token`.
        #[serde(default)]
        token_file: Option<PathBuf>,
    },
    /// `type = "api-key"`: a key sent in a header of its own.
    ApiKey {
        /// The header carrying the key, e.g. `X-Api-Key`.
        header: String,
        /// The key.
        #[serde(default)]
        value: Option<SecretString>,
        /// A file holding the key, instead of `value`.
        #[serde(default)]
        value_file: Option<PathBuf>,
    },
    /// `type = "oauth2"`: an access token obtained with the OAuth 2.0 client-credentials
    /// grant, cached and renewed before it expires or when the target answers 401.
    Oauth2 {
        /// The authorisation server's token endpoint, an absolute `http` or `https` URL.
        token_url: String,
        /// The client identifier.
        client_id: String,
        /// The client secret.
        #[serde(default)]
        client_secret: Option<SecretString>,
        /// A file holding the client secret, instead of `client_secret`.
        #[serde(default)]
        client_secret_file: Option<PathBuf>,
        /// The scope to ask for (space-separated), if the server wants one.
        #[serde(default)]
        scope: Option<String>,
        /// The audience to ask for (the target's identifier), if the server wants one.
        #[serde(default)]
        audience: Option<String>,
    },
}

impl ConnectorConfig for RestConfig {
    const KIND: &'static str = "rest";

    fn build(self, setup: &Setup) -> Result<Arc<dyn Connector>, ConfigError> {
        Ok(Arc::new(RestConnector::new(self, setup)?))
    }
}

/// Parses an absolute `http`/`https` URL of the configuration, refusing credentials in it.
pub(crate) fn parse_http_url(key: &str, text: &str) -> Result<url::Url, ConfigError> {
    let example = "par exemple \"https://logiciel.example.fr/api/demandes\"";
    let url = url::Url::parse(text).map_err(|error| {
        ConfigError::invalid(
            key,
            format!("ce n'est pas une URL absolue ({error}) : indiquer une URL http ou https absolue, {example}"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::invalid(
            key,
            format!(
                "le schéma `{}` n'est pas pris en charge : indiquer une URL http ou https, {example}",
                url.scheme()
            ),
        ));
    }
    if url.host().is_none() {
        return Err(ConfigError::invalid(
            key,
            format!("l'URL n'a pas d'hôte : indiquer une URL http ou https absolue, {example}"),
        ));
    }
    // The URL is printed in logs and errors, so it must not carry a password.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::invalid(
            key,
            "l'URL contient des identifiants : les retirer de l'URL et utiliser la table `auth`",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_named() {
        let config: RestConfig =
            serde_json::from_value(serde_json::json!({"url": "https://x.example"})).unwrap();
        assert_eq!(config.method, Method::Post);
        assert_eq!(config.timeout, DEFAULT_TIMEOUT);
        assert_eq!(config.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert!(matches!(config.auth, AuthConfig::None));
    }

    #[test]
    fn durations_and_auth_are_read() {
        let config: RestConfig = serde_json::from_value(serde_json::json!({
            "url": "https://x.example",
            "method": "PATCH",
            "timeout": "2m",
            "connect_timeout": "500ms",
            "auth": {"type": "api-key", "header": "X-Api-Key", "value": "k"},
        }))
        .unwrap();
        assert_eq!(config.method, Method::Patch);
        assert_eq!(config.timeout, Duration::from_secs(120));
        assert_eq!(config.connect_timeout, Duration::from_millis(500));
        assert!(matches!(config.auth, AuthConfig::ApiKey { .. }));
    }

    #[test]
    fn urls_are_checked() {
        assert!(parse_http_url("url", "https://x.example/api").is_ok());
        for bad in [
            "x.example/api",
            "ftp://x.example",
            "https://user:pw@x.example",
        ] {
            let error = parse_http_url("url", bad).unwrap_err();
            assert_eq!(error.key(), "url", "{bad}");
        }
        let error = parse_http_url("url", "https://user:pw@x.example").unwrap_err();
        assert!(!error.to_string().contains("pw"), "{error}");
    }
}
