//! HTML-to-text throughput on the fixture filings, against the browser route as a peer.
//!
//! Run: `cargo run --release -p fintel-filing --example bench_text [-- --runs N] [--no-peer]`.
//! Fixtures come from `FINTEL_FIXTURES` or the default shared folder. For every 10-K and 20-F
//! fixture it converts the document `runs` times (default 7) and prints the median MB/s per
//! document and overall, then the peak RSS. If `chromium` and `pdftotext` are on PATH it also
//! times the earlier route (headless Chromium print to PDF, then pdftotext) once per document,
//! each in a fresh temporary profile, and prints the speed ratio.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const PEER_TIMEOUT: Duration = Duration::from_secs(180);

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn megabytes(bytes: usize) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs a command to completion within `PEER_TIMEOUT`, killing it (only it) on timeout.
fn run_with_timeout(command: &mut Command) -> Result<()> {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("could not start {command:?}"))?;
    let deadline = Instant::now() + PEER_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("{command:?} exited with {status}");
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            bail!("{command:?} took longer than {PEER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Browser route for one file: Chromium prints it to PDF, pdftotext extracts the text.
/// Returns the elapsed time and the characters of text obtained.
fn browser_route(file: &Path) -> Result<(Duration, usize)> {
    let work = tempfile::tempdir().context("temporary directory")?;
    let profile = work.path().join("profile");
    let pdf = work.path().join("out.pdf");
    let txt = work.path().join("out.txt");
    let absolute = std::fs::canonicalize(file)?;
    let started = Instant::now();
    run_with_timeout(
        Command::new("chromium")
            .arg("--headless")
            .arg("--no-sandbox")
            .arg("--disable-gpu")
            .arg("--no-first-run")
            .arg("--disable-background-networking")
            .arg("--disable-component-update")
            .arg("--disable-sync")
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--print-to-pdf={}", pdf.display()))
            .arg(format!("file://{}", absolute.display())),
    )?;
    run_with_timeout(Command::new("pdftotext").arg(&pdf).arg(&txt))?;
    let elapsed = started.elapsed();
    let text = std::fs::read_to_string(&txt).unwrap_or_default();
    Ok((elapsed, text.chars().count()))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs = 7usize;
    let mut peer = true;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--runs" => {
                runs = args
                    .get(i + 1)
                    .and_then(|v| v.parse().ok())
                    .filter(|&n: &usize| n >= 1)
                    .context("--runs needs a positive number")?;
                i += 1;
            }
            "--no-peer" => peer = false,
            other => bail!("unknown argument {other:?}: use --runs N and/or --no-peer"),
        }
        i += 1;
    }
    let Some(dir) = fintel_fixtures::dir() else {
        bail!("fixtures not found: set FINTEL_FIXTURES to the shared fixtures directory");
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for sub in ["sec/10k", "sec/20f"] {
        for entry in std::fs::read_dir(dir.join(sub)).with_context(|| format!("reading {sub}"))? {
            files.push(entry?.path());
        }
    }
    files.sort();
    let documents: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| {
            let name = f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            std::fs::read(f)
                .map(|bytes| (name, bytes))
                .with_context(|| format!("reading {}", f.display()))
        })
        .collect::<Result<_>>()?;
    let total_bytes: usize = documents.iter().map(|(_, b)| b.len()).sum();

    println!(
        "fintel-filing html_to_text, {runs} runs, median; {} documents, {:.2} MB",
        documents.len(),
        megabytes(total_bytes)
    );
    let mut per_doc_seconds: Vec<Vec<f64>> = vec![Vec::new(); documents.len()];
    let mut overall_seconds = Vec::new();
    let mut text_chars = vec![0usize; documents.len()];
    for _ in 0..runs {
        let run_start = Instant::now();
        for (index, (_, html)) in documents.iter().enumerate() {
            let started = Instant::now();
            let text = fintel_filing::html_to_text(std::hint::black_box(html));
            per_doc_seconds[index].push(started.elapsed().as_secs_f64());
            text_chars[index] = text.text.chars().count();
        }
        overall_seconds.push(run_start.elapsed().as_secs_f64());
    }
    println!("{:<70} {:>9} {:>10} {:>10}", "document", "MB", "ms", "MB/s");
    let mut ours = Vec::new();
    for (index, (name, html)) in documents.iter().enumerate() {
        let seconds = median(per_doc_seconds[index].clone());
        let rate = megabytes(html.len()) / seconds;
        ours.push(rate);
        println!(
            "{name:<70} {:>9.2} {:>10.2} {:>10.1}",
            megabytes(html.len()),
            seconds * 1000.0,
            rate
        );
    }
    let overall = megabytes(total_bytes) / median(overall_seconds);
    println!(
        "{:<70} {:>9.2} {:>10} {:>10.1}",
        "OVERALL",
        megabytes(total_bytes),
        "",
        overall
    );
    match peak_rss_kib() {
        Some(kib) => println!("peak RSS (VmHWM): {:.1} MB", kib as f64 / 1024.0),
        None => println!("peak RSS: /proc/self/status not readable on this system"),
    }

    if !peer {
        println!("peer: skipped (--no-peer)");
        return Ok(());
    }
    if !(on_path("chromium") && on_path("pdftotext")) {
        println!("peer: chromium and/or pdftotext not found on PATH; browser route not timed");
        return Ok(());
    }
    println!();
    println!("peer: headless chromium --print-to-pdf + pdftotext, one run per document");
    println!(
        "{:<70} {:>10} {:>10} {:>12} {:>12}",
        "document", "s", "MB/s", "ours/peer", "text chars peer/ours"
    );
    let mut peer_total = Duration::ZERO;
    for (index, ((name, html), file)) in documents.iter().zip(&files).enumerate() {
        match browser_route(file) {
            Ok((elapsed, chars)) => {
                peer_total += elapsed;
                let rate = megabytes(html.len()) / elapsed.as_secs_f64();
                println!(
                    "{name:<70} {:>10.2} {:>10.3} {:>11.0}x {:>12}",
                    elapsed.as_secs_f64(),
                    rate,
                    ours[index] / rate,
                    format!("{chars}/{}", text_chars[index])
                );
            }
            Err(error) => println!("{name:<70} failed: {error:#}"),
        }
    }
    if peer_total > Duration::ZERO {
        let peer_rate = megabytes(total_bytes) / peer_total.as_secs_f64();
        println!(
            "{:<70} {:>10.2} {:>10.3} {:>11.0}x",
            "OVERALL",
            peer_total.as_secs_f64(),
            peer_rate,
            overall / peer_rate
        );
    }
    Ok(())
}
