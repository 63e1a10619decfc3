//! Sliding sync workloads (MSC4186, as matrix-rust-sdk's RoomListService loads a room list)
//! against real servers: Synapse on a direct-import fixture, and tuwunel 1.4.6 on an API-built
//! one of the same plan. The herd: every user is in more rooms than a page (20), so every client
//! grows its list over several requests; the list lengths the servers report must be the plan's,
//! and every request made must be in the histograms. The triggered herd (Synapse: the clients
//! open the room; tuwunel: they start over) and steady traffic on sliding sync long polls, every
//! delivery accounted for. Catch-up over sliding sync: readers load their lists, open the room
//! and page back through a backlog; their receipts come back on the connection.

mod common;

use std::path::Path;

use hsbench::dataset::plan::DatasetPlan;
use hsbench::load::engine::EndpointResult;
use hsbench::load::herd::HerdResult;
use hsbench::load::sliding::{FIRST_RANGE_END, GROWING_BATCH, PATH};
use hsbench::metrics::read_histogram;
use hsbench::result::RunResult;
use hsbench::result::RunStatus;
use hsbench::run::run;
use hsbench::scenario::{self, ReactionKind, Scenario, SyncProtocol};

/// The plan's rooms of each of the first `clients` users, and the requests a RoomListService
/// client needs to list them: the first page, then pages of 20 until the range covers them.
fn expected(sc: &Scenario, clients: u64) -> (Vec<u64>, u64) {
    let plan = DatasetPlan::new(sc.dataset.clone());
    let mut rooms = vec![0u64; clients as usize];
    for room in plan.rooms() {
        for &m in &room.members {
            if m < clients {
                rooms[m as usize] += 1;
            }
        }
    }
    let requests = rooms
        .iter()
        .map(|&n| 1 + n.div_ceil(GROWING_BATCH).max(1))
        .sum();
    (rooms, requests)
}

fn check(sc: &Scenario, h: &HerdResult, run_dir: &Path) {
    assert_eq!(h.protocol, SyncProtocol::Sliding);
    assert_eq!(h.endpoint, PATH);
    let (rooms, requests) = expected(sc, h.clients);
    // The test needs lists longer than a page.
    assert!(
        rooms.iter().filter(|&&n| n > FIRST_RANGE_END + 1).count() as u64 > h.clients / 2,
        "{rooms:?}"
    );
    let l = h
        .room_list
        .as_ref()
        .expect("a sliding herd reports its room lists");
    assert_eq!((l.loaded, l.failed), (h.clients, 0), "{l:?}");
    assert_eq!(
        (l.first_page.count, l.full_list.count),
        (h.clients, h.clients)
    );
    // The lists the server reported are the plan's memberships, in sum.
    let listed = l.rooms_per_client.unwrap() * h.clients as f64;
    assert!(
        (listed - rooms.iter().sum::<u64>() as f64).abs() < 0.5,
        "listed {listed}, plan {rooms:?}"
    );
    // Every request of the SDK's walk was made, answered and recorded once.
    assert_eq!(h.ok, requests, "{h:?}");
    assert!(h.errors.is_empty(), "{:?}", h.errors);
    assert_eq!((h.corrected.count, h.raw.count), (requests, requests));
    assert!((l.requests_per_client - requests as f64 / h.clients as f64).abs() < 1e-9);
    assert_eq!(
        read_histogram(&run_dir.join("herd-sync.hist"))
            .unwrap()
            .len(),
        requests
    );
    // A first page comes before the whole list, and a client's whole list after its requests.
    assert!(l.first_page.p50_ms <= l.full_list.p50_ms, "{l:?}");
    // (HDR histograms keep three significant digits.)
    assert!(
        l.full_list.max_ms <= h.wall_ms * 1.002,
        "{l:?} {}",
        h.wall_ms
    );
    assert!(h.bytes_received > 0);
}

/// Every request an endpoint started completed or was cut at the end; one histogram value per
/// answered request, in the result and on disk.
fn check_endpoint(run_dir: &Path, workload: &str, e: &EndpointResult) {
    let errors: u64 = e.errors.values().sum();
    assert_eq!(e.completed, e.ok + errors, "{workload} {e:?}");
    assert_eq!(e.started, e.completed + e.cancelled, "{workload} {e:?}");
    assert_eq!(
        (e.corrected.count, e.raw.count),
        (e.ok, e.ok),
        "{workload} {e:?}"
    );
    let stem = format!("{workload}-{}", e.name);
    let corrected = read_histogram(&run_dir.join(format!("{stem}.hist"))).unwrap();
    assert_eq!(corrected.len(), e.ok, "{stem}.hist");
}

/// The long-poll workloads over sliding sync: the clients' long polls delivered every message
/// of steady traffic; every client that saw the trigger reacted as configured.
fn check_long_polls(r: &RunResult, run_dir: &Path, reaction: ReactionKind, everyone: bool) {
    let t = r.triggered.as_ref().expect("triggered result");
    assert_eq!((t.protocol, t.reaction), (SyncProtocol::Sliding, reaction));
    for e in &t.endpoints {
        check_endpoint(run_dir, "triggered", e);
    }
    let ep = |eps: &[EndpointResult], name: &str| {
        eps.iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{name} missing from {eps:?}"))
            .clone()
    };
    let polls = ep(&t.endpoints, "sliding_sync");
    assert!(polls.ok > t.clients, "{polls:?}");
    assert!(
        !t.endpoints.iter().any(|e| e.name == "sync"),
        "no v2 request"
    );
    // Every client that saw the trigger reacted, once. Synapse wakes every long poll for
    // every event; tuwunel 1.4.6 leaves some of them waiting out their timeout, and an answer
    // that then brings more than its timeline limit may lose the trigger (the report names
    // the clients that never saw it).
    let reacted = t.reacted_ok + t.reacted_gave_up;
    assert_eq!(t.reaction_time.count, reacted, "{t:?}");
    assert_eq!(t.reacted_gave_up, 0, "{t:?}");
    assert_eq!(
        t.never_saw_trigger(),
        (reacted < t.clients).then(|| t.clients - reacted)
    );
    if everyone {
        assert_eq!(reacted, t.clients, "{t:?}");
    } else {
        assert!(reacted * 2 >= t.clients, "{t:?}");
    }
    let resync = ep(&t.endpoints, "resync");
    assert_eq!(resync.endpoint, PATH);
    let errors: u64 = resync.errors.values().sum();
    match reaction {
        // One room subscription a client (plus its retries).
        ReactionKind::Subscribe => {
            assert_eq!(resync.started, reacted + t.resync_retries, "{resync:?}")
        }
        // The list loaded again: the first page and at least one growing request.
        _ => assert!(resync.ok >= 2 * reacted, "{resync:?}"),
    }
    assert!(
        errors <= t.resync_retries,
        "{resync:?} {}",
        t.resync_retries
    );
    assert!(t.deliveries.delivered > 0, "{:?}", t.deliveries);

    let s = r.steady.as_ref().expect("steady result");
    assert_eq!(s.protocol, SyncProtocol::Sliding);
    for e in &s.endpoints {
        check_endpoint(run_dir, "steady", e);
    }
    assert!(ep(&s.endpoints, "sliding_sync").ok > 0);
    let d = &s.deliveries;
    assert!(d.messages > 0 && d.expected > 0, "{d:?}");
    // Every receiver of every accepted message saw it in a sliding sync answer (tuwunel: the
    // long polls it leaves waiting may bring more than the timeline limit, and lose some).
    assert_eq!(d.delivered + d.missing, d.expected, "{d:?}");
    if everyone {
        assert_eq!(d.missing, 0, "{d:?}");
    } else {
        assert!(d.delivered * 10 >= d.expected * 9, "{d:?}");
    }
    assert_eq!(d.latency.count, d.delivered);
}

/// Catch-up over sliding sync: every reader loaded its list, opened the room, paged back
/// through the whole backlog and sent its receipt; the receipt came back on the connection
/// (`echoed`: every reader's). No unread counts are claimed (the server sends none).
fn check_catchup(r: &RunResult, run_dir: &Path, echoed: bool) {
    let c = r.catchup.as_ref().expect("catch-up result");
    assert_eq!(c.protocol, SyncProtocol::Sliding);
    for e in &c.endpoints {
        check_endpoint(run_dir, "catchup", e);
        assert_eq!(e.cancelled, 0, "{e:?}");
        assert!(e.errors.is_empty(), "{e:?}");
    }
    let ep = |name: &str| c.endpoints.iter().find(|e| e.name == name).unwrap();
    assert_eq!(c.caught_up, c.readers, "{c:?}");
    assert_eq!(c.messages_read, c.readers * c.backlog);
    // The list: the first page and at least one growing request a reader.
    assert!(ep("sliding_sync").ok >= 2 * c.readers, "{c:?}");
    for name in ["initial_sync", "sync"] {
        assert_eq!(ep(name).endpoint, PATH);
        assert_eq!(ep(name).ok, c.readers, "{name}");
    }
    assert_eq!(ep("receipt").ok, c.readers);
    // The room opened with 20 events: 130 more at 40 a page.
    assert!(
        c.pages >= 4 * c.readers && ep("messages").ok == c.pages,
        "{c:?}"
    );
    assert_eq!(c.catch_up.count, c.readers);
    assert_eq!((c.unread_before_min, c.unread_after_max), (None, None));
    if echoed {
        assert_eq!(c.receipts_echoed, Some(c.readers), "{c:?}");
    }
    assert!(
        !r.thresholds.iter().any(|t| !t.passed),
        "{:?}",
        r.thresholds
    );
}

/// Run the scenario; it completes, and its three workloads pass [`check`] and
/// [`check_long_polls`].
async fn run_and_check(
    sc: &Scenario,
    sandbox: &common::Sandbox,
    reaction: ReactionKind,
    everyone: bool,
) -> hsbench::run::RunOutcome {
    let outcome = run(sc, &sandbox.opts)
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    let r = &outcome.result;
    assert_eq!(r.status, RunStatus::Complete, "{:?}", r.error);
    check(sc, r.herd.as_ref().unwrap(), &outcome.run_dir);
    check_long_polls(r, &outcome.run_dir, reaction, everyone);
    check_catchup(r, &outcome.run_dir, everyone);
    outcome
}

/// As a user runs it: `hsbench run … --protocols v2,sliding` from the repository root. The
/// sliding run passes [`check`] and [`check_long_polls`]; the v2 run is the same scenario over
/// v2 (full-state re-syncs); protocols.{json,md,html} put every figure of both side by side.
#[test]
fn sliding_sync_against_real_synapse_side_by_side_with_v2() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = manifest.join("tests/scenarios/tiny-sliding.toml");
    let sc = scenario::load(&file).unwrap();
    let (results, fixtures) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hsbench"))
        .current_dir(manifest)
        .args([
            "run",
            "tests/scenarios/tiny-sliding.toml",
            "--protocols",
            "v2,sliding",
            "-q",
        ])
        .arg("--out")
        .arg(results.path())
        .arg("--fixtures-dir")
        .arg(fixtures.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let side = std::fs::read_dir(results.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-protocols"))
        .expect("a -protocols directory");
    let sides: serde_json::Value =
        serde_json::from_slice(&std::fs::read(side.join("protocols.json")).unwrap()).unwrap();
    assert_eq!(sides["schema_version"], 1);
    let runs = sides["runs"].as_array().unwrap();
    let dir_of = |i: usize| {
        assert_eq!(runs[i]["status"], "complete", "{sides}");
        side.join(runs[i]["run_dir"].as_str().unwrap())
    };
    assert_eq!(
        (runs[0]["protocol"].as_str(), runs[1]["protocol"].as_str()),
        (Some("v2"), Some("sliding"))
    );
    let read = |d: &Path| hsbench::result::read::read_result(&d.join("result.json")).unwrap();

    // The v2 side: the same clients over /sync v2, the reaction its counterpart.
    let v2 = read(&dir_of(0));
    assert_eq!(v2.herd.as_ref().unwrap().protocol, SyncProtocol::V2);
    assert_eq!(
        v2.triggered.as_ref().unwrap().reaction,
        ReactionKind::FullState
    );
    assert_eq!(v2.steady.as_ref().unwrap().protocol, SyncProtocol::V2);
    let c = v2.catchup.as_ref().unwrap();
    assert_eq!((c.protocol, c.caught_up), (SyncProtocol::V2, 5), "{c:?}");
    assert!(c.unread_before_min.is_some_and(|n| n >= 150), "{c:?}");
    assert_eq!(c.receipts_echoed, None);

    // The sliding side, checked as the herd, triggered herd and steady traffic always are.
    let run_dir = dir_of(1);
    let r = read(&run_dir);
    assert_eq!(r.status, RunStatus::Complete, "{:?}", r.error);
    check(&sc, r.herd.as_ref().unwrap(), &run_dir);
    check_long_polls(&r, &run_dir, ReactionKind::Subscribe, true);
    check_catchup(&r, &run_dir, true);
    let md = std::fs::read_to_string(run_dir.join("summary.md")).unwrap();
    assert!(
        md.contains("sliding sync room lists (MSC4186)") && md.contains("| whole list |"),
        "{md}"
    );
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"herd-room-list\""));

    // Side by side: every workload figure has both values; the server worked in each.
    let rows = sides["rows"].as_array().unwrap();
    let row = |m: &str| {
        rows.iter()
            .find(|r| r["metric"] == m)
            .unwrap_or_else(|| panic!("{m} missing: {sides}"))
    };
    for m in [
        "herd.first_page.p50",
        "herd.room_list.p99",
        "herd.sync.p50",
        "herd.bytes",
        "herd.server_cpu",
        "triggered.recovery",
        "triggered.server_cpu",
        "steady.delivery.p50",
        "steady.server_cpu",
        "catchup.time.p50",
        "catchup.server_cpu",
    ] {
        let v = row(m)["values"].as_array().unwrap();
        assert!(
            v.iter().all(|x| x.as_f64().is_some_and(|x| x > 0.0)),
            "{m}: {v:?}"
        );
    }
    let protocols_md = std::fs::read_to_string(side.join("protocols.md")).unwrap();
    assert!(
        protocols_md.contains("| `herd.room_list.p50` |"),
        "{protocols_md}"
    );
    assert!(stdout.contains("| sliding / v2 |"), "{stdout}");
    assert!(side.join("protocols.html").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliding_sync_herd_against_tuwunel() {
    let Some(binary) = common::tuwunel() else {
        return;
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = manifest.join("tests/scenarios/tiny-sliding.toml");
    // The same plan, built through tuwunel's API (the direct import writes Synapse's schema).
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("load = \"direct\"\n", "")
        .replace("reaction = \"subscribe\"", "reaction = \"reconnect\"")
        .replace(
            "[boot]",
            &format!(
                "[server]\nkind = \"tuwunel\"\nbinary = \"{}\"\n\n[boot]",
                binary.display()
            ),
        );
    let sc = scenario::parse(&path, &text).unwrap();
    let sandbox = common::Sandbox::new();
    let outcome = run_and_check(&sc, &sandbox, ReactionKind::Reconnect, false).await;
    assert_eq!(outcome.result.server.as_ref().unwrap().kind, "tuwunel");
}
