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
    /// Whether the output is generated inside `context_tokens` (OpenAI-compatible servers), so
    /// the document is fitted to the context less the output budget ([`crate::budget::plan`]).
    pub output_in_context: bool,
    /// Whether an answer's reported prompt tokens are checked for silent truncation
    /// ([`crate::budget::truncation`]); `Some` names how to raise the server's context.
    pub truncation_advice: Option<String>,
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
            output_in_context: false,
            truncation_advice: None,
            temperature: Some(0.2),
            max_output_tokens: Some(16_384),
            thinking: Thinking::ProviderDefault,
            recheck: Duration::from_secs(60),
            transient_min_streak: Duration::from_secs(3600),
        }
    }
}

/// `maxOutputTokens` when neither the user nor the model lookup says otherwise.
pub const FALLBACK_MAX_OUTPUT_TOKENS: u32 = 16_384;
/// The thinking budget of a Gemini 2.x model whose thinking the user did not set: thinking
/// counts against the output limit, and a dynamic budget can use all of it (MAX_TOKENS).
pub const DEFAULT_THINKING_BUDGET: i32 = 8_192;

/// The output budget of a run: the user's `max_output_tokens` if set, else the model's
/// `outputTokenLimit` from the pre-flight lookup, else [`FALLBACK_MAX_OUTPUT_TOKENS`]; and the
/// user's thinking setting, or a bounded budget instead of the provider's dynamic default for
/// Gemini 2.x models (SPEC.md section 3, output budget).
pub fn output_budget(
    configured_max: Option<u32>,
    configured_thinking: &Thinking,
    model: &str,
    model_output_limit: Option<u64>,
) -> (Option<u32>, Thinking) {
    let max = configured_max
        .or_else(|| model_output_limit.map(|n| n.min(u64::from(u32::MAX)) as u32))
        .unwrap_or(FALLBACK_MAX_OUTPUT_TOKENS);
    let name = model.trim().strip_prefix("models/").unwrap_or(model.trim());
    let thinking = match configured_thinking {
        Thinking::ProviderDefault if name.starts_with("gemini-2.5") => {
            Thinking::Budget(DEFAULT_THINKING_BUDGET.min((max / 2) as i32).max(128))
        }
        other => other.clone(),
    };
    (Some(max), thinking)
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
    /// Request packing (SPEC.md section 12); batches stored before it existed read as off.
    #[serde(default)]
    pub pack: crate::pack::Pack,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            max_retries: 2,
            force: false,
            include_amendments: false,
            skip_unknown: false,
            pack: crate::pack::Pack::Off,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_budget_follows_the_user_then_the_model_then_the_fallback() {
        let default = Thinking::ProviderDefault;
        let table = [
            // The model's own limit when the user set none, with a bounded thinking budget.
            (
                (None, default.clone(), "gemini-2.5-flash", Some(65_536)),
                (Some(65_536), Thinking::Budget(8_192)),
            ),
            // The user's settings win.
            (
                (
                    Some(4_096),
                    Thinking::Budget(512),
                    "gemini-2.5-flash",
                    Some(65_536),
                ),
                (Some(4_096), Thinking::Budget(512)),
            ),
            // A small output limit keeps thinking to half of it.
            (
                (Some(4_096), default.clone(), "models/gemini-2.5-pro", None),
                (Some(4_096), Thinking::Budget(2_048)),
            ),
            // No lookup (a local server): the fallback; other models keep their default.
            (
                (None, default.clone(), "gpt-4o-mini", None),
                (Some(FALLBACK_MAX_OUTPUT_TOKENS), Thinking::ProviderDefault),
            ),
            (
                (
                    None,
                    Thinking::Level("low".into()),
                    "gemini-3-pro-preview",
                    Some(65_536),
                ),
                (Some(65_536), Thinking::Level("low".into())),
            ),
        ];
        for ((max, thinking, model, limit), expected) in table {
            assert_eq!(
                output_budget(max, &thinking, model, limit),
                expected,
                "{model}"
            );
        }
    }
}
