//! The harness the end-to-end tests share: a simulator on 127.0.0.1, a data directory, and the
//! built binary configured through the environment as a user would configure it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fintel_sim::{ProjectConfig, SimConfig, SimHandle};

pub mod procs;

pub const BIN: &str = env!("CARGO_BIN_EXE_fintel");

/// The harness's simulator: 40 small companies and one key with limits no test reaches
/// unless it lowers them.
pub fn sim_config(latency_ms: u64) -> SimConfig {
    let mut config = SimConfig::default();
    config.sec.companies = 40;
    config.sec.document_bytes = 40_000;
    config.sec.large_document_share = 0.0;
    config.gemini.latency.min_ms = latency_ms;
    config.gemini.latency.max_ms = latency_ms;
    config.gemini.projects = vec![ProjectConfig {
        name: "p1".into(),
        keys: vec!["test-key-0123456789".into()],
        requests_per_day: 10_000,
        requests_per_minute: 10_000,
        input_tokens_per_minute: 100_000_000,
        ..Default::default()
    }];
    config
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub sim: Option<SimHandle>,
    pub url: String,
}

impl Env {
    pub async fn new(latency_ms: u64) -> Env {
        Env::with(latency_ms, |_| {}).await
    }

    pub async fn with(latency_ms: u64, adjust: impl FnOnce(&mut SimConfig)) -> Env {
        let mut config = sim_config(latency_ms);
        adjust(&mut config);
        Env::start(config, Arc::new(fintel_time::SystemClock)).await
    }

    /// A simulator with `config` reading `clock`, and a data directory with 8 companies.
    pub async fn start(config: SimConfig, clock: fintel_time::SharedClock) -> Env {
        let sim = fintel_sim::start(config, clock, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let url = sim.base_url();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("companies.csv"),
            fintel_sim::companies_csv(8),
        )
        .unwrap();
        Env {
            dir,
            sim: Some(sim),
            url,
        }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("FINTEL_HOME", self.home())
            .env("FINTEL_SEC_USER_AGENT", "Test Runner test@example.com")
            .env("FINTEL_SEC_WWW_URL", &self.url)
            .env("FINTEL_SEC_DATA_URL", &self.url)
            .env("FINTEL_GEMINI_URL", &self.url)
            .env("GOOGLE_API_KEY_1", "test-key-0123456789")
            .env("FINTEL_REQUESTS_PER_DAY", "10000")
            .env("FINTEL_REQUESTS_PER_MINUTE", "10000")
            // The default 250,000 input tokens a minute would pace these tests' documents.
            .env("FINTEL_INPUT_TOKENS_PER_MINUTE", "100000000")
            .env("FINTEL_CONCURRENCY", "2")
            .env("CI", "true")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn db(&self) -> PathBuf {
        self.home().join("fintel.db")
    }

    pub fn completed_results(&self) -> i64 {
        if !self.db().exists() {
            return 0;
        }
        rusqlite::Connection::open(self.db())
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM results", [], |r| r.get(0)))
            .unwrap_or(0)
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn wait_for(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("fintel did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

pub fn read_all(mut r: impl std::io::Read) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}
