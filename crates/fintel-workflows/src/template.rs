//! Prompt templates: `{name}` placeholders, `{{` and `}}` for literal braces.
//!
//! A template is checked once when its workflow is loaded ([`check`]), so that a typo is caught
//! before any quota is spent, and filled in when a request is built ([`render`]). Values are
//! inserted verbatim: braces inside a value (a filing's text, the yearly JSON) are never read
//! as placeholders.

use crate::error::Problem;

/// Placeholders of a per-year step, in the order the documentation lists them.
pub const YEAR_PLACEHOLDERS: &[&str] = &["ticker", "company_name", "year", "form", "document"];

/// Placeholders of an aggregate step.
pub const AGGREGATE_PLACEHOLDERS: &[&str] = &["ticker", "company_name", "years", "yearly_results"];

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment<'a> {
    /// Text sent as is (with `{{`/`}}` already turned into single braces).
    Literal(std::borrow::Cow<'a, str>),
    /// A placeholder name, without braces.
    Placeholder(&'a str),
}

/// A template syntax problem, with the byte offset in the template where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) offset: usize,
    pub(crate) detail: String,
}

/// Splits a template into literal text and placeholders.
pub(crate) fn parse(template: &str) -> Result<Vec<Segment<'_>>, SyntaxError> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut literal_start = 0;
    let mut borrowed = true;
    let bytes = template.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                literal.push_str(&template[literal_start..i + 1]);
                borrowed = false;
                i += 2;
                literal_start = i;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                literal.push_str(&template[literal_start..i + 1]);
                borrowed = false;
                i += 2;
                literal_start = i;
            }
            b'{' => {
                let Some(close) = template[i + 1..].find(['}', '{', '\n']) else {
                    return Err(SyntaxError {
                        offset: i,
                        detail: "a `{` that is never closed".to_string(),
                    });
                };
                let close = i + 1 + close;
                if bytes[close] != b'}' {
                    return Err(SyntaxError {
                        offset: i,
                        detail: "a `{` that is not closed on the same line".to_string(),
                    });
                }
                let name = &template[i + 1..close];
                flush(
                    &mut segments,
                    template,
                    &mut literal,
                    literal_start,
                    i,
                    &mut borrowed,
                );
                segments.push(Segment::Placeholder(name));
                i = close + 1;
                literal_start = i;
            }
            b'}' => {
                return Err(SyntaxError {
                    offset: i,
                    detail: "a lone `}`".to_string(),
                });
            }
            _ => i += 1,
        }
    }
    flush(
        &mut segments,
        template,
        &mut literal,
        literal_start,
        template.len(),
        &mut borrowed,
    );
    Ok(segments)
}

fn flush<'a>(
    segments: &mut Vec<Segment<'a>>,
    template: &'a str,
    literal: &mut String,
    start: usize,
    end: usize,
    borrowed: &mut bool,
) {
    let tail = &template[start..end];
    if *borrowed {
        if !tail.is_empty() {
            segments.push(Segment::Literal(std::borrow::Cow::Borrowed(tail)));
        }
    } else {
        literal.push_str(tail);
        segments.push(Segment::Literal(std::borrow::Cow::Owned(std::mem::take(
            literal,
        ))));
    }
    *borrowed = true;
}

/// A placeholder that must be in every template of a step, exactly once.
pub(crate) struct Required {
    pub(crate) name: &'static str,
    pub(crate) why: &'static str,
}

/// A problem found in a template, with the text to look for when locating its line.
#[derive(Debug)]
pub(crate) struct TemplateProblem {
    pub(crate) problem: Problem,
    /// Text of the template at the problem (to find its line in the file), if any.
    pub(crate) needle: Option<String>,
}

/// Checks a template against the placeholders its step provides.
pub(crate) fn check(
    template: &str,
    step: &'static str,
    allowed: &'static [&'static str],
    required: &Required,
) -> Result<(), TemplateProblem> {
    let segments = parse(template).map_err(|error| {
        let rest = &template[error.offset..];
        let needle: String = rest.chars().take_while(|c| *c != '\n').take(40).collect();
        TemplateProblem {
            problem: Problem::UnbalancedBrace {
                step,
                detail: format!("{} near `{}`", error.detail, needle.trim_end()),
            },
            needle: Some(needle),
        }
    })?;
    let mut required_count = 0;
    for segment in &segments {
        if let Segment::Placeholder(name) = segment {
            if !allowed.contains(name) {
                return Err(TemplateProblem {
                    problem: Problem::UnknownPlaceholder {
                        placeholder: (*name).to_string(),
                        step,
                        allowed,
                    },
                    needle: Some(format!("{{{name}}}")),
                });
            }
            if *name == required.name {
                required_count += 1;
            }
        }
    }
    match required_count {
        1 => Ok(()),
        0 => Err(TemplateProblem {
            problem: Problem::MissingPlaceholder {
                placeholder: required.name,
                step,
                why: required.why,
            },
            needle: None,
        }),
        count => Err(TemplateProblem {
            problem: Problem::RepeatedPlaceholder {
                placeholder: required.name,
                step,
                count,
                why: required.why,
            },
            needle: Some(format!("{{{}}}", required.name)),
        }),
    }
}

/// Fills a template. `value` gives the text of each placeholder; a placeholder it does not know
/// (possible only for a hand-built, unchecked template) is kept as written, braces included, so
/// that nothing is silently dropped.
pub(crate) fn render(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let Ok(segments) = parse(template) else {
        // Unchecked template with a syntax error: send it as written rather than guess.
        return template.to_string();
    };
    let mut out = String::with_capacity(template.len());
    for segment in segments {
        match segment {
            Segment::Literal(text) => out.push_str(&text),
            Segment::Placeholder(name) => match value(name) {
                Some(text) => out.push_str(&text),
                None => {
                    out.push('{');
                    out.push_str(name);
                    out.push('}');
                }
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_literals_placeholders_and_escapes() {
        let segments = parse("a {x} b {{y}} c").unwrap();
        assert_eq!(
            segments,
            vec![
                Segment::Literal("a ".into()),
                Segment::Placeholder("x"),
                Segment::Literal(" b {y} c".into()),
            ]
        );
    }

    #[test]
    fn renders_values_verbatim_without_reexpanding_them() {
        let out = render("[{a}] {{literal}} [{b}]", |name| match name {
            "a" => Some("{b}".to_string()),
            "b" => Some("}{".to_string()),
            _ => None,
        });
        assert_eq!(out, "[{b}] {literal} [}{]");
    }

    #[test]
    fn unknown_placeholder_in_unchecked_template_is_kept() {
        assert_eq!(render("x {nope} y", |_| None), "x {nope} y");
    }

    #[test]
    fn lone_braces_are_errors_with_offsets() {
        assert_eq!(parse("ab } c").unwrap_err().offset, 3);
        assert_eq!(parse("ab { c").unwrap_err().offset, 3);
        assert_eq!(parse("ab {c\n}").unwrap_err().offset, 3);
        assert!(parse("{{}}").is_ok());
    }

    #[test]
    fn check_requires_exactly_one_required_placeholder() {
        let required = Required {
            name: "document",
            why: "test",
        };
        assert!(check("x {document}", "year", YEAR_PLACEHOLDERS, &required).is_ok());
        let missing = check("x", "year", YEAR_PLACEHOLDERS, &required).unwrap_err();
        assert!(matches!(
            missing.problem,
            Problem::MissingPlaceholder { .. }
        ));
        let twice =
            check("{document}{document}", "year", YEAR_PLACEHOLDERS, &required).unwrap_err();
        assert!(matches!(
            twice.problem,
            Problem::RepeatedPlaceholder { count: 2, .. }
        ));
        let unknown =
            check("{years} {document}", "year", YEAR_PLACEHOLDERS, &required).unwrap_err();
        assert!(matches!(
            unknown.problem,
            Problem::UnknownPlaceholder { ref placeholder, .. } if placeholder == "years"
        ));
    }
}
