//! Webhook URL checking and masking.
//!
//! A Discord webhook URL is a credential (`/api/webhooks/{id}/{token}`), and other services put
//! tokens in the path or the query too, so nothing but the scheme, the host and the first path
//! segment of a webhook URL is ever printed, in logs and in error messages alike.

use reqwest::Url;

use crate::NotifyError;

/// What stands for the masked rest of a URL.
const MASK: &str = "…";

/// Parses and checks a webhook URL: it must be absolute, `http` or `https`, with a host.
pub(crate) fn parse_webhook_url(raw: &str) -> Result<Url, NotifyError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(NotifyError::EmptyUrl);
    }
    // Checked before parsing because `localhost:8080/hook` parses with `localhost` as its
    // scheme, which would give a confusing message.
    if !raw.contains("://") {
        return Err(NotifyError::MissingScheme {
            url: mask_unparsed(raw),
        });
    }
    let url = Url::parse(raw).map_err(|e| NotifyError::InvalidUrl {
        url: mask_unparsed(raw),
        reason: e.to_string(),
    })?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(NotifyError::UnsupportedScheme {
                url: mask_url(&url),
                scheme: other.to_string(),
            })
        }
    }
    match url.host_str() {
        Some(host) if !host.is_empty() => Ok(url),
        _ => Err(NotifyError::MissingHost {
            url: mask_url(&url),
        }),
    }
}

/// The printable form of a webhook URL: scheme, host, port and the first path segment, with
/// `/…` standing for anything after them (the rest of the path, the query, the fragment).
/// User names and passwords are dropped.
///
/// `https://discord.com/api/webhooks/123/abc` becomes `https://discord.com/api/…`.
pub fn mask_url(url: &Url) -> String {
    let mut out = format!("{}://", url.scheme());
    if let Some(host) = url.host_str() {
        out.push_str(host);
    }
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    let mut segments = url
        .path_segments()
        .map(|s| s.filter(|seg| !seg.is_empty()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter();
    let mut more = url.query().is_some() || url.fragment().is_some();
    if let Some(first) = segments.next() {
        out.push('/');
        out.push_str(first);
        more |= segments.next().is_some();
    }
    if more {
        out.push('/');
        out.push_str(MASK);
    }
    out
}

/// [`mask_url`] for a URL still in text form, such as a configuration value; a string that
/// does not parse is masked on the same principle (scheme, host and first path segment kept).
pub fn mask_url_str(raw: &str) -> String {
    let raw = raw.trim();
    match Url::parse(raw) {
        Ok(url) if url.has_host() => mask_url(&url),
        _ => mask_unparsed(raw),
    }
}

/// Masks a string that did not parse as a URL, on the same principle as [`mask_url`]: keep what
/// looks like the scheme, the host and the first path segment, drop any `user:password@`.
fn mask_unparsed(raw: &str) -> String {
    let (scheme, rest) = match raw.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, raw),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((authority, path)) => (authority, Some(path)),
        None => (rest, None),
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let mut out = String::new();
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    out.push_str(host);
    if let Some(path) = path {
        let mut segments = path.split('/').filter(|s| !s.is_empty());
        if let Some(first) = segments.next() {
            out.push('/');
            out.push_str(first);
        }
        if segments.next().is_some() {
            out.push('/');
            out.push_str(MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(s: &str) -> String {
        mask_url(&Url::parse(s).expect("test URL parses"))
    }

    #[test]
    fn discord_token_and_id_are_masked() {
        let m = masked("https://discord.com/api/webhooks/123456789/SECRET-token_value");
        assert_eq!(m, "https://discord.com/api/…");
        assert!(!m.contains("SECRET") && !m.contains("123456789"));
    }

    #[test]
    fn port_is_kept_and_userinfo_query_fragment_dropped() {
        assert_eq!(
            masked("http://user:hunter2@127.0.0.1:8080/hook?token=SECRET#frag"),
            "http://127.0.0.1:8080/hook/…"
        );
        assert_eq!(
            masked("https://example.com/?key=SECRET"),
            "https://example.com/…"
        );
    }

    #[test]
    fn short_urls_are_not_marked_as_truncated() {
        assert_eq!(masked("https://example.com"), "https://example.com");
        assert_eq!(masked("https://example.com/"), "https://example.com");
        assert_eq!(
            masked("https://example.com/hook"),
            "https://example.com/hook"
        );
        assert_eq!(
            masked("https://example.com/hook/"),
            "https://example.com/hook"
        );
    }

    #[test]
    fn text_urls_are_masked_whether_they_parse_or_not() {
        assert_eq!(
            mask_url_str(" https://discord.com/api/webhooks/1/SECRET "),
            "https://discord.com/api/…"
        );
        assert_eq!(
            mask_url_str("discord.com/api/webhooks/1/SECRET"),
            "discord.com/api/…"
        );
    }

    #[test]
    fn unparsed_strings_are_masked_too() {
        assert_eq!(
            mask_unparsed("discord.com/api/webhooks/1/SECRET"),
            "discord.com/api/…"
        );
        assert_eq!(
            mask_unparsed("https://u:SECRET@exa mple.com/a/b"),
            "https://exa mple.com/a/…"
        );
        assert_eq!(mask_unparsed("example.com"), "example.com");
    }
}
