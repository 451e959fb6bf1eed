//! Output schemas: the subset of JSON Schema a workflow may use, and local validation.
//!
//! One schema serves twice: it is sent to the model (Gemini `responseJsonSchema`, or an
//! OpenAI-compatible `response_format`) and the reply is validated against it locally before
//! it is stored. So a schema must be something Gemini accepts *and* something the local
//! validator (the `jsonschema` crate, draft 2020-12, no remote `$ref`) compiles. The allowed
//! keywords are [`ALLOWED_KEYWORDS`]; rules beyond the keyword list are in [`check_supported`].

use serde_json::{Map, Value};

/// The JSON Schema keywords a workflow schema may use: the part of JSON Schema that Gemini's
/// `responseJsonSchema` supports and that keeps replies checkable.
pub const ALLOWED_KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "items",
    "enum",
    "description",
    "title",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "format",
    "propertyOrdering",
    "additionalProperties",
];

/// The values `type` may take (alone, or as a two-element list with `"null"`).
const TYPES: &[&str] = &[
    "object", "array", "string", "number", "integer", "boolean", "null",
];

/// A rule broken by a schema, with the JSON pointer of the node and the keyword involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsupported {
    pub(crate) pointer: String,
    /// The keyword (or property name) to look for when locating the line.
    pub(crate) keyword: Option<String>,
    pub(crate) message: String,
}

/// Checks that a schema keeps to [`ALLOWED_KEYWORDS`] and the rules that make replies
/// checkable: a root object, a `type` on every node, `required` naming declared properties,
/// `properties` only on objects, `items` only on arrays, enums of strings or numbers.
pub(crate) fn check_supported(schema: &Value) -> Result<(), Unsupported> {
    let root_types = match schema {
        Value::Object(node) => types_of(node, "").map_err(|mut e| {
            e.pointer = "/".to_string();
            e
        })?,
        _ => {
            return Err(Unsupported {
                pointer: "/".to_string(),
                keyword: None,
                message: "a schema must be a JSON object".to_string(),
            })
        }
    };
    if root_types != ["object"] {
        return Err(Unsupported {
            pointer: "/".to_string(),
            keyword: Some("type".to_string()),
            message: "the top of a schema must be `\"type\": \"object\"` (results are stored and exported as objects)".to_string(),
        });
    }
    check_node(schema, "")
}

fn unsupported(pointer: &str, keyword: Option<&str>, message: String) -> Unsupported {
    Unsupported {
        pointer: if pointer.is_empty() {
            "/".to_string()
        } else {
            pointer.to_string()
        },
        keyword: keyword.map(str::to_string),
        message,
    }
}

/// The declared types of a node (`type` as a string or a nullable pair).
fn types_of(node: &Map<String, Value>, pointer: &str) -> Result<Vec<String>, Unsupported> {
    let Some(declared) = node.get("type") else {
        return Err(unsupported(
            pointer,
            None,
            "every schema node needs a `type` (one of object, array, string, number, integer, boolean, or a pair such as [\"string\", \"null\"])".to_string(),
        ));
    };
    let names: Vec<String> = match declared {
        Value::String(name) => vec![name.clone()],
        Value::Array(items) => {
            let names: Option<Vec<String>> = items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect();
            match names {
                Some(names)
                    if names.len() == 2
                        && names.iter().filter(|n| *n == "null").count() == 1 =>
                {
                    names
                }
                _ => {
                    return Err(unsupported(
                        pointer,
                        Some("type"),
                        "a list of types must be a type and \"null\", such as [\"number\", \"null\"] (Gemini supports no other unions)".to_string(),
                    ))
                }
            }
        }
        _ => {
            return Err(unsupported(
                pointer,
                Some("type"),
                "`type` must be a string or a pair such as [\"string\", \"null\"]".to_string(),
            ))
        }
    };
    for name in &names {
        if !TYPES.contains(&name.as_str()) {
            return Err(unsupported(
                pointer,
                Some(name),
                format!("unknown type \"{name}\"; use one of {}", TYPES.join(", ")),
            ));
        }
    }
    Ok(names)
}

fn check_node(schema: &Value, pointer: &str) -> Result<(), Unsupported> {
    let Value::Object(node) = schema else {
        return Err(unsupported(
            pointer,
            None,
            "a schema node must be a JSON object".to_string(),
        ));
    };
    for keyword in node.keys() {
        if !ALLOWED_KEYWORDS.contains(&keyword.as_str()) {
            return Err(unsupported(
                pointer,
                Some(keyword),
                format!(
                    "keyword `{keyword}` is not supported (Gemini's responseJsonSchema and the local validator share only: {})",
                    ALLOWED_KEYWORDS.join(", ")
                ),
            ));
        }
    }
    let types = types_of(node, pointer)?;
    let has = |name: &str| types.iter().any(|t| t == name);

    for text_keyword in ["description", "title", "format"] {
        if let Some(value) = node.get(text_keyword) {
            if !value.is_string() {
                return Err(unsupported(
                    pointer,
                    Some(text_keyword),
                    format!("`{text_keyword}` must be a string"),
                ));
            }
        }
    }

    let properties = match node.get("properties") {
        None => None,
        Some(_) if !has("object") => {
            return Err(unsupported(
                pointer,
                Some("properties"),
                "`properties` is only allowed on a node of type object".to_string(),
            ))
        }
        Some(Value::Object(properties)) => Some(properties),
        Some(_) => {
            return Err(unsupported(
                pointer,
                Some("properties"),
                "`properties` must be an object mapping names to schemas".to_string(),
            ))
        }
    };
    if has("object") && properties.is_none_or(Map::is_empty) {
        return Err(unsupported(
            pointer,
            Some("type"),
            "an object node needs non-empty `properties` (Gemini cannot fill a free-form object)"
                .to_string(),
        ));
    }
    let declared = |name: &str| properties.is_some_and(|p| p.contains_key(name));

    for list_keyword in ["required", "propertyOrdering"] {
        let Some(value) = node.get(list_keyword) else {
            continue;
        };
        if !has("object") {
            return Err(unsupported(
                pointer,
                Some(list_keyword),
                format!("`{list_keyword}` is only allowed on a node of type object"),
            ));
        }
        let Some(items) = value.as_array() else {
            return Err(unsupported(
                pointer,
                Some(list_keyword),
                format!("`{list_keyword}` must be a list of property names"),
            ));
        };
        let mut seen = std::collections::BTreeSet::new();
        for item in items {
            let Some(name) = item.as_str() else {
                return Err(unsupported(
                    pointer,
                    Some(list_keyword),
                    format!("`{list_keyword}` must be a list of property names"),
                ));
            };
            if !declared(name) {
                return Err(unsupported(
                    pointer,
                    Some(name),
                    format!("`{list_keyword}` names \"{name}\", which is not in `properties`"),
                ));
            }
            if !seen.insert(name) {
                return Err(unsupported(
                    pointer,
                    Some(name),
                    format!("`{list_keyword}` names \"{name}\" twice"),
                ));
            }
        }
    }

    match node.get("additionalProperties") {
        None | Some(Value::Bool(_)) => {}
        Some(Value::Object(_)) if has("object") => {
            let child = format!("{pointer}/additionalProperties");
            check_node(&node["additionalProperties"], &child)?;
        }
        Some(_) => {
            return Err(unsupported(
                pointer,
                Some("additionalProperties"),
                "`additionalProperties` must be true, false or a schema, on an object node"
                    .to_string(),
            ))
        }
    }

    match node.get("items") {
        None if has("array") => {
            return Err(unsupported(
                pointer,
                Some("type"),
                "an array node needs `items` (the schema of its elements)".to_string(),
            ))
        }
        None => {}
        Some(_) if !has("array") => {
            return Err(unsupported(
                pointer,
                Some("items"),
                "`items` is only allowed on a node of type array".to_string(),
            ))
        }
        Some(items @ Value::Object(_)) => check_node(items, &format!("{pointer}/items"))?,
        Some(_) => {
            return Err(unsupported(
                pointer,
                Some("items"),
                "`items` must be one schema (lists of schemas, `prefixItems`, are not supported)"
                    .to_string(),
            ))
        }
    }

    for count_keyword in ["minItems", "maxItems"] {
        if let Some(value) = node.get(count_keyword) {
            if !has("array") || value.as_u64().is_none() {
                return Err(unsupported(
                    pointer,
                    Some(count_keyword),
                    format!("`{count_keyword}` must be a non-negative integer on an array node"),
                ));
            }
        }
    }
    if let (Some(min), Some(max)) = (
        node.get("minItems").and_then(Value::as_u64),
        node.get("maxItems").and_then(Value::as_u64),
    ) {
        if min > max {
            return Err(unsupported(
                pointer,
                Some("minItems"),
                format!("minItems ({min}) is greater than maxItems ({max})"),
            ));
        }
    }

    for bound in ["minimum", "maximum"] {
        if let Some(value) = node.get(bound) {
            if !(has("number") || has("integer")) || !value.is_number() {
                return Err(unsupported(
                    pointer,
                    Some(bound),
                    format!("`{bound}` must be a number on a number or integer node"),
                ));
            }
        }
    }
    if let (Some(min), Some(max)) = (
        node.get("minimum").and_then(Value::as_f64),
        node.get("maximum").and_then(Value::as_f64),
    ) {
        if min > max {
            return Err(unsupported(
                pointer,
                Some("minimum"),
                format!("minimum ({min}) is greater than maximum ({max})"),
            ));
        }
    }

    if let Some(value) = node.get("enum") {
        let values = value.as_array().filter(|values| !values.is_empty());
        let Some(values) = values else {
            return Err(unsupported(
                pointer,
                Some("enum"),
                "`enum` must be a non-empty list".to_string(),
            ));
        };
        let fits = |item: &Value| match item {
            Value::String(_) => has("string"),
            Value::Number(n) => has("number") || (has("integer") && (n.is_i64() || n.is_u64())),
            _ => false,
        };
        if let Some(bad) = values.iter().find(|item| !fits(item)) {
            return Err(unsupported(
                pointer,
                Some("enum"),
                format!(
                    "`enum` value {bad} does not fit the node's type (Gemini supports enums of strings or numbers only; leave null out of enums)"
                ),
            ));
        }
    }

    if let Some(properties) = properties {
        for (name, child) in properties {
            check_node(
                child,
                &format!("{pointer}/properties/{}", escape_pointer(name)),
            )
            .map_err(|mut error| {
                if error.keyword.is_none() {
                    error.keyword = Some(name.clone());
                }
                error
            })?;
        }
    }
    Ok(())
}

fn escape_pointer(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Compiles a schema with the local validator (draft 2020-12, formats not asserted, no remote
/// references: the crate is built without its HTTP and file resolvers).
pub(crate) fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(schema)
        .map_err(|error| {
            let path = error.instance_path.to_string();
            if path.is_empty() {
                error.to_string()
            } else {
                format!("{error} (at {path})")
            }
        })
}

/// A copy of `value` whose objects have their keys in sorted order, whatever map type
/// `serde_json` was built with, so that serialising it is deterministic.
pub(crate) fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for key in keys {
                out.insert(key.clone(), sorted(&map[key]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// A copy of `schema` without `propertyOrdering` keywords. Only schema nodes are touched: a
/// property that happens to be called `propertyOrdering` is kept.
pub(crate) fn without_property_ordering(schema: &Value) -> Value {
    let Value::Object(node) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in node {
        let converted = match (key.as_str(), value) {
            ("propertyOrdering", _) => continue,
            ("properties", Value::Object(properties)) => Value::Object(
                properties
                    .iter()
                    .map(|(name, child)| (name.clone(), without_property_ordering(child)))
                    .collect(),
            ),
            ("items" | "additionalProperties", child) => without_property_ordering(child),
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    Value::Object(out)
}

/// Validates model output against a step's schema. Built once per step and reused: compiling
/// costs far more than validating.
#[derive(Debug)]
pub struct OutputValidator {
    validator: jsonschema::Validator,
}

/// Why a reply does not match its schema: one line per mismatch (at most
/// [`OutputMismatch::MAX_LISTED`]), each with the JSON pointer of the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the reply does not match the schema: {}", mismatches.join("; "))]
pub struct OutputMismatch {
    pub mismatches: Vec<String>,
}

impl OutputMismatch {
    /// How many mismatches are listed at most (a badly wrong reply can have hundreds).
    pub const MAX_LISTED: usize = 10;
}

impl OutputValidator {
    /// Compiles `schema` for validation.
    pub fn new(schema: &Value) -> Result<Self, crate::WorkflowError> {
        compile(schema)
            .map(|validator| OutputValidator { validator })
            .map_err(|message| crate::WorkflowError::OutputSchema { message })
    }

    /// Checks one reply.
    pub fn validate(&self, output: &Value) -> Result<(), OutputMismatch> {
        let mismatches: Vec<String> = self
            .validator
            .iter_errors(output)
            .take(OutputMismatch::MAX_LISTED)
            .map(|error| {
                let path = error.instance_path.to_string();
                let at = if path.is_empty() {
                    "/".to_string()
                } else {
                    path
                };
                format!("at {at}: {error}")
            })
            .collect();
        if mismatches.is_empty() {
            Ok(())
        } else {
            Err(OutputMismatch { mismatches })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(schema: Value) {
        check_supported(&schema).unwrap();
        compile(&schema).unwrap();
    }

    fn rejected(schema: Value, expected: &str) -> Unsupported {
        let error = check_supported(&schema).unwrap_err();
        assert!(
            error.message.contains(expected),
            "{:?} should mention {expected:?}",
            error
        );
        error
    }

    fn object(properties: Value) -> Value {
        json!({"type": "object", "properties": properties})
    }

    #[test]
    fn accepts_the_documented_subset() {
        ok(json!({
            "type": "object",
            "title": "t",
            "description": "d",
            "additionalProperties": false,
            "propertyOrdering": ["a", "b", "c", "d"],
            "required": ["a", "b"],
            "properties": {
                "a": {"type": ["string", "null"], "format": "date"},
                "b": {"type": "integer", "minimum": 0, "maximum": 10},
                "c": {"type": "array", "minItems": 1, "maxItems": 3,
                      "items": {"type": "string", "enum": ["x", "y"]}},
                "d": {"type": "number", "enum": [1, 2.5]}
            }
        }));
    }

    #[test]
    fn rejects_keywords_gemini_does_not_support() {
        for keyword in [
            "pattern",
            "anyOf",
            "$ref",
            "minLength",
            "const",
            "default",
            "$schema",
        ] {
            let schema = object(json!({"a": {"type": "string", keyword: "x"}}));
            let error = rejected(schema, "not supported");
            assert_eq!(error.pointer, "/properties/a");
            assert_eq!(error.keyword.as_deref(), Some(keyword));
        }
    }

    #[test]
    fn rejects_structural_mistakes() {
        rejected(
            json!({"type": "array", "items": {"type": "string"}}),
            "top of a schema",
        );
        rejected(json!([1]), "JSON object");
        rejected(object(json!({"a": {"description": "x"}})), "needs a `type`");
        rejected(object(json!({"a": {"type": "text"}})), "unknown type");
        rejected(
            object(json!({"a": {"type": ["string", "number"]}})),
            "a type and \"null\"",
        );
        rejected(
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]}),
            "not in `properties`",
        );
        rejected(
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "a"]}),
            "twice",
        );
        rejected(object(json!({"a": {"type": "array"}})), "needs `items`");
        rejected(
            object(json!({"a": {"type": "array", "items": [{"type": "string"}]}})),
            "must be one schema",
        );
        rejected(
            object(json!({"a": {"type": "string", "items": {"type": "string"}}})),
            "only allowed",
        );
        rejected(
            object(json!({"a": {"type": "object"}})),
            "non-empty `properties`",
        );
        rejected(
            object(json!({"a": {"type": "string", "minimum": 1}})),
            "`minimum`",
        );
        rejected(
            object(json!({"a": {"type": "integer", "minimum": 5, "maximum": 1}})),
            "greater than maximum",
        );
        rejected(
            object(
                json!({"a": {"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 1}}),
            ),
            "greater than maxItems",
        );
        rejected(
            object(json!({"a": {"type": "string", "enum": []}})),
            "non-empty",
        );
        rejected(
            object(json!({"a": {"type": ["string", "null"], "enum": ["x", null]}})),
            "leave null out",
        );
        rejected(
            object(json!({"a": {"type": "string", "description": 3}})),
            "must be a string",
        );
    }

    #[test]
    fn output_validator_lists_mismatches_with_paths() {
        let schema = json!({
            "type": "object",
            "required": ["score"],
            "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 10}}
        });
        let validator = OutputValidator::new(&schema).unwrap();
        validator.validate(&json!({"score": 7})).unwrap();
        let error = validator.validate(&json!({"score": 11})).unwrap_err();
        assert!(error.mismatches[0].starts_with("at /score:"), "{error}");
        assert!(validator.validate(&json!({})).is_err());
    }

    #[test]
    fn property_ordering_is_added_in_written_order_and_can_be_removed() {
        let text = r#"{"type": "object", "properties": {
            "zeta": {"type": "string"},
            "propertyOrdering": {"type": "object", "properties": {"b": {"type": "string"}, "a": {"type": "string"}}},
            "alpha": {"type": "array", "items": {"type": "object", "properties": {"y": {"type": "string"}, "x": {"type": "string"}}}}
        }}"#;
        let ordered: Ordered = serde_json::from_str(text).unwrap();
        let schema = ordered.to_schema_value();
        assert_eq!(
            schema["propertyOrdering"],
            json!(["zeta", "propertyOrdering", "alpha"])
        );
        assert_eq!(
            schema["properties"]["propertyOrdering"]["propertyOrdering"],
            json!(["b", "a"])
        );
        assert_eq!(
            schema["properties"]["alpha"]["items"]["propertyOrdering"],
            json!(["y", "x"])
        );
        check_supported(&schema).unwrap();

        let stripped = without_property_ordering(&schema);
        assert!(stripped.get("propertyOrdering").is_none());
        assert!(stripped["properties"]["propertyOrdering"]
            .get("propertyOrdering")
            .is_none());
        assert!(stripped["properties"].get("propertyOrdering").is_some());
        assert!(stripped["properties"]["alpha"]["items"]
            .get("propertyOrdering")
            .is_none());
        assert_eq!(
            ordered.to_value()["properties"].as_object().unwrap().len(),
            3
        );
    }

    #[test]
    fn an_explicit_property_ordering_is_kept() {
        let text = r#"{"type": "object", "propertyOrdering": ["a", "b"], "properties": {"b": {"type": "string"}, "a": {"type": "string"}}}"#;
        let ordered: Ordered = serde_json::from_str(text).unwrap();
        assert_eq!(
            ordered.to_schema_value()["propertyOrdering"],
            json!(["a", "b"])
        );
    }

    #[test]
    fn sorted_orders_keys_recursively() {
        let value = json!({"b": 1, "a": {"d": [{"z": 1, "y": 2}], "c": 2}});
        assert_eq!(
            serde_json::to_string(&sorted(&value)).unwrap(),
            r#"{"a":{"c":2,"d":[{"y":2,"z":1}]},"b":1}"#
        );
    }
}

/// A JSON (or TOML) value that remembers the order in which object keys were written, whatever
/// map type `serde_json` was built with. Used to read a schema's `properties` in the author's
/// order, which becomes its `propertyOrdering`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ordered {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

/// The key under which the `toml` crate hands a date to a deserializer.
const TOML_DATETIME_KEY: &str = "$__toml_private_datetime";

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;

        impl<'de> serde::de::Visitor<'de> for OrderedVisitor {
            type Value = Ordered;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, value: bool) -> Result<Ordered, E> {
                Ok(Ordered::Bool(value))
            }
            fn visit_i64<E>(self, value: i64) -> Result<Ordered, E> {
                Ok(Ordered::Number(value.into()))
            }
            fn visit_u64<E>(self, value: u64) -> Result<Ordered, E> {
                Ok(Ordered::Number(value.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Ordered, E> {
                serde_json::Number::from_f64(value)
                    .map(Ordered::Number)
                    .ok_or_else(|| E::custom(format!("the number {value} has no JSON equivalent")))
            }
            fn visit_str<E>(self, value: &str) -> Result<Ordered, E> {
                Ok(Ordered::String(value.to_string()))
            }
            fn visit_string<E>(self, value: String) -> Result<Ordered, E> {
                Ok(Ordered::String(value))
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Null)
            }
            fn visit_none<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Null)
            }
            fn visit_some<D: serde::Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<Ordered, D::Error> {
                serde::Deserialize::deserialize(deserializer)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Ordered, A::Error> {
                let mut entries: Vec<(String, Ordered)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == TOML_DATETIME_KEY {
                        return Err(serde::de::Error::custom(
                            "a TOML date has no JSON equivalent; quote it as a string",
                        ));
                    }
                    let value: Ordered = map.next_value()?;
                    // A repeated key replaces the earlier one, as in serde_json.
                    entries.retain(|(existing, _)| *existing != key);
                    entries.push((key, value));
                }
                Ok(Ordered::Object(entries))
            }
        }

        deserializer.deserialize_any(OrderedVisitor)
    }
}

impl Ordered {
    /// Plain JSON, key order left to `serde_json`.
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Ordered::Null => Value::Null,
            Ordered::Bool(flag) => Value::Bool(*flag),
            Ordered::Number(number) => Value::Number(number.clone()),
            Ordered::String(text) => Value::String(text.clone()),
            Ordered::Array(items) => Value::Array(items.iter().map(Ordered::to_value).collect()),
            Ordered::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| (key.clone(), value.to_value()))
                    .collect(),
            ),
        }
    }

    /// The schema as JSON, with `propertyOrdering` added to every object node that declares
    /// `properties` without one: the properties in the order the author wrote them. Without
    /// it the order would be lost (JSON maps are unordered) and Gemini would write properties
    /// in an order of its choosing, reasoning after verdicts.
    pub(crate) fn to_schema_value(&self) -> Value {
        let Ordered::Object(entries) = self else {
            return self.to_value();
        };
        let mut node = Map::new();
        for (key, value) in entries {
            let converted = match (key.as_str(), value) {
                ("properties", Ordered::Object(properties)) => Value::Object(
                    properties
                        .iter()
                        .map(|(name, child)| (name.clone(), child.to_schema_value()))
                        .collect(),
                ),
                ("items" | "additionalProperties", child) => child.to_schema_value(),
                _ => value.to_value(),
            };
            node.insert(key.clone(), converted);
        }
        let declared_order = entries
            .iter()
            .find_map(|(key, value)| match (key.as_str(), value) {
                ("properties", Ordered::Object(properties)) if !properties.is_empty() => Some(
                    properties
                        .iter()
                        .map(|(name, _)| Value::String(name.clone()))
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            });
        if let Some(order) = declared_order {
            node.entry("propertyOrdering")
                .or_insert_with(|| Value::Array(order));
        }
        Value::Object(node)
    }
}
