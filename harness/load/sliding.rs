//! Simplified sliding sync (MSC4186) as today's clients speak it.
//!
//! Element X and every app on matrix-rust-sdk's `RoomListService` open one connection
//! (`conn_id = "room-list"`) with one list, `all_rooms`, and walk it through three stages
//! (matrix-sdk-ui's `room_list_service::state`):
//!
//! 1. **Init**: the first 20 rooms (`ranges = [[0, 19]]`) with a one-event timeline, answered at
//!    once (`timeout = 0`): the first paint of the room list;
//! 2. **Growing**: the range grows by 20 rooms a request with a 10-event timeline (the first of
//!    these re-sends the first 20 rooms with the longer timeline), still answered at once, until
//!    it covers the list's `count`;
//! 3. **Loaded**: the whole list, long-polled with the `pos` of the last answer.
//!
//! Every request carries the SDK's `required_state` (names, encryption, power levels, the members
//! the timeline needs: `$LAZY`, and the user's own membership) and turns on the extensions it
//! uses (account data, receipts of the subscribed rooms, typing, and e2ee with to-device, which
//! Element X syncs as well). Opening a room adds a room subscription with a 20-event timeline.
//!
//! A response is read as a stream (never held): [`Scanner`] finds `pos`, the list's `count` and
//! hsbench's sequence numbers in the timeline events.

use std::time::{Duration, Instant};

use ruma::api::client::sync::sync_events::v5;
use ruma::events::StateEventType;
use ruma::{OwnedRoomId, OwnedUserId, UInt};

use crate::load::body::{Scanner, read_body};
use crate::load::engine::{Ep, ErrorKind, Recorder};
use crate::matrix::{CallError, MatrixClient, error_fields};

/// The endpoint, as results name it.
pub use crate::load::engine::SLIDING_SYNC as PATH;
/// The SDK's connection id for the room list.
pub const CONNECTION_ID: &str = "room-list";
/// The SDK's list of every room.
pub const LIST: &str = "all_rooms";
/// Init: the first rooms' range ends here (`0..=19`).
pub const FIRST_RANGE_END: u64 = 19;
/// Init: the timeline of each listed room.
pub const FIRST_TIMELINE_LIMIT: u32 = 1;
/// Growing: rooms added per request.
pub const GROWING_BATCH: u64 = 20;
/// Growing and loaded: the timeline of each listed room.
pub const GROWING_TIMELINE_LIMIT: u32 = crate::scenario::SLIDING_LIST_TIMELINE_LIMIT;
/// A room subscription's timeline (a room the user opened).
pub const SUBSCRIPTION_TIMELINE_LIMIT: u32 = 20;
/// A connection that needs more requests than this to load its list is broken (the list keeps
/// growing or the server never reports a count).
pub const MAX_LOAD_REQUESTS: u32 = 10_000;

/// The state the SDK asks for, for every listed room (`DEFAULT_REQUIRED_STATE`); `$ME` is the
/// user's own id, as the SDK sends it.
fn required_state(user_id: &str) -> Vec<(StateEventType, String)> {
    let st = |t: &str, k: &str| (StateEventType::from(t), k.to_string());
    vec![
        st("m.room.name", ""),
        st("m.room.encryption", ""),
        st("m.room.member", "$LAZY"),
        st("m.room.member", user_id),
        st("m.room.topic", ""),
        st("m.room.avatar", ""),
        st("m.room.canonical_alias", ""),
        st("m.room.power_levels", ""),
        st("org.matrix.msc3401.call.member", "*"),
        st("m.room.join_rules", ""),
        st("m.room.tombstone", ""),
        st("m.room.create", ""),
        st("m.room.history_visibility", ""),
        st("io.element.functional_members", ""),
        st("m.space.parent", "*"),
        st("m.space.child", "*"),
    ]
}

/// The extensions the room list and the encryption sync turn on.
fn extensions() -> v5::request::Extensions {
    let mut x = v5::request::Extensions::default();
    x.account_data.enabled = Some(true);
    x.receipts.enabled = Some(true);
    x.receipts.rooms = Some(vec![v5::request::ExtensionRoomConfig::AllSubscribed]);
    x.typing.enabled = Some(true);
    x.e2ee.enabled = Some(true);
    x.to_device.enabled = Some(true);
    x
}

/// Where a connection's room list is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// No answer yet: the next request asks for the first rooms.
    Init,
    /// The range grows until it covers every room.
    Growing,
    /// Every room listed: the next requests are long polls.
    Loaded,
}

/// One client's sliding sync connection: what its next request asks for.
#[derive(Debug, Clone)]
pub struct Connection {
    user_id: String,
    pos: Option<String>,
    stage: Stage,
    /// The list's range is `0..=range_end`.
    range_end: u64,
    /// The list's length, from the last answer.
    count: Option<u64>,
    /// Rooms the user opened (subscribed with a longer timeline); `true`: with all of the
    /// room's state.
    subscriptions: Vec<(OwnedRoomId, bool)>,
    /// A room subscription's timeline limit.
    subscription_timeline: u32,
    /// Requests answered.
    answered: u32,
}

impl Connection {
    pub fn new(user_id: &str) -> Self {
        Self {
            user_id: user_id.to_string(),
            pos: None,
            stage: Stage::Init,
            range_end: FIRST_RANGE_END,
            count: None,
            subscriptions: Vec::new(),
            subscription_timeline: SUBSCRIPTION_TIMELINE_LIMIT,
            answered: 0,
        }
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The list's length the server last reported.
    pub fn count(&self) -> Option<u64> {
        self.count
    }

    /// Requests answered so far.
    pub fn answered(&self) -> u32 {
        self.answered
    }

    /// The timeline limit of the rooms this connection opens (default
    /// [`SUBSCRIPTION_TIMELINE_LIMIT`], the SDK's).
    pub fn set_subscription_timeline(&mut self, limit: u32) {
        self.subscription_timeline = limit;
    }

    /// Open a room: the next requests subscribe to it (the SDK's room subscription).
    pub fn subscribe(&mut self, room: OwnedRoomId) {
        self.subscriptions.retain(|(r, _)| *r != room);
        self.subscriptions.push((room, false));
    }

    /// Open a room asking for all of its state (`["*", "*"]`) as well: a client that must
    /// rebuild the room after a state change. `None` (no room known): nothing.
    pub fn subscribe_all_state(&mut self, room: Option<OwnedRoomId>) {
        if let Some(room) = room {
            self.subscriptions.retain(|(r, _)| *r != room);
            self.subscriptions.push((room, true));
        }
    }

    /// Forget the connection's position (the server expired it, or the client starts over):
    /// the next request starts the list again.
    pub fn reset(&mut self) {
        self.pos = None;
        self.stage = Stage::Init;
        self.range_end = FIRST_RANGE_END;
        self.count = None;
    }

    /// The next request. `poll` is the long-poll timeout once the list is loaded; before that
    /// the SDK asks for an immediate answer.
    pub fn request(&self, poll: Duration) -> v5::Request {
        let mut list = v5::request::List::default();
        list.ranges = vec![(UInt::from(0u32), uint(self.range_end))];
        list.room_details.required_state = required_state(&self.user_id);
        list.room_details.timeline_limit = UInt::from(match self.stage {
            Stage::Init => FIRST_TIMELINE_LIMIT,
            Stage::Growing | Stage::Loaded => GROWING_TIMELINE_LIMIT,
        });
        let mut req = v5::Request::new();
        req.conn_id = Some(CONNECTION_ID.to_string());
        req.pos = self.pos.clone();
        req.timeout = Some(match self.stage {
            Stage::Loaded => poll,
            _ => Duration::ZERO,
        });
        req.lists.insert(LIST.to_string(), list);
        for (room, all_state) in &self.subscriptions {
            let mut sub = v5::request::RoomSubscription::default();
            sub.required_state = if *all_state {
                vec![(StateEventType::from("*"), "*".to_string())]
            } else {
                let mut rs = required_state(&self.user_id);
                rs.push((StateEventType::from("m.room.pinned_events"), String::new()));
                rs
            };
            sub.timeline_limit = UInt::from(self.subscription_timeline);
            req.room_subscriptions.insert(room.clone(), sub);
        }
        req.extensions = extensions();
        req
    }

    /// Take in an answer's `pos` and list `count`; the stage moves on as the SDK's does.
    pub fn absorb(&mut self, pos: String, count: Option<u64>) {
        self.pos = Some(pos);
        self.answered += 1;
        if count.is_some() {
            self.count = count;
        }
        let total = self.count.unwrap_or(0);
        match self.stage {
            // The growing mode starts with a batch's range (the first rooms again, with the
            // longer timeline).
            Stage::Init => {
                self.stage = Stage::Growing;
                self.range_end = GROWING_BATCH - 1;
            }
            Stage::Growing => {
                if self.range_end + 1 >= total {
                    self.stage = Stage::Loaded;
                    self.range_end = total.saturating_sub(1);
                } else {
                    self.range_end = (self.range_end + GROWING_BATCH).min(total - 1);
                }
            }
            Stage::Loaded => {
                // The list grew (a new room): take it in the range.
                if total > self.range_end + 1 {
                    self.range_end = total - 1;
                }
            }
        }
    }
}

fn uint(v: u64) -> UInt {
    UInt::try_from(v).unwrap_or(UInt::MAX)
}

/// One answered or failed sliding sync request.
#[derive(Debug)]
pub struct Exchange {
    pub end: Instant,
    /// hsbench's sequence numbers in the answer's timelines.
    pub seqs: Vec<u64>,
    /// The answer carried a triggered herd's trigger event.
    pub saw_trigger: bool,
    pub error: Option<ErrorKind>,
}

impl Exchange {
    /// The server no longer knows the connection's `pos` (`M_UNKNOWN_POS`): the SDK starts the
    /// connection over.
    pub fn expired(&self) -> bool {
        matches!(&self.error, Some(ErrorKind::Status(400, Some(code))) if code == "M_UNKNOWN_POS")
    }
}

/// Slack on top of a long poll's timeout before the client gives up on the request.
pub const POLL_SLACK: Duration = Duration::from_secs(30);

/// Send the connection's next request, record it (intended start `intended`; not recorded
/// without a recorder: preparation), read the answer as a stream and move the connection on. A
/// 200 without `pos` is a `decode` error. A long poll's request may take `poll` plus
/// [`POLL_SLACK`].
pub async fn exchange(
    client: &MatrixClient,
    rec: Option<&Recorder>,
    token: &str,
    conn: &mut Connection,
    poll: Duration,
    intended: Instant,
) -> Exchange {
    match next_request(client, token, conn, poll) {
        Ok(request) => send(client, rec, conn, request, intended).await,
        Err(x) => x,
    }
}

/// [`exchange`] of a long-poll receiver: the answer is kept (up to [`MAX_KEPT_BODY`]) and its
/// gaps read after the timing ([`gaps`]).
pub async fn exchange_with_gaps(
    client: &MatrixClient,
    rec: &Recorder,
    token: &str,
    conn: &mut Connection,
    poll: Duration,
    intended: Instant,
) -> (Exchange, Vec<(OwnedRoomId, String)>) {
    let request = match next_request(client, token, conn, poll) {
        Ok(r) => r,
        Err(x) => return (x, Vec::new()),
    };
    let (x, gaps) = send_parsed(client, rec, Ep::SlidingSync, conn, request, intended, |b| {
        Some(gaps(b))
    })
    .await;
    (x, gaps.unwrap_or_default())
}

/// The connection's next request, built; a long poll may take `poll` plus [`POLL_SLACK`]. A
/// request that cannot be built is never sent: a `decode` error, not a request of the server's.
fn next_request(
    client: &MatrixClient,
    token: &str,
    conn: &Connection,
    poll: Duration,
) -> Result<reqwest::Request, Exchange> {
    let request = conn.request(poll);
    let long = request.timeout.is_some_and(|t| !t.is_zero());
    let mut request = client.build(request, Some(token)).map_err(|_| Exchange {
        end: Instant::now(),
        seqs: Vec::new(),
        saw_trigger: false,
        error: Some(ErrorKind::Decode),
    })?;
    if long {
        *request.timeout_mut() = Some(poll + POLL_SLACK);
    }
    Ok(request)
}

/// The gaps of a sliding sync answer: rooms seen before on this connection (not `initial`)
/// whose timeline is `limited` (more new events than the timeline limit), with the timeline's
/// `prev_batch`. Read leniently (only these fields): an answer it cannot read has none.
pub fn gaps(body: &[u8]) -> Vec<(OwnedRoomId, String)> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        rooms: std::collections::BTreeMap<OwnedRoomId, Room>,
    }
    #[derive(serde::Deserialize)]
    struct Room {
        #[serde(default)]
        initial: bool,
        #[serde(default)]
        limited: bool,
        #[serde(default)]
        prev_batch: Option<String>,
    }
    serde_json::from_slice::<Answer>(body)
        .map(|a| {
            a.rooms
                .into_iter()
                .filter(|(_, r)| r.limited && !r.initial)
                .filter_map(|(id, r)| r.prev_batch.map(|p| (id, p)))
                .collect()
        })
        .unwrap_or_default()
}

/// [`exchange`] with the request already built (a herd builds its first requests before the
/// release).
pub async fn send(
    client: &MatrixClient,
    rec: Option<&Recorder>,
    conn: &mut Connection,
    request: reqwest::Request,
    intended: Instant,
) -> Exchange {
    send_inner(
        client,
        rec.map(|r| (r, Ep::SlidingSync)),
        conn,
        request,
        intended,
        None,
    )
    .await
}

/// [`send`], recorded as `ep` (a triggered herd's reaction is a re-sync).
pub async fn send_as(
    client: &MatrixClient,
    rec: &Recorder,
    ep: Ep,
    conn: &mut Connection,
    request: reqwest::Request,
    intended: Instant,
) -> Exchange {
    send_inner(client, Some((rec, ep)), conn, request, intended, None).await
}

/// The most of an answer [`send_parsed`] holds: a room list page or an opened room is far below
/// this; a larger answer is a `body` error.
pub const MAX_KEPT_BODY: usize = 64 << 20;

/// [`send_as`] for a caller that reads more of the answer than the scanner finds (a catch-up
/// reader's room list and opened room): the answer is kept (up to [`MAX_KEPT_BODY`]) and handed
/// to `parse` after the timing is taken; a 200 that `parse` refuses (`None`: it lacks what the
/// client needs) is recorded as a `decode` error.
pub async fn send_parsed<T: Send>(
    client: &MatrixClient,
    rec: &Recorder,
    ep: Ep,
    conn: &mut Connection,
    request: reqwest::Request,
    intended: Instant,
    parse: impl FnOnce(&[u8]) -> Option<T> + Send,
) -> (Exchange, Option<T>) {
    let mut out = None;
    let mut parse = Some(parse);
    let mut check = |body: &[u8]| {
        out = parse.take().and_then(|p| p(body));
        out.is_some()
    };
    let x = send_inner(
        client,
        Some((rec, ep)),
        conn,
        request,
        intended,
        Some(&mut check),
    )
    .await;
    (x, out)
}

/// Reads a kept answer after the timing: `false`, the answer lacks what the client needs.
type BodyCheck<'a> = dyn FnMut(&[u8]) -> bool + Send + 'a;

async fn send_inner(
    client: &MatrixClient,
    rec: Option<(&Recorder, Ep)>,
    conn: &mut Connection,
    request: reqwest::Request,
    intended: Instant,
    check: Option<&mut BodyCheck<'_>>,
) -> Exchange {
    let bytes_out = request
        .body()
        .and_then(|b| b.as_bytes())
        .map_or(0, |b| b.len() as u64);
    if let Some((rec, ep)) = rec {
        rec.start(ep);
    }
    let sent = Instant::now();
    let mut scan = Scanner::default();
    let error = match client.http().execute(request).await {
        Err(e) => Some(ErrorKind::of(&e)),
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let keep = match status {
                200 if check.is_some() => MAX_KEPT_BODY + 1,
                s if s >= 400 => 4096,
                _ => 0,
            };
            let scanner = (status == 200).then_some(&mut scan);
            let (n, kept, failed) = read_body(&mut resp, keep, scanner).await;
            let end = Instant::now();
            let error = match (failed, status) {
                (Some(kind), _) => Some(kind),
                (None, 200) if check.is_some() && kept.len() > MAX_KEPT_BODY => {
                    Some(ErrorKind::Body)
                }
                (None, 200) if scan.pos.is_none() => Some(ErrorKind::Decode),
                // Parsed after the timing was taken.
                (None, 200) => match check {
                    Some(check) => (!check(&kept)).then_some(ErrorKind::Decode),
                    None => None,
                },
                (None, s) => Some(ErrorKind::Status(s, error_fields(&kept).0)),
            };
            if let Some((rec, ep)) = rec {
                rec.done(ep, intended, sent, end, error.clone(), n, bytes_out);
            }
            if error.is_none() {
                conn.absorb(scan.pos.take().unwrap_or_default(), scan.count);
            }
            return Exchange {
                end,
                seqs: std::mem::take(&mut scan.seqs),
                saw_trigger: scan.saw_trigger,
                error,
            };
        }
    };
    let end = Instant::now();
    if let Some((rec, ep)) = rec {
        rec.done(ep, intended, sent, end, error.clone(), 0, bytes_out);
    }
    Exchange {
        end,
        seqs: Vec::new(),
        saw_trigger: false,
        error,
    }
}

/// How long a client took to see its room list, from its intended start.
#[derive(Debug, Clone, Copy)]
pub struct ListLoad {
    /// The first answer (the first rooms painted).
    pub first: Option<Duration>,
    /// The answer that completed the list (every room listed).
    pub full: Option<Duration>,
    /// Requests sent (answered or failed).
    pub requests: u32,
    /// The list's length.
    pub rooms: u64,
    /// The load failed: a request failed, or the list never completed.
    pub failed: bool,
}

/// Load a connection's room list as the SDK does (Init, then Growing until every room is
/// listed), the first request already built. Every request is recorded; the next one is due
/// when the previous answer arrived.
pub async fn load_list(
    client: &MatrixClient,
    rec: &Recorder,
    token: &str,
    conn: &mut Connection,
    first: reqwest::Request,
    start: Instant,
) -> ListLoad {
    let mut load = ListLoad {
        first: None,
        full: None,
        requests: 1,
        rooms: 0,
        failed: false,
    };
    let mut x = send(client, Some(rec), conn, first, start).await;
    loop {
        if x.error.is_some() {
            load.failed = true;
            return load;
        }
        load.first.get_or_insert(x.end - start);
        if conn.stage() == Stage::Loaded {
            load.full = Some(x.end - start);
            load.rooms = conn.count().unwrap_or(0);
            return load;
        }
        if load.requests >= MAX_LOAD_REQUESTS {
            load.failed = true;
            return load;
        }
        load.requests += 1;
        let due = x.end;
        x = exchange(client, Some(rec), token, conn, Duration::ZERO, due).await;
    }
}

/// Connections whose lists are loaded (untimed preparation, a few at a time, as the v2
/// workloads fetch their `since` tokens): what long-poll clients start from.
pub async fn prepare(
    client: &MatrixClient,
    tokens: &[String],
    user_ids: &[OwnedUserId],
) -> Result<Vec<Connection>, CallError> {
    use futures::StreamExt;
    let got: Vec<(usize, Result<Connection, CallError>)> =
        futures::stream::iter(tokens.iter().enumerate())
            .map(|(i, token)| async move {
                let user = user_ids.get(i).map_or("$ME", |u| u.as_str());
                let mut conn = Connection::new(user);
                let mut sent = 0u32;
                while conn.stage() != Stage::Loaded {
                    sent += 1;
                    let x = exchange(
                        client,
                        None,
                        token,
                        &mut conn,
                        Duration::ZERO,
                        Instant::now(),
                    )
                    .await;
                    if let Some(e) = &x.error {
                        if x.expired() && sent < 3 {
                            conn.reset();
                            continue;
                        }
                        return (
                            i,
                            Err(CallError::Decode {
                                endpoint: PATH.into(),
                                source: format!(
                                    "loading {user}'s room list before the workload: {}",
                                    e.label()
                                )
                                .into(),
                            }),
                        );
                    }
                    if sent > MAX_LOAD_REQUESTS {
                        break;
                    }
                }
                (i, Ok(conn))
            })
            .buffer_unordered(16)
            .collect()
            .await;
    let mut out: Vec<Option<Connection>> = vec![None; tokens.len()];
    for (i, r) in got {
        out[i] = Some(r?);
    }
    Ok(out.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(req: &v5::Request) -> serde_json::Value {
        use ruma::api::OutgoingRequestExt;
        let http: http::Request<Vec<u8>> = req
            .clone()
            .try_into_http_request(
                "http://127.0.0.1:1",
                ruma::api::auth_scheme::SendAccessToken::IfRequired("t"),
                std::borrow::Cow::Owned(ruma::api::SupportedVersions::from_parts(
                    &["v1.11".to_string()],
                    &Default::default(),
                )),
            )
            .unwrap();
        assert_eq!(
            http.uri().path(),
            "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
        );
        serde_json::from_slice(http.body()).unwrap()
    }

    #[test]
    fn gaps_are_limited_updates_of_rooms_seen_before() {
        let body = br#"{"pos":"5","rooms":{
            "!new:hs":{"initial":true,"limited":true,"prev_batch":"a","timeline":[]},
            "!busy:hs":{"limited":true,"prev_batch":"b","timeline":[],"num_live":12},
            "!calm:hs":{"limited":false,"prev_batch":"c","timeline":[]},
            "!nobatch:hs":{"limited":true,"timeline":[]}}}"#;
        assert_eq!(
            gaps(body),
            vec![(ruma::owned_room_id!("!busy:hs"), "b".to_string())]
        );
        assert!(gaps(br#"{"pos":"6"}"#).is_empty());
        assert!(gaps(b"not json").is_empty());
    }

    #[test]
    fn a_connection_walks_the_sdks_stages() {
        let mut c = Connection::new("@u1:hs");
        let b = body(&c.request(Duration::from_secs(30)));
        assert_eq!(b["conn_id"], "room-list");
        assert_eq!(
            b["lists"]["all_rooms"]["ranges"],
            serde_json::json!([[0, 19]])
        );
        assert_eq!(b["lists"]["all_rooms"]["timeline_limit"], 1);
        let rs = &b["lists"]["all_rooms"]["required_state"];
        assert!(
            rs.as_array()
                .unwrap()
                .contains(&serde_json::json!(["m.room.member", "$LAZY"]))
        );
        assert!(
            rs.as_array()
                .unwrap()
                .contains(&serde_json::json!(["m.room.member", "@u1:hs"]))
        );
        for x in ["account_data", "receipts", "typing", "e2ee", "to_device"] {
            assert_eq!(b["extensions"][x]["enabled"], true, "{x}");
        }
        assert!(b.get("pos").is_none());

        // 45 rooms: Init, then 0..=19 (timeline 10), 0..=39, 0..=44, then long polls.
        c.absorb("p1".into(), Some(45));
        assert_eq!(c.stage(), Stage::Growing);
        let mut ranges = Vec::new();
        while c.stage() == Stage::Growing {
            let r = c.request(Duration::from_secs(30));
            assert_eq!(r.timeout, Some(Duration::ZERO));
            ranges.push(r.lists[LIST].ranges[0].1);
            c.absorb(format!("p{}", c.answered() + 1), Some(45));
        }
        assert_eq!(ranges, [uint(19), uint(39), uint(44)]);
        let r = c.request(Duration::from_secs(30));
        assert_eq!(r.timeout, Some(Duration::from_secs(30)));
        assert_eq!(r.pos.as_deref(), Some("p4"));
        assert_eq!(r.lists[LIST].room_details.timeline_limit, uint(10));

        // Opening a room subscribes to it with the longer timeline.
        c.subscribe(ruma::owned_room_id!("!big:hs"));
        let b = body(&c.request(Duration::from_secs(30)));
        assert_eq!(b["room_subscriptions"]["!big:hs"]["timeline_limit"], 20);

        // A user in no room: loaded after the first growing request.
        let mut c = Connection::new("@u2:hs");
        c.absorb("a".into(), Some(0));
        c.absorb("b".into(), Some(0));
        assert_eq!(c.stage(), Stage::Loaded);
    }
}
