//! Errors of loading, looking up and using workflows.
//!
//! A bad workflow file is reported as [`WorkflowError::Invalid`]: the file, the line where the
//! problem is (when it can be known) and a [`Problem`] that says what is wrong and, where there
//! is a fix, what to write instead. Its `Display` is meant to be shown to the user as is:
//!
//! ```text
//! workflows/mine.toml line 7: unknown placeholder {tikcer} in [year].prompt; use one of {ticker}, {company_name}, {year}, {form}, {document} (write {{ and }} for literal braces)
//! ```

use std::fmt;
use std::path::PathBuf;

/// Where a workflow's text came from, as shown in error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceName {
    /// A file compiled into the binary (`builtin/<file>`).
    Builtin(&'static str),
    /// A user's file.
    File(PathBuf),
    /// The copy stored with a batch (see [`crate::Workflow::from_canonical`]).
    Pinned,
}

impl fmt::Display for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceName::Builtin(file) => write!(f, "built-in workflow {file}"),
            SourceName::File(path) => write!(f, "{}", path.display()),
            SourceName::Pinned => write!(f, "workflow pinned in the database"),
        }
    }
}

/// What is wrong with a workflow file. Each message says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The file is not valid TOML, or a field is missing, unknown or of the wrong type
    /// (the message is the TOML parser's).
    #[error("{message}")]
    Toml { message: String },
    /// The file could not be read.
    #[error("cannot read the file: {message}")]
    Unreadable { message: String },
    /// The file holds nothing (often one a shell redirection has only just created).
    #[error("the file is empty; write a workflow into it (e.g. `fintel workflows show fundamental`) or remove it")]
    Empty,
    /// The file is larger than any sensible workflow.
    #[error("the file is {bytes} bytes; a workflow file may be at most {limit} bytes")]
    TooLarge { bytes: u64, limit: u64 },
    /// A field has a value outside what it allows.
    #[error("{field}: {message}")]
    BadValue {
        field: &'static str,
        message: String,
    },
    /// A `{name}` the step does not provide (a typo, or a placeholder of the other step).
    #[error(
        "unknown placeholder {{{placeholder}}} in [{step}].prompt; use one of {} (write {{{{ and }}}} for literal braces)",
        list_placeholders(allowed)
    )]
    UnknownPlaceholder {
        placeholder: String,
        step: &'static str,
        allowed: &'static [&'static str],
    },
    /// A placeholder every prompt of this step needs is absent.
    #[error("[{step}].prompt must contain {{{placeholder}}} exactly once ({why}); it has none")]
    MissingPlaceholder {
        placeholder: &'static str,
        step: &'static str,
        why: &'static str,
    },
    /// A placeholder that may appear once appears several times.
    #[error(
        "[{step}].prompt contains {{{placeholder}}} {count} times; it may appear only once ({why})"
    )]
    RepeatedPlaceholder {
        placeholder: &'static str,
        step: &'static str,
        count: usize,
        why: &'static str,
    },
    /// A lone `{` or `}` that is not part of a placeholder.
    #[error("[{step}].prompt has {detail}; write {{{{ or }}}} for a literal brace")]
    UnbalancedBrace { step: &'static str, detail: String },
    /// `min_years` is greater than `max_years`.
    #[error("min_years ({min}) is greater than max_years ({max})")]
    YearRange { min: u32, max: u32 },
    /// A step the type needs is absent, or one it must not have is present.
    #[error("{message}")]
    Steps { message: String },
    /// The schema is not JSON (or not a TOML table that maps to JSON).
    #[error("schema of [{step}] is not valid JSON: {message}")]
    SchemaSyntax { step: &'static str, message: String },
    /// The schema is JSON but not a schema the local validator accepts.
    #[error("schema of [{step}] is not a valid JSON Schema: {message}")]
    SchemaInvalid { step: &'static str, message: String },
    /// The schema uses something Gemini's `responseJsonSchema` does not support, or breaks a
    /// rule that keeps model output checkable (a `type` on every node, `required` naming real
    /// properties, ...).
    #[error("schema of [{step}] at {pointer}: {message}")]
    SchemaUnsupported {
        step: &'static str,
        pointer: String,
        message: String,
    },
    /// `schema_file` names a file that cannot be read.
    #[error("schema_file of [{step}]: cannot read {path}: {message}")]
    SchemaFile {
        step: &'static str,
        path: PathBuf,
        message: String,
    },
}

fn list_placeholders(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("{{{name}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {
    /// A workflow file (or a schema file it names) is invalid.
    #[error("{}", located(file, line, problem))]
    Invalid {
        /// The file at fault (a schema file when the problem is inside one).
        file: SourceName,
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        problem: Problem,
    },
    /// Several invalid files, reported together so that one run shows them all.
    #[error("{}", join_lines(.0))]
    Several(Vec<WorkflowError>),
    /// Two custom files define the same type name.
    #[error(
        "two workflow files define the analysis type `{name}`: {} and {}; rename one of them (the `name` field)",
        first.display(), second.display()
    )]
    DuplicateName {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    /// A custom file uses a name that cannot be replaced.
    #[error("{}: the name `{name}` is reserved ({why}); choose another `name`", file.display())]
    ReservedName {
        name: String,
        file: PathBuf,
        why: &'static str,
    },
    /// The type is defined by a custom file that cannot be used (see its problem).
    #[error("the analysis type `{name}` cannot be used: {detail}")]
    UnusableType { name: String, detail: String },
    /// A workflows directory exists but cannot be listed.
    #[error("cannot read the workflows directory {}: {message}", dir.display())]
    Directory { dir: PathBuf, message: String },
    /// No type has this name.
    #[error(
        "unknown analysis type `{name}`; available: {} (custom types are *.toml files in the workflows directory)",
        available.join(", ")
    )]
    UnknownType {
        name: String,
        available: Vec<String>,
    },
    /// A batch asks for a number of fiscal years the type does not accept.
    #[error("{}", years_message(name, *requested, *min, *max))]
    YearsOutOfRange {
        name: String,
        requested: usize,
        min: u32,
        max: Option<u32>,
    },
    /// A step's schema failed to compile for output validation (cannot happen for a loaded
    /// workflow, whose schemas are compiled at load time; possible for a hand-built `Step`).
    #[error("cannot compile the output schema: {message}")]
    OutputSchema { message: String },
}

fn located(file: &SourceName, line: &Option<usize>, problem: &Problem) -> String {
    match line {
        Some(line) => format!("{file} line {line}: {problem}"),
        None => format!("{file}: {problem}"),
    }
}

fn join_lines(errors: &[WorkflowError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn years_message(name: &str, requested: usize, min: u32, max: Option<u32>) -> String {
    let (accepted, last) = match max {
        Some(max) if max == min => (format!("exactly {min}"), max),
        Some(max) => (format!("{min} to {max}"), max),
        None => (format!("at least {min}"), min),
    };
    let years = if last == 1 { "year" } else { "years" };
    let were = if requested == 1 { "was" } else { "were" };
    format!(
        "the analysis type `{name}` needs {accepted} fiscal {years}, but {requested} {were} asked for; change --years or --fiscal-years"
    )
}

impl WorkflowError {
    /// The problems of this error, flattening [`WorkflowError::Several`]; handy for tests and
    /// for callers that show one problem per line.
    pub fn problems(&self) -> Vec<&WorkflowError> {
        match self {
            WorkflowError::Several(errors) => errors.iter().flat_map(|e| e.problems()).collect(),
            other => vec![other],
        }
    }
}
