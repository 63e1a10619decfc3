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
//!
//! Over sliding sync (`protocol = "sliding"`) a reader does what matrix-rust-sdk does when its
//! user comes back and opens the busy room: it loads its room list (the SDK's Init and Growing
//! requests, `sliding_sync`), opens the room with a room subscription of `timeline_limit`
//! events (`initial_sync`: the room's first sight, with its `prev_batch`), pages back and sends
//! the receipt as above, then asks the connection once more (`sync`) and checks that its own
//! receipt came back in the receipts extension. Synapse's sliding sync sends no unread counts
//! (its `notification_count` is a fixed 0; clients count from receipts), so the unread figures
//! of a sliding run are left out rather than reported as zero.

use std::time::{Duration, Instant};

use ruma::api::client::receipt::create_receipt;
use ruma::api::client::sync::sync_events;
use ruma::api::client::sync::sync_events::v5;
use ruma::{OwnedEventId, OwnedRoomId, OwnedTransactionId, UInt};

use crate::load::engine::{Collector, Ep, ErrorKind, Recorder};
use crate::load::sliding;
use crate::load::workload::{
    HarnessLoad, WorkloadData, WorkloadError, call_timed, decode, harness_load, message_content,
    messages_back, new_client, nonce, unix_ms,
};
use crate::matrix::MatrixClient;
use crate::metrics::LatencySummary;
use crate::scenario::{CatchupSpec, SyncProtocol};

/// A catch-up workload's outcome.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct CatchupResult {
    pub readers: u64,
    /// How the readers synced (v2 `/sync` or sliding sync).
    #[serde(default)]
    pub protocol: SyncProtocol,
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
    /// Unread (notification) counts of the big room the readers' first sync reported; `None`
    /// over sliding sync (the server sends none).
    #[serde(default)]
    pub unread_before_min: Option<u64>,
    #[serde(default)]
    pub unread_before_max: Option<u64>,
    /// The largest unread count an incremental sync reported after a receipt (0 when every
    /// receipt cleared the room); `None` when no sync after a receipt mentioned the room, and
    /// over sliding sync.
    pub unread_after_max: Option<u64>,
    /// Sliding sync: readers whose own receipt came back in the receipts extension of the
    /// connection's next answer (`None` over v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipts_echoed: Option<u64>,
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
    /// Sliding sync: the reader's receipt came back in the receipts extension.
    echoed: bool,
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

/// [`call_timed`] without the answer's instant.
async fn call<T>(
    client: &MatrixClient,
    rec: &Recorder,
    ep: Ep,
    request: reqwest::Request,
    parse: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<T, ErrorKind> {
    call_timed(client, rec, ep, request, parse)
        .await
        .map(|(t, _)| t)
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

/// Where a reader's first sight of the room leaves it: the token to page back from, the newest
/// event (the receipt's target) and, over v2, the token of its next sync.
struct FirstSight {
    from: Option<String>,
    newest: Option<OwnedEventId>,
    next_batch: Option<String>,
}

/// Mark the backlog messages of a timeline; the newest event with an id.
fn take_in<'a, T: 'a>(
    events: impl IntoIterator<Item = &'a ruma::serde::Raw<T>>,
    seen: &mut Seen,
) -> Option<OwnedEventId> {
    let mut newest = None;
    for ev in events {
        if let Ok(p) = ev.deserialize_as_unchecked::<Probe>() {
            if let Some(s) = p.content.seq {
                seen.mark(s);
            }
            if p.event_id.is_some() {
                newest = p.event_id;
            }
        }
    }
    newest
}

/// v2: the initial sync with the lazy-loading filter; it reports the room's unread count. An
/// answer without the room is a `decode` error.
#[allow(clippy::too_many_arguments)]
async fn first_v2(
    client: &MatrixClient,
    rec: &Recorder,
    token: &str,
    room: &OwnedRoomId,
    spec: &CatchupSpec,
    base: u64,
    seen: &mut Seen,
    r: &mut Reader,
) -> Option<FirstSight> {
    let mut req = sync_events::v3::Request::new();
    req.filter = Some(filter(spec.timeline_limit, base));
    req.timeout = Some(Duration::ZERO);
    let request = client.build(req, Some(token)).ok()?;
    let (mut joined, next_batch) = call(client, rec, Ep::InitialSync, request, |b| {
        let mut sync = decode::<sync_events::v3::Response>(b)?;
        Some((sync.rooms.join.remove(room)?, sync.next_batch))
    })
    .await
    .ok()?;
    r.unread_before = joined
        .unread_notifications
        .notification_count
        .map(u64::from);
    Some(FirstSight {
        newest: take_in(&joined.timeline.events, seen),
        from: joined.timeline.prev_batch.take(),
        next_batch: Some(next_batch),
    })
}

/// The big room in a sliding sync answer, if the answer has it.
fn room_in(answer: &mut v5::Response, room: &OwnedRoomId) -> Option<v5::response::Room> {
    answer.rooms.remove(room)
}

/// Sliding sync: the room list loaded as the SDK loads it (the first page, then the growing
/// range), then the room opened (a room subscription with the spec's timeline limit). What the
/// client knows of the room is what the last answer that had it said: a server that already
/// sent the room in the list may leave it out of the subscription's answer (tuwunel does), and
/// the SDK then pages back from the list's `prev_batch`. A list that never had the room and an
/// opening that does not bring it are a `decode` error.
async fn first_sliding(
    client: &MatrixClient,
    rec: &Recorder,
    token: &str,
    room: &OwnedRoomId,
    conn: &mut sliding::Connection,
    seen: &mut Seen,
    start: Instant,
) -> Option<FirstSight> {
    let mut sight: Option<FirstSight> = None;
    let learn = |sight: &mut Option<FirstSight>, opened: v5::response::Room, seen: &mut Seen| {
        let newest = take_in(&opened.timeline, seen);
        let s = sight.get_or_insert(FirstSight {
            from: None,
            newest: None,
            next_batch: None,
        });
        if newest.is_some() {
            s.newest = newest;
            s.from = opened.prev_batch;
        }
    };
    let mut due = start;
    let mut requests = 0u32;
    while conn.stage() != sliding::Stage::Loaded {
        requests += 1;
        if requests > sliding::MAX_LOAD_REQUESTS {
            return None;
        }
        let request = client
            .build(conn.request(Duration::ZERO), Some(token))
            .ok()?;
        let (x, answer) = sliding::send_parsed(
            client,
            rec,
            Ep::SlidingSync,
            conn,
            request,
            due,
            decode::<v5::Response>,
        )
        .await;
        if x.error.is_some() {
            return None;
        }
        if let Some(opened) = answer.and_then(|mut a| room_in(&mut a, room)) {
            learn(&mut sight, opened, seen);
        }
        due = x.end;
    }
    conn.subscribe(room.clone());
    let request = client
        .build(conn.request(Duration::ZERO), Some(token))
        .ok()?;
    let listed = sight.is_some();
    let (x, opened) = sliding::send_parsed(
        client,
        rec,
        Ep::InitialSync,
        conn,
        request,
        Instant::now(),
        |b| {
            let opened = room_in(&mut decode::<v5::Response>(b)?, room);
            (opened.is_some() || listed).then_some(opened)
        },
    )
    .await;
    if x.error.is_some() {
        return None;
    }
    if let Some(opened) = opened.flatten() {
        learn(&mut sight, opened, seen);
    }
    sight
}

/// Whether a sliding sync answer's receipts extension holds `user`'s read receipt on `event`
/// in `room`.
fn receipt_echoed(
    answer: &v5::Response,
    room: &OwnedRoomId,
    event: &OwnedEventId,
    user: &str,
) -> bool {
    let Some(raw) = answer.extensions.receipts.rooms.get(room) else {
        return false;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(raw.json().get()) else {
        return false;
    };
    v["content"][event.as_str()]["m.read"].get(user).is_some()
}

/// One reader's catch-up. Errors end it (counted in the endpoint's errors).
async fn read(
    client: &MatrixClient,
    rec: &Recorder,
    token: &str,
    user: &str,
    room: &OwnedRoomId,
    spec: &CatchupSpec,
    base: u64,
) -> Reader {
    let mut r = Reader::default();
    let mut seen = Seen::new(base, spec.backlog);
    let start = Instant::now();
    // 1. The first sight of the room.
    let mut conn = (spec.protocol == SyncProtocol::Sliding).then(|| {
        let mut c = sliding::Connection::new(user);
        c.set_subscription_timeline(u32::try_from(spec.timeline_limit).unwrap_or(u32::MAX));
        c
    });
    let first = match conn.as_mut() {
        None => first_v2(client, rec, token, room, spec, base, &mut seen, &mut r).await,
        Some(c) => first_sliding(client, rec, token, room, c, &mut seen, start).await,
    };
    let Some(FirstSight {
        mut from,
        newest,
        next_batch,
    }) = first
    else {
        return r;
    };
    // 2. Page back through the backlog.
    let max_pages = spec.backlog.div_ceil(spec.page) + 10;
    while seen.count < spec.backlog && r.pages < max_pages {
        let Some(token_from) = from.take() else { break };
        r.pages += 1;
        let Ok((page, _)) =
            messages_back(client, rec, token, room, token_from, None, spec.page).await
        else {
            r.read = seen.count;
            return r;
        };
        take_in(&page.chunk, &mut seen);
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
        event.clone(),
    );
    let Ok(request) = client.build(req, Some(token)) else {
        return r;
    };
    if call(client, rec, Ep::Receipt, request, |_| Some(()))
        .await
        .is_err()
    {
        return r;
    }
    r.took = Some(start.elapsed());
    // 4. What the next sync says now: the unread count (v2), the receipt echoed (sliding).
    match conn.as_mut() {
        None => {
            let mut req = sync_events::v3::Request::new();
            req.filter = Some(filter(spec.timeline_limit, base));
            req.since = next_batch;
            req.timeout = Some(Duration::ZERO);
            if let Ok(request) = client.build(req, Some(token))
                && let Ok(sync) = call(
                    client,
                    rec,
                    Ep::Sync,
                    request,
                    decode::<sync_events::v3::Response>,
                )
                .await
            {
                r.unread_after = sync
                    .rooms
                    .join
                    .get(room)
                    .and_then(|j| j.unread_notifications.notification_count)
                    .map(u64::from);
            }
        }
        Some(c) => {
            if let Ok(request) = client.build(c.request(Duration::ZERO), Some(token)) {
                let (_, answer) = sliding::send_parsed(
                    client,
                    rec,
                    Ep::Sync,
                    c,
                    request,
                    Instant::now(),
                    decode::<v5::Response>,
                )
                .await;
                r.echoed = answer.is_some_and(|a| receipt_echoed(&a, room, &event, user));
            }
        }
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
    user_ids: &[ruma::OwnedUserId],
    room: &OwnedRoomId,
    spec: &CatchupSpec,
    shard: Option<crate::load::workload::ShardRun>,
) -> Result<(CatchupResult, WorkloadData), WorkloadError> {
    let part = crate::load::workload::ShardRun::part(shard);
    let readers = part.slice(&tokens[1..=spec.readers as usize]);
    let reader_ids: Vec<String> = part.slice(
        &(1..=spec.readers as usize)
            .map(|i| {
                user_ids
                    .get(i)
                    .map_or_else(|| "$ME".to_string(), |u| u.to_string())
            })
            .collect::<Vec<_>>(),
    );
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
    for (token, user) in readers.iter().zip(reader_ids) {
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
                read(&client, &rec, &token, &user, &room, &spec, base),
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
        protocol: spec.protocol,
        model: match spec.protocol {
            SyncProtocol::V2 => "closed: each reader makes one request at a time; all readers start at once".into(),
            SyncProtocol::Sliding => "closed: each reader makes one request at a time (room list, room opened, pages, receipt); all readers start at once".into(),
        },
        backlog_write_s: write_s,
        backlog_write_per_s: part.slice_len(spec.backlog) as f64 / write_s.max(1e-9),
        endpoints: recorded.endpoint_results_over(spec.protocol, |_| "closed"),
        catch_up: LatencySummary::of(&took),
        caught_up: readers
            .iter()
            .filter(|r| r.took.is_some() && r.read == spec.backlog)
            .count() as u64,
        messages_read: readers.iter().map(|r| r.read).sum(),
        pages: readers.iter().map(|r| r.pages).sum(),
        unread_before_min: before.iter().copied().min(),
        unread_before_max: before.iter().copied().max(),
        unread_after_max: readers.iter().filter_map(|r| r.unread_after).max(),
        receipts_echoed: (spec.protocol == SyncProtocol::Sliding)
            .then(|| readers.iter().filter(|r| r.echoed).count() as u64),
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
