//! Which models a provider serves, and which of them fintel uses when none is configured.
//!
//! Models retire, so no model name is built in: pre-flight lists the provider's models
//! (Gemini `GET v1beta/models`, every page; OpenAI-compatible `GET /v1/models`) and, when the
//! user configured none, [`choose_model`] picks one by a documented rule and says why. The
//! readers of the list bodies and the rule are pure functions, table-tested here.

use serde_json::Value;

use crate::http::body_preview;
use crate::types::CallError;

/// The most pages of a Gemini model list fintel reads: a server whose page tokens never end
/// must not keep a pre-flight going for ever.
pub const MAX_MODEL_PAGES: usize = 50;

/// The page size asked of Gemini's `models.list` (its maximum; the default is 50).
pub const MODEL_PAGE_SIZE: u32 = 1000;

/// One model as the provider lists it. Fields the provider does not say are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServedModel {
    /// The id to send, without Gemini's `models/` prefix.
    pub name: String,
    pub version: Option<String>,
    pub display_name: Option<String>,
    pub input_token_limit: Option<u64>,
    pub output_token_limit: Option<u64>,
    /// Gemini `supportedGenerationMethods`; `None` where the list does not say.
    pub generation_methods: Option<Vec<String>>,
    /// Gemini `thinking`: whether the model thinks.
    pub thinking: Option<bool>,
}

impl ServedModel {
    /// Whether the model can answer a generation request, as far as the list says.
    pub fn can_generate(&self) -> bool {
        self.generation_methods
            .as_ref()
            .is_none_or(|methods| methods.iter().any(|m| m == "generateContent"))
    }
}

/// One page of Gemini's `models.list`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelPage {
    pub models: Vec<ServedModel>,
    /// The token for the next page; absent (or empty) on the last one.
    pub next_page_token: Option<String>,
}

/// The protocol family a model list comes from; the choice rule differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFamily {
    Gemini,
    OpenAiCompatible,
}

/// The model fintel chose and a one-line reason to show the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelChoice {
    pub model: String,
    pub reason: String,
}

fn bare(name: &str) -> &str {
    name.trim().strip_prefix("models/").unwrap_or(name.trim())
}

fn not_a_list(body: &str, what: &str) -> CallError {
    CallError::Configuration {
        message: format!(
            "the server did not answer like {what} (is the base URL right?): {}",
            body_preview(body)
        ),
    }
}

/// Reads one page of `GET v1beta/models` (`{"models": [...], "nextPageToken": "..."}`). A page
/// without `models` is an empty page (the API omits empty lists), but a body that is not a
/// JSON object is not the Gemini API.
pub fn parse_gemini_model_page(body: &str) -> Result<ModelPage, CallError> {
    let what = "the Gemini API's model list";
    let value: Value = serde_json::from_str(body).map_err(|_| not_a_list(body, what))?;
    let object = value.as_object().ok_or_else(|| not_a_list(body, what))?;
    let models = match object.get("models") {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().filter_map(gemini_model).collect(),
        Some(_) => return Err(not_a_list(body, what)),
    };
    let next_page_token = object
        .get("nextPageToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    Ok(ModelPage {
        models,
        next_page_token,
    })
}

fn gemini_model(item: &Value) -> Option<ServedModel> {
    let name = bare(item.get("name")?.as_str()?).to_string();
    if name.is_empty() {
        return None;
    }
    let text = |field: &str| item.get(field).and_then(Value::as_str).map(str::to_string);
    let number = |field: &str| {
        item.get(field).and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
    };
    Some(ServedModel {
        name,
        version: text("version"),
        display_name: text("displayName"),
        input_token_limit: number("inputTokenLimit"),
        output_token_limit: number("outputTokenLimit"),
        generation_methods: item
            .get("supportedGenerationMethods")
            .and_then(Value::as_array)
            .map(|m| {
                m.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            }),
        thinking: item.get("thinking").and_then(Value::as_bool),
    })
}

/// Reads `GET /v1/models` of an OpenAI-compatible server (`{"object": "list", "data":
/// [{"id": ...}]}`). vLLM adds `max_model_len`, the model's context.
pub fn parse_openai_models(body: &str) -> Result<Vec<ServedModel>, CallError> {
    let what = "an OpenAI-compatible API's model list";
    let value: Value = serde_json::from_str(body).map_err(|_| not_a_list(body, what))?;
    let data = value
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| not_a_list(body, what))?;
    Ok(data
        .iter()
        .filter_map(|m| {
            let id = bare(m.get("id")?.as_str()?);
            (!id.is_empty()).then(|| ServedModel {
                name: id.to_string(),
                input_token_limit: m.get("max_model_len").and_then(Value::as_u64),
                ..ServedModel::default()
            })
        })
        .collect())
}

/// The served model named `name` (with or without `models/`).
pub fn find_served<'a>(models: &'a [ServedModel], name: &str) -> Option<&'a ServedModel> {
    let wanted = bare(name);
    models.iter().find(|m| m.name == wanted)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    GenerallyAvailable,
    Preview,
    Experimental,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    Flash,
    FlashLite,
    Pro,
}

/// What a Gemini model's name says about it, for the choice rule. Only general text models
/// qualify: `gemini-<version>-<flash|flash-lite|pro>` with an optional stage or revision
/// suffix. Aliases that move (`gemini-flash-latest`) and special-purpose variants (image,
/// TTS, live, embedding, computer use) do not: a batch pins what it analyses with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GeminiName {
    version: Vec<u32>,
    tier: Tier,
    stage: Stage,
    /// 0 for the plain name, 1 for a numbered revision (`-001`), 2 for a dated preview or a
    /// `-latest` alias of one version.
    variant: u8,
}

fn parse_gemini_name(name: &str) -> Option<GeminiName> {
    let rest = name.strip_prefix("gemini-")?;
    let mut parts = rest.split('-');
    let version: Vec<u32> = parts
        .next()?
        .split('.')
        .map(|p| p.parse::<u32>().ok())
        .collect::<Option<_>>()?;
    let mut parts: Vec<&str> = parts.collect();
    let tier = match parts.first().copied() {
        Some("flash") if parts.get(1) == Some(&"lite") => {
            parts.drain(..2);
            Tier::FlashLite
        }
        Some("flash") => {
            parts.remove(0);
            Tier::Flash
        }
        Some("pro") => {
            parts.remove(0);
            Tier::Pro
        }
        _ => return None,
    };
    let numeric = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    let (stage, variant) = match parts.as_slice() {
        [] => (Stage::GenerallyAvailable, 0),
        [n] if numeric(n) => (Stage::GenerallyAvailable, 1),
        ["latest"] => (Stage::GenerallyAvailable, 2),
        ["preview"] => (Stage::Preview, 0),
        ["preview", date @ ..] if date.iter().all(|p| numeric(p)) => (Stage::Preview, 2),
        ["exp"] => (Stage::Experimental, 0),
        ["exp", date @ ..] if date.iter().all(|p| numeric(p)) => (Stage::Experimental, 2),
        _ => return None,
    };
    Some(GeminiName {
        version,
        tier,
        stage,
        variant,
    })
}

/// Gemini text models in the order of the choice rule (generally available before preview
/// before experimental, newest version first, Flash before Flash-Lite before Pro), the
/// server's order breaking ties.
fn ranked_gemini(models: &[ServedModel]) -> Vec<(&ServedModel, GeminiName)> {
    let mut ranked: Vec<(usize, &ServedModel, GeminiName)> = models
        .iter()
        .enumerate()
        .filter(|(_, m)| m.can_generate())
        .filter_map(|(i, m)| parse_gemini_name(&m.name).map(|n| (i, m, n)))
        .collect();
    ranked.sort_by(|(ia, _, a), (ib, _, b)| {
        a.stage
            .cmp(&b.stage)
            .then_with(|| b.version.cmp(&a.version))
            .then_with(|| a.tier.cmp(&b.tier))
            .then_with(|| a.variant.cmp(&b.variant))
            .then_with(|| ia.cmp(ib))
    });
    ranked.into_iter().map(|(_, m, n)| (m, n)).collect()
}

/// Names of chat models an OpenAI-compatible list serves, in its order; embedding, speech,
/// image and moderation models cannot answer a chat completion.
fn openai_chat_models(models: &[ServedModel]) -> Vec<&ServedModel> {
    const NOT_CHAT: &[&str] = &[
        "embed",
        "whisper",
        "tts",
        "dall-e",
        "moderation",
        "transcribe",
        "realtime",
        "rerank",
        "davinci",
        "babbage",
        "gpt-image",
    ];
    models
        .iter()
        .filter(|m| {
            let lower = m.name.to_ascii_lowercase();
            !NOT_CHAT.iter().any(|word| lower.contains(word))
        })
        .collect()
}

/// The rule as one phrase, for messages and the README alike.
pub const GEMINI_RULE: &str =
    "generally available before preview, the newest version, Flash before Flash-Lite and Pro";

/// Chooses the model for a run with none configured, with a one-line reason; `Err` says why
/// none of `models` can be used.
pub fn choose_model(family: ModelFamily, models: &[ServedModel]) -> Result<ModelChoice, String> {
    match family {
        ModelFamily::Gemini => {
            let ranked = ranked_gemini(models);
            if let Some((model, name)) = ranked.first() {
                let stage = match name.stage {
                    Stage::GenerallyAvailable => "the newest generally available".to_string(),
                    Stage::Preview => {
                        "no generally available model is served, so the newest preview".into()
                    }
                    Stage::Experimental => {
                        "no generally available or preview model is served, so the newest \
                         experimental"
                            .into()
                    }
                };
                let tier = match name.tier {
                    Tier::Flash => "Flash",
                    Tier::FlashLite => "Flash-Lite",
                    Tier::Pro => "Pro",
                };
                return Ok(ModelChoice {
                    model: model.name.clone(),
                    reason: format!(
                        "{stage} {tier} model of the {} Gemini text models served (rule: {GEMINI_RULE})",
                        ranked.len()
                    ),
                });
            }
            let generating: Vec<&ServedModel> =
                models.iter().filter(|m| m.can_generate()).collect();
            match generating.first() {
                Some(first) => Ok(ModelChoice {
                    model: first.name.clone(),
                    reason: format!(
                        "no Gemini Flash, Flash-Lite or Pro model is served; the first of the {} \
                         models that can generate content",
                        generating.len()
                    ),
                }),
                None if models.is_empty() => Err("the provider lists no models".to_string()),
                None => Err(format!(
                    "none of the {} models the provider lists can generate content",
                    models.len()
                )),
            }
        }
        ModelFamily::OpenAiCompatible => {
            let chat = openai_chat_models(models);
            match chat.as_slice() {
                [] if models.is_empty() => Err("the server lists no models".to_string()),
                [] => Err(format!(
                    "none of the {} models the server lists is a chat model",
                    models.len()
                )),
                [only] => Ok(ModelChoice {
                    model: only.name.clone(),
                    reason: "the only model the server serves".to_string(),
                }),
                [first, ..] => Ok(ModelChoice {
                    model: first.name.clone(),
                    reason: format!("the first of the {} models the server lists", chat.len()),
                }),
            }
        }
    }
}

/// The served models a user could configure, best first by the choice rule, then every
/// other model that can generate content.
pub fn served_candidates(family: ModelFamily, models: &[ServedModel]) -> Vec<String> {
    let mut names: Vec<String> = match family {
        ModelFamily::Gemini => ranked_gemini(models)
            .into_iter()
            .map(|(m, _)| m.name.clone())
            .collect(),
        ModelFamily::OpenAiCompatible => openai_chat_models(models)
            .into_iter()
            .map(|m| m.name.clone())
            .collect(),
    };
    for m in models.iter().filter(|m| m.can_generate()) {
        if family == ModelFamily::Gemini && !names.contains(&m.name) {
            names.push(m.name.clone());
        }
    }
    names
}

/// At most `max` names joined for a message, saying how many more there are.
pub fn list_for_message(names: &[String], max: usize) -> String {
    if names.is_empty() {
        return "(none)".to_string();
    }
    let shown = names
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    match names.len().saturating_sub(max) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gemini(names: &[&str]) -> Vec<ServedModel> {
        names
            .iter()
            .map(|n| ServedModel {
                name: n.to_string(),
                generation_methods: Some(vec!["generateContent".into(), "countTokens".into()]),
                ..ServedModel::default()
            })
            .collect()
    }

    #[test]
    fn gemini_choice_follows_the_rule() {
        let table: &[(&[&str], &str)] = &[
            // Generally available before preview, whatever the version.
            (
                &[
                    "gemini-3-pro-preview",
                    "gemini-2.5-flash",
                    "gemini-3-flash-preview",
                ],
                "gemini-2.5-flash",
            ),
            // Only Gemini 3.x served: the GA Flash, not Flash-Lite or the Pro preview.
            (
                &[
                    "gemini-3-pro-preview",
                    "gemini-3-flash-lite",
                    "gemini-3-flash",
                ],
                "gemini-3-flash",
            ),
            // The newest version first.
            (
                &["gemini-2.5-flash", "gemini-3.1-flash", "gemini-3-flash"],
                "gemini-3.1-flash",
            ),
            // Flash before Flash-Lite before Pro within one version.
            (
                &["gemini-3-pro", "gemini-3-flash-lite"],
                "gemini-3-flash-lite",
            ),
            (&["gemini-3-pro", "gemini-3-flash"], "gemini-3-flash"),
            // The plain name before a numbered revision of it.
            (
                &["gemini-2.0-flash-001", "gemini-2.0-flash"],
                "gemini-2.0-flash",
            ),
            // Previews only: the newest preview; dated ones after the plain preview.
            (
                &[
                    "gemini-3-flash-preview-09-2026",
                    "gemini-3-flash-preview",
                    "gemini-2.5-pro-preview",
                ],
                "gemini-3-flash-preview",
            ),
            // Aliases and special-purpose variants never qualify.
            (
                &[
                    "gemini-flash-latest",
                    "gemini-3-flash-image",
                    "gemini-3-flash-preview-tts",
                    "gemini-2.5-flash-live",
                    "embedding-001",
                    "gemini-2.5-pro",
                ],
                "gemini-2.5-pro",
            ),
            // Experimental only after everything else.
            (
                &["gemini-3-flash-exp", "gemini-2.0-pro-preview"],
                "gemini-2.0-pro-preview",
            ),
        ];
        for (names, expected) in table {
            let choice = choose_model(ModelFamily::Gemini, &gemini(names)).unwrap();
            assert_eq!(&choice.model, expected, "{names:?}");
            assert!(!choice.reason.contains('\n'), "{}", choice.reason);
        }
    }

    #[test]
    fn gemini_choice_skips_models_that_cannot_generate_and_explains() {
        let mut models = gemini(&["gemini-3-flash", "gemini-3-pro"]);
        models[0].generation_methods = Some(vec!["embedContent".into()]);
        let choice = choose_model(ModelFamily::Gemini, &models).unwrap();
        assert_eq!(choice.model, "gemini-3-pro");
        assert!(
            choice.reason.contains("generally available"),
            "{}",
            choice.reason
        );

        let only_previews =
            choose_model(ModelFamily::Gemini, &gemini(&["gemini-3-pro-preview"])).unwrap();
        assert!(
            only_previews.reason.contains("no generally available"),
            "{}",
            only_previews.reason
        );

        // Nothing that looks like a Gemini text model: the first one that can generate.
        let odd = choose_model(
            ModelFamily::Gemini,
            &gemini(&["learnlm-9", "gemma-4-27b-it"]),
        )
        .unwrap();
        assert_eq!(odd.model, "learnlm-9");
        assert!(odd.reason.contains("no Gemini Flash"), "{}", odd.reason);

        assert!(choose_model(ModelFamily::Gemini, &[])
            .unwrap_err()
            .contains("no models"));
        let mut embedders = gemini(&["text-embedding-004"]);
        embedders[0].generation_methods = Some(vec!["embedContent".into()]);
        assert!(choose_model(ModelFamily::Gemini, &embedders)
            .unwrap_err()
            .contains("can generate content"));
    }

    #[test]
    fn openai_choice_is_the_only_or_first_chat_model() {
        let list = |names: &[&str]| -> Vec<ServedModel> {
            names
                .iter()
                .map(|n| ServedModel {
                    name: n.to_string(),
                    ..ServedModel::default()
                })
                .collect()
        };
        let only = choose_model(ModelFamily::OpenAiCompatible, &list(&["smollm2-135m"])).unwrap();
        assert_eq!(only.model, "smollm2-135m");
        assert_eq!(only.reason, "the only model the server serves");
        let first = choose_model(
            ModelFamily::OpenAiCompatible,
            &list(&[
                "text-embedding-3-small",
                "whisper-1",
                "llama3.1:8b",
                "qwen3:4b",
            ]),
        )
        .unwrap();
        assert_eq!(first.model, "llama3.1:8b");
        assert!(first.reason.contains("first of the 2"), "{}", first.reason);
        assert!(choose_model(ModelFamily::OpenAiCompatible, &[]).is_err());
        assert!(
            choose_model(ModelFamily::OpenAiCompatible, &list(&["whisper-1"]))
                .unwrap_err()
                .contains("chat model")
        );
    }

    #[test]
    fn gemini_pages_are_read() {
        let page = parse_gemini_model_page(
            r#"{"models": [
                {"name": "models/gemini-3-flash", "version": "3.0", "displayName": "Gemini 3 Flash",
                 "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
                 "supportedGenerationMethods": ["generateContent", "countTokens"], "thinking": true},
                {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]}
              ],
              "nextPageToken": "Ch5tb2RlbHMvZ2VtaW5pLTMtZmxhc2g="}"#,
        )
        .unwrap();
        assert_eq!(page.models.len(), 2);
        let m = &page.models[0];
        assert_eq!(m.name, "gemini-3-flash");
        assert_eq!(m.version.as_deref(), Some("3.0"));
        assert_eq!(m.display_name.as_deref(), Some("Gemini 3 Flash"));
        assert_eq!(m.input_token_limit, Some(1_048_576));
        assert_eq!(m.output_token_limit, Some(65_536));
        assert_eq!(m.thinking, Some(true));
        assert!(m.can_generate());
        assert!(!page.models[1].can_generate());
        assert_eq!(
            page.next_page_token.as_deref(),
            Some("Ch5tb2RlbHMvZ2VtaW5pLTMtZmxhc2g=")
        );

        // The last page has no token (or an empty one); an empty list may be omitted.
        let last = parse_gemini_model_page(r#"{"models": [], "nextPageToken": ""}"#).unwrap();
        assert_eq!(last, ModelPage::default());
        assert_eq!(parse_gemini_model_page("{}").unwrap(), ModelPage::default());
        for bad in ["<html>proxy</html>", "[1,2]", r#"{"models": 3}"#] {
            assert!(
                matches!(
                    parse_gemini_model_page(bad),
                    Err(CallError::Configuration { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn openai_lists_are_read() {
        let models = parse_openai_models(
            r#"{"object":"list","data":[
                {"id":"meta-llama/Llama-3.1-8B-Instruct","object":"model","owned_by":"vllm","max_model_len":32768},
                {"id":"models/gemini-3-flash","object":"model"}]}"#,
        )
        .unwrap();
        assert_eq!(models[0].name, "meta-llama/Llama-3.1-8B-Instruct");
        assert_eq!(models[0].input_token_limit, Some(32_768));
        assert_eq!(models[1].name, "gemini-3-flash");
        assert!(find_served(&models, "models/gemini-3-flash").is_some());
        assert!(find_served(&models, "gemini-2.5-flash").is_none());
        assert!(parse_openai_models(r#"{"models":[]}"#).is_err());
    }

    #[test]
    fn candidates_are_ranked_then_the_rest() {
        let mut models = gemini(&["gemma-4-27b-it", "gemini-3-pro-preview", "gemini-3-flash"]);
        models.push(ServedModel {
            name: "text-embedding-004".into(),
            generation_methods: Some(vec!["embedContent".into()]),
            ..ServedModel::default()
        });
        assert_eq!(
            served_candidates(ModelFamily::Gemini, &models),
            vec!["gemini-3-flash", "gemini-3-pro-preview", "gemma-4-27b-it"]
        );
        let names: Vec<String> = (0..5).map(|i| format!("m{i}")).collect();
        assert_eq!(list_for_message(&names, 3), "m0, m1, m2 and 2 more");
        assert_eq!(list_for_message(&[], 3), "(none)");
    }
}
