//! Test doubles for the engine: an SEC side with synthetic companies, a scripted provider, a
//! small analysis, and a harness that wires them to a real SQLite file.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fintel_engine::*;
use fintel_llm::{
    ApiKey, CallError, GenerateRequest, Generation, ModelInfo, Provider, TokenCount, Usage,
};
use fintel_store::{BucketLimits, FilingRef, Ownership, Store, YearPlan};
use fintel_time::{ManualClock, SharedClock};
use jiff::civil::Date;
use serde_json::{json, Value};

/// Companies SIM0..SIMn, each with annual reports for 2015..=2024 except FY2019 for every
/// fifth company (a gap year).
pub struct FakeSec {
    pub companies: usize,
    pub transient_every: Option<u64>,
    pub calls: AtomicU64,
    /// Tokens of a (CIK, fiscal year)'s whole document, if not the default few: its text is
    /// that long (four characters a token) and fitting cuts it to the budget.
    pub doc_tokens: Option<Arc<dyn Fn(u64, i32) -> u64 + Send + Sync>>,
}

impl FakeSec {
    pub fn new(companies: usize) -> Self {
        FakeSec {
            companies,
            transient_every: None,
            calls: AtomicU64::new(0),
            doc_tokens: None,
        }
    }
}

#[async_trait]
impl FilingSource for FakeSec {
    async fn lookup_companies(
        &self,
        queries: &[CompanyQuery],
    ) -> Result<Vec<Option<CompanyMatch>>, SourceError> {
        Ok(queries
            .iter()
            .map(|q| match q {
                CompanyQuery::Ticker(t) => {
                    let n: usize = t.strip_prefix("SIM")?.parse().ok()?;
                    (n < self.companies).then(|| CompanyMatch {
                        cik: 1000 + n as u64,
                        ticker: Some(t.clone()),
                        name: format!("Sim Company {n}"),
                    })
                }
                CompanyQuery::Cik(c) => {
                    let n = c.checked_sub(1000)? as usize;
                    (n < self.companies).then(|| CompanyMatch {
                        cik: *c,
                        ticker: Some(format!("SIM{n}")),
                        name: format!("Sim Company {n}"),
                    })
                }
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
        let gap = (cik - 1000) % 5 == 4;
        Ok(Resolution {
            company_name: None,
            years: wanted
                .into_iter()
                .map(|y| {
                    if gap && y == 2019 || !(2015..=2024).contains(&y) {
                        YearPlan {
                            fiscal_year: y,
                            filing: None,
                            skip_reason: Some(format!("no annual report for FY{y}")),
                        }
                    } else {
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
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(every) = self.transient_every {
            if n.is_multiple_of(every) {
                return Err(SourceError::Transient("SEC answered 503".into()));
            }
        }
        let mut text = format!("Annual report of {cik} for {}", filing.accession);
        let mut cut = false;
        if let Some(size) = &self.doc_tokens {
            let year: i32 = filing
                .period
                .as_deref()
                .and_then(|p| p.get(..4)?.parse().ok())
                .unwrap_or_default();
            let whole = size(cik, year);
            cut = whole > budget_tokens;
            let tokens = whole.min(budget_tokens) as usize;
            while text.len() < tokens * 4 {
                text.push_str(" revenue grew");
            }
            text.truncate(tokens * 4);
        }
        Ok(PreparedDocument {
            tokens: (text.len() as u64 / 4).min(budget_tokens),
            text,
            url: filing.document_url.clone(),
            sha256: "ab".repeat(32),
            fitting: json!({"cut": cut}),
            fiscal_year_label: None,
            facts: Some(json!({"revenue": 1})),
        })
    }
}

/// A scripted outcome for the provider's n-th call on a given prompt.
pub type Script = Arc<dyn Fn(&str, u32) -> Option<CallError> + Send + Sync>;

/// A provider that answers valid JSON unless the script says otherwise, and counts calls per
/// prompt (a prompt identifies a task here).
pub struct FakeProvider {
    pub calls: Mutex<HashMap<String, u32>>,
    pub script: Option<Script>,
    pub delay: Option<Duration>,
    pub total: AtomicU64,
    /// The call with this number (1-based, over all prompts) never answers, like a call in
    /// flight when the process is killed.
    pub hang_at: AtomicU64,
    /// Every call hangs.
    pub hang_all: bool,
    /// For a packed request (`fyYYYY` properties): whether the n-th packed answer naming a
    /// fiscal year gives that year an invalid part (no `score`).
    pub bad_part: Option<Arc<dyn Fn(i32, u32) -> bool + Send + Sync>>,
    /// Packed answers per fiscal year so far.
    pub packed_answers: Mutex<HashMap<i32, u32>>,
    /// An outcome decided from the whole request and the call's number over all prompts
    /// (1-based), for answers that depend on more than the prompt (thinking, packing).
    pub by_request: Option<RequestScript>,
    /// Before answering, give way to the other tasks this many times, as a call in flight
    /// does: parallel tasks then interleave their calls without any real time passing.
    pub yields: u32,
}

/// A scripted outcome for a whole request and the call's number over all prompts.
pub type RequestScript = Arc<dyn Fn(&GenerateRequest, u64) -> Option<CallError> + Send + Sync>;

impl FakeProvider {
    pub fn new() -> Self {
        FakeProvider {
            calls: Mutex::new(HashMap::new()),
            script: None,
            delay: None,
            total: AtomicU64::new(0),
            hang_at: AtomicU64::new(0),
            hang_all: false,
            bad_part: None,
            packed_answers: Mutex::new(HashMap::new()),
            by_request: None,
            yields: 0,
        }
    }

    pub fn with_script(script: Script) -> Self {
        FakeProvider {
            script: Some(script),
            ..Self::new()
        }
    }

    pub fn calls_for(&self, needle: &str) -> u32 {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.contains(needle))
            .map(|(_, v)| *v)
            .sum()
    }
}

#[async_trait]
impl Provider for FakeProvider {
    fn name(&self) -> &str {
        "fake"
    }

    async fn generate(
        &self,
        _key: Option<&ApiKey>,
        request: &GenerateRequest,
    ) -> Result<Generation, CallError> {
        let prompt = request.turns[0].text.clone();
        let n = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(prompt.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let number = self.total.fetch_add(1, Ordering::SeqCst) + 1;
        if self.hang_all || number == self.hang_at.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        for _ in 0..self.yields {
            tokio::task::yield_now().await;
        }
        if let Some(script) = &self.script {
            if let Some(e) = script(&prompt, n) {
                return Err(e);
            }
        }
        if let Some(script) = &self.by_request {
            if let Some(e) = script(request, number) {
                return Err(e);
            }
        }
        let years: Vec<i32> = request
            .response_schema
            .get("propertyOrdering")
            .and_then(Value::as_array)
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.as_str()?.strip_prefix("fy")?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let text = if years.is_empty() {
            json!({"summary": format!("analysis of: {prompt}"), "score": 7})
        } else {
            // A packed request: one part per year, each the type's own answer.
            let mut parts = serde_json::Map::new();
            for y in years {
                let n = {
                    let mut answers = self.packed_answers.lock().unwrap();
                    let n = answers.entry(y).or_insert(0);
                    *n += 1;
                    *n
                };
                let bad = self.bad_part.as_ref().is_some_and(|f| f(y, n));
                let part = if bad {
                    json!({"summary": format!("FY{y} without a score")})
                } else {
                    json!({"summary": format!("FY{y} packed"), "score": 7})
                };
                parts.insert(format!("fy{y}"), part);
            }
            Value::Object(parts)
        };
        Ok(Generation {
            text: text.to_string(),
            usage: Usage {
                prompt_tokens: 100,
                output_tokens: 20,
                thinking_tokens: 0,
            },
            finish_reason: "STOP".into(),
            model_version: None,
            latency: Duration::from_millis(1),
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
        _: &GenerateRequest,
    ) -> Result<Option<TokenCount>, CallError> {
        Ok(None)
    }
}

/// A small analysis: one call per year, optionally with an aggregate step.
pub struct TestAnalysis {
    pub multi_year: bool,
}

impl Analysis for TestAnalysis {
    fn name(&self) -> &str {
        if self.multi_year {
            "test_multi"
        } else {
            "test"
        }
    }
    fn version(&self) -> &str {
        "v1"
    }
    fn canonical(&self) -> &str {
        "name = \"test\""
    }
    fn min_years(&self) -> u32 {
        if self.multi_year {
            3
        } else {
            1
        }
    }
    fn needs_model(&self) -> bool {
        true
    }
    fn is_multi_year(&self) -> bool {
        self.multi_year
    }
    fn year_request(&self, input: &YearInput<'_>) -> Option<StepRequest> {
        Some(StepRequest {
            system: None,
            prompt: format!(
                "{} FY{}: {}",
                input.ticker, input.fiscal_year, input.document
            ),
            schema: schema(),
        })
    }
    fn aggregate_request(&self, input: &AggregateInput<'_>) -> Option<StepRequest> {
        Some(StepRequest {
            system: None,
            prompt: format!("{} aggregate over {:?}", input.ticker, input.years),
            schema: schema(),
        })
    }
    fn year_overhead_tokens(&self) -> u64 {
        50
    }
}

pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {"summary": {"type": "string"}, "score": {"type": "integer"}},
        "required": ["summary", "score"]
    })
}

pub fn limits(rpd: u32, rpm: u32) -> BucketLimits {
    BucketLimits {
        requests_per_day: rpd,
        requests_per_minute: rpm,
        input_tokens_per_minute: 250_000,
    }
}

pub fn buckets(n: usize, rpd: u32, rpm: u32) -> Vec<Bucket> {
    (0..n)
        .map(|i| Bucket {
            name: format!("project-{i}"),
            keys: vec![ApiKey::new(
                &format!("GOOGLE_API_KEY_{i}"),
                format!("AIzaTestKey-{i:04}-abcdefghijklmnop"),
            )],
            limits: limits(rpd, rpm),
        })
        .collect()
}

/// A database, a clock and the doubles, for one test.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub clock: ManualClock,
    pub sec: Arc<FakeSec>,
    pub provider: Arc<FakeProvider>,
    pub analysis: Arc<TestAnalysis>,
    pub pool: Arc<KeyPool>,
}

pub fn start_time() -> jiff::Timestamp {
    // 00:05 Pacific on an ordinary day.
    "2026-06-15T07:05:00Z".parse().unwrap()
}

impl Harness {
    pub fn new(companies: usize, provider: FakeProvider, buckets: Vec<Bucket>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("fintel.db")).unwrap());
        let pool = Arc::new(KeyPool::new(buckets, Duration::from_secs(300)));
        pool.register(&store).unwrap();
        Harness {
            dir,
            store,
            clock: ManualClock::new(start_time()),
            sec: Arc::new(FakeSec::new(companies)),
            provider: Arc::new(provider),
            analysis: Arc::new(TestAnalysis { multi_year: false }),
            pool,
        }
    }

    pub fn shared_clock(&self) -> SharedClock {
        Arc::new(self.clock.clone())
    }

    pub async fn create(
        &self,
        tickers: &[&str],
        years: YearsSpec,
        settings: BatchSettings,
    ) -> String {
        let text = tickers.join("\n");
        let rows = input::parse_companies("test.txt", &text).unwrap();
        let created = create_batch(
            &self.store,
            self.sec.as_ref(),
            BatchRequest {
                name: None,
                input_file: None,
                rows,
                years,
                analysis: self.analysis.as_ref(),
                model: "gemini-2.5-flash".into(),
                priority: 0,
                settings,
            },
            fintel_time::Clock::now(&self.clock),
        )
        .await
        .unwrap();
        created.batch_id
    }

    pub fn owner(&self, name: &str) -> Ownership {
        self.store
            .register_owner(name, &self.dir.path().join("locks"), start_time())
            .unwrap()
    }

    pub fn engine(&self, owner: &Ownership, settings: EngineSettings) -> Arc<Engine> {
        self.engine_with(owner, settings, self.provider.clone())
    }

    pub fn engine_with(
        &self,
        owner: &Ownership,
        settings: EngineSettings,
        provider: Arc<FakeProvider>,
    ) -> Arc<Engine> {
        self.engine_watched(owner, settings, provider, Arc::new(Silent), Upkeep::off())
    }

    /// Runs `batch` to its end with `upkeep`, recording what the run reports.
    pub async fn run_recorded(&self, batch: &str, upkeep: Upkeep) -> (RunOutcome, Arc<Recorder>) {
        let owner = self.owner("recorded");
        let recorder = Arc::new(Recorder::default());
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let out = self
            .engine_watched(
                &owner,
                fast_settings(),
                self.provider.clone(),
                recorder.clone(),
                upkeep,
            )
            .run(batch, rx)
            .await
            .unwrap();
        (out, recorder)
    }

    /// An engine with its observer and upkeep chosen by the test.
    pub fn engine_watched(
        &self,
        owner: &Ownership,
        settings: EngineSettings,
        provider: Arc<FakeProvider>,
        observer: Arc<dyn Observer>,
        upkeep: Upkeep,
    ) -> Arc<Engine> {
        Arc::new(Engine {
            store: self.store.clone(),
            clock: self.shared_clock(),
            source: self.sec.clone(),
            provider,
            analysis: self.analysis.clone(),
            pool: self.pool.clone(),
            settings,
            observer,
            owner: owner.id.clone(),
            upkeep,
        })
    }

    pub fn result_keys(&self) -> Vec<String> {
        let conn = self.store.conn();
        let mut stmt = conn
            .prepare("SELECT result_key FROM results ORDER BY result_key")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<Vec<String>, _>>()
            .unwrap()
    }

    /// One integer column of every stored result, in result-key order.
    pub fn result_column(&self, column: &str) -> Vec<i64> {
        let conn = self.store.conn();
        let mut stmt = conn
            .prepare(&format!("SELECT {column} FROM results ORDER BY result_key"))
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<Vec<i64>, _>>()
            .unwrap()
    }

    pub fn task_field(&self, batch: &str, ticker: &str, year: i32, field: &str) -> i64 {
        self.store
            .conn()
            .query_row(
                &format!(
                    "SELECT t.{field} FROM tasks t JOIN companies c ON c.id = t.company_id \
                     WHERE t.batch_id = ?1 AND c.ticker = ?2 AND t.fiscal_year = ?3"
                ),
                rusqlite::params![batch, ticker, year],
                |r| r.get(0),
            )
            .unwrap()
    }

    pub fn task_state(&self, batch: &str, ticker: &str, year: i32) -> String {
        self.store
            .conn()
            .query_row(
                "SELECT t.state FROM tasks t JOIN companies c ON c.id = t.company_id \
                 WHERE t.batch_id = ?1 AND c.ticker = ?2 AND t.fiscal_year = ?3",
                rusqlite::params![batch, ticker, year],
                |r| r.get(0),
            )
            .unwrap()
    }
}

pub fn fast_settings() -> EngineSettings {
    EngineSettings {
        concurrency: 4,
        retry_base: Duration::from_secs(10),
        retry_cap: Duration::from_secs(60),
        grace: Duration::from_millis(200),
        ..EngineSettings::default()
    }
}

pub fn tickers(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("SIM{i}")).collect()
}

/// Records what a run reports, in order, as short lines a test can search.
#[derive(Default)]
pub struct Recorder {
    pub lines: Mutex<Vec<String>>,
}

impl Recorder {
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn position(&self, prefix: &str) -> Option<usize> {
        self.lines().iter().position(|l| l.starts_with(prefix))
    }
}

impl Observer for Recorder {
    fn progress(&self, p: &Progress) {
        self.lines.lock().unwrap().push(format!(
            "progress {} completed={}",
            p.state.as_str(),
            p.counts.completed
        ));
    }

    fn message(&self, _: Level, text: &str) {
        self.lines.lock().unwrap().push(format!("message {text}"));
    }

    fn event(&self, event: &Event) {
        let line = match event {
            Event::KeysExhausted { reset_at } => format!("event keys_exhausted {reset_at}"),
            Event::RepeatedFailures { count, source } => {
                format!("event repeated_failures {count} {source}")
            }
            Event::DiskLow(low) => format!("event disk_low {}", low.free_bytes),
            Event::DiskRecovered => "event disk_recovered".to_string(),
            Event::Maintained(report) => format!(
                "event maintained {}",
                report
                    .backup
                    .as_ref()
                    .map(|b| b.display().to_string())
                    .unwrap_or_default()
            ),
            Event::SharedProject { message } => format!("event shared_project {message}"),
            Event::SpentElsewhere { message } => format!("event spent_elsewhere {message}"),
        };
        self.lines.lock().unwrap().push(line);
    }
}

/// The borrowed names of a list of tickers, as `Harness::create` takes them.
pub fn names(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Polls until `done` holds; fails once the harness clock has moved `fake_limit` past the
/// start (an engine idling for ever moves it on every wait) or, as a safety net, after a
/// minute of real time.
pub async fn until_clock(
    h: &Harness,
    what: &str,
    fake_limit: Duration,
    mut done: impl FnMut() -> bool,
) {
    let start = std::time::Instant::now();
    let limit = start_time() + fintel_time::duration_to_span(fake_limit);
    while !done() {
        let now = fintel_time::Clock::now(&h.clock);
        assert!(now < limit, "{what}: not by {now} on the engine's clock");
        assert!(start.elapsed() < Duration::from_secs(60), "{what}: stuck");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
