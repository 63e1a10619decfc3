//! Validation of `[workload.*]`: the workloads, in the order the file declares them.

use super::*;

pub(super) fn validate(
    loc: &Locator,
    raw: &RawScenario,
    dataset: &DatasetSpec,
) -> Result<Vec<Workload>, ScenarioError> {
    let (users, big) = (dataset.users, dataset.big_room_members);
    let herd = match raw
        .workload
        .as_ref()
        .and_then(|w| w.herd.as_ref())
        .map(|h| h.get_ref())
    {
        None => None,
        Some(h) => {
            let clients = positive(loc, &h.clients, "workload.herd.clients")?;
            if clients > users {
                return Err(loc.at(
                    h.clients.span(),
                    "workload.herd.clients",
                    format!(
                        "{clients} distinct clients need as many users, the dataset has {users}"
                    ),
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
            Some(HerdSpec {
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
    };

    let triggered = match raw.workload.as_ref().and_then(|w| w.triggered.as_ref()) {
        None => None,
        Some(t) => {
            let t = t.get_ref();
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
            Some(TriggeredSpec {
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
    };
    let steady = match raw.workload.as_ref().and_then(|w| w.steady.as_ref()) {
        None => None,
        Some(t) => {
            let t = t.get_ref();
            let f = |name: &str| format!("workload.steady.{name}");
            let clients = positive(loc, &t.clients, &f("clients"))?;
            if clients > users {
                return Err(loc.at(
                    t.clients.span(),
                    &f("clients"),
                    format!(
                        "{clients} syncing clients need as many users, the dataset has {users}"
                    ),
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
                    over_s: duration(loc, over, &f("ramp_over"), Duration::from_secs(30))?
                        .as_secs_f64(),
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
                        return Err(loc.at(
                            v.span(),
                            &f("timeline_limit"),
                            format!("{n}: at most 1000"),
                        ));
                    }
                    Some(n)
                }
            };
            Some(SteadySpec {
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
    };
    let catchup = match raw.workload.as_ref().and_then(|w| w.catchup.as_ref()) {
        None => None,
        Some(t) => {
            let t = t.get_ref();
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
            Some(CatchupSpec {
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
    };
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
