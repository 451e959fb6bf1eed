//! The OpenAI-compatible chat-completions client (OpenAI itself, a local Ollama or vLLM server,
//! Gemini's OpenAI-compatibility endpoint) and the pure functions that build its request body
//! and read its answers.
//!
//! Base URL rule: a base URL with no path gets `/v1` appended (`http://localhost:11434` means
//! `http://localhost:11434/v1`); a base URL with a path is used as given
//! (`https://api.openai.com/v1`, `https://generativelanguage.googleapis.com/v1beta/openai`).
//! Requests go to `{api base}/chat/completions` and `{api base}/models`.

use std::time::{Duration, Instant};

use fintel_time::{SharedClock, SystemClock};
use jiff::Timestamp;
use serde_json::{json, Map, Value};

use crate::gemini::{classify_rpc, f32_json, number_after, parse_rpc_status, RpcStatus};
use crate::http::{
    body_preview, build_http_client, classify_transport_error, parse_base_url, secret_header_value,
    truncate_chars, ClientBuildError, MAX_MESSAGE_CHARS,
};
use crate::models::{parse_openai_models, ServedModel};
use crate::types::{
    mask_secrets_in, ApiKey, CallError, GenerateRequest, Generation, MaxTokensField, ModelInfo,
    Provider, Role, ServerKind, ServerLimits, Thinking, TokenCount, Usage,
};

/// OpenAI's own API, for when no base URL is configured (`FINTEL_OPENAI_URL`).
pub const DEFAULT_OPENAI_URL: &str = "https://api.openai.com/v1";

/// How an [`OpenAiClient`] reaches its server.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiConfig {
    /// See the module documentation for the `/v1` rule.
    pub base_url: String,
    /// The whole call; a local model on a CPU can be slow.
    pub timeout: Duration,
    /// Connecting alone. A connect timeout proves the request was never sent.
    pub connect_timeout: Duration,
    /// Which output-limit field to send.
    pub max_tokens_field: MaxTokensField,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: DEFAULT_OPENAI_URL.to_string(),
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(20),
            max_tokens_field: MaxTokensField::default(),
        }
    }
}

/// A provider speaking the OpenAI chat-completions protocol.
#[derive(Clone)]
pub struct OpenAiClient {
    http: reqwest::Client,
    api_base: String,
    max_tokens_field: MaxTokensField,
    clock: SharedClock,
    /// The kind of server found by [`Provider::server_limits`] (which endpoints it has).
    detected: std::sync::Arc<std::sync::Mutex<Option<ServerKind>>>,
}

impl std::fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiClient")
            .field("api_base", &self.api_base)
            .field("max_tokens_field", &self.max_tokens_field)
            .finish()
    }
}

impl OpenAiClient {
    /// Builds a client reading the system clock (used only to turn an HTTP-date
    /// `retry-after` into a delay).
    pub fn new(config: OpenAiConfig) -> Result<Self, ClientBuildError> {
        let base = parse_base_url(
            &config.base_url,
            "the OpenAI-compatible base URL",
            DEFAULT_OPENAI_URL,
        )?;
        Ok(OpenAiClient {
            http: build_http_client(config.timeout, config.connect_timeout)?,
            api_base: openai_api_base(&base),
            max_tokens_field: config.max_tokens_field,
            clock: std::sync::Arc::new(SystemClock),
            detected: Default::default(),
        })
    }

    /// The same client reading `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The URL that `/chat/completions` and `/models/...` are appended to.
    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    /// The server's own root, where llama.cpp's `/props` and `/tokenize` and Ollama's
    /// `/api/show` live: the API base without its `/v1`.
    fn server_root(&self) -> &str {
        self.api_base.strip_suffix("/v1").unwrap_or(&self.api_base)
    }

    fn detected(&self) -> Option<ServerKind> {
        *self.detected.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True for the hosted APIs, which have none of the local servers' extra endpoints.
    fn is_hosted(&self) -> bool {
        reqwest::Url::parse(&self.api_base)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .is_some_and(|h| h.ends_with("openai.com") || h.ends_with("googleapis.com"))
    }

    /// The server's limits, learned from its answers (see [`Provider::server_limits`]).
    async fn learn_limits(&self, key: Option<&ApiKey>, model: &str) -> ServerLimits {
        let mut limits = ServerLimits {
            kind: ServerKind::OpenAiCompatible,
            output_in_context: true,
            ..ServerLimits::default()
        };
        let name = model.trim();
        let list = self
            .send(key, self.http.get(format!("{}/models", self.api_base)))
            .await;
        if let Ok((200, _, text)) = &list {
            if let Ok(ModelInfo {
                input_token_limit: Some(n),
                ..
            }) = parse_openai_model_list(name, text)
            {
                limits.kind = ServerKind::Vllm;
                limits.context_tokens = Some(n);
                return limits;
            }
        }
        if self.is_hosted() {
            return limits;
        }
        let root = self.server_root().to_string();
        if let Ok((200, _, text)) = self.send(key, self.http.get(format!("{root}/props"))).await {
            if let Some((n_ctx, slots)) = parse_llamacpp_props(&text) {
                limits.kind = ServerKind::LlamaCpp;
                limits.context_tokens = Some(n_ctx);
                limits.slots = slots;
                limits.has_tokenizer = true;
                return limits;
            }
        }
        let show = self
            .http
            .post(format!("{root}/api/show"))
            .json(&json!({ "model": name }));
        if let Ok((200, _, text)) = self.send(key, show).await {
            if let Some(context) = parse_ollama_show(&text) {
                limits.kind = ServerKind::Ollama;
                limits.context_tokens = Some(context);
            }
        }
        limits
    }

    async fn send(
        &self,
        key: Option<&ApiKey>,
        builder: reqwest::RequestBuilder,
    ) -> Result<(u16, Option<Duration>, String), CallError> {
        let secrets: Vec<&str> = key.map(|k| k.secret()).into_iter().collect();
        let builder = match key {
            Some(key) => builder.header(
                reqwest::header::AUTHORIZATION,
                secret_header_value(key.secret(), "Bearer ")?,
            ),
            None => builder,
        };
        let response = builder
            .send()
            .await
            .map_err(|e| classify_transport_error(&e, &secrets))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let retry_after = retry_after_from_headers(
            header("retry-after").as_deref(),
            header("retry-after-ms").as_deref(),
            self.clock.now(),
        );
        let body = response
            .text()
            .await
            .map_err(|e| classify_transport_error(&e, &secrets))?;
        Ok((status, retry_after, body))
    }
}

#[async_trait::async_trait]
impl Provider for OpenAiClient {
    fn name(&self) -> &str {
        "openai-compatible"
    }

    async fn generate(
        &self,
        key: Option<&ApiKey>,
        request: &GenerateRequest,
    ) -> Result<Generation, CallError> {
        openai_model_name(&request.model)?;
        let body = openai_chat_body(request, self.max_tokens_field);
        let url = format!("{}/chat/completions", self.api_base);
        let started = Instant::now();
        let (status, retry_after, text) = self.send(key, self.http.post(url).json(&body)).await?;
        let latency = started.elapsed();
        let secrets: Vec<&str> = key.map(|k| k.secret()).into_iter().collect();
        interpret_openai_chat(status, &text, retry_after, &secrets).map(|mut generation| {
            generation.latency = latency;
            if schema_allows_strict(&request.response_schema) {
                generation.text = strip_added_nulls(&request.response_schema, &generation.text);
            }
            generation
        })
    }

    /// `GET {api base}/models` and a look for the model in the list. The list is served by
    /// OpenAI, vLLM (which has no per-model route), Ollama and Gemini's compatibility endpoint;
    /// it spends no tokens and checks the key. Token limits are filled only where the server
    /// says them (vLLM's `max_model_len`).
    async fn check_model(&self, key: Option<&ApiKey>, model: &str) -> Result<ModelInfo, CallError> {
        let name = openai_model_name(model)?;
        let url = format!("{}/models", self.api_base);
        let (status, retry_after, text) = self.send(key, self.http.get(url)).await?;
        let secrets: Vec<&str> = key.map(|k| k.secret()).into_iter().collect();
        if !(200..300).contains(&status) {
            return Err(classify_openai(status, &text, retry_after, &secrets));
        }
        parse_openai_model_list(name, &text).map_err(|e| e.masked(&secrets))
    }

    /// `GET {api base}/models`: one page on every server fintel knows.
    async fn list_models(&self, key: Option<&ApiKey>) -> Result<Vec<ServedModel>, CallError> {
        let url = format!("{}/models", self.api_base);
        let (status, retry_after, text) = self.send(key, self.http.get(url)).await?;
        let secrets: Vec<&str> = key.map(|k| k.secret()).into_iter().collect();
        if !(200..300).contains(&status) {
            return Err(classify_openai(status, &text, retry_after, &secrets));
        }
        parse_openai_models(&text).map_err(|e| e.masked(&secrets))
    }

    /// The protocol has no tokenizer endpoint; llama.cpp's `POST /tokenize` counts the
    /// request's texts once [`Provider::server_limits`] found a llama.cpp server.
    async fn count_tokens(
        &self,
        key: Option<&ApiKey>,
        request: &GenerateRequest,
    ) -> Result<Option<TokenCount>, CallError> {
        if self.detected() != Some(ServerKind::LlamaCpp) {
            return Ok(None);
        }
        let mut content = request.system_instruction.clone().unwrap_or_default();
        for turn in &request.turns {
            content.push('\n');
            content.push_str(&turn.text);
        }
        let url = format!("{}/tokenize", self.server_root());
        let body = json!({ "content": content, "add_special": true });
        let (status, _, text) = self.send(key, self.http.post(url).json(&body)).await?;
        if status != 200 {
            return Ok(None);
        }
        Ok(parse_llamacpp_tokenize(&text).map(|total_tokens| TokenCount { total_tokens }))
    }

    /// vLLM's `max_model_len` from the model list; else, on a server that is not a hosted
    /// API, llama.cpp's `GET /props`, then Ollama's `POST /api/show`. Failures only mean the
    /// server says nothing.
    async fn server_limits(&self, key: Option<&ApiKey>, model: &str) -> ServerLimits {
        let limits = self.learn_limits(key, model).await;
        *self.detected.lock().unwrap_or_else(|p| p.into_inner()) = Some(limits.kind);
        limits
    }
}

/// `n_ctx` (the context of one slot) and `total_slots` from llama.cpp's `GET /props`.
pub fn parse_llamacpp_props(body: &str) -> Option<(u64, Option<u32>)> {
    let value: Value = serde_json::from_str(body).ok()?;
    let n_ctx = value
        .pointer("/default_generation_settings/n_ctx")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)?;
    let slots = value
        .get("total_slots")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0);
    Some((n_ctx, slots))
}

/// The number of tokens in llama.cpp's `POST /tokenize` answer (`{"tokens": [...]}`).
pub fn parse_llamacpp_tokenize(body: &str) -> Option<u64> {
    let value: Value = serde_json::from_str(body).ok()?;
    value
        .get("tokens")
        .and_then(Value::as_array)
        .map(|t| t.len() as u64)
}

/// The context of Ollama's `POST /api/show`: `num_ctx` where the model's parameters set it
/// (what the server runs it with), else `model_info["<architecture>.context_length"]` (what the
/// model was trained for; the server may run it with less, see the truncation check).
pub fn parse_ollama_show(body: &str) -> Option<u64> {
    let value: Value = serde_json::from_str(body).ok()?;
    let num_ctx = value
        .get("parameters")
        .and_then(Value::as_str)
        .and_then(|p| {
            p.lines().find_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some("num_ctx"))
                    .then(|| words.next()?.parse::<u64>().ok())
                    .flatten()
            })
        });
    let info = value.get("model_info").and_then(Value::as_object)?;
    let arch = info.get("general.architecture").and_then(Value::as_str);
    let trained = arch
        .and_then(|a| info.get(&format!("{a}.context_length")))
        .or_else(|| {
            info.iter()
                .find(|(k, _)| k.ends_with(".context_length"))
                .map(|(_, v)| v)
        })
        .and_then(Value::as_u64);
    num_ctx.or(trained).filter(|n| *n > 0)
}

/// Appends `/v1` to a base URL that has no path (see the module documentation).
fn openai_api_base(base: &str) -> String {
    match reqwest::Url::parse(base) {
        Ok(url) if url.path().trim_matches('/').is_empty() => {
            format!("{}/v1", base.trim_end_matches('/'))
        }
        _ => base.trim_end_matches('/').to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Request body
// ---------------------------------------------------------------------------------------------

/// The JSON body of `POST /chat/completions`.
///
/// `response_format` is `json_schema` named `result` with the wire schema of
/// [`openai_wire_schema`]: closed for strict mode and sent with `strict: true` when it
/// qualifies, else the schema without Gemini's `propertyOrdering` and `strict: false`.
/// `Thinking::Level` is sent as `reasoning_effort`; `Thinking::Budget` has no equivalent in
/// this protocol and is not sent. The output limit goes in the request's field, else in
/// `max_tokens_field`.
pub fn openai_chat_body(request: &GenerateRequest, max_tokens_field: MaxTokensField) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = &request.system_instruction {
        messages.push(json!({ "role": "system", "content": system }));
    }
    for turn in &request.turns {
        let role = match turn.role {
            Role::User => "user",
            Role::Model => "assistant",
        };
        messages.push(json!({ "role": role, "content": turn.text }));
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model.trim()));
    body.insert("messages".into(), Value::Array(messages));
    let wire = openai_wire_schema(&request.response_schema);
    body.insert(
        "response_format".into(),
        json!({
            "type": "json_schema",
            "json_schema": {
                "name": "result",
                "schema": wire.schema,
                "strict": wire.strict,
            }
        }),
    );
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), f32_json(t));
    }
    if let Some(max) = request.max_output_tokens {
        let field = request.output_field.unwrap_or(max_tokens_field);
        body.insert(field.wire_name().into(), json!(max));
    }
    if let Some(seed) = request.seed {
        body.insert("seed".into(), json!(seed));
    }
    if let Thinking::Level(level) = &request.thinking {
        body.insert("reasoning_effort".into(), json!(level));
    }
    Value::Object(body)
}

/// Keywords OpenAI's strict structured outputs accept ("Supported schemas": the structure
/// keywords, `pattern` and `format` for strings, `multipleOf`, `maximum`,
/// `exclusiveMaximum`, `minimum`, `exclusiveMinimum` for numbers, `minItems` and `maxItems`
/// for arrays). Anything else is left out of the wire schema where leaving it out only
/// loosens the schema (the answer is still checked against the full schema), and disqualifies
/// strict mode where it would change the schema's structure ([`STRICT_DISQUALIFYING`]).
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

/// String formats strict mode accepts; another `format` is left out.
const STRICT_FORMATS: &[&str] = &[
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
];

/// Keywords strict mode refuses whose removal would change which answers the schema
/// describes in structure (composition, tuples, open maps): such a schema goes non-strict.
const STRICT_DISQUALIFYING: &[&str] = &[
    "allOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
    "patternProperties",
    "prefixItems",
    "unevaluatedProperties",
    "unevaluatedItems",
    "propertyNames",
    "contains",
];

/// Object nesting strict mode allows (OpenAI: "up to 5 levels of nesting"; newer pages say
/// 10, the lower figure is kept so no schema is refused).
const STRICT_MAX_DEPTH: usize = 5;
/// Object properties in a whole strict schema.
const STRICT_MAX_PROPERTIES: usize = 5_000;
/// Enum values in a whole strict schema.
const STRICT_MAX_ENUM_VALUES: usize = 1_000;

/// The schema sent on the OpenAI protocol and whether it goes with `strict: true`.
#[derive(Debug, Clone, PartialEq)]
pub struct WireSchema {
    pub schema: Value,
    pub strict: bool,
}

/// The response schema as OpenAI-compatible servers get it: for strict mode, every object
/// closed (`additionalProperties: false`) with all its properties required and the optional
/// ones made nullable, and only [`STRICT_KEYWORDS`]; when that cannot describe the schema (a
/// non-object root, composition, an open map, limits exceeded) the schema as it is, without
/// `propertyOrdering`, and `strict: false`. Answers are validated against the full schema,
/// after [`strip_added_nulls`].
pub fn openai_wire_schema(schema: &Value) -> WireSchema {
    let root_object = schema.get("type").and_then(Value::as_str) == Some("object");
    let mut tally = Tally::default();
    match (root_object, strict_node(schema, 0, &mut tally)) {
        (true, Some(strict))
            if tally.properties <= STRICT_MAX_PROPERTIES
                && tally.enum_values <= STRICT_MAX_ENUM_VALUES =>
        {
            WireSchema {
                schema: strict,
                strict: true,
            }
        }
        _ => WireSchema {
            schema: without_property_ordering(schema),
            strict: false,
        },
    }
}

/// True when [`openai_wire_schema`] sends the schema with `strict: true`.
pub fn schema_allows_strict(schema: &Value) -> bool {
    openai_wire_schema(schema).strict
}

#[derive(Default)]
struct Tally {
    properties: usize,
    enum_values: usize,
}

/// The strict form of one schema node at object depth `depth`, or `None` when it has none.
fn strict_node(node: &Value, depth: usize, tally: &mut Tally) -> Option<Value> {
    let map = match node {
        Value::Object(map) => map,
        Value::Bool(true) => return None,
        other => return Some(other.clone()),
    };
    if map
        .keys()
        .any(|k| STRICT_DISQUALIFYING.contains(&k.as_str()))
    {
        return None;
    }
    let types: Vec<&str> = match map.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let is_object = types.contains(&"object") || map.contains_key("properties");
    let mut out = Map::new();
    for (key, value) in map {
        if !STRICT_KEYWORDS.contains(&key.as_str()) {
            continue;
        }
        let kept = match key.as_str() {
            "format" if !value.as_str().is_some_and(|f| STRICT_FORMATS.contains(&f)) => continue,
            "properties" | "additionalProperties" | "required" => continue,
            "items" => match value {
                Value::Object(_) => strict_node(value, depth, tally)?,
                // Tuples (`items` as an array) have no strict form.
                _ => return None,
            },
            "anyOf" => Value::Array(
                value
                    .as_array()?
                    .iter()
                    .map(|v| strict_node(v, depth, tally))
                    .collect::<Option<Vec<_>>>()?,
            ),
            "$defs" | "definitions" => Value::Object(
                value
                    .as_object()?
                    .iter()
                    .map(|(k, v)| Some((k.clone(), strict_node(v, depth, tally)?)))
                    .collect::<Option<Map<_, _>>>()?,
            ),
            "enum" => {
                tally.enum_values += value.as_array().map_or(0, Vec::len);
                value.clone()
            }
            _ => value.clone(),
        };
        out.insert(key.clone(), kept);
    }
    if is_object {
        if depth >= STRICT_MAX_DEPTH {
            return None;
        }
        // An open map (`additionalProperties` a schema) cannot be closed.
        if map
            .get("additionalProperties")
            .is_some_and(|a| a.is_object())
        {
            return None;
        }
        let required: Vec<&str> = map
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut properties = Map::new();
        let empty = Map::new();
        let declared = map
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        for (name, property) in declared {
            tally.properties += 1;
            let strict = strict_node(property, depth + 1, tally)?;
            let strict = if required.contains(&name.as_str()) {
                strict
            } else {
                nullable(strict)?
            };
            properties.insert(name.clone(), strict);
        }
        let names: Vec<Value> = declared.keys().map(|k| json!(k)).collect();
        out.insert("properties".into(), Value::Object(properties));
        out.insert("required".into(), Value::Array(names));
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Some(Value::Object(out))
}

/// A schema node that also accepts `null` (how strict mode says "optional").
fn nullable(node: Value) -> Option<Value> {
    let Value::Object(mut map) = node else {
        return None;
    };
    if let Some(Value::Array(values)) = map.get_mut("enum") {
        if !values.contains(&Value::Null) {
            values.push(Value::Null);
        }
    }
    match map.get_mut("type") {
        Some(Value::String(t)) if t == "null" => {}
        Some(Value::String(t)) => {
            let t = t.clone();
            map.insert("type".into(), json!([t, "null"]));
        }
        Some(Value::Array(ts)) => {
            if !ts.iter().any(|t| t == "null") {
                ts.push(json!("null"));
            }
        }
        _ => {
            if let Some(Value::Array(options)) = map.get_mut("anyOf") {
                if !options
                    .iter()
                    .any(|o| o.get("type") == Some(&json!("null")))
                {
                    options.push(json!({"type": "null"}));
                }
            } else if map.contains_key("$ref") {
                return Some(json!({"anyOf": [Value::Object(map), {"type": "null"}]}));
            } else if !map.contains_key("enum") && !map.contains_key("const") {
                return None;
            }
        }
    }
    Some(Value::Object(map))
}

/// `schema` without Gemini's `propertyOrdering` (which OpenAI-compatible servers do not
/// know) in any schema node; a property named `propertyOrdering` is kept.
fn without_property_ordering(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "propertyOrdering")
                .map(|(k, v)| {
                    let v = match k.as_str() {
                        "properties" | "$defs" | "definitions" => match v {
                            Value::Object(props) => Value::Object(
                                props
                                    .iter()
                                    .map(|(name, p)| (name.clone(), without_property_ordering(p)))
                                    .collect(),
                            ),
                            other => other.clone(),
                        },
                        "items" | "additionalProperties" | "not" | "if" | "then" | "else" => {
                            without_property_ordering(v)
                        }
                        "anyOf" | "oneOf" | "allOf" | "prefixItems" => match v {
                            Value::Array(items) => {
                                Value::Array(items.iter().map(without_property_ordering).collect())
                            }
                            other => other.clone(),
                        },
                        _ => v.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// An answer to a strict wire schema, made an answer to the full schema again: a `null` the
/// wire schema allowed only because it made an optional property nullable is left out, as the
/// full schema expects. Text that is not JSON is returned as it is (validation says why).
pub fn strip_added_nulls(schema: &Value, text: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(text) else {
        return text.to_string();
    };
    if strip_nulls(schema, &mut value) {
        value.to_string()
    } else {
        text.to_string()
    }
}

fn allows_null(schema: &Value) -> bool {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values.contains(&Value::Null);
    }
    match schema.get("type") {
        Some(Value::String(t)) => t == "null",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "null"),
        _ => true,
    }
}

fn strip_nulls(schema: &Value, value: &mut Value) -> bool {
    let mut changed = false;
    match value {
        Value::Object(fields) => {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                return false;
            };
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            fields.retain(|name, v| {
                let added = v.is_null()
                    && !required.contains(&name.as_str())
                    && properties.get(name).is_some_and(|p| !allows_null(p));
                changed |= added;
                !added
            });
            for (name, v) in fields.iter_mut() {
                if let Some(p) = properties.get(name) {
                    changed |= strip_nulls(p, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|i| i.is_object()) {
                for item in items {
                    changed |= strip_nulls(item_schema, item);
                }
            }
        }
        _ => {}
    }
    changed
}

// ---------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------

/// Reads a chat-completions answer of any status: 2xx goes to [`parse_openai_success`],
/// anything else to [`classify_openai`]. Messages have `secrets` masked.
pub fn interpret_openai_chat(
    status: u16,
    body: &str,
    retry_after: Option<Duration>,
    secrets: &[&str],
) -> Result<Generation, CallError> {
    if (200..300).contains(&status) {
        parse_openai_success(body).map_err(|e| e.masked(secrets))
    } else {
        Err(classify_openai(status, body, retry_after, secrets))
    }
}

/// Reads an HTTP 200 chat-completions body.
///
/// `finish_reason` `length` is `Truncated` (with usage); `content_filter` or a `refusal` in
/// the message is `Refused`. `Usage::output_tokens` excludes reasoning tokens (which OpenAI
/// counts inside `completion_tokens`), to match Gemini's accounting. `latency` is zero: the
/// client fills it in.
pub fn parse_openai_success(body: &str) -> Result<Generation, CallError> {
    let value: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) => {
            return Err(CallError::BadOutput {
                reason: format!(
                    "the server answered HTTP 200 with a body that is not JSON: {}",
                    body_preview(body)
                ),
                raw_text: None,
                usage: Usage::default(),
            })
        }
    };
    if value.get("error").is_some_and(|e| !e.is_null()) {
        // Some gateways put an error in a 200 body.
        let code = value
            .pointer("/error/code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| *c >= 400)
            .unwrap_or(500);
        return Err(classify_openai(code, body, None, &[]));
    }
    let usage_value = value.get("usage").cloned().unwrap_or(Value::Null);
    let field = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let reasoning = field(&usage_value, "/completion_tokens_details/reasoning_tokens");
    let usage = Usage {
        prompt_tokens: field(&usage_value, "/prompt_tokens"),
        output_tokens: field(&usage_value, "/completion_tokens").saturating_sub(reasoning),
        thinking_tokens: reasoning,
    };
    let Some(choice) = value
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
    else {
        return Err(CallError::BadOutput {
            reason: format!("the answer has no choices: {}", body_preview(body)),
            raw_text: None,
            usage,
        });
    };
    let message = choice.get("message").cloned().unwrap_or(Value::Null);
    let text = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    };
    if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
        if !refusal.trim().is_empty() {
            return Err(CallError::Refused {
                reason: format!(
                    "the model refused: {}",
                    truncate_chars(refusal, MAX_MESSAGE_CHARS)
                ),
            });
        }
    }
    let finish = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("stop")
        .to_string();
    match finish.as_str() {
        "stop" | "" => {}
        "length" => {
            return Err(CallError::Truncated {
                message: format!(
                    "the answer was cut off at the output token limit (finish_reason length after \
                     {} output and {} reasoning tokens)",
                    usage.output_tokens, usage.thinking_tokens
                ),
                usage,
            })
        }
        "content_filter" => {
            return Err(CallError::Refused {
                reason: "the answer was stopped by the provider's content filter (finish_reason \
                         content_filter)"
                    .to_string(),
            })
        }
        other => {
            return Err(CallError::BadOutput {
                reason: format!("the model stopped abnormally (finish_reason {other})"),
                raw_text: Some(text),
                usage,
            })
        }
    }
    let model_version = value
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_string);
    Generation::finished_normally(text, usage, finish, model_version)
}

/// Checks a model name for the OpenAI protocol, where it travels in the JSON body and may
/// contain `/` and `:` (`meta-llama/Llama-3.1-8B-Instruct`, `llama3.1:8b`, `ft:gpt-4o:org:x`).
fn openai_model_name(model: &str) -> Result<&str, CallError> {
    let name = model.trim();
    if name.is_empty() {
        return Err(CallError::Configuration {
            message: "no model name given: set the model (e.g. FINTEL_MODEL=gpt-4o-mini)"
                .to_string(),
        });
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CallError::Configuration {
            message: format!("model name {name:?} contains spaces or control characters"),
        });
    }
    Ok(name)
}

/// Finds `requested` in a `GET /models` answer (`{"data": [{"id": ...}, ...]}`). Ids are
/// compared with and without a `models/` prefix, which Gemini's compatibility endpoint adds.
/// A model that is not listed is a configuration problem naming some of those that are.
pub fn parse_openai_model_list(requested: &str, body: &str) -> Result<ModelInfo, CallError> {
    let not_api = || CallError::Configuration {
        message: format!(
            "the server did not answer like an OpenAI-compatible API (is the base URL right?): {}",
            body_preview(body)
        ),
    };
    let value: Value = serde_json::from_str(body).map_err(|_| not_api())?;
    let models = value
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(not_api)?;
    let bare = |id: &str| id.strip_prefix("models/").unwrap_or(id).to_string();
    let wanted = bare(requested);
    let found = models.iter().find(|m| {
        m.get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| bare(id) == wanted)
    });
    match found {
        Some(model) => Ok(ModelInfo {
            name: wanted,
            input_token_limit: model.get("max_model_len").and_then(Value::as_u64),
            output_token_limit: None,
        }),
        None => {
            let ids: Vec<String> = models
                .iter()
                .filter_map(|m| m.get("id").and_then(Value::as_str))
                .map(bare)
                .collect();
            let shown = ids.iter().take(20).cloned().collect::<Vec<_>>().join(", ");
            let more = ids.len().saturating_sub(20);
            // Not listed is not served: the same row as a 404 for the model.
            Err(CallError::ModelUnavailable {
                message: if ids.is_empty() {
                    format!("model {wanted:?} is not offered: the server lists no models")
                } else if more > 0 {
                    format!(
                        "model {wanted:?} is not offered; the server lists {shown} and {more} more"
                    )
                } else {
                    format!("model {wanted:?} is not offered; the server lists {shown}")
                },
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// An error body in any of the shapes OpenAI-compatible servers use.
enum ErrorBody {
    /// `{"error": {"message", "type", "code"}}` (OpenAI, Ollama's /v1), the array form, or
    /// vLLM's top-level `{"object": "error", "message", "type", "code"}`.
    OpenAi {
        message: String,
        kind: String,
        code: String,
        /// The request parameter the error is about (`param`), when it names one.
        param: String,
    },
    /// A `google.rpc.Status` (Gemini's compatibility endpoint, which answers with
    /// `[{"error": {"code", "message", "status", "details"}}]`).
    Google(RpcStatus),
}

fn parse_error_body(body: &str) -> Option<ErrorBody> {
    let value: Value = serde_json::from_str(body).ok()?;
    let value = match value {
        Value::Array(items) => items.into_iter().next()?,
        other => other,
    };
    let error = match value.get("error") {
        Some(Value::String(message)) => {
            return Some(ErrorBody::OpenAi {
                message: message.clone(),
                kind: String::new(),
                code: String::new(),
                param: String::new(),
            })
        }
        Some(error @ Value::Object(_)) => error,
        _ if value.get("message").is_some() => &value,
        _ => return None,
    };
    if error.get("status").is_some_and(Value::is_string)
        || error.get("details").is_some_and(Value::is_array)
    {
        return parse_rpc_status(&json!({ "error": error }).to_string()).map(ErrorBody::Google);
    }
    let text = |name: &str| match error.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    Some(ErrorBody::OpenAi {
        message: text("message"),
        kind: text("type"),
        code: text("code"),
        param: text("param"),
    })
}

/// Classifies a non-2xx answer from an OpenAI-compatible server.
///
/// `retry_after` is the delay from the `retry-after` / `retry-after-ms` headers (see
/// [`retry_after_from_headers`]). Google-shaped bodies from Gemini's compatibility endpoint are
/// classified exactly like the native API's. Every message has `secrets` masked.
pub fn classify_openai(
    status: u16,
    body: &str,
    retry_after: Option<Duration>,
    secrets: &[&str],
) -> CallError {
    let body = mask_secrets_in(body, secrets);
    let error = match parse_error_body(&body) {
        Some(ErrorBody::Google(rpc)) => match classify_rpc(status, &rpc) {
            CallError::RateLimited {
                retry_after: None,
                message,
                project,
            } => CallError::RateLimited {
                retry_after,
                message,
                project,
            },
            other => other,
        },
        Some(ErrorBody::OpenAi {
            message,
            kind,
            code,
            param,
        }) => match refused_param(status, &message, &code, &param) {
            Some(param) => CallError::ParameterRefused {
                param,
                message: format!(
                    "HTTP {status} {code}, {}",
                    truncate_chars(message.trim(), MAX_MESSAGE_CHARS)
                ),
            },
            None => classify_openai_fields(status, &message, &kind, &code, retry_after),
        },
        None => classify_openai_fields(
            status,
            &format!("a body that is not a JSON error: {}", body_preview(&body)),
            "",
            "",
            retry_after,
        ),
    };
    error.masked(secrets)
}

/// The parameter a 400 `unsupported_parameter` / `unsupported_value` refuses: its `param`,
/// else the first quoted name of its message ("Unsupported parameter: 'max_tokens' is not
/// supported with this model.").
fn refused_param(status: u16, message: &str, code: &str, param: &str) -> Option<String> {
    if status != 400 || !matches!(code, "unsupported_parameter" | "unsupported_value") {
        return None;
    }
    if !param.is_empty() {
        return Some(param.to_string());
    }
    let start = message.find('\'')? + 1;
    let len = message[start..].find('\'')?;
    let name = &message[start..start + len];
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| name.to_string())
}

fn classify_openai_fields(
    status: u16,
    message: &str,
    kind: &str,
    code: &str,
    retry_after: Option<Duration>,
) -> CallError {
    let lower = message.to_ascii_lowercase();
    let is = |name: &str| code == name || kind == name;
    let shown = {
        let text = truncate_chars(message.trim(), MAX_MESSAGE_CHARS);
        // llama.cpp and vLLM put the status itself in `code`: showing it would read
        // "HTTP 400 400".
        let numeric = !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit());
        let label = if !code.is_empty() && !numeric {
            code
        } else {
            kind
        };
        if label.is_empty() {
            format!("HTTP {status}, {text}")
        } else {
            format!("HTTP {status} {label}, {text}")
        }
    };
    // OpenAI and vLLM say "maximum context length"; llama.cpp answers
    // `exceed_context_size_error` ("... exceeds the available context size (N tokens)");
    // Ollama "the prompt is longer than the context length ...".
    let context_too_long = is("context_length_exceeded")
        || is("exceed_context_size_error")
        || lower.contains("maximum context length")
        || lower.contains("available context size")
        || lower.contains("longer than the context length")
        || (lower.contains("context length") && lower.contains("exceed"));
    // OpenAI `model_not_found` ("The model `x` does not exist or you do not have access to
    // it", "... has been deprecated"), vLLM "The model `x` does not exist.", Ollama
    // "model \"x\" not found, try pulling it first".
    let model_gone = is("model_not_found")
        || crate::gemini::is_model_gone(message)
        || (lower.contains("model")
            && (lower.contains("does not exist") || lower.contains("not found")));
    // A prompt refused for its content refuses this request only: OpenAI `invalid_prompt`
    // ("Invalid prompt: your prompt was flagged as potentially violating our usage policy"),
    // Azure OpenAI `content_filter` ("The response was filtered due to the prompt triggering
    // Azure OpenAI's content management policy").
    let content_refused = is("content_filter") || is("invalid_prompt");
    match status {
        400 if content_refused => CallError::Refused { reason: shown },
        429 | 402 if is("insufficient_quota") || status == 402 => {
            CallError::KeyExhausted { message: shown }
        }
        429 if kind == "tokens" || lower.contains("tokens per min") => {
            CallError::InputTokensPerMinute {
                limit_tokens: number_directly_after(message, "limit"),
                retry_after,
                message: shown,
                project: None,
            }
        }
        429 => CallError::RateLimited {
            retry_after,
            message: shown,
            project: None,
        },
        400 | 413 | 422 if context_too_long => CallError::ContextTooLong {
            max_tokens: number_after(message, "maximum context length is")
                .or_else(|| number_after(message, "available context size"))
                .or_else(|| number_after(message, "context length is")),
            message: shown,
        },
        413 => CallError::ContextTooLong {
            max_tokens: None,
            message: shown,
        },
        401 => CallError::KeyUnusable {
            reason: format!("key not accepted: {shown}"),
            project: None,
        },
        403 if is("unsupported_country_region_territory") => {
            CallError::Configuration { message: shown }
        }
        403 => CallError::KeyUnusable {
            reason: format!("key not permitted: {shown}"),
            project: None,
        },
        400 | 404 if model_gone => CallError::ModelUnavailable { message: shown },
        404 => CallError::Configuration {
            message: format!(
                "{shown} (unknown model, or a base URL that does not point at the API)"
            ),
        },
        408 | 409 | 500..=599 => CallError::Transient {
            message: shown,
            reached_server: true,
        },
        300..=399 => CallError::Configuration {
            message: format!("{shown} (a redirect: check the base URL)"),
        },
        _ => CallError::Configuration { message: shown },
    }
}

/// The number that directly follows some occurrence of `marker` (case-insensitive), past
/// spaces and colons: `"Limit 10000"` gives 10000 where `"Rate limit reached for gpt-4"` gives
/// nothing.
fn number_directly_after(text: &str, marker: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let marker = marker.to_ascii_lowercase();
    lower.match_indices(&marker).find_map(|(at, _)| {
        let rest = text[at + marker.len()..].trim_start_matches([' ', ':']);
        let digits: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .filter(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}

/// The delay a server asks for: `retry-after-ms` (milliseconds, OpenAI) wins over
/// `retry-after` (delta-seconds or an HTTP date, RFC 9110). A date in the past means now.
pub fn retry_after_from_headers(
    retry_after: Option<&str>,
    retry_after_ms: Option<&str>,
    now: Timestamp,
) -> Option<Duration> {
    if let Some(ms) = retry_after_ms.and_then(|v| v.trim().parse::<f64>().ok()) {
        if ms.is_finite() && (0.0..1e12).contains(&ms) {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    parse_retry_after(retry_after?, now)
}

/// Parses one `retry-after` value: delta-seconds (`"20"`, also `"1.5"` as some servers send)
/// or an HTTP date (`"Wed, 21 Oct 2015 07:28:00 GMT"`), relative to `now`.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && (0.0..1e9).contains(&seconds))
            .then(|| Duration::from_secs_f64(seconds));
    }
    let when = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let delta = when.duration_since(now);
    Some(Duration::try_from(delta).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_servers_limits_are_read_from_their_own_shapes() {
        let props = r#"{"default_generation_settings":{"n_ctx":2048,"params":{}},"total_slots":4}"#;
        assert_eq!(parse_llamacpp_props(props), Some((2048, Some(4))));
        assert_eq!(parse_llamacpp_props(r#"{"total_slots":4}"#), None);
        assert_eq!(parse_llamacpp_tokenize(r#"{"tokens":[1,2,3]}"#), Some(3));
        let show = |parameters: &str| {
            json!({"parameters": parameters, "model_info": {"general.architecture": "qwen2", "qwen2.context_length": 32768}})
                .to_string()
        };
        assert_eq!(parse_ollama_show(&show("stop \"<|im_end|>\"")), Some(32768));
        // num_ctx set in the Modelfile is what the server runs the model with.
        assert_eq!(
            parse_ollama_show(&show("num_ctx                        8192\nstop x")),
            Some(8192)
        );
        assert_eq!(
            parse_ollama_show(r#"{"error":"model 'x' not found"}"#),
            None
        );
    }

    #[test]
    fn api_base_gets_v1_only_when_it_has_no_path() {
        assert_eq!(
            openai_api_base("http://localhost:11434"),
            "http://localhost:11434/v1"
        );
        assert_eq!(
            openai_api_base("https://api.openai.com/v1"),
            "https://api.openai.com/v1"
        );
        assert_eq!(
            openai_api_base("https://generativelanguage.googleapis.com/v1beta/openai"),
            "https://generativelanguage.googleapis.com/v1beta/openai"
        );
    }

    #[test]
    fn retry_after_in_seconds_dates_and_milliseconds() {
        let now: Timestamp = "2015-10-21T07:27:30Z".parse().unwrap();
        assert_eq!(parse_retry_after("20", now), Some(Duration::from_secs(20)));
        assert_eq!(
            parse_retry_after(" 1.5 ", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(
            retry_after_from_headers(Some("20"), Some("350"), now),
            Some(Duration::from_millis(350))
        );
        assert_eq!(
            retry_after_from_headers(Some("20"), Some("junk"), now),
            Some(Duration::from_secs(20))
        );
        assert_eq!(retry_after_from_headers(None, None, now), None);
    }

    #[test]
    fn model_lists_are_searched_and_missing_models_named() {
        let vllm = json!({"object": "list", "data": [
            {"id": "meta-llama/Llama-3.1-8B-Instruct", "object": "model", "max_model_len": 131072}]});
        let info =
            parse_openai_model_list("meta-llama/Llama-3.1-8B-Instruct", &vllm.to_string()).unwrap();
        assert_eq!(info.input_token_limit, Some(131_072));
        let gemini = json!({"object": "list", "data": [{"id": "models/gemini-2.5-flash", "object": "model"}]});
        let info = parse_openai_model_list("gemini-2.5-flash", &gemini.to_string()).unwrap();
        assert_eq!(info.name, "gemini-2.5-flash");
        assert_eq!(info.input_token_limit, None);
        match parse_openai_model_list("gpt-9", &gemini.to_string()) {
            Err(CallError::ModelUnavailable { message }) => {
                assert!(
                    message.contains("\"gpt-9\" is not offered")
                        && message.contains("gemini-2.5-flash"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        let many: Vec<Value> = (0..25).map(|i| json!({"id": format!("m{i}")})).collect();
        let err = parse_openai_model_list("x", &json!({"data": many}).to_string()).unwrap_err();
        assert!(err.to_string().ends_with("and 5 more"), "{err}");
        assert!(matches!(
            parse_openai_model_list("x", "<html>welcome to nginx</html>"),
            Err(CallError::Configuration { .. })
        ));
        assert!(matches!(
            parse_openai_model_list("x", "{}"),
            Err(CallError::Configuration { .. })
        ));
    }

    #[test]
    fn model_names_may_have_slashes_but_not_spaces() {
        assert_eq!(
            openai_model_name(" meta-llama/Llama-3.1-8B ").unwrap(),
            "meta-llama/Llama-3.1-8B"
        );
        assert_eq!(
            openai_model_name("ft:gpt-4o-mini:org:custom:abc").unwrap(),
            "ft:gpt-4o-mini:org:custom:abc"
        );
        assert!(openai_model_name("").is_err());
        assert!(openai_model_name("gpt 4").is_err());
    }

    #[test]
    fn the_wire_schema_is_closed_for_strict_mode_where_it_can_be() {
        let schema = json!({
            "type": "object",
            "propertyOrdering": ["verdict", "risks", "note"],
            "properties": {
                "verdict": {"type": "string", "enum": ["buy", "hold"]},
                "risks": {"type": "array", "minItems": 1, "maxItems": 5, "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": 80},
                        "weight": {"type": "number", "minimum": 0, "maximum": 1}
                    },
                    "required": ["name"]
                }},
                "note": {"type": "string", "format": "date", "pattern": "^[0-9-]+$"},
                "code": {"type": "string", "format": "isin"},
                "grade": {"enum": ["a", "b"]}
            },
            "required": ["verdict", "risks"]
        });
        let wire = openai_wire_schema(&schema);
        assert!(wire.strict);
        assert_eq!(
            wire.schema,
            json!({
                "type": "object",
                "properties": {
                    "verdict": {"type": "string", "enum": ["buy", "hold"]},
                    "risks": {"type": "array", "minItems": 1, "maxItems": 5, "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "weight": {"type": ["number", "null"], "minimum": 0, "maximum": 1}
                        },
                        "required": ["name", "weight"],
                        "additionalProperties": false
                    }},
                    "note": {"type": ["string", "null"], "format": "date", "pattern": "^[0-9-]+$"},
                    "code": {"type": ["string", "null"]},
                    "grade": {"enum": ["a", "b", null]}
                },
                "required": ["verdict", "risks", "note", "code", "grade"],
                "additionalProperties": false
            })
        );
        // What strict mode adds is taken away again before the full schema checks the answer.
        let answer =
            r#"{"verdict":"buy","risks":[{"name":"fx","weight":null}],"note":null,"code":null}"#;
        let back = strip_added_nulls(&schema, answer);
        assert_eq!(back, r#"{"verdict":"buy","risks":[{"name":"fx"}]}"#);
        assert!(crate::validate_output(&schema, &back).is_ok());
        assert_eq!(strip_added_nulls(&schema, "not json"), "not json");

        // No strict form: composition, tuples, open maps, a non-object root, deep nesting.
        let mut composed = schema.clone();
        composed["properties"]["verdict"] =
            json!({"oneOf": [{"type": "string"}, {"type": "integer"}]});
        let mut open_map = schema.clone();
        open_map["properties"]["extra"] =
            json!({"type": "object", "additionalProperties": {"type": "number"}});
        let mut deep = json!({"type": "string"});
        for _ in 0..6 {
            deep = json!({"type": "object", "properties": {"x": deep}, "required": ["x"]});
        }
        for bad in [
            composed,
            open_map,
            deep,
            json!({"type": "array", "items": {"type": "string"}}),
        ] {
            let wire = openai_wire_schema(&bad);
            assert!(!wire.strict, "{bad}");
            assert!(!wire.schema.to_string().contains("propertyOrdering"));
        }
        // A property that happens to be called propertyOrdering stays.
        let named = json!({"type": "object", "properties": {"propertyOrdering": {"type": "string"}},
            "required": ["propertyOrdering"], "allOf": []});
        assert!(openai_wire_schema(&named).schema["properties"]
            .get("propertyOrdering")
            .is_some());
    }

    #[test]
    fn a_refused_parameter_is_named() {
        let max_tokens = json!({"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.", "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}});
        match classify_openai(400, &max_tokens.to_string(), None, &[]) {
            CallError::ParameterRefused { param, message } => {
                assert_eq!(param, "max_tokens");
                assert!(
                    message.contains("Use 'max_completion_tokens' instead"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        let temperature = json!({"error": {"message": "Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value is supported.", "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}});
        assert!(matches!(
            classify_openai(400, &temperature.to_string(), None, &[]),
            CallError::ParameterRefused { param, .. } if param == "temperature"
        ));
        // Without `param`, the quoted name of the message.
        let bare = json!({"error": {"message": "Unsupported parameter: 'temperature' is not supported with this model.", "code": "unsupported_parameter"}});
        assert!(matches!(
            classify_openai(400, &bare.to_string(), None, &[]),
            CallError::ParameterRefused { param, .. } if param == "temperature"
        ));
        // Any other 400 stays a configuration problem.
        let other = json!({"error": {"message": "Invalid schema for response_format 'result'", "type": "invalid_request_error", "param": "response_format", "code": null}});
        assert!(matches!(
            classify_openai(400, &other.to_string(), None, &[]),
            CallError::Configuration { .. }
        ));
    }
}
