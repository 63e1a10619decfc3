//! Boots under the work meter (`[boot] meter = "work"` or `"both"`): each counts the server's
//! instructions per phase under callgrind (see [`crate::meter`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::ctx::Ctx;
use super::error::RunError;
use super::spec::boot_spec;
use super::spec::restore_before_boot;
use super::target::Target;
use crate::boot::{BootRecord, boot};
use crate::dataset::fixture::Fixture;
use crate::meter::{
    DbCounts, DbWork, MarkKind, Meter, MeterRecord, TIMEOUT_FACTOR, TOP_STATEMENTS, read_boot,
};
use crate::scenario::DatabaseKind;
use crate::server::Instance;
use crate::server::postgres::PG_DATABASE;
use crate::stats::spread::median;
use crate::util::fmt::fmt_ms;

/// Where the metered boots' callgrind output goes, in the run directory.
pub const WORK_DIR: &str = "work";

/// Why the meter does not read hardware counters here.
fn why_not_perf() -> String {
    "callgrind counts the same instructions on any x86-64 machine, with or without hardware \
     counters (most CI virtual machines expose none: perf stat prints <not supported>); \
     perf stat's instructions:u would be faster where they exist, but counts interrupts and \
     frequency effects callgrind does not"
        .into()
}

/// The fixture each metered boot restores from: the same data before every count (not on
/// PostgreSQL, whose data lives in the cluster, nor without a fixture).
fn metered_fixture(ctx: &Ctx<'_>) -> Option<Fixture> {
    if ctx.scenario.server.database == DatabaseKind::Postgres {
        return None;
    }
    let key = ctx
        .result
        .dataset
        .as_ref()
        .and_then(|d| d.fixture.as_ref())
        .map(|f| f.key.clone())?;
    ctx.opts.fixtures.get(&key)
}

/// `repeats` boots under callgrind, each restored from the fixture first; their counts go to
/// `result.work_boots`, the meter's record to `result.meter`.
pub(super) async fn metered_boots(ctx: &mut Ctx<'_>, t: &Target) -> Result<(), RunError> {
    let Target {
        inst, profile, db, ..
    } = t;
    let scenario = ctx.scenario;
    let run_dir = ctx.run_dir.clone();
    let marks = match inst {
        Instance::Synapse(_) => MarkKind::InProcess,
        Instance::Native(_) => MarkKind::External,
    };
    let meter = tokio::task::spawn_blocking(move || Meter::find(marks))
        .await
        .expect("meter lookup task")?;
    ctx.say(&format!(
        "work meter: callgrind ({}), {} marks, timeouts ×{TIMEOUT_FACTOR}",
        meter.version,
        match marks {
            MarkKind::InProcess => "in-process",
            MarkKind::External => "external",
        }
    ));
    let dir = run_dir.join(WORK_DIR);
    std::fs::create_dir_all(&dir).map_err(|source| RunError::Output {
        path: dir.clone(),
        source,
    })?;
    let markers: Vec<(String, String)> = profile
        .markers
        .iter()
        .map(|m| (m.name.clone(), m.regex.as_str().to_string()))
        .collect();
    let phases: Vec<(String, String, String)> = profile
        .phases
        .iter()
        .map(|p| (p.name.clone(), p.from.clone(), p.to.clone()))
        .collect();
    let fixture = metered_fixture(ctx);
    // A private PostgreSQL cluster counts its own work per statement during these boots.
    let counter = db.count_statements().await?;
    if counter.is_some() {
        ctx.say(
            "work meter: the private PostgreSQL cluster counts its statements \
             (pg_stat_statements: calls, rows, shared blocks hit + read)",
        );
    }
    let keep = std::env::var_os("HSBENCH_KEEP_CALLGRIND").is_some();
    for i in 1..=scenario.boot.repeats {
        let turn = ctx.turn().await;
        let label = format!("work-{i}");
        ctx.say(&format!(
            "{label} ({i}/{}) under the work meter",
            scenario.boot.repeats
        ));
        let restore_seconds = restore_before_boot(ctx, inst, fixture.as_ref()).await?;
        let mut spec = t.confined(boot_spec(
            inst,
            profile,
            &run_dir,
            &label,
            None,
            scenario,
            &db.pgids(),
        )?);
        spec.timeout = scenario.boot.timeout * TIMEOUT_FACTOR;
        let prefix = dir.join(format!("{label}.callgrind"));
        crate::meter::remove_output(&prefix);
        spec.command = meter.wrap(&spec.command, &prefix, &markers);
        let db_reads: Arc<Mutex<BTreeMap<String, DbCounts>>> = Default::default();
        if let Some(c) = &counter {
            let c = c.clone();
            tokio::task::spawn_blocking(move || {
                c.settle(PG_DATABASE)?;
                c.reset()
            })
            .await
            .expect("pg_stat_statements reset task")?;
        }
        let external = (marks == MarkKind::External).then(|| meter.clone());
        if external.is_some() || counter.is_some() {
            let (c, reads) = (counter.clone(), db_reads.clone());
            spec.on_marker = Some(Arc::new(move |pid, name| {
                if let Some(m) = &external {
                    m.mark_external(pid, name);
                }
                // Read on the log reader's thread, before it reads on: a psql round trip.
                if let Some(c) = &c
                    && let Ok(n) = c.totals(PG_DATABASE)
                {
                    reads
                        .lock()
                        .expect("db reads")
                        .entry(name.to_string())
                        .or_insert(n);
                }
            }));
        }
        let server = boot(spec).await?;
        let at_ready = match &counter {
            Some(c) => {
                let c = c.clone();
                Some(
                    tokio::task::spawn_blocking(move || {
                        Ok::<_, crate::server::ServerError>((
                            c.totals(PG_DATABASE)?,
                            c.top(PG_DATABASE, TOP_STATEMENTS)?,
                        ))
                    })
                    .await
                    .expect("pg_stat_statements read task")?,
                )
            }
            None => None,
        };
        // Callgrind writes its last part at exit: the shutdown gets the meter's slowdown too.
        let mut rec = server
            .stop(scenario.boot.shutdown_timeout * 10, &run_dir)
            .await;
        rec.restore_seconds = restore_seconds;
        let ready_markers: Vec<String> = profile
            .markers
            .iter()
            .filter(|m| {
                rec.points
                    .get(&m.name)
                    .is_some_and(|t| *t <= rec.time_to_ready_ms)
            })
            .map(|m| m.name.clone())
            .collect();
        let (p, ph) = (prefix.clone(), phases.clone());
        let mut work =
            tokio::task::spawn_blocking(move || read_boot(&p, marks, &ph, &ready_markers, keep))
                .await
                .expect("callgrind read task")?;
        if let Some((ready, statements)) = at_ready {
            let reads = std::mem::take(&mut *db_reads.lock().expect("db reads"));
            let dbw = DbWork::from_reads(
                reads,
                &phases,
                work.to_ready_marker.as_deref(),
                ready,
                statements,
            );
            if let Some(n) = dbw.to_ready {
                ctx.say(&format!(
                    "  PostgreSQL: {} statements, {} rows, {} blocks (hit + read) to {}",
                    n.calls,
                    n.rows,
                    n.blocks(),
                    work.to_ready_marker.as_deref().unwrap_or("ready"),
                ));
            }
            work.db = Some(dbw);
        }
        let instructions = |n: u64| crate::metrics::catalogue::Unit::Instructions.format(n as f64);
        ctx.say(&match (work.to_ready, &work.to_ready_marker) {
            (Some(n), Some(marker)) => format!(
                "  {} instructions to {marker} (ready in {} under the meter)",
                instructions(n),
                fmt_ms(rec.time_to_ready_ms),
            ),
            _ => format!(
                "  no marker was counted: {} instructions in the whole process, no work.* \
                 metric from this boot",
                instructions(work.total),
            ),
        });
        rec.work = Some(work);
        if keep {
            ctx.result
                .files
                .push(format!("{WORK_DIR}/{label}.callgrind.*"));
        }
        ctx.result.files.push(rec.log_file.clone());
        ctx.result.work_boots.push(rec);
        ctx.result.meter = Some(record(&meter, marks, ctx));
        ctx.save()?;
        drop(turn);
    }
    // The boots after these (profiled, workloads) run on the cluster's defaults again.
    if counter.is_some() {
        db.restart_with(&[]).await?;
    }
    // Without HSBENCH_KEEP_CALLGRIND the parts were read and removed: no empty directory left.
    let _ = std::fs::remove_dir(&dir);
    Ok(())
}

fn record(meter: &Meter, marks: MarkKind, ctx: &Ctx<'_>) -> MeterRecord {
    let metered: Vec<f64> = ctx
        .result
        .work_boots
        .iter()
        .map(|b: &BootRecord| b.time_to_ready_ms)
        .collect();
    let plain = ctx
        .result
        .boot_summary
        .as_ref()
        .and_then(|s| s.time_to_ready_ms.as_ref())
        .map(|s| s.median);
    MeterRecord {
        meter: "callgrind".into(),
        version: meter.version.clone(),
        marks,
        timeout_factor: TIMEOUT_FACTOR,
        slowdown: plain
            .filter(|p| *p > 0.0 && !metered.is_empty())
            .map(|p| median(&metered) / p),
        why_not_perf: why_not_perf(),
    }
}
