//! What keeps other sites and other names out of the dashboard.
//!
//! - DNS rebinding: a page on another site can make the browser resolve its own name to
//!   127.0.0.1 and then read the dashboard as same-origin. Such requests carry that site's name
//!   as their `Host`, so only the bound address, localhost and loopback literals with the bound
//!   port are accepted (any IP literal when listening on every interface: a rebinding needs a
//!   name).
//! - CSRF: a POST must carry the per-run [`Token`] (printed on the terminal and embedded in the
//!   dashboard's own forms, which another site cannot read), and a POST whose `Origin` or
//!   `Sec-Fetch-Site` says it came from elsewhere is refused before the token is looked at.
//! - Injection: every response carries a Content-Security-Policy that allows only the
//!   dashboard's own style sheet and script file (no inline script or style at all), no
//!   framing, and forms that post only to the dashboard; templates escape every value.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Shared;

/// The policy sent with every response. `connect-src 'self'` lets the live-update script fetch
/// the page it is on; nothing else may load from anywhere but the dashboard itself.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// A per-run secret that every action must present.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// A fresh random token (128 bits from the OS-seeded generator, as hex).
    pub fn generate() -> Token {
        let a: u64 = rand::random();
        let b: u64 = rand::random();
        Token(format!("{a:016x}{b:016x}"))
    }

    /// The token as printed on the terminal and embedded in forms.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this token, compared in constant time.
    pub fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Whether a `Host` header value names the dashboard listening on `bound`.
pub fn host_allowed(host: &str, bound: SocketAddr) -> bool {
    let Some((name, port)) = split_host(host) else {
        return false;
    };
    if port.unwrap_or(80) != bound.port() {
        return false;
    }
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let Ok(ip) = name.parse::<IpAddr>() else {
        return false;
    };
    ip == bound.ip()
        || (ip.is_loopback() && (bound.ip().is_loopback() || bound.ip().is_unspecified()))
        || bound.ip().is_unspecified()
}

/// `name[:port]`, with IPv6 literals in brackets; `None` when malformed.
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        return match after {
            "" => Some((name, None)),
            p => Some((name, Some(p.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => Some((name, Some(port.parse().ok()?))),
        Some(_) => None,
        None if host.is_empty() => None,
        None => Some((host, None)),
    }
}

/// Whether an `Origin` header value is the dashboard itself.
pub fn origin_allowed(origin: &str, bound: SocketAddr) -> bool {
    origin
        .strip_prefix("http://")
        .is_some_and(|host| !host.contains('/') && host_allowed(host, bound))
}

fn refuse(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        crate::pages::error_page(StatusCode::FORBIDDEN, message),
    )
        .into_response()
}

/// Refuses requests for another host name, and writes from another origin.
pub(crate) async fn guard(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let bound = state.config.bound;
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if !host.is_some_and(|h| host_allowed(h, bound)) {
        return refuse(&format!(
            "this dashboard answers only as http://{bound}/ or http://localhost:{}/ \
             (the request named another host)",
            bound.port()
        ));
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let headers = req.headers();
        if let Some(origin) = headers.get(header::ORIGIN) {
            let ok = origin.to_str().is_ok_and(|o| origin_allowed(o, bound));
            if !ok {
                return refuse("actions are accepted only from the dashboard's own pages");
            }
        }
        if headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site" || v.as_bytes() == b"same-site")
        {
            return refuse("actions are accepted only from the dashboard's own pages");
        }
    }
    next.run(req).await
}

/// Adds the security headers to every response, refusals and static files included.
pub(crate) async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn hosts_are_the_bound_address_or_localhost_with_its_port() {
        let b = addr("127.0.0.1:8080");
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "[::1]:8080",
        ] {
            assert!(host_allowed(ok, b), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "127.0.0.1:8081",
            "127.0.0.1",
            "localhost",
            "10.0.0.1:8080",
            "",
            "127.0.0.1:8080:1",
            "[::1",
            "127.0.0.1.nip.io:8080",
        ] {
            assert!(!host_allowed(bad, b), "{bad}");
        }
        let any = addr("0.0.0.0:9000");
        assert!(host_allowed("192.168.1.20:9000", any));
        assert!(!host_allowed("rebind.example:9000", any));
        let lan = addr("192.168.1.20:80");
        assert!(host_allowed("192.168.1.20", lan), "port 80 may be left out");
        assert!(!host_allowed("192.168.1.21", lan));
    }

    #[test]
    fn origins_are_the_dashboard_over_http() {
        let b = addr("127.0.0.1:8080");
        assert!(origin_allowed("http://127.0.0.1:8080", b));
        assert!(origin_allowed("http://localhost:8080", b));
        for bad in [
            "https://127.0.0.1:8080",
            "http://evil.example:8080",
            "null",
            "http://127.0.0.1:8080/x",
            "http://127.0.0.1:9999",
        ] {
            assert!(!origin_allowed(bad, b), "{bad}");
        }
    }

    #[test]
    fn tokens_are_random_and_compared_exactly() {
        let t = Token::generate();
        assert_eq!(t.as_str().len(), 32);
        assert!(t.matches(t.as_str()));
        assert!(!t.matches(""));
        assert!(!t.matches(&t.as_str()[..31]));
        assert_ne!(t.as_str(), Token::generate().as_str());
        assert!(!format!("{t:?}").contains(t.as_str()), "never in logs");
    }
}
