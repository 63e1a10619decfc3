use super::*;

#[tokio::test]
async fn fitted_intervals_are_cut_to_the_span_and_bounded_by_the_capacity() {
    let origin = Instant::now();
    let c = Collector::spawn_with(
        origin,
        Intervals::Fitted {
            target: 30,
            capacity: 4,
        },
    );
    let r = c.recorder();
    let t = |ms: u64| origin + Duration::from_millis(ms);
    // Six answered over 3 s (the last two beyond the capacity) and one failure.
    for i in 0..6u64 {
        r.start(Ep::InitialSync);
        r.done(Ep::InitialSync, t(0), t(i), t(500 * i + 500), None, 10, 0);
    }
    r.start(Ep::InitialSync);
    r.done(
        Ep::InitialSync,
        t(0),
        t(0),
        t(100),
        Some(ErrorKind::Timeout),
        0,
        0,
    );
    let rec = c.finish().await;
    // The span of the kept completions is 2 s: 30 intervals of it round up to 100 ms.
    assert_eq!(rec.interval, Duration::from_millis(100));
    assert_eq!(rec.unplaced, 2);
    let s = &rec.eps[&Ep::InitialSync];
    assert_eq!((s.ok, s.completed(), s.bytes_in), (6, 7, 60));
    assert_eq!(
        s.corrected.len(),
        6,
        "the whole-run histogram has every answer"
    );
    assert_eq!(s.intervals_corrected.count(), 4);
    assert_eq!(s.intervals_corrected.interval, Duration::from_millis(100));
    assert_eq!(s.ok_per_interval.iter().sum::<u64>(), 4);
    assert_eq!(s.ok_per_interval[5], 1, "the first answer ended at 500 ms");
    // Its corrected latency counts from the intended start, its raw one from the send.
    let near = |v: u64, us: u64| v.abs_diff(us) < us / 500 + 2;
    assert!(near(s.intervals_corrected.hists[5].max(), 500_000));
    assert!(near(s.intervals_raw.hists[5].max(), 500_000));
    assert!(near(s.intervals_raw.hists[15].max(), 1_500_000 - 2_000));
}

#[tokio::test]
async fn collector_counts_and_matches_deliveries() {
    let origin = Instant::now();
    let c = Collector::spawn(origin, Duration::from_millis(100));
    let r = c.recorder();
    let t = |ms: u64| origin + Duration::from_millis(ms);
    for i in 0..10u64 {
        r.start(Ep::Send);
        r.done(
            Ep::Send,
            t(i * 10),
            t(i * 10 + 5),
            t(i * 10 + 20),
            None,
            100,
            300,
        );
    }
    r.start(Ep::Sync);
    r.done(
        Ep::Sync,
        t(0),
        t(0),
        t(250),
        Some(ErrorKind::Status(429, Some("M_LIMIT_EXCEEDED".into()))),
        50,
        0,
    );
    r.start(Ep::Sync); // never finished: cancelled
    // A delivery seen before the send's 200, one after, one of an unknown message.
    r.send(Msg::Delivered { seq: 1, at: t(30) });
    r.send(Msg::Sent {
        seq: 1,
        at: t(40),
        receivers: 2,
    });
    r.send(Msg::Delivered { seq: 1, at: t(140) });
    r.send(Msg::Delivered { seq: 9, at: t(150) });
    drop(r);
    let rec = c.finish().await;
    let eps = rec.endpoint_results(|_| "closed");
    let send = eps.iter().find(|e| e.name == "send").unwrap();
    assert_eq!((send.started, send.completed, send.ok), (10, 10, 10));
    assert_eq!(send.corrected.count, 10);
    assert!((send.corrected.max_ms - 20.0).abs() < 0.1);
    assert!((send.raw.max_ms - 15.0).abs() < 0.1);
    assert_eq!((send.bytes_in, send.bytes_out), (1000, 3000));
    let sync = eps.iter().find(|e| e.name == "sync").unwrap();
    assert_eq!((sync.started, sync.completed, sync.cancelled), (2, 1, 1));
    assert_eq!(sync.errors["http_429_M_LIMIT_EXCEEDED"], 1);
    assert_eq!(sync.peak_in_flight, 1);
    let d = rec.delivery_result();
    assert_eq!((d.messages, d.expected, d.delivered), (1, 2, 2));
    assert_eq!((d.before_send_ok, d.unmatched, d.missing), (1, 1, 0));
    assert!((d.latency.max_ms - 100.0).abs() < 0.1);
    assert_eq!(rec.deliveries.intervals.count(), 2);
    // Completions per interval, by completion time.
    assert_eq!(rec.eps[&Ep::Send].ok_per_interval, vec![8, 2]);
}

/// Clients on several worker threads: the merged histograms equal one histogram of every
/// request, and deliveries recorded on one worker match sends recorded on another.
#[test]
fn per_worker_recorders_merge_to_the_single_run() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let origin = Instant::now();
    let lat = |t: u64, i: u64| Duration::from_micros(100 + (t * 7919 + i * 104_729) % 900_000);
    let rec = rt.block_on(async {
        let c = Collector::spawn(origin, Duration::from_millis(50));
        let mut set = tokio::task::JoinSet::new();
        for t in 0..64u64 {
            let r = c.recorder();
            set.spawn(async move {
                for i in 0..200u64 {
                    let sent = origin + Duration::from_millis(i);
                    r.start(Ep::Sync);
                    r.done(Ep::Sync, sent, sent, sent + lat(t, i), None, 10, 1);
                    if i % 50 == 0 {
                        tokio::task::yield_now().await; // let the task change workers
                    }
                }
                // Task t sends message t; task t+1 (likely elsewhere) receives it.
                r.send(Msg::Sent {
                    seq: t,
                    at: origin,
                    receivers: 1,
                });
                r.send(Msg::Delivered {
                    seq: (t + 1) % 64,
                    at: origin + Duration::from_millis(t),
                });
            });
        }
        while set.join_next().await.is_some() {}
        c.finish().await
    });
    let mut single = new_latency_histogram();
    for t in 0..64u64 {
        for i in 0..200u64 {
            single.record(us(lat(t, i))).unwrap();
        }
    }
    let s = &rec.eps[&Ep::Sync];
    assert!(rec.workers >= 1);
    assert_eq!(s.corrected, single);
    assert_eq!(s.raw, single);
    assert_eq!(s.ok, 64 * 200);
    assert_eq!(s.ok_per_interval.iter().sum::<u64>(), 64 * 200);
    assert_eq!(s.intervals_corrected.count(), 64 * 200);
    assert_eq!((s.bytes_in, s.bytes_out), (64 * 200 * 10, 64 * 200));
    assert_eq!(rec.started[&Ep::Sync], 64 * 200);
    let d = rec.delivery_result();
    assert_eq!(
        (d.messages, d.expected, d.delivered, d.unmatched),
        (64, 64, 64, 0)
    );
    // A recorder of a finished collector starts afresh on a new one (no stale worker stats).
    let again = rt.block_on(async {
        let c = Collector::spawn(Instant::now(), Duration::from_millis(50));
        let r = c.recorder();
        tokio::spawn(async move {
            r.start(Ep::Send);
            r.done(Ep::Send, origin, origin, origin, None, 0, 0);
        })
        .await
        .unwrap();
        c.finish().await
    });
    assert_eq!(again.eps[&Ep::Sync].completed(), 0);
    assert_eq!(again.eps[&Ep::Send].completed(), 1);
}
