//! One call that does what `fintel text FILE [--section ID] [--budget TOKENS] [--facts]`
//! needs, with a serialisable result for `--json`.

use serde::{Deserialize, Serialize};

use crate::{
    extract_facts, find_sections, fit_to_budget, html_to_text, key_financials, Cut, Fact,
    FilingError, FormKind, KeyFinancials, Section, SectionStatus, TokenEstimator,
};

/// What to produce from a document.
#[derive(Debug, Clone, Default)]
pub struct TextOptions {
    /// The form; detected from the cover page when `None`.
    pub form: Option<FormKind>,
    /// Only this item ("7", "1A", "Item 18").
    pub section: Option<String>,
    /// Fit the output into this many tokens.
    pub budget_tokens: Option<u64>,
    /// Also extract inline-XBRL facts and key financials.
    pub facts: bool,
    pub estimator: TokenEstimator,
}

/// The result of [`text_report`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextReport {
    pub form: FormKind,
    pub plain_text_source: bool,
    /// The text to print: the whole document, or the chosen section, fitted if a budget was set.
    pub text: String,
    /// Estimated tokens of `text`.
    pub tokens: u64,
    /// Estimated tokens of the whole converted document.
    pub document_tokens: u64,
    /// Every item of the form, found or absent (offsets refer to the whole document's text).
    pub sections: Vec<Section>,
    /// Set when a budget was given: whether and what was cut.
    pub was_cut: Option<bool>,
    pub cut: Vec<Cut>,
    pub facts: Option<Vec<Fact>>,
    pub key_financials: Option<KeyFinancials>,
}

/// Converts a document and applies the options. Errors: an unknown item id, or an item the
/// document does not have.
pub fn text_report(html: &[u8], options: &TextOptions) -> Result<TextReport, FilingError> {
    let converted = html_to_text(html);
    let form = options
        .form
        .unwrap_or_else(|| FormKind::detect(&converted.text));
    let sections = find_sections(&converted.text, form);
    let document_tokens = options.estimator.estimate(&converted.text);

    let selected: &str = match &options.section {
        None => &converted.text,
        Some(id) => {
            let spec = form.item(id)?;
            let section = sections
                .iter()
                .find(|s| s.id == spec.id && s.status != SectionStatus::Absent)
                .ok_or_else(|| FilingError::SectionNotFound {
                    item: spec.id.to_string(),
                    form: form.as_str(),
                })?;
            section.text(&converted.text)
        }
    };

    let (text, was_cut, cut) = match options.budget_tokens {
        None => (selected.to_string(), None, Vec::new()),
        Some(budget) => {
            // A single section is cut from its head; a whole document by section priority.
            let usable: &[Section] = if options.section.is_some() {
                &[]
            } else {
                &sections
            };
            let fitted = fit_to_budget(selected, form, usable, budget, &options.estimator);
            (fitted.text, Some(fitted.was_cut), fitted.cut)
        }
    };

    let (facts, key) = if options.facts {
        let facts = extract_facts(html);
        let key = key_financials(&facts);
        (Some(facts), Some(key))
    } else {
        (None, None)
    };

    Ok(TextReport {
        form,
        plain_text_source: converted.plain_text_source,
        tokens: options.estimator.estimate(&text),
        text,
        document_tokens,
        sections,
        was_cut,
        cut,
        facts,
        key_financials: key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &[u8] = b"<p>FORM 10-K</p><p>Item 1. Business</p><p>We sell.</p>\
        <p>Item 7. Management's Discussion and Analysis</p><p>Sales grew.</p>";

    #[test]
    fn whole_document_and_one_section() {
        let whole = text_report(DOC, &TextOptions::default()).unwrap();
        assert_eq!(whole.form, FormKind::TenK);
        assert!(whole.text.contains("We sell.") && whole.text.contains("Sales grew."));
        let options = TextOptions {
            section: Some("7".into()),
            ..TextOptions::default()
        };
        let seven = text_report(DOC, &options).unwrap();
        assert_eq!(
            seven.text,
            "Item 7. Management's Discussion and Analysis\nSales grew."
        );
        let json = serde_json::to_string(&seven).unwrap();
        assert!(json.contains("\"form\":\"10-K\""));
    }

    #[test]
    fn bad_section_requests_are_clear_errors() {
        let options = TextOptions {
            section: Some("7Z".into()),
            ..TextOptions::default()
        };
        let err = text_report(DOC, &options).unwrap_err();
        assert!(matches!(err, FilingError::UnknownItem { .. }), "{err}");
        let options = TextOptions {
            section: Some("1A".into()),
            ..TextOptions::default()
        };
        let err = text_report(DOC, &options).unwrap_err();
        assert_eq!(
            err,
            FilingError::SectionNotFound {
                item: "1A".into(),
                form: "10-K"
            }
        );
        assert!(err.to_string().contains("not found"));
    }

    #[test]
    fn budget_applies_to_the_selected_text() {
        let options = TextOptions {
            budget_tokens: Some(8),
            ..TextOptions::default()
        };
        let report = text_report(DOC, &options).unwrap();
        assert_eq!(report.was_cut, Some(true));
        assert!(report.tokens <= 8);
    }
}
