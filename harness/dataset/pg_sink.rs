//! The PostgreSQL sink: rows encoded in `COPY` text format and streamed by a writer thread
//! through `COPY … FROM STDIN`; the sequences set, then keys, indexes and statistics built.

use crate::dataset::error::ImportError;
use crate::dataset::sink::{Sink, Table, Val};
use std::sync::mpsc;

/// The buffers are sent to the writer once they hold this much together.
const COPY_CHUNK: usize = 16 << 20;

/// Batches in flight to the writer: bounds the import's memory (≤ 4 × 16 MiB).
const COPY_QUEUE: usize = 4;

/// The sequences Synapse's id generators draw from (and check against their tables at
/// start-up), with the maximum each must be moved past.
const PG_SEQUENCES: &[(&str, &str)] = &[
    (
        "events_stream_seq",
        "SELECT MAX(stream_ordering) FROM events",
    ),
    ("state_group_id_seq", "SELECT MAX(id) FROM state_groups"),
    (
        "event_auth_chain_id",
        "SELECT MAX(chain_id) FROM event_auth_chains",
    ),
    (
        "receipts_sequence",
        "SELECT MAX(stream_id) FROM receipts_linearized",
    ),
    (
        "account_data_sequence",
        "SELECT MAX(s) FROM (SELECT MAX(stream_id) AS s FROM account_data UNION ALL \
         SELECT MAX(stream_id) FROM room_account_data UNION ALL \
         SELECT MAX(stream_id) FROM room_tags_revisions) m",
    ),
    (
        "device_lists_sequence",
        "SELECT MAX(stream_id) FROM device_lists_stream",
    ),
    (
        "presence_stream_sequence",
        "SELECT MAX(stream_id) FROM presence_stream",
    ),
];

/// (drop, create, table) of every foreign key from or to the written tables (`$1`: their
/// names).
const PG_FOREIGN_KEYS: &str = "SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname), \
     format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid)), \
     conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' \
     AND (conrelid::regclass::text = ANY($1) OR confrelid::regclass::text = ANY($1)) ORDER BY oid";

/// (drop, create, table) of every primary key, unique and exclusion constraint of the written
/// tables.
const PG_KEYS: &str = "SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname), \
     format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid)), \
     conrelid::regclass::text FROM pg_constraint WHERE contype IN ('p', 'u', 'x') AND conrelid::regclass::text = ANY($1) ORDER BY oid";

/// (drop, create, table) of every other index of the written tables.
const PG_INDEXES: &str = "SELECT format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid), \
     i.indrelid::regclass::text FROM pg_index i WHERE i.indrelid::regclass::text = ANY($1) AND NOT EXISTS \
     (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x')) \
     ORDER BY i.indexrelid";

/// The written tables with Synapse's `check_event_stream_ordering` trigger.
const PG_STREAM_ORDERING_TRIGGERS: &str = "SELECT DISTINCT tgrelid::regclass::text FROM pg_trigger \
     WHERE NOT tgisinternal AND tgname = 'check_event_stream_ordering' \
     AND tgrelid::regclass::text = ANY($1)";

enum Job {
    /// Rows of several tables, copied in [`Table::ALL`] order: a row referenced by a foreign
    /// key (`events`, `rooms`) is in before the rows that reference it.
    Copy(Vec<(Table, Vec<u8>)>),
    Execute(&'static str, String),
    Query(String, mpsc::Sender<Result<i64, ImportError>>),
}

/// Synapse's PostgreSQL database, written with `COPY` from a writer thread.
pub struct PgSink {
    conninfo: String,
    target: String,
    /// Per written table, what is built again after the rows are committed: its keys, then
    /// its indexes. The tables are rebuilt side by side, one connection per core.
    rebuild: Vec<(String, Vec<String>)>,
    /// Then, on one connection: the foreign keys (they need the keys of both sides), the
    /// check the stream-ordering triggers skipped, the triggers switched on again.
    rebuild_after: Vec<String>,
    buffers: Vec<Vec<u8>>,
    buffered: usize,
    jobs: Option<mpsc::SyncSender<Job>>,
    writer: Option<std::thread::JoinHandle<Result<(), ImportError>>>,
}

impl PgSink {
    /// Connect to `conninfo` (libpq key=value form) and open the import's transaction.
    /// `target` names the database in errors and the load report.
    pub fn connect(conninfo: &str, target: &str) -> Result<Self, ImportError> {
        let target = target.to_string();
        let pg_err = |step: &str| {
            let target = target.clone();
            let step = step.to_string();
            move |source: postgres::Error| pg_error(&target, &step, source)
        };
        let mut client =
            postgres::Client::connect(conninfo, postgres::NoTls).map_err(pg_err("connect"))?;
        let mut setup = String::from(
            "BEGIN; SET LOCAL synchronous_commit = off; SET LOCAL maintenance_work_mem = '512MB';",
        );
        for t in Table::ALL.iter().filter(|t| t.pg_from_stage().is_some()) {
            let cols: Vec<String> = t
                .columns()
                .iter()
                .map(|c| {
                    let ty = if matches!(*c, "stream_ordering" | "origin_server_ts") {
                        "bigint"
                    } else {
                        "text"
                    };
                    format!("{c} {ty}")
                })
                .collect();
            // Not temporary: the rebuild's other connections turn it into the table's rows.
            setup.push_str(&format!(
                "DROP TABLE IF EXISTS {stage}; CREATE UNLOGGED TABLE {stage} ({});",
                cols.join(", "),
                stage = t.pg_stage_name(),
            ));
        }
        client.batch_execute(&setup).map_err(pg_err("begin"))?;
        // Loaded as pg_restore loads: without the tables' indexes and constraints, which are
        // built once at the end (in bulk, sorted) instead of maintained row by row.
        let tables: Vec<&str> = Table::ALL.iter().map(|t| t.name()).collect();
        let mut drops = Vec::new();
        let mut rebuild: Vec<(String, Vec<String>)> = Table::ALL
            .iter()
            .map(|t| (t.name().to_string(), Vec::new()))
            .collect();
        let mut after = Vec::new();
        // (what, query, built after every table's keys)
        for (what, q, last) in [
            ("foreign keys", PG_FOREIGN_KEYS, true),
            ("keys", PG_KEYS, false),
            ("indexes", PG_INDEXES, false),
        ] {
            let rows = client.query(q, &[&tables]).map_err(pg_err(what))?;
            for r in rows {
                drops.push(r.get::<_, String>(0));
                let (create, table) = (r.get::<_, String>(1), r.get::<_, String>(2));
                if last {
                    after.push(create);
                } else if let Some((_, list)) = rebuild.iter_mut().find(|(t, _)| *t == table) {
                    list.push(create);
                } else {
                    rebuild.push((table, vec![create]));
                }
            }
        }
        // Synapse's `check_event_stream_ordering` triggers look every row's event up in
        // `events`, which has no index while loading: they are switched off, and their check
        // runs once over all rows at the end, before they are switched on again.
        let triggered = client
            .query(PG_STREAM_ORDERING_TRIGGERS, &[&tables])
            .map_err(pg_err("triggers"))?;
        for r in triggered {
            let table: String = r.get(0);
            drops.push(format!(
                "ALTER TABLE {table} DISABLE TRIGGER check_event_stream_ordering"
            ));
            after.push(format!(
                "DO $$ BEGIN IF EXISTS (SELECT 1 FROM {table} x JOIN events e \
                 ON e.event_id = x.event_id WHERE e.stream_ordering != x.event_stream_ordering) \
                 THEN RAISE EXCEPTION 'Incorrect event_stream_ordering in {table}'; END IF; END $$"
            ));
            after.push(format!(
                "ALTER TABLE {table} ENABLE TRIGGER check_event_stream_ordering"
            ));
        }
        client
            .batch_execute(&(drops.join(";\n") + ";"))
            .map_err(pg_err("drop indexes and constraints"))?;
        let (tx, rx) = mpsc::sync_channel::<Job>(COPY_QUEUE);
        let t2 = target.clone();
        let writer = std::thread::Builder::new()
            .name("pg-copy".into())
            .spawn(move || pg_writer(client, rx, &t2))
            .map_err(|e| ImportError::Event {
                step: "PostgreSQL writer",
                what: "thread".into(),
                source: e.into(),
            })?;
        Ok(Self {
            conninfo: conninfo.to_string(),
            target,
            rebuild,
            rebuild_after: after,
            buffers: vec![Vec::new(); Table::ALL.len()],
            buffered: 0,
            jobs: Some(tx),
            writer: Some(writer),
        })
    }

    fn send(&mut self, job: Job) -> Result<(), ImportError> {
        let sent = self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok());
        if sent {
            Ok(())
        } else {
            // The writer stopped: its error says why.
            Err(self.join_writer())
        }
    }

    fn join_writer(&mut self) -> ImportError {
        self.jobs = None;
        let joined = self.writer.take().map(|w| w.join());
        match joined {
            Some(Ok(Err(e))) => e,
            _ => ImportError::Event {
                step: "PostgreSQL writer",
                what: self.target.clone(),
                source: "the writer thread stopped".into(),
            },
        }
    }

    /// Send every table's rows so far to the writer.
    fn flush(&mut self) -> Result<(), ImportError> {
        let batch: Vec<(Table, Vec<u8>)> = Table::ALL
            .iter()
            .map(|t| (*t, std::mem::take(&mut self.buffers[*t as usize])))
            .filter(|(_, b)| !b.is_empty())
            .collect();
        self.buffered = 0;
        if batch.is_empty() {
            return Ok(());
        }
        self.send(Job::Copy(batch))
    }
}

impl Drop for PgSink {
    fn drop(&mut self) {
        // An import abandoned half way: the writer ends when its queue closes and the
        // transaction is rolled back with the connection.
        self.jobs = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Append `v` in COPY text format.
pub(crate) fn encode(buf: &mut Vec<u8>, v: &Val<'_>) {
    match *v {
        Val::Null => buf.extend_from_slice(b"\\N"),
        Val::Int(i) => {
            use std::io::Write;
            let _ = write!(buf, "{i}");
        }
        Val::Text(s) => {
            for &b in s.as_bytes() {
                match b {
                    b'\\' => buf.extend_from_slice(b"\\\\"),
                    b'\t' => buf.extend_from_slice(b"\\t"),
                    b'\n' => buf.extend_from_slice(b"\\n"),
                    b'\r' => buf.extend_from_slice(b"\\r"),
                    _ => buf.push(b),
                }
            }
        }
    }
}

impl Sink for PgSink {
    fn describe(&self) -> String {
        "Synapse's PostgreSQL database through COPY".into()
    }

    fn target(&self) -> String {
        self.target.clone()
    }

    fn insert(&mut self, table: Table, row: &[Val<'_>]) -> Result<(), ImportError> {
        debug_assert_eq!(row.len(), table.columns().len(), "{table:?}");
        let buf = &mut self.buffers[table as usize];
        let before = buf.len();
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                buf.push(b'\t');
            }
            encode(buf, v);
        }
        buf.push(b'\n');
        self.buffered += buf.len() - before;
        if self.buffered >= COPY_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn query_i64(&mut self, sql: &str) -> Result<i64, ImportError> {
        let (tx, rx) = mpsc::channel();
        self.send(Job::Query(sql.to_string(), tx))?;
        match rx.recv() {
            Ok(r) => r,
            Err(_) => Err(self.join_writer()),
        }
    }

    fn execute(&mut self, step: &'static str, sql: &str) -> Result<(), ImportError> {
        // After every row written so far.
        self.flush()?;
        self.send(Job::Execute(step, sql.to_string()))
    }

    fn finish(mut self: Box<Self>) -> Result<(), ImportError> {
        self.flush()?;
        // The rows and the sequences in one transaction, then everything built from the rows.
        let mut end = String::new();
        for (seq, max) in PG_SEQUENCES {
            end.push_str(&format!(
                "SELECT setval('{seq}', GREATEST((SELECT last_value FROM {seq}), COALESCE(({max}), 1)));"
            ));
        }
        end.push_str("COMMIT;");
        self.send(Job::Execute("commit", end))?;
        self.jobs = None;
        match self.writer.take().map(|w| w.join()) {
            Some(Ok(r)) => r?,
            _ => {
                return Err(ImportError::Event {
                    step: "PostgreSQL writer",
                    what: self.target.clone(),
                    source: "the writer thread panicked".into(),
                });
            }
        }
        let tasks = self.rebuild_tasks();
        let connections = crate::util::thread::cores();
        pg_run_side_by_side(&self.conninfo, &self.target, tasks, connections)?;
        let mut client = pg_connect(&self.conninfo, &self.target)?;
        let tail = format!("BEGIN; {}; COMMIT;", self.rebuild_after.join(";\n"));
        client
            .batch_execute(&tail)
            .map_err(|e| pg_error(&self.target, "foreign keys and trigger checks", e))
    }
}

impl PgSink {
    /// Per written table, in one list: its computed rows from the stage (then the stage
    /// dropped), its keys and indexes, then `ANALYZE` (statistics for the planner, as a
    /// database that grew in production has them). The tables with computed rows first, then
    /// the rest as listed: the longest lists start first.
    fn rebuild_tasks(&mut self) -> Vec<Vec<String>> {
        let mut staged = Vec::new();
        let mut rest = Vec::new();
        for (table, statements) in std::mem::take(&mut self.rebuild) {
            let from_stage = Table::ALL
                .iter()
                .find(|t| t.name() == table)
                .and_then(|t| t.pg_from_stage().map(|q| (q, t.pg_stage_name())));
            let mut list = Vec::new();
            if let Some((q, stage)) = &from_stage {
                list.push(q.replace("{stage}", stage));
                list.push(format!("DROP TABLE {stage}"));
            }
            list.extend(statements);
            list.push(format!("ANALYZE {table}"));
            if from_stage.is_some() {
                staged.push(list);
            } else {
                rest.push(list);
            }
        }
        staged.extend(rest);
        staged
    }
}

fn pg_connect(conninfo: &str, target: &str) -> Result<postgres::Client, ImportError> {
    let mut client = postgres::Client::connect(conninfo, postgres::NoTls)
        .map_err(|e| pg_error(target, "connect", e))?;
    client
        .batch_execute("SET synchronous_commit = off; SET maintenance_work_mem = '512MB';")
        .map_err(|e| pg_error(target, "connect", e))?;
    Ok(client)
}

/// Run `tasks` (each a list of statements, in order) on `connections` connections side by
/// side, each task on one connection, each statement committed on its own. The first error
/// stops the taking of further work and is returned.
fn pg_run_side_by_side(
    conninfo: &str,
    target: &str,
    tasks: Vec<Vec<String>>,
    connections: usize,
) -> Result<(), ImportError> {
    use std::sync::Mutex;
    let connections = connections.clamp(1, tasks.len().max(1));
    let queue = Mutex::new(tasks.into_iter());
    let failed: Mutex<Option<ImportError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..connections {
            scope.spawn(|| {
                let run = || -> Result<(), ImportError> {
                    let mut client = pg_connect(conninfo, target)?;
                    loop {
                        if failed.lock().expect("rebuild errors").is_some() {
                            return Ok(());
                        }
                        let Some(task) = queue.lock().expect("rebuild queue").next() else {
                            return Ok(());
                        };
                        for statement in task {
                            client.batch_execute(&statement).map_err(|e| {
                                let step: String = statement.chars().take(120).collect();
                                pg_error(target, &step, e)
                            })?;
                        }
                    }
                };
                if let Err(e) = run() {
                    failed.lock().expect("rebuild errors").get_or_insert(e);
                }
            });
        }
    });
    match failed.into_inner().expect("rebuild errors") {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A PostgreSQL error with what the server said (its message and detail: `db error` alone
/// says nothing).
fn pg_error(target: &str, step: &str, source: postgres::Error) -> ImportError {
    let said = source
        .as_db_error()
        .map(|d| match d.detail() {
            Some(detail) => format!("{}: {detail}", d.message()),
            None => d.message().to_string(),
        })
        .unwrap_or_else(|| source.to_string());
    ImportError::Postgres {
        target: target.to_string(),
        step: step.to_string(),
        said,
        source,
    }
}

/// The writer thread: runs the jobs in order on the one connection; stops at the first error.
fn pg_writer(
    mut client: postgres::Client,
    jobs: mpsc::Receiver<Job>,
    target: &str,
) -> Result<(), ImportError> {
    let err = |step: String| move |source: postgres::Error| pg_error(target, &step, source);
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Copy(batch) => {
                for (table, buf) in batch {
                    let into = if table.pg_from_stage().is_some() {
                        table.pg_stage_name()
                    } else {
                        table.name().to_string()
                    };
                    let step = format!("COPY {}", table.name());
                    let copy = format!("COPY {into} ({}) FROM STDIN", table.columns().join(", "));
                    let mut w = client.copy_in(&copy).map_err(err(step.clone()))?;
                    use std::io::Write;
                    w.write_all(&buf).map_err(|e| ImportError::Event {
                        step: "PostgreSQL writer",
                        what: format!("{step} into {target}"),
                        source: e.into(),
                    })?;
                    w.finish().map_err(err(step))?;
                }
            }
            Job::Execute(step, sql) => client.batch_execute(&sql).map_err(err(step.into()))?,
            Job::Query(sql, reply) => {
                let r = client
                    .query_one(&sql, &[])
                    .map(|row| row.get::<_, Option<i64>>(0).unwrap_or(0))
                    .map_err(err("read positions".into()));
                let failed = r.is_err();
                let _ = reply.send(r);
                if failed {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}
