//! End-to-end tests over HTTP on 127.0.0.1: quotas with the real bodies, key and model errors,
//! faults, schema-valid answers, SEC shapes, counters, and document generation speed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fintel_sim::{
    filing_html, start, FaultConfig, OutageWindow, ProjectConfig, SimConfig, SimHandle, Universe,
};
use fintel_time::{ManualClock, SharedClock};
use jiff::Timestamp;
use serde_json::{json, Value};

const UA: &str = "Jane Doe jane@example.com";

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn small_config() -> SimConfig {
    let mut c = SimConfig::default();
    c.sec.companies = 50;
    c
}

async fn sim_at(config: SimConfig, now: &str) -> (SimHandle, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(now.parse::<Timestamp>().unwrap()));
    let shared: SharedClock = clock.clone();
    let handle = start(config, shared, localhost()).await.unwrap();
    (handle, clock)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().user_agent(UA).build().unwrap()
}

fn request(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

async fn generate(sim: &SimHandle, key: Option<&str>, model: &str, body: &Value) -> (u16, Value) {
    let url = format!("{}/v1beta/models/{model}:generateContent", sim.base_url());
    let mut req = client().post(url).json(body);
    if let Some(key) = key {
        req = req.header("x-goog-api-key", key);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

fn shared_project(rpd: u32, rpm: u32, tpm: u64) -> SimConfig {
    let mut c = small_config();
    c.gemini.projects = vec![
        ProjectConfig {
            name: "shared".into(),
            keys: vec!["key-a".into(), "key-b".into()],
            requests_per_day: rpd,
            requests_per_minute: rpm,
            input_tokens_per_minute: tpm,
            ..ProjectConfig::default()
        },
        ProjectConfig {
            name: "other".into(),
            keys: vec!["key-c".into()],
            requests_per_day: rpd,
            requests_per_minute: rpm,
            input_tokens_per_minute: tpm,
            ..ProjectConfig::default()
        },
    ];
    c
}

fn quota_ids(body: &Value) -> Vec<String> {
    body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["@type"] == "type.googleapis.com/google.rpc.QuotaFailure")
        .flat_map(|d| d["violations"].as_array().cloned().unwrap_or_default())
        .map(|v| v["quotaId"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn retry_delay(body: &Value) -> Option<String> {
    body["error"]["details"]
        .as_array()?
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
        .and_then(|d| d["retryDelay"].as_str().map(str::to_owned))
}

/// Spends the daily limit of a project through two keys, checks the 429, then the reset at the
/// first Pacific midnight after `evening`.
async fn daily_limit_then_reset(evening: &str, midnight_utc: &str) {
    let (sim, clock) = sim_at(shared_project(4, 100, 1_000_000), evening).await;
    for i in 0..4 {
        let key = if i % 2 == 0 { "key-a" } else { "key-b" };
        let (status, _) = generate(
            &sim,
            Some(key),
            "gemini-2.5-flash",
            &request(&format!("q{i}")),
        )
        .await;
        assert_eq!(status, 200);
        clock.advance(Duration::from_secs(61));
    }
    let (status, body) = generate(&sim, Some("key-b"), "gemini-2.5-flash", &request("late")).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(
        quota_ids(&body),
        ["GenerateRequestsPerDayPerProjectPerModel-FreeTier"]
    );
    // Another project is not affected.
    assert_eq!(
        generate(&sim, Some("key-c"), "gemini-2.5-flash", &request("c"))
            .await
            .0,
        200
    );
    // One second before the Pacific midnight: still refused.
    let midnight: Timestamp = midnight_utc.parse().unwrap();
    clock.set(midnight - jiff::SignedDuration::from_secs(1));
    assert_eq!(
        generate(&sim, Some("key-a"), "gemini-2.5-flash", &request("early"))
            .await
            .0,
        429
    );
    clock.set(midnight);
    assert_eq!(
        generate(&sim, Some("key-a"), "gemini-2.5-flash", &request("fresh"))
            .await
            .0,
        200
    );
    let stats = sim.stats();
    assert_eq!(stats.gemini.projects["shared"].refused_rpd, 2);
    assert_eq!(stats.gemini.projects["shared"].over_limit, 2);
    assert_eq!(
        stats.gemini.keys["key-a"].accepted + stats.gemini.keys["key-b"].accepted,
        5
    );
    assert_eq!(
        stats.gemini.dates.len(),
        2,
        "{:?}",
        stats.gemini.dates.keys()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn daily_limit_is_per_project_and_resets_at_pacific_midnight() {
    daily_limit_then_reset("2026-05-10T22:00:00-07:00", "2026-05-11T07:00:00Z").await;
}

#[tokio::test]
async fn daily_reset_is_right_on_the_spring_forward_day() {
    // 2026-03-08 has 23 hours; its end is 00:00 PDT = 07:00 UTC.
    daily_limit_then_reset("2026-03-08T22:00:00-07:00", "2026-03-09T07:00:00Z").await;
}

#[tokio::test]
async fn daily_reset_is_right_on_the_fall_back_day() {
    // 2026-11-01 has 25 hours; its end is 00:00 PST = 08:00 UTC.
    daily_limit_then_reset("2026-11-01T22:00:00-08:00", "2026-11-02T08:00:00Z").await;
}

#[tokio::test]
async fn per_minute_limit_answers_with_retry_info() {
    let (sim, clock) = sim_at(shared_project(100, 2, 1_000_000), "2026-06-01T12:00:00Z").await;
    assert_eq!(
        generate(&sim, Some("key-a"), "gemini-2.5-flash", &request("1"))
            .await
            .0,
        200
    );
    clock.advance(Duration::from_secs(15));
    assert_eq!(
        generate(&sim, Some("key-b"), "gemini-2.5-flash", &request("2"))
            .await
            .0,
        200
    );
    clock.advance(Duration::from_secs(5));
    let (status, body) = generate(&sim, Some("key-a"), "gemini-2.5-flash", &request("3")).await;
    assert_eq!(status, 429);
    assert_eq!(
        quota_ids(&body),
        ["GenerateRequestsPerMinutePerProjectPerModel-FreeTier"]
    );
    assert_eq!(retry_delay(&body).as_deref(), Some("40s"));
    clock.advance(Duration::from_secs(40));
    assert_eq!(
        generate(&sim, Some("key-a"), "gemini-2.5-flash", &request("3"))
            .await
            .0,
        200
    );
    let stats = sim.stats();
    assert_eq!(stats.gemini.total.refused_rpm, 1);
    assert_eq!(stats.gemini.total.received, 4);
    sim.shutdown().await;
}

/// With `refused_requests_consume_quota`, a refused request keeps the minute window full.
async fn refused_then_retry(consume: bool) -> u16 {
    let mut config = shared_project(100, 1, 1_000_000);
    config.gemini.refused_requests_consume_quota = consume;
    let (sim, clock) = sim_at(config, "2026-06-01T12:00:00Z").await;
    assert_eq!(
        generate(&sim, Some("key-a"), "gemini-2.5-flash", &request("1"))
            .await
            .0,
        200
    );
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        generate(&sim, Some("key-a"), "gemini-2.5-flash", &request("2"))
            .await
            .0,
        429
    );
    clock.advance(Duration::from_secs(31));
    let status = generate(&sim, Some("key-a"), "gemini-2.5-flash", &request("2"))
        .await
        .0;
    sim.shutdown().await;
    status
}

#[tokio::test]
async fn refused_requests_consume_quota_only_when_configured() {
    assert_eq!(refused_then_retry(false).await, 200);
    assert_eq!(refused_then_retry(true).await, 429);
}

#[tokio::test]
async fn input_tokens_per_minute_and_context_limit() {
    let mut config = shared_project(100, 100, 1_000);
    config.gemini.models[0].input_token_limit = 10_000;
    let (sim, clock) = sim_at(config, "2026-06-01T12:00:00Z").await;
    let text_of = |tokens: usize| "x".repeat(tokens * 4);
    assert_eq!(
        generate(
            &sim,
            Some("key-a"),
            "gemini-2.5-flash",
            &request(&text_of(700))
        )
        .await
        .0,
        200
    );
    let (status, body) = generate(
        &sim,
        Some("key-a"),
        "gemini-2.5-flash",
        &request(&text_of(400)),
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(
        quota_ids(&body),
        ["GenerateContentInputTokensPerModelPerMinute-FreeTier"]
    );
    let violation = &body["error"]["details"][0]["violations"][0];
    assert_eq!(violation["quotaValue"], "1000");
    assert_eq!(violation["quotaDimensions"]["model"], "gemini-2.5-flash");
    clock.advance(Duration::from_secs(60));
    // Larger than the per-minute cap on its own: 429 as well, counted as too big.
    let (status, body) = generate(
        &sim,
        Some("key-a"),
        "gemini-2.5-flash",
        &request(&text_of(1_500)),
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(
        quota_ids(&body),
        ["GenerateContentInputTokensPerModelPerMinute-FreeTier"]
    );
    // Larger than the context: 400 with the real message.
    let (status, body) = generate(
        &sim,
        Some("key-a"),
        "gemini-2.5-flash",
        &request(&text_of(12_000)),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "The input token count (12000) exceeds the maximum number of tokens allowed (10000)."
    );
    let t = sim.stats().gemini.total;
    assert_eq!(
        (t.refused_tpm, t.refused_request_too_big, t.refused_context),
        (2, 1, 1)
    );
    assert_eq!(
        t.over_limit, 0,
        "the first refusal was not at the limit already"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn keys_and_models_are_checked_like_the_real_api() {
    let mut config = small_config();
    config.gemini.leaked_keys = vec!["leaked-key".into()];
    config.gemini.invalid_keys = vec!["sim-key-2".into()];
    let (sim, _clock) = sim_at(config, "2026-06-01T12:00:00Z").await;
    let body = request("hello");

    let (status, v) = generate(&sim, Some("nobody"), "gemini-2.5-flash", &body).await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(v["error"]["details"][0]["reason"], "API_KEY_INVALID");
    assert_eq!(
        v["error"]["details"][1]["@type"],
        "type.googleapis.com/google.rpc.LocalizedMessage"
    );
    assert_eq!(
        generate(&sim, Some("sim-key-2"), "gemini-2.5-flash", &body)
            .await
            .0,
        400
    );

    let (status, v) = generate(&sim, Some("leaked-key"), "gemini-2.5-flash", &body).await;
    assert_eq!(status, 403);
    assert_eq!(
        v,
        json!({"error": {"code": 403, "message": "Your API key was reported as leaked. Please use another API key.", "status": "PERMISSION_DENIED"}})
    );

    let (status, v) = generate(&sim, None, "gemini-2.5-flash", &body).await;
    assert_eq!(status, 403);
    assert_eq!(v["error"]["status"], "PERMISSION_DENIED");

    let (status, v) = generate(&sim, Some("sim-key-1"), "gemini-9.9-ultra", &body).await;
    assert_eq!(status, 404);
    assert_eq!(v["error"]["status"], "NOT_FOUND");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("models/gemini-9.9-ultra is not found"));

    // The key may also come as ?key=.
    let url = format!(
        "{}/v1beta/models/gemini-2.5-flash:generateContent?key=sim-key-1",
        sim.base_url()
    );
    assert_eq!(
        client()
            .post(url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Model metadata and countTokens cost no quota.
    let url = format!("{}/v1beta/models/gemini-2.5-flash", sim.base_url());
    let meta: Value = client()
        .get(&url)
        .header("x-goog-api-key", "sim-key-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["name"], "models/gemini-2.5-flash");
    assert_eq!(meta["inputTokenLimit"], 1_048_576);
    assert!(meta["outputTokenLimit"].as_u64().unwrap() > 0);
    let resp = client()
        .get(format!("{}/v1beta/models/nope", sim.base_url()))
        .header("x-goog-api-key", "sim-key-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let url = format!(
        "{}/v1beta/models/gemini-2.5-flash:countTokens",
        sim.base_url()
    );
    let counted: Value = client()
        .post(&url)
        .header("x-goog-api-key", "sim-key-1")
        .json(&request("abcdefgh"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counted["totalTokens"], 2);

    // Malformed bodies.
    let (status, v) = generate(
        &sim,
        Some("sim-key-1"),
        "gemini-2.5-flash",
        &json!({"contents": [], "extra": 1}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        v["error"]["message"],
        "Invalid JSON payload received. Unknown name \"extra\": Cannot find field."
    );
    let (status, v) = generate(
        &sim,
        Some("sim-key-1"),
        "gemini-2.5-flash",
        &json!({"contents": []}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("contents is not specified"));

    let stats = sim.stats().gemini;
    assert_eq!(
        (
            stats.invalid_key,
            stats.leaked_key,
            stats.missing_key,
            stats.unknown_model
        ),
        (2, 1, 1, 2)
    );
    assert_eq!(stats.model_gets, 1);
    assert_eq!(stats.count_tokens, 1);
    assert_eq!(stats.total.invalid_request, 2);
    assert_eq!(stats.projects["sim-project-1"].accepted, 1);
    sim.shutdown().await;
}

fn schema_request(text: &str, schema: &Value) -> Value {
    json!({
        "contents": [{"role": "user", "parts": [{"text": text}]}],
        "systemInstruction": {"parts": [{"text": "You are a financial analyst."}]},
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseJsonSchema": schema,
            "thinkingConfig": {"thinkingBudget": 1024}
        }
    })
}

#[tokio::test]
async fn answers_are_valid_against_the_request_schema() {
    let schemas = [
        json!({
            "type": "object",
            "properties": {
                "summary": {"type": "string", "minLength": 20, "maxLength": 400},
                "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
                "fiscal_year": {"type": "integer", "minimum": 1990, "maximum": 2030},
                "risks": {
                    "type": "array", "minItems": 3, "maxItems": 8,
                    "items": {
                        "type": "object",
                        "properties": {
                            "title": {"type": "string"},
                            "severity": {"type": "integer", "minimum": 1, "maximum": 5},
                            "evidence": {"type": ["string", "null"]},
                            "new_this_year": {"type": "boolean"}
                        },
                        "required": ["title", "severity", "evidence", "new_this_year"],
                        "additionalProperties": false
                    }
                },
                "margin": {"type": "number", "exclusiveMinimum": -1, "exclusiveMaximum": 1}
            },
            "required": ["summary", "sentiment", "fiscal_year", "risks", "margin"],
            "additionalProperties": false
        }),
        json!({
            "type": "object",
            "$defs": {"segment": {"type": "object", "properties": {"name": {"type": "string"}, "revenue_musd": {"type": ["number", "null"], "minimum": 0}}, "required": ["name", "revenue_musd"]}},
            "properties": {
                "segments": {"type": "array", "items": {"$ref": "#/$defs/segment"}, "minItems": 2},
                "outlook": {"anyOf": [{"type": "string", "maxLength": 30}, {"type": "null"}]},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true, "minItems": 4, "maxItems": 4}
            },
            "required": ["segments", "outlook", "tags"]
        }),
        json!({"type": "array", "minItems": 1, "items": {"type": "object", "properties": {"date": {"type": "string", "format": "date"}, "amount": {"type": "integer", "exclusiveMaximum": 0}}, "required": ["date", "amount"]}}),
    ];
    let (sim, _clock) = sim_at(
        shared_project(1_000, 1_000, 10_000_000),
        "2026-06-01T12:00:00Z",
    )
    .await;
    for (i, schema) in schemas.iter().enumerate() {
        let validator = jsonschema::validator_for(schema).unwrap();
        for j in 0..10 {
            let (status, body) = generate(
                &sim,
                Some("key-a"),
                "gemini-2.5-flash",
                &schema_request(&format!("doc {i} {j}"), schema),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let candidate = &body["candidates"][0];
            assert_eq!(candidate["finishReason"], "STOP");
            assert_eq!(candidate["content"]["role"], "model");
            let text = candidate["content"]["parts"][0]["text"].as_str().unwrap();
            let answer: Value = serde_json::from_str(text).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&answer)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "schema {i}: {answer} -> {errors:?}");
            let usage = &body["usageMetadata"];
            let prompt = usage["promptTokenCount"].as_u64().unwrap();
            assert!(prompt > 0);
            assert_eq!(
                usage["totalTokenCount"].as_u64().unwrap(),
                prompt
                    + usage["candidatesTokenCount"].as_u64().unwrap()
                    + usage["thoughtsTokenCount"].as_u64().unwrap()
            );
            assert_eq!(body["modelVersion"], "gemini-2.5-flash");
            assert_eq!(body["responseId"].as_str().unwrap().len(), 23);
        }
    }
    sim.shutdown().await;
}

fn faulty_config(seed: u64) -> SimConfig {
    let mut config = shared_project(100_000, 100_000, 100_000_000);
    config.seed = seed;
    config.gemini.faults = FaultConfig {
        unavailable: 0.10,
        slow: 0.0,
        slow_ms: 0,
        connection_reset: 0.05,
        invalid_json: 0.05,
        max_tokens: 0.05,
        safety: 0.05,
    };
    config
}

/// One outcome per request: the status, or "reset", plus the finish reason of 200s.
async fn fault_run(seed: u64, n: usize) -> (Vec<String>, fintel_sim::SimStats) {
    let (sim, _clock) = sim_at(faulty_config(seed), "2026-06-01T12:00:00Z").await;
    let schema =
        json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]});
    let mut outcomes = Vec::new();
    let client = client();
    for i in 0..n {
        let url = format!(
            "{}/v1beta/models/gemini-2.5-flash:generateContent",
            sim.base_url()
        );
        let sent = client
            .post(url)
            .header("x-goog-api-key", "key-a")
            .json(&schema_request(&format!("doc {}", i % 150), &schema))
            .send()
            .await;
        let outcome = match sent {
            Err(_) => "reset".to_string(),
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.json::<Value>().await {
                    Err(_) => "reset".to_string(),
                    Ok(body) if status == 200 => {
                        let finish = body["candidates"][0]["finishReason"]
                            .as_str()
                            .unwrap_or("")
                            .to_string();
                        let valid = body["candidates"][0]["content"]["parts"][0]["text"]
                            .as_str()
                            .map(|t| serde_json::from_str::<Value>(t).is_ok())
                            .unwrap_or(false);
                        format!("200 {finish} {}", if valid { "json" } else { "broken" })
                    }
                    Ok(body) => format!(
                        "{status} {}",
                        body["error"]["status"].as_str().unwrap_or("")
                    ),
                }
            }
        };
        outcomes.push(outcome);
    }
    let stats = sim.stats();
    sim.shutdown().await;
    (outcomes, stats)
}

#[tokio::test]
async fn faults_are_injected_at_the_configured_rates_deterministically() {
    let n = 600;
    let (first, stats) = fault_run(7, n).await;
    let (second, _) = fault_run(7, n).await;
    assert_eq!(first, second, "same seed, same requests, same faults");
    let (other_seed, _) = fault_run(8, n).await;
    assert_ne!(first, other_seed);
    let count = |s: &str| first.iter().filter(|o| o.as_str() == s).count();
    let f = &stats.gemini.total.faults;
    assert_eq!(count("503 UNAVAILABLE") as u64, f.unavailable);
    assert_eq!(count("reset") as u64, f.connection_reset);
    assert_eq!(count("200 STOP broken") as u64, f.invalid_json);
    assert_eq!(count("200 MAX_TOKENS broken") as u64, f.max_tokens);
    assert_eq!(count("200 SAFETY broken") as u64, f.safety);
    let near = |got: u64, p: f64| {
        let expected = p * n as f64;
        (got as f64 - expected).abs() < 4.0 * (expected * (1.0 - p)).sqrt() + 3.0
    };
    assert!(near(f.unavailable, 0.10), "{f:?}");
    assert!(near(f.connection_reset, 0.05), "{f:?}");
    assert!(near(f.invalid_json, 0.05), "{f:?}");
    assert!(near(f.max_tokens, 0.05), "{f:?}");
    assert!(near(f.safety, 0.05), "{f:?}");
    assert!(f.unavailable > 0 && f.connection_reset > 0 && f.safety > 0);
    // 150 distinct contents asked 4 times each: every clean answer after the first per content
    // is a duplicate.
    let clean = count("200 STOP json") as u64;
    assert_eq!(
        stats.gemini.total.duplicates,
        clean - distinct_clean(&first)
    );
}

/// Distinct contents (i % 150) that got at least one clean answer.
fn distinct_clean(outcomes: &[String]) -> u64 {
    let mut seen = std::collections::HashSet::new();
    for (i, o) in outcomes.iter().enumerate() {
        if o == "200 STOP json" {
            seen.insert(i % 150);
        }
    }
    seen.len() as u64
}

#[tokio::test]
async fn outage_windows_answer_503_and_slow_answers_are_late() {
    let mut config = shared_project(100, 100, 1_000_000);
    config.gemini.outages = vec![OutageWindow {
        from: "2026-06-01T12:00:00Z".parse().unwrap(),
        to: "2026-06-01T13:00:00Z".parse().unwrap(),
    }];
    config.gemini.faults.slow = 1.0;
    config.gemini.faults.slow_ms = 300;
    let (sim, clock) = sim_at(config, "2026-06-01T12:30:00Z").await;
    let (status, body) = generate(&sim, Some("key-a"), "gemini-2.5-flash", &request("x")).await;
    assert_eq!(status, 503);
    assert_eq!(
        body["error"]["message"],
        "The model is overloaded. Please try again later."
    );
    clock.set("2026-06-01T13:00:00Z".parse().unwrap());
    let url = format!(
        "{}/v1beta/models/gemini-2.5-flash:generateContent",
        sim.base_url()
    );
    let timed_out = client()
        .post(&url)
        .header("x-goog-api-key", "key-a")
        .timeout(Duration::from_millis(100))
        .json(&request("x"))
        .send()
        .await;
    assert!(timed_out.is_err_and(|e| e.is_timeout()));
    let started = Instant::now();
    assert_eq!(
        generate(&sim, Some("key-a"), "gemini-2.5-flash", &request("x"))
            .await
            .0,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    let t = sim.stats().gemini.total;
    assert_eq!((t.faults.outage, t.faults.slow, t.duplicates), (1, 2, 0));
    sim.shutdown().await;
}

#[tokio::test]
async fn stats_count_duplicates_over_http_and_reset() {
    let (sim, _clock) = sim_at(shared_project(100, 100, 1_000_000), "2026-06-01T12:00:00Z").await;
    for text in ["a", "b", "a", "a"] {
        assert_eq!(
            generate(&sim, Some("key-a"), "gemini-2.5-flash", &request(text))
                .await
                .0,
            200
        );
    }
    // Same content through another key of another project is still a duplicate call.
    assert_eq!(
        generate(&sim, Some("key-c"), "gemini-2.5-flash", &request("b"))
            .await
            .0,
        200
    );
    let stats: Value = client()
        .get(format!("{}/__sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["gemini"]["total"]["accepted"], 5);
    assert_eq!(stats["gemini"]["total"]["duplicates"], 3);
    assert_eq!(stats["gemini"]["projects"]["shared"]["duplicates"], 2);
    assert_eq!(
        stats["gemini"]["dates"]["2026-06-01"]["keys"]["key-c"]["duplicates"],
        1
    );
    assert_eq!(stats["gemini"]["total"]["over_limit"], 0);
    let resp = client()
        .post(format!("{}/__sim/reset-stats", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(sim.stats().gemini.total.accepted, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn sec_endpoints_have_edgar_shapes() {
    let mut config = SimConfig::default();
    config.sec.companies = 200;
    let (sim, _clock) = sim_at(config, "2026-06-01T12:00:00Z").await;
    let base = sim.base_url();
    let c = client();

    let tickers: Value = c
        .get(format!("{base}/files/company_tickers.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = tickers.as_object().unwrap();
    assert!(entries.len() > 180);
    assert!(
        entries["0"]["cik_str"].is_u64()
            && entries["0"]["ticker"].is_string()
            && entries["0"]["title"].is_string()
    );
    assert!(entries
        .values()
        .any(|e| e["ticker"].as_str().unwrap().contains('-')));

    let universe = sim.state().universe();
    let long = universe
        .companies()
        .iter()
        .find(|c| {
            c.last_fiscal_year - c.first_fiscal_year >= 20
                && !c.delisted
                && c.form == fintel_sim::AnnualForm::TenK
        })
        .unwrap();
    let sub: Value = c
        .get(format!("{base}/submissions/CIK{:010}.json", long.cik))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sub["cik"], long.cik.to_string());
    assert_eq!(sub["name"], long.name);
    assert!(sub["fiscalYearEnd"].as_str().unwrap().len() == 4);
    let check_columns = |cols: &Value| -> usize {
        let obj = cols.as_object().unwrap();
        let n = obj["accessionNumber"].as_array().unwrap().len();
        for key in [
            "accessionNumber",
            "filingDate",
            "reportDate",
            "form",
            "primaryDocument",
            "primaryDocDescription",
            "isXBRL",
            "isInlineXBRL",
            "size",
        ] {
            assert_eq!(obj[key].as_array().unwrap().len(), n, "column {key}");
        }
        n
    };
    let recent = check_columns(&sub["filings"]["recent"]);
    assert_eq!(recent, 100);
    let files = sub["filings"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    let name = files[0]["name"].as_str().unwrap();
    assert_eq!(name, format!("CIK{:010}-submissions-001.json", long.cik));
    let page: Value = c
        .get(format!("{base}/submissions/{name}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let older = check_columns(&page);
    assert_eq!(older as u64, files[0]["filingCount"].as_u64().unwrap());

    // The newest 10-K: its document has the item headings, and the index lists it.
    let recent_cols = &sub["filings"]["recent"];
    let i = recent_cols["form"]
        .as_array()
        .unwrap()
        .iter()
        .position(|f| f == "10-K")
        .unwrap();
    let acc = recent_cols["accessionNumber"][i]
        .as_str()
        .unwrap()
        .replace('-', "");
    let doc = recent_cols["primaryDocument"][i].as_str().unwrap();
    let html = c
        .get(format!(
            "{base}/Archives/edgar/data/{}/{acc}/{doc}",
            long.cik
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for heading in [
        "Item 1.",
        "Business",
        "Item 1A.",
        "Risk Factors",
        "Item 7.",
        "Item 7A.",
        "Item 8.",
        "ix:nonFraction",
    ] {
        assert!(html.contains(heading), "document lacks {heading}");
    }
    let index: Value = c
        .get(format!(
            "{base}/Archives/edgar/data/{}/{acc}/index.json",
            long.cik
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(index["directory"]["item"]
        .as_array()
        .unwrap()
        .iter()
        .any(|it| it["name"] == doc));

    // Unknown things are 404; a request without a User-Agent is refused like SEC does.
    assert_eq!(
        c.get(format!("{base}/submissions/CIK0000000001.json"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        c.get(format!(
            "{base}/Archives/edgar/data/{}/{acc}/other.htm",
            long.cik
        ))
        .send()
        .await
        .unwrap()
        .status(),
        404
    );
    let anonymous = reqwest::Client::new()
        .get(format!("{base}/files/company_tickers.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 403);

    let sec = sim.stats().sec;
    assert_eq!(
        (sec.tickers, sec.submissions, sec.documents, sec.indexes),
        (2, 3, 2, 1)
    );
    assert_eq!((sec.not_found, sec.missing_user_agent), (2, 1));
    // The manual clock stands still, so every request fell in one second.
    assert_eq!(sec.max_requests_in_one_second, 8);
    sim.shutdown().await;
}

#[tokio::test]
async fn real_apple_fixtures_are_served_when_configured() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let mut config = small_config();
    config.sec.fixtures_dir = Some(dir.clone());
    let (sim, _clock) = sim_at(config, "2026-06-01T12:00:00Z").await;
    let base = sim.base_url();
    let c = client();
    let tickers: Value = c
        .get(format!("{base}/files/company_tickers.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(tickers
        .as_object()
        .unwrap()
        .values()
        .any(|e| e["ticker"] == "AAPL" && e["cik_str"] == 320193));
    let served = c
        .get(format!("{base}/submissions/CIK0000320193.json"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        served.as_ref(),
        std::fs::read(dir.join("sec/api/submissions/CIK0000320193.json")).unwrap()
    );
    let page = c
        .get(format!(
            "{base}/submissions/CIK0000320193-submissions-001.json"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let doc = c
        .get(format!(
            "{base}/Archives/edgar/data/320193/000032019324000123/aapl-20240928.htm"
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(doc.len(), 1_503_780);
    // An Apple 10-K with no fixture document gets a synthetic one under Apple's name.
    let sub: Value = serde_json::from_slice(&served).unwrap();
    let r = &sub["filings"]["recent"];
    let i = r["form"]
        .as_array()
        .unwrap()
        .iter()
        .position(|f| f == "10-K")
        .unwrap();
    let acc = r["accessionNumber"][i].as_str().unwrap().replace('-', "");
    let name = r["primaryDocument"][i].as_str().unwrap();
    let html = c
        .get(format!("{base}/Archives/edgar/data/320193/{acc}/{name}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Apple Inc.") && html.contains("Risk Factors"));
    sim.shutdown().await;
}

#[tokio::test]
async fn connection_reset_without_the_accept_loop_breaks_the_body() {
    // Embedded through `router`, a reset becomes a body that fails mid-response.
    let mut config = faulty_config(1);
    config.gemini.faults = FaultConfig {
        connection_reset: 1.0,
        ..FaultConfig::default()
    };
    let clock: SharedClock = Arc::new(ManualClock::new("2026-06-01T12:00:00Z".parse().unwrap()));
    let state = fintel_sim::SimState::new(config, clock).unwrap();
    let listener = tokio::net::TcpListener::bind(localhost()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server =
        tokio::spawn(async move { axum::serve(listener, fintel_sim::router(state)).await });
    let url = format!("http://{addr}/v1beta/models/gemini-2.5-flash:generateContent");
    let result = match client()
        .post(url)
        .header("x-goog-api-key", "key-a")
        .json(&request("x"))
        .send()
        .await
    {
        Ok(resp) => resp.bytes().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(result.is_err());
    server.abort();
}

#[test]
fn bad_config_and_busy_port_are_reported() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let clock: SharedClock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
        let mut bad = SimConfig::default();
        bad.gemini.projects.clear();
        let err = start(bad, clock.clone(), localhost())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("gemini.projects is empty"), "{err}");
        let mut missing = small_config();
        missing.sec.fixtures_dir = Some(std::path::PathBuf::from("no/such/dir"));
        let err = start(missing, clock.clone(), localhost())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("sec.fixtures_dir"), "{err}");
        let first = start(small_config(), clock.clone(), localhost())
            .await
            .unwrap();
        let err = start(small_config(), clock, first.addr())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot listen"), "{err}");
        first.shutdown().await;
    });
}

#[test]
fn generating_a_thousand_companies_times_seven_documents_is_fast() {
    let started = Instant::now();
    let universe = Universe::generate(&SimConfig::default());
    let mut bytes = 0usize;
    let mut documents = 0usize;
    for company in universe.companies() {
        let filings = universe.filings(company);
        for filing in filings
            .iter()
            .filter(|f| f.form == company.form.name())
            .take(7)
        {
            bytes += filing_html(company, filing, universe.seed()).len();
            documents += 1;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "generated {documents} documents, {:.1} MB, in {:.2} s ({:.0} MB/s)",
        bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        bytes as f64 / 1e6 / elapsed.as_secs_f64()
    );
    assert_eq!(documents, 7_000);
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

/// The skeleton of a JSON value: object keys (recursively), the distinct shapes of array
/// elements, and the kind of each scalar. Two bodies of the same shape differ only in values.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(items) => {
            let mut shapes: Vec<Value> = Vec::new();
            for s in items.iter().map(shape) {
                if !shapes.contains(&s) {
                    shapes.push(s);
                }
            }
            Value::Array(shapes)
        }
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => Value::Null,
    }
}

#[tokio::test]
async fn error_bodies_have_the_shapes_of_the_real_ones() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let fixture = |name: &str| -> Value {
        let text = std::fs::read_to_string(dir.join("gemini/errors").join(name)).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let mut config = shared_project(1, 100, 1_000);
    config.gemini.leaked_keys = vec!["leaked".into()];
    config.gemini.models[0].input_token_limit = 1_048_576;
    config.gemini.faults.unavailable = 1.0;
    config.gemini.max_schema_chars = Some(10);
    let (sim, clock) = sim_at(config, "2026-06-01T12:00:00Z").await;
    let model = "gemini-2.5-flash";

    // A refused schema is a plain INVALID_ARGUMENT, like every 400 without details.
    let schema = generate(
        &sim,
        Some("key-a"),
        model,
        &schema_request("x", &json!({"type": "object"})),
    )
    .await
    .1;
    let plain = fixture("400-invalid-argument-penalty-not-enabled.vercel-issue-8943.json");
    assert_eq!(shape(&schema), shape(&plain));

    let invalid = generate(&sim, Some("nope"), model, &request("x")).await.1;
    assert_eq!(
        invalid,
        fixture("400-invalid-argument-api-key-invalid.issue-continue-9330.json")
    );
    let leaked = generate(&sim, Some("leaked"), model, &request("x")).await.1;
    assert_eq!(
        leaked,
        fixture("403-permission-denied-api-key-leaked.issue-continue-10513.json")
    );

    let too_long = generate(
        &sim,
        Some("key-a"),
        model,
        &request(&"x".repeat(4 * 3_475_108)),
    )
    .await
    .1;
    assert_eq!(
        too_long,
        fixture("400-invalid-argument-input-token-count-exceeds-max.issue-gemini-cli-4231.json")
    );

    let too_big_for_tpm = generate(&sim, Some("key-a"), model, &request(&"x".repeat(4 * 2_000)))
        .await
        .1;
    let tpm = fixture(
        "429-resource-exhausted-input-tokens-per-minute-free-tier.issue-roo-code-3883.json",
    );
    assert_eq!(shape(&too_big_for_tpm), shape(&tpm));
    // The live message has since gained one line per violation with its limit (bodies of 2026
    // quoted in continuedev/continue#11557 and #10085): the fixture's text, then those lines.
    let message = too_big_for_tpm["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(tpm["error"]["message"].as_str().unwrap()),
        "{message}"
    );
    assert!(
        message.contains("\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_input_token_count, limit: 1000, model: gemini-2.5-flash\n"),
        "{message}"
    );
    assert_eq!(quota_ids(&too_big_for_tpm), quota_ids(&tpm));

    // The fault makes the first accepted request a 503; it still used the day's only request.
    let overloaded = generate(&sim, Some("key-a"), model, &request("x")).await.1;
    assert_eq!(
        overloaded,
        fixture("503-unavailable-model-overloaded.issue-continue-8308.json")
    );
    clock.advance(Duration::from_secs(120));
    let per_day = generate(&sim, Some("key-b"), model, &request("y")).await.1;
    let rpd = fixture("429-resource-exhausted-per-day-free-tier.page-oppl-ai.json");
    assert_eq!(shape(&per_day), shape(&rpd));
    assert_eq!(quota_ids(&per_day), quota_ids(&rpd));

    let unknown_model = generate(&sim, Some("key-a"), "gemini-5.0-flash", &request("x"))
        .await
        .1;
    let not_found = fixture("firebase-googleai-unary-failure-unknown-model.json");
    assert_eq!(shape(&unknown_model), shape(&not_found));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_schema_over_the_configured_size_is_refused_as_gemini_refuses_complex_schemas() {
    let mut config = shared_project(100, 100, 1_000_000);
    let small = json!({"type": "object", "properties": {"a": {"type": "string"}}});
    let large = json!({"type": "object", "properties": {"a_rather_long_property_name": {"type": "string", "enum": ["x", "y", "z"]}}});
    config.gemini.max_schema_chars = Some(small.to_string().len());
    let (sim, _clock) = sim_at(config, "2026-06-01T12:00:00Z").await;
    let (status, body) = generate(
        &sim,
        Some("key-a"),
        "gemini-2.5-flash",
        &schema_request("x", &small),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = generate(
        &sim,
        Some("key-a"),
        "gemini-2.5-flash",
        &schema_request("x", &large),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(body["error"]["code"], 400);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "The specified schema produces a constraint that has too many states for serving."
        ),
        "{message}"
    );
    assert!(body["error"].get("details").is_none());
    // A refused request is counted as received and invalid, and costs no quota.
    let t = sim.stats().gemini.total;
    assert_eq!((t.received, t.accepted, t.invalid_request), (2, 1, 1));
    sim.shutdown().await;
}

#[tokio::test]
async fn an_outage_started_on_demand_answers_503_until_it_ends() {
    let (sim, clock) = sim_at(shared_project(100, 100, 1_000_000), "2026-06-01T12:00:00Z").await;
    let model = "gemini-2.5-flash";
    assert_eq!(
        generate(&sim, Some("key-a"), model, &request("a")).await.0,
        200
    );
    let window = sim.start_outage(Duration::from_secs(600));
    assert_eq!(
        window.from,
        "2026-06-01T12:00:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(
        window.to,
        "2026-06-01T12:10:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(
        generate(&sim, Some("key-a"), model, &request("b")).await.0,
        503
    );
    clock.advance(Duration::from_secs(600));
    assert_eq!(
        generate(&sim, Some("key-a"), model, &request("b")).await.0,
        200
    );
    // The same over HTTP, for `fintel sim serve`.
    let url = format!("{}/__sim/outage", sim.base_url());
    let resp = client()
        .post(format!("{url}?seconds=60"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let w: Value = resp.json().await.unwrap();
    assert_eq!(w["to"], "2026-06-01T12:11:00Z");
    assert_eq!(
        generate(&sim, Some("key-a"), model, &request("c")).await.0,
        503
    );
    for bad in ["", "?seconds=0", "?seconds=soon"] {
        let resp = client().post(format!("{url}{bad}")).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        assert!(resp.text().await.unwrap().contains("?seconds=N"));
    }
    assert_eq!(sim.stats().gemini.total.faults.outage, 2);
    sim.shutdown().await;
}

/// The consumer a Google error body names (`ErrorInfo` metadata `consumer`), if any.
fn consumer(body: &Value) -> Option<String> {
    body["error"]["details"]
        .as_array()?
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo")
        .and_then(|d| d["metadata"]["consumer"].as_str())
        .map(str::to_string)
}

/// Keys of one project share its quota; with a project number its refusals name the consumer
/// (as the 2024-style 429 does), without one they do not (as today's free-tier 429 does).
#[tokio::test]
async fn refusals_name_the_project_only_when_it_has_a_number() {
    let mut config = shared_project(100, 1, 1_000_000);
    config.gemini.projects[0].number = Some("348715329010".into());
    let (sim, clock) = sim_at(config, "2026-06-01T12:00:00Z").await;
    let ok = generate(&sim, Some("key-a"), "gemini-2.5-flash", &request("1")).await;
    assert_eq!(ok.0, 200);
    // The other key of the same project is refused within the minute, naming the project.
    let (status, body) = generate(&sim, Some("key-b"), "gemini-2.5-flash", &request("2")).await;
    assert_eq!(status, 429);
    assert_eq!(consumer(&body).as_deref(), Some("projects/348715329010"));
    assert_eq!(
        quota_ids(&body),
        ["GenerateRequestsPerMinutePerProjectPerModel-FreeTier"]
    );
    // The project without a number: the same refusal, no consumer.
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        generate(&sim, Some("key-c"), "gemini-2.5-flash", &request("3"))
            .await
            .0,
        200
    );
    let (status, body) = generate(&sim, Some("key-c"), "gemini-2.5-flash", &request("4")).await;
    assert_eq!(status, 429);
    assert_eq!(consumer(&body), None, "{body}");
    sim.shutdown().await;
}

/// A project whose API is not enabled refuses every request 403 SERVICE_DISABLED, in the shape
/// of the real body, naming the project when it has a number.
#[tokio::test]
async fn a_project_without_the_api_enabled_answers_service_disabled() {
    let mut config = shared_project(100, 100, 1_000_000);
    config.gemini.projects[0].number = Some("12345678".into());
    config.gemini.projects[0].api_disabled = true;
    config.gemini.projects[1].api_disabled = true;
    let (sim, _clock) = sim_at(config, "2026-06-01T12:00:00Z").await;
    let (status, body) = generate(&sim, Some("key-a"), "gemini-2.5-flash", &request("1")).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(consumer(&body).as_deref(), Some("projects/12345678"));
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .starts_with("Generative Language API has not been used in project 12345678"));
    let (status, body) = generate(&sim, Some("key-c"), "gemini-2.5-flash", &request("2")).await;
    assert_eq!(status, 403);
    assert_eq!(consumer(&body), None);
    assert_eq!(sim.stats().gemini.api_disabled, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn answers_that_depend_on_thinking_size_and_packing_are_exact() {
    let mut config = shared_project(100, 100, 1_000_000);
    config.gemini.max_tokens_above_thinking = Some(4_096);
    config.gemini.invalid_json_above_tokens = Some(1_000);
    config.gemini.unusable_packed = true;
    let (sim, _clock) = sim_at(config, "2026-06-01T12:00:00Z").await;
    let part =
        json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]});
    let single = json!(part);
    let packed = json!({
        "type": "object",
        "properties": {"fy2023": part, "fy2024": part},
        "required": ["fy2023", "fy2024"],
        "propertyOrdering": ["fy2023", "fy2024"]
    });
    let with = |text: &str, schema: &Value, thinking: Value| {
        let mut r = schema_request(text, schema);
        match thinking {
            Value::Null => {
                r["generationConfig"]
                    .as_object_mut()
                    .unwrap()
                    .remove("thinkingConfig");
            }
            t => r["generationConfig"]["thinkingConfig"] = t,
        }
        r
    };
    let answer = |body: &Value| -> (String, Option<Value>) {
        let c = &body["candidates"][0];
        let text = c["content"]["parts"][0]["text"].as_str().unwrap_or("");
        (
            c["finishReason"].as_str().unwrap_or("").to_string(),
            serde_json::from_str(text).ok(),
        )
    };
    let cases = [
        // Thinking unbounded or above 4,096: cut off; bounded below: answered.
        (with("x", &single, Value::Null), "MAX_TOKENS", false),
        (
            with("x", &single, json!({"thinkingBudget": -1})),
            "MAX_TOKENS",
            false,
        ),
        (
            with("x", &single, json!({"thinkingBudget": 8192})),
            "MAX_TOKENS",
            false,
        ),
        (
            with("x", &single, json!({"thinkingLevel": "high"})),
            "MAX_TOKENS",
            false,
        ),
        (
            with("x", &single, json!({"thinkingBudget": 2048})),
            "STOP",
            true,
        ),
        (
            with("x", &single, json!({"thinkingLevel": "low"})),
            "STOP",
            true,
        ),
        // A request carrying a filing (over 1,000 tokens) is invalid JSON, a small one valid.
        (
            with(
                &"revenue grew ".repeat(400),
                &single,
                json!({"thinkingBudget": 1024}),
            ),
            "STOP",
            false,
        ),
        // A packed request is never usable, however small.
        (
            with("y", &packed, json!({"thinkingBudget": 1024})),
            "STOP",
            false,
        ),
    ];
    for (body, finish, valid) in cases {
        let (status, reply) = generate(&sim, Some("key-a"), "gemini-2.5-flash", &body).await;
        assert_eq!(status, 200, "{reply}");
        let (got_finish, json) = answer(&reply);
        assert_eq!(got_finish, finish, "{}", body["generationConfig"]);
        assert_eq!(json.is_some(), valid, "{reply}");
    }
    let faults = sim.stats().gemini.total;
    assert_eq!(faults.accepted, 8);
    sim.shutdown().await;
}

#[tokio::test]
async fn refusals_on_demand_have_the_real_shapes() {
    // A project without quota for the model: the 429 says "limit: 0" in its message, and its
    // violation has no quotaValue (ProtoJSON omits zero values).
    let config = shared_project(0, 100, 1_000_000);
    let (sim, _clock) = sim_at(config, "2026-06-01T12:00:00Z").await;
    let (status, body) = generate(&sim, Some("key-a"), "gemini-2.5-flash", &request("hi")).await;
    assert_eq!(status, 429, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, model: gemini-2.5-flash"
        ),
        "{message}"
    );
    assert!(message.contains("Please retry in"), "{message}");
    let violations = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.QuotaFailure")
        .unwrap()["violations"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        violations[0]["quotaId"],
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    );
    assert!(violations[0].get("quotaValue").is_none(), "{body}");
    sim.shutdown().await;

    let mut config = shared_project(100, 100, 1_000_000);
    config.gemini.packed_schema_too_complex = true;
    config.gemini.blocked_prompts = vec!["(ticker BAD)".into()];
    let (sim, _clock) = sim_at(config, "2026-06-01T12:00:00Z").await;
    let part =
        json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]});
    let packed = json!({"type": "object", "properties": {"fy2023": part, "fy2024": part},
        "required": ["fy2023", "fy2024"]});
    // A packed schema is too complex; each year's alone is served.
    let (status, body) = generate(
        &sim,
        Some("key-a"),
        "gemini-2.5-flash",
        &schema_request("x", &packed),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("too many states for serving"));
    let (status, _) = generate(
        &sim,
        Some("key-a"),
        "gemini-2.5-flash",
        &schema_request("x", &part),
    )
    .await;
    assert_eq!(status, 200);
    // A blocked prompt: 200, promptFeedback.blockReason, no candidates.
    let (status, body) = generate(
        &sim,
        Some("key-a"),
        "gemini-2.5-flash",
        &schema_request("Company: Bad Corp (ticker BAD)", &part),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["promptFeedback"]["blockReason"], "PROHIBITED_CONTENT");
    assert!(body.get("candidates").is_none(), "{body}");
    let t = sim.stats().gemini.total;
    assert_eq!(
        (t.accepted, t.blocked_prompts, t.invalid_request),
        (1, 1, 1)
    );
    sim.shutdown().await;
}
