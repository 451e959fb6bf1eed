//! Pairs of filings for the agreement test and the benchmark: the shared fixtures' texts and
//! versions of them edited the way a company edits its next year's report (sentences added,
//! removed, reworded, a section moved), deterministically.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use fintel_changes::FilingDoc;

/// A fixture document converted to clean text.
pub struct Fixture {
    pub name: String,
    pub text: String,
    pub plain_text_source: bool,
}

/// Every 10-K and 20-F fixture, converted.
pub fn fixtures(dir: &Path) -> Vec<Fixture> {
    let mut paths: Vec<PathBuf> = ["sec/10k", "sec/20f"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(dir.join(sub)).into_iter().flatten())
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "htm"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let html = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let text = fintel_filing::html_to_text(&html);
            Fixture {
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                text: text.text,
                plain_text_source: text.plain_text_source,
            }
        })
        .collect()
}

impl Fixture {
    pub fn doc(&self) -> FilingDoc {
        FilingDoc::new(&self.text, self.plain_text_source, None)
    }

    pub fn edited(&self, edit: Edit) -> FilingDoc {
        FilingDoc::new(&edit.apply(&self.text), self.plain_text_source, None)
    }
}

/// One way of editing next year's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// New sentences inserted after some lines.
    Added,
    /// Some body lines dropped.
    Removed,
    /// Some lines reworded (a word changed, a clause appended).
    Reworded,
    /// The risk factors' body moved after the MD&A's.
    Moved,
    /// All of the above, with Windows line endings.
    Everything,
}

pub const EDITS: [Edit; 5] = [
    Edit::Added,
    Edit::Removed,
    Edit::Reworded,
    Edit::Moved,
    Edit::Everything,
];

/// Lines that must stay for the section finder to find the same items.
fn is_heading(line: &str) -> bool {
    let lower = line.trim_start().to_ascii_lowercase();
    lower.starts_with("item")
        || lower.starts_with("signature")
        || lower.contains("form 10-k")
        || lower.contains("form 20-f")
        || lower.starts_with("part ")
}

const NEW_SENTENCES: &[&str] = &[
    "We may be adversely affected by new tariffs on imported components.",
    "Our results could suffer if cybersecurity incidents disrupt our operations.",
    "Changes in interest rates may increase our cost of borrowing.",
    "Climate-related regulation could require significant capital expenditure.",
    "We depend on a limited number of suppliers for key materials.",
];

impl Edit {
    pub fn apply(self, text: &str) -> String {
        match self {
            Edit::Added => added(text),
            Edit::Removed => removed(text),
            Edit::Reworded => reworded(text),
            Edit::Moved => moved(text),
            Edit::Everything => moved(&reworded(&removed(&added(text)))).replace('\n', "\r\n"),
        }
    }
}

fn added(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 10);
    for (i, line) in text.split('\n').enumerate() {
        out.push_str(line);
        out.push('\n');
        if i % 13 == 3 && !is_heading(line) {
            out.push_str(NEW_SENTENCES[(i / 13) % NEW_SENTENCES.len()]);
            out.push('\n');
        }
    }
    out
}

fn removed(text: &str) -> String {
    text.split('\n')
        .enumerate()
        .filter(|(i, line)| i % 11 != 5 || is_heading(line))
        .map(|(_, line)| line)
        .collect::<Vec<_>>()
        .join("\n")
}

fn reworded(text: &str) -> String {
    text.split('\n')
        .enumerate()
        .map(|(i, line)| {
            if i % 17 != 8 || is_heading(line) {
                return line.to_string();
            }
            let line = line
                .replacen(" the ", " such ", 1)
                .replacen(" may ", " could ", 1);
            match line.strip_suffix('.') {
                Some(stem) => format!("{stem}, as previously disclosed."),
                None => format!("{line} (as revised)"),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn moved(text: &str) -> String {
    let doc = FilingDoc::new(text, false, None);
    // Offsets are taken in the document's own copy of the text.
    let text = doc.text();
    let (Some(risk), Some(mdna)) = (doc.section_body("1A"), doc.section_body("7")) else {
        // No risk factors to move (20-F, old filings): move the first third after the rest.
        let cut = text.len() / 3;
        let cut = text.as_bytes()[cut..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |p| cut + p + 1);
        return format!("{}{}", &text[cut..], &text[..cut]);
    };
    let risk_range = offset(text, risk);
    let mdna_end = offset(text, mdna).end;
    if risk_range.end > mdna_end {
        return text.to_string();
    }
    format!(
        "{}{}{}{}",
        &text[..risk_range.start],
        &text[risk_range.end..mdna_end],
        &text[risk_range.clone()],
        &text[mdna_end..]
    )
}

fn offset(text: &str, part: &str) -> std::ops::Range<usize> {
    let start = part.as_ptr() as usize - text.as_ptr() as usize;
    start..start + part.len()
}
