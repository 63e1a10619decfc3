//! Validation of `[workload.*]`: the workloads, in the order the file declares them.

use super::dataset::DatasetSpec;
use super::locate::{Locator, ScenarioError, duration, positive, share_in};
use super::raw::{RawCatchup, RawHerd, RawScenario, RawSteady, RawTriggered};
use std::time::Duration;
use toml::Spanned;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SyncKind {
    /// `/sync` with no `since` token: the first sync of a new login.
    Initial,
    /// `/sync?since=<token>&full_state=true`: what naive clients do after a state change.
    FullState,
}

/// What a triggered herd's client does when it sees the trigger.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ReactionKind {
    /// v2: `/sync` with no `since` token.
    Initial,
    /// v2: `/sync?since=<token>&full_state=true`.
    FullState,
    /// Sliding sync: open the room (a room subscription with all of its state and a 20-event
    /// timeline).
    Subscribe,
    /// Sliding sync: start the connection over (the room list loaded again).
    Reconnect,
}

impl ReactionKind {
    /// What the clients do, as reports say it.
    pub fn describe(self) -> &'static str {
        match self {
            ReactionKind::Initial => "initial re-sync",
            ReactionKind::FullState => "full-state re-sync",
            ReactionKind::Subscribe => "sliding sync room subscription (all state)",
            ReactionKind::Reconnect => "sliding sync reconnection (room list reloaded)",
        }
    }
}

/// The timeline limit of every room of a sliding sync room list once it grows past its first
/// page (matrix-rust-sdk's room list service); `load::sliding` sends it.
pub const SLIDING_LIST_TIMELINE_LIMIT: u32 = 10;

/// The sync protocol a workload's clients speak.
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
#[serde(rename_all = "snake_case")]
pub enum SyncProtocol {
    /// `GET /_matrix/client/v3/sync`.
    #[default]
    V2,
    /// Simplified sliding sync (MSC4186), as matrix-rust-sdk's room list sends it.
    Sliding,
}

impl SyncProtocol {
    /// The name scenario files and reports use.
    pub fn name(self) -> &'static str {
        match self {
            SyncProtocol::V2 => "v2",
            SyncProtocol::Sliding => "sliding",
        }
    }
}

#[derive(Debug, Clone, schemars::JsonSchema, serde::Serialize)]
pub struct HerdSpec {
    pub clients: u64,
    /// `/sync` v2 or sliding sync.
    pub protocol: SyncProtocol,
    pub sync: SyncKind,
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub request_timeout: Duration,
    /// Client i's request is due at `ramp * i / clients` after the release (0: all at once).
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub ramp: Duration,
    /// Send the filter real clients send (`lazy_load_members`, a limited timeline) instead of
    /// none.
    pub lazy_load_members: bool,
}

/// A workload table of the scenario.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    schemars::JsonSchema,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    Herd,
    Triggered,
    Steady,
    Catchup,
}

/// One workload of a scenario, validated.
#[derive(Debug, Clone, schemars::JsonSchema, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Workload {
    Herd(HerdSpec),
    Triggered(TriggeredSpec),
    Steady(SteadySpec),
    Catchup(CatchupSpec),
}

impl Workload {
    pub fn kind(&self) -> WorkloadKind {
        match self {
            Workload::Herd(_) => WorkloadKind::Herd,
            Workload::Triggered(_) => WorkloadKind::Triggered,
            Workload::Steady(_) => WorkloadKind::Steady,
            Workload::Catchup(_) => WorkloadKind::Catchup,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
}

impl WorkloadKind {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Herd => "herd",
            WorkloadKind::Triggered => "triggered",
            WorkloadKind::Steady => "steady",
            WorkloadKind::Catchup => "catchup",
        }
    }
}

/// `[workload.triggered]`: the matrix.org outage on demand. `clients` users of the big room sit
/// in long-poll incremental `/sync` loops while a chatter sender posts into the big room at a
/// fixed rate; after `baseline` one client sends a state event (the trigger); every client that
/// sees it re-syncs the way naive SDKs did (`reaction`), with a client timeout and retries.
/// Recovery is computed from the chatter's deliveries (see `recovery.rs`).
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize)]
pub struct TriggeredSpec {
    pub clients: u64,
    /// `/sync` v2 or sliding sync long polls.
    pub protocol: SyncProtocol,
    /// Long-poll timeout of the incremental syncs.
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub poll_timeout: Duration,
    /// The clients start their first long poll spread evenly over this (0: all at once); the
    /// workload's time zero comes after it, so the measurement sees parked clients only.
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub connect_ramp: Duration,
    /// Chatter messages per second into the big room (open model), the whole time.
    pub chatter_rate: f64,
    /// Steady state before the trigger (the recovery baseline).
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub baseline: Duration,
    /// How long to watch after the trigger.
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub observe: Duration,
    /// What a client does on seeing the trigger: a `full_state` re-sync from its token, or an
    /// `initial` sync without one.
    pub reaction: ReactionKind,
    /// Client timeout of one re-sync attempt.
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub resync_timeout: Duration,
    /// Attempts after a failed or timed-out re-sync.
    pub retries: u32,
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub retry_delay: Duration,
    /// Recovery: allowed relative worsening of delivery p90 and throughput.
    pub tolerance: f64,
    /// Recovery: window length that must be healthy.
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub hold: Duration,
    /// Recovery: absolute slack added to the latency limit.
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub slack: Duration,
    /// Interval of the interval log and the recovery computation.
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub interval: Duration,
}

/// `[workload.steady]`: `clients` users in long-poll `/sync` loops; the first `senders` of them
/// send messages into their own rooms at `rate` per second (open model; ramping to `ramp_to`
/// over `ramp_over` when given) for `duration`; every syncing member of the room should receive
/// each message (delivery latency), and hsbench waits up to `drain` for the last deliveries.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize)]
pub struct SteadySpec {
    pub clients: u64,
    /// `/sync` v2 or sliding sync long polls.
    pub protocol: SyncProtocol,
    pub senders: u64,
    pub arrivals: crate::scenario::arrivals::Arrivals,
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub duration: Duration,
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub poll_timeout: Duration,
    /// The clients start their first long poll spread evenly over this (0: all at once); the
    /// workload's time zero comes after it, so the measurement sees parked clients only.
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub connect_ramp: Duration,
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub drain: Duration,
    /// v2 receivers' sync filter: at most this many of a room's new events per answer (more
    /// leave a gap, which the receiver pages back through). `None`: no filter, the server's
    /// default (10 on Synapse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline_limit: Option<u64>,
    /// Each receiver waits this long after every answer before its next long poll (a client in
    /// the background or on a slow network); 0 by default. Longer than the time between two
    /// of a room's messages, it makes gaps certain whatever the server's speed.
    #[serde(
        with = "super::secs::humantime_serde_secs",
        skip_serializing_if = "Duration::is_zero"
    )]
    #[schemars(with = "f64")]
    pub poll_pause: Duration,
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub interval: Duration,
}

/// `[workload.catchup]`: `readers` big-room members come back to `backlog` unread messages,
/// page back through them with `/messages` (`page` at a time) and send a read receipt.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize)]
pub struct CatchupSpec {
    pub readers: u64,
    /// How a reader syncs: a v2 initial `/sync`, or a sliding sync room list then the room
    /// opened (a room subscription), as matrix-rust-sdk does.
    pub protocol: SyncProtocol,
    pub backlog: u64,
    pub page: u64,
    /// The room's timeline limit on first sight: the v2 initial sync's (with member
    /// lazy-loading, as real clients ask) or the sliding room subscription's.
    pub timeline_limit: u64,
    /// A reader's whole catch-up gives up after this long.
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub request_timeout: Duration,
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub interval: Duration,
}

pub(super) fn validate(
    loc: &Locator,
    raw: &RawScenario,
    dataset: &DatasetSpec,
) -> Result<Vec<Workload>, ScenarioError> {
    let (users, big) = (dataset.users, dataset.big_room_members);
    let w = raw.workload.as_ref();
    let herd = w
        .and_then(|w| w.herd.as_ref())
        .map(|h| herd(loc, h.get_ref(), users))
        .transpose()?;

    let triggered = w
        .and_then(|w| w.triggered.as_ref())
        .map(|t| triggered(loc, t.get_ref(), big))
        .transpose()?;
    let steady = w
        .and_then(|w| w.steady.as_ref())
        .map(|t| steady(loc, t.get_ref(), users))
        .transpose()?;
    let catchup = w
        .and_then(|w| w.catchup.as_ref())
        .map(|t| catchup(loc, t.get_ref(), big))
        .transpose()?;
    let mut workload_order: Vec<(usize, WorkloadKind)> = Vec::new();
    if let Some(w) = &raw.workload {
        if let Some(x) = &w.herd {
            workload_order.push((x.span().start, WorkloadKind::Herd));
        }
        if let Some(x) = &w.triggered {
            workload_order.push((x.span().start, WorkloadKind::Triggered));
        }
        if let Some(x) = &w.steady {
            workload_order.push((x.span().start, WorkloadKind::Steady));
        }
        if let Some(x) = &w.catchup {
            workload_order.push((x.span().start, WorkloadKind::Catchup));
        }
    }
    workload_order.sort();

    let mut by_kind = [
        herd.map(Workload::Herd),
        triggered.map(Workload::Triggered),
        steady.map(Workload::Steady),
        catchup.map(Workload::Catchup),
    ];
    let workloads: Vec<Workload> = workload_order
        .into_iter()
        .filter_map(|(_, k)| by_kind[k as usize].take())
        .collect();
    Ok(workloads)
}

/// The herd: clients, sync kind and protocol, timeouts.
fn herd(loc: &Locator, h: &RawHerd, users: u64) -> Result<HerdSpec, ScenarioError> {
    let clients = positive(loc, &h.clients, "workload.herd.clients")?;
    if clients > users {
        return Err(loc.at(
            h.clients.span(),
            "workload.herd.clients",
            format!("{clients} distinct clients need as many users, the dataset has {users}"),
        ));
    }
    let sync = match &h.sync {
        None => SyncKind::Initial,
        Some(s) => match s.get_ref().as_str() {
            "initial" => SyncKind::Initial,
            "full_state" => SyncKind::FullState,
            other => {
                return Err(loc.at(
                    s.span(),
                    "workload.herd.sync",
                    format!("{other:?} is not a sync kind: \"initial\" or \"full_state\""),
                ));
            }
        },
    };
    let protocol = protocol(loc, &h.protocol, "workload.herd.protocol")?;
    if protocol == SyncProtocol::Sliding {
        if let (SyncKind::FullState, Some(s)) = (sync, &h.sync) {
            return Err(loc.at(
                s.span(),
                "workload.herd.sync",
                "\"full_state\" is a /sync v2 re-sync; a sliding sync herd opens new \
                 connections (\"initial\")",
            ));
        }
        if let Some(l) = h.lazy_load_members.as_ref().filter(|l| *l.get_ref()) {
            return Err(loc.at(
                l.span(),
                "workload.herd.lazy_load_members",
                "sliding sync always loads members lazily (`$LAZY`): leave it out",
            ));
        }
    }
    Ok(HerdSpec {
        clients,
        protocol,
        sync,
        request_timeout: duration(
            loc,
            &h.request_timeout,
            "workload.herd.request_timeout",
            Duration::from_secs(120),
        )?,
        ramp: duration(loc, &h.ramp, "workload.herd.ramp", Duration::ZERO)?,
        lazy_load_members: h
            .lazy_load_members
            .as_ref()
            .map(|b| *b.get_ref())
            .unwrap_or(false),
    })
}

/// The triggered herd: clients, chatter, reaction, retries, the recovery rule's windows.
fn triggered(loc: &Locator, t: &RawTriggered, big: u64) -> Result<TriggeredSpec, ScenarioError> {
    let f = |name: &str| format!("workload.triggered.{name}");
    let clients = positive(loc, &t.clients, &f("clients"))?;
    if clients > big {
        return Err(loc.at(
            t.clients.span(),
            &f("clients"),
            format!(
                "the triggered herd's clients are members of the big room, which has \
                 {big} (dataset.big_room_members)"
            ),
        ));
    }
    let chatter_rate = match &t.chatter_rate {
        None => 2.0,
        Some(r) => {
            let v = *r.get_ref();
            if !(v > 0.0 && v <= 10_000.0) {
                return Err(loc.at(
                    r.span(),
                    &f("chatter_rate"),
                    format!("{v} messages/s: must be above 0 (recovery is measured on the chatter's deliveries) and at most 10000"),
                ));
            }
            v
        }
    };
    let tolerance = share_in(loc, &t.tolerance, &f("tolerance"), 0.5, 0.0, 0.99)?;
    let protocol = protocol(loc, &t.protocol, &f("protocol"))?;
    let sliding = protocol == SyncProtocol::Sliding;
    let reaction = match (&t.reaction, sliding) {
        (None, false) => ReactionKind::FullState,
        (None, true) => ReactionKind::Subscribe,
        (Some(s), _) => match (s.get_ref().as_str(), sliding) {
            ("initial", false) => ReactionKind::Initial,
            ("full_state", false) => ReactionKind::FullState,
            ("subscribe", true) => ReactionKind::Subscribe,
            ("reconnect", true) => ReactionKind::Reconnect,
            (other, false) => {
                return Err(loc.at(
                    s.span(),
                    &f("reaction"),
                    format!("{other:?} is not a /sync v2 reaction: \"full_state\" or \"initial\" (\"subscribe\" and \"reconnect\" need protocol = \"sliding\")"),
                ));
            }
            (other, true) => {
                return Err(loc.at(
                    s.span(),
                    &f("reaction"),
                    format!("{other:?} is not a sliding sync reaction: \"subscribe\" (open the room) or \"reconnect\" (start the connection over)"),
                ));
            }
        },
    };
    let retries = match &t.retries {
        None => 3,
        Some(r) if *r.get_ref() > 100 => {
            return Err(loc.at(r.span(), &f("retries"), "at most 100"));
        }
        Some(r) => *r.get_ref() as u32,
    };
    let interval = duration(loc, &t.interval, &f("interval"), Duration::from_secs(1))?;
    let baseline = duration(loc, &t.baseline, &f("baseline"), Duration::from_secs(20))?;
    if baseline < interval * 2 {
        return Err(loc.at(
            t.baseline.as_ref().map(|b| b.span()).unwrap_or(0..0),
            &f("baseline"),
            format!("must hold at least two intervals ({:?} each)", interval),
        ));
    }
    Ok(TriggeredSpec {
        clients,
        protocol,
        poll_timeout: duration(
            loc,
            &t.poll_timeout,
            &f("poll_timeout"),
            Duration::from_secs(30),
        )?,
        connect_ramp: duration(loc, &t.connect_ramp, &f("connect_ramp"), Duration::ZERO)?,
        chatter_rate,
        baseline,
        observe: duration(loc, &t.observe, &f("observe"), Duration::from_secs(120))?,
        reaction,
        resync_timeout: duration(
            loc,
            &t.resync_timeout,
            &f("resync_timeout"),
            Duration::from_secs(60),
        )?,
        retries,
        retry_delay: duration(
            loc,
            &t.retry_delay,
            &f("retry_delay"),
            Duration::from_secs(2),
        )?,
        tolerance,
        hold: duration(loc, &t.hold, &f("hold"), Duration::from_secs(5))?,
        slack: duration(loc, &t.slack, &f("slack"), Duration::from_millis(50))?,
        interval,
    })
}

/// The steady workload: clients, senders, arrivals, timeouts.
fn steady(loc: &Locator, t: &RawSteady, users: u64) -> Result<SteadySpec, ScenarioError> {
    let f = |name: &str| format!("workload.steady.{name}");
    let clients = positive(loc, &t.clients, &f("clients"))?;
    if clients > users {
        return Err(loc.at(
            t.clients.span(),
            &f("clients"),
            format!("{clients} syncing clients need as many users, the dataset has {users}"),
        ));
    }
    let senders = match &t.senders {
        None => clients.min(10),
        Some(s) => {
            let n = positive(loc, s, &f("senders"))?;
            if n > clients {
                return Err(loc.at(
                    s.span(),
                    &f("senders"),
                    format!("{n} senders: senders are the first of the {clients} clients"),
                ));
            }
            n
        }
    };
    let rate_of = |v: &Spanned<f64>, name: &str| -> Result<f64, ScenarioError> {
        let r = *v.get_ref();
        if !(r > 0.0 && r <= 1_000_000.0) {
            return Err(loc.at(
                v.span(),
                &f(name),
                format!("{r}: messages per second, above 0"),
            ));
        }
        Ok(r)
    };
    let rate = rate_of(&t.rate, "rate")?;
    let arrivals = match (&t.ramp_to, &t.ramp_over) {
        (None, None) => crate::scenario::arrivals::Arrivals::Constant { rate },
        (Some(to), over) => crate::scenario::arrivals::Arrivals::Ramp {
            from: rate,
            to: rate_of(to, "ramp_to")?,
            over_s: duration(loc, over, &f("ramp_over"), Duration::from_secs(30))?.as_secs_f64(),
        },
        (None, Some(o)) => {
            return Err(loc.at(
                o.span(),
                &f("ramp_over"),
                "needs ramp_to (the rate to ramp to)",
            ));
        }
    };
    let sync = protocol(loc, &t.protocol, &f("protocol"))?;
    let timeline_limit = match &t.timeline_limit {
        None => None,
        Some(v) if sync == SyncProtocol::Sliding => {
            return Err(loc.at(
                v.span(),
                &f("timeline_limit"),
                "v2 receivers only: sliding sync receivers use the SDK's list timeline (10 events a room)",
            ));
        }
        Some(v) => {
            let n = positive(loc, v, &f("timeline_limit"))?;
            if n > 1000 {
                return Err(loc.at(v.span(), &f("timeline_limit"), format!("{n}: at most 1000")));
            }
            Some(n)
        }
    };
    Ok(SteadySpec {
        clients,
        protocol: sync,
        senders,
        arrivals,
        duration: duration(loc, &t.duration, &f("duration"), Duration::from_secs(60))?,
        poll_timeout: duration(
            loc,
            &t.poll_timeout,
            &f("poll_timeout"),
            Duration::from_secs(30),
        )?,
        connect_ramp: duration(loc, &t.connect_ramp, &f("connect_ramp"), Duration::ZERO)?,
        drain: duration(loc, &t.drain, &f("drain"), Duration::from_secs(30))?,
        timeline_limit,
        poll_pause: duration(loc, &t.poll_pause, &f("poll_pause"), Duration::ZERO)?,
        interval: duration(loc, &t.interval, &f("interval"), Duration::from_secs(1))?,
    })
}

/// The catch-up workload: readers, backlog, pages.
fn catchup(loc: &Locator, t: &RawCatchup, big: u64) -> Result<CatchupSpec, ScenarioError> {
    let f = |name: &str| format!("workload.catchup.{name}");
    let readers = positive(loc, &t.readers, &f("readers"))?;
    if readers >= big {
        return Err(loc.at(
            t.readers.span(),
            &f("readers"),
            format!(
                "{readers} readers: readers are big-room members 1..={readers} (user 0 writes the backlog), the big room has {big} members"
            ),
        ));
    }
    let capped = |v: &Option<Spanned<u64>>, name: &str, default: u64, max: u64| {
        let Some(v) = v else { return Ok(default) };
        let n = positive(loc, v, &f(name))?;
        if n > max {
            return Err(loc.at(v.span(), &f(name), format!("{n}: at most {max}")));
        }
        Ok(n)
    };
    let backlog = positive(loc, &t.backlog, &f("backlog"))?;
    if backlog > 1_000_000 {
        return Err(loc.at(
            t.backlog.span(),
            &f("backlog"),
            format!("{backlog}: at most 1000000 messages"),
        ));
    }
    let sync = protocol(loc, &t.protocol, &f("protocol"))?;
    let timeline_limit = capped(&t.timeline_limit, "timeline_limit", 20, 1000)?;
    let list_limit = u64::from(SLIDING_LIST_TIMELINE_LIMIT);
    if sync == SyncProtocol::Sliding && timeline_limit <= list_limit {
        let span = t.timeline_limit.as_ref().map_or_else(
            || t.protocol.as_ref().map_or(0..0, |p| p.span()),
            |v| v.span(),
        );
        return Err(loc.at(
            span,
            &f("timeline_limit"),
            format!(
                "{timeline_limit}: over sliding sync the room list already holds the room's last {list_limit} events, and opening the room with no longer a timeline gets none (the SDK opens rooms with 20)"
            ),
        ));
    }
    Ok(CatchupSpec {
        readers,
        protocol: sync,
        backlog,
        page: capped(&t.page, "page", 100, 1000)?,
        timeline_limit,
        request_timeout: duration(
            loc,
            &t.request_timeout,
            &f("request_timeout"),
            Duration::from_secs(600),
        )?,
        interval: duration(loc, &t.interval, &f("interval"), Duration::from_secs(1))?,
    })
}

/// `protocol = "v2" | "sliding"` (default v2).
pub(super) fn protocol(
    loc: &Locator,
    raw: &Option<Spanned<String>>,
    field: &str,
) -> Result<SyncProtocol, ScenarioError> {
    match raw {
        None => Ok(SyncProtocol::V2),
        Some(p) => match p.get_ref().as_str() {
            "v2" => Ok(SyncProtocol::V2),
            "sliding" => Ok(SyncProtocol::Sliding),
            other => Err(loc.at(
                p.span(),
                field,
                format!(
                    "{other:?} is not a sync protocol: \"v2\" (/sync) or \"sliding\" (simplified sliding sync, MSC4186)"
                ),
            )),
        },
    }
}
