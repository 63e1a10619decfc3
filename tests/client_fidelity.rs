//! A real client library reads the fixtures: matrix-nio (from PyPI, in a virtualenv of its own)
//! logs in as sampled users of a direct-import fixture and of an API-built fixture of one plan,
//! right after the server booted on them, and must see what the plan says: the rooms each user
//! is in, each room's members and name (a DM named after the other member), the DMs marked by
//! `m.direct`, every message of each room's history, the unread counts from the first /sync
//! (exact on the import; on the API-built fixture, where Synapse's 30-second rotation decides
//! whether an invite or a redacted message counts, within those bounds), and
//! (past Synapse's presence timeouts, with `presence = "stays"`) each user's planned presence.

mod common;

use std::path::Path;

use hsbench::dataset::plan::{DatasetPlan, RoomKind};
use hsbench::dataset::seed::Credentials;
use hsbench::run::{RunOptions, ServeHooks, serve};
use hsbench::scenario;

fn scenario_text(load: &str) -> String {
    format!(
        "schema = 1\nname = \"fidelity-{load}\"\n[dataset]\nseed = 21\nusers = 50\nrooms = 8\n\
         big_room_members = 30\nmessages_per_room = 14\nmax_room_members = 12\ndm_pairs = 6\n\
         avatar_share = 0.2\npresence_share = 0.3\npresence = \"stays\"\nload = \"{load}\"\n\
         [boot]\nrepeats = 1\ntimeout = \"180s\"\n"
    )
}

/// What the script is told to expect for each sampled user.
fn expectations(plan: &DatasetPlan, creds: &Credentials, users: &[u64]) -> serde_json::Value {
    let uid = |u: u64| creds.user_ids[u as usize].to_string();
    let name_of = |u: u64| {
        let p = plan.user(u);
        p.display_name.unwrap_or(p.localpart)
    };
    let direct: std::collections::BTreeMap<u64, serde_json::Value> = plan
        .direct_content(&|u| uid(u), &creds.room_ids)
        .into_iter()
        .collect();
    let list: Vec<serde_json::Value> = users
        .iter()
        .map(|&u| {
            let unread = common::expected_unread(plan, u);
            let unread_min = common::unread_counts(plan, u, false, false);
            let unread_max = common::unread_counts(plan, u, true, true);
            let mut rooms = serde_json::Map::new();
            for room in plan.rooms().filter(|r| r.members.contains(&u)) {
                let display_name = match room.kind {
                    RoomKind::Direct => {
                        name_of(*room.members.iter().find(|&&m| m != u).expect("two members"))
                    }
                    _ => room.name.clone(),
                };
                let messages = plan
                    .timeline(&room)
                    .iter()
                    .filter(|e| e.event_type() == "m.room.message")
                    .count();
                rooms.insert(
                    creds.room_ids[room.index as usize].to_string(),
                    serde_json::json!({
                        "members": room.members.iter().map(|&m| uid(m)).collect::<Vec<_>>(),
                        "display_name": display_name,
                        "messages": messages,
                        "unread": unread[&room.index],
                        "unread_min": unread_min[&room.index],
                        "unread_max": unread_max[&room.index],
                    }),
                );
            }
            serde_json::json!({
                "user_id": uid(u),
                "token": creds.tokens[u as usize],
                "rooms": rooms,
                "direct": direct.get(&u).cloned().unwrap_or(serde_json::json!({})),
                "presence": if plan.user(u).presence_online { "online" } else { "offline" },
            })
        })
        .collect();
    serde_json::json!({"users": list, "presence_after_s": 45})
}

/// Serves the scenario's fixture (building it first), and runs the script against it as soon
/// as the server answers: its output.
async fn read_with_nio(
    load: &str,
    opts: &RunOptions,
    python: &Path,
    users_of: impl Fn(&DatasetPlan) -> Vec<u64>,
) -> serde_json::Value {
    let text = scenario_text(load);
    let sc = scenario::parse(Path::new(&format!("fidelity-{load}.toml")), &text).unwrap();
    let plan = DatasetPlan::new(sc.dataset.clone());
    let dir = tempfile::tempdir().unwrap();
    let creds_path = dir.path().join("credentials.json");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let hooks = ServeHooks {
        credentials_out: creds_path.clone(),
        ready: Some(ready_tx),
        stop: stop_rx,
    };
    let opts = RunOptions {
        run_id: Some(format!("fidelity-{load}")),
        verify: false,
        ..opts.clone()
    };
    let mut output = serde_json::Value::Null;
    let (served, ()) = tokio::join!(serve(&sc, &opts, hooks), async {
        let Ok(info) = ready_rx.await else { return };
        let creds: Credentials =
            serde_json::from_slice(&std::fs::read(&creds_path).unwrap()).unwrap();
        let expect = dir.path().join("expect.json");
        let users = users_of(&plan);
        std::fs::write(
            &expect,
            serde_json::to_vec(&expectations(&plan, &creds, &users)).unwrap(),
        )
        .unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nio_fidelity.py");
        let (python, base) = (python.to_path_buf(), info.base_url.clone());
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(python)
                .arg(script)
                .arg(base)
                .arg(expect)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        stop_tx.send(true).unwrap();
        assert!(
            out.status.success(),
            "nio_fidelity.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        output = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    });
    let served = served.unwrap_or_else(|e| panic!("serve {load}: {e}"));
    assert!(served.result.dataset.unwrap().fixture.is_some());
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_library_sees_the_plan_in_direct_and_api_fixtures() {
    let python = common::nio_python();
    let sandbox = common::Sandbox::new();
    // Every member of the first DMs, then users spread over the plan (the big room's first
    // members and some who are only in small rooms).
    let users_of = |plan: &DatasetPlan| {
        let mut users: Vec<u64> = plan.direct_rooms().keys().copied().take(6).collect();
        for u in (0..plan.spec().users).step_by(7) {
            if !users.contains(&u) {
                users.push(u);
            }
        }
        users
    };
    let plan = DatasetPlan::new(
        scenario::parse(Path::new("f.toml"), &scenario_text("direct"))
            .unwrap()
            .dataset,
    );
    let online = users_of(&plan)
        .iter()
        .filter(|&&u| plan.user(u).presence_online)
        .count();
    assert!(
        online >= 2,
        "the sample must hold users the plan puts online"
    );
    let direct = plan.direct_rooms();
    let dm_users = users_of(&plan)
        .iter()
        .filter(|u| direct.contains_key(u))
        .count() as u64;
    for load in ["direct", "api"] {
        let out = read_with_nio(load, &sandbox.opts, &python, users_of).await;
        let mismatches = out["mismatches"].as_array().unwrap();
        assert!(mismatches.is_empty(), "{load}: {mismatches:#?}");
        let checked = &out["checked"];
        let n = |k: &str| checked[k].as_u64().unwrap();
        let sample = users_of(&plan).len() as u64;
        assert_eq!(n("users"), sample, "{load}: {checked}");
        assert!(n("rooms") >= sample, "{load}: {checked}");
        assert!(n("unread_nonzero") >= 5, "{load}: {checked}");
        // The import's counts are the plan's exactly; the API-built ones differ only where
        // Synapse's rotation timing decides (an invite, a redacted message).
        if load == "direct" {
            assert_eq!(n("unread_exact"), n("rooms"), "{load}: {checked}");
        } else {
            assert!(4 * n("unread_exact") >= 3 * n("rooms"), "{load}: {checked}");
        }
        eprintln!("{load}: {checked}");
        assert_eq!(n("dm_users"), dm_users, "{load}: {checked}");
        assert!(n("dm_rooms") >= dm_users, "{load}: {checked}");
        assert_eq!(n("presence"), sample, "{load}: {checked}");
        assert_eq!(n("presence_online") as usize, online, "{load}: {checked}");
    }
}
