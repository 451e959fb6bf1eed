//! Configuration of the EDGAR client: who we are (User-Agent), where SEC is (base URLs, so
//! proxies, mirrors and test servers can stand in), where the cache lives, and how fast we may go.

use std::path::PathBuf;

use crate::EdgarError;

/// The default `www.sec.gov` base URL (company list and Archives).
pub const DEFAULT_WWW_URL: &str = "https://www.sec.gov";
/// The default `data.sec.gov` base URL (submissions API).
pub const DEFAULT_DATA_URL: &str = "https://data.sec.gov";
/// Default SEC request rate, requests per second.
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 5;
/// SEC's fair-access ceiling; a configured rate above it is clamped to it (with a warning).
pub const MAX_REQUESTS_PER_SECOND: u32 = 10;

/// Environment variable naming the user for SEC (`Jane Doe jane@example.com`).
pub const USER_AGENT_ENV: &str = "FINTEL_SEC_USER_AGENT";
/// Environment variable overriding [`DEFAULT_WWW_URL`].
pub const WWW_URL_ENV: &str = "FINTEL_SEC_WWW_URL";
/// Environment variable overriding [`DEFAULT_DATA_URL`].
pub const DATA_URL_ENV: &str = "FINTEL_SEC_DATA_URL";

/// Settings of an [`crate::EdgarClient`].
#[derive(Debug, Clone)]
pub struct EdgarConfig {
    /// The User-Agent sent with every request; required (see [`validate_user_agent`]).
    pub user_agent: Option<String>,
    /// Base URL of `www.sec.gov`; a trailing slash is tolerated.
    pub www_url: String,
    /// Base URL of `data.sec.gov`; a trailing slash is tolerated.
    pub data_url: String,
    /// Directory of the document cache, the company list and the shared rate-limiter state.
    /// Every process using the same directory shares one SEC rate.
    pub cache_dir: PathBuf,
    /// SEC requests per second for all processes on `cache_dir` together (default 5; more than
    /// 10 is clamped to 10 with a warning; 0 is refused).
    pub requests_per_second: u32,
}

impl EdgarConfig {
    /// Defaults (SEC's real URLs, 5 requests/s) with the given User-Agent and cache directory.
    pub fn new(user_agent: Option<String>, cache_dir: impl Into<PathBuf>) -> Self {
        EdgarConfig {
            user_agent,
            www_url: DEFAULT_WWW_URL.to_string(),
            data_url: DEFAULT_DATA_URL.to_string(),
            cache_dir: cache_dir.into(),
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
        }
    }

    /// Defaults overridden by `FINTEL_SEC_USER_AGENT`, `FINTEL_SEC_WWW_URL` and
    /// `FINTEL_SEC_DATA_URL` from the process environment.
    pub fn from_env(cache_dir: impl Into<PathBuf>) -> Self {
        Self::from_lookup(cache_dir, |name| std::env::var(name).ok())
    }

    /// As [`EdgarConfig::from_env`], reading variables through `lookup` (for tests and for a
    /// config file layered under the environment).
    pub fn from_lookup(
        cache_dir: impl Into<PathBuf>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let mut config = EdgarConfig::new(lookup(USER_AGENT_ENV), cache_dir);
        if let Some(url) = lookup(WWW_URL_ENV).filter(|u| !u.trim().is_empty()) {
            config.www_url = url;
        }
        if let Some(url) = lookup(DATA_URL_ENV).filter(|u| !u.trim().is_empty()) {
            config.data_url = url;
        }
        config
    }
}

/// Checks a User-Agent the way SEC's fair-access policy asks for it: it must be present, not
/// blank, and contain an e-mail contact (a word with text before an `@` and a dot after it,
/// as in `Jane Doe jane@example.com`). Returns the trimmed value.
pub fn validate_user_agent(value: Option<&str>) -> Result<String, EdgarError> {
    let missing = |reason: &str| EdgarError::MissingUserAgent {
        reason: reason.to_string(),
    };
    let value = value.ok_or_else(|| missing("none was configured"))?.trim();
    if value.is_empty() {
        return Err(missing("the configured value is blank"));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(missing("the value contains control characters"));
    }
    let has_email = value.split_whitespace().any(|word| {
        let word = word.trim_matches(|c: char| matches!(c, '<' | '>' | '(' | ')' | ','));
        match word.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && domain
                        .split_once('.')
                        .is_some_and(|(host, tld)| !host.is_empty() && !tld.is_empty())
            }
            None => false,
        }
    });
    if !has_email {
        return Err(missing(&format!(
            "{value:?} has no contact e-mail address (SEC asks for a name and an e-mail)"
        )));
    }
    Ok(value.to_string())
}

/// Checks a base URL (http or https) and removes trailing slashes.
pub fn normalize_base_url(name: &str, url: &str) -> Result<String, EdgarError> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            Ok(trimmed.to_string())
        }
        _ => Err(EdgarError::InvalidInput(format!(
            "{name} {url:?} is not an http(s) URL; give e.g. {}",
            if name.contains("data") {
                DEFAULT_DATA_URL
            } else {
                DEFAULT_WWW_URL
            }
        ))),
    }
}

/// The rate actually used for a configured one: 0 is refused, above
/// [`MAX_REQUESTS_PER_SECOND`] is clamped with a warning.
pub fn effective_rate(configured: u32) -> Result<u32, EdgarError> {
    if configured == 0 {
        return Err(EdgarError::InvalidInput(
            "SEC requests_per_second is 0; give a rate from 1 to 10 (default 5)".to_string(),
        ));
    }
    if configured > MAX_REQUESTS_PER_SECOND {
        tracing::warn!(
            configured,
            max = MAX_REQUESTS_PER_SECOND,
            "SEC allows at most 10 requests per second; using 10"
        );
        return Ok(MAX_REQUESTS_PER_SECOND);
    }
    Ok(configured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_needs_a_contact_email() {
        assert!(matches!(
            validate_user_agent(None),
            Err(EdgarError::MissingUserAgent { .. })
        ));
        assert!(validate_user_agent(Some("   ")).is_err());
        assert!(validate_user_agent(Some("Jane Doe")).is_err());
        assert!(validate_user_agent(Some("Jane Doe jane@")).is_err());
        assert!(validate_user_agent(Some("Jane Doe @example.com")).is_err());
        assert!(validate_user_agent(Some("Jane\nDoe jane@example.com")).is_err());
        assert_eq!(
            validate_user_agent(Some("  Jane Doe jane@example.com ")).unwrap(),
            "Jane Doe jane@example.com"
        );
        assert!(validate_user_agent(Some("Acme Corp <ops@acme.co>")).is_ok());
        let message = validate_user_agent(Some("")).unwrap_err().to_string();
        assert!(message.contains("FINTEL_SEC_USER_AGENT=\"Jane Doe jane@example.com\""));
    }

    #[test]
    fn base_urls_tolerate_trailing_slash_and_refuse_garbage() {
        assert_eq!(
            normalize_base_url("www_url", "https://www.sec.gov/").unwrap(),
            "https://www.sec.gov"
        );
        assert_eq!(
            normalize_base_url("data_url", "http://127.0.0.1:8080//").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(normalize_base_url("www_url", "ftp://x").is_err());
        assert!(normalize_base_url("www_url", "https://").is_err());
        assert!(normalize_base_url("www_url", "www.sec.gov").is_err());
    }

    #[test]
    fn rate_is_clamped_to_ten_and_zero_refused() {
        assert_eq!(effective_rate(5).unwrap(), 5);
        assert_eq!(effective_rate(10).unwrap(), 10);
        assert_eq!(effective_rate(50).unwrap(), 10);
        assert!(matches!(
            effective_rate(0),
            Err(EdgarError::InvalidInput(_))
        ));
    }

    #[test]
    fn env_overrides_defaults() {
        let config = EdgarConfig::from_lookup("/cache", |name| match name {
            USER_AGENT_ENV => Some("Jane Doe jane@example.com".into()),
            WWW_URL_ENV => Some("http://127.0.0.1:9/".into()),
            _ => None,
        });
        assert_eq!(config.www_url, "http://127.0.0.1:9/");
        assert_eq!(config.data_url, DEFAULT_DATA_URL);
        assert_eq!(config.requests_per_second, 5);
    }
}
