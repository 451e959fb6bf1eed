//! The contract between the engine and every provider: requests, answers, keys and the closed
//! error taxonomy.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An API key. Its secret never appears in `Debug`, `Display` or serialised output: only its
/// masked label (e.g. `AIza...9xQk`) and a SHA-256 fingerprint are ever shown or stored.
#[derive(Clone)]
pub struct ApiKey {
    secret: String,
    name: String,
    label: String,
}

impl ApiKey {
    /// A key with the user's name for it (e.g. `GOOGLE_API_KEY_3`); the label shown to users is
    /// that name plus the masked secret.
    pub fn new(name: &str, secret: impl Into<String>) -> Self {
        let secret = secret.into();
        let label = format!("{name} ({})", mask_secret(&secret));
        ApiKey {
            secret,
            name: name.to_string(),
            label,
        }
    }

    /// The user's name for the key (e.g. `GOOGLE_API_KEY_3`), as fintel.toml refers to it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The secret, for the one place that puts it in a request header.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// A label safe to print and store.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// SHA-256 of the secret, hex: how the database recognises a key without storing it.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.secret.as_bytes()))
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", self.label)
    }
}

/// Shows the first four and last four characters of a secret, or only asterisks when it is
/// too short for that to hide anything.
pub fn mask_secret(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "****".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

/// Replaces every occurrence of any of `secrets` in `text` by its mask. Error bodies pass
/// through this before they are logged or stored, since some providers echo the key back.
pub fn mask_secrets_in(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        out = out.replace(s, &mask_secret(s));
    }
    out
}

/// Who said a turn of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Model,
}

/// One turn of the conversation. A first call has one user turn; a repair call adds the
/// model's bad answer and a user turn saying what was wrong with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub role: Role,
    pub text: String,
}

/// How much the model may think before answering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub enum Thinking {
    /// Send nothing; the model's default applies.
    #[default]
    ProviderDefault,
    /// Gemini 2.5: `thinkingConfig.thinkingBudget` (0 turns thinking off, -1 dynamic).
    Budget(i32),
    /// Gemini 3.x: `thinkingConfig.thinkingLevel` (e.g. "low", "high").
    Level(String),
}

/// The thinking levels Gemini 3 models accept (`thinkingConfig.thinkingLevel`).
pub const THINKING_LEVELS: &[&str] = &["minimal", "low", "medium", "high"];

impl Thinking {
    /// Reads a user's thinking setting: empty or `default` sends nothing, an integer is a
    /// token budget (`0` off, `-1` dynamic), and a level name is a level.
    pub fn from_setting(value: &str) -> Result<Thinking, String> {
        let value = value.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("default") {
            return Ok(Thinking::ProviderDefault);
        }
        if let Ok(budget) = value.parse::<i32>() {
            if budget < -1 {
                return Err(format!(
                    "thinking budget {budget} is negative: use 0 to turn thinking off, -1 for a \
                     dynamic budget, or a number of tokens"
                ));
            }
            return Ok(Thinking::Budget(budget));
        }
        let level = value.to_ascii_lowercase();
        if THINKING_LEVELS.contains(&level.as_str()) {
            return Ok(Thinking::Level(level));
        }
        Err(format!(
            "thinking setting {value:?} is neither a token budget (e.g. 1024, 0 for off, -1 for \
             dynamic) nor a level ({})",
            THINKING_LEVELS.join(", ")
        ))
    }

    /// Catches settings a Gemini model would reject with a 400 (which stops a batch), so they
    /// can be reported before it starts: levels are for Gemini 3 models only, and Gemini 2.5
    /// Pro cannot turn thinking off.
    pub fn check_for_model(&self, model: &str) -> Result<(), String> {
        let name = model.trim().strip_prefix("models/").unwrap_or(model.trim());
        let older_gemini = name.starts_with("gemini-1") || name.starts_with("gemini-2");
        match self {
            Thinking::Level(level) if older_gemini => Err(format!(
                "thinking level {level:?} is for Gemini 3 models; {name} takes a token budget \
                 instead (e.g. 1024, 0 for off, -1 for dynamic)"
            )),
            Thinking::Budget(0) if name.starts_with("gemini-2.5-pro") => Err(format!(
                "{name} cannot turn thinking off (budget 0): use a budget of at least 128, or -1 \
                 for dynamic"
            )),
            _ => Ok(()),
        }
    }
}

/// One structured-output request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    pub model: String,
    pub system_instruction: Option<String>,
    pub turns: Vec<Turn>,
    /// The JSON schema the answer must match (sent as `responseJsonSchema` / `json_schema`).
    pub response_schema: serde_json::Value,
    pub temperature: Option<f32>,
    pub max_output_tokens: Option<u32>,
    pub thinking: Thinking,
    /// Gemini `generationConfig.seed`, OpenAI `seed`: a fixed seed makes a study re-runnable
    /// as far as the provider allows.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Which field carries the output limit on the OpenAI protocol; `None`: the client's own
    /// setting.
    #[serde(default)]
    pub output_field: Option<MaxTokensField>,
}

/// Which field carries the output limit on the OpenAI protocol. OpenAI's reasoning and GPT-5
/// models accept only `max_completion_tokens`; older models and most local servers know only
/// `max_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxTokensField {
    /// `max_tokens`: understood by Ollama, vLLM, llama.cpp, Gemini's compatibility endpoint
    /// and older OpenAI models.
    #[default]
    MaxTokens,
    /// `max_completion_tokens`: required by OpenAI's o-series and GPT-5 models.
    MaxCompletionTokens,
}

impl MaxTokensField {
    /// The field's name on the wire.
    pub fn wire_name(self) -> &'static str {
        match self {
            MaxTokensField::MaxTokens => "max_tokens",
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
        }
    }
}

/// Tokens the provider reports for a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub thinking_tokens: u64,
}

/// A successful call: HTTP 200 with a candidate that finished normally. Its text has not yet
/// been checked against the schema (see the validation functions of this crate).
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub text: String,
    pub usage: Usage,
    pub finish_reason: String,
    pub model_version: Option<String>,
    pub latency: Duration,
}

impl Generation {
    /// A candidate that finished normally: a generation, unless its text is empty, which is
    /// bad output (retried) rather than a result. Latency is filled in by the caller.
    pub fn finished_normally(
        text: String,
        usage: Usage,
        finish_reason: String,
        model_version: Option<String>,
    ) -> Result<Generation, CallError> {
        if text.trim().is_empty() {
            return Err(CallError::BadOutput {
                reason: "the model finished normally but returned no text".to_string(),
                raw_text: Some(text),
                usage,
            });
        }
        Ok(Generation {
            text,
            usage,
            finish_reason,
            model_version,
            latency: Duration::ZERO,
        })
    }
}

/// What the model's tokenizer says about a request (`countTokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCount {
    pub total_tokens: u64,
}

/// What a pre-flight check learned about a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    pub name: String,
    pub input_token_limit: Option<u64>,
    pub output_token_limit: Option<u64>,
}

/// Which kind of server answers, as far as it shows (the OpenAI protocol is spoken by many).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerKind {
    /// Google's Gemini API.
    Gemini,
    /// An OpenAI-compatible server that says nothing more about itself (OpenAI itself too).
    #[default]
    OpenAiCompatible,
    /// llama.cpp's `llama-server` (answers `GET /props`).
    LlamaCpp,
    /// Ollama (answers `POST /api/show`).
    Ollama,
    /// vLLM (lists `max_model_len` with its models).
    Vllm,
}

impl ServerKind {
    /// The name shown to the user.
    pub fn label(self) -> &'static str {
        match self {
            ServerKind::Gemini => "Gemini",
            ServerKind::OpenAiCompatible => "OpenAI-compatible server",
            ServerKind::LlamaCpp => "llama.cpp server",
            ServerKind::Ollama => "Ollama",
            ServerKind::Vllm => "vLLM",
        }
    }

    /// A server run by the user (its context and slots are the user's to set).
    pub fn is_local(self) -> bool {
        matches!(
            self,
            ServerKind::LlamaCpp | ServerKind::Ollama | ServerKind::Vllm
        )
    }
}

/// What a server says about its limits beyond the model list, where it says anything:
/// llama.cpp `GET /props` (`n_ctx` of a slot, `total_slots`), Ollama `POST /api/show` (the
/// model's context length, or `num_ctx` from its parameters), vLLM `max_model_len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerLimits {
    pub kind: ServerKind,
    /// The context the server gives one request, in tokens.
    pub context_tokens: Option<u64>,
    /// Requests the server works on at once (more wait in its queue).
    pub slots: Option<u32>,
    /// Whether the output is generated inside the same context as the prompt (every
    /// OpenAI-compatible server; Gemini's input limit is the prompt's alone).
    pub output_in_context: bool,
    /// Whether [`Provider::count_tokens`] answers with the server's own tokenizer.
    pub has_tokenizer: bool,
}

/// Every way a provider call can fail, one variant per row of SPEC.md section 3. The engine
/// decides what to do by matching on this and nothing else.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// 429 whose QuotaFailure names a per-day quota: the key's bucket is spent until the next
    /// reset. Not a failure of the task; never counts as an attempt.
    #[error("daily quota exhausted: {message}")]
    DailyQuotaExhausted {
        message: String,
        /// The Google Cloud project the provider charged, when its body names it.
        project: Option<String>,
    },

    /// 429 for a per-minute request limit (or with no details, or 2024-style
    /// RATE_LIMIT_EXCEEDED, or OpenAI `rate_limit_exceeded`): wait and send the same task again.
    #[error("rate limited (retry after {retry_after:?}): {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
        /// The Google Cloud project the provider charged, when its body names it.
        project: Option<String>,
    },

    /// 429 for the input-tokens-per-minute quota. If the request alone is larger than
    /// `limit_tokens` it can never pass on this tier and must be fitted smaller; otherwise it is
    /// a per-minute wait.
    #[error("input tokens per minute exceeded (limit {limit_tokens:?}): {message}")]
    InputTokensPerMinute {
        limit_tokens: Option<u64>,
        retry_after: Option<Duration>,
        message: String,
        /// The Google Cloud project the provider charged, when its body names it.
        project: Option<String>,
    },

    /// 400 "input token count ... exceeds the maximum" / OpenAI `context_length_exceeded`.
    #[error("context too long (maximum {max_tokens:?}): {message}")]
    ContextTooLong {
        max_tokens: Option<u64>,
        message: String,
    },

    /// 400 API_KEY_INVALID, 403 PERMISSION_DENIED (leaked key, service disabled), OpenAI 401:
    /// disable this key and go on with the others.
    #[error("key unusable: {reason}")]
    KeyUnusable {
        reason: String,
        /// The Google Cloud project of the key, when the body names it (403 SERVICE_DISABLED).
        project: Option<String>,
    },

    /// OpenAI 429 `insufficient_quota`: the key is spent until the user re-enables it.
    #[error("key out of credit: {message}")]
    KeyExhausted { message: String },

    /// 5xx, timeouts, connection resets. `reached_server` is false only when the request
    /// provably never left (connection refused, DNS failure): such a request costs no quota.
    #[error("transient failure: {message}")]
    Transient {
        message: String,
        reached_server: bool,
    },

    /// HTTP 200 whose output is unusable: text that is not JSON, or JSON that does not match
    /// the schema. Retried (counts as an attempt).
    #[error("bad output: {reason}")]
    BadOutput {
        reason: String,
        raw_text: Option<String>,
        usage: Usage,
    },

    /// HTTP 200 whose answer was cut off at the output token limit (Gemini finishReason
    /// MAX_TOKENS, OpenAI finish_reason `length`): sent again once with less thinking, never
    /// "repaired" with the cut-off text. Counts as an attempt when it happens again.
    #[error("answer cut off: {message}")]
    Truncated { message: String, usage: Usage },

    /// The provider will not answer this prompt's content: HTTP 200 that the model refused
    /// (finishReason SAFETY, RECITATION, a blocked prompt), or a 400 refusing the prompt itself
    /// (OpenAI `invalid_prompt`, Azure OpenAI `content_filter`). Only this request is
    /// concerned: the task is skipped with this reason.
    #[error("refused by the model: {reason}")]
    Refused { reason: String },

    /// 400 refusing the response schema as too complex for constrained decoding (Gemini "The
    /// specified schema produces a constraint that has too many states for serving"). A
    /// packed schema repeats the type's schema once per year, so its years may still go
    /// alone; a single year's schema is the analysis type's own, and every task would fail.
    #[error("response schema too complex: {message}")]
    SchemaTooComplex { message: String },

    /// 404 unknown model, or any other 400 INVALID_ARGUMENT (e.g. a schema the model rejects):
    /// every task would fail, so the batch stops with exit 4 and the provider's message.
    #[error("configuration problem: {message}")]
    Configuration { message: String },

    /// 404 NOT_FOUND for the model itself (Gemini "models/X is not found", OpenAI
    /// `model_not_found`, Ollama "model ... not found"), or the provider saying the model "is no
    /// longer available" or "has been deprecated". Before a batch starts the model is not
    /// served (exit 4 with the served ones); once pre-flight found it served, it was retired
    /// mid-batch (exit 4 offering a new batch or `--switch-model`).
    #[error("model not served: {message}")]
    ModelUnavailable { message: String },

    /// 400 `unsupported_parameter` / `unsupported_value` naming one request parameter (OpenAI:
    /// "Unsupported parameter: 'max_tokens' is not supported with this model. Use
    /// 'max_completion_tokens' instead."), or Gemini's "Thinking level is not supported for
    /// this model." (`thinkingLevel`): the engine drops or renames a parameter it chose, once
    /// per model, and stops when the user set it or it is refused again.
    #[error("parameter {param:?} refused: {message}")]
    ParameterRefused { param: String, message: String },
}

impl CallError {
    /// True for a request sent and then given up on at the client's timeout: the server may
    /// still be working on it.
    pub fn timed_out(&self) -> bool {
        matches!(self, CallError::Transient { message, reached_server: true }
            if message.starts_with(crate::http::TIMED_OUT))
    }

    /// True for a request that never left: the connection was refused or could not be made.
    pub fn never_sent(&self) -> bool {
        matches!(
            self,
            CallError::Transient {
                reached_server: false,
                ..
            }
        )
    }

    /// True when the request may have reached the provider and so may have cost quota.
    pub fn may_have_cost_quota(&self) -> bool {
        !matches!(
            self,
            CallError::Transient {
                reached_server: false,
                ..
            }
        )
    }

    /// The Google Cloud project the provider named as the consumer of this request
    /// (`google.rpc.ErrorInfo` metadata `consumer: projects/NNN`), when it did. Gemini's
    /// quotas are per project, so two keys answered with one project share one quota.
    pub fn project(&self) -> Option<&str> {
        match self {
            CallError::DailyQuotaExhausted { project, .. }
            | CallError::RateLimited { project, .. }
            | CallError::InputTokensPerMinute { project, .. }
            | CallError::KeyUnusable { project, .. } => project.as_deref(),
            _ => None,
        }
    }

    /// The same error with every occurrence of `secrets` in its text replaced by its mask
    /// (see [`mask_secrets_in`]). The clients of this crate already return masked errors; this
    /// is for errors built elsewhere.
    pub fn masked(self, secrets: &[&str]) -> CallError {
        let m = |text: String| mask_secrets_in(&text, secrets);
        match self {
            CallError::DailyQuotaExhausted { message, project } => CallError::DailyQuotaExhausted {
                message: m(message),
                project,
            },
            CallError::RateLimited {
                retry_after,
                message,
                project,
            } => CallError::RateLimited {
                retry_after,
                message: m(message),
                project,
            },
            CallError::InputTokensPerMinute {
                limit_tokens,
                retry_after,
                message,
                project,
            } => CallError::InputTokensPerMinute {
                limit_tokens,
                retry_after,
                message: m(message),
                project,
            },
            CallError::ContextTooLong {
                max_tokens,
                message,
            } => CallError::ContextTooLong {
                max_tokens,
                message: m(message),
            },
            CallError::KeyUnusable { reason, project } => CallError::KeyUnusable {
                reason: m(reason),
                project,
            },
            CallError::KeyExhausted { message } => CallError::KeyExhausted {
                message: m(message),
            },
            CallError::Transient {
                message,
                reached_server,
            } => CallError::Transient {
                message: m(message),
                reached_server,
            },
            CallError::BadOutput {
                reason,
                raw_text,
                usage,
            } => CallError::BadOutput {
                reason: m(reason),
                raw_text: raw_text.map(m),
                usage,
            },
            CallError::Truncated { message, usage } => CallError::Truncated {
                message: m(message),
                usage,
            },
            CallError::Refused { reason } => CallError::Refused { reason: m(reason) },
            CallError::SchemaTooComplex { message } => CallError::SchemaTooComplex {
                message: m(message),
            },
            CallError::Configuration { message } => CallError::Configuration {
                message: m(message),
            },
            CallError::ModelUnavailable { message } => CallError::ModelUnavailable {
                message: m(message),
            },
            CallError::ParameterRefused { param, message } => CallError::ParameterRefused {
                param,
                message: m(message),
            },
        }
    }
}

/// A model provider. One call is one HTTP request; retries, repair calls and quota decisions
/// belong to the engine, which writes a ledger row before each call.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// A short name for logs and provenance, e.g. `gemini` or `openai-compatible`.
    fn name(&self) -> &str;

    /// Sends one generation request.
    async fn generate(
        &self,
        key: Option<&ApiKey>,
        request: &GenerateRequest,
    ) -> Result<Generation, CallError>;

    /// Checks that the key works and the model exists without spending generation quota
    /// (Gemini `GET v1beta/models/{model}`).
    async fn check_model(&self, key: Option<&ApiKey>, model: &str) -> Result<ModelInfo, CallError>;

    /// Every model the provider serves (Gemini `GET v1beta/models`, all pages; OpenAI
    /// `GET /v1/models`), without spending generation quota. A provider that cannot list
    /// says so as a configuration problem.
    async fn list_models(
        &self,
        _key: Option<&ApiKey>,
    ) -> Result<Vec<crate::models::ServedModel>, CallError> {
        Err(CallError::Configuration {
            message: format!("the {} provider cannot list its models", self.name()),
        })
    }

    /// Counts the tokens of a request with the model's own tokenizer, where the provider can.
    async fn count_tokens(
        &self,
        key: Option<&ApiKey>,
        request: &GenerateRequest,
    ) -> Result<Option<TokenCount>, CallError>;

    /// What the server says about its context and slots for `model` (spends no generation
    /// quota). A server that says nothing gives the defaults of its protocol.
    async fn server_limits(&self, key: Option<&ApiKey>, model: &str) -> ServerLimits {
        let _ = (key, model);
        ServerLimits {
            kind: ServerKind::Gemini,
            ..ServerLimits::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_an_error_reaches_every_text_field() {
        let secret = "sk-proj-abcdefghijklmnopqrstuvwxyz";
        let error = CallError::BadOutput {
            reason: format!("echoed {secret}"),
            raw_text: Some(format!("raw {secret}")),
            usage: Usage::default(),
        }
        .masked(&[secret]);
        let shown = format!("{error:?}");
        assert!(!shown.contains("abcdefghij"), "{shown}");
        assert!(shown.contains("sk-p...wxyz"), "{shown}");
        let transient = CallError::Transient {
            message: secret.to_string(),
            reached_server: false,
        }
        .masked(&[secret]);
        assert_eq!(
            transient,
            CallError::Transient {
                message: "sk-p...wxyz".into(),
                reached_server: false
            }
        );
    }

    #[test]
    fn thinking_settings_are_read_and_checked() {
        assert_eq!(Thinking::from_setting(""), Ok(Thinking::ProviderDefault));
        assert_eq!(
            Thinking::from_setting("Default"),
            Ok(Thinking::ProviderDefault)
        );
        assert_eq!(Thinking::from_setting(" 1024 "), Ok(Thinking::Budget(1024)));
        assert_eq!(Thinking::from_setting("-1"), Ok(Thinking::Budget(-1)));
        assert_eq!(
            Thinking::from_setting("HIGH"),
            Ok(Thinking::Level("high".into()))
        );
        assert!(Thinking::from_setting("-5")
            .unwrap_err()
            .contains("negative"));
        assert!(Thinking::from_setting("lots")
            .unwrap_err()
            .contains("minimal, low, medium, high"));

        let low = Thinking::Level("low".into());
        assert!(low.check_for_model("gemini-3-flash-preview").is_ok());
        assert!(low
            .check_for_model("gemini-2.5-flash")
            .unwrap_err()
            .contains("token budget"));
        assert!(Thinking::Budget(0)
            .check_for_model("gemini-2.5-flash")
            .is_ok());
        assert!(Thinking::Budget(0)
            .check_for_model("models/gemini-2.5-pro")
            .is_err());
        assert!(Thinking::Budget(1024)
            .check_for_model("gemini-3-pro-preview")
            .is_ok());
        assert!(low.check_for_model("gpt-4o-mini").is_ok());
    }

    #[test]
    fn keys_never_show_their_secret() {
        let k = ApiKey::new(
            "GOOGLE_API_KEY_1",
            "AIzaSyD-abcdefghijklmnopqrstuvwxyz012345",
        );
        assert_eq!(k.label(), "GOOGLE_API_KEY_1 (AIza...2345)");
        assert!(!format!("{k:?}").contains("abcdefghij"));
        assert_eq!(k.fingerprint().len(), 64);
        let body = r#"{"error":"bad key AIzaSyD-abcdefghijklmnopqrstuvwxyz012345"}"#;
        let masked = mask_secrets_in(body, &[k.secret()]);
        assert!(!masked.contains("abcdefghij"), "{masked}");
        assert_eq!(mask_secret("short"), "****");
    }
}
