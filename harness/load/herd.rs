//! Workloads. The thundering herd: N distinct users fire `/sync` at one instant.
//!
//! Every client waits at a start line; hsbench releases them together and takes that instant as
//! every request's *intended* start. Latency is recorded twice, in separate histograms: from the
//! intended start (`corrected`: includes any wait for a connection or a runtime slot, i.e. what a
//! user of the herd experiences) and from the moment the request was actually sent (`raw`).
//! Each client records into its own HDR recorder; nothing grows with the response sizes (bodies
//! are counted chunk by chunk, never held).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hdrhistogram::sync::SyncHistogram;
use ruma::api::client::sync::sync_events;

use crate::load::engine::{ErrorKind, MAX_INTERVALS, read_body};
use crate::matrix::{MatrixClient, error_fields};
use crate::metrics::{IntervalSeries, LatencySummary, new_latency_histogram};
use crate::scenario::{HerdSpec, SyncKind};

/// A herd's measured outcome.
#[derive(Debug, Clone, schemars::JsonSchema, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct HerdResult {
    pub endpoint: String,
    pub sync: SyncKind,
    pub clients: u64,
    /// Requests were due evenly over this many seconds after the release (0: all at once).
    #[serde(default)]
    pub ramp_s: f64,
    /// The requests carried the lazy-loading filter ([`lazy_loading_filter`]).
    #[serde(default)]
    pub lazy_load_members: bool,
    /// Closed model: each client sends exactly one request, all released at one instant.
    pub model: String,
    /// Latency of the answered (2xx) requests from the common intended start
    /// (coordinated-omission corrected). Failed requests are counted in `errors`, never here.
    pub corrected: LatencySummary,
    /// Latency of the answered requests from each one's actual send.
    pub raw: LatencySummary,
    pub ok: u64,
    /// Errors by kind: `http_<status>[_<errcode>]`, `timeout`, `connect`, `transport`.
    pub errors: BTreeMap<String, u64>,
    pub bytes_received: u64,
    /// Release of the herd until its last response ended.
    pub wall_ms: f64,
    /// Preparation (since tokens for `full_state`), not part of the herd's timing.
    pub prepare_ms: f64,
    /// The release instant, Unix milliseconds (places the herd on the server's timelines).
    #[serde(default)]
    pub released_unix_ms: Option<f64>,
    /// Length of one interval of the interval log (`herd-sync.hlog`), ms.
    #[serde(default)]
    pub interval_ms: Option<f64>,
    /// hsbench's own CPU seconds (user + system) from the release to the last response.
    #[serde(default)]
    pub harness_cpu_s: Option<f64>,
    /// The same as a share of one core over the herd's wall time; above
    /// [`HARNESS_CPU_LIMIT`] the harness may have been the bottleneck, and the summary says so.
    #[serde(default)]
    pub harness_cpu_share: Option<f64>,
    /// Interrupted by a signal: the figures are of the requests that completed before it (the
    /// others were abandoned, neither answered nor failed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// The share of a core hsbench may use during a workload before its results warn that the
/// harness, not the server, may have limited them.
pub const HARNESS_CPU_LIMIT: f64 = 0.5;

/// The herd's histograms (kept out of the JSON; written as .hgrm/.hist files).
pub struct HerdHistograms {
    pub corrected: Histogram<u64>,
    pub raw: Histogram<u64>,
    /// Latency over time (by completion, from the release), corrected and raw.
    pub intervals_corrected: IntervalSeries,
    pub intervals_raw: IntervalSeries,
    /// The release instant (the interval log's base time).
    pub released: std::time::SystemTime,
}

/// How one herd request ended: answered, or failed with the engine's error taxonomy.
enum Outcome {
    Ok,
    Error(ErrorKind),
}

/// A filter that leaves a sync almost empty: used only to obtain `since` tokens cheaply. Each
/// call names a different (nonexistent) account-data type: Synapse answers a repeated identical
/// /sync from its response cache for minutes (`caches.sync_response_cache_duration`), and a
/// cached answer carries a stale token, from which a workload's first sync would replay
/// everything since.
fn empty_filter() -> String {
    use std::sync::atomic::AtomicU64;
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

pub(crate) async fn since_token(client: &MatrixClient, token: &str) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct NextBatch {
        next_batch: String,
    }
    let url = format!(
        "{}/_matrix/client/v3/sync?timeout=0&filter={}",
        client.base_url(),
        urlencode(&empty_filter())
    );
    let resp = client
        .http()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
    }
    serde_json::from_slice::<NextBatch>(&body)
        .map(|n| n.next_batch)
        .map_err(|e| e.to_string())
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

/// The filter Element-like clients send on their first sync: member lazy-loading (only the
/// members the returned timeline needs) and a short timeline.
pub fn lazy_loading_filter() -> ruma::api::client::filter::FilterDefinition {
    let mut f = ruma::api::client::filter::FilterDefinition::with_lazy_loading();
    f.room.timeline.limit = Some(ruma::UInt::from(20u32));
    f
}

/// Run a herd against `base_url` with the given users' access tokens (one client each).
pub async fn run_herd(
    base_url: &str,
    tokens: &[String],
    spec: &HerdSpec,
) -> Result<(HerdResult, HerdHistograms), crate::matrix::CallError> {
    run_herd_at(base_url, tokens, spec, None).await
}

/// [`run_herd`], released at a wall-clock time (when it is still ahead once every request is
/// built): shards of one herd in several processes fire together.
pub async fn run_herd_at(
    base_url: &str,
    tokens: &[String],
    spec: &HerdSpec,
    release_at: Option<std::time::SystemTime>,
) -> Result<(HerdResult, HerdHistograms), crate::matrix::CallError> {
    let n = spec.clients as usize;
    assert!(tokens.len() >= n, "validated: clients <= users");
    // One connection pool big enough for every client to hold its own connection.
    let client = MatrixClient::new(base_url, spec.request_timeout).map_err(|source| {
        crate::matrix::CallError::Transport {
            endpoint: "client".into(),
            source,
        }
    })?;

    // Preparation: `since` tokens for full-state re-syncs, a few at a time.
    let prep = Instant::now();
    let mut since: Vec<Option<String>> = vec![None; n];
    if spec.sync == SyncKind::FullState {
        use futures::StreamExt;
        let got: Vec<(usize, Result<String, String>)> =
            futures::stream::iter(tokens[..n].iter().enumerate())
                .map(|(i, t)| {
                    let c = &client;
                    async move { (i, since_token(c, t).await) }
                })
                .buffer_unordered(8)
                .collect()
                .await;
        for (i, r) in got {
            since[i] = Some(r.map_err(|message| crate::matrix::CallError::Decode {
                endpoint: "GET /_matrix/client/v3/sync (since token)".into(),
                message,
            })?);
        }
    }
    let prepare_ms = prep.elapsed().as_secs_f64() * 1000.0;

    // Build every request before the start line, so that release costs nothing.
    let mut requests = Vec::with_capacity(n);
    for (i, token) in tokens[..n].iter().enumerate() {
        let mut req = sync_events::v3::Request::new();
        req.timeout = Some(Duration::ZERO);
        if let Some(s) = since[i].take() {
            req.since = Some(s);
            req.full_state = true;
        }
        if spec.lazy_load_members {
            req.filter = Some(sync_events::v3::Filter::FilterDefinition(
                lazy_loading_filter(),
            ));
        }
        // Client i is due `ramp * i / n` after the release.
        let offset = spec.ramp.mul_f64(i as f64 / n as f64);
        requests.push((offset, client.build(req, Some(token))?));
    }

    let mut corrected: SyncHistogram<u64> = new_latency_histogram().into_sync();
    let mut raw: SyncHistogram<u64> = new_latency_histogram().into_sync();
    let bytes = Arc::new(AtomicU64::new(0));
    let (start_tx, start_rx) = tokio::sync::watch::channel::<Option<Instant>>(None);
    let mut set = tokio::task::JoinSet::new();
    for (offset, request) in requests {
        let mut rx = start_rx.clone();
        let http = client.http().clone();
        let mut rec_c = corrected.recorder();
        let mut rec_r = raw.recorder();
        let bytes = bytes.clone();
        set.spawn(async move {
            let intended = loop {
                if let Some(t) = *rx.borrow_and_update() {
                    break t + offset;
                }
                if rx.changed().await.is_err() {
                    let now = Instant::now();
                    return (Outcome::Error(ErrorKind::Transport), now, now, now);
                }
            };
            if !offset.is_zero() {
                tokio::time::sleep_until(intended.into()).await;
            }
            let sent = Instant::now();
            let outcome = match http.execute(request).await {
                Err(e) => Outcome::Error(ErrorKind::of(&e)),
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    // An error's body is kept for its errcode; a 200's only counted.
                    let keep = if status >= 400 { 4096 } else { 0 };
                    let (n_bytes, kept, failed) = read_body(&mut resp, keep, None).await;
                    bytes.fetch_add(n_bytes, Ordering::Relaxed);
                    match (failed, status) {
                        (Some(kind), _) => Outcome::Error(kind),
                        (None, 200) => Outcome::Ok,
                        (None, s) => Outcome::Error(ErrorKind::Status(s, error_fields(&kept).0)),
                    }
                }
            };
            let end = Instant::now();
            // Latencies are of answered requests only: a timeout's "latency" is the timeout.
            if matches!(outcome, Outcome::Ok) {
                let us = |d: Duration| (d.as_micros() as u64).max(1);
                let _ = rec_c.record(us(end - intended));
                let _ = rec_r.record(us(end - sent));
            }
            (outcome, intended, sent, end)
        });
    }
    drop(start_rx);
    // Let every task reach the start line before the release.
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    if let Some(ahead) =
        release_at.and_then(|t| t.duration_since(std::time::SystemTime::now()).ok())
    {
        crate::load::clock::PreciseTimer::new().sleep(ahead).await;
    }
    let cpu_before = crate::metrics::self_usage();
    let t0 = Instant::now();
    let released = std::time::SystemTime::now();
    let _ = start_tx.send(Some(t0));

    let mut ok = 0u64;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_end = t0;
    // (due, sent, ended) per client since the release: one pair per client, bounded by the herd.
    let mut times: Vec<(Duration, Duration, Duration)> = Vec::with_capacity(n);
    // A signal ends the herd early: the requests still out are abandoned, and what completed
    // is kept and marked partial.
    let mut partial = false;
    let mut interrupted = std::pin::pin!(crate::util::interrupt::interrupted());
    loop {
        let joined = tokio::select! {
            j = set.join_next() => match j {
                Some(j) => j,
                None => break,
            },
            _ = &mut interrupted => {
                partial = true;
                set.abort_all();
                break;
            }
        };
        let (outcome, intended, sent, end) = joined.unwrap_or_else(|_| {
            let now = Instant::now();
            (Outcome::Error(ErrorKind::Transport), now, now, now)
        });
        last_end = last_end.max(end);
        match outcome {
            Outcome::Ok => {
                ok += 1;
                times.push((
                    intended.saturating_duration_since(t0),
                    sent.saturating_duration_since(t0),
                    end.saturating_duration_since(t0),
                ));
            }
            Outcome::Error(kind) => *errors.entry(kind.label()).or_default() += 1,
        }
    }
    let cpu_after = crate::metrics::self_usage();
    let harness_cpu_s = (cpu_after.cpu_user_s + cpu_after.cpu_sys_s)
        - (cpu_before.cpu_user_s + cpu_before.cpu_sys_s);
    let wall_s = (last_end - t0).as_secs_f64();
    let interval = IntervalSeries::interval_for(last_end - t0, 30);
    let mut intervals_corrected = IntervalSeries::new(interval, MAX_INTERVALS);
    let mut intervals_raw = IntervalSeries::new(interval, MAX_INTERVALS);
    for (intended, sent, end) in times {
        let us = |d: Duration| (d.as_micros() as u64).max(1);
        intervals_corrected.record(end, us(end.saturating_sub(intended)));
        intervals_raw.record(end, us(end.saturating_sub(sent)));
    }
    corrected.refresh();
    raw.refresh();
    let corrected_h: Histogram<u64> = (*corrected).clone();
    let raw_h: Histogram<u64> = (*raw).clone();
    Ok((
        HerdResult {
            endpoint: "GET /_matrix/client/v3/sync".into(),
            sync: spec.sync,
            clients: spec.clients,
            ramp_s: spec.ramp.as_secs_f64(),
            lazy_load_members: spec.lazy_load_members,
            model: if spec.ramp.is_zero() {
                "closed: one request per client, all released at one instant".into()
            } else {
                format!(
                    "open: one request per client, due evenly over {:?} (latency corrected from each one's due time)",
                    spec.ramp
                )
            },
            corrected: LatencySummary::of(&corrected_h),
            raw: LatencySummary::of(&raw_h),
            ok,
            errors,
            bytes_received: bytes.load(Ordering::Relaxed),
            wall_ms: (last_end - t0).as_secs_f64() * 1000.0,
            prepare_ms,
            released_unix_ms: Some(
                released
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64()
                    * 1000.0,
            ),
            interval_ms: Some(interval.as_secs_f64() * 1000.0),
            harness_cpu_s: Some(harness_cpu_s),
            harness_cpu_share: (wall_s > 0.0).then(|| harness_cpu_s / wall_s),
            partial,
        },
        HerdHistograms {
            corrected: corrected_h,
            raw: raw_h,
            intervals_corrected,
            intervals_raw,
            released,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencode_encodes_json() {
        assert_eq!(urlencode("{\"a\":[]}"), "%7B%22a%22%3A%5B%5D%7D");
    }
}
