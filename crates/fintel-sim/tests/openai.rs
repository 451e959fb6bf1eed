//! The OpenAI-compatible side over HTTP on 127.0.0.1, one test per flavor: model lists, the
//! flavors' extras (/props, /tokenize, /api/show), schema-valid answers with usage, the real
//! context errors, Ollama's silent truncation, keys, and a one-slot server that keeps working
//! on a request its client abandoned.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fintel_sim::{start, Flavor, OpenAiSimConfig, SimConfig, SimHandle};
use fintel_time::{ManualClock, SharedClock};
use jiff::Timestamp;
use serde_json::{json, Value};

async fn sim(openai: OpenAiSimConfig) -> SimHandle {
    let mut config = SimConfig::default();
    config.sec.companies = 20;
    config.openai = Some(openai);
    let clock: SharedClock = Arc::new(ManualClock::new(
        "2026-12-07T12:00:00Z".parse::<Timestamp>().unwrap(),
    ));
    start(config, clock, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "summary": {"type": "string", "maxLength": 200},
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
        },
        "required": ["summary", "score"],
        "additionalProperties": false,
    })
}

fn chat(model: &str, text: &str, max_tokens: Option<u64>) -> Value {
    let mut body = json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You analyse annual reports."},
            {"role": "user", "content": text},
        ],
        "response_format": {"type": "json_schema", "json_schema": {"name": "result", "schema": schema(), "strict": false}},
    });
    if let Some(m) = max_tokens {
        body["max_tokens"] = json!(m);
    }
    body
}

async fn post(sim: &SimHandle, path: &str, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", sim.base_url()))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(sim: &SimHandle, path: &str) -> (u16, Value) {
    let resp = reqwest::get(format!("{}{path}", sim.base_url()))
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn answer_is_schema_valid(body: &Value) {
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    let answer: Value = serde_json::from_str(text).unwrap();
    let validator = jsonschema::validator_for(&schema()).unwrap();
    assert!(validator.is_valid(&answer), "{answer}");
}

#[tokio::test]
async fn llamacpp_reports_its_context_and_slots_tokenizes_and_refuses_what_does_not_fit() {
    let sim = sim(OpenAiSimConfig {
        flavor: Flavor::LlamaCpp,
        context_tokens: 2_048,
        slots: 2,
        ..OpenAiSimConfig::default()
    })
    .await;
    let (status, props) = get(&sim, "/props").await;
    assert_eq!(status, 200);
    assert_eq!(props["default_generation_settings"]["n_ctx"], 2_048);
    assert_eq!(props["total_slots"], 2);
    let (_, tokens) = post(&sim, "/tokenize", &json!({"content": "a".repeat(400)})).await;
    assert_eq!(tokens["tokens"].as_array().unwrap().len(), 100);
    let (_, models) = get(&sim, "/v1/models").await;
    assert_eq!(models["data"][0]["owned_by"], "llamacpp");

    // llama-server serves its one model whatever the name asked.
    let (status, ok) = post(
        &sim,
        "/v1/chat/completions",
        &chat("any", "A short filing.", Some(500)),
    )
    .await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["choices"][0]["finish_reason"], "stop");
    assert!(ok["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    answer_is_schema_valid(&ok);

    let (status, err) = post(
        &sim,
        "/v1/chat/completions",
        &chat("any", &"x".repeat(12_000), None),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["type"], "exceed_context_size_error");
    assert_eq!(err["error"]["n_ctx"], 2_048);
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.ends_with("exceeds the available context size (2048 tokens), try increasing it"),
        "{message}"
    );
    let stats = sim.stats().openai;
    assert_eq!(
        (
            stats.props,
            stats.tokenize,
            stats.context_refused,
            stats.answered
        ),
        (1, 1, 1, 1)
    );
}

#[tokio::test]
async fn ollama_truncates_silently_by_default_and_refuses_when_configured() {
    let silent = sim(OpenAiSimConfig {
        flavor: Flavor::Ollama,
        models: vec!["llama3.1:8b".into()],
        context_tokens: 2_048,
        model_context_tokens: Some(131_072),
        ..OpenAiSimConfig::default()
    })
    .await;
    // /api/show says what the model was trained for, not what the server runs it with.
    let (_, show) = post(&silent, "/api/show", &json!({"model": "llama3.1:8b"})).await;
    assert_eq!(show["model_info"]["llama.context_length"], 131_072);
    let (status, _) = post(&silent, "/api/show", &json!({"model": "mistral"})).await;
    assert_eq!(status, 404);

    let long = "y".repeat(40_000);
    let (status, body) = post(
        &silent,
        "/v1/chat/completions",
        &chat("llama3.1:8b", &long, Some(300)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        body["usage"]["prompt_tokens"], 2_048,
        "the truncated count is reported"
    );
    answer_is_schema_valid(&body);
    assert_eq!(silent.stats().openai.truncated_silently, 1);
    let (status, body) = post(
        &silent,
        "/v1/chat/completions",
        &chat("mistral", "hi", None),
    )
    .await;
    assert_eq!(status, 404);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("try pulling it first"));

    let strict = sim(OpenAiSimConfig {
        flavor: Flavor::Ollama,
        models: vec!["llama3.1:8b".into()],
        context_tokens: 2_048,
        context_error: true,
        ..OpenAiSimConfig::default()
    })
    .await;
    let (status, body) = post(
        &strict,
        "/v1/chat/completions",
        &chat("llama3.1:8b", &long, Some(300)),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("the prompt is longer than the context length"));
}

#[tokio::test]
async fn vllm_lists_max_model_len_and_counts_max_tokens_inside_the_context() {
    let sim = sim(OpenAiSimConfig {
        flavor: Flavor::Vllm,
        models: vec!["Qwen/Qwen2.5-7B-Instruct".into()],
        context_tokens: 4_096,
        ..OpenAiSimConfig::default()
    })
    .await;
    let (_, models) = get(&sim, "/v1/models").await;
    assert_eq!(models["data"][0]["max_model_len"], 4_096);
    assert_eq!(
        get(&sim, "/props").await.0,
        404,
        "only llama.cpp has /props"
    );
    let text = "z".repeat(8_000); // about 2,000 prompt tokens
    let (status, body) = post(
        &sim,
        "/v1/chat/completions",
        &chat("Qwen/Qwen2.5-7B-Instruct", &text, Some(16_384)),
    )
    .await;
    assert_eq!(status, 400);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "This model's maximum context length is 4096 tokens. However, you requested"
        ),
        "{message}"
    );
    assert!(message.contains("16384 in the completion"), "{message}");
    let (status, body) = post(
        &sim,
        "/v1/chat/completions",
        &chat("Qwen/Qwen2.5-7B-Instruct", &text, Some(1_024)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    answer_is_schema_valid(&body);
}

#[tokio::test]
async fn openai_checks_the_key_and_a_rambling_answer_is_cut_at_max_tokens() {
    let sim = sim(OpenAiSimConfig {
        flavor: Flavor::OpenAi,
        models: vec!["gpt-4o-mini".into()],
        api_key: Some("sk-sim".into()),
        length_chance: 1.0,
        ramble_tokens: 2_000,
        ..OpenAiSimConfig::default()
    })
    .await;
    let (status, body) = post(
        &sim,
        "/v1/chat/completions",
        &chat("gpt-4o-mini", "hi", Some(100)),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let send = |max: u64| {
        reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", sim.base_url()))
            .bearer_auth("sk-sim")
            .json(&chat("gpt-4o-mini", "hi", Some(max)))
            .send()
    };
    let cut: Value = send(100).await.unwrap().json().await.unwrap();
    assert_eq!(cut["choices"][0]["finish_reason"], "length");
    assert_eq!(cut["usage"]["completion_tokens"], 100);
    let again: Value = send(100).await.unwrap().json().await.unwrap();
    assert_eq!(again["choices"][0]["finish_reason"], "length");
    let room: Value = send(4_000).await.unwrap().json().await.unwrap();
    assert_eq!(room["choices"][0]["finish_reason"], "stop");
    let stats = sim.stats().openai;
    assert_eq!(
        (
            stats.length,
            stats.repeated_after_length,
            stats.unauthorized
        ),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn a_one_slot_server_finishes_an_abandoned_request_and_a_resend_queues_behind_it() {
    let sim = sim(OpenAiSimConfig {
        flavor: Flavor::LlamaCpp,
        slots: 1,
        answer_ms: 1_500,
        ..OpenAiSimConfig::default()
    })
    .await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let url = format!("{}/v1/chat/completions", sim.base_url());
    let body = chat("m", "The same filing.", Some(500));
    let first = impatient.post(&url).json(&body).send().await;
    assert!(first.unwrap_err().is_timeout());
    let patient = reqwest::Client::new()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(patient.status().as_u16(), 200);
    let stats = sim.stats().openai;
    assert_eq!(stats.resent_while_in_flight, 1, "{stats:?}");
    assert_eq!(stats.max_busy, 1);
    // Both were worked on: the resend waited for the abandoned original's slot.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.stats().openai.answered < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sim.stats().openai.answered, 2);
}

#[tokio::test]
async fn a_prompt_on_the_filter_list_is_refused_for_its_content_in_either_form() {
    for (reply, code) in [
        (fintel_sim::FilterReply::Azure, "content_filter"),
        (fintel_sim::FilterReply::InvalidPrompt, "invalid_prompt"),
    ] {
        let sim = sim(OpenAiSimConfig {
            models: vec!["gpt-test".into()],
            content_filtered: vec!["(ticker BAD)".into()],
            content_filter_reply: reply,
            ..OpenAiSimConfig::default()
        })
        .await;
        let (status, body) = post(
            &sim,
            "/v1/chat/completions",
            &chat("gpt-test", "Company: Bad Corp (ticker BAD)", None),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        let (status, body) = post(
            &sim,
            "/v1/chat/completions",
            &chat("gpt-test", "Company: Good Corp (ticker GOOD)", None),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let stats = sim.stats().openai;
        assert_eq!((stats.content_filtered, stats.answered), (1, 1));
        sim.shutdown().await;
    }
}
