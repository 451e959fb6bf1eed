//! HTML to clean text, the form every later step (sections, budgets, prompts) works on.
//!
//! Output conventions (callers rely on them):
//! - one block (paragraph, heading, div, list item) per line; no blank lines, except in
//!   plain-text documents (see below), where a blank line separates paragraphs;
//! - a table row is one line, its non-empty cells joined by `" | "`; blocks inside a cell do not
//!   break the row;
//! - inline-XBRL `<ix:header>`, `display:none` elements, `<script>`, `<style>`, `<title>` and
//!   `<head>` never reach the text;
//! - character references are decoded (HTML5 rules: `&#146;` is `’`); bytes that are not UTF-8
//!   are read as Windows-1252; NBSP and other spaces become plain spaces; zero-width characters
//!   and soft hyphens are dropped; runs of spaces collapse to one;
//! - `<pre>` content, and whole documents that are plain text wrapped in HTML (very few tags
//!   for their size, like 1990s-2000s EDGAR text filings), keep their line breaks;
//! - bare page numbers (`12`, `- 12 -`, `F-3`, `Page 4`, `iii`), rule lines (`-----`) and
//!   page footers repeated on many pages (the same line with only its numbers changing, or
//!   "Table of Contents" back-links) are dropped.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::entities::{cp1252_byte, decode_reference};
use crate::scan::{is_hidden_by_style, Token, Tokenizer};

/// The clean text of one filing document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilingText {
    /// The text; section offsets are byte offsets into it.
    pub text: String,
    /// True when the source was plain text wrapped in HTML and its line breaks were kept.
    pub plain_text_source: bool,
}

impl FilingText {
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl AsRef<str> for FilingText {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// A document with fewer than one tag per this many bytes is treated as plain text.
const PLAIN_TEXT_BYTES_PER_TAG: usize = 300;

/// Converts an HTML (or inline-XBRL, or HTML-wrapped plain-text) filing to clean text.
/// Never fails; malformed markup degrades to text.
pub fn html_to_text(html: &[u8]) -> FilingText {
    let plain_text_source = html.len() > 4096 && {
        let enough_tags = html.len() / PLAIN_TEXT_BYTES_PER_TAG;
        memchr::memchr_iter(b'<', html).nth(enough_tags).is_none()
    };
    let mut converter = Converter::new(html.len(), plain_text_source);
    converter.run(html);
    let raw = converter.writer.finish();
    FilingText {
        text: clean_lines(&raw, plain_text_source),
        plain_text_source,
    }
}

/// What separates the next visible character from the previous one; stronger wins.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Gap {
    None,
    Space,
    WideSpace,
    Cell,
    Line,
    BlankLine,
}

/// Builds the raw text. It holds only valid UTF-8: ASCII runs, whole validated sequences and
/// encoded `char`s are ever pushed.
struct Writer {
    out: Vec<u8>,
    gap: Gap,
    line_empty: bool,
}

impl Writer {
    fn gap(&mut self, gap: Gap) {
        if gap > self.gap {
            self.gap = gap;
        }
    }

    fn flush_gap(&mut self) {
        match self.gap {
            Gap::None => {}
            _ if self.out.is_empty() => {}
            Gap::BlankLine => {
                self.out.extend_from_slice(b"\n\n");
                self.line_empty = true;
            }
            Gap::Line => {
                self.out.push(b'\n');
                self.line_empty = true;
            }
            _ if self.line_empty => {}
            Gap::Cell => self.out.extend_from_slice(b" | "),
            Gap::WideSpace => self.out.extend_from_slice(b"  "),
            Gap::Space => self.out.push(b' '),
        }
        self.gap = Gap::None;
    }

    fn push_char(&mut self, c: char) {
        self.flush_gap();
        let mut buf = [0u8; 4];
        self.out
            .extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        self.line_empty = false;
    }

    /// Pushes bytes the caller has checked to be valid UTF-8.
    fn push_valid(&mut self, bytes: &[u8]) {
        self.flush_gap();
        self.out.extend_from_slice(bytes);
        self.line_empty = false;
    }

    fn finish(self) -> String {
        // Only valid UTF-8 was pushed, so the lossy path never copies.
        match String::from_utf8(self.out) {
            Ok(text) => text,
            Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
        }
    }
}

/// Tags that start a new line (outside table cells).
fn is_block(name: &[u8]) -> bool {
    matches!(
        name,
        b"p" | b"div"
            | b"br"
            | b"h1"
            | b"h2"
            | b"h3"
            | b"h4"
            | b"h5"
            | b"h6"
            | b"li"
            | b"ul"
            | b"ol"
            | b"dl"
            | b"dt"
            | b"dd"
            | b"blockquote"
            | b"center"
            | b"hr"
            | b"pre"
            | b"section"
            | b"article"
            | b"header"
            | b"footer"
            | b"nav"
            | b"aside"
            | b"main"
            | b"address"
            | b"form"
            | b"fieldset"
            | b"figure"
            | b"figcaption"
            | b"caption"
            | b"body"
            | b"html"
            | b"page"
            | b"document"
    )
}

fn is_void(name: &[u8]) -> bool {
    matches!(
        name,
        b"br"
            | b"hr"
            | b"img"
            | b"input"
            | b"meta"
            | b"link"
            | b"area"
            | b"base"
            | b"col"
            | b"embed"
            | b"param"
            | b"source"
            | b"track"
            | b"wbr"
    )
}

/// Whether `token` closes an unclosed hidden element `hidden` by HTML's implied end tags.
fn ends_implicitly(hidden: &[u8], token: &Token) -> bool {
    let (name, opening) = match token {
        Token::Start { name, .. } => (name.as_bytes(), true),
        Token::End { name } => (name.as_bytes(), false),
        Token::Text(_) => return false,
    };
    match hidden {
        b"head" => opening && name == b"body",
        b"td" | b"th" => {
            (opening && matches!(name, b"td" | b"th" | b"tr"))
                || (!opening && matches!(name, b"tr" | b"table" | b"tbody"))
        }
        b"tr" => (opening && name == b"tr") || (!opening && matches!(name, b"table" | b"tbody")),
        b"li" => (opening && name == b"li") || (!opening && matches!(name, b"ul" | b"ol")),
        b"p" => {
            (opening
                && matches!(
                    name,
                    b"p" | b"div" | b"table" | b"ul" | b"ol" | b"h1" | b"h2" | b"h3"
                ))
                || (!opening && matches!(name, b"div" | b"td" | b"body"))
        }
        _ => false,
    }
}

/// Elements whose content is never visible text.
fn is_invisible(name: &[u8]) -> bool {
    matches!(
        name,
        b"ix:header" | b"head" | b"title" | b"script" | b"style" | b"noscript" | b"template"
    )
}

struct Converter {
    writer: Writer,
    /// Name and nesting depth of the hidden element being skipped, if any.
    hidden: Option<([u8; 32], usize, usize)>,
    table_depth: usize,
    in_cell: bool,
    pre_depth: usize,
    plain_text: bool,
}

impl Converter {
    fn new(capacity: usize, plain_text: bool) -> Converter {
        Converter {
            writer: Writer {
                out: Vec::with_capacity(capacity / 3),
                gap: Gap::None,
                line_empty: true,
            },
            hidden: None,
            table_depth: 0,
            in_cell: false,
            pre_depth: 0,
            plain_text,
        }
    }

    fn run(&mut self, html: &[u8]) {
        for token in Tokenizer::new(html) {
            if let Some((name_buf, name_len, depth)) = &mut self.hidden {
                let hidden_name = &name_buf[..*name_len];
                if *depth == 1 && ends_implicitly(hidden_name, &token) {
                    // The hidden element was never closed (legal for <td>, <p>, <head>):
                    // this token belongs to what follows it.
                    self.hidden = None;
                } else {
                    match token {
                        Token::Start {
                            name, self_closing, ..
                        } if !self_closing && name.as_bytes() == hidden_name => *depth += 1,
                        Token::End { name } if name.as_bytes() == hidden_name => {
                            *depth -= 1;
                            if *depth == 0 {
                                self.hidden = None;
                            }
                        }
                        _ => {}
                    }
                    continue;
                }
            }
            match token {
                Token::Text(text) => self.text(text),
                Token::Start {
                    name,
                    attrs,
                    self_closing,
                } => {
                    let tag = name.as_bytes();
                    if self_closing || is_void(tag) {
                        if !self_closing || tag == b"br" || tag == b"hr" {
                            self.structure(tag, true);
                        }
                        continue;
                    }
                    if is_invisible(tag) || is_hidden_by_style(attrs) {
                        let mut buf = [0u8; 32];
                        buf[..tag.len()].copy_from_slice(tag);
                        self.hidden = Some((buf, tag.len(), 1));
                        continue;
                    }
                    self.structure(tag, true);
                }
                Token::End { name } => self.structure(name.as_bytes(), false),
            }
        }
    }

    fn structure(&mut self, tag: &[u8], opening: bool) {
        if self.plain_text {
            // Tags inside plain-text filings (<PAGE>, <TABLE>, <S>, <C>) are EDGAR markers
            // around text already laid out with spaces and line breaks.
            return;
        }
        match tag {
            b"pre" => {
                if opening {
                    self.pre_depth += 1;
                } else {
                    self.pre_depth = self.pre_depth.saturating_sub(1);
                }
                self.writer.gap(Gap::Line);
            }
            _ if self.pre_depth > 0 => {}
            b"table" => {
                if opening {
                    self.table_depth += 1;
                } else {
                    self.table_depth = self.table_depth.saturating_sub(1);
                }
                self.in_cell = false;
                self.writer.gap(Gap::Line);
            }
            b"tr" => {
                self.in_cell = false;
                self.writer.gap(Gap::Line);
            }
            b"td" | b"th" if opening => {
                self.in_cell = true;
                self.writer.gap(Gap::Cell);
            }
            _ if is_block(tag) => {
                if self.in_cell && self.table_depth > 0 {
                    self.writer.gap(Gap::Space);
                } else {
                    self.writer.gap(Gap::Line);
                }
            }
            _ => {}
        }
    }

    fn text(&mut self, text: &[u8]) {
        let keep_lines = self.plain_text || self.pre_depth > 0;
        let mut i = 0;
        let n = text.len();
        while i < n {
            let b = text[i];
            if b <= b' ' || b == 0x7F {
                // Whitespace; other control characters count as spaces too.
                if keep_lines && b == b'\n' {
                    // A second line break in a row (only spaces between) ends a paragraph.
                    let gap = if self.writer.gap >= Gap::Line {
                        Gap::BlankLine
                    } else {
                        Gap::Line
                    };
                    self.writer.gap(gap);
                    i += 1;
                    continue;
                }
                let start = i;
                while i < n
                    && (text[i] <= b' ' || text[i] == 0x7F)
                    && !(keep_lines && text[i] == b'\n')
                {
                    i += 1;
                }
                let spaces = text[start..i].iter().filter(|&&b| b != b'\r').count();
                if spaces >= 2 && keep_lines {
                    self.writer.gap(Gap::WideSpace);
                } else if spaces >= 1 {
                    self.writer.gap(Gap::Space);
                }
                continue;
            }
            if b == b'&' {
                if let Some((c, used)) = decode_reference(&text[i..]) {
                    self.visible_char(c);
                    i += used;
                } else {
                    self.writer.push_char('&');
                    i += 1;
                }
                continue;
            }
            if b < 0x80 {
                // Copy the run of printable ASCII in one go, single spaces between words
                // included (a lone space needs no collapsing).
                let start = i;
                let printable = |c: u8| c > b' ' && c < 0x7F && c != b'&';
                while i < n {
                    if printable(text[i]) {
                        i += 1;
                    } else if text[i] == b' ' && i + 1 < n && printable(text[i + 1]) {
                        i += 2;
                    } else {
                        break;
                    }
                }
                self.writer.push_valid(&text[start..i]);
                continue;
            }
            let width = utf8_sequence_len(&text[i..]);
            if width == 0 {
                self.visible_char(cp1252_byte(b));
                i += 1;
                continue;
            }
            let sequence = &text[i..i + width];
            match sequence {
                // NBSP, the U+2000 spaces, zero-width characters, BOM and soft hyphen go
                // through the character rules; everything else is copied as is.
                [0xC2, 0xA0]
                | [0xC2, 0xAD]
                | [0xE2, 0x80, _]
                | [0xE2, 0x81, _]
                | [0xE3, 0x80, 0x80]
                | [0xEF, 0xBB, 0xBF] => {
                    let c = std::str::from_utf8(sequence)
                        .ok()
                        .and_then(|s| s.chars().next())
                        .unwrap_or(' ');
                    self.visible_char(c);
                }
                // C1 controls in UTF-8 are nearly always Windows-1252 text converted twice.
                [0xC2, second] if *second < 0xA0 => self.visible_char(cp1252_byte(*second)),
                _ => self.writer.push_valid(sequence),
            }
            i += width;
        }
    }

    fn visible_char(&mut self, c: char) {
        match c {
            '\u{A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => {
                self.writer.gap(Gap::Space)
            }
            '\u{200B}'..='\u{200F}' | '\u{AD}' | '\u{FEFF}' | '\u{2060}' => {}
            c if c.is_control() => self.writer.gap(Gap::Space),
            c => self.writer.push_char(c),
        }
    }
}

/// Length of the valid UTF-8 sequence starting `bytes` (non-empty, first byte >= 0x80), or 0
/// when it is not one (then the byte is read as Windows-1252).
fn utf8_sequence_len(bytes: &[u8]) -> usize {
    let continuation = |i: usize| bytes.get(i).is_some_and(|b| (0x80..=0xBF).contains(b));
    let second_in =
        |range: std::ops::RangeInclusive<u8>| bytes.get(1).is_some_and(|b| range.contains(b));
    match bytes[0] {
        0xC2..=0xDF if continuation(1) => 2,
        0xE0 if second_in(0xA0..=0xBF) && continuation(2) => 3,
        0xE1..=0xEC | 0xEE..=0xEF if continuation(1) && continuation(2) => 3,
        0xED if second_in(0x80..=0x9F) && continuation(2) => 3,
        0xF0 if second_in(0x90..=0xBF) && continuation(2) && continuation(3) => 4,
        0xF1..=0xF3 if continuation(1) && continuation(2) && continuation(3) => 4,
        0xF4 if second_in(0x80..=0x8F) && continuation(2) && continuation(3) => 4,
        _ => 0,
    }
}

/// Whether a line is a bare page number or page label.
fn is_page_number(line: &str) -> bool {
    let core = line
        .trim()
        .trim_matches(|c: char| c == '-' || c == '\u{2014}' || c == '\u{2013}' || c == ' ');
    if core.is_empty() {
        return false;
    }
    let core = core
        .strip_prefix("Page ")
        .or_else(|| core.strip_prefix("PAGE "))
        .unwrap_or(core);
    let digits = core
        .strip_prefix("F-")
        .or_else(|| core.strip_prefix("F - "))
        .or_else(|| core.strip_prefix("A-"))
        .unwrap_or(core);
    // Three digits at most: a bare four-digit line is more often a year heading than a page.
    if !digits.is_empty() && digits.len() <= 3 && digits.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    core.len() <= 5
        && core
            .bytes()
            .all(|b| matches!(b, b'i' | b'v' | b'x' | b'I' | b'V' | b'X'))
        && core != "I"
        && core != "V"
        && core != "X"
}

/// Lines made only of rule characters (`-----`, `=====`, `_____`).
fn is_rule(line: &str) -> bool {
    let mut any = false;
    for c in line.chars() {
        match c {
            '-' | '=' | '_' | '*' | '\u{2014}' | '\u{2013}' | '|' => any = true,
            ' ' => {}
            _ => return false,
        }
    }
    any
}

/// A hash of a line with its digits removed, used to recognise running page headers and
/// footers (FNV-1a: no allocation per line, and collisions only merge look-alike lines).
fn footer_key(line: &str) -> Option<u64> {
    if line.len() > 120 || !line.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in line.bytes().filter(|b| !b.is_ascii_digit()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    Some(hash)
}

/// The first and last runs of digits in a line, as numbers.
fn edge_numbers(line: &str) -> (u64, u64) {
    let mut runs = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| !run.is_empty() && run.len() <= 6)
        .filter_map(|run| run.parse::<u64>().ok());
    let first = runs.next().unwrap_or(0);
    let last = runs.next_back().unwrap_or(first);
    (first, last)
}

/// How many times the same footer shape must recur before it counts as a page footer.
const FOOTER_MIN_REPEATS: usize = 8;
/// "Table of Contents" back-links count as page headers when repeated this often.
const TOC_LINK_MIN_REPEATS: usize = 8;

/// Whether numbers taken from successive occurrences of a line count pages: mostly rising by
/// small steps. This tells a footer ("Apple Inc. | 2024 Form 10-K | 17") from a table row that
/// merely recurs with different amounts ("Total | $ | 1,234").
fn counts_pages(numbers: &[u64]) -> bool {
    let steps = numbers
        .windows(2)
        .filter(|w| w[1] > w[0] && w[1] - w[0] <= 3)
        .count();
    numbers.len() >= FOOTER_MIN_REPEATS && steps * 4 >= (numbers.len() - 1) * 3
}

fn clean_lines(raw: &str, keep_blank_lines: bool) -> String {
    let mut footer_numbers: HashMap<u64, (Vec<u64>, Vec<u64>)> = HashMap::new();
    let mut toc_links = 0usize;
    for line in raw.lines() {
        let line = line.trim_matches(|c: char| c == ' ' || c == '|');
        if let Some(key) = footer_key(line) {
            let (first, last) = edge_numbers(line);
            let entry = footer_numbers.entry(key).or_default();
            entry.0.push(first);
            entry.1.push(last);
        }
        if line.eq_ignore_ascii_case("table of contents") {
            toc_links += 1;
        }
    }
    footer_numbers.retain(|_, (first, last)| counts_pages(first) || counts_pages(last));
    let mut out = String::with_capacity(raw.len());
    let mut previous_blank = true;
    for line in raw.lines() {
        let line = line.trim_matches(|c: char| c == ' ' || c == '|');
        let drop = line.is_empty()
            || is_page_number(line)
            || is_rule(line)
            || (toc_links >= TOC_LINK_MIN_REPEATS
                && line.eq_ignore_ascii_case("table of contents"))
            || (!footer_numbers.is_empty()
                && footer_key(line).is_some_and(|key| footer_numbers.contains_key(&key)));
        if drop {
            if line.is_empty() && keep_blank_lines && !previous_blank {
                out.push('\n');
                previous_blank = true;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
        previous_blank = false;
    }
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(html: &str) -> String {
        html_to_text(html.as_bytes()).text
    }

    #[test]
    fn blocks_become_lines_and_inline_markup_vanishes() {
        assert_eq!(
            text("<p>Hello <b>big</b>\n  world</p><div>Next&nbsp;line</div>"),
            "Hello big world\nNext line"
        );
    }

    #[test]
    fn tables_become_rows_of_cells() {
        let html = "<table><tr><td>ITEM 1.</td><td><div>BUSINESS</div></td></tr>\
                    <tr><td>$</td><td></td><td>100</td></tr></table>";
        assert_eq!(text(html), "ITEM 1. | BUSINESS\n$ | 100");
    }

    #[test]
    fn hidden_inline_xbrl_and_display_none_are_removed() {
        let html = "<div style=\"display:none\"><ix:header><ix:hidden>SECRET1</ix:hidden>\
                    </ix:header></div><p>Visible</p><ix:header>SECRET2</ix:header>\
                    <td style=\"display:none\"/><span style='display: none'><span>SECRET3</span>\
                    </span><p>After</p>";
        assert_eq!(text(html), "Visible\nAfter");
    }

    #[test]
    fn unclosed_hidden_elements_end_where_html_implies() {
        let html = "<table><tr><td style=\"display:none\">SECRET<td>A<td>B</table>\
                    <p style=\"display:none\">SECRET2<p>C";
        assert_eq!(text(html), "A | B\nC");
        assert_eq!(text("<head><title>T</title><body><p>Body"), "Body");
    }

    #[test]
    fn upper_case_html_and_windows_1252_references() {
        let html = "<HTML><BODY><P>Item 5: Market for Registrant&#146;s Common Equity\
                    <P>&#147;Quoted&#148; &#151; done</BODY></HTML>";
        assert_eq!(
            text(html),
            "Item 5: Market for Registrant\u{2019}s Common Equity\n\u{201C}Quoted\u{201D} \u{2014} done"
        );
    }

    #[test]
    fn latin1_bytes_are_decoded_leniently() {
        let html = b"<p>Caf\xe9 \x93quoted\x94 \xff</p>";
        assert_eq!(
            html_to_text(html).text,
            "Caf\u{e9} \u{201C}quoted\u{201D} \u{ff}"
        );
    }

    #[test]
    fn pre_keeps_line_breaks() {
        assert_eq!(
            text("<pre>Line one\nLine   two\n\nPara two</pre>"),
            "Line one\nLine  two\nPara two"
        );
    }

    #[test]
    fn plain_text_documents_wrapped_in_html_keep_line_breaks() {
        let mut body = String::from("<html><body><div>\n");
        for i in 0..200 {
            let marker = if i % 50 == 0 { " <S> <C>" } else { "" };
            if i % 10 == 9 {
                body.push_str("   \n");
            }
            let letter = char::from(b'a' + (i % 26) as u8);
            body.push_str(&format!("Line {letter} of a plain text filing{marker}\n"));
        }
        body.push_str("</div></body></html>");
        let converted = html_to_text(body.as_bytes());
        assert!(converted.plain_text_source);
        assert!(
            converted
                .text
                .starts_with("Line a of a plain text filing\nLine b of a plain text filing\n"),
            "{}",
            converted.text
        );
        assert!(!converted.text.contains("<S>"));
        assert!(converted
            .text
            .contains("Line i of a plain text filing\n\nLine j"));
    }

    #[test]
    fn page_numbers_rules_and_running_footers_are_dropped() {
        let mut html = String::new();
        for page in 1..=10 {
            html.push_str(&format!(
                "<p>Body text</p><p>Total | $ | {}</p><p>-{page}-</p><p>Apple Inc. | 2024 Form 10-K | {page}</p><hr><p>------</p>",
                page * 7919 % 1000
            ));
        }
        let t = text(&html);
        assert!(
            t.starts_with("Body text\nTotal | $ | 919\nBody text"),
            "{t}"
        );
        assert!(!t.contains("Form 10-K"));
        assert!(!t.contains("-3-"));
        assert_eq!(
            text("<p>Body</p><p>12</p><p>F-7</p><p>iii</p><p>2024</p>"),
            "Body\n2024"
        );
    }

    #[test]
    fn garbage_does_not_panic() {
        for html in [
            &b"<"[..],
            b"&#",
            b"\xff\xfe<\x00>",
            b"<td style=\"display:none\"",
            b"<p",
        ] {
            let _ = html_to_text(html);
        }
    }
}
