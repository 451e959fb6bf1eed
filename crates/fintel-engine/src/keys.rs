//! The key pool: API keys grouped into quota buckets (a Google Cloud project each), and the
//! decision of which bucket may send the next request.
//!
//! The decision is taken from the database ledger (SPEC.md section 3): a request is granted
//! only by writing its ledger row in the same statement that checks the bucket's limits, so the
//! limits hold across crashes and across processes sharing the data directory.
//!
//! The buckets in use are the configured ones with those whose keys the provider showed to
//! share a Google Cloud project merged ([`crate::projects`]); the pool re-plans them whenever
//! the database learned something new, so every process sharing it uses the same buckets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use fintel_llm::ApiKey;
use fintel_store::{
    BucketLimits, BucketUsage, CallIntent, LedgerMark, ReserveMode, Store, StoreError,
};
use fintel_time::{duration_to_span, next_reset, pacific_date, pacific_day_start};

use crate::outcome::{daily_refusal, DailyVerdict, DayContext};
use crate::projects::{apply_merges, plan_merges, project_of_merged_bucket, Merge};
use jiff::Timestamp;

/// A quota bucket: the keys that share one project's quota, and its limits.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub name: String,
    pub keys: Vec<ApiKey>,
    pub limits: BucketLimits,
}

impl Bucket {
    /// Its keys' fingerprints, whose ledger rows make up its counts.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(ApiKey::fingerprint).collect()
    }
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
    /// The request is larger than any bucket's input-tokens-per-minute cap: it can never be
    /// sent as it is and must be made smaller.
    TooLarge { cap: u64 },
}

/// Why a request must wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// Per-minute limits or a retry hint: seconds away.
    Pacing,
    /// Every bucket's daily quota is spent until the reset.
    DailyQuotaSpent,
    /// Every bucket is spent or refused early in its quota day: the provider has not reset
    /// yet, and a bucket tries again (one request) at the wait's end.
    NotResetYet,
    /// Every key is disabled.
    NoUsableKey,
}

/// Why one bucket cannot send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BucketWait {
    Spent,
    NotResetYet,
    Pacing,
}

/// The buckets in use: the configured ones, with the buckets whose keys share a Google Cloud
/// project merged (see [`crate::projects`]).
#[derive(Debug)]
pub struct Layout {
    pub buckets: Vec<Bucket>,
    /// The merges applied to the configured buckets.
    pub merges: Vec<Merge>,
    /// Each bucket's key fingerprints, in the order of its keys: computed once, since every
    /// request's decision compares them with the disabled keys.
    fingerprints: Vec<Vec<String>>,
}

impl Layout {
    fn new(configured: &[Bucket], merges: Vec<Merge>) -> Layout {
        let buckets = apply_merges(configured, &merges);
        let fingerprints = buckets
            .iter()
            .map(|b| b.keys.iter().map(ApiKey::fingerprint).collect())
            .collect();
        Layout {
            buckets,
            merges,
            fingerprints,
        }
    }
}

/// The configured buckets with what the database knows about projects applied, read only:
/// for commands that show buckets without running a batch.
pub fn effective_buckets(
    configured: &[Bucket],
    store: &Store,
) -> Result<(Vec<Bucket>, Vec<Merge>), StoreError> {
    let merges = planned_merges(configured, store)?;
    Ok((apply_merges(configured, &merges), merges))
}

fn planned_merges(configured: &[Bucket], store: &Store) -> Result<Vec<Merge>, StoreError> {
    let learned: BTreeMap<String, String> = store
        .key_projects()?
        .into_iter()
        .map(|k| (k.fingerprint, k.project))
        .collect();
    if learned.is_empty() {
        return Ok(Vec::new());
    }
    // A project whose bucket exists (some process merged it) takes this process's keys of
    // it too, even when this process has only one of them.
    let mut merged_already: BTreeSet<String> = store
        .keys()?
        .iter()
        .filter_map(|k| project_of_merged_bucket(&k.bucket).map(str::to_string))
        .collect();
    merged_already.extend(store.merged_projects()?);
    Ok(plan_merges(configured, &learned, &merged_already))
}

/// All the buckets of a run.
#[derive(Debug)]
pub struct KeyPool {
    /// The buckets as configured; the layout in use derives from them.
    configured: Vec<Bucket>,
    layout: RwLock<Arc<Layout>>,
    /// The store's projects version the layout was planned from.
    projects_seen: Mutex<Option<(i64, i64)>>,
    reset_buffer: Duration,
    rotation: AtomicUsize,
    /// A local server without keys: one bucket whose requests need no key.
    keyless: bool,
    /// The smallest request a committing decision had to pace, and until when no bucket can
    /// take it (see [`KeyPool::pacing_hold`]).
    hold: Mutex<Option<PacingHold>>,
    /// Bucket standings read from the ledger, for tests that pin the cost of a decision.
    standing_reads: AtomicU64,
}

/// What a paced request taught the pool: no bucket can take `tokens` before `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PacingHold {
    until: Timestamp,
    tokens: u64,
    /// Where the ledger stood when it was learned, if no bucket's wait then depended on calls
    /// in flight (see [`wait_is_settled`]): while the ledger stands there, the wait is known
    /// without reading a bucket again.
    known: Option<LedgerMark>,
}

/// The hold after a committing decision for a request of `tokens` answered `wait`: a pacing
/// wait for a request of some size is a fact about every request at least that size until the
/// wait ends, so the smaller request's hold is kept (the later one on a tie: it read the
/// newer ledger). Waits of other kinds are not held: they last until a reset, and a key
/// enabled meanwhile must be usable at once.
fn next_hold(
    old: Option<PacingHold>,
    now: Timestamp,
    tokens: u64,
    wait: Option<(Timestamp, WaitReason)>,
    known: Option<LedgerMark>,
) -> Option<PacingHold> {
    let old = old.filter(|h| h.until > now);
    match wait {
        Some((until, WaitReason::Pacing)) if tokens > 0 && until > now => match old {
            Some(h) if h.tokens < tokens => Some(h),
            _ => Some(PacingHold {
                until,
                tokens,
                known,
            }),
        },
        _ => old,
    }
}

/// Whether the hold answers "may a request of its size go now?" (no) without a look at the
/// buckets: it is still running and the ledger stands where it stood when the hold was
/// learned, so every bucket waits as it did then. Until its wait ends a bucket's answer
/// changes only by a write that frees quota or changes a wait (a refund, a refused call, a
/// bucket's wait, a key, a merge: each moves the mark) or by another process's commit (moves
/// the mark too); more requests sent only make the wait longer.
fn hold_answers(hold: Option<PacingHold>, now: Timestamp, mark: LedgerMark) -> bool {
    hold.is_some_and(|h| h.until > now && h.known == Some(mark))
}

impl KeyPool {
    pub fn new(buckets: Vec<Bucket>, reset_buffer: Duration) -> Self {
        let keyless = buckets.iter().all(|b| b.keys.is_empty());
        KeyPool {
            layout: RwLock::new(Arc::new(Layout::new(&buckets, Vec::new()))),
            configured: buckets,
            projects_seen: Mutex::new(None),
            reset_buffer,
            rotation: AtomicUsize::new(0),
            keyless,
            hold: Mutex::new(None),
            standing_reads: AtomicU64::new(0),
        }
    }

    /// The buckets in use (configured, merged by project where known).
    pub fn buckets(&self) -> Vec<Bucket> {
        self.layout().buckets.clone()
    }

    /// The layout in use.
    pub fn layout(&self) -> Arc<Layout> {
        self.layout
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The time after Pacific midnight that a reset is trusted to have happened.
    pub fn reset_buffer(&self) -> Duration {
        self.reset_buffer
    }

    /// The bucket in use that holds `key`, if any.
    pub fn bucket_of_key(&self, key: &ApiKey) -> Option<String> {
        let fingerprint = key.fingerprint();
        let layout = self.layout();
        layout
            .fingerprints
            .iter()
            .position(|fps| fps.contains(&fingerprint))
            .map(|i| layout.buckets[i].name.clone())
    }

    /// The fingerprints of the keys of the bucket in use named `bucket` (none if there is no
    /// such bucket, or it has no key).
    pub fn bucket_keys(&self, bucket: &str) -> Vec<String> {
        let layout = self.layout();
        layout
            .buckets
            .iter()
            .position(|b| b.name == bucket)
            .map(|i| layout.fingerprints[i].clone())
            .unwrap_or_default()
    }

    /// The limits of the configured buckets named `names`.
    pub fn configured_limits(&self, names: &[String]) -> Vec<BucketLimits> {
        self.configured
            .iter()
            .filter(|b| names.contains(&b.name))
            .map(|b| b.limits)
            .collect()
    }

    /// Re-plans the buckets when the database learned something about projects since the
    /// last look (one cached read otherwise): merges buckets whose keys share a project, in
    /// the database too, so the merged bucket counts every request of its project. True when
    /// the layout changed.
    pub fn refresh(&self, store: &Store) -> Result<bool, StoreError> {
        if self.keyless {
            return Ok(false);
        }
        let version = store.projects_version()?;
        let mut seen = self.projects_seen.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == Some(version) {
            return Ok(false);
        }
        let merges = planned_merges(&self.configured, store)?;
        for m in &merges {
            store.merge_buckets(&m.into, &m.members)?;
        }
        for b in apply_merges(&self.configured, &merges) {
            for k in &b.keys {
                store.register_key(&k.fingerprint(), k.label(), &b.name)?;
            }
        }
        *seen = Some(version);
        let mut layout = self.layout.write().unwrap_or_else(|p| p.into_inner());
        let changed = layout.merges != merges;
        if changed {
            *layout = Arc::new(Layout::new(&self.configured, merges));
        }
        Ok(changed)
    }

    /// The largest request any bucket could ever accept (its tokens-per-minute cap).
    pub fn max_request_tokens(&self) -> u64 {
        self.layout()
            .buckets
            .iter()
            .map(|b| b.limits.input_tokens_per_minute)
            .max()
            .unwrap_or(0)
    }

    /// The largest request every bucket accepts (the smallest tokens-per-minute cap): what a
    /// packed request is fitted to, so any bucket may take it.
    pub fn min_request_tokens(&self) -> u64 {
        self.layout()
            .buckets
            .iter()
            .map(|b| b.limits.input_tokens_per_minute)
            .min()
            .unwrap_or(0)
    }

    /// Records every key (fingerprint and masked label only) in the database.
    pub fn register(&self, store: &Store) -> Result<(), StoreError> {
        // Under the buckets in effect, so that a key of a merged bucket stays in it.
        self.refresh(store)?;
        for b in &self.layout().buckets {
            for k in &b.keys {
                store.register_key(&k.fingerprint(), k.label(), &b.name)?;
            }
            if b.keys.is_empty() {
                store.register_key(&format!("keyless:{}", b.name), "no key", &b.name)?;
            }
        }
        Ok(())
    }

    /// Indices (into `bucket.keys`) of the bucket's keys that are not disabled.
    fn usable_key_indices(layout: &Layout, bucket_index: usize, disabled: &[String]) -> Vec<usize> {
        layout.fingerprints[bucket_index]
            .iter()
            .enumerate()
            .filter(|(_, fp)| !disabled.contains(fp))
            .map(|(i, _)| i)
            .collect()
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
        let (grant, settled) = self.decide(store, now, intent, commit)?;
        if commit {
            let wait = match &grant {
                Grant::Wait { until, why } => Some((*until, *why)),
                _ => None,
            };
            let known = match wait {
                Some((_, WaitReason::Pacing)) if settled => Some(store.ledger_mark()?),
                _ => None,
            };
            let mut hold = self.hold.lock().unwrap_or_else(|p| p.into_inner());
            *hold = next_hold(*hold, now, intent.input_tokens, wait, known);
        }
        Ok(grant)
    }

    /// Whether model work may be claimed now: whether a request of the [`pacing_hold`] size
    /// could go. While a tokens-per-minute cap paces every bucket the runner asks this on
    /// every wake (each task that ends); the pool answers from the hold it learned when
    /// nothing happened since that could change it ([`hold_answers`]), else by a dry run
    /// over the buckets. Either way the rotation moves on by one, so the buckets are tried
    /// in the same order as if every wake had looked.
    ///
    /// [`pacing_hold`]: KeyPool::pacing_hold
    pub fn may_send(&self, store: &Store, now: Timestamp) -> Result<bool, StoreError> {
        let hold = *self.hold.lock().unwrap_or_else(|p| p.into_inner());
        let active = hold.filter(|h| h.until > now);
        if active.is_some_and(|h| h.known.is_some())
            && hold_answers(active, now, store.ledger_mark()?)
        {
            self.rotation.fetch_add(1, Ordering::Relaxed);
            return Ok(false);
        }
        let intent = CallIntent {
            bucket: "",
            key_fingerprint: None,
            bucket_keys: &[],
            batch_id: None,
            task_id: None,
            purpose: fintel_store::CallPurpose::Generate,
            input_tokens: active.map_or(0, |h| h.tokens),
        };
        Ok(matches!(
            self.acquire(store, now, &intent, false)?,
            Grant::Granted { .. }
        ))
    }

    /// The size of request to ask a dry run about before claiming model work: 0 (any request)
    /// unless a request was paced moments ago, then the smallest one paced, until its wait
    /// ends. Without it, while a tokens-per-minute cap paces every bucket, each claim would
    /// prepare a request only to learn what the last one learned, and every pending task
    /// would be claimed and put back on every wake.
    pub fn pacing_hold(&self, now: Timestamp) -> u64 {
        self.hold
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .filter(|h| h.until > now)
            .map_or(0, |h| h.tokens)
    }

    /// How many bucket standings the pool has read from the ledger.
    pub fn standing_reads(&self) -> u64 {
        self.standing_reads.load(Ordering::Relaxed)
    }

    /// The decision, and whether a wait it answers is settled: no bucket's wait depended on
    /// calls in flight or on a race with another process (see [`wait_is_settled`]).
    fn decide(
        &self,
        store: &Store,
        now: Timestamp,
        intent: &CallIntent<'_>,
        commit: bool,
    ) -> Result<(Grant, bool), StoreError> {
        self.refresh(store)?;
        let layout = self.layout();
        let cap = self.max_request_tokens();
        if intent.input_tokens > cap {
            return Ok((Grant::TooLarge { cap }, false));
        }
        let today = pacific_date(now);
        let quota_date = today.to_string();
        let reset = next_reset(now, self.reset_buffer);
        // Within the buffer after midnight, a bucket that spent yesterday's quota waits for
        // midnight plus the buffer, though the new day's ledger already reads zero.
        let todays_reset = pacific_day_start(today) + duration_to_span(self.reset_buffer);
        let yesterday = (now < todays_reset)
            .then(|| today.yesterday().ok())
            .flatten()
            .map(|d| d.to_string());
        let n = layout.buckets.len();
        let start = self.rotation.fetch_add(1, Ordering::Relaxed);
        let mut earliest: Option<Timestamp> = None;
        let mut any_usable = false;
        let mut largest_usable_cap = 0;
        let mut any_fits = false;
        let mut any_pacing = false;
        let mut any_not_reset = false;
        let mut settled = true;
        // Read once per decision, not once per bucket: this runs before every request.
        let disabled = if self.keyless {
            Vec::new()
        } else {
            store.disabled_key_fingerprints()?
        };
        for i in 0..n {
            let index = (start + i) % n;
            let bucket = &layout.buckets[index];
            let keys = Self::usable_key_indices(&layout, index, &disabled);
            if keys.is_empty() && !self.keyless {
                continue;
            }
            any_usable = true;
            let limits = &bucket.limits;
            largest_usable_cap = largest_usable_cap.max(limits.input_tokens_per_minute);
            // A request over this bucket's cap could never pass here: the bucket is not a
            // candidate at all, so it is neither waited for nor polled.
            if intent.input_tokens > limits.input_tokens_per_minute {
                continue;
            }
            any_fits = true;
            self.standing_reads.fetch_add(1, Ordering::Relaxed);
            let bucket_keys = &layout.fingerprints[index];
            let usage = store.bucket_standing(&bucket.name, bucket_keys, now, &quota_date)?;
            let spent_yesterday = match &yesterday {
                Some(date) => {
                    self.standing_reads.fetch_add(1, Ordering::Relaxed);
                    store
                        .bucket_standing(&bucket.name, bucket_keys, now, date)?
                        .used_today
                        >= limits.requests_per_day
                }
                None => false,
            };
            let (wake, mode) = bucket_decision(
                &usage,
                limits,
                intent.input_tokens,
                now,
                reset,
                spent_yesterday.then_some(todays_reset),
            );
            if let Some((t, why)) = wake {
                settled &= wait_is_settled(&usage, limits);
                match why {
                    BucketWait::Spent => {}
                    BucketWait::NotResetYet => any_not_reset = true,
                    BucketWait::Pacing => any_pacing = true,
                }
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
                continue;
            }
            if !commit {
                return Ok((
                    Grant::Granted {
                        call_id: 0,
                        bucket: bucket.name.clone(),
                        key: None,
                    },
                    false,
                ));
            }
            let chosen = (!keys.is_empty()).then(|| keys[start % keys.len()]);
            let key = chosen.map(|k| bucket.keys[k].clone());
            let fingerprint = chosen.map(|k| layout.fingerprints[index][k].as_str());
            let intent = CallIntent {
                bucket: &bucket.name,
                key_fingerprint: fingerprint,
                bucket_keys,
                ..intent.clone()
            };
            match store.reserve_call_as(&intent, limits, now, &quota_date, mode)? {
                Some(call_id) => {
                    return Ok((
                        Grant::Granted {
                            call_id,
                            bucket: bucket.name.clone(),
                            key,
                        },
                        false,
                    ))
                }
                // Another process took the last slot between our read and our write.
                None => {
                    settled = false;
                    any_pacing = true;
                    let t = now + duration_to_span(Duration::from_secs(1));
                    earliest = Some(earliest.map_or(t, |e| e.min(t)));
                }
            }
        }
        if !any_usable {
            return Ok((
                Grant::Wait {
                    until: reset,
                    why: WaitReason::NoUsableKey,
                },
                false,
            ));
        }
        if !any_fits {
            return Ok((
                Grant::TooLarge {
                    cap: largest_usable_cap,
                },
                false,
            ));
        }
        let grant = Grant::Wait {
            until: earliest.unwrap_or(reset),
            why: if any_pacing {
                WaitReason::Pacing
            } else if any_not_reset {
                WaitReason::NotResetYet
            } else {
                WaitReason::DailyQuotaSpent
            },
        };
        Ok((grant, settled))
    }

    /// Some key the provider may be asked with for free calls (token counts): the first
    /// bucket's first usable key.
    pub fn any_usable_key(&self, store: &Store) -> Result<Option<ApiKey>, StoreError> {
        let disabled = store.disabled_key_fingerprints()?;
        let layout = self.layout();
        Ok((0..layout.buckets.len()).find_map(|b| {
            Self::usable_key_indices(&layout, b, &disabled)
                .first()
                .map(|&k| layout.buckets[b].keys[k].clone())
        }))
    }

    /// The provider refused for the day. Early in the quota day with nothing answered yet it
    /// has not reset: the bucket backs off (5 minutes, doubling) and tries one request at a
    /// time. Otherwise the provider's count wins over ours: the bucket is spent until the next
    /// reset. Returns the verdict, for the runner to tell the user.
    pub fn on_daily_refusal(
        &self,
        store: &Store,
        bucket: &str,
        now: Timestamp,
    ) -> Result<DailyVerdict, StoreError> {
        let today = pacific_date(now);
        let usage =
            store.bucket_standing(bucket, &self.bucket_keys(bucket), now, &today.to_string())?;
        let requests_per_day = self
            .layout()
            .buckets
            .iter()
            .find(|b| b.name == bucket)
            .map_or(u32::MAX, |b| b.limits.requests_per_day);
        let verdict = daily_refusal(&DayContext {
            now,
            day_start: pacific_day_start(today),
            answered_today: usage.answered_today,
            counted_today: usage.used_today,
            requests_per_day,
            backoff_level: usage.backoff_level,
            next_reset: next_reset(now, self.reset_buffer),
        });
        match verdict {
            DailyVerdict::NotResetYet { until, level } => {
                store.set_bucket_backoff(bucket, Some(until), level)?
            }
            DailyVerdict::Spent { until } => {
                store.set_bucket_backoff(bucket, None, 0)?;
                store.mark_bucket_exhausted(bucket, until)?
            }
        }
        Ok(verdict)
    }

    /// A per-minute refusal: wait for the provider's hint (or a minute) on that bucket.
    pub fn on_rate_limited(
        &self,
        store: &Store,
        bucket: &str,
        now: Timestamp,
        retry_after: Option<Duration>,
    ) -> Result<(), StoreError> {
        let wait = retry_after
            .unwrap_or(Duration::from_secs(60))
            .max(Duration::from_secs(1));
        let level = store
            .bucket_standing(
                bucket,
                &self.bucket_keys(bucket),
                now,
                &pacific_date(now).to_string(),
            )?
            .backoff_level;
        store.set_bucket_backoff(bucket, Some(now + duration_to_span(wait)), level)
    }

    /// A success: the bucket works, its "still refused" backoff is over.
    pub fn on_success(
        &self,
        store: &Store,
        bucket: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let usage = store.bucket_standing(
            bucket,
            &self.bucket_keys(bucket),
            now,
            &pacific_date(now).to_string(),
        )?;
        if usage.backoff_level > 0 {
            store.set_bucket_backoff(bucket, None, 0)?;
        }
        Ok(())
    }
}

/// Whether a bucket's wait (as [`bucket_decision`] answers it) stands until its end whatever
/// the calls in flight answer: false when the bucket is spent only by uncertain requests or
/// still refused after a reset, where an answer arriving changes the decision.
fn wait_is_settled(usage: &BucketUsage, limits: &BucketLimits) -> bool {
    usage.backoff_level == 0
        && !(usage.used_today >= limits.requests_per_day && usage.uncertain_today > 0)
}

/// Whether one bucket may send a request of `input_tokens` now, and in which mode; or until
/// when it must wait and why. `spent_yesterday_until` is set within the reset buffer after
/// midnight when the bucket spent the previous day.
fn bucket_decision(
    usage: &BucketUsage,
    limits: &BucketLimits,
    input_tokens: u64,
    now: Timestamp,
    reset: Timestamp,
    spent_yesterday_until: Option<Timestamp>,
) -> (Option<(Timestamp, BucketWait)>, ReserveMode) {
    let mut mode = ReserveMode::Normal;
    if let Some(t) = usage.exhausted_until {
        return (Some((t, BucketWait::Spent)), mode);
    }
    if let Some(t) = spent_yesterday_until {
        return (Some((t, BucketWait::Spent)), mode);
    }
    if usage.used_today >= limits.requests_per_day {
        // Spent by the local count. If only the uncertain requests make it so, the provider
        // may not have counted them: ask it, one request at a time, until it refuses.
        let answered_or_flying = usage.used_today - usage.uncertain_today + usage.in_flight;
        if usage.uncertain_today == 0 || answered_or_flying >= limits.requests_per_day {
            return (Some((reset, BucketWait::Spent)), mode);
        }
        if usage.in_flight > 0 {
            let t = now + duration_to_span(Duration::from_secs(5));
            return (Some((t, BucketWait::Pacing)), mode);
        }
        mode = ReserveMode::OneAtATime;
    }
    if usage.backoff_level > 0 {
        // Refused early in the quota day: the provider has not reset yet.
        if let Some(t) = usage.backoff_until {
            return (Some((t, BucketWait::NotResetYet)), mode);
        }
        if usage.in_flight > 0 {
            let t = now + duration_to_span(Duration::from_secs(5));
            return (Some((t, BucketWait::NotResetYet)), mode);
        }
        mode = ReserveMode::OneAtATime;
    }
    if let Some(t) = usage.backoff_until {
        return (Some((t, BucketWait::Pacing)), mode);
    }
    if usage.sent_last_minute >= limits.requests_per_minute
        || usage.tokens_last_minute + input_tokens > limits.input_tokens_per_minute
    {
        let t = usage
            .window_frees_at
            .unwrap_or(now + duration_to_span(Duration::from_secs(1)));
        return (Some((t, BucketWait::Pacing)), mode);
    }
    (None, mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fintel_store::CallPurpose;

    fn pool_of(buckets: usize, keys_per_bucket: usize) -> KeyPool {
        let limits = BucketLimits {
            requests_per_day: 2,
            requests_per_minute: 100,
            input_tokens_per_minute: 1_000,
        };
        KeyPool::new(
            (0..buckets)
                .map(|b| Bucket {
                    name: format!("project-{b}"),
                    keys: (0..keys_per_bucket)
                        .map(|k| {
                            ApiKey::new(
                                &format!("KEY_{b}_{k}"),
                                format!("AIzaUnitTestKey-{b}-{k}-abcdefghijkl"),
                            )
                        })
                        .collect(),
                    limits,
                })
                .collect(),
            Duration::from_secs(300),
        )
    }

    fn intent(tokens: u64) -> CallIntent<'static> {
        CallIntent {
            bucket: "",
            key_fingerprint: None,
            bucket_keys: &[],
            batch_id: None,
            task_id: None,
            purpose: CallPurpose::Generate,
            input_tokens: tokens,
        }
    }

    fn noon() -> Timestamp {
        "2026-06-15T19:00:00Z".parse().unwrap()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("fintel.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn a_bucket_spent_yesterday_waits_for_midnight_plus_the_buffer() {
        let (_dir, db) = store();
        let pool = pool_of(1, 1);
        pool.register(&db).unwrap();
        // 23:50 and 23:55 Pacific on 2026-06-15 spend the 2 requests of that day.
        for t in ["2026-06-16T06:50:00Z", "2026-06-16T06:55:00Z"] {
            let now: Timestamp = t.parse().unwrap();
            assert!(matches!(
                pool.acquire(&db, now, &intent(10), true).unwrap(),
                Grant::Granted { .. }
            ));
        }
        // 00:01 Pacific: the new day's ledger is empty, but the reset has its buffer.
        let just_after: Timestamp = "2026-06-16T07:01:00Z".parse().unwrap();
        match pool.acquire(&db, just_after, &intent(10), false).unwrap() {
            Grant::Wait { until, why } => {
                assert_eq!(until, "2026-06-16T07:05:00Z".parse::<Timestamp>().unwrap());
                assert_eq!(why, WaitReason::DailyQuotaSpent);
            }
            other => panic!("{other:?}"),
        }
        let after_buffer: Timestamp = "2026-06-16T07:05:00Z".parse().unwrap();
        assert!(matches!(
            pool.acquire(&db, after_buffer, &intent(10), true).unwrap(),
            Grant::Granted { .. }
        ));
        // A bucket that did not spend yesterday's quota need not wait.
        let (_dir2, fresh) = store();
        pool.register(&fresh).unwrap();
        assert!(matches!(
            pool.acquire(&fresh, just_after, &intent(10), true).unwrap(),
            Grant::Granted { .. }
        ));
    }

    #[test]
    fn disabled_keys_are_never_granted_and_all_disabled_means_no_usable_key() {
        let (_dir, store) = store();
        let pool = pool_of(2, 2);
        pool.register(&store).unwrap();
        let off = |b: usize, k: usize| pool.buckets()[b].keys[k].fingerprint();
        store
            .disable_key(&off(0, 0), "API_KEY_INVALID", noon())
            .unwrap();
        store
            .disable_key(&off(0, 1), "API_KEY_INVALID", noon())
            .unwrap();
        store
            .disable_key(&off(1, 0), "API_KEY_INVALID", noon())
            .unwrap();
        // Only KEY_1_1 is left: every grant goes to it, and the ledger row names it.
        for _ in 0..2 {
            match pool.acquire(&store, noon(), &intent(10), true).unwrap() {
                Grant::Granted {
                    bucket,
                    key,
                    call_id,
                } => {
                    assert_eq!(bucket, "project-1");
                    let key = key.unwrap();
                    assert_eq!(key.fingerprint(), off(1, 1));
                    let fp: String = store
                        .conn()
                        .query_row(
                            "SELECT key_fingerprint FROM calls WHERE id = ?1",
                            [call_id],
                            |r| r.get(0),
                        )
                        .unwrap();
                    assert_eq!(fp, off(1, 1));
                }
                other => panic!("expected a grant, got {other:?}"),
            }
        }
        // Its bucket's day is spent; the other bucket has no usable key.
        match pool.acquire(&store, noon(), &intent(10), true).unwrap() {
            Grant::Wait { why, .. } => assert_eq!(why, WaitReason::DailyQuotaSpent),
            other => panic!("expected a wait, got {other:?}"),
        }
        store
            .disable_key(&off(1, 1), "PERMISSION_DENIED", noon())
            .unwrap();
        match pool.acquire(&store, noon(), &intent(10), true).unwrap() {
            Grant::Wait { why, .. } => assert_eq!(why, WaitReason::NoUsableKey),
            other => panic!("expected a wait, got {other:?}"),
        }
    }

    #[test]
    fn a_pacing_wait_holds_requests_at_least_its_size_until_it_ends() {
        let t0 = noon();
        let t = |s: i64| t0 + jiff::SignedDuration::from_secs(s);
        let hold = |until: i64, tokens: u64| {
            Some(PacingHold {
                until: t(until),
                tokens,
                known: None,
            })
        };
        let pacing = |until: i64| Some((t(until), WaitReason::Pacing));
        type Hold = Option<PacingHold>;
        type Case = (
            &'static str,
            Hold,
            u64,
            Option<(Timestamp, WaitReason)>,
            Hold,
        );
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("a grant learns nothing", None, 800, None, None),
            ("a grant keeps the hold", hold(30, 800), 100, None, hold(30, 800)),
            ("a paced request holds its size", None, 800, pacing(30), hold(30, 800)),
            ("a smaller paced request holds the smaller size", hold(30, 800), 500, pacing(20), hold(20, 500)),
            ("a larger one says nothing new", hold(30, 500), 800, pacing(40), hold(30, 500)),
            ("the same size: the newer reading", hold(30, 800), 800, pacing(45), hold(45, 800)),
            ("an ended hold is gone", hold(0, 500), 800, pacing(40), hold(40, 800)),
            ("an ended hold is gone on a grant", hold(-5, 500), 100, None, None),
            ("a daily wait is not held", None, 800, Some((t(3600), WaitReason::DailyQuotaSpent)), None),
            ("nor a late reset", None, 800, Some((t(300), WaitReason::NotResetYet)), None),
            ("a dry size of zero is not held", None, 0, pacing(30), None),
        ];
        for (what, old, tokens, wait, want) in cases {
            assert_eq!(next_hold(*old, t0, *tokens, *wait, None), *want, "{what}");
        }
        // The ledger's mark goes with a new hold, and a kept hold keeps its own.
        let mark = |epoch: u64| LedgerMark {
            epoch,
            data_version: 1,
        };
        let new = next_hold(None, t0, 800, pacing(30), Some(mark(3))).unwrap();
        assert_eq!(new.known, Some(mark(3)));
        let kept = next_hold(Some(new), t0, 900, pacing(40), Some(mark(4))).unwrap();
        assert_eq!((kept.tokens, kept.known), (800, Some(mark(3))));
    }

    #[test]
    fn a_hold_answers_without_a_look_only_while_the_ledger_stands_where_it_was_learned() {
        let t0 = noon();
        let t = |s: i64| t0 + jiff::SignedDuration::from_secs(s);
        let mark = |epoch: u64, data_version: i64| LedgerMark {
            epoch,
            data_version,
        };
        let hold = |until: i64, known: Option<LedgerMark>| {
            Some(PacingHold {
                until: t(until),
                tokens: 800,
                known,
            })
        };
        #[rustfmt::skip]
        let cases: &[(&str, Option<PacingHold>, i64, LedgerMark, bool)] = &[
            ("no hold", None, 0, mark(1, 1), false),
            ("a running hold, nothing changed", hold(30, Some(mark(1, 1))), 10, mark(1, 1), true),
            ("its wait has ended", hold(30, Some(mark(1, 1))), 30, mark(1, 1), false),
            ("this process freed quota or changed a wait", hold(30, Some(mark(1, 1))), 10, mark(2, 1), false),
            ("another process committed", hold(30, Some(mark(1, 1))), 10, mark(1, 2), false),
            ("learned while a wait hung on calls in flight", hold(30, None), 10, mark(1, 1), false),
        ];
        for (what, h, at, now_mark, want) in cases {
            assert_eq!(hold_answers(*h, t(*at), *now_mark), *want, "{what}");
        }
    }

    #[test]
    fn a_wait_is_settled_unless_an_answer_in_flight_could_change_it() {
        let limits = BucketLimits {
            requests_per_day: 20,
            requests_per_minute: 5,
            input_tokens_per_minute: 1_000,
        };
        let usage = |used: u32, uncertain: u32, level: u32| BucketUsage {
            used_today: used,
            answered_today: used - uncertain,
            uncertain_today: uncertain,
            in_flight: uncertain,
            sent_last_minute: 5,
            tokens_last_minute: 900,
            window_frees_at: None,
            exhausted_until: None,
            backoff_until: None,
            backoff_level: level,
        };
        #[rustfmt::skip]
        let cases: &[(&str, BucketUsage, bool)] = &[
            ("paced by the minute, calls in flight", usage(7, 2, 0), true),
            ("spent by answered requests", usage(20, 0, 0), true),
            ("spent only with uncertain ones among them", usage(20, 1, 0), false),
            ("still refused after a reset", usage(0, 0, 1), false),
        ];
        for (what, u, want) in cases {
            assert_eq!(wait_is_settled(u, &limits), *want, "{what}");
        }
    }

    #[test]
    fn while_a_settled_hold_runs_a_wake_reads_no_bucket_and_a_refund_makes_it_look_again() {
        let (_dir, store) = store();
        let pool = pool_of(3, 1);
        pool.register(&store).unwrap();
        let big = |tokens: u64| CallIntent {
            input_tokens: tokens,
            ..intent(0)
        };
        let mut first = 0;
        for i in 0..3 {
            match pool.acquire(&store, noon(), &big(800), true).unwrap() {
                Grant::Granted { call_id, .. } if i == 0 => first = call_id,
                Grant::Granted { .. } => {}
                other => panic!("{other:?}"),
            }
        }
        let later = noon() + jiff::SignedDuration::from_secs(10);
        assert!(matches!(
            pool.acquire(&store, later, &big(800), true).unwrap(),
            Grant::Wait {
                why: WaitReason::Pacing,
                ..
            }
        ));
        let reads = pool.standing_reads();
        let turn = pool.rotation.load(Ordering::Relaxed);
        assert!(!pool.may_send(&store, later).unwrap());
        assert!(!pool.may_send(&store, later).unwrap());
        assert_eq!(pool.standing_reads(), reads, "the hold answered");
        assert_eq!(
            pool.rotation.load(Ordering::Relaxed),
            turn + 2,
            "the rotation moves on as if the buckets had been read"
        );
        // A refund frees a bucket's minute: the next wake looks, and may send.
        store.refund_call(first, "never sent").unwrap();
        assert!(pool.may_send(&store, later).unwrap());
        assert!(pool.standing_reads() > reads);
    }

    #[test]
    fn a_paced_grant_makes_the_next_dry_run_ask_for_its_size_until_the_window_frees() {
        let (_dir, store) = store();
        let pool = pool_of(1, 1);
        pool.register(&store).unwrap();
        assert_eq!(pool.pacing_hold(noon()), 0, "nothing learned yet");
        assert!(matches!(
            pool.acquire(&store, noon(), &intent(800), true).unwrap(),
            Grant::Granted { .. }
        ));
        let later = noon() + jiff::SignedDuration::from_secs(10);
        // The minute's tokens leave no room for another 800: paced until the first leaves.
        let until = match pool.acquire(&store, later, &intent(800), true).unwrap() {
            Grant::Wait { until, why } => {
                assert_eq!(why, WaitReason::Pacing);
                until
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(until, noon() + jiff::SignedDuration::from_secs(60));
        assert_eq!(pool.pacing_hold(later), 800);
        // A dry run of any size would say yes; one of the held size says to wait.
        assert!(matches!(
            pool.acquire(&store, later, &intent(0), false).unwrap(),
            Grant::Granted { .. }
        ));
        assert!(matches!(
            pool.acquire(&store, later, &intent(pool.pacing_hold(later)), false)
                .unwrap(),
            Grant::Wait { .. }
        ));
        // A dry run learns nothing: only a committing decision sets the hold.
        assert_eq!(pool.pacing_hold(later), 800);
        assert_eq!(pool.pacing_hold(until), 0, "the hold ends with its wait");
    }

    #[test]
    fn rotation_spreads_requests_over_buckets_and_a_dry_run_writes_nothing() {
        let (_dir, store) = store();
        let pool = pool_of(3, 1);
        pool.register(&store).unwrap();
        assert!(matches!(
            pool.acquire(&store, noon(), &intent(10), false).unwrap(),
            Grant::Granted { call_id: 0, .. }
        ));
        let rows: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM calls", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0, "a dry run reserves nothing");
        // A request larger than every bucket's per-minute token cap can never be sent: it is
        // reported as too large (to be fitted smaller), not paced for ever.
        match pool.acquire(&store, noon(), &intent(5_000), true).unwrap() {
            Grant::TooLarge { cap } => assert_eq!(cap, 1_000),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        let mut used = std::collections::HashMap::new();
        for _ in 0..6 {
            if let Grant::Granted { bucket, .. } =
                pool.acquire(&store, noon(), &intent(10), true).unwrap()
            {
                *used.entry(bucket).or_insert(0) += 1;
            }
        }
        assert_eq!(used.len(), 3, "{used:?}");
        assert!(used.values().all(|&n| n == 2), "{used:?}");
    }
}
