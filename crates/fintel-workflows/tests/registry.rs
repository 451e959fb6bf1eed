//! The registry: custom directories, overrides, reserved names, duplicates, look-ups.

use std::path::{Path, PathBuf};

use fintel_workflows::{Origin, Registry, WorkflowError};

fn custom(name: &str, prompt_word: &str) -> String {
    format!(
        r#"name = "{name}"
description = "custom {name}"

[year]
prompt = "{prompt_word} {{ticker}} {{document}}"
schema = '{{"type": "object", "required": ["a"], "properties": {{"a": {{"type": "string"}}}}}}'
"#
    )
}

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn custom_types_are_added_and_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "mine.toml", &custom("mine", "Judge"));
    write(dir.path(), "notes.txt", "not a workflow");
    write(dir.path(), ".mine.toml", "broken = ");
    std::fs::create_dir(dir.path().join("sub.toml")).unwrap();
    let registry = Registry::load(&[dir.path().to_path_buf()]).unwrap();
    let mine = registry.get("mine").unwrap();
    assert_eq!(mine.origin, Origin::File(path));
    assert_eq!(registry.list().len(), Registry::builtin_names().len() + 1);
    assert!(registry.warnings().is_empty());
}

#[test]
fn missing_directory_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::load(&[dir.path().join("absent")]).unwrap();
    assert_eq!(registry.list().len(), Registry::builtin_names().len());
}

#[test]
fn a_file_given_as_directory_leaves_the_builtins_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "x.toml", "");
    let registry = Registry::load(&[file]).unwrap();
    assert_eq!(registry.list().len(), Registry::builtin_names().len());
    let warnings = registry.unusable_files();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("cannot read the workflows directory"));
}

#[test]
fn an_empty_file_makes_only_itself_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "copy.toml", "");
    write(dir.path(), "mine.toml", &custom("mine", "Judge"));
    let registry = Registry::load(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(registry.get("mine").unwrap().name, "mine");
    assert_eq!(registry.get("fundamental").unwrap().name, "fundamental");
    let warnings = registry.unusable_files();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(&empty.display().to_string()));
    assert!(warnings[0].contains("the file is empty"), "{}", warnings[0]);
    let error = registry.get("copy").unwrap_err();
    assert!(
        matches!(error, WorkflowError::UnusableType { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("the file is empty"), "{error}");
}

#[test]
fn a_custom_file_replaces_a_builtin_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "my-buffett.toml", &custom("buffett", "Judge"));
    let builtin_version = Registry::load(&[])
        .unwrap()
        .get("buffett")
        .unwrap()
        .version
        .clone();
    let registry = Registry::load(&[dir.path().to_path_buf()]).unwrap();
    let buffett = registry.get("buffett").unwrap();
    assert_eq!(buffett.origin, Origin::File(path.clone()));
    assert_ne!(buffett.version, builtin_version);
    assert_eq!(registry.warnings().len(), 1);
    assert!(registry.warnings()[0].contains("replaces the built-in analysis type `buffett`"));
    assert!(registry.warnings()[0].contains(&path.display().to_string()));
}

#[test]
fn financials_and_the_alias_cannot_be_replaced() {
    for name in ["financials", "changes", "multi_analysis"] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "x.toml", &custom(name, "Judge"));
        let registry = Registry::load(&[dir.path().to_path_buf()]).unwrap();
        let builtin = registry.get(name).unwrap();
        assert_eq!(builtin.origin, Origin::Builtin);
        let warnings = registry.unusable_files();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains(&format!("the name `{name}` is reserved")),
            "{warnings:?}"
        );
    }
}

#[test]
fn two_custom_files_with_one_name_make_that_name_unusable_naming_both() {
    let first_dir = tempfile::tempdir().unwrap();
    let second_dir = tempfile::tempdir().unwrap();
    let first = write(first_dir.path(), "a.toml", &custom("mine", "Judge"));
    let second = write(second_dir.path(), "b.toml", &custom("mine", "Assess"));
    write(second_dir.path(), "c.toml", &custom("other", "Assess"));
    let registry = Registry::load(&[
        first_dir.path().to_path_buf(),
        second_dir.path().to_path_buf(),
    ])
    .unwrap();
    assert_eq!(registry.get("other").unwrap().name, "other");
    let error = registry.get("mine").unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, WorkflowError::UnusableType { .. }),
        "{message}"
    );
    assert!(message.contains(&first.display().to_string()), "{message}");
    assert!(message.contains(&second.display().to_string()), "{message}");
    assert!(message.contains("`mine`"));
}

#[test]
fn every_bad_file_is_reported_and_the_good_ones_load() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.toml", "name = ");
    write(dir.path(), "b.toml", &custom("b", "{tikcer}"));
    write(dir.path(), "c.toml", &custom("c", "Fine"));
    let registry = Registry::load(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(registry.get("c").unwrap().name, "c");
    let warnings = registry.unusable_files();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("a.toml line 1"), "{warnings:?}");
    assert!(
        warnings[1].contains("b.toml line 5: unknown placeholder {tikcer}"),
        "{warnings:?}"
    );
    let error = registry.get("b").unwrap_err().to_string();
    assert!(error.contains("unknown placeholder {tikcer}"), "{error}");
}

#[test]
fn lookup_is_case_insensitive_with_the_multi_analysis_alias() {
    let registry = Registry::load(&[]).unwrap();
    assert_eq!(registry.get("multi_analysis").unwrap().name, "multi");
    assert_eq!(registry.get(" Buffett ").unwrap().name, "buffett");
}

#[test]
fn unknown_type_lists_the_available_names() {
    let registry = Registry::load(&[]).unwrap();
    let error = registry.get("bufet").unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("unknown analysis type `bufet`; available: "),
        "{message}"
    );
    for name in Registry::builtin_names() {
        assert!(message.contains(name), "{message}");
    }
    assert!(message.contains("multi_analysis (= multi)"));
}

#[test]
fn year_counts_are_checked_against_the_type() {
    let registry = Registry::load(&[]).unwrap();
    let excellent = registry.get("excellent").unwrap();
    excellent.check_years(3).unwrap();
    excellent.check_years(7).unwrap();
    let error = excellent.check_years(2).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the analysis type `excellent` needs at least 3 fiscal years, but 2 were asked for; change --years or --fiscal-years"
    );
    let buffett = registry.get("buffett").unwrap();
    buffett.check_years(1).unwrap();
    assert!(buffett.check_years(0).is_err());

    let dir = tempfile::tempdir().unwrap();
    let capped = custom("capped", "Judge").replace("description", "max_years = 2\ndescription");
    write(dir.path(), "capped.toml", &capped);
    let registry = Registry::load(&[dir.path().to_path_buf()]).unwrap();
    let error = registry.get("capped").unwrap().check_years(3).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("needs 1 to 2 fiscal years, but 3"),
        "{error}"
    );
}

#[test]
fn the_example_in_the_format_documentation_loads() {
    let readme = include_str!("../builtin/README.md");
    let start = readme.find("```toml\n").expect("an example") + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "moat_check.toml", &readme[start..end]);
    let registry = Registry::load(&[dir.path().to_path_buf()]).unwrap();
    let example = registry.get("moat_check").unwrap();
    let schema = &example.year.as_ref().unwrap().schema;
    assert_eq!(
        schema["propertyOrdering"],
        serde_json::json!(["evidence", "moat"])
    );
}
