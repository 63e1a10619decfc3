//! Where the direct import's rows go: Synapse's SQLite file, or its PostgreSQL database.
//!
//! The import (`import.rs`) turns the plan into rows; a [`Sink`] only stores them. Every row is
//! a [`Table`]'s logical columns, the same on both databases; the few columns that differ
//! (full-text search) are staged on PostgreSQL and turned into `tsvector`s at the end, with the
//! exact expressions Synapse's stores use.
//!
//! - [`SqliteSink`](crate::dataset::sqlite_sink::SqliteSink): prepared `INSERT`s in one transaction, no journal (the data directory is a
//!   scratch copy until the fixture is saved).
//! - [`PgSink`](crate::dataset::pg_sink::PgSink): each table's rows are encoded in `COPY` text format into a buffer; full buffers
//!   go to a writer thread that streams them with `COPY … FROM STDIN` while the import builds
//!   and signs the next events, so signing and the server's writes overlap on two cores. The
//!   rows and the sequences Synapse's id generators check at start-up (moved past the last row)
//!   are one transaction; then each table's computed columns, keys and indexes are built and
//!   the table analysed, the tables side by side on one connection per core; the foreign keys
//!   last.

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
    pub(crate) fn sqlite_full_text(self) -> bool {
        matches!(self, Table::UserDirectorySearch | Table::EventSearch)
    }

    /// How many leading logical columns SQLite stores (its full-text tables keep fewer).
    pub(crate) fn sqlite_columns(self) -> &'static [&'static str] {
        let c = self.columns();
        match self {
            Table::UserDirectorySearch => &c[..2],
            Table::EventSearch => &c[..4],
            _ => c,
        }
    }

    /// PostgreSQL: the statement that turns the staged rows into the table's own, for tables
    /// whose columns are computed by the database (`tsvector`s, as Synapse computes them).
    pub(crate) fn pg_from_stage(self) -> Option<&'static str> {
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

    pub(crate) fn pg_stage_name(self) -> String {
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
    pub(crate) fn each_row(
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
mod tests;
