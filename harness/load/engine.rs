//! The recording side of the long-running workloads (triggered herd, steady, catch-up).
//!
//! Per-worker recorders, merged: a client records a finished request synchronously into the
//! recorders of the worker thread it runs on (created on the thread's first record, guarded by
//! a lock only that thread and the final merge ever take): per endpoint an HdrHistogram
//! `sync::Recorder` each for corrected and raw latency, plus the worker's own interval series
//! and counters. [`CollectorHandle::finish`] drops the recorders (each hands its histogram to
//! the endpoint's `SyncHistogram`), refreshes those, and adds the workers' interval series. Memory therefore grows with the runtime's worker threads, never
//! with the clients (10k long-poll clients on two workers share two sets of histograms), and
//! recording costs no channel hop and no contention: every instant is taken by the client before
//! it records.
//!
//! Per endpoint each worker keeps, apart and labelled:
//! - `corrected`: latency from the request's *intended* start (the open-model schedule for
//!   senders; the moment the client decided to send for closed-loop clients),
//! - `raw`: latency from the moment the request was actually sent,
//! - both again per interval (latency over time, and the recovery computation),
//! - completions, errors by kind (HTTP status + Matrix `errcode`, timeout, connect, transport,
//!   body, decode), bytes in and out.
//!
//! Deliveries (a sent message seen by a receiver's `/sync`) are matched to the send's 200
//! through a matcher sharded by sequence number, and recorded as delivery latency by the
//! receiver's worker.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hdrhistogram::sync::SyncHistogram;

use crate::metrics::{IntervalSeries, LatencySummary, new_latency_histogram};
use crate::scenario::SyncProtocol;

/// Most intervals an interval series holds (later completions land in the last one).
pub const MAX_INTERVALS: usize = 20_000;

/// Simplified sliding sync (MSC4186), as results name it.
pub const SLIDING_SYNC: &str = "POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync";

/// The endpoints the workloads call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ep {
    /// Incremental long-poll `/sync` (closed loop per client).
    Sync,
    /// A client's full re-sync after the trigger (closed loop, retried).
    Resync,
    /// `PUT …/send/m.room.message` (open model).
    Send,
    /// `PUT …/state/<trigger type>` (one request).
    Trigger,
    /// A first `/sync`: a herd client's (initial or full-state), a catch-up reader's.
    InitialSync,
    /// `GET …/messages` back through a backlog.
    Messages,
    /// `POST …/receipt/m.read/<event>`.
    Receipt,
    /// A simplified sliding sync request (MSC4186): a list load or a long poll.
    SlidingSync,
}

impl Ep {
    pub const ALL: [Ep; 8] = [
        Ep::Sync,
        Ep::Resync,
        Ep::Send,
        Ep::Trigger,
        Ep::InitialSync,
        Ep::Messages,
        Ep::Receipt,
        Ep::SlidingSync,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// Short name: the key in results and the file stem.
    pub fn name(self) -> &'static str {
        match self {
            Ep::Sync => "sync",
            Ep::Resync => "resync",
            Ep::Send => "send",
            Ep::Trigger => "trigger",
            Ep::InitialSync => "initial_sync",
            Ep::Messages => "messages",
            Ep::Receipt => "receipt",
            Ep::SlidingSync => "sliding_sync",
        }
    }

    /// Method and path.
    pub fn http(self) -> &'static str {
        match self {
            Ep::Sync | Ep::Resync | Ep::InitialSync => "GET /_matrix/client/v3/sync",
            Ep::Send => "PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}",
            Ep::Trigger => "PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}",
            Ep::Messages => "GET /_matrix/client/v3/rooms/{roomId}/messages",
            Ep::Receipt => "POST /_matrix/client/v3/rooms/{roomId}/receipt/m.read/{eventId}",
            Ep::SlidingSync => SLIDING_SYNC,
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// An HTTP error status with the Matrix `errcode` when the body had one.
    Status(u16, Option<String>),
    /// The client's timeout expired.
    Timeout,
    /// No connection could be made.
    Connect,
    /// The connection failed mid-request (reset, closed).
    Transport,
    /// The response body broke off.
    Body,
    /// A 200 whose body hsbench could not read (e.g. no `next_batch`).
    Decode,
}

impl ErrorKind {
    pub fn label(&self) -> String {
        match self {
            ErrorKind::Status(s, Some(code)) => format!("http_{s}_{code}"),
            ErrorKind::Status(s, None) => format!("http_{s}"),
            ErrorKind::Timeout => "timeout".into(),
            ErrorKind::Connect => "connect".into(),
            ErrorKind::Transport => "transport".into(),
            ErrorKind::Body => "body".into(),
            ErrorKind::Decode => "decode".into(),
        }
    }

    pub fn of(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            ErrorKind::Timeout
        } else if e.is_connect() {
            ErrorKind::Connect
        } else if e.is_body() || e.is_decode() {
            ErrorKind::Body
        } else {
            ErrorKind::Transport
        }
    }
}

/// What a client tells the recorder besides finished requests.
#[derive(Debug)]
pub enum Msg {
    /// Message `seq` was accepted (its send's 200 arrived at `at`); `receivers` syncing
    /// clients should see it.
    Sent {
        seq: u64,
        at: Instant,
        receivers: u32,
    },
    /// A receiver's `/sync` returned message `seq` at `at`.
    Delivered { seq: u64, at: Instant },
    /// A receiver was told of a gap (an incremental answer's timeline was `limited`) and paged
    /// back through it with `/messages`, finding `backfilled` messages it had not seen (each
    /// also sent as [`Msg::Delivered`], at the page that returned it).
    Gap { backfilled: u64 },
    /// A client finished reacting to the trigger `took` after seeing it (retries included).
    /// A client's reaction to the trigger ended; `retries`: its attempts after a failure.
    Reacted {
        took: Duration,
        ok: bool,
        retries: u32,
    },
}

/// Per-endpoint counters shared with the clients (started requests and requests in flight).
#[derive(Debug, Default)]
struct Gauges {
    started: [AtomicU64; Ep::ALL.len()],
    in_flight: [AtomicI64; Ep::ALL.len()],
    peak: [AtomicI64; Ep::ALL.len()],
}

/// Shards of the send/delivery matcher (by sequence number): a delivery locks one of them for
/// a hash-map lookup, so receivers on different workers rarely meet.
const MATCH_SHARDS: usize = 64;

/// Sends seen so far and deliveries that arrived before their send's 200, for one shard of
/// sequence numbers.
#[derive(Default)]
struct Matcher {
    messages: u64,
    expected: u64,
    sent: HashMap<u64, Instant>,
    early: HashMap<u64, Vec<Instant>>,
}

/// What one worker thread recorded, merged into [`Recorded`] at the end: per endpoint an
/// HdrHistogram `sync::Recorder` each for corrected and raw latency (its own local histogram,
/// handed to the endpoint's `SyncHistogram` when the recorder is dropped), and its own interval
/// series and counters (`eps`, whose whole-run histograms stay empty).
struct WorkerStats {
    recorders: BTreeMap<Ep, [hdrhistogram::sync::Recorder<u64>; 2]>,
    eps: BTreeMap<Ep, EpStats>,
    delivery_latency: Histogram<u64>,
    delivery_intervals: IntervalSeries,
    delivered: u64,
    before_send_ok: u64,
    gaps: u64,
    backfilled: u64,
    reactions: Reactions,
    /// [`Intervals::Fitted`]: each answered request's (endpoint, end since the origin,
    /// corrected µs, raw µs), placed into intervals by [`CollectorHandle::finish`].
    samples: Vec<(Ep, Duration, u64, u64)>,
}

/// How a collector cuts its run into intervals (latency over time, throughput per interval).
#[derive(Debug, Clone, Copy)]
pub enum Intervals {
    /// Fixed intervals from the origin (the long-running workloads: known before they start).
    Every(Duration),
    /// About `target` intervals over the span of the completions, chosen when the collector
    /// finishes (the herd: its length is what it measures). Until then each answered request
    /// keeps its three instants, at most `capacity` of them (a herd's clients): later ones are
    /// in the whole-run histograms but not in the intervals, and counted in
    /// [`Recorded::unplaced`].
    Fitted { target: u32, capacity: usize },
}

impl Intervals {
    /// The interval the workers record with (a fitted one is chosen at the end).
    fn recording(self) -> Duration {
        match self {
            Intervals::Every(d) => d,
            Intervals::Fitted { .. } => Duration::from_secs(10),
        }
    }
}

impl WorkerStats {
    fn new(interval: Duration, sync: &BTreeMap<Ep, [SyncHistogram<u64>; 2]>) -> Self {
        Self {
            recorders: sync
                .iter()
                .map(|(&e, [c, r])| (e, [c.recorder(), r.recorder()]))
                .collect(),
            eps: Ep::ALL
                .iter()
                .map(|&e| (e, EpStats::counters(interval)))
                .collect(),
            delivery_latency: new_latency_histogram(),
            delivery_intervals: IntervalSeries::new(interval, MAX_INTERVALS),
            delivered: 0,
            before_send_ok: 0,
            gaps: 0,
            backfilled: 0,
            reactions: Reactions {
                took: new_latency_histogram(),
                ok: 0,
                gave_up: 0,
                retries: 0,
            },
            samples: Vec::new(),
        }
    }
}

/// What every recorder of one collector shares.
struct Shared {
    id: u64,
    origin: Instant,
    interval: Duration,
    plan: Intervals,
    /// [`Intervals::Fitted`]: samples that may still be kept (may go below zero).
    samples_left: AtomicI64,
    gauges: Gauges,
    /// Every worker's stats, registered by the worker's first record.
    workers: std::sync::Mutex<Vec<Arc<WorkerSlot>>>,
    /// Per endpoint, corrected and raw: the readers of the workers' `sync::Recorder`s.
    sync: std::sync::Mutex<BTreeMap<Ep, [SyncHistogram<u64>; 2]>>,
    matchers: Vec<std::sync::Mutex<Matcher>>,
}

/// One worker's stats for one collector; emptied by [`CollectorHandle::finish`], which frees
/// them at once even while the thread keeps its (then empty) slot until it records again.
type WorkerSlot = std::sync::Mutex<Option<WorkerStats>>;

static NEXT_COLLECTOR: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's stats, per live collector (id). Entries of finished collectors are
    /// dropped the next time the thread records.
    static LOCAL: std::cell::RefCell<Vec<(u64, Arc<WorkerSlot>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl Shared {
    /// Run `f` on the calling worker thread's stats (created and registered on first use).
    /// The lock is the worker's own: only [`CollectorHandle::finish`] ever takes it too.
    fn with_local(&self, f: impl FnOnce(&mut WorkerStats)) {
        let slot = LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            if let Some((_, s)) = l.iter().find(|(id, _)| *id == self.id) {
                return s.clone();
            }
            // A finished collector's list is gone: its entries are the only owners left.
            l.retain(|(_, s)| Arc::strong_count(s) > 1);
            let stats =
                WorkerStats::new(self.interval, &self.sync.lock().expect("sync histograms"));
            let s = Arc::new(std::sync::Mutex::new(Some(stats)));
            self.workers.lock().expect("worker list").push(s.clone());
            l.push((self.id, s.clone()));
            s
        });
        // Recorded after the collector finished: not counted (its clients were done).
        if let Some(w) = slot.lock().expect("worker stats").as_mut() {
            f(w);
        }
    }

    fn matcher(&self, seq: u64) -> std::sync::MutexGuard<'_, Matcher> {
        self.matchers[(seq % MATCH_SHARDS as u64) as usize]
            .lock()
            .expect("matcher")
    }

    fn since_origin(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.origin)
    }
}

/// A client's handle to the collector. Cheap to clone. Recording is synchronous and lands in
/// the calling worker thread's own histograms (no channel, no shared histogram).
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
}

impl Recorder {
    /// Count a request as started (call right before sending it).
    pub fn start(&self, ep: Ep) {
        let i = ep.index();
        let g = &self.shared.gauges;
        g.started[i].fetch_add(1, Ordering::Relaxed);
        let now = g.in_flight[i].fetch_add(1, Ordering::Relaxed) + 1;
        g.peak[i].fetch_max(now, Ordering::Relaxed);
    }

    /// Record a request that [`start`](Self::start) counted.
    #[allow(clippy::too_many_arguments)]
    pub fn done(
        &self,
        ep: Ep,
        intended: Instant,
        sent: Instant,
        done: Instant,
        error: Option<ErrorKind>,
        bytes_in: u64,
        bytes_out: u64,
    ) {
        self.shared.gauges.in_flight[ep.index()].fetch_sub(1, Ordering::Relaxed);
        let at = self.shared.since_origin(done);
        let interval = self.shared.interval;
        let c = us(done.saturating_duration_since(intended));
        let r = us(done.saturating_duration_since(sent));
        // Fitted intervals: keep the instants while the budget lasts.
        let keep = match self.shared.plan {
            Intervals::Every(_) => None,
            Intervals::Fitted { .. } => Some(
                error.is_none() && self.shared.samples_left.fetch_sub(1, Ordering::Relaxed) > 0,
            ),
        };
        self.shared.with_local(|w| {
            let s = w.eps.get_mut(&ep).expect("every endpoint has stats");
            s.bytes_in += bytes_in;
            s.bytes_out += bytes_out;
            // Latencies are of answered requests only: a timeout's "latency" is the timeout.
            match error {
                None => {
                    if let Some([rc, rr]) = w.recorders.get_mut(&ep) {
                        let _ = rc.record(c);
                        let _ = rr.record(r);
                    }
                    s.ok += 1;
                    match keep {
                        None => s.record_interval(at, c, r, interval),
                        Some(true) => w.samples.push((ep, at, c, r)),
                        Some(false) => {}
                    }
                }
                Some(e) => *s.errors.entry(e.label()).or_default() += 1,
            }
        });
    }

    /// Record a send, a delivery or a reaction.
    pub fn send(&self, msg: Msg) {
        let sh = &self.shared;
        match msg {
            Msg::Sent { seq, at, receivers } => {
                let early = {
                    let mut m = sh.matcher(seq);
                    m.messages += 1;
                    m.expected += receivers as u64;
                    m.sent.insert(seq, at);
                    m.early.remove(&seq)
                };
                if let Some(early) = early {
                    for seen in early {
                        sh.with_local(|w| {
                            w.before_send_ok += u64::from(seen < at);
                        });
                        self.deliver(seen, at);
                    }
                }
            }
            Msg::Delivered { seq, at } => {
                let ok_at = {
                    let mut m = sh.matcher(seq);
                    match m.sent.get(&seq) {
                        Some(&ok_at) => Some(ok_at),
                        None => {
                            m.early.entry(seq).or_default().push(at);
                            None
                        }
                    }
                };
                if let Some(ok_at) = ok_at {
                    self.deliver(at, ok_at);
                }
            }
            Msg::Gap { backfilled } => sh.with_local(|w| {
                w.gaps += 1;
                w.backfilled += backfilled;
            }),
            Msg::Reacted { took, ok, retries } => sh.with_local(|w| {
                let _ = w.reactions.took.record(us(took));
                w.reactions.retries += u64::from(retries);
                if ok {
                    w.reactions.ok += 1;
                } else {
                    w.reactions.gave_up += 1;
                }
            }),
        }
    }

    fn deliver(&self, seen: Instant, ok_at: Instant) {
        let lat = us(seen.saturating_duration_since(ok_at));
        let at = self.shared.since_origin(seen);
        self.shared.with_local(|w| {
            w.delivered += 1;
            let _ = w.delivery_latency.record(lat);
            w.delivery_intervals.record(at, lat);
        });
    }

    /// Requests of `ep` in flight right now.
    pub fn in_flight(&self, ep: Ep) -> i64 {
        self.shared.gauges.in_flight[ep.index()].load(Ordering::Relaxed)
    }
}

/// One endpoint's histograms and counters.
pub struct EpStats {
    pub corrected: Histogram<u64>,
    pub raw: Histogram<u64>,
    pub intervals_corrected: IntervalSeries,
    pub intervals_raw: IntervalSeries,
    /// Successful completions per interval (by completion time).
    pub ok_per_interval: Vec<u64>,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl EpStats {
    fn new(interval: Duration) -> Self {
        Self {
            corrected: new_latency_histogram(),
            raw: new_latency_histogram(),
            intervals_corrected: IntervalSeries::new(interval, MAX_INTERVALS),
            intervals_raw: IntervalSeries::new(interval, MAX_INTERVALS),
            ok_per_interval: Vec::new(),
            ok: 0,
            errors: BTreeMap::new(),
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// A worker's: interval series and counters; its whole-run latencies go to its
    /// `sync::Recorder`s, so these two stay empty (and small: they resize on demand).
    fn counters(interval: Duration) -> Self {
        Self {
            corrected: Histogram::new(3).expect("valid sigfig"),
            raw: Histogram::new(3).expect("valid sigfig"),
            ..Self::new(interval)
        }
    }

    /// Place one answered request, ended `at` after the origin, into its interval.
    fn record_interval(&mut self, at: Duration, corrected: u64, raw: u64, interval: Duration) {
        self.intervals_corrected.record(at, corrected);
        self.intervals_raw.record(at, raw);
        let i = ((at.as_nanos() / interval.as_nanos()) as usize).min(MAX_INTERVALS - 1);
        if self.ok_per_interval.len() <= i {
            self.ok_per_interval.resize(i + 1, 0);
        }
        self.ok_per_interval[i] += 1;
    }

    /// Requests that ended: answered (the histograms' count) or failed.
    pub fn completed(&self) -> u64 {
        self.ok + self.errors.values().sum::<u64>()
    }

    /// Add another worker's figures of the same endpoint.
    fn merge(&mut self, o: &EpStats) {
        let _ = self.corrected.add(&o.corrected);
        let _ = self.raw.add(&o.raw);
        self.intervals_corrected.merge(&o.intervals_corrected);
        self.intervals_raw.merge(&o.intervals_raw);
        if self.ok_per_interval.len() < o.ok_per_interval.len() {
            self.ok_per_interval.resize(o.ok_per_interval.len(), 0);
        }
        for (a, b) in self.ok_per_interval.iter_mut().zip(&o.ok_per_interval) {
            *a += b;
        }
        self.ok += o.ok;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
    }
}

/// Deliveries: matched against sends.
pub struct Deliveries {
    /// Latency from the send's 200 to the receiver's `/sync` response (0 when the sync
    /// answered before the send's 200 did).
    pub latency: Histogram<u64>,
    /// The same per interval, by delivery time.
    pub intervals: IntervalSeries,
    /// Messages accepted by the server.
    pub messages: u64,
    /// Receivers those messages should reach.
    pub expected: u64,
    pub delivered: u64,
    /// Deliveries seen before the send's 200 (recorded as 0).
    pub before_send_ok: u64,
    /// Gaps receivers were told of (`limited` timelines in incremental answers).
    pub gaps: u64,
    /// Deliveries found by paging back through those gaps.
    pub backfilled: u64,
    /// Deliveries of a message seen twice by one receiver, or of an unknown message.
    pub duplicates_or_unknown: u64,
    /// Deliveries never matched with a send.
    unmatched: u64,
    /// Every accepted send: sequence number and the instant of its 200.
    pub sent: Vec<(u64, Instant)>,
    /// Every delivery never matched with a send of this process: sequence number and instant.
    pub unmatched_seen: Vec<(u64, Instant)>,
}

/// Reactions to a trigger: from seeing it to a successful re-sync.
pub struct Reactions {
    pub took: Histogram<u64>,
    pub ok: u64,
    pub gave_up: u64,
    /// Attempts after a failed one, over every client.
    pub retries: u64,
}

/// Everything the recorders recorded, merged over the workers.
pub struct Recorded {
    pub origin: Instant,
    pub interval: Duration,
    pub eps: BTreeMap<Ep, EpStats>,
    pub started: BTreeMap<Ep, u64>,
    pub peak_in_flight: BTreeMap<Ep, i64>,
    pub deliveries: Deliveries,
    pub reactions: Reactions,
    /// Samples of the re-syncs in flight, every [`GAUGE_STEP`] from the origin.
    pub resync_gauge: Vec<u32>,
    /// Worker threads that recorded (each with its own histograms, merged here).
    pub workers: usize,
    /// [`Intervals::Fitted`]: answered requests beyond its capacity, in the whole-run
    /// histograms but in no interval.
    pub unplaced: u64,
}

/// Sampling step of the in-flight gauge.
pub const GAUGE_STEP: Duration = Duration::from_millis(10);
/// Most gauge samples kept (an hour).
const MAX_GAUGE: usize = 360_000;

/// The collector: spawn with [`Collector::spawn`], hand [`Recorder`]s to the clients, and
/// [`CollectorHandle::finish`] once every client is done.
pub struct CollectorHandle {
    recorder: Recorder,
    gauge_task: tokio::task::JoinHandle<Vec<u32>>,
    stop_gauge: Arc<std::sync::atomic::AtomicBool>,
}

pub struct Collector;

impl Collector {
    /// Start a collector whose intervals of length `interval` count from `origin`.
    pub fn spawn(origin: Instant, interval: Duration) -> CollectorHandle {
        Self::spawn_with(origin, Intervals::Every(interval))
    }

    /// Start a collector whose intervals count from `origin`, cut as `plan` says.
    pub fn spawn_with(origin: Instant, plan: Intervals) -> CollectorHandle {
        let capacity = match plan {
            Intervals::Every(_) => 0,
            Intervals::Fitted { capacity, .. } => capacity,
        };
        let shared = Arc::new(Shared {
            id: NEXT_COLLECTOR.fetch_add(1, Ordering::Relaxed),
            origin,
            interval: plan.recording(),
            plan,
            samples_left: AtomicI64::new(i64::try_from(capacity).unwrap_or(i64::MAX)),
            gauges: Gauges::default(),
            workers: std::sync::Mutex::new(Vec::new()),
            sync: std::sync::Mutex::new(
                Ep::ALL
                    .iter()
                    .map(|&e| {
                        (
                            e,
                            [
                                new_latency_histogram().into_sync(),
                                new_latency_histogram().into_sync(),
                            ],
                        )
                    })
                    .collect(),
            ),
            matchers: (0..MATCH_SHARDS)
                .map(|_| std::sync::Mutex::new(Matcher::default()))
                .collect(),
        });
        let stop_gauge = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let gauge_task = {
            let stop = stop_gauge.clone();
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut tick = tokio::time::interval_at(origin.into(), GAUGE_STEP);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while !stop.load(Ordering::Relaxed) && samples.len() < MAX_GAUGE {
                    tick.tick().await;
                    let n = shared.gauges.in_flight[Ep::Resync.index()].load(Ordering::Relaxed);
                    samples.push(n.max(0) as u32);
                }
                samples
            })
        };
        CollectorHandle {
            recorder: Recorder { shared },
            gauge_task,
            stop_gauge,
        }
    }
}

impl CollectorHandle {
    pub fn recorder(&self) -> Recorder {
        self.recorder.clone()
    }

    /// Merge every worker's histograms into one [`Recorded`]. Call once the clients are done:
    /// a request recorded after this is not counted.
    pub async fn finish(self) -> Recorded {
        self.stop_gauge.store(true, Ordering::Relaxed);
        let resync_gauge = self.gauge_task.await.unwrap_or_default();
        let sh = &self.recorder.shared;
        let workers = std::mem::take(&mut *sh.workers.lock().expect("worker list"));
        let workers: Vec<WorkerStats> = workers
            .iter()
            .filter_map(|w| w.lock().expect("worker stats").take())
            .collect();
        let (interval, unplaced) = match sh.plan {
            Intervals::Every(d) => (d, 0),
            Intervals::Fitted { target, capacity } => {
                let kept: usize = workers.iter().map(|w| w.samples.len()).sum();
                let span = workers
                    .iter()
                    .flat_map(|w| w.samples.iter().map(|s| s.1))
                    .max()
                    .unwrap_or_default();
                let answered: u64 = workers
                    .iter()
                    .flat_map(|w| w.eps.values().map(|s| s.ok))
                    .sum();
                debug_assert!(kept <= capacity);
                (
                    IntervalSeries::interval_for(span, target),
                    answered.saturating_sub(kept as u64),
                )
            }
        };
        let mut r = Recorded {
            origin: sh.origin,
            interval,
            eps: Ep::ALL
                .iter()
                .map(|&e| (e, EpStats::new(interval)))
                .collect(),
            started: BTreeMap::new(),
            peak_in_flight: BTreeMap::new(),
            deliveries: Deliveries {
                latency: new_latency_histogram(),
                intervals: IntervalSeries::new(interval, MAX_INTERVALS),
                messages: 0,
                expected: 0,
                delivered: 0,
                before_send_ok: 0,
                gaps: 0,
                backfilled: 0,
                duplicates_or_unknown: 0,
                unmatched: 0,
                sent: Vec::new(),
                unmatched_seen: Vec::new(),
            },
            reactions: Reactions {
                took: new_latency_histogram(),
                ok: 0,
                gave_up: 0,
                retries: 0,
            },
            resync_gauge,
            workers: workers.len(),
            unplaced,
        };
        for w in workers {
            for (ep, s) in &w.eps {
                r.eps.get_mut(ep).expect("every endpoint").merge(s);
            }
            for &(ep, at, c, raw) in &w.samples {
                let s = r.eps.get_mut(&ep).expect("every endpoint");
                s.record_interval(at, c, raw, interval);
            }
            let d = &mut r.deliveries;
            let _ = d.latency.add(&w.delivery_latency);
            d.intervals.merge(&w.delivery_intervals);
            d.delivered += w.delivered;
            d.before_send_ok += w.before_send_ok;
            d.gaps += w.gaps;
            d.backfilled += w.backfilled;
            let _ = r.reactions.took.add(&w.reactions.took);
            r.reactions.ok += w.reactions.ok;
            r.reactions.gave_up += w.reactions.gave_up;
            r.reactions.retries += w.reactions.retries;
            // Dropping `w` drops its recorders, which hand their histograms over.
        }
        for (ep, [c, raw]) in sh.sync.lock().expect("sync histograms").iter_mut() {
            c.refresh();
            raw.refresh();
            let s = r.eps.get_mut(ep).expect("every endpoint");
            s.corrected = (**c).clone();
            s.raw = (**raw).clone();
        }
        for m in &sh.matchers {
            let mut m = m.lock().expect("matcher");
            let d = &mut r.deliveries;
            d.messages += m.messages;
            d.expected += m.expected;
            d.unmatched += m.early.values().map(|v| v.len() as u64).sum::<u64>();
            d.sent.extend(m.sent.drain());
            for (seq, seen) in m.early.drain() {
                d.unmatched_seen.extend(seen.into_iter().map(|t| (seq, t)));
            }
        }
        r.deliveries.sent.sort_unstable();
        r.deliveries.unmatched_seen.sort_unstable();
        for ep in Ep::ALL {
            let i = ep.index();
            r.started
                .insert(ep, sh.gauges.started[i].load(Ordering::Relaxed));
            r.peak_in_flight
                .insert(ep, sh.gauges.peak[i].load(Ordering::Relaxed));
        }
        r
    }
}

fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

impl Recorded {
    /// Deliveries never matched with a send (the send failed, or its 200 was never seen).
    pub fn unmatched_deliveries(&self) -> u64 {
        self.deliveries.unmatched
    }

    /// The per-endpoint results of the endpoints that were used.
    pub fn endpoint_results(&self, model: impl Fn(Ep) -> &'static str) -> Vec<EndpointResult> {
        self.endpoint_results_over(SyncProtocol::V2, model)
    }

    /// [`endpoint_results`](Self::endpoint_results) of clients that speak `protocol`: over
    /// sliding sync, every sync role (`initial_sync`, `sync`, `resync`) is a sliding sync
    /// request and names that path.
    pub fn endpoint_results_over(
        &self,
        protocol: SyncProtocol,
        model: impl Fn(Ep) -> &'static str,
    ) -> Vec<EndpointResult> {
        Ep::ALL
            .iter()
            .filter(|ep| self.started.get(ep).copied().unwrap_or(0) > 0)
            .map(|&ep| {
                let s = &self.eps[&ep];
                let started = self.started.get(&ep).copied().unwrap_or(0);
                EndpointResult {
                    name: ep.name().into(),
                    endpoint: match (protocol, ep) {
                        (SyncProtocol::Sliding, Ep::Sync | Ep::Resync | Ep::InitialSync) => {
                            SLIDING_SYNC
                        }
                        _ => ep.http(),
                    }
                    .into(),
                    model: model(ep).into(),
                    started,
                    completed: s.completed(),
                    cancelled: started.saturating_sub(s.completed()),
                    ok: s.ok,
                    errors: s.errors.clone(),
                    bytes_in: s.bytes_in,
                    bytes_out: s.bytes_out,
                    peak_in_flight: self.peak_in_flight.get(&ep).copied().unwrap_or(0) as u64,
                    corrected: LatencySummary::of(&s.corrected),
                    raw: LatencySummary::of(&s.raw),
                }
            })
            .collect()
    }

    /// The delivery figures.
    pub fn delivery_result(&self) -> DeliveryResult {
        let d = &self.deliveries;
        DeliveryResult {
            messages: d.messages,
            expected: d.expected,
            delivered: d.delivered,
            missing: d.expected.saturating_sub(d.delivered),
            before_send_ok: d.before_send_ok,
            gaps: d.gaps,
            backfilled: d.backfilled,
            unmatched: self.unmatched_deliveries(),
            foreign: 0,
            latency: LatencySummary::of(&d.latency),
        }
    }
}

/// One endpoint of a workload, as the result reports it.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct EndpointResult {
    /// Short name (`sync`, `resync`, `send`, …): the key of the histogram files.
    pub name: String,
    pub endpoint: String,
    /// How requests were issued: `open` (from a schedule; corrected latency counts from the
    /// schedule) or `closed` (each client sends after its previous answer; corrected equals raw
    /// unless stated otherwise).
    pub model: String,
    /// Requests sent.
    pub started: u64,
    /// Requests that ended: `ok` plus every error.
    pub completed: u64,
    /// Requests still in flight when the workload ended (long polls cut at the end).
    pub cancelled: u64,
    pub ok: u64,
    /// Errors by kind: `http_<status>[_<errcode>]`, `timeout`, `connect`, `transport`, `body`,
    /// `decode`.
    pub errors: BTreeMap<String, u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Most requests of this endpoint in flight at once.
    pub peak_in_flight: u64,
    /// Latency of the answered (2xx) requests from the intended start (coordinated-omission
    /// corrected). Failed requests are counted in `errors`, never here.
    pub corrected: LatencySummary,
    /// Latency of the answered requests from the actual send.
    pub raw: LatencySummary,
}

/// Messages sent and their deliveries to syncing receivers.
#[derive(
    Debug, Clone, Default, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
pub struct DeliveryResult {
    /// Messages the server accepted (200).
    pub messages: u64,
    /// Deliveries due: for each message, the syncing members of its room.
    pub expected: u64,
    /// Deliveries seen (a receiver's `/sync` returned the message).
    pub delivered: u64,
    /// Due but never seen by the end of the workload (drain included).
    pub missing: u64,
    /// Seen before the send's own 200 arrived (recorded as 0 ms).
    pub before_send_ok: u64,
    /// Gaps the server told receivers of: incremental answers whose room timeline was
    /// `limited` (more new events than the answer carried). A receiver pages back through each
    /// with `/messages` (the `messages` endpoint) to where it was, as a client filling the gap.
    #[serde(default)]
    pub gaps: u64,
    /// Of `delivered`, the deliveries found by paging back through gaps (their latency runs to
    /// the `/messages` page that returned them).
    #[serde(default)]
    pub backfilled: u64,
    /// Seen, but of a message whose send never got a 200.
    pub unmatched: u64,
    /// A shard's deliveries of messages another shard sent: their latency is not known here;
    /// `hsbench merge` matches them with that shard's sends (`<workload>-sends.csv` and
    /// `<workload>-foreign-deliveries.csv`).
    #[serde(default)]
    pub foreign: u64,
    /// From the send's 200 until the receiver's `/sync` response ended.
    pub latency: LatencySummary,
}

#[cfg(test)]
mod tests;
