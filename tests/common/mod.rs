//! What the integration tests share: a private results directory and fixture cache, and run
//! options that verify the dataset through the server's API.

use hsbench::dataset::fixture::FixtureStore;
use hsbench::run::RunOptions;

/// Private directories for one test's runs; removed when dropped.
pub struct Sandbox {
    _results: tempfile::TempDir,
    _fixtures: tempfile::TempDir,
    pub opts: RunOptions,
}

impl Sandbox {
    pub fn new() -> Self {
        let results = tempfile::tempdir().unwrap();
        let fixtures = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            results_dir: results.path().to_path_buf(),
            quiet: true,
            verify: true,
            fixtures: FixtureStore::new(fixtures.path()),
            ..RunOptions::default()
        };
        Self {
            _results: results,
            _fixtures: fixtures,
            opts,
        }
    }
}

/// Validate a JSON file against a JSON Schema with an independent validator: Python's
/// `jsonschema` (a dependency of Synapse, so present in hsbench's Synapse virtualenv), draft
/// from the schema's `$schema`. Returns the validator's error messages (empty: valid).
#[allow(dead_code)]
pub fn schema_errors(
    python: &std::path::Path,
    schema: &std::path::Path,
    doc: &[u8],
) -> Vec<String> {
    use std::io::Write;
    let mut child = std::process::Command::new(python)
        .args([
            "-c",
            "import json,sys,jsonschema\n\
             s=json.load(open(sys.argv[1]))\n\
             V=jsonschema.validators.validator_for(s)\n\
             V.check_schema(s)\n\
             d=json.load(sys.stdin)\n\
             errs=sorted(V(s).iter_errors(d), key=lambda e: list(e.path))\n\
             [print('/'.join(map(str,e.path))+': '+e.message[:300]) for e in errs]\n\
             print('VALIDATOR', V.__name__)",
        ])
        .arg(schema)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python of the Synapse virtualenv");
    child.stdin.take().unwrap().write_all(doc).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.contains("VALIDATOR Draft202012Validator"),
        "validator failed: {text}"
    );
    text.lines()
        .filter(|l| !l.starts_with("VALIDATOR"))
        .map(str::to_string)
        .collect()
}

/// Synapse's release sdist (the default version) made a git repository with one commit, at a
/// stable place in the cache so that reruns reuse it and the virtualenvs built from it.
#[allow(dead_code)]
pub fn synapse_sdist_checkout(python: &std::path::Path) -> std::path::PathBuf {
    use hsbench::scenario::DEFAULT_SYNAPSE_VERSION;
    use std::process::Command;
    let root = hsbench::util::fs::cache_dir().join("test-synapse-source");
    let checkout = root.join(format!("matrix_synapse-{DEFAULT_SYNAPSE_VERSION}"));
    if !checkout.join(".git").is_dir() {
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        ok(Command::new(python)
            .args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--no-deps", "--no-binary", "matrix-synapse", "-d"])
            .arg(&root)
            .arg(format!("matrix-synapse=={DEFAULT_SYNAPSE_VERSION}")));
        ok(Command::new("tar")
            .arg("xzf")
            .arg(root.join(format!("matrix_synapse-{DEFAULT_SYNAPSE_VERSION}.tar.gz")))
            .arg("-C")
            .arg(&root));
        git(&checkout, &["init", "-q"]);
        git(&checkout, &["add", "-A"]);
        git(&checkout, &["commit", "-qm", "release sdist"]);
    }
    checkout
}

/// `git` in `dir`, as a committer with fixed dates (the same commits get the same ids on every
/// run), and it must succeed.
#[allow(dead_code)]
pub fn git(dir: &std::path::Path, args: &[&str]) {
    ok(std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .args([
            "-c",
            "user.name=hsbench",
            "-c",
            "user.email=t@hsbench.invalid",
        ])
        .args(args));
}

/// `receipts.py` with `code` (lines indented for a method body) at the start of
/// `ReceiptsWorkerStore.__init__`, before its `super().__init__(`: start-up work a test adds to
/// one store constructor.
#[allow(dead_code)]
pub fn in_receipts_store_init(receipts_py: &str, code: &str) -> String {
    let anchor = "class ReceiptsWorkerStore(SQLBaseStore):";
    let at = receipts_py.find(anchor).expect("ReceiptsWorkerStore");
    let init = at
        + receipts_py[at..]
            .find("        super().__init__(")
            .expect("its __init__");
    format!("{}{code}{}", &receipts_py[..init], &receipts_py[init..])
}

/// The hsbench binary in `dir` (relative paths as a user's), its output kept.
#[allow(dead_code)]
pub fn hsbench_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hsbench"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// The directory under `parent` whose name ends in `suffix` (a run's or a sweep's, named
/// `<stamp>-<name>`).
#[allow(dead_code)]
pub fn dir_ending(parent: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    std::fs::read_dir(parent)
        .unwrap_or_else(|e| panic!("{}: {e}", parent.display()))
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(suffix))
        .unwrap_or_else(|| {
            panic!(
                "no directory ending in {suffix:?} under {}",
                parent.display()
            )
        })
        .path()
}

/// A command's stdout then stderr, for assertion messages.
#[allow(dead_code)]
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run a command that must succeed.
#[allow(dead_code)]
pub fn ok(cmd: &mut std::process::Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The tuwunel binary named by `HSBENCH_TUWUNEL` (`.ci/run` sets it to
/// `../shared/servers/tuwunel-1.4.6`), or `None`: the test says that it was skipped and why,
/// unless `HSBENCH_REQUIRE_REAL_SERVERS` is set, when it fails.
#[allow(dead_code)]
pub fn tuwunel() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    let required = std::env::var_os("HSBENCH_REQUIRE_REAL_SERVERS").is_some();
    match std::env::var_os("HSBENCH_TUWUNEL").map(PathBuf::from) {
        Some(p) if p.is_file() => Some(std::fs::canonicalize(&p).unwrap()),
        other => {
            let why = match other {
                Some(p) => format!("HSBENCH_TUWUNEL={} is not a file", p.display()),
                None => "HSBENCH_TUWUNEL is not set".to_string(),
            };
            assert!(!required, "HSBENCH_REQUIRE_REAL_SERVERS is set, but {why}");
            eprintln!(
                "SKIPPED: {why}; set it to a tuwunel binary (CI: ../shared/servers/tuwunel-1.4.6)"
            );
            None
        }
    }
}

/// matrix-nio's version for the client-library fidelity test.
#[allow(dead_code)]
pub const NIO_VERSION: &str = "0.26.0";

/// The python of a virtualenv with matrix-nio from PyPI (a second, independent client to read
/// fixtures with), made once in the cache (`tools/matrix-nio-<version>`) and reused.
#[allow(dead_code)]
pub fn nio_python() -> std::path::PathBuf {
    use std::process::Command;
    let venv = hsbench::util::fs::cache_dir()
        .join("tools")
        .join(format!("matrix-nio-{NIO_VERSION}"));
    let python = venv.join("bin/python");
    let probe = |p: &std::path::Path| {
        Command::new(p)
            .args(["-c", "import nio"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if probe(&python) {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    std::fs::create_dir_all(venv.parent().unwrap()).unwrap();
    ok(Command::new("python3").arg("-m").arg("venv").arg(&venv));
    ok(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("matrix-nio=={NIO_VERSION}"),
    ]));
    assert!(
        probe(&python),
        "matrix-nio did not install into {}",
        venv.display()
    );
    python
}

/// Notification counts a member of each of its rooms has, by the plan: messages and replies by
/// others after the member's read receipt (or all of them without one), redacted ones excepted
/// (reactions, edits and redactions do not notify), and the invite of an invited member without
/// a receipt (`.m.rule.invite_for_me`).
#[allow(dead_code)]
pub fn expected_unread(
    plan: &hsbench::dataset::plan::DatasetPlan,
    user: u64,
) -> std::collections::HashMap<u64, u64> {
    unread_counts(plan, user, false, true)
}

/// The same, choosing what counts where Synapse's answer depends on its 30-second notification
/// rotation: a redacted message still counts when a rotation summarised it before the redaction
/// (a redaction removes the message's push action, not a summary that already counted it); an
/// invite counts only when a rotation summarised it before the join (without a receipt, Synapse
/// counts from the member's join). Over a history of days both count, as the import writes.
#[allow(dead_code)]
pub fn unread_counts(
    plan: &hsbench::dataset::plan::DatasetPlan,
    user: u64,
    count_redacted: bool,
    count_invite: bool,
) -> std::collections::HashMap<u64, u64> {
    use hsbench::dataset::plan::EventKind;
    use std::collections::{HashMap, HashSet};
    let mut out = HashMap::new();
    for room in plan.rooms() {
        if !room.members.contains(&user) {
            continue;
        }
        let tl = plan.timeline(&room);
        let redacted: HashSet<usize> = tl
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::Redaction { to } => Some(to),
                _ => None,
            })
            .collect();
        let read = plan
            .receipts(&room)
            .into_iter()
            .find(|(m, _)| *m == user)
            .map(|(_, at)| at);
        let n = tl
            .iter()
            .enumerate()
            .filter(|(i, e)| {
                matches!(e.kind, EventKind::Message { .. } | EventKind::Reply { .. })
                    && e.sender != user
                    && (count_redacted || !redacted.contains(i))
                    && read.is_none_or(|r| *i > r)
            })
            .count() as u64;
        // The invite notified its target; a receipt (on a later timeline event) clears it.
        let invite = u64::from(count_invite && read.is_none() && room.invited().contains(&user));
        out.insert(room.index, n + invite);
    }
    out
}
