//! SEC EDGAR for fintel: resolving tickers to CIKs, listing a company's filings (including the
//! older submissions pages), choosing the annual report of each fiscal year, finding and
//! downloading its documents into a verified on-disk cache, all through the one SEC rate
//! limiter that every process sharing the cache directory obeys.
//!
//! Layout:
//! - [`config`]: User-Agent, base URLs, cache directory, rate.
//! - [`tickers`]: ticker normalisation and SEC's company list.
//! - [`submissions`]: the submissions API, parsed into [`Filing`]s.
//! - [`select`]: fiscal-year selection, a pure function.
//! - [`index`]: filing folder listings, complete submission text files, EX-13 exhibits (pure).
//! - [`cache`]: the document cache (atomic writes, SHA-256 verified reads, stats, prune).
//! - [`limiter`]: the cross-process SEC rate limiter and the 10-minute pause.
//! - [`client`]: [`EdgarClient`], the only code that talks to SEC.
//! - [`report`]: the serialisable `fintel filings` listing.
//!
//! Nothing here reads the system clock: time comes from an injected
//! [`fintel_time::SharedClock`].

pub mod cache;
pub mod client;
pub mod config;
mod error;
pub mod index;
pub mod limiter;
pub mod names;
pub mod report;
pub mod select;
pub mod submissions;
mod suggest;
pub mod tickers;

pub use cache::{CacheStats, DocumentCache, DocumentKey, PruneReport};
pub use client::{
    AnnualReportExhibit, Document, DocumentRef, DocumentSource, EdgarClient, ResolvedCompany,
};
pub use config::EdgarConfig;
pub use error::EdgarError;
pub use index::{ExhibitLocation, FilingIndex};
pub use limiter::SecRateLimiter;
pub use names::{Accession, FileName};
pub use report::{filings_report, FilingsQuery, FilingsReport, FilingsRow};
pub use select::{
    select_annual_reports, AnnualPick, FormFamily, SelectOptions, YearRequest, YearSelection,
};
pub use submissions::{Filing, Submissions};
pub use tickers::{normalize_ticker, CompanyEntry, CompanyList};
