//! fintel-workflows: the analysis types ("workflows") as data.
//!
//! An analysis type is a prompt template plus the JSON schema of the reply, per fiscal year and,
//! for multi-year types, once more over the stored yearly results. Built-in types are TOML files
//! in this crate's `builtin/` folder, compiled into the binary with `include_str!` and loaded by
//! the very parser that loads a user's custom workflow files, so the two cannot drift apart.
//! No network, no database, no clock: the engine pins a loaded workflow's
//! [`Workflow::canonical`] text in its database and reloads it with
//! [`Workflow::from_canonical`].
//!
//! Entry points: [`Registry::load`] (built-ins plus custom directories), [`Registry::get`],
//! [`Step::render_year`] / [`Step::render_aggregate`] to build prompts, and
//! [`Step::output_validator`] to check a reply against the same schema the model was given.
//!
//! The rest of this page is the user documentation of the file format (also shipped as
//! `builtin/README.md`).
//!
#![doc = include_str!("../builtin/README.md")]

mod error;
mod registry;
mod schema;
mod template;
mod workflow;

pub use error::{Problem, SourceName, WorkflowError};
pub use registry::Registry;
pub use schema::{OutputMismatch, OutputValidator, ALLOWED_KEYWORDS};
pub use template::{AGGREGATE_PLACEHOLDERS, YEAR_PLACEHOLDERS};
pub use workflow::{AggregateVars, Kind, Origin, Step, Workflow, YearVars, MAX_FILE_BYTES};
