//! Exports of a store filled the way the engine fills it, read back with independent readers.

use std::path::Path;

use fintel_export::{
    export, render_text, results_view, ExportError, ExportQuery, Format, Output, StatusFilter,
    IDENTIFYING_COLUMNS,
};
use fintel_store::{FilingRef, NewBatch, NewCompany, NewResult, Store, YearPlan};
use jiff::Timestamp;
use serde_json::{json, Value};

const OWNER: &str = "test-owner";
const BATCH: &str = "b-0001";

fn now() -> Timestamp {
    "2026-03-01T12:00:00Z".parse().unwrap()
}

fn company(ticker: &str, cik: Option<u64>, skip: Option<&str>) -> NewCompany {
    NewCompany {
        line_no: None,
        ticker: Some(ticker.into()),
        cik,
        company_name: None,
        priority: 0,
        skip_reason: skip.map(Into::into),
    }
}

/// The stored result JSON of (cik, year).
fn result_json(cik: u64, year: i32) -> Value {
    json!({
        "moat": {"rating": if year % 2 == 0 { "wide" } else { "narrow" },
                 "sources": ["brand", "network effects"]},
        "growth": -0.25 + f64::from(year - 2020),
        "score": -(year - 2000),
        "risks": [{"name": "fx", "weight": 2}],
        "summary": format!("CIK {cik} year {year}: =HYPERLINK(\"http://evil\")"),
        "note": "+1",
        "calc": "-2+3",
        "sum": "@SUM(A1:A2)",
    })
}

/// A batch of two known companies (two years each, one year without a filing) and one unknown
/// ticker, processed through the store API the way the engine does.
fn filled_store(dir: &Path) -> Store {
    let store = Store::open(&dir.join("fintel.db")).unwrap();
    let batch = NewBatch {
        id: BATCH.into(),
        name: None,
        analysis_type: "moat".into(),
        analysis_version: "abcdef0123456789".into(),
        workflow: "{}".into(),
        min_years: 1,
        years_spec: r#"{"latest": 3}"#.into(),
        as_of_date: "2026-03-01".into(),
        model: "gemini-test".into(),
        settings: "{}".into(),
        priority: 0,
        input_file: None,
        companies: vec![
            company("AAPL", Some(320193), None),
            company("MSFT", Some(789019), None),
            company("NOPE", None, Some("unknown ticker NOPE")),
        ],
    };
    store.create_batch(&batch, now()).unwrap();
    while let Some(task) = store.claim_next(BATCH, OWNER, now(), true).unwrap() {
        let cik = task.cik.unwrap_or(0);
        match task.kind {
            fintel_store::TaskKind::Resolve => {
                let plans: Vec<YearPlan> = [2024, 2023, 2022]
                    .into_iter()
                    .map(|y| YearPlan {
                        fiscal_year: y,
                        filing: (y != 2022).then(|| FilingRef {
                            accession: format!("0000{cik}-{y}-000001"),
                            form: "10-K".into(),
                            period: Some(format!("{y}-12-31")),
                            filed: Some(format!("{}-02-01", y + 1)),
                            document_url: format!("https://example.test/{cik}/{y}.htm"),
                            transition: false,
                        }),
                        skip_reason: (y == 2022).then(|| "no 10-K for 2022".to_string()),
                    })
                    .collect();
                let name = format!("Company {cik}");
                store
                    .complete_resolution(task.id, OWNER, &plans, true, false, Some(&name), now())
                    .unwrap();
            }
            _ => {
                let year = task.fiscal_year.unwrap();
                let filing = task.filing.clone().unwrap();
                let result = NewResult {
                    result_key: format!("{cik}-{year}-moat"),
                    cik,
                    ticker: task.ticker.clone(),
                    company_name: task.company_name.clone(),
                    fiscal_year: Some(year),
                    fiscal_year_label: Some(format!("FY{year}")),
                    form: Some(filing.form.clone()),
                    accession: Some(filing.accession.clone()),
                    analysis_type: "moat".into(),
                    analysis_version: "abcdef0123456789".into(),
                    model: "gemini-test".into(),
                    json: result_json(cik, year).to_string(),
                    prompt_tokens: 1000 + year as u64,
                    output_tokens: 200,
                    thinking_tokens: 50,
                    attempts: 1,
                    calls: 1,
                    document_url: Some(filing.document_url.clone()),
                    document_sha256: Some("ab".repeat(32)),
                    fitting: Some("full".into()),
                    started_at: Some(now()),
                    supersede: false,
                    request_params: None,
                };
                store
                    .complete_with_result(task.id, OWNER, &result, now())
                    .unwrap();
            }
        }
    }
    store
}

fn query(status: StatusFilter) -> ExportQuery {
    ExportQuery {
        batch_id: Some(BATCH.into()),
        analysis_type: None,
        status,
    }
}

fn to_file(
    store: &Store,
    q: &ExportQuery,
    format: Format,
    path: &Path,
) -> fintel_export::ExportSummary {
    export(
        store,
        q,
        format,
        Output::Path {
            path: path.to_path_buf(),
            force: false,
        },
    )
    .unwrap()
}

fn col(headers: &[String], name: &str) -> usize {
    headers
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {headers:?}"))
}

#[test]
fn csv_matches_the_store_and_neutralises_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path());
    let path = dir.path().join("out.csv");
    let summary = to_file(&store, &query(StatusFilter::Completed), Format::Csv, &path);
    assert_eq!(summary.rows, 4);
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(summary.columns, headers.len());
    assert_eq!(&headers[..IDENTIFYING_COLUMNS.len()], IDENTIFYING_COLUMNS);
    for name in [
        "moat.rating",
        "moat.sources",
        "growth",
        "score",
        "risks",
        "summary",
    ] {
        col(&headers, name);
    }
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    for rec in &records {
        let cik: u64 = rec[col(&headers, "cik")].parse().unwrap();
        let year: i32 = rec[col(&headers, "fiscal_year")].parse().unwrap();
        let stored = result_json(cik, year);
        assert_eq!(rec[col(&headers, "status")].to_string(), "completed");
        assert_eq!(
            &rec[col(&headers, "moat.rating")],
            stored["moat"]["rating"].as_str().unwrap()
        );
        assert_eq!(
            &rec[col(&headers, "moat.sources")],
            "brand; network effects"
        );
        assert_eq!(
            &rec[col(&headers, "risks")],
            r#"[{"name":"fx","weight":2}]"#
        );
        // Numbers stay numbers, negative ones included.
        let score = &rec[col(&headers, "score")];
        assert_eq!(
            score.parse::<i64>().unwrap(),
            stored["score"].as_i64().unwrap()
        );
        assert_eq!(
            rec[col(&headers, "growth")].parse::<f64>().unwrap(),
            stored["growth"].as_f64().unwrap()
        );
        assert!(rec[col(&headers, "summary")].ends_with(": =HYPERLINK(\"http://evil\")"));
        assert_eq!(&rec[col(&headers, "note")], "'+1");
        assert_eq!(&rec[col(&headers, "calc")], "'-2+3");
        assert_eq!(&rec[col(&headers, "sum")], "'@SUM(A1:A2)");
        assert_eq!(
            &rec[col(&headers, "prompt_tokens")],
            (1000 + year).to_string()
        );
        assert_eq!(&rec[col(&headers, "batch_id")], BATCH);
        assert_eq!(
            &rec[col(&headers, "company_name")],
            format!("Company {cik}")
        );
    }
    // A cell that starts with '=' is neutralised.
    let q = ExportQuery::default();
    let mut out = Vec::new();
    export(&store, &q, Format::Csv, Output::Stdout(&mut out)).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains(",=") && !text.contains("\n="), "{text}");
}

#[test]
fn status_filters_include_skipped_years_and_unknown_tickers() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path());
    let mut out = Vec::new();
    let s = export(
        &store,
        &query(StatusFilter::Skipped),
        Format::Jsonl,
        Output::Stdout(&mut out),
    )
    .unwrap();
    let rows: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(s.rows, 3);
    assert_eq!(rows.len(), 3);
    assert!(rows
        .iter()
        .any(|r| r["ticker"] == "NOPE" && r["reason"] == "unknown ticker NOPE"));
    assert_eq!(
        rows.iter()
            .filter(|r| r["reason"] == "no 10-K for 2022")
            .count(),
        2
    );
    assert!(rows
        .iter()
        .all(|r| r["status"] == "skipped" && r["result"].is_null()));

    let mut out = Vec::new();
    let all = export(
        &store,
        &query(StatusFilter::All),
        Format::Csv,
        Output::Stdout(&mut out),
    )
    .unwrap();
    assert_eq!(all.rows, 7);
    let none = export(
        &store,
        &query(StatusFilter::Failed),
        Format::Csv,
        Output::Stdout(&mut Vec::new()),
    )
    .unwrap();
    assert_eq!(none.rows, 0);
    // Another analysis type: zero rows is a truthful summary, not an error.
    let q = ExportQuery {
        analysis_type: Some("governance".into()),
        ..query(StatusFilter::All)
    };
    let path = dir.path().join("empty.csv");
    let s = to_file(&store, &q, Format::Csv, &path);
    assert_eq!(s.rows, 0);
    assert!(path.exists());
    // An unknown batch is a clear error.
    let q = ExportQuery {
        batch_id: Some("zzz".into()),
        ..Default::default()
    };
    let err = export(&store, &q, Format::Csv, Output::Stdout(&mut Vec::new())).unwrap_err();
    assert!(err.to_string().contains("no batch matches"), "{err}");
}

#[test]
fn jsonl_keeps_nested_results_equal_to_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path());
    let path = dir.path().join("out.jsonl");
    // No batch: every stored result.
    let s = to_file(&store, &ExportQuery::default(), Format::Jsonl, &path);
    assert_eq!(s.rows, 4);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut seen = 0;
    for line in text.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        let cik = row["cik"].as_u64().unwrap();
        let year = row["fiscal_year"].as_i64().unwrap() as i32;
        assert_eq!(row["result"], result_json(cik, year));
        assert_eq!(row["batch_id"], BATCH);
        assert_eq!(row["created_at"], "2026-03-01T12:00:00Z");
        assert_eq!(row["document_sha256"], "ab".repeat(32));
        seen += 1;
    }
    assert_eq!(seen, 4);
}

#[test]
fn xlsx_reads_back_with_calamine() {
    use calamine::{open_workbook, Data, DataType, Reader, Xlsx};
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path());
    let path = dir.path().join("out.xlsx");
    let s = to_file(&store, &query(StatusFilter::All), Format::Xlsx, &path);
    assert_eq!(s.rows, 7);
    let mut wb: Xlsx<_> = open_workbook(&path).unwrap();
    let range = wb.worksheet_range("results").unwrap();
    let rows: Vec<&[Data]> = range.rows().collect();
    assert_eq!(rows.len(), 8);
    let headers: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
    assert_eq!(headers.len(), s.columns);
    let mut completed = 0;
    for row in &rows[1..] {
        if row[col(&headers, "status")] != Data::String("completed".into()) {
            continue;
        }
        completed += 1;
        let cik = row[col(&headers, "cik")].as_f64().unwrap() as u64;
        let year = row[col(&headers, "fiscal_year")].as_f64().unwrap() as i32;
        let stored = result_json(cik, year);
        assert_eq!(
            row[col(&headers, "moat.rating")].to_string(),
            stored["moat"]["rating"].as_str().unwrap()
        );
        // A real negative number is a number cell.
        assert_eq!(
            row[col(&headers, "score")],
            Data::Float(stored["score"].as_i64().unwrap() as f64)
        );
        assert!(matches!(row[col(&headers, "growth")], Data::Float(_)));
        assert_eq!(row[col(&headers, "note")], Data::String("'+1".into()));
        assert_eq!(row[col(&headers, "calc")], Data::String("'-2+3".into()));
        assert_eq!(
            row[col(&headers, "sum")],
            Data::String("'@SUM(A1:A2)".into())
        );
        assert!(row[col(&headers, "summary")]
            .to_string()
            .ends_with("=HYPERLINK(\"http://evil\")"));
    }
    assert_eq!(completed, 4);
}

#[cfg(feature = "parquet")]
#[test]
fn parquet_reads_back_with_the_parquet_reader() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path());
    let path = dir.path().join("out.parquet");
    let s = to_file(&store, &query(StatusFilter::All), Format::Parquet, &path);
    assert_eq!(s.rows, 7);
    let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(reader.metadata().file_metadata().num_rows(), 7);
    assert_eq!(
        reader
            .metadata()
            .file_metadata()
            .schema_descr()
            .num_columns(),
        s.columns
    );
    let mut completed = 0;
    for row in reader.get_row_iter(None).unwrap() {
        let row = row.unwrap();
        let get = |name: &str| {
            row.get_column_iter()
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, f)| f.clone())
                .unwrap_or_else(|| panic!("no column {name}"))
        };
        if get("status") != Field::Str("completed".into()) {
            assert_eq!(get("moat.rating"), Field::Null);
            continue;
        }
        completed += 1;
        let Field::Long(cik) = get("cik") else {
            panic!("cik not Int64")
        };
        let Field::Long(year) = get("fiscal_year") else {
            panic!("year not Int64")
        };
        let stored = result_json(cik as u64, year as i32);
        assert_eq!(
            get("moat.rating"),
            Field::Str(stored["moat"]["rating"].as_str().unwrap().into())
        );
        assert_eq!(get("score"), Field::Str(stored["score"].to_string()));
        assert_eq!(get("prompt_tokens"), Field::Long(1000 + year));
        assert_eq!(get("calc"), Field::Str("-2+3".into()));
    }
    assert_eq!(completed, 4);
}

#[test]
fn existing_file_is_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path());
    let path = dir.path().join("out.csv");
    std::fs::write(&path, "precious").unwrap();
    let err = export(
        &store,
        &query(StatusFilter::Completed),
        Format::Csv,
        Output::Path {
            path: path.clone(),
            force: false,
        },
    )
    .unwrap_err();
    assert!(matches!(err, ExportError::AlreadyExists(_)), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    let s = export(
        &store,
        &query(StatusFilter::Completed),
        Format::Csv,
        Output::Path {
            path: path.clone(),
            force: true,
        },
    )
    .unwrap();
    assert_eq!(s.rows, 4);
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .starts_with("batch_id,"));
    // Nothing but the export itself is left in the directory (no temporary files).
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("fintel-export"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn bad_outputs_are_clear_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path());
    let q = query(StatusFilter::Completed);
    let err = export(&store, &q, Format::Xlsx, Output::Stdout(&mut Vec::new())).unwrap_err();
    assert!(
        err.to_string().contains("cannot be written to stdout"),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("XLSX "),
        "named as people write it: {err}"
    );
    let missing = dir.path().join("no/such/dir/out.csv");
    let err = export(
        &store,
        &q,
        Format::Csv,
        Output::Path {
            path: missing.clone(),
            force: false,
        },
    )
    .unwrap_err();
    assert!(matches!(err, ExportError::NoDirectory(_)), "{err}");
    let err = export(
        &store,
        &q,
        Format::Csv,
        Output::Path {
            path: dir.path().to_path_buf(),
            force: true,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");
    assert!(Format::parse("xls")
        .unwrap_err()
        .to_string()
        .contains("csv, jsonl"));
    assert!(StatusFilter::parse("done")
        .unwrap_err()
        .to_string()
        .contains("completed"));
    assert_eq!(Format::parse(" XLSX ").unwrap(), Format::Xlsx);
    // A corrupt stored JSON is reported with its key and leaves no file.
    store
        .conn()
        .execute(
            "UPDATE results SET json = '{broken' WHERE result_key = '320193-2024-moat'",
            [],
        )
        .unwrap();
    let out = dir.path().join("bad.csv");
    let err = export(
        &store,
        &q,
        Format::Csv,
        Output::Path {
            path: out.clone(),
            force: false,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("320193-2024-moat"), "{err}");
    assert!(!out.exists());
}

fn xlsx_text(path: &Path) -> String {
    use calamine::{open_workbook, Reader, Xlsx};
    let mut wb: Xlsx<_> = open_workbook(path).unwrap();
    let range = wb.worksheet_range("results").unwrap();
    range
        .rows()
        .flatten()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn has_google_key(bytes: &[u8]) -> bool {
    bytes.windows(24).any(|w| {
        w.starts_with(b"AIza")
            && w[4..]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
    })
}

#[test]
fn exports_never_carry_api_keys_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path());
    let key = "AIzaSyD-0123456789abcdefghijklmnopqrs";
    // A clean store exports no key-shaped text.
    let mut all = Vec::new();
    for format in [Format::Csv, Format::Jsonl, Format::Xlsx, Format::Parquet] {
        if format == Format::Parquet && !cfg!(feature = "parquet") {
            continue;
        }
        let path = dir.path().join(format!("clean.{format:?}"));
        to_file(&store, &query(StatusFilter::All), format, &path);
        all.push(std::fs::read(&path).unwrap());
    }
    assert!(all.iter().all(|b| !has_google_key(b)));
    // A key that slipped into a reason and into a model answer is masked everywhere.
    store
        .conn()
        .execute(
            "UPDATE tasks SET reason = ?1 WHERE reason IS NOT NULL",
            [format!("HTTP 400 for key {key}")],
        )
        .unwrap();
    store
        .conn()
        .execute(
            "UPDATE results SET json = json_set(json, '$.moat.rating', ?1)",
            [format!("see sk-abcdefghijklmnopqrstuvwxyz and {key}")],
        )
        .unwrap();
    for format in [Format::Csv, Format::Jsonl, Format::Xlsx, Format::Parquet] {
        if format == Format::Parquet && !cfg!(feature = "parquet") {
            continue;
        }
        let path = dir.path().join(format!("dirty.{format:?}"));
        to_file(&store, &query(StatusFilter::All), format, &path);
        let bytes = std::fs::read(&path).unwrap();
        if format == Format::Csv || format == Format::Jsonl {
            let text = String::from_utf8(bytes.clone()).unwrap();
            assert!(text.contains("AIza…pqrs"), "{format:?}: {text}");
            assert!(!text.contains("sk-abcdefghijklmnopqrstuvwxyz"));
        }
        assert!(!has_google_key(&bytes), "{format:?} leaks the key");
        if format == Format::Xlsx {
            // The file is zipped, so look at the cell text itself.
            let text = xlsx_text(&path);
            assert!(
                text.contains("AIza…pqrs") && text.contains("sk-…wxyz"),
                "{text}"
            );
            assert!(!has_google_key(text.as_bytes()) && !text.contains("sk-abcdefghij"));
        }
    }
    let views = results_view(&store, "aapl", None, None).unwrap();
    let text = render_text(&views);
    assert!(!text.contains(key) && text.contains("AIza…pqrs"), "{text}");
}

#[test]
fn results_view_by_ticker_or_cik_renders_readably() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path());
    let by_ticker = results_view(&store, "aapl", None, None).unwrap();
    assert_eq!(by_ticker.len(), 2);
    assert_eq!(by_ticker[0].fiscal_year, Some(2024));
    assert_eq!(by_ticker[0].result, result_json(320193, 2024));
    let by_cik = results_view(&store, "0000320193", Some(2023), Some("moat")).unwrap();
    assert_eq!(by_cik.len(), 1);
    assert_eq!(by_cik[0], by_ticker[1]);
    assert!(results_view(&store, "NOPE", None, None).unwrap().is_empty());
    assert!(results_view(&store, "  ", None, None).is_err());
    let json = serde_json::to_value(&by_ticker).unwrap();
    assert_eq!(json[0]["cik"], 320193);

    let text = render_text(&by_ticker);
    assert!(
        text.starts_with("AAPL Company 320193 (CIK 320193)"),
        "{text}"
    );
    assert!(text.contains("== FY2024 · moat =="), "{text}");
    assert!(
        text.contains("  Moat:\n    Rating: wide\n    Sources:\n      - brand\n"),
        "{text}"
    );
    assert!(text.contains("  Score: -24\n"), "{text}");
    assert!(
        text.contains("form 10-K, accession 0000320193-2024-000001, model gemini-test, version abcdef012345, tokens 3024 in / 200 out / 50 thinking"),
        "{text}"
    );
    assert_eq!(render_text(&[]), "No stored results match.\n");
}

#[cfg(not(feature = "parquet"))]
#[test]
fn parquet_without_the_feature_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path());
    let path = dir.path().join("out.parquet");
    let err = export(
        &store,
        &query(StatusFilter::All),
        Format::Parquet,
        Output::Path {
            path: path.clone(),
            force: false,
        },
    )
    .unwrap_err();
    assert!(matches!(err, ExportError::ParquetDisabled), "{err}");
    assert!(!path.exists());
}

/// A `fundamental` answer with its fields in an order unlike the schema's (as an
/// OpenAI-compatible server or an older row may store it).
fn fundamental_answer(year: i32, debt: f64) -> Value {
    json!({
        "score": 7,
        "balance_sheet": {"strength": "very_strong", "commentary": "Net cash.", "net_debt": -50.0,
                          "total_debt": debt, "cash_and_investments": 960.9},
        "business_model": "Sells widgets.",
        "cash_flow_quality": {"quality": "high", "commentary": "Converts.", "free_cash_flow": 80.0,
                              "capital_expenditures": 20.0, "operating_cash_flow": 100.0},
        "capital_allocation": {"assessment": "good", "commentary": "Buybacks.", "acquisitions": null,
                               "share_repurchases": 10.0, "dividends_paid": 5.0},
        "margins": {"trend": "expanding", "commentary": "Mix.", "net_margin_pct": 12.5,
                    "operating_margin_pct": 20.26, "gross_margin_pct": 40.0 + f64::from(year - 2020)},
        "management_tone": {"assessment": "candid", "evidence": "Says so."},
        "reporting_currency": "USD",
        "revenue_drivers": [{"direction": "growing", "evidence": "Units up.", "driver": "Volume"}],
        "risks": [{"severity": "high", "evidence": "One plant.", "category": "operational", "risk": "Fire"}],
        "score_rationale": "Strong balance sheet.",
        "summary": format!("Widgets sold well in {year}."),
    })
}

/// A store with a `fundamental` batch pinned from the built-in workflow and two years of
/// results stored in a scrambled field order.
fn fundamental_store(dir: &Path) -> Store {
    let registry = fintel_workflows::Registry::load(&[]).unwrap();
    let workflow = registry.get("fundamental").unwrap();
    let store = Store::open(&dir.join("fintel.db")).unwrap();
    let batch = NewBatch {
        id: "b-fund".into(),
        name: None,
        analysis_type: "fundamental".into(),
        analysis_version: workflow.version.clone(),
        workflow: workflow.canonical.clone(),
        min_years: 1,
        years_spec: r#"{"latest": 2}"#.into(),
        as_of_date: "2026-03-01".into(),
        model: "gemini-test".into(),
        settings: "{}".into(),
        priority: 0,
        input_file: None,
        companies: vec![company("ACME", Some(1001), None)],
    };
    store.create_batch(&batch, now()).unwrap();
    while let Some(task) = store.claim_next("b-fund", OWNER, now(), true).unwrap() {
        match task.kind {
            fintel_store::TaskKind::Resolve => {
                let plans: Vec<YearPlan> = [2024, 2023]
                    .into_iter()
                    .map(|y| YearPlan {
                        fiscal_year: y,
                        filing: Some(FilingRef {
                            accession: format!("0000001001-{y}-000001"),
                            form: "10-K".into(),
                            period: Some(format!("{y}-12-31")),
                            filed: Some(format!("{}-02-01", y + 1)),
                            document_url: format!("https://example.test/1001/{y}.htm"),
                            transition: false,
                        }),
                        skip_reason: None,
                    })
                    .collect();
                store
                    .complete_resolution(task.id, OWNER, &plans, true, false, Some("Acme"), now())
                    .unwrap();
            }
            _ => {
                let year = task.fiscal_year.unwrap();
                let filing = task.filing.clone().unwrap();
                let result = NewResult {
                    result_key: format!("1001-{year}-fundamental"),
                    cik: 1001,
                    ticker: task.ticker.clone(),
                    company_name: task.company_name.clone(),
                    fiscal_year: Some(year),
                    fiscal_year_label: None,
                    form: Some(filing.form.clone()),
                    accession: Some(filing.accession.clone()),
                    analysis_type: "fundamental".into(),
                    analysis_version: workflow.version.clone(),
                    model: "gemini-test".into(),
                    json: fundamental_answer(year, 910.94).to_string(),
                    prompt_tokens: 1000,
                    output_tokens: 200,
                    thinking_tokens: 50,
                    attempts: 1,
                    calls: 1,
                    document_url: Some(filing.document_url.clone()),
                    document_sha256: None,
                    fitting: None,
                    started_at: Some(now()),
                    supersede: false,
                    request_params: None,
                };
                store
                    .complete_with_result(task.id, OWNER, &result, now())
                    .unwrap();
            }
        }
    }
    store
}

/// The top-level field order of the `fundamental` schema, summary and score first.
const FUNDAMENTAL_READING_ORDER: [&str; 12] = [
    "summary",
    "score",
    "score_rationale",
    "reporting_currency",
    "business_model",
    "revenue_drivers",
    "margins",
    "balance_sheet",
    "cash_flow_quality",
    "capital_allocation",
    "risks",
    "management_tone",
];

#[test]
fn results_follow_the_schema_order_with_summary_and_score_first_and_read_with_units() {
    let dir = tempfile::tempdir().unwrap();
    let store = fundamental_store(dir.path());
    let views = results_view(&store, "ACME", None, None).unwrap();
    assert_eq!(views.len(), 2);
    let keys: Vec<&str> = views[0]
        .result
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, FUNDAMENTAL_READING_ORDER);
    let margins: Vec<&str> = views[0].result["margins"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        margins,
        [
            "gross_margin_pct",
            "operating_margin_pct",
            "net_margin_pct",
            "commentary",
            "trend"
        ]
    );
    // `--json` prints the same order.
    let printed = serde_json::to_string(&views[0]).unwrap();
    let summary_at = printed.find("\"summary\"").unwrap();
    let score_at = printed.find("\"score\"").unwrap();
    let currency_at = printed.find("\"reporting_currency\"").unwrap();
    assert!(summary_at < score_at && score_at < currency_at, "{printed}");

    let text = render_text(&views);
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from:\n{text}"))
    };
    assert!(at("  Summary: Widgets sold well in 2024.") < at("  Score: 7\n"));
    assert!(at("  Score: 7\n") < at("  Score rationale: Strong balance sheet."));
    assert!(at("  Score rationale:") < at("  Reporting currency: USD"));
    assert!(at("  Reporting currency: USD") < at("  Business model:"));
    assert!(text.contains("    Total debt: USD 910.9 M\n"), "{text}");
    assert!(text.contains("    Net debt: USD -50.0 M\n"), "{text}");
    assert!(text.contains("    Gross margin (%): 44%\n"), "{text}");
    assert!(text.contains("    Operating margin (%): 20.3%\n"), "{text}");
    assert!(text.contains("    Strength: Very strong\n"), "{text}");
    assert!(text.contains("    Acquisitions: -\n"), "{text}");
    assert!(text.contains("      Direction: Growing\n"), "{text}");

    // Exports: the same order in CSV columns and JSONL objects, values left raw.
    let csv_path = dir.path().join("out.csv");
    export(
        &store,
        &ExportQuery {
            batch_id: Some("b-fund".into()),
            ..ExportQuery::default()
        },
        Format::Csv,
        Output::Path {
            path: csv_path.clone(),
            force: false,
        },
    )
    .unwrap();
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let result_columns = &headers[IDENTIFYING_COLUMNS.len()..];
    assert_eq!(
        &result_columns[..5],
        [
            "summary",
            "score",
            "score_rationale",
            "reporting_currency",
            "business_model"
        ]
    );
    assert_eq!(
        &result_columns[6..9],
        [
            "margins.gross_margin_pct",
            "margins.operating_margin_pct",
            "margins.net_margin_pct"
        ]
    );
    let total_debt = headers
        .iter()
        .position(|h| h == "balance_sheet.total_debt")
        .unwrap();
    let first = reader.records().next().unwrap().unwrap();
    assert_eq!(&first[total_debt], "910.94", "exports keep raw numbers");

    let mut jsonl = Vec::new();
    export(
        &store,
        &ExportQuery {
            batch_id: Some("b-fund".into()),
            ..ExportQuery::default()
        },
        Format::Jsonl,
        Output::Stdout(&mut jsonl),
    )
    .unwrap();
    let line: Value = serde_json::from_slice(jsonl.split(|b| *b == b'\n').next().unwrap()).unwrap();
    let keys: Vec<&str> = line["result"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, FUNDAMENTAL_READING_ORDER);
}

#[cfg(unix)]
#[test]
fn an_exported_file_follows_the_umask_not_a_private_temporary_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path());
    // The test process's umask (whatever it is) decides, as it would for any file the user
    // writes: 0666 less the umask. Read it without changing it for other tests.
    let probe = dir.path().join("probe");
    std::fs::write(&probe, b"x").unwrap();
    let expected = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
    for format in [Format::Csv, Format::Xlsx] {
        let path = dir.path().join(format!("out.{format}"));
        to_file(&store, &query(StatusFilter::All), format, &path);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, expected, "{format}: {mode:o}, expected {expected:o}");
    }
}
