//! Which model a command uses, and what fintel says about it.
//!
//! Models retire, so none is built in: the configured model is checked against what the
//! provider serves, or, with none configured, one is chosen from the provider's list by
//! [`fintel_llm::choose_model`]'s rule. The messages for a model that is not served, or that
//! retired under a running batch, are built here so that `fintel batch`, `fintel analyze` and
//! `fintel doctor` say the same thing.

use fintel_engine::Bucket;
use fintel_llm::{CallError, ModelChoice, ModelFamily, Provider, ServedModel};

use crate::config::ProviderKind;

/// Served models shown in a message at most.
const SHOWN_CANDIDATES: usize = 12;

/// The choice rule's family for a provider.
pub fn family(kind: ProviderKind) -> ModelFamily {
    match kind {
        ProviderKind::Gemini => ModelFamily::Gemini,
        ProviderKind::OpenAi => ModelFamily::OpenAiCompatible,
    }
}

/// The provider's models, asked with each key in turn until one answers (a key the provider
/// refuses says nothing about the list); a bucket without keys (a local server) asks without
/// one. The last error when none answered.
pub async fn list_served(
    provider: &dyn Provider,
    buckets: &[Bucket],
) -> Result<Vec<ServedModel>, CallError> {
    let mut keys: Vec<Option<&fintel_llm::ApiKey>> = buckets
        .iter()
        .flat_map(|b| {
            if b.keys.is_empty() {
                vec![None]
            } else {
                b.keys.iter().map(Some).collect()
            }
        })
        .collect();
    if keys.is_empty() {
        keys.push(None);
    }
    let mut last = None;
    for key in keys {
        match provider.list_models(key).await {
            Ok(models) => return Ok(models),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or(CallError::Configuration {
        message: "no key to ask the provider with".to_string(),
    }))
}

/// Chooses the model when none is configured; without a list, or with nothing usable in it,
/// the message says how to pin one.
pub fn choose(
    kind: ProviderKind,
    served: &Result<Vec<ServedModel>, CallError>,
) -> Result<ModelChoice, String> {
    let how = "set FINTEL_MODEL (or [model] name in fintel.toml, or --model) to the model to use";
    match served {
        Ok(models) => fintel_llm::choose_model(family(kind), models).map_err(|why| {
            format!("no model is configured and fintel cannot choose one: {why}; {how}")
        }),
        Err(e) => Err(format!(
            "no model is configured and the provider's model list could not be read ({e}); {how}"
        )),
    }
}

/// What fintel prints when it chose the model.
pub fn chosen_line(choice: &ModelChoice) -> String {
    format!(
        "model: {} (chosen: {}; pin it, or another, with FINTEL_MODEL or [model] name in \
         fintel.toml)",
        choice.model, choice.reason
    )
}

/// The served models a user could pick, for messages: best first by the rule.
pub fn candidates(kind: ProviderKind, served: Option<&[ServedModel]>) -> String {
    match served {
        Some(models) => fintel_llm::models::list_for_message(
            &fintel_llm::served_candidates(family(kind), models),
            SHOWN_CANDIDATES,
        ),
        None => "(the provider's list could not be read)".to_string(),
    }
}

/// A configured model the provider does not serve (exit 4).
pub fn not_served(model: &str, provider_message: &str, candidates: &str) -> String {
    format!(
        "model {model:?} is not served by the provider ({provider_message}). Served models: \
         {candidates}. Set FINTEL_MODEL (or [model] name in fintel.toml) to one of them, or \
         leave it unset to let fintel choose by its rule"
    )
}

/// A batch's model that the provider no longer serves (exit 4), with the two ways on.
pub fn retired(batch_id: &str, model: &str, provider_message: &str, candidates: &str) -> String {
    format!(
        "model {model:?}, which batch {batch_id} analyses with, is no longer served by the \
         provider (retired): {provider_message}\nNo task was failed for it. Either start a new \
         batch with a served model (fintel batch FILE --years N, with --model NEW or none to let \
         fintel choose; results already stored are reused where they match), or go on with \
         this batch on another model: fintel batch --resume {batch_id} --switch-model NEW \
         (results so far keep {model}). Served models: {candidates}"
    )
}

/// The line `batch status`, `fintel screen` and exports print when a batch's results come from
/// more than one model; `None` when they come from one (or none).
pub fn mixed_models_note(models: &[fintel_store::ModelResults]) -> Option<String> {
    if models.len() < 2 {
        return None;
    }
    let parts: Vec<String> = models
        .iter()
        .map(|m| format!("{} from {}", m.results, m.model))
        .collect();
    Some(format!(
        "results come from {} models: {}",
        models.len(),
        parts.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_model_the_candidates_and_the_way_on() {
        let served = Ok(vec![
            ServedModel {
                name: "gemini-3-pro-preview".into(),
                ..ServedModel::default()
            },
            ServedModel {
                name: "gemini-3-flash".into(),
                ..ServedModel::default()
            },
        ]);
        let choice = choose(ProviderKind::Gemini, &served).unwrap();
        assert_eq!(choice.model, "gemini-3-flash");
        assert!(chosen_line(&choice).starts_with("model: gemini-3-flash (chosen: "));
        let list = candidates(ProviderKind::Gemini, served.as_deref().ok());
        assert_eq!(list, "gemini-3-flash, gemini-3-pro-preview");
        let msg = not_served("gemini-2.5-flash", "HTTP 404", &list);
        assert!(msg.contains("\"gemini-2.5-flash\" is not served"), "{msg}");
        assert!(
            msg.contains("gemini-3-flash, gemini-3-pro-preview"),
            "{msg}"
        );
        let msg = retired("b-1", "gemini-2.5-flash", "gone", &list);
        assert!(msg.contains("--resume b-1 --switch-model NEW"), "{msg}");
        assert!(msg.contains("new batch"), "{msg}");

        let unreadable: Result<Vec<ServedModel>, CallError> = Err(CallError::Transient {
            message: "connection refused".into(),
            reached_server: false,
        });
        assert!(choose(ProviderKind::Gemini, &unreadable)
            .unwrap_err()
            .contains("FINTEL_MODEL"));
        assert!(choose(ProviderKind::OpenAi, &Ok(Vec::new()))
            .unwrap_err()
            .contains("lists no models"));
    }

    #[test]
    fn mixed_models_are_noted_only_when_mixed() {
        let one = vec![fintel_store::ModelResults {
            model: "a".into(),
            results: 3,
        }];
        assert_eq!(mixed_models_note(&one), None);
        let two = vec![
            one[0].clone(),
            fintel_store::ModelResults {
                model: "b".into(),
                results: 1,
            },
        ];
        assert_eq!(
            mixed_models_note(&two).unwrap(),
            "results come from 2 models: 3 from a, 1 from b"
        );
    }
}
