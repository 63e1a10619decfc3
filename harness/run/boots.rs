//! The measured boots: their specs, the fixture restored before each, their records and
//! waterfalls.

use super::crash::crash_restarts;
use super::ctx::Ctx;
use super::ctx::finish_files;
use super::db::switch_statement_log;
use super::error::RunError;
use super::profiling::{profiled_boot, resolve_profiler};
use super::spec::{boot_spec, per_boot_fixture, report_boot, restore_before_boot, write_waterfall};
use super::target::Target;
use super::work;
use super::workloads::workloads;
use crate::boot::summary::summarize_boots;
use crate::boot::{BootRecord, boot};
use crate::scenario::CacheMode;

/// Timed boots, then verification and workloads, over a ready dataset.
pub(super) async fn measure(ctx: &mut Ctx<'_>, t: &Target) -> Result<(), RunError> {
    let Target {
        inst,
        creds,
        plan,
        profile,
        db,
        ..
    } = t;
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
        let mut spec = t.confined(boot_spec(
            inst,
            profile,
            &run_dir,
            &label,
            Some(probe_token.clone()),
            scenario,
            &db.pgids(),
        )?);
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
        work::metered_boots(ctx, t).await?;
    }

    // 3b. Profiled boots: extra boots under the profiler, compared with the timed ones.
    let tool = resolve_profiler(ctx, inst).await;
    if let Some(tool) = &tool
        && scenario.profile.boot
    {
        for i in 1..=scenario.profile.boot_runs {
            let _turn = ctx.turn().await;
            restore_before_boot(ctx, inst, per_boot.as_ref()).await?;
            profiled_boot(ctx, t, tool, &probe_token, i).await?;
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
        crash_restarts(ctx, t, &probe_token).await?;
        return finish_files(ctx);
    }
    restore_before_boot(ctx, inst, per_boot.as_ref()).await?;
    let spec = t.confined(boot_spec(
        inst,
        profile,
        &run_dir,
        "workload",
        Some(probe_token.clone()),
        scenario,
        &db.pgids(),
    )?);
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
    crash_restarts(ctx, t, &probe_token).await?;
    finish_files(ctx)
}
