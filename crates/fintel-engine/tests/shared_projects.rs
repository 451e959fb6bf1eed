//! Keys that share a Google Cloud project (issue: per-project quotas): the engine runs whole
//! batches against the simulated provider, whose projects are not the engine's buckets, with
//! refusal bodies that name the project and without.

#[path = "support/quota.rs"]
mod quota;

use fintel_engine::RunOutcome;
use quota::*;

/// 4 buckets of 20/day believed, keys 3 and 4 in one project: 60 a day, not 80.
fn two_keys_in_one_project(name_consumer: bool) -> SimConfig {
    SimConfig {
        companies: 10,
        years: (2018..=2024).collect(),
        buckets: 4,
        requests_per_day: 20,
        requests_per_minute: 5,
        concurrency: 8,
        key_projects: Some(vec![0, 1, 2, 2]),
        name_consumer,
        ..SimConfig::full()
    }
}

#[tokio::test]
async fn two_keys_whose_refusals_name_one_project_are_merged_and_the_finish_moves() {
    let report = run_simulation(&two_keys_in_one_project(true)).await;
    assert_eq!(report.outcomes, vec![RunOutcome::Completed { failed: 0 }]);
    assert_eq!(report.counts.completed, 70);

    // Said once, with the keys, the capacity and the finish estimate.
    let shared: Vec<String> = report
        .said
        .messages()
        .into_iter()
        .filter(|m| m.contains("share Google Cloud project"))
        .collect();
    assert_eq!(shared.len(), 1, "{shared:#?}");
    let message = &shared[0];
    assert!(
        message.starts_with(
            "GOOGLE_API_KEY_3 and GOOGLE_API_KEY_4 share Google Cloud project 42420002"
        ),
        "{message}"
    );
    assert!(
        message.contains("daily capacity is now 60, not 80"),
        "{message}"
    );
    assert!(
        message.contains("expected finish moves from 2026-06-15 to 2026-06-16"),
        "{message}"
    );
    let events: Vec<String> = report
        .said
        .events()
        .into_iter()
        .filter(|e| e.starts_with("SharedProject"))
        .collect();
    assert_eq!(events.len(), 1, "{events:#?}");

    // The database knows, for every process and later batch.
    assert_eq!(report.merges.len(), 1, "{:?}", report.merges);
    assert_eq!(report.merges[0].merged_into, "gcp-project-42420002");
    let names: Vec<&str> = report
        .final_buckets
        .iter()
        .map(|b| b.name.as_str())
        .collect();
    assert_eq!(names, ["project-0", "project-1", "gcp-project-42420002"]);

    // Once merged, the project's limits hold: no request over the day's quota, and the batch
    // takes the two quota days that 60 a day needs.
    assert_eq!(report.provider.over_daily, 0, "{:?}", report.provider);
    assert!(
        report.provider.max_per_project_day <= 20,
        "{:?}",
        report.provider
    );
    assert!(
        report.finished_at >= report.resets[0],
        "{}",
        report.finished_at
    );
    assert!(
        report.finished_at < report.resets[1],
        "{}",
        report.finished_at
    );
}

/// All four keys in one project, refusals without a consumer (today's free-tier bodies):
/// the per-day refusals come after a few requests each and add up to one limit.
#[tokio::test]
async fn a_per_day_refusal_with_little_sent_says_spent_elsewhere_and_suggests_the_grouping() {
    let config = SimConfig {
        companies: 5,
        years: (2019..=2024).collect(),
        requests_per_minute: 100,
        key_projects: Some(vec![0, 0, 0, 0]),
        ..two_keys_in_one_project(false)
    };
    let report = run_simulation(&config).await;
    assert_eq!(report.outcomes, vec![RunOutcome::Completed { failed: 0 }]);
    assert_eq!(report.counts.completed, 30);
    let messages = report.said.messages();
    let elsewhere: Vec<&String> = messages
        .iter()
        .filter(|m| m.contains("spent elsewhere"))
        .collect();
    assert!(!elsewhere.is_empty(), "{messages:#?}");
    assert!(
        elsewhere[0].contains("refused for the day after only"),
        "{}",
        elsewhere[0]
    );
    let grouping: Vec<&String> = messages
        .iter()
        .filter(|m| m.contains("add up to one limit"))
        .collect();
    assert_eq!(grouping.len(), 1, "{messages:#?}");
    assert!(
        grouping[0].contains(
            "[[buckets]]\nname = \"shared-project\"\nkeys = [\"GOOGLE_API_KEY_1\", \
             \"GOOGLE_API_KEY_2\", \"GOOGLE_API_KEY_3\", \"GOOGLE_API_KEY_4\"]\n\
             requests_per_day = 20"
        ),
        "{}",
        grouping[0]
    );
    // Inference alone merges nothing.
    assert!(report.merges.is_empty(), "{:?}", report.merges);
    assert_eq!(report.final_buckets.len(), 4);
    assert!(!messages
        .iter()
        .any(|m| m.contains("share Google Cloud project")));
}

/// Two engines (two processes) on one database: the merge is said once and both use it.
#[tokio::test]
async fn two_engines_learn_the_project_together_and_say_it_once() {
    let config = SimConfig {
        engines: 2,
        ..two_keys_in_one_project(true)
    };
    let report = run_simulation(&config).await;
    assert!(report
        .outcomes
        .iter()
        .all(|o| *o == RunOutcome::Completed { failed: 0 }));
    let shared = report
        .said
        .messages()
        .into_iter()
        .filter(|m| m.contains("share Google Cloud project"))
        .count();
    assert_eq!(shared, 1);
    assert_eq!(report.merges.len(), 1);
    assert_eq!(report.provider.over_daily, 0, "{:?}", report.provider);
}
