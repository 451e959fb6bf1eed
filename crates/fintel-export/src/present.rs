//! How a stored result reads: the order of its fields and how its values are written.
//!
//! Order: every object's fields follow the schema of the step that produced the result (its
//! `propertyOrdering`, which loading a workflow adds in the order the file wrote the
//! properties); fields the schema does not name keep their stored order after them. At the top
//! level the summary comes first, then the verdict and score with their rationale, so a result
//! opens with its conclusion.
//!
//! Values, from the schema's descriptions and names (the built-in types say "millions" for
//! money, "percent" for percentages, and `*_pct` names):
//! - money in millions with the result's currency: `USD 910.9 M` (`reporting_currency` or
//!   `currency` at the top of the result; without one, `910.9 M`);
//! - money in units of currency (the XBRL `financials` type): `USD 394.33 B`;
//! - per-share amounts: `USD 6.13`; share counts in millions: `15,400.0 M shares`;
//! - percentages: `23.5%`;
//! - enum values as words: `very_strong` reads `Very strong`.
//!
//! Without a schema (a result whose batch is gone) only the names count: `*_pct` fields are
//! percentages, and the summary and score still come first.

use serde_json::{Map, Value};

/// Where a top-level field goes: lower first; the rest keep the schema's order.
fn lead_rank(key: &str) -> u8 {
    match key {
        "summary" | "executive_summary" | "overall_summary" => 0,
        "verdict" | "stance" | "judgement" | "action_signal" => 1,
        "score" | "conviction" | "confidence_level" => 2,
        k if k.ends_with("_score") => 2,
        "score_rationale" | "stance_rationale" | "rationale" => 3,
        _ => 4,
    }
}

/// The schema node describing property `key` of an object node.
pub fn property_schema<'s>(node: Option<&'s Value>, key: &str) -> Option<&'s Value> {
    node?.get("properties")?.get(key)
}

/// The schema node describing the items of an array node.
pub fn items_schema(node: Option<&Value>) -> Option<&Value> {
    node?.get("items")
}

/// `value` with its fields in reading order (see the module documentation).
pub fn arrange(value: &Value, schema: Option<&Value>) -> Value {
    let mut arranged = arrange_node(value, schema);
    if let Value::Object(map) = &mut arranged {
        let mut fields: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
        // A stable sort: within a rank the schema's order stays.
        fields.sort_by_key(|(k, _)| lead_rank(k));
        map.extend(fields);
    }
    arranged
}

fn arrange_node(value: &Value, schema: Option<&Value>) -> Value {
    match value {
        Value::Object(map) => {
            let order: Vec<&str> = schema
                .and_then(|s| s.get("propertyOrdering"))
                .and_then(Value::as_array)
                .map(|names| names.iter().filter_map(Value::as_str).collect())
                .or_else(|| {
                    schema
                        .and_then(|s| s.get("properties"))
                        .and_then(Value::as_object)
                        .map(|p| p.keys().map(String::as_str).collect())
                })
                .unwrap_or_default();
            let mut out = Map::new();
            for key in &order {
                if let Some(v) = map.get(*key) {
                    out.insert(
                        (*key).to_string(),
                        arrange_node(v, property_schema(schema, key)),
                    );
                }
            }
            for (key, v) in map {
                if !out.contains_key(key) {
                    out.insert(key.clone(), arrange_node(v, property_schema(schema, key)));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| arrange_node(item, items_schema(schema)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The currency a result states at its top (`reporting_currency` or `currency`), if any.
pub fn result_currency(result: &Value) -> Option<String> {
    ["reporting_currency", "currency"]
        .iter()
        .find_map(|k| result.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.len() <= 8)
        .map(str::to_ascii_uppercase)
}

/// What a number stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    Percent,
    /// Money in millions of the currency.
    MoneyMillions,
    /// Money in units of the currency, shown compactly (`394.33 B`).
    MoneyUnits,
    /// Money per share.
    PerShare,
    /// A count of shares in millions.
    SharesMillions,
    Plain,
}

/// What the number in field `key` stands for, from its schema node and its name.
pub fn quantity(key: &str, node: Option<&Value>) -> Quantity {
    let description = node
        .and_then(|n| n.get("description"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let key = key.to_ascii_lowercase();
    if key.ends_with("_pct") || key.ends_with("_percent") || description.contains("percent") {
        return Quantity::Percent;
    }
    if description.contains("per share") || key.starts_with("eps_") {
        return Quantity::PerShare;
    }
    if description.contains("million") {
        if key.contains("shares") {
            return Quantity::SharesMillions;
        }
        return Quantity::MoneyMillions;
    }
    if description.contains("units of currency") {
        return Quantity::MoneyUnits;
    }
    Quantity::Plain
}

/// `1234567.5` as `1,234,567.5` with `decimals` places (0 to 4).
pub fn grouped(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let text = format!("{:.*}", decimals.min(4), v.abs());
    let (int_part, frac_part) = text.split_once('.').unwrap_or((&text, ""));
    let mut out = String::with_capacity(text.len() + text.len() / 3 + 1);
    if v < 0.0 && text.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        out.push('-');
    }
    for (i, c) in int_part.chars().enumerate() {
        if i > 0 && (int_part.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if !frac_part.is_empty() {
        out.push('.');
        out.push_str(frac_part);
    }
    out
}

/// A plain number: integers grouped, fractions with up to four places.
fn plain(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return grouped(v, 0);
    }
    let text = grouped(v, 4);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// An amount in units, compact: `394.33 B`, `12.5 M`, `8,200`.
fn compact_units(v: f64) -> String {
    let a = v.abs();
    let sign = if v < 0.0 { "-" } else { "" };
    if a >= 1e12 {
        format!("{sign}{:.2} T", a / 1e12)
    } else if a >= 1e9 {
        format!("{sign}{:.2} B", a / 1e9)
    } else if a >= 1e6 {
        format!("{sign}{:.1} M", a / 1e6)
    } else {
        plain(v)
    }
}

/// A number as it reads in field `key`: `USD 910.9 M`, `23.5%`, `15,400.0 M shares`, `7`.
pub fn number_text(v: f64, key: &str, node: Option<&Value>, currency: Option<&str>) -> String {
    let with_currency = |amount: String| match currency {
        Some(c) => format!("{c} {amount}"),
        None => amount,
    };
    match quantity(key, node) {
        Quantity::Percent => {
            let text = grouped(v, 1);
            format!("{}%", text.strip_suffix(".0").unwrap_or(&text))
        }
        Quantity::MoneyMillions => with_currency(format!("{} M", grouped(v, 1))),
        Quantity::MoneyUnits => with_currency(compact_units(v)),
        Quantity::PerShare => with_currency(grouped(v, 2)),
        Quantity::SharesMillions => format!("{} M shares", grouped(v, 1)),
        Quantity::Plain => plain(v),
    }
}

/// Whether the schema node lists the allowed values of a string.
pub fn is_enum(node: Option<&Value>) -> bool {
    node.and_then(|n| n.get("enum")).is_some()
}

/// An enum value as words: `very_strong` as `Very strong`, `HIGH` as `High`.
pub fn enum_words(value: &str) -> String {
    let spaced = value.replace(['_', '-'], " ");
    let spaced = if spaced.chars().any(char::is_lowercase) {
        spaced
    } else {
        spaced.to_lowercase()
    };
    let mut chars = spaced.trim().chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => value.to_string(),
    }
}

/// A scalar as it reads in field `key`; `None` for objects and arrays.
pub fn scalar_text(
    value: &Value,
    key: &str,
    node: Option<&Value>,
    currency: Option<&str>,
) -> Option<String> {
    Some(match value {
        Value::Null => "-".to_string(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) => number_text(f, key, node, currency),
            None => n.to_string(),
        },
        Value::String(s) if is_enum(node) => enum_words(s),
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => return None,
    })
}

/// A field name as a label: `gross_margin_pct` as `Gross margin (%)`.
pub fn label(key: &str) -> String {
    let (stem, percent) = match key
        .strip_suffix("_pct")
        .or_else(|| key.strip_suffix("_percent"))
    {
        Some(stem) => (stem, true),
        None => (key, false),
    };
    let words = enum_words(stem);
    if percent {
        format!("{words} (%)")
    } else {
        words
    }
}

/// The numeric fields of a result, depth first in reading order: the path of keys to each
/// and its schema node. Arrays are not entered (their items do not line up across years).
pub fn numeric_fields<'v, 's>(
    value: &'v Value,
    schema: Option<&'s Value>,
) -> Vec<(Vec<&'v str>, Option<&'s Value>)> {
    let mut out = Vec::new();
    collect_numeric(value, schema, &mut Vec::new(), &mut out);
    out
}

fn collect_numeric<'v, 's>(
    value: &'v Value,
    schema: Option<&'s Value>,
    path: &mut Vec<&'v str>,
    out: &mut Vec<(Vec<&'v str>, Option<&'s Value>)>,
) {
    let Value::Object(map) = value else {
        return;
    };
    for (key, v) in map {
        let node = property_schema(schema, key);
        path.push(key);
        match v {
            Value::Number(_) => out.push((path.clone(), node)),
            Value::Null if is_numeric_node(node) => out.push((path.clone(), node)),
            Value::Object(_) => collect_numeric(v, node, path, out),
            _ => {}
        }
        path.pop();
    }
}

/// Whether a schema node's type is a number (possibly nullable).
fn is_numeric_node(node: Option<&Value>) -> bool {
    let Some(kind) = node.and_then(|n| n.get("type")) else {
        return false;
    };
    let numeric = |t: &Value| matches!(t.as_str(), Some("number" | "integer"));
    match kind {
        Value::Array(kinds) => kinds.iter().any(numeric),
        one => numeric(one),
    }
}

/// The value at `path` in `value`.
pub fn at_path<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "propertyOrdering": ["reporting_currency", "margins", "balance_sheet", "summary", "score_rationale", "score"],
            "properties": {
                "reporting_currency": {"type": ["string", "null"]},
                "margins": {
                    "type": "object",
                    "propertyOrdering": ["net_margin_pct", "trend"],
                    "properties": {
                        "net_margin_pct": {"type": ["number", "null"], "description": "Net income / revenue, percent."},
                        "trend": {"type": "string", "enum": ["expanding", "stable"]}
                    }
                },
                "balance_sheet": {
                    "type": "object",
                    "propertyOrdering": ["total_debt", "strength"],
                    "properties": {
                        "total_debt": {"type": ["number", "null"], "description": "Borrowings, millions."},
                        "strength": {"type": "string", "enum": ["very_strong", "weak"]}
                    }
                },
                "summary": {"type": "string"},
                "score_rationale": {"type": "string"},
                "score": {"type": "integer"}
            }
        })
    }

    #[test]
    fn fields_follow_the_schema_with_summary_and_score_first() {
        let stored = json!({
            "balance_sheet": {"strength": "weak", "total_debt": 10},
            "extra": 1,
            "margins": {"trend": "stable", "net_margin_pct": 5},
            "reporting_currency": "USD",
            "score": 7,
            "score_rationale": "why",
            "summary": "what"
        });
        let arranged = arrange(&stored, Some(&schema()));
        let keys: Vec<&String> = arranged.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "summary",
                "score",
                "score_rationale",
                "reporting_currency",
                "margins",
                "balance_sheet",
                "extra"
            ]
        );
        let inner: Vec<&String> = arranged["margins"].as_object().unwrap().keys().collect();
        assert_eq!(inner, ["net_margin_pct", "trend"]);
        // Without a schema the stored order stays, summary and score still lead.
        let keys: Vec<String> = arrange(&stored, None)
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(&keys[..3], ["summary", "score", "score_rationale"]);
    }

    #[test]
    fn values_read_with_currency_unit_percent_and_words() {
        let schema = schema();
        let debt = property_schema(
            property_schema(Some(&schema), "balance_sheet"),
            "total_debt",
        );
        assert_eq!(
            number_text(910.94, "total_debt", debt, Some("USD")),
            "USD 910.9 M"
        );
        assert_eq!(
            number_text(-1234.5, "total_debt", debt, Some("EUR")),
            "EUR -1,234.5 M"
        );
        assert_eq!(number_text(910.9, "total_debt", debt, None), "910.9 M");
        let pct = property_schema(property_schema(Some(&schema), "margins"), "net_margin_pct");
        assert_eq!(
            number_text(23.456, "net_margin_pct", pct, Some("USD")),
            "23.5%"
        );
        assert_eq!(number_text(12.0, "net_margin_pct", pct, None), "12%");
        assert_eq!(number_text(7.0, "score", None, Some("USD")), "7");
        assert_eq!(number_text(0.125, "ratio", None, None), "0.125");
        let units =
            json!({"type": "number", "description": "Total revenue, in units of currency."});
        assert_eq!(
            number_text(394.328e9, "revenue", Some(&units), Some("USD")),
            "USD 394.33 B"
        );
        let eps = json!({"type": "number", "description": "Currency per share."});
        assert_eq!(
            number_text(6.1, "eps_diluted", Some(&eps), Some("USD")),
            "USD 6.10"
        );
        let shares =
            json!({"type": "number", "description": "Diluted weighted-average shares, millions."});
        assert_eq!(
            number_text(15408.1, "diluted_shares", Some(&shares), Some("USD")),
            "15,408.1 M shares"
        );
        let strength = json!({"type": "string", "enum": ["very_strong"]});
        assert_eq!(
            scalar_text(&json!("very_strong"), "strength", Some(&strength), None).unwrap(),
            "Very strong"
        );
        assert_eq!(enum_words("HIGH"), "High");
        assert_eq!(
            scalar_text(&json!("very_strong"), "note", None, None).unwrap(),
            "very_strong",
            "free text is never rewritten"
        );
        assert_eq!(label("gross_margin_pct"), "Gross margin (%)");
        assert_eq!(grouped(-0.04, 1), "0.0");
        assert_eq!(grouped(1234567.25, 2), "1,234,567.25");
    }

    #[test]
    fn numeric_fields_are_found_through_nested_objects_in_order() {
        let value = arrange(
            &json!({"summary": "s", "margins": {"net_margin_pct": null, "trend": "stable"},
                    "balance_sheet": {"total_debt": 3}, "score": 7, "list": [1, 2]}),
            Some(&schema()),
        );
        let schema = schema();
        let fields = numeric_fields(&value, Some(&schema));
        let paths: Vec<String> = fields.iter().map(|(p, _)| p.join(".")).collect();
        assert_eq!(
            paths,
            [
                "score",
                "margins.net_margin_pct",
                "balance_sheet.total_debt"
            ]
        );
        assert_eq!(
            at_path(&value, &["balance_sheet", "total_debt"]),
            Some(&json!(3))
        );
    }
}
