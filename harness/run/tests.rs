use super::*;
use crate::dataset::seed::Credentials;
use crate::util::exit::Exit;

#[test]
fn attach_resolves_a_serve_json_its_directory_or_a_url() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials.json");
    let c = Credentials {
        user_ids: Vec::new(),
        tokens: vec!["t0".into(), "t1".into()],
        room_ids: Vec::new(),
    };
    std::fs::write(&creds, serde_json::to_vec(&c).unwrap()).unwrap();
    let info = ServeInfo {
        base_url: "http://127.0.0.1:8008".into(),
        credentials: creds.clone(),
        server_pid: 1,
        run_dir: dir.path().into(),
    };
    std::fs::write(
        dir.path().join("serve.json"),
        serde_json::to_vec(&info).unwrap(),
    )
    .unwrap();
    let no_env = |_: &str| None;
    let target = dir.path().to_str().unwrap();
    let a = Attach::resolve(target, None, Some("1/2"), Some("1795473000"), no_env).unwrap();
    assert_eq!(a.base_url, "http://127.0.0.1:8008");
    assert_eq!(a.credentials.tokens, c.tokens);
    assert_eq!(a.shard, crate::load::shard::Shard { index: 1, count: 2 });
    assert_eq!(
        a.release_at,
        Some(std::time::UNIX_EPOCH + Duration::from_secs(1_795_473_000))
    );
    // The environment of an Indexed Job, and an RFC 3339 release time.
    let env = |k: &str| match k {
        "JOB_COMPLETION_INDEX" => Some("2".to_string()),
        "HSBENCH_SHARDS" => Some("3".to_string()),
        "HSBENCH_RELEASE_AT" => Some("2026-11-23T22:30:00Z".to_string()),
        _ => None,
    };
    let serve_json = dir.path().join("serve.json");
    let a = Attach::resolve(serve_json.to_str().unwrap(), None, None, None, env).unwrap();
    assert_eq!((a.shard.index, a.shard.count), (2, 3));
    assert!(a.release_at.is_some());
    // A URL needs --credentials; a path that is no serve.json is named.
    let e = Attach::resolve("http://127.0.0.1:1", None, None, None, no_env).unwrap_err();
    assert!(e.to_string().contains("--credentials"), "{e}");
    let a = Attach::resolve("http://127.0.0.1:1", Some(&creds), None, None, no_env).unwrap();
    assert_eq!(a.shard, crate::load::shard::Shard::WHOLE);
    let e = Attach::resolve("/nonexistent/x", None, None, None, no_env).unwrap_err();
    assert!(e.to_string().contains("is not a serve.json"), "{e}");
    assert_eq!(e.exit_code(), Exit::BadInput);
    let e = Attach::resolve(target, None, None, Some("soon"), no_env).unwrap_err();
    assert!(e.to_string().contains("--release-at \"soon\""), "{e}");
}
