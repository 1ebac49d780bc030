//! HTTP building blocks for connectors that call an API (feature `http`), as the `rest`
//! connector uses them: a client with the gateway's defaults, and the classification of
//! failures into transient and permanent with messages an operator can act on.
//!
//! | answer | error |
//! |---|---|
//! | no answer: connection refused, timeout, cut off | [`transport_error`]: transient |
//! | 408, 429, 5xx | [`refusal`]: transient, after `Retry-After` when given |
//! | 3xx, other 4xx | [`refusal`]: permanent, quoting the start of the answer |

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{Response, StatusCode};

use crate::ConnectorError;

/// The most of an answer body quoted in an error message, in characters.
const QUOTED_CHARS: usize = 500;

/// A client builder with the gateway's defaults: the whole request bounded by `timeout`,
/// connecting by `connect_timeout`, redirects not followed (a redirected POST would become
/// a GET without its body: better to say so), and an `aiguillage/<version>` user agent.
pub fn client_builder(timeout: Duration, connect_timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("aiguillage/", env!("CARGO_PKG_VERSION")))
}

/// A request to `who` that got no answer: always worth trying again later.
pub fn transport_error(who: &str, error: reqwest::Error, timeout: Duration) -> ConnectorError {
    let message = if error.is_connect() {
        format!("impossible de se connecter à {who}")
    } else if error.is_timeout() {
        format!("{who} n'a pas répondu dans le délai de {timeout:?}")
    } else if error.is_body() || error.is_decode() {
        format!("la réponse de {who} a été coupée")
    } else {
        format!("la requête vers {who} a échoué")
    };
    // The URL may hold a key in its query: the message names the host only.
    ConnectorError::transient(message).with_source(error.without_url())
}

/// The error for an answer of `who` that is not a success, quoting the start of its body.
///
/// 408, 429 and 5xx are transient (after the delay of `Retry-After` if given), anything
/// else permanent. `hint` is appended to the message.
pub async fn refusal(who: &str, response: Response, hint: &str) -> ConnectorError {
    let status = response.status();
    let after = retry_after(response.headers());
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let quoted = quote_body(response).await;
    let mut message = format!("{who} a répondu {status}");
    if !quoted.is_empty() {
        message.push_str(" : ");
        message.push_str(&quoted);
    }
    message.push_str(hint);
    if status.is_redirection() {
        match location {
            Some(location) => message.push_str(&format!(
                " (redirigé vers {location} : mettre la nouvelle adresse dans `url`)"
            )),
            None => message.push_str(" (vérifier `url`)"),
        }
    }
    let transient = status.is_server_error()
        || matches!(
            status,
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS
        );
    match (transient, after) {
        (true, Some(after)) => ConnectorError::retry_after(message, after),
        (true, None) => ConnectorError::transient(message),
        (false, _) => ConnectorError::permanent(message),
    }
}

/// The delay asked by a `Retry-After` header: seconds, or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    // A date already past means "now".
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The start of the body of `response` on one line, at most [`QUOTED_CHARS`] characters.
async fn quote_body(response: Response) -> String {
    // Four bytes per character at most, and one more to know it was longer.
    let Ok((body, cut)) = read_limited(response, QUOTED_CHARS * 4 + 1).await else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None if cut => format!("{text}…"),
        None => text,
    }
}

/// Reads at most `limit` bytes of the body of `response`; also tells whether it was longer.
pub async fn read_limited(
    mut response: Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit.saturating_sub(body.len());
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static(" 7 "));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(120);
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let after = retry_after(&headers).unwrap();
        assert!(after > Duration::from_secs(100) && after <= Duration::from_secs(120));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
