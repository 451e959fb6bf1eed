//! Two filings compared section by section: the compared items of each form, found with
//! `fintel_filing`'s section finder, and the whole text.

use std::collections::BTreeMap;

use fintel_filing::{find_sections, FormKind, Section, SectionStatus};
use serde::{Deserialize, Serialize};

use crate::compare::{compare_texts, Comparison};
use crate::tokens::unwrap_plain_text;
use crate::ChangesError;

/// The 10-K items compared: business, risk factors, legal proceedings, MD&A, market risk,
/// controls and procedures.
pub const TEN_K_SECTIONS: &[&str] = &["1", "1A", "3", "7", "7A", "9A"];
/// The 20-F items closest to them: key information (with risk factors), the company, operating
/// and financial review, market risk, controls and procedures.
pub const TWENTY_F_SECTIONS: &[&str] = &["3", "4", "5", "11", "15"];

/// The compared items of a form.
pub fn compared_sections(form: FormKind) -> &'static [&'static str] {
    match form {
        FormKind::TenK => TEN_K_SECTIONS,
        FormKind::TwentyF => TWENTY_F_SECTIONS,
    }
}

/// One filing's clean text, ready to compare.
#[derive(Debug, Clone)]
pub struct FilingDoc {
    text: String,
    form: FormKind,
    sections: Vec<Section>,
}

impl FilingDoc {
    /// `text` as `fintel_filing::html_to_text` made it; `plain_text_source` as it reported
    /// (hard-wrapped lines are then joined so a wrapped sentence stays one sentence). The form
    /// is detected from the cover page unless given.
    pub fn new(text: &str, plain_text_source: bool, form: Option<FormKind>) -> FilingDoc {
        let form = form.unwrap_or_else(|| FormKind::detect(text));
        let sections = find_sections(text, form);
        let text = if plain_text_source {
            unwrap_plain_text(text)
        } else {
            text.to_string()
        };
        FilingDoc {
            text,
            form,
            sections,
        }
    }

    pub fn form(&self) -> FormKind {
        self.form
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The body of item `id` when the document holds its own text there.
    pub fn section_body(&self, id: &str) -> Option<&str> {
        self.section(id)
            .filter(|s| s.status == SectionStatus::Present)
            .map(|s| s.body(&self.text))
    }

    fn section(&self, id: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.id == id)
    }

    fn state(&self, id: &str) -> SectionState {
        match self.section(id).map(|s| &s.status) {
            Some(SectionStatus::Present) => SectionState::Present,
            Some(SectionStatus::IncorporatedByReference { .. }) => {
                SectionState::IncorporatedByReference
            }
            Some(SectionStatus::NotApplicable) => SectionState::NotApplicable,
            Some(SectionStatus::Absent) | None => SectionState::Absent,
        }
    }
}

/// What a filing has for a compared item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionState {
    Present,
    IncorporatedByReference,
    NotApplicable,
    Absent,
}

/// One item compared: both states, and the measures when both filings hold the item's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionChange {
    pub title: String,
    pub old: SectionState,
    pub new: SectionState,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
}

/// Two filings compared: the whole text and each compared item (keyed by item id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilingChanges {
    pub form_old: FormKind,
    pub form_new: FormKind,
    pub whole: Comparison,
    /// Empty when the two filings are of different forms (their items do not correspond).
    pub sections: BTreeMap<String, SectionChange>,
}

/// Compares two filings, every compared item of their form.
pub fn compare_filings(old: &FilingDoc, new: &FilingDoc) -> FilingChanges {
    let mut sections = BTreeMap::new();
    if old.form == new.form {
        for &id in compared_sections(old.form) {
            sections.insert(id.to_string(), compare_section(old, new, id));
        }
    }
    FilingChanges {
        form_old: old.form,
        form_new: new.form,
        whole: compare_texts(&old.text, &new.text),
        sections,
    }
}

/// Compares one item of two filings of the same form. The id is checked against the form
/// (any item of the form, not only the compared ones).
pub fn compare_one_section(
    old: &FilingDoc,
    new: &FilingDoc,
    id: &str,
) -> Result<SectionChange, ChangesError> {
    if old.form != new.form {
        return Err(ChangesError::FormsDiffer {
            old: old.form.as_str(),
            new: new.form.as_str(),
        });
    }
    let spec = old.form.item(id)?;
    Ok(compare_section(old, new, spec.id))
}

fn compare_section(old: &FilingDoc, new: &FilingDoc, id: &str) -> SectionChange {
    let title = old
        .form
        .item(id)
        .map(|spec| spec.title.to_string())
        .unwrap_or_default();
    let comparison = match (old.section_body(id), new.section_body(id)) {
        (Some(a), Some(b)) => Some(compare_texts(a, b)),
        _ => None,
    };
    SectionChange {
        title,
        old: old.state(id),
        new: new.state(id),
        comparison,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ten_k(risk: &str, mdna: &str) -> String {
        format!(
            "FORM 10-K\nItem 1. Business\nWe make widgets for industry.\nItem 1A. Risk Factors\n\
             {risk}\nItem 1B. Unresolved Staff Comments\nNone.\nItem 3. Legal Proceedings\n\
             There are no material legal proceedings.\n\
             Item 7. Management's Discussion and Analysis of Financial Condition and Results of \
             Operations\n{mdna}\nItem 8. Financial Statements and Supplementary Data\nSee below.\n"
        )
    }

    #[test]
    fn sections_are_compared_where_both_hold_text() {
        let old = FilingDoc::new(
            &ten_k("Competition is intense.", "Sales rose."),
            false,
            None,
        );
        let new = FilingDoc::new(
            &ten_k(
                "Competition is intense. Tariffs may hurt margins.",
                "Sales rose.",
            ),
            false,
            None,
        );
        let changes = compare_filings(&old, &new);
        assert_eq!(changes.form_old, FormKind::TenK);
        let keys: Vec<&str> = changes.sections.keys().map(String::as_str).collect();
        assert_eq!(keys, ["1", "1A", "3", "7", "7A", "9A"]);
        let risk = &changes.sections["1A"];
        let c = risk.comparison.as_ref().expect("1A compared");
        assert_eq!(c.added, vec!["Tariffs may hurt margins."]);
        assert!(c.cosine < 1.0);
        let mdna = changes.sections["7"]
            .comparison
            .as_ref()
            .expect("7 compared");
        assert_eq!(mdna.cosine, 1.0);
        assert_eq!(changes.sections["7A"].old, SectionState::Absent);
        assert!(changes.sections["7A"].comparison.is_none());
        let json = serde_json::to_value(&changes).expect("serialises");
        assert_eq!(json["sections"]["1A"]["added_count"], 1);
        assert!(json["sections"]["7A"].get("cosine").is_none());
    }

    #[test]
    fn one_section_checks_the_item_id() {
        let doc = FilingDoc::new(&ten_k("Risk.", "Sales."), false, None);
        let err = compare_one_section(&doc, &doc, "99")
            .unwrap_err()
            .to_string();
        assert!(err.contains("valid items are"), "{err}");
        assert!(compare_one_section(&doc, &doc, "1a").is_ok());
    }
}
