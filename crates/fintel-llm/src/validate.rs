//! Local checking of a model's answer against the analysis schema, and the repair request that
//! tells the model precisely what was wrong.
//!
//! Validation never fetches anything: a `$ref` to another document is refused with a message
//! saying to inline it under `$defs`, whatever features the validator was built with.

use serde_json::Value;

use crate::http::truncate_chars;
use crate::types::{CallError, GenerateRequest, Role, Turn, Usage};

/// How many schema problems are listed; the rest are counted.
pub const MAX_LISTED_PROBLEMS: usize = 10;

/// Longest description of a single problem (the validator quotes the offending value).
const MAX_PROBLEM_CHARS: usize = 240;

/// Why an answer cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputProblem {
    /// The text (after removing a markdown fence) is not JSON.
    #[error("the answer is not valid JSON: {detail}")]
    NotJson { detail: String },
    /// The JSON does not match the schema. `problems` holds at most [`MAX_LISTED_PROBLEMS`]
    /// entries of the form `path: message`; `total` counts them all.
    #[error("the answer does not match the schema: {}", describe_list(.problems, *.total))]
    SchemaMismatch { problems: Vec<String>, total: usize },
    /// The schema itself cannot be compiled (see [`check_schema`]).
    #[error("the schema cannot be used for validation: {0}")]
    BadSchema(String),
}

impl OutputProblem {
    /// The engine's view of this problem: `BadOutput`, keeping the raw text and the usage of
    /// the call that produced it.
    pub fn into_bad_output(self, raw_text: &str, usage: Usage) -> CallError {
        CallError::BadOutput {
            reason: self.to_string(),
            raw_text: Some(raw_text.to_string()),
            usage,
        }
    }
}

fn describe_list(problems: &[String], total: usize) -> String {
    let mut text = problems.join("; ");
    if total > problems.len() {
        text.push_str(&format!("; and {} more", total - problems.len()));
    }
    text
}

/// Refuses every external `$ref`: schemas are local files, and a validator that fetched URLs
/// would make a batch depend on someone else's web server.
struct NoExternalRefs;

impl jsonschema::Retrieve for NoExternalRefs {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!(
            "the schema refers to the external document {uri}, which is never fetched: copy its \
             definitions under \"$defs\" and refer to them as \"#/$defs/NAME\""
        )
        .into())
    }
}

fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_retriever(NoExternalRefs)
        .build(schema)
        .map_err(|e| {
            let path = e.schema_path.as_str().to_string();
            if path.is_empty() || path == "/" {
                e.to_string()
            } else {
                format!("at {path}: {e}")
            }
        })
}

/// Checks that `schema` is a JSON Schema the local validator can use: an object (or boolean)
/// that is valid against its draft's meta-schema, whose `$ref`s all resolve locally.
pub fn check_schema(schema: &Value) -> Result<(), String> {
    if !schema.is_object() && !schema.is_boolean() {
        return Err(format!(
            "a JSON Schema must be an object (or true/false), not {}",
            json_kind(schema)
        ));
    }
    match jsonschema::meta::try_validate(schema) {
        Err(e) => {
            return Err(format!(
                "its \"$schema\" names no known JSON Schema draft: {e}"
            ))
        }
        Ok(Err(e)) => {
            let at = e.instance_path.as_str();
            let at = if at.is_empty() { "the top level" } else { at };
            return Err(format!("it is not a valid JSON Schema (at {at}): {e}"));
        }
        Ok(Ok(())) => {}
    }
    compile(schema).map(|_| ())
}

/// Removes a markdown code fence (```` ```json ... ``` ````) that some models wrap around
/// JSON even when asked for JSON only.
pub fn strip_code_fence(text: &str) -> &str {
    let trimmed = text.trim();
    let Some(rest) = trimmed.strip_prefix("```") else {
        return trimmed;
    };
    let rest = rest
        .strip_prefix("json")
        .or_else(|| rest.strip_prefix("JSON"))
        .unwrap_or(rest);
    let rest = rest.trim_end();
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

/// Parses a model's answer and validates it against `schema`, returning the JSON to store.
///
/// A markdown fence around the JSON is accepted. Problems are listed with their JSON path
/// (`(root)` for the top level) and capped at [`MAX_LISTED_PROBLEMS`].
pub fn validate_output(schema: &Value, text: &str) -> Result<Value, OutputProblem> {
    let json_text = strip_code_fence(text);
    let value: Value = serde_json::from_str(json_text).map_err(|e| OutputProblem::NotJson {
        detail: describe_json_error(json_text, &e),
    })?;
    let validator = compile(schema).map_err(OutputProblem::BadSchema)?;
    let mut problems = Vec::new();
    let mut total = 0;
    for error in validator.iter_errors(&value) {
        total += 1;
        if problems.len() < MAX_LISTED_PROBLEMS {
            let path = error.instance_path.as_str();
            let path = if path.is_empty() { "(root)" } else { path };
            problems.push(format!(
                "{path}: {}",
                truncate_chars(&error.to_string(), MAX_PROBLEM_CHARS)
            ));
        }
    }
    if total > 0 {
        return Err(OutputProblem::SchemaMismatch { problems, total });
    }
    // Stored as the schema orders it, whatever order the provider answered in.
    Ok(in_schema_order(&value, schema))
}

/// `value` with every object's fields in the order of its schema node (`propertyOrdering`,
/// else the order of `properties`); fields the schema does not name follow in the answer's
/// order. Array items follow their `items` schema.
pub fn in_schema_order(value: &Value, schema: &Value) -> Value {
    match value {
        Value::Object(fields) => {
            let property = |name: &str| schema.get("properties").and_then(|p| p.get(name));
            let ordered: Vec<&str> = match schema.get("propertyOrdering").and_then(Value::as_array)
            {
                Some(names) => names.iter().filter_map(Value::as_str).collect(),
                None => schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default(),
            };
            let mut out = serde_json::Map::new();
            let names = ordered
                .into_iter()
                .filter(|name| fields.contains_key(*name))
                .chain(fields.keys().map(String::as_str));
            for name in names {
                if out.contains_key(name) {
                    continue;
                }
                let child = &fields[name];
                let ordered_child = match property(name) {
                    Some(node) => in_schema_order(child, node),
                    None => child.clone(),
                };
                out.insert(name.to_string(), ordered_child);
            }
            Value::Object(out)
        }
        Value::Array(items) => match schema.get("items") {
            Some(node) => Value::Array(items.iter().map(|i| in_schema_order(i, node)).collect()),
            None => value.clone(),
        },
        other => other.clone(),
    }
}

fn describe_json_error(text: &str, error: &serde_json::Error) -> String {
    if text.trim().is_empty() {
        return "the answer is empty".to_string();
    }
    match error.classify() {
        serde_json::error::Category::Eof => {
            format!(
                "it ends before the JSON is complete ({error}); the answer was probably cut off"
            )
        }
        _ => {
            let start = text.chars().take(60).collect::<String>().replace('\n', " ");
            format!("{error}; the answer starts with {start:?}")
        }
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The repair request for an answer that could not be used: the same system instruction and
/// settings, and one user turn with the schema, the invalid answer and what was wrong with it.
/// The original prompt (the filing) is never sent again: the model needs only to correct its
/// JSON, and a repair must cost a fraction of the first call.
pub fn repair_request(
    original: &GenerateRequest,
    bad_text: &str,
    problem: &str,
) -> GenerateRequest {
    // The Gemini API rejects a turn with empty text (400), which would stop the batch.
    let bad_text = if bad_text.trim().is_empty() {
        "(empty answer)"
    } else {
        bad_text
    };
    let schema = serde_json::to_string_pretty(&original.response_schema)
        .unwrap_or_else(|_| original.response_schema.to_string());
    GenerateRequest {
        turns: vec![Turn {
            role: Role::User,
            text: format!(
                "An earlier answer to an analysis request could not be used.\n\n\
                 The answer:\n{bad_text}\n\n\
                 What was wrong: {problem}\n\n\
                 The JSON schema it must match:\n{schema}\n\n\
                 Reply with only the corrected JSON: a single JSON value that matches the \
                 schema, keeping the answer's content, with nothing before or after it and no \
                 markdown code fence."
            ),
        }],
        ..original.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Thinking;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "verdict": {"type": "string", "enum": ["buy", "hold", "sell"]},
                "score": {"type": "integer", "minimum": 0, "maximum": 10},
                "risks": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["verdict", "score"],
            "additionalProperties": false
        })
    }

    #[test]
    fn valid_json_is_returned() {
        let v =
            validate_output(&schema(), r#"{"verdict":"buy","score":7,"risks":["debt"]}"#).unwrap();
        assert_eq!(v["score"], 7);
    }

    #[test]
    fn fenced_json_is_accepted() {
        for text in [
            "```json\n{\"verdict\":\"hold\",\"score\":5}\n```",
            "```\n{\"verdict\":\"hold\",\"score\":5}\n```\n",
            "  ```JSON {\"verdict\":\"hold\",\"score\":5}```",
        ] {
            let v = validate_output(&schema(), text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(v["verdict"], "hold");
        }
    }

    #[test]
    fn invalid_json_is_explained() {
        match validate_output(&schema(), "Sure! Here is the analysis: {") {
            Err(OutputProblem::NotJson { detail }) => {
                assert!(detail.contains("starts with"), "{detail}")
            }
            other => panic!("{other:?}"),
        }
        match validate_output(&schema(), r#"{"verdict":"buy","sco"#) {
            Err(OutputProblem::NotJson { detail }) => {
                assert!(detail.contains("cut off"), "{detail}")
            }
            other => panic!("{other:?}"),
        }
        match validate_output(&schema(), "  ") {
            Err(OutputProblem::NotJson { detail }) => assert_eq!(detail, "the answer is empty"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn schema_mismatch_lists_paths_and_messages() {
        let err = validate_output(
            &schema(),
            r#"{"verdict":"maybe","score":11,"extra":1,"risks":[3]}"#,
        )
        .unwrap_err();
        let OutputProblem::SchemaMismatch { problems, total } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*total, 4, "{problems:?}");
        let joined = problems.join("\n");
        assert!(joined.contains("/verdict: "), "{joined}");
        assert!(joined.contains("/score: "), "{joined}");
        assert!(joined.contains("/risks/0: "), "{joined}");
        assert!(joined.contains("(root): "), "{joined}");
        let missing = validate_output(&schema(), "{}").unwrap_err().to_string();
        assert!(
            missing.contains("\"verdict\" is a required property"),
            "{missing}"
        );
    }

    #[test]
    fn problem_lists_are_capped() {
        let many = json!({"type": "array", "items": {"type": "integer"}});
        let text = serde_json::to_string(&vec!["x"; 25]).unwrap();
        let err = validate_output(&many, &text).unwrap_err();
        let OutputProblem::SchemaMismatch { problems, total } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(problems.len(), MAX_LISTED_PROBLEMS);
        assert_eq!(*total, 25);
        assert!(err.to_string().ends_with("; and 15 more"), "{err}");
    }

    #[test]
    fn problems_become_bad_output_with_usage() {
        let usage = Usage {
            prompt_tokens: 10,
            output_tokens: 3,
            thinking_tokens: 0,
        };
        let err = validate_output(&schema(), "nope")
            .unwrap_err()
            .into_bad_output("nope", usage);
        match err {
            CallError::BadOutput {
                reason,
                raw_text,
                usage: u,
            } => {
                assert!(
                    reason.starts_with("the answer is not valid JSON"),
                    "{reason}"
                );
                assert_eq!(raw_text.as_deref(), Some("nope"));
                assert_eq!(u, usage);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn schemas_are_checked() {
        assert!(check_schema(&schema()).is_ok());
        assert!(check_schema(&json!(true)).is_ok());
        let not_object = check_schema(&json!("object")).unwrap_err();
        assert!(not_object.contains("must be an object"), "{not_object}");
        let bad_type = check_schema(&json!({"type": "float"})).unwrap_err();
        assert!(bad_type.contains("not a valid JSON Schema"), "{bad_type}");
        let bad_draft =
            check_schema(&json!({"$schema": "https://example.com/my-draft", "type": "object"}))
                .unwrap_err();
        assert!(
            bad_draft.contains("no known JSON Schema draft"),
            "{bad_draft}"
        );
        let dangling = check_schema(&json!({"$ref": "#/$defs/missing"})).unwrap_err();
        assert!(dangling.contains("missing"), "{dangling}");
        let local =
            json!({"$defs": {"v": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/v"}}});
        assert!(check_schema(&local).is_ok());
    }

    #[test]
    fn remote_refs_are_never_fetched() {
        let remote = json!({"$ref": "https://example.com/schemas/verdict.json"});
        let err = check_schema(&remote).unwrap_err();
        assert!(
            err.contains("never fetched") && err.contains("$defs"),
            "{err}"
        );
        match validate_output(&remote, "{}") {
            Err(OutputProblem::BadSchema(msg)) => assert!(msg.contains("example.com"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn repair_request_carries_schema_answer_and_problem_never_the_prompt() {
        let original = GenerateRequest {
            model: "gemini-2.5-flash".into(),
            system_instruction: Some("You are an analyst.".into()),
            turns: vec![Turn {
                role: Role::User,
                text: "Analyse AAPL 2024. <the whole filing>".into(),
            }],
            response_schema: schema(),
            temperature: Some(0.2),
            max_output_tokens: Some(8192),
            thinking: Thinking::Budget(1024),
            seed: None,
            output_field: None,
        };
        let problem =
            "the answer does not match the schema: /score: 11 is greater than the maximum of 10";
        let repaired = repair_request(&original, r#"{"verdict":"buy","score":11}"#, problem);
        assert_eq!(repaired.turns.len(), 1);
        let text = &repaired.turns[0].text;
        assert_eq!(repaired.turns[0].role, Role::User);
        assert!(!text.contains("the whole filing"), "{text}");
        assert!(text.contains(r#"{"verdict":"buy","score":11}"#), "{text}");
        assert!(text.contains(problem));
        assert!(text.contains("\"verdict\""), "the schema: {text}");
        assert!(text.contains("only the corrected JSON"));
        assert_eq!(repaired.response_schema, original.response_schema);
        assert_eq!(repaired.thinking, original.thinking);
        assert_eq!(repaired.system_instruction, original.system_instruction);

        let empty = repair_request(&original, "", "the answer is empty");
        assert!(empty.turns[0].text.contains("(empty answer)"));
    }

    #[test]
    fn answers_are_stored_in_the_schema_order() {
        let schema = serde_json::json!({
            "type": "object",
            "propertyOrdering": ["summary", "margins", "score"],
            "properties": {
                "score": {"type": "integer"},
                "margins": {"type": "object", "propertyOrdering": ["gross", "net"],
                            "properties": {"net": {"type": "number"}, "gross": {"type": "number"}}},
                "summary": {"type": "string"},
                "risks": {"type": "array", "items": {"type": "object", "propertyOrdering": ["name", "weight"],
                          "properties": {"weight": {"type": "integer"}, "name": {"type": "string"}}}}
            }
        });
        let value = validate_output(
            &schema,
            r#"{"risks":[{"weight":2,"name":"fx"}],"score":7,"margins":{"net":1,"gross":2},"summary":"s"}"#,
        )
        .unwrap();
        assert_eq!(
            value.to_string(),
            r#"{"summary":"s","margins":{"gross":2,"net":1},"score":7,"risks":[{"name":"fx","weight":2}]}"#
        );
    }
}
