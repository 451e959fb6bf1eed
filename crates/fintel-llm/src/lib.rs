//! LLM providers for fintel.
//!
//! [`Provider`] is what the engine calls: one HTTP request per call, returning either a
//! [`Generation`] or a [`CallError`] whose variants are the rows of the provider-error table in
//! SPEC.md section 3. Classification happens here, once, from the response body; nothing above
//! this crate looks at status codes or error strings.
//!
//! - [`GeminiClient`]: Gemini native REST (`generateContent`, `countTokens`, `models.get`),
//!   with the pure [`classify_gemini`] / [`parse_gemini_success`] behind it.
//! - [`OpenAiClient`]: any OpenAI-compatible chat-completions server, with [`classify_openai`]
//!   / [`parse_openai_success`].
//! - [`validate_output`], [`check_schema`], [`repair_request`]: local checking of an answer
//!   against the analysis schema and the follow-up request that asks for a corrected one.
//! - [`models`]: the provider's model list and the rule that chooses one when none is
//!   configured ([`choose_model`]).
//! - [`params`]: the parameters each model family gets ([`params::request_params`]) and
//!   what a refused one becomes.
//! - [`estimate_request_tokens`]: a characters/4 estimate for planning.
//!
//! Every message in a [`CallError`] from this crate has the key that was used masked.

mod estimate;
mod gemini;
mod http;
pub mod models;
mod openai;
pub mod params;
mod types;
mod validate;

pub use estimate::{estimate_request_tokens, estimate_text_tokens, CHARS_PER_TOKEN};
pub use gemini::{
    classify_gemini, gemini_count_tokens_body, gemini_generate_body, interpret_gemini_generate,
    parse_gemini_model_info, parse_gemini_success, parse_gemini_token_count,
    parse_protobuf_duration, GeminiClient, GeminiConfig, DEFAULT_GEMINI_API_VERSION,
    DEFAULT_GEMINI_URL,
};
pub use http::{classify_transport_error, ClientBuildError};
pub use models::{
    choose_model, find_served, served_candidates, ModelChoice, ModelFamily, ServedModel,
};
pub use openai::{
    classify_openai, interpret_openai_chat, openai_chat_body, openai_wire_schema,
    parse_llamacpp_props, parse_llamacpp_tokenize, parse_ollama_show, parse_openai_model_list,
    parse_openai_success, parse_retry_after, retry_after_from_headers, schema_allows_strict,
    strip_added_nulls, OpenAiClient, OpenAiConfig, WireSchema, DEFAULT_OPENAI_URL,
};
pub use types::*;
pub use validate::{
    check_schema, repair_request, strip_code_fence, validate_output, OutputProblem,
    MAX_LISTED_PROBLEMS,
};
