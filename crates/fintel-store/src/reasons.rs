//! Reasons of skipped and failed tasks read as kinds, not one line per year: "no annual report
//! for FY1926", "... FY1927" and so on become one "no annual report for FY1926-FY2006" with
//! the count of all of them.

use std::collections::BTreeMap;

use crate::ReasonGroup;

/// Splits `reason` around its first `FY` + four digits: (before, year, after).
fn year_in(reason: &str) -> Option<(&str, i32, &str)> {
    let bytes = reason.as_bytes();
    let mut from = 0;
    while let Some(pos) = reason[from..].find("FY") {
        let at = from + pos;
        let digits = &bytes[at + 2..];
        if digits.len() >= 4
            && digits[..4].iter().all(u8::is_ascii_digit)
            && digits.get(4).is_none_or(|b| !b.is_ascii_digit())
        {
            let year: i32 = reason[at + 2..at + 6].parse().ok()?;
            return Some((&reason[..at], year, &reason[at + 6..]));
        }
        from = at + 2;
    }
    None
}

/// Years as ranges: `FY2001-FY2003, FY2007`.
pub fn year_ranges(years: &[i32]) -> String {
    let mut sorted = years.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            format!("FY{start}")
        } else {
            format!("FY{start}-FY{end}")
        });
        i += 1;
    }
    parts.join(", ")
}

/// A reason with its fiscal year taken out: (state, text before the year, text after it).
type ReasonKind = (String, String, String);

/// The years a kind was seen with, its total count and where it first appeared.
type YearsOfKind = (Vec<i32>, u64, usize);

/// Merges groups whose reasons differ only in the fiscal year they name, keeping the order
/// most frequent first.
pub fn merge_year_ranges(groups: Vec<ReasonGroup>) -> Vec<ReasonGroup> {
    let mut by_kind: BTreeMap<ReasonKind, YearsOfKind> = BTreeMap::new();
    let mut others: Vec<(ReasonGroup, usize)> = Vec::new();
    for (i, g) in groups.into_iter().enumerate() {
        match year_in(&g.reason) {
            Some((before, year, after)) => {
                let entry = by_kind
                    .entry((g.state.clone(), before.to_string(), after.to_string()))
                    .or_insert((Vec::new(), 0, i));
                entry.0.push(year);
                entry.1 += g.count;
            }
            None => others.push((g, i)),
        }
    }
    let mut out: Vec<(ReasonGroup, usize)> = others;
    for ((state, before, after), (years, count, first)) in by_kind {
        out.push((
            ReasonGroup {
                state,
                reason: format!("{before}{}{after}", year_ranges(&years)),
                count,
            },
            first,
        ));
    }
    out.sort_by(|(a, ai), (b, bi)| b.count.cmp(&a.count).then(ai.cmp(bi)));
    out.into_iter().map(|(g, _)| g).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(state: &str, reason: &str, count: u64) -> ReasonGroup {
        ReasonGroup {
            state: state.into(),
            reason: reason.into(),
            count,
        }
    }

    #[test]
    fn one_line_per_kind_with_its_year_ranges() {
        let mut groups: Vec<ReasonGroup> = (1926..=2006)
            .map(|y| g("skipped", &format!("no annual report for FY{y}"), 2))
            .collect();
        groups.push(g("skipped", "no annual report for FY2010", 1));
        groups.push(g("failed", "the model refused: SAFETY", 3));
        groups.push(g(
            "skipped",
            "unknown ticker XYZ: not in SEC's company list",
            1,
        ));
        groups.push(g("failed", "bad output for FY2019 after 3 attempts", 1));
        groups.push(g("failed", "bad output for FY2020 after 3 attempts", 1));
        let merged = merge_year_ranges(groups);
        let lines: Vec<String> = merged
            .iter()
            .map(|m| format!("{} {} {}", m.count, m.state, m.reason))
            .collect();
        assert_eq!(
            lines,
            [
                "163 skipped no annual report for FY1926-FY2006, FY2010",
                "3 failed the model refused: SAFETY",
                "2 failed bad output for FY2019-FY2020 after 3 attempts",
                "1 skipped unknown ticker XYZ: not in SEC's company list",
            ]
        );
    }

    #[test]
    fn only_a_fiscal_year_of_four_digits_counts() {
        assert_eq!(year_in("FY2019"), Some(("", 2019, "")));
        assert_eq!(year_in("a FY20190 b"), None);
        assert_eq!(year_in("FYI: FY2001."), Some(("FYI: ", 2001, ".")));
        assert_eq!(
            year_ranges(&[2003, 2001, 2002, 2007, 2007]),
            "FY2001-FY2003, FY2007"
        );
    }
}
