//! Every row of the fixtures' expected/sections.tsv, checked against the converted documents.

use std::collections::HashMap;

use fintel_filing::{find_sections, html_to_text, FormKind, SectionStatus};

/// Whitespace-collapsed text with table cells joined by single spaces, as the TSV's comment
/// lines define its snippets.
fn collapse(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c == '|')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

struct Row {
    file: String,
    item: String,
    status: String,
    heading: String,
    first_words: String,
    last_words: String,
    approx_chars: usize,
}

fn rows(tsv: &str) -> Vec<Row> {
    tsv.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("file\t") && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(f.len() >= 7, "malformed TSV row: {l}");
            Row {
                file: f[0].into(),
                item: f[1].into(),
                status: f[2].into(),
                heading: f[3].into(),
                first_words: f[4].into(),
                last_words: f[5].into(),
                approx_chars: f[6].parse().expect("approx_chars is a number"),
            }
        })
        .collect()
}

#[test]
fn every_row_of_sections_tsv_matches() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let tsv = std::fs::read_to_string(dir.join("expected/sections.tsv")).expect("sections.tsv");
    let rows = rows(&tsv);
    assert!(rows.len() >= 50, "only {} rows", rows.len());
    let mut documents = HashMap::new();
    let mut failures = Vec::new();
    for row in &rows {
        let (text, sections) = documents.entry(row.file.clone()).or_insert_with(|| {
            let html = std::fs::read(dir.join(&row.file)).expect("fixture document");
            let text = html_to_text(&html).text;
            let form = if row.file.contains("/20f/") {
                FormKind::TwentyF
            } else {
                FormKind::TenK
            };
            let sections = find_sections(&text, form);
            (text, sections)
        });
        let label = format!("{} item {}", row.file, row.item);
        let Some(section) = sections.iter().find(|s| s.id == row.item) else {
            failures.push(format!("{label}: no such item reported"));
            continue;
        };
        let status_ok = matches!(
            (row.status.as_str(), &section.status),
            ("present", SectionStatus::Present)
                | (
                    "incorporated",
                    SectionStatus::IncorporatedByReference { .. }
                )
                | ("absent", SectionStatus::Absent)
                | ("not-applicable", SectionStatus::NotApplicable)
        );
        if !status_ok {
            failures.push(format!(
                "{label}: status {:?}, expected {}",
                section.status, row.status
            ));
        }
        if row.status == "absent" {
            continue;
        }
        if collapse(&section.heading) != collapse(&row.heading) {
            failures.push(format!(
                "{label}: heading {:?}, expected {:?}",
                section.heading, row.heading
            ));
        }
        let body = collapse(section.body(text));
        if !body.starts_with(&collapse(&row.first_words)) {
            failures.push(format!(
                "{label}: body starts {:?}, expected {:?}",
                body.chars().take(120).collect::<String>(),
                row.first_words
            ));
        }
        if !body.ends_with(&collapse(&row.last_words)) {
            let tail: String = body
                .chars()
                .rev()
                .take(120)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            failures.push(format!(
                "{label}: body ends {:?}, expected {:?}",
                tail, row.last_words
            ));
        }
        let length = body.chars().count();
        let expected = row.approx_chars;
        // Two significant digits in the TSV; allow for cell separators and dropped footers.
        if length * 10 < expected * 7 || length * 10 > expected * 13 + 40 {
            failures.push(format!(
                "{label}: body length {length}, expected about {expected}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
