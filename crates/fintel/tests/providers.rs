//! The built binary against the simulator taught each provider family's parameter rules: an
//! OpenAI reasoning model refuses `max_tokens` and any temperature but 1 with OpenAI's own
//! bodies (fintel learns, stores and follows what it refused, and stops only for a parameter
//! the user set), a Gemini 3 model gets `thinkingLevel` and no temperature, every result
//! records the parameters it was asked with (seed included), and the OpenAI wire schema is
//! sent strict.

mod support;

use std::process::Command;

use fintel_sim::{Flavor, ModelConfig, OpenAiSimConfig, SimConfig};
use serde_json::Value;
use support::*;

async fn openai_env(models: &[&str], reasoning: &[&str]) -> Env {
    let openai = OpenAiSimConfig {
        flavor: Flavor::OpenAi,
        models: models.iter().map(|m| m.to_string()).collect(),
        reasoning_models: reasoning.iter().map(|m| m.to_string()).collect(),
        ..OpenAiSimConfig::default()
    };
    Env::with(0, |c: &mut SimConfig| {
        c.sec.document_bytes = 30_000;
        c.openai = Some(openai);
    })
    .await
}

fn openai_cmd(env: &Env, model: &str, args: &[&str]) -> Command {
    let mut c = env.cmd(args);
    c.env("FINTEL_PROVIDER", "openai")
        .env("FINTEL_OPENAI_URL", &env.url)
        .env("FINTEL_MODEL", model)
        .env_remove("GOOGLE_API_KEY_1");
    c
}

fn learned(env: &Env) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT model, param, action FROM learned_params ORDER BY param")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn request_params(env: &Env) -> Vec<Value> {
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT request_params FROM results ORDER BY result_key")
        .unwrap();
    stmt.query_map([], |r| r.get::<_, Option<String>>(0))
        .unwrap()
        .map(|t| serde_json::from_str(&t.unwrap().expect("request_params stored")).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_parameters_are_learned_once_stored_and_followed_by_the_next_process() {
    // A model fintel does not know as a reasoning model, which refuses like one.
    let env = openai_env(&["acme-reasoner-1"], &["acme-reasoner"]).await;
    let out = openai_cmd(
        &env,
        "acme-reasoner-1",
        &["batch", "companies.csv", "--years", "1"],
    )
    .output()
    .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("max_tokens is sent as max_completion_tokens"),
        "{stderr}"
    );
    assert!(stderr.contains("temperature is left out"), "{stderr}");
    assert_eq!(env.completed_results(), 8);
    let stats = env.sim.as_ref().unwrap().stats().openai;
    // Each refusal once, or once more for a call already in flight when it was learned.
    assert!(
        (2..=4).contains(&stats.param_refused),
        "refused {}: {stats:?}",
        stats.param_refused
    );
    assert_eq!(
        learned(&env),
        vec![
            (
                "acme-reasoner-1".to_string(),
                "max_tokens".to_string(),
                "rename:max_completion_tokens".to_string()
            ),
            (
                "acme-reasoner-1".to_string(),
                "temperature".to_string(),
                "drop".to_string()
            ),
        ]
    );
    for params in request_params(&env) {
        assert_eq!(params["output_field"], "max_completion_tokens", "{params}");
        assert_eq!(params["temperature"], Value::Null, "{params}");
        assert_eq!(params["seed"], 1, "{params}");
    }

    // Another process follows what the database learned: nothing is refused again.
    let before = stats.param_refused;
    let out = openai_cmd(
        &env,
        "acme-reasoner-1",
        &["batch", "companies.csv", "--years", "2", "--force"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stats = env.sim.as_ref().unwrap().stats().openai;
    assert_eq!(stats.param_refused, before, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gpt_5_model_gets_its_parameters_from_the_first_request() {
    let env = openai_env(&["gpt-5-mini"], &["gpt-5"]).await;
    let out = openai_cmd(
        &env,
        "gpt-5-mini",
        &["batch", "companies.csv", "--years", "1"],
    )
    .env("FINTEL_SEED", "7")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stats = env.sim.as_ref().unwrap().stats().openai;
    assert_eq!(stats.param_refused, 0, "{stats:?}");
    assert_eq!(stats.seeded, stats.received, "{stats:?}");
    assert!(learned(&env).is_empty());
    let params = request_params(&env);
    assert_eq!(params.len(), 8);
    for p in params {
        assert_eq!(p["family"], "openai-reasoning", "{p}");
        assert_eq!(p["seed"], 7, "{p}");
        assert_eq!(p["output_field"], "max_completion_tokens", "{p}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_temperature_the_user_set_and_the_model_refuses_is_exit_4_with_the_providers_message() {
    let env = openai_env(&["gpt-5-mini"], &["gpt-5"]).await;
    let out = openai_cmd(
        &env,
        "gpt-5-mini",
        &["batch", "companies.csv", "--years", "1"],
    )
    .env("FINTEL_TEMPERATURE", "0.5")
    .output()
    .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains(
            "Unsupported value: 'temperature' does not support 0.5 with this model. Only the \
             default (1) value is supported."
        ),
        "{stderr}"
    );
    assert!(stderr.contains("FINTEL_TEMPERATURE"), "{stderr}");
    assert!(
        learned(&env).is_empty(),
        "a setting of the user's is not learned"
    );
    assert_eq!(env.completed_results(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gemini_3_model_gets_a_thinking_level_and_no_temperature() {
    let env = Env::with(0, |c| c.gemini.models = ModelConfig::gemini_3_only()).await;
    let out = env
        .cmd(&["batch", "companies.csv", "--years", "1"])
        .env("FINTEL_MODEL", "gemini-3-flash")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let gemini = env.sim.as_ref().unwrap().stats().gemini;
    assert_eq!(gemini.gemini3_against_advice, 0, "{gemini:?}");
    assert!(gemini.gemini3_thinking_level >= 8, "{gemini:?}");
    assert!(gemini.seeded >= 8, "{gemini:?}");
    for p in request_params(&env) {
        assert_eq!(p["family"], "gemini-3", "{p}");
        assert_eq!(p["temperature"], Value::Null, "{p}");
        assert_eq!(p["thinking"]["level"], "high", "{p}");
        assert_eq!(p["seed"], 1, "{p}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_wire_schema_is_strict_and_the_server_accepts_it() {
    let env = openai_env(&["gpt-4o-mini"], &[]).await;
    let out = openai_cmd(
        &env,
        "gpt-4o-mini",
        &["batch", "companies.csv", "--years", "1"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stats = env.sim.as_ref().unwrap().stats().openai;
    assert_eq!(stats.strict_refused, 0, "{stats:?}");
    assert_eq!(
        stats.strict, stats.received,
        "every request strict: {stats:?}"
    );
    assert_eq!(env.completed_results(), 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_spends_nothing_unless_asked_to_probe_and_the_probe_learns() {
    let env = openai_env(&["acme-reasoner-1"], &["acme-reasoner"]).await;
    let out = openai_cmd(&env, "acme-reasoner-1", &["doctor"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(env.sim.as_ref().unwrap().stats().openai.received, 0);

    let out = openai_cmd(&env, "acme-reasoner-1", &["doctor", "--probe", "--json"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let probe = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "probe")
        .expect("a probe check");
    assert_eq!(probe["ok"], true, "{probe}");
    let detail = probe["detail"].as_str().unwrap();
    assert!(detail.contains("one request"), "{detail}");
    assert!(
        detail.contains("max_tokens is sent as max_completion_tokens"),
        "{detail}"
    );
    assert_eq!(learned(&env).len(), 2);
    let stats = env.sim.as_ref().unwrap().stats().openai;
    assert_eq!(stats.param_refused, 2, "{stats:?}");
    assert_eq!(stats.answered, 1, "{stats:?}");

    // The batch after it is never refused.
    let out = openai_cmd(
        &env,
        "acme-reasoner-1",
        &["batch", "companies.csv", "--years", "1"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(env.sim.as_ref().unwrap().stats().openai.param_refused, 2);
}
