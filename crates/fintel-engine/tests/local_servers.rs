//! The engine against the simulator's local-server flavors through the real OpenAI-compatible
//! client: context refusals refitted to the context the server gives (less the output budget,
//! which vLLM and llama.cpp count inside it), Ollama's silent truncation never stored, and a
//! server that keeps truncating stopping the batch with what to change.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use fintel_engine::*;
use fintel_llm::{OpenAiClient, OpenAiConfig, Provider};
use fintel_sim::{Flavor, OpenAiSimConfig, SimConfig, SimHandle};
use fintel_time::SharedClock;
use support::*;
use tokio::sync::watch;

async fn server(openai: OpenAiSimConfig) -> SimHandle {
    let mut config = SimConfig::default();
    config.sec.companies = 10;
    config.openai = Some(openai);
    let clock: SharedClock = Arc::new(fintel_time::ManualClock::new(start_time()));
    fintel_sim::start(config, clock, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

/// A harness whose documents are `doc_tokens` long.
fn harness(doc_tokens: u64) -> Harness {
    let mut h = Harness::new(2, FakeProvider::new(), buckets(1, 1000, 1000));
    h.sec = Arc::new(FakeSec {
        doc_tokens: Some(Arc::new(move |_, _| doc_tokens)),
        ..FakeSec::new(2)
    });
    h
}

/// What a run against an OpenAI-compatible server is configured with when the server said
/// nothing of its context (the old default of every provider).
fn local_settings() -> EngineSettings {
    EngineSettings {
        model: "local".into(),
        context_tokens: 1_048_576,
        output_in_context: true,
        truncation_advice: Some(
            "raise Ollama's context (OLLAMA_CONTEXT_LENGTH, or num_ctx in a Modelfile)".into(),
        ),
        max_output_tokens: Some(16_384),
        ..fast_settings()
    }
}

fn engine_for(
    h: &Harness,
    provider: Arc<dyn Provider>,
    settings: EngineSettings,
    observer: Arc<dyn Observer>,
) -> (Arc<Engine>, fintel_store::Ownership) {
    let owner = h.owner("local");
    let engine = Arc::new(Engine {
        store: h.store.clone(),
        clock: h.shared_clock(),
        source: h.sec.clone(),
        provider,
        analysis: h.analysis.clone(),
        pool: h.pool.clone(),
        settings,
        observer,
        owner: owner.id.clone(),
        upkeep: Upkeep::off(),
    });
    // The ownership holds the liveness lock: it lives as long as the run.
    (engine, owner)
}

async fn run(h: &Harness, sim: &SimHandle, settings: EngineSettings) -> RunOutcome {
    let batch = h
        .create(
            &["SIM0"],
            YearsSpec::Explicit(vec![2023]),
            BatchSettings::default(),
        )
        .await;
    let provider: Arc<dyn Provider> = Arc::new(
        OpenAiClient::new(OpenAiConfig {
            base_url: sim.base_url(),
            ..OpenAiConfig::default()
        })
        .unwrap(),
    );
    let owner = h.owner("local");
    let engine = Arc::new(Engine {
        store: h.store.clone(),
        clock: h.shared_clock(),
        source: h.sec.clone(),
        provider,
        analysis: h.analysis.clone(),
        pool: h.pool.clone(),
        settings,
        observer: Arc::new(Silent),
        owner: owner.id.clone(),
        upkeep: Upkeep::off(),
    });
    let (_tx, rx) = watch::channel(false);
    engine.run(&batch, rx).await.unwrap()
}

fn local(flavor: Flavor, context_tokens: u64) -> OpenAiSimConfig {
    OpenAiSimConfig {
        flavor,
        models: vec!["local".into()],
        context_tokens,
        ..OpenAiSimConfig::default()
    }
}

#[tokio::test]
async fn vllm_refusal_is_refitted_with_the_output_inside_the_context() {
    let sim = server(local(Flavor::Vllm, 8_192)).await;
    let h = harness(60_000);
    assert_eq!(
        run(&h, &sim, local_settings()).await,
        RunOutcome::Completed { failed: 0 }
    );
    let stats = sim.stats().openai;
    // One refusal at the old budget, then a request that fits prompt and output together.
    assert_eq!((stats.context_refused, stats.answered), (1, 1), "{stats:?}");
    assert_eq!(h.result_keys().len(), 1);
}

#[tokio::test]
async fn llamacpp_refusal_is_refitted_to_the_context_it_names() {
    let sim = server(local(Flavor::LlamaCpp, 4_096)).await;
    let h = harness(60_000);
    assert_eq!(
        run(&h, &sim, local_settings()).await,
        RunOutcome::Completed { failed: 0 }
    );
    let stats = sim.stats().openai;
    assert_eq!((stats.context_refused, stats.answered), (1, 1), "{stats:?}");
    assert_eq!(stats.length, 0, "the output had room in the context");
    assert_eq!(h.result_keys().len(), 1);
}

#[tokio::test]
async fn ollama_refusal_without_a_number_is_refitted_smaller() {
    let sim = server(OpenAiSimConfig {
        context_error: true,
        ..local(Flavor::Ollama, 8_192)
    })
    .await;
    let h = harness(20_000);
    assert_eq!(
        run(&h, &sim, local_settings()).await,
        RunOutcome::Completed { failed: 0 }
    );
    assert_eq!(h.result_keys().len(), 1);
}

#[tokio::test]
async fn a_silently_truncated_answer_is_not_stored_and_the_task_refits_to_the_real_context() {
    let sim = server(OpenAiSimConfig {
        model_context_tokens: Some(131_072),
        ..local(Flavor::Ollama, 4_096)
    })
    .await;
    let h = harness(60_000);
    // What /api/show says: the model's trained context, not the server's.
    let settings = EngineSettings {
        context_tokens: 131_072,
        ..local_settings()
    };
    assert_eq!(
        run(&h, &sim, settings).await,
        RunOutcome::Completed { failed: 0 }
    );
    let stats = sim.stats().openai;
    assert_eq!(
        (stats.truncated_silently, stats.answered),
        (1, 2),
        "{stats:?}"
    );
    // The one result stored is the answer to the request that fitted.
    let prompt = h.result_column("prompt_tokens");
    assert_eq!(prompt.len(), 1);
    assert!(prompt[0] > 0 && prompt[0] < 4_096, "{prompt:?}");
}

#[tokio::test]
async fn a_server_that_keeps_truncating_stops_the_batch_saying_how_to_raise_its_context() {
    // Its tokenizer counts three times the estimate: a request fitted to the context it
    // showed is truncated again.
    let sim = server(OpenAiSimConfig {
        token_factor: 3.0,
        ..local(Flavor::Ollama, 4_096)
    })
    .await;
    let h = harness(60_000);
    let settings = EngineSettings {
        context_tokens: 131_072,
        ..local_settings()
    };
    match run(&h, &sim, settings).await {
        RunOutcome::ConfigurationProblem(message) => {
            assert!(message.contains("truncating prompts silently"), "{message}");
            assert!(message.contains("OLLAMA_CONTEXT_LENGTH"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(h.result_keys().is_empty(), "no truncated answer is stored");
    assert_eq!(sim.stats().openai.truncated_silently, 2);
}

#[tokio::test]
async fn a_context_too_small_for_any_answer_stops_saying_how_large_it_must_be() {
    let sim = server(local(Flavor::LlamaCpp, 4_096)).await;
    let h = harness(60_000);
    let settings = EngineSettings {
        context_tokens: 600,
        ..local_settings()
    };
    match run(&h, &sim, settings).await {
        RunOutcome::ConfigurationProblem(message) => {
            assert!(message.contains("too small"), "{message}");
            assert!(message.contains("at least"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.stats().openai.received, 0, "nothing was sent");
}

#[tokio::test]
async fn a_length_answer_is_never_resent_byte_for_byte_the_output_grows_instead() {
    // Every answer needs 1,500 output tokens: more than the first budget leaves it.
    let sim = server(OpenAiSimConfig {
        length_chance: 1.0,
        ramble_tokens: 1_500,
        ..local(Flavor::LlamaCpp, 4_096)
    })
    .await;
    let h = harness(60_000);
    let settings = EngineSettings {
        context_tokens: 4_096,
        ..local_settings()
    };
    assert_eq!(
        run(&h, &sim, settings).await,
        RunOutcome::Completed { failed: 0 }
    );
    let stats = sim.stats().openai;
    assert!(stats.length >= 1, "{stats:?}");
    assert_eq!(stats.repeated_after_length, 0, "{stats:?}");
    assert_eq!(h.result_keys().len(), 1);
}

#[tokio::test]
async fn an_answer_that_cannot_fit_beside_any_document_skips_the_task_without_resending_it() {
    let sim = server(OpenAiSimConfig {
        length_chance: 1.0,
        ramble_tokens: 10_000,
        ..local(Flavor::LlamaCpp, 4_096)
    })
    .await;
    let h = harness(60_000);
    let settings = EngineSettings {
        context_tokens: 4_096,
        ..local_settings()
    };
    assert_eq!(
        run(&h, &sim, settings).await,
        RunOutcome::Completed { failed: 0 }
    );
    let stats = sim.stats().openai;
    assert_eq!(stats.repeated_after_length, 0, "{stats:?}");
    assert!(h.result_keys().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timed_out_request_is_not_resent_while_the_server_may_still_work_on_it() {
    // One slot, and an answer slower than the client waits.
    let sim = server(OpenAiSimConfig {
        slots: 1,
        answer_ms: 1_500,
        ..local(Flavor::LlamaCpp, 32_768)
    })
    .await;
    let h = harness(2_000);
    let batch = h
        .create(
            &["SIM0"],
            YearsSpec::Explicit(vec![2023]),
            BatchSettings::default(),
        )
        .await;
    let provider: Arc<dyn Provider> = Arc::new(
        OpenAiClient::new(OpenAiConfig {
            base_url: sim.base_url(),
            timeout: std::time::Duration::from_millis(300),
            ..OpenAiConfig::default()
        })
        .unwrap(),
    );
    let request_timeout = std::time::Duration::from_secs(600);
    let settings = EngineSettings {
        request_timeout: Some(request_timeout),
        ..local_settings()
    };
    let recorder = Arc::new(Recorder::default());
    let (engine, _owner) = engine_for(&h, provider, settings, recorder.clone());
    let (tx, rx) = watch::channel(false);
    let running = tokio::spawn({
        let batch = batch.clone();
        async move { engine.run(&batch, rx).await.unwrap() }
    });
    // Wait for the event: the task is back in the queue with a time to wait for.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let not_before = loop {
        // The wait after the failure, in milliseconds.
        let row: Option<(String, Option<i64>)> = h
            .store
            .conn()
            .query_row(
                "SELECT state, not_before - updated_at FROM tasks \
                 WHERE batch_id = ?1 AND fiscal_year = 2023",
                [&batch],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok();
        if let Some((state, Some(t))) = row {
            if state == "pending" {
                break t;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the request never timed out"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    // Measured from the failure (the row's update): the clock may have moved on since.
    let held = not_before;
    assert!(
        held >= request_timeout.as_millis() as i64 - 1_000,
        "resent after {held} ms, while the server may still work for a request timeout: {:?}",
        recorder.lines()
    );
    assert!(
        recorder
            .lines()
            .iter()
            .any(|l| l.starts_with("message the request timed out")),
        "{:?}",
        recorder.lines()
    );
    tx.send(true).unwrap();
    assert_eq!(running.await.unwrap(), RunOutcome::Stopped);
}
