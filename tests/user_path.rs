//! What a user meets first: the README's main command exactly as written (repository root,
//! default relative `results/`, the binary `cargo run` starts), and the faults a real run meets:
//! SIGTERM in a load, a boot and a workload; a herd whose every request fails; a full results
//! disk; two runs that need one new fixture. Every one against a real Synapse.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hsbench::result::{RunResult, RunStatus};
use hsbench::run::run;
use hsbench::scenario;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn hsbench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hsbench"))
}

fn read_result(dir: &Path) -> RunResult {
    serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap()
}

/// The one run directory under `out`.
fn only_run_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// Processes whose command line mentions `needle` (a test's private directory).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) {
            found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
        }
    }
    found
}

/// A user's `hsbench` in the background, its stderr read line by line.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Wait (at most `limit`) for a stderr line containing `text`.
    fn wait_for(&mut self, text: &str, limit: Duration) {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(l) => {
                    let hit = l.contains(text);
                    self.seen.push(l);
                    if hit {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!(
            "no line with {text:?} within {limit:?}:\n{}",
            self.seen.join("\n")
        );
    }

    /// Send `signal` and wait for the exit; returns its code and the rest of stderr.
    fn signal_and_wait(mut self, signal: i32, limit: Duration) -> (Option<i32>, String) {
        let sent = Instant::now();
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(l);
                }
                return (status.code(), self.seen.join("\n"));
            }
            assert!(
                sent.elapsed() < limit,
                "no exit within {limit:?} of the signal:\n{}",
                self.seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `cargo run --release -- run scenarios/smoke.toml`, as the README says: from the repository
/// root, with the default `results/` and fixture cache, through the binary `cargo run` starts
/// (the one `default-run` names). Every file the README promises is there, each profiled boot
/// phase has its flamegraph, and report.html has a section with plots for every workload.
#[test]
fn the_readme_main_job_as_written() {
    // `cargo run` must know which binary to start (two [[bin]] targets need `default-run`).
    let cargo_toml = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(cargo_toml.contains("default-run = \"hsbench\""));
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains("cargo run --release -- run scenarios/smoke.toml"));

    let out = hsbench()
        .current_dir(root())
        .args(["run", "scenarios/smoke.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let dir = PathBuf::from(
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("results: "))
            .expect("the run names its directory"),
    );
    // Under the relative default `results/` of the working directory.
    assert!(dir.starts_with(root().join("results")), "{}", dir.display());
    assert!(!stderr.contains("no flamegraphs"), "{stderr}");
    let r = read_result(&dir);
    assert_eq!(r.status, RunStatus::Complete);
    assert!(r.thresholds.iter().all(|t| t.passed), "{:?}", r.thresholds);

    // The files results/README.md lists for such a run.
    for f in [
        "result.json",
        "summary.md",
        "report.html",
        "bmf.json",
        "github-action-benchmark.json",
        "herd-sync.hgrm",
        "herd-sync.hist",
        "herd-sync-raw.hgrm",
        "herd-sync-raw.hist",
        "herd-sync.hlog",
        "triggered.hlog",
        "triggered-delivery.hist",
        "triggered-resync.hist",
        "triggered-resyncs.csv",
        "workload.log",
        "boot-1.log",
        "boot-1-waterfall.svg",
        "boot-1.resources.csv",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
    // The loading boot's log, when this run built the fixture (a fresh machine's first run).
    let fixture = r.dataset.as_ref().unwrap().fixture.as_ref().unwrap();
    assert_eq!(dir.join("seed.log").is_file(), !fixture.reused);
    // A flamegraph per profiled phase (those longer than two sample intervals), the boot's,
    // and each workload's.
    let p = r.profile.as_ref().expect("smoke profiles");
    assert!(p.unavailable.is_none(), "{:?}", p.unavailable);
    let boot = &p.boots[0];
    let mut drawn = 0;
    for f in &boot.flamegraphs {
        if let Some(svg) = &f.svg {
            let body = std::fs::read_to_string(dir.join(svg)).unwrap();
            assert!(body.contains("<svg"), "{svg}");
            drawn += 1;
        }
    }
    assert!(drawn >= 4, "{:?}", boot.flamegraphs);
    for w in ["herd", "triggered"] {
        assert!(dir.join(format!("profile/load.{w}.svg")).is_file(), "{w}");
    }
    // Every SVG is XML a browser opens: no control character but tab, LF and CR (a frame that
    // py-spy --nonblocking read torn once put a NUL in load.triggered.svg).
    for d in [dir.clone(), dir.join("profile")] {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "svg") {
                let body = std::fs::read_to_string(e.path()).unwrap();
                let bad = body
                    .chars()
                    .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'));
                assert!(bad.is_none(), "{}: {bad:?}", e.path().display());
            }
        }
    }

    // report.html: a section with plots for each workload, seen in a real browser.
    let shot = dir.join("report.png");
    let page = browser::load(&dir, "report.html", &shot);
    for id in [
        "id=\"herd\"",
        "id=\"percentiles\"",
        "id=\"latency-over-time\"",
        "id=\"triggered\"",
        "id=\"triggered-over-time\"",
        "id=\"triggered-reaction\"",
        "id=\"triggered-endpoints\"",
    ] {
        assert!(page.dom.contains(id), "{id} missing from report.html");
    }
    for mark in ["trigger sent", "first seen"] {
        assert!(
            page.dom.contains(&format!("data-label=\"{mark}\"")),
            "{mark}"
        );
    }
    // Whether the server recovered within the observation is the server's (and this machine's)
    // doing, not hsbench's: the page must say which, and mark the moment when it did.
    let rec = &r
        .triggered
        .as_ref()
        .expect("smoke triggers a herd")
        .recovery;
    match rec.time_to_recover_s {
        Some(_) => assert!(page.dom.contains("data-label=\"recovered\"")),
        None => {
            assert!(!page.dom.contains("data-label=\"recovered\""));
            assert!(page.dom.contains("not recovered within"), "{rec:?}");
        }
    }
    assert!(
        page.dom.contains("class=\"band\""),
        "the baseline band is drawn"
    );
    // Self-contained: the page fetched nothing but itself.
    assert!(
        page.requests
            .iter()
            .all(|r| r.starts_with("/report.html") || r == "/favicon.ico"),
        "{:?}",
        page.requests
    );
    assert!(std::fs::metadata(&page.screenshot).unwrap().len() > 20_000);
    browser::assert_detects_console_errors();
    let errors: Vec<&String> = page
        .console
        .iter()
        .filter(|l| l.to_lowercase().contains("error"))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// SIGTERM ends `seed` in its load, `run` in a timed boot and `run` in a workload: exit 143,
/// result.json `interrupted` with what was measured so far, no server left, no work directory
/// left.
#[test]
fn sigterm_ends_a_load_a_boot_and_a_workload_cleanly() {
    let scenario = root().join("tests/scenarios/tiny-signal.toml");
    let check = |tmp: &Path, out: &Path| -> RunResult {
        let left: Vec<_> = std::fs::read_dir(tmp).unwrap().flatten().collect();
        assert!(left.is_empty(), "work directories left: {left:?}");
        let procs = processes_mentioning(&tmp.display().to_string());
        assert!(procs.is_empty(), "processes left: {procs:?}");
        let r = read_result(&only_run_dir(out));
        assert_eq!(r.status, RunStatus::Interrupted, "{:?}", r.error);
        assert!(
            r.error.as_deref().unwrap().contains("SIGTERM"),
            "{:?}",
            r.error
        );
        r
    };
    let start = |sub: &str, tmp: &Path, out: &Path, fixtures: &Path| {
        Running::start(
            hsbench()
                .arg(sub)
                .arg(&scenario)
                .arg("--out")
                .arg(out)
                .arg("--fixtures-dir")
                .arg(fixtures)
                .env("TMPDIR", tmp),
        )
    };

    // 1. `hsbench seed`, in the middle of loading: the load's finished steps are kept.
    let (tmp, out, fixtures) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let mut seed = start("seed", tmp.path(), out.path(), fixtures.path());
    seed.wait_for("==>   register:", Duration::from_secs(300));
    let (code, err) = seed.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert_eq!(code, Some(143), "{err}");
    assert!(err.contains("SIGTERM"), "{err}");
    let r = check(tmp.path(), out.path());
    let load = r
        .dataset
        .as_ref()
        .unwrap()
        .load
        .as_ref()
        .expect("load report");
    assert!(load.partial, "{load:?}");
    assert_eq!(load.steps[0].name, "register", "{load:?}");
    assert_eq!(load.steps[0].count, 60);
    assert!(
        hsbench::dataset::fixture::FixtureStore::new(fixtures.path())
            .list()
            .is_empty(),
        "an interrupted build leaves no fixture"
    );

    // 2. `hsbench run`, in a timed boot (the fixture is built first and kept).
    let (tmp, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let fixtures = tempfile::tempdir().unwrap();
    let mut boot = start("run", tmp.path(), out.path(), fixtures.path());
    boot.wait_for("==> boot-1", Duration::from_secs(300));
    std::thread::sleep(Duration::from_millis(500));
    let (code, err) = boot.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert_eq!(code, Some(143), "{err}");
    let r = check(tmp.path(), out.path());
    assert!(r.herd.is_none() && r.triggered.is_none());
    assert_eq!(
        hsbench::dataset::fixture::FixtureStore::new(fixtures.path())
            .list()
            .len(),
        1
    );

    // 3. `hsbench run`, in the triggered herd's baseline: the herd before it is complete, the
    //    triggered herd keeps what it measured, marked partial, with its files.
    let (tmp, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut load = start("run", tmp.path(), out.path(), fixtures.path());
    load.wait_for("==> triggered herd:", Duration::from_secs(300));
    std::thread::sleep(Duration::from_secs(6));
    let (code, err) = load.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert_eq!(code, Some(143), "{err}");
    let r = check(tmp.path(), out.path());
    let h = r.herd.as_ref().unwrap();
    assert!(!h.partial && h.ok == 20, "{h:?}");
    let t = r.triggered.as_ref().expect("the partial triggered herd");
    assert!(t.partial, "{t:?}");
    assert!(t.trigger_error.is_none() && t.reacted_ok == 0, "{t:?}");
    assert!(t.deliveries.delivered > 0, "{:?}", t.deliveries);
    let dir = only_run_dir(out.path());
    assert!(dir.join("triggered.hlog").is_file());
    assert!(dir.join("triggered-delivery.hist").is_file());
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(md.contains("partial: interrupted by a signal"), "{md}");
    // The workload boot was stopped: its record is there.
    assert!(r.workload_boot.is_some());
}

/// What `kill -9` of hsbench leaves (no handler runs): the next command finds it. SIGKILL in
/// a dataset load, a timed boot and a workload; each next run removes the work directory the
/// killed one left (saying so), `hsbench clean` the last; every killed result reads `killed`
/// with the stage it reached, for `report` and `compare` too. Then a fixture truncated after
/// saving is named as damaged before any boot, and rebuilt on request.
#[test]
fn sigkill_leaves_nothing_a_later_run_does_not_find() {
    let scenario = root().join("tests/scenarios/tiny-signal.toml");
    let (tmp, fixtures) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let outs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let start = |sub: &str, out: &Path| {
        Running::start(
            hsbench()
                .arg(sub)
                .arg(&scenario)
                .arg("--out")
                .arg(out)
                .arg("--fixtures-dir")
                .arg(fixtures.path())
                .env("TMPDIR", tmp.path()),
        )
    };
    // SIGKILL, reaped as a shell or a CI runner reaps it; the server dies with it
    // (PR_SET_PDEATHSIG). Returns the work directory it left and the stderr seen.
    let kill = |mut r: Running| -> (PathBuf, String) {
        r.child.kill().unwrap();
        r.child.wait().unwrap();
        let end = Instant::now() + Duration::from_secs(30);
        while !processes_mentioning(&tmp.path().display().to_string()).is_empty() {
            assert!(
                Instant::now() < end,
                "a server outlived its hsbench by 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let left: Vec<PathBuf> = std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(left.len(), 1, "one work directory left: {left:?}");
        let dir = left[0].clone();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "a work directory holds access tokens");
        let owner = hsbench::util::owner::Owner::of(&dir).expect("stamped");
        assert_eq!(owner.pid, r.child.id());
        (dir, r.seen.join("\n"))
    };
    let killed = |out: &Path, stage: &str| {
        let r = hsbench::result::read::read_result(&only_run_dir(out).join("result.json")).unwrap();
        assert_eq!(r.status, RunStatus::Killed, "{r:?}");
        let e = r.error.unwrap();
        assert!(e.contains("killed") && e.contains(stage), "{e}");
    };

    // 1. `seed`, in the dataset load.
    let mut seed = start("seed", outs[0].path());
    seed.wait_for("==>   register:", Duration::from_secs(300));
    let (left1, _) = kill(seed);
    killed(outs[0].path(), "during the dataset");

    // 2. `run`, in a timed boot: it starts by removing what the seed left.
    let mut boot = start("run", outs[1].path());
    boot.wait_for("==> boot-1", Duration::from_secs(300));
    std::thread::sleep(Duration::from_millis(500));
    let (left2, err) = kill(boot);
    assert!(
        err.contains(&format!("removed {}", left1.display()))
            && err.contains("left by a killed run"),
        "{err}"
    );
    assert!(!left1.exists());
    killed(outs[1].path(), "the timed boots");

    // 3. `run`, in a workload (the herd done, the triggered herd under way).
    let mut load = start("run", outs[2].path());
    load.wait_for("==> triggered herd:", Duration::from_secs(300));
    let (left3, err) = kill(load);
    assert!(
        err.contains(&format!("removed {}", left2.display())),
        "{err}"
    );
    killed(outs[2].path(), "the workloads (herd finished)");

    // `fixtures list` shows what is left, `clean` removes it, naming it.
    let list = hsbench()
        .args(["fixtures", "list", "--fixtures-dir"])
        .arg(fixtures.path())
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("left by killed runs") && text.contains(&left3.display().to_string()),
        "{text}"
    );
    let clean = hsbench()
        .args(["clean", "--fixtures-dir"])
        .arg(fixtures.path())
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&clean.stdout);
    assert!(
        clean.status.success() && text.contains(&format!("removed {}", left3.display())),
        "{text}"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);

    // The killed runs read as killed, never as running, and are never pooled.
    let report = hsbench()
        .arg("report")
        .arg(only_run_dir(outs[2].path()))
        .output()
        .unwrap();
    let md = std::fs::read_to_string(only_run_dir(outs[2].path()).join("summary.md")).unwrap();
    assert!(report.status.success() && md.contains("**killed**"), "{md}");
    let compare = hsbench()
        .arg("compare")
        .arg(only_run_dir(outs[1].path()))
        .arg(only_run_dir(outs[2].path()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&compare.stderr);
    assert!(
        !compare.status.success() && text.contains("killed"),
        "{text}"
    );

    // A fixture truncated after it was saved (a full disk, a killed copy): named before any
    // boot, with the fix; rebuilt on request.
    let store = hsbench::dataset::fixture::FixtureStore::new(fixtures.path());
    let fx = store.list().pop().expect("the fixture run 2 built");
    let db = fx.data_dir().join("homeserver.db");
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let verify = hsbench()
        .args(["fixtures", "verify", "--fixtures-dir"])
        .arg(fixtures.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.code() == Some(1) && text.contains("DAMAGED"),
        "{text}"
    );
    let out = tempfile::tempdir().unwrap();
    let damaged = hsbench()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(out.path())
        .arg("--fixtures-dir")
        .arg(fixtures.path())
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&damaged.stderr);
    assert!(!damaged.status.success(), "{text}");
    assert!(
        text.contains(&format!("fixture {} is damaged", fx.manifest.key))
            && text.contains("synapse-data/homeserver.db")
            && text.contains("--rebuild-fixture"),
        "{text}"
    );
    let r = read_result(&only_run_dir(out.path()));
    assert_eq!(r.status, RunStatus::Failed);
    assert!(r.boots.is_empty(), "no boot over a damaged fixture");
    let rebuild = hsbench()
        .arg("seed")
        .arg(&scenario)
        .arg("--rebuild-fixture")
        .arg("--out")
        .arg(tempfile::tempdir().unwrap().path())
        .arg("--fixtures-dir")
        .arg(fixtures.path())
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert!(
        rebuild.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuild.stderr)
    );
    store
        .get(&fx.manifest.key)
        .expect("rebuilt")
        .verify()
        .unwrap();
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

/// Every request of a herd times out: the run completes and records that, its latency figures
/// are of answered requests only (none, so none are reported), and the default error gate fails
/// the run: exit 1, the reason first on stderr and in summary.md.
#[test]
fn a_herd_whose_every_request_times_out_fails_the_run() {
    let out = tempfile::tempdir().unwrap();
    let fixtures = tempfile::tempdir().unwrap();
    let o = hsbench()
        .arg("run")
        .arg(root().join("tests/scenarios/tiny-timeouts.toml"))
        .arg("--out")
        .arg(out.path())
        .arg("--fixtures-dir")
        .arg(fixtures.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("FAILED: herd.errors 100.0% (20 of 20 requests failed (timeout × 20))"),
        "{stderr}"
    );
    let dir = only_run_dir(out.path());
    let r = read_result(&dir);
    assert_eq!(r.status, RunStatus::Complete);
    let h = r.herd.as_ref().unwrap();
    assert_eq!((h.ok, h.errors["timeout"]), (0, 20), "{h:?}");
    // No answered request, no latency: the histograms and percentiles are empty.
    assert_eq!((h.corrected.count, h.raw.count), (0, 0));
    assert_eq!(
        hsbench::metrics::read_histogram(&dir.join("herd-sync.hist"))
            .unwrap()
            .len(),
        0
    );
    let gate = r
        .thresholds
        .iter()
        .find(|t| t.metric == "herd.errors")
        .unwrap();
    assert!(!gate.passed && gate.value == Some(100.0), "{gate:?}");
    let figs = hsbench::analysis::figures::figures(&r);
    assert!(
        !figs.iter().any(|f| f.metric.starts_with("herd.sync.")),
        "no latency figure without an answered request"
    );
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    let first_lines: String = md.lines().take(4).collect::<Vec<_>>().join("\n");
    assert!(
        first_lines.contains("> **FAILED** herd.errors 100.0%"),
        "{md}"
    );
    assert!(
        md.contains("| corrected (from intended start) | — |"),
        "{md}"
    );
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("<div class=\"alert fail\">FAILED: herd.errors"),
        "the page says it first"
    );
}

/// A tmpfs mount of `size`, unmounted when dropped.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "mounting a tmpfs needs root (CI runs as root): {ok}"
        );
        Self(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// The results disk fills up during the run: exit 5, the error names the file, no temporary
/// file is left, and result.json does not say `running`.
#[test]
fn a_full_results_disk_is_a_clear_error_with_a_truthful_status() {
    let disk = SmallDisk::mount("400k");
    let fixtures = tempfile::tempdir().unwrap();
    let o = hsbench()
        .arg("run")
        .arg(root().join("tests/scenarios/tiny-timeouts.toml"))
        .arg("--out")
        .arg(disk.0.path())
        .arg("--fixtures-dir")
        .arg(fixtures.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{stderr}");
    let dir = only_run_dir(disk.0.path());
    assert!(
        stderr.contains(&format!("cannot write results: {}/", dir.display()))
            && stderr.contains("No space left on device"),
        "{stderr}"
    );
    let tmp: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "tmp"))
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap();
    assert_eq!(json["status"], "failed", "{json}");
    assert!(
        json["error"].as_str().unwrap().contains("No space left"),
        "{json}"
    );
}

/// Two runs that need the same new fixture: one builds it, the other waits for it and restores
/// it (one build, not two racing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_needing_one_new_fixture_build_it_once() {
    let sandbox = common::Sandbox::new();
    let mut sc = scenario::load(&root().join("tests/scenarios/tiny-timeouts.toml")).expect("valid");
    sc.workloads.clear();
    let opts = |id: &str| hsbench::run::RunOptions {
        run_id: Some(id.into()),
        verify: false,
        ..sandbox.opts.clone()
    };
    let (a, b) = (opts("a"), opts("b"));
    let (ra, rb) = tokio::join!(run(&sc, &a), run(&sc, &b));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let reused: Vec<bool> = [&ra, &rb]
        .iter()
        .map(|o| {
            o.result
                .dataset
                .as_ref()
                .unwrap()
                .fixture
                .as_ref()
                .unwrap()
                .reused
        })
        .collect();
    assert!(
        reused.contains(&true) && reused.contains(&false),
        "one run built the fixture, the other restored it: {reused:?}"
    );
    assert_eq!(sandbox.opts.fixtures.list().len(), 1);
    // The waiting run did not load anything itself.
    let waiter = if reused[0] { &ra } else { &rb };
    assert!(waiter.result.seed_boot.is_none());
}
