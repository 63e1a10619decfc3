//! Profiling the server under test: py-spy for Python servers (Synapse), `perf` for native ones;
//! stacks folded per boot phase; flamegraphs and differential flamegraphs rendered by inferno.
//!
//! Two ways to run a profiler:
//! - **launch** (boots): the server is started *by* the profiler, so interpreter start-up and
//!   imports are in the profile. py-spy writes a Chrome trace (`--format chrometrace --idle`):
//!   every thread at every sample with the time it was taken, which is what lets hsbench cut the
//!   boot into its phases. Such profiles are **wall-clock** (idle threads included, counts in µs):
//!   a phase is wall time, so its flamegraph shows where that wall time went, waiting included.
//!   Each stack is rooted at its thread's name. perf writes samples with CLOCK_MONOTONIC stamps
//!   (`-k CLOCK_MONOTONIC`), sliced the same way (on-CPU samples).
//! - **attach** (workloads): the profiler attaches to the running server's pid. py-spy runs
//!   `--nonblocking` (it never pauses the server; stacks may rarely be torn) and writes folded
//!   on-CPU samples (`--format raw`, idle threads left out).
//!
//! Folded stacks (`frame;frame;frame count`) are the data kept next to every SVG: they merge and
//! diff; the SVG is a view of them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::util::fs::cache_dir;

/// The py-spy release hsbench installs into its tool cache.
pub const PY_SPY_VERSION: &str = "0.4.3";

#[derive(Debug, thiserror::Error)]
pub enum ProfilerError {
    #[error("profiler {tool} is unavailable: {reason}")]
    Unavailable { tool: String, reason: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Data { path: PathBuf, message: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ProfilerError + '_ {
    move |source| ProfilerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ToolKind {
    PySpy,
    Perf,
}

/// A profiler found (or installed) on this machine.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct Tool {
    pub kind: ToolKind,
    pub path: PathBuf,
    pub version: String,
}

fn output_of(cmd: &mut std::process::Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        Err(format!(
            "{:?} failed ({}): {}",
            cmd.get_program(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ))
    }
}

impl Tool {
    /// py-spy from PyPI, installed once into `<cache>/tools/py-spy-<version>/venv` (a wheel
    /// with the static binary; no compiler needed). Blocking.
    pub fn py_spy() -> Result<Self, ProfilerError> {
        let unavailable = |reason: String| ProfilerError::Unavailable {
            tool: "py-spy".into(),
            reason,
        };
        let root = cache_dir()
            .join("tools")
            .join(format!("py-spy-{PY_SPY_VERSION}"));
        std::fs::create_dir_all(&root).map_err(io_err(&root))?;
        let lock_path = root.join(".lock");
        let lock = std::fs::File::create(&lock_path).map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;
        let venv = root.join("venv");
        let bin = venv.join("bin/py-spy");
        let marker = root.join(".complete");
        if !std::fs::read_to_string(&marker).is_ok_and(|v| v.trim() == PY_SPY_VERSION) {
            let _ = std::fs::remove_dir_all(&venv);
            let python = std::env::var_os("HSBENCH_PYTHON").unwrap_or_else(|| "python3".into());
            output_of(
                std::process::Command::new(&python)
                    .args(["-m", "venv"])
                    .arg(&venv),
            )
            .map_err(unavailable)?;
            output_of(std::process::Command::new(venv.join("bin/python")).args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                &format!("py-spy=={PY_SPY_VERSION}"),
            ]))
            .map_err(unavailable)?;
            std::fs::write(&marker, PY_SPY_VERSION).map_err(io_err(&marker))?;
        }
        let version =
            output_of(std::process::Command::new(&bin).arg("--version")).map_err(unavailable)?;
        Ok(Self {
            kind: ToolKind::PySpy,
            path: bin,
            version: version.trim().trim_start_matches("py-spy ").to_string(),
        })
    }

    /// `perf` from the system (Debian: `apt-get install linux-perf`), checked by recording a
    /// trivial command: a kernel that refuses `perf_event_open` (perf_event_paranoid, seccomp
    /// in containers) is reported here, not mid-run. Blocking.
    pub fn perf() -> Result<Self, ProfilerError> {
        let unavailable = |reason: String| ProfilerError::Unavailable {
            tool: "perf".into(),
            reason,
        };
        let bin =
            std::env::var_os("HSBENCH_PERF").map_or_else(|| PathBuf::from("perf"), PathBuf::from);
        let version = output_of(std::process::Command::new(&bin).arg("--version"))
            .map_err(|e| unavailable(format!("{e} (on Debian: apt-get install linux-perf)")))?;
        let probe = tempfile::NamedTempFile::new().map_err(io_err(Path::new("/tmp")))?;
        output_of(
            std::process::Command::new(&bin)
                .args(["record", "-q", "-g", "-F", "99", "-o"])
                .arg(probe.path())
                .args(["--", "true"]),
        )
        .map_err(|e| {
            let paranoid =
                std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").unwrap_or_default();
            unavailable(format!(
                "perf record does not work here (kernel.perf_event_paranoid = {}): {e}",
                paranoid.trim()
            ))
        })?;
        Ok(Self {
            kind: ToolKind::Perf,
            path: bin,
            version: version
                .trim()
                .trim_start_matches("perf version ")
                .to_string(),
        })
    }

    /// How boots are profiled, for the result.
    pub fn launch_mode(&self) -> &'static str {
        match self.kind {
            ToolKind::PySpy => "py-spy launch, chrometrace --idle (wall-clock, all threads)",
            ToolKind::Perf => "perf record -g launch, CLOCK_MONOTONIC (on-CPU)",
        }
    }

    /// How running servers are profiled, for the result.
    pub fn attach_mode(&self) -> &'static str {
        match self.kind {
            ToolKind::PySpy => "py-spy attach --nonblocking, raw (on-CPU, idle threads excluded)",
            ToolKind::Perf => "perf record -g -p (on-CPU)",
        }
    }

    /// Prefix of the lines the profiler itself prints into the server's output stream.
    pub fn own_line_prefix(&self) -> Option<&'static str> {
        match self.kind {
            ToolKind::PySpy => Some("py-spy> "),
            ToolKind::Perf => None,
        }
    }

    /// `cmd` started under the profiler, which writes its profile to `out`. Environment and
    /// working directory are carried over; signals meant for the server go to the profiler's
    /// child (see [`crate::boot::BootSpec::wrapped`]).
    pub fn wrap_launch(
        &self,
        cmd: &std::process::Command,
        out: &Path,
        rate_hz: u32,
    ) -> std::process::Command {
        let mut w = std::process::Command::new(&self.path);
        match self.kind {
            ToolKind::PySpy => {
                w.args(["record", "--format", "chrometrace", "--idle", "--nolineno"])
                    .arg("--rate")
                    .arg(rate_hz.to_string())
                    .arg("--output")
                    .arg(out);
            }
            ToolKind::Perf => {
                w.args([
                    "record",
                    "-q",
                    "--call-graph",
                    "dwarf",
                    "-k",
                    "CLOCK_MONOTONIC",
                    "-F",
                ])
                .arg(rate_hz.to_string())
                .arg("-o")
                .arg(out);
            }
        }
        w.arg("--").arg(cmd.get_program()).args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => w.env(k, v),
                None => w.env_remove(k),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            w.current_dir(dir);
        }
        w
    }

    /// Attach to a running process; [`Attached::stop`] ends the recording.
    pub fn attach(&self, pid: i32, out: &Path, rate_hz: u32) -> Result<Attached, ProfilerError> {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(&self.path);
        match self.kind {
            ToolKind::PySpy => {
                cmd.args(["record", "--format", "raw", "--nonblocking", "--nolineno"])
                    .arg("--rate")
                    .arg(rate_hz.to_string())
                    .arg("--pid")
                    .arg(pid.to_string())
                    .arg("--output")
                    .arg(out);
            }
            ToolKind::Perf => {
                cmd.args([
                    "record",
                    "-q",
                    "--call-graph",
                    "dwarf",
                    "-k",
                    "CLOCK_MONOTONIC",
                    "-F",
                ])
                .arg(rate_hz.to_string())
                .arg("-p")
                .arg(pid.to_string())
                .arg("-o")
                .arg(out);
            }
        }
        let log_path = out.with_extension("profiler.log");
        let log = std::fs::File::create(&log_path).map_err(io_err(&log_path))?;
        let log2 = log.try_clone().map_err(io_err(&log_path))?;
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(io_err(&self.path))?;
        Ok(Attached {
            child,
            out: out.to_path_buf(),
            log_path,
            started: std::time::Instant::now(),
        })
    }
}

/// A profiler attached to a running server. Dropping it kills the profiler's group.
pub struct Attached {
    child: std::process::Child,
    out: PathBuf,
    log_path: PathBuf,
    started: std::time::Instant,
}

/// What an attached recording cost and produced.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct AttachReport {
    pub duration_s: f64,
    /// CPU seconds the profiler itself used (user + system).
    pub profiler_cpu_s: Option<f64>,
}

impl Attached {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGINT (both profilers write their output on it), then wait up to `limit`. Blocking.
    pub fn stop(mut self, limit: Duration) -> Result<AttachReport, ProfilerError> {
        let cpu = process_cpu_s(self.pid());
        let duration_s = self.started.elapsed().as_secs_f64();
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.pid(), libc::SIGINT);
        }
        let deadline = std::time::Instant::now() + limit;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => break None,
            }
        };
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let tail = || {
            log.lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        };
        match status {
            None => Err(ProfilerError::Data {
                path: self.out.clone(),
                message: format!("the profiler did not stop within {limit:?}:\n{}", tail()),
            }),
            Some(_) if !self.out.exists() => Err(ProfilerError::Data {
                path: self.out.clone(),
                message: format!("the profiler wrote no output:\n{}", tail()),
            }),
            Some(_) => Ok(AttachReport {
                duration_s,
                profiler_cpu_s: cpu,
            }),
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        // SAFETY: killpg(2) on the group our child leads; ESRCH (already gone) is fine.
        unsafe {
            libc::killpg(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.try_wait();
    }
}

/// CPU seconds (user + system) a live process has used, from `/proc/<pid>/stat`.
pub fn process_cpu_s(pid: i32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / tck)
}

// ---------------------------------------------------------------------------------------------
// Folded stacks
// ---------------------------------------------------------------------------------------------

/// Folded stacks: `root;…;leaf` → weight (samples, or µs for wall-clock profiles).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folded(pub BTreeMap<String, u64>);

impl Folded {
    /// Parse `stack count` lines; blank lines and lines without a stack are skipped.
    pub fn parse(text: &str) -> Self {
        let mut f = Self::default();
        for line in text.lines() {
            let Some((stack, count)) = line.trim_end().rsplit_once(' ') else {
                continue;
            };
            let (stack, Ok(count)) = (stack.trim(), count.parse::<u64>()) else {
                continue;
            };
            if !stack.is_empty() {
                f.add(stack, count);
            }
        }
        f
    }

    pub fn add(&mut self, stack: &str, weight: u64) {
        if weight > 0 {
            *self.0.entry(stack.to_string()).or_default() += weight;
        }
    }

    pub fn merge(&mut self, other: &Folded) {
        for (s, w) in &other.0 {
            self.add(s, *w);
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether some frame of some stack contains `needle`.
    pub fn has_frame(&self, needle: &str) -> bool {
        self.0
            .keys()
            .any(|s| s.split(';').any(|f| f.contains(needle)))
    }

    /// Weight of every stack that passes through a frame containing `needle`.
    pub fn inclusive(&self, needle: &str) -> u64 {
        self.0
            .iter()
            .filter(|(s, _)| s.split(';').any(|f| f.contains(needle)))
            .map(|(_, w)| w)
            .sum()
    }

    /// Drop the stacks whose leaf frame is one of `idle_leaves`; returns their weight.
    pub fn remove_idle(&mut self, idle_leaves: &[String]) -> u64 {
        let mut idle = 0;
        self.0.retain(|stack, w| {
            let leaf = stack.rsplit(';').next().unwrap_or(stack);
            let waiting = idle_leaves.iter().any(|l| l == leaf);
            if waiting {
                idle += *w;
            }
            !waiting
        });
        idle
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for (stack, w) in &self.0 {
            s.push_str(stack);
            s.push(' ');
            s.push_str(&w.to_string());
            s.push('\n');
        }
        s
    }
}

// ---------------------------------------------------------------------------------------------
// py-spy Chrome traces → a timeline of stacks per thread
// ---------------------------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct TraceEvent {
    ph: String,
    name: String,
    ts: u64,
    tid: u64,
    #[serde(default)]
    args: TraceArgs,
}

#[derive(serde::Deserialize, Default)]
struct TraceArgs {
    #[serde(default)]
    filename: String,
    #[serde(default)]
    name: Option<String>,
}

/// One stretch of time during which a thread's stack did not change.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    start_us: u64,
    end_us: u64,
    stack: usize,
}

/// Every thread's stack over time, rebuilt from a py-spy Chrome trace recorded with `--idle`
/// (so each thread is sampled at every tick and a stack holds until the next change).
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    stacks: Vec<String>,
    segments: Vec<Segment>,
    /// Last time stamp in the trace, µs since the profiler started.
    pub end_us: u64,
}

impl Timeline {
    /// Parse py-spy's `--format chrometrace` output: `B`/`E` events per thread (a `B` pushes a
    /// frame, an `E` pops the innermost), `M` events naming threads. Stacks are rooted at the
    /// thread's name (its numeric id dropped, so runs compare).
    pub fn from_chrometrace(path: &Path) -> Result<Self, ProfilerError> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        let events: Vec<TraceEvent> =
            serde_json::from_str(&text).map_err(|e| ProfilerError::Data {
                path: path.to_path_buf(),
                message: format!("not a py-spy Chrome trace: {e}"),
            })?;
        Ok(Self::from_events(&events))
    }

    fn from_events(events: &[TraceEvent]) -> Self {
        struct Thread {
            frames: Vec<String>,
            since: u64,
        }
        // Threads by order of first appearance: py-spy 0.4 writes no thread names, and the
        // first thread seen by a profiler that launched the server is its main thread.
        let mut names: BTreeMap<u64, String> = BTreeMap::new();
        let mut threads: BTreeMap<u64, Thread> = BTreeMap::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        let mut tl = Timeline::default();
        for ev in events {
            tl.end_us = tl.end_us.max(ev.ts);
            if ev.ph == "M" {
                if let Some(n) = &ev.args.name {
                    // Newer py-spy names threads: `<id>: <name>`.
                    let n = n.split_once(": ").map_or(n.as_str(), |(_, n)| n);
                    if !n.is_empty() {
                        names.insert(ev.tid, n.to_string());
                    }
                }
                continue;
            }
            if !names.contains_key(&ev.tid) {
                let n = names.len() + 1;
                let name = if n == 1 {
                    "thread 1 (main)".to_string()
                } else {
                    format!("thread {n}")
                };
                names.insert(ev.tid, name);
            }
            let th = threads.entry(ev.tid).or_insert(Thread {
                frames: Vec::new(),
                since: ev.ts,
            });
            if ev.ts > th.since {
                if !th.frames.is_empty() {
                    let root = names.get(&ev.tid).map_or("thread", String::as_str);
                    let stack = format!("{root};{}", th.frames.join(";"));
                    let n = index.len();
                    let id = *index.entry(stack.clone()).or_insert(n);
                    if id == tl.stacks.len() {
                        tl.stacks.push(stack);
                    }
                    tl.segments.push(Segment {
                        start_us: th.since,
                        end_us: ev.ts,
                        stack: id,
                    });
                }
                th.since = ev.ts;
            }
            match ev.ph.as_str() {
                "B" => th.frames.push(frame_label(&ev.name, &ev.args.filename)),
                "E" => {
                    th.frames.pop();
                }
                _ => {}
            }
        }
        tl
    }

    /// Folded stacks weighted by the µs each stack held inside `[from_us, to_us)`.
    pub fn window(&self, from_us: u64, to_us: u64) -> Folded {
        let mut f = Folded::default();
        for s in &self.segments {
            let a = s.start_us.max(from_us);
            let b = s.end_us.min(to_us);
            if b > a {
                f.add(&self.stacks[s.stack], b - a);
            }
        }
        f
    }
}

/// A frame as py-spy writes it in folded output with `--nolineno`: `function (file)`, the file
/// shortened to its module path (as py-spy's own folded output does), so that profiles taken
/// from different install directories compare.
fn frame_label(name: &str, file: &str) -> String {
    if file.is_empty() {
        return name.to_string();
    }
    format!("{name} ({})", short_path(file))
}

fn short_path(file: &str) -> &str {
    if let Some(i) = file.rfind("/site-packages/") {
        return &file[i + "/site-packages/".len()..];
    }
    if let Some(i) = file.rfind("/lib/python3") {
        let rest = &file[i + "/lib/".len()..];
        if let Some(j) = rest.find('/') {
            return &rest[j + 1..];
        }
    }
    file
}

// ---------------------------------------------------------------------------------------------
// perf script output → time-stamped samples
// ---------------------------------------------------------------------------------------------

/// `perf script` output split into samples, each with its CLOCK_MONOTONIC stamp (seconds).
#[derive(Debug, Clone, Default)]
pub struct PerfSamples {
    samples: Vec<(f64, String)>,
}

impl PerfSamples {
    /// Run `perf script` on a recording, without the period field so that each sample weighs
    /// one (the folded counts are samples). Blocking.
    pub fn from_recording(perf: &Tool, data: &Path) -> Result<Self, ProfilerError> {
        let text = output_of(
            std::process::Command::new(&perf.path)
                .args(["script", "-F", "comm,pid,tid,time,event,ip,sym,dso", "-i"])
                .arg(data),
        )
        .map_err(|message| ProfilerError::Data {
            path: data.to_path_buf(),
            message,
        })?;
        Ok(Self::parse(&text))
    }

    /// Split `perf script` text into blocks (a header line, then one frame per line, then a
    /// blank line) and read each header's `time:` field.
    pub fn parse(text: &str) -> Self {
        let mut samples = Vec::new();
        for block in text.split("\n\n") {
            let block = block.trim_matches('\n');
            let Some(header) = block.lines().next() else {
                continue;
            };
            if header.starts_with('#') || header.trim().is_empty() {
                continue;
            }
            let t = header
                .split_whitespace()
                .filter_map(|w| w.strip_suffix(':'))
                .find_map(|w| w.parse::<f64>().ok().filter(|_| w.contains('.')));
            if let Some(t) = t {
                samples.push((t, format!("{block}\n\n")));
            }
        }
        Self { samples }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Fold the samples stamped inside `[from_s, to_s)` with inferno's perf collapser.
    pub fn window(&self, from_s: f64, to_s: f64) -> Folded {
        use inferno::collapse::Collapse;
        let mut input = String::new();
        for (t, block) in &self.samples {
            if *t >= from_s && *t < to_s {
                input.push_str(block);
            }
        }
        if input.is_empty() {
            return Folded::default();
        }
        let mut out = Vec::new();
        let mut folder = inferno::collapse::perf::Folder::default();
        if folder.collapse(input.as_bytes(), &mut out).is_err() {
            return Folded::default();
        }
        Folded::parse(&String::from_utf8_lossy(&out))
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

/// An SVG flamegraph of `folded`. `count_name` names the unit (`samples`, `µs`).
pub fn render(folded: &Folded, title: &str, subtitle: &str, count_name: &str) -> String {
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = title.to_string();
    opts.subtitle = Some(subtitle.to_string());
    opts.count_name = count_name.to_string();
    opts.deterministic = true;
    opts.hash = true;
    let text = folded.to_text();
    let mut out = Vec::new();
    if folded.is_empty()
        || inferno::flamegraph::from_lines(&mut opts, text.lines(), &mut out).is_err()
    {
        return empty_svg(title, "no samples");
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn empty_svg(title: &str, note: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"60\">\
         <text x=\"10\" y=\"24\" font-family=\"sans-serif\" font-size=\"14\">{}</text>\
         <text x=\"10\" y=\"46\" font-family=\"sans-serif\" font-size=\"12\">{}</text></svg>",
        crate::util::fmt::esc(title),
        crate::util::fmt::esc(note)
    )
}

/// One stack's change between two profiles (after normalizing totals).
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct StackChange {
    pub stack: String,
    pub before: u64,
    pub after: u64,
}

/// A differential flamegraph and the numbers behind it.
#[derive(Debug, Clone)]
pub struct Differential {
    pub svg: String,
    /// `stack before after` lines, `before` scaled to the total of `after`.
    pub lines: Vec<StackChange>,
}

impl Differential {
    /// Frames (function labels) whose self weight (as a stack's leaf) grew the most, as a
    /// share of the total of `after`: the code that got slower, not its callers, all of which
    /// grow with it.
    pub fn top_growth(&self, n: usize) -> Vec<(String, f64)> {
        let total: u64 = self.lines.iter().map(|l| l.after).sum::<u64>().max(1);
        let mut by_frame: BTreeMap<&str, i64> = BTreeMap::new();
        for l in &self.lines {
            let leaf = l.stack.rsplit(';').next().unwrap_or(&l.stack);
            *by_frame.entry(leaf).or_default() += l.after as i64 - l.before as i64;
        }
        let mut v: Vec<(String, f64)> = by_frame
            .into_iter()
            .filter(|(_, d)| *d > 0)
            .map(|(f, d)| (f.to_string(), d as f64 / total as f64))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }

    /// Whether any stack grew.
    pub fn has_growth(&self) -> bool {
        self.lines.iter().any(|l| l.after > l.before)
    }
}

/// Differential flamegraph of `after` against `before` (inferno's `diff-folded` with
/// normalization, then a flamegraph coloured by the difference: red grew, blue shrank). The
/// frame widths are those of `after`.
pub fn differential(
    before: &Folded,
    after: &Folded,
    title: &str,
    subtitle: &str,
    count_name: &str,
) -> Differential {
    let mut diffed = Vec::new();
    let opts = inferno::differential::Options {
        normalize: true,
        ..Default::default()
    };
    let _ = inferno::differential::from_readers(
        opts,
        before.to_text().as_bytes(),
        after.to_text().as_bytes(),
        &mut diffed,
    );
    let text = String::from_utf8_lossy(&diffed).into_owned();
    let lines: Vec<StackChange> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.rsplitn(3, ' ');
            let after = it.next()?.parse().ok()?;
            let before = it.next()?.parse().ok()?;
            Some(StackChange {
                stack: it.next()?.to_string(),
                before,
                after,
            })
        })
        .collect();
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = title.to_string();
    opts.subtitle = Some(subtitle.to_string());
    opts.count_name = count_name.to_string();
    opts.deterministic = true;
    let mut out = Vec::new();
    let svg = if lines.is_empty()
        || inferno::flamegraph::from_lines(&mut opts, text.lines(), &mut out).is_err()
    {
        empty_svg(title, "no samples in common")
    } else {
        String::from_utf8_lossy(&out).into_owned()
    };
    Differential { svg, lines }
}

/// Write `name.folded` and `name.svg` into `dir`.
pub fn write_pair(dir: &Path, name: &str, folded: &Folded, svg: &str) -> Result<(), ProfilerError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    for (ext, bytes) in [
        ("folded", folded.to_text().into_bytes()),
        ("svg", svg.as_bytes().to_vec()),
    ] {
        let path = dir.join(format!("{name}.{ext}"));
        let mut f = std::fs::File::create(&path).map_err(io_err(&path))?;
        f.write_all(&bytes).map_err(io_err(&path))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// What a run records about its profiles
// ---------------------------------------------------------------------------------------------

/// Profiles of one run (`result.json` → `profile`).
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct ProfileResult {
    pub tool: Option<Tool>,
    /// Why nothing was profiled (the profiler is missing or refused), said loudly in the summary.
    pub unavailable: Option<String>,
    pub rate_hz: u32,
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

// ---------------------------------------------------------------------------------------------
// Differential flamegraphs between runs
// ---------------------------------------------------------------------------------------------

/// Folded profiles of a run directory by scope (`boot`, a phase name, `load.herd`), the
/// profiled boots of one scope merged (folded stacks add up).
pub fn run_profiles(run_dir: &Path) -> Result<BTreeMap<String, Folded>, ProfilerError> {
    let dir = run_dir.join("profile");
    let entries = std::fs::read_dir(&dir).map_err(io_err(&dir))?;
    let mut out: BTreeMap<String, Folded> = BTreeMap::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".folded") else {
            continue;
        };
        // `profile-<n>.<scope>` → `<scope>`; `load.<workload>` stays as it is.
        let scope = match stem.split_once('.') {
            Some((label, scope)) if label.starts_with("profile-") => scope.to_string(),
            _ => stem.to_string(),
        };
        let text = std::fs::read_to_string(e.path()).map_err(io_err(&e.path()))?;
        out.entry(scope).or_default().merge(&Folded::parse(&text));
    }
    Ok(out)
}

/// One differential flamegraph written by [`flamediff`].
#[derive(Debug, Clone)]
pub struct FlameDiff {
    pub scope: String,
    pub svg: PathBuf,
    pub before_total: u64,
    pub after_total: u64,
    /// Frames that grew the most, with their growth as a share of the candidate's total.
    pub top_growth: Vec<(String, f64)>,
}

/// Differential flamegraphs of `after` against `before`: two folded files (one SVG), or two
/// run directories (one SVG per scope both have). SVGs go into `out_dir`. Blocking.
pub fn flamediff(
    before: &Path,
    after: &Path,
    out_dir: &Path,
) -> Result<Vec<FlameDiff>, ProfilerError> {
    let load = |p: &Path| -> Result<BTreeMap<String, Folded>, ProfilerError> {
        if p.is_dir() {
            run_profiles(p)
        } else {
            let text = std::fs::read_to_string(p).map_err(io_err(p))?;
            let scope = p
                .file_stem()
                .map_or("profile".into(), |s| s.to_string_lossy().into_owned());
            Ok(BTreeMap::from([(scope, Folded::parse(&text))]))
        }
    };
    let (a, b) = (load(before)?, load(after)?);
    let pairs: Vec<(String, &Folded, &Folded)> = if !before.is_dir() && !after.is_dir() {
        let (fa, fb) = (a.values().next(), b.values().next());
        match (fa, fb) {
            (Some(fa), Some(fb)) => vec![("profile".to_string(), fa, fb)],
            _ => Vec::new(),
        }
    } else {
        a.iter()
            .filter_map(|(k, fa)| b.get(k).map(|fb| (k.clone(), fa, fb)))
            .collect()
    };
    if pairs.is_empty() {
        return Err(ProfilerError::Data {
            path: after.to_path_buf(),
            message: format!(
                "no profile in common with {} (profiles are in <run>/profile/*.folded)",
                before.display()
            ),
        });
    }
    std::fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
    let mut out = Vec::new();
    for (scope, fa, fb) in pairs {
        let d = differential(
            fa,
            fb,
            &format!("{scope}: {} → {}", before.display(), after.display()),
            "widths: candidate · red grew, blue shrank (totals normalized)",
            "samples",
        );
        let svg = out_dir.join(format!("flamediff-{scope}.svg"));
        std::fs::write(&svg, d.svg.as_bytes()).map_err(io_err(&svg))?;
        out.push(FlameDiff {
            scope,
            svg,
            before_total: fa.total(),
            after_total: fb.total(),
            top_growth: d.top_growth(5),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ph: &str, name: &str, ts: u64, tid: u64) -> TraceEvent {
        TraceEvent {
            ph: ph.into(),
            name: name.into(),
            ts,
            tid,
            args: TraceArgs {
                filename: "m.py".into(),
                name: None,
            },
        }
    }

    fn meta(tid: u64, name: &str) -> TraceEvent {
        TraceEvent {
            ph: "M".into(),
            name: "thread_name".into(),
            ts: 0,
            tid,
            args: TraceArgs {
                filename: String::new(),
                name: Some(format!("1234: {name}")),
            },
        }
    }

    /// main → a (0–300 µs), main → b (300–1000 µs) on one thread; a pool thread waits 0–1000.
    fn trace() -> Vec<TraceEvent> {
        vec![
            meta(0, "MainThread"),
            ev("B", "main", 0, 0),
            ev("B", "a", 0, 0),
            ev("B", "wait", 0, 1),
            ev("E", "a", 300, 0),
            ev("B", "b", 300, 0),
            ev("E", "b", 1000, 0),
            ev("E", "main", 1000, 0),
            ev("E", "wait", 1000, 1),
        ]
    }

    #[test]
    fn chrometrace_timeline_weights_each_stack_by_its_time() {
        let tl = Timeline::from_events(&trace());
        assert_eq!(tl.end_us, 1000);
        let all = tl.window(0, 10_000);
        assert_eq!(all.0["MainThread;main (m.py);a (m.py)"], 300);
        assert_eq!(all.0["MainThread;main (m.py);b (m.py)"], 700);
        // Unnamed threads are numbered by first appearance.
        assert_eq!(all.0["thread 2;wait (m.py)"], 1000);
        assert_eq!(all.total(), 2000);
        // A window cuts segments at its edges.
        let w = tl.window(200, 400);
        assert_eq!(w.0["MainThread;main (m.py);a (m.py)"], 100);
        assert_eq!(w.0["MainThread;main (m.py);b (m.py)"], 100);
        assert_eq!(w.0["thread 2;wait (m.py)"], 200);
        assert_eq!(w.inclusive("main (m.py)"), 200);
        assert!(tl.window(1000, 2000).is_empty());
    }

    #[test]
    fn frame_files_are_shortened_to_module_paths() {
        assert_eq!(
            frame_label(
                "setup",
                "/c/venv/lib/python3.11/site-packages/synapse/server.py"
            ),
            "setup (synapse/server.py)"
        );
        assert_eq!(
            frame_label(
                "compile",
                "/root/.pyenv/versions/3.11.7/lib/python3.11/re/_compiler.py"
            ),
            "compile (re/_compiler.py)"
        );
        assert_eq!(
            frame_label("x", "<frozen importlib._bootstrap>"),
            "x (<frozen importlib._bootstrap>)"
        );
    }

    #[test]
    fn folded_roundtrips_and_merges() {
        let text = "a;b 3\na;c 2\n\n 1\nbroken\n";
        let f = Folded::parse(text);
        assert_eq!(f.total(), 5);
        assert_eq!(Folded::parse(&f.to_text()), f);
        let mut g = f.clone();
        g.merge(&f);
        assert_eq!(g.0["a;b"], 6);
        assert!(g.has_frame("c") && !g.has_frame("d"));
        // Only a waiting leaf makes a stack idle, not the frame further up.
        let mut h = Folded::parse("t;wait 7\nt;wait;x 1\nt;run 2\n");
        assert_eq!(h.remove_idle(&["wait".to_string()]), 7);
        assert_eq!(h.total(), 3);
    }

    #[test]
    fn differential_of_identical_profiles_has_no_growth() {
        let f = Timeline::from_events(&trace()).window(0, 1000);
        let d = differential(&f, &f, "same", "", "µs");
        assert_eq!(d.lines.len(), f.0.len());
        assert!(!d.has_growth(), "{:?}", d.lines);
        assert!(d.top_growth(5).is_empty());
        assert!(d.svg.starts_with("<?xml") && d.svg.contains("main (m.py)"));
    }

    #[test]
    fn differential_names_the_frame_that_grew() {
        let before = Folded::parse("main;load 100\nmain;serve 100\n");
        let after = Folded::parse("main;load 300\nmain;serve 100\n");
        let d = differential(&before, &after, "grew", "", "samples");
        assert!(d.has_growth());
        let top = d.top_growth(3);
        // After normalization `before` is scaled to 400: load 200 → 300, serve 200 → 100.
        assert_eq!(top[0].0, "load");
        assert!((top[0].1 - 0.25).abs() < 1e-9, "{top:?}");
        assert!(!top.iter().any(|(f, _)| f == "serve"));
    }

    #[test]
    fn flamediff_pairs_run_profiles_by_scope() {
        let (a, b, out) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        for (dir, load) in [(&a, 10), (&b, 30)] {
            let p = dir.path().join("profile");
            std::fs::create_dir_all(&p).unwrap();
            for n in [1, 2] {
                std::fs::write(
                    p.join(format!("profile-{n}.boot.folded")),
                    format!("main;load {load}\nmain;serve 10\n"),
                )
                .unwrap();
            }
            std::fs::write(p.join("load.herd.folded"), "main;sync 5\n").unwrap();
        }
        std::fs::write(a.path().join("profile/profile-1.only_a.folded"), "x 1\n").unwrap();
        let diffs = flamediff(a.path(), b.path(), out.path()).unwrap();
        let scopes: Vec<&str> = diffs.iter().map(|d| d.scope.as_str()).collect();
        assert_eq!(scopes, ["boot", "load.herd"]);
        // Two boots merged per side.
        assert_eq!((diffs[0].before_total, diffs[0].after_total), (40, 80));
        assert_eq!(diffs[0].top_growth[0].0, "load");
        assert!(diffs[1].top_growth.is_empty());
        assert!(out.path().join("flamediff-boot.svg").exists());
        // Folded files directly.
        let one = flamediff(
            &a.path().join("profile/load.herd.folded"),
            &b.path().join("profile/profile-1.boot.folded"),
            out.path(),
        )
        .unwrap();
        assert_eq!(one.len(), 1);
        assert!(flamediff(a.path(), &out.path().join("missing"), out.path()).is_err());
    }

    #[test]
    fn perf_script_blocks_are_sliced_by_time() {
        let text = "\
prog 10/10   100.250000: cpu-clock:ppp: 
\t    1111 spin_a+0x1 (/bin/prog)
\t    2222 main+0x2 (/bin/prog)

prog 10/10   100.750000: cpu-clock:ppp: 
\t    3333 spin_b+0x1 (/bin/prog)
\t    2222 main+0x2 (/bin/prog)

";
        let s = PerfSamples::parse(text);
        assert_eq!(s.len(), 2);
        let a = s.window(100.0, 100.5);
        assert_eq!(a.total(), 1);
        assert!(a.has_frame("spin_a") && !a.has_frame("spin_b"), "{a:?}");
        assert_eq!(s.window(100.0, 101.0).total(), 2);
    }

    #[test]
    fn render_titles_the_graph_and_handles_empty_input() {
        let f = Folded::parse("main;work 5\n");
        let svg = render(&f, "Synapse 1.163.2 · boot", "5 samples", "samples");
        assert!(svg.contains("Synapse 1.163.2 · boot") && svg.contains("work"));
        let empty = render(&Folded::default(), "nothing", "", "samples");
        assert!(empty.contains("no samples"));
    }
}
