//! The built binary against the simulator's local-server flavors, configured as a user would
//! (FINTEL_PROVIDER=openai, FINTEL_OPENAI_URL, no key): the context and slots a server reports
//! are used from the first request, Ollama's silent truncation never reaches the results, a
//! context too small is exit 4 saying how large it must be, and `fintel doctor` talks about
//! the server, not about Google.

mod support;

use std::process::Command;

use fintel_sim::{Flavor, OpenAiSimConfig, SimConfig};
use support::*;

async fn local_env(openai: OpenAiSimConfig) -> Env {
    Env::with(0, |c: &mut SimConfig| {
        c.sec.document_bytes = 60_000;
        c.openai = Some(openai);
    })
    .await
}

/// `fintel ARGS` against the OpenAI-compatible side, with no concurrency configured.
fn local_cmd(env: &Env, args: &[&str]) -> Command {
    let mut c = env.cmd(args);
    c.env("FINTEL_PROVIDER", "openai")
        .env("FINTEL_OPENAI_URL", &env.url)
        .env("FINTEL_MODEL", "local")
        .env_remove("GOOGLE_API_KEY_1")
        .env_remove("FINTEL_CONCURRENCY");
    c
}

fn flavor(flavor: Flavor, context_tokens: u64) -> OpenAiSimConfig {
    OpenAiSimConfig {
        flavor,
        models: vec!["local".into()],
        context_tokens,
        ..OpenAiSimConfig::default()
    }
}

fn stored_prompt_tokens(env: &Env) -> Vec<i64> {
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT prompt_tokens FROM results ORDER BY result_key")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<i64>, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn llamacpp_context_and_slots_are_used_from_the_first_request() {
    let env = local_env(OpenAiSimConfig {
        slots: 2,
        answer_ms: 30,
        ..flavor(Flavor::LlamaCpp, 4_096)
    })
    .await;
    let out = local_cmd(&env, &["batch", "companies.csv", "--years", "1"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("llama.cpp server says a context of 4096 tokens and 2 slot(s)"),
        "{stderr}"
    );
    let stats = env.sim.as_ref().unwrap().stats().openai;
    assert_eq!(
        stats.context_refused, 0,
        "fitted to n_ctx before sending: {stats:?}"
    );
    // The first answers of the fundamental schema need more than a quarter of the context:
    // cut off, they raise the output budget for the run and are never sent again as they were.
    assert!(stats.length <= 2, "{stats:?}");
    assert_eq!(stats.repeated_after_length, 0, "{stats:?}");
    assert!(stats.max_busy <= 2, "{stats:?}");
    assert_eq!(env.completed_results(), 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn ollama_silent_truncation_is_caught_and_never_stored() {
    let env = local_env(OpenAiSimConfig {
        model_context_tokens: Some(131_072),
        ..flavor(Flavor::Ollama, 4_096)
    })
    .await;
    let out = local_cmd(&env, &["batch", "companies.csv", "--years", "1"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("silent truncation"), "{stderr}");
    let stats = env.sim.as_ref().unwrap().stats().openai;
    assert!(stats.truncated_silently >= 1, "{stats:?}");
    let prompts = stored_prompt_tokens(&env);
    assert_eq!(prompts.len(), 8);
    assert!(
        prompts.iter().all(|&p| p > 0 && p < 4_096),
        "every stored answer read a whole prompt: {prompts:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_context_too_small_is_exit_4_saying_how_large_it_must_be() {
    let env = local_env(flavor(Flavor::LlamaCpp, 4_096)).await;
    let out = local_cmd(&env, &["batch", "companies.csv", "--years", "1"])
        .env("FINTEL_CONTEXT_TOKENS", "1200")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("too small for this analysis"), "{stderr}");
    assert!(stderr.contains("needs a context of at least"), "{stderr}");
    assert_eq!(env.sim.as_ref().unwrap().stats().openai.received, 0);
    // Careless input is refused before anything starts.
    let out = local_cmd(&env, &["batch", "companies.csv", "--years", "1"])
        .env("FINTEL_CONTEXT_TOKENS", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("FINTEL_CONTEXT_TOKENS"));
    let out = local_cmd(&env, &["batch", "companies.csv", "--years", "1"])
        .env("FINTEL_REQUEST_TIMEOUT_SECONDS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("FINTEL_REQUEST_TIMEOUT_SECONDS"));
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_talks_about_the_local_server_not_about_google() {
    let env = local_env(OpenAiSimConfig {
        slots: 2,
        ..flavor(Flavor::LlamaCpp, 4_096)
    })
    .await;
    let out = local_cmd(&env, &["doctor"]).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("server: llama.cpp server at")
            && stdout.contains("says a context of 4096 tokens and 2 slot(s)")
            && stdout.contains("run 2 at a time"),
        "{stdout}"
    );
    for google in ["Google", "AI Studio", "gemini"] {
        assert!(!stdout.contains(google), "{google} in: {stdout}");
    }
    assert_eq!(
        env.sim.as_ref().unwrap().stats().openai.received,
        0,
        "doctor spends nothing"
    );

    // The server is not running: the advice is about the server and its URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = local_cmd(&env, &["doctor"])
        .env("FINTEL_OPENAI_URL", &url)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert!(stdout.contains("FINTEL_OPENAI_URL"), "{stdout}");
    assert!(stdout.contains("start the server"), "{stdout}");
    for google in ["Google", "AI Studio"] {
        assert!(!stdout.contains(google), "{google} in: {stdout}");
    }
}
