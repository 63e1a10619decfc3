//! Sizing sweeps, the driver: one ordinary run per value of the swept dimension, then the fits
//! ([`crate::analysis::sweep`]) and the files ([`crate::report::sweep`]).

use crate::server::limits::Limits;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use crate::analysis::sweep::{
    SWEEP_SCHEMA_VERSION, SweepPoint, SweepResult, fit_all, metrics_of, series, worst_phase,
    worst_subphase,
};
use crate::report::sweep::{html, markdown};
use crate::result::RunStatus;
use crate::run::{RunError, RunOptions, run};
use crate::scenario::Scenario;

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
        worst_subphase: None,
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
        if sweep.dimension.is_dataset() {
            point.dataset = scenario.dataset.with(sweep.dimension, value as u64);
        } else {
            // The hardware dimension: the same dataset (one fixture) under another quota.
            let mut limits = scenario.server.limits.clone().unwrap_or(Limits {
                cpus: None,
                memory: None,
                cpuset: None,
            });
            limits.cpus = Some(value);
            point.server.limits = Some(limits);
        }
        point.sweep = None;
        if !sweep.workloads {
            point.workloads.clear();
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
        if opts.discard_fixtures
            && let Ok(o) = &outcome
            && let Some(fx) = o.result.dataset.as_ref().and_then(|d| d.fixture.as_ref())
            && !fx.reused
        {
            match opts.fixtures.remove(Some(&fx.key)) {
                Ok(_) if !opts.quiet => {
                    eprintln!("==> fixture {} removed (--discard-fixtures)", fx.key)
                }
                Ok(_) => {}
                Err(e) => eprintln!("WARNING: could not remove fixture {}: {e}", fx.key),
            }
        }
        match outcome {
            Ok(o) => result.points.push(SweepPoint {
                value,
                run_dir: rel,
                status: o.result.status,
                error: None,
                metrics: metrics_of(&o.result),
                slowest_statements: crate::analysis::sweep::slowest_statements(
                    &o.result,
                    crate::analysis::sweep::POINT_STATEMENTS,
                ),
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
                    slowest_statements: Vec::new(),
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
            source: msg.into(),
        });
    }
    result.status = RunStatus::Complete;
    write_files(&dir, &mut result)?;
    Ok(SweepOutcome { dir, result })
}

/// Fit, plot and write `sweep.json`, `summary.md`, `report.html` and the SVGs.
/// The file a metric's fit is drawn in: `fit-<metric>.svg` with every run of characters other
/// than letters, digits, `.`, `-` and `_` made one `_`. A `:` would make a relative link a URL
/// scheme (`fit-subphase.prefill:…`), a space or parenthesis breaks Markdown links.
fn plot_file(metric: &str) -> String {
    let mut slug = String::with_capacity(metric.len());
    for c in metric.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
            slug.push(c);
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
    }
    format!("fit-{}.svg", slug.trim_end_matches('_'))
}

pub fn write_files(dir: &Path, result: &mut SweepResult) -> Result<(), RunError> {
    result.fits = fit_all(&result.points);
    result.worst_phase = worst_phase(&result.fits);
    result.worst_subphase = worst_subphase(&result.fits);
    let dim = result.dimension.name();
    let mut plots = Vec::new();
    for f in &mut result.fits {
        let pts = series(&result.points, &f.metric);
        if pts.is_empty() {
            continue;
        }
        let mut name = plot_file(&f.metric);
        while plots.iter().any(|(n, _)| *n == name) {
            name.insert(name.len() - 4, '_');
        }
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

#[cfg(test)]
mod tests {
    use super::plot_file;

    #[test]
    fn plot_files_are_safe_relative_links() {
        assert_eq!(
            plot_file("phase.stores_start"),
            "fit-phase.stores_start.svg"
        );
        assert_eq!(
            plot_file("cold.subphase.prefill: events"),
            "fit-cold.subphase.prefill_events.svg"
        );
        assert_eq!(
            plot_file("subphase.stream_generator: (between push_rules and receipts)"),
            "fit-subphase.stream_generator_between_push_rules_and_receipts.svg"
        );
        assert_eq!(plot_file("herd.sync/p99"), "fit-herd.sync_p99.svg");
    }
}
