//! Sentences and words of a text, exactly as the crate documentation defines them, with words
//! and sentences interned to dense ids shared by the two texts of a comparison (so the measures
//! work on integers, and a sentence is "the same" in both years when its id is).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The stop words, one per line (also read by the reference script).
pub const STOP_WORDS: &str = include_str!("stop_words.txt");

/// Words shorter than this are not words (possessive "s", initials, list letters).
pub const MIN_WORD_LEN: usize = 2;

/// One sentence of a text.
#[derive(Debug, Clone)]
pub(crate) struct Sentence {
    /// Byte range of the sentence as written (trimmed) in its text.
    pub start: usize,
    pub end: usize,
    /// Range of its words in [`Tokens::words`].
    pub words: std::ops::Range<usize>,
    /// The interned id of its word sequence.
    pub id: u32,
    /// Number of its words that are not stop words.
    pub content_words: u32,
}

/// The tokens of one text.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    /// Every word of the text in order, as interned ids.
    pub words: Vec<u32>,
    /// Sentences with at least one word, in order.
    pub sentences: Vec<Sentence>,
}

impl Tokens {
    pub fn sentence_ids(&self) -> Vec<u32> {
        self.sentences.iter().map(|s| s.id).collect()
    }

    pub fn word_count(&self) -> usize {
        self.words.len()
    }
}

/// A fast non-cryptographic hasher (FxHash's multiply-rotate) for the interning tables: the keys
/// are the document's own words, and SipHash would cost a third of the comparison time.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(buf));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Word and sentence ids shared by the two texts of one comparison.
pub(crate) struct Interner {
    words: FxMap<Vec<u8>, u32>,
    /// Whether each word id is a stop word.
    pub stop: Vec<bool>,
    sentences: FxMap<Vec<u32>, u32>,
    stop_words: FxMap<&'static [u8], ()>,
}

impl Interner {
    pub fn new() -> Interner {
        let stop_words = STOP_WORDS
            .lines()
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(|w| (w.as_bytes(), ()))
            .collect();
        Interner {
            words: FxMap::default(),
            stop: Vec::new(),
            sentences: FxMap::default(),
            stop_words,
        }
    }

    pub fn vocabulary(&self) -> usize {
        self.stop.len()
    }

    fn word(&mut self, lower: &[u8]) -> u32 {
        if let Some(&id) = self.words.get(lower) {
            return id;
        }
        let id = self.stop.len() as u32;
        self.stop.push(self.stop_words.contains_key(lower));
        self.words.insert(lower.to_vec(), id);
        id
    }

    fn sentence(&mut self, words: &[u32]) -> u32 {
        if let Some(&id) = self.sentences.get(words) {
            return id;
        }
        let id = self.sentences.len() as u32;
        self.sentences.insert(words.to_vec(), id);
        id
    }

    /// Splits `text` into sentences and words (see the crate documentation for the rules).
    pub fn tokenize(&mut self, text: &str) -> Tokens {
        let bytes = text.as_bytes();
        let mut tokens = Tokens::default();
        let mut word = Vec::with_capacity(32);
        let mut line_start = 0;
        while line_start <= bytes.len() {
            let line_end = memchr_newline(bytes, line_start);
            let mut start = line_start;
            let mut i = line_start;
            while i < line_end {
                let b = bytes[i];
                if matches!(b, b'.' | b'!' | b'?')
                    && (i + 1 == line_end || matches!(bytes[i + 1], b' ' | b'\t' | b'\r'))
                {
                    self.push_sentence(text, start, i + 1, &mut tokens, &mut word);
                    start = i + 1;
                }
                i += 1;
            }
            if start < line_end {
                self.push_sentence(text, start, line_end, &mut tokens, &mut word);
            }
            line_start = line_end + 1;
        }
        tokens
    }

    fn push_sentence(
        &mut self,
        text: &str,
        start: usize,
        end: usize,
        tokens: &mut Tokens,
        word: &mut Vec<u8>,
    ) {
        let bytes = text.as_bytes();
        let first = tokens.words.len();
        let mut content_words = 0u32;
        let mut i = start;
        while i < end {
            if !bytes[i].is_ascii_alphabetic() {
                i += 1;
                continue;
            }
            word.clear();
            while i < end && bytes[i].is_ascii_alphabetic() {
                word.push(bytes[i].to_ascii_lowercase());
                i += 1;
            }
            if word.len() >= MIN_WORD_LEN {
                let id = self.word(word);
                if !self.stop[id as usize] {
                    content_words += 1;
                }
                tokens.words.push(id);
            }
        }
        if tokens.words.len() == first {
            return;
        }
        let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\r');
        let mut s = start;
        let mut e = end;
        while s < e && is_space(bytes[s]) {
            s += 1;
        }
        while e > s && is_space(bytes[e - 1]) {
            e -= 1;
        }
        let id = self.sentence(&tokens.words[first..]);
        tokens.sentences.push(Sentence {
            start: s,
            end: e,
            words: first..tokens.words.len(),
            id,
            content_words,
        });
    }
}

/// The end of the line starting at `from` (the index of its `\n`, or the text's length).
fn memchr_newline(bytes: &[u8], from: usize) -> usize {
    bytes[from.min(bytes.len())..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| from + p)
}

/// Plain-text filings are hard-wrapped: a single line break inside a paragraph is a space, so a
/// sentence wrapped over two lines stays one sentence. Blank lines (paragraph breaks) stay.
/// The result has the same length as the input, so section offsets still hold.
pub fn unwrap_plain_text(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    for i in 0..bytes.len() {
        if bytes[i] != b'\n' {
            continue;
        }
        let before = i > 0 && bytes[i - 1] == b'\n';
        let after = i + 1 < bytes.len() && bytes[i + 1] == b'\n';
        if !before && !after {
            out[i] = b' ';
        }
    }
    // Only ASCII newlines were replaced by ASCII spaces, so the bytes are still UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences(text: &str) -> Vec<String> {
        let mut interner = Interner::new();
        let tokens = interner.tokenize(text);
        tokens
            .sentences
            .iter()
            .map(|s| text[s.start..s.end].to_string())
            .collect()
    }

    #[test]
    fn sentences_end_at_a_terminator_before_a_space_or_the_line_end() {
        let cases: &[(&str, &[&str])] = &[
            ("One. Two! Three? Four", &["One.", "Two!", "Three?", "Four"]),
            (
                "U.S. sales rose 3.5% in 2024.",
                &["sales rose 3.5% in 2024."],
            ),
            ("The U.S. market.", &["The U.S.", "market."]),
            ("Heading\nBody text here.", &["Heading", "Body text here."]),
            ("Net sales | $ | 391,035", &["Net sales | $ | 391,035"]),
            ("$ | 1,234 | 5,678\n  \n", &[]),
            ("end.\r\nnext", &["end.", "next"]),
            ("a b c", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(sentences(text), *want, "{text:?}");
        }
    }

    #[test]
    fn words_are_ascii_letter_runs_of_two_or_more_lowercased() {
        let mut interner = Interner::new();
        let a = interner.tokenize("The Company's risk-factors: COVID-19 é a");
        let b = interner.tokenize("the company risk factors covid");
        assert_eq!(a.words, b.words);
        assert_eq!(a.sentences[0].id, b.sentences[0].id);
        // "the" is a stop word; company, risk, factors, covid are not.
        assert_eq!(a.sentences[0].content_words, 4);
    }

    #[test]
    fn unwrapping_joins_single_line_breaks_only() {
        assert_eq!(
            unwrap_plain_text("a wrapped\nsentence.\n\nNext para\n"),
            "a wrapped sentence.\n\nNext para "
        );
        assert_eq!(unwrap_plain_text("x").len(), 1);
    }
}
