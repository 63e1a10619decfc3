//! The triggered herd: long-poll clients, chatter, a trigger event every client reacts to with a
//! re-sync, and the time the server takes to recover.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ruma::api::client::state::send_state_event;
use ruma::serde::Raw;
use ruma::{OwnedRoomId, OwnedUserId};

use crate::load::body::read_body;
use crate::load::engine::{Ep, ErrorKind, Recorded, Recorder};
use crate::load::longpoll::*;
use crate::load::recovery::{IntervalObs, Recovery, RecoveryRule};
use crate::load::workload::{
    HarnessLoad, ShardRun, WorkloadData, WorkloadError, bytes_out, harness_load, nonce,
    shard_deliveries, status_error, unix_ms,
};
use crate::matrix::MatrixClient;
use crate::metrics::LatencySummary;
use crate::scenario::arrivals::Arrivals;
use crate::scenario::{ReactionKind, SyncProtocol, TriggeredSpec};

/// A triggered herd's outcome.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct TriggeredResult {
    pub clients: u64,
    /// `/sync` v2 or sliding sync long polls.
    #[serde(default)]
    pub protocol: SyncProtocol,
    pub reaction: ReactionKind,
    pub chatter_rate: f64,
    pub model: String,
    /// Every endpoint used: `sync` (long polls), `resync`, `send` (chatter), `trigger`.
    pub endpoints: Vec<crate::load::engine::EndpointResult>,
    /// The chatter's deliveries (the recovery signal).
    pub deliveries: crate::load::engine::DeliveryResult,
    pub recovery: Recovery,
    /// Why the trigger was not accepted (`timeout`, `http_…`) when the server refused it or did
    /// not answer within `resync_timeout`; the observation went on without a storm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_error: Option<String>,
    /// When the first client saw the trigger in a sync answer, seconds after the origin.
    #[serde(default)]
    pub trigger_seen_s: Option<f64>,
    /// Interrupted by a signal: the figures are of what was measured before it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// Clients that saw the trigger and re-synced successfully / gave up after the retries.
    pub reacted_ok: u64,
    pub reacted_gave_up: u64,
    /// From seeing the trigger to the end of the successful re-sync (retries included).
    pub reaction_time: LatencySummary,
    /// Re-sync requests beyond one per client: the amplification by retries.
    pub resync_retries: u64,
    /// Most re-syncs in flight at once.
    pub peak_concurrent_resyncs: u64,
    /// From the trigger until re-syncs in flight first reached 90% of their peak.
    pub time_to_saturation_s: Option<f64>,
    /// Length of one interval of the interval log, ms.
    pub interval_ms: f64,
    /// Wall time from the origin (start of the baseline) to the end of the observation.
    pub wall_s: f64,
    /// Preparation (since tokens), not timed.
    pub prepare_ms: f64,
    /// The origin, Unix milliseconds (places the workload on the server's timelines).
    pub origin_unix_ms: f64,
    pub harness: HarnessLoad,
}

impl TriggeredResult {
    /// Clients that never reacted (the trigger never reached them: their long polls did not see
    /// it, e.g. a sliding sync answer whose timeline was cut to its limit), when the trigger was
    /// taken and the run was not interrupted.
    pub fn never_saw_trigger(&self) -> Option<u64> {
        let reacted = self.reacted_ok + self.reacted_gave_up;
        (self.trigger_error.is_none() && !self.partial && reacted < self.clients)
            .then(|| self.clients - reacted)
    }
}

/// Run a triggered herd: `tokens[..clients]` are big-room members; `tokens[0]` sends the
/// chatter and the trigger.
pub async fn run_triggered(
    base_url: &str,
    tokens: &[String],
    user_ids: &[OwnedUserId],
    big_room: &OwnedRoomId,
    spec: &TriggeredSpec,
    shard: Option<ShardRun>,
) -> Result<(TriggeredResult, WorkloadData), WorkloadError> {
    let m = spec.clients as usize;
    let part = ShardRun::part(shard);
    let local = part.slice(&tokens[..m]);
    let local_ids = part.slice(&user_ids[..m.min(user_ids.len())]);
    let reaction = Reaction {
        kind: spec.reaction,
        timeout: spec.resync_timeout,
        retries: spec.retries,
        retry_delay: spec.retry_delay,
    };
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
        &local,
        &local_ids,
        spec.protocol,
        spec.poll_timeout,
        spec.connect_ramp,
        Some(reaction),
        Some(big_room.clone()),
        None,
        Duration::ZERO,
        spec.interval,
        shard,
    )
    .await?;
    let seq_base = ShardRun::seq_base(shard);
    let cpu_before = crate::metrics::self_usage();

    let end = origin + spec.baseline + spec.observe;
    // Chatter goes on past the observation for a window's length: otherwise the last windows
    // would lack the deliveries still in flight at the end and read as a throughput drop.
    let chatter_end = end + spec.hold.max(Duration::from_secs(2));
    let routes = Arc::new(vec![Route {
        sender: 0,
        room: big_room.clone(),
        receivers: m as u32,
    }]);
    let chatter = tokio::spawn(dispatch(
        client.clone(),
        collector.recorder(),
        Arc::new(tokens[..1].to_vec()),
        routes,
        Arrivals::Constant {
            rate: spec.chatter_rate,
        },
        origin,
        chatter_end,
        nonce(),
        seq_base,
        part,
    ));

    // The trigger: sent by one process only (shard 0); the other shards' clients see it.
    let t_trigger = origin + spec.baseline;
    // A signal ends the workload early (marked partial) with what it measured so far.
    let mut chatter = chatter;
    let mut partial = !sleep_or_interrupt(t_trigger).await;
    let trigger_sent = if part.index == 0 {
        Instant::now()
    } else {
        t_trigger
    };
    let mut trigger_error = None;
    if part.index == 0 && !partial {
        let rec = collector.recorder();
        trigger_error = send_trigger(&client, &rec, big_room, &tokens[0], spec, t_trigger).await?;
    }

    let scheduled = if partial {
        0
    } else {
        tokio::select! {
            n = &mut chatter => n.unwrap_or(0),
            _ = crate::util::interrupt::interrupted() => {
                partial = true;
                0
            }
        }
    };
    chatter.abort();
    partial = partial || !sleep_or_interrupt(end).await;
    // Drain: the last chatter messages still reach their receivers (after the observation:
    // not part of the recovery computation).
    let due = scheduled * local.len() as u64;
    let drain_end = Instant::now() + TRIGGERED_DRAIN;
    while !partial && shared.delivered.load(Ordering::Relaxed) < due && Instant::now() < drain_end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = if partial {
        Instant::now().min(end) - origin
    } else {
        end - origin
    };
    let harness = harness_load(&cpu_before, Instant::now() - origin);
    let trigger_seen_s = shared
        .trigger_seen
        .lock()
        .expect("not poisoned")
        .map(|t| t.saturating_duration_since(origin).as_secs_f64());
    shared.stop.store(true, Ordering::Relaxed);
    clients.abort_all();
    while clients.join_next().await.is_some() {}
    drop(shared);
    let recorded = collector.finish().await;

    let trigger_at = trigger_sent.saturating_duration_since(origin);
    let recovery = recovery_of(&recorded, wall, spec, trigger_at);
    let (peak, time_to_saturation_s) = saturation(&recorded, trigger_at);
    let (deliveries, shard_log) = shard_deliveries(&recorded, origin_wall, seq_base, shard);
    let result = TriggeredResult {
        clients: local.len() as u64,
        protocol: spec.protocol,
        reaction: spec.reaction,
        chatter_rate: spec.chatter_rate,
        model: match spec.protocol {
            SyncProtocol::V2 => "closed loop per client (long-poll sync, then re-sync with retries on the trigger); chatter and trigger open (from their schedule)".into(),
            SyncProtocol::Sliding => "closed loop per client (sliding sync long polls, then the reaction with retries on the trigger); chatter and trigger open (from their schedule)".into(),
        },
        endpoints: {
            recorded.endpoint_results_over(spec.protocol, |ep| match ep {
                Ep::Send | Ep::Trigger => "open",
                Ep::Resync => "closed; corrected from the moment the client saw the trigger",
                _ => "closed",
            })
        },
        deliveries,
        recovery,
        trigger_error,
        trigger_seen_s,
        partial,
        reacted_ok: recorded.reactions.ok,
        reacted_gave_up: recorded.reactions.gave_up,
        reaction_time: LatencySummary::of(&recorded.reactions.took),
        resync_retries: recorded.reactions.retries,
        peak_concurrent_resyncs: peak,
        time_to_saturation_s,
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

/// Send the trigger (a state event into the big room), recorded as the `trigger` endpoint; the
/// label of its error if the server refused it.
async fn send_trigger(
    client: &MatrixClient,
    rec: &Recorder,
    big_room: &OwnedRoomId,
    token: &str,
    spec: &TriggeredSpec,
    t_trigger: Instant,
) -> Result<Option<String>, WorkloadError> {
    // Integers only: room versions reject floats in events.
    let content = serde_json::json!({"reason": "hsbench triggered herd", "at_ms": unix_ms(std::time::SystemTime::now()) as u64});
    let req = send_state_event::v3::Request::new_raw(
        big_room.clone(),
        ruma::events::StateEventType::from(TRIGGER_TYPE),
        String::new(),
        Raw::from_json_string(content.to_string()).expect("valid JSON"),
    );
    let mut request = client.build(req, Some(token))?;
    // The trigger waits at most the re-sync timeout.
    *request.timeout_mut() = Some(spec.resync_timeout);
    let out = bytes_out(&request);
    rec.start(Ep::Trigger);
    let sent = Instant::now();
    let (error, n_in) = match client.http().execute(request).await {
        Err(e) => (Some(ErrorKind::of(&e)), 0),
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let (n, kept, err) = read_body(&mut resp, 4096, None).await;
            (
                err.or_else(|| (status != 200).then(|| status_error(status, &kept))),
                n,
            )
        }
    };
    let done = Instant::now();
    // A server that cannot take the trigger is a finding, not a harness failure: the
    // refusal is recorded (an error of the `trigger` endpoint, which the error gate sees)
    // and the observation goes on, so every figure of the overloaded server is kept.
    let label = error.as_ref().map(ErrorKind::label);
    rec.done(Ep::Trigger, t_trigger, sent, done, error, n_in, out);
    Ok(label)
}

/// The recovery rule over the deliveries per interval of the observation.
fn recovery_of(
    recorded: &Recorded,
    wall: Duration,
    spec: &TriggeredSpec,
    trigger_at: Duration,
) -> Recovery {
    let n_intervals = ((wall.as_secs_f64() / spec.interval.as_secs_f64()) + 1e-9).floor() as usize;
    let hists = &recorded.deliveries.intervals.hists;
    let obs: Vec<IntervalObs<'_>> = (0..n_intervals)
        .map(|i| IntervalObs {
            deliveries: hists.get(i).map_or(0, |h| h.len()),
            latency: hists.get(i),
        })
        .collect();
    crate::load::recovery::compute(
        &obs,
        spec.interval,
        trigger_at,
        RecoveryRule {
            tolerance: spec.tolerance,
            hold: spec.hold,
            slack: spec.slack,
        },
    )
}

/// The peak of concurrent re-syncs, and how long after the trigger the sampled gauge reached
/// 90% of its peak.
fn saturation(recorded: &Recorded, trigger_at: Duration) -> (u64, Option<f64>) {
    let gauge = &recorded.resync_gauge;
    let peak = recorded
        .peak_in_flight
        .get(&Ep::Resync)
        .copied()
        .unwrap_or(0)
        .max(0) as u64;
    let sampled_peak = gauge.iter().copied().max().unwrap_or(0);
    let time_to_saturation_s = (sampled_peak > 0).then(|| {
        let at = gauge
            .iter()
            .position(|&n| n as f64 >= 0.9 * sampled_peak as f64)
            .unwrap_or(0);
        (at as f64 * crate::load::engine::GAUGE_STEP.as_secs_f64() - trigger_at.as_secs_f64())
            .max(0.0)
    });
    (peak, time_to_saturation_s)
}
