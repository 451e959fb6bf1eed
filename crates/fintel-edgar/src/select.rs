//! Fiscal-year selection: which annual report serves each fiscal year of a company. A pure
//! function of the filing list, so it gives the same answer whether or not anything is cached.
//!
//! Rules (SPEC.md sections 2 and 4):
//! - Annual forms: 10-K, 10-K405, 10-KSB, 10-KSB40, 10-KT and 10-KT405 (the two `T` forms are
//!   transition reports, flagged), 20-F, 40-F. Their `/A` amendments are never picked unless
//!   [`SelectOptions::include_amendments`]; `NT 10-K` and every other form never are.
//! - The fiscal year of a report is the calendar year in which its period of report ends,
//!   except that a period ending January 1-7 belongs to the year before (52/53-week years).
//! - Without a period of report the period end is estimated from the filing date: with the
//!   company's fiscal-year end (`MMDD`) known, it is the last such day before the filing date
//!   (then the rule above applies); without it, it is the filing date minus 90 days for the
//!   10-K family and minus 182 days for 20-F/40-F (their longer deadlines), and the fiscal year
//!   is that date's calendar year. Such picks are marked `period_estimated`.
//! - Two originals in one fiscal year: the non-transition report wins, then the later period
//!   end, then the later filing date, then the larger accession number.
//! - With amendments included, the most recently filed amendment of a year wins over the
//!   original (it is the latest word); without, amendments are only listed.
//! - [`YearRequest::Latest`]: the N fiscal years ending with the fiscal year of the most recent
//!   original annual report filed on or before `as_of` (so a delisted company gets its own last
//!   N years); filings after `as_of` are ignored. Years without a report are returned with a
//!   skip reason; the window is never widened.

use std::str::FromStr;

use jiff::civil::Date;
use jiff::ToSpan;
use serde::{Deserialize, Serialize};

use crate::submissions::Filing;
use crate::EdgarError;

/// A family of annual forms, for the `--form` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FormFamily {
    /// 10-K and its variants 10-K405, 10-KSB, 10-KSB40, 10-KT, 10-KT405.
    #[serde(rename = "10-K")]
    TenK,
    /// 20-F (foreign private issuers).
    #[serde(rename = "20-F")]
    TwentyF,
    /// 40-F (Canadian issuers).
    #[serde(rename = "40-F")]
    FortyF,
}

impl FromStr for FormFamily {
    type Err = EdgarError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "10-K" | "10K" => Ok(FormFamily::TenK),
            "20-F" | "20F" => Ok(FormFamily::TwentyF),
            "40-F" | "40F" => Ok(FormFamily::FortyF),
            other => Err(EdgarError::InvalidInput(format!(
                "unknown annual form {other:?}: use 10-K, 20-F or 40-F (10-K includes \
                 10-K405, 10-KSB and the 10-KT transition report)"
            ))),
        }
    }
}

impl FormFamily {
    /// The form name users type.
    pub fn as_str(self) -> &'static str {
        match self {
            FormFamily::TenK => "10-K",
            FormFamily::TwentyF => "20-F",
            FormFamily::FortyF => "40-F",
        }
    }
}

/// What a form type is, for selection purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnualForm {
    /// Its family.
    pub family: FormFamily,
    /// A transition report (10-KT).
    pub transition: bool,
    /// An amendment (`/A`).
    pub amendment: bool,
}

/// Classifies a form type; `None` for anything that is not an annual report.
pub fn annual_form(form: &str) -> Option<AnnualForm> {
    let form = form.trim().to_ascii_uppercase();
    let (base, amendment) = match form.strip_suffix("/A") {
        Some(base) => (base.to_string(), true),
        None => (form, false),
    };
    let (family, transition) = match base.as_str() {
        "10-K" | "10-K405" | "10-KSB" | "10-KSB40" => (FormFamily::TenK, false),
        "10-KT" | "10-KT405" => (FormFamily::TenK, true),
        "20-F" => (FormFamily::TwentyF, false),
        "40-F" => (FormFamily::FortyF, false),
        _ => return None,
    };
    Some(AnnualForm {
        family,
        transition,
        amendment,
    })
}

/// Which fiscal years to select.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum YearRequest {
    /// The `years` fiscal years ending with the fiscal year of the most recent original annual
    /// report filed on or before `as_of`.
    Latest {
        /// How many years (0 selects nothing).
        years: u32,
        /// The reference day (the day the batch was created).
        as_of: Date,
    },
    /// These fiscal years (duplicates removed, returned in ascending order).
    Explicit(Vec<i32>),
}

/// Options of the selection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectOptions {
    /// Let amendments be picked (the latest amendment of a year wins over its original).
    pub include_amendments: bool,
    /// Only these form families (empty: all annual forms).
    pub forms: Vec<FormFamily>,
    /// The company's fiscal-year end (month, day), used only to estimate missing periods.
    pub fiscal_year_end: Option<(i8, i8)>,
}

/// The filing chosen for a fiscal year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnualPick {
    /// The filing.
    pub filing: Filing,
    /// It is a transition report (10-KT).
    pub transition: bool,
    /// It is an amendment (only with `include_amendments`).
    pub amendment: bool,
    /// The period end used (the period of report, or the estimate when that is missing).
    pub period_end: Date,
    /// The period end was estimated from the filing date.
    pub period_estimated: bool,
}

/// The outcome for one fiscal year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct YearSelection {
    /// The fiscal year.
    pub fiscal_year: i32,
    /// The chosen filing, or `None` when the year is skipped.
    pub pick: Option<AnnualPick>,
    /// Why there is no pick, e.g. `no annual report for FY2019`.
    pub skip_reason: Option<String>,
    /// Accession numbers of this year's amendments that were not picked.
    pub amendments_not_picked: Vec<String>,
    /// Accession numbers of this year's other originals that lost to the pick.
    pub originals_not_picked: Vec<String>,
}

/// An annual filing with its fiscal year worked out.
struct Candidate<'a> {
    filing: &'a Filing,
    form: AnnualForm,
    fiscal_year: i32,
    period_end: Date,
    period_estimated: bool,
}

/// The fiscal year a period ending on `period_end` belongs to.
pub fn fiscal_year_of_period(period_end: Date) -> i32 {
    let year = i32::from(period_end.year());
    if period_end.month() == 1 && period_end.day() <= 7 {
        year - 1
    } else {
        year
    }
}

/// Estimates the period end of an annual report that has no period of report, and says
/// whether the January 1-7 rule applies to it (it does only for a real fiscal-year-end day).
fn estimate_period_end(
    filing_date: Date,
    family: FormFamily,
    fiscal_year_end: Option<(i8, i8)>,
) -> (Date, bool) {
    if let Some((month, day)) = fiscal_year_end {
        let year = filing_date.year();
        for candidate_year in [year, year - 1, year - 2] {
            let Ok(first) = Date::new(candidate_year, month, 1) else {
                continue;
            };
            let day = day.min(first.days_in_month());
            let Ok(end) = Date::new(candidate_year, month, day) else {
                continue;
            };
            if end < filing_date {
                return (end, true);
            }
        }
    }
    let lag_days = match family {
        FormFamily::TenK => 90,
        FormFamily::TwentyF | FormFamily::FortyF => 182,
    };
    let estimate = filing_date
        .checked_sub(lag_days.days())
        .unwrap_or(filing_date);
    (estimate, false)
}

fn candidates<'a>(filings: &'a [Filing], options: &SelectOptions) -> Vec<Candidate<'a>> {
    filings
        .iter()
        .filter_map(|filing| {
            let form = annual_form(&filing.form)?;
            if !options.forms.is_empty() && !options.forms.contains(&form.family) {
                return None;
            }
            let (period_end, period_estimated, fiscal_year) = match filing.report_date {
                Some(date) => (date, false, fiscal_year_of_period(date)),
                None => {
                    let (estimate, is_year_end_day) = estimate_period_end(
                        filing.filing_date,
                        form.family,
                        options.fiscal_year_end,
                    );
                    let fy = if is_year_end_day {
                        fiscal_year_of_period(estimate)
                    } else {
                        i32::from(estimate.year())
                    };
                    (estimate, true, fy)
                }
            };
            Some(Candidate {
                filing,
                form,
                fiscal_year,
                period_end,
                period_estimated,
            })
        })
        .collect()
}

/// Orders originals of one year: the best first (non-transition, later period, later
/// filing, larger accession number).
fn better_original(a: &Candidate<'_>, b: &Candidate<'_>) -> std::cmp::Ordering {
    a.form
        .transition
        .cmp(&b.form.transition)
        .then_with(|| b.period_end.cmp(&a.period_end))
        .then_with(|| b.filing.filing_date.cmp(&a.filing.filing_date))
        .then_with(|| b.filing.accession_number.cmp(&a.filing.accession_number))
}

/// Chooses the annual report for each requested fiscal year (see the module documentation
/// for the rules). Years come back in ascending order, each exactly once, with either a pick
/// or a skip reason. `Latest` with no original annual report filed by `as_of` (or `years` 0)
/// returns an empty list.
pub fn select_annual_reports(
    filings: &[Filing],
    request: &YearRequest,
    options: &SelectOptions,
) -> Vec<YearSelection> {
    let mut all = candidates(filings, options);
    let years: Vec<i32> = match request {
        YearRequest::Latest { years, as_of } => {
            all.retain(|c| c.filing.filing_date <= *as_of);
            let anchor = all
                .iter()
                .filter(|c| !c.form.amendment)
                .max_by(|a, b| {
                    a.filing
                        .filing_date
                        .cmp(&b.filing.filing_date)
                        .then_with(|| a.period_end.cmp(&b.period_end))
                })
                .map(|c| c.fiscal_year);
            match anchor {
                Some(last) if *years > 0 => {
                    let count = i32::try_from(*years).unwrap_or(i32::MAX);
                    let first = last.saturating_sub(count - 1);
                    (first..=last).collect()
                }
                _ => Vec::new(),
            }
        }
        YearRequest::Explicit(years) => {
            let mut years = years.clone();
            years.sort_unstable();
            years.dedup();
            years
        }
    };

    years
        .into_iter()
        .map(|fiscal_year| select_year(&all, fiscal_year, options))
        .collect()
}

fn select_year(all: &[Candidate<'_>], fiscal_year: i32, options: &SelectOptions) -> YearSelection {
    let mut originals: Vec<&Candidate<'_>> = all
        .iter()
        .filter(|c| c.fiscal_year == fiscal_year && !c.form.amendment)
        .collect();
    originals.sort_by(|a, b| better_original(a, b));
    let mut amendments: Vec<&Candidate<'_>> = all
        .iter()
        .filter(|c| c.fiscal_year == fiscal_year && c.form.amendment)
        .collect();
    // Latest filed first, so with amendments included the newest one wins.
    amendments.sort_by(|a, b| {
        b.filing
            .filing_date
            .cmp(&a.filing.filing_date)
            .then_with(|| b.filing.accession_number.cmp(&a.filing.accession_number))
    });

    let chosen: Option<&Candidate<'_>> = if options.include_amendments {
        amendments.first().or(originals.first()).copied()
    } else {
        originals.first().copied()
    };
    let accession_of = |c: &&Candidate<'_>| c.filing.accession_number.clone();
    let not_chosen = |c: &&&Candidate<'_>| {
        chosen.is_none_or(|p| p.filing.accession_number != c.filing.accession_number)
    };
    let amendments_not_picked = amendments
        .iter()
        .filter(not_chosen)
        .map(accession_of)
        .collect();
    let originals_not_picked = originals
        .iter()
        .filter(not_chosen)
        .map(accession_of)
        .collect();

    let skip_reason = match chosen {
        Some(_) => None,
        None if !amendments.is_empty() => Some(format!(
            "no original annual report for FY{fiscal_year} (only amendments: {}; include \
             amendments to use them)",
            amendments
                .iter()
                .map(|c| c.filing.accession_number.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => Some(format!("no annual report for FY{fiscal_year}")),
    };
    YearSelection {
        fiscal_year,
        pick: chosen.map(|c| AnnualPick {
            filing: c.filing.clone(),
            transition: c.form.transition,
            amendment: c.form.amendment,
            period_end: c.period_end,
            period_estimated: c.period_estimated,
        }),
        skip_reason,
        amendments_not_picked,
        originals_not_picked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn filing(acc: &str, form: &str, period: Option<Date>, filed: Date) -> Filing {
        Filing {
            accession_number: acc.to_string(),
            form: form.to_string(),
            filing_date: filed,
            report_date: period,
            primary_document: format!("{acc}.htm"),
            primary_doc_description: String::new(),
            is_xbrl: false,
            is_inline_xbrl: false,
            size: 0,
        }
    }

    #[test]
    fn forms_are_classified() {
        assert_eq!(annual_form("10-K").map(|f| f.transition), Some(false));
        assert!(annual_form("10-KT").unwrap().transition);
        assert!(annual_form("10-K405/A").unwrap().amendment);
        assert_eq!(annual_form("20-F").unwrap().family, FormFamily::TwentyF);
        assert_eq!(annual_form("40-F/A").unwrap().family, FormFamily::FortyF);
        for other in [
            "NT 10-K", "10-Q", "8-K", "10-K405A", "DEF 14A", "20-F/AA", "",
        ] {
            assert!(annual_form(other).is_none(), "{other}");
        }
        assert!("6-K".parse::<FormFamily>().is_err());
        assert_eq!("10-k".parse::<FormFamily>().unwrap(), FormFamily::TenK);
    }

    #[test]
    fn fifty_two_week_years() {
        assert_eq!(fiscal_year_of_period(date(2021, 1, 2)), 2020);
        assert_eq!(fiscal_year_of_period(date(2021, 1, 7)), 2020);
        assert_eq!(fiscal_year_of_period(date(2021, 1, 8)), 2021);
        assert_eq!(fiscal_year_of_period(date(2023, 1, 31)), 2023);
        assert_eq!(fiscal_year_of_period(date(2022, 12, 31)), 2022);
    }

    #[test]
    fn transition_report_loses_to_the_regular_one() {
        let filings = vec![
            filing(
                "0000000001-20-000002",
                "10-KT",
                Some(date(2020, 12, 31)),
                date(2021, 3, 1),
            ),
            filing(
                "0000000001-20-000001",
                "10-K",
                Some(date(2020, 6, 30)),
                date(2020, 9, 1),
            ),
        ];
        let picks = select_annual_reports(
            &filings,
            &YearRequest::Explicit(vec![2020]),
            &SelectOptions::default(),
        );
        let pick = picks[0].pick.as_ref().unwrap();
        assert_eq!(pick.filing.form, "10-K");
        assert!(!pick.transition);
        assert_eq!(picks[0].originals_not_picked, vec!["0000000001-20-000002"]);

        // Alone in its year, a transition report is picked and flagged.
        let only_t = &filings[..1];
        let picks = select_annual_reports(
            only_t,
            &YearRequest::Explicit(vec![2020]),
            &SelectOptions::default(),
        );
        assert!(picks[0].pick.as_ref().unwrap().transition);
    }

    #[test]
    fn two_regular_originals_take_the_later_period() {
        let filings = vec![
            filing(
                "0000000001-20-000001",
                "10-K",
                Some(date(2020, 1, 31)),
                date(2020, 4, 1),
            ),
            filing(
                "0000000001-20-000009",
                "10-K",
                Some(date(2020, 12, 31)),
                date(2021, 3, 1),
            ),
        ];
        let picks = select_annual_reports(
            &filings,
            &YearRequest::Explicit(vec![2020]),
            &SelectOptions::default(),
        );
        assert_eq!(
            picks[0].pick.as_ref().unwrap().filing.accession_number,
            "0000000001-20-000009"
        );
    }

    #[test]
    fn missing_period_is_estimated() {
        // Calendar-year company, no period: filed 2021-03-01 -> FY2020.
        let f = vec![filing(
            "0000000001-21-000001",
            "10-K",
            None,
            date(2021, 3, 1),
        )];
        let picks = select_annual_reports(
            &f,
            &YearRequest::Explicit(vec![2020, 2021]),
            &SelectOptions::default(),
        );
        assert!(picks[0].pick.as_ref().unwrap().period_estimated);
        assert!(picks[1].pick.is_none());
        // 20-F filed late June for a December year end -> previous year.
        let f = vec![filing(
            "0000000001-21-000002",
            "20-F",
            None,
            date(2021, 6, 30),
        )];
        let picks = select_annual_reports(
            &f,
            &YearRequest::Explicit(vec![2020]),
            &SelectOptions::default(),
        );
        assert!(picks[0].pick.is_some());
        // With a March fiscal-year end known, a June filing belongs to the same year.
        let f = vec![filing(
            "0000000001-21-000003",
            "10-K",
            None,
            date(2021, 6, 20),
        )];
        let options = SelectOptions {
            fiscal_year_end: Some((3, 31)),
            ..SelectOptions::default()
        };
        let picks = select_annual_reports(&f, &YearRequest::Explicit(vec![2021]), &options);
        assert_eq!(
            picks[0].pick.as_ref().unwrap().period_end,
            date(2021, 3, 31)
        );
    }

    #[test]
    fn delisted_company_gets_its_own_last_years_and_gaps_are_reported() {
        let mut filings = Vec::new();
        for year in 2005..=2012 {
            if year == 2009 {
                continue; // a gap year
            }
            filings.push(filing(
                &format!("0000000042-{:02}-000001", (year + 1) % 100),
                "10-K",
                Some(date(year as i16, 12, 31)),
                date(year as i16 + 1, 3, 15),
            ));
        }
        filings.push(filing(
            "0000000042-14-000007",
            "8-K",
            Some(date(2014, 5, 1)),
            date(2014, 5, 2),
        ));
        let picks = select_annual_reports(
            &filings,
            &YearRequest::Latest {
                years: 5,
                as_of: date(2023, 8, 8),
            },
            &SelectOptions::default(),
        );
        let years: Vec<i32> = picks.iter().map(|p| p.fiscal_year).collect();
        assert_eq!(years, vec![2008, 2009, 2010, 2011, 2012]);
        assert_eq!(
            picks[1].skip_reason.as_deref(),
            Some("no annual report for FY2009")
        );
        assert!(picks[1].pick.is_none());
        assert!(picks
            .iter()
            .filter(|p| p.fiscal_year != 2009)
            .all(|p| p.pick.is_some()));

        // As of a day before the FY2012 report was filed, the window ends at 2011.
        let picks = select_annual_reports(
            &filings,
            &YearRequest::Latest {
                years: 2,
                as_of: date(2013, 3, 14),
            },
            &SelectOptions::default(),
        );
        assert_eq!(
            picks.iter().map(|p| p.fiscal_year).collect::<Vec<_>>(),
            vec![2010, 2011]
        );
    }

    #[test]
    fn nothing_to_anchor_on_gives_nothing() {
        let filings = vec![
            filing(
                "0000000001-20-000001",
                "10-K/A",
                Some(date(2019, 12, 31)),
                date(2020, 5, 1),
            ),
            filing(
                "0000000001-20-000002",
                "10-Q",
                Some(date(2020, 3, 31)),
                date(2020, 5, 1),
            ),
        ];
        let request = YearRequest::Latest {
            years: 3,
            as_of: date(2023, 1, 1),
        };
        assert!(select_annual_reports(&filings, &request, &SelectOptions::default()).is_empty());
        let zero = YearRequest::Latest {
            years: 0,
            as_of: date(2023, 1, 1),
        };
        assert!(select_annual_reports(&filings, &zero, &SelectOptions::default()).is_empty());
    }

    #[test]
    fn only_amendments_say_so_and_can_be_included() {
        let filings = vec![
            filing(
                "0000000001-20-000001",
                "10-K/A",
                Some(date(2019, 12, 31)),
                date(2020, 5, 1),
            ),
            filing(
                "0000000001-20-000003",
                "10-K/A",
                Some(date(2019, 12, 31)),
                date(2020, 7, 1),
            ),
        ];
        let picks = select_annual_reports(
            &filings,
            &YearRequest::Explicit(vec![2019]),
            &SelectOptions::default(),
        );
        let reason = picks[0].skip_reason.as_deref().unwrap();
        assert!(reason.contains("only amendments"), "{reason}");
        let options = SelectOptions {
            include_amendments: true,
            ..SelectOptions::default()
        };
        let picks = select_annual_reports(&filings, &YearRequest::Explicit(vec![2019]), &options);
        let pick = picks[0].pick.as_ref().unwrap();
        assert!(pick.amendment);
        assert_eq!(pick.filing.accession_number, "0000000001-20-000003");
        assert_eq!(picks[0].amendments_not_picked, vec!["0000000001-20-000001"]);
    }

    #[test]
    fn form_filter_restricts_families() {
        let filings = vec![
            filing(
                "0000000001-20-000001",
                "20-F",
                Some(date(2019, 12, 31)),
                date(2020, 4, 1),
            ),
            filing(
                "0000000001-21-000001",
                "10-K",
                Some(date(2020, 12, 31)),
                date(2021, 3, 1),
            ),
        ];
        let options = SelectOptions {
            forms: vec![FormFamily::TwentyF],
            ..SelectOptions::default()
        };
        let picks = select_annual_reports(
            &filings,
            &YearRequest::Latest {
                years: 2,
                as_of: date(2022, 1, 1),
            },
            &options,
        );
        assert_eq!(
            picks.iter().map(|p| p.fiscal_year).collect::<Vec<_>>(),
            vec![2018, 2019]
        );
        assert_eq!(picks[1].pick.as_ref().unwrap().filing.form, "20-F");
    }

    #[test]
    fn explicit_years_are_sorted_and_deduplicated() {
        let picks = select_annual_reports(
            &[],
            &YearRequest::Explicit(vec![2021, 2019, 2021]),
            &SelectOptions::default(),
        );
        assert_eq!(
            picks.iter().map(|p| p.fiscal_year).collect::<Vec<_>>(),
            vec![2019, 2021]
        );
        assert!(picks.iter().all(|p| p.skip_reason.is_some()));
    }
}
