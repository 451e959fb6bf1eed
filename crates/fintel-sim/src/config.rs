//! The simulator's configuration: the synthetic SEC universe, the Gemini projects and keys with
//! their quotas, the models served, latency, injected faults and outage windows. Loadable from
//! TOML; `SimConfig::default()` runs a demo.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::openai::OpenAiSimConfig;
use crate::weather::WeatherConfig;
use crate::SimError;

/// Everything the simulator needs to know. Every field has a default, so a TOML file only
/// names what it changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of every deterministic choice (companies, documents, faults, answers).
    pub seed: u64,
    /// The simulated SEC EDGAR.
    pub sec: SecConfig,
    /// The simulated Gemini API.
    pub gemini: GeminiConfig,
    /// The provider's weather over days (`[weather]`); absent: fair weather.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weather: Option<WeatherConfig>,
    /// An OpenAI-compatible server beside Gemini (`[openai]`); absent: none is served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openai: Option<OpenAiSimConfig>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            sec: SecConfig::default(),
            gemini: GeminiConfig::default(),
            weather: None,
            openai: None,
        }
    }
}

/// The synthetic SEC universe.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecConfig {
    /// Number of synthetic companies.
    pub companies: usize,
    /// Fewest fiscal years of annual reports a company has.
    pub min_years: u32,
    /// Most fiscal years of annual reports a company has.
    pub max_years: u32,
    /// The latest fiscal year filed by companies that are still listed.
    pub last_fiscal_year: i16,
    /// Typical size of a synthetic annual report, in bytes.
    pub document_bytes: usize,
    /// Share of annual reports that are large (between 1 MB and `large_document_max_bytes`).
    pub large_document_share: f64,
    /// Largest synthetic annual report, in bytes.
    pub large_document_max_bytes: usize,
    /// Draw annual report sizes from the measured distribution of real 10-Ks (25k-150k
    /// tokens of text, median about 90k; [`crate::sizes`]) instead of `document_bytes` and
    /// the large share.
    pub measured_sizes: bool,
    /// Filings in `filings.recent` of a submissions page; older filings go to
    /// `CIK##########-submissions-001.json`. SEC uses 1,000; the smaller default makes every
    /// company with a long history exercise paging without huge bodies.
    pub recent_page_limit: usize,
    /// Real SEC fixtures to serve beside the synthetic universe (Apple's submissions pages, its
    /// company_tickers.json entry, the fixture 10-K and 20-F documents).
    pub fixtures_dir: Option<PathBuf>,
}

impl Default for SecConfig {
    fn default() -> Self {
        SecConfig {
            companies: 1_000,
            min_years: 10,
            max_years: 25,
            last_fiscal_year: 2025,
            document_bytes: 150_000,
            large_document_share: 0.03,
            large_document_max_bytes: 4_000_000,
            measured_sizes: false,
            recent_page_limit: 100,
            fixtures_dir: None,
        }
    }
}

/// The simulated Gemini API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeminiConfig {
    /// Quota projects; keys of one project share its limits, as on Google Cloud.
    pub projects: Vec<ProjectConfig>,
    /// Models served; any other model name gets 404 NOT_FOUND.
    pub models: Vec<ModelConfig>,
    /// Models per page of `GET v1beta/models` when the request asks for more (or none): the
    /// API's default page is 50; a small one makes clients follow `nextPageToken`.
    pub models_page_size: usize,
    /// Real-time delay added to every generateContent answer.
    pub latency: LatencyConfig,
    /// Probabilities of injected faults.
    pub faults: FaultConfig,
    /// Share of packed requests (one `fyYYYY` property per fiscal year) answered with their
    /// oldest year's part invalid ([`crate::packed`]), drawn apart from `faults`.
    pub invalid_packed_part: f64,
    /// Every packed request, and every repair of one (it keeps the packed schema), is answered
    /// with invalid JSON: a packed answer that is never usable, while each year asked alone
    /// is answered well.
    pub unusable_packed: bool,
    /// A model that thinks its output away: a request whose thinking budget is above this, or
    /// not bounded (absent or -1, or a `thinkingLevel` above `low`), is answered MAX_TOKENS,
    /// one with less thinking well. `None`: thinking never cuts an answer off.
    pub max_tokens_above_thinking: Option<i64>,
    /// A request of more input tokens than this (a filing) is answered with invalid JSON,
    /// a smaller one (a repair, which does not carry the filing) well. `None`: off.
    pub invalid_json_above_tokens: Option<u64>,
    /// Windows during which every generateContent answers 503.
    pub outages: Vec<OutageWindow>,
    /// Keys refused with 400 API_KEY_INVALID even if a project lists them.
    pub invalid_keys: Vec<String>,
    /// Keys refused with 403 PERMISSION_DENIED "reported as leaked".
    pub leaked_keys: Vec<String>,
    /// Largest response schema accepted, in characters of its compact JSON. A request with a
    /// larger one is refused 400 INVALID_ARGUMENT "...too many states for serving", as Gemini
    /// refuses schemas too complex for its constrained decoding. `None`: no limit.
    pub max_schema_chars: Option<usize>,
    /// Every packed response schema (one `fyYYYY` property per fiscal year) is refused 400
    /// INVALID_ARGUMENT "...too many states for serving", while each year's own schema is
    /// accepted: a type whose schema Gemini serves alone but not repeated.
    pub packed_schema_too_complex: bool,
    /// A request whose body contains one of these texts (e.g. `(ticker SIM3)`, as the prompt
    /// names its company) is answered 200 with `promptFeedback.blockReason`
    /// `PROHIBITED_CONTENT` and no candidates, as Gemini answers a prompt it blocks.
    pub blocked_prompts: Vec<String>,
    /// When true, a request refused with 429 is still recorded against the per-minute and
    /// per-day counters (the harshest reading of the real API). Off by default: refusals are
    /// counted in the stats but consume no quota.
    pub refused_requests_consume_quota: bool,
}

impl Default for GeminiConfig {
    fn default() -> Self {
        GeminiConfig {
            projects: vec![
                ProjectConfig {
                    name: "sim-project-1".into(),
                    keys: vec!["sim-key-1".into()],
                    ..ProjectConfig::default()
                },
                ProjectConfig {
                    name: "sim-project-2".into(),
                    keys: vec!["sim-key-2".into()],
                    ..ProjectConfig::default()
                },
            ],
            models: vec![ModelConfig::default()],
            models_page_size: 50,
            latency: LatencyConfig::default(),
            faults: FaultConfig::default(),
            invalid_packed_part: 0.0,
            unusable_packed: false,
            max_tokens_above_thinking: None,
            invalid_json_above_tokens: None,
            outages: Vec::new(),
            invalid_keys: Vec::new(),
            leaked_keys: Vec::new(),
            max_schema_chars: None,
            packed_schema_too_complex: false,
            blocked_prompts: Vec::new(),
            refused_requests_consume_quota: false,
        }
    }
}

/// One Google Cloud project: its keys and its free-tier limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectConfig {
    /// Project name, used in stats.
    pub name: String,
    /// API keys of this project.
    pub keys: Vec<String>,
    /// Requests per Pacific calendar day.
    pub requests_per_day: u32,
    /// Requests per sliding 60 seconds.
    pub requests_per_minute: u32,
    /// Input tokens per sliding 60 seconds (also the largest single request).
    pub input_tokens_per_minute: u64,
    /// The project number. When set, its 429 bodies carry a `google.rpc.ErrorInfo` whose
    /// metadata names the consumer (`projects/NNN`), as the 2024-style per-minute 429 and the
    /// 403 SERVICE_DISABLED do; when unset they do not, like today's free-tier 429s.
    pub number: Option<String>,
    /// The Generative Language API is not enabled in this project: every request is refused
    /// 403 PERMISSION_DENIED SERVICE_DISABLED (naming the project when `number` is set).
    pub api_disabled: bool,
}

impl Default for ProjectConfig {
    fn default() -> Self {
        ProjectConfig {
            name: "project".into(),
            keys: Vec::new(),
            requests_per_day: 20,
            requests_per_minute: 5,
            input_tokens_per_minute: 250_000,
            number: None,
            api_disabled: false,
        }
    }
}

/// A model the simulator serves and how it answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Model id as used in the URL, e.g. `gemini-2.5-flash`.
    pub name: String,
    /// Context limit in tokens.
    pub input_token_limit: u64,
    /// Output limit in tokens.
    pub output_token_limit: u64,
    /// Smallest accepted `thinkingConfig.thinkingBudget` (besides -1, "dynamic").
    pub min_thinking_budget: i64,
    /// Largest accepted `thinkingConfig.thinkingBudget`.
    pub max_thinking_budget: i64,
    /// Thinking tokens reported in usageMetadata when thinking is on.
    pub thoughts_tokens: u64,
    /// The model retires after answering this many generateContent requests: from then on it
    /// is not listed and every request for it is answered 404 NOT_FOUND, as Google answers for
    /// a model past its shutdown date.
    pub retire_after_answers: Option<u64>,
    /// The model retires at this instant of the injected clock (RFC 3339 in TOML).
    pub retired_at: Option<Timestamp>,
}

impl ModelConfig {
    /// A served model named `name` with the default limits.
    pub fn named(name: &str) -> ModelConfig {
        ModelConfig {
            name: name.to_string(),
            ..ModelConfig::default()
        }
    }

    /// Only Gemini 3.x models, as served once every Gemini 2.5 model has retired: a
    /// generally available Flash, its Flash-Lite and a Pro preview.
    pub fn gemini_3_only() -> Vec<ModelConfig> {
        [
            "gemini-3-pro-preview",
            "gemini-3-flash-lite",
            "gemini-3-flash",
        ]
        .into_iter()
        .map(ModelConfig::named)
        .collect()
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            name: "gemini-2.5-flash".into(),
            input_token_limit: 1_048_576,
            output_token_limit: 65_536,
            min_thinking_budget: 0,
            max_thinking_budget: 24_576,
            thoughts_tokens: 512,
            retire_after_answers: None,
            retired_at: None,
        }
    }
}

/// Real-time latency of generateContent answers: uniform in `min_ms..=max_ms`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatencyConfig {
    /// Shortest added delay in milliseconds.
    pub min_ms: u64,
    /// Longest added delay in milliseconds (equal to `min_ms` for a fixed delay).
    pub max_ms: u64,
}

/// Probabilities (0..=1, summing to at most 1) of the faults injected into generateContent
/// requests that passed validation and quota. One draw per request decides which, if any.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// 503 UNAVAILABLE "The model is overloaded. Please try again later."
    pub unavailable: f64,
    /// Answer only after `slow_ms` of real time (beyond a client's timeout).
    pub slow: f64,
    /// How long a slow answer takes, in real milliseconds.
    pub slow_ms: u64,
    /// Drop the connection without any response.
    pub connection_reset: f64,
    /// 200 whose text is truncated, invalid JSON (finishReason STOP).
    pub invalid_json: f64,
    /// 200 with finishReason MAX_TOKENS and truncated text.
    pub max_tokens: f64,
    /// 200 with finishReason SAFETY and no content.
    pub safety: f64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            unavailable: 0.0,
            slow: 0.0,
            slow_ms: 120_000,
            connection_reset: 0.0,
            invalid_json: 0.0,
            max_tokens: 0.0,
            safety: 0.0,
        }
    }
}

impl FaultConfig {
    fn probabilities(&self) -> [(&'static str, f64); 6] {
        [
            ("unavailable", self.unavailable),
            ("slow", self.slow),
            ("connection_reset", self.connection_reset),
            ("invalid_json", self.invalid_json),
            ("max_tokens", self.max_tokens),
            ("safety", self.safety),
        ]
    }
}

/// A window of clock time, `from` inclusive to `to` exclusive, during which every
/// generateContent request answers 503.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutageWindow {
    /// Start of the outage.
    pub from: Timestamp,
    /// End of the outage.
    pub to: Timestamp,
}

impl SimConfig {
    /// Parses a TOML configuration and checks it.
    pub fn from_toml_str(text: &str) -> Result<Self, SimError> {
        let config: SimConfig =
            toml::from_str(text).map_err(|e| SimError::Config(format!("invalid TOML: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// The configuration as TOML (a starting point for a config file).
    pub fn to_toml_string(&self) -> Result<String, SimError> {
        toml::to_string(self).map_err(|e| SimError::Config(format!("cannot write as TOML: {e}")))
    }

    /// Reads and parses a TOML configuration file.
    pub fn from_toml_file(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SimError::Config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        Self::from_toml_str(&text)
    }

    /// Checks the values that TOML types cannot: each message says what to change.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::Config(m));
        let sec = &self.sec;
        if sec.companies == 0 {
            return bad("sec.companies must be at least 1".into());
        }
        if sec.min_years == 0 || sec.min_years > sec.max_years {
            return bad(format!(
                "sec.min_years ({}) must be at least 1 and not above sec.max_years ({})",
                sec.min_years, sec.max_years
            ));
        }
        if !(1995..=2100).contains(&sec.last_fiscal_year)
            || i32::from(sec.last_fiscal_year) - (sec.max_years as i32) < 1970
        {
            return bad(format!(
                "sec.last_fiscal_year ({}) must be 1995..=2100 and leave max_years of history after 1970",
                sec.last_fiscal_year
            ));
        }
        if sec.document_bytes < 10_000 || sec.large_document_max_bytes < sec.document_bytes {
            return bad("sec.document_bytes must be at least 10000 and not above sec.large_document_max_bytes".into());
        }
        if !(0.0..=1.0).contains(&sec.large_document_share) {
            return bad("sec.large_document_share must be between 0 and 1".into());
        }
        if sec.recent_page_limit < 10 {
            return bad("sec.recent_page_limit must be at least 10".into());
        }
        let g = &self.gemini;
        if g.projects.is_empty() {
            return bad(
                "gemini.projects is empty: configure at least one project with a key".into(),
            );
        }
        let mut seen_keys = HashSet::new();
        let mut seen_projects = HashSet::new();
        for p in &g.projects {
            if !seen_projects.insert(p.name.as_str()) {
                return bad(format!("gemini project name {:?} is used twice", p.name));
            }
            if p.keys.is_empty() {
                return bad(format!("gemini project {:?} has no keys", p.name));
            }
            for k in &p.keys {
                if k.is_empty() {
                    return bad(format!("gemini project {:?} has an empty key", p.name));
                }
                if !seen_keys.insert(k.as_str()) {
                    return bad(format!(
                        "a key of project {:?} is also listed in another project: a key belongs to one project",
                        p.name
                    ));
                }
            }
        }
        if g.models.is_empty() {
            return bad("gemini.models is empty: serve at least one model".into());
        }
        for m in &g.models {
            if m.name.is_empty() || m.name.contains('/') || m.name.contains(':') {
                return bad(format!(
                    "model name {:?} must be non-empty without '/' or ':'",
                    m.name
                ));
            }
            if m.input_token_limit == 0 || m.min_thinking_budget > m.max_thinking_budget {
                return bad(format!(
                    "model {:?}: input_token_limit must be positive and min_thinking_budget not above max_thinking_budget",
                    m.name
                ));
            }
        }
        if g.latency.min_ms > g.latency.max_ms {
            return bad(format!(
                "gemini.latency.min_ms ({}) is above max_ms ({})",
                g.latency.min_ms, g.latency.max_ms
            ));
        }
        if !(0.0..=1.0).contains(&g.invalid_packed_part) {
            return bad(format!(
                "gemini.invalid_packed_part = {} must be a probability between 0 and 1",
                g.invalid_packed_part
            ));
        }
        let mut total = 0.0;
        for (name, p) in g.faults.probabilities() {
            if !(0.0..=1.0).contains(&p) {
                return bad(format!(
                    "gemini.faults.{name} = {p} must be a probability between 0 and 1"
                ));
            }
            total += p;
        }
        if total > 1.0 + 1e-9 {
            return bad(format!(
                "gemini.faults probabilities sum to {total}, more than 1"
            ));
        }
        for w in &g.outages {
            if w.from >= w.to {
                return bad(format!("outage window {} .. {} is empty", w.from, w.to));
            }
        }
        if let Some(weather) = &self.weather {
            weather.validate().map_err(SimError::Config)?;
        }
        if let Some(openai) = &self.openai {
            openai.validate().map_err(SimError::Config)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_round_trips_through_toml() {
        let config = SimConfig::default();
        config.validate().unwrap();
        let text = config.to_toml_string().unwrap();
        let back = SimConfig::from_toml_str(&text).unwrap();
        assert_eq!(back.sec.companies, 1_000);
        assert_eq!(back.gemini.models[0].input_token_limit, 1_048_576);
    }

    #[test]
    fn partial_toml_keeps_defaults() {
        let config = SimConfig::from_toml_str(
            r#"
seed = 9
[[gemini.projects]]
name = "shared"
keys = ["a", "b"]
requests_per_day = 3
[gemini.faults]
unavailable = 0.1
[[gemini.outages]]
from = "2026-03-08T10:00:00Z"
to = "2026-03-08T11:00:00Z"
"#,
        )
        .unwrap();
        assert_eq!(config.gemini.max_schema_chars, None);
        assert_eq!(config.seed, 9);
        assert_eq!(config.gemini.projects[0].requests_per_minute, 5);
        assert_eq!(config.gemini.projects[0].requests_per_day, 3);
        assert_eq!(config.gemini.faults.unavailable, 0.1);
        assert_eq!(config.sec.companies, 1_000);
    }

    #[test]
    fn an_openai_block_names_its_flavor_and_is_checked() {
        let config = SimConfig::from_toml_str(
            "[openai]\nflavor = \"llamacpp\"\ncontext_tokens = 2048\nslots = 1\nanswer_ms = 250\n",
        )
        .unwrap();
        let openai = config.openai.unwrap();
        assert_eq!(openai.flavor, crate::openai::Flavor::LlamaCpp);
        assert_eq!((openai.context_tokens, openai.slots), (2_048, 1));
        let err = SimConfig::from_toml_str("[openai]\nflavor = \"lmstudio\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant"), "{err}");
        let err = SimConfig::from_toml_str("[openai]\nslots = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("openai.slots"), "{err}");
    }

    #[test]
    fn a_missing_config_file_is_named_in_the_error() {
        let err = SimConfig::from_toml_file(Path::new("no-such-sim.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot read config file no-such-sim.toml"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_are_reported_with_what_to_change() {
        let cases = [
            ("sec = { companies = 0 }", "sec.companies"),
            ("sec = { min_years = 30 }", "min_years"),
            ("gemini = { faults = { unavailable = 0.8, safety = 0.5 } }", "sum"),
            ("gemini = { faults = { safety = -0.1 } }", "probability"),
            ("gemini = { latency = { min_ms = 5, max_ms = 1 } }", "min_ms"),
            ("gemini = { models = [] }", "serve at least one model"),
            ("gemini = { projects = [{ name = \"a\", keys = [\"k\"] }, { name = \"b\", keys = [\"k\"] }] }", "one project"),
            ("gemini = { projects = [{ name = \"a\" }] }", "has no keys"),
            ("gemini = { outages = [{ from = \"2026-01-02T00:00:00Z\", to = \"2026-01-01T00:00:00Z\" }] }", "empty"),
            ("bogus = 1", "unknown field"),
        ];
        for (text, expected) in cases {
            let err = SimConfig::from_toml_str(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
