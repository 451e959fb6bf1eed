//! Finding documents inside a filing without a named primary document, and finding the
//! annual-report exhibit (EX-13) that many 10-Ks incorporate by reference. All pure.
//!
//! Sources used:
//! - the filing folder listing (`.../{accession without dashes}/index.json`,
//!   `{"directory":{"item":[{"name","type","size","last-modified"}],"name","parent-dir"}}`),
//!   which gives file names only, no document types;
//! - the complete submission text file (`{accession}.txt`), an SGML envelope of
//!   `<DOCUMENT><TYPE>..<SEQUENCE>..<FILENAME>..<DESCRIPTION>..<TEXT>..</TEXT></DOCUMENT>` blocks,
//!   which gives each document's type;
//! - the annual report's own text, which says whether it incorporates an annual report to
//!   shareholders by reference.

use std::ops::Range;

use memchr::memmem;
use serde::{Deserialize, Serialize};

use crate::EdgarError;

/// One entry of a filing folder listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexItem {
    /// File name.
    pub name: String,
    /// SEC's icon type (`text.gif`, `image2.gif`, ...), not a document type.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Size in bytes as text (may be empty).
    #[serde(default)]
    pub size: String,
    /// Last modification time as SEC writes it.
    #[serde(rename = "last-modified", default)]
    pub last_modified: String,
}

/// A filing folder listing (`index.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilingIndex {
    /// The files of the folder.
    pub items: Vec<IndexItem>,
    /// The folder path, e.g. `/Archives/edgar/data/1648960/000121390024004875`.
    pub name: String,
}

#[derive(Deserialize)]
struct RawIndex {
    directory: RawDirectory,
}

#[derive(Deserialize)]
struct RawDirectory {
    #[serde(default)]
    item: Vec<IndexItem>,
    #[serde(default)]
    name: String,
}

impl FilingIndex {
    /// Parses an `index.json` body.
    pub fn parse(bytes: &[u8], what: &str) -> Result<FilingIndex, EdgarError> {
        let raw: RawIndex =
            serde_json::from_slice(bytes).map_err(|e| EdgarError::parse(what, e))?;
        Ok(FilingIndex {
            items: raw.directory.item,
            name: raw.directory.name,
        })
    }

    /// True when the folder lists a file of this name.
    pub fn contains(&self, name: &str) -> bool {
        self.items.iter().any(|i| i.name == name)
    }
}

/// Where a filing's annual report document is, according to its folder listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexChoice {
    /// A separate document file.
    Document(String),
    /// Only the complete submission text file (`{accession}.txt`) has it.
    CompleteSubmission,
}

fn lower_ext(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default()
}

fn alnum_lower(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// True when a file name looks like an exhibit (`ex21.htm`, `dex991.htm`, `a2096490zex-13.htm`,
/// `exhibit13.htm`): `ex` (or `exhibit`) then an optional separator then a digit.
pub fn looks_like_exhibit(name: &str) -> bool {
    exhibit_number_start(&name.to_ascii_lowercase()).is_some()
}

/// Index just after the `ex`/`exhibit` + separator that precedes the exhibit number.
fn exhibit_number_start(lower: &str) -> Option<usize> {
    let bytes = lower.as_bytes();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("ex") {
        let start = from + pos;
        let mut i = start + 2;
        if lower[i..].starts_with("hibit") {
            i += 5;
        }
        if i < bytes.len() && matches!(bytes[i], b'-' | b'_' | b'.') {
            i += 1;
        }
        if i < bytes.len() && bytes[i].is_ascii_digit() {
            return Some(i);
        }
        from = start + 1;
    }
    None
}

/// True when a file name looks like Exhibit 13 (`ex13.htm`, `dex13.htm`, `ex-13_1.htm`,
/// `ex131.htm` as 13.1, `wfc-1231x2024xex13.htm`, `exhibit13.htm`), but not `ex130.htm` or
/// `ex1013.htm`. Only `.htm`, `.html` and `.txt` files count (not images or PDFs).
pub fn looks_like_annual_report_exhibit(name: &str) -> bool {
    if !matches!(lower_ext(name).as_str(), "htm" | "html" | "txt") {
        return false;
    }
    let lower = name.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut from = 0;
    while let Some(rel) = lower[from..].find("ex") {
        let start = from + rel;
        from = start + 1;
        let Some(number) = exhibit_number_start(&lower[start..]).map(|n| start + n) else {
            break;
        };
        // The exhibit number must follow directly (not a later "ex" further on).
        if number > start + 8 {
            continue;
        }
        let digits: String = bytes[number..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .map(|&b| b as char)
            .collect();
        // "13", or "13" plus one sub-number digit written without a dot ("131" = 13.1).
        if digits == "13" || (digits.len() == 3 && digits.starts_with("13") && digits != "130") {
            return true;
        }
    }
    false
}

/// `r1.htm`, `r23.htm`: pages of SEC's XBRL viewer, not documents.
fn is_xbrl_viewer_page(lower: &str) -> bool {
    let stem = lower.split('.').next().unwrap_or_default();
    stem.len() > 1 && stem.starts_with('r') && stem[1..].bytes().all(|b| b.is_ascii_digit())
}

/// Chooses the annual report document of a filing from its folder listing. Considered:
/// `.htm`, `.html` and `.txt` files that are not the folder's own index pages, not the
/// complete submission text file, not XBRL viewer pages (`R1.htm`, `FilingSummary`) and not
/// exhibits. Among them, one whose name contains the form (`10k`, `10-k405`, `20f`, ...) wins;
/// else a single remaining document; otherwise (none, or several without a clue) the complete
/// submission text file.
pub fn choose_annual_report_in_index(
    index: &FilingIndex,
    accession: &str,
    form: &str,
) -> IndexChoice {
    let complete = format!("{accession}.txt");
    let candidates: Vec<&IndexItem> = index
        .items
        .iter()
        .filter(|item| {
            let name = item.name.as_str();
            let lower = name.to_ascii_lowercase();
            matches!(lower_ext(name).as_str(), "htm" | "html" | "txt")
                && name != complete
                && !lower.starts_with(&accession.to_ascii_lowercase())
                && !lower.starts_with("filingsummary")
                && !is_xbrl_viewer_page(&lower)
                && !looks_like_exhibit(name)
        })
        .collect();
    let form_token = alnum_lower(form.trim_end_matches("/A"));
    let base_token = if form_token.starts_with("10k") {
        "10k".to_string()
    } else {
        form_token.clone()
    };
    let by_form = candidates
        .iter()
        .find(|item| alnum_lower(&item.name).contains(&form_token))
        .or_else(|| {
            candidates
                .iter()
                .find(|item| alnum_lower(&item.name).contains(&base_token))
        });
    match (by_form, candidates.as_slice()) {
        (Some(item), _) => IndexChoice::Document(item.name.clone()),
        (None, [only]) => IndexChoice::Document(only.name.clone()),
        _ => IndexChoice::CompleteSubmission,
    }
}

/// The Exhibit 13 files of a folder listing, `.htm`/`.html` before `.txt`.
pub fn annual_report_exhibits_in_index(index: &FilingIndex) -> Vec<String> {
    let mut names: Vec<&str> = index
        .items
        .iter()
        .map(|i| i.name.as_str())
        .filter(|n| looks_like_annual_report_exhibit(n))
        .collect();
    names.sort_by_key(|n| (lower_ext(n) == "txt", n.to_string()));
    names.into_iter().map(str::to_string).collect()
}

/// One document inside a complete submission text file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddedDocument {
    /// `<TYPE>`, e.g. `10-K`, `EX-13`, `EX-27`.
    pub doc_type: String,
    /// `<SEQUENCE>`, when given.
    pub sequence: Option<u32>,
    /// `<FILENAME>`, when given.
    pub file_name: Option<String>,
    /// `<DESCRIPTION>`, when given.
    pub description: Option<String>,
    /// Byte range of the content between `<TEXT>` and `</TEXT>` in the submission file.
    pub text: Range<usize>,
}

fn header_value(block: &[u8], tag: &[u8]) -> Option<String> {
    let pos = memmem::find(block, tag)?;
    let rest = &block[pos + tag.len()..];
    let end = memchr::memchr2(b'\n', b'<', rest).unwrap_or(rest.len());
    let value = String::from_utf8_lossy(&rest[..end]).trim().to_string();
    (!value.is_empty()).then_some(value)
}

/// Splits a complete submission text file into its documents. Tag names are matched in upper
/// case, as EDGAR writes them; anything outside `<DOCUMENT>` blocks (the SEC header) is skipped.
pub fn split_submission_text(bytes: &[u8]) -> Vec<EmbeddedDocument> {
    let open = memmem::Finder::new(b"<DOCUMENT>");
    let close = memmem::Finder::new(b"</DOCUMENT>");
    let mut documents = Vec::new();
    let mut at = 0;
    while let Some(rel) = open.find(&bytes[at..]) {
        let start = at + rel + b"<DOCUMENT>".len();
        let end = close
            .find(&bytes[start..])
            .map(|e| start + e)
            .unwrap_or(bytes.len());
        let block = &bytes[start..end];
        let text_open = memmem::find(block, b"<TEXT>");
        let header = &block[..text_open.unwrap_or(block.len())];
        if let Some(doc_type) = header_value(header, b"<TYPE>") {
            let text = match text_open {
                Some(t) => {
                    let text_start = start + t + b"<TEXT>".len();
                    let text_end = memmem::find(&bytes[text_start..end], b"</TEXT>")
                        .map(|e| text_start + e)
                        .unwrap_or(end);
                    text_start..text_end
                }
                None => end..end,
            };
            documents.push(EmbeddedDocument {
                doc_type: doc_type.to_ascii_uppercase(),
                sequence: header_value(header, b"<SEQUENCE>").and_then(|s| s.parse().ok()),
                file_name: header_value(header, b"<FILENAME>"),
                description: header_value(header, b"<DESCRIPTION>"),
                text,
            });
        }
        at = (end + b"</DOCUMENT>".len()).min(bytes.len());
        if end >= bytes.len() {
            break;
        }
    }
    documents
}

/// The annual report inside a complete submission text file: the first document whose type is
/// an annual form (10-K, 10-K405, 20-F, ..., with or without `/A`).
pub fn annual_report_in_submission_text(bytes: &[u8]) -> Option<EmbeddedDocument> {
    split_submission_text(bytes)
        .into_iter()
        .find(|d| crate::select::annual_form(&d.doc_type).is_some())
}

/// True for `EX-13`, `EX-13.1`, `EX-13.0` (not `EX-130`).
pub fn is_annual_report_exhibit_type(doc_type: &str) -> bool {
    let upper = doc_type.trim().to_ascii_uppercase();
    match upper.strip_prefix("EX-13") {
        Some(rest) => !rest.starts_with(|c: char| c.is_ascii_digit()),
        None => false,
    }
}

/// The Exhibit 13 documents inside a complete submission text file.
pub fn annual_report_exhibits_in_submission_text(bytes: &[u8]) -> Vec<EmbeddedDocument> {
    split_submission_text(bytes)
        .into_iter()
        .filter(|d| is_annual_report_exhibit_type(&d.doc_type))
        .collect()
}

/// Where an annual-report exhibit was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExhibitLocation {
    /// A separate file in the filing folder: fetch it.
    File(String),
    /// Inside the complete submission text file already at hand.
    Embedded(EmbeddedDocument),
}

/// Finds the annual-report exhibit from what is at hand: in a complete submission text file,
/// the documents typed `EX-13*` (authoritative); else in the folder listing, the file names
/// that look like Exhibit 13 ([`looks_like_annual_report_exhibit`]). `None` when neither has one.
pub fn find_annual_report_exhibit(
    index: Option<&FilingIndex>,
    submission_text: Option<&[u8]>,
) -> Option<ExhibitLocation> {
    if let Some(found) = submission_text.and_then(|text| {
        annual_report_exhibits_in_submission_text(text)
            .into_iter()
            .next()
    }) {
        return Some(ExhibitLocation::Embedded(found));
    }
    index
        .and_then(|index| annual_report_exhibits_in_index(index).into_iter().next())
        .map(ExhibitLocation::File)
}

/// Lower-case text with markup removed and whitespace (including no-break spaces) collapsed.
fn plain_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len() / 2);
    let mut in_tag = false;
    let mut last_space = true;
    let push_space = |out: &mut String, last_space: &mut bool| {
        if !*last_space {
            out.push(' ');
            *last_space = true;
        }
    };
    let decoded = text
        .replace("&nbsp;", " ")
        .replace("&#160;", " ")
        .replace("&#xa0;", " ")
        .replace("&#xA0;", " ");
    for c in decoded.chars() {
        match c {
            '<' => {
                in_tag = true;
                push_space(&mut out, &mut last_space);
            }
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            c if c.is_whitespace() => push_space(&mut out, &mut last_space),
            c => {
                out.extend(c.to_lowercase());
                last_space = false;
            }
        }
    }
    out
}

/// True when an annual report (text or HTML) says it incorporates an annual report to
/// shareholders by reference: it mentions "Exhibit 13", or it mentions an "annual report to
/// shareholders/stockholders/security holders" and "incorporated ... by reference" (e.g. Wells
/// Fargo, Medicis). Then the EX-13 exhibit holds sections the 10-K itself only points to.
pub fn incorporates_annual_report_by_reference(text: &str) -> bool {
    let words = plain_words(text);
    if words.contains("exhibit 13") || words.contains("exhibit no. 13") {
        return true;
    }
    let mentions_report = [
        "annual report to shareholders",
        "annual report to stockholders",
        "annual report to security holders",
        "annual report to shareowners",
    ]
    .iter()
    .any(|p| words.contains(p));
    let incorporates = words.contains("incorporated by reference")
        || words.contains("incorporated herein by reference");
    mentions_report && incorporates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_of(names: &[&str]) -> FilingIndex {
        FilingIndex {
            items: names
                .iter()
                .map(|n| IndexItem {
                    name: n.to_string(),
                    kind: "text.gif".into(),
                    size: String::new(),
                    last_modified: String::new(),
                })
                .collect(),
            name: "/Archives/edgar/data/1/000000000124000001".into(),
        }
    }

    #[test]
    fn exhibit_13_names() {
        for yes in [
            "ex13.htm",
            "dex13.htm",
            "a2096490zex-13.htm",
            "ex13-1.htm",
            "ex13_1.htm",
            "ex131.htm",
            "wfc-1231x2024xex13.htm",
            "Exhibit13.HTM",
            "d10k_ex13.txt",
        ] {
            assert!(looks_like_annual_report_exhibit(yes), "{yes}");
        }
        for no in [
            "ex1013.htm",
            "ex130.htm",
            "ex21.htm",
            "ex13.pdf",
            "ex13_001.jpg",
            "aapl-20240928.htm",
            "ex-10.13.htm",
            "ex99-13.htm",
        ] {
            assert!(!looks_like_annual_report_exhibit(no), "{no}");
        }
    }

    #[test]
    fn chooses_the_annual_report_in_a_listing() {
        let acc = "0000912057-00-053623";
        let index = index_of(&[
            "0000912057-00-053623-index.html",
            "0000912057-00-053623.txt",
            "a2032880zex-21.txt",
            "a2032880z10-k.txt",
            "a2032880zex-13.txt",
        ]);
        assert_eq!(
            choose_annual_report_in_index(&index, acc, "10-K"),
            IndexChoice::Document("a2032880z10-k.txt".into())
        );
        assert_eq!(
            annual_report_exhibits_in_index(&index),
            vec!["a2032880zex-13.txt"]
        );
        let only_text = index_of(&["0000320193-96-000023.txt"]);
        assert_eq!(
            choose_annual_report_in_index(&only_text, "0000320193-96-000023", "10-K"),
            IndexChoice::CompleteSubmission
        );
        let ambiguous = index_of(&["one.htm", "two.htm"]);
        assert_eq!(
            choose_annual_report_in_index(&ambiguous, "0000000001-99-000001", "10-K405"),
            IndexChoice::CompleteSubmission
        );
        let single = index_of(&["report.htm", "R1.htm", "FilingSummary.xml", "ex21.htm"]);
        assert_eq!(
            choose_annual_report_in_index(&single, "0000000001-99-000001", "10-K405"),
            IndexChoice::Document("report.htm".into())
        );
    }

    #[test]
    fn real_listing_parses() {
        let dir = fintel_fixtures::fixtures_or_skip!();
        let bytes = std::fs::read(
            dir.join("sec/api/filing_index/0001648960-000121390024004875-index.json"),
        )
        .unwrap();
        let index = FilingIndex::parse(&bytes, "fixture").unwrap();
        assert_eq!(index.items.len(), 25);
        assert_eq!(
            index.name,
            "/Archives/edgar/data/1648960/000121390024004875"
        );
        // An 8-K: no 10-K document, exhibits are not mistaken for one, no EX-13.
        assert_eq!(
            choose_annual_report_in_index(&index, "0001213900-24-004875", "10-K"),
            IndexChoice::Document("ea191807-8k_datchat.htm".into())
        );
        assert!(annual_report_exhibits_in_index(&index).is_empty());
        assert!(FilingIndex::parse(b"{}", "bad").is_err());
    }

    #[test]
    fn splits_submission_text() {
        let text = b"<SEC-DOCUMENT>0000320193-96-000023.txt\n<SEC-HEADER>hdr</SEC-HEADER>\n\
<DOCUMENT>\n<TYPE>10-K\n<SEQUENCE>1\n<DESCRIPTION>ANNUAL REPORT\n<TEXT>\nmain body\n</TEXT>\n</DOCUMENT>\n\
<DOCUMENT>\n<TYPE>EX-13\n<SEQUENCE>2\n<FILENAME>ex13.txt\n<TEXT>\nletter to shareholders\n</TEXT>\n</DOCUMENT>\n\
<DOCUMENT>\n<TYPE>EX-27\n<SEQUENCE>3\n<TEXT>\nFDS\n</TEXT>\n</DOCUMENT>\n</SEC-DOCUMENT>\n";
        let docs = split_submission_text(text);
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].doc_type, "10-K");
        assert_eq!(docs[0].description.as_deref(), Some("ANNUAL REPORT"));
        assert_eq!(&text[docs[0].text.clone()], b"\nmain body\n");
        assert_eq!(docs[1].file_name.as_deref(), Some("ex13.txt"));
        let main = annual_report_in_submission_text(text).unwrap();
        assert_eq!(main.sequence, Some(1));
        let found = find_annual_report_exhibit(None, Some(text)).unwrap();
        match found {
            ExhibitLocation::Embedded(doc) => {
                assert_eq!(&text[doc.text], b"\nletter to shareholders\n")
            }
            other => panic!("expected embedded, got {other:?}"),
        }
        assert!(find_annual_report_exhibit(None, Some(b"no documents")).is_none());
        assert!(is_annual_report_exhibit_type("EX-13.1"));
        assert!(!is_annual_report_exhibit_type("EX-130"));
        assert!(!is_annual_report_exhibit_type("EX-10.13"));
    }

    #[test]
    fn listing_exhibit_used_when_no_text() {
        let index = index_of(&["d10k.htm", "dex13.htm", "dex21.htm"]);
        assert_eq!(
            find_annual_report_exhibit(Some(&index), None),
            Some(ExhibitLocation::File("dex13.htm".into()))
        );
    }

    #[test]
    fn incorporation_by_reference_on_real_filings() {
        let dir = fintel_fixtures::fixtures_or_skip!();
        let read = |name: &str| {
            String::from_utf8_lossy(&std::fs::read(dir.join("sec/10k").join(name)).unwrap())
                .into_owned()
        };
        assert!(incorporates_annual_report_by_reference(&read(
            "wfc-10k-2025-02-25.ixbrl.htm"
        )));
        assert!(incorporates_annual_report_by_reference(&read(
            "medicis-10k-1999-0000950153-99-001234.htm"
        )));
        assert!(!incorporates_annual_report_by_reference(&read(
            "aapl-10k-2024-11-01.ixbrl.htm"
        )));
        assert!(!incorporates_annual_report_by_reference(&read(
            "ko-10k-2025-02-20.ixbrl.htm"
        )));
        assert!(!incorporates_annual_report_by_reference(&read(
            "commonwealth-income-growth-fund-v-10k-2016-0001376474-16-000635.htm"
        )));
    }
}
