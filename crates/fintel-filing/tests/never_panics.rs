//! Property tests: the text pipeline never panics, whatever the document holds.
//!
//! A filing is input from outside the process, and a panic on one document would fail its task
//! (or, before that was handled, abort a two-week batch). Arbitrary bytes and generated
//! HTML-like documents (tags, ix: elements, entities, item headings, multibyte text) go through
//! text extraction, sections, budget fitting, `text_report` and XBRL facts; besides not
//! panicking, the outputs keep the invariants callers slice by (offsets on character
//! boundaries, fitted text within its budget).
//!
//! Bounded for CI: a fixed number of cases with a fixed seed, so a run is deterministic and
//! takes a few seconds. `PROPTEST_CASES` and `PROPTEST_RNG_SEED` explore further locally; a
//! panic found that way gets its own regression test below.

use fintel_filing::{
    extract_facts, find_sections, fit_to_budget, html_to_text, key_financials, text_report,
    Decimal, FormKind, SectionStatus, TextOptions, TokenEstimator,
};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// Cases per property in CI; each case is a document of up to a few kilobytes.
const CI_CASES: u32 = 300;
/// The seed used unless `PROPTEST_RNG_SEED` is set.
const CI_SEED: u64 = 0x0f1e_7e15_2026;

fn config() -> ProptestConfig {
    let from_env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    ProptestConfig {
        cases: from_env("PROPTEST_CASES").map_or(CI_CASES, |n| n as u32),
        rng_seed: RngSeed::Fixed(from_env("PROPTEST_RNG_SEED").unwrap_or(CI_SEED)),
        // Regressions are kept as named tests in this file, not as files beside it.
        failure_persistence: None,
        max_shrink_time: 30_000,
        ..ProptestConfig::default()
    }
}

/// Pieces a filing is made of, including the ones that trip parsers.
const FRAGMENTS: &[&str] = &[
    "<p>",
    "</p>",
    "<div>",
    "</div>",
    "<br/>",
    "<BR>",
    "<table>",
    "</table>",
    "<tr>",
    "</tr>",
    "<td>",
    "</td>",
    "<th>",
    "<pre>",
    "</pre>",
    "<td style=\"display:none\"/>",
    "<span style='display: NONE'>",
    "</span>",
    "<head>",
    "<title>",
    "<script>if(a<b){}",
    "</script>",
    "<style>",
    "<!-- comment",
    "-->",
    "<!DOCTYPE html>",
    "<?xml version=\"1.0\"?>",
    "<a href='x",
    "<",
    ">",
    "</",
    "< 5%",
    "<ix:header>",
    "</ix:header>",
    "<ix:hidden>",
    "<ix:exclude>",
    "</ix:exclude>",
    "<ix:nonFraction name=\"us-gaap:Revenues\" contextRef=\"d\" unitRef=\"usd\" scale=\"6\" decimals=\"-6\" format=\"ixt:num-dot-decimal\">",
    "<ix:nonFraction name=\"us-gaap:NetIncomeLoss\" contextRef=\"d\" unitRef=\"usd\" sign=\"-\" scale=\"-2147483648\" format=\"ixt:num-comma-decimal\">",
    "<ix:nonFraction name=\"us-gaap:Assets\" contextRef=\"i\" unitRef=\"usd\" scale=\"99\" format=\"ixt-sec:numwordsen\">",
    "<ix:nonFraction name=\"us-gaap:Liabilities\" contextRef=\"i\" xsi:nil=\"true\"/>",
    "<ix:nonFraction name=\"us-gaap:LiabilitiesAndStockholdersEquity\" contextRef=\"i\" unitRef=\"usd\" format=\"ixt:fixed-zero\">",
    "<ix:nonFraction name=\"us-gaap:StockholdersEquity\" contextRef=\"i\" unitRef=\"usd\">",
    "</ix:nonFraction>",
    "<ix:nonNumeric name=\"dei:DocumentType\" contextRef=\"d\">",
    "<ix:nonNumeric name=\"dei:DocumentFiscalYearFocus\" contextRef=\"d\">",
    "</ix:nonNumeric>",
    "<xbrli:context id=\"d\">",
    "<xbrli:context id=\"i\">",
    "</xbrli:context>",
    "<xbrli:startDate>",
    "</xbrli:startDate>",
    "<xbrli:endDate>",
    "</xbrli:endDate>",
    "<xbrli:instant>",
    "</xbrli:instant>",
    "<xbrli:forever/>",
    "<xbrldi:explicitMember dimension=\"a:B\">a:C</xbrldi:explicitMember>",
    "<xbrli:unit id=\"usd\"><xbrli:measure>iso4217:USD</xbrli:measure></xbrli:unit>",
    "<xbrli:unitDenominator>",
    "<xbrli:measure>",
    "</xbrli:measure>",
    "2023-10-01",
    "2024-09-28",
    "9999-99-99",
    "0000-02-30",
    "1,234.5",
    "(1,000)",
    "99999999999999999999999999999999999999999",
    "0.00000000000000000000000000000000000000001",
    "-",
    ".",
    "none",
    "twelve",
    "&amp;",
    "&nbsp;",
    "&NBSP;",
    "&#146;",
    "&#x1F600;",
    "&#99999999999;",
    "&#0;",
    "&#xD800;",
    "&",
    "&#",
    "&#x",
    "&bogus;",
    "\n",
    "\n\n",
    "\r\n",
    " ",
    "   ",
    "\t",
    " | ",
    "Item 1. Business",
    "ITEM 1A.",
    "RISK FACTORS",
    "Item 7. Management's Discussion and Analysis",
    "Item 7A: Quantitative and Qualitative Disclosures",
    "Item 8. Financial Statements | 45",
    "Item 14.",
    "Item 15. Exhibits",
    "Item 16.A. Audit Committee Financial Expert",
    "Item 18. Financial Statements",
    "ITEM 5. OPERATING AND FINANCIAL REVIEW",
    "Items 1 and 2",
    "See Item 7",
    "PART II",
    "PART IV",
    "SIGNATURES",
    "Table of Contents",
    "FORM 10-K",
    "FORM 20-F",
    "Not applicable.",
    "The information is incorporated herein by reference to the Proxy Statement.",
    "incorporated by reference to Exhibit 13.1",
    "can be found in the 2024 Annual Report to Shareholders",
    "annual report",
    "exhibit ",
    "12",
    "- 12 -",
    "F-3",
    "iii",
    "-----",
    "İ",
    "İSTANBUL",
    "ß",
    "ﬁ",
    "é",
    "€",
    "😀",
    "\u{200B}",
    "\u{A0}",
    "\u{AD}",
    "\u{FEFF}",
    "\u{2028}",
    "\u{3000}",
    "Ⅻ",
    "K",
];

/// Raw pieces that are not valid UTF-8 on their own (Windows-1252 text, cut sequences).
const BYTE_FRAGMENTS: &[&[u8]] = &[
    b"\x93quoted\x94",
    b"Caf\xe9",
    b"\xc2\x92",
    b"\xe2\x80",
    b"\xf0\x9f\x98",
    b"\xff\xfe",
    b"\xed\xa0\x80",
    b"\x00",
    b"\x7f",
];

/// One piece of a generated document.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => proptest::sample::select(FRAGMENTS).prop_map(|s| s.as_bytes().to_vec()),
        1 => proptest::sample::select(BYTE_FRAGMENTS).prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<char>(), 1..6)
            .prop_map(|chars| chars.into_iter().collect::<String>().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 1..6),
    ]
}

/// A generated HTML-like document of up to a few hundred pieces.
fn html_like() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(fragment(), 0..300).prop_map(|parts| parts.concat())
}

/// A document's text as sections see it: generated pieces, read as UTF-8 (lossily).
fn text_like() -> impl Strategy<Value = String> {
    html_like().prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Pieces of the first line of a section body, where cross-references are read: letters that
/// change length when lower-cased next to the phrases a reference is recognised by.
const REFERENCE_PIECES: &[&str] = &[
    "İ",
    "İİ",
    "ẞ",
    "Ⅻ",
    "K",
    "é",
    "€",
    "😀",
    " ",
    "incorporated by reference",
    "incorporated herein by reference to",
    "can be found in",
    "exhibit ",
    "EXHIBIT ",
    "Exhibit 13.1",
    "13",
    ".",
    "2024 ",
    "annual report to shareholders",
    "Annual Report",
    "proxy statement",
];

/// A document of item headings whose bodies open with a cross-reference-like line.
fn cross_reference_document() -> impl Strategy<Value = String> {
    let line = proptest::collection::vec(proptest::sample::select(REFERENCE_PIECES), 1..14)
        .prop_map(|pieces| pieces.concat());
    let heading = proptest::sample::select(
        &[
            "Item 1. Business",
            "Item 7. Management's Discussion and Analysis",
            "Item 8. Financial Statements",
            "Item 10. Directors, Executive Officers",
            "Item 18. Financial Statements",
        ][..],
    );
    proptest::collection::vec((heading, line), 1..6).prop_map(|sections| {
        sections
            .into_iter()
            .map(|(heading, body)| format!("{heading}\n{body}\n"))
            .collect()
    })
}

fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..4096)
}

fn form() -> impl Strategy<Value = FormKind> {
    prop_oneof![Just(FormKind::TenK), Just(FormKind::TwentyF)]
}

/// Checks what callers of `find_sections` rely on, and returns a message when it fails.
fn check_sections(text: &str, form: FormKind) -> Result<(), TestCaseError> {
    let sections = find_sections(text, form);
    prop_assert_eq!(sections.len(), form.items().len());
    let mut previous_start = 0;
    for s in sections
        .iter()
        .filter(|s| s.status != SectionStatus::Absent)
    {
        prop_assert!(
            s.start <= s.body_start && s.body_start <= s.end && s.end <= text.len(),
            "item {}: {}..{}..{} in {} bytes",
            s.id,
            s.start,
            s.body_start,
            s.end,
            text.len()
        );
        for offset in [s.start, s.body_start, s.end] {
            prop_assert!(text.is_char_boundary(offset), "item {} at {offset}", s.id);
        }
        prop_assert!(s.start >= previous_start, "items out of order at {}", s.id);
        previous_start = s.start;
    }
    Ok(())
}

/// Fits a text and checks the promise of `fit_to_budget`: within the budget, by the same
/// estimator that counted it.
fn check_fit(
    text: &str,
    form: FormKind,
    budget: u64,
    ratio: f64,
    with_sections: bool,
) -> Result<(), TestCaseError> {
    let estimator = TokenEstimator::new(ratio).expect("the strategy gives valid ratios");
    let sections = if with_sections {
        find_sections(text, form)
    } else {
        Vec::new()
    };
    let fitted = fit_to_budget(text, form, &sections, budget, &estimator);
    prop_assert!(
        fitted.tokens <= budget,
        "{} tokens > {budget}",
        fitted.tokens
    );
    prop_assert_eq!(fitted.tokens, estimator.estimate(&fitted.text));
    Ok(())
}

/// "12.500" as "12.5", "3.0" as "3", "100" unchanged.
fn without_trailing_zeros(number: &str) -> String {
    if number.contains('.') {
        number
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        number.to_string()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn text_extraction_never_panics_on_arbitrary_bytes(bytes in arbitrary_bytes()) {
        let _ = html_to_text(&bytes);
    }

    #[test]
    fn text_extraction_never_panics_on_html_like_input(html in html_like()) {
        let converted = html_to_text(&html);
        // The output conventions later steps rely on: no control characters but line
        // breaks, no blank lines outside plain-text documents, lines trimmed.
        let text = &converted.text;
        prop_assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
        if !converted.plain_text_source {
            prop_assert!(!text.contains("\n\n"), "{text:?}");
        }
        for line in text.lines() {
            prop_assert_eq!(line, line.trim_matches(' '));
        }
    }

    #[test]
    fn sections_hold_their_invariants_on_converted_documents(html in html_like(), form in form()) {
        let converted = html_to_text(&html);
        check_sections(&converted.text, form)?;
        let _ = FormKind::detect(&converted.text);
    }

    #[test]
    fn sections_hold_their_invariants_on_raw_text(text in text_like(), form in form()) {
        check_sections(&text, form)?;
    }

    #[test]
    fn cross_references_with_multibyte_text_never_panic(
        text in cross_reference_document(),
        form in form(),
    ) {
        check_sections(&text, form)?;
    }

    #[test]
    fn budget_fitting_stays_within_budget(
        text in text_like(),
        form in form(),
        budget in 0u64..600,
        ratio in 0.6f64..8.0,
        with_sections in any::<bool>(),
    ) {
        check_fit(&text, form, budget, ratio, with_sections)?;
    }

    #[test]
    fn text_report_never_panics(
        html in html_like(),
        item in proptest::sample::select(&["1", "1A", "7", "8", "15", "18", "99", "Item 5"][..]),
        use_item in any::<bool>(),
        budget in proptest::option::of(0u64..400),
    ) {
        let options = TextOptions {
            form: None,
            section: use_item.then(|| item.to_string()),
            budget_tokens: budget,
            facts: true,
            estimator: TokenEstimator::default(),
        };
        if let Ok(report) = text_report(&html, &options) {
            if let Some(budget) = budget {
                prop_assert!(report.tokens <= budget);
            }
        }
    }

    #[test]
    fn xbrl_facts_never_panic_on_html_like_input(html in html_like()) {
        let facts = extract_facts(&html);
        let _ = key_financials(&facts);
    }

    #[test]
    fn xbrl_facts_never_panic_on_arbitrary_bytes(bytes in arbitrary_bytes()) {
        let facts = extract_facts(&bytes);
        let _ = key_financials(&facts);
    }

    #[test]
    fn decimals_print_and_parse_back(mantissa in -i128::MAX..=i128::MAX, places in 0u32..50) {
        let value = Decimal { mantissa, places };
        let printed = value.to_string();
        let parsed = Decimal::parse(&printed);
        prop_assert!(parsed.is_some(), "{printed} did not parse");
        // Parsing drops trailing fraction zeros; the value is the same.
        prop_assert_eq!(parsed.map(|d| d.to_string()), Some(without_trailing_zeros(&printed)));
    }
}
