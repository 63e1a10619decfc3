//! Long-running sync workloads: the triggered herd and steady traffic.
//!
//! Both put `clients` users in long-poll incremental `/sync` loops (closed loop per client, as
//! real clients are) and send messages on an open-model schedule. Every message carries its
//! sequence number (`org.hsbench.seq`), so each receiver's `/sync` answer says which messages it
//! delivered; delivery latency runs from the send's 200 to the end of that answer.
//!
//! The triggered herd adds the matrix.org failure: after a baseline, one client sends a state
//! event into the big room; every client that sees it re-syncs (a `full_state` sync from its
//! token, or an initial sync), with a client timeout and retries, and then resumes long-polling
//! from the re-sync's token. Re-sync answers can be megabytes: they are streamed and scanned for
//! the token and the sequence numbers, never held.
//!
//! Timing is taken at the HTTP layer: a request's `done` instant is taken when the last byte of
//! its answer arrived, before anything is decoded.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ruma::api::IncomingResponseExt;
use ruma::api::client::message::send_message_event;
use ruma::api::client::state::send_state_event;
use ruma::api::client::sync::sync_events;
use ruma::serde::Raw;
use ruma::{OwnedRoomId, OwnedTransactionId};

use crate::load::engine::{Collector, Ep, ErrorKind, Msg, Recorder, Scanner, read_body};
use crate::load::recovery::{IntervalObs, Recovery, RecoveryRule};
use crate::load::workload::{
    HarnessLoad, ShardRun, WorkloadData, WorkloadError, bytes_out, harness_load, message_content,
    new_client, nonce, shard_deliveries, status_error, unix_ms,
};
use crate::matrix::MatrixClient;
use crate::metrics::LatencySummary;
use crate::scenario::arrivals::Arrivals;
use crate::scenario::{SteadySpec, SyncKind, TriggeredSpec};

/// The trigger's event type.
pub const TRIGGER_TYPE: &str = "org.hsbench.trigger";

/// A triggered herd's outcome.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct TriggeredResult {
    pub clients: u64,
    pub reaction: SyncKind,
    pub chatter_rate: f64,
    pub model: String,
    /// Every endpoint used: `sync` (long polls), `resync`, `send` (chatter), `trigger`.
    pub endpoints: Vec<crate::load::engine::EndpointResult>,
    /// The chatter's deliveries (the recovery signal).
    pub deliveries: crate::load::engine::DeliveryResult,
    pub recovery: Recovery,
    /// Why the trigger was not accepted (`timeout`, `http_…`) when the server refused it or did
    /// not answer within `resync_timeout`; the observation went on without a storm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_error: Option<String>,
    /// When the first client saw the trigger in a sync answer, seconds after the origin.
    #[serde(default)]
    pub trigger_seen_s: Option<f64>,
    /// Interrupted by a signal: the figures are of what was measured before it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// Clients that saw the trigger and re-synced successfully / gave up after the retries.
    pub reacted_ok: u64,
    pub reacted_gave_up: u64,
    /// From seeing the trigger to the end of the successful re-sync (retries included).
    pub reaction_time: LatencySummary,
    /// Re-sync requests beyond one per client: the amplification by retries.
    pub resync_retries: u64,
    /// Most re-syncs in flight at once.
    pub peak_concurrent_resyncs: u64,
    /// From the trigger until re-syncs in flight first reached 90% of their peak.
    pub time_to_saturation_s: Option<f64>,
    /// Length of one interval of the interval log, ms.
    pub interval_ms: f64,
    /// Wall time from the origin (start of the baseline) to the end of the observation.
    pub wall_s: f64,
    /// Preparation (since tokens), not timed.
    pub prepare_ms: f64,
    /// The origin, Unix milliseconds (places the workload on the server's timelines).
    pub origin_unix_ms: f64,
    pub harness: HarnessLoad,
}

/// Steady traffic's outcome.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct SteadyResult {
    pub clients: u64,
    pub senders: u64,
    pub arrivals: Arrivals,
    pub model: String,
    /// `sync` (long polls) and `send`.
    pub endpoints: Vec<crate::load::engine::EndpointResult>,
    pub deliveries: crate::load::engine::DeliveryResult,
    /// Messages per second the schedule asked for / the server accepted, over the duration.
    pub intended_per_s: f64,
    pub achieved_per_s: f64,
    /// How long the senders sent (the schedule's length), seconds after the origin.
    #[serde(default)]
    pub send_duration_s: f64,
    /// Interrupted by a signal: the figures are of what was measured before it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    pub interval_ms: f64,
    pub wall_s: f64,
    pub prepare_ms: f64,
    pub origin_unix_ms: f64,
    pub harness: HarnessLoad,
}

/// Everything a sync-loop client shares with the others.
struct Shared {
    client: MatrixClient,
    rec: Recorder,
    stop: AtomicBool,
    poll_timeout: Duration,
    reaction: Option<Reaction>,
    /// Deliveries seen so far (for the drain; the collector's count is authoritative).
    delivered: AtomicU64,
    /// When the first client saw the trigger.
    trigger_seen: std::sync::Mutex<Option<Instant>>,
}

#[derive(Clone, Copy)]
struct Reaction {
    kind: SyncKind,
    timeout: Duration,
    retries: u32,
    retry_delay: Duration,
}

/// Just what hsbench reads from a timeline event.
#[derive(serde::Deserialize)]
struct Probe {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    content: ProbeContent,
}

#[derive(serde::Deserialize, Default)]
struct ProbeContent {
    #[serde(rename = "org.hsbench.seq")]
    seq: Option<u64>,
}

/// Receivers dedupe deliveries over their last few hundred messages (an initial re-sync returns
/// recent messages again).
const SEEN: usize = 512;

fn fresh(seen: &mut VecDeque<u64>, seq: u64) -> bool {
    if seen.contains(&seq) {
        return false;
    }
    if seen.len() == SEEN {
        seen.pop_front();
    }
    seen.push_back(seq);
    true
}

/// One client's long-poll loop, until `stop`.
async fn sync_loop(shared: Arc<Shared>, token: String, mut since: String) {
    let mut seen: VecDeque<u64> = VecDeque::with_capacity(SEEN);
    let rec = &shared.rec;
    // A client reacts to the trigger once (later answers may mention it again, in state).
    let mut reacted = false;
    while !shared.stop.load(Ordering::Relaxed) {
        let mut req = sync_events::v3::Request::new();
        req.since = Some(since.clone());
        req.timeout = Some(shared.poll_timeout);
        let Ok(mut request) = shared.client.build(req, Some(&token)) else {
            return;
        };
        *request.timeout_mut() = Some(shared.poll_timeout + Duration::from_secs(30));
        let out = bytes_out(&request);
        rec.start(Ep::Sync);
        let sent = Instant::now();
        let result = shared.client.http().execute(request).await;
        let (error, n_in, body, done) = match result {
            Err(e) => (Some(ErrorKind::of(&e)), 0, Vec::new(), Instant::now()),
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let (n, body, err) = read_body(&mut resp, usize::MAX, None).await;
                let done = Instant::now();
                let err = err.or_else(|| (status != 200).then(|| status_error(status, &body)));
                (err, n, body, done)
            }
        };
        // Decode after the timing: what the client learns from the answer.
        let mut error = error;
        let mut trigger = false;
        let mut seqs = Vec::new();
        if error.is_none() {
            match decode_sync(&body) {
                Some((next, s, t)) => {
                    since = next;
                    seqs = s;
                    trigger = t;
                }
                None => error = Some(ErrorKind::Decode),
            }
        }
        let failed = error.is_some();
        rec.done(Ep::Sync, sent, sent, done, error, n_in, out);
        for seq in seqs {
            if fresh(&mut seen, seq) {
                shared.delivered.fetch_add(1, Ordering::Relaxed);
                rec.send(Msg::Delivered { seq, at: done });
            }
        }
        if failed {
            // A failing server is not hammered in a tight loop (what SDKs do too).
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        if trigger
            && !reacted
            && let Some(r) = shared.reaction
        {
            reacted = true;
            {
                let mut first = shared.trigger_seen.lock().expect("not poisoned");
                if first.is_none_or(|t| done < t) {
                    *first = Some(done);
                }
            }
            if let Some(next) = resync(&shared, &token, &since, r, done, &mut seen).await {
                since = next;
            }
        }
    }
}

/// The naive client's reaction to the trigger: re-sync, retrying; the new token on success.
async fn resync(
    shared: &Shared,
    token: &str,
    since: &str,
    r: Reaction,
    seen_at: Instant,
    seen: &mut VecDeque<u64>,
) -> Option<String> {
    let rec = &shared.rec;
    for attempt in 0..=r.retries {
        if attempt > 0 {
            tokio::time::sleep(r.retry_delay).await;
        }
        if shared.stop.load(Ordering::Relaxed) {
            return None;
        }
        let mut req = sync_events::v3::Request::new();
        req.timeout = Some(Duration::ZERO);
        if r.kind == SyncKind::FullState {
            req.since = Some(since.to_string());
            req.full_state = true;
        }
        let Ok(mut request) = shared.client.build(req, Some(token)) else {
            return None;
        };
        *request.timeout_mut() = Some(r.timeout);
        let out = bytes_out(&request);
        rec.start(Ep::Resync);
        let sent = Instant::now();
        let mut scan = Scanner::default();
        let (error, n_in, done) = match shared.client.http().execute(request).await {
            Err(e) => (Some(ErrorKind::of(&e)), 0, Instant::now()),
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let keep = if status == 200 { 0 } else { 4096 };
                let (n, kept, err) = read_body(&mut resp, keep, Some(&mut scan)).await;
                let done = Instant::now();
                let err = err.or_else(|| (status != 200).then(|| status_error(status, &kept)));
                let err = err.or_else(|| scan.next_batch.is_none().then_some(ErrorKind::Decode));
                (err, n, done)
            }
        };
        let ok = error.is_none();
        // Corrected: from the moment the client saw the trigger (retries and waits included).
        rec.done(Ep::Resync, seen_at, sent, done, error, n_in, out);
        if ok {
            for seq in std::mem::take(&mut scan.seqs) {
                if fresh(seen, seq) {
                    shared.delivered.fetch_add(1, Ordering::Relaxed);
                    rec.send(Msg::Delivered { seq, at: done });
                }
            }
            rec.send(Msg::Reacted {
                took: done - seen_at,
                ok: true,
            });
            return scan.next_batch;
        }
    }
    rec.send(Msg::Reacted {
        took: seen_at.elapsed(),
        ok: false,
    });
    None
}

/// `(next_batch, sequence numbers, trigger seen)` of an incremental sync answer, decoded with
/// ruma's response type.
fn decode_sync(body: &[u8]) -> Option<(String, Vec<u64>, bool)> {
    let resp = http::Response::builder().status(200).body(body).ok()?;
    let sync = sync_events::v3::Response::try_from_http_response(resp).ok()?;
    let mut seqs = Vec::new();
    let mut trigger = false;
    for room in sync.rooms.join.values() {
        for ev in &room.timeline.events {
            if let Ok(p) = ev.deserialize_as_unchecked::<Probe>() {
                if p.kind == TRIGGER_TYPE {
                    trigger = true;
                }
                if let Some(s) = p.content.seq {
                    seqs.push(s);
                }
            }
        }
    }
    // A limited timeline may carry the trigger in the state section only.
    if !trigger && contains(body, TRIGGER_TYPE.as_bytes()) {
        trigger = true;
    }
    Some((sync.next_batch, seqs, trigger))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Since tokens for `tokens`, a few at a time.
async fn since_tokens(
    client: &MatrixClient,
    tokens: &[String],
) -> Result<Vec<String>, WorkloadError> {
    use futures::StreamExt;
    let got: Vec<(usize, Result<String, String>)> =
        futures::stream::iter(tokens.iter().enumerate())
            .map(|(i, t)| async move { (i, crate::load::herd::since_token(client, t).await) })
            .buffer_unordered(16)
            .collect()
            .await;
    let mut out = vec![String::new(); tokens.len()];
    for (i, r) in got {
        out[i] = r.map_err(|message| WorkloadError::Setup {
            what: "since token".into(),
            message,
        })?;
    }
    Ok(out)
}

/// One message of a schedule: who sends it where, and how many syncing clients should see it.
#[derive(Clone)]
struct Route {
    sender: usize,
    room: OwnedRoomId,
    receivers: u32,
}

/// Send message `seq` by `route` and tell the collector.
async fn send_message(
    client: &MatrixClient,
    rec: &Recorder,
    token: &str,
    route: &Route,
    seq: u64,
    nonce: &str,
    intended: Instant,
) {
    let txn: OwnedTransactionId = format!("hsb-{nonce}-{seq}").into();
    let req = send_message_event::v3::Request::new_raw(
        route.room.clone(),
        txn,
        ruma::events::MessageLikeEventType::RoomMessage,
        message_content(seq, nonce),
    );
    let Ok(mut request) = client.build(req, Some(token)) else {
        return;
    };
    // An overloaded server must not hold a workload open indefinitely: a send unanswered after
    // this long is a `timeout` error.
    *request.timeout_mut() = Some(SEND_TIMEOUT);
    let out = bytes_out(&request);
    rec.start(Ep::Send);
    let sent = Instant::now();
    let (error, n_in, done) = match client.http().execute(request).await {
        Err(e) => (Some(ErrorKind::of(&e)), 0, Instant::now()),
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let (n, kept, err) = read_body(&mut resp, 4096, None).await;
            let done = Instant::now();
            (
                err.or_else(|| (status != 200).then(|| status_error(status, &kept))),
                n,
                done,
            )
        }
    };
    let ok = error.is_none();
    rec.done(Ep::Send, intended, sent, done, error, n_in, out);
    if ok {
        rec.send(Msg::Sent {
            seq,
            at: done,
            receivers: route.receivers,
        });
    }
}

/// Run messages on an open-model schedule from `origin` until `end`: message `i` is due at
/// `origin + arrivals.intended(i)`, sent then whether or not earlier ones have answered.
#[allow(clippy::too_many_arguments)]
async fn dispatch(
    client: MatrixClient,
    rec: Recorder,
    tokens: Arc<Vec<String>>,
    routes: Arc<Vec<Route>>,
    arrivals: Arrivals,
    origin: Instant,
    end: Instant,
    nonce: Arc<str>,
    seq_base: u64,
    shard: crate::load::shard::Shard,
) -> u64 {
    let mut set = tokio::task::JoinSet::new();
    let mut i = 0u64;
    // Sends leave within microseconds of their intended times, not on tokio's millisecond ticks.
    let mut timer = crate::load::clock::PreciseTimer::new();
    loop {
        let intended = origin + arrivals.intended(i);
        if intended >= end {
            break;
        }
        // A shard sends its share of the one schedule: messages i with i % count == index.
        if i % shard.count as u64 != shard.index as u64 {
            i += 1;
            continue;
        }
        timer.sleep_until(intended).await;
        let route = routes[(i as usize) % routes.len()].clone();
        let (client, rec, tokens, nonce) =
            (client.clone(), rec.clone(), tokens.clone(), nonce.clone());
        set.spawn(async move {
            send_message(
                &client,
                &rec,
                &tokens[route.sender],
                &route,
                seq_base + i,
                &nonce,
                intended,
            )
            .await;
        });
        // Reap finished sends so the set stays as small as the requests in flight.
        while set.try_join_next().is_some() {}
        i += 1;
    }
    while set.join_next().await.is_some() {}
    i
}

/// One task per client; client `i` of `n` starts its first long poll `ramp · i / n` after now.
fn spawn_clients(
    shared: &Arc<Shared>,
    tokens: &[String],
    since: Vec<String>,
    ramp: Duration,
) -> tokio::task::JoinSet<()> {
    let mut set = tokio::task::JoinSet::new();
    let start = Instant::now();
    let n = tokens.len().max(1) as f64;
    for (i, (t, s)) in tokens.iter().zip(since).enumerate() {
        let (shared, t) = (shared.clone(), t.clone());
        let at = start + ramp.mul_f64(i as f64 / n);
        set.spawn(async move {
            if !ramp.is_zero() {
                tokio::time::sleep_until(at.into()).await;
            }
            sync_loop(shared, t, s).await
        });
    }
    set
}

/// Longest wait for a message send's answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Sleep until `t`; false when a signal (SIGINT, SIGTERM, SIGHUP) came first.
async fn sleep_or_interrupt(t: Instant) -> bool {
    tokio::select! {
        _ = tokio::time::sleep_until(t.into()) => true,
        _ = crate::util::interrupt::interrupted() => false,
    }
}

/// Longest wait for the chatter's last deliveries after a triggered herd's observation.
const TRIGGERED_DRAIN: Duration = Duration::from_secs(15);

/// How long clients get to park in their first long poll before the origin.
const SETTLE: Duration = Duration::from_millis(1500);

/// Long-poll clients parked and a collector running: what the triggered herd and steady
/// traffic start from.
struct Started {
    client: MatrixClient,
    shared: Arc<Shared>,
    clients: tokio::task::JoinSet<()>,
    collector: crate::load::engine::CollectorHandle,
    /// The workload's time zero (the clients had [`SETTLE`] to park their first long poll).
    origin: Instant,
    origin_wall: std::time::SystemTime,
    prepare_ms: f64,
}

/// Fetch since tokens for `tokens` (timed apart as preparation), start the collector and one
/// long-poll loop per token.
async fn start_long_polls(
    base_url: &str,
    tokens: &[String],
    poll_timeout: Duration,
    connect_ramp: Duration,
    reaction: Option<Reaction>,
    interval: Duration,
    release: Option<ShardRun>,
) -> Result<Started, WorkloadError> {
    let client = new_client(base_url, tokens.len())?;
    let prep = Instant::now();
    let since = since_tokens(&client, tokens).await?;
    let prepare_ms = prep.elapsed().as_secs_f64() * 1000.0;
    let lead = connect_ramp + SETTLE;
    let (origin, origin_wall) = match release {
        None => (Instant::now() + lead, std::time::SystemTime::now() + lead),
        // A shard: time zero is the common release time; the clients come online before it.
        Some(s) => {
            let doing = format!(
                "preparing ({:.1} s), for its connect ramp and {} s to settle",
                prepare_ms / 1000.0,
                SETTLE.as_secs_f64()
            );
            let origin = s.origin(lead, &doing)?;
            tokio::time::sleep_until((origin - lead).into()).await;
            (origin, s.release_at)
        }
    };
    let collector = Collector::spawn(origin, interval);
    let shared = Arc::new(Shared {
        client: client.clone(),
        rec: collector.recorder(),
        stop: AtomicBool::new(false),
        poll_timeout,
        reaction,
        delivered: AtomicU64::new(0),
        trigger_seen: std::sync::Mutex::new(None),
    });
    let clients = spawn_clients(&shared, tokens, since, connect_ramp);
    Ok(Started {
        client,
        shared,
        clients,
        collector,
        origin,
        origin_wall,
        prepare_ms,
    })
}

/// Run a triggered herd: `tokens[..clients]` are big-room members; `tokens[0]` sends the
/// chatter and the trigger.
pub async fn run_triggered(
    base_url: &str,
    tokens: &[String],
    big_room: &OwnedRoomId,
    spec: &TriggeredSpec,
    shard: Option<ShardRun>,
) -> Result<(TriggeredResult, WorkloadData), WorkloadError> {
    let m = spec.clients as usize;
    let part = ShardRun::part(shard);
    let local = part.slice(&tokens[..m]);
    let reaction = Reaction {
        kind: spec.reaction,
        timeout: spec.resync_timeout,
        retries: spec.retries,
        retry_delay: spec.retry_delay,
    };
    let Started {
        client,
        shared,
        mut clients,
        collector,
        origin,
        origin_wall,
        prepare_ms,
    } = start_long_polls(
        base_url,
        &local,
        spec.poll_timeout,
        spec.connect_ramp,
        Some(reaction),
        spec.interval,
        shard,
    )
    .await?;
    let seq_base = ShardRun::seq_base(shard);
    let cpu_before = crate::metrics::self_usage();

    let end = origin + spec.baseline + spec.observe;
    // Chatter goes on past the observation for a window's length: otherwise the last windows
    // would lack the deliveries still in flight at the end and read as a throughput drop.
    let chatter_end = end + spec.hold.max(Duration::from_secs(2));
    let routes = Arc::new(vec![Route {
        sender: 0,
        room: big_room.clone(),
        receivers: m as u32,
    }]);
    let chatter = tokio::spawn(dispatch(
        client.clone(),
        collector.recorder(),
        Arc::new(tokens[..1].to_vec()),
        routes,
        Arrivals::Constant {
            rate: spec.chatter_rate,
        },
        origin,
        chatter_end,
        nonce(),
        seq_base,
        part,
    ));

    // The trigger: sent by one process only (shard 0); the other shards' clients see it.
    let t_trigger = origin + spec.baseline;
    // A signal ends the workload early (marked partial) with what it measured so far.
    let mut chatter = chatter;
    let mut partial = !sleep_or_interrupt(t_trigger).await;
    let trigger_sent = if part.index == 0 {
        Instant::now()
    } else {
        t_trigger
    };
    let mut trigger_error = None;
    if part.index == 0 && !partial {
        let rec = collector.recorder();
        // Integers only: room versions reject floats in events.
        let content = serde_json::json!({"reason": "hsbench triggered herd", "at_ms": unix_ms(std::time::SystemTime::now()) as u64});
        let req = send_state_event::v3::Request::new_raw(
            big_room.clone(),
            ruma::events::StateEventType::from(TRIGGER_TYPE),
            String::new(),
            Raw::from_json_string(content.to_string()).expect("valid JSON"),
        );
        let mut request = client.build(req, Some(&tokens[0]))?;
        // The trigger waits at most the re-sync timeout.
        *request.timeout_mut() = Some(spec.resync_timeout);
        let out = bytes_out(&request);
        rec.start(Ep::Trigger);
        let sent = Instant::now();
        let (error, n_in) = match client.http().execute(request).await {
            Err(e) => (Some(ErrorKind::of(&e)), 0),
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let (n, kept, err) = read_body(&mut resp, 4096, None).await;
                (
                    err.or_else(|| (status != 200).then(|| status_error(status, &kept))),
                    n,
                )
            }
        };
        let done = Instant::now();
        // A server that cannot take the trigger is a finding, not a harness failure: the
        // refusal is recorded (an error of the `trigger` endpoint, which the error gate sees)
        // and the observation goes on, so every figure of the overloaded server is kept.
        trigger_error = error.as_ref().map(ErrorKind::label);
        rec.done(Ep::Trigger, t_trigger, sent, done, error, n_in, out);
    }

    let scheduled = if partial {
        0
    } else {
        tokio::select! {
            n = &mut chatter => n.unwrap_or(0),
            _ = crate::util::interrupt::interrupted() => {
                partial = true;
                0
            }
        }
    };
    chatter.abort();
    partial = partial || !sleep_or_interrupt(end).await;
    // Drain: the last chatter messages still reach their receivers (after the observation:
    // not part of the recovery computation).
    let due = scheduled * local.len() as u64;
    let drain_end = Instant::now() + TRIGGERED_DRAIN;
    while !partial && shared.delivered.load(Ordering::Relaxed) < due && Instant::now() < drain_end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = if partial {
        Instant::now().min(end) - origin
    } else {
        end - origin
    };
    let harness = harness_load(&cpu_before, Instant::now() - origin);
    let trigger_seen_s = shared
        .trigger_seen
        .lock()
        .expect("not poisoned")
        .map(|t| t.saturating_duration_since(origin).as_secs_f64());
    shared.stop.store(true, Ordering::Relaxed);
    clients.abort_all();
    while clients.join_next().await.is_some() {}
    drop(shared);
    let recorded = collector.finish().await;

    let trigger_at = trigger_sent.saturating_duration_since(origin);
    let n_intervals = ((wall.as_secs_f64() / spec.interval.as_secs_f64()) + 1e-9).floor() as usize;
    let hists = &recorded.deliveries.intervals.hists;
    let obs: Vec<IntervalObs<'_>> = (0..n_intervals)
        .map(|i| IntervalObs {
            deliveries: hists.get(i).map_or(0, |h| h.len()),
            latency: hists.get(i),
        })
        .collect();
    let recovery = crate::load::recovery::compute(
        &obs,
        spec.interval,
        trigger_at,
        RecoveryRule {
            tolerance: spec.tolerance,
            hold: spec.hold,
            slack: spec.slack,
        },
    );
    let gauge = &recorded.resync_gauge;
    let peak = recorded
        .peak_in_flight
        .get(&Ep::Resync)
        .copied()
        .unwrap_or(0)
        .max(0) as u64;
    let sampled_peak = gauge.iter().copied().max().unwrap_or(0);
    let time_to_saturation_s = (sampled_peak > 0).then(|| {
        let at = gauge
            .iter()
            .position(|&n| n as f64 >= 0.9 * sampled_peak as f64)
            .unwrap_or(0);
        (at as f64 * crate::load::engine::GAUGE_STEP.as_secs_f64() - trigger_at.as_secs_f64())
            .max(0.0)
    });
    let (deliveries, shard_log) = shard_deliveries(&recorded, origin_wall, seq_base, shard);
    let reacted = recorded.reactions.ok + recorded.reactions.gave_up;
    let resync_started = recorded.started.get(&Ep::Resync).copied().unwrap_or(0);
    let result = TriggeredResult {
        clients: local.len() as u64,
        reaction: spec.reaction,
        chatter_rate: spec.chatter_rate,
        model: "closed loop per client (long-poll sync, then re-sync with retries on the trigger); chatter and trigger open (from their schedule)".into(),
        endpoints: recorded.endpoint_results(|ep| match ep {
            Ep::Send | Ep::Trigger => "open",
            Ep::Resync => "closed; corrected from the moment the client saw the trigger",
            _ => "closed",
        }),
        deliveries,
        recovery,
        trigger_error,
        trigger_seen_s,
        partial,
        reacted_ok: recorded.reactions.ok,
        reacted_gave_up: recorded.reactions.gave_up,
        reaction_time: LatencySummary::of(&recorded.reactions.took),
        resync_retries: resync_started.saturating_sub(reacted),
        peak_concurrent_resyncs: peak,
        time_to_saturation_s,
        interval_ms: spec.interval.as_secs_f64() * 1000.0,
        wall_s: wall.as_secs_f64(),
        prepare_ms,
        origin_unix_ms: unix_ms(origin_wall),
        harness,
    };
    Ok((
        result,
        WorkloadData {
            recorded,
            origin: origin_wall,
            shard_log,
            extra: Vec::new(),
        },
    ))
}

/// Rooms each user of `0..clients` is in, from the dataset plan, as `(room index, members
/// among the clients)`.
pub fn rooms_of_clients(
    plan: &crate::dataset::plan::DatasetPlan,
    clients: u64,
) -> BTreeMap<u64, Vec<(u64, u32)>> {
    let mut by_user: BTreeMap<u64, Vec<(u64, u32)>> = BTreeMap::new();
    for room in plan.rooms() {
        let syncing = room.members.iter().filter(|&&u| u < clients).count() as u32;
        for &u in &room.members {
            if u < clients {
                by_user.entry(u).or_default().push((room.index, syncing));
            }
        }
    }
    by_user
}

/// Run steady traffic: `tokens[..clients]` long-poll; the first `senders` send into their rooms.
///
/// Sharded (`shard`), this process long-polls only its slice of the clients (`j % count ==
/// index`) and sends its share of the one schedule (messages `i % count == index`), with
/// sequence numbers counted from the common release time. `tokens` are then every user's. A
/// delivery of another shard's message is kept as `foreign` (seq and time) for `hsbench merge`,
/// which matches it with that shard's send.
pub async fn run_steady(
    base_url: &str,
    tokens: &[String],
    room_ids: &[OwnedRoomId],
    plan: &crate::dataset::plan::DatasetPlan,
    spec: &SteadySpec,
    shard: Option<ShardRun>,
) -> Result<(SteadyResult, WorkloadData), WorkloadError> {
    let k = spec.clients as usize;
    let part = ShardRun::part(shard);
    let by_user = rooms_of_clients(plan, spec.clients);
    // This shard's receivers per room (all of them unsharded).
    let local_receivers: BTreeMap<u64, u64> = plan
        .rooms()
        .map(|room| {
            let n = room
                .members
                .iter()
                .filter(|&&u| u < spec.clients && u % part.count as u64 == part.index as u64)
                .count() as u64;
            (room.index, n)
        })
        .collect();
    // Round robin over senders, and for each sender over its rooms.
    let mut routes = Vec::new();
    let mut route_local = Vec::new();
    let per_sender: Vec<&Vec<(u64, u32)>> =
        (0..spec.senders).filter_map(|s| by_user.get(&s)).collect();
    if per_sender.is_empty() {
        return Err(WorkloadError::Setup {
            what: "steady senders".into(),
            message: "no sender is a member of any room".into(),
        });
    }
    let longest = per_sender.iter().map(|r| r.len()).max().unwrap_or(0);
    for round in 0..longest {
        for (s, rooms) in (0..spec.senders).filter_map(|s| by_user.get(&s).map(|r| (s, r))) {
            let (room, receivers) = rooms[round % rooms.len()];
            routes.push(Route {
                sender: s as usize,
                room: room_ids[room as usize].clone(),
                receivers,
            });
            route_local.push(local_receivers.get(&room).copied().unwrap_or(0));
        }
    }
    let receivers = part.slice(&tokens[..k]);

    let Started {
        client,
        shared,
        mut clients,
        collector,
        origin,
        origin_wall,
        prepare_ms,
    } = start_long_polls(
        base_url,
        &receivers,
        spec.poll_timeout,
        spec.connect_ramp,
        None,
        spec.interval,
        shard,
    )
    .await?;
    let cpu_before = crate::metrics::self_usage();
    let end = origin + spec.duration;
    // Sequence numbers unique to this workload run (messages of an earlier workload that a
    // client still sees are never taken for this one's), and common to all its shards.
    let seq_base = ShardRun::seq_base(shard);
    let mut partial = false;
    let expected: u64 = {
        let sending = dispatch(
            client.clone(),
            collector.recorder(),
            Arc::new(tokens[..spec.senders as usize].to_vec()),
            Arc::new(routes.clone()),
            spec.arrivals,
            origin,
            end,
            nonce(),
            seq_base,
            part,
        );
        // A signal ends the workload early (marked partial) with what it measured so far.
        let scheduled = tokio::select! {
            n = sending => n,
            _ = crate::util::interrupt::interrupted() => {
                partial = true;
                0
            }
        };
        // Deliveries due to this process's receivers for every message scheduled (by any
        // shard; failed sends are not due: the drain only waits, the recorder counts exactly).
        (0..scheduled)
            .map(|i| route_local[(i as usize) % routes.len()])
            .sum()
    };
    // Drain: wait for the last deliveries.
    let drain_end = Instant::now() + spec.drain;
    while !partial
        && shared.delivered.load(Ordering::Relaxed) < expected
        && Instant::now() < drain_end
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = Instant::now() - origin;
    let harness = harness_load(&cpu_before, wall);
    shared.stop.store(true, Ordering::Relaxed);
    clients.abort_all();
    while clients.join_next().await.is_some() {}
    drop(shared);
    let recorded = collector.finish().await;
    let accepted = recorded.eps[&Ep::Send].ok;
    let (deliveries, shard_log) = shard_deliveries(&recorded, origin_wall, seq_base, shard);
    let result = SteadyResult {
        clients: receivers.len() as u64,
        senders: spec.senders,
        arrivals: spec.arrivals,
        model: "senders open (each message due at its scheduled time, latency corrected from it); receivers closed loop (long-poll sync)".into(),
        endpoints: recorded.endpoint_results(|ep| match ep {
            Ep::Send => "open",
            _ => "closed",
        }),
        deliveries,
        // A shard's share of the schedule: messages i with i % count == index.
        intended_per_s: part.slice_len(spec.arrivals.due_within(spec.duration)) as f64
            / spec.duration.as_secs_f64(),
        achieved_per_s: accepted as f64 / spec.duration.as_secs_f64(),
        send_duration_s: spec.duration.as_secs_f64(),
        partial,
        interval_ms: spec.interval.as_secs_f64() * 1000.0,
        wall_s: wall.as_secs_f64(),
        prepare_ms,
        origin_unix_ms: unix_ms(origin_wall),
        harness,
    };
    Ok((
        result,
        WorkloadData {
            recorded,
            origin: origin_wall,
            shard_log,
            extra: Vec::new(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_dedupe_a_bounded_window() {
        let mut seen = VecDeque::new();
        assert!(fresh(&mut seen, 1));
        assert!(!fresh(&mut seen, 1));
        for i in 2..2000 {
            assert!(fresh(&mut seen, i));
        }
        assert_eq!(seen.len(), SEEN);
    }

    #[test]
    fn sync_answers_are_decoded_with_ruma() {
        let body = br#"{"next_batch":"s9","rooms":{"join":{"!r:x":{"timeline":{"events":[
            {"type":"m.room.message","event_id":"$a","sender":"@u:x","origin_server_ts":1,"content":{"msgtype":"m.text","body":"b","org.hsbench.seq":4}},
            {"type":"org.hsbench.trigger","state_key":"","event_id":"$b","sender":"@u:x","origin_server_ts":2,"content":{}}
        ],"limited":false}}}}}"#;
        let (next, seqs, trigger) = decode_sync(body).unwrap();
        assert_eq!(next, "s9");
        assert_eq!(seqs, vec![4]);
        assert!(trigger);
        assert!(decode_sync(b"{}").is_none());
    }
}
