//! `[server] source`: Synapse from a source checkout, installed into a virtualenv of its own
//! (its Rust extension built by pip), fingerprinted by git HEAD and uncommitted changes, booted
//! and timed like the PyPI release. The checkout is the release's own sdist, made a git repo.

use std::path::Path;
use std::process::Command;

use hsbench::result::RunStatus;
use hsbench::scenario::{self, DEFAULT_SYNAPSE_VERSION};
use hsbench::server::synapse::{SynapseInstall, source_fingerprint};

mod common;

use common::git;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synapse_from_a_source_checkout() {
    let release = tokio::task::spawn_blocking(|| SynapseInstall::ensure(DEFAULT_SYNAPSE_VERSION))
        .await
        .unwrap()
        .unwrap();
    let checkout = common::synapse_sdist_checkout(&release.python);

    // The fingerprint follows the checkout: stable, and changed by an uncommitted edit.
    let fp = source_fingerprint(&checkout);
    assert_eq!(fp, source_fingerprint(&checkout));
    let init = checkout.join("synapse/__init__.py");
    let original = std::fs::read_to_string(&init).unwrap();
    std::fs::write(&init, format!("{original}\n# an edit\n")).unwrap();
    let edited = source_fingerprint(&checkout);
    std::fs::write(&init, &original).unwrap();
    assert_ne!(fp, edited);
    assert_eq!(fp, source_fingerprint(&checkout));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("source.toml");
    std::fs::write(
        &path,
        format!(
            r#"
schema = 1
name = "tiny-source"
[server]
source = "{}"
[dataset]
seed = 3
users = 6
rooms = 2
big_room_members = 4
messages_per_room = 2
[boot]
repeats = 1
timeout = "180s"
[workload.herd]
clients = 4
sync = "initial"
"#,
            checkout.display()
        ),
    )
    .unwrap();
    let sc = scenario::load(&path).unwrap();
    assert_eq!(sc.server.source.as_deref(), Some(checkout.as_path()));
    let sandbox = common::Sandbox::new();
    let out = hsbench::run::run(&sc, &sandbox.opts)
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    let r = &out.result;
    assert_eq!(r.status, RunStatus::Complete);
    let server = r.server.as_ref().unwrap();
    assert_eq!(
        server.version,
        format!("{DEFAULT_SYNAPSE_VERSION}+src.{fp}")
    );
    assert!(
        server.install_dir.contains("synapse-src-")
            && server.install_dir != release.venv.display().to_string(),
        "{}",
        server.install_dir
    );
    // The result traces to the commit: checkout, commit, branch, no uncommitted changes; the
    // summary's title names them.
    let src = server.source.as_ref().expect("server.source");
    let head = String::from_utf8(
        Command::new("git")
            .arg("-C")
            .arg(&checkout)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(src.commit.as_deref(), Some(head.trim()));
    assert!(src.branch.is_some() && !src.dirty, "{src:?}");
    assert_eq!(src.fingerprint, fp);
    let summary = std::fs::read_to_string(out.run_dir.join("summary.md")).unwrap();
    assert!(summary.contains(&src.describe()), "{summary}");
    // The fixture key names the checkout's schema, not its commit.
    let fx = r.dataset.as_ref().unwrap().fixture.as_ref().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(&fx.path).join("fixture.json")).unwrap())
            .unwrap();
    let schema = format!(
        "{DEFAULT_SYNAPSE_VERSION}+schema.{}",
        hsbench::server::synapse::schema_hash(&checkout)
    );
    assert_eq!(src.schema, schema);
    assert_eq!(manifest["identity"]["server_version"], schema.as_str());
    assert!(
        r.dataset
            .as_ref()
            .unwrap()
            .verify
            .as_ref()
            .unwrap()
            .mismatches
            .is_empty()
    );
    let b = &r.boots[0];
    assert!(b.missing_markers.is_empty(), "{:?}", b.missing_markers);
    assert!(b.phases.iter().all(|p| p.duration_ms.is_some()));
    assert_eq!(r.herd.as_ref().unwrap().ok, 4);
    // Unchanged checkout: the virtualenv is reused.
    let c2 = checkout.clone();
    let again = tokio::task::spawn_blocking(move || SynapseInstall::ensure_source(&c2))
        .await
        .unwrap()
        .unwrap();
    assert!(!again.installed_now);
    assert_eq!(again.version, server.version);

    // A pull request's commit that leaves the schema alone: a new version and commit in the
    // result, the same fixture reused (no rebuild), and compare names both sides' servers.
    let git = |args: &[&str]| git(&checkout, args);
    let _ = Command::new("git")
        .arg("-C")
        .arg(&checkout)
        .args(["branch", "-D", "pr"])
        .output();
    git(&["checkout", "-q", "-b", "pr"]);
    std::fs::write(&init, format!("{original}\n# a pull request\n")).unwrap();
    git(&["commit", "-qam", "a python-only change"]);
    let pr = hsbench::run::run(&sc, &sandbox.opts).await;
    git(&["checkout", "-q", "-"]);
    git(&["branch", "-D", "pr"]);
    let pr = pr.unwrap_or_else(|e| panic!("pr run failed: {e}"));
    let ps = pr.result.server.as_ref().unwrap();
    assert_ne!(ps.version, server.version);
    let psrc = ps.source.as_ref().unwrap();
    assert_eq!(psrc.branch.as_deref(), Some("pr"));
    assert_ne!(psrc.commit, src.commit);
    assert_eq!(psrc.schema, src.schema);
    let pfx = pr
        .result
        .dataset
        .as_ref()
        .unwrap()
        .fixture
        .as_ref()
        .unwrap();
    assert!(pfx.reused, "the base's fixture is reused: {pfx:?}");
    assert_eq!(pfx.key, fx.key);
    let c = hsbench::analysis::compare::compare_paths(
        &out.run_dir,
        &pr.run_dir,
        &Default::default(),
        false,
    )
    .unwrap();
    let md = hsbench::report::compare::markdown(&c);
    assert!(
        md.contains(&format!("Baseline: {}", r.server_label()))
            && md.contains(&format!("Candidate: {}", pr.result.server_label()))
            && md.contains("pr @ "),
        "{md}"
    );
}
