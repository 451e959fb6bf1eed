//! LLM providers for fintel.
//!
//! [`Provider`] is what the engine calls: one HTTP request per call, returning either a
//! [`Generation`] or a [`CallError`] whose variants are the rows of the provider-error table in
//! SPEC.md section 3. Classification happens here, once, from the response body; nothing above
//! this crate looks at status codes or error strings.

mod types;

pub use types::*;
