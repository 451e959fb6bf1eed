//! `fintel doctor --probe`: one tiny generation request to the model, as a batch would build
//! it, so a parameter the model refuses is found (and learned, as a batch learns it) before a
//! batch starts. It costs one request of quota (one more for each parameter learned); it goes
//! through the key pool and the usage ledger like every other request.

use anyhow::Result;
use fintel_engine::keys::Grant;
use fintel_engine::outcome::{
    ledger_outcome, outcome_name, param_refusal, LedgerOutcome, ParamVerdict,
};
use fintel_llm::params::{record_request_params, request_params, LearnedParam, ParamsInput};
use fintel_llm::{CallError, GenerateRequest, Provider, Role, Turn};
use fintel_store::{CallIntent, CallPurpose, LearnedParamRow, Store};
use serde_json::json;

use crate::app::App;

/// What the probe found: `Ok(detail)` when the model accepted the request, else the problem
/// and what to do about it.
pub type ProbeVerdict = Result<String, (String, String)>;

/// Sends the probe for `model` and says what happened.
pub async fn probe(app: &App, provider: &dyn Provider, model: &str) -> Result<ProbeVerdict> {
    let store = app.open_store()?;
    let pool = app.pool();
    let settings = app.engine_settings(model);
    let mut notes: Vec<String> = Vec::new();
    let mut sent_requests = 0;
    // One request, and one more for each parameter learned on the way: the loop ends when a
    // refusal is refused again (a stop) or nothing is left to learn.
    for _ in 0..6 {
        let learned = learned(&store, provider.name(), model)?;
        let params = request_params(&ParamsInput {
            server: settings.server_kind,
            model,
            thinks: settings.model_thinks,
            max_output_tokens: Some(PROBE_OUTPUT_TOKENS),
            user: &settings.user_params,
            learned: &learned,
        });
        let mut request = probe_request(model);
        params.apply(&mut request);
        let now = app.clock.now();
        let intent = CallIntent {
            bucket: "",
            key_fingerprint: None,
            bucket_keys: &[],
            batch_id: None,
            task_id: None,
            purpose: CallPurpose::Probe,
            input_tokens: fintel_llm::estimate_request_tokens(&request),
        };
        let (call_id, key) = match pool.acquire(&store, now, &intent, true)? {
            Grant::Granted { call_id, key, .. } => (call_id, key),
            Grant::TooLarge { .. } | Grant::Wait { .. } => {
                return Ok(Err((
                    "not sent: no key has quota for a request now".to_string(),
                    "run the probe again once a key has quota (see fintel keys)".to_string(),
                )))
            }
        };
        sent_requests += 1;
        let answer = provider.generate(key.as_ref(), &request).await;
        let outcome = match &answer {
            Ok(_) => "ok",
            Err(e) => outcome_name(e),
        };
        let detail = answer.as_ref().err().map(|e| e.to_string());
        match answer.as_ref().map_err(ledger_outcome) {
            Err(LedgerOutcome::NeverSent) => {
                store.refund_call(call_id, detail.as_deref().unwrap_or(""))?
            }
            Err(LedgerOutcome::Refused) => {
                store.refuse_call(call_id, outcome, detail.as_deref().unwrap_or(""), 0)?
            }
            _ => store.finish_call(call_id, outcome, detail.as_deref(), None, None, None, 0)?,
        }
        let cost = format!(
            "{sent_requests} generation request(s) sent: the probe costs one request of quota, \
             and one more for each parameter learned"
        );
        let accepted = |what: &str| {
            let mut line = format!(
                "{model} {what} with {}; {cost}",
                record_request_params(params.family, &request)
            );
            if !notes.is_empty() {
                line.push_str(&format!("; learned: {}", notes.join(", ")));
            }
            line
        };
        match answer {
            // The parameters were accepted whatever the tiny answer was like.
            Ok(_) => return Ok(Ok(accepted("answered"))),
            Err(CallError::Truncated { .. }) | Err(CallError::BadOutput { .. }) => {
                return Ok(Ok(accepted(
                    "accepted the request (its short answer is not checked)",
                )))
            }
            Err(CallError::ParameterRefused { param, message }) => {
                match param_refusal(&param, &message, &params, &learned) {
                    ParamVerdict::Learn(rule) => {
                        let row = LearnedParamRow {
                            param: rule.param.clone(),
                            action: rule.action.to_stored(),
                            message: Some(message.clone()),
                        };
                        store.learn_param(provider.name(), model, &row, app.clock.now())?;
                        notes.push(rule.describe());
                    }
                    ParamVerdict::AlreadyLearned => {}
                    ParamVerdict::Stop(why) => {
                        return Ok(Err((
                            format!("{why}; {cost}"),
                            "change the setting named above and run the probe again".to_string(),
                        )))
                    }
                }
            }
            Err(other) => {
                return Ok(Err((
                    format!("{model} did not answer the probe: {other}; {cost}"),
                    "see the message above; without --probe doctor sends no generation request"
                        .to_string(),
                )))
            }
        }
    }
    Ok(Err((
        format!("{model} kept refusing parameters: {}", notes.join(", ")),
        "report the provider's messages above".to_string(),
    )))
}

/// The probe's output limit: room for a one-field answer and some thinking.
const PROBE_OUTPUT_TOKENS: u32 = 1_024;

fn probe_request(model: &str) -> GenerateRequest {
    GenerateRequest {
        model: model.to_string(),
        system_instruction: None,
        turns: vec![Turn {
            role: Role::User,
            text: "Answer with the JSON object {\"ok\": true}.".to_string(),
        }],
        response_schema: json!({
            "type": "object",
            "properties": {"ok": {"type": "boolean"}},
            "required": ["ok"],
            "additionalProperties": false
        }),
        temperature: None,
        max_output_tokens: Some(PROBE_OUTPUT_TOKENS),
        thinking: fintel_llm::Thinking::ProviderDefault,
        seed: None,
        output_field: None,
    }
}

fn learned(store: &Store, provider: &str, model: &str) -> Result<Vec<LearnedParam>> {
    Ok(store
        .learned_params(provider, model)?
        .into_iter()
        .filter_map(|row| LearnedParam::from_stored(row.param, &row.action))
        .collect())
}
