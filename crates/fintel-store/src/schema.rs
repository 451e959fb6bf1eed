//! The schema and its versioned migrations.
//!
//! The version is SQLite's `user_version`. Each migration moves the schema one version up inside
//! a transaction; a database newer than this build is refused rather than guessed at.

use rusqlite::Connection;

use crate::StoreError;

/// Migrations in order; migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    r#"
CREATE TABLE batches (
    id               TEXT PRIMARY KEY,
    name             TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending','running','waiting_reset',
                         'waiting_provider','stopped','cancelled','completed')),
    state_reason     TEXT,
    analysis_type    TEXT NOT NULL,
    analysis_version TEXT NOT NULL,
    workflow         TEXT NOT NULL,
    min_years        INTEGER NOT NULL DEFAULT 1,
    years_spec       TEXT NOT NULL,
    as_of_date       TEXT NOT NULL,
    model            TEXT NOT NULL,
    settings         TEXT NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    stop_requested   INTEGER NOT NULL DEFAULT 0,
    input_file       TEXT
);

CREATE TABLE companies (
    id           INTEGER PRIMARY KEY,
    batch_id     TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
    line_no      INTEGER,
    ticker       TEXT,
    cik          INTEGER,
    company_name TEXT,
    priority     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (batch_id, cik)
);

CREATE TABLE results (
    id                INTEGER PRIMARY KEY,
    result_key        TEXT NOT NULL UNIQUE,
    cik               INTEGER NOT NULL,
    ticker            TEXT,
    company_name      TEXT,
    fiscal_year       INTEGER,
    fiscal_year_label TEXT,
    form              TEXT,
    accession         TEXT,
    analysis_type     TEXT NOT NULL,
    analysis_version  TEXT NOT NULL,
    model             TEXT NOT NULL,
    json              TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    output_tokens     INTEGER NOT NULL DEFAULT 0,
    thinking_tokens   INTEGER NOT NULL DEFAULT 0,
    attempts          INTEGER NOT NULL DEFAULT 0,
    calls             INTEGER NOT NULL DEFAULT 0,
    document_url      TEXT,
    document_sha256   TEXT,
    fitting           TEXT,
    started_at        INTEGER,
    created_at        INTEGER NOT NULL
);
CREATE INDEX results_cik_year ON results (cik, fiscal_year);

CREATE TABLE tasks (
    id            INTEGER PRIMARY KEY,
    batch_id      TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
    company_id    INTEGER NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('resolve','year','aggregate')),
    needs_model   INTEGER NOT NULL DEFAULT 1,
    fiscal_year   INTEGER,
    state         TEXT NOT NULL CHECK (state IN ('pending','running','completed','skipped','failed')),
    priority      INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    reason        TEXT,
    not_before    INTEGER,
    lease_owner   TEXT,
    lease_expires INTEGER,
    accession     TEXT,
    form          TEXT,
    period        TEXT,
    filed         TEXT,
    document_url  TEXT,
    transition    INTEGER NOT NULL DEFAULT 0,
    result_id     INTEGER REFERENCES results(id) ON DELETE SET NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER
);
CREATE INDEX tasks_claim ON tasks (batch_id, state, priority DESC, id);
CREATE INDEX tasks_company ON tasks (company_id, kind);

CREATE TABLE calls (
    id              INTEGER PRIMARY KEY,
    bucket          TEXT NOT NULL,
    key_fingerprint TEXT,
    batch_id        TEXT,
    task_id         INTEGER,
    purpose         TEXT NOT NULL,
    sent_at         INTEGER NOT NULL,
    quota_date      TEXT NOT NULL,
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    outcome         TEXT,
    detail          TEXT,
    refunded        INTEGER NOT NULL DEFAULT 0,
    prompt_tokens   INTEGER,
    output_tokens   INTEGER,
    thinking_tokens INTEGER,
    latency_ms      INTEGER
);
CREATE INDEX calls_bucket_day ON calls (bucket, quota_date);
CREATE INDEX calls_bucket_sent ON calls (bucket, sent_at);
CREATE INDEX calls_task ON calls (task_id);

CREATE TABLE buckets (
    name            TEXT PRIMARY KEY,
    exhausted_until INTEGER,
    backoff_until   INTEGER,
    backoff_level   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE keys (
    fingerprint     TEXT PRIMARY KEY,
    label           TEXT NOT NULL,
    bucket          TEXT NOT NULL,
    disabled_reason TEXT,
    disabled_at     INTEGER
);

CREATE TABLE owners (
    id           TEXT PRIMARY KEY,
    pid          INTEGER NOT NULL,
    lock_path    TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);

CREATE TABLE events (
    id       INTEGER PRIMARY KEY,
    batch_id TEXT,
    at       INTEGER NOT NULL,
    level    TEXT NOT NULL,
    message  TEXT NOT NULL
);
CREATE INDEX events_batch ON events (batch_id, at);
"#,
    // Version 2: indexes that let a claim and the counts avoid sorting or scanning every task
    // of a large batch.
    r#"
CREATE INDEX tasks_claim_order ON tasks
    (batch_id, state, priority DESC, (kind = 'aggregate'), company_id, fiscal_year DESC);
CREATE INDEX tasks_counts ON tasks (batch_id, kind, state);
"#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`SCHEMA_VERSION`], or refuses a newer one.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
