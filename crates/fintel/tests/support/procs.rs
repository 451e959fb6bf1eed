//! Driving fintel processes in the end-to-end tests: children killed when a test ends, waits
//! bounded by events, the batch's state read from the database, a small seeded generator for
//! random kill moments, and `FINTEL_FAKE_CLOCK` for a process that joins a simulated clock.

use std::process::Child;
use std::time::{Duration, Instant};

use fintel_time::{Clock, FakeClock};

use super::Env;

/// A child process killed when the test ends, passed or not: a batch waiting for a reset
/// hours away must not outlive a failed assertion.
pub struct Guarded(pub Child);

impl std::ops::Deref for Guarded {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Guarded {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Polls `condition` until it holds; panics after `timeout` (a safety net, not a timing).
pub async fn until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One text value from the database, `None` when there is no database or no row yet.
pub fn sql_string(env: &Env, sql: &str) -> Option<String> {
    rusqlite::Connection::open(env.db())
        .ok()
        .and_then(|c| c.query_row(sql, [], |r| r.get(0)).ok())
}

/// One number from the database.
pub fn sql_i64(env: &Env, sql: &str) -> i64 {
    rusqlite::Connection::open(env.db())
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// The newest batch's id.
pub fn batch_id(env: &Env) -> Option<String> {
    sql_string(
        env,
        "SELECT id FROM batches ORDER BY created_at DESC LIMIT 1",
    )
}

/// The newest batch's state.
pub fn batch_state(env: &Env) -> Option<String> {
    sql_string(
        env,
        "SELECT state FROM batches ORDER BY created_at DESC LIMIT 1",
    )
}

/// xorshift64: the same "random" moments on every run of a test.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Runs `first` (a command that creates a batch), then `batch --resume`, each `kill -9`ed
/// after `base_ms` plus up to 300 ms (seeded), until `max_kills` kills or the batch ends
/// between two; returns the kills. The first kill waits for a stored result, so there is
/// something to resume.
pub async fn kill_9_and_resume(
    env: &Env,
    first: &[&str],
    seed: u64,
    base_ms: u64,
    max_kills: i64,
) -> i64 {
    let mut moments = XorShift(seed);
    let mut kills = 0;
    for round in 0..max_kills * 3 {
        if kills == max_kills {
            break;
        }
        let args: &[&str] = if round == 0 {
            first
        } else {
            &["batch", "--resume"]
        };
        let mut child = env
            .cmd(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if round == 0 {
            until("a first stored result", Duration::from_secs(60), || {
                env.completed_results() > 0
            })
            .await;
        }
        tokio::time::sleep(Duration::from_millis(base_ms + moments.next() % 300)).await;
        if child.try_wait().unwrap().is_some() {
            break; // the batch finished between kills
        }
        super::signal(&child, "-KILL");
        kills += 1;
        let _ = child.wait();
    }
    kills
}

/// `FINTEL_FAKE_CLOCK` for a process started now on `clock`: the same instant and speed, so
/// the binary's time trails the simulator's only by its start-up.
pub fn fake_clock_var(clock: &FakeClock) -> String {
    format!("{}@{}", clock.now(), clock.speed())
}
