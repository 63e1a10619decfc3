//! A sizing sweep over hardware on real Synapse, through the binary from the user's directory
//! (relative `results/`): `[sweep] dimension = "cpus"` runs the same dataset (one fixture) at
//! 0.5, 1 and 2 CPUs, each point under its quota (read back from the kernel); the fits come
//! over cores, and `hsbench size --cpus` answers from them while `--users` is refused.

mod common;
use common::{hsbench_in as hsbench, output_text as text};

use hsbench::analysis::sweep::SweepResult;
use hsbench::result::{RunResult, RunStatus};
use hsbench::scenario::SweepDimension;

const SCENARIO: &str = r#"
schema = 1
name = "tiny-cpus"
[dataset]
seed = 12
users = 20
rooms = 3
big_room_members = 10
messages_per_room = 3
[server]
kind = "synapse"
version = "1.163.2"
[boot]
repeats = 2
timeout = "300s"
[sweep]
dimension = "cpus"
values = [0.5, 1, 2]
"#;

#[test]
fn a_sweep_over_cpus_runs_each_point_under_its_quota() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let user = tempfile::tempdir().unwrap();
    let sandbox = common::Sandbox::new();
    std::fs::write(user.path().join("cpus.toml"), SCENARIO).unwrap();
    let fx = sandbox.opts.fixtures.root.display().to_string();
    let o = hsbench(
        user.path(),
        &["run", "cpus.toml", "--fixtures-dir", &fx, "-q"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let dir = common::dir_ending(&user.path().join("results"), "-sweep");
    let r: SweepResult =
        serde_json::from_slice(&std::fs::read(dir.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(r.status, RunStatus::Complete);
    assert_eq!(r.dimension, SweepDimension::Cpus);
    assert_eq!(r.values, vec![0.5, 1.0, 2.0]);
    let mut fixture_keys = Vec::new();
    let mut ready = Vec::new();
    for p in &r.points {
        assert_eq!(p.status, RunStatus::Complete, "{p:?}");
        let run: RunResult = serde_json::from_slice(
            &std::fs::read(dir.join(&p.run_dir).join("result.json")).unwrap(),
        )
        .unwrap();
        let l = run.limits.expect("each point records its limits");
        assert_eq!(l.asked.cpus, Some(p.value));
        if root {
            // The quota the kernel holds, not the one asked for.
            assert_eq!(l.applied.cpus, Some(p.value), "{:?}", l.applied);
        }
        fixture_keys.push(run.dataset.unwrap().fixture.unwrap().key);
        ready.push((p.value, l.throttling, p.metrics["time_to_ready"]));
    }
    // One dataset: the first point built the fixture, the others restored it.
    assert!(
        fixture_keys.windows(2).all(|w| w[0] == w[1]),
        "{fixture_keys:?}"
    );
    if root {
        // Half a core is throttled; its boots wait for the quota.
        let (_, half, half_ready) = &ready[0];
        let (_, _, two_ready) = &ready[2];
        assert!(half.throttled_periods > 0, "{half:?}");
        eprintln!(
            "time to ready: {half_ready:.0} ms at 0.5 CPU, {:.0} ms at 1, {two_ready:.0} ms at 2",
            ready[1].2
        );
        assert!(half_ready > two_ready, "{ready:?}");
    }
    let fit = r
        .fits
        .iter()
        .find(|f| f.metric == "time_to_ready")
        .and_then(|f| f.fit.as_ref())
        .expect("time to ready fitted over cores");
    eprintln!("time_to_ready ∝ cpus^{:.2}", fit.b);
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("cpus"), "{summary}");

    // `hsbench size` over cores, as a user types it.
    let sweep_dir = dir.strip_prefix(user.path()).unwrap().display().to_string();
    let o = hsbench(user.path(), &["size", &sweep_dir, "--cpus", "1.5"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("at cpus = 1.5"), "{}", text(&o));
    assert!(text(&o).contains("time_to_ready"), "{}", text(&o));
    let o = hsbench(user.path(), &["size", &sweep_dir, "--users", "100"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--cpus"), "{}", text(&o));
}
