//! fintel's batch engine.
//!
//! A batch is stored before any work starts ([`create`]); [`runner::Engine::run`] then claims
//! its tasks from the database, runs them with bounded concurrency through the quota-aware
//! [`keys::KeyPool`], and applies every outcome through one handler. The outside world (SEC,
//! the analysis definitions) comes in through the traits of [`ports`]; the model provider is
//! `fintel_llm::Provider`. [`projects`] decides what provider errors reveal about keys that
//! share a Google Cloud project.

pub mod backoff;
pub mod budget;
pub mod changes;
pub mod create;
pub mod idle;
pub mod input;
pub mod keys;
pub mod lifecycle;
pub mod local_error;
pub mod outcome;
pub mod pack;
pub mod ports;
pub mod projects;
pub mod quota_free;
pub mod runner;
pub mod settings;
pub mod upkeep;

pub use create::{create_batch, BatchRequest, Created};
pub use keys::{effective_buckets, Bucket, KeyPool, Layout};
pub use ports::*;
pub use runner::{Engine, Event, Level, Observer, Progress, RunOutcome, Silent};
pub use settings::{BatchSettings, EngineSettings};
pub use upkeep::{MaintenancePlan, Upkeep};

/// Errors of the engine. A task's own failures are not errors: they are stored outcomes.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The user's input cannot be used; nothing was changed.
    #[error("{0}")]
    BadInput(String),
    /// SEC could not be reached to create the batch.
    #[error("SEC: {0}")]
    Source(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] fintel_store::StoreError),
}

/// The key under which a result is stored and found again: (CIK, accession number(s),
/// analysis type, analysis version, model). A completed result is never requested again for
/// the same key, by this batch or any later one.
pub fn result_key(cik: u64, accession: &str, analysis: &str, version: &str, model: &str) -> String {
    format!("{cik}/{accession}/{analysis}/{version}/{model}")
}

/// A rough token count (four characters a token for English filings), used where the
/// provider's own count is not needed.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}
