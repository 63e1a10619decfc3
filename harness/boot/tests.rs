use super::*;

#[test]
fn statement_subphases_start_at_the_end_less_the_duration_and_sum_one_name() {
    let p = ServerProfile::synapse();
    let prefill = p
        .statement_subphases
        .iter()
        .position(|r| r.name == "prefill")
        .unwrap();
    let presence = p
        .statement_subphases
        .iter()
        .position(|r| r.name == "presence_on_startup")
        .unwrap();
    let hit = |def, name: Option<&str>, ended_at_ms, ms| StatementHit {
        def,
        name: name.map(str::to_string),
        ended_at_ms,
        ms,
    };
    let spans = statement_subphases(
        &p,
        &[
            hit(presence, None, 1300.0, 50.0),
            hit(prefill, Some("events"), 1200.0, 60.0),
            hit(prefill, Some("device_lists_stream"), 1400.0, 2.0),
            hit(prefill, Some("device_lists_stream"), 1410.0, 3.0),
            hit(99, Some("no such rule"), 1.0, 1.0),
        ],
    );
    let got: Vec<(&str, f64, f64, f64, &str)> = spans
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.start_ms.unwrap(),
                s.end_ms.unwrap(),
                s.duration_ms.unwrap(),
                s.parent.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("prefill: events", 1140.0, 1200.0, 60.0, "stores_start"),
            ("presence_on_startup", 1250.0, 1300.0, 50.0, "stores_start"),
            (
                "prefill: device_lists_stream",
                1398.0,
                1410.0,
                5.0,
                "stores_start"
            ),
        ]
    );
}

fn replay(file: &str) -> (BTreeMap<String, f64>, Vec<String>, ServerProfile) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(file),
    )
    .unwrap();
    let profile = ServerProfile::synapse();
    let first = profile
        .line_timestamp_ms(text.lines().next().unwrap())
        .unwrap();
    // Pretend the process was spawned 1.5 s before its first log line.
    let mut m = MarkerMatcher::new(profile.clone(), first - 1500.0);
    for (i, line) in text.lines().enumerate() {
        m.observe(line, 99_999.0 + i as f64);
    }
    (m.points(), m.missing(), profile)
}

#[test]
fn recorded_synapse_boots_yield_every_phase_in_order() {
    for file in [
        "synapse-1.163.2-boot-existing-db.log",
        "synapse-1.163.2-boot-fresh-db.log",
    ] {
        let (points, missing, profile) = replay(file);
        // The background marker comes once background updates finish, after ready: only the
        // existing database's boot got that far before it was stopped.
        let bg = profile.background_marker.clone().unwrap();
        let missing: Vec<&String> = missing.iter().filter(|m| **m != bg).collect();
        assert!(missing.is_empty(), "{file}: missing {missing:?}");
        // Markers in the profile's order, each at or after the previous one.
        let times: Vec<f64> = profile
            .markers
            .iter()
            .filter_map(|m| points.get(&m.name).copied())
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{file}: {times:?}");
        assert_eq!(
            points["starting_server"], 1500.0,
            "{file}: stamp, not arrival"
        );
        let mut all = points.clone();
        all.insert("spawn".into(), 0.0);
        let ph = phases(&profile, &all);
        let get = |n: &str| ph.iter().find(|p| p.name == n).unwrap().duration_ms;
        assert_eq!(get("import_config"), Some(1500.0));
        assert_eq!(
            get("db_prepare"),
            Some(points["schema_up_to_date"] - points["preparing_databases"])
        );
        // Harness milestones were not observed in a replay: those phases are missing.
        assert_eq!(get("first_sync"), None);
    }
}

#[test]
fn recorded_existing_db_boot_has_known_stamps() {
    let (points, _, _) = replay("synapse-1.163.2-boot-existing-db.log");
    // 04:20:18,781 → 04:20:18,783 and 04:20:18,784 → 04:20:18,802 in the file.
    assert_eq!(
        points["schema_up_to_date"] - points["preparing_databases"],
        2.0
    );
    assert_eq!(
        points["finished_setting_up"] - points["starting_main_database"],
        18.0
    );
    assert_eq!(points["listening"] - points["starting_server"], 69.0);
}

/// The duration of the phase `name`, which must have one.
fn duration(ph: &[PhaseTiming], name: &str) -> f64 {
    ph.iter()
        .find(|p| p.name == name)
        .and_then(|p| p.duration_ms)
        .unwrap_or_else(|| panic!("no duration for {name}: {ph:?}"))
}

/// Replay a recorded conduwuit-family log (`tests/data/<file>`) through `profile`: the first
/// stamped line 100 ms after spawn, /versions and /sync answered 2 and 9 ms after the
/// listener. Every marker must be found.
fn replay_native(profile: &ServerProfile, file: &str) -> (MarkerMatcher, Vec<PhaseTiming>) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(file),
    )
    .unwrap();
    let first = text
        .lines()
        .find_map(|l| profile.line_timestamp_ms(l))
        .unwrap();
    let mut m = MarkerMatcher::new(profile.clone(), first - 100.0);
    for line in text.lines() {
        m.observe(line, 0.0);
    }
    assert!(m.missing().is_empty(), "{file}: missing {:?}", m.missing());
    let mut points = m.points();
    points.insert("spawn".into(), 0.0);
    points.insert("versions_200".into(), points["listening"] + 2.0);
    points.insert("sync_200".into(), points["listening"] + 9.0);
    let ph = phases(profile, &points);
    (m, ph)
}

/// Boot logs of conduwuit (a default release build: INFO and up) and continuwuity (DEBUG lines
/// kept, one migration run), written from their sources' log statements in the format of
/// tuwunel 1.4.6's real log, replayed through the shipped profiles: every phase from INFO
/// lines alone, the optional DEBUG cut and the migrations as sub-phases where they print.
#[test]
fn native_profiles_find_every_phase_from_info_lines() {
    for kind in ["conduwuit", "continuwuity"] {
        let profile = ServerProfile::builtin(kind).unwrap();
        let (m, ph) = replay_native(&profile, &format!("{kind}-boot.log"));
        assert!(ph.iter().all(|p| p.duration_ms.is_some()), "{kind}: {ph:?}");
        let get = |n: &str| duration(&ph, n);
        // 00:40:01.102233 is 100 ms after spawn; "Opened database." at 01.931554, "Loaded
        // RocksDB database" at 03.101900, "Listening on" at 07.361187.
        for (name, want) in [
            ("init", 100.0),
            ("db_open", 829.321),
            ("migrations", 1170.346),
            ("services_start", 4259.287),
        ] {
            assert!(
                (get(name) - want).abs() < 1e-3,
                "{kind}: {name} {}",
                get(name)
            );
        }
        assert!(
            (m.reported()["opened_database"] - 826.102).abs() < 1e-9,
            "{kind}"
        );
        let subs = subphases(&profile, &ph, m.subphase_hits());
        let got: Vec<(&str, f64, Option<&str>)> = subs
            .iter()
            .map(|s| (s.name.as_str(), s.duration_ms.unwrap(), s.parent.as_deref()))
            .collect();
        if kind == "conduwuit" {
            // A default release build: no DEBUG line, no migration ran.
            assert!(got.is_empty(), "{got:?}");
        } else {
            // The migration line is written when the step is done: its span starts where
            // `migrations` starts. The DEBUG line after the presence reset cuts
            // services_start: the workers' start plus the reset, then the router.
            assert_eq!(got.len(), 2, "{got:?}");
            assert_eq!(got[0].0, "migration: Bumped database version to 18");
            assert!((got[0].1 - 1048.857).abs() < 1e-3, "{got:?}");
            assert_eq!(got[0].2, Some("migrations"));
            assert_eq!(got[1].0, "services: startup complete");
            assert!((got[1].1 - 4253.122).abs() < 1e-3, "{got:?}");
            assert_eq!(got[1].2, Some("services_start"));
        }
    }
    let conduit = ServerProfile::builtin("conduit").unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conduit-boot.log"),
    )
    .unwrap();
    let mut m = MarkerMatcher::new(conduit, 0.0);
    for line in text.lines() {
        m.observe(line, 0.0);
    }
    assert!(m.missing().is_empty(), "conduit: missing {:?}", m.missing());
}

/// Real boot logs of tuwunel 1.4.6 (a release build: INFO and up), over an existing and a
/// fresh database, replayed through the shipped profile: every marker, every phase, and
/// the database-open time the server reports itself.
#[test]
fn tuwunel_release_logs_give_every_phase() {
    let profile = ServerProfile::builtin("tuwunel").unwrap();
    for (file, reported, phases_ms) in [
        (
            "tuwunel-1.4.6-boot.log",
            123.407505,
            [163.317, 1.916, 5.907],
        ),
        (
            "tuwunel-1.4.6-boot-fresh.log",
            81.74362,
            [103.324, 8.323, 25.314],
        ),
    ] {
        let (m, ph) = replay_native(&profile, file);
        let names: Vec<&str> = ph.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "init",
                "db_open",
                "migrations",
                "services_start",
                "http_ready",
                "first_sync"
            ]
        );
        assert!(ph.iter().all(|p| p.duration_ms.is_some()), "{file}: {ph:?}");
        let get = |n: &str| duration(&ph, n);
        for (name, want) in ["db_open", "migrations", "services_start"]
            .iter()
            .zip(phases_ms)
        {
            assert!(
                (get(name) - want).abs() < 1e-3,
                "{file}: {name} {}",
                get(name)
            );
        }
        let r = m.reported();
        assert!(
            (r["opened_database"] - reported).abs() < 1e-9,
            "{file}: {r:?}"
        );
        assert_eq!(r.len(), 1);
    }
}

#[test]
fn cpu_idle_is_the_start_of_the_first_quiet_window() {
    // Busy (one core) until 3 s, then 1% of a core; samples every 100 ms.
    let samples: Vec<ResourceSample> = (0..80)
        .map(|i| {
            let t = i as f64 * 100.0;
            let cpu = if t <= 3000.0 {
                t / 1000.0
            } else {
                3.0 + (t - 3000.0) / 1000.0 * 0.01
            };
            ResourceSample {
                t_ms: t,
                cpu_user_s: cpu,
                ..Default::default()
            }
        })
        .collect();
    assert_eq!(cpu_idle_since(&samples, 1000.0, 2000.0, 0.05), Some(3000.0));
    // Not 2 s of samples after the quiet start: not yet.
    assert_eq!(cpu_idle_since(&samples[..45], 1000.0, 2000.0, 0.05), None);
    assert_eq!(cpu_idle_since(&[], 0.0, 2000.0, 0.05), None);
}

#[test]
fn subphase_lines_that_mark_the_end_leave_the_time_before_them_to_a_span_of_its_own() {
    let (points, _, profile) = replay("synapse-1.163.2-boot-existing-db.log");
    let mut all = points.clone();
    all.insert("spawn".into(), 0.0);
    let ph = phases(&profile, &all);
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/synapse-1.163.2-boot-existing-db.log"),
    )
    .unwrap();
    let first = profile
        .line_timestamp_ms(text.lines().next().unwrap())
        .unwrap();
    let mut m = MarkerMatcher::new(profile.clone(), first - 1500.0);
    for line in text.lines() {
        m.observe(line, 0.0);
    }
    let subs = subphases(&profile, &ph, m.subphase_hits());
    let gens: Vec<&PhaseTiming> = subs
        .iter()
        .filter(|s| s.parent.as_deref() == Some("stores_start"))
        .collect();
    // Synapse logs a generator's line after its scan, inside a store's constructor: what ran
    // before the line (other constructors) is not the scan's, so the spans are named by the
    // lines around them. The first starts where stores_start starts ("Starting 'main'
    // database", 18,784) and ends at the push_rules line (18,793); the next starts there.
    assert_eq!(gens[0].name, "stream_generator: (before push_rules)");
    assert!(
        gens[1]
            .name
            .starts_with("stream_generator: (between push_rules and "),
        "{}",
        gens[1].name
    );
    assert_eq!(
        gens[0].start_ms,
        ph.iter()
            .find(|p| p.name == "stores_start")
            .unwrap()
            .start_ms
    );
    assert_eq!(gens[0].duration_ms, Some(9.0));
    assert_eq!(gens[1].start_ms, gens[0].end_ms);
}

/// The spec of a test boot labelled `boot-1`, logging into `dir`.
fn test_spec<'p>(
    profile: &'p ServerProfile,
    command: std::process::Command,
    port: u16,
    sync_token: Option<String>,
    timeout: Duration,
    dir: &Path,
) -> BootSpec<'p> {
    BootSpec {
        label: "boot-1".into(),
        profile,
        command,
        port,
        sync_token,
        timeout,
        log_path: dir.join("boot-1.log"),
        extra_pgids: vec![],
        wrapper: None,
        background: None,
        on_marker: None,
        confine: None,
    }
}

/// A stand-in server: a shell script that logs Synapse-like lines with real stamps, then
/// listens on the port through python's http.server (versions probe), then ignores nothing.
#[tokio::test]
async fn crash_during_boot_reports_log_tail_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        "echo '2026-11-23 04:10:04,254 - x - 1 - WARNING - main - ***** STARTING SERVER *****'; \
             echo 'boom: database is locked' >&2; sleep 0.2; exit 3",
    ]);
    let profile = ServerProfile::synapse();
    let err = boot(test_spec(
        &profile,
        cmd,
        crate::server::free_port().unwrap(),
        None,
        Duration::from_secs(20),
        dir.path(),
    ))
    .await
    .err()
    .expect("the stand-in exits");
    let shown = err.to_string();
    assert!(shown.contains("exited during boot-1"), "{shown}");
    assert!(shown.contains("boom: database is locked"), "{shown}");
    assert!(shown.contains("exit status: 3"), "{shown}");
}

/// A stand-in server: logs a Synapse-like line, answers 200 to everything, ignores SIGTERM.
const STAND_IN: &str = r#"
import http.server, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
port = int(sys.argv[1])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.end_headers(); self.wfile.write(b"{}")
    def log_message(self, *a): pass
stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()) + ",000"
print(stamp + " - x - 1 - WARNING - main - ***** STARTING SERVER *****", flush=True)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"#;

#[tokio::test]
async fn shutdown_hang_is_reported_and_the_group_killed() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::server::free_port().unwrap();
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", STAND_IN, &port.to_string()]);
    let profile = ServerProfile::synapse();
    let server = boot(test_spec(
        &profile,
        cmd,
        port,
        Some("t".into()),
        Duration::from_secs(30),
        dir.path(),
    ))
    .await
    .unwrap();
    let pid = server.pid();
    let rec = server.stop(Duration::from_millis(500), dir.path()).await;
    assert!(rec.shutdown_hung && rec.shutdown_ms.is_none(), "{rec:?}");
    assert!(rec.exit_status.unwrap().contains("signal: 9"));
    assert!(rec.points.contains_key("starting_server") && rec.points.contains_key("sync_200"));
    assert!(std::fs::read_to_string(format!("/proc/{pid}/stat")).is_err());
}

/// A server that opens its port but holds every HTTP request open without an answer.
const HOLDS_REQUESTS: &str = r#"
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
print("listening", flush=True)
held = []
while True:
    c, _ = s.accept(); held.append(c)
"#;

#[tokio::test]
async fn a_readiness_request_held_open_fails_within_the_boot_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::server::free_port().unwrap();
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", HOLDS_REQUESTS, &port.to_string()]);
    let profile = ServerProfile::synapse();
    let timeout = Duration::from_secs(3);
    let t = Instant::now();
    let err = boot(test_spec(&profile, cmd, port, None, timeout, dir.path()))
        .await
        .err()
        .expect("no answer to /versions");
    let took = t.elapsed();
    // The request that never ends is cut at the deadline: the boot fails within its
    // timeout plus a second, and the message gives the real time elapsed.
    assert!(took < timeout + Duration::from_secs(1), "took {took:?}");
    let shown = err.to_string();
    assert!(shown.contains("versions_200 did not happen"), "{shown}");
    match err {
        ServerError::Timeout { after, .. } => {
            assert!(
                after >= timeout && after < timeout + Duration::from_secs(1),
                "{after:?}"
            )
        }
        e => panic!("{e}"),
    }
}

#[tokio::test]
async fn hang_times_out_and_the_group_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let mut cmd = std::process::Command::new("sh");
    // The leader ignores SIGTERM and starts a grandchild that does too.
    cmd.arg("-c").arg(format!(
        "trap '' TERM; (trap '' TERM; sleep 300) & echo $! > {}; echo started; sleep 300",
        pidfile.display()
    ));
    let profile = ServerProfile::synapse();
    let err = boot(test_spec(
        &profile,
        cmd,
        crate::server::free_port().unwrap(),
        None,
        Duration::from_millis(800),
        dir.path(),
    ))
    .await
    .err()
    .expect("nothing listens");
    assert!(
        err.to_string().contains("port_open did not happen"),
        "{err}"
    );
    assert!(err.to_string().contains("started"), "{err}");
    let grandchild: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The guard's SIGKILL reaches the grandchild too (it is reparented and reaped by init).
    let mut gone = false;
    for _ in 0..100 {
        let stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat"));
        if stat.map_or(true, |s| s.contains(") Z ")) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "grandchild {grandchild} survived");
}
