//! Inline-XBRL facts read exactly from a filing's HTML, and the key financial figures per
//! fiscal year derived from them.
//!
//! Numbers are exact decimals (`Decimal`, an `i128` mantissa and a count of decimal places),
//! with the inline-XBRL `scale`, `sign="-"` and `format` applied (`ixt:num-dot-decimal`,
//! `ixt:numdotdecimal`, `ixt:num-comma-decimal`, `ixt:fixed-zero`, `ixt:zerodash`,
//! `ixt-sec:numwordsen` for "no"/"none" and small number words). A value written in parentheses
//! inside the tag is read as negative when the tag has no `sign` attribute. Contexts and units
//! come from the `<xbrli:context>` and `<xbrli:unit>` definitions in `ix:header`.
//! Non-numeric facts longer than 1,000 characters (text blocks) are skipped.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::entities::{cp1252_byte, decode_reference};
use crate::scan::{attribute, Token, Tokenizer};

/// An exact decimal number: `mantissa / 10^places`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    pub mantissa: i128,
    pub places: u32,
}

impl Decimal {
    /// Parses "-123.4500" style text (digits, optional sign and point).
    pub fn parse(text: &str) -> Option<Decimal> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let mut mantissa: i128 = 0;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            if !b.is_ascii_digit() {
                return None;
            }
            mantissa = mantissa
                .checked_mul(10)?
                .checked_add(i128::from(b - b'0'))?;
        }
        let places = u32::try_from(frac_part.len()).ok()?;
        let value = Decimal {
            mantissa: if negative { -mantissa } else { mantissa },
            places,
        };
        Some(value.normalised())
    }

    /// Multiplies by 10^exponent (exponent may be negative), exactly.
    pub fn scaled(self, exponent: i32) -> Option<Decimal> {
        let mut value = self;
        if exponent >= 0 {
            let mut e = exponent as u32;
            while e > 0 && value.places > 0 {
                value.places -= 1;
                e -= 1;
            }
            value.mantissa = value.mantissa.checked_mul(10i128.checked_pow(e)?)?;
        } else {
            value.places = value.places.checked_add(exponent.unsigned_abs())?;
        }
        Some(value.normalised())
    }

    fn normalised(mut self) -> Decimal {
        while self.places > 0 && self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.places -= 1;
        }
        self
    }

    pub fn negated(self) -> Decimal {
        Decimal {
            mantissa: -self.mantissa,
            places: self.places,
        }
    }

    /// Nearest `f64` (for display and ratios only; the exact value is the decimal).
    pub fn to_f64(self) -> f64 {
        self.mantissa as f64 / 10f64.powi(self.places as i32)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let digits = self.mantissa.unsigned_abs().to_string();
        let places = self.places as usize;
        if places == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = places + 1);
        let (int_part, frac_part) = padded.split_at(padded.len() - places);
        write!(f, "{sign}{int_part}.{frac_part}")
    }
}

impl Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Decimal::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a decimal number: {text:?}")))
    }
}

/// The period a fact is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Period {
    Instant { date: String },
    Duration { start: String, end: String },
    Forever,
}

impl Period {
    /// The instant, or the end of a duration.
    pub fn end_date(&self) -> Option<&str> {
        match self {
            Period::Instant { date } => Some(date),
            Period::Duration { end, .. } => Some(end),
            Period::Forever => None,
        }
    }

    /// Days in a duration (None for instants or unreadable dates).
    pub fn days(&self) -> Option<i64> {
        match self {
            Period::Duration { start, end } => Some(day_number(end)? - day_number(start)?),
            _ => None,
        }
    }
}

/// Days since 1970-01-01 of a "YYYY-MM-DD" date (proleptic Gregorian).
fn day_number(date: &str) -> Option<i64> {
    let mut parts = date.get(..10)?.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// A fact's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum FactValue {
    Number(Decimal),
    Text(String),
    /// `xsi:nil="true"`.
    Nil,
    /// A numeric fact whose text or format could not be read; the text as written.
    Unreadable(String),
}

/// One inline-XBRL fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    /// Qualified concept name as written ("us-gaap:Revenues").
    pub concept: String,
    pub value: FactValue,
    /// Unit ("iso4217:USD", "iso4217:USD/xbrli:shares"), numeric facts only.
    pub unit: Option<String>,
    /// The `decimals` attribute as written ("-6", "2", "INF").
    pub decimals: Option<String>,
    pub context_id: String,
    /// The context's period, when the context is defined.
    pub period: Option<Period>,
    /// Whether the context has dimensions (segment or scenario members).
    pub dimensional: bool,
}

#[derive(Default)]
struct ContextBuilder {
    id: String,
    start: Option<String>,
    end: Option<String>,
    instant: Option<String>,
    forever: bool,
    dimensional: bool,
}

#[derive(Default)]
struct UnitBuilder {
    id: String,
    numerator: Vec<String>,
    denominator: Vec<String>,
    in_denominator: bool,
}

struct OpenFact {
    concept: String,
    numeric: bool,
    context_id: String,
    unit_id: Option<String>,
    decimals: Option<String>,
    scale: Option<String>,
    negative: bool,
    format: Option<String>,
    nil: bool,
    text: Vec<u8>,
    overflow: bool,
}

/// Longest non-numeric value kept; longer ones are text blocks.
const MAX_TEXT_FACT: usize = 1000;

#[derive(Clone, Copy, PartialEq)]
enum Capture {
    None,
    Start,
    End,
    Instant,
    Measure,
}

fn attr_string(attrs: &[u8], name: &[u8]) -> Option<String> {
    attribute(attrs, name).map(decode_inline)
}

/// Decodes character references and non-UTF-8 bytes, collapsing whitespace.
fn decode_inline(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    let mut pending_space = false;
    let push = |out: &mut String, c: char, pending_space: &mut bool| {
        if c.is_whitespace() {
            *pending_space = true;
            return;
        }
        if *pending_space && !out.is_empty() {
            out.push(' ');
        }
        *pending_space = false;
        out.push(c);
    };
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        let vb = valid.as_bytes();
        while i < vb.len() {
            if vb[i] == b'&' {
                if let Some((c, used)) = decode_reference(&vb[i..]) {
                    push(&mut out, c, &mut pending_space);
                    i += used;
                    continue;
                }
            }
            let c = valid[i..].chars().next().unwrap_or(' ');
            push(&mut out, c, &mut pending_space);
            i += c.len_utf8();
        }
        i = 0;
        for &b in chunk.invalid() {
            push(&mut out, cp1252_byte(b), &mut pending_space);
        }
    }
    out
}

/// Reads every inline-XBRL fact (`ix:nonFraction`, and `ix:nonNumeric` up to 1,000 characters)
/// in document order. Never fails; a document without inline XBRL gives no facts.
pub fn extract_facts(html: &[u8]) -> Vec<Fact> {
    let mut contexts: HashMap<String, (Option<Period>, bool)> = HashMap::new();
    let mut units: HashMap<String, String> = HashMap::new();
    let mut context: Option<ContextBuilder> = None;
    let mut unit: Option<UnitBuilder> = None;
    let mut capture = Capture::None;
    let mut captured = Vec::new();
    let mut open: Vec<OpenFact> = Vec::new();
    let mut closed: Vec<OpenFact> = Vec::new();
    let mut exclude_depth = 0usize;

    for token in Tokenizer::new(html) {
        match token {
            Token::Text(text) => {
                if capture != Capture::None {
                    captured.extend_from_slice(text);
                }
                if exclude_depth == 0 {
                    for fact in &mut open {
                        if fact.text.len() + text.len() <= MAX_TEXT_FACT * 4 {
                            fact.text.extend_from_slice(text);
                        } else {
                            fact.overflow = true;
                        }
                    }
                }
            }
            Token::Start {
                name,
                attrs,
                self_closing,
            } => {
                let full = name.as_bytes();
                let local = name.local();
                let is_ix = full.starts_with(b"ix:");
                match local {
                    b"nonfraction" | b"nonnumeric" if is_ix => {
                        let fact = OpenFact {
                            concept: attr_string(attrs, b"name").unwrap_or_default(),
                            numeric: local == b"nonfraction",
                            context_id: attr_string(attrs, b"contextref").unwrap_or_default(),
                            unit_id: attr_string(attrs, b"unitref"),
                            decimals: attr_string(attrs, b"decimals"),
                            scale: attr_string(attrs, b"scale"),
                            negative: attribute(attrs, b"sign") == Some(b"-"),
                            format: attr_string(attrs, b"format"),
                            nil: attribute(attrs, b"xsi:nil")
                                .is_some_and(|v| v.eq_ignore_ascii_case(b"true")),
                            text: Vec::new(),
                            overflow: false,
                        };
                        if self_closing {
                            closed.push(fact);
                        } else {
                            open.push(fact);
                        }
                    }
                    b"exclude" if is_ix && !self_closing => exclude_depth += 1,
                    b"context" if !is_ix => {
                        context = Some(ContextBuilder {
                            id: attr_string(attrs, b"id").unwrap_or_default(),
                            ..ContextBuilder::default()
                        });
                    }
                    b"startdate" if context.is_some() => capture = Capture::Start,
                    b"enddate" if context.is_some() => capture = Capture::End,
                    b"instant" if context.is_some() => capture = Capture::Instant,
                    b"forever" => {
                        if let Some(c) = &mut context {
                            c.forever = true;
                        }
                    }
                    b"explicitmember" | b"typedmember" => {
                        if let Some(c) = &mut context {
                            c.dimensional = true;
                        }
                    }
                    b"unit" if !is_ix => {
                        unit = Some(UnitBuilder {
                            id: attr_string(attrs, b"id").unwrap_or_default(),
                            ..UnitBuilder::default()
                        });
                    }
                    b"unitdenominator" => {
                        if let Some(u) = &mut unit {
                            u.in_denominator = true;
                        }
                    }
                    b"measure" if unit.is_some() => capture = Capture::Measure,
                    _ => {}
                }
                if capture != Capture::None {
                    captured.clear();
                }
            }
            Token::End { name } => {
                let full = name.as_bytes();
                let local = name.local();
                let is_ix = full.starts_with(b"ix:");
                match local {
                    b"nonfraction" | b"nonnumeric" if is_ix => {
                        let numeric = local == b"nonfraction";
                        if let Some(index) = open.iter().rposition(|f| f.numeric == numeric) {
                            let fact = open.remove(index);
                            closed.push(fact);
                        }
                    }
                    b"exclude" if is_ix => exclude_depth = exclude_depth.saturating_sub(1),
                    b"startdate" | b"enddate" | b"instant" | b"measure" => {
                        let value = decode_inline(&captured);
                        match (capture, &mut context, &mut unit) {
                            (Capture::Start, Some(c), _) => c.start = Some(value),
                            (Capture::End, Some(c), _) => c.end = Some(value),
                            (Capture::Instant, Some(c), _) => c.instant = Some(value),
                            (Capture::Measure, _, Some(u)) => {
                                if u.in_denominator {
                                    u.denominator.push(value);
                                } else {
                                    u.numerator.push(value);
                                }
                            }
                            _ => {}
                        }
                        capture = Capture::None;
                    }
                    b"context" if !is_ix => {
                        if let Some(c) = context.take() {
                            let period = match (c.instant, c.start, c.end) {
                                (Some(date), _, _) => Some(Period::Instant { date }),
                                (None, Some(start), Some(end)) => {
                                    Some(Period::Duration { start, end })
                                }
                                _ if c.forever => Some(Period::Forever),
                                _ => None,
                            };
                            contexts.insert(c.id, (period, c.dimensional));
                        }
                    }
                    b"unit" if !is_ix => {
                        if let Some(u) = unit.take() {
                            let mut text = u.numerator.join("*");
                            if !u.denominator.is_empty() {
                                text.push('/');
                                text.push_str(&u.denominator.join("*"));
                            }
                            units.insert(u.id, text);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    closed
        .into_iter()
        .filter_map(|fact| {
            let value = fact_value(&fact)?;
            let (period, dimensional) = contexts
                .get(&fact.context_id)
                .cloned()
                .unwrap_or((None, false));
            Some(Fact {
                concept: fact.concept,
                value,
                unit: fact.unit_id.map(|id| units.get(&id).cloned().unwrap_or(id)),
                decimals: fact.decimals,
                context_id: fact.context_id,
                period,
                dimensional,
            })
        })
        .collect()
}

fn fact_value(fact: &OpenFact) -> Option<FactValue> {
    if fact.nil {
        return Some(FactValue::Nil);
    }
    let text = strip_tags_inline(&fact.text);
    if !fact.numeric {
        if fact.overflow || text.chars().count() > MAX_TEXT_FACT {
            return None;
        }
        return Some(FactValue::Text(text));
    }
    Some(match parse_number(&text, fact) {
        Some(value) => FactValue::Number(value),
        None => FactValue::Unreadable(text),
    })
}

/// Text of a fact's content with nested markup removed (facts may wrap `<span>`s).
fn strip_tags_inline(bytes: &[u8]) -> String {
    let mut text = Vec::with_capacity(bytes.len());
    for token in Tokenizer::new(bytes) {
        if let Token::Text(t) = token {
            text.extend_from_slice(t);
        }
    }
    decode_inline(&text)
}

fn parse_number(text: &str, fact: &OpenFact) -> Option<Decimal> {
    let format = fact
        .format
        .as_deref()
        .map(|f| f.rsplit(':').next().unwrap_or(f).to_ascii_lowercase())
        .unwrap_or_default();
    let trimmed = text.trim();
    let parenthesised = trimmed.starts_with('(') && trimmed.ends_with(')');
    let inner = trimmed.trim_matches(|c| c == '(' || c == ')').trim();
    let value = match format.as_str() {
        "fixed-zero" | "zerodash" | "fixedzero" => Decimal {
            mantissa: 0,
            places: 0,
        },
        "num-comma-decimal" | "numcommadecimal" | "numdotcomma" | "numspacecomma" => {
            let cleaned: String = inner
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == ',')
                .map(|c| if c == ',' { '.' } else { c })
                .collect();
            Decimal::parse(&cleaned)?
        }
        "numwordsen" | "num-word-en" | "numwordssen" => number_words(inner)?,
        // num-dot-decimal, numdotdecimal, numcommadot, numspacedot, or no format.
        _ => {
            let cleaned: String = inner
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            Decimal::parse(&cleaned)?
        }
    };
    let exponent: i32 = match fact.scale.as_deref() {
        Some(s) => s.trim().parse().ok()?,
        None => 0,
    };
    let value = value.scaled(exponent)?;
    let negative = fact.negative || parenthesised;
    Some(if negative { value.negated() } else { value })
}

fn number_words(text: &str) -> Option<Decimal> {
    const WORDS: [&str; 21] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    let lower = text.trim().to_ascii_lowercase();
    let mantissa = match lower.as_str() {
        "no" | "none" | "nil" => 0,
        word => WORDS.iter().position(|w| *w == word)? as i128,
    };
    Some(Decimal {
        mantissa,
        places: 0,
    })
}

/// The text of the first non-dimensional fact of a `dei:` concept.
fn dei_text(facts: &[Fact], concept: &str) -> Option<String> {
    facts
        .iter()
        .filter(|f| f.concept == concept && !f.dimensional)
        .find_map(|f| match &f.value {
            FactValue::Text(t) => Some(t.clone()),
            FactValue::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

/// `dei:DocumentFiscalYearFocus` ("2024").
pub fn document_fiscal_year_focus(facts: &[Fact]) -> Option<String> {
    dei_text(facts, "dei:DocumentFiscalYearFocus")
}

/// `dei:DocumentPeriodEndDate` as written on the cover ("September 28, 2024").
pub fn document_period_end_date(facts: &[Fact]) -> Option<String> {
    dei_text(facts, "dei:DocumentPeriodEndDate")
}

/// `dei:DocumentType` ("10-K", "20-F").
pub fn document_type(facts: &[Fact]) -> Option<String> {
    dei_text(facts, "dei:DocumentType")
}

/// A figure and the concept it was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figure {
    pub value: Decimal,
    /// The concept used, or for a derived figure the formula ("us-gaap:LiabilitiesAndStockholdersEquity - us-gaap:StockholdersEquity").
    pub concept: String,
    pub unit: Option<String>,
}

/// The key figures of one fiscal year (flows over the year ending `period_end`, balances at it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct YearFinancials {
    /// The fiscal year's last day ("2024-09-28").
    pub period_end: String,
    pub revenue: Option<Figure>,
    pub net_income: Option<Figure>,
    pub operating_cash_flow: Option<Figure>,
    pub total_assets: Option<Figure>,
    pub total_liabilities: Option<Figure>,
    pub shareholders_equity: Option<Figure>,
    pub shares_outstanding: Option<Figure>,
    pub eps_diluted: Option<Figure>,
    pub eps_basic: Option<Figure>,
}

/// Key financials of a filing: its cover facts and every fiscal year it reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFinancials {
    pub document_type: Option<String>,
    pub fiscal_year_focus: Option<String>,
    pub period_end_date: Option<String>,
    /// Latest year first.
    pub years: Vec<YearFinancials>,
}

/// Concepts tried in order for each figure (the first present wins).
pub const REVENUE_CONCEPTS: &[&str] = &[
    "us-gaap:Revenues",
    "us-gaap:RevenueFromContractWithCustomerExcludingAssessedTax",
    "us-gaap:SalesRevenueNet",
    "us-gaap:RevenueFromContractWithCustomerIncludingAssessedTax",
    "us-gaap:SalesRevenueGoodsNet",
    "us-gaap:RevenuesNetOfInterestExpense",
    "ifrs-full:Revenue",
];
pub const NET_INCOME_CONCEPTS: &[&str] = &[
    "us-gaap:NetIncomeLoss",
    "us-gaap:ProfitLoss",
    "us-gaap:NetIncomeLossAvailableToCommonStockholdersBasic",
    "ifrs-full:ProfitLossAttributableToOwnersOfParent",
    "ifrs-full:ProfitLoss",
];
pub const OPERATING_CASH_FLOW_CONCEPTS: &[&str] = &[
    "us-gaap:NetCashProvidedByUsedInOperatingActivities",
    "us-gaap:NetCashProvidedByUsedInOperatingActivitiesContinuingOperations",
    "ifrs-full:CashFlowsFromUsedInOperatingActivities",
];
pub const ASSETS_CONCEPTS: &[&str] = &["us-gaap:Assets", "ifrs-full:Assets"];
pub const LIABILITIES_CONCEPTS: &[&str] = &["us-gaap:Liabilities", "ifrs-full:Liabilities"];
pub const EQUITY_CONCEPTS: &[&str] = &[
    "us-gaap:StockholdersEquity",
    "us-gaap:StockholdersEquityIncludingPortionAttributableToNoncontrollingInterest",
    "ifrs-full:EquityAttributableToOwnersOfParent",
    "ifrs-full:Equity",
];
pub const SHARES_CONCEPTS: &[&str] = &[
    "us-gaap:CommonStockSharesOutstanding",
    "dei:EntityCommonStockSharesOutstanding",
];
pub const EPS_DILUTED_CONCEPTS: &[&str] = &[
    "us-gaap:EarningsPerShareDiluted",
    "us-gaap:EarningsPerShareBasicAndDiluted",
    "ifrs-full:DilutedEarningsLossPerShare",
];
pub const EPS_BASIC_CONCEPTS: &[&str] = &[
    "us-gaap:EarningsPerShareBasic",
    "us-gaap:EarningsPerShareBasicAndDiluted",
    "ifrs-full:BasicEarningsLossPerShare",
];

/// Days a duration must span to count as a fiscal year (52/53-week years included).
const ANNUAL_DAYS: std::ops::RangeInclusive<i64> = 340..=380;

fn is_annual(period: &Option<Period>) -> bool {
    period
        .as_ref()
        .and_then(Period::days)
        .is_some_and(|d| ANNUAL_DAYS.contains(&d))
}

fn figure(fact: &Fact) -> Option<Figure> {
    match fact.value {
        FactValue::Number(value) => Some(Figure {
            value,
            concept: fact.concept.clone(),
            unit: fact.unit.clone(),
        }),
        _ => None,
    }
}

/// The first fact of the first concept present, for a year-long flow ending at `end`.
fn flow(facts: &[Fact], concepts: &[&str], end: &str) -> Option<Figure> {
    concepts.iter().find_map(|concept| {
        facts
            .iter()
            .filter(|f| !f.dimensional && f.concept == *concept && is_annual(&f.period))
            .filter(|f| f.period.as_ref().and_then(Period::end_date) == Some(end))
            .find_map(figure)
    })
}

/// The first fact of the first concept present, for a balance at `date`.
fn balance(facts: &[Fact], concepts: &[&str], date: &str) -> Option<Figure> {
    concepts.iter().find_map(|concept| {
        facts
            .iter()
            .filter(|f| !f.dimensional && f.concept == *concept)
            .filter(|f| matches!(&f.period, Some(Period::Instant { date: d }) if d == date))
            .find_map(figure)
    })
}

/// Key figures per fiscal year from non-dimensional facts, with the fallbacks of the
/// `*_CONCEPTS` lists. Total liabilities, when not reported, are derived as
/// LiabilitiesAndStockholdersEquity minus equity including noncontrolling interest (the
/// `concept` field then shows the formula). Shares outstanding fall back to the cover-page
/// `dei:EntityCommonStockSharesOutstanding` (dated after year end) for the latest year only.
pub fn key_financials(facts: &[Fact]) -> KeyFinancials {
    let flow_concepts: Vec<&str> = [
        REVENUE_CONCEPTS,
        NET_INCOME_CONCEPTS,
        OPERATING_CASH_FLOW_CONCEPTS,
        EPS_DILUTED_CONCEPTS,
        EPS_BASIC_CONCEPTS,
    ]
    .concat();
    let mut year_ends: Vec<String> = facts
        .iter()
        .filter(|f| !f.dimensional && is_annual(&f.period))
        .filter(|f| flow_concepts.contains(&f.concept.as_str()))
        .filter_map(|f| {
            f.period
                .as_ref()
                .and_then(Period::end_date)
                .map(String::from)
        })
        .collect();
    year_ends.sort_unstable_by(|a, b| b.cmp(a));
    year_ends.dedup();

    let years = year_ends
        .iter()
        .enumerate()
        .map(|(index, end)| {
            let total_liabilities = balance(facts, LIABILITIES_CONCEPTS, end).or_else(|| {
                let total = balance(facts, &["us-gaap:LiabilitiesAndStockholdersEquity"], end)?;
                let equity = balance(
                    facts,
                    &[
                        "us-gaap:StockholdersEquityIncludingPortionAttributableToNoncontrollingInterest",
                        "us-gaap:StockholdersEquity",
                    ],
                    end,
                )?;
                Some(Figure {
                    value: Decimal::parse(&subtract(total.value, equity.value)?)?,
                    concept: format!("{} - {}", total.concept, equity.concept),
                    unit: total.unit,
                })
            });
            let shares_outstanding = balance(facts, &SHARES_CONCEPTS[..1], end).or_else(|| {
                if index > 0 {
                    return None;
                }
                facts
                    .iter()
                    .filter(|f| !f.dimensional && f.concept == SHARES_CONCEPTS[1])
                    .find_map(figure)
            });
            YearFinancials {
                period_end: end.clone(),
                revenue: flow(facts, REVENUE_CONCEPTS, end),
                net_income: flow(facts, NET_INCOME_CONCEPTS, end),
                operating_cash_flow: flow(facts, OPERATING_CASH_FLOW_CONCEPTS, end),
                total_assets: balance(facts, ASSETS_CONCEPTS, end),
                total_liabilities,
                shareholders_equity: balance(facts, EQUITY_CONCEPTS, end),
                shares_outstanding,
                eps_diluted: flow(facts, EPS_DILUTED_CONCEPTS, end),
                eps_basic: flow(facts, EPS_BASIC_CONCEPTS, end),
            }
        })
        .collect();

    KeyFinancials {
        document_type: document_type(facts),
        fiscal_year_focus: document_fiscal_year_focus(facts),
        period_end_date: document_period_end_date(facts),
        years,
    }
}

/// a - b, exactly, as decimal text.
fn subtract(a: Decimal, b: Decimal) -> Option<String> {
    let places = a.places.max(b.places);
    let a_m = a
        .mantissa
        .checked_mul(10i128.checked_pow(places - a.places)?)?;
    let b_m = b
        .mantissa
        .checked_mul(10i128.checked_pow(places - b.places)?)?;
    Some(
        Decimal {
            mantissa: a_m.checked_sub(b_m)?,
            places,
        }
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<html><body><div style="display:none"><ix:header><ix:hidden>
        <ix:nonNumeric name="dei:DocumentType" contextRef="d">10-K</ix:nonNumeric>
        <ix:nonNumeric name="dei:DocumentFiscalYearFocus" contextRef="d">2024</ix:nonNumeric>
        </ix:hidden><ix:resources>
        <xbrli:context id="d"><xbrli:entity><xbrli:identifier scheme="x">1</xbrli:identifier></xbrli:entity>
        <xbrli:period><xbrli:startDate>2023-10-01</xbrli:startDate><xbrli:endDate>2024-09-28</xbrli:endDate></xbrli:period></xbrli:context>
        <xbrli:context id="i"><xbrli:entity><xbrli:identifier scheme="x">1</xbrli:identifier></xbrli:entity>
        <xbrli:period><xbrli:instant>2024-09-28</xbrli:instant></xbrli:period></xbrli:context>
        <xbrli:context id="seg"><xbrli:entity><xbrli:identifier scheme="x">1</xbrli:identifier>
        <xbrli:segment><xbrldi:explicitMember dimension="a:B">a:C</xbrldi:explicitMember></xbrli:segment></xbrli:entity>
        <xbrli:period><xbrli:startDate>2023-10-01</xbrli:startDate><xbrli:endDate>2024-09-28</xbrli:endDate></xbrli:period></xbrli:context>
        <xbrli:unit id="usd"><xbrli:measure>iso4217:USD</xbrli:measure></xbrli:unit>
        <xbrli:unit id="eps"><xbrli:divide><xbrli:unitNumerator><xbrli:measure>iso4217:USD</xbrli:measure></xbrli:unitNumerator>
        <xbrli:unitDenominator><xbrli:measure>xbrli:shares</xbrli:measure></xbrli:unitDenominator></xbrli:divide></xbrli:unit>
        </ix:resources></ix:header></div>
        <p>Sales <ix:nonFraction name="us-gaap:Revenues" contextRef="seg" unitRef="usd" scale="6" format="ixt:num-dot-decimal">1,000</ix:nonFraction>
        total <ix:nonFraction name="us-gaap:Revenues" contextRef="d" unitRef="usd" decimals="-6" scale="6" format="ixt:num-dot-decimal"><span>391,035</span></ix:nonFraction>
        loss (<ix:nonFraction name="us-gaap:NetIncomeLoss" contextRef="d" unitRef="usd" scale="6" sign="-" format="ixt:num-dot-decimal">1,234.5</ix:nonFraction>)
        eps <ix:nonFraction name="us-gaap:EarningsPerShareDiluted" contextRef="d" unitRef="eps" decimals="2" format="ixt:num-dot-decimal">6.08</ix:nonFraction>
        assets <ix:nonFraction name="us-gaap:LiabilitiesAndStockholdersEquity" contextRef="i" unitRef="usd" scale="6" format="ixt:num-dot-decimal">364,980</ix:nonFraction>
        equity <ix:nonFraction name="us-gaap:StockholdersEquity" contextRef="i" unitRef="usd" scale="6" format="ixt:num-dot-decimal">56,950</ix:nonFraction>
        none <ix:nonFraction name="us-gaap:Goodwill" contextRef="i" unitRef="usd" format="ixt:fixed-zero">—</ix:nonFraction>
        pct <ix:nonFraction name="us-gaap:Rate" contextRef="i" unitRef="usd" scale="-2" format="ixt:num-dot-decimal">21.5</ix:nonFraction>
        nil <ix:nonFraction name="us-gaap:Other" contextRef="i" unitRef="usd" xsi:nil="true"/>
        </p></body></html>"#;

    fn number(facts: &[Fact], concept: &str) -> String {
        match &facts.iter().find(|f| f.concept == concept).unwrap().value {
            FactValue::Number(n) => n.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn facts_with_scale_sign_format_units_and_contexts() {
        let facts = extract_facts(DOC.as_bytes());
        assert_eq!(facts.len(), 11);
        let revenue: Vec<&Fact> = facts
            .iter()
            .filter(|f| f.concept == "us-gaap:Revenues")
            .collect();
        assert!(revenue[0].dimensional);
        assert!(!revenue[1].dimensional);
        assert_eq!(
            revenue[1].value,
            FactValue::Number(Decimal::parse("391035000000").unwrap())
        );
        assert_eq!(revenue[1].unit.as_deref(), Some("iso4217:USD"));
        assert_eq!(revenue[1].decimals.as_deref(), Some("-6"));
        assert_eq!(
            revenue[1].period,
            Some(Period::Duration {
                start: "2023-10-01".into(),
                end: "2024-09-28".into()
            })
        );
        assert_eq!(number(&facts, "us-gaap:NetIncomeLoss"), "-1234500000");
        assert_eq!(number(&facts, "us-gaap:EarningsPerShareDiluted"), "6.08");
        assert_eq!(number(&facts, "us-gaap:Goodwill"), "0");
        assert_eq!(number(&facts, "us-gaap:Rate"), "0.215");
        assert_eq!(number(&facts, "us-gaap:Other"), "Nil");
        let eps = facts
            .iter()
            .find(|f| f.concept == "us-gaap:EarningsPerShareDiluted")
            .unwrap();
        assert_eq!(eps.unit.as_deref(), Some("iso4217:USD/xbrli:shares"));
    }

    #[test]
    fn key_financials_use_non_dimensional_contexts_and_fallbacks() {
        let facts = extract_facts(DOC.as_bytes());
        let key = key_financials(&facts);
        assert_eq!(key.document_type.as_deref(), Some("10-K"));
        assert_eq!(key.fiscal_year_focus.as_deref(), Some("2024"));
        assert_eq!(key.years.len(), 1);
        let year = &key.years[0];
        assert_eq!(year.period_end, "2024-09-28");
        assert_eq!(
            year.revenue.as_ref().unwrap().value.to_string(),
            "391035000000"
        );
        let liabilities = year.total_liabilities.as_ref().unwrap();
        assert_eq!(liabilities.value.to_string(), "308030000000");
        assert!(liabilities.concept.contains(" - "));
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(Decimal::parse("0.10").unwrap().to_string(), "0.1");
        assert_eq!(Decimal::parse("-0.05").unwrap().to_string(), "-0.05");
        assert_eq!(
            Decimal::parse("12.5")
                .unwrap()
                .scaled(3)
                .unwrap()
                .to_string(),
            "12500"
        );
        assert_eq!(
            Decimal::parse("5").unwrap().scaled(-3).unwrap().to_string(),
            "0.005"
        );
        assert!(Decimal::parse("1a").is_none());
        assert!(Decimal::parse("").is_none());
        assert!(Decimal::parse("9".repeat(60).as_str()).is_none());
        let json = serde_json::to_string(&Decimal::parse("-1.25").unwrap()).unwrap();
        assert_eq!(json, "\"-1.25\"");
        let back: Decimal = serde_json::from_str(&json).unwrap();
        assert_eq!(back.to_string(), "-1.25");
        assert!(serde_json::from_str::<Decimal>("\"abc\"").is_err());
    }

    #[test]
    fn unreadable_numbers_are_reported_not_dropped() {
        let html = br#"<ix:nonFraction name="x:Y" contextRef="c" format="ixt:num-dot-decimal">n/a</ix:nonFraction>"#;
        let facts = extract_facts(html);
        assert_eq!(facts[0].value, FactValue::Unreadable("n/a".into()));
        assert_eq!(facts[0].period, None);
    }

    #[test]
    fn day_numbers() {
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(
            day_number("2024-09-28").unwrap() - day_number("2023-10-01").unwrap(),
            363
        );
        assert_eq!(day_number("2024-13-01"), None);
    }
}
