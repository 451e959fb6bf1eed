//! Properties every comparison keeps, on generated text with the shapes filings have (repeated
//! sentences, abbreviations, numbers, table rows, stray punctuation, non-ASCII, CRLF): measures
//! in [0, 1], an unchanged text scores 1, cosine and Jaccard are symmetric, added in one
//! direction is removed in the other, and nothing panics.

use fintel_changes::compare_texts;
use proptest::prelude::*;

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Risk".to_string()),
        Just("the".to_string()),
        Just("Company's".to_string()),
        Just("U.S.".to_string()),
        Just("$1,234".to_string()),
        Just(" | ".to_string()),
        Just(". ".to_string()),
        Just("?".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("naïve".to_string()),
        Just("—".to_string()),
        "[a-zA-Z]{1,8}",
        "[ -~]{0,6}",
        any::<char>().prop_map(String::from),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..120).prop_map(|parts| parts.join(" "))
}

fn in_unit(x: f64) -> bool {
    (0.0..=1.0).contains(&x)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    #[test]
    fn measures_stay_in_range_and_agree_both_ways(a in text(), b in text()) {
        let forward = compare_texts(&a, &b);
        let backward = compare_texts(&b, &a);
        for x in [forward.cosine, forward.jaccard, forward.min_edit, forward.simple] {
            prop_assert!(in_unit(x), "{x} out of [0, 1]: {forward:?}");
        }
        prop_assert!((forward.cosine - backward.cosine).abs() < 1e-12);
        prop_assert_eq!(forward.jaccard, backward.jaccard);
        prop_assert_eq!(forward.min_edit, backward.min_edit);
        prop_assert_eq!(forward.added_count, backward.removed_count);
        prop_assert_eq!(&forward.added, &backward.removed);
        prop_assert!(forward.added.len() <= forward.added_count);
        prop_assert!(forward.added.len() <= fintel_changes::TOP_SENTENCES);
    }

    #[test]
    fn an_unchanged_text_scores_one(a in text()) {
        let same = compare_texts(&a, &a);
        prop_assert_eq!(
            (same.cosine, same.jaccard, same.min_edit, same.simple),
            (1.0, 1.0, 1.0, 1.0)
        );
        prop_assert_eq!((same.added_count, same.removed_count), (0, 0));
    }
}
