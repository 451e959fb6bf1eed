//! The weather soak against the built binary: a batch on 10 keys of 20 requests a day (each
//! its own project) runs through simulated days of the simulator's `[weather]` (outages, late
//! resets, real token counts differing from the estimate, MAX_TOKENS, invalid JSON, 503s, slow
//! answers), with `kill -9` of the fintel process at random moments and `fintel batch --resume`
//! after each. The simulator and every fintel process share one fast `FINTEL_FAKE_CLOCK`.
//!
//! It reports the finish quota day against the arithmetic minimum ceil(requests / daily
//! capacity), the requests the provider counted per quota day against the capacity, results,
//! duplicates, over-limit and failed tasks, and asserts the issue's targets: finish on the
//! minimum day + 1 at most, every full quota day at least 95% used, nothing lost, duplicated,
//! failed or over a limit.
//!
//! CI runs 40 companies x 7 years (two quota days). The full size, 200 companies x 7 years:
//!
//! ```sh
//! cargo test -p fintel --test weather_soak -- --ignored --nocapture
//! ```

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fintel_sim::{ProjectConfig, SimConfig, WeatherConfig, WeatherOutage};
use fintel_time::{Clock, FakeClock};
use jiff::Timestamp;

mod support;

use support::procs::*;
use support::*;

const BUCKETS: usize = 10;
const REQUESTS_PER_DAY: u32 = 20;
const REQUESTS_PER_MINUTE: u32 = 15;
const TOKENS_PER_MINUTE: u64 = 250_000;
/// Simulated seconds per real second: a quota day passes in about 22 s.
const SPEED: f64 = 4_000.0;
/// 00:10 Pacific on Monday 2026-03-02: the batch starts as a quota day begins.
const START: &str = "2026-03-02T08:10:00Z";

fn key(i: usize) -> String {
    format!("weather-key-{i:02}-0123456789")
}

/// The weather of both sizes: an outage where it hurts most (as the first quota day begins,
/// for two hours from the second reset, six hours from the fifth), late resets on most days,
/// 2% 503s, 1% MAX_TOKENS, 1% invalid JSON, 0.5% slow answers, and real token counts 0.9 to
/// 1.3 times the estimate.
fn weather() -> WeatherConfig {
    WeatherConfig {
        start: Some(START.parse().unwrap()),
        unavailable: 0.02,
        max_tokens: 0.01,
        invalid_json: 0.01,
        slow: 0.005,
        slow_seconds: 120,
        outages: vec![
            WeatherOutage {
                after_minutes: 0,
                minutes: 10,
            },
            WeatherOutage {
                after_minutes: 24 * 60 - 5,
                minutes: 120,
            },
            WeatherOutage {
                after_minutes: 4 * 24 * 60 - 5,
                minutes: 360,
            },
        ],
        late_reset_minutes: vec![0, 20, 45, 0, 90, 5, 0, 130, 0, 10, 60, 0, 0, 30],
        late_reset_max_minutes: 0,
        token_factor_min: 0.9,
        token_factor_max: 1.3,
    }
}

fn sim_config(companies: usize) -> SimConfig {
    let mut config = support::sim_config(0);
    config.sec.companies = companies.max(40);
    config.sec.document_bytes = 30_000;
    // A few filings larger than a request may be: fitted by the provider's count.
    config.sec.large_document_share = 0.02;
    config.sec.large_document_max_bytes = 1_500_000;
    config.gemini.projects = (0..BUCKETS)
        .map(|i| ProjectConfig {
            name: format!("project-{i:02}"),
            keys: vec![key(i)],
            requests_per_day: REQUESTS_PER_DAY,
            requests_per_minute: REQUESTS_PER_MINUTE,
            input_tokens_per_minute: TOKENS_PER_MINUTE,
            ..ProjectConfig::default()
        })
        .collect();
    config.weather = Some(weather());
    config
}

struct Soak {
    companies: usize,
    /// Real-time safety net for the whole run (not a timing the outcome depends on).
    timeout: Duration,
}

async fn run_soak(size: Soak) {
    let started = Instant::now();
    let clock = Arc::new(FakeClock::new(START.parse().unwrap(), SPEED));
    let env = Env::start(sim_config(size.companies), clock.clone()).await;
    let universe = env.sim.as_ref().unwrap().state().universe();
    std::fs::write(
        env.dir.path().join("companies.csv"),
        universe.companies_csv(size.companies),
    )
    .unwrap();
    let log = env.dir.path().join("fintel-stderr.log");
    let spawn = |args: &[&str]| -> Guarded {
        // stderr to a file, not a pipe nobody reads: days of progress lines would fill it.
        let stderr = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut cmd = env.cmd(args);
        for i in 0..BUCKETS {
            cmd.env(format!("GOOGLE_API_KEY_{}", i + 1), key(i));
        }
        Guarded(
            cmd.env("FINTEL_FAKE_CLOCK", fake_clock_var(&clock))
                .env("FINTEL_REQUESTS_PER_DAY", REQUESTS_PER_DAY.to_string())
                .env(
                    "FINTEL_REQUESTS_PER_MINUTE",
                    REQUESTS_PER_MINUTE.to_string(),
                )
                .env(
                    "FINTEL_INPUT_TOKENS_PER_MINUTE",
                    TOKENS_PER_MINUTE.to_string(),
                )
                .env("FINTEL_CONCURRENCY", BUCKETS.to_string())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap(),
        )
    };
    let sim = env.sim.as_ref().unwrap();
    let accepted = || sim.stats().gemini.total.accepted;

    let mut fintel = spawn(&["batch", "companies.csv", "--years", "7"]);
    until("the batch exists", Duration::from_secs(60), || {
        batch_id(&env).is_some() || matches!(fintel.try_wait(), Ok(Some(_)))
    })
    .await;
    assert!(
        batch_id(&env).is_some(),
        "fintel exited before creating the batch: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let id = batch_id(&env).unwrap();
    let mut rng = XorShift(0x16_0fa1_0057);
    let mut kills = 0u32;
    let mut next_kill_at = accepted() + rng.between(20, 90);
    let mut bad_exits = Vec::new();
    loop {
        assert!(
            started.elapsed() < size.timeout,
            "not done within {:?} (simulated {})",
            size.timeout,
            clock.now()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        if let Some(status) = fintel.try_wait().unwrap() {
            let code = status.code().unwrap_or(-1);
            if code != 0 {
                let tail: String = std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .lines()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .join("\n");
                bad_exits.push(format!("exit {code}, last lines (newest first):\n{tail}"));
            }
            if batch_state(&env).as_deref() == Some("completed") {
                break;
            }
            assert!(
                bad_exits.is_empty(),
                "fintel ended before the batch completed: {bad_exits:#?}"
            );
            fintel = spawn(&["batch", "--resume", &id]);
            continue;
        }
        // kill -9 at a random moment of the request stream, then resume as a user would.
        if accepted() >= next_kill_at {
            tokio::time::sleep(Duration::from_millis(rng.between(0, 40))).await;
            signal(&fintel, "-KILL");
            let _ = fintel.wait();
            kills += 1;
            next_kill_at = accepted() + rng.between(20, 90);
            fintel = spawn(&["batch", "--resume", &id]);
        }
    }
    assert!(bad_exits.is_empty(), "{bad_exits:#?}");

    // What the database holds.
    let (total, completed, skipped, failed, open): (i64, i64, i64, i64, i64) =
        rusqlite::Connection::open(env.db())
            .unwrap()
            .query_row(
                "SELECT COUNT(*), SUM(state = 'completed'), SUM(state = 'skipped'), \
                 SUM(state = 'failed'), SUM(state IN ('pending', 'running')) \
                 FROM tasks WHERE kind = 'year' AND batch_id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
    let results = env.completed_results();
    let distinct_results = sql_i64(
        &env,
        "SELECT COUNT(DISTINCT result_id) FROM tasks WHERE kind = 'year' AND state = 'completed'",
    );
    let odd_skips = sql_string(
        &env,
        "SELECT group_concat(DISTINCT reason) FROM tasks \
         WHERE state = 'skipped' AND reason NOT LIKE 'no annual report for FY%'",
    );

    // What the provider counted, per quota day as it counted them (late resets included):
    // answered requests plus the 503s it counted against the day.
    let stats = sim.stats();
    let g = &stats.gemini;
    let start_date = fintel_time::pacific_date(START.parse::<Timestamp>().unwrap());
    let mut per_day: BTreeMap<i64, u64> = BTreeMap::new();
    for (date, counters) in &g.dates {
        let date: jiff::civil::Date = date.parse().unwrap();
        let used: u64 = counters
            .projects
            .values()
            .map(|c| c.accepted + c.faults.unavailable)
            .sum();
        if used > 0 {
            let day = i64::from(start_date.until(date).unwrap().get_days()) + 1;
            per_day.insert(day, used);
        }
    }
    let capacity = BUCKETS as u64 * u64::from(REQUESTS_PER_DAY);
    let minimum = (completed as u64).div_ceil(capacity);
    let finish_day = *per_day.keys().last().unwrap() as u64;
    let days_table = per_day
        .iter()
        .map(|(day, used)| {
            format!(
                "  quota day {day}: {used} of {capacity} ({:.1}%)",
                *used as f64 * 100.0 / capacity as f64
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    // Over a limit: a request the provider refused by a per-minute limit (fintel paces those
    // from its ledger). A per-day refusal is the provider's authority, asked for on purpose
    // when only uncertain calls made a day look spent or a reset is late: it costs nothing.
    let over = g.total.refused_rpm + (g.total.refused_tpm - g.total.refused_request_too_big);
    eprintln!(
        "weather soak: {} companies x 7 years on {BUCKETS} buckets of {REQUESTS_PER_DAY}/day, \
         {kills} kill -9 + resume, {:.1} s real\n\
         finish quota day {finish_day} (arithmetic minimum ceil({completed} / {capacity}) = \
         {minimum})\n{days_table}\n\
         year tasks {total}: results {results}, completed {completed}, skipped {skipped} \
         (other than missing years: {odd_skips:?}), failed {failed}, lost {open}, \
         duplicate results {}\n\
         provider: {} answered, {} outage 503s, {} baseline 503s, {} MAX_TOKENS, {} invalid \
         JSON, {} slow, {} refused per day (late resets and uncertain days settled), {} refused \
         for size, {} countTokens; over a per-minute limit {over}; repeated answers (calls in \
         flight at a kill) {}",
        size.companies,
        started.elapsed().as_secs_f64(),
        results - distinct_results,
        g.total.accepted,
        g.total.faults.outage,
        g.total.faults.unavailable,
        g.total.faults.max_tokens,
        g.total.faults.invalid_json,
        g.total.faults.slow,
        g.total.refused_rpd,
        g.total.refused_request_too_big,
        g.count_tokens,
        g.total.duplicates,
    );

    assert!(kills >= 2, "only {kills} kills");
    assert_eq!(open, 0, "no task lost");
    assert_eq!(failed, 0, "no task failed");
    assert_eq!(completed + skipped, total);
    assert_eq!(odd_skips, None, "only years without a report are skipped");
    assert_eq!(results, completed, "one result per completed task");
    assert_eq!(distinct_results, completed, "no result twice");
    assert_eq!(over, 0, "no request over a per-minute limit");
    assert!(
        finish_day <= minimum + 1,
        "finished on quota day {finish_day}, minimum {minimum}\n{days_table}"
    );
    for (day, used) in &per_day {
        if (*day as u64) < finish_day {
            assert!(
                *used * 100 >= capacity * 95,
                "quota day {day} used {used} of {capacity}\n{days_table}"
            );
        }
    }
    assert!(
        g.total.duplicates <= u64::from(kills) * BUCKETS as u64,
        "only calls in flight at a kill may be answered twice"
    );
    assert!(
        g.total.faults.outage > 0 && g.total.refused_rpd > 0,
        "the weather was met"
    );
}

/// CI size: 40 companies x 7 years, two quota days.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_through_weather_and_kill_9_finishes_on_time_and_loses_nothing() {
    run_soak(Soak {
        companies: 40,
        timeout: Duration::from_secs(240),
    })
    .await;
}

/// The issue's size: 200 companies x 7 years (seven quota days at full use).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "full size: about 4 minutes; run with --ignored"]
async fn full_size_weather_soak_200_companies_by_7_years() {
    run_soak(Soak {
        companies: 200,
        timeout: Duration::from_secs(1_200),
    })
    .await;
}

/// Defect 7 seen from outside: the one key whose token cap fits the filings has spent its day,
/// the other has quota but a cap too small for them. The batch says it waits for the reset of
/// a key whose token cap fits (`waiting_reset`), not `running`, and `fintel keys` shows the
/// small key as "cap too small" for the waiting request and the large one as spent.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_waiting_for_a_key_it_fits_is_a_visible_wait_in_the_batch_and_in_keys() {
    const BIG_KEY: &str = "big-key-0123456789";
    let env = Env::with(0, |c| {
        c.gemini.projects = vec![
            ProjectConfig {
                name: "small".into(),
                keys: vec!["test-key-0123456789".into()],
                requests_per_day: 100,
                requests_per_minute: 100,
                input_tokens_per_minute: 4_000,
                ..ProjectConfig::default()
            },
            ProjectConfig {
                name: "big".into(),
                keys: vec![BIG_KEY.into()],
                requests_per_day: 1,
                requests_per_minute: 100,
                input_tokens_per_minute: 100_000_000,
                ..ProjectConfig::default()
            },
        ];
    })
    .await;
    std::fs::create_dir_all(env.home()).unwrap();
    std::fs::write(
        env.home().join("fintel.toml"),
        "[[buckets]]\nname = \"small\"\nkeys = [\"GOOGLE_API_KEY_1\"]\nrequests_per_day = 100\n\
         input_tokens_per_minute = 4000\n\
         [[buckets]]\nname = \"big\"\nkeys = [\"GOOGLE_API_KEY_2\"]\nrequests_per_day = 1\n",
    )
    .unwrap();
    std::fs::write(env.dir.path().join("one.csv"), fintel_sim::companies_csv(1)).unwrap();
    let mut batch = Guarded(
        env.cmd(&["batch", "one.csv", "--years", "2"])
            .env("GOOGLE_API_KEY_2", BIG_KEY)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    until("the batch waits", Duration::from_secs(60), || {
        batch_state(&env).as_deref() == Some("waiting_reset")
    })
    .await;
    let reason = sql_string(
        &env,
        "SELECT state_reason FROM batches ORDER BY created_at DESC LIMIT 1",
    )
    .unwrap_or_default();
    assert!(
        reason.contains("daily quota used on every key whose token cap fits a request of"),
        "{reason}"
    );
    let out = env
        .cmd(&["keys", "--json"])
        .env("GOOGLE_API_KEY_2", BIG_KEY)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let state = |name: &str| -> String {
        keys["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["bucket"] == name)
            .map(|b| b["state"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    assert!(
        state("small").starts_with("cap too small: 1 waiting request(s)"),
        "{keys}"
    );
    assert_eq!(state("big"), "exhausted until reset", "{keys}");
    assert_eq!(
        env.sim
            .as_ref()
            .unwrap()
            .stats()
            .gemini
            .projects
            .get("small")
            .map_or(0, |c| c.received),
        0
    );
    signal(&batch, "-TERM");
    assert_eq!(
        wait_for(&mut batch, Duration::from_secs(60)).code(),
        Some(0)
    );
}
