//! Masking API keys and neutralising spreadsheet formulas in exported text.

use serde_json::Value;

/// Replaces anything shaped like a Google API key (`AIza` + 20 or more of `[0-9A-Za-z_-]`) or an
/// OpenAI-style key (`sk-` + 20 or more alphanumerics) with its prefix, `…` and its last four
/// characters, e.g. `AIza…wxyz`. The masked form no longer matches either pattern.
pub fn mask_keys(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let found = key_at(bytes, i, b"AIza", |b| {
            b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
        })
        .or_else(|| key_at(bytes, i, b"sk-", |b| b.is_ascii_alphanumeric()));
        match found {
            Some((prefix_len, end)) => {
                // Keys are ASCII, so these are character boundaries.
                out.push_str(&text[copied..i]);
                out.push_str(&text[i..i + prefix_len]);
                out.push('…');
                out.push_str(&text[end - 4..end]);
                copied = end;
                i = end;
            }
            None => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// If a key with `prefix` starts at `i`, its prefix length and end offset.
fn key_at(
    bytes: &[u8],
    i: usize,
    prefix: &[u8],
    in_class: impl Fn(u8) -> bool,
) -> Option<(usize, usize)> {
    if !bytes[i..].starts_with(prefix) {
        return None;
    }
    let body = bytes[i + prefix.len()..]
        .iter()
        .take_while(|b| in_class(**b))
        .count();
    (body >= 20).then_some((prefix.len(), i + prefix.len() + body))
}

/// Masks every string of a JSON value in place.
pub(crate) fn mask_json(value: &mut Value) {
    match value {
        Value::String(s) => {
            let masked = mask_keys(s);
            if masked != *s {
                *s = masked;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        Value::Object(map) => map.values_mut().for_each(mask_json),
        _ => {}
    }
}

/// Prefixes `'` to text a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`,
/// tab or carriage return). Only text cells pass through here: numeric cells (a negative number
/// included) are written as numbers by the exporters and never altered.
pub fn neutralise_formula(text: &str) -> String {
    if matches!(
        text.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    ) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_masked_and_other_text_kept() {
        let google = "AIzaSyA1234567890abcdefghij_KLMN-op";
        let openai = "sk-ABCDEFGHIJKLMNOPQRSTUVWX";
        let text = format!("key {google} and {openai}, done");
        let masked = mask_keys(&text);
        assert_eq!(masked, "key AIza…N-op and sk-…UVWX, done");
        assert!(!masked.contains(google) && !masked.contains(openai));
        // Masking is idempotent: the masked form does not match again.
        assert_eq!(mask_keys(&masked), masked);
        // Too short to be a key, or not a key shape at all.
        for keep in ["AIzaShort", "sk-short", "risk-free rate", "ésk-ü", ""] {
            assert_eq!(mask_keys(keep), keep);
        }
        // Unicode around a key survives.
        assert_eq!(mask_keys("→sk-aaaaaaaaaaaaaaaaaaaaaaaa←"), "→sk-…aaaa←");
    }

    #[test]
    fn formulas_are_neutralised_numbers_kept() {
        assert_eq!(
            neutralise_formula("=HYPERLINK(\"http://x\")"),
            "'=HYPERLINK(\"http://x\")"
        );
        assert_eq!(neutralise_formula("+1"), "'+1");
        assert_eq!(neutralise_formula("-2+3"), "'-2+3");
        assert_eq!(neutralise_formula("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise_formula("\tx"), "'\tx");
        assert_eq!(neutralise_formula("\rx"), "'\rx");
        assert_eq!(neutralise_formula("-"), "'-");
        assert_eq!(neutralise_formula("plain"), "plain");
    }
}
