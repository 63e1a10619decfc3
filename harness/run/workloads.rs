//! The workloads of a run, in file order: each run by one function, its files written, its
//! result kept.

use super::ctx::Ctx;
use super::ctx::Mode;
use super::dataset::{api_client, record_verify};
use super::error::RunError;
use super::error::{output_error, workload_error};
use super::profiling::{finish_load_profile, start_load_profile};
use crate::dataset::plan::DatasetPlan;
use crate::dataset::seed::Credentials;
use crate::dataset::verify::verify;
use crate::load::herd::{HerdHistograms, HerdResult, run_herd_at};
use crate::metrics::write_histogram;
use crate::profile::Tool;
use crate::scenario::Workload;
use std::time::Duration;

/// Write a herd's histograms and interval log.
pub(super) fn write_herd_files(
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
            "hsbench herd: {} clients, {} {:?} sync",
            result.clients,
            result.protocol.name(),
            result.sync
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
pub(super) fn write_workload_files(
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

/// The users a workload runs with (tokens and ids, in the same order), and its shard. A sharded
/// steady, triggered or catch-up workload slices its clients itself and may act as any user (a
/// sender, the trigger, the backlog's writer): it gets every user, and the common release time
/// its schedule and message numbers count from.
pub(super) fn shard_part(
    ctx: &Ctx<'_>,
    creds: &Credentials,
    workload: &str,
) -> Result<(Credentials, Option<crate::load::workload::ShardRun>), RunError> {
    match &ctx.mode {
        Mode::Attach(a) if a.shard.count > 1 => {
            let release_at = a.release_at.ok_or_else(|| {
                workload_error(workload)(format!(
                    "a sharded {workload} needs --release-at (or HSBENCH_RELEASE_AT): every shard's schedule and message numbers count from it"
                ))
            })?;
            Ok((
                a.credentials.clone(),
                Some(crate::load::workload::ShardRun {
                    shard: a.shard,
                    release_at,
                }),
            ))
        }
        _ => Ok((creds.clone(), None)),
    }
}

/// Verification (with `--verify`) and the workloads in the scenario's order, against a running
/// server. Each workload's results are saved as soon as it ends.
pub(super) async fn workloads(
    ctx: &mut Ctx<'_>,
    base_url: &str,
    plan: &DatasetPlan,
    creds: &Credentials,
    profiler: Option<(&Tool, i32)>,
    server_groups: &[i32],
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
        let before =
            (!server_groups.is_empty()).then(|| crate::metrics::sample_groups(server_groups, 0.0));
        let outcome = run_workload(ctx, workload, base_url, plan, creds).await;
        if let Some(b) = before {
            let a = crate::metrics::sample_groups(server_groups, 0.0);
            ctx.result
                .server_load
                .push(crate::result::WorkloadServerLoad {
                    workload: name.to_string(),
                    cpu_s: ((a.cpu_user_s + a.cpu_sys_s) - (b.cpu_user_s + b.cpu_sys_s)).max(0.0),
                    read_bytes: a.read_bytes.saturating_sub(b.read_bytes),
                    write_bytes: a.write_bytes.saturating_sub(b.write_bytes),
                    rss_after_bytes: a.rss_bytes,
                });
        }
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
pub(super) async fn run_workload(
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
                "herd: {} clients, {}",
                herd.clients,
                match herd.protocol {
                    crate::scenario::SyncProtocol::V2 => format!("{:?} /sync", herd.sync),
                    crate::scenario::SyncProtocol::Sliding =>
                        "sliding sync room lists (MSC4186)".to_string(),
                }
            ));
            let release_at = match &ctx.mode {
                Mode::Attach(a) => a.release_at,
                _ => None,
            };
            let (result, hists) =
                run_herd_at(base_url, &creds.tokens, &creds.user_ids, herd, release_at)
                    .await
                    .map_err(workload_error(name))?;
            let w = write_herd_files(ctx, &result, &hists);
            ctx.result.herd = Some(result);
            w
        }
        Workload::Triggered(t) => {
            ctx.say(&format!(
                "triggered herd: {} {} long-poll clients, {}/s chatter, trigger after {}, then {}, watching {}",
                t.clients,
                t.protocol.name(),
                t.chatter_rate,
                humantime::format_duration(t.baseline),
                t.reaction.describe(),
                humantime::format_duration(t.observe)
            ));
            let big = big_room()?;
            let (users, shard) = shard_part(ctx, creds, name)?;
            let (result, data) = crate::load::triggered::run_triggered(
                base_url,
                &users.tokens,
                &users.user_ids,
                big,
                t,
                shard,
            )
            .await
            .map_err(workload_error(name))?;
            let w = write_workload_files(ctx, name, &data);
            ctx.say(&format!(
                "  recovery: {}; peak {} re-syncs in flight; {} of {} deliveries{}",
                result
                    .recovery
                    .time_to_recover_s
                    .map_or("not recovered".into(), |s| format!("{s:.1} s")),
                result.peak_concurrent_resyncs,
                result.deliveries.delivered,
                result.deliveries.expected,
                gaps_said(&result.deliveries)
            ));
            ctx.result.triggered = Some(result);
            w
        }
        Workload::Steady(t) => {
            ctx.say(&format!(
                "steady: {} {} long-poll clients, {} senders, {} for {}",
                t.clients,
                t.protocol.name(),
                t.senders,
                t.arrivals,
                humantime::format_duration(t.duration)
            ));
            let (users, shard) = shard_part(ctx, creds, name)?;
            let (result, data) = crate::load::steady::run_steady(
                base_url,
                &users.tokens,
                &users.user_ids,
                &creds.room_ids,
                plan,
                t,
                shard,
            )
            .await
            .map_err(workload_error(name))?;
            let w = write_workload_files(ctx, name, &data);
            let d = &result.deliveries;
            ctx.say(&format!(
                "  {} messages accepted of {} sent, delivery p50 {} p99 {}, {} of {} deliveries{}",
                d.messages,
                result
                    .endpoints
                    .iter()
                    .find(|e| e.name == "send")
                    .map_or(0, |e| e.started),
                crate::report::lat(&d.latency, d.latency.p50_ms),
                crate::report::lat(&d.latency, d.latency.p99_ms),
                d.delivered,
                d.expected,
                gaps_said(d)
            ));
            ctx.result.steady = Some(result);
            w
        }
        Workload::Catchup(t) => {
            ctx.say(&format!(
                "catch-up: {} readers, {} unread messages each, {} per page, over {}",
                t.readers,
                t.backlog,
                t.page,
                t.protocol.name()
            ));
            let big = big_room()?;
            let (users, shard) = shard_part(ctx, creds, name)?;
            let (result, data) = crate::load::catchup::run_catchup(
                base_url,
                &users.tokens,
                &users.user_ids,
                big,
                t,
                shard,
            )
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

/// The console's note of the gaps receivers paged back through (nothing without gaps).
fn gaps_said(d: &crate::load::engine::DeliveryResult) -> String {
    if d.gaps == 0 {
        return String::new();
    }
    format!(
        " ({} found by paging back through {} gaps)",
        d.backfilled, d.gaps
    )
}
