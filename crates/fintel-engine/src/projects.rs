//! Keys that share a Google Cloud project: what to merge, what to infer, what to say.
//!
//! Gemini counts quota per project, not per key, so 25 keys made in one project give one
//! project's quota, not 25. Two sources tell fintel about it:
//!
//! - the provider names the project (`CallError::project`, from `ErrorInfo` metadata
//!   `consumer`): the key's project is stored, and buckets whose keys share a project are
//!   merged into one (`gcp-project-NNN`), in the database so that every process and later batch
//!   knows, and said once;
//! - a per-day refusal on a bucket that had answered far fewer requests that quota day than
//!   its limit: its project's quota was spent elsewhere (another key, another program). That
//!   is shown and explained, and when several buckets' refusals add up to one limit the
//!   fintel.toml grouping that would match is suggested, but nothing is merged on inference.
//!
//! The decisions are pure functions with table tests, beside those of [`crate::outcome`]: a
//! per-day refusal is first judged there (not reset yet, or spent), and only a spent day is
//! judged here (spent here or elsewhere). [`ProjectWatch`] carries them out for the runner.

use std::collections::{BTreeMap, BTreeSet};

use fintel_llm::{ApiKey, CallError};
use fintel_store::{BucketLimits, DailyRefusal, ProjectMerge, Store, StoreError};
use fintel_time::{pacific_date, quota_eta, BucketCapacity};
use jiff::civil::Date;
use jiff::Timestamp;

use crate::keys::{Bucket, KeyPool};
use crate::outcome::DailyVerdict;
use crate::runner::{Event, Level, Observer};

/// The prefix of merged buckets' names; a configured bucket is unlikely to have it.
pub const MERGED_BUCKET_PREFIX: &str = "gcp-project-";

/// The name of the bucket that holds every key of a project once they are known to share it.
pub fn merged_bucket_name(project: &str) -> String {
    format!("{MERGED_BUCKET_PREFIX}{project}")
}

/// The project a merged bucket stands for, from its name.
pub fn project_of_merged_bucket(name: &str) -> Option<&str> {
    name.strip_prefix(MERGED_BUCKET_PREFIX)
}

/// Configured buckets whose keys share a project, to be used as one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    pub project: String,
    /// The merged bucket's name ([`merged_bucket_name`]).
    pub into: String,
    /// The configured buckets merged, sorted.
    pub members: Vec<String>,
    /// The user's names of the keys of the merged bucket, in configured order.
    pub key_names: Vec<String>,
}

/// The project of a configured bucket: the one its first key with a known project was seen in.
fn bucket_project<'a>(bucket: &Bucket, learned: &'a BTreeMap<String, String>) -> Option<&'a str> {
    bucket
        .keys
        .iter()
        .find_map(|k| learned.get(&k.fingerprint()))
        .map(String::as_str)
}

/// Which configured buckets to merge: those whose keys were seen in one project, when there
/// are two or more of them, or when that project's bucket exists already (another process,
/// with other keys, merged it: this process's keys join it).
pub fn plan_merges(
    buckets: &[Bucket],
    learned: &BTreeMap<String, String>,
    merged_already: &BTreeSet<String>,
) -> Vec<Merge> {
    let mut by_project: BTreeMap<&str, Vec<&Bucket>> = BTreeMap::new();
    for b in buckets {
        if let Some(p) = bucket_project(b, learned) {
            by_project.entry(p).or_default().push(b);
        }
    }
    by_project
        .into_iter()
        .filter(|(p, members)| members.len() >= 2 || merged_already.contains(*p))
        .map(|(p, members)| {
            let mut names: Vec<String> = members.iter().map(|b| b.name.clone()).collect();
            names.sort();
            Merge {
                project: p.to_string(),
                into: merged_bucket_name(p),
                members: names,
                key_names: members
                    .iter()
                    .flat_map(|b| b.keys.iter().map(|k| k.name().to_string()))
                    .collect(),
            }
        })
        .filter(|m| m.members != [m.into.clone()])
        .collect()
}

/// The buckets to use after `merges`: each merge's members become one bucket, where its first
/// member was, with all their keys and the smallest of each limit (one project's limits).
pub fn apply_merges(buckets: &[Bucket], merges: &[Merge]) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for b in buckets {
        let Some(m) = merges.iter().find(|m| m.members.contains(&b.name)) else {
            out.push(b.clone());
            continue;
        };
        match out.iter_mut().find(|o| o.name == m.into) {
            Some(merged) => {
                merged.keys.extend(b.keys.iter().cloned());
                merged.limits = smaller_limits(merged.limits, b.limits);
            }
            None => out.push(Bucket {
                name: m.into.clone(),
                keys: b.keys.clone(),
                limits: b.limits,
            }),
        }
    }
    out
}

fn smaller_limits(a: BucketLimits, b: BucketLimits) -> BucketLimits {
    BucketLimits {
        requests_per_day: a.requests_per_day.min(b.requests_per_day),
        requests_per_minute: a.requests_per_minute.min(b.requests_per_minute),
        input_tokens_per_minute: a.input_tokens_per_minute.min(b.input_tokens_per_minute),
    }
}

/// Requests a day all `buckets` together may send.
pub fn daily_capacity(buckets: &[Bucket]) -> u64 {
    buckets
        .iter()
        .map(|b| u64::from(b.limits.requests_per_day))
        .sum()
}

/// What a per-day refusal says about a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DailyRefusalVerdict {
    /// The provider has not reset yet ([`DailyVerdict::NotResetYet`]): nothing to judge.
    NotResetYet,
    /// The bucket used (about) its own quota.
    SpentHere,
    /// Far fewer answered than the limit: the project's quota went through another key or
    /// another program.
    SpentElsewhere,
}

/// Judges a per-day refusal of a bucket whose limit is `requests_per_day` and that had
/// `answered` requests answered on the quota day (refused, uncertain and never-sent ones are
/// not answered), once [`crate::outcome::daily_refusal`] gave its `verdict`. "Far fewer" is
/// less than half: pacing and uncertain calls never explain that much.
pub fn judge_daily_refusal(
    verdict: &DailyVerdict,
    answered: u32,
    requests_per_day: u32,
) -> DailyRefusalVerdict {
    if matches!(verdict, DailyVerdict::NotResetYet { .. }) {
        DailyRefusalVerdict::NotResetYet
    } else if u64::from(answered) * 2 < u64::from(requests_per_day) {
        DailyRefusalVerdict::SpentElsewhere
    } else {
        DailyRefusalVerdict::SpentHere
    }
}

/// A fintel.toml grouping that matches what the provider did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    pub buckets: Vec<String>,
    pub key_names: Vec<String>,
    /// Requests the buckets answered together before their refusals.
    pub answered: u32,
    pub requests_per_day: u32,
}

impl Grouping {
    /// The `[[buckets]]` table to add to fintel.toml.
    pub fn toml(&self) -> String {
        let keys: Vec<String> = self.key_names.iter().map(|k| format!("{k:?}")).collect();
        format!(
            "[[buckets]]\nname = \"shared-project\"\nkeys = [{}]\nrequests_per_day = {}",
            keys.join(", "),
            self.requests_per_day
        )
    }
}

/// When the per-day refusals of a quota day on two or more buckets with one limit add up to
/// that limit (90-100% of it), they look like one project: the grouping that would match.
/// `refusals` come with the key names of each bucket; buckets without known keys are left out.
pub fn suggest_grouping(refusals: &[(DailyRefusal, Vec<String>)]) -> Option<Grouping> {
    let mut by_limit: BTreeMap<u32, Vec<&(DailyRefusal, Vec<String>)>> = BTreeMap::new();
    for r in refusals.iter().filter(|(_, keys)| !keys.is_empty()) {
        by_limit.entry(r.0.requests_per_day).or_default().push(r);
    }
    by_limit.into_iter().find_map(|(limit, group)| {
        let answered: u32 = group.iter().map(|(r, _)| r.answered).sum();
        let adds_up =
            u64::from(answered) * 10 >= u64::from(limit) * 9 && answered <= limit && limit > 0;
        (group.len() >= 2 && adds_up).then(|| Grouping {
            buckets: group.iter().map(|(r, _)| r.bucket.clone()).collect(),
            key_names: group.iter().flat_map(|(_, k)| k.iter().cloned()).collect(),
            answered,
            requests_per_day: limit,
        })
    })
}

/// "A", "A and B", "A, B and C".
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// What to say when keys turn out to share a project.
pub fn merge_message(
    merge: &Merge,
    capacity_before: u64,
    capacity_after: u64,
    finish_before: Option<Date>,
    finish_after: Option<Date>,
) -> String {
    let mut text = format!(
        "{} share Google Cloud project {} (the provider named it), so they share one quota; \
         daily capacity is now {capacity_after}, not {capacity_before}",
        and_list(&merge.key_names),
        merge.project
    );
    match (finish_before, finish_after) {
        (Some(before), Some(after)) if before != after => text.push_str(&format!(
            "; expected finish moves from {before} to {after} (Pacific quota days)"
        )),
        (Some(before), Some(_)) => text.push_str(&format!(
            "; expected finish stays {before} (Pacific quota day)"
        )),
        _ => {}
    }
    text
}

/// What to say when a bucket's quota was spent elsewhere.
pub fn spent_elsewhere_message(
    key_names: &[String],
    answered: u32,
    requests_per_day: u32,
) -> String {
    format!(
        "{} refused for the day after only {answered} of {requests_per_day} requests today: \
         the project's daily quota was spent elsewhere (through another key of the same Google \
         Cloud project, or another program). `fintel keys` shows it as \"spent elsewhere\"; if \
         keys share a project, group them in fintel.toml ([[buckets]]) so plans count one quota",
        if key_names.is_empty() {
            "a bucket was".to_string()
        } else if key_names.len() == 1 {
            format!("{} was", key_names[0])
        } else {
            format!("{} were", and_list(key_names))
        }
    )
}

/// What to say when refusals add up to one project's limit.
pub fn grouping_message(grouping: &Grouping) -> String {
    format!(
        "the per-day refusals of {} add up to one limit ({} answered of {}): they look like one \
         Google Cloud project. If they are, add this to fintel.toml:\n{}",
        and_list(&grouping.key_names),
        grouping.answered,
        grouping.requests_per_day,
        grouping.toml()
    )
}

/// The runner's hands for what provider errors reveal about projects.
pub struct ProjectWatch<'a> {
    pub store: &'a Store,
    pub pool: &'a KeyPool,
    pub observer: &'a dyn Observer,
    pub batch_id: &'a str,
}

impl ProjectWatch<'_> {
    /// Learns the project a provider error on `bucket` named for `key`; call it after the
    /// call's ledger row is finished. When that merged buckets, says so (once across
    /// processes). Returns the bucket the key is in now, for what the runner does next.
    pub fn learn_project(
        &self,
        error: &CallError,
        key: Option<&ApiKey>,
        bucket: &str,
        now: Timestamp,
    ) -> Result<String, StoreError> {
        if let (Some(project), Some(key)) = (error.project(), key) {
            if self
                .store
                .learn_key_project(&key.fingerprint(), project, now)?
            {
                self.pool.refresh(self.store)?;
                self.announce_merges(now)?;
            }
            if let Some(current) = self.pool.bucket_of_key(key) {
                return Ok(current);
            }
        }
        Ok(bucket.to_string())
    }

    /// Each bucket of `buckets` as the finish estimate counts it: what it may still send
    /// today and per day, nothing for a bucket whose keys are all disabled.
    fn capacities(
        &self,
        buckets: &[Bucket],
        now: Timestamp,
    ) -> Result<Vec<BucketCapacity>, StoreError> {
        let date = pacific_date(now).to_string();
        let disabled = self.store.disabled_key_fingerprints()?;
        let mut out = Vec::with_capacity(buckets.len());
        for b in buckets {
            if !b.keys.is_empty() && b.keys.iter().all(|k| disabled.contains(&k.fingerprint())) {
                out.push(BucketCapacity {
                    left_today: 0,
                    per_day: 0,
                });
                continue;
            }
            let (left_today, per_day) = self.store.bucket_requests_left(
                &b.name,
                &b.fingerprints(),
                &b.limits,
                now,
                &date,
            )?;
            out.push(BucketCapacity {
                left_today,
                per_day,
            });
        }
        Ok(out)
    }

    /// Says every merge of the pool that no process has said yet, with the batch's expected
    /// finish before (the members' limits believed separate) and after.
    pub fn announce_merges(&self, now: Timestamp) -> Result<(), StoreError> {
        let layout = self.pool.layout();
        let requests = self.store.model_requests_left(self.batch_id)?;
        let after = self.capacities(&layout.buckets, now)?;
        let capacity_after = daily_capacity(&layout.buckets);
        let finish = |capacities: &[BucketCapacity]| {
            quota_eta(requests, capacities, now, self.pool.reset_buffer())
                .map(|eta| eta.finish_quota_date)
        };
        for merge in &layout.merges {
            let Some(merged) = layout.buckets.iter().find(|b| b.name == merge.into) else {
                continue;
            };
            let members = self.pool.configured_limits(&merge.members);
            let believed: u64 = members.iter().map(|l| u64::from(l.requests_per_day)).sum();
            let lost = believed.saturating_sub(u64::from(merged.limits.requests_per_day));
            // Before the merge, the project's lost requests looked available today and on
            // every later day.
            let mut before = after.clone();
            before.push(BucketCapacity {
                left_today: lost,
                per_day: lost,
            });
            let message = merge_message(
                merge,
                capacity_after + lost,
                capacity_after,
                finish(&before),
                finish(&after),
            );
            let record = ProjectMerge {
                project: merge.project.clone(),
                members: merge.members.join(","),
                merged_into: merge.into.clone(),
                message: message.clone(),
                at: now,
            };
            if self.store.record_project_merge(&record, now)? {
                self.observer.message(Level::Warn, &message);
                self.observer.event(&Event::SharedProject { message });
            }
        }
        Ok(())
    }

    /// A per-day refusal of `bucket`, after the pool applied [`crate::outcome::daily_refusal`]
    /// (its `verdict`): a spent day with far fewer answered than the limit says "spent
    /// elsewhere", and refusals adding up to one limit suggest a grouping.
    pub fn on_daily_refusal(
        &self,
        bucket: &str,
        verdict: &DailyVerdict,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let layout = self.pool.layout();
        let Some(b) = layout.buckets.iter().find(|b| b.name == bucket) else {
            return Ok(());
        };
        let date = pacific_date(now).to_string();
        let answered = self.store.answered_on(bucket, &b.fingerprints(), &date)?;
        let judged = judge_daily_refusal(verdict, answered, b.limits.requests_per_day);
        if judged == DailyRefusalVerdict::NotResetYet {
            return Ok(());
        }
        let before = self.store.daily_refusals_on(&date)?;
        let refusal = DailyRefusal {
            bucket: bucket.to_string(),
            quota_date: date.clone(),
            answered,
            requests_per_day: b.limits.requests_per_day,
            spent_elsewhere: judged == DailyRefusalVerdict::SpentElsewhere,
            at: now,
        };
        if !self.store.record_daily_refusal(&refusal)? {
            return Ok(());
        }
        if judged == DailyRefusalVerdict::SpentElsewhere {
            let names: Vec<String> = b.keys.iter().map(|k| k.name().to_string()).collect();
            let message = spent_elsewhere_message(&names, answered, b.limits.requests_per_day);
            self.observer.message(Level::Warn, &message);
            self.observer.event(&Event::SpentElsewhere { message });
        }
        let with_keys = |list: &[DailyRefusal]| -> Vec<(DailyRefusal, Vec<String>)> {
            list.iter()
                .map(|r| {
                    let keys = layout
                        .buckets
                        .iter()
                        .find(|b| b.name == r.bucket)
                        .map(|b| b.keys.iter().map(|k| k.name().to_string()).collect())
                        .unwrap_or_default();
                    (r.clone(), keys)
                })
                .collect()
        };
        let mut after = before.clone();
        after.push(refusal);
        after.sort_by(|a, b| a.bucket.cmp(&b.bucket));
        // Said when this refusal first makes the day's refusals add up to one limit.
        if suggest_grouping(&with_keys(&before)).is_none() {
            if let Some(grouping) = suggest_grouping(&with_keys(&after)) {
                let message = grouping_message(&grouping);
                self.observer.message(Level::Warn, &message);
                self.observer.event(&Event::SpentElsewhere { message });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(per_day: u32) -> BucketLimits {
        BucketLimits {
            requests_per_day: per_day,
            requests_per_minute: 5,
            input_tokens_per_minute: 250_000,
        }
    }

    fn bucket(name: &str, keys: &[&str], per_day: u32) -> Bucket {
        Bucket {
            name: name.into(),
            keys: keys
                .iter()
                .map(|k| ApiKey::new(k, format!("AIza-{k}-secret-abcdefghijklmnop")))
                .collect(),
            limits: limits(per_day),
        }
    }

    fn fp(key: &str) -> String {
        ApiKey::new(key, format!("AIza-{key}-secret-abcdefghijklmnop")).fingerprint()
    }

    fn learned(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, p)| (fp(k), p.to_string())).collect()
    }

    /// Key fingerprint to project.
    type Learned = BTreeMap<String, String>;
    /// A merged bucket, its members and its key names.
    type Expected = (&'static str, Vec<&'static str>, Vec<&'static str>);

    #[test]
    fn merges_are_planned_from_learned_projects() {
        let buckets = vec![
            bucket("key-1", &["K1"], 20),
            bucket("key-3", &["K3"], 20),
            bucket("key-7", &["K7"], 20),
            bucket("team", &["K8", "K9"], 20),
        ];
        let none = BTreeSet::new();
        let p = |s: &str| BTreeSet::from([s.to_string()]);
        // (learned, already merged elsewhere) -> (merged bucket, its members, key names)
        let table: Vec<(Learned, BTreeSet<String>, Vec<Expected>)> = vec![
            // Nothing learned: nothing merged.
            (learned(&[]), none.clone(), vec![]),
            // One key's project alone says nothing about sharing.
            (learned(&[("K3", "111")]), none.clone(), vec![]),
            // Two buckets in one project merge.
            (
                learned(&[("K3", "111"), ("K7", "111")]),
                none.clone(),
                vec![("gcp-project-111", vec!["key-3", "key-7"], vec!["K3", "K7"])],
            ),
            // Two projects: nothing shared.
            (
                learned(&[("K3", "111"), ("K7", "222")]),
                none.clone(),
                vec![],
            ),
            // Keys the user grouped already, in one project: nothing to merge.
            (
                learned(&[("K8", "333"), ("K9", "333")]),
                none.clone(),
                vec![],
            ),
            // A configured group and a lone key in one project merge, all keys together.
            (
                learned(&[("K9", "333"), ("K1", "333")]),
                none.clone(),
                vec![(
                    "gcp-project-333",
                    vec!["key-1", "team"],
                    vec!["K1", "K8", "K9"],
                )],
            ),
            // Another process merged project 111: this process's key of it joins.
            (
                learned(&[("K3", "111")]),
                p("111"),
                vec![("gcp-project-111", vec!["key-3"], vec!["K3"])],
            ),
        ];
        for (learned, merged, expected) in table {
            let plan = plan_merges(&buckets, &learned, &merged);
            let got: Vec<(&str, Vec<&str>, Vec<&str>)> = plan
                .iter()
                .map(|m| {
                    (
                        m.into.as_str(),
                        m.members.iter().map(String::as_str).collect(),
                        m.key_names.iter().map(String::as_str).collect(),
                    )
                })
                .collect();
            assert_eq!(got, expected, "{learned:?} {merged:?}");
        }
    }

    #[test]
    fn applied_merges_keep_order_and_take_the_smaller_limits() {
        let mut big = bucket("key-7", &["K7"], 50);
        big.limits.requests_per_minute = 2;
        let buckets = vec![
            bucket("key-1", &["K1"], 20),
            bucket("key-3", &["K3"], 20),
            bucket("key-5", &["K5"], 20),
            big,
        ];
        let merges = plan_merges(
            &buckets,
            &learned(&[("K3", "111"), ("K7", "111")]),
            &BTreeSet::new(),
        );
        let after = apply_merges(&buckets, &merges);
        let names: Vec<&str> = after.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["key-1", "gcp-project-111", "key-5"]);
        assert_eq!(after[1].keys.len(), 2);
        assert_eq!(after[1].limits.requests_per_day, 20);
        assert_eq!(after[1].limits.requests_per_minute, 2);
        assert_eq!(daily_capacity(&buckets), 110);
        assert_eq!(daily_capacity(&after), 60);
    }

    #[test]
    fn daily_refusals_are_judged_by_what_the_bucket_answered() {
        use DailyRefusalVerdict::*;
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let spent = DailyVerdict::Spent {
            until: at("2026-06-16T07:05:00Z"),
        };
        let not_reset = DailyVerdict::NotResetYet {
            until: at("2026-06-15T07:20:00Z"),
            level: 1,
        };
        // (outcome's verdict, answered, limit) -> verdict
        let table = [
            (not_reset, 0, 20, NotResetYet),
            (spent, 0, 20, SpentElsewhere),
            (spent, 1, 20, SpentElsewhere),
            (spent, 9, 20, SpentElsewhere),
            (spent, 10, 20, SpentHere),
            (spent, 19, 20, SpentHere),
            (spent, 20, 20, SpentHere),
            (spent, 25, 20, SpentHere),
            (spent, 0, 0, SpentHere),
        ];
        for (verdict, answered, limit, expected) in table {
            assert_eq!(
                judge_daily_refusal(&verdict, answered, limit),
                expected,
                "{verdict:?}: {answered} of {limit}"
            );
        }
    }

    fn refusal(bucket: &str, answered: u32, limit: u32) -> DailyRefusal {
        DailyRefusal {
            bucket: bucket.into(),
            quota_date: "2026-06-15".into(),
            answered,
            requests_per_day: limit,
            spent_elsewhere: answered * 2 < limit,
            at: "2026-06-15T20:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn a_grouping_is_suggested_only_when_refusals_add_up_to_one_limit() {
        let r = |b: &str, a: u32, l: u32, keys: &[&str]| {
            (
                refusal(b, a, l),
                keys.iter().map(|k| k.to_string()).collect(),
            )
        };
        // One refused bucket: nothing to group.
        assert_eq!(suggest_grouping(&[r("a", 3, 20, &["K1"])]), None);
        // 3 + 4 of 20: far from one limit.
        assert_eq!(
            suggest_grouping(&[r("a", 3, 20, &["K1"]), r("b", 4, 20, &["K2"])]),
            None
        );
        // 12 + 8 = 20: one project's quota.
        let g = suggest_grouping(&[r("a", 12, 20, &["K1"]), r("b", 8, 20, &["K2"])]).unwrap();
        assert_eq!(g.key_names, ["K1", "K2"]);
        assert_eq!(g.answered, 20);
        assert_eq!(
            g.toml(),
            "[[buckets]]\nname = \"shared-project\"\nkeys = [\"K1\", \"K2\"]\nrequests_per_day = 20"
        );
        // 18 of 20 (uncertain calls, pacing) still adds up; 25 of 20 is two projects.
        assert!(suggest_grouping(&[r("a", 9, 20, &["K1"]), r("b", 9, 20, &["K2"])]).is_some());
        assert_eq!(
            suggest_grouping(&[r("a", 15, 20, &["K1"]), r("b", 10, 20, &["K2"])]),
            None
        );
        // Buckets this process does not know are left out.
        assert_eq!(
            suggest_grouping(&[r("a", 12, 20, &["K1"]), r("b", 8, 20, &[])]),
            None
        );
    }

    /// The per-day 429 that names the project (the simulator's, and the 2024-style bodies)
    /// merges the key's bucket as it is learned: the refusal must then be applied to the
    /// merged bucket, not to the configured one that no longer exists.
    #[test]
    fn a_refusal_that_merges_its_bucket_is_applied_to_the_merged_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("fintel.db")).unwrap();
        let pool = KeyPool::new(
            vec![bucket("key-3", &["K3"], 20), bucket("key-7", &["K7"], 20)],
            Duration::from_secs(300),
        );
        pool.register(&store).unwrap();
        let now: Timestamp = "2026-06-15T20:00:00Z".parse().unwrap();
        let batch = fintel_store::NewBatch {
            id: "b1".into(),
            name: None,
            analysis_type: "fundamental".into(),
            analysis_version: "v1".into(),
            workflow: String::new(),
            min_years: 1,
            years_spec: r#"{"latest": 1}"#.into(),
            as_of_date: "2026-06-15".into(),
            model: "gemini-2.5-flash".into(),
            settings: "{}".into(),
            priority: 0,
            input_file: None,
            companies: Vec::new(),
        };
        store.create_batch(&batch, now).unwrap();
        let watch = ProjectWatch {
            store: &store,
            pool: &pool,
            observer: &crate::runner::Silent,
            batch_id: "b1",
        };
        let refusal = |project: &str| CallError::DailyQuotaExhausted {
            message: "GenerateRequestsPerDayPerProjectPerModel-FreeTier exceeded".into(),
            project: Some(project.into()),
        };
        let k3 = pool.layout().buckets[0].keys[0].clone();
        let k7 = pool.layout().buckets[1].keys[0].clone();
        // The first key's project alone merges nothing.
        assert_eq!(
            watch
                .learn_project(&refusal("111"), Some(&k3), "key-3", now)
                .unwrap(),
            "key-3"
        );
        // The second names the same project: both buckets become one, and the refusal goes on
        // with it.
        let bucket = watch
            .learn_project(&refusal("111"), Some(&k7), "key-7", now)
            .unwrap();
        assert_eq!(bucket, "gcp-project-111");
        let verdict = pool.on_daily_refusal(&store, &bucket, now).unwrap();
        watch.on_daily_refusal(&bucket, &verdict, now).unwrap();
        let date = pacific_date(now).to_string();
        assert!(store
            .bucket_usage(
                "gcp-project-111",
                &pool.bucket_keys("gcp-project-111"),
                now,
                &date
            )
            .unwrap()
            .exhausted_until
            .is_some());
        let names: Vec<String> = store
            .conn()
            .prepare("SELECT name FROM buckets ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            names,
            ["gcp-project-111"],
            "no configured bucket comes back"
        );
        // Nothing answered that day: the merged bucket's quota went elsewhere.
        let refusals = store.daily_refusals_on(&date).unwrap();
        assert_eq!(refusals.len(), 1);
        assert!(refusals[0].spent_elsewhere);
    }

    #[test]
    fn messages_name_keys_capacity_and_finish() {
        let merge = Merge {
            project: "348715329010".into(),
            into: "gcp-project-348715329010".into(),
            members: vec!["key-3".into(), "key-7".into()],
            key_names: vec!["GOOGLE_API_KEY_3".into(), "GOOGLE_API_KEY_7".into()],
        };
        let d = |s: &str| Some(s.parse::<Date>().unwrap());
        assert_eq!(
            merge_message(&merge, 500, 480, d("2026-06-28"), d("2026-06-29")),
            "GOOGLE_API_KEY_3 and GOOGLE_API_KEY_7 share Google Cloud project 348715329010 (the \
             provider named it), so they share one quota; daily capacity is now 480, not 500; \
             expected finish moves from 2026-06-28 to 2026-06-29 (Pacific quota days)"
        );
        assert!(spent_elsewhere_message(&["K1".into()], 2, 20)
            .starts_with("K1 was refused for the day after only 2 of 20 requests today"));
        assert_eq!(
            and_list(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
    }
}
