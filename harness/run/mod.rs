//! One run of a scenario, end to end: install → dataset → measured boots → workloads → results.
//!
//! The run directory is created first (a bad output path fails before any work) and the result
//! files are rewritten after every stage. On an error or an interrupt the servers are killed
//! (their guards drop with the stage's future) and the result is written with its status.

pub mod baseline;
pub mod sweep;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::boot::summary::summarize_boots;
use crate::boot::{BootRecord, BootSpec, Wrapper, boot};
use crate::dataset::fixture::{
    FixtureError, FixtureIdentity, FixtureManifest, FixtureStore, FixtureUse, MODEL_VERSION,
};
use crate::dataset::plan::DatasetPlan;
use crate::load::herd::{HerdHistograms, HerdResult, run_herd_at};
use crate::matrix::MatrixClient;
use crate::metrics::{self_usage, write_histogram};
use crate::profile::{
    Attached, AttachedSlicing, BootSlicing, LoadProfile, ProfileResult, ProfiledBoot,
    ProfilerError, Tool, ToolKind, process_cpu_s,
};
use crate::report::write_all;
use crate::result::{DatasetInfo, RunResult, RunStatus, ServerInfo};
use crate::scenario::Scenario;
use crate::scenario::{
    CacheMode, DatabaseKind, LoadMethod, ProfilerChoice, Registration, Workload,
};
use crate::util::fs::write_atomic;

/// How long an interrupted run waits for its running workload to save what it measured.
const WORKLOAD_GRACE: Duration = Duration::from_secs(15);

/// Run subdirectory of the profiles (raw profiler output, folded stacks, flamegraphs).
pub const PROFILE_DIR: &str = "profile";
use crate::dataset::seed::{Credentials, Registrar, SeedError, load, verify};
use crate::server::postgres::{PG_DATABASE, PG_USER, PgBinaries, PgCluster};
use crate::server::profile::{NativeProfiler, ProfileRegistration};
use crate::server::synapse::{DbTarget, SERVER_NAME, SynapseInstall, SynapseInstance};
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
    #[error("--attach {url}: {message}")]
    Attach { url: String, message: String },
}

impl RunError {
    /// 2 bad input, 3 server failed (install, crash, hang), 4 load or workload failed,
    /// 5 output not writable, 128 + the signal when interrupted (130 SIGINT, 143 SIGTERM,
    /// 129 SIGHUP).
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Scenario(_) => 2,
            RunError::Server(_) => 3,
            RunError::Seed(_) | RunError::Import(_) | RunError::Workload { .. } => 4,
            RunError::Fixture(FixtureError::NotFound(_)) => 2,
            RunError::Output { .. } | RunError::Fixture(_) => 5,
            RunError::Interrupted { signal } => crate::util::interrupt::exit_code(*signal),
            RunError::Shard(_) | RunError::Attach { .. } | RunError::Profile(_) => 2,
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
        }
    }
}

/// What a finished run hands back.
#[derive(Debug)]
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
            message,
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
            eprintln!("==> {msg}");
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
            message: e.to_string(),
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
    let work = tempfile::Builder::new()
        .prefix("hsbench-work-")
        .tempdir()
        .map_err(|source| RunError::Output {
            path: std::env::temp_dir(),
            source,
        })?;

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
                message: format!("profile {:?} has no [launch] section", p.name),
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
                    let src = src.clone();
                    tokio::task::spawn_blocking(move || SynapseInstall::ensure_source(&src))
                        .await
                        .expect("install task")?
                }
                None => {
                    ctx.say(&format!("Synapse {version}: checking the install cache"));
                    let v = version.clone();
                    tokio::task::spawn_blocking(move || SynapseInstall::ensure(&v))
                        .await
                        .expect("install task")?
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
                    let root = tempfile::Builder::new()
                        .prefix("hsbench-pg-")
                        .tempdir()
                        .map_err(|source| RunError::Output {
                            path: std::env::temp_dir(),
                            source,
                        })?;
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
    let identity = FixtureIdentity {
        model_version: MODEL_VERSION,
        spec: scenario.dataset.clone(),
        server_kind: scenario.server.kind.as_str().into(),
        server_version: server_version.clone(),
        database: db_label.clone(),
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
        let (secs, bytes) =
            tokio::task::spawn_blocking(move || store2.restore(&fx2, &dd, pgdata.as_deref()))
                .await
                .expect("restore task")?;
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
                table_counts: fx.manifest.table_counts.clone(),
            });
        }
        ctx.say(&format!(
            "restored {:.1} MiB in {:.2} s",
            bytes as f64 / (1 << 20) as f64,
            secs
        ));
        (make_instance(false).await?, creds)
    } else {
        if let Some(c) = pg.as_mut() {
            c.init()?;
            c.start(pg_port, &run_dir.join("postgres.log")).await?;
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
        syn.extra = scenario.server.synapse_config.clone();
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
    });
    save_credentials(&work.join("credentials.json"), &creds)?;
    ctx.save()?;

    let db = DbProcesses {
        cache_roots: pg.iter().map(|c| c.pgdata.clone()).collect(),
        pgids: pg.iter().filter_map(|c| c.pid()).collect(),
    };
    let measured = match std::mem::replace(&mut ctx.mode, Mode::Full) {
        _ if ctx.opts.seed_only => finish_files(ctx),
        Mode::Serve(hooks) => serve_stage(ctx, &inst, &creds, &profile, &db, hooks, serving).await,
        _ => measure(ctx, &inst, &creds, &plan, &profile, &db).await,
    };
    if let Some(c) = pg.as_mut() {
        c.stop().await;
    }
    drop(pg_root);
    measured
}

/// A private database's part in the measurements: its files are evicted for cold boots and its
/// processes are sampled with the server's.
struct DbProcesses {
    cache_roots: Vec<PathBuf>,
    pgids: Vec<i32>,
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
    for i in 1..=scenario.boot.repeats {
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
    for (n, (label, cold, warmup)) in sequence.into_iter().enumerate() {
        ctx.say(&format!("{label} ({}/{total})", n + 1));
        let eviction = if cold {
            let mut roots = inst.cache_roots();
            roots.extend_from_slice(&db.cache_roots);
            Some(
                tokio::task::spawn_blocking(move || crate::boot::cache::evict(&roots))
                    .await
                    .expect("eviction task"),
            )
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
            &db.pgids,
        )?;
        spec.background = scenario.boot.background;
        let server = boot(spec).await?;
        let (mut rec, samples) = server.stop_with_samples(shutdown, &run_dir).await;
        rec.cold = cold;
        rec.warmup = warmup;
        rec.eviction = eviction;
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
    }

    // 3b. Profiled boots: extra boots under the profiler, compared with the timed ones.
    let tool = resolve_profiler(ctx, inst).await;
    if let Some(tool) = &tool
        && scenario.profile.boot
    {
        for i in 1..=scenario.profile.boot_runs {
            profiled_boot(ctx, inst, profile, db, tool, &probe_token, i).await?;
        }
    }

    // 4. Verification and workloads, on a boot of their own.
    if scenario.workloads.is_empty() && !ctx.opts.verify {
        crash_restarts(ctx, inst, creds, plan, profile, db, &probe_token).await?;
        return finish_files(ctx);
    }
    let spec = boot_spec(
        inst,
        profile,
        &run_dir,
        "workload",
        Some(probe_token.clone()),
        scenario,
        &db.pgids,
    )?;
    let mut server = boot(spec).await?;
    // The server is stopped exactly once, whatever the workloads did.
    let load_profiler = tool
        .as_ref()
        .filter(|_| scenario.profile.load)
        .map(|t| (t, server.server_pid()));
    let outcome = workloads(ctx, &server.base_url(), plan, creds, load_profiler).await;
    let alive = server.check_alive();
    ctx.result.workload_boot = Some(server.stop(shutdown, &run_dir).await);
    alive?;
    outcome?;
    ctx.save()?;
    // 5. Crash-restart cycles last: their writes change the dataset the workloads measured.
    crash_restarts(ctx, inst, creds, plan, profile, db, &probe_token).await?;
    finish_files(ctx)
}

/// `[boot] crash_restarts` (after the workloads): boot, send `crash_writes` messages into the
/// big room from up to eight of its members, SIGKILL the server's process group once half were acknowledged (the
/// rest in flight), then time the next boot over the same data. What a crash costs at the next
/// start (WAL replay, crash checks) is the figure operators ask for.
async fn crash_restarts(
    ctx: &mut Ctx<'_>,
    inst: &Instance,
    creds: &Credentials,
    plan: &DatasetPlan,
    profile: &ServerProfile,
    db: &DbProcesses,
    probe_token: &str,
) -> Result<(), RunError> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let scenario = ctx.scenario;
    if scenario.boot.crash_restarts == 0 {
        return Ok(());
    }
    let run_dir = ctx.run_dir.clone();
    let shutdown = scenario.boot.shutdown_timeout;
    let writers: Vec<String> = plan
        .room(0)
        .members
        .iter()
        .take(8)
        .map(|&m| creds.tokens[m as usize].clone())
        .collect();
    let room_id = creds.room_ids[0].clone();
    let total = u64::from(scenario.boot.crash_writes);
    // Both boots of a cycle: warm, probed with the dataset's first user.
    let spec = |label: &str| {
        boot_spec(
            inst,
            profile,
            &run_dir,
            label,
            Some(probe_token.to_string()),
            scenario,
            &db.pgids,
        )
    };
    for i in 1..=scenario.boot.crash_restarts {
        let label = format!("crash-{i}");
        ctx.say(&format!(
            "{label}: boot, {total} writes into the big room, SIGKILL with half acknowledged"
        ));
        let server = boot(spec(&label)?).await?;
        let client = api_client(&server.base_url(), Duration::from_secs(30), "crash writes")?;
        let (sent, acked) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        // The event ids the server acknowledged: each must be there after the crash.
        let acked_ids = Arc::new(std::sync::Mutex::new(Vec::<ruma::OwnedEventId>::new()));
        let writer = {
            let (sent, acked, writers, room_id, acked_ids) = (
                sent.clone(),
                acked.clone(),
                writers.clone(),
                room_id.clone(),
                acked_ids.clone(),
            );
            tokio::spawn(async move {
                use futures::StreamExt;
                futures::stream::iter(0..total)
                    .for_each_concurrent(8, |k| {
                        let (client, sent, acked, acked_ids) = (&client, &sent, &acked, &acked_ids);
                        let token = writers[k as usize % writers.len()].clone();
                        let room_id = room_id.clone();
                        async move {
                            let content = serde_json::json!({
                                "msgtype": "m.text",
                                "body": format!("crash write {k} of {total}")
                            });
                            let raw = ruma::serde::Raw::from_json(
                                serde_json::value::to_raw_value(&content).expect("json"),
                            );
                            let req = ruma::api::client::message::send_message_event::v3::Request::new_raw(
                                room_id,
                                ruma::OwnedTransactionId::from(format!("hsb-crash-{i}-{k}")),
                                "m.room.message".into(),
                                raw,
                            );
                            sent.fetch_add(1, Ordering::Relaxed);
                            if let Ok(resp) = client.send(req, Some(&token)).await {
                                acked_ids.lock().expect("not poisoned").push(resp.event_id);
                                acked.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    })
                    .await;
            })
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while acked.load(Ordering::Relaxed) < total.div_ceil(2)
            && !writer.is_finished()
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let killed_after_ms = server.elapsed_ms() - server.time_to_ready_ms();
        let (killed, _) = server.kill(&run_dir).await;
        writer.abort();
        let _ = writer.await;
        let (writes_sent, writes_acked) =
            (sent.load(Ordering::Relaxed), acked.load(Ordering::Relaxed));
        ctx.say(&format!(
            "  killed {} after ready: {writes_acked} of {writes_sent} writes acknowledged",
            crate::util::fmt::fmt_ms(killed_after_ms)
        ));

        let server = boot(spec(&format!("after-crash-{i}"))?).await?;
        // Jepsen-style: read every acknowledged write back from the recovered server.
        let ids = std::mem::take(&mut *acked_ids.lock().expect("not poisoned"));
        let reader = api_client(
            &server.base_url(),
            Duration::from_secs(30),
            "crash read-back",
        )?;
        let durability = read_back(&reader, &writers[0], &room_id, &ids).await;
        let (recovery, samples) = server.stop_with_samples(shutdown, &run_dir).await;
        write_waterfall(
            ctx,
            inst,
            &recovery,
            &samples,
            " (first boot after SIGKILL)",
        )?;
        report_boot(ctx, &recovery);
        match &durability {
            Ok(d) if d.lost.is_empty() => ctx.say(&format!(
                "  read back: all {} acknowledged writes present",
                d.checked
            )),
            Ok(d) => ctx.say(&format!(
                "  LOST: {} of {} acknowledged writes are missing after the crash",
                d.lost.len(),
                d.checked
            )),
            Err(e) => ctx.say(&format!("  read back failed: {e}")),
        }
        let (writes_checked, writes_lost, lost_event_ids, read_back_error) = match durability {
            Ok(d) => (
                Some(d.checked),
                Some(d.lost.len() as u64),
                d.lost.into_iter().take(20).collect(),
                None,
            ),
            Err(e) => (None, None, Vec::new(), Some(e)),
        };
        ctx.result.crash_restarts.push(crate::result::CrashRestart {
            killed,
            writes_sent,
            writes_acked,
            killed_after_ms,
            recovery,
            writes_checked,
            writes_lost,
            lost_event_ids,
            read_back_error,
        });
        let recoveries: Vec<BootRecord> = ctx
            .result
            .crash_restarts
            .iter()
            .map(|c| c.recovery.clone())
            .collect();
        ctx.result.crash_boot_summary = Some(summarize_boots(&recoveries));
        ctx.save()?;
    }
    Ok(())
}

/// What reading the acknowledged writes back after a crash found.
struct Durability {
    checked: u64,
    /// Acknowledged before the SIGKILL, missing after the recovery boot.
    lost: Vec<String>,
}

/// Fetch every acknowledged event from the recovered server (8 at a time); a 404 is a lost
/// write, any other failure makes the check fail (it says nothing about durability).
async fn read_back(
    client: &MatrixClient,
    token: &str,
    room_id: &ruma::OwnedRoomId,
    ids: &[ruma::OwnedEventId],
) -> Result<Durability, String> {
    use futures::StreamExt;
    let results: Vec<Result<Option<String>, String>> = futures::stream::iter(ids)
        .map(|id| async move {
            let req = ruma::api::client::room::get_room_event::v3::Request::new(
                room_id.clone(),
                id.clone(),
            );
            match client.send(req, Some(token)).await {
                Ok(_) => Ok(None),
                Err(crate::matrix::CallError::Status { status: 404, .. }) => {
                    Ok(Some(id.to_string()))
                }
                Err(e) => Err(e.to_string()),
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut lost = Vec::new();
    for r in results {
        if let Some(id) = r? {
            lost.push(id);
        }
    }
    Ok(Durability {
        checked: ids.len() as u64,
        lost,
    })
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
        &db.pgids,
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
    workloads(ctx, &url, &plan, &creds, None).await?;
    ctx.save()?;
    finish_files(ctx)
}

fn output_error(path: PathBuf) -> impl FnOnce(std::io::Error) -> RunError {
    move |source| RunError::Output { path, source }
}

/// Write a herd's histograms and interval log.
fn write_herd_files(
    ctx: &mut Ctx<'_>,
    result: &HerdResult,
    hists: &HerdHistograms,
) -> Result<(), RunError> {
    let run_dir = ctx.run_dir.clone();
    for (stem, h) in [
        ("herd-sync", &hists.corrected),
        ("herd-sync-raw", &hists.raw),
    ] {
        write_histogram(&run_dir, stem, h).map_err(output_error(run_dir.join(stem)))?;
        ctx.result.files.push(format!("{stem}.hgrm"));
        ctx.result.files.push(format!("{stem}.hist"));
    }
    let hlog = run_dir.join("herd-sync.hlog");
    crate::metrics::write_interval_log(
        &hlog,
        hists.released,
        &format!(
            "hsbench herd: {} clients, {:?} sync",
            result.clients, result.sync
        ),
        &[
            ("corrected", &hists.intervals_corrected),
            ("raw", &hists.intervals_raw),
        ],
    )
    .map_err(output_error(hlog.clone()))?;
    ctx.result.files.push("herd-sync.hlog".into());
    Ok(())
}

/// Write a long-running workload's histograms (`<workload>-<endpoint>.hist|.hgrm`, corrected
/// and `-raw`, plus `<workload>-delivery`) and its interval log (`<workload>.hlog`).
fn write_workload_files(
    ctx: &mut Ctx<'_>,
    workload: &str,
    data: &crate::load::workload::WorkloadData,
) -> Result<(), RunError> {
    let run_dir = ctx.run_dir.clone();
    let rec = &data.recorded;
    let mut hists: Vec<(String, &hdrhistogram::Histogram<u64>)> = Vec::new();
    for ep in crate::load::engine::Ep::ALL {
        if rec.started.get(&ep).copied().unwrap_or(0) == 0 {
            continue;
        }
        let s = &rec.eps[&ep];
        hists.push((format!("{workload}-{}", ep.name()), &s.corrected));
        hists.push((format!("{workload}-{}-raw", ep.name()), &s.raw));
    }
    if rec.deliveries.messages > 0 || data.shard_log.is_some() {
        hists.push((format!("{workload}-delivery"), &rec.deliveries.latency));
    }
    if !rec.reactions.took.is_empty() {
        hists.push((format!("{workload}-reaction"), &rec.reactions.took));
    }
    for (name, h) in &data.extra {
        hists.push((format!("{workload}-{name}"), h));
    }
    if let Some(log) = &data.shard_log {
        for (name, rows) in [
            (format!("{workload}-sends.csv"), &log.sends),
            (format!("{workload}-foreign-deliveries.csv"), &log.foreign),
        ] {
            let mut text = String::from("seq,unix_ns\n");
            for (q, t) in rows {
                text.push_str(&format!("{q},{t}\n"));
            }
            let path = run_dir.join(&name);
            crate::util::fs::write_atomic(&path, text.as_bytes()).map_err(output_error(path))?;
            ctx.result.files.push(name);
        }
    }
    if !rec.resync_gauge.is_empty() {
        // Re-syncs in flight over time: the most in each 100 ms (the gauge samples every 10 ms).
        let name = format!("{workload}-resyncs.csv");
        let per = (0.1 / crate::load::engine::GAUGE_STEP.as_secs_f64())
            .round()
            .max(1.0) as usize;
        let mut text = String::from("t_s,resyncs_in_flight\n");
        for (i, chunk) in rec.resync_gauge.chunks(per).enumerate() {
            let most = chunk.iter().copied().max().unwrap_or(0);
            text.push_str(&format!("{:.1},{most}\n", i as f64 * 0.1));
        }
        let path = run_dir.join(&name);
        crate::util::fs::write_atomic(&path, text.as_bytes()).map_err(output_error(path))?;
        ctx.result.files.push(name);
    }
    for (stem, h) in hists {
        write_histogram(&run_dir, &stem, h).map_err(output_error(run_dir.join(&stem)))?;
        ctx.result.files.push(format!("{stem}.hgrm"));
        ctx.result.files.push(format!("{stem}.hist"));
    }
    let series = data.interval_series();
    let refs: Vec<(&str, &crate::metrics::IntervalSeries)> =
        series.iter().map(|(t, s)| (t.as_str(), *s)).collect();
    let name = format!("{workload}.hlog");
    let hlog = run_dir.join(&name);
    crate::metrics::write_interval_log(
        &hlog,
        data.origin,
        &format!("hsbench {workload} workload"),
        &refs,
    )
    .map_err(output_error(hlog.clone()))?;
    ctx.result.files.push(name);
    Ok(())
}

/// The tokens a workload runs with, and its shard. A sharded steady, triggered or catch-up
/// workload slices its clients itself and may act as any user (a sender, the trigger, the
/// backlog's writer): it gets every token, and the common release time its schedule and
/// message numbers count from.
fn shard_part(
    ctx: &Ctx<'_>,
    creds: &Credentials,
    workload: &str,
) -> Result<(Vec<String>, Option<crate::load::workload::ShardRun>), RunError> {
    match &ctx.mode {
        Mode::Attach(a) if a.shard.count > 1 => {
            let release_at = a.release_at.ok_or_else(|| {
                workload_error(workload)(format!(
                    "a sharded {workload} needs --release-at (or HSBENCH_RELEASE_AT): every shard's schedule and message numbers count from it"
                ))
            })?;
            Ok((
                a.credentials.tokens.clone(),
                Some(crate::load::workload::ShardRun {
                    shard: a.shard,
                    release_at,
                }),
            ))
        }
        _ => Ok((creds.tokens.clone(), None)),
    }
}

fn workload_error<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
    workload: &str,
) -> impl FnOnce(E) -> RunError {
    let workload = workload.to_string();
    move |e| RunError::Workload {
        workload,
        source: e.into(),
    }
}

/// Verification (with `--verify`) and the workloads in the scenario's order, against a running
/// server. Each workload's results are saved as soon as it ends.
async fn workloads(
    ctx: &mut Ctx<'_>,
    base_url: &str,
    plan: &DatasetPlan,
    creds: &Credentials,
    profiler: Option<(&Tool, i32)>,
) -> Result<(), RunError> {
    if ctx.opts.verify {
        let client = api_client(base_url, Duration::from_secs(120), "verify")?;
        let report = verify(&client, plan, creds, 8, 8).await.map_err(Box::new)?;
        record_verify(ctx, "verify", report)?;
        ctx.save()?;
    }
    let scenario = ctx.scenario;
    for workload in &scenario.workloads {
        let name = workload.name();
        ctx.in_workload
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let attached = match profiler {
            Some((tool, pid)) => Some(start_load_profile(ctx, tool, pid, name).await),
            None => None,
        };
        let outcome = run_workload(ctx, workload, base_url, plan, creds).await;
        if let Some(a) = attached {
            finish_load_profile(ctx, a)?;
        }
        outcome?;
        ctx.save()?;
        ctx.in_workload
            .store(false, std::sync::atomic::Ordering::SeqCst);
        if let Some(signal) = crate::util::interrupt::pending() {
            return Err(RunError::Interrupted { signal });
        }
    }
    Ok(())
}

/// One workload against the running server: say what it does, run it, write its files, say
/// what it found and keep its result.
async fn run_workload(
    ctx: &mut Ctx<'_>,
    workload: &Workload,
    base_url: &str,
    plan: &DatasetPlan,
    creds: &Credentials,
) -> Result<(), RunError> {
    let name = workload.name();
    let big_room = || {
        creds
            .room_ids
            .first()
            .ok_or_else(|| workload_error(name)("the dataset has no big room"))
    };
    match workload {
        Workload::Herd(herd) => {
            ctx.say(&format!(
                "herd: {} clients, {:?} sync",
                herd.clients, herd.sync
            ));
            let release_at = match &ctx.mode {
                Mode::Attach(a) => a.release_at,
                _ => None,
            };
            let (result, hists) = run_herd_at(base_url, &creds.tokens, herd, release_at)
                .await
                .map_err(workload_error(name))?;
            let w = write_herd_files(ctx, &result, &hists);
            ctx.result.herd = Some(result);
            w
        }
        Workload::Triggered(t) => {
            ctx.say(&format!(
                "triggered herd: {} long-poll clients, {}/s chatter, trigger after {}, {:?} re-sync, watching {}",
                t.clients,
                t.chatter_rate,
                humantime::format_duration(t.baseline),
                t.reaction,
                humantime::format_duration(t.observe)
            ));
            let big = big_room()?;
            let (tokens, shard) = shard_part(ctx, creds, name)?;
            let (result, data) =
                crate::load::triggered::run_triggered(base_url, &tokens, big, t, shard)
                    .await
                    .map_err(workload_error(name))?;
            let w = write_workload_files(ctx, name, &data);
            ctx.say(&format!(
                "  recovery: {}; peak {} re-syncs in flight; {} of {} deliveries",
                result
                    .recovery
                    .time_to_recover_s
                    .map_or("not recovered".into(), |s| format!("{s:.1} s")),
                result.peak_concurrent_resyncs,
                result.deliveries.delivered,
                result.deliveries.expected
            ));
            ctx.result.triggered = Some(result);
            w
        }
        Workload::Steady(t) => {
            ctx.say(&format!(
                "steady: {} long-poll clients, {} senders, {:?} for {}",
                t.clients,
                t.senders,
                t.arrivals,
                humantime::format_duration(t.duration)
            ));
            let (tokens, shard) = shard_part(ctx, creds, name)?;
            let (result, data) =
                crate::load::steady::run_steady(base_url, &tokens, &creds.room_ids, plan, t, shard)
                    .await
                    .map_err(workload_error(name))?;
            let w = write_workload_files(ctx, name, &data);
            let d = &result.deliveries;
            ctx.say(&format!(
                "  {} messages accepted of {} sent, delivery p50 {} p99 {}, {} of {} deliveries",
                d.messages,
                result
                    .endpoints
                    .iter()
                    .find(|e| e.name == "send")
                    .map_or(0, |e| e.started),
                crate::report::lat(&d.latency, d.latency.p50_ms),
                crate::report::lat(&d.latency, d.latency.p99_ms),
                d.delivered,
                d.expected
            ));
            ctx.result.steady = Some(result);
            w
        }
        Workload::Catchup(t) => {
            ctx.say(&format!(
                "catch-up: {} readers, {} unread messages each, {} per page",
                t.readers, t.backlog, t.page
            ));
            let big = big_room()?;
            let (tokens, shard) = shard_part(ctx, creds, name)?;
            let (result, data) =
                crate::load::catchup::run_catchup(base_url, &tokens, big, t, shard)
                    .await
                    .map_err(workload_error(name))?;
            let w = write_workload_files(ctx, name, &data);
            ctx.say(&format!(
                "  {} of {} readers caught up, p50 {} max {}",
                result.caught_up,
                result.readers,
                crate::report::lat(&result.catch_up, result.catch_up.p50_ms),
                crate::report::lat(&result.catch_up, result.catch_up.max_ms)
            ));
            ctx.result.catchup = Some(result);
            w
        }
    }
}

/// The profiler the scenario asks for, installed or found; `None` when profiling is off or the
/// profiler is unavailable (then the result says why, and the run goes on without profiles).
async fn resolve_profiler(ctx: &mut Ctx<'_>, inst: &Instance) -> Option<Tool> {
    let spec = &ctx.scenario.profile;
    if !spec.enabled() {
        return None;
    }
    let choice = spec.profiler;
    // Synapse is Python: py-spy sees Python frames, perf only the interpreter's. A native
    // server's profile says which suits it (perf unless it is Python too).
    let native_tool = match inst {
        Instance::Synapse(_) => NativeProfiler::PySpy,
        Instance::Native(n) => n.launch.profiler,
    };
    let found = tokio::task::spawn_blocking(move || match choice {
        ProfilerChoice::Auto if native_tool == NativeProfiler::Perf => Tool::perf(),
        ProfilerChoice::Auto | ProfilerChoice::PySpy => Tool::py_spy(),
        ProfilerChoice::Perf => Tool::perf(),
        ProfilerChoice::None => unreachable!("enabled() is false for none"),
    })
    .await
    .expect("profiler lookup task");
    let mut result = ProfileResult {
        tool: None,
        unavailable: None,
        rate_hz: spec.rate_hz,
        boots: Vec::new(),
        load: Vec::new(),
    };
    let tool = match found {
        Ok(t) => {
            ctx.say(&format!(
                "profiler: {:?} {} at {} Hz",
                t.kind, t.version, spec.rate_hz
            ));
            result.tool = Some(t.clone());
            Some(t)
        }
        Err(e) => {
            eprintln!("WARNING: no profiles in this run: {e}");
            result.unavailable = Some(e.to_string());
            None
        }
    };
    ctx.result.profile = Some(result);
    tool
}

/// A boot under the profiler (warm cache), sliced into one flamegraph per phase, with its
/// overhead against the unprofiled warm boots.
async fn profiled_boot(
    ctx: &mut Ctx<'_>,
    inst: &Instance,
    profile: &ServerProfile,
    db: &DbProcesses,
    tool: &Tool,
    probe_token: &str,
    i: u32,
) -> Result<(), RunError> {
    let scenario = ctx.scenario;
    let run_dir = ctx.run_dir.clone();
    let label = format!("profile-{i}");
    ctx.say(&format!("{label}: boot under {:?}", tool.kind));
    let dir = run_dir.join(PROFILE_DIR);
    std::fs::create_dir_all(&dir).map_err(|source| RunError::Output {
        path: dir.clone(),
        source,
    })?;
    let raw_name = match tool.kind {
        ToolKind::PySpy => format!("{label}.chrometrace.json"),
        ToolKind::Perf => format!("{label}.perf.data"),
    };
    let raw = dir.join(&raw_name);
    let mut spec = boot_spec(
        inst,
        profile,
        &run_dir,
        &label,
        Some(probe_token.to_string()),
        scenario,
        &db.pgids,
    )?;
    spec.command = tool.wrap_launch(&spec.command, &raw, scenario.profile.rate_hz);
    spec.wrapper = Some(Wrapper {
        line_prefix: tool.own_line_prefix(),
    });
    let server = boot(spec).await?;
    let profiler_cpu_s = process_cpu_s(server.pid());
    // The profiler exits after the server and writes its output then: stop() waits for it.
    let rec = server
        .stop(
            scenario.boot.shutdown_timeout + Duration::from_secs(60),
            &run_dir,
        )
        .await;
    report_boot(ctx, &rec);
    let title = format!("{} · {}", inst.title(), scenario.name);
    let slicing = BootSlicing {
        tool,
        rate_hz: scenario.profile.rate_hz,
        boot: &rec,
        raw: &raw,
        run_dir: &run_dir,
        subdir: PROFILE_DIR,
        title: &title,
        idle_frames: &profile.idle_frames,
    };
    let (flamegraphs, error) = match slicing.render() {
        Ok(f) => (f, None),
        Err(e) => {
            eprintln!("WARNING: {label}: no flamegraphs: {e}");
            (Vec::new(), Some(e.to_string()))
        }
    };
    let overhead = ctx
        .result
        .boot_summary
        .as_ref()
        .and_then(|b| crate::profile::overhead(&rec, profiler_cpu_s, b));
    if let Some(o) = &overhead {
        ctx.say(&format!(
            "  profiler overhead: time to ready {} → {}",
            crate::util::fmt::fmt_ms(o.time_to_ready_ms.without),
            crate::util::fmt::fmt_ms(o.time_to_ready_ms.with)
        ));
    }
    for f in &flamegraphs {
        ctx.result.files.extend(f.svg.iter().cloned());
        ctx.result.files.extend(f.folded.iter().cloned());
    }
    ctx.result.files.push(format!("{PROFILE_DIR}/{raw_name}"));
    ctx.result.files.push(rec.log_file.clone());
    if let Some(p) = ctx.result.profile.as_mut() {
        p.boots.push(ProfiledBoot {
            boot: rec,
            mode: tool.launch_mode().to_string(),
            raw: format!("{PROFILE_DIR}/{raw_name}"),
            flamegraphs,
            profiler_cpu_s,
            overhead,
            error,
        });
    }
    ctx.save()
}

/// A profiler attached to the server for one workload.
struct LoadRecording {
    workload: String,
    tool: Tool,
    server_pid: i32,
    attached: Result<Attached, String>,
    raw: PathBuf,
    server_cpu_start: Option<f64>,
    started_ms: f64,
}

/// How long an attaching profiler gets to start sampling before the workload starts.
const ATTACH_SETTLE: Duration = Duration::from_millis(500);

async fn start_load_profile(
    ctx: &Ctx<'_>,
    tool: &Tool,
    server_pid: i32,
    workload: &str,
) -> LoadRecording {
    let dir = ctx.run_dir.join(PROFILE_DIR);
    let ext = match tool.kind {
        ToolKind::PySpy => "pyspy.txt",
        ToolKind::Perf => "perf.data",
    };
    let raw = dir.join(format!("load.{workload}.{ext}"));
    let attached = std::fs::create_dir_all(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))
        .and_then(|()| {
            tool.attach(server_pid, &raw, ctx.scenario.profile.rate_hz)
                .map_err(|e| e.to_string())
        });
    if attached.is_ok() {
        tokio::time::sleep(ATTACH_SETTLE).await;
    }
    LoadRecording {
        workload: workload.to_string(),
        tool: tool.clone(),
        server_pid,
        attached,
        raw,
        server_cpu_start: process_cpu_s(server_pid),
        started_ms: ctx.started.elapsed().as_secs_f64() * 1000.0,
    }
}

fn finish_load_profile(ctx: &mut Ctx<'_>, rec: LoadRecording) -> Result<(), RunError> {
    let server_cpu_s = match (rec.server_cpu_start, process_cpu_s(rec.server_pid)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let ended_ms = ctx.started.elapsed().as_secs_f64() * 1000.0;
    let mut lp = LoadProfile {
        workload: rec.workload.clone(),
        mode: rec.tool.attach_mode().to_string(),
        flamegraph: None,
        report: None,
        server_cpu_s,
        error: None,
    };
    match rec.attached.map(|a| a.stop(Duration::from_secs(60))) {
        Err(e) | Ok(Err(ProfilerError::Data { message: e, .. })) => lp.error = Some(e),
        Ok(Err(e)) => lp.error = Some(e.to_string()),
        Ok(Ok(report)) => {
            lp.report = Some(report);
            let title = format!(
                "{} · {}",
                ctx.result
                    .server
                    .as_ref()
                    .map_or("?".to_string(), |s| format!("{} {}", s.kind, s.version)),
                ctx.scenario.name
            );
            let slicing = AttachedSlicing {
                tool: &rec.tool,
                rate_hz: ctx.scenario.profile.rate_hz,
                raw: &rec.raw,
                run_dir: &ctx.run_dir,
                subdir: PROFILE_DIR,
                scope: &rec.workload,
                title: &title,
                window_ms: (rec.started_ms, ended_ms),
            };
            match slicing.render() {
                Ok(f) => {
                    ctx.result.files.extend(f.svg.iter().cloned());
                    ctx.result.files.extend(f.folded.iter().cloned());
                    lp.flamegraph = Some(f);
                }
                Err(e) => lp.error = Some(e.to_string()),
            }
        }
    }
    if let Some(e) = &lp.error {
        eprintln!("WARNING: no load profile of {}: {e}", rec.workload);
    }
    if let Some(p) = ctx.result.profile.as_mut() {
        p.load.push(lp);
    }
    ctx.save()
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
    })
}

/// Boot a fresh server, load the plan through the API, stop it, and snapshot it as a fixture.
async fn build_dataset(
    ctx: &mut Ctx<'_>,
    inst: &Instance,
    plan: &DatasetPlan,
    profile: &ServerProfile,
    identity: &FixtureIdentity,
    mut pg: Option<&mut PgCluster>,
    snapshot: bool,
) -> Result<Credentials, RunError> {
    let scenario = ctx.scenario;
    let run_dir = ctx.run_dir.clone();
    let t = plan.totals();
    ctx.say(&format!(
        "dataset: building fixture {} — {} users, {} rooms, {} memberships, {} timeline events (seed {})",
        identity.key(),
        t.users,
        t.rooms,
        t.memberships,
        t.timeline_events,
        scenario.dataset.seed
    ));
    let built = Instant::now();
    let server = boot(boot_spec(
        inst,
        profile,
        &run_dir,
        "seed",
        None,
        scenario,
        &[],
    )?)
    .await?;
    let client = api_client(&server.base_url(), Duration::from_secs(120), "client")?;
    let as_token = match inst {
        Instance::Synapse(i) => i.appservice_token(),
        Instance::Native(_) => None,
    };
    let registrar = match (inst, scenario.dataset.registration, as_token.as_deref()) {
        (Instance::Native(n), _, _) => match n.launch.registration {
            ProfileRegistration::Token => Registrar::Token(&n.registration_token),
            ProfileRegistration::Password => Registrar::Password,
        },
        (_, Registration::Appservice, Some(t)) => Registrar::Appservice(t),
        _ => Registrar::Password,
    };
    let shutdown = scenario.boot.shutdown_timeout;
    let mut server = Some(server);
    let (creds, report) = if scenario.dataset.load == LoadMethod::Direct {
        // Synapse has created its schema and signing key; it must be stopped while its
        // database is written, then it boots again and its own API checks the result.
        let s = server.take().expect("running");
        ctx.result.seed_boot = Some(s.stop(shutdown, &run_dir).await);
        let (creds, report) = direct_import(ctx, inst, plan).await?;
        let check = boot(boot_spec(
            inst,
            profile,
            &run_dir,
            "import-check",
            None,
            scenario,
            &[],
        )?)
        .await?;
        let client = api_client(&check.base_url(), Duration::from_secs(120), "client")?;
        let verified = verify(&client, plan, &creds, 8, 8).await;
        let stopped = check.stop(shutdown, &run_dir).await;
        ctx.result.import_check_boot = Some(stopped);
        record_verify(ctx, "import-check", verified.map_err(Box::new)?)?;
        (creds, report)
    } else {
        let log = ctx.load_steps.clone();
        let loaded = load(
            &client,
            plan,
            ctx.opts.load_concurrency,
            !ctx.opts.quiet,
            registrar,
            Some(&log),
        )
        .await;
        match loaded {
            Ok(x) => x,
            Err(e) => {
                let s = server.take().expect("running");
                ctx.result.seed_boot = Some(s.stop(shutdown, &run_dir).await);
                return Err(Box::new(e).into());
            }
        }
    };
    ctx.say(&format!(
        "dataset loaded in {:.1} s ({})",
        report.total_seconds,
        report
            .steps
            .iter()
            .map(|s| format!("{} {:.1}/s", s.name, s.rate_per_s))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if let Some(s) = server.take() {
        ctx.result.seed_boot = Some(s.stop(shutdown, &run_dir).await);
    }
    let i2 = inst.clone();
    let counts = tokio::task::spawn_blocking(move || i2.table_counts())
        .await
        .expect("count task")?;
    let manifest = FixtureManifest {
        key: identity.key(),
        identity: identity.clone(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        scenario: scenario.name.clone(),
        totals: t,
        load: report.clone(),
        table_counts: counts.clone(),
        size_bytes: 0,
        build_seconds: built.elapsed().as_secs_f64(),
    };
    if !snapshot {
        if let Some(d) = ctx.result.dataset.as_mut() {
            d.load = Some(report);
        }
        ctx.save()?;
        return Ok(creds);
    }
    // PostgreSQL's data directory is copied with the cluster stopped, then it starts again.
    let pgdata = pg.as_ref().map(|c| c.pgdata.clone());
    if let Some(c) = pg.as_mut() {
        c.stop().await;
    }
    let (store, dd, c2) = (
        ctx.opts.fixtures.clone(),
        inst.data_dir().to_path_buf(),
        creds.clone(),
    );
    let (fx, snapshot_seconds) =
        tokio::task::spawn_blocking(move || store.save(manifest, &dd, pgdata.as_deref(), &c2))
            .await
            .expect("snapshot task")?;
    if let Some(c) = pg {
        let port = c.port;
        c.start(port, &run_dir.join("postgres-after-snapshot.log"))
            .await?;
    }
    ctx.say(&format!(
        "fixture {} saved: {:.1} MiB in {:.2} s",
        fx.manifest.key,
        fx.manifest.size_bytes as f64 / (1 << 20) as f64,
        snapshot_seconds
    ));
    if let Some(d) = ctx.result.dataset.as_mut() {
        d.load = Some(report);
        d.fixture = Some(FixtureUse {
            key: fx.manifest.key.clone(),
            path: fx.dir.display().to_string(),
            reused: false,
            size_bytes: fx.manifest.size_bytes,
            snapshot_seconds: Some(snapshot_seconds),
            restore_seconds: None,
            restore_mib_per_s: None,
            table_counts: counts,
        });
    }
    ctx.save()?;
    Ok(creds)
}

/// A client of the server under test; a failure to build one fails `workload`.
fn api_client(base_url: &str, timeout: Duration, workload: &str) -> Result<MatrixClient, RunError> {
    MatrixClient::new(base_url, timeout).map_err(workload_error(workload))
}

/// Say what a check of the dataset through the API found, keep it in the result, and fail the
/// step (`verify` or `import-check`) on any mismatch with the plan.
fn record_verify(
    ctx: &mut Ctx<'_>,
    step: &str,
    report: crate::dataset::seed::VerifyReport,
) -> Result<(), RunError> {
    ctx.say(&format!(
        "{step}: {} users and {} rooms checked through the API against the plan: {}",
        report.users_checked,
        report.rooms_checked,
        if report.mismatches.is_empty() {
            "exact".to_string()
        } else {
            format!("{} MISMATCHES", report.mismatches.len())
        }
    ));
    let mismatches = report.mismatches.join("; ");
    if let Some(d) = ctx.result.dataset.as_mut() {
        d.verify = Some(report);
    }
    if mismatches.is_empty() {
        Ok(())
    } else {
        Err(workload_error(step)(format!(
            "the server's data differs from the plan: {mismatches}"
        )))
    }
}

/// Write the plan straight into the stopped Synapse's database.
async fn direct_import(
    ctx: &mut Ctx<'_>,
    inst: &Instance,
    plan: &DatasetPlan,
) -> Result<(Credentials, crate::dataset::seed::LoadReport), RunError> {
    let Instance::Synapse(syn) = inst else {
        unreachable!("the scenario refuses a direct load for other servers")
    };
    let data = syn.data_dir.clone();
    let (db, key) = (
        data.join("homeserver.db"),
        data.join(format!("{SERVER_NAME}.signing.key")),
    );
    let (plan2, show) = (plan.clone(), !ctx.opts.quiet);
    let (creds, report) = tokio::task::spawn_blocking(move || {
        crate::dataset::import::import_sqlite(&db, &key, SERVER_NAME, &plan2, show)
    })
    .await
    .expect("import task")?;
    ctx.say(&format!(
        "dataset imported in {:.1} s ({})",
        report.total_seconds,
        report
            .steps
            .iter()
            .map(|s| format!("{} {} in {:.1} s", s.name, s.count, s.seconds))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok((creds, report))
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
        assert_eq!(e.exit_code(), 2);
        let e = Attach::resolve(target, None, None, Some("soon"), no_env).unwrap_err();
        assert!(e.to_string().contains("--release-at \"soon\""), "{e}");
    }
}
