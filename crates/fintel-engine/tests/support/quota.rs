//! A discrete-event quota simulation: a simulated provider that enforces a project's limits by
//! its own counters (not the engine's ledger), a gap-free SEC side, and a driver that runs one
//! or more engines on a virtual clock until a batch completes.
//!
//! The provider is the referee: it counts every request that arrives, per project, per Pacific
//! date and per sliding minute, refuses one that arrives over a limit the way Gemini does
//! (`DailyQuotaExhausted` / `RateLimited`) and records it as an over-limit request. Nothing here
//! trusts the engine's own accounting.
//!
//! Shared by the quota tests and the release benchmark (`examples/quota_sim.rs`), so it only
//! depends on the engine's public API.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fintel_engine::*;
use fintel_llm::{
    ApiKey, CallError, GenerateRequest, Generation, ModelInfo, Provider, TokenCount, Usage,
};
use fintel_store::{BucketLimits, FilingRef, Store, TaskCounts, YearPlan};
use fintel_time::{
    duration_to_span, next_reset, pacific_date, pacific_day_start, Clock, ManualClock,
};
use jiff::civil::Date;
use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::watch;

/// The reset buffer every simulated pool uses (SPEC.md section 3 default).
pub const RESET_BUFFER: Duration = Duration::from_secs(300);

/// One project's counters, kept by the provider.
#[derive(Debug, Default)]
struct ProjectCounters {
    /// The Pacific date `used_today` counts.
    day: Option<Date>,
    used_today: u32,
    /// Accepted requests of the sliding minute: arrival instant (ms, as Gemini and the ledger
    /// count) and input tokens.
    recent: VecDeque<(i64, u64)>,
}

/// What the provider saw over a whole run.
#[derive(Debug, Clone, Default)]
pub struct ProviderStats {
    /// Every request that arrived, refused ones included.
    pub arrived: u64,
    /// Requests the provider accepted (they count against the quota), faulted ones included.
    pub accepted: u64,
    /// Accepted requests answered with an injected transient fault.
    pub faults: u64,
    /// Requests that arrived over a daily limit.
    pub over_daily: u64,
    /// Requests that arrived over a per-minute request limit.
    pub over_minute: u64,
    /// Requests that arrived over a per-minute input-token limit.
    pub over_tokens: u64,
    /// The most requests any project accepted on one Pacific date.
    pub max_per_project_day: u32,
    /// The most requests any project accepted within one sliding minute.
    pub max_per_project_minute: u32,
    /// When the last request arrived.
    pub last_arrival: Option<Timestamp>,
    /// Requests answered 503 during an outage (not counted against any quota).
    pub outage_refusals: u64,
    /// Requests refused for the day because the provider had not reset yet (a late reset).
    pub late_reset_refusals: u64,
    /// Accepted requests per provider quota day (the day as the provider counts it).
    pub accepted_per_day: BTreeMap<Date, u64>,
    /// Prompts answered successfully more than once (a task's request repeated after its
    /// answer, e.g. in flight at a kill).
    pub repeated_answers: u64,
}

impl ProviderStats {
    pub fn over_limit(&self) -> u64 {
        self.over_daily + self.over_minute + self.over_tokens
    }
}

struct ProviderState {
    projects: Vec<ProjectCounters>,
    rng: StdRng,
    stats: ProviderStats,
    answered: HashSet<String>,
}

/// The provider's bad weather: outages, late resets, and kills of the engines.
#[derive(Debug, Clone, Default)]
pub struct Weather {
    /// Outages as (start after the simulation's start, length): every request is answered 503
    /// and counted against nothing.
    pub outages: Vec<(Duration, Duration)>,
    /// How late the provider resets on each quota day after the start (cycling); empty: on
    /// time. Until then it refuses per-day a project that spent the previous day.
    pub late_resets: Vec<Duration>,
    /// Every engine is killed (as by kill -9: in-flight calls lost, leases left to a dead
    /// owner) each time the provider has accepted this many more requests, and restarted.
    pub kill_every: Option<u64>,
}

/// A provider that enforces per-project limits by its own counters.
pub struct QuotaProvider {
    clock: ManualClock,
    /// Key secret to project index.
    projects: HashMap<String, usize>,
    limits: Vec<BucketLimits>,
    /// The project number each project's refusals name as consumer (`None`: the bodies name
    /// no consumer, as today's free-tier 429s do not).
    consumers: Option<Vec<String>>,
    fault_rate: f64,
    state: Mutex<ProviderState>,
    weather: Weather,
    start: Timestamp,
    /// Told when the engines should be killed.
    pub kill: Arc<tokio::sync::Notify>,
}

impl QuotaProvider {
    /// A provider whose projects are `buckets` (one project each), answering `fault_rate` of
    /// the accepted requests with a transient 503 drawn from a generator seeded with `seed`.
    pub fn new(clock: ManualClock, buckets: &[Bucket], fault_rate: f64, seed: u64) -> Self {
        let mut projects = HashMap::new();
        for (i, b) in buckets.iter().enumerate() {
            for k in &b.keys {
                projects.insert(k.secret().to_string(), i);
            }
        }
        QuotaProvider {
            clock,
            projects,
            limits: buckets.iter().map(|b| b.limits).collect(),
            consumers: None,
            fault_rate,
            state: Mutex::new(ProviderState {
                projects: buckets.iter().map(|_| ProjectCounters::default()).collect(),
                rng: StdRng::seed_from_u64(seed),
                stats: ProviderStats::default(),
                answered: HashSet::new(),
            }),
            weather: Weather::default(),
            start: Timestamp::UNIX_EPOCH,
            kill: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// The same provider in `weather`, its schedule counted from `start`.
    pub fn with_weather(mut self, weather: Weather, start: Timestamp) -> Self {
        self.weather = weather;
        self.start = start;
        self
    }

    fn in_outage(&self, now: Timestamp) -> bool {
        self.weather.outages.iter().any(|(from, length)| {
            let begin = self.start + duration_to_span(*from);
            now >= begin && now < begin + duration_to_span(*length)
        })
    }

    /// The quota day as the provider counts it: the Pacific date, except that before a late
    /// reset the previous date still runs.
    fn provider_day(&self, now: Timestamp) -> (Date, bool) {
        let today = pacific_date(now);
        if self.weather.late_resets.is_empty() {
            return (today, false);
        }
        let index = (today - pacific_date(self.start)).get_days().max(0) as usize;
        let late = self.weather.late_resets[index % self.weather.late_resets.len()];
        if now < pacific_day_start(today) + duration_to_span(late) {
            (today.yesterday().unwrap_or(today), true)
        } else {
            (today, false)
        }
    }

    /// Notes a successful answer to `prompt`.
    fn answered(&self, prompt: &str) {
        let mut state = self.lock();
        if !state.answered.insert(prompt.to_string()) {
            state.stats.repeated_answers += 1;
        }
    }

    /// A provider whose projects are not the engine's buckets: the key of `buckets[i]` belongs
    /// to project `key_projects[i]`, each project with the limits of its first bucket. With
    /// `name_consumer`, refusals name the project (`projects/4242000N`).
    pub fn with_projects(
        clock: ManualClock,
        buckets: &[Bucket],
        key_projects: &[usize],
        name_consumer: bool,
        seed: u64,
    ) -> Self {
        let count = key_projects.iter().max().map_or(0, |m| m + 1);
        let mut projects = HashMap::new();
        let mut limits = vec![None; count];
        for (b, &p) in buckets.iter().zip(key_projects) {
            for k in &b.keys {
                projects.insert(k.secret().to_string(), p);
            }
            limits[p].get_or_insert(b.limits);
        }
        let limits: Vec<BucketLimits> = limits
            .into_iter()
            .map(|l| l.expect("every project has a key"))
            .collect();
        QuotaProvider {
            clock,
            projects,
            consumers: name_consumer.then(|| (0..count).map(|p| format!("4242000{p}")).collect()),
            fault_rate: 0.0,
            state: Mutex::new(ProviderState {
                projects: limits.iter().map(|_| ProjectCounters::default()).collect(),
                rng: StdRng::seed_from_u64(seed),
                stats: ProviderStats::default(),
                answered: HashSet::new(),
            }),
            limits,
            weather: Weather::default(),
            start: Timestamp::UNIX_EPOCH,
            kill: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// The consumer a refusal on `project` names, if bodies name one.
    fn consumer(&self, project: usize) -> Option<String> {
        self.consumers.as_ref().map(|c| c[project].clone())
    }

    pub fn stats(&self) -> ProviderStats {
        self.lock().stats.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProviderState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits or refuses a request of `tokens` on `project` arriving now.
    fn admit(&self, project: usize, tokens: u64) -> Result<(), CallError> {
        let now = self.clock.now();
        let now_ms = now.as_millisecond();
        let (today, before_late_reset) = self.provider_day(now);
        let limits = self.limits[project];
        let mut guard = self.lock();
        let state = &mut *guard;
        state.stats.arrived += 1;
        state.stats.last_arrival = Some(now);
        if self.in_outage(now) {
            state.stats.outage_refusals += 1;
            return Err(CallError::Transient {
                message: "simulated outage: 503 UNAVAILABLE, the model is overloaded".into(),
                reached_server: true,
            });
        }
        let counters = &mut state.projects[project];
        if counters.day != Some(today) {
            counters.day = Some(today);
            counters.used_today = 0;
        }
        while counters
            .recent
            .front()
            .is_some_and(|&(at, _)| at <= now_ms - 60_000)
        {
            counters.recent.pop_front();
        }
        if counters.used_today >= limits.requests_per_day {
            if before_late_reset {
                state.stats.late_reset_refusals += 1;
            } else {
                state.stats.over_daily += 1;
            }
            return Err(CallError::DailyQuotaExhausted {
                message: format!(
                    "simulated 429: quotaId GenerateRequestsPerDayPerProjectPerModel-FreeTier, \
                     project {project} used {} of {} on {today}",
                    counters.used_today, limits.requests_per_day
                ),
                project: self.consumer(project),
            });
        }
        if counters.recent.len() as u32 >= limits.requests_per_minute {
            state.stats.over_minute += 1;
            return Err(CallError::RateLimited {
                retry_after: Some(Duration::from_secs(30)),
                message: format!(
                    "simulated 429: quotaId GenerateRequestsPerMinutePerProjectPerModel-FreeTier, \
                     project {project}"
                ),
                project: self.consumer(project),
            });
        }
        let window_tokens: u64 = counters.recent.iter().map(|&(_, t)| t).sum();
        if window_tokens + tokens > limits.input_tokens_per_minute {
            state.stats.over_tokens += 1;
            return Err(CallError::InputTokensPerMinute {
                limit_tokens: Some(limits.input_tokens_per_minute),
                retry_after: Some(Duration::from_secs(30)),
                message: format!("simulated 429: input tokens per minute, project {project}"),
                project: self.consumer(project),
            });
        }
        counters.used_today += 1;
        counters.recent.push_back((now_ms, tokens));
        let (day, minute) = (counters.used_today, counters.recent.len() as u32);
        state.stats.accepted += 1;
        *state.stats.accepted_per_day.entry(today).or_insert(0) += 1;
        if let Some(every) = self.weather.kill_every {
            if state.stats.accepted.is_multiple_of(every) {
                self.kill.notify_one();
            }
        }
        state.stats.max_per_project_day = state.stats.max_per_project_day.max(day);
        state.stats.max_per_project_minute = state.stats.max_per_project_minute.max(minute);
        if self.fault_rate > 0.0 && state.rng.random_bool(self.fault_rate) {
            state.stats.faults += 1;
            return Err(CallError::Transient {
                message: "simulated 503 UNAVAILABLE".into(),
                reached_server: true,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for QuotaProvider {
    fn name(&self) -> &str {
        "quota-sim"
    }

    async fn generate(
        &self,
        key: Option<&ApiKey>,
        request: &GenerateRequest,
    ) -> Result<Generation, CallError> {
        let Some(project) = key.and_then(|k| self.projects.get(k.secret())).copied() else {
            return Err(CallError::KeyUnusable {
                reason: "simulated 400 API_KEY_INVALID: unknown key".into(),
                project: None,
            });
        };
        let prompt = request.turns.first().map(|t| t.text.as_str()).unwrap_or("");
        let tokens = request_tokens(prompt);
        self.admit(project, tokens)?;
        if self.weather.kill_every.is_some() {
            // The answer takes a moment, so a kill can catch the call in flight.
            tokio::task::yield_now().await;
        }
        self.answered(prompt);
        Ok(Generation {
            text: answer_for(&request.response_schema).to_string(),
            usage: Usage {
                prompt_tokens: tokens,
                output_tokens: 20,
                thinking_tokens: 0,
            },
            finish_reason: "STOP".into(),
            model_version: None,
            latency: Duration::ZERO,
        })
    }

    async fn check_model(&self, _: Option<&ApiKey>, model: &str) -> Result<ModelInfo, CallError> {
        Ok(ModelInfo {
            name: model.into(),
            input_token_limit: Some(1_000_000),
            output_token_limit: None,
        })
    }

    async fn count_tokens(
        &self,
        _: Option<&ApiKey>,
        request: &GenerateRequest,
    ) -> Result<Option<TokenCount>, CallError> {
        // Free, and not a generation request: no quota, as countTokens at Gemini.
        let prompt = request.turns.first().map(|t| t.text.as_str()).unwrap_or("");
        Ok(Some(TokenCount {
            total_tokens: request_tokens(prompt)
                + (request.response_schema.to_string().len() as u64).div_ceil(4),
        }))
    }
}

/// A document's size stands in its text as `[[doc-tokens N]]` (the simulation does not build
/// 100k-token strings): a request's tokens are those of its documents plus its own text.
fn request_tokens(prompt: &str) -> u64 {
    let mut documents = 0;
    let mut rest = prompt;
    while let Some(at) = rest.find("[[doc-tokens ") {
        let after = &rest[at + "[[doc-tokens ".len()..];
        let end = after.find("]]").unwrap_or(after.len());
        documents += after[..end].trim().parse::<u64>().unwrap_or(0);
        rest = &after[end..];
    }
    documents + (prompt.len() as u64).div_ceil(4)
}

/// A valid answer: per fiscal year for a packed schema (`fyYYYY` properties), else one.
fn answer_for(schema: &Value) -> Value {
    let one = json!({"summary": "simulated analysis", "score": 7});
    match schema.get("propertyOrdering").and_then(Value::as_array) {
        Some(years) => Value::Object(
            years
                .iter()
                .filter_map(Value::as_str)
                .map(|y| (y.to_string(), one.clone()))
                .collect(),
        ),
        None => one,
    }
}

/// Tokens of text of 20 real 10-Ks (the measurement; the simulator's `sizes` module
/// holds the same numbers, which this crate cannot depend on).
const MEASURED_10K_TOKENS: [u64; 20] = [
    24_700, 31_000, 43_000, 47_000, 50_000, 51_000, 54_000, 73_000, 84_000, 88_000, 91_000, 92_000,
    100_000, 104_000, 113_000, 116_000, 117_000, 129_000, 133_000, 152_000,
];

/// The whole size of a (company, year)'s document, drawn from the measured distribution by a
/// hash of both (so every run and every fitting sees the same size).
pub fn measured_document_tokens(seed: u64, cik: u64, year: i32) -> u64 {
    let mut x = seed
        ^ cik.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (year as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
    let last = (MEASURED_10K_TOKENS.len() - 1) as f64;
    let position = unit * last;
    let i = (position.floor() as usize).min(MEASURED_10K_TOKENS.len() - 2);
    let frac = position - i as f64;
    let (lo, hi) = (
        MEASURED_10K_TOKENS[i] as f64,
        MEASURED_10K_TOKENS[i + 1] as f64,
    );
    (lo + (hi - lo) * frac).round() as u64
}

/// One engine's door to the shared simulated provider: counts the requests that engine sent.
pub struct EngineTap {
    inner: Arc<QuotaProvider>,
    sent: Arc<std::sync::atomic::AtomicU64>,
}

#[async_trait]
impl Provider for EngineTap {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn generate(
        &self,
        key: Option<&ApiKey>,
        request: &GenerateRequest,
    ) -> Result<Generation, CallError> {
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.generate(key, request).await
    }

    async fn check_model(&self, key: Option<&ApiKey>, model: &str) -> Result<ModelInfo, CallError> {
        self.inner.check_model(key, model).await
    }

    async fn count_tokens(
        &self,
        key: Option<&ApiKey>,
        request: &GenerateRequest,
    ) -> Result<Option<TokenCount>, CallError> {
        self.inner.count_tokens(key, request).await
    }
}

/// Companies SIM0..SIMn with an annual report for every year 2000..=2030: no gap years, so
/// every requested year is one model task.
pub struct GapFreeSec {
    pub companies: usize,
    /// Documents of the measured sizes (seeded), fitted to the budget; else a few tokens.
    pub measured_sizes: Option<u64>,
}

#[async_trait]
impl FilingSource for GapFreeSec {
    async fn lookup_companies(
        &self,
        queries: &[CompanyQuery],
    ) -> Result<Vec<Option<CompanyMatch>>, SourceError> {
        Ok(queries
            .iter()
            .map(|q| {
                let n = match q {
                    CompanyQuery::Ticker(t) => t.strip_prefix("SIM")?.parse::<usize>().ok()?,
                    CompanyQuery::Cik(c) => c.checked_sub(1000)? as usize,
                };
                (n < self.companies).then(|| CompanyMatch {
                    cik: 1000 + n as u64,
                    ticker: Some(format!("SIM{n}")),
                    name: format!("Sim Company {n}"),
                })
            })
            .collect())
    }

    async fn resolve_years(
        &self,
        cik: u64,
        years: &YearsSpec,
        _as_of: Date,
        _amendments: bool,
    ) -> Result<Resolution, SourceError> {
        let wanted: Vec<i32> = match years {
            YearsSpec::Latest(n) => (2025 - *n as i32..2025).collect(),
            YearsSpec::Explicit(v) => v.clone(),
        };
        Ok(Resolution {
            company_name: None,
            years: wanted
                .into_iter()
                .map(|y| {
                    if (2000..=2030).contains(&y) {
                        YearPlan {
                            fiscal_year: y,
                            filing: Some(FilingRef {
                                accession: format!("0000{cik:06}-{:02}-000001", y % 100),
                                form: "10-K".into(),
                                period: Some(format!("{y}-12-31")),
                                filed: Some(format!("{}-02-15", y + 1)),
                                document_url: format!("https://sec.test/{cik}/{y}.htm"),
                                transition: false,
                            }),
                            skip_reason: None,
                        }
                    } else {
                        YearPlan {
                            fiscal_year: y,
                            filing: None,
                            skip_reason: Some(format!("no annual report for FY{y}")),
                        }
                    }
                })
                .collect(),
        })
    }

    async fn prepare_document(
        &self,
        cik: u64,
        filing: &FilingRef,
        budget_tokens: u64,
    ) -> Result<PreparedDocument, SourceError> {
        let mut text = format!("Annual report of {cik} for {}", filing.accession);
        let mut cut = false;
        let tokens = match self.measured_sizes {
            Some(seed) => {
                let year: i32 = filing
                    .period
                    .as_deref()
                    .and_then(|p| p.get(..4)?.parse().ok())
                    .unwrap_or_default();
                let whole = measured_document_tokens(seed, cik, year);
                cut = whole > budget_tokens;
                let fitted = whole.min(budget_tokens);
                text.push_str(&format!(" [[doc-tokens {fitted}]]"));
                fitted
            }
            None => (text.len() as u64).div_ceil(4).min(budget_tokens),
        };
        Ok(PreparedDocument {
            tokens,
            text,
            url: filing.document_url.clone(),
            sha256: "ab".repeat(32),
            fitting: json!({"cut": cut}),
            fiscal_year_label: None,
            facts: None,
        })
    }
}

/// One model call per company and year.
pub struct SimAnalysis;

impl Analysis for SimAnalysis {
    fn name(&self) -> &str {
        "quota_sim"
    }
    fn version(&self) -> &str {
        "v1"
    }
    fn canonical(&self) -> &str {
        "name = \"quota_sim\""
    }
    fn min_years(&self) -> u32 {
        1
    }
    fn needs_model(&self) -> bool {
        true
    }
    fn is_multi_year(&self) -> bool {
        false
    }
    fn year_request(&self, input: &YearInput<'_>) -> Option<StepRequest> {
        Some(StepRequest {
            system: None,
            prompt: format!(
                "{} FY{}: {}",
                input.ticker, input.fiscal_year, input.document
            ),
            schema: sim_schema(),
        })
    }
    fn aggregate_request(&self, _: &AggregateInput<'_>) -> Option<StepRequest> {
        None
    }
    fn year_overhead_tokens(&self) -> u64 {
        50
    }
}

fn sim_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"summary": {"type": "string"}, "score": {"type": "integer"}},
        "required": ["summary", "score"]
    })
}

/// `n` buckets of one key each with these limits.
pub fn sim_buckets(n: usize, requests_per_day: u32, requests_per_minute: u32) -> Vec<Bucket> {
    (0..n)
        .map(|i| Bucket {
            name: format!("project-{i}"),
            keys: vec![ApiKey::new(
                &format!("GOOGLE_API_KEY_{}", i + 1),
                format!("AIzaSimKey-{i:04}-abcdefghijklmnopqrstuv"),
            )],
            limits: BucketLimits {
                requests_per_day,
                requests_per_minute,
                input_tokens_per_minute: 250_000,
            },
        })
        .collect()
}

/// 00:05 Pacific on an ordinary (non-DST) day.
pub fn sim_start() -> Timestamp {
    "2026-06-15T07:05:00Z"
        .parse()
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub companies: usize,
    pub years: Vec<i32>,
    pub buckets: usize,
    pub requests_per_day: u32,
    pub requests_per_minute: u32,
    /// Share of accepted requests answered with a transient 503.
    pub fault_rate: f64,
    pub seed: u64,
    /// Engines (as separate processes would: each its own database connection and key pool)
    /// sharing the database, the buckets and the provider.
    pub engines: usize,
    pub concurrency: usize,
    pub max_retries: u32,
    pub start: Timestamp,
    pub weather: Weather,
    /// The provider's project of each bucket's key (`None`: one project per bucket, as the
    /// engine's buckets assume).
    pub key_projects: Option<Vec<usize>>,
    /// Whether the provider's refusals name the project (`ErrorInfo` consumer).
    pub name_consumer: bool,
    /// Request packing of the batch.
    pub pack: fintel_engine::pack::Pack,
    /// Documents drawn from the measured size distribution (25k-150k tokens) instead of a
    /// few tokens each.
    pub measured_sizes: bool,
}

impl SimConfig {
    /// The scenario: 1,000 companies x 7 years, 25 buckets of 20/day and 5/min,
    /// started at 00:05 Pacific.
    pub fn full() -> Self {
        SimConfig {
            companies: 1000,
            years: (2018..=2024).collect(),
            buckets: 25,
            requests_per_day: 20,
            requests_per_minute: 5,
            fault_rate: 0.0,
            seed: 7,
            engines: 1,
            concurrency: 25,
            max_retries: 5,
            start: sim_start(),
            weather: Weather::default(),
            key_projects: None,
            name_consumer: false,
            pack: fintel_engine::pack::Pack::Off,
            measured_sizes: false,
        }
    }

    /// The weather soak of the issue: 200 companies x 7 years on 10 buckets of 20/day, with
    /// a 2% baseline of 503s, outages, late resets and kill -9 with restarts, over 14 days.
    pub fn weather_soak() -> Self {
        SimConfig {
            companies: 200,
            buckets: 10,
            requests_per_day: 20,
            fault_rate: 0.02,
            seed: 16,
            concurrency: 10,
            max_retries: 2,
            weather: Weather {
                // Outages where they hurt most, when a quota day begins: ten minutes at the
                // start, two hours from the second reset, six hours from the fifth.
                outages: vec![
                    (Duration::ZERO, Duration::from_secs(600)),
                    (
                        Duration::from_secs(86_400 - 300),
                        Duration::from_secs(2 * 3600),
                    ),
                    (
                        Duration::from_secs(4 * 86_400 - 300),
                        Duration::from_secs(6 * 3600),
                    ),
                ],
                late_resets: [0, 20, 45, 0, 90, 5, 0, 130, 0, 10, 60, 0, 0, 30]
                    .iter()
                    .map(|m| Duration::from_secs(m * 60))
                    .collect(),
                kill_every: Some(97),
            },
            ..SimConfig::full()
        }
    }

    /// Requests all buckets together may send per quota day.
    pub fn daily_capacity(&self) -> u64 {
        self.buckets as u64 * u64::from(self.requests_per_day)
    }

    /// Model tasks of the batch (the source has no gap years).
    pub fn model_tasks(&self) -> u64 {
        (self.companies * self.years.len()) as u64
    }

    /// Requests the model tasks take with nothing retried: one per task, or with `--pack N`
    /// one per N consecutive years of a company; `None` for `auto`, which depends on which
    /// documents fit whole.
    pub fn model_requests(&self) -> Option<u64> {
        let years = self.years.len() as u64;
        match self.pack {
            fintel_engine::pack::Pack::Off => Some(self.model_tasks()),
            fintel_engine::pack::Pack::Years(n) => {
                Some(self.companies as u64 * years.div_ceil(u64::from(n.max(1))))
            }
            fintel_engine::pack::Pack::Auto => None,
        }
    }
}

/// What a simulation showed.
#[derive(Debug, Clone)]
pub struct SimReport {
    pub config: SimConfig,
    pub outcomes: Vec<RunOutcome>,
    /// Requests each engine sent, in engine order.
    pub sent_by_engine: Vec<u64>,
    pub counts: TaskCounts,
    pub provider: ProviderStats,
    /// When the last engine returned (virtual time).
    pub finished_at: Timestamp,
    /// Times every engine was killed and restarted.
    pub kills: u64,
    /// The first `resets.len()` quota resets after the start (Pacific midnight + buffer).
    pub resets: Vec<Timestamp>,
    pub wall: Duration,
    /// Every message and event the engines reported (their `Debug` form for events).
    pub said: Arc<Recorder>,
    /// The merges the database holds at the end.
    pub merges: Vec<fintel_store::ProjectMerge>,
    /// The buckets the first engine used at the end.
    pub final_buckets: Vec<Bucket>,
    /// Results that came from packed calls.
    pub packed_results: u64,
    /// Bucket standings the engines' key pools read from the ledger: the cost of their
    /// decisions, which grows with every wake that asks the pool again.
    pub standing_reads: u64,
}

/// An observer that keeps what it is told.
#[derive(Debug, Default)]
pub struct Recorder {
    pub messages: Mutex<Vec<String>>,
    pub events: Mutex<Vec<String>>,
}

impl Recorder {
    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }
    pub fn events(&self) -> Vec<String> {
        self.events.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Observer for Recorder {
    fn progress(&self, _: &Progress) {}
    fn message(&self, _: Level, text: &str) {
        if let Ok(mut m) = self.messages.lock() {
            m.push(text.to_string());
        }
    }
    fn event(&self, event: &Event) {
        if let Ok(mut e) = self.events.lock() {
            e.push(format!("{event:?}"));
        }
    }
}

impl SimReport {
    /// Quota days the provider's accepted requests need at full use of every bucket.
    pub fn days_needed(&self) -> u64 {
        self.provider
            .accepted
            .div_ceil(self.config.daily_capacity())
    }

    /// The arithmetic limit for the requests actually sent: the run must end before this
    /// reset (the `days_needed()`-th after the start).
    pub fn limit(&self) -> Timestamp {
        let n = self.days_needed().max(1) as usize;
        self.resets[n - 1]
    }

    /// The arithmetic limit for the model tasks alone (nothing retried).
    pub fn fault_free_limit(&self) -> Timestamp {
        let n = self
            .model_requests()
            .div_ceil(self.config.daily_capacity())
            .max(1) as usize;
        self.resets[n - 1]
    }

    /// The requests the model tasks need with nothing retried (for `--pack auto`, the
    /// requests accepted: which years pair is decided by their sizes).
    pub fn model_requests(&self) -> u64 {
        self.config
            .model_requests()
            .unwrap_or(self.provider.accepted)
    }

    /// Requests beyond those the model tasks need: retries of faulted requests.
    pub fn extra_requests(&self) -> u64 {
        self.provider.accepted.saturating_sub(self.model_requests())
    }

    /// Virtual days from the start to the end of the run.
    pub fn simulated_days(&self) -> f64 {
        self.finished_at
            .duration_since(self.config.start)
            .as_secs_f64()
            / 86_400.0
    }

    /// The quota day (1 = the first after the start) in which the run ended.
    pub fn finish_quota_day(&self) -> u64 {
        self.resets
            .iter()
            .filter(|r| **r <= self.finished_at)
            .count() as u64
            + 1
    }

    /// The arithmetic minimum: ceil(requests / daily capacity) for the requests the model
    /// tasks need.
    pub fn minimum_quota_days(&self) -> u64 {
        self.model_requests()
            .div_ceil(self.config.daily_capacity())
            .max(1)
    }

    /// One line per provider quota day: accepted requests against capacity.
    pub fn days_table(&self) -> String {
        let capacity = self.config.daily_capacity();
        self.provider
            .accepted_per_day
            .iter()
            .map(|(day, n)| {
                format!(
                    "{day}: {n} of {capacity} ({:.1}%)",
                    *n as f64 * 100.0 / capacity as f64
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Finish time over the arithmetic limit, both from the start (1.0 = at the limit).
    pub fn ratio_to_limit(&self) -> f64 {
        let start = self.config.start;
        self.finished_at.duration_since(start).as_secs_f64()
            / self.limit().duration_since(start).as_secs_f64()
    }
}

/// Runs the batch of `config` to its end and reports what the provider saw.
pub async fn run_simulation(config: &SimConfig) -> SimReport {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db: PathBuf = dir.path().join("fintel.db");
    let clock = ManualClock::new(config.start);
    let buckets = sim_buckets(
        config.buckets,
        config.requests_per_day,
        config.requests_per_minute,
    );
    let provider = match &config.key_projects {
        None => QuotaProvider::new(clock.clone(), &buckets, config.fault_rate, config.seed),
        Some(projects) => QuotaProvider::with_projects(
            clock.clone(),
            &buckets,
            projects,
            config.name_consumer,
            config.seed,
        ),
    };
    let provider = Arc::new(provider.with_weather(config.weather.clone(), config.start));
    let said = Arc::new(Recorder::default());
    let source = Arc::new(GapFreeSec {
        companies: config.companies,
        measured_sizes: config.measured_sizes.then_some(config.seed),
    });
    let analysis = Arc::new(SimAnalysis);
    let first_store = Arc::new(Store::open(&db).expect("open the database"));
    let tickers: Vec<String> = (0..config.companies).map(|i| format!("SIM{i}")).collect();
    let rows = input::parse_companies("companies.txt", &tickers.join("\n")).expect("tickers");
    let created = create_batch(
        &first_store,
        source.as_ref(),
        BatchRequest {
            name: Some("quota simulation".into()),
            input_file: None,
            rows,
            years: YearsSpec::Explicit(config.years.clone()),
            analysis: analysis.as_ref(),
            model: "gemini-2.5-flash".into(),
            priority: 0,
            settings: BatchSettings {
                max_retries: config.max_retries,
                pack: config.pack,
                ..BatchSettings::default()
            },
        },
        config.start,
    )
    .await
    .expect("create the batch");
    let batch_id = created.batch_id;

    let settings = EngineSettings {
        concurrency: config.concurrency,
        retry_base: Duration::from_secs(10),
        retry_cap: Duration::from_secs(60),
        grace: Duration::from_millis(200),
        recheck: Duration::from_secs(6 * 3600),
        ..EngineSettings::default()
    };
    let (_stop, shutdown) = watch::channel(false);
    let wall = Instant::now();
    let mut runs = tokio::task::JoinSet::new();
    let taps: Vec<Arc<std::sync::atomic::AtomicU64>> = (0..config.engines.max(1))
        .map(|_| Arc::new(std::sync::atomic::AtomicU64::new(0)))
        .collect();
    let pools: std::sync::Mutex<Vec<Arc<KeyPool>>> = std::sync::Mutex::new(Vec::new());
    let spawn_engines = |runs: &mut tokio::task::JoinSet<RunOutcome>, generation: u64| {
        for (i, sent) in taps.iter().enumerate() {
            // Every engine but the very first opens its own connection, as another process
            // (or a restarted one) would.
            let store = if i == 0 && generation == 0 {
                first_store.clone()
            } else {
                Arc::new(Store::open(&db).expect("open the database again"))
            };
            let pool = Arc::new(KeyPool::new(buckets.clone(), RESET_BUFFER));
            pool.register(&store).expect("register keys");
            pools.lock().expect("pools").push(pool.clone());
            let now = clock.now();
            let owner = store
                .register_owner(
                    &format!("engine-{generation}-{i}"),
                    &dir.path().join("locks"),
                    now,
                )
                .expect("register the owner");
            let engine = Arc::new(Engine {
                store,
                clock: Arc::new(clock.clone()),
                source: source.clone(),
                provider: Arc::new(EngineTap {
                    inner: provider.clone(),
                    sent: sent.clone(),
                }),
                analysis: analysis.clone(),
                pool,
                settings: settings.clone(),
                observer: said.clone(),
                owner: owner.id.clone(),
                upkeep: Upkeep::off(),
            });
            let batch = batch_id.clone();
            let shutdown = shutdown.clone();
            runs.spawn(async move {
                // The ownership (its lock file) must live as long as the run; a kill drops it
                // with the task, as the OS releases a killed process's lock.
                let _owner = owner;
                engine.run(&batch, shutdown).await.expect("engine run")
            });
        }
    };
    spawn_engines(&mut runs, 0);
    let mut outcomes = Vec::new();
    let mut kills = 0;
    loop {
        tokio::select! {
            joined = runs.join_next() => match joined {
                Some(joined) => outcomes.push(joined.expect("engine task")),
                None => break,
            },
            _ = provider.kill.notified(), if config.weather.kill_every.is_some() => {
                if runs.is_empty() {
                    break;
                }
                // kill -9: every engine stops at its next await, whatever it was doing.
                runs.abort_all();
                while runs.join_next().await.is_some() {}
                outcomes.clear();
                kills += 1;
                spawn_engines(&mut runs, kills);
            }
        }
    }
    let standing_reads = pools
        .lock()
        .expect("pools")
        .iter()
        .map(|p| p.standing_reads())
        .sum();
    let sent_by_engine = taps
        .iter()
        .map(|t| t.load(std::sync::atomic::Ordering::Relaxed))
        .collect();
    let wall = wall.elapsed();
    let finished_at = clock.now();
    let counts = first_store.task_counts(&batch_id).expect("task counts");
    let packed_results: i64 = first_store
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM results WHERE packed_with IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .expect("packed results");
    let mut resets = Vec::new();
    let mut at = config.start;
    for _ in 0..64 {
        at = next_reset(at, RESET_BUFFER);
        resets.push(at);
    }
    SimReport {
        config: config.clone(),
        outcomes,
        sent_by_engine,
        counts,
        provider: provider.stats(),
        finished_at,
        kills,
        resets,
        wall,
        said,
        merges: first_store.project_merges().expect("merges"),
        final_buckets: {
            // As a process started now would see them.
            let pool = KeyPool::new(buckets.clone(), RESET_BUFFER);
            pool.refresh(&first_store).expect("plan the buckets");
            pool.buckets()
        },
        packed_results: packed_results as u64,
        standing_reads,
    }
}
