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
    // Version 3: the `waiting_disk` state (paused while free disk space is low). SQLite cannot
    // alter a CHECK constraint, so the table is rebuilt; `migrate` turns foreign keys off
    // around it so that dropping the old table cascades to nothing.
    r#"
CREATE TABLE batches_v3 (
    id               TEXT PRIMARY KEY,
    name             TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending','running','waiting_reset',
                         'waiting_provider','waiting_disk','stopped','cancelled','completed')),
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
INSERT INTO batches_v3 SELECT * FROM batches;
DROP TABLE batches;
ALTER TABLE batches_v3 RENAME TO batches;
"#,
    // Lifecycle: which batch a process works on and where it runs (so a batch with a live
    // process waiting for the reset, holding no lease, is known to be running), and the answers
    // a forced redo superseded (paid for, so never dropped).
    r#"
ALTER TABLE owners ADD COLUMN batch_id TEXT;
ALTER TABLE owners ADD COLUMN host TEXT;
CREATE INDEX owners_batch ON owners (batch_id);
CREATE TABLE superseded_results (
    id                INTEGER PRIMARY KEY,
    result_id         INTEGER NOT NULL,
    superseded_at     INTEGER NOT NULL,
    result_key        TEXT NOT NULL,
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
CREATE INDEX superseded_results_result ON superseded_results (result_id);
"#,
    // Quota in real weather: when a task's streak of transient failures began (a task fails
    // for them only once the streak spans a minimum time), and the provider's token counts of
    // the requests it measured, so a document is measured once.
    r#"
ALTER TABLE tasks ADD COLUMN transient_since INTEGER;
CREATE TABLE token_counts (
    request_sha256 TEXT NOT NULL,
    model          TEXT NOT NULL,
    tokens         INTEGER NOT NULL,
    counted_at     INTEGER NOT NULL,
    PRIMARY KEY (request_sha256, model)
);
"#,
    // Screening (`fintel screen`) takes each company's latest result of one analysis type:
    // this index hands them over in order, without reading every result.
    r#"
CREATE INDEX results_type_cik_year ON results (analysis_type, cik, fiscal_year, created_at);
"#,
    // Keys that share a Google Cloud project: the project each key was seen in (by key
    // fingerprint, never the key), the merges said once, and the per-day refusals with how
    // many requests the bucket had answered that day.
    r#"
CREATE TABLE key_projects (
    fingerprint TEXT PRIMARY KEY,
    project     TEXT NOT NULL,
    learned_at  INTEGER NOT NULL
);
CREATE INDEX key_projects_project ON key_projects (project);
CREATE TABLE project_merges (
    project     TEXT NOT NULL,
    members     TEXT NOT NULL,
    merged_into TEXT NOT NULL,
    message     TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (project, members)
);
CREATE TABLE daily_refusals (
    bucket           TEXT NOT NULL,
    quota_date       TEXT NOT NULL,
    answered         INTEGER NOT NULL,
    requests_per_day INTEGER NOT NULL,
    spent_elsewhere  INTEGER NOT NULL DEFAULT 0,
    at               INTEGER NOT NULL,
    PRIMARY KEY (bucket, quota_date)
);
"#,
    // A pending task waiting for a bucket whose token cap fits its request (the buckets with
    // quota left are too small for it): the request's size, so the batch and `fintel keys`
    // can say what it waits for. Cleared by any other release or retry.
    r#"
ALTER TABLE tasks ADD COLUMN waiting_tokens INTEGER;
"#,
    // Request packing (SPEC.md section 12): a year whose packed part was bad goes alone from
    // then on (`pack_alone`); a result records the packed call it came from and the fiscal
    // years packed with it; `ledger_tasks` links one packed call's ledger row to every task
    // it carried.
    r#"
ALTER TABLE tasks ADD COLUMN pack_alone INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN call_id INTEGER;
ALTER TABLE results ADD COLUMN packed_with TEXT;
ALTER TABLE superseded_results ADD COLUMN call_id INTEGER;
ALTER TABLE superseded_results ADD COLUMN packed_with TEXT;
CREATE TABLE ledger_tasks (
    call_id INTEGER NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    task_id INTEGER NOT NULL,
    PRIMARY KEY (call_id, task_id)
);
CREATE INDEX ledger_tasks_task ON ledger_tasks (task_id);
"#,
    // A retry inside an attempt (the repair of an unusable answer, the same request with less
    // thinking after a cut-off one) that must wait for quota keeps its state here, so the wait
    // may outlive the process: the attempt it belongs to, the tasks of the call (a pack's, in
    // order), the lower thinking, the answer to repair with what was wrong with it, and the
    // calls and tokens the attempt has spent so far (its result counts them all).
    r#"
CREATE TABLE retry_states (
    task_id          INTEGER PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
    attempt          INTEGER NOT NULL,
    carried          TEXT NOT NULL DEFAULT '',
    thinking_lowered INTEGER NOT NULL DEFAULT 0,
    repair_answer    TEXT,
    repair_problem   TEXT,
    calls            INTEGER NOT NULL DEFAULT 0,
    prompt_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens    INTEGER NOT NULL DEFAULT 0,
    thinking_tokens  INTEGER NOT NULL DEFAULT 0,
    updated_at       INTEGER NOT NULL
);
"#,
    // A batch whose model was retired goes on with another one
    // (`--resume ID --switch-model NEW`); each switch is kept, and every result keeps its own
    // model.
    r#"
CREATE TABLE model_switches (
    id         INTEGER PRIMARY KEY,
    batch_id   TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    from_model TEXT NOT NULL,
    to_model   TEXT NOT NULL
);
CREATE INDEX model_switches_batch ON model_switches (batch_id, at);
"#,
    // Request parameters a provider refused for a model (dropped or renamed from then on, by
    // every process), and the parameters each result was asked with, so a study can be
    // re-run. Results stored before this have none recorded (NULL).
    r#"
CREATE TABLE learned_params (
    provider   TEXT NOT NULL,
    model      TEXT NOT NULL,
    param      TEXT NOT NULL,
    action     TEXT NOT NULL,
    message    TEXT,
    learned_at INTEGER NOT NULL,
    PRIMARY KEY (provider, model, param)
);
ALTER TABLE results ADD COLUMN request_params TEXT;
ALTER TABLE superseded_results ADD COLUMN request_params TEXT;
"#,
    // Usage belongs to keys: a bucket's counts are the rows of the keys it holds now, however
    // they are grouped. Rows written without a fingerprint take their bucket's one key where
    // the bucket had exactly one, else the bucket's key-less fingerprint (a local server's
    // bucket); the indexes serve the key pool's reads by key.
    r#"
UPDATE calls SET key_fingerprint = COALESCE(
    (SELECT MIN(k.fingerprint) FROM keys k WHERE k.bucket = calls.bucket
     HAVING COUNT(*) = 1),
    'keyless:' || bucket)
WHERE key_fingerprint IS NULL;
CREATE INDEX calls_key_day ON calls (key_fingerprint, quota_date);
CREATE INDEX calls_key_sent ON calls (key_fingerprint, sent_at);
"#,
    // The claim of work that needs no model (made on every wake while the keys are spent or
    // paced) reads the few such pending tasks in claim order instead of walking every pending
    // task of the batch to find none.
    r#"
CREATE INDEX tasks_claim_free ON tasks
    (batch_id, state, priority DESC, (kind = 'aggregate'), company_id, fiscal_year DESC)
    WHERE needs_model = 0;
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
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    // Table rebuilds must not cascade: foreign keys are off while migrating (the pragma has
    // no effect inside a transaction, hence here), and checked before they are back on.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let migrated = (|| {
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            // IMMEDIATE: two processes opening an old database at once take turns instead of
            // one failing with SQLITE_BUSY when its read lock cannot be upgraded.
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // Another process may have applied this step while this one waited for the lock.
            let now_at: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if now_at > i as i64 {
                continue;
            }
            tx.execute_batch(sql)?;
            let broken: i64 =
                tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                    r.get(0)
                })?;
            if broken > 0 {
                return Err(StoreError::Invalid(format!(
                    "schema upgrade to version {} would leave {broken} broken reference(s); \
                     the database was left at version {}",
                    i + 1,
                    i
                )));
            }
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    })();
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrated
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database of the release before learned parameters opens and keeps its results, which
    /// have no request parameters recorded.
    #[test]
    fn results_stored_before_request_params_keep_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("before.db");
        let before = MIGRATIONS
            .iter()
            .position(|m| m.contains("CREATE TABLE learned_params"))
            .unwrap();
        {
            let mut conn = Connection::open(&path).unwrap();
            let tx = conn.transaction().unwrap();
            for sql in &MIGRATIONS[..before] {
                tx.execute_batch(sql).unwrap();
            }
            tx.pragma_update(None, "user_version", before as i64)
                .unwrap();
            tx.execute_batch(
                "INSERT INTO results (result_key, cik, analysis_type, analysis_version, model, \
                   json, created_at) VALUES ('k1', 1, 't', 'v', 'm', '{}', 1);",
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn).unwrap();
        let (n, params): (i64, Option<String>) = conn
            .query_row(
                "SELECT COUNT(*), MAX(request_params) FROM results",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((n, params), (1, None));
        let learned: i64 = conn
            .query_row("SELECT COUNT(*) FROM learned_params", [], |r| r.get(0))
            .unwrap();
        assert_eq!(learned, 0);
    }

    /// A version-2 database with a batch, a company and a task keeps every row through the
    /// rebuild of `batches`: dropping the old table must not cascade.
    #[test]
    fn version_3_rebuild_keeps_every_row_and_allows_waiting_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "foreign_keys", "ON").unwrap();
            let tx = conn.transaction().unwrap();
            tx.execute_batch(MIGRATIONS[0]).unwrap();
            tx.execute_batch(MIGRATIONS[1]).unwrap();
            tx.pragma_update(None, "user_version", 2).unwrap();
            tx.execute_batch(
                "INSERT INTO batches (id, created_at, updated_at, state, analysis_type,
                     analysis_version, workflow, years_spec, as_of_date, model, settings)
                 VALUES ('b1', 1, 1, 'running', 'fundamental', 'v', '{}', '{}', '2026-01-01',
                     'm', '{}');
                 INSERT INTO companies (id, batch_id, ticker, cik) VALUES (1, 'b1', 'AAPL', 320193);
                 INSERT INTO tasks (batch_id, company_id, kind, state, created_at, updated_at)
                 VALUES ('b1', 1, 'year', 'pending', 1, 1);",
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let mut conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        migrate(&mut conn).unwrap();
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("PRAGMA user_version"), SCHEMA_VERSION);
        assert_eq!(count("SELECT COUNT(*) FROM batches"), 1);
        assert_eq!(count("SELECT COUNT(*) FROM companies"), 1);
        assert_eq!(count("SELECT COUNT(*) FROM tasks"), 1);
        assert_eq!(count("PRAGMA foreign_keys"), 1, "foreign keys are back on");
        conn.execute("UPDATE batches SET state = 'waiting_disk'", [])
            .unwrap();
        assert!(conn
            .execute("UPDATE batches SET state = 'sleeping'", [])
            .is_err());
        // Deleting the batch still cascades to its companies and tasks.
        conn.execute("DELETE FROM batches", []).unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM tasks"), 0);
    }

    /// A database written before usage belonged to keys opens with every count it had: rows
    /// without a fingerprint go to their bucket's one key, or stay with the bucket (a group,
    /// a local server) through its key-less fingerprint.
    #[test]
    fn ledger_rows_of_an_older_database_keep_their_counts_by_key() {
        let by_key = MIGRATIONS
            .iter()
            .position(|m| m.contains("calls_key_day"))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            let tx = conn.transaction().unwrap();
            for m in &MIGRATIONS[..by_key] {
                tx.execute_batch(m).unwrap();
            }
            tx.pragma_update(None, "user_version", by_key as i64)
                .unwrap();
            tx.execute_batch(
                "INSERT INTO keys (fingerprint, label, bucket) VALUES
                     ('fp-solo', 'K1', 'key-solo'), ('fp-a', 'KA', 'team'),
                     ('fp-b', 'KB', 'team'), ('keyless:local', 'no key', 'local');
                 INSERT INTO calls (bucket, key_fingerprint, purpose, sent_at, quota_date, outcome)
                 VALUES ('key-solo', NULL, 'generate', 1, '2026-06-15', 'ok'),
                        ('key-solo', NULL, 'generate', 2, '2026-06-15', 'ok'),
                        ('team', 'fp-a', 'generate', 3, '2026-06-15', 'ok'),
                        ('team', NULL, 'generate', 4, '2026-06-15', 'ok'),
                        ('local', NULL, 'generate', 5, '2026-06-15', 'ok'),
                        ('gone', NULL, 'generate', 6, '2026-06-15', 'ok');",
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let store = crate::Store::open(&path).unwrap();
        let at = jiff::Timestamp::from_millisecond(10).unwrap();
        let used = |bucket: &str, keys: &[&str]| -> u32 {
            let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            store
                .bucket_usage(bucket, &keys, at, "2026-06-15")
                .unwrap()
                .used_today
        };
        assert_eq!(used("key-solo", &["fp-solo"]), 2);
        assert_eq!(
            used("renamed", &["fp-solo"]),
            2,
            "the key's rows follow the key"
        );
        assert_eq!(used("team", &["fp-a", "fp-b"]), 2);
        assert_eq!(used("local", &[]), 1);
        assert_eq!(used("gone", &[]), 1);
        let unnamed: i64 = store
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM calls WHERE key_fingerprint IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(unnamed, 0);
    }

    /// A database of the release before the index of quota-free claims opens with its tasks,
    /// and the new index holds exactly those that need no model.
    #[test]
    fn tasks_of_an_older_database_keep_their_rows_under_the_quota_free_claim_index() {
        let at = MIGRATIONS
            .iter()
            .position(|m| m.contains("tasks_claim_free"))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            let tx = conn.transaction().unwrap();
            for m in &MIGRATIONS[..at] {
                tx.execute_batch(m).unwrap();
            }
            tx.pragma_update(None, "user_version", at as i64).unwrap();
            tx.execute_batch(
                "INSERT INTO batches (id, created_at, updated_at, state, analysis_type,
                     analysis_version, workflow, years_spec, as_of_date, model, settings)
                 VALUES ('b1', 1, 1, 'running', 't', 'v', '', '{}', '2026-01-01', 'm', '{}');
                 INSERT INTO companies (id, batch_id, ticker, cik) VALUES (1, 'b1', 'ACME', 42);
                 INSERT INTO tasks (batch_id, company_id, kind, fiscal_year, needs_model, state,
                     created_at, updated_at)
                 VALUES ('b1', 1, 'year', 2022, 1, 'pending', 1, 1),
                        ('b1', 1, 'year', 2023, 0, 'pending', 1, 1),
                        ('b1', 1, 'year', 2024, 1, 'completed', 1, 1);",
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let store = crate::Store::open(&path).unwrap();
        let conn = store.conn();
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("PRAGMA user_version"), SCHEMA_VERSION);
        assert_eq!(count("SELECT COUNT(*) FROM tasks"), 3);
        assert_eq!(
            count("SELECT COUNT(*) FROM tasks INDEXED BY tasks_claim_free WHERE needs_model = 0"),
            1
        );
    }
}
