//! The quota-aware finish estimate as the command line shows it: every bucket's requests left
//! today and per day (the buckets in effect: configured, merged where keys were learned to
//! share a project; disabled buckets give none), a batch's model requests
//! still to send, and [`fintel_time::quota_eta`] over them. `fintel plan`, the terminal
//! progress and `fintel batch status` all come through here.

use std::sync::Arc;

use anyhow::Result;
use fintel_engine::Bucket;
use fintel_store::{Batch, Store};
use fintel_time::{local_and_pacific, pacific_date, quota_eta, BucketCapacity, QuotaEta};
use jiff::Timestamp;

use crate::app::App;

/// Each configured bucket's capacity at `now`; without a database, every bucket is unused.
pub fn capacities(
    buckets: &[Bucket],
    store: Option<&Store>,
    now: Timestamp,
) -> Result<Vec<BucketCapacity>> {
    let date = pacific_date(now).to_string();
    let disabled: Vec<String> = match store {
        Some(s) => s.disabled_key_fingerprints()?,
        None => vec![],
    };
    let mut out = Vec::with_capacity(buckets.len());
    for b in buckets {
        let all_disabled =
            !b.keys.is_empty() && b.keys.iter().all(|k| disabled.contains(&k.fingerprint()));
        if all_disabled {
            out.push(BucketCapacity {
                left_today: 0,
                per_day: 0,
            });
            continue;
        }
        let (left_today, per_day) = match store {
            Some(s) => s.bucket_requests_left(&b.name, &b.fingerprints(), &b.limits, now, &date)?,
            None => {
                let per_day = u64::from(b.limits.requests_per_day);
                (per_day, per_day)
            }
        };
        out.push(BucketCapacity {
            left_today,
            per_day,
        });
    }
    Ok(out)
}

/// When `batch_id` is expected to finish, or `None` when no key could send its requests.
pub fn batch_eta(
    app: &App,
    store: &Store,
    batch_id: &str,
    now: Timestamp,
) -> Result<Option<QuotaEta>> {
    let requests = store.model_requests_left(batch_id)?;
    let (buckets, _) = crate::projects::effective_buckets(app, Some(store))?;
    let capacities = capacities(&buckets, Some(store), now)?;
    Ok(quota_eta(
        requests,
        &capacities,
        now,
        app.config.reset_buffer,
    ))
}

/// The terminal progress's estimator for one batch: the estimate in words at an instant, or
/// `None` when it cannot be read (the progress line then goes without it).
pub fn estimator(app: &App, store: Arc<Store>, batch: &Batch) -> crate::progress::Estimator {
    let buckets = app.config.buckets.clone();
    let buffer = app.config.reset_buffer;
    let (batch_id, created) = (batch.id.clone(), batch.created_at);
    Box::new(move |now| {
        let requests = store.model_requests_left(&batch_id).ok()?;
        // Read each time: a merge of keys that share a project moves the finish.
        let (effective, _) = fintel_engine::effective_buckets(&buckets, &store).ok()?;
        let capacities = capacities(&effective, Some(&store), now).ok()?;
        match quota_eta(requests, &capacities, now, buffer) {
            Some(eta) => Some(describe(&eta, Some(created), now)),
            None => Some("finish unknown: no usable key".to_string()),
        }
    })
}

/// An estimate in words for the terminal: "expected to finish today, within today's quota"
/// or "expected to finish on the quota day 2026-03-16 (quota day 15 of this batch)".
pub fn describe(eta: &QuotaEta, batch_created: Option<Timestamp>, now: Timestamp) -> String {
    if eta.quota_days <= 1 {
        return "expected to finish today, within today's quota".to_string();
    }
    let which = match batch_created {
        Some(start) => format!(
            "quota day {} of {}",
            fintel_time::quota_day_number(start, now).max(1),
            fintel_time::quota_day_number(start, eta.finish).max(1)
        ),
        None => format!("{} quota days from today", eta.quota_days - 1),
    };
    format!(
        "expected to finish on {} ({which}; that quota day opens {})",
        eta.finish_quota_date,
        local_and_pacific(eta.finish)
    )
}
