//! A `changes` result (a filing compared with the previous fiscal year's) as the dashboard
//! shows it: each compared item's four similarities, length change and sentence counts, with
//! last year's `changes` result beside them (how much the filing changed the year before), and
//! the sentences added and removed marked as insertions and deletions. The measures are
//! `fintel_changes`'; nothing is recomputed here.

use maud::{html, Markup};
use serde_json::Value;

/// The measures shown, with their column headings.
const MEASURES: &[(&str, &str)] = &[
    ("cosine", "cosine"),
    ("jaccard", "Jaccard"),
    ("min_edit", "min. edit"),
    ("simple", "simple"),
];

/// Item ids in reading order (10-K, then the 20-F items that differ), so rows follow the
/// filing rather than the stored object's key order.
const ITEM_ORDER: &[&str] = &["1", "1A", "3", "4", "5", "7", "7A", "9A", "11", "15"];

/// Whether a stored result is a `changes` comparison this view can show.
pub(crate) fn is_changes(analysis_type: &str, v: &Value) -> bool {
    analysis_type == "changes" && v.get("whole").is_some_and(Value::is_object)
}

/// The rows of a result: ("", "Whole text", measures) then each item in reading order.
fn rows(v: &Value) -> Vec<(String, String, &Value)> {
    let mut out = vec![(String::new(), "Whole text".to_string(), &v["whole"])];
    if let Some(sections) = v.get("sections").and_then(Value::as_object) {
        let mut ids: Vec<&String> = sections.keys().collect();
        ids.sort_by_key(|id| {
            ITEM_ORDER
                .iter()
                .position(|o| o == id)
                .unwrap_or(usize::MAX)
        });
        for id in ids {
            let s = &sections[id.as_str()];
            let title = s.get("title").and_then(Value::as_str).unwrap_or("");
            out.push((id.clone(), title.to_string(), s));
        }
    }
    out
}

fn measure(row: &Value, key: &str) -> Option<f64> {
    row.get(key).and_then(Value::as_f64)
}

fn count(row: &Value, key: &str) -> Option<u64> {
    row.get(key).and_then(Value::as_u64)
}

fn signed_percent(x: f64) -> String {
    format!("{:+.1}%", x * 100.0)
}

/// What each side holds for an item that was not compared.
fn not_compared(row: &Value) -> String {
    let state = |k: &str| {
        row.get(k)
            .and_then(Value::as_str)
            .unwrap_or("absent")
            .replace('_', " ")
    };
    format!(
        "not compared: last year {}, this year {}",
        state("old"),
        state("new")
    )
}

/// The same item of last year's comparison.
fn last_year_row<'a>(last: Option<&'a Value>, id: &str) -> Option<&'a Value> {
    let last = last?;
    if id.is_empty() {
        last.get("whole")
    } else {
        last.get("sections").and_then(|s| s.get(id))
    }
}

/// The card of one `changes` result; `last_year` is the company's `changes` result of the
/// fiscal year before, if stored.
pub(crate) fn render(v: &Value, last_year: Option<&Value>, result_id: i64) -> Markup {
    let previous_year = v.get("previous_fiscal_year").and_then(Value::as_i64);
    let previous_accession = v
        .get("previous_accession")
        .and_then(Value::as_str)
        .unwrap_or("-");
    let rows = rows(v);
    html! {
        div.changes {
            p.meta {
                "Compared with "
                @if let Some(y) = previous_year { "FY" (y) " " }
                "(accession " code { (previous_accession) } "). Each similarity is 1 when the text is unchanged."
                @if last_year.is_some() {
                    " Last year's comparison (that year with the one before) is shown beside each value."
                } @else {
                    " No comparison of the year before is stored."
                }
            }
            div.table-wrap { table.changes-table {
                thead { tr {
                    th { "item" }
                    @for (_, heading) in MEASURES { th.num { (heading) } }
                    th.num { "length" } th.num { "added" } th.num { "removed" }
                } }
                tbody {
                    @for (id, title, row) in &rows {
                        @let last = last_year_row(last_year, id);
                        tr id={"changes-" (result_id) "-item-" (if id.is_empty() { "whole" } else { id.as_str() })} {
                            th scope="row" {
                                @if !id.is_empty() { (id) " " }
                                span.muted { (title) }
                            }
                            @if measure(row, "cosine").is_none() {
                                td colspan="7" { span.muted { (not_compared(row)) } }
                            } @else {
                                @for (key, _) in MEASURES {
                                    td.num {
                                        (measure(row, key).map_or("-".to_string(), |x| format!("{x:.4}")))
                                        @if let Some(x) = last.and_then(|l| measure(l, key)) {
                                            br; span.prev title="last year" { (format!("{x:.4}")) }
                                        }
                                    }
                                }
                                td.num {
                                    (measure(row, "length_change").map_or("-".to_string(), signed_percent))
                                    @if let Some(x) = last.and_then(|l| measure(l, "length_change")) {
                                        br; span.prev title="last year" { (signed_percent(x)) }
                                    }
                                }
                                @for key in ["added_count", "removed_count"] {
                                    td.num {
                                        (count(row, key).map_or("-".to_string(), |n| n.to_string()))
                                        @if let Some(n) = last.and_then(|l| count(l, key)) {
                                            br; span.prev title="last year" { (n) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
            @for (id, title, row) in rows.iter().filter(|(id, ..)| !id.is_empty()) {
                @let added = strings(row, "added");
                @let removed = strings(row, "removed");
                @if !added.is_empty() || !removed.is_empty() {
                    details.sentences open[id == "1A"] {
                        summary {
                            "Item " (id) " " (title) ": "
                            (count(row, "added_count").unwrap_or(0)) " sentence(s) added, "
                            (count(row, "removed_count").unwrap_or(0)) " removed"
                        }
                        ul.changed {
                            @for s in &added { li { ins.added { (s) } } }
                            @for s in &removed { li { del.removed { (s) } } }
                        }
                        p.meta { a href={"/results/" (result_id) "/changes#item-" (id)} { "in context, in both years' text" } }
                    }
                }
            }
        }
    }
}

fn strings<'a>(row: &'a Value, key: &str) -> Vec<&'a str> {
    row.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}
