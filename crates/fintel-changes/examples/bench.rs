//! Benchmark: the `changes` measures for 1,000 companies x 7 fiscal years (7,000 pairs of
//! consecutive filings, every compared section and the whole text), on one core, with the
//! Python reference timed on a sample of the same pairs in the same run.
//!
//! The pairs are the shared fixtures (7 filings of measured sizes, 10-K and 20-F) each against
//! its edited next year (sentences added, removed, reworded, a section moved, all at once),
//! repeated to 7,000. Run: `cargo run --release -p fintel-changes --example bench`
//! (`FINTEL_FIXTURES` names the fixtures if they are not beside the workspace).

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use fintel_changes::{compare_filings, compare_texts, compared_sections, FilingDoc};
use support::{fixtures, EDITS};

/// `FINTEL_BENCH_COMPANIES` runs fewer, for a quick look.
fn companies() -> usize {
    std::env::var("FINTEL_BENCH_COMPANIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}
const YEARS: usize = 7;

/// CPU time of this thread so far, in seconds (Linux), so a loaded machine does not inflate the
/// figure; `None` elsewhere, when the wall clock is reported instead.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: f64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(nanos / 1e9)
}

/// Seconds spent in `f`: CPU time where it can be read, else wall time.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let (cpu, wall) = (cpu_seconds(), Instant::now());
    let value = f();
    let seconds = match (cpu, cpu_seconds()) {
        (Some(a), Some(b)) => b - a,
        _ => wall.elapsed().as_secs_f64(),
    };
    (value, seconds)
}

fn main() {
    if std::env::var_os("FINTEL_BENCH_DETAIL").is_some() {
        detail();
        return;
    }
    let Some(dir) = fintel_fixtures::dir() else {
        eprintln!("no fixtures: set FINTEL_FIXTURES");
        std::process::exit(2);
    };
    let started = Instant::now();
    let all = fixtures(&dir);
    let convert = started.elapsed().as_secs_f64();
    let html_bytes: u64 = all.iter().map(|f| f.text.len() as u64).sum();
    let originals: Vec<FilingDoc> = all.iter().map(|f| f.doc()).collect();
    let edited: Vec<Vec<FilingDoc>> = all
        .iter()
        .map(|f| EDITS.iter().map(|&e| f.edited(e)).collect())
        .collect();
    println!(
        "{} fixture filings, {:.1} MB of clean text; HTML to text took {:.2} s for them",
        all.len(),
        html_bytes as f64 / 1e6,
        convert
    );

    // The 7,000 pairs, each compared in full (whole text and every section).
    let companies = companies();
    let pairs = companies * YEARS;
    let (checksum, rust_all) = timed(|| {
        let mut checksum = 0.0;
        for i in 0..pairs {
            let f = i % all.len();
            let e = (i / all.len()) % EDITS.len();
            checksum += compare_filings(&originals[f], &edited[f][e]).whole.cosine;
        }
        checksum
    });
    println!(
        "fintel: {pairs} pairs ({companies} companies x {YEARS} years) in {rust_all:.1} s of CPU \
         ({:.2} ms a pair; checksum {checksum:.3})",
        rust_all * 1e3 / pairs as f64
    );

    // The sample for the reference: every distinct pair once (fixture x edit), all regions.
    let mut regions: Vec<(String, String)> = Vec::new();
    for (original, versions) in originals.iter().zip(&edited) {
        for new in versions {
            regions.push((original.text().to_string(), new.text().to_string()));
            if original.form() == new.form() {
                for &id in compared_sections(original.form()) {
                    if let (Some(a), Some(b)) = (original.section_body(id), new.section_body(id)) {
                        regions.push((a.to_string(), b.to_string()));
                    }
                }
            }
        }
    }
    let sample_pairs = originals.len() * EDITS.len();
    let ((), rust_sample) = timed(|| {
        for (a, b) in &regions {
            std::hint::black_box(compare_texts(a, b));
        }
    });
    let Some(python_sample) = python(&regions) else {
        println!("reference: not run (python3 with scikit-learn is needed)");
        return;
    };
    let python_all = python_sample * pairs as f64 / sample_pairs as f64;
    println!(
        "sample: {sample_pairs} distinct pairs ({} texts compared): fintel {rust_sample:.2} s, \
         reference {python_sample:.1} s (CPU time of the computing, start-up and file reading excluded)",
        regions.len()
    );
    println!(
        "reference scaled to {pairs} pairs: {python_all:.0} s ({:.1} h); fintel is {:.0}x faster \
         on the same sample",
        python_all / 3600.0,
        python_sample / rust_sample
    );
    println!(
        "under 3 minutes on one core: {}",
        if rust_all < 180.0 { "yes" } else { "NO" }
    );
}

/// Runs the reference on the texts; its compute time in seconds.
fn python(regions: &[(String, String)]) -> Option<f64> {
    let dir = tempfile::tempdir().ok()?;
    let mut listed = Vec::new();
    for (i, (a, b)) in regions.iter().enumerate() {
        let old = dir.path().join(format!("{i}-old.txt"));
        let new = dir.path().join(format!("{i}-new.txt"));
        std::fs::write(&old, a).ok()?;
        std::fs::write(&new, b).ok()?;
        listed.push(serde_json::json!({"old": old, "new": new}));
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let request = serde_json::json!({
        "stop_words": root.join("src/stop_words.txt"),
        "pairs": listed,
    });
    let mut child = Command::new("python3")
        .arg(root.join("reference/changes_reference.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()?
        .write_all(request.to_string().as_bytes())
        .ok()?;
    let output = child.wait_with_output().ok()?;
    if !output.status.success() {
        return None;
    }
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    answer["seconds"].as_f64()
}

/// CPU time of each distinct pair, to see where the time goes.
fn detail() {
    let Some(dir) = fintel_fixtures::dir() else {
        return;
    };
    for fixture in fixtures(&dir) {
        let original = fixture.doc();
        for edit in EDITS {
            let new = fixture.edited(edit);
            let (changes, seconds) = timed(|| compare_filings(&original, &new));
            println!(
                "{:<60} {edit:<12?} {:>8.1} ms  sentences {} -> {}",
                fixture.name,
                seconds * 1e3,
                changes.whole.sentences_old,
                changes.whole.sentences_new
            );
        }
    }
}
