//! Direct import: the dataset written straight into a stopped Synapse's SQLite database.
//!
//! Through the client-server API every event is a full Synapse persist (auth checks, state
//! resolution, one push-action row per member), which caps loading at tens of events per
//! second. Here the plan becomes the rows Synapse itself would have written, at database speed:
//!
//! - users, profiles, devices, access tokens, presence, the user directory and user stats;
//! - per room the same events `createRoom` + joins + sends produce (room version 12), each
//!   hashed and signed with the server's own key through `ruma-signatures`, its event id the
//!   reference hash, chained by `prev_events`, with the auth events Synapse selects;
//! - the state of every event as state groups (deltas, a full snapshot every 100 hops, as
//!   Synapse stores them), current state, memberships, forward extremities, relations,
//!   redactions, full-text search rows, receipts, room stats and the sliding-sync tables;
//! - the stream positions of every derived table moved past the last row, so no handler
//!   replays the import at the next boot.
//!
//! Synapse creates its schema first (a boot on an empty data directory); the import needs no
//! knowledge of migrations. What it leaves out: push actions (notification counts start at
//! zero) and the auth-chain cover index (rooms are marked `has_auth_chain_index = false`, which
//! Synapse handles with its older auth-chain algorithm). The result is proved the same way the
//! API load is: the server's own API must answer every sampled count exactly.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use base64::Engine;
use ruma::room_version_rules::RoomVersionRules;
use ruma::signatures::{Ed25519KeyPair, hash_and_sign_event, reference_hash};
use ruma::{CanonicalJsonObject, CanonicalJsonValue, OwnedRoomId, OwnedUserId};
use rusqlite::{Connection, params};
use serde_json::json;

use crate::dataset::plan::{DatasetPlan, EventKind, RoomKind, RoomPlan};
use crate::dataset::seed::{Credentials, LoadReport, bar, step};

/// Synapse stores a full state snapshot once a delta chain is this long (`MAX_STATE_DELTA_HOPS`).
pub const MAX_STATE_DELTA_HOPS: u32 = 100;
/// Room version of every imported room: Synapse 1.163's default.
pub const ROOM_VERSION: &str = "12";
/// `event_json.format_version` of room versions 11+ (`EventFormatVersions.ROOM_V11_HYDRA_PLUS`).
const FORMAT_VERSION: i64 = 4;
const INSTANCE: &str = "master";

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("signing key {path}: {source}")]
    SigningKey {
        path: PathBuf,
        #[source]
        source: crate::util::BoxError,
    },
    #[error("database {path}: step {step}: {source}")]
    Sql {
        path: PathBuf,
        step: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("step {step}: event {what}: {source}")]
    Event {
        step: &'static str,
        what: String,
        #[source]
        source: crate::util::BoxError,
    },
}

/// The server's ed25519 signing key, as Synapse writes it: `ed25519 <version> <base64 seed>`.
pub struct SigningKey {
    pub version: String,
    pair: Ed25519KeyPair,
}

impl SigningKey {
    pub fn read(path: &Path) -> Result<Self, ImportError> {
        let fail = |source: crate::util::BoxError| ImportError::SigningKey {
            path: path.to_path_buf(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.into()))?;
        let line = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .ok_or_else(|| fail("empty".into()))?;
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [alg, version, seed] = parts[..] else {
            return Err(fail(
                format!(
                    "expected `ed25519 <version> <seed>`, got {} fields",
                    parts.len()
                )
                .into(),
            ));
        };
        if alg != "ed25519" {
            return Err(fail(format!("algorithm {alg:?}, expected ed25519").into()));
        }
        let seed = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(seed.trim_end_matches('='))
            .map_err(|e| fail(e.into()))?;
        Self::from_seed(version, &seed).map_err(|m| fail(m.into()))
    }

    /// A key from its 32-byte Ed25519 seed.
    pub fn from_seed(version: &str, seed: &[u8]) -> Result<Self, String> {
        if seed.len() != 32 {
            return Err(format!("seed of {} bytes, expected 32", seed.len()));
        }
        // PKCS#8 v1 wrapping of a raw Ed25519 seed (RFC 8410).
        let mut der = hex::decode("302e020100300506032b657004220420").expect("constant");
        der.extend_from_slice(seed);
        let pair =
            Ed25519KeyPair::from_der(&der, version.to_string()).map_err(|e| format!("key: {e}"))?;
        Ok(Self {
            version: version.to_string(),
            pair,
        })
    }
}

/// One event, built, hashed and signed.
#[derive(Debug, Clone)]
pub struct BuiltEvent {
    pub event_id: String,
    pub event_type: String,
    pub state_key: Option<String>,
    pub sender: String,
    pub depth: i64,
    pub ts: i64,
    pub prev: Option<String>,
    pub auth: Vec<String>,
    /// The stored JSON (signed, with `unsigned.age_ts`).
    pub json: String,
    pub content: serde_json::Value,
}

/// Builds the events of one room: hashing, signing and ids, no database.
pub struct EventFactory<'k> {
    server_name: String,
    key: &'k SigningKey,
    rules: RoomVersionRules,
}

impl<'k> EventFactory<'k> {
    pub fn new(server_name: &str, key: &'k SigningKey) -> Self {
        Self {
            server_name: server_name.to_string(),
            key,
            rules: RoomVersionRules::V12,
        }
    }

    /// Hash, sign and id an event. `room_id` is `None` only for the create event (room v12:
    /// the room id is derived from it).
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        &self,
        room_id: Option<&str>,
        event_type: &str,
        state_key: Option<&str>,
        sender: &str,
        content: serde_json::Value,
        depth: i64,
        ts: i64,
        prev: Option<&str>,
        auth: Vec<String>,
    ) -> Result<BuiltEvent, crate::util::BoxError> {
        let mut v = json!({
            "type": event_type,
            "sender": sender,
            "content": content,
            "depth": depth,
            "origin_server_ts": ts,
            "prev_events": prev.map(|p| vec![p.to_string()]).unwrap_or_default(),
            "auth_events": auth,
        });
        if let Some(r) = room_id {
            v["room_id"] = json!(r);
        }
        if let Some(k) = state_key {
            v["state_key"] = json!(k);
        }
        let mut obj: CanonicalJsonObject = match CanonicalJsonValue::try_from(v) {
            Ok(CanonicalJsonValue::Object(o)) => o,
            Ok(_) => return Err("not an object".into()),
            Err(e) => return Err(e.into()),
        };
        hash_and_sign_event(
            &self.server_name,
            &self.key.pair,
            &mut obj,
            &self.rules.redaction,
        )?;
        let hash = reference_hash(&obj, &self.rules)?;
        let mut unsigned = CanonicalJsonObject::new();
        unsigned.insert(
            "age_ts".into(),
            CanonicalJsonValue::Integer(ruma::Int::new_saturating(ts)),
        );
        obj.insert("unsigned".into(), CanonicalJsonValue::Object(unsigned));
        let json = serde_json::to_string(&obj).map_err(|e| e.to_string())?;
        let content = match obj.get("content") {
            Some(c) => serde_json::to_value(c).map_err(|e| e.to_string())?,
            None => serde_json::Value::Null,
        };
        Ok(BuiltEvent {
            event_id: format!("${hash}"),
            event_type: event_type.to_string(),
            state_key: state_key.map(str::to_string),
            sender: sender.to_string(),
            depth,
            ts,
            prev: prev.map(str::to_string),
            auth: auth_sorted(obj.get("auth_events")),
            json,
            content,
        })
    }
}

fn auth_sorted(v: Option<&CanonicalJsonValue>) -> Vec<String> {
    match v {
        Some(CanonicalJsonValue::Array(a)) => a
            .iter()
            .filter_map(|x| match x {
                CanonicalJsonValue::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The content of a v12 room's `m.room.create` as `createRoom` writes it: a trusted private
/// chat (a DM) makes its invitees `additional_creators` (MSC4289).
fn create_content(room: &RoomPlan, user_id: &dyn Fn(u64) -> String) -> serde_json::Value {
    let mut c = json!({"room_version": ROOM_VERSION});
    if room.kind == RoomKind::Direct {
        let invitees: Vec<String> = room.invited().iter().map(|&u| user_id(u)).collect();
        c["additional_creators"] = json!(invitees);
    }
    c
}

/// Power levels of a v12 room made by `createRoom` with a preset: no user is listed, since v12
/// creators (the sender and a DM's `additional_creators`) are privileged by the create event.
fn power_levels(room: &RoomPlan) -> serde_json::Value {
    let users = serde_json::Map::new();
    let public = matches!(room.kind, RoomKind::Big | RoomKind::Public);
    let mut events = json!({
        "m.room.avatar": 50, "m.room.canonical_alias": 50, "m.room.encryption": 100,
        "m.room.history_visibility": 100, "m.room.name": 50, "m.room.power_levels": 100,
        "m.room.server_acl": 100, "m.room.tombstone": 150,
    });
    if public {
        events["m.call.invite"] = json!(50);
    }
    json!({
        "ban": 50, "events": events, "events_default": 0, "historical": 100,
        "invite": if public { 50 } else { 0 }, "kick": 50, "redact": 50, "state_default": 50,
        "users": users, "users_default": 0,
    })
}

/// A user's profile as Synapse keeps it: the planned display name, else the localpart
/// (Synapse sets it at registration), and the avatar URL.
struct Profile {
    name: String,
    avatar: Option<String>,
}

fn profile(plan: &DatasetPlan, u: u64) -> Profile {
    let p = plan.user(u);
    Profile {
        name: p.display_name.unwrap_or(p.localpart),
        avatar: p.avatar_url,
    }
}

/// The content of a membership event: Synapse copies the target's profile into it.
fn member_content(p: &Profile, membership: &str) -> serde_json::Value {
    let mut c = json!({"membership": membership, "displayname": p.name});
    if let Some(a) = &p.avatar {
        c["avatar_url"] = json!(a);
    }
    c
}

/// Per-room results the user-level tables need afterwards.
struct RoomOutcome {
    room_id: String,
    kind: RoomKind,
    /// Joined members (user index).
    members: Vec<u64>,
}

/// Counters shared across rooms: Synapse's stream orderings and state group ids.
struct Streams {
    stream: i64,
    state_group: i64,
    receipt: i64,
    chain: i64,
    /// Where the dataset's history ends (the import's start): events are dated before it.
    end_ms: i64,
}

impl Streams {
    fn next_stream(&mut self) -> i64 {
        self.stream += 1;
        self.stream
    }
}

/// State of a room while it is built: current state map and its state group.
struct RoomState {
    map: BTreeMap<(String, String), String>,
    group: i64,
    hops: u32,
    /// The create event, in every other state event's `event_auth` (room v12 leaves it out
    /// of `auth_events` but Synapse's `auth_event_ids()` adds it).
    create: Option<String>,
    /// Chain cover index: event -> (chain, sequence), the state key of each state event, the
    /// last sequence of each chain, and the links between chains.
    chain_of: HashMap<String, (i64, i64)>,
    key_of: HashMap<String, (String, String)>,
    chain_max: HashMap<i64, i64>,
    links: LinkMap,
}

/// Links between auth chains, as Synapse's `_LinkMap` keeps them: source chain -> target
/// chain -> source sequence -> target sequence.
#[derive(Default)]
pub struct LinkMap {
    maps: HashMap<i64, HashMap<i64, BTreeMap<i64, i64>>>,
}

impl LinkMap {
    /// Add a link unless an existing one makes it redundant (a link "crossing" it).
    pub fn add_link(&mut self, src: (i64, i64), target: (i64, i64)) -> bool {
        debug_assert_ne!(src.0, target.0);
        let current = self
            .maps
            .entry(src.0)
            .or_default()
            .entry(target.0)
            .or_default();
        if current
            .iter()
            .any(|(&cs, &ct)| cs <= src.1 && target.1 <= ct)
        {
            return false;
        }
        current.insert(src.1, target.1);
        true
    }

    /// Whether `target` is in the auth chain of `src` (following links transitively).
    pub fn exists_path_from(&self, src: (i64, i64), target: (i64, i64)) -> bool {
        if src.0 == target.0 {
            return target.1 <= src.1;
        }
        let mut visited: HashMap<i64, i64> = HashMap::new();
        let mut search = vec![src];
        while let Some((chain, seq)) = search.pop() {
            let v = visited.entry(chain).or_insert(0);
            *v = (*v).max(seq);
            let Some(m) = self.maps.get(&chain) else {
                continue;
            };
            for (&tc, links) in m {
                for (&ss, &ts) in links {
                    if ts <= visited.get(&tc).copied().unwrap_or(0) {
                        continue;
                    }
                    if ss <= seq {
                        if tc == target.0 {
                            if target.1 <= ts {
                                return true;
                            }
                        } else {
                            search.push((tc, ts));
                        }
                    }
                }
            }
        }
        false
    }
}

fn sql(path: &Path, step: &'static str) -> impl Fn(rusqlite::Error) -> ImportError + use<> {
    let path = path.to_path_buf();
    move |source| ImportError::Sql {
        path: path.clone(),
        step,
        source,
    }
}

/// Import the plan into the SQLite database `db` of a stopped Synapse whose schema exists.
pub fn import_sqlite(
    db: &Path,
    signing_key: &Path,
    server_name: &str,
    plan: &DatasetPlan,
    show_progress: bool,
) -> Result<(Credentials, LoadReport), ImportError> {
    let started = Instant::now();
    let key = SigningKey::read(signing_key)?;
    let factory = EventFactory::new(server_name, &key);
    let totals = plan.totals();
    let conn = Connection::open(db).map_err(sql(db, "open"))?;
    // The data directory is a scratch copy until the fixture is saved, so no journal: a
    // failed import is thrown away whole. Synapse puts the file back into WAL mode when it
    // next connects.
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE; \
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -1048576; BEGIN;",
    )
    .map_err(sql(db, "open"))?;
    let max = |q: &str| -> Result<i64, ImportError> {
        conn.query_row(q, [], |r| r.get::<_, Option<i64>>(0))
            .map(|v| v.unwrap_or(0))
            .map_err(sql(db, "read positions"))
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    // Per room: create, power levels, join rules, history visibility; guest access in private
    // kinds; a name except in DMs; then the custom state, invites, joins and timeline.
    let events_total = 4 * totals.rooms
        + totals.private_rooms
        + totals.dm_rooms
        + (totals.rooms - totals.dm_rooms)
        + totals.state_events
        + totals.invites
        + totals.memberships
        + totals.timeline_events;
    let mut streams = Streams {
        stream: max("SELECT MAX(stream_ordering) FROM events")?.max(1),
        state_group: max("SELECT MAX(id) FROM state_groups")?,
        receipt: max("SELECT MAX(stream_id) FROM receipts_linearized")?.max(1),
        chain: max("SELECT MAX(chain_id) FROM event_auth_chains")?,
        end_ms: now_ms,
    };
    let user_id = |u: u64| format!("@{}:{server_name}", DatasetPlan::localpart(u));
    let mut steps = Vec::new();

    // 1. Users, profiles, devices, tokens, presence.
    let t = Instant::now();
    let pb = bar("users", totals.users, show_progress);
    let mut tokens = Vec::with_capacity(totals.users as usize);
    let mut user_ids: Vec<OwnedUserId> = Vec::with_capacity(totals.users as usize);
    {
        let e = sql(db, "users");
        let mut users = conn.prepare_cached("INSERT INTO users (name, password_hash, creation_ts, admin, is_guest, deactivated, shadow_banned, approved, locked, suspended) VALUES (?1, NULL, ?2, 0, 0, 0, 0, 1, 0, 0)").map_err(&e)?;
        let mut profiles = conn
            .prepare_cached(
                "INSERT INTO profiles (user_id, displayname, avatar_url, full_user_id) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(&e)?;
        let mut devices = conn.prepare_cached("INSERT INTO devices (user_id, device_id, display_name, last_seen, ip, hidden) VALUES (?1, ?2, 'hsbench', ?3, '127.0.0.1', 0)").map_err(&e)?;
        let mut dls = conn.prepare_cached("INSERT INTO device_lists_stream (stream_id, user_id, device_id, instance_name) VALUES (?1, ?2, ?3, 'master')").map_err(&e)?;
        let mut toks = conn.prepare_cached("INSERT INTO access_tokens (id, user_id, device_id, token, last_validated, used) VALUES (?1, ?2, ?3, ?4, ?5, 1)").map_err(&e)?;
        let mut presence = conn.prepare_cached("INSERT INTO presence_stream (stream_id, user_id, state, last_active_ts, last_federation_update_ts, last_user_sync_ts, currently_active, instance_name) VALUES (?1, ?2, 'online', ?3, ?3, 0, 1, 'master')").map_err(&e)?;
        let mut ud = conn.prepare_cached("INSERT INTO user_directory (user_id, room_id, display_name, avatar_url) VALUES (?1, NULL, ?2, ?3)").map_err(&e)?;
        let mut uds = conn
            .prepare_cached("INSERT INTO user_directory_search (user_id, value) VALUES (?1, ?2)")
            .map_err(&e)?;
        let mut token_id = max("SELECT MAX(id) FROM access_tokens")?;
        let mut dl_stream = max("SELECT MAX(stream_id) FROM device_lists_stream")?.max(1);
        let mut presence_stream = max("SELECT MAX(stream_id) FROM presence_stream")?.max(1);
        // Accounts are older than the history their rooms hold.
        let creation_s =
            (now_ms - plan.spec().history_seconds as i64 * 1000 - 86_400_000).max(0) / 1000;
        for u in plan.users() {
            let uid = user_id(u.index);
            let name = u
                .display_name
                .clone()
                .unwrap_or_else(|| u.localpart.clone());
            users.execute(params![uid, creation_s]).map_err(&e)?;
            profiles
                .execute(params![u.localpart, name, u.avatar_url, uid])
                .map_err(&e)?;
            for d in 0..u.devices {
                let device = format!("HSB{}{:07}", (b'A' + d as u8) as char, u.index);
                devices.execute(params![uid, device, now_ms]).map_err(&e)?;
                dl_stream += 1;
                dls.execute(params![dl_stream, uid, device]).map_err(&e)?;
                let token = format!("hsb_{}_{}", u.localpart, random_suffix());
                token_id += 1;
                toks.execute(params![token_id, uid, device, token, now_ms])
                    .map_err(&e)?;
                if d == 0 {
                    tokens.push(token);
                }
            }
            if u.presence_online {
                presence_stream += 1;
                presence
                    .execute(params![presence_stream, uid, now_ms])
                    .map_err(&e)?;
            }
            ud.execute(params![uid, name, u.avatar_url]).map_err(&e)?;
            uds.execute(params![uid, format!("{uid} {}", name.to_lowercase())])
                .map_err(&e)?;
            user_ids.push(
                uid.parse()
                    .map_err(|err: ruma::IdParseError| ImportError::Event {
                        step: "users",
                        what: uid.clone(),
                        source: err.into(),
                    })?,
            );
            pb.inc(1);
        }
        set_position(&conn, db, "device_lists_stream", dl_stream)?;
        set_position(&conn, db, "presence_stream", presence_stream)?;
    }
    pb.finish_and_clear();
    steps.push(step("users", totals.users, t));

    // 2. Rooms: state, invites, joins, timeline, receipts.
    let t = Instant::now();
    let pb = bar("events", events_total, show_progress);
    let mut outcomes = Vec::with_capacity(totals.rooms as usize);
    let mut room_ids: Vec<Option<OwnedRoomId>> = vec![None; totals.rooms as usize];
    let mut events_written = 0u64;
    let mut st = Stmts::new(&conn, db)?;
    // Rooms in the order of their last activity: the stream ordering of a room's newest event
    // (sliding sync's `bump_stamp`, the order of every room list) agrees with its timestamp.
    let mut order: Vec<(i64, u64)> = plan
        .rooms()
        .map(|r| (plan.room_times(&r, now_ms).last(), r.index))
        .collect();
    order.sort_unstable();
    for room in order.into_iter().map(|(_, i)| plan.room(i)) {
        let (outcome, n) = import_room(plan, &room, &factory, &mut st, &mut streams, &user_id)
            .map_err(|e| match e {
                ImportError::Event { step, what, source } => ImportError::Event {
                    step,
                    what: format!("{what} in room {} ({})", room.index, room.name),
                    source,
                },
                other => other,
            })?;
        events_written += n;
        pb.inc(n);
        room_ids[room.index as usize] = Some(outcome.room_id.parse::<OwnedRoomId>().map_err(
            |err| ImportError::Event {
                step: "rooms",
                what: outcome.room_id.clone(),
                source: err.into(),
            },
        )?);
        outcomes.push(outcome);
    }
    drop(st);
    let room_ids: Vec<OwnedRoomId> = room_ids
        .into_iter()
        .map(|r| r.expect("every room imported"))
        .collect();
    pb.finish_and_clear();
    steps.push(step("events", events_written, t));

    // 3. What derives from memberships: user directory sharing, user stats, positions.
    let t = Instant::now();
    let max_stream = streams.stream;
    {
        let e = sql(db, "user directory");
        let mut pubs = conn
            .prepare_cached("INSERT INTO users_in_public_rooms (user_id, room_id) VALUES (?1, ?2)")
            .map_err(&e)?;
        let mut privs = conn.prepare_cached("INSERT INTO users_who_share_private_rooms (user_id, other_user_id, room_id) VALUES (?1, ?2, ?3)").map_err(&e)?;
        let mut joined = vec![0i64; totals.users as usize];
        for o in &outcomes {
            let public = matches!(o.kind, RoomKind::Big | RoomKind::Public);
            for &m in &o.members {
                joined[m as usize] += 1;
                if public {
                    pubs.execute(params![user_id(m), o.room_id]).map_err(&e)?;
                } else {
                    for &n in &o.members {
                        if n != m {
                            privs
                                .execute(params![user_id(m), user_id(n), o.room_id])
                                .map_err(&e)?;
                        }
                    }
                }
            }
        }
        let mut stats = conn.prepare_cached("INSERT INTO user_stats_current (user_id, joined_rooms, completed_delta_stream_id) VALUES (?1, ?2, ?3)").map_err(&e)?;
        for (u, n) in joined.iter().enumerate() {
            stats
                .execute(params![user_id(u as u64), n, max_stream])
                .map_err(&e)?;
        }
    }
    // `m.direct` account data for both members of every DM, as clients write it.
    let mut account_data = max(
        "SELECT MAX(s) FROM (SELECT MAX(stream_id) AS s FROM account_data UNION ALL \
         SELECT MAX(stream_id) FROM room_account_data UNION ALL \
         SELECT MAX(stream_id) FROM room_tags_revisions)",
    )?
    .max(1);
    {
        let e = sql(db, "account data");
        let mut ad = conn.prepare_cached("INSERT INTO account_data (user_id, account_data_type, stream_id, content, instance_name) VALUES (?1, 'm.direct', ?2, ?3, 'master')").map_err(&e)?;
        for (u, content) in plan.direct_content(&user_id, &room_ids) {
            account_data += 1;
            ad.execute(params![user_id(u), account_data, content.to_string()])
                .map_err(&e)?;
        }
    }
    set_position(&conn, db, "account_data", account_data)?;
    set_position(&conn, db, "events", max_stream)?;
    set_position(&conn, db, "receipts", streams.receipt)?;
    let e = sql(db, "positions");
    for (table, column) in [
        ("stats_incremental_position", "stream_id"),
        ("user_directory_stream_pos", "stream_id"),
        ("appservice_stream_position", "stream_ordering"),
        ("event_push_summary_stream_ordering", "stream_ordering"),
    ] {
        conn.execute(&format!("UPDATE {table} SET {column} = ?1"), [max_stream])
            .map_err(&e)?;
    }
    conn.execute(
        "UPDATE event_push_summary_last_receipt_stream_id SET stream_id = ?1",
        [streams.receipt],
    )
    .map_err(&e)?;
    conn.execute(
        "UPDATE federation_stream_position SET stream_id = ?1 WHERE type = 'events'",
        [max_stream],
    )
    .map_err(&e)?;
    conn.execute_batch("COMMIT; PRAGMA journal_mode = WAL;")
        .map_err(sql(db, "commit"))?;
    steps.push(step("derived", totals.memberships, t));

    Ok((
        Credentials {
            user_ids,
            tokens,
            room_ids,
        },
        LoadReport {
            method: format!(
                "direct import into Synapse's SQLite database (room version {ROOM_VERSION}, events signed with the server key)"
            ),
            concurrency: 1,
            totals,
            steps,
            total_seconds: started.elapsed().as_secs_f64(),
            partial: false,
        },
    ))
}

fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..20)
        .map(|_| {
            let c = rng.random_range(0..52u8);
            (if c < 26 { b'a' + c } else { b'A' + c - 26 }) as char
        })
        .collect()
}

fn set_position(conn: &Connection, db: &Path, stream: &str, id: i64) -> Result<(), ImportError> {
    conn.execute(
        "DELETE FROM stream_positions WHERE stream_name = ?1 AND instance_name = ?2",
        params![stream, INSTANCE],
    )
    .and_then(|_| {
        conn.execute(
            "INSERT INTO stream_positions (stream_name, instance_name, stream_id) VALUES (?1, ?2, ?3)",
            params![stream, INSTANCE, id],
        )
    })
    .map(|_| ())
    .map_err(sql(db, "stream positions"))
}

/// The prepared statements of the event tables.
struct Stmts<'c> {
    db: &'c Path,
    events: rusqlite::CachedStatement<'c>,
    event_json: rusqlite::CachedStatement<'c>,
    state_events: rusqlite::CachedStatement<'c>,
    edges: rusqlite::CachedStatement<'c>,
    auth: rusqlite::CachedStatement<'c>,
    to_group: rusqlite::CachedStatement<'c>,
    groups: rusqlite::CachedStatement<'c>,
    group_state: rusqlite::CachedStatement<'c>,
    group_edges: rusqlite::CachedStatement<'c>,
    delta: rusqlite::CachedStatement<'c>,
    memberships: rusqlite::CachedStatement<'c>,
    relations: rusqlite::CachedStatement<'c>,
    redactions: rusqlite::CachedStatement<'c>,
    search: rusqlite::CachedStatement<'c>,
    receipts: rusqlite::CachedStatement<'c>,
    receipts_graph: rusqlite::CachedStatement<'c>,
    chains: rusqlite::CachedStatement<'c>,
    chain_links: rusqlite::CachedStatement<'c>,
    conn: &'c Connection,
}

impl<'c> Stmts<'c> {
    fn new(conn: &'c Connection, db: &'c Path) -> Result<Self, ImportError> {
        let e = sql(db, "prepare");
        let p = |q: &str| conn.prepare_cached(q).map_err(&e);
        Ok(Self {
            db,
            events: p(
                "INSERT INTO events (stream_ordering, topological_ordering, event_id, type, room_id, processed, outlier, depth, origin_server_ts, received_ts, sender, contains_url, instance_name, state_key) VALUES (?1, ?2, ?3, ?4, ?5, 1, 0, ?2, ?6, ?6, ?7, 0, 'master', ?8)",
            )?,
            event_json: p(
                "INSERT INTO event_json (event_id, room_id, internal_metadata, json, format_version) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?,
            state_events: p(
                "INSERT INTO state_events (event_id, room_id, type, state_key) VALUES (?1, ?2, ?3, ?4)",
            )?,
            edges: p(
                "INSERT INTO event_edges (event_id, prev_event_id, is_state) VALUES (?1, ?2, 0)",
            )?,
            auth: p("INSERT INTO event_auth (event_id, auth_id, room_id) VALUES (?1, ?2, ?3)")?,
            to_group: p(
                "INSERT INTO event_to_state_groups (event_id, state_group) VALUES (?1, ?2)",
            )?,
            groups: p("INSERT INTO state_groups (id, room_id, event_id) VALUES (?1, ?2, ?3)")?,
            group_state: p(
                "INSERT INTO state_groups_state (state_group, room_id, type, state_key, event_id) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?,
            group_edges: p(
                "INSERT INTO state_group_edges (state_group, prev_state_group) VALUES (?1, ?2)",
            )?,
            delta: p(
                "INSERT INTO current_state_delta_stream (stream_id, room_id, type, state_key, event_id, prev_event_id, instance_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'master')",
            )?,
            memberships: p(
                "INSERT INTO room_memberships (event_id, user_id, sender, room_id, membership, forgotten, display_name, avatar_url, event_stream_ordering, participant) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?9, ?7, ?8)",
            )?,
            relations: p(
                "INSERT INTO event_relations (event_id, relates_to_id, relation_type, aggregation_key) VALUES (?1, ?2, ?3, ?4)",
            )?,
            redactions: p(
                "INSERT INTO redactions (event_id, redacts, have_censored, received_ts, recheck) VALUES (?1, ?2, 0, ?3, 0)",
            )?,
            search: p(
                "INSERT INTO event_search (event_id, room_id, sender, key, value) VALUES (?1, ?2, NULL, ?3, ?4)",
            )?,
            receipts: p(
                "INSERT INTO receipts_linearized (stream_id, room_id, receipt_type, user_id, event_id, thread_id, event_stream_ordering, data, instance_name) VALUES (?1, ?2, 'm.read', ?3, ?4, NULL, ?5, ?6, 'master')",
            )?,
            chains: p(
                "INSERT INTO event_auth_chains (event_id, chain_id, sequence_number) VALUES (?1, ?2, ?3)",
            )?,
            chain_links: p(
                "INSERT INTO event_auth_chain_links (origin_chain_id, origin_sequence_number, target_chain_id, target_sequence_number) VALUES (?1, ?2, ?3, ?4)",
            )?,
            receipts_graph: p(
                "INSERT INTO receipts_graph (room_id, receipt_type, user_id, event_ids, thread_id, data) VALUES (?1, 'm.read', ?2, ?3, NULL, ?4)",
            )?,
            conn,
        })
    }

    fn err(&self, step: &'static str) -> impl Fn(rusqlite::Error) -> ImportError + use<> {
        sql(self.db, step)
    }
}

/// A room's events as `createRoom` with a preset, the invites, the joins and the timeline
/// produce them, written with every row Synapse keeps for them.
fn import_room(
    plan: &DatasetPlan,
    room: &RoomPlan,
    f: &EventFactory<'_>,
    st: &mut Stmts<'_>,
    streams: &mut Streams,
    user_id: &dyn Fn(u64) -> String,
) -> Result<(RoomOutcome, u64), ImportError> {
    let creator = user_id(room.creator());
    let mut state = RoomState {
        map: BTreeMap::new(),
        group: 0,
        hops: 0,
        create: None,
        chain_of: HashMap::new(),
        key_of: HashMap::new(),
        chain_max: HashMap::new(),
        links: LinkMap::default(),
    };
    let mut count = 0u64;
    let mut depth = 0i64;
    let mut prev: Option<String> = None;
    let mut room_id = String::new();
    // user index -> (membership event id, stream ordering) of the latest membership.
    let mut membership: HashMap<u64, (String, i64, &'static str)> = HashMap::new();
    let mut participants = std::collections::HashSet::new();
    let mut name: Option<String> = None;
    let mut last_bump = 0i64;
    // When each event happens: the clock moves a millisecond per event and jumps forward to the
    // planned time of each join and timeline event.
    let times = plan.room_times(room, streams.end_ms);
    let clock = std::cell::Cell::new(times.created);

    // Sends one event: build it, then write every row it owns.
    let mut send = |room_id: &mut String,
                    event_type: &str,
                    state_key: Option<String>,
                    sender: &str,
                    content: serde_json::Value,
                    auth: Vec<String>,
                    state: &mut RoomState,
                    st: &mut Stmts<'_>,
                    streams: &mut Streams|
     -> Result<(BuiltEvent, i64), ImportError> {
        depth += 1;
        let so = streams.next_stream();
        let ts = clock.get();
        clock.set(ts + 1);
        let ev = f
            .build(
                (!room_id.is_empty()).then_some(room_id.as_str()),
                event_type,
                state_key.as_deref(),
                sender,
                content,
                depth,
                ts,
                prev.as_deref(),
                auth,
            )
            .map_err(|source| ImportError::Event {
                step: "events",
                what: format!("{event_type} #{depth}"),
                source,
            })?;
        if room_id.is_empty() {
            *room_id = format!("!{}", &ev.event_id[1..]);
        }
        let rid = room_id.as_str();
        let e = st.err("events");
        st.events
            .execute(params![
                so,
                ev.depth,
                ev.event_id,
                ev.event_type,
                rid,
                ev.ts,
                ev.sender,
                ev.state_key
            ])
            .map_err(&e)?;
        st.event_json
            .execute(params![ev.event_id, rid, "{}", ev.json, FORMAT_VERSION])
            .map_err(&e)?;
        if let Some(p) = &ev.prev {
            st.edges.execute(params![ev.event_id, p]).map_err(&e)?;
        }
        if let Some(k) = &ev.state_key {
            // event_auth and the chain cover index exist for state events only.
            let auth: Vec<String> = state
                .create
                .iter()
                .cloned()
                .chain(ev.auth.iter().cloned())
                .collect();
            for a in &auth {
                st.auth.execute(params![ev.event_id, a, rid]).map_err(&e)?;
            }
            let key = (ev.event_type.clone(), k.clone());
            let tuple = chain_cover(state, streams, &ev.event_id, &key, &auth);
            st.chains
                .execute(params![ev.event_id, tuple.0, tuple.1])
                .map_err(&e)?;
            for (tc, ts) in tuple.2 {
                st.chain_links
                    .execute(params![tuple.0, tuple.1, tc, ts])
                    .map_err(&e)?;
            }
            if state.create.is_none() {
                state.create = Some(ev.event_id.clone());
            }
            st.state_events
                .execute(params![ev.event_id, rid, ev.event_type, k])
                .map_err(&e)?;
            let replaced = state.map.insert(key, ev.event_id.clone());
            st.delta
                .execute(params![so, rid, ev.event_type, k, ev.event_id, replaced])
                .map_err(&e)?;
            // A new state group: a delta on the previous one, or a full snapshot.
            streams.state_group += 1;
            let g = streams.state_group;
            st.groups
                .execute(params![g, rid, ev.event_id])
                .map_err(&e)?;
            if state.group != 0 && state.hops < MAX_STATE_DELTA_HOPS {
                st.group_edges
                    .execute(params![g, state.group])
                    .map_err(&e)?;
                st.group_state
                    .execute(params![g, rid, ev.event_type, k, ev.event_id])
                    .map_err(&e)?;
                state.hops += 1;
            } else {
                for ((t, sk), id) in &state.map {
                    st.group_state
                        .execute(params![g, rid, t, sk, id])
                        .map_err(&e)?;
                }
                state.hops = 0;
            }
            state.group = g;
        }
        st.to_group
            .execute(params![ev.event_id, state.group])
            .map_err(&e)?;
        prev = Some(ev.event_id.clone());
        Ok((ev, so))
    };

    let pl_key = ("m.room.power_levels".to_string(), String::new());
    let jr_key = ("m.room.join_rules".to_string(), String::new());
    let member_key = |u: u64| ("m.room.member".to_string(), user_id(u));
    let get = |state: &RoomState, k: &(String, String)| state.map.get(k).cloned();

    // createRoom: create, the creator's join, power levels, join rules, history visibility,
    // guest access (private presets), initial state, name.
    let (_, create_so) = send(
        &mut room_id,
        "m.room.create",
        Some(String::new()),
        &creator,
        create_content(room, user_id),
        vec![],
        &mut state,
        st,
        streams,
    )?;
    let c = room.creator();
    let (ev, so) = send(
        &mut room_id,
        "m.room.member",
        Some(creator.clone()),
        &creator,
        member_content(&profile(plan, c), "join"),
        vec![],
        &mut state,
        st,
        streams,
    )?;
    write_membership(st, &room_id, &ev, so, &creator, "join", &profile(plan, c))?;
    membership.insert(c, (ev.event_id, so, "join"));
    count += 2;
    let creator_member = get(&state, &member_key(c)).expect("just joined");
    send(
        &mut room_id,
        "m.room.power_levels",
        Some(String::new()),
        &creator,
        power_levels(room),
        vec![creator_member.clone()],
        &mut state,
        st,
        streams,
    )?;
    count += 1;
    let pl = get(&state, &pl_key).expect("just sent");
    let public = matches!(room.kind, RoomKind::Big | RoomKind::Public);
    let mut creator_state: Vec<(&str, String, serde_json::Value)> = vec![
        (
            "m.room.join_rules",
            String::new(),
            json!({"join_rule": if public { "public" } else { "invite" }}),
        ),
        (
            "m.room.history_visibility",
            String::new(),
            json!({"history_visibility": "shared"}),
        ),
    ];
    if !public {
        creator_state.push((
            "m.room.guest_access",
            String::new(),
            json!({"guest_access": "can_join"}),
        ));
    }
    for k in 0..room.state_events {
        creator_state.push((
            crate::dataset::plan::STATE_EVENT_TYPE,
            format!("k{k}"),
            json!({"value": k, "note": "hsbench large-state room"}),
        ));
    }
    if room.kind != RoomKind::Direct {
        creator_state.push(("m.room.name", String::new(), json!({"name": room.name})));
    }
    for (t, k, content) in creator_state {
        let (ev, so) = send(
            &mut room_id,
            t,
            Some(k),
            &creator,
            content,
            vec![pl.clone(), creator_member.clone()],
            &mut state,
            st,
            streams,
        )?;
        if t == "m.room.name" {
            name = Some(room.name.clone());
            st.search
                .execute(params![ev.event_id, room_id, "content.name", room.name])
                .map_err(st.err("events"))?;
        }
        let _ = so;
        count += 1;
    }
    let jr = get(&state, &jr_key).expect("sent");

    // Invites (private rooms and DMs), by the creator.
    for &u in room.invited() {
        let target = user_id(u);
        let p = profile(plan, u);
        let mut content = member_content(&p, "invite");
        if room.kind == RoomKind::Direct {
            content["is_direct"] = json!(true);
        }
        let (ev, so) = send(
            &mut room_id,
            "m.room.member",
            Some(target.clone()),
            &creator,
            content,
            vec![pl.clone(), jr.clone(), creator_member.clone()],
            &mut state,
            st,
            streams,
        )?;
        write_membership(st, &room_id, &ev, so, &creator, "invite", &p)?;
        membership.insert(u, (ev.event_id, so, "invite"));
        count += 1;
    }

    // Joins of everyone else.
    for (j, &u) in room.members[1..].iter().enumerate() {
        clock.set(clock.get().max(times.joins[j]));
        let uid = user_id(u);
        let p = profile(plan, u);
        let mut auth = vec![pl.clone(), jr.clone()];
        if let Some((prior, _, _)) = membership.get(&u) {
            auth.push(prior.clone());
        }
        let (ev, so) = send(
            &mut room_id,
            "m.room.member",
            Some(uid.clone()),
            &uid,
            member_content(&p, "join"),
            auth,
            &mut state,
            st,
            streams,
        )?;
        write_membership(st, &room_id, &ev, so, &uid, "join", &p)?;
        membership.insert(u, (ev.event_id, so, "join"));
        count += 1;
    }

    // The timeline.
    let timeline = plan.timeline(room);
    let mut ids: Vec<(String, i64)> = Vec::with_capacity(timeline.len());
    let mut sent_at: Vec<i64> = Vec::with_capacity(timeline.len());
    for (i, e) in timeline.iter().enumerate() {
        clock.set(clock.get().max(times.timeline[i]));
        let sender = user_id(e.sender);
        let target = |to: &usize| ids[*to].0.clone();
        let content = match &e.kind {
            EventKind::Message { body } => json!({"msgtype": "m.text", "body": body}),
            EventKind::Reply { to, body } => json!({
                "msgtype": "m.text", "body": body,
                "m.relates_to": {"m.in_reply_to": {"event_id": target(to)}}}),
            EventKind::Reaction { to, key } => json!({
                "m.relates_to": {"rel_type": "m.annotation", "event_id": target(to), "key": key}}),
            EventKind::Edit { to, body } => json!({
                "msgtype": "m.text", "body": format!("* {body}"),
                "m.new_content": {"msgtype": "m.text", "body": body},
                "m.relates_to": {"rel_type": "m.replace", "event_id": target(to)}}),
            EventKind::Redaction { to } => json!({"redacts": target(to)}),
        };
        let member = get(&state, &member_key(e.sender)).expect("senders are members");
        let (ev, so) = send(
            &mut room_id,
            e.event_type(),
            None,
            &sender,
            content,
            vec![pl.clone(), member],
            &mut state,
            st,
            streams,
        )?;
        let err = st.err("events");
        match &e.kind {
            EventKind::Message { body } | EventKind::Reply { body, .. } => {
                st.search
                    .execute(params![ev.event_id, room_id, "content.body", body])
                    .map_err(&err)?;
            }
            EventKind::Edit { to, body } => {
                st.search
                    .execute(params![
                        ev.event_id,
                        room_id,
                        "content.body",
                        format!("* {body}")
                    ])
                    .map_err(&err)?;
                st.relations
                    .execute(params![
                        ev.event_id,
                        target(to),
                        "m.replace",
                        Option::<String>::None
                    ])
                    .map_err(&err)?;
            }
            EventKind::Reaction { to, key } => {
                st.relations
                    .execute(params![ev.event_id, target(to), "m.annotation", key])
                    .map_err(&err)?;
            }
            EventKind::Redaction { to } => {
                st.redactions
                    .execute(params![ev.event_id, target(to), ev.ts])
                    .map_err(&err)?;
            }
        }
        if e.event_type() == "m.room.message" {
            last_bump = so;
        }
        participants.insert(e.sender);
        sent_at.push(ev.ts);
        ids.push((ev.event_id, so));
        count += 1;
    }

    // Receipts.
    let err = st.err("receipts");
    let receipts = plan.receipts(room);
    let mut read_up_to: HashMap<u64, i64> = HashMap::new();
    for &(m, at) in &receipts {
        read_up_to.insert(m, ids[at].1);
    }
    // Unread counts as Synapse's push rules leave them (`.m.rule.message` notifies; reactions,
    // edits and redactions don't; a redaction takes its target's notification away): one
    // `event_push_summary` row per member with something unread since their receipt, or since
    // they joined.
    let redacted: std::collections::HashSet<usize> = timeline
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Redaction { to } => Some(to),
            _ => None,
        })
        .collect();
    let notifying: Vec<(i64, u64)> = timeline
        .iter()
        .enumerate()
        .filter(|(i, e)| {
            matches!(e.kind, EventKind::Message { .. } | EventKind::Reply { .. })
                && !redacted.contains(i)
        })
        .map(|(i, e)| (ids[i].1, e.sender))
        .collect();
    // An invite notifies its target (`.m.rule.invite_for_me`; not an unread message): it counts
    // until a receipt, and receipts are on timeline events, which come after every join.
    let invited: std::collections::HashSet<u64> = room.invited().iter().copied().collect();
    let mut summary = st
        .conn
        .prepare_cached("INSERT INTO event_push_summary (user_id, room_id, notif_count, stream_ordering, unread_count, last_receipt_stream_ordering, thread_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'main')")
        .map_err(&err)?;
    let last_so = ids.last().map(|x| x.1).unwrap_or(streams.stream);
    for &u in &room.members {
        let receipt = read_up_to.get(&u).copied();
        let since = receipt.unwrap_or(membership[&u].1);
        let unread = notifying
            .iter()
            .filter(|(so, sender)| *so > since && *sender != u)
            .count() as i64;
        let notif = unread + i64::from(receipt.is_none() && invited.contains(&u));
        if notif > 0 {
            summary
                .execute(params![
                    user_id(u),
                    room_id,
                    notif,
                    last_so,
                    unread,
                    receipt
                ])
                .map_err(&err)?;
        }
    }
    for (m, at) in receipts {
        streams.receipt += 1;
        let (eid, so) = &ids[at];
        // Read a little after it arrived, never after the history's end.
        let read_at = (sent_at[at] + 90_000).min(streams.end_ms);
        let data = format!("{{\"ts\":{read_at}}}");
        st.receipts
            .execute(params![streams.receipt, room_id, user_id(m), eid, so, data])
            .map_err(&err)?;
        st.receipts_graph
            .execute(params![room_id, user_id(m), format!("[\"{eid}\"]"), data])
            .map_err(&err)?;
    }

    // Room-level rows: the room, its extremity, current state, stats, sliding sync.
    let last = prev.clone().expect("a room has events");
    let last_so = streams.stream;
    let conn = st.conn;
    let e = sql(st.db, "rooms");
    conn.execute("INSERT INTO rooms (room_id, is_public, creator, room_version, has_auth_chain_index) VALUES (?1, 0, ?2, ?3, 1)", params![room_id, creator, ROOM_VERSION]).map_err(&e)?;
    conn.execute(
        "INSERT INTO room_depth (room_id, min_depth) VALUES (?1, 1)",
        [&room_id],
    )
    .map_err(&e)?;
    conn.execute(
        "INSERT INTO event_forward_extremities (event_id, room_id) VALUES (?1, ?2)",
        params![last, room_id],
    )
    .map_err(&e)?;
    conn.execute("INSERT INTO stream_ordering_to_exterm (stream_ordering, room_id, event_id) VALUES (?1, ?2, ?3)", params![last_so, room_id, last]).map_err(&e)?;
    {
        let mut cse = conn.prepare_cached("INSERT INTO current_state_events (event_id, room_id, type, state_key, membership, event_stream_ordering) VALUES (?1, ?2, ?3, ?4, ?5, (SELECT stream_ordering FROM events WHERE event_id = ?1))").map_err(&e)?;
        let membership_of: HashMap<&str, &str> = membership
            .values()
            .map(|(eid, _, m)| (eid.as_str(), *m))
            .collect();
        for ((t, k), id) in &state.map {
            let m = if t == "m.room.member" {
                membership_of.get(id.as_str()).copied()
            } else {
                None
            };
            cse.execute(params![id, room_id, t, k, m]).map_err(&e)?;
        }
    }
    let joined: Vec<u64> = room.members.clone();
    let mut lcm = conn.prepare_cached("INSERT INTO local_current_membership (room_id, user_id, event_id, membership, event_stream_ordering) VALUES (?1, ?2, ?3, 'join', ?4)").map_err(&e)?;
    let mut snap = conn.prepare_cached("INSERT INTO sliding_sync_membership_snapshots (room_id, user_id, sender, membership_event_id, membership, forgotten, event_stream_ordering, event_instance_name, has_known_state, room_type, room_name, is_encrypted, tombstone_successor_room_id) VALUES (?1, ?2, ?2, ?3, 'join', 0, ?4, 'master', 1, NULL, ?5, 0, NULL)").map_err(&e)?;
    let mut part = conn
        .prepare_cached("UPDATE room_memberships SET participant = 1 WHERE event_id = ?1")
        .map_err(&e)?;
    for &u in &joined {
        let (eid, so, _) = &membership[&u];
        lcm.execute(params![room_id, user_id(u), eid, so])
            .map_err(&e)?;
        // The creator joined before the room had a name.
        let nm = if u == room.creator() {
            None
        } else {
            name.clone()
        };
        snap.execute(params![room_id, user_id(u), eid, so, nm])
            .map_err(&e)?;
        if participants.contains(&u) {
            part.execute([eid]).map_err(&e)?;
        }
    }
    conn.execute("INSERT INTO sliding_sync_joined_rooms (room_id, event_stream_ordering, bump_stamp, room_type, room_name, is_encrypted, tombstone_successor_room_id) VALUES (?1, ?2, ?3, NULL, ?4, 0, NULL)", params![room_id, last_so, if last_bump > 0 { last_bump } else { create_so }, name]).map_err(&e)?;
    conn.execute("INSERT INTO room_stats_current (room_id, current_state_events, joined_members, invited_members, left_members, banned_members, local_users_in_room, completed_delta_stream_id, knocked_members) VALUES (?1, ?2, ?3, 0, 0, 0, ?3, ?4, 0)", params![room_id, state.map.len() as i64, joined.len() as i64, last_so]).map_err(&e)?;
    conn.execute("INSERT INTO room_stats_state (room_id, name, canonical_alias, join_rules, history_visibility, encryption, avatar, guest_access, is_federatable, topic, room_type) VALUES (?1, ?2, NULL, ?3, 'shared', NULL, NULL, ?4, 1, NULL, NULL)", params![room_id, name, if public { "public" } else { "invite" }, (!public).then_some("can_join")]).map_err(&e)?;

    Ok((
        RoomOutcome {
            room_id,
            kind: room.kind,
            members: joined,
        },
        count,
    ))
}

/// Place a new state event in the chain cover index as Synapse's `_allocate_chain_ids` and
/// `_calculate_chain_cover_index` do: it continues the chain of an auth event with the same
/// type and state key when that event ends its chain, else starts a chain; then it links to
/// the auth events not already reachable through another one. Returns (chain, sequence, links).
fn chain_cover(
    state: &mut RoomState,
    streams: &mut Streams,
    event_id: &str,
    key: &(String, String),
    auth: &[String],
) -> (i64, i64, Vec<(i64, i64)>) {
    let continued = auth
        .iter()
        .find(|a| state.key_of.get(*a) == Some(key))
        .and_then(|a| state.chain_of.get(a).copied())
        .filter(|(c, s)| state.chain_max.get(c) == Some(s));
    let (chain, seq) = match continued {
        Some((c, s)) => (c, s + 1),
        None => {
            streams.chain += 1;
            (streams.chain, 1)
        }
    };
    state.chain_max.insert(chain, seq);
    state.chain_of.insert(event_id.to_string(), (chain, seq));
    state.key_of.insert(event_id.to_string(), key.clone());
    let mut reduction: Vec<&String> = auth
        .iter()
        .filter(|a| state.chain_of[*a].0 != chain)
        .collect();
    for start in auth {
        for end in auth {
            if start != end
                && state
                    .links
                    .exists_path_from(state.chain_of[start], state.chain_of[end])
            {
                reduction.retain(|a| *a != end);
            }
        }
    }
    let mut links = Vec::new();
    for a in reduction {
        // Synapse persists every link of the reduction, redundant or not.
        let target = state.chain_of[a];
        state.links.add_link((chain, seq), target);
        links.push(target);
    }
    (chain, seq, links)
}

/// The `room_memberships` row of a membership event; the target is its state key.
fn write_membership(
    st: &mut Stmts<'_>,
    room_id: &str,
    ev: &BuiltEvent,
    so: i64,
    sender: &str,
    membership: &str,
    target: &Profile,
) -> Result<(), ImportError> {
    st.memberships
        .execute(params![
            ev.event_id,
            ev.state_key,
            sender,
            room_id,
            membership,
            target.name,
            so,
            0,
            target.avatar
        ])
        .map_err(st.err("memberships"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Synapse 1.163.2's signing key of a throwaway fixture, and two events it wrote (a room's
    /// create event and the creator's join): the factory must reproduce their hashes,
    /// signatures and ids byte for byte.
    const KEY: &str = "ed25519 a_yoDY 4KXaWUvtnaQVNsCqT89iNWgrpT8H332rFMSiKCpOKTg\n";

    fn key() -> SigningKey {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hsbench.local.signing.key");
        std::fs::write(&path, KEY).unwrap();
        SigningKey::read(&path).unwrap()
    }

    #[test]
    fn events_match_synapse_byte_for_byte() {
        let key = key();
        assert_eq!(key.version, "a_yoDY");
        let f = EventFactory::new("hsbench.local", &key);
        let user = "@hsb0000000:hsbench.local";
        let create = f
            .build(
                None,
                "m.room.create",
                Some(""),
                user,
                json!({"room_version": "12"}),
                1,
                1795462982368,
                None,
                vec![],
            )
            .unwrap();
        assert_eq!(
            create.event_id,
            "$ep_yD8Qmd-LAziJQRzpvJBH_OJmoqQtvhfRCai9APEg"
        );
        let stored: serde_json::Value = serde_json::from_str(&create.json).unwrap();
        assert_eq!(
            stored["hashes"]["sha256"],
            "8+HhyAdmF/0WRDQj9tYESARCv5FaItedf9iZT/WzgHE"
        );
        assert_eq!(
            stored["signatures"]["hsbench.local"]["ed25519:a_yoDY"],
            "bCrxsqlS9AYzeU663pXtNcHfan1abj2rt56DU9c3VjFFkaV2E9s1EHMfcPkmGCaCH4UJLeKohrKAe6ChCY8ACA"
        );
        assert_eq!(stored["unsigned"]["age_ts"], 1795462982368i64);
        assert!(stored.get("room_id").is_none(), "v12 create has no room id");
        let room = format!("!{}", &create.event_id[1..]);
        let join = f
            .build(
                Some(&room),
                "m.room.member",
                Some(user),
                user,
                json!({"displayname": "Bench User 0", "membership": "join"}),
                2,
                1795462982633,
                Some(&create.event_id),
                vec![],
            )
            .unwrap();
        assert_eq!(
            join.event_id,
            "$Kqbl9FF70tIkTVZml6A8yWHxrth8sds3vI_jev8_ASw"
        );
        let stored: serde_json::Value = serde_json::from_str(&join.json).unwrap();
        assert_eq!(
            stored["signatures"]["hsbench.local"]["ed25519:a_yoDY"],
            "v7tKkkUNDaLB2O5Wr43ErpHCAVEpKDqinELq10/5IqM+u7bcarathnhCWrJ+CRDMh30gjE8L8aBhc6kBzOaUAQ"
        );
        assert_eq!(join.prev.as_deref(), Some(create.event_id.as_str()));
    }

    #[test]
    fn a_bad_signing_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.signing.key");
        std::fs::write(&path, "ed25519 a_yoDY\n").unwrap();
        let e = SigningKey::read(&path).err().unwrap().to_string();
        assert!(e.contains("k.signing.key") && e.contains("2 fields"), "{e}");
        std::fs::write(&path, "ed25519 v AAAA\n").unwrap();
        let e = SigningKey::read(&path).err().unwrap().to_string();
        assert!(e.contains("3 bytes"), "{e}");
    }
}
