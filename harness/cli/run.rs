//! `run`, `seed` and `serve`: the commands that boot a server.

use super::args::{AbArgs, BisectArgs, RunArgs, ServeArgs};
use super::error::RunCommandError;
use super::out::outln;
use super::outcome::Outcome;
use crate::run::baseline::{BaselineStore, after_run};
use crate::run::{Attach, RunError, RunOptions, ServeHooks};
use crate::scenario::{self, Scenario};

/// `hsbench run` (and `seed`, which builds the fixture only).
pub async fn run(args: &RunArgs, seed_only: bool) -> Result<Outcome, RunCommandError> {
    crate::util::interrupt::watch();
    let mut scenario = scenario::load(&args.scenario).map_err(RunError::from)?;
    if let Some(m) = args.meter {
        scenario.boot.meter = m.into();
    }
    if let Some(url) = &args.attach {
        if seed_only {
            return Err(RunCommandError::Usage(
                "`hsbench seed` builds a fixture; --attach runs workloads (use `hsbench run --attach`)"
                    .into(),
            ));
        }
        return attached(args, &scenario, url).await;
    }
    let opts = RunOptions {
        seed_only,
        ..RunOptions::from(args)
    };
    let baselines = match &args.baselines_dir {
        Some(dir) => BaselineStore::new(dir),
        None => BaselineStore::in_results(&opts.results_dir),
    };
    // A missing baseline fails before the run, not after it.
    let compare_with = args
        .baseline
        .as_deref()
        .map(|n| baselines.find(n, &scenario.name))
        .transpose()?;
    if !args.protocols.is_empty() && !seed_only {
        return protocols(args, &scenario, &opts).await;
    }
    if scenario.sweep.is_some() && !seed_only {
        let out = crate::run::sweep::run_sweep(&scenario, &opts).await?;
        outln!("{}", crate::report::sweep::markdown(&out.result));
        outln!("results: {}", out.dir.display());
        return Ok(Outcome::Ok);
    }
    let out = crate::run::run(&scenario, &opts).await?;
    outln!("{}", crate::report::markdown(&out.result));
    outln!("results: {}", out.run_dir.display());
    let mut outcome = gates(&out.result);
    let o = after_run(
        &baselines,
        &out.run_dir,
        compare_with.as_ref(),
        args.save_baseline.as_deref(),
    )?;
    if let Some(c) = &o.comparison {
        outln!("{}", crate::report::compare::markdown(c));
        if !c.regressions().is_empty() {
            outcome = Outcome::GateFailed;
        }
    }
    if let Some(b) = &o.saved {
        outln!("saved as baseline {:?}: {}", b.name, b.dir.display());
    }
    Ok(outcome)
}

/// `run --protocols`: the scenario over each protocol, then the side-by-side files.
async fn protocols(
    args: &RunArgs,
    scenario: &Scenario,
    opts: &RunOptions,
) -> Result<Outcome, RunCommandError> {
    if scenario.sweep.is_some() {
        return Err(RunCommandError::Usage(
            "--protocols runs a scenario's workloads over each protocol; a sweep scenario is run without it".into(),
        ));
    }
    if !scenario.speaks_sync() {
        return Err(RunCommandError::Usage(format!(
            "--protocols: {} has no workload (herd, triggered, steady, catch-up) to run over a sync protocol",
            args.scenario.display()
        )));
    }
    let list: Vec<crate::scenario::SyncProtocol> =
        args.protocols.iter().map(|&p| p.into()).collect();
    let out = crate::run::protocols::run_protocols(scenario, opts, &list).await?;
    let mut outcome = Outcome::Ok;
    for (p, o) in &out.runs {
        outln!("results ({}): {}", p.name(), o.run_dir.display());
        if o.result.status != crate::result::RunStatus::Complete {
            eprintln!(
                "FAILED: the {} run is {:?}{}",
                p.name(),
                o.result.status,
                o.result
                    .error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
            outcome = Outcome::GateFailed;
        } else if gates(&o.result) != Outcome::Ok {
            outcome = Outcome::GateFailed;
        }
    }
    outln!("{}", crate::report::protocols::markdown(&out.sides));
    outln!("side by side: {}", out.dir.display());
    Ok(outcome)
}

/// Failed gates, named on stderr.
fn gates(result: &crate::result::RunResult) -> Outcome {
    let failed: Vec<String> = result
        .thresholds
        .iter()
        .filter(|t| !t.passed)
        .map(|t| t.reason())
        .collect();
    if failed.is_empty() {
        Outcome::Ok
    } else {
        eprintln!("FAILED: {}", failed.join("; "));
        Outcome::GateFailed
    }
}

/// `run --attach`: the workloads of one shard against a running server.
async fn attached(
    args: &RunArgs,
    scenario: &Scenario,
    target: &str,
) -> Result<Outcome, RunCommandError> {
    let attach = Attach::resolve(
        target,
        args.credentials.as_deref(),
        args.shard.as_deref(),
        args.release_at.as_deref(),
        |k| std::env::var(k).ok(),
    )?;
    let out = crate::run::run_attached(scenario, &RunOptions::from(args), attach).await?;
    outln!("{}", crate::report::markdown(&out.result));
    outln!("results: {}", out.run_dir.display());
    Ok(gates(&out.result))
}

/// `hsbench serve`: stops on SIGINT, SIGTERM (what Kubernetes sends) or SIGHUP.
pub async fn serve(args: &ServeArgs) -> Result<Outcome, RunCommandError> {
    crate::util::interrupt::watch();
    let scenario = scenario::load(&args.scenario).map_err(RunError::from)?;
    let credentials_out = args.credentials_out.clone().unwrap_or_else(|| {
        crate::util::fs::cache_dir()
            .join("serve")
            .join(&scenario.name)
            .join("credentials.json")
    });
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        crate::util::interrupt::interrupted().await;
        let _ = stop_tx.send(true);
        // Keep the sender alive: a dropped sender would read as "never stopped".
        std::future::pending::<()>().await
    });
    let hooks = ServeHooks {
        credentials_out,
        ready: None,
        stop,
    };
    let out = crate::run::serve(&scenario, &RunOptions::from(args), hooks).await?;
    outln!("stopped; results: {}", out.run_dir.display());
    Ok(Outcome::Ok)
}

/// `hsbench ab`: exit 1 when the head regressed.
pub async fn ab(args: &AbArgs) -> Result<Outcome, super::error::CliError> {
    crate::util::interrupt::watch();
    let c = &args.common;
    let mut scenario = scenario::load(&c.scenario).map_err(|e| RunCommandError::Run(e.into()))?;
    if let Some(m) = c.meter {
        scenario.boot.meter = m.into();
    }
    let mut o = crate::run::ab::AbOptions::new(
        &args.base,
        &args.head,
        RunOptions {
            boots_only: args.boots_only,
            ..c.run_options()
        },
    );
    o.repo = c.repo.clone();
    o.boots = c.boots;
    o.fresh_fixture = args.fresh_fixture;
    o.gates = c.gates.overrides();
    let out = crate::run::ab::ab(&scenario, &o).await.map_err(Box::new)?;
    outln!(
        "{}",
        std::fs::read_to_string(out.dir.join("compare.md")).unwrap_or_default()
    );
    for d in &out.flamediffs {
        outln!("flamediff {}: {}", d.scope, d.svg.display());
    }
    outln!("results: {}", out.dir.display());
    Ok(if out.comparison.regressions().is_empty() {
        Outcome::Ok
    } else {
        Outcome::GateFailed
    })
}

/// `hsbench bisect`: exit 0 with the first bad commit named (or none, when bad does not
/// regress).
pub async fn bisect(args: &BisectArgs) -> Result<Outcome, super::error::CliError> {
    crate::util::interrupt::watch();
    let c = &args.common;
    let mut scenario = scenario::load(&c.scenario).map_err(|e| RunCommandError::Run(e.into()))?;
    if let Some(m) = c.meter {
        scenario.boot.meter = m.into();
    }
    let o = crate::run::bisect::BisectOptions {
        good: args.good.clone(),
        bad: args.bad.clone(),
        metric: args.metric.clone(),
        repo: c.repo.clone(),
        boots: c.boots,
        gates: c.gates.overrides(),
        run: c.run_options(),
    };
    let out = crate::run::bisect::bisect(&scenario, &o)
        .await
        .map_err(Box::new)?;
    outln!("{}", crate::run::bisect::markdown(&out.result));
    outln!("results: {}", out.dir.display());
    Ok(Outcome::Ok)
}
