//! fintel-sim: a simulated SEC EDGAR and Gemini API on one HTTP server, for end-to-end tests,
//! benchmarks and the offline demo.
//!
//! * SEC, with SEC's URL layout (point both `FINTEL_SEC_WWW_URL` and `FINTEL_SEC_DATA_URL` at
//!   the server): `/files/company_tickers.json`, `/submissions/CIK##########.json` and its older
//!   page `-submissions-001.json`, `/Archives/edgar/data/{cik}/{accession}/{document}` and
//!   `.../index.json`, over a deterministic universe of synthetic companies ([`Universe`]).
//! * Gemini: `POST /v1beta/models/{model}:generateContent`, `:countTokens`,
//!   `GET /v1beta/models/{model}`, with per-project quotas ([`ProjectQuota`]), the real error
//!   bodies, injected faults and answers valid against the request's schema.
//! * OpenAI-compatible (`[openai]`, [`OpenAiSimConfig`]): `GET /v1/models`,
//!   `POST /v1/chat/completions`, and per [`Flavor`] the extras and context errors of
//!   llama.cpp (`/props`, `/tokenize`), Ollama (`/api/show`, silent truncation) and vLLM
//!   (`max_model_len`), with a number of slots and slow answers.
//! * Counters: `GET /__sim/stats` ([`SimStats`]), `POST /__sim/reset-stats`.
//! * Outages on demand: `POST /__sim/outage?seconds=N` (or [`SimHandle::start_outage`]) makes
//!   every generateContent answer 503 from now for N seconds of the injected clock, beside the
//!   configured `gemini.outages` windows.
//!
//! * Weather (`[weather]`, [`WeatherConfig`]): a baseline of 503s, outages counted from a
//!   start, late daily resets, real token counts = estimate x a factor per document, MAX_TOKENS
//!   truncations, invalid JSON and slow answers, all on the injected clock.
//!
//! All time comes from the injected [`fintel_time::SharedClock`]; all randomness from the seed.
//!
//! # Behaviour a caller must know
//!
//! * **Order of checks** for generateContent, as the real API: key (missing -> 403, unknown or
//!   listed invalid -> 400 API_KEY_INVALID, leaked -> 403), model (404), body (400
//!   INVALID_ARGUMENT, including a response schema longer than `gemini.max_schema_chars`, which
//!   gets Gemini's "too many states for serving" message, as does any packed schema with
//!   `gemini.packed_schema_too_complex`), context limit (400), outage window (503), quota
//!   (429), a prompt in `gemini.blocked_prompts` (200 with `promptFeedback.blockReason`, no
//!   candidates; it costs quota), then faults.
//! * **Quota refusals** list every violated limit in the message ("Quota exceeded for metric:
//!   M, limit: N, model: X"), and a limit of 0 has no `quotaValue` (ProtoJSON omits zero
//!   values), as the live API answers a model without quota on the project's tier.
//! * **Tokens**: characters of all text parts of `contents` and `systemInstruction` plus the
//!   characters of the compact response-schema JSON, divided by 4, rounded up. The same number
//!   is used by countTokens, the context limit and the per-minute token quota.
//! * **Quota accounting**: every request that passes the key, model, body, context and outage
//!   checks is recorded against its project (requests per Pacific day, requests and tokens per
//!   sliding 60 s), including those then answered with an injected fault: failed calls cost
//!   quota, as they do at Google. A request refused with 429 is counted as received and refused
//!   but consumes no quota, unless `gemini.refused_requests_consume_quota` is set. The per-day
//!   429's RetryInfo is a few seconds, like the real one: clients must read the quotaId.
//! * **Faults** are drawn once per accepted request from hash(seed, request content, attempt
//!   number of that content), so the same sequence of requests always meets the same faults and
//!   a retry gets a fresh draw. Latency and slow answers are real time (they meet a client's
//!   real-time timeouts); a connection reset closes the connection without a response.
//! * **Answers** depend only on the seed and the request content (not the key or the attempt),
//!   so a retry sees the same text.
//! * **Counters**: `over_limit` counts requests that arrived when their project was already at
//!   a limit (daily or per-minute requests used up, or the minute's tokens used up); a client
//!   that tracks its usage never causes one. `duplicates` counts 200 STOP answers to request
//!   content (contents + systemInstruction + schema, not the key) already answered 200 STOP
//!   before; slow answers are not remembered, since the client has most likely given up.

mod answer;
mod config;
mod document;
mod errors;
mod fixtures;
mod gemini;
mod openai;
mod packed;
mod quota;
mod rng;
mod server;
pub mod sizes;
mod stats;
mod universe;
mod weather;

pub use answer::value_for_schema;
pub use config::{
    FaultConfig, GeminiConfig, LatencyConfig, ModelConfig, OutageWindow, ProjectConfig, SecConfig,
    SimConfig,
};
pub use document::{annual_report_html, filing_html, financials, Financials};
pub use gemini::estimate_tokens;
pub use openai::{FilterReply, Flavor, OpenAiSimConfig, OpenAiStats};
pub use quota::{ProjectQuota, QuotaLimitKind, QuotaLimits, QuotaRefusal};
pub use rng::DetRng;
pub use server::{router, start, SimHandle, SimState};
pub use stats::{DateCounters, FaultCounters, GeminiCounters, GeminiStats, SecStats, SimStats};
pub use universe::{companies_csv, AnnualForm, Company, Filing, FiscalYearEnd, Universe};
pub use weather::{Weather, WeatherConfig, WeatherFault, WeatherOutage};

/// Errors of the simulator's setup (requests never fail this way: they get HTTP answers).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration is invalid; the message says what to change.
    #[error("simulator configuration: {0}")]
    Config(String),
    /// The fixtures directory is missing files or holds bad data.
    #[error("simulator fixtures: {0}")]
    Fixtures(String),
    /// The listening address could not be bound.
    #[error("cannot listen on {0}: {1} (is another process using the port?)")]
    Bind(std::net::SocketAddr, #[source] std::io::Error),
}
