//! The stages of a run that starts its own server: install (or probe the binary), the
//! database, the dataset (a fixture restored, or built and kept), then the measured boots and
//! workloads, or `serve`.

use super::attach::{attached, native_accounts};
use super::boots::measure;
use super::ctx::{Ctx, Mode, finish_files};
use super::dataset::build_dataset;
use super::db::DbProcesses;
use super::error::RunError;
use super::serve::{save_credentials, serve_stage};
use super::spec::boot_config;
use super::target::Target;
use super::wait::heartbeat;
use super::workdir::{owned_work_dir, work_parent};
use crate::dataset::fixture::{
    BuildLock, Fixture, FixtureIdentity, FixtureStore, FixtureUse, IMPORT_FORMAT, MODEL_VERSION,
};
use crate::dataset::plan::DatasetPlan;
use crate::dataset::seed::Credentials;
use crate::result::{DatasetInfo, ServerInfo};
use crate::scenario::{DatabaseKind, LoadMethod, Scenario};
use crate::server::limits::{Confinement, LimitsRecord, Throttling, cgroup_name, describe};
use crate::server::native::NativeInstall;
use crate::server::postgres::{PG_DATABASE, PG_USER, PgBinaries, PgCluster};
use crate::server::synapse::{DbTarget, InstallStep, SynapseInstall, SynapseInstance};
use crate::server::{self, Instance, ServerError, ServerProfile, free_port};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Install, database, dataset, then the boots and workloads (or `serve`, or only the dataset).
pub(super) async fn stages(
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
    let profile = scenario.server.profile()?;
    let sw = install(ctx, &profile, &version).await?;
    let mut database = database(ctx, sw.install.as_ref()).await?;
    // An external database is the user's: hsbench never snapshots or restores it.
    let use_fixtures = scenario.server.postgres_url.is_none();
    let plan = DatasetPlan::new(scenario.dataset.clone());
    let server_version = sw.version(&version);
    // A checkout's fixtures are keyed by its schema, not its commit: a PR that leaves the schema
    // alone reuses the base's fixture.
    let fixture_version = match (&ctx.opts.fixture_version, &sw.native, &sw.install) {
        (Some(v), _, _) => v.clone(),
        (None, None, Some(i)) => i.fixture_version(),
        _ => server_version.clone(),
    };
    let identity = FixtureIdentity {
        model_version: MODEL_VERSION,
        spec: scenario.dataset.clone(),
        server_kind: scenario.server.kind.as_str().into(),
        server_version: fixture_version,
        database: database.label.clone(),
        accounts: native_accounts(&profile, scenario),
        import_format: (scenario.dataset.load == LoadMethod::Direct).then_some(IMPORT_FORMAT),
    };
    let key = identity.key();
    let store = ctx.opts.fixtures.clone();
    if ctx.opts.rebuild_fixture {
        let _ = store.remove(Some(&key));
    }
    ctx.result.dataset = Some(DatasetInfo::planned(&plan));
    ctx.save()?;

    // 2. Dataset: restore the fixture, or build it (boot fresh, load through the API, stop,
    //    snapshot).
    let data_dir = work.join("server-data");
    let template = scenario.server.config_template.clone();
    let (cached, build_lock) = fixture_or_lock(ctx, &store, &key, use_fixtures).await?;
    let (mut inst, creds) = if let Some(fx) = cached {
        let creds = restore_fixture(ctx, &fx, &key, &store, &data_dir, &mut database).await?;
        let inst = make_instance(&sw, &profile, template, &data_dir, &database.target, false);
        (inst.await?, creds)
    } else {
        let run_dir = ctx.run_dir.clone();
        let port = database.port();
        if let Some(c) = database.pg.as_mut() {
            c.init()?;
            c.start_for_build(port, &run_dir.join("postgres.log"))
                .await?;
            c.create_synapse_database()?;
        }
        let inst =
            make_instance(&sw, &profile, template, &data_dir, &database.target, true).await?;
        let creds = build_dataset(
            ctx,
            &inst,
            &plan,
            &profile,
            &identity,
            database.pg.as_mut(),
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
    ctx.result.server = Some(server_info(scenario, &sw, &inst, server_version, &database));
    save_credentials(&work.join("credentials.json"), &creds)?;
    ctx.save()?;

    // 3. The boots, the workloads, or `serve`, against the server over its dataset, under its
    //    resource limits.
    let confine = if ctx.opts.seed_only {
        None
    } else {
        confinement(ctx, database.pg.is_some())?
    };
    let Database { pg, root, .. } = database;
    let t = Target {
        inst,
        creds,
        plan,
        profile,
        db: DbProcesses::new(pg, scenario.boot.slow_statements, confine.clone())?,
        confine,
    };
    let measured = match std::mem::replace(&mut ctx.mode, Mode::Full) {
        _ if ctx.opts.seed_only => finish_files(ctx),
        Mode::Serve(hooks) => serve_stage(ctx, &t, hooks, serving).await,
        _ => measure(ctx, &t).await,
    };
    let mut measured = measured;
    if let (Some(c), Some(rec)) = (&t.confine, ctx.result.limits.as_mut()) {
        rec.throttling = c.throttling();
        rec.generator = Some(c.generator_check());
        // A server the kernel killed for its memory limit: the error says so.
        if let (Err(e), kills @ 1..) = (&measured, rec.throttling.oom_kills)
            && !matches!(e, RunError::Interrupted { .. })
        {
            let limit = rec
                .applied
                .memory_bytes
                .map(|b| crate::util::fmt::fmt_bytes(b as f64))
                .unwrap_or_default();
            let source = Box::new(measured.unwrap_err());
            measured = Err(RunError::OutOfMemory {
                kills,
                limit,
                source,
            });
        }
    }
    if let Some(mut c) = t.db.cluster.into_inner() {
        c.stop().await;
    }
    drop(root);
    measured
}

/// The server's resource limits (`[server] cpus`, `memory`, `cpuset`), made for this run and
/// recorded in its result; `None` when the scenario sets none.
fn confinement(ctx: &mut Ctx<'_>, private_pg: bool) -> Result<Option<Arc<Confinement>>, RunError> {
    let Some(limits) = &ctx.scenario.server.limits else {
        return Ok(None);
    };
    let Some(mut c) = Confinement::create(limits, &cgroup_name(&ctx.result.run_id))? else {
        return Ok(None);
    };
    if private_pg {
        c.applied.notes.push(
            "the private PostgreSQL cluster runs under the same limits: its processes join the server's cgroups (the quota and the memory limit are shared)".into(),
        );
    }
    ctx.say(&format!("server limits: {}", describe(&c.applied)));
    for n in &c.applied.notes {
        ctx.say(&format!("server limits: {n}"));
    }
    ctx.result.limits = Some(LimitsRecord {
        asked: limits.clone(),
        applied: c.applied.clone(),
        throttling: Throttling::default(),
        generator: None,
    });
    ctx.save()?;
    Ok(Some(Arc::new(c)))
}

/// The server's software: a native binary (probed) or a Synapse virtualenv (installed).
struct Software {
    native: Option<NativeInstall>,
    install: Option<SynapseInstall>,
}

impl Software {
    /// The server's version as results name it.
    fn version(&self, asked: &str) -> String {
        match (&self.native, &self.install) {
            (Some(n), _) => n.identity(),
            (None, Some(i)) => i.version.clone(),
            (None, None) => asked.to_string(),
        }
    }
}

/// Probe the user's native binary, or install Synapse (cached) from PyPI or a checkout.
async fn install(
    ctx: &Ctx<'_>,
    profile: &ServerProfile,
    version: &str,
) -> Result<Software, RunError> {
    let scenario = ctx.scenario;
    if let Some(binary) = &scenario.server.binary {
        let (kind, b) = (scenario.server.kind.as_str().to_string(), binary.clone());
        let launch = profile.launch.clone().ok_or_else(|| ServerError::Install {
            step: "profile".into(),
            source: format!("profile {:?} has no [launch] section", profile.name).into(),
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
        return Ok(Software {
            native: Some(ni),
            install: None,
        });
    }
    let install = match &scenario.server.source {
        Some(src) => {
            ctx.say(&format!(
                "Synapse from {}: checking its virtualenv",
                src.display()
            ));
            let (src, step) = (src.clone(), InstallStep::default());
            let st = step.clone();
            let task =
                tokio::task::spawn_blocking(move || SynapseInstall::ensure_source_with(&src, &st));
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
            let (v, step) = (version.to_string(), InstallStep::default());
            let st = step.clone();
            let task = tokio::task::spawn_blocking(move || SynapseInstall::ensure_with(&v, &st));
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
    Ok(Software {
        native: None,
        install: Some(install),
    })
}

/// The server's database: SQLite in the data directory, a private PostgreSQL cluster, or an
/// existing PostgreSQL database on this machine; a native server keeps its own storage.
struct Database {
    /// As results name it (`sqlite`, `postgres-16`, `postgres-external`, `embedded`).
    label: String,
    target: DbTarget,
    /// A sentence for the results, where the label is not enough.
    desc: Option<String>,
    /// The private cluster hsbench starts, and its directory (removed when dropped).
    pg: Option<PgCluster>,
    root: Option<tempfile::TempDir>,
}

impl Database {
    fn port(&self) -> u16 {
        match &self.target {
            DbTarget::Postgres { port, .. } => *port,
            DbTarget::Sqlite => 0,
        }
    }
}

/// Choose the database, and set up (not yet start) a private cluster.
async fn database(ctx: &Ctx<'_>, install: Option<&SynapseInstall>) -> Result<Database, RunError> {
    let scenario = ctx.scenario;
    let db = |label: &str, target, desc: Option<String>| Database {
        label: label.to_string(),
        target,
        desc,
        pg: None,
        root: None,
    };
    let Some(install) = install else {
        return Ok(db(
            "embedded",
            DbTarget::Sqlite,
            Some("the server's own storage, as its config template sets it".to_string()),
        ));
    };
    if scenario.server.database == DatabaseKind::Sqlite {
        return Ok(db("sqlite", DbTarget::Sqlite, None));
    }
    let i = install.clone();
    tokio::task::spawn_blocking(move || i.ensure_postgres_driver())
        .await
        .expect("driver task")?;
    if let Some(u) = &scenario.server.postgres_url {
        return Ok(db(
            "postgres-external",
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
        ));
    }
    let bins = PgBinaries::find()?;
    let parent = work_parent(&ctx.opts.fixtures, true);
    let root = owned_work_dir("hsbench-pg-", &parent)?;
    let port = free_port().map_err(|e| ServerError::io(Path::new("127.0.0.1:0"), e))?;
    let desc = format!(
        "PostgreSQL {} private cluster on 127.0.0.1:{port} ({})",
        bins.version,
        bins.bin_dir.display()
    );
    let label = format!("postgres-{}", bins.major);
    let pg = PgCluster::new(bins, root.path())?;
    Ok(Database {
        label,
        target: DbTarget::Postgres {
            host: "127.0.0.1".into(),
            port,
            user: PG_USER.into(),
            password: None,
            database: PG_DATABASE.into(),
        },
        desc: Some(desc),
        pg: Some(pg),
        root: Some(root),
    })
}

/// An instance over `data_dir`: fresh (config generated, init commands run) or restored.
async fn make_instance(
    sw: &Software,
    profile: &ServerProfile,
    template: Option<PathBuf>,
    data_dir: &Path,
    target: &DbTarget,
    fresh: bool,
) -> Result<Instance, ServerError> {
    let (native, install, profile) = (sw.native.clone(), sw.install.clone(), profile.clone());
    let (dd, target) = (data_dir.to_path_buf(), target.clone());
    tokio::task::spawn_blocking(move || match (native, install) {
        (Some(n), _) => {
            server::native::NativeInstance::prepare(&n, &profile, template.as_deref(), &dd, fresh)
                .map(Instance::Native)
        }
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

/// The fixture if the store has it; else the lock to build it. One builder per fixture: a run
/// that needs a fixture another run is building waits for it and reuses it. A cache that
/// cannot take the fixture fails now, not after the build.
async fn fixture_or_lock(
    ctx: &Ctx<'_>,
    store: &FixtureStore,
    key: &str,
    use_fixtures: bool,
) -> Result<(Option<Fixture>, Option<BuildLock>), RunError> {
    let cached = if use_fixtures { store.get(key) } else { None };
    if !use_fixtures || cached.is_some() {
        return Ok((cached, None));
    }
    store.check_writable()?;
    let lock = match store.try_lock(key)? {
        Some(l) => l,
        None => {
            ctx.say(&format!(
                "dataset: another run is building fixture {key}; waiting for it"
            ));
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if let Some(l) = store.try_lock(key)? {
                    break l;
                }
            }
        }
    };
    let cached = store.get(key);
    if cached.is_some() {
        ctx.say("dataset: the other run built the fixture; reusing it");
    }
    Ok((cached, Some(lock)))
}

/// Restore a fixture into `data_dir` (and the private cluster's data directory, then start
/// it); its credentials, with the restore recorded in the result.
async fn restore_fixture(
    ctx: &mut Ctx<'_>,
    fx: &Fixture,
    key: &str,
    store: &FixtureStore,
    data_dir: &Path,
    database: &mut Database,
) -> Result<Credentials, RunError> {
    ctx.say(&format!("dataset: fixture {key} from {}", fx.dir.display()));
    let (fx2, store2, dd) = (fx.clone(), store.clone(), data_dir.to_path_buf());
    let pgdata = database.pg.as_ref().map(|c| c.pgdata.clone());
    let (secs, copied) =
        tokio::task::spawn_blocking(move || store2.restore(&fx2, &dd, pgdata.as_deref()))
            .await
            .expect("restore task")?;
    let bytes = copied.bytes;
    let port = database.port();
    if let Some(c) = database.pg.as_mut() {
        c.fix_ownership()?;
        c.start(port, &ctx.run_dir.join("postgres.log")).await?;
    }
    let creds = fx.credentials()?;
    if let Some(d) = ctx.result.dataset.as_mut() {
        d.load = Some(fx.manifest.load.clone());
        d.fixture = Some(FixtureUse {
            key: key.to_string(),
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
    Ok(creds)
}

/// The result's record of the server: kind, version, database, install and config.
fn server_info(
    scenario: &Scenario,
    sw: &Software,
    inst: &Instance,
    version: String,
    database: &Database,
) -> ServerInfo {
    let install = sw.install.as_ref();
    ServerInfo {
        kind: scenario.server.kind.as_str().into(),
        version,
        database: database.label.clone(),
        database_detail: database.desc.clone(),
        install_dir: match (&sw.native, install) {
            (Some(n), _) => n.binary.display().to_string(),
            (None, Some(i)) => i.venv.display().to_string(),
            (None, None) => String::new(),
        },
        installed_now: install.is_some_and(|i| i.installed_now),
        install_seconds: install.map_or(0.0, |i| i.install_seconds),
        config_overrides: inst.config_record(0),
        source: install.and_then(|i| i.source.clone()),
    }
}
