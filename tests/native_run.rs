//! Servers hsbench does not install, run through their profiles end to end:
//! - the shipped conduwuit profile over hsbench's stand-in server (a real conduwuit family binary
//!   cannot be built here: ~35 min on two cores), which registers users with the
//!   `m.login.registration_token` stage and keeps them in its database directory;
//! - the shipped generic profile over the real Synapse, started from its virtualenv's python with
//!   the profile's own config template, init command and markers.

mod common;

use std::path::Path;

use hsbench::result::RunStatus;
use hsbench::run::run;
use hsbench::scenario;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conduwuit_profile_boots_loads_and_restores_a_native_server() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = manifest.join("tests/scenarios/tiny-native.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "${HSBENCH_SERVER_BINARY}",
        env!("CARGO_BIN_EXE_hsbench-standin"),
    );
    let sc = scenario::parse(&path, &text).unwrap();
    let mut sandbox = common::Sandbox::new();
    // The stand-in answers the loader, not the API's reads: nothing to verify against.
    sandbox.opts.verify = false;
    let opts = &sandbox.opts;

    let first = run(&sc, opts)
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    let r = &first.result;
    assert_eq!(r.status, RunStatus::Complete);
    let server = r.server.as_ref().unwrap();
    assert_eq!(server.kind, "conduwuit");
    assert!(
        server.version.starts_with("hsbench-standin ") && server.version.contains("sha256"),
        "{}",
        server.version
    );
    assert_eq!(server.database, "embedded");
    let config = server.config_overrides["config"].as_str().unwrap();
    assert!(config.contains("address = [\"127.0.0.1\"]"), "{config}");
    assert!(
        config.contains("registration_token = \"<registration token>\""),
        "the token is not in the results: {config}"
    );

    // Registered through the token stage: the stand-in's database lists every planned user.
    let d = r.dataset.as_ref().unwrap();
    let load = d.load.as_ref().unwrap();
    assert!(
        load.method.contains("m.login.registration_token"),
        "{}",
        load.method
    );
    let fx = d.fixture.as_ref().unwrap();
    assert!(!fx.reused);
    let users =
        std::fs::read_to_string(Path::new(&fx.path).join("synapse-data/database/users")).unwrap();
    assert_eq!(users.lines().count() as u64, sc.dataset.users);

    // The seed boot ran the fresh database's migrations: nested spans from the log's stamps,
    // then the stand-in's DEBUG line cut services_start (as a build that keeps DEBUG does).
    let seed = r.seed_boot.as_ref().unwrap();
    let subs: Vec<(&str, Option<&str>)> = seed
        .subphases
        .iter()
        .map(|s| (s.name.as_str(), s.parent.as_deref()))
        .collect();
    assert_eq!(
        subs,
        [
            ("migration: initial_schema", Some("migrations")),
            ("migration: user_index", Some("migrations")),
            ("services: startup complete", Some("services_start")),
        ]
    );
    assert!(seed.subphases.iter().all(|s| s.duration_ms.is_some()));
    assert!(
        seed.missing_markers.is_empty(),
        "{:?}",
        seed.missing_markers
    );

    // Cold and warm boots over the snapshot: every marker, every phase, stamps from the log.
    assert_eq!(r.boots.len(), 4);
    for b in &r.boots {
        assert_eq!(b.timestamp_source, hsbench::boot::TimestampSource::LogLine);
        assert!(b.missing_markers.is_empty(), "{:?}", b.missing_markers);
        assert!(
            b.phases.iter().all(|p| p.duration_ms.is_some()),
            "{:?}",
            b.phases
        );
        // The stand-in busy-waits 300 ms opening its database: a floor, not a speed target.
        let db_open = b.phases.iter().find(|p| p.name == "db_open").unwrap();
        assert!(db_open.duration_ms.unwrap() >= 300.0, "{db_open:?}");
        // Restored, not fresh: no migrations ran; the services' span is there.
        let subs: Vec<&str> = b.subphases.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(subs, ["services: startup complete"]);
        // The server's own time for the database open, beside hsbench's span.
        let reported = b.server_reported_ms["opened_database"];
        assert!(
            reported >= 300.0 && reported <= db_open.duration_ms.unwrap() + 50.0,
            "{reported}"
        );
        assert!(b.points.contains_key("sync_200"));
        assert!(b.shutdown_ms.is_some() && !b.shutdown_hung);
        assert_eq!(b.cold, b.eviction.is_some());
        // No background marker in this profile: done when the process tree went CPU-idle.
        let bg = b.background.as_ref().unwrap();
        assert_eq!(bg.source, "cpu_idle", "{bg:?}");
        assert!(bg.at_ms.unwrap() >= b.time_to_ready_ms, "{bg:?}");
    }
    assert!(r.cold_boot_summary.is_some() && r.boot_summary.is_some());
    let h = r.herd.as_ref().unwrap();
    assert_eq!((h.ok, h.corrected.count, h.raw.count), (8, 8, 8));
    let svg = std::fs::read_to_string(first.run_dir.join("boot-1-waterfall.svg")).unwrap();
    assert!(svg.contains("conduwuit") && svg.contains("db_open"));

    // Second run: the fixture (the stand-in's data directory) is restored, users and all.
    let second = run(&sc, opts)
        .await
        .unwrap_or_else(|e| panic!("second run failed: {e}"));
    let d2 = second.result.dataset.as_ref().unwrap();
    assert!(d2.fixture.as_ref().unwrap().reused);
    assert!(second.result.seed_boot.is_none());
    let log = std::fs::read_to_string(second.run_dir.join("boot-1.log")).unwrap();
    assert!(
        log.contains(&format!("Database holds {} users", sc.dataset.users)),
        "{log}"
    );
    assert_eq!(second.result.herd.as_ref().unwrap().ok, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_profile_runs_synapse_from_its_own_template() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let install = tokio::task::spawn_blocking(|| {
        hsbench::server::synapse::SynapseInstall::ensure(hsbench::scenario::DEFAULT_SYNAPSE_VERSION)
    })
    .await
    .unwrap()
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-generic.toml");
    let text = format!(
        r#"
schema = 1
name = "tiny-generic"

[server]
kind = "generic"
binary = "{python}"
profile = "{profile}"

[dataset]
seed = 5
users = 10
rooms = 3
big_room_members = 8
messages_per_room = 2
max_room_members = 5
dm_pairs = 1
state_rooms = 1
state_events_per_room = 3

[boot]
repeats = 1
cache = "warm"
timeout = "180s"
shutdown_timeout = "30s"

[workload.herd]
clients = 6
sync = "initial"
request_timeout = "120s"
"#,
        python = install.python.display(),
        profile = manifest
            .join("fixtures/servers/generic-synapse.toml")
            .display()
    );
    std::fs::write(&path, &text).unwrap();
    let sc = scenario::load(&path).unwrap();
    let sandbox = common::Sandbox::new();
    let out = run(&sc, &sandbox.opts)
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    let r = &out.result;
    assert_eq!(r.status, RunStatus::Complete);
    let server = r.server.as_ref().unwrap();
    assert_eq!(server.kind, "generic");
    assert!(
        server
            .version
            .starts_with(&format!("synapse {}", install.version)),
        "version from the profile's version_args: {}",
        server.version
    );
    // Loaded with m.login.dummy through the template's open registration, then checked through
    // the server's own API: exact.
    let d = r.dataset.as_ref().unwrap();
    assert!(d.load.as_ref().unwrap().method.contains("m.login.dummy"));
    let v = d.verify.as_ref().unwrap();
    assert!(v.mismatches.is_empty() && v.checks > 0, "{v:?}");
    let b = &r.boots[0];
    assert!(b.missing_markers.is_empty(), "{:?}", b.missing_markers);
    assert!(
        b.phases.iter().all(|p| p.duration_ms.is_some()),
        "{:?}",
        b.phases
    );
    // Each stream-id generator's scan, nested in stores_start.
    let gens: Vec<_> = b
        .subphases
        .iter()
        .filter(|s| s.name.starts_with("stream_generator: "))
        .collect();
    assert!(!gens.is_empty(), "{:?}", b.subphases);
    assert!(
        gens.iter()
            .all(|g| g.parent.as_deref() == Some("stores_start"))
    );
    let md = std::fs::read_to_string(out.run_dir.join("summary.md")).unwrap();
    assert!(
        md.contains("longest sub-phases") && md.contains("| stream_generator: "),
        "{md}"
    );
    let h = r.herd.as_ref().unwrap();
    assert_eq!((h.ok, h.corrected.count), (6, 6));
}
