//! End-to-end: a `multi` batch pinned to the earlier verdict (`buy | hold | pass`) resumes on
//! this build with that schema, while a new batch gets the five-level verdict and every lens's
//! `action_signal`.

mod support;

use fintel_sim::ModelConfig;
use fintel_workflows::{Registry, Workflow};
use serde_json::Value;
use support::*;

/// `multi` as it was before its verdict became a scale, as a workflow file.
const MULTI_BEFORE_SIGNALS: &str =
    include_str!("../../fintel-workflows/tests/samples/multi_before_signals.toml");

/// Every stored `multi` result: (analysis version, answer).
fn results(env: &Env) -> Vec<(String, Value)> {
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT analysis_version, json FROM results WHERE analysis_type = 'multi' ORDER BY id",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            serde_json::from_str(&r.get::<_, String>(1)?).unwrap(),
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_old_multi_batch_resumes_with_its_verdict_and_a_new_batch_gets_the_scale() {
    // The model retires after three answers: the first run stops there, part done.
    let env = Env::with(0, |c| {
        let mut old = ModelConfig::named("gemini-3-flash");
        old.retire_after_answers = Some(3);
        c.gemini.models = vec![old, ModelConfig::named("gemini-3.1-flash")];
    })
    .await;
    std::fs::write(
        env.dir.path().join("four.csv"),
        fintel_sim::companies_csv(4),
    )
    .unwrap();
    let run = |args: &[&str]| {
        env.cmd(args)
            .env("FINTEL_MODEL", "gemini-3-flash")
            .env("FINTEL_CONCURRENCY", "1")
            .output()
            .unwrap()
    };

    // The earlier build: its `multi` is the earlier file.
    let workflows = env.home().join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(workflows.join("multi.toml"), MULTI_BEFORE_SIGNALS).unwrap();
    let earlier = Workflow::from_file(&workflows.join("multi.toml")).unwrap();
    let out = run(&[
        "batch",
        "four.csv",
        "--years",
        "2",
        "--analysis-type",
        "multi",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = doc["batch_id"].as_str().unwrap().to_string();
    assert_eq!(results(&env).len(), 3);

    // This build: the file is gone, the built-in `multi` is the new version.
    std::fs::remove_file(workflows.join("multi.toml")).unwrap();
    let current = Registry::load(&[]).unwrap().get("multi").unwrap().clone();
    assert_ne!(current.version, earlier.version);
    let out = run(&[
        "batch",
        "--resume",
        &id,
        "--switch-model",
        "gemini-3.1-flash",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["state"], "completed", "{doc}");
    assert_eq!(doc["counts"]["failed"], 0, "{doc}");

    let old_validator = earlier.year.as_ref().unwrap().output_validator().unwrap();
    let old_results = results(&env);
    assert_eq!(old_results.len(), 8);
    for (version, answer) in &old_results {
        assert_eq!(
            version, &earlier.version,
            "every result from the pinned version"
        );
        old_validator.validate(answer).unwrap();
        let verdict = answer["verdict"].as_str().unwrap();
        assert!(["buy", "hold", "pass"].contains(&verdict), "{answer}");
        assert!(answer["buffett"].get("action_signal").is_none(), "{answer}");
    }
    // The old batch screens by its own schema, `pass` included.
    let out = env.run(&[
        "screen",
        "--analysis-type",
        "multi",
        "--batch-id",
        &id,
        "--sort",
        "conviction",
        "--where",
        "verdict >= pass",
        "--show",
        "verdict",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 4);

    // Its export and its results read the earlier fields.
    let csv = env.dir.path().join("old.csv");
    let out = env.run(&[
        "export",
        "--batch-id",
        &id,
        "--format",
        "csv",
        "--output",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let exported = std::fs::read_to_string(&csv).unwrap();
    let header = exported.lines().next().unwrap();
    assert!(header.contains("verdict"), "{header}");
    assert!(!header.contains("action_signal"), "{header}");
    let ticker = rows[0]["ticker"].as_str().unwrap();
    let out = env.run(&["results", ticker, "--analysis-type", "multi"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let verdict = rows[0]["fields"]["verdict"].as_str().unwrap();
    let word = format!("Verdict: {}{}", verdict[..1].to_uppercase(), &verdict[1..]);
    assert!(shown.contains(&word), "{word}: {shown}");
    assert!(!shown.contains("Action signal"), "{shown}");

    // A new batch gets the scale and the action signals.
    let out = run(&[
        "batch",
        "four.csv",
        "--years",
        "2",
        "--analysis-type",
        "multi",
        "--model",
        "gemini-3.1-flash",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let validator = current.year.as_ref().unwrap().output_validator().unwrap();
    let new_results: Vec<Value> = results(&env)
        .into_iter()
        .filter(|(v, _)| v == &current.version)
        .map(|(_, a)| a)
        .collect();
    assert_eq!(new_results.len(), 8);
    let scale = ["strong_buy", "buy", "hold", "sell", "strong_sell"];
    for answer in &new_results {
        validator.validate(answer).unwrap();
        assert!(
            scale.contains(&answer["verdict"].as_str().unwrap()),
            "{answer}"
        );
        for lens in ["buffett", "taleb", "contrarian"] {
            let signal = answer[lens]["action_signal"].as_str().unwrap();
            assert!(
                ["priority", "investigate", "pass"].contains(&signal),
                "{answer}"
            );
        }
    }
    // The old batch's results are untouched.
    assert_eq!(results(&env).len(), 16);
}
