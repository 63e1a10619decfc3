//! The work meter on a real Synapse repository: the release's sdist made a git history of six
//! commits, the third after the release adding CPU work (a big-integer power, about 2% of the
//! boot's instructions) to a store's constructor. `bisect` under `[boot] meter = "work"`
//! follows `work.time_to_ready` by default; its first step is an `ab` of the release against
//! the last commit, which must call the phase that holds the constructor a regression and name
//! the C function that grew (CPython's Karatsuba multiplication, `k_mul`); a step on a commit
//! that changes nothing the boot executes (a comment) must call nothing a regression; the
//! bisection must name the costly commit, booting the good side only once.

use std::path::{Path, PathBuf};

use hsbench::analysis::compare::{Comparison, Verdict};
use hsbench::result::{RunResult, RunStatus};
use hsbench::run::bisect::{BisectOptions, bisect};
use hsbench::scenario::{self, DEFAULT_SYNAPSE_VERSION, MeterMode};
use hsbench::server::synapse::SynapseInstall;

mod common;
use common::git;

const MARK: &str = "hsbench-test: a costly receipts store";
/// About 105 M instructions under callgrind on CPython 3.11 (measured: `pow(3, 300000)` costs
/// 140 M, `pow(3, 90000)` 19 M), against about 5 G to `listening`.
const WORK: &str = "pow(3, 250000)";

/// The sdist, then five commits; the third of them (index 3) adds the work.
fn history(python: &Path) -> (PathBuf, Vec<String>) {
    let sdist = common::synapse_sdist_checkout(python);
    let repo = hsbench::util::fs::cache_dir().join("test-work-meter/repo");
    let _ = std::fs::remove_dir_all(&repo);
    std::fs::create_dir_all(repo.parent().unwrap()).unwrap();
    common::ok(
        std::process::Command::new("git")
            .args(["clone", "-q"])
            .arg(&sdist)
            .arg(&repo),
    );
    let edit = |file: &str, f: &dyn Fn(String) -> String, msg: &str| {
        let p = repo.join(file);
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, f(text)).unwrap();
        git(&repo, &["commit", "-qam", msg]);
    };
    let comment = |n: u32| move |t: String| format!("{t}\n# hsbench test commit {n}\n");
    edit("synapse/__init__.py", &comment(1), "a comment");
    edit("synapse/__init__.py", &comment(2), "another comment");
    edit(
        "synapse/storage/databases/main/receipts.py",
        &|t: String| {
            common::in_receipts_store_init(
                &t,
                &format!("        logger.info(\"{MARK}\")\n        self._hsbench_test = {WORK}\n"),
            )
        },
        "receipts: a costly constructor",
    );
    edit("synapse/__init__.py", &comment(4), "a third comment");
    edit("synapse/__init__.py", &comment(5), "a fourth comment");
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["rev-list", "--reverse", "HEAD"])
        .output()
        .unwrap();
    let commits = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    (repo, commits)
}

fn scenario_file(dir: &Path) -> PathBuf {
    let path = dir.join("work.toml");
    std::fs::write(
        &path,
        r#"
schema = 1
name = "tiny-work"
[dataset]
seed = 5
users = 6
rooms = 2
big_room_members = 4
messages_per_room = 2
[boot]
meter = "work"
repeats = 4
warmup = 1
timeout = "180s"
"#,
    )
    .unwrap();
    path
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bisect_under_the_work_meter_names_the_costly_commit_and_function() {
    let release = tokio::task::spawn_blocking(|| SynapseInstall::ensure(DEFAULT_SYNAPSE_VERSION))
        .await
        .unwrap()
        .unwrap();
    let (repo, commits) = history(&release.python);
    assert_eq!(commits.len(), 6);
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario::load(&scenario_file(dir.path())).unwrap();
    assert_eq!(sc.boot.meter, MeterMode::Work);
    let sandbox = common::Sandbox::new();
    let bo = BisectOptions {
        good: commits[0].clone(),
        bad: "HEAD".into(),
        metric: None,
        repo: Some(repo.clone()),
        // 4 a side (the least that reaches p < 0.05) to keep the test's time down; unasked it
        // would be 5.
        boots: Some(4),
        gates: Default::default(),
        run: hsbench::run::RunOptions {
            verify: false,
            ..sandbox.opts.clone()
        },
    };
    let bis = bisect(&sc, &bo)
        .await
        .unwrap_or_else(|e| panic!("bisect failed: {e}"));
    let r = &bis.result;
    assert_eq!(r.metric, "work.time_to_ready", "work by default");
    assert_eq!(r.range, 5);
    assert_eq!(r.boots_per_side, 4);
    assert_eq!(
        hsbench::run::ab::default_boots(&sc),
        5,
        "under the work meter"
    );
    assert_eq!(r.first_bad.as_deref(), Some(commits[3].as_str()), "{r:#?}");
    assert_eq!(
        r.first_bad_subject.as_deref(),
        Some("receipts: a costly constructor")
    );
    assert!(r.steps.len() <= 4, "{}", r.steps.len());
    for s in &r.steps {
        let costly = commits[3..].contains(&s.commit);
        assert_eq!(s.verdict == Verdict::Regressed, costly, "{s:?}");
    }

    // Step 1 is an ab of the release against the last commit: both sides booted under the
    // meter, 4 counted boots each after a warm-up, every one with a count to ready.
    let step1 = Path::new(&r.steps[0].dir);
    assert_eq!(r.steps[0].commit, commits[5]);
    let sides: Vec<RunResult> = ["base", "head"]
        .iter()
        .map(|side| read(&step1.join(side).join("result.json")))
        .collect();
    for side in &sides {
        assert_eq!(side.status, RunStatus::Complete);
        assert_eq!(side.work_boots.len(), 4);
        assert!(side.boots.iter().all(|b| b.warmup), "no timed boots");
        let meter = side.meter.as_ref().expect("the meter that ran");
        assert_eq!(meter.meter, "callgrind");
        for b in &side.work_boots {
            let w = b.work.as_ref().expect("counts");
            assert!(w.to_ready.unwrap_or(0) > 1_000_000_000, "{w:?}");
            assert_eq!(w.to_ready_marker.as_deref(), Some("listening"));
        }
    }
    let to_ready = |r: &RunResult| -> Vec<f64> {
        r.work_boots
            .iter()
            .map(|b| b.work.as_ref().unwrap().to_ready.unwrap() as f64)
            .collect()
    };
    let (base, head) = (to_ready(&sides[0]), to_ready(&sides[1]));
    let med = |v: &[f64]| hsbench::stats::spread::median(v);
    let grew = med(&head) / med(&base) - 1.0;
    assert!(
        (0.005..0.06).contains(&grew),
        "the injected work should cost about 2% of the boot: {grew:+.4} ({base:?} → {head:?})"
    );
    let c: Comparison = read(&step1.join("compare.json"));
    let regressed: Vec<&str> = c.regressions().iter().map(|m| m.metric.as_str()).collect();
    assert!(
        regressed.contains(&"work.phase.stores_start"),
        "the phase of the store's constructor: {regressed:?}"
    );
    assert!(
        regressed.iter().all(|m| m.starts_with("work.")),
        "no time metric was measured: {regressed:?}"
    );
    let phase = c
        .work_attribution
        .iter()
        .find(|a| a.metric == "work.phase.stores_start")
        .expect("attribution of the phase");
    let top = phase.functions.first().expect("a function that grew");
    assert!(
        top.name.starts_with("k_mul"),
        "CPython's Karatsuba multiplication, the power's work: {:#?}",
        phase.functions
    );
    assert!(
        top.candidate - top.baseline > 0.5 * (med(&head) - med(&base)),
        "it holds most of the growth: {top:?}"
    );
    let md = std::fs::read_to_string(step1.join("compare.md")).unwrap();
    for want in [
        "**fired** on",
        "k_mul",
        "Where the instructions went",
        "detectable",
    ] {
        assert!(md.contains(want), "{want:?} not in\n{md}");
    }

    // A step on a comment-only commit calls nothing a regression, and boots only that commit:
    // the good side's counts are step 1's.
    let aa = r
        .steps
        .iter()
        .find(|s| commits[1..3].contains(&s.commit))
        .expect("the binary search tries a commit before the costly one");
    let aa_dir = Path::new(&aa.dir);
    let c: Comparison = read(&aa_dir.join("compare.json"));
    assert!(
        c.regressions().is_empty(),
        "A/A: {:?}",
        c.regressions()
            .iter()
            .map(|m| (&m.metric, m.ratio))
            .collect::<Vec<_>>()
    );
    assert!(!aa_dir.join("base").exists(), "the good side booted again");
    assert!(
        std::fs::read_to_string(aa_dir.join("compare.md"))
            .unwrap()
            .contains("measured before")
    );
    let md = std::fs::read_to_string(bis.dir.join("bisect.md")).unwrap();
    assert!(
        md.contains("First bad commit") && md.contains(&commits[3][..12]),
        "{md}"
    );
}
