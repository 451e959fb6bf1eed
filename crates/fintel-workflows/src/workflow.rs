//! One analysis type: parsing and checking a workflow file, its version, its pinned copy, and
//! filling its prompts.
//!
//! Built-in and custom files go through [`parse`] alike; only two rules depend on where a file
//! comes from: `kind = "xbrl"` is reserved for built-ins (the engine computes that result from
//! XBRL facts, so a custom file cannot change it), and `schema_file` is looked up among the
//! embedded files for a built-in, next to the file for a custom one, and not at all for a pinned
//! copy (which is self-contained).

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::error::{Problem, SourceName, WorkflowError};
use crate::schema;
use crate::template::{self, Required, AGGREGATE_PLACEHOLDERS, YEAR_PLACEHOLDERS};

/// Largest workflow or schema file read; a workflow is a few kilobytes.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Bumped if the meaning of the hashed document (see [`Workflow::version`]) ever changes.
const VERSION_FORMAT: u32 = 1;

/// How a type produces its per-year result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A model is asked, with the step's prompt and schema.
    Llm,
    /// Computed from the filing's inline-XBRL facts; no model call (built-in `financials`).
    Xbrl,
    /// Computed by comparing the filing with the previous fiscal year's (`fintel_changes`); no
    /// model call (built-in `changes`).
    Changes,
}

impl Kind {
    /// The name used in workflow files.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Llm => "llm",
            Kind::Xbrl => "xbrl",
            Kind::Changes => "changes",
        }
    }

    /// Whether a model is asked for the per-year result.
    pub fn needs_model(self) -> bool {
        self == Kind::Llm
    }
}

/// Where a loaded workflow came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into the binary.
    Builtin,
    /// A user's workflow file.
    File(PathBuf),
    /// The copy pinned in a batch ([`Workflow::from_canonical`]).
    Pinned,
}

/// One step of a type: a prompt template and the schema of its reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// System instruction, sent exactly as written (no placeholders, no brace escapes).
    pub system: Option<String>,
    /// Prompt template (empty for `kind = "xbrl"`). Line ends are `\n`, trailing blanks of
    /// each line and of the whole text are removed at load time.
    pub prompt: String,
    /// JSON Schema of the reply (the allowed subset: [`crate::ALLOWED_KEYWORDS`]).
    pub schema: Value,
}

/// Values of a per-year prompt.
#[derive(Debug, Clone, Copy)]
pub struct YearVars<'a> {
    pub ticker: &'a str,
    pub company_name: &'a str,
    /// Fiscal year.
    pub year: i32,
    /// Form type of the filing, e.g. `10-K` or `20-F`.
    pub form: &'a str,
    /// The filing text, already fitted to the model's input budget.
    pub document: &'a str,
}

/// Values of an aggregate prompt.
#[derive(Debug, Clone, Copy)]
pub struct AggregateVars<'a> {
    pub ticker: &'a str,
    pub company_name: &'a str,
    /// The fiscal years whose results are given, oldest first.
    pub years: &'a [i32],
    /// The stored per-year results, an object keyed by fiscal year (`{"2019": {...}, ...}`).
    pub yearly_results: &'a Value,
}

impl Step {
    /// Fills a per-year prompt. `{years}` and `{yearly_results}` cannot occur (rejected at load).
    pub fn render_year(&self, vars: &YearVars<'_>) -> String {
        template::render(&self.prompt, |name| match name {
            "ticker" => Some(vars.ticker.to_string()),
            "company_name" => Some(vars.company_name.to_string()),
            "year" => Some(vars.year.to_string()),
            "form" => Some(vars.form.to_string()),
            "document" => Some(vars.document.to_string()),
            _ => None,
        })
    }

    /// Fills an aggregate prompt: `{years}` as `2019, 2020, 2021`, `{yearly_results}` as
    /// pretty-printed JSON with sorted keys (years in order when keyed by fiscal year).
    pub fn render_aggregate(&self, vars: &AggregateVars<'_>) -> String {
        template::render(&self.prompt, |name| match name {
            "ticker" => Some(vars.ticker.to_string()),
            "company_name" => Some(vars.company_name.to_string()),
            "years" => Some(
                vars.years
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            "yearly_results" => Some(
                serde_json::to_string_pretty(&schema::sorted(vars.yearly_results))
                    .unwrap_or_else(|_| vars.yearly_results.to_string()),
            ),
            _ => None,
        })
    }

    /// The literal start of the prompt, up to its first placeholder: the same for every request
    /// of this step, so a provider's prefix cache can reuse it (together with the system
    /// instruction).
    pub fn stable_prefix(&self) -> &str {
        // Stops at any brace: an escaped one renders differently from its source.
        let end = self.prompt.find(['{', '}']).unwrap_or(self.prompt.len());
        &self.prompt[..end]
    }

    /// SHA-256 (hex) of this step alone (system instruction, prompt, schema). A multi-year
    /// type's [`Workflow::version`] covers both steps; keying its yearly results by the year
    /// step's version instead lets a user edit the aggregate prompt without paying again for
    /// every yearly result.
    pub fn version(&self) -> String {
        let hashed = serde_json::json!({"format": VERSION_FORMAT, "step": hashed_step(self)});
        let bytes = serde_json::to_vec(&schema::sorted(&hashed)).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }

    /// The schema without the `propertyOrdering` keywords that loading adds (Gemini-specific),
    /// for providers whose strict structured-output mode refuses unknown keywords.
    pub fn schema_without_property_ordering(&self) -> Value {
        schema::without_property_ordering(&self.schema)
    }

    /// A validator for replies to this step.
    pub fn output_validator(&self) -> Result<schema::OutputValidator, WorkflowError> {
        schema::OutputValidator::new(&self.schema)
    }
}

/// An analysis type, loaded and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    pub name: String,
    pub description: String,
    /// Fewest fiscal years a batch may ask for; for a multi-year type, also the fewest completed
    /// years its aggregate step needs.
    pub min_years: u32,
    /// Most fiscal years a batch may ask for (no limit when `None`).
    pub max_years: Option<u32>,
    pub kind: Kind,
    /// The per-year step; `Some` for every loaded workflow.
    pub year: Option<Step>,
    /// The aggregate step of a multi-year type.
    pub aggregate: Option<Step>,
    /// SHA-256 (hex) of the normalised content; part of every result key.
    pub version: String,
    pub origin: Origin,
    /// Self-contained TOML (schemas inlined) to store with a batch; reload it with
    /// [`Workflow::from_canonical`].
    pub canonical: String,
}

impl Workflow {
    /// True for types with an aggregate step over several years.
    pub fn is_multi_year(&self) -> bool {
        self.aggregate.is_some()
    }

    /// Checks that a batch may ask this type for `requested` fiscal years.
    pub fn check_years(&self, requested: usize) -> Result<(), WorkflowError> {
        let too_few = requested < self.min_years as usize;
        let too_many = self.max_years.is_some_and(|max| requested > max as usize);
        if too_few || too_many || requested == 0 {
            return Err(WorkflowError::YearsOutOfRange {
                name: self.name.clone(),
                requested,
                min: self.min_years,
                max: self.max_years,
            });
        }
        Ok(())
    }

    /// Loads a user's workflow file (`schema_file` is read relative to its folder).
    pub fn from_file(path: &Path) -> Result<Workflow, WorkflowError> {
        let source_name = SourceName::File(path.to_path_buf());
        let text = read_limited(path).map_err(|problem| WorkflowError::Invalid {
            file: source_name.clone(),
            line: None,
            problem,
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let siblings = move |step: &'static str, name: &str| read_sibling(&dir, step, name);
        parse(
            &text,
            Origin::File(path.to_path_buf()),
            source_name,
            &siblings,
        )
    }

    /// Reloads a workflow from its [`Workflow::canonical`] text, as stored with a batch. The
    /// result has the same version as the workflow it was made from.
    pub fn from_canonical(canonical: &str) -> Result<Workflow, WorkflowError> {
        let no_siblings = |step: &'static str, name: &str| -> SiblingResult {
            Err(Problem::SchemaFile {
                step,
                path: PathBuf::from(name),
                message: "a pinned workflow must have its schema inline".to_string(),
            })
        };
        parse(canonical, Origin::Pinned, SourceName::Pinned, &no_siblings)
    }
}

/// The text of a schema file and the name to report its problems under.
pub(crate) type SiblingResult = Result<(String, SourceName), Problem>;

fn read_limited(path: &Path) -> Result<String, Problem> {
    let metadata = std::fs::metadata(path).map_err(|e| Problem::Unreadable {
        message: e.to_string(),
    })?;
    if metadata.len() > MAX_FILE_BYTES {
        return Err(Problem::TooLarge {
            bytes: metadata.len(),
            limit: MAX_FILE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(|e| Problem::Unreadable {
        message: e.to_string(),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| Problem::Unreadable {
        message: format!("not UTF-8 text ({e})"),
    })?;
    if text.trim().is_empty() {
        return Err(Problem::Empty);
    }
    Ok(text)
}

fn read_sibling(dir: &Path, step: &'static str, name: &str) -> SiblingResult {
    let relative = Path::new(name);
    let plain = !name.is_empty()
        && relative
            .components()
            .all(|component| matches!(component, Component::Normal(_)));
    if !plain {
        return Err(Problem::SchemaFile {
            step,
            path: relative.to_path_buf(),
            message:
                "schema_file must be a path relative to the workflow file's folder, without `..`"
                    .to_string(),
        });
    }
    let path = dir.join(relative);
    match read_limited(&path) {
        Ok(text) => Ok((text, SourceName::File(path))),
        Err(Problem::Unreadable { message }) | Err(Problem::SchemaFile { message, .. }) => {
            Err(Problem::SchemaFile {
                step,
                path,
                message,
            })
        }
        Err(other) => Err(other),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkflow {
    name: Spanned<String>,
    description: Spanned<String>,
    #[serde(default)]
    min_years: Option<Spanned<i64>>,
    #[serde(default)]
    max_years: Option<Spanned<i64>>,
    #[serde(default)]
    kind: Option<Spanned<Kind>>,
    #[serde(default)]
    year: Option<Spanned<RawStep>>,
    #[serde(default)]
    aggregate: Option<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(default)]
    system: Option<Spanned<String>>,
    #[serde(default)]
    prompt: Option<Spanned<String>>,
    #[serde(default)]
    schema: Option<Spanned<schema::Ordered>>,
    #[serde(default)]
    schema_file: Option<Spanned<String>>,
}

/// Context of one parse, for locating problems.
struct Parser<'a> {
    source: &'a str,
    source_name: SourceName,
}

impl Parser<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let offset = offset.min(self.source.len());
        self.source.as_bytes()[..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn error_at(&self, offset: Option<usize>, problem: Problem) -> WorkflowError {
        WorkflowError::Invalid {
            file: self.source_name.clone(),
            line: offset.map(|offset| self.line_of(offset)),
            problem,
        }
    }

    fn bad_value(&self, offset: usize, field: &'static str, message: String) -> WorkflowError {
        self.error_at(Some(offset), Problem::BadValue { field, message })
    }

    /// Offset of `needle` inside the source text of a value, else the value's start.
    fn offset_within(&self, span: &std::ops::Range<usize>, needle: Option<&str>) -> usize {
        let raw = self.source.get(span.clone()).unwrap_or("");
        needle
            .and_then(|needle| raw.find(needle))
            .map_or(span.start, |found| span.start + found)
    }
}

/// Parses and checks one workflow file. `siblings` reads a `schema_file`.
pub(crate) fn parse(
    source: &str,
    origin: Origin,
    source_name: SourceName,
    siblings: &dyn Fn(&'static str, &str) -> SiblingResult,
) -> Result<Workflow, WorkflowError> {
    let parser = Parser {
        source,
        source_name,
    };
    let raw: RawWorkflow = toml::from_str(source).map_err(|error| {
        let mut message = error.message().trim_end().to_string();
        if let Some(quoted) = error
            .span()
            .and_then(|span| single_line_context(source, span))
        {
            message.push_str(&format!(" in `{quoted}`"));
        }
        parser.error_at(
            error.span().map(|span| span.start),
            Problem::Toml { message },
        )
    })?;

    let name = raw.name.get_ref().trim().to_string();
    let name_ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !name_ok {
        return Err(parser.bad_value(
            raw.name.span().start,
            "name",
            format!("\"{name}\" is not a valid type name; use lower-case letters, digits, `_` and `-`, starting with a letter (at most 64 characters)"),
        ));
    }
    let description = normalise_text(raw.description.get_ref());
    if description.is_empty() {
        return Err(parser.bad_value(
            raw.description.span().start,
            "description",
            "must not be empty; say in a line what the analysis is for".to_string(),
        ));
    }

    let years_field = |field: &'static str, value: &Spanned<i64>| -> Result<u32, WorkflowError> {
        match u32::try_from(*value.get_ref()) {
            Ok(years @ 1..=100) => Ok(years),
            _ => Err(parser.bad_value(
                value.span().start,
                field,
                format!("{} is not a number of years from 1 to 100", value.get_ref()),
            )),
        }
    };
    let min_years = match &raw.min_years {
        Some(value) => years_field("min_years", value)?,
        None => 1,
    };
    let max_years = match &raw.max_years {
        Some(value) => Some(years_field("max_years", value)?),
        None => None,
    };
    if let (Some(max), Some(max_span)) = (max_years, raw.max_years.as_ref()) {
        if min_years > max {
            return Err(parser.error_at(
                Some(max_span.span().start),
                Problem::YearRange {
                    min: min_years,
                    max,
                },
            ));
        }
    }

    let kind = raw.kind.as_ref().map_or(Kind::Llm, |k| *k.get_ref());
    let kind_offset = raw.kind.as_ref().map_or(0, |k| k.span().start);
    if kind == Kind::Xbrl && matches!(origin, Origin::File(_)) {
        return Err(parser.bad_value(
            kind_offset,
            "kind",
            "\"xbrl\" is reserved for the built-in `financials` type, whose result is computed from the filing's XBRL facts; custom types use kind = \"llm\"".to_string(),
        ));
    }
    if kind == Kind::Changes && matches!(origin, Origin::File(_)) {
        return Err(parser.bad_value(
            kind_offset,
            "kind",
            "\"changes\" is reserved for the built-in `changes` type, whose result is computed by comparing the filing with the previous year's; custom types use kind = \"llm\"".to_string(),
        ));
    }

    let Some(raw_year) = raw.year.as_ref() else {
        return Err(parser.error_at(
            Some(0),
            Problem::Steps {
                message: "missing [year] step: every type needs a per-year step with a prompt and a schema".to_string(),
            },
        ));
    };
    let steps_error =
        |offset: usize, message: String| parser.error_at(Some(offset), Problem::Steps { message });

    let year = match kind {
        Kind::Xbrl | Kind::Changes => {
            let step = raw_year.get_ref();
            let name = kind.as_str();
            if let Some(field) = step.prompt.as_ref().or(step.system.as_ref()) {
                return Err(steps_error(
                    field.span().start,
                    format!("a kind = \"{name}\" type asks no model: its [year] step has a schema and no prompt or system"),
                ));
            }
            if let Some(aggregate) = &raw.aggregate {
                return Err(steps_error(
                    aggregate.span().start,
                    format!("a kind = \"{name}\" type has no [aggregate] step"),
                ));
            }
            Step {
                system: None,
                prompt: String::new(),
                schema: parse_schema(&parser, raw_year, "year", siblings)?,
            }
        }
        Kind::Llm => parse_step(
            &parser,
            raw_year,
            "year",
            YEAR_PLACEHOLDERS,
            &Required {
                name: "document",
                why: "it is where the filing text goes",
            },
            siblings,
        )?,
    };

    let aggregate = match &raw.aggregate {
        Some(raw_aggregate) => {
            if min_years < 2 {
                return Err(parser.error_at(
                    Some(raw.min_years.as_ref().map_or(raw_aggregate.span().start, |m| m.span().start)),
                    Problem::Steps {
                        message: format!(
                            "a type with an [aggregate] step combines several years: set min_years to at least 2 (it is {min_years})"
                        ),
                    },
                ));
            }
            Some(parse_step(
                &parser,
                raw_aggregate,
                "aggregate",
                AGGREGATE_PLACEHOLDERS,
                &Required {
                    name: "yearly_results",
                    why: "it is where the stored yearly results go",
                },
                siblings,
            )?)
        }
        None if min_years > 1 => {
            return Err(parser.error_at(
                raw.min_years.as_ref().map(|m| m.span().start),
                Problem::Steps {
                    message: format!(
                        "min_years = {min_years} makes this a multi-year type, which needs an [aggregate] step (prompt with {{yearly_results}} and a schema); add one or set min_years = 1"
                    ),
                },
            ));
        }
        None => None,
    };

    Ok(finish(
        name,
        description,
        min_years,
        max_years,
        kind,
        year,
        aggregate,
        origin,
    ))
}

/// The source line holding `span`, when the span lies within one line (a value, a key), so
/// that a message such as "invalid type: string, expected i64" shows which field it is about.
fn single_line_context(source: &str, span: std::ops::Range<usize>) -> Option<String> {
    let start = source.get(..span.start)?.rfind('\n').map_or(0, |i| i + 1);
    let end = source
        .get(span.start..)?
        .find('\n')
        .map_or(source.len(), |i| span.start + i);
    if span.end > end {
        return None;
    }
    let line = source[start..end].trim();
    if line.is_empty() {
        return None;
    }
    let shown: String = line.chars().take(80).collect();
    Some(if shown.len() < line.len() {
        format!("{shown}...")
    } else {
        shown
    })
}

/// Line ends to `\n`, trailing blanks of each line and of the whole text removed: edits that
/// change nothing a model sees keep the version.
fn normalise_text(text: &str) -> String {
    text.replace("\r\n", "\n")
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

fn parse_step(
    parser: &Parser<'_>,
    raw: &Spanned<RawStep>,
    step: &'static str,
    allowed: &'static [&'static str],
    required: &Required,
    siblings: &dyn Fn(&'static str, &str) -> SiblingResult,
) -> Result<Step, WorkflowError> {
    let fields = raw.get_ref();
    let Some(raw_prompt) = &fields.prompt else {
        return Err(parser.error_at(
            Some(raw.span().start),
            Problem::Steps {
                message: format!("[{step}] has no `prompt`; add a prompt template"),
            },
        ));
    };
    let prompt = normalise_text(raw_prompt.get_ref());
    if let Err(problem) = template::check(&prompt, step, allowed, required) {
        let offset = parser.offset_within(&raw_prompt.span(), problem.needle.as_deref());
        return Err(parser.error_at(Some(offset), problem.problem));
    }

    let system = match &fields.system {
        Some(raw_system) => {
            let system = normalise_text(raw_system.get_ref());
            let misplaced = YEAR_PLACEHOLDERS
                .iter()
                .chain(AGGREGATE_PLACEHOLDERS)
                .map(|name| format!("{{{name}}}"))
                .find(|placeholder| system.contains(placeholder.as_str()));
            if let Some(placeholder) = misplaced {
                let offset = parser.offset_within(&raw_system.span(), Some(&placeholder));
                return Err(parser.bad_value(
                    offset,
                    if step == "year" { "[year].system" } else { "[aggregate].system" },
                    format!("the system instruction is sent exactly as written and takes no placeholders; move {placeholder} to the prompt"),
                ));
            }
            (!system.is_empty()).then_some(system)
        }
        None => None,
    };

    Ok(Step {
        system,
        prompt,
        schema: parse_schema(parser, raw, step, siblings)?,
    })
}

fn parse_schema(
    parser: &Parser<'_>,
    raw: &Spanned<RawStep>,
    step: &'static str,
    siblings: &dyn Fn(&'static str, &str) -> SiblingResult,
) -> Result<Value, WorkflowError> {
    let fields = raw.get_ref();
    match (&fields.schema, &fields.schema_file) {
        (Some(_), Some(file)) => Err(parser.error_at(
            Some(file.span().start),
            Problem::Steps {
                message: format!("[{step}] has both `schema` and `schema_file`; keep one"),
            },
        )),
        (None, None) => Err(parser.error_at(
            Some(raw.span().start),
            Problem::Steps {
                message: format!(
                    "[{step}] has no schema; add `schema` (a JSON string or a TOML table) or `schema_file = \"name.json\"`"
                ),
            },
        )),
        (Some(inline), None) => {
            let span = inline.span();
            match inline.get_ref() {
                schema::Ordered::String(json) => {
                    let raw_text = parser.source.get(span.clone()).unwrap_or("");
                    // Multi-line strings drop the newline right after the opening quotes.
                    let first_line = parser.line_of(span.start)
                        + usize::from(
                            raw_text.starts_with("'''\n")
                                || raw_text.starts_with("\"\"\"\n")
                                || raw_text.starts_with("'''\r\n")
                                || raw_text.starts_with("\"\"\"\r\n"),
                        );
                    let location = Location {
                        file: parser.source_name.clone(),
                        text: json,
                        first_line,
                    };
                    checked_schema_from_json(&location, step)
                }
                table @ schema::Ordered::Object(_) => {
                    let value = table.to_schema_value();
                    check_schema(&value, step)
                        .map_err(|(problem, _)| parser.error_at(Some(span.start), problem))?;
                    Ok(value)
                }
                _ => Err(parser.error_at(
                    Some(span.start),
                    Problem::SchemaSyntax {
                        step,
                        message: "`schema` must be a JSON string or a TOML table".to_string(),
                    },
                )),
            }
        }
        (None, Some(file)) => {
            let (text, file_name) = siblings(step, file.get_ref())
                .map_err(|problem| parser.error_at(Some(file.span().start), problem))?;
            let location = Location {
                file: file_name,
                text: &text,
                first_line: 1,
            };
            checked_schema_from_json(&location, step)
        }
    }
}

/// Where a JSON schema text sits, for line numbers.
struct Location<'a> {
    file: SourceName,
    text: &'a str,
    /// Line of the file on which the JSON text's first line is.
    first_line: usize,
}

impl Location<'_> {
    fn error(&self, json_line: Option<usize>, problem: Problem) -> WorkflowError {
        WorkflowError::Invalid {
            file: self.file.clone(),
            line: Some(self.first_line + json_line.map_or(0, |line| line.saturating_sub(1))),
            problem,
        }
    }
}

fn checked_schema_from_json(
    location: &Location<'_>,
    step: &'static str,
) -> Result<Value, WorkflowError> {
    let ordered: schema::Ordered = serde_json::from_str(location.text).map_err(|error| {
        location.error(
            Some(error.line()),
            Problem::SchemaSyntax {
                step,
                message: error.to_string(),
            },
        )
    })?;
    let value = ordered.to_schema_value();
    check_schema(&value, step).map_err(|(problem, found)| {
        let json_line = found.and_then(|(pointer, keyword)| {
            locate_in_json(location.text, &pointer, keyword.as_deref())
        });
        location.error(json_line, problem)
    })?;
    Ok(value)
}

/// A schema problem and, when known, the pointer and keyword to locate it.
type SchemaFailure = (Problem, Option<(String, Option<String>)>);

fn check_schema(value: &Value, step: &'static str) -> Result<(), SchemaFailure> {
    if let Err(unsupported) = schema::check_supported(value) {
        return Err((
            Problem::SchemaUnsupported {
                step,
                pointer: unsupported.pointer.clone(),
                message: unsupported.message,
            },
            Some((unsupported.pointer, unsupported.keyword)),
        ));
    }
    schema::compile(value)
        .map(drop)
        .map_err(|message| (Problem::SchemaInvalid { step, message }, None))
}

/// Best-effort line (1-based, within `text`) of the node at `pointer` and its `keyword`: each
/// path segment is looked for as a quoted key after the previous one.
fn locate_in_json(text: &str, pointer: &str, keyword: Option<&str>) -> Option<usize> {
    let mut position = 0;
    let segments = pointer
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| segment.replace("~1", "/").replace("~0", "~"));
    for segment in segments.chain(keyword.map(str::to_string)) {
        let needle = format!("\"{segment}\"");
        match text.get(position..).and_then(|rest| rest.find(&needle)) {
            Some(found) => position += found + needle.len(),
            None => break,
        }
    }
    (position > 0).then(|| text[..position].matches('\n').count() + 1)
}

#[derive(Serialize)]
struct CanonicalFile<'a> {
    name: &'a str,
    description: &'a str,
    min_years: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_years: Option<u32>,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    year: Option<CanonicalStep<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aggregate: Option<CanonicalStep<'a>>,
}

#[derive(Serialize)]
struct CanonicalStep<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt: Option<&'a str>,
    schema: String,
}

fn canonical_step(step: &Step) -> CanonicalStep<'_> {
    CanonicalStep {
        system: step.system.as_deref(),
        prompt: (!step.prompt.is_empty()).then_some(step.prompt.as_str()),
        schema: serde_json::to_string_pretty(&schema::sorted(&step.schema))
            .unwrap_or_else(|_| step.schema.to_string()),
    }
}

fn hashed_step(step: &Step) -> Value {
    serde_json::json!({
        "system": step.system,
        "prompt": step.prompt,
        "schema": step.schema,
    })
}

#[allow(clippy::too_many_arguments)]
fn finish(
    name: String,
    description: String,
    min_years: u32,
    max_years: Option<u32>,
    kind: Kind,
    year: Step,
    aggregate: Option<Step>,
    origin: Origin,
) -> Workflow {
    // What a model is asked and how its reply is checked; the name and description are
    // labels that never reach the model, so renaming a copy keeps its version.
    let hashed = serde_json::json!({
        "format": VERSION_FORMAT,
        "kind": kind.as_str(),
        "min_years": min_years,
        "max_years": max_years,
        "year": hashed_step(&year),
        "aggregate": aggregate.as_ref().map(hashed_step),
    });
    let bytes = serde_json::to_vec(&schema::sorted(&hashed)).unwrap_or_default();
    let version = hex::encode(Sha256::digest(&bytes));

    let canonical_file = CanonicalFile {
        name: &name,
        description: &description,
        min_years,
        max_years,
        kind: kind.as_str(),
        year: Some(canonical_step(&year)),
        aggregate: aggregate.as_ref().map(canonical_step),
    };
    let canonical = toml::to_string(&canonical_file).unwrap_or_default();

    Workflow {
        name,
        description,
        min_years,
        max_years,
        kind,
        year: Some(year),
        aggregate,
        version,
        origin,
        canonical,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_text_drops_trailing_blanks_and_crlf() {
        assert_eq!(normalise_text("\n a  \r\nb\t\n\n"), "a\nb");
    }

    #[test]
    fn locate_in_json_follows_the_pointer() {
        let text = "{\n \"type\": \"object\",\n \"properties\": {\n  \"a\": {\n   \"type\": \"string\",\n   \"pattern\": \"x\"\n  }\n }\n}";
        assert_eq!(
            locate_in_json(text, "/properties/a", Some("pattern")),
            Some(6)
        );
        assert_eq!(locate_in_json(text, "/", Some("nothing")), None);
    }

    #[test]
    fn stable_prefix_stops_at_the_first_placeholder() {
        let step = Step {
            system: None,
            prompt: "Read this.\nCompany: {ticker}\n{document}".to_string(),
            schema: Value::Null,
        };
        assert_eq!(step.stable_prefix(), "Read this.\nCompany: ");
    }
}
