//! Effective configuration: flags, then environment variables (a `.env` file is read too),
//! then an optional `fintel.toml`, then defaults. Secrets are never printed unmasked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use fintel_engine::Bucket;
use fintel_llm::{ApiKey, Thinking};
use fintel_store::BucketLimits;
use serde::{Deserialize, Serialize};

use crate::exit::{config_problem, usage};

/// Free space (MiB) under which a batch pauses, unless configured.
const DEFAULT_MIN_FREE_DISK_MB: u64 = 1024;

/// The optional configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    #[serde(default)]
    sec: SecFile,
    #[serde(default)]
    model: ModelFile,
    #[serde(default)]
    limits: LimitsFile,
    /// Keys by name: `GOOGLE_API_KEY_7 = "AIza..."` (keys in the environment win).
    #[serde(default)]
    keys: BTreeMap<String, String>,
    /// Which keys share a Google Cloud project's quota.
    #[serde(default)]
    buckets: Vec<BucketFile>,
    #[serde(default)]
    run: RunFile,
    #[serde(default)]
    notify: NotifyFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyFile {
    webhook_url: Option<String>,
    format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecFile {
    user_agent: Option<String>,
    www_url: Option<String>,
    data_url: Option<String>,
    requests_per_second: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    provider: Option<String>,
    name: Option<String>,
    gemini_url: Option<String>,
    openai_url: Option<String>,
    thinking: Option<String>,
    temperature: Option<f32>,
    seed: Option<i64>,
    max_output_tokens: Option<u32>,
    context_tokens: Option<u64>,
    request_timeout_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    requests_per_day: Option<u32>,
    requests_per_minute: Option<u32>,
    input_tokens_per_minute: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BucketFile {
    name: String,
    keys: Vec<String>,
    requests_per_day: Option<u32>,
    requests_per_minute: Option<u32>,
    input_tokens_per_minute: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunFile {
    concurrency: Option<usize>,
    reset_buffer_minutes: Option<u64>,
    grace_seconds: Option<u64>,
    min_free_disk_mb: Option<u64>,
    backup_retention: Option<usize>,
    /// `"off"`, `2`, `3` or `"auto"` (a number or a string).
    pack: Option<toml::Value>,
}

/// Which API the model is reached through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Gemini,
    OpenAi,
}

/// Everything a command needs to know about its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub config_file: Option<PathBuf>,
    pub sec_user_agent: Option<String>,
    pub sec_www_url: String,
    pub sec_data_url: String,
    pub sec_requests_per_second: u32,
    pub provider: ProviderKind,
    pub gemini_url: String,
    pub openai_url: String,
    /// The model the user configured (flag, FINTEL_MODEL, `[model] name`); `None` lets
    /// pre-flight choose one from the provider's list.
    pub model: Option<String>,
    pub thinking: Thinking,
    /// The temperature the user set (`FINTEL_TEMPERATURE`, `[model] temperature`); unset, the
    /// model family's (README, "What each provider family gets sent").
    pub temperature: Option<f32>,
    /// The seed the user set (`FINTEL_SEED`, `[model] seed`); unset,
    /// [`fintel_llm::params::DEFAULT_SEED`].
    pub seed: Option<i64>,
    pub max_output_tokens: Option<u32>,
    /// The context the user set (`FINTEL_CONTEXT_TOKENS`, `[model] context_tokens`); unset,
    /// the server's word or the model's input limit is used.
    pub context_tokens: Option<u64>,
    /// How long one model request may take (`FINTEL_REQUEST_TIMEOUT_SECONDS`, `[model]
    /// request_timeout_seconds`); a local model on a CPU can be slow.
    pub request_timeout: Duration,
    pub buckets: Vec<Bucket>,
    /// Tasks in flight: the user's setting, else [`fintel_engine::settings::DEFAULT_CONCURRENCY`];
    /// `concurrency_configured` says whether the user set it (unset, a local server's slots
    /// are used).
    pub concurrency: usize,
    pub concurrency_configured: Option<usize>,
    pub reset_buffer: Duration,
    pub grace: Duration,
    /// Below this much free space in the data directory, a batch pauses (0: never).
    pub min_free_disk_bytes: u64,
    /// Daily backups kept.
    pub backup_retention: usize,
    /// Request packing of new batches when the command line does not say (`[run] pack`).
    pub pack: fintel_engine::pack::Pack,
    /// The webhook URL, kept to be masked in logs (Discord's carry a token).
    pub webhook_url: Option<String>,
    /// Where batch notifications go (disabled without a URL), checked when loading.
    pub notifier: fintel_notify::Notifier,
}

/// Flags that override the configuration.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    pub model: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    /// Reads `.env`, the environment and the configuration file.
    pub fn load(overrides: &Overrides) -> Result<Config> {
        // A .env in the working directory fills in variables that are not already set.
        let _ = dotenvy::dotenv();
        let data_dir = match overrides
            .data_dir
            .clone()
            .or_else(|| env("FINTEL_HOME").map(PathBuf::from))
        {
            Some(d) => d,
            None => dirs::data_dir().map(|d| d.join("fintel")).ok_or_else(|| {
                usage("cannot find the user's data directory; set FINTEL_HOME or pass --data-dir")
            })?,
        };
        let config_file = overrides
            .config_file
            .clone()
            .or_else(|| env("FINTEL_CONFIG").map(PathBuf::from))
            .or_else(|| Some(data_dir.join("fintel.toml")).filter(|p| p.is_file()));
        let file = match &config_file {
            Some(path) => read_config_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = match (&overrides.data_dir, env("FINTEL_HOME"), &file.data_dir) {
            (None, None, Some(d)) => d.clone(),
            _ => data_dir,
        };

        let provider_name = env("FINTEL_PROVIDER")
            .or(file.model.provider.clone())
            .unwrap_or_else(|| {
                if env("FINTEL_OPENAI_URL").is_some() {
                    "openai".into()
                } else {
                    "gemini".into()
                }
            });
        let provider = match provider_name.to_ascii_lowercase().as_str() {
            "gemini" => ProviderKind::Gemini,
            "openai" | "openai-compatible" => ProviderKind::OpenAi,
            other => {
                return Err(usage(format!(
                    "unknown provider {other:?} (FINTEL_PROVIDER or [model] provider); use gemini or openai"
                )))
            }
        };
        let thinking = match env("FINTEL_THINKING").or(file.model.thinking.clone()) {
            Some(t) => {
                Thinking::from_setting(&t).map_err(|e| usage(format!("thinking setting: {e}")))?
            }
            None => Thinking::ProviderDefault,
        };
        let model = overrides
            .model
            .clone()
            .or_else(|| env("FINTEL_MODEL"))
            .or(file.model.name.clone())
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty());
        if let (ProviderKind::Gemini, Some(model)) = (provider, &model) {
            thinking
                .check_for_model(model)
                .map_err(|e| usage(format!("thinking setting: {e}")))?;
        }
        let defaults = BucketLimits {
            requests_per_day: env_num("FINTEL_REQUESTS_PER_DAY")?
                .or(file.limits.requests_per_day)
                .unwrap_or(20),
            requests_per_minute: env_num("FINTEL_REQUESTS_PER_MINUTE")?
                .or(file.limits.requests_per_minute)
                .unwrap_or(5),
            input_tokens_per_minute: env_num("FINTEL_INPUT_TOKENS_PER_MINUTE")?
                .or(file.limits.input_tokens_per_minute)
                .unwrap_or(250_000),
        };
        let buckets = build_buckets(provider, &file, defaults)?;
        let run = &file.run;
        let webhook_url = env("FINTEL_WEBHOOK_URL").or(file.notify.webhook_url.clone());
        let webhook_format = env("FINTEL_WEBHOOK_FORMAT").or(file.notify.format.clone());
        // A bad webhook is found now, before a batch exists, not when the first event fires.
        let notifier =
            fintel_notify::Notifier::from_config(webhook_url.as_deref(), webhook_format.as_deref())
                .map_err(|e| {
                    usage(format!(
                "{e} (FINTEL_WEBHOOK_URL / FINTEL_WEBHOOK_FORMAT, or [notify] in fintel.toml)"
            ))
                })?;
        Ok(Config {
            sec_user_agent: env("FINTEL_SEC_USER_AGENT").or(file.sec.user_agent.clone()),
            sec_www_url: env("FINTEL_SEC_WWW_URL")
                .or(file.sec.www_url.clone())
                .unwrap_or_else(|| "https://www.sec.gov".into()),
            sec_data_url: env("FINTEL_SEC_DATA_URL")
                .or(file.sec.data_url.clone())
                .unwrap_or_else(|| "https://data.sec.gov".into()),
            sec_requests_per_second: env_num("FINTEL_SEC_REQUESTS_PER_SECOND")?
                .or(file.sec.requests_per_second)
                .unwrap_or(5),
            provider,
            gemini_url: env("FINTEL_GEMINI_URL")
                .or(file.model.gemini_url.clone())
                .unwrap_or_else(|| "https://generativelanguage.googleapis.com".into()),
            openai_url: env("FINTEL_OPENAI_URL")
                .or(file.model.openai_url.clone())
                .unwrap_or_else(|| "https://api.openai.com".into()),
            model,
            thinking,
            temperature: match env_num::<f32>("FINTEL_TEMPERATURE")?.or(file.model.temperature) {
                Some(t) if !(0.0..=2.0).contains(&t) => {
                    return Err(usage(format!(
                        "temperature {t} is out of range (FINTEL_TEMPERATURE or [model] \
                         temperature): give a number from 0 to 2, or leave it unset for the \
                         model family's default"
                    )))
                }
                other => other,
            },
            seed: match env_num::<i64>("FINTEL_SEED")?.or(file.model.seed) {
                // Gemini's seed is a 32-bit integer; OpenAI's takes the same range.
                Some(s) if !(0..=i64::from(i32::MAX)).contains(&s) => {
                    return Err(usage(format!(
                        "seed {s} is out of range (FINTEL_SEED or [model] seed): give a whole \
                         number from 0 to {}",
                        i32::MAX
                    )))
                }
                other => other,
            },
            // Unset: the model's own output limit, learned by the pre-flight lookup.
            max_output_tokens: file.model.max_output_tokens,
            context_tokens: match env_num::<u64>("FINTEL_CONTEXT_TOKENS")?
                .or(file.model.context_tokens)
            {
                Some(n) if n < 1_000 => {
                    return Err(usage(format!(
                        "a context of {n} tokens is too small for any analysis \
                         (FINTEL_CONTEXT_TOKENS or [model] context_tokens): give the model's \
                         context in tokens, e.g. 32768, or leave it unset to use what the server \
                         says"
                    )))
                }
                other => other,
            },
            request_timeout: match env_num::<u64>("FINTEL_REQUEST_TIMEOUT_SECONDS")?
                .or(file.model.request_timeout_seconds)
            {
                Some(0) => {
                    return Err(usage(
                        "the request timeout must be at least 1 second \
                         (FINTEL_REQUEST_TIMEOUT_SECONDS or [model] request_timeout_seconds)",
                    ))
                }
                other => Duration::from_secs(other.unwrap_or(DEFAULT_REQUEST_TIMEOUT_SECONDS)),
            },
            buckets,
            concurrency_configured: env_num::<usize>("FINTEL_CONCURRENCY")?
                .or(run.concurrency)
                .map(|n| n.max(1)),
            concurrency: env_num("FINTEL_CONCURRENCY")?
                .or(run.concurrency)
                .unwrap_or(fintel_engine::settings::DEFAULT_CONCURRENCY)
                .max(1),
            reset_buffer: Duration::from_secs(60 * run.reset_buffer_minutes.unwrap_or(5)),
            grace: Duration::from_secs(run.grace_seconds.unwrap_or(30)),
            min_free_disk_bytes: env_num::<u64>("FINTEL_MIN_FREE_DISK_MB")?
                .or(run.min_free_disk_mb)
                .unwrap_or(DEFAULT_MIN_FREE_DISK_MB)
                .saturating_mul(1 << 20),
            backup_retention: match env_num::<usize>("FINTEL_BACKUP_RETENTION")?
                .or(run.backup_retention)
            {
                Some(0) => {
                    return Err(usage(
                        "backup retention must be at least 1 (FINTEL_BACKUP_RETENTION or [run] \
                         backup_retention)",
                    ))
                }
                other => other.unwrap_or(7),
            },
            pack: pack_setting(run.pack.as_ref())?,
            webhook_url,
            notifier,
            data_dir,
            config_file,
        })
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("fintel.db")
    }
    pub fn cache_dir(&self) -> PathBuf {
        self.data_dir.join("cache")
    }
    pub fn locks_dir(&self) -> PathBuf {
        self.data_dir.join("locks")
    }
    pub fn backups_dir(&self) -> PathBuf {
        self.data_dir.join("backups")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
    pub fn workflows_dir(&self) -> PathBuf {
        self.data_dir.join("workflows")
    }

    /// Whether any key is configured (a local OpenAI-compatible server needs none).
    pub fn has_keys(&self) -> bool {
        self.buckets.iter().any(|b| !b.keys.is_empty())
    }

    /// The configuration as shown by `fintel config`, secrets masked.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "data_dir": self.data_dir,
            "config_file": self.config_file,
            "database": self.db_path(),
            "sec": {
                "user_agent": self.sec_user_agent,
                "www_url": self.sec_www_url,
                "data_url": self.sec_data_url,
                "requests_per_second": self.sec_requests_per_second,
            },
            "model": {
                "provider": self.provider,
                "name": self.model,
                "url": match self.provider { ProviderKind::Gemini => &self.gemini_url, ProviderKind::OpenAi => &self.openai_url },
                "thinking": format!("{:?}", self.thinking),
                "temperature": self.temperature,
                "seed": self.seed.unwrap_or(fintel_llm::params::DEFAULT_SEED),
                "max_output_tokens": self.max_output_tokens,
                "context_tokens": self.context_tokens,
                "request_timeout_seconds": self.request_timeout.as_secs(),
            },
            "buckets": self.buckets.iter().map(|b| serde_json::json!({
                "name": b.name,
                "keys": b.keys.iter().map(|k| k.label()).collect::<Vec<_>>(),
                "requests_per_day": b.limits.requests_per_day,
                "requests_per_minute": b.limits.requests_per_minute,
                "input_tokens_per_minute": b.limits.input_tokens_per_minute,
            })).collect::<Vec<_>>(),
            "run": {
                "concurrency": self.concurrency,
                "reset_buffer_seconds": self.reset_buffer.as_secs(),
                "grace_seconds": self.grace.as_secs(),
                "min_free_disk_bytes": self.min_free_disk_bytes,
                "backup_retention": self.backup_retention,
                "pack": self.pack.to_string(),
            },
            "notify": {
                "webhook_url": self.notifier.masked_url(),
                "format": self.notifier.format().map(|f| f.as_str()),
            },
        })
    }
}

/// `[run] pack` from the file: a number (`2`) or a string (`"auto"`), checked now so a typo
/// is found before any batch is created.
fn pack_setting(value: Option<&toml::Value>) -> Result<fintel_engine::pack::Pack> {
    let text = match value {
        None => return Ok(fintel_engine::pack::Pack::Off),
        Some(toml::Value::String(s)) => s.clone(),
        Some(toml::Value::Integer(n)) => n.to_string(),
        Some(other) => other.to_string(),
    };
    text.parse()
        .map_err(|e| usage(format!("[run] pack in fintel.toml: {e}")))
}

/// How long one model request may take when the user does not say.
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 600;

fn env_num<T: std::str::FromStr>(name: &str) -> Result<Option<T>> {
    match env(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| usage(format!("{name}={v:?} is not a valid number"))),
    }
}

fn read_config_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))
        .map_err(|e| usage(format!("{e:#}")))?;
    toml::from_str(&text)
        .map_err(|e| usage(format!("{}: {}", path.display(), e.to_string().trim_end())))
}

/// Keys from the environment (`GOOGLE_API_KEY`, `GOOGLE_API_KEY_1..N`, or `OPENAI_API_KEY`)
/// and the file's `[keys]`, grouped into buckets: those the file names, and one bucket per
/// remaining key.
fn build_buckets(
    provider: ProviderKind,
    file: &FileConfig,
    defaults: BucketLimits,
) -> Result<Vec<Bucket>> {
    let mut keys: BTreeMap<String, String> = file.keys.clone();
    let mut env_keys: Vec<(String, String)> = std::env::vars()
        .filter(|(k, v)| {
            !v.trim().is_empty()
                && match provider {
                    ProviderKind::Gemini => {
                        k == "GOOGLE_API_KEY"
                            || k.strip_prefix("GOOGLE_API_KEY_")
                                .is_some_and(|n| n.parse::<u32>().is_ok())
                    }
                    ProviderKind::OpenAi => {
                        k == "OPENAI_API_KEY"
                            || k.strip_prefix("OPENAI_API_KEY_")
                                .is_some_and(|n| n.parse::<u32>().is_ok())
                    }
                }
        })
        .collect();
    env_keys.sort_by_key(|(k, _)| (k.len(), k.clone()));
    for (k, v) in env_keys {
        keys.insert(k, v.trim().to_string());
    }
    let mut seen_secrets = std::collections::HashSet::new();
    let mut buckets = Vec::new();
    let mut used = std::collections::HashSet::new();
    for b in &file.buckets {
        let mut bucket_keys = Vec::new();
        for name in &b.keys {
            let secret = keys.get(name).ok_or_else(|| {
                usage(format!(
                    "bucket {:?} names key {name:?}, which is not set (neither in the environment nor in [keys])",
                    b.name
                ))
            })?;
            used.insert(name.clone());
            if seen_secrets.insert(secret.clone()) {
                bucket_keys.push(ApiKey::new(name, secret.clone()));
            }
        }
        buckets.push(Bucket {
            name: b.name.clone(),
            keys: bucket_keys,
            limits: BucketLimits {
                requests_per_day: b.requests_per_day.unwrap_or(defaults.requests_per_day),
                requests_per_minute: b
                    .requests_per_minute
                    .unwrap_or(defaults.requests_per_minute),
                input_tokens_per_minute: b
                    .input_tokens_per_minute
                    .unwrap_or(defaults.input_tokens_per_minute),
            },
        });
    }
    for (name, secret) in &keys {
        if used.contains(name) || !seen_secrets.insert(secret.clone()) {
            continue;
        }
        let key = ApiKey::new(name, secret.clone());
        buckets.push(Bucket {
            // The bucket is named after the key's fingerprint, not its label, so renaming an
            // environment variable keeps the key's usage history.
            name: format!("key-{}", &key.fingerprint()[..12]),
            keys: vec![key],
            limits: defaults,
        });
    }
    if buckets.is_empty() && provider == ProviderKind::OpenAi {
        // A local OpenAI-compatible server (Ollama, vLLM) needs no key.
        buckets.push(Bucket {
            name: "local".into(),
            keys: vec![],
            limits: defaults,
        });
    }
    Ok(buckets)
}

/// The configuration problem of having no key at all, with what to do.
pub fn no_keys_error() -> anyhow::Error {
    config_problem(
        "no API key configured: set GOOGLE_API_KEY_1, GOOGLE_API_KEY_2, ... (or GOOGLE_API_KEY) in \
         the environment or a .env file, or list them under [keys] in fintel.toml. \
         To see fintel work without a key, run `fintel demo`.",
    )
}
