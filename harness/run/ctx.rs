//! The context every stage of a run shares: the scenario, the options, the result so far, and
//! the turn-taking of boots.

use super::error::RunError;
use super::options::Attach;
use super::options::{RunOptions, ServeHooks};
use super::turns;
use crate::metrics::self_usage;
use crate::report::write_all;
use crate::result::RunResult;
use crate::scenario::Scenario;
use std::path::PathBuf;
use std::time::Instant;

pub(super) enum Mode {
    Full,
    Serve(ServeHooks),
    Attach(Attach),
}

pub(super) struct Ctx<'a> {
    pub(super) scenario: &'a Scenario,
    pub(super) opts: &'a RunOptions,
    pub(super) run_dir: PathBuf,
    pub(super) result: RunResult,
    pub(super) started: Instant,
    pub(super) mode: Mode,
    /// True while a workload runs: on a signal it ends itself and keeps what it measured, so
    /// the run waits for it (briefly) instead of dropping it.
    pub(super) in_workload: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The dataset load's finished steps, kept for the result when a signal cuts the load.
    pub(super) load_steps: crate::dataset::seed::StepLog,
}

impl Ctx<'_> {
    pub(super) fn say(&self, msg: &str) {
        if !self.opts.quiet {
            match &self.opts.label {
                Some(l) => eprintln!("==> [{l}] {msg}"),
                None => eprintln!("==> {msg}"),
            }
        }
    }

    /// This run's next turn among the runs it is interleaved with (`None`: it runs alone).
    pub(super) async fn turn(&self) -> Option<turns::TurnGuard> {
        match &self.opts.turns {
            Some(t) => Some(t.take().await),
            None => None,
        }
    }

    /// Rewrite the result files (partial results survive a crash).
    pub(super) fn save(&mut self) -> Result<(), RunError> {
        self.result.duration_s = self.started.elapsed().as_secs_f64();
        self.result.harness.self_usage = self_usage();
        write_all(&self.run_dir, &self.result)
            .map_err(|(path, source)| RunError::Output { path, source })
    }
}

pub(super) fn finish_files(ctx: &mut Ctx<'_>) -> Result<(), RunError> {
    let mut logs: Vec<String> = ctx
        .result
        .seed_boot
        .iter()
        .chain(&ctx.result.boots)
        .chain(
            ctx.result
                .crash_restarts
                .iter()
                .flat_map(|c| [&c.killed, &c.recovery]),
        )
        .chain(&ctx.result.workload_boot)
        .map(|b| b.log_file.clone())
        .collect();
    ctx.result.files.append(&mut logs);
    Ok(())
}
