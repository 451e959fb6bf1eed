//! The Gemini native REST client (`generateContent`, `countTokens`, `models.get`) and the pure
//! functions that build its request bodies and read its answers, including the error
//! classification of SPEC.md section 3.
//!
//! The key travels in the `x-goog-api-key` header, never in the URL, so it cannot leak through
//! proxy logs or error messages that quote the URL.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::http::{
    body_preview, build_http_client, checked_model_name, classify_transport_error, parse_base_url,
    secret_header_value, truncate_chars, ClientBuildError, MAX_MESSAGE_CHARS,
};
use crate::models::{parse_gemini_model_page, ServedModel, MAX_MODEL_PAGES, MODEL_PAGE_SIZE};
use crate::types::{
    mask_secrets_in, ApiKey, CallError, GenerateRequest, Generation, ModelInfo, Provider, Role,
    Thinking, TokenCount, Usage,
};

/// Where the Gemini API lives unless configured otherwise (`FINTEL_GEMINI_URL`).
pub const DEFAULT_GEMINI_URL: &str = "https://generativelanguage.googleapis.com";

/// The API version path; `responseJsonSchema` and `thinkingConfig` are only in `v1beta`.
pub const DEFAULT_GEMINI_API_VERSION: &str = "v1beta";

/// How a [`GeminiClient`] reaches the API.
#[derive(Debug, Clone, PartialEq)]
pub struct GeminiConfig {
    /// Scheme, host and optional path prefix, e.g. `https://generativelanguage.googleapis.com`
    /// or `http://127.0.0.1:8080` for the simulator. A trailing slash is tolerated.
    pub base_url: String,
    /// The version segment of every path (`v1beta`).
    pub api_version: String,
    /// The whole call, from connecting to the last byte of the answer. Thinking models on a
    /// long filing can take minutes, hence the generous default.
    pub timeout: Duration,
    /// Connecting alone. A connect timeout proves the request was never sent.
    pub connect_timeout: Duration,
}

impl Default for GeminiConfig {
    fn default() -> Self {
        GeminiConfig {
            base_url: DEFAULT_GEMINI_URL.to_string(),
            api_version: DEFAULT_GEMINI_API_VERSION.to_string(),
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(20),
        }
    }
}

/// The Gemini native REST provider.
#[derive(Debug, Clone)]
pub struct GeminiClient {
    http: reqwest::Client,
    base_url: String,
    api_version: String,
}

impl GeminiClient {
    /// Builds a client; fails only on a base URL that cannot work or a broken TLS setup.
    pub fn new(config: GeminiConfig) -> Result<Self, ClientBuildError> {
        let base_url = parse_base_url(&config.base_url, "the Gemini base URL", DEFAULT_GEMINI_URL)?;
        let api_version = config.api_version.trim().trim_matches('/').to_string();
        if api_version.is_empty() || api_version.contains(['/', '?', '#', ' ']) {
            return Err(ClientBuildError::BadBaseUrl {
                setting: "the Gemini API version",
                url: config.api_version.clone(),
                problem: "it must be a single path segment such as v1beta".to_string(),
                example: DEFAULT_GEMINI_URL,
            });
        }
        Ok(GeminiClient {
            http: build_http_client(config.timeout, config.connect_timeout)?,
            base_url,
            api_version,
        })
    }

    /// The normalised base URL (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `{base}/{version}/models/{model}` plus `:{method}` when given.
    fn model_url(&self, model: &str, method: Option<&str>) -> Result<String, CallError> {
        let name = checked_model_name(model)?;
        if name.contains(':') {
            return Err(CallError::Configuration {
                message: format!("Gemini model name {name:?} may not contain ':'"),
            });
        }
        let mut url = format!("{}/{}/models/{}", self.base_url, self.api_version, name);
        if let Some(method) = method {
            url.push(':');
            url.push_str(method);
        }
        Ok(url)
    }

    /// Sends one request with the key header and returns status and body, or the classified
    /// transport failure.
    async fn send(
        &self,
        key: Option<&ApiKey>,
        builder: reqwest::RequestBuilder,
    ) -> Result<(u16, String), CallError> {
        let key = key.ok_or_else(|| CallError::Configuration {
            message: "the Gemini API needs an API key and none was given: set GOOGLE_API_KEY \
                      (or GOOGLE_API_KEY_1..N) or add keys to the config file"
                .to_string(),
        })?;
        let secrets = [key.secret()];
        let header = secret_header_value(key.secret(), "")?;
        let response = builder
            .header("x-goog-api-key", header)
            .send()
            .await
            .map_err(|e| classify_transport_error(&e, &secrets))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| classify_transport_error(&e, &secrets))?;
        Ok((status, body))
    }
}

#[async_trait::async_trait]
impl Provider for GeminiClient {
    fn name(&self) -> &str {
        "gemini"
    }

    async fn generate(
        &self,
        key: Option<&ApiKey>,
        request: &GenerateRequest,
    ) -> Result<Generation, CallError> {
        let url = self.model_url(&request.model, Some("generateContent"))?;
        let body = gemini_generate_body(request);
        let started = Instant::now();
        let (status, text) = self.send(key, self.http.post(url).json(&body)).await?;
        let latency = started.elapsed();
        let secrets: Vec<&str> = key.map(|k| k.secret()).into_iter().collect();
        interpret_gemini_generate(status, &text, &secrets).map(|mut generation| {
            generation.latency = latency;
            generation
        })
    }

    async fn check_model(&self, key: Option<&ApiKey>, model: &str) -> Result<ModelInfo, CallError> {
        let url = self.model_url(model, None)?;
        let (status, text) = self.send(key, self.http.get(url)).await?;
        let secrets: Vec<&str> = key.map(|k| k.secret()).into_iter().collect();
        if !(200..300).contains(&status) {
            return Err(classify_gemini(status, &text, &secrets));
        }
        parse_gemini_model_info(&text).map_err(|e| e.masked(&secrets))
    }

    /// `GET v1beta/models`, following `nextPageToken` to the last page.
    async fn list_models(&self, key: Option<&ApiKey>) -> Result<Vec<ServedModel>, CallError> {
        let url = format!("{}/{}/models", self.base_url, self.api_version);
        let secrets: Vec<&str> = key.map(|k| k.secret()).into_iter().collect();
        let mut models = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_MODEL_PAGES {
            let mut query = vec![("pageSize", MODEL_PAGE_SIZE.to_string())];
            if let Some(t) = &token {
                query.push(("pageToken", t.clone()));
            }
            let (status, text) = self.send(key, self.http.get(&url).query(&query)).await?;
            if !(200..300).contains(&status) {
                return Err(classify_gemini(status, &text, &secrets));
            }
            let page = parse_gemini_model_page(&text).map_err(|e| e.masked(&secrets))?;
            models.extend(page.models);
            match page.next_page_token {
                Some(next) if Some(&next) != token.as_ref() => token = Some(next),
                _ => return Ok(models),
            }
        }
        Err(CallError::Configuration {
            message: format!(
                "the model list did not end after {MAX_MODEL_PAGES} pages (is the base URL right?)"
            ),
        })
    }

    async fn count_tokens(
        &self,
        key: Option<&ApiKey>,
        request: &GenerateRequest,
    ) -> Result<Option<TokenCount>, CallError> {
        let url = self.model_url(&request.model, Some("countTokens"))?;
        let model = checked_model_name(&request.model)?;
        let body = gemini_count_tokens_body(model, request);
        let (status, text) = self.send(key, self.http.post(url).json(&body)).await?;
        let secrets: Vec<&str> = key.map(|k| k.secret()).into_iter().collect();
        if !(200..300).contains(&status) {
            return Err(classify_gemini(status, &text, &secrets));
        }
        parse_gemini_token_count(&text)
            .map(Some)
            .map_err(|e| e.masked(&secrets))
    }
}

// ---------------------------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------------------------

/// The `contents` array: user turns as role `user`, model turns as role `model`.
fn gemini_contents(request: &GenerateRequest) -> Value {
    Value::Array(
        request
            .turns
            .iter()
            .map(|turn| {
                let role = match turn.role {
                    Role::User => "user",
                    Role::Model => "model",
                };
                json!({ "role": role, "parts": [{ "text": turn.text }] })
            })
            .collect(),
    )
}

fn gemini_system_instruction(request: &GenerateRequest) -> Option<Value> {
    request
        .system_instruction
        .as_ref()
        .map(|text| json!({ "parts": [{ "text": text }] }))
}

/// An `f32` as the JSON number a person would write (`0.2`, not `0.20000000298023224`).
pub(crate) fn f32_json(value: f32) -> Value {
    value
        .to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// The JSON body of `generateContent` for a request.
///
/// `generationConfig` always asks for JSON matching the request's schema
/// (`responseMimeType` + `responseJsonSchema`); temperature, output limit and `thinkingConfig`
/// are sent only when set, so the model's own defaults otherwise apply.
pub fn gemini_generate_body(request: &GenerateRequest) -> Value {
    let mut generation_config = Map::new();
    generation_config.insert("responseMimeType".into(), json!("application/json"));
    generation_config.insert("responseJsonSchema".into(), request.response_schema.clone());
    if let Some(t) = request.temperature {
        generation_config.insert("temperature".into(), f32_json(t));
    }
    if let Some(max) = request.max_output_tokens {
        generation_config.insert("maxOutputTokens".into(), json!(max));
    }
    if let Some(seed) = request.seed {
        generation_config.insert("seed".into(), json!(seed));
    }
    match &request.thinking {
        Thinking::ProviderDefault => {}
        Thinking::Budget(budget) => {
            generation_config.insert("thinkingConfig".into(), json!({ "thinkingBudget": budget }));
        }
        Thinking::Level(level) => {
            generation_config.insert("thinkingConfig".into(), json!({ "thinkingLevel": level }));
        }
    }
    let mut body = Map::new();
    if let Some(system) = gemini_system_instruction(request) {
        body.insert("systemInstruction".into(), system);
    }
    body.insert("contents".into(), gemini_contents(request));
    body.insert("generationConfig".into(), Value::Object(generation_config));
    Value::Object(body)
}

/// The JSON body of `countTokens` for a request.
///
/// The Gemini API (unlike Vertex AI) has no top-level `systemInstruction` in `countTokens`;
/// it counts a system instruction only inside the `generateContentRequest` form, which also
/// needs the model name. So that form is always used. The response schema and generation
/// settings are not sent: the count covers the prompt, and the caller keeps a margin for the
/// schema the API adds.
pub fn gemini_count_tokens_body(model: &str, request: &GenerateRequest) -> Value {
    let mut inner = Map::new();
    inner.insert("model".into(), json!(format!("models/{model}")));
    if let Some(system) = gemini_system_instruction(request) {
        inner.insert("systemInstruction".into(), system);
    }
    inner.insert("contents".into(), gemini_contents(request));
    json!({ "generateContentRequest": Value::Object(inner) })
}

// ---------------------------------------------------------------------------------------------
// Successful answers
// ---------------------------------------------------------------------------------------------

/// Reads a `generateContent` answer of any status: 2xx goes to [`parse_gemini_success`],
/// anything else to [`classify_gemini`]. Messages have `secrets` masked.
pub fn interpret_gemini_generate(
    status: u16,
    body: &str,
    secrets: &[&str],
) -> Result<Generation, CallError> {
    if (200..300).contains(&status) {
        parse_gemini_success(body).map_err(|e| e.masked(secrets))
    } else {
        Err(classify_gemini(status, body, secrets))
    }
}

/// Reads the body of an HTTP 200 `generateContent` answer.
///
/// The text is the concatenation of the first candidate's parts, skipping `thought: true`
/// parts (thought summaries). Streaming bodies (`data:` lines, or a JSON array of chunks) are
/// merged, so a recorded `streamGenerateContent` answer reads the same. `latency` is zero:
/// the client fills it in.
///
/// Fails with `Refused` for a blocked prompt or a candidate stopped by a safety, recitation,
/// blocklist or similar filter, and with `Truncated` (carrying the usage) for `MAX_TOKENS`,
/// other abnormal finishes, an empty answer or a body that is not a Gemini response.
pub fn parse_gemini_success(body: &str) -> Result<Generation, CallError> {
    let chunks = match parse_chunks(body) {
        Some(chunks) if !chunks.is_empty() => chunks,
        _ => {
            return Err(CallError::BadOutput {
                reason: format!(
                    "the provider answered HTTP 200 with a body that is not a Gemini response: {}",
                    body_preview(body)
                ),
                raw_text: None,
                usage: Usage::default(),
            })
        }
    };

    let mut text = String::new();
    let mut finish_reason: Option<String> = None;
    let mut usage = Usage::default();
    let mut model_version = None;
    let mut block: Option<String> = None;
    let mut safety_notes: Vec<String> = Vec::new();
    let mut saw_candidate = false;

    for chunk in &chunks {
        if let Some(error) = chunk.get("error") {
            // A stream can end in an error object after a 200 status line.
            let code = error
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(500);
            return Err(classify_gemini(code, &chunk.to_string(), &[]));
        }
        if let Some(meta) = chunk.get("usageMetadata") {
            usage = Usage {
                prompt_tokens: u64_field(meta, "promptTokenCount"),
                output_tokens: u64_field(meta, "candidatesTokenCount"),
                thinking_tokens: u64_field(meta, "thoughtsTokenCount"),
            };
        }
        if let Some(v) = chunk.get("modelVersion").and_then(Value::as_str) {
            model_version = Some(v.to_string());
        }
        if let Some(feedback) = chunk.get("promptFeedback") {
            if let Some(reason) = feedback.get("blockReason").and_then(Value::as_str) {
                let mut why = format!("the prompt was blocked (blockReason {reason})");
                if let Some(msg) = feedback.get("blockReasonMessage").and_then(Value::as_str) {
                    why.push_str(": ");
                    why.push_str(msg);
                }
                block = Some(why);
            }
        }
        let Some(candidate) = chunk
            .get("candidates")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        else {
            continue;
        };
        saw_candidate = true;
        if let Some(parts) = candidate
            .pointer("/content/parts")
            .and_then(Value::as_array)
        {
            for part in parts {
                if part.get("thought").and_then(Value::as_bool) == Some(true) {
                    continue;
                }
                if let Some(t) = part.get("text").and_then(Value::as_str) {
                    text.push_str(t);
                }
            }
        }
        if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
            finish_reason = Some(reason.to_string());
        }
        if let Some(ratings) = candidate.get("safetyRatings").and_then(Value::as_array) {
            for rating in ratings {
                let blocked = rating.get("blocked").and_then(Value::as_bool) == Some(true);
                let probability = rating
                    .get("probability")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if blocked || probability == "MEDIUM" || probability == "HIGH" {
                    let category = rating
                        .get("category")
                        .and_then(Value::as_str)
                        .unwrap_or("?");
                    let note = format!(
                        "{category} {probability}{}",
                        if blocked { " (blocked)" } else { "" }
                    );
                    if !safety_notes.contains(&note) {
                        safety_notes.push(note);
                    }
                }
            }
        }
    }

    if let Some(why) = block {
        return Err(CallError::Refused { reason: why });
    }
    if !saw_candidate {
        return Err(CallError::BadOutput {
            reason: "the response has no candidates and no block reason".to_string(),
            raw_text: None,
            usage,
        });
    }
    let finish = finish_reason.unwrap_or_else(|| "FINISH_REASON_UNSPECIFIED".to_string());
    match finish.as_str() {
        "STOP" => {}
        "MAX_TOKENS" => {
            return Err(CallError::Truncated {
                message: format!(
                    "the answer was cut off at the output token limit (finishReason MAX_TOKENS \
                     after {} output and {} thinking tokens)",
                    usage.output_tokens, usage.thinking_tokens
                ),
                usage,
            })
        }
        other => {
            if let Some(explanation) = refusal_explanation(other) {
                let mut reason =
                    format!("the model stopped answering: {explanation} (finishReason {other})");
                if !safety_notes.is_empty() {
                    reason.push_str("; ratings: ");
                    reason.push_str(&safety_notes.join(", "));
                }
                return Err(CallError::Refused { reason });
            }
            return Err(CallError::BadOutput {
                reason: format!("the model stopped abnormally (finishReason {other})"),
                raw_text: Some(text),
                usage,
            });
        }
    }
    Generation::finished_normally(text, usage, finish, model_version)
}

/// Finish reasons that mean the model will not answer this input, with what they mean.
fn refusal_explanation(finish_reason: &str) -> Option<&'static str> {
    Some(match finish_reason {
        "SAFETY" => "the answer was flagged by a safety filter",
        "RECITATION" => "the answer was flagged for reciting existing text",
        "PROHIBITED_CONTENT" => "the answer was flagged as prohibited content",
        "BLOCKLIST" => "the answer contained a blocklisted term",
        "SPII" => "the answer contained sensitive personal information",
        "IMAGE_SAFETY" => "an image was flagged by a safety filter",
        "LANGUAGE" => "the language is not supported",
        _ => return None,
    })
}

/// The JSON values of a body: one object, a JSON array of chunks, or `data:` lines (SSE).
fn parse_chunks(body: &str) -> Option<Vec<Value>> {
    let trimmed = body.trim_start();
    if trimmed.starts_with("data:") {
        let mut chunks = Vec::new();
        for line in body.lines() {
            if let Some(data) = line.strip_prefix("data:") {
                let data = data.trim();
                if data.is_empty() || data == "[DONE]" {
                    continue;
                }
                chunks.push(serde_json::from_str::<Value>(data).ok()?);
            }
        }
        return Some(chunks);
    }
    match serde_json::from_str::<Value>(body).ok()? {
        Value::Array(items) => Some(items.into_iter().filter(Value::is_object).collect()),
        value @ Value::Object(_) => Some(vec![value]),
        _ => None,
    }
}

fn u64_field(value: &Value, name: &str) -> u64 {
    match value.get(name) {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn optional_u64_field(value: &Value, name: &str) -> Option<u64> {
    match value.get(name)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Reads a `GET v1beta/models/{model}` answer. A model that exists but cannot
/// `generateContent` (an embedding model, say) is a configuration problem, caught here before
/// a batch starts rather than on its first task.
pub fn parse_gemini_model_info(body: &str) -> Result<ModelInfo, CallError> {
    let value: Value = serde_json::from_str(body).map_err(|_| not_gemini(body))?;
    let name = value
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| not_gemini(body))?;
    if let Some(methods) = value
        .get("supportedGenerationMethods")
        .and_then(Value::as_array)
    {
        let methods: Vec<&str> = methods.iter().filter_map(Value::as_str).collect();
        if !methods.contains(&"generateContent") {
            return Err(CallError::Configuration {
                message: format!(
                    "model {name} cannot generate content (it supports: {}): choose a Gemini \
                     text model (`fintel doctor` lists the served ones)",
                    if methods.is_empty() {
                        "nothing".to_string()
                    } else {
                        methods.join(", ")
                    }
                ),
            });
        }
    }
    Ok(ModelInfo {
        name: name.strip_prefix("models/").unwrap_or(name).to_string(),
        input_token_limit: optional_u64_field(&value, "inputTokenLimit"),
        output_token_limit: optional_u64_field(&value, "outputTokenLimit"),
    })
}

/// Reads a `countTokens` answer (`{"totalTokens": n, ...}`).
pub fn parse_gemini_token_count(body: &str) -> Result<TokenCount, CallError> {
    let value: Value = serde_json::from_str(body).map_err(|_| not_gemini(body))?;
    let total_tokens = optional_u64_field(&value, "totalTokens").ok_or_else(|| not_gemini(body))?;
    Ok(TokenCount { total_tokens })
}

fn not_gemini(body: &str) -> CallError {
    CallError::Configuration {
        message: format!(
            "the server did not answer like the Gemini API (is the base URL right?): {}",
            body_preview(body)
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// The parts of a `google.rpc.Status` error body that classification reads.
#[derive(Debug, Clone, Default)]
pub(crate) struct RpcStatus {
    pub message: String,
    pub status: Option<String>,
    details: Vec<Value>,
}

impl RpcStatus {
    fn details_of<'a>(&'a self, type_name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.details.iter().filter(move |d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.rsplit('/').next() == Some(type_name))
        })
    }

    fn error_reasons(&self) -> impl Iterator<Item = &str> + '_ {
        self.details_of("google.rpc.ErrorInfo")
            .filter_map(|d| d.get("reason").and_then(Value::as_str))
    }

    fn has_reason(&self, reason: &str) -> bool {
        self.error_reasons().any(|r| r == reason)
    }

    fn error_metadata(&self, key: &str) -> Option<&str> {
        self.details_of("google.rpc.ErrorInfo").find_map(|d| {
            d.pointer(&format!("/metadata/{key}"))
                .and_then(Value::as_str)
        })
    }

    /// The project the provider charged (`ErrorInfo` metadata `consumer: projects/NNN`).
    /// Only a plain project number or id is accepted, so nothing else a body carries can
    /// become a name in the database or a message.
    pub(crate) fn consumer_project(&self) -> Option<String> {
        let consumer = self.error_metadata("consumer")?.trim();
        let project = consumer.strip_prefix("projects/")?;
        let plain = !project.is_empty()
            && project.len() <= 64
            && project
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        plain.then(|| project.to_string())
    }

    fn retry_delay(&self) -> Option<Duration> {
        self.details_of("google.rpc.RetryInfo")
            .find_map(|d| d.get("retryDelay"))
            .and_then(parse_protobuf_duration)
    }

    fn help_url(&self) -> Option<&str> {
        self.details_of("google.rpc.Help")
            .find_map(|d| d.pointer("/links/0/url").and_then(Value::as_str))
    }

    fn quota_violations(&self) -> Vec<QuotaViolation> {
        self.details_of("google.rpc.QuotaFailure")
            .filter_map(|d| d.get("violations").and_then(Value::as_array))
            .flatten()
            .map(|v| {
                let text = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_string);
                QuotaViolation {
                    // Older bodies carried only subject/description; the id is what says
                    // which limit was hit, so fall back to whatever names it.
                    quota_id: text("quotaId")
                        .or_else(|| text("description"))
                        .or_else(|| text("subject"))
                        .unwrap_or_default(),
                    quota_value: optional_u64_field(v, "quotaValue"),
                    metric: text("quotaMetric").unwrap_or_default(),
                    model: v
                        .pointer("/quotaDimensions/model")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                }
            })
            .collect()
    }
}

/// One entry of a `google.rpc.QuotaFailure`.
#[derive(Debug, Clone)]
struct QuotaViolation {
    quota_id: String,
    quota_value: Option<u64>,
    /// `quotaMetric`, e.g. `generativelanguage.googleapis.com/generate_content_free_tier_requests`.
    metric: String,
    model: Option<String>,
}

impl QuotaViolation {
    fn is_per_day(&self) -> bool {
        self.quota_id.to_ascii_lowercase().contains("perday")
    }

    fn is_input_tokens(&self) -> bool {
        self.quota_id.to_ascii_lowercase().contains("inputtokens")
    }

    fn describe(&self) -> String {
        let mut text = if self.quota_id.is_empty() {
            "unnamed quota".to_string()
        } else {
            self.quota_id.clone()
        };
        let mut extras = Vec::new();
        if let Some(v) = self.quota_value {
            extras.push(format!("limit {v}"));
        }
        if let Some(m) = &self.model {
            extras.push(format!("model {m}"));
        }
        if !extras.is_empty() {
            text.push_str(&format!(" ({})", extras.join(", ")));
        }
        text
    }
}

/// Parses a `google.rpc.Status` body, `{"error": {...}}` or the `[{"error": {...}}]` form of
/// streaming endpoints and the OpenAI-compatibility endpoint. `None` when it is neither.
pub(crate) fn parse_rpc_status(body: &str) -> Option<RpcStatus> {
    let value: Value = serde_json::from_str(body).ok()?;
    let value = match value {
        Value::Array(items) => items.into_iter().next()?,
        other => other,
    };
    let error = value.get("error")?.as_object()?;
    Some(RpcStatus {
        message: error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        status: error
            .get("status")
            .and_then(Value::as_str)
            .map(str::to_string),
        details: error
            .get("details")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    })
}

/// Parses a protobuf JSON `Duration` (`"26s"`, `"1.5s"`), or the `{"seconds", "nanos"}`
/// object form some encoders emit.
pub fn parse_protobuf_duration(value: &Value) -> Option<Duration> {
    match value {
        Value::String(text) => {
            let seconds: f64 = text.trim().strip_suffix('s')?.trim().parse().ok()?;
            (seconds.is_finite() && (0.0..1e9).contains(&seconds))
                .then(|| Duration::from_secs_f64(seconds))
        }
        Value::Object(map) => {
            let seconds = match map.get("seconds")? {
                Value::Number(n) => n.as_u64()?,
                Value::String(s) => s.parse().ok()?,
                _ => return None,
            };
            let nanos = map.get("nanos").and_then(Value::as_u64).unwrap_or(0);
            Some(Duration::new(
                seconds,
                u32::try_from(nanos).ok()?.min(999_999_999),
            ))
        }
        _ => None,
    }
}

/// Classifies a non-2xx Gemini answer into the row of SPEC.md section 3 it belongs to.
///
/// Reads the `google.rpc.Status` body (plain or array-shaped); a body that is not one is
/// classified by `status` alone. Every message has `secrets` masked and is capped in length.
pub fn classify_gemini(status: u16, body: &str, secrets: &[&str]) -> CallError {
    let body = mask_secrets_in(body, secrets);
    let error = match parse_rpc_status(&body) {
        Some(rpc) => classify_rpc(status, &rpc),
        None => classify_status_only(status, &body),
    };
    error.masked(secrets)
}

/// The provider's message, capped, with its status name in front when there is one.
fn provider_message(rpc: &RpcStatus) -> String {
    let message = if rpc.message.trim().is_empty() {
        "(no message)"
    } else {
        rpc.message.trim()
    };
    let message = truncate_chars(message, MAX_MESSAGE_CHARS);
    match &rpc.status {
        Some(s) => format!("{s}: {message}"),
        None => message,
    }
}

pub(crate) fn classify_rpc(status: u16, rpc: &RpcStatus) -> CallError {
    let message = provider_message(rpc);
    match status {
        429 => classify_quota(rpc, message),
        400 if rpc.has_reason("API_KEY_INVALID") || is_key_message(&rpc.message) => {
            CallError::KeyUnusable {
                reason: format!("key rejected as invalid or expired (API_KEY_INVALID): {message}"),
                project: rpc.consumer_project(),
            }
        }
        400 if is_schema_too_complex(&rpc.message) => CallError::SchemaTooComplex {
            message: format!("HTTP 400, {message}"),
        },
        400 | 413 if is_context_too_long(&rpc.message) => CallError::ContextTooLong {
            max_tokens: number_after(&rpc.message, "exceeds the maximum"),
            message,
        },
        413 => CallError::ContextTooLong {
            max_tokens: None,
            message: format!("HTTP 413, request too large: {message}"),
        },
        401 => CallError::KeyUnusable {
            reason: format!("key not accepted (HTTP 401): {message}"),
            project: rpc.consumer_project(),
        },
        403 => CallError::KeyUnusable {
            reason: permission_denied_reason(rpc, &message),
            project: rpc.consumer_project(),
        },
        408 | 409 | 499 | 500..=599 => CallError::Transient {
            message: format!("HTTP {status}, {message}"),
            reached_server: true,
        },
        400 | 404 if is_model_gone(&rpc.message) => CallError::ModelUnavailable {
            message: format!("HTTP {status}, the model is not served: {message}"),
        },
        // "Thinking level is not supported for this model." (a model that takes no levels;
        // a level the model does not offer, "Thinking level MINIMAL is not supported ...",
        // names one value and stays a configuration problem).
        400 if rpc
            .message
            .trim()
            .eq_ignore_ascii_case("thinking level is not supported for this model.") =>
        {
            CallError::ParameterRefused {
                param: "thinkingLevel".to_string(),
                message: format!("HTTP 400, {message}"),
            }
        }
        404 => CallError::Configuration {
            message: format!("HTTP 404, the model or endpoint does not exist: {message}"),
        },
        _ => CallError::Configuration {
            message: format!("HTTP {status}, {message}"),
        },
    }
}

/// The 429 rows: a per-day violation wins over an input-tokens one, which wins over the rest.
fn classify_quota(rpc: &RpcStatus, message: String) -> CallError {
    let violations = rpc.quota_violations();
    let retry_after = rpc.retry_delay();
    let project = rpc.consumer_project();
    // "limit: 0": the model has no quota on this project's tier. No reset will change that,
    // so it is a configuration problem (exit 4), not a day to wait for.
    if let Some(zero) = violations.iter().find(|v| v.quota_value == Some(0)) {
        return no_quota(&zero.describe(), &message);
    }
    // ProtoJSON leaves zero values out, so a real limit of 0 has no `quotaValue`: the message
    // is then the only place that says "limit: 0".
    let zeros = zero_limits_in_message(&rpc.message);
    let per_day_metric = |z: &&ZeroLimit| {
        violations
            .iter()
            .any(|v| v.is_per_day() && !v.metric.is_empty() && z.metric.ends_with(&v.metric))
    };
    // Named by the quota a user thinks in first: requests per day, then any requests quota.
    let zero = zeros
        .iter()
        .find(per_day_metric)
        .or_else(|| zeros.iter().find(|z| z.metric.contains("requests")))
        .or_else(|| zeros.first())
        .cloned();
    if let Some(zero) = zero {
        // The violation of that metric names the quota; a per-day one first.
        let same_metric =
            |v: &&QuotaViolation| !v.metric.is_empty() && zero.metric.ends_with(v.metric.as_str());
        let id = violations
            .iter()
            .filter(same_metric)
            .find(|v| v.is_per_day())
            .or_else(|| violations.iter().find(same_metric))
            .map(|v| v.quota_id.as_str())
            .filter(|id| !id.is_empty());
        let mut quota = zero.metric.clone();
        if let Some(id) = id {
            quota.push_str(&format!(" ({id})"));
        }
        let model = zero
            .model
            .or_else(|| violations.iter().find_map(|v| v.model.clone()));
        let described = match model {
            Some(model) => format!("{quota} (limit 0, model {model})"),
            None => format!("{quota} (limit 0)"),
        };
        return no_quota(&described, &message);
    }
    if let Some(day) = violations.iter().find(|v| v.is_per_day()) {
        return CallError::DailyQuotaExhausted {
            message: format!("{} exceeded: {message}", day.describe()),
            project,
        };
    }
    // A 2024-style body names its limit only in ErrorInfo metadata; a per-day one there is
    // still a spent day, whatever the retry hint says.
    if violations.is_empty() {
        if let Some(limit) = rpc.error_metadata("quota_limit") {
            if limit.to_ascii_lowercase().contains("perday") {
                return CallError::DailyQuotaExhausted {
                    message: format!("{limit} exceeded: {message}"),
                    project,
                };
            }
        }
    }
    if let Some(tokens) = violations.iter().find(|v| v.is_input_tokens()) {
        return CallError::InputTokensPerMinute {
            limit_tokens: tokens.quota_value,
            retry_after,
            message: format!("{} exceeded: {message}", tokens.describe()),
            project,
        };
    }
    let named = violations
        .first()
        .map(QuotaViolation::describe)
        .or_else(|| rpc.error_metadata("quota_limit").map(str::to_string));
    CallError::RateLimited {
        retry_after,
        message: match named {
            Some(name) => format!("{name} exceeded: {message}"),
            None => message,
        },
        project,
    }
}

/// The configuration stop of a quota whose limit is 0 (SPEC.md section 3): no reset will
/// change it.
fn no_quota(described: &str, message: &str) -> CallError {
    CallError::Configuration {
        message: format!(
            "{described} exceeded: the model has no quota on this project's tier; choose another \
             model (--model) or enable billing for the project. Provider said: {message}"
        ),
    }
}

/// A "limit: 0" line of a 429 message: "Quota exceeded for metric: M, limit: 0, model: X".
#[derive(Debug, Clone, PartialEq, Eq)]
struct ZeroLimit {
    metric: String,
    model: Option<String>,
}

/// Every line of `message` that says a quota's limit is 0, in order.
fn zero_limits_in_message(message: &str) -> Vec<ZeroLimit> {
    let field = |line: &str, name: &str| -> Option<String> {
        let lower = line.to_ascii_lowercase();
        let at = lower.find(name)? + name.len();
        let value = line[at..].split(',').next()?.trim();
        (!value.is_empty()).then(|| value.to_string())
    };
    message
        .lines()
        .filter(|line| {
            field(line, "limit:")
                .is_some_and(|v| v.bytes().all(|b| b.is_ascii_digit()) && v.parse() == Ok(0u64))
        })
        .map(|line| ZeroLimit {
            metric: field(line, "metric:").unwrap_or_else(|| "a quota".to_string()),
            model: field(line, "model:"),
        })
        .collect()
}

fn permission_denied_reason(rpc: &RpcStatus, message: &str) -> String {
    let lower = rpc.message.to_ascii_lowercase();
    if lower.contains("leaked") {
        return format!("key reported as leaked: {message}");
    }
    if rpc.has_reason("SERVICE_DISABLED") {
        let project = rpc
            .error_metadata("consumer")
            .map(|c| c.strip_prefix("projects/").unwrap_or(c).to_string())
            .unwrap_or_else(|| "of this key".to_string());
        let mut reason = format!("Generative Language API not enabled for project {project}");
        if let Some(url) = rpc.help_url() {
            reason.push_str(&format!(
                " (enable it at {url}, wait a few minutes, then re-enable the key)"
            ));
        }
        reason.push_str(&format!(": {message}"));
        return reason;
    }
    if rpc.has_reason("API_KEY_SERVICE_BLOCKED") {
        return format!("key is restricted from calling the Generative Language API: {message}");
    }
    format!("permission denied: {message}")
}

/// The provider's words for a model it does not (or no longer) serve: "models/X is not
/// found for API version v1beta", "This model models/X is no longer available to new users",
/// "Gemini 1.0 Pro Vision has been deprecated on July 12, 2024".
pub(crate) fn is_model_gone(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    (lower.contains("models/") && lower.contains("is not found"))
        || lower.contains("no longer available")
        || lower.contains("has been deprecated")
}

/// Bodies without ErrorInfo still say plainly when the key is the problem.
fn is_key_message(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("api key not valid") || lower.contains("api key expired")
}

/// Gemini's words for a response schema its constrained decoding cannot serve: "The specified
/// schema produces a constraint that has too many states for serving."
fn is_schema_too_complex(message: &str) -> bool {
    message.to_ascii_lowercase().contains("too many states")
}

fn is_context_too_long(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("exceeds the maximum number of tokens")
        || (lower.contains("input token count") && lower.contains("exceeds"))
}

/// The first run of digits after `marker` in `text` (case-insensitive marker).
pub(crate) fn number_after(text: &str, marker: &str) -> Option<u64> {
    let start = text
        .to_ascii_lowercase()
        .find(&marker.to_ascii_lowercase())?
        + marker.len();
    let rest = &text[start..];
    let digits_start = rest.find(|c: char| c.is_ascii_digit())?;
    let digits: String = rest[digits_start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Classifies a body that is not a `google.rpc.Status` (an HTML page from a proxy, an empty
/// body) by its HTTP status.
fn classify_status_only(status: u16, body: &str) -> CallError {
    let message = format!(
        "HTTP {status} with a body that is not a JSON error: {}",
        body_preview(body)
    );
    match status {
        429 => CallError::RateLimited {
            retry_after: None,
            message,
            project: None,
        },
        401 | 403 => CallError::KeyUnusable {
            reason: message,
            project: None,
        },
        413 => CallError::ContextTooLong {
            max_tokens: None,
            message,
        },
        408 | 409 | 499 | 500..=599 => CallError::Transient {
            message,
            reached_server: true,
        },
        300..=399 => CallError::Configuration {
            message: format!("{message} (a redirect: check the base URL)"),
        },
        _ => CallError::Configuration { message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_durations_parse() {
        assert_eq!(
            parse_protobuf_duration(&json!("26s")),
            Some(Duration::from_secs(26))
        );
        assert_eq!(
            parse_protobuf_duration(&json!("1.5s")),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_protobuf_duration(&json!("0s")), Some(Duration::ZERO));
        assert_eq!(
            parse_protobuf_duration(&json!({"seconds": "3", "nanos": 500000000})),
            Some(Duration::from_millis(3500))
        );
        for bad in [
            json!("26"),
            json!("-1s"),
            json!("abcs"),
            json!(26),
            json!("NaNs"),
        ] {
            assert_eq!(parse_protobuf_duration(&bad), None, "{bad}");
        }
    }

    #[test]
    fn numbers_after_markers() {
        let m = "The input token count (3475108) exceeds the maximum number of tokens allowed (1048576).";
        assert_eq!(number_after(m, "exceeds the maximum"), Some(1_048_576));
        assert_eq!(
            number_after("limit is 8,192 tokens", "limit is"),
            Some(8192)
        );
        assert_eq!(number_after("no digits here", "no"), None);
        assert_eq!(number_after("marker missing", "absent"), None);
    }

    #[test]
    fn model_info_and_token_counts_are_read() {
        let info = parse_gemini_model_info(
            r#"{"name": "models/gemini-2.5-flash", "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
                "supportedGenerationMethods": ["generateContent", "countTokens"]}"#,
        )
        .unwrap();
        assert_eq!(info.name, "gemini-2.5-flash");
        assert_eq!(info.input_token_limit, Some(1_048_576));
        let embedding = parse_gemini_model_info(
            r#"{"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]}"#,
        );
        match embedding {
            Err(CallError::Configuration { message }) => {
                assert!(
                    message.contains("cannot generate content (it supports: embedContent)"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        for bad in ["<html>", "{}", r#"{"models": []}"#] {
            assert!(
                matches!(
                    parse_gemini_model_info(bad),
                    Err(CallError::Configuration { .. })
                ),
                "{bad}"
            );
            assert!(
                matches!(
                    parse_gemini_token_count(bad),
                    Err(CallError::Configuration { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            parse_gemini_token_count(r#"{"totalTokens": 7}"#)
                .unwrap()
                .total_tokens,
            7
        );
    }

    #[test]
    fn temperature_is_sent_as_written() {
        assert_eq!(f32_json(0.2), json!(0.2));
        assert_eq!(f32_json(1.0), json!(1.0));
    }
}
