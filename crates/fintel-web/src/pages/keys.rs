//! Key buckets: masked key labels, requests used today against the limits, state and the next
//! reset. Limits come from the configuration; usage from the ledger in the database. Buckets
//! whose keys the provider showed to share a Google Cloud project are shown merged, with the
//! line that said so, and a bucket whose project quota was spent elsewhere says so.

use std::collections::BTreeMap;

use axum::extract::State;
use fintel_store::{bucket_state, BucketLimits, BucketState, BucketUsage};
use maud::{html, Markup};

use crate::format;
use crate::pages::{layout, state_badge, time_both, Nav};
use crate::queries::MERGED_BUCKET_PREFIX;
use crate::{PageError, Shared};

const REFRESH: u32 = 15;

/// One bucket as the page shows it.
struct BucketView {
    name: String,
    /// Masked label and, when disabled, why.
    keys: Vec<(String, Option<String>)>,
    limits: Option<BucketLimits>,
    usage: BucketUsage,
    /// The Google Cloud project of its keys, when the provider named it.
    project: Option<String>,
    /// Refused for the day after (answered, of limit) requests: spent elsewhere.
    spent_elsewhere: Option<(u32, u32)>,
    /// Sizes of the requests waiting for a bucket whose token cap fits them.
    waiting_tokens: Vec<u64>,
}

impl BucketView {
    /// The state word and its explanation.
    fn state(&self) -> (&'static str, String) {
        let all_disabled = !self.keys.is_empty() && self.keys.iter().all(|(_, d)| d.is_some());
        let state = bucket_state(
            &self.usage,
            self.limits,
            all_disabled,
            &self.waiting_tokens,
            self.spent_elsewhere,
        );
        let why = match state {
            BucketState::Disabled => {
                "every key of this bucket is disabled; fix the key, then `fintel keys enable LABEL`"
                    .to_string()
            }
            BucketState::SpentElsewhere { answered, limit } => format!(
                "refused for the day after only {answered} of {limit} requests: the project's \
                 quota was spent through another key of the same Google Cloud project or \
                 another program; group keys of one project in fintel.toml ([[buckets]])"
            ),
            BucketState::ExhaustedByProvider { until } => format!(
                "the provider reported the day's quota spent; next request after {}",
                format::local(until)
            ),
            BucketState::Exhausted => "today's requests are used; waiting for the reset".into(),
            BucketState::Verifying { uncertain } => format!(
                "{uncertain} of today's requests ended in a server error or timeout and may not \
                 have counted; asking the provider one request at a time until it says the day \
                 is spent"
            ),
            BucketState::NotResetYet { next_try } => format!(
                "provider has not reset yet (refused for the day early in the quota day); next \
                 try at {}",
                format::local(next_try)
            ),
            BucketState::BackingOff { until } => {
                format!("per-minute limit; next try at {}", format::local(until))
            }
            BucketState::CapTooSmall {
                waiting,
                largest,
                cap,
            } => format!(
                "{waiting} waiting request(s) of up to {} input tokens are over this bucket's cap \
                 of {} tokens per minute and wait for a bucket that fits them; smaller requests \
                 still go here",
                format::thousands(largest),
                format::thousands(cap)
            ),
            BucketState::Unconfigured => {
                "not in the current configuration: used earlier, no limits known".into()
            }
            BucketState::Available => "can send now".into(),
        };
        (state.code(), why)
    }
}

pub(crate) async fn page(State(state): State<Shared>) -> Result<Markup, PageError> {
    let now = state.config.clock.now();
    let date = fintel_time::pacific_date(now).to_string();
    let reset = fintel_time::next_reset(now, state.config.reset_buffer);
    let configured = state.config.buckets.clone();
    let quota_date = date.clone();
    let (views, merges) = state
        .read(move |store| {
            let stored = store.keys()?;
            let projects: BTreeMap<String, String> = store
                .key_projects()?
                .into_iter()
                .map(|k| (k.fingerprint, k.project))
                .collect();
            let refusals = store.daily_refusals_on(&quota_date)?;
            let merges = store.project_merges()?;
            let waiting_tokens = store.waiting_request_tokens(now)?;
            let mut views: Vec<BucketView> = Vec::new();
            // Each view's keys: its counts are the sum of their ledger rows.
            let mut view_keys: Vec<Vec<String>> = Vec::new();
            for b in &configured {
                // A configured bucket merged with others (its keys share a project) is shown
                // as the merged bucket the database counts it in.
                let name = b
                    .keys
                    .iter()
                    .find_map(|k| stored.iter().find(|s| s.fingerprint == k.fingerprint))
                    .map(|s| s.bucket.clone())
                    .filter(|stored_name| stored_name.starts_with(MERGED_BUCKET_PREFIX))
                    .unwrap_or_else(|| b.name.clone());
                let keys: Vec<(String, Option<String>)> = b
                    .keys
                    .iter()
                    .map(|k| {
                        let disabled = stored
                            .iter()
                            .find(|s| s.fingerprint == k.fingerprint)
                            .and_then(|s| s.disabled_reason.clone());
                        (k.label.clone(), disabled)
                    })
                    .collect();
                let project = b
                    .keys
                    .iter()
                    .find_map(|k| projects.get(&k.fingerprint).cloned());
                let fingerprints = b.keys.iter().map(|k| k.fingerprint.clone());
                if let Some(i) = views.iter().position(|v| v.name == name) {
                    view_keys[i].extend(fingerprints);
                    let v = &mut views[i];
                    v.keys.extend(keys);
                    v.limits = v.limits.map(|l| BucketLimits {
                        requests_per_day: l.requests_per_day.min(b.limits.requests_per_day),
                        requests_per_minute: l
                            .requests_per_minute
                            .min(b.limits.requests_per_minute),
                        input_tokens_per_minute: l
                            .input_tokens_per_minute
                            .min(b.limits.input_tokens_per_minute),
                    });
                    v.project = v.project.take().or(project);
                    continue;
                }
                views.push(BucketView {
                    spent_elsewhere: refusals
                        .iter()
                        .find(|r| r.bucket == name && r.spent_elsewhere)
                        .map(|r| (r.answered, r.requests_per_day)),
                    usage: Default::default(),
                    name,
                    keys,
                    limits: Some(b.limits),
                    project,
                    waiting_tokens: waiting_tokens.clone(),
                });
                view_keys.push(fingerprints.collect());
            }
            for (v, fingerprints) in views.iter_mut().zip(&view_keys) {
                v.usage = store.bucket_standing(&v.name, fingerprints, now, &quota_date)?;
            }
            // Buckets the database knows from earlier runs but the configuration no longer has.
            // A key configured now is counted in its configured bucket only, whatever bucket
            // the database last saw it in.
            type Others = BTreeMap<String, (Vec<(String, Option<String>)>, Vec<String>)>;
            let mut others: Others = BTreeMap::new();
            for k in stored {
                let configured_now = view_keys.iter().flatten().any(|f| *f == k.fingerprint);
                if !configured_now && !views.iter().any(|v| v.name == k.bucket) {
                    let entry = others.entry(k.bucket.clone()).or_default();
                    entry.0.push((k.label, k.disabled_reason));
                    entry.1.push(k.fingerprint);
                }
            }
            for (name, (keys, fingerprints)) in others {
                let usage = store.bucket_standing(&name, &fingerprints, now, &quota_date)?;
                views.push(BucketView {
                    project: name.strip_prefix(MERGED_BUCKET_PREFIX).map(str::to_string),
                    spent_elsewhere: None,
                    name,
                    keys,
                    limits: None,
                    usage,
                    waiting_tokens: Vec::new(),
                });
            }
            Ok((views, merges))
        })
        .await?;
    Ok(layout(
        "Keys",
        Nav::Keys,
        Some(REFRESH),
        html! {
            h1 { "Keys" }
            p {
                "Quota day " strong { (date) } " (Pacific). Next reset: " (time_both(reset))
                ", when fintel starts sending again."
            }
            @for m in &merges {
                p.notice.warn.shared-project { (m.message) }
            }
            section #buckets data-live {
                @if views.is_empty() {
                    p.notice.warn {
                        "No key is configured. Set " code { "GOOGLE_API_KEY_1" } ", "
                        code { "GOOGLE_API_KEY_2" } "... (or group keys of one project into a bucket in "
                        code { "fintel.toml" } ") and start " code { "fintel web" } " again."
                    }
                }
                @for v in &views { (bucket_card(v)) }
            }
            p.meta { "Only masked labels are ever shown; the database stores a fingerprint of each key, never the key." }
        },
    ))
}

fn bucket_card(v: &BucketView) -> Markup {
    let (word, why) = v.state();
    let used = u64::from(v.usage.used_today);
    html! {
        article.card.bucket id={"bucket-" (v.name)} {
            header { h2 { (v.name) } (state_badge(word)) }
            p.meta { (why) }
            @if let Some(p) = &v.project {
                p.meta.project { "Google Cloud project " code { (p) } }
            }
            @match v.limits {
                Some(l) => {
                    div.progress {
                        progress value=(used.min(u64::from(l.requests_per_day))) max=(l.requests_per_day.max(1)) {}
                        span.figure data-used=(used) { (used) " / " (l.requests_per_day) " requests today" }
                    }
                    dl.counts {
                        div { dt { "last minute" } dd { (v.usage.sent_last_minute) " / " (l.requests_per_minute) " requests" } }
                        div { dt { "input tokens, last minute" } dd { (format::thousands(v.usage.tokens_last_minute)) " / " (format::thousands(l.input_tokens_per_minute)) } }
                    }
                }
                None => {
                    p { span.figure data-used=(used) { (used) } " requests today" }
                }
            }
            @if v.keys.is_empty() {
                p.muted { "No key (a local server that needs none)." }
            } @else {
                ul.keys {
                    @for (label, disabled) in &v.keys {
                        li {
                            code { (label) }
                            @if let Some(r) = disabled { " " (state_badge("disabled")) " " span.meta { (r) } }
                        }
                    }
                }
            }
        }
    }
}
