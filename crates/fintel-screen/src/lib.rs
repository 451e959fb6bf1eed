//! fintel-screen: from thousands of stored analyses to a short list.
//!
//! A screen ranks the companies of one analysis type by a field of their results, keeps those
//! that pass every `--where` condition, and cuts the list to the top N. It is the one query
//! behind `fintel screen` and the dashboard's Screen page.
//!
//! Rules a caller must know:
//! - One row per company: its latest fiscal year with a result of the type (or the fiscal year
//!   asked for), and of that year the newest stored result. Conditions test that row; a company
//!   whose latest year fails is left out, not replaced by an older year.
//! - Without a batch, every stored result of the type counts, whatever the version that made it
//!   (a batch pins its version, so results of several versions can be stored). With a batch,
//!   only the results its tasks completed.
//! - A multi-year type is screened on its aggregate results (the judgement over the years), a
//!   single-year type on its yearly results. Aggregate results are those that name several
//!   accession numbers (the engine stores the accessions of the years used, joined by commas);
//!   such a result belongs to the last fiscal year it covers.
//! - The fields are the dotted paths of the type's result schema ([`fields`]): the current
//!   workflow's schema and the schemas pinned by batches of the type, so fields of an older
//!   version can still be screened. With a batch, its pinned schema alone.
//! - Numbers sort numerically, enums by rank in their schema (the first listed the highest),
//!   text alphabetically; missing and null values come last in either direction. The default
//!   order is descending (best first); ties are broken by ticker.
//! - The latest rows are chosen by SQLite from the index `results_type_cik_year`, and only the
//!   fields a screen needs are read, with SQLite's `->` operator, so a screen of 1,000 companies
//!   x 7 years takes milliseconds.

pub mod condition;
mod error;
pub mod fields;
mod output;

use fintel_store::Store;
use fintel_workflows::{Registry, Workflow};
use rusqlite::types::Value as SqlValue;
use serde::Serialize;
use serde_json::Value;

pub use condition::{parse_condition, Condition, Op, Operand};
pub use error::{ScreenError, OPERATORS};
pub use fields::{value_at, FieldCatalog, FieldKind};
pub use output::{render_table, write_file, FileFormat};

use condition::SortKey;

/// A named screen: EON's scans, kept for its users, and the two legs of a long/short test.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    pub name: &'static str,
    pub description: &'static str,
    pub analysis_type: &'static str,
    pub sort: &'static str,
    pub conditions: &'static [&'static str],
    pub top: usize,
    /// Fields shown beside the sort field (the caller's `--show` replaces them).
    pub show: &'static [&'static str],
}

/// The presets, by name.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "compounders",
        description: "EON's scan: scanner results with an overall alpha score of at least 70 and \
                      confidence at least MEDIUM, the top 20",
        analysis_type: "scanner",
        sort: "overall_alpha_score",
        conditions: &["overall_alpha_score >= 70", "confidence_level >= MEDIUM"],
        top: 20,
        show: &[],
    },
    Preset {
        name: "strong_buys",
        description: "multi results whose verdict is strong_buy, the 20 of highest conviction",
        analysis_type: "multi",
        sort: "conviction",
        conditions: &["verdict = strong_buy"],
        top: 20,
        show: &["verdict", "synthesis.overall_score"],
    },
    Preset {
        name: "shorts",
        description: "multi results whose verdict is sell or strong_sell, the 20 of highest \
                      conviction",
        analysis_type: "multi",
        sort: "conviction",
        conditions: &["verdict <= sell"],
        top: 20,
        show: &["verdict", "synthesis.overall_score"],
    },
];

/// The preset called `name` (case-insensitive).
pub fn preset(name: &str) -> Result<&'static Preset, ScreenError> {
    PRESETS
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name.trim()))
        .ok_or_else(|| ScreenError::UnknownPreset {
            name: name.to_string(),
            available: PRESETS
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// What to screen, as the user wrote it (conditions unparsed: they are read against the
/// type's fields once those are known).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScreenRequest {
    pub analysis_type: String,
    /// The field to rank by.
    pub sort: String,
    /// Lowest first instead of highest first.
    pub ascending: bool,
    /// At most this many rows.
    pub top: Option<usize>,
    /// `FIELD OP VALUE` conditions, all of which a row must pass.
    pub conditions: Vec<String>,
    /// A batch id or unique prefix: only the results of its tasks.
    pub batch_id: Option<String>,
    /// This fiscal year instead of each company's latest.
    pub fiscal_year: Option<i32>,
    /// Further fields to show in each row.
    pub show: Vec<String>,
}

impl ScreenRequest {
    /// A request filled in from a preset; the caller's own sort, top and conditions (added to
    /// the preset's) are applied on top.
    pub fn from_preset(preset: &Preset) -> ScreenRequest {
        ScreenRequest {
            analysis_type: preset.analysis_type.to_string(),
            sort: preset.sort.to_string(),
            top: Some(preset.top),
            conditions: preset.conditions.iter().map(|c| c.to_string()).collect(),
            show: preset.show.iter().map(|c| c.to_string()).collect(),
            ..ScreenRequest::default()
        }
    }
}

/// One company on the short list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScreenRow {
    pub ticker: Option<String>,
    pub cik: u64,
    pub company_name: Option<String>,
    pub fiscal_year: Option<i32>,
    /// The value of the sort field (null when the result lacks it).
    pub value: Value,
    /// The `--show` fields, by path.
    pub fields: serde_json::Map<String, Value>,
    /// The stored result's row id (the dashboard links to it).
    #[serde(skip)]
    pub result_id: i64,
}

/// A screen's outcome.
#[derive(Debug, Clone)]
pub struct Screen {
    /// The type's canonical name (aliases resolved).
    pub analysis_type: String,
    pub sort: String,
    pub sort_kind: FieldKind,
    pub descending: bool,
    pub conditions: Vec<Condition>,
    pub show: Vec<String>,
    pub catalog: FieldCatalog,
    /// Companies with a result before the conditions.
    pub companies: usize,
    /// Companies passing every condition, before the top-N cut.
    pub matched: usize,
    pub rows: Vec<ScreenRow>,
}

/// The workflows a screen of `analysis_type` reads fields from: the registry's current one (if
/// any), then the versions pinned by batches of the type, newest first; with a batch, only its
/// pinned version. Returns the type's canonical name too.
fn schema_sources(
    store: &Store,
    registry: &Registry,
    analysis_type: &str,
    batch: Option<&fintel_store::Batch>,
) -> Result<(String, Vec<Workflow>), ScreenError> {
    if let Some(batch) = batch {
        let pinned =
            Workflow::from_canonical(&batch.workflow).map_err(|e| ScreenError::PinnedWorkflow {
                batch: batch.id.clone(),
                detail: e.to_string(),
            })?;
        return Ok((batch.analysis_type.clone(), vec![pinned]));
    }
    let current = registry.get(analysis_type).ok().cloned();
    let name = current.as_ref().map_or_else(
        || analysis_type.trim().to_ascii_lowercase(),
        |w| w.name.clone(),
    );
    let mut sources: Vec<Workflow> = current.into_iter().collect();
    let conn = store.conn();
    let mut stmt = conn.prepare_cached(
        "SELECT workflow FROM batches WHERE analysis_type = ?1 \
         GROUP BY analysis_version ORDER BY MAX(created_at) DESC",
    )?;
    let pinned: Vec<String> = stmt
        .query_map([&name], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for text in pinned {
        // A pinned copy that no longer loads (written by a different build) only loses its
        // extra fields; the results are still screened by the other schemas.
        if let Ok(workflow) = Workflow::from_canonical(&text) {
            if !sources.iter().any(|w| w.version == workflow.version) {
                sources.push(workflow);
            }
        }
    }
    if sources.is_empty() {
        let stored: i64 = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM results WHERE analysis_type = ?1)",
            [&name],
            |r| r.get(0),
        )?;
        let mut available: Vec<String> = registry.list().iter().map(|w| w.name.clone()).collect();
        let mut stmt = conn.prepare_cached("SELECT DISTINCT analysis_type FROM batches")?;
        for t in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let t = t?;
            if !available.contains(&t) {
                available.push(t);
            }
        }
        return Err(if stored == 1 {
            ScreenError::BadArgument(format!(
                "results of `{name}` are stored, but neither a workflow file nor a batch says \
                 what their fields are; put its workflow file back in the workflows folder"
            ))
        } else {
            ScreenError::UnknownType {
                name: analysis_type.to_string(),
                available,
            }
        });
    }
    Ok((name, sources))
}

/// The fields a screen of `analysis_type` can use (what `--sort`, `--where` and `--show`
/// accept), with the type's canonical name.
pub fn fields_of(
    store: &Store,
    registry: &Registry,
    analysis_type: &str,
    batch_id: Option<&str>,
) -> Result<(String, FieldCatalog), ScreenError> {
    let batch = batch_id.map(|id| store.find_batch(id)).transpose()?;
    let (name, sources) = schema_sources(store, registry, analysis_type, batch.as_ref())?;
    Ok((name, catalog_of(&sources)))
}

fn result_schema(workflow: &Workflow) -> Option<&Value> {
    workflow
        .aggregate
        .as_ref()
        .or(workflow.year.as_ref())
        .map(|step| &step.schema)
}

fn catalog_of(sources: &[Workflow]) -> FieldCatalog {
    let mut catalog = FieldCatalog::default();
    for schema in sources.iter().filter_map(result_schema) {
        catalog.add_schema(schema);
    }
    catalog
}

/// Runs a screen over the stored results. `registry` gives the current workflows (built-ins
/// and the user's files).
pub fn screen(
    store: &Store,
    registry: &Registry,
    request: &ScreenRequest,
) -> Result<Screen, ScreenError> {
    if request.analysis_type.trim().is_empty() {
        return Err(ScreenError::BadArgument(
            "no analysis type; pass --analysis-type T (e.g. scanner) or a --preset".into(),
        ));
    }
    if request.sort.trim().is_empty() {
        return Err(ScreenError::BadArgument(
            "no field to sort by; pass --sort FIELD (e.g. --sort score)".into(),
        ));
    }
    if request.top == Some(0) {
        return Err(ScreenError::BadArgument(
            "--top 0 would list nothing; give a positive number or leave it out".into(),
        ));
    }
    let batch = request
        .batch_id
        .as_deref()
        .map(|id| store.find_batch(id))
        .transpose()?;
    let (name, sources) = schema_sources(store, registry, &request.analysis_type, batch.as_ref())?;
    if let Some(batch) = &batch {
        let asked = registry.get(&request.analysis_type).map_or_else(
            |_| request.analysis_type.trim().to_ascii_lowercase(),
            |w| w.name.clone(),
        );
        if asked != batch.analysis_type {
            return Err(ScreenError::BadArgument(format!(
                "batch {} ran the analysis type {}, not {}; pass --analysis-type {} or another \
                 batch",
                batch.id, batch.analysis_type, request.analysis_type, batch.analysis_type
            )));
        }
    }
    let catalog = catalog_of(&sources);
    let sort = request.sort.trim().to_string();
    let sort_kind = catalog
        .get(&sort)
        .cloned()
        .ok_or_else(|| condition::unknown_field(&sort, &name, &catalog))?;
    if sort_kind == FieldKind::List {
        return Err(ScreenError::NotSortable {
            field: sort,
            sortable: catalog
                .sortable_paths()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        });
    }
    let conditions = request
        .conditions
        .iter()
        .map(|text| parse_condition(text, &name, &catalog))
        .collect::<Result<Vec<_>, _>>()?;
    let mut show = Vec::new();
    for field in request
        .show
        .iter()
        .map(|f| f.trim())
        .filter(|f| !f.is_empty())
    {
        if catalog.get(field).is_none() {
            return Err(condition::unknown_field(field, &name, &catalog));
        }
        if field != sort && !show.iter().any(|s: &String| s == field) {
            show.push(field.to_string());
        }
    }
    let multi_year = sources.first().is_some_and(|w| w.aggregate.is_some());

    // Every path the screen reads, each extracted once by SQLite.
    let mut paths: Vec<&str> = vec![sort.as_str()];
    for path in conditions
        .iter()
        .map(|c| c.field.as_str())
        .chain(show.iter().map(String::as_str))
    {
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    let candidates = latest_results(
        store,
        &name,
        multi_year,
        batch.as_ref().map(|b| b.id.as_str()),
        request.fiscal_year,
        &paths,
    )?;
    let companies = candidates.len();
    let mut kept: Vec<(SortKey, ScreenRow)> = Vec::new();
    for candidate in candidates {
        let value_of = |path: &str| {
            paths
                .iter()
                .position(|p| *p == path)
                .and_then(|i| candidate.values[i].as_ref())
        };
        if !conditions.iter().all(|c| c.matches(value_of(&c.field))) {
            continue;
        }
        let value = value_of(&sort).cloned().unwrap_or(Value::Null);
        let key = SortKey::of(&sort_kind, Some(&value));
        let fields = show
            .iter()
            .map(|f| (f.clone(), value_of(f).cloned().unwrap_or(Value::Null)))
            .collect();
        kept.push((
            key,
            ScreenRow {
                ticker: candidate.ticker,
                cik: candidate.cik,
                company_name: candidate.company_name,
                fiscal_year: candidate.fiscal_year,
                value,
                fields,
                result_id: candidate.id,
            },
        ));
    }
    let descending = !request.ascending;
    kept.sort_by(|(ka, a), (kb, b)| {
        ka.order(kb, descending)
            .then_with(|| a.ticker.cmp(&b.ticker))
            .then_with(|| a.cik.cmp(&b.cik))
    });
    let matched = kept.len();
    let rows = kept
        .into_iter()
        .map(|(_, row)| row)
        .take(request.top.unwrap_or(usize::MAX))
        .collect();
    Ok(Screen {
        analysis_type: name,
        sort,
        sort_kind,
        descending,
        conditions,
        show,
        catalog,
        companies,
        matched,
        rows,
    })
}

/// A company's chosen result with the extracted values of the screen's paths.
struct Candidate {
    id: i64,
    cik: u64,
    ticker: Option<String>,
    company_name: Option<String>,
    fiscal_year: Option<i32>,
    values: Vec<Option<Value>>,
}

/// The latest result of each company (see the crate documentation), with the JSON at each of
/// `paths` as SQLite extracts it.
fn latest_results(
    store: &Store,
    analysis_type: &str,
    multi_year: bool,
    batch_id: Option<&str>,
    fiscal_year: Option<i32>,
    paths: &[&str],
) -> Result<Vec<Candidate>, ScreenError> {
    let sql = latest_sql(multi_year, paths.len());
    let mut params: Vec<SqlValue> = vec![
        SqlValue::Text(analysis_type.to_string()),
        fiscal_year.map_or(SqlValue::Null, |y| SqlValue::Integer(y.into())),
        batch_id.map_or(SqlValue::Null, |b| SqlValue::Text(b.to_string())),
    ];
    params.extend(paths.iter().map(|p| SqlValue::Text(json_path(p))));
    let conn = store.conn();
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| {
        let mut values = Vec::with_capacity(paths.len());
        for i in 0..paths.len() {
            let text: Option<String> = r.get(5 + i)?;
            values.push(
                text.and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .map(mask),
            );
        }
        Ok(Candidate {
            id: r.get(0)?,
            cik: r.get::<_, i64>(1)?.max(0) as u64,
            ticker: r
                .get::<_, Option<String>>(2)?
                .map(|s| fintel_export::mask_keys(&s)),
            company_name: r
                .get::<_, Option<String>>(3)?
                .map(|s| fintel_export::mask_keys(&s)),
            fiscal_year: r.get(4)?,
            values,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The statement behind [`latest_results`]: `?1` the type, `?2` a fiscal year or NULL, `?3` a
/// batch id or NULL, then one parameter per extracted path.
fn latest_sql(multi_year: bool, paths: usize) -> String {
    // `->` returns the JSON text of a value (a string keeps its quotes), so the kind of each
    // value survives the trip; NULL means the path is absent.
    let extracts: String = (0..paths)
        .map(|i| format!(", r.json -> ?{}", i + 4))
        .collect();
    let step = if multi_year {
        "AND instr(COALESCE(accession, ''), ',') > 0"
    } else {
        "AND instr(COALESCE(accession, ''), ',') = 0"
    };
    format!(
        "SELECT r.id, r.cik, r.ticker, r.company_name, r.fiscal_year{extracts} \
         FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY cik \
                   ORDER BY fiscal_year DESC, created_at DESC, id DESC) AS n \
               FROM results \
               WHERE analysis_type = ?1 {step} \
                 AND (?2 IS NULL OR fiscal_year = ?2) \
                 AND (?3 IS NULL OR id IN (SELECT result_id FROM tasks \
                                           WHERE batch_id = ?3 AND result_id IS NOT NULL))) \
               AS latest \
         JOIN results r ON r.id = latest.id \
         WHERE latest.n = 1"
    )
}

/// The SQLite JSON path of a dotted field path; each key is quoted, so no field name can
/// change the path's meaning.
fn json_path(field: &str) -> String {
    let mut path = String::from("$");
    for key in field.split('.') {
        path.push_str(".\"");
        path.push_str(&key.replace('"', ""));
        path.push('"');
    }
    path
}

/// Masks anything that looks like an API key in the text of a value (model output is
/// untrusted).
fn mask(mut value: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::String(s) => *s = fintel_export::mask_keys(s),
            Value::Array(items) => items.iter_mut().for_each(walk),
            Value::Object(map) => map.values_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The latest result of each company comes from the index on (type, CIK, year), not from a
    /// scan of every result.
    #[test]
    fn the_latest_results_are_read_through_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("fintel.db")).unwrap();
        for multi_year in [false, true] {
            let sql = latest_sql(multi_year, 2);
            let conn = store.conn();
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = stmt
                .query_map(
                    rusqlite::params!["scanner", None::<i64>, None::<String>, "$.a", "$.b"],
                    |r| r.get::<_, String>(3),
                )
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("\n");
            assert!(plan.contains("USING INDEX results_type_cik_year"), "{plan}");
            assert!(
                !plan.contains("SCAN results\n") && !plan.ends_with("SCAN results"),
                "{plan}"
            );
        }
    }

    #[test]
    fn json_paths_quote_every_key() {
        assert_eq!(json_path("score"), "$.\"score\"");
        assert_eq!(
            json_path("scores.strategic_anomaly"),
            "$.\"scores\".\"strategic_anomaly\""
        );
        assert_eq!(json_path("a\"b"), "$.\"ab\"");
    }

    #[test]
    fn the_compounders_preset_is_eons_scan() {
        let p = preset("Compounders").unwrap();
        let request = ScreenRequest::from_preset(p);
        assert_eq!(request.analysis_type, "scanner");
        assert_eq!(request.sort, "overall_alpha_score");
        assert_eq!(request.top, Some(20));
        assert!(!request.ascending);
        assert_eq!(
            request.conditions,
            vec!["overall_alpha_score >= 70", "confidence_level >= MEDIUM"]
        );
        let unknown = preset("growth").unwrap_err().to_string();
        assert!(
            unknown.contains("compounders, strong_buys, shorts"),
            "{unknown}"
        );
    }

    #[test]
    fn the_signal_presets_read_multis_verdict_scale() {
        let buys = ScreenRequest::from_preset(preset("strong_buys").unwrap());
        assert_eq!(buys.analysis_type, "multi");
        assert_eq!(buys.sort, "conviction");
        assert_eq!(buys.conditions, vec!["verdict = strong_buy"]);
        assert_eq!(buys.show, vec!["verdict", "synthesis.overall_score"]);
        let shorts = ScreenRequest::from_preset(preset("SHORTS").unwrap());
        assert_eq!(shorts.conditions, vec!["verdict <= sell"]);
        assert!(!shorts.ascending);
    }
}
