//! Time to recover after a triggered herd, defined precisely.
//!
//! A long poll's own duration is mostly waiting for something to happen, so hsbench measures the
//! health of incremental sync by what it is for: delivering new events. During the whole
//! triggered workload a chatter sender posts messages into the big room at a fixed rate (open
//! model); every syncing member must receive each one through its incremental `/sync`.
//!
//! Time is cut into intervals of length Δ from the start of the baseline (the origin). Per
//! interval hsbench knows the deliveries that ended in it and their delivery latencies (from the
//! send's 200 to the receiver's `/sync` response).
//!
//! - **Baseline** (the intervals before the trigger): `L_b`, the p90 of delivery latency over
//!   the baseline, and `T_b`, deliveries per second over the baseline.
//! - A **window** is `w = ceil(hold / Δ)` consecutive intervals. It is *healthy* when both
//!   - its deliveries per second ≥ `(1 − tolerance) · T_b` (throughput), and
//!   - the p90 of its delivery latencies ≤ `(1 + tolerance) · L_b + slack` (latency; `slack`
//!     keeps a 3 ms baseline from making 5 ms "degraded").
//! - **Time to recover** = `t_r − t0`, where `t0` is the trigger's send and `t_r` the start of
//!   the earliest window at or after the first interval boundary after `t0` from which *every*
//!   window up to the end of the observation is healthy. Recovery therefore means "back, and
//!   stayed back", not a lucky quiet second in the middle of the storm. If the last window is
//!   not healthy, the server did not recover within the observation and no time is given.
//! - **Degraded at**: the start of the first unhealthy window after `t0` (none: the trigger did
//!   not disturb delivery beyond the tolerance, and time to recover is the first boundary).

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::metrics::new_latency_histogram;

/// The knobs of the definition (`[workload.triggered]` `tolerance`, `hold`, `slack`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecoveryRule {
    pub tolerance: f64,
    pub hold: Duration,
    pub slack: Duration,
}

/// The recovery computation's inputs and outcome, as results report them.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct Recovery {
    /// The definition in one sentence (the full one is in the docs).
    pub definition: String,
    pub interval_ms: f64,
    pub hold_ms: f64,
    pub tolerance: f64,
    pub slack_ms: f64,
    /// The trigger's send, seconds after the origin (start of the baseline).
    pub trigger_s: f64,
    /// Baseline delivery latency, p90, ms.
    pub baseline_p90_ms: f64,
    /// Baseline deliveries per second.
    pub baseline_per_s: f64,
    /// A window is healthy when its delivery p90 is at most this.
    pub latency_limit_ms: f64,
    /// … and its deliveries per second at least this.
    pub throughput_floor_per_s: f64,
    /// First unhealthy window after the trigger, seconds after the trigger.
    pub degraded_at_s: Option<f64>,
    /// Worst window p90 after the trigger, ms (0 when no window had deliveries).
    pub worst_p90_ms: f64,
    /// Lowest window throughput after the trigger, deliveries per second.
    pub lowest_per_s: f64,
    /// Seconds from the trigger until healthy for good; `None`: not recovered by the end.
    pub time_to_recover_s: Option<f64>,
    /// Seconds observed after the trigger.
    pub observed_s: f64,
}

/// One interval's deliveries.
pub struct IntervalObs<'a> {
    pub deliveries: u64,
    pub latency: Option<&'a Histogram<u64>>,
}

fn p90_ms(h: &Histogram<u64>) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(0.90) as f64 / 1000.0)
}

/// Compute recovery over `intervals` (each `interval` long, from the origin), with the trigger
/// sent at `trigger` after the origin. Intervals after the observation's end must not be passed.
pub fn compute(
    intervals: &[IntervalObs<'_>],
    interval: Duration,
    trigger: Duration,
    rule: RecoveryRule,
) -> Recovery {
    let d = interval.as_secs_f64();
    let n = intervals.len();
    let t0 = trigger.as_secs_f64();
    // Baseline: intervals that end at or before the trigger.
    let k_base = ((t0 / d) + 1e-9).floor() as usize;
    let k_base = k_base.min(n);
    let mut base_h = new_latency_histogram();
    let mut base_n = 0u64;
    for o in &intervals[..k_base] {
        base_n += o.deliveries;
        if let Some(h) = o.latency {
            let _ = base_h.add(h);
        }
    }
    let baseline_p90_ms = p90_ms(&base_h).unwrap_or(0.0);
    let baseline_per_s = if k_base > 0 {
        base_n as f64 / (k_base as f64 * d)
    } else {
        0.0
    };
    let latency_limit_ms =
        (1.0 + rule.tolerance) * baseline_p90_ms + rule.slack.as_secs_f64() * 1000.0;
    let throughput_floor_per_s = (1.0 - rule.tolerance) * baseline_per_s;

    // Windows start at the first boundary at or after the trigger.
    let first = ((t0 / d) - 1e-9).ceil().max(0.0) as usize;
    let w = ((rule.hold.as_secs_f64() / d) - 1e-9).ceil().max(1.0) as usize;
    let mut healthy = Vec::new(); // (start index, healthy, p90, per_s)
    let mut j = first;
    while j + w <= n {
        let mut h = new_latency_histogram();
        let mut cnt = 0u64;
        for o in &intervals[j..j + w] {
            cnt += o.deliveries;
            if let Some(x) = o.latency {
                let _ = h.add(x);
            }
        }
        let per_s = cnt as f64 / (w as f64 * d);
        let p90 = p90_ms(&h);
        let ok = per_s >= throughput_floor_per_s && p90.is_some_and(|p| p <= latency_limit_ms);
        healthy.push((j, ok, p90.unwrap_or(0.0), per_s));
        j += 1;
    }
    let at = |j: usize| (j as f64 * d - t0).max(0.0);
    let degraded_at_s = healthy.iter().find(|x| !x.1).map(|x| at(x.0));
    let worst_p90_ms = healthy.iter().map(|x| x.2).fold(0.0, f64::max);
    let lowest_per_s = healthy
        .iter()
        .map(|x| x.3)
        .fold(f64::INFINITY, f64::min)
        .min(f64::MAX);
    let time_to_recover_s = match healthy.last() {
        Some(last) if last.1 => {
            // The earliest start from which every window is healthy.
            let from = healthy
                .iter()
                .rposition(|x| !x.1)
                .map(|i| healthy[i + 1].0)
                .unwrap_or(first);
            Some(at(from))
        }
        _ => None,
    };
    Recovery {
        definition: format!(
            "seconds from the trigger until every {:.0} ms window to the end of the observation \
             delivers at least (1 - {tol}) x the baseline's deliveries/s with a delivery p90 of at \
             most (1 + {tol}) x the baseline's p90 + {:.0} ms",
            w as f64 * d * 1000.0,
            rule.slack.as_secs_f64() * 1000.0,
            tol = rule.tolerance
        ),
        interval_ms: d * 1000.0,
        hold_ms: w as f64 * d * 1000.0,
        tolerance: rule.tolerance,
        slack_ms: rule.slack.as_secs_f64() * 1000.0,
        trigger_s: t0,
        baseline_p90_ms,
        baseline_per_s,
        latency_limit_ms,
        throughput_floor_per_s,
        degraded_at_s,
        worst_p90_ms,
        lowest_per_s: if lowest_per_s.is_finite() {
            lowest_per_s
        } else {
            0.0
        },
        time_to_recover_s,
        observed_s: (n as f64 * d - t0).max(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Intervals of 1 s: `per` deliveries each, all at `lat_ms`.
    fn series(spec: &[(u64, u64)]) -> Vec<Histogram<u64>> {
        spec.iter()
            .map(|&(n, lat_ms)| {
                let mut h = new_latency_histogram();
                if n > 0 {
                    h.record_n(lat_ms * 1000, n).unwrap();
                }
                h
            })
            .collect()
    }

    fn obs(h: &[Histogram<u64>]) -> Vec<IntervalObs<'_>> {
        h.iter()
            .map(|h| IntervalObs {
                deliveries: h.len(),
                latency: Some(h),
            })
            .collect()
    }

    const RULE: RecoveryRule = RecoveryRule {
        tolerance: 0.5,
        hold: Duration::from_secs(3),
        slack: Duration::from_millis(50),
    };

    #[test]
    fn a_storm_and_a_recovery() {
        // 5 s baseline at 100/s and 20 ms; trigger at 5 s; 4 s of nothing delivered, 3 s slow,
        // then back to normal for 6 s.
        let mut spec = vec![(100, 20); 5];
        spec.extend([(0, 0); 4]);
        spec.extend([(100, 900); 3]);
        spec.extend([(100, 22); 6]);
        let h = series(&spec);
        let r = compute(
            &obs(&h),
            Duration::from_secs(1),
            Duration::from_secs(5),
            RULE,
        );
        assert!((r.baseline_p90_ms - 20.0).abs() < 0.1);
        assert_eq!(r.baseline_per_s, 100.0);
        assert!((r.latency_limit_ms - 80.0).abs() < 0.1);
        assert_eq!(r.throughput_floor_per_s, 50.0);
        assert_eq!(r.degraded_at_s, Some(0.0));
        // Windows start at 12 s (5 + 4 + 3) hold to the end: recovered 7 s after the trigger.
        assert_eq!(r.time_to_recover_s, Some(7.0));
        assert!(r.worst_p90_ms >= 900.0 * 0.99);
        assert_eq!(r.lowest_per_s, 0.0);
        assert_eq!(r.observed_s, 13.0);
    }

    #[test]
    fn a_quiet_second_inside_the_storm_is_not_recovery() {
        let mut spec = vec![(100, 20); 4];
        spec.extend([(0, 0); 2]);
        spec.extend([(100, 20); 3]); // looks healthy for a window …
        spec.extend([(40, 5000); 3]); // … but the storm comes back
        spec.extend([(100, 20); 4]);
        let h = series(&spec);
        let r = compute(
            &obs(&h),
            Duration::from_secs(1),
            Duration::from_secs(4),
            RULE,
        );
        assert_eq!(r.time_to_recover_s, Some(8.0)); // 4 + 2 + 3 + 3 = 12 s from the origin
    }

    #[test]
    fn not_recovered_by_the_end() {
        let mut spec = vec![(100, 20); 4];
        spec.extend([(30, 2000); 8]);
        let h = series(&spec);
        let r = compute(
            &obs(&h),
            Duration::from_secs(1),
            Duration::from_secs(4),
            RULE,
        );
        assert_eq!(r.time_to_recover_s, None);
        assert_eq!(r.degraded_at_s, Some(0.0));
    }

    #[test]
    fn an_undisturbed_server_recovers_at_once_and_off_grid_triggers_round_up() {
        let spec = vec![(100, 20); 12];
        let h = series(&spec);
        let r = compute(
            &obs(&h),
            Duration::from_secs(1),
            Duration::from_millis(4300),
            RULE,
        );
        assert_eq!(r.degraded_at_s, None);
        // The first window starts at the first boundary after the trigger: 5 s.
        let t = r.time_to_recover_s.unwrap();
        assert!((t - 0.7).abs() < 1e-9, "{t}");
        // The baseline is the 4 whole intervals before the trigger.
        assert_eq!(r.baseline_per_s, 100.0);
    }

    #[test]
    fn throughput_alone_can_fail_a_window() {
        let mut spec = vec![(100, 20); 4];
        spec.extend([(10, 20); 4]); // fast but too few deliveries
        spec.extend([(100, 20); 4]);
        let h = series(&spec);
        let r = compute(
            &obs(&h),
            Duration::from_secs(1),
            Duration::from_secs(4),
            RULE,
        );
        // A window is judged as a whole: [7, 10) delivers (10 + 100 + 100) / 3 = 70/s ≥ 50/s.
        assert_eq!(r.time_to_recover_s, Some(3.0));
        assert_eq!(r.degraded_at_s, Some(0.0));
        assert_eq!(r.lowest_per_s, 10.0);
    }
}
