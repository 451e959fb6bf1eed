//! The set of analysis types a run can use: the built-ins plus the user's workflow files.
//!
//! Rules a caller must know:
//! - Every `*.toml` file directly inside a custom directory is loaded (not sub-directories;
//!   files whose name starts with `.` are skipped, so editor backups do not count). A directory
//!   that does not exist is treated as empty.
//! - A file that cannot be used (unreadable, empty, invalid, a reserved or twice-defined name)
//!   makes only itself unusable: every other type loads, the file is named with its problem in
//!   [`Registry::warnings`], and asking for the type it defines gives that problem. So an empty
//!   file that `fintel workflows show NAME > FILE` is still writing breaks nothing.
//! - A custom type with the name of a built-in **replaces** it (with a warning), so a user can
//!   tune a built-in prompt by copying it (`fintel workflows show NAME`) and editing the copy.
//!   Its version differs, so its results never mix with the built-in's. Two names cannot be
//!   replaced: `financials` (computed from XBRL, not a prompt), `changes` (computed by comparing
//!   consecutive filings) and the alias `multi_analysis`.
//! - Two custom files with the same name are an error naming both files.
//! - Names are looked up case-insensitively; `multi_analysis` is an alias of `multi`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Problem, SourceName, WorkflowError};
use crate::workflow::{self, Origin, SiblingResult, Workflow};

/// A built-in file: its name in `builtin/` and its text.
struct BuiltinFile {
    file: &'static str,
    text: &'static str,
}

macro_rules! builtin {
    ($file:literal) => {
        BuiltinFile {
            file: $file,
            text: include_str!(concat!("../builtin/", $file)),
        }
    };
}

/// The built-in workflow files (each `NAME.toml` defines the type `NAME`), and any schema
/// files they name.
const BUILTIN_FILES: &[BuiltinFile] = &[
    builtin!("fundamental.toml"),
    builtin!("buffett.toml"),
    builtin!("taleb.toml"),
    builtin!("contrarian.toml"),
    builtin!("multi.toml"),
    builtin!("financials.toml"),
    builtin!("changes.toml"),
    builtin!("excellent.toml"),
    builtin!("objective.toml"),
    builtin!("scanner.toml"),
    builtin!("checklist.toml"),
];

/// Names accepted for compatibility with earlier command lines, and what they stand for.
const ALIASES: &[(&str, &str)] = &[("multi_analysis", "multi")];

/// Built-in types that a custom file may not replace, and why.
const IRREPLACEABLE: &[(&str, &str)] = &[
    (
        "financials",
        "it is computed from the filing's XBRL facts, not from a prompt",
    ),
    (
        "changes",
        "it is computed by comparing the filing with the previous year's, not from a prompt",
    ),
];

/// The analysis types available to a run.
#[derive(Debug, Clone)]
pub struct Registry {
    workflows: BTreeMap<String, Workflow>,
    warnings: Vec<String>,
    unusable: Vec<Unusable>,
}

/// A custom file (or directory) that could not be used, and the type names it stands for: its
/// declared name where it has one, and its file stem.
#[derive(Debug, Clone)]
struct Unusable {
    names: Vec<String>,
    /// The problem, as the user reads it (the file is named in it).
    error: String,
}

impl Unusable {
    fn of_file(path: &Path, declared: Option<&str>, error: WorkflowError) -> Unusable {
        let mut names: Vec<String> = declared.map(str::to_string).into_iter().collect();
        if let Some(stem) = path.file_stem() {
            let stem = stem.to_string_lossy().trim().to_ascii_lowercase();
            if !names.contains(&stem) {
                names.push(stem);
            }
        }
        Unusable {
            names,
            error: error.to_string(),
        }
    }
}

impl Registry {
    /// The built-ins plus every `*.toml` file in `custom_dirs` (see the module documentation
    /// for the rules).
    pub fn load(custom_dirs: &[PathBuf]) -> Result<Registry, WorkflowError> {
        let mut workflows = BTreeMap::new();
        for builtin in builtin_workflows()? {
            workflows.insert(builtin.name.clone(), builtin);
        }

        let mut unusable = Vec::new();
        let mut custom: BTreeMap<String, Workflow> = BTreeMap::new();
        let mut twice: BTreeMap<String, WorkflowError> = BTreeMap::new();
        for dir in custom_dirs {
            let files = match workflow_files(dir) {
                Ok(files) => files,
                Err(error) => {
                    unusable.push(Unusable {
                        names: Vec::new(),
                        error: error.to_string(),
                    });
                    continue;
                }
            };
            for path in files {
                let loaded = match Workflow::from_file(&path) {
                    Ok(loaded) => loaded,
                    Err(error) => {
                        unusable.push(Unusable::of_file(&path, None, error));
                        continue;
                    }
                };
                if let Some(why) = reserved_reason(&loaded.name) {
                    let error = WorkflowError::ReservedName {
                        name: loaded.name.clone(),
                        file: path.clone(),
                        why,
                    };
                    unusable.push(Unusable::of_file(&path, None, error));
                    continue;
                }
                if let Some(previous) = custom.get(&loaded.name) {
                    // Neither file wins: which one a run used would depend on file names.
                    twice.insert(
                        loaded.name.clone(),
                        WorkflowError::DuplicateName {
                            name: loaded.name.clone(),
                            first: origin_path(previous),
                            second: path,
                        },
                    );
                    continue;
                }
                custom.insert(loaded.name.clone(), loaded);
            }
        }
        for (name, error) in twice {
            custom.remove(&name);
            unusable.push(Unusable {
                names: vec![name],
                error: error.to_string(),
            });
        }

        let mut warnings = Vec::new();
        for file in &unusable {
            let warning = format!(
                "{}\n  (only this is skipped until it is fixed; every other analysis type works)",
                file.error
            );
            tracing::warn!("{warning}");
            warnings.push(warning);
        }
        for (name, workflow) in custom {
            if workflows.contains_key(&name) {
                let warning = format!(
                    "{} replaces the built-in analysis type `{name}`",
                    origin_path(&workflow).display()
                );
                tracing::warn!("{warning}");
                warnings.push(warning);
            }
            workflows.insert(name, workflow);
        }
        Ok(Registry {
            workflows,
            warnings,
            unusable,
        })
    }

    /// The type called `name` (case-insensitive; aliases resolved).
    pub fn get(&self, name: &str) -> Result<&Workflow, WorkflowError> {
        let wanted = resolve_alias(name);
        if let Some(workflow) = self.workflows.get(&wanted) {
            return Ok(workflow);
        }
        if let Some(file) = self.unusable.iter().find(|f| f.names.contains(&wanted)) {
            return Err(WorkflowError::UnusableType {
                name: wanted,
                detail: file.error.clone(),
            });
        }
        self.workflows
            .get(&wanted)
            .ok_or_else(|| WorkflowError::UnknownType {
                name: name.to_string(),
                available: self.available_names(),
            })
    }

    /// Every type, sorted by name.
    pub fn list(&self) -> Vec<&Workflow> {
        self.workflows.values().collect()
    }

    /// Warnings of loading (custom files replacing built-ins, files that cannot be used), also
    /// logged with `tracing`.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The warnings about custom files that cannot be used, which every command should show:
    /// the user's type is missing from it until the file is fixed.
    pub fn unusable_files(&self) -> Vec<String> {
        self.unusable.iter().map(|f| f.error.clone()).collect()
    }

    /// The text of a built-in workflow file, for `fintel workflows show NAME`: a complete file
    /// (schemas inline) that a user can save in the workflows directory and edit.
    pub fn builtin_source(name: &str) -> Option<&'static str> {
        let file = format!("{}.toml", resolve_alias(name));
        BUILTIN_FILES
            .iter()
            .find(|builtin| builtin.file == file)
            .map(|builtin| builtin.text)
    }

    /// A built-in's file as `fintel workflows show NAME` prints it: its text, which loads as a
    /// custom type of the same name (replacing the built-in), or, for a type that may not be
    /// replaced, under the name `my_NAME`, said in a comment at the top.
    pub fn builtin_copy(name: &str) -> Option<String> {
        let name = resolve_alias(name);
        let text = Self::builtin_source(&name)?;
        if reserved_reason(&name).is_none() {
            return Some(text.to_string());
        }
        let declared = format!("name = \"{name}\"");
        let renamed = format!(
            "# A copy of `{name}`, which cannot be replaced: it loads as the type `my_{name}`.\n"
        );
        let mut copy = String::with_capacity(text.len() + renamed.len());
        copy.push_str(&renamed);
        for line in text.split_inclusive('\n') {
            if line.trim_end() == declared {
                copy.push_str(&format!("name = \"my_{name}\"\n"));
            } else {
                copy.push_str(line);
            }
        }
        Some(copy)
    }

    /// Names of the built-in types, in the order they are documented.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN_FILES
            .iter()
            .filter_map(|builtin| builtin.file.strip_suffix(".toml"))
            .collect()
    }

    fn available_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.workflows.keys().cloned().collect();
        for (alias, target) in ALIASES {
            if self.workflows.contains_key(*target) {
                names.push(format!("{alias} (= {target})"));
            }
        }
        names
    }
}

fn resolve_alias(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, target)| (*target).to_string())
}

fn reserved_reason(name: &str) -> Option<&'static str> {
    if let Some((_, why)) = IRREPLACEABLE.iter().find(|(reserved, _)| *reserved == name) {
        return Some(why);
    }
    ALIASES
        .iter()
        .any(|(alias, _)| *alias == name)
        .then_some("it is an alias of a built-in type")
}

fn origin_path(workflow: &Workflow) -> PathBuf {
    match &workflow.origin {
        Origin::File(path) => path.clone(),
        Origin::Builtin | Origin::Pinned => PathBuf::from(&workflow.name),
    }
}

/// The `*.toml` files directly inside `dir`, sorted, or none if `dir` does not exist.
fn workflow_files(dir: &Path) -> Result<Vec<PathBuf>, WorkflowError> {
    let directory_error = |message: String| WorkflowError::Directory {
        dir: dir.to_path_buf(),
        message,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(directory_error(error.to_string())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| directory_error(error.to_string()))?;
        let path = entry.path();
        let visible = !entry.file_name().to_string_lossy().starts_with('.');
        let is_toml = path.extension().is_some_and(|ext| ext == "toml");
        if visible && is_toml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Parses every built-in file, through the same parser as custom files.
pub(crate) fn builtin_workflows() -> Result<Vec<Workflow>, WorkflowError> {
    BUILTIN_FILES
        .iter()
        .map(|builtin| {
            workflow::parse(
                builtin.text,
                Origin::Builtin,
                SourceName::Builtin(builtin.file),
                &builtin_sibling,
            )
        })
        .collect()
}

/// A built-in's `schema_file`, looked up among the embedded files.
fn builtin_sibling(step: &'static str, name: &str) -> SiblingResult {
    BUILTIN_FILES
        .iter()
        .find(|builtin| builtin.file == name)
        .map(|builtin| (builtin.text.to_string(), SourceName::Builtin(builtin.file)))
        .ok_or_else(|| Problem::SchemaFile {
            step,
            path: PathBuf::from(name),
            message: "no such built-in file".to_string(),
        })
}
