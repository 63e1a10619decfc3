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
mod wait;
mod workdir;

use attach::*;
use boots::*;
use ctx::*;
use db::*;
pub use error::RunError;
use options::*;
pub use options::{Attach, RunOptions, RunOutcome, ServeHooks, ServeInfo};
use serve::*;
use spec::*;
use wait::*;
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

use dataset::*;

use std::path::Path;
use std::time::{Duration, Instant};

use crate::dataset::fixture::{FixtureIdentity, FixtureUse, IMPORT_FORMAT, MODEL_VERSION};
use crate::dataset::plan::DatasetPlan;
use crate::result::{DatasetInfo, RunResult, RunStatus, ServerInfo};
use crate::scenario::Scenario;
use crate::scenario::{DatabaseKind, LoadMethod};

/// How long an interrupted run waits for its running workload to save what it measured.
const WORKLOAD_GRACE: Duration = Duration::from_secs(15);

/// Run subdirectory of the profiles (raw profiler output, folded stacks, flamegraphs).
pub use crate::profile::PROFILE_DIR;
use crate::server::postgres::{PG_DATABASE, PG_USER, PgBinaries, PgCluster};
use crate::server::synapse::{DbTarget, InstallStep, SynapseInstall, SynapseInstance};
use crate::server::{self, Instance, ServerError, free_port};

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

async fn stages(
    ctx: &mut Ctx<'_>,
    work: &Path,
    serving: &std::sync::atomic::AtomicBool,
) -> Result<(), RunError> {
    if matches!(ctx.mode, Mode::Attach(_)) {
        return attached(ctx).await;
    }
    let scenario = ctx.scenario;
    let version = ctx
        .opts
        .server_version
        .clone()
        .unwrap_or_else(|| scenario.server.version.clone());

    // 1. Install (cached), or probe the user's binary.
    let server_profile = scenario.server.profile()?;
    let native = match &scenario.server.binary {
        Some(binary) => {
            let (kind, b, p) = (
                scenario.server.kind.as_str().to_string(),
                binary.clone(),
                server_profile.clone(),
            );
            let launch = p.launch.clone().ok_or_else(|| ServerError::Install {
                step: "profile".into(),
                source: format!("profile {:?} has no [launch] section", p.name).into(),
            })?;
            let ni = tokio::task::spawn_blocking(move || {
                server::native::NativeInstall::probe(&kind, &b, &launch)
            })
            .await
            .expect("probe task")?;
            ctx.say(&format!(
                "{}: {} ({})",
                ni.kind,
                ni.binary.display(),
                ni.identity()
            ));
            Some(ni)
        }
        None => None,
    };
    let install = match &native {
        Some(_) => None,
        None => {
            let install = match &scenario.server.source {
                Some(src) => {
                    ctx.say(&format!(
                        "Synapse from {}: checking its virtualenv",
                        src.display()
                    ));
                    let (src, step) = (src.clone(), InstallStep::default());
                    let st = step.clone();
                    let task = tokio::task::spawn_blocking(move || {
                        SynapseInstall::ensure_source_with(&src, &st)
                    });
                    heartbeat(
                        ctx,
                        task,
                        "installing the checkout (the first install builds Synapse's Rust extension: minutes)",
                        &step,
                    )
                    .await?
                }
                None => {
                    ctx.say(&format!("Synapse {version}: checking the install cache"));
                    let (v, step) = (version.clone(), InstallStep::default());
                    let st = step.clone();
                    let task =
                        tokio::task::spawn_blocking(move || SynapseInstall::ensure_with(&v, &st));
                    heartbeat(ctx, task, "installing Synapse from PyPI", &step).await?
                }
            };
            if install.installed_now {
                ctx.say(&format!(
                    "installed Synapse {} in {:.0} s into {}",
                    install.version,
                    install.install_seconds,
                    install.venv.display()
                ));
            }
            Some(install)
        }
    };
    // The database: SQLite in the data directory, a private PostgreSQL cluster, or an existing
    // PostgreSQL database on this machine. A native server keeps its own (embedded) storage.
    let mut pg: Option<PgCluster> = None;
    let mut pg_root: Option<tempfile::TempDir> = None;
    let (db_label, db_target, db_desc) = match (scenario.server.database, &install) {
        (_, None) => (
            "embedded".to_string(),
            DbTarget::Sqlite,
            Some("the server's own storage, as its config template sets it".to_string()),
        ),
        (DatabaseKind::Sqlite, Some(_)) => ("sqlite".to_string(), DbTarget::Sqlite, None),
        (DatabaseKind::Postgres, Some(install)) => {
            let i = install.clone();
            tokio::task::spawn_blocking(move || i.ensure_postgres_driver())
                .await
                .expect("driver task")?;
            match &scenario.server.postgres_url {
                Some(u) => (
                    "postgres-external".to_string(),
                    DbTarget::Postgres {
                        host: u.host.clone(),
                        port: u.port,
                        user: u.user.clone(),
                        password: u.password.clone(),
                        database: u.database.clone(),
                    },
                    Some(format!(
                        "external PostgreSQL {}:{}/{}",
                        u.host, u.port, u.database
                    )),
                ),
                None => {
                    let bins = PgBinaries::find()?;
                    let parent = work_parent(&ctx.opts.fixtures, true);
                    let root = owned_work_dir("hsbench-pg-", &parent)?;
                    let port =
                        free_port().map_err(|e| ServerError::io(Path::new("127.0.0.1:0"), e))?;
                    let desc = format!(
                        "PostgreSQL {} private cluster on 127.0.0.1:{port} ({})",
                        bins.version,
                        bins.bin_dir.display()
                    );
                    let label = format!("postgres-{}", bins.major);
                    pg = Some(PgCluster::new(bins, root.path())?);
                    pg_root = Some(root);
                    (
                        label,
                        DbTarget::Postgres {
                            host: "127.0.0.1".into(),
                            port,
                            user: PG_USER.into(),
                            password: None,
                            database: PG_DATABASE.into(),
                        },
                        Some(desc),
                    )
                }
            }
        }
    };
    let pg_port = match &db_target {
        DbTarget::Postgres { port, .. } => *port,
        DbTarget::Sqlite => 0,
    };
    // An external database is the user's: hsbench never snapshots or restores it.
    let use_fixtures = scenario.server.postgres_url.is_none();
    let plan = DatasetPlan::new(scenario.dataset.clone());
    let server_version = match (&native, &install) {
        (Some(n), _) => n.identity(),
        (None, Some(i)) => i.version.clone(),
        (None, None) => version.clone(),
    };
    // A checkout's fixtures are keyed by its schema, not its commit: a PR that leaves the schema
    // alone reuses the base's fixture.
    let fixture_version = match (&ctx.opts.fixture_version, &native, &install) {
        (Some(v), _, _) => v.clone(),
        (None, None, Some(i)) => i.fixture_version(),
        _ => server_version.clone(),
    };
    let identity = FixtureIdentity {
        model_version: MODEL_VERSION,
        spec: scenario.dataset.clone(),
        server_kind: scenario.server.kind.as_str().into(),
        server_version: fixture_version,
        database: db_label.clone(),
        accounts: native_accounts(&server_profile, scenario),
        import_format: (scenario.dataset.load == LoadMethod::Direct).then_some(IMPORT_FORMAT),
    };
    let key = identity.key();
    let store = ctx.opts.fixtures.clone();
    if ctx.opts.rebuild_fixture {
        let _ = store.remove(Some(&key));
    }
    ctx.result.dataset = Some(DatasetInfo::planned(&plan));
    ctx.save()?;

    let profile = server_profile;
    let run_dir = ctx.run_dir.clone();
    let data_dir = work.join("server-data");
    // An instance over `data_dir`: fresh (config generated, init commands run) or restored.
    let make_instance = |fresh: bool| {
        let (native, install, profile) = (native.clone(), install.clone(), profile.clone());
        let (dd, target) = (data_dir.clone(), db_target.clone());
        let template = scenario.server.config_template.clone();
        async move {
            tokio::task::spawn_blocking(move || match (native, install) {
                (Some(n), _) => server::native::NativeInstance::prepare(
                    &n,
                    &profile,
                    template.as_deref(),
                    &dd,
                    fresh,
                )
                .map(Instance::Native),
                (None, Some(i)) if fresh => {
                    SynapseInstance::generate(&i, &dd, target).map(Instance::Synapse)
                }
                (None, Some(i)) => Ok(Instance::Synapse(SynapseInstance::existing(
                    &i, &dd, target,
                ))),
                (None, None) => unreachable!("either a native binary or a Synapse install"),
            })
            .await
            .expect("instance task")
        }
    };

    // 2. Dataset: restore the fixture, or build it (boot fresh, load through the API, stop,
    //    snapshot).
    let mut cached = if use_fixtures { store.get(&key) } else { None };
    // One builder per fixture: a run that needs a fixture another run is building waits for
    // it and reuses it. A cache that cannot take the fixture fails now, not after the build.
    let build_lock = if use_fixtures && cached.is_none() {
        store.check_writable()?;
        let lock = match store.try_lock(&key)? {
            Some(l) => l,
            None => {
                ctx.say(&format!(
                    "dataset: another run is building fixture {key}; waiting for it"
                ));
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    if let Some(l) = store.try_lock(&key)? {
                        break l;
                    }
                }
            }
        };
        cached = store.get(&key);
        if cached.is_some() {
            ctx.say("dataset: the other run built the fixture; reusing it");
        }
        Some(lock)
    } else {
        None
    };
    let (mut inst, creds) = if let Some(fx) = cached {
        ctx.say(&format!("dataset: fixture {key} from {}", fx.dir.display()));
        let (fx2, store2, dd) = (fx.clone(), store.clone(), data_dir.clone());
        let pgdata = pg.as_ref().map(|c| c.pgdata.clone());
        let (secs, copied) =
            tokio::task::spawn_blocking(move || store2.restore(&fx2, &dd, pgdata.as_deref()))
                .await
                .expect("restore task")?;
        let bytes = copied.bytes;
        if let Some(c) = pg.as_mut() {
            c.fix_ownership()?;
            c.start(pg_port, &run_dir.join("postgres.log")).await?;
        }
        let creds = fx.credentials()?;
        if let Some(d) = ctx.result.dataset.as_mut() {
            d.load = Some(fx.manifest.load.clone());
            d.fixture = Some(FixtureUse {
                key: key.clone(),
                path: fx.dir.display().to_string(),
                reused: true,
                size_bytes: bytes,
                snapshot_seconds: None,
                restore_seconds: Some(secs),
                restore_mib_per_s: Some(bytes as f64 / (1 << 20) as f64 / secs.max(1e-9)),
                restore_method: Some(copied.method().to_string()),
                table_counts: fx.manifest.table_counts.clone(),
            });
        }
        ctx.say(&format!(
            "restored {:.1} MiB in {:.2} s ({})",
            bytes as f64 / (1 << 20) as f64,
            secs,
            copied.method()
        ));
        (make_instance(false).await?, creds)
    } else {
        if let Some(c) = pg.as_mut() {
            c.init()?;
            c.start_for_build(pg_port, &run_dir.join("postgres.log"))
                .await?;
            c.create_synapse_database()?;
        }
        let inst = make_instance(true).await?;
        let creds = build_dataset(
            ctx,
            &inst,
            &plan,
            &profile,
            &identity,
            pg.as_mut(),
            use_fixtures,
        )
        .await?;
        (inst, creds)
    };
    drop(build_lock);
    // The scenario's Synapse config applies to the boots on the finished dataset only.
    if let Instance::Synapse(syn) = &mut inst {
        syn.extra = boot_config(scenario);
    }
    ctx.result.server = Some(ServerInfo {
        kind: scenario.server.kind.as_str().into(),
        version: server_version.clone(),
        database: db_label.clone(),
        database_detail: db_desc,
        install_dir: match (&native, &install) {
            (Some(n), _) => n.binary.display().to_string(),
            (None, Some(i)) => i.venv.display().to_string(),
            (None, None) => String::new(),
        },
        installed_now: install.as_ref().is_some_and(|i| i.installed_now),
        install_seconds: install.as_ref().map_or(0.0, |i| i.install_seconds),
        config_overrides: inst.config_record(0),
        source: install.as_ref().and_then(|i| i.source.clone()),
    });
    save_credentials(&work.join("credentials.json"), &creds)?;
    ctx.save()?;

    let db = DbProcesses::new(pg, scenario.boot.slow_statements);
    let measured = match std::mem::replace(&mut ctx.mode, Mode::Full) {
        _ if ctx.opts.seed_only => finish_files(ctx),
        Mode::Serve(hooks) => serve_stage(ctx, &inst, &creds, &profile, &db, hooks, serving).await,
        _ => measure(ctx, &inst, &creds, &plan, &profile, &db).await,
    };
    if let Some(mut c) = db.cluster.into_inner() {
        c.stop().await;
    }
    drop(pg_root);
    measured
}

#[cfg(test)]
mod tests;
