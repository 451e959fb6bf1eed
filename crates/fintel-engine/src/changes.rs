//! The `changes` analysis, which asks no model: each fiscal year's filing compared with the
//! previous fiscal year's by `fintel_changes`. The pure parts live here, table-tested: where the
//! previous year's filing comes from (the batch, else a resolution of that one year), the
//! reason a year is skipped, the pair of accessions its result is keyed by, and the stored
//! object. `runner/changes.rs` carries them out.

use fintel_changes::{compare_filings, FilingChanges, FilingDoc};
use fintel_filing::FormKind;
use fintel_store::{BatchYear, FilingRef, YearPlan};
use serde_json::{json, Value};

use crate::ports::FilingText;

/// The model label of `changes` results: computed here, by no model.
pub const MODEL_LABEL: &str = fintel_store::no_model::CHANGES;

/// Where the previous fiscal year's filing comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Previous {
    /// The batch resolved it.
    Use(FilingRef),
    /// The batch does not hold the year: resolve that one year.
    Resolve,
    /// There is none: skip the year with this reason.
    Skip(String),
}

/// Decides from what the batch holds for the previous fiscal year.
pub fn previous_in_batch(fiscal_year: i32, held: Option<BatchYear>) -> Previous {
    match held {
        Some(BatchYear::Filing(filing)) => Previous::Use(filing),
        Some(BatchYear::NoFiling(why)) => Previous::Skip(skip_reason(fiscal_year, &why)),
        None => Previous::Resolve,
    }
}

/// Decides from a resolution of the previous fiscal year alone (`Err` in: SEC's answer that
/// there is nothing to resolve, such as a company with no earlier annual report): the filing,
/// or the reason to skip the year.
pub fn previous_resolved(
    fiscal_year: i32,
    resolved: Result<&[YearPlan], &str>,
) -> Result<FilingRef, String> {
    let previous = fiscal_year - 1;
    let none = || format!("no annual report for FY{previous}");
    match resolved {
        Ok(plans) => match plans.iter().find(|p| p.fiscal_year == previous) {
            Some(YearPlan {
                filing: Some(filing),
                ..
            }) => Ok(filing.clone()),
            Some(plan) => Err(skip_reason(
                fiscal_year,
                &plan.skip_reason.clone().unwrap_or_else(none),
            )),
            None => Err(skip_reason(fiscal_year, &none())),
        },
        Err(why) => Err(skip_reason(fiscal_year, why)),
    }
}

/// Why a year cannot be compared, saying what the previous year lacks.
pub fn skip_reason(fiscal_year: i32, why: &str) -> String {
    format!(
        "nothing to compare FY{fiscal_year} with: the previous fiscal year FY{} has no filing ({why})",
        fiscal_year - 1
    )
}

/// The accession part of a `changes` result's key: both filings, the older first, so a
/// result is found again only for the same pair.
pub fn pair_accessions(previous: &FilingRef, current: &FilingRef) -> String {
    format!("{}+{}", previous.accession, current.accession)
}

/// Compares the two texts (CPU-bound: call it off the async threads).
pub fn compare(
    previous: &FilingText,
    previous_form: &str,
    current: &FilingText,
    current_form: &str,
) -> FilingChanges {
    let doc = |text: &FilingText, form: &str| {
        FilingDoc::new(
            &text.text,
            text.plain_text_source,
            FormKind::parse(form).ok(),
        )
    };
    compare_filings(&doc(previous, previous_form), &doc(current, current_form))
}

/// The stored object (the built-in `changes` schema): both filings and the comparison.
pub fn result_json(
    fiscal_year: i32,
    previous: &FilingRef,
    current: &FilingRef,
    changes: &FilingChanges,
) -> Value {
    json!({
        "previous_fiscal_year": fiscal_year - 1,
        "previous_accession": previous.accession,
        "accession": current.accession,
        "form_old": changes.form_old,
        "form_new": changes.form_new,
        "whole": changes.whole,
        "sections": changes.sections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filing(accession: &str) -> FilingRef {
        FilingRef {
            accession: accession.into(),
            form: "10-K".into(),
            period: Some("2021-12-31".into()),
            filed: Some("2022-02-20".into()),
            document_url: format!("https://www.sec.gov/Archives/{accession}.htm"),
            transition: false,
        }
    }

    fn plan(year: i32, filing: Option<FilingRef>, skip: Option<&str>) -> YearPlan {
        YearPlan {
            fiscal_year: year,
            filing,
            skip_reason: skip.map(str::to_string),
        }
    }

    #[test]
    fn the_previous_year_comes_from_the_batch_else_one_resolution() {
        let a = filing("0000000001-21-000001");
        let cases: Vec<(&str, Option<BatchYear>, Previous)> = vec![
            (
                "in the batch with a filing",
                Some(BatchYear::Filing(a.clone())),
                Previous::Use(a.clone()),
            ),
            (
                "in the batch without one",
                Some(BatchYear::NoFiling("no annual report for FY2020".into())),
                Previous::Skip(
                    "nothing to compare FY2021 with: the previous fiscal year FY2020 has no \
                     filing (no annual report for FY2020)"
                        .into(),
                ),
            ),
            ("not in the batch", None, Previous::Resolve),
        ];
        for (name, held, want) in cases {
            assert_eq!(previous_in_batch(2021, held), want, "{name}");
        }
    }

    #[test]
    fn a_resolution_gives_the_filing_or_the_reason_there_is_none() {
        let a = filing("0000000001-21-000001");
        let found = [plan(2020, Some(a.clone()), None)];
        let missing = [plan(2020, None, Some("filed no 10-K for FY2020"))];
        let other_year = [plan(2019, Some(a.clone()), None)];
        type Case<'a> = (
            &'a str,
            Result<&'a [YearPlan], &'a str>,
            Result<FilingRef, String>,
        );
        let cases: Vec<Case> = vec![
            ("found", Ok(&found), Ok(a.clone())),
            (
                "resolved without a filing",
                Ok(&missing),
                Err(skip_reason(2021, "filed no 10-K for FY2020")),
            ),
            (
                "another year answered",
                Ok(&other_year),
                Err(skip_reason(2021, "no annual report for FY2020")),
            ),
            (
                "SEC has nothing",
                Err("no annual report (10-K, 20-F, 40-F) filed by CIK 1"),
                Err(skip_reason(
                    2021,
                    "no annual report (10-K, 20-F, 40-F) filed by CIK 1",
                )),
            ),
        ];
        for (name, resolved, want) in cases {
            assert_eq!(previous_resolved(2021, resolved), want, "{name}");
        }
        assert!(skip_reason(2021, "x").contains("FY2020"));
    }

    #[test]
    fn the_key_names_both_filings_older_first() {
        let old = filing("0000000001-21-000001");
        let new = filing("0000000001-22-000001");
        assert_eq!(
            pair_accessions(&old, &new),
            "0000000001-21-000001+0000000001-22-000001"
        );
    }

    #[test]
    fn the_result_has_the_schema_fields_and_each_section() {
        let text = |risk: &str| FilingText {
            text: format!(
                "FORM 10-K\nItem 1. Business\nWe make widgets.\nItem 1A. Risk Factors\n{risk}\n\
                 Item 1B. Unresolved Staff Comments\nNone.\n"
            ),
            plain_text_source: false,
            url: String::new(),
            sha256: String::new(),
        };
        let old = filing("0000000001-21-000001");
        let new = filing("0000000001-22-000001");
        let changes = compare(
            &text("Competition is intense."),
            "10-K",
            &text("Competition is intense. Tariffs may hurt our margins."),
            "10-K",
        );
        let v = result_json(2022, &old, &new, &changes);
        assert_eq!(v["previous_fiscal_year"], 2021);
        assert_eq!(v["previous_accession"], "0000000001-21-000001");
        assert_eq!(v["form_old"], "10-K");
        let risk = &v["sections"]["1A"];
        assert!(risk["cosine"].as_f64().unwrap() < 1.0);
        assert_eq!(risk["added_count"], 1);
        assert_eq!(risk["added"][0], "Tariffs may hurt our margins.");
        assert_eq!(v["sections"]["1"]["cosine"], 1.0);
        // An item neither year has is listed without measures.
        assert!(v["sections"]["7"].get("cosine").is_none());
        assert_eq!(v["sections"]["7"]["old"], "absent");
    }
}
