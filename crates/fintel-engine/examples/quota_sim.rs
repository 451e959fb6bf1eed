//! Benchmark of the scheduler (SPEC.md section 10): the 14-day quota simulation of 1,000
//! companies x 7 years on 25 buckets of 20 requests/day and 5/minute, started at 00:05 Pacific,
//! on a virtual clock against a simulated provider that enforces the limits by its own counts.
//!
//! Run with `cargo run --release -p fintel-engine --example quota_sim [-- --faults 0.05]`
//! (`-- --pack off|2|3|auto` for request packing on documents of the measured sizes), or
//! `-- --weather` for the weather soak (200 companies x 7 years on 10 buckets of 20/day through
//! outages, late resets, 2% 503s and kill -9 with restarts). It
//! prints simulated days to finish, requests sent, requests over a limit, extra requests from
//! retries, the ratio of the finish time to the arithmetic limit, and the wall time (target:
//! under 30 s).

#[path = "../tests/support/quota.rs"]
mod quota;

use std::process::ExitCode;

use quota::{run_simulation, SimConfig};

fn main() -> ExitCode {
    let mut config = SimConfig::full();
    let mut args = std::env::args().skip(1).peekable();
    while let Some(arg) = args.next() {
        if arg == "--weather" {
            // The weather soak: outages, late resets, 2% 503s, kill -9 with restarts.
            config = SimConfig::weather_soak();
            continue;
        }
        let value = args.next();
        let parsed = match (arg.as_str(), value.as_deref()) {
            ("--faults", Some(v)) => v.parse().map(|f| config.fault_rate = f).is_ok(),
            ("--companies", Some(v)) => v.parse().map(|n| config.companies = n).is_ok(),
            ("--engines", Some(v)) => v.parse().map(|n| config.engines = n).is_ok(),
            ("--seed", Some(v)) => v.parse().map(|n| config.seed = n).is_ok(),
            // Packing is about document sizes: they come from the measured distribution.
            ("--pack", Some(v)) => match v.parse::<fintel_engine::pack::Pack>() {
                Ok(pack) => {
                    config.pack = pack;
                    config.measured_sizes = true;
                    true
                }
                Err(e) => {
                    eprintln!("{e}");
                    false
                }
            },
            _ => false,
        };
        if !parsed {
            eprintln!(
                "unexpected argument {arg:?}; usage: quota_sim [--weather] [--faults RATE] \
                 [--companies N] [--engines N] [--seed N] [--pack off|2|3|auto]"
            );
            return ExitCode::from(2);
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = runtime.block_on(run_simulation(&config));
    let p = &report.provider;
    println!(
        "scenario:            {} companies x {} years, {} buckets of {}/day and {}/min, \
         {:.1}% transient faults, {} engine(s), start {}",
        config.companies,
        config.years.len(),
        config.buckets,
        config.requests_per_day,
        config.requests_per_minute,
        config.fault_rate * 100.0,
        config.engines,
        config.start
    );
    if config.measured_sizes {
        println!(
            "packing:             --pack {}, documents of the measured sizes (25k-150k tokens), \
             {} results packed, {} requests for {} yearly tasks",
            config.pack,
            report.packed_results,
            p.accepted,
            config.model_tasks()
        );
    }
    println!(
        "outcome:             {:?}, {:?}",
        report.outcomes, report.counts
    );
    println!(
        "simulated days:      {:.3} (finished {}, arithmetic limit {} = reset #{} after start)",
        report.simulated_days(),
        report.finished_at,
        report.limit(),
        report.days_needed()
    );
    println!("requests sent:       {}", p.arrived);
    println!(
        "requests over limit: {} (daily {}: the provider's per-day refusals after uncertain \
         requests, which cost nothing; per-minute {}, tokens {})",
        p.over_limit(),
        p.over_daily,
        p.over_minute,
        p.over_tokens
    );
    println!(
        "extra from retries:  {} ({} injected faults)",
        report.extra_requests(),
        p.faults
    );
    println!("ratio to limit:      {:.3}", report.ratio_to_limit());
    println!(
        "quota days:          finished in day {} (arithmetic minimum {}), {} kill(s)",
        report.finish_quota_day(),
        report.minimum_quota_days(),
        report.kills
    );
    println!(
        "weather:             {} outage 503s, {} late-reset refusals, {} answered twice",
        p.outage_refusals, p.late_reset_refusals, p.repeated_answers
    );
    println!("per quota day:\n{}", report.days_table());
    println!(
        "wall time:           {:.2} s (target < 30 s), {} bucket reads",
        report.wall.as_secs_f64(),
        report.standing_reads
    );
    // A per-day refusal after uncertain (faulted) requests is the provider settling the
    // count, at most one per fault; weather delays are judged by the quota day of the finish.
    let on_time = if config.weather.outages.is_empty() && config.weather.late_resets.is_empty() {
        report.finished_at < report.limit()
    } else {
        report.finish_quota_day() <= report.minimum_quota_days() + 1
    };
    let ok = p.over_minute + p.over_tokens == 0
        && p.over_daily <= p.faults
        && on_time
        && report.counts.completed == config.model_tasks();
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("FAILED: a limit was exceeded, the run was late, or tasks did not complete");
        ExitCode::FAILURE
    }
}
