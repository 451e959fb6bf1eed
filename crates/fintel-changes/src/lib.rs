//! Year-over-year changes between two annual reports, measured locally with no model: the four
//! similarity measures of Cohen, Malloy and Nguyen ("Lazy Prices", Journal of Finance 2020), the
//! length change, and the sentences added and removed, for the whole text and for each compared
//! item section. Pure: no network, files or clock.
//!
//! The input is clean text as `fintel_filing::html_to_text` writes it (one block per line).
//! Everything below is computed exactly this way; `reference/changes_reference.py` implements
//! the same rules independently, and the agreement test holds the two to 1e-9.
//!
//! # Sentences
//! The text is split into lines at `\n`. Within a line a sentence ends after each `.`, `!` or `?`
//! that is followed by a space, tab or carriage return, or by the end of the line; so a heading,
//! a list item or a table row (cells joined by `" | "`) without a full stop is one sentence.
//! Sentences are trimmed of spaces, tabs and carriage returns. A sentence with no word (a row of
//! numbers) is dropped. Plain-text filings are hard-wrapped, so for them (see
//! [`FilingDoc::new`]) a single line break inside a paragraph is first read as a space.
//! Abbreviations such as "U.S." end a sentence too; since both years are split the same way,
//! this changes no measure of an unchanged text.
//!
//! # Words
//! A word is a maximal run of ASCII letters (`A`-`Z`, `a`-`z`), lowercased, of at least two
//! letters. Digits, punctuation, apostrophes, hyphens and every non-ASCII character separate
//! words, so numbers never count ("$391 billion" and "$383 billion" are the same sentence) and
//! "company's" is the word "company". A sentence's identity is the sequence of all its words,
//! stop words included: two sentences are the same when they read the same apart from numbers,
//! case, punctuation and spacing.
//!
//! # Stop words
//! The 135 words of `src/stop_words.txt` (articles, pronouns, auxiliaries, prepositions and
//! conjunctions) are left out of the term counts, so the cosine and Jaccard measures weigh the
//! content words. They still count as words everywhere else.
//!
//! # The measures (each in [0, 1], 1 = unchanged)
//! - **cosine**: cosine similarity of the two term-frequency vectors (count of each word that is
//!   not a stop word, no weighting): `a·b / (|a| |b|)`.
//! - **jaccard**: `|A ∩ B| / |A ∪ B|` of the two sets of words that are not stop words.
//! - **min_edit**: `1 - D / (n + m)`, where `n` and `m` are the sentence counts and `D` the
//!   minimum number of sentence insertions and deletions turning the old sequence of sentences
//!   into the new one (a reworded sentence is one deletion plus one insertion). The paper counts
//!   edits over words; over sentences the exact minimum stays affordable for documents of tens
//!   of thousands of words (Myers' algorithm costs the length times the edits), and a changed
//!   sentence is what a reader of a 10-K notices.
//! - **simple**: the paper's "simple" measure is the size of a diff; here it is the share of all
//!   words (both years, stop words included) that lie in sentences the diff of the sentence
//!   sequences keeps: `2 W_kept / (W_old + W_new)`, with the diff of Python's
//!   `difflib.SequenceMatcher(None, old, new, autojunk=False)` (its matching blocks; see
//!   [`diff`]). Unlike `min_edit` it weighs a long changed sentence more than a short one.
//!
//! For two texts with no terms (or no sentences, or no words) a measure is 1; when only one
//! side has none it is 0.
//!
//! # Length change and sentences
//! `length_change` is `(W_new - W_old) / W_old` over all words (absent when the old text has
//! none). A sentence is *added* when no sentence of the old text is the same, *removed* when no
//! sentence of the new text is; the counts count every occurrence, and the lists give the ten
//! most substantive (most words that are not stop words; on a tie the earlier), each distinct
//! sentence once, as written.
//!
//! # Sections
//! [`compare_filings`] compares the whole texts and, when both filings are of the same form, the
//! items in [`TEN_K_SECTIONS`] (10-K: 1, 1A, 3, 7, 7A, 9A) or [`TWENTY_F_SECTIONS`] (20-F: 3, 4,
//! 5, 11, 15), found by `fintel_filing::find_sections`. An item is compared (its body, without
//! the heading) only when both filings hold its text; otherwise each side's state says why not
//! (absent, incorporated by reference, not applicable).

pub mod compare;
pub mod diff;
mod filing;
mod tokens;

pub use compare::{compare_texts, Comparison, TOP_SENTENCES};
pub use filing::{
    compare_filings, compare_one_section, compared_sections, FilingChanges, FilingDoc,
    SectionChange, SectionState, TEN_K_SECTIONS, TWENTY_F_SECTIONS,
};
pub use tokens::{unwrap_plain_text, MIN_WORD_LEN, STOP_WORDS};

/// What cannot be compared, and what to do about it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ChangesError {
    #[error(transparent)]
    Filing(#[from] fintel_filing::FilingError),
    #[error("the old filing is a {old} and the new one a {new}: their items do not correspond, so compare the whole texts (no section)")]
    FormsDiffer {
        old: &'static str,
        new: &'static str,
    },
}
