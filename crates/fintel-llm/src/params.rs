//! The generation parameters sent to each model family, as data: one pure function from the
//! server, the model's name and what discovery says about it, the user's explicit settings and
//! what fintel learned from the provider's refusals, to the temperature, thinking, seed and
//! output-limit field of a request. A refused parameter becomes a [`LearnedParam`] (stored by
//! the engine) that every later request for that model follows.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::types::{GenerateRequest, MaxTokensField, ServerKind, Thinking};

/// The temperature of families that take one when the user sets none: low, for answers that
/// change little between runs.
pub const DEFAULT_TEMPERATURE: f32 = 0.2;
/// The seed sent when the user sets none (`FINTEL_SEED`, `[model] seed`), so two runs of a
/// study ask the same.
pub const DEFAULT_SEED: i64 = 1;
/// The thinking budget of a Gemini 2.5 model whose thinking the user did not set: thinking
/// counts against the output limit, and a dynamic budget can use all of it (MAX_TOKENS).
pub const DEFAULT_THINKING_BUDGET: i32 = 8_192;
/// The thinking level of a Gemini 3 model whose thinking the user did not set: the level
/// Google documents as these models' default, sent so the stored result says what was used.
pub const DEFAULT_THINKING_LEVEL: &str = "high";

/// The families whose parameters differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParamFamily {
    /// Gemini 2.5: `thinkingBudget`, a low temperature.
    #[serde(rename = "gemini-2.5")]
    Gemini25,
    /// Gemini 3 and later: `thinkingLevel`, and the temperature left at its default of 1.0
    /// (Google: lower values may make these models loop).
    #[serde(rename = "gemini-3")]
    Gemini3,
    /// Other Gemini-API models (Gemma, Gemini 2.0): no thinking settings.
    #[serde(rename = "gemini-other")]
    GeminiOther,
    /// OpenAI's reasoning models (o1, o3, o4-mini...) and GPT-5: `max_completion_tokens`, only
    /// the default temperature, `reasoning_effort` when the user asks.
    #[serde(rename = "openai-reasoning")]
    OpenAiReasoning,
    /// Any other model on the OpenAI protocol (older OpenAI models, local servers):
    /// `max_tokens`.
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
}

impl ParamFamily {
    /// The family of `model` served by a `server`.
    pub fn of(server: ServerKind, model: &str) -> ParamFamily {
        let name = model.trim();
        let name = name.strip_prefix("models/").unwrap_or(name);
        // Routers and local servers prefix an owner ("openai/gpt-5", "google/gemini-3-pro").
        let base = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
        if let Some(rest) = base.strip_prefix("gemini-") {
            let major: u32 = rest
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap_or(0);
            return match major {
                3.. => ParamFamily::Gemini3,
                2 if rest.starts_with("2.5") => ParamFamily::Gemini25,
                _ if server == ServerKind::Gemini => ParamFamily::GeminiOther,
                _ => ParamFamily::OpenAiCompatible,
            };
        }
        if server == ServerKind::Gemini {
            return ParamFamily::GeminiOther;
        }
        let o_series = base.len() >= 2
            && base.starts_with('o')
            && base[1..].starts_with(|c: char| c.is_ascii_digit());
        if o_series || base.starts_with("gpt-5") {
            ParamFamily::OpenAiReasoning
        } else {
            ParamFamily::OpenAiCompatible
        }
    }
}

/// What the user set explicitly; `None` / [`Thinking::ProviderDefault`] leaves it to the family.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserParams {
    pub temperature: Option<f32>,
    pub thinking: Thinking,
    pub seed: Option<i64>,
}

/// What fintel does with a parameter the provider refused for a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action", content = "to")]
pub enum ParamAction {
    /// Leave it out.
    Drop,
    /// Send its value under another name.
    Rename(String),
}

impl ParamAction {
    /// How the action is stored (`drop`, `rename:max_completion_tokens`).
    pub fn to_stored(&self) -> String {
        match self {
            ParamAction::Drop => "drop".to_string(),
            ParamAction::Rename(to) => format!("rename:{to}"),
        }
    }

    /// Reads [`Self::to_stored`]; `None` for a text this version does not know.
    pub fn from_stored(text: &str) -> Option<ParamAction> {
        match text.split_once(':') {
            None if text == "drop" => Some(ParamAction::Drop),
            Some(("rename", to)) if !to.is_empty() => Some(ParamAction::Rename(to.to_string())),
            _ => None,
        }
    }
}

/// A parameter a provider refused for one model, and what fintel does about it from then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnedParam {
    /// The parameter's name on the wire (`max_tokens`, `temperature`, `thinkingBudget`).
    pub param: String,
    pub action: ParamAction,
}

impl LearnedParam {
    /// A rule as the database stores it (`param`, and `action` as [`ParamAction::to_stored`]
    /// wrote it); `None` for a rule this version does not know, which is ignored rather than
    /// misapplied.
    pub fn from_stored(param: String, action: &str) -> Option<LearnedParam> {
        ParamAction::from_stored(action).map(|action| LearnedParam { param, action })
    }

    /// The rule for a refused parameter fintel knows how to do without, or `None` (a
    /// parameter fintel cannot leave out or rename, e.g. `response_format`).
    pub fn for_refused(param: &str) -> Option<LearnedParam> {
        let action = match param {
            "max_tokens" => ParamAction::Rename("max_completion_tokens".into()),
            "max_completion_tokens" => ParamAction::Rename("max_tokens".into()),
            "temperature" | "seed" | "reasoning_effort" | "thinkingBudget" | "thinkingLevel"
            | "thinkingConfig" => ParamAction::Drop,
            _ => return None,
        };
        Some(LearnedParam {
            param: param.to_string(),
            action,
        })
    }

    /// Whether this rule already changed what is sent as `param`: the parameter itself, or
    /// the name it was renamed to.
    pub fn covers(&self, param: &str) -> bool {
        self.param == param || matches!(&self.action, ParamAction::Rename(to) if to == param)
    }

    /// A line for the user: "max_tokens is sent as max_completion_tokens".
    pub fn describe(&self) -> String {
        match &self.action {
            ParamAction::Drop => format!("{} is left out", self.param),
            ParamAction::Rename(to) => format!("{} is sent as {to}", self.param),
        }
    }
}

/// Everything the parameters of a request depend on.
#[derive(Debug, Clone, Copy)]
pub struct ParamsInput<'a> {
    pub server: ServerKind,
    pub model: &'a str,
    /// Discovery's word on whether the model thinks (Gemini `thinking`); `None`: unknown.
    pub thinks: Option<bool>,
    /// The output limit the request will carry (thinking fits inside it).
    pub max_output_tokens: Option<u32>,
    pub user: &'a UserParams,
    /// What the provider refused for this model before.
    pub learned: &'a [LearnedParam],
}

/// The parameters of a request, and which of them the user set.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestParams {
    pub family: ParamFamily,
    pub temperature: Option<f32>,
    pub thinking: Thinking,
    pub seed: Option<i64>,
    /// On the OpenAI protocol, the field of the output limit; `None` on Gemini's API.
    pub output_field: Option<MaxTokensField>,
    /// Wire names of the parameters the user set: a refusal of one of these stops the batch.
    pub explicit: Vec<&'static str>,
    /// The rules these parameters follow.
    pub learned: Vec<LearnedParam>,
}

/// The parameters sent to `input.model` (see the module documentation and README.md, "What
/// each provider family gets sent").
pub fn request_params(input: &ParamsInput) -> RequestParams {
    let family = ParamFamily::of(input.server, input.model);
    let user = input.user;
    let gemini_api = input.server == ServerKind::Gemini;
    let learned = |param: &str| input.learned.iter().find(|l| l.param == param);
    let dropped = |param: &str| learned(param).is_some_and(|l| l.action == ParamAction::Drop);

    let mut explicit = Vec::new();
    let temperature = match user.temperature {
        Some(t) => {
            explicit.push("temperature");
            Some(t)
        }
        None if dropped("temperature") => None,
        None => match family {
            ParamFamily::Gemini3 | ParamFamily::OpenAiReasoning => None,
            _ => Some(DEFAULT_TEMPERATURE),
        },
    };

    let thinking = match &user.thinking {
        Thinking::ProviderDefault => {
            let chosen = match family {
                _ if !gemini_api || input.thinks == Some(false) => Thinking::ProviderDefault,
                ParamFamily::Gemini25 => {
                    let half = input.max_output_tokens.map_or(i32::MAX, |m| (m / 2) as i32);
                    Thinking::Budget(DEFAULT_THINKING_BUDGET.min(half).max(128))
                }
                ParamFamily::Gemini3 => Thinking::Level(DEFAULT_THINKING_LEVEL.to_string()),
                _ => Thinking::ProviderDefault,
            };
            let refused = match &chosen {
                Thinking::ProviderDefault => false,
                Thinking::Budget(_) => dropped("thinkingConfig") || dropped("thinkingBudget"),
                Thinking::Level(_) => dropped("thinkingConfig") || dropped("thinkingLevel"),
            };
            if refused {
                Thinking::ProviderDefault
            } else {
                chosen
            }
        }
        set => {
            let wire = match (set, gemini_api) {
                (Thinking::Budget(_), true) => Some("thinkingBudget"),
                (Thinking::Level(_), true) => Some("thinkingLevel"),
                (Thinking::Level(_), false) => Some("reasoning_effort"),
                // A budget has no equivalent on the OpenAI protocol and is not sent.
                _ => None,
            };
            explicit.extend(wire);
            if wire.is_some() && gemini_api {
                explicit.push("thinkingConfig");
            }
            set.clone()
        }
    };

    let seed = match user.seed {
        Some(s) => {
            explicit.push("seed");
            Some(s)
        }
        None if dropped("seed") => None,
        None => Some(DEFAULT_SEED),
    };

    let output_field = (!gemini_api).then(|| {
        let chosen = match family {
            ParamFamily::OpenAiReasoning => MaxTokensField::MaxCompletionTokens,
            _ => MaxTokensField::MaxTokens,
        };
        match learned(chosen.wire_name()).map(|l| &l.action) {
            Some(ParamAction::Rename(to)) if to == "max_completion_tokens" => {
                MaxTokensField::MaxCompletionTokens
            }
            Some(ParamAction::Rename(to)) if to == "max_tokens" => MaxTokensField::MaxTokens,
            _ => chosen,
        }
    });

    RequestParams {
        family,
        temperature,
        thinking,
        seed,
        output_field,
        explicit,
        learned: input.learned.to_vec(),
    }
}

impl RequestParams {
    /// Sets these parameters on `request`.
    pub fn apply(&self, request: &mut GenerateRequest) {
        request.temperature = self.temperature;
        request.thinking = self.thinking.clone();
        request.seed = self.seed;
        request.output_field = self.output_field;
    }

    /// Whether the user set the parameter sent as `param`.
    pub fn user_set(&self, param: &str) -> bool {
        self.explicit.contains(&param)
    }
}

/// What a request was sent with, as stored beside its result so a study can be re-run: the
/// family, temperature, thinking, seed, output limit and its field.
pub fn record_request_params(family: ParamFamily, request: &GenerateRequest) -> Value {
    let thinking = match &request.thinking {
        Thinking::ProviderDefault => Value::Null,
        Thinking::Budget(b) => json!({ "budget": b }),
        Thinking::Level(l) => json!({ "level": l }),
    };
    json!({
        "family": family,
        "temperature": request.temperature.map(crate::gemini::f32_json),
        "thinking": thinking,
        "seed": request.seed,
        "max_output_tokens": request.max_output_tokens,
        "output_field": request.output_field.map(MaxTokensField::wire_name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use MaxTokensField::{MaxCompletionTokens, MaxTokens};
    use ServerKind::{Gemini, LlamaCpp, OpenAiCompatible};

    fn level(l: &str) -> Thinking {
        Thinking::Level(l.to_string())
    }

    #[test]
    fn each_family_gets_its_own_parameters() {
        let none = UserParams::default();
        let user = UserParams {
            temperature: Some(0.7),
            thinking: level("low"),
            seed: Some(42),
        };
        let renamed = [LearnedParam {
            param: "max_tokens".into(),
            action: ParamAction::Rename("max_completion_tokens".into()),
        }];
        let no_temp = [LearnedParam {
            param: "temperature".into(),
            action: ParamAction::Drop,
        }];
        let no_seed = [LearnedParam {
            param: "seed".into(),
            action: ParamAction::Drop,
        }];
        // (server, model, thinks, user, learned)
        //   -> (family, temperature, thinking, seed, output field, explicit)
        type Row<'a> = (
            (
                ServerKind,
                &'a str,
                Option<bool>,
                &'a UserParams,
                &'a [LearnedParam],
            ),
            (
                ParamFamily,
                Option<f32>,
                Thinking,
                Option<i64>,
                Option<MaxTokensField>,
                Vec<&'static str>,
            ),
        );
        let table: Vec<Row> = vec![
            (
                (Gemini, "gemini-2.5-flash", Some(true), &none, &[]),
                (
                    ParamFamily::Gemini25,
                    Some(0.2),
                    Thinking::Budget(8_192),
                    Some(DEFAULT_SEED),
                    None,
                    vec![],
                ),
            ),
            (
                (Gemini, "models/gemini-3-flash-preview", None, &none, &[]),
                (
                    ParamFamily::Gemini3,
                    None,
                    level("high"),
                    Some(DEFAULT_SEED),
                    None,
                    vec![],
                ),
            ),
            (
                (Gemini, "gemini-3.1-pro-preview", Some(true), &user, &[]),
                (
                    ParamFamily::Gemini3,
                    Some(0.7),
                    level("low"),
                    Some(42),
                    None,
                    vec!["temperature", "thinkingLevel", "thinkingConfig", "seed"],
                ),
            ),
            (
                (Gemini, "gemma-3-27b-it", Some(false), &none, &[]),
                (
                    ParamFamily::GeminiOther,
                    Some(0.2),
                    Thinking::ProviderDefault,
                    Some(DEFAULT_SEED),
                    None,
                    vec![],
                ),
            ),
            (
                (OpenAiCompatible, "gpt-5-mini", None, &none, &[]),
                (
                    ParamFamily::OpenAiReasoning,
                    None,
                    Thinking::ProviderDefault,
                    Some(DEFAULT_SEED),
                    Some(MaxCompletionTokens),
                    vec![],
                ),
            ),
            (
                (OpenAiCompatible, "o4-mini", None, &user, &[]),
                (
                    ParamFamily::OpenAiReasoning,
                    Some(0.7),
                    level("low"),
                    Some(42),
                    Some(MaxCompletionTokens),
                    vec!["temperature", "reasoning_effort", "seed"],
                ),
            ),
            (
                (OpenAiCompatible, "gpt-4o-mini", None, &none, &[]),
                (
                    ParamFamily::OpenAiCompatible,
                    Some(0.2),
                    Thinking::ProviderDefault,
                    Some(DEFAULT_SEED),
                    Some(MaxTokens),
                    vec![],
                ),
            ),
            (
                (LlamaCpp, "SmolLM2-135M-Instruct", None, &none, &[]),
                (
                    ParamFamily::OpenAiCompatible,
                    Some(0.2),
                    Thinking::ProviderDefault,
                    Some(DEFAULT_SEED),
                    Some(MaxTokens),
                    vec![],
                ),
            ),
            // What was learned: a renamed limit, a dropped temperature and seed.
            (
                (OpenAiCompatible, "gpt-4.1", None, &none, &renamed),
                (
                    ParamFamily::OpenAiCompatible,
                    Some(0.2),
                    Thinking::ProviderDefault,
                    Some(DEFAULT_SEED),
                    Some(MaxCompletionTokens),
                    vec![],
                ),
            ),
            (
                (OpenAiCompatible, "my-proxy/reasoner", None, &none, &no_temp),
                (
                    ParamFamily::OpenAiCompatible,
                    None,
                    Thinking::ProviderDefault,
                    Some(DEFAULT_SEED),
                    Some(MaxTokens),
                    vec![],
                ),
            ),
            (
                (Gemini, "gemini-2.5-pro", None, &none, &no_seed),
                (
                    ParamFamily::Gemini25,
                    Some(0.2),
                    Thinking::Budget(8_192),
                    None,
                    None,
                    vec![],
                ),
            ),
            // The user's temperature is sent even where it was refused before: the user hears
            // the provider's word.
            (
                (OpenAiCompatible, "gpt-5", None, &user, &no_temp),
                (
                    ParamFamily::OpenAiReasoning,
                    Some(0.7),
                    level("low"),
                    Some(42),
                    Some(MaxCompletionTokens),
                    vec!["temperature", "reasoning_effort", "seed"],
                ),
            ),
            // Gemini 3 through the OpenAI protocol: no temperature, no thinking unless asked.
            (
                (
                    OpenAiCompatible,
                    "google/gemini-3-pro-preview",
                    None,
                    &none,
                    &[],
                ),
                (
                    ParamFamily::Gemini3,
                    None,
                    Thinking::ProviderDefault,
                    Some(DEFAULT_SEED),
                    Some(MaxTokens),
                    vec![],
                ),
            ),
        ];
        for ((server, model, thinks, user, learned), expected) in table {
            let got = request_params(&ParamsInput {
                server,
                model,
                thinks,
                max_output_tokens: Some(65_536),
                user,
                learned,
            });
            assert_eq!(
                (
                    got.family,
                    got.temperature,
                    got.thinking,
                    got.seed,
                    got.output_field,
                    got.explicit
                ),
                expected,
                "{server:?} {model}"
            );
        }
    }

    #[test]
    fn a_small_output_limit_keeps_gemini_25_thinking_to_half_of_it() {
        let none = UserParams::default();
        let got = request_params(&ParamsInput {
            server: Gemini,
            model: "gemini-2.5-flash",
            thinks: None,
            max_output_tokens: Some(4_096),
            user: &none,
            learned: &[],
        });
        assert_eq!(got.thinking, Thinking::Budget(2_048));
    }

    #[test]
    fn families_are_recorded_by_name() {
        let names: Vec<Value> = [
            ParamFamily::Gemini25,
            ParamFamily::Gemini3,
            ParamFamily::GeminiOther,
            ParamFamily::OpenAiReasoning,
            ParamFamily::OpenAiCompatible,
        ]
        .iter()
        .map(|f| json!(f))
        .collect();
        assert_eq!(
            names,
            [
                "gemini-2.5",
                "gemini-3",
                "gemini-other",
                "openai-reasoning",
                "openai-compatible"
            ]
        );
    }

    #[test]
    fn families_are_read_from_names() {
        let cases = [
            (Gemini, "gemini-2.5-flash-lite", ParamFamily::Gemini25),
            (Gemini, "gemini-2.0-flash", ParamFamily::GeminiOther),
            (Gemini, "gemini-3-pro-preview", ParamFamily::Gemini3),
            (Gemini, "gemini-10-ultra", ParamFamily::Gemini3),
            (OpenAiCompatible, "o1", ParamFamily::OpenAiReasoning),
            (OpenAiCompatible, "o3-mini", ParamFamily::OpenAiReasoning),
            (
                OpenAiCompatible,
                "openai/gpt-5.1",
                ParamFamily::OpenAiReasoning,
            ),
            (OpenAiCompatible, "gpt-4o", ParamFamily::OpenAiCompatible),
            (OpenAiCompatible, "olmo-2", ParamFamily::OpenAiCompatible),
            (LlamaCpp, "qwen2.5:7b", ParamFamily::OpenAiCompatible),
        ];
        for (server, model, family) in cases {
            assert_eq!(ParamFamily::of(server, model), family, "{model}");
        }
    }

    #[test]
    fn learned_actions_round_trip_and_cover_their_targets() {
        for param in ["max_tokens", "temperature"] {
            let rule = LearnedParam::for_refused(param).unwrap();
            assert_eq!(
                ParamAction::from_stored(&rule.action.to_stored()),
                Some(rule.action.clone())
            );
        }
        let rename = LearnedParam::for_refused("max_tokens").unwrap();
        assert!(rename.covers("max_tokens") && rename.covers("max_completion_tokens"));
        assert!(!rename.covers("temperature"));
        assert_eq!(LearnedParam::for_refused("response_format"), None);
        assert_eq!(ParamAction::from_stored("rename:"), None);
        assert_eq!(ParamAction::from_stored("explode"), None);
    }
}
