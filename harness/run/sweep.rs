//! Sizing sweeps: run a scenario once per value of one dataset dimension, fit how every boot
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
use crate::run::{RunError, RunOptions, run};
use crate::scenario::{Scenario, SweepDimension};
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
    pub value: u64,
    /// The point's run directory, relative to the sweep directory.
    pub run_dir: String,
    pub status: RunStatus,
    pub error: Option<String>,
    /// Metric name → value (see [`MetricFit::unit`]).
    pub metrics: BTreeMap<String, f64>,
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
    pub values: Vec<u64>,
    pub status: RunStatus,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub points: Vec<SweepPoint>,
    pub fits: Vec<MetricFit>,
    /// The boot phase with the steepest significantly super-linear growth, if any.
    pub worst_phase: Option<String>,
}

/// The metrics a sweep fits, from one point's run result: the medians of its figures (warm and
/// cold boots, the fixture's size, the workloads), under their catalogue names. Crash recoveries
/// and error shares are left out: they say whether a point is sound, not how it grows.
pub fn metrics_of(r: &RunResult) -> BTreeMap<String, f64> {
    crate::analysis::figures::figures(r)
        .into_iter()
        .filter(|f| !f.metric.starts_with("crash.") && f.unit != catalogue::Unit::Percent)
        .map(|f| (f.metric, f.value))
        .collect()
}

/// `(value, metric)` of the completed points that have `metric`.
fn series(points: &[SweepPoint], metric: &str) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter(|p| p.status == RunStatus::Complete)
        .filter_map(|p| p.metrics.get(metric).map(|v| (p.value as f64, *v)))
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
    fits.iter()
        .filter(|f| f.metric.starts_with("phase.") && f.superlinear)
        .max_by(|a, b| {
            let (fa, fb) = (a.fit.as_ref().unwrap(), b.fit.as_ref().unwrap());
            fa.b.total_cmp(&fb.b)
        })
        .map(|f| f.metric.trim_start_matches("phase.").to_string())
}

/// What a sweep hands back.
#[derive(Debug)]
pub struct SweepOutcome {
    pub dir: PathBuf,
    pub result: SweepResult,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Output {
        path: path.to_path_buf(),
        source,
    }
}

/// Run the sweep of `scenario` (which must have `[sweep]`): one ordinary run per value, in
/// ascending order, then the fits. Files are rewritten after every point, so an interrupted
/// sweep keeps what it measured. A failed point is recorded and the sweep goes on; the sweep
/// fails if fewer than three points completed.
pub async fn run_sweep(scenario: &Scenario, opts: &RunOptions) -> Result<SweepOutcome, RunError> {
    let sweep = scenario
        .sweep
        .clone()
        .expect("run_sweep needs a scenario with [sweep]");
    let id = format!("{}-sweep", crate::run::run_id(scenario));
    let dir = crate::util::fs::absolute(opts.results_dir.join(&id));
    std::fs::create_dir_all(dir.join("points")).map_err(io(&dir))?;
    let mut result = SweepResult {
        schema_version: SWEEP_SCHEMA_VERSION,
        sweep_id: id,
        scenario: scenario.name.clone(),
        scenario_sha256: scenario.sha256.clone(),
        dimension: sweep.dimension,
        values: sweep.values.clone(),
        status: RunStatus::Running,
        error: None,
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        finished_at: None,
        points: Vec::new(),
        fits: Vec::new(),
        worst_phase: None,
    };
    write_files(&dir, &mut result)?;
    let dim = sweep.dimension.name();
    for (i, &value) in sweep.values.iter().enumerate() {
        if !opts.quiet {
            eprintln!(
                "==> sweep point {}/{}: {dim} = {value}",
                i + 1,
                sweep.values.len()
            );
        }
        let mut point = scenario.clone();
        point.dataset = scenario.dataset.with(sweep.dimension, value);
        point.sweep = None;
        if !sweep.workloads {
            point.herd = None;
            point.triggered = None;
            point.steady = None;
            point.catchup = None;
            point.workload_order.clear();
        }
        let run_id = format!("{dim}-{value}");
        let point_opts = RunOptions {
            results_dir: dir.join("points"),
            run_id: Some(run_id.clone()),
            ..opts.clone()
        };
        // The point's run handles the signals itself (and writes its own result as
        // interrupted); the sweep records that and stops.
        let outcome = run(&point, &point_opts).await;
        let rel = format!("points/{run_id}");
        match outcome {
            Ok(o) => result.points.push(SweepPoint {
                value,
                run_dir: rel,
                status: o.result.status,
                error: None,
                metrics: metrics_of(&o.result),
            }),
            Err(e @ RunError::Interrupted { .. }) => {
                result.status = RunStatus::Interrupted;
                result.error = Some(e.to_string());
                write_files(&dir, &mut result)?;
                return Err(e);
            }
            Err(e) => {
                if !opts.quiet {
                    eprintln!("WARNING: sweep point {dim} = {value} failed: {e}");
                }
                result.points.push(SweepPoint {
                    value,
                    run_dir: rel,
                    status: RunStatus::Failed,
                    error: Some(e.to_string()),
                    metrics: BTreeMap::new(),
                });
            }
        }
        write_files(&dir, &mut result)?;
    }
    let complete = result
        .points
        .iter()
        .filter(|p| p.status == RunStatus::Complete)
        .count();
    result.finished_at =
        Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    if complete < 3 {
        result.status = RunStatus::Failed;
        let msg = format!("only {complete} of the sweep's points completed; a fit needs 3");
        result.error = Some(msg.clone());
        write_files(&dir, &mut result)?;
        return Err(RunError::Workload {
            workload: "sweep".into(),
            message: msg,
        });
    }
    result.status = RunStatus::Complete;
    write_files(&dir, &mut result)?;
    Ok(SweepOutcome { dir, result })
}

/// Fit, plot and write `sweep.json`, `summary.md`, `report.html` and the SVGs.
pub fn write_files(dir: &Path, result: &mut SweepResult) -> Result<(), RunError> {
    result.fits = fit_all(&result.points);
    result.worst_phase = worst_phase(&result.fits);
    let dim = result.dimension.name();
    let mut plots = Vec::new();
    for f in &mut result.fits {
        let pts = series(&result.points, &f.metric);
        if pts.is_empty() {
            continue;
        }
        let name = format!("fit-{}.svg", f.metric.replace(['/', ' '], "_"));
        let svg = crate::report::svg::loglog(
            &format!("{} · {} vs {dim}", result.scenario, f.metric),
            dim,
            &f.unit,
            &pts,
            f.fit.as_ref(),
        );
        plots.push((name.clone(), svg));
        f.plot = Some(name);
    }
    for (name, svg) in &plots {
        let p = dir.join(name);
        crate::util::fs::write_atomic(&p, svg.as_bytes()).map_err(io(&p))?;
    }
    let json = serde_json::to_vec_pretty(result).expect("a sweep result serializes");
    let p = dir.join("sweep.json");
    crate::util::fs::write_atomic(&p, &json).map_err(io(&p))?;
    let p = dir.join("summary.md");
    crate::util::fs::write_atomic(&p, markdown(result).as_bytes()).map_err(io(&p))?;
    let p = dir.join("report.html");
    let html = html(result, &plots);
    crate::util::fs::write_atomic(&p, html.as_bytes()).map_err(io(&p))?;
    Ok(())
}

/// Per value: what an operator asks first.
const SIZING_COLUMNS: &[(&str, &str)] = &[
    ("time_to_ready", "time to ready (warm)"),
    ("cold.time_to_ready", "time to ready (cold)"),
    ("peak_rss", "peak RSS"),
    ("data_size", "data size"),
    ("herd.sync.p99", "herd p99"),
];

fn sizing_rows(r: &SweepResult) -> (Vec<&str>, Vec<Vec<String>>) {
    let cols: Vec<&(&str, &str)> = SIZING_COLUMNS
        .iter()
        .filter(|(m, _)| r.points.iter().any(|p| p.metrics.contains_key(*m)))
        .collect();
    let head = cols.iter().map(|(_, h)| *h).collect();
    let rows = r
        .points
        .iter()
        .map(|p| {
            let mut row = vec![crate::util::fmt::fmt_num(p.value as f64)];
            if p.status != RunStatus::Complete {
                row.push(format!(
                    "{:?}: {}",
                    p.status,
                    p.error.as_deref().unwrap_or("")
                ));
                return row;
            }
            for (m, _) in &cols {
                row.push(
                    p.metrics
                        .get(*m)
                        .map_or("–".into(), |v| catalogue::format(m, *v)),
                );
            }
            row
        })
        .collect();
    (head, rows)
}

fn fit_cells(f: &MetricFit) -> [String; 4] {
    match &f.fit {
        Some(x) => [
            format!("{:.2}", x.b),
            format!("{:.2} … {:.2}", x.b_low, x.b_high),
            format!("{:.3}", x.r2),
            if f.superlinear {
                "**super-linear**".into()
            } else if x.b_high < 1.0 {
                "sub-linear".into()
            } else {
                "linear or below".into()
            },
        ],
        None => ["–".into(), "–".into(), "–".into(), "too few points".into()],
    }
}

pub fn markdown(r: &SweepResult) -> String {
    let dim = r.dimension.name();
    let mut md = format!(
        "## hsbench sweep · {} · {dim} = {}\n\nstatus: {:?}{}\n\n",
        r.scenario,
        r.values
            .iter()
            .map(|v| crate::util::fmt::fmt_num(*v as f64))
            .collect::<Vec<_>>()
            .join(", "),
        r.status,
        r.error
            .as_ref()
            .map_or(String::new(), |e| format!(" ({e})"))
    );
    if let Some(w) = &r.worst_phase {
        md.push_str(&format!(
            "**Worst phase: `{w}` grows super-linearly with {dim}.**\n\n"
        ));
    } else if r.status == RunStatus::Complete {
        md.push_str("No boot phase grows significantly faster than linearly over this range.\n\n");
    }
    let (head, rows) = sizing_rows(r);
    md.push_str(&format!(
        "### Sizing\n\n| {dim} | {} |\n|---:|",
        head.join(" | ")
    ));
    md.push_str(&"---:|".repeat(head.len()));
    md.push('\n');
    for row in rows {
        md.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    md.push_str(&format!(
        "\n### Growth: t = a · {dim}^b (least squares on log–log, 95% CI of b)\n\n| metric | b | 95% CI | R² | verdict | plot |\n|---|---:|---|---:|---|---|\n"
    ));
    for f in &r.fits {
        let [b, ci, r2, verdict] = fit_cells(f);
        md.push_str(&format!(
            "| {} | {b} | {ci} | {r2} | {verdict} | {} |\n",
            f.metric,
            f.plot
                .as_ref()
                .map_or(String::new(), |p| format!("[svg]({p})"))
        ));
    }
    md.push_str(&format!(
        "\nExtrapolate with `hsbench size <this directory> --{} N` (within {MAX_EXTRAPOLATION}× of the measured range).\n",
        dim.replace('_', "-")
    ));
    md
}

fn html(r: &SweepResult, plots: &[(String, String)]) -> String {
    let esc = crate::util::fmt::esc;
    let dim = r.dimension.name();
    let mut h = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>hsbench sweep · {}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#f4f4f4}}\
         .plots{{display:flex;flex-wrap:wrap;gap:12px}}.warn{{color:#b00;font-weight:bold}}</style></head><body>\
         <h1>hsbench sweep · {} · {dim}</h1><p>status {:?} · started {}</p>",
        esc(&r.scenario),
        esc(&r.scenario),
        r.status,
        esc(&r.started_at)
    );
    if let Some(w) = &r.worst_phase {
        h.push_str(&format!(
            "<p class=\"warn\">Worst phase: {} grows super-linearly with {dim}.</p>",
            esc(w)
        ));
    }
    let (head, rows) = sizing_rows(r);
    h.push_str(&format!("<h2>Sizing</h2><table><tr><th>{dim}</th>"));
    for c in head {
        h.push_str(&format!("<th>{}</th>", esc(c)));
    }
    h.push_str("</tr>");
    for row in rows {
        h.push_str("<tr>");
        for c in row {
            h.push_str(&format!("<td>{}</td>", esc(&c)));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table><h2>Growth</h2><table><tr><th>metric</th><th>b</th><th>95% CI</th><th>R²</th><th>verdict</th></tr>");
    for f in &r.fits {
        let [b, ci, r2, verdict] = fit_cells(f);
        h.push_str(&format!(
            "<tr><td>{}</td><td>{b}</td><td>{ci}</td><td>{r2}</td><td>{}</td></tr>",
            esc(&f.metric),
            esc(&verdict.replace("**", ""))
        ));
    }
    h.push_str("</table><h2>Plots</h2><div class=\"plots\">");
    for (_, svg) in plots {
        h.push_str("<div>");
        h.push_str(svg);
        h.push_str("</div>");
    }
    h.push_str("</div></body></html>\n");
    h
}

/// One metric extrapolated to a value of the swept dimension.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize)]
pub struct Extrapolation {
    pub metric: String,
    pub unit: String,
    pub prediction: Prediction,
    pub b: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum SizeError {
    #[error("{}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error(
        "{dimension} = {value} is {factor:.1}× beyond the measured range {min}–{max}: refusing to extrapolate more than {MAX_EXTRAPOLATION}× (a decade on the log scale); sweep further, or pass --force"
    )]
    TooFar {
        dimension: String,
        value: u64,
        min: u64,
        max: u64,
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
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| SizeError::Read {
        path: file,
        message: format!("not a sweep result: {e}"),
    })
}

/// Smallest and largest value of the completed points, and how many there are.
fn measured_range(r: &SweepResult) -> (u64, u64, usize) {
    let values: Vec<u64> = r
        .points
        .iter()
        .filter(|p| p.status == RunStatus::Complete)
        .map(|p| p.value)
        .collect();
    (
        values.iter().copied().min().unwrap_or(0),
        values.iter().copied().max().unwrap_or(0),
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
    value: u64,
    force: bool,
) -> Result<Vec<Extrapolation>, SizeError> {
    let (min, max, _) = measured_range(r);
    let factor = extrapolation_factor(value as f64, min as f64, max as f64);
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
                prediction: fit.predict(value as f64),
                b: fit.b,
            })
        })
        .collect())
}

/// The `hsbench size` table.
pub fn size_report(r: &SweepResult, value: u64, rows: &[Extrapolation]) -> String {
    let dim = r.dimension.name();
    let (min, max, n) = measured_range(r);
    let factor = extrapolation_factor(value as f64, min as f64, max as f64);
    let mut s = format!(
        "{} at {dim} = {value}, from the sweep {} (fitted over {dim} {min}–{max}, {} points)\n",
        r.scenario, r.sweep_id, n
    );
    if factor > 1.0 {
        s.push_str(&format!(
            "EXTRAPOLATED {factor:.1}× beyond the measured range: the intervals assume the same growth law holds there\n"
        ));
    }
    s.push_str(&format!(
        "\n{:<28} {:>12} {:>27} {:>6}\n",
        "metric", "predicted", "95% prediction interval", "b"
    ));
    for e in rows {
        s.push_str(&format!(
            "{:<28} {:>12} {:>27} {:>6.2}\n",
            e.metric,
            catalogue::format(&e.metric, e.prediction.value),
            format!(
                "{} – {}",
                catalogue::format(&e.metric, e.prediction.low),
                catalogue::format(&e.metric, e.prediction.high)
            ),
            e.b
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(value: u64, metrics: &[(&str, f64)]) -> SweepPoint {
        SweepPoint {
            value,
            run_dir: format!("points/users-{value}"),
            status: RunStatus::Complete,
            error: None,
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
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
            values: vec![1000, 2000, 4000, 8000],
            status: RunStatus::Complete,
            error: None,
            started_at: String::new(),
            finished_at: None,
            points,
            fits: Vec::new(),
            worst_phase: None,
        };
        r.fits = fit_all(&r.points);
        r.worst_phase = worst_phase(&r.fits);
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
        let rows = extrapolate(&r, 16_000, false).unwrap();
        let ss = rows
            .iter()
            .find(|e| e.metric == "phase.stores_start")
            .unwrap();
        assert!((ss.prediction.value / (0.001 * 16e3 * 16e3) - 1.0).abs() < 1e-6);
        // 100k is 12.5× the largest measured value: refused unless forced.
        let e = extrapolate(&r, 100_000, false).unwrap_err();
        assert!(e.to_string().contains("12.5×"), "{e}");
        assert!(extrapolate(&r, 100_000, true).is_ok());
        assert!(extrapolate(&r, 50, false).is_err());
        let text = size_report(&r, 16_000, &rows);
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
