//! The EDGAR client: every SEC request goes through here, with the User-Agent, through the
//! shared rate limiter, with retries of transient failures and the 10-minute pause on a rate
//! refusal. On top of it: the company list (cached for a day), submissions with all their
//! pages, and documents through the on-disk cache.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fintel_time::{duration_to_span, SharedClock};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::cache::{write_atomic, DocumentCache, DocumentKey, Durability};
use crate::config::{normalize_base_url, validate_user_agent, EdgarConfig};
use crate::index::{
    annual_report_exhibits_in_submission_text, choose_annual_report_in_index,
    incorporates_annual_report_by_reference, looks_like_annual_report_exhibit, EmbeddedDocument,
    FilingIndex, IndexChoice,
};
use crate::limiter::{SecRateLimiter, RATE_LIMIT_PAUSE};
use crate::names::{Accession, FileName};
use crate::submissions::{parse_first_page, parse_older_page, Filing, Submissions};
use crate::tickers::{normalize_ticker, parse_cik, CompanyEntry, CompanyList};
use crate::EdgarError;

/// How old the cached company list may get before it is fetched again.
pub const COMPANY_LIST_MAX_AGE: Duration = Duration::from_secs(86_400);
/// After a failed refresh with a stale copy in use, the next attempt waits this long.
const COMPANY_LIST_RETRY_AFTER: Duration = Duration::from_secs(3_600);
const COMPANY_LIST_FILE: &str = "company_tickers.json";
const COMPANY_LIST_STAMP: &str = "company_tickers.fetched_at";
/// The cached folder listing of a filing is stored under this file name.
const INDEX_FILE: &str = "index.json";

/// Retries of transient failures (so at most `1 + MAX_RETRIES` tries of one request).
pub const MAX_RETRIES: u32 = 3;
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// How a document was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentSource {
    /// The filing's `primaryDocument`.
    Primary,
    /// Chosen from the filing's folder listing (`index.json`).
    FilingIndex,
    /// The complete submission text file (`{accession}.txt`); the annual report is one of its
    /// `<DOCUMENT>` blocks (see [`crate::index::annual_report_in_submission_text`]).
    CompleteSubmission,
    /// An annual-report exhibit (EX-13) file.
    Exhibit,
}

/// A document of a filing, with its URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRef {
    /// The filer.
    pub cik: u64,
    /// The filing.
    pub accession: Accession,
    /// The file inside the filing folder.
    pub file_name: FileName,
    /// Its URL.
    pub url: String,
    /// How it was found.
    pub source: DocumentSource,
}

impl DocumentRef {
    fn key(&self) -> DocumentKey {
        DocumentKey {
            cik: self.cik,
            accession: self.accession.clone(),
            file_name: self.file_name.clone(),
        }
    }
}

/// A downloaded (or cached) document.
#[derive(Debug, Clone)]
pub struct Document {
    /// Its bytes, verified against the recorded SHA-256 when they come from the cache.
    pub bytes: Vec<u8>,
    /// Where it came from.
    pub url: String,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
    /// Served from the cache without a request.
    pub from_cache: bool,
    /// Its path in the cache.
    pub path: PathBuf,
}

/// Where an annual-report exhibit is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnnualReportExhibit {
    /// A separate file of the filing: fetch it with [`EdgarClient::fetch_document`].
    File(DocumentRef),
    /// A `<DOCUMENT>` block of the complete submission text file already fetched.
    Embedded {
        /// The complete submission text file.
        document: DocumentRef,
        /// The block (its `text` range indexes the document's bytes).
        embedded: EmbeddedDocument,
    },
}

/// A company as resolved from a ticker or a CIK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedCompany {
    /// The CIK.
    pub cik: u64,
    /// Its main ticker, when SEC's list has it (not for delisted companies).
    pub ticker: Option<String>,
    /// Its name, when SEC's list has it.
    pub title: Option<String>,
}

struct CompanyListState {
    list: Arc<CompanyList>,
    next_refresh: Timestamp,
}

/// Client of SEC EDGAR. Cheap to clone; clones share the limiter, cache and company list.
#[derive(Clone)]
pub struct EdgarClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    user_agent: String,
    www_url: String,
    data_url: String,
    cache_dir: PathBuf,
    clock: SharedClock,
    limiter: SecRateLimiter,
    cache: DocumentCache,
    companies: tokio::sync::Mutex<Option<CompanyListState>>,
}

impl std::fmt::Debug for EdgarClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgarClient")
            .field("www_url", &self.inner.www_url)
            .field("data_url", &self.inner.data_url)
            .field("cache_dir", &self.inner.cache_dir)
            .finish()
    }
}

/// What went wrong with one try of a request.
enum Failure {
    RateLimited,
    Transient(String),
    Final(EdgarError),
}

fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            _ if in_tag => {}
            c => out.push(c),
        }
    }
    let collapsed = out.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.chars().take(200).collect()
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EdgarError> + Send + 'static,
) -> Result<T, EdgarError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EdgarError::InvalidInput(format!("cache task failed: {e}")))?
}

impl EdgarClient {
    /// Builds a client. Fails with [`EdgarError::MissingUserAgent`] without a usable
    /// User-Agent, with [`EdgarError::InvalidInput`] for a bad base URL or rate.
    pub fn new(config: EdgarConfig, clock: SharedClock) -> Result<EdgarClient, EdgarError> {
        let user_agent = validate_user_agent(config.user_agent.as_deref())?;
        let www_url = normalize_base_url("www_url (FINTEL_SEC_WWW_URL)", &config.www_url)?;
        let data_url = normalize_base_url("data_url (FINTEL_SEC_DATA_URL)", &config.data_url)?;
        let limiter =
            SecRateLimiter::new(&config.cache_dir, config.requests_per_second, clock.clone())?;
        let http = reqwest::Client::builder()
            .user_agent(user_agent.clone())
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| EdgarError::InvalidInput(format!("cannot build the HTTP client: {e}")))?;
        let cache = DocumentCache::new(&config.cache_dir, clock.clone());
        Ok(EdgarClient {
            inner: Arc::new(Inner {
                http,
                user_agent,
                www_url,
                data_url,
                cache_dir: config.cache_dir,
                clock,
                limiter,
                cache,
                companies: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// The User-Agent sent with every request.
    pub fn user_agent(&self) -> &str {
        &self.inner.user_agent
    }

    /// The shared rate limiter.
    pub fn limiter(&self) -> &SecRateLimiter {
        &self.inner.limiter
    }

    /// The document cache (for `fintel cache stats|prune`).
    pub fn cache(&self) -> &DocumentCache {
        &self.inner.cache
    }

    /// GETs `url` through the limiter. Transient failures (5xx, 408, timeouts, connection
    /// errors) are retried up to [`MAX_RETRIES`] times with capped exponential backoff and
    /// jitter, then returned as [`EdgarError::Transient`]. A rate refusal (403 "Request Rate
    /// Threshold Exceeded", or 429) pauses all SEC traffic for 10 minutes; the request is
    /// tried once more after the pause, and a second refusal is returned as
    /// [`EdgarError::RateLimited`].
    pub async fn get_bytes(&self, url: &str) -> Result<Vec<u8>, EdgarError> {
        let mut transient_failures = 0u32;
        let mut rate_refusals = 0u32;
        loop {
            self.inner.limiter.acquire().await?;
            match self.try_get(url).await {
                Ok(bytes) => return Ok(bytes),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::RateLimited) => {
                    rate_refusals += 1;
                    let until = self.inner.clock.now() + duration_to_span(RATE_LIMIT_PAUSE);
                    let paused_until = self.inner.limiter.pause_until(until).await?;
                    tracing::warn!(
                        url,
                        %paused_until,
                        "SEC refused for rate (Request Rate Threshold Exceeded / 429): all SEC \
                         requests paused for 10 minutes"
                    );
                    if rate_refusals > 1 {
                        return Err(EdgarError::RateLimited { paused_until });
                    }
                }
                Err(Failure::Transient(message)) => {
                    transient_failures += 1;
                    if transient_failures > MAX_RETRIES {
                        return Err(EdgarError::Transient {
                            message: format!("{message} (after {MAX_RETRIES} retries)"),
                        });
                    }
                    let delay = backoff_delay(transient_failures);
                    tracing::warn!(url, %message, retry_in = ?delay, "transient SEC failure; retrying");
                    self.inner.clock.sleep(delay).await;
                }
            }
        }
    }

    async fn try_get(&self, url: &str) -> Result<Vec<u8>, Failure> {
        let response = match self.inner.http.get(url).send().await {
            Ok(response) => response,
            Err(e) if e.is_builder() => {
                return Err(Failure::Final(EdgarError::InvalidInput(format!(
                    "cannot request {url}: {e}"
                ))))
            }
            Err(e) => return Err(Failure::Transient(format!("GET {url}: {e}"))),
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(body) => body.to_vec(),
            Err(e) => {
                return Err(Failure::Transient(format!(
                    "GET {url}: reading the body failed: {e}"
                )))
            }
        };
        if status.is_success() {
            return Ok(body);
        }
        let code = status.as_u16();
        let text = String::from_utf8_lossy(&body);
        if code == 429
            || (code == 403
                && text
                    .to_ascii_lowercase()
                    .contains("request rate threshold exceeded"))
        {
            return Err(Failure::RateLimited);
        }
        if code == 404 || code == 410 {
            return Err(Failure::Final(EdgarError::NotFound {
                url: url.to_string(),
            }));
        }
        if status.is_server_error() || code == 408 {
            return Err(Failure::Transient(format!("GET {url}: HTTP {code}")));
        }
        let mut detail = body_excerpt(&body);
        if code == 403 {
            detail = format!(
                "{detail} (SEC refuses undeclared automated tools: check that \
                 FINTEL_SEC_USER_AGENT names you and a contact e-mail)"
            );
        }
        Err(Failure::Final(EdgarError::Http {
            status: code,
            url: url.to_string(),
            detail,
        }))
    }

    // ----- company list -----

    /// SEC's company list: from memory, else from the cache directory when fetched less than a
    /// day ago (by the injected clock), else from `{www}/files/company_tickers.json`. When the
    /// refresh fails and a stale copy exists, the stale copy is used with a warning.
    pub async fn company_list(&self) -> Result<Arc<CompanyList>, EdgarError> {
        let mut state = self.inner.companies.lock().await;
        let now = self.inner.clock.now();
        if let Some(current) = state.as_ref() {
            if now < current.next_refresh {
                return Ok(Arc::clone(&current.list));
            }
        }
        let list_path = self.inner.cache_dir.join(COMPANY_LIST_FILE);
        let stamp_path = self.inner.cache_dir.join(COMPANY_LIST_STAMP);
        let on_disk = {
            let (list_path, stamp_path) = (list_path.clone(), stamp_path.clone());
            run_blocking(move || Ok(read_cached_company_list(&list_path, &stamp_path))).await?
        };
        let max_age = duration_to_span(COMPANY_LIST_MAX_AGE);
        if let Some((list, fetched_at)) = &on_disk {
            let next_refresh = *fetched_at + max_age;
            if now < next_refresh && *fetched_at <= now + SignedDuration::from_secs(300) {
                let list = Arc::new(list.clone());
                *state = Some(CompanyListState {
                    list: Arc::clone(&list),
                    next_refresh,
                });
                return Ok(list);
            }
        }
        let url = format!("{}/files/company_tickers.json", self.inner.www_url);
        let fetched = match self.get_bytes(&url).await {
            Ok(bytes) => CompanyList::parse(&bytes).map(|list| (list, bytes)),
            Err(e) => Err(e),
        };
        match fetched {
            Ok((list, bytes)) => {
                let fetched_at = self.inner.clock.now();
                let stamp = fetched_at.to_string();
                run_blocking(move || {
                    write_atomic(&list_path, &bytes, None, Durability::Synced)?;
                    write_atomic(&stamp_path, stamp.as_bytes(), None, Durability::Synced)
                })
                .await?;
                let list = Arc::new(list);
                *state = Some(CompanyListState {
                    list: Arc::clone(&list),
                    next_refresh: fetched_at + max_age,
                });
                Ok(list)
            }
            Err(e) => match on_disk {
                Some((stale, fetched_at)) => {
                    tracing::warn!(
                        error = %e,
                        %fetched_at,
                        "could not refresh SEC's company list; using the copy fetched at {fetched_at}"
                    );
                    let list = Arc::new(stale);
                    *state = Some(CompanyListState {
                        list: Arc::clone(&list),
                        next_refresh: now + duration_to_span(COMPANY_LIST_RETRY_AFTER),
                    });
                    Ok(list)
                }
                None => Err(e),
            },
        }
    }

    /// Resolves what a user typed: a ticker (normalised, `BRK.B` -> `BRK-B`) or a CIK
    /// (`320193`, `CIK0000320193`). A CIK is valid even when SEC's list does not have it (a
    /// delisted company); the list is then consulted only for a ticker and name, and its being
    /// unavailable is not an error.
    pub async fn resolve_company(&self, input: &str) -> Result<ResolvedCompany, EdgarError> {
        if let Some(cik) = parse_cik(input) {
            let entry = match self.company_list().await {
                Ok(list) => list.by_cik(cik).cloned(),
                Err(e) => {
                    tracing::warn!(error = %e, cik, "company list unavailable; using the CIK alone");
                    None
                }
            };
            return Ok(ResolvedCompany {
                cik,
                ticker: entry.as_ref().map(|e| e.ticker.clone()),
                title: entry.map(|e| e.title),
            });
        }
        let ticker = normalize_ticker(input);
        if ticker.is_empty() {
            return Err(EdgarError::InvalidInput(
                "empty ticker: give a ticker such as AAPL or a CIK such as 320193".into(),
            ));
        }
        let list = self.company_list().await?;
        let CompanyEntry { cik, ticker, title } = list
            .resolve(&ticker)
            .cloned()
            .ok_or(EdgarError::UnknownTicker { ticker })?;
        Ok(ResolvedCompany {
            cik,
            ticker: Some(ticker),
            title: Some(title),
        })
    }

    // ----- submissions -----

    /// A company's submissions: `{data}/submissions/CIK##########.json` merged with every older
    /// page it lists in `filings.files`. Any page failing fails the whole call, so a selection
    /// never runs on a partial list. Not cached: the answer is always SEC's current list.
    pub async fn submissions(&self, cik: u64) -> Result<Submissions, EdgarError> {
        let url = format!("{}/submissions/CIK{cik:010}.json", self.inner.data_url);
        let bytes = self.get_bytes(&url).await?;
        let first = parse_first_page(&bytes, &format!("submissions {url}"))?;
        let mut submissions = first.submissions;
        for page in first.older_pages {
            let url = format!("{}/submissions/{page}", self.inner.data_url);
            let bytes = self.get_bytes(&url).await?;
            let filings = parse_older_page(&bytes, &format!("submissions page {url}"))?;
            submissions.merge_page(&page, filings);
        }
        Ok(submissions)
    }

    // ----- documents -----

    /// `{www}/Archives/edgar/data/{cik}/{accession without dashes}/{file}`.
    pub fn document_url(&self, cik: u64, accession: &Accession, file_name: &FileName) -> String {
        format!(
            "{}/Archives/edgar/data/{cik}/{}/{file_name}",
            self.inner.www_url,
            accession.no_dashes()
        )
    }

    /// The URL of a filing's folder listing.
    pub fn filing_index_url(&self, cik: u64, accession: &Accession) -> String {
        format!(
            "{}/Archives/edgar/data/{cik}/{}/{INDEX_FILE}",
            self.inner.www_url,
            accession.no_dashes()
        )
    }

    fn document_ref(
        &self,
        cik: u64,
        accession: &Accession,
        file_name: FileName,
        source: DocumentSource,
    ) -> DocumentRef {
        DocumentRef {
            cik,
            url: self.document_url(cik, accession, &file_name),
            accession: accession.clone(),
            file_name,
            source,
        }
    }

    /// The primary document of a filing, or `None` when SEC names none (1990s filings).
    /// Refuses accession numbers and file names that are not safe (see [`crate::names`]).
    pub fn primary_document(
        &self,
        cik: u64,
        filing: &Filing,
    ) -> Result<Option<DocumentRef>, EdgarError> {
        let accession = Accession::parse(&filing.accession_number)?;
        if filing.primary_document.is_empty() {
            return Ok(None);
        }
        let file_name = FileName::parse(&filing.primary_document)?;
        Ok(Some(self.document_ref(
            cik,
            &accession,
            file_name,
            DocumentSource::Primary,
        )))
    }

    /// The complete submission text file of a filing (`{accession}.txt`).
    pub fn complete_submission(
        &self,
        cik: u64,
        accession: &Accession,
    ) -> Result<DocumentRef, EdgarError> {
        let file_name = FileName::parse(&format!("{accession}.txt"))?;
        Ok(self.document_ref(
            cik,
            accession,
            file_name,
            DocumentSource::CompleteSubmission,
        ))
    }

    /// A filing's folder listing, cached like a document (it never changes).
    pub async fn filing_index(
        &self,
        cik: u64,
        accession: &Accession,
    ) -> Result<FilingIndex, EdgarError> {
        let doc = DocumentRef {
            cik,
            accession: accession.clone(),
            file_name: FileName::parse(INDEX_FILE)?,
            url: self.filing_index_url(cik, accession),
            source: DocumentSource::FilingIndex,
        };
        let fetched = self.fetch_document(&doc).await?;
        FilingIndex::parse(&fetched.bytes, &format!("filing index {}", doc.url))
    }

    /// The document holding a filing's annual report: the primary document when SEC names
    /// one; else the one chosen from the folder listing
    /// ([`crate::index::choose_annual_report_in_index`]); else, when the listing names no
    /// clear candidate or does not exist (404), the complete submission text file.
    pub async fn annual_report_document(
        &self,
        cik: u64,
        filing: &Filing,
    ) -> Result<DocumentRef, EdgarError> {
        if let Some(primary) = self.primary_document(cik, filing)? {
            return Ok(primary);
        }
        let accession = Accession::parse(&filing.accession_number)?;
        let index = match self.filing_index(cik, &accession).await {
            Ok(index) => Some(index),
            Err(EdgarError::NotFound { url }) => {
                tracing::info!(%url, "no filing index; using the complete submission text file");
                None
            }
            Err(e) => return Err(e),
        };
        if let Some(index) = index {
            if let IndexChoice::Document(name) =
                choose_annual_report_in_index(&index, accession.as_str(), &filing.form)
            {
                match FileName::parse(&name) {
                    Ok(file_name) => {
                        return Ok(self.document_ref(
                            cik,
                            &accession,
                            file_name,
                            DocumentSource::FilingIndex,
                        ))
                    }
                    Err(e) => tracing::warn!(error = %e, "unusable name in filing index"),
                }
            }
        }
        self.complete_submission(cik, &accession)
    }

    /// Fetches a document, from the cache when a verified copy is there (no request), else
    /// from SEC, storing it in the cache.
    pub async fn fetch_document(&self, doc: &DocumentRef) -> Result<Document, EdgarError> {
        let key = doc.key();
        let cache = self.inner.cache.clone();
        let cached = {
            let key = key.clone();
            run_blocking(move || cache.read(&key)).await?
        };
        if let Some(cached) = cached {
            return Ok(Document {
                bytes: cached.bytes,
                url: doc.url.clone(),
                sha256: cached.sha256,
                from_cache: true,
                path: cached.path,
            });
        }
        let bytes = self.get_bytes(&doc.url).await?;
        let cache = self.inner.cache.clone();
        let (bytes, path, sha256) = run_blocking(move || {
            let (path, sha) = cache.write(&key, &bytes)?;
            Ok((bytes, path, sha))
        })
        .await?;
        Ok(Document {
            bytes,
            url: doc.url.clone(),
            sha256,
            from_cache: false,
            path,
        })
    }

    /// True when a document of this filing is in the cache (the primary document when SEC
    /// names one; otherwise any document of the filing). No request, no verification.
    pub fn is_cached(&self, cik: u64, filing: &Filing) -> bool {
        match self.primary_document(cik, filing) {
            Ok(Some(doc)) => self.inner.cache.contains(&doc.key()),
            Ok(None) => Accession::parse(&filing.accession_number)
                .map(|a| self.inner.cache.has_any_document_of(cik, &a))
                .unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Finds the annual-report exhibit (EX-13) that goes with an annual report, when the report
    /// needs it. Checked, in order:
    /// 1. a complete submission text file: its `EX-13*` `<DOCUMENT>` blocks (no request);
    /// 2. otherwise, only if the report's text incorporates an annual report to shareholders
    ///    by reference ([`incorporates_annual_report_by_reference`]), the filing's folder
    ///    listing (one request, then cached) for a file named like Exhibit 13
    ///    ([`looks_like_annual_report_exhibit`]).
    ///
    /// `None` when the report does not need one or none is found (logged).
    pub async fn annual_report_exhibit(
        &self,
        report: &DocumentRef,
        document: &Document,
    ) -> Result<Option<AnnualReportExhibit>, EdgarError> {
        if report.source == DocumentSource::CompleteSubmission {
            return Ok(annual_report_exhibits_in_submission_text(&document.bytes)
                .into_iter()
                .next()
                .map(|embedded| AnnualReportExhibit::Embedded {
                    document: report.clone(),
                    embedded,
                }));
        }
        let text = String::from_utf8_lossy(&document.bytes);
        if !incorporates_annual_report_by_reference(&text) {
            return Ok(None);
        }
        let index = match self.filing_index(report.cik, &report.accession).await {
            Ok(index) => index,
            Err(EdgarError::NotFound { url }) => {
                tracing::warn!(%url, "report incorporates an annual report but has no listing");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let found = crate::index::annual_report_exhibits_in_index(&index)
            .into_iter()
            .find(|name| looks_like_annual_report_exhibit(name))
            .and_then(|name| FileName::parse(&name).ok());
        if found.is_none() {
            tracing::info!(
                accession = %report.accession,
                "report incorporates an annual report to shareholders, but no EX-13 file is listed"
            );
        }
        Ok(found.map(|file_name| {
            AnnualReportExhibit::File(self.document_ref(
                report.cik,
                &report.accession,
                file_name,
                DocumentSource::Exhibit,
            ))
        }))
    }
}

/// Reads the cached company list and when it was fetched; `None` when either is missing or
/// unreadable (logged).
fn read_cached_company_list(
    list_path: &std::path::Path,
    stamp_path: &std::path::Path,
) -> Option<(CompanyList, Timestamp)> {
    let stamp = std::fs::read_to_string(stamp_path).ok()?;
    let fetched_at: Timestamp = match stamp.trim().parse() {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(path = %stamp_path.display(), error = %e, "bad company-list timestamp");
            return None;
        }
    };
    let bytes = std::fs::read(list_path).ok()?;
    match CompanyList::parse(&bytes) {
        Ok(list) => Some((list, fetched_at)),
        Err(e) => {
            tracing::warn!(path = %list_path.display(), error = %e, "cached company list unreadable");
            None
        }
    }
}

/// Capped exponential backoff with jitter: attempt n waits between half and all of
/// `min(cap, base * 2^(n-1))`.
pub fn backoff_delay(attempt: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let full = exp.min(BACKOFF_CAP);
    let jitter: f64 = rand::random_range(0.5..=1.0);
    full.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..10 {
            let d = backoff_delay(attempt);
            let full = (BACKOFF_BASE * (1 << (attempt - 1))).min(BACKOFF_CAP);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert!(backoff_delay(40) <= BACKOFF_CAP);
    }

    #[test]
    fn excerpt_strips_markup() {
        assert_eq!(
            body_excerpt(b"<html><h1>Your Request Originates</h1>\n<p>from an Undeclared</p>"),
            "Your Request Originates from an Undeclared"
        );
    }
}
