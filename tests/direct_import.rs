//! The direct import against real Synapse: the plan written straight into SQLite, then the
//! server's own API must agree with it (exact counts, unread notification counts), accept new
//! events on top of the imported ones in every kind of room (sends, joins, a state change
//! resolved against concurrent sends), and the run's workloads must go through.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use hsbench::dataset::plan::{DatasetPlan, RoomKind};
use hsbench::dataset::seed::Credentials;
use hsbench::matrix::MatrixClient;
use hsbench::result::RunStatus;
use hsbench::run::{RunOptions, ServeHooks, run, serve};
use hsbench::scenario;
use ruma::api::client::sync::sync_events;
use ruma::api::client::{membership::join_room_by_id, message::send_message_event, state};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_import_is_what_synapse_would_have_written() {
    imported_and_used("tiny-direct.toml", "Synapse's SQLite database").await;
}

/// The same plan through COPY into the private PostgreSQL cluster: the same checks, plus the
/// full-text columns PostgreSQL computes (`tsvector`s) answering searches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_import_into_postgres_is_what_synapse_would_have_written() {
    imported_and_used(
        "tiny-direct-postgres.toml",
        "Synapse's PostgreSQL database through COPY",
    )
    .await;
}

/// Import the scenario's plan, run it, then serve the fixture and write, read and search on it.
async fn imported_and_used(scenario_file: &str, into: &str) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sc = scenario::load(&manifest.join("tests/scenarios").join(scenario_file)).unwrap();
    let sandbox = common::Sandbox::new();
    let plan = DatasetPlan::new(sc.dataset.clone());
    let t = plan.totals();
    assert!(
        t.dm_rooms == 12 && t.private_rooms > 0 && t.largest_room == 220,
        "{t:?}"
    );

    // 1. A whole run: import, API check, boots, herd, triggered re-sync, crash restart.
    let out = run(&sc, &sandbox.opts)
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    let r = &out.result;
    assert_eq!(r.status, RunStatus::Complete, "{:?}", r.error);
    let d = r.dataset.as_ref().unwrap();
    let load = d.load.as_ref().unwrap();
    assert!(
        load.method
            .starts_with(&format!("direct import into {into}")),
        "{}",
        load.method
    );
    let count = |name: &str| load.steps.iter().find(|s| s.name == name).unwrap().count;
    assert_eq!(count("users"), t.users);
    assert!(t.avatars > 50, "{t:?}");
    // Per room: create, creator join, power levels, join rules, history visibility, guest
    // access (private kinds), name (not DMs), the custom state, invites, joins, timeline.
    let private_kinds = t.private_rooms + t.dm_rooms;
    let events = t.rooms * 5 + private_kinds + (t.rooms - t.dm_rooms) + t.state_events - t.rooms
        + t.invites
        + t.memberships
        + t.timeline_events;
    assert_eq!(count("events"), events, "{t:?}");
    // Checked through the API before the fixture was saved, and again by --verify.
    assert!(r.import_check_boot.is_some());
    let v = d.verify.as_ref().unwrap();
    assert!(v.mismatches.is_empty(), "{:?}", v.mismatches);
    let fx = d.fixture.as_ref().unwrap();
    let rows = |table: &str| fx.table_counts[table].unwrap();
    assert_eq!(rows("users"), t.users);
    assert_eq!(rows("devices"), t.users + t.extra_devices);
    assert_eq!(rows("rooms"), t.rooms);
    assert_eq!(rows("local_current_membership"), t.memberships);
    assert_eq!(rows("room_memberships"), t.memberships + t.invites);
    assert_eq!(rows("receipts_linearized"), t.receipts);
    assert_eq!(rows("redactions"), t.redactions);
    assert_eq!(rows("event_relations"), t.reactions + t.edits);
    assert_eq!(rows("events"), events);
    // Every state event has its place in the chain-cover index, as Synapse requires for
    // state resolution v2.1 (room version 12).
    assert_eq!(rows("event_auth_chains"), rows("state_events"));
    // The big room (220 joins) and the two state rooms (130 events) passed 100 delta hops, so
    // full snapshots were written: ~101 and ~202 rows in the big room, ~101 in each state room.
    assert!(
        rows("state_groups_state") > rows("state_events") + 450,
        "{} state rows for {} state events",
        rows("state_groups_state"),
        rows("state_events")
    );
    // The workloads ran on the imported data, the triggered one writing into the big room,
    // and the crash cycle's writes were acknowledged.
    let herd = r.herd.as_ref().unwrap();
    assert_eq!(herd.ok, 30, "{herd:?}");
    // The trigger (a state event in the big room) was accepted; every client reacted with a
    // full re-sync.
    let trig = r.triggered.as_ref().unwrap();
    assert_eq!(trig.reacted_ok, 20, "{:?}", trig.recovery);
    assert!(trig.trigger_error.is_none(), "{trig:?}");
    let crash = &r.crash_restarts[0];
    assert!(crash.writes_acked > 0, "{crash:?}");
    assert_eq!(crash.writes_lost, Some(0), "{crash:?}");

    // 2. Served again from the fixture: the API takes new events on the imported ones.
    let creds_dir = tempfile::tempdir().unwrap();
    let creds_path = creds_dir.path().join("credentials.json");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let opts = RunOptions {
        run_id: Some("serve".into()),
        verify: false,
        ..sandbox.opts.clone()
    };
    let hooks = ServeHooks {
        credentials_out: creds_path.clone(),
        ready: Some(ready_tx),
        stop: stop_rx,
    };
    let (served, ()) = tokio::join!(serve(&sc, &opts, hooks), async {
        let Ok(info) = ready_rx.await else { return };
        let creds: Credentials =
            serde_json::from_slice(&std::fs::read(&creds_path).unwrap()).unwrap();
        let client = MatrixClient::new(&info.base_url, Duration::from_secs(60)).unwrap();
        search_finds_imported(&plan, &creds, &client).await;
        writes_on_imported_rooms(&plan, &creds, &client).await;
        unread_counts_match_the_plan(&plan, &creds, &client).await;
        stop_tx.send(true).unwrap();
    });
    let served = served.unwrap();
    assert!(served.result.dataset.unwrap().fixture.unwrap().reused);
}

/// The full-text rows answer the server's searches: a word of the imported messages is found
/// in the big room, and a named user is found in the user directory by their display name.
async fn search_finds_imported(plan: &DatasetPlan, creds: &Credentials, client: &MatrixClient) {
    use ruma::api::client::search::search_events::v3 as search;
    use ruma::api::client::user_directory::search_users::v3 as users;
    let big = plan.room(0);
    let reader = big.members[1] as usize;
    let word = "federation";
    let bodies: Vec<String> = plan
        .timeline(&big)
        .iter()
        .filter_map(|e| match &e.kind {
            hsbench::dataset::plan::EventKind::Message { body } => Some(body.clone()),
            _ => None,
        })
        .filter(|b| b.split(' ').any(|w| w == word))
        .collect();
    assert!(!bodies.is_empty(), "the plan has {word:?} in the big room");
    let mut categories = search::Categories::new();
    categories.room_events = Some(search::Criteria::new(word.into()));
    let req = search::Request::new(categories);
    let resp = client
        .send(req, Some(&creds.tokens[reader]))
        .await
        .unwrap_or_else(|e| panic!("search for {word:?}: {e}"));
    let found = &resp.search_categories.room_events;
    assert!(
        !found.results.is_empty() && found.count.is_some_and(|c| u64::from(c) > 0),
        "{word:?} found nowhere: {found:?}"
    );
    for r in &found.results {
        let body = r
            .result
            .as_ref()
            .and_then(|ev| ev.get_field::<serde_json::Value>("content").ok().flatten())
            .and_then(|c| c["body"].as_str().map(str::to_string))
            .unwrap_or_default();
        assert!(body.contains(word), "a hit without {word:?}: {body:?}");
    }
    // A named member of the big (public) room, looked up by name by another user.
    let named = big.members[2..]
        .iter()
        .map(|&u| plan.user(u))
        .find(|u| u.display_name.is_some())
        .expect("a named member");
    let name = named.display_name.clone().unwrap();
    let mut req = users::Request::new(name.clone());
    req.limit = 50u32.into();
    let resp = client
        .send(req, Some(&creds.tokens[reader]))
        .await
        .unwrap_or_else(|e| panic!("user directory search for {name:?}: {e}"));
    let want = &creds.user_ids[named.index as usize];
    assert!(
        resp.results.iter().any(|u| &u.user_id == want),
        "{want} ({name:?}) not found: {:?}",
        resp.results.iter().map(|u| &u.user_id).collect::<Vec<_>>()
    );
}

fn raw<T>(v: serde_json::Value) -> ruma::serde::Raw<T> {
    ruma::serde::Raw::from_json(serde_json::value::to_raw_value(&v).unwrap())
}

/// A message in one room of every kind, a join of a public room by a non-member, and in the
/// big room a state event sent while messages are in flight (forking the DAG, so Synapse
/// resolves state over the imported auth chains).
async fn writes_on_imported_rooms(plan: &DatasetPlan, creds: &Credentials, client: &MatrixClient) {
    let mut seen = HashSet::new();
    for room in plan.rooms() {
        let key = (room.kind, room.state_events > 0);
        if !seen.insert(key) {
            continue;
        }
        let sender = *room.members.last().unwrap() as usize;
        let req = send_message_event::v3::Request::new_raw(
            creds.room_ids[room.index as usize].clone(),
            format!("after-import-{}", room.index).into(),
            "m.room.message".into(),
            raw(serde_json::json!({"msgtype": "m.text", "body": "written after the import"})),
        );
        client
            .send(req, Some(&creds.tokens[sender]))
            .await
            .unwrap_or_else(|e| panic!("send into {:?} room {}: {e}", room.kind, room.index));
    }
    assert!(seen.len() >= 4, "room kinds covered: {seen:?}");
    // A public room gains a member.
    let public = plan.rooms().find(|r| r.kind == RoomKind::Public).unwrap();
    let outsider = (0..plan.spec().users)
        .find(|u| !public.members.contains(u))
        .unwrap() as usize;
    let room_id = creds.room_ids[public.index as usize].clone();
    client
        .send(
            join_room_by_id::v3::Request::new(room_id.clone()),
            Some(&creds.tokens[outsider]),
        )
        .await
        .unwrap_or_else(|e| panic!("join {room_id}: {e}"));
    // The big room: ten messages and a state change at once.
    let big = creds.room_ids[0].clone();
    let sends = (0..10).map(|i| {
        let req = send_message_event::v3::Request::new_raw(
            big.clone(),
            format!("fork-{i}").into(),
            "m.room.message".into(),
            raw(serde_json::json!({"msgtype": "m.text", "body": format!("fork {i}")})),
        );
        client.send(req, Some(&creds.tokens[1 + i]))
    });
    let state_req = state::send_state_event::v3::Request::new_raw(
        big.clone(),
        "org.hsbench.after-import".into(),
        String::new(),
        raw(serde_json::json!({"n": 1})),
    );
    let (sent, state_sent) = tokio::join!(
        futures::future::join_all(sends),
        client.send(state_req, Some(&creds.tokens[0]))
    );
    for s in sent {
        s.expect("message into the big room");
    }
    state_sent.expect("state event into the big room while messages are in flight");
}

/// What Synapse's default push rules make of the plan: per (member, room), the messages and
/// replies by others after the member's read receipt (or join), not redacted.
/// Users who are in no room touched by `writes_on_imported_rooms`' sends, so their counts are
/// the imported ones: every joined room's notification count equals the plan's.
async fn unread_counts_match_the_plan(
    plan: &DatasetPlan,
    creds: &Credentials,
    client: &MatrixClient,
) {
    let users = plan.spec().users;
    let mut checked = 0;
    let mut nonzero = 0;
    for u in (users / 2..users).step_by(4).take(30) {
        let want = common::expected_unread(plan, u);
        // Rooms that took writes after the import are left out.
        let req = sync_events::v3::Request::new();
        let resp = client
            .send(req, Some(&creds.tokens[u as usize]))
            .await
            .unwrap_or_else(|e| panic!("sync of user {u}: {e}"));
        for (room, n) in &want {
            let room_id = &creds.room_ids[*room as usize];
            let joined = resp
                .rooms
                .join
                .get(room_id)
                .unwrap_or_else(|| panic!("user {u} is in {room_id}"));
            let got: u64 = joined
                .unread_notifications
                .notification_count
                .map(u64::from)
                .unwrap_or(0);
            if *room == 0 || touched(plan, *room) {
                continue;
            }
            assert_eq!(got, *n, "notification count of user {u} in room {room}");
            checked += 1;
            nonzero += u64::from(*n > 0);
        }
    }
    assert!(
        checked >= 10 && nonzero >= 3,
        "{checked} rooms, {nonzero} non-zero"
    );
}

/// Whether `writes_on_imported_rooms` sent into room `i` (the first room of each kind).
fn touched(plan: &DatasetPlan, i: u64) -> bool {
    let mut seen = HashSet::new();
    for room in plan.rooms() {
        if seen.insert((room.kind, room.state_events > 0)) && room.index == i {
            return true;
        }
        if room.index >= i {
            break;
        }
    }
    false
}

/// The same plan loaded through the API and imported directly: every table the fixture
/// manifest counts holds the same number of rows, except those the import writes differently
/// on purpose: push actions are summarised (`event_push_summary` instead of
/// `event_push_actions`), presence changes of syncing clients and the intermediate state
/// groups Synapse makes while building events do not happen, and `stream_ordering_to_exterm`
/// holds one row per room rather than one per persisted batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_direct_fixtures_of_one_plan_have_the_same_rows() {
    same_rows("sqlite").await;
}

/// The same on PostgreSQL: the direct import through COPY against an API-built PostgreSQL
/// fixture of the same plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_direct_postgres_fixtures_of_one_plan_have_the_same_rows() {
    same_rows("postgres").await;
}

async fn same_rows(database: &str) {
    let text = |load: &str| {
        format!(
            "schema = 1\nname = \"equal-{load}-{database}\"\n[dataset]\nseed = 5\nusers = 60\nrooms = 8\n\
             big_room_members = 40\nmessages_per_room = 6\nmax_room_members = 12\ndm_pairs = 3\n\
             state_rooms = 1\nstate_events_per_room = 15\navatar_share = 0.3\nload = \"{load}\"\n\
             [server]\ndatabase = \"{database}\"\n[boot]\nrepeats = 1\ntimeout = \"180s\"\n"
        )
    };
    let sandbox = common::Sandbox::new();
    let opts = RunOptions {
        seed_only: true,
        verify: false,
        ..sandbox.opts.clone()
    };
    let mut counts = Vec::new();
    let mut shapes = Vec::new();
    for load in ["api", "direct"] {
        let sc = scenario::parse(Path::new(&format!("equal-{load}.toml")), &text(load)).unwrap();
        let out = run(&sc, &opts)
            .await
            .unwrap_or_else(|e| panic!("{load} build failed: {e}"));
        let fx = out.result.dataset.unwrap().fixture.unwrap();
        if database == "sqlite" {
            let db = Path::new(&fx.path).join("synapse-data/homeserver.db");
            shapes.push(Shape::read(&db));
        }
        counts.push(fx.table_counts);
    }
    let (api, direct) = (&counts[0], &counts[1]);
    assert!(api.len() >= 30, "{api:?}");
    let differ: Vec<String> = api
        .iter()
        .filter(|(t, n)| direct.get(*t) != Some(n))
        .map(|(t, n)| format!("{t}: api {n:?}, direct {:?}", direct.get(t)))
        .collect();
    let expected = [
        "event_push_actions",
        "event_push_summary",
        "presence_stream",
        "state_groups",
        "stream_ordering_to_exterm",
    ];
    for d in &differ {
        assert!(
            expected.iter().any(|t| d.starts_with(&format!("{t}:"))),
            "unexpected difference {d} (all: {differ:?})"
        );
    }
    assert_eq!(direct["event_push_actions"], Some(0));
    assert!(api["event_push_actions"].unwrap() > 0);
    // The summary the import writes instead: a row per member with unread messages (Synapse
    // had not yet rotated its push actions into it when the API-built fixture was saved).
    assert!(direct["event_push_summary"].unwrap() > 0);
    // Everything else is equal, including the auth-chain index, relations, the user
    // directory and its search rows, full-text search, room stats and the sliding-sync tables.
    assert!(differ.len() <= expected.len());
    for t in [
        "event_auth_chains",
        "event_auth_chain_links",
        "users_who_share_private_rooms",
        "event_search",
        "user_directory_search",
    ] {
        assert!(api[t].unwrap() > 0 && api[t] == direct[t], "{t}");
    }
    if shapes.is_empty() {
        // The event JSON and its shape come from the one import code for both databases;
        // SQLite's run checks them.
        return;
    }
    // DMs as Synapse builds them in room version 12 (the invitee an additional creator, no
    // users in the power levels), `m.direct` for both members, in both fixtures alike.
    assert_eq!(shapes[0].creators, shapes[1].creators);
    assert_eq!(shapes[0].power_users, shapes[1].power_users);
    assert_eq!(shapes[0].direct, shapes[1].direct);
    assert_eq!(
        shapes[1].creators.iter().filter(|c| c.len() == 1).count(),
        3,
        "{:?}",
        shapes[1].creators
    );
    assert!(shapes[1].power_users.iter().all(|u| u == "{}"));
    assert_eq!(shapes[1].direct.len(), 6, "{:?}", shapes[1].direct);
    // The direct import dates its events over the history (90 days by default), rising in
    // every room, the rooms' stream order that of their last activity.
    let (api, direct) = (&shapes[0], &shapes[1]);
    assert!(
        api.span_ms < 3_600_000,
        "API-built events are dated when sent"
    );
    assert!(
        direct.span_ms > 30 * 86_400_000,
        "direct import spans {} days",
        direct.span_ms / 86_400_000
    );
    assert!(
        direct.rising,
        "timestamps rise with the stream order in every room"
    );
    assert!(
        direct.recency_ordered,
        "rooms' newest events are in stream order"
    );
}

/// What two fixtures of one plan must share, read from a Synapse SQLite database (room ids and
/// event ids differ between builds; user ids do not).
struct Shape {
    /// `additional_creators` of every room's create event, sorted.
    creators: Vec<Vec<String>>,
    /// The `users` of every room's power levels, as JSON, sorted.
    power_users: Vec<String>,
    /// Every `m.direct`: (user, partner, number of rooms), sorted.
    direct: Vec<(String, String, usize)>,
    /// Newest minus oldest timestamp of the rooms' events.
    span_ms: i64,
    /// In every room, timestamps rise with the stream ordering.
    rising: bool,
    /// The rooms ordered by their newest event's stream ordering are ordered by its timestamp.
    recency_ordered: bool,
}

impl Shape {
    fn read(db: &Path) -> Self {
        let conn =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let contents = |event_type: &str| -> Vec<serde_json::Value> {
            let mut q = conn
                .prepare("SELECT j.json FROM events e JOIN event_json j USING (event_id) WHERE e.type = ?1")
                .unwrap();
            q.query_map([event_type], |r| r.get::<_, String>(0))
                .unwrap()
                .map(|j| {
                    serde_json::from_str::<serde_json::Value>(&j.unwrap()).unwrap()["content"]
                        .clone()
                })
                .collect()
        };
        let mut creators: Vec<Vec<String>> = contents("m.room.create")
            .iter()
            .map(|c| {
                let mut v: Vec<String> = c["additional_creators"]
                    .as_array()
                    .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default();
                v.sort();
                v
            })
            .collect();
        creators.sort();
        let mut power_users: Vec<String> = contents("m.room.power_levels")
            .iter()
            .map(|c| c["users"].to_string())
            .collect();
        power_users.sort();
        let mut direct = Vec::new();
        let mut q = conn
            .prepare(
                "SELECT user_id, content FROM account_data WHERE account_data_type = 'm.direct'",
            )
            .unwrap();
        for row in q
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .unwrap()
        {
            let (user, content) = row.unwrap();
            let c: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&content).unwrap();
            for (partner, rooms) in c {
                direct.push((user.clone(), partner, rooms.as_array().unwrap().len()));
            }
        }
        direct.sort();
        let mut q = conn
            .prepare("SELECT room_id, stream_ordering, origin_server_ts FROM events ORDER BY stream_ordering")
            .unwrap();
        let rows: Vec<(String, i64, i64)> = q
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let span_ms =
            rows.iter().map(|r| r.2).max().unwrap() - rows.iter().map(|r| r.2).min().unwrap();
        let mut newest: HashMap<&str, (i64, i64)> = HashMap::new();
        let mut rising = true;
        for (room, so, ts) in &rows {
            if let Some((_, prev)) = newest.get(room.as_str()) {
                rising &= ts > prev;
            }
            newest.insert(room, (*so, *ts));
        }
        let mut last: Vec<(i64, i64)> = newest.into_values().collect();
        last.sort();
        let recency_ordered = last.windows(2).all(|w| w[0].1 < w[1].1);
        Self {
            creators,
            power_users,
            direct,
            span_ms,
            rising,
            recency_ordered,
        }
    }
}
