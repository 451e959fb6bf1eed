//! Filing documents to text, with no I/O (no network, files or clock).
//!
//! - [`html_to_text`] turns HTML (inline XBRL, 1990s upper-case HTML, plain text wrapped in HTML)
//!   into clean text: one block per line, table cells joined by `" | "`, hidden inline-XBRL
//!   content removed, entities decoded (Windows-1252 numeric references included), non-UTF-8
//!   bytes read as Windows-1252, page numbers and running footers dropped. See [`text`].
//! - [`find_sections`] locates the item sections of a 10-K or 20-F, with their status (present,
//!   incorporated by reference and where, not applicable, absent). See [`sections`].
//! - [`estimate_tokens`], [`TokenEstimator`] and [`fit_to_budget`] estimate tokens and keep
//!   the most important sections within a budget. See [`budget`].
//! - [`extract_facts`] and [`key_financials`] read exact inline-XBRL facts and key figures per fiscal
//!   year. See [`xbrl`].
//! - [`text_report`] gives everything `fintel text FILE [--section] [--budget] [--facts]` prints,
//!   as one serialisable value.

pub mod budget;
mod entities;
mod error;
pub mod report;
mod scan;
pub mod sections;
pub mod text;
pub mod xbrl;

pub use budget::{estimate_tokens, fit_to_budget, section_priority, Cut, Fitted, TokenEstimator};
pub use error::FilingError;
pub use report::{text_report, TextOptions, TextReport};
pub use sections::{find_sections, FormKind, ItemSpec, Section, SectionStatus};
pub use text::{html_to_text, FilingText};
pub use xbrl::{
    document_fiscal_year_focus, document_period_end_date, document_type, extract_facts,
    key_financials, Decimal, Fact, FactValue, Figure, KeyFinancials, Period, YearFinancials,
};
