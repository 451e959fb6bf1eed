//! Settings of a run (from configuration, may change between runs) and of a batch (stored with
//! the batch when it is created, never changed by a resume).

use std::time::Duration;

use fintel_llm::Thinking;
use serde::{Deserialize, Serialize};

/// How this process runs a batch.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Tasks in flight at once.
    pub concurrency: usize,
    /// Retry backoff: first delay and cap.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// How long in-flight calls may finish after the first signal.
    pub grace: Duration,
    /// Consecutive transient failures on different tasks that open the outage breaker.
    pub breaker_threshold: usize,
    /// The model, as named to the provider and stored in result keys.
    pub model: String,
    /// The model's input context in tokens.
    pub context_tokens: u64,
    pub temperature: Option<f32>,
    pub max_output_tokens: Option<u32>,
    pub thinking: Thinking,
    /// The longest an idle run sleeps before looking at the database again (stop requests,
    /// other processes' progress). Waits are for wall-clock instants either way.
    pub recheck: Duration,
    /// Transient failures (5xx, timeouts) fail a task only when its streak of them spans at
    /// least this long as well as using up its retries, so an outage never fails a lone task.
    pub transient_min_streak: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            concurrency: 4,
            retry_base: Duration::from_secs(30),
            retry_cap: Duration::from_secs(30 * 60),
            grace: Duration::from_secs(30),
            breaker_threshold: 5,
            model: "gemini-2.5-flash".to_string(),
            context_tokens: 1_048_576,
            temperature: Some(0.2),
            max_output_tokens: Some(16_384),
            thinking: Thinking::ProviderDefault,
            recheck: Duration::from_secs(60),
            transient_min_streak: Duration::from_secs(3600),
        }
    }
}

/// What a batch was created with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchSettings {
    /// Retries after the first attempt (SPEC.md: default 2, so at most 3 attempts).
    pub max_retries: u32,
    /// Redo analyses even when a stored result has the same key.
    pub force: bool,
    pub include_amendments: bool,
    pub skip_unknown: bool,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            max_retries: 2,
            force: false,
            include_amendments: false,
            skip_unknown: false,
        }
    }
}
