//! What the commands say about keys that share a Google Cloud project: the buckets in effect
//! (configured, merged where the provider named one project for several keys), each bucket's
//! project, the "spent elsewhere" state, and the capacity assumption that plans rest on.

use std::collections::BTreeMap;

use anyhow::Result;
use fintel_engine::projects::{project_of_merged_bucket, suggest_grouping, Grouping, Merge};
use fintel_engine::Bucket;
use fintel_store::Store;
use fintel_time::pacific_date;
use jiff::Timestamp;

use crate::app::App;

/// The buckets in effect: the configured ones with what the database learned about projects
/// applied (read only).
pub fn effective_buckets(app: &App, store: Option<&Store>) -> Result<(Vec<Bucket>, Vec<Merge>)> {
    match store {
        Some(store) => Ok(fintel_engine::effective_buckets(
            &app.config.buckets,
            store,
        )?),
        None => Ok((app.config.buckets.clone(), Vec::new())),
    }
}

/// Requests a day the buckets give together.
pub fn daily_capacity(buckets: &[Bucket]) -> u64 {
    fintel_engine::projects::daily_capacity(buckets)
}

/// The assumption every plan rests on, e.g. "25 keys in 25 projects, as configured or
/// learned: 500 requests a day", with where to change it.
pub fn capacity_line(buckets: &[Bucket]) -> String {
    let keys: usize = buckets.iter().map(|b| b.keys.len()).sum();
    format!(
        "{keys} key{} in {} project{}, as configured or learned: {} requests a day. Gemini \
         counts quota per Google Cloud project, not per key: keys made in one project share \
         its quota, so group them in fintel.toml ([[buckets]], see the README's \"Keys that \
         share a project\")",
        if keys == 1 { "" } else { "s" },
        buckets.len(),
        if buckets.len() == 1 { "" } else { "s" },
        daily_capacity(buckets),
    )
}

/// [`capacity_line`] for the configured provider: Google's project rule is only Gemini's; an
/// OpenAI-compatible server is limited by its own account or, locally, by its slots.
pub fn capacity_line_for(provider: crate::config::ProviderKind, buckets: &[Bucket]) -> String {
    if provider == crate::config::ProviderKind::Gemini {
        return capacity_line(buckets);
    }
    let keys: usize = buckets.iter().map(|b| b.keys.len()).sum();
    if keys == 0 {
        format!(
            "no key: a server that needs none (a local Ollama, vLLM or llama.cpp server); {} \
             requests a day as configured (FINTEL_REQUESTS_PER_DAY), and the server's slots \
             decide how many run at once",
            daily_capacity(buckets)
        )
    } else {
        format!(
            "{keys} key{}: {} requests a day as configured (FINTEL_REQUESTS_PER_DAY); the \
             server's own rate limits apply on top",
            if keys == 1 { "" } else { "s" },
            daily_capacity(buckets)
        )
    }
}

/// The project of each bucket, when known: learned from the provider for one of its keys.
pub fn bucket_projects(
    buckets: &[Bucket],
    store: Option<&Store>,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let learned: BTreeMap<String, String> = match store {
        Some(s) => s
            .key_projects()?
            .into_iter()
            .map(|k| (k.fingerprint, k.project))
            .collect(),
        None => BTreeMap::new(),
    };
    for b in buckets {
        let project = b
            .keys
            .iter()
            .find_map(|k| learned.get(&k.fingerprint()).cloned())
            .or_else(|| project_of_merged_bucket(&b.name).map(str::to_string));
        if let Some(p) = project {
            out.insert(b.name.clone(), p);
        }
    }
    Ok(out)
}

/// What today's per-day refusals say: buckets whose quota was spent elsewhere (with what they
/// had answered and their limit), and the grouping that would match when they add up to one
/// limit.
pub struct RefusalsToday {
    pub spent_elsewhere: BTreeMap<String, (u32, u32)>,
    pub grouping: Option<Grouping>,
}

pub fn refusals_today(
    buckets: &[Bucket],
    store: Option<&Store>,
    now: Timestamp,
) -> Result<RefusalsToday> {
    let mut spent_elsewhere = BTreeMap::new();
    let Some(store) = store else {
        return Ok(RefusalsToday {
            spent_elsewhere,
            grouping: None,
        });
    };
    let refusals = store.daily_refusals_on(&pacific_date(now).to_string())?;
    let mut with_keys = Vec::new();
    for r in refusals {
        if r.spent_elsewhere {
            spent_elsewhere.insert(r.bucket.clone(), (r.answered, r.requests_per_day));
        }
        let keys: Vec<String> = buckets
            .iter()
            .find(|b| b.name == r.bucket)
            .map(|b| b.keys.iter().map(|k| k.name().to_string()).collect())
            .unwrap_or_default();
        with_keys.push((r, keys));
    }
    Ok(RefusalsToday {
        spent_elsewhere,
        grouping: suggest_grouping(&with_keys),
    })
}
