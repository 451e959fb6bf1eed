//! Stored results for screening, written through the store's public API the way the engine
//! writes them: a batch pinning its workflow, resolved filings, yearly results and, for a
//! multi-year type, aggregate results naming the accessions of the years they used.
#![allow(dead_code)]

use fintel_store::{
    ClaimedTask, FilingRef, NewBatch, NewCompany, NewResult, Store, TaskKind, YearPlan,
};
use fintel_workflows::Workflow;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

pub const OWNER: &str = "screen-test";
pub const MODEL: &str = "gemini-2.5-flash";

/// A company of a filled batch.
#[derive(Debug, Clone)]
pub struct Company {
    pub ticker: String,
    pub cik: u64,
    pub name: String,
}

pub fn company(ticker: &str, cik: u64) -> Company {
    Company {
        ticker: ticker.into(),
        cik,
        name: format!("{ticker} Corp."),
    }
}

fn accession(cik: u64, year: i32) -> String {
    format!("{cik:010}-{:02}-{:06}", (year + 1) % 100, year)
}

/// What a task stores: `None` skips the task (no result), as a year without a filing would.
pub type Answer<'a> = dyn FnMut(&ClaimedTask) -> Option<Value> + 'a;

/// Creates batch `batch_id` of `workflow` over `companies` and `years`, and runs every task to
/// its end with the answers of `answer`. Returns the instant after the last write.
pub fn fill(
    store: &Store,
    batch_id: &str,
    workflow: &Workflow,
    companies: &[Company],
    years: &[i32],
    start: Timestamp,
    answer: &mut Answer<'_>,
) -> Timestamp {
    let multi_year = workflow.aggregate.is_some();
    store
        .create_batch(
            &NewBatch {
                id: batch_id.into(),
                name: None,
                analysis_type: workflow.name.clone(),
                analysis_version: workflow.version.clone(),
                workflow: workflow.canonical.clone(),
                min_years: workflow.min_years,
                years_spec: format!(r#"{{"explicit":{years:?}}}"#),
                as_of_date: "2026-06-01".into(),
                model: MODEL.into(),
                settings: "{}".into(),
                priority: 0,
                input_file: None,
                companies: companies
                    .iter()
                    .enumerate()
                    .map(|(i, c)| NewCompany {
                        line_no: Some(i as u64 + 2),
                        ticker: Some(c.ticker.clone()),
                        cik: Some(c.cik),
                        company_name: Some(c.name.clone()),
                        priority: 0,
                        skip_reason: None,
                    })
                    .collect(),
            },
            start,
        )
        .expect("create batch");
    let mut now = start;
    while let Some(task) = store.claim_next(batch_id, OWNER, now, true).expect("claim") {
        now += SignedDuration::from_millis(1);
        let cik = task.cik.expect("cik");
        match task.kind {
            TaskKind::Resolve => {
                let plans: Vec<YearPlan> = years
                    .iter()
                    .map(|&year| YearPlan {
                        fiscal_year: year,
                        filing: Some(FilingRef {
                            accession: accession(cik, year),
                            form: "10-K".into(),
                            period: Some(format!("{year}-12-31")),
                            filed: Some(format!("{}-02-20", year + 1)),
                            document_url: format!(
                                "https://www.sec.gov/Archives/edgar/data/{cik}/{year}.htm"
                            ),
                            transition: false,
                        }),
                        skip_reason: None,
                    })
                    .collect();
                store
                    .complete_resolution(task.id, OWNER, &plans, true, multi_year, None, now)
                    .expect("resolve");
            }
            kind => {
                let Some(json) = answer(&task) else {
                    store
                        .skip_task(task.id, OWNER, "no result wanted", now)
                        .expect("skip");
                    continue;
                };
                let (fiscal_year, accession) = if kind == TaskKind::Aggregate {
                    let used: Vec<String> = years.iter().map(|&y| accession(cik, y)).collect();
                    (years.iter().max().copied(), used.join(","))
                } else {
                    let year = task.fiscal_year.expect("year");
                    (Some(year), accession(cik, year))
                };
                store
                    .complete_with_result(
                        task.id,
                        OWNER,
                        &NewResult {
                            result_key: format!(
                                "{cik}/{}/{}/{}/{MODEL}",
                                accession.replace(',', "+"),
                                workflow.name,
                                workflow.version
                            ),
                            cik,
                            ticker: task.ticker.clone(),
                            company_name: task.company_name.clone(),
                            fiscal_year,
                            accession: Some(accession),
                            analysis_type: workflow.name.clone(),
                            analysis_version: workflow.version.clone(),
                            model: MODEL.into(),
                            json: json.to_string(),
                            attempts: 1,
                            calls: 1,
                            started_at: Some(now),
                            ..Default::default()
                        },
                        now,
                    )
                    .expect("result");
            }
        }
    }
    now
}
