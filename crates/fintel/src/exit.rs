//! Exit codes (SPEC.md section 1) and the error kinds that choose them.

use std::fmt;

/// Everything finished (or stopped cleanly on a signal).
pub const OK: u8 = 0;
/// An unexpected runtime error.
pub const RUNTIME: u8 = 1;
/// Bad usage or bad input; nothing was changed.
pub const USAGE: u8 = 2;
/// A batch ended with failed tasks.
pub const FAILED_TASKS: u8 = 3;
/// Stopped on a configuration problem (no usable key, unknown model, no SEC User-Agent).
pub const CONFIG: u8 = 4;
/// A second signal.
pub const SECOND_SIGNAL: u8 = 130;

/// An error that carries its exit code.
#[derive(Debug)]
pub struct Coded {
    pub code: u8,
    pub message: String,
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

/// Bad usage or input (exit 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Coded {
        code: USAGE,
        message: message.into(),
    }
    .into()
}

/// A configuration problem (exit 4).
pub fn config_problem(message: impl Into<String>) -> anyhow::Error {
    Coded {
        code: CONFIG,
        message: message.into(),
    }
    .into()
}

/// The exit code an error should end the process with.
pub fn code_of(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(c) = cause.downcast_ref::<Coded>() {
            return c.code;
        }
        if let Some(e) = cause.downcast_ref::<fintel_engine::EngineError>() {
            return match e {
                fintel_engine::EngineError::BadInput(_) => USAGE,
                fintel_engine::EngineError::Store(s) => store_code(s),
                _ => RUNTIME,
            };
        }
        if let Some(s) = cause.downcast_ref::<fintel_store::StoreError>() {
            return store_code(s);
        }
        if cause.is::<fintel_engine::input::InputError>()
            || cause.is::<fintel_workflows::WorkflowError>()
        {
            return USAGE;
        }
    }
    RUNTIME
}

fn store_code(e: &fintel_store::StoreError) -> u8 {
    use fintel_store::StoreError::*;
    match e {
        BatchNotFound(_) | AmbiguousBatch { .. } | Corrupt { .. } | NewerSchema { .. } => USAGE,
        _ => RUNTIME,
    }
}
