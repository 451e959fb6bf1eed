//! A local database error ends a run as a signal does, end to end with the built binary
//! against the simulator on 127.0.0.1: the process stops claiming, lets its calls in flight
//! end, and leaves the batch `stopped` with the error (not `running` with nobody on it);
//! `batch status`, `--list-incomplete` and the final message say so with the resume command,
//! and the resume finishes the batch.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

mod support;

use support::procs::*;
use support::*;

/// Two calls are in flight (the simulator holds their answers) when another process takes
/// their tasks over; when the answers come, this process can no longer store them (its lease
/// is lost): it drains and exits 1, and the batch shows `stopped` with why and how to resume.
#[tokio::test(flavor = "multi_thread")]
async fn a_lease_lost_mid_run_stops_the_batch_with_the_error_and_the_resume_command() {
    let env = Env::new(0).await;
    let sim = env.sim.as_ref().unwrap().state().clone();
    sim.hold_answers();
    let mut first = Guarded(
        env.cmd(&["batch", "companies.csv", "--years", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    until("two calls in flight", Duration::from_secs(120), || {
        sim.held_answers() >= 2
    })
    .await;
    let id = batch_id(&env).unwrap();
    // What a process that took this one for dead would have done: the leases are its now.
    let taken = rusqlite::Connection::open(env.db())
        .unwrap()
        .execute(
            "UPDATE tasks SET lease_owner = 'another-process' WHERE state = 'running'",
            [],
        )
        .unwrap();
    assert!(taken >= 2, "{taken} leases taken over");
    sim.release_answers();

    let status = wait_for(&mut first, Duration::from_secs(120));
    let stderr = read_all(first.0.stderr.take().unwrap());
    assert_eq!(status.code(), Some(1), "a runtime error exits 1: {stderr}");
    assert!(
        stderr.contains("stopped on a local database error"),
        "{stderr}"
    );
    let resume = format!("fintel batch --resume {id}");
    assert!(stderr.contains(&resume), "{stderr}");
    assert_eq!(batch_state(&env).as_deref(), Some("stopped"));

    let out = env.run(&["batch", "status", &id]);
    assert_eq!(out.status.code(), Some(0));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("state      stopped: local database error: this process no longer holds"),
        "{shown}"
    );
    assert!(shown.contains(&format!("resume with: {resume}")), "{shown}");

    let out = env.run(&["batch", "status", &id, "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "stopped");
    let reason = v["state_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("another process took over"), "{reason}");
    assert_eq!(v["resume_command"], resume.as_str());

    let out = env.run(&["batch", "--list-incomplete"]);
    let listed = text(&out.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("stopped")),
        "{listed}"
    );
    assert!(
        listed.contains(
            "  stopped: local database error: this process no longer holds the task's lease"
        ) && listed.contains(&format!("; resume with: {resume}")),
        "{listed}"
    );

    // The resume takes the tasks of the process that is gone back and finishes the batch.
    let out = env.run(&["batch", "--resume", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(batch_state(&env).as_deref(), Some("completed"));
    assert_eq!(
        env.completed_results(),
        8,
        "every company's year, each once"
    );
}
