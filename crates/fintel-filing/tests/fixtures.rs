//! Every 10-K and 20-F fixture document through conversion, sections, budgets and facts.

use std::path::{Path, PathBuf};

use fintel_filing::{
    extract_facts, find_sections, fit_to_budget, html_to_text, key_financials, FactValue, FormKind,
    SectionStatus, TokenEstimator,
};

fn documents(dir: &Path) -> Vec<(PathBuf, FormKind)> {
    let mut out = Vec::new();
    for (sub, form) in [("sec/10k", FormKind::TenK), ("sec/20f", FormKind::TwentyF)] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
            .expect("fixture folder")
            .map(|e| e.expect("directory entry").path())
            .collect();
        files.sort();
        out.extend(files.into_iter().map(|f| (f, form)));
    }
    assert!(out.len() >= 7, "expected at least 7 fixture filings");
    out
}

/// Text of the facts inside `<ix:hidden>` that appear nowhere outside `<ix:header>`.
fn hidden_only_values(html: &str) -> Vec<String> {
    let Some(start) = html.find("<ix:hidden>") else {
        return Vec::new();
    };
    let end = html[start..]
        .find("</ix:hidden>")
        .map_or(html.len(), |i| start + i);
    let hidden = &html[start..end];
    let header_start = html.find("<ix:header>").unwrap_or(start);
    let header_end = html.find("</ix:header>").unwrap_or(end);
    let header = &html[header_start..header_end];
    let mut values = Vec::new();
    for piece in hidden.split("</ix:nonNumeric>") {
        let Some(gt) = piece.rfind('>') else { continue };
        let value = piece[gt + 1..].trim();
        if value.len() >= 6
            && !value.contains('<')
            && html.matches(value).count() == header.matches(value).count()
        {
            values.push(value.to_string());
        }
    }
    values
}

#[test]
fn every_document_converts_to_clean_text() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    for (path, form) in documents(&dir) {
        let html = std::fs::read(&path).expect("fixture");
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let converted = html_to_text(&html);
        let text = &converted.text;
        assert!(
            text.len() > 50_000,
            "{name}: only {} bytes of text",
            text.len()
        );
        assert_eq!(
            converted.plain_text_source,
            name.starts_with("aegon"),
            "{name}"
        );
        // No markup: no '<' followed by a tag name or '/'.
        let bytes = text.as_bytes();
        for (i, _) in text.match_indices('<') {
            let next = bytes.get(i + 1).copied().unwrap_or(b' ');
            assert!(
                !(next.is_ascii_alphabetic() || next == b'/' || next == b'!'),
                "{name}: markup left at {i}: {:?}",
                &text[i..(i + 40).min(text.len())]
            );
        }
        assert!(
            !text.contains("&nbsp;") && !text.contains("&#"),
            "{name}: raw references"
        );
        let source = String::from_utf8_lossy(&html);
        let hidden = hidden_only_values(&source);
        if name.contains("ixbrl") {
            assert!(
                !hidden.is_empty(),
                "{name}: expected hidden inline-XBRL values"
            );
        }
        eprintln!("{name}: {} hidden-only values checked", hidden.len());
        for value in hidden {
            assert!(
                !text.contains(&value),
                "{name}: hidden value {value:?} leaked"
            );
        }
        // Sections in document order, not overlapping.
        let sections = find_sections(text, form);
        let mut found: Vec<_> = sections.iter().filter(|s| s.is_found()).collect();
        assert!(found.len() >= 4, "{name}: only {} sections", found.len());
        found.sort_by_key(|s| s.start);
        for pair in found.windows(2) {
            assert!(
                pair[0].end <= pair[1].start,
                "{name}: {} overlaps {}",
                pair[0].id,
                pair[1].id
            );
        }
    }
}

#[test]
fn ten_k_main_items_are_found_after_the_table_of_contents() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    for (path, form) in documents(&dir) {
        if form != FormKind::TenK {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = html_to_text(&std::fs::read(&path).expect("fixture")).text;
        let sections = find_sections(&text, form);
        for id in ["1", "7", "8"] {
            let s = sections.iter().find(|s| s.id == id).unwrap();
            assert!(s.is_found(), "{name}: item {id} missing");
            // The body is the item's text, not the next contents line.
            let body = s.body(&text);
            assert!(body.len() >= 100, "{name}: item {id} body only {:?}", body);
            assert!(
                !body.trim_start().to_ascii_lowercase().starts_with("item "),
                "{name}: item {id} body starts with another item"
            );
        }
        let exhibits = sections.iter().find(|s| s.id == "15").unwrap();
        // 1990s 10-Ks list exhibits under Item 14.
        assert_eq!(
            exhibits.is_found(),
            !name.starts_with("medicis"),
            "{name}: item 15"
        );
        let risk = sections.iter().find(|s| s.id == "1A").unwrap();
        if name.starts_with("medicis") {
            assert_eq!(
                risk.status,
                SectionStatus::Absent,
                "1A did not exist in 1999"
            );
        } else {
            assert!(risk.is_found(), "{name}: 1A missing");
        }
    }
}

#[test]
fn budget_fitting_keeps_item_7_within_budget() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let estimator = TokenEstimator::default();
    for (path, form) in documents(&dir) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = html_to_text(&std::fs::read(&path).expect("fixture")).text;
        let sections = find_sections(&text, form);
        let total = estimator.estimate(&text);
        for budget in [2_000u64, total / 4, total * 3 / 4] {
            let fitted = fit_to_budget(&text, form, &sections, budget, &estimator);
            assert!(
                fitted.tokens <= budget,
                "{name}: {} > {budget}",
                fitted.tokens
            );
            assert_eq!(fitted.tokens, estimator.estimate(&fitted.text));
            assert!(fitted.was_cut);
            let first = if form == FormKind::TenK { "7" } else { "5" };
            assert!(
                fitted.kept.iter().any(|k| k == first),
                "{name} @ {budget}: kept {:?}",
                fitted.kept
            );
            assert!(fitted.text.contains("omitted to fit the token budget"));
        }
    }
}

fn year_value(figure: &Option<fintel_filing::Figure>) -> String {
    figure
        .as_ref()
        .map(|f| f.value.to_string())
        .unwrap_or_default()
}

#[test]
fn apple_key_financials() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let html = std::fs::read(dir.join("sec/10k/aapl-10k-2024-11-01.ixbrl.htm")).expect("fixture");
    let facts = extract_facts(&html);
    assert!(facts.len() > 500, "{} facts", facts.len());
    assert!(facts
        .iter()
        .all(|f| !matches!(f.value, FactValue::Unreadable(_)) || f.concept.starts_with("dei:")));
    let key = key_financials(&facts);
    assert_eq!(key.document_type.as_deref(), Some("10-K"));
    assert_eq!(key.fiscal_year_focus.as_deref(), Some("2024"));
    assert_eq!(key.period_end_date.as_deref(), Some("September 28, 2024"));
    let year = &key.years[0];
    assert_eq!(year.period_end, "2024-09-28");
    assert_eq!(year_value(&year.revenue), "391035000000");
    assert_eq!(year_value(&year.net_income), "93736000000");
    assert_eq!(year_value(&year.eps_diluted), "6.08");
    assert_eq!(year_value(&year.eps_basic), "6.11");
    assert_eq!(year_value(&year.total_assets), "364980000000");
    assert_eq!(year_value(&year.total_liabilities), "308030000000");
    assert_eq!(year_value(&year.shareholders_equity), "56950000000");
    assert_eq!(year_value(&year.operating_cash_flow), "118254000000");
    assert!(year.shares_outstanding.is_some());
    assert_eq!(key.years[1].period_end, "2023-09-30");
    assert_eq!(year_value(&key.years[1].revenue), "383285000000");
}

#[test]
fn coca_cola_key_financials() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let html = std::fs::read(dir.join("sec/10k/ko-10k-2025-02-20.ixbrl.htm")).expect("fixture");
    let key = key_financials(&extract_facts(&html));
    assert_eq!(key.document_type.as_deref(), Some("10-K"));
    let year = &key.years[0];
    assert_eq!(year.period_end, "2024-12-31");
    assert_eq!(year_value(&year.revenue), "47061000000");
    assert_eq!(year.revenue.as_ref().unwrap().concept, "us-gaap:Revenues");
    assert!(year.net_income.is_some() && year.total_assets.is_some());
}

#[test]
fn documents_without_inline_xbrl_have_no_facts() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let html = std::fs::read(dir.join("sec/10k/medicis-10k-1999-0000950153-99-001234.htm"))
        .expect("fixture");
    let facts = extract_facts(&html);
    assert!(facts.is_empty());
    assert!(key_financials(&facts).years.is_empty());
}
