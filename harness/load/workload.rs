//! What every workload shares: its error, hsbench's own load, the recorded data its files are
//! written from, message content and sequence numbers, the HTTP client, and a shard's part of
//! a workload split over several processes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ruma::api::client::message::get_message_events;
use ruma::serde::Raw;

use crate::load::body::read_body;
use crate::load::engine::{Ep, ErrorKind, Recorded, Recorder};
use crate::matrix::{MatrixClient, error_fields};
use crate::metrics::IntervalSeries;

/// What went wrong before a workload could run.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("{0}")]
    Call(#[from] crate::matrix::CallError),
    #[error("{what}: {source}")]
    Setup {
        what: String,
        #[source]
        source: crate::util::BoxError,
    },
}

/// hsbench's own load during a workload.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct HarnessLoad {
    pub cpu_s: f64,
    /// CPU seconds per wall second: above [`crate::load::herd::HARNESS_CPU_LIMIT`] the harness may
    /// have been the bottleneck, and the summary says so.
    pub cpu_share: f64,
    /// hsbench's peak RSS so far (the process's high-water mark), bytes.
    pub max_rss_bytes: u64,
}

pub(crate) fn harness_load(before: &crate::metrics::SelfUsage, wall: Duration) -> HarnessLoad {
    let after = crate::metrics::self_usage();
    let cpu_s = (after.cpu_user_s + after.cpu_sys_s) - (before.cpu_user_s + before.cpu_sys_s);
    let w = wall.as_secs_f64();
    HarnessLoad {
        cpu_s,
        cpu_share: if w > 0.0 { cpu_s / w } else { 0.0 },
        max_rss_bytes: after.max_rss_bytes,
    }
}

/// The recorded histograms of a workload, for its files.
pub struct WorkloadData {
    pub recorded: Recorded,
    pub origin: std::time::SystemTime,
    /// A shard's sends and foreign deliveries, for `hsbench merge`.
    pub shard_log: Option<ShardLog>,
    /// More histograms of the workload's own (`<workload>-<name>.hist`), e.g. catch-up's
    /// per-reader time.
    pub extra: Vec<(&'static str, hdrhistogram::Histogram<u64>)>,
}

/// What a shard keeps so that `hsbench merge` can time the deliveries that cross shards:
/// its accepted sends and the deliveries of other shards' messages, each as (sequence number,
/// Unix nanoseconds).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ShardLog {
    pub sends: Vec<(u64, u64)>,
    pub foreign: Vec<(u64, u64)>,
}

impl ShardLog {
    /// Split a shard's recorded deliveries: unmatched ones of messages due from other shards
    /// (by the sequence numbers' residue) are foreign.
    pub fn of(
        r: &Recorded,
        origin_wall: std::time::SystemTime,
        seq_base: u64,
        shard: crate::load::shard::Shard,
    ) -> Self {
        let unix_ns = |t: Instant| {
            let wall = origin_wall + t.saturating_duration_since(r.origin)
                - r.origin.saturating_duration_since(t);
            wall.duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64
        };
        let (n, i) = (shard.count as u64, shard.index as u64);
        Self {
            sends: r
                .deliveries
                .sent
                .iter()
                .map(|&(q, t)| (q, unix_ns(t)))
                .collect(),
            foreign: r
                .deliveries
                .unmatched_seen
                .iter()
                .filter(|&&(q, _)| q >= seq_base && (q - seq_base) % n != i)
                .map(|&(q, t)| (q, unix_ns(t)))
                .collect(),
        }
    }
}

impl WorkloadData {
    /// `(tag, series)` pairs for the interval log: corrected and raw per used endpoint, and
    /// delivery latency.
    pub fn interval_series(&self) -> Vec<(String, &IntervalSeries)> {
        let mut out = Vec::new();
        for ep in Ep::ALL {
            if self.recorded.started.get(&ep).copied().unwrap_or(0) == 0 {
                continue;
            }
            let s = &self.recorded.eps[&ep];
            out.push((format!("{}.corrected", ep.name()), &s.intervals_corrected));
            out.push((format!("{}.raw", ep.name()), &s.intervals_raw));
        }
        if self.recorded.deliveries.messages > 0 || self.shard_log.is_some() {
            out.push(("delivery".into(), &self.recorded.deliveries.intervals));
        }
        out
    }
}

/// A message's content: a text with its sequence number.
pub(crate) fn message_content(
    seq: u64,
    nonce: &str,
) -> Raw<ruma::events::AnyMessageLikeEventContent> {
    let json = serde_json::json!({
        "msgtype": "m.text",
        "body": format!("hsbench {nonce} message {seq}"),
        "org.hsbench.seq": seq,
    });
    Raw::from_json_string(json.to_string()).expect("valid JSON")
}

pub(crate) fn bytes_out(req: &reqwest::Request) -> u64 {
    let head: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    let body = req.body().and_then(|b| b.as_bytes()).map_or(0, |b| b.len());
    (req.url().as_str().len() + head + body + 16) as u64
}

pub(crate) fn status_error(status: u16, body: &[u8]) -> ErrorKind {
    ErrorKind::Status(status, error_fields(body).0)
}

/// The first sequence number of a workload's messages: the wall clock in microseconds, so
/// that two workloads' numbers never meet (JSON integers in events stay below 2^53).
pub(crate) fn seq_base() -> u64 {
    unix_us(std::time::SystemTime::now())
}

pub(crate) fn unix_us(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64
}

pub(crate) fn nonce() -> Arc<str> {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:x}{:x}", t.as_secs(), t.subsec_nanos()).into()
}

pub(crate) fn unix_ms(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0
}

pub(crate) fn new_client(base_url: &str, clients: usize) -> Result<MatrixClient, WorkloadError> {
    MatrixClient::with_pool(base_url, Duration::from_secs(3600), clients + 64).map_err(|e| {
        WorkloadError::Setup {
            what: "HTTP client".into(),
            source: e.into(),
        }
    })
}

/// A shard's part of a workload split over several processes (`run --attach --shard`).
#[derive(Debug, Clone, Copy)]
pub struct ShardRun {
    pub shard: crate::load::shard::Shard,
    /// Every shard's time zero: the schedule and the sequence numbers count from it.
    pub release_at: std::time::SystemTime,
}

impl ShardRun {
    /// The slice this process runs: the whole load when not sharded.
    pub(crate) fn part(shard: Option<ShardRun>) -> crate::load::shard::Shard {
        shard.map_or(crate::load::shard::Shard::WHOLE, |s| s.shard)
    }

    /// The first sequence number of a workload's messages: common to all its shards (the
    /// release time), else this process's clock ([`seq_base`]).
    pub(crate) fn seq_base(shard: Option<ShardRun>) -> u64 {
        shard.map_or_else(seq_base, |s| unix_us(s.release_at))
    }

    /// The instant of the release time, when at least `lead` from now; else why not (`doing`:
    /// what this shard did before, to say in the error).
    pub(crate) fn origin(&self, lead: Duration, doing: &str) -> Result<Instant, WorkloadError> {
        self.release_at
            .duration_since(std::time::SystemTime::now())
            .ok()
            .filter(|d| *d >= lead)
            .map(|ahead| Instant::now() + ahead)
            .ok_or_else(|| WorkloadError::Setup {
                what: "release time".into(),
                source: format!(
                    "it must leave this shard {:.1} s after {doing}; release the shards later",
                    lead.as_secs_f64()
                )
                .into(),
            })
    }
}

/// A workload's delivery figures, and a shard's log of sends and foreign deliveries: deliveries
/// of other shards' messages are counted as `foreign`, not unmatched.
pub(crate) fn shard_deliveries(
    recorded: &Recorded,
    origin_wall: std::time::SystemTime,
    seq_base: u64,
    shard: Option<ShardRun>,
) -> (crate::load::engine::DeliveryResult, Option<ShardLog>) {
    let log = shard.map(|s| ShardLog::of(recorded, origin_wall, seq_base, s.shard));
    let mut d = recorded.delivery_result();
    if let Some(l) = &log {
        d.foreign = l.foreign.len() as u64;
        d.unmatched = d.unmatched.saturating_sub(d.foreign);
    }
    (d, log)
}

/// Send one request, read its answer whole, hand it to `parse` after the timing is taken, and
/// record it (closed loop: intended = sent). A 200 that `parse` refuses (`None`: it lacks what
/// the client needs) is recorded as a `decode` error. On success, the parsed answer and the
/// instant its last byte arrived.
pub(crate) async fn call_timed<T>(
    client: &MatrixClient,
    rec: &Recorder,
    ep: Ep,
    request: reqwest::Request,
    parse: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<(T, Instant), ErrorKind> {
    let out = bytes_out(&request);
    rec.start(ep);
    let sent = Instant::now();
    let (error, n, parsed, done) = match client.http().execute(request).await {
        Err(e) => (Some(ErrorKind::of(&e)), 0, None, Instant::now()),
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let (n, body, err) = read_body(&mut resp, usize::MAX, None).await;
            let done = Instant::now();
            let error = err.or_else(|| (status != 200).then(|| status_error(status, &body)));
            let parsed = if error.is_none() { parse(&body) } else { None };
            let error = match (error, &parsed) {
                (None, None) => Some(ErrorKind::Decode),
                (e, _) => e,
            };
            (error, n, parsed, done)
        }
    };
    rec.done(ep, sent, sent, done, error.clone(), n, out);
    match (error, parsed) {
        (None, Some(t)) => Ok((t, done)),
        (e, _) => Err(e.unwrap_or(ErrorKind::Decode)),
    }
}

/// One `/messages` page of `room`, backwards from `from` (to `to`, when given), at most `limit`
/// events, recorded as `messages` ([`call_timed`]). A request that cannot be built was never
/// sent: a `decode` error, not recorded.
pub(crate) async fn messages_back(
    client: &MatrixClient,
    rec: &Recorder,
    token: &str,
    room: &ruma::OwnedRoomId,
    from: String,
    to: Option<String>,
    limit: u64,
) -> Result<(get_message_events::v3::Response, Instant), ErrorKind> {
    let mut req = get_message_events::v3::Request::backward(room.clone());
    req.from = Some(from);
    req.to = to;
    req.limit = ruma::UInt::try_from(limit).unwrap_or(ruma::UInt::MAX);
    let request = client
        .build(req, Some(token))
        .map_err(|_| ErrorKind::Decode)?;
    call_timed(
        client,
        rec,
        Ep::Messages,
        request,
        decode::<get_message_events::v3::Response>,
    )
    .await
}

/// A 200's body decoded as ruma's response type `R`.
pub(crate) fn decode<R: ruma::api::IncomingResponseExt>(body: &[u8]) -> Option<R> {
    let resp = http::Response::builder().status(200).body(body).ok()?;
    R::try_from_http_response(resp).ok()
}
