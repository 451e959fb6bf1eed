//! Google API error bodies, shaped exactly like the ones the live Gemini API returns
//! (`{"error":{"code","message","status","details"?}}`), so a client's error classification is
//! exercised against the real shapes.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::quota::{QuotaLimitKind, QuotaRefusal};

/// A status code and a JSON body.
pub type ErrorReply = (StatusCode, Value);

const HELP_URL: &str = "https://ai.google.dev/gemini-api/docs/rate-limits";

fn error(code: StatusCode, status: &str, message: &str, details: Option<Value>) -> ErrorReply {
    let mut inner = json!({"code": code.as_u16(), "message": message, "status": status});
    if let Some(details) = details {
        inner["details"] = details;
    }
    (code, json!({ "error": inner }))
}

/// 400 INVALID_ARGUMENT without details, e.g. a bad field value.
pub fn invalid_argument(message: &str) -> ErrorReply {
    error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message, None)
}

/// 400 INVALID_ARGUMENT for JSON the API cannot map to its request message, with the
/// BadRequest field violation the API adds.
pub fn invalid_payload(message: &str, field: Option<&str>) -> ErrorReply {
    let mut violation = json!({ "description": message });
    if let Some(field) = field {
        violation["field"] = json!(field);
    }
    error(
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        message,
        Some(json!([{
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [violation]
        }])),
    )
}

/// 400 for an unknown key (ErrorInfo API_KEY_INVALID + LocalizedMessage, as live).
pub fn api_key_invalid() -> ErrorReply {
    let message = "API key not valid. Please pass a valid API key.";
    error(
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        message,
        Some(json!([
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"}
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": message
            }
        ])),
    )
}

/// 403 for a key reported as leaked.
pub fn key_leaked() -> ErrorReply {
    error(
        StatusCode::FORBIDDEN,
        "PERMISSION_DENIED",
        "Your API key was reported as leaked. Please use another API key.",
        None,
    )
}

/// 403 for a request without any key.
pub fn unregistered_caller() -> ErrorReply {
    error(
        StatusCode::FORBIDDEN,
        "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        None,
    )
}

/// 404 for a model the simulator does not serve.
pub fn model_not_found(model: &str, method: &str) -> ErrorReply {
    let message = format!(
        "models/{model} is not found for API version v1beta, or is not supported for {method}. Call ListModels to see the list of available models and their supported methods."
    );
    error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        &message,
        Some(json!([{
            "@type": "type.googleapis.com/google.rpc.DebugInfo",
            "detail": message
        }])),
    )
}

/// 404 for a path the API does not have.
pub fn no_such_method(path: &str) -> ErrorReply {
    error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        &format!("The requested URL {path} was not found on this server."),
        None,
    )
}

/// 400 when the request is larger than the model's context.
pub fn context_too_long(tokens: u64, limit: u64) -> ErrorReply {
    invalid_argument(&format!(
        "The input token count ({tokens}) exceeds the maximum number of tokens allowed ({limit})."
    ))
}

/// 400 for a response schema too complex for constrained decoding (the live message, without
/// details).
pub fn schema_too_complex() -> ErrorReply {
    invalid_argument(
        "The specified schema produces a constraint that has too many states for serving. \
         Typical causes of this error are schemas with lots of text (for example, very long \
         property or enum names), schemas with long array length limits (especially when \
         nested), or schemas using complex value matchers (for example, integers or numbers with \
         minimum/maximum bounds or strings with complex formats like date-time)",
    )
}

/// 503 "model is overloaded".
pub fn unavailable() -> ErrorReply {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
        "The model is overloaded. Please try again later.",
        None,
    )
}

/// 429 RESOURCE_EXHAUSTED with QuotaFailure violations, Help and RetryInfo, as the free tier
/// answers today.
pub fn quota_exceeded(
    refusal: &QuotaRefusal,
    model: &str,
    limits: crate::quota::QuotaLimits,
    consumer: Option<&str>,
) -> ErrorReply {
    // The message lists every violation, with its limit: the only place a limit of 0 shows.
    let mut lines = String::new();
    let violations: Vec<Value> = refusal
        .violations
        .iter()
        .map(|kind| {
            let (metric, id, value) = match kind {
                QuotaLimitKind::RequestsPerDay => (
                    "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                    u64::from(limits.requests_per_day),
                ),
                QuotaLimitKind::RequestsPerMinute => (
                    "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    u64::from(limits.requests_per_minute),
                ),
                QuotaLimitKind::InputTokensPerMinute => (
                    "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count",
                    "GenerateContentInputTokensPerModelPerMinute-FreeTier",
                    limits.input_tokens_per_minute,
                ),
            };
            let mut violation = json!({
                "quotaMetric": metric,
                "quotaId": id,
                "quotaDimensions": {"location": "global", "model": model},
            });
            // ProtoJSON leaves zero values out: a limit of 0 has no quotaValue.
            if value != 0 {
                violation["quotaValue"] = json!(value.to_string());
            }
            lines.push_str(&format!(
                "\n* Quota exceeded for metric: {metric}, limit: {value}, model: {model}"
            ));
            violation
        })
        .collect();
    let mut details = vec![
        json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": violations}),
        json!({"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas", "url": HELP_URL}]}),
        json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{}s", refusal.retry_after.as_secs())}),
    ];
    if let Some(number) = consumer {
        // The ErrorInfo of the 2024-style 429 (fixture
        // firebase-vertexai-unary-failure-quota-exceeded-429-legacy.json), naming the project.
        details.insert(
            0,
            json!({
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com",
                "metadata": {
                    "service": "generativelanguage.googleapis.com",
                    "consumer": format!("projects/{number}"),
                }
            }),
        );
    }
    error(
        StatusCode::TOO_MANY_REQUESTS,
        "RESOURCE_EXHAUSTED",
        &format!(
            "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: {HELP_URL}. To monitor your current usage, head to: https://ai.dev/rate-limit. {lines}\nPlease retry in {}s.",
            refusal.retry_after.as_secs()
        ),
        Some(Value::Array(details)),
    )
}

/// 403 SERVICE_DISABLED: the Generative Language API is not enabled in the key's project
/// (the shape of fixture firebase-googleai-unary-failure-generativelanguage-api-not-enabled.json).
pub fn service_disabled(number: Option<&str>) -> ErrorReply {
    let project = number.unwrap_or("0");
    let url = format!(
        "https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview?project={project}"
    );
    let mut metadata = json!({"service": "generativelanguage.googleapis.com"});
    if let Some(number) = number {
        metadata["consumer"] = json!(format!("projects/{number}"));
    }
    error(
        StatusCode::FORBIDDEN,
        "PERMISSION_DENIED",
        &format!(
            "Generative Language API has not been used in project {project} before or it is disabled. Enable it by visiting {url} then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our systems and retry."
        ),
        Some(json!([
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Google developers console API activation", "url": url}]},
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED", "domain": "googleapis.com", "metadata": metadata}
        ])),
    )
}
