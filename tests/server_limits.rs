//! `[server] cpus`, `memory`, `cpuset` on real Synapse: the server's process tree runs in the
//! cgroups hsbench makes (read back from the kernel), a quota of half a core holds it back
//! (the kernel's throttling counters, and a boot that takes at least twice its CPU time) while
//! the load generator's threads stay off the server's core; the same run at 2 CPUs, through
//! the binary as a user types it, is not held back; a memory limit below what Synapse needs
//! ends in the kernel's OOM kill, a failed run that says so, and no cgroup left behind.

use hsbench::result::{RunResult, RunStatus};
use hsbench::run::run;
use hsbench::scenario;
use hsbench::server::limits::Mechanism;

mod common;
use common::{hsbench_in as hsbench, output_text as text};

fn scenario_text(name: &str, limits: &str, herd: bool) -> String {
    let herd = if herd {
        "[workload.herd]\nclients = 20\nsync = \"initial\"\nrequest_timeout = \"120s\"\n"
    } else {
        ""
    };
    format!(
        r#"
schema = 1
name = "{name}"
[dataset]
seed = 7
users = 30
rooms = 4
big_room_members = 20
messages_per_room = 4
[server]
kind = "synapse"
version = "1.163.2"
database = "sqlite"
{limits}
[boot]
repeats = 2
warmup = 0
timeout = "300s"
{herd}"#
    )
}

/// The cgroups hsbench makes, wherever they are mounted.
fn hsbench_cgroups() -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut out = Vec::new();
    for l in mounts.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() > 2 && (f[2] == "cgroup" || f[2] == "cgroup2") {
            let walk = walkdir(std::path::Path::new(f[1]), 3);
            out.extend(walk.into_iter().filter(|p| p.contains("/hsbench-")));
        }
    }
    out
}

fn walkdir(dir: &std::path::Path, depth: usize) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(e.path().display().to_string());
            if depth > 0 {
                out.extend(walkdir(&e.path(), depth - 1));
            }
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synapse_under_half_a_core_is_throttled_and_the_generator_keeps_its_own_core() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let cores = std::thread::available_parallelism().unwrap().get();
    let work = tempfile::tempdir().unwrap();
    let sandbox = common::Sandbox::new();
    let before = hsbench_cgroups();

    // 1. Half a core and 1 GiB, in-process, with a herd so that the generator works.
    let path = work.path().join("half.toml");
    let text_half = scenario_text("limits-half", "cpus = 0.5\nmemory = \"1GiB\"", true);
    std::fs::write(&path, &text_half).unwrap();
    let sc = scenario::parse(&path, &text_half).unwrap();
    let half = run(&sc, &sandbox.opts)
        .await
        .unwrap_or_else(|e| panic!("run at 0.5 CPU failed: {e}"));
    assert_eq!(half.result.status, RunStatus::Complete);
    let l = half
        .result
        .limits
        .clone()
        .expect("the result records the limits");
    assert_eq!(l.asked.cpus, Some(0.5));
    if !root {
        // No cgroup without root or delegation: the fallback says what it did not limit.
        assert_eq!(l.applied.mechanism, Mechanism::Affinity);
        assert!(
            l.applied.notes.iter().any(|n| n.contains("CPU quota")),
            "{:?}",
            l.applied.notes
        );
        eprintln!("SKIPPED the cgroup checks: not root, limits fell back to CPU affinity");
        return;
    }
    assert!(
        matches!(
            l.applied.mechanism,
            Mechanism::CgroupV1 | Mechanism::CgroupV2
        ),
        "{:?}",
        l.applied
    );
    // Read back from the kernel, not echoed from the scenario.
    assert_eq!(l.applied.cpus, Some(0.5));
    assert_eq!(l.applied.memory_bytes, Some(1 << 30));
    assert_eq!(l.applied.server_cores, vec![cores - 1], "{:?}", l.applied);
    let t = &l.throttling;
    assert!(
        t.throttled_periods > 0 && t.throttled_s > 0.0,
        "half a core must be throttled: {t:?}"
    );
    assert!(t.throttled_periods <= t.periods, "{t:?}");
    assert_eq!(t.oom_kills, 0, "{t:?}");
    assert!(
        t.memory_peak_bytes
            .is_some_and(|p| p > 10 << 20 && p <= 1 << 30),
        "Synapse's peak inside its limit: {t:?}"
    );
    // The quota gives the server 50 ms of CPU per 100 ms: a boot takes at least twice the
    // CPU time it used (less one period's slack at each end).
    for b in &half.result.boots {
        let r = &b.resources_to_ready;
        let cpu_s = r.cpu_user_s + r.cpu_sys_s;
        let wall_s = b.time_to_ready_ms / 1000.0;
        assert!(
            wall_s >= 2.0 * cpu_s * 0.9 - 0.2,
            "{}: {wall_s:.2} s to ready on {cpu_s:.2} s of CPU under a 0.5 CPU quota",
            b.label
        );
    }
    // The generator (hsbench's own threads, the herd's clients among them) stayed off the
    // server's core.
    if cores > 1 {
        assert!(!l.applied.generator_cores.contains(&(cores - 1)));
        let g = l.generator.as_ref().expect("the generator was checked");
        assert!(g.threads > 1, "{g:?}");
        assert_eq!(g.on_server_cores, 0, "{g:?}");
    }
    let herd = half.result.herd.as_ref().expect("the herd ran");
    assert_eq!(herd.ok, 20, "{:?}", herd.errors);
    // The report says it.
    let summary = std::fs::read_to_string(half.run_dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("Server limits: 0.5 CPU, 1.0 GiB, cores")
            && summary.contains("CPU quota ran out in"),
        "{summary}"
    );
    let html = std::fs::read_to_string(half.run_dir.join("report.html")).unwrap();
    assert!(html.contains("server limits") && html.contains("throttling"));

    // 2. Two cores, through the binary from the user's directory (relative `results/`).
    let user = tempfile::tempdir().unwrap();
    std::fs::write(
        user.path().join("two.toml"),
        scenario_text("limits-two", "cpus = 2", false),
    )
    .unwrap();
    let fixtures = sandbox.opts.fixtures.root.display().to_string();
    let o = hsbench(
        user.path(),
        &["run", "two.toml", "--fixtures-dir", &fixtures, "-q"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let dir = common::dir_ending(&user.path().join("results"), "-limits-two");
    let two: RunResult =
        serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap();
    let l2 = two.limits.clone().expect("limits recorded");
    assert_eq!(l2.applied.cpus, Some(2.0));
    // Time to ready, median of each run; the quota forces the first to at least twice its CPU
    // time, which the unthrottled one does not wait for.
    let ready = |r: &RunResult| median(r.boots.iter().map(|b| b.time_to_ready_ms).collect());
    let (h, w) = (ready(&half.result), ready(&two));
    eprintln!(
        "time to ready: {h:.0} ms at 0.5 CPU, {w:.0} ms at 2 CPU ({:.2}x); throttled {} of {} periods at 0.5, {} of {} at 2",
        h / w,
        t.throttled_periods,
        t.periods,
        l2.throttling.throttled_periods,
        l2.throttling.periods
    );
    assert!(h > w, "{h:.0} ms at 0.5 CPU, {w:.0} ms at 2");
    let share = |t: &hsbench::server::limits::Throttling| {
        t.throttled_periods as f64 / t.periods.max(1) as f64
    };
    assert!(
        share(&l2.throttling) < share(t),
        "{:?} vs {t:?}",
        l2.throttling
    );

    // 3. A memory limit below what Synapse needs: the kernel kills it; the run fails and says
    //    why, with the kill counted.
    let path = work.path().join("oom.toml");
    let text_oom = scenario_text("limits-oom", "memory = \"64MiB\"", false);
    std::fs::write(&path, &text_oom).unwrap();
    let sc = scenario::parse(&path, &text_oom).unwrap();
    let Err(err) = run(&sc, &sandbox.opts).await else {
        panic!("Synapse booted in 64 MiB");
    };
    let failed = common::dir_ending(&sandbox.opts.results_dir, "-limits-oom");
    let r: RunResult =
        serde_json::from_slice(&std::fs::read(failed.join("result.json")).unwrap()).unwrap();
    assert_eq!(r.status, RunStatus::Failed, "{err}");
    let t = r.limits.expect("limits recorded").throttling;
    assert!(t.oom_kills >= 1, "{t:?}: {err}");
    assert!(
        err.to_string()
            .starts_with("the kernel's OOM killer killed")
            && r.error
                .as_deref()
                .is_some_and(|e| e.contains("memory limit (64.0 MiB)")),
        "{err}"
    );

    // Nothing left: every cgroup made for these runs is gone.
    let after: Vec<String> = hsbench_cgroups()
        .into_iter()
        .filter(|c| !before.contains(c))
        .collect();
    assert!(after.is_empty(), "cgroups left behind: {after:?}");
}
