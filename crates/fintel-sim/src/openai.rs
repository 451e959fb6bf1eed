//! The simulated OpenAI-compatible server (`[openai]` in the config file): `GET /v1/models` and
//! `POST /v1/chat/completions` answering schema-shaped JSON, as OpenAI itself, a llama.cpp
//! `llama-server`, Ollama or vLLM would, each *flavor* with its own extras and error bodies:
//!
//! * **openai**: 400 `context_length_exceeded`, 404 `model_not_found`, and on demand
//!   (`content_filtered`) the 400 refusing a prompt's content, as Azure OpenAI
//!   (`content_filter`) or OpenAI (`invalid_prompt`) answers it; a reasoning or GPT-5
//!   model (`o1*`, `o3*`, `o4*`, `gpt-5*`) refuses `max_tokens` (400 `unsupported_parameter`)
//!   and any temperature but 1 (400 `unsupported_value`) with OpenAI's bodies; a `strict: true`
//!   schema that strict mode would not accept is refused 400 "Invalid schema for
//!   response_format ..." (every flavor checks it).
//! * **llamacpp**: `GET /props` (`default_generation_settings.n_ctx`, the context of one slot,
//!   and `total_slots`), `POST /tokenize` (`{"content"}` -> `{"tokens": [...]}`), `GET
//!   /health`, and the 400 `exceed_context_size_error` with `n_prompt_tokens` and `n_ctx`. It
//!   serves its one model under any name, as llama-server does.
//! * **ollama**: `POST /api/show` (`model_info["<arch>.context_length"]`, the length the model
//!   was trained for, not the context the server runs it with), and an over-long prompt
//!   either refused 400 "the prompt is longer than the context length..." (`context_error`) or,
//!   by default, silently truncated: the server keeps the first 4 tokens and the tail, answers
//!   200 with valid JSON and reports the truncated `prompt_tokens`.
//! * **vllm**: `max_model_len` in `/v1/models`, and a context that holds the prompt *and*
//!   `max_tokens`: 400 "This model's maximum context length is N tokens. However, you
//!   requested M tokens (P in the messages, C in the completion)...".
//!
//! Prompt tokens are the Gemini side's estimate (characters of every message's content plus the
//! compact JSON of the response schema, each divided by 4 and rounded up) times `token_factor`.
//! A request holds one of `slots` for `answer_ms` of real time (the work is real time because
//! it meets the client's real-time timeout); the server finishes what it started even when
//! the client has gone, as a busy local server does, so a resend queues behind its abandoned
//! original. Counters are in [`OpenAiStats`].

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::rng::DetRng;
use crate::server::SimState;

/// Which server the simulator imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// OpenAI's own API.
    #[default]
    OpenAi,
    /// llama.cpp's `llama-server`.
    LlamaCpp,
    /// Ollama's OpenAI-compatible endpoint.
    Ollama,
    /// vLLM's OpenAI-compatible server.
    Vllm,
}

/// The `[openai]` block. Every field has a default, so a file names only what it changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiSimConfig {
    /// The server imitated.
    pub flavor: Flavor,
    /// Model ids listed by `/v1/models` and accepted by chat completions (llama.cpp accepts
    /// any name and answers with its one model).
    pub models: Vec<String>,
    /// When set, every request must carry `Authorization: Bearer <api_key>` (else 401).
    pub api_key: Option<String>,
    /// The context the server runs with, in tokens (for llama.cpp the context of one slot,
    /// which `/props` reports as `n_ctx`; for vLLM `max_model_len`).
    pub context_tokens: u64,
    /// The context the model was trained for, reported by Ollama's `/api/show` and llama.cpp's
    /// `n_ctx_train`; `None`: the same as `context_tokens`.
    pub model_context_tokens: Option<u64>,
    /// Requests worked on at once; more wait in the server's queue.
    pub slots: u32,
    /// Real milliseconds each request holds its slot before it is answered.
    pub answer_ms: u64,
    /// Share of requests whose answer rambles on for `ramble_tokens` output tokens (drawn per
    /// request content, so a resend of the same request rambles again): with a smaller
    /// `max_tokens`, or too little context left, it ends with `finish_reason: "length"`.
    pub length_chance: f64,
    /// Output tokens a rambling answer needs.
    pub ramble_tokens: u64,
    /// Real prompt tokens = estimate x this factor (a tokenizer denser or lighter than 4
    /// characters a token).
    pub token_factor: f64,
    /// Ollama only: refuse an over-long prompt with a 400 instead of truncating it silently.
    pub context_error: bool,
    /// A request whose body contains one of these texts (e.g. `(ticker SIM3)`, as the prompt
    /// names its company) is refused 400 for its content, in the shape of `content_filter_reply`.
    pub content_filtered: Vec<String>,
    /// The body of a content refusal.
    pub content_filter_reply: FilterReply,
    /// OpenAI only: name prefixes of the models that take only `max_completion_tokens` and the
    /// default temperature (OpenAI's reasoning and GPT-5 models).
    pub reasoning_models: Vec<String>,
}

/// How a server refuses a prompt for its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterReply {
    /// Azure OpenAI: 400 `content_filter` with its `innererror` (quoted in
    /// openai/openai-python#331 and vibrantlabsai/ragas#649).
    #[default]
    Azure,
    /// OpenAI: 400 `invalid_prompt` "your prompt was flagged as potentially violating our
    /// usage policy" (quoted in alan-turing-institute/t0-1#69).
    InvalidPrompt,
}

/// The 400 body of a prompt refused for its content.
pub(crate) fn content_filter_body(reply: FilterReply) -> Value {
    match reply {
        FilterReply::Azure => json!({"error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
            "type": null,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    "hate": {"filtered": false, "severity": "safe"},
                    "self_harm": {"filtered": false, "severity": "safe"},
                    "sexual": {"filtered": false, "severity": "safe"},
                    "violence": {"filtered": true, "severity": "medium"}
                }
            }
        }}),
        FilterReply::InvalidPrompt => json!({"error": {
            "message": "Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please try again with a different prompt: https://platform.openai.com/docs/guides/reasoning#advice-on-prompting",
            "type": "invalid_request_error",
            "param": null,
            "code": "invalid_prompt"
        }}),
    }
}

impl Default for OpenAiSimConfig {
    fn default() -> Self {
        OpenAiSimConfig {
            flavor: Flavor::OpenAi,
            models: vec!["sim-local-model".to_string()],
            api_key: None,
            context_tokens: 32_768,
            model_context_tokens: None,
            slots: 4,
            answer_ms: 0,
            length_chance: 0.0,
            ramble_tokens: 8_192,
            token_factor: 1.0,
            context_error: false,
            content_filtered: Vec::new(),
            content_filter_reply: FilterReply::default(),
            reasoning_models: ["gpt-5", "o1", "o3", "o4"].map(String::from).to_vec(),
        }
    }
}

impl OpenAiSimConfig {
    /// Checks what TOML types cannot; the message says what to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.models.is_empty() || self.models.iter().any(|m| m.trim().is_empty()) {
            return Err("openai.models must list at least one non-empty model id".into());
        }
        if self.context_tokens < 16 {
            return Err(format!(
                "openai.context_tokens = {} is too small: give at least 16",
                self.context_tokens
            ));
        }
        if self.model_context_tokens == Some(0) {
            return Err("openai.model_context_tokens must be positive (or left out)".into());
        }
        if self.slots == 0 {
            return Err("openai.slots must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.length_chance) {
            return Err(format!(
                "openai.length_chance = {} must be a probability between 0 and 1",
                self.length_chance
            ));
        }
        if !(0.1..=10.0).contains(&self.token_factor) {
            return Err(format!(
                "openai.token_factor = {} must be between 0.1 and 10",
                self.token_factor
            ));
        }
        Ok(())
    }

    fn trained_context(&self) -> u64 {
        self.model_context_tokens.unwrap_or(self.context_tokens)
    }
}

/// Counters of the OpenAI-compatible side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpenAiStats {
    /// Chat-completion requests received (authenticated or not).
    pub received: u64,
    /// Answered 200 (`stop` or `length`).
    pub answered: u64,
    /// Of `answered`: `finish_reason: "length"`.
    pub length: u64,
    /// Refused 400 because the request did not fit the context.
    pub context_refused: u64,
    /// Answered 200 from a silently truncated prompt (Ollama's default).
    pub truncated_silently: u64,
    /// Requests byte for byte the same as one already answered `finish_reason: "length"`.
    pub repeated_after_length: u64,
    /// 200 `stop` answers to request content already answered `stop` before.
    pub duplicates: u64,
    /// Requests whose content arrived while the same content was still queued or being
    /// worked on (a resend behind an abandoned original).
    pub resent_while_in_flight: u64,
    /// Requests whose client went away before the answer was ready.
    pub abandoned: u64,
    /// Most requests worked on at once.
    pub max_busy: u64,
    /// Refused 401 (missing or wrong key).
    pub unauthorized: u64,
    /// Refused 404 (model not served).
    pub unknown_model: u64,
    /// Refused 400 for a malformed body.
    pub invalid_request: u64,
    /// Refused 400 for the prompt's content (`content_filtered`).
    pub content_filtered: u64,
    /// `GET /v1/models` answered.
    pub model_lists: u64,
    /// `GET /props` answered (llama.cpp).
    pub props: u64,
    /// `POST /tokenize` answered (llama.cpp).
    pub tokenize: u64,
    /// `POST /api/show` answered (Ollama).
    pub show: u64,
    /// Refused 400 `unsupported_parameter` / `unsupported_value` by a model's parameter rules.
    #[serde(default)]
    pub param_refused: u64,
    /// Requests with `strict: true` whose schema qualified.
    #[serde(default)]
    pub strict: u64,
    /// Refused 400 for a `strict: true` schema that does not qualify.
    #[serde(default)]
    pub strict_refused: u64,
    /// Requests carrying `seed`.
    #[serde(default)]
    pub seeded: u64,
}

/// Mutable state of the OpenAI side, kept in the simulator's lock.
#[derive(Debug, Default)]
pub(crate) struct OpenAiInner {
    pub(crate) stats: OpenAiStats,
    /// Request contents queued or being worked on, with how many.
    in_flight: std::collections::HashMap<u64, u32>,
    /// Whole request bodies answered `length`.
    length_bodies: std::collections::HashSet<u64>,
    /// Request contents answered `stop`.
    answered: std::collections::HashSet<u64>,
    busy: u64,
}

/// The slots of a running simulator, shared by its requests.
pub(crate) fn slots_semaphore(config: Option<&OpenAiSimConfig>) -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(
        config.map_or(1, |c| c.slots as usize),
    ))
}

// ---------------------------------------------------------------- pure parts

/// What the simulator needs from a chat-completions body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChatRequest {
    pub(crate) model: String,
    /// Prompt tokens by the server's tokenizer (estimate x factor).
    pub(crate) prompt_tokens: u64,
    /// `max_tokens` or `max_completion_tokens`.
    pub(crate) max_tokens: Option<u64>,
    pub(crate) schema: Option<Value>,
    /// `response_format.json_schema.strict`.
    pub(crate) strict: bool,
    /// Whether the output limit came as `max_tokens` (not `max_completion_tokens`).
    pub(crate) sent_max_tokens: bool,
    /// `temperature`, if sent.
    pub(crate) temperature: Option<f64>,
    /// Whether `seed` was sent.
    pub(crate) seeded: bool,
    /// Messages + schema (not the model, key or limits): identifies a resend.
    pub(crate) content_hash: u64,
    /// The whole body: identifies a byte-for-byte resend.
    pub(crate) body_hash: u64,
}

fn hash_str(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Tokens of `chars` characters by the server's tokenizer.
pub(crate) fn tokens_of(chars: u64, factor: f64) -> u64 {
    ((chars.div_ceil(4) as f64) * factor).ceil() as u64
}

/// Reads a chat-completions body; the error is the message of a 400.
pub(crate) fn parse_chat(body: &[u8], factor: f64) -> Result<ChatRequest, String> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("Failed to parse the request body as JSON: {e}"))?;
    let model = value
        .get("model")
        .and_then(Value::as_str)
        .ok_or("'model' is required and must be a string")?
        .to_string();
    let messages = value
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("'messages' is required and must be a non-empty array")?;
    let mut message_tokens = 0;
    for m in messages {
        let content = match m.get("content") {
            Some(Value::String(s)) => s.chars().count() as u64,
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .map(|t| t.chars().count() as u64)
                .sum(),
            _ => return Err("each message needs a 'content' string".into()),
        };
        message_tokens += content.div_ceil(4);
    }
    let schema = value
        .pointer("/response_format/json_schema/schema")
        .cloned();
    let schema_tokens = schema
        .as_ref()
        .map_or(0, |s| (s.to_string().chars().count() as u64).div_ceil(4));
    let max_tokens = match (value.get("max_tokens"), value.get("max_completion_tokens")) {
        (Some(v), _) | (None, Some(v)) if !v.is_null() => Some(
            v.as_u64()
                .filter(|n| *n > 0)
                .ok_or("'max_tokens' must be a positive integer")?,
        ),
        _ => None,
    };
    let content_hash = hash_str(&format!(
        "{}\u{0}{}",
        Value::Array(messages.clone()),
        schema.as_ref().map(Value::to_string).unwrap_or_default()
    ));
    Ok(ChatRequest {
        model,
        prompt_tokens: ((message_tokens + schema_tokens) as f64 * factor).ceil() as u64,
        max_tokens,
        strict: value.pointer("/response_format/json_schema/strict") == Some(&json!(true)),
        sent_max_tokens: value.get("max_tokens").is_some_and(|v| !v.is_null()),
        temperature: value.get("temperature").and_then(Value::as_f64),
        seeded: value.get("seed").is_some_and(|v| !v.is_null()),
        schema,
        content_hash,
        body_hash: hash_str(&String::from_utf8_lossy(body)),
    })
}

/// Whether `model` is one of `config.reasoning_models`, which take only
/// `max_completion_tokens` and the default temperature.
pub(crate) fn is_reasoning_model(config: &OpenAiSimConfig, model: &str) -> bool {
    let m = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    config
        .reasoning_models
        .iter()
        .any(|prefix| m.starts_with(&prefix.to_ascii_lowercase()))
}

/// The 400 body a model's parameter rules give `request`, as OpenAI words them.
pub(crate) fn parameter_refusal(config: &OpenAiSimConfig, request: &ChatRequest) -> Option<Value> {
    if config.flavor != Flavor::OpenAi || !is_reasoning_model(config, &request.model) {
        return None;
    }
    if request.sent_max_tokens {
        return Some(json!({"error": {
            "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "unsupported_parameter",
        }}));
    }
    match request.temperature {
        Some(t) if t != 1.0 => Some(json!({"error": {
            "message": format!("Unsupported value: 'temperature' does not support {t} with this model. Only the default (1) value is supported."),
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "unsupported_value",
        }})),
        _ => None,
    }
}

/// Keywords strict structured outputs accept (OpenAI, "Supported schemas").
const STRICT_KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "anyOf",
    "description",
    "title",
    "$defs",
    "definitions",
    "$ref",
    "pattern",
    "format",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "minItems",
    "maxItems",
];

/// Why strict mode would not accept `schema`, in OpenAI's words, or `None`.
pub(crate) fn strict_schema_problem(schema: &Value) -> Option<String> {
    fn context(path: &[String]) -> String {
        let inner: Vec<String> = path.iter().map(|p| format!("'{p}'")).collect();
        match inner.len() {
            0 => "()".to_string(),
            1 => format!("({},)", inner[0]),
            _ => format!("({})", inner.join(", ")),
        }
    }
    fn check(node: &Value, path: &mut Vec<String>) -> Option<String> {
        let map = node.as_object()?;
        if let Some(k) = map.keys().find(|k| !STRICT_KEYWORDS.contains(&k.as_str())) {
            return Some(format!(
                "In context={}, '{k}' is not permitted.",
                context(path)
            ));
        }
        let is_object = map.get("type").is_some_and(|t| {
            t == "object"
                || t.as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "object"))
        }) || map.contains_key("properties");
        if is_object {
            if map.get("additionalProperties") != Some(&Value::Bool(false)) {
                return Some(format!(
                    "In context={}, 'additionalProperties' is required to be supplied and to be false.",
                    context(path)
                ));
            }
            let required: Vec<&str> = map
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = map.get("properties").and_then(Value::as_object) {
                if let Some(missing) = props.keys().find(|k| !required.contains(&k.as_str())) {
                    return Some(format!(
                        "In context={}, 'required' is required to be supplied and to be an array including every key in properties. Missing '{missing}'.",
                        context(path)
                    ));
                }
                for (name, p) in props {
                    path.push("properties".into());
                    path.push(name.clone());
                    let problem = check(p, path);
                    path.truncate(path.len() - 2);
                    if problem.is_some() {
                        return problem;
                    }
                }
            }
        }
        if let Some(items) = map.get("items") {
            path.push("items".into());
            let problem = check(items, path);
            path.pop();
            if problem.is_some() {
                return problem;
            }
        }
        if let Some(options) = map.get("anyOf").and_then(Value::as_array) {
            for (i, o) in options.iter().enumerate() {
                path.push("anyOf".into());
                path.push(i.to_string());
                let problem = check(o, path);
                path.truncate(path.len() - 2);
                if problem.is_some() {
                    return problem;
                }
            }
        }
        None
    }
    if schema.get("type") != Some(&json!("object")) {
        let got = schema.get("type").and_then(Value::as_str).unwrap_or("None");
        return Some(format!(
            "Invalid schema for response_format 'result': schema must be a JSON Schema of \
             'type: \"object\"', got 'type: \"{got}\"'."
        ));
    }
    check(schema, &mut Vec::new())
        .map(|problem| format!("Invalid schema for response_format 'result': {problem}"))
}

/// How the server answers a request that passed the key and model checks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// A 400 for a request that does not fit the context.
    ContextRefused(u16, Value),
    /// Work on it, then answer 200.
    Answer {
        /// The prompt tokens the server really read (fewer when truncated silently).
        prompt_tokens: u64,
        /// Output tokens the server may generate (`max_tokens`, and what the context leaves).
        output_room: u64,
        truncated: bool,
    },
}

/// The context decision of `flavor` for a request (pure, table-tested).
pub(crate) fn decide_context(config: &OpenAiSimConfig, request: &ChatRequest) -> Decision {
    let ctx = config.context_tokens;
    let prompt = request.prompt_tokens;
    let room = |prompt: u64| {
        let left = ctx.saturating_sub(prompt);
        request.max_tokens.map_or(left, |m| m.min(left))
    };
    match config.flavor {
        Flavor::LlamaCpp if prompt >= ctx => Decision::ContextRefused(
            400,
            json!({"error": {
                "code": 400,
                "message": format!("request ({prompt} tokens) exceeds the available context size ({ctx} tokens), try increasing it"),
                "type": "exceed_context_size_error",
                "n_prompt_tokens": prompt,
                "n_ctx": ctx,
            }}),
        ),
        Flavor::Vllm => {
            // vLLM reserves max_tokens inside max_model_len (and all that is left without it).
            let completion = request.max_tokens.unwrap_or(0);
            if prompt + completion > ctx || prompt >= ctx {
                let requested = prompt + completion;
                Decision::ContextRefused(
                    400,
                    json!({
                        "object": "error",
                        "message": format!("This model's maximum context length is {ctx} tokens. However, you requested {requested} tokens ({prompt} in the messages, {completion} in the completion). Please reduce the length of the messages or completion."),
                        "type": "BadRequestError",
                        "param": null,
                        "code": 400,
                    }),
                )
            } else {
                Decision::Answer {
                    prompt_tokens: prompt,
                    output_room: room(prompt),
                    truncated: false,
                }
            }
        }
        Flavor::Ollama if prompt > ctx && config.context_error => Decision::ContextRefused(
            400,
            json!({"error": {
                "message": "the prompt is longer than the context length currently available to the model",
                "type": "invalid_request_error",
                "param": null,
                "code": null,
            }}),
        ),
        Flavor::Ollama => {
            // Ollama keeps the first tokens and the tail so that the prompt fills the context,
            // and says so only in its own log; generation goes on by shifting the context.
            let truncated = prompt > ctx;
            Decision::Answer {
                prompt_tokens: prompt.min(ctx),
                output_room: request.max_tokens.unwrap_or(u64::MAX),
                truncated,
            }
        }
        Flavor::OpenAi if prompt + request.max_tokens.unwrap_or(0) > ctx => {
            Decision::ContextRefused(
                400,
                json!({"error": {
                    "message": format!("This model's maximum context length is {ctx} tokens. However, your messages resulted in {prompt} tokens. Please reduce the length of the messages."),
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }}),
            )
        }
        _ => Decision::Answer {
            prompt_tokens: prompt,
            output_room: room(prompt),
            truncated: false,
        },
    }
}

/// A generic error body in the flavor's shape.
pub(crate) fn error_body(flavor: Flavor, status: u16, message: &str, code: Option<&str>) -> Value {
    let kind = match status {
        401 => "authentication_error",
        404 => "not_found_error",
        _ => "invalid_request_error",
    };
    match flavor {
        Flavor::LlamaCpp => json!({"error": {"code": status, "message": message, "type": kind}}),
        Flavor::Vllm => json!({
            "object": "error",
            "message": message,
            "type": match status { 401 => "Unauthorized", 404 => "NotFoundError", _ => "BadRequestError" },
            "param": null,
            "code": status,
        }),
        Flavor::OpenAi | Flavor::Ollama => json!({"error": {
            "message": message,
            "type": if flavor == Flavor::Ollama && status == 404 { "api_error" } else { "invalid_request_error" },
            "param": null,
            "code": code,
        }}),
    }
}

/// The `/v1/models` list of `config`.
pub(crate) fn models_body(config: &OpenAiSimConfig) -> Value {
    let data: Vec<Value> = config
        .models
        .iter()
        .map(|id| match config.flavor {
            Flavor::OpenAi => json!({"id": id, "object": "model", "created": 1_727_000_000, "owned_by": "system"}),
            Flavor::LlamaCpp => json!({
                "id": id, "object": "model", "created": 1_727_000_000, "owned_by": "llamacpp",
                "meta": {"vocab_type": 2, "n_vocab": 49_152, "n_ctx_train": config.trained_context(), "n_embd": 576, "n_params": 134_515_008_u64, "size": 98_000_000_u64},
            }),
            Flavor::Ollama => json!({"id": id, "object": "model", "created": 1_727_000_000, "owned_by": "library"}),
            Flavor::Vllm => json!({
                "id": id, "object": "model", "created": 1_727_000_000, "owned_by": "vllm",
                "root": id, "parent": null, "max_model_len": config.context_tokens,
                "permission": [{"id": format!("modelperm-{}", hash_str(id) % 1_000_000), "object": "model_permission", "allow_sampling": true, "allow_logprobs": true, "is_blocking": false}],
            }),
        })
        .collect();
    json!({"object": "list", "data": data})
}

/// llama.cpp's `GET /props`.
pub(crate) fn props_body(config: &OpenAiSimConfig) -> Value {
    let model = config.models.first().cloned().unwrap_or_default();
    json!({
        "default_generation_settings": {
            "id": 0,
            "id_task": -1,
            "n_ctx": config.context_tokens,
            "speculative": false,
            "is_processing": false,
            "params": {"n_predict": -1, "temperature": 0.8, "top_k": 40, "top_p": 0.95, "seed": 4_294_967_295_u64},
        },
        "total_slots": config.slots,
        "model_path": format!("models/{model}.gguf"),
        "chat_template": "{% for message in messages %}{{ message.content }}{% endfor %}",
        "modalities": {"vision": false, "audio": false},
        "build_info": "b6000-fintel-sim",
    })
}

/// Ollama's `POST /api/show` for `model`.
pub(crate) fn show_body(config: &OpenAiSimConfig, model: &str) -> Value {
    json!({
        "license": "",
        "modelfile": format!("# Modelfile generated by \"ollama show\"\nFROM {model}\n"),
        "parameters": "stop \"<|im_end|>\"",
        "template": "{{ .Prompt }}",
        "details": {
            "parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
            "parameter_size": "8.0B", "quantization_level": "Q4_K_M",
        },
        "model_info": {
            "general.architecture": "llama",
            "general.parameter_count": 8_030_261_248_u64,
            "llama.context_length": config.trained_context(),
            "llama.embedding_length": 4096,
        },
        "capabilities": ["completion", "tools"],
        "modified_at": "2026-11-02T09:14:07.123456789Z",
    })
}

/// The answer text and its finish reason: the schema-shaped answer, cut at `output_room`
/// tokens when it needs more (a rambling answer needs `ramble_tokens`).
pub(crate) fn answer_text(
    seed: u64,
    config: &OpenAiSimConfig,
    request: &ChatRequest,
    output_room: u64,
) -> (String, &'static str, u64) {
    let mut rng = DetRng::new(seed, &[request.content_hash, 0xA45]);
    let text = match &request.schema {
        Some(schema) => crate::answer::value_for_schema(schema, &mut rng).to_string(),
        None => "The annual report describes steady revenue growth and the principal risks named by management.".to_string(),
    };
    let mut needed = (text.chars().count() as u64).div_ceil(4);
    if DetRng::new(seed, &[request.content_hash, 0x1E46]).chance(config.length_chance) {
        needed = needed.max(config.ramble_tokens);
    }
    if needed > output_room {
        let cut: String = text
            .chars()
            .take(output_room.saturating_mul(4).min(usize::MAX as u64) as usize)
            .collect();
        (cut, "length", output_room)
    } else {
        (
            text.clone(),
            "stop",
            (text.chars().count() as u64).div_ceil(4),
        )
    }
}

// ---------------------------------------------------------------- handlers

fn json_reply(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        Json(body),
    )
        .into_response()
}

fn not_served() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain")],
        "404 page not found\n",
    )
        .into_response()
}

/// The `[openai]` block, or a 404 when the simulator serves no OpenAI-compatible API.
fn config_of(state: &SimState) -> Option<&OpenAiSimConfig> {
    state.config().openai.as_ref()
}

fn authorized(state: &SimState, config: &OpenAiSimConfig, headers: &HeaderMap) -> Option<Response> {
    let expected = config.api_key.as_deref()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given == Some(expected) {
        return None;
    }
    state.with_openai(|o| o.stats.unauthorized += 1);
    let message = match config.flavor {
        Flavor::OpenAi => "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
        _ => "Invalid API Key",
    };
    Some(json_reply(
        401,
        error_body(config.flavor, 401, message, Some("invalid_api_key")),
    ))
}

/// `GET /v1/models`.
pub(crate) async fn list_models(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
) -> Response {
    let Some(config) = config_of(&state) else {
        return not_served();
    };
    if let Some(r) = authorized(&state, config, &headers) {
        return r;
    }
    state.with_openai(|o| o.stats.model_lists += 1);
    Json(models_body(config)).into_response()
}

/// `GET /props` (llama.cpp).
pub(crate) async fn props(State(state): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    match config_of(&state) {
        Some(config) if config.flavor == Flavor::LlamaCpp => {
            if let Some(r) = authorized(&state, config, &headers) {
                return r;
            }
            state.with_openai(|o| o.stats.props += 1);
            Json(props_body(config)).into_response()
        }
        _ => not_served(),
    }
}

/// `GET /health` (llama.cpp).
pub(crate) async fn health(State(state): State<Arc<SimState>>) -> Response {
    match config_of(&state) {
        Some(config) if config.flavor == Flavor::LlamaCpp => {
            Json(json!({"status": "ok"})).into_response()
        }
        _ => not_served(),
    }
}

/// `POST /tokenize` (llama.cpp): `{"content": "..."}` -> `{"tokens": [...]}`.
pub(crate) async fn tokenize(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(config) = config_of(&state).filter(|c| c.flavor == Flavor::LlamaCpp) else {
        return not_served();
    };
    if let Some(r) = authorized(&state, config, &headers) {
        return r;
    }
    let content = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("content").and_then(Value::as_str).map(str::to_string));
    let Some(content) = content else {
        return json_reply(
            400,
            error_body(config.flavor, 400, "\"content\" must be provided", None),
        );
    };
    let n = tokens_of(content.chars().count() as u64, config.token_factor);
    state.with_openai(|o| o.stats.tokenize += 1);
    let tokens: Vec<u64> = (0..n).map(|i| (i * 7 + 11) % 49_152).collect();
    Json(json!({ "tokens": tokens })).into_response()
}

/// `POST /api/show` (Ollama): `{"model": "..."}` (older clients send `"name"`).
pub(crate) async fn show(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    let Some(config) = config_of(&state).filter(|c| c.flavor == Flavor::Ollama) else {
        return not_served();
    };
    let value = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let model = value
        .get("model")
        .or_else(|| value.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !config.models.iter().any(|m| m == model) {
        return json_reply(404, json!({"error": format!("model '{model}' not found")}));
    }
    state.with_openai(|o| o.stats.show += 1);
    Json(show_body(config, model)).into_response()
}

/// Counts a request that left before its answer was ready, and releases its content's
/// in-flight mark when the server is done with it.
struct Waiting {
    state: Arc<SimState>,
    done: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.done {
            self.state.with_openai(|o| o.stats.abandoned += 1);
        }
    }
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat_completions(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(config) = config_of(&state).cloned() else {
        return not_served();
    };
    state.with_openai(|o| o.stats.received += 1);
    if let Some(r) = authorized(&state, &config, &headers) {
        return r;
    }
    let request = match parse_chat(&body, config.token_factor) {
        Ok(r) => r,
        Err(message) => {
            state.with_openai(|o| o.stats.invalid_request += 1);
            return json_reply(400, error_body(config.flavor, 400, &message, None));
        }
    };
    let served = config.flavor == Flavor::LlamaCpp || config.models.contains(&request.model);
    if !served {
        state.with_openai(|o| o.stats.unknown_model += 1);
        let model = &request.model;
        let message = match config.flavor {
            Flavor::Ollama => format!("model \"{model}\" not found, try pulling it first"),
            Flavor::Vllm => format!("The model `{model}` does not exist."),
            _ => format!("The model `{model}` does not exist or you do not have access to it."),
        };
        return json_reply(
            404,
            error_body(config.flavor, 404, &message, Some("model_not_found")),
        );
    }
    if !config.content_filtered.is_empty() {
        let text = String::from_utf8_lossy(&body);
        if config
            .content_filtered
            .iter()
            .any(|t| !t.is_empty() && text.contains(t.as_str()))
        {
            state.with_openai(|o| o.stats.content_filtered += 1);
            return json_reply(400, content_filter_body(config.content_filter_reply));
        }
    }
    if request.seeded {
        state.with_openai(|o| o.stats.seeded += 1);
    }
    if request.strict {
        if let Some(message) = request.schema.as_ref().and_then(strict_schema_problem) {
            state.with_openai(|o| o.stats.strict_refused += 1);
            let mut body = error_body(config.flavor, 400, &message, None);
            if let Some(p) = body.pointer_mut("/error/param") {
                *p = json!("response_format");
            }
            return json_reply(400, body);
        }
        state.with_openai(|o| o.stats.strict += 1);
    }
    if let Some(body) = parameter_refusal(&config, &request) {
        state.with_openai(|o| o.stats.param_refused += 1);
        return json_reply(400, body);
    }
    state.with_openai(|o| {
        if o.length_bodies.contains(&request.body_hash) {
            o.stats.repeated_after_length += 1;
        }
    });
    let (prompt_tokens, output_room, truncated) = match decide_context(&config, &request) {
        Decision::ContextRefused(status, body) => {
            state.with_openai(|o| o.stats.context_refused += 1);
            return json_reply(status, body);
        }
        Decision::Answer {
            prompt_tokens,
            output_room,
            truncated,
        } => (prompt_tokens, output_room, truncated),
    };
    state.with_openai(|o| {
        let n = o.in_flight.entry(request.content_hash).or_insert(0);
        if *n > 0 {
            o.stats.resent_while_in_flight += 1;
        }
        *n += 1;
    });
    // The work runs on its own task: a client that gives up does not stop it.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let worker_state = state.clone();
    let slots = state.openai_slots();
    let seed = state.config().seed;
    let created = state.clock_now().as_second();
    let flavor = config.flavor;
    tokio::spawn(async move {
        let permit = slots.acquire_owned().await;
        worker_state.with_openai(|o| {
            o.busy += 1;
            o.stats.max_busy = o.stats.max_busy.max(o.busy);
        });
        if config.answer_ms > 0 {
            tokio::time::sleep(Duration::from_millis(config.answer_ms)).await;
        }
        let (text, finish, completion_tokens) = answer_text(seed, &config, &request, output_room);
        worker_state.with_openai(|o| {
            o.busy -= 1;
            if let Some(n) = o.in_flight.get_mut(&request.content_hash) {
                *n -= 1;
                if *n == 0 {
                    o.in_flight.remove(&request.content_hash);
                }
            }
            o.stats.answered += 1;
            if truncated {
                o.stats.truncated_silently += 1;
            }
            if finish == "length" {
                o.stats.length += 1;
                o.length_bodies.insert(request.body_hash);
            } else if !o.answered.insert(request.content_hash) {
                o.stats.duplicates += 1;
            }
        });
        drop(permit);
        let body = json!({
            "id": format!("chatcmpl-{:016x}", request.body_hash),
            "object": "chat.completion",
            "created": created,
            "model": request.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        });
        let _ = tx.send(body);
    });
    let mut waiting = Waiting {
        state: state.clone(),
        done: false,
    };
    match rx.await {
        Ok(body) => {
            waiting.done = true;
            Json(body).into_response()
        }
        Err(_) => {
            waiting.done = true;
            json_reply(500, error_body(flavor, 500, "the worker stopped", None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(prompt_tokens: u64, max_tokens: Option<u64>) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            prompt_tokens,
            max_tokens,
            schema: None,
            strict: false,
            sent_max_tokens: max_tokens.is_some(),
            temperature: None,
            seeded: false,
            content_hash: 1,
            body_hash: 2,
        }
    }

    #[test]
    fn reasoning_models_refuse_max_tokens_then_temperature_with_openais_bodies() {
        let mut r = request(10, Some(100));
        r.model = "gpt-5-mini".into();
        r.temperature = Some(0.2);
        let openai = OpenAiSimConfig::default();
        let body = parameter_refusal(&openai, &r).unwrap();
        assert_eq!(body["error"]["code"], "unsupported_parameter");
        assert_eq!(body["error"]["param"], "max_tokens");
        r.sent_max_tokens = false;
        let body = parameter_refusal(&openai, &r).unwrap();
        assert_eq!(body["error"]["code"], "unsupported_value");
        assert_eq!(
            body["error"]["message"],
            "Unsupported value: 'temperature' does not support 0.2 with this model. Only the \
             default (1) value is supported."
        );
        r.temperature = Some(1.0);
        assert_eq!(parameter_refusal(&openai, &r), None);
        let mut old = request(10, Some(100));
        old.model = "gpt-4o-mini".into();
        old.temperature = Some(0.2);
        assert_eq!(parameter_refusal(&openai, &old), None);
        assert!(is_reasoning_model(&openai, "o3-mini") && is_reasoning_model(&openai, "openai/o1"));
        assert!(!is_reasoning_model(&openai, "olmo") && !is_reasoning_model(&openai, "gpt-4.1"));
    }

    #[test]
    fn strict_schemas_that_do_not_qualify_are_named_as_openai_does() {
        let good = json!({"type": "object", "properties": {"a": {"type": ["string", "null"], "pattern": "x"}},
            "required": ["a"], "additionalProperties": false});
        assert_eq!(strict_schema_problem(&good), None);
        let mut ordering = good.clone();
        ordering["propertyOrdering"] = json!(["a"]);
        assert_eq!(
            strict_schema_problem(&ordering).unwrap(),
            "Invalid schema for response_format 'result': In context=(), 'propertyOrdering' is not permitted."
        );
        let mut optional = good.clone();
        optional["properties"]["b"] = json!({"type": "object", "properties": {}, "additionalProperties": false, "required": []});
        assert!(strict_schema_problem(&optional)
            .unwrap()
            .ends_with("an array including every key in properties. Missing 'b'."));
        let mut open = good.clone();
        open["properties"]["a"] =
            json!({"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]});
        assert_eq!(
            strict_schema_problem(&open).unwrap(),
            "Invalid schema for response_format 'result': In context=('properties', 'a'), 'additionalProperties' is required to be supplied and to be false."
        );
        assert!(strict_schema_problem(&json!({"type": "array"}))
            .unwrap()
            .contains("got 'type: \"array\"'"));
    }

    fn config(flavor: Flavor, context_tokens: u64) -> OpenAiSimConfig {
        OpenAiSimConfig {
            flavor,
            context_tokens,
            ..OpenAiSimConfig::default()
        }
    }

    #[test]
    fn each_flavor_decides_the_context_as_its_server_does() {
        let answer = |p, room, truncated| Decision::Answer {
            prompt_tokens: p,
            output_room: room,
            truncated,
        };
        // (flavor, Ollama's context_error, prompt tokens, max_tokens, answer or None for a 400)
        type Case = (Flavor, bool, u64, Option<u64>, Option<Decision>);
        let cases: [Case; 10] = [
            // llama.cpp: the prompt alone must fit; the output gets what is left.
            (
                Flavor::LlamaCpp,
                false,
                1_000,
                Some(2_000),
                Some(answer(1_000, 1_048, false)),
            ),
            (Flavor::LlamaCpp, false, 2_048, None, None),
            // vLLM counts max_tokens inside the context.
            (
                Flavor::Vllm,
                false,
                1_000,
                Some(1_048),
                Some(answer(1_000, 1_048, false)),
            ),
            (Flavor::Vllm, false, 1_000, Some(1_049), None),
            (
                Flavor::Vllm,
                false,
                1_000,
                None,
                Some(answer(1_000, 1_048, false)),
            ),
            // Ollama truncates silently by default, or refuses when configured so.
            (
                Flavor::Ollama,
                false,
                5_000,
                Some(500),
                Some(answer(2_048, 500, true)),
            ),
            (Flavor::Ollama, true, 5_000, Some(500), None),
            (
                Flavor::Ollama,
                false,
                2_000,
                Some(500),
                Some(answer(2_000, 500, false)),
            ),
            (Flavor::OpenAi, false, 1_000, Some(1_049), None),
            (
                Flavor::OpenAi,
                false,
                1_000,
                Some(1_000),
                Some(answer(1_000, 1_000, false)),
            ),
        ];
        for (flavor, context_error, prompt, max, expected) in cases {
            let c = OpenAiSimConfig {
                context_error,
                ..config(flavor, 2_048)
            };
            let got = decide_context(&c, &request(prompt, max));
            match expected {
                Some(e) => assert_eq!(got, e, "{flavor:?} {prompt} {max:?}"),
                None => assert!(
                    matches!(got, Decision::ContextRefused(400, _)),
                    "{flavor:?} {prompt} {max:?}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn context_errors_carry_the_real_texts_and_numbers() {
        let text = |flavor, context_error, max| {
            let c = OpenAiSimConfig {
                context_error,
                ..config(flavor, 2_048)
            };
            match decide_context(&c, &request(3_000, max)) {
                Decision::ContextRefused(_, body) => body.to_string(),
                other => panic!("{other:?}"),
            }
        };
        let llama = text(Flavor::LlamaCpp, false, None);
        assert!(
            llama.contains("\"type\":\"exceed_context_size_error\""),
            "{llama}"
        );
        assert!(llama.contains("request (3000 tokens) exceeds the available context size (2048 tokens), try increasing it"), "{llama}");
        assert!(llama.contains("\"n_ctx\":2048") && llama.contains("\"n_prompt_tokens\":3000"));
        let vllm = text(Flavor::Vllm, false, Some(512));
        assert!(vllm.contains("This model's maximum context length is 2048 tokens. However, you requested 3512 tokens (3000 in the messages, 512 in the completion)."), "{vllm}");
        let ollama = text(Flavor::Ollama, true, None);
        assert!(
            ollama.contains("the prompt is longer than the context length"),
            "{ollama}"
        );
        let openai = text(Flavor::OpenAi, false, None);
        assert!(openai.contains("context_length_exceeded"), "{openai}");
    }

    #[test]
    fn prompt_tokens_follow_the_estimate_and_the_factor() {
        let body = json!({
            "model": "m",
            "messages": [{"role": "system", "content": "abcd"}, {"role": "user", "content": "abcde"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "result", "schema": {"type": "object"}}},
            "max_tokens": 100,
        });
        let bytes = body.to_string().into_bytes();
        let r = parse_chat(&bytes, 1.0).unwrap();
        // 1 + 2 for the messages, ceil(17 / 4) = 5 for the schema.
        assert_eq!(r.prompt_tokens, 8);
        assert_eq!(r.max_tokens, Some(100));
        assert_eq!(parse_chat(&bytes, 1.5).unwrap().prompt_tokens, 12);
        let mut other = body.clone();
        other["max_tokens"] = json!(200);
        let r2 = parse_chat(other.to_string().as_bytes(), 1.0).unwrap();
        assert_eq!(
            r2.content_hash, r.content_hash,
            "limits do not change the content"
        );
        assert_ne!(r2.body_hash, r.body_hash);
        for bad in [
            json!({"messages": [{"content": "x"}]}),
            json!({"model": "m", "messages": []}),
            json!({"model": "m", "messages": [{"content": "x"}], "max_tokens": -1}),
        ] {
            assert!(
                parse_chat(bad.to_string().as_bytes(), 1.0).is_err(),
                "{bad}"
            );
        }
        assert!(parse_chat(b"not json", 1.0).is_err());
    }

    #[test]
    fn a_rambling_answer_ends_with_length_unless_it_has_room() {
        let c = OpenAiSimConfig {
            length_chance: 1.0,
            ramble_tokens: 500,
            ..OpenAiSimConfig::default()
        };
        let r = request(10, Some(100));
        let (text, finish, tokens) = answer_text(7, &c, &r, 100);
        assert_eq!((finish, tokens), ("length", 100));
        assert!(text.chars().count() <= 400);
        let (_, finish, _) = answer_text(7, &c, &r, 500);
        assert_eq!(finish, "stop");
        let calm = OpenAiSimConfig::default();
        assert_eq!(answer_text(7, &calm, &r, 100).1, "stop");
    }

    #[test]
    fn bad_blocks_are_named() {
        let cases = [
            (
                OpenAiSimConfig {
                    models: vec![],
                    ..Default::default()
                },
                "openai.models",
            ),
            (
                OpenAiSimConfig {
                    slots: 0,
                    ..Default::default()
                },
                "openai.slots",
            ),
            (
                OpenAiSimConfig {
                    context_tokens: 1,
                    ..Default::default()
                },
                "openai.context_tokens",
            ),
            (
                OpenAiSimConfig {
                    length_chance: 2.0,
                    ..Default::default()
                },
                "openai.length_chance",
            ),
            (
                OpenAiSimConfig {
                    token_factor: 0.0,
                    ..Default::default()
                },
                "openai.token_factor",
            ),
        ];
        for (c, name) in cases {
            let err = c.validate().unwrap_err();
            assert!(err.contains(name), "{err}");
        }
        OpenAiSimConfig::default().validate().unwrap();
    }
}
