//! `--where "FIELD OP VALUE"`: the pure parse of a condition against a type's fields, its test
//! on one result, and the order a screen sorts values in.
//!
//! Operators: `= != < <= > >=` and `~` (contains, case-insensitive; on a list, any item).
//! The value is read by the field's kind: a number for numeric fields, one of the enum's values
//! (any case) for enums, `true`/`false` for booleans, text otherwise; quotes around it are
//! dropped. `FIELD = null` and `FIELD != null` test for a missing value. A missing or null value
//! fails every other condition.
//!
//! Enums compare by rank: the schema lists the best value first, so `confidence_level >=
//! MEDIUM` keeps HIGH and MEDIUM.

use std::cmp::Ordering;

use serde_json::Value;

use crate::error::ScreenError;
use crate::fields::{FieldCatalog, FieldKind};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "=" | "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "~" => Op::Contains,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "~",
        }
    }

    fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering == Ordering::Equal,
            Op::Ne => ordering != Ordering::Equal,
            Op::Lt => ordering == Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
            Op::Gt => ordering == Ordering::Greater,
            Op::Ge => ordering != Ordering::Less,
            Op::Contains => false,
        }
    }
}

/// The value a condition compares with, already read by the field's kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Number(f64),
    /// An enum value in its schema spelling, with its rank (0 = the first listed, the best).
    Enum {
        value: String,
        rank: usize,
    },
    Text(String),
    Bool(bool),
    Null,
}

/// One parsed `--where` condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: String,
    pub op: Op,
    pub operand: Operand,
    kind: FieldKind,
}

impl Condition {
    /// The condition written back as `FIELD OP VALUE`.
    pub fn to_text(&self) -> String {
        let value = match &self.operand {
            Operand::Number(n) => format_number(*n),
            Operand::Enum { value, .. } | Operand::Text(value) => value.clone(),
            Operand::Bool(b) => b.to_string(),
            Operand::Null => "null".into(),
        };
        format!("{} {} {}", self.field, self.op.as_str(), value)
    }

    /// Whether a result whose field holds `value` (`None`: absent) passes.
    pub fn matches(&self, value: Option<&Value>) -> bool {
        let value = value.filter(|v| !v.is_null());
        if self.operand == Operand::Null {
            return match self.op {
                Op::Eq => value.is_none(),
                _ => value.is_some(),
            };
        }
        let Some(value) = value else {
            return false;
        };
        if self.op == Op::Contains {
            let Operand::Text(needle) = &self.operand else {
                return false;
            };
            return searchable_text(value)
                .to_lowercase()
                .contains(&needle.to_lowercase());
        }
        let ordering = match (&self.operand, value) {
            (Operand::Number(want), v) => v.as_f64().and_then(|have| have.partial_cmp(want)),
            (Operand::Enum { rank, .. }, Value::String(s)) => match &self.kind {
                // A better value has a lower rank: it compares as greater.
                FieldKind::Enum(values) => enum_rank(values, s).map(|have| rank.cmp(&have)),
                _ => None,
            },
            (Operand::Text(want), Value::String(s)) => {
                Some(s.to_lowercase().cmp(&want.to_lowercase()))
            }
            (Operand::Bool(want), Value::Bool(have)) => Some(have.cmp(want)),
            _ => None,
        };
        ordering.is_some_and(|o| self.op.accepts(o))
    }
}

/// The rank of `value` among an enum's values (case-insensitive), 0 the best.
pub(crate) fn enum_rank(values: &[String], value: &str) -> Option<usize> {
    values.iter().position(|v| v.eq_ignore_ascii_case(value))
}

fn searchable_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(searchable_text)
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// The error for a field the type does not have.
pub(crate) fn unknown_field(
    field: &str,
    analysis_type: &str,
    catalog: &FieldCatalog,
) -> ScreenError {
    ScreenError::UnknownField {
        field: field.to_string(),
        analysis_type: analysis_type.to_string(),
        fields: catalog.paths().to_vec(),
    }
}

/// Parses `FIELD OP VALUE` against the fields of `analysis_type`.
pub fn parse_condition(
    text: &str,
    analysis_type: &str,
    catalog: &FieldCatalog,
) -> Result<Condition, ScreenError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ScreenError::EmptyCondition);
    }
    let field_end = trimmed
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        .unwrap_or(trimmed.len());
    let field = &trimmed[..field_end];
    let rest = trimmed[field_end..].trim_start();
    let op_end = rest
        .find(|c: char| !matches!(c, '=' | '!' | '<' | '>' | '~'))
        .unwrap_or(rest.len());
    let op_text = &rest[..op_end];
    if field.is_empty() || op_text.is_empty() {
        // Either nothing before the operator or no operator at all; a stray character such as
        // `score : 7` reads as a missing operator too.
        return match (field.is_empty(), op_text.is_empty()) {
            (true, false) => Err(ScreenError::BadArgument(format!(
                "no field before `{op_text}` in --where {text:?}; write FIELD OP VALUE, e.g. \
                 --where \"score >= 7\""
            ))),
            _ => Err(ScreenError::NoOperator {
                text: text.to_string(),
            }),
        };
    }
    let op = Op::parse(op_text).ok_or_else(|| ScreenError::BadOperator {
        text: text.to_string(),
        found: op_text.to_string(),
    })?;
    let raw_value = unquote(rest[op_end..].trim());
    let kind = catalog
        .get(field)
        .ok_or_else(|| unknown_field(field, analysis_type, catalog))?
        .clone();
    if raw_value.is_empty() {
        return Err(ScreenError::MissingValue {
            text: text.to_string(),
            field: field.to_string(),
            op: op.as_str().to_string(),
        });
    }
    let not_for_kind = || ScreenError::OperatorNotForKind {
        field: field.to_string(),
        op: op.as_str().to_string(),
        kind: kind.describe(),
    };
    let operand = if raw_value.eq_ignore_ascii_case("null") && matches!(op, Op::Eq | Op::Ne) {
        Operand::Null
    } else if op == Op::Contains {
        Operand::Text(raw_value.to_string())
    } else {
        match &kind {
            FieldKind::Number => {
                let n: f64 = raw_value
                    .replace('_', "")
                    .parse()
                    .ok()
                    .filter(|n: &f64| n.is_finite())
                    .ok_or_else(|| ScreenError::BadNumber {
                        field: field.to_string(),
                        value: raw_value.to_string(),
                    })?;
                Operand::Number(n)
            }
            FieldKind::Enum(values) => {
                let rank = enum_rank(values, raw_value).ok_or_else(|| {
                    // A level only an older version has (multi's `pass`) cannot be placed on
                    // the current scale; its own batches still read it.
                    match enum_rank(catalog.earlier_values(field), raw_value) {
                        Some(_) => ScreenError::EarlierEnumValue {
                            field: field.to_string(),
                            value: raw_value.to_string(),
                            analysis_type: analysis_type.to_string(),
                            values: values.clone(),
                        },
                        None => ScreenError::NotInEnum {
                            field: field.to_string(),
                            value: raw_value.to_string(),
                            values: values.clone(),
                        },
                    }
                })?;
                Operand::Enum {
                    value: values[rank].clone(),
                    rank,
                }
            }
            FieldKind::Boolean => {
                if !matches!(op, Op::Eq | Op::Ne) {
                    return Err(not_for_kind());
                }
                match raw_value.to_ascii_lowercase().as_str() {
                    "true" => Operand::Bool(true),
                    "false" => Operand::Bool(false),
                    _ => {
                        return Err(ScreenError::BadBoolean {
                            field: field.to_string(),
                            value: raw_value.to_string(),
                        })
                    }
                }
            }
            FieldKind::Text => Operand::Text(raw_value.to_string()),
            FieldKind::List => return Err(not_for_kind()),
        }
    };
    Ok(Condition {
        field: field.to_string(),
        op,
        operand,
        kind,
    })
}

fn unquote(s: &str) -> &str {
    for quote in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(quote) && s.ends_with(quote) {
            return &s[1..s.len() - 1];
        }
    }
    s
}

/// How a value sorts: nulls (and values the field's kind cannot rank) always come last.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SortKey {
    Number(f64),
    /// Negated enum rank, so that a better value is greater.
    Rank(i64),
    Text(String),
    Bool(bool),
    Null,
}

impl SortKey {
    pub(crate) fn of(kind: &FieldKind, value: Option<&Value>) -> SortKey {
        match (kind, value) {
            (FieldKind::Number, Some(v)) => v
                .as_f64()
                .filter(|n| n.is_finite())
                .map_or(SortKey::Null, SortKey::Number),
            (FieldKind::Enum(values), Some(Value::String(s))) => {
                enum_rank(values, s).map_or(SortKey::Null, |r| SortKey::Rank(-(r as i64)))
            }
            (FieldKind::Text, Some(Value::String(s))) => SortKey::Text(s.to_lowercase()),
            (FieldKind::Boolean, Some(Value::Bool(b))) => SortKey::Bool(*b),
            _ => SortKey::Null,
        }
    }

    /// Orders two keys for a screen: `descending` puts the greatest first; nulls come last
    /// either way.
    pub(crate) fn order(&self, other: &SortKey, descending: bool) -> Ordering {
        let ordering = match (self, other) {
            (SortKey::Null, SortKey::Null) => return Ordering::Equal,
            (SortKey::Null, _) => return Ordering::Greater,
            (_, SortKey::Null) => return Ordering::Less,
            (SortKey::Number(a), SortKey::Number(b)) => a.total_cmp(b),
            (SortKey::Rank(a), SortKey::Rank(b)) => a.cmp(b),
            (SortKey::Text(a), SortKey::Text(b)) => a.cmp(b),
            (SortKey::Bool(a), SortKey::Bool(b)) => a.cmp(b),
            _ => Ordering::Equal,
        };
        if descending {
            ordering.reverse()
        } else {
            ordering
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog() -> FieldCatalog {
        FieldCatalog::from_schema(&json!({
            "type": "object",
            "properties": {
                "overall_alpha_score": {"type": "integer"},
                "confidence_level": {"type": "string", "enum": ["HIGH", "MEDIUM", "LOW"]},
                "scores": {"type": "object", "properties": {"strategic_anomaly": {"type": "integer"}}},
                "investment_thesis": {"type": "string"},
                "key_insights": {"type": "array", "items": {"type": "string"}},
                "audited": {"type": "boolean"}
            }
        }))
    }

    /// Input -> the parsed condition, or the kind of error (its message's start).
    #[test]
    fn parse_table() {
        let catalog = catalog();
        let ok: &[(&str, &str, Op, Operand)] = &[
            (
                "overall_alpha_score >= 70",
                "overall_alpha_score",
                Op::Ge,
                Operand::Number(70.0),
            ),
            (
                "overall_alpha_score>=70",
                "overall_alpha_score",
                Op::Ge,
                Operand::Number(70.0),
            ),
            (
                "  overall_alpha_score   <  7.5 ",
                "overall_alpha_score",
                Op::Lt,
                Operand::Number(7.5),
            ),
            (
                "overall_alpha_score = -3",
                "overall_alpha_score",
                Op::Eq,
                Operand::Number(-3.0),
            ),
            (
                "overall_alpha_score == 3",
                "overall_alpha_score",
                Op::Eq,
                Operand::Number(3.0),
            ),
            (
                "overall_alpha_score != null",
                "overall_alpha_score",
                Op::Ne,
                Operand::Null,
            ),
            (
                "scores.strategic_anomaly > 1_000",
                "scores.strategic_anomaly",
                Op::Gt,
                Operand::Number(1000.0),
            ),
            (
                "confidence_level >= medium",
                "confidence_level",
                Op::Ge,
                Operand::Enum {
                    value: "MEDIUM".into(),
                    rank: 1,
                },
            ),
            (
                "confidence_level = 'HIGH'",
                "confidence_level",
                Op::Eq,
                Operand::Enum {
                    value: "HIGH".into(),
                    rank: 0,
                },
            ),
            (
                "investment_thesis ~ \"cloud AI\"",
                "investment_thesis",
                Op::Contains,
                Operand::Text("cloud AI".into()),
            ),
            (
                "key_insights ~ silicon",
                "key_insights",
                Op::Contains,
                Operand::Text("silicon".into()),
            ),
            (
                "overall_alpha_score ~ 7",
                "overall_alpha_score",
                Op::Contains,
                Operand::Text("7".into()),
            ),
            ("audited = TRUE", "audited", Op::Eq, Operand::Bool(true)),
            (
                "investment_thesis = null",
                "investment_thesis",
                Op::Eq,
                Operand::Null,
            ),
        ];
        for (text, field, op, operand) in ok {
            let c = parse_condition(text, "scanner", &catalog)
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                (&c.field[..], c.op, &c.operand),
                (*field, *op, operand),
                "{text}"
            );
        }
        let bad: &[(&str, &str)] = &[
            ("", "empty --where"),
            ("   ", "empty --where"),
            ("overall_alpha_score", "no operator"),
            ("overall_alpha_score 70", "no operator"),
            ("overall_alpha_score : 70", "no operator"),
            (">= 70", "no field before"),
            ("overall_alpha_score => 70", "unknown operator `=>`"),
            ("overall_alpha_score <> 70", "unknown operator `<>`"),
            ("overall_alpha_score =~ 70", "unknown operator `=~`"),
            ("overall_alpha_score >=", "no value"),
            ("overall_alpha_score >= seventy", "`seventy` is not a number"),
            ("overall_alpha_score >= 70%", "`70%` is not a number"),
            ("overall_alpha_score >= NaN", "`NaN` is not a number"),
            ("overall_alpha_score >= inf", "`inf` is not a number"),
            ("alpha >= 70", "unknown field `alpha` for analysis type scanner; its fields are: overall_alpha_score, confidence_level, scores.strategic_anomaly, investment_thesis, key_insights, audited"),
            ("scores >= 70", "unknown field `scores`"),
            ("confidence_level >= SURE", "`SURE` is not a value of `confidence_level`; it is one of: HIGH, MEDIUM, LOW"),
            ("key_insights >= 3", "`>=` does not apply to `key_insights` (list)"),
            ("audited > true", "`>` does not apply to `audited`"),
            ("audited = yes", "`yes` is not true or false"),
        ];
        for (text, expected) in bad {
            let error = parse_condition(text, "scanner", &catalog).unwrap_err();
            assert!(
                error
                    .to_string()
                    .to_lowercase()
                    .contains(&expected.to_lowercase()),
                "{text:?}: {error}"
            );
            assert!(error.is_bad_input(), "{text:?}");
        }
    }

    #[test]
    fn conditions_test_values_by_kind_and_nulls_fail() {
        let catalog = catalog();
        let check = |text: &str, value: Option<Value>| {
            parse_condition(text, "scanner", &catalog)
                .unwrap()
                .matches(value.as_ref())
        };
        assert!(check("overall_alpha_score >= 70", Some(json!(70))));
        assert!(check("overall_alpha_score >= 70", Some(json!(70.5))));
        assert!(!check("overall_alpha_score >= 70", Some(json!(69))));
        assert!(!check("overall_alpha_score >= 70", None));
        assert!(!check("overall_alpha_score >= 70", Some(Value::Null)));
        assert!(!check("overall_alpha_score != 70", None), "null fails !=");
        assert!(
            !check("overall_alpha_score >= 70", Some(json!("80"))),
            "text is not a number"
        );
        assert!(check("overall_alpha_score = null", None));
        assert!(check("overall_alpha_score = null", Some(Value::Null)));
        assert!(!check("overall_alpha_score = null", Some(json!(1))));
        assert!(check("overall_alpha_score != null", Some(json!(0))));
        // Enums by rank: at least MEDIUM keeps HIGH and MEDIUM.
        assert!(check("confidence_level >= MEDIUM", Some(json!("HIGH"))));
        assert!(check("confidence_level >= MEDIUM", Some(json!("MEDIUM"))));
        assert!(!check("confidence_level >= MEDIUM", Some(json!("LOW"))));
        assert!(check("confidence_level < MEDIUM", Some(json!("LOW"))));
        assert!(check("confidence_level = medium", Some(json!("MEDIUM"))));
        assert!(!check("confidence_level >= LOW", Some(json!("UNSURE"))));
        // Contains: case-insensitive, any item of a list.
        assert!(check(
            "key_insights ~ SILICON",
            Some(json!(["AI", "custom silicon"]))
        ));
        assert!(!check("key_insights ~ silicon", Some(json!(["AI"]))));
        assert!(check(
            "investment_thesis ~ cloud",
            Some(json!("Private Cloud compute"))
        ));
        assert!(check("investment_thesis > m", Some(json!("Private"))));
        assert!(check("audited = true", Some(json!(true))));
        assert!(!check("audited = true", Some(json!(false))));
    }

    #[test]
    fn sort_keys_put_nulls_last_in_both_directions() {
        let number = FieldKind::Number;
        let keys: Vec<SortKey> = [json!(3), Value::Null, json!(10), json!(-1)]
            .iter()
            .map(|v| SortKey::of(&number, Some(v)))
            .collect();
        for descending in [true, false] {
            let mut sorted = keys.clone();
            sorted.sort_by(|a, b| a.order(b, descending));
            assert_eq!(sorted.last(), Some(&SortKey::Null), "{descending}");
        }
        let mut sorted = keys.clone();
        sorted.sort_by(|a, b| a.order(b, true));
        assert_eq!(
            sorted[0],
            SortKey::Number(10.0),
            "numbers sort numerically, not as text"
        );
        let levels = FieldKind::Enum(vec!["HIGH".into(), "MEDIUM".into(), "LOW".into()]);
        let mut ranks: Vec<SortKey> = ["LOW", "HIGH", "bogus", "MEDIUM"]
            .iter()
            .map(|s| SortKey::of(&levels, Some(&json!(s))))
            .collect();
        ranks.sort_by(|a, b| a.order(b, true));
        assert_eq!(
            ranks,
            vec![
                SortKey::Rank(0),
                SortKey::Rank(-1),
                SortKey::Rank(-2),
                SortKey::Null
            ]
        );
    }

    #[test]
    fn a_condition_reads_back_as_text() {
        let c = parse_condition("confidence_level>=medium", "scanner", &catalog()).unwrap();
        assert_eq!(c.to_text(), "confidence_level >= MEDIUM");
        let c = parse_condition("overall_alpha_score >= 70", "scanner", &catalog()).unwrap();
        assert_eq!(c.to_text(), "overall_alpha_score >= 70");
    }
}
