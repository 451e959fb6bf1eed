//! Discrete-event simulations of quota use (SPEC.md sections 3 and 10): the engine runs a whole
//! batch against a simulated provider on a virtual clock, and the provider's own counters (not
//! the engine's ledger) show whether any request arrived over a limit and when the work ended.
//!
//! The arithmetic limit: with `C` requests per quota day over all buckets and `N` requests to
//! send, starting just after a reset, the last request goes out during quota day
//! `ceil(N / C)`, so the run ends before the `ceil(N / C)`-th reset after the start.

#[path = "support/quota.rs"]
mod quota;

use std::time::Duration;

use fintel_engine::RunOutcome;
use fintel_llm::{ApiKey, CallError, GenerateRequest, Provider, Role, Thinking, Turn};
use fintel_time::ManualClock;
use quota::*;

/// The properties every simulation must show.
fn assert_within_limits(report: &SimReport) {
    let p = &report.provider;
    let c = &report.config;
    println!(
        "{} companies x {} years, {} buckets of {}/day {}/min, faults {:.0}%, engines {:?}: \
         {:.2} simulated days, {} requests ({} extra), {} over a limit, ratio to limit {:.3}, \
         wall {:?}",
        c.companies,
        c.years.len(),
        c.buckets,
        c.requests_per_day,
        c.requests_per_minute,
        c.fault_rate * 100.0,
        report.sent_by_engine,
        report.simulated_days(),
        p.arrived,
        report.extra_requests(),
        p.over_limit(),
        report.ratio_to_limit(),
        report.wall,
    );
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| *o == RunOutcome::Completed { failed: 0 }),
        "{:?}",
        report.outcomes
    );
    assert_eq!(
        report.counts.completed,
        c.model_tasks(),
        "{:?}",
        report.counts
    );
    assert_eq!(report.counts.failed, 0);
    assert_eq!(
        (p.over_minute, p.over_tokens),
        (0, 0),
        "requests arrived over a limit: {p:?}"
    );
    // A bucket whose day looks spent only because of uncertain (faulted) requests asks the
    // provider once more, and its per-day refusal, which costs nothing, settles it: at most one
    // such refusal per faulted request, and none without faults.
    assert!(p.over_daily <= p.faults, "{p:?}");
    assert!(p.max_per_project_day <= c.requests_per_day, "{p:?}");
    assert!(p.max_per_project_minute <= c.requests_per_minute, "{p:?}");
    assert_eq!(
        p.accepted,
        c.model_tasks() + p.faults,
        "one request per task plus one per injected fault, nothing else"
    );
    assert!(
        report.finished_at < report.limit(),
        "finished at {} but the arithmetic limit for {} requests is {}",
        report.finished_at,
        p.accepted,
        report.limit()
    );
}

/// 100 companies x 7 years with 25 buckets of 2/day: 700 tasks at 50 a day, the same 14 quota
/// days as the full scenario at a tenth of the work, so it runs in every debug test run.
fn debug_sized() -> SimConfig {
    SimConfig {
        companies: 100,
        requests_per_day: 2,
        ..SimConfig::full()
    }
}

#[tokio::test]
async fn a_fourteen_day_batch_ends_within_the_arithmetic_limit_without_a_request_over_a_limit() {
    let report = run_simulation(&debug_sized()).await;
    assert_within_limits(&report);
    assert_eq!(report.days_needed(), 14);
    // It takes every one of the 14 quota days: work really waited for the resets.
    assert!(
        report.finished_at >= report.resets[12],
        "{}",
        report.finished_at
    );
    assert_eq!(report.provider.faults, 0);
}

#[tokio::test]
async fn across_the_autumn_dst_change_the_day_is_still_counted_by_pacific_date() {
    // 00:05 PDT on 2026-10-25; the 14 quota days include the 25-hour 2026-11-01.
    let config = SimConfig {
        start: "2026-10-25T07:05:00Z".parse().unwrap(),
        ..debug_sized()
    };
    let report = run_simulation(&config).await;
    assert_within_limits(&report);
    assert_eq!(report.days_needed(), 14);
    // After the change the reset is 00:05 PST, 08:05 UTC.
    assert_eq!(report.resets[7].to_string(), "2026-11-02T08:05:00Z");
    assert!(
        report.finished_at >= report.resets[12],
        "{}",
        report.finished_at
    );
}

#[tokio::test]
async fn with_five_percent_transient_faults_the_finish_slips_only_by_the_retries() {
    let config = SimConfig {
        fault_rate: 0.05,
        seed: 11,
        ..debug_sized()
    };
    let report = run_simulation(&config).await;
    assert_within_limits(&report);
    assert!(
        report.provider.faults > 0,
        "the fault injection did nothing"
    );
    assert_eq!(report.extra_requests(), report.provider.faults);
}

#[tokio::test]
async fn two_engines_sharing_one_database_and_the_buckets_never_exceed_a_limit() {
    let config = SimConfig {
        engines: 2,
        ..debug_sized()
    };
    let report = run_simulation(&config).await;
    assert_within_limits(&report);
    assert_eq!(report.outcomes.len(), 2);
    // Both really worked the batch, against the same buckets.
    assert!(
        report.sent_by_engine.iter().all(|&n| n >= 100),
        "{:?}",
        report.sent_by_engine
    );
    assert_eq!(
        report.sent_by_engine.iter().sum::<u64>(),
        report.provider.arrived
    );
}

#[tokio::test]
async fn two_engines_with_faults_never_exceed_a_limit() {
    let config = SimConfig {
        engines: 2,
        fault_rate: 0.05,
        seed: 23,
        companies: 40,
        ..debug_sized()
    };
    let report = run_simulation(&config).await;
    assert_within_limits(&report);
    assert!(
        report.sent_by_engine.iter().all(|&n| n > 0),
        "{:?}",
        report.sent_by_engine
    );
}

#[tokio::test]
#[ignore = "full scale (7,000 tasks); run in release: cargo test --release -p fintel-engine --test quota_sim -- --ignored"]
async fn full_scale_1000_companies_7_years_25_buckets() {
    let report = run_simulation(&SimConfig::full()).await;
    assert_within_limits(&report);
    assert_eq!(report.days_needed(), 14);
    assert_eq!(report.limit(), report.fault_free_limit());
}

#[tokio::test]
#[ignore = "full scale (7,000 tasks); run in release: cargo test --release -p fintel-engine --test quota_sim -- --ignored"]
async fn full_scale_with_five_percent_transient_faults() {
    let config = SimConfig {
        fault_rate: 0.05,
        ..SimConfig::full()
    };
    let report = run_simulation(&config).await;
    assert_within_limits(&report);
    assert!(report.provider.faults > 0);
}

/// What the weather soak must show (issue 16): every task answered once, none failed, no
/// request over a limit, a finish no later than the quota day after the arithmetic minimum,
/// and every full quota day but the first and last using at least 95% of the capacity.
fn assert_weathered(report: &SimReport) {
    let p = &report.provider;
    let c = &report.config;
    println!(
        "weather soak: {} companies x {} years on {} buckets of {}/day\n\
         finished in quota day {} (arithmetic minimum {}), {:.2} simulated days, wall {:?}\n\
         results {} of {}, failed {}, skipped {}, kills {}\n\
         requests: {} arrived, {} accepted ({} transient faults), {} outage 503s, {} late-reset \
         refusals, {} per-day refusals after uncertain calls, {} over a per-minute limit, {} \
         answered twice\n{}",
        c.companies,
        c.years.len(),
        c.buckets,
        c.requests_per_day,
        report.finish_quota_day(),
        report.minimum_quota_days(),
        report.simulated_days(),
        report.wall,
        report.counts.completed,
        c.model_tasks(),
        report.counts.failed,
        report.counts.skipped,
        report.kills,
        p.arrived,
        p.accepted,
        p.faults,
        p.outage_refusals,
        p.late_reset_refusals,
        p.over_daily,
        p.over_minute + p.over_tokens,
        p.repeated_answers,
        report.days_table(),
    );
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| *o == RunOutcome::Completed { failed: 0 }),
        "{:?}",
        report.outcomes
    );
    assert_eq!(
        report.counts.completed,
        c.model_tasks(),
        "{:?}",
        report.counts
    );
    assert_eq!(report.counts.failed, 0);
    assert_eq!(p.over_minute + p.over_tokens, 0, "{p:?}");
    assert!(p.max_per_project_day <= c.requests_per_day, "{p:?}");
    assert!(p.over_daily <= p.faults, "{p:?}");
    assert!(report.kills > 0, "the soak killed nothing");
    assert!(
        report.finish_quota_day() <= report.minimum_quota_days() + 1,
        "finished in quota day {}, minimum {}",
        report.finish_quota_day(),
        report.minimum_quota_days()
    );
    let days: Vec<u64> = p.accepted_per_day.values().copied().collect();
    if days.len() > 2 {
        for (i, n) in days[1..days.len() - 1].iter().enumerate() {
            assert!(
                *n * 100 >= c.daily_capacity() * 95,
                "quota day {} used {n} of {}:\n{}",
                i + 2,
                c.daily_capacity(),
                report.days_table()
            );
        }
    }
}

/// The weather soak at a fifth of the size, for every test run: 40 companies x 7 years on
/// 10 buckets of 4/day (7 quota days of work), through outages, late resets, 2% 503s and a
/// kill -9 of the engine every 23 accepted requests.
#[tokio::test]
async fn a_batch_in_real_weather_loses_no_quota_day() {
    let mut config = SimConfig::weather_soak();
    config.companies = 40;
    config.requests_per_day = 4;
    config.weather.kill_every = Some(23);
    let report = run_simulation(&config).await;
    assert_weathered(&report);
}

#[tokio::test]
#[ignore = "full size (1,400 tasks); run in release: cargo test --release -p fintel-engine --test quota_sim -- --ignored weather"]
async fn full_weather_soak_200_companies_7_years_10_buckets() {
    let report = run_simulation(&SimConfig::weather_soak()).await;
    assert_weathered(&report);
}

// The referee itself: the simulated provider must catch requests over a limit, or the
// simulations above could not fail.

fn request(text: &str) -> GenerateRequest {
    GenerateRequest {
        model: "gemini-2.5-flash".into(),
        system_instruction: None,
        turns: vec![Turn {
            role: Role::User,
            text: text.into(),
        }],
        response_schema: serde_json::json!({"type": "object"}),
        temperature: None,
        max_output_tokens: None,
        thinking: Thinking::ProviderDefault,
        seed: None,
        output_field: None,
    }
}

#[tokio::test]
async fn the_simulated_provider_refuses_and_counts_requests_over_the_minute_limit() {
    let clock = ManualClock::new(sim_start());
    let buckets = sim_buckets(1, 100, 3);
    let provider = QuotaProvider::new(clock.clone(), &buckets, 0.0, 1);
    let key = &buckets[0].keys[0];
    for _ in 0..3 {
        provider.generate(Some(key), &request("a")).await.unwrap();
    }
    let refused = provider.generate(Some(key), &request("a")).await;
    assert!(
        matches!(refused, Err(CallError::RateLimited { .. })),
        "{refused:?}"
    );
    // The window slides: 60 s after the first three, requests pass again.
    clock.advance(Duration::from_secs(60));
    provider.generate(Some(key), &request("a")).await.unwrap();
    let stats = provider.stats();
    assert_eq!(
        (stats.arrived, stats.accepted, stats.over_minute),
        (5, 4, 1)
    );
    assert_eq!(stats.over_limit(), 1);
}

#[tokio::test]
async fn the_simulated_provider_counts_the_day_by_pacific_date() {
    // 23:59 Pacific (PDT) on 2026-06-15.
    let clock = ManualClock::new("2026-06-16T06:59:00Z".parse().unwrap());
    let buckets = sim_buckets(1, 2, 100);
    let provider = QuotaProvider::new(clock.clone(), &buckets, 0.0, 1);
    let key = &buckets[0].keys[0];
    provider.generate(Some(key), &request("a")).await.unwrap();
    provider.generate(Some(key), &request("a")).await.unwrap();
    let refused = provider.generate(Some(key), &request("a")).await;
    assert!(
        matches!(refused, Err(CallError::DailyQuotaExhausted { .. })),
        "{refused:?}"
    );
    // One minute later it is a new Pacific date: the day's count starts again.
    clock.advance(Duration::from_secs(60));
    provider.generate(Some(key), &request("a")).await.unwrap();
    let stats = provider.stats();
    assert_eq!(
        (stats.over_daily, stats.accepted, stats.max_per_project_day),
        (1, 3, 2)
    );
}

#[tokio::test]
async fn the_simulated_provider_rejects_unknown_keys_and_injects_seeded_faults() {
    let clock = ManualClock::new(sim_start());
    let buckets = sim_buckets(1, 10_000, 10_000);
    let unknown = ApiKey::new("OTHER", "AIzaNotInTheSimulation-000000000000");
    let provider = QuotaProvider::new(clock.clone(), &buckets, 0.05, 42);
    let refused = provider.generate(Some(&unknown), &request("a")).await;
    assert!(
        matches!(refused, Err(CallError::KeyUnusable { .. })),
        "{refused:?}"
    );
    let mut faults = 0;
    for _ in 0..2000 {
        if let Err(e) = provider
            .generate(Some(&buckets[0].keys[0]), &request("a"))
            .await
        {
            assert!(
                matches!(
                    e,
                    CallError::Transient {
                        reached_server: true,
                        ..
                    }
                ),
                "{e:?}"
            );
            faults += 1;
        }
    }
    // 5% of 2,000 is 100; a seeded generator lands well inside 60..140.
    assert!((60..140).contains(&faults), "{faults}");
    assert_eq!(provider.stats().faults, faults);
    assert_eq!(provider.stats().over_limit(), 0);
}
