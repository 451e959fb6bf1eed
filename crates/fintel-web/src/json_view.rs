//! A stored analysis as readable sections rather than raw JSON: the top-level fields become
//! headed sections, nested objects definition lists, arrays lists; every value is escaped by
//! the template. Fields come in reading order (the schema's, summary and score first, as
//! [`fintel_export::StoredResult`] holds them) and values read as [`fintel_export::present`]
//! writes them: money with its currency and unit, percentages with `%`, enums as words. Also
//! the key-financials table with a sparkline per figure.

use fintel_export::present;
use maud::{html, Markup};
use serde_json::Value;

use crate::charts;
use crate::format;

pub(crate) mod years;

/// Deeper than this, a value is shown as compact JSON text (still escaped).
const MAX_DEPTH: usize = 12;

/// The analysis object as sections; `schema` is the schema of the step that produced it.
pub(crate) fn render_result(v: &Value, schema: Option<&Value>) -> Markup {
    let currency = present::result_currency(v);
    let reading = Reading {
        currency: currency.as_deref(),
    };
    match v {
        Value::Object(map) if !map.is_empty() => html! {
            @for (key, value) in map {
                section {
                    h4 { (present::label(key)) }
                    (reading.render(value, key, present::property_schema(schema, key), 1))
                }
            }
        },
        other => reading.render(other, "", schema, 1),
    }
}

/// How values are written in one result: money carries the result's currency.
struct Reading<'a> {
    currency: Option<&'a str>,
}

impl Reading<'_> {
    /// `v`, the value of field `key` described by schema node `node`.
    fn render(&self, v: &Value, key: &str, node: Option<&Value>, depth: usize) -> Markup {
        if depth > MAX_DEPTH {
            return html! { code { (v.to_string()) } };
        }
        match v {
            Value::Null => html! { span.muted { "none" } },
            Value::Bool(b) => html! { (if *b { "yes" } else { "no" }) },
            Value::Number(_) => html! { (self.scalar(v, key, node)) },
            Value::String(s) if s.is_empty() => html! { span.muted { "(empty)" } },
            Value::String(_) if present::is_enum(node) => html! { (self.scalar(v, key, node)) },
            Value::String(s) => html! { p.text { (s) } },
            Value::Array(items) if items.is_empty() => html! { span.muted { "none" } },
            Value::Array(items) if items.iter().all(is_scalar) => {
                let item_node = present::items_schema(node);
                html! {
                    ul { @for item in items { li { (self.scalar_markup(item, key, item_node)) } } }
                }
            }
            Value::Array(items) => {
                let item_node = present::items_schema(node);
                html! {
                    ol { @for item in items { li { (self.render(item, key, item_node, depth + 1)) } } }
                }
            }
            Value::Object(map) if map.is_empty() => html! { span.muted { "none" } },
            Value::Object(map) => html! {
                dl {
                    @for (k, value) in map {
                        @let child = present::property_schema(node, k);
                        dt { (present::label(k)) }
                        dd {
                            @if is_scalar(value) { (self.scalar_markup(value, k, child)) }
                            @else { (self.render(value, k, child, depth + 1)) }
                        }
                    }
                }
            },
        }
    }

    fn scalar(&self, v: &Value, key: &str, node: Option<&Value>) -> String {
        present::scalar_text(v, key, node, self.currency).unwrap_or_else(|| v.to_string())
    }

    fn scalar_markup(&self, v: &Value, key: &str, node: Option<&Value>) -> Markup {
        match v {
            Value::String(s) if !s.is_empty() => html! { (self.scalar(v, key, node)) },
            other => self.render(other, key, node, 1),
        }
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// The figures of the `financials` analysis, in the order the table shows them.
pub(crate) const FINANCIAL_FIGURES: [(&str, &str); 9] = [
    ("revenue", "Revenue"),
    ("net_income", "Net income"),
    ("operating_cash_flow", "Operating cash flow"),
    ("total_assets", "Total assets"),
    ("total_liabilities", "Total liabilities"),
    ("shareholders_equity", "Shareholders' equity"),
    ("shares_outstanding", "Shares outstanding"),
    ("eps_basic", "EPS, basic"),
    ("eps_diluted", "EPS, diluted"),
];

/// Whether a result holds key financials (the `financials` analysis, or any object with at
/// least two of its figures as numbers).
pub(crate) fn is_financials(analysis_type: &str, v: &Value) -> bool {
    if analysis_type == "financials" {
        return v.is_object();
    }
    FINANCIAL_FIGURES
        .iter()
        .filter(|(k, _)| v.get(k).is_some_and(Value::is_number))
        .count()
        >= 2
}

/// A table of the figures by fiscal year (oldest first), with a sparkline per figure.
pub(crate) fn financials_table(years: &[(String, &Value)]) -> Markup {
    let currency = years
        .iter()
        .rev()
        .find_map(|(_, v)| v.get("currency").and_then(Value::as_str));
    let rows: Vec<(&str, Vec<Option<f64>>)> = FINANCIAL_FIGURES
        .iter()
        .map(|(key, label)| {
            (
                *label,
                years
                    .iter()
                    .map(|(_, v)| v.get(key).and_then(Value::as_f64))
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, values)| values.iter().any(Option::is_some))
        .collect();
    html! {
        @if let Some(c) = currency { p.meta { "Amounts in " (c) " (not thousands); EPS per share." } }
        div.table-wrap {
            table.financials {
                thead { tr {
                    th { "Figure" }
                    @for (year, _) in years { th.num { (year) } }
                    th { "Trend" }
                } }
                tbody {
                    @for (label, values) in &rows {
                        tr {
                            th scope="row" { (label) }
                            @for v in values {
                                td.num { @match v { Some(v) => (format::compact(*v)), None => span.muted { "-" } } }
                            }
                            td { (charts::sparkline(values)) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_become_sections_lists_and_definitions_with_everything_escaped() {
        let v = json!({
            "summary": "Strong year.\n\n<script>alert(1)</script>",
            "key_risks": ["supply", "\"><img src=x onerror=alert(1)>"],
            "scores": {"moat": 7, "debt": null, "ok": true},
            "segments": [{"name": "A", "revenue": 1200000}],
            "notes": []
        });
        let html = render_result(&v, None).into_string();
        assert!(html.contains("<h4>Summary</h4>"), "{html}");
        assert!(
            html.contains("<h4>Key risks</h4><ul><li>supply</li>"),
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        assert!(
            !html.contains("<script") && !html.contains("<img"),
            "{html}"
        );
        assert!(html.contains("<dt>Moat</dt><dd>7</dd>"), "{html}");
        assert!(html.contains("<dt>Debt</dt><dd><span class=\"muted\">none</span>"));
        assert!(html.contains("<dt>Ok</dt><dd>yes</dd>"));
        assert!(
            html.contains("<ol><li><dl><dt>Name</dt><dd>A</dd><dt>Revenue</dt><dd>1,200,000</dd>")
        );
    }

    #[test]
    fn deep_nesting_is_cut_to_text() {
        let mut v = json!("leaf");
        for _ in 0..40 {
            v = json!({ "k": v });
        }
        let html = render_result(&v, None).into_string();
        assert!(html.contains("<code>"), "deep values are shown as text");
    }

    #[test]
    fn financials_are_recognised_and_tabled_by_year() {
        let a = json!({"revenue": 100.0, "net_income": 10.0, "currency": "USD", "eps_basic": null});
        let b = json!({"revenue": 150.0, "net_income": -5.0, "currency": "USD", "eps_basic": 1.5});
        assert!(is_financials("financials", &a));
        assert!(is_financials("custom", &a));
        assert!(!is_financials("fundamental", &json!({"revenue": "grew"})));
        let html = financials_table(&[("FY2023".into(), &a), ("FY2024".into(), &b)]).into_string();
        assert!(html.contains("Amounts in USD"));
        assert!(html.contains("<th scope=\"row\">Net income</th><td class=\"num\">10</td><td class=\"num\">-5</td>"), "{html}");
        assert!(
            !html.contains("Total assets"),
            "figures no year has are left out"
        );
        assert_eq!(
            html.matches("<svg").count(),
            2,
            "revenue and net income have two years"
        );
    }
}
