//! Where the direct import's rows go: Synapse's SQLite file, or its PostgreSQL database.
//!
//! The import (`import.rs`) turns the plan into rows; a [`Sink`] only stores them. Every row is
//! a [`Table`]'s logical columns, the same on both databases; the few columns that differ
//! (full-text search) are staged on PostgreSQL and turned into `tsvector`s at the end, with the
//! exact expressions Synapse's stores use.
//!
//! - [`SqliteSink`]: prepared `INSERT`s in one transaction, no journal (the data directory is a
//!   scratch copy until the fixture is saved).
//! - [`PgSink`]: each table's rows are encoded in `COPY` text format into a buffer; full buffers
//!   go to a writer thread that streams them with `COPY … FROM STDIN` while the import builds
//!   and signs the next events, so signing and the server's writes overlap on two cores. The
//!   rows and the sequences Synapse's id generators check at start-up (moved past the last row)
//!   are one transaction; then each table's computed columns, keys and indexes are built and
//!   the table analysed, the tables side by side on one connection per core; the foreign keys
//!   last.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::Connection;

use crate::dataset::error::ImportError;

/// One value of a row.
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    Null,
    Int(i64),
    Text(&'a str),
}

impl From<i64> for Val<'_> {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}
impl From<bool> for Val<'_> {
    fn from(v: bool) -> Self {
        Val::Int(i64::from(v))
    }
}
impl<'a> From<&'a str> for Val<'a> {
    fn from(v: &'a str) -> Self {
        Val::Text(v)
    }
}
impl<'a> From<&'a String> for Val<'a> {
    fn from(v: &'a String) -> Self {
        Val::Text(v)
    }
}
impl<'a> From<Option<&'a str>> for Val<'a> {
    fn from(v: Option<&'a str>) -> Self {
        v.map_or(Val::Null, Val::Text)
    }
}
impl<'a> From<&'a Option<String>> for Val<'a> {
    fn from(v: &'a Option<String>) -> Self {
        v.as_deref().map_or(Val::Null, Val::Text)
    }
}
impl From<Option<i64>> for Val<'_> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Val::Null, Val::Int)
    }
}

impl rusqlite::ToSql for Val<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match *self {
            Val::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Val::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(i)),
            Val::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

/// A row of logical columns: `row![a, b, c]`.
#[macro_export]
macro_rules! row {
    ($($v:expr),* $(,)?) => { &[$($crate::dataset::sink::Val::from($v)),*][..] };
}

macro_rules! tables {
    ($($variant:ident = $name:literal [$($col:literal),* $(,)?]),* $(,)?) => {
        /// Every table the import writes, with its logical columns.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Table { $($variant),* }

        impl Table {
            pub const ALL: &'static [Table] = &[$(Table::$variant),*];

            /// The table's name in Synapse's schema.
            pub fn name(self) -> &'static str {
                match self { $(Table::$variant => $name),* }
            }

            /// The logical columns, in the order of a row's values.
            pub fn columns(self) -> &'static [&'static str] {
                match self { $(Table::$variant => &[$($col),*]),* }
            }
        }
    };
}

tables! {
    Users = "users" ["name", "password_hash", "creation_ts", "admin", "is_guest", "deactivated", "shadow_banned", "approved", "locked", "suspended"],
    Profiles = "profiles" ["user_id", "displayname", "avatar_url", "full_user_id"],
    Devices = "devices" ["user_id", "device_id", "display_name", "last_seen", "ip", "hidden"],
    DeviceListsStream = "device_lists_stream" ["stream_id", "user_id", "device_id", "instance_name"],
    AccessTokens = "access_tokens" ["id", "user_id", "device_id", "token", "last_validated", "used"],
    PresenceStream = "presence_stream" ["stream_id", "user_id", "state", "last_active_ts", "last_federation_update_ts", "last_user_sync_ts", "currently_active", "instance_name"],
    UserDirectory = "user_directory" ["user_id", "room_id", "display_name", "avatar_url"],
    // SQLite keeps `value` (`"<user id> <lower-case name>"`); PostgreSQL a weighted tsvector of
    // the localpart, the server name and the name.
    UserDirectorySearch = "user_directory_search" ["user_id", "value", "localpart", "domain", "display_name"],
    UsersInPublicRooms = "users_in_public_rooms" ["user_id", "room_id"],
    UsersWhoSharePrivateRooms = "users_who_share_private_rooms" ["user_id", "other_user_id", "room_id"],
    UserStatsCurrent = "user_stats_current" ["user_id", "joined_rooms", "completed_delta_stream_id"],
    AccountData = "account_data" ["user_id", "account_data_type", "stream_id", "content", "instance_name"],
    Events = "events" ["stream_ordering", "topological_ordering", "event_id", "type", "room_id", "processed", "outlier", "depth", "origin_server_ts", "received_ts", "sender", "contains_url", "instance_name", "state_key"],
    EventJson = "event_json" ["event_id", "room_id", "internal_metadata", "json", "format_version"],
    StateEvents = "state_events" ["event_id", "room_id", "type", "state_key"],
    EventEdges = "event_edges" ["event_id", "prev_event_id", "is_state"],
    EventAuth = "event_auth" ["event_id", "auth_id", "room_id"],
    EventToStateGroups = "event_to_state_groups" ["event_id", "state_group"],
    StateGroups = "state_groups" ["id", "room_id", "event_id"],
    StateGroupsState = "state_groups_state" ["state_group", "room_id", "type", "state_key", "event_id"],
    StateGroupEdges = "state_group_edges" ["state_group", "prev_state_group"],
    CurrentStateDeltaStream = "current_state_delta_stream" ["stream_id", "room_id", "type", "state_key", "event_id", "prev_event_id", "instance_name"],
    RoomMemberships = "room_memberships" ["event_id", "user_id", "sender", "room_id", "membership", "forgotten", "display_name", "avatar_url", "event_stream_ordering", "participant"],
    EventRelations = "event_relations" ["event_id", "relates_to_id", "relation_type", "aggregation_key"],
    Redactions = "redactions" ["event_id", "redacts", "have_censored", "received_ts", "recheck"],
    // SQLite's is an FTS table of the raw text; PostgreSQL keeps `to_tsvector('english', value)`
    // with the event's place in the stream.
    EventSearch = "event_search" ["event_id", "room_id", "key", "value", "stream_ordering", "origin_server_ts"],
    ReceiptsLinearized = "receipts_linearized" ["stream_id", "room_id", "receipt_type", "user_id", "event_id", "thread_id", "event_stream_ordering", "data", "instance_name"],
    ReceiptsGraph = "receipts_graph" ["room_id", "receipt_type", "user_id", "event_ids", "thread_id", "data"],
    EventAuthChains = "event_auth_chains" ["event_id", "chain_id", "sequence_number"],
    EventAuthChainLinks = "event_auth_chain_links" ["origin_chain_id", "origin_sequence_number", "target_chain_id", "target_sequence_number"],
    EventPushSummary = "event_push_summary" ["user_id", "room_id", "notif_count", "stream_ordering", "unread_count", "last_receipt_stream_ordering", "thread_id"],
    Rooms = "rooms" ["room_id", "is_public", "creator", "room_version", "has_auth_chain_index"],
    RoomDepth = "room_depth" ["room_id", "min_depth"],
    EventForwardExtremities = "event_forward_extremities" ["event_id", "room_id"],
    StreamOrderingToExterm = "stream_ordering_to_exterm" ["stream_ordering", "room_id", "event_id"],
    CurrentStateEvents = "current_state_events" ["event_id", "room_id", "type", "state_key", "membership", "event_stream_ordering"],
    LocalCurrentMembership = "local_current_membership" ["room_id", "user_id", "event_id", "membership", "event_stream_ordering"],
    SlidingSyncMembershipSnapshots = "sliding_sync_membership_snapshots" ["room_id", "user_id", "sender", "membership_event_id", "membership", "forgotten", "event_stream_ordering", "event_instance_name", "has_known_state", "room_type", "room_name", "is_encrypted", "tombstone_successor_room_id"],
    SlidingSyncJoinedRooms = "sliding_sync_joined_rooms" ["room_id", "event_stream_ordering", "bump_stamp", "room_type", "room_name", "is_encrypted", "tombstone_successor_room_id"],
    RoomStatsCurrent = "room_stats_current" ["room_id", "current_state_events", "joined_members", "invited_members", "left_members", "banned_members", "local_users_in_room", "completed_delta_stream_id", "knocked_members"],
    RoomStatsState = "room_stats_state" ["room_id", "name", "canonical_alias", "join_rules", "history_visibility", "encryption", "avatar", "guest_access", "is_federatable", "topic", "room_type"],
}

impl Table {
    /// Whether SQLite keeps this table as a full-text (FTS4) table.
    fn sqlite_full_text(self) -> bool {
        matches!(self, Table::UserDirectorySearch | Table::EventSearch)
    }

    /// How many leading logical columns SQLite stores (its full-text tables keep fewer).
    fn sqlite_columns(self) -> &'static [&'static str] {
        let c = self.columns();
        match self {
            Table::UserDirectorySearch => &c[..2],
            Table::EventSearch => &c[..4],
            _ => c,
        }
    }

    /// PostgreSQL: the statement that turns the staged rows into the table's own, for tables
    /// whose columns are computed by the database (`tsvector`s, as Synapse computes them).
    fn pg_from_stage(self) -> Option<&'static str> {
        match self {
            // `user_directory.py`, `_update_profiles_in_user_dir_txn`.
            Table::UserDirectorySearch => Some(
                "INSERT INTO user_directory_search (user_id, vector) SELECT user_id, \
                 setweight(to_tsvector('simple', localpart), 'A') \
                 || setweight(to_tsvector('simple', domain), 'D') \
                 || setweight(to_tsvector('simple', COALESCE(display_name, '')), 'B') FROM {stage}",
            ),
            // `search.py`, `store_search_entries_txn`.
            Table::EventSearch => Some(
                "INSERT INTO event_search (event_id, room_id, key, vector, stream_ordering, \
                 origin_server_ts) SELECT event_id, room_id, key, to_tsvector('english', value), \
                 stream_ordering, origin_server_ts FROM {stage}",
            ),
            _ => None,
        }
    }

    fn pg_stage_name(self) -> String {
        format!("hsbench_stage_{}", self.name())
    }
}

/// Where the import's rows go.
pub trait Sink {
    /// What the rows are written into, for the load report ("Synapse's SQLite database").
    fn describe(&self) -> String;
    /// Where: the database file, or the PostgreSQL database's address (for errors).
    fn target(&self) -> String;
    /// Store one row of `table` (values in [`Table::columns`] order).
    fn insert(&mut self, table: Table, row: &[Val<'_>]) -> Result<(), ImportError>;
    /// The single integer `sql` answers (NULL is 0): positions and maxima read before writing.
    fn query_i64(&mut self, sql: &str) -> Result<i64, ImportError>;
    /// Run a statement written the same for both databases (literal values only).
    fn execute(&mut self, step: &'static str, sql: &str) -> Result<(), ImportError>;
    /// Write what is pending and commit.
    fn finish(self: Box<Self>) -> Result<(), ImportError>;
}

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
fn encode(buf: &mut Vec<u8>, v: &Val<'_>) {
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

/// Which id space a column's value belongs to, for rows a room is built with on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdRole {
    /// `events.stream_ordering` and every column that points at one.
    Stream,
    StateGroup,
    Chain,
    /// `receipts_linearized.stream_id`.
    Receipt,
}

impl Table {
    /// The id space of `column`, when a room's rows number it from zero.
    pub fn id_role(self, column: &str) -> Option<IdRole> {
        use IdRole::*;
        match (self, column) {
            (Table::ReceiptsLinearized, "stream_id") => Some(Receipt),
            (Table::CurrentStateDeltaStream, "stream_id") => Some(Stream),
            (Table::RoomStatsCurrent, "completed_delta_stream_id") => Some(Stream),
            (Table::StateGroups, "id") => Some(StateGroup),
            (
                _,
                "stream_ordering"
                | "event_stream_ordering"
                | "last_receipt_stream_ordering"
                | "bump_stamp",
            ) => Some(Stream),
            (_, "state_group" | "prev_state_group") => Some(StateGroup),
            (_, "chain_id" | "origin_chain_id" | "target_chain_id") => Some(Chain),
            _ => None,
        }
    }
}

/// The first id of each space a room's rows are moved to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdBase {
    pub stream: i64,
    pub state_group: i64,
    pub chain: i64,
    pub receipt: i64,
}

impl IdBase {
    fn of(&self, role: IdRole) -> i64 {
        match role {
            IdRole::Stream => self.stream,
            IdRole::StateGroup => self.state_group,
            IdRole::Chain => self.chain,
            IdRole::Receipt => self.receipt,
        }
    }
}

/// Every table's column roles, in [`Table::ALL`] order: worked out once, used for every room.
fn id_roles() -> &'static [Vec<Option<IdRole>>] {
    static ROLES: std::sync::OnceLock<Vec<Vec<Option<IdRole>>>> = std::sync::OnceLock::new();
    ROLES.get_or_init(|| {
        Table::ALL
            .iter()
            .map(|t| t.columns().iter().map(|c| t.id_role(c)).collect())
            .collect()
    })
}

#[derive(Debug, Clone, Copy)]
enum Held {
    Null,
    Int(i64),
    /// A range of [`RoomRows::text`].
    Text(u32, u32),
}

/// A room's rows, held in memory while the room is built (and signed) on a worker thread, its
/// ids numbered from zero; [`RoomRows::replay`] writes them into the real sink with every id
/// moved past the rooms before it. One allocation per kind, none per value.
#[derive(Default)]
pub struct RoomRows {
    rows: Vec<(Table, u32)>,
    vals: Vec<Held>,
    text: String,
}

impl RoomRows {
    /// Write the rows into `sink`, each id column moved by `base`.
    pub fn replay(&self, sink: &mut dyn Sink, base: &IdBase) -> Result<(), ImportError> {
        self.each_row(base, |table, row| sink.insert(table, row))
    }

    /// How many rows are held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Every row in order, each id column moved by `base`.
    fn each_row(
        &self,
        base: &IdBase,
        mut f: impl FnMut(Table, &[Val<'_>]) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        let roles = id_roles();
        let mut row: Vec<Val<'_>> = Vec::with_capacity(16);
        for (i, &(table, start)) in self.rows.iter().enumerate() {
            let end = self
                .rows
                .get(i + 1)
                .map_or(self.vals.len(), |&(_, s)| s as usize);
            row.clear();
            for (held, role) in self.vals[start as usize..end]
                .iter()
                .zip(&roles[table as usize])
            {
                row.push(match (*held, role) {
                    (Held::Null, _) => Val::Null,
                    (Held::Int(v), Some(r)) => Val::Int(v + base.of(*r)),
                    (Held::Int(v), None) => Val::Int(v),
                    (Held::Text(a, b), _) => Val::Text(&self.text[a as usize..b as usize]),
                });
            }
            f(table, &row)?;
        }
        Ok(())
    }
}

impl Sink for RoomRows {
    fn describe(&self) -> String {
        "a room's rows".into()
    }

    fn target(&self) -> String {
        self.describe()
    }

    fn insert(&mut self, table: Table, row: &[Val<'_>]) -> Result<(), ImportError> {
        debug_assert_eq!(row.len(), table.columns().len(), "{table:?}");
        self.rows.push((table, self.vals.len() as u32));
        for v in row {
            self.vals.push(match *v {
                Val::Null => Held::Null,
                Val::Int(i) => Held::Int(i),
                Val::Text(t) => {
                    let a = self.text.len() as u32;
                    self.text.push_str(t);
                    Held::Text(a, self.text.len() as u32)
                }
            });
        }
        Ok(())
    }

    fn query_i64(&mut self, _sql: &str) -> Result<i64, ImportError> {
        unreachable!("a room's rows are written, never read")
    }

    fn execute(&mut self, _step: &'static str, _sql: &str) -> Result<(), ImportError> {
        unreachable!("a room's rows are rows only")
    }

    fn finish(self: Box<Self>) -> Result<(), ImportError> {
        Ok(())
    }
}

/// A sink that keeps every row as text, for tests (shared: clones see the same rows). Access
/// tokens are left out: they are random by design.
#[cfg(test)]
#[derive(Default, Clone)]
pub(crate) struct Collect(pub std::sync::Arc<std::sync::Mutex<Vec<String>>>);

#[cfg(test)]
impl Sink for Collect {
    fn describe(&self) -> String {
        "rows kept for a test".into()
    }
    fn target(&self) -> String {
        self.describe()
    }
    fn insert(&mut self, table: Table, row: &[Val<'_>]) -> Result<(), ImportError> {
        if table != Table::AccessTokens {
            let text = format!("{} {row:?}", table.name());
            self.0.lock().expect("rows").push(text);
        }
        Ok(())
    }
    fn query_i64(&mut self, _: &str) -> Result<i64, ImportError> {
        Ok(0)
    }
    fn execute(&mut self, _: &'static str, _: &str) -> Result<(), ImportError> {
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<(), ImportError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_copy_reads_specially() {
        let mut buf = Vec::new();
        for v in [
            Val::Text("a\tb\nc\\d\re"),
            Val::Null,
            Val::Int(-42),
            Val::Text(""),
        ] {
            encode(&mut buf, &v);
            buf.push(b'|');
        }
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "a\\tb\\nc\\\\d\\re|\\N|-42||"
        );
    }

    #[test]
    fn sqlite_keeps_the_leading_columns_of_its_search_tables() {
        assert_eq!(
            Table::EventSearch.sqlite_columns(),
            ["event_id", "room_id", "key", "value"]
        );
        assert_eq!(
            Table::UserDirectorySearch.sqlite_columns(),
            ["user_id", "value"]
        );
        assert_eq!(Table::Events.sqlite_columns(), Table::Events.columns());
    }

    /// Every id column of a room's tables has its space; depths, counts and timestamps none.
    #[test]
    fn id_roles_name_every_room_id_column() {
        let roles = |t: Table| -> Vec<(&str, IdRole)> {
            t.columns()
                .iter()
                .filter_map(|c| t.id_role(c).map(|r| (*c, r)))
                .collect()
        };
        use IdRole::*;
        assert_eq!(roles(Table::Events), [("stream_ordering", Stream)]);
        assert_eq!(
            roles(Table::ReceiptsLinearized),
            [("stream_id", Receipt), ("event_stream_ordering", Stream)]
        );
        assert_eq!(
            roles(Table::StateGroupEdges),
            [
                ("state_group", StateGroup),
                ("prev_state_group", StateGroup)
            ]
        );
        assert_eq!(
            roles(Table::EventAuthChainLinks),
            [("origin_chain_id", Chain), ("target_chain_id", Chain)]
        );
        assert_eq!(
            roles(Table::SlidingSyncJoinedRooms),
            [("event_stream_ordering", Stream), ("bump_stamp", Stream)]
        );
        assert!(roles(Table::UserStatsCurrent).is_empty());
        assert!(roles(Table::RoomStatsState).is_empty());
    }

    /// A room's rows come back as they went in, ids moved by the base and nothing else.
    #[test]
    fn room_rows_replay_moves_ids_only() {
        let mut rows = RoomRows::default();
        rows.insert(Table::StateGroupEdges, &[Val::Int(2), Val::Int(1)])
            .unwrap();
        rows.insert(
            Table::EventPushSummary,
            &[
                Val::Text("@a:x"),
                Val::Text("!r"),
                Val::Int(3),
                Val::Int(7),
                Val::Int(3),
                Val::Null,
                Val::Text("main"),
            ],
        )
        .unwrap();
        let collected = Collect::default();
        let mut out = collected.clone();
        let base = IdBase {
            stream: 100,
            state_group: 10,
            chain: 5,
            receipt: 1,
        };
        rows.replay(&mut out, &base).unwrap();
        assert_eq!(
            *collected.0.lock().unwrap(),
            [
                "state_group_edges [Int(12), Int(11)]",
                "event_push_summary [Text(\"@a:x\"), Text(\"!r\"), Int(3), Int(107), Int(3), Null, Text(\"main\")]",
            ]
        );
    }
}
