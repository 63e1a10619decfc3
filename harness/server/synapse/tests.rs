use super::*;

/// A git checkout's fingerprint follows its uncommitted state: an edit of a tracked file, a
/// new untracked file, and an edit of that untracked file (same name, new content) each
/// change it; build output does not.
#[test]
fn fingerprint_follows_untracked_file_contents() {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir.path())
            .args(args)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q"]);
    std::fs::write(dir.path().join("a.py"), "x = 1\n").unwrap();
    git(&["add", "a.py"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-qm",
        "a",
    ]);
    let clean = source_fingerprint(dir.path());
    assert_eq!(clean, source_fingerprint(dir.path()));
    std::fs::write(dir.path().join("new.py"), "y = 1\n").unwrap();
    let with_new = source_fingerprint(dir.path());
    assert_ne!(clean, with_new);
    std::fs::write(dir.path().join("new.py"), "y = 2\n").unwrap();
    let edited = source_fingerprint(dir.path());
    assert_ne!(
        with_new, edited,
        "an edit of an untracked file is a new state"
    );
    std::fs::create_dir_all(dir.path().join("build")).unwrap();
    std::fs::write(dir.path().join("build/out.so"), "bin").unwrap();
    assert_eq!(
        edited,
        source_fingerprint(dir.path()),
        "build output is not source"
    );
}

#[test]
fn overrides_keep_everything_on_loopback_and_unlimited() {
    let inst = SynapseInstance {
        install: SynapseInstall {
            version: "0".into(),
            venv: "/v".into(),
            python: "/v/bin/python".into(),
            installed_now: false,
            install_seconds: 0.0,
            source: None,
        },
        data_dir: "/d".into(),
        db: DbTarget::Sqlite,
        extra: None,
    };
    let v = inst.overrides(18008);
    assert_eq!(v["listeners"][0]["bind_addresses"], json!(["127.0.0.1"]));
    assert_eq!(v["listeners"][0]["port"], 18008);
    assert_eq!(v["trusted_key_servers"], json!([]));
    assert_eq!(v["rc_message"]["per_second"], 1_000_000);
    assert_eq!(v["rc_login"]["failed_attempts"]["burst_count"], 1_000_000);
    assert_eq!(v["bcrypt_rounds"], 4);
    assert_eq!(v["database"]["args"]["database"], "/d/homeserver.db");
    assert_eq!(v["media_store_path"], "/d/media_store");
    // The scenario's keys come last and win; hsbench's other keys stay.
    let inst = SynapseInstance {
        extra: Some(json!({"presence": {"enabled": false}, "bcrypt_rounds": 6})),
        ..inst
    };
    let v = inst.overrides(18008);
    assert_eq!(v["presence"]["enabled"], false);
    assert_eq!(v["bcrypt_rounds"], 6);
    assert_eq!(v["listeners"][0]["port"], 18008);
}
