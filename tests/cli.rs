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
                // Scenarios of native servers name their binary through this variable.
                let out = hsbench()
                    .arg("check")
                    .arg(&path)
                    .env(
                        "HSBENCH_SERVER_BINARY",
                        env!("CARGO_BIN_EXE_hsbench-standin"),
                    )
                    .output()
                    .unwrap();
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
        .args(["--save-baseline", "main"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The run completes, but its impossible threshold fails: exit 1, named on stderr.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("FAILED: herd.sync.p99") && stderr.contains("limit < 1ms"),
        "{stderr}"
    );
    assert!(stdout.contains("### Thresholds: **1 failed**"), "{stdout}");
    assert!(
        stdout.contains("### Herd: 25 clients, full-state /sync"),
        "{stdout}"
    );
    assert!(stdout.contains("saved as baseline \"main\""), "{stdout}");
    let run_dir = std::fs::read_dir(out_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("result.json").is_file())
        .unwrap();
    let baselines = out_dir.path().join("baselines");
    assert!(baselines.join("main/tiny-full-state/result.json").is_file());
    let listed = hsbench()
        .arg("baselines")
        .arg("--dir")
        .arg(&baselines)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("tiny-full-state"),
        "{listed:?}"
    );

    // A baseline that does not exist fails before anything runs, saying how to make one.
    let missing = hsbench()
        .arg("run")
        .arg(root.join("tests/scenarios/tiny-full-state.toml"))
        .args(["--quiet", "--baseline", "nope", "--out"])
        .arg(out_dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--save-baseline nope") && err.contains("saved: main/tiny-full-state"),
        "{err}"
    );

    // A second run compared with the saved baseline (the fixture is reused): compare.md and
    // compare.json land in the run directory and report.html shows the comparison. One boot a
    // side is too few for a verdict, and the run says so rather than guessing.
    let second = hsbench()
        .arg("run")
        .arg("--fixtures-dir")
        .arg(fixtures.path())
        .arg(root.join("tests/scenarios/tiny-full-state.toml"))
        .args(["--quiet", "--baseline", "main", "--out"])
        .arg(out_dir.path())
        .output()
        .unwrap();
    let stdout2 = String::from_utf8_lossy(&second.stdout);
    assert_eq!(
        second.status.code(),
        Some(1),
        "threshold still fails: {stdout2}"
    );
    assert!(
        stdout2.contains("## hsbench compare · tiny-full-state"),
        "{stdout2}"
    );
    let second_dir = std::fs::read_dir(out_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("compare.md").is_file())
        .expect("a run directory with compare.md");
    let cmp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(second_dir.join("compare.json")).unwrap()).unwrap();
    let ttr = cmp["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "time_to_ready")
        .unwrap();
    assert_eq!(ttr["verdict"], "not_enough_samples");
    assert_eq!(cmp["baseline"][0], v_run_id(&run_dir));
    let html = std::fs::read_to_string(second_dir.join("report.html")).unwrap();
    assert!(html.contains("Comparison with the baseline"));
    // compare --baseline NAME CANDIDATE does the same from the command line.
    let c = hsbench()
        .args(["compare", "--baseline", "main", "--baselines-dir"])
        .arg(&baselines)
        .arg(&second_dir)
        .output()
        .unwrap();
    assert_eq!(c.status.code(), Some(0), "{c:?}");
    // `hsbench report` writes the human formats again from result.json.
    std::fs::remove_file(run_dir.join("report.html")).unwrap();
    let rep = hsbench().arg("report").arg(&run_dir).output().unwrap();
    assert!(rep.status.success() && run_dir.join("report.html").is_file());
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

fn v_run_id(dir: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap();
    v["run_id"].as_str().unwrap().to_string()
}

/// `hsbench noise` as a user runs it: every CPU probed by every probe, a floor worked out from
/// the worst, the JSON versioned, the text saying what the floor means; bad options exit 2.
#[test]
fn noise_probes_every_cpu_and_names_the_floor() {
    let out = hsbench()
        .args(["noise", "--seconds", "6s", "--window", "200ms", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["schema_version"], 1);
    let cpus = std::thread::available_parallelism().unwrap().get();
    let kinds: Vec<&str> = r["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    // CI installs Synapse with pip, so python3 is there; elsewhere the Python probe may not run.
    let expected: &[&str] = if r["python"].is_null() {
        &["compute", "memory", "fault"]
    } else {
        &["compute", "memory", "fault", "python"]
    };
    assert_eq!(kinds, expected);
    let probes = r["probes"].as_array().unwrap();
    assert_eq!(probes.len(), expected.len() * cpus);
    for p in probes {
        assert!(p["chunks"].as_u64().unwrap() >= 1, "{p}");
        // null: the CPU finished fewer than two windows (a busy machine).
        if let Some(spread) = p["window_spread"].as_f64() {
            assert!(spread.is_finite() && spread >= 0.0, "{p}");
        }
    }
    let worst = r["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["window_spread"].as_f64())
        .fold(0.0, f64::max);
    assert_eq!(r["floor"]["spread"].as_f64().unwrap(), worst);
    assert!(r["floor"]["detectable"].as_f64().unwrap() >= 0.0);

    let text = hsbench()
        .args([
            "noise",
            "--seconds",
            "3s",
            "--window",
            "200ms",
            "--no-python",
        ])
        .output()
        .unwrap();
    assert!(text.status.success(), "{text:?}");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("| memory | 0 |"), "{text}");
    assert!(text.contains("10 boots a side: changes under ±"), "{text}");
    assert!(text.contains("python: not run"), "{text}");

    let bad = hsbench()
        .args(["noise", "--seconds", "1s"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`--seconds` 1s"));
}
