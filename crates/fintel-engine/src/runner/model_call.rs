//! One model call of a task, carried out: its ledger row first, then the request, then the
//! decision of [`crate::outcome::decide_call`] applied (SPEC.md section 3). Also the provider's
//! token count of a request that may be too large, and the fitting to it.

use std::sync::atomic::Ordering;

use fintel_llm::{repair_request, CallError, GenerateRequest, Role, Turn};
use fintel_store::{AttemptSpent, CallIntent, CallPurpose, ClaimedTask, RetryState};
use fintel_time::local_and_pacific;
use jiff::Timestamp;
use serde_json::Value;

use super::{EngineInner, Level, Side, TaskEnd};
use crate::budget::{self, Budget, BudgetInput, ContextTooSmall};
use crate::keys::{Grant, WaitReason};
use crate::outcome::{
    decide_call, ledger_outcome, lower_thinking, outcome_name, retry_continues, retry_request,
    retry_state_after, schema_too_complex_message, CallAction, CallContext, DailyVerdict,
    LedgerOutcome, RetryProgress, RetryStateChange,
};
use crate::ports::StepRequest;
use crate::projects::ProjectWatch;
use crate::EngineError;

impl EngineInner {
    /// The context of a request now: the configured (or server's) one, or less where a
    /// server's refusal or truncation showed less.
    pub(super) fn context_tokens(&self) -> u64 {
        self.e
            .settings
            .context_tokens
            .min(self.learned_context.load(Ordering::Relaxed))
    }

    /// Learns that the server's context is at most `tokens`, for every later request.
    pub(super) fn learn_context(&self, tokens: u64) {
        self.learned_context
            .fetch_min(tokens.max(1), Ordering::Relaxed);
    }

    /// The budget of a year's request now ([`budget::plan`]).
    pub(super) fn budget(&self) -> Result<Budget, ContextTooSmall> {
        budget::plan(&self.budget_input())
    }

    /// What the budget is planned from now.
    fn budget_input(&self) -> BudgetInput {
        let settings = &self.e.settings;
        BudgetInput {
            context_tokens: self.context_tokens(),
            output_in_context: settings.output_in_context,
            wanted_output: settings
                .max_output_tokens
                .unwrap_or(crate::settings::FALLBACK_MAX_OUTPUT_TOKENS),
            overhead_tokens: self.e.analysis.year_overhead_tokens(),
            request_cap_tokens: self.e.pool.max_request_tokens().max(1),
            output_floor: self.output_floor.load(Ordering::Relaxed),
        }
    }

    /// The output limit sent: the run's, or the budget's where the output shares the context.
    fn output_limit(&self) -> Option<u32> {
        let settings = &self.e.settings;
        if !settings.output_in_context {
            return settings.max_output_tokens;
        }
        match self.budget() {
            Ok(b) => Some(b.max_output_tokens),
            Err(_) => settings.max_output_tokens,
        }
    }

    /// Tokens the prompt may take: the context, less the output limit where they share it.
    pub(super) fn input_context(&self) -> u64 {
        let context = self.context_tokens();
        match (self.e.settings.output_in_context, self.output_limit()) {
            (true, Some(out)) => context.saturating_sub(u64::from(out)).max(1),
            _ => context,
        }
    }

    /// After a server showed its context is `context` tokens: learns it and gives the new
    /// document budget, always smaller than `budget`, or the configuration stop when no
    /// useful answer fits.
    pub(super) fn refit_to_context(&self, context: u64, budget: u64) -> Result<u64, String> {
        self.learn_context(context);
        let planned = self
            .budget()
            .map_err(|e| self.context_too_small_message(&e))?
            .document_tokens;
        Ok(planned.min(budget / 2 + budget / 4).max(1))
    }

    /// The stop of a context too small, saying how large it must be and where to set it.
    pub(super) fn context_too_small_message(&self, e: &ContextTooSmall) -> String {
        let advice = self
            .e
            .settings
            .truncation_advice
            .as_deref()
            .map(|a| format!("; {a}"))
            .unwrap_or_default();
        format!(
            "{e}. Give the model more context (FINTEL_CONTEXT_TOKENS or [model] context_tokens \
             in fintel.toml say what fintel may use){advice}"
        )
    }

    /// The stop of a server that keeps truncating prompts silently.
    pub(super) fn truncation_message(&self, used: u64) -> String {
        let advice = self
            .e
            .settings
            .truncation_advice
            .as_deref()
            .unwrap_or("raise the server's context");
        format!(
            "the server keeps truncating prompts silently: it read only {used} tokens of a \
             request fitted to its context, so its answers would not be about the whole \
             document and none was stored. {advice}, or set FINTEL_CONTEXT_TOKENS to the \
             context it really has"
        )
    }

    /// The request of a step, with the parameters of the model's family and what was learned
    /// about the model ([`Self::params_for`]).
    pub(super) fn build_request(&self, step: &StepRequest) -> GenerateRequest {
        let settings = &self.e.settings;
        let max_output_tokens = self.output_limit();
        let mut request = GenerateRequest {
            model: settings.model.clone(),
            system_instruction: step.system.clone(),
            turns: vec![Turn {
                role: Role::User,
                text: step.prompt.clone(),
            }],
            response_schema: step.schema.clone(),
            temperature: None,
            max_output_tokens,
            thinking: fintel_llm::Thinking::ProviderDefault,
            seed: None,
            output_field: None,
        };
        self.params_for(max_output_tokens).apply(&mut request);
        request
    }

    /// The largest request that could ever be sent: the model's context or the largest
    /// bucket's tokens-per-minute cap, whichever is smaller.
    pub(super) fn size_limit(&self) -> u64 {
        self.input_context()
            .min(self.e.pool.max_request_tokens().max(1))
    }

    /// The provider's own count of a request's input tokens (Gemini `countTokens`, free),
    /// asked when the estimate is within 25% of the size limit or `always`; cached per
    /// request. `None` when not needed or the provider cannot count: the estimate stands.
    pub(super) async fn measure(
        &self,
        request: &GenerateRequest,
        estimate: u64,
        always: bool,
    ) -> Result<Option<u64>, EngineError> {
        let limit = self.size_limit();
        if !always && estimate.saturating_mul(4) < limit.saturating_mul(3) {
            return Ok(None);
        }
        let digest = request_digest(request);
        if let Some(n) = self.store().token_count(&digest, &request.model)? {
            return Ok(Some(n));
        }
        let key = self.e.pool.any_usable_key(self.store())?;
        match self.e.provider.count_tokens(key.as_ref(), request).await {
            Ok(Some(count)) => {
                // countTokens counts the prompt; generateContent adds the response schema,
                // so its estimate is added to make the count what the request will cost.
                let total = count.total_tokens + schema_tokens(request);
                self.store()
                    .save_token_count(&digest, &request.model, total, self.now())?;
                Ok(Some(total))
            }
            // The count is an aid: without it the estimate is used, and a size refusal refits.
            Ok(None) | Err(_) => Ok(None),
        }
    }

    /// Sends a request to the model through the key pool: the ledger row first, then the
    /// call, then the decision of [`decide_call`] carried out (SPEC.md section 3).
    /// `input_tokens` is the provider's count when `measured`, else the estimate.
    pub(super) async fn call_model(
        &self,
        task: &ClaimedTask,
        step: &StepRequest,
        input_tokens: u64,
        measured: bool,
        started: Timestamp,
    ) -> Result<ModelOutcome, EngineError> {
        self.call_model_with(
            task,
            step,
            input_tokens,
            measured,
            started,
            Check::Schema,
            &[],
        )
        .await
    }

    /// [`Self::call_model`] with the answer checked by `check`, and every ledger row linked to
    /// `carried` as well (the tasks of a packed call; `task` leads it and takes the outcome).
    /// A retry inside the attempt (a repair, less thinking) is recorded when decided and taken
    /// up again by the next call of the same attempt, so a wait never throws it away.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn call_model_with(
        &self,
        task: &ClaimedTask,
        step: &StepRequest,
        input_tokens: u64,
        measured: bool,
        started: Timestamp,
        check: Check,
        carried: &[i64],
    ) -> Result<ModelOutcome, EngineError> {
        let call_tasks: Vec<i64> = if carried.is_empty() {
            vec![task.id]
        } else {
            carried.to_vec()
        };
        self.ensure_learned_params()?;
        let original = self.build_request(step);
        let mut params = self.params_for(original.max_output_tokens);
        let saved = self.store().retry_state(task.id)?;
        let mut has_state = saved.is_some();
        let mut usage = CallUsage::default();
        let mut progress = RetryProgress::default();
        if let Some(s) =
            saved.filter(|s| retry_continues(s.attempt, &s.carried, task.attempts, &call_tasks))
        {
            // The attempt's calls before the wait count in its result.
            usage.calls = s.spent.calls;
            usage.tokens = fintel_llm::Usage {
                prompt_tokens: s.spent.prompt_tokens,
                output_tokens: s.spent.output_tokens,
                thinking_tokens: s.spent.thinking_tokens,
            };
            progress = RetryProgress {
                thinking_lowered: s.thinking_lowered,
                repair: s.repair,
            };
        }
        let mut request = retry_request(&original, &progress);
        let mut repaired = progress.repair.is_some();
        let mut thinking_lowered = progress.thinking_lowered;
        let mut input_tokens = if repaired {
            // The repair does not carry the filing: its row has its own size.
            fintel_llm::estimate_request_tokens(&request)
        } else {
            input_tokens
        };
        // Forgets the attempt's retry once the attempt ends (or its request changes).
        let clear = |has_state: bool| -> Result<(), EngineError> {
            if has_state {
                self.store().clear_retry_state(task.id)?;
            }
            Ok(())
        };
        loop {
            let now = self.now();
            if self.lock_breakers().provider.holds_back(started) {
                // The provider's breaker opened while this task prepared its request: only the
                // probe goes out. Back to pending, nothing counted.
                self.store()
                    .release_task(task.id, self.owner(), None, now)?;
                return Ok(ModelOutcome::Ended(TaskEnd::Deferred));
            }
            let purpose = if repaired {
                CallPurpose::Repair
            } else {
                CallPurpose::Generate
            };
            let intent = CallIntent {
                bucket: "",
                key_fingerprint: None,
                bucket_keys: &[],
                batch_id: Some(&self.batch.id),
                task_id: Some(task.id),
                purpose,
                input_tokens,
            };
            let (call_id, bucket, key) =
                match self.e.pool.acquire(self.store(), now, &intent, true)? {
                    Grant::Granted {
                        call_id,
                        bucket,
                        key,
                    } => (call_id, bucket, key),
                    Grant::TooLarge { cap } => {
                        clear(has_state)?;
                        return Ok(ModelOutcome::TooLong(Some(cap)));
                    }
                    Grant::Wait { until, why } => {
                        // Quota is not a failure: back to pending, no attempt counted. A task
                        // waiting for the daily reset stays claimable, so a resume with more
                        // keys takes it at once, and the claim check keeps it unclaimed
                        // meanwhile. Only when that check would let it be claimed again at once
                        // (pacing, or free buckets too small for it) is it given a time.
                        let claimable_now = why == WaitReason::Pacing
                            || matches!(
                                self.e.pool.acquire(
                                    self.store(),
                                    now,
                                    &CallIntent {
                                        input_tokens: 0,
                                        ..intent.clone()
                                    },
                                    false
                                )?,
                                Grant::Granted { .. }
                            );
                        if why != WaitReason::Pacing {
                            // Hours waiting for quota are not hours of failing: a streak of
                            // transient failures spans only time spent trying.
                            self.store().end_transient_streak(task.id)?;
                        }
                        if claimable_now && why != WaitReason::Pacing {
                            // Only buckets too small for it have quota: the task waits for one
                            // it fits, and its size says so to the batch and `fintel keys`.
                            self.store().release_task_waiting_for_cap(
                                task.id,
                                self.owner(),
                                until,
                                input_tokens,
                                now,
                            )?;
                        } else {
                            let not_before = claimable_now.then_some(until);
                            self.store()
                                .release_task(task.id, self.owner(), not_before, now)?;
                        }
                        return Ok(ModelOutcome::Ended(TaskEnd::Deferred));
                    }
                };
            if !carried.is_empty() {
                self.store().link_call_tasks(call_id, carried)?;
            }
            usage.calls += 1;
            usage.last_call = Some(call_id);
            let sent = std::time::Instant::now();
            let answer = self.e.provider.generate(key.as_ref(), &request).await;
            let latency = sent.elapsed().as_millis() as u64;
            let now = self.now();
            let secrets: Vec<&str> = key.iter().map(|k| k.secret()).collect();
            let err = match answer {
                Ok(gen) => {
                    super::heard::provider_answered();
                    let truncated = self.e.settings.truncation_advice.as_ref().and_then(|_| {
                        budget::truncation(
                            // Local servers turn the schema into a grammar: only the prompt
                            // is in the tokens they report.
                            input_tokens.saturating_sub(schema_tokens(&request)),
                            measured,
                            gen.usage.prompt_tokens,
                            self.context_tokens(),
                        )
                    });
                    if let Some(used) = truncated {
                        // Answered, and it counts, but it is not about the whole document.
                        let detail = format!(
                            "the server read {used} of the {input_tokens} prompt tokens sent \
                             (silent truncation); the answer was not stored"
                        );
                        self.store().finish_call(
                            call_id,
                            "context_too_long",
                            Some(&detail),
                            Some(gen.usage.prompt_tokens),
                            Some(gen.usage.output_tokens),
                            Some(gen.usage.thinking_tokens),
                            latency,
                        )?;
                        self.e.pool.on_success(self.store(), &bucket, now)?;
                        self.e.observer.message(Level::Warn, &detail);
                        return Ok(ModelOutcome::Truncated { used });
                    }
                    self.store().finish_call(
                        call_id,
                        "ok",
                        None,
                        Some(gen.usage.prompt_tokens),
                        Some(gen.usage.output_tokens),
                        Some(gen.usage.thinking_tokens),
                        latency,
                    )?;
                    self.e.pool.on_success(self.store(), &bucket, now)?;
                    self.store().end_transient_streak(task.id)?;
                    usage.add(&gen.usage);
                    usage.params = Some(fintel_llm::params::record_request_params(
                        params.family,
                        &request,
                    ));
                    match check.apply(&step.schema, &gen.text) {
                        Ok(value) => {
                            clear(has_state)?;
                            return Ok(ModelOutcome::Json(value, usage));
                        }
                        Err(problem) => CallError::BadOutput {
                            reason: format!("model output invalid: {problem}"),
                            raw_text: Some(gen.text),
                            usage: fintel_llm::Usage::default(),
                        },
                    }
                }
                Err(err) => {
                    let detail = fintel_llm::mask_secrets_in(&err.to_string(), &secrets);
                    match ledger_outcome(&err) {
                        LedgerOutcome::NeverSent => self.store().refund_call(call_id, &detail)?,
                        LedgerOutcome::Refused => self.store().refuse_call(
                            call_id,
                            outcome_name(&err),
                            &detail,
                            latency,
                        )?,
                        LedgerOutcome::Answered | LedgerOutcome::Uncertain => {
                            if ledger_outcome(&err) == LedgerOutcome::Answered {
                                super::heard::provider_answered();
                            }
                            self.store().finish_call(
                                call_id,
                                outcome_name(&err),
                                Some(&detail),
                                None,
                                None,
                                None,
                                latency,
                            )?
                        }
                    }
                    if let CallError::BadOutput { usage: u, .. }
                    | CallError::Truncated { usage: u, .. } = &err
                    {
                        usage.add(u);
                        self.store().end_transient_streak(task.id)?;
                    }
                    err
                }
            };
            // A body naming the key's project may merge its bucket: go on with the bucket the
            // key is in now.
            let watch = self.project_watch();
            let bucket = watch.learn_project(&err, key.as_ref(), &bucket, now)?;
            let detail = match &err {
                CallError::BadOutput { reason, .. } => reason.clone(),
                other => fintel_llm::mask_secrets_in(&other.to_string(), &secrets),
            };
            let context = CallContext {
                input_tokens,
                measured,
                others_tokens_last_minute: self.others_tokens_last_minute(&bucket, call_id, now)?,
                repaired,
                thinking_lowered,
                packed: carried.len() > 1,
            };
            let action = decide_call(&err, &context);
            if retry_state_after(&action) == RetryStateChange::Clear {
                clear(has_state)?;
                has_state = false;
            }
            match action {
                CallAction::DailyRefusal => {
                    let verdict = self.e.pool.on_daily_refusal(self.store(), &bucket, now)?;
                    watch.on_daily_refusal(&bucket, &verdict, now)?;
                    if let DailyVerdict::NotResetYet { until, .. } = verdict {
                        self.store().log_event(
                            Some(&self.batch.id),
                            now,
                            "info",
                            &format!(
                                "{bucket}: provider has not reset yet; trying again at {}",
                                local_and_pacific(until)
                            ),
                        )?;
                    }
                }
                CallAction::PaceBucket { wait } => {
                    self.e
                        .pool
                        .on_rate_limited(self.store(), &bucket, now, Some(wait))?;
                }
                CallAction::Refit { max_tokens } => return Ok(ModelOutcome::TooLong(max_tokens)),
                CallAction::DisableKey { reason } => {
                    if let Some(k) = &key {
                        self.store().disable_key(&k.fingerprint(), &reason, now)?;
                        self.e.observer.message(
                            Level::Warn,
                            &format!(
                                "key {} disabled: {reason}. Going on with the other keys; \
                                 `fintel keys enable` re-enables it once fixed",
                                k.label()
                            ),
                        );
                    }
                }
                CallAction::Transient => {
                    if err.timed_out() || err.never_sent() {
                        // Not a provider's 5xx but the connection: say so at once, since a
                        // local server that is down or too slow needs the user.
                        let what = if err.timed_out() {
                            "the request timed out (the server may still be working on it; it \
                             is not resent before the request timeout has passed again)"
                        } else {
                            "the server could not be reached"
                        };
                        self.e
                            .observer
                            .message(Level::Warn, &format!("{what}: {detail}"));
                    }
                    let min_delay = crate::backoff::resend_delay(
                        std::time::Duration::ZERO,
                        err.timed_out(),
                        self.e.settings.request_timeout,
                    );
                    // The other tasks of a pack follow their lead under the breaker's lock, so
                    // an outage's refund reaches them too.
                    let followers: Vec<i64> = carried
                        .iter()
                        .copied()
                        .filter(|&id| id != task.id)
                        .collect();
                    let end = self.transient_at_least(
                        task,
                        Side::Provider,
                        &detail,
                        &followers,
                        min_delay,
                    )?;
                    return Ok(if followers.is_empty() {
                        ModelOutcome::Ended(end)
                    } else {
                        ModelOutcome::EndedAll(end)
                    });
                }
                CallAction::Repair => {
                    if let CallError::BadOutput {
                        raw_text: Some(raw),
                        ..
                    } = &err
                    {
                        repaired = true;
                        request = repair_request(&request, raw, &detail);
                        // The repair does not carry the filing: its row has its own size.
                        input_tokens = fintel_llm::estimate_request_tokens(&request);
                        progress.repair = Some((raw.clone(), detail.clone()));
                        has_state = true;
                        self.save_progress(task, &call_tasks, &progress, &usage)?;
                    }
                }
                CallAction::LessThinking if self.e.settings.output_in_context => {
                    // The OpenAI protocol has no thinking budget to lower: the same request
                    // would be cut off the same way. Ask for more output, from the
                    // document's share of the context, or give up on this document.
                    let cut_at = request.max_output_tokens.unwrap_or(0);
                    return match budget::after_length(cut_at, &self.budget_input()) {
                        Some(floor) => {
                            self.output_floor.fetch_max(floor, Ordering::Relaxed);
                            Ok(ModelOutcome::NeedsMoreOutput)
                        }
                        None => Ok(ModelOutcome::Ended(self.skip(
                            task,
                            &format!(
                                "the answer needs more than {cut_at} output tokens and the \
                                 model's context has no more room for them beside the prompt \
                                 ({detail})"
                            ),
                        )?)),
                    };
                }
                CallAction::LessThinking => {
                    thinking_lowered = true;
                    request.thinking = lower_thinking(&request.thinking);
                    progress.thinking_lowered = true;
                    has_state = true;
                    self.save_progress(task, &call_tasks, &progress, &usage)?;
                }
                CallAction::CountAttempt => {
                    if !carried.is_empty() {
                        // A packed answer unusable as a whole: the pack decides for its years.
                        return Ok(ModelOutcome::Unusable(detail));
                    }
                    self.count_failed_attempt(task, &detail)?;
                    return Ok(ModelOutcome::Ended(TaskEnd::Done));
                }
                CallAction::Skip { reason } => {
                    return Ok(ModelOutcome::Ended(self.skip(task, &reason)?));
                }
                CallAction::GoAlone { reason } => return Ok(ModelOutcome::GoAlone(reason)),
                CallAction::SchemaStop { message } => {
                    self.store()
                        .release_task(task.id, self.owner(), None, now)?;
                    return Ok(ModelOutcome::Ended(TaskEnd::Configuration(
                        schema_too_complex_message(
                            self.e.analysis.name(),
                            &self.e.settings.model,
                            &message,
                        ),
                    )));
                }
                CallAction::Stop { message } => {
                    self.store()
                        .release_task(task.id, self.owner(), None, now)?;
                    return Ok(ModelOutcome::Ended(TaskEnd::Configuration(message)));
                }
                CallAction::ModelRetired { message } => {
                    self.store()
                        .release_task(task.id, self.owner(), None, now)?;
                    return Ok(ModelOutcome::Ended(TaskEnd::ModelRetired(message)));
                }
                CallAction::ParameterRefused { param, message } => {
                    match self.on_param_refused(&param, &message, &mut request, &mut params)? {
                        // Sent again at once, counting no attempt: the provider said what to
                        // change.
                        super::params::Refusal::Resend => {}
                        super::params::Refusal::Stop(message) => {
                            self.store()
                                .release_task(task.id, self.owner(), None, now)?;
                            return Ok(ModelOutcome::Ended(TaskEnd::Configuration(message)));
                        }
                    }
                }
            }
        }
    }

    /// Records the retry decided inside `task`'s attempt before anything is sent, so a wait
    /// or a killed process goes on with it.
    fn save_progress(
        &self,
        task: &ClaimedTask,
        call_tasks: &[i64],
        progress: &RetryProgress,
        usage: &CallUsage,
    ) -> Result<(), EngineError> {
        self.store().save_retry_state(
            task.id,
            &RetryState {
                attempt: task.attempts,
                carried: call_tasks.to_vec(),
                thinking_lowered: progress.thinking_lowered,
                repair: progress.repair.clone(),
                spent: AttemptSpent {
                    calls: usage.calls,
                    prompt_tokens: usage.tokens.prompt_tokens,
                    output_tokens: usage.tokens.output_tokens,
                    thinking_tokens: usage.tokens.thinking_tokens,
                },
            },
            self.now(),
        )?;
        Ok(())
    }

    /// What provider errors reveal about keys that share a project, carried out for this run.
    fn project_watch(&self) -> ProjectWatch<'_> {
        ProjectWatch {
            store: self.store(),
            pool: &self.e.pool,
            observer: self.e.observer.as_ref(),
            batch_id: &self.batch.id,
        }
    }

    /// Input tokens of the bucket's other requests in the minute before `call_id`.
    fn others_tokens_last_minute(
        &self,
        bucket: &str,
        call_id: i64,
        now: Timestamp,
    ) -> Result<u64, EngineError> {
        let standing = self.store().bucket_standing(
            bucket,
            &self.e.pool.bucket_keys(bucket),
            now,
            &fintel_time::pacific_date(now).to_string(),
        )?;
        // A refused call no longer counts, so the window holds only the others' requests.
        let _ = call_id;
        Ok(standing.tokens_last_minute)
    }
}

/// How many times a document is fitted smaller before it is skipped as too large.
pub(super) const MAX_FITS: u32 = 3;

/// A document budget that brings a request of `real` tokens (the provider's count) under
/// `limit`, with a margin, always smaller than `budget`.
pub(super) fn shrink_to(budget: u64, real: u64, limit: u64) -> u64 {
    let scaled = (budget as u128 * limit as u128 * 9 / (real.max(1) as u128 * 10)) as u64;
    scaled.min(budget.saturating_sub(1)).max(1)
}

/// The estimated input tokens of a request's response schema (characters / 4), which
/// countTokens leaves out.
fn schema_tokens(request: &GenerateRequest) -> u64 {
    if request.response_schema.is_null() {
        return 0;
    }
    fintel_llm::estimate_text_tokens(&request.response_schema.to_string())
}

/// SHA-256 of everything a request's input token count depends on.
fn request_digest(request: &GenerateRequest) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(request.model.as_bytes());
    hasher.update([0]);
    if let Some(system) = &request.system_instruction {
        hasher.update(system.as_bytes());
    }
    for turn in &request.turns {
        hasher.update([0]);
        hasher.update(turn.text.as_bytes());
    }
    hasher.update([0]);
    hasher.update(request.response_schema.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

#[derive(Default)]
pub(super) struct CallUsage {
    pub(super) tokens: fintel_llm::Usage,
    /// The parameters of the request that answered, as stored with its result.
    pub(super) params: Option<Value>,
    pub(super) calls: u32,
    /// The ledger row of the last call, the one that answered.
    pub(super) last_call: Option<i64>,
}

/// How an answer is checked before it is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// Against the whole response schema.
    Schema,
    /// Only that it is a JSON object: a packed answer's parts are validated one by one
    /// afterwards, so one bad year does not cost the others.
    JsonObject,
}

impl Check {
    fn apply(self, schema: &Value, text: &str) -> Result<Value, fintel_llm::OutputProblem> {
        match self {
            Check::Schema => fintel_llm::validate_output(schema, text),
            Check::JsonObject => {
                let _ = schema;
                fintel_llm::validate_output(&serde_json::json!({"type": "object"}), text)
            }
        }
    }
}

impl CallUsage {
    fn add(&mut self, u: &fintel_llm::Usage) {
        self.tokens.prompt_tokens += u.prompt_tokens;
        self.tokens.output_tokens += u.output_tokens;
        self.tokens.thinking_tokens += u.thinking_tokens;
    }
}

pub(super) enum ModelOutcome {
    Json(Value, CallUsage),
    /// The request is too large for the model or tier; the maximum if the provider said.
    TooLong(Option<u64>),
    /// The server answered from a silently truncated prompt of `used` tokens (the context it
    /// really has); the answer was not stored.
    Truncated {
        used: u64,
    },
    /// The answer was cut off at the output limit and the run's output floor was raised: the
    /// document is to be fitted to the new budget before anything is sent again.
    NeedsMoreOutput,
    /// The call's end was applied to the task that led it; the others it carried wait for
    /// the caller.
    Ended(TaskEnd),
    /// The call's end was applied to every task it carried (a pack's transient failure).
    EndedAll(TaskEnd),
    /// A packed answer unusable as a whole, its repair or its lower thinking spent: nothing
    /// was applied to any task; why.
    Unusable(String),
    /// A packed request refused for its packing: nothing was applied to any task; its years
    /// are to go alone, charged nothing; why.
    GoAlone(String),
}
