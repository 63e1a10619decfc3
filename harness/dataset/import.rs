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
use std::path::Path;
use std::time::Instant;

use base64::Engine;
use ruma::room_version_rules::RoomVersionRules;
use ruma::signatures::{Ed25519KeyPair, hash_and_sign_event, reference_hash};
use ruma::{CanonicalJsonObject, CanonicalJsonValue, OwnedRoomId, OwnedUserId};
use serde_json::json;

use crate::dataset::plan::{DatasetPlan, EventKind, RoomKind, RoomPlan};
use crate::dataset::seed::{Credentials, LoadReport, bar, step};
use crate::dataset::sink::{IdBase, PgSink, RoomRows, Sink, SqliteSink, Table, Val};
use crate::row;

/// Synapse stores a full state snapshot once a delta chain is this long (`MAX_STATE_DELTA_HOPS`).
pub const MAX_STATE_DELTA_HOPS: u32 = 100;
/// Room version of every imported room: Synapse 1.163's default.
pub const ROOM_VERSION: &str = "12";
/// `event_json.format_version` of room versions 11+ (`EventFormatVersions.ROOM_V11_HYDRA_PLUS`).
const FORMAT_VERSION: i64 = 4;
const INSTANCE: &str = "master";

pub use crate::dataset::error::ImportError;

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
    /// The room's index in the plan.
    index: u64,
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
    /// Stream ordering of each state event.
    so_of: HashMap<String, i64>,
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

/// Import the plan into the SQLite database `db` of a stopped Synapse whose schema exists.
pub fn import_sqlite(
    db: &Path,
    signing_key: &Path,
    server_name: &str,
    plan: &DatasetPlan,
    show_progress: bool,
) -> Result<(Credentials, LoadReport), ImportError> {
    import(
        Box::new(SqliteSink::open(db)?),
        signing_key,
        server_name,
        plan,
        show_progress,
    )
}

/// Import the plan into the PostgreSQL database of a stopped Synapse whose schema exists, at
/// `conninfo` (libpq key=value form; `target` names it in errors and the report).
pub fn import_postgres(
    conninfo: &str,
    target: &str,
    signing_key: &Path,
    server_name: &str,
    plan: &DatasetPlan,
    show_progress: bool,
) -> Result<(Credentials, LoadReport), ImportError> {
    import(
        Box::new(PgSink::connect(conninfo, target)?),
        signing_key,
        server_name,
        plan,
        show_progress,
    )
}

/// The plan as rows, into `sink`.
pub fn import(
    sink: Box<dyn Sink>,
    signing_key: &Path,
    server_name: &str,
    plan: &DatasetPlan,
    show_progress: bool,
) -> Result<(Credentials, LoadReport), ImportError> {
    let key = SigningKey::read(signing_key)?;
    let workers = crate::util::thread::cores();
    let now_ms = chrono::Utc::now().timestamp_millis();
    import_with(
        sink,
        &key,
        server_name,
        plan,
        show_progress,
        now_ms,
        workers,
    )
}

/// [`import`] with the history ending at `now_ms` and rooms built on `workers` threads.
fn import_with(
    mut sink: Box<dyn Sink>,
    key: &SigningKey,
    server_name: &str,
    plan: &DatasetPlan,
    show_progress: bool,
    now_ms: i64,
    workers: usize,
) -> Result<(Credentials, LoadReport), ImportError> {
    let started = Instant::now();
    let factory = EventFactory::new(server_name, key);
    let totals = plan.totals();
    let described = sink.describe();
    let users = sink.query_i64("SELECT COUNT(*) FROM users")?;
    if users > 0 {
        return Err(ImportError::NotEmpty {
            target: sink.target(),
            users,
        });
    }
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
        stream: sink
            .query_i64("SELECT MAX(stream_ordering) FROM events")?
            .max(1),
        state_group: sink.query_i64("SELECT MAX(id) FROM state_groups")?,
        receipt: sink
            .query_i64("SELECT MAX(stream_id) FROM receipts_linearized")?
            .max(1),
        chain: sink.query_i64("SELECT MAX(chain_id) FROM event_auth_chains")?,
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
        let mut token_id = sink.query_i64("SELECT MAX(id) FROM access_tokens")?;
        let mut dl_stream = sink
            .query_i64("SELECT MAX(stream_id) FROM device_lists_stream")?
            .max(1);
        let mut presence_stream = sink
            .query_i64("SELECT MAX(stream_id) FROM presence_stream")?
            .max(1);
        // Accounts are older than the history their rooms hold.
        let creation_s =
            (now_ms - plan.spec().history_seconds as i64 * 1000 - 86_400_000).max(0) / 1000;
        let domain = server_name;
        for u in plan.users() {
            let uid = user_id(u.index);
            let name = u
                .display_name
                .clone()
                .unwrap_or_else(|| u.localpart.clone());
            let s = &mut *sink;
            s.insert(
                Table::Users,
                row![
                    &uid,
                    Val::Null,
                    creation_s,
                    0,
                    0,
                    0,
                    false,
                    true,
                    false,
                    false
                ],
            )?;
            s.insert(
                Table::Profiles,
                row![&u.localpart, &name, &u.avatar_url, &uid],
            )?;
            for d in 0..u.devices {
                let device = format!("HSB{}{:07}", (b'A' + d as u8) as char, u.index);
                s.insert(
                    Table::Devices,
                    row![&uid, &device, "hsbench", now_ms, "127.0.0.1", false],
                )?;
                dl_stream += 1;
                s.insert(
                    Table::DeviceListsStream,
                    row![dl_stream, &uid, &device, INSTANCE],
                )?;
                let token = format!("hsb_{}_{}", u.localpart, random_suffix());
                token_id += 1;
                s.insert(
                    Table::AccessTokens,
                    row![token_id, &uid, &device, &token, now_ms, true],
                )?;
                if d == 0 {
                    tokens.push(token);
                }
            }
            if u.presence_online {
                presence_stream += 1;
                s.insert(
                    Table::PresenceStream,
                    row![
                        presence_stream,
                        &uid,
                        "online",
                        now_ms,
                        now_ms,
                        0,
                        true,
                        INSTANCE
                    ],
                )?;
            }
            s.insert(
                Table::UserDirectory,
                row![&uid, Val::Null, &name, &u.avatar_url],
            )?;
            let lower = name.to_lowercase();
            s.insert(
                Table::UserDirectorySearch,
                row![
                    &uid,
                    &format!("{uid} {lower}"),
                    &u.localpart,
                    domain,
                    &lower
                ],
            )?;
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
        set_position(&mut *sink, "device_lists_stream", dl_stream)?;
        set_position(&mut *sink, "presence_stream", presence_stream)?;
    }
    pb.finish_and_clear();
    steps.push(step("users", totals.users, t));

    // 2. Rooms: state, invites, joins, timeline, receipts.
    let t = Instant::now();
    let pb = bar("events", events_total, show_progress);
    let mut outcomes = Vec::with_capacity(totals.rooms as usize);
    let mut room_ids: Vec<Option<OwnedRoomId>> = vec![None; totals.rooms as usize];
    let mut events_written = 0u64;
    // Rooms in the order of their last activity: the stream ordering of a room's newest event
    // (sliding sync's `bump_stamp`, the order of every room list) agrees with its timestamp.
    let mut order: Vec<(i64, u64)> = plan
        .rooms()
        .map(|r| (plan.room_times(&r, now_ms).last(), r.index))
        .collect();
    order.sort_unstable();
    // Each room is built, hashed and signed on a worker with its ids numbered from zero, while
    // this thread writes the rooms before it in order, every id moved past the rooms written.
    let order: Vec<u64> = order.into_iter().map(|(_, i)| i).collect();
    let name_room = |room: &RoomPlan| {
        let (index, name) = (room.index, room.name.clone());
        move |e| match e {
            ImportError::Event { step, what, source } => ImportError::Event {
                step,
                what: format!("{what} in room {index} ({name})"),
                source,
            },
            other => other,
        }
    };
    let build = |index: u64| -> Result<BuiltRoom, ImportError> {
        let room = plan.room(index);
        let mut rows = RoomRows::default();
        let mut local = Streams {
            stream: 0,
            state_group: 0,
            receipt: 0,
            chain: 0,
            end_ms: now_ms,
        };
        let (outcome, events) = import_room(plan, &room, &factory, &mut rows, &mut local, &user_id)
            .map_err(name_room(&room))?;
        Ok(BuiltRoom {
            rows,
            used: IdBase {
                stream: local.stream,
                state_group: local.state_group,
                chain: local.chain,
                receipt: local.receipt,
            },
            outcome,
            events,
        })
    };
    in_order_on_workers(&order, workers, &build, |built| {
        let base = IdBase {
            stream: streams.stream,
            state_group: streams.state_group,
            chain: streams.chain,
            receipt: streams.receipt,
        };
        built.rows.replay(&mut *sink, &base)?;
        streams.stream += built.used.stream;
        streams.state_group += built.used.state_group;
        streams.chain += built.used.chain;
        streams.receipt += built.used.receipt;
        events_written += built.events;
        pb.inc(built.events);
        let outcome = built.outcome;
        room_ids[outcome.index as usize] = Some(outcome.room_id.parse::<OwnedRoomId>().map_err(
            |err| ImportError::Event {
                step: "rooms",
                what: outcome.room_id.clone(),
                source: err.into(),
            },
        )?);
        outcomes.push(outcome);
        Ok(())
    })?;
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
        let mut joined = vec![0i64; totals.users as usize];
        for o in &outcomes {
            let public = matches!(o.kind, RoomKind::Big | RoomKind::Public);
            for &m in &o.members {
                joined[m as usize] += 1;
                let um = user_id(m);
                if public {
                    sink.insert(Table::UsersInPublicRooms, row![&um, &o.room_id])?;
                } else {
                    for &n in &o.members {
                        if n != m {
                            sink.insert(
                                Table::UsersWhoSharePrivateRooms,
                                row![&um, &user_id(n), &o.room_id],
                            )?;
                        }
                    }
                }
            }
        }
        for (u, n) in joined.iter().enumerate() {
            sink.insert(
                Table::UserStatsCurrent,
                row![&user_id(u as u64), *n, max_stream],
            )?;
        }
    }
    // `m.direct` account data for both members of every DM, as clients write it.
    let mut account_data = sink
        .query_i64(
            "SELECT MAX(s) FROM (SELECT MAX(stream_id) AS s FROM account_data UNION ALL \
             SELECT MAX(stream_id) FROM room_account_data UNION ALL \
             SELECT MAX(stream_id) FROM room_tags_revisions) m",
        )?
        .max(1);
    for (u, content) in plan.direct_content(&user_id, &room_ids) {
        account_data += 1;
        sink.insert(
            Table::AccountData,
            row![
                &user_id(u),
                "m.direct",
                account_data,
                &content.to_string(),
                INSTANCE
            ],
        )?;
    }
    set_position(&mut *sink, "account_data", account_data)?;
    set_position(&mut *sink, "events", max_stream)?;
    set_position(&mut *sink, "receipts", streams.receipt)?;
    let mut positions = String::new();
    for (table, column) in [
        ("stats_incremental_position", "stream_id"),
        ("user_directory_stream_pos", "stream_id"),
        ("appservice_stream_position", "stream_ordering"),
        ("event_push_summary_stream_ordering", "stream_ordering"),
    ] {
        positions.push_str(&format!("UPDATE {table} SET {column} = {max_stream};"));
    }
    positions.push_str(&format!(
        "UPDATE event_push_summary_last_receipt_stream_id SET stream_id = {};\
         UPDATE federation_stream_position SET stream_id = {max_stream} WHERE type = 'events';",
        streams.receipt
    ));
    sink.execute("positions", &positions)?;
    steps.push(step("derived", totals.memberships, t));
    // What the database still does: the rows in flight (PostgreSQL's writer), the computed
    // columns, the sequences, the commit and the planner's statistics.
    let t = Instant::now();
    sink.finish()?;
    steps.push(step("commit", events_written, t));

    Ok((
        Credentials {
            user_ids,
            tokens,
            room_ids,
        },
        LoadReport {
            method: format!(
                "direct import into {described} (room version {ROOM_VERSION}, events signed with the server key)"
            ),
            concurrency: workers,
            totals,
            steps,
            total_seconds: started.elapsed().as_secs_f64(),
            partial: false,
        },
    ))
}

/// A room built on a worker: its rows (ids from zero), how many ids of each space it used, and
/// what the user-level tables need.
struct BuiltRoom {
    rows: RoomRows,
    used: IdBase,
    outcome: RoomOutcome,
    events: u64,
}

/// Rooms built ahead of the one being written, at most: bounds the rows held in memory. Rooms
/// differ by orders of magnitude (a DM against a 10k-member room), so a short window stalls the
/// writer behind one big room: 2 a worker gave startup-100k's events step 48–50 s, 16 gives
/// 41–42 s at the same peak RSS (1.3 GiB, mostly SQLite's page cache).
const ROOMS_AHEAD_PER_WORKER: usize = 16;

/// How much the building threads yield to the writing one. There are more threads than cores
/// (a worker per core and the writer) and the writer is the limit, so when the cores are all
/// taken it runs first: startup-100k's events step (SQLite) 74.2–74.6 s → 66.0–66.5 s, runs
/// alternated on one machine (the workers still keep up: they were idle a tenth of the time).
const WORKER_NICENESS: i32 = 10;

/// Run `build` over `items` on `workers` threads and hand the results to `write` in the order of
/// `items` on this thread, at most a few items ahead of the writing. The first error of either
/// stops everything and is returned.
fn in_order_on_workers<T: Copy + Send + Sync, R: Send>(
    items: &[T],
    workers: usize,
    build: &(dyn Fn(T) -> Result<R, ImportError> + Sync),
    mut write: impl FnMut(R) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex, mpsc};
    type Job<T, R> = (T, mpsc::SyncSender<Result<R, ImportError>>);
    let workers = workers.max(1);
    let ahead = workers * ROOMS_AHEAD_PER_WORKER;
    std::thread::scope(|scope| {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job<T, R>>();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        for _ in 0..workers {
            let rx = jobs_rx.clone();
            scope.spawn(move || {
                crate::util::thread::lower_priority(WORKER_NICENESS);
                loop {
                    let job = rx.lock().expect("job queue").recv();
                    let Ok((item, reply)) = job else { return };
                    if reply.send(build(item)).is_err() {
                        return;
                    }
                }
            });
        }
        let mut pending: VecDeque<mpsc::Receiver<Result<R, ImportError>>> = VecDeque::new();
        let mut next = items.iter();
        let mut submit = |pending: &mut VecDeque<_>| {
            if let Some(item) = next.next() {
                let (tx, rx) = mpsc::sync_channel(1);
                jobs_tx.send((*item, tx)).expect("workers wait for jobs");
                pending.push_back(rx);
            }
        };
        for _ in 0..ahead {
            submit(&mut pending);
        }
        // Dropping the queue (at the end, or on an error) ends the workers.
        while let Some(rx) = pending.pop_front() {
            let built = rx.recv().expect("a worker answers every job")?;
            write(built)?;
            submit(&mut pending);
        }
        Ok(())
    })
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

/// Where `stream` stands for the one writer (stream names are hsbench's constants).
fn set_position(sink: &mut dyn Sink, stream: &str, id: i64) -> Result<(), ImportError> {
    sink.execute(
        "stream positions",
        &format!(
            "DELETE FROM stream_positions WHERE stream_name = '{stream}' AND instance_name = '{INSTANCE}';\
             INSERT INTO stream_positions (stream_name, instance_name, stream_id) VALUES ('{stream}', '{INSTANCE}', {id});"
        ),
    )
}

/// A `room_memberships` row, held until the room is written (whether the member took part
/// in the timeline is known only then).
struct MembershipRow {
    event_id: String,
    target: String,
    sender: String,
    membership: &'static str,
    name: String,
    avatar: Option<String>,
    so: i64,
}

/// A room's events as `createRoom` with a preset, the invites, the joins and the timeline
/// produce them, written with every row Synapse keeps for them.
fn import_room(
    plan: &DatasetPlan,
    room: &RoomPlan,
    f: &EventFactory<'_>,
    sink: &mut dyn Sink,
    streams: &mut Streams,
    user_id: &dyn Fn(u64) -> String,
) -> Result<(RoomOutcome, u64), ImportError> {
    let creator = user_id(room.creator());
    let mut state = RoomState {
        map: BTreeMap::new(),
        so_of: HashMap::new(),
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
    let mut membership_rows: Vec<MembershipRow> = Vec::new();
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
                    sink: &mut dyn Sink,
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
        let eid = ev.event_id.as_str();
        sink.insert(
            Table::Events,
            row![
                so,
                ev.depth,
                eid,
                &ev.event_type,
                rid,
                true,
                false,
                ev.depth,
                ev.ts,
                ev.ts,
                &ev.sender,
                false,
                INSTANCE,
                &ev.state_key
            ],
        )?;
        sink.insert(
            Table::EventJson,
            row![eid, rid, "{}", &ev.json, FORMAT_VERSION],
        )?;
        if let Some(p) = &ev.prev {
            sink.insert(Table::EventEdges, row![eid, p, false])?;
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
                sink.insert(Table::EventAuth, row![eid, a, rid])?;
            }
            let key = (ev.event_type.clone(), k.clone());
            let tuple = chain_cover(state, streams, &ev.event_id, &key, &auth);
            sink.insert(Table::EventAuthChains, row![eid, tuple.0, tuple.1])?;
            for (tc, ts) in tuple.2 {
                sink.insert(Table::EventAuthChainLinks, row![tuple.0, tuple.1, tc, ts])?;
            }
            if state.create.is_none() {
                state.create = Some(ev.event_id.clone());
            }
            sink.insert(Table::StateEvents, row![eid, rid, &ev.event_type, k])?;
            let replaced = state.map.insert(key, ev.event_id.clone());
            state.so_of.insert(ev.event_id.clone(), so);
            sink.insert(
                Table::CurrentStateDeltaStream,
                row![so, rid, &ev.event_type, k, eid, &replaced, INSTANCE],
            )?;
            // A new state group: a delta on the previous one, or a full snapshot.
            streams.state_group += 1;
            let g = streams.state_group;
            sink.insert(Table::StateGroups, row![g, rid, eid])?;
            if state.group != 0 && state.hops < MAX_STATE_DELTA_HOPS {
                sink.insert(Table::StateGroupEdges, row![g, state.group])?;
                sink.insert(
                    Table::StateGroupsState,
                    row![g, rid, &ev.event_type, k, eid],
                )?;
                state.hops += 1;
            } else {
                for ((t, sk), id) in &state.map {
                    sink.insert(Table::StateGroupsState, row![g, rid, t, sk, id])?;
                }
                state.hops = 0;
            }
            state.group = g;
        }
        sink.insert(Table::EventToStateGroups, row![eid, state.group])?;
        prev = Some(ev.event_id.clone());
        Ok((ev, so))
    };
    let joined_as = |rows: &mut Vec<MembershipRow>,
                     ev: &BuiltEvent,
                     so: i64,
                     sender: &str,
                     m: &'static str,
                     p: &Profile| {
        rows.push(MembershipRow {
            event_id: ev.event_id.clone(),
            target: ev.state_key.clone().expect("a membership has a state key"),
            sender: sender.to_string(),
            membership: m,
            name: p.name.clone(),
            avatar: p.avatar.clone(),
            so,
        });
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
        sink,
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
        sink,
        streams,
    )?;
    joined_as(
        &mut membership_rows,
        &ev,
        so,
        &creator,
        "join",
        &profile(plan, c),
    );
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
        sink,
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
            sink,
            streams,
        )?;
        if t == "m.room.name" {
            name = Some(room.name.clone());
            sink.insert(
                Table::EventSearch,
                row![
                    &ev.event_id,
                    &room_id,
                    "content.name",
                    &room.name,
                    so,
                    ev.ts
                ],
            )?;
        }
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
            sink,
            streams,
        )?;
        joined_as(&mut membership_rows, &ev, so, &creator, "invite", &p);
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
            sink,
            streams,
        )?;
        joined_as(&mut membership_rows, &ev, so, &uid, "join", &p);
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
            sink,
            streams,
        )?;
        let eid = ev.event_id.as_str();
        match &e.kind {
            EventKind::Message { body } | EventKind::Reply { body, .. } => {
                sink.insert(
                    Table::EventSearch,
                    row![eid, &room_id, "content.body", body, so, ev.ts],
                )?;
            }
            EventKind::Edit { to, body } => {
                sink.insert(
                    Table::EventSearch,
                    row![
                        eid,
                        &room_id,
                        "content.body",
                        &format!("* {body}"),
                        so,
                        ev.ts
                    ],
                )?;
                sink.insert(
                    Table::EventRelations,
                    row![eid, &target(to), "m.replace", Val::Null],
                )?;
            }
            EventKind::Reaction { to, key } => {
                sink.insert(
                    Table::EventRelations,
                    row![eid, &target(to), "m.annotation", key],
                )?;
            }
            EventKind::Redaction { to } => {
                sink.insert(
                    Table::Redactions,
                    row![eid, &target(to), false, ev.ts, false],
                )?;
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
            sink.insert(
                Table::EventPushSummary,
                row![
                    &user_id(u),
                    &room_id,
                    notif,
                    last_so,
                    unread,
                    receipt,
                    "main"
                ],
            )?;
        }
    }
    for (m, at) in receipts {
        streams.receipt += 1;
        let (eid, so) = &ids[at];
        // Read a little after it arrived, never after the history's end.
        let read_at = (sent_at[at] + 90_000).min(streams.end_ms);
        let data = format!("{{\"ts\":{read_at}}}");
        let um = user_id(m);
        sink.insert(
            Table::ReceiptsLinearized,
            row![
                streams.receipt,
                &room_id,
                "m.read",
                &um,
                eid,
                Val::Null,
                *so,
                &data,
                INSTANCE
            ],
        )?;
        sink.insert(
            Table::ReceiptsGraph,
            row![
                &room_id,
                "m.read",
                &um,
                &format!("[\"{eid}\"]"),
                Val::Null,
                &data
            ],
        )?;
    }

    // Memberships, now that the participants are known: a member who sent a message into the
    // room is a participant of their current membership.
    let participating: std::collections::HashSet<&str> = participants
        .iter()
        .filter_map(|u| membership.get(u))
        .filter(|(_, _, m)| *m == "join")
        .map(|(eid, _, _)| eid.as_str())
        .collect();
    for r in &membership_rows {
        let participant = participating.contains(r.event_id.as_str());
        sink.insert(
            Table::RoomMemberships,
            row![
                &r.event_id,
                &r.target,
                &r.sender,
                &room_id,
                r.membership,
                0,
                &r.name,
                &r.avatar,
                r.so,
                participant
            ],
        )?;
    }

    // Room-level rows: the room, its extremity, current state, stats, sliding sync.
    let last = prev.clone().expect("a room has events");
    let last_so = streams.stream;
    sink.insert(
        Table::Rooms,
        row![&room_id, false, &creator, ROOM_VERSION, true],
    )?;
    sink.insert(Table::RoomDepth, row![&room_id, 1])?;
    sink.insert(Table::EventForwardExtremities, row![&last, &room_id])?;
    sink.insert(
        Table::StreamOrderingToExterm,
        row![last_so, &room_id, &last],
    )?;
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
        sink.insert(
            Table::CurrentStateEvents,
            row![id, &room_id, t, k, m, state.so_of[id]],
        )?;
    }
    let joined: Vec<u64> = room.members.clone();
    for &u in &joined {
        let (eid, so, _) = &membership[&u];
        let uid = user_id(u);
        sink.insert(
            Table::LocalCurrentMembership,
            row![&room_id, &uid, eid, "join", *so],
        )?;
        // The creator joined before the room had a name.
        let nm = if u == room.creator() {
            None
        } else {
            name.as_deref()
        };
        sink.insert(
            Table::SlidingSyncMembershipSnapshots,
            row![
                &room_id,
                &uid,
                &uid,
                eid,
                "join",
                0,
                *so,
                INSTANCE,
                true,
                Val::Null,
                nm,
                false,
                Val::Null
            ],
        )?;
    }
    sink.insert(
        Table::SlidingSyncJoinedRooms,
        row![
            &room_id,
            last_so,
            if last_bump > 0 { last_bump } else { create_so },
            Val::Null,
            &name,
            false,
            Val::Null
        ],
    )?;
    sink.insert(
        Table::RoomStatsCurrent,
        row![
            &room_id,
            state.map.len() as i64,
            joined.len() as i64,
            0,
            0,
            0,
            joined.len() as i64,
            last_so,
            0
        ],
    )?;
    sink.insert(
        Table::RoomStatsState,
        row![
            &room_id,
            &name,
            Val::Null,
            if public { "public" } else { "invite" },
            "shared",
            Val::Null,
            Val::Null,
            (!public).then_some("can_join"),
            true,
            Val::Null,
            Val::Null
        ],
    )?;

    Ok((
        RoomOutcome {
            index: room.index,
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

    /// Rooms built on several workers give the very rows one thread gives (ids moved past the
    /// rooms before, in the same order), and every id space is dense and unique.
    #[test]
    fn rows_do_not_depend_on_the_number_of_workers() {
        let mut spec = crate::scenario::DatasetSpec::new(3, 80, 12, 30, 4);
        spec.dm_pairs = 4;
        spec.state_rooms = 1;
        spec.state_events_per_room = 120;
        let plan = DatasetPlan::new(spec);
        let k = key();
        let rows = |workers: usize| {
            let sink = crate::dataset::sink::Collect::default();
            let (_, report) = import_with(
                Box::new(sink.clone()),
                &k,
                "hsbench.local",
                &plan,
                false,
                1_700_000_000_000,
                workers,
            )
            .unwrap();
            assert_eq!(report.concurrency, workers);
            std::mem::take(&mut *sink.0.lock().unwrap())
        };
        let one = rows(1);
        let three = rows(3);
        assert_eq!(one.len(), three.len());
        for (a, b) in one.iter().zip(&three) {
            assert_eq!(a, b);
        }
        // Stream orderings 2..=N (the schema's positions start at 1), one per event.
        let sos: Vec<i64> = one
            .iter()
            .filter(|r| r.starts_with("events "))
            .map(|r| {
                r.trim_start_matches("events [Int(")
                    .split(')')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        let n = sos.len() as i64;
        assert_eq!(sos, (2..n + 2).collect::<Vec<_>>());
        let groups = one
            .iter()
            .filter(|r| r.starts_with("state_groups "))
            .count() as i64;
        assert!(
            one.iter()
                .any(|r| r.starts_with(&format!("state_groups [Int({groups}),")))
        );
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
