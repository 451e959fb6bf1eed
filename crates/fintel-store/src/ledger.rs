//! The usage ledger and key buckets.
//!
//! Every HTTP request to a provider is one row of `calls`, inserted *before* the request is sent
//! by a single statement that also checks the bucket's limits (requests per Pacific day,
//! requests and input tokens in the last 60 seconds). So a crash can never lead to exceeding a
//! limit, and two processes sharing the database share the limits. Only a request that provably
//! never reached the server is refunded.

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::{from_millis, millis, Store, StoreError};

/// A bucket's limits (a Google Cloud project's free-tier quotas by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BucketLimits {
    pub requests_per_day: u32,
    pub requests_per_minute: u32,
    pub input_tokens_per_minute: u64,
}

/// What a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallPurpose {
    /// A task's first request of an attempt.
    Generate,
    /// The repair request of the same attempt.
    Repair,
    /// The first request after a reset or an outage, which verifies the bucket or provider.
    Probe,
}

impl CallPurpose {
    fn as_str(self) -> &'static str {
        match self {
            CallPurpose::Generate => "generate",
            CallPurpose::Repair => "repair",
            CallPurpose::Probe => "probe",
        }
    }
}

/// A request about to be sent.
#[derive(Debug, Clone)]
pub struct CallIntent<'a> {
    pub bucket: &'a str,
    pub key_fingerprint: Option<&'a str>,
    /// The fingerprints of every key of `bucket` as it is grouped now: its limits are checked
    /// against these keys' rows (see [`key_set`]).
    pub bucket_keys: &'a [String],
    pub batch_id: Option<&'a str>,
    pub task_id: Option<i64>,
    pub purpose: CallPurpose,
    pub input_tokens: u64,
}

/// How [`Store::reserve_call_as`] checks the daily limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReserveMode {
    /// Every answered and uncertain request counts; any number may be in flight.
    Normal,
    /// Only answered requests count, and one request at a time: a bucket whose day looks
    /// spent only because of uncertain requests, or one waiting for a late reset, asks the
    /// provider with one request until it answers or refuses for the day.
    OneAtATime,
}

/// A request without an outcome for this long is not "in flight" any more (its process died);
/// it still counts as uncertain.
pub const IN_FLIGHT_WINDOW_MS: i64 = 10 * 60 * 1000;

/// The ledger rows of the keys in parameter 13 (a [`key_set`]), by the fingerprint index.
const KEYS_13: &str = "key_fingerprint IN (SELECT value FROM json_each(?13))";

/// How a bucket stands, computed from the ledger.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BucketUsage {
    /// Requests of the quota day that count: answered and uncertain ones (and any in flight).
    pub used_today: u32,
    /// Of those, the ones the provider answered: only these prove the day had begun.
    pub answered_today: u32,
    /// Of those, the uncertain ones (a server error or a timeout after sending, or a call left
    /// in flight by a process that died): they may or may not have counted at the provider.
    pub uncertain_today: u32,
    /// Requests sent in the last ten minutes that have no outcome yet.
    pub in_flight: u32,
    pub sent_last_minute: u32,
    pub tokens_last_minute: u64,
    /// When the oldest request of the last minute leaves the window.
    #[serde(skip)]
    pub window_frees_at: Option<Timestamp>,
    /// The provider said the day's quota is spent (its count wins over ours).
    #[serde(skip)]
    pub exhausted_until: Option<Timestamp>,
    /// Still refused after a reset: wait before the next probe.
    #[serde(skip)]
    pub backoff_until: Option<Timestamp>,
    pub backoff_level: u32,
}

/// A key as the database knows it: never the secret, only its fingerprint and masked label.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRow {
    pub fingerprint: String,
    pub label: String,
    pub bucket: String,
    pub disabled_reason: Option<String>,
}

/// The fingerprint a ledger row of `bucket` carries when it was sent without a key (a local
/// server's bucket): the same one [`Store::register_key`] is given for such a bucket.
pub fn keyless_fingerprint(bucket: &str) -> String {
    format!("keyless:{bucket}")
}

/// The keys whose ledger rows make up a bucket's counts, as the JSON array the ledger's
/// statements read with `json_each`: the bucket's keys as grouped now, and its key-less rows.
///
/// Usage belongs to keys, not to bucket names: a bucket's day, minute and requests in flight
/// are the sum of its current keys' rows, so grouping keys differently (in the configuration,
/// or by a merge learned from the provider) never loses or doubles what they used.
pub(crate) fn key_set(bucket: &str, keys: &[String]) -> String {
    let mut all: Vec<&str> = keys.iter().map(String::as_str).collect();
    let keyless = keyless_fingerprint(bucket);
    all.push(&keyless);
    serde_json::to_string(&all).unwrap_or_else(|_| "[]".to_string())
}

impl Store {
    /// Records a key (by fingerprint) and its bucket; a key disabled earlier stays disabled.
    pub fn register_key(
        &self,
        fingerprint: &str,
        label: &str,
        bucket: &str,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO keys (fingerprint, label, bucket) VALUES (?1, ?2, ?3) \
             ON CONFLICT (fingerprint) DO UPDATE SET label = excluded.label, \
               bucket = excluded.bucket",
            params![fingerprint, label, bucket],
        )?;
        conn.execute(
            "INSERT INTO buckets (name) VALUES (?1) ON CONFLICT (name) DO NOTHING",
            [bucket],
        )?;
        self.ledger_changed();
        Ok(())
    }

    /// Every known key.
    pub fn keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT fingerprint, label, bucket, disabled_reason FROM keys ORDER BY bucket, label",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(KeyRow {
                fingerprint: r.get(0)?,
                label: r.get(1)?,
                bucket: r.get(2)?,
                disabled_reason: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Disables a key that the provider refused (invalid, leaked, API not enabled).
    pub fn disable_key(
        &self,
        fingerprint: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE keys SET disabled_reason = ?2, disabled_at = ?3 WHERE fingerprint = ?1",
            params![fingerprint, reason, millis(now)],
        )?;
        self.ledger_changed();
        Ok(())
    }

    /// Re-enables the keys whose label is or starts with `label`; returns how many.
    pub fn enable_key(&self, label: &str) -> Result<u64, StoreError> {
        let n = self.conn().execute(
            "UPDATE keys SET disabled_reason = NULL, disabled_at = NULL \
             WHERE label = ?1 OR substr(label, 1, length(?1) + 2) = ?1 || ' ('",
            params![label],
        )?;
        self.ledger_changed();
        Ok(n as u64)
    }

    /// Writes the ledger row of a request about to be sent, if and only if the bucket is
    /// within all its limits. Returns the call id, or `None` when a limit would be exceeded.
    pub fn reserve_call(
        &self,
        intent: &CallIntent<'_>,
        limits: &BucketLimits,
        now: Timestamp,
        quota_date: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.reserve_call_as(intent, limits, now, quota_date, ReserveMode::Normal)
    }

    /// [`Store::reserve_call`] in a given mode. In [`ReserveMode::OneAtATime`] the day's
    /// limit counts only answered requests (the uncertain ones may not have counted at the
    /// provider, whose per-day refusal is the authority), and a request is granted only while
    /// no other request of the bucket is in flight.
    pub fn reserve_call_as(
        &self,
        intent: &CallIntent<'_>,
        limits: &BucketLimits,
        now: Timestamp,
        quota_date: &str,
        mode: ReserveMode,
    ) -> Result<Option<i64>, StoreError> {
        let now_ms = millis(now);
        let one_at_a_time = mode == ReserveMode::OneAtATime;
        let id = self
            .conn()
            .query_row(
                &format!("INSERT INTO calls (bucket, key_fingerprint, batch_id, task_id, purpose, sent_at, \
                   quota_date, input_tokens) \
                 SELECT ?1, COALESCE(?2, 'keyless:' || ?1), ?3, ?4, ?5, ?6, ?7, ?8 \
                 WHERE (SELECT COUNT(*) FROM calls WHERE {KEYS_13} AND quota_date = ?7 \
                          AND refunded = 0 AND (?12 = 0 OR (outcome IS NOT NULL \
                            AND outcome != 'transient'))) < ?9 \
                   AND (?12 = 0 OR NOT EXISTS (SELECT 1 FROM calls WHERE {KEYS_13} \
                          AND refunded = 0 AND outcome IS NULL \
                          AND sent_at > ?6 - {IN_FLIGHT_WINDOW_MS})) \
                   AND (SELECT COUNT(*) FROM calls WHERE {KEYS_13} AND sent_at > ?6 - 60000 \
                          AND refunded = 0) < ?10 \
                   AND (SELECT COALESCE(SUM(input_tokens), 0) FROM calls WHERE {KEYS_13} \
                          AND sent_at > ?6 - 60000 AND refunded = 0) + ?8 <= ?11 \
                 RETURNING id"),
                params![
                    intent.bucket,
                    intent.key_fingerprint,
                    intent.batch_id,
                    intent.task_id,
                    intent.purpose.as_str(),
                    now_ms,
                    quota_date,
                    intent.input_tokens,
                    limits.requests_per_day,
                    limits.requests_per_minute,
                    limits.input_tokens_per_minute,
                    one_at_a_time,
                    key_set(intent.bucket, intent.bucket_keys),
                ],
                |r| r.get(0),
            )
            .optional()?;
        Ok(id)
    }

    /// Records how a call ended.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_call(
        &self,
        call_id: i64,
        outcome: &str,
        detail: Option<&str>,
        prompt_tokens: Option<u64>,
        output_tokens: Option<u64>,
        thinking_tokens: Option<u64>,
        latency_ms: u64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE calls SET outcome = ?2, detail = ?3, prompt_tokens = ?4, output_tokens = ?5, \
             thinking_tokens = ?6, latency_ms = ?7 WHERE id = ?1",
            params![
                call_id,
                outcome,
                detail,
                prompt_tokens,
                output_tokens,
                thinking_tokens,
                latency_ms
            ],
        )?;
        Ok(())
    }

    /// Gives back the quota of a request that provably never reached the server.
    pub fn refund_call(&self, call_id: i64, detail: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE calls SET refunded = 1, outcome = 'not_sent', detail = ?2 WHERE id = ?1",
            params![call_id, detail],
        )?;
        self.ledger_changed();
        Ok(())
    }

    /// Records a request the provider refused with a 429: it did not serve it, so it does not
    /// count against any limit, but the row stays (with its outcome) as the record of it.
    pub fn refuse_call(
        &self,
        call_id: i64,
        outcome: &str,
        detail: &str,
        latency_ms: u64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE calls SET refunded = 1, outcome = ?2, detail = ?3, latency_ms = ?4 \
             WHERE id = ?1",
            params![call_id, outcome, detail, latency_ms],
        )?;
        self.ledger_changed();
        Ok(())
    }

    /// A bucket's standing at `now`, from the rows of its keys `keys` (fingerprints).
    pub fn bucket_usage(
        &self,
        bucket: &str,
        keys: &[String],
        now: Timestamp,
        quota_date: &str,
    ) -> Result<BucketUsage, StoreError> {
        let conn = self.conn();
        let now_ms = millis(now);
        let set = key_set(bucket, keys);
        let (used_today, answered, uncertain): (i64, i64, i64) = conn.query_row(
            "SELECT COUNT(*), \
                    COALESCE(SUM(outcome IS NOT NULL AND outcome != 'transient'), 0), \
                    COALESCE(SUM(outcome IS NULL OR outcome = 'transient'), 0) \
             FROM calls WHERE key_fingerprint IN (SELECT value FROM json_each(?1)) \
               AND quota_date = ?2 AND refunded = 0",
            params![set, quota_date],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let in_flight: i64 = conn.query_row(
            &format!(
                "SELECT COUNT(*) FROM calls \
                 WHERE key_fingerprint IN (SELECT value FROM json_each(?1)) AND refunded = 0 \
                 AND outcome IS NULL AND sent_at > ?2 - {IN_FLIGHT_WINDOW_MS}"
            ),
            params![set, now_ms],
            |r| r.get(0),
        )?;
        let (sent, tokens, oldest): (i64, i64, Option<i64>) = conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), MIN(sent_at) FROM calls \
             WHERE key_fingerprint IN (SELECT value FROM json_each(?1)) \
               AND sent_at > ?2 - 60000 AND refunded = 0",
            params![set, now_ms],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let state: Option<(Option<i64>, Option<i64>, i64)> = conn
            .query_row(
                "SELECT exhausted_until, backoff_until, backoff_level FROM buckets WHERE name = ?1",
                [bucket],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let (exhausted, backoff, level) = state.unwrap_or((None, None, 0));
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
    }

    /// The provider said the bucket's day is spent: no request until `until` (the next reset).
    pub fn mark_bucket_exhausted(&self, bucket: &str, until: Timestamp) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO buckets (name, exhausted_until) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET exhausted_until = excluded.exhausted_until",
            params![bucket, millis(until)],
        )?;
        self.ledger_changed();
        Ok(())
    }

    /// Still refused after a reset: back off until `until`, remembering how far we have grown.
    pub fn set_bucket_backoff(
        &self,
        bucket: &str,
        until: Option<Timestamp>,
        level: u32,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO buckets (name, backoff_until, backoff_level) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET backoff_until = excluded.backoff_until, \
               backoff_level = excluded.backoff_level",
            params![bucket, until.map(millis), level],
        )?;
        self.ledger_changed();
        Ok(())
    }

    /// Ledger rows of one task (every request made for it, refused ones included).
    pub fn calls_of_task(&self, task_id: i64) -> Result<u64, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM calls WHERE task_id = ?1 AND outcome IS NOT 'not_sent'",
            [task_id],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_re_enabled_by_their_name_even_with_underscores() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("f.db")).unwrap();
        let now = jiff::Timestamp::UNIX_EPOCH;
        store
            .register_key("fp1", "GOOGLE_API_KEY_1 (AIza...abcd)", "b1")
            .unwrap();
        store
            .register_key("fp12", "GOOGLE_API_KEY_12 (AIza...wxyz)", "b1")
            .unwrap();
        store.disable_key("fp1", "leaked", now).unwrap();
        store.disable_key("fp12", "leaked", now).unwrap();
        assert_eq!(
            store.enable_key("GOOGLE_API_KEY_1").unwrap(),
            1,
            "not KEY_12 too"
        );
        assert_eq!(store.enable_key("GOOGLE%").unwrap(), 0, "no wildcards");
        let keys = store.keys().unwrap();
        assert!(keys
            .iter()
            .any(|k| k.fingerprint == "fp1" && k.disabled_reason.is_none()));
        assert!(keys
            .iter()
            .any(|k| k.fingerprint == "fp12" && k.disabled_reason.is_some()));
    }
}
