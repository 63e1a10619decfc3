//! `[thresholds]` checked against a run's figures, and the gates that always apply.

use crate::analysis::figures::{WorkloadErrors, figures_with_subphases, workload_errors};
use crate::result::{RunResult, ThresholdResult};

/// Check every threshold against the run's figures; a figure the run lacks fails its threshold.
/// Every workload that ran also meets the error gate: its own `<workload>.errors` threshold, or
/// the default ([`crate::scenario::DEFAULT_ERROR_LIMIT`]).
pub fn check_thresholds(
    r: &RunResult,
    thresholds: &[crate::scenario::Threshold],
) -> Vec<ThresholdResult> {
    let figs = figures_with_subphases(r);
    let errors = workload_errors(r);
    let defaults: Vec<crate::scenario::Threshold> = errors
        .iter()
        .filter(|e| !thresholds.iter().any(|t| t.metric == e.metric()))
        .map(|e| crate::scenario::Threshold::default_error_gate(e.workload))
        .collect();
    let mut out: Vec<ThresholdResult> = thresholds
        .iter()
        .chain(&defaults)
        .map(|t| {
            let value = figs.iter().find(|f| f.metric == t.metric).map(|f| f.value);
            // A server that never recovered has only a lower bound (the observation's
            // length) for its recovery time: no limit is met by it.
            let unrecovered = t.metric == "triggered.recovery"
                && r.triggered
                    .as_ref()
                    .is_some_and(|t| t.recovery.time_to_recover_s.is_none());
            // A workload whose every request failed never passes, whatever the limit says.
            let all_failed = t.metric.ends_with(".errors") && value.is_some_and(|v| v >= 100.0);
            let passed = !unrecovered
                && !all_failed
                && value.is_some_and(|v| {
                    if t.inclusive {
                        v <= t.limit
                    } else {
                        v < t.limit
                    }
                });
            let detail = errors
                .iter()
                .find(|e| e.metric() == t.metric)
                .map(WorkloadErrors::describe);
            ThresholdResult {
                metric: t.metric.clone(),
                condition: t.text.clone(),
                value,
                passed,
                detail,
            }
        })
        .collect();
    // Crash durability is always gated: an acknowledged write lost in a crash fails the run.
    if !r.crash_restarts.is_empty() {
        let lost: u64 = r.crash_restarts.iter().filter_map(|c| c.writes_lost).sum();
        let checked: u64 = r
            .crash_restarts
            .iter()
            .filter_map(|c| c.writes_checked)
            .sum();
        let unknown = r
            .crash_restarts
            .iter()
            .filter(|c| c.writes_lost.is_none())
            .count();
        out.push(ThresholdResult {
            metric: "crash.lost_writes".into(),
            condition: "= 0 (always)".into(),
            value: Some(lost as f64),
            passed: lost == 0 && unknown == 0,
            detail: Some(if unknown > 0 {
                format!("{unknown} crash cycles could not be read back")
            } else {
                format!("{lost} of {checked} acknowledged writes missing after the crash")
            }),
        });
    }
    out
}
