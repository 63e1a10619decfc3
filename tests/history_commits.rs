//! A real series on a dashboard: twelve runs of a real Synapse checkout, seven at a commit and
//! five at the next, which makes a store constructor 300 ms slower (as a PR that adds start-up
//! work would). Each run goes into the history as the user adds it (the binary, the default
//! store); the change point must be found at that commit, `history check` must fail naming the
//! two commits, and the dashboard must show it in Chromium.

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{hsbench_in as hsbench, output_text as text};

use hsbench::result::RunStatus;
use hsbench::run::run;
use hsbench::scenario::{self, DEFAULT_SYNAPSE_VERSION};
use hsbench::server::synapse::SynapseInstall;

#[path = "common/browser.rs"]
mod browser;
mod common;
use common::git;

const MARK: &str = "hsbench-test: a slow receipts store (history)";

/// The release's sdist as a repository of two commits: the release, then a slow
/// `ReceiptsWorkerStore` constructor. At a stable place, so that its virtualenv is reused.
fn repository(python: &Path) -> (PathBuf, String, String) {
    let sdist = common::synapse_sdist_checkout(python);
    let repo = hsbench::util::fs::cache_dir().join("test-synapse-history/repo");
    let _ = std::fs::remove_dir_all(&repo);
    std::fs::create_dir_all(repo.parent().unwrap()).unwrap();
    common::ok(
        Command::new("git")
            .args(["clone", "-q"])
            .arg(&sdist)
            .arg(&repo),
    );
    let head = |repo: &Path| {
        let out = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let good = head(&repo);
    let file = repo.join("synapse/storage/databases/main/receipts.py");
    let t = std::fs::read_to_string(&file).unwrap();
    let slow = format!(
        "        import time as _t\n        logger.info(\"{MARK}\")\n        _t.sleep(0.3)\n"
    );
    std::fs::write(&file, common::in_receipts_store_init(&t, &slow)).unwrap();
    git(&repo, &["commit", "-qam", "receipts: a slow constructor"]);
    let bad = head(&repo);
    (repo, good, bad)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_adds_start_up_work_is_found_in_the_series() {
    let release = tokio::task::spawn_blocking(|| SynapseInstall::ensure(DEFAULT_SYNAPSE_VERSION))
        .await
        .unwrap()
        .unwrap();
    let (repo, good, bad) = repository(&release.python);
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("history-commits.toml");
    let toml = format!(
        r#"
schema = 1
name = "tiny-history-commits"
[dataset]
seed = 13
users = 10
rooms = 2
big_room_members = 6
messages_per_room = 2
[server]
source = "{}"
[boot]
repeats = 1
warmup = 0
timeout = "180s"
"#,
        repo.display()
    );
    std::fs::write(&path, &toml).unwrap();
    let sc = scenario::parse(&path, &toml).unwrap();
    let sandbox = common::Sandbox::new();
    let opts = hsbench::run::RunOptions {
        verify: false,
        boots_only: true,
        ..sandbox.opts.clone()
    };
    let user = tempfile::tempdir().unwrap();
    for (commit, runs) in [(&good, 7), (&bad, 5)] {
        git(&repo, &["checkout", "-q", commit]);
        for _ in 0..runs {
            let out = run(&sc, &opts)
                .await
                .unwrap_or_else(|e| panic!("run failed: {e}"));
            assert_eq!(out.result.status, RunStatus::Complete);
            let source = out.result.server.as_ref().unwrap().source.as_ref().unwrap();
            assert_eq!(source.commit.as_deref(), Some(commit.as_str()));
            let o = hsbench(
                user.path(),
                &["history", "add", out.run_dir.to_str().unwrap()],
            );
            assert!(o.status.success(), "{}", text(&o));
        }
    }
    git(&repo, &["checkout", "-q", &bad]);

    // The check fails on the slow commit, the reason first, naming the two commits.
    let o = hsbench(user.path(), &["history", "check", "--last", "5"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    // The forced step: 300 ms on a phase of milliseconds. Other series may show changes of
    // their own (the machine's speed drifts between runs); this one must be named.
    let between = format!("between {} and {}", &good[..10], &bad[..10]);
    assert!(
        err.lines()
            .any(|l| l.starts_with("REGRESSION phase.stores_start +") && l.contains(&between)),
        "no stores_start regression {between}: {}",
        text(&o)
    );

    let id = err
        .lines()
        .skip_while(|l| !(l.starts_with("REGRESSION phase.stores_start +") && l.contains(&between)))
        .nth(1)
        .and_then(|l| l.split("history bisect ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no bisect line after the regression: {err}"))
        .to_string();
    assert!(id.starts_with("phase.stores_start@"), "{id}");

    // The dashboard shows it.
    let o = hsbench(user.path(), &["history", "report"]);
    assert!(o.status.success(), "{}", text(&o));
    browser::assert_detects_console_errors();
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("history-commits.png");
    let page = browser::load(&user.path().join("results/history"), "report.html", &shot);
    eprintln!("dashboard screenshot: {}", page.screenshot.display());
    assert!(page.console.is_empty(), "{:?}", page.console);
    browser::assert_self_contained(&page, "report.html");
    assert!(
        page.dom.contains("Open regressions: ")
            && page
                .dom
                .contains(&format!("{} → {}", &good[..10], &bad[..10]))
            && page.dom.contains("phase.stores_start@"),
        "{}",
        &page.dom[..page.dom.len().min(3000)]
    );

    // `history bisect` hands the change point's two commits and its metric to `bisect`, which
    // boots both (a range of one commit: the bad side is the step; ABBA pairs need 6 boots a
    // side for p < 0.05) and names the slow commit.
    let fixtures = tempfile::tempdir().unwrap();
    let o = hsbench(
        user.path(),
        &[
            "history",
            "bisect",
            &id,
            path.to_str().unwrap(),
            "--repo",
            repo.to_str().unwrap(),
            "--boots",
            "6",
            "--fixtures-dir",
            fixtures.path().to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "good {good} (last run before), bad {bad} (first run after)"
        )),
        "{}",
        text(&o)
    );
    let dir = std::fs::read_dir(user.path().join("results"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-bisect"))
        .unwrap_or_else(|| panic!("no bisect directory under results/: {}", text(&o)));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("bisect.json")).unwrap()).unwrap();
    assert_eq!(r["metric"], "phase.stores_start", "{r:#}");
    assert_eq!(r["first_bad"].as_str(), Some(bad.as_str()), "{r:#}");
}
