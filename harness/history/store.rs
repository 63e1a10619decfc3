//! The history's store: one row per run (its commit, branch, time, machine, server) and one per
//! metric of a run. An embedded SQLite file by default; a PostgreSQL database by URL
//! (`postgres://…`) for a team's shared dashboard. Adding a run is idempotent by its run id.

use crate::history::error::HistoryError;

/// One run as the history keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HistoryRun {
    pub run_id: String,
    pub scenario: String,
    pub server_kind: String,
    pub server_version: String,
    pub database: String,
    /// The server's commit (a checkout's `HEAD`), else its version; `--commit` sets it.
    pub commit: String,
    pub branch: Option<String>,
    /// When the run started (RFC 3339, UTC): the series' order.
    pub started_at: String,
    /// The series' machine: CPU model, cores and memory (GiB).
    pub machine: String,
    /// The whole fingerprint in one line (kernel included), for the reader.
    pub machine_detail: String,
    /// The run's report.html, where it was when the run was added.
    pub report: Option<String>,
    /// Every catalogue metric of the run (time and, where it ran, work).
    pub metrics: Vec<(String, f64)>,
}

/// An open history store.
pub enum Store {
    Sqlite {
        conn: rusqlite::Connection,
        target: String,
    },
    Postgres {
        client: Box<postgres::Client>,
        target: String,
    },
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS history_runs (
    run_id TEXT PRIMARY KEY,
    scenario TEXT NOT NULL,
    server_kind TEXT NOT NULL,
    server_version TEXT NOT NULL,
    database_kind TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    branch TEXT,
    started_at TEXT NOT NULL,
    machine TEXT NOT NULL,
    machine_detail TEXT NOT NULL,
    report TEXT
);
CREATE TABLE IF NOT EXISTS history_metrics (
    run_id TEXT NOT NULL REFERENCES history_runs (run_id),
    metric TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, metric)
);
";

const RUN_COLUMNS: &str = "run_id, scenario, server_kind, server_version, database_kind, \
    commit_id, branch, started_at, machine, machine_detail, report";

impl Store {
    /// Open (and create) the store `db`: a PostgreSQL URL, or a SQLite file (its directory is
    /// created).
    pub fn open(db: &str) -> Result<Store, HistoryError> {
        if db.starts_with("postgres://") || db.starts_with("postgresql://") {
            let target = redact(db);
            let pg = |step| pg_error(&target, step);
            let mut client =
                postgres::Client::connect(db, postgres::NoTls).map_err(pg("connect"))?;
            client.batch_execute(SCHEMA).map_err(pg("create tables"))?;
            return Ok(Store::Postgres {
                client: Box::new(client),
                target,
            });
        }
        let path = std::path::Path::new(db);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| HistoryError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let target = db.to_string();
        let lite = |step| sqlite_error(&target, step);
        let conn = rusqlite::Connection::open(path).map_err(lite("open"))?;
        conn.execute_batch(SCHEMA).map_err(lite("create tables"))?;
        Ok(Store::Sqlite { conn, target })
    }

    /// Where the store is (a PostgreSQL URL without its password).
    pub fn target(&self) -> &str {
        match self {
            Store::Sqlite { target, .. } | Store::Postgres { target, .. } => target,
        }
    }

    /// Add a run and its metrics in one transaction; `false` when the run id is already there
    /// (nothing changes).
    pub fn add(&mut self, run: &HistoryRun) -> Result<bool, HistoryError> {
        let insert_run = format!(
            "INSERT INTO history_runs ({RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (run_id) DO NOTHING"
        );
        let insert_metric =
            "INSERT INTO history_metrics (run_id, metric, value) VALUES ($1, $2, $3)";
        match self {
            Store::Sqlite { conn, target } => {
                let err = |step| sqlite_error(target, step);
                let tx = conn.transaction().map_err(err("begin"))?;
                let added = tx
                    .execute(
                        &insert_run,
                        rusqlite::params![
                            run.run_id,
                            run.scenario,
                            run.server_kind,
                            run.server_version,
                            run.database,
                            run.commit,
                            run.branch,
                            run.started_at,
                            run.machine,
                            run.machine_detail,
                            run.report
                        ],
                    )
                    .map_err(err("insert run"))?;
                if added == 0 {
                    return Ok(false);
                }
                {
                    let mut st = tx.prepare(insert_metric).map_err(err("insert metrics"))?;
                    for (m, v) in &run.metrics {
                        st.execute(rusqlite::params![run.run_id, m, v])
                            .map_err(err("insert metrics"))?;
                    }
                }
                tx.commit().map_err(err("commit"))?;
                Ok(true)
            }
            Store::Postgres { client, target } => {
                let err = |step| pg_error(target, step);
                let mut tx = client.transaction().map_err(err("begin"))?;
                let added = tx
                    .execute(
                        insert_run.as_str(),
                        &[
                            &run.run_id,
                            &run.scenario,
                            &run.server_kind,
                            &run.server_version,
                            &run.database,
                            &run.commit,
                            &run.branch,
                            &run.started_at,
                            &run.machine,
                            &run.machine_detail,
                            &run.report,
                        ],
                    )
                    .map_err(err("insert run"))?;
                if added == 0 {
                    return Ok(false);
                }
                let st = tx.prepare(insert_metric).map_err(err("insert metrics"))?;
                for (m, v) in &run.metrics {
                    tx.execute(&st, &[&run.run_id, m, v])
                        .map_err(err("insert metrics"))?;
                }
                tx.commit().map_err(err("commit"))?;
                Ok(true)
            }
        }
    }

    /// Every run with its metrics, oldest first (by start time, then run id).
    pub fn runs(&mut self) -> Result<Vec<HistoryRun>, HistoryError> {
        let runs_sql =
            format!("SELECT {RUN_COLUMNS} FROM history_runs ORDER BY started_at, run_id");
        let metrics_sql =
            "SELECT run_id, metric, value FROM history_metrics ORDER BY run_id, metric";
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            String,
            String,
            String,
            Option<String>,
        );
        let (rows, metrics): (Vec<Row>, Vec<(String, String, f64)>) = match self {
            Store::Sqlite { conn, target } => {
                let err = |step| sqlite_error(target, step);
                let mut st = conn.prepare(&runs_sql).map_err(err("read runs"))?;
                let rows = st
                    .query_map([], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                            r.get(8)?,
                            r.get(9)?,
                            r.get(10)?,
                        ))
                    })
                    .map_err(err("read runs"))?
                    .collect::<Result<Vec<Row>, _>>()
                    .map_err(err("read runs"))?;
                let mut st = conn.prepare(metrics_sql).map_err(err("read metrics"))?;
                let metrics = st
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(err("read metrics"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(err("read metrics"))?;
                (rows, metrics)
            }
            Store::Postgres { client, target } => {
                let err = |step| pg_error(target, step);
                let rows = client
                    .query(runs_sql.as_str(), &[])
                    .map_err(err("read runs"))?
                    .iter()
                    .map(|r| {
                        (
                            r.get(0),
                            r.get(1),
                            r.get(2),
                            r.get(3),
                            r.get(4),
                            r.get(5),
                            r.get(6),
                            r.get(7),
                            r.get(8),
                            r.get(9),
                            r.get(10),
                        )
                    })
                    .collect();
                let metrics = client
                    .query(metrics_sql, &[])
                    .map_err(err("read metrics"))?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect();
                (rows, metrics)
            }
        };
        let mut by_run: std::collections::HashMap<String, Vec<(String, f64)>> =
            std::collections::HashMap::new();
        for (run, metric, value) in metrics {
            by_run.entry(run).or_default().push((metric, value));
        }
        Ok(rows
            .into_iter()
            .map(|r| HistoryRun {
                metrics: by_run.remove(&r.0).unwrap_or_default(),
                run_id: r.0,
                scenario: r.1,
                server_kind: r.2,
                server_version: r.3,
                database: r.4,
                commit: r.5,
                branch: r.6,
                started_at: r.7,
                machine: r.8,
                machine_detail: r.9,
                report: r.10,
            })
            .collect())
    }
}

/// The error of a SQLite step on the store `target`.
fn sqlite_error(target: &str, step: &'static str) -> impl FnOnce(rusqlite::Error) -> HistoryError {
    let target = target.to_string();
    move |source| HistoryError::Sqlite {
        target,
        step,
        source,
    }
}

/// The error of a PostgreSQL step on the store `target`.
fn pg_error(target: &str, step: &'static str) -> impl FnOnce(postgres::Error) -> HistoryError {
    let target = target.to_string();
    move |source| HistoryError::Postgres {
        target,
        step,
        source,
    }
}

/// A PostgreSQL URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn run(id: &str, at: &str, commit: &str, value: f64) -> HistoryRun {
        HistoryRun {
            run_id: id.into(),
            scenario: "smoke".into(),
            server_kind: "synapse".into(),
            server_version: "1.0".into(),
            database: "sqlite".into(),
            commit: commit.into(),
            branch: Some("main".into()),
            started_at: at.into(),
            machine: "cpu · 2 cores · 24 GiB".into(),
            machine_detail: "cpu · 2 cores · 24.0 GiB · Linux 6.1".into(),
            report: None,
            metrics: vec![
                ("time_to_ready".into(), value),
                ("phase.x".into(), value / 2.0),
            ],
        }
    }

    #[test]
    fn a_sqlite_store_keeps_runs_in_order_and_adds_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sub/history.sqlite");
        let mut s = Store::open(db.to_str().unwrap()).unwrap();
        assert!(s.add(&run("b", "2026-01-02T00:00:00Z", "c2", 2.0)).unwrap());
        assert!(s.add(&run("a", "2026-01-01T00:00:00Z", "c1", 1.0)).unwrap());
        assert!(!s.add(&run("a", "2026-01-01T00:00:00Z", "c1", 9.0)).unwrap());
        drop(s);
        let mut s = Store::open(db.to_str().unwrap()).unwrap();
        let runs = s.runs().unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(
            runs[0],
            run("a", "2026-01-01T00:00:00Z", "c1", 1.0).sorted()
        );
        assert_eq!(runs[1].commit, "c2");
    }

    impl HistoryRun {
        fn sorted(mut self) -> Self {
            self.metrics.sort_by(|a, b| a.0.cmp(&b.0));
            self
        }
    }

    #[test]
    fn a_postgres_url_is_named_without_its_password() {
        assert_eq!(
            redact("postgres://bench:secret@127.0.0.1:5432/history"),
            "postgres://bench:***@127.0.0.1:5432/history"
        );
        assert_eq!(redact("postgres://127.0.0.1/h"), "postgres://127.0.0.1/h");
    }
}
