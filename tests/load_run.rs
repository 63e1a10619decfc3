//! The load engine against a real Synapse: a small triggered herd (every client long-polls, a
//! state event sets off full-state re-syncs) and then steady open-model traffic, with every
//! count checked against the requests made and every delivery against the dataset's plan.

mod common;

use std::path::Path;
use std::time::Duration;

use hsbench::dataset::plan::DatasetPlan;
use hsbench::load::engine::EndpointResult;
use hsbench::metrics::{read_histogram, read_interval_log};
use hsbench::result::RunStatus;
use hsbench::run::run;
use hsbench::scenario;

/// Every request an endpoint started either completed (ok or a classified error) or was
/// cancelled when the workload ended (long polls still waiting); its corrected and raw
/// histograms, in the result and on disk, hold exactly one value per answered request (failed
/// ones are counted by kind, never timed).
fn check_endpoint(run_dir: &Path, workload: &str, e: &EndpointResult) {
    let errors: u64 = e.errors.values().sum();
    assert_eq!(e.completed, e.ok + errors, "{workload} {}: {e:?}", e.name);
    assert_eq!(
        e.started,
        e.completed + e.cancelled,
        "{workload} {}",
        e.name
    );
    assert_eq!(e.corrected.count, e.ok, "{workload} {}", e.name);
    assert_eq!(e.raw.count, e.ok, "{workload} {}", e.name);
    // Coordinated-omission correction never makes a latency shorter.
    assert!(
        e.corrected.p50_ms >= e.raw.p50_ms,
        "{workload} {}: {e:?}",
        e.name
    );
    assert!(
        e.corrected.max_ms >= e.raw.max_ms,
        "{workload} {}: {e:?}",
        e.name
    );
    let stem = format!("{workload}-{}", e.name);
    let corrected = read_histogram(&run_dir.join(format!("{stem}.hist"))).unwrap();
    let raw = read_histogram(&run_dir.join(format!("{stem}-raw.hist"))).unwrap();
    assert_eq!(corrected.len(), e.ok, "{stem}.hist");
    assert_eq!(raw.len(), e.ok, "{stem}-raw.hist");
    assert!(run_dir.join(format!("{stem}.hgrm")).is_file());
}

/// The interval log's histograms of one tag add up to the whole run's count.
fn interval_total(run_dir: &Path, workload: &str, tag: &str) -> u64 {
    read_interval_log(&run_dir.join(format!("{workload}.hlog")))
        .unwrap()
        .iter()
        .filter(|p| p.tag == tag)
        .map(|p| p.count)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggered_herd_and_steady_traffic_against_real_synapse() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sc = scenario::load(&manifest.join("tests/scenarios/tiny-load.toml")).expect("valid");
    let sandbox = common::Sandbox::new();
    let outcome = run(&sc, &sandbox.opts)
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    let r = &outcome.result;
    let dir = &outcome.run_dir;
    assert_eq!(r.status, RunStatus::Complete);

    // ---- a ramped herd with the lazy-loading filter ----
    let order: Vec<&str> = sc.workloads.iter().map(|w| w.name()).collect();
    assert_eq!(order, ["herd", "triggered", "steady", "catchup"]);
    let h = r.herd.as_ref().expect("herd result");
    assert!(
        h.lazy_load_members && (h.ramp_s - 2.0).abs() < 1e-9,
        "{h:?}"
    );
    assert_eq!(h.ok, 20, "{h:?}");
    assert_eq!((h.corrected.count, h.raw.count), (20, 20));
    // Due evenly over 2 s: the last request could not start before 1.9 s after the release.
    assert!(h.wall_ms >= 1900.0, "{h:?}");
    assert!(h.corrected.max_ms >= h.raw.max_ms);
    assert_eq!(
        read_histogram(&dir.join("herd-sync.hist")).unwrap().len(),
        20
    );

    // ---- triggered herd ----
    let t = r.triggered.as_ref().expect("triggered result");
    assert_eq!(t.clients, 30);
    let ep = |name: &str| t.endpoints.iter().find(|e| e.name == name).unwrap();
    for e in &t.endpoints {
        check_endpoint(dir, "triggered", e);
        assert!(e.bytes_in > 0, "{e:?}");
    }
    // One trigger, accepted.
    assert_eq!((ep("trigger").started, ep("trigger").ok), (1, 1));
    // Every client saw the trigger and re-synced (or gave up after its retries): exactly once
    // each. Each reaction made at least one full-state request; retries made more.
    assert_eq!(t.reacted_ok + t.reacted_gave_up, 30, "{t:?}");
    let resync = ep("resync");
    assert_eq!(resync.started, 30 + t.resync_retries, "{resync:?}");
    assert_eq!(resync.cancelled, 0);
    assert_eq!(t.reaction_time.count, t.reacted_ok);
    assert!(t.peak_concurrent_resyncs >= 1 && t.peak_concurrent_resyncs <= 30);
    // The long polls returned with chatter; the chatter's deliveries were all matched.
    assert!(ep("sync").ok > 30, "{:?}", ep("sync"));
    let sends = ep("send");
    assert!(sends.ok >= 4 * 25, "chatter 4/s for 31 s: {sends:?}");
    let d = &t.deliveries;
    assert_eq!(d.messages, sends.ok);
    assert_eq!(d.expected, d.delivered + d.missing);
    assert_eq!(d.unmatched, 0, "{d:?}");
    assert!(d.delivered > 0 && d.latency.count == d.delivered, "{d:?}");
    let delivery = read_histogram(&dir.join("triggered-delivery.hist")).unwrap();
    assert_eq!(delivery.len(), d.delivered);
    // The recovery: computed from a real baseline. Whether the server recovered within the
    // observation depends on the machine (a loaded one may not): either a time within it, or
    // none, when the server was still degraded at the end (a window after the trigger failed).
    let rec = &t.recovery;
    assert!(
        rec.baseline_per_s > 0.0 && rec.latency_limit_ms > 0.0,
        "{rec:?}"
    );
    assert!((rec.trigger_s - 6.0).abs() < 1.0, "{rec:?}");
    let ttr = rec.time_to_recover_s;
    match ttr {
        Some(ttr) => assert!(ttr >= 0.0 && ttr <= rec.observed_s, "{rec:?}"),
        None => assert!(rec.degraded_at_s.is_some(), "{rec:?}"),
    }
    // The interval log holds the same requests, corrected and raw, and the deliveries.
    for e in &t.endpoints {
        for kind in ["corrected", "raw"] {
            let tag = format!("{}.{kind}", e.name);
            assert_eq!(interval_total(dir, "triggered", &tag), e.ok, "{tag}");
        }
    }
    assert_eq!(interval_total(dir, "triggered", "delivery"), d.delivered);
    assert!(t.harness.cpu_s > 0.0 && t.harness.max_rss_bytes > 1 << 20);

    // ---- steady traffic ----
    let s = r.steady.as_ref().expect("steady result");
    for e in &s.endpoints {
        check_endpoint(dir, "steady", e);
    }
    let send = s.endpoints.iter().find(|e| e.name == "send").unwrap();
    // 10 messages/s for 8 s, open model: every one is due, started and accepted.
    assert_eq!(send.started, 80, "{send:?}");
    assert_eq!(send.ok, 80, "{send:?}");
    // Every member that syncs (the first 40 users: all of them) receives every message in its
    // room, the sender included. Computed here from the plan, independently of the engine:
    // senders take turns, each cycling through the rooms it is in.
    let plan = DatasetPlan::new(sc.dataset.clone());
    let rooms: Vec<_> = plan.rooms().collect();
    let rooms_of = |u: u64| -> Vec<u64> {
        rooms
            .iter()
            .filter(|r| r.members.contains(&u))
            .map(|r| r.members.iter().filter(|&&m| m < 40).count() as u64)
            .collect()
    };
    let per_sender: Vec<Vec<u64>> = (0..5).map(rooms_of).filter(|r| !r.is_empty()).collect();
    let longest = per_sender.iter().map(Vec::len).max().unwrap();
    let mut turns = Vec::new();
    for round in 0..longest {
        for r in &per_sender {
            turns.push(r[round % r.len()]);
        }
    }
    let due: u64 = (0..80).map(|i| turns[i % turns.len()]).sum();
    let d = &s.deliveries;
    assert_eq!(d.messages, 80);
    assert_eq!(d.expected, due, "{d:?}");
    assert_eq!(d.delivered, due, "every receiver of every message: {d:?}");
    assert_eq!(d.missing, 0);
    assert_eq!(d.unmatched, 0);
    assert_eq!(d.latency.count, due);
    // With 1 event a room per answer and a 2 s pause after each, receivers got limited
    // timelines (forced: the pause spans many messages, however fast the server) and paged back
    // through every gap: the deliveries above are exact because of it, and the /messages pages
    // are counted apart.
    assert_eq!(sc.steady().unwrap().poll_pause, Duration::from_secs(2));
    assert!(d.gaps > 0 && d.backfilled > 0, "{d:?}");
    assert!(d.backfilled <= d.delivered, "{d:?}");
    let pages = s
        .endpoints
        .iter()
        .find(|e| e.name == "messages")
        .expect("the gaps' /messages pages");
    assert!(pages.ok > 0 && pages.completed == pages.ok, "{pages:?}");
    assert_eq!(
        read_histogram(&dir.join("steady-delivery.hist"))
            .unwrap()
            .len(),
        due
    );
    assert_eq!(interval_total(dir, "steady", "delivery"), due);
    // Delivery is measured from the send's 200, so it is a positive time, and no longer than
    // the sending (8 s) and the drain (60 s).
    assert!(
        d.latency.min_ms >= 0.0 && d.latency.max_ms < 68_000.0,
        "{d:?}"
    );
    assert!((s.intended_per_s - 10.0).abs() < 1e-9);

    // ---- catch-up ----
    let c = r.catchup.as_ref().expect("catch-up result");
    for e in &c.endpoints {
        check_endpoint(dir, "catchup", e);
        assert_eq!(e.cancelled, 0, "{e:?}");
    }
    let cep = |name: &str| c.endpoints.iter().find(|e| e.name == name).unwrap();
    // Every reader: one initial sync, pages back through all 150 messages, one receipt, one
    // sync after it; nothing failed.
    assert_eq!(c.caught_up, 5, "{c:?}");
    assert_eq!(c.messages_read, 5 * 150);
    assert_eq!(
        (cep("initial_sync").ok, cep("receipt").ok, cep("sync").ok),
        (5, 5, 5)
    );
    // The initial sync's timeline holds the newest 20; 130 more at 40 a page: at least 4 pages.
    assert!(c.pages >= 5 * 4 && cep("messages").ok == c.pages, "{c:?}");
    assert_eq!(c.catch_up.count, 5);
    // The readers really had the backlog unread, and the receipt cleared it.
    assert!(c.unread_before_min.is_some_and(|n| n >= 150), "{c:?}");
    assert_eq!(c.unread_after_max, Some(0), "{c:?}");
    assert!(c.backlog_write_per_s > 0.0);

    // The figures reach the thresholds, the summary and the saved result.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap();
    assert_eq!(json["steady"]["deliveries"]["delivered"], due);
    assert!(
        json["triggered"]["recovery"]["definition"]
            .as_str()
            .unwrap()
            .contains("baseline")
    );
    let names: Vec<&str> = r.thresholds.iter().map(|c| c.metric.as_str()).collect();
    // The scenario's own thresholds, then the default error gate of every workload.
    assert_eq!(
        names,
        [
            "steady.delivery.p99",
            "triggered.recovery",
            "herd.errors",
            "triggered.errors",
            "steady.errors",
            "catchup.errors"
        ]
    );
    for gate in &r.thresholds[2..] {
        assert!(
            gate.passed && gate.condition == "< 1% (default)",
            "{gate:?}"
        );
    }
    let value = |m: &str| r.thresholds.iter().find(|c| c.metric == m).unwrap().value;
    assert_eq!(value("steady.delivery.p99"), Some(d.latency.p99_ms));
    let recovery_gate = r
        .thresholds
        .iter()
        .find(|c| c.metric == "triggered.recovery")
        .unwrap();
    match ttr {
        Some(ttr) => assert_eq!(recovery_gate.value, Some(ttr * 1000.0)),
        // Never recovered: no limit is met by it.
        None => assert!(!recovery_gate.passed, "{recovery_gate:?}"),
    }
    // report.html has a section with plots for every workload.
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    for id in [
        "herd",
        "triggered-over-time",
        "triggered-reaction",
        "steady-over-time",
        "steady-percentiles",
        "catchup-time",
        "catchup-unread",
    ] {
        assert!(
            html.contains(&format!("id=\"{id}\"")),
            "{id} missing from report.html"
        );
    }
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        md.contains("Time to recover") && md.contains("Delivery"),
        "{md}"
    );
}
