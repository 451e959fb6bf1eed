//! The README reads in one pass: no line or table row stands in it twice (the damage a merge
//! leaves), and every relative link or image it points to exists.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn readme() -> (String, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("README.md")).expect("README.md at the root");
    (text, root)
}

/// Lines of prose and tables, with their line numbers: code blocks (which may repeat a
/// configuration key on purpose), blank lines and table separators are left out.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut in_code = false;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let separator = trimmed.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '));
        if in_code || trimmed.is_empty() || separator {
            continue;
        }
        lines.push((i + 1, trimmed));
    }
    lines
}

/// What makes a line itself: a table row is its first cell (a row merged in twice rarely keeps
/// its description word for word), any other line the whole line.
fn identity(line: &str) -> &str {
    match line.strip_prefix('|') {
        Some(row) => row.split(" | ").next().unwrap_or(row).trim(),
        None => line,
    }
}

#[test]
fn no_line_or_table_row_is_there_twice() {
    let (text, _) = readme();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut repeated = Vec::new();
    for (number, line) in prose_lines(&text) {
        if let Some(first) = seen.insert(identity(line), number) {
            repeated.push(format!("line {number} repeats line {first}: {line}"));
        }
    }
    assert!(repeated.is_empty(), "{}", repeated.join("\n"));
}

#[test]
fn every_relative_link_and_image_exists() {
    let (text, root) = readme();
    let mut missing = Vec::new();
    for (number, line) in prose_lines(&text) {
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let Some(end) = after.find(')') else { break };
            let target = &after[..end];
            rest = &after[end..];
            let relative = !target.contains("://")
                && !target.starts_with('#')
                && !target.starts_with("mailto:");
            let path = target.split('#').next().unwrap_or(target);
            if relative && !path.is_empty() && !root.join(path).exists() {
                missing.push(format!("line {number}: {target}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "missing targets:\n{}",
        missing.join("\n")
    );
}
