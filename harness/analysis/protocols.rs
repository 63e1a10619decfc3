//! One scenario over both sync protocols: the figures of the runs side by side.

use crate::analysis::figures::figures;
use crate::result::RunResult;

/// The side-by-side document's format version (`protocols.json`).
pub const PROTOCOLS_SCHEMA_VERSION: u32 = 1;

/// One run of the scenario, over one protocol.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ProtocolRun {
    pub protocol: String,
    pub run_id: String,
    pub run_dir: String,
    pub status: String,
}

/// A metric both runs (or some) have.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ProtocolRow {
    /// Catalogue name.
    pub metric: String,
    /// Per run, in the order of [`ProtocolSides::runs`]; `None` where the run has no value.
    pub values: Vec<Option<f64>>,
    /// Each run's value over the first run's (the first is the reference).
    pub ratios: Vec<Option<f64>>,
}

#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ProtocolSides {
    pub schema_version: u32,
    pub scenario: String,
    pub runs: Vec<ProtocolRun>,
    /// Workload metrics first (herd, triggered, steady, server resources under load), then the
    /// boots'.
    pub rows: Vec<ProtocolRow>,
}

/// The workload metrics a protocol changes, shown first.
pub fn workload_metric(name: &str) -> bool {
    ["herd.", "triggered.", "steady.", "catchup.", "load."]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Side by side: every metric of any run, a column per run.
pub fn sides(scenario: &str, runs: &[(String, &RunResult, String)]) -> ProtocolSides {
    let per_run: Vec<Vec<crate::analysis::figures::Figure>> =
        runs.iter().map(|(_, r, _)| figures(r)).collect();
    let mut names: Vec<String> = Vec::new();
    for fs in &per_run {
        for f in fs {
            if !names.contains(&f.metric) {
                names.push(f.metric.clone());
            }
        }
    }
    names.sort_by_key(|n| !workload_metric(n));
    let rows = names
        .into_iter()
        .map(|metric| {
            let values: Vec<Option<f64>> = per_run
                .iter()
                .map(|fs| fs.iter().find(|f| f.metric == metric).map(|f| f.value))
                .collect();
            let first = values.first().copied().flatten();
            let ratios = values
                .iter()
                .map(|v| match (v, first) {
                    (Some(v), Some(f)) if f != 0.0 => Some(v / f),
                    _ => None,
                })
                .collect();
            ProtocolRow {
                metric,
                values,
                ratios,
            }
        })
        .collect();
    ProtocolSides {
        schema_version: PROTOCOLS_SCHEMA_VERSION,
        scenario: scenario.to_string(),
        runs: runs
            .iter()
            .map(|(p, r, dir)| ProtocolRun {
                protocol: p.clone(),
                run_id: r.run_id.clone(),
                run_dir: dir.clone(),
                status: serde_json::to_value(r.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            })
            .collect(),
        rows,
    }
}
