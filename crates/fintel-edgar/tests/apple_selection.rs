//! Fiscal-year selection on Apple's real submissions pages must reproduce
//! `expected/apple-annual-reports.tsv` row for row.

use std::collections::HashSet;
use std::path::Path;

use fintel_edgar::select::annual_form;
use fintel_edgar::submissions::{parse_first_page, parse_older_page};
use fintel_edgar::{select_annual_reports, Filing, SelectOptions, YearRequest, YearSelection};
use jiff::civil::{date, Date};

#[derive(Debug)]
struct ExpectedRow {
    fiscal_year: i32,
    form: String,
    accession: String,
    period: Date,
    filed: Date,
    primary_document: String,
    page: String,
    amendments: Vec<String>,
}

fn expected_rows(dir: &Path) -> Vec<ExpectedRow> {
    let text = std::fs::read_to_string(dir.join("expected/apple-annual-reports.tsv")).unwrap();
    let mut rows = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.starts_with("fiscal_year") || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(cols.len() >= 7, "bad expected row {line:?}");
        rows.push(ExpectedRow {
            fiscal_year: cols[0].parse().unwrap(),
            form: cols[1].to_string(),
            accession: cols[2].to_string(),
            period: cols[3].parse().unwrap(),
            filed: cols[4].parse().unwrap(),
            primary_document: cols[5].to_string(),
            page: cols[6].to_string(),
            amendments: cols
                .get(7)
                .map(|a| {
                    a.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    assert_eq!(rows.len(), 29, "1994..=2022");
    rows
}

struct Pages {
    recent: Vec<Filing>,
    older: Vec<Filing>,
}

fn pages(dir: &Path) -> Pages {
    let first = std::fs::read(dir.join("sec/api/submissions/CIK0000320193.json")).unwrap();
    let older =
        std::fs::read(dir.join("sec/api/submissions/CIK0000320193-submissions-001.json")).unwrap();
    Pages {
        recent: parse_first_page(&first, "recent")
            .unwrap()
            .submissions
            .filings,
        older: parse_older_page(&older, "001").unwrap(),
    }
}

fn options() -> SelectOptions {
    SelectOptions {
        fiscal_year_end: Some((9, 30)),
        ..SelectOptions::default()
    }
}

fn check_against(selections: &[YearSelection], expected: &[ExpectedRow], pages: &Pages) {
    let years: Vec<i32> = selections.iter().map(|s| s.fiscal_year).collect();
    let expected_years: Vec<i32> = expected.iter().map(|e| e.fiscal_year).collect();
    assert_eq!(years, expected_years);
    let recent: HashSet<&str> = pages
        .recent
        .iter()
        .map(|f| f.accession_number.as_str())
        .collect();
    for (selection, row) in selections.iter().zip(expected) {
        let pick = selection
            .pick
            .as_ref()
            .unwrap_or_else(|| panic!("FY{} not picked: {:?}", row.fiscal_year, selection));
        assert_eq!(pick.filing.form, row.form, "FY{}", row.fiscal_year);
        assert_eq!(pick.filing.accession_number, row.accession);
        assert_eq!(pick.filing.report_date, Some(row.period));
        assert_eq!(pick.filing.filing_date, row.filed);
        assert_eq!(pick.filing.primary_document, row.primary_document);
        assert!(!pick.transition && !pick.amendment && !pick.period_estimated);
        assert_eq!(
            selection.amendments_not_picked, row.amendments,
            "FY{}",
            row.fiscal_year
        );
        assert!(selection.skip_reason.is_none());
        let page = if recent.contains(row.accession.as_str()) {
            "recent"
        } else {
            "submissions-001"
        };
        assert_eq!(page, row.page, "FY{}", row.fiscal_year);
    }
}

fn both(pages: &Pages) -> Vec<Filing> {
    pages.recent.iter().chain(&pages.older).cloned().collect()
}

#[test]
fn latest_ten_and_twenty_years_as_of_2023_08_08() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let expected = expected_rows(&dir);
    let pages = pages(&dir);
    let filings = both(&pages);
    let as_of = date(2023, 8, 8);
    for (years, first) in [(10u32, 2013), (20, 2003)] {
        let picks =
            select_annual_reports(&filings, &YearRequest::Latest { years, as_of }, &options());
        let rows: Vec<ExpectedRow> = expected_rows(&dir)
            .into_iter()
            .filter(|r| r.fiscal_year >= first)
            .collect();
        check_against(&picks, &rows, &pages);
    }
    // Every year of both pages, explicitly.
    let all = select_annual_reports(
        &filings,
        &YearRequest::Explicit((1994..=2022).collect()),
        &options(),
    );
    check_against(&all, &expected, &pages);
    // The same without knowing the fiscal-year end (it is only used for missing periods).
    let all = select_annual_reports(
        &filings,
        &YearRequest::Explicit((1994..=2022).collect()),
        &SelectOptions::default(),
    );
    check_against(&all, &expected, &pages);
}

#[test]
fn explicit_1997_to_2001_come_from_page_001_only() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let pages = pages(&dir);
    let request = YearRequest::Explicit((1997..=2001).collect());
    let expected: Vec<ExpectedRow> = expected_rows(&dir)
        .into_iter()
        .filter(|r| (1997..=2001).contains(&r.fiscal_year))
        .collect();
    let picks = select_annual_reports(&both(&pages), &request, &options());
    check_against(&picks, &expected, &pages);
    // 1997 has an amendment that is listed, not picked; 1998 and 2001 are 10-K405s.
    assert_eq!(picks[0].amendments_not_picked, vec!["0001047469-98-001822"]);

    // Without page 001 these years are missing, each with its reason.
    let picks = select_annual_reports(&pages.recent, &request, &options());
    assert_eq!(picks.len(), 5);
    for p in &picks {
        assert!(p.pick.is_none());
        assert_eq!(
            p.skip_reason.as_deref(),
            Some(format!("no annual report for FY{}", p.fiscal_year).as_str())
        );
    }
    // And the 20-year window keeps its 20 years, the older ten skipped, not widened.
    let picks = select_annual_reports(
        &pages.recent,
        &YearRequest::Latest {
            years: 20,
            as_of: date(2023, 8, 8),
        },
        &options(),
    );
    assert_eq!(picks.len(), 20);
    assert_eq!(picks[0].fiscal_year, 2003);
    assert_eq!(picks.iter().filter(|p| p.pick.is_none()).count(), 10);
    assert!(picks[10..].iter().all(|p| p.pick.is_some()));
}

#[test]
fn amendments_and_other_forms_are_never_picked_by_default() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let pages = pages(&dir);
    let filings = both(&pages);
    let picks = select_annual_reports(
        &filings,
        &YearRequest::Explicit((1990..=2024).collect()),
        &SelectOptions::default(),
    );
    let picked: Vec<&Filing> = picks
        .iter()
        .filter_map(|p| p.pick.as_ref())
        .map(|p| &p.filing)
        .collect();
    assert_eq!(picked.len(), 29);
    for f in picked {
        let form = annual_form(&f.form).expect("annual form");
        assert!(!form.amendment, "{} picked", f.accession_number);
    }
    // The fixtures do contain forms that must not be taken for annual reports.
    assert!(filings.iter().any(|f| f.form == "NT 10-K"));
    assert!(filings.iter().any(|f| f.form == "10-K/A"));

    // With amendments included, FY2009 and FY1997 take their 10-K/A.
    let with = SelectOptions {
        include_amendments: true,
        ..options()
    };
    let picks = select_annual_reports(
        &filings,
        &YearRequest::Explicit(vec![1997, 2009, 2010]),
        &with,
    );
    assert_eq!(
        picks[0].pick.as_ref().unwrap().filing.accession_number,
        "0001047469-98-001822"
    );
    assert_eq!(
        picks[1].pick.as_ref().unwrap().filing.accession_number,
        "0001193125-10-012091"
    );
    assert!(picks[1].pick.as_ref().unwrap().amendment);
    assert_eq!(picks[1].originals_not_picked, vec!["0001193125-09-214859"]);
    assert_eq!(
        picks[2].pick.as_ref().unwrap().filing.accession_number,
        "0001193125-10-238044"
    );
}

#[test]
fn as_of_limits_what_is_seen() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    let filings = both(&pages(&dir));
    // The day before the FY2022 10-K was filed, the window ends at FY2021.
    let picks = select_annual_reports(
        &filings,
        &YearRequest::Latest {
            years: 3,
            as_of: date(2022, 10, 27),
        },
        &options(),
    );
    assert_eq!(
        picks.iter().map(|p| p.fiscal_year).collect::<Vec<_>>(),
        vec![2019, 2020, 2021]
    );
    // Long before Apple's first EDGAR 10-K: nothing to anchor on.
    assert!(select_annual_reports(
        &filings,
        &YearRequest::Latest {
            years: 3,
            as_of: date(1994, 1, 1)
        },
        &options()
    )
    .is_empty());
}
