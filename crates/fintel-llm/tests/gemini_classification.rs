//! Every real Gemini body in the shared fixtures, and synthetic bodies for the rules the
//! fixtures do not cover, land in the row of SPEC.md section 3 they belong to.

use std::path::Path;
use std::time::Duration;

use fintel_llm::{
    classify_gemini, classify_openai, parse_gemini_success, validate_output, CallError, Usage,
};
use serde_json::{json, Value};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The HTTP status a Gemini error body was served with: its own `error.code`.
fn status_of(body: &str) -> u16 {
    let value: Value = serde_json::from_str(body).expect("fixture is JSON");
    value["error"]["code"].as_u64().expect("error.code") as u16
}

fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn check_error_fixture(name: &str, error: &CallError) {
    match name {
        "400-invalid-argument-api-key-invalid.issue-continue-9330.json"
        | "firebase-googleai-unary-failure-api-key.json" => match error {
            CallError::KeyUnusable { reason, .. } => {
                assert!(reason.contains("API_KEY_INVALID"), "{reason}");
                assert!(reason.contains("API key not valid"), "{reason}");
            }
            other => panic!("{name}: {other:?}"),
        },
        "400-invalid-argument-input-token-count-exceeds-max.issue-gemini-cli-4231.json" => {
            match error {
                CallError::ContextTooLong {
                    max_tokens,
                    message,
                } => {
                    assert_eq!(*max_tokens, Some(1_048_576));
                    assert!(message.contains("3475108"), "{message}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        "400-invalid-argument-penalty-not-enabled.vercel-issue-8943.json" => match error {
            CallError::Configuration { message } => {
                assert_eq!(message, "HTTP 400, INVALID_ARGUMENT: Penalty is not enabled for models/gemini-2.5-flash")
            }
            other => panic!("{name}: {other:?}"),
        },
        "403-permission-denied-api-key-leaked.issue-continue-10513.json" => match error {
            CallError::KeyUnusable { reason, .. } => {
                assert!(reason.starts_with("key reported as leaked"), "{reason}")
            }
            other => panic!("{name}: {other:?}"),
        },
        "429-resource-exhausted-input-tokens-per-minute-free-tier.issue-roo-code-3883.json" => {
            match error {
                CallError::InputTokensPerMinute {
                    limit_tokens,
                    retry_after,
                    message,
                    ..
                } => {
                    assert_eq!(*limit_tokens, Some(250_000));
                    assert_eq!(*retry_after, Some(Duration::from_secs(26)));
                    assert!(
                        message.contains("GenerateContentInputTokensPerModelPerMinute-FreeTier"),
                        "{message}"
                    );
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        "429-resource-exhausted-per-day-free-tier.page-oppl-ai.json" => match error {
            CallError::DailyQuotaExhausted { message, .. } => {
                assert!(message.starts_with(
                    "GenerateRequestsPerDayPerProjectPerModel-FreeTier (limit 250, model gemini-2.5-flash) exceeded"
                ), "{message}");
            }
            other => panic!("{name}: {other:?}"),
        },
        "503-unavailable-model-overloaded.issue-continue-8308.json" => match error {
            CallError::Transient {
                message,
                reached_server,
            } => {
                assert!(*reached_server);
                assert!(message.contains("The model is overloaded"), "{message}");
            }
            other => panic!("{name}: {other:?}"),
        },
        "firebase-googleai-unary-failure-generativelanguage-api-not-enabled.json" => match error {
            CallError::KeyUnusable { reason, .. } => {
                assert!(
                    reason.starts_with("Generative Language API not enabled for project 12345678"),
                    "{reason}"
                );
                assert!(reason.contains("console.developers.google.com"), "{reason}");
            }
            other => panic!("{name}: {other:?}"),
        },
        "firebase-googleai-unary-failure-unknown-model.json" => match error {
            CallError::ModelUnavailable { message } => {
                assert!(
                    message.contains("models/gemini-5.0-flash is not found"),
                    "{message}"
                )
            }
            other => panic!("{name}: {other:?}"),
        },
        "firebase-vertexai-unary-failure-quota-exceeded-429-legacy.json" => match error {
            CallError::RateLimited {
                retry_after,
                message,
                ..
            } => {
                assert_eq!(*retry_after, None);
                assert!(
                    message.contains("GenerateContentRequestsPerMinutePerProjectPerRegion"),
                    "{message}"
                );
            }
            other => panic!("{name}: {other:?}"),
        },
        _ => panic!("fixture {name} has no expected classification: add it to this test"),
    }
}

#[test]
fn every_error_fixture_lands_in_its_row() {
    let dir = fintel_fixtures::fixtures_or_skip!().join("gemini/errors");
    let names = list(&dir);
    assert!(names.len() >= 11, "{names:?}");
    for name in &names {
        let body = read(&dir.join(name));
        let error = classify_gemini(status_of(&body), &body, &[]);
        check_error_fixture(name, &error);
    }
}

#[test]
fn array_shaped_error_bodies_classify_like_plain_ones() {
    // Streaming endpoints and the OpenAI-compatibility endpoint wrap the same object in [ ].
    let dir = fintel_fixtures::fixtures_or_skip!().join("gemini/errors");
    for name in list(&dir) {
        let body = read(&dir.join(&name));
        let wrapped = format!("[{body}]");
        let status = status_of(&body);
        let plain = classify_gemini(status, &body, &[]);
        assert_eq!(classify_gemini(status, &wrapped, &[]), plain, "{name}");
        // Gemini's OpenAI-compatibility endpoint answers in this shape; the OpenAI client
        // must classify it exactly as the native client does.
        assert_eq!(
            classify_openai(status, &wrapped, None, &[]),
            plain,
            "{name} via openai"
        );
        check_error_fixture(&name, &plain);
    }
}

#[test]
fn every_success_fixture_parses_or_lands_in_its_row() {
    let dir = fintel_fixtures::fixtures_or_skip!().join("gemini/success");
    let names = list(&dir);
    assert!(names.len() >= 7, "{names:?}");
    for name in &names {
        let body = read(&dir.join(name));
        let result = parse_gemini_success(&body);
        match name.as_str() {
            "firebase-googleai-streaming-success-basic-reply-short.txt" => {
                let g = result.expect(name);
                assert_eq!(g.text, "The capital of Wyoming is **Cheyenne**.\n");
                assert_eq!(
                    g.usage,
                    Usage {
                        prompt_tokens: 7,
                        output_tokens: 10,
                        thinking_tokens: 0
                    }
                );
                assert_eq!(g.finish_reason, "STOP");
                assert_eq!(g.model_version.as_deref(), Some("gemini-2.0-flash"));
            }
            "firebase-googleai-unary-failure-finish-reason-safety.json" => match result {
                Err(CallError::Refused { reason }) => {
                    assert!(reason.contains("finishReason SAFETY"), "{reason}");
                    assert!(
                        !reason.contains("Safety error incoming"),
                        "refusals carry no model text: {reason}"
                    );
                }
                other => panic!("{name}: {other:?}"),
            },
            "firebase-googleai-unary-success-basic-reply-long.json" => {
                let g = result.expect(name);
                assert!(g.text.starts_with("Making professional-quality coffee"));
                assert!(g
                    .text
                    .ends_with("**Pour Over (e.g., Hario V60, Chemex):**\n"));
                assert_eq!(
                    g.usage,
                    Usage {
                        prompt_tokens: 9,
                        output_tokens: 1612,
                        thinking_tokens: 0
                    }
                );
            }
            "firebase-googleai-unary-success-basic-reply-short.json" => {
                let g = result.expect(name);
                assert_eq!(
                    g.text,
                    "Google's headquarters, also known as the Googleplex, is located in **Mountain View, California**.\n"
                );
                assert_eq!(
                    g.usage,
                    Usage {
                        prompt_tokens: 7,
                        output_tokens: 22,
                        thinking_tokens: 0
                    }
                );
                assert_eq!(g.latency, Duration::ZERO);
            }
            "firebase-googleai-unary-success-thinking-reply-thought-summary.json" => {
                let g = result.expect(name);
                assert_eq!(g.text, "Mountain View", "thought parts are skipped");
                assert_eq!(
                    g.usage,
                    Usage {
                        prompt_tokens: 14,
                        output_tokens: 2,
                        thinking_tokens: 24
                    }
                );
                assert_eq!(g.model_version.as_deref(), Some("gemini-2.5-flash"));
            }
            "firebase-vertexai-unary-success-constraint-decoding-json.json" => {
                let g = result.expect(name);
                assert_eq!(g.usage, Usage::default(), "no usageMetadata in this body");
                assert_eq!(g.model_version, None);
                let schema = json!({"type": "array", "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "colors": {"type": "array", "items": {"type": "string"}}},
                    "required": ["name", "colors"]
                }});
                let value =
                    validate_output(&schema, &g.text).expect("the JSON-mode answer validates");
                assert_eq!(value[2]["name"], "Jakarta Noon");
            }
            "vercel-google-text-gemini-3-pro-preview.json" => {
                let g = result.expect(name);
                assert!(g.text.starts_with("There are **3** r's in strawberry."));
                assert_eq!(
                    g.usage,
                    Usage {
                        prompt_tokens: 9,
                        output_tokens: 28,
                        thinking_tokens: 244
                    }
                );
                assert_eq!(g.model_version.as_deref(), Some("gemini-3-pro-preview"));
            }
            _ => panic!("fixture {name} has no expected result: add it to this test"),
        }
    }
}

// --- synthetic bodies for rules the fixtures do not cover ------------------------------------

fn quota_violation(quota_id: &str, value: &str) -> Value {
    json!({
        "quotaMetric": "generativelanguage.googleapis.com/x",
        "quotaId": quota_id,
        "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
        "quotaValue": value
    })
}

fn quota_body(violations: Vec<Value>, retry_delay: Option<&str>) -> String {
    let mut details = vec![json!({
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": violations
    })];
    if let Some(delay) = retry_delay {
        details.push(
            json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}),
        );
    }
    json!({"error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "status": "RESOURCE_EXHAUSTED",
        "details": details
    }})
    .to_string()
}

const PER_DAY: &str = "GenerateRequestsPerDayPerProjectPerModel-FreeTier";
const PER_MINUTE: &str = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier";
const INPUT_TPM: &str = "GenerateContentInputTokensPerModelPerMinute-FreeTier";

#[test]
fn per_day_wins_over_input_tokens_which_wins_over_per_minute() {
    let all_three = quota_body(
        vec![
            quota_violation(PER_MINUTE, "10"),
            quota_violation(INPUT_TPM, "250000"),
            quota_violation(PER_DAY, "250"),
        ],
        Some("26s"),
    );
    match classify_gemini(429, &all_three, &[]) {
        CallError::DailyQuotaExhausted { message, .. } => {
            assert!(message.starts_with(PER_DAY), "{message}")
        }
        other => panic!("{other:?}"),
    }

    let tokens_and_minute = quota_body(
        vec![
            quota_violation(PER_MINUTE, "10"),
            quota_violation(INPUT_TPM, "250000"),
        ],
        Some("1.5s"),
    );
    assert!(matches!(
        classify_gemini(429, &tokens_and_minute, &[]),
        CallError::InputTokensPerMinute { limit_tokens: Some(250_000), retry_after: Some(d), .. }
            if d == Duration::from_millis(1500)
    ));

    let minute_only = quota_body(vec![quota_violation(PER_MINUTE, "10")], Some("1.5s"));
    match classify_gemini(429, &minute_only, &[]) {
        CallError::RateLimited {
            retry_after,
            message,
            ..
        } => {
            assert_eq!(retry_after, Some(Duration::from_millis(1500)));
            assert!(message.starts_with(PER_MINUTE), "{message}");
        }
        other => panic!("{other:?}"),
    }

    let day_and_minute = quota_body(
        vec![
            quota_violation(PER_MINUTE, "10"),
            quota_violation(PER_DAY, "20"),
        ],
        None,
    );
    assert!(matches!(
        classify_gemini(429, &day_and_minute, &[]),
        CallError::DailyQuotaExhausted { .. }
    ));
}

#[test]
fn a_zero_limit_is_a_configuration_problem_naming_the_model_and_the_limit() {
    // "limit: 0": the model has no free quota on this tier. Waiting for a reset would wait for
    // ever, so it stops the batch (exit 4) like any configuration problem.
    for quota_id in [
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
    ] {
        let body = quota_body(vec![quota_violation(quota_id, "0")], None);
        match classify_gemini(429, &body, &[]) {
            CallError::Configuration { message } => {
                assert!(message.contains("limit 0"), "{message}");
                assert!(message.contains(quota_id), "{message}");
                assert!(message.contains("no quota"), "{message}");
                assert!(message.contains("gemini-2.5-flash"), "{message}");
            }
            other => panic!("{quota_id}: {other:?}"),
        }
    }
}

#[test]
fn a_429_without_details_or_json_is_per_minute() {
    let bare = r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#;
    assert_eq!(
        classify_gemini(429, bare, &[]),
        CallError::RateLimited {
            retry_after: None,
            message: "RESOURCE_EXHAUSTED: Resource has been exhausted (e.g. check quota).".into(),
            project: None,
        }
    );
    match classify_gemini(429, "<html><body>Too Many Requests</body></html>", &[]) {
        CallError::RateLimited {
            retry_after: None,
            message,
            ..
        } => {
            assert!(
                message.contains("not a JSON error") && message.contains("Too Many Requests"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_legacy_429_naming_a_per_day_limit_is_a_spent_day() {
    let body = json!({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
            "metadata": {"quota_limit": "GenerateRequestsPerDayPerProjectPerModel"}}]}});
    assert!(matches!(
        classify_gemini(429, &body.to_string(), &[]),
        CallError::DailyQuotaExhausted { .. }
    ));
}

#[test]
fn server_errors_are_transient_and_unparseable_bodies_go_by_status() {
    for status in [500u16, 502, 503, 504] {
        let body = json!({"error": {"code": status, "message": "An internal error has occurred.", "status": "INTERNAL"}});
        assert!(matches!(
            classify_gemini(status, &body.to_string(), &[]),
            CallError::Transient {
                reached_server: true,
                ..
            }
        ));
        assert!(matches!(
            classify_gemini(status, "<html>Bad Gateway</html>", &[]),
            CallError::Transient {
                reached_server: true,
                ..
            }
        ));
    }
    assert!(matches!(
        classify_gemini(401, "", &[]),
        CallError::KeyUnusable { .. }
    ));
    assert!(matches!(
        classify_gemini(403, "Forbidden", &[]),
        CallError::KeyUnusable { .. }
    ));
    assert!(matches!(
        classify_gemini(404, "Not Found", &[]),
        CallError::Configuration { .. }
    ));
    assert!(matches!(
        classify_gemini(400, "", &[]),
        CallError::Configuration { .. }
    ));
    match classify_gemini(301, "", &[]) {
        CallError::Configuration { message } => {
            assert!(message.contains("check the base URL"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_400s_401_and_schema_rejections() {
    let unauth = json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}});
    assert!(matches!(
        classify_gemini(401, &unauth.to_string(), &[]),
        CallError::KeyUnusable { .. }
    ));
    let schema = json!({"error": {"code": 400, "message": "Invalid JSON payload received. Unknown name \"foo\" at 'generation_config.response_json_schema'", "status": "INVALID_ARGUMENT"}});
    match classify_gemini(400, &schema.to_string(), &[]) {
        CallError::Configuration { message } => {
            assert!(message.contains("response_json_schema"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let expired = json!({"error": {"code": 400, "message": "API key expired. Please renew the API key.", "status": "INVALID_ARGUMENT"}});
    assert!(matches!(
        classify_gemini(400, &expired.to_string(), &[]),
        CallError::KeyUnusable { .. }
    ));
    let location = json!({"error": {"code": 400, "message": "User location is not supported for the API use.", "status": "FAILED_PRECONDITION"}});
    assert!(matches!(
        classify_gemini(400, &location.to_string(), &[]),
        CallError::Configuration { .. }
    ));
}

#[test]
fn keys_echoed_in_error_bodies_are_masked() {
    let secret = "AIzaSyD-abcdefghijklmnopqrstuvwxyz012345";
    let body = json!({"error": {"code": 400, "message": format!("API key not valid: {secret}"), "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}});
    match classify_gemini(400, &body.to_string(), &[secret]) {
        CallError::KeyUnusable { reason, .. } => {
            assert!(!reason.contains("abcdefghij"), "{reason}");
            assert!(reason.contains("AIza...2345"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let html = format!("<html>bad request for key={secret}</html>");
    let error = classify_gemini(418, &html, &[secret]);
    assert!(!format!("{error}").contains("abcdefghij"), "{error}");
}

fn candidate_body(finish: &str, text: &str) -> String {
    json!({
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": finish, "index": 0}],
        "usageMetadata": {"promptTokenCount": 1200, "candidatesTokenCount": 8192, "thoughtsTokenCount": 300, "totalTokenCount": 9692},
        "modelVersion": "gemini-2.5-flash"
    })
    .to_string()
}

#[test]
fn max_tokens_is_truncated_with_usage() {
    match parse_gemini_success(&candidate_body("MAX_TOKENS", "{\"verdict\": \"bu")) {
        Err(CallError::Truncated { message, usage }) => {
            assert!(message.contains("MAX_TOKENS"), "{message}");
            assert_eq!(
                usage,
                Usage {
                    prompt_tokens: 1200,
                    output_tokens: 8192,
                    thinking_tokens: 300
                }
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn filter_finish_reasons_and_blocked_prompts_are_refusals() {
    for finish in [
        "SAFETY",
        "RECITATION",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
    ] {
        match parse_gemini_success(&candidate_body(finish, "")) {
            Err(CallError::Refused { reason }) => assert!(reason.contains(finish), "{reason}"),
            other => panic!("{finish}: {other:?}"),
        }
    }
    let blocked = json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 90000, "totalTokenCount": 90000}, "modelVersion": "gemini-2.5-flash"});
    match parse_gemini_success(&blocked.to_string()) {
        Err(CallError::Refused { reason }) => {
            assert_eq!(
                reason,
                "the prompt was blocked (blockReason PROHIBITED_CONTENT)"
            )
        }
        other => panic!("{other:?}"),
    }
    let rated = json!({"candidates": [{"finishReason": "SAFETY", "safetyRatings": [
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true},
        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]}]});
    match parse_gemini_success(&rated.to_string()) {
        Err(CallError::Refused { reason }) => {
            assert!(
                reason.contains("HARM_CATEGORY_DANGEROUS_CONTENT HIGH (blocked)"),
                "{reason}"
            );
            assert!(!reason.contains("HARASSMENT"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn odd_success_bodies_are_bad_output() {
    for (body, expected) in [
        (candidate_body("OTHER", "x"), "finishReason OTHER"),
        (
            candidate_body("MALFORMED_FUNCTION_CALL", ""),
            "finishReason MALFORMED_FUNCTION_CALL",
        ),
        (candidate_body("STOP", "   "), "returned no text"),
        (json!({"candidates": []}).to_string(), "no candidates"),
        (
            "<html>captive portal</html>".to_string(),
            "not a Gemini response",
        ),
        (String::new(), "not a Gemini response"),
    ] {
        match parse_gemini_success(&body) {
            Err(CallError::BadOutput { reason, .. }) => {
                assert!(reason.contains(expected), "{reason}")
            }
            other => panic!("{body}: {other:?}"),
        }
    }
}

#[test]
fn an_error_inside_a_200_stream_is_classified() {
    let body = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"{\"}]}}]}\n\n\
                data: {\"error\": {\"code\": 503, \"message\": \"The model is overloaded.\", \"status\": \"UNAVAILABLE\"}}\n\n";
    assert!(matches!(
        parse_gemini_success(body),
        Err(CallError::Transient {
            reached_server: true,
            ..
        })
    ));
}

/// The Google Cloud project each real body names as its consumer (`ErrorInfo` metadata
/// `consumer: projects/NNN`), or `None`: quotas are per project, so this is how fintel learns
/// that two keys share one.
fn expected_project(name: &str) -> Option<&'static str> {
    match name {
        "firebase-googleai-unary-failure-generativelanguage-api-not-enabled.json" => {
            Some("12345678")
        }
        "firebase-vertexai-unary-failure-quota-exceeded-429-legacy.json" => Some("348715329010"),
        "400-invalid-argument-api-key-invalid.issue-continue-9330.json"
        | "400-invalid-argument-input-token-count-exceeds-max.issue-gemini-cli-4231.json"
        | "400-invalid-argument-penalty-not-enabled.vercel-issue-8943.json"
        | "403-permission-denied-api-key-leaked.issue-continue-10513.json"
        | "429-resource-exhausted-input-tokens-per-minute-free-tier.issue-roo-code-3883.json"
        | "429-resource-exhausted-per-day-free-tier.page-oppl-ai.json"
        | "503-unavailable-model-overloaded.issue-continue-8308.json"
        | "firebase-googleai-unary-failure-api-key.json"
        | "firebase-googleai-unary-failure-unknown-model.json" => None,
        _ => panic!("fixture {name} has no expected project: add it to this test"),
    }
}

#[test]
fn every_error_fixture_names_its_project_or_none() {
    let dir = fintel_fixtures::fixtures_or_skip!().join("gemini/errors");
    for name in list(&dir) {
        let body = read(&dir.join(&name));
        let status = status_of(&body);
        let error = classify_gemini(status, &body, &[]);
        assert_eq!(
            error.project(),
            expected_project(&name),
            "{name}: {error:?}"
        );
        // The array form of streaming endpoints carries the same project.
        let wrapped = classify_gemini(status, &format!("[{body}]"), &[]);
        assert_eq!(wrapped.project(), expected_project(&name), "{name} in [ ]");
    }
}

#[test]
fn the_legacy_per_minute_429_carries_its_project_on_the_error() {
    let dir = fintel_fixtures::fixtures_or_skip!().join("gemini/errors");
    let body = read(&dir.join("firebase-vertexai-unary-failure-quota-exceeded-429-legacy.json"));
    match classify_gemini(429, &body, &[]) {
        CallError::RateLimited { project, .. } => {
            assert_eq!(project.as_deref(), Some("348715329010"))
        }
        other => panic!("{other:?}"),
    }
    let body =
        read(&dir.join("firebase-googleai-unary-failure-generativelanguage-api-not-enabled.json"));
    match classify_gemini(403, &body, &[]) {
        CallError::KeyUnusable { project, .. } => assert_eq!(project.as_deref(), Some("12345678")),
        other => panic!("{other:?}"),
    }
}

/// A per-day 429 in today's shape (QuotaFailure) plus an ErrorInfo naming the consumer, as the
/// simulator sends when asked to: still a spent day, now with its project.
#[test]
fn a_per_day_429_with_a_consumer_is_a_spent_day_of_that_project() {
    let body = json!({"error": {"code": 429, "message": "You exceeded your current quota", "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier", "quotaValue": "20"}]},
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
             "domain": "googleapis.com",
             "metadata": {"service": "generativelanguage.googleapis.com", "consumer": "projects/98765"}}
        ]}})
    .to_string();
    match classify_gemini(429, &body, &[]) {
        CallError::DailyQuotaExhausted { project, .. } => {
            assert_eq!(project.as_deref(), Some("98765"))
        }
        other => panic!("{other:?}"),
    }
}

/// A consumer that is not a plain project number or id is ignored rather than stored: it
/// would become a name in the database and in messages.
#[test]
fn a_consumer_that_is_not_a_plain_project_is_ignored() {
    for consumer in [
        "projects/",
        "projects/../../etc",
        "projects/12 34",
        "project_number:348715329010",
        "projects/AIzaSyA-very-long-looking-thing-that-goes-on-and-on-and-on-past-sixty-four-chars",
    ] {
        let body = json!({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
                "metadata": {"consumer": consumer}}]}})
        .to_string();
        let error = classify_gemini(429, &body, &[]);
        assert!(matches!(error, CallError::RateLimited { .. }), "{error:?}");
        assert_eq!(error.project(), None, "{consumer}");
    }
}

/// A model the provider no longer serves is its own row, apart from other configuration
/// problems: the bodies are the ones Gemini gave for retired models (quoted in public threads).
#[test]
fn retired_and_unknown_models_are_model_unavailable() {
    let bodies = [
        (
            404,
            r#"{"error":{"code":404,"message":"models/gemini-1.5-flash is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.","status":"NOT_FOUND"}}"#,
        ),
        (
            404,
            r#"{"error":{"code":404,"message":"This model models/gemini-2.0-flash is no longer available to new users. Please update your code to use a newer model for the latest features and improvements.","status":"NOT_FOUND"}}"#,
        ),
        (
            404,
            r#"{"error":{"code":404,"message":"Gemini 1.0 Pro Vision has been deprecated on July 12, 2024. Consider switching to different model, for example gemini-1.5-flash.","status":"NOT_FOUND"}}"#,
        ),
        (
            400,
            r#"{"error":{"code":400,"message":"Gemini 1.0 Pro Vision has been deprecated on July 12, 2024. Consider switching to different model, for example gemini-1.5-flash.","status":"INVALID_ARGUMENT"}}"#,
        ),
    ];
    for (status, body) in bodies {
        match classify_gemini(status, body, &[]) {
            CallError::ModelUnavailable { message } => {
                assert!(message.contains(&format!("HTTP {status}")), "{message}");
            }
            other => panic!("{body}: {other:?}"),
        }
    }
    // A 404 for a path that is not a model stays a configuration problem (a wrong base URL).
    let path = r#"{"error":{"code":404,"message":"Method not found.","status":"NOT_FOUND"}}"#;
    assert!(matches!(
        classify_gemini(404, path, &[]),
        CallError::Configuration { .. }
    ));
}

/// The body of a model with no free quota on the project's tier, as quoted in
/// continuedev/continue#10085 (and #10066, #10573, #11652, gemini-cli#22486): the limits are 0,
/// which ProtoJSON leaves out, so the QuotaFailure violations carry no `quotaValue` and "limit:
/// 0" is only in the message.
fn limit_0_body(violations: bool) -> String {
    let model = "gemini-2.5-pro";
    let line = |metric: &str| {
        format!("* Quota exceeded for metric: generativelanguage.googleapis.com/{metric}, limit: 0, model: {model}\n")
    };
    let message = format!(
        "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/rate-limit. \n{}{}{}{}Please retry in 38.863719904s.",
        line("generate_content_free_tier_input_token_count"),
        line("generate_content_free_tier_requests"),
        line("generate_content_free_tier_requests"),
        line("generate_content_free_tier_input_token_count"),
    );
    let violation = |metric: &str, id: &str| {
        json!({
            "quotaMetric": format!("generativelanguage.googleapis.com/{metric}"),
            "quotaId": id,
            "quotaDimensions": {"location": "global", "model": model}
        })
    };
    let mut details = vec![
        json!({"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]}),
    ];
    if violations {
        details.push(
            json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                violation("generate_content_free_tier_input_token_count", INPUT_TPM),
                violation("generate_content_free_tier_requests", PER_DAY),
                violation("generate_content_free_tier_requests", PER_MINUTE),
                violation("generate_content_free_tier_input_token_count", INPUT_TPM),
            ]}),
        );
    }
    details.push(json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "38s"}));
    json!({"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED", "details": details}})
        .to_string()
}

#[test]
fn a_limit_0_in_the_message_without_quota_value_is_a_configuration_stop() {
    for violations in [true, false] {
        match classify_gemini(429, &limit_0_body(violations), &[]) {
            CallError::Configuration { message } => {
                assert!(message.contains("gemini-2.5-pro"), "{message}");
                assert!(
                    message.contains("generate_content_free_tier_requests"),
                    "{message}"
                );
                assert!(message.contains("limit 0"), "{message}");
                assert!(message.contains("no quota"), "{message}");
                if violations {
                    // The per-day quota is named by its id where the body has it.
                    assert!(message.contains(PER_DAY), "{message}");
                }
            }
            other => panic!("violations {violations}: {other:?}"),
        }
    }
    // A spent day of a real limit says its limit in the message too: still a spent day.
    let spent = json!({"error": {"code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details. \n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 20, model: gemini-2.5-flash\nPlease retry in 41.754757778s.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
            {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": PER_DAY,
             "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"}, "quotaValue": "20"}]}]}});
    assert!(matches!(
        classify_gemini(429, &spent.to_string(), &[]),
        CallError::DailyQuotaExhausted { .. }
    ));
}

/// Gemini's 400 for a response schema too complex for constrained decoding, as quoted in
/// googleapis/python-genai#660 and bethington/ghidra-mcp#440.
#[test]
fn a_schema_with_too_many_states_is_schema_too_complex() {
    let body = json!({"error": {"code": 400, "message": "The specified schema produces a constraint that has too many states for serving.  Typical causes of this error are schemas with lots of text (for example, very long property or enum names), schemas with long array length limits (especially when nested), or schemas using complex value matchers (for example, integers or numbers with minimum/maximum bounds or strings with complex formats like date-time)", "status": "INVALID_ARGUMENT"}});
    match classify_gemini(400, &body.to_string(), &[]) {
        CallError::SchemaTooComplex { message } => {
            assert!(message.contains("too many states"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // Through the compatibility endpoint too.
    let array = format!("[{body}]");
    assert!(matches!(
        classify_openai(400, &array, None, &[]),
        CallError::SchemaTooComplex { .. }
    ));
}

#[test]
fn a_model_that_takes_no_thinking_level_refuses_the_parameter() {
    // The body users quote for gemini-2.5-flash sent a thinkingLevel.
    let body = json!({"error": {"code": 400,
        "message": "Thinking level is not supported for this model.",
        "status": "INVALID_ARGUMENT"}})
    .to_string();
    match classify_gemini(400, &body, &[]) {
        CallError::ParameterRefused { param, message } => {
            assert_eq!(param, "thinkingLevel");
            assert!(message.contains("not supported"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // One level the model does not offer is not the parameter: a configuration problem.
    let level = json!({"error": {"code": 400,
        "message": "Thinking level MINIMAL is not supported for this model. Please retry with other thinking level.",
        "status": "INVALID_ARGUMENT"}})
    .to_string();
    assert!(matches!(
        classify_gemini(400, &level, &[]),
        CallError::Configuration { .. }
    ));
}
