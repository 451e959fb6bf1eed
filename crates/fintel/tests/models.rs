//! Models are discovered, not assumed: the built binary against `fintel sim serve`'s Gemini
//! serving only Gemini 3.x models (no model configured, a configured model it does not serve),
//! and a batch whose model retires under it, then goes on with `--switch-model`.

mod support;

use fintel_sim::ModelConfig;
use support::{text, Env};

fn result_models(env: &Env) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT model, COUNT(*) FROM results GROUP BY model ORDER BY model")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_model_configured_doctor_and_a_batch_choose_a_served_gemini_3_model() {
    let env = Env::with(0, |c| {
        c.gemini.models = ModelConfig::gemini_3_only();
        // A page of one model: the list is read to its last page.
        c.gemini.models_page_size = 1;
    })
    .await;
    let out = env.run(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["model"], "gemini-3-flash");
    assert_eq!(doc["model_chosen"]["model"], "gemini-3-flash");
    let reason = doc["model_chosen"]["reason"].as_str().unwrap();
    assert!(reason.contains("generally available"), "{reason}");
    let model_check = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "model")
        .unwrap();
    assert!(
        model_check["detail"].as_str().unwrap().contains("chosen"),
        "{model_check}"
    );

    let out = env.run(&["batch", "companies.csv", "--years", "2", "--json"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("model: gemini-3-flash (chosen: the newest generally available Flash"),
        "{err}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = doc["batch_id"].as_str().unwrap().to_string();
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let pinned: String = conn
        .query_row("SELECT model FROM batches WHERE id = ?1", [&id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(pinned, "gemini-3-flash");
    let models = result_models(&env);
    assert_eq!(models.len(), 1, "{models:?}");
    assert_eq!(models[0].0, "gemini-3-flash");
    assert!(models[0].1 > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_model_that_is_not_served_is_exit_4_naming_the_served_ones() {
    let env = Env::with(0, |c| c.gemini.models = ModelConfig::gemini_3_only()).await;
    let out = env
        .cmd(&["batch", "companies.csv", "--years", "2"])
        .env("FINTEL_MODEL", "gemini-2.5-flash")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("\"gemini-2.5-flash\" is not served"), "{err}");
    assert!(
        err.contains("gemini-3-flash, gemini-3-flash-lite, gemini-3-pro-preview"),
        "{err}"
    );
    assert_eq!(env.completed_results(), 0);
    assert!(
        !env.db().exists()
            || rusqlite::Connection::open(env.db())
                .unwrap()
                .query_row("SELECT COUNT(*) FROM batches", [], |r| r.get::<_, i64>(0))
                .unwrap()
                == 0,
        "no batch is created"
    );

    let out = env
        .cmd(&["doctor", "--json"])
        .env("FINTEL_MODEL", "gemini-2.5-flash")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let model = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "model")
        .unwrap();
    assert_eq!(model["ok"], false);
    let detail = model["detail"].as_str().unwrap();
    assert!(
        detail.contains("not served") && detail.contains("gemini-3-flash"),
        "{detail}"
    );
    // The key got past authentication: it is the model's problem, not the key's.
    assert_eq!(doc["keys"][0]["status"], "ok", "{doc}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_retired_mid_batch_stops_it_and_switch_model_finishes_it() {
    let env = Env::with(0, |c| {
        let mut old = ModelConfig::named("gemini-3-flash");
        old.retire_after_answers = Some(3);
        c.gemini.models = vec![old, ModelConfig::named("gemini-3.1-flash")];
    })
    .await;
    let with_old = |args: &[&str]| {
        env.cmd(args)
            .env("FINTEL_MODEL", "gemini-3-flash")
            .env("FINTEL_CONCURRENCY", "1")
            .output()
            .unwrap()
    };
    let out = with_old(&["batch", "companies.csv", "--years", "2", "--json"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("is no longer served by the provider (retired)"),
        "{err}"
    );
    assert!(err.contains("--switch-model NEW"), "{err}");
    assert!(err.contains("new batch"), "{err}");
    // The served models are offered: the retired one is not among them.
    assert!(err.contains("Served models: gemini-3.1-flash"), "{err}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = doc["batch_id"].as_str().unwrap().to_string();
    let before = result_models(&env);
    assert_eq!(before, vec![("gemini-3-flash".to_string(), 3)]);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let failed: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM tasks WHERE batch_id = ?1 AND state = 'failed'",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failed, 0, "no task is failed for a retired model");

    // A plain resume stops again, saying the same.
    let out = with_old(&["batch", "--resume", &id]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("--switch-model"), "{err}");

    // Bad switches change nothing.
    let batch_model = || -> String {
        conn.query_row("SELECT model FROM batches WHERE id = ?1", [&id], |r| {
            r.get(0)
        })
        .unwrap()
    };
    let switches = || -> i64 {
        conn.query_row("SELECT COUNT(*) FROM model_switches", [], |r| r.get(0))
            .unwrap()
    };
    let out = with_old(&["batch", "--resume", &id, "--switch-model", "gemini-9-ultra"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("\"gemini-9-ultra\" is not served"), "{err}");
    assert!(err.contains("was not changed"), "{err}");
    let out = with_old(&["batch", "--resume", &id, "--switch-model", "gemini-3-flash"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("already analyses with gemini-3-flash"),
        "{err}"
    );
    let out = with_old(&["batch", "--resume", "--switch-model", "gemini-3.1-flash"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("name it"));
    assert_eq!(batch_model(), "gemini-3-flash");
    assert_eq!(switches(), 0);

    // The switch: recorded, the batch finishes, and every result keeps its own model.
    let out = with_old(&[
        "batch",
        "--resume",
        &id,
        "--switch-model",
        "gemini-3.1-flash",
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("model switched from gemini-3-flash to gemini-3.1-flash"),
        "{err}"
    );
    assert_eq!(batch_model(), "gemini-3.1-flash");
    assert_eq!(switches(), 1);
    let after = result_models(&env);
    assert_eq!(after[0], ("gemini-3-flash".to_string(), 3), "{after:?}");
    assert_eq!(after[1].0, "gemini-3.1-flash");
    assert!(after[1].1 > 0);

    let out = env.run(&["batch", "status", &id, "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["state"], "completed");
    assert_eq!(st["model"], "gemini-3.1-flash");
    assert_eq!(st["result_models"].as_array().unwrap().len(), 2, "{st}");
    assert_eq!(st["model_switches"][0]["from_model"], "gemini-3-flash");
    assert_eq!(st["model_switches"][0]["to_model"], "gemini-3.1-flash");
    let out = env.run(&["batch", "status", &id]);
    let shown = text(&out.stdout);
    assert!(shown.contains("results come from 2 models"), "{shown}");
    assert!(
        shown.contains("gemini-3-flash -> gemini-3.1-flash"),
        "{shown}"
    );

    // Exports and the screen say so too.
    let out = env.run(&[
        "export",
        "--batch-id",
        &id,
        "--format",
        "csv",
        "--output",
        "-",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("results come from 2 models"), "{err}");
    let csv = text(&out.stdout);
    assert!(csv.contains("gemini-3-flash") && csv.contains("gemini-3.1-flash"));
    let out = env.run(&[
        "screen",
        "--analysis-type",
        "fundamental",
        "--sort",
        "score",
        "--batch-id",
        &id,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("results come from 2 models"),
        "{}",
        text(&out.stderr)
    );

    // A completed batch has nothing left to switch.
    let out = env.run(&["batch", "--resume", &id, "--switch-model", "gemini-3-flash"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(switches(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_openai_compatible_server_with_one_model_gets_that_model_chosen() {
    let env = Env::with(0, |c| {
        c.openai = Some(fintel_sim::OpenAiSimConfig {
            models: vec!["smollm2-135m".into()],
            ..Default::default()
        })
    })
    .await;
    let openai = |args: &[&str]| {
        env.cmd(args)
            .env("FINTEL_PROVIDER", "openai")
            .env("FINTEL_OPENAI_URL", &env.url)
            .output()
            .unwrap()
    };
    let out = openai(&["doctor", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["model"], "smollm2-135m", "{doc}");
    assert_eq!(
        doc["model_chosen"]["reason"],
        "the only model the server serves"
    );
    let out = openai(&["batch", "companies.csv", "--years", "1"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("model: smollm2-135m (chosen: the only model the server serves"),
        "{err}"
    );
    assert_eq!(result_models(&env)[0].0, "smollm2-135m");
}
