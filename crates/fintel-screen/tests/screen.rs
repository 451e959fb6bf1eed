//! Screens against results stored the way batches store them: sorting (numbers numerically,
//! enums by schema rank, nulls last), filters, the latest year per company, batches of an old
//! and a new version of a type, unknown fields, presets and file output.

mod common;

use common::{company, fill, Company};
use fintel_screen::{screen, FieldKind, FileFormat, ScreenError, ScreenRequest};
use fintel_store::{Store, TaskKind};
use fintel_workflows::{Registry, Workflow};
use jiff::Timestamp;
use serde_json::{json, Value};

fn start() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn registry() -> Registry {
    Registry::load(&[]).unwrap()
}

fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("fintel.db")).unwrap()
}

fn tickers(screen: &fintel_screen::Screen) -> Vec<String> {
    screen
        .rows
        .iter()
        .map(|r| r.ticker.clone().unwrap_or_default())
        .collect()
}

/// A `fundamental` result with the given score and balance-sheet strength.
fn fundamental(score: Value, rating: &str) -> Value {
    json!({"score": score, "balance_sheet": {"strength": rating}, "summary": format!("score {score}")})
}

/// Five companies with `fundamental` results over 2022-2024; the latest year decides.
fn fundamentals(dir: &tempfile::TempDir) -> Store {
    let store = store(dir);
    let registry = registry();
    let workflow = registry.get("fundamental").unwrap();
    let companies: Vec<Company> = [("AAA", 1), ("BBB", 2), ("CCC", 3), ("DDD", 4), ("EEE", 5)]
        .iter()
        .map(|(t, c)| company(t, *c))
        .collect();
    // Latest-year scores: AAA 9, BBB 10, CCC none (the field is missing), DDD 100 (a number
    // text order would put before 9), EEE only has 2022 (score 7).
    fill(
        &store,
        "b-fund",
        workflow,
        &companies,
        &[2022, 2023, 2024],
        start(),
        &mut |task| {
            let year = task.fiscal_year.unwrap();
            let ticker = task.ticker.clone().unwrap();
            let (score, rating) = match (ticker.as_str(), year) {
                ("AAA", 2024) => (json!(9), "strong"),
                ("BBB", 2024) => (json!(10), "weak"),
                ("CCC", 2024) => (Value::Null, "adequate"),
                ("DDD", 2024) => (json!(100), "very_strong"),
                ("EEE", 2022) => (json!(7), "adequate"),
                ("EEE", _) => return None,
                // Older years score high, so a screen that read them would rank them first.
                _ => (json!(1000), "very_strong"),
            };
            let mut v = fundamental(score, rating);
            if ticker == "CCC" && year == 2024 {
                v.as_object_mut().unwrap().remove("score");
            }
            Some(v)
        },
    );
    store
}

fn request(sort: &str) -> ScreenRequest {
    ScreenRequest {
        analysis_type: "fundamental".into(),
        sort: sort.into(),
        ..ScreenRequest::default()
    }
}

#[test]
fn numbers_sort_numerically_on_each_companys_latest_year_with_nulls_last() {
    let dir = tempfile::tempdir().unwrap();
    let store = fundamentals(&dir);
    let registry = registry();
    let s = screen(&store, &registry, &request("score")).unwrap();
    assert_eq!(tickers(&s), ["DDD", "BBB", "AAA", "EEE", "CCC"]);
    let years: Vec<Option<i32>> = s.rows.iter().map(|r| r.fiscal_year).collect();
    assert_eq!(
        years,
        [Some(2024), Some(2024), Some(2024), Some(2022), Some(2024)]
    );
    assert_eq!(s.rows[0].value, json!(100));
    assert_eq!(s.rows[4].value, Value::Null);
    assert_eq!(s.companies, 5);

    let ascending = screen(
        &store,
        &registry,
        &ScreenRequest {
            ascending: true,
            ..request("score")
        },
    )
    .unwrap();
    assert_eq!(
        tickers(&ascending),
        ["EEE", "AAA", "BBB", "DDD", "CCC"],
        "nulls stay last"
    );

    // One fiscal year instead of the latest: 2023 has no EEE and every score 1000 (ties by
    // ticker).
    let fy2023 = screen(
        &store,
        &registry,
        &ScreenRequest {
            fiscal_year: Some(2023),
            ..request("score")
        },
    )
    .unwrap();
    assert_eq!(tickers(&fy2023), ["AAA", "BBB", "CCC", "DDD"]);
    assert!(fy2023.rows.iter().all(|r| r.fiscal_year == Some(2023)));
}

#[test]
fn filters_test_the_latest_year_and_top_cuts_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = fundamentals(&dir);
    let registry = registry();
    let s = screen(
        &store,
        &registry,
        &ScreenRequest {
            conditions: vec!["score >= 9".into()],
            top: Some(2),
            show: vec!["balance_sheet.strength".into(), "summary".into()],
            ..request("score")
        },
    )
    .unwrap();
    // Older years of every company score 1000; only the latest year counts.
    assert_eq!(tickers(&s), ["DDD", "BBB"]);
    assert_eq!(s.matched, 3, "AAA matched too, cut by --top");
    assert_eq!(s.rows[1].fields["balance_sheet.strength"], json!("weak"));
    assert_eq!(s.rows[1].fields["summary"], json!("score 10"));

    // Enum filter and enum sort by schema rank (very_strong, strong, adequate, weak, ...).
    let s = screen(
        &store,
        &registry,
        &ScreenRequest {
            conditions: vec!["balance_sheet.strength >= strong".into()],
            ..request("balance_sheet.strength")
        },
    )
    .unwrap();
    assert_eq!(s.sort_kind, {
        let FieldKind::Enum(values) = &s.sort_kind else {
            panic!("{:?}", s.sort_kind)
        };
        assert_eq!(values[0], "very_strong");
        s.sort_kind.clone()
    });
    assert_eq!(tickers(&s), ["DDD", "AAA"]);
    let all = screen(&store, &registry, &request("balance_sheet.strength")).unwrap();
    assert_eq!(tickers(&all), ["DDD", "AAA", "CCC", "EEE", "BBB"]);

    // Null tests and contains.
    let missing = screen(
        &store,
        &registry,
        &ScreenRequest {
            conditions: vec!["score = null".into()],
            ..request("score")
        },
    )
    .unwrap();
    assert_eq!(tickers(&missing), ["CCC"]);
    let contains = screen(
        &store,
        &registry,
        &ScreenRequest {
            conditions: vec!["summary ~ SCORE 1".into()],
            ..request("score")
        },
    )
    .unwrap();
    assert_eq!(tickers(&contains), ["DDD", "BBB"]);
}

#[test]
fn unknown_fields_and_bad_requests_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let store = fundamentals(&dir);
    let registry = registry();
    let err = |r: ScreenRequest| -> ScreenError { screen(&store, &registry, &r).unwrap_err() };

    let e = err(request("alpha"));
    let message = e.to_string();
    assert!(
        message.contains("unknown field `alpha` for analysis type fundamental"),
        "{message}"
    );
    assert!(
        message.contains("score") && message.contains("balance_sheet.strength"),
        "{message}"
    );
    assert!(e.is_bad_input());

    let e = err(ScreenRequest {
        conditions: vec!["scroe > 1".into()],
        ..request("score")
    });
    assert!(e.to_string().contains("unknown field `scroe`"), "{e}");
    let e = err(ScreenRequest {
        show: vec!["moat".into()],
        ..request("score")
    });
    assert!(e.to_string().contains("unknown field `moat`"), "{e}");
    let e = err(ScreenRequest {
        conditions: vec!["score >> 1".into()],
        ..request("score")
    });
    assert!(e.to_string().contains("unknown operator `>>`"), "{e}");
    let e = err(ScreenRequest {
        conditions: vec!["score > high".into()],
        ..request("score")
    });
    assert!(e.to_string().contains("`high` is not a number"), "{e}");
    let e = err(request("risks"));
    assert!(matches!(e, ScreenError::NotSortable { .. }), "{e}");
    let e = err(ScreenRequest {
        analysis_type: "fundamentl".into(),
        ..request("score")
    });
    assert!(
        e.to_string().contains("unknown analysis type `fundamentl`"),
        "{e}"
    );
    assert!(e.to_string().contains("fundamental"), "{e}");
    let e = err(ScreenRequest {
        top: Some(0),
        ..request("score")
    });
    assert!(e.is_bad_input(), "{e}");
    let e = err(ScreenRequest {
        batch_id: Some("nope".into()),
        ..request("score")
    });
    assert!(e.is_bad_input(), "{e}");
    let e = err(ScreenRequest {
        analysis_type: "scanner".into(),
        batch_id: Some("b-fund".into()),
        ..request("overall_alpha_score")
    });
    assert!(
        e.to_string().contains("ran the analysis type fundamental"),
        "{e}"
    );
}

/// The checklist `scanner` was before EON's scanner took the name, as a user had it.
fn old_scanner(dir: &tempfile::TempDir) -> Workflow {
    let source = Registry::builtin_source("checklist")
        .unwrap()
        .replace("name = \"checklist\"", "name = \"scanner\"");
    let path = dir.path().join("old-scanner.toml");
    std::fs::write(&path, source).unwrap();
    Workflow::from_file(&path).unwrap()
}

fn scanner_answer(alpha: i64, confidence: &str) -> Value {
    json!({
        "scores": {"strategic_anomaly": alpha / 2, "asymmetric_resources": 50,
                   "contrarian_positioning": 50, "cross_industry_dna": 50,
                   "early_infrastructure": 50, "intellectual_capital": 50},
        "overall_alpha_score": alpha,
        "key_insights": ["insight"],
        "investment_thesis": "thesis",
        "risk_factors": ["risk"],
        "catalyst_timeline": "soon",
        "confidence_level": confidence
    })
}

/// Old batches keep their version of `scanner`; a screen of the type reads both versions'
/// results unless a batch narrows it, multi-year types are screened on their aggregate
/// results, and the compounders preset is EON's scan.
#[test]
fn versions_batches_aggregates_and_the_compounders_preset() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let registry = registry();
    let old = old_scanner(&dir);
    let new = registry.get("scanner").unwrap();
    assert_ne!(old.version, new.version);
    let years = [2022, 2023, 2024];
    // The old batch: the checklist's score and verdict.
    let t = fill(
        &store,
        "b-old",
        &old,
        &[company("OLD", 10), company("BOTH", 11)],
        &years,
        start(),
        &mut |task| {
            Some(match task.kind {
                TaskKind::Aggregate => json!({"score": 80, "verdict": "candidate"}),
                _ => json!({"revenue": 1}),
            })
        },
    );
    // The new batch: EON's scores; the yearly extractions carry an `overall_alpha_score`
    // too, which a screen must not read (it screens the aggregate).
    let companies: Vec<Company> = [
        ("BOTH", 11),
        ("HI", 12),
        ("MID", 13),
        ("LOW", 14),
        ("WEAK", 15),
        ("TOP", 16),
    ]
    .iter()
    .map(|(t, c)| company(t, *c))
    .collect();
    fill(&store, "b-new", new, &companies, &years, t, &mut |task| {
        let ticker = task.ticker.clone().unwrap();
        Some(match task.kind {
            TaskKind::Aggregate => match ticker.as_str() {
                "BOTH" => scanner_answer(75, "HIGH"),
                "HI" => scanner_answer(90, "HIGH"),
                "MID" => scanner_answer(70, "MEDIUM"),
                "LOW" => scanner_answer(95, "LOW"),
                "WEAK" => scanner_answer(69, "HIGH"),
                _ => scanner_answer(99, "MEDIUM"),
            },
            _ => json!({"overall_alpha_score": 100, "confidence_level": "HIGH"}),
        })
    });

    // Fields of both versions are known: the old `score` and the new scores.
    let s = screen(
        &store,
        &registry,
        &ScreenRequest {
            analysis_type: "scanner".into(),
            sort: "score".into(),
            ..ScreenRequest::default()
        },
    )
    .unwrap();
    // BOTH's newest result is the new version's (stored later): it has no `score`.
    assert_eq!(tickers(&s)[0], "OLD");
    assert_eq!(s.rows[0].value, json!(80));
    assert_eq!(s.companies, 7);
    let both = s
        .rows
        .iter()
        .find(|r| r.ticker.as_deref() == Some("BOTH"))
        .unwrap();
    assert_eq!(both.value, Value::Null);

    // The old batch alone: its pinned schema, its results.
    let s = screen(
        &store,
        &registry,
        &ScreenRequest {
            analysis_type: "scanner".into(),
            sort: "score".into(),
            batch_id: Some("b-old".into()),
            show: vec!["verdict".into()],
            ..ScreenRequest::default()
        },
    )
    .unwrap();
    assert_eq!(tickers(&s), ["BOTH", "OLD"]);
    assert!(s
        .rows
        .iter()
        .all(|r| r.value == json!(80) && r.fiscal_year == Some(2024)));
    let e = screen(
        &store,
        &registry,
        &ScreenRequest {
            analysis_type: "scanner".into(),
            sort: "overall_alpha_score".into(),
            batch_id: Some("b-old".into()),
            ..ScreenRequest::default()
        },
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("unknown field `overall_alpha_score`"),
        "{e}"
    );

    // The preset: alpha >= 70 and confidence at least MEDIUM, best first.
    let preset = fintel_screen::preset("compounders").unwrap();
    let s = screen(&store, &registry, &ScreenRequest::from_preset(preset)).unwrap();
    assert_eq!(tickers(&s), ["TOP", "HI", "BOTH", "MID"]);
    let values: Vec<&Value> = s.rows.iter().map(|r| &r.value).collect();
    assert_eq!(values, [&json!(99), &json!(90), &json!(75), &json!(70)]);
    // With a nested score shown and an extra condition.
    let mut r = ScreenRequest::from_preset(preset);
    r.conditions.push("scores.strategic_anomaly >= 45".into());
    r.show = vec!["scores.strategic_anomaly".into(), "confidence_level".into()];
    let s = screen(&store, &registry, &r).unwrap();
    assert_eq!(tickers(&s), ["TOP", "HI"]);
    assert_eq!(s.rows[1].fields["scores.strategic_anomaly"], json!(45));
    assert_eq!(s.rows[1].fields["confidence_level"], json!("HIGH"));
    // Confidence sorts by rank, HIGH first.
    let s = screen(
        &store,
        &registry,
        &ScreenRequest {
            analysis_type: "scanner".into(),
            sort: "confidence_level".into(),
            batch_id: Some("b-new".into()),
            ..ScreenRequest::default()
        },
    )
    .unwrap();
    assert_eq!(tickers(&s), ["BOTH", "HI", "WEAK", "MID", "TOP", "LOW"]);
}

#[test]
fn csv_and_xlsx_files_hold_the_rows_and_are_never_clobbered() {
    let dir = tempfile::tempdir().unwrap();
    let store = fundamentals(&dir);
    let registry = registry();
    // A company whose name a spreadsheet would run as a formula.
    let workflow = registry.get("fundamental").unwrap();
    let mut evil = company("EVIL", 66);
    evil.name = "=HYPERLINK(\"http://x\")".into();
    fill(
        &store,
        "b-evil",
        workflow,
        &[evil],
        &[2024],
        "2026-06-02T00:00:00Z".parse().unwrap(),
        &mut |_| Some(fundamental(json!(5), "weak")),
    );
    let s = screen(
        &store,
        &registry,
        &ScreenRequest {
            show: vec!["balance_sheet.strength".into()],
            ..request("score")
        },
    )
    .unwrap();
    let csv_path = dir.path().join("short.csv");
    fintel_screen::write_file(&s, FileFormat::Csv, &csv_path, false).unwrap();
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "rank,ticker,cik,company_name,fiscal_year,score,balance_sheet.strength,results"
    );
    assert_eq!(
        lines[1],
        "1,DDD,4,DDD Corp.,2024,100,very_strong,fintel results DDD --year 2024 --analysis-type fundamental"
    );
    assert_eq!(lines.len(), 7);
    assert!(text.contains("'=HYPERLINK"), "{text}");
    let again = fintel_screen::write_file(&s, FileFormat::Csv, &csv_path, false).unwrap_err();
    assert!(matches!(again, ScreenError::AlreadyExists(_)), "{again}");
    assert_eq!(
        std::fs::read_to_string(&csv_path).unwrap(),
        text,
        "untouched"
    );
    fintel_screen::write_file(&s, FileFormat::Csv, &csv_path, true).unwrap();

    let xlsx_path = dir.path().join("short.xlsx");
    fintel_screen::write_file(&s, FileFormat::Xlsx, &xlsx_path, false).unwrap();
    use calamine::{Data, Reader};
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(&xlsx_path).unwrap();
    let range = book.worksheet_range("screen").unwrap();
    assert_eq!(range.get((1, 1)), Some(&Data::String("DDD".into())));
    assert_eq!(
        range.get((1, 5)),
        Some(&Data::Float(100.0)),
        "numbers stay numbers"
    );
    assert_eq!(range.height(), 7);

    let e = fintel_screen::write_file(
        &s,
        FileFormat::Csv,
        &dir.path().join("no/such/dir.csv"),
        false,
    )
    .unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(FileFormat::parse("parquet").is_err());

    let table = fintel_screen::render_table(&s);
    let first = table.lines().nth(1).unwrap();
    assert!(first.contains("DDD") && first.contains("100"), "{table}");
}

/// `multi` as it was before its verdict became a five-level scale (`buy | hold | pass`).
fn multi_before_signals() -> Workflow {
    Workflow::from_canonical(
        &Workflow::from_file(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fintel-workflows/tests/samples/multi_before_signals.toml"),
        )
        .unwrap()
        .canonical,
    )
    .unwrap()
}

/// `multi`'s verdict compares in its scale's order (strong_sell < sell < hold < buy <
/// strong_buy), the signal presets pick the two ends, and a batch pinned to the earlier
/// `buy | hold | pass` verdict is still screened by its own schema.
#[test]
fn multi_verdicts_compare_on_their_scale_and_old_batches_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let registry = registry();
    let old = multi_before_signals();
    let new = registry.get("multi").unwrap();
    assert_ne!(old.version, new.version);
    let t = fill(
        &store,
        "b-old",
        &old,
        &[company("OBUY", 20), company("OPASS", 21)],
        &[2024],
        start(),
        &mut |task| {
            let verdict = match task.ticker.as_deref() {
                Some("OBUY") => "buy",
                _ => "pass",
            };
            Some(json!({"verdict": verdict, "conviction": 5}))
        },
    );
    let companies: Vec<Company> = [
        ("SB", 1),
        ("SB2", 2),
        ("B", 3),
        ("H", 4),
        ("S", 5),
        ("SS", 6),
    ]
    .iter()
    .map(|(t, c)| company(t, *c))
    .collect();
    fill(&store, "b-new", new, &companies, &[2024], t, &mut |task| {
        let (verdict, conviction) = match task.ticker.as_deref().unwrap() {
            "SB" => ("strong_buy", 7),
            "SB2" => ("strong_buy", 9),
            "B" => ("buy", 8),
            "H" => ("hold", 5),
            "S" => ("sell", 8),
            _ => ("strong_sell", 6),
        };
        Some(json!({"verdict": verdict, "conviction": conviction,
                    "synthesis": {"overall_score": conviction}}))
    });
    let run = |request: ScreenRequest| tickers(&screen(&store, &registry, &request).unwrap());
    let with = |conditions: &[&str]| ScreenRequest {
        analysis_type: "multi".into(),
        sort: "conviction".into(),
        conditions: conditions.iter().map(|c| c.to_string()).collect(),
        batch_id: Some("b-new".into()),
        ..ScreenRequest::default()
    };
    assert_eq!(run(with(&["verdict >= buy"])), ["SB2", "B", "SB"]);
    assert_eq!(run(with(&["verdict <= sell"])), ["S", "SS"]);
    assert_eq!(
        run(with(&["verdict > hold", "verdict < strong_buy"])),
        ["B"]
    );
    assert_eq!(run(with(&["verdict >= hold", "verdict <= hold"])), ["H"]);
    // Sorting by the verdict itself: the scale, strong_buy first.
    let mut by_verdict = with(&[]);
    by_verdict.sort = "verdict".into();
    let order = run(by_verdict.clone());
    assert_eq!(&order[..2], ["SB", "SB2"]);
    assert_eq!(&order[2..], ["B", "H", "S", "SS"]);
    by_verdict.ascending = true;
    assert_eq!(run(by_verdict)[0], "SS");

    // The presets, over every batch of the type: the old batch's `buy` is no strong buy and
    // its `pass` is on neither leg.
    let s = screen(
        &store,
        &registry,
        &ScreenRequest::from_preset(fintel_screen::preset("strong_buys").unwrap()),
    )
    .unwrap();
    assert_eq!(tickers(&s), ["SB2", "SB"]);
    assert_eq!(s.rows[0].fields["verdict"], json!("strong_buy"));
    assert_eq!(s.rows[0].fields["synthesis.overall_score"], json!(9));
    let s = screen(
        &store,
        &registry,
        &ScreenRequest::from_preset(fintel_screen::preset("shorts").unwrap()),
    )
    .unwrap();
    assert_eq!(tickers(&s), ["S", "SS"]);

    // The old batch alone reads its own verdicts, `pass` included.
    let old_only = ScreenRequest {
        analysis_type: "multi".into(),
        sort: "conviction".into(),
        conditions: vec!["verdict = pass".into()],
        batch_id: Some("b-old".into()),
        ..ScreenRequest::default()
    };
    assert_eq!(run(old_only.clone()), ["OPASS"]);
    // Over every batch the current scale decides, and the error says how to reach the old level.
    let e = screen(
        &store,
        &registry,
        &ScreenRequest {
            batch_id: None,
            ..old_only.clone()
        },
    )
    .unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains("`pass` is a value of `verdict` only in an earlier version of multi")
            && message.contains("--batch-id")
            && message.contains("strong_buy, buy, hold, sell, strong_sell"),
        "{message}"
    );
    // The new batch has no such level.
    let e = screen(
        &store,
        &registry,
        &ScreenRequest {
            batch_id: Some("b-new".into()),
            ..old_only
        },
    )
    .unwrap_err();
    assert!(matches!(e, ScreenError::NotInEnum { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("strong_buy, buy, hold, sell, strong_sell"),
        "{e}"
    );
}
