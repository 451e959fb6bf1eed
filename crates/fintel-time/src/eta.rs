//! When work measured in model requests is expected to end, given the daily quotas: what is
//! left today on each bucket is spent first, then each quota day after the next reset adds
//! every bucket's daily capacity. `fintel plan`, the terminal progress, `fintel batch status`
//! and the dashboard all ask this one function, so they never disagree, and none of them
//! extrapolates "at this rate" across a wait for the reset.

use std::time::Duration;

use jiff::civil::Date;
use jiff::Timestamp;

use crate::{duration_to_span, pacific_date, pacific_day_start};

/// One quota bucket's requests: what is left of today's quota and what a full quota day gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketCapacity {
    /// Requests the bucket may still send before the next reset (0 when spent or disabled).
    pub left_today: u64,
    /// Requests a full quota day gives (0 for a bucket that will not send again, e.g. disabled).
    pub per_day: u64,
}

/// The expected end of some work, in quota days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaEta {
    /// From when the last requests can be sent: `now` when today's quota covers them, else
    /// the reset (Pacific midnight plus the buffer) that opens the finishing quota day.
    pub finish: Timestamp,
    /// The Pacific quota date on which the last requests go out.
    pub finish_quota_date: Date,
    /// Quota days needed counting today as the first (1: finishes today).
    pub quota_days: u64,
}

/// When `requests` more model requests will have been sent, spending what is left today on
/// every bucket first and then every bucket's daily capacity per quota day. `None` when it
/// cannot be known: requests remain but no bucket will ever send again.
pub fn quota_eta(
    requests: u64,
    buckets: &[BucketCapacity],
    now: Timestamp,
    reset_buffer: Duration,
) -> Option<QuotaEta> {
    let today = pacific_date(now);
    let today_only = QuotaEta {
        finish: now,
        finish_quota_date: today,
        quota_days: 1,
    };
    // A bucket never has more left today than a whole day gives (a lowered limit).
    let left_today: u64 = buckets.iter().map(|b| b.left_today.min(b.per_day)).sum();
    if requests <= left_today {
        return Some(today_only);
    }
    let per_day: u64 = buckets.iter().map(|b| b.per_day).sum();
    if per_day == 0 {
        return None;
    }
    let later_days = (requests - left_today).div_ceil(per_day);
    let finish_quota_date = add_days(today, later_days)?;
    Some(QuotaEta {
        finish: pacific_day_start(finish_quota_date) + duration_to_span(reset_buffer),
        finish_quota_date,
        quota_days: later_days + 1,
    })
}

/// A batch with requests left on the shared key pool, as the pool serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedBatch {
    pub id: String,
    pub priority: i64,
    pub created_at: Timestamp,
    /// Model requests it still has to send.
    pub requests: u64,
}

/// What the key pool serves before one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ahead {
    /// The other batches' model requests served first.
    pub requests: u64,
    /// How many other batches (with requests left) those are.
    pub batches: usize,
}

/// The work the key pool serves before `this`: every other batch in `queue` with requests
/// left and a higher priority, or the same priority and created earlier (the id breaks a
/// tie). `this` need not be in `queue` (a batch still being planned).
pub fn queue_ahead(queue: &[QueuedBatch], this: &QueuedBatch) -> Ahead {
    served_before(queue, this)
        .into_iter()
        .fold(Ahead::default(), |a, b| Ahead {
            requests: a.requests + b.requests,
            batches: a.batches + 1,
        })
}

/// The batches of `queue` that [`queue_ahead`] counts before `this`, in the order served.
pub fn served_before<'a>(queue: &'a [QueuedBatch], this: &QueuedBatch) -> Vec<&'a QueuedBatch> {
    let key = |b: &QueuedBatch| (std::cmp::Reverse(b.priority), b.created_at, b.id.clone());
    let mine = key(this);
    let mut before: Vec<&QueuedBatch> = queue
        .iter()
        .filter(|b| b.id != this.id && b.requests > 0 && key(b) < mine)
        .collect();
    before.sort_by_key(|b| key(b));
    before
}

/// [`quota_eta`] for a batch sharing its keys: its own requests after those served before it.
pub fn queued_eta(
    queue: &[QueuedBatch],
    this: &QueuedBatch,
    buckets: &[BucketCapacity],
    now: Timestamp,
    reset_buffer: Duration,
) -> (Option<QuotaEta>, Ahead) {
    let ahead = queue_ahead(queue, this);
    let eta = quota_eta(ahead.requests + this.requests, buckets, now, reset_buffer);
    (eta, ahead)
}

/// "after 2 other batches on these keys", or nothing when the batch has the keys alone.
pub fn ahead_words(ahead: &Ahead) -> Option<String> {
    match ahead.batches {
        0 => None,
        1 => Some("after 1 other batch on these keys".to_string()),
        n => Some(format!("after {n} other batches on these keys")),
    }
}

/// The number of the quota day `t` falls on, counting the quota day of `start` as day 1.
pub fn quota_day_number(start: Timestamp, t: Timestamp) -> i64 {
    let (a, b) = (pacific_date(start), pacific_date(t));
    match a.until(b) {
        Ok(span) => i64::from(span.get_days()) + 1,
        Err(_) => 1,
    }
}

fn add_days(date: Date, days: u64) -> Option<Date> {
    let days = i64::try_from(days).ok()?;
    // Calendar dates end at 9999-12-31: a later finish is "not known", not a panic.
    date.checked_add(jiff::Span::new().try_days(days).ok()?)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(s: &str) -> Timestamp {
        let dt: jiff::civil::DateTime = s.parse().unwrap();
        dt.to_zoned(crate::pacific()).unwrap().timestamp()
    }

    fn b(left_today: u64, per_day: u64) -> BucketCapacity {
        BucketCapacity {
            left_today,
            per_day,
        }
    }

    const BUFFER: Duration = Duration::from_secs(300);

    #[test]
    fn requests_against_today_then_daily_capacity() {
        let now = pt("2026-03-02 15:00");
        // (requests, buckets, expected quota days, expected finish as Pacific wall time)
        let table: &[(u64, Vec<BucketCapacity>, u64, &str)] = &[
            // Nothing left to send: finishes now.
            (0, vec![b(0, 20)], 1, "2026-03-02 15:00"),
            // Today's remaining quota covers it.
            (15, vec![b(10, 20), b(5, 20)], 1, "2026-03-02 15:00"),
            // Waiting for the reset with everything spent: the first quota day is tomorrow.
            (20, vec![b(0, 20)], 2, "2026-03-03 00:05"),
            (21, vec![b(0, 20)], 3, "2026-03-04 00:05"),
            // 7,000 requests, 25 keys of 20 a day, 100 left today: 100 + 14 x 500 >= 7,000.
            (7_000, vec![b(4, 20); 25], 15, "2026-03-16 00:05"),
            // A disabled bucket (no capacity at all) is left out.
            (30, vec![b(10, 20), b(0, 0)], 2, "2026-03-03 00:05"),
            // More left "today" than a day gives (a limit lowered since) counts as a day.
            (25, vec![b(50, 20)], 2, "2026-03-03 00:05"),
        ];
        for (requests, buckets, days, finish) in table {
            let eta = quota_eta(*requests, buckets, now, BUFFER)
                .unwrap_or_else(|| panic!("{requests} {buckets:?}: no eta"));
            assert_eq!(eta.quota_days, *days, "{requests} {buckets:?}");
            assert_eq!(eta.finish, pt(finish), "{requests} {buckets:?}");
            assert_eq!(eta.finish_quota_date, pacific_date(eta.finish));
        }
    }

    #[test]
    fn no_capacity_at_all_is_unknown_unless_nothing_is_left() {
        let now = pt("2026-03-02 15:00");
        assert_eq!(quota_eta(5, &[], now, BUFFER), None);
        assert_eq!(quota_eta(5, &[b(0, 0)], now, BUFFER), None);
        assert_eq!(
            quota_eta(0, &[], now, BUFFER).map(|e| e.quota_days),
            Some(1)
        );
    }

    #[test]
    fn quota_days_cross_daylight_saving_at_pacific_midnight() {
        // DST starts on 2026-03-08: the reset that day is still 00:05 Pacific wall time.
        let now = pt("2026-03-06 23:00");
        let eta = quota_eta(50, &[b(0, 20)], now, BUFFER).unwrap();
        assert_eq!(eta.quota_days, 4);
        assert_eq!(eta.finish, pt("2026-03-09 00:05"));
        assert_eq!(quota_day_number(now, eta.finish), 4);
        assert_eq!(quota_day_number(now, now), 1);
        assert_eq!(quota_day_number(eta.finish, now), -2);
    }

    #[test]
    fn an_absurd_amount_is_unknown_rather_than_a_panic() {
        let now = pt("2026-03-02 15:00");
        assert_eq!(quota_eta(u64::MAX, &[b(0, 1)], now, BUFFER), None);
    }

    #[test]
    fn batches_on_one_key_pool_are_estimated_in_the_order_the_pool_serves_them() {
        let now = pt("2026-03-02 15:00");
        let at = |h: &str| pt(&format!("2026-03-01 {h}"));
        let q = |id: &str, priority: i64, created: &str, requests: u64| QueuedBatch {
            id: id.into(),
            priority,
            created_at: at(created),
            requests,
        };
        // Three batches waiting for the reset on 40 a day, today spent.
        let queue = vec![
            q("a", 0, "09:00", 6),
            q("b", 0, "10:00", 12),
            q("c", 0, "11:00", 46),
        ];
        let caps = [b(0, 40)];
        let days = |this: &QueuedBatch| {
            let (eta, ahead) = queued_eta(&queue, this, &caps, now, BUFFER);
            (eta.unwrap().quota_days, ahead.batches, ahead.requests)
        };
        assert_eq!(days(&queue[0]), (2, 0, 0), "6: the next quota day");
        assert_eq!(
            days(&queue[1]),
            (2, 1, 6),
            "6 + 12 = 18: the next quota day too"
        );
        assert_eq!(days(&queue[2]), (3, 2, 18), "18 + 46 = 64: the day after");
        // A fourth, planned now with the same priority, comes after all three.
        let fourth = q("", 0, "23:00", 4);
        assert_eq!(days(&fourth), (3, 3, 64));
        // A higher priority goes first; a batch with nothing left is not ahead of anyone.
        assert_eq!(days(&q("", 5, "23:00", 4)), (2, 0, 0));
        let with_done = vec![q("done", 0, "08:00", 0), q("a", 0, "09:00", 6)];
        assert_eq!(
            queue_ahead(&with_done, &fourth),
            Ahead {
                requests: 6,
                batches: 1
            }
        );
        // A lower priority created earlier is served after.
        let low = vec![q("low", -1, "08:00", 100)];
        assert_eq!(queue_ahead(&low, &fourth), Ahead::default());
        assert_eq!(
            ahead_words(&Ahead {
                requests: 18,
                batches: 2
            })
            .as_deref(),
            Some("after 2 other batches on these keys")
        );
        assert_eq!(ahead_words(&Ahead::default()), None);
    }
}
