//! A forgiving HTML/XML tokenizer over raw bytes, shared by the text converter and the
//! inline-XBRL fact reader. It never fails: anything that is not a well-formed tag is text.
//!
//! Hand-written on `memchr` because conversion speed matters (whole 10-Ks at hundreds of MB/s)
//! and filings need little of a browser's tree building: tag names, a few attributes and text.

use std::sync::LazyLock;

use memchr::{memchr, memchr3, memmem};

/// Longest tag name kept; longer names are truncated (no tag we act on is that long).
const MAX_NAME: usize = 32;

/// A tag name, lower-cased ASCII, namespace prefix included (`ix:nonfraction`).
#[derive(Clone, Copy)]
pub struct TagName {
    bytes: [u8; MAX_NAME],
    len: usize,
}

impl TagName {
    fn new(raw: &[u8]) -> TagName {
        let mut bytes = [0u8; MAX_NAME];
        let len = raw.len().min(MAX_NAME);
        for (slot, b) in bytes.iter_mut().zip(&raw[..len]) {
            *slot = b.to_ascii_lowercase();
        }
        TagName { bytes, len }
    }

    /// The lower-cased name.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The name without its namespace prefix (`context` for `xbrli:context`).
    pub fn local(&self) -> &[u8] {
        let name = self.as_bytes();
        match memchr(b':', name) {
            Some(i) => &name[i + 1..],
            None => name,
        }
    }
}

/// One piece of the document.
pub enum Token<'a> {
    /// Raw text between tags (character references not yet decoded).
    Text(&'a [u8]),
    /// `<name attrs>` or `<name attrs/>`.
    Start {
        name: TagName,
        attrs: &'a [u8],
        self_closing: bool,
    },
    /// `</name>`.
    End { name: TagName },
}

/// Iterates over the tokens of a document; comments, doctypes and processing instructions
/// are skipped, and the content of `<script>` and `<style>` is skipped whole.
pub struct Tokenizer<'a> {
    input: &'a [u8],
    pos: usize,
    skip_raw_text_of: Option<&'static [u8]>,
}

impl<'a> Tokenizer<'a> {
    pub fn new(input: &'a [u8]) -> Tokenizer<'a> {
        Tokenizer {
            input,
            pos: 0,
            skip_raw_text_of: None,
        }
    }

    fn skip_raw_text(&mut self, closing: &[u8]) {
        // Search for "</script" (any case): find '<' '/' then compare the name.
        let input = self.input;
        let mut at = self.pos;
        while let Some(i) = memchr(b'<', &input[at..]) {
            let start = at + i;
            let rest = &input[start..];
            if rest.len() > closing.len() + 1
                && rest[1] == b'/'
                && rest[2..2 + closing.len()].eq_ignore_ascii_case(closing)
            {
                self.pos = start;
                return;
            }
            at = start + 1;
        }
        self.pos = input.len();
    }

    /// End of a tag whose name ended at `from`: the index of its `>`, skipping quoted values.
    fn tag_end(&self, from: usize) -> Option<usize> {
        let input = self.input;
        let mut at = from;
        loop {
            let i = memchr3(b'>', b'"', b'\'', &input[at..])?;
            let hit = at + i;
            match input[hit] {
                b'>' => return Some(hit),
                quote => match memchr(quote, &input[hit + 1..]) {
                    Some(j) => at = hit + 1 + j + 1,
                    // An unbalanced quote: fall back to the first '>' as browsers roughly do.
                    None => return memchr(b'>', &input[from..]).map(|j| from + j),
                },
            }
        }
    }
}

impl<'a> Iterator for Tokenizer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        if let Some(closing) = self.skip_raw_text_of.take() {
            self.skip_raw_text(closing);
        }
        let input = self.input;
        loop {
            if self.pos >= input.len() {
                return None;
            }
            let rest = &input[self.pos..];
            if rest[0] != b'<' {
                let len = memchr(b'<', rest).unwrap_or(rest.len());
                self.pos += len;
                return Some(Token::Text(&rest[..len]));
            }
            let Some(&second) = rest.get(1) else {
                self.pos += 1;
                return Some(Token::Text(rest));
            };
            match second {
                b'!' => {
                    let end = if rest.starts_with(b"<!--") {
                        memmem::find(&rest[4..], b"-->").map(|i| 4 + i + 3)
                    } else {
                        memchr(b'>', rest).map(|i| i + 1)
                    };
                    self.pos += end.unwrap_or(rest.len());
                    continue;
                }
                b'?' => {
                    self.pos += memchr(b'>', rest).map_or(rest.len(), |i| i + 1);
                    continue;
                }
                b'/' if rest.get(2).is_some_and(|b| b.is_ascii_alphabetic()) => {
                    let name_len = rest[2..]
                        .iter()
                        .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')
                        .unwrap_or(rest.len() - 2);
                    let name = TagName::new(&rest[2..2 + name_len]);
                    let end = memchr(b'>', rest).map_or(rest.len(), |i| i + 1);
                    self.pos += end;
                    return Some(Token::End { name });
                }
                b if b.is_ascii_alphabetic() => {
                    let name_len = rest[1..]
                        .iter()
                        .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')
                        .unwrap_or(rest.len() - 1);
                    let name_end = self.pos + 1 + name_len;
                    let name = TagName::new(&input[self.pos + 1..name_end]);
                    let Some(gt) = self.tag_end(name_end) else {
                        // No closing '>' anywhere: the rest is text.
                        self.pos = input.len();
                        return Some(Token::Text(rest));
                    };
                    let self_closing = gt > name_end && input[gt - 1] == b'/';
                    let attrs_end = if self_closing { gt - 1 } else { gt };
                    let attrs = &input[name_end..attrs_end.max(name_end)];
                    self.pos = gt + 1;
                    if !self_closing {
                        match name.as_bytes() {
                            b"script" => self.skip_raw_text_of = Some(b"script"),
                            b"style" => self.skip_raw_text_of = Some(b"style"),
                            _ => {}
                        }
                    }
                    return Some(Token::Start {
                        name,
                        attrs,
                        self_closing,
                    });
                }
                _ => {
                    // A literal '<' (as in "< 5%" or plain-text filings): text up to the next '<'.
                    let len = 1 + memchr(b'<', &rest[1..]).unwrap_or(rest.len() - 1);
                    self.pos += len;
                    return Some(Token::Text(&rest[..len]));
                }
            }
        }
    }
}

/// The value of attribute `wanted` (ASCII, lower case) in a tag's attribute bytes, if present.
/// Attribute names compare case-insensitively; values are returned raw (not entity-decoded).
pub fn attribute<'a>(attrs: &'a [u8], wanted: &[u8]) -> Option<&'a [u8]> {
    let mut i = 0;
    let n = attrs.len();
    while i < n {
        while i < n && (attrs[i].is_ascii_whitespace() || attrs[i] == b'/') {
            i += 1;
        }
        let name_start = i;
        while i < n && !attrs[i].is_ascii_whitespace() && attrs[i] != b'=' && attrs[i] != b'/' {
            i += 1;
        }
        let name = &attrs[name_start..i];
        while i < n && attrs[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value: &[u8] = b"";
        if i < n && attrs[i] == b'=' {
            i += 1;
            while i < n && attrs[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < n && (attrs[i] == b'"' || attrs[i] == b'\'') {
                let quote = attrs[i];
                let start = i + 1;
                let end = memchr(quote, &attrs[start..]).map_or(n, |j| start + j);
                value = &attrs[start..end];
                i = (end + 1).min(n);
            } else {
                let start = i;
                while i < n && !attrs[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = &attrs[start..i];
            }
        }
        if name.eq_ignore_ascii_case(wanted) {
            return Some(value);
        }
        if name.is_empty() && i == name_start {
            i += 1;
        }
    }
    None
}

/// Whether a tag's attributes hide it (`style="display:none"`, any spacing or case).
pub fn is_hidden_by_style(attrs: &[u8]) -> bool {
    static NONE_LOWER: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"none"));
    static NONE_UPPER: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"NONE"));
    if attrs.len() < 12 || (NONE_LOWER.find(attrs).is_none() && NONE_UPPER.find(attrs).is_none()) {
        return false;
    }
    let Some(style) = attribute(attrs, b"style") else {
        return false;
    };
    let compact: Vec<u8> = style
        .iter()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| b.to_ascii_lowercase())
        .collect();
    memmem::find(&compact, b"display:none").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(html: &str) -> Vec<String> {
        Tokenizer::new(html.as_bytes())
            .map(|t| match t {
                Token::Text(t) => format!("T:{}", String::from_utf8_lossy(t)),
                Token::Start {
                    name, self_closing, ..
                } => format!(
                    "S:{}{}",
                    String::from_utf8_lossy(name.as_bytes()),
                    if self_closing { "/" } else { "" }
                ),
                Token::End { name } => format!("E:{}", String::from_utf8_lossy(name.as_bytes())),
            })
            .collect()
    }

    #[test]
    fn tokens_of_mixed_markup() {
        assert_eq!(
            names("<P>a<!-- x<y -->b<br/><td title='a>b'>c</TD>< 5% <script>if(a<b){}</script>d"),
            [
                "S:p", "T:a", "T:b", "S:br/", "S:td", "T:c", "E:td", "T:< 5% ", "S:script",
                "E:script", "T:d"
            ]
        );
    }

    #[test]
    fn attributes_and_hidden_style() {
        let attrs = b" name=\"us-gaap:Revenues\" contextRef='c-1' scale=6 STYLE=\"DISPLAY: NONE\"";
        assert_eq!(attribute(attrs, b"name"), Some(&b"us-gaap:Revenues"[..]));
        assert_eq!(attribute(attrs, b"contextref"), Some(&b"c-1"[..]));
        assert_eq!(attribute(attrs, b"scale"), Some(&b"6"[..]));
        assert_eq!(attribute(attrs, b"missing"), None);
        assert!(is_hidden_by_style(attrs));
        assert!(!is_hidden_by_style(b" style=\"display:block\" class=none"));
    }

    #[test]
    fn truncated_documents_do_not_panic() {
        for html in [
            "<",
            "<a",
            "<a href='x",
            "</",
            "<!--",
            "&",
            "<td style=\"display:none\"/",
        ] {
            let _ = names(html);
        }
    }
}
