//! The real HTTP clients against a local server on 127.0.0.1 that records each request and
//! answers with queued replies: exact request bodies and headers, fixture bodies replayed with
//! their status codes, and transport failures (refused connection, timeout, reset).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Router;
use fintel_llm::{
    classify_gemini, parse_gemini_success, ApiKey, CallError, GeminiClient, GeminiConfig,
    GenerateRequest, MaxTokensField, ModelInfo, OpenAiClient, OpenAiConfig, Provider, Role,
    Thinking, TokenCount, Turn, Usage,
};
use serde_json::{json, Value};

const SECRET: &str = "AIzaSyD-test-key-0123456789abcdefXYZ";

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Recorded {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    body: String,
    headers: Vec<(&'static str, String)>,
    delay: Duration,
}

fn reply(status: u16, body: impl Into<String>) -> Reply {
    Reply {
        status,
        body: body.into(),
        headers: Vec::new(),
        delay: Duration::ZERO,
    }
}

#[derive(Default)]
struct ServerState {
    recorded: Mutex<Vec<Recorded>>,
    replies: Mutex<VecDeque<Reply>>,
}

struct TestServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
}

impl TestServer {
    async fn start(replies: Vec<Reply>) -> TestServer {
        let state = Arc::new(ServerState {
            recorded: Mutex::new(Vec::new()),
            replies: Mutex::new(replies.into()),
        });
        let app = Router::new().fallback(answer).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestServer { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.state.recorded.lock().expect("lock").clone()
    }

    fn only_request(&self) -> Recorded {
        let all = self.requests();
        assert_eq!(all.len(), 1, "{all:?}");
        all.into_iter().next().expect("one request")
    }
}

async fn answer(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.expect("body");
    state.recorded.lock().expect("lock").push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body: body.to_vec(),
    });
    let next = state.replies.lock().expect("lock").pop_front();
    let Some(next) = next else {
        return Response::builder()
            .status(StatusCode::IM_A_TEAPOT)
            .body(Body::from("the test queued no reply for this request"))
            .expect("response");
    };
    if !next.delay.is_zero() {
        tokio::time::sleep(next.delay).await;
    }
    let mut builder = Response::builder()
        .status(next.status)
        .header("content-type", "application/json; charset=UTF-8");
    for (name, value) in &next.headers {
        builder = builder.header(*name, value);
    }
    builder.body(Body::from(next.body)).expect("response")
}

fn gemini(base: &str) -> GeminiClient {
    GeminiClient::new(GeminiConfig {
        base_url: base.to_string(),
        timeout: Duration::from_secs(10),
        ..GeminiConfig::default()
    })
    .expect("client")
}

fn key() -> ApiKey {
    ApiKey::new("GOOGLE_API_KEY_1", SECRET)
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {"verdict": {"type": "string"}, "score": {"type": "integer"}},
        "required": ["verdict", "score"]
    })
}

fn request(model: &str, thinking: Thinking) -> GenerateRequest {
    GenerateRequest {
        model: model.to_string(),
        system_instruction: Some("You are a careful analyst.".to_string()),
        turns: vec![Turn {
            role: Role::User,
            text: "Analyse AAPL for 2024.".to_string(),
        }],
        response_schema: schema(),
        temperature: Some(0.2),
        max_output_tokens: Some(8192),
        thinking,
        seed: None,
        output_field: None,
    }
}

fn gemini_success(text: &str) -> String {
    json!({
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 12, "thoughtsTokenCount": 100, "totalTokenCount": 142},
        "modelVersion": "gemini-2.5-flash"
    })
    .to_string()
}

#[tokio::test]
async fn gemini_generate_sends_the_exact_body_with_the_key_in_a_header() {
    let server = TestServer::start(vec![reply(
        200,
        gemini_success(r#"{"verdict":"buy","score":7}"#),
    )])
    .await;
    let client = gemini(&format!("{}/", server.url()));
    let generation = client
        .generate(
            Some(&key()),
            &request("gemini-2.5-flash", Thinking::Budget(1024)),
        )
        .await
        .expect("generation");
    assert_eq!(generation.text, r#"{"verdict":"buy","score":7}"#);
    assert_eq!(
        generation.usage,
        Usage {
            prompt_tokens: 30,
            output_tokens: 12,
            thinking_tokens: 100
        }
    );
    assert!(generation.latency > Duration::ZERO);

    let seen = server.only_request();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(seen.query, None, "the key must never be in the URL");
    assert_eq!(seen.header("x-goog-api-key"), Some(SECRET));
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(
        seen.json(),
        json!({
            "systemInstruction": {"parts": [{"text": "You are a careful analyst."}]},
            "contents": [{"role": "user", "parts": [{"text": "Analyse AAPL for 2024."}]}],
            "generationConfig": {
                "responseMimeType": "application/json",
                "responseJsonSchema": schema(),
                "temperature": 0.2,
                "maxOutputTokens": 8192,
                "thinkingConfig": {"thinkingBudget": 1024}
            }
        })
    );
}

#[tokio::test]
async fn gemini_3_gets_a_thinking_level_and_defaults_send_nothing() {
    let server = TestServer::start(vec![
        reply(200, gemini_success("{}")),
        reply(200, gemini_success("{}")),
    ])
    .await;
    let client = gemini(&server.url());
    let level = request("gemini-3-flash-preview", Thinking::Level("low".into()));
    client
        .generate(Some(&key()), &level)
        .await
        .expect("generation");

    let mut bare = request("gemini-2.5-flash", Thinking::ProviderDefault);
    bare.system_instruction = None;
    bare.temperature = None;
    bare.max_output_tokens = None;
    bare.turns.push(Turn {
        role: Role::Model,
        text: "{\"verdict\": 1}".into(),
    });
    bare.turns.push(Turn {
        role: Role::User,
        text: "Fix it.".into(),
    });
    client
        .generate(Some(&key()), &bare)
        .await
        .expect("generation");

    let seen = server.requests();
    assert_eq!(
        seen[0].path,
        "/v1beta/models/gemini-3-flash-preview:generateContent"
    );
    assert_eq!(
        seen[0].json()["generationConfig"]["thinkingConfig"],
        json!({"thinkingLevel": "low"})
    );
    assert_eq!(
        seen[1].json(),
        json!({
            "contents": [
                {"role": "user", "parts": [{"text": "Analyse AAPL for 2024."}]},
                {"role": "model", "parts": [{"text": "{\"verdict\": 1}"}]},
                {"role": "user", "parts": [{"text": "Fix it."}]}
            ],
            "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": schema()}
        })
    );
}

#[tokio::test]
async fn gemini_check_model_and_count_tokens() {
    let model = json!({"name": "models/gemini-2.5-flash", "version": "001", "displayName": "Gemini 2.5 Flash",
        "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
        "supportedGenerationMethods": ["generateContent", "countTokens"], "thinking": true});
    let server = TestServer::start(vec![
        reply(200, model.to_string()),
        reply(200, r#"{"totalTokens": 1234, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1234}]}"#),
    ])
    .await;
    let client = gemini(&server.url());
    let info = client
        .check_model(Some(&key()), "models/gemini-2.5-flash")
        .await
        .expect("model");
    assert_eq!(
        info,
        ModelInfo {
            name: "gemini-2.5-flash".into(),
            input_token_limit: Some(1_048_576),
            output_token_limit: Some(65_536)
        }
    );
    let count = client
        .count_tokens(
            Some(&key()),
            &request("gemini-2.5-flash", Thinking::Budget(0)),
        )
        .await
        .expect("count");
    assert_eq!(count, Some(TokenCount { total_tokens: 1234 }));

    let seen = server.requests();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/v1beta/models/gemini-2.5-flash");
    assert_eq!(seen[0].header("x-goog-api-key"), Some(SECRET));
    assert!(seen[0].body.is_empty());
    assert_eq!(seen[1].method, "POST");
    assert_eq!(seen[1].path, "/v1beta/models/gemini-2.5-flash:countTokens");
    assert_eq!(
        seen[1].json(),
        json!({"generateContentRequest": {
            "model": "models/gemini-2.5-flash",
            "systemInstruction": {"parts": [{"text": "You are a careful analyst."}]},
            "contents": [{"role": "user", "parts": [{"text": "Analyse AAPL for 2024."}]}]
        }})
    );
}

#[tokio::test]
async fn gemini_lists_every_page_of_models() {
    let page1 = json!({"models": [
        {"name": "models/gemini-3-pro-preview", "version": "3.0", "displayName": "Gemini 3 Pro Preview",
         "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
         "supportedGenerationMethods": ["generateContent", "countTokens"], "thinking": true},
        {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]}
    ], "nextPageToken": "page-2-token"});
    let page2 = json!({"models": [
        {"name": "models/gemini-3-flash", "version": "3.0", "inputTokenLimit": 1048576,
         "outputTokenLimit": 65536, "supportedGenerationMethods": ["generateContent"], "thinking": true}
    ]});
    let server = TestServer::start(vec![
        reply(200, page1.to_string()),
        reply(200, page2.to_string()),
    ])
    .await;
    let models = gemini(&server.url())
        .list_models(Some(&key()))
        .await
        .expect("models");
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "gemini-3-pro-preview",
            "text-embedding-004",
            "gemini-3-flash"
        ]
    );
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/v1beta/models");
    assert_eq!(seen[0].query.as_deref(), Some("pageSize=1000"));
    assert_eq!(seen[0].header("x-goog-api-key"), Some(SECRET));
    assert_eq!(
        seen[1].query.as_deref(),
        Some("pageSize=1000&pageToken=page-2-token")
    );
    assert_eq!(
        fintel_llm::choose_model(fintel_llm::ModelFamily::Gemini, &models)
            .expect("choice")
            .model,
        "gemini-3-flash"
    );
}

#[tokio::test]
async fn a_model_list_that_never_ends_stops() {
    // The same token every time: read once, not for ever.
    let page = json!({"models": [{"name": "models/gemini-3-flash"}], "nextPageToken": "again"});
    let server = TestServer::start(vec![
        reply(200, page.to_string()),
        reply(200, page.to_string()),
    ])
    .await;
    let models = gemini(&server.url())
        .list_models(Some(&key()))
        .await
        .expect("models");
    assert_eq!(models.len(), 2);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn gemini_without_a_key_or_with_a_bad_model_sends_nothing() {
    let server = TestServer::start(Vec::new()).await;
    let client = gemini(&server.url());
    match client
        .generate(
            None,
            &request("gemini-2.5-flash", Thinking::ProviderDefault),
        )
        .await
    {
        Err(CallError::Configuration { message }) => {
            assert!(message.contains("GOOGLE_API_KEY"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.check_model(Some(&key()), "../files").await,
        Err(CallError::Configuration { .. })
    ));
    assert!(matches!(
        client
            .check_model(Some(&key()), "gemini:generateContent")
            .await,
        Err(CallError::Configuration { .. })
    ));
    let odd_key = ApiKey::new("GOOGLE_API_KEY_2", "AIza key with spaces\n0123456789");
    assert!(matches!(
        client.check_model(Some(&odd_key), "gemini-2.5-flash").await,
        Err(CallError::KeyUnusable { .. })
    ));
    assert!(server.requests().is_empty());
}

fn status_of(body: &str) -> u16 {
    serde_json::from_str::<Value>(body).expect("json")["error"]["code"]
        .as_u64()
        .expect("code") as u16
}

fn fixture_files(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("fixture dir")
        .map(|e| {
            let path = e.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&path).expect("fixture"))
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn gemini_fixture_bodies_replayed_over_http_classify_as_the_pure_functions_do() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let errors = fixture_files(&dir.join("gemini/errors"));
    let successes = fixture_files(&dir.join("gemini/success"));
    let mut replies: Vec<Reply> = errors
        .iter()
        .map(|(_, body)| reply(status_of(body), body.clone()))
        .collect();
    replies.extend(successes.iter().map(|(_, body)| reply(200, body.clone())));
    let server = TestServer::start(replies).await;
    let client = gemini(&server.url());
    let req = request("gemini-2.5-flash", Thinking::Budget(1024));

    for (name, body) in &errors {
        let got = client.generate(Some(&key()), &req).await.expect_err(name);
        assert_eq!(
            got,
            classify_gemini(status_of(body), body, &[SECRET]),
            "{name}"
        );
        if name.starts_with("429-resource-exhausted-per-day") {
            assert!(
                matches!(got, CallError::DailyQuotaExhausted { .. }),
                "{got:?}"
            );
        }
        if name.starts_with("503-") {
            assert!(
                matches!(
                    got,
                    CallError::Transient {
                        reached_server: true,
                        ..
                    }
                ),
                "{got:?}"
            );
        }
    }
    for (name, body) in &successes {
        let got = client.generate(Some(&key()), &req).await;
        match (got, parse_gemini_success(body)) {
            (Ok(g), Ok(expected)) => {
                assert_eq!(g.text, expected.text, "{name}");
                assert_eq!(g.usage, expected.usage, "{name}");
                assert_eq!(g.model_version, expected.model_version, "{name}");
            }
            (Err(g), Err(expected)) => assert_eq!(g, expected, "{name}"),
            (g, expected) => panic!("{name}: over HTTP {g:?}, pure {expected:?}"),
        }
    }
    assert_eq!(server.requests().len(), errors.len() + successes.len());
}

#[tokio::test]
async fn keys_echoed_by_the_server_are_masked() {
    let body = json!({"error": {"code": 400, "message": format!("API key not valid: {SECRET}"), "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}});
    let server = TestServer::start(vec![reply(400, body.to_string())]).await;
    let error = gemini(&server.url())
        .generate(
            Some(&key()),
            &request("gemini-2.5-flash", Thinking::ProviderDefault),
        )
        .await
        .expect_err("400");
    let text = format!("{error} {error:?}");
    assert!(matches!(error, CallError::KeyUnusable { .. }), "{error:?}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("AIza...fXYZ"), "{text}");
}

#[tokio::test]
async fn a_refused_connection_never_reached_the_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let client = gemini(&format!("http://{addr}"));
    match client
        .generate(
            Some(&key()),
            &request("gemini-2.5-flash", Thinking::ProviderDefault),
        )
        .await
    {
        Err(
            error @ CallError::Transient {
                reached_server: false,
                ..
            },
        ) => {
            assert!(!error.may_have_cost_quota());
            assert!(error.never_sent() && !error.timed_out());
            assert!(error.to_string().contains("connection refused"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    let openai = OpenAiClient::new(OpenAiConfig {
        base_url: format!("http://{addr}"),
        ..OpenAiConfig::default()
    })
    .expect("client");
    assert!(matches!(
        openai
            .generate(None, &request("llama3.1:8b", Thinking::ProviderDefault))
            .await,
        Err(CallError::Transient {
            reached_server: false,
            ..
        })
    ));
}

#[tokio::test]
async fn a_timeout_after_sending_may_have_reached_the_server() {
    let mut slow = reply(200, gemini_success("{}"));
    slow.delay = Duration::from_secs(30);
    let server = TestServer::start(vec![slow]).await;
    let client = GeminiClient::new(GeminiConfig {
        base_url: server.url(),
        timeout: Duration::from_millis(300),
        ..GeminiConfig::default()
    })
    .expect("client");
    match client
        .generate(
            Some(&key()),
            &request("gemini-2.5-flash", Thinking::ProviderDefault),
        )
        .await
    {
        Err(
            error @ CallError::Transient {
                reached_server: true,
                ..
            },
        ) => {
            assert!(error.may_have_cost_quota());
            assert!(error.to_string().contains("timed out"), "{error}");
            assert!(error.timed_out() && !error.never_sent());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests().len(), 1, "the request did arrive");
}

#[tokio::test]
async fn a_connection_closed_after_sending_may_have_reached_the_server() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        if let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 64 * 1024];
            let _ = socket.read(&mut buf).await;
            // Dropping the socket closes it without an answer.
        }
    });
    let client = gemini(&format!("http://{addr}"));
    assert!(matches!(
        client
            .generate(
                Some(&key()),
                &request("gemini-2.5-flash", Thinking::ProviderDefault)
            )
            .await,
        Err(CallError::Transient {
            reached_server: true,
            ..
        })
    ));
}

// --- OpenAI-compatible ------------------------------------------------------------------------

fn openai(base: &str, field: MaxTokensField) -> OpenAiClient {
    OpenAiClient::new(OpenAiConfig {
        base_url: base.to_string(),
        timeout: Duration::from_secs(10),
        max_tokens_field: field,
        ..OpenAiConfig::default()
    })
    .expect("client")
}

fn chat_success(content: &str) -> String {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49}})
    .to_string()
}

#[tokio::test]
async fn openai_sends_bearer_and_the_exact_body() {
    let server = TestServer::start(vec![reply(
        200,
        chat_success(r#"{"verdict":"hold","score":5}"#),
    )])
    .await;
    let client = openai(&format!("{}/v1/", server.url()), MaxTokensField::MaxTokens);
    let openai_key = ApiKey::new("OPENAI_API_KEY", "sk-proj-0123456789abcdefghij");
    let mut req = request("gpt-4o-mini", Thinking::Budget(2048));
    req.turns.push(Turn {
        role: Role::Model,
        text: "{}".into(),
    });
    req.turns.push(Turn {
        role: Role::User,
        text: "Fill in every field.".into(),
    });
    let g = client
        .generate(Some(&openai_key), &req)
        .await
        .expect("generation");
    assert_eq!(g.text, r#"{"verdict":"hold","score":5}"#);
    assert_eq!(
        g.usage,
        Usage {
            prompt_tokens: 40,
            output_tokens: 9,
            thinking_tokens: 0
        }
    );

    let seen = server.only_request();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-proj-0123456789abcdefghij")
    );
    assert_eq!(seen.header("x-goog-api-key"), None);
    assert_eq!(
        seen.json(),
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a careful analyst."},
                {"role": "user", "content": "Analyse AAPL for 2024."},
                {"role": "assistant", "content": "{}"},
                {"role": "user", "content": "Fill in every field."}
            ],
            // Closed for strict mode: every object gets additionalProperties false.
            "response_format": {"type": "json_schema", "json_schema": {"name": "result", "schema": {
                "type": "object",
                "properties": {"verdict": {"type": "string"}, "score": {"type": "integer"}},
                "required": ["verdict", "score"],
                "additionalProperties": false
            }, "strict": true}},
            "temperature": 0.2,
            "max_tokens": 8192
        })
    );
}

#[tokio::test]
async fn a_local_server_gets_no_authorization_header() {
    let server = TestServer::start(vec![
        reply(200, chat_success("{}")),
        reply(
            200,
            json!({"object": "list", "data": [
                {"id": "qwen3:4b", "object": "model"},
                {"id": "llama3.1:8b", "object": "model", "owned_by": "library"}
            ]})
            .to_string(),
        ),
    ])
    .await;
    // No path: /v1 is added.
    let client = openai(&server.url(), MaxTokensField::MaxCompletionTokens);
    let mut req = request("llama3.1:8b", Thinking::Level("low".into()));
    req.response_schema = json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": false});
    client.generate(None, &req).await.expect("generation");
    let info = client
        .check_model(None, "llama3.1:8b")
        .await
        .expect("model");
    assert_eq!(info.name, "llama3.1:8b");
    assert_eq!(client.count_tokens(None, &req).await, Ok(None));

    let seen = server.requests();
    assert_eq!(seen.len(), 2, "count_tokens sends nothing");
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(seen[0].header("authorization"), None);
    let body = seen[0].json();
    assert_eq!(body["max_completion_tokens"], 8192);
    assert!(body.get("max_tokens").is_none());
    assert_eq!(body["reasoning_effort"], "low");
    assert_eq!(body["response_format"]["json_schema"]["strict"], true);
    assert_eq!(seen[1].method, "GET");
    assert_eq!(seen[1].path, "/v1/models");
    assert_eq!(seen[1].header("authorization"), None);
}

#[tokio::test]
async fn openai_lists_its_models() {
    let list = json!({"object": "list", "data": [
        {"id": "smollm2-135m", "object": "model", "owned_by": "llamacpp"}
    ]});
    let server = TestServer::start(vec![reply(200, list.to_string())]).await;
    let client = openai(&server.url(), MaxTokensField::MaxTokens);
    let models = client.list_models(None).await.expect("models");
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].name, "smollm2-135m");
    assert_eq!(server.only_request().path, "/v1/models");
}

#[tokio::test]
async fn openai_retry_after_headers_in_seconds_and_as_a_date() {
    let rate = json!({"error": {"message": "Rate limit reached for requests", "type": "requests", "param": null, "code": "rate_limit_exceeded"}}).to_string();
    let mut seconds = reply(429, rate.clone());
    seconds.headers.push(("retry-after", "7".into()));
    let mut date = reply(429, rate.clone());
    date.headers
        .push(("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".into()));
    let quota = reply(429, json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}).to_string());
    let server = TestServer::start(vec![seconds, date, quota]).await;
    let clock = fintel_time::ManualClock::new("2015-10-21T07:27:15Z".parse().expect("timestamp"));
    let client = openai(&server.url(), MaxTokensField::MaxTokens).with_clock(Arc::new(clock));
    let req = request("gpt-4o-mini", Thinking::ProviderDefault);
    let k = ApiKey::new("OPENAI_API_KEY", "sk-proj-0123456789abcdefghij");
    assert!(matches!(
        client.generate(Some(&k), &req).await,
        Err(CallError::RateLimited { retry_after: Some(d), .. }) if d == Duration::from_secs(7)
    ));
    assert!(matches!(
        client.generate(Some(&k), &req).await,
        Err(CallError::RateLimited { retry_after: Some(d), .. }) if d == Duration::from_secs(45)
    ));
    assert!(matches!(
        client.generate(Some(&k), &req).await,
        Err(CallError::KeyExhausted { .. })
    ));
}

#[tokio::test]
async fn gemini_openai_compatibility_errors_over_http() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let body = std::fs::read_to_string(
        dir.join("gemini/errors/429-resource-exhausted-per-day-free-tier.page-oppl-ai.json"),
    )
    .expect("fixture");
    let server = TestServer::start(vec![reply(429, format!("[{body}]"))]).await;
    let client = openai(
        &format!("{}/v1beta/openai", server.url()),
        MaxTokensField::MaxTokens,
    );
    let result = client
        .generate(
            Some(&key()),
            &request("gemini-2.5-flash", Thinking::ProviderDefault),
        )
        .await;
    assert!(
        matches!(result, Err(CallError::DailyQuotaExhausted { .. })),
        "{result:?}"
    );
    assert_eq!(
        server.only_request().path,
        "/v1beta/openai/chat/completions"
    );
}

#[test]
fn bad_base_urls_are_reported_when_the_client_is_built() {
    let err = GeminiClient::new(GeminiConfig {
        base_url: "generativelanguage.googleapis.com".into(),
        ..GeminiConfig::default()
    })
    .expect_err("no scheme");
    assert!(err.to_string().contains("not a usable base URL"), "{err}");
    let err = OpenAiClient::new(OpenAiConfig {
        base_url: "localhost:11434".into(),
        ..OpenAiConfig::default()
    })
    .expect_err("no scheme");
    assert!(
        err.to_string().contains("OpenAI-compatible base URL"),
        "{err}"
    );
    let err = GeminiClient::new(GeminiConfig {
        api_version: "v1beta/../x".into(),
        ..GeminiConfig::default()
    })
    .expect_err("bad version");
    assert!(err.to_string().contains("single path segment"), "{err}");
}
