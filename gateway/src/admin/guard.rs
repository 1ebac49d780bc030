//! What the admin server checks before any route (docs/security.md):
//!
//! - the `Host` it is called by: the listen address, a loopback name or one of
//!   `admin.public_names`, else `421 Misdirected Request`. Without it, a web page the
//!   operator visits could point its own domain at 127.0.0.1 (DNS rebinding) and read or
//!   change everything the admin server offers, token or none: the browser would take the
//!   page and the admin server for one origin.
//! - the `Origin` of a request that changes something (any method but `GET`, `HEAD`,
//!   `OPTIONS`, `TRACE`): when a browser sends one, it must be the page's own origin (the
//!   request's `Host`) or a public name, else `403`. A browser always sends `Origin` on a
//!   cross-origin `POST`, so a request without one comes from a script or `curl` (or a very
//!   old browser, refused when it says `Sec-Fetch-Site: cross-site`).
//! - the attempts at the login form: a few failures a minute per client address and for
//!   all addresses together, then `429` with `Retry-After` ([`LoginLimiter`]).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The answer to a request for a host this server is not.
pub const MISDIRECTED: &str = "Hôte inconnu : ce serveur d'administration ne répond qu'à son adresse d'écoute, aux noms locaux (localhost, 127.0.0.1, [::1]) et aux noms de admin.public_names.\n\
Misdirected request: this Host is not the admin server's (admin.listen, loopback, admin.public_names).\n";

/// The answer to a state-changing request sent by a page of another origin.
pub const FOREIGN_ORIGIN: &str =
    "Requête refusée : elle vient d'une page d'un autre site (en-tête Origin).\n\
Forbidden: cross-origin request (Origin is not this admin server).\n";

/// One host name (or IP address) the admin server answers to, with its port if it must
/// match too.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authority {
    /// Lowercase, without the brackets of an IPv6 address nor a final dot.
    host: String,
    port: Option<u16>,
}

impl Authority {
    /// `host`, `host:port`, `[v6]` or `[v6]:port`, as in a `Host` header; `None` when it
    /// is none of these.
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']')?;
            host.parse::<std::net::Ipv6Addr>().ok()?;
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':')?.parse().ok()?),
            };
            (host, port)
        } else {
            match text.split_once(':') {
                Some((host, port)) => (host, Some(port.parse().ok()?)),
                None => (text, None),
            }
        };
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':');
        if host.is_empty() || !host.chars().all(plain) {
            return None;
        }
        Some(Self { host, port })
    }

    fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

/// Checks a configured public name (`admin.public_names`): the message of the problem.
///
/// # Errors
///
/// A sentence for the operator when `name` is not `host` or `host:port`.
pub fn check_public_name(name: &str) -> Result<(), String> {
    if name.contains("://") || name.contains('/') {
        return Err(format!(
            "`{name}` est une URL : écrivez seulement le nom d'hôte, tel que le navigateur l'envoie dans `Host` (par exemple \"aiguillage.agglo.fr\" ou \"aiguillage.agglo.fr:8443\")"
        ));
    }
    Authority::parse(name).map(|_| ()).ok_or_else(|| {
        format!("`{name}` n'est pas un nom d'hôte : écrivez `nom` ou `nom:port`, par exemple \"aiguillage.agglo.fr\"")
    })
}

/// The hosts the admin server answers to.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    listen: IpAddr,
    public: Vec<Authority>,
}

impl HostPolicy {
    /// The policy of a server listening on `listen` and reached under `public_names`
    /// (already checked by [`check_public_name`]; one that does not parse is left out).
    pub fn new(listen: IpAddr, public_names: &[String]) -> Self {
        Self {
            listen,
            public: public_names
                .iter()
                .filter_map(|name| Authority::parse(name))
                .collect(),
        }
    }

    /// True when a request for `host` (a `Host` header's value) is for this server.
    pub fn allows(&self, host: &str) -> bool {
        Authority::parse(host).is_some_and(|authority| self.allows_authority(&authority))
    }

    fn allows_authority(&self, authority: &Authority) -> bool {
        // An IP address cannot be rebound: only a name the attacker's DNS answers for can.
        // Any port, then: the port a browser uses may be a forwarded one.
        let ip_ok = authority.ip().is_some_and(|ip| {
            ip.is_loopback() || ip == self.listen || self.listen.is_unspecified()
        });
        ip_ok
            || authority.host == "localhost"
            || self.public.iter().any(|name| {
                name.host == authority.host
                    && name.port.is_none_or(|port| Some(port) == authority.port)
            })
    }

    /// True when a state-changing request from a page of `origin` (an `Origin` header's
    /// value) may go on, the request being for `host`: the page is the admin server's own
    /// (same host and port) or is served under a public name.
    pub fn allows_origin(&self, origin: &str, host: Option<&str>) -> bool {
        let Some((scheme, rest)) = origin.trim().split_once("://") else {
            // `null` (a sandboxed frame, a redirect, a `file:` page…) is no page of ours.
            return false;
        };
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "http" => 80,
            "https" => 443,
            _ => return false,
        };
        let Some(origin) = Authority::parse(rest) else {
            return false;
        };
        let same_host = host.and_then(Authority::parse).is_some_and(|host| {
            host.host == origin.host
                && host.port.unwrap_or(default_port) == origin.port.unwrap_or(default_port)
        });
        let public = self.public.iter().any(|name| {
            name.host == origin.host
                && name
                    .port
                    .is_none_or(|port| port == origin.port.unwrap_or(default_port))
        });
        same_host || public
    }
}

/// The middleware: `421` for a host that is not this server's, `403` for a state-changing
/// request from a page of another origin.
pub async fn check_host_and_origin(
    State(policy): State<Arc<HostPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host.to_str().ok(),
        // No `Host` (HTTP/1.0) or two of them: nothing to check against, refused.
        _ => None,
    };
    // An absolute request target (`GET http://name/ HTTP/1.1`, or HTTP/2's `:authority`)
    // names the host too: both must be ours.
    let target = request.uri().authority().map(|a| a.as_str().to_owned());
    let host_ok = host.is_some_and(|host| policy.allows(host))
        && target.as_deref().is_none_or(|target| policy.allows(target));
    if !host_ok {
        tracing::warn!(
            host = host.unwrap_or("-"),
            path = request.uri().path(),
            "admin request refused: not for this server's host (421)"
        );
        return (StatusCode::MISDIRECTED_REQUEST, MISDIRECTED).into_response();
    }
    if changes_state(request.method()) && !origin_ok(&policy, headers, host) {
        tracing::warn!(
            origin = headers
                .get(header::ORIGIN)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-"),
            path = request.uri().path(),
            "admin request refused: sent by a page of another origin (403)"
        );
        return (StatusCode::FORBIDDEN, FOREIGN_ORIGIN).into_response();
    }
    next.run(request).await
}

fn changes_state(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

fn origin_ok(policy: &HostPolicy, headers: &HeaderMap, host: Option<&str>) -> bool {
    let mut origins = headers.get_all(header::ORIGIN).iter();
    match (origins.next(), origins.next()) {
        (Some(origin), None) => origin
            .to_str()
            .is_ok_and(|origin| policy.allows_origin(origin, host)),
        // No Origin: not a browser's cross-origin request, unless the browser says so.
        (None, _) => headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|site| matches!(site, "same-origin" | "none")),
        (Some(_), Some(_)) => false,
    }
}

/// Failed sign-ins counted per client address within this window.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// Failed sign-ins one client address may make within [`LOGIN_WINDOW`].
pub const LOGIN_FAILURES_PER_ADDRESS: usize = 5;

/// Failed sign-ins all addresses together may make within [`LOGIN_WINDOW`]: an attacker
/// with many addresses (or everyone behind one reverse proxy) is slowed down too.
pub const LOGIN_FAILURES_IN_ALL: usize = 20;

/// The failed sign-ins of the last [`LOGIN_WINDOW`], in memory. Only failures count: the
/// operator who types the right token is never held back by their own success.
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<Failures>,
}

#[derive(Default)]
struct Failures {
    all: VecDeque<Instant>,
    by_address: HashMap<IpAddr, VecDeque<Instant>>,
}

impl Failures {
    fn forget_before(&mut self, start: Instant) {
        while self.all.front().is_some_and(|t| *t <= start) {
            self.all.pop_front();
        }
        // At most LOGIN_FAILURES_IN_ALL failures are recent, so the map stays that small.
        self.by_address.retain(|_, times| {
            while times.front().is_some_and(|t| *t <= start) {
                times.pop_front();
            }
            !times.is_empty()
        });
    }
}

impl LoginLimiter {
    /// `Err(wait)` when `client` must wait before trying again, `Ok` when it may try now.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        self.check_at(client, Instant::now())
    }

    /// Records a failed sign-in of `client`.
    pub fn failed(&self, client: IpAddr) {
        self.failed_at(client, Instant::now());
    }

    fn check_at(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut failures = self.lock();
        if let Some(start) = now.checked_sub(LOGIN_WINDOW) {
            failures.forget_before(start);
        }
        let wait_for = |times: &VecDeque<Instant>, limit: usize| {
            (times.len() >= limit).then(|| {
                // The oldest failure that keeps the count at the limit must leave the window.
                let oldest = times[times.len() - limit];
                (oldest + LOGIN_WINDOW).saturating_duration_since(now)
            })
        };
        let by_address = failures
            .by_address
            .get(&client)
            .and_then(|times| wait_for(times, LOGIN_FAILURES_PER_ADDRESS));
        let in_all = wait_for(&failures.all, LOGIN_FAILURES_IN_ALL);
        match by_address.max(in_all) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    fn failed_at(&self, client: IpAddr, now: Instant) {
        let mut failures = self.lock();
        failures.all.push_back(now);
        failures
            .by_address
            .entry(client)
            .or_default()
            .push_back(now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Failures> {
        // A panic while holding it cannot leave the lists half-changed: use them as they are.
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(listen: &str, public: &[&str]) -> HostPolicy {
        let public: Vec<String> = public.iter().map(|s| (*s).to_owned()).collect();
        HostPolicy::new(listen.parse().unwrap(), &public)
    }

    #[test]
    fn only_the_listen_address_loopback_names_and_public_names_are_answered() {
        let p = policy("127.0.0.1", &["aiguillage.agglo.fr", "admin.agglo.fr:8443"]);
        for host in [
            "127.0.0.1:9464",
            "127.0.0.1",
            "localhost:9464",
            "LOCALHOST",
            "localhost.",
            "[::1]:9464",
            "[::1]",
            "aiguillage.agglo.fr",
            "Aiguillage.Agglo.FR:443",
            "admin.agglo.fr:8443",
        ] {
            assert!(p.allows(host), "{host} is allowed");
        }
        for host in [
            "attacker-rebind.example",
            "attacker-rebind.example:9464",
            "localhost.attacker.example",
            "admin.agglo.fr",
            "admin.agglo.fr:9464",
            "10.0.0.5:9464",
            "",
            "127.0.0.1:notaport",
            "[::1",
            "a b",
        ] {
            assert!(!p.allows(host), "{host} is refused");
        }
    }

    #[test]
    fn a_server_on_every_interface_answers_to_any_ip_address_but_not_to_any_name() {
        let p = policy("0.0.0.0", &[]);
        assert!(p.allows("10.0.0.5:9464"));
        assert!(p.allows("[2001:db8::1]:9464"));
        assert!(!p.allows("gateway.example:9464"));
        let p = policy("10.0.0.5", &[]);
        assert!(p.allows("10.0.0.5:9464"));
        assert!(!p.allows("10.0.0.6:9464"));
    }

    #[test]
    fn a_state_change_must_come_from_the_page_of_the_same_host_or_a_public_name() {
        let p = policy("127.0.0.1", &["aiguillage.agglo.fr"]);
        let host = Some("127.0.0.1:9464");
        assert!(p.allows_origin("http://127.0.0.1:9464", host));
        assert!(p.allows_origin("https://aiguillage.agglo.fr", host));
        assert!(p.allows_origin("http://localhost", Some("localhost")));
        assert!(p.allows_origin("http://localhost:80", Some("localhost")));
        // Another local site (another port) is another origin.
        assert!(!p.allows_origin("http://127.0.0.1:8080", host));
        assert!(!p.allows_origin("http://localhost:9464", host));
        assert!(!p.allows_origin("http://attacker-rebind.example:9464", host));
        assert!(!p.allows_origin("null", host));
        assert!(!p.allows_origin("file://", host));
        assert!(!p.allows_origin("ftp://127.0.0.1:9464", host));
    }

    #[test]
    fn public_names_are_host_names_not_urls() {
        assert!(check_public_name("aiguillage.agglo.fr").is_ok());
        assert!(check_public_name("aiguillage.agglo.fr:8443").is_ok());
        assert!(check_public_name("[2001:db8::1]").is_ok());
        assert!(check_public_name("https://aiguillage.agglo.fr")
            .unwrap_err()
            .contains("URL"));
        assert!(check_public_name("aiguillage.agglo.fr/admin").is_err());
        assert!(check_public_name("").is_err());
        assert!(check_public_name("name:port").is_err());
    }

    #[test]
    fn failed_logins_are_limited_per_address_then_forgotten() {
        let limiter = LoginLimiter::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let start = Instant::now();
        for i in 0..LOGIN_FAILURES_PER_ADDRESS {
            let at = start + Duration::from_secs(i as u64);
            assert_eq!(limiter.check_at(a, at), Ok(()));
            limiter.failed_at(a, at);
        }
        let now = start + Duration::from_secs(10);
        assert_eq!(
            limiter.check_at(a, now),
            Err(Duration::from_secs(50)),
            "held back until the first failure is a minute old"
        );
        assert_eq!(limiter.check_at(b, now), Ok(()), "another address may try");
        assert_eq!(
            limiter.check_at(a, start + LOGIN_WINDOW + Duration::from_millis(1)),
            Ok(())
        );
    }

    #[test]
    fn failed_logins_from_many_addresses_are_limited_together() {
        let limiter = LoginLimiter::default();
        let start = Instant::now();
        for i in 0..LOGIN_FAILURES_IN_ALL {
            let client = IpAddr::from([198, 51, 100, u8::try_from(i).unwrap()]);
            limiter.failed_at(client, start);
        }
        let fresh = IpAddr::from([203, 0, 113, 9]);
        assert_eq!(
            limiter.check_at(fresh, start + Duration::from_secs(1)),
            Err(Duration::from_secs(59))
        );
        assert_eq!(
            limiter.check_at(fresh, start + LOGIN_WINDOW + Duration::from_secs(1)),
            Ok(())
        );
        assert!(
            limiter.lock().by_address.is_empty(),
            "old failures are forgotten"
        );
    }
}
