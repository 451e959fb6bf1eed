//! The Gemini request checks and answer bodies: which requests the real API rejects and how,
//! the token estimate used for countTokens and for quota, and the shape of a success.
//!
//! Token estimate (documented, used for countTokens, the context limit and the per-minute
//! token quota alike): the number of characters of every `text` part of `contents` and
//! `systemInstruction`, plus the characters of the compact JSON of the response schema,
//! divided by 4 and rounded up.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::config::ModelConfig;
use crate::errors::{self, ErrorReply};

const TOP_LEVEL_FIELDS: &[&str] = &[
    "model",
    "contents",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
];
const GENERATION_CONFIG_FIELDS: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "_responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
];
const THINKING_CONFIG_FIELDS: &[&str] = &["includeThoughts", "thinkingBudget", "thinkingLevel"];

/// What the simulator needs from an accepted generateContent request.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// Estimated input tokens.
    pub tokens: u64,
    /// Hash of contents + systemInstruction + schema (not the key): identifies a repeated call.
    pub content_hash: u64,
    /// The response schema, if any.
    pub schema: Option<Value>,
    /// `maxOutputTokens`, if set.
    pub max_output_tokens: Option<u64>,
    /// Whether thinking is on (budget absent, -1 or positive).
    pub thinking: bool,
    /// How far thinking may go: `None` when unbounded (no thinking config, a budget of -1, or
    /// a level above `low`), else the budget (a level `minimal` reads 0 and `low` 1,024).
    pub thinking_bound: Option<i64>,
    /// Whether `generationConfig.temperature` was sent.
    pub temperature_sent: bool,
    /// Whether `thinkingConfig.thinkingBudget` was sent.
    pub thinking_budget_sent: bool,
    /// Whether `thinkingConfig.thinkingLevel` was sent.
    pub thinking_level_sent: bool,
    /// `generationConfig.seed`, if set.
    pub seed: Option<i64>,
}

/// The proto JSON mapping accepts snake_case names too; compare in camelCase.
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for (i, c) in name.chars().enumerate() {
        if c == '_' && i > 0 {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A field by camelCase name, also found under its snake_case spelling.
fn field<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    obj.as_object()?
        .iter()
        .find(|(k, _)| camel(k) == name)
        .map(|(_, v)| v)
}

fn check_known(obj: &Value, known: &[&str], at: Option<&str>) -> Result<(), ErrorReply> {
    if let Some(map) = obj.as_object() {
        for k in map.keys() {
            if !known.contains(&camel(k).as_str()) {
                let message = match at {
                    None => format!("Invalid JSON payload received. Unknown name \"{k}\": Cannot find field."),
                    Some(at) => format!("Invalid JSON payload received. Unknown name \"{k}\" at '{at}': Cannot find field."),
                };
                return Err(errors::invalid_payload(&message, at));
            }
        }
    }
    Ok(())
}

fn parse_json(body: &[u8]) -> Result<Value, ErrorReply> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        errors::invalid_payload(&format!("Invalid JSON payload received. {e}"), None)
    })?;
    if !value.is_object() {
        return Err(errors::invalid_payload(
            "Invalid JSON payload received. Unknown name \"\": Root element must be a message.",
            None,
        ));
    }
    Ok(value)
}

fn text_chars(content: Option<&Value>) -> u64 {
    let mut n = 0u64;
    if let Some(parts) = content
        .and_then(|c| field(c, "parts"))
        .and_then(Value::as_array)
    {
        for part in parts {
            if let Some(t) = field(part, "text").and_then(Value::as_str) {
                n += t.chars().count() as u64;
            }
        }
    }
    n
}

fn schema_of(request: &Value) -> Option<&Value> {
    let gc = field(request, "generationConfig")?;
    field(gc, "responseJsonSchema")
        .or_else(|| field(gc, "_responseJsonSchema"))
        .or_else(|| field(gc, "responseSchema"))
}

/// The documented token estimate of a generateContent request body.
pub fn estimate_tokens(request: &Value) -> u64 {
    let mut chars = 0u64;
    if let Some(contents) = field(request, "contents").and_then(Value::as_array) {
        for c in contents {
            chars += text_chars(Some(c));
        }
    }
    chars += text_chars(field(request, "systemInstruction"));
    if let Some(schema) = schema_of(request) {
        chars += schema.to_string().chars().count() as u64;
    }
    chars.div_ceil(4)
}

fn content_hash(request: &Value) -> u64 {
    let mut hasher = Sha256::new();
    for part in [
        field(request, "contents"),
        field(request, "systemInstruction"),
        schema_of(request),
    ] {
        hasher.update(part.map(Value::to_string).unwrap_or_default().as_bytes());
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

fn check_contents(request: &Value) -> Result<(), ErrorReply> {
    let contents = match field(request, "contents") {
        None | Some(Value::Null) => {
            return Err(errors::invalid_argument(
                "* GenerateContentRequest.contents: contents is not specified\n",
            ))
        }
        Some(c) => c,
    };
    let Some(list) = contents.as_array() else {
        return Err(errors::invalid_payload(
            &format!("Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), {contents}"),
            Some("contents"),
        ));
    };
    if list.is_empty() {
        return Err(errors::invalid_argument(
            "* GenerateContentRequest.contents: contents is not specified\n",
        ));
    }
    for (i, c) in list.iter().enumerate() {
        let parts = field(c, "parts").and_then(Value::as_array);
        if parts.is_none_or(|p| p.is_empty()) {
            return Err(errors::invalid_argument(&format!(
                "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
            )));
        }
        if let Some(role) = field(c, "role").and_then(Value::as_str) {
            if !role.is_empty() && role != "user" && role != "model" {
                return Err(errors::invalid_argument(&format!(
                    "Please use a valid role: user, model. (got {role:?} in contents[{i}])"
                )));
            }
        }
    }
    Ok(())
}

fn check_generation_config(
    request: &Value,
    model: &ModelConfig,
) -> Result<(bool, Option<i64>), ErrorReply> {
    let Some(gc) = field(request, "generationConfig") else {
        return Ok((true, None));
    };
    if !gc.is_object() {
        return Err(errors::invalid_payload(
            &format!("Invalid value at 'generation_config' (type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig), {gc}"),
            Some("generation_config"),
        ));
    }
    check_known(gc, GENERATION_CONFIG_FIELDS, Some("generation_config"))?;
    for (name, snake) in [
        ("responseJsonSchema", "response_json_schema"),
        ("responseSchema", "response_schema"),
    ] {
        if let Some(schema) = field(gc, name) {
            if !schema.is_object() {
                return Err(errors::invalid_payload(
                    &format!("Invalid value at 'generation_config.{snake}' (type.googleapis.com/google.protobuf.Value), {schema}"),
                    Some(&format!("generation_config.{snake}")),
                ));
            }
        }
    }
    let mime = field(gc, "responseMimeType")
        .and_then(Value::as_str)
        .unwrap_or("");
    if mime == "application/json" && schema_of(request).is_none() {
        return Err(errors::invalid_argument(
            "* GenerateContentRequest.generation_config.response_json_schema: a response schema object is required when response_mime_type is application/json.\n",
        ));
    }
    if !mime.is_empty()
        && mime != "application/json"
        && mime != "text/plain"
        && mime != "text/x.enum"
    {
        return Err(errors::invalid_argument(&format!(
            "* GenerateContentRequest.generation_config.response_mime_type: allowed mimetypes are `text/plain`, `application/json`, `application/xml`, `application/yaml` and `text/x.enum`. (got {mime:?})\n"
        )));
    }
    if let Some(max) = field(gc, "maxOutputTokens") {
        if max.as_u64().is_none_or(|m| m == 0) {
            return Err(errors::invalid_payload(
                &format!(
                    "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), {max}"
                ),
                Some("generation_config.max_output_tokens"),
            ));
        }
    }
    let mut thinking = true;
    let mut bound = None;
    if let Some(tc) = field(gc, "thinkingConfig") {
        bound = match field(tc, "thinkingLevel").and_then(Value::as_str) {
            Some("minimal") => Some(0),
            Some("low") => Some(1_024),
            _ => None,
        };
        check_known(
            tc,
            THINKING_CONFIG_FIELDS,
            Some("generation_config.thinking_config"),
        )?;
        if let Some(budget) = field(tc, "thinkingBudget") {
            let Some(b) = budget.as_i64() else {
                return Err(errors::invalid_payload(
                    &format!("Invalid value at 'generation_config.thinking_config.thinking_budget' (TYPE_INT32), {budget}"),
                    Some("generation_config.thinking_config.thinking_budget"),
                ));
            };
            if b != -1 && !(model.min_thinking_budget..=model.max_thinking_budget).contains(&b) {
                return Err(errors::invalid_argument(&format!(
                    "The thinking budget ({b}) is invalid. Use -1 (dynamic) or a value from {} to {} for models/{}.",
                    model.min_thinking_budget, model.max_thinking_budget, model.name
                )));
            }
            thinking = b != 0;
            bound = (b != -1).then_some(b);
        }
    }
    Ok((thinking, bound))
}

/// Checks a generateContent body as the real API does and extracts what the answer needs.
pub fn parse_generate_request(
    body: &[u8],
    model: &ModelConfig,
) -> Result<GenerateRequest, ErrorReply> {
    let request = parse_json(body)?;
    check_known(&request, TOP_LEVEL_FIELDS, None)?;
    check_contents(&request)?;
    if let Some(si) = field(&request, "systemInstruction") {
        if field(si, "parts").and_then(Value::as_array).is_none() {
            return Err(errors::invalid_argument(
                "* GenerateContentRequest.system_instruction.parts: parts must be a list of parts.\n",
            ));
        }
    }
    let (thinking, thinking_bound) = check_generation_config(&request, model)?;
    let gc = field(&request, "generationConfig");
    let max_output_tokens = gc
        .and_then(|gc| field(gc, "maxOutputTokens"))
        .and_then(Value::as_u64);
    let thinking_config = gc.and_then(|gc| field(gc, "thinkingConfig"));
    let temperature_sent = gc.and_then(|gc| field(gc, "temperature")).is_some();
    let thinking_budget_sent = thinking_config
        .and_then(|tc| field(tc, "thinkingBudget"))
        .is_some();
    let thinking_level_sent = thinking_config
        .and_then(|tc| field(tc, "thinkingLevel"))
        .is_some();
    let seed = gc.and_then(|gc| field(gc, "seed")).and_then(Value::as_i64);
    Ok(GenerateRequest {
        temperature_sent,
        thinking_budget_sent,
        thinking_level_sent,
        seed,
        tokens: estimate_tokens(&request),
        content_hash: content_hash(&request),
        schema: schema_of(&request).cloned(),
        max_output_tokens,
        thinking,
        thinking_bound,
    })
}

/// Checks a countTokens body (`contents`, or a whole `generateContentRequest`) and estimates
/// its tokens.
pub fn count_tokens_request(body: &[u8], model: &ModelConfig) -> Result<u64, ErrorReply> {
    let request = parse_json(body)?;
    check_known(&request, &["contents", "generateContentRequest"], None)?;
    if let Some(inner) = field(&request, "generateContentRequest") {
        let bytes = inner.to_string();
        return parse_generate_request(bytes.as_bytes(), model).map(|r| r.tokens);
    }
    check_contents(&request)?;
    Ok(estimate_tokens(&request))
}

/// The countTokens answer.
pub fn count_tokens_body(tokens: u64) -> Value {
    json!({
        "totalTokens": tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]
    })
}

/// The `GET models/{model}` answer.
pub fn model_body(model: &ModelConfig) -> Value {
    json!({
        "name": format!("models/{}", model.name),
        "version": "001",
        "displayName": display_name(&model.name),
        "description": "Simulated model served by fintel-sim.",
        "inputTokenLimit": model.input_token_limit,
        "outputTokenLimit": model.output_token_limit,
        "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": model.max_thinking_budget > 0
    })
}

fn display_name(id: &str) -> String {
    id.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a generateContent success ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Normal answer.
    Stop,
    /// Output cut at the token limit.
    MaxTokens,
    /// Refused by the safety filter: no content.
    Safety,
}

/// A 23-character response id like the real ones.
pub fn response_id(hash: u64, attempt: u32) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut v = crate::rng::mix(hash ^ u64::from(attempt).rotate_left(32));
    let mut w = crate::rng::mix(v);
    let mut out = String::with_capacity(23);
    for i in 0..23 {
        if i == 10 {
            v = w;
            w = crate::rng::mix(w);
        }
        out.push(ALPHABET[(v & 63) as usize] as char);
        v >>= 6;
    }
    out
}

/// The 200 body of a prompt Gemini blocks before generating: `promptFeedback.blockReason` and
/// no candidates (the shape recorded in vercel/ai#19758).
pub fn blocked_prompt_body(model: &str, prompt_tokens: u64) -> Value {
    json!({
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens},
        "modelVersion": model
    })
}

/// A generateContent 200 body.
pub fn success_body(
    model: &str,
    text: Option<&str>,
    finish: Finish,
    prompt_tokens: u64,
    thoughts_tokens: u64,
    response_id: &str,
) -> Value {
    let output_tokens = text
        .map(|t| (t.chars().count() as u64).div_ceil(4))
        .unwrap_or(0);
    let mut candidate = match (finish, text) {
        (Finish::Safety, _) | (_, None) => json!({
            "finishReason": "SAFETY",
            "index": 0,
            "safetyRatings": [
                {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true},
                {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"}
            ]
        }),
        (_, Some(text)) => json!({
            "content": {"parts": [{"text": text}], "role": "model"},
            "finishReason": if finish == Finish::MaxTokens { "MAX_TOKENS" } else { "STOP" },
            "index": 0
        }),
    };
    if candidate.get("content").is_none() {
        candidate["finishReason"] = json!("SAFETY");
    }
    let mut usage = json!({
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": output_tokens,
        "totalTokenCount": prompt_tokens + output_tokens + thoughts_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}]
    });
    if thoughts_tokens > 0 {
        usage["thoughtsTokenCount"] = json!(thoughts_tokens);
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": response_id
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ModelConfig {
        ModelConfig::default()
    }

    fn err_message(body: &str) -> String {
        let (code, v) = parse_generate_request(body.as_bytes(), &model()).unwrap_err();
        format!(
            "{} {}",
            code.as_u16(),
            v["error"]["message"].as_str().unwrap()
        )
    }

    #[test]
    fn tokens_are_characters_over_four_rounded_up() {
        let body = r#"{"contents":[{"role":"user","parts":[{"text":"abcde"},{"text":"fgh"}]}],"systemInstruction":{"parts":[{"text":"ij"}]}}"#;
        let r = parse_generate_request(body.as_bytes(), &model()).unwrap();
        assert_eq!(r.tokens, 3);
        let with_schema = r#"{"contents":[{"parts":[{"text":"abcd"}]}],"generationConfig":{"responseMimeType":"application/json","responseJsonSchema":{"type":"string"}}}"#;
        let r = parse_generate_request(with_schema.as_bytes(), &model()).unwrap();
        // 4 + len({"type":"string"}) = 4 + 17 = 21 chars -> 6 tokens.
        assert_eq!(r.tokens, 6);
    }

    #[test]
    fn malformed_requests_get_the_real_messages() {
        assert!(err_message("not json").starts_with("400 Invalid JSON payload received."));
        assert!(err_message("[1]").contains("Root element must be a message"));
        assert_eq!(
            err_message(r#"{"contents":[{"parts":[{"text":"a"}]}],"prompt":"x"}"#),
            "400 Invalid JSON payload received. Unknown name \"prompt\": Cannot find field."
        );
        assert!(err_message(r#"{"contents":[]}"#).contains("contents is not specified"));
        assert!(err_message(r#"{}"#).contains("contents is not specified"));
        assert!(err_message(r#"{"contents":[{"parts":[]}]}"#).contains("parts must not be empty"));
        assert!(err_message(r#"{"contents":[{"parts":[{"text":"a"}]}],"generationConfig":{"responseMimeType":"application/json"}}"#).contains("response schema object is required"));
        assert!(err_message(r#"{"contents":[{"parts":[{"text":"a"}]}],"generationConfig":{"responseMimeType":"application/json","responseJsonSchema":"x"}}"#).contains("Invalid value at 'generation_config.response_json_schema'"));
        assert!(err_message(r#"{"contents":[{"parts":[{"text":"a"}]}],"generationConfig":{"thinkingConfig":{"thinkingBudget":99999}}}"#).contains("The thinking budget (99999) is invalid"));
        assert!(err_message(r#"{"contents":[{"parts":[{"text":"a"}]}],"generationConfig":{"thinkingConfig":{"thinkingBudget":"lots"}}}"#).contains("thinking_budget"));
        assert!(err_message(
            r#"{"contents":[{"parts":[{"text":"a"}]}],"generationConfig":{"temprature":1}}"#
        )
        .contains("Unknown name \"temprature\" at 'generation_config'"));
    }

    #[test]
    fn snake_case_fields_are_accepted_and_dynamic_budget_is_valid() {
        let body = r#"{"contents":[{"parts":[{"text":"a"}]}],"system_instruction":{"parts":[{"text":"b"}]},"generation_config":{"response_mime_type":"application/json","response_json_schema":{"type":"object"},"thinking_config":{"thinking_budget":-1}}}"#;
        let r = parse_generate_request(body.as_bytes(), &model()).unwrap();
        assert!(r.schema.is_some());
        assert!(r.thinking);
    }

    #[test]
    fn content_hash_ignores_generation_settings_but_not_text() {
        let a = parse_generate_request(
            br#"{"contents":[{"parts":[{"text":"a"}]}],"generationConfig":{"temperature":0.1}}"#,
            &model(),
        )
        .unwrap();
        let b = parse_generate_request(br#"{"contents":[{"parts":[{"text":"a"}]}]}"#, &model())
            .unwrap();
        let c = parse_generate_request(br#"{"contents":[{"parts":[{"text":"b"}]}]}"#, &model())
            .unwrap();
        assert_eq!(a.content_hash, b.content_hash);
        assert_ne!(a.content_hash, c.content_hash);
    }

    #[test]
    fn count_tokens_accepts_both_request_forms() {
        let m = model();
        assert_eq!(
            count_tokens_request(br#"{"contents":[{"parts":[{"text":"abcdefgh"}]}]}"#, &m).unwrap(),
            2
        );
        assert_eq!(count_tokens_request(br#"{"generateContentRequest":{"model":"models/gemini-2.5-flash","contents":[{"parts":[{"text":"abcdefgh"}]}]}}"#, &m).unwrap(), 2);
        assert!(count_tokens_request(br#"{"foo":1}"#, &m).is_err());
    }

    #[test]
    fn response_ids_look_real_and_differ() {
        let a = response_id(1, 1);
        assert_eq!(a.len(), 23);
        assert_ne!(a, response_id(1, 2));
    }
}
