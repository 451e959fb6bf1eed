//! `fintel changes OLD NEW`: two local filings compared by section, as a user checking one
//! company by hand runs it, with the bad inputs a user gives it.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_fintel");

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("FINTEL_HOME", dir.join("home"))
        .stdin(Stdio::null())
        .output()
        .expect("fintel runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON document on stdout")
}

const NEW_RISK: &str =
    "New tariffs on imported components could reduce the Company's gross margins materially.";

/// Apple's 10-K with one risk factor added at the start of its macroeconomic risks.
fn apple_with_a_new_risk(html: &str) -> String {
    let anchor = html
        .find("depend significantly on global and regional economic")
        .expect("the risk factor is in the fixture");
    let at = html[..anchor].rfind("<div").expect("its block");
    format!("{}<div>{NEW_RISK}</div>{}", &html[..at], &html[at..])
}

#[test]
fn a_risk_factor_added_shows_in_item_1a_only() {
    let Some(path) = fintel_fixtures::path("sec/10k/aapl-10k-2024-11-01.ixbrl.htm") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let html = std::fs::read_to_string(&path).expect("fixture");
    std::fs::write(dir.path().join("old.htm"), &html).expect("write");
    std::fs::write(dir.path().join("new.htm"), apple_with_a_new_risk(&html)).expect("write");

    let v = json(&run(
        dir.path(),
        &["changes", "old.htm", "new.htm", "--json"],
    ));
    assert_eq!(v["old_file"], "old.htm");
    assert_eq!(
        (v["form_old"].as_str(), v["form_new"].as_str()),
        (Some("10-K"), Some("10-K"))
    );
    let risk = &v["sections"]["1A"];
    assert_eq!(risk["added_count"], 1, "{risk}");
    assert_eq!(risk["removed_count"], 0);
    assert_eq!(risk["added"][0], NEW_RISK);
    for measure in ["cosine", "jaccard", "min_edit", "simple"] {
        let x = risk[measure].as_f64().expect(measure);
        assert!(x < 1.0 && x > 0.99, "{measure} {x}");
    }
    assert_eq!(v["whole"]["added_count"], 1);
    for id in ["1", "3", "7", "7A", "9A"] {
        assert_eq!(v["sections"][id]["cosine"], 1.0, "item {id}");
        assert_eq!(v["sections"][id]["added_count"], 0, "item {id}");
    }

    // The readable form: a row per item and the added sentence.
    let out = run(dir.path(), &["changes", "old.htm", "new.htm"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("Risk Factors"), "{shown}");
    assert!(shown.contains(&format!("+ {NEW_RISK}")), "{shown}");

    // One section, named as a user types it.
    let one = json(&run(
        dir.path(),
        &[
            "changes",
            "old.htm",
            "new.htm",
            "--section",
            "item 1a",
            "--json",
        ],
    ));
    assert_eq!(one["section"], "1A");
    assert_eq!(one["old"], "present");
    assert_eq!(one["added"][0], NEW_RISK);
    assert_eq!(one["cosine"], risk["cosine"]);
}

#[test]
fn rewrapped_plain_text_is_unchanged_and_an_absent_item_is_said() {
    let dir = tempfile::tempdir().expect("temp dir");
    let paragraph = "The Company faces intense competition in every market it serves, and \
        competitors may introduce products at lower prices. ";
    let body = paragraph.repeat(40);
    let wrap = |width: usize| -> String {
        let mut out = String::from("FORM 10-K\n\nItem 1. Business\n\n");
        let mut line = String::new();
        for word in body.split_whitespace() {
            if line.len() + word.len() + 1 > width {
                out.push_str(&line);
                out.push('\n');
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        out.push_str(&line);
        out.push_str("\n\nItem 2. Properties\n\nNone.\n");
        out
    };
    std::fs::write(dir.path().join("2023.txt"), wrap(60)).expect("write");
    std::fs::write(dir.path().join("2024.txt"), wrap(37)).expect("write");
    let v = json(&run(
        dir.path(),
        &["changes", "2023.txt", "2024.txt", "--json"],
    ));
    for measure in ["cosine", "jaccard", "min_edit", "simple"] {
        assert_eq!(v["whole"][measure], 1.0, "{measure}: {}", v["whole"]);
        assert_eq!(v["sections"]["1"][measure], 1.0, "{measure}");
    }
    assert_eq!(v["sections"]["1A"]["old"], "absent");
    assert!(v["sections"]["1A"].get("cosine").is_none());

    let out = run(
        dir.path(),
        &["changes", "2023.txt", "2024.txt", "--section", "1A"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("not compared: old not found, new not found"));
}

#[test]
fn bad_input_is_a_clear_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let filing = "FORM 10-K\nItem 1. Business\nWe make widgets.\n";
    std::fs::write(dir.path().join("ok.htm"), filing).expect("write");
    std::fs::write(dir.path().join("empty.htm"), "").expect("write");
    std::fs::write(
        dir.path().join("photo.png"),
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0",
    )
    .expect("write");
    let cases: &[(&[&str], &str)] = &[
        (
            &["changes", "missing.htm", "ok.htm"],
            "cannot read missing.htm",
        ),
        (
            &["changes", "ok.htm", "missing.htm"],
            "cannot read missing.htm",
        ),
        (
            &["changes", "ok.htm", "empty.htm"],
            "empty.htm is not an HTML or text filing: the file is empty",
        ),
        (
            &["changes", "photo.png", "ok.htm"],
            "photo.png is not an HTML or text filing: it has binary content",
        ),
        (
            &["changes", "ok.htm", "ok.htm", "--section", "99"],
            "valid items are 1, 1A",
        ),
        (
            &[
                "changes",
                "ok.htm",
                "ok.htm",
                "--section",
                "1A",
                "--form",
                "20-F",
            ],
            "unknown item \"1A\" for form 20-F",
        ),
        (
            &["changes", "ok.htm", "ok.htm", "--form", "S-1"],
            "unknown form type \"S-1\"",
        ),
        (&["changes", "ok.htm"], "NEW"),
    ];
    for (args, wanted) in cases {
        let out = run(dir.path(), args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
    }
}
