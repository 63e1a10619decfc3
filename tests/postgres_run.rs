//! The tiny scenario on a private PostgreSQL cluster that hsbench starts from the system's
//! binaries: built, verified through the API, snapshotted, restored, verified again.

mod common;

use std::path::Path;

use hsbench::result::RunStatus;
use hsbench::run::run;
use hsbench::scenario;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_scenario_on_private_postgres() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sc = scenario::load(&manifest.join("tests/scenarios/tiny-postgres.toml")).unwrap();
    let sandbox = common::Sandbox::new();
    let opts = &sandbox.opts;

    let first = run(&sc, opts)
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    let r = &first.result;
    assert_eq!(r.status, RunStatus::Complete);
    let server = r.server.as_ref().unwrap();
    assert!(
        server.database.starts_with("postgres-"),
        "{}",
        server.database
    );
    assert!(
        server
            .database_detail
            .as_ref()
            .unwrap()
            .contains("private cluster")
    );
    assert_eq!(server.config_overrides["database"]["name"], "psycopg2");
    let d = r.dataset.as_ref().unwrap();
    let fx = d.fixture.as_ref().unwrap();
    assert!(!fx.reused);
    let t = hsbench::dataset::plan::DatasetPlan::new(sc.dataset.clone()).totals();
    assert_eq!(fx.table_counts["users"], Some(t.users));
    assert_eq!(fx.table_counts["devices"], Some(t.users + t.extra_devices));
    assert_eq!(
        fx.table_counts["local_current_membership"],
        Some(t.memberships)
    );
    assert_eq!(fx.table_counts["receipts_linearized"], Some(t.receipts));
    let v = d.verify.as_ref().unwrap();
    assert!(v.mismatches.is_empty(), "{:?}", v.mismatches);
    assert_eq!(r.boots.len(), 2);
    for b in &r.boots {
        assert!(
            b.phases.iter().all(|p| p.duration_ms.is_some()),
            "{:?}",
            b.phases
        );
        assert!(!b.shutdown_hung);
        // PostgreSQL's own view of the boot: every statement from spawn to ready, the
        // slowest first, each within the boot's window.
        let st = b.db_statements.as_ref().expect("the boot's statements");
        assert_eq!(st.threshold_ms, 0.0);
        assert!(
            st.count >= st.slowest.len() as u64 && st.count > 0,
            "{st:?}"
        );
        assert_eq!(st.slowest.len(), st.count.min(10) as usize, "{st:?}");
        assert!(st.slowest.windows(2).all(|w| w[0].ms >= w[1].ms), "{st:?}");
        let top = &st.slowest[0];
        assert!(top.ms > 0.0 && st.total_ms >= top.ms, "{st:?}");
        assert!(!top.statement.is_empty());
        for s in &st.slowest {
            assert!(
                s.ended_at_ms >= -1.0 && s.ended_at_ms <= b.time_to_ready_ms + 1.0,
                "{s:?} {}",
                b.time_to_ready_ms
            );
        }
        statement_subphases_inside_stores_start(b);
    }
    let md = std::fs::read_to_string(first.run_dir.join("summary.md")).unwrap();
    assert!(
        md.contains("PostgreSQL's statement log, spawn to ready"),
        "{md}"
    );
    let html = std::fs::read_to_string(first.run_dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"db-statements\""));
    let h = r.herd.as_ref().unwrap();
    assert_eq!((h.ok, h.corrected.count, h.raw.count), (25, 25, 25));
    // Crash durability on PostgreSQL: SIGKILL with writes in flight, then every acknowledged
    // write read back from the recovered server.
    let c = &r.crash_restarts[0];
    assert!(c.writes_acked > 0, "{c:?}");
    assert_eq!(c.writes_checked, Some(c.writes_acked), "{c:?}");
    assert_eq!(c.writes_lost, Some(0), "{c:?}");
    let gate = r
        .thresholds
        .iter()
        .find(|t| t.metric == "crash.lost_writes")
        .unwrap();
    assert!(gate.passed, "{gate:?}");
    assert!(first.run_dir.join("postgres.log").is_file());

    // Restored from the fixture (Synapse data + PostgreSQL data directory): same rows, exact.
    // Its boots are cold then warm: before a cold boot the cluster is restarted (its shared
    // buffers empty) and its files evicted, and its statement log goes on in the same file.
    let mut cold = sc.clone();
    cold.boot.cache = scenario::CacheMode::Both;
    let second = run(&cold, opts)
        .await
        .unwrap_or_else(|e| panic!("second run failed: {e}"));
    let boots = &second.result.boots;
    assert_eq!(boots.iter().filter(|b| b.cold).count(), 2);
    for b in boots {
        let restarted = b
            .eviction
            .as_ref()
            .is_some_and(|e| e.method.contains("PostgreSQL cluster restarted"));
        assert_eq!(restarted, b.cold, "{:?}", b.eviction);
        assert!(b.db_statements.as_ref().is_some_and(|s| s.count > 0));
        statement_subphases_inside_stores_start(b);
    }
    let d2 = second.result.dataset.as_ref().unwrap();
    let fx2 = d2.fixture.as_ref().unwrap();
    assert!(fx2.reused);
    assert_eq!(fx2.table_counts, fx.table_counts);
    assert!(d2.verify.as_ref().unwrap().mismatches.is_empty());
    assert_eq!(second.result.herd.as_ref().unwrap().ok, 25);
}

/// The cache prefills and the presence pass, cut from PostgreSQL's statement log (every
/// statement is logged here): spans nested in `stores_start`, each inside it.
fn statement_subphases_inside_stores_start(b: &hsbench::boot::BootRecord) {
    let stores = b.phases.iter().find(|p| p.name == "stores_start").unwrap();
    let (from, to) = (stores.start_ms.unwrap(), stores.end_ms.unwrap());
    for want in [
        "prefill: events",
        "prefill: presence_stream",
        "presence_on_startup",
    ] {
        let sp = b
            .subphases
            .iter()
            .find(|s| s.name == want)
            .unwrap_or_else(|| panic!("no {want} in {:#?}", b.subphases));
        assert_eq!(sp.parent.as_deref(), Some("stores_start"));
        let (s, e) = (sp.start_ms.unwrap(), sp.end_ms.unwrap());
        // The database's and the log's stamps are both milliseconds of one clock.
        assert!(
            s >= from - 2.0 && e <= to + 2.0 && s <= e,
            "{sp:?} in {from}..{to}"
        );
        assert!(sp.duration_ms.unwrap() <= e - s + 0.01, "{sp:?}");
    }
}

/// `postgres_url`: Synapse on a database the user runs (here a cluster this test starts);
/// hsbench loads into it, never snapshots it, and leaves the cluster alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_postgres_database() {
    use hsbench::server::postgres::{PgBinaries, PgCluster};
    let root = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let mut pg = PgCluster::new(PgBinaries::find().unwrap(), root.path()).unwrap();
    pg.init().unwrap();
    let port = hsbench::server::free_port().unwrap();
    pg.start(port, &logs.path().join("pg.log")).await.unwrap();
    pg.create_synapse_database().unwrap();

    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = manifest.join("tests/scenarios/tiny-postgres.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "database = \"postgres\"",
            &format!(
                "database = \"postgres\"\npostgres_url = \"postgresql://synapse@127.0.0.1:{port}/synapse\""
            ),
        )
        .replace("slow_statements = \"0s\"\n", "");
    // The statement log is the private cluster's: refused on a user's database, with where.
    let with_log = text.replace("[boot]\n", "[boot]\nslow_statements = \"5ms\"\n");
    let e = scenario::parse(&path, &with_log).unwrap_err();
    assert_eq!(e.field, "boot.slow_statements", "{e}");
    let sc = scenario::parse(&path, &text).unwrap();
    let sandbox = common::Sandbox::new();
    let opts = &sandbox.opts;
    let r = run(&sc, opts)
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"))
        .result;
    assert_eq!(r.status, RunStatus::Complete);
    assert_eq!(r.server.as_ref().unwrap().database, "postgres-external");
    let d = r.dataset.as_ref().unwrap();
    assert!(
        d.fixture.is_none(),
        "an external database is never snapshotted"
    );
    assert!(d.verify.as_ref().unwrap().mismatches.is_empty());
    assert_eq!(std::fs::read_dir(&opts.fixtures.root).unwrap().count(), 0);
    // The user's cluster is still up and holds the dataset.
    let users = pg.psql("synapse", "SELECT COUNT(*) FROM users").unwrap();
    assert_eq!(users.trim(), "40");

    // A direct import into an empty database of the user's cluster: COPY, the API check, and
    // nothing snapshotted.
    pg.psql(
        "postgres",
        "CREATE DATABASE direct ENCODING 'UTF8' LC_COLLATE='C' LC_CTYPE='C' TEMPLATE template0",
    )
    .unwrap();
    let direct = text.replace("[dataset]\n", "[dataset]\nload = \"direct\"\n");
    let into = direct.replace("/synapse\"", "/direct\"");
    let sc = scenario::parse(&path, &into).unwrap();
    let r = run(&sc, opts)
        .await
        .unwrap_or_else(|e| panic!("direct run failed: {e}"))
        .result;
    assert_eq!(r.status, RunStatus::Complete);
    let d = r.dataset.as_ref().unwrap();
    assert!(d.fixture.is_none());
    let load = d.load.as_ref().unwrap();
    assert!(load.method.contains("COPY"), "{}", load.method);
    let events = load.steps.iter().find(|s| s.name == "events").unwrap();
    assert!(events.count > 0, "{load:?}");
    assert!(r.boots.iter().all(|b| b.time_to_ready_ms > 0.0));
    assert_eq!(
        pg.psql("direct", "SELECT COUNT(*) FROM users")
            .unwrap()
            .trim(),
        "40"
    );
    assert_eq!(std::fs::read_dir(&opts.fixtures.root).unwrap().count(), 0);
    // Into the database the API run filled: refused before a row is written, naming it.
    let sc = scenario::parse(&path, &direct).unwrap();
    let e = run(&sc, opts).await.unwrap_err();
    let mut chain = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        chain.push_str(&format!(": {s}"));
        src = s.source();
    }
    assert!(
        chain.contains("already holds 40 users") && chain.contains("/synapse"),
        "{chain}"
    );
    let users = pg.psql("synapse", "SELECT COUNT(*) FROM users").unwrap();
    assert_eq!(users.trim(), "40");
    pg.stop().await;
}

/// Under the work meter on a private cluster, PostgreSQL's share of each boot is counted by
/// the database itself (pg_stat_statements, the server's database only): statements, rows and
/// pages touched per phase and to the marker `work.time_to_ready` ends at, beside Synapse's
/// instructions; they become `work.db.*` metrics in every output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_meter_counts_the_database_share_per_phase() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sc = scenario::load(&manifest.join("tests/scenarios/tiny-postgres-work.toml")).unwrap();
    let sandbox = common::Sandbox::new();
    let out = run(&sc, &sandbox.opts)
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    let r = &out.result;
    assert_eq!(r.status, RunStatus::Complete);
    assert!(r.boots.is_empty(), "meter = \"work\" times no boot");
    assert_eq!(r.work_boots.len(), 3);
    for b in &r.work_boots {
        let w = b.work.as_ref().expect("the boot's work");
        assert_eq!(w.to_ready_marker.as_deref(), Some("listening"), "{w:?}");
        assert!(w.to_ready.is_some_and(|n| n > 1_000_000_000), "{w:?}");
        let db = w.db.as_ref().expect("the database's share");
        let to_ready = db.to_ready.expect("counts at `listening`");
        assert!(to_ready.calls > 100 && to_ready.blocks() > 100, "{db:?}");
        assert!(to_ready.rows > 0, "{db:?}");
        // Counters only grow: to ready holds the marker's, and each phase is inside it.
        assert!(db.at_ready.calls >= to_ready.calls && db.at_ready.blocks() >= to_ready.blocks());
        let phase = |name: &str| {
            db.phases
                .iter()
                .find(|p| p.name == name)
                .and_then(|p| p.counts)
                .unwrap_or_else(|| panic!("phase {name}: {:?}", db.phases))
        };
        // Synapse checks the schema in db_prepare and fills its caches in stores_start: both
        // run statements against the fixture's tables.
        assert!(phase("db_prepare").calls > 0, "{db:?}");
        assert!(phase("stores_start").calls > 0 && phase("stores_start").blocks() > 0);
        let phases: u64 = db
            .phases
            .iter()
            .filter_map(|p| p.counts)
            .map(|c| c.calls)
            .sum();
        assert!(phases <= db.at_ready.calls, "{db:?}");
        assert!(!db.statements.is_empty() && db.statements.len() <= 15);
        for s in &db.statements {
            assert!(!s.statement.is_empty());
            assert!(
                s.counts.calls >= 1 && s.counts.blocks() <= db.at_ready.blocks(),
                "{s:?}"
            );
        }
        assert!(
            db.statements
                .windows(2)
                .all(|p| p[0].counts.blocks() >= p[1].counts.blocks()),
            "{:?}",
            db.statements
        );
        // hsbench's own reads of the counters run in `postgres`, never counted as Synapse's.
        assert!(
            db.statements
                .iter()
                .all(|s| !s.statement.contains("pg_stat_statements")),
            "{:?}",
            db.statements
        );
    }
    let md = std::fs::read_to_string(out.run_dir.join("summary.md")).unwrap();
    assert!(md.contains("| work.db.blocks |"), "{md}");
    assert!(md.contains("| work.db.phase.stores_start |"), "{md}");
    assert!(md.contains("PostgreSQL's share"), "{md}");
    let html = std::fs::read_to_string(out.run_dir.join("report.html")).unwrap();
    assert!(html.contains("PostgreSQL&#39;s share") || html.contains("PostgreSQL's share"));
    let bmf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.run_dir.join("bmf.json")).unwrap())
            .unwrap();
    let blocks = &bmf["tiny-postgres-work/work.db.blocks"]["count"]["value"];
    assert!(blocks.as_f64().is_some_and(|v| v > 100.0), "{bmf}");
    assert!(bmf["tiny-postgres-work/work.time_to_ready"]["instructions"]["value"].is_number());
}
