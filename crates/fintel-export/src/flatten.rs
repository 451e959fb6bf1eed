//! Flattening result JSON into the columns of the tabular formats (see the crate docs).

use std::collections::HashMap;

use serde_json::Value;

use crate::rows::{Row, IDENTIFYING_COLUMNS};

/// One cell of a tabular export.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl Cell {
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Int(i) => Value::from(*i),
            Cell::Float(f) => Value::from(*f),
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Text(s) => Value::String(s.clone()),
        }
    }

    /// The cell as text (for Parquet string columns); `None` when empty.
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    pub(crate) fn as_text(&self) -> Option<String> {
        match self {
            Cell::Null => None,
            Cell::Int(i) => Some(i.to_string()),
            Cell::Float(f) => Some(f.to_string()),
            Cell::Bool(b) => Some(b.to_string()),
            Cell::Text(s) => Some(s.clone()),
        }
    }
}

/// Rows laid out under a common header.
pub(crate) struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub(crate) fn build(rows: &[Row]) -> Table {
        let mut columns: Vec<String> = IDENTIFYING_COLUMNS.iter().map(|s| s.to_string()).collect();
        let mut index: HashMap<String, usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        let mut flat_rows = Vec::with_capacity(rows.len());
        for row in rows {
            let mut pairs = Vec::new();
            if let Some(result) = &row.result {
                match result {
                    Value::Object(_) => flatten_into("", result, &mut pairs),
                    other => pairs.push(("result".to_string(), scalar_or_json(other))),
                }
            }
            let mut cells = row.ident.clone();
            for (mut name, cell) in pairs {
                if IDENTIFYING_COLUMNS.contains(&name.as_str()) {
                    name = format!("result.{name}");
                }
                let i = *index.entry(name.clone()).or_insert_with(|| {
                    columns.push(name);
                    columns.len() - 1
                });
                if cells.len() <= i {
                    cells.resize(i + 1, Cell::Null);
                }
                cells[i] = cell;
            }
            flat_rows.push(cells);
        }
        for cells in &mut flat_rows {
            cells.resize(columns.len(), Cell::Null);
        }
        Table {
            columns,
            rows: flat_rows,
        }
    }
}

fn flatten_into(prefix: &str, value: &Value, out: &mut Vec<(String, Cell)>) {
    match value {
        Value::Object(map) if !map.is_empty() || prefix.is_empty() => {
            for (k, v) in map {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_into(&name, v, out);
            }
        }
        other => out.push((prefix.to_string(), scalar_or_json(other))),
    }
}

fn scalar_or_json(value: &Value) -> Cell {
    match value {
        Value::Null => Cell::Null,
        Value::Bool(b) => Cell::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Cell::Int(i),
            None => n.as_f64().map(Cell::Float).unwrap_or(Cell::Null),
        },
        Value::String(s) => Cell::Text(s.clone()),
        Value::Array(items) if items.iter().all(|v| !v.is_object() && !v.is_array()) => {
            let parts: Vec<String> = items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .collect();
            Cell::Text(parts.join("; "))
        }
        // Arrays of objects and empty objects: compact JSON in one cell.
        other => Cell::Text(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattening_rules() {
        let rows = vec![
            Row {
                ident: vec![Cell::Null; IDENTIFYING_COLUMNS.len()],
                result: Some(json!({
                    "moat": {"rating": "wide", "sources": ["brand", "scale"]},
                    "score": -3,
                    "ratio": 1.5,
                    "risks": [{"name": "fx"}],
                    "ticker": "dup",
                    "flag": true
                })),
            },
            Row {
                ident: vec![Cell::Null; IDENTIFYING_COLUMNS.len()],
                result: Some(json!({"extra": null, "score": 4})),
            },
        ];
        let t = Table::build(&rows);
        let n = IDENTIFYING_COLUMNS.len();
        // Columns in the order the result's fields come (as stored), first-seen across rows.
        assert_eq!(
            &t.columns[n..],
            &[
                "moat.rating",
                "moat.sources",
                "score",
                "ratio",
                "risks",
                "result.ticker",
                "flag",
                "extra"
            ]
        );
        let r0 = &t.rows[0];
        assert_eq!(r0[n], Cell::Text("wide".into()));
        assert_eq!(r0[n + 1], Cell::Text("brand; scale".into()));
        assert_eq!(r0[n + 2], Cell::Int(-3));
        assert_eq!(r0[n + 3], Cell::Float(1.5));
        assert_eq!(r0[n + 4], Cell::Text(r#"[{"name":"fx"}]"#.into()));
        assert_eq!(r0[n + 5], Cell::Text("dup".into()));
        assert_eq!(r0[n + 6], Cell::Bool(true));
        assert_eq!(r0[n + 7], Cell::Null);
        assert_eq!(t.rows[1][n + 2], Cell::Int(4));
        assert_eq!(t.rows[1][n], Cell::Null);
        assert_eq!(t.rows[1].len(), t.columns.len());
    }
}
