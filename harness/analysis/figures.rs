//! A run's figures under their catalogue names ([`crate::metrics::catalogue`]). [`samples`] is
//! the one place that reads a metric out of a run: one sample per timed boot for the boot
//! metrics, one per run for the others. [`figures`] are their medians (with the confidence
//! interval of the median); thresholds, BMF, github-action-benchmark, summary.md, sweeps and
//! `compare` all read these.

use std::collections::BTreeMap;

use crate::boot::BootRecord;
use crate::boot::summary::Stat;
use crate::load::engine::EndpointResult;
use crate::metrics::catalogue::{self, MILESTONES, Unit};
use crate::result::RunResult;

/// One figure of a run for dashboards: a median with its confidence interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// The catalogue name: `time_to_ready`, `cold.phase.db_prepare`, `herd.sync.p99`, …
    pub metric: String,
    pub unit: Unit,
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// The figures of a run: the median of each metric's samples with the interval of the median
/// (a metric with one sample per run has no interval), in the order of [`samples`].
pub fn figures(r: &RunResult) -> Vec<Figure> {
    figures_of(r, false)
}

/// [`figures`] and the sub-phases (`subphase.<name>`): what thresholds can gate. Dashboards
/// and sweeps take [`figures`] alone (sub-phase names come and go with the server's log lines).
pub fn figures_with_subphases(r: &RunResult) -> Vec<Figure> {
    figures_of(r, true)
}

fn figures_of(r: &RunResult, subphases: bool) -> Vec<Figure> {
    ordered_samples(r, subphases)
        .into_iter()
        .filter_map(|(metric, v)| {
            let s = Stat::of(&v)?;
            let (low, high) = if v.len() > 1 {
                (s.median_ci_low, s.median_ci_high)
            } else {
                (s.median, s.median)
            };
            Some(Figure {
                unit: catalogue::unit_of(&metric),
                metric,
                value: s.median,
                low,
                high,
            })
        })
        .collect()
}

/// The samples of every metric of several runs (for `compare`), sub-phases included: boot
/// metrics one per timed boot, the others one per run. Lower is better for all of them.
pub fn samples(runs: &[RunResult]) -> BTreeMap<String, Vec<f64>> {
    let mut m: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in runs {
        for (k, v) in ordered_samples(r, true) {
            m.entry(k).or_default().extend(v);
        }
    }
    m
}

/// Each timed boot's value of every boot metric (sub-phases included), by boot label
/// (`boot-3`, `cold-2`), warm ones unprefixed and cold ones as `cold.<metric>`: what pairs the
/// boots of two interleaved runs.
pub fn per_boot(r: &RunResult) -> Vec<(String, BTreeMap<String, f64>)> {
    r.boots
        .iter()
        .filter(|b| !b.warmup)
        .map(|b| {
            let p = if b.cold { "cold." } else { "" };
            let mut m = BTreeMap::new();
            for (k, v) in boot_values(b).into_iter().chain(subphase_values(b)) {
                m.insert(format!("{p}{k}"), v);
            }
            (b.label.clone(), m)
        })
        .chain(
            r.work_boots
                .iter()
                .map(|b| (b.label.clone(), work_values(b).into_iter().collect())),
        )
        .collect()
}

/// One metered boot's instruction counts as `work.time_to_ready` and `work.phase.<name>`.
pub fn work_values(b: &BootRecord) -> Vec<(String, f64)> {
    let Some(w) = &b.work else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(t) = w.to_ready {
        out.push(("work.time_to_ready".to_string(), t as f64));
    }
    for ph in &w.phases {
        if let Some(n) = ph.instructions {
            out.push((format!("work.phase.{}", ph.name), n as f64));
        }
    }
    if let Some(db) = &w.db {
        if let Some(n) = &db.to_ready {
            out.push(("work.db.blocks".to_string(), n.blocks() as f64));
            out.push(("work.db.calls".to_string(), n.calls as f64));
            out.push(("work.db.rows".to_string(), n.rows as f64));
        }
        for ph in &db.phases {
            if let Some(n) = &ph.counts {
                out.push((format!("work.db.phase.{}", ph.name), n.blocks() as f64));
            }
        }
    }
    out
}

/// One run's samples by metric, in report order (boot metrics warm, cold, crash; then the
/// run's own).
fn ordered_samples(r: &RunResult, subphases: bool) -> Vec<(String, Vec<f64>)> {
    let mut out: Vec<(String, Vec<f64>)> = Vec::new();
    let mut push = |k: String, v: f64| match out.iter_mut().find(|(n, _)| *n == k) {
        Some((_, s)) => s.push(v),
        None => out.push((k, vec![v])),
    };
    let timed = r.boots.iter().filter(|b| !b.warmup);
    let warm = timed.clone().filter(|b| !b.cold).map(|b| ("", b));
    let cold = timed.filter(|b| b.cold).map(|b| ("cold.", b));
    let crash = r.crash_restarts.iter().map(|c| ("crash.", &c.recovery));
    for (p, b) in warm.chain(cold).chain(crash) {
        for (k, v) in boot_values(b) {
            push(format!("{p}{k}"), v);
        }
        if subphases {
            for (k, v) in subphase_values(b) {
                push(format!("{p}{k}"), v);
            }
        }
    }
    for b in &r.work_boots {
        for (k, v) in work_values(b) {
            push(k, v);
        }
    }
    for (k, v) in run_values(r) {
        push(k, v);
    }
    out
}

/// One boot's sub-phases as `subphase.<name>` (spans of one name summed), in log order.
fn subphase_values(b: &BootRecord) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for sp in &b.subphases {
        let Some(d) = sp.duration_ms else { continue };
        let k = format!("subphase.{}", sp.name);
        match out.iter_mut().find(|(n, _)| *n == k) {
            Some((_, v)) => *v += d,
            None => out.push((k, d)),
        }
    }
    out
}

/// One boot's value of every boot metric the catalogue has, unprefixed.
fn boot_values(b: &BootRecord) -> Vec<(String, f64)> {
    let mut out = vec![("time_to_ready".to_string(), b.time_to_ready_ms)];
    for ph in &b.phases {
        if let Some(d) = ph.duration_ms {
            out.push((format!("phase.{}", ph.name), d));
        }
    }
    for m in MILESTONES {
        if let Some(&t) = b.points.get(*m) {
            out.push((format!("milestone.{m}"), t));
        }
    }
    if let Some(s) = b.shutdown_ms {
        out.push(("shutdown".into(), s));
    }
    if let Some(g) = &b.background
        && let Some(t) = g.at_ms
    {
        out.push(("background_done".into(), t));
        out.push(("background".into(), (t - b.time_to_ready_ms).max(0.0)));
        if let Some(c) = g.cpu_s {
            out.push(("cpu_background".into(), c));
        }
    }
    out.push(("peak_rss".into(), b.resources_total.peak_rss_bytes as f64));
    out.push((
        "cpu_to_ready".into(),
        b.resources_to_ready.cpu_user_s + b.resources_to_ready.cpu_sys_s,
    ));
    out
}

/// The run's one-sample metrics: dataset size, the workloads' latencies (answered requests only:
/// none when nothing was answered, as a 0 ms p99 would pass any limit), error shares, and lost
/// writes after crashes.
fn run_values(r: &RunResult) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    let mut push = |k: &str, v: f64| out.push((k.to_string(), v));
    if let Some(fx) = r.dataset.as_ref().and_then(|d| d.fixture.as_ref()) {
        push("data_size", fx.size_bytes as f64);
    }
    if let Some(h) = r.herd.as_ref().filter(|h| h.corrected.count > 0) {
        push("herd.sync.p50", h.corrected.p50_ms);
        push("herd.sync.p90", h.corrected.p90_ms);
        push("herd.sync.p99", h.corrected.p99_ms);
        push("herd.sync.max", h.corrected.max_ms);
        push("herd.wall", h.wall_ms);
        if let Some(l) = h.room_list.as_ref().filter(|l| l.full_list.count > 0) {
            push("herd.first_page.p50", l.first_page.p50_ms);
            push("herd.first_page.p99", l.first_page.p99_ms);
            push("herd.room_list.p50", l.full_list.p50_ms);
            push("herd.room_list.p99", l.full_list.p99_ms);
        }
    }
    let ep = |eps: &[EndpointResult], name: &str| {
        eps.iter()
            .find(|e| e.name == name)
            .map(|e| e.corrected.clone())
            .filter(|s| s.count > 0)
    };
    if let Some(t) = &r.triggered {
        push(
            "triggered.recovery",
            t.recovery
                .time_to_recover_s
                .unwrap_or(t.recovery.observed_s)
                * 1000.0,
        );
        if let Some(s) = ep(&t.endpoints, "resync") {
            push("triggered.resync.p50", s.p50_ms);
            push("triggered.resync.p99", s.p99_ms);
        }
        if t.deliveries.latency.count > 0 {
            push("triggered.delivery.p50", t.deliveries.latency.p50_ms);
            push("triggered.delivery.p99", t.deliveries.latency.p99_ms);
        }
    }
    if let Some(t) = &r.steady {
        if let Some(s) = ep(&t.endpoints, "send") {
            push("steady.send.p50", s.p50_ms);
            push("steady.send.p99", s.p99_ms);
        }
        if t.deliveries.latency.count > 0 {
            push("steady.delivery.p50", t.deliveries.latency.p50_ms);
            push("steady.delivery.p99", t.deliveries.latency.p99_ms);
        }
    }
    if let Some(c) = &r.catchup {
        if c.catch_up.count > 0 {
            push("catchup.time.p50", c.catch_up.p50_ms);
            push("catchup.time.max", c.catch_up.max_ms);
        }
        if let Some(s) = ep(&c.endpoints, "messages") {
            push("catchup.messages.p99", s.p99_ms);
        }
    }
    if let Some(h) = &r.herd {
        push("herd.bytes", h.bytes_received as f64);
    }
    for l in &r.server_load {
        if ["herd", "triggered", "steady", "catchup"].contains(&l.workload.as_str()) {
            out.push((format!("{}.server_cpu", l.workload), l.cpu_s));
        }
    }
    for e in workload_errors(r) {
        out.push((e.metric(), e.percent()));
    }
    if !r.crash_restarts.is_empty() && r.crash_restarts.iter().all(|c| c.writes_lost.is_some()) {
        let lost: u64 = r.crash_restarts.iter().filter_map(|c| c.writes_lost).sum();
        out.push(("crash.lost_writes".into(), lost as f64));
    }
    out
}

/// A workload's failed requests: what the error gate (`<workload>.errors`) judges.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadErrors {
    pub workload: &'static str,
    /// Requests that ended, answered or failed (long polls the workload's end cut are neither).
    pub requests: u64,
    pub failed: u64,
    /// Failed requests by kind.
    pub by_kind: BTreeMap<String, u64>,
}

impl WorkloadErrors {
    /// The error gate's metric: `<workload>.errors`.
    pub fn metric(&self) -> String {
        format!("{}.errors", self.workload)
    }

    /// Failed requests in percent of those that ended; 100% when nothing ended at all.
    pub fn percent(&self) -> f64 {
        if self.requests == 0 {
            100.0
        } else {
            self.failed as f64 * 100.0 / self.requests as f64
        }
    }

    /// `150 of 150 requests failed (timeout 150)`.
    pub fn describe(&self) -> String {
        let kinds = if self.by_kind.is_empty() {
            String::new()
        } else {
            format!(" ({})", fmt_errors(&self.by_kind))
        };
        if self.requests == 0 {
            "no request ended".into()
        } else {
            format!(
                "{} of {} requests failed{kinds}",
                self.failed, self.requests
            )
        }
    }
}

/// The failed requests of every workload the run has, in the order of the result.
pub fn workload_errors(r: &RunResult) -> Vec<WorkloadErrors> {
    fn of_endpoints(workload: &'static str, eps: &[EndpointResult]) -> WorkloadErrors {
        let mut by_kind = BTreeMap::new();
        let mut failed = 0;
        let mut requests = 0;
        for e in eps {
            requests += e.completed;
            for (k, v) in &e.errors {
                failed += v;
                *by_kind.entry(format!("{} {k}", e.name)).or_insert(0) += v;
            }
        }
        WorkloadErrors {
            workload,
            requests,
            failed,
            by_kind,
        }
    }
    let mut out = Vec::new();
    if let Some(h) = &r.herd {
        let failed: u64 = h.errors.values().sum();
        out.push(WorkloadErrors {
            workload: "herd",
            requests: h.ok + failed,
            failed,
            by_kind: h.errors.clone(),
        });
    }
    if let Some(t) = &r.triggered {
        out.push(of_endpoints("triggered", &t.endpoints));
    }
    if let Some(t) = &r.steady {
        out.push(of_endpoints("steady", &t.endpoints));
    }
    if let Some(c) = &r.catchup {
        out.push(of_endpoints("catchup", &c.endpoints));
    }
    out
}

/// Errors by kind, `kind × n, …`, or `none`.
pub fn fmt_errors(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return "none".to_string();
    }
    errors
        .iter()
        .map(|(k, v)| format!("{k} × {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
