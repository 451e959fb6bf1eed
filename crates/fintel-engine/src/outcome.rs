//! What to do with each provider call's outcome: pure decisions with table tests, carried out
//! by the runner (SPEC.md sections 2 and 3).
//!
//! Four questions are answered here and nowhere else:
//! - what the ledger records for a call, and so whether it counts against the day
//!   ([`ledger_outcome`]);
//! - what a failed call means for its task and its bucket ([`decide_call`]);
//! - what a per-day refusal means for its bucket: the day is spent, or the provider has not
//!   reset yet ([`daily_refusal`]);
//! - whether a transient failure fails its task or waits and retries ([`transient_step`]);
//! - which outage breakers a task's end closes ([`breakers_closed`]);
//! - what a retry inside an attempt carries across a wait ([`retry_continues`],
//!   [`retry_request`], [`retry_state_after`]).

use std::time::Duration;

use fintel_llm::params::{LearnedParam, RequestParams};
use fintel_llm::{repair_request, CallError, GenerateRequest, Thinking};
use fintel_time::{duration_to_span, span_between};
use jiff::Timestamp;

/// What a call's ledger row says about the daily limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerOutcome {
    /// The provider served it (an answer, a bad answer, a refusal for safety): it counts.
    Answered,
    /// Refused with a 429: the provider did not serve it, so it does not count.
    Refused,
    /// A server error or a timeout after sending: it may or may not have counted. It counts
    /// locally, but the provider's per-day refusal is the authority (see [`daily_refusal`]).
    Uncertain,
    /// Provably never reached the server (connection refused, DNS): refunded.
    NeverSent,
}

impl LedgerOutcome {
    /// Whether the row counts against the bucket's daily and per-minute limits.
    pub fn counts(self) -> bool {
        matches!(self, LedgerOutcome::Answered | LedgerOutcome::Uncertain)
    }
}

/// The ledger outcome of a call that ended with `err`.
pub fn ledger_outcome(err: &CallError) -> LedgerOutcome {
    match err {
        CallError::DailyQuotaExhausted { .. }
        | CallError::RateLimited { .. }
        | CallError::InputTokensPerMinute { .. }
        | CallError::KeyExhausted { .. } => LedgerOutcome::Refused,
        CallError::Transient {
            reached_server: false,
            ..
        } => LedgerOutcome::NeverSent,
        CallError::Transient { .. } => LedgerOutcome::Uncertain,
        CallError::ContextTooLong { .. }
        | CallError::KeyUnusable { .. }
        | CallError::BadOutput { .. }
        | CallError::Truncated { .. }
        | CallError::Refused { .. }
        | CallError::SchemaTooComplex { .. }
        | CallError::Configuration { .. }
        | CallError::ParameterRefused { .. }
        | CallError::ModelUnavailable { .. } => LedgerOutcome::Answered,
    }
}

/// The ledger's name for the outcome of a call that ended with `e`.
pub fn outcome_name(e: &CallError) -> &'static str {
    match e {
        CallError::DailyQuotaExhausted { .. } => "quota_day",
        CallError::RateLimited { .. } => "quota_minute",
        CallError::InputTokensPerMinute { .. } => "quota_tokens",
        CallError::ContextTooLong { .. } => "context_too_long",
        CallError::KeyUnusable { .. } => "key_unusable",
        CallError::KeyExhausted { .. } => "key_exhausted",
        CallError::Transient { .. } => "transient",
        CallError::BadOutput { .. } => "bad_output",
        CallError::Truncated { .. } => "truncated",
        CallError::Refused { .. } => "refused",
        CallError::SchemaTooComplex { .. } => "schema_too_complex",
        CallError::Configuration { .. } => "configuration",
        CallError::ModelUnavailable { .. } => "model_unavailable",
        CallError::ParameterRefused { .. } => "parameter_refused",
    }
}

/// What the runner knew when the call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallContext {
    /// The request's size: the provider's count where it was measured, else the estimate.
    pub input_tokens: u64,
    /// Whether `input_tokens` is the provider's own count.
    pub measured: bool,
    /// Input tokens of the bucket's other requests in the minute before this one.
    pub others_tokens_last_minute: u64,
    /// Whether this call was already the attempt's repair.
    pub repaired: bool,
    /// Whether this call was already the attempt's retry with less thinking.
    pub thinking_lowered: bool,
    /// Whether the call carried a pack of several years.
    pub packed: bool,
}

/// What to do after a failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAction {
    /// The provider refused for the day: apply [`daily_refusal`] to the bucket, then ask the
    /// pool again (another bucket, or a wait). No attempt is counted.
    DailyRefusal,
    /// A per-minute refusal: this bucket waits `wait`, then the same task asks again.
    PaceBucket { wait: Duration },
    /// The request alone is over a size limit: fit it to at most `max_tokens` (when known)
    /// before anything is sent again. Never resend it unchanged.
    Refit { max_tokens: Option<u64> },
    /// The key is unusable: disable it and go on with the others.
    DisableKey { reason: String },
    /// Transient (5xx, timeout, reset): retry with backoff; see [`transient_step`].
    Transient,
    /// The answer could not be used: send the repair request (schema, answer, errors).
    Repair,
    /// The answer was cut off at the output limit: send the same request once more with less
    /// thinking ([`lower_thinking`]), in the same attempt.
    LessThinking,
    /// The answer could not be used and the attempt's repair was spent: count the attempt.
    CountAttempt,
    /// The model will never answer this request: skip the task with this reason.
    Skip { reason: String },
    /// Every task would fail the same way: stop the batch (exit 4), failing no task.
    Stop { message: String },
    /// The analysis type's own schema is too complex for the model: every task would fail,
    /// so stop the batch (exit 4) naming the type ([`schema_too_complex_message`]).
    SchemaStop { message: String },
    /// The request was refused for its packing (a packed schema too complex), not for any
    /// year's content: every year of the pack goes alone from now on, charged nothing.
    GoAlone { reason: String },
    /// The batch's model, which pre-flight found served, is no longer: stop the batch (exit
    /// 4), failing no task, so the user can start a new batch or switch this one's model.
    ModelRetired { message: String },
    /// The provider refused one request parameter: [`param_refusal`] decides whether fintel
    /// learns to do without it (and sends again, counting no attempt) or stops.
    ParameterRefused { param: String, message: String },
}

/// What to do about a refused request parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamVerdict {
    /// Store the rule, say so, and send the request again without counting an attempt.
    Learn(LearnedParam),
    /// Another process learned it after this request was built: send again with it.
    AlreadyLearned,
    /// Stop the batch (exit 4) with this message.
    Stop(String),
}

/// Decides a refusal of `param` (the provider's `message`) of a request built with `sent`,
/// while the database now knows `known` for the model: a parameter the user set, one refused
/// again after fintel already changed it, or one fintel cannot do without stops the batch;
/// one fintel chose is dropped or renamed once.
pub fn param_refusal(
    param: &str,
    message: &str,
    sent: &RequestParams,
    known: &[LearnedParam],
) -> ParamVerdict {
    if sent.user_set(param) {
        let setting = match param {
            "temperature" => "FINTEL_TEMPERATURE or [model] temperature",
            "seed" => "FINTEL_SEED or [model] seed",
            _ => "FINTEL_THINKING or [model] thinking",
        };
        return ParamVerdict::Stop(format!(
            "the model refused the {param} you set ({setting}): {message}. Remove the setting \
             or change it to a value the model accepts"
        ));
    }
    if let Some(rule) = sent.learned.iter().find(|l| l.covers(param)) {
        return ParamVerdict::Stop(format!(
            "the model refused {param} again after fintel had changed it ({}): {message}",
            rule.describe()
        ));
    }
    if known.iter().any(|l| l.covers(param)) {
        return ParamVerdict::AlreadyLearned;
    }
    match LearnedParam::for_refused(param) {
        Some(rule) => ParamVerdict::Learn(rule),
        None => ParamVerdict::Stop(format!(
            "the model refused the request parameter {param}, which fintel cannot leave out: \
             {message}"
        )),
    }
}

/// Decides what a failed call means. Quota refusals never count as attempts.
pub fn decide_call(err: &CallError, ctx: &CallContext) -> CallAction {
    match err {
        CallError::DailyQuotaExhausted { .. } => CallAction::DailyRefusal,
        CallError::RateLimited { retry_after, .. } => CallAction::PaceBucket {
            wait: pacing_wait(*retry_after),
        },
        CallError::InputTokensPerMinute {
            limit_tokens,
            retry_after,
            ..
        } => {
            // Too big for the tier when the request alone is over the cap: by the provider's
            // count, or because nothing else was in the bucket's minute, so this request was
            // the whole of it whatever the estimate or the count said. A count is no proof of
            // the contrary: countTokens counts the prompt, while generateContent also counts
            // the response schema in its own encoding, and pacing a request the provider finds
            // too big would send it unchanged every minute for ever.
            let alone_over = match limit_tokens {
                Some(limit) => ctx.input_tokens > *limit || ctx.others_tokens_last_minute == 0,
                None => ctx.others_tokens_last_minute == 0,
            };
            if alone_over {
                CallAction::Refit {
                    max_tokens: *limit_tokens,
                }
            } else {
                CallAction::PaceBucket {
                    wait: pacing_wait(*retry_after),
                }
            }
        }
        CallError::ContextTooLong { max_tokens, .. } => CallAction::Refit {
            max_tokens: *max_tokens,
        },
        CallError::KeyUnusable { reason, .. } => CallAction::DisableKey {
            reason: reason.clone(),
        },
        CallError::KeyExhausted { message } => CallAction::DisableKey {
            reason: message.clone(),
        },
        CallError::Transient { .. } => CallAction::Transient,
        CallError::BadOutput { raw_text, .. } => {
            if !ctx.repaired && raw_text.is_some() {
                CallAction::Repair
            } else {
                CallAction::CountAttempt
            }
        }
        CallError::Truncated { .. } => {
            if ctx.thinking_lowered {
                CallAction::CountAttempt
            } else {
                CallAction::LessThinking
            }
        }
        CallError::Refused { reason } => CallAction::Skip {
            reason: format!("refused by the model: {reason}"),
        },
        // A packed schema repeats the type's once per year: alone, each year's is smaller and
        // may pass. A single year's schema is the type's own, and every task would fail.
        CallError::SchemaTooComplex { .. } if ctx.packed => CallAction::GoAlone {
            reason: "the packed response schema was refused as too complex (too many states)"
                .into(),
        },
        CallError::SchemaTooComplex { message } => CallAction::SchemaStop {
            message: message.clone(),
        },
        CallError::Configuration { message } => CallAction::Stop {
            message: message.clone(),
        },
        CallError::ParameterRefused { param, message } => CallAction::ParameterRefused {
            param: param.clone(),
            message: message.clone(),
        },
        CallError::ModelUnavailable { message } => CallAction::ModelRetired {
            message: message.clone(),
        },
    }
}

/// The exit-4 message of an analysis type whose own (single-year) schema the model refused as
/// too complex: which type, which model, what to change, and the provider's words.
pub fn schema_too_complex_message(analysis_type: &str, model: &str, provider: &str) -> String {
    format!(
        "the schema of analysis type `{analysis_type}` is too complex for {model}: simplify it \
         (fewer or shorter properties and enum values, no long array length limits or number \
         bounds) in a custom analysis type, or choose another model (--model). Provider said: \
         {provider}"
    )
}

/// The thinking budget of a retry after an answer was cut off: a quarter of an explicit
/// budget (at least 128, which every thinking model accepts), 1,024 tokens instead of the
/// provider's dynamic default, `low` instead of a higher level. Thinking counts against the
/// output limit, so less of it leaves room for the answer.
pub fn lower_thinking(thinking: &Thinking) -> Thinking {
    match thinking {
        Thinking::ProviderDefault | Thinking::Budget(-1) => Thinking::Budget(1024),
        Thinking::Budget(b) if *b > 128 => Thinking::Budget((b / 4).max(128)),
        Thinking::Budget(b) => Thinking::Budget(*b),
        Thinking::Level(level) if level == "low" || level == "minimal" => {
            Thinking::Level("minimal".to_string())
        }
        Thinking::Level(_) => Thinking::Level("low".to_string()),
    }
}

/// A retry inside an attempt as it stands: what the attempt's next call carries over from its
/// earlier ones. It is kept in the database (`retry_states`) from the moment it is decided, so a
/// wait for quota, or a killed process, never sends the original request again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryProgress {
    /// The answer was cut off: the request goes with less thinking ([`lower_thinking`]).
    pub thinking_lowered: bool,
    /// The answer could not be used: the repair of this answer, with what was wrong with it.
    pub repair: Option<(String, String)>,
}

/// Whether a saved retry goes on: only within the attempt it belongs to (`saved_attempt`, the
/// task's attempts when it was decided) and for the same call (the same tasks carried, in
/// order: a pack formed otherwise is another request). Anything else starts afresh.
pub fn retry_continues(
    saved_attempt: u32,
    saved_carried: &[i64],
    attempts: u32,
    carried: &[i64],
) -> bool {
    saved_attempt == attempts && saved_carried == carried
}

/// The request of a retry in progress, from the step's original request: less thinking first,
/// then the repair of the unusable answer (which keeps the request's thinking), exactly as the
/// calls before the wait built it.
pub fn retry_request(original: &GenerateRequest, progress: &RetryProgress) -> GenerateRequest {
    let mut request = original.clone();
    if progress.thinking_lowered {
        request.thinking = lower_thinking(&request.thinking);
    }
    match &progress.repair {
        Some((answer, problem)) => repair_request(&request, answer, problem),
        None => request,
    }
}

/// What a call's end does to the retry state of its attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryStateChange {
    /// A retry was decided: record it before anything is sent.
    Save,
    /// The attempt ended, or its request changes (a refit): forget it.
    Clear,
    /// The attempt goes on (quota, pacing, a disabled key, a transient failure or a stop that
    /// counts nothing): keep it for the next call.
    Keep,
}

/// [`RetryStateChange`] after a failed call decided as `action`.
pub fn retry_state_after(action: &CallAction) -> RetryStateChange {
    match action {
        CallAction::Repair | CallAction::LessThinking => RetryStateChange::Save,
        // A retired model's attempt goes on, if at all, with another model: its repair or
        // lowered thinking was for the old one.
        CallAction::Refit { .. }
        | CallAction::CountAttempt
        | CallAction::Skip { .. }
        | CallAction::GoAlone { .. }
        | CallAction::ModelRetired { .. } => RetryStateChange::Clear,
        CallAction::DailyRefusal
        | CallAction::PaceBucket { .. }
        | CallAction::DisableKey { .. }
        | CallAction::Transient
        | CallAction::ParameterRefused { .. }
        | CallAction::Stop { .. }
        | CallAction::SchemaStop { .. } => RetryStateChange::Keep,
    }
}

/// The wait of a per-minute refusal: the provider's hint, or a minute.
fn pacing_wait(retry_after: Option<Duration>) -> Duration {
    retry_after
        .unwrap_or(Duration::from_secs(60))
        .max(Duration::from_secs(1))
}

/// For how long after the Pacific midnight a per-day refusal may mean "not reset yet".
pub const LATE_RESET_WINDOW: Duration = Duration::from_secs(3 * 3600);
/// The first wait of a bucket the provider has not reset yet; it doubles.
pub const NOT_RESET_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// The longest of those waits.
pub const NOT_RESET_BACKOFF_MAX: Duration = Duration::from_secs(60 * 60);

/// A bucket's day when the provider refused it for the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayContext {
    pub now: Timestamp,
    /// The Pacific midnight that began the quota day.
    pub day_start: Timestamp,
    /// Requests of the bucket the provider answered this quota day.
    pub answered_today: u32,
    /// Requests of the quota day that count locally (answered and uncertain).
    pub counted_today: u32,
    /// The bucket's requests per day.
    pub requests_per_day: u32,
    /// How many "not reset yet" waits the bucket has had in a row.
    pub backoff_level: u32,
    /// The next reset (Pacific midnight plus the buffer).
    pub next_reset: Timestamp,
}

/// What a per-day refusal means for the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DailyVerdict {
    /// Early in the quota day with nothing answered yet: the provider has not reset. Try one
    /// request again at `until`; `level` is the new backoff level.
    NotResetYet { until: Timestamp, level: u32 },
    /// The provider's count says the day is spent: nothing until `until`.
    Spent { until: Timestamp },
}

/// Only a per-day refusal after a successful request that day, after the late-reset window,
/// or once the day's uncertain requests alone could have used the limit, marks the bucket
/// spent.
pub fn daily_refusal(ctx: &DayContext) -> DailyVerdict {
    let into_day = span_between(ctx.day_start, ctx.now);
    if ctx.answered_today == 0
        && ctx.counted_today < ctx.requests_per_day
        && into_day < LATE_RESET_WINDOW
    {
        let wait = NOT_RESET_BACKOFF
            .saturating_mul(1 << ctx.backoff_level.min(10))
            .min(NOT_RESET_BACKOFF_MAX);
        let until = (ctx.now + duration_to_span(wait)).min(ctx.next_reset);
        DailyVerdict::NotResetYet {
            until,
            level: ctx.backoff_level + 1,
        }
    } else {
        DailyVerdict::Spent {
            until: ctx.next_reset,
        }
    }
}

/// A transient failure of a task, as its streak stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransientContext {
    /// Attempts the task has used before this failure.
    pub attempts: u32,
    pub max_retries: u32,
    /// Whether other tasks fail alongside (an outage forming, the breaker not yet open).
    pub others_failing: bool,
    /// How long the task's streak of transient failures has lasted, this one included.
    pub streak: Duration,
    /// The least a streak must last before it may fail the task.
    pub min_streak: Duration,
}

/// What a transient failure does to its task (the breaker being closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransientStep {
    /// Back off and retry without counting an attempt.
    Hold,
    /// Count the attempt and retry with backoff.
    Retry,
    /// Count the attempt and fail the task: retries used up over a long enough streak.
    Fail,
}

/// A task fails for transient failures only when its retries are used up and its streak of
/// them spans the minimum time, so an outage never fails even a lone task. Its last attempt is
/// not used up while other tasks fail alongside.
pub fn transient_step(ctx: &TransientContext) -> TransientStep {
    let last_attempt = ctx.attempts >= ctx.max_retries;
    if last_attempt && ctx.others_failing {
        TransientStep::Hold
    } else if last_attempt && ctx.streak >= ctx.min_streak {
        TransientStep::Fail
    } else {
        TransientStep::Retry
    }
}

/// Which outside services answered a task while it ran (for SEC: its filings came; for the
/// provider: it answered a model call, well or not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Heard {
    pub sec: bool,
    pub provider: bool,
}

/// Which outage breakers a task's end closes: only a service that answered the task, and only
/// when the task ended (a result, a skip, a failure of its own). A task that reused a stored
/// result, or was skipped before asking anyone, heard nothing and says nothing about an
/// outage, however well it ended; a task that ended in a transient failure or was put back
/// closes nothing either.
pub fn breakers_closed(ended: bool, heard: Heard) -> Heard {
    if ended {
        heard
    } else {
        Heard::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_service_that_answered_closes_its_breaker() {
        let h = |sec, provider| Heard { sec, provider };
        // What the task was, whether it ended, what it heard -> what it closes.
        let table = [
            (
                "a result reused from an earlier batch",
                true,
                h(false, false),
                h(false, false),
            ),
            (
                "a year skipped without asking anyone",
                true,
                h(false, false),
                h(false, false),
            ),
            (
                "a year skipped after its document came",
                true,
                h(true, false),
                h(true, false),
            ),
            (
                "a company's filings resolved",
                true,
                h(true, false),
                h(true, false),
            ),
            ("a year answered", true, h(true, true), h(true, true)),
            (
                "an aggregate answered",
                true,
                h(false, true),
                h(false, true),
            ),
            (
                "a year failed on bad answers",
                true,
                h(true, true),
                h(true, true),
            ),
            (
                "a transient failure after the document",
                false,
                h(true, false),
                h(false, false),
            ),
            (
                "a transient failure after a bad answer",
                false,
                h(true, true),
                h(false, false),
            ),
            ("put back for quota", false, h(true, false), h(false, false)),
        ];
        for (what, ended, heard, closes) in table {
            assert_eq!(breakers_closed(ended, heard), closes, "{what}");
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn quota_day() -> CallError {
        CallError::DailyQuotaExhausted {
            message: "PerDay".into(),
            project: None,
        }
    }

    fn tokens_429(limit: Option<u64>) -> CallError {
        CallError::InputTokensPerMinute {
            limit_tokens: limit,
            retry_after: Some(Duration::from_secs(26)),
            message: "InputTokensPerModelPerMinute".into(),
            project: None,
        }
    }

    #[test]
    fn ledger_outcomes_say_what_counts() {
        let table: Vec<(CallError, LedgerOutcome)> = vec![
            (quota_day(), LedgerOutcome::Refused),
            (
                CallError::RateLimited {
                    retry_after: None,
                    message: String::new(),
                    project: None,
                },
                LedgerOutcome::Refused,
            ),
            (tokens_429(Some(250_000)), LedgerOutcome::Refused),
            (
                CallError::KeyExhausted {
                    message: String::new(),
                },
                LedgerOutcome::Refused,
            ),
            (
                CallError::Transient {
                    message: "503".into(),
                    reached_server: true,
                },
                LedgerOutcome::Uncertain,
            ),
            (
                CallError::Transient {
                    message: "connection refused".into(),
                    reached_server: false,
                },
                LedgerOutcome::NeverSent,
            ),
            (
                CallError::BadOutput {
                    reason: String::new(),
                    raw_text: None,
                    usage: Default::default(),
                },
                LedgerOutcome::Answered,
            ),
            (
                CallError::Refused {
                    reason: "SAFETY".into(),
                },
                LedgerOutcome::Answered,
            ),
            (truncated(), LedgerOutcome::Answered),
        ];
        for (err, expected) in table {
            assert_eq!(ledger_outcome(&err), expected, "{err:?}");
        }
        assert!(LedgerOutcome::Answered.counts() && LedgerOutcome::Uncertain.counts());
        assert!(!LedgerOutcome::Refused.counts() && !LedgerOutcome::NeverSent.counts());
    }

    #[test]
    fn call_decisions_follow_the_spec_table() {
        let ctx = |tokens: u64, measured: bool, others: u64| CallContext {
            input_tokens: tokens,
            measured,
            others_tokens_last_minute: others,
            repaired: false,
            thinking_lowered: false,
            packed: false,
        };
        let bad = |raw: Option<&str>| CallError::BadOutput {
            reason: "not JSON".into(),
            raw_text: raw.map(str::to_string),
            usage: Default::default(),
        };
        let table: Vec<(CallError, CallContext, CallAction)> = vec![
            (quota_day(), ctx(10, false, 0), CallAction::DailyRefusal),
            (
                CallError::RateLimited {
                    retry_after: None,
                    message: String::new(),
                    project: None,
                },
                ctx(10, false, 0),
                CallAction::PaceBucket {
                    wait: Duration::from_secs(60),
                },
            ),
            // Over the cap by the provider's count: refit.
            (
                tokens_429(Some(1_000)),
                ctx(1_200, true, 500),
                CallAction::Refit {
                    max_tokens: Some(1_000),
                },
            ),
            // Under the cap by the estimate, but alone in the minute: the estimate was wrong.
            (
                tokens_429(Some(1_000)),
                ctx(900, false, 0),
                CallAction::Refit {
                    max_tokens: Some(1_000),
                },
            ),
            // Under the cap with others in the minute: a per-minute wait.
            (
                tokens_429(Some(1_000)),
                ctx(400, false, 800),
                CallAction::PaceBucket {
                    wait: Duration::from_secs(26),
                },
            ),
            // Measured under the cap and alone: the provider counts more than countTokens did
            // (the response schema): the request alone is over the cap, refit.
            (
                tokens_429(Some(1_000)),
                ctx(900, true, 0),
                CallAction::Refit {
                    max_tokens: Some(1_000),
                },
            ),
            // Measured under the cap with others in the minute: a per-minute wait.
            (
                tokens_429(Some(1_000)),
                ctx(900, true, 300),
                CallAction::PaceBucket {
                    wait: Duration::from_secs(26),
                },
            ),
            (
                CallError::ContextTooLong {
                    max_tokens: Some(1_048_576),
                    message: String::new(),
                },
                ctx(10, false, 0),
                CallAction::Refit {
                    max_tokens: Some(1_048_576),
                },
            ),
            (
                CallError::Transient {
                    message: "503".into(),
                    reached_server: true,
                },
                ctx(10, false, 0),
                CallAction::Transient,
            ),
            (bad(Some("{")), ctx(10, false, 0), CallAction::Repair),
            (bad(None), ctx(10, false, 0), CallAction::CountAttempt),
            (
                bad(Some("{")),
                CallContext {
                    repaired: true,
                    ..ctx(10, false, 0)
                },
                CallAction::CountAttempt,
            ),
            (
                CallError::Configuration {
                    message: "no quota".into(),
                },
                ctx(10, false, 0),
                CallAction::Stop {
                    message: "no quota".into(),
                },
            ),
            (
                CallError::ModelUnavailable {
                    message: "models/gemini-3-flash is not found".into(),
                },
                ctx(10, false, 0),
                CallAction::ModelRetired {
                    message: "models/gemini-3-flash is not found".into(),
                },
            ),
            // A schema too complex: a pack's years go alone (the packed schema repeats the
            // type's once per year); a single year's is the type's own, so the batch stops.
            (
                too_complex(),
                CallContext {
                    packed: true,
                    ..ctx(10, false, 0)
                },
                CallAction::GoAlone {
                    reason: "the packed response schema was refused as too complex (too many \
                             states)"
                        .into(),
                },
            ),
            (
                too_complex(),
                ctx(10, false, 0),
                CallAction::SchemaStop {
                    message: "too many states".into(),
                },
            ),
            // A prompt refused for its content skips its task, packed or not (a skipped lead
            // breaks its pack up, so each year is asked alone).
            (
                CallError::Refused {
                    reason: "HTTP 400 content_filter, filtered".into(),
                },
                ctx(10, false, 0),
                CallAction::Skip {
                    reason: "refused by the model: HTTP 400 content_filter, filtered".into(),
                },
            ),
            (
                CallError::ParameterRefused {
                    param: "max_tokens".into(),
                    message: "Unsupported parameter".into(),
                },
                ctx(10, false, 0),
                CallAction::ParameterRefused {
                    param: "max_tokens".into(),
                    message: "Unsupported parameter".into(),
                },
            ),
            (truncated(), ctx(10, false, 0), CallAction::LessThinking),
            (
                truncated(),
                CallContext {
                    thinking_lowered: true,
                    ..ctx(10, false, 0)
                },
                CallAction::CountAttempt,
            ),
        ];
        for (err, ctx, expected) in table {
            assert_eq!(decide_call(&err, &ctx), expected, "{err:?} {ctx:?}");
        }
    }

    #[test]
    fn a_schema_too_complex_names_the_type_the_model_and_what_to_change() {
        let provider = "HTTP 400, INVALID_ARGUMENT: The specified schema produces a constraint \
                        that has too many states for serving.";
        let message = schema_too_complex_message("fundamental", "gemini-2.5-flash", provider);
        for needle in [
            "analysis type `fundamental`",
            "gemini-2.5-flash",
            "too many states",
            "fewer",
            "another model (--model)",
        ] {
            assert!(message.contains(needle), "{needle}: {message}");
        }
    }

    fn too_complex() -> CallError {
        CallError::SchemaTooComplex {
            message: "too many states".into(),
        }
    }

    fn truncated() -> CallError {
        CallError::Truncated {
            message: "MAX_TOKENS".into(),
            usage: Default::default(),
        }
    }

    #[test]
    fn a_refused_parameter_is_learned_once_unless_the_user_set_it() {
        use fintel_llm::params::{request_params, ParamAction, ParamsInput, UserParams};
        let rename = LearnedParam::for_refused("max_tokens").unwrap();
        let drop_temperature = LearnedParam::for_refused("temperature").unwrap();
        let r = [rename.clone()];
        let d = [drop_temperature];
        let sent = |user: &UserParams, learned: &[LearnedParam]| {
            request_params(&ParamsInput {
                server: fintel_llm::ServerKind::OpenAiCompatible,
                model: "acme-1",
                thinks: None,
                max_output_tokens: Some(1_000),
                user,
                learned,
            })
        };
        let none = UserParams::default();
        let user_temperature = UserParams {
            temperature: Some(0.5),
            ..UserParams::default()
        };
        let verdict =
            |param: &str, user: &UserParams, applied: &[LearnedParam], known: &[LearnedParam]| {
                param_refusal(param, "the provider's words", &sent(user, applied), known)
            };
        let stops = |v: &ParamVerdict, says: &str| matches!(v, ParamVerdict::Stop(m) if m.contains(says) && m.contains("the provider's words"));
        // (param, user, rules the request was built with, rules known now) -> verdict
        assert_eq!(
            verdict("max_tokens", &none, &[], &[]),
            ParamVerdict::Learn(rename.clone())
        );
        assert_eq!(
            verdict("temperature", &none, &r, &r),
            ParamVerdict::Learn(LearnedParam {
                param: "temperature".into(),
                action: ParamAction::Drop
            })
        );
        // Another process learned it while this request was on its way.
        assert_eq!(
            verdict("max_tokens", &none, &[], &r),
            ParamVerdict::AlreadyLearned
        );
        // Refused again after the rename, under either name.
        assert!(stops(
            &verdict("max_completion_tokens", &none, &r, &r),
            "again"
        ));
        assert!(stops(&verdict("temperature", &none, &d, &d), "again"));
        // The user's own setting is never learned away.
        assert!(stops(
            &verdict("temperature", &user_temperature, &[], &[]),
            "FINTEL_TEMPERATURE"
        ));
        // A parameter fintel cannot do without.
        assert!(stops(
            &verdict("response_format", &none, &[], &[]),
            "cannot leave out"
        ));
    }

    #[test]
    fn a_saved_retry_goes_on_only_in_its_attempt_and_for_the_same_call() {
        // (saved attempt, saved tasks, attempts now, tasks now), whether it goes on.
        type Row<'a> = ((u32, &'a [i64], u32, &'a [i64]), bool);
        let table: &[Row<'_>] = &[
            ((0, &[7], 0, &[7]), true),
            ((1, &[7, 8], 1, &[7, 8]), true),
            // An attempt was counted since (a transient failure): start afresh.
            ((0, &[7], 1, &[7]), false),
            // The pack formed otherwise, or the year goes alone now.
            ((0, &[7, 8], 0, &[7, 9]), false),
            ((0, &[7, 8], 0, &[7]), false),
            ((0, &[8, 7], 0, &[7, 8]), false),
        ];
        for ((saved_attempt, saved, attempts, carried), want) in table {
            assert_eq!(
                retry_continues(*saved_attempt, saved, *attempts, carried),
                *want,
                "{saved_attempt} {saved:?} {attempts} {carried:?}"
            );
        }
    }

    #[test]
    fn a_retry_in_progress_rebuilds_the_request_the_calls_before_the_wait_sent() {
        let original = GenerateRequest {
            model: "m".into(),
            system_instruction: Some("system".into()),
            turns: vec![fintel_llm::Turn {
                role: fintel_llm::Role::User,
                text: "the whole filing".into(),
            }],
            response_schema: serde_json::json!({"type": "object"}),
            temperature: Some(0.2),
            max_output_tokens: Some(100),
            thinking: Thinking::Budget(8192),
            seed: None,
            output_field: None,
        };
        let lowered = RetryProgress {
            thinking_lowered: true,
            repair: None,
        };
        let repair = ("{\"a\": ".to_string(), "EOF while parsing".to_string());
        let repaired = RetryProgress {
            thinking_lowered: false,
            repair: Some(repair.clone()),
        };
        let both = RetryProgress {
            thinking_lowered: true,
            repair: Some(repair.clone()),
        };
        assert_eq!(
            retry_request(&original, &RetryProgress::default()),
            original
        );
        let mut less = original.clone();
        less.thinking = Thinking::Budget(2048);
        assert_eq!(retry_request(&original, &lowered), less);
        assert_eq!(
            retry_request(&original, &repaired),
            repair_request(&original, &repair.0, &repair.1)
        );
        let r = retry_request(&original, &both);
        assert_eq!(r, repair_request(&less, &repair.0, &repair.1));
        assert!(
            !r.turns[0].text.contains("the whole filing"),
            "never the filing again"
        );
    }

    #[test]
    fn the_retry_state_is_saved_when_decided_and_kept_until_its_attempt_ends() {
        let table = [
            (CallAction::Repair, RetryStateChange::Save),
            (CallAction::LessThinking, RetryStateChange::Save),
            (CallAction::CountAttempt, RetryStateChange::Clear),
            (
                CallAction::Refit { max_tokens: None },
                RetryStateChange::Clear,
            ),
            (
                CallAction::Skip {
                    reason: "SAFETY".into(),
                },
                RetryStateChange::Clear,
            ),
            (CallAction::DailyRefusal, RetryStateChange::Keep),
            (
                CallAction::PaceBucket {
                    wait: Duration::from_secs(60),
                },
                RetryStateChange::Keep,
            ),
            (CallAction::Transient, RetryStateChange::Keep),
            (
                CallAction::DisableKey {
                    reason: "leaked".into(),
                },
                RetryStateChange::Keep,
            ),
            (
                CallAction::Stop {
                    message: "no quota".into(),
                },
                RetryStateChange::Keep,
            ),
        ];
        for (action, want) in table {
            assert_eq!(retry_state_after(&action), want, "{action:?}");
        }
    }

    #[test]
    fn less_thinking_after_a_cut_off_answer() {
        let level = |l: &str| Thinking::Level(l.to_string());
        let table = [
            (Thinking::ProviderDefault, Thinking::Budget(1024)),
            (Thinking::Budget(-1), Thinking::Budget(1024)),
            (Thinking::Budget(8192), Thinking::Budget(2048)),
            (Thinking::Budget(256), Thinking::Budget(128)),
            (Thinking::Budget(0), Thinking::Budget(0)),
            (level("high"), level("low")),
            (level("low"), level("minimal")),
        ];
        for (before, after) in table {
            assert_eq!(lower_thinking(&before), after, "{before:?}");
        }
    }

    #[test]
    fn a_per_day_refusal_early_in_the_day_means_not_reset_yet() {
        // 2026-06-15 is a PDT day: midnight is 07:00Z, the next reset 07:05Z the day after.
        let day_start = t("2026-06-15T07:00:00Z");
        let next_reset = t("2026-06-16T07:05:00Z");
        let ctx = |now: &str, answered: u32, level: u32| DayContext {
            now: t(now),
            day_start,
            answered_today: answered,
            counted_today: answered,
            requests_per_day: 20,
            backoff_level: level,
            next_reset,
        };
        let table = [
            // First refusal at 00:05: 5 minutes.
            (
                ctx("2026-06-15T07:05:00Z", 0, 0),
                DailyVerdict::NotResetYet {
                    until: t("2026-06-15T07:10:00Z"),
                    level: 1,
                },
            ),
            // Then doubling: 10, 20 minutes ...
            (
                ctx("2026-06-15T07:10:00Z", 0, 1),
                DailyVerdict::NotResetYet {
                    until: t("2026-06-15T07:20:00Z"),
                    level: 2,
                },
            ),
            // ... capped at an hour.
            (
                ctx("2026-06-15T08:00:00Z", 0, 7),
                DailyVerdict::NotResetYet {
                    until: t("2026-06-15T09:00:00Z"),
                    level: 8,
                },
            ),
            // After a success the same day, the refusal is the provider's count: spent.
            (
                ctx("2026-06-15T07:30:00Z", 1, 0),
                DailyVerdict::Spent { until: next_reset },
            ),
            // After the first 3 hours, spent even with nothing answered.
            (
                ctx("2026-06-15T10:00:00Z", 0, 0),
                DailyVerdict::Spent { until: next_reset },
            ),
            // Nothing answered, but the uncertain requests alone could have used the day: the
            // refusal is believable, not a late reset.
            (
                DayContext {
                    counted_today: 20,
                    ..ctx("2026-06-15T07:30:00Z", 0, 0)
                },
                DailyVerdict::Spent { until: next_reset },
            ),
        ];
        for (ctx, expected) in table {
            assert_eq!(daily_refusal(&ctx), expected, "{ctx:?}");
        }
    }

    #[test]
    fn transient_failures_fail_a_task_only_over_a_long_enough_streak() {
        let hour = Duration::from_secs(3600);
        let ctx = |attempts: u32, others: bool, streak_min: u64| TransientContext {
            attempts,
            max_retries: 1,
            others_failing: others,
            streak: Duration::from_secs(streak_min * 60),
            min_streak: hour,
        };
        let table = [
            (ctx(0, false, 0), TransientStep::Retry),
            // A lone task's second 503 a minute after the first: retry, not fail.
            (ctx(1, false, 1), TransientStep::Retry),
            (ctx(5, false, 59), TransientStep::Retry),
            (ctx(5, false, 60), TransientStep::Fail),
            // Others failing alongside: hold the last attempt.
            (ctx(1, true, 120), TransientStep::Hold),
            (ctx(0, true, 0), TransientStep::Retry),
        ];
        for (ctx, expected) in table {
            assert_eq!(transient_step(&ctx), expected, "{ctx:?}");
        }
    }
}
