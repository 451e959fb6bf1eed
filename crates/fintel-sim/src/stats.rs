//! Counters of what the simulator received and how it answered, readable over HTTP
//! (`GET /__sim/stats`) and through [`crate::SimHandle::stats`], so tests and benchmarks can
//! assert that a client never went over a limit and never repeated a finished call.

use std::collections::{BTreeMap, VecDeque};

use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

/// Counters of generateContent traffic for one key, one project or one Pacific date.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeminiCounters {
    /// generateContent requests received (with a known key).
    pub received: u64,
    /// Answered 200 (including 200s carrying an injected bad output).
    pub accepted: u64,
    /// Refused 429 by the per-day request limit.
    pub refused_rpd: u64,
    /// Refused 429 by the per-minute request limit.
    pub refused_rpm: u64,
    /// Refused 429 by the per-minute input token limit.
    pub refused_tpm: u64,
    /// Of `refused_tpm`: the request alone was larger than the per-minute token cap.
    pub refused_request_too_big: u64,
    /// Refused 400 because the request exceeded the model's context limit.
    pub refused_context: u64,
    /// Refused 400 INVALID_ARGUMENT for a malformed request.
    pub invalid_request: u64,
    /// Arrived while the project was already at a limit (a correct client never does this).
    pub over_limit: u64,
    /// 200 STOP answers to request content that had already been answered 200 STOP.
    pub duplicates: u64,
    /// 200 with `promptFeedback.blockReason` (a prompt in `gemini.blocked_prompts`).
    #[serde(default)]
    pub blocked_prompts: u64,
    /// Injected faults by kind.
    pub faults: FaultCounters,
}

/// Injected faults by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounters {
    /// 503 "model is overloaded".
    pub unavailable: u64,
    /// 503 during a configured outage window.
    pub outage: u64,
    /// Answers delayed beyond a client's timeout.
    pub slow: u64,
    /// Connections dropped without a response.
    pub connection_reset: u64,
    /// 200 with truncated, invalid JSON.
    pub invalid_json: u64,
    /// 200 with finishReason MAX_TOKENS.
    pub max_tokens: u64,
    /// 200 with finishReason SAFETY.
    pub safety: u64,
}

/// Per-date counters, split by project and by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateCounters {
    /// Counters per project name.
    pub projects: BTreeMap<String, GeminiCounters>,
    /// Counters per API key.
    pub keys: BTreeMap<String, GeminiCounters>,
}

/// All Gemini counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeminiStats {
    /// Everything with a known key.
    pub total: GeminiCounters,
    /// Per API key.
    pub keys: BTreeMap<String, GeminiCounters>,
    /// Per project.
    pub projects: BTreeMap<String, GeminiCounters>,
    /// Per Pacific date (`YYYY-MM-DD`) of the injected clock.
    pub dates: BTreeMap<String, DateCounters>,
    /// Requests without a key (403 unregistered caller).
    pub missing_key: u64,
    /// Requests with a key no project lists, or listed as invalid (400 API_KEY_INVALID).
    pub invalid_key: u64,
    /// Requests with a key listed as leaked (403 PERMISSION_DENIED).
    pub leaked_key: u64,
    /// Requests with a key of a project whose API is not enabled (403 SERVICE_DISABLED).
    pub api_disabled: u64,
    /// Requests naming a model the simulator does not serve (404).
    pub unknown_model: u64,
    /// countTokens requests answered.
    pub count_tokens: u64,
    /// GET models/{model} requests answered.
    pub model_gets: u64,
    /// Pages of GET models (the model list) answered.
    #[serde(default)]
    pub model_lists: u64,
    /// Well-formed generateContent requests to a Gemini 3 model that carried a temperature or a
    /// `thinkingBudget`, against Google's advice for these models (temperature left at 1.0,
    /// `thinkingLevel` instead of the budget kept for backwards compatibility).
    #[serde(default)]
    pub gemini3_against_advice: u64,
    /// Well-formed generateContent requests to a Gemini 3 model with a `thinkingLevel`.
    #[serde(default)]
    pub gemini3_thinking_level: u64,
    /// Well-formed generateContent requests carrying `generationConfig.seed`.
    #[serde(default)]
    pub seeded: u64,
}

/// SEC traffic counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecStats {
    /// GET /files/company_tickers.json.
    pub tickers: u64,
    /// GET /submissions/... (both recent and older pages).
    pub submissions: u64,
    /// Documents under /Archives/edgar/data/.
    pub documents: u64,
    /// Filing index.json listings.
    pub indexes: u64,
    /// Requests answered 404.
    pub not_found: u64,
    /// Requests without a User-Agent header (SEC refuses those; the simulator answers 403).
    pub missing_user_agent: u64,
    /// The most SEC requests seen in any one second of the injected clock.
    pub max_requests_in_one_second: u64,
}

/// Everything `GET /__sim/stats` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Gemini counters.
    pub gemini: GeminiStats,
    /// SEC counters.
    pub sec: SecStats,
    /// OpenAI-compatible counters (zero unless `[openai]` is configured).
    #[serde(default)]
    pub openai: crate::openai::OpenAiStats,
}

/// Which counter an event increments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GeminiEvent {
    Received,
    Accepted,
    RefusedRpd,
    RefusedRpm,
    RefusedTpm,
    RefusedRequestTooBig,
    RefusedContext,
    InvalidRequest,
    OverLimit,
    Duplicate,
    BlockedPrompt,
    Unavailable,
    Outage,
    Slow,
    ConnectionReset,
    InvalidJson,
    MaxTokens,
    Safety,
}

impl GeminiCounters {
    fn bump(&mut self, event: GeminiEvent) {
        let c = match event {
            GeminiEvent::Received => &mut self.received,
            GeminiEvent::Accepted => &mut self.accepted,
            GeminiEvent::RefusedRpd => &mut self.refused_rpd,
            GeminiEvent::RefusedRpm => &mut self.refused_rpm,
            GeminiEvent::RefusedTpm => &mut self.refused_tpm,
            GeminiEvent::RefusedRequestTooBig => &mut self.refused_request_too_big,
            GeminiEvent::RefusedContext => &mut self.refused_context,
            GeminiEvent::InvalidRequest => &mut self.invalid_request,
            GeminiEvent::OverLimit => &mut self.over_limit,
            GeminiEvent::Duplicate => &mut self.duplicates,
            GeminiEvent::BlockedPrompt => &mut self.blocked_prompts,
            GeminiEvent::Unavailable => &mut self.faults.unavailable,
            GeminiEvent::Outage => &mut self.faults.outage,
            GeminiEvent::Slow => &mut self.faults.slow,
            GeminiEvent::ConnectionReset => &mut self.faults.connection_reset,
            GeminiEvent::InvalidJson => &mut self.faults.invalid_json,
            GeminiEvent::MaxTokens => &mut self.faults.max_tokens,
            GeminiEvent::Safety => &mut self.faults.safety,
        };
        *c += 1;
    }
}

impl GeminiStats {
    /// Counts `event` for `key` of `project` on Pacific date `date`.
    pub(crate) fn bump(&mut self, date: &str, project: &str, key: &str, event: GeminiEvent) {
        self.total.bump(event);
        self.keys.entry(key.to_owned()).or_default().bump(event);
        self.projects
            .entry(project.to_owned())
            .or_default()
            .bump(event);
        let day = self.dates.entry(date.to_owned()).or_default();
        day.projects
            .entry(project.to_owned())
            .or_default()
            .bump(event);
        day.keys.entry(key.to_owned()).or_default().bump(event);
    }
}

/// The SEC path classes counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecPathClass {
    Tickers,
    Submissions,
    Document,
    Index,
}

/// SEC counters plus the sliding one-second window behind `max_requests_in_one_second`.
#[derive(Debug, Default)]
pub(crate) struct SecRecorder {
    pub stats: SecStats,
    window: VecDeque<Timestamp>,
}

impl SecRecorder {
    /// Counts a request at `now`.
    pub fn arrive(&mut self, now: Timestamp) {
        let start = now - 1.second();
        while self.window.front().is_some_and(|t| *t <= start) {
            self.window.pop_front();
        }
        self.window.push_back(now);
        let n = self.window.len() as u64;
        self.stats.max_requests_in_one_second = self.stats.max_requests_in_one_second.max(n);
    }

    /// Counts a request of `class`.
    pub fn class(&mut self, class: SecPathClass) {
        let c = match class {
            SecPathClass::Tickers => &mut self.stats.tickers,
            SecPathClass::Submissions => &mut self.stats.submissions,
            SecPathClass::Document => &mut self.stats.documents,
            SecPathClass::Index => &mut self.stats.indexes,
        };
        *c += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_second_window_counts_the_densest_second() {
        let mut r = SecRecorder::default();
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        for ms in [0, 200, 400, 999, 1000, 1500, 3000] {
            r.arrive(t0 + ms.milliseconds());
        }
        // The densest one-second windows hold four arrivals: [0, 999] and (0, 1000].
        assert_eq!(r.stats.max_requests_in_one_second, 4);
    }

    #[test]
    fn events_are_counted_per_key_project_and_date() {
        let mut g = GeminiStats::default();
        g.bump("2026-03-08", "p", "k1", GeminiEvent::Received);
        g.bump("2026-03-08", "p", "k2", GeminiEvent::Received);
        g.bump("2026-03-09", "p", "k2", GeminiEvent::RefusedRpd);
        assert_eq!(g.total.received, 2);
        assert_eq!(g.projects["p"].received, 2);
        assert_eq!(g.keys["k2"].refused_rpd, 1);
        assert_eq!(g.dates["2026-03-08"].projects["p"].received, 2);
        assert_eq!(g.dates["2026-03-09"].keys["k2"].refused_rpd, 1);
    }
}
