//! Sharding against real Synapse: `serve` keeps the server up, two shards attach and each fire
//! their slice of one herd at a common release time, `merge` combines their histograms; then two
//! shards run each of steady, triggered and catch-up, and `merge` times the deliveries that
//! crossed shards and computes the triggered herd's recovery over both.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use hsbench::dataset::seed::Credentials;
use hsbench::load::merge::merge_dirs;
use hsbench::load::shard::Shard;
use hsbench::metrics::read_histogram;
use hsbench::run::{Attach, RunError, RunOptions, ServeHooks, run_attached, serve};
use hsbench::scenario;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_of_every_workload_merge_into_the_whole() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sc = scenario::load(&manifest.join("tests/scenarios/tiny-shard.toml")).unwrap();
    let sandbox = common::Sandbox::new();
    let secrets = tempfile::tempdir().unwrap();
    let creds_path = secrets.path().join("nested/credentials.json");

    // The server, served until told to stop.
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let serve_opts = RunOptions {
        run_id: Some("serve".into()),
        ..sandbox.opts.clone()
    };
    let hooks = ServeHooks {
        credentials_out: creds_path.clone(),
        ready: Some(ready_tx),
        stop: stop_rx,
    };
    // The server and the shards run side by side in this task.
    let (served, info) = tokio::join!(serve(&sc, &serve_opts, hooks), async {
        let info = match ready_rx.await {
            Ok(info) => info,
            Err(_) => return None,
        };
        let checked = shards(&sc, &sandbox, &creds_path, &info).await;
        stop_tx.send(true).unwrap();
        Some((info, checked))
    });
    let out = served.unwrap();
    let (info, ()) = info.expect("serve reports readiness");
    // Stopped: the serve run ends complete and its server is gone.
    assert_eq!(out.result.status, hsbench::result::RunStatus::Complete);
    assert!(out.result.workload_boot.is_some());
    assert!(out.result.files.contains(&"serve.json".to_string()));
    // serve.json also lies beside the credentials, for shards to attach with.
    let beside: hsbench::run::ServeInfo =
        serde_json::from_slice(&std::fs::read(secrets.path().join("nested/serve.json")).unwrap())
            .unwrap();
    assert_eq!(beside.base_url, info.base_url);
    assert_eq!(beside.credentials, creds_path);
    // SAFETY: kill with signal 0 only probes whether the process exists.
    let alive = unsafe { libc::kill(info.server_pid, 0) } == 0;
    assert!(!alive, "server {} still running", info.server_pid);
}

async fn shards(
    sc: &scenario::Scenario,
    sandbox: &common::Sandbox,
    creds_path: &Path,
    info: &hsbench::run::ServeInfo,
) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(info.base_url.starts_with("http://127.0.0.1:"), "{info:?}");
    // The credentials are the owner's only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(creds_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let creds: Credentials = serde_json::from_slice(&std::fs::read(creds_path).unwrap()).unwrap();
    assert_eq!(creds.tokens.len(), 40);

    // Refused before any load: a remote URL, and a workload a slice cannot measure.
    let attach = |shard: Shard, url: &str, release_at| Attach {
        base_url: url.into(),
        credentials: creds.clone(),
        shard,
        release_at,
    };
    let opts = |id: &str| RunOptions {
        run_id: Some(id.into()),
        verify: false,
        ..sandbox.opts.clone()
    };
    // Shard 0 of two without a release time: refused before any load (exit 2), with this error.
    let refused = |sc: scenario::Scenario, id: &'static str| {
        let (base_url, attach, o) = (info.base_url.clone(), &attach, opts(id));
        async move {
            let e = run_attached(
                &sc,
                &o,
                attach(Shard { index: 0, count: 2 }, &base_url, None),
            )
            .await
            .unwrap_err();
            assert_eq!(e.exit_code().code(), 2, "{e}");
            e.to_string()
        }
    };
    // Shards 0 and 1 of two, run side by side and released together `lead` from now.
    let two_shards = |sc: scenario::Scenario, name: &'static str, lead: u64| {
        let (base_url, attach) = (info.base_url.clone(), &attach);
        let (o0, o1) = (opts(&format!("{name}-0")), opts(&format!("{name}-1")));
        async move {
            let release = SystemTime::now() + Duration::from_secs(lead);
            let (a, b) = tokio::join!(
                run_attached(
                    &sc,
                    &o0,
                    attach(Shard { index: 0, count: 2 }, &base_url, Some(release)),
                ),
                run_attached(
                    &sc,
                    &o1,
                    attach(Shard { index: 1, count: 2 }, &base_url, Some(release)),
                ),
            );
            (release, a.unwrap(), b.unwrap())
        }
    };
    let e = run_attached(
        sc,
        &opts("remote"),
        attach(Shard::WHOLE, "http://192.0.2.1:8008", None),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, RunError::Attach { .. }), "{e}");
    assert_eq!(e.exit_code().code(), 2);
    let load = scenario::load(&manifest.join("tests/scenarios/tiny-load.toml")).unwrap();
    let e = refused(load, "several-workloads").await;
    assert!(e.contains("fires one workload"), "{e}");
    // Two shards, released together 3 s from now.
    let (release, r0, r1) = two_shards(sc.clone(), "shard", 3).await;
    let release_ms = release
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1e3;
    for (out, index, clients) in [(&r0, 0u32, 13u64), (&r1, 1, 12)] {
        let shard = out.result.shard.as_ref().unwrap();
        assert_eq!((shard.index, shard.count), (index, 2));
        assert_eq!(shard.clients, 20); // 40 users, every other one
        assert!(out.result.boots.is_empty(), "attached runs boot nothing");
        // The attached server's version, asked of the server itself.
        assert_eq!(
            out.result.server.as_ref().unwrap().version,
            sc.server.version
        );
        let herd = out.result.herd.as_ref().unwrap();
        assert_eq!(herd.clients, clients);
        assert_eq!(herd.ok, clients, "{herd:?}");
        // Not released before the common time.
        assert!(
            herd.released_unix_ms.unwrap() >= release_ms - 1.0,
            "{herd:?}"
        );
        let h = read_histogram(&out.run_dir.join("herd-sync.hist")).unwrap();
        assert_eq!(h.len(), clients);
    }

    // Merged: one herd of 25, with the shards' extremes.
    let merged_dir = sandbox.opts.results_dir.join("merged");
    let m = merge_dirs(&[r0.run_dir.clone(), r1.run_dir.clone()], &merged_dir).unwrap();
    let whole = &m.histograms["herd-sync"];
    assert_eq!((whole.inputs, whole.summary.count), (2, 25));
    let (h0, h1) = (
        r0.result.herd.as_ref().unwrap(),
        r1.result.herd.as_ref().unwrap(),
    );
    assert_eq!(
        whole.summary.max_ms,
        h0.corrected.max_ms.max(h1.corrected.max_ms)
    );
    assert_eq!(
        read_histogram(&merged_dir.join("herd-sync.hist"))
            .unwrap()
            .len(),
        25
    );

    // Steady traffic in two shards: each long-polls 20 clients and sends half the schedule.
    let steady = scenario::load(&manifest.join("tests/scenarios/tiny-shard-steady.toml")).unwrap();
    let e = refused(steady.clone(), "steady-no-release").await;
    assert!(e.contains("--release-at"), "{e}");
    let (release, s0, s1) = two_shards(steady, "steady", 10).await;
    let release_ms = release
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1e3;
    let (mut expected, mut local, mut foreign, mut sends) = (0, 0, 0, 0);
    for out in [&s0, &s1] {
        let st = out.result.steady.as_ref().unwrap();
        assert_eq!(st.clients, 20, "every other one of the 40 clients");
        // Time zero is the common release time.
        assert!((st.origin_unix_ms - release_ms).abs() < 1.0, "{st:?}");
        let send = st.endpoints.iter().find(|e| e.name == "send").unwrap();
        // 8 s at 5/s: 40 messages, 20 per shard, all accepted.
        assert_eq!((send.started, send.ok), (20, 20), "{send:?}");
        let d = &st.deliveries;
        assert_eq!(d.messages, 20);
        assert!(
            d.foreign > 0,
            "the other shard's messages reach this one: {d:?}"
        );
        assert_eq!(d.unmatched, 0, "{d:?}");
        let h = read_histogram(&out.run_dir.join("steady-delivery.hist")).unwrap();
        assert_eq!(h.len(), d.delivered);
        let rows = |f: &str| {
            std::fs::read_to_string(out.run_dir.join(f))
                .unwrap()
                .lines()
                .count() as u64
                - 1
        };
        assert_eq!(rows("steady-sends.csv"), 20);
        assert_eq!(rows("steady-foreign-deliveries.csv"), d.foreign);
        expected += d.expected;
        local += d.delivered;
        foreign += d.foreign;
        sends += send.ok;
    }
    let merged_dir = sandbox.opts.results_dir.join("merged-steady");
    let m = merge_dirs(&[s0.run_dir.clone(), s1.run_dir.clone()], &merged_dir).unwrap();
    let cross = &m.cross_shard_deliveries["steady"];
    assert_eq!((cross.matched, cross.unmatched), (foreign, 0));
    // Every receiver of every message: the merged histogram holds each delivery once.
    let delivery = &m.histograms["steady-delivery"];
    assert_eq!(delivery.summary.count, local + foreign);
    assert_eq!(delivery.summary.count, expected);
    assert_eq!(m.histograms["steady-send"].summary.count, sends);

    // A triggered herd in two shards: shard 0 sends the trigger, both shards' clients react,
    // and the merge computes the recovery over every delivery.
    let trig = scenario::load(&manifest.join("tests/scenarios/tiny-shard-triggered.toml")).unwrap();
    let (_, t0, t1) = two_shards(trig, "triggered", 10).await;
    let (mut expected, mut local, mut foreign) = (0, 0, 0);
    for (out, index) in [(&t0, 0), (&t1, 1)] {
        let t = out.result.triggered.as_ref().unwrap();
        assert_eq!(t.clients, 15, "every other one of the 30 big-room members");
        // Only shard 0 sent the trigger; every client of both shards saw it and re-synced.
        let sent_trigger = t.endpoints.iter().any(|e| e.name == "trigger");
        assert_eq!(sent_trigger, index == 0, "{:?}", t.endpoints);
        assert_eq!(t.reacted_ok, 15, "{t:?}");
        let resync = t.endpoints.iter().find(|e| e.name == "resync").unwrap();
        assert_eq!(
            read_histogram(&out.run_dir.join("triggered-resync.hist"))
                .unwrap()
                .len(),
            resync.ok
        );
        assert!(t.deliveries.foreign > 0, "{:?}", t.deliveries);
        assert_eq!(t.deliveries.unmatched, 0, "{:?}", t.deliveries);
        expected += t.deliveries.expected;
        local += t.deliveries.delivered;
        foreign += t.deliveries.foreign;
    }
    let merged_dir = sandbox.opts.results_dir.join("merged-triggered");
    let m = merge_dirs(&[t0.run_dir.clone(), t1.run_dir.clone()], &merged_dir).unwrap();
    assert_eq!(m.cross_shard_deliveries["triggered"].matched, foreign);
    assert_eq!(
        m.histograms["triggered-delivery"].summary.count,
        local + foreign
    );
    assert_eq!(m.histograms["triggered-delivery"].summary.count, expected);
    assert_eq!(m.histograms["triggered-reaction"].summary.count, 30);
    let rec = m.triggered_recovery.as_ref().expect("a merged recovery");
    let shard0 = &t0.result.triggered.as_ref().unwrap().recovery;
    assert_eq!(rec.trigger_s, shard0.trigger_s);
    assert!(rec.baseline_per_s > 0.0, "{rec:?}");
    assert!(rec.time_to_recover_s.is_some(), "{rec:?}");

    // Catch-up in two shards: each writes half the backlog, then its readers read all of it.
    let catchup =
        scenario::load(&manifest.join("tests/scenarios/tiny-shard-catchup.toml")).unwrap();
    let (_, c0, c1) = two_shards(catchup, "catchup", 10).await;
    for out in [&c0, &c1] {
        let c = out.result.catchup.as_ref().unwrap();
        assert_eq!(c.readers, 3);
        assert_eq!(c.caught_up, 3, "each reader saw the whole backlog: {c:?}");
        assert_eq!(c.messages_read, 3 * 120);
    }
    let merged_dir = sandbox.opts.results_dir.join("merged-catchup");
    let m = merge_dirs(&[c0.run_dir.clone(), c1.run_dir.clone()], &merged_dir).unwrap();
    assert_eq!(m.histograms["catchup-reader"].summary.count, 6);
    assert_eq!(m.histograms["catchup-receipt"].summary.count, 6);
}
