//! One run of a scenario, end to end: install → dataset → measured boots → workloads → results.
//!
//! The run directory is created first (a bad output path fails before any work) and the result
//! files are rewritten after every stage. On an error or an interrupt the servers are killed
//! (their guards drop with the stage's future) and the result is written with its status.
mod attach;
mod boots;
mod ctx;
mod db;
mod error;
mod options;
mod serve;
mod spec;
mod stages;
mod target;
mod wait;
mod workdir;

use ctx::*;
pub use error::RunError;
use options::*;
pub use options::{Attach, RunOptions, RunOutcome, ServeHooks, ServeInfo};
use stages::stages;
pub use workdir::work_parents;
use workdir::*;

pub mod ab;
pub mod baseline;
pub mod bisect;
mod crash;
mod dataset;
mod profiling;
pub mod protocols;
pub mod sweep;
pub mod turns;
pub mod work;
mod workloads;

use std::time::{Duration, Instant};

use crate::result::{RunResult, RunStatus};
use crate::scenario::Scenario;

/// How long an interrupted run waits for its running workload to save what it measured.
const WORKLOAD_GRACE: Duration = Duration::from_secs(15);

/// Run subdirectory of the profiles (raw profiler output, folded stacks, flamegraphs).
pub use crate::profile::PROFILE_DIR;

/// `<UTC time>-<scenario name>`, safe as a directory name.
pub fn run_id(scenario: &Scenario) -> String {
    let safe: String = scenario
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}-{safe}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"))
}

/// Run `scenario`. SIGINT, SIGTERM or SIGHUP interrupt cleanly: the running stage is dropped (its servers are
/// killed by their guards) and the result is written with status `interrupted`.
pub async fn run(scenario: &Scenario, opts: &RunOptions) -> Result<RunOutcome, RunError> {
    run_mode(scenario, opts, Mode::Full).await
}

/// Boot the scenario's server over its dataset (built or restored as `run` does) and keep it
/// serving until `hooks.stop` resolves; the run directory records the dataset and the boot.
pub async fn serve(
    scenario: &Scenario,
    opts: &RunOptions,
    hooks: ServeHooks,
) -> Result<RunOutcome, RunError> {
    run_mode(scenario, opts, Mode::Serve(hooks)).await
}

/// Run the scenario's workloads against a server that is already running (no install, no
/// boots), for `attach.shard`'s slice of the clients. Loopback URLs only.
pub async fn run_attached(
    scenario: &Scenario,
    opts: &RunOptions,
    attach: Attach,
) -> Result<RunOutcome, RunError> {
    crate::load::generator::GeneratorSpec::parse_url(&attach.base_url).map_err(|e| {
        RunError::Attach {
            url: attach.base_url.clone(),
            source: e.into(),
        }
    })?;
    let sharded = attach
        .shard
        .scenario(scenario, attach.release_at.is_some())?;
    // Shards started in the same millisecond must not share a run directory.
    let opts = RunOptions {
        run_id: Some(opts.run_id.clone().unwrap_or_else(|| {
            let s = attach.shard;
            if s.count > 1 {
                format!("{}-shard{}of{}", run_id(scenario), s.index, s.count)
            } else {
                run_id(scenario)
            }
        })),
        ..opts.clone()
    };
    run_mode(&sharded, &opts, Mode::Attach(attach)).await
}

async fn run_mode(
    scenario: &Scenario,
    opts: &RunOptions,
    mode: Mode,
) -> Result<RunOutcome, RunError> {
    let id = opts.run_id.clone().unwrap_or_else(|| run_id(scenario));
    // `serve` is interrupted by its stop signal until it serves; from then on the stop is its
    // normal end (the serving stage sees it and stops the server itself).
    let serving = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let serve_stop = match &mode {
        Mode::Serve(h) => Some(h.stop.clone()),
        _ => None,
    };
    let serving_flag = serving.clone();
    let interrupt = async move {
        match serve_stop {
            None => crate::util::interrupt::interrupted().await,
            Some(rx) => {
                stopped(rx).await;
                if serving_flag.load(std::sync::atomic::Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                crate::util::interrupt::pending().unwrap_or(libc::SIGTERM)
            }
        }
    };
    // Every herd client holds a connection.
    crate::metrics::raise_nofile_limit();
    // Absolute: profilers and servers get paths inside the run directory, from their own
    // working directories.
    let run_dir = crate::util::fs::absolute(opts.results_dir.join(&id));
    std::fs::create_dir_all(&run_dir).map_err(|source| RunError::Output {
        path: run_dir.clone(),
        source,
    })?;
    let in_workload = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut ctx = Ctx {
        scenario,
        opts,
        run_dir: run_dir.clone(),
        result: RunResult::new(&id, scenario),
        started: Instant::now(),
        mode,
        in_workload: in_workload.clone(),
        load_steps: crate::dataset::seed::StepLog::default(),
    };
    ctx.save()?;
    // Next to the fixtures only when the run uses them (an external database is never
    // snapshotted or restored).
    let work_parent = if scenario.server.postgres_url.is_none() {
        work_parent(&opts.fixtures, false)
    } else {
        std::env::temp_dir()
    };
    // What runs killed without a chance to clean up left (their servers' data, credentials
    // with access tokens): removed, and said.
    clean_stale_work(&ctx, &work_parent);
    let work = owned_work_dir("hsbench-work-", &work_parent)?;

    let outcome = {
        let mut staged = std::pin::pin!(stages(&mut ctx, work.path(), &serving));
        tokio::select! {
            r = &mut staged => r,
            signal = interrupt => {
                // A running workload sees the signal too, ends early and saves what it
                // measured (marked partial); anything else is dropped at once (its servers
                // are killed by their guards).
                if in_workload.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = tokio::time::timeout(WORKLOAD_GRACE, &mut staged).await;
                }
                Err(RunError::Interrupted { signal })
            }
        }
    };
    if matches!(outcome, Err(RunError::Interrupted { .. }))
        && let Some(d) = ctx.result.dataset.as_mut()
        && d.load.is_none()
        && let Some(report) = ctx
            .load_steps
            .partial_report(ctx.opts.load_concurrency, d.totals)
    {
        // A load cut by the signal: its finished steps, marked partial.
        d.load = Some(report);
    }
    ctx.result.finished_at =
        Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    match &outcome {
        Ok(()) => {
            ctx.result.status = RunStatus::Complete;
            ctx.result.thresholds =
                crate::analysis::thresholds::check_thresholds(&ctx.result, &scenario.thresholds);
        }
        Err(e @ RunError::Interrupted { .. }) => {
            ctx.result.status = RunStatus::Interrupted;
            ctx.result.error = Some(e.to_string());
        }
        Err(e) => {
            ctx.result.status = RunStatus::Failed;
            ctx.result.error = Some(e.to_string());
        }
    }
    if let Err(e) = ctx.save() {
        // The results cannot be written (a full disk): result.json must not stay `running`.
        ctx.result.status = match ctx.result.status {
            RunStatus::Complete | RunStatus::Running => RunStatus::Failed,
            s => s,
        };
        if ctx.result.error.is_none() {
            ctx.result.error = Some(e.to_string());
        }
        let _ = crate::report::write_status_in_place(&ctx.run_dir, &ctx.result);
        return Err(outcome.err().unwrap_or(e));
    }
    outcome?;
    Ok(RunOutcome {
        run_dir,
        result: ctx.result,
    })
}

#[cfg(test)]
mod tests;
