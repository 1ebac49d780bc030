//! Publik's signed URLs, exactly as w.c.s. makes and checks them (`wcs/api_utils.py`:
//! `sign_url`, `sign_query`, `sign_url_auto_orig`, `is_url_signed`).
//!
//! The signer appends to the query string, in this order: `orig` (the caller's name, which
//! tells the receiver which key to use), `algo` (`sha256`), `timestamp` (UTC,
//! `%Y-%m-%dT%H:%M:%SZ`), `nonce` (random hex), each form-encoded like Python's
//! `urllib.parse.urlencode` (so the `:` of the timestamp travel as `%3A`). It computes the
//! HMAC of that query string, as it stands, with the shared key, encodes it in standard
//! base64 (with `+`, `/` and `=` padding) and appends it last as `&signature=`, quoted like
//! Python's `urllib.parse.quote` (`+` → `%2B`, `=` → `%3D`, `/` kept).
//!
//! The receiver recomputes the HMAC over the query exactly as received up to
//! `&signature=`, with the key of `orig`, and compares in constant time; it refuses a
//! timestamp more than a window (30 s in w.c.s.) away from its clock, in the past or the
//! future, and a nonce already seen within that window.
//!
//! The signature covers the query string only: **not the path, not the body** of a POST.
//! Whoever can alter a request in transit can change its body; TLS protects against that,
//! and the short window limits what a captured request is good for.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// The window w.c.s. applies around its clock (`DEFAULT_DURATION`).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);

/// The longest nonce accepted (w.c.s. keeps the first 128 characters).
pub const MAX_NONCE_CHARS: usize = 128;

/// The timestamp format of the scheme, `2026-11-28T09:12:00Z`.
const TIMESTAMP_FORMAT: &[time::format_description::FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// The HMAC algorithms accepted (`algo=`); w.c.s. signs with `sha256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    /// HMAC-SHA-256, what Publik uses.
    Sha256,
    /// HMAC-SHA-384.
    Sha384,
    /// HMAC-SHA-512.
    Sha512,
}

impl Algo {
    /// The name in the query (`sha256`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Self::Sha256),
            "sha384" => Some(Self::Sha384),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    fn mac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
            // HMAC takes a key of any length: this cannot fail.
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Self::Sha256 => run::<Hmac<sha2::Sha256>>(key, message),
            Self::Sha384 => run::<Hmac<sha2::Sha384>>(key, message),
            Self::Sha512 => run::<Hmac<sha2::Sha512>>(key, message),
        }
    }
}

/// Why a signed query is refused. Each reason names the parameter or the check at fault,
/// never the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A parameter of the scheme is absent (or empty).
    #[error("the query has no `{0}` parameter (a Publik signed URL carries orig, algo, timestamp, nonce and signature)")]
    Missing(&'static str),
    /// A parameter of the scheme is given more than once.
    #[error("the `{0}` parameter is given more than once")]
    Repeated(&'static str),
    /// `signature` is not the last parameter.
    #[error("`signature` must be the last parameter of the query")]
    SignatureNotLast,
    /// No key is configured for this `orig`.
    #[error("unknown orig `{0}`: no key is configured for it")]
    UnknownOrig(String),
    /// `algo` names an algorithm that is not accepted.
    #[error("algo `{0}` is not accepted (sha256, sha384 or sha512)")]
    UnsupportedAlgo(String),
    /// `signature` is not base64.
    #[error("the signature is not standard base64")]
    NotBase64,
    /// The HMAC differs: wrong key, or the query was altered.
    #[error("the signature does not match the query (wrong key, or the query was altered)")]
    Mismatch,
    /// `timestamp` is not `YYYY-MM-DDTHH:MM:SSZ`.
    #[error("timestamp `{0}` is not YYYY-MM-DDTHH:MM:SSZ (UTC)")]
    InvalidTimestamp(String),
    /// `timestamp` is too old.
    #[error("timestamp is {late} s in the past, more than the {window} s allowed (replayed request, or a clock out of time)")]
    Expired {
        /// Seconds behind the receiver's clock.
        late: i64,
        /// The window, in seconds.
        window: u64,
    },
    /// `timestamp` is in the future.
    #[error("timestamp is {early} s in the future, more than the {window} s allowed (a clock out of time)")]
    Future {
        /// Seconds ahead of the receiver's clock.
        early: i64,
        /// The window, in seconds.
        window: u64,
    },
    /// The nonce was already used within the window.
    #[error("nonce already used (a replayed request)")]
    Replayed,
    /// The nonce is longer than [`MAX_NONCE_CHARS`].
    #[error("nonce longer than {MAX_NONCE_CHARS} characters")]
    NonceTooLong,
    /// More fresh nonces than the cache holds: refused rather than forgotten (transient).
    #[error(
        "too many signed requests within the window to remember their nonces: try again shortly"
    )]
    Saturated,
}

impl SignatureError {
    /// True when the request may succeed if sent again unchanged (the nonce cache was full).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Saturated)
    }
}

/// Form-encodes like Python's `urllib.parse.quote_plus` (what `urlencode` uses): letters,
/// digits and `_.-~` are kept, a space becomes `+`, every other byte `%XX` (upper case).
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Quotes like Python's `urllib.parse.quote` with its default `safe='/'`: as
/// [`form_encode`], but `/` is kept and a space is `%20`.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' | b'/' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Decodes a form-encoded value like Python's `parse_qs` (`+` is a space).
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A timestamp as the scheme writes it, `2026-11-28T09:12:00Z`.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(TIMESTAMP_FORMAT)
        .unwrap_or_default()
}

/// A nonce as w.c.s. makes one: 128 random bits in lowercase hex.
pub fn new_nonce() -> String {
    format!("{:x}", rand::random::<u128>())
}

/// What to sign a query with.
pub struct Signer<'a> {
    /// The caller's name, appended as `orig=` (omitted when `None`, as w.c.s. does when a
    /// webhook has its own key).
    pub orig: Option<&'a str>,
    /// The shared key.
    pub key: &'a SecretString,
    /// The algorithm.
    pub algo: Algo,
}

impl Signer<'_> {
    /// Signs `query` (without `?`, possibly empty) at `timestamp` with `nonce`: returns the
    /// query to send, `…&orig=…&algo=…&timestamp=…&nonce=…&signature=…`.
    pub fn sign_query_at(&self, query: &str, timestamp: OffsetDateTime, nonce: &str) -> String {
        let mut signed = query.to_owned();
        let mut append = |name: &str, value: &str| {
            if !signed.is_empty() {
                signed.push('&');
            }
            signed.push_str(name);
            signed.push('=');
            signed.push_str(&form_encode(value));
        };
        if let Some(orig) = self.orig {
            append("orig", orig);
        }
        append("algo", self.algo.name());
        append("timestamp", &format_timestamp(timestamp));
        append("nonce", nonce);
        let mac = self
            .algo
            .mac(self.key.expose_secret().as_bytes(), signed.as_bytes());
        signed.push_str("&signature=");
        signed.push_str(&quote(&STANDARD.encode(mac)));
        signed
    }

    /// Signs `query` now, with a fresh nonce.
    pub fn sign_query(&self, query: &str) -> String {
        self.sign_query_at(query, OffsetDateTime::now_utc(), &new_nonce())
    }

    /// Signs a URL: its query (if any) gets the signature parameters.
    pub fn sign_url(&self, url: &str) -> String {
        let (base, fragment) = match url.split_once('#') {
            Some((base, fragment)) => (base, Some(fragment)),
            None => (url, None),
        };
        let (path, query) = base.split_once('?').unwrap_or((base, ""));
        let mut signed = format!("{path}?{}", self.sign_query(query));
        if let Some(fragment) = fragment {
            signed.push('#');
            signed.push_str(fragment);
        }
        signed
    }
}

/// A query whose signature was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The `orig` it was signed for: the key that matched.
    pub orig: String,
    /// The nonce, now remembered.
    pub nonce: String,
}

/// Checks signed queries: per-`orig` keys, a window around the clock, and the nonces seen
/// within it.
pub struct Verifier {
    keys: HashMap<String, SecretString>,
    window: Duration,
    nonces: NonceCache,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut origs: Vec<&String> = self.keys.keys().collect();
        origs.sort();
        f.debug_struct("Verifier")
            .field("origs", &origs)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier with a key per `orig`, the window around the clock, and room for
    /// `nonce_capacity` nonces within the window.
    pub fn new(
        keys: HashMap<String, SecretString>,
        window: Duration,
        nonce_capacity: usize,
    ) -> Self {
        Self {
            keys,
            window,
            nonces: NonceCache::new(nonce_capacity),
        }
    }

    /// Checks a query string as received (without `?`), at the current time.
    ///
    /// # Errors
    ///
    /// [`SignatureError`] saying which check failed.
    pub fn check(&self, query: &str) -> Result<Verified, SignatureError> {
        self.check_at(query, OffsetDateTime::now_utc())
    }

    /// Checks a query string as received, as if the clock said `now`. The nonce is
    /// remembered only when everything else holds, so that a forged request cannot burn
    /// the nonce of a genuine one.
    ///
    /// # Errors
    ///
    /// [`SignatureError`] saying which check failed.
    pub fn check_at(&self, query: &str, now: OffsetDateTime) -> Result<Verified, SignatureError> {
        // The signed part is the query exactly as received up to `&signature=`.
        let (signed, given) = match query.rfind("&signature=") {
            Some(at) => (&query[..at], &query[at + "&signature=".len()..]),
            None if query.starts_with("signature=") => return Err(SignatureError::Missing("orig")),
            None => return Err(SignatureError::Missing("signature")),
        };
        if given.contains('&') {
            return Err(SignatureError::SignatureNotLast);
        }
        let params = Params::parse(signed);
        if params.count("signature") > 0 {
            return Err(SignatureError::Repeated("signature"));
        }
        let orig = params.one("orig")?;
        let algo_name = params.one("algo")?;
        let timestamp = params.one("timestamp")?;
        let nonce = params.one("nonce")?;
        if given.is_empty() {
            return Err(SignatureError::Missing("signature"));
        }
        let key = self
            .keys
            .get(&orig)
            .ok_or_else(|| SignatureError::UnknownOrig(shorten(&orig)))?;
        let algo = Algo::parse(&algo_name)
            .ok_or_else(|| SignatureError::UnsupportedAlgo(shorten(&algo_name)))?;
        let given = STANDARD
            .decode(form_decode(given))
            .map_err(|_| SignatureError::NotBase64)?;
        let expected = algo.mac(key.expose_secret().as_bytes(), signed.as_bytes());
        // Constant time over the MAC's bytes; only the length (public) can end it early.
        if !bool::from(expected.as_slice().ct_eq(given.as_slice())) {
            return Err(SignatureError::Mismatch);
        }
        let at = PrimitiveDateTime::parse(&timestamp, TIMESTAMP_FORMAT)
            .map_err(|_| SignatureError::InvalidTimestamp(shorten(&timestamp)))?
            .assume_utc();
        let delta = (now - at).whole_seconds();
        let window = self.window.as_secs();
        let window_i = i64::try_from(window).unwrap_or(i64::MAX);
        if delta > window_i {
            return Err(SignatureError::Expired {
                late: delta,
                window,
            });
        }
        if -delta > window_i {
            return Err(SignatureError::Future {
                early: -delta,
                window,
            });
        }
        if nonce.chars().count() > MAX_NONCE_CHARS {
            return Err(SignatureError::NonceTooLong);
        }
        // Remembered until the timestamp leaves the window: after that the timestamp
        // check refuses the query anyway.
        let expires = at + self.window;
        self.nonces.insert(&orig, &nonce, expires, now)?;
        Ok(Verified { orig, nonce })
    }
}

/// The parameters of a query: name → decoded values, in order.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Self {
        Self(
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (form_decode(name), form_decode(value))
                })
                .collect(),
        )
    }

    fn count(&self, name: &str) -> usize {
        self.0.iter().filter(|(n, _)| n == name).count()
    }

    /// The one non-empty value of `name`.
    fn one(&self, name: &'static str) -> Result<String, SignatureError> {
        let mut values = self.0.iter().filter(|(n, _)| n == name);
        match (values.next(), values.next()) {
            (Some(_), Some(_)) => Err(SignatureError::Repeated(name)),
            (Some((_, value)), None) if !value.is_empty() => Ok(value.clone()),
            _ => Err(SignatureError::Missing(name)),
        }
    }
}

/// The nonces seen within the window, bounded: at most `capacity` at once. Expired ones
/// are forgotten first; when every remembered nonce is still fresh, a new one is refused
/// ([`SignatureError::Saturated`], transient) rather than letting an old one be replayed.
struct NonceCache {
    capacity: usize,
    inner: Mutex<NonceInner>,
}

#[derive(Default)]
struct NonceInner {
    seen: HashMap<(String, String), OffsetDateTime>,
    /// Insertion order with expiry, for eviction.
    order: VecDeque<(OffsetDateTime, (String, String))>,
}

impl NonceCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(NonceInner::default()),
        }
    }

    fn insert(
        &self,
        orig: &str,
        nonce: &str,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), SignatureError> {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (orig.to_owned(), nonce.to_owned());
        if let Some(until) = inner.seen.get(&key) {
            if *until >= now {
                return Err(SignatureError::Replayed);
            }
        }
        // Forget the expired ones (the order is by insertion, expiries are close to it:
        // stop at the first fresh one, the others go on later calls).
        while let Some((until, _)) = inner.order.front() {
            if *until >= now {
                break;
            }
            if let Some((until, old)) = inner.order.pop_front() {
                if inner.seen.get(&old) == Some(&until) {
                    inner.seen.remove(&old);
                }
            }
        }
        if inner.seen.len() >= self.capacity && !inner.seen.contains_key(&key) {
            return Err(SignatureError::Saturated);
        }
        inner.seen.insert(key.clone(), expires);
        inner.order.push_back((expires, key));
        Ok(())
    }
}

/// Values from outside are quoted in reasons, but bounded.
fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        text.escape_debug().to_string()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{}…", head.escape_debug())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn key() -> SecretString {
        SecretString::from("s3cr3t-key".to_owned())
    }

    fn verifier() -> Verifier {
        Verifier::new(
            HashMap::from([("portal".to_owned(), key())]),
            DEFAULT_WINDOW,
            10,
        )
    }

    #[test]
    fn encodings_follow_python() {
        assert_eq!(
            form_encode("2026-11-28T09:12:00Z"),
            "2026-11-28T09%3A12%3A00Z"
        );
        assert_eq!(form_encode("a b~*é"), "a+b~%2A%C3%A9");
        assert_eq!(quote("ab+/c=="), "ab%2B/c%3D%3D");
        assert_eq!(form_decode("a+b%3D%zz"), "a b=%zz");
    }

    #[test]
    fn a_signed_query_checks_and_its_nonce_is_then_refused() {
        let key = key();
        let signer = Signer {
            orig: Some("portal"),
            key: &key,
            algo: Algo::Sha256,
        };
        let at = datetime!(2026-11-28 09:12:00 UTC);
        let query = signer.sign_query_at("a=1", at, "abc");
        assert!(query.starts_with(
            "a=1&orig=portal&algo=sha256&timestamp=2026-11-28T09%3A12%3A00Z&nonce=abc&signature="
        ));
        let verifier = verifier();
        let verified = verifier.check_at(&query, at).unwrap();
        assert_eq!(verified.orig, "portal");
        assert_eq!(verifier.check_at(&query, at), Err(SignatureError::Replayed));
    }

    #[test]
    fn the_nonce_cache_is_bounded_and_forgets_expired_nonces() {
        let cache = NonceCache::new(2);
        let now = datetime!(2026-11-28 09:12:00 UTC);
        let later = now + Duration::from_secs(30);
        cache.insert("o", "1", later, now).unwrap();
        cache.insert("o", "2", later, now).unwrap();
        assert_eq!(
            cache.insert("o", "3", later, now),
            Err(SignatureError::Saturated)
        );
        let after = later + Duration::from_secs(1);
        cache
            .insert("o", "3", after + Duration::from_secs(30), after)
            .unwrap();
        cache
            .insert("o", "1", after + Duration::from_secs(30), after)
            .unwrap();
    }
}
