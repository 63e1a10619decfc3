//! The dataset of a run: built through the API or imported directly, verified, and recorded.

use super::ctx::Ctx;
use super::error::RunError;
use super::error::workload_error;
use super::spec::boot_spec;
use crate::boot::{RunningServer, boot};
use crate::dataset::fixture::{FixtureIdentity, FixtureManifest, FixtureUse};
use crate::dataset::plan::DatasetPlan;
use crate::dataset::seed::{Credentials, LoadReport, Registrar, load, wait_for_appservice};
use crate::dataset::verify::verify;
use crate::matrix::MatrixClient;
use crate::scenario::{LoadMethod, Registration};
use crate::server::postgres::PgCluster;
use crate::server::profile::ProfileRegistration;
use crate::server::synapse::SERVER_NAME;
use crate::server::{Instance, ServerProfile};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long the schema boot of a direct import waits for Synapse's background updates over the
/// empty database (seconds there; a slow machine gets room).
const SCHEMA_BACKGROUND_LIMIT: Duration = Duration::from_secs(300);

/// Boot a fresh server, load the plan through the API, stop it, and snapshot it as a fixture.
pub(super) async fn build_dataset(
    ctx: &mut Ctx<'_>,
    inst: &Instance,
    plan: &DatasetPlan,
    profile: &ServerProfile,
    identity: &FixtureIdentity,
    pg: Option<&mut PgCluster>,
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
    let mut spec = boot_spec(inst, profile, &run_dir, "seed", None, scenario, &[])?;
    if scenario.dataset.load == LoadMethod::Direct {
        // Synapse schedules its background updates (new indexes, the room-stats and
        // user-directory populations) when it creates its schema; over the empty database they
        // finish in seconds. Left pending, they would run over the imported rows at every boot
        // of the fixture (the user directory's at under 100 users/s: 20 min at 100k users), work
        // no long-running server does at start-up. The import writes those rows itself.
        spec.background = Some(SCHEMA_BACKGROUND_LIMIT);
    }
    // A native server registers hsbench's application service on this boot when its profile
    // knows how and the scenario asks for it (the load's own step is skipped by a direct import).
    let native_appservice = match inst {
        Instance::Native(n)
            if scenario.dataset.registration == Registration::Appservice
                && scenario.dataset.load == LoadMethod::Api =>
        {
            n.appservice_args(spec.port).map(|args| {
                spec.command.args(args);
                n.appservice_token.clone()
            })
        }
        _ => None,
    };
    let server = boot(spec).await?;
    let client = api_client(&server.base_url(), Duration::from_secs(120), "client")?;
    let as_token = match inst {
        Instance::Synapse(i) => i.appservice_token(),
        Instance::Native(_) => native_appservice,
    };
    if let (Instance::Native(_), Some(t)) = (inst, as_token.as_deref())
        && let Err(e) = wait_for_appservice(&client, t, Duration::from_secs(60)).await
    {
        let s = server.stop(scenario.boot.shutdown_timeout, &run_dir).await;
        ctx.result.seed_boot = Some(s);
        return Err(workload_error(
            "application service registration (the profile's launch.appservice; see seed.log)",
        )(e));
    }
    let registrar = registrar_for(inst, scenario.dataset.registration, as_token.as_deref());
    let shutdown = scenario.boot.shutdown_timeout;
    let mut server = Some(server);
    let (creds, report) = if scenario.dataset.load == LoadMethod::Direct {
        let s = server.take().expect("running");
        import_and_check(ctx, inst, plan, profile, s).await?
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
    if let (Some(_), Instance::Synapse(i)) = (&server, inst) {
        settle_push_bookkeeping(ctx, i).await;
    }
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
        files: Vec::new(),
    };
    if !snapshot {
        if let Some(d) = ctx.result.dataset.as_mut() {
            d.load = Some(report);
        }
        // Built without durability: the timed boots get the defaults back.
        if let Some(c) = pg {
            let port = c.port;
            c.stop().await;
            c.start(port, &run_dir.join("postgres.log")).await?;
        }
        ctx.save()?;
        return Ok(creds);
    }
    save_fixture(ctx, inst, &creds, manifest, report, counts, pg).await?;
    ctx.save()?;
    Ok(creds)
}

/// How the load registers users: through the application service where there is one (on a
/// native server, except the users who go online, who need a password), else with a
/// registration token or a password.
fn registrar_for<'a>(
    inst: &'a Instance,
    registration: Registration,
    as_token: Option<&'a str>,
) -> Registrar<'a> {
    match (inst, registration, as_token) {
        (Instance::Native(n), _, as_token) => {
            let token = match n.launch.registration {
                ProfileRegistration::Token => Some(n.registration_token.as_str()),
                ProfileRegistration::Password => None,
            };
            match (as_token, token) {
                (Some(appservice), token) => {
                    Registrar::AppserviceExceptOnline { appservice, token }
                }
                (None, Some(t)) => Registrar::Token(t),
                (None, None) => Registrar::Password,
            }
        }
        (_, Registration::Appservice, Some(t)) => Registrar::Appservice(t),
        _ => Registrar::Password,
    }
}

/// A direct import: Synapse has created its schema and signing key; it is stopped while its
/// database is written, then it boots again and its own API checks the result.
async fn import_and_check(
    ctx: &mut Ctx<'_>,
    inst: &Instance,
    plan: &DatasetPlan,
    profile: &ServerProfile,
    s: RunningServer,
) -> Result<(Credentials, LoadReport), RunError> {
    let scenario = ctx.scenario;
    let run_dir = ctx.run_dir.clone();
    let shutdown = scenario.boot.shutdown_timeout;
    let stopped = s.stop(shutdown, &run_dir).await;
    let updates_done = stopped
        .background
        .as_ref()
        .is_some_and(|b| b.source == "marker");
    ctx.result.seed_boot = Some(stopped);
    if !updates_done {
        eprintln!(
            "WARNING: the schema boot's background updates did not finish within {} s \
             (seed.log); those left run over the imported rows at every boot of this fixture",
            SCHEMA_BACKGROUND_LIMIT.as_secs()
        );
    }
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
    Ok((creds, report))
}

/// Snapshot the built dataset as a fixture (PostgreSQL's data directory copied with the cluster
/// stopped, then it starts again), recorded in the result.
async fn save_fixture(
    ctx: &mut Ctx<'_>,
    inst: &Instance,
    creds: &Credentials,
    manifest: FixtureManifest,
    report: LoadReport,
    counts: BTreeMap<String, Option<u64>>,
    mut pg: Option<&mut PgCluster>,
) -> Result<(), RunError> {
    let run_dir = ctx.run_dir.clone();
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
            restore_method: None,
            table_counts: counts,
        });
    }
    Ok(())
}

/// Longest wait for Synapse to fold the loaded receipts into its notification summaries (it
/// does so every 30 s).
const SETTLE_LIMIT: Duration = Duration::from_secs(150);

/// Waits until Synapse has folded every receipt and push action of the load into its
/// notification summaries, so that the fixture's unread counts are right from the first
/// request after any boot (saved earlier, each boot would answer stale counts until the
/// server's 30-second rotation ran). A database that cannot be read, or a wait past
/// [`SETTLE_LIMIT`], is reported and the fixture saved as it is.
async fn settle_push_bookkeeping(
    ctx: &mut Ctx<'_>,
    inst: &crate::server::synapse::SynapseInstance,
) {
    let t = Instant::now();
    loop {
        let i = inst.clone();
        let state = tokio::task::spawn_blocking(move || i.push_bookkeeping())
            .await
            .expect("bookkeeping task");
        match state {
            Ok(b) if b.caught_up() => {
                ctx.say(&format!(
                    "dataset: Synapse's notification counts caught up with the load (receipts to stream id {}, events to stream ordering {}) {:.1} s after it",
                    b.receipts_newest,
                    b.events_newest,
                    t.elapsed().as_secs_f64()
                ));
                return;
            }
            Ok(b) if t.elapsed() > SETTLE_LIMIT => {
                eprintln!(
                    "WARNING: after {} s Synapse had folded receipts up to {} of {} and events up to {} of {} into its notification counts; the fixture's unread counts are stale until its next rotation",
                    SETTLE_LIMIT.as_secs(),
                    b.receipts_folded,
                    b.receipts_newest,
                    b.events_folded,
                    b.events_newest
                );
                return;
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("WARNING: could not read Synapse's notification bookkeeping: {e}");
                return;
            }
        }
        if crate::util::interrupt::pending().is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A client of the server under test; a failure to build one fails `workload`.
pub(super) fn api_client(
    base_url: &str,
    timeout: Duration,
    workload: &str,
) -> Result<MatrixClient, RunError> {
    MatrixClient::new(base_url, timeout).map_err(workload_error(workload))
}

/// Say what a check of the dataset through the API found, keep it in the result, and fail the
/// step (`verify` or `import-check`) on any mismatch with the plan.
pub(super) fn record_verify(
    ctx: &mut Ctx<'_>,
    step: &str,
    report: crate::dataset::verify::VerifyReport,
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
pub(super) async fn direct_import(
    ctx: &mut Ctx<'_>,
    inst: &Instance,
    plan: &DatasetPlan,
) -> Result<(Credentials, crate::dataset::seed::LoadReport), RunError> {
    let Instance::Synapse(syn) = inst else {
        unreachable!("the scenario refuses a direct load for other servers")
    };
    let data = syn.data_dir.clone();
    let key = data.join(format!("{SERVER_NAME}.signing.key"));
    let db = data.join("homeserver.db");
    let pg = syn.db.conninfo();
    let (plan2, show) = (plan.clone(), !ctx.opts.quiet);
    let (creds, report) = tokio::task::spawn_blocking(move || match pg {
        Some((conninfo, target)) => crate::dataset::import::import_postgres(
            &conninfo,
            &target,
            &key,
            SERVER_NAME,
            &plan2,
            show,
        ),
        None => crate::dataset::import::import_sqlite(&db, &key, SERVER_NAME, &plan2, show),
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
