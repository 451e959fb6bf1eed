//! Errors for the few inputs this crate can reject (conversion itself never fails).

/// What went wrong, and what to do about it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FilingError {
    #[error("unknown form type {0:?}: expected an annual report form such as 10-K (10-K405, 10-KSB, 10-K/A) or 20-F")]
    UnknownForm(String),
    #[error("unknown item {item:?} for form {form}: valid items are {valid}")]
    UnknownItem {
        item: String,
        form: &'static str,
        valid: String,
    },
    #[error("item {item} was not found in this {form} document: run without a section to see the whole text, or list the sections found")]
    SectionNotFound { item: String, form: &'static str },
    #[error("chars-per-token ratio must be a finite number above 0.5, got {0}")]
    InvalidRatio(f64),
    #[error("cannot calibrate the token estimate from an empty sample or a zero token count: give a sample text and the token count a model reported for it")]
    EmptyCalibration,
}
