//! The packed path (SPEC.md section 12): a claim of up to three consecutive fiscal years of one
//! company, their documents fitted to equal shares of the budget (or, with `auto`, packed only
//! where each fits its share whole), one model call for all of them with one ledger row linked
//! to every task, and the answer split into its years: valid parts stored as their results,
//! bad ones sent back as single-year tasks. The decisions are in [`crate::pack`]; this module
//! carries them out. A claim of one task runs the ordinary way.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use fintel_store::{
    BadPart, BadPartEnd, ClaimedTask, NewResult, PackedProvenance, StoreError, TaskKind,
};
use fintel_time::duration_to_span;
use jiff::Timestamp;

use super::model_call::{shrink_to, Check, ModelOutcome, MAX_FITS};
use super::{CatchUnwind, EngineInner, Level, TaskEnd};
use crate::backoff::retry_delay;
use crate::pack::{
    auto_pack_size, claim_size_under, document_block, pack_budget, pack_cap_after_schema_refusal,
    packed_preamble, packed_schema, part_fate, share, split_answer, unusable_pack_charges, Pack,
    PackedDocument, PartFate, PartOutcome,
};
use crate::ports::{PreparedDocument, StepRequest, YearInput};
use crate::{lifecycle, EngineError};

/// Why a pack's years go alone when it is too large.
const TOO_LARGE_PACKED: &str = "a packed request would not fit the smallest bucket even fitted";

/// One year of a pack, with its document once prepared.
struct Member {
    task: ClaimedTask,
    key: String,
    doc: Option<PreparedDocument>,
}

impl EngineInner {
    /// Claims the next task, or with packing on the next pack of consecutive years (one
    /// statement either way).
    pub(super) fn claim(
        &self,
        now: Timestamp,
        model_allowed: bool,
    ) -> Result<Vec<ClaimedTask>, StoreError> {
        let size = claim_size_under(
            self.batch_settings.pack,
            self.pack_cap.load(Ordering::Relaxed),
        );
        if size <= 1 || !self.e.analysis.needs_model() {
            return Ok(self
                .store()
                .claim_next(&self.batch.id, self.owner(), now, model_allowed)?
                .into_iter()
                .collect());
        }
        self.store()
            .claim_pack(&self.batch.id, self.owner(), now, model_allowed, size)
    }

    /// Runs a claim: one task the ordinary way, several as a pack, a panic failing the pack's
    /// first task and sending the others back.
    pub(super) async fn execute_claim(
        self: Arc<Self>,
        mut tasks: Vec<ClaimedTask>,
    ) -> Result<TaskEnd, EngineError> {
        if tasks.len() <= 1 {
            let Some(task) = tasks.pop() else {
                return Ok(TaskEnd::Done);
            };
            return self.execute_guarded(task).await;
        }
        let ids: Vec<i64> = tasks.iter().map(|t| t.id).collect();
        match CatchUnwind(Box::pin(self.clone().execute_pack(tasks))).await {
            Ok(end) => end,
            Err(payload) => {
                let reason = lifecycle::panic_reason(payload.as_ref());
                self.e.observer.message(
                    Level::Warn,
                    &format!("packed tasks {ids:?} failed: {reason}"),
                );
                let now = self.now();
                match self
                    .store()
                    .fail_task(ids[0], self.owner(), &reason, true, now)
                {
                    Ok(()) | Err(StoreError::LeaseLost) => {}
                    Err(e) => return Err(e.into()),
                }
                for id in &ids[1..] {
                    match self.store().release_task(*id, self.owner(), None, now) {
                        Ok(()) | Err(StoreError::LeaseLost) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(TaskEnd::Done)
            }
        }
    }

    async fn execute_pack(
        self: Arc<Self>,
        tasks: Vec<ClaimedTask>,
    ) -> Result<TaskEnd, EngineError> {
        let started = self.now();
        let (end, heard) = super::heard::listening(self.pack(tasks, started)).await;
        let end = end?;
        self.close_breakers(matches!(end, TaskEnd::Done), heard, started);
        Ok(end)
    }

    /// Sends the tasks after the first `keep` back to pending untouched: they lead a pack of
    /// their own at once.
    fn release_rest(&self, members: &mut Vec<Member>, keep: usize) -> Result<(), EngineError> {
        let now = self.now();
        for m in members.drain(keep.min(members.len())..) {
            self.store()
                .release_task(m.task.id, self.owner(), None, now)?;
        }
        Ok(())
    }

    /// Tokens of a packed request that are not documents: the type's prompt and schema once
    /// per year (the schema repeats), the preamble and the markers.
    fn pack_overhead(&self, years: &[i32]) -> u64 {
        let k = years.len() as u64;
        self.e.analysis.year_overhead_tokens() * k
            + crate::estimate_tokens(&packed_preamble(years))
            + 40 * k
    }

    /// The tokens a packed request of `years` may spend on documents.
    fn pack_budget_for(&self, years: &[i32]) -> u64 {
        pack_budget(
            self.e.pool.min_request_tokens().max(1),
            self.input_context(),
            self.pack_overhead(years),
        )
    }

    /// The largest packed request: every bucket must accept it.
    fn pack_limit(&self) -> u64 {
        self.input_context()
            .min(self.e.pool.min_request_tokens().max(1))
    }

    async fn pack(
        &self,
        tasks: Vec<ClaimedTask>,
        started: Timestamp,
    ) -> Result<TaskEnd, EngineError> {
        // Years already answered (by any batch) are reused, exactly as unpacked.
        let mut members = Vec::with_capacity(tasks.len());
        for task in tasks {
            let (Some(cik), Some(filing), Some(_), TaskKind::Year) =
                (task.cik, &task.filing, task.fiscal_year, task.kind)
            else {
                self.skip(&task, "no filing recorded for this year")?;
                continue;
            };
            let key = self.year_result_key(cik, &filing.accession);
            if self.reuse_stored(&task, &key)? {
                continue;
            }
            members.push(Member {
                task,
                key,
                doc: None,
            });
        }
        if self.batch_settings.pack == Pack::Auto && members.len() > 1 {
            let keep = self.auto_size(&members).await?;
            self.release_rest(&mut members, keep)?;
        }
        if members.len() <= 1 {
            return match members.pop() {
                Some(m) => self.year(&m.task, started).await,
                None => Ok(TaskEnd::Done),
            };
        }
        let years: Vec<i32> = members.iter().filter_map(|m| m.task.fiscal_year).collect();
        let mut doc_share = share(self.pack_budget_for(&years), members.len()).max(1_000);
        let mut fits = 0;
        loop {
            for m in members.iter_mut() {
                // Checked when the pack was formed.
                let (Some(cik), Some(filing)) = (m.task.cik, m.task.filing.clone()) else {
                    continue;
                };
                let filing = &filing;
                match self.e.source.prepare_document(cik, filing, doc_share).await {
                    Ok(doc) => {
                        super::heard::sec_answered();
                        m.doc = Some(doc);
                    }
                    Err(e) => {
                        // One year's document cannot be read: the pack breaks up, each year
                        // going its own way (the ordinary path says why for this one).
                        let lead = m.task.clone();
                        let others: Vec<i64> = members
                            .iter()
                            .map(|o| o.task.id)
                            .filter(|&id| id != lead.id)
                            .collect();
                        let now = self.now();
                        for id in others {
                            self.store().release_task(id, self.owner(), None, now)?;
                        }
                        return self.source_error(&lead, e);
                    }
                }
            }
            let step = self.packed_step(&members)?;
            let request = self.build_request(&step);
            let estimate = fintel_llm::estimate_request_tokens(&request);
            let counted = self.measure(&request, estimate, true).await?;
            let limit = self.pack_limit();
            let tokens = counted.unwrap_or(estimate);
            if tokens > limit {
                if self.batch_settings.pack == Pack::Auto || fits >= MAX_FITS {
                    // Measured too large packed: the years go alone.
                    return self.unpack(members, started, TOO_LARGE_PACKED).await;
                }
                fits += 1;
                doc_share = shrink_to(doc_share, tokens, limit);
                for m in members.iter_mut() {
                    m.doc = None;
                }
                continue;
            }
            let lead = members[0].task.clone();
            let carried: Vec<i64> = members.iter().map(|m| m.task.id).collect();
            let outcome = self
                .call_model_with(
                    &lead,
                    &step,
                    tokens,
                    counted.is_some(),
                    started,
                    Check::JsonObject,
                    &carried,
                )
                .await?;
            match outcome {
                ModelOutcome::Json(value, usage) => {
                    let year_schema = self.year_schema(&members)?;
                    let parts = split_answer(&years, &year_schema, &value);
                    let provenance = PackedProvenance {
                        call_id: usage.last_call.unwrap_or_default(),
                        years: years.clone(),
                    };
                    let k = members.len() as u64;
                    let now = self.now();
                    let mut valid = Vec::new();
                    let mut bad = Vec::new();
                    for (year, part) in parts {
                        let Some(m) = members.iter().find(|m| m.task.fiscal_year == Some(year))
                        else {
                            continue;
                        };
                        let reason = match part {
                            PartOutcome::Valid(json) => {
                                let mut r = self.member_result(m, started);
                                r.json = json.to_string();
                                // The call's tokens, shared out so sums over results hold.
                                r.prompt_tokens = usage.tokens.prompt_tokens / k;
                                r.output_tokens = usage.tokens.output_tokens / k;
                                r.thinking_tokens = usage.tokens.thinking_tokens / k;
                                r.calls = usage.calls;
                                r.request_params = usage.params.as_ref().map(|p| p.to_string());
                                valid.push((m.task.id, r));
                                continue;
                            }
                            PartOutcome::Invalid(why) => {
                                format!("packed answer for FY{year} invalid: {why}")
                            }
                            PartOutcome::Missing => {
                                format!("packed answer has no part for FY{year}")
                            }
                        };
                        let end = match part_fate(m.task.attempts, self.batch_settings.max_retries)
                        {
                            PartFate::RetryAlone => {
                                let delay = retry_delay(
                                    m.task.attempts + 1,
                                    self.e.settings.retry_base,
                                    self.e.settings.retry_cap,
                                );
                                BadPartEnd::RetryAlone {
                                    not_before: now + duration_to_span(delay),
                                    charge: true,
                                }
                            }
                            PartFate::Fail => BadPartEnd::Fail,
                        };
                        bad.push(BadPart {
                            task_id: m.task.id,
                            reason: match end {
                                BadPartEnd::Fail => {
                                    format!("{reason} (after {} attempts)", m.task.attempts + 1)
                                }
                                _ => reason,
                            },
                            end,
                        });
                    }
                    self.store()
                        .complete_packed(self.owner(), &provenance, &valid, &bad, now)?;
                    return Ok(TaskEnd::Done);
                }
                ModelOutcome::NeedsMoreOutput => {
                    // The pack's answer needs more room than a shared context leaves: the
                    // years go alone, with the larger output budget.
                    return self
                        .unpack(
                            members,
                            started,
                            "a packed answer needs more output than the context leaves",
                        )
                        .await;
                }
                ModelOutcome::Truncated { used } => {
                    // Not stored; the years go alone, fitted to the context the server used.
                    self.learn_context(used);
                    return self
                        .unpack(
                            members,
                            started,
                            "the server read only part of a packed request",
                        )
                        .await;
                }
                ModelOutcome::TooLong(max) => {
                    if let (Some(context), true) = (max, self.e.settings.output_in_context) {
                        self.learn_context(context);
                    }
                    if self.batch_settings.pack == Pack::Auto || fits >= MAX_FITS {
                        return self.unpack(members, started, TOO_LARGE_PACKED).await;
                    }
                    // Refused for size: never send the same request again; fit smaller now.
                    fits += 1;
                    let smaller = max
                        .map(|m| {
                            share(
                                m.saturating_sub(self.pack_overhead(&years)) * 9 / 10,
                                members.len(),
                            )
                        })
                        .unwrap_or(doc_share / 2);
                    doc_share = smaller
                        .min(doc_share / 2 + doc_share / 4)
                        .max(1_000.min(doc_share / 2));
                    for m in members.iter_mut() {
                        m.doc = None;
                    }
                }
                ModelOutcome::EndedAll(end) => return Ok(end),
                ModelOutcome::Unusable(why) => {
                    return self.pack_unusable(&members, &years, &why);
                }
                ModelOutcome::GoAlone(why) => {
                    // Every later pack of this size would be refused the same way.
                    self.pack_cap.fetch_min(
                        pack_cap_after_schema_refusal(members.len()),
                        Ordering::Relaxed,
                    );
                    return self.unpack(members, started, &why).await;
                }
                ModelOutcome::Ended(end) => {
                    let others: Vec<i64> = carried[1..].to_vec();
                    self.store().follow_pack_lead(
                        lead.id,
                        lead.attempts,
                        &others,
                        self.owner(),
                        self.now(),
                    )?;
                    return Ok(end);
                }
            }
        }
    }

    /// A packed answer unusable as a whole: every year of the pack goes alone, charged at most
    /// this one attempt for the call ([`unusable_pack_charges`]), in one transaction.
    fn pack_unusable(
        &self,
        members: &[Member],
        years: &[i32],
        why: &str,
    ) -> Result<TaskEnd, EngineError> {
        let now = self.now();
        let packed = years
            .iter()
            .map(|y| format!("FY{y}"))
            .collect::<Vec<_>>()
            .join(", ");
        let bad: Vec<BadPart> = members
            .iter()
            .map(|m| {
                let charge =
                    unusable_pack_charges(m.task.attempts, self.batch_settings.max_retries);
                let delay = retry_delay(
                    m.task.attempts + u32::from(charge),
                    self.e.settings.retry_base,
                    self.e.settings.retry_cap,
                );
                BadPart {
                    task_id: m.task.id,
                    reason: format!("packed answer for {packed} unusable ({why}); going alone"),
                    end: BadPartEnd::RetryAlone {
                        not_before: now + duration_to_span(delay),
                        charge,
                    },
                }
            })
            .collect();
        let provenance = PackedProvenance {
            call_id: 0,
            years: years.to_vec(),
        };
        self.store()
            .complete_packed(self.owner(), &provenance, &[], &bad, now)?;
        Ok(TaskEnd::Done)
    }

    /// `auto`: reads each document whole (the single-year budget) and asks the provider's
    /// count of it, then keeps the first k that each fit their share of a k-year pack (1: the
    /// first goes alone). A document that cannot be read keeps nobody with it: the ordinary
    /// path of its year says why.
    async fn auto_size(&self, members: &[Member]) -> Result<usize, EngineError> {
        // A context too small for one year keeps everyone alone: that path says why.
        let Ok(whole_budget) = self.document_budget() else {
            return Ok(1);
        };
        let overhead = self.e.analysis.year_overhead_tokens();
        let mut sizes = Vec::with_capacity(members.len());
        for m in members {
            let (Some(cik), Some(filing)) = (m.task.cik, &m.task.filing) else {
                break;
            };
            let Ok(doc) = self
                .e
                .source
                .prepare_document(cik, filing, whole_budget)
                .await
            else {
                break;
            };
            let Some(step) = self.single_step(m, &doc) else {
                break;
            };
            let request = self.build_request(&step);
            let size = match self.measure(&request, doc.tokens + overhead, true).await? {
                Some(counted) => counted.saturating_sub(overhead),
                None => doc.tokens,
            };
            sizes.push(size);
        }
        let years: Vec<i32> = members.iter().filter_map(|m| m.task.fiscal_year).collect();
        // Each pack size has its own budget (the schema repeats per year).
        let keep = (2..=sizes.len())
            .rev()
            .find(|&k| auto_pack_size(&sizes[..k], self.pack_budget_for(&years[..k])) == k)
            .unwrap_or(1);
        Ok(keep)
    }

    /// A year sent alone after its pack could not be sent (`why`): the others go back
    /// untouched, and none of them is packed again.
    async fn unpack(
        &self,
        mut members: Vec<Member>,
        started: Timestamp,
        why: &str,
    ) -> Result<TaskEnd, EngineError> {
        self.e
            .observer
            .message(Level::Info, &format!("{why}; its years go alone"));
        let now = self.now();
        let lead = members.remove(0);
        for m in &members {
            self.store()
                .release_task(m.task.id, self.owner(), None, now)?;
        }
        let ids: Vec<i64> = std::iter::once(lead.task.id)
            .chain(members.iter().map(|m| m.task.id))
            .collect();
        self.store().set_pack_alone(&ids)?;
        self.year(&lead.task, started).await
    }

    fn single_step(&self, m: &Member, doc: &PreparedDocument) -> Option<StepRequest> {
        let ticker = Self::display_ticker(&m.task);
        let company = m
            .task
            .company_name
            .clone()
            .unwrap_or_else(|| ticker.clone());
        let filing = m.task.filing.as_ref()?;
        self.e.analysis.year_request(&YearInput {
            ticker: &ticker,
            company_name: &company,
            fiscal_year: m.task.fiscal_year?,
            form: &filing.form,
            document: &doc.text,
        })
    }

    /// The type's own schema of one year.
    fn year_schema(&self, members: &[Member]) -> Result<serde_json::Value, EngineError> {
        let m = &members[0];
        let empty = PreparedDocument {
            text: String::new(),
            tokens: 0,
            url: String::new(),
            sha256: String::new(),
            fitting: serde_json::Value::Null,
            fiscal_year_label: None,
            facts: None,
        };
        self.single_step(m, m.doc.as_ref().unwrap_or(&empty))
            .map(|s| s.schema)
            .ok_or_else(|| EngineError::Invalid("the analysis has no per-year step".into()))
    }

    /// The packed request: the type's system prompt and prompt (rendered for the newest year,
    /// with the marked documents as its document), after a preamble naming the years; the
    /// packed schema.
    fn packed_step(&self, members: &[Member]) -> Result<StepRequest, EngineError> {
        let docs: Vec<PackedDocument<'_>> = members
            .iter()
            .filter_map(|m| {
                let filing = m.task.filing.as_ref()?;
                Some(PackedDocument {
                    fiscal_year: m.task.fiscal_year?,
                    form: &filing.form,
                    period: filing.period.as_deref(),
                    text: &m.doc.as_ref()?.text,
                })
            })
            .collect();
        let years: Vec<i32> = docs.iter().map(|d| d.fiscal_year).collect();
        let block = document_block(&docs);
        let lead = &members[0];
        let ticker = Self::display_ticker(&lead.task);
        let company = lead
            .task
            .company_name
            .clone()
            .unwrap_or_else(|| ticker.clone());
        let form = lead
            .task
            .filing
            .as_ref()
            .map(|f| f.form.clone())
            .unwrap_or_default();
        let step = self
            .e
            .analysis
            .year_request(&YearInput {
                ticker: &ticker,
                company_name: &company,
                fiscal_year: lead.task.fiscal_year.unwrap_or_default(),
                form: &form,
                document: &block,
            })
            .ok_or_else(|| EngineError::Invalid("the analysis has no per-year step".into()))?;
        Ok(StepRequest {
            system: step.system,
            prompt: format!("{}{}", packed_preamble(&years), step.prompt),
            schema: packed_schema(&years, &step.schema),
        })
    }

    fn member_result(&self, m: &Member, started: Timestamp) -> NewResult {
        let analysis = &self.e.analysis;
        let doc = m.doc.as_ref();
        NewResult {
            result_key: m.key.clone(),
            cik: m.task.cik.unwrap_or_default(),
            ticker: m.task.ticker.clone(),
            company_name: m.task.company_name.clone(),
            fiscal_year: m.task.fiscal_year,
            fiscal_year_label: doc.and_then(|d| d.fiscal_year_label.clone()),
            form: m.task.filing.as_ref().map(|f| f.form.clone()),
            accession: m.task.filing.as_ref().map(|f| f.accession.clone()),
            analysis_type: analysis.name().to_string(),
            analysis_version: analysis.version().to_string(),
            model: self.model_label(),
            attempts: m.task.attempts + 1,
            document_url: doc.map(|d| d.url.clone()),
            document_sha256: doc.map(|d| d.sha256.clone()),
            fitting: doc.map(|d| d.fitting.to_string()),
            started_at: Some(started),
            supersede: self.batch_settings.force,
            ..Default::default()
        }
    }
}
