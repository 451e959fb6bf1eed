//! The one error type of this crate, with variants a caller can act on (ask the user for a
//! User-Agent, skip an unknown ticker, wait for a pause, retry a transient failure, ...).

use std::path::PathBuf;

use jiff::Timestamp;

/// Everything that can go wrong talking to SEC EDGAR or using the local cache.
#[derive(Debug, thiserror::Error)]
pub enum EdgarError {
    /// No usable User-Agent: SEC's fair-access rules require every request to name its sender.
    #[error(
        "no usable SEC User-Agent: {reason}. SEC requires every request to name the user and a \
         contact e-mail: set FINTEL_SEC_USER_AGENT=\"Jane Doe jane@example.com\""
    )]
    MissingUserAgent {
        /// What is wrong with the value given (absent, blank, no e-mail, ...).
        reason: String,
    },

    /// The ticker is not in SEC's company list.
    #[error(
        "unknown ticker {ticker:?}: it is not in SEC's company list (company_tickers.json); \
         check the spelling, or give the company's CIK instead"
    )]
    UnknownTicker {
        /// The ticker as normalised for the lookup.
        ticker: String,
    },

    /// SEC answered 404 (or 410): the resource does not exist.
    #[error("not found at SEC: {url}")]
    NotFound {
        /// The URL requested.
        url: String,
    },

    /// SEC refused for rate ("Request Rate Threshold Exceeded" or 429); all SEC traffic of every
    /// process sharing the cache directory is paused until `paused_until`.
    #[error(
        "SEC rate limit hit (\"Request Rate Threshold Exceeded\" or HTTP 429): all SEC requests \
         are paused until {paused_until}; retry after that"
    )]
    RateLimited {
        /// When SEC traffic resumes.
        paused_until: Timestamp,
    },

    /// A failure that may succeed later (5xx, timeout, connection error), after the retries.
    #[error("temporary failure talking to SEC: {message}; try again later")]
    Transient {
        /// What failed, with the URL.
        message: String,
    },

    /// Any other HTTP status.
    #[error("SEC answered HTTP {status} for {url}: {detail}")]
    Http {
        /// The status code.
        status: u16,
        /// The URL requested.
        url: String,
        /// The start of the response body, or a hint.
        detail: String,
    },

    /// A response or cached file that could not be understood.
    #[error("could not parse {what}: {detail}")]
    Parse {
        /// What was being parsed (with its URL or path).
        what: String,
        /// Why it failed.
        detail: String,
    },

    /// A bad argument (malformed accession number, unsafe file name, bad URL, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A file-system failure in the cache directory.
    #[error("file system error at {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl EdgarError {
    /// True for failures that may succeed if tried again later (5xx, timeouts, connection
    /// errors). A rate-limit pause is deliberately not transient: it is a wait, not a failure,
    /// and must never count as a failed attempt; match [`EdgarError::RateLimited`] for it.
    pub fn is_transient(&self) -> bool {
        matches!(self, EdgarError::Transient { .. })
    }

    /// True when SEC asked us to slow down; the next request waits for the pause by itself.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, EdgarError::RateLimited { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EdgarError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parse(what: impl Into<String>, detail: impl ToString) -> Self {
        EdgarError::Parse {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}
