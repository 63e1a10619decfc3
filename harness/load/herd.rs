//! Workloads. The thundering herd: N distinct users fire `/sync` at one instant.
//!
//! Every client waits at a start line; hsbench releases them together and takes that instant as
//! every request's *intended* start. Latency is recorded twice, in separate histograms: from the
//! intended start (`corrected`: includes any wait for a connection or a runtime slot, i.e. what a
//! user of the herd experiences) and from the moment the request was actually sent (`raw`).
//! Requests are recorded by the engine's [`Recorder`] (per-worker HDR recorders, its error
//! taxonomy), as the other workloads' are; the herd's intervals are fitted to its length
//! ([`Intervals::Fitted`]). Nothing grows with the response sizes (bodies are counted chunk by
//! chunk, never held).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ruma::OwnedUserId;
use ruma::api::client::sync::sync_events;

use crate::load::body::read_body;
use crate::load::engine::{Collector, Ep, ErrorKind, Intervals, Recorder};
use crate::load::longpoll::since_tokens;
use crate::load::sliding::{Connection, ListLoad, load_list};
use crate::matrix::{MatrixClient, error_fields};
use crate::metrics::{IntervalSeries, LatencySummary, new_latency_histogram};
use crate::scenario::{HerdSpec, SyncKind, SyncProtocol};

/// A herd's measured outcome.
#[derive(Debug, Clone, schemars::JsonSchema, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct HerdResult {
    pub endpoint: String,
    /// `/sync` v2 (one request per client) or sliding sync (a room list loaded request by
    /// request). The latencies, `ok`, `errors` and bytes are of requests either way.
    #[serde(default)]
    pub protocol: SyncProtocol,
    pub sync: SyncKind,
    pub clients: u64,
    /// Requests were due evenly over this many seconds after the release (0: all at once).
    #[serde(default)]
    pub ramp_s: f64,
    /// The requests carried the lazy-loading filter ([`lazy_loading_filter`]).
    #[serde(default)]
    pub lazy_load_members: bool,
    /// Closed model: each client sends exactly one request, all released at one instant.
    pub model: String,
    /// Latency of the answered (2xx) requests from the common intended start
    /// (coordinated-omission corrected). Failed requests are counted in `errors`, never here.
    pub corrected: LatencySummary,
    /// Latency of the answered requests from each one's actual send.
    pub raw: LatencySummary,
    pub ok: u64,
    /// Errors by kind: `http_<status>[_<errcode>]`, `timeout`, `connect`, `transport`.
    pub errors: BTreeMap<String, u64>,
    pub bytes_received: u64,
    /// Release of the herd until its last response ended.
    pub wall_ms: f64,
    /// Preparation (since tokens for `full_state`), not part of the herd's timing.
    pub prepare_ms: f64,
    /// The release instant, Unix milliseconds (places the herd on the server's timelines).
    #[serde(default)]
    pub released_unix_ms: Option<f64>,
    /// Length of one interval of the interval log (`herd-sync.hlog`), ms.
    #[serde(default)]
    pub interval_ms: Option<f64>,
    /// hsbench's own CPU seconds (user + system) from the release to the last response.
    #[serde(default)]
    pub harness_cpu_s: Option<f64>,
    /// The same as a share of one core over the herd's wall time; above
    /// [`HARNESS_CPU_LIMIT`] the harness may have been the bottleneck, and the summary says so.
    #[serde(default)]
    pub harness_cpu_share: Option<f64>,
    /// Interrupted by a signal: the figures are of the requests that completed before it (the
    /// others were abandoned, neither answered nor failed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// Each client's room list, from its intended start: what a user waits for. A v2 client's
    /// list is its one answer; a sliding client's first page is its first answer and its full
    /// list the answer that listed every room. Absent in results of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_list: Option<RoomListLoad>,
}

/// How long the herd's clients waited for their room lists (from each one's intended start,
/// so corrected for coordinated omission), of the clients whose list loaded.
#[derive(Debug, Clone, schemars::JsonSchema, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct RoomListLoad {
    /// Until the first answer: the first rooms on screen.
    pub first_page: LatencySummary,
    /// Until every room was listed.
    pub full_list: LatencySummary,
    /// Clients whose list loaded.
    pub loaded: u64,
    /// Clients whose load failed (a request failed, or the list never completed).
    pub failed: u64,
    /// Requests a client sent, on average.
    pub requests_per_client: f64,
    /// The list's length the server reported, on average (sliding sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms_per_client: Option<f64>,
}

/// The herd's list loads as they complete (two histograms and counters: bounded).
struct ListLoads {
    first: Histogram<u64>,
    full: Histogram<u64>,
    loaded: u64,
    failed: u64,
    requests: u64,
    rooms: u64,
}

impl ListLoads {
    fn new() -> Self {
        Self {
            first: new_latency_histogram(),
            full: new_latency_histogram(),
            loaded: 0,
            failed: 0,
            requests: 0,
            rooms: 0,
        }
    }

    fn add(&mut self, l: &ListLoad) {
        let us = |d: Duration| d.as_micros().min(u64::MAX as u128) as u64;
        self.requests += u64::from(l.requests);
        match (l.failed, l.first, l.full) {
            (false, Some(first), Some(full)) => {
                let _ = self.first.record(us(first).max(1));
                let _ = self.full.record(us(full).max(1));
                self.loaded += 1;
                self.rooms += l.rooms;
            }
            _ => self.failed += 1,
        }
    }

    fn summary(&self) -> RoomListLoad {
        let clients = (self.loaded + self.failed).max(1) as f64;
        RoomListLoad {
            first_page: LatencySummary::of(&self.first),
            full_list: LatencySummary::of(&self.full),
            loaded: self.loaded,
            failed: self.failed,
            requests_per_client: self.requests as f64 / clients,
            rooms_per_client: (self.loaded > 0).then(|| self.rooms as f64 / self.loaded as f64),
        }
    }
}

/// The share of a core hsbench may use during a workload before its results warn that the
/// harness, not the server, may have limited them.
pub const HARNESS_CPU_LIMIT: f64 = 0.5;

/// The herd's histograms (kept out of the JSON; written as .hgrm/.hist files).
pub struct HerdHistograms {
    pub corrected: Histogram<u64>,
    pub raw: Histogram<u64>,
    /// Latency over time (by completion, from the release), corrected and raw.
    pub intervals_corrected: IntervalSeries,
    pub intervals_raw: IntervalSeries,
    /// The release instant (the interval log's base time).
    pub released: std::time::SystemTime,
}

/// The engine endpoint a herd's requests are recorded as.
const HERD: Ep = Ep::InitialSync;

/// The filter Element-like clients send on their first sync: member lazy-loading (only the
/// members the returned timeline needs) and a short timeline.
pub fn lazy_loading_filter() -> ruma::api::client::filter::FilterDefinition {
    let mut f = ruma::api::client::filter::FilterDefinition::with_lazy_loading();
    f.room.timeline.limit = Some(ruma::UInt::from(20u32));
    f
}

/// Run a herd against `base_url` with the given users' access tokens (one client each).
pub async fn run_herd(
    base_url: &str,
    tokens: &[String],
    user_ids: &[OwnedUserId],
    spec: &HerdSpec,
) -> Result<(HerdResult, HerdHistograms), crate::matrix::CallError> {
    run_herd_at(base_url, tokens, user_ids, spec, None).await
}

/// [`run_herd`], released at a wall-clock time (when it is still ahead once every request is
/// built): shards of one herd in several processes fire together.
pub async fn run_herd_at(
    base_url: &str,
    tokens: &[String],
    user_ids: &[OwnedUserId],
    spec: &HerdSpec,
    release_at: Option<std::time::SystemTime>,
) -> Result<(HerdResult, HerdHistograms), crate::matrix::CallError> {
    let n = spec.clients as usize;
    assert!(tokens.len() >= n, "validated: clients <= users");
    // One connection pool big enough for every client to hold its own connection.
    let client = MatrixClient::new(base_url, spec.request_timeout).map_err(|source| {
        crate::matrix::CallError::Transport {
            endpoint: "client".into(),
            source,
        }
    })?;

    // Preparation: `since` tokens for full-state re-syncs, a few at a time.
    let prep = Instant::now();
    let mut since: Vec<Option<String>> = vec![None; n];
    if spec.sync == SyncKind::FullState && spec.protocol == SyncProtocol::V2 {
        for (slot, token) in since
            .iter_mut()
            .zip(since_tokens(&client, &tokens[..n]).await?)
        {
            *slot = Some(token);
        }
    }
    let prepare_ms = prep.elapsed().as_secs_f64() * 1000.0;

    // Build every first request before the start line, so that release costs nothing.
    let sliding = spec.protocol == SyncProtocol::Sliding;
    let requests = first_requests(&client, &tokens[..n], user_ids, spec, since)?;

    // Every client waits at the start line for the release instant and the recorder; hsbench
    // fixes the release ahead (at least 50 ms, for every task to reach the line; later when
    // shards of one herd are released together), and sleeps precisely until it.
    let (start_tx, start_rx) = tokio::sync::watch::channel::<Option<(Instant, Recorder)>>(None);
    let mut set = tokio::task::JoinSet::new();
    for (offset, request, conn) in requests {
        let rx = start_rx.clone();
        let client = client.clone();
        set.spawn(one_client(client, rx, offset, request, conn));
    }
    drop(start_rx);
    tokio::task::yield_now().await;
    let lead = Duration::from_millis(50);
    let ahead = release_at
        .and_then(|t| t.duration_since(std::time::SystemTime::now()).ok())
        .map_or(lead, |a| a.max(lead));
    let t0 = Instant::now() + ahead;
    let released = std::time::SystemTime::now() + ahead;
    let collector = Collector::spawn_with(
        t0,
        Intervals::Fitted {
            target: 30,
            // A sliding client sends a few requests (its list grows 20 rooms at a time).
            capacity: if sliding { n * 8 } else { n },
        },
    );
    crate::load::clock::PreciseTimer::new()
        .sleep_until(t0)
        .await;
    let cpu_before = crate::metrics::self_usage();
    let _ = start_tx.send(Some((t0, collector.recorder())));

    let mut last_end = t0;
    let mut loads = ListLoads::new();
    // A signal ends the herd early: the requests still out are abandoned (neither answered nor
    // failed), and what completed is kept and marked partial.
    let mut partial = false;
    let mut interrupted = std::pin::pin!(crate::util::interrupt::interrupted());
    loop {
        let joined = tokio::select! {
            j = set.join_next() => match j {
                Some(j) => j,
                None => break,
            },
            _ = &mut interrupted => {
                partial = true;
                set.abort_all();
                break;
            }
        };
        if let Ok(Some((end, load))) = joined {
            last_end = last_end.max(end);
            if let Some(l) = load {
                loads.add(&l);
            }
        }
    }
    let cpu_after = crate::metrics::self_usage();
    let harness_cpu_s = (cpu_after.cpu_user_s + cpu_after.cpu_sys_s)
        - (cpu_before.cpu_user_s + cpu_before.cpu_sys_s);
    let wall_s = (last_end - t0).as_secs_f64();
    let mut recorded = collector.finish().await;
    let interval = recorded.interval;
    let ep = if sliding { Ep::SlidingSync } else { HERD };
    let stats = recorded
        .eps
        .remove(&ep)
        .expect("the collector keeps every endpoint");
    let errors = stats.errors;
    let corrected_h = stats.corrected;
    let raw_h = stats.raw;
    let (intervals_corrected, intervals_raw) = (stats.intervals_corrected, stats.intervals_raw);
    // A v2 client's room list is its one answer.
    let room_list = if sliding {
        loads.summary()
    } else {
        let failed: u64 = errors.values().sum();
        RoomListLoad {
            first_page: LatencySummary::of(&corrected_h),
            full_list: LatencySummary::of(&corrected_h),
            loaded: stats.ok,
            failed,
            requests_per_client: 1.0,
            rooms_per_client: None,
        }
    };
    Ok((
        HerdResult {
            endpoint: ep.http().into(),
            protocol: spec.protocol,
            sync: spec.sync,
            clients: spec.clients,
            ramp_s: spec.ramp.as_secs_f64(),
            lazy_load_members: spec.lazy_load_members,
            model: herd_model(sliding, spec.ramp),
            room_list: Some(room_list),
            corrected: LatencySummary::of(&corrected_h),
            raw: LatencySummary::of(&raw_h),
            ok: stats.ok,
            errors,
            bytes_received: stats.bytes_in,
            wall_ms: (last_end - t0).as_secs_f64() * 1000.0,
            prepare_ms,
            released_unix_ms: Some(
                released
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64()
                    * 1000.0,
            ),
            interval_ms: Some(interval.as_secs_f64() * 1000.0),
            harness_cpu_s: Some(harness_cpu_s),
            harness_cpu_share: (wall_s > 0.0).then(|| harness_cpu_s / wall_s),
            partial,
        },
        HerdHistograms {
            corrected: corrected_h,
            raw: raw_h,
            intervals_corrected,
            intervals_raw,
            released,
        },
    ))
}

/// A client's first request, due `offset` after the release, and for a sliding sync client its
/// connection and token.
type FirstRequest = (Duration, reqwest::Request, Option<(Connection, String)>);

/// Every client's first request, built before the start line so that release costs nothing:
/// client i is due `ramp * i / n` after the release.
fn first_requests(
    client: &MatrixClient,
    tokens: &[String],
    user_ids: &[OwnedUserId],
    spec: &HerdSpec,
    mut since: Vec<Option<String>>,
) -> Result<Vec<FirstRequest>, crate::matrix::CallError> {
    let (n, sliding) = (tokens.len(), spec.protocol == SyncProtocol::Sliding);
    let mut requests = Vec::with_capacity(n);
    for (i, token) in tokens.iter().enumerate() {
        // Client i is due `ramp * i / n` after the release.
        let offset = spec.ramp.mul_f64(i as f64 / n as f64);
        if sliding {
            let user = user_ids.get(i).map_or("$ME", |u| u.as_str());
            let conn = Connection::new(user);
            let first = client.build(conn.request(Duration::ZERO), Some(token))?;
            requests.push((offset, first, Some((conn, token.clone()))));
            continue;
        }
        let mut req = sync_events::v3::Request::new();
        req.timeout = Some(Duration::ZERO);
        if let Some(s) = since[i].take() {
            req.since = Some(s);
            req.full_state = true;
        }
        if spec.lazy_load_members {
            req.filter = Some(sync_events::v3::Filter::FilterDefinition(
                lazy_loading_filter(),
            ));
        }
        requests.push((offset, client.build(req, Some(token))?, None));
    }
    Ok(requests)
}

/// One client of the herd: wait at the start line for the release and the recorder, then send
/// its request (or load its sliding sync room list); when it ended, and a sliding client's load.
async fn one_client(
    client: MatrixClient,
    mut rx: tokio::sync::watch::Receiver<Option<(Instant, Recorder)>>,
    offset: Duration,
    request: reqwest::Request,
    conn: Option<(Connection, String)>,
) -> Option<(Instant, Option<ListLoad>)> {
    let (intended, rec) = loop {
        if let Some((t0, rec)) = rx.borrow_and_update().clone() {
            break (t0 + offset, rec);
        }
        if rx.changed().await.is_err() {
            return None;
        }
    };
    if !offset.is_zero() {
        tokio::time::sleep_until(intended.into()).await;
    }
    if let Some((mut conn, token)) = conn {
        // Sliding sync: the room list loaded as the SDK loads it, every request
        // recorded; the client's outcome is the list's load.
        let load = load_list(&client, &rec, &token, &mut conn, request, intended).await;
        return Some((Instant::now(), Some(load)));
    }
    rec.start(HERD);
    let sent = Instant::now();
    let (error, bytes_in) = match client.http().execute(request).await {
        Err(e) => (Some(ErrorKind::of(&e)), 0),
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            // An error's body is kept for its errcode; a 200's only counted.
            let keep = if status >= 400 { 4096 } else { 0 };
            let (n_bytes, kept, failed) = read_body(&mut resp, keep, None).await;
            let error = match (failed, status) {
                (Some(kind), _) => Some(kind),
                (None, 200) => None,
                (None, s) => Some(ErrorKind::Status(s, error_fields(&kept).0)),
            };
            (error, n_bytes)
        }
    };
    let end = Instant::now();
    rec.done(HERD, intended, sent, end, error, bytes_in, 0);
    Some((end, None))
}

/// The herd's arrival model in words.
fn herd_model(sliding: bool, ramp: Duration) -> String {
    match (sliding, ramp.is_zero()) {
        (false, true) => "closed: one request per client, all released at one instant".into(),
        (false, false) => format!(
            "open: one request per client, due evenly over {:?} (latency corrected from each one's due time)",
            ramp
        ),
        (true, true) => "closed: each client loads its room list (a request, then the next when the answer arrived), all released at one instant".into(),
        (true, false) => format!(
            "open: each client loads its room list (a request, then the next when the answer arrived), clients due evenly over {:?}",
            ramp
        ),
    }
}
