//! The SQLite sink: prepared inserts in one transaction, the full-text index's rows held and
//! written in batches.

use crate::dataset::error::ImportError;
use crate::dataset::sink::{IdBase, RoomRows, Sink, Table, Val};
use rusqlite::Connection;
use std::path::{Path, PathBuf};

fn sql_err(path: &Path, step: &'static str) -> impl Fn(rusqlite::Error) -> ImportError + use<> {
    let path = path.to_path_buf();
    move |source| ImportError::Sql {
        path: path.clone(),
        step,
        source,
    }
}

/// Rows of the full-text tables held before they are written together: bounds the memory
/// they take (a few tens of MiB).
const FTS_HELD_ROWS: usize = 100_000;

/// Synapse's SQLite file, written in one transaction without a journal.
pub struct SqliteSink {
    path: PathBuf,
    conn: Connection,
    inserts: Vec<String>,
    /// `CREATE INDEX` of the indexes dropped for the load.
    rebuild: Vec<String>,
    /// Rows of the full-text (FTS4) tables, written in runs of their own. An FTS4 table keeps
    /// new terms in memory and writes them out as a segment whenever a statement that may
    /// abort opens a savepoint; such a statement (an insert into a table with a unique
    /// constraint) after every row wrote a one-row segment and merged segments without end:
    /// a fifth of the writer's time.
    fts: RoomRows,
}

impl SqliteSink {
    pub fn open(db: &Path) -> Result<Self, ImportError> {
        let conn = Connection::open(db).map_err(sql_err(db, "open"))?;
        // The data directory is a scratch copy until the fixture is saved, so no journal: a
        // failed import is thrown away whole. Synapse puts the file back into WAL mode when it
        // next connects.
        // The sorter that builds the indexes at the end writes its sorted runs to temporary
        // files (deleted as they are opened, so nothing is left behind) and sorts them on helper
        // threads: SQLite sorts on one thread whenever temporary storage is in memory.
        // Startup-100k's 69 index builds on a copy of the fixture (sqlite3): 39–48 s with
        // `temp_store = MEMORY`, 26–30 s with files. The import's commit step, runs alternated
        // on one machine: 43.6 and 46.2 s before, 35.1 and 32.1 s after.
        let threads = crate::util::thread::cores();
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE; \
             PRAGMA temp_store = FILE; PRAGMA threads = {threads}; PRAGMA cache_size = -1048576; BEGIN;",
        ))
        .map_err(sql_err(db, "open"))?;
        conn.set_prepared_statement_cache_capacity(Table::ALL.len() + 8);
        // The written tables' own indexes are built once at the end (sorted) instead of row by
        // row; the indexes of their UNIQUE and PRIMARY KEY constraints (no SQL of their own)
        // stay, and with them the lookups of Synapse's triggers.
        let names: Vec<String> = Table::ALL
            .iter()
            .map(|t| format!("'{}'", t.name()))
            .collect();
        let indexes: Vec<(String, String)> = {
            let mut q = conn
                .prepare(&format!(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' \
                     AND sql IS NOT NULL AND tbl_name IN ({})",
                    names.join(", ")
                ))
                .map_err(sql_err(db, "read indexes"))?;
            q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(sql_err(db, "read indexes"))?
        };
        for (name, _) in &indexes {
            conn.execute_batch(&format!("DROP INDEX \"{name}\""))
                .map_err(sql_err(db, "drop indexes"))?;
        }
        let rebuild = indexes.into_iter().map(|(_, sql)| sql).collect();
        let inserts = Table::ALL
            .iter()
            .map(|t| {
                let cols = t.sqlite_columns();
                let params: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
                format!(
                    "INSERT INTO {} ({}) VALUES ({})",
                    t.name(),
                    cols.join(", "),
                    params.join(", ")
                )
            })
            .collect();
        Ok(Self {
            path: db.to_path_buf(),
            conn,
            inserts,
            rebuild,
            fts: RoomRows::default(),
        })
    }

    fn insert_now(&mut self, table: Table, row: &[Val<'_>]) -> Result<(), ImportError> {
        let n = table.sqlite_columns().len();
        let mut st = self
            .conn
            .prepare_cached(&self.inserts[table as usize])
            .map_err(sql_err(&self.path, table.name()))?;
        st.execute(rusqlite::params_from_iter(&row[..n]))
            .map(|_| ())
            .map_err(sql_err(&self.path, table.name()))
    }

    /// Write the held full-text rows, one after another.
    fn flush_fts(&mut self) -> Result<(), ImportError> {
        let held = std::mem::take(&mut self.fts);
        held.each_row(&IdBase::default(), |table, row| self.insert_now(table, row))
    }
}

impl Sink for SqliteSink {
    fn describe(&self) -> String {
        "Synapse's SQLite database".into()
    }

    fn target(&self) -> String {
        self.path.display().to_string()
    }

    fn insert(&mut self, table: Table, row: &[Val<'_>]) -> Result<(), ImportError> {
        debug_assert_eq!(row.len(), table.columns().len(), "{table:?}");
        if table.sqlite_full_text() {
            self.fts.insert(table, row)?;
            if self.fts.len() >= FTS_HELD_ROWS {
                self.flush_fts()?;
            }
            return Ok(());
        }
        self.insert_now(table, row)
    }

    fn query_i64(&mut self, sql: &str) -> Result<i64, ImportError> {
        self.flush_fts()?;
        self.conn
            .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
            .map(|v| v.unwrap_or(0))
            .map_err(sql_err(&self.path, "read positions"))
    }

    fn execute(&mut self, step: &'static str, sql: &str) -> Result<(), ImportError> {
        self.flush_fts()?;
        self.conn
            .execute_batch(sql)
            .map_err(sql_err(&self.path, step))
    }

    fn finish(mut self: Box<Self>) -> Result<(), ImportError> {
        self.flush_fts()?;
        for sql in &self.rebuild {
            self.conn
                .execute_batch(sql)
                .map_err(sql_err(&self.path, "build indexes"))?;
        }
        self.conn
            .execute_batch("COMMIT; PRAGMA journal_mode = WAL;")
            .map_err(sql_err(&self.path, "commit"))
    }
}
