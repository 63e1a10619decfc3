//! One room's rows, as Synapse writes them: the events that `createRoom` with a preset, the
//! invites, the joins and the timeline produce, their state groups, auth chains and memberships.

use crate::dataset::error::ImportError;
use crate::dataset::event::{BuiltEvent, EventFactory, FORMAT_VERSION, INSTANCE, ROOM_VERSION};
use crate::dataset::plan::{DatasetPlan, EventKind, RoomKind, RoomPlan};
use crate::dataset::sink::{Sink, Table, Val};
use crate::row;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

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
    /// Chain cover index: event -> (chain, sequence), the state key of each state event, the
    /// last sequence of each chain, and the links between chains.
    pub(crate) chain_of: HashMap<String, (i64, i64)>,
    pub(crate) key_of: HashMap<String, (String, String)>,
    pub(crate) chain_max: HashMap<i64, i64>,
    pub(crate) links: LinkMap,
}

/// Links between auth chains, as Synapse's `_LinkMap` keeps them: source chain -> target
/// chain -> source sequence -> target sequence.
#[derive(Default)]
pub struct LinkMap {
    pub(crate) maps: HashMap<i64, HashMap<i64, BTreeMap<i64, i64>>>,
}

impl LinkMap {
    /// Add a link unless an existing one makes it redundant (a link "crossing" it).
    pub fn add_link(&mut self, src: (i64, i64), target: (i64, i64)) -> bool {
        debug_assert_ne!(src.0, target.0);
        let current = self
            .maps
            .entry(src.0)
            .or_default()
            .entry(target.0)
            .or_default();
        if current
            .iter()
            .any(|(&cs, &ct)| cs <= src.1 && target.1 <= ct)
        {
            return false;
        }
        current.insert(src.1, target.1);
        true
    }

    /// Whether `target` is in the auth chain of `src` (following links transitively).
    pub fn exists_path_from(&self, src: (i64, i64), target: (i64, i64)) -> bool {
        if src.0 == target.0 {
            return target.1 <= src.1;
        }
        let mut visited: HashMap<i64, i64> = HashMap::new();
        let mut search = vec![src];
        while let Some((chain, seq)) = search.pop() {
            let v = visited.entry(chain).or_insert(0);
            *v = (*v).max(seq);
            let Some(m) = self.maps.get(&chain) else {
                continue;
            };
            for (&tc, links) in m {
                for (&ss, &ts) in links {
                    if ts <= visited.get(&tc).copied().unwrap_or(0) {
                        continue;
                    }
                    if ss <= seq {
                        if tc == target.0 {
                            if target.1 <= ts {
                                return true;
                            }
                        } else {
                            search.push((tc, ts));
                        }
                    }
                }
            }
        }
        false
    }
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
    let creator = user_id(room.creator());
    let mut state = RoomState {
        map: BTreeMap::new(),
        so_of: HashMap::new(),
        group: 0,
        hops: 0,
        create: None,
        chain_of: HashMap::new(),
        key_of: HashMap::new(),
        chain_max: HashMap::new(),
        links: LinkMap::default(),
    };
    let mut count = 0u64;
    let mut depth = 0i64;
    let mut prev: Option<String> = None;
    let mut room_id = String::new();
    // user index -> (membership event id, stream ordering) of the latest membership.
    let mut membership: HashMap<u64, (String, i64, &'static str)> = HashMap::new();
    let mut membership_rows: Vec<MembershipRow> = Vec::new();
    let mut participants = std::collections::HashSet::new();
    let mut name: Option<String> = None;
    let mut last_bump = 0i64;
    // When each event happens: the clock moves a millisecond per event and jumps forward to the
    // planned time of each join and timeline event.
    let times = plan.room_times(room, streams.end_ms);
    let clock = std::cell::Cell::new(times.created);

    // Sends one event: build it, then write every row it owns.
    let mut send = |room_id: &mut String,
                    event_type: &str,
                    state_key: Option<String>,
                    sender: &str,
                    content: serde_json::Value,
                    auth: Vec<String>,
                    state: &mut RoomState,
                    sink: &mut dyn Sink,
                    streams: &mut Streams|
     -> Result<(BuiltEvent, i64), ImportError> {
        depth += 1;
        let so = streams.next_stream();
        let ts = clock.get();
        clock.set(ts + 1);
        let ev = f
            .build(
                (!room_id.is_empty()).then_some(room_id.as_str()),
                event_type,
                state_key.as_deref(),
                sender,
                content,
                depth,
                ts,
                prev.as_deref(),
                auth,
            )
            .map_err(|source| ImportError::Event {
                step: "events",
                what: format!("{event_type} #{depth}"),
                source,
            })?;
        if room_id.is_empty() {
            *room_id = format!("!{}", &ev.event_id[1..]);
        }
        let rid = room_id.as_str();
        let eid = ev.event_id.as_str();
        sink.insert(
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
        sink.insert(
            Table::EventJson,
            row![eid, rid, "{}", &ev.json, FORMAT_VERSION],
        )?;
        if let Some(p) = &ev.prev {
            sink.insert(Table::EventEdges, row![eid, p, false])?;
        }
        if let Some(k) = &ev.state_key {
            // event_auth and the chain cover index exist for state events only.
            let auth: Vec<String> = state
                .create
                .iter()
                .cloned()
                .chain(ev.auth.iter().cloned())
                .collect();
            for a in &auth {
                sink.insert(Table::EventAuth, row![eid, a, rid])?;
            }
            let key = (ev.event_type.clone(), k.clone());
            let tuple = chain_cover(state, streams, &ev.event_id, &key, &auth);
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
            streams.state_group += 1;
            let g = streams.state_group;
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
        }
        sink.insert(Table::EventToStateGroups, row![eid, state.group])?;
        prev = Some(ev.event_id.clone());
        Ok((ev, so))
    };
    let joined_as = |rows: &mut Vec<MembershipRow>,
                     ev: &BuiltEvent,
                     so: i64,
                     sender: &str,
                     m: &'static str,
                     p: &Profile| {
        rows.push(MembershipRow {
            event_id: ev.event_id.clone(),
            target: ev.state_key.clone().expect("a membership has a state key"),
            sender: sender.to_string(),
            membership: m,
            name: p.name.clone(),
            avatar: p.avatar.clone(),
            so,
        });
    };

    let pl_key = ("m.room.power_levels".to_string(), String::new());
    let jr_key = ("m.room.join_rules".to_string(), String::new());
    let member_key = |u: u64| ("m.room.member".to_string(), user_id(u));
    let get = |state: &RoomState, k: &(String, String)| state.map.get(k).cloned();

    // createRoom: create, the creator's join, power levels, join rules, history visibility,
    // guest access (private presets), initial state, name.
    let (_, create_so) = send(
        &mut room_id,
        "m.room.create",
        Some(String::new()),
        &creator,
        create_content(room, user_id),
        vec![],
        &mut state,
        sink,
        streams,
    )?;
    let c = room.creator();
    let (ev, so) = send(
        &mut room_id,
        "m.room.member",
        Some(creator.clone()),
        &creator,
        member_content(&profile(plan, c), "join"),
        vec![],
        &mut state,
        sink,
        streams,
    )?;
    joined_as(
        &mut membership_rows,
        &ev,
        so,
        &creator,
        "join",
        &profile(plan, c),
    );
    membership.insert(c, (ev.event_id, so, "join"));
    count += 2;
    let creator_member = get(&state, &member_key(c)).expect("just joined");
    send(
        &mut room_id,
        "m.room.power_levels",
        Some(String::new()),
        &creator,
        power_levels(room),
        vec![creator_member.clone()],
        &mut state,
        sink,
        streams,
    )?;
    count += 1;
    let pl = get(&state, &pl_key).expect("just sent");
    let public = matches!(room.kind, RoomKind::Big | RoomKind::Public);
    let mut creator_state: Vec<(&str, String, serde_json::Value)> = vec![
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
        creator_state.push((
            "m.room.guest_access",
            String::new(),
            json!({"guest_access": "can_join"}),
        ));
    }
    for k in 0..room.state_events {
        creator_state.push((
            crate::dataset::plan::STATE_EVENT_TYPE,
            format!("k{k}"),
            json!({"value": k, "note": "hsbench large-state room"}),
        ));
    }
    if room.kind != RoomKind::Direct {
        creator_state.push(("m.room.name", String::new(), json!({"name": room.name})));
    }
    for (t, k, content) in creator_state {
        let (ev, so) = send(
            &mut room_id,
            t,
            Some(k),
            &creator,
            content,
            vec![pl.clone(), creator_member.clone()],
            &mut state,
            sink,
            streams,
        )?;
        if t == "m.room.name" {
            name = Some(room.name.clone());
            sink.insert(
                Table::EventSearch,
                row![
                    &ev.event_id,
                    &room_id,
                    "content.name",
                    &room.name,
                    so,
                    ev.ts
                ],
            )?;
        }
        count += 1;
    }
    let jr = get(&state, &jr_key).expect("sent");

    // Invites (private rooms and DMs), by the creator.
    for &u in room.invited() {
        let target = user_id(u);
        let p = profile(plan, u);
        let mut content = member_content(&p, "invite");
        if room.kind == RoomKind::Direct {
            content["is_direct"] = json!(true);
        }
        let (ev, so) = send(
            &mut room_id,
            "m.room.member",
            Some(target.clone()),
            &creator,
            content,
            vec![pl.clone(), jr.clone(), creator_member.clone()],
            &mut state,
            sink,
            streams,
        )?;
        joined_as(&mut membership_rows, &ev, so, &creator, "invite", &p);
        membership.insert(u, (ev.event_id, so, "invite"));
        count += 1;
    }

    // Joins of everyone else.
    for (j, &u) in room.members[1..].iter().enumerate() {
        clock.set(clock.get().max(times.joins[j]));
        let uid = user_id(u);
        let p = profile(plan, u);
        let mut auth = vec![pl.clone(), jr.clone()];
        if let Some((prior, _, _)) = membership.get(&u) {
            auth.push(prior.clone());
        }
        let (ev, so) = send(
            &mut room_id,
            "m.room.member",
            Some(uid.clone()),
            &uid,
            member_content(&p, "join"),
            auth,
            &mut state,
            sink,
            streams,
        )?;
        joined_as(&mut membership_rows, &ev, so, &uid, "join", &p);
        membership.insert(u, (ev.event_id, so, "join"));
        count += 1;
    }

    // The timeline.
    let timeline = plan.timeline(room);
    let mut ids: Vec<(String, i64)> = Vec::with_capacity(timeline.len());
    let mut sent_at: Vec<i64> = Vec::with_capacity(timeline.len());
    for (i, e) in timeline.iter().enumerate() {
        clock.set(clock.get().max(times.timeline[i]));
        let sender = user_id(e.sender);
        let target = |to: &usize| ids[*to].0.clone();
        let content = match &e.kind {
            EventKind::Message { body } => json!({"msgtype": "m.text", "body": body}),
            EventKind::Reply { to, body } => json!({
                "msgtype": "m.text", "body": body,
                "m.relates_to": {"m.in_reply_to": {"event_id": target(to)}}}),
            EventKind::Reaction { to, key } => json!({
                "m.relates_to": {"rel_type": "m.annotation", "event_id": target(to), "key": key}}),
            EventKind::Edit { to, body } => json!({
                "msgtype": "m.text", "body": format!("* {body}"),
                "m.new_content": {"msgtype": "m.text", "body": body},
                "m.relates_to": {"rel_type": "m.replace", "event_id": target(to)}}),
            EventKind::Redaction { to } => json!({"redacts": target(to)}),
        };
        let member = get(&state, &member_key(e.sender)).expect("senders are members");
        let (ev, so) = send(
            &mut room_id,
            e.event_type(),
            None,
            &sender,
            content,
            vec![pl.clone(), member],
            &mut state,
            sink,
            streams,
        )?;
        let eid = ev.event_id.as_str();
        match &e.kind {
            EventKind::Message { body } | EventKind::Reply { body, .. } => {
                sink.insert(
                    Table::EventSearch,
                    row![eid, &room_id, "content.body", body, so, ev.ts],
                )?;
            }
            EventKind::Edit { to, body } => {
                sink.insert(
                    Table::EventSearch,
                    row![
                        eid,
                        &room_id,
                        "content.body",
                        &format!("* {body}"),
                        so,
                        ev.ts
                    ],
                )?;
                sink.insert(
                    Table::EventRelations,
                    row![eid, &target(to), "m.replace", Val::Null],
                )?;
            }
            EventKind::Reaction { to, key } => {
                sink.insert(
                    Table::EventRelations,
                    row![eid, &target(to), "m.annotation", key],
                )?;
            }
            EventKind::Redaction { to } => {
                sink.insert(
                    Table::Redactions,
                    row![eid, &target(to), false, ev.ts, false],
                )?;
            }
        }
        if e.event_type() == "m.room.message" {
            last_bump = so;
        }
        participants.insert(e.sender);
        sent_at.push(ev.ts);
        ids.push((ev.event_id, so));
        count += 1;
    }

    // Receipts.
    let receipts = plan.receipts(room);
    let mut read_up_to: HashMap<u64, i64> = HashMap::new();
    for &(m, at) in &receipts {
        read_up_to.insert(m, ids[at].1);
    }
    // Unread counts as Synapse's push rules leave them (`.m.rule.message` notifies; reactions,
    // edits and redactions don't; a redaction takes its target's notification away): one
    // `event_push_summary` row per member with something unread since their receipt, or since
    // they joined.
    let redacted: std::collections::HashSet<usize> = timeline
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Redaction { to } => Some(to),
            _ => None,
        })
        .collect();
    let notifying: Vec<(i64, u64)> = timeline
        .iter()
        .enumerate()
        .filter(|(i, e)| {
            matches!(e.kind, EventKind::Message { .. } | EventKind::Reply { .. })
                && !redacted.contains(i)
        })
        .map(|(i, e)| (ids[i].1, e.sender))
        .collect();
    // An invite notifies its target (`.m.rule.invite_for_me`; not an unread message): it counts
    // until a receipt, and receipts are on timeline events, which come after every join.
    let invited: std::collections::HashSet<u64> = room.invited().iter().copied().collect();
    let last_so = ids.last().map(|x| x.1).unwrap_or(streams.stream);
    for &u in &room.members {
        let receipt = read_up_to.get(&u).copied();
        let since = receipt.unwrap_or(membership[&u].1);
        let unread = notifying
            .iter()
            .filter(|(so, sender)| *so > since && *sender != u)
            .count() as i64;
        let notif = unread + i64::from(receipt.is_none() && invited.contains(&u));
        if notif > 0 {
            sink.insert(
                Table::EventPushSummary,
                row![
                    &user_id(u),
                    &room_id,
                    notif,
                    last_so,
                    unread,
                    receipt,
                    "main"
                ],
            )?;
        }
    }
    for (m, at) in receipts {
        streams.receipt += 1;
        let (eid, so) = &ids[at];
        // Read a little after it arrived, never after the history's end.
        let read_at = (sent_at[at] + 90_000).min(streams.end_ms);
        let data = format!("{{\"ts\":{read_at}}}");
        let um = user_id(m);
        sink.insert(
            Table::ReceiptsLinearized,
            row![
                streams.receipt,
                &room_id,
                "m.read",
                &um,
                eid,
                Val::Null,
                *so,
                &data,
                INSTANCE
            ],
        )?;
        sink.insert(
            Table::ReceiptsGraph,
            row![
                &room_id,
                "m.read",
                &um,
                &format!("[\"{eid}\"]"),
                Val::Null,
                &data
            ],
        )?;
    }

    // Memberships, now that the participants are known: a member who sent a message into the
    // room is a participant of their current membership.
    let participating: std::collections::HashSet<&str> = participants
        .iter()
        .filter_map(|u| membership.get(u))
        .filter(|(_, _, m)| *m == "join")
        .map(|(eid, _, _)| eid.as_str())
        .collect();
    for r in &membership_rows {
        let participant = participating.contains(r.event_id.as_str());
        sink.insert(
            Table::RoomMemberships,
            row![
                &r.event_id,
                &r.target,
                &r.sender,
                &room_id,
                r.membership,
                0,
                &r.name,
                &r.avatar,
                r.so,
                participant
            ],
        )?;
    }

    // Room-level rows: the room, its extremity, current state, stats, sliding sync.
    let last = prev.clone().expect("a room has events");
    let last_so = streams.stream;
    sink.insert(
        Table::Rooms,
        row![&room_id, false, &creator, ROOM_VERSION, true],
    )?;
    sink.insert(Table::RoomDepth, row![&room_id, 1])?;
    sink.insert(Table::EventForwardExtremities, row![&last, &room_id])?;
    sink.insert(
        Table::StreamOrderingToExterm,
        row![last_so, &room_id, &last],
    )?;
    let membership_of: HashMap<&str, &str> = membership
        .values()
        .map(|(eid, _, m)| (eid.as_str(), *m))
        .collect();
    for ((t, k), id) in &state.map {
        let m = if t == "m.room.member" {
            membership_of.get(id.as_str()).copied()
        } else {
            None
        };
        sink.insert(
            Table::CurrentStateEvents,
            row![id, &room_id, t, k, m, state.so_of[id]],
        )?;
    }
    let joined: Vec<u64> = room.members.clone();
    for &u in &joined {
        let (eid, so, _) = &membership[&u];
        let uid = user_id(u);
        sink.insert(
            Table::LocalCurrentMembership,
            row![&room_id, &uid, eid, "join", *so],
        )?;
        // The creator joined before the room had a name.
        let nm = if u == room.creator() {
            None
        } else {
            name.as_deref()
        };
        sink.insert(
            Table::SlidingSyncMembershipSnapshots,
            row![
                &room_id,
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
    sink.insert(
        Table::SlidingSyncJoinedRooms,
        row![
            &room_id,
            last_so,
            if last_bump > 0 { last_bump } else { create_so },
            Val::Null,
            &name,
            false,
            Val::Null
        ],
    )?;
    sink.insert(
        Table::RoomStatsCurrent,
        row![
            &room_id,
            state.map.len() as i64,
            joined.len() as i64,
            0,
            0,
            0,
            joined.len() as i64,
            last_so,
            0
        ],
    )?;
    sink.insert(
        Table::RoomStatsState,
        row![
            &room_id,
            &name,
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

    Ok((
        RoomOutcome {
            index: room.index,
            room_id,
            kind: room.kind,
            members: joined,
        },
        count,
    ))
}

/// Place a new state event in the chain cover index as Synapse's `_allocate_chain_ids` and
/// `_calculate_chain_cover_index` do: it continues the chain of an auth event with the same
/// type and state key when that event ends its chain, else starts a chain; then it links to
/// the auth events not already reachable through another one. Returns (chain, sequence, links).
pub(crate) fn chain_cover(
    state: &mut RoomState,
    streams: &mut Streams,
    event_id: &str,
    key: &(String, String),
    auth: &[String],
) -> (i64, i64, Vec<(i64, i64)>) {
    let continued = auth
        .iter()
        .find(|a| state.key_of.get(*a) == Some(key))
        .and_then(|a| state.chain_of.get(a).copied())
        .filter(|(c, s)| state.chain_max.get(c) == Some(s));
    let (chain, seq) = match continued {
        Some((c, s)) => (c, s + 1),
        None => {
            streams.chain += 1;
            (streams.chain, 1)
        }
    };
    state.chain_max.insert(chain, seq);
    state.chain_of.insert(event_id.to_string(), (chain, seq));
    state.key_of.insert(event_id.to_string(), key.clone());
    let mut reduction: Vec<&String> = auth
        .iter()
        .filter(|a| state.chain_of[*a].0 != chain)
        .collect();
    for start in auth {
        for end in auth {
            if start != end
                && state
                    .links
                    .exists_path_from(state.chain_of[start], state.chain_of[end])
            {
                reduction.retain(|a| *a != end);
            }
        }
    }
    let mut links = Vec::new();
    for a in reduction {
        // Synapse persists every link of the reduction, redundant or not.
        let target = state.chain_of[a];
        state.links.add_link((chain, seq), target);
        links.push(target);
    }
    (chain, seq, links)
}

/// Synapse stores a full state snapshot once a delta chain is this long (`MAX_STATE_DELTA_HOPS`).
pub const MAX_STATE_DELTA_HOPS: u32 = 100;
