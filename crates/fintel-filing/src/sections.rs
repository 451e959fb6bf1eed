//! Item sections of annual reports (10-K items 1-16, 20-F items 1-19), found in the clean text
//! that [`crate::html_to_text`] produces.
//!
//! How a heading is told from everything else that looks like one:
//! - it starts a line ("Item 7." / "ITEM 7:" / "Item 7" then the title, possibly in the next table
//!   cell or on the next line), the title matches the item's standard title, and the line is
//!   short; a cross-reference inside running text ("see Item 7") never starts a line;
//! - table-of-contents entries are dropped: lines ending in a page number, and dense runs of
//!   five or more headings whose items all appear again later;
//! - of what remains, items are taken in their standard order, each the first candidate after
//!   the previous item's heading.
//!
//! A section runs from its heading to the next item heading (or "SIGNATURES" for the last one).
//! Its status is `IncorporatedByReference` when its first paragraph says the information is
//! incorporated by reference (or "can be found") elsewhere, `NotApplicable` when its whole body
//! is "Not applicable", `Absent` when the document has no such heading.

use serde::{Deserialize, Serialize};

use crate::FilingError;

/// The kind of annual report, which decides the item list and the budget priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FormKind {
    /// 10-K and its variants (10-K405, 10-KSB, 10-KT, amendments).
    #[serde(rename = "10-K")]
    TenK,
    /// 20-F (foreign private issuers) and amendments.
    #[serde(rename = "20-F")]
    TwentyF,
}

impl FormKind {
    /// Reads an SEC form type such as "10-K", "10-K405", "10-K/A" or "20-F".
    pub fn parse(form: &str) -> Result<FormKind, FilingError> {
        let upper = form.trim().to_ascii_uppercase();
        let base = upper.split('/').next().unwrap_or_default();
        if base.starts_with("10-K") || base.starts_with("10K") {
            Ok(FormKind::TenK)
        } else if base.starts_with("20-F") || base.starts_with("20F") {
            Ok(FormKind::TwentyF)
        } else {
            Err(FilingError::UnknownForm(form.to_string()))
        }
    }

    /// Guesses the form from the cover page of a converted document ("FORM 20-F" vs
    /// "FORM 10-K" in its first 20,000 bytes), defaulting to 10-K.
    pub fn detect(text: &str) -> FormKind {
        let mut end = text.len().min(20_000);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let head = text[..end].to_ascii_uppercase();
        let position = |needle: &str| head.find(needle).unwrap_or(usize::MAX);
        if position("FORM 20-F") < position("FORM 10-K") {
            FormKind::TwentyF
        } else {
            FormKind::TenK
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FormKind::TenK => "10-K",
            FormKind::TwentyF => "20-F",
        }
    }

    /// The items of this form, in order: id, standard title, and lower-case phrases one of
    /// which a printed heading's title must contain.
    pub fn items(self) -> &'static [ItemSpec] {
        match self {
            FormKind::TenK => TEN_K_ITEMS,
            FormKind::TwentyF => TWENTY_F_ITEMS,
        }
    }

    /// The standard title of an item, or an error naming the valid ids.
    pub fn item(self, id: &str) -> Result<&'static ItemSpec, FilingError> {
        let wanted = id
            .trim()
            .trim_start_matches("Item ")
            .trim_start_matches("item ");
        self.items()
            .iter()
            .find(|spec| spec.id.eq_ignore_ascii_case(wanted))
            .ok_or_else(|| FilingError::UnknownItem {
                item: id.to_string(),
                form: self.as_str(),
                valid: self
                    .items()
                    .iter()
                    .map(|s| s.id)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// One item of a form.
#[derive(Debug)]
pub struct ItemSpec {
    pub id: &'static str,
    pub title: &'static str,
    keywords: &'static [&'static str],
}

const fn item(
    id: &'static str,
    title: &'static str,
    keywords: &'static [&'static str],
) -> ItemSpec {
    ItemSpec {
        id,
        title,
        keywords,
    }
}

const TEN_K_ITEMS: &[ItemSpec] = &[
    item("1", "Business", &["business"]),
    item("1A", "Risk Factors", &["risk factors"]),
    item("1B", "Unresolved Staff Comments", &["unresolved staff"]),
    item("1C", "Cybersecurity", &["cybersecurity"]),
    item("2", "Properties", &["properties"]),
    item("3", "Legal Proceedings", &["legal proceedings"]),
    item(
        "4",
        "Mine Safety Disclosures",
        &["mine safety", "submission of matters", "reserved"],
    ),
    item(
        "5",
        "Market for Registrant's Common Equity, Related Stockholder Matters and Issuer Purchases of Equity Securities",
        &["market for"],
    ),
    item("6", "[Reserved]", &["selected financial data", "reserved"]),
    item(
        "7",
        "Management's Discussion and Analysis of Financial Condition and Results of Operations",
        &["management"],
    ),
    item(
        "7A",
        "Quantitative and Qualitative Disclosures About Market Risk",
        &["quantitative and qualitative"],
    ),
    item(
        "8",
        "Financial Statements and Supplementary Data",
        &["financial statements"],
    ),
    item(
        "9",
        "Changes in and Disagreements with Accountants on Accounting and Financial Disclosure",
        &["changes in and disagreements", "disagreements with accountants"],
    ),
    item("9A", "Controls and Procedures", &["controls and procedures"]),
    item("9B", "Other Information", &["other information"]),
    item(
        "9C",
        "Disclosure Regarding Foreign Jurisdictions that Prevent Inspections",
        &["foreign jurisdictions"],
    ),
    item(
        "10",
        "Directors, Executive Officers and Corporate Governance",
        &["directors", "executive officers"],
    ),
    item("11", "Executive Compensation", &["executive compensation"]),
    item(
        "12",
        "Security Ownership of Certain Beneficial Owners and Management and Related Stockholder Matters",
        &["security ownership"],
    ),
    item(
        "13",
        "Certain Relationships and Related Transactions, and Director Independence",
        &["certain relationships"],
    ),
    item(
        "14",
        "Principal Accountant Fees and Services",
        &["principal account", "exhibit"],
    ),
    item("15", "Exhibits and Financial Statement Schedules", &["exhibit"]),
    item("16", "Form 10-K Summary", &["summary"]),
];

const TWENTY_F_ITEMS: &[ItemSpec] = &[
    item(
        "1",
        "Identity of Directors, Senior Management and Advisers",
        &["identity of directors"],
    ),
    item(
        "2",
        "Offer Statistics and Expected Timetable",
        &["offer statistics"],
    ),
    item("3", "Key Information", &["key information"]),
    item(
        "4",
        "Information on the Company",
        &["information on the company"],
    ),
    item("4A", "Unresolved Staff Comments", &["unresolved staff"]),
    item(
        "5",
        "Operating and Financial Review and Prospects",
        &["operating and financial review"],
    ),
    item(
        "6",
        "Directors, Senior Management and Employees",
        &["directors"],
    ),
    item(
        "7",
        "Major Shareholders and Related Party Transactions",
        &["major shareholders"],
    ),
    item("8", "Financial Information", &["financial information"]),
    item("9", "The Offer and Listing", &["offer and listing"]),
    item("10", "Additional Information", &["additional information"]),
    item(
        "11",
        "Quantitative and Qualitative Disclosures About Market Risk",
        &["quantitative and qualitative"],
    ),
    item(
        "12",
        "Description of Securities Other than Equity Securities",
        &["securities other than equity"],
    ),
    item(
        "13",
        "Defaults, Dividend Arrearages and Delinquencies",
        &["defaults"],
    ),
    item(
        "14",
        "Material Modifications to the Rights of Security Holders and Use of Proceeds",
        &["material modifications"],
    ),
    item(
        "15",
        "Controls and Procedures",
        &["controls and procedures", "reserved"],
    ),
    item("16", "[Reserved]", &["reserved"]),
    item(
        "16A",
        "Audit Committee Financial Expert",
        &["audit committee financial expert"],
    ),
    item("16B", "Code of Ethics", &["code of ethics"]),
    item(
        "16C",
        "Principal Accountant Fees and Services",
        &["principal account"],
    ),
    item(
        "16D",
        "Exemptions from the Listing Standards for Audit Committees",
        &["exemptions from the listing"],
    ),
    item(
        "16E",
        "Purchases of Equity Securities by the Issuer and Affiliated Purchasers",
        &["purchase"],
    ),
    item(
        "16F",
        "Change in Registrant's Certifying Accountant",
        &["certifying accountant"],
    ),
    item("16G", "Corporate Governance", &["corporate governance"]),
    item("16H", "Mine Safety Disclosure", &["mine safety"]),
    item(
        "16I",
        "Disclosure Regarding Foreign Jurisdictions that Prevent Inspections",
        &["foreign jurisdictions"],
    ),
    item("16J", "Insider Trading Policies", &["insider trading"]),
    item("16K", "Cybersecurity", &["cybersecurity"]),
    item("17", "Financial Statements", &["financial statements"]),
    item("18", "Financial Statements", &["financial statements"]),
    item("19", "Exhibits", &["exhibit"]),
];

/// Whether a section is there, and where its information is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SectionStatus {
    /// The section holds its own information.
    Present,
    /// The section points elsewhere; `target` names the document as written ("Exhibit 15.1",
    /// "Proxy Statement", "2024 Annual Report to Shareholders").
    IncorporatedByReference { target: String },
    /// The section says only that it does not apply.
    NotApplicable,
    /// No heading for this item was found (the item may not have existed at the time).
    Absent,
}

/// One item section located in a document's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// Item id as in the form ("1A", "7", "18").
    pub id: String,
    /// The item's standard title.
    pub title: String,
    /// The heading as printed (cells joined by a space); empty when absent.
    pub heading: String,
    /// Byte offset of the heading in the text (equal to `end` when absent).
    pub start: usize,
    /// Byte offset where the body (after the heading) begins.
    pub body_start: usize,
    /// Byte offset where the section ends (exclusive).
    pub end: usize,
    pub status: SectionStatus,
}

impl Section {
    /// The section including its heading.
    pub fn text<'a>(&self, text: &'a str) -> &'a str {
        text.get(self.start..self.end).unwrap_or_default()
    }

    /// The section without its heading.
    pub fn body<'a>(&self, text: &'a str) -> &'a str {
        text.get(self.body_start..self.end).unwrap_or_default()
    }

    /// Whether a heading was found.
    pub fn is_found(&self) -> bool {
        self.status != SectionStatus::Absent
    }
}

/// A heading-like line.
struct Candidate {
    spec_index: usize,
    start: usize,
    body_start: usize,
    heading: String,
    page_numbered: bool,
}

/// Longest line taken for a heading; longer lines are running text.
const MAX_HEADING_LINE: usize = 260;
/// Headings closer than this (bytes of body between them) count as a dense run.
const DENSE_GAP: usize = 100;
/// A dense run this long whose items recur later is a table of contents.
const DENSE_RUN_MIN: usize = 5;

/// Finds every item of `form` in the text; absent items are reported with status `Absent`.
/// The result follows the form's item order.
pub fn find_sections(text: &str, form: FormKind) -> Vec<Section> {
    let specs = form.items();
    let candidates = heading_candidates(text, specs);
    let toc = table_of_contents_flags(&candidates);

    let mut chosen: Vec<Option<&Candidate>> = vec![None; specs.len()];
    let mut after = 0usize;
    for (spec_index, slot) in chosen.iter_mut().enumerate() {
        let found = candidates
            .iter()
            .zip(&toc)
            .find(|(c, &is_toc)| !is_toc && c.spec_index == spec_index && c.start >= after)
            .map(|(c, _)| c);
        if let Some(c) = found {
            after = c.body_start;
            *slot = Some(c);
        }
    }

    let mut starts: Vec<usize> = chosen.iter().flatten().map(|c| c.start).collect();
    starts.sort_unstable();
    let signatures = find_signatures(text);

    specs
        .iter()
        .zip(&chosen)
        .map(|(spec, candidate)| match candidate {
            None => Section {
                id: spec.id.to_string(),
                title: spec.title.to_string(),
                heading: String::new(),
                start: 0,
                body_start: 0,
                end: 0,
                status: SectionStatus::Absent,
            },
            Some(c) => {
                let next = starts.iter().copied().find(|&s| s > c.start);
                let end = match next {
                    Some(next) => next,
                    None => signatures
                        .iter()
                        .copied()
                        .find(|&s| s > c.body_start)
                        .unwrap_or(text.len()),
                };
                let end = trim_section_end(text, c.body_start, end);
                let body = &text[c.body_start..end];
                Section {
                    id: spec.id.to_string(),
                    title: spec.title.to_string(),
                    heading: c.heading.clone(),
                    start: c.start,
                    body_start: c.body_start,
                    end,
                    status: classify(body),
                }
            }
        })
        .collect()
}

/// Offsets of lines reading "SIGNATURES" (the end of the last item).
fn find_signatures(text: &str) -> Vec<usize> {
    lines(text)
        .filter(|(_, line)| {
            let l = line.trim();
            l.eq_ignore_ascii_case("signatures") || l.eq_ignore_ascii_case("signature")
        })
        .map(|(start, _)| start)
        .collect()
}

/// Lines with their byte offsets.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut offset = 0;
    text.split('\n').map(move |line| {
        let start = offset;
        offset += line.len() + 1;
        (start, line)
    })
}

/// Drops trailing whitespace and a trailing "PART II" style line from a section's end.
fn trim_section_end(text: &str, body_start: usize, mut end: usize) -> usize {
    loop {
        let body = &text[body_start..end];
        let trimmed = body.trim_end();
        end = body_start + trimmed.len();
        let last_line_start = trimmed.rfind('\n').map_or(0, |i| i + 1);
        let last_line = &trimmed[last_line_start..];
        let upper = last_line.trim().to_ascii_uppercase();
        let is_part_heading = upper.len() < 100
            && upper.starts_with("PART ")
            && upper[5..]
                .trim_start()
                .split(|c: char| !c.is_ascii_alphabetic())
                .next()
                .is_some_and(|roman| {
                    !roman.is_empty() && roman.bytes().all(|b| matches!(b, b'I' | b'V' | b'X'))
                });
        if is_part_heading && last_line_start > 0 {
            end = body_start + last_line_start;
            continue;
        }
        return end;
    }
}

/// Reads "Item 7A." at the start of a line: the id (upper case, "16.A" read as "16A") and
/// the rest of the line.
fn parse_item_prefix(line: &str) -> Option<(String, &str)> {
    let line = line.trim_start_matches([' ', '|']);
    let bytes = line.as_bytes();
    if bytes.len() < 6 || !bytes[..4].eq_ignore_ascii_case(b"item") {
        return None;
    }
    let mut i = 4;
    let spaces_start = i;
    while i < bytes.len() && bytes[i] == b' ' {
        i += 1;
    }
    if i == spaces_start {
        return None;
    }
    let digits_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() && i - digits_start < 2 {
        i += 1;
    }
    if i == digits_start {
        return None;
    }
    let mut id = line[digits_start..i].to_string();
    // A letter suffix, possibly after a dot ("16.A."), followed by a non-alphanumeric.
    let letter_at = if bytes.get(i) == Some(&b'.') {
        i + 1
    } else {
        i
    };
    if let Some(&letter) = bytes.get(letter_at) {
        let after_letter = bytes.get(letter_at + 1);
        if letter.is_ascii_alphabetic() && after_letter.is_none_or(|b| !b.is_ascii_alphanumeric()) {
            id.push(char::from(letter.to_ascii_uppercase()));
            i = letter_at + 1;
        }
    }
    if bytes.get(i).is_some_and(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some((id, &line[i..]))
}

fn title_matches(spec: &ItemSpec, title: &str) -> bool {
    let mut end = title.len().min(160);
    while !title.is_char_boundary(end) {
        end -= 1;
    }
    let lower = title[..end].to_lowercase();
    spec.keywords.iter().any(|k| lower.contains(k))
}

/// Whether a heading line ends in a page number ("... | 12", "...  3", "... F-1").
fn ends_with_page_number(rest: &str) -> bool {
    let trimmed = rest.trim_end();
    let last = trimmed
        .rsplit([' ', '|'])
        .find(|t| !t.is_empty())
        .unwrap_or_default();
    let last = last.strip_prefix("F-").unwrap_or(last);
    let has_title_before = trimmed.len() > last.len() + 3;
    has_title_before
        && !last.is_empty()
        && last.len() <= 3
        && (last.bytes().all(|b| b.is_ascii_digit())
            || last.bytes().all(|b| matches!(b, b'i' | b'v' | b'x')))
}

/// Normalises a printed heading: cells joined by one space, runs of spaces collapsed.
fn normalise_heading(raw: &str) -> String {
    raw.split([' ', '|'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn heading_candidates(text: &str, specs: &[ItemSpec]) -> Vec<Candidate> {
    let mut found = Vec::new();
    let all: Vec<(usize, &str)> = lines(text).collect();
    for (index, &(start, line)) in all.iter().enumerate() {
        if line.len() > MAX_HEADING_LINE {
            continue;
        }
        let Some((id, rest)) = parse_item_prefix(line) else {
            continue;
        };
        let Some(spec_index) = specs.iter().position(|s| s.id == id) else {
            continue;
        };
        let spec = &specs[spec_index];
        let title = rest.trim_start_matches([' ', '|', '.', ':', '-', '\u{2014}', '\u{2013}']);
        let mut body_start = start + line.len() + 1;
        let mut heading_raw = line.to_string();
        let matched = if title.trim().is_empty() {
            // Title on the next line ("ITEM 1." / "BUSINESS").
            match all.get(index + 1) {
                Some(&(_, next)) if next.len() <= MAX_HEADING_LINE && title_matches(spec, next) => {
                    body_start += next.len() + 1;
                    heading_raw.push(' ');
                    heading_raw.push_str(next);
                    true
                }
                _ => false,
            }
        } else {
            title_matches(spec, title)
        };
        if !matched {
            continue;
        }
        found.push(Candidate {
            spec_index,
            start,
            body_start: body_start.min(text.len()),
            heading: normalise_heading(&heading_raw),
            page_numbered: ends_with_page_number(rest),
        });
    }
    found
}

/// Marks candidates that belong to a table of contents.
fn table_of_contents_flags(candidates: &[Candidate]) -> Vec<bool> {
    let mut toc: Vec<bool> = candidates.iter().map(|c| c.page_numbered).collect();
    // Runs are looked for among the headings without page numbers, so that a page-numbered
    // contents list directly followed by the first body headings does not swallow them.
    let unnumbered: Vec<&Candidate> = candidates.iter().filter(|c| !c.page_numbered).collect();
    let positions: Vec<usize> = (0..candidates.len())
        .filter(|&i| !candidates[i].page_numbered)
        .collect();
    let candidates = unnumbered;
    let mut run_start = 0;
    for i in 0..=candidates.len() {
        let continues = i + 1 < candidates.len()
            && i < candidates.len()
            && candidates[i + 1]
                .start
                .saturating_sub(candidates[i].body_start)
                < DENSE_GAP;
        if continues {
            continue;
        }
        let run = run_start..(i + 1).min(candidates.len());
        if run.len() >= DENSE_RUN_MIN {
            let recurring = run
                .clone()
                .filter(|&k| {
                    candidates[run.end..]
                        .iter()
                        .any(|later| later.spec_index == candidates[k].spec_index)
                })
                .count();
            if recurring * 2 > run.len() {
                for k in run {
                    toc[positions[k]] = true;
                }
            }
        }
        run_start = i + 1;
    }
    toc
}

/// A body shorter than this that says its information "can be found in" another document
/// points elsewhere; a long one only mentions where older discussions are.
const SHORT_BODY: usize = 1000;

/// Reads a section body's status from its first paragraph.
fn classify(body: &str) -> SectionStatus {
    let body = body.trim();
    let lower_start = body.len().min(200);
    let mut boundary = lower_start;
    while !body.is_char_boundary(boundary) {
        boundary -= 1;
    }
    let head_lower = body[..boundary].to_lowercase();
    if body.len() < 200
        && head_lower
            .trim_end_matches('.')
            .trim()
            .eq_ignore_ascii_case("not applicable")
    {
        return SectionStatus::NotApplicable;
    }
    let first_line = body.lines().next().unwrap_or_default();
    let first_lower = first_line.to_lowercase();
    let points_elsewhere = (first_lower.contains("incorporated")
        && first_lower.contains("by reference"))
        || (body.len() < SHORT_BODY && first_lower.contains("can be found in"));
    if points_elsewhere {
        return SectionStatus::IncorporatedByReference {
            target: reference_target(first_line),
        };
    }
    SectionStatus::Present
}

/// The document a cross-reference names, as written.
fn reference_target(sentence: &str) -> String {
    // ASCII lower-casing keeps every byte offset of `sentence` (Unicode lower-casing does not:
    // 'İ' grows from 2 to 3 bytes), so offsets found in `lower` can slice `sentence`.
    let lower = sentence.to_ascii_lowercase();
    if let Some(at) = lower.find("exhibit ") {
        let rest = &sentence[at + "exhibit ".len()..];
        let number: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect();
        let number = number.trim_end_matches('.');
        if !number.is_empty() {
            return format!("Exhibit {number}");
        }
    }
    if lower.contains("proxy statement") {
        return "Proxy Statement".to_string();
    }
    for phrase in [
        "annual report to shareholders",
        "annual report to stockholders",
        "annual report",
    ] {
        if let Some(at) = lower.find(phrase) {
            // Keep a year written just before ("2024 Annual Report to Shareholders").
            let before = sentence[..at].trim_end();
            let year: String = before
                .rsplit(' ')
                .next()
                .filter(|w| w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit()))
                .map(|w| format!("{w} "))
                .unwrap_or_default();
            return format!("{year}{}", &sentence[at..at + phrase.len()]);
        }
    }
    "another document".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "FORM 10-K\nTABLE OF CONTENTS\nItem 1. | Business | 1\nItem 1A. | Risk Factors | 5\n\
        Item 7. | Management's Discussion and Analysis | 20\nItem 8. | Financial Statements | 30\n\
        PART I\nItem 1. Business\nWe make things. See Item 7 for results.\n\
        Item 1A. Risk Factors\nThings may go wrong.\nPART II\n\
        Item 7. Management's Discussion and Analysis\nThe information is incorporated herein by reference to the Proxy Statement.\n\
        Item 8. Financial Statements\nNot applicable.\nSIGNATURES\nSigned.";

    fn section<'a>(sections: &'a [Section], id: &str) -> &'a Section {
        sections.iter().find(|s| s.id == id).unwrap()
    }

    #[test]
    fn body_headings_not_table_of_contents() {
        let sections = find_sections(DOC, FormKind::TenK);
        let business = section(&sections, "1");
        assert_eq!(business.heading, "Item 1. Business");
        assert_eq!(
            business.body(DOC),
            "We make things. See Item 7 for results."
        );
        let risk = section(&sections, "1A");
        assert_eq!(risk.body(DOC), "Things may go wrong.", "PART II trimmed");
        assert_eq!(risk.status, SectionStatus::Present);
        assert_eq!(
            section(&sections, "7").status,
            SectionStatus::IncorporatedByReference {
                target: "Proxy Statement".into()
            }
        );
        let eight = section(&sections, "8");
        assert_eq!(eight.status, SectionStatus::NotApplicable);
        assert_eq!(eight.body(DOC), "Not applicable.");
        assert_eq!(section(&sections, "1B").status, SectionStatus::Absent);
    }

    #[test]
    fn form_detected_from_cover_page() {
        assert_eq!(
            FormKind::detect("UNITED STATES\nFORM 20-F\nAnnual report"),
            FormKind::TwentyF
        );
        assert_eq!(
            FormKind::detect("FORM 10-K\n... see our Form 20-F filings"),
            FormKind::TenK
        );
        assert_eq!(FormKind::detect("no cover page"), FormKind::TenK);
    }

    #[test]
    fn item_prefixes() {
        assert_eq!(
            parse_item_prefix("ITEM 16.A. | Audit").map(|(id, _)| id),
            Some("16A".into())
        );
        assert_eq!(
            parse_item_prefix("Item 7A: Quant").map(|(id, _)| id),
            Some("7A".into())
        );
        assert_eq!(
            parse_item_prefix("Item 1 Identity").map(|(id, _)| id),
            Some("1".into())
        );
        assert!(parse_item_prefix("Items 1 and 2").is_none());
        assert!(parse_item_prefix("Item 123").is_none());
        assert!(parse_item_prefix("Itemized list").is_none());
    }

    #[test]
    fn reference_targets() {
        assert_eq!(
            reference_target("incorporated by reference into this Form 20-F as Exhibit 15.1."),
            "Exhibit 15.1"
        );
        assert_eq!(
            reference_target("can be found in the 2024 Annual Report to Shareholders under"),
            "2024 Annual Report to Shareholders"
        );
    }

    /// 'İ' lower-cases to two characters (3 bytes for 2), so offsets found in a Unicode
    /// lower-cased copy do not fit the original sentence.
    #[test]
    fn reference_target_with_letters_that_grow_when_lower_cased() {
        // Sliced at a shifted offset, this one cut 'é' in half (a panic).
        assert_eq!(reference_target("İ exhibit é"), "another document");
        assert_eq!(
            reference_target("İSTANBUL İŞ: incorporated by reference to Exhibit 13.1 herein"),
            "Exhibit 13.1"
        );
        assert_eq!(
            reference_target("İİİİİİİİ incorporated by reference to the 2024 Annual Report"),
            "2024 Annual Report"
        );
        let doc = "Item 7. Management's Discussion and Analysis\n\
                   İİİİ İİİİ İİİİ: incorporated herein by reference to the Proxy Statement exhibit \n\
                   Item 8. Financial Statements\nNumbers.";
        let sections = find_sections(doc, FormKind::TenK);
        assert!(matches!(
            section(&sections, "7").status,
            SectionStatus::IncorporatedByReference { .. }
        ));
    }

    #[test]
    fn forms_parse_and_unknown_forms_are_errors() {
        assert_eq!(FormKind::parse("10-K405").unwrap(), FormKind::TenK);
        assert_eq!(FormKind::parse("20-F/A").unwrap(), FormKind::TwentyF);
        let err = FormKind::parse("8-K").unwrap_err().to_string();
        assert!(err.contains("8-K") && err.contains("10-K"), "{err}");
        let err = FormKind::TenK.item("99").unwrap_err().to_string();
        assert!(err.contains("99") && err.contains("1A"), "{err}");
        assert_eq!(FormKind::TwentyF.item("Item 18").unwrap().id, "18");
    }
}
