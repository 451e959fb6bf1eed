//! The weather mode over HTTP on 127.0.0.1, on a manual clock: a `[weather]` block read from
//! TOML, outages counted from the start, a late reset refusing per-day until it arrives,
//! countTokens answering the real count and generateContent refusing by it, slow answers held
//! for clock time, and faults that repeat with the seed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fintel_sim::{start, SimConfig, SimHandle};
use fintel_time::{ManualClock, SharedClock};
use jiff::Timestamp;
use serde_json::{json, Value};

/// 00:10 Pacific on 2026-03-02 (PST).
const START: &str = "2026-03-02T08:10:00Z";

fn config(weather: &str) -> SimConfig {
    SimConfig::from_toml_str(&format!(
        r#"
seed = 16
[sec]
companies = 20
[[gemini.projects]]
name = "p1"
keys = ["key-1"]
requests_per_day = 3
requests_per_minute = 1000
input_tokens_per_minute = 1000
[weather]
{weather}
"#
    ))
    .unwrap()
}

async fn sim(config: SimConfig) -> (SimHandle, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(START.parse::<Timestamp>().unwrap()));
    let shared: SharedClock = clock.clone();
    let handle = start(config, shared, "127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .await
        .unwrap();
    (handle, clock)
}

fn filing_request(cik: &str, chars: usize) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": format!(
        "For the fiscal year ended December 31, 2023\nCentral Index Key: {cik}.\n{}",
        "x".repeat(chars)
    )}]}]})
}

async fn post(sim: &SimHandle, method: &str, body: &Value) -> (u16, Value) {
    let url = format!("{}/v1beta/models/gemini-2.5-flash:{method}", sim.base_url());
    let resp = reqwest::Client::new()
        .post(url)
        .header("x-goog-api-key", "key-1")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn quota_id(body: &Value) -> String {
    body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["violations"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v["quotaId"].as_str().map(str::to_owned))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test]
async fn outages_are_scripted_from_the_start_and_cost_no_quota() {
    let (sim, clock) = sim(config(
        "outages = [{ after_minutes = 0, minutes = 10 }, { after_minutes = 60, minutes = 5 }]",
    ))
    .await;
    let body = filing_request("0000000001", 40);
    assert_eq!(post(&sim, "generateContent", &body).await.0, 503);
    clock.advance(Duration::from_secs(10 * 60));
    assert_eq!(post(&sim, "generateContent", &body).await.0, 200);
    clock.advance(Duration::from_secs(50 * 60));
    assert_eq!(post(&sim, "generateContent", &body).await.0, 503);
    clock.advance(Duration::from_secs(5 * 60));
    assert_eq!(post(&sim, "generateContent", &body).await.0, 200);
    let stats = sim.stats();
    assert_eq!(stats.gemini.total.faults.outage, 2);
    // Only the two answers count against the day of 3.
    assert_eq!(post(&sim, "generateContent", &body).await.0, 200);
    let (status, refusal) = post(&sim, "generateContent", &body).await;
    assert_eq!(status, 429);
    assert!(quota_id(&refusal).contains("PerDay"), "{refusal}");
}

#[tokio::test]
async fn a_late_reset_refuses_per_day_until_it_arrives() {
    // The start's day resets on time, the next 45 minutes late.
    let (sim, clock) = sim(config("late_reset_minutes = [0, 45]")).await;
    let body = filing_request("0000000001", 40);
    for _ in 0..3 {
        assert_eq!(post(&sim, "generateContent", &body).await.0, 200);
    }
    // 00:10 Pacific the next day: still the old quota day, spent.
    clock.set("2026-03-03T08:10:00Z".parse().unwrap());
    let (status, refusal) = post(&sim, "generateContent", &body).await;
    assert_eq!(status, 429, "{refusal}");
    assert!(quota_id(&refusal).contains("PerDay"), "{refusal}");
    clock.set("2026-03-03T08:44:59Z".parse().unwrap());
    assert_eq!(post(&sim, "generateContent", &body).await.0, 429);
    // 00:45 Pacific: reset.
    clock.set("2026-03-03T08:45:00Z".parse().unwrap());
    assert_eq!(post(&sim, "generateContent", &body).await.0, 200);
    // The stats count each request in the quota day the provider counted it in.
    let stats = sim.stats();
    let day = |d: &str| stats.gemini.dates[d].projects["p1"].clone();
    assert_eq!(day("2026-03-02").accepted, 3);
    assert_eq!(day("2026-03-02").refused_rpd, 2);
    assert_eq!(day("2026-03-03").accepted, 1);
}

#[tokio::test]
async fn count_tokens_answers_the_real_count_and_generate_refuses_by_it() {
    let (sim, _clock) = sim(config("token_factor_min = 1.3\ntoken_factor_max = 1.3")).await;
    // About 850 estimated tokens: under the cap of 1,000 by the estimate, 1,105 by the real
    // count.
    let body = filing_request("0000000001", 3_320);
    let (status, counted) = post(&sim, "countTokens", &body).await;
    assert_eq!(status, 200, "{counted}");
    let estimate = fintel_sim::estimate_tokens(&body);
    assert!(estimate < 1_000, "{estimate}");
    let real = counted["totalTokens"].as_u64().unwrap();
    assert_eq!(real, (estimate as f64 * 1.3).ceil() as u64);
    let (status, refusal) = post(&sim, "generateContent", &body).await;
    assert_eq!(status, 429, "{refusal}");
    assert!(quota_id(&refusal).contains("InputTokens"), "{refusal}");
    assert_eq!(sim.stats().gemini.total.refused_request_too_big, 1);
    // Fitted below the cap by the real count, it passes.
    let fitted = filing_request("0000000001", 2_900);
    let (status, answer) = post(&sim, "generateContent", &fitted).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["usageMetadata"]["promptTokenCount"].as_u64(),
        Some((fintel_sim::estimate_tokens(&fitted) as f64 * 1.3).ceil() as u64)
    );
}

#[tokio::test]
async fn a_slow_answer_waits_for_the_simulated_clock() {
    let (sim, clock) = sim(config("slow = 1.0\nslow_seconds = 90")).await;
    let body = filing_request("0000000001", 40);
    let url = sim.base_url();
    let call = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .post(format!(
                "{url}/v1beta/models/gemini-2.5-flash:generateContent"
            ))
            .header("x-goog-api-key", "key-1")
            .json(&body)
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    });
    // Held until the slow answer is counted (an event, not a timing), then until the clock
    // moves on by 90 s.
    while sim.stats().gemini.total.faults.slow == 0 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    clock.advance(Duration::from_secs(89));
    assert!(!call.is_finished());
    clock.advance(Duration::from_secs(1));
    assert_eq!(call.await.unwrap(), 200);
}

#[tokio::test]
async fn weather_faults_repeat_with_the_seed() {
    async fn outcomes() -> Vec<(u16, String)> {
        let mut c = config("unavailable = 0.2\nmax_tokens = 0.2\ninvalid_json = 0.2");
        c.gemini.projects[0].requests_per_day = 1_000;
        let (sim, _clock) = sim(c).await;
        let mut out = Vec::new();
        for i in 0..12 {
            let mut request = filing_request(&format!("{i:010}"), 40);
            request["generationConfig"] = json!({
                "responseMimeType": "application/json",
                "responseJsonSchema": {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}
            });
            let (status, body) = post(&sim, "generateContent", &request).await;
            let finish = body["candidates"][0]["finishReason"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let text = body["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .map(|t| serde_json::from_str::<Value>(t).is_ok().to_string())
                .unwrap_or_default();
            out.push((status, format!("{finish} {text}")));
        }
        out
    }
    let first = outcomes().await;
    assert!(first.iter().any(|(s, _)| *s == 503), "{first:?}");
    assert!(
        first.iter().any(|(_, f)| f.starts_with("MAX_TOKENS")),
        "{first:?}"
    );
    assert!(first.iter().any(|(_, f)| f == "STOP false"), "{first:?}");
    assert!(first.iter().any(|(_, f)| f == "STOP true"), "{first:?}");
    assert_eq!(first, outcomes().await);
}

#[test]
fn the_weather_block_is_read_from_toml_with_its_defaults() {
    let c = config(
        "unavailable = 0.02\nlate_reset_max_minutes = 90\n[[weather.outages]]\nafter_minutes = 1440\nminutes = 120",
    );
    let w = c.weather.as_ref().unwrap();
    assert_eq!(w.unavailable, 0.02);
    assert_eq!(w.late_reset_max_minutes, 90);
    assert_eq!(w.outages[0].minutes, 120);
    assert_eq!(w.token_factor_max, 1.0);
    assert!(SimConfig::default().weather.is_none());
    let err = SimConfig::from_toml_str("[weather]\nunavailable = 2.0")
        .unwrap_err()
        .to_string();
    assert!(err.contains("weather.unavailable"), "{err}");
    let err = SimConfig::from_toml_str("[weather]\nrain = 1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field"), "{err}");
}
