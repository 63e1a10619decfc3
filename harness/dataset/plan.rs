//! The synthetic dataset: a deterministic model built from a seed.
//!
//! Nothing here talks to a server. The plan is computed lazily: users, rooms and timelines each
//! draw from their own ChaCha stream (`seed`, stream = a tag and an index), so any user or room can
//! be produced on its own, in any order, without holding the whole plan in memory, and the same
//! spec always yields the same plan.

use std::collections::BTreeMap;

use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::scenario::DatasetSpec;

/// The event type of the custom state events a large-state room holds.
pub const STATE_EVENT_TYPE: &str = "org.hsbench.state";

/// Exponent of the room-size power law: `P(size >= s) ∝ s^-(ALPHA-1)`. With 2.0 the median
/// ordinary room has 4 members and one room in ten has 20 or more (capped at the spec's maximum).
pub const ROOM_SIZE_ALPHA: f64 = 2.0;

/// σ of the log-normal spread of timeline lengths around `messages_per_room`.
pub const TIMELINE_SIGMA: f64 = 0.75;

/// A user of the plan. Users are numbered `0..users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPlan {
    pub index: u64,
    pub localpart: String,
    pub display_name: Option<String>,
    /// An `mxc://` URL (not backed by media: avatars by URL).
    pub avatar_url: Option<String>,
    pub presence_online: bool,
    /// Devices (logins); the first comes with registration.
    pub devices: u32,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    schemars::JsonSchema,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// The one big room: public, the first `big_room_members` users.
    Big,
    /// Anyone may join.
    Public,
    /// Members are invited by the creator, then join.
    Private,
    /// A direct-message room of two users (the other is invited).
    Direct,
}

/// A room of the plan: 0 is the big room, `1..=rooms` ordinary, then the DM rooms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomPlan {
    pub index: u64,
    pub name: String,
    pub kind: RoomKind,
    /// Member user indices, the creator first; distinct.
    pub members: Vec<u64>,
    /// Custom state events (`org.hsbench.state`) the creator sends.
    pub state_events: u64,
    /// Timeline events (messages, replies, reactions, edits, redactions).
    pub timeline_len: u64,
}

impl RoomPlan {
    pub fn creator(&self) -> u64 {
        self.members[0]
    }
    /// Members who need an invite before they can join.
    pub fn invited(&self) -> &[u64] {
        match self.kind {
            RoomKind::Private | RoomKind::Direct => &self.members[1..],
            _ => &[],
        }
    }
}

/// What one timeline event is; `to` is the index of an earlier event of the same room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Message {
        body: String,
    },
    Reply {
        to: usize,
        body: String,
    },
    Reaction {
        to: usize,
        key: String,
    },
    /// Always by the sender of the edited message.
    Edit {
        to: usize,
        body: String,
    },
    /// Always by the sender of the redacted message.
    Redaction {
        to: usize,
    },
}

/// One timeline event of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEvent {
    pub sender: u64,
    pub kind: EventKind,
}

impl TimelineEvent {
    /// The Matrix event type it becomes.
    pub fn event_type(&self) -> &'static str {
        match self.kind {
            EventKind::Message { .. } | EventKind::Reply { .. } | EventKind::Edit { .. } => {
                "m.room.message"
            }
            EventKind::Reaction { .. } => "m.reaction",
            EventKind::Redaction { .. } => "m.room.redaction",
        }
    }
}

/// Counts of everything the plan contains.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    schemars::JsonSchema,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct PlanTotals {
    pub users: u64,
    pub display_names: u64,
    #[serde(default)]
    pub avatars: u64,
    pub presence_online: u64,
    /// Devices beyond each user's first.
    pub extra_devices: u64,
    /// Rooms, the big room and DM rooms included.
    pub rooms: u64,
    pub private_rooms: u64,
    pub dm_rooms: u64,
    /// Joins, creators included.
    pub memberships: u64,
    pub invites: u64,
    pub largest_room: u64,
    pub state_events: u64,
    /// All timeline events, and by type.
    pub timeline_events: u64,
    pub messages: u64,
    pub replies: u64,
    pub reactions: u64,
    pub edits: u64,
    pub redactions: u64,
    pub receipts: u64,
}

#[derive(Debug, Clone)]
pub struct DatasetPlan {
    spec: DatasetSpec,
}

const WORDS: &[&str] = &[
    "the",
    "server",
    "room",
    "sync",
    "state",
    "member",
    "event",
    "hello",
    "matrix",
    "federation",
    "is",
    "slow",
    "today",
    "again",
    "restart",
    "takes",
    "minutes",
    "users",
    "join",
    "leave",
    "we",
    "should",
    "measure",
    "it",
    "before",
    "release",
    "and",
    "after",
    "cache",
    "database",
    "query",
    "thanks",
    "ok",
    "lunch",
    "meeting",
    "deploy",
    "ship",
    "fix",
    "bug",
    "review",
    "patch",
];

const REACTIONS: &[&str] = &["👍", "❤️", "😂", "🎉", "👀", "🚀"];

// Stream tags: every kind of draw has its own stream space.
const USERS: u64 = 1 << 60;
const ROOMS: u64 = 2 << 60;
const TIMELINE: u64 = 3 << 60;
const RECEIPTS: u64 = 4 << 60;
const TIMES: u64 = 5 << 60;

/// The newest event of any room is at least this old (ms) when the history ends.
const MIN_AGE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// When a room's events happen, in Unix milliseconds (see [`DatasetPlan::room_times`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomTimes {
    /// createRoom's events and the invites follow one another from here, a millisecond apart.
    pub created: i64,
    /// The joins of the members after the creator, in the order of `RoomPlan::members`; rising.
    pub joins: Vec<i64>,
    /// One per timeline event; rising; the last is the room's last activity.
    pub timeline: Vec<i64>,
}

impl RoomTimes {
    /// The room's last activity: its newest event.
    pub fn last(&self) -> i64 {
        self.timeline
            .last()
            .or(self.joins.last())
            .copied()
            .unwrap_or(self.created)
    }
}

/// The diurnal rhythm of chat (UTC): quiet from 23:00 to 07:00 (0.15), busiest at 15:00 (1).
pub fn diurnal_weight(ts_ms: i64) -> f64 {
    let hour = ts_ms.rem_euclid(DAY_MS) as f64 / 3_600_000.0;
    let day = if (7.0..23.0).contains(&hour) {
        (std::f64::consts::PI * (hour - 7.0) / 16.0).sin()
    } else {
        0.0
    };
    0.15 + 0.85 * day
}

/// `n` rising times in `[from, to]`, drawn with the diurnal rhythm (rejection sampling), then
/// nudged a millisecond apart where two coincide.
fn rising_times(rng: &mut impl Rng, n: usize, from: i64, to: i64, diurnal: bool) -> Vec<i64> {
    let mut out: Vec<i64> = (0..n)
        .map(|_| {
            loop {
                let t = rng.random_range(from..=to.max(from));
                if !diurnal || rng.random::<f64>() < diurnal_weight(t) {
                    break t;
                }
            }
        })
        .collect();
    out.sort_unstable();
    for i in 1..out.len() {
        if out[i] <= out[i - 1] {
            out[i] = out[i - 1] + 1;
        }
    }
    out
}

impl DatasetPlan {
    pub fn new(spec: DatasetSpec) -> Self {
        Self { spec }
    }

    pub fn spec(&self) -> &DatasetSpec {
        &self.spec
    }

    /// The localpart of user `i`: fixed width so that names sort like indices.
    pub fn localpart(i: u64) -> String {
        format!("hsb{i:07}")
    }

    fn rng(&self, stream: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.spec.seed);
        rng.set_stream(stream);
        rng
    }

    pub fn user(&self, i: u64) -> UserPlan {
        let mut rng = self.rng(USERS | i);
        let named = rng.random::<f64>() < self.spec.display_name_share;
        let presence_online = rng.random::<f64>() < self.spec.presence_share;
        let devices = if rng.random::<f64>() < self.spec.multi_device_share {
            2
        } else {
            1
        };
        // Drawn last, and only when asked for: plans without avatars stay what they were.
        let avatar = self.spec.avatar_share > 0.0 && rng.random::<f64>() < self.spec.avatar_share;
        UserPlan {
            index: i,
            localpart: Self::localpart(i),
            display_name: named.then(|| format!("Bench User {i}")),
            avatar_url: avatar.then(|| format!("mxc://hsbench.local/avatar-{i:07}")),
            presence_online,
            devices,
        }
    }

    pub fn users(&self) -> impl Iterator<Item = UserPlan> + '_ {
        (0..self.spec.users).map(|i| self.user(i))
    }

    /// Number of rooms: the big room, the ordinary rooms and the DM rooms.
    pub fn room_count(&self) -> u64 {
        1 + self.spec.rooms + self.spec.dm_pairs
    }

    /// Room `i`: 0 is the big room (users `0..big_room_members`), `1..=rooms` ordinary rooms of a
    /// power-law size, then DM rooms of two random users.
    pub fn room(&self, i: u64) -> RoomPlan {
        let mut rng = self.rng(ROOMS | i);
        let (kind, name, members) = if i == 0 {
            (
                RoomKind::Big,
                "hq".to_string(),
                (0..self.spec.big_room_members).collect(),
            )
        } else if i <= self.spec.rooms {
            let size = power_law_size(&mut rng, 2, self.spec.max_room_members);
            let members = index::sample(&mut rng, self.spec.users as usize, size as usize)
                .into_iter()
                .map(|u| u as u64)
                .collect();
            let kind = if rng.random::<f64>() < self.spec.private_room_share {
                RoomKind::Private
            } else {
                RoomKind::Public
            };
            (kind, format!("room-{i}"), members)
        } else {
            let members = index::sample(&mut rng, self.spec.users as usize, 2)
                .into_iter()
                .map(|u| u as u64)
                .collect();
            (RoomKind::Direct, format!("dm-{i}"), members)
        };
        let state_events = if (1..=self.spec.state_rooms).contains(&i) {
            self.spec.state_events_per_room
        } else {
            0
        };
        RoomPlan {
            index: i,
            name,
            kind,
            members,
            state_events,
            timeline_len: timeline_len(&mut rng, self.spec.messages_per_room),
        }
    }

    pub fn rooms(&self) -> impl Iterator<Item = RoomPlan> + '_ {
        (0..self.room_count()).map(|i| self.room(i))
    }

    /// The timeline of a room, in sending order. Senders are members; edits and redactions are
    /// by the target's sender; reactions and replies point at earlier messages.
    pub fn timeline(&self, room: &RoomPlan) -> Vec<TimelineEvent> {
        let mut rng = self.rng(TIMELINE | room.index);
        let s = &self.spec;
        let mut out: Vec<TimelineEvent> = Vec::with_capacity(room.timeline_len as usize);
        // Indices of (non-redacted) messages and replies, the targets of everything else.
        let mut targets: Vec<usize> = Vec::new();
        // A server refuses the same reaction twice (sender, target, key).
        let mut reacted: std::collections::HashSet<(u64, usize, usize)> = Default::default();
        for _ in 0..room.timeline_len {
            let sender = room.members[rng.random_range(0..room.members.len())];
            let roll: f64 = rng.random();
            let pick = |rng: &mut ChaCha8Rng, targets: &[usize]| {
                (!targets.is_empty()).then(|| targets[rng.random_range(0..targets.len())])
            };
            let kind_and_sender = if roll < s.reply_share {
                pick(&mut rng, &targets).map(|to| {
                    (
                        EventKind::Reply {
                            to,
                            body: message_body(&mut rng),
                        },
                        sender,
                    )
                })
            } else if roll < s.reply_share + s.reaction_share {
                pick(&mut rng, &targets).and_then(|to| {
                    let k = rng.random_range(0..REACTIONS.len());
                    reacted.insert((sender, to, k)).then(|| {
                        let key = REACTIONS[k].to_string();
                        (EventKind::Reaction { to, key }, sender)
                    })
                })
            } else if roll < s.reply_share + s.reaction_share + s.edit_share {
                pick(&mut rng, &targets).map(|to| {
                    (
                        EventKind::Edit {
                            to,
                            body: message_body(&mut rng),
                        },
                        out[to].sender,
                    )
                })
            } else if roll < s.reply_share + s.reaction_share + s.edit_share + s.redaction_share {
                pick(&mut rng, &targets).map(|to| (EventKind::Redaction { to }, out[to].sender))
            } else {
                None
            };
            let (kind, sender) = kind_and_sender.unwrap_or_else(|| {
                (
                    EventKind::Message {
                        body: message_body(&mut rng),
                    },
                    sender,
                )
            });
            match &kind {
                EventKind::Message { .. } | EventKind::Reply { .. } => targets.push(out.len()),
                EventKind::Redaction { to } => targets.retain(|t| t != to),
                _ => {}
            }
            out.push(TimelineEvent { sender, kind });
        }
        out
    }

    /// When room `room` was created and when it was last active (Unix ms), for a history of
    /// `history_seconds` that ends at `end_ms`. Rooms are created across the whole window (the
    /// big room at its start); the last activity is skewed to the recent past (a room's idle
    /// time is its age × u⁴), as in a real room list where a few rooms are busy and most are
    /// quiet.
    pub fn room_span(&self, room: &RoomPlan, end_ms: i64) -> (i64, i64) {
        let mut rng = self.rng(TIMES | room.index);
        self.span_from(&mut rng, room, end_ms)
    }

    fn span_from(&self, rng: &mut ChaCha8Rng, room: &RoomPlan, end_ms: i64) -> (i64, i64) {
        let h = self.spec.history_seconds as f64 * 1000.0;
        let (created_age, idle) = if room.kind == RoomKind::Big {
            (h, h * 1e-4 * rng.random::<f64>())
        } else {
            let c = h * (0.05 + 0.95 * rng.random::<f64>());
            (c, c * 0.9 * rng.random::<f64>().powi(4))
        };
        let newest = end_ms - MIN_AGE_MS;
        let end = newest - idle as i64;
        // Room enough for every event a millisecond apart, whatever the window.
        let events = 16 + room.state_events + room.members.len() as u64 * 2 + room.timeline_len;
        let start = (newest - created_age as i64).min(end - 2 * events as i64);
        (start, end)
    }

    /// When each event of `room` happens, for a history ending at `end_ms`: createRoom's events
    /// at the room's creation, the joins over the first tenth of its life, the timeline after
    /// them with the diurnal rhythm, the last event at the room's last activity.
    pub fn room_times(&self, room: &RoomPlan, end_ms: i64) -> RoomTimes {
        let mut rng = self.rng(TIMES | room.index);
        let (start, end) = self.span_from(&mut rng, room, end_ms);
        let setup = 16 + room.state_events as i64 + room.members.len() as i64;
        let joins_n = room.members.len().saturating_sub(1);
        let join_from = start + setup;
        let join_to = join_from + ((end - start) / 10).max(joins_n as i64);
        let joins = rising_times(&mut rng, joins_n, join_from, join_to, false);
        let tl_from = joins.last().copied().unwrap_or(join_from).max(join_to) + 1;
        let n = room.timeline_len as usize;
        let mut timeline = rising_times(&mut rng, n, tl_from, end, true);
        if let Some(last) = timeline.last_mut() {
            *last = (*last).max(end);
        }
        RoomTimes {
            created: start,
            joins,
            timeline,
        }
    }

    /// The DM partners of every user with DMs, as `m.direct` account data lists them: user →
    /// (partner → DM room indices, in plan order).
    pub fn direct_rooms(&self) -> BTreeMap<u64, BTreeMap<u64, Vec<u64>>> {
        let mut out: BTreeMap<u64, BTreeMap<u64, Vec<u64>>> = BTreeMap::new();
        for i in 1 + self.spec.rooms..self.room_count() {
            let room = self.room(i);
            let (a, b) = (room.members[0], room.members[1]);
            out.entry(a).or_default().entry(b).or_default().push(i);
            out.entry(b).or_default().entry(a).or_default().push(i);
        }
        out
    }

    /// Every DM member's `m.direct` account data: partner's user id → the DM room ids
    /// (`room_ids` by room index).
    pub fn direct_content<R: AsRef<str>>(
        &self,
        user_id: &dyn Fn(u64) -> String,
        room_ids: &[R],
    ) -> Vec<(u64, serde_json::Value)> {
        self.direct_rooms()
            .into_iter()
            .map(|(u, partners)| {
                let content: serde_json::Map<String, serde_json::Value> = partners
                    .into_iter()
                    .map(|(v, rooms)| {
                        let ids: Vec<serde_json::Value> = rooms
                            .iter()
                            .map(|&r| room_ids[r as usize].as_ref().into())
                            .collect();
                        (user_id(v), serde_json::Value::Array(ids))
                    })
                    .collect();
                (u, serde_json::Value::Object(content))
            })
            .collect()
    }

    /// Read receipts of a room: (member, index of the timeline event read).
    pub fn receipts(&self, room: &RoomPlan) -> Vec<(u64, usize)> {
        if room.timeline_len == 0 {
            return Vec::new();
        }
        let mut rng = self.rng(RECEIPTS | room.index);
        let mut out = Vec::new();
        for &m in &room.members {
            if rng.random::<f64>() < self.spec.receipt_share {
                out.push((m, rng.random_range(0..room.timeline_len as usize)));
            }
        }
        out
    }

    /// [`totals`](Self::totals) if they can be counted within `budget` (the walk grows with
    /// the dataset: about 0.4 s per million events); `None` when counting takes longer (the
    /// walk is left to finish on its own thread, for a caller that exits soon).
    pub fn totals_within(&self, budget: std::time::Duration) -> Option<PlanTotals> {
        let plan = self.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(plan.totals());
        });
        rx.recv_timeout(budget).ok()
    }

    /// Timeline events the spec asks for on average (rooms × messages per room), known without
    /// walking the plan.
    pub fn expected_timeline_events(&self) -> u64 {
        self.spec
            .rooms
            .saturating_add(1)
            .saturating_mul(self.spec.messages_per_room)
    }

    /// Everything counted, by walking the plan once (rooms one at a time).
    pub fn totals(&self) -> PlanTotals {
        let mut t = PlanTotals {
            users: self.spec.users,
            rooms: self.room_count(),
            ..Default::default()
        };
        for u in self.users() {
            t.display_names += u64::from(u.display_name.is_some());
            t.avatars += u64::from(u.avatar_url.is_some());
            t.presence_online += u64::from(u.presence_online);
            t.extra_devices += u64::from(u.devices - 1);
        }
        for room in self.rooms() {
            let n = room.members.len() as u64;
            t.memberships += n;
            t.invites += room.invited().len() as u64;
            t.largest_room = t.largest_room.max(n);
            t.private_rooms += u64::from(room.kind == RoomKind::Private);
            t.dm_rooms += u64::from(room.kind == RoomKind::Direct);
            t.state_events += room.state_events;
            for e in self.timeline(&room) {
                t.timeline_events += 1;
                match e.kind {
                    EventKind::Message { .. } => t.messages += 1,
                    EventKind::Reply { .. } => t.replies += 1,
                    EventKind::Reaction { .. } => t.reactions += 1,
                    EventKind::Edit { .. } => t.edits += 1,
                    EventKind::Redaction { .. } => t.redactions += 1,
                }
            }
            t.receipts += self.receipts(&room).len() as u64;
        }
        t
    }
}

/// Discrete power law on `[min, max]` by inversion: `floor(min / u^(1/(alpha-1)))`.
fn power_law_size(rng: &mut impl Rng, min: u64, max: u64) -> u64 {
    let u: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let s = (min as f64 / u.powf(1.0 / (ROOM_SIZE_ALPHA - 1.0))).floor();
    (s as u64).clamp(min, max.max(min))
}

fn standard_normal(rng: &mut impl Rng) -> f64 {
    // Box-Muller.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Log-normal around `mean` (the mean is preserved: `exp(σz - σ²/2)`).
fn timeline_len(rng: &mut impl Rng, mean: u64) -> u64 {
    if mean == 0 {
        return 0;
    }
    let z = standard_normal(rng);
    let f = (TIMELINE_SIGMA * z - TIMELINE_SIGMA * TIMELINE_SIGMA / 2.0).exp();
    (mean as f64 * f).round() as u64
}

/// A chat-like body: log-normal word count (median ~7 words, long tail).
fn message_body(rng: &mut impl Rng) -> String {
    let z = standard_normal(rng);
    let words = ((2.0 + 0.8 * z).exp().round() as usize).clamp(1, 400);
    let mut body = String::with_capacity(words * 6);
    for w in 0..words {
        if w > 0 {
            body.push(' ');
        }
        body.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(seed: u64) -> DatasetSpec {
        DatasetSpec {
            max_room_members: 100,
            dm_pairs: 20,
            state_rooms: 3,
            state_events_per_room: 40,
            ..DatasetSpec::new(seed, 500, 200, 300, 30)
        }
    }

    #[test]
    fn same_seed_same_plan_other_seed_other_plan() {
        let a = DatasetPlan::new(spec(1));
        let b = DatasetPlan::new(spec(1));
        let c = DatasetPlan::new(spec(2));
        let rooms_a: Vec<_> = a.rooms().collect();
        assert_eq!(rooms_a, b.rooms().collect::<Vec<_>>());
        assert_ne!(rooms_a, c.rooms().collect::<Vec<_>>());
        assert_eq!(a.timeline(&rooms_a[7]), b.timeline(&rooms_a[7]));
        assert_eq!(a.receipts(&rooms_a[7]), b.receipts(&rooms_a[7]));
        assert_eq!(a.users().collect::<Vec<_>>(), b.users().collect::<Vec<_>>());
        assert_eq!(a.totals(), b.totals());
        assert_ne!(a.totals(), c.totals());
        // Rooms can be produced on their own, in any order.
        assert_eq!(a.room(150), rooms_a[150]);
    }

    #[test]
    fn avatars_are_drawn_only_when_asked_and_leave_the_rest_of_the_plan_alone() {
        let without = DatasetPlan::new(spec(4));
        let with = DatasetPlan::new(DatasetSpec {
            avatar_share: 0.5,
            ..spec(4)
        });
        let mut n = 0;
        for (a, b) in without.users().zip(with.users()) {
            assert_eq!(a.avatar_url, None);
            // Everything else about the user is unchanged.
            assert_eq!(
                (a.display_name, a.presence_online, a.devices),
                (b.display_name.clone(), b.presence_online, b.devices)
            );
            if let Some(url) = &b.avatar_url {
                assert!(url.starts_with("mxc://hsbench.local/avatar-"), "{url}");
                n += 1;
            }
        }
        assert!((200..300).contains(&n), "{n} of 500 with avatars");
        assert_eq!(with.totals().avatars, n);
        assert_eq!(without.totals().avatars, 0);
        assert_eq!(without.room(9), with.room(9));
    }

    #[test]
    fn rooms_are_well_formed_and_skewed() {
        let p = DatasetPlan::new(spec(9));
        let mut sizes = Vec::new();
        for room in p.rooms().skip(1).take(200) {
            let mut m = room.members.clone();
            m.sort_unstable();
            m.dedup();
            assert_eq!(m.len(), room.members.len(), "members distinct");
            assert!(room.members.len() >= 2 && room.members.len() <= 100);
            assert!(room.members.iter().all(|&u| u < 500));
            assert!(matches!(room.kind, RoomKind::Public | RoomKind::Private));
            sizes.push(room.members.len());
        }
        sizes.sort_unstable();
        let median = sizes[sizes.len() / 2];
        assert!((2..=8).contains(&median), "median room size {median}");
        assert!(*sizes.last().unwrap() >= 20, "a tail of large rooms");
        let big = p.room(0);
        assert_eq!((big.kind, big.members.len()), (RoomKind::Big, 300));
        let dm = p.room(201);
        assert_eq!(
            (dm.kind, dm.members.len(), dm.invited().len()),
            (RoomKind::Direct, 2, 1)
        );
        assert_eq!(p.room(2).state_events, 40);
        assert_eq!(p.room(4).state_events, 0);
        let t = p.totals();
        assert_eq!(t.rooms, 221);
        assert_eq!(t.dm_rooms, 20);
        assert_eq!(t.state_events, 120);
        assert!(t.private_rooms > 30 && t.private_rooms < 90, "{t:?}");
        assert_eq!(t.largest_room, 300);
        assert_eq!(
            t.timeline_events,
            t.messages + t.replies + t.reactions + t.edits + t.redactions
        );
        // The mix is roughly what the spec asks for.
        let share = |n: u64| n as f64 / t.timeline_events as f64;
        assert!((share(t.replies) - 0.1).abs() < 0.03, "{t:?}");
        assert!((share(t.reactions) - 0.1).abs() < 0.03, "{t:?}");
        assert!(t.edits > 0 && t.redactions > 0 && t.receipts > 0);
        // Timeline lengths keep their mean.
        let mean = t.timeline_events as f64 / t.rooms as f64;
        assert!((mean - 30.0).abs() < 5.0, "mean timeline {mean}");
        assert!(t.display_names > 350 && t.display_names < 450, "{t:?}");
    }

    #[test]
    fn timelines_respect_ownership_and_order() {
        let p = DatasetPlan::new(spec(3));
        for room in p.rooms().take(60) {
            let tl = p.timeline(&room);
            assert_eq!(tl.len() as u64, room.timeline_len);
            let mut redacted = std::collections::HashSet::new();
            for (i, e) in tl.iter().enumerate() {
                assert!(room.members.contains(&e.sender));
                match &e.kind {
                    EventKind::Reply { to, .. } | EventKind::Reaction { to, .. } => {
                        assert!(*to < i && !redacted.contains(to));
                        assert!(matches!(
                            tl[*to].kind,
                            EventKind::Message { .. } | EventKind::Reply { .. }
                        ));
                    }
                    EventKind::Edit { to, .. } => {
                        assert!(*to < i && tl[*to].sender == e.sender);
                    }
                    EventKind::Redaction { to } => {
                        assert!(*to < i && tl[*to].sender == e.sender);
                        assert!(redacted.insert(*to), "redacted twice");
                    }
                    EventKind::Message { body } => assert!(!body.is_empty()),
                }
            }
            for (m, at) in p.receipts(&room) {
                assert!(room.members.contains(&m) && at < tl.len());
            }
        }
    }

    #[test]
    fn times_rise_inside_the_history_with_a_diurnal_rhythm() {
        let p = DatasetPlan::new(spec(3));
        let end = 1_780_000_000_000i64; // a fixed end: the plan does not read the clock
        let history = p.spec().history_seconds as i64 * 1000;
        let (mut day, mut night) = (0u64, 0u64);
        let mut lasts = Vec::new();
        for room in p.rooms() {
            let t = p.room_times(&room, end);
            assert_eq!(t, p.room_times(&room, end), "deterministic");
            assert_eq!(t.joins.len(), room.members.len() - 1);
            assert_eq!(t.timeline.len() as u64, room.timeline_len);
            let all: Vec<i64> = std::iter::once(t.created)
                .chain(t.joins.iter().copied())
                .chain(t.timeline.iter().copied())
                .collect();
            assert!(
                all.windows(2).all(|w| w[0] < w[1]),
                "room {} rises",
                room.index
            );
            assert!(
                t.created >= end - history - 86_400_000,
                "room {}",
                room.index
            );
            assert!(t.last() <= end - MIN_AGE_MS);
            assert_eq!(t.last(), p.room_span(&room, end).1.max(t.last()));
            for &ts in &t.timeline {
                let hour = ts.rem_euclid(DAY_MS) / 3_600_000;
                if (12..18).contains(&hour) {
                    day += 1;
                } else if hour < 6 {
                    night += 1;
                }
            }
            lasts.push(t.last());
        }
        // Six busy hours against six quiet ones: the weights average ~0.93 and 0.15.
        assert!(day > 4 * night, "{day} events 12-18h, {night} events 0-6h");
        // Most rooms went quiet recently, some long ago: the room list has a real order.
        lasts.sort_unstable();
        let median_idle = end - lasts[lasts.len() / 2];
        assert!(
            median_idle > 3_600_000 && median_idle < history / 4,
            "median idle {median_idle} ms"
        );
    }

    #[test]
    fn every_dm_is_listed_for_both_members() {
        let p = DatasetPlan::new(spec(4));
        let direct = p.direct_rooms();
        let listed: usize = direct.values().flat_map(|m| m.values()).map(Vec::len).sum();
        assert_eq!(listed as u64, 2 * p.spec().dm_pairs);
        for (u, partners) in &direct {
            for (v, rooms) in partners {
                assert_eq!(direct[v][u], *rooms);
                for &r in rooms {
                    let room = p.room(r);
                    assert_eq!(room.kind, RoomKind::Direct);
                    assert!(room.members.contains(u) && room.members.contains(v));
                }
            }
        }
    }
}
