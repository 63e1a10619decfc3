//! `hsbench history` on real runs: three boots-only runs of real Synapse go into the default
//! SQLite store (the relative `results/history.sqlite`, as a user's first command meets it)
//! and into a PostgreSQL store on a private cluster; both stores give the same series; a run
//! that failed is refused with its file named; `check` passes on a flat series; the dashboard
//! loads in Chromium with nothing fetched and no console error.

use std::path::{Path, PathBuf};

use hsbench::result::RunStatus;
use hsbench::run::run;
use hsbench::scenario;

#[path = "common/browser.rs"]
mod browser;
mod common;
use common::{hsbench_in as hsbench, output_text as text};

const SCENARIO: &str = r#"
schema = 1
name = "tiny-history"
[dataset]
seed = 11
users = 12
rooms = 3
big_room_members = 8
messages_per_room = 3
[boot]
repeats = 1
warmup = 0
timeout = "180s"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_runs_into_sqlite_and_postgres_stores_and_the_dashboard() {
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("history.toml");
    std::fs::write(&path, SCENARIO).unwrap();
    let sc = scenario::parse(&path, SCENARIO).unwrap();
    let sandbox = common::Sandbox::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for _ in 0..3 {
        let out = run(&sc, &sandbox.opts)
            .await
            .unwrap_or_else(|e| panic!("run failed: {e}"));
        assert_eq!(out.result.status, RunStatus::Complete);
        dirs.push(out.run_dir);
    }
    let d: Vec<&str> = dirs.iter().map(|p| p.to_str().unwrap()).collect();

    // The default store, relative to where the user stands.
    let user = tempfile::tempdir().unwrap();
    let o = hsbench(
        user.path(),
        &["history", "add", d[0], d[1], "--commit", "c1"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(user.path().join("results/history.sqlite").is_file());
    assert!(text(&o).contains("2 of 2 runs added"), "{}", text(&o));
    // Idempotent by run id.
    let o = hsbench(
        user.path(),
        &["history", "add", d[1], d[2], "--commit", "c2"],
    );
    assert!(text(&o).contains("1 of 2 runs added"), "{}", text(&o));
    assert!(text(&o).contains("already in the history"), "{}", text(&o));

    // A run that failed never enters the history.
    let failed = work.path().join("failed-run");
    std::fs::create_dir(&failed).unwrap();
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dirs[0].join("result.json")).unwrap())
            .unwrap();
    r["status"] = "failed".into();
    r["run_id"] = "a-failed-run".into();
    std::fs::write(failed.join("result.json"), r.to_string()).unwrap();
    let o = hsbench(user.path(), &["history", "add", failed.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("failed-run/result.json") && text(&o).contains("not complete"),
        "{}",
        text(&o)
    );

    let list = hsbench(user.path(), &["history", "list"]);
    assert!(list.status.success(), "{}", text(&list));
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        listed.contains("time_to_ready (tiny-history, synapse sqlite")
            && listed.contains("· 3 runs"),
        "{listed}"
    );
    // Three runs of one build: nothing to report, and `check` passes.
    assert!(!listed.contains("REGRESSION"), "{listed}");
    let o = hsbench(user.path(), &["history", "check", "--last", "3"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("no regression"), "{}", text(&o));

    // The dashboard: self-contained, in a real browser.
    let o = hsbench(user.path(), &["history", "report"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = user.path().join("results/history");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("history.json")).unwrap()).unwrap();
    assert_eq!(json["schema_version"], 1);
    browser::assert_detects_console_errors();
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("history-dashboard.png");
    let page = browser::load(&out, "report.html", &shot);
    assert!(page.console.is_empty(), "{:?}", page.console);
    eprintln!("dashboard screenshot: {}", page.screenshot.display());
    browser::assert_self_contained(&page, "report.html");
    assert!(
        page.dom.contains("Open regressions: none") && page.dom.contains("time_to_ready"),
        "{}",
        &page.dom[..page.dom.len().min(2000)]
    );
    assert!(page.dom.matches("<svg").count() >= 3);
    // Each run's point links to its report, relative to the dashboard, and the link resolves.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let links: Vec<&str> = html
        .split("<a href=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    assert!(!links.is_empty(), "no link to a run's report");
    for l in &links {
        assert!(l.starts_with("../") && l.ends_with("/report.html"), "{l}");
        assert!(
            out.join(l).is_file(),
            "{l} does not resolve from {}",
            out.display()
        );
    }

    // `import` of the results directory (the runs, and a failed one, which is skipped) gives
    // the same series; a BMF file of a past run goes in beside them.
    let results = &sandbox.opts.results_dir;
    let skipped = results.join("zz-failed-run");
    std::fs::create_dir(&skipped).unwrap();
    std::fs::copy(failed.join("result.json"), skipped.join("result.json")).unwrap();
    let imported = ["history", "--db", "imported.sqlite"];
    let o = hsbench(
        user.path(),
        &[&imported[..], &["import", results.to_str().unwrap()]].concat(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(
            "3 runs added, 0 already there, 1 not complete (skipped) from 4 run directories"
        ),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("zz-failed-run/result.json"),
        "{}",
        text(&o)
    );
    let o = hsbench(user.path(), &[&imported[..], &["list"]].concat());
    assert_eq!(String::from_utf8_lossy(&o.stdout), listed);
    let past = work.path().join("past");
    std::fs::create_dir_all(past.join("20260101T000000Z-tiny-history")).unwrap();
    std::fs::copy(
        dirs[0].join("bmf.json"),
        past.join("20260101T000000Z-tiny-history/bmf.json"),
    )
    .unwrap();
    let o = hsbench(
        user.path(),
        &[&imported[..], &["import", past.to_str().unwrap()]].concat(),
    );
    assert!(
        text(&o).contains("1 runs added, 0 already there, 0 not complete (skipped) from 0 run directories and 1 BMF files"),
        "{}",
        text(&o)
    );
    let o = hsbench(user.path(), &[&imported[..], &["list"]].concat());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(
            "time_to_ready (tiny-history, unknown unknown, unknown machine (BMF)) · 1 runs"
        ),
        "{}",
        text(&o)
    );

    // The same runs in a PostgreSQL store give the same series.
    use hsbench::server::postgres::{PgBinaries, PgCluster};
    let root = tempfile::tempdir().unwrap();
    let mut pg = PgCluster::new(PgBinaries::find().unwrap(), root.path()).unwrap();
    pg.init().unwrap();
    let port = hsbench::server::free_port().unwrap();
    pg.start(port, &work.path().join("pg.log")).await.unwrap();
    pg.create_synapse_database().unwrap();
    let url = format!("postgresql://synapse@127.0.0.1:{port}/synapse");
    let owned: Vec<String> = d.iter().map(|s| s.to_string()).collect();
    let pg_list = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let add = |dirs: &[&str], commit: &str| {
            let mut args = vec!["history", "--db", url.as_str(), "add"];
            args.extend_from_slice(dirs);
            args.extend_from_slice(&["--commit", commit]);
            hsbench(dir.path(), &args)
        };
        let d: Vec<&str> = owned.iter().map(String::as_str).collect();
        let o = add(&d[..2], "c1");
        assert!(o.status.success(), "{}", text(&o));
        let o = add(&d[1..], "c2");
        assert!(text(&o).contains("1 of 2 runs added"), "{}", text(&o));
        hsbench(dir.path(), &["history", "--db", url.as_str(), "list"])
    })
    .await
    .unwrap();
    pg.stop().await;
    assert!(pg_list.status.success(), "{}", text(&pg_list));
    assert_eq!(String::from_utf8_lossy(&pg_list.stdout), listed);
}
