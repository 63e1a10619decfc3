//! One run of a scenario, end to end: install → dataset → measured boots → workloads → results.
//!
//! The run directory is created first (a bad output path fails before any work) and the result
//! files are rewritten after every stage. On an error or an interrupt the servers are killed
//! (their guards drop with the stage's future) and the result is written with its status.

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

use crash::*;
use dataset::*;
use profiling::*;
use workloads::*;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::boot::summary::summarize_boots;
use crate::boot::{BootRecord, BootSpec, Wrapper, boot};
use crate::dataset::fixture::{
    Fixture, FixtureError, FixtureIdentity, FixtureManifest, FixtureStore, FixtureUse,
    IMPORT_FORMAT, MODEL_VERSION,
};
use crate::dataset::plan::DatasetPlan;
use crate::load::herd::{HerdHistograms, HerdResult, run_herd_at};
use crate::matrix::MatrixClient;
use crate::metrics::{self_usage, write_histogram};
use crate::profile::{
    Attached, AttachedSlicing, BootSlicing, LoadProfile, ProfileResult, ProfiledBoot,
    ProfilerError, Tool, ToolKind, has_symbol_table, process_cpu_s, stripped_note,
};
use crate::report::write_all;
use crate::result::{DatasetInfo, RunResult, RunStatus, ServerInfo};
use crate::scenario::Scenario;
use crate::scenario::{
    CacheMode, DatabaseKind, LoadMethod, ProfilerChoice, Registration, RestoreMode, Workload,
};
use crate::util::exit::Exit;
use crate::util::fs::write_atomic;

/// How long an interrupted run waits for its running workload to save what it measured.
const WORKLOAD_GRACE: Duration = Duration::from_secs(15);

use crate::dataset::seed::{Credentials, Registrar, SeedError, load, verify, wait_for_appservice};
/// Run subdirectory of the profiles (raw profiler output, folded stacks, flamegraphs).
pub use crate::profile::PROFILE_DIR;
use crate::server::postgres::{PG_DATABASE, PG_USER, PgBinaries, PgCluster};
use crate::server::profile::{NativeProfiler, ProfileRegistration};
use crate::server::synapse::{DbTarget, InstallStep, SERVER_NAME, SynapseInstall, SynapseInstance};
use crate::server::{self, Instance, ServerError, ServerProfile, free_port};

/// Why a run failed. [`RunError::exit_code`] maps each kind to the CLI's documented exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Scenario(#[from] crate::scenario::LoadError),
    #[error("cannot write results: {}: {source}", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Seed(#[from] Box<SeedError>),
    #[error("direct import: {0}")]
    Import(#[from] crate::dataset::import::ImportError),
    #[error("workload `{workload}` failed: {source}")]
    Workload {
        workload: String,
        /// The workload's own error (a call, a setup step), or what went wrong as text.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    #[error("interrupted by {}; servers stopped, partial results written", crate::util::interrupt::name(*signal))]
    Interrupted { signal: i32 },
    #[error(transparent)]
    Shard(#[from] crate::load::shard::ShardError),
    #[error(transparent)]
    Profile(#[from] crate::server::profile::ProfileError),
    #[error(transparent)]
    Meter(#[from] crate::meter::MeterError),
    #[error("--attach {url}: {source}")]
    Attach {
        url: String,
        #[source]
        source: crate::util::BoxError,
    },
}

impl RunError {
    /// The documented exit code of this failure (a damaged fixture is [`Exit::NotWritable`],
    /// a missing one bad input).
    pub fn exit_code(&self) -> Exit {
        match self {
            RunError::Scenario(_) => Exit::BadInput,
            RunError::Server(_) => Exit::ServerFailed,
            RunError::Seed(_) | RunError::Import(_) | RunError::Workload { .. } => Exit::LoadFailed,
            RunError::Fixture(FixtureError::NotFound(_)) => Exit::BadInput,
            RunError::Output { .. } | RunError::Fixture(_) => Exit::NotWritable,
            RunError::Interrupted { signal } => Exit::Signal(*signal),
            RunError::Shard(_) | RunError::Attach { .. } | RunError::Profile(_) => Exit::BadInput,
            RunError::Meter(
                crate::meter::MeterError::Missing { .. } | crate::meter::MeterError::Build { .. },
            ) => Exit::BadInput,
            RunError::Meter(_) => Exit::ServerFailed,
        }
    }
}

/// How to run (from the CLI or a test), beside the scenario itself.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Parent of run directories (`results/` by default).
    pub results_dir: PathBuf,
    /// Overrides `[server] version`.
    pub server_version: Option<String>,
    /// No progress bars, no stage lines, no summary on stderr.
    pub quiet: bool,
    /// Concurrent requests while loading the dataset.
    pub load_concurrency: usize,
    /// The fixture cache.
    pub fixtures: FixtureStore,
    /// Build the dataset again even when its fixture is cached.
    pub rebuild_fixture: bool,
    /// Check a sample of the dataset through the server's API before the workloads.
    pub verify: bool,
    /// Stop once the dataset fixture exists (`hsbench seed`).
    pub seed_only: bool,
    /// Name of the run directory (default: `<UTC time>-<scenario name>`).
    pub run_id: Option<String>,
    /// Prefix of the stage lines (`base`, `head`: two runs of `hsbench ab` share stderr).
    pub label: Option<String>,
    /// Key the dataset fixture by this server version instead of the run's own: the head of
    /// `hsbench ab` boots on the base's fixture (and applies its own schema deltas at boot, as
    /// an upgrade would).
    pub fixture_version: Option<String>,
    /// Measure in turns with other runs of this process (`hsbench ab`): each timed or profiled
    /// boot is one turn, the rest of the run (workloads, files) one more.
    pub turns: Option<turns::Turns>,
    /// Time boots only: no workloads, no crash-restart cycles (`hsbench bisect` of a boot metric).
    pub boots_only: bool,
    /// A sweep removes each point's fixture after the point when this run built it (for
    /// sweeps whose fixtures do not fit on the disk together).
    pub discard_fixtures: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            results_dir: PathBuf::from("results"),
            server_version: None,
            quiet: false,
            load_concurrency: 8,
            fixtures: FixtureStore::default(),
            rebuild_fixture: false,
            verify: false,
            seed_only: false,
            run_id: None,
            label: None,
            fixture_version: None,
            turns: None,
            boots_only: false,
            discard_fixtures: false,
        }
    }
}

/// What a finished run hands back.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_dir: PathBuf,
    pub result: RunResult,
}

/// `hsbench serve`: boot the scenario's server over its dataset and keep it up for others to
/// load (shards with `--attach`), until `stop` turns true or the server dies. A stop before the
/// server serves (while installing or building the dataset) interrupts the run.
pub struct ServeHooks {
    /// Where the dataset users' credentials (access tokens) are written, mode 0600.
    pub credentials_out: PathBuf,
    /// Told once the server answers an authenticated /sync.
    pub ready: Option<tokio::sync::oneshot::Sender<ServeInfo>>,
    pub stop: tokio::sync::watch::Receiver<bool>,
}

/// Resolves once `rx` holds true (never, if its sender is gone first).
async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What a served server offers (also `serve.json` in its run directory; no tokens in it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ServeInfo {
    pub base_url: String,
    pub credentials: PathBuf,
    pub server_pid: i32,
    pub run_dir: PathBuf,
}

/// `hsbench run --attach`: the workloads only, against a server already running on loopback
/// (e.g. `hsbench serve`), for one shard of the clients.
#[derive(Debug, Clone)]
pub struct Attach {
    pub base_url: String,
    pub credentials: Credentials,
    pub shard: crate::load::shard::Shard,
    /// Release the herd at this wall-clock time, so the shards fire together.
    pub release_at: Option<std::time::SystemTime>,
}

impl Attach {
    /// From the command line: `target` is a `serve.json` (or its directory) or a URL; the
    /// credentials file defaults to the one serve.json names; the shard comes from `shard`,
    /// else the environment ([`crate::load::shard::Shard::from_env`]); the release time from
    /// `release_at`, else `HSBENCH_RELEASE_AT`.
    pub fn resolve(
        target: &str,
        credentials: Option<&Path>,
        shard: Option<&str>,
        release_at: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, RunError> {
        let bad = |message: String| RunError::Attach {
            url: target.to_string(),
            source: message.into(),
        };
        let (base_url, serve_creds) =
            if target.starts_with("http://") || target.starts_with("https://") {
                (target.to_string(), None)
            } else {
                let mut p = PathBuf::from(target);
                if p.is_dir() {
                    p = p.join("serve.json");
                }
                let info: ServeInfo = std::fs::read(&p)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
                    .map_err(|e| {
                        bad(format!(
                            "not a URL, and {} is not a serve.json: {e}",
                            p.display()
                        ))
                    })?;
                (info.base_url, Some(info.credentials))
            };
        let shard = match shard {
            Some(s) => crate::load::shard::Shard::parse(s, "--shard")?,
            None => crate::load::shard::Shard::from_env(&env)?
                .unwrap_or(crate::load::shard::Shard::WHOLE),
        };
        let release_at = match release_at
            .map(str::to_string)
            .or_else(|| env("HSBENCH_RELEASE_AT"))
        {
            None => None,
            Some(t) => Some(crate::util::time::parse_release_at(&t).map_err(bad)?),
        };
        let path = credentials
            .map(Path::to_path_buf)
            .or(serve_creds)
            .ok_or_else(|| bad("give --credentials FILE (the one `hsbench serve` wrote)".into()))?;
        let credentials = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| bad(format!("credentials {}: {e}", path.display())))?;
        Ok(Self {
            base_url,
            credentials,
            shard,
            release_at,
        })
    }
}

enum Mode {
    Full,
    Serve(ServeHooks),
    Attach(Attach),
}

struct Ctx<'a> {
    scenario: &'a Scenario,
    opts: &'a RunOptions,
    run_dir: PathBuf,
    result: RunResult,
    started: Instant,
    mode: Mode,
    /// True while a workload runs: on a signal it ends itself and keeps what it measured, so
    /// the run waits for it (briefly) instead of dropping it.
    in_workload: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The dataset load's finished steps, kept for the result when a signal cuts the load.
    load_steps: crate::dataset::seed::StepLog,
}

impl Ctx<'_> {
    fn say(&self, msg: &str) {
        if !self.opts.quiet {
            match &self.opts.label {
                Some(l) => eprintln!("==> [{l}] {msg}"),
                None => eprintln!("==> {msg}"),
            }
        }
    }

    /// This run's next turn among the runs it is interleaved with (`None`: it runs alone).
    async fn turn(&self) -> Option<turns::TurnGuard> {
        match &self.opts.turns {
            Some(t) => Some(t.take().await),
            None => None,
        }
    }

    /// Rewrite the result files (partial results survive a crash).
    fn save(&mut self) -> Result<(), RunError> {
        self.result.duration_s = self.started.elapsed().as_secs_f64();
        self.result.harness.self_usage = self_usage();
        write_all(&self.run_dir, &self.result)
            .map_err(|(path, source)| RunError::Output { path, source })
    }
}

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

/// A private database's part in the measurements: its files are evicted for cold boots (and
/// the cluster restarted, so that its own buffers are empty too) and its processes are sampled
/// with the server's.
struct DbProcesses {
    cache_roots: Vec<PathBuf>,
    threshold: Option<Duration>,
    /// The private cluster, while it runs.
    cluster: tokio::sync::Mutex<Option<PgCluster>>,
    /// Its process groups and statement log, as of its last start.
    now: std::sync::Mutex<DbNow>,
}

#[derive(Clone)]
struct DbNow {
    pgids: Vec<i32>,
    /// The private cluster's statement log (`[boot] slow_statements`), read for each timed
    /// boot.
    statements: Option<crate::server::postgres::StatementLog>,
}

impl DbProcesses {
    fn new(pg: Option<PgCluster>, threshold: Option<Duration>) -> Self {
        let now = DbNow::of(pg.as_ref(), threshold);
        Self {
            cache_roots: pg.iter().map(|c| c.pgdata.clone()).collect(),
            threshold,
            cluster: tokio::sync::Mutex::new(pg),
            now: std::sync::Mutex::new(now),
        }
    }

    fn pgids(&self) -> Vec<i32> {
        self.now.lock().expect("db state").pgids.clone()
    }

    fn statements(&self) -> Option<crate::server::postgres::StatementLog> {
        self.now.lock().expect("db state").statements.clone()
    }

    /// Before a cold boot: restart the private cluster (its shared buffers hold what the last
    /// boot read; a fresh postmaster starts with them empty). `false`: there is none.
    async fn restart(&self) -> Result<bool, RunError> {
        self.restart_with(&[]).await
    }

    /// Restart the private cluster with `settings` (none: the defaults); `false`: there is
    /// none, or it never started (no log yet).
    async fn restart_with(&self, settings: &[&str]) -> Result<bool, RunError> {
        let mut guard = self.cluster.lock().await;
        let Some(c) = guard.as_mut() else {
            return Ok(false);
        };
        if !c.restart_with(settings).await? {
            return Ok(false);
        }
        *self.now.lock().expect("db state") = DbNow::of(Some(c), self.threshold);
        Ok(true)
    }

    /// The private cluster restarted to count its statements (`pg_stat_statements`), for the
    /// boots under the work meter; `None`: there is no private cluster.
    async fn count_statements(
        &self,
    ) -> Result<Option<crate::server::postgres::StatCounter>, RunError> {
        use crate::server::postgres::STAT_STATEMENTS_SETTINGS;
        if !self.restart_with(STAT_STATEMENTS_SETTINGS).await? {
            return Ok(None);
        }
        let guard = self.cluster.lock().await;
        Ok(guard.as_ref().map(|c| c.stat_counter()).transpose()?)
    }
}

impl DbNow {
    fn of(pg: Option<&PgCluster>, threshold: Option<Duration>) -> Self {
        Self {
            pgids: pg.iter().filter_map(|c| c.pid()).collect(),
            statements: pg.and_then(|c| threshold.and_then(|t| c.statement_log(t))),
        }
    }
}

/// Switch the private cluster's statement log on or off (psql calls, off the runtime's
/// threads); on: where the boot's lines start in the log.
async fn switch_statement_log(
    log: &crate::server::postgres::StatementLog,
    on: bool,
) -> Result<u64, RunError> {
    let log = log.clone();
    Ok(tokio::task::spawn_blocking(move || log.switch(on))
        .await
        .expect("statement log task")?)
}

/// Timed boots, then verification and workloads, over a ready dataset.
async fn measure(
    ctx: &mut Ctx<'_>,
    inst: &Instance,
    creds: &Credentials,
    plan: &DatasetPlan,
    profile: &ServerProfile,
    db: &DbProcesses,
) -> Result<(), RunError> {
    let scenario = ctx.scenario;
    let run_dir = ctx.run_dir.clone();
    let shutdown = scenario.boot.shutdown_timeout;

    // 3. Measured boots: warm-up boots first, then the timed ones (cold, warm, or each
    //    repeat cold then warm).
    let probe_token = creds.tokens[0].clone();
    let mut sequence: Vec<(String, bool, bool)> = (1..=scenario.boot.warmup)
        .map(|w| (format!("warmup-{w}"), false, true))
        .collect();
    for i in (1..=scenario.boot.repeats).filter(|_| scenario.boot.meter.time()) {
        match scenario.boot.cache {
            CacheMode::Warm => sequence.push((format!("boot-{i}"), false, false)),
            CacheMode::Cold => sequence.push((format!("cold-{i}"), true, false)),
            CacheMode::Both => {
                sequence.push((format!("cold-{i}"), true, false));
                sequence.push((format!("boot-{i}"), false, false));
            }
        }
    }
    let total = sequence.len();
    let per_boot = per_boot_fixture(ctx)?;
    for (n, (label, cold, warmup)) in sequence.into_iter().enumerate() {
        let turn = ctx.turn().await;
        ctx.say(&format!("{label} ({}/{total})", n + 1));
        let restore_seconds = restore_before_boot(ctx, inst, per_boot.as_ref()).await?;
        let eviction = if cold {
            let restarted = db.restart().await?;
            let mut roots = inst.cache_roots();
            roots.extend_from_slice(&db.cache_roots);
            let mut ev = tokio::task::spawn_blocking(move || crate::boot::cache::evict(&roots))
                .await
                .expect("eviction task");
            if restarted {
                ev.method
                    .push_str("; the private PostgreSQL cluster restarted (shared buffers empty)");
            }
            Some(ev)
        } else {
            None
        };
        let mut spec = boot_spec(
            inst,
            profile,
            &run_dir,
            &label,
            Some(probe_token.clone()),
            scenario,
            &db.pgids(),
        )?;
        spec.background = scenario.boot.background;
        let statements = db.statements();
        let log_from = match &statements {
            Some(l) => Some(switch_statement_log(l, true).await?),
            None => None,
        };
        let server = boot(spec).await;
        if let Some(l) = &statements {
            switch_statement_log(l, false).await?;
        }
        let server = server?;
        let (mut rec, samples) = server.stop_with_samples(shutdown, &run_dir).await;
        if let (Some(l), Some(from)) = (&statements, log_from) {
            let (start, ready) = (rec.spawn_unix_ms, rec.spawn_unix_ms + rec.time_to_ready_ms);
            let (statements, hits) =
                l.read_matching(from, start, ready, &profile.statement_subphases);
            rec.db_statements = Some(statements);
            rec.subphases
                .extend(crate::boot::statement_subphases(profile, &hits));
        }
        rec.cold = cold;
        rec.warmup = warmup;
        rec.eviction = eviction;
        rec.restore_seconds = restore_seconds;
        let note = if cold { " (cold cache)" } else { "" };
        write_waterfall(ctx, inst, &rec, &samples, note)?;
        report_boot(ctx, &rec);
        ctx.result.boots.push(rec);
        let pick = |cold: bool| -> Vec<BootRecord> {
            ctx.result
                .boots
                .iter()
                .filter(|b| !b.warmup && b.cold == cold)
                .cloned()
                .collect()
        };
        let (warm, cold_boots) = (pick(false), pick(true));
        ctx.result.boot_summary = (!warm.is_empty()).then(|| summarize_boots(&warm));
        ctx.result.cold_boot_summary =
            (!cold_boots.is_empty()).then(|| summarize_boots(&cold_boots));
        ctx.save()?;
        drop(turn);
    }

    // 3a. Boots under the work meter: instructions per phase.
    if scenario.boot.meter.work() {
        work::metered_boots(ctx, inst, profile, db).await?;
    }

    // 3b. Profiled boots: extra boots under the profiler, compared with the timed ones.
    let tool = resolve_profiler(ctx, inst).await;
    if let Some(tool) = &tool
        && scenario.profile.boot
    {
        for i in 1..=scenario.profile.boot_runs {
            let _turn = ctx.turn().await;
            restore_before_boot(ctx, inst, per_boot.as_ref()).await?;
            profiled_boot(ctx, inst, profile, db, tool, &probe_token, i).await?;
        }
    }

    // 4. Verification and workloads, on a boot of their own (one turn: everything left).
    let _rest = ctx.turn().await;
    if ctx.opts.boots_only {
        return finish_files(ctx);
    }
    if scenario.workloads.is_empty() && !ctx.opts.verify {
        if scenario.boot.crash_restarts > 0 {
            restore_before_boot(ctx, inst, per_boot.as_ref()).await?;
        }
        crash_restarts(ctx, inst, creds, plan, profile, db, &probe_token).await?;
        return finish_files(ctx);
    }
    restore_before_boot(ctx, inst, per_boot.as_ref()).await?;
    let spec = boot_spec(
        inst,
        profile,
        &run_dir,
        "workload",
        Some(probe_token.clone()),
        scenario,
        &db.pgids(),
    )?;
    let mut server = boot(spec).await?;
    // The server is stopped exactly once, whatever the workloads did.
    let load_profiler = tool
        .as_ref()
        .filter(|_| scenario.profile.load)
        .map(|t| (t, server.server_pid()));
    // The server's process group and its database's (a private PostgreSQL cluster).
    let groups: Vec<i32> = std::iter::once(server.pid()).chain(db.pgids()).collect();
    let outcome = workloads(ctx, &server.base_url(), plan, creds, load_profiler, &groups).await;
    let alive = server.check_alive();
    ctx.result.workload_boot = Some(server.stop(shutdown, &run_dir).await);
    alive?;
    outcome?;
    ctx.save()?;
    // 5. Crash-restart cycles last: their writes change the dataset the workloads measured.
    crash_restarts(ctx, inst, creds, plan, profile, db, &probe_token).await?;
    finish_files(ctx)
}

/// The fixture every boot restores from with `[boot] restore = "each"` (`None`: restored once).
/// Synapse's config keys for the boots on the finished dataset: `[dataset] presence = "stays"`
/// (presence untracked), then the scenario's own `[server.synapse_config]`, which wins.
fn boot_config(scenario: &Scenario) -> Option<serde_json::Value> {
    let mut o = serde_json::Map::new();
    if scenario.dataset.presence == crate::scenario::PresenceMode::Stays {
        o.insert(
            "presence".into(),
            serde_json::json!({"enabled": "untracked"}),
        );
    }
    if let Some(serde_json::Value::Object(extra)) = &scenario.server.synapse_config {
        o.extend(extra.clone());
    }
    (!o.is_empty()).then_some(serde_json::Value::Object(o))
}

fn per_boot_fixture(ctx: &Ctx<'_>) -> Result<Option<Fixture>, RunError> {
    if ctx.scenario.boot.restore == RestoreMode::Once {
        return Ok(None);
    }
    let key = ctx
        .result
        .dataset
        .as_ref()
        .and_then(|d| d.fixture.as_ref())
        .map(|f| f.key.clone());
    key.as_deref()
        .and_then(|k| ctx.opts.fixtures.get(k))
        .map(Some)
        .ok_or_else(|| {
            workload_error("boot.restore")(
                "[boot] restore = \"each\" needs the dataset's fixture, and this run has none \
                 (the fixture cache could not keep it)",
            )
        })
}

/// `[boot] restore = "each"`: wipe the data directory and restore it from the fixture, so that
/// the next boot starts from the fixture's data, not from what the boot before it left (a
/// start-up that rewrites state, e.g. a presence reset, would otherwise be measured once and
/// skipped by every later boot). What the last boot wrote (new SSTs, WAL files, SQLite's -wal)
/// goes too. Returns the seconds it took.
async fn restore_before_boot(
    ctx: &Ctx<'_>,
    inst: &Instance,
    fixture: Option<&Fixture>,
) -> Result<Option<f64>, RunError> {
    let Some(fx) = fixture else {
        return Ok(None);
    };
    let (store, fx, dd) = (
        ctx.opts.fixtures.clone(),
        fx.clone(),
        inst.data_dir().to_path_buf(),
    );
    let secs = tokio::task::spawn_blocking(move || {
        if dd.exists() {
            std::fs::remove_dir_all(&dd).map_err(|source| FixtureError::Io {
                path: dd.clone(),
                source,
            })?;
        }
        store.restore(&fx, &dd, None).map(|(secs, _)| secs)
    })
    .await
    .expect("restore task")?;
    Ok(Some(secs))
}

/// Where a run's working copies go: next to the fixtures (`<fixtures>/.work`) when that
/// filesystem shares extents, so that restoring a fixture is a reflink whatever its size;
/// otherwise the system's temporary directory. A PostgreSQL cluster also needs a path its
/// `postgres` user can reach (every ancestor searchable by others).
/// A fresh directory under `parent` for this run's data, private to its user (0700; a private
/// cluster's is handed to the cluster's user after) and stamped with this process as its owner,
/// so that a later run can remove it should this one be killed.
fn owned_work_dir(prefix: &str, parent: &Path) -> Result<tempfile::TempDir, RunError> {
    use std::os::unix::fs::PermissionsExt;
    let out = |source| RunError::Output {
        path: parent.to_path_buf(),
        source,
    };
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(parent)
        .map_err(out)?;
    crate::util::owner::Owner::current()
        .stamp(dir.path())
        .map_err(|source| RunError::Output {
            path: dir.path().join(crate::util::owner::STAMP),
            source,
        })?;
    Ok(dir)
}

/// Where runs make their work directories: beside the fixtures (when reflinks work there) and
/// the system's temporary directory.
pub fn work_parents(store: &FixtureStore) -> Vec<PathBuf> {
    vec![store.root.join(".work"), std::env::temp_dir()]
}

/// Remove the work directories of runs whose process is gone, saying what went.
fn clean_stale_work(ctx: &Ctx<'_>, work_parent: &Path) {
    let mut parents = work_parents(&ctx.opts.fixtures);
    parents.push(work_parent.to_path_buf());
    let stale = crate::util::owner::stale_dirs(&parents);
    let (removed, failed) = crate::util::owner::remove_stale(&stale);
    for s in removed {
        ctx.say(&format!(
            "removed {} ({}), left by {}",
            s.path.display(),
            crate::util::fmt::fmt_bytes(s.bytes as f64),
            s.owner.as_ref().map_or_else(
                || "an older hsbench".to_string(),
                |o| format!("a killed run (process {})", o.pid)
            )
        ));
    }
    for (s, e) in failed {
        ctx.say(&format!(
            "cannot remove {} (left by a killed run): {e}",
            s.path.display()
        ));
    }
}

fn work_parent(store: &FixtureStore, for_postgres: bool) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let tmp = std::env::temp_dir();
    // The probe leaves nothing behind; `.work` is made only where it will be used.
    if std::fs::create_dir_all(&store.root).is_err()
        || !crate::dataset::fixture::reflinks_within(&store.root)
    {
        return tmp;
    }
    let dir = store.root.join(".work");
    if std::fs::create_dir_all(&dir).is_err() {
        return tmp;
    }
    let reachable = dir
        .ancestors()
        .skip(1)
        .all(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    if for_postgres && !reachable {
        return tmp;
    }
    dir
}

/// `serve`: one boot over the dataset, kept up until stopped; the credentials are written for
/// the shards that attach.
async fn serve_stage(
    ctx: &mut Ctx<'_>,
    inst: &Instance,
    creds: &Credentials,
    profile: &ServerProfile,
    db: &DbProcesses,
    hooks: ServeHooks,
    serving: &std::sync::atomic::AtomicBool,
) -> Result<(), RunError> {
    let run_dir = ctx.run_dir.clone();
    let shutdown = ctx.scenario.boot.shutdown_timeout;
    let spec = boot_spec(
        inst,
        profile,
        &run_dir,
        "serve",
        Some(creds.tokens[0].clone()),
        ctx.scenario,
        &db.pgids(),
    )?;
    let mut server = boot(spec).await?;
    if let Err(e) = save_credentials(&hooks.credentials_out, creds) {
        let _ = server.stop(shutdown, &run_dir).await;
        return Err(e);
    }
    let info = ServeInfo {
        base_url: server.base_url(),
        credentials: hooks.credentials_out.clone(),
        server_pid: server.server_pid(),
        run_dir: run_dir.clone(),
    };
    let info_path = run_dir.join("serve.json");
    write_atomic(
        &info_path,
        &serde_json::to_vec_pretty(&info).expect("serializable"),
    )
    .map_err(output_error(info_path.clone()))?;
    ctx.result.files.push("serve.json".into());
    // And beside the credentials, where shards find both (`run --attach <that serve.json>`).
    let beside = hooks
        .credentials_out
        .parent()
        .unwrap_or(Path::new("."))
        .join("serve.json");
    if beside != info_path {
        write_atomic(
            &beside,
            &serde_json::to_vec_pretty(&info).expect("serializable"),
        )
        .map_err(output_error(beside))?;
    }
    ctx.save()?;
    ctx.say(&format!(
        "serving {} at {} (pid {}); credentials in {}; Ctrl+C or SIGTERM stops it",
        ctx.scenario.name,
        info.base_url,
        info.server_pid,
        info.credentials.display()
    ));
    serving.store(true, std::sync::atomic::Ordering::SeqCst);
    if let Some(tx) = hooks.ready {
        let _ = tx.send(info);
    }
    let stop = stopped(hooks.stop);
    tokio::pin!(stop);
    let alive = loop {
        tokio::select! {
            _ = &mut stop => break Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if let Err(e) = server.check_alive() {
                    break Err(e);
                }
            }
        }
    };
    ctx.result.workload_boot = Some(server.stop(shutdown, &run_dir).await);
    alive?;
    ctx.save()?;
    finish_files(ctx)
}

/// Create `path` (and its parent directories) readable by its owner only, with `bytes`.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// `--attach`: the workloads of this shard against a running server.
async fn attached(ctx: &mut Ctx<'_>) -> Result<(), RunError> {
    let Mode::Attach(a) = &ctx.mode else {
        unreachable!("attached() runs in attach mode")
    };
    let (url, shard, release_at) = (a.base_url.clone(), a.shard, a.release_at);
    let all_users = a.credentials.tokens.len();
    let creds = Credentials {
        user_ids: shard.slice(&a.credentials.user_ids),
        tokens: shard.slice(&a.credentials.tokens),
        room_ids: a.credentials.room_ids.clone(),
    };
    let scenario = ctx.scenario;
    let plan = DatasetPlan::new(scenario.dataset.clone());
    // Synapse answers its version without authentication; another server may not.
    let version = async {
        let body: serde_json::Value = reqwest::Client::new()
            .get(format!("{url}/_synapse/admin/v1/server_version"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body.get("server_version")?.as_str().map(str::to_string)
    }
    .await;
    ctx.result.server = Some(ServerInfo {
        kind: if version.is_some() {
            "synapse (attached)".into()
        } else {
            "attached server".into()
        },
        version: version.unwrap_or_else(|| "unknown".into()),
        database: "not known".into(),
        database_detail: Some(format!("a running server at {url}")),
        install_dir: String::new(),
        installed_now: false,
        install_seconds: 0.0,
        config_overrides: serde_json::Value::Null,
        source: None,
    });
    ctx.result.dataset = Some(DatasetInfo::planned(&plan));
    ctx.result.shard = Some(crate::result::ShardInfo {
        index: shard.index,
        count: shard.count,
        attached_to: url.clone(),
        clients: creds.tokens.len() as u64,
        release_at: release_at.map(|t| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        }),
    });
    ctx.save()?;
    ctx.say(&format!(
        "attached to {url}: shard {shard}, {} of {} users",
        creds.tokens.len(),
        all_users
    ));
    workloads(ctx, &url, &plan, &creds, None, &[]).await?;
    ctx.save()?;
    finish_files(ctx)
}

/// How a native server's dataset users get accounts, when it is not every user with a password:
/// with the profile's application service, only the users the plan puts online have one.
fn native_accounts(profile: &ServerProfile, scenario: &Scenario) -> Option<String> {
    let launch = profile.launch.as_ref()?;
    (!launch.appservice.is_empty()
        && scenario.dataset.registration == Registration::Appservice
        && scenario.dataset.load == LoadMethod::Api)
        .then(|| "passwords: online users; others: application service".to_string())
}

/// Wait for a long blocking step (an install), showing what it does: on a terminal a spinner
/// with the step and the elapsed time; otherwise a line every 30 s, so that a first install that
/// takes minutes is never silent.
async fn heartbeat<T>(
    ctx: &Ctx<'_>,
    task: tokio::task::JoinHandle<T>,
    what: &str,
    step: &InstallStep,
) -> T {
    let say = |m: &str| ctx.say(m);
    wait_showing_steps(ctx.opts.quiet, &say, task, what, step).await
}

/// [`heartbeat`] without a run: `say` prints a stage line.
pub(crate) async fn wait_showing_steps<T>(
    quiet: bool,
    say: &dyn Fn(&str),
    mut task: tokio::task::JoinHandle<T>,
    what: &str,
    step: &InstallStep,
) -> T {
    use std::io::IsTerminal;
    let started = Instant::now();
    let spinner = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .expect("spinner template"),
        );
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    });
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last_line = Instant::now();
    loop {
        tokio::select! {
            r = &mut task => {
                if let Some(pb) = &spinner {
                    pb.finish_and_clear();
                }
                return r.expect("blocking task");
            }
            _ = tick.tick() => {
                let now = step.get();
                let msg = if now.is_empty() { what.to_string() } else { format!("{what}: {now}") };
                match &spinner {
                    Some(pb) => pb.set_message(msg),
                    None if last_line.elapsed() >= Duration::from_secs(30) => {
                        last_line = Instant::now();
                        say(&format!("still {msg}: {:.0} s", started.elapsed().as_secs_f64()));
                    }
                    None => {}
                }
            }
        }
    }
}

fn boot_spec<'p>(
    inst: &Instance,
    profile: &'p ServerProfile,
    run_dir: &Path,
    label: &str,
    token: Option<String>,
    scenario: &Scenario,
    extra_pgids: &[i32],
) -> Result<BootSpec<'p>, RunError> {
    let port = free_port().map_err(|e| ServerError::io(Path::new("127.0.0.1:0"), e))?;
    inst.write_config(port)?;
    Ok(BootSpec {
        label: label.to_string(),
        profile,
        command: inst.command(port),
        port,
        sync_token: token,
        timeout: scenario.boot.timeout,
        log_path: run_dir.join(format!("{label}.log")),
        extra_pgids: extra_pgids.to_vec(),
        wrapper: None,
        background: None,
        on_marker: None,
    })
}

fn finish_files(ctx: &mut Ctx<'_>) -> Result<(), RunError> {
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

/// `<label>-waterfall.svg` of one boot in the run directory, listed in the result's files.
fn write_waterfall(
    ctx: &mut Ctx<'_>,
    inst: &Instance,
    rec: &BootRecord,
    samples: &[crate::metrics::ResourceSample],
    note: &str,
) -> Result<(), RunError> {
    let name = format!("{}-waterfall.svg", rec.label);
    let title = format!(
        "{} · {} · {}{note}",
        ctx.scenario.name,
        inst.title(),
        rec.label
    );
    let path = ctx.run_dir.join(&name);
    write_atomic(
        &path,
        crate::report::svg::waterfall(rec, samples, &title).as_bytes(),
    )
    .map_err(output_error(path))?;
    ctx.result.files.push(name);
    Ok(())
}

fn report_boot(ctx: &Ctx<'_>, rec: &BootRecord) {
    let phases: Vec<String> = rec
        .phases
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p.name,
                p.duration_ms
                    .map_or("missing".into(), crate::util::fmt::fmt_ms)
            )
        })
        .collect();
    let background = match &rec.background {
        Some(b) => match b.at_ms {
            Some(at) => format!(
                "; background work done at {} ({})",
                crate::util::fmt::fmt_ms(at),
                b.source
            ),
            None => format!(
                "; background work not done within {}",
                crate::util::fmt::fmt_ms(b.limit_ms)
            ),
        },
        None => String::new(),
    };
    ctx.say(&format!(
        "  ready in {} ({}){background}; shutdown {}",
        crate::util::fmt::fmt_ms(rec.time_to_ready_ms),
        phases.join(", "),
        rec.shutdown_ms
            .map_or("HUNG (killed)".into(), crate::util::fmt::fmt_ms)
    ));
}

/// Tokens go to `path` readable by its owner only: the run's private working directory, or
/// where `serve` was told to put them; never into results.
fn save_credentials(path: &Path, creds: &Credentials) -> Result<(), RunError> {
    write_private(
        path,
        &serde_json::to_vec(creds).expect("credentials serialize"),
    )
    .map_err(|source| RunError::Output {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_resolves_a_serve_json_its_directory_or_a_url() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials.json");
        let c = Credentials {
            user_ids: Vec::new(),
            tokens: vec!["t0".into(), "t1".into()],
            room_ids: Vec::new(),
        };
        std::fs::write(&creds, serde_json::to_vec(&c).unwrap()).unwrap();
        let info = ServeInfo {
            base_url: "http://127.0.0.1:8008".into(),
            credentials: creds.clone(),
            server_pid: 1,
            run_dir: dir.path().into(),
        };
        std::fs::write(
            dir.path().join("serve.json"),
            serde_json::to_vec(&info).unwrap(),
        )
        .unwrap();
        let no_env = |_: &str| None;
        let target = dir.path().to_str().unwrap();
        let a = Attach::resolve(target, None, Some("1/2"), Some("1795473000"), no_env).unwrap();
        assert_eq!(a.base_url, "http://127.0.0.1:8008");
        assert_eq!(a.credentials.tokens, c.tokens);
        assert_eq!(a.shard, crate::load::shard::Shard { index: 1, count: 2 });
        assert_eq!(
            a.release_at,
            Some(std::time::UNIX_EPOCH + Duration::from_secs(1_795_473_000))
        );
        // The environment of an Indexed Job, and an RFC 3339 release time.
        let env = |k: &str| match k {
            "JOB_COMPLETION_INDEX" => Some("2".to_string()),
            "HSBENCH_SHARDS" => Some("3".to_string()),
            "HSBENCH_RELEASE_AT" => Some("2026-11-23T22:30:00Z".to_string()),
            _ => None,
        };
        let serve_json = dir.path().join("serve.json");
        let a = Attach::resolve(serve_json.to_str().unwrap(), None, None, None, env).unwrap();
        assert_eq!((a.shard.index, a.shard.count), (2, 3));
        assert!(a.release_at.is_some());
        // A URL needs --credentials; a path that is no serve.json is named.
        let e = Attach::resolve("http://127.0.0.1:1", None, None, None, no_env).unwrap_err();
        assert!(e.to_string().contains("--credentials"), "{e}");
        let a = Attach::resolve("http://127.0.0.1:1", Some(&creds), None, None, no_env).unwrap();
        assert_eq!(a.shard, crate::load::shard::Shard::WHOLE);
        let e = Attach::resolve("/nonexistent/x", None, None, None, no_env).unwrap_err();
        assert!(e.to_string().contains("is not a serve.json"), "{e}");
        assert_eq!(e.exit_code(), Exit::BadInput);
        let e = Attach::resolve(target, None, None, Some("soon"), no_env).unwrap_err();
        assert!(e.to_string().contains("--release-at \"soon\""), "{e}");
    }
}
