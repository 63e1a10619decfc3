//! The history as series (one metric of one scenario, server kind and database, on one kind of
//! machine), their change points, and the regressions among the latest runs.

use crate::history::store::HistoryRun;
use crate::stats::changepoint::{ChangePoint, Detector};
use std::collections::BTreeMap;

/// What one series is of. Runs of different machines are never in one series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct SeriesKey {
    pub scenario: String,
    pub server_kind: String,
    pub database: String,
    pub machine: String,
    pub metric: String,
}

impl SeriesKey {
    /// `metric (scenario, server database, machine)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, {} {}, {})",
            self.metric, self.scenario, self.server_kind, self.database, self.machine
        )
    }
}

/// One point of a series: a run's value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Point {
    pub run_id: String,
    pub commit: String,
    pub started_at: String,
    pub value: f64,
    pub report: Option<String>,
}

/// A change point named by the runs and commits on each side of it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    pub key: SeriesKey,
    pub change: ChangePoint,
    /// The last run before the change and the first after it.
    pub run_before: String,
    pub run_after: String,
    /// Their commits: the range to bisect.
    pub commit_before: String,
    pub commit_after: String,
    /// Runs after the change (the change is among the last N runs when this is N or fewer).
    pub runs_since: usize,
}

impl Finding {
    /// Every metric of the catalogue is lower-is-better: a rise is a regression.
    pub fn is_regression(&self) -> bool {
        self.change.reported && self.change.change > 0.0
    }

    /// One line, the reason first: `time_to_ready +6.1% [+4.0%, +8.3%] between abc1234 and
    /// def5678 (p = 0.005; 10 runs before, 4 after; smoke, synapse sqlite, machine)`.
    pub fn describe(&self) -> String {
        let pct = |v: f64| format!("{:+.1}%", v * 100.0);
        format!(
            "{} {} [{}, {}] between {} and {} (p = {:.3}; {} runs before, {} after; {}, {} {}, {})",
            self.key.metric,
            pct(self.change.change),
            pct(self.change.change_low),
            pct(self.change.change_high),
            short(&self.commit_before),
            short(&self.commit_after),
            self.change.p_value,
            self.change.runs_before,
            self.change.runs_after,
            self.key.scenario,
            self.key.server_kind,
            self.key.database,
            self.key.machine
        )
    }

    /// The change point's name for `history bisect`: `<metric>@<first run after>`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.key.metric, self.run_after)
    }
}

/// A commit id as people read it (a version stays whole).
pub fn short(commit: &str) -> &str {
    if commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()) {
        &commit[..10]
    } else {
        commit
    }
}

/// One series and what was found in it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Series {
    pub key: SeriesKey,
    pub points: Vec<Point>,
    pub findings: Vec<Finding>,
}

/// The runs (oldest first) as series, each with its change points.
pub fn analyse(runs: &[HistoryRun], detector: &Detector) -> Vec<Series> {
    let mut by_key: BTreeMap<SeriesKey, Vec<Point>> = BTreeMap::new();
    for r in runs {
        for (metric, value) in &r.metrics {
            if !value.is_finite() {
                continue;
            }
            let key = SeriesKey {
                scenario: r.scenario.clone(),
                server_kind: r.server_kind.clone(),
                database: r.database.clone(),
                machine: r.machine.clone(),
                metric: metric.clone(),
            };
            by_key.entry(key).or_default().push(Point {
                run_id: r.run_id.clone(),
                commit: r.commit.clone(),
                started_at: r.started_at.clone(),
                value: *value,
                report: r.report.clone(),
            });
        }
    }
    by_key
        .into_iter()
        .map(|(key, points)| {
            let values: Vec<f64> = points.iter().map(|p| p.value).collect();
            let findings = detector
                .detect(&values)
                .into_iter()
                .map(|c| Finding {
                    key: key.clone(),
                    run_before: points[c.index - 1].run_id.clone(),
                    run_after: points[c.index].run_id.clone(),
                    commit_before: points[c.index - 1].commit.clone(),
                    commit_after: points[c.index].commit.clone(),
                    runs_since: points.len() - c.index,
                    change: c,
                })
                .collect();
            Series {
                key,
                points,
                findings,
            }
        })
        .collect()
}

/// The regressions among the last `last` runs of each series: reported change points upward
/// whose first run after the change is one of them.
pub fn regressions(series: &[Series], last: usize) -> Vec<&Finding> {
    series
        .iter()
        .flat_map(|s| &s.findings)
        .filter(|f| f.is_regression() && f.runs_since <= last)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(i: usize, value: f64, machine: &str) -> HistoryRun {
        HistoryRun {
            run_id: format!("run-{i:02}"),
            scenario: "smoke".into(),
            server_kind: "synapse".into(),
            server_version: "1".into(),
            database: "sqlite".into(),
            commit: format!("c{i:02}"),
            branch: None,
            started_at: format!("2026-01-01T00:{i:02}:00Z"),
            machine: machine.into(),
            machine_detail: machine.into(),
            report: None,
            metrics: vec![("time_to_ready".into(), value)],
        }
    }

    #[test]
    fn a_step_is_named_by_the_commits_around_it_and_machines_stay_apart() {
        // Machine A steps +10% at run 12 (with a little noise); machine B, 30% slower, is flat.
        let noise = [0.0, 0.004, -0.003, 0.002, -0.001, 0.003, -0.004, 0.001];
        let mut runs = Vec::new();
        for i in 0..16 {
            let a = 100.0 * (1.0 + noise[i % 8]) * if i >= 12 { 1.10 } else { 1.0 };
            runs.push(run(i, a, "A"));
            let mut b = run(i, 130.0 * (1.0 + noise[(i + 3) % 8]), "B");
            b.run_id.push_str("-b");
            runs.push(b);
        }
        let series = analyse(&runs, &Detector::default());
        assert_eq!(series.len(), 2);
        let a = series.iter().find(|s| s.key.machine == "A").unwrap();
        let b = series.iter().find(|s| s.key.machine == "B").unwrap();
        assert!(b.findings.is_empty(), "{:?}", b.findings);
        assert_eq!(a.findings.len(), 1, "{:?}", a.findings);
        let f = &a.findings[0];
        assert_eq!(
            (f.commit_before.as_str(), f.commit_after.as_str()),
            ("c11", "c12")
        );
        assert!(f.is_regression() && f.runs_since == 4);
        assert!((f.change.change - 0.10).abs() < 0.01, "{:?}", f.change);
        assert_eq!(regressions(&series, 4).len(), 1);
        assert!(regressions(&series, 3).is_empty());
        assert!(
            f.describe().starts_with("time_to_ready +9.9% [")
                && f.describe().contains("between c11 and c12"),
            "{}",
            f.describe()
        );
        assert_eq!(f.id(), "time_to_ready@run-12");
    }
}
