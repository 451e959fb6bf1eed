//! The comparison of two texts: the four similarity measures, the length change and the
//! sentences added and removed, as defined in the crate documentation.

use serde::{Deserialize, Serialize};

use crate::diff::{edit_distance, matching_blocks};
use crate::tokens::{Interner, Tokens};

/// How many added and removed sentences a comparison lists.
pub const TOP_SENTENCES: usize = 10;

/// How two texts differ. Every similarity is in [0, 1], 1 meaning unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Cosine similarity of the term-frequency vectors (stop words removed).
    pub cosine: f64,
    /// Jaccard similarity of the word sets (stop words removed).
    pub jaccard: f64,
    /// 1 - (sentence insertions + deletions) / (sentences old + new).
    pub min_edit: f64,
    /// Share of all words that lie in sentences a difflib diff reports as unchanged.
    pub simple: f64,
    /// (words new - words old) / words old; `None` when the old text has no words.
    pub length_change: Option<f64>,
    pub words_old: usize,
    pub words_new: usize,
    pub sentences_old: usize,
    pub sentences_new: usize,
    /// Sentences of the new text not in the old one (each occurrence counts).
    pub added_count: usize,
    /// Sentences of the old text not in the new one (each occurrence counts).
    pub removed_count: usize,
    /// The most substantive added sentences (most words that are not stop words), at most
    /// [`TOP_SENTENCES`], each once.
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// Compares two clean texts (one block per line, as `fintel_filing::html_to_text` writes them).
pub fn compare_texts(old: &str, new: &str) -> Comparison {
    let mut interner = Interner::new();
    let old_tokens = interner.tokenize(old);
    let new_tokens = interner.tokenize(new);
    let vocabulary = interner.vocabulary();

    let old_counts = term_counts(&old_tokens, &interner.stop, vocabulary);
    let new_counts = term_counts(&new_tokens, &interner.stop, vocabulary);
    let (mut dot, mut old_sq, mut new_sq) = (0u128, 0u128, 0u128);
    let (mut both, mut either) = (0usize, 0usize);
    for (&x, &y) in old_counts.iter().zip(&new_counts) {
        let (x, y) = (u128::from(x), u128::from(y));
        dot += x * y;
        old_sq += x * x;
        new_sq += y * y;
        if x > 0 && y > 0 {
            both += 1;
        }
        if x > 0 || y > 0 {
            either += 1;
        }
    }
    let cosine = if old_sq == 0 && new_sq == 0 {
        1.0
    } else if old_sq == 0 || new_sq == 0 {
        0.0
    } else {
        // One rounding of the exact product, so identical vectors give exactly 1.
        (dot as f64 / ((old_sq * new_sq) as f64).sqrt()).min(1.0)
    };
    let jaccard = if either == 0 {
        1.0
    } else {
        both as f64 / either as f64
    };

    let old_ids = old_tokens.sentence_ids();
    let new_ids = new_tokens.sentence_ids();
    let total_sentences = old_ids.len() + new_ids.len();
    let min_edit = if total_sentences == 0 {
        1.0
    } else {
        1.0 - edit_distance(&old_ids, &new_ids) as f64 / total_sentences as f64
    };

    let sentence_vocabulary = old_ids
        .iter()
        .chain(&new_ids)
        .max()
        .map_or(0, |&m| m as usize + 1);
    let matched_words: usize = matching_blocks(&old_ids, &new_ids, sentence_vocabulary)
        .iter()
        .flat_map(|block| &old_tokens.sentences[block.a_start..block.a_start + block.len])
        .map(|s| s.words.len())
        .sum();
    let total_words = old_tokens.word_count() + new_tokens.word_count();
    let simple = if total_words == 0 {
        1.0
    } else {
        (2 * matched_words) as f64 / total_words as f64
    };

    let length_change = (old_tokens.word_count() > 0).then(|| {
        (new_tokens.word_count() as f64 - old_tokens.word_count() as f64)
            / old_tokens.word_count() as f64
    });

    let (added_count, added) = only_in(new, &new_tokens, &old_ids, sentence_vocabulary);
    let (removed_count, removed) = only_in(old, &old_tokens, &new_ids, sentence_vocabulary);
    Comparison {
        cosine,
        jaccard,
        min_edit,
        simple,
        length_change,
        words_old: old_tokens.word_count(),
        words_new: new_tokens.word_count(),
        sentences_old: old_ids.len(),
        sentences_new: new_ids.len(),
        added_count,
        removed_count,
        added,
        removed,
    }
}

fn term_counts(tokens: &Tokens, stop: &[bool], vocabulary: usize) -> Vec<u32> {
    let mut counts = vec![0u32; vocabulary];
    for &w in &tokens.words {
        if !stop[w as usize] {
            counts[w as usize] += 1;
        }
    }
    counts
}

/// The sentences of `tokens` whose ids are not among `other`: their count and the most
/// substantive ones (ties keep the earlier), each distinct sentence once.
fn only_in(
    text: &str,
    tokens: &Tokens,
    other: &[u32],
    sentence_vocabulary: usize,
) -> (usize, Vec<String>) {
    let mut in_other = vec![false; sentence_vocabulary];
    for &id in other {
        in_other[id as usize] = true;
    }
    let mut listed = vec![false; sentence_vocabulary];
    let mut count = 0;
    let mut candidates = Vec::new();
    for (position, sentence) in tokens.sentences.iter().enumerate() {
        if in_other[sentence.id as usize] {
            continue;
        }
        count += 1;
        if !listed[sentence.id as usize] {
            listed[sentence.id as usize] = true;
            candidates.push((sentence.content_words, position));
        }
    }
    candidates.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    let top = candidates
        .into_iter()
        .take(TOP_SENTENCES)
        .map(|(_, position)| {
            let s = &tokens.sentences[position];
            text[s.start..s.end].to_string()
        })
        .collect();
    (count, top)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(x: f64, y: f64) -> bool {
        (x - y).abs() < 1e-12
    }

    #[test]
    fn identical_texts_are_unchanged() {
        let text = "Risk one is here.\nRisk two is there. A third risk.";
        let c = compare_texts(text, text);
        assert_eq!(
            (c.cosine, c.jaccard, c.min_edit, c.simple),
            (1.0, 1.0, 1.0, 1.0)
        );
        assert_eq!(c.length_change, Some(0.0));
        assert_eq!((c.added_count, c.removed_count), (0, 0));
    }

    #[test]
    fn empty_and_wordless_texts() {
        let both_empty = compare_texts("", "$ 1,234");
        assert_eq!(
            (
                both_empty.cosine,
                both_empty.jaccard,
                both_empty.min_edit,
                both_empty.simple
            ),
            (1.0, 1.0, 1.0, 1.0)
        );
        assert_eq!(both_empty.length_change, None);
        let one_empty = compare_texts("", "Demand rose sharply.");
        assert_eq!(
            (
                one_empty.cosine,
                one_empty.jaccard,
                one_empty.min_edit,
                one_empty.simple
            ),
            (0.0, 0.0, 0.0, 0.0)
        );
        assert_eq!(one_empty.added, vec!["Demand rose sharply."]);
        // A text of stop words only has words and sentences but no terms.
        let stop_only = compare_texts("It is what it is.", "It is.");
        assert_eq!((stop_only.cosine, stop_only.jaccard), (1.0, 1.0));
        assert!(stop_only.min_edit < 1.0);
    }

    #[test]
    fn hand_computed_pair() {
        // Old: [A, B, C]; new: [A, C', C, D] where C' is B reworded and D is new.
        let old = "We expect demand to increase. Supply is stable. Prices fell.";
        let new =
            "We expect demand to increase. We expect weakness in sales. Prices fell. Costs rose.";
        let c = compare_texts(old, new);
        // Content terms old: expect demand increase supply stable prices fell (1 each).
        // New: expect 2, demand, increase, weakness, sales, prices, fell, costs, rose.
        // dot = 2+1+1+1+1 = 6; |old|^2 = 7; |new|^2 = 4+8 = 12.
        assert!(
            close(c.cosine, 6.0 / (7f64.sqrt() * 12f64.sqrt())),
            "{}",
            c.cosine
        );
        // Sets: old 7, new 9, shared 5 (expect demand increase prices fell), union 11.
        assert!(close(c.jaccard, 5.0 / 11.0));
        // Sentences 3 and 4; delete B, insert C' and D: 3 edits out of 7.
        assert!(close(c.min_edit, 1.0 - 3.0 / 7.0));
        // Words: old 5+3+2 = 10, new 5+5+2+2 = 14; matched A and "Prices fell": 7 each side.
        assert!(close(c.simple, 14.0 / 24.0));
        assert!(close(c.length_change.unwrap_or(f64::NAN), 0.4));
        assert_eq!((c.added_count, c.removed_count), (2, 1));
        assert_eq!(c.added, vec!["We expect weakness in sales.", "Costs rose."]);
        assert_eq!(c.removed, vec!["Supply is stable."]);
    }

    #[test]
    fn a_moved_paragraph_changes_the_order_measures_only() {
        let a = "First risk matters.\nSecond risk matters.\nThird risk matters.";
        let b = "Third risk matters.\nFirst risk matters.\nSecond risk matters.";
        let c = compare_texts(a, b);
        assert!(close(c.cosine, 1.0) && close(c.jaccard, 1.0));
        assert!(close(c.min_edit, 1.0 - 2.0 / 6.0));
        assert!(c.simple < 1.0);
        assert_eq!((c.added_count, c.removed_count), (0, 0));
    }

    #[test]
    fn numbers_and_case_do_not_make_a_sentence_new() {
        let c = compare_texts(
            "Net sales were $383 billion.",
            "NET SALES WERE $391 BILLION.",
        );
        assert_eq!((c.added_count, c.min_edit, c.simple), (0, 1.0, 1.0));
    }

    #[test]
    fn the_top_lists_are_capped_ranked_and_distinct() {
        let new: String = (1..=15)
            .map(|n| format!("{} here.\n", "word ".repeat(n)))
            .chain(std::iter::once(
                "word word word word word here.\n".to_string(),
            ))
            .collect();
        let c = compare_texts("", &new);
        assert_eq!(c.added_count, 16);
        assert_eq!(c.added.len(), TOP_SENTENCES);
        assert!(c.added[0].starts_with(&"word ".repeat(15)));
        let distinct: std::collections::HashSet<_> = c.added.iter().collect();
        assert_eq!(distinct.len(), c.added.len());
    }
}
