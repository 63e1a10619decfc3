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

use crate::dataset::event::{EventFactory, INSTANCE, ROOM_VERSION, SigningKey};
use crate::dataset::room::{RoomOutcome, Streams, import_room};
use std::path::Path;
use std::time::Instant;

use ruma::{OwnedRoomId, OwnedUserId};

use crate::dataset::pg_sink::PgSink;
use crate::dataset::plan::{DatasetPlan, PlanTotals, RoomKind, RoomPlan};
use crate::dataset::seed::{Credentials, LoadReport, LoadStep, bar, step};
use crate::dataset::sink::{IdBase, RoomRows, Sink, Table, Val};
use crate::dataset::sqlite_sink::SqliteSink;
use crate::row;

pub use crate::dataset::error::ImportError;

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
    let mut steps = Vec::new();
    let cx = Import {
        plan,
        totals: &totals,
        server_name,
        now_ms,
        show_progress,
        workers,
    };
    let (user_ids, tokens) = import_users(&cx, &mut *sink, &mut steps)?;
    let (outcomes, room_ids, events_written) =
        import_rooms(&cx, &mut *sink, &mut steps, &factory, &mut streams)?;
    derived(&cx, &mut *sink, &mut steps, &outcomes, &room_ids, &streams)?;

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

/// The events of every room: per room create, power levels, join rules, history visibility;
/// guest access in private kinds; a name except in DMs; then the custom state, invites, joins
/// and timeline.
fn events_total(totals: &PlanTotals) -> u64 {
    4 * totals.rooms
        + totals.private_rooms
        + totals.dm_rooms
        + (totals.rooms - totals.dm_rooms)
        + totals.state_events
        + totals.invites
        + totals.memberships
        + totals.timeline_events
}

/// What every step of a direct import reads: the plan and its totals, the server's name, the
/// history's end, progress bars, and the room builders.
#[derive(Clone, Copy)]
struct Import<'a> {
    plan: &'a DatasetPlan,
    totals: &'a PlanTotals,
    server_name: &'a str,
    now_ms: i64,
    show_progress: bool,
    workers: usize,
}

/// Users, profiles, devices, tokens, presence and the user directory; their ids and first
/// tokens by user index.
fn import_users(
    cx: &Import<'_>,
    sink: &mut dyn Sink,
    steps: &mut Vec<LoadStep>,
) -> Result<(Vec<OwnedUserId>, Vec<String>), ImportError> {
    let Import {
        plan,
        server_name,
        totals,
        now_ms,
        show_progress,
        ..
    } = *cx;
    let user_id = |u: u64| format!("@{}:{}", DatasetPlan::localpart(u), cx.server_name);
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
    Ok((user_ids, tokens))
}

/// Rooms: state, invites, joins, timeline, receipts, built on workers and written in the
/// order of their last activity; each room's outcome, the room ids by index, and the events
/// written.
fn import_rooms(
    cx: &Import<'_>,
    sink: &mut dyn Sink,
    steps: &mut Vec<LoadStep>,
    factory: &EventFactory<'_>,
    streams: &mut Streams,
) -> Result<(Vec<RoomOutcome>, Vec<OwnedRoomId>, u64), ImportError> {
    let Import {
        plan,
        totals,
        now_ms,
        show_progress,
        workers,
        ..
    } = *cx;
    let user_id = |u: u64| format!("@{}:{}", DatasetPlan::localpart(u), cx.server_name);
    let events_total = events_total(totals);
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
        let (outcome, events) = import_room(plan, &room, factory, &mut rows, &mut local, &user_id)
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
    Ok((outcomes, room_ids, events_written))
}

/// What derives from memberships: user directory sharing, user stats, `m.direct`, and the
/// stream positions.
fn derived(
    cx: &Import<'_>,
    sink: &mut dyn Sink,
    steps: &mut Vec<LoadStep>,
    outcomes: &[RoomOutcome],
    room_ids: &[OwnedRoomId],
    streams: &Streams,
) -> Result<(), ImportError> {
    let Import { plan, totals, .. } = *cx;
    let user_id = |u: u64| format!("@{}:{}", DatasetPlan::localpart(u), cx.server_name);
    let t = Instant::now();
    let max_stream = streams.stream;
    {
        let mut joined = vec![0i64; totals.users as usize];
        for o in outcomes {
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
    for (u, content) in plan.direct_content(&user_id, room_ids) {
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
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
