//! The catch-up workload: users come back to a large unread backlog and read it.
//!
//! The other matrix.org failure mode: not a herd of re-syncs but readers paging back through
//! thousands of unread messages and then marking them read, which makes the server recompute
//! unread counts. Setup (not timed): user 0 writes `backlog` messages into the big room, each
//! with its sequence number. Then every reader, at once, does what a client coming back does:
//!
//! 1. an initial `/sync` with the lazy-loading filter and a short timeline (`initial_sync`), which
//!    reports the room's unread count;
//! 2. `/messages` backwards from the timeline's `prev_batch`, `page` events at a time
//!    (`messages`), until it has seen every backlog message (or the room's start);
//! 3. a read receipt on the newest event (`receipt`);
//! 4. an incremental `/sync` (`sync`), which reports the unread count after the receipt.
//!
//! Each reader is a closed loop (one request at a time); the figure users feel is a reader's
//! whole catch-up time, from its first request to its receipt's 200.

use std::time::{Duration, Instant};

use ruma::api::IncomingResponseExt;
use ruma::api::client::message::get_message_events;
use ruma::api::client::receipt::create_receipt;
use ruma::api::client::sync::sync_events;
use ruma::{OwnedEventId, OwnedRoomId, OwnedTransactionId, UInt};

use crate::load::engine::{Collector, Ep, ErrorKind, Recorder, read_body};
use crate::load::workload::{
    HarnessLoad, WorkloadData, WorkloadError, bytes_out, harness_load, message_content, new_client,
    nonce, status_error, unix_ms,
};
use crate::matrix::MatrixClient;
use crate::metrics::LatencySummary;
use crate::scenario::CatchupSpec;

/// A catch-up workload's outcome.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct CatchupResult {
    pub readers: u64,
    pub backlog: u64,
    pub page: u64,
    pub model: String,
    /// Writing the backlog (setup, not part of the timings): seconds and messages/s.
    pub backlog_write_s: f64,
    pub backlog_write_per_s: f64,
    /// `initial_sync`, `messages`, `receipt`, `sync`.
    pub endpoints: Vec<crate::load::engine::EndpointResult>,
    /// Per reader: first request until its receipt's 200.
    pub catch_up: LatencySummary,
    /// Readers that saw every backlog message and whose receipt was accepted.
    pub caught_up: u64,
    /// Backlog messages seen, over all readers (`readers × backlog` when all read everything).
    pub messages_read: u64,
    /// `/messages` pages over all readers.
    pub pages: u64,
    /// Unread (notification) counts of the big room the readers' first sync reported.
    pub unread_before_min: u64,
    pub unread_before_max: u64,
    /// The largest unread count an incremental sync reported after a receipt (0 when every
    /// receipt cleared the room); `None` when no sync after a receipt mentioned the room.
    pub unread_after_max: Option<u64>,
    pub wall_s: f64,
    pub origin_unix_ms: f64,
    pub harness: HarnessLoad,
    /// Interrupted by a signal: the figures are of the readers that finished before it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// What one reader did.
#[derive(Debug, Default)]
struct Reader {
    took: Option<Duration>,
    read: u64,
    pages: u64,
    unread_before: Option<u64>,
    unread_after: Option<u64>,
}

/// Which backlog messages a reader has seen: one bit per message.
struct Seen {
    base: u64,
    n: u64,
    bits: Vec<u64>,
    count: u64,
}

impl Seen {
    fn new(base: u64, n: u64) -> Self {
        Self {
            base,
            n,
            bits: vec![0; n.div_ceil(64) as usize],
            count: 0,
        }
    }

    fn mark(&mut self, seq: u64) {
        let Some(i) = seq.checked_sub(self.base).filter(|&i| i < self.n) else {
            return;
        };
        let (w, b) = ((i / 64) as usize, i % 64);
        if let Some(word) = self.bits.get_mut(w)
            && *word & (1 << b) == 0
        {
            *word |= 1 << b;
            self.count += 1;
        }
    }
}

#[derive(serde::Deserialize)]
struct Probe {
    #[serde(default)]
    event_id: Option<OwnedEventId>,
    #[serde(default)]
    content: ProbeContent,
}

#[derive(serde::Deserialize, Default)]
struct ProbeContent {
    #[serde(rename = "org.hsbench.seq")]
    seq: Option<u64>,
}

/// Send one request, read its answer whole, and record it (closed loop: intended = sent).
async fn call(
    client: &MatrixClient,
    rec: &Recorder,
    ep: Ep,
    request: reqwest::Request,
) -> Result<Vec<u8>, ErrorKind> {
    let out = bytes_out(&request);
    rec.start(ep);
    let sent = Instant::now();
    let (error, n, body, done) = match client.http().execute(request).await {
        Err(e) => (Some(ErrorKind::of(&e)), 0, Vec::new(), Instant::now()),
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let (n, body, err) = read_body(&mut resp, usize::MAX, None).await;
            let done = Instant::now();
            (
                err.or_else(|| (status != 200).then(|| status_error(status, &body))),
                n,
                body,
                done,
            )
        }
    };
    rec.done(ep, sent, sent, done, error.clone(), n, out);
    match error {
        None => Ok(body),
        Some(e) => Err(e),
    }
}

fn decode<R: IncomingResponseExt>(body: Vec<u8>) -> Result<R, ErrorKind> {
    let resp = http::Response::builder()
        .status(200)
        .body(body.as_slice())
        .map_err(|_| ErrorKind::Decode)?;
    R::try_from_http_response(resp).map_err(|_| ErrorKind::Decode)
}

/// The lazy-loading filter with the spec's timeline limit. It also names an account-data type
/// unique to this workload run (and so excludes nothing): Synapse answers a repeat of an
/// identical /sync from its response cache for minutes, and a reader must not be handed the
/// answer an earlier workload's identical request got, from before the backlog existed.
fn filter(timeline_limit: u64, base: u64) -> sync_events::v3::Filter {
    let mut f = crate::load::herd::lazy_loading_filter();
    f.room.timeline.limit = Some(UInt::try_from(timeline_limit).unwrap_or(UInt::MAX));
    f.account_data.not_types = vec![format!("org.hsbench.fresh.{base}")];
    sync_events::v3::Filter::FilterDefinition(f)
}

/// One reader's catch-up. Errors end it (counted in the endpoint's errors).
async fn read(
    client: &MatrixClient,
    rec: &Recorder,
    token: &str,
    room: &OwnedRoomId,
    spec: &CatchupSpec,
    base: u64,
) -> Reader {
    let mut r = Reader::default();
    let mut seen = Seen::new(base, spec.backlog);
    let start = Instant::now();
    // 1. The initial sync.
    let mut req = sync_events::v3::Request::new();
    req.filter = Some(filter(spec.timeline_limit, base));
    req.timeout = Some(Duration::ZERO);
    let Ok(request) = client.build(req, Some(token)) else {
        return r;
    };
    let Ok(body) = call(client, rec, Ep::InitialSync, request).await else {
        return r;
    };
    let Ok(sync) = decode::<sync_events::v3::Response>(body) else {
        return r;
    };
    let Some(joined) = sync.rooms.join.get(room) else {
        return r;
    };
    r.unread_before = joined
        .unread_notifications
        .notification_count
        .map(u64::from);
    let mut newest: Option<OwnedEventId> = None;
    for ev in &joined.timeline.events {
        if let Ok(p) = ev.deserialize_as_unchecked::<Probe>() {
            if let Some(s) = p.content.seq {
                seen.mark(s);
            }
            if p.event_id.is_some() {
                newest = p.event_id;
            }
        }
    }
    let next_batch = sync.next_batch;
    let mut from = joined.timeline.prev_batch.clone();
    // 2. Page back through the backlog.
    let max_pages = spec.backlog.div_ceil(spec.page) + 10;
    while seen.count < spec.backlog && r.pages < max_pages {
        let Some(token_from) = from.take() else { break };
        let mut req = get_message_events::v3::Request::backward(room.clone());
        req.from = Some(token_from);
        req.limit = UInt::try_from(spec.page).unwrap_or(UInt::MAX);
        let Ok(request) = client.build(req, Some(token)) else {
            break;
        };
        r.pages += 1;
        let Ok(body) = call(client, rec, Ep::Messages, request).await else {
            r.read = seen.count;
            return r;
        };
        let Ok(page) = decode::<get_message_events::v3::Response>(body) else {
            r.read = seen.count;
            return r;
        };
        for ev in &page.chunk {
            if let Ok(p) = ev.deserialize_as_unchecked::<Probe>()
                && let Some(s) = p.content.seq
            {
                seen.mark(s);
            }
        }
        if page.chunk.is_empty() {
            break;
        }
        from = page.end;
    }
    r.read = seen.count;
    // 3. The receipt on the newest event.
    let Some(event) = newest else { return r };
    let req = create_receipt::v3::Request::new(
        room.clone(),
        create_receipt::v3::ReceiptType::Read,
        event,
    );
    let Ok(request) = client.build(req, Some(token)) else {
        return r;
    };
    if call(client, rec, Ep::Receipt, request).await.is_err() {
        return r;
    }
    r.took = Some(start.elapsed());
    // 4. What the unread count says now.
    let mut req = sync_events::v3::Request::new();
    req.filter = Some(filter(spec.timeline_limit, base));
    req.since = Some(next_batch);
    req.timeout = Some(Duration::ZERO);
    if let Ok(request) = client.build(req, Some(token))
        && let Ok(body) = call(client, rec, Ep::Sync, request).await
        && let Ok(sync) = decode::<sync_events::v3::Response>(body)
    {
        r.unread_after = sync
            .rooms
            .join
            .get(room)
            .and_then(|j| j.unread_notifications.notification_count)
            .map(u64::from);
    }
    r
}

/// Write the backlog: `n` messages from `token` into `room`, 8 at a time (a shard writes its
/// share, messages `i % count == index`). Returns seconds.
async fn write_backlog(
    client: &MatrixClient,
    token: &str,
    room: &OwnedRoomId,
    base: u64,
    n: u64,
    part: crate::load::shard::Shard,
) -> Result<f64, WorkloadError> {
    use futures::StreamExt;
    use ruma::api::client::message::send_message_event;
    let nonce = nonce();
    let start = Instant::now();
    let mine = (0..n).filter(move |i| i % part.count as u64 == part.index as u64);
    let results: Vec<Result<(), crate::matrix::CallError>> = futures::stream::iter(mine)
        .map(|i| {
            let nonce = nonce.clone();
            async move {
                let seq = base + i;
                let txn: OwnedTransactionId = format!("hsb-backlog-{nonce}-{i}").into();
                let req = send_message_event::v3::Request::new_raw(
                    room.clone(),
                    txn,
                    ruma::events::MessageLikeEventType::RoomMessage,
                    message_content(seq, &nonce),
                );
                client.send(req, Some(token)).await.map(drop)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        return Err(WorkloadError::Setup {
            what: "catch-up backlog".into(),
            source: e.into(),
        });
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Run the catch-up workload: `tokens[0]` writes the backlog into `room`; readers are
/// `tokens[1..=readers]` (big-room members).
///
/// Sharded (`shard`), this process writes its share of the backlog (messages `i % count ==
/// index`, numbered from the common release time), waits for the release time, and runs its
/// slice of the readers (reader `r` when `r % count == index`); `tokens` are every user's.
/// Every shard must have written its share by the release time: a reader that does not see the
/// whole backlog is not counted as caught up.
pub async fn run_catchup(
    base_url: &str,
    tokens: &[String],
    room: &OwnedRoomId,
    spec: &CatchupSpec,
    shard: Option<crate::load::workload::ShardRun>,
) -> Result<(CatchupResult, WorkloadData), WorkloadError> {
    let part = crate::load::workload::ShardRun::part(shard);
    let readers = part.slice(&tokens[1..=spec.readers as usize]);
    let n = readers.len();
    let client = new_client(base_url, n.max(1))?;
    let base = crate::load::workload::ShardRun::seq_base(shard);
    let write_s = write_backlog(&client, &tokens[0], room, base, spec.backlog, part).await?;

    let (origin, origin_wall) = match shard {
        None => (Instant::now(), std::time::SystemTime::now()),
        Some(s) => {
            let doing = format!("writing its share of the backlog ({write_s:.1} s)");
            let origin = s.origin(Duration::ZERO, &doing)?;
            tokio::time::sleep_until(origin.into()).await;
            (origin, s.release_at)
        }
    };
    let collector = Collector::spawn(origin, spec.interval);
    let cpu_before = crate::metrics::self_usage();
    let mut set = tokio::task::JoinSet::new();
    for token in &readers {
        let (client, rec, token, room, spec) = (
            client.clone(),
            collector.recorder(),
            token.clone(),
            room.clone(),
            spec.clone(),
        );
        set.spawn(async move {
            tokio::time::timeout(
                spec.request_timeout,
                read(&client, &rec, &token, &room, &spec, base),
            )
            .await
            .unwrap_or_default()
        });
    }
    // A signal ends the workload early (marked partial): readers still paging are abandoned,
    // the finished ones are kept.
    let mut readers = Vec::with_capacity(n);
    let mut partial = false;
    let mut interrupted = std::pin::pin!(crate::util::interrupt::interrupted());
    loop {
        tokio::select! {
            r = set.join_next() => match r {
                Some(r) => readers.push(r.unwrap_or_default()),
                None => break,
            },
            _ = &mut interrupted => {
                partial = true;
                set.abort_all();
                break;
            }
        }
    }
    let wall = origin.elapsed();
    let harness = harness_load(&cpu_before, wall);
    let recorded = collector.finish().await;

    let mut took = crate::metrics::new_latency_histogram();
    for r in &readers {
        if let Some(t) = r.took {
            let _ = took.record((t.as_micros() as u64).max(1));
        }
    }
    let before: Vec<u64> = readers.iter().filter_map(|r| r.unread_before).collect();
    let result = CatchupResult {
        readers: n as u64,
        backlog: spec.backlog,
        page: spec.page,
        model: "closed: each reader makes one request at a time; all readers start at once".into(),
        backlog_write_s: write_s,
        backlog_write_per_s: part.slice_len(spec.backlog) as f64 / write_s.max(1e-9),
        endpoints: recorded.endpoint_results(|_| "closed"),
        catch_up: LatencySummary::of(&took),
        caught_up: readers
            .iter()
            .filter(|r| r.took.is_some() && r.read == spec.backlog)
            .count() as u64,
        messages_read: readers.iter().map(|r| r.read).sum(),
        pages: readers.iter().map(|r| r.pages).sum(),
        unread_before_min: before.iter().copied().min().unwrap_or(0),
        unread_before_max: before.iter().copied().max().unwrap_or(0),
        unread_after_max: readers.iter().filter_map(|r| r.unread_after).max(),
        wall_s: wall.as_secs_f64(),
        origin_unix_ms: unix_ms(origin_wall),
        harness,
        partial,
    };
    Ok((
        result,
        WorkloadData {
            recorded,
            origin: origin_wall,
            shard_log: None,
            extra: vec![("reader", took)],
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_counts_each_backlog_message_once() {
        let mut s = Seen::new(1000, 130);
        for seq in [1000, 1000, 1129, 1064, 999, 1130, 5] {
            s.mark(seq);
        }
        assert_eq!(s.count, 3);
    }
}
