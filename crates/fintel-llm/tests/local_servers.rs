//! The OpenAI-compatible client against the simulator's llama.cpp, Ollama and vLLM flavors:
//! what each server says about its context and slots, llama.cpp's tokenizer, and the context
//! errors of real servers read as context-too-long with the number they give.

use std::net::SocketAddr;
use std::sync::Arc;

use fintel_llm::{
    CallError, GenerateRequest, OpenAiClient, OpenAiConfig, Provider, Role, ServerKind, Thinking,
    Turn,
};
use fintel_sim::{Flavor, OpenAiSimConfig, SimConfig, SimHandle};
use fintel_time::{ManualClock, SharedClock};
use serde_json::json;

async fn sim(openai: OpenAiSimConfig) -> SimHandle {
    let mut config = SimConfig::default();
    config.sec.companies = 10;
    config.openai = Some(openai);
    let clock: SharedClock = Arc::new(ManualClock::new("2026-12-07T12:00:00Z".parse().unwrap()));
    fintel_sim::start(config, clock, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

fn client(sim: &SimHandle) -> OpenAiClient {
    OpenAiClient::new(OpenAiConfig {
        base_url: sim.base_url(),
        ..OpenAiConfig::default()
    })
    .unwrap()
}

fn request(model: &str, text: &str) -> GenerateRequest {
    GenerateRequest {
        model: model.into(),
        system_instruction: Some("You analyse annual reports.".into()),
        turns: vec![Turn {
            role: Role::User,
            text: text.into(),
        }],
        response_schema: json!({"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}),
        temperature: None,
        max_output_tokens: Some(512),
        thinking: Thinking::ProviderDefault,
        seed: None,
        output_field: None,
    }
}

#[tokio::test]
async fn llamacpp_says_its_slot_context_and_slots_and_counts_with_its_tokenizer() {
    let sim = sim(OpenAiSimConfig {
        flavor: Flavor::LlamaCpp,
        context_tokens: 2_048,
        slots: 3,
        token_factor: 1.5,
        ..OpenAiSimConfig::default()
    })
    .await;
    let c = client(&sim);
    // Before the server is known, nothing is counted.
    assert_eq!(
        c.count_tokens(None, &request("m", "abcd")).await.unwrap(),
        None
    );
    let limits = c.server_limits(None, "m").await;
    assert_eq!(limits.kind, ServerKind::LlamaCpp);
    assert_eq!(limits.context_tokens, Some(2_048));
    assert_eq!(limits.slots, Some(3));
    assert!(limits.output_in_context && limits.has_tokenizer);
    let text = "y".repeat(4_000);
    let count = c
        .count_tokens(None, &request("m", &text))
        .await
        .unwrap()
        .unwrap();
    // ("You analyse annual reports." + "\n" + 4,000 characters) / 4 x 1.5.
    assert_eq!(
        count.total_tokens,
        ((4_028_u64).div_ceil(4) as f64 * 1.5).ceil() as u64
    );
    assert_eq!(sim.stats().openai.tokenize, 1);

    match c.generate(None, &request("m", &"z".repeat(20_000))).await {
        Err(CallError::ContextTooLong {
            max_tokens,
            message,
        }) => {
            assert_eq!(max_tokens, Some(2_048));
            assert!(!message.contains("400 400"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn ollama_says_the_model_context_and_its_refusal_is_context_too_long() {
    let sim = sim(OpenAiSimConfig {
        flavor: Flavor::Ollama,
        models: vec!["llama3.1:8b".into()],
        context_tokens: 2_048,
        model_context_tokens: Some(131_072),
        context_error: true,
        ..OpenAiSimConfig::default()
    })
    .await;
    let c = client(&sim);
    let limits = c.server_limits(None, "llama3.1:8b").await;
    assert_eq!(limits.kind, ServerKind::Ollama);
    assert_eq!(limits.context_tokens, Some(131_072));
    assert_eq!(limits.slots, None);
    assert!(!limits.has_tokenizer);
    assert!(matches!(
        c.generate(None, &request("llama3.1:8b", &"z".repeat(20_000)))
            .await,
        Err(CallError::ContextTooLong {
            max_tokens: None,
            ..
        })
    ));
}

#[tokio::test]
async fn vllm_says_max_model_len_and_its_refusal_gives_the_context() {
    let sim = sim(OpenAiSimConfig {
        flavor: Flavor::Vllm,
        models: vec!["Qwen/Qwen2.5-7B-Instruct".into()],
        context_tokens: 4_096,
        ..OpenAiSimConfig::default()
    })
    .await;
    let c = client(&sim);
    let limits = c.server_limits(None, "Qwen/Qwen2.5-7B-Instruct").await;
    assert_eq!(limits.kind, ServerKind::Vllm);
    assert_eq!(limits.context_tokens, Some(4_096));
    let mut big = request("Qwen/Qwen2.5-7B-Instruct", &"z".repeat(14_000));
    big.max_output_tokens = Some(16_384);
    assert!(matches!(
        c.generate(None, &big).await,
        Err(CallError::ContextTooLong {
            max_tokens: Some(4_096),
            ..
        })
    ));
}

#[tokio::test]
async fn a_plain_openai_compatible_server_says_nothing_more() {
    let sim = sim(OpenAiSimConfig {
        flavor: Flavor::OpenAi,
        models: vec!["gpt-4o-mini".into()],
        ..OpenAiSimConfig::default()
    })
    .await;
    let limits = client(&sim).server_limits(None, "gpt-4o-mini").await;
    assert_eq!(limits.kind, ServerKind::OpenAiCompatible);
    assert_eq!((limits.context_tokens, limits.slots), (None, None));
    assert!(limits.output_in_context);
}
