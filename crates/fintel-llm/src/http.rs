//! What the two HTTP clients share: building the `reqwest` client, checking base URLs, and
//! turning transport failures (no HTTP status at all) into [`CallError`]s.

use std::error::Error as StdError;
use std::time::Duration;

use crate::types::{mask_secrets_in, CallError};

/// Longest provider message kept in a [`CallError`]; error bodies can be many kilobytes.
pub(crate) const MAX_MESSAGE_CHARS: usize = 1_000;

/// Why a client could not be built from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientBuildError {
    /// The configured base URL cannot be used.
    #[error(
        "{setting} {url:?} is not a usable base URL: {problem} (expected an http:// or https:// \
         URL such as {example})"
    )]
    BadBaseUrl {
        setting: &'static str,
        url: String,
        problem: String,
        example: &'static str,
    },
    /// The HTTP client itself could not be set up (e.g. the TLS backend failed to load).
    #[error("could not set up the HTTP client: {0}")]
    Http(String),
}

/// Parses and normalises a base URL: trailing slashes are dropped, the scheme must be http or
/// https, and there may be no query or fragment (they would end up in the middle of every
/// request URL).
pub(crate) fn parse_base_url(
    raw: &str,
    setting: &'static str,
    example: &'static str,
) -> Result<String, ClientBuildError> {
    let bad = |problem: &str| ClientBuildError::BadBaseUrl {
        setting,
        url: raw.to_string(),
        problem: problem.to_string(),
        example,
    };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(bad("it is empty"));
    }
    let url = reqwest::Url::parse(trimmed).map_err(|e| bad(&e.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(bad(&format!("the scheme is {:?}", url.scheme())));
    }
    if url.host_str().is_none() {
        return Err(bad("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it has a query string or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it contains credentials; pass keys separately"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// A `reqwest` client with rustls, the given timeouts and no redirects: a redirect would carry
/// the key header to wherever it points, and a provider API never redirects a POST anyway.
pub(crate) fn build_http_client(
    timeout: Duration,
    connect_timeout: Duration,
) -> Result<reqwest::Client, ClientBuildError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("fintel/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ClientBuildError::Http(error_chain(&e)))
}

/// Checks a model name before it goes into a URL path, so a typo cannot address another
/// endpoint. Accepts an optional `models/` prefix (as the Gemini API prints names).
pub(crate) fn checked_model_name(model: &str) -> Result<&str, CallError> {
    let name = model.trim().strip_prefix("models/").unwrap_or(model.trim());
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@');
    if name.is_empty() {
        return Err(CallError::Configuration {
            message: "no model name given: set FINTEL_MODEL, or leave it unset to let pre-flight choose one the provider serves".to_string(),
        });
    }
    if !name.chars().all(allowed) || name.contains("..") {
        return Err(CallError::Configuration {
            message: format!(
                "model name {name:?} contains characters that cannot be part of a model name \
                 (allowed: letters, digits, '-', '_', '.', ':', '@')"
            ),
        });
    }
    Ok(name)
}

/// How a timed-out request's message begins ([`CallError::timed_out`] reads it).
pub(crate) const TIMED_OUT: &str = "timed out waiting for the provider";

/// Classifies a failure that produced no HTTP response.
///
/// Only a failure to connect (connection refused, DNS failure, TLS handshake failure, connect
/// timeout) proves the request never left, so only that is `reached_server: false`; a timeout
/// or a reset after connecting may have been processed and billed by the provider.
pub fn classify_transport_error(error: &reqwest::Error, secrets: &[&str]) -> CallError {
    let detail = mask_secrets_in(&error_chain(error), secrets);
    if error.is_builder() {
        return CallError::Configuration {
            message: format!("the request could not be built: {detail}"),
        };
    }
    if error.is_connect() {
        let what = if chain_has_io_kind(error, std::io::ErrorKind::ConnectionRefused) {
            "connection refused"
        } else if error.is_timeout() {
            "connect timed out"
        } else if chain_mentions_dns(error) {
            "host name could not be resolved"
        } else {
            "could not connect"
        };
        return CallError::Transient {
            message: format!("{what} (the request was not sent): {detail}"),
            reached_server: false,
        };
    }
    let what = if error.is_timeout() {
        TIMED_OUT
    } else if error.is_body() || error.is_decode() {
        "the response was cut off"
    } else {
        "the connection failed after the request was sent"
    };
    CallError::Transient {
        message: format!("{what}: {detail}"),
        reached_server: true,
    }
}

/// The error and all its sources, joined, since reqwest's top-level message alone ("error
/// sending request") does not say what happened.
pub(crate) fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

fn chain_has_io_kind(error: &reqwest::Error, kind: std::io::ErrorKind) -> bool {
    let mut source = error.source();
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            if io.kind() == kind {
                return true;
            }
        }
        source = inner.source();
    }
    false
}

fn chain_mentions_dns(error: &reqwest::Error) -> bool {
    let text = error_chain(error).to_ascii_lowercase();
    text.contains("dns")
        || text.contains("failed to lookup")
        || text.contains("name or service not known")
        || text.contains("no such host")
}

/// Cuts `text` to at most `max` characters, marking the cut.
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((cut, _)) => format!(
            "{}... [{} more characters]",
            &text[..cut],
            text[cut..].chars().count()
        ),
    }
}

/// A short, single-line preview of a body that is not the JSON we expected.
pub(crate) fn body_preview(body: &str) -> String {
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    if trimmed.is_empty() {
        "(empty body)".to_string()
    } else {
        truncate_chars(trimmed, 200)
    }
}

/// Parses a header value as a key, so a key with characters HTTP forbids is reported as an
/// unusable key instead of a panic or an opaque builder error.
pub(crate) fn secret_header_value(
    secret: &str,
    prefix: &str,
) -> Result<reqwest::header::HeaderValue, CallError> {
    let mut value =
        reqwest::header::HeaderValue::from_str(&format!("{prefix}{secret}")).map_err(|_| {
            CallError::KeyUnusable {
                reason:
                    "the key contains characters that cannot be sent in an HTTP header (spaces, \
                     line breaks or non-ASCII): check how it was copied"
                        .to_string(),
                project: None,
            }
        })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised_and_bad_ones_explained() {
        let ok = |raw| parse_base_url(raw, "FINTEL_GEMINI_URL", "https://x").unwrap();
        assert_eq!(
            ok("https://generativelanguage.googleapis.com/"),
            "https://generativelanguage.googleapis.com"
        );
        assert_eq!(ok(" http://127.0.0.1:8080// "), "http://127.0.0.1:8080");
        assert_eq!(
            ok("http://proxy.local/gemini/"),
            "http://proxy.local/gemini"
        );
        for bad in [
            "",
            "generativelanguage.googleapis.com",
            "ftp://x.org",
            "https://x.org/?key=1",
            "https://u:p@x.org",
        ] {
            let err = parse_base_url(bad, "FINTEL_GEMINI_URL", "https://x").unwrap_err();
            let text = err.to_string();
            assert!(text.contains("FINTEL_GEMINI_URL"), "{text}");
            assert!(text.contains("not a usable base URL"), "{text}");
        }
    }

    #[test]
    fn model_names_are_checked_before_they_reach_a_url() {
        assert_eq!(
            checked_model_name("gemini-2.5-flash").unwrap(),
            "gemini-2.5-flash"
        );
        assert_eq!(
            checked_model_name("models/gemini-2.5-flash").unwrap(),
            "gemini-2.5-flash"
        );
        assert_eq!(checked_model_name("llama3.1:8b").unwrap(), "llama3.1:8b");
        for bad in ["", "gemini/../../x", "gemini 2.5", "a?key=1", "x#y"] {
            assert!(
                matches!(
                    checked_model_name(bad),
                    Err(CallError::Configuration { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate_chars("abc", 5), "abc");
        assert_eq!(truncate_chars("abcdef", 3), "abc... [3 more characters]");
        assert_eq!(body_preview("  <html>\n<body>  "), "<html> <body>");
        assert_eq!(body_preview(""), "(empty body)");
    }

    #[test]
    fn keys_with_forbidden_characters_are_unusable_not_a_panic() {
        assert!(secret_header_value("AIza-good-key", "").is_ok());
        assert!(matches!(
            secret_header_value("bad\nkey", "Bearer "),
            Err(CallError::KeyUnusable { .. })
        ));
    }
}
