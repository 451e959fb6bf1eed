//! The key pool's hot reads: a bucket's standing and the disabled keys, each one cached
//! statement.
//!
//! The key pool asks these before every request (and several times while idle), so they must
//! cost one prepared-statement step each rather than a fresh parse of several queries. They
//! read the same ledger as [`Store::bucket_usage`] and [`Store::reserve_call`] and answer the
//! same numbers; the write-ahead check in `reserve_call` stays the one that grants a request.

use jiff::Timestamp;
use rusqlite::params;

use crate::ledger::key_set;
use crate::{from_millis, millis, BucketUsage, Store, StoreError, IN_FLIGHT_WINDOW_MS};

impl Store {
    /// A bucket's standing at `now`: the same answer as [`Store::bucket_usage`], read with one
    /// cached statement.
    pub fn bucket_standing(
        &self,
        bucket: &str,
        keys: &[String],
        now: Timestamp,
        quota_date: &str,
    ) -> Result<BucketUsage, StoreError> {
        let conn = self.conn();
        let now_ms = millis(now);
        let mut stmt = conn.prepare_cached(
            "SELECT day.n, minute.n, minute.tokens, minute.oldest, \
                    b.exhausted_until, b.backoff_until, COALESCE(b.backoff_level, 0), \
                    day.answered, day.uncertain, flight.n \
             FROM (SELECT COUNT(*) AS n, \
                     COALESCE(SUM(outcome IS NOT NULL AND outcome != 'transient'), 0) AS answered, \
                     COALESCE(SUM(outcome IS NULL OR outcome = 'transient'), 0) AS uncertain \
                   FROM calls \
                   WHERE key_fingerprint IN (SELECT value FROM json_each(?5)) \
                     AND quota_date = ?3 AND refunded = 0) AS day \
             CROSS JOIN (SELECT COUNT(*) AS n FROM calls \
                   WHERE key_fingerprint IN (SELECT value FROM json_each(?5)) AND refunded = 0 \
                   AND outcome IS NULL AND sent_at > ?2 - ?4) AS flight \
             CROSS JOIN (SELECT COUNT(*) AS n, COALESCE(SUM(input_tokens), 0) AS tokens, \
                           MIN(sent_at) AS oldest FROM calls \
                         WHERE key_fingerprint IN (SELECT value FROM json_each(?5)) \
                           AND sent_at > ?2 - 60000 AND refunded = 0) AS minute \
             LEFT JOIN buckets b ON b.name = ?1",
        )?;
        let usage = stmt.query_row(
            params![
                bucket,
                now_ms,
                quota_date,
                IN_FLIGHT_WINDOW_MS,
                key_set(bucket, keys)
            ],
            |r| {
                let used_today: i64 = r.get(0)?;
                let sent: i64 = r.get(1)?;
                let tokens: i64 = r.get(2)?;
                let oldest: Option<i64> = r.get(3)?;
                let exhausted: Option<i64> = r.get(4)?;
                let backoff: Option<i64> = r.get(5)?;
                let level: i64 = r.get(6)?;
                let answered: i64 = r.get(7)?;
                let uncertain: i64 = r.get(8)?;
                let in_flight: i64 = r.get(9)?;
                Ok(BucketUsage {
                    used_today: used_today as u32,
                    answered_today: answered as u32,
                    uncertain_today: uncertain as u32,
                    in_flight: in_flight as u32,
                    sent_last_minute: sent as u32,
                    tokens_last_minute: tokens as u64,
                    window_frees_at: oldest.map(|ms| from_millis(ms + 60_000)),
                    exhausted_until: exhausted.filter(|&t| t > now_ms).map(from_millis),
                    backoff_until: backoff.filter(|&t| t > now_ms).map(from_millis),
                    backoff_level: level as u32,
                })
            },
        )?;
        Ok(usage)
    }

    /// Fingerprints of the keys that are disabled.
    pub fn disabled_key_fingerprints(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT fingerprint FROM keys WHERE disabled_reason IS NOT NULL")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<String>, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BucketLimits, CallIntent, CallPurpose};

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn intent(bucket: &str, tokens: u64) -> CallIntent<'_> {
        CallIntent {
            bucket,
            key_fingerprint: None,
            bucket_keys: &[],
            batch_id: None,
            task_id: None,
            purpose: CallPurpose::Generate,
            input_tokens: tokens,
        }
    }

    fn same(a: &BucketUsage, b: &BucketUsage) -> bool {
        (
            a.used_today,
            a.sent_last_minute,
            a.tokens_last_minute,
            a.window_frees_at,
            a.exhausted_until,
            a.backoff_until,
            a.backoff_level,
            a.answered_today,
            a.uncertain_today,
            a.in_flight,
        ) == (
            b.used_today,
            b.sent_last_minute,
            b.tokens_last_minute,
            b.window_frees_at,
            b.exhausted_until,
            b.backoff_until,
            b.backoff_level,
            b.answered_today,
            b.uncertain_today,
            b.in_flight,
        )
    }

    #[test]
    fn standing_answers_what_bucket_usage_answers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("fintel.db")).unwrap();
        store.register_key("fp-a", "A", "project-a").unwrap();
        store.register_key("fp-b", "B", "project-b").unwrap();
        let limits = BucketLimits {
            requests_per_day: 100,
            requests_per_minute: 100,
            input_tokens_per_minute: 1_000_000,
        };
        let day = "2026-06-15";
        let t0 = at("2026-06-15T17:00:00Z");
        // Three calls 20 s apart on A, one refunded; one on B on the previous day.
        for (i, tokens) in [100u64, 200, 300].into_iter().enumerate() {
            let now = t0 + jiff::SignedDuration::from_secs(20 * i as i64);
            let id = store
                .reserve_call(&intent("project-a", tokens), &limits, now, day)
                .unwrap()
                .unwrap();
            if i == 1 {
                store.refund_call(id, "never sent").unwrap();
            }
        }
        store
            .reserve_call(
                &intent("project-b", 5),
                &limits,
                at("2026-06-14T17:00:00Z"),
                "2026-06-14",
            )
            .unwrap()
            .unwrap();
        store
            .mark_bucket_exhausted("project-b", at("2026-06-16T07:05:00Z"))
            .unwrap();
        store
            .set_bucket_backoff("project-a", Some(at("2026-06-15T17:30:00Z")), 2)
            .unwrap();

        for probe in [
            t0,
            at("2026-06-15T17:00:50Z"),
            at("2026-06-15T17:01:10Z"),
            at("2026-06-15T18:00:00Z"),
        ] {
            for bucket in ["project-a", "project-b", "never-registered"] {
                let slow = store.bucket_usage(bucket, &[], probe, day).unwrap();
                let fast = store.bucket_standing(bucket, &[], probe, day).unwrap();
                assert!(
                    same(&slow, &fast),
                    "{bucket} at {probe}: {slow:?} vs {fast:?}"
                );
            }
        }
        let a = store
            .bucket_standing("project-a", &[], at("2026-06-15T17:00:50Z"), day)
            .unwrap();
        assert_eq!(
            (a.used_today, a.sent_last_minute, a.tokens_last_minute),
            (2, 2, 400)
        );
        assert_eq!(a.window_frees_at, Some(at("2026-06-15T17:01:00Z")));
        assert_eq!(a.backoff_level, 2);
        let b = store.bucket_standing("project-b", &[], t0, day).unwrap();
        assert_eq!(b.used_today, 0, "yesterday's call is not today's");
        assert_eq!(b.exhausted_until, Some(at("2026-06-16T07:05:00Z")));
    }

    #[test]
    fn disabled_fingerprints_follow_disable_and_enable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("fintel.db")).unwrap();
        store
            .register_key("fp-a", "KEYA (AIza...aaaa)", "p")
            .unwrap();
        store
            .register_key("fp-b", "KEYB (AIza...bbbb)", "p")
            .unwrap();
        assert!(store.disabled_key_fingerprints().unwrap().is_empty());
        store
            .disable_key("fp-b", "API_KEY_INVALID", at("2026-06-15T17:00:00Z"))
            .unwrap();
        assert_eq!(
            store.disabled_key_fingerprints().unwrap(),
            vec!["fp-b".to_string()]
        );
        assert_eq!(store.enable_key("KEYB").unwrap(), 1);
        assert!(store.disabled_key_fingerprints().unwrap().is_empty());
    }
}

#[cfg(test)]
mod by_key {
    use super::*;
    use crate::{BucketLimits, CallIntent, CallPurpose};

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// Three keys each used alone, then grouped as one bucket (a configured group, or a
    /// project learned later): the group's day, minute and flight are what its keys sent, and
    /// its write-ahead check counts them too.
    #[test]
    fn a_buckets_counts_are_its_current_keys_rows_however_they_are_grouped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("fintel.db")).unwrap();
        let keys: Vec<String> = ["fp-1", "fp-2", "fp-3"].map(String::from).to_vec();
        let limits = BucketLimits {
            requests_per_day: 10,
            requests_per_minute: 100,
            input_tokens_per_minute: 1_000_000,
        };
        let day = "2026-06-15";
        let t0 = at("2026-06-15T17:00:00Z");
        for key in &keys {
            let alone = format!("key-{key}");
            store.register_key(key, key, &alone).unwrap();
            for _ in 0..3 {
                let intent = CallIntent {
                    bucket: &alone,
                    key_fingerprint: Some(key),
                    bucket_keys: std::slice::from_ref(key),
                    batch_id: None,
                    task_id: None,
                    purpose: CallPurpose::Generate,
                    input_tokens: 100,
                };
                store
                    .reserve_call(&intent, &limits, t0, day)
                    .unwrap()
                    .unwrap();
            }
        }
        let team = store.bucket_standing("team", &keys, t0, day).unwrap();
        assert_eq!(
            (
                team.used_today,
                team.in_flight,
                team.sent_last_minute,
                team.tokens_last_minute
            ),
            (9, 9, 9, 900)
        );
        assert_eq!(
            store
                .bucket_usage("team", &keys, t0, day)
                .unwrap()
                .used_today,
            9
        );
        assert_eq!(
            store.answered_on("team", &keys, day).unwrap(),
            0,
            "none answered yet"
        );
        let (left, _) = store
            .bucket_requests_left("team", &keys, &limits, t0, day)
            .unwrap();
        assert_eq!(left, 1);
        let intent = CallIntent {
            bucket: "team",
            key_fingerprint: Some("fp-2"),
            bucket_keys: &keys,
            batch_id: None,
            task_id: None,
            purpose: CallPurpose::Generate,
            input_tokens: 100,
        };
        assert!(store
            .reserve_call(&intent, &limits, t0, day)
            .unwrap()
            .is_some());
        assert!(
            store
                .reserve_call(&intent, &limits, t0, day)
                .unwrap()
                .is_none(),
            "the group's tenth request was its last"
        );
        // Apart again: each key keeps its own rows, the group's one included.
        let two = store
            .bucket_standing("key-fp-2", &keys[1..2], t0, day)
            .unwrap();
        assert_eq!(two.used_today, 4);
    }

    /// The key pool's reads go by the fingerprint indexes, not a scan of the ledger.
    #[test]
    fn the_reads_by_key_use_the_fingerprint_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("fintel.db")).unwrap();
        let conn = store.conn();
        let plan = |sql: &str| -> String {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            rows.join("\n")
        };
        let day = plan(
            "SELECT COUNT(*) FROM calls WHERE key_fingerprint IN \
             (SELECT value FROM json_each('[\"a\",\"b\"]')) AND quota_date = 'd' AND refunded = 0",
        );
        assert!(day.contains("calls_key_day"), "{day}");
        let minute = plan(
            "SELECT COUNT(*) FROM calls WHERE key_fingerprint IN \
             (SELECT value FROM json_each('[\"a\",\"b\"]')) AND sent_at > 5 AND refunded = 0",
        );
        assert!(minute.contains("calls_key_sent"), "{minute}");
    }
}
