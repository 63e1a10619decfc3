//! The binary as a user runs it: exit codes, error locations, and a real full-state herd.

use std::path::Path;
use std::process::Command;

fn hsbench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hsbench"))
}

#[test]
fn bad_scenario_exits_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[dataset]\nseed = 1\nusers = 10\nrooms = 1\nbig_room_members = 5\nmessages_per_room = 1\n\n[workload.herd]\nclients = 50\n",
    )
    .unwrap();
    let out = hsbench().arg("run").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:9:11: `workload.herd.clients`", path.display())),
        "{err}"
    );
}

#[test]
fn missing_scenario_exits_2() {
    let out = hsbench()
        .args(["check", "no/such/file.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/file.toml"));
}

#[test]
fn shipped_scenarios_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["scenarios", "tests/scenarios"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let out = hsbench().arg("check").arg(&path).output().unwrap();
                assert!(out.status.success(), "{}: {:?}", path.display(), out);
            }
        }
    }
}

#[test]
fn full_state_herd_through_the_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = tempfile::tempdir().unwrap();
    let fixtures = tempfile::tempdir().unwrap();
    let out = hsbench()
        .arg("run")
        .arg("--fixtures-dir")
        .arg(fixtures.path())
        .arg(root.join("tests/scenarios/tiny-full-state.toml"))
        .arg("--quiet")
        .arg("--out")
        .arg(out_dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The run completes, but its impossible threshold fails: exit 1, named on stderr.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("thresholds failed: herd.sync.p99 < 1ms"),
        "{stderr}"
    );
    assert!(stdout.contains("### Thresholds: **1 failed**"), "{stdout}");
    assert!(
        stdout.contains("### Herd: 25 clients, full-state /sync"),
        "{stdout}"
    );
    let run_dir = std::fs::read_dir(out_dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("result.json")).unwrap()).unwrap();
    assert_eq!(v["status"], "complete");
    assert_eq!(v["herd"]["sync"], "full_state");
    assert_eq!(v["herd"]["ok"], 25);
    assert_eq!(v["herd"]["corrected"]["count"], 25);
    assert!(v["herd"]["prepare_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(v["boots"].as_array().unwrap().len(), 1);

    // The fixture it built is listed, and removed by key prefix.
    let list = hsbench()
        .args(["fixtures", "list", "--fixtures-dir"])
        .arg(fixtures.path())
        .output()
        .unwrap();
    let key = v["dataset"]["fixture"]["key"].as_str().unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains(key));
    let rm = hsbench()
        .args(["fixtures", "rm", &key[..6], "--fixtures-dir"])
        .arg(fixtures.path())
        .output()
        .unwrap();
    assert!(rm.status.success());
    let rm_again = hsbench()
        .args(["fixtures", "rm", &key[..6], "--fixtures-dir"])
        .arg(fixtures.path())
        .output()
        .unwrap();
    assert_eq!(rm_again.status.code(), Some(2));
}
