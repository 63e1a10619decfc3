//! Sizing sweeps, the analysis: run a scenario once per value of one dataset dimension, fit how every boot
//! phase (and peak RSS, data size, the herd's latency) grows as `t = a · n^b`, flag super-linear growth,
//! and extrapolate for operators (`hsbench size`), refusing to go silently far beyond the data.
//!
//! A sweep writes `<results>/<id>/`: `sweep.json` (schema below), `summary.md`, `report.html`
//! (self-contained, plots inline), one log–log SVG per metric, and `points/<dim>-<value>/`, a
//! complete ordinary run directory per value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::metrics::catalogue;
use crate::result::{RunResult, RunStatus};
use crate::scenario::SweepDimension;
use crate::stats::fit::{PowerFit, Prediction};

pub const SWEEP_SCHEMA_VERSION: u32 = 1;

/// How far beyond the measured range `hsbench size` extrapolates without `--force`: one decade
/// on the log scale (10× the largest value, or a tenth of the smallest). Past that, the fitted
/// exponent is a guess about a regime nobody measured (new bottlenecks, caches that no longer
/// fit in memory).
pub const MAX_EXTRAPOLATION: f64 = 10.0;

/// One measured value of the swept dimension.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct SweepPoint {
    pub value: f64,
    /// The point's run directory, relative to the sweep directory.
    pub run_dir: String,
    pub status: RunStatus,
    pub error: Option<String>,
    /// Metric name → value (see [`MetricFit::unit`]).
    pub metrics: BTreeMap<String, f64>,
    /// PostgreSQL's slowest start-up statements over the point's boots (spawn to ready,
    /// `[boot] slow_statements`), slowest first: which query grew.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slowest_statements: Vec<crate::server::postgres::DbStatement>,
}

/// The fit of one metric over the sweep.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct MetricFit {
    pub metric: String,
    pub unit: String,
    pub fit: Option<PowerFit>,
    /// The 95% interval of the exponent lies wholly above 1.
    pub superlinear: bool,
    /// Log–log plot, relative to the sweep directory.
    pub plot: Option<String>,
}

#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct SweepResult {
    pub schema_version: u32,
    pub sweep_id: String,
    pub scenario: String,
    pub scenario_sha256: String,
    pub dimension: SweepDimension,
    pub values: Vec<f64>,
    pub status: RunStatus,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub points: Vec<SweepPoint>,
    pub fits: Vec<MetricFit>,
    /// The boot phase with the steepest significantly super-linear growth, if any.
    pub worst_phase: Option<String>,
    /// The sub-phase (a stream generator's or cache's initialisation, …) with the steepest
    /// significantly super-linear growth, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_subphase: Option<String>,
}

/// The metrics a sweep fits, from one point's run result: the medians of its figures (warm and
/// cold boots, the fixture's size, the workloads), under their catalogue names. Crash recoveries
/// and error shares are left out: they say whether a point is sound, not how it grows.
pub fn metrics_of(r: &RunResult) -> BTreeMap<String, f64> {
    crate::analysis::figures::figures_with_subphases(r)
        .into_iter()
        .filter(|f| !f.metric.starts_with("crash.") && f.unit != catalogue::Unit::Percent)
        .map(|f| (f.metric, f.value))
        .collect()
}

/// `(value, metric)` of the completed points that have `metric`.
pub fn series(points: &[SweepPoint], metric: &str) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter(|p| p.status == RunStatus::Complete)
        .filter_map(|p| p.metrics.get(metric).map(|v| (p.value, *v)))
        .collect()
}

/// Fit every metric over the points that completed.
pub fn fit_all(points: &[SweepPoint]) -> Vec<MetricFit> {
    let mut names: Vec<&String> = points.iter().flat_map(|p| p.metrics.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let fit = PowerFit::fit(&series(points, name));
            MetricFit {
                metric: name.clone(),
                unit: catalogue::unit_of(name).label().into(),
                superlinear: fit.as_ref().is_some_and(PowerFit::superlinear),
                fit,
                plot: None,
            }
        })
        .collect()
}

/// The warm boot phase with the largest exponent among the super-linear ones.
pub fn worst_phase(fits: &[MetricFit]) -> Option<String> {
    steepest(fits, "phase.")
}

/// The sub-phase with the largest exponent among the super-linear ones.
pub fn worst_subphase(fits: &[MetricFit]) -> Option<String> {
    steepest(fits, "subphase.")
}

fn steepest(fits: &[MetricFit], prefix: &str) -> Option<String> {
    fits.iter()
        .filter(|f| f.metric.starts_with(prefix) && f.superlinear)
        .max_by(|a, b| {
            let (fa, fb) = (a.fit.as_ref().unwrap(), b.fit.as_ref().unwrap());
            fa.b.total_cmp(&fb.b)
        })
        .map(|f| f.metric.trim_start_matches(prefix).to_string())
}

/// How many of a point's slowest start-up statements a sweep keeps.
pub const POINT_STATEMENTS: usize = 3;

/// The `n` slowest distinct start-up statements PostgreSQL logged over a run's boots, each
/// with its slowest run, slowest first.
pub fn slowest_statements(r: &RunResult, n: usize) -> Vec<crate::server::postgres::DbStatement> {
    let mut all: Vec<crate::server::postgres::DbStatement> = r
        .boots
        .iter()
        .filter_map(|b| b.db_statements.as_ref())
        .flat_map(|d| d.slowest.iter().cloned())
        .collect();
    all.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    let mut seen = std::collections::HashSet::new();
    all.retain(|s| seen.insert(s.statement.clone()));
    all.truncate(n);
    all
}

/// One metric extrapolated to a value of the swept dimension.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct Extrapolation {
    pub metric: String,
    pub unit: String,
    pub prediction: Prediction,
    pub b: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum SizeError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: crate::util::BoxError,
    },
    #[error(
        "{dimension} = {value} is {factor:.1}× beyond the measured range {min}–{max}: refusing to extrapolate more than {MAX_EXTRAPOLATION}× (a decade on the log scale); sweep further, or pass --force"
    )]
    TooFar {
        dimension: String,
        value: f64,
        min: f64,
        max: f64,
        factor: f64,
    },
    #[error("the sweep varied {swept}, not {asked}: pass --{}", swept.replace('_', "-"))]
    WrongDimension { swept: String, asked: String },
}

/// Read `sweep.json` from a sweep directory (or the file itself).
pub fn load(path: &Path) -> Result<SweepResult, SizeError> {
    let file = if path.is_dir() {
        path.join("sweep.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| SizeError::Read {
        path: file.clone(),
        source: e.into(),
    })?;
    serde_json::from_str(&text).map_err(|e| SizeError::Read {
        path: file,
        source: format!("not a sweep result: {e}").into(),
    })
}

/// Smallest and largest value of the completed points, and how many there are.
pub fn measured_range(r: &SweepResult) -> (f64, f64, usize) {
    let values: Vec<f64> = r
        .points
        .iter()
        .filter(|p| p.status == RunStatus::Complete)
        .map(|p| p.value)
        .collect();
    if values.is_empty() {
        return (0.0, 0.0, 0);
    }
    (
        values.iter().copied().fold(f64::INFINITY, f64::min),
        values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        values.len(),
    )
}

/// How far `value` lies outside `[min, max]`, as a factor (1 inside the range).
pub fn extrapolation_factor(value: f64, min: f64, max: f64) -> f64 {
    if value > max {
        value / max
    } else if value < min {
        min / value
    } else {
        1.0
    }
}

/// Every fitted metric at `value`, with 95% prediction intervals. Refuses (unless `force`)
/// beyond [`MAX_EXTRAPOLATION`] of the measured range.
pub fn extrapolate(
    r: &SweepResult,
    value: f64,
    force: bool,
) -> Result<Vec<Extrapolation>, SizeError> {
    let (min, max, _) = measured_range(r);
    let factor = extrapolation_factor(value, min, max);
    if factor > MAX_EXTRAPOLATION && !force {
        return Err(SizeError::TooFar {
            dimension: r.dimension.name().into(),
            value,
            min,
            max,
            factor,
        });
    }
    Ok(r.fits
        .iter()
        .filter_map(|f| {
            let fit = f.fit.as_ref()?;
            Some(Extrapolation {
                metric: f.metric.clone(),
                unit: f.unit.clone(),
                prediction: fit.predict(value),
                b: fit.b,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sweep::{markdown, size_report};
    use crate::run::sweep::write_files;

    fn point(value: u64, metrics: &[(&str, f64)]) -> SweepPoint {
        SweepPoint {
            value: value as f64,
            run_dir: format!("points/users-{value}"),
            status: RunStatus::Complete,
            error: None,
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            slowest_statements: Vec::new(),
        }
    }

    fn result() -> SweepResult {
        let points = [1000u64, 2000, 4000, 8000]
            .iter()
            .map(|&n| {
                let x = n as f64;
                point(
                    n,
                    &[
                        ("phase.import_config", 1500.0),
                        ("phase.stores_start", 0.001 * x * x),
                        ("phase.db_prepare", 0.5 * x),
                        ("peak_rss", 1e6 * x.powf(0.5)),
                        ("time_to_ready", 1500.0 + 0.5 * x),
                    ],
                )
            })
            .collect();
        let mut r = SweepResult {
            schema_version: SWEEP_SCHEMA_VERSION,
            sweep_id: "t-sweep".into(),
            scenario: "t".into(),
            scenario_sha256: String::new(),
            dimension: SweepDimension::Users,
            values: vec![1000.0, 2000.0, 4000.0, 8000.0],
            status: RunStatus::Complete,
            error: None,
            started_at: String::new(),
            finished_at: None,
            points,
            fits: Vec::new(),
            worst_phase: None,
            worst_subphase: None,
        };
        r.fits = fit_all(&r.points);
        r.worst_phase = worst_phase(&r.fits);
        r.worst_subphase = worst_subphase(&r.fits);
        r
    }

    #[test]
    fn fits_flag_the_superlinear_phase_and_name_the_worst() {
        let r = result();
        let get = |m: &str| r.fits.iter().find(|f| f.metric == m).unwrap();
        assert!((get("phase.stores_start").fit.as_ref().unwrap().b - 2.0).abs() < 1e-9);
        assert!(get("phase.stores_start").superlinear);
        assert!(!get("phase.db_prepare").superlinear);
        assert!(get("phase.import_config").fit.as_ref().unwrap().b.abs() < 1e-9);
        assert_eq!(r.worst_phase.as_deref(), Some("stores_start"));
        let md = markdown(&r);
        assert!(md.contains("Worst phase: `stores_start`"));
        assert!(md.contains("| phase.stores_start | 2.00 |"));
        assert!(md.contains("| 8k |"));
    }

    #[test]
    fn extrapolation_is_bounded_and_exact_on_exact_laws() {
        let r = result();
        let rows = extrapolate(&r, 16_000.0, false).unwrap();
        let ss = rows
            .iter()
            .find(|e| e.metric == "phase.stores_start")
            .unwrap();
        assert!((ss.prediction.value / (0.001 * 16e3 * 16e3) - 1.0).abs() < 1e-6);
        // 100k is 12.5× the largest measured value: refused unless forced.
        let e = extrapolate(&r, 100_000.0, false).unwrap_err();
        assert!(e.to_string().contains("12.5×"), "{e}");
        assert!(extrapolate(&r, 100_000.0, true).is_ok());
        assert!(extrapolate(&r, 50.0, false).is_err());
        let text = size_report(&r, 16_000.0, &rows);
        assert!(text.contains("EXTRAPOLATED 2.0×") && text.contains("phase.stores_start"));
    }

    #[test]
    fn files_are_written_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = result();
        write_files(dir.path(), &mut r).unwrap();
        let back = load(dir.path()).unwrap();
        assert_eq!(back, r);
        assert!(dir.path().join("fit-phase.stores_start.svg").exists());
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert!(
            html.contains("<svg") && html.contains("stores_start") && !html.contains("http://cdn")
        );
    }
}
