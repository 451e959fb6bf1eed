//! `fintel workflows`: a built-in shown into the workflows directory loads as a custom type,
//! and a custom file that cannot be used makes only itself unusable.

use std::path::Path;
use std::process::{Command, Output};

mod support;

use support::*;

fn fintel(home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("FINTEL_HOME", home)
        .env_remove("GEMINI_API_KEY")
        .env_remove("GOOGLE_API_KEY")
        .output()
        .unwrap()
}

fn listed(home: &Path) -> Vec<serde_json::Value> {
    let out = fintel(home, &["workflows", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap()
}

#[test]
fn every_builtin_shown_into_the_workflows_directory_loads_as_a_custom_type() {
    let builtins: Vec<String> = listed(tempfile::tempdir().unwrap().path())
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_string())
        .collect();
    assert!(builtins.len() >= 10, "{builtins:?}");
    for name in &builtins {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("workflows");
        std::fs::create_dir_all(&dir).unwrap();
        // As `fintel workflows show NAME > $FINTEL_HOME/workflows/copy.toml` runs: the shell
        // has created the file, empty, before fintel starts.
        let copy = dir.join("copy.toml");
        std::fs::write(&copy, "").unwrap();
        let out = fintel(home.path(), &["workflows", "show", name]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        assert!(!out.stdout.is_empty(), "{name}: nothing shown");
        assert!(
            !text(&out.stderr).contains("warning"),
            "{name}: {}",
            text(&out.stderr)
        );
        std::fs::write(&copy, &out.stdout).unwrap();

        let types = listed(home.path());
        if matches!(name.as_str(), "financials" | "changes") {
            // Computed without a model, these kinds are the built-ins' own: the copy is named
            // as skipped, and only it.
            let out = fintel(home.path(), &["workflows"]);
            let err = text(&out.stderr);
            assert!(
                err.contains("copy.toml") && err.contains("is reserved for the built-in"),
                "{name}: {err}"
            );
            assert!(types.iter().any(|w| w["name"] == name.as_str()));
            continue;
        }
        let loaded = types
            .iter()
            .find(|w| w["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} not listed: {types:?}"));
        assert_eq!(
            loaded["origin"],
            copy.display().to_string(),
            "{name}: {types:?}"
        );
        // The built-in that may not be replaced is still there beside its copy.
        assert!(types.iter().any(|w| w["name"] == name.as_str()));
    }
}

#[test]
fn an_empty_or_broken_workflow_file_makes_only_itself_unusable() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("workflows");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("empty.toml"), "").unwrap();
    std::fs::write(
        dir.join("mine.toml"),
        "name = \"mine\"\ndescription = \"x\"\n[year]\nprompt = \"{tikcer} {document}\"\nschema = '{\"type\":\"object\"}'\n",
    )
    .unwrap();

    // Every other type is listed; each bad file is named with its problem.
    let out = fintel(home.path(), &["workflows"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("fundamental"));
    let err = text(&out.stderr);
    assert!(
        err.contains("empty.toml") && err.contains("the file is empty"),
        "{err}"
    );
    assert!(err.contains("mine.toml") && err.contains("tikcer"), "{err}");

    // Asking for the broken type is a usage error with its problem.
    let out = fintel(home.path(), &["workflows", "show", "mine"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("`mine` cannot be used") && err.contains("tikcer"),
        "{err}"
    );

    // A command about another type works, and says which file is skipped.
    let out = fintel(home.path(), &["workflows", "show", "buffett"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
