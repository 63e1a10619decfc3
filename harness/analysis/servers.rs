//! Servers side by side: the sizing sweeps of different servers over one dataset spec (same
//! seed, users, rooms, messages; only how each was loaded may differ), put next to each other per
//! value of the swept dimension: time to ready, the phase that dominates it and its share, the
//! start-up work after ready, and each metric's growth exponent per server. Phase names are the
//! servers' own (their profiles differ), so the comparison is of shapes, not a regression verdict.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::analysis::sweep::{Extrapolation, MetricFit, SizeError, SweepResult, extrapolate};
use crate::result::read::{ReadError, read_result};
use crate::result::{RunResult, RunStatus};
use crate::scenario::DatasetSpec;

pub const SIDE_BY_SIDE_SCHEMA_VERSION: u32 = 1;

/// Spec fields that may differ between the sweeps: how the data got in, not what it is.
const LOADING_FIELDS: &[&str] = &["load", "registration"];

/// One value of the swept dimension on one server (warm medians unless named cold).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SidePoint {
    pub value: f64,
    pub status: RunStatus,
    pub time_to_ready_ms: Option<f64>,
    pub cold_time_to_ready_ms: Option<f64>,
    /// Each phase of the server's profile, in its order.
    pub phases: Vec<(String, f64)>,
    /// The longest phase, its duration and its share of the time to ready.
    pub dominant: Option<Dominant>,
    /// Ready until the start-up background work finished, and the CPU it took.
    pub background_ms: Option<f64>,
    pub cpu_background_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Dominant {
    pub phase: String,
    pub ms: f64,
    pub share: f64,
}

/// One server's sweep.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServerSide {
    /// "tuwunel 1.4.6 (sha256 …)", "synapse 1.163.2 · sqlite".
    pub server: String,
    pub sweep_dir: String,
    /// The sweep's own status (an interrupted sweep keeps the points it finished).
    pub sweep_status: RunStatus,
    /// The completed points' range of the swept dimension: what the fits stand on.
    pub measured: (f64, f64, usize),
    /// How its datasets were loaded (the load report's method, or the direct import).
    pub loaded_by: String,
    pub points: Vec<SidePoint>,
    /// The start-up fits: time to ready (warm, cold), each phase, the background work.
    pub fits: Vec<MetricFit>,
    /// The same metrics predicted at the requested value (`--at`).
    pub predicted: Vec<Extrapolation>,
}

/// The side-by-side result (`side-by-side.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SideBySide {
    pub schema_version: u32,
    pub dimension: String,
    /// The dataset every sweep shares, at its smallest point (the swept field varies).
    pub spec: DatasetSpec,
    pub at: Option<u64>,
    pub servers: Vec<ServerSide>,
}

#[derive(Debug, thiserror::Error)]
pub enum SideBySideError {
    #[error("side by side needs at least two sweeps, got {0}")]
    TooFew(usize),
    #[error(transparent)]
    Sweep(#[from] SizeError),
    #[error(
        "{}: no point of the sweep completed with its dataset recorded; nothing to put side by side",
        path.display()
    )]
    NoPoint { path: PathBuf },
    #[error("reading a point of the sweep {}", path.display())]
    Point {
        path: PathBuf,
        #[source]
        source: ReadError,
    },
    #[error(
        "{} varied {a}, {} varied {b}: side by side needs sweeps of one dimension",
        a_path.display(),
        b_path.display()
    )]
    Dimension {
        a: String,
        b: String,
        a_path: PathBuf,
        b_path: PathBuf,
    },
    #[error(
        "the sweeps ran different datasets: `dataset.{field}` is {a} in {} but {b} in {}",
        a_path.display(),
        b_path.display()
    )]
    Dataset {
        field: String,
        a: String,
        b: String,
        a_path: PathBuf,
        b_path: PathBuf,
    },
}

/// Is `metric` one of the start-up figures put side by side?
fn startup_metric(metric: &str) -> bool {
    matches!(
        metric,
        "time_to_ready" | "cold.time_to_ready" | "background" | "cpu_background"
    ) || metric.starts_with("phase.")
}

/// A sweep directory with the run of its first completed point (server, dataset, phase order).
struct Loaded {
    dir: PathBuf,
    sweep: SweepResult,
    first: RunResult,
}

fn load_one(dir: &Path) -> Result<Loaded, SideBySideError> {
    let sweep = crate::analysis::sweep::load(dir)?;
    let root = if dir.is_dir() {
        dir.to_path_buf()
    } else {
        dir.parent().unwrap_or(Path::new(".")).to_path_buf()
    };
    let point = sweep
        .points
        .iter()
        .find(|p| p.status == RunStatus::Complete)
        .ok_or_else(|| SideBySideError::NoPoint { path: root.clone() })?;
    let file = root.join(&point.run_dir).join("result.json");
    let first = read_result(&file).map_err(|source| SideBySideError::Point {
        path: root.clone(),
        source,
    })?;
    Ok(Loaded {
        dir: root,
        sweep,
        first,
    })
}

/// The spec as field → value, without the swept field and the loading fields.
fn comparable(spec: &DatasetSpec, swept: &str) -> BTreeMap<String, serde_json::Value> {
    let serde_json::Value::Object(m) = serde_json::to_value(spec).expect("a spec serializes")
    else {
        unreachable!("a spec is an object")
    };
    m.into_iter()
        .filter(|(k, _)| k != swept && !LOADING_FIELDS.contains(&k.as_str()))
        .collect()
}

fn server_label(r: &RunResult) -> String {
    match &r.server {
        Some(s) if s.kind == "synapse" => format!("synapse {} · {}", s.version, s.database),
        Some(s) => s.version.clone(),
        None => r.scenario["name"].as_str().unwrap_or("?").to_string(),
    }
}

fn side_point(p: &crate::analysis::sweep::SweepPoint, order: &[String]) -> SidePoint {
    let get = |m: &str| p.metrics.get(m).copied();
    let phases: Vec<(String, f64)> = order
        .iter()
        .filter_map(|name| get(&format!("phase.{name}")).map(|v| (name.clone(), v)))
        .collect();
    let ready = get("time_to_ready");
    let dominant = phases
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(phase, ms)| Dominant {
            phase: phase.clone(),
            ms: *ms,
            share: ready.filter(|r| *r > 0.0).map_or(0.0, |r| ms / r),
        });
    SidePoint {
        value: p.value,
        status: p.status,
        time_to_ready_ms: ready,
        cold_time_to_ready_ms: get("cold.time_to_ready"),
        phases,
        dominant,
        background_ms: get("background"),
        cpu_background_s: get("cpu_background"),
    }
}

/// Put the sweeps at `dirs` side by side, predicting each server at `at` when given (within the
/// sweep's extrapolation limit unless `force`).
pub fn side_by_side(
    dirs: &[PathBuf],
    at: Option<u64>,
    force: bool,
) -> Result<SideBySide, SideBySideError> {
    if dirs.len() < 2 {
        return Err(SideBySideError::TooFew(dirs.len()));
    }
    let loaded = dirs
        .iter()
        .map(|d| load_one(d))
        .collect::<Result<Vec<_>, _>>()?;
    let base = &loaded[0];
    let dim = base.sweep.dimension.name();
    let spec_of = |l: &Loaded| {
        l.first
            .dataset
            .as_ref()
            .map(|d| d.spec.clone())
            .ok_or_else(|| SideBySideError::NoPoint {
                path: l.dir.clone(),
            })
    };
    let base_spec = spec_of(base)?;
    let base_cmp = comparable(&base_spec, dim);
    for other in &loaded[1..] {
        if other.sweep.dimension != base.sweep.dimension {
            return Err(SideBySideError::Dimension {
                a: dim.into(),
                b: other.sweep.dimension.name().into(),
                a_path: base.dir.clone(),
                b_path: other.dir.clone(),
            });
        }
        let cmp = comparable(&spec_of(other)?, dim);
        if let Some((field, a)) = base_cmp.iter().find(|(k, v)| cmp.get(*k) != Some(v)) {
            return Err(SideBySideError::Dataset {
                field: field.clone(),
                a: a.to_string(),
                b: cmp.get(field).map_or("absent".into(), |v| v.to_string()),
                a_path: base.dir.clone(),
                b_path: other.dir.clone(),
            });
        }
    }
    let mut servers = Vec::new();
    for l in &loaded {
        let order: Vec<String> = l
            .first
            .boots
            .iter()
            .find(|b| !b.warmup)
            .map(|b| b.phases.iter().map(|p| p.name.clone()).collect())
            .unwrap_or_default();
        let predicted = match at {
            Some(v) => extrapolate(&l.sweep, v as f64, force)?
                .into_iter()
                .filter(|e| startup_metric(&e.metric))
                .collect(),
            None => Vec::new(),
        };
        let loaded_by = l
            .first
            .dataset
            .as_ref()
            .and_then(|d| d.load.as_ref().map(|r| r.method.clone()))
            .unwrap_or_else(|| "a fixture".into());
        servers.push(ServerSide {
            server: server_label(&l.first),
            sweep_dir: l.dir.display().to_string(),
            sweep_status: l.sweep.status,
            measured: crate::analysis::sweep::measured_range(&l.sweep),
            loaded_by,
            points: l
                .sweep
                .points
                .iter()
                .map(|p| side_point(p, &order))
                .collect(),
            fits: l
                .sweep
                .fits
                .iter()
                .filter(|f| startup_metric(&f.metric))
                .cloned()
                .collect(),
            predicted,
        });
    }
    Ok(SideBySide {
        schema_version: SIDE_BY_SIDE_SCHEMA_VERSION,
        dimension: dim.into(),
        spec: base_spec,
        at,
        servers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_loading_and_the_swept_field_may_differ() {
        let a = DatasetSpec::new(7, 1000, 10, 100, 5);
        let mut b = a.clone();
        b.users = 5000;
        b.load = crate::scenario::LoadMethod::Direct;
        assert_eq!(comparable(&a, "users"), comparable(&b, "users"));
        b.presence_share = 0.5;
        let (ca, cb) = (comparable(&a, "users"), comparable(&b, "users"));
        let diff: Vec<&String> = ca.keys().filter(|k| ca.get(*k) != cb.get(*k)).collect();
        assert_eq!(diff, vec!["presence_share"]);
    }

    #[test]
    fn the_dominant_phase_is_the_longest_with_its_share_of_ready() {
        let p = crate::analysis::sweep::SweepPoint {
            value: 10.0,
            run_dir: "points/users-10".into(),
            status: RunStatus::Complete,
            error: None,
            metrics: [
                ("time_to_ready", 1000.0),
                ("phase.db_open", 600.0),
                ("phase.first_sync", 300.0),
                ("background", 2500.0),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            slowest_statements: Vec::new(),
        };
        let s = side_point(&p, &["first_sync".into(), "db_open".into(), "gone".into()]);
        assert_eq!(
            s.phases,
            vec![("first_sync".into(), 300.0), ("db_open".into(), 600.0)]
        );
        let d = s.dominant.unwrap();
        assert_eq!((d.phase.as_str(), d.ms), ("db_open", 600.0));
        assert!((d.share - 0.6).abs() < 1e-12);
        assert_eq!(s.background_ms, Some(2500.0));
    }
}
