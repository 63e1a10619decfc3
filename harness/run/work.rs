//! Boots under the work meter (`[boot] meter = "work"` or `"both"`): each counts the server's
//! instructions per phase under callgrind (see [`crate::meter`]).

use std::sync::Arc;

use super::{Ctx, DbProcesses, RunError, boot_spec, restore_before_boot};
use crate::boot::{BootRecord, boot};
use crate::dataset::fixture::Fixture;
use crate::meter::{MarkKind, Meter, MeterRecord, TIMEOUT_FACTOR, read_boot};
use crate::scenario::DatabaseKind;
use crate::server::{Instance, ServerProfile};
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
pub(super) async fn metered_boots(
    ctx: &mut Ctx<'_>,
    inst: &Instance,
    profile: &ServerProfile,
    db: &DbProcesses,
) -> Result<(), RunError> {
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
    let keep = std::env::var_os("HSBENCH_KEEP_CALLGRIND").is_some();
    for i in 1..=scenario.boot.repeats {
        let turn = ctx.turn().await;
        let label = format!("work-{i}");
        ctx.say(&format!(
            "{label} ({i}/{}) under the work meter",
            scenario.boot.repeats
        ));
        let restore_seconds = restore_before_boot(ctx, inst, fixture.as_ref()).await?;
        let mut spec = boot_spec(inst, profile, &run_dir, &label, None, scenario, &db.pgids())?;
        spec.timeout = scenario.boot.timeout * TIMEOUT_FACTOR;
        let prefix = dir.join(format!("{label}.callgrind"));
        crate::meter::remove_output(&prefix);
        spec.command = meter.wrap(&spec.command, &prefix, &markers);
        if marks == MarkKind::External {
            let m = meter.clone();
            spec.on_marker = Some(Arc::new(move |pid, name| m.mark_external(pid, name)));
        }
        let server = boot(spec).await?;
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
        let work =
            tokio::task::spawn_blocking(move || read_boot(&p, marks, &ph, &ready_markers, keep))
                .await
                .expect("callgrind read task")?;
        ctx.say(&format!(
            "  {} instructions to {} (ready in {} under the meter)",
            crate::metrics::catalogue::Unit::Instructions.format(work.to_ready.unwrap_or(0) as f64),
            work.to_ready_marker.as_deref().unwrap_or("no marker"),
            fmt_ms(rec.time_to_ready_ms),
        ));
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
