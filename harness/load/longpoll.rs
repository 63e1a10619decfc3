//! The long-poll plumbing of the sync workloads (triggered herd, steady traffic): the triggered herd and steady traffic.
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
//!
//! Gaps: an incremental answer carries at most the filter's timeline limit of a room's new
//! events (Synapse's default is 10, without a filter). When more arrived, the room's timeline is
//! `limited` and a receiver that fell behind has a gap. It fills it as a client does that shows
//! every message: `/messages` backwards from the timeline's `prev_batch` to where it was (the
//! `since` token it synced from, when it has one), a bounded number of pages ([`fill_gap`]).
//! The messages found are delivered at the page that returned them, and the result counts the
//! gaps and the deliveries found in them beside the others. A client that starts over (an
//! initial-sync or reconnect reaction) fills nothing: what it skipped stays missing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ruma::api::IncomingResponseExt;
use ruma::api::client::message::send_message_event;
use ruma::api::client::sync::sync_events;
use ruma::{OwnedRoomId, OwnedTransactionId, OwnedUserId, UInt};

use crate::load::body::{Scanner, read_body};
use crate::load::engine::{Collector, Ep, ErrorKind, Msg, Recorder};
use crate::load::sliding::Connection;
use crate::load::workload::{
    ShardRun, WorkloadError, bytes_out, message_content, messages_back, new_client, status_error,
    unix_ms,
};
use crate::matrix::{CallError, MatrixClient, error_fields};
use crate::scenario::arrivals::Arrivals;
use crate::scenario::{ReactionKind, SyncProtocol};

/// The trigger's event type.
pub const TRIGGER_TYPE: &str = "org.hsbench.trigger";

/// Everything a sync-loop client shares with the others.
pub(crate) struct Shared {
    pub(crate) client: MatrixClient,
    pub(crate) rec: Recorder,
    pub(crate) stop: AtomicBool,
    pub(crate) poll_timeout: Duration,
    pub(crate) reaction: Option<Reaction>,
    /// Deliveries seen so far (for the drain; the collector's count is authoritative).
    pub(crate) delivered: AtomicU64,
    /// When the first client saw the trigger.
    pub(crate) trigger_seen: std::sync::Mutex<Option<Instant>>,
    /// The room a `subscribe` reaction opens (the big room, where the trigger lands).
    pub(crate) big_room: Option<OwnedRoomId>,
    /// Unix ms before the clients took their starting points: no message of this workload is
    /// older, and filling a gap stops at older events.
    pub(crate) started_ms: u64,
    /// v2 long polls' filter (a timeline limit), if any.
    pub(crate) filter: Option<sync_events::v3::Filter>,
    /// How long a client waits after each answer (and its gaps) before it polls again.
    pub(crate) poll_pause: Duration,
}

impl Shared {
    /// A client's pause between an answer and its next long poll (a client in the background
    /// or on a slow network): none by default. Cut short when the workload stops.
    async fn pause(&self) {
        let end = Instant::now() + self.poll_pause;
        while !self.poll_pause.is_zero()
            && !self.stop.load(Ordering::Relaxed)
            && Instant::now() < end
        {
            let step = (end - Instant::now()).min(Duration::from_millis(50));
            tokio::time::sleep(step).await;
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Reaction {
    pub(crate) kind: ReactionKind,
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) retry_delay: Duration,
}

/// Just what hsbench reads from a timeline event.
#[derive(serde::Deserialize)]
pub(crate) struct Probe {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) content: ProbeContent,
    #[serde(default)]
    pub(crate) origin_server_ts: u64,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct ProbeContent {
    #[serde(rename = "org.hsbench.seq")]
    pub(crate) seq: Option<u64>,
}

/// Receivers dedupe deliveries over their last few hundred messages (an initial re-sync returns
/// recent messages again).
pub(crate) const SEEN: usize = 512;

pub(crate) fn fresh(seen: &mut VecDeque<u64>, seq: u64) -> bool {
    if seen.contains(&seq) {
        return false;
    }
    if seen.len() == SEEN {
        seen.pop_front();
    }
    seen.push_back(seq);
    true
}

/// Where a long-poll client starts from.
pub(crate) enum Start {
    /// `/sync` v2 from this `since` token.
    V2(String),
    /// Sliding sync on this connection (its list loaded).
    Sliding(Connection),
}

/// One sliding sync client's long-poll loop, until `stop`: the connection's long polls, each
/// answer's sequence numbers delivered. A connection the server expired starts over (its list
/// loaded again, request by request, as the SDK does). On the trigger, the reaction
/// ([`sliding_react`]).
pub(crate) async fn sliding_loop(shared: Arc<Shared>, token: String, mut conn: Connection) {
    let mut seen: VecDeque<u64> = VecDeque::with_capacity(SEEN);
    let rec = &shared.rec;
    let mut reacted = false;
    while !shared.stop.load(Ordering::Relaxed) {
        let (x, gaps) = crate::load::sliding::exchange_with_gaps(
            &shared.client,
            rec,
            &token,
            &mut conn,
            shared.poll_timeout,
            Instant::now(),
        )
        .await;
        for seq in &x.seqs {
            if fresh(&mut seen, *seq) {
                shared.delivered.fetch_add(1, Ordering::Relaxed);
                rec.send(Msg::Delivered {
                    seq: *seq,
                    at: x.end,
                });
            }
        }
        if x.expired() {
            conn.reset();
            continue;
        }
        if x.error.is_some() {
            // A failing server is not hammered in a tight loop (what SDKs do too).
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        if x.saw_trigger
            && !reacted
            && let Some(r) = shared.reaction
        {
            reacted = true;
            {
                let mut first = shared.trigger_seen.lock().expect("not poisoned");
                if first.is_none_or(|t| x.end < t) {
                    *first = Some(x.end);
                }
            }
            sliding_react(&shared, &token, &mut conn, r, x.end, &mut seen).await;
        }
        // Then the gaps (after any reaction, whose time is the server's). Sliding sync has no
        // token for where the client was: paging stops at a message it had seen.
        for (room, prev_batch) in gaps {
            let gap = Gap {
                room,
                from: prev_batch,
                to: None,
                stop_at_seen: true,
            };
            fill_gap(&shared, &token, gap, &mut seen).await;
        }
        shared.pause().await;
    }
}

/// A sliding sync client's reaction to the trigger (`reaction`): `subscribe` opens the big room
/// (a room subscription with the SDK's 20-event timeline and all of the room's state), as a
/// client that shows the room does; `reconnect` drops the connection and loads the list again
/// from the first page, as the SDK does when it starts over. Immediate answers (`timeout=0`),
/// each with the reaction's client timeout, retried; the reaction's time runs from the moment
/// the client saw the trigger until the answer that completed it.
pub(crate) async fn sliding_react(
    shared: &Shared,
    token: &str,
    conn: &mut Connection,
    r: Reaction,
    seen_at: Instant,
    seen: &mut VecDeque<u64>,
) {
    let rec = &shared.rec;
    match r.kind {
        ReactionKind::Subscribe => conn.subscribe_all_state(shared.big_room.clone()),
        _ => conn.reset(),
    }
    let mut attempts = 0u32;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut request) = shared
            .client
            .build(conn.request(Duration::ZERO), Some(token))
        else {
            return;
        };
        *request.timeout_mut() = Some(r.timeout);
        // Every request of the reaction is a re-sync, corrected from the moment the trigger
        // was seen.
        let x =
            crate::load::sliding::send_as(&shared.client, rec, Ep::Resync, conn, request, seen_at)
                .await;
        for seq in &x.seqs {
            if fresh(seen, *seq) {
                shared.delivered.fetch_add(1, Ordering::Relaxed);
                rec.send(Msg::Delivered {
                    seq: *seq,
                    at: x.end,
                });
            }
        }
        if x.error.is_none() {
            let done = match r.kind {
                ReactionKind::Subscribe => true,
                _ => conn.stage() == crate::load::sliding::Stage::Loaded,
            };
            if done {
                rec.send(Msg::Reacted {
                    took: x.end - seen_at,
                    ok: true,
                    retries: attempts,
                });
                return;
            }
            continue;
        }
        if x.expired() {
            conn.reset();
        }
        attempts += 1;
        if attempts > r.retries {
            rec.send(Msg::Reacted {
                took: seen_at.elapsed(),
                ok: false,
                retries: r.retries,
            });
            return;
        }
        tokio::time::sleep(r.retry_delay).await;
    }
}

/// One client's long-poll loop, until `stop`.
pub(crate) async fn sync_loop(shared: Arc<Shared>, token: String, mut since: String) {
    let mut seen: VecDeque<u64> = VecDeque::with_capacity(SEEN);
    let rec = &shared.rec;
    // A client reacts to the trigger once (later answers may mention it again, in state).
    let mut reacted = false;
    while !shared.stop.load(Ordering::Relaxed) {
        let mut req = sync_events::v3::Request::new();
        req.since = Some(since.clone());
        req.timeout = Some(shared.poll_timeout);
        req.filter = shared.filter.clone();
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
                let (n, body, err) = read_body(&mut resp, MAX_SYNC_BODY + 1, None).await;
                let done = Instant::now();
                let err = err
                    .or_else(|| (status != 200).then(|| status_error(status, &body)))
                    .or_else(|| (body.len() > MAX_SYNC_BODY).then_some(ErrorKind::Body));
                (err, n, body, done)
            }
        };
        // Decode after the timing: what the client learns from the answer.
        let mut error = error;
        let mut answer = None;
        if error.is_none() {
            match decode_sync(&body) {
                Some(a) => answer = Some(a),
                None => error = Some(ErrorKind::Decode),
            }
        }
        rec.done(Ep::Sync, sent, sent, done, error, n_in, out);
        let Some(answer) = answer else {
            // A failing server is not hammered in a tight loop (what SDKs do too).
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        drop(body);
        for &seq in &answer.seqs {
            if fresh(&mut seen, seq) {
                shared.delivered.fetch_add(1, Ordering::Relaxed);
                rec.send(Msg::Delivered { seq, at: done });
            }
        }
        let asked_since = std::mem::replace(&mut since, answer.next_batch);
        if answer.trigger
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
        // Fill the gaps back to where this sync started; after any reaction, whose time is the
        // server's, not this client's paging.
        for (room, prev_batch) in answer.gaps {
            let gap = Gap {
                room,
                from: prev_batch,
                to: Some(asked_since.clone()),
                stop_at_seen: true,
            };
            fill_gap(&shared, &token, gap, &mut seen).await;
        }
        shared.pause().await;
    }
}

/// The naive client's reaction to the trigger: re-sync, retrying; the new token on success.
pub(crate) async fn resync(
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
        if r.kind == ReactionKind::FullState {
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
                retries: attempt,
            });
            // A full-state re-sync is incremental: a limited timeline is a gap. The answer is
            // streamed, never held, so which room is not known; the workload's messages go to
            // the big room, which is filled from the answer's end back to `since` (its first
            // page holds what the answer delivered, so seen messages do not stop it).
            if r.kind == ReactionKind::FullState
                && scan.saw_limited
                && let (Some(room), Some(next)) = (shared.big_room.clone(), scan.next_batch.clone())
            {
                let gap = Gap {
                    room,
                    from: next,
                    to: Some(since.to_string()),
                    stop_at_seen: false,
                };
                fill_gap(shared, token, gap, seen).await;
            }
            return scan.next_batch;
        }
    }
    rec.send(Msg::Reacted {
        took: seen_at.elapsed(),
        ok: false,
        retries: r.retries,
    });
    None
}

/// What a receiver reads from an incremental `/sync` answer.
#[derive(Debug, PartialEq)]
pub(crate) struct SyncAnswer {
    pub(crate) next_batch: String,
    /// hsbench's sequence numbers in the timelines.
    pub(crate) seqs: Vec<u64>,
    /// The triggered herd's trigger, in a timeline or a state section.
    pub(crate) trigger: bool,
    /// Rooms whose timeline was `limited`, with its `prev_batch`.
    pub(crate) gaps: Vec<(OwnedRoomId, String)>,
}

/// The most of an incremental `/sync` answer a receiver holds: a long poll's answer is far below
/// this; a larger one is a `body` error.
pub(crate) const MAX_SYNC_BODY: usize = crate::load::sliding::MAX_KEPT_BODY;

/// An incremental sync answer, decoded with ruma's response type.
pub(crate) fn decode_sync(body: &[u8]) -> Option<SyncAnswer> {
    let resp = http::Response::builder().status(200).body(body).ok()?;
    let sync = sync_events::v3::Response::try_from_http_response(resp).ok()?;
    let mut seqs = Vec::new();
    let mut trigger = false;
    let mut gaps = Vec::new();
    for (id, room) in &sync.rooms.join {
        if room.timeline.limited
            && let Some(p) = &room.timeline.prev_batch
        {
            gaps.push((id.clone(), p.clone()));
        }
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
    Some(SyncAnswer {
        next_batch: sync.next_batch,
        seqs,
        trigger,
        gaps,
    })
}

/// Events a gap-filling `/messages` page asks for.
pub(crate) const GAP_PAGE: u64 = 100;
/// The most pages one gap is paged through (a bound: 5,000 events).
pub(crate) const MAX_GAP_PAGES: u32 = 50;

/// A gap in one room's timeline, and where paging back through it stops.
pub(crate) struct Gap {
    pub(crate) room: OwnedRoomId,
    /// Where paging starts: the limited timeline's `prev_batch`, or an answer's end.
    pub(crate) from: String,
    /// Where the client was (`to` of `/messages`), when it has a token for that.
    pub(crate) to: Option<String>,
    /// Stop at the first page holding a message the client had seen (it reached where it was).
    /// Off when the first pages repeat what the answer delivered.
    pub(crate) stop_at_seen: bool,
}

/// Page back through a gap with `/messages` (recorded as `messages`), delivering the messages
/// not seen yet at the page that returned them; then one [`Msg::Gap`]. Stops at the end of the
/// gap (a short page when paging `to` a token, an empty page, no further token), at an event
/// older than the workload, at a seen message when the gap says so, at a failed page, or after
/// [`MAX_GAP_PAGES`].
pub(crate) async fn fill_gap(shared: &Shared, token: &str, gap: Gap, seen: &mut VecDeque<u64>) {
    let rec = &shared.rec;
    let mut backfilled = 0u64;
    let mut from = Some(gap.from);
    for _ in 0..MAX_GAP_PAGES {
        let Some(page_from) = from.take() else { break };
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok((page, done)) = messages_back(
            &shared.client,
            rec,
            token,
            &gap.room,
            page_from.clone(),
            gap.to.clone(),
            GAP_PAGE,
        )
        .await
        else {
            break;
        };
        // A short page of a paging with `to` ends where the client was (or at the room's start).
        let mut reached =
            page.chunk.is_empty() || (gap.to.is_some() && (page.chunk.len() as u64) < GAP_PAGE);
        for ev in &page.chunk {
            let Ok(p) = ev.deserialize_as_unchecked::<Probe>() else {
                continue;
            };
            if p.origin_server_ts < shared.started_ms {
                reached = true;
                continue;
            }
            if let Some(seq) = p.content.seq {
                if fresh(seen, seq) {
                    backfilled += 1;
                    shared.delivered.fetch_add(1, Ordering::Relaxed);
                    rec.send(Msg::Delivered { seq, at: done });
                } else if gap.stop_at_seen {
                    reached = true;
                }
            }
        }
        if reached {
            break;
        }
        from = page.end.filter(|e| *e != page_from);
    }
    rec.send(Msg::Gap { backfilled });
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Since tokens for `tokens`, a few at a time.
pub(crate) async fn since_tokens(
    client: &MatrixClient,
    tokens: &[String],
) -> Result<Vec<String>, CallError> {
    use futures::StreamExt;
    let got: Vec<(usize, Result<String, CallError>)> =
        futures::stream::iter(tokens.iter().enumerate())
            .map(|(i, t)| async move { (i, since_token(client, t).await) })
            .buffer_unordered(16)
            .collect()
            .await;
    let mut out = vec![String::new(); tokens.len()];
    for (i, r) in got {
        out[i] = r?;
    }
    Ok(out)
}

/// A filter that leaves a sync almost empty: used only to obtain `since` tokens cheaply. Each
/// call names a different (nonexistent) account-data type: Synapse answers a repeated identical
/// /sync from its response cache for minutes (`caches.sync_response_cache_duration`), and a
/// cached answer carries a stale token, from which a workload's first sync would replay
/// everything since.
fn empty_filter() -> String {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    format!(
        r#"{{"room":{{"rooms":[]}},"presence":{{"types":[]}},"account_data":{{"types":["org.hsbench.fresh.{t}.{n}"]}}}}"#
    )
}

/// A `since` token for `token`'s user: the `next_batch` of a nearly empty `/sync`.
async fn since_token(client: &MatrixClient, token: &str) -> Result<String, CallError> {
    #[derive(serde::Deserialize)]
    struct NextBatch {
        next_batch: String,
    }
    const ENDPOINT: &str = "GET /_matrix/client/v3/sync (since token)";
    let url = format!(
        "{}/_matrix/client/v3/sync?timeout=0&filter={}",
        client.base_url(),
        urlencode(&empty_filter())
    );
    let transport = |source| CallError::Transport {
        endpoint: ENDPOINT.into(),
        source,
    };
    let resp = client
        .http()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(transport)?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(transport)?;
    if status >= 300 {
        let (errcode, uia_session) = error_fields(&body);
        return Err(CallError::Status {
            endpoint: ENDPOINT.into(),
            status,
            errcode,
            body: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
            uia_session,
        });
    }
    serde_json::from_slice::<NextBatch>(&body)
        .map(|n| n.next_batch)
        .map_err(|e| CallError::Decode {
            endpoint: ENDPOINT.into(),
            source: e.into(),
        })
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One message of a schedule: who sends it where, and how many syncing clients should see it.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) sender: usize,
    pub(crate) room: OwnedRoomId,
    pub(crate) receivers: u32,
}

/// Send message `seq` by `route` and tell the collector.
pub(crate) async fn send_message(
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
pub(crate) async fn dispatch(
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
pub(crate) fn spawn_clients(
    shared: &Arc<Shared>,
    tokens: &[String],
    starts: Vec<Start>,
    ramp: Duration,
) -> tokio::task::JoinSet<()> {
    let mut set = tokio::task::JoinSet::new();
    let start = Instant::now();
    let n = tokens.len().max(1) as f64;
    for (i, (t, s)) in tokens.iter().zip(starts).enumerate() {
        let (shared, t) = (shared.clone(), t.clone());
        let at = start + ramp.mul_f64(i as f64 / n);
        set.spawn(async move {
            if !ramp.is_zero() {
                tokio::time::sleep_until(at.into()).await;
            }
            match s {
                Start::V2(since) => sync_loop(shared, t, since).await,
                Start::Sliding(conn) => sliding_loop(shared, t, conn).await,
            }
        });
    }
    set
}

/// Longest wait for a message send's answer.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Sleep until `t`; false when a signal (SIGINT, SIGTERM, SIGHUP) came first.
pub(crate) async fn sleep_or_interrupt(t: Instant) -> bool {
    tokio::select! {
        _ = tokio::time::sleep_until(t.into()) => true,
        _ = crate::util::interrupt::interrupted() => false,
    }
}

/// Longest wait for the chatter's last deliveries after a triggered herd's observation.
pub(crate) const TRIGGERED_DRAIN: Duration = Duration::from_secs(15);

/// How long clients get to park in their first long poll before the origin.
pub(crate) const SETTLE: Duration = Duration::from_millis(1500);

/// Long-poll clients parked and a collector running: what the triggered herd and steady
/// traffic start from.
pub(crate) struct Started {
    pub(crate) client: MatrixClient,
    pub(crate) shared: Arc<Shared>,
    pub(crate) clients: tokio::task::JoinSet<()>,
    pub(crate) collector: crate::load::engine::CollectorHandle,
    /// The workload's time zero (the clients had [`SETTLE`] to park their first long poll).
    pub(crate) origin: Instant,
    pub(crate) origin_wall: std::time::SystemTime,
    pub(crate) prepare_ms: f64,
}

/// Fetch since tokens for `tokens` (timed apart as preparation), start the collector and one
/// long-poll loop per token.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start_long_polls(
    base_url: &str,
    tokens: &[String],
    user_ids: &[OwnedUserId],
    protocol: SyncProtocol,
    poll_timeout: Duration,
    connect_ramp: Duration,
    reaction: Option<Reaction>,
    big_room: Option<OwnedRoomId>,
    timeline_limit: Option<u64>,
    poll_pause: Duration,
    interval: Duration,
    release: Option<ShardRun>,
) -> Result<Started, WorkloadError> {
    let client = new_client(base_url, tokens.len())?;
    let prep = Instant::now();
    // The server stamps events from the same clock; this workload's messages are sent after the
    // clients settled, seconds later.
    let started_ms = unix_ms(std::time::SystemTime::now()) as u64;
    // Untimed: a v2 client's `since` token; a sliding client's connection with its list loaded.
    let starts: Vec<Start> = match protocol {
        SyncProtocol::V2 => since_tokens(&client, tokens)
            .await?
            .into_iter()
            .map(Start::V2)
            .collect(),
        SyncProtocol::Sliding => crate::load::sliding::prepare(&client, tokens, user_ids)
            .await?
            .into_iter()
            .map(Start::Sliding)
            .collect(),
    };
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
        big_room,
        started_ms,
        filter: timeline_limit.map(|n| {
            let mut f = ruma::api::client::filter::FilterDefinition::default();
            f.room.timeline.limit = Some(UInt::try_from(n).unwrap_or(UInt::MAX));
            sync_events::v3::Filter::FilterDefinition(f)
        }),
        poll_pause,
    });
    let clients = spawn_clients(&shared, tokens, starts, connect_ramp);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencode_encodes_json() {
        assert_eq!(urlencode("{\"a\":[]}"), "%7B%22a%22%3A%5B%5D%7D");
    }

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
        ],"limited":false,"prev_batch":"p0"}},
        "!busy:x":{"timeline":{"events":[
            {"type":"m.room.message","event_id":"$c","sender":"@u:x","origin_server_ts":3,"content":{"msgtype":"m.text","body":"b","org.hsbench.seq":5}}
        ],"limited":true,"prev_batch":"p1"}}}}}"#;
        let a = decode_sync(body).unwrap();
        assert_eq!(a.next_batch, "s9");
        assert_eq!(a.seqs, vec![5, 4]);
        assert!(a.trigger);
        // Only the limited timeline is a gap, with its own prev_batch.
        assert_eq!(
            a.gaps,
            vec![(ruma::owned_room_id!("!busy:x"), "p1".to_string())]
        );
        assert!(decode_sync(b"{}").is_none());
    }
}
