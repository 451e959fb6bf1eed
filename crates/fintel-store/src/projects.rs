//! Keys that share a Google Cloud project.
//!
//! Gemini counts quota per project, not per key. What the provider revealed about projects is
//! kept here so that every process and every later batch knows it: the project each key was
//! seen in (by key fingerprint, never the key), the bucket merges that followed (each said to
//! the user once), and every per-day refusal with the number of requests its bucket had
//! answered that quota day, from which "spent elsewhere" is inferred.

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::ledger::{key_set, keyless_fingerprint};
use crate::{from_millis, millis, Store, StoreError};

/// The project a key was seen in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyProject {
    pub fingerprint: String,
    pub project: String,
    #[serde(skip)]
    pub learned_at: Timestamp,
}

/// Buckets merged because their keys share a project, and what the user was told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectMerge {
    pub project: String,
    /// The configured buckets that were merged, comma-separated and sorted.
    pub members: String,
    pub merged_into: String,
    pub message: String,
    #[serde(skip)]
    pub at: Timestamp,
}

/// A per-day refusal of a bucket, with what it had answered that quota day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DailyRefusal {
    pub bucket: String,
    pub quota_date: String,
    pub answered: u32,
    pub requests_per_day: u32,
    /// The engine's verdict: far fewer answered than the limit, so the project's quota was
    /// spent through another key or program.
    pub spent_elsewhere: bool,
    #[serde(skip)]
    pub at: Timestamp,
}

/// The ledger rows of requests the provider answered (the ledger's outcome classes, see
/// [`crate::BucketUsage::answered_today`]): refused calls and calls that never reached it are
/// refunded, uncertain ones (`transient`) may not have counted at the provider, and a call in
/// flight has no outcome yet. Only answered requests prove what a bucket spent of its day.
const ANSWERED: &str = "refunded = 0 AND outcome IS NOT NULL AND outcome != 'transient'";

impl Store {
    /// Records that the key with `fingerprint` belongs to `project`. True when this is news
    /// (the key was unknown, or was seen in another project before).
    pub fn learn_key_project(
        &self,
        fingerprint: &str,
        project: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let changed = self.conn().execute(
            "INSERT INTO key_projects (fingerprint, project, learned_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (fingerprint) DO UPDATE SET project = excluded.project, \
               learned_at = excluded.learned_at \
             WHERE key_projects.project <> excluded.project",
            params![fingerprint, project, millis(now)],
        )?;
        Ok(changed > 0)
    }

    /// Every key whose project is known.
    pub fn key_projects(&self) -> Result<Vec<KeyProject>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT fingerprint, project, learned_at FROM key_projects ORDER BY fingerprint",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(KeyProject {
                fingerprint: r.get(0)?,
                project: r.get(1)?,
                learned_at: from_millis(r.get(2)?),
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// A value that changes whenever something is learned about projects: the key pool reads
    /// it before each decision (one cached statement) and re-plans its buckets only then.
    pub fn projects_version(&self) -> Result<(i64, i64), StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT COUNT(*), COALESCE(MAX(learned_at), 0) + \
               (SELECT COUNT(*) FROM project_merges) FROM key_projects",
        )?;
        Ok(stmt.query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?)
    }

    /// Projects whose buckets were merged already (by this process or another).
    pub fn merged_projects(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT DISTINCT project FROM project_merges ORDER BY project")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<String>, _>>()?)
    }

    /// Moves buckets `from` into bucket `into` in one transaction: their ledger rows (so the
    /// merged bucket's day and minute count every request its project served), their keys,
    /// and their waits (the latest of each); their per-day refusals are dropped. Running it
    /// again moves only what is left.
    pub fn merge_buckets(&self, into: &str, from: &[String]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        // IMMEDIATE: it writes, and another process may be writing the same rows.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO buckets (name) VALUES (?1) ON CONFLICT (name) DO NOTHING",
            [into],
        )?;
        for name in from.iter().filter(|n| n.as_str() != into) {
            // Usage belongs to keys; the rows sent without a key follow their bucket.
            tx.execute(
                "UPDATE calls SET bucket = ?1, key_fingerprint = CASE key_fingerprint \
                   WHEN ?3 THEN ?4 ELSE key_fingerprint END WHERE bucket = ?2",
                params![
                    into,
                    name,
                    keyless_fingerprint(name),
                    keyless_fingerprint(into)
                ],
            )?;
            tx.execute(
                "UPDATE keys SET bucket = ?1 WHERE bucket = ?2",
                params![into, name],
            )?;
            // Their refusals judged a bucket that no longer exists (what it answered is not
            // what the project answered): the merged bucket is judged afresh.
            tx.execute("DELETE FROM daily_refusals WHERE bucket = ?1", [name])?;
            tx.execute(
                "UPDATE buckets SET \
                   exhausted_until = MAX(COALESCE(exhausted_until, 0), \
                     COALESCE((SELECT exhausted_until FROM buckets WHERE name = ?2), 0)), \
                   backoff_until = MAX(COALESCE(backoff_until, 0), \
                     COALESCE((SELECT backoff_until FROM buckets WHERE name = ?2), 0)), \
                   backoff_level = MAX(backoff_level, \
                     COALESCE((SELECT backoff_level FROM buckets WHERE name = ?2), 0)) \
                 WHERE name = ?1",
                params![into, name],
            )?;
            tx.execute("DELETE FROM buckets WHERE name = ?1", [name])?;
        }
        // MAX(..., 0) leaves 0 where neither had a wait: that means none.
        tx.execute(
            "UPDATE buckets SET exhausted_until = NULLIF(exhausted_until, 0), \
               backoff_until = NULLIF(backoff_until, 0) WHERE name = ?1",
            [into],
        )?;
        tx.commit()?;
        self.ledger_changed();
        Ok(())
    }

    /// Records a merge and its message. True only for the first process to record this
    /// merge (same project, same members), which is the one that says it.
    pub fn record_project_merge(
        &self,
        merge: &ProjectMerge,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT INTO project_merges (project, members, merged_into, message, at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (project, members) DO NOTHING",
            params![
                merge.project,
                merge.members,
                merge.merged_into,
                merge.message,
                millis(now)
            ],
        )?;
        Ok(n > 0)
    }

    /// Every merge, newest first.
    pub fn project_merges(&self) -> Result<Vec<ProjectMerge>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT project, members, merged_into, message, at FROM project_merges \
             ORDER BY at DESC, project",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ProjectMerge {
                project: r.get(0)?,
                members: r.get(1)?,
                merged_into: r.get(2)?,
                message: r.get(3)?,
                at: from_millis(r.get(4)?),
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Requests of `bucket` (its keys `keys`) on `quota_date` the provider answered: the same count as
    /// [`crate::BucketUsage::answered_today`]. Refused, uncertain and never-sent requests and
    /// those still in flight are not answered.
    pub fn answered_on(
        &self,
        bucket: &str,
        keys: &[String],
        quota_date: &str,
    ) -> Result<u32, StoreError> {
        let n: i64 = self.conn().query_row(
            &format!(
                "SELECT COUNT(*) FROM calls \
                 WHERE key_fingerprint IN (SELECT value FROM json_each(?1)) \
                   AND quota_date = ?2 AND {ANSWERED}"
            ),
            params![key_set(bucket, keys), quota_date],
            |r| r.get(0),
        )?;
        Ok(n as u32)
    }

    /// Records a bucket's first per-day refusal of a quota day. True when it is the first.
    pub fn record_daily_refusal(&self, refusal: &DailyRefusal) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT INTO daily_refusals \
               (bucket, quota_date, answered, requests_per_day, spent_elsewhere, at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (bucket, quota_date) DO NOTHING",
            params![
                refusal.bucket,
                refusal.quota_date,
                refusal.answered,
                refusal.requests_per_day,
                refusal.spent_elsewhere,
                millis(refusal.at)
            ],
        )?;
        Ok(n > 0)
    }

    /// The per-day refusals of one quota day, by bucket.
    pub fn daily_refusals_on(&self, quota_date: &str) -> Result<Vec<DailyRefusal>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT bucket, quota_date, answered, requests_per_day, spent_elsewhere, at \
             FROM daily_refusals WHERE quota_date = ?1 ORDER BY bucket",
        )?;
        let rows = stmt.query_map([quota_date], |r| {
            Ok(DailyRefusal {
                bucket: r.get(0)?,
                quota_date: r.get(1)?,
                answered: r.get(2)?,
                requests_per_day: r.get(3)?,
                spent_elsewhere: r.get(4)?,
                at: from_millis(r.get(5)?),
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The project of one key, if known.
    pub fn project_of_key(&self, fingerprint: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT project FROM key_projects WHERE fingerprint = ?1",
                [fingerprint],
                |r| r.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BucketLimits, CallIntent, CallPurpose};

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("fintel.db")).unwrap();
        (dir, store)
    }

    fn send(store: &Store, bucket: &str, now: Timestamp) -> i64 {
        let limits = BucketLimits {
            requests_per_day: 100,
            requests_per_minute: 100,
            input_tokens_per_minute: 1_000_000,
        };
        let intent = CallIntent {
            bucket,
            key_fingerprint: None,
            bucket_keys: &[],
            batch_id: None,
            task_id: None,
            purpose: CallPurpose::Generate,
            input_tokens: 10,
        };
        store
            .reserve_call(&intent, &limits, now, "2026-06-15")
            .unwrap()
            .unwrap()
    }

    #[test]
    fn a_key_project_is_news_once_and_again_only_when_it_changes() {
        let (_dir, store) = store();
        let t = at("2026-06-15T17:00:00Z");
        let v0 = store.projects_version().unwrap();
        assert!(store.learn_key_project("fp-a", "111", t).unwrap());
        assert!(!store.learn_key_project("fp-a", "111", t).unwrap());
        let v1 = store.projects_version().unwrap();
        assert_ne!(v0, v1);
        assert!(store.learn_key_project("fp-a", "222", t).unwrap());
        assert_eq!(
            store.project_of_key("fp-a").unwrap().as_deref(),
            Some("222")
        );
        assert_eq!(store.project_of_key("fp-b").unwrap(), None);
        assert_eq!(store.key_projects().unwrap().len(), 1);
    }

    #[test]
    fn merging_moves_ledger_keys_and_waits_into_one_bucket() {
        let (_dir, store) = store();
        store.register_key("fp-3", "K3", "key-3").unwrap();
        store.register_key("fp-7", "K7", "key-7").unwrap();
        store.register_key("fp-9", "K9", "key-9").unwrap();
        let t = at("2026-06-15T17:00:00Z");
        for outcome in ["ok", "bad_output", "transient"] {
            let id = send(&store, "key-3", t);
            store
                .finish_call(id, outcome, None, None, None, None, 1)
                .unwrap();
        }
        let refused = send(&store, "key-7", t);
        store.refuse_call(refused, "quota_day", "429", 1).unwrap();
        send(&store, "key-7", t);
        send(&store, "key-9", t);
        let refusal = DailyRefusal {
            bucket: "key-7".into(),
            quota_date: "2026-06-15".into(),
            answered: 1,
            requests_per_day: 20,
            spent_elsewhere: true,
            at: t,
        };
        store.record_daily_refusal(&refusal).unwrap();
        store
            .mark_bucket_exhausted("key-7", at("2026-06-16T07:05:00Z"))
            .unwrap();
        store
            .set_bucket_backoff("key-3", Some(at("2026-06-15T17:20:00Z")), 2)
            .unwrap();
        store
            .merge_buckets("gcp-project-1", &["key-3".into(), "key-7".into()])
            .unwrap();
        let usage = store
            .bucket_usage("gcp-project-1", &[], t, "2026-06-15")
            .unwrap();
        assert_eq!(
            usage.used_today, 4,
            "three of key-3, one in flight of key-7"
        );
        assert_eq!(
            usage.exhausted_until,
            Some(at("2026-06-16T07:05:00Z")),
            "the merged bucket waits as long as its longest member"
        );
        assert_eq!(usage.backoff_until, Some(at("2026-06-15T17:20:00Z")));
        assert_eq!(
            usage.backoff_level, 2,
            "and backs off as far as its furthest"
        );
        assert_eq!(
            store
                .answered_on("gcp-project-1", &[], "2026-06-15")
                .unwrap(),
            2
        );
        assert!(
            store.daily_refusals_on("2026-06-15").unwrap().is_empty(),
            "a member's refusal does not judge the merged bucket"
        );
        assert_eq!(
            store
                .bucket_usage("key-3", &[], t, "2026-06-15")
                .unwrap()
                .used_today,
            0
        );
        assert_eq!(
            store
                .bucket_usage("key-9", &[], t, "2026-06-15")
                .unwrap()
                .used_today,
            1
        );
        let buckets: Vec<(String, String)> = store
            .keys()
            .unwrap()
            .into_iter()
            .map(|k| (k.fingerprint, k.bucket))
            .collect();
        assert!(buckets.contains(&("fp-3".into(), "gcp-project-1".into())));
        assert!(buckets.contains(&("fp-7".into(), "gcp-project-1".into())));
        assert!(buckets.contains(&("fp-9".into(), "key-9".into())));
        // Again (another process): nothing left to move, nothing changes.
        store
            .merge_buckets("gcp-project-1", &["key-3".into(), "key-7".into()])
            .unwrap();
        assert_eq!(
            store
                .bucket_usage("gcp-project-1", &[], t, "2026-06-15")
                .unwrap()
                .used_today,
            4
        );
    }

    #[test]
    fn only_answered_requests_are_answered_on_a_day() {
        let (_dir, store) = store();
        let t = at("2026-06-15T17:00:00Z");
        // Answered: the provider served them, whatever the answer was worth.
        for outcome in [
            "ok",
            "bad_output",
            "truncated",
            "refused",
            "context_too_long",
        ] {
            let id = send(&store, "key-1", t);
            store
                .finish_call(id, outcome, Some("x"), None, None, None, 1)
                .unwrap();
        }
        // Not answered: uncertain, refused with a 429, never sent, still in flight.
        let uncertain = send(&store, "key-1", t);
        store
            .finish_call(uncertain, "transient", Some("503"), None, None, None, 1)
            .unwrap();
        for outcome in ["quota_day", "quota_minute", "quota_tokens", "key_exhausted"] {
            let id = send(&store, "key-1", t);
            store.refuse_call(id, outcome, "429", 1).unwrap();
        }
        let never = send(&store, "key-1", t);
        store.refund_call(never, "connection refused").unwrap();
        send(&store, "key-1", t);
        assert_eq!(store.answered_on("key-1", &[], "2026-06-15").unwrap(), 5);
        assert_eq!(
            store
                .bucket_usage("key-1", &[], t, "2026-06-15")
                .unwrap()
                .answered_today,
            5,
            "the same count as the ledger's own"
        );
        assert_eq!(store.answered_on("key-1", &[], "2026-06-16").unwrap(), 0);
    }

    #[test]
    fn a_merge_and_a_daily_refusal_are_recorded_once() {
        let (_dir, store) = store();
        let t = at("2026-06-15T17:00:00Z");
        let merge = ProjectMerge {
            project: "111".into(),
            members: "key-3,key-7".into(),
            merged_into: "gcp-project-111".into(),
            message: "share".into(),
            at: t,
        };
        assert!(store.record_project_merge(&merge, t).unwrap());
        assert!(!store.record_project_merge(&merge, t).unwrap());
        assert_eq!(store.merged_projects().unwrap(), vec!["111".to_string()]);
        assert_eq!(store.project_merges().unwrap().len(), 1);
        let refusal = DailyRefusal {
            bucket: "key-3".into(),
            quota_date: "2026-06-15".into(),
            answered: 2,
            requests_per_day: 20,
            spent_elsewhere: true,
            at: t,
        };
        assert!(store.record_daily_refusal(&refusal).unwrap());
        assert!(!store.record_daily_refusal(&refusal).unwrap());
        assert_eq!(
            store.daily_refusals_on("2026-06-15").unwrap(),
            vec![refusal]
        );
        assert!(store.daily_refusals_on("2026-06-16").unwrap().is_empty());
    }
}
