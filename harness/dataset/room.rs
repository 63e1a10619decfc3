//! One room's rows, as Synapse writes them: the events that `createRoom` with a preset, the
//! invites, the joins and the timeline produce, their state groups, auth chains and memberships.

use crate::dataset::chain::{ChainIndex, chain_cover};
use crate::dataset::error::ImportError;
use crate::dataset::event::{BuiltEvent, EventFactory, FORMAT_VERSION, INSTANCE, ROOM_VERSION};
use crate::dataset::plan::{DatasetPlan, EventKind, RoomKind, RoomPlan, RoomTimes, TimelineEvent};
use crate::dataset::sink::{Sink, Table, Val};
use crate::row;
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The content of a v12 room's `m.room.create` as `createRoom` writes it: a trusted private
/// chat (a DM) makes its invitees `additional_creators` (MSC4289).
pub(crate) fn create_content(
    room: &RoomPlan,
    user_id: &dyn Fn(u64) -> String,
) -> serde_json::Value {
    let mut c = json!({"room_version": ROOM_VERSION});
    if room.kind == RoomKind::Direct {
        let invitees: Vec<String> = room.invited().iter().map(|&u| user_id(u)).collect();
        c["additional_creators"] = json!(invitees);
    }
    c
}

/// Power levels of a v12 room made by `createRoom` with a preset: no user is listed, since v12
/// creators (the sender and a DM's `additional_creators`) are privileged by the create event.
pub(crate) fn power_levels(room: &RoomPlan) -> serde_json::Value {
    let users = serde_json::Map::new();
    let public = matches!(room.kind, RoomKind::Big | RoomKind::Public);
    let mut events = json!({
        "m.room.avatar": 50, "m.room.canonical_alias": 50, "m.room.encryption": 100,
        "m.room.history_visibility": 100, "m.room.name": 50, "m.room.power_levels": 100,
        "m.room.server_acl": 100, "m.room.tombstone": 150,
    });
    if public {
        events["m.call.invite"] = json!(50);
    }
    json!({
        "ban": 50, "events": events, "events_default": 0, "historical": 100,
        "invite": if public { 50 } else { 0 }, "kick": 50, "redact": 50, "state_default": 50,
        "users": users, "users_default": 0,
    })
}

/// A user's profile as Synapse keeps it: the planned display name, else the localpart
/// (Synapse sets it at registration), and the avatar URL.
pub(crate) struct Profile {
    pub(crate) name: String,
    pub(crate) avatar: Option<String>,
}

pub(crate) fn profile(plan: &DatasetPlan, u: u64) -> Profile {
    let p = plan.user(u);
    Profile {
        name: p.display_name.unwrap_or(p.localpart),
        avatar: p.avatar_url,
    }
}

/// The content of a membership event: Synapse copies the target's profile into it.
pub(crate) fn member_content(p: &Profile, membership: &str) -> serde_json::Value {
    let mut c = json!({"membership": membership, "displayname": p.name});
    if let Some(a) = &p.avatar {
        c["avatar_url"] = json!(a);
    }
    c
}

/// Per-room results the user-level tables need afterwards.
pub(crate) struct RoomOutcome {
    /// The room's index in the plan.
    pub(crate) index: u64,
    pub(crate) room_id: String,
    pub(crate) kind: RoomKind,
    /// Joined members (user index).
    pub(crate) members: Vec<u64>,
}

/// Counters shared across rooms: Synapse's stream orderings and state group ids.
pub(crate) struct Streams {
    pub(crate) stream: i64,
    pub(crate) state_group: i64,
    pub(crate) receipt: i64,
    pub(crate) chain: i64,
    /// Where the dataset's history ends (the import's start): events are dated before it.
    pub(crate) end_ms: i64,
}

impl Streams {
    pub(crate) fn next_stream(&mut self) -> i64 {
        self.stream += 1;
        self.stream
    }
}

/// State of a room while it is built: current state map and its state group.
pub(crate) struct RoomState {
    pub(crate) map: BTreeMap<(String, String), String>,
    /// Stream ordering of each state event.
    pub(crate) so_of: HashMap<String, i64>,
    pub(crate) group: i64,
    pub(crate) hops: u32,
    /// The create event, in every other state event's `event_auth` (room v12 leaves it out
    /// of `auth_events` but Synapse's `auth_event_ids()` adds it).
    pub(crate) create: Option<String>,
    /// The chain cover index of the room's state events.
    pub(crate) chain: ChainIndex,
}

/// A `room_memberships` row, held until the room is written (whether the member took part
/// in the timeline is known only then).
pub(crate) struct MembershipRow {
    pub(crate) event_id: String,
    pub(crate) target: String,
    pub(crate) sender: String,
    pub(crate) membership: &'static str,
    pub(crate) name: String,
    pub(crate) avatar: Option<String>,
    pub(crate) so: i64,
}

/// A room's events as `createRoom` with a preset, the invites, the joins and the timeline
/// produce them, written with every row Synapse keeps for them.
pub(crate) fn import_room(
    plan: &DatasetPlan,
    room: &RoomPlan,
    f: &EventFactory<'_>,
    sink: &mut dyn Sink,
    streams: &mut Streams,
    user_id: &dyn Fn(u64) -> String,
) -> Result<(RoomOutcome, u64), ImportError> {
    let mut w = RoomWriter::new(plan, room, f, sink, streams, user_id);
    let made = w.create_room()?;
    w.invites(&made)?;
    w.joins(&made)?;
    let sent = w.timeline(&made)?;
    w.push_summaries(&sent)?;
    w.receipts(&sent)?;
    w.memberships()?;
    w.room_rows(made.create_so)?;
    Ok(w.outcome())
}

/// What `createRoom` leaves that later events cite: the power levels, the join rules and the
/// creator's membership (their auth events), and the create event's stream ordering.
struct CreatedRoom {
    power_levels: String,
    join_rules: String,
    creator_member: String,
    create_so: i64,
}

/// The timeline as it was sent: the planned events, and the (event id, stream ordering) and
/// time of each.
struct SentTimeline {
    events: Vec<TimelineEvent>,
    ids: Vec<(String, i64)>,
    sent_at: Vec<i64>,
    receipts: Vec<(u64, usize)>,
}

/// One room while it is written: the room's state and the counters its events advance, with a
/// method per step of `import_room`.
struct RoomWriter<'a, 'k> {
    plan: &'a DatasetPlan,
    room: &'a RoomPlan,
    f: &'a EventFactory<'k>,
    sink: &'a mut dyn Sink,
    streams: &'a mut Streams,
    user_id: &'a dyn Fn(u64) -> String,
    creator: String,
    state: RoomState,
    /// Events written.
    count: u64,
    depth: i64,
    prev: Option<String>,
    room_id: String,
    /// User index -> (membership event id, stream ordering, membership) of the latest membership.
    membership: HashMap<u64, (String, i64, &'static str)>,
    membership_rows: Vec<MembershipRow>,
    /// Members who sent into the timeline.
    participants: HashSet<u64>,
    name: Option<String>,
    /// The stream ordering of the last message (sliding sync's bump stamp).
    last_bump: i64,
    /// When each event happens: the clock moves a millisecond per event and jumps forward to
    /// the planned time of each join and timeline event.
    times: RoomTimes,
    clock: i64,
}

impl<'a, 'k> RoomWriter<'a, 'k> {
    fn new(
        plan: &'a DatasetPlan,
        room: &'a RoomPlan,
        f: &'a EventFactory<'k>,
        sink: &'a mut dyn Sink,
        streams: &'a mut Streams,
        user_id: &'a dyn Fn(u64) -> String,
    ) -> Self {
        let times = plan.room_times(room, streams.end_ms);
        RoomWriter {
            plan,
            room,
            f,
            sink,
            creator: user_id(room.creator()),
            streams,
            user_id,
            state: RoomState {
                map: BTreeMap::new(),
                so_of: HashMap::new(),
                group: 0,
                hops: 0,
                create: None,
                chain: ChainIndex::default(),
            },
            count: 0,
            depth: 0,
            prev: None,
            room_id: String::new(),
            membership: HashMap::new(),
            membership_rows: Vec::new(),
            participants: HashSet::new(),
            name: None,
            last_bump: 0,
            clock: times.created,
            times,
        }
    }

    fn public(&self) -> bool {
        matches!(self.room.kind, RoomKind::Big | RoomKind::Public)
    }

    /// The current state event of a type and state key.
    fn current(&self, event_type: &str, state_key: &str) -> Option<String> {
        self.state
            .map
            .get(&(event_type.to_string(), state_key.to_string()))
            .cloned()
    }

    /// Sends one event: build it, then write every row it owns.
    fn send(
        &mut self,
        event_type: &str,
        state_key: Option<String>,
        sender: &str,
        content: serde_json::Value,
        auth: Vec<String>,
    ) -> Result<(BuiltEvent, i64), ImportError> {
        self.depth += 1;
        let so = self.streams.next_stream();
        let ts = self.clock;
        self.clock += 1;
        let ev = self
            .f
            .build(
                (!self.room_id.is_empty()).then_some(self.room_id.as_str()),
                event_type,
                state_key.as_deref(),
                sender,
                content,
                self.depth,
                ts,
                self.prev.as_deref(),
                auth,
            )
            .map_err(|source| ImportError::Event {
                step: "events",
                what: format!("{event_type} #{}", self.depth),
                source,
            })?;
        if self.room_id.is_empty() {
            self.room_id = format!("!{}", &ev.event_id[1..]);
        }
        let rid = self.room_id.as_str();
        let eid = ev.event_id.as_str();
        self.sink.insert(
            Table::Events,
            row![
                so,
                ev.depth,
                eid,
                &ev.event_type,
                rid,
                true,
                false,
                ev.depth,
                ev.ts,
                ev.ts,
                &ev.sender,
                false,
                INSTANCE,
                &ev.state_key
            ],
        )?;
        self.sink.insert(
            Table::EventJson,
            row![eid, rid, "{}", &ev.json, FORMAT_VERSION],
        )?;
        if let Some(p) = &ev.prev {
            self.sink.insert(Table::EventEdges, row![eid, p, false])?;
        }
        if let Some(k) = &ev.state_key {
            self.write_state(&ev, k, so)?;
        }
        self.sink
            .insert(Table::EventToStateGroups, row![eid, self.state.group])?;
        self.prev = Some(ev.event_id.clone());
        Ok((ev, so))
    }

    /// The rows only a state event has: its auth events, its place in the chain cover index,
    /// the current state's delta and a new state group.
    fn write_state(&mut self, ev: &BuiltEvent, k: &str, so: i64) -> Result<(), ImportError> {
        let rid = self.room_id.as_str();
        let eid = ev.event_id.as_str();
        let state = &mut self.state;
        let sink = &mut *self.sink;
        let auth: Vec<String> = state
            .create
            .iter()
            .cloned()
            .chain(ev.auth.iter().cloned())
            .collect();
        for a in &auth {
            sink.insert(Table::EventAuth, row![eid, a, rid])?;
        }
        let key = (ev.event_type.clone(), k.to_string());
        let tuple = chain_cover(
            &mut state.chain,
            &mut self.streams.chain,
            &ev.event_id,
            &key,
            &auth,
        );
        sink.insert(Table::EventAuthChains, row![eid, tuple.0, tuple.1])?;
        for (tc, ts) in tuple.2 {
            sink.insert(Table::EventAuthChainLinks, row![tuple.0, tuple.1, tc, ts])?;
        }
        if state.create.is_none() {
            state.create = Some(ev.event_id.clone());
        }
        sink.insert(Table::StateEvents, row![eid, rid, &ev.event_type, k])?;
        let replaced = state.map.insert(key, ev.event_id.clone());
        state.so_of.insert(ev.event_id.clone(), so);
        sink.insert(
            Table::CurrentStateDeltaStream,
            row![so, rid, &ev.event_type, k, eid, &replaced, INSTANCE],
        )?;
        // A new state group: a delta on the previous one, or a full snapshot.
        self.streams.state_group += 1;
        let g = self.streams.state_group;
        sink.insert(Table::StateGroups, row![g, rid, eid])?;
        if state.group != 0 && state.hops < MAX_STATE_DELTA_HOPS {
            sink.insert(Table::StateGroupEdges, row![g, state.group])?;
            sink.insert(
                Table::StateGroupsState,
                row![g, rid, &ev.event_type, k, eid],
            )?;
            state.hops += 1;
        } else {
            for ((t, sk), id) in &state.map {
                sink.insert(Table::StateGroupsState, row![g, rid, t, sk, id])?;
            }
            state.hops = 0;
        }
        state.group = g;
        Ok(())
    }

    /// Sends a membership event and keeps its `room_memberships` row for the end.
    fn send_member(
        &mut self,
        u: u64,
        sender: &str,
        m: &'static str,
        content: serde_json::Value,
        auth: Vec<String>,
    ) -> Result<(), ImportError> {
        let p = profile(self.plan, u);
        let target = (self.user_id)(u);
        let (ev, so) = self.send("m.room.member", Some(target.clone()), sender, content, auth)?;
        self.membership_rows.push(MembershipRow {
            event_id: ev.event_id.clone(),
            target,
            sender: sender.to_string(),
            membership: m,
            name: p.name,
            avatar: p.avatar,
            so,
        });
        self.membership.insert(u, (ev.event_id, so, m));
        self.count += 1;
        Ok(())
    }

    /// createRoom: create, the creator's join, power levels, join rules, history visibility,
    /// guest access (private presets), initial state, name.
    fn create_room(&mut self) -> Result<CreatedRoom, ImportError> {
        let creator = self.creator.clone();
        let (_, create_so) = self.send(
            "m.room.create",
            Some(String::new()),
            &creator,
            create_content(self.room, self.user_id),
            vec![],
        )?;
        self.count += 1;
        let c = self.room.creator();
        let content = member_content(&profile(self.plan, c), "join");
        self.send_member(c, &creator, "join", content, vec![])?;
        let creator_member = self
            .current("m.room.member", &creator)
            .expect("just joined");
        self.send(
            "m.room.power_levels",
            Some(String::new()),
            &creator,
            power_levels(self.room),
            vec![creator_member.clone()],
        )?;
        self.count += 1;
        let pl = self.current("m.room.power_levels", "").expect("just sent");
        for (t, k, content) in creator_state(self.room, self.public()) {
            let (ev, so) = self.send(
                t,
                Some(k),
                &creator,
                content,
                vec![pl.clone(), creator_member.clone()],
            )?;
            if t == "m.room.name" {
                self.name = Some(self.room.name.clone());
                self.sink.insert(
                    Table::EventSearch,
                    row![
                        &ev.event_id,
                        &self.room_id,
                        "content.name",
                        &self.room.name,
                        so,
                        ev.ts
                    ],
                )?;
            }
            self.count += 1;
        }
        let jr = self.current("m.room.join_rules", "").expect("sent");
        Ok(CreatedRoom {
            power_levels: pl,
            join_rules: jr,
            creator_member,
            create_so,
        })
    }

    /// Invites (private rooms and DMs), by the creator.
    fn invites(&mut self, made: &CreatedRoom) -> Result<(), ImportError> {
        let creator = self.creator.clone();
        for &u in self.room.invited() {
            let mut content = member_content(&profile(self.plan, u), "invite");
            if self.room.kind == RoomKind::Direct {
                content["is_direct"] = json!(true);
            }
            let auth = vec![
                made.power_levels.clone(),
                made.join_rules.clone(),
                made.creator_member.clone(),
            ];
            self.send_member(u, &creator, "invite", content, auth)?;
        }
        Ok(())
    }

    /// Joins of everyone else.
    fn joins(&mut self, made: &CreatedRoom) -> Result<(), ImportError> {
        for (j, &u) in self.room.members[1..].iter().enumerate() {
            self.clock = self.clock.max(self.times.joins[j]);
            let uid = (self.user_id)(u);
            let mut auth = vec![made.power_levels.clone(), made.join_rules.clone()];
            if let Some((prior, _, _)) = self.membership.get(&u) {
                auth.push(prior.clone());
            }
            let content = member_content(&profile(self.plan, u), "join");
            self.send_member(u, &uid, "join", content, auth)?;
        }
        Ok(())
    }

    /// The timeline: messages, replies, reactions, edits and redactions, with the search,
    /// relation and redaction rows each needs.
    fn timeline(&mut self, made: &CreatedRoom) -> Result<SentTimeline, ImportError> {
        let events = self.plan.timeline(self.room);
        let mut ids: Vec<(String, i64)> = Vec::with_capacity(events.len());
        let mut sent_at: Vec<i64> = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            self.clock = self.clock.max(self.times.timeline[i]);
            let sender = (self.user_id)(e.sender);
            let content = timeline_content(&e.kind, |to| ids[to].0.clone());
            let member = self
                .current("m.room.member", &sender)
                .expect("senders are members");
            let auth = vec![made.power_levels.clone(), member];
            let (ev, so) = self.send(e.event_type(), None, &sender, content, auth)?;
            self.timeline_rows(&e.kind, &ev, so, |to| ids[to].0.clone())?;
            if e.event_type() == "m.room.message" {
                self.last_bump = so;
            }
            self.participants.insert(e.sender);
            sent_at.push(ev.ts);
            ids.push((ev.event_id, so));
            self.count += 1;
        }
        Ok(SentTimeline {
            receipts: self.plan.receipts(self.room),
            events,
            ids,
            sent_at,
        })
    }

    /// A timeline event's rows beside `events`: full-text search, relations, redactions.
    fn timeline_rows(
        &mut self,
        kind: &EventKind,
        ev: &BuiltEvent,
        so: i64,
        target: impl Fn(usize) -> String,
    ) -> Result<(), ImportError> {
        let eid = ev.event_id.as_str();
        let rid = self.room_id.as_str();
        match kind {
            EventKind::Message { body } | EventKind::Reply { body, .. } => {
                self.sink.insert(
                    Table::EventSearch,
                    row![eid, rid, "content.body", body, so, ev.ts],
                )?;
            }
            EventKind::Edit { to, body } => {
                self.sink.insert(
                    Table::EventSearch,
                    row![eid, rid, "content.body", &format!("* {body}"), so, ev.ts],
                )?;
                self.sink.insert(
                    Table::EventRelations,
                    row![eid, &target(*to), "m.replace", Val::Null],
                )?;
            }
            EventKind::Reaction { to, key } => {
                self.sink.insert(
                    Table::EventRelations,
                    row![eid, &target(*to), "m.annotation", key],
                )?;
            }
            EventKind::Redaction { to } => {
                self.sink.insert(
                    Table::Redactions,
                    row![eid, &target(*to), false, ev.ts, false],
                )?;
            }
        }
        Ok(())
    }

    /// Unread counts as Synapse's push rules leave them (`.m.rule.message` notifies; reactions,
    /// edits and redactions don't; a redaction takes its target's notification away): one
    /// `event_push_summary` row per member with something unread since their receipt, or since
    /// they joined.
    fn push_summaries(&mut self, sent: &SentTimeline) -> Result<(), ImportError> {
        let mut read_up_to: HashMap<u64, i64> = HashMap::new();
        for &(m, at) in &sent.receipts {
            read_up_to.insert(m, sent.ids[at].1);
        }
        let redacted: HashSet<usize> = sent
            .events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::Redaction { to } => Some(to),
                _ => None,
            })
            .collect();
        let notifying: Vec<(i64, u64)> = sent
            .events
            .iter()
            .enumerate()
            .filter(|(i, e)| {
                matches!(e.kind, EventKind::Message { .. } | EventKind::Reply { .. })
                    && !redacted.contains(i)
            })
            .map(|(i, e)| (sent.ids[i].1, e.sender))
            .collect();
        // An invite notifies its target (`.m.rule.invite_for_me`; not an unread message): it
        // counts until a receipt, and receipts are on timeline events, which come after every
        // join.
        let invited: HashSet<u64> = self.room.invited().iter().copied().collect();
        let last_so = sent.ids.last().map(|x| x.1).unwrap_or(self.streams.stream);
        for &u in &self.room.members {
            let receipt = read_up_to.get(&u).copied();
            let since = receipt.unwrap_or(self.membership[&u].1);
            let unread = notifying
                .iter()
                .filter(|(so, sender)| *so > since && *sender != u)
                .count() as i64;
            let notif = unread + i64::from(receipt.is_none() && invited.contains(&u));
            if notif > 0 {
                self.sink.insert(
                    Table::EventPushSummary,
                    row![
                        &(self.user_id)(u),
                        &self.room_id,
                        notif,
                        last_so,
                        unread,
                        receipt,
                        "main"
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Read receipts, each a little after the event it reads arrived.
    fn receipts(&mut self, sent: &SentTimeline) -> Result<(), ImportError> {
        for &(m, at) in &sent.receipts {
            self.streams.receipt += 1;
            let (eid, so) = &sent.ids[at];
            // Read a little after it arrived, never after the history's end.
            let read_at = (sent.sent_at[at] + 90_000).min(self.streams.end_ms);
            let data = format!("{{\"ts\":{read_at}}}");
            let um = (self.user_id)(m);
            self.sink.insert(
                Table::ReceiptsLinearized,
                row![
                    self.streams.receipt,
                    &self.room_id,
                    "m.read",
                    &um,
                    eid,
                    Val::Null,
                    *so,
                    &data,
                    INSTANCE
                ],
            )?;
            self.sink.insert(
                Table::ReceiptsGraph,
                row![
                    &self.room_id,
                    "m.read",
                    &um,
                    &format!("[\"{eid}\"]"),
                    Val::Null,
                    &data
                ],
            )?;
        }
        Ok(())
    }

    /// Memberships, now that the participants are known: a member who sent a message into the
    /// room is a participant of their current membership.
    fn memberships(&mut self) -> Result<(), ImportError> {
        let participating: HashSet<&str> = self
            .participants
            .iter()
            .filter_map(|u| self.membership.get(u))
            .filter(|(_, _, m)| *m == "join")
            .map(|(eid, _, _)| eid.as_str())
            .collect();
        for r in &self.membership_rows {
            let participant = participating.contains(r.event_id.as_str());
            self.sink.insert(
                Table::RoomMemberships,
                row![
                    &r.event_id,
                    &r.target,
                    &r.sender,
                    &self.room_id,
                    r.membership,
                    0,
                    &r.name,
                    &r.avatar,
                    r.so,
                    participant
                ],
            )?;
        }
        Ok(())
    }

    /// Room-level rows: the room, its extremity, current state, members, stats, sliding sync.
    fn room_rows(&mut self, create_so: i64) -> Result<(), ImportError> {
        let last = self.prev.clone().expect("a room has events");
        let last_so = self.streams.stream;
        let rid = self.room_id.as_str();
        self.sink.insert(
            Table::Rooms,
            row![rid, false, &self.creator, ROOM_VERSION, true],
        )?;
        self.sink.insert(Table::RoomDepth, row![rid, 1])?;
        self.sink
            .insert(Table::EventForwardExtremities, row![&last, rid])?;
        self.sink
            .insert(Table::StreamOrderingToExterm, row![last_so, rid, &last])?;
        self.current_state()?;
        self.joined_members()?;
        self.stats(last_so, create_so)
    }

    /// `current_state_events`: each current state event, with its membership for members.
    fn current_state(&mut self) -> Result<(), ImportError> {
        let membership_of: HashMap<&str, &str> = self
            .membership
            .values()
            .map(|(eid, _, m)| (eid.as_str(), *m))
            .collect();
        for ((t, k), id) in &self.state.map {
            let m = if t == "m.room.member" {
                membership_of.get(id.as_str()).copied()
            } else {
                None
            };
            self.sink.insert(
                Table::CurrentStateEvents,
                row![id, &self.room_id, t, k, m, self.state.so_of[id]],
            )?;
        }
        Ok(())
    }

    /// Each joined member's local membership and sliding sync snapshot.
    fn joined_members(&mut self) -> Result<(), ImportError> {
        for &u in &self.room.members {
            let (eid, so, _) = &self.membership[&u];
            let uid = (self.user_id)(u);
            self.sink.insert(
                Table::LocalCurrentMembership,
                row![&self.room_id, &uid, eid, "join", *so],
            )?;
            // The creator joined before the room had a name.
            let nm = if u == self.room.creator() {
                None
            } else {
                self.name.as_deref()
            };
            self.sink.insert(
                Table::SlidingSyncMembershipSnapshots,
                row![
                    &self.room_id,
                    &uid,
                    &uid,
                    eid,
                    "join",
                    0,
                    *so,
                    INSTANCE,
                    true,
                    Val::Null,
                    nm,
                    false,
                    Val::Null
                ],
            )?;
        }
        Ok(())
    }

    /// Sliding sync's joined room and the room's stats.
    fn stats(&mut self, last_so: i64, create_so: i64) -> Result<(), ImportError> {
        let public = self.public();
        let joined = self.room.members.len() as i64;
        let rid = self.room_id.as_str();
        self.sink.insert(
            Table::SlidingSyncJoinedRooms,
            row![
                rid,
                last_so,
                if self.last_bump > 0 {
                    self.last_bump
                } else {
                    create_so
                },
                Val::Null,
                &self.name,
                false,
                Val::Null
            ],
        )?;
        self.sink.insert(
            Table::RoomStatsCurrent,
            row![
                rid,
                self.state.map.len() as i64,
                joined,
                0,
                0,
                0,
                joined,
                last_so,
                0
            ],
        )?;
        self.sink.insert(
            Table::RoomStatsState,
            row![
                rid,
                &self.name,
                Val::Null,
                if public { "public" } else { "invite" },
                "shared",
                Val::Null,
                Val::Null,
                (!public).then_some("can_join"),
                true,
                Val::Null,
                Val::Null
            ],
        )?;
        Ok(())
    }

    fn outcome(self) -> (RoomOutcome, u64) {
        (
            RoomOutcome {
                index: self.room.index,
                room_id: self.room_id,
                kind: self.room.kind,
                members: self.room.members.clone(),
            },
            self.count,
        )
    }
}

/// The state events the creator sends after the power levels: join rules, history visibility,
/// guest access (private presets), the planned extra state, the name (not for a DM).
fn creator_state(room: &RoomPlan, public: bool) -> Vec<(&'static str, String, serde_json::Value)> {
    let mut out: Vec<(&'static str, String, serde_json::Value)> = vec![
        (
            "m.room.join_rules",
            String::new(),
            json!({"join_rule": if public { "public" } else { "invite" }}),
        ),
        (
            "m.room.history_visibility",
            String::new(),
            json!({"history_visibility": "shared"}),
        ),
    ];
    if !public {
        out.push((
            "m.room.guest_access",
            String::new(),
            json!({"guest_access": "can_join"}),
        ));
    }
    for k in 0..room.state_events {
        out.push((
            crate::dataset::plan::STATE_EVENT_TYPE,
            format!("k{k}"),
            json!({"value": k, "note": "hsbench large-state room"}),
        ));
    }
    if room.kind != RoomKind::Direct {
        out.push(("m.room.name", String::new(), json!({"name": room.name})));
    }
    out
}

/// A timeline event's content; `target` names the event at a timeline index.
fn timeline_content(kind: &EventKind, target: impl Fn(usize) -> String) -> serde_json::Value {
    match kind {
        EventKind::Message { body } => json!({"msgtype": "m.text", "body": body}),
        EventKind::Reply { to, body } => json!({
            "msgtype": "m.text", "body": body,
            "m.relates_to": {"m.in_reply_to": {"event_id": target(*to)}}}),
        EventKind::Reaction { to, key } => json!({
            "m.relates_to": {"rel_type": "m.annotation", "event_id": target(*to), "key": key}}),
        EventKind::Edit { to, body } => json!({
            "msgtype": "m.text", "body": format!("* {body}"),
            "m.new_content": {"msgtype": "m.text", "body": body},
            "m.relates_to": {"rel_type": "m.replace", "event_id": target(*to)}}),
        EventKind::Redaction { to } => json!({"redacts": target(*to)}),
    }
}

/// Synapse stores a full state snapshot once a delta chain is this long (`MAX_STATE_DELTA_HOPS`).
pub const MAX_STATE_DELTA_HOPS: u32 = 100;
