//! Profilers during a run: resolving the tool, profiled boots, and recordings during workloads.

use super::ctx::Ctx;
use super::error::RunError;
use super::spec::boot_spec;
use super::spec::report_boot;
use super::target::Target;
use crate::boot::{Wrapper, boot};
use crate::profile::PROFILE_DIR;
use crate::profile::{
    Attached, AttachedSlicing, BootSlicing, LoadProfile, ProfileResult, ProfiledBoot,
    ProfilerError, Tool, ToolKind, has_symbol_table, process_cpu_s, stripped_note,
};
use crate::scenario::ProfilerChoice;
use crate::server::Instance;
use crate::server::profile::NativeProfiler;
use std::path::PathBuf;
use std::time::Duration;

/// The profiler the scenario asks for, installed or found; `None` when profiling is off or the
/// profiler is unavailable (then the result says why, and the run goes on without profiles).
pub(super) async fn resolve_profiler(ctx: &mut Ctx<'_>, inst: &Instance) -> Option<Tool> {
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
        note: None,
        boots: Vec::new(),
        load: Vec::new(),
    };
    let tool = match found {
        Ok(t) => {
            ctx.say(&format!(
                "profiler: {} {} at {} Hz",
                t.kind.name(),
                t.version,
                spec.rate_hz
            ));
            if let (ToolKind::Perf, Instance::Native(n)) = (t.kind, inst) {
                let binary = n.install.binary.clone();
                let symbols = tokio::task::spawn_blocking({
                    let b = binary.clone();
                    move || has_symbol_table(&b)
                })
                .await
                .expect("symbol table task");
                if symbols == Some(false) {
                    let note = stripped_note(&binary);
                    eprintln!("WARNING: {note}");
                    result.note = Some(note);
                }
            }
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
pub(super) async fn profiled_boot(
    ctx: &mut Ctx<'_>,
    t: &Target,
    tool: &Tool,
    probe_token: &str,
    i: u32,
) -> Result<(), RunError> {
    let Target {
        inst, profile, db, ..
    } = t;
    let scenario = ctx.scenario;
    let run_dir = ctx.run_dir.clone();
    let label = format!("profile-{i}");
    ctx.say(&format!("{label}: boot under {}", tool.kind.name()));
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
    let mut spec = t.confined(boot_spec(
        inst,
        profile,
        &run_dir,
        &label,
        Some(probe_token.to_string()),
        scenario,
        &db.pgids(),
    )?);
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
pub(super) struct LoadRecording {
    workload: String,
    tool: Tool,
    server_pid: i32,
    attached: Result<Attached, String>,
    raw: PathBuf,
    server_cpu_start: Option<f64>,
    started_ms: f64,
}

/// How long an attaching profiler gets to start sampling before the workload starts.
pub(super) const ATTACH_SETTLE: Duration = Duration::from_millis(500);

pub(super) async fn start_load_profile(
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

pub(super) fn finish_load_profile(ctx: &mut Ctx<'_>, rec: LoadRecording) -> Result<(), RunError> {
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
        Err(e) => lp.error = Some(e),
        Ok(Err(ProfilerError::Data { source, .. })) => lp.error = Some(source.to_string()),
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
