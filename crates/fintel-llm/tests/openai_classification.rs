//! OpenAI-compatible answers (OpenAI, vLLM, Ollama, Gemini's compatibility endpoint) land in
//! the rows of SPEC.md section 3.

use std::time::Duration;

use fintel_llm::{classify_openai, parse_openai_success, CallError, Usage};
use serde_json::json;

fn openai_error(message: &str, kind: &str, code: Option<&str>) -> String {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}}).to_string()
}

#[test]
fn insufficient_quota_is_an_exhausted_key() {
    let body = openai_error(
        "You exceeded your current quota, please check your plan and billing details.",
        "insufficient_quota",
        Some("insufficient_quota"),
    );
    assert!(matches!(
        classify_openai(429, &body, None, &[]),
        CallError::KeyExhausted { .. }
    ));
    // Older bodies set only the type.
    let type_only = openai_error(
        "You exceeded your current quota.",
        "insufficient_quota",
        None,
    );
    assert!(matches!(
        classify_openai(429, &type_only, None, &[]),
        CallError::KeyExhausted { .. }
    ));
    // Gateways that sell credits answer 402.
    let credits = openai_error("Insufficient credits", "payment_required", None);
    assert!(matches!(
        classify_openai(402, &credits, None, &[]),
        CallError::KeyExhausted { .. }
    ));
}

#[test]
fn rate_limits_carry_the_header_delay() {
    let body = openai_error(
        "Rate limit reached for gpt-4o-mini in organization org-abc on requests per min (RPM): Limit 3, Used 3, Requested 1.",
        "requests",
        Some("rate_limit_exceeded"),
    );
    match classify_openai(429, &body, Some(Duration::from_secs(20)), &[]) {
        CallError::RateLimited {
            retry_after,
            message,
            ..
        } => {
            assert_eq!(retry_after, Some(Duration::from_secs(20)));
            assert!(
                message.starts_with("HTTP 429 rate_limit_exceeded, Rate limit reached"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        classify_openai(429, "", None, &[]),
        CallError::RateLimited {
            retry_after: None,
            ..
        }
    ));
}

#[test]
fn token_per_minute_limits_report_the_limit() {
    let body = openai_error(
        "Request too large for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Requested 45000.",
        "tokens",
        Some("rate_limit_exceeded"),
    );
    match classify_openai(429, &body, Some(Duration::from_secs(2)), &[]) {
        CallError::InputTokensPerMinute {
            limit_tokens,
            retry_after,
            ..
        } => {
            assert_eq!(limit_tokens, Some(30_000));
            assert_eq!(retry_after, Some(Duration::from_secs(2)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn context_length_exceeded_from_openai_and_vllm() {
    let openai = openai_error(
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 150000 tokens.",
        "invalid_request_error",
        Some("context_length_exceeded"),
    );
    assert!(matches!(
        classify_openai(400, &openai, None, &[]),
        CallError::ContextTooLong {
            max_tokens: Some(128_000),
            ..
        }
    ));
    let vllm = json!({"object": "error", "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion).", "type": "BadRequestError", "param": null, "code": 400});
    assert!(matches!(
        classify_openai(400, &vllm.to_string(), None, &[]),
        CallError::ContextTooLong {
            max_tokens: Some(4096),
            ..
        }
    ));
}

#[test]
fn keys_models_and_servers() {
    let secret = "sk-proj-abcdefghijklmnopqrstuvwxyz1234";
    let bad_key = openai_error(
        &format!("Incorrect API key provided: {secret}."),
        "invalid_request_error",
        Some("invalid_api_key"),
    );
    match classify_openai(401, &bad_key, None, &[secret]) {
        CallError::KeyUnusable { reason, .. } => {
            assert!(reason.contains("invalid_api_key"), "{reason}");
            assert!(
                !reason.contains("abcdefghij"),
                "key must be masked: {reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let no_model = openai_error(
        "The model `gpt-9` does not exist or you do not have access to it.",
        "invalid_request_error",
        Some("model_not_found"),
    );
    match classify_openai(404, &no_model, None, &[]) {
        CallError::ModelUnavailable { message } => assert!(
            message.contains("model_not_found") && message.contains("gpt-9"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    let ollama_missing = openai_error(
        "model \"llama9\" not found, try pulling it first",
        "api_error",
        None,
    );
    assert!(matches!(
        classify_openai(404, &ollama_missing, None, &[]),
        CallError::ModelUnavailable { .. }
    ));
    let bad_param = openai_error(
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
        "invalid_request_error",
        Some("unsupported_parameter"),
    );
    // Not a configuration stop: the engine renames the parameter and sends again.
    match classify_openai(400, &bad_param, None, &[]) {
        CallError::ParameterRefused { param, message } => {
            assert_eq!(param, "max_tokens");
            assert!(message.contains("max_completion_tokens"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let region = openai_error(
        "Country, region, or territory not supported",
        "request_forbidden",
        Some("unsupported_country_region_territory"),
    );
    assert!(matches!(
        classify_openai(403, &region, None, &[]),
        CallError::Configuration { .. }
    ));
    for status in [500u16, 502, 503, 504] {
        let body = openai_error(
            "The server had an error while processing your request.",
            "server_error",
            None,
        );
        assert!(matches!(
            classify_openai(status, &body, None, &[]),
            CallError::Transient {
                reached_server: true,
                ..
            }
        ));
        assert!(matches!(
            classify_openai(status, "<html>oops</html>", None, &[]),
            CallError::Transient {
                reached_server: true,
                ..
            }
        ));
    }
}

#[test]
fn error_shapes_other_than_the_canonical_one() {
    // The array form.
    let array = format!(
        "[{}]",
        openai_error(
            "You exceeded your current quota.",
            "insufficient_quota",
            Some("insufficient_quota")
        )
    );
    assert!(matches!(
        classify_openai(429, &array, None, &[]),
        CallError::KeyExhausted { .. }
    ));
    // A bare string error.
    match classify_openai(
        400,
        r#"{"error":"invalid character 'x' looking for beginning of value"}"#,
        None,
        &[],
    ) {
        CallError::Configuration { message } => {
            assert!(message.contains("invalid character"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // A Google-shaped 429 from Gemini's compatibility endpoint: the daily quota is recognised,
    // and a per-minute one without RetryInfo takes the header's delay.
    let daily = json!([{"error": {"code": 429, "message": "You exceeded your current quota", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier", "quotaValue": "20"}]}]}}]);
    assert!(matches!(
        classify_openai(429, &daily.to_string(), Some(Duration::from_secs(5)), &[]),
        CallError::DailyQuotaExhausted { .. }
    ));
    let minute = json!([{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}]);
    assert!(matches!(
        classify_openai(429, &minute.to_string(), Some(Duration::from_secs(5)), &[]),
        CallError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(5)
    ));
}

fn chat_body(content: serde_json::Value, finish: &str) -> String {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": null},
            "logprobs": null, "finish_reason": finish}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150,
            "completion_tokens_details": {"reasoning_tokens": 20}}
    })
    .to_string()
}

#[test]
fn successful_answers_and_their_usage() {
    let g = parse_openai_success(&chat_body(json!("{\"a\":1}"), "stop")).expect("parses");
    assert_eq!(g.text, "{\"a\":1}");
    assert_eq!(
        g.usage,
        Usage {
            prompt_tokens: 100,
            output_tokens: 30,
            thinking_tokens: 20
        }
    );
    assert_eq!(g.finish_reason, "stop");
    assert_eq!(g.model_version.as_deref(), Some("gpt-4o-mini-2024-07-18"));
    // A local server without usage details.
    let ollama = json!({"model": "llama3.1:8b", "choices": [{"index": 0, "message": {"role": "assistant", "content": "{}"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}});
    let g = parse_openai_success(&ollama.to_string()).expect("parses");
    assert_eq!(
        g.usage,
        Usage {
            prompt_tokens: 12,
            output_tokens: 2,
            thinking_tokens: 0
        }
    );
}

#[test]
fn length_is_truncated_and_filters_are_refusals() {
    match parse_openai_success(&chat_body(json!("{\"a\":"), "length")) {
        Err(CallError::Truncated { message, usage }) => {
            assert!(message.contains("finish_reason length"), "{message}");
            assert_eq!(usage.prompt_tokens, 100);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse_openai_success(&chat_body(json!(null), "content_filter")),
        Err(CallError::Refused { .. })
    ));
    let refusal = json!({"model": "gpt-4o", "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
        "refusal": "I'm sorry, I can't help with that."}, "finish_reason": "stop"}]});
    match parse_openai_success(&refusal.to_string()) {
        Err(CallError::Refused { reason }) => assert!(reason.contains("can't help"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse_openai_success(&chat_body(json!(""), "stop")),
        Err(CallError::BadOutput { .. })
    ));
    assert!(matches!(
        parse_openai_success(&chat_body(json!("x"), "tool_calls")),
        Err(CallError::BadOutput { .. })
    ));
    assert!(matches!(
        parse_openai_success("not json"),
        Err(CallError::BadOutput { .. })
    ));
    assert!(matches!(
        parse_openai_success(r#"{"choices": []}"#),
        Err(CallError::BadOutput { .. })
    ));
    // A gateway that puts an error in a 200 body.
    let wrapped = openai_error("upstream overloaded", "server_error", None);
    assert!(matches!(
        parse_openai_success(&wrapped),
        Err(CallError::Transient { .. })
    ));
}

/// OpenAI `model_not_found` (unknown and deprecated models), vLLM's and Ollama's 404s for a
/// model they do not serve: the model is not served, not a generic configuration problem.
#[test]
fn models_not_served_are_model_unavailable() {
    let bodies = [
        (
            404,
            r#"{"error":{"message":"The model `gpt-4-32k` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#,
        ),
        (
            404,
            r#"{"error":{"message":"The model `text-davinci-003` has been deprecated, learn more here: https://platform.openai.com/docs/deprecations","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#,
        ),
        (
            404,
            r#"{"object":"error","message":"The model `llama3` does not exist.","type":"NotFoundError","param":null,"code":404}"#,
        ),
        (
            404,
            r#"{"error":{"message":"model \"llama3.1:8b\" not found, try pulling it first","type":"api_error","param":null,"code":null}}"#,
        ),
    ];
    for (status, body) in bodies {
        match classify_openai(status, body, None, &[]) {
            CallError::ModelUnavailable { message } => {
                assert!(message.starts_with("HTTP 404"), "{message}")
            }
            other => panic!("{body}: {other:?}"),
        }
    }
    // A 404 page from a base URL that misses the API stays a configuration problem.
    assert!(matches!(
        classify_openai(404, "404 page not found", None, &[]),
        CallError::Configuration { .. }
    ));
}

/// llama.cpp's and Ollama's context refusals are context-too-long (refit), never a
/// configuration stop; llama.cpp's carries the context in `n_ctx` and in its message.
#[test]
fn local_servers_context_refusals_are_context_too_long() {
    let llama = json!({"error": {
        "code": 400,
        "message": "request (5120 tokens) exceeds the available context size (2048 tokens), try increasing it",
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 5120,
        "n_ctx": 2048,
    }})
    .to_string();
    match classify_openai(400, &llama, None, &[]) {
        CallError::ContextTooLong {
            max_tokens,
            message,
        } => {
            assert_eq!(max_tokens, Some(2048));
            assert!(
                message.contains("exceeds the available context size"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    let ollama = openai_error(
        "the prompt is longer than the context length currently available to the model",
        "invalid_request_error",
        None,
    );
    assert!(matches!(
        classify_openai(400, &ollama, None, &[]),
        CallError::ContextTooLong {
            max_tokens: None,
            ..
        }
    ));
    // vLLM's newer wording, which names the output budget inside the context.
    let vllm = json!({"error": {"message": "'max_tokens' or 'max_completion_tokens' is too large: 16384. This model's maximum context length is 32768 tokens and your request has 20000 input tokens (16384 > 32768 - 20000).", "type": "BadRequestError", "param": null, "code": 400}}).to_string();
    assert!(matches!(
        classify_openai(400, &vllm, None, &[]),
        CallError::ContextTooLong {
            max_tokens: Some(32768),
            ..
        }
    ));
}

/// A numeric `code` repeats the status: it is not shown twice (`HTTP 400 400`).
#[test]
fn a_numeric_code_does_not_repeat_the_status() {
    for (status, body) in [
        (
            400,
            json!({"error": {"code": 400, "message": "bad thing", "type": "invalid_request_error"}}),
        ),
        (
            404,
            json!({"object": "error", "message": "The model `x` does not exist.", "type": "NotFoundError", "param": null, "code": 404}),
        ),
        (
            500,
            json!({"error": {"code": 500, "message": "boom", "type": "server_error"}}),
        ),
    ] {
        let shown = classify_openai(status, &body.to_string(), None, &[]).to_string();
        assert!(!shown.contains(&format!("{status} {status}")), "{shown}");
        assert!(shown.contains(&format!("HTTP {status}")), "{shown}");
    }
}

/// A 400 refusing one prompt's content refuses that request only (the task is skipped): Azure
/// OpenAI's `content_filter` (body quoted in openai/openai-python#331 and
/// vibrantlabsai/ragas#649, with its `innererror`) and OpenAI's `invalid_prompt` (quoted in
/// alan-turing-institute/t0-1#69). Neither is a configuration problem that stops the batch.
#[test]
fn a_prompt_refused_for_its_content_is_a_refusal_of_that_request() {
    let azure = r#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":true,"severity":"medium"}}}}}"#;
    match classify_openai(400, azure, None, &[]) {
        CallError::Refused { reason } => {
            assert!(reason.contains("content_filter"), "{reason}");
            assert!(reason.contains("content management policy"), "{reason}");
            assert!(!reason.contains("400 400"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let openai = r#"{"error":{"message":"Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please try again with a different prompt: https://platform.openai.com/docs/guides/reasoning#advice-on-prompting","type":"invalid_request_error","param":null,"code":"invalid_prompt"}}"#;
    match classify_openai(400, openai, None, &[]) {
        CallError::Refused { reason } => {
            assert!(reason.contains("invalid_prompt"), "{reason}");
            assert!(
                reason.contains("flagged as potentially violating"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Another 400 invalid_request_error stays a configuration problem.
    let other = openai_error(
        "Invalid type for 'messages[0].content'",
        "invalid_request_error",
        Some("invalid_type"),
    );
    assert!(matches!(
        classify_openai(400, &other, None, &[]),
        CallError::Configuration { .. }
    ));
}

/// Gemini's OpenAI-compatible endpoint answers a model without quota on the project's tier
/// with the native body (array-shaped): "limit: 0" only in the message, no `quotaValue`.
#[test]
fn a_limit_0_body_from_the_compatibility_endpoint_is_a_configuration_stop() {
    let body = json!([{"error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/rate-limit. \n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, model: gemini-2.5-pro\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_input_token_count, limit: 0, model: gemini-2.5-pro\nPlease retry in 7.967587226s.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier", "quotaDimensions": {"location": "global", "model": "gemini-2.5-pro"}}
            ]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}
        ]
    }}]);
    match classify_openai(429, &body.to_string(), None, &[]) {
        CallError::Configuration { message } => {
            assert!(message.contains("gemini-2.5-pro"), "{message}");
            assert!(
                message.contains("generate_content_free_tier_requests"),
                "{message}"
            );
            assert!(message.contains("no quota"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
