//! Steady traffic: long-poll receivers and open-model senders; delivery latency from each
//! send's 200 to the receiver's `/sync` answer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ruma::{OwnedRoomId, OwnedUserId};

use crate::load::engine::Ep;
use crate::load::longpoll::*;
use crate::load::workload::{
    HarnessLoad, ShardRun, WorkloadData, WorkloadError, harness_load, nonce, shard_deliveries,
    unix_ms,
};
use crate::scenario::arrivals::Arrivals;
use crate::scenario::{SteadySpec, SyncProtocol};

/// Steady traffic's outcome.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct SteadyResult {
    pub clients: u64,
    /// `/sync` v2 or sliding sync long polls.
    #[serde(default)]
    pub protocol: SyncProtocol,
    pub senders: u64,
    pub arrivals: Arrivals,
    pub model: String,
    /// `sync` (long polls) and `send`.
    pub endpoints: Vec<crate::load::engine::EndpointResult>,
    pub deliveries: crate::load::engine::DeliveryResult,
    /// Messages per second the schedule asked for / the server accepted, over the duration.
    pub intended_per_s: f64,
    pub achieved_per_s: f64,
    /// How long the senders sent (the schedule's length), seconds after the origin.
    #[serde(default)]
    pub send_duration_s: f64,
    /// Interrupted by a signal: the figures are of what was measured before it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    pub interval_ms: f64,
    pub wall_s: f64,
    pub prepare_ms: f64,
    pub origin_unix_ms: f64,
    pub harness: HarnessLoad,
}

/// Rooms each user of `0..clients` is in, from the dataset plan, as `(room index, members
/// among the clients)`.
pub fn rooms_of_clients(
    plan: &crate::dataset::plan::DatasetPlan,
    clients: u64,
) -> BTreeMap<u64, Vec<(u64, u32)>> {
    let mut by_user: BTreeMap<u64, Vec<(u64, u32)>> = BTreeMap::new();
    for room in plan.rooms() {
        let syncing = room.members.iter().filter(|&&u| u < clients).count() as u32;
        for &u in &room.members {
            if u < clients {
                by_user.entry(u).or_default().push((room.index, syncing));
            }
        }
    }
    by_user
}

/// Run steady traffic: `tokens[..clients]` long-poll; the first `senders` send into their rooms.
///
/// Sharded (`shard`), this process long-polls only its slice of the clients (`j % count ==
/// index`) and sends its share of the one schedule (messages `i % count == index`), with
/// sequence numbers counted from the common release time. `tokens` are then every user's. A
/// delivery of another shard's message is kept as `foreign` (seq and time) for `hsbench merge`,
/// which matches it with that shard's send.
#[allow(clippy::too_many_arguments)]
pub async fn run_steady(
    base_url: &str,
    tokens: &[String],
    user_ids: &[OwnedUserId],
    room_ids: &[OwnedRoomId],
    plan: &crate::dataset::plan::DatasetPlan,
    spec: &SteadySpec,
    shard: Option<ShardRun>,
) -> Result<(SteadyResult, WorkloadData), WorkloadError> {
    let k = spec.clients as usize;
    let part = ShardRun::part(shard);
    let by_user = rooms_of_clients(plan, spec.clients);
    // This shard's receivers per room (all of them unsharded).
    let local_receivers: BTreeMap<u64, u64> = plan
        .rooms()
        .map(|room| {
            let n = room
                .members
                .iter()
                .filter(|&&u| u < spec.clients && u % part.count as u64 == part.index as u64)
                .count() as u64;
            (room.index, n)
        })
        .collect();
    // Round robin over senders, and for each sender over its rooms.
    let mut routes = Vec::new();
    let mut route_local = Vec::new();
    let per_sender: Vec<&Vec<(u64, u32)>> =
        (0..spec.senders).filter_map(|s| by_user.get(&s)).collect();
    if per_sender.is_empty() {
        return Err(WorkloadError::Setup {
            what: "steady senders".into(),
            source: "no sender is a member of any room".into(),
        });
    }
    let longest = per_sender.iter().map(|r| r.len()).max().unwrap_or(0);
    for round in 0..longest {
        for (s, rooms) in (0..spec.senders).filter_map(|s| by_user.get(&s).map(|r| (s, r))) {
            let (room, receivers) = rooms[round % rooms.len()];
            routes.push(Route {
                sender: s as usize,
                room: room_ids[room as usize].clone(),
                receivers,
            });
            route_local.push(local_receivers.get(&room).copied().unwrap_or(0));
        }
    }
    let receivers = part.slice(&tokens[..k]);
    let receiver_ids = part.slice(&user_ids[..k.min(user_ids.len())]);

    let Started {
        client,
        shared,
        mut clients,
        collector,
        origin,
        origin_wall,
        prepare_ms,
    } = start_long_polls(
        base_url,
        &receivers,
        &receiver_ids,
        spec.protocol,
        spec.poll_timeout,
        spec.connect_ramp,
        None,
        None,
        spec.timeline_limit,
        spec.poll_pause,
        spec.interval,
        shard,
    )
    .await?;
    let cpu_before = crate::metrics::self_usage();
    let end = origin + spec.duration;
    // Sequence numbers unique to this workload run (messages of an earlier workload that a
    // client still sees are never taken for this one's), and common to all its shards.
    let seq_base = ShardRun::seq_base(shard);
    let mut partial = false;
    let expected: u64 = {
        let sending = dispatch(
            client.clone(),
            collector.recorder(),
            Arc::new(tokens[..spec.senders as usize].to_vec()),
            Arc::new(routes.clone()),
            spec.arrivals,
            origin,
            end,
            nonce(),
            seq_base,
            part,
        );
        // A signal ends the workload early (marked partial) with what it measured so far.
        let scheduled = tokio::select! {
            n = sending => n,
            _ = crate::util::interrupt::interrupted() => {
                partial = true;
                0
            }
        };
        // Deliveries due to this process's receivers for every message scheduled (by any
        // shard; failed sends are not due: the drain only waits, the recorder counts exactly).
        (0..scheduled)
            .map(|i| route_local[(i as usize) % routes.len()])
            .sum()
    };
    // Drain: wait for the last deliveries.
    let drain_end = Instant::now() + spec.drain;
    while !partial
        && shared.delivered.load(Ordering::Relaxed) < expected
        && Instant::now() < drain_end
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = Instant::now() - origin;
    let harness = harness_load(&cpu_before, wall);
    shared.stop.store(true, Ordering::Relaxed);
    clients.abort_all();
    while clients.join_next().await.is_some() {}
    drop(shared);
    let recorded = collector.finish().await;
    let accepted = recorded.eps[&Ep::Send].ok;
    let (deliveries, shard_log) = shard_deliveries(&recorded, origin_wall, seq_base, shard);
    let result = SteadyResult {
        clients: receivers.len() as u64,
        protocol: spec.protocol,
        senders: spec.senders,
        arrivals: spec.arrivals,
        model: match spec.protocol {
            SyncProtocol::V2 => "senders open (each message due at its scheduled time, latency corrected from it); receivers closed loop (long-poll /sync)".into(),
            SyncProtocol::Sliding => "senders open (each message due at its scheduled time, latency corrected from it); receivers closed loop (sliding sync long polls on a loaded room list)".into(),
        },
        endpoints: recorded.endpoint_results(|ep| match ep {
            Ep::Send => "open",
            _ => "closed",
        }),
        deliveries,
        // A shard's share of the schedule: messages i with i % count == index.
        intended_per_s: part.slice_len(spec.arrivals.due_within(spec.duration)) as f64
            / spec.duration.as_secs_f64(),
        achieved_per_s: accepted as f64 / spec.duration.as_secs_f64(),
        send_duration_s: spec.duration.as_secs_f64(),
        partial,
        interval_ms: spec.interval.as_secs_f64() * 1000.0,
        wall_s: wall.as_secs_f64(),
        prepare_ms,
        origin_unix_ms: unix_ms(origin_wall),
        harness,
    };
    Ok((
        result,
        WorkloadData {
            recorded,
            origin: origin_wall,
            shard_log,
            extra: Vec::new(),
        },
    ))
}
