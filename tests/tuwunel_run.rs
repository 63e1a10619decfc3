//! A real conduwuit-family server end to end: tuwunel 1.4.6, a release build (DEBUG lines
//! compiled out), through the shipped profile. The binary's path comes from `HSBENCH_TUWUNEL`
//! (`.ci/run` sets it to `../shared/servers/tuwunel-1.4.6` and fails when it is missing);
//! without it the test says that it was skipped and why, unless `HSBENCH_REQUIRE_REAL_SERVERS`
//! is set, when it fails.

mod common;

use std::path::Path;

use hsbench::result::RunStatus;
use hsbench::run::run;
use hsbench::scenario;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuwunel_release_build_every_phase_herds_crash_and_profiles() {
    let Some(binary) = common::tuwunel() else {
        return;
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = manifest.join("tests/scenarios/tiny-tuwunel.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("${HSBENCH_SERVER_BINARY}", binary.to_str().unwrap());
    let sc = scenario::parse(&path, &text).unwrap();
    let sandbox = common::Sandbox::new();
    let opts = &sandbox.opts;

    let first = run(&sc, opts)
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    let r = &first.result;
    assert_eq!(r.status, RunStatus::Complete, "{:?}", r.error);
    let server = r.server.as_ref().unwrap();
    assert_eq!(server.kind, "tuwunel");
    assert!(
        server.version.starts_with("tuwunel 1.4.6"),
        "{}",
        server.version
    );

    // Built through the API: the users the plan puts online with a password (the registration
    // token), the others through the application service the seed boot registered; then
    // checked through the API (joins of passwordless users go through the service).
    let d = r.dataset.as_ref().unwrap();
    let load = d.load.as_ref().unwrap();
    assert!(
        load.method.contains("application service"),
        "{}",
        load.method
    );
    let count = |name: &str| {
        load.steps
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no step {name}: {:?}", load.steps))
            .count
    };
    let online = d.totals.presence_online;
    assert!(online > 0 && online < d.totals.users, "{:?}", d.totals);
    assert_eq!(count("register (password)"), online);
    assert_eq!(count("register (appservice)"), d.totals.users - online);
    let v = d.verify.as_ref().unwrap();
    assert!(v.mismatches.is_empty() && v.checks > 0, "{v:?}");
    assert!(!d.fixture.as_ref().unwrap().reused);

    // Every boot, cold and warm: every marker of the profile, every phase, from the log's own
    // stamps; the server's own database-open time beside hsbench's; the presence reset after
    // ready as a measured background span.
    let phases = [
        "init",
        "db_open",
        "migrations",
        "services_start",
        "http_ready",
        "first_sync",
    ];
    assert_eq!(r.boots.len(), 4);
    for b in &r.boots {
        assert_eq!(b.timestamp_source, hsbench::boot::TimestampSource::LogLine);
        assert!(
            b.missing_markers.is_empty(),
            "{}: {:?}",
            b.label,
            b.missing_markers
        );
        let names: Vec<&str> = b.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, phases);
        for p in &b.phases {
            let ms = p
                .duration_ms
                .unwrap_or_else(|| panic!("{}: {p:?}", b.label));
            assert!(
                ms >= 0.0 && ms < b.time_to_ready_ms + 1.0,
                "{}: {p:?}",
                b.label
            );
        }
        let reported = b.server_reported_ms.get("opened_database").copied();
        assert!(
            reported.is_some_and(|ms| ms > 0.0),
            "{}: {:?}",
            b.label,
            b.server_reported_ms
        );
        let bg = b.background.as_ref().unwrap();
        assert!(bg.at_ms.unwrap() >= b.time_to_ready_ms, "{bg:?}");
        assert!(bg.cpu_s.is_some_and(|c| c >= 0.0), "{bg:?}");
        assert!(b.shutdown_ms.is_some() && !b.shutdown_hung, "{}", b.label);
        assert_eq!(b.cold, b.eviction.is_some());
        // `[boot] restore = "each"`: every boot started from the fixture.
        assert!(
            b.restore_seconds.is_some_and(|s| s > 0.0),
            "{}: {:?}",
            b.label,
            b.restore_seconds
        );
    }
    let warm = r.boot_summary.as_ref().unwrap();
    let reported = &warm.server_reported_ms;
    assert!(
        reported.len() == 1 && reported[0].name == "opened_database" && reported[0].missing_in == 0,
        "{reported:?}"
    );
    let md = std::fs::read_to_string(first.run_dir.join("summary.md")).unwrap();
    assert!(
        md.contains("| opened_database, as the server reports it |"),
        "{md}"
    );
    assert!(
        md.contains("| background work finished (spawn → cpu_idle) |"),
        "{md}"
    );
    let html = std::fs::read_to_string(first.run_dir.join("report.html")).unwrap();
    assert!(html.contains("opened_database, as the server reports it"));

    // The tuwunel log's shutdown lines, in the boot logs hsbench keeps.
    let log = std::fs::read_to_string(first.run_dir.join("boot-1.log")).unwrap();
    assert!(log.contains("Shutdown complete."), "{log}");

    // A herd of full-state re-syncs: every request answered.
    let h = r.herd.as_ref().unwrap();
    assert_eq!(
        (h.ok, h.corrected.count, h.raw.count),
        (25, 25, 25),
        "{h:?}"
    );
    assert!(h.errors.is_empty(), "{:?}", h.errors);

    // The triggered herd: every member long-polling saw the trigger and re-synced.
    let t = r.triggered.as_ref().unwrap();
    assert_eq!(t.reacted_ok, 30, "{t:?}");
    assert!(t.deliveries.delivered > 0, "{:?}", t.deliveries);

    // SIGKILL under writes, then a recovery boot: every acknowledged write read back.
    let crash = &r.crash_restarts[0];
    assert!(crash.writes_acked > 0, "{crash:?}");
    assert_eq!(crash.writes_lost, Some(0), "{crash:?}");
    assert!(crash.recovery.missing_markers.is_empty(), "{crash:?}");

    // perf during a boot: a flamegraph of spawn-to-ready with samples in it, and a window per
    // phase (rendered, or saying why not: a phase shorter than a few samples).
    let p = r.profile.as_ref().unwrap();
    assert_eq!(
        p.tool.as_ref().unwrap().kind,
        hsbench::profile::ToolKind::Perf
    );
    // The shared binary is stripped: the result says what that does to the flamegraphs.
    assert!(
        p.note
            .as_deref()
            .is_some_and(|n| n.contains("no symbol table")),
        "{:?}",
        p.note
    );
    let summary = std::fs::read_to_string(first.run_dir.join("summary.md")).unwrap();
    assert!(summary.contains("no symbol table (stripped)"), "{summary}");
    let pb = &p.boots[0];
    assert!(pb.error.is_none(), "{:?}", pb.error);
    let whole = pb.flamegraphs.iter().find(|f| f.scope == "boot").unwrap();
    assert!(whole.total > 0 && whole.svg.is_some(), "{whole:?}");
    assert!(first.run_dir.join(whole.svg.as_ref().unwrap()).is_file());
    for name in phases {
        let f = pb.flamegraphs.iter().find(|f| f.scope == name);
        let f = f.unwrap_or_else(|| panic!("no window for {name}: {:?}", pb.flamegraphs));
        assert!(f.svg.is_some() || f.note.is_some(), "{f:?}");
    }
    assert!(!p.load.is_empty(), "a recording during the workloads");

    // Second run: the fixture (tuwunel's database directory) is restored; no seed boot.
    let second = run(&sc, opts)
        .await
        .unwrap_or_else(|e| panic!("second run failed: {e}"));
    let r2 = &second.result;
    assert_eq!(r2.status, RunStatus::Complete, "{:?}", r2.error);
    assert!(
        r2.dataset
            .as_ref()
            .unwrap()
            .fixture
            .as_ref()
            .unwrap()
            .reused
    );
    assert!(r2.seed_boot.is_none());
    assert_eq!(r2.herd.as_ref().unwrap().ok, 25);
}
