//! Why a screen could not run. Every message says what is wrong and what to do; all but the
//! database errors are bad input (exit 2 in the binary).

use std::path::PathBuf;

/// The operators a `--where` condition may use, for messages.
pub const OPERATORS: &str = "= != < <= > >= ~";

#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error(
        "unknown analysis type `{name}`: no workflow and no stored result has it; known types: {}",
        .available.join(", ")
    )]
    UnknownType {
        name: String,
        available: Vec<String>,
    },

    #[error(
        "unknown field `{field}` for analysis type {analysis_type}; its fields are: {}",
        .fields.join(", ")
    )]
    UnknownField {
        field: String,
        analysis_type: String,
        fields: Vec<String>,
    },

    #[error(
        "cannot sort by `{field}`: it is a list; sort by one of: {}",
        .sortable.join(", ")
    )]
    NotSortable {
        field: String,
        sortable: Vec<String>,
    },

    #[error("empty --where condition; write it as FIELD OP VALUE, e.g. --where \"score >= 7\"")]
    EmptyCondition,

    #[error(
        "no operator in --where {text:?}; write FIELD OP VALUE with OP one of {OPERATORS}, \
         e.g. --where \"score >= 7\""
    )]
    NoOperator { text: String },

    #[error("unknown operator `{found}` in --where {text:?}; use one of {OPERATORS}")]
    BadOperator { text: String, found: String },

    #[error(
        "no value in --where {text:?}; write FIELD OP VALUE, e.g. --where \"{field} {op} ...\""
    )]
    MissingValue {
        text: String,
        field: String,
        op: String,
    },

    #[error(
        "`{value}` is not a number, but `{field}` is numeric; write e.g. --where \"{field} >= 70\""
    )]
    BadNumber { field: String, value: String },

    #[error("`{value}` is not a value of `{field}`; it is one of: {}", .values.join(", "))]
    NotInEnum {
        field: String,
        value: String,
        values: Vec<String>,
    },

    #[error(
        "`{value}` is a value of `{field}` only in an earlier version of {analysis_type}, so it \
         has no place on the current one ({}); to screen by it, pass --batch-id with a batch of \
         that version",
        .values.join(", ")
    )]
    EarlierEnumValue {
        field: String,
        value: String,
        analysis_type: String,
        values: Vec<String>,
    },

    #[error("`{value}` is not true or false, which `{field}` is")]
    BadBoolean { field: String, value: String },

    #[error(
        "`{op}` does not apply to `{field}` ({kind}); use `~` (contains) or `= null` / `!= null`"
    )]
    OperatorNotForKind {
        field: String,
        op: String,
        kind: String,
    },

    #[error("unknown preset `{name}`; the presets are: {available}")]
    UnknownPreset { name: String, available: String },

    #[error("{0}")]
    BadArgument(String),

    #[error("{0}")]
    Store(#[from] fintel_store::StoreError),

    #[error("database error while screening: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error("the pinned workflow of batch {batch} does not load: {detail}")]
    PinnedWorkflow { batch: String, detail: String },

    #[error("{} already exists; pass --force to replace it or choose another path", .0.display())]
    AlreadyExists(PathBuf),

    #[error("could not write {}: {detail}; nothing was written", .path.display())]
    Write { path: PathBuf, detail: String },
}

impl ScreenError {
    /// Whether the error is the user's input (exit 2) rather than a failure of the machine.
    pub fn is_bad_input(&self) -> bool {
        match self {
            ScreenError::Sqlite(_)
            | ScreenError::Write { .. }
            | ScreenError::PinnedWorkflow { .. } => false,
            ScreenError::Store(e) => matches!(
                e,
                fintel_store::StoreError::BatchNotFound(_)
                    | fintel_store::StoreError::AmbiguousBatch { .. }
            ),
            _ => true,
        }
    }
}
