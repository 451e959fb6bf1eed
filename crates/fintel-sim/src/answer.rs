//! Model output from a JSON schema: a deterministic JSON value that is valid against the
//! request's `responseJsonSchema` (JSON Schema) or `responseSchema` (Gemini's OpenAPI subset),
//! with plausible strings chosen by property name.
//!
//! Supported: `type` (single or an array, `nullable`), `properties`/`required`, `items` with
//! `minItems`/`maxItems`, `enum`, `const`, `anyOf`/`oneOf` (first alternative), `allOf`
//! (merged), local `$ref` (`#/$defs/..`, `#/definitions/..`), string `minLength`/`maxLength`
//! and `format` date/date-time, numeric `minimum`/`maximum` and their exclusive forms.
//! Not supported: `pattern`, `multipleOf`, `not`, `if`/`then` (answers may violate them).

use serde_json::{json, Map, Number, Value};

use crate::rng::DetRng;

/// Beyond this depth only required properties and minimum item counts are generated.
const MAX_DEPTH: u32 = 16;
/// A hard stop for schemas that require themselves (no finite valid value exists): answer null
/// rather than recurse until the stack overflows.
const HARD_DEPTH: u32 = 64;
/// Caps on sizes a schema may demand, so a hostile schema cannot exhaust memory.
const MAX_ITEMS: u64 = 1_000;
const MAX_STRING_CHARS: usize = 10_000;

const SENTENCES: &[&str] = &[
    "Revenue grew on higher unit volumes while gross margin narrowed slightly on input costs.",
    "Management expects continued investment in research and development to weigh on operating margin.",
    "The company relies on a small number of contract manufacturers located outside the United States.",
    "Liquidity remains strong, with cash and marketable securities well above short-term obligations.",
    "Competition intensified in the core segment, pressuring prices in the second half of the year.",
    "Foreign exchange movements reduced reported net sales by roughly two percent.",
    "The filing discloses no material weaknesses in internal control over financial reporting.",
    "Cybersecurity incidents and data-protection regulation are named among the principal risks.",
    "Share repurchases and dividends returned most of the free cash flow to shareholders.",
    "Customer concentration is moderate, with no customer above ten percent of revenue.",
];
const SHORT: &[&str] = &[
    "supply chain concentration",
    "pricing pressure",
    "regulatory change",
    "currency exposure",
    "customer demand",
    "cybersecurity",
    "capital allocation",
    "product launches",
];

/// A JSON value valid against `schema`; `seed_rng` makes it deterministic.
pub fn value_for_schema(schema: &Value, rng: &mut DetRng) -> Value {
    generate(schema, schema, rng, "", 0)
}

fn resolve<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    let mut current = schema;
    for _ in 0..8 {
        match current.get("$ref").and_then(Value::as_str) {
            Some(r) if r.starts_with('#') => match root.pointer(&r[1..]) {
                Some(target) => current = target,
                None => return current,
            },
            _ => return current,
        }
    }
    current
}

/// Merges the members of `allOf` into one schema (properties and required combined).
fn merged_all_of(schema: &Value, root: &Value) -> Value {
    let mut out = schema.as_object().cloned().unwrap_or_default();
    out.remove("allOf");
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        for part in parts {
            let part = resolve(part, root);
            if let Some(obj) = part.as_object() {
                for (k, v) in obj {
                    match (k.as_str(), out.get_mut(k)) {
                        ("properties", Some(Value::Object(existing))) => {
                            if let Some(more) = v.as_object() {
                                existing.extend(more.clone());
                            }
                        }
                        ("required", Some(Value::Array(existing))) => {
                            if let Some(more) = v.as_array() {
                                existing.extend(more.iter().cloned());
                            }
                        }
                        _ => {
                            out.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
        }
    }
    Value::Object(out)
}

fn types_of(schema: &Value) -> Vec<String> {
    let mut types: Vec<String> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.to_ascii_lowercase()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect(),
        _ => Vec::new(),
    };
    if schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        types.push("null".into());
    }
    if types.is_empty() {
        if schema.get("properties").is_some() {
            types.push("object".into());
        } else if schema.get("items").is_some() {
            types.push("array".into());
        } else {
            types.push("string".into());
        }
    }
    types
}

fn generate(schema: &Value, root: &Value, rng: &mut DetRng, hint: &str, depth: u32) -> Value {
    if depth > HARD_DEPTH {
        return Value::Null;
    }
    let schema = resolve(schema, root);
    if schema.get("allOf").is_some() {
        let merged = merged_all_of(schema, root);
        return generate(&merged, root, rng, hint, depth + 1);
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.is_empty() {
            return rng.pick(options).clone();
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alternatives) = schema.get(key).and_then(Value::as_array) {
            let first_non_null = alternatives
                .iter()
                .find(|a| types_of(resolve(a, root)) != ["null"])
                .or(alternatives.first());
            if let Some(alt) = first_non_null {
                return generate(alt, root, rng, hint, depth + 1);
            }
        }
    }
    let types = types_of(schema);
    let non_null: Vec<&String> = types.iter().filter(|t| *t != "null").collect();
    // Nullable fields are null now and then, as a model's would be.
    if non_null.is_empty() || (types.len() > non_null.len() && rng.chance(0.1)) {
        return Value::Null;
    }
    let chosen = non_null[rng.below(non_null.len() as u64) as usize].as_str();
    match chosen {
        "object" => object(schema, root, rng, depth),
        "array" => array(schema, root, rng, hint, depth),
        "integer" => integer(schema, rng, hint),
        "number" => number(schema, rng),
        "boolean" => Value::Bool(rng.chance(0.5)),
        _ => string(schema, rng, hint),
    }
}

fn object(schema: &Value, root: &Value, rng: &mut DetRng, depth: u32) -> Value {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            let is_required = required.contains(&name.as_str());
            if !is_required && (depth >= MAX_DEPTH || !rng.chance(0.8)) {
                continue;
            }
            out.insert(name.clone(), generate(sub, root, rng, name, depth + 1));
        }
    }
    Value::Object(out)
}

fn array(schema: &Value, root: &Value, rng: &mut DetRng, hint: &str, depth: u32) -> Value {
    let min = schema
        .get("minItems")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .min(MAX_ITEMS);
    let max = schema
        .get("maxItems")
        .and_then(Value::as_u64)
        .unwrap_or(min + 3)
        .max(min);
    let n = if depth >= MAX_DEPTH {
        min
    } else {
        (min + rng.below(3)).min(max).min(MAX_ITEMS)
    };
    let unique = schema.get("uniqueItems").and_then(Value::as_bool) == Some(true);
    let item_schema = schema
        .get("items")
        .cloned()
        .unwrap_or(json!({"type": "string"}));
    let mut items: Vec<Value> = Vec::new();
    let mut tries = 0;
    while (items.len() as u64) < n && tries < n * 10 + 10 {
        tries += 1;
        let mut v = generate(&item_schema, root, rng, hint, depth + 1);
        if unique && items.contains(&v) {
            if let Value::String(s) = &mut v {
                s.push_str(&format!(" ({})", items.len() + 1));
            }
            if items.contains(&v) {
                continue;
            }
        }
        items.push(v);
    }
    Value::Array(items)
}

fn bound(schema: &Value, inclusive: &str, exclusive: &str) -> Option<(f64, bool)> {
    if let Some(v) = schema.get(exclusive).and_then(Value::as_f64) {
        return Some((v, true));
    }
    schema
        .get(inclusive)
        .and_then(Value::as_f64)
        .map(|v| (v, false))
}

fn integer(schema: &Value, rng: &mut DetRng, hint: &str) -> Value {
    let hint = hint.to_ascii_lowercase();
    let (default_lo, default_hi) = if hint.contains("year") {
        (2015, 2025)
    } else if hint.contains("score") || hint.contains("rating") {
        (1, 5)
    } else {
        (0, 100)
    };
    let lo_given = match bound(schema, "minimum", "exclusiveMinimum") {
        Some((v, true)) => Some(v.floor() as i64 + 1),
        Some((v, false)) => Some(v.ceil() as i64),
        None => None,
    };
    let hi_given = match bound(schema, "maximum", "exclusiveMaximum") {
        Some((v, true)) => Some(v.ceil() as i64 - 1),
        Some((v, false)) => Some(v.floor() as i64),
        None => None,
    };
    let lo = lo_given.unwrap_or(match hi_given {
        Some(h) => default_lo.min(h),
        None => default_lo,
    });
    let hi = hi_given.unwrap_or(default_hi.max(lo));
    json!(rng.range_inclusive(lo, hi.max(lo)))
}

fn number(schema: &Value, rng: &mut DetRng) -> Value {
    let lo = bound(schema, "minimum", "exclusiveMinimum");
    let hi = bound(schema, "maximum", "exclusiveMaximum");
    let lo_v = lo.map(|b| b.0).unwrap_or(0.0);
    let hi_v = hi.map(|b| b.0).unwrap_or(lo_v.max(0.0) + 1_000.0);
    let mut v = lo_v + (hi_v - lo_v) * rng.unit();
    v = (v * 100.0).round() / 100.0;
    let span = (hi_v - lo_v).abs();
    if let Some((b, excl)) = lo {
        if v < b || (excl && v <= b) {
            v = b + span / 2.0;
        }
    }
    if let Some((b, excl)) = hi {
        if v > b || (excl && v >= b) {
            v = lo_v + span / 2.0;
        }
    }
    Number::from_f64(v).map(Value::Number).unwrap_or(json!(0))
}

fn string(schema: &Value, rng: &mut DetRng, hint: &str) -> Value {
    let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
    let h = hint.to_ascii_lowercase();
    let mut s: String = match format {
        "date" => format!(
            "20{:02}-{:02}-{:02}",
            15 + rng.below(11),
            1 + rng.below(12),
            1 + rng.below(28)
        ),
        "date-time" => format!(
            "20{:02}-{:02}-{:02}T00:00:00Z",
            15 + rng.below(11),
            1 + rng.below(12),
            1 + rng.below(28)
        ),
        _ if h.contains("ticker") || h.contains("symbol") => "SABC".into(),
        _ if h.contains("currency") => "USD".into(),
        _ if h.contains("name") || h.contains("company") => "Harbor Semiconductor Inc.".into(),
        _ if h.contains("summary")
            || h.contains("description")
            || h.contains("rationale")
            || h.contains("explanation")
            || h.contains("evidence")
            || h.contains("quote")
            || h.contains("reason")
            || h.contains("text") =>
        {
            let a = rng.pick(SENTENCES);
            let b = rng.pick(SENTENCES);
            format!("{a} {b}")
        }
        _ => rng.pick(SHORT).to_string(),
    };
    let min = (schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize)
        .min(MAX_STRING_CHARS);
    let max = schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .map(|m| m as usize);
    let mut chars = s.chars().count();
    while chars < min {
        let more = rng.pick::<&str>(SENTENCES);
        s.push(' ');
        s.push_str(more);
        chars += 1 + more.chars().count();
    }
    if let Some(max) = max {
        if chars > max {
            s = s
                .chars()
                .take(max)
                .collect::<String>()
                .trim_end()
                .to_string();
            chars = s.chars().count();
            while chars < min {
                s.push('.');
                chars += 1;
            }
        }
    }
    Value::String(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_the_basic_keywords() {
        let schema = json!({
            "type": "object",
            "required": ["a", "b", "c", "d", "e", "f"],
            "properties": {
                "a": {"type": "string", "enum": ["x", "y"]},
                "b": {"type": "integer", "minimum": 10, "maximum": 12},
                "c": {"type": "array", "minItems": 3, "maxItems": 3, "items": {"type": "boolean"}},
                "d": {"type": ["string", "null"], "maxLength": 5},
                "e": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "f": {"$ref": "#/$defs/thing"}
            },
            "$defs": {"thing": {"type": "object", "required": ["g"], "properties": {"g": {"const": 7}}}}
        });
        for i in 0..50 {
            let v = value_for_schema(&schema, &mut DetRng::new(i, &[]));
            assert!(["x", "y"].contains(&v["a"].as_str().unwrap()));
            assert!((10..=12).contains(&v["b"].as_i64().unwrap()));
            assert_eq!(v["c"].as_array().unwrap().len(), 3);
            assert!(v["d"].is_null() || v["d"].as_str().unwrap().chars().count() <= 5);
            let e = v["e"].as_f64().unwrap();
            assert!(e > 0.0 && e <= 1.0, "{e}");
            assert_eq!(v["f"]["g"], 7);
        }
    }

    #[test]
    fn hostile_schemas_terminate() {
        let cycle = json!({"$defs": {"n": {"type": "object", "properties": {"next": {"$ref": "#/$defs/n"}}, "required": ["next"]}}, "$ref": "#/$defs/n"});
        let v = value_for_schema(&cycle, &mut DetRng::new(1, &[]));
        assert!(v.is_object());
        let huge = json!({"type": "array", "minItems": 1_000_000_000u64, "items": {"type": "string", "minLength": 1_000_000_000u64}});
        let v = value_for_schema(&huge, &mut DetRng::new(1, &[]));
        assert_eq!(v.as_array().unwrap().len(), 1_000);
        let self_ref = json!({"$ref": "#"});
        assert!(value_for_schema(&self_ref, &mut DetRng::new(1, &[])).is_string());
    }

    #[test]
    fn openapi_style_schemas_with_uppercase_types_work() {
        let schema = json!({"type": "OBJECT", "properties": {"n": {"type": "INTEGER", "nullable": true}}, "required": ["n"]});
        let v = value_for_schema(&schema, &mut DetRng::new(1, &[]));
        assert!(v["n"].is_i64() || v["n"].is_null());
    }
}
