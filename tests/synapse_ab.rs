//! `hsbench ab` and `hsbench bisect` on a real Synapse repository: the release's sdist made a
//! git history of six commits, one of which (the fourth) makes a store constructor 300 ms slower.
//! `ab` must flag the phase and the sub-phase that hold the delay, the head must boot on the
//! base's fixture (the last commit adds a schema delta, which the head applies to it at its first
//! boot, as an upgrade would), the results must carry the commits; `bisect` must name the slow
//! commit.

use std::path::{Path, PathBuf};

use hsbench::analysis::compare::Verdict;
use hsbench::result::RunStatus;
use hsbench::run::ab::{AbOptions, ab};
use hsbench::run::bisect::{BisectOptions, bisect};
use hsbench::scenario::{self, DEFAULT_SYNAPSE_VERSION};
use hsbench::server::synapse::SynapseInstall;

mod common;
use common::git;

const MARK: &str = "hsbench-test: a slow receipts store";
const DELTA_FILE: &str = "01_hsbench_test.sql";
const DELTA_SQL: &str = "-- hsbench test: the head's schema delta\n\
    CREATE TABLE hsbench_test_delta (stream_ordering BIGINT NOT NULL);\n\
    INSERT INTO hsbench_test_delta SELECT stream_ordering FROM events;\n";

/// The history: the sdist, then five commits; the third of them (index 3) is the slow one, the
/// fifth (index 5) adds a schema delta.
fn history(python: &Path) -> (PathBuf, Vec<String>) {
    let sdist = common::synapse_sdist_checkout(python);
    let repo = hsbench::util::fs::cache_dir().join("test-synapse-ab/repo");
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
                &format!(
                    "        import time as _t\n        logger.info(\"{MARK}\")\n        _t.sleep(0.3)\n"
                ),
            )
        },
        "receipts: a slow constructor",
    );
    edit("synapse/__init__.py", &comment(4), "a third comment");
    // The last commit changes the schema, as a PR with a migration does: SCHEMA_VERSION moves
    // up one and its delta directory gets one file. The head must boot on the base's fixture
    // and apply it there, at its first boot, as an upgrade would.
    let version_file = repo.join("synapse/storage/schema/__init__.py");
    let text = std::fs::read_to_string(&version_file).unwrap();
    let at = text.find("\nSCHEMA_VERSION = ").expect("SCHEMA_VERSION") + 18;
    let old: u32 = text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let delta = repo.join(format!("synapse/storage/schema/main/delta/{}", old + 1));
    std::fs::create_dir_all(&delta).unwrap();
    std::fs::write(delta.join(DELTA_FILE), DELTA_SQL).unwrap();
    git(&repo, &["add", "synapse/storage/schema"]);
    edit(
        "synapse/storage/schema/__init__.py",
        &|t: String| {
            t.replacen(
                &format!("\nSCHEMA_VERSION = {old}"),
                &format!("\nSCHEMA_VERSION = {}", old + 1),
                1,
            )
        },
        "a schema delta",
    );
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
    let path = dir.join("ab.toml");
    std::fs::write(
        &path,
        r#"
schema = 1
name = "tiny-ab"
[dataset]
seed = 5
users = 6
rooms = 2
big_room_members = 4
messages_per_room = 2
[boot]
repeats = 8
warmup = 1
timeout = "180s"
"#,
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_flags_the_slow_constructor_and_bisect_names_its_commit() {
    let release = tokio::task::spawn_blocking(|| SynapseInstall::ensure(DEFAULT_SYNAPSE_VERSION))
        .await
        .unwrap()
        .unwrap();
    let (repo, commits) = history(&release.python);
    assert_eq!(commits.len(), 6);
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario::load(&scenario_file(dir.path())).unwrap();
    let sandbox = common::Sandbox::new();
    let run = hsbench::run::RunOptions {
        verify: false,
        ..sandbox.opts.clone()
    };

    // ab: the release against the last commit, in two worktree slots of the repository.
    let mut o = AbOptions::new(&commits[0], "HEAD", run.clone());
    o.repo = Some(repo.clone());
    o.slots = ["good".into(), "probe".into()];
    let out = ab(&sc, &o)
        .await
        .unwrap_or_else(|e| panic!("ab failed: {e}"));
    let (b, h) = (&out.base.result, &out.head.result);
    assert_eq!(
        (b.status, h.status),
        (RunStatus::Complete, RunStatus::Complete)
    );
    assert_eq!(
        (b.boots.len(), h.boots.len()),
        (9, 9),
        "a warm-up and 8 timed boots a side"
    );
    // The results carry the commits.
    let commit = |r: &hsbench::result::RunResult| {
        r.server
            .as_ref()
            .unwrap()
            .source
            .as_ref()
            .unwrap()
            .commit
            .clone()
    };
    assert_eq!(commit(b).as_deref(), Some(commits[0].as_str()));
    assert_eq!(commit(h).as_deref(), Some(commits[5].as_str()));
    // One fixture for both (the base's key, although the head's commit and schema differ):
    // built once, by the base, before either side ran, and reused by both.
    let fx = |r: &hsbench::result::RunResult| r.dataset.as_ref().unwrap().fixture.clone().unwrap();
    assert_eq!(fx(b).key, fx(h).key);
    assert!(fx(b).reused && fx(h).reused, "{:?} / {:?}", fx(b), fx(h));
    let built: hsbench::result::RunResult = serde_json::from_slice(
        &std::fs::read(out.dir.join("base-fixture/result.json")).expect("the base's fixture run"),
    )
    .unwrap();
    assert_eq!(fx(&built).key, fx(b).key);
    assert!(!fx(&built).reused, "the base built it: {:?}", fx(&built));
    // The head applied its schema delta to the base's fixture at its first boot (in db_prepare,
    // as a sub-phase of its own), and only then; the base never saw it.
    let delta_version = {
        let v = std::fs::read_to_string(repo.join("synapse/storage/schema/__init__.py")).unwrap();
        let at = v.find("\nSCHEMA_VERSION = ").unwrap() + 18;
        v[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .to_string()
    };
    let delta_span = format!("schema: {delta_version}/{DELTA_FILE}");
    let applied = |r: &hsbench::result::RunResult| -> Vec<(String, bool)> {
        r.boots
            .iter()
            .flat_map(|boot| {
                boot.subphases
                    .iter()
                    .filter(|s| s.name.starts_with("schema: "))
                    .map(move |s| {
                        assert_eq!(s.parent.as_deref(), Some("db_prepare"), "{s:?}");
                        (s.name.clone(), boot.warmup)
                    })
            })
            .collect()
    };
    assert_eq!(applied(h), vec![(delta_span, true)], "{:#?}", h.boots[0]);
    assert_eq!(applied(b), vec![]);
    // The boots were interleaved, ABBA: ordered by spawn time, the sides go base, head, head,
    // base, base, head, …
    let mut spawns: Vec<(f64, char)> = b
        .boots
        .iter()
        .map(|x| (x.spawn_monotonic_s, 'A'))
        .chain(h.boots.iter().map(|x| (x.spawn_monotonic_s, 'B')))
        .collect();
    spawns.sort_by(|x, y| x.0.total_cmp(&y.0));
    let order: String = spawns.iter().map(|x| x.1).collect();
    let abba: String = (0..9)
        .map(|k| if k % 2 == 0 { "AB" } else { "BA" })
        .collect();
    assert_eq!(order, abba);
    // Boot metrics were compared in pairs.
    let ttr = out
        .comparison
        .metrics
        .iter()
        .find(|m| m.metric == "time_to_ready")
        .unwrap();
    assert_eq!(ttr.pairs, 8);
    let regressed: Vec<&str> = out
        .comparison
        .regressions()
        .iter()
        .map(|m| m.metric.as_str())
        .collect();
    assert!(regressed.contains(&"phase.stores_start"), "{regressed:?}");
    // The sub-phase flagged is the span that holds the constructor: the one that ends at the
    // first generator line after the injected line, named by the lines around it.
    let log = std::fs::read_to_string(out.head.run_dir.join("boot-1.log")).unwrap();
    let gens: Vec<(usize, String)> = log
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let at = l.find("Initialising stream generator for ")?;
            let name: String = l[at + 34..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            Some((i, name))
        })
        .collect();
    let mark = log
        .lines()
        .position(|l| l.contains(MARK))
        .expect("the injected line in the head's log");
    let next = gens
        .iter()
        .position(|(i, _)| *i > mark)
        .expect("a generator after it");
    let expect = match next {
        0 => format!("subphase.stream_generator: (before {})", gens[0].1),
        n => format!(
            "subphase.stream_generator: (between {} and {})",
            gens[n - 1].1,
            gens[n].1
        ),
    };
    assert!(
        regressed.contains(&expect.as_str()),
        "{expect} not in {regressed:?}"
    );
    // No span away from the delay is called a regression.
    assert!(
        regressed
            .iter()
            .filter(|m| m.starts_with("subphase."))
            .all(|m| *m == expect),
        "{regressed:?}"
    );
    let md = std::fs::read_to_string(out.dir.join("compare.md")).unwrap();
    assert!(md.contains("ABBA") && md.contains("Regressed"), "{md}");
    assert!(out.dir.join("compare.json").is_file());

    // bisect over the five commits names the slow one.
    let bo = BisectOptions {
        good: commits[0].clone(),
        bad: "HEAD".into(),
        metric: Some("phase.stores_start".into()),
        repo: Some(repo.clone()),
        boots: Some(7),
        gates: Default::default(),
        run,
    };
    let bis = bisect(&sc, &bo)
        .await
        .unwrap_or_else(|e| panic!("bisect failed: {e}"));
    let r = &bis.result;
    assert_eq!(r.range, 5);
    assert_eq!(r.first_bad.as_deref(), Some(commits[3].as_str()), "{r:#?}");
    assert_eq!(
        r.first_bad_subject.as_deref(),
        Some("receipts: a slow constructor")
    );
    // Bad first, then a binary search: at most 1 + ceil(log2 5) steps, each with a verdict.
    assert!(r.steps.len() <= 4, "{}", r.steps.len());
    assert_eq!(r.steps[0].commit, commits[5]);
    assert_eq!(r.steps[0].verdict, Verdict::Regressed);
    for s in &r.steps {
        let slow = commits[3..].contains(&s.commit);
        assert_eq!(s.verdict == Verdict::Regressed, slow, "{s:?}");
    }
    let md = std::fs::read_to_string(bis.dir.join("bisect.md")).unwrap();
    assert!(
        md.contains("First bad commit") && md.contains(&commits[3][..12]),
        "{md}"
    );
}
