//! What the model read for a task, rebuilt from the document cache the way the worker built it
//! (`fintel-edgar`'s cache layout, `fintel-filing`'s text, sections and budget fitting), and
//! checked against the fitting record stored with the result.
//!
//! The dashboard never downloads: a document that is not in the cache is reported as such.
//! Nor does it remove anything: a cached copy that fails its checksum is reported, not
//! deleted (the worker deletes and fetches it again when a task needs it).

use std::path::{Path, PathBuf};

use fintel_edgar::cache::sha256_hex;
use fintel_edgar::index::{
    annual_report_exhibits_in_index, annual_report_exhibits_in_submission_text,
    annual_report_in_submission_text, incorporates_annual_report_by_reference,
    looks_like_annual_report_exhibit,
};
use fintel_edgar::{Accession, DocumentCache, DocumentKey, FileName, FilingIndex};
use fintel_filing::{
    find_sections, fit_to_budget, html_to_text, Cut, FormKind, Section, SectionStatus,
    TokenEstimator,
};
use fintel_time::SharedClock;
use serde_json::Value;

/// The filing a task read, as stored.
#[derive(Debug, Clone)]
pub(crate) struct FilingInput {
    pub cik: u64,
    pub accession: String,
    pub form: String,
    pub document_url: String,
    /// The fitting record stored with the result (`None`: the task has not run).
    pub fitting: Option<Value>,
    /// The SHA-256 of the document the worker read.
    pub sha256: Option<String>,
}

/// How faithful the text shown is to what the model read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fidelity {
    /// Rebuilt and matching the stored fitting record.
    Exact,
    /// No fitting record: the whole document, before any fitting.
    NotRunYet,
    /// Rebuilt, but the stored record could not be matched (said why).
    Approximate(String),
}

/// One item section and what fitting did with it.
#[derive(Debug, Clone)]
pub(crate) struct SectionRow {
    pub id: String,
    pub title: String,
    pub status: String,
    /// Kept whole, partly kept, or left out (with the characters left out).
    pub fate: Fate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fate {
    Kept,
    PartlyKept(usize),
    LeftOut(usize),
    NotFound,
}

/// The rebuilt text.
#[derive(Debug, Clone)]
pub(crate) struct Rebuilt {
    /// The text sent to the model (the whole document when nothing was cut).
    pub text: String,
    pub document_chars: usize,
    pub tokens: u64,
    pub fidelity: Fidelity,
    pub sections: Vec<SectionRow>,
    /// Cut parts of the document: (label, full text of the section as in the document).
    pub cut_texts: Vec<(String, String)>,
    /// Text outside any item that was left out, in characters.
    pub cut_outside_items: usize,
    /// Things the reader should know (an exhibit not in the cache, a changed document).
    pub notes: Vec<String>,
    pub document_path: PathBuf,
}

/// The answer of the filing page.
#[derive(Debug, Clone)]
pub(crate) enum FilingText {
    /// The document is not in the cache (or not usable); said why, plainly.
    Unavailable(String),
    Text(Box<Rebuilt>),
}

/// Reads a cached document and verifies it against its checksum sidecar, without removing
/// anything: `Err` says plainly why it cannot be used.
fn read_cached(cache: &DocumentCache, key: &DocumentKey) -> Result<(Vec<u8>, PathBuf), String> {
    let path = cache.path_for(key);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "The document is not in the cache ({}). fintel downloads it again when a task \
                 needs it; the stored result is not affected.",
                path.display()
            ))
        }
        Err(e) => {
            return Err(format!(
                "The cached document {} cannot be read: {e}.",
                path.display()
            ))
        }
    };
    let mut sidecar = path.clone().into_os_string();
    sidecar.push(".sha256");
    let recorded = std::fs::read_to_string(Path::new(&sidecar))
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_ascii_lowercase));
    if recorded.as_deref() != Some(sha256_hex(&bytes).as_str()) {
        return Err(format!(
            "The cached copy of the document ({}) is incomplete or damaged (it fails its \
             checksum); fintel fetches it again when a task needs it.",
            path.display()
        ));
    }
    Ok((bytes, path))
}

fn bool_field(v: Option<&Value>, key: &str) -> Option<bool> {
    v.and_then(|v| v.get(key)).and_then(Value::as_bool)
}

/// Rebuilds what the model read for `input` from the cache under `cache_dir`.
pub(crate) fn rebuild(input: &FilingInput, cache_dir: &Path, clock: SharedClock) -> FilingText {
    let accession = match Accession::parse(&input.accession) {
        Ok(a) => a,
        Err(e) => {
            return FilingText::Unavailable(format!("The stored accession is unusable: {e}."))
        }
    };
    let name = input.document_url.rsplit('/').next().unwrap_or_default();
    let file_name = match FileName::parse(name) {
        Ok(f) => f,
        Err(e) => {
            return FilingText::Unavailable(format!("The stored document name is unusable: {e}."))
        }
    };
    let complete_submission = name == format!("{}.txt", accession.as_str());
    let cache = DocumentCache::new(cache_dir, clock);
    let key = DocumentKey {
        cik: input.cik,
        accession: accession.clone(),
        file_name,
    };
    let (bytes, path) = match read_cached(&cache, &key) {
        Ok(found) => found,
        Err(why) => return FilingText::Unavailable(why),
    };
    let mut notes = Vec::new();
    if let Some(expected) = &input.sha256 {
        if !expected.eq_ignore_ascii_case(&sha256_hex(&bytes)) {
            notes.push(
                "The cached document differs from the one the model read (its SHA-256 changed \
                 since): the text below is from the cached copy."
                    .to_string(),
            );
        }
    }
    let main: &[u8] = if complete_submission {
        match annual_report_in_submission_text(&bytes) {
            Some(e) => bytes.get(e.text.clone()).unwrap_or(&bytes),
            None => &bytes,
        }
    } else {
        &bytes
    };
    let exhibit = exhibit_text(&cache, input, &key, &bytes, complete_submission, &mut notes);
    let mut text = html_to_text(main).text;
    if let Some(ex) = &exhibit {
        text.push_str(
            "\n\nEXHIBIT 13 - ANNUAL REPORT TO SHAREHOLDERS (incorporated by reference)\n\n",
        );
        text.push_str(&html_to_text(ex).text);
    }
    let kind = FormKind::parse(&input.form).unwrap_or_else(|_| FormKind::detect(&text));
    let sections = find_sections(&text, kind);
    let estimator = TokenEstimator::default();
    let document_chars = text.chars().count();

    let fitting = input.fitting.as_ref();
    let stored_cut: Option<Vec<Cut>> = fitting
        .and_then(|f| f.get("cut"))
        .and_then(|c| serde_json::from_value(c.clone()).ok());
    let stored_kept: Option<Vec<String>> = fitting
        .and_then(|f| f.get("kept"))
        .and_then(|c| serde_json::from_value(c.clone()).ok());
    let was_cut = bool_field(fitting, "was_cut");

    let (fitted_text, tokens, cut, fidelity) = match (fitting, was_cut) {
        (None, _) => (
            text.clone(),
            estimator.estimate(&text),
            Vec::new(),
            Fidelity::NotRunYet,
        ),
        (Some(_), Some(false)) | (Some(_), None)
            if stored_cut.as_ref().is_none_or(Vec::is_empty) =>
        {
            let fidelity = match fitting
                .and_then(|f| f.get("original_chars"))
                .and_then(Value::as_u64)
            {
                Some(n) if n as usize != text.len() => Fidelity::Approximate(format!(
                    "the document's text now has {} bytes where the model read {n}",
                    text.len()
                )),
                _ => Fidelity::Exact,
            };
            (
                text.clone(),
                estimator.estimate(&text),
                Vec::new(),
                fidelity,
            )
        }
        (Some(f), _) => {
            let budget = f.get("budget_tokens").and_then(Value::as_u64);
            let target = stored_cut.clone().unwrap_or_default();
            let fitted = match budget {
                Some(b) => fit_to_budget(&text, kind, &sections, b, &estimator),
                None => search_budget(&text, kind, &sections, &estimator, &target),
            };
            let same =
                fitted.cut == target && stored_kept.as_ref().is_none_or(|k| *k == fitted.kept);
            let fidelity = if same {
                Fidelity::Exact
            } else {
                Fidelity::Approximate(
                    "the cut could not be reproduced exactly (the document or the text \
                     extraction changed since the model read it); the stored record of what was \
                     cut is listed below"
                        .to_string(),
                )
            };
            (fitted.text, fitted.tokens, target, fidelity)
        }
    };

    let section_rows = sections
        .iter()
        .map(|s| SectionRow {
            id: s.id.clone(),
            title: s.title.clone(),
            status: status_text(&s.status),
            fate: fate_of(s, &cut),
        })
        .collect();
    let cut_texts = cut
        .iter()
        .filter_map(|c| {
            let id = c.item.as_ref()?;
            let s = sections.iter().find(|s| &s.id == id)?;
            let label = format!(
                "Item {} {}: {} characters {}",
                s.id,
                s.title,
                c.omitted_chars,
                if c.partly_kept {
                    "left out (the rest was kept)"
                } else {
                    "left out"
                }
            );
            Some((label, s.text(&text).to_string()))
        })
        .collect();
    let cut_outside_items = cut
        .iter()
        .filter(|c| c.item.is_none())
        .map(|c| c.omitted_chars)
        .sum();
    FilingText::Text(Box::new(Rebuilt {
        text: fitted_text,
        document_chars,
        tokens,
        fidelity,
        sections: section_rows,
        cut_texts,
        cut_outside_items,
        notes,
        document_path: path,
    }))
}

/// The annual-report exhibit the worker appended, from the cache only.
fn exhibit_text(
    cache: &DocumentCache,
    input: &FilingInput,
    key: &DocumentKey,
    bytes: &[u8],
    complete_submission: bool,
    notes: &mut Vec<String>,
) -> Option<Vec<u8>> {
    if complete_submission {
        let e = annual_report_exhibits_in_submission_text(bytes)
            .into_iter()
            .next()?;
        return bytes.get(e.text).map(<[u8]>::to_vec);
    }
    let wanted = match bool_field(input.fitting.as_ref(), "exhibit_13") {
        Some(w) => w,
        None => incorporates_annual_report_by_reference(&String::from_utf8_lossy(bytes)),
    };
    if !wanted {
        return None;
    }
    let missing = |notes: &mut Vec<String>| {
        notes.push(
            "The model also read the filing's annual report to shareholders (Exhibit 13), which \
             is not in the cache: the text below lacks it."
                .to_string(),
        );
        None
    };
    let index_key = DocumentKey {
        file_name: FileName::parse("index.json").ok()?,
        ..key.clone()
    };
    let Ok((index_bytes, _)) = read_cached(cache, &index_key) else {
        return missing(notes);
    };
    let Ok(index) = FilingIndex::parse(&index_bytes, "cached filing index") else {
        return missing(notes);
    };
    let found = annual_report_exhibits_in_index(&index)
        .into_iter()
        .find(|n| looks_like_annual_report_exhibit(n))
        .and_then(|n| FileName::parse(&n).ok());
    let Some(file_name) = found else {
        return missing(notes);
    };
    match read_cached(
        cache,
        &DocumentKey {
            file_name,
            ..key.clone()
        },
    ) {
        Ok((b, _)) => Some(b),
        Err(_) => missing(notes),
    }
}

/// The budget whose fitting leaves out what the stored record says: fitting leaves out less
/// as the budget grows, so the smallest budget leaving out no more than that is the one.
fn search_budget(
    text: &str,
    kind: FormKind,
    sections: &[Section],
    estimator: &TokenEstimator,
    target: &[Cut],
) -> fintel_filing::Fitted {
    let goal: usize = target.iter().map(|c| c.omitted_chars).sum();
    let omitted = |f: &fintel_filing::Fitted| f.cut.iter().map(|c| c.omitted_chars).sum::<usize>();
    let (mut lo, mut hi) = (1u64, estimator.estimate(text).max(2));
    let mut best = fit_to_budget(text, kind, sections, hi, estimator);
    for _ in 0..48 {
        if lo >= hi {
            break;
        }
        let mid = lo + (hi - lo) / 2;
        let fitted = fit_to_budget(text, kind, sections, mid, estimator);
        if fitted.cut == target {
            return fitted;
        }
        if omitted(&fitted) <= goal {
            hi = mid;
            best = fitted;
        } else {
            lo = mid + 1;
        }
    }
    best
}

fn fate_of(s: &Section, cut: &[Cut]) -> Fate {
    if !s.is_found() {
        return Fate::NotFound;
    }
    match cut
        .iter()
        .find(|c| c.item.as_deref() == Some(s.id.as_str()))
    {
        Some(c) if c.partly_kept => Fate::PartlyKept(c.omitted_chars),
        Some(c) => Fate::LeftOut(c.omitted_chars),
        None => Fate::Kept,
    }
}

fn status_text(status: &SectionStatus) -> String {
    match status {
        SectionStatus::Present => "present".into(),
        SectionStatus::IncorporatedByReference { target } => {
            format!("incorporated by reference ({target})")
        }
        SectionStatus::NotApplicable => "not applicable".into(),
        SectionStatus::Absent => "not in the document".into(),
    }
}
