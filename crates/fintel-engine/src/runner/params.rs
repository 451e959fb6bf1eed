//! The parameters of a run's model requests, carried out: the rules the database learned for
//! the run's model are read once and on every refusal, applied through the pure
//! [`fintel_llm::params::request_params`], and a refused parameter is decided by
//! [`crate::outcome::param_refusal`], stored, and said to the user.

use fintel_llm::params::{request_params, LearnedParam, ParamsInput, RequestParams};
use fintel_llm::GenerateRequest;
use fintel_store::LearnedParamRow;

use super::{EngineInner, Level};
use crate::outcome::{param_refusal, ParamVerdict};
use crate::EngineError;

/// What became of a refused parameter.
pub(super) enum Refusal {
    /// The request was changed: send it again, counting no attempt.
    Resend,
    /// Stop the batch with this message.
    Stop(String),
}

impl EngineInner {
    /// The rules learned for the run's model, read from the database the first time.
    pub(super) fn ensure_learned_params(&self) -> Result<(), EngineError> {
        let loaded = self
            .learned_params
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if !loaded {
            let rules = self.read_learned_params()?;
            *self
                .learned_params
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(rules);
        }
        Ok(())
    }

    fn read_learned_params(&self) -> Result<Vec<LearnedParam>, EngineError> {
        let rows = self
            .store()
            .learned_params(self.e.provider.name(), &self.e.settings.model)?;
        Ok(rows
            .into_iter()
            .filter_map(|row| LearnedParam::from_stored(row.param, &row.action))
            .collect())
    }

    /// The parameters of a request with output limit `max_output_tokens` now.
    pub(super) fn params_for(&self, max_output_tokens: Option<u32>) -> RequestParams {
        let learned = self
            .learned_params
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        let settings = &self.e.settings;
        request_params(&ParamsInput {
            server: settings.server_kind,
            model: &settings.model,
            thinks: settings.model_thinks,
            max_output_tokens,
            user: &settings.user_params,
            learned: &learned,
        })
    }

    /// Carries out the refusal of `param` of `request`, sent with `sent`: learns and stores
    /// the rule (or takes up the one another process stored), says so, and changes `request`
    /// and `sent` to follow it; or says why the batch stops.
    pub(super) fn on_param_refused(
        &self,
        param: &str,
        message: &str,
        request: &mut GenerateRequest,
        sent: &mut RequestParams,
    ) -> Result<Refusal, EngineError> {
        let known = self.read_learned_params()?;
        let verdict = param_refusal(param, message, sent, &known);
        let now = self.now();
        let note = match verdict {
            ParamVerdict::Stop(message) => return Ok(Refusal::Stop(message)),
            ParamVerdict::AlreadyLearned => None,
            ParamVerdict::Learn(rule) => {
                let row = LearnedParamRow {
                    param: rule.param.clone(),
                    action: rule.action.to_stored(),
                    message: Some(message.to_string()),
                };
                let model = &self.e.settings.model;
                let wrote = self
                    .store()
                    .learn_param(self.e.provider.name(), model, &row, now)?;
                wrote.then(|| {
                    format!(
                        "{model} refused {param}; from now on {} for this model ({message})",
                        rule.describe()
                    )
                })
            }
        };
        if let Some(note) = note {
            self.store()
                .log_event(Some(&self.batch.id), now, "warn", &note)?;
            self.e.observer.message(Level::Warn, &note);
        }
        let rules = self.read_learned_params()?;
        *self
            .learned_params
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(rules);
        let next = self.params_for(request.max_output_tokens);
        request.temperature = next.temperature;
        request.seed = next.seed;
        request.output_field = next.output_field;
        // Thinking changes only when a thinking parameter was refused: a retry with less
        // thinking keeps its lowered setting otherwise.
        if matches!(
            param,
            "thinkingConfig" | "thinkingBudget" | "thinkingLevel" | "reasoning_effort"
        ) {
            request.thinking = next.thinking.clone();
        }
        *sent = next;
        Ok(Refusal::Resend)
    }
}
