//! A real run against a real Synapse (installed from PyPI into hsbench's cache on first use):
//! the tiny scenario end to end, in-process through the library, with the numbers checked.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::path::Path;

use hsbench::dataset::plan::DatasetPlan;
use hsbench::result::{RunResult, RunStatus};
use hsbench::run::run;
use hsbench::scenario;

/// Milestones are read on hsbench's clock and markers from Synapse's millisecond stamps: allow
/// the stamps' truncation when comparing across the two.
const CLOCKS_MS: f64 = 5.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_scenario_against_real_synapse() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sc = scenario::load(&manifest.join("tests/scenarios/tiny.toml")).expect("valid scenario");
    let sandbox = common::Sandbox::new();
    let opts = &sandbox.opts;
    let outcome = run(&sc, opts)
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    let r = &outcome.result;

    // The dataset was built by this run, snapshotted, and checked through the API: exact.
    let fx = r.dataset.as_ref().unwrap().fixture.as_ref().unwrap();
    assert!(!fx.reused);
    assert!(fx.size_bytes > 100_000);
    // The database holds exactly the plan: users, devices, rooms, memberships, receipts.
    let t = DatasetPlan::new(sc.dataset.clone()).totals();
    assert_eq!(r.dataset.as_ref().unwrap().totals, t);
    assert!(
        t.dm_rooms == 3 && t.state_events == 20 && t.private_rooms > 0,
        "{t:?}"
    );
    let rows = |table: &str| fx.table_counts[table].unwrap();
    assert_eq!(rows("users"), t.users);
    assert_eq!(rows("devices"), t.users + t.extra_devices);
    assert_eq!(rows("rooms"), t.rooms);
    assert_eq!(rows("local_current_membership"), t.memberships);
    assert_eq!(rows("receipts_linearized"), t.receipts);
    let v = r.dataset.as_ref().unwrap().verify.as_ref().unwrap();
    assert!(v.mismatches.is_empty(), "{:?}", v.mismatches);
    assert_eq!((v.users_checked, v.rooms_checked), (8, 8));
    assert!(v.checks >= 8 + 8 * 4 + 8, "{v:?}");
    assert_eq!(r.status, RunStatus::Complete);
    assert_eq!(r.schema_version, 1);

    // The dataset was loaded, every step counted.
    let d = r.dataset.as_ref().unwrap();
    let load = d.load.as_ref().unwrap();
    let count = |name: &str| load.steps.iter().find(|s| s.name == name).unwrap().count;
    assert_eq!(count("register"), 40);
    assert!(d.totals.avatars > 0);
    assert_eq!(count("avatars"), d.totals.avatars);
    assert_eq!(count("rooms"), d.totals.rooms);
    assert_eq!(count("joins"), d.totals.memberships - d.totals.rooms);
    assert_eq!(count("timeline"), d.totals.timeline_events);
    assert_eq!(count("receipts"), d.totals.receipts);
    assert!(
        load.method.contains("application service"),
        "{}",
        load.method
    );
    assert!(load.steps.iter().all(|s| s.rate_per_s > 0.0));

    // Boots: every phase of the profile measured, markers in order, milestones monotonic.
    // One warm-up, then two cold and two warm boots, interleaved.
    let labels: Vec<&str> = r.boots.iter().map(|b| b.label.as_str()).collect();
    assert_eq!(labels, ["warmup-1", "cold-1", "boot-1", "cold-2", "boot-2"]);
    for b in &r.boots {
        assert_eq!(b.cold, b.label.starts_with("cold"));
        assert_eq!(b.warmup, b.label.starts_with("warmup"));
        assert_eq!(b.eviction.is_some(), b.cold);
        if let Some(e) = &b.eviction {
            // The data directory, the venv and the interpreter's library: thousands of files.
            assert!(e.files > 1000 && e.bytes > 10 << 20, "{e:?}");
            assert!(e.roots.iter().any(|r| r.ends_with("venv")), "{e:?}");
        }
    }
    let cold = r.cold_boot_summary.as_ref().unwrap();
    assert_eq!(cold.boots, 2);
    let profile = hsbench::server::ServerProfile::synapse();
    for b in &r.boots {
        assert!(
            b.phases.iter().all(|p| p.duration_ms.is_some()),
            "{}: missing phases {:?}",
            b.label,
            b.phases
                .iter()
                .filter(|p| p.duration_ms.is_none())
                .collect::<Vec<_>>()
        );
        assert!(
            b.phases.iter().all(|p| p.duration_ms.unwrap() >= 0.0),
            "{b:?}"
        );
        let markers: Vec<f64> = profile
            .markers
            .iter()
            .filter_map(|m| b.points.get(&m.name).copied())
            .collect();
        // All but possibly the last marker (background updates may start after shutdown began).
        assert!(
            markers.len() + 1 >= profile.markers.len(),
            "{:?}",
            b.missing_markers
        );
        assert!(markers.windows(2).all(|w| w[0] <= w[1]), "{markers:?}");
        let p = |n: &str| b.points[n];
        assert!(p("spawn") == 0.0 && p("spawn") < p("first_log_line"));
        assert!(p("port_open") <= p("versions_200") && p("versions_200") <= p("sync_200"));
        assert!(p("starting_server") > 0.0);
        // Synapse binds the port, then logs `listening` in the same start-up code, before its
        // reactor answers a request: the line may follow the port's opening by any time a
        // loaded machine takes, but never the first answer.
        assert!(
            p("listening") <= p("versions_200") + CLOCKS_MS,
            "{:?}",
            b.points
        );
        assert!((b.time_to_ready_ms - p("sync_200")).abs() < 1.0);
        // Import/config is where a Python server spends its first second: a real, positive time.
        assert!(b.phases[0].duration_ms.unwrap() > 50.0, "{:?}", b.phases[0]);
        assert!(!b.shutdown_hung && b.shutdown_ms.unwrap() > 0.0);
        assert!(b.exit_status.is_some());
        assert!(
            b.resources_total.peak_rss_bytes > 20 << 20,
            "{:?}",
            b.resources_total
        );
        assert!(b.resources_to_ready.cpu_user_s > 0.0);
        assert!(b.log_lines > 10);
        assert!(outcome.run_dir.join(&b.log_file).is_file());
        // SQLite: Synapse alone, plus at most a short-lived helper it runs during imports
        // (seen ~400 ms after spawn); the PostgreSQL test sees the database's processes.
        assert!(
            (1..=2).contains(&b.resources_total.peak_processes),
            "{:?}",
            b.resources_total
        );
        // Each timed boot has its waterfall; import_config burns CPU.
        let svg =
            std::fs::read_to_string(outcome.run_dir.join(format!("{}-waterfall.svg", b.label)))
                .unwrap();
        assert_eq!(svg.matches(r#"class="phase""#).count(), b.phases.len());
        let import = b.phases[0].resources.unwrap();
        assert!(
            import.cpu_s > 0.05 && import.peak_rss_bytes > 10 << 20,
            "{import:?}"
        );
    }
    let pr = &r.boot_summary.as_ref().unwrap().phase_resources;
    assert_eq!(pr.len(), profile.phases.len());
    assert!(pr[0].cpu_s.unwrap().median > 0.0);
    let summary = r.boot_summary.as_ref().unwrap();
    assert_eq!(summary.boots, 2);
    let ttr = summary.time_to_ready_ms.unwrap();
    assert!(ttr.min <= ttr.median && ttr.median <= ttr.max);

    // Herd: as many samples as clients, no errors, corrected never below raw.
    let h = r.herd.as_ref().unwrap();
    assert_eq!((h.clients, h.ok), (25, 25));
    assert!(h.errors.is_empty(), "{:?}", h.errors);
    assert_eq!(h.corrected.count, 25);
    assert_eq!(h.raw.count, 25);
    assert!(h.corrected.p50_ms >= h.raw.p50_ms && h.corrected.max_ms >= h.raw.max_ms);
    assert!(h.raw.min_ms > 0.0 && h.wall_ms >= h.raw.max_ms * 0.99);
    // Every client is in the 30-member big room: each initial sync carries its state.
    assert!(h.bytes_received > 25 * 10_000, "{}", h.bytes_received);

    // Files: result.json parses into the documented schema and matches; histograms are there.
    let dir = &outcome.run_dir;
    let json = std::fs::read_to_string(dir.join("result.json")).unwrap();
    let back: RunResult = serde_json::from_str(&json).unwrap();
    assert!(back == *r, "result.json does not round-trip into RunResult");
    let hgrm = std::fs::read_to_string(dir.join("herd-sync.hgrm")).unwrap();
    assert!(hgrm.contains("Total count    =           25"), "{hgrm}");
    assert!(dir.join("herd-sync.hist").is_file() && dir.join("herd-sync-raw.hgrm").is_file());
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        md.contains("| db_prepare |") && md.contains("25 ok of 25"),
        "{md}"
    );
    // Background work after ready: Synapse's own marker, in every timed boot.
    for b in r.boots.iter().filter(|b| !b.warmup) {
        let bg = b.background.as_ref().unwrap();
        assert_eq!(bg.source, "marker", "{bg:?}");
        assert_eq!(bg.at_ms, b.points.get("background_done").copied());
        assert!(b.points.contains_key("background_updates_done"));
    }
    assert!(
        md.contains("background work finished (spawn → marker"),
        "{md}"
    );
    // The crash-restart cycle: killed (SIGKILL to the group) with half the writes acknowledged
    // and the rest in flight, then a full recovery boot over the same data.
    assert_eq!(r.crash_restarts.len(), 1);
    let c = &r.crash_restarts[0];
    assert!(
        c.killed
            .exit_status
            .as_deref()
            .unwrap_or("")
            .contains("signal: 9"),
        "{:?}",
        c.killed.exit_status
    );
    assert!(c.killed.shutdown_ms.is_none() && c.killed_after_ms > 0.0);
    assert!(
        c.writes_acked >= 30 && c.writes_acked <= c.writes_sent && c.writes_sent <= 60,
        "{c:?}"
    );
    // Every acknowledged write was read back from the recovered server: none lost.
    assert_eq!(c.writes_checked, Some(c.writes_acked), "{c:?}");
    assert_eq!(c.writes_lost, Some(0), "{c:?}");
    assert!(
        md.contains("acknowledged but lost")
            && md.contains(&format!("| 0 of {} |", c.writes_acked)),
        "{md}"
    );
    assert_eq!(c.recovery.label, "after-crash-1");
    assert!(
        c.recovery.missing_markers.is_empty(),
        "{:?}",
        c.recovery.missing_markers
    );
    assert!(c.recovery.points.contains_key("sync_200") && c.recovery.shutdown_ms.is_some());
    let crash = r.crash_boot_summary.as_ref().unwrap();
    assert_eq!(crash.boots, 1);
    assert!(
        md.contains("### Boot after a crash") && md.contains("| 1 | "),
        "{md}"
    );
    assert!(dir.join("after-crash-1-waterfall.svg").is_file() && dir.join("crash-1.log").is_file());
    // Dashboard exports carry the summary's numbers: Bencher (median within its interval) and
    // github-action-benchmark.
    let bmf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("bmf.json")).unwrap()).unwrap();
    let ttr = &bmf["tiny/time_to_ready"]["milliseconds"];
    let warm = r.boot_summary.as_ref().unwrap().time_to_ready_ms.unwrap();
    assert_eq!(ttr["value"].as_f64().unwrap(), warm.median);
    assert!(ttr["lower_value"].as_f64().unwrap() <= warm.median);
    assert!(ttr["upper_value"].as_f64().unwrap() >= warm.median);
    assert!(bmf["tiny/cold.phase.db_prepare"]["milliseconds"]["value"].is_number());
    assert!(bmf["tiny/crash.time_to_ready"]["milliseconds"]["value"].is_number());
    assert_eq!(
        bmf["tiny/herd.sync.p99"]["milliseconds"]["value"]
            .as_f64()
            .unwrap(),
        h.corrected.p99_ms
    );
    let gab: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("github-action-benchmark.json")).unwrap(),
    )
    .unwrap();
    let entry = gab
        .iter()
        .find(|e| e["name"] == "tiny time_to_ready")
        .unwrap();
    assert_eq!(entry["unit"], "ms");
    assert_eq!(entry["value"].as_f64().unwrap(), warm.median);

    // result.json validates against the published schema (an independent validator:
    // Python's jsonschema from the Synapse virtualenv), and the schema has teeth: a result
    // with a field missing or mistyped does not validate.
    let python = Path::new(&r.server.as_ref().unwrap().install_dir).join("bin/python");
    let schema = manifest.join("schema/result.schema.json");
    let errors = common::schema_errors(&python, &schema, json.as_bytes());
    assert!(
        errors.is_empty(),
        "result.json does not validate: {errors:?}"
    );
    let mut broken: serde_json::Value = serde_json::from_str(&json).unwrap();
    broken.as_object_mut().unwrap().remove("boots");
    broken["boots_extra"] = 1.into();
    broken["herd"]["corrected"]["p99_ms"] = "slow".into();
    let errors = common::schema_errors(&python, &schema, broken.to_string().as_bytes());
    assert!(
        errors
            .iter()
            .any(|e| e.contains("'boots' is a required property"))
            && errors.iter().any(|e| e.starts_with("herd:")),
        "{errors:?}"
    );

    // hsbench measured its own CPU during the herd and says it in the summary.
    let own = h.harness_cpu_s.unwrap();
    assert!(own > 0.0 && h.harness_cpu_share.unwrap() > 0.0, "{h:?}");
    assert!(
        md.contains("hsbench's own CPU during the herd") || md.contains("hsbench itself used"),
        "{md}"
    );

    // The interval log holds every request of the herd, by completion time.
    let hlog = hsbench::metrics::read_interval_log(&dir.join("herd-sync.hlog")).unwrap();
    for tag in ["corrected", "raw"] {
        let n: u64 = hlog.iter().filter(|p| p.tag == tag).map(|p| p.count).sum();
        assert_eq!(n, 25, "{tag} intervals");
    }
    let last = hlog
        .iter()
        .map(|p| p.start_s + p.duration_s)
        .fold(0.0, f64::max);
    assert!(
        last * 1000.0 >= h.wall_ms,
        "{last} s vs wall {} ms",
        h.wall_ms
    );

    // report.html in a real headless Chromium: no console errors, nothing fetched but the
    // page itself, and the plots in the DOM. The screenshot stays in target/tmp.
    browser::assert_detects_console_errors();
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-tiny.png");
    let page = browser::load(dir, "report.html", &shot);
    eprintln!("report.html screenshot: {}", page.screenshot.display());
    assert!(page.console.is_empty(), "console: {:?}", page.console);
    assert!(
        page.requests
            .iter()
            .all(|p| p == "/report.html" || p == "/favicon.ico"),
        "the report fetched more than itself: {:?}",
        page.requests
    );
    let count = |needle: &str| page.dom.matches(needle).count();
    assert_eq!(
        count("class=\"plot waterfall\""),
        r.boots.len(),
        "one waterfall per boot"
    );
    assert!(page.dom.contains("id=\"boxplots\"") && count("class=\"box\"") >= 2 * 8);
    assert!(page.dom.contains("class=\"plot percentiles\""));
    assert!(
        page.dom.contains("data-label=\"corrected\"") && page.dom.contains("data-label=\"raw\"")
    );
    assert!(
        page.dom.contains("id=\"latency-over-time\"")
            && page.dom.contains("data-label=\"release\"")
    );
    assert!(page.dom.contains("id=\"workload-resources\""));
    assert!(page.dom.contains("id=\"fingerprint\"") && page.dom.contains(&r.machine.cpu_model));
    assert!(
        page.dom.contains("✗ failed"),
        "the failing threshold is shown"
    );
    let png = std::fs::metadata(&shot).unwrap().len();
    assert!(png > 20_000, "screenshot of {png} bytes");

    // Thresholds are checked against the run's own figures: the generous ones pass, the 1 ms
    // shutdown fails, and summary.md says so.
    let th = |m: &str| r.thresholds.iter().find(|t| t.metric == m).unwrap();
    assert!(th("time_to_ready").passed && th("herd.sync.p99").passed);
    assert_eq!(th("time_to_ready").value, Some(warm.median));
    let sd = th("shutdown");
    assert!(!sd.passed && sd.value.unwrap() >= 1.0, "{sd:?}");
    assert!(
        md.contains("**1 failed**") && md.contains("❌ failed"),
        "{md}"
    );

    // A second run restores the fixture instead of loading, and the server holds the same data.
    let again = run(&sc, opts)
        .await
        .unwrap_or_else(|e| panic!("second run failed: {e}"));
    let d2 = again.result.dataset.as_ref().unwrap();
    let fx2 = d2.fixture.as_ref().unwrap();
    assert!(fx2.reused && fx2.restore_seconds.is_some());
    assert_eq!(fx2.key, fx.key);
    assert_eq!(fx2.size_bytes, fx.size_bytes);
    assert_eq!(fx2.table_counts, fx.table_counts);
    assert!(
        again.result.seed_boot.is_none(),
        "no loading boot when restoring"
    );
    let v2 = d2.verify.as_ref().unwrap();
    assert!(v2.mismatches.is_empty() && v2.checks == v.checks, "{v2:?}");
    assert_eq!(again.result.herd.as_ref().unwrap().ok, 25);

    // Access tokens never reach results.
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !String::from_utf8_lossy(&text).contains("syt_"),
            "token leaked"
        );
    }
}
