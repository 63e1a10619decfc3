//! Criterion benches of hsbench's own hot paths: none of them may be the bottleneck of a run.
//! `cargo bench` prints throughput; figures go to the closing notes, never into tests.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hsbench::boot::MarkerMatcher;
use hsbench::dataset::plan::DatasetPlan;
use hsbench::metrics::new_latency_histogram;
use hsbench::scenario::DatasetSpec;
use hsbench::server::ServerProfile;

fn plan_generation(c: &mut Criterion) {
    let plan = DatasetPlan::new(DatasetSpec {
        max_room_members: 1_000,
        dm_pairs: 5_000,
        state_rooms: 20,
        state_events_per_room: 500,
        ..DatasetSpec::new(1, 100_000, 2_000, 10_000, 50)
    });
    // 200 ordinary rooms of the 100k-user spec: membership draws, timelines, receipts.
    let rooms: Vec<_> = plan.rooms().skip(1).take(200).collect();
    let events: u64 = rooms
        .iter()
        .map(|r| r.members.len() as u64 + r.timeline_len)
        .sum();
    let mut g = c.benchmark_group("dataset");
    g.throughput(Throughput::Elements(events));
    g.bench_function(
        "200 rooms of startup-100k: members + timeline + receipts",
        |b| {
            b.iter(|| {
                let mut n = 0usize;
                for r in &rooms {
                    let room = plan.room(r.index);
                    n += room.members.len();
                    n += plan.timeline(&room).len();
                    n += plan.receipts(&room).len();
                }
                black_box(n)
            })
        },
    );
    g.sample_size(10);
    let users: Vec<u64> = (0..10_000).collect();
    g.throughput(Throughput::Elements(users.len() as u64));
    g.bench_function("10k users of startup-100k", |b| {
        b.iter(|| black_box(users.iter().map(|&u| plan.user(u).devices).sum::<u32>()))
    });
    g.finish();
}

/// The direct import's per-event cost: canonical JSON, content hash, ed25519 signature and
/// reference hash (the event id) of a room-v12 message.
fn event_signing(c: &mut Criterion) {
    use hsbench::dataset::event::{EventFactory, SigningKey};
    let key = SigningKey::from_seed("bench", &[7u8; 32]).unwrap();
    let f = EventFactory::new("hsbench.local", &key);
    let mut g = c.benchmark_group("import");
    g.throughput(Throughput::Elements(1));
    g.bench_function("hash and sign one message event", |b| {
        let mut depth = 10;
        b.iter(|| {
            depth += 1;
            black_box(
                f.build(
                    Some("!room:hsbench.local"),
                    "m.room.message",
                    None,
                    "@hsb0000001:hsbench.local",
                    serde_json::json!({"msgtype": "m.text", "body": "the server is slow today again restart takes minutes"}),
                    depth,
                    1_795_462_982_368 + depth,
                    Some("$Kqbl9FF70tIkTVZml6A8yWHxrth8sds3vI_jev8_ASw"),
                    vec!["$ep_yD8Qmd-LAziJQRzpvJBH_OJmoqQtvhfRCai9APEg".into()],
                )
                .unwrap(),
            )
        })
    });
    g.finish();
}

fn log_matching(c: &mut Criterion) {
    let text = include_str!("../tests/data/synapse-1.163.2-boot-fresh-db.log");
    let lines: Vec<&str> = text.lines().collect();
    let profile = ServerProfile::synapse();
    let mut g = c.benchmark_group("boot");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("match markers in a recorded Synapse boot log", |b| {
        b.iter(|| {
            let mut m = MarkerMatcher::new(profile.clone(), 0.0);
            for (i, l) in lines.iter().enumerate() {
                m.observe(l, i as f64);
            }
            black_box(m.points().len())
        })
    });
    g.finish();
}

fn recording(c: &mut Criterion) {
    let mut g = c.benchmark_group("metrics");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("record 10k latencies into a sync recorder", |b| {
        let mut h = new_latency_histogram().into_sync();
        let mut rec = h.recorder();
        b.iter(|| {
            for i in 0..10_000u64 {
                rec.record(1_000 + (i * 7919) % 5_000_000).unwrap();
            }
        });
        drop(rec);
        h.refresh();
        black_box(h.len());
    });
    g.finish();
}

fn scheduling(c: &mut Criterion) {
    use hsbench::scenario::arrivals::{Arrivals, Timing};
    use std::time::Duration;
    let mut g = c.benchmark_group("schedule");
    g.throughput(Throughput::Elements(10_000));
    let ramp = Arrivals::Ramp {
        from: 10.0,
        to: 5_000.0,
        over_s: 60.0,
    };
    g.bench_function("10k intended start times of a ramp", |b| {
        b.iter(|| {
            let mut last = Duration::ZERO;
            for i in 0..10_000u64 {
                last = last.max(ramp.intended(black_box(i)));
            }
            black_box(last)
        });
    });
    // The per-request work of the open-model path: intended time, corrected and raw latency,
    // two recorders and an interval series.
    g.bench_function(
        "10k requests: schedule + corrected/raw record + interval",
        |b| {
            let mut corrected = new_latency_histogram().into_sync();
            let mut raw = new_latency_histogram().into_sync();
            let (mut rc, mut rr) = (corrected.recorder(), raw.recorder());
            let mut series =
                hsbench::metrics::IntervalSeries::new(Duration::from_millis(1000), 3600);
            let rate = Arrivals::Constant { rate: 2_000.0 };
            b.iter(|| {
                for i in 0..10_000u64 {
                    let intended = rate.intended(i);
                    let sent = intended + Duration::from_micros(i % 50);
                    let t = Timing {
                        intended,
                        sent,
                        done: sent + Duration::from_micros(800 + (i * 7919) % 100_000),
                    };
                    let c = t.corrected().as_micros() as u64;
                    rc.record(c).unwrap();
                    rr.record(t.raw().as_micros() as u64).unwrap();
                    series.record(t.done, c);
                }
            });
            drop((rc, rr));
            corrected.refresh();
            raw.refresh();
            black_box((corrected.len(), raw.len(), series.count()));
        },
    );
    g.finish();
}

/// The long-running workloads' recording path: clients record each finished request into the
/// histograms of the worker thread they run on, merged at the end (histograms stay
/// O(workers × endpoints), not O(clients), which is what lets 10k long-poll clients fit in
/// ~1 GiB). This measures how many requests per second that path takes, from 8 client tasks on
/// a 2-thread runtime, the merge included.
fn engine_collector(c: &mut Criterion) {
    use hsbench::load::engine::{Collector, Ep};
    use std::time::{Duration, Instant};
    const PER_TASK: u64 = 12_500;
    const TASKS: u64 = 8;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(PER_TASK * TASKS));
    g.sample_size(20);
    g.bench_function(
        "100k requests: Recorder::done → per-worker histograms, merged (8 tasks)",
        |b| {
            b.iter(|| {
                rt.block_on(async {
                    let origin = Instant::now();
                    let col = Collector::spawn(origin, Duration::from_millis(500));
                    let mut set = tokio::task::JoinSet::new();
                    for t in 0..TASKS {
                        let rec = col.recorder();
                        set.spawn(async move {
                            for i in 0..PER_TASK {
                                let ep = if i % 4 == 0 { Ep::Send } else { Ep::Sync };
                                let intended = origin + Duration::from_micros(i * 10 + t);
                                let sent = intended + Duration::from_micros(i % 50);
                                let done = sent + Duration::from_micros(800 + (i * 7919) % 100_000);
                                rec.start(ep);
                                rec.done(ep, intended, sent, done, None, 512, 128);
                            }
                        });
                    }
                    while set.join_next().await.is_some() {}
                    let r = col.finish().await;
                    black_box(r.eps[&Ep::Sync].completed())
                })
            });
        },
    );
    g.finish();
}

criterion_group!(
    benches,
    plan_generation,
    event_signing,
    log_matching,
    recording,
    scheduling,
    engine_collector
);
criterion_main!(benches);
