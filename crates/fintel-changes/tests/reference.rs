//! Agreement with the reference implementation (`reference/changes_reference.py`: scikit-learn,
//! Python sets, difflib) to 1e-9, on the shared fixtures and on edited versions of them.
//! Skipped with a message when python3 with scikit-learn is missing, except under CI=true.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fintel_changes::{compare_texts, compared_sections, Comparison, FilingDoc};
use serde_json::{json, Value};
use support::{fixtures, EDITS};

const TOLERANCE: f64 = 1e-9;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/changes_reference.py")
}

/// Whether the reference can run here; panics under CI=true when it cannot.
fn reference_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import sklearn"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "CI=true but python3 with scikit-learn is not available: pip install scikit-learn"
            );
        }
        eprintln!(
            "skipped: the reference needs python3 with scikit-learn (pip install scikit-learn)"
        );
    }
    ok
}

/// Runs the reference on text pairs; returns its results in order.
fn run_reference(pairs: &[(String, String)]) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut listed = Vec::new();
    for (i, (old, new)) in pairs.iter().enumerate() {
        let old_path = dir.path().join(format!("{i}-old.txt"));
        let new_path = dir.path().join(format!("{i}-new.txt"));
        std::fs::write(&old_path, old).expect("write");
        std::fs::write(&new_path, new).expect("write");
        listed.push(json!({"old": old_path, "new": new_path}));
    }
    let stop_words = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/stop_words.txt");
    let request = json!({"stop_words": stop_words, "pairs": listed});
    let mut child = Command::new("python3")
        .arg(script())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(request.to_string().as_bytes())
            .expect("request written");
    }
    let output = child.wait_with_output().expect("python3 ends");
    assert!(
        output.status.success(),
        "reference failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).expect("reference JSON");
    answer["results"].as_array().expect("results").clone()
}

fn assert_agrees(name: &str, ours: &Comparison, reference: &Value) {
    let ours = serde_json::to_value(ours).expect("serialises");
    for field in ["cosine", "jaccard", "min_edit", "simple", "length_change"] {
        let (a, b) = (&ours[field], &reference[field]);
        match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => assert!(
                (x - y).abs() <= TOLERANCE,
                "{name}: {field} fintel {x} reference {y}"
            ),
            _ => assert_eq!(a, b, "{name}: {field}"),
        }
    }
    for field in [
        "words_old",
        "words_new",
        "sentences_old",
        "sentences_new",
        "added_count",
        "removed_count",
        "added",
        "removed",
    ] {
        assert_eq!(ours[field], reference[field], "{name}: {field}");
    }
}

/// The whole text and every compared section both filings hold, as text pairs.
fn regions(name: &str, old: &FilingDoc, new: &FilingDoc) -> Vec<(String, String, String)> {
    let mut out = vec![(
        format!("{name} whole"),
        old.text().to_string(),
        new.text().to_string(),
    )];
    if old.form() == new.form() {
        for &id in compared_sections(old.form()) {
            if let (Some(a), Some(b)) = (old.section_body(id), new.section_body(id)) {
                out.push((format!("{name} item {id}"), a.to_string(), b.to_string()));
            }
        }
    }
    out
}

fn check(cases: Vec<(String, String, String)>) {
    let pairs: Vec<(String, String)> = cases
        .iter()
        .map(|(_, a, b)| (a.clone(), b.clone()))
        .collect();
    let answers = run_reference(&pairs);
    assert_eq!(answers.len(), cases.len());
    for ((name, old, new), reference) in cases.iter().zip(&answers) {
        assert_agrees(name, &compare_texts(old, new), reference);
    }
}

#[test]
fn agrees_with_the_reference_on_fixtures_edited() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    if !reference_available() {
        return;
    }
    let mut cases = Vec::new();
    let mut sections_compared = 0;
    for fixture in fixtures(&dir) {
        let original = fixture.doc();
        cases.extend(regions(
            &format!("{} unchanged", fixture.name),
            &original,
            &original,
        ));
        for edit in EDITS {
            let edited = fixture.edited(edit);
            let found = regions(&format!("{} {edit:?}", fixture.name), &original, &edited);
            sections_compared += found.len() - 1;
            cases.extend(found);
        }
    }
    assert!(
        sections_compared >= 40,
        "only {sections_compared} sections compared"
    );
    check(cases);
}

#[test]
fn agrees_with_the_reference_across_companies() {
    let dir = fintel_fixtures::fixtures_or_skip!();
    if !reference_available() {
        return;
    }
    // No two fixtures are the same company's consecutive years, so different companies of
    // the same form stand in for a filing rewritten from scratch.
    let all = fixtures(&dir);
    let find = |prefix: &str| {
        all.iter()
            .find(|f| f.name.starts_with(prefix))
            .unwrap_or_else(|| panic!("fixture {prefix} missing"))
            .doc()
    };
    let mut cases = regions(
        "medicis vs commonwealth",
        &find("medicis"),
        &find("commonwealth"),
    );
    cases.extend(regions("aapl vs wfc", &find("aapl"), &find("wfc")));
    cases.extend(regions("aegon vs loncor", &find("aegon"), &find("loncor")));
    check(cases);
}

#[test]
fn agrees_with_the_reference_on_careless_text() {
    if !reference_available() {
        return;
    }
    let cases: Vec<(String, String, String)> = [
        ("empty", "", ""),
        ("one side empty", "", "Risk rose."),
        ("numbers only", "$ | 1,234 | 5,678", "2024 | 2023"),
        ("stop words only", "It is what it is.", "It is."),
        (
            "crlf",
            "One risk.\r\nTwo risks.\r\n",
            "One risk.\nTwo risks.\nThree.",
        ),
        ("terminators", "Hi.. there!? Yes . . no", "Hi.. there! Yes"),
        (
            "unicode",
            "Café résumé naïve — “quoted” risk.",
            "Cafe resume naive risk.",
        ),
        (
            "repeats",
            "A risk.\nA risk.\nA risk.\nOther.",
            "A risk.\nOther.\nA risk.",
        ),
    ]
    .iter()
    .map(|(n, a, b)| (n.to_string(), a.to_string(), b.to_string()))
    .collect();
    check(cases);
}
