//! Request parameters in the engine: a model that refuses parameters fintel chose gets them
//! dropped or renamed once (no attempt counted, the rule stored), a later run follows the
//! stored rule from its first request, a refusal of the user's own setting stops the batch,
//! and every result records the parameters its request was sent with.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use fintel_engine::*;
use fintel_llm::params::UserParams;
use fintel_llm::{CallError, GenerateRequest, MaxTokensField, ServerKind};
use support::*;
use tokio::sync::watch;

/// A model that takes only `max_completion_tokens` and no temperature, refusing as OpenAI's
/// reasoning models do (the limit first).
fn refusing_provider() -> FakeProvider {
    let mut provider = FakeProvider::new();
    provider.by_request = Some(Arc::new(|request: &GenerateRequest, n| {
        if n > 60 {
            return Some(CallError::Configuration {
                message: "runaway".into(),
            });
        }
        if request.output_field != Some(MaxTokensField::MaxCompletionTokens) {
            return Some(CallError::ParameterRefused {
                param: "max_tokens".into(),
                message: "Unsupported parameter: 'max_tokens' is not supported with this model."
                    .into(),
            });
        }
        request.temperature.map(|t| CallError::ParameterRefused {
            param: "temperature".into(),
            message: format!("Unsupported value: 'temperature' does not support {t}"),
        })
    }));
    provider
}

fn settings(user: UserParams) -> EngineSettings {
    EngineSettings {
        model: "acme-1".into(),
        server_kind: ServerKind::OpenAiCompatible,
        output_in_context: false,
        user_params: user,
        ..fast_settings()
    }
}

async fn run(h: &Harness, batch: &str, name: &str, user: UserParams) -> RunOutcome {
    let owner = h.owner(name);
    let (_tx, rx) = watch::channel(false);
    h.engine(&owner, settings(user))
        .run(batch, rx)
        .await
        .unwrap()
}

fn count(h: &Harness, sql: &str) -> i64 {
    h.store.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn refused_parameters_are_learned_once_and_the_next_run_follows_them() {
    let h = Harness::new(2, refusing_provider(), buckets(1, 1000, 1000));
    let years = YearsSpec::Explicit(vec![2023, 2024]);
    let batch = h
        .create(&["SIM0", "SIM1"], years.clone(), BatchSettings::default())
        .await;
    assert_eq!(
        run(&h, &batch, "first", UserParams::default()).await,
        RunOutcome::Completed { failed: 0 }
    );
    assert_eq!(h.result_column("attempts"), [1, 1, 1, 1]);
    let refused = count(
        &h,
        "SELECT COUNT(*) FROM calls WHERE outcome = 'parameter_refused'",
    );
    // Once each, or once more for calls already on their way when a rule was learned.
    assert!((2..=8).contains(&refused), "{refused}");
    assert_eq!(
        count(
            &h,
            "SELECT COUNT(*) FROM learned_params WHERE model = 'acme-1'"
        ),
        2
    );
    let params: Vec<serde_json::Value> = {
        let conn = h.store.conn();
        let mut stmt = conn
            .prepare("SELECT request_params FROM results ORDER BY result_key")
            .unwrap();
        stmt.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|t| serde_json::from_str(&t.unwrap()).unwrap())
            .collect()
    };
    assert_eq!(params.len(), 4);
    for p in &params {
        assert_eq!(p["output_field"], "max_completion_tokens", "{p}");
        assert_eq!(p["temperature"], serde_json::Value::Null, "{p}");
        assert_eq!(p["seed"], fintel_llm::params::DEFAULT_SEED, "{p}");
    }

    // A new batch in another run: every request is right from the first.
    let before = h.provider.total.load(Ordering::SeqCst);
    let again = h
        .create(
            &["SIM0", "SIM1"],
            years,
            BatchSettings {
                force: true,
                ..BatchSettings::default()
            },
        )
        .await;
    assert_eq!(
        run(&h, &again, "second", UserParams::default()).await,
        RunOutcome::Completed { failed: 0 }
    );
    assert_eq!(h.provider.total.load(Ordering::SeqCst) - before, 4);
}

#[tokio::test]
async fn a_refusal_of_the_users_own_temperature_stops_the_batch_with_the_message() {
    let h = Harness::new(1, refusing_provider(), buckets(1, 1000, 1000));
    let batch = h
        .create(
            &["SIM0"],
            YearsSpec::Explicit(vec![2024]),
            BatchSettings::default(),
        )
        .await;
    let user = UserParams {
        temperature: Some(0.5),
        ..UserParams::default()
    };
    match run(&h, &batch, "user", user).await {
        RunOutcome::ConfigurationProblem(message) => {
            assert!(message.contains("FINTEL_TEMPERATURE"), "{message}");
            assert!(message.contains("does not support 0.5"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // The limit's rename was learned on the way; the user's temperature never is.
    assert_eq!(
        count(
            &h,
            "SELECT COUNT(*) FROM learned_params WHERE param = 'temperature'"
        ),
        0
    );
    assert_eq!(count(&h, "SELECT COUNT(*) FROM results"), 0);
    assert_eq!(h.task_field(&batch, "SIM0", 2024, "attempts"), 0);
}
