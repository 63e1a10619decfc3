//! Profiling, for real: Synapse booted under py-spy and profiled under load, and a native
//! server (the repo's own stand-in) under `perf`, each cut into per-phase flamegraphs.

mod common;

use std::path::Path;
use std::time::Duration;

use hsbench::boot::{BootSpec, Wrapper, boot};
use hsbench::profile::{BootSlicing, Folded, Tool, ToolKind, differential};
use hsbench::result::RunStatus;
use hsbench::run::run;
use hsbench::scenario;
use hsbench::server::{ServerProfile, free_port};

fn folded(run_dir: &Path, rel: &str) -> Folded {
    Folded::parse(&std::fs::read_to_string(run_dir.join(rel)).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synapse_boot_and_load_profiles_with_py_spy() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sc = scenario::load(&manifest.join("tests/scenarios/tiny-profile.toml")).unwrap();
    let sandbox = common::Sandbox::new();
    let outcome = run(&sc, &sandbox.opts)
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    let r = &outcome.result;
    let dir = &outcome.run_dir;
    assert_eq!(r.status, RunStatus::Complete);
    // The profiled boot stays out of the timed boots and their statistics.
    assert_eq!(r.boots.len(), 2);
    assert_eq!(r.boot_summary.as_ref().unwrap().boots, 2);

    let p = r.profile.as_ref().expect("profile section");
    assert!(p.unavailable.is_none(), "{:?}", p.unavailable);
    assert_eq!(p.tool.as_ref().unwrap().kind, ToolKind::PySpy);
    assert_eq!(p.rate_hz, 200);
    let b = &p.boots[0];
    assert!(b.error.is_none(), "{:?}", b.error);
    assert_eq!(b.boot.label, "profile-1");
    assert!(
        b.boot.missing_markers.is_empty(),
        "{:?}",
        b.boot.missing_markers
    );
    // The boot from spawn to ready: Synapse's start-up functions are in it, in wall-clock µs
    // that add up to at most (threads × boot time).
    let whole = b.flamegraphs.iter().find(|f| f.scope == "boot").unwrap();
    assert_eq!(whole.unit, "µs");
    let boot = folded(dir, whole.folded.as_ref().unwrap());
    // (Functions that run for tens of ms even on this tiny dataset; `prepare_database` takes
    // ~2 ms here, below the sampling interval, so it is not required.)
    for f in [
        "<module> (synapse/app/homeserver.py)",
        "load_or_generate_config (synapse/config/_base.py)",
        "setup (synapse/app/homeserver.py)",
        "HomeServer.setup (synapse/server.py)",
        "start (synapse/app/_base.py)",
    ] {
        assert!(boot.has_frame(f), "boot profile lacks {f}");
    }
    assert_eq!(boot.total(), whole.total);
    assert!(
        boot.total() > 0 && (boot.total() + whole.idle) as f64 / 1000.0 <= 64.0 * whole.to_ms,
        "{} + {} µs over {} ms",
        boot.total(),
        whole.idle,
        whole.to_ms
    );
    let svg = std::fs::read_to_string(dir.join(whole.svg.as_ref().unwrap())).unwrap();
    assert!(
        svg.contains("<svg")
            && svg.contains("profile-1 · boot")
            && svg.contains("HomeServer.setup")
    );
    assert!(svg.contains("Synapse 1.163.2"));
    // Phases: import_config holds the imports, not the database; each long enough phase has
    // its own flamegraph, the others say why not.
    let phase = |n: &str| b.flamegraphs.iter().find(|f| f.scope == n).unwrap();
    let import = folded(dir, phase("import_config").folded.as_ref().unwrap());
    assert!(import.has_frame("_find_and_load"));
    // Cut by the log's stamps, aligned to py-spy's clock by when the server was spawned: at
    // most one sample interval (5 ms at 200 Hz) of setup may fall on the wrong side.
    assert!(b.boot.points.contains_key("server_spawned"));
    assert!(
        import.inclusive("HomeServer.setup (synapse/server.py)") <= 5_000,
        "{} µs of setup in import_config",
        import.inclusive("HomeServer.setup (synapse/server.py)")
    );
    for f in &b.flamegraphs {
        assert!(f.svg.is_some() != f.note.is_some(), "{f:?}");
        if f.svg.is_none() {
            assert!(f.to_ms - f.from_ms < 10.0 || f.total == 0, "{f:?}");
        }
    }
    // Overhead against the unprofiled boots: both sides measured.
    let o = b.overhead.as_ref().unwrap();
    assert_eq!(o.baseline_boots, 2);
    assert!(o.time_to_ready_ms.with > 0.0 && o.time_to_ready_ms.without > 0.0);
    assert!(o.phases.iter().any(|ph| ph.name == "import_config"));
    assert!(b.profiler_cpu_s.unwrap() > 0.0);

    // Under load: py-spy attached to the running server, on-CPU samples of the sync path.
    let l = &p.load[0];
    assert_eq!(l.workload, "herd");
    assert!(l.error.is_none(), "{:?}", l.error);
    let f = l.flamegraph.as_ref().unwrap();
    let load = folded(dir, f.folded.as_ref().unwrap());
    assert!(load.total() > 0 && load.total() == f.total);
    assert!(load.has_frame("synapse/"), "no Synapse frames under load");
    assert!(l.mode.contains("nonblocking"));
    // The summary links what was made.
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(md.contains("### Profiles") && md.contains("profile/profile-1.boot.svg"));
    assert!(md.contains("profile/load.herd.svg"));
    // Two profiles of the same boot differ in no stack; against the load profile, they do.
    let d = differential(&boot, &boot, "same", "", "µs");
    assert!(!d.has_growth());
}

/// The stand-in's log: RFC 3339 stamps with microseconds, one phase per named CPU burner.
const STANDIN_PROFILE: &str = r#"
name = "standin"
[log]
timestamp_regex = '^(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6})Z '
timestamp_format = "%Y-%m-%dT%H:%M:%S%.6f"
[[markers]]
name = "loading_database"
regex = 'Loading database$'
[[markers]]
name = "opened_database"
regex = 'Opened database\.'
[[markers]]
name = "starting_services"
regex = 'Starting services\.\.\.$'
[[markers]]
name = "services_started"
regex = 'Services startup complete\.$'
[[markers]]
name = "listening"
regex = 'Listening on '
[[phases]]
name = "db_open"
from = "loading_database"
to = "opened_database"
[[phases]]
name = "services"
from = "starting_services"
to = "services_started"
"#;

#[tokio::test]
async fn perf_profiles_a_native_server_by_phase() {
    let perf = tokio::task::spawn_blocking(Tool::perf)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e} (CI installs linux-perf)"));
    let profile = ServerProfile::parse(Path::new("standin.toml"), STANDIN_PROFILE).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hsbench-standin"));
    cmd.args(["--port", &port.to_string(), "--phase-ms", "400"]);
    let raw = dir.path().join("boot.perf.data");
    let server = boot(BootSpec {
        label: "profile-1".into(),
        profile: &profile,
        command: perf.wrap_launch(&cmd, &raw, 499),
        port,
        sync_token: None,
        timeout: Duration::from_secs(60),
        log_path: dir.path().join("profile-1.log"),
        extra_pgids: vec![],
        wrapper: Some(Wrapper {
            line_prefix: perf.own_line_prefix(),
        }),
        background: None,
        on_marker: None,
        confine: None,
    })
    .await
    .unwrap();
    let (leader, standin) = (server.pid(), server.server_pid());
    assert_ne!(leader, standin, "the stand-in runs as perf's child");
    let rec = server.stop(Duration::from_secs(30), dir.path()).await;
    assert!(
        !rec.shutdown_hung,
        "perf exits once the stand-in exits: {rec:?}"
    );
    assert!(rec.missing_markers.is_empty(), "{:?}", rec.missing_markers);
    for pid in [leader, standin] {
        assert!(std::fs::read_to_string(format!("/proc/{pid}/stat")).is_err());
    }

    let files = BootSlicing {
        tool: &perf,
        rate_hz: 499,
        boot: &rec,
        raw: &raw,
        run_dir: dir.path(),
        subdir: "profile",
        title: "stand-in",
        idle_frames: &[],
    }
    .render()
    .unwrap();
    let get = |scope: &str| {
        let f = files.iter().find(|f| f.scope == scope).unwrap();
        assert_eq!(f.unit, "samples");
        folded(dir.path(), f.folded.as_ref().unwrap())
    };
    // Samples land in the phase whose function ran: perf's CLOCK_MONOTONIC stamps line up with
    // the phases read from the log.
    let (db, services) = (get("db_open"), get("services"));
    assert!(db.has_frame("open_database"), "{db:?}");
    assert!(services.has_frame("start_services"), "{services:?}");
    let share = |f: &Folded, n: &str| f.inclusive(n) as f64 / f.total() as f64;
    assert!(share(&db, "open_database") > 0.8, "{db:?}");
    assert!(share(&services, "start_services") > 0.8, "{services:?}");
    let whole = get("boot");
    assert!(whole.has_frame("open_database") && whole.has_frame("start_services"));
    assert!(
        std::fs::read_to_string(dir.path().join("profile/profile-1.db_open.svg"))
            .unwrap()
            .contains("open_database")
    );
}
