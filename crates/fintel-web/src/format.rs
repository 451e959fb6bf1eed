//! Numbers, instants and durations as people read them.

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;

/// `t` in the server's local time zone, e.g. `2026-06-15 14:05 CEST`.
pub(crate) fn local(t: Timestamp) -> String {
    t.to_zoned(TimeZone::system())
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// `t` in Pacific time, where the quota day is counted, e.g. `2026-06-15 05:05 PDT`.
pub(crate) fn pacific(t: Timestamp) -> String {
    t.to_zoned(fintel_time::pacific())
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// RFC 3339, for `<time datetime>`.
pub(crate) fn rfc3339(t: Timestamp) -> String {
    t.to_string()
}

/// How long ago `t` was, roughly: `12 s ago`, `5 min ago`, `3 h ago`, `2 days ago`.
pub(crate) fn ago(now: Timestamp, t: Timestamp) -> String {
    let secs = now.as_second() - t.as_second();
    if secs < 0 {
        return "just now".into();
    }
    let secs = secs as u64;
    if secs < 60 {
        format!("{secs} s ago")
    } else if secs < 3_600 {
        format!("{} min ago", secs / 60)
    } else if secs < 2 * 86_400 {
        format!("{} h ago", secs / 3_600)
    } else {
        format!("{} days ago", secs / 86_400)
    }
}

/// A duration in its two largest units: `3 days 4 h`, `5 h 10 min`, `12 min`, `40 s`.
pub(crate) fn duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60);
    if days > 0 {
        format!("{days} day{} {hours} h", if days == 1 { "" } else { "s" })
    } else if hours > 0 {
        format!("{hours} h {mins} min")
    } else if mins > 0 {
        format!("{mins} min")
    } else {
        format!("{s} s")
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share as a percentage with one decimal (`0.0%` when there is nothing to share).
pub(crate) fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0.0%".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

/// A money or share amount, compact: `394.3 B`, `12.5 M`, `8,200`, `-1.2 B`; per-share figures
/// (small numbers) keep two decimals.
pub(crate) fn compact(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    let sign = if v < 0.0 { "-" } else { "" };
    if a >= 1e12 {
        format!("{sign}{:.2} T", a / 1e12)
    } else if a >= 1e9 {
        format!("{sign}{:.2} B", a / 1e9)
    } else if a >= 1e6 {
        format!("{sign}{:.1} M", a / 1e6)
    } else if a >= 1e4 {
        format!("{sign}{}", thousands(a.round() as u64))
    } else if a.fract() == 0.0 {
        format!("{sign}{a}")
    } else {
        format!("{sign}{a:.2}")
    }
}

/// `key_risks` as `Key risks`.
pub(crate) fn humanize(key: &str) -> String {
    let spaced = key.replace(['_', '-'], " ");
    let mut chars = spaced.trim().chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => key.to_string(),
    }
}

/// The first `max` characters of `s` (on a character boundary), and whether it was cut.
pub(crate) fn truncate(s: &str, max: usize) -> (&str, bool) {
    match s.char_indices().nth(max) {
        Some((i, _)) => (&s[..i], true),
        None => (s, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(compact(394_328_000_000.0), "394.33 B");
        assert_eq!(compact(-12_500_000.0), "-12.5 M");
        assert_eq!(compact(6.13), "6.13");
        assert_eq!(compact(8_200.0), "8200");
        assert_eq!(compact(15_300.0), "15,300");
        assert_eq!(
            duration(Duration::from_secs(3 * 86_400 + 4 * 3_600)),
            "3 days 4 h"
        );
        assert_eq!(duration(Duration::from_secs(5 * 3_600 + 600)), "5 h 10 min");
        assert_eq!(duration(Duration::from_secs(40)), "40 s");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(0, 0), "0.0%");
        assert_eq!(humanize("key_risks"), "Key risks");
        assert_eq!(truncate("héllo", 2), ("hé", true));
        assert_eq!(truncate("hé", 5), ("hé", false));
    }

    #[test]
    fn pacific_time_is_shown_in_pacific() {
        let t: Timestamp = "2026-07-01T07:05:00Z".parse().unwrap();
        assert_eq!(pacific(t), "2026-07-01 00:05 PDT");
        let ago_text = ago("2026-07-01T09:05:00Z".parse().unwrap(), t);
        assert_eq!(ago_text, "2 h ago");
    }
}
