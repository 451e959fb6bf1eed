//! The fields a screen can sort and filter on, read from an analysis type's JSON schema.
//!
//! A field is a dotted path from the top of a result to a value (`score`,
//! `balance_sheet.trend`, `scores.strategic_anomaly`). Objects are walked into; arrays are
//! fields of their own (searchable with `~`, never sorted). An enum's values rank in the order
//! the schema lists them, the first the highest: the built-in schemas list the best value first
//! (`HIGH, MEDIUM, LOW`; `strong_buy, buy, hold, sell, strong_sell`), so "at least MEDIUM" is
//! `>= MEDIUM` and the short leg of `multi` is `verdict <= sell`.

use std::collections::BTreeMap;

use serde_json::Value;

/// What kind of value a field holds, as its schema says.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    /// `number` or `integer`.
    Number,
    /// A string with an `enum`: its values in schema order, the first ranking highest.
    Enum(Vec<String>),
    /// A free string.
    Text,
    Boolean,
    /// An array (of anything): searchable with `~`, not sortable.
    List,
}

impl FieldKind {
    /// A word for messages.
    pub fn describe(&self) -> String {
        match self {
            FieldKind::Number => "number".into(),
            FieldKind::Enum(values) => format!("one of {}", values.join(", ")),
            FieldKind::Text => "text".into(),
            FieldKind::Boolean => "true or false".into(),
            FieldKind::List => "list".into(),
        }
    }
}

/// The fields of an analysis type, by dotted path, from one or more schemas (the current
/// version first, then older pinned versions: a path keeps the kind of the first schema that
/// has it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldCatalog {
    fields: BTreeMap<String, FieldKind>,
    /// Paths in the order of the first schema that listed them, for messages and forms.
    order: Vec<String>,
    /// Enum values that only later-added (older) schemas list, by path: known, but outside the
    /// kept kind's order.
    earlier: BTreeMap<String, Vec<String>>,
}

impl FieldCatalog {
    /// The fields of one result schema.
    pub fn from_schema(schema: &Value) -> FieldCatalog {
        let mut catalog = FieldCatalog::default();
        catalog.add_schema(schema);
        catalog
    }

    /// Adds the fields of another schema; paths already known keep their kind.
    pub fn add_schema(&mut self, schema: &Value) {
        walk(schema, "", self);
    }

    fn insert(&mut self, path: String, kind: FieldKind) {
        match (self.fields.get(&path), kind) {
            (None, kind) => {
                self.order.push(path.clone());
                self.fields.insert(path, kind);
            }
            (Some(FieldKind::Enum(kept)), FieldKind::Enum(values)) => {
                let extra: Vec<String> = values
                    .into_iter()
                    .filter(|v| !kept.iter().any(|k| k.eq_ignore_ascii_case(v)))
                    .collect();
                let earlier = self.earlier.entry(path).or_default();
                for value in extra {
                    if !earlier.contains(&value) {
                        earlier.push(value);
                    }
                }
            }
            _ => {}
        }
    }

    /// Values of the enum at `path` that only an older version of the type lists.
    pub fn earlier_values(&self, path: &str) -> &[String] {
        self.earlier.get(path).map_or(&[], Vec::as_slice)
    }

    /// The kind of the field at `path`, if the type has it.
    pub fn get(&self, path: &str) -> Option<&FieldKind> {
        self.fields.get(path)
    }

    /// Every field path, in schema order.
    pub fn paths(&self) -> &[String] {
        &self.order
    }

    /// The paths a screen can sort by (numbers, enums, text, booleans), in schema order.
    pub fn sortable_paths(&self) -> Vec<&str> {
        self.order
            .iter()
            .filter(|p| !matches!(self.fields[p.as_str()], FieldKind::List))
            .map(String::as_str)
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

fn walk(schema: &Value, prefix: &str, catalog: &mut FieldCatalog) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    // Follow the schema's own property order where it gives one (serde_json sorts map keys).
    let mut names: Vec<&str> = schema
        .get("propertyOrdering")
        .and_then(Value::as_array)
        .map(|order| order.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for name in properties.keys() {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    for name in names {
        let Some(child) = properties.get(name) else {
            continue;
        };
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        let types = node_types(child);
        if types.iter().any(|t| t == "object") {
            walk(child, &path, catalog);
            continue;
        }
        let kind = if types.iter().any(|t| t == "array") {
            FieldKind::List
        } else if types.iter().any(|t| t == "number" || t == "integer") {
            FieldKind::Number
        } else if types.iter().any(|t| t == "boolean") {
            FieldKind::Boolean
        } else if let Some(values) = child.get("enum").and_then(Value::as_array) {
            FieldKind::Enum(
                values
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
            )
        } else {
            FieldKind::Text
        };
        catalog.insert(path, kind);
    }
}

fn node_types(schema: &Value) -> Vec<String> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.to_ascii_lowercase()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect(),
        _ => Vec::new(),
    }
}

/// The value at a dotted path of a result, if present.
pub fn value_at<'a>(result: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(result, |node, key| node.get(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_objects_become_dotted_paths_with_their_kinds() {
        let schema = json!({
            "type": "object",
            "properties": {
                "score": {"type": "integer"},
                "verdict": {"type": "string", "enum": ["buy", "hold", "pass"]},
                "scores": {"type": "object", "properties": {
                    "b_second": {"type": ["number", "null"]},
                    "a_first": {"type": "integer"}
                }, "propertyOrdering": ["b_second", "a_first"]},
                "notes": {"type": "array", "items": {"type": "string"}},
                "summary": {"type": "string"},
                "flag": {"type": "boolean"}
            },
            "propertyOrdering": ["score", "verdict", "scores", "notes", "summary", "flag"]
        });
        let catalog = FieldCatalog::from_schema(&schema);
        assert_eq!(
            catalog.paths(),
            &[
                "score",
                "verdict",
                "scores.b_second",
                "scores.a_first",
                "notes",
                "summary",
                "flag"
            ]
        );
        assert_eq!(catalog.get("score"), Some(&FieldKind::Number));
        assert_eq!(
            catalog.get("verdict"),
            Some(&FieldKind::Enum(vec![
                "buy".into(),
                "hold".into(),
                "pass".into()
            ]))
        );
        assert_eq!(catalog.get("scores.b_second"), Some(&FieldKind::Number));
        assert_eq!(catalog.get("notes"), Some(&FieldKind::List));
        assert_eq!(catalog.get("scores"), None);
        assert!(!catalog.sortable_paths().contains(&"notes"));
    }

    #[test]
    fn a_later_schema_adds_fields_but_never_changes_a_known_kind() {
        let mut catalog = FieldCatalog::from_schema(&json!({
            "type": "object", "properties": {"score": {"type": "integer"}}
        }));
        catalog.add_schema(&json!({
            "type": "object",
            "properties": {"score": {"type": "string"}, "old_field": {"type": "number"}}
        }));
        assert_eq!(catalog.get("score"), Some(&FieldKind::Number));
        assert_eq!(catalog.get("old_field"), Some(&FieldKind::Number));
    }

    #[test]
    fn values_are_found_by_path() {
        let v = json!({"a": {"b": 3}, "c": null});
        assert_eq!(value_at(&v, "a.b"), Some(&json!(3)));
        assert_eq!(value_at(&v, "c"), Some(&Value::Null));
        assert_eq!(value_at(&v, "a.x"), None);
    }
}
