//! HTML character references: named entities, decimal and hex references, and the Windows-1252
//! reading of the C1 range that old SEC filings rely on (`&#146;` is a right single quote).

/// Latin-1 supplement names, in code point order from U+00A0.
const LATIN1_NAMES: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
    "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
    "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute",
    "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil",
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
    "uuml", "yacute", "thorn", "yuml",
];

/// Other named references seen in filings (punctuation, symbols, a few Greek letters).
const OTHER_NAMES: [(&str, char); 58] = [
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("mdash", '\u{2014}'),
    ("ndash", '\u{2013}'),
    ("hellip", '\u{2026}'),
    ("lsquo", '\u{2018}'),
    ("rsquo", '\u{2019}'),
    ("sbquo", '\u{201A}'),
    ("ldquo", '\u{201C}'),
    ("rdquo", '\u{201D}'),
    ("bdquo", '\u{201E}'),
    ("bull", '\u{2022}'),
    ("dagger", '\u{2020}'),
    ("Dagger", '\u{2021}'),
    ("permil", '\u{2030}'),
    ("prime", '\u{2032}'),
    ("Prime", '\u{2033}'),
    ("lsaquo", '\u{2039}'),
    ("rsaquo", '\u{203A}'),
    ("euro", '\u{20AC}'),
    ("trade", '\u{2122}'),
    ("ensp", '\u{2002}'),
    ("emsp", '\u{2003}'),
    ("thinsp", '\u{2009}'),
    ("zwnj", '\u{200C}'),
    ("zwj", '\u{200D}'),
    ("lrm", '\u{200E}'),
    ("rlm", '\u{200F}'),
    ("larr", '\u{2190}'),
    ("uarr", '\u{2191}'),
    ("rarr", '\u{2192}'),
    ("darr", '\u{2193}'),
    ("harr", '\u{2194}'),
    ("minus", '\u{2212}'),
    ("le", '\u{2264}'),
    ("ge", '\u{2265}'),
    ("ne", '\u{2260}'),
    ("asymp", '\u{2248}'),
    ("infin", '\u{221E}'),
    ("radic", '\u{221A}'),
    ("sum", '\u{2211}'),
    ("loz", '\u{25CA}'),
    ("check", '\u{2713}'),
    ("cross", '\u{2717}'),
    ("squ", '\u{25A1}'),
    ("alpha", '\u{03B1}'),
    ("beta", '\u{03B2}'),
    ("gamma", '\u{03B3}'),
    ("delta", '\u{03B4}'),
    ("Delta", '\u{0394}'),
    ("mu", '\u{03BC}'),
    ("pi", '\u{03C0}'),
    ("sigma", '\u{03C3}'),
    ("fnof", '\u{0192}'),
    ("circ", '\u{02C6}'),
];

/// Windows-1252 characters for bytes (and numeric references) 0x80..=0x9F. Bytes that
/// Windows-1252 leaves undefined map to U+FFFD.
const CP1252_C1: [char; 32] = [
    '\u{20AC}', '\u{FFFD}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{FFFD}', '\u{017D}', '\u{FFFD}',
    '\u{FFFD}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{FFFD}', '\u{017E}', '\u{0178}',
];

/// The character a single non-UTF-8 byte stands for, read as Windows-1252 (a superset of
/// Latin-1 for printable characters), which is what old filings without a charset use.
pub fn cp1252_byte(byte: u8) -> char {
    match byte {
        0x80..=0x9F => CP1252_C1[usize::from(byte - 0x80)],
        _ => char::from(byte),
    }
}

/// The character for a numeric reference, with the HTML5 rules: C1 code points are read as
/// Windows-1252, NUL, surrogates and out-of-range values become U+FFFD.
pub fn numeric_reference(code: u32) -> char {
    match code {
        0 => '\u{FFFD}',
        0x80..=0x9F => CP1252_C1[(code - 0x80) as usize],
        _ => char::from_u32(code).unwrap_or('\u{FFFD}'),
    }
}

/// The character for a named reference (without `&` and `;`). Names are case-sensitive as in
/// HTML, but an all-upper-case spelling of an ASCII entity (`&NBSP;`, `&AMP;`), common in
/// 1990s filings, is accepted too.
pub fn named_reference(name: &[u8]) -> Option<char> {
    let lookup = |candidate: &[u8]| -> Option<char> {
        if let Some(index) = LATIN1_NAMES.iter().position(|n| n.as_bytes() == candidate) {
            return char::from_u32(0xA0 + index as u32);
        }
        OTHER_NAMES
            .iter()
            .find(|(n, _)| n.as_bytes() == candidate)
            .map(|(_, c)| *c)
    };
    lookup(name).or_else(|| {
        if name.len() <= 8 && name.iter().all(|b| b.is_ascii_uppercase()) {
            let mut lower = [0u8; 8];
            for (slot, b) in lower.iter_mut().zip(name) {
                *slot = b.to_ascii_lowercase();
            }
            lookup(&lower[..name.len()])
        } else {
            None
        }
    })
}

/// Decodes a character reference starting at `input[0] == b'&'`. Returns the character and
/// the number of bytes consumed, or `None` when the `&` is a literal ampersand.
pub fn decode_reference(input: &[u8]) -> Option<(char, usize)> {
    debug_assert_eq!(input.first(), Some(&b'&'));
    if input.get(1) == Some(&b'#') {
        let (radix, digits_start) = match input.get(2) {
            Some(b'x') | Some(b'X') => (16, 3),
            _ => (10, 2),
        };
        let mut end = digits_start;
        let mut value: u32 = 0;
        while let Some(&b) = input.get(end) {
            let digit = match (b as char).to_digit(radix) {
                Some(d) => d,
                None => break,
            };
            value = value.saturating_mul(radix).saturating_add(digit);
            end += 1;
            if end - digits_start > 8 {
                break;
            }
        }
        if end == digits_start {
            return None;
        }
        if input.get(end) == Some(&b';') {
            end += 1;
        }
        return Some((numeric_reference(value), end));
    }
    let mut end = 1;
    while end < input.len() && end <= 10 && input[end].is_ascii_alphanumeric() {
        end += 1;
    }
    if end == 1 {
        return None;
    }
    let name = &input[1..end];
    let with_semicolon = input.get(end) == Some(&b';');
    let c = named_reference(name)?;
    if with_semicolon {
        Some((c, end + 1))
    } else if matches!(
        name,
        b"nbsp" | b"amp" | b"lt" | b"gt" | b"quot" | b"NBSP" | b"AMP"
    ) {
        // Legacy documents omit the semicolon on the commonest names; browsers accept them.
        Some((c, end))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_1252_numeric_references_decode_to_typographic_characters() {
        assert_eq!(decode_reference(b"&#146;s"), Some(('\u{2019}', 6)));
        assert_eq!(decode_reference(b"&#151;"), Some(('\u{2014}', 6)));
        assert_eq!(decode_reference(b"&#x2019;"), Some(('\u{2019}', 8)));
        assert_eq!(decode_reference(b"&#147"), Some(('\u{201C}', 5)));
    }

    #[test]
    fn named_references_including_upper_case_and_latin1() {
        assert_eq!(decode_reference(b"&nbsp;"), Some(('\u{A0}', 6)));
        assert_eq!(decode_reference(b"&NBSP;"), Some(('\u{A0}', 6)));
        assert_eq!(decode_reference(b"&eacute;"), Some(('é', 8)));
        assert_eq!(decode_reference(b"&Eacute;"), Some(('É', 8)));
        assert_eq!(decode_reference(b"&mdash;"), Some(('\u{2014}', 7)));
        assert_eq!(decode_reference(b"&amp "), Some(('&', 4)));
    }

    #[test]
    fn bare_ampersands_stay_literal() {
        assert_eq!(decode_reference(b"& T"), None);
        assert_eq!(decode_reference(b"&unknownname;"), None);
        assert_eq!(decode_reference(b"&#;"), None);
    }

    #[test]
    fn cp1252_bytes() {
        assert_eq!(cp1252_byte(0x92), '\u{2019}');
        assert_eq!(cp1252_byte(0xE9), 'é');
        assert_eq!(cp1252_byte(0x81), '\u{FFFD}');
    }
}
