//! The key pool: API keys grouped into quota buckets (a Google Cloud project each), and the
//! decision of which bucket may send the next request.
//!
//! The decision is taken from the database ledger (SPEC.md section 3): a request is granted
//! only by writing its ledger row in the same statement that checks the bucket's limits, so the
//! limits hold across crashes and across processes sharing the data directory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fintel_llm::ApiKey;
use fintel_store::{BucketLimits, CallIntent, Store, StoreError};
use fintel_time::{duration_to_span, next_reset, pacific_date};
use jiff::Timestamp;

/// A quota bucket: the keys that share one project's quota, and its limits.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub name: String,
    pub keys: Vec<ApiKey>,
    pub limits: BucketLimits,
}

/// The answer to "may I send a request now?".
#[derive(Debug, Clone)]
pub enum Grant {
    /// The ledger row `call_id` is written; send with `key`.
    Granted {
        call_id: i64,
        bucket: String,
        key: Option<ApiKey>,
    },
    /// Nothing may be sent before `until`.
    Wait { until: Timestamp, why: WaitReason },
}

/// Why a request must wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// Per-minute limits or a retry hint: seconds away.
    Pacing,
    /// Every bucket's daily quota is spent until the reset.
    DailyQuotaSpent,
    /// Every key is disabled.
    NoUsableKey,
}

/// How long a bucket still refused right after a reset waits before trying again (it doubles).
pub const STILL_REFUSED_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// All the buckets of a run.
#[derive(Debug)]
pub struct KeyPool {
    buckets: Vec<Bucket>,
    reset_buffer: Duration,
    rotation: AtomicUsize,
    /// A local server without keys: one bucket whose requests need no key.
    keyless: bool,
}

impl KeyPool {
    pub fn new(buckets: Vec<Bucket>, reset_buffer: Duration) -> Self {
        let keyless = buckets.iter().all(|b| b.keys.is_empty());
        KeyPool {
            buckets,
            reset_buffer,
            rotation: AtomicUsize::new(0),
            keyless,
        }
    }

    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    /// The largest request any bucket could ever accept (its tokens-per-minute cap).
    pub fn max_request_tokens(&self) -> u64 {
        self.buckets
            .iter()
            .map(|b| b.limits.input_tokens_per_minute)
            .max()
            .unwrap_or(0)
    }

    /// Records every key (fingerprint and masked label only) in the database.
    pub fn register(&self, store: &Store) -> Result<(), StoreError> {
        for b in &self.buckets {
            for k in &b.keys {
                store.register_key(&k.fingerprint(), k.label(), &b.name)?;
            }
            if b.keys.is_empty() {
                store.register_key(&format!("keyless:{}", b.name), "no key", &b.name)?;
            }
        }
        Ok(())
    }

    fn usable_keys(&self, store: &Store, bucket: &Bucket) -> Result<Vec<ApiKey>, StoreError> {
        let disabled: Vec<String> = store
            .keys()?
            .into_iter()
            .filter(|k| k.disabled_reason.is_some())
            .map(|k| k.fingerprint)
            .collect();
        Ok(bucket
            .keys
            .iter()
            .filter(|k| !disabled.contains(&k.fingerprint()))
            .cloned()
            .collect())
    }

    /// Tries to reserve a request of `input_tokens` on some bucket, in rotation so that every
    /// bucket is used. With `commit` false nothing is written: the answer only says whether a
    /// request could go now (used to decide whether to claim model work at all).
    pub fn acquire(
        &self,
        store: &Store,
        now: Timestamp,
        intent: &CallIntent<'_>,
        commit: bool,
    ) -> Result<Grant, StoreError> {
        let quota_date = pacific_date(now).to_string();
        let reset = next_reset(now, self.reset_buffer);
        let n = self.buckets.len();
        let start = self.rotation.fetch_add(1, Ordering::Relaxed);
        let mut earliest: Option<Timestamp> = None;
        let mut any_usable = false;
        let mut all_day_spent = true;
        for i in 0..n {
            let bucket = &self.buckets[(start + i) % n];
            let keys = self.usable_keys(store, bucket)?;
            if keys.is_empty() && !self.keyless {
                continue;
            }
            any_usable = true;
            let usage = store.bucket_usage(&bucket.name, now, &quota_date)?;
            let limits = &bucket.limits;
            let wake = if let Some(t) = usage.exhausted_until {
                Some(t)
            } else if usage.used_today >= limits.requests_per_day {
                Some(reset)
            } else {
                all_day_spent = false;
                if let Some(t) = usage.backoff_until {
                    Some(t)
                } else if usage.sent_last_minute >= limits.requests_per_minute
                    || usage.tokens_last_minute + intent.input_tokens
                        > limits.input_tokens_per_minute
                {
                    Some(usage.window_frees_at.unwrap_or(now + duration_to_span(Duration::from_secs(1))))
                } else {
                    None
                }
            };
            if let Some(t) = wake {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
                continue;
            }
            if !commit {
                return Ok(Grant::Granted {
                    call_id: 0,
                    bucket: bucket.name.clone(),
                    key: None,
                });
            }
            let key = if keys.is_empty() {
                None
            } else {
                Some(keys[start % keys.len()].clone())
            };
            let fingerprint = key.as_ref().map(|k| k.fingerprint());
            let intent = CallIntent {
                bucket: &bucket.name,
                key_fingerprint: fingerprint.as_deref(),
                ..intent.clone()
            };
            match store.reserve_call(&intent, limits, now, &quota_date)? {
                Some(call_id) => {
                    return Ok(Grant::Granted {
                        call_id,
                        bucket: bucket.name.clone(),
                        key,
                    })
                }
                // Another process took the last slot between our read and our write.
                None => {
                    let t = now + duration_to_span(Duration::from_secs(1));
                    earliest = Some(earliest.map_or(t, |e| e.min(t)));
                }
            }
        }
        if !any_usable {
            return Ok(Grant::Wait {
                until: reset,
                why: WaitReason::NoUsableKey,
            });
        }
        Ok(Grant::Wait {
            until: earliest.unwrap_or(reset),
            why: if all_day_spent {
                WaitReason::DailyQuotaSpent
            } else {
                WaitReason::Pacing
            },
        })
    }

    /// The provider refused for the day. If that happens on a bucket's first request of its
    /// quota day, the reset has not really happened yet there: back off 15 minutes, growing,
    /// instead of sleeping a whole day. Otherwise the provider's count wins over ours: the
    /// bucket is spent until the next reset.
    pub fn on_daily_refusal(
        &self,
        store: &Store,
        bucket: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let quota_date = pacific_date(now).to_string();
        let usage = store.bucket_usage(bucket, now, &quota_date)?;
        if usage.used_today <= 1 {
            let level = usage.backoff_level.min(6);
            let wait = STILL_REFUSED_BACKOFF.saturating_mul(1 << level);
            store.set_bucket_backoff(bucket, Some(now + duration_to_span(wait)), level + 1)
        } else {
            store.mark_bucket_exhausted(bucket, next_reset(now, self.reset_buffer))
        }
    }

    /// A per-minute refusal: wait for the provider's hint (or a minute) on that bucket.
    pub fn on_rate_limited(
        &self,
        store: &Store,
        bucket: &str,
        now: Timestamp,
        retry_after: Option<Duration>,
    ) -> Result<(), StoreError> {
        let wait = retry_after.unwrap_or(Duration::from_secs(60)).max(Duration::from_secs(1));
        let level = store
            .bucket_usage(bucket, now, &pacific_date(now).to_string())?
            .backoff_level;
        store.set_bucket_backoff(bucket, Some(now + duration_to_span(wait)), level)
    }

    /// A success: the bucket works, its "still refused" backoff is over.
    pub fn on_success(&self, store: &Store, bucket: &str, now: Timestamp) -> Result<(), StoreError> {
        let usage = store.bucket_usage(bucket, now, &pacific_date(now).to_string())?;
        if usage.backoff_level > 0 {
            store.set_bucket_backoff(bucket, None, 0)?;
        }
        Ok(())
    }
}
