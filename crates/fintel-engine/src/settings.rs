//! Settings of a run (from configuration, may change between runs) and of a batch (stored with
//! the batch when it is created, never changed by a resume).

use std::time::Duration;

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
    /// The model, as named to the provider and stored in result keys. There is no default
    /// (models retire): the binary sets the batch's own model.
    pub model: String,
    /// The model's input context in tokens.
    pub context_tokens: u64,
    /// Whether the output is generated inside `context_tokens` (OpenAI-compatible servers), so
    /// the document is fitted to the context less the output budget ([`crate::budget::plan`]).
    pub output_in_context: bool,
    /// Whether an answer's reported prompt tokens are checked for silent truncation
    /// ([`crate::budget::truncation`]); `Some` names how to raise the server's context.
    pub truncation_advice: Option<String>,
    /// The provider client's request timeout: a timed-out request is not resent before this
    /// much more time ([`crate::backoff::resend_delay`]). `None`: the backoff alone.
    pub request_timeout: Option<Duration>,
    /// Which server answers: with the model's name it decides the parameters each request
    /// gets ([`fintel_llm::params::request_params`]).
    pub server_kind: fintel_llm::ServerKind,
    /// Discovery's word on whether the model thinks; `None`: unknown.
    pub model_thinks: Option<bool>,
    /// The temperature, thinking and seed the user set; the rest is the model family's.
    pub user_params: fintel_llm::params::UserParams,
    pub max_output_tokens: Option<u32>,
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
            model: String::new(),
            context_tokens: 1_048_576,
            output_in_context: false,
            truncation_advice: None,
            request_timeout: None,
            server_kind: fintel_llm::ServerKind::Gemini,
            model_thinks: None,
            user_params: fintel_llm::params::UserParams::default(),
            max_output_tokens: Some(16_384),
            recheck: Duration::from_secs(60),
            transient_min_streak: Duration::from_secs(3600),
        }
    }
}

/// `maxOutputTokens` when neither the user nor the model lookup says otherwise.
pub const FALLBACK_MAX_OUTPUT_TOKENS: u32 = 16_384;

/// The output budget of a run: the user's `max_output_tokens` if set, else the model's
/// `outputTokenLimit` from the pre-flight lookup, else [`FALLBACK_MAX_OUTPUT_TOKENS`] (SPEC.md
/// section 3, output budget). The thinking that fits inside it is the model family's
/// ([`fintel_llm::params::request_params`]).
pub fn output_budget(configured_max: Option<u32>, model_output_limit: Option<u64>) -> Option<u32> {
    Some(
        configured_max
            .or_else(|| model_output_limit.map(|n| n.min(u64::from(u32::MAX)) as u32))
            .unwrap_or(FALLBACK_MAX_OUTPUT_TOKENS),
    )
}

/// The context assumed when neither the user nor the server says one.
pub const FALLBACK_CONTEXT_TOKENS: u64 = 1_048_576;
/// Tasks in flight at once when the user sets none and the server reports no slots.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// What a run against a server takes from what the server says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// The context of a request.
    pub context_tokens: u64,
    /// Tasks in flight at once.
    pub concurrency: usize,
    /// Whether the output shares the context with the prompt.
    pub output_in_context: bool,
    /// How to raise the server's context, for the silent-truncation check (`None`: the
    /// provider never truncates silently, so there is no check).
    pub truncation_advice: Option<String>,
}

/// The user's settings over the server's word over the defaults: the context (configured,
/// else the server's, else the model's input limit, else [`FALLBACK_CONTEXT_TOKENS`]) and the
/// concurrency (configured, else the slots a local server reports, so no request times out in
/// its queue, else [`DEFAULT_CONCURRENCY`]).
pub fn server_settings(
    configured_context: Option<u64>,
    configured_concurrency: Option<usize>,
    model_input_limit: Option<u64>,
    server: &fintel_llm::ServerLimits,
) -> ServerSettings {
    use fintel_llm::ServerKind;
    let context_tokens = configured_context
        .or(server.context_tokens)
        .or(model_input_limit)
        .unwrap_or(FALLBACK_CONTEXT_TOKENS)
        .max(1);
    let concurrency = configured_concurrency
        .or(server.slots.map(|n| n as usize))
        .unwrap_or(DEFAULT_CONCURRENCY)
        .max(1);
    let truncation_advice = match server.kind {
        ServerKind::Gemini => None,
        ServerKind::Ollama => Some(
            "raise Ollama's context: OLLAMA_CONTEXT_LENGTH=32768 in the environment of `ollama \
             serve`, or PARAMETER num_ctx 32768 in a Modelfile for the model"
                .to_string(),
        ),
        ServerKind::LlamaCpp => Some(
            "start llama-server with a larger --ctx-size (-c); with --parallel N each slot \
             gets a 1/N share of it"
                .to_string(),
        ),
        ServerKind::Vllm => Some("start vLLM with a larger --max-model-len".to_string()),
        ServerKind::OpenAiCompatible => Some("raise the server's context".to_string()),
    };
    ServerSettings {
        context_tokens,
        concurrency,
        output_in_context: server.output_in_context,
        truncation_advice,
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
    use fintel_llm::{ServerKind, ServerLimits};

    #[test]
    fn the_user_wins_over_the_server_and_the_server_over_the_defaults() {
        let llama = ServerLimits {
            kind: ServerKind::LlamaCpp,
            context_tokens: Some(2_048),
            slots: Some(2),
            output_in_context: true,
            has_tokenizer: true,
        };
        let gemini = ServerLimits {
            kind: ServerKind::Gemini,
            ..ServerLimits::default()
        };
        let plain = ServerLimits {
            output_in_context: true,
            ..ServerLimits::default()
        };
        // (configured context, configured concurrency, model input limit, server)
        //   -> (context, concurrency, output in context, truncation checked)
        let cases = [
            ((None, None, None, llama), (2_048, 2, true, true)),
            ((Some(4_096), Some(6), None, llama), (4_096, 6, true, true)),
            (
                (None, None, Some(1_048_576), gemini),
                (1_048_576, 8, false, false),
            ),
            (
                (None, None, Some(200_000), gemini),
                (200_000, 8, false, false),
            ),
            (
                (None, None, None, gemini),
                (FALLBACK_CONTEXT_TOKENS, 8, false, false),
            ),
            (
                (None, None, None, plain),
                (FALLBACK_CONTEXT_TOKENS, 8, true, true),
            ),
            ((Some(0), Some(0), None, plain), (1, 1, true, true)),
        ];
        for ((context, concurrency, input, server), expected) in cases {
            let got = server_settings(context, concurrency, input, &server);
            assert_eq!(
                (
                    got.context_tokens,
                    got.concurrency,
                    got.output_in_context,
                    got.truncation_advice.is_some()
                ),
                expected,
                "{context:?} {concurrency:?} {input:?} {server:?}"
            );
        }
        let ollama = ServerLimits {
            kind: ServerKind::Ollama,
            ..plain
        };
        let advice = server_settings(None, None, None, &ollama)
            .truncation_advice
            .unwrap();
        assert!(
            advice.contains("OLLAMA_CONTEXT_LENGTH") && advice.contains("num_ctx"),
            "{advice}"
        );
    }

    #[test]
    fn the_output_budget_follows_the_user_then_the_model_then_the_fallback() {
        let table = [
            ((None, Some(65_536)), Some(65_536)),
            ((Some(4_096), Some(65_536)), Some(4_096)),
            ((None, None), Some(FALLBACK_MAX_OUTPUT_TOKENS)),
            ((None, Some(u64::MAX)), Some(u32::MAX)),
        ];
        for ((max, limit), expected) in table {
            assert_eq!(output_budget(max, limit), expected, "{max:?} {limit:?}");
        }
    }
}
