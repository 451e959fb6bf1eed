//! The synthetic SEC universe: companies with tickers and CIKs, their filing histories, and the
//! SEC API bodies built from them (company_tickers.json, submissions pages, filing indexes).
//! Everything is computed from the seed by code; nothing is stored, so a universe of thousands
//! of companies costs a few hundred kilobytes and any filing can be rebuilt on request.

use std::collections::HashMap;
use std::fmt::Write as _;

use jiff::civil::{Date, Weekday};
use jiff::ToSpan;
use serde_json::{json, Map, Value};

use crate::config::{SecConfig, SimConfig};
use crate::rng::DetRng;

/// The annual report form a company files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnualForm {
    /// Domestic filer.
    TenK,
    /// Foreign private issuer.
    TwentyF,
}

impl AnnualForm {
    /// The form name as in EDGAR.
    pub fn name(self) -> &'static str {
        match self {
            AnnualForm::TenK => "10-K",
            AnnualForm::TwentyF => "20-F",
        }
    }
}

/// How a company's fiscal year ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FiscalYearEnd {
    /// December 31.
    December,
    /// September 30.
    September,
    /// June 30.
    June,
    /// March 31.
    March,
    /// 52/53-week year ending on the last Saturday of September (like Apple).
    LastSaturdayOfSeptember,
    /// 52/53-week year ending on the first Sunday of January after the fiscal year
    /// (period ends January 1-7 of the next calendar year).
    FirstSundayOfJanuary,
}

impl FiscalYearEnd {
    /// The last day of fiscal year `year`.
    pub fn period_end(self, year: i16) -> Date {
        let ymd = |m: i8, d: i8| Date::new(year, m, d).unwrap_or(Date::MIN);
        match self {
            FiscalYearEnd::December => ymd(12, 31),
            FiscalYearEnd::September => ymd(9, 30),
            FiscalYearEnd::June => ymd(6, 30),
            FiscalYearEnd::March => ymd(3, 31),
            FiscalYearEnd::LastSaturdayOfSeptember => {
                let mut d = ymd(9, 30);
                while d.weekday() != Weekday::Saturday {
                    d = d.yesterday().unwrap_or(d);
                }
                d
            }
            FiscalYearEnd::FirstSundayOfJanuary => {
                let mut d = Date::new(year + 1, 1, 1).unwrap_or(Date::MIN);
                while d.weekday() != Weekday::Sunday {
                    d = d.tomorrow().unwrap_or(d);
                }
                d
            }
        }
    }
}

/// One filing in a company's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filing {
    /// Accession number with dashes, e.g. `0001800001-25-000012`.
    pub accession: String,
    /// Form type, e.g. `10-K`, `10-K/A`, `20-F`, `10-Q`, `8-K`.
    pub form: String,
    /// Filing date.
    pub filing_date: Date,
    /// Period of report (`None` for forms without one, such as most 8-Ks).
    pub report_date: Option<Date>,
    /// Fiscal year of an annual report.
    pub fiscal_year: Option<i16>,
    /// Primary document name (empty in the submissions JSON for pre-2001 filings, as at SEC;
    /// the filing index still lists it).
    pub document: String,
    /// Target size of the primary document in bytes.
    pub size: usize,
}

impl Filing {
    /// Whether this is an annual report (original or amendment).
    pub fn is_annual(&self) -> bool {
        matches!(self.form.as_str(), "10-K" | "10-K/A" | "20-F" | "20-F/A")
    }

    /// The accession number without dashes, as in archive paths.
    pub fn accession_folder(&self) -> String {
        self.accession.replace('-', "")
    }

    /// Whether the submissions JSON shows an empty primaryDocument (filed before 2001).
    pub fn primary_document_hidden(&self) -> bool {
        self.filing_date.year() < 2001
    }
}

/// One synthetic company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Company {
    /// Position in the universe.
    pub index: usize,
    /// Central Index Key.
    pub cik: u64,
    /// Tickers in SEC's spelling (`SABC-B` for a class share); empty for delisted companies,
    /// which company_tickers.json no longer lists.
    pub tickers: Vec<String>,
    /// Company name.
    pub name: String,
    /// Annual report form.
    pub form: AnnualForm,
    /// Fiscal year end rule.
    pub fiscal_year_end: FiscalYearEnd,
    /// First fiscal year with an annual report.
    pub first_fiscal_year: i16,
    /// Last fiscal year with an annual report.
    pub last_fiscal_year: i16,
    /// Fiscal years inside the range with no annual report.
    pub gap_years: Vec<i16>,
    /// Fiscal years with an amendment (10-K/A) after the original.
    pub amended_years: Vec<i16>,
    /// No longer listed: last filing years ago, absent from company_tickers.json.
    pub delisted: bool,
    /// Exchange name.
    pub exchange: &'static str,
    /// State of incorporation.
    pub state: &'static str,
    /// Standard Industrial Classification code and description.
    pub sic: (&'static str, &'static str),
}

impl Company {
    /// The ticker a user would type (`SABC.B` for SEC's `SABC-B`), if listed.
    pub fn display_ticker(&self) -> Option<String> {
        self.tickers.first().map(|t| t.replace('-', "."))
    }

    /// The fiscal years that have an original annual report.
    pub fn annual_years(&self) -> Vec<i16> {
        (self.first_fiscal_year..=self.last_fiscal_year)
            .filter(|y| !self.gap_years.contains(y))
            .collect()
    }

    /// Every filing, newest first, as in the submissions API.
    pub fn filings(&self, config: &SecConfig, seed: u64) -> Vec<Filing> {
        let mut out = Vec::new();
        let mut rng = DetRng::new(seed, &[self.cik, 0xF111]);
        let lower = self
            .tickers
            .first()
            .map(|t| t.to_ascii_lowercase().replace('-', ""))
            .unwrap_or_else(|| format!("cik{}", self.cik));
        // Accession numbers are assigned once the history is in date order (below).
        let accession = |_: Date| String::new();
        for year in self.first_fiscal_year..=self.last_fiscal_year {
            let period = self.fiscal_year_end.period_end(year);
            // Interim reports and current reports of the year after `period`: filler that a
            // client must skip, and that pushes long histories onto a second page.
            if year < self.last_fiscal_year || !self.delisted {
                for q in 1..=3i64 {
                    let qend = period.checked_add((q * 3).months()).unwrap_or(period);
                    let filed = qend.checked_add(40.days()).unwrap_or(qend);
                    let (form, doc) = match self.form {
                        AnnualForm::TenK => ("10-Q", format!("{lower}-{}x10q.htm", ymd(qend))),
                        AnnualForm::TwentyF => ("6-K", format!("{lower}-{}x6k.htm", ymd(filed))),
                    };
                    out.push(Filing {
                        accession: accession(filed),
                        form: form.into(),
                        filing_date: filed,
                        report_date: Some(qend),
                        fiscal_year: None,
                        document: doc,
                        size: 20_000 + rng.below(40_000) as usize,
                    });
                }
                for k in 0..3i64 {
                    let filed = period
                        .checked_add((20 + k * 110 + rng.below(30) as i64).days())
                        .unwrap_or(period);
                    out.push(Filing {
                        accession: accession(filed),
                        form: if self.form == AnnualForm::TenK {
                            "8-K"
                        } else {
                            "6-K"
                        }
                        .into(),
                        filing_date: filed,
                        report_date: None,
                        fiscal_year: None,
                        document: format!("{lower}-{}x8k.htm", ymd(filed)),
                        size: 8_000 + rng.below(20_000) as usize,
                    });
                }
            }
            if self.gap_years.contains(&year) {
                continue;
            }
            let lag = match self.form {
                AnnualForm::TenK => 55 + rng.below(35) as i64,
                AnnualForm::TwentyF => 100 + rng.below(20) as i64,
            };
            let filed = period.checked_add(lag.days()).unwrap_or(period);
            let form = self.form.name();
            let document = if year >= 2019 {
                format!("{lower}-{}.htm", ymd(period))
            } else {
                format!(
                    "d{}{}.htm",
                    ymd(filed),
                    form.replace('-', "").to_ascii_lowercase()
                )
            };
            let size = document_size(config, &mut rng);
            out.push(Filing {
                accession: accession(filed),
                form: form.into(),
                filing_date: filed,
                report_date: Some(period),
                fiscal_year: Some(year),
                document: document.clone(),
                size,
            });
            if self.amended_years.contains(&year) {
                let amended = filed
                    .checked_add((30 + rng.below(150) as i64).days())
                    .unwrap_or(filed);
                out.push(Filing {
                    accession: accession(amended),
                    form: format!("{form}/A"),
                    filing_date: amended,
                    report_date: Some(period),
                    fiscal_year: Some(year),
                    document: document.replace(".htm", "_a.htm"),
                    size: size / 4 + 10_000,
                });
            }
        }
        // Oldest first: each year's filings get increasing sequence numbers, as a filer
        // agent's accession numbers do, with gaps for the agent's other filings.
        out.sort_by_key(|f| f.filing_date);
        let mut year = 0;
        let mut seq: u32 = 0;
        for f in &mut out {
            if f.filing_date.year() != year {
                year = f.filing_date.year();
                seq = rng.below(40) as u32;
            }
            seq += 1 + rng_step(seq);
            f.accession = format!("{:010}-{:02}-{:06}", self.cik, year % 100, seq);
        }
        out.reverse();
        out
    }
}

/// Gaps between accession sequence numbers, as other filings of the agent fall between them.
fn rng_step(seq: u32) -> u32 {
    (seq.wrapping_mul(2_654_435_761) >> 28) % 5
}

fn ymd(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

fn document_size(config: &SecConfig, rng: &mut DetRng) -> usize {
    if config.measured_sizes {
        return crate::sizes::measured_document_bytes(rng);
    }
    if rng.chance(config.large_document_share) {
        let lo = 1_000_000.min(config.large_document_max_bytes);
        rng.range_inclusive(lo as i64, config.large_document_max_bytes as i64) as usize
    } else {
        // Within +-40% of the typical size.
        let base = config.document_bytes as i64;
        rng.range_inclusive(base * 6 / 10, base * 14 / 10) as usize
    }
}

const NAME_FIRST: &[&str] = &[
    "Harbor",
    "Summit",
    "Cascade",
    "Pioneer",
    "Redwood",
    "Granite",
    "Meridian",
    "Beacon",
    "Silverline",
    "Northstar",
    "Bluewater",
    "Ironwood",
    "Keystone",
    "Evergreen",
    "Crescent",
    "Horizon",
    "Sterling",
    "Lakeshore",
    "Windward",
    "Copperfield",
    "Aurora",
    "Prairie",
    "Tidewater",
    "Highland",
    "Riverbend",
    "Oakmont",
    "Falcon",
    "Juniper",
    "Atlas",
    "Vantage",
    "Clearwater",
    "Stonebridge",
];
const NAME_SECOND: &[&str] = &[
    "Semiconductor",
    "Logistics",
    "Therapeutics",
    "Energy",
    "Financial",
    "Software",
    "Foods",
    "Materials",
    "Networks",
    "Retail",
    "Industries",
    "Biosciences",
    "Capital",
    "Aerospace",
    "Motors",
    "Pharmaceuticals",
    "Resources",
    "Communications",
    "Healthcare",
    "Robotics",
    "Apparel",
    "Water",
    "Minerals",
    "Analytics",
];
const NAME_SUFFIX: &[&str] = &[
    "Inc.",
    "Corp",
    "Holdings, Inc.",
    "Group, Inc.",
    "Co.",
    "Technologies Inc.",
    "Ltd.",
    "plc",
];
const EXCHANGES: &[&str] = &["Nasdaq", "NYSE", "NYSE American"];
const STATES: &[&str] = &["DE", "DE", "DE", "NV", "CA", "NY", "TX", "MD", "WA"];
const SICS: &[(&str, &str)] = &[
    ("3674", "Semiconductors & Related Devices"),
    ("7372", "Services-Prepackaged Software"),
    ("2834", "Pharmaceutical Preparations"),
    ("6022", "State Commercial Banks"),
    ("4911", "Electric Services"),
    ("5311", "Retail-Department Stores"),
    ("3711", "Motor Vehicles & Passenger Car Bodies"),
    ("1311", "Crude Petroleum & Natural Gas"),
];

/// The synthetic universe: a deterministic list of companies.
#[derive(Debug, Clone)]
pub struct Universe {
    seed: u64,
    sec: SecConfig,
    companies: Vec<Company>,
    by_cik: HashMap<u64, usize>,
}

impl Universe {
    /// Builds the universe of `config` (only `seed` and `sec` matter).
    pub fn generate(config: &SimConfig) -> Universe {
        let sec = config.sec.clone();
        let seed = config.seed;
        let tickers = ticker_sequence(seed, sec.companies);
        let mut companies = Vec::with_capacity(sec.companies);
        for (index, base_ticker) in tickers.into_iter().enumerate() {
            companies.push(make_company(seed, &sec, index, base_ticker));
        }
        let by_cik = companies.iter().map(|c| (c.cik, c.index)).collect();
        Universe {
            seed,
            sec,
            companies,
            by_cik,
        }
    }

    /// The seed the universe was built from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The SEC part of the configuration.
    pub fn sec_config(&self) -> &SecConfig {
        &self.sec
    }

    /// All companies, in CIK order.
    pub fn companies(&self) -> &[Company] {
        &self.companies
    }

    /// The company with `cik`.
    pub fn company(&self, cik: u64) -> Option<&Company> {
        self.by_cik.get(&cik).map(|i| &self.companies[*i])
    }

    /// Every filing of `company`, newest first.
    pub fn filings(&self, company: &Company) -> Vec<Filing> {
        company.filings(&self.sec, self.seed)
    }

    /// A batch input file for the first `n` companies: header `ticker,company_name,cik`, class
    /// shares written with a dot (`SABC.B`), delisted companies as CIK-only rows.
    pub fn companies_csv(&self, n: usize) -> String {
        let mut out = String::from("ticker,company_name,cik\n");
        for c in self.companies.iter().take(n) {
            let ticker = c.display_ticker().unwrap_or_default();
            let name = if c.name.contains(',') {
                format!("\"{}\"", c.name)
            } else {
                c.name.clone()
            };
            let _ = writeln!(out, "{ticker},{name},{}", c.cik);
        }
        out
    }

    /// `company_tickers.json`: every listed ticker, `{"0":{"cik_str":..,"ticker":..,"title":..}}`.
    pub fn company_tickers_json(&self) -> Value {
        let mut map = Map::new();
        for c in &self.companies {
            for t in &c.tickers {
                map.insert(
                    map.len().to_string(),
                    json!({"cik_str": c.cik, "ticker": t, "title": c.name}),
                );
            }
        }
        Value::Object(map)
    }

    /// The submissions page of `cik`: `None` when unknown; `page` 0 is
    /// `CIK##########.json`, `page` 1 is `CIK##########-submissions-001.json`.
    pub fn submissions_json(&self, cik: u64, page: u32) -> Option<Value> {
        let company = self.company(cik)?;
        let filings = self.filings(company);
        let limit = self.sec.recent_page_limit;
        let (recent, older) = filings.split_at(filings.len().min(limit));
        if page == 1 {
            return if older.is_empty() {
                None
            } else {
                Some(columns(older))
            };
        }
        if page > 1 {
            return None;
        }
        let files: Vec<Value> = if older.is_empty() {
            Vec::new()
        } else {
            vec![json!({
                "name": format!("CIK{:010}-submissions-001.json", cik),
                "filingCount": older.len(),
                "filingFrom": older.last().map(|f| f.filing_date.to_string()),
                "filingTo": older.first().map(|f| f.filing_date.to_string()),
            })]
        };
        let last_period = filings
            .iter()
            .find(|f| f.is_annual())
            .and_then(|f| f.report_date)
            .unwrap_or_else(|| company.fiscal_year_end.period_end(company.last_fiscal_year));
        let exchanges: Vec<&str> = if company.delisted {
            Vec::new()
        } else {
            company.tickers.iter().map(|_| company.exchange).collect()
        };
        Some(json!({
            "cik": cik.to_string(),
            "entityType": "operating",
            "sic": company.sic.0,
            "sicDescription": company.sic.1,
            "insiderTransactionForOwnerExists": 0,
            "insiderTransactionForIssuerExists": 1,
            "name": company.name,
            "tickers": company.tickers,
            "exchanges": exchanges,
            "ein": format!("{:09}", cik * 37 % 1_000_000_000),
            "description": "",
            "website": "",
            "investorWebsite": "",
            "category": if company.index % 3 == 0 { "Large accelerated filer" } else { "Accelerated filer" },
            "fiscalYearEnd": format!("{:02}{:02}", last_period.month(), last_period.day()),
            "stateOfIncorporation": company.state,
            "stateOfIncorporationDescription": company.state,
            "addresses": {
                "mailing": {"street1": format!("{} Market Street", 100 + company.index), "street2": null, "city": "WILMINGTON", "stateOrCountry": "DE", "zipCode": "19801", "stateOrCountryDescription": "DE"},
                "business": {"street1": format!("{} Market Street", 100 + company.index), "street2": null, "city": "WILMINGTON", "stateOrCountry": "DE", "zipCode": "19801", "stateOrCountryDescription": "DE"}
            },
            "phone": "(302) 555-0100",
            "flags": "",
            "formerNames": [],
            "filings": {"recent": columns(recent), "files": files}
        }))
    }

    /// The filing of `company` with accession number `folder` (no dashes).
    pub fn find_filing(&self, company: &Company, folder: &str) -> Option<Filing> {
        self.filings(company)
            .into_iter()
            .find(|f| f.accession_folder() == folder)
    }
}

/// Columnar arrays of a submissions page, as SEC serves them.
fn columns(filings: &[Filing]) -> Value {
    let col = |f: &dyn Fn(&Filing) -> Value| Value::Array(filings.iter().map(f).collect());
    json!({
        "accessionNumber": col(&|f| json!(f.accession)),
        "filingDate": col(&|f| json!(f.filing_date.to_string())),
        "reportDate": col(&|f| json!(f.report_date.map(|d| d.to_string()).unwrap_or_default())),
        "acceptanceDateTime": col(&|f| json!(format!("{}T16:{:02}:{:02}.000Z", f.filing_date, f.size % 60, f.size / 60 % 60))),
        "act": col(&|f| json!(if f.form.starts_with("8-K") || f.form.starts_with("6-K") { "" } else { "34" })),
        "form": col(&|f| json!(f.form)),
        "fileNumber": col(&|_| json!("001-38001")),
        "filmNumber": col(&|f| json!(format!("2{:08}", f.size))),
        "items": col(&|f| json!(if f.form == "8-K" { "2.02,9.01" } else { "" })),
        "core_type": col(&|f| json!(f.form)),
        "size": col(&|f| json!(f.size)),
        "isXBRL": col(&|f| json!(u8::from(f.filing_date.year() >= 2010))),
        "isInlineXBRL": col(&|f| json!(u8::from(f.filing_date.year() >= 2020))),
        "primaryDocument": col(&|f| json!(if f.primary_document_hidden() { "" } else { f.document.as_str() })),
        "primaryDocDescription": col(&|f| json!(if f.is_annual() { f.form.clone() } else { String::new() })),
    })
}

/// `n` unique four-letter tickers starting with S, in a seed-dependent order.
fn ticker_sequence(seed: u64, n: usize) -> Vec<String> {
    const SPACE: u64 = 26 * 26 * 26;
    // An affine permutation of 0..SPACE (the multiplier is coprime with 26^3).
    let offset = DetRng::new(seed, &[0x71C]).below(SPACE);
    let mut out = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let mut v = (i * 7_919 + offset) % SPACE;
        if i >= SPACE {
            v = i;
        }
        let mut t = String::from("S");
        let mut letters = [0u8; 3];
        for slot in letters.iter_mut().rev() {
            *slot = b'A' + (v % 26) as u8;
            v /= 26;
        }
        t.push_str(std::str::from_utf8(&letters).unwrap_or("XXX"));
        if i >= SPACE {
            // Beyond 17,576 companies: numbered tickers keep them unique.
            t = format!("S{i}");
        }
        out.push(t);
    }
    out
}

fn make_company(seed: u64, sec: &SecConfig, index: usize, base_ticker: String) -> Company {
    let mut rng = DetRng::new(seed, &[index as u64, 0xC0]);
    let cik = 1_800_001 + index as u64 * 37;
    let name = format!(
        "{} {} {}",
        rng.pick(NAME_FIRST),
        rng.pick(NAME_SECOND),
        rng.pick(NAME_SUFFIX)
    );
    let form = if rng.chance(0.04) {
        AnnualForm::TwentyF
    } else {
        AnnualForm::TenK
    };
    let fiscal_year_end = match rng.below(20) {
        0..=10 => FiscalYearEnd::December,
        11..=12 => FiscalYearEnd::September,
        13..=14 => FiscalYearEnd::June,
        15 => FiscalYearEnd::March,
        16..=17 => FiscalYearEnd::LastSaturdayOfSeptember,
        _ => FiscalYearEnd::FirstSundayOfJanuary,
    };
    let years = rng.range_inclusive(i64::from(sec.min_years), i64::from(sec.max_years)) as i16;
    let delisted = rng.chance(0.03);
    let last = if delisted {
        sec.last_fiscal_year - rng.range_inclusive(3, 9) as i16
    } else {
        sec.last_fiscal_year
    };
    let first = last - years + 1;
    let mut gap_years = Vec::new();
    if years > 4 && rng.chance(0.05) {
        gap_years.push(first + 1 + rng.below(years as u64 - 3) as i16);
    }
    let mut amended_years = Vec::new();
    if rng.chance(0.06) {
        let y = last - rng.below(years.min(5) as u64) as i16;
        if !gap_years.contains(&y) {
            amended_years.push(y);
        }
    }
    let tickers = if delisted {
        Vec::new()
    } else if rng.chance(0.01) || index == 7 {
        // Class shares, listed as SEC does with a dash (a user writes SABC.B).
        vec![format!("{base_ticker}-B"), format!("{base_ticker}-A")]
    } else {
        vec![base_ticker]
    };
    Company {
        index,
        cik,
        tickers,
        name,
        form,
        fiscal_year_end,
        first_fiscal_year: first,
        last_fiscal_year: last,
        gap_years,
        amended_years,
        delisted,
        exchange: rng.pick::<&str>(EXCHANGES),
        state: rng.pick::<&str>(STATES),
        sic: *rng.pick(SICS),
    }
}

/// The batch input file for the first `n` companies of the default universe (seed 42).
pub fn companies_csv(n: usize) -> String {
    let mut config = SimConfig::default();
    config.sec.companies = config.sec.companies.max(n);
    Universe::generate(&config).companies_csv(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn universe() -> Universe {
        Universe::generate(&SimConfig::default())
    }

    #[test]
    fn universe_is_deterministic_with_unique_tickers_and_ciks() {
        let a = universe();
        let b = universe();
        assert_eq!(a.companies(), b.companies());
        let tickers: Vec<&String> = a.companies().iter().flat_map(|c| &c.tickers).collect();
        let unique: HashSet<_> = tickers.iter().collect();
        assert_eq!(tickers.len(), unique.len());
        let ciks: HashSet<u64> = a.companies().iter().map(|c| c.cik).collect();
        assert_eq!(ciks.len(), 1_000);
        let other = SimConfig {
            seed: 7,
            ..SimConfig::default()
        };
        let names = |u: &Universe| {
            u.companies()
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
        };
        assert_ne!(names(&Universe::generate(&other)), names(&a));
    }

    #[test]
    fn universe_has_the_awkward_cases() {
        let u = universe();
        let cs = u.companies();
        assert!(cs.iter().any(|c| c.tickers.iter().any(|t| t.contains('-'))));
        assert!(cs.iter().any(|c| c.delisted && c.tickers.is_empty()));
        assert!(cs.iter().any(|c| c.form == AnnualForm::TwentyF));
        assert!(cs.iter().any(|c| !c.gap_years.is_empty()));
        assert!(cs.iter().any(|c| !c.amended_years.is_empty()));
        assert!(cs
            .iter()
            .any(|c| c.fiscal_year_end == FiscalYearEnd::FirstSundayOfJanuary));
        for c in cs {
            let years = c.last_fiscal_year - c.first_fiscal_year + 1;
            assert!((10..=25).contains(&years), "{} has {years} years", c.name);
        }
    }

    #[test]
    fn fifty_two_week_years_end_on_the_right_days() {
        for year in 2000..2030 {
            let jan = FiscalYearEnd::FirstSundayOfJanuary.period_end(year);
            assert_eq!(jan.year(), year + 1);
            assert!((1..=7).contains(&jan.day()));
            assert_eq!(jan.weekday(), Weekday::Sunday);
            let sep = FiscalYearEnd::LastSaturdayOfSeptember.period_end(year);
            assert!(sep.day() >= 24 && sep.month() == 9);
        }
    }

    #[test]
    fn filings_have_one_annual_report_per_year_except_gaps() {
        let u = universe();
        for c in u.companies().iter().take(200) {
            let filings = u.filings(c);
            let originals: Vec<i16> = filings
                .iter()
                .filter(|f| f.form == c.form.name())
                .filter_map(|f| f.fiscal_year)
                .collect();
            let mut expected = c.annual_years();
            expected.reverse();
            assert_eq!(originals, expected, "{}", c.name);
            let accessions: HashSet<&String> = filings.iter().map(|f| &f.accession).collect();
            assert_eq!(accessions.len(), filings.len());
        }
    }

    #[test]
    fn csv_lists_class_shares_with_a_dot_and_delisted_by_cik() {
        let csv = companies_csv(1_000);
        assert!(csv.starts_with("ticker,company_name,cik\n"));
        assert_eq!(csv.lines().count(), 1_001);
        assert!(csv
            .lines()
            .any(|l| l.split(',').next().is_some_and(|t| t.contains('.'))));
        assert!(csv.lines().any(|l| l.starts_with(',')));
    }
}
