//! `fintel changes OLD NEW [--section ITEM] [--json]`: two local filings compared the way the
//! `changes` analysis type compares a company's consecutive years (the measures are
//! `fintel_changes`'), for a user checking one company by hand.

use std::path::Path;

use anyhow::{Context, Result};
use fintel_changes::{
    compare_filings, compare_one_section, Comparison, FilingDoc, SectionChange, SectionState,
};
use fintel_filing::{html_to_text, FormKind};
use serde_json::json;

use crate::cli::ChangesArgs;
use crate::commands::not_a_filing;
use crate::exit::{self, usage};

pub fn changes(args: ChangesArgs) -> Result<u8> {
    let form = match &args.form {
        Some(f) => Some(FormKind::parse(f).map_err(|e| usage(e.to_string()))?),
        None => None,
    };
    // The item id is checked before reading anything, so a typo costs no conversion.
    if let Some(id) = &args.section {
        form.unwrap_or(FormKind::TenK)
            .item(id)
            .or_else(|e| match form {
                // Without --form the item may belong to the other form.
                None => FormKind::TwentyF.item(id).map_err(|_| e),
                Some(_) => Err(e),
            })
            .map_err(|e| usage(e.to_string()))?;
    }
    let old = load(&args.old, form)?;
    let new = load(&args.new, form)?;
    let (old_name, new_name) = (
        args.old.display().to_string(),
        args.new.display().to_string(),
    );

    if let Some(id) = &args.section {
        let change = compare_one_section(&old, &new, id).map_err(|e| usage(e.to_string()))?;
        let id = old.form().item(id).map(|s| s.id).unwrap_or(id.as_str());
        if args.json {
            let mut value = json!({"old_file": old_name, "new_file": new_name, "form": old.form(), "section": id});
            if let (Some(object), serde_json::Value::Object(fields)) =
                (value.as_object_mut(), serde_json::to_value(&change)?)
            {
                object.extend(fields);
            }
            println!("{value}");
            return Ok(exit::OK);
        }
        println!("{old_name} -> {new_name} ({})", old.form().as_str());
        print_header();
        print_section_row(id, &change);
        match &change.comparison {
            Some(c) => print_sentences(&format!("item {id}"), c),
            None => println!("\n{}", not_compared(&change)),
        }
        return Ok(exit::OK);
    }

    let changes = compare_filings(&old, &new);
    if args.json {
        let mut value = json!({"old_file": old_name, "new_file": new_name});
        if let (Some(object), serde_json::Value::Object(fields)) =
            (value.as_object_mut(), serde_json::to_value(&changes)?)
        {
            object.extend(fields);
        }
        println!("{value}");
        return Ok(exit::OK);
    }
    println!(
        "{old_name} ({}) -> {new_name} ({})",
        old.form().as_str(),
        new.form().as_str()
    );
    if old.form() != new.form() {
        println!("different forms: only the whole texts are compared");
    }
    print_header();
    print_row("", "whole text", &changes.whole);
    for (id, change) in &changes.sections {
        print_section_row(id, change);
    }
    // The risk factors are where the paper found the signal, so their sentences come first.
    match changes
        .sections
        .get("1A")
        .and_then(|s| s.comparison.as_ref())
    {
        Some(c) => print_sentences("item 1A", c),
        None => print_sentences("the whole text", &changes.whole),
    }
    println!("\n1 = unchanged. `--section ITEM` shows one item's sentences; `--json` everything.");
    Ok(exit::OK)
}

/// Reads, checks and converts one filing.
fn load(path: &Path, form: Option<FormKind>) -> Result<FilingDoc> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read {}", path.display()))
        .map_err(|e| usage(format!("{e:#}")))?;
    if let Some(why) = not_a_filing(&bytes) {
        return Err(usage(format!(
            "{} is not an HTML or text filing: {why}",
            path.display()
        )));
    }
    let text = html_to_text(&bytes);
    Ok(FilingDoc::new(&text.text, text.plain_text_source, form))
}

fn print_header() {
    println!(
        "{:<4} {:<28} {:>7} {:>7} {:>8} {:>7} {:>8} {:>7} {:>7}",
        "item", "", "cosine", "jaccard", "min_edit", "simple", "length", "added", "removed"
    );
}

fn print_row(id: &str, title: &str, c: &Comparison) {
    let length = c
        .length_change
        .map_or("-".to_string(), |l| format!("{:+.1}%", l * 100.0));
    println!(
        "{:<4} {:<28} {:>7.4} {:>7.4} {:>8.4} {:>7.4} {:>8} {:>7} {:>7}",
        id,
        truncate(title, 28),
        c.cosine,
        c.jaccard,
        c.min_edit,
        c.simple,
        length,
        c.added_count,
        c.removed_count
    );
}

fn print_section_row(id: &str, change: &SectionChange) {
    match &change.comparison {
        Some(c) => print_row(id, &change.title, c),
        None => println!(
            "{:<4} {:<28} {}",
            id,
            truncate(&change.title, 28),
            not_compared(change)
        ),
    }
}

fn not_compared(change: &SectionChange) -> String {
    let word = |s: SectionState| match s {
        SectionState::Present => "present",
        SectionState::IncorporatedByReference => "incorporated by reference",
        SectionState::NotApplicable => "not applicable",
        SectionState::Absent => "not found",
    };
    format!(
        "not compared: old {}, new {}",
        word(change.old),
        word(change.new)
    )
}

fn print_sentences(what: &str, c: &Comparison) {
    println!(
        "\nAdded in {what}: {} sentence(s){}",
        c.added_count,
        if c.added.is_empty() {
            ""
        } else {
            ", the most substantive:"
        }
    );
    for s in &c.added {
        println!("  + {}", truncate(s, 300));
    }
    println!(
        "Removed from {what}: {} sentence(s){}",
        c.removed_count,
        if c.removed.is_empty() {
            ""
        } else {
            ", the most substantive:"
        }
    );
    for s in &c.removed {
        println!("  - {}", truncate(s, 300));
    }
}

/// At most `max` characters, with an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}
