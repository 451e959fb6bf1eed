//! Request packing (SPEC.md section 12), the pure part: the pack mode, how a company's pending
//! years group into packs, the token budget and each document's share, `auto`'s decision, the
//! packed response schema and request text, and the split of a packed answer into per-year
//! parts. The runner (`runner/packed.rs`) only carries these out.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The most years one request may carry.
pub const MAX_PACK: usize = 3;

/// How many consecutive fiscal years of one company go into one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Pack {
    /// One year per request.
    #[default]
    Off,
    /// Exactly this many years (2 or 3) per request, each document fitted to its share.
    Years(u8),
    /// Up to three years, only where every document fits its share whole.
    Auto,
}

/// A `--pack` or `[run] pack` value that is not one of `off`, `2`, `3`, `auto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid pack mode {value:?}: {why}; use `off` (one year per request), `2` or `3` \
     (that many consecutive fiscal years per request) or `auto` (up to 3 where the documents \
     fit whole)"
)]
pub struct BadPack {
    pub value: String,
    pub why: &'static str,
}

impl FromStr for Pack {
    type Err = BadPack;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value = s.trim().to_ascii_lowercase();
        let bad = |why| BadPack {
            value: s.to_string(),
            why,
        };
        match value.as_str() {
            "off" | "none" | "no" => Ok(Pack::Off),
            "auto" => Ok(Pack::Auto),
            "" => Err(bad("it is empty")),
            other => match other.parse::<i64>() {
                Ok(1) => Err(bad("1 is no packing; write `off`")),
                Ok(n) if (2..=MAX_PACK as i64).contains(&n) => Ok(Pack::Years(n as u8)),
                Ok(_) => Err(bad("at most 3 years fit one request")),
                Err(_) => Err(bad("it is neither a number nor a mode")),
            },
        }
    }
}

impl TryFrom<String> for Pack {
    type Error = BadPack;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Pack> for String {
    fn from(p: Pack) -> String {
        p.to_string()
    }
}

impl fmt::Display for Pack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pack::Off => f.write_str("off"),
            Pack::Years(n) => write!(f, "{n}"),
            Pack::Auto => f.write_str("auto"),
        }
    }
}

impl Pack {
    /// The most years a claim takes together (1 for off).
    pub fn claim_size(self) -> usize {
        match self {
            Pack::Off => 1,
            Pack::Years(n) => (n as usize).clamp(1, MAX_PACK),
            Pack::Auto => MAX_PACK,
        }
    }

    /// Requests needed for a company's `years` yearly tasks (plan only: `auto` is counted as
    /// if every document paired, which is its best case; the run decides by the real sizes).
    pub fn requests_for(self, years: u64) -> u64 {
        match self {
            Pack::Off => years,
            Pack::Years(n) => years.div_ceil(n as u64),
            Pack::Auto => years.div_ceil(MAX_PACK as u64),
        }
    }
}

/// Groups a company's pending years into packs of at most `n` consecutive fiscal years, newest
/// first (the order claims take them). A gap or an already-done year breaks a run; the last
/// pack of a run may be shorter.
pub fn group_years(pending: &[i32], n: usize) -> Vec<Vec<i32>> {
    let mut years: Vec<i32> = pending.to_vec();
    years.sort_unstable_by(|a, b| b.cmp(a));
    years.dedup();
    let n = n.max(1);
    let mut packs: Vec<Vec<i32>> = Vec::new();
    for y in years {
        match packs.last_mut() {
            Some(last) if last.len() < n && last.last() == Some(&(y + 1)) => last.push(y),
            _ => packs.push(vec![y]),
        }
    }
    for p in &mut packs {
        p.reverse();
    }
    packs
}

/// The tokens a packed request may spend on its documents: the smallest token cap among the
/// buckets it may use and the model's context, minus prompt and schema, minus 10%.
pub fn pack_budget(smallest_cap: u64, context_tokens: u64, overhead_tokens: u64) -> u64 {
    let cap = smallest_cap.min(context_tokens);
    cap.saturating_sub(overhead_tokens) * 9 / 10
}

/// Each document's equal share of the budget.
pub fn share(budget: u64, documents: usize) -> u64 {
    budget / documents.max(1) as u64
}

/// `auto`'s decision: how many of the claimed documents (newest first, as claimed; the
/// provider's count of each whole document) to pack together. The largest k <= 3 for which the
/// first k documents each fit their share whole; 1 means send the first alone.
pub fn auto_pack_size(document_tokens: &[u64], budget: u64) -> usize {
    let most = document_tokens.len().min(MAX_PACK);
    (2..=most)
        .rev()
        .find(|&k| {
            let s = share(budget, k);
            document_tokens[..k].iter().all(|&t| t <= s)
        })
        .unwrap_or(1)
}

/// The property that carries a fiscal year's part of a packed answer.
pub fn year_property(fiscal_year: i32) -> String {
    format!("fy{fiscal_year}")
}

/// The response schema of a packed request: one required property per year, each the
/// analysis type's own schema, in year order.
pub fn packed_schema(years: &[i32], year_schema: &Value) -> Value {
    let mut sorted = years.to_vec();
    sorted.sort_unstable();
    let names: Vec<String> = sorted.iter().map(|&y| year_property(y)).collect();
    let mut properties = Map::new();
    for name in &names {
        properties.insert(name.clone(), year_schema.clone());
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": names,
        "propertyOrdering": names,
    })
}

/// One document of a packed request.
#[derive(Debug, Clone)]
pub struct PackedDocument<'a> {
    pub fiscal_year: i32,
    pub form: &'a str,
    /// The fiscal period's end date, if known.
    pub period: Option<&'a str>,
    pub text: &'a str,
}

/// The documents of a packed request, oldest first, each between markers naming its fiscal
/// year, form and period, so the model can tell where one year ends.
pub fn document_block(documents: &[PackedDocument<'_>]) -> String {
    let mut docs: Vec<&PackedDocument<'_>> = documents.iter().collect();
    docs.sort_by_key(|d| d.fiscal_year);
    let mut out = String::new();
    for d in docs {
        let period = d
            .period
            .map(|p| format!(", period ending {p}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "===== BEGIN DOCUMENT: fiscal year {}, form {}{period} =====\n",
            d.fiscal_year, d.form
        ));
        out.push_str(d.text);
        if !d.text.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!(
            "===== END DOCUMENT: fiscal year {} =====\n\n",
            d.fiscal_year
        ));
    }
    out
}

/// What a packed request says before the type's own prompt: which years it carries and that
/// each year is answered alone, from its own document only.
pub fn packed_preamble(years: &[i32]) -> String {
    let mut sorted = years.to_vec();
    sorted.sort_unstable();
    let names: Vec<String> = sorted.iter().map(|&y| year_property(y)).collect();
    let listed: Vec<String> = sorted.iter().map(i32::to_string).collect();
    format!(
        "This request carries the annual reports of {} fiscal years ({}), each between \
         BEGIN/END DOCUMENT markers. Do the analysis below once for each fiscal year, reading \
         only that year's document, and answer with one JSON object whose properties {} each \
         hold that year's complete answer.\n\n",
        sorted.len(),
        listed.join(", "),
        names.join(", ")
    )
}

/// How one year's part of a packed answer came out.
#[derive(Debug, Clone, PartialEq)]
pub enum PartOutcome {
    /// Valid against the type's schema: stored as that year's result.
    Valid(Value),
    /// Present but invalid: the year goes back as a single-year task.
    Invalid(String),
    /// Absent from the answer.
    Missing,
}

/// Splits a packed answer into its years' parts, each validated alone against the type's
/// schema. `answer` is the whole answer, already parsed as JSON.
pub fn split_answer(years: &[i32], year_schema: &Value, answer: &Value) -> Vec<(i32, PartOutcome)> {
    let mut sorted = years.to_vec();
    sorted.sort_unstable();
    sorted
        .into_iter()
        .map(|y| {
            let outcome = match answer.get(year_property(y)) {
                None | Some(Value::Null) => PartOutcome::Missing,
                Some(part) => match fintel_llm::validate_output(year_schema, &part.to_string()) {
                    Ok(v) => PartOutcome::Valid(v),
                    Err(problem) => PartOutcome::Invalid(problem.to_string()),
                },
            };
            (y, outcome)
        })
        .collect()
}

/// What becomes of a year whose part was invalid or missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartFate {
    /// Back to pending as a single-year task, one attempt counted, never packed again.
    RetryAlone,
    /// Its retries are used up: failed.
    Fail,
}

/// The fate of an invalid or missing part of a task that had used `attempts` before this call.
pub fn part_fate(attempts: u32, max_retries: u32) -> PartFate {
    if attempts + 1 > max_retries {
        PartFate::Fail
    } else {
        PartFate::RetryAlone
    }
}

/// Whether a year is charged an attempt when the packed answer it rode in was unusable as a
/// whole (after its repair, or cut off after less thinking), for a task that had used
/// `attempts` before the call. Every year of such a pack goes alone (SPEC.md section 12: a bad
/// part goes back as a single-year task), charged at most this one attempt for the call, and
/// never so that it is left without a try of its own: the fault may be the packing's.
pub fn unusable_pack_charges(attempts: u32, max_retries: u32) -> bool {
    attempts < max_retries
}

/// The most years a claim may take together for the rest of a run after the provider refused
/// the packed schema of `refused` years as too complex: the packed schema repeats the type's
/// once per year, so fewer years may pass and more never will (1: no packing).
pub fn pack_cap_after_schema_refusal(refused: usize) -> usize {
    refused.saturating_sub(1).max(1)
}

/// The years a claim takes together: the pack mode's size under the run's learned cap.
pub fn claim_size_under(pack: Pack, cap: usize) -> usize {
    pack.claim_size().min(cap).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_schema_refused_as_too_complex_caps_later_claims_below_its_size() {
        // (pack mode, years of the refused pack, claim size afterwards)
        let cases = [
            (Pack::Years(2), 2, 1),
            (Pack::Years(3), 3, 2),
            (Pack::Years(3), 2, 1),
            (Pack::Auto, 3, 2),
            (Pack::Auto, 2, 1),
            (Pack::Off, 2, 1),
        ];
        for (pack, refused, want) in cases {
            let cap = pack_cap_after_schema_refusal(refused);
            assert_eq!(claim_size_under(pack, cap), want, "{pack:?} {refused}");
        }
        // Nothing learned: the mode's own size.
        assert_eq!(claim_size_under(Pack::Years(3), usize::MAX), 3);
        assert_eq!(claim_size_under(Pack::Off, usize::MAX), 1);
    }

    #[test]
    fn pack_modes_parse_and_bad_values_say_what_to_write() {
        let table: &[(&str, Result<Pack, &str>)] = &[
            ("off", Ok(Pack::Off)),
            ("OFF", Ok(Pack::Off)),
            ("2", Ok(Pack::Years(2))),
            (" 3 ", Ok(Pack::Years(3))),
            ("auto", Ok(Pack::Auto)),
            ("1", Err("1 is no packing")),
            ("4", Err("at most 3")),
            ("0", Err("at most 3")),
            ("-2", Err("at most 3")),
            ("x", Err("neither a number nor a mode")),
            ("2.5", Err("neither a number nor a mode")),
            ("", Err("empty")),
        ];
        for (input, want) in table {
            match (input.parse::<Pack>(), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{input:?}"),
                (Err(e), Err(needle)) => {
                    let msg = e.to_string();
                    assert!(msg.contains(needle), "{input:?}: {msg}");
                    assert!(msg.contains("`off`") && msg.contains("`auto`"), "{msg}");
                }
                (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
        for p in [Pack::Off, Pack::Years(2), Pack::Years(3), Pack::Auto] {
            assert_eq!(p.to_string().parse::<Pack>().unwrap(), p);
        }
    }

    #[test]
    fn the_pack_mode_is_stored_as_json_and_defaults_to_off() {
        assert_eq!(serde_json::to_string(&Pack::Years(2)).unwrap(), r#""2""#);
        assert_eq!(
            serde_json::from_str::<Pack>(r#""3""#).unwrap(),
            Pack::Years(3)
        );
        assert!(serde_json::from_str::<Pack>(r#""4""#).is_err());
        assert_eq!(serde_json::to_string(&Pack::Auto).unwrap(), r#""auto""#);
        assert_eq!(Pack::default(), Pack::Off);
    }

    #[test]
    fn years_group_into_runs_of_consecutive_years() {
        // (pending years, pack size) -> packs
        type Row<'a> = (&'a [i32], usize, &'a [&'a [i32]]);
        let table: &[Row<'_>] = &[
            // Seven years by two: the oldest is left alone.
            (
                &[2018, 2019, 2020, 2021, 2022, 2023, 2024],
                2,
                &[&[2023, 2024], &[2021, 2022], &[2019, 2020], &[2018]],
            ),
            // A gap breaks a run.
            (
                &[2017, 2018, 2020, 2021, 2022],
                2,
                &[&[2021, 2022], &[2020], &[2017, 2018]],
            ),
            // Threes, with an already-done year (2020) missing from the pending ones.
            (
                &[2016, 2017, 2018, 2019, 2021, 2022, 2023, 2024],
                3,
                &[&[2022, 2023, 2024], &[2021], &[2017, 2018, 2019], &[2016]],
            ),
            // Off: one year each; unsorted and repeated input is fine.
            (&[2022, 2020, 2021, 2022], 1, &[&[2022], &[2021], &[2020]]),
            (&[], 2, &[]),
            (&[2024], 3, &[&[2024]]),
        ];
        for (pending, n, want) in table {
            let got = group_years(pending, *n);
            let want: Vec<Vec<i32>> = want.iter().map(|p| p.to_vec()).collect();
            assert_eq!(got, want, "{pending:?} by {n}");
        }
    }

    #[test]
    fn the_budget_is_the_smallest_cap_less_overhead_and_a_tenth() {
        let table = [
            // (smallest cap, context, overhead) -> budget
            ((250_000, 1_048_576, 2_000), 223_200),
            ((2_000_000, 1_000_000, 0), 900_000),
            ((1_000, 1_000_000, 2_000), 0),
        ];
        for ((cap, context, overhead), want) in table {
            assert_eq!(pack_budget(cap, context, overhead), want);
        }
        assert_eq!(share(223_200, 2), 111_600);
        assert_eq!(share(223_200, 3), 74_400);
        assert_eq!(share(10, 0), 10);
    }

    #[test]
    fn auto_packs_only_documents_that_fit_their_share_whole() {
        let budget = 223_200; // shares: 111,600 by two, 74,400 by three
        let table: &[(&[u64], usize)] = &[
            (&[50_000, 60_000, 70_000], 3),
            (&[50_000, 100_000, 70_000], 2),
            (&[50_000, 111_600], 2),
            (&[50_000, 111_601], 1),
            (&[152_000, 24_700, 31_000], 1),
            (&[24_700, 31_000, 152_000], 2),
            (&[90_000], 1),
            (&[], 1),
            (&[10, 10, 10, 10], 3),
        ];
        for (docs, want) in table {
            assert_eq!(auto_pack_size(docs, budget), *want, "{docs:?}");
        }
    }

    fn year_schema() -> Value {
        json!({
            "type": "object",
            "properties": {"summary": {"type": "string"}, "score": {"type": "integer"}},
            "required": ["summary", "score"]
        })
    }

    #[test]
    fn the_packed_schema_has_one_required_property_per_year_in_year_order() {
        let s = packed_schema(&[2022, 2021], &year_schema());
        assert_eq!(s["type"], "object");
        assert_eq!(s["required"], json!(["fy2021", "fy2022"]));
        assert_eq!(s["propertyOrdering"], json!(["fy2021", "fy2022"]));
        let keys: Vec<&String> = s["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["fy2021", "fy2022"]);
        assert_eq!(s["properties"]["fy2022"], year_schema());
        fintel_llm::check_schema(&s).unwrap();
    }

    #[test]
    fn documents_sit_between_markers_naming_year_form_and_period() {
        let block = document_block(&[
            PackedDocument {
                fiscal_year: 2023,
                form: "10-K",
                period: Some("2023-12-31"),
                text: "second",
            },
            PackedDocument {
                fiscal_year: 2022,
                form: "20-F",
                period: None,
                text: "first\n",
            },
        ]);
        let first = block.find("fiscal year 2022, form 20-F =====").unwrap();
        let second = block
            .find("fiscal year 2023, form 10-K, period ending 2023-12-31 =====")
            .unwrap();
        assert!(first < second, "oldest first:\n{block}");
        assert!(block.contains("first\n===== END DOCUMENT: fiscal year 2022 ====="));
        assert!(block.contains("second\n===== END DOCUMENT: fiscal year 2023 ====="));
        let pre = packed_preamble(&[2023, 2022]);
        assert!(
            pre.contains("2022, 2023") && pre.contains("fy2022, fy2023"),
            "{pre}"
        );
    }

    #[test]
    fn each_part_of_a_packed_answer_is_validated_alone() {
        let schema = year_schema();
        let answer = json!({
            "fy2021": {"score": 3, "summary": "ok"},
            "fy2022": {"summary": "no score"},
        });
        let parts = split_answer(&[2022, 2021, 2023], &schema, &answer);
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts[0],
            (
                2021,
                PartOutcome::Valid(json!({"summary": "ok", "score": 3}))
            )
        );
        match &parts[1] {
            (2022, PartOutcome::Invalid(why)) => assert!(why.contains("score"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(parts[2], (2023, PartOutcome::Missing));
        // A null part is missing, not invalid.
        let parts = split_answer(&[2021], &schema, &json!({"fy2021": null}));
        assert_eq!(parts[0], (2021, PartOutcome::Missing));
    }

    #[test]
    fn a_bad_part_retries_alone_until_its_retries_are_used_up() {
        let table = [
            ((0, 2), PartFate::RetryAlone),
            ((1, 2), PartFate::RetryAlone),
            ((2, 2), PartFate::Fail),
            ((0, 0), PartFate::Fail),
        ];
        for ((attempts, retries), want) in table {
            assert_eq!(part_fate(attempts, retries), want, "{attempts}/{retries}");
        }
    }

    #[test]
    fn a_pack_unusable_as_a_whole_charges_each_year_once_but_leaves_it_a_try_alone() {
        let table = [
            // First packed attempt: charged, two tries alone left.
            ((0, 2), true),
            ((1, 2), true),
            // The year's last attempt: not used up by the pack.
            ((2, 2), false),
            ((0, 0), false),
            ((3, 2), false),
        ];
        for ((attempts, retries), want) in table {
            assert_eq!(
                unusable_pack_charges(attempts, retries),
                want,
                "{attempts}/{retries}"
            );
        }
    }

    #[test]
    fn plans_count_requests_by_pack_mode() {
        assert_eq!(Pack::Off.requests_for(7), 7);
        assert_eq!(Pack::Years(2).requests_for(7), 4);
        assert_eq!(Pack::Years(3).requests_for(7), 3);
        assert_eq!(Pack::Auto.requests_for(6), 2);
        assert_eq!(Pack::Off.claim_size(), 1);
        assert_eq!(Pack::Auto.claim_size(), 3);
    }
}
