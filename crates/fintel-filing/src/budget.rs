//! Token estimates and fitting a document into a model's input budget.
//!
//! The estimate is characters divided by a chars-per-token ratio: 4.0 by default, which is
//! what English prose in SEC filings comes to with current LLM tokenizers (tables of numbers
//! run denser, about 3). Calibrate it from a model's reported count with
//! [`TokenEstimator::calibrate`] and keep a margin in the budget you pass.
//!
//! When a document does not fit, whole item sections are kept in priority order, the last one
//! cut at a paragraph boundary, and a marker line stands wherever text was left out:
//! - 10-K: 7 (MD&A), 1A (risk factors), 1 (business), 8 (financial statements), 7A, then 5,
//!   2, 3, 9A, 1C, then the rest in document order;
//! - 20-F: 5 (operating review), 3 (key information, with 3.D risk factors), 4 (the company),
//!   18, then 11, 8, 6, 7, 10, 17, then the rest in document order.
//!
//! Without recognisable sections the head of the document is kept. The result is always
//! within the budget by the same estimator (a budget too small even for a marker yields an
//! empty text).

use serde::{Deserialize, Serialize};

use crate::{FilingError, FormKind, Section, SectionStatus};

/// Estimates tokens as characters / `chars_per_token`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TokenEstimator {
    pub chars_per_token: f64,
}

impl Default for TokenEstimator {
    fn default() -> Self {
        TokenEstimator {
            chars_per_token: 4.0,
        }
    }
}

impl TokenEstimator {
    /// An estimator with the given ratio (finite, above 0.5).
    pub fn new(chars_per_token: f64) -> Result<TokenEstimator, FilingError> {
        if chars_per_token.is_finite() && chars_per_token > 0.5 {
            Ok(TokenEstimator { chars_per_token })
        } else {
            Err(FilingError::InvalidRatio(chars_per_token))
        }
    }

    /// The ratio observed on a sample whose token count a model reported.
    pub fn calibrate(sample: &str, reported_tokens: u64) -> Result<TokenEstimator, FilingError> {
        let chars = sample.chars().count();
        if chars == 0 || reported_tokens == 0 {
            return Err(FilingError::EmptyCalibration);
        }
        TokenEstimator::new(chars as f64 / reported_tokens as f64)
    }

    /// Estimated tokens of `text` (rounded up).
    pub fn estimate(&self, text: &str) -> u64 {
        self.tokens_for_chars(text.chars().count())
    }

    fn tokens_for_chars(&self, chars: usize) -> u64 {
        (chars as f64 / self.chars_per_token).ceil() as u64
    }

    /// The most characters that stay within `tokens`.
    fn chars_for_tokens(&self, tokens: u64) -> usize {
        (tokens as f64 * self.chars_per_token).floor() as usize
    }
}

/// Estimated tokens of `text` with the default ratio (4 characters per token).
pub fn estimate_tokens(text: &str) -> u64 {
    TokenEstimator::default().estimate(text)
}

/// Which items are kept first when a document must be cut.
pub fn section_priority(form: FormKind) -> &'static [&'static str] {
    match form {
        FormKind::TenK => &["7", "1A", "1", "8", "7A", "5", "2", "3", "9A", "1C"],
        FormKind::TwentyF => &["5", "3", "4", "18", "11", "8", "6", "7", "10", "17"],
    }
}

/// A document fitted into a budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    /// The text to send.
    pub text: String,
    /// Ids of the sections kept (whole or truncated), in document order.
    pub kept: Vec<String>,
    /// What was left out.
    pub cut: Vec<Cut>,
    /// Estimated tokens of `text`.
    pub tokens: u64,
    /// Whether anything was left out.
    pub was_cut: bool,
}

/// Text left out of a fitted document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cut {
    /// The item cut, or `None` for text outside any item (cover page, the head-only fallback).
    pub item: Option<String>,
    /// Whether part of the item was kept.
    pub partly_kept: bool,
    /// Characters left out.
    pub omitted_chars: usize,
}

/// Fits `text` into `budget_tokens`; see the module documentation for the rules.
pub fn fit_to_budget(
    text: &str,
    form: FormKind,
    sections: &[Section],
    budget_tokens: u64,
    estimator: &TokenEstimator,
) -> Fitted {
    let tokens = estimator.estimate(text);
    if tokens <= budget_tokens {
        return Fitted {
            text: text.to_string(),
            kept: sections
                .iter()
                .filter(|s| s.is_found())
                .map(|s| s.id.clone())
                .collect(),
            cut: Vec::new(),
            tokens,
            was_cut: false,
        };
    }
    let mut found: Vec<&Section> = sections
        .iter()
        .filter(|s| s.status != SectionStatus::Absent && s.end > s.start && s.end <= text.len())
        .collect();
    found.sort_by_key(|s| s.start);
    let mut allowance = estimator.chars_for_tokens(budget_tokens);
    // Markers cost characters too: shrink the allowance until the assembled text fits.
    for _ in 0..32 {
        let fitted = if found.is_empty() {
            fit_head(text, allowance, estimator)
        } else {
            fit_sections(text, form, &found, allowance, estimator)
        };
        if fitted.tokens <= budget_tokens {
            return fitted;
        }
        let overflow = fitted.tokens - budget_tokens;
        let step = estimator.chars_for_tokens(overflow).max(16) + 64;
        if allowance <= step {
            break;
        }
        allowance -= step;
    }
    Fitted {
        text: String::new(),
        kept: Vec::new(),
        cut: vec![Cut {
            item: None,
            partly_kept: false,
            omitted_chars: text.chars().count(),
        }],
        tokens: 0,
        was_cut: true,
    }
}

/// The longest prefix of `text` with at most `max_chars` characters, ending at a paragraph
/// (line) boundary when one is in the second half of it, else at a sentence end or a space.
fn prefix_at_paragraph(text: &str, max_chars: usize) -> &str {
    let byte_limit = text
        .char_indices()
        .nth(max_chars)
        .map_or(text.len(), |(i, _)| i);
    let prefix = &text[..byte_limit];
    if byte_limit == text.len() {
        return prefix;
    }
    let half = prefix.len() / 2;
    if let Some(i) = prefix.rfind('\n').filter(|&i| i >= half) {
        return prefix[..i].trim_end();
    }
    if let Some(i) = prefix.rfind(". ").filter(|&i| i >= half) {
        return &prefix[..i + 1];
    }
    match prefix.rfind(' ') {
        Some(i) if i > 0 => &prefix[..i],
        _ => prefix,
    }
}

fn fit_head(text: &str, allowance: usize, estimator: &TokenEstimator) -> Fitted {
    let total = text.chars().count();
    let marker_estimate = 80;
    let head = prefix_at_paragraph(text, allowance.saturating_sub(marker_estimate));
    let omitted = total - head.chars().count();
    let mut out = head.to_string();
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&format!(
        "[... {omitted} characters omitted to fit the token budget ...]"
    ));
    Fitted {
        tokens: estimator.estimate(&out),
        text: out,
        kept: Vec::new(),
        cut: vec![Cut {
            item: None,
            partly_kept: !head.is_empty(),
            omitted_chars: omitted,
        }],
        was_cut: true,
    }
}

fn fit_sections(
    text: &str,
    form: FormKind,
    found: &[&Section],
    allowance: usize,
    estimator: &TokenEstimator,
) -> Fitted {
    let priority = section_priority(form);
    let mut order: Vec<&Section> = priority
        .iter()
        .filter_map(|id| found.iter().copied().find(|s| s.id == *id))
        .collect();
    order.extend(
        found
            .iter()
            .copied()
            .filter(|s| !priority.contains(&s.id.as_str())),
    );

    // Room for the marker lines, one per gap at most.
    let marker_reserve = 90 * (found.len() + 2);
    let mut remaining = allowance.saturating_sub(marker_reserve);
    // (section, kept text) for every kept section.
    let mut kept: Vec<(&Section, &str)> = Vec::new();
    for section in order {
        let whole = section.text(text);
        let chars = whole.chars().count() + 1;
        if chars <= remaining {
            remaining -= chars;
            kept.push((section, whole));
            continue;
        }
        let part = prefix_at_paragraph(whole, remaining);
        // A heading alone is not worth keeping.
        if part.len() > section.body_start - section.start {
            kept.push((section, part));
        }
        break;
    }
    kept.sort_by_key(|(s, _)| s.start);

    let mut out = String::new();
    let mut cut = Vec::new();
    let mut cursor = 0usize;
    let mut omitted_items: Vec<&str> = Vec::new();
    let flush_gap = |out: &mut String, omitted_items: &mut Vec<&str>, gap_chars: usize| {
        if gap_chars == 0 && omitted_items.is_empty() {
            return;
        }
        let what = if omitted_items.is_empty() {
            "other text".to_string()
        } else {
            format!("Item {}", omitted_items.join(", Item "))
        };
        out.push_str(&format!(
            "[... omitted to fit the token budget: {what} ({gap_chars} characters) ...]\n"
        ));
        omitted_items.clear();
    };
    for (section, part) in &kept {
        // Everything between the previous kept section and this one is left out.
        let gap = text.get(cursor..section.start).unwrap_or_default();
        for skipped in found
            .iter()
            .filter(|s| s.start >= cursor && s.start < section.start)
        {
            omitted_items.push(&skipped.id);
            cut.push(Cut {
                item: Some(skipped.id.clone()),
                partly_kept: false,
                omitted_chars: skipped.text(text).chars().count(),
            });
        }
        flush_gap(&mut out, &mut omitted_items, gap.trim().chars().count());
        out.push_str(part);
        out.push('\n');
        let whole = section.text(text);
        if part.len() < whole.len() {
            let omitted = whole[part.len()..].chars().count();
            out.push_str(&format!(
                "[... rest of Item {} omitted to fit the token budget ({omitted} characters) ...]\n",
                section.id
            ));
            cut.push(Cut {
                item: Some(section.id.clone()),
                partly_kept: true,
                omitted_chars: omitted,
            });
        }
        cursor = section.end;
    }
    for skipped in found.iter().filter(|s| s.start >= cursor) {
        omitted_items.push(&skipped.id);
        cut.push(Cut {
            item: Some(skipped.id.clone()),
            partly_kept: false,
            omitted_chars: skipped.text(text).chars().count(),
        });
    }
    let tail = text.get(cursor..).unwrap_or_default();
    flush_gap(&mut out, &mut omitted_items, tail.trim().chars().count());
    while out.ends_with('\n') {
        out.pop();
    }
    Fitted {
        tokens: estimator.estimate(&out),
        text: out,
        kept: kept.iter().map(|(s, _)| s.id.clone()).collect(),
        cut,
        was_cut: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::find_sections;

    fn document() -> String {
        let mut doc = String::from("FORM 10-K\nCover page text.\n");
        for (id, title, paragraphs) in [
            ("1", "Business", 20),
            ("1A", "Risk Factors", 40),
            ("2", "Properties", 5),
            ("7", "Management's Discussion and Analysis", 60),
            ("8", "Financial Statements", 30),
        ] {
            doc.push_str(&format!("Item {id}. {title}\n"));
            for p in 0..paragraphs {
                doc.push_str(&format!(
                    "Paragraph {p} of item {id} says something of moderate length here.\n"
                ));
            }
        }
        doc
    }

    #[test]
    fn estimator_ratio_and_calibration() {
        assert_eq!(estimate_tokens("abcdefgh"), 2);
        assert_eq!(estimate_tokens("abcdefghi"), 3);
        let e = TokenEstimator::calibrate("abcdefghij", 5).unwrap();
        assert_eq!(e.chars_per_token, 2.0);
        assert_eq!(
            TokenEstimator::new(0.0),
            Err(FilingError::InvalidRatio(0.0))
        );
        assert!(TokenEstimator::new(f64::NAN).is_err());
        assert_eq!(
            TokenEstimator::calibrate("", 3),
            Err(FilingError::EmptyCalibration)
        );
    }

    #[test]
    fn whole_text_when_it_fits() {
        let doc = document();
        let sections = find_sections(&doc, FormKind::TenK);
        let fitted = fit_to_budget(
            &doc,
            FormKind::TenK,
            &sections,
            1_000_000,
            &TokenEstimator::default(),
        );
        assert!(!fitted.was_cut);
        assert_eq!(fitted.text, doc);
    }

    #[test]
    fn priority_sections_kept_and_budget_respected() {
        let doc = document();
        let sections = find_sections(&doc, FormKind::TenK);
        let estimator = TokenEstimator::default();
        assert!(estimator.estimate(&doc) > 2000);
        for budget in [50u64, 300, 900, 1500, 2000] {
            let fitted = fit_to_budget(&doc, FormKind::TenK, &sections, budget, &estimator);
            assert!(fitted.was_cut);
            assert!(fitted.tokens <= budget, "{} > {budget}", fitted.tokens);
            assert_eq!(fitted.tokens, estimator.estimate(&fitted.text));
            if budget >= 900 {
                assert!(
                    fitted.kept.contains(&"7".to_string()),
                    "{budget}: {:?}",
                    fitted.kept
                );
                assert!(fitted.text.contains("Item 7. Management"));
                assert!(fitted.text.contains("omitted to fit the token budget"));
            }
        }
        let fitted = fit_to_budget(&doc, FormKind::TenK, &sections, 1800, &estimator);
        // Item 7 whole, Item 1A next in priority, Item 2 dropped.
        assert!(fitted.text.contains("Paragraph 59 of item 7"));
        assert!(fitted.text.contains("Paragraph 39 of item 1A"));
        assert!(fitted.kept.contains(&"1A".to_string()));
        assert!(fitted.cut.iter().any(|c| c.item.as_deref() == Some("2")));
    }

    #[test]
    fn head_kept_without_sections() {
        let doc = "A paragraph of text without any item headings at all.\n".repeat(100);
        let fitted = fit_to_budget(&doc, FormKind::TenK, &[], 200, &TokenEstimator::default());
        assert!(fitted.tokens <= 200);
        assert!(fitted.text.starts_with("A paragraph"));
        assert!(fitted
            .text
            .ends_with("omitted to fit the token budget ...]"));
        let tiny = fit_to_budget(&doc, FormKind::TenK, &[], 3, &TokenEstimator::default());
        assert!(tiny.tokens <= 3);
    }
}
