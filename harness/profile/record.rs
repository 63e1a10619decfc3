//! What a run records about its profiles (`result.json` → `profile`), and the slicing of a boot or a workload into them.

use super::flamegraph::{render, write_pair};
use super::folded::Folded;
use super::perf::PerfSamples;
use super::pyspy::Timeline;
use super::tool::{AttachReport, ProfilerError, Tool, ToolKind, io_err};
use std::path::Path;

/// Profiles of one run (`result.json` → `profile`).
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct ProfileResult {
    pub tool: Option<Tool>,
    /// Why nothing was profiled (the profiler is missing or refused), said loudly in the summary.
    pub unavailable: Option<String>,
    pub rate_hz: u32,
    /// What limits these profiles though they were taken (a stripped server binary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub boots: Vec<ProfiledBoot>,
    pub load: Vec<LoadProfile>,
}

/// One flamegraph (and its folded stacks) of a window of time.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct FlameFile {
    /// `boot` (spawn to ready), a phase name, or a workload name.
    pub scope: String,
    pub from_ms: f64,
    pub to_ms: f64,
    /// Files relative to the run directory; `None` when the window was not rendered.
    pub svg: Option<String>,
    pub folded: Option<String>,
    /// Sum of the folded weights, in `unit`.
    pub total: u64,
    /// `samples` (on-CPU) or `µs` (wall-clock, all threads).
    pub unit: String,
    /// Weight of the stacks of waiting threads left out (wall-clock profiles), in `unit`.
    #[serde(default)]
    pub idle: u64,
    /// Why the window has no flamegraph (too short for the sampling rate, no samples).
    pub note: Option<String>,
}

/// A boot run under the profiler, beside (never among) the timed boots.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct ProfiledBoot {
    pub boot: crate::boot::BootRecord,
    pub mode: String,
    /// Raw profiler output, relative to the run directory.
    pub raw: String,
    pub flamegraphs: Vec<FlameFile>,
    /// CPU seconds the profiler used up to ready.
    pub profiler_cpu_s: Option<f64>,
    pub overhead: Option<Overhead>,
    /// Why the boot has no flamegraphs.
    pub error: Option<String>,
}

/// The same boot with and without the profiler: the cost of looking.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct Overhead {
    /// Median of the unprofiled warm timed boots (the baseline).
    pub baseline_boots: u32,
    pub time_to_ready_ms: Change,
    /// Server CPU to ready (the profiler's own CPU taken out of the group's).
    pub server_cpu_to_ready_s: Option<Change>,
    pub phases: Vec<NamedChange>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
pub struct Change {
    pub without: f64,
    pub with: f64,
}

impl Change {
    /// `with / without − 1`, as a share.
    pub fn relative(&self) -> Option<f64> {
        (self.without > 0.0).then(|| self.with / self.without - 1.0)
    }
}

#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct NamedChange {
    pub name: String,
    pub change: Change,
}

/// The server profiled while a workload ran.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct LoadProfile {
    pub workload: String,
    pub mode: String,
    pub flamegraph: Option<FlameFile>,
    pub report: Option<AttachReport>,
    /// Server CPU seconds during the recording (for the profiler's share).
    pub server_cpu_s: Option<f64>,
    pub error: Option<String>,
}

/// Compare a profiled boot with the summary of the unprofiled ones.
pub fn overhead(
    profiled: &crate::boot::BootRecord,
    profiler_cpu_s: Option<f64>,
    baseline: &crate::boot::summary::BootSummary,
) -> Option<Overhead> {
    let ttr = baseline.time_to_ready_ms.as_ref()?;
    let phases = baseline
        .phases
        .iter()
        .filter_map(|p| {
            let without = p.stat.as_ref()?.median;
            let with = profiled
                .phases
                .iter()
                .find(|q| q.name == p.name)?
                .duration_ms?;
            Some(NamedChange {
                name: p.name.clone(),
                change: Change { without, with },
            })
        })
        .collect();
    let server_cpu_to_ready_s = baseline.cpu_seconds_to_ready.as_ref().map(|c| Change {
        without: c.median,
        with: (profiled.resources_to_ready.cpu_user_s + profiled.resources_to_ready.cpu_sys_s
            - profiler_cpu_s.unwrap_or(0.0))
        .max(0.0),
    });
    Some(Overhead {
        baseline_boots: baseline.boots,
        time_to_ready_ms: Change {
            without: ttr.median,
            with: profiled.time_to_ready_ms,
        },
        server_cpu_to_ready_s,
        phases,
    })
}

/// Everything needed to cut one profiled boot into flamegraphs.
pub struct BootSlicing<'a> {
    pub tool: &'a Tool,
    pub rate_hz: u32,
    pub boot: &'a crate::boot::BootRecord,
    /// The profiler's raw output.
    pub raw: &'a Path,
    pub run_dir: &'a Path,
    /// Directory (relative to the run directory) that receives the files.
    pub subdir: &'a str,
    /// `Synapse 1.163.2 · smoke`: the start of every title.
    pub title: &'a str,
    /// Leaf frames of waiting threads (the server profile's `[profiling] idle_frames`), left
    /// out of wall-clock flamegraphs.
    pub idle_frames: &'a [String],
}

impl BootSlicing<'_> {
    /// One flamegraph from spawn to ready, and one per phase that spans at least two sample
    /// intervals (a shorter phase has at most one sample: a picture of it would be noise).
    /// Blocking.
    pub fn render(&self) -> Result<Vec<FlameFile>, ProfilerError> {
        let ready = self.boot.time_to_ready_ms;
        let mut windows = vec![("boot".to_string(), 0.0, ready)];
        for p in &self.boot.phases {
            if let (Some(a), Some(b)) = (p.start_ms, p.end_ms) {
                windows.push((p.name.clone(), a, b));
            }
        }
        let min_ms = 2000.0 / self.rate_hz as f64;
        let label = &self.boot.label;
        let source: Box<dyn Fn(f64, f64) -> Folded> = match self.tool.kind {
            ToolKind::PySpy => {
                let tl = Timeline::from_chrometrace(self.raw)?;
                // py-spy's stamps count from when it spawned the server (its recorder is made
                // right after the spawn), which hsbench saw as `server_spawned`.
                let offset = self
                    .boot
                    .points
                    .get("server_spawned")
                    .copied()
                    .unwrap_or(0.0);
                Box::new(move |a: f64, b: f64| {
                    let us = |ms: f64| ((ms - offset).max(0.0) * 1000.0) as u64;
                    tl.window(us(a), us(b))
                })
            }
            ToolKind::Perf => {
                let ps = PerfSamples::from_recording(self.tool, self.raw)?;
                let t0 = self.boot.spawn_monotonic_s;
                Box::new(move |a: f64, b: f64| ps.window(t0 + a / 1000.0, t0 + b / 1000.0))
            }
        };
        let (unit, how) = match self.tool.kind {
            ToolKind::PySpy => ("µs", "wall-clock, all threads"),
            ToolKind::Perf => ("samples", "on-CPU"),
        };
        let mut files = Vec::new();
        for (scope, a, b) in windows {
            let mut f = FlameFile {
                scope: scope.clone(),
                from_ms: a,
                to_ms: b,
                svg: None,
                folded: None,
                total: 0,
                idle: 0,
                unit: unit.to_string(),
                note: None,
            };
            if b - a < min_ms {
                f.note = Some(format!(
                    "{:.0} ms: shorter than two sample intervals at {} Hz",
                    b - a,
                    self.rate_hz
                ));
                files.push(f);
                continue;
            }
            let mut folded = source(a, b);
            let idle = if self.tool.kind == ToolKind::PySpy {
                folded.remove_idle(self.idle_frames)
            } else {
                0
            };
            f.total = folded.total();
            f.idle = idle;
            if folded.is_empty() {
                f.note = Some("no samples in this window".into());
                files.push(f);
                continue;
            }
            let name = format!("{label}.{scope}");
            let title = format!("{} · {label} · {scope}", self.title);
            let idle_note = if idle > 0 {
                format!(
                    " · {:.0}% of thread time idle (waiting), not shown",
                    100.0 * idle as f64 / (idle + f.total) as f64
                )
            } else {
                String::new()
            };
            let subtitle = format!(
                "{:.0}–{:.0} ms after spawn · ~{} samples at {} Hz · {how}{idle_note}",
                a,
                b,
                ((b - a) / 1000.0 * self.rate_hz as f64).round(),
                self.rate_hz
            );
            let svg = render(&folded, &title, &subtitle, unit);
            let dir = self.run_dir.join(self.subdir);
            write_pair(&dir, &name, &folded, &svg)?;
            f.svg = Some(format!("{}/{name}.svg", self.subdir));
            f.folded = Some(format!("{}/{name}.folded", self.subdir));
            files.push(f);
        }
        Ok(files)
    }
}

/// Everything needed to render one attached recording.
pub struct AttachedSlicing<'a> {
    pub tool: &'a Tool,
    pub rate_hz: u32,
    /// The profiler's raw output (py-spy folded text, or perf data).
    pub raw: &'a Path,
    pub run_dir: &'a Path,
    pub subdir: &'a str,
    /// The workload's name.
    pub scope: &'a str,
    pub title: &'a str,
    /// When the recording ran, ms since the run started.
    pub window_ms: (f64, f64),
}

impl AttachedSlicing<'_> {
    /// Fold the recording and render it. Blocking.
    pub fn render(&self) -> Result<FlameFile, ProfilerError> {
        let Self {
            tool,
            rate_hz,
            raw,
            run_dir,
            subdir,
            scope,
            title,
            window_ms,
        } = *self;
        let folded = match tool.kind {
            ToolKind::PySpy => Folded::parse(&std::fs::read_to_string(raw).map_err(io_err(raw))?),
            ToolKind::Perf => PerfSamples::from_recording(tool, raw)?.window(f64::MIN, f64::MAX),
        };
        let mut f = FlameFile {
            scope: scope.to_string(),
            from_ms: window_ms.0,
            to_ms: window_ms.1,
            svg: None,
            folded: None,
            total: folded.total(),
            idle: 0,
            unit: "samples".into(),
            note: None,
        };
        if folded.is_empty() {
            f.note = Some("no samples (the server was idle or the profiler failed)".into());
            return Ok(f);
        }
        let name = format!("load.{scope}");
        let subtitle = format!(
            "{} samples at {rate_hz} Hz · {}",
            folded.total(),
            tool.attach_mode()
        );
        let svg = render(
            &folded,
            &format!("{title} · {scope} (load)"),
            &subtitle,
            "samples",
        );
        write_pair(&run_dir.join(subdir), &name, &folded, &svg)?;
        f.svg = Some(format!("{subdir}/{name}.svg"));
        f.folded = Some(format!("{subdir}/{name}.folded"));
        Ok(f)
    }
}
