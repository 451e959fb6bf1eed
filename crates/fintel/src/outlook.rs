//! The quota-aware finish estimate as the command line shows it: every bucket's requests left
//! today and per day (the buckets in effect: configured, merged where keys were learned to
//! share a project; disabled buckets give none), a batch's model requests
//! still to send, and [`fintel_time::quota_eta`] over them. `fintel plan`, the terminal
//! progress and `fintel batch status` all come through here.

use std::sync::Arc;

use anyhow::Result;
use fintel_engine::Bucket;
use fintel_store::{Batch, Store};
use fintel_time::{
    ahead_words, local_and_pacific, pacific_date, queued_eta, Ahead, BucketCapacity, QueuedBatch,
    QuotaEta,
};
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

/// The batches sharing the key pool with the requests each has left, for
/// [`fintel_time::queued_eta`].
pub fn batch_queue(store: &Store) -> Result<Vec<QueuedBatch>> {
    Ok(store
        .batch_queue()?
        .into_iter()
        .map(|(id, priority, created_at, requests)| QueuedBatch {
            id,
            priority,
            created_at,
            requests,
        })
        .collect())
}

/// When `batch` is expected to finish, or `None` when no key could send its requests, after
/// the other batches the key pool serves first (what [`Ahead`] says).
pub fn batch_eta(
    app: &App,
    store: &Store,
    batch: &Batch,
    now: Timestamp,
) -> Result<(Option<QuotaEta>, Ahead)> {
    let this = QueuedBatch {
        id: batch.id.clone(),
        priority: batch.priority,
        created_at: batch.created_at,
        requests: store.model_requests_left(&batch.id)?,
    };
    let (buckets, _) = crate::projects::effective_buckets(app, Some(store))?;
    let capacities = capacities(&buckets, Some(store), now)?;
    Ok(queued_eta(
        &batch_queue(store)?,
        &this,
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
    let (batch_id, created, priority) = (batch.id.clone(), batch.created_at, batch.priority);
    Box::new(move |now| {
        let this = QueuedBatch {
            id: batch_id.clone(),
            priority,
            created_at: created,
            requests: store.model_requests_left(&batch_id).ok()?,
        };
        // Read each time: a merge of keys that share a project moves the finish, and other
        // batches on the same keys come and go.
        let (effective, _) = fintel_engine::effective_buckets(&buckets, &store).ok()?;
        let capacities = capacities(&effective, Some(&store), now).ok()?;
        let queue = batch_queue(&store).ok()?;
        match queued_eta(&queue, &this, &capacities, now, buffer) {
            (Some(eta), ahead) => Some(with_ahead(describe(&eta, Some(created), now), &ahead)),
            (None, _) => Some("finish unknown: no usable key".to_string()),
        }
    })
}

/// An estimate in words followed by the other batches served first, if any.
pub fn with_ahead(words: String, ahead: &Ahead) -> String {
    match ahead_words(ahead) {
        Some(after) => format!("{words}, {after}"),
        None => words,
    }
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
