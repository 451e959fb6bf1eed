//! The simulator's weather: the provider as it really behaves over days, scriptable from the
//! `[weather]` block of the config file. A baseline rate of "model overloaded" 503s, outages
//! at set moments, daily resets that arrive late, real token counts that differ from the
//! characters/4 estimate by a factor per document, MAX_TOKENS truncations, invalid JSON and
//! slow answers.
//!
//! Everything runs on the simulator's clock (the injected [`fintel_time::SharedClock`], so
//! `FINTEL_FAKE_CLOCK` for `fintel sim serve`): outages and late resets are counted from
//! `weather.start` (default: when the simulator started), and a slow answer is held until the
//! clock has moved on by `slow_seconds`. Every draw is a pure function of the seed and of what
//! is decided (the request content and its attempt number, the quota day, the document), so a
//! run with the same seed and requests meets the same weather.

use std::time::Duration;

use fintel_time::{duration_to_span, pacific_date, pacific_day_start};
use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::rng::{mix, DetRng};

/// The `[weather]` block. Every field has a default that leaves the weather fair, so a file
/// names only what it changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeatherConfig {
    /// The instant outages and late resets are counted from; `None`: when the simulator starts.
    pub start: Option<Timestamp>,
    /// Baseline share of accepted generateContent requests answered 503 "overloaded" (they are
    /// recorded against the quota first, like every failed call at Google).
    pub unavailable: f64,
    /// Share of answers cut short with finishReason MAX_TOKENS.
    pub max_tokens: f64,
    /// Share of answers whose text is truncated, invalid JSON (finishReason STOP).
    pub invalid_json: f64,
    /// Share of answers held back `slow_seconds` of the simulator's clock.
    pub slow: f64,
    /// How long a slow answer takes, in seconds of the simulator's clock.
    pub slow_seconds: u64,
    /// Outages: every generateContent answers 503 in them, recorded against nothing.
    pub outages: Vec<WeatherOutage>,
    /// How late the daily reset arrives on each quota day, in minutes after 00:00 Pacific:
    /// the first entry on the Pacific date of `start`, the next the day after, cycling. Until
    /// then a project still counts the previous day's requests.
    pub late_reset_minutes: Vec<u32>,
    /// When `late_reset_minutes` is empty: each day's delay is drawn from `0..=` this many
    /// minutes (0: resets are on time).
    pub late_reset_max_minutes: u32,
    /// Real tokens = estimate x a factor drawn per document from
    /// `token_factor_min..=token_factor_max`; countTokens answers the real count, and the
    /// context and per-minute token limits refuse by it.
    pub token_factor_min: f64,
    /// See `token_factor_min`.
    pub token_factor_max: f64,
}

impl Default for WeatherConfig {
    fn default() -> Self {
        WeatherConfig {
            start: None,
            unavailable: 0.0,
            max_tokens: 0.0,
            invalid_json: 0.0,
            slow: 0.0,
            slow_seconds: 120,
            outages: Vec::new(),
            late_reset_minutes: Vec::new(),
            late_reset_max_minutes: 0,
            token_factor_min: 1.0,
            token_factor_max: 1.0,
        }
    }
}

/// An outage counted from `weather.start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeatherOutage {
    /// Minutes after `weather.start` at which it begins.
    pub after_minutes: u64,
    /// How many minutes it lasts.
    pub minutes: u64,
}

/// A fault the weather puts on an accepted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeatherFault {
    /// 503 "The model is overloaded".
    Unavailable,
    /// 200 with finishReason MAX_TOKENS and a truncated text.
    MaxTokens,
    /// 200 whose text is invalid JSON.
    InvalidJson,
    /// A normal answer, delivered after this much of the simulator's clock.
    Slow(Duration),
}

/// Longest late reset accepted: the SPEC's window in which a per-day refusal means "not reset
/// yet" is 3 hours; a little beyond lets a test go past it.
const MAX_LATE_RESET_MINUTES: u32 = 6 * 60;

impl WeatherConfig {
    /// Checks what TOML types cannot; each message names the key and what to change.
    pub fn validate(&self) -> Result<(), String> {
        let mut total = 0.0;
        for (name, p) in [
            ("unavailable", self.unavailable),
            ("max_tokens", self.max_tokens),
            ("invalid_json", self.invalid_json),
            ("slow", self.slow),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!(
                    "weather.{name} = {p} must be a probability between 0 and 1"
                ));
            }
            total += p;
        }
        if total > 1.0 + 1e-9 {
            return Err(format!(
                "weather probabilities (unavailable, max_tokens, invalid_json, slow) sum to {total}, more than 1"
            ));
        }
        if !(self.token_factor_min > 0.0 && self.token_factor_min <= self.token_factor_max)
            || self.token_factor_max > 10.0
        {
            return Err(format!(
                "weather.token_factor_min ({}) must be above 0 and not above token_factor_max ({}), which must be at most 10",
                self.token_factor_min, self.token_factor_max
            ));
        }
        if let Some(m) = self
            .late_reset_minutes
            .iter()
            .copied()
            .chain([self.late_reset_max_minutes])
            .find(|m| *m > MAX_LATE_RESET_MINUTES)
        {
            return Err(format!(
                "weather late reset of {m} minutes: at most {MAX_LATE_RESET_MINUTES} minutes after 00:00 Pacific"
            ));
        }
        if let Some(o) = self.outages.iter().find(|o| o.minutes == 0) {
            return Err(format!(
                "weather outage after {} minutes lasts 0 minutes: give it a positive length",
                o.after_minutes
            ));
        }
        Ok(())
    }
}

/// The weather of one simulator: its configuration, resolved start and seed.
#[derive(Debug, Clone)]
pub struct Weather {
    config: WeatherConfig,
    start: Timestamp,
    seed: u64,
}

impl Weather {
    /// The weather of `config`, its schedule counted from `config.start` or else `started`.
    pub fn new(config: WeatherConfig, started: Timestamp, seed: u64) -> Self {
        let start = config.start.unwrap_or(started);
        Weather {
            config,
            start,
            seed,
        }
    }

    /// The instant outages and late resets are counted from.
    pub fn start(&self) -> Timestamp {
        self.start
    }

    /// Whether `now` falls in a scripted outage.
    pub fn in_outage(&self, now: Timestamp) -> bool {
        self.config.outages.iter().any(|o| {
            let from = self.start + duration_to_span(Duration::from_secs(o.after_minutes * 60));
            let to = from + duration_to_span(Duration::from_secs(o.minutes * 60));
            from <= now && now < to
        })
    }

    /// How late the reset of Pacific date `date` arrives.
    pub fn late_reset(&self, date: Date) -> Duration {
        let day_index = (date - pacific_date(self.start)).get_days().max(0) as u64;
        let minutes = if self.config.late_reset_minutes.is_empty() {
            let max = i64::from(self.config.late_reset_max_minutes);
            DetRng::new(self.seed, &[day_index, 0x1A7E]).range_inclusive(0, max) as u32
        } else {
            let list = &self.config.late_reset_minutes;
            list[(day_index % list.len() as u64) as usize]
        };
        Duration::from_secs(u64::from(minutes) * 60)
    }

    /// The quota day a project counts a request at `now` in: the Pacific date, except that
    /// before that date's late reset the previous date still runs.
    pub fn quota_day(&self, now: Timestamp) -> Date {
        let today = pacific_date(now);
        let reset = pacific_day_start(today) + duration_to_span(self.late_reset(today));
        if now < reset {
            today.yesterday().unwrap_or(today)
        } else {
            today
        }
    }

    /// The factor of real tokens over the estimate for the document of `request` (a
    /// generateContent or countTokens body).
    pub fn token_factor(&self, request: &Value) -> f64 {
        let (min, max) = (self.config.token_factor_min, self.config.token_factor_max);
        if max <= min {
            return min;
        }
        let unit = DetRng::new(self.seed, &[document_key(request), 0x70CE]).unit();
        min + (max - min) * unit
    }

    /// The real token count of `request` whose characters/4 estimate is `estimate`.
    pub fn real_tokens(&self, estimate: u64, request: &Value) -> u64 {
        let factor = self.token_factor(request);
        if factor == 1.0 {
            return estimate;
        }
        (estimate as f64 * factor).ceil() as u64
    }

    /// The fault (if any) for the `attempt`-th accepted request of content `content_hash`.
    pub fn fault(&self, content_hash: u64, attempt: u32) -> Option<WeatherFault> {
        let c = &self.config;
        let draw = DetRng::new(self.seed, &[content_hash, u64::from(attempt), 0x3EA7]).unit();
        let mut threshold = 0.0;
        for (p, fault) in [
            (c.unavailable, WeatherFault::Unavailable),
            (c.max_tokens, WeatherFault::MaxTokens),
            (c.invalid_json, WeatherFault::InvalidJson),
            (
                c.slow,
                WeatherFault::Slow(Duration::from_secs(c.slow_seconds)),
            ),
        ] {
            threshold += p;
            if draw < threshold {
                return Some(fault);
            }
        }
        None
    }
}

/// Which document a request carries. A filing is recognised by its cover ("Central Index
/// Key: ..." and "fiscal year ended ..."), so a version of the same filing shortened to fit
/// keeps its factor; any other request by its whole text.
fn document_key(request: &Value) -> u64 {
    let mut text = String::new();
    collect_text(request, &mut text);
    let marker = |label: &str, len: usize| {
        text.find(label).map(|i| {
            text[i + label.len()..]
                .chars()
                .take(len)
                .collect::<String>()
        })
    };
    let cik = marker("Central Index Key: ", 10);
    let year_end = marker("fiscal year ended ", 24);
    let identity = match (cik, year_end) {
        (Some(c), Some(y)) => format!("{c}|{y}"),
        _ => text,
    };
    identity
        .bytes()
        .fold(0xCBF2_9CE4_8422_2325u64, |h, b| mix(h ^ u64::from(b)))
}

/// Appends every `text` string of a request body (contents, system instruction, a nested
/// `generateContentRequest`).
fn collect_text(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("text", Value::String(s)) => {
                        out.push_str(s);
                        out.push('\n');
                    }
                    // The response schema is not the document.
                    ("generationConfig" | "generation_config", _) => {}
                    _ => collect_text(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_text(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn weather(config: WeatherConfig) -> Weather {
        config.validate().unwrap();
        // 2026-03-02 00:10 Pacific (PST).
        Weather::new(config, ts("2026-03-02T08:10:00Z"), 16)
    }

    fn filing(cik: &str, year_end: &str, body: &str) -> Value {
        json!({"contents": [{"role": "user", "parts": [{"text": format!(
            "Write an analysis.\nFORM 10-K\nFor the fiscal year ended {year_end}\nCentral Index Key: {cik}. Trading symbol(s): X\n{body}"
        )}]}]})
    }

    #[test]
    fn outages_are_counted_from_the_start_and_end_on_time() {
        let w = weather(WeatherConfig {
            outages: vec![
                WeatherOutage {
                    after_minutes: 0,
                    minutes: 10,
                },
                WeatherOutage {
                    after_minutes: 24 * 60,
                    minutes: 120,
                },
            ],
            ..WeatherConfig::default()
        });
        let start = w.start();
        let at = |minutes: i64| start + jiff::Span::new().minutes(minutes);
        assert!(w.in_outage(at(0)));
        assert!(w.in_outage(at(9)));
        assert!(!w.in_outage(at(10)));
        assert!(!w.in_outage(at(24 * 60 - 1)));
        assert!(w.in_outage(at(24 * 60)));
        assert!(w.in_outage(at(24 * 60 + 119)));
        assert!(!w.in_outage(at(24 * 60 + 120)));
        assert!(!w.in_outage(at(-1)));
    }

    #[test]
    fn a_late_reset_keeps_the_previous_quota_day_until_it_arrives() {
        let w = weather(WeatherConfig {
            late_reset_minutes: vec![0, 45, 0],
            ..WeatherConfig::default()
        });
        let day = |s: &str| s.parse::<Date>().unwrap();
        // The start's date resets on time; the next is 45 minutes late; then on time again.
        assert_eq!(w.late_reset(day("2026-03-02")), Duration::ZERO);
        assert_eq!(
            w.late_reset(day("2026-03-03")),
            Duration::from_secs(45 * 60)
        );
        assert_eq!(w.late_reset(day("2026-03-04")), Duration::ZERO);
        assert_eq!(w.late_reset(day("2026-03-05")), Duration::ZERO);
        assert_eq!(
            w.late_reset(day("2026-03-06")),
            Duration::from_secs(45 * 60)
        );
        // 00:44 Pacific on 03-03 still counts in 03-02; 00:45 is the new day.
        assert_eq!(w.quota_day(ts("2026-03-03T08:44:59Z")), day("2026-03-02"));
        assert_eq!(w.quota_day(ts("2026-03-03T08:45:00Z")), day("2026-03-03"));
        assert_eq!(w.quota_day(ts("2026-03-04T08:00:00Z")), day("2026-03-04"));
    }

    #[test]
    fn drawn_late_resets_are_deterministic_by_seed_and_within_the_bound() {
        let config = WeatherConfig {
            late_reset_max_minutes: 90,
            ..WeatherConfig::default()
        };
        let a = weather(config.clone());
        let b = weather(config.clone());
        let other_seed = Weather::new(config, a.start(), 17);
        let dates: Vec<Date> = (0..30)
            .map(|i| pacific_date(a.start()) + jiff::Span::new().days(i))
            .collect();
        let delays: Vec<Duration> = dates.iter().map(|d| a.late_reset(*d)).collect();
        assert_eq!(
            delays,
            dates.iter().map(|d| b.late_reset(*d)).collect::<Vec<_>>()
        );
        assert_ne!(
            delays,
            dates
                .iter()
                .map(|d| other_seed.late_reset(*d))
                .collect::<Vec<_>>()
        );
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(90 * 60)));
        assert!(delays.iter().any(|d| *d > Duration::from_secs(10 * 60)));
    }

    #[test]
    fn real_tokens_are_the_estimate_times_one_factor_per_document() {
        let w = weather(WeatherConfig {
            token_factor_min: 1.1,
            token_factor_max: 1.4,
            ..WeatherConfig::default()
        });
        let full = filing(
            "0001800001",
            "December 31, 2023",
            &"Revenue grew. ".repeat(500),
        );
        let shortened = filing("0001800001", "December 31, 2023", "Revenue grew.");
        let other_year = filing("0001800001", "December 31, 2022", "Revenue grew.");
        let f = w.token_factor(&full);
        assert!((1.1..=1.4).contains(&f), "{f}");
        assert_eq!(
            f,
            w.token_factor(&shortened),
            "a fitted version keeps its factor"
        );
        assert_ne!(f, w.token_factor(&other_year));
        assert_eq!(w.real_tokens(1_000, &full), (1_000.0 * f).ceil() as u64);
        // Deterministic by seed.
        assert_eq!(f, weather(w.config.clone()).token_factor(&full));
        // Fair weather: the estimate stands.
        assert_eq!(
            weather(WeatherConfig::default()).real_tokens(1_000, &full),
            1_000
        );
    }

    #[test]
    fn faults_come_at_their_rates_and_a_retry_draws_again() {
        let w = weather(WeatherConfig {
            unavailable: 0.1,
            max_tokens: 0.05,
            invalid_json: 0.05,
            slow: 0.1,
            slow_seconds: 90,
            ..WeatherConfig::default()
        });
        let mut counts = [0u32; 5];
        for hash in 0..20_000u64 {
            let i = match w.fault(hash, 1) {
                None => 0,
                Some(WeatherFault::Unavailable) => 1,
                Some(WeatherFault::MaxTokens) => 2,
                Some(WeatherFault::InvalidJson) => 3,
                Some(WeatherFault::Slow(d)) => {
                    assert_eq!(d, Duration::from_secs(90));
                    4
                }
            };
            counts[i] += 1;
        }
        let share = |n: u32| f64::from(n) / 20_000.0;
        assert!((share(counts[1]) - 0.1).abs() < 0.01, "{counts:?}");
        assert!((share(counts[2]) - 0.05).abs() < 0.01, "{counts:?}");
        assert!((share(counts[3]) - 0.05).abs() < 0.01, "{counts:?}");
        assert!((share(counts[4]) - 0.1).abs() < 0.01, "{counts:?}");
        // The same request and attempt meet the same fault; attempts differ.
        let faulted = (0..1_000u64)
            .find(|h| w.fault(*h, 1) == Some(WeatherFault::Unavailable))
            .unwrap();
        assert_eq!(w.fault(faulted, 1), Some(WeatherFault::Unavailable));
        assert!((2..50).any(|a| w.fault(faulted, a).is_none()));
    }

    #[test]
    fn bad_weather_values_say_what_to_change() {
        let cases = [
            (
                WeatherConfig {
                    unavailable: 1.5,
                    ..WeatherConfig::default()
                },
                "weather.unavailable",
            ),
            (
                WeatherConfig {
                    unavailable: 0.6,
                    slow: 0.6,
                    ..WeatherConfig::default()
                },
                "sum to",
            ),
            (
                WeatherConfig {
                    token_factor_min: 1.5,
                    token_factor_max: 1.2,
                    ..WeatherConfig::default()
                },
                "token_factor_min",
            ),
            (
                WeatherConfig {
                    late_reset_minutes: vec![0, 900],
                    ..WeatherConfig::default()
                },
                "900 minutes",
            ),
            (
                WeatherConfig {
                    outages: vec![WeatherOutage {
                        after_minutes: 5,
                        minutes: 0,
                    }],
                    ..WeatherConfig::default()
                },
                "positive length",
            ),
        ];
        for (config, expected) in cases {
            let err = config.validate().unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }
}
