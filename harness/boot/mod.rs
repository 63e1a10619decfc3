//! Booting a server and timing it: spawn in a process group, capture its log line by line, read
//! each line's own timestamp, match the profile's phase markers, probe readiness from outside
//! (port, `/versions`, authenticated `/sync`), sample resources, and time the shutdown.

pub mod cache;
pub mod summary;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::metrics::{ResourceSample, ResourceSampler, ResourceSummary};
use crate::server::postgres::StatementHit;
use crate::server::{LogTail, ServerError, ServerProcess, ServerProfile};

/// What one boot should do.
pub struct BootSpec<'a> {
    /// `boot-1`, `seed`, `workload`…: names the log file and error messages.
    pub label: String,
    pub profile: &'a ServerProfile,
    pub command: std::process::Command,
    pub port: u16,
    /// Access token for the `/sync` probe; without one, ready means `/versions` answered 200.
    pub sync_token: Option<String>,
    pub timeout: Duration,
    pub log_path: PathBuf,
    /// Other process groups sampled with the server's (a private PostgreSQL cluster).
    pub extra_pgids: Vec<i32>,
    /// The command is a wrapper (a profiler) that starts the server as its child.
    pub wrapper: Option<Wrapper>,
    /// After ready, wait at most this long for the start-up background work to finish (the
    /// profile's `[background]` marker, else CPU idle); `None`: ready is the end of the boot.
    pub background: Option<Duration>,
    /// Called with the server's pid and a marker's name when its first line is read (the work
    /// meter's external marks).
    pub on_marker: Option<MarkerHook>,
    /// The server's resource limits (`[server] cpus`, `memory`, `cpuset`): the spawned
    /// process (a wrapper too) joins their cgroups, or their cores.
    pub confine: Option<Arc<crate::server::limits::Confinement>>,
}

/// See [`BootSpec::on_marker`].
pub type MarkerHook = Arc<dyn Fn(i32, &str) + Send + Sync>;

/// CPU-idle rule for "background work finished" when the profile has no marker (or it does not
/// come): the process tree used less than this share of one core over [`IDLE_WINDOW`].
pub const IDLE_CPU_SHARE: f64 = 0.05;
pub const IDLE_WINDOW: Duration = Duration::from_secs(2);

/// When the server's start-up background work finished, and how hsbench knew.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct BackgroundDone {
    /// Ms since spawn; `None` when it did not finish within the limit.
    pub at_ms: Option<f64>,
    /// `marker` (the profile's `[background]` marker), `cpu_idle` (the process tree under 5% of a
    /// core for 2 s; the time is the window's start), or `limit` (neither within the limit).
    pub source: String,
    /// The limit waited (ms after ready).
    pub limit_ms: f64,
    /// CPU time (user + system) of the process tree from ready until `at_ms` (or until the
    /// limit), from the resource samples nearest to both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<f64>,
}

/// CPU (user + system) the samples grew by between `from_ms` and `to_ms` (the last sample at or
/// before each; `None` without a sample at or before `from_ms`).
pub fn cpu_between(samples: &[ResourceSample], from_ms: f64, to_ms: f64) -> Option<f64> {
    let cpu = |s: &ResourceSample| s.cpu_user_s + s.cpu_sys_s;
    let at = |t: f64| samples.iter().rev().find(|s| s.t_ms <= t).map(cpu);
    Some((at(to_ms)? - at(from_ms)?).max(0.0))
}

/// The first instant at or after `from_ms` that starts a window of `window_ms` in which the
/// cumulative CPU (user+sys) of `samples` grew by less than `share` of the window.
pub fn cpu_idle_since(
    samples: &[ResourceSample],
    from_ms: f64,
    window_ms: f64,
    share: f64,
) -> Option<f64> {
    let cpu = |s: &ResourceSample| s.cpu_user_s + s.cpu_sys_s;
    let after: Vec<&ResourceSample> = samples.iter().filter(|s| s.t_ms >= from_ms).collect();
    for (i, a) in after.iter().enumerate() {
        if let Some(b) = after[i..].iter().find(|b| b.t_ms - a.t_ms >= window_ms) {
            let span_s = (b.t_ms - a.t_ms) / 1000.0;
            if cpu(b) - cpu(a) < share * span_s {
                return Some(a.t_ms);
            }
        } else {
            return None;
        }
    }
    None
}

/// A program that starts the server as its child (a profiler in launch mode). Shutdown signals
/// go to the child, so the wrapper sees the server exit and writes its output.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wrapper {
    /// Prefix of the wrapper's own output lines (not server log lines, not `first_log_line`).
    pub line_prefix: Option<&'static str>,
}

/// Where a phase's times came from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TimestampSource {
    /// The timestamp written inside the server's log line.
    LogLine,
    /// The time hsbench read the line (the profile has no timestamp format).
    Arrival,
}

/// One timed phase of one boot, in milliseconds since spawn.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct PhaseTiming {
    pub name: String,
    pub from: String,
    pub to: String,
    pub start_ms: Option<f64>,
    pub end_ms: Option<f64>,
    /// `None` when an end point was never seen.
    pub duration_ms: Option<f64>,
    /// CPU, disk and memory of the sampled processes during the phase.
    #[serde(default)]
    pub resources: Option<crate::metrics::WindowResources>,
    /// For a sub-phase: the phase it is nested in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// Everything measured about one boot.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct BootRecord {
    pub label: String,
    /// Left out of the statistics.
    #[serde(default)]
    pub warmup: bool,
    /// Whether the server's files were evicted from the page cache before this boot.
    #[serde(default)]
    pub cold: bool,
    #[serde(default)]
    pub eviction: Option<crate::boot::cache::Eviction>,
    /// Seconds spent restoring the data directory from the fixture before this boot
    /// (`[boot] restore = "each"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_seconds: Option<f64>,
    /// Wall-clock spawn time, Unix milliseconds.
    pub spawn_unix_ms: f64,
    /// CLOCK_MONOTONIC at spawn, seconds (aligns external tools' stamps, e.g. perf's).
    #[serde(default)]
    pub spawn_monotonic_s: f64,
    pub timestamp_source: TimestampSource,
    /// Every point seen (markers and milestones), ms since spawn.
    pub points: BTreeMap<String, f64>,
    pub phases: Vec<PhaseTiming>,
    /// Spans cut from repeated log lines (the profile's `[[subphases]]`), each nested in a
    /// phase (`parent`), in log order.
    #[serde(default)]
    pub subphases: Vec<PhaseTiming>,
    /// Markers of the profile that never appeared in the log.
    pub missing_markers: Vec<String>,
    /// Durations the server printed itself, by marker, ms: the marker's `(?P<time>…)` capture
    /// (tuwunel's `Opened database. … time=64.6ms` as `opened_database`), beside hsbench's
    /// own phases.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub server_reported_ms: BTreeMap<String, f64>,
    /// Spawn until the server answered an authenticated `/sync` (or `/versions` without a token).
    pub time_to_ready_ms: f64,
    /// With `[boot] background`: when the start-up background work finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<BackgroundDone>,
    /// SIGTERM until the process exited.
    pub shutdown_ms: Option<f64>,
    /// The server did not exit within the shutdown limit and was killed.
    pub shutdown_hung: bool,
    pub exit_status: Option<String>,
    /// Resources from spawn to ready, and over the whole life of the process.
    pub resources_to_ready: ResourceSummary,
    pub resources_total: ResourceSummary,
    /// Log file, relative to the run directory.
    pub log_file: String,
    pub log_lines: u64,
    /// The log file is incomplete: writing it failed (a full disk), with the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_write_error: Option<String>,
    /// On a private PostgreSQL cluster (`[boot] slow_statements`): the statements the database
    /// logged from spawn to ready, with the slowest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_statements: Option<crate::server::postgres::DbStatements>,
    /// Under the work meter: the instructions counted, per phase and to ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<crate::meter::BootWork>,
}

/// Matches a profile's markers against log lines (the first occurrence of each counts) and
/// places each hit in ms since spawn: from the line's own stamp when the profile can read it,
/// else from the arrival time.
#[derive(Debug, Clone)]
pub struct MarkerMatcher {
    profile: ServerProfile,
    spawn_unix_ms: f64,
    seen: Vec<bool>,
    hits: Vec<Option<f64>>,
    /// The duration each marker's line reported itself, ms ([`ServerProfile::reported_ms`]).
    reported: Vec<Option<f64>>,
    sub_hits: Vec<SubphaseHit>,
    last: Option<usize>,
}

/// One line of a repeated sub-phase: which `[[subphases]]` entry, the name it captured, and
/// when (ms since spawn).
#[derive(Debug, Clone, PartialEq)]
pub struct SubphaseHit {
    pub def: usize,
    pub name: String,
    pub ms: f64,
}

/// Sub-phase lines kept per boot (bounded: a log line per migration can run to thousands).
pub const MAX_SUBPHASE_HITS: usize = 5_000;

impl MarkerMatcher {
    pub fn new(profile: ServerProfile, spawn_unix_ms: f64) -> Self {
        let n = profile.markers.len();
        Self {
            profile,
            spawn_unix_ms,
            seen: vec![false; n],
            hits: vec![None; n],
            reported: vec![None; n],
            sub_hits: Vec::new(),
            last: None,
        }
    }

    pub fn observe(&mut self, line: &str, arrival_ms: f64) {
        let at = |p: &ServerProfile| match p.line_timestamp_ms(line) {
            Some(unix_ms) => unix_ms - self.spawn_unix_ms,
            None => arrival_ms,
        };
        if let Some(i) = self.profile.match_marker(line, &self.seen) {
            self.seen[i] = true;
            self.last = Some(i);
            self.hits[i] = Some(at(&self.profile));
            self.reported[i] = self.profile.reported_ms(i, line);
        }
        if self.sub_hits.len() < MAX_SUBPHASE_HITS {
            for (def, sp) in self.profile.subphases.iter().enumerate() {
                if let Some(c) = sp.regex.captures(line) {
                    let name = c
                        .name("name")
                        .map(|m| m.as_str().trim().to_string())
                        .unwrap_or_else(|| {
                            let n = self.sub_hits.iter().filter(|h| h.def == def).count();
                            format!("#{}", n + 1)
                        });
                    let ms = at(&self.profile);
                    self.sub_hits.push(SubphaseHit { def, name, ms });
                    break;
                }
            }
        }
    }

    /// How many markers have been seen.
    pub fn seen_count(&self) -> usize {
        self.seen.iter().filter(|s| **s).count()
    }

    /// The marker the latest line matched first.
    pub fn last_seen(&self) -> Option<String> {
        self.last.map(|i| self.profile.markers[i].name.clone())
    }

    /// Sub-phase lines seen, in log order.
    pub fn subphase_hits(&self) -> &[SubphaseHit] {
        &self.sub_hits
    }

    /// Markers seen, ms since spawn.
    pub fn points(&self) -> BTreeMap<String, f64> {
        self.profile
            .markers
            .iter()
            .zip(&self.hits)
            .filter_map(|(m, h)| h.map(|ms| (m.name.clone(), ms)))
            .collect()
    }

    /// Durations the markers' lines reported, ms, by marker.
    pub fn reported(&self) -> BTreeMap<String, f64> {
        self.profile
            .markers
            .iter()
            .zip(&self.reported)
            .filter_map(|(m, r)| r.map(|ms| (m.name.clone(), ms)))
            .collect()
    }

    /// Markers of the profile never seen.
    pub fn missing(&self) -> Vec<String> {
        self.profile
            .markers
            .iter()
            .zip(&self.hits)
            .filter(|(_, h)| h.is_none())
            .map(|(m, _)| m.name.clone())
            .collect()
    }
}

/// The profile's phases over a set of points (markers and milestones, ms since spawn).
pub fn phases(profile: &ServerProfile, points: &BTreeMap<String, f64>) -> Vec<PhaseTiming> {
    profile
        .phases
        .iter()
        .map(|p| {
            let start_ms = points.get(&p.from).copied();
            let end_ms = points.get(&p.to).copied();
            PhaseTiming {
                name: p.name.clone(),
                from: p.from.clone(),
                to: p.to.clone(),
                start_ms,
                end_ms,
                duration_ms: start_ms.zip(end_ms).map(|(a, b)| b - a),
                resources: None,
                parent: None,
            }
        })
        .collect()
}

/// Spans of the profile's sub-phases, from their lines and their parents' bounds. A line that
/// marks the start of its work ends at the next line of the same sub-phase (or the parent's end).
/// A line that marks the end starts at the previous line (or the parent's start) only when the
/// profile says the server's code makes the steps adjacent; otherwise the time up to each line is
/// its own span, `name: (before X)` for the first and `name: (between X and Y)` after, so that
/// unrelated work between two lines is never charged to the step whose line ends it.
pub fn subphases(
    profile: &ServerProfile,
    phases: &[PhaseTiming],
    hits: &[SubphaseHit],
) -> Vec<PhaseTiming> {
    let mut out = Vec::new();
    for (def, sp) in profile.subphases.iter().enumerate() {
        let parent = phases.iter().find(|p| p.name == sp.parent);
        let (p_start, p_end) = parent.map_or((None, None), |p| (p.start_ms, p.end_ms));
        let mine: Vec<&SubphaseHit> = hits.iter().filter(|h| h.def == def).collect();
        for (i, h) in mine.iter().enumerate() {
            let prev = i.checked_sub(1).map(|p| mine[p]);
            let (start_ms, end_ms) = if sp.line_marks_start {
                let end = mine.get(i + 1).map(|n| n.ms).or(p_end);
                (Some(h.ms), end)
            } else {
                (prev.map(|p| p.ms).or(p_start), Some(h.ms))
            };
            let label = match prev {
                _ if sp.line_marks_start || sp.adjacent => h.name.clone(),
                None => format!("(before {})", h.name),
                Some(p) => format!("(between {} and {})", p.name, h.name),
            };
            out.push(PhaseTiming {
                name: format!("{}: {label}", sp.name),
                from: sp.name.clone(),
                to: sp.name.clone(),
                start_ms,
                end_ms,
                duration_ms: start_ms.zip(end_ms).map(|(a, b)| (b - a).max(0.0)),
                resources: None,
                parent: Some(sp.parent.clone()),
            });
        }
    }
    out
}

/// Spans of the profile's `[[statement_subphases]]`, from the statements the database logged
/// (ms since spawn): each statement runs from its end less its duration to its end. Statements
/// that give one name (a rule without a capture, or a table prefilled twice) are one span, from
/// the first one's start to the last one's end, whose duration is the sum of theirs (the
/// database's time, not the gaps between them).
pub fn statement_subphases(profile: &ServerProfile, hits: &[StatementHit]) -> Vec<PhaseTiming> {
    let mut out: Vec<PhaseTiming> = Vec::new();
    for h in hits {
        let Some(def) = profile.statement_subphases.get(h.def) else {
            continue;
        };
        let name = match &h.name {
            Some(n) => format!("{}: {n}", def.name),
            None => def.name.clone(),
        };
        let (start, end) = ((h.ended_at_ms - h.ms).max(0.0), h.ended_at_ms);
        if let Some(same) = out.iter_mut().find(|p| p.name == name) {
            same.start_ms = same.start_ms.map(|s| s.min(start));
            same.end_ms = same.end_ms.map(|e| e.max(end));
            same.duration_ms = same.duration_ms.map(|d| d + h.ms);
            continue;
        }
        out.push(PhaseTiming {
            name,
            from: def.name.clone(),
            to: def.name.clone(),
            start_ms: Some(start),
            end_ms: Some(end),
            duration_ms: Some(h.ms),
            resources: None,
            parent: Some(def.parent.clone()),
        });
    }
    out.sort_by(|a, b| {
        a.start_ms
            .unwrap_or(0.0)
            .total_cmp(&b.start_ms.unwrap_or(0.0))
    });
    out
}

struct LogState {
    tail: LogTail,
    lines: u64,
    first_line_ms: Option<f64>,
    matcher: MarkerMatcher,
    /// The first failure to write the log file (a full disk): the file is incomplete.
    write_error: Option<String>,
}

struct LogSink {
    profile: ServerProfile,
    on_marker: Option<(i32, MarkerHook)>,
    wrapper_prefix: Option<&'static str>,
    spawn_instant: Instant,
    spawn_unix_ms: f64,
    state: Mutex<LogState>,
    file: Mutex<std::io::BufWriter<std::fs::File>>,
}

impl LogSink {
    fn line(&self, line: &str) {
        let arrival_ms = self.spawn_instant.elapsed().as_secs_f64() * 1000.0;
        {
            let mut st = self.state.lock().expect("log state");
            st.lines += 1;
            if !self.wrapper_prefix.is_some_and(|p| line.starts_with(p)) {
                st.first_line_ms.get_or_insert(arrival_ms);
            }
            st.tail.push(line);
            let before = st.matcher.seen_count();
            st.matcher.observe(line, arrival_ms);
            if let Some((pid, hook)) = &self.on_marker
                && st.matcher.seen_count() > before
                && let Some(name) = st.matcher.last_seen()
            {
                hook(*pid, &name);
            }
        }
        let written = writeln!(self.file.lock().expect("log file"), "{line}");
        if let Err(e) = written {
            self.write_failed(&e);
        }
    }

    fn write_failed(&self, e: &std::io::Error) {
        let mut st = self.state.lock().expect("log state");
        if st.write_error.is_none() {
            st.write_error = Some(format!("after {} lines: {e}", st.lines));
        }
    }
}

async fn pump(stream: impl AsyncRead + Unpin, sink: Arc<LogSink>) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::with_capacity(512);
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                sink.line(text.trim_end_matches(['\n', '\r']));
            }
        }
    }
}

/// A server that has booted and is ready.
pub struct RunningServer {
    pub label: String,
    pub port: u16,
    process: ServerProcess,
    sink: Arc<LogSink>,
    pumps: Vec<tokio::task::JoinHandle<()>>,
    sampler: Option<ResourceSampler>,
    milestones: BTreeMap<String, f64>,
    time_to_ready_ms: f64,
    resources_to_ready: ResourceSummary,
    log_path: PathBuf,
    spawn_monotonic_s: f64,
    /// With a wrapper: when its child (the server) appeared, ms since spawn.
    child_seen: Option<Arc<Mutex<Option<f64>>>>,
    background: Option<BackgroundDone>,
}

fn ms_since(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1000.0
}

impl RunningServer {
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_tail(&self) -> Vec<String> {
        self.sink.state.lock().expect("log state").tail.lines()
    }

    /// Pid of the spawned process (the profiler when the server runs under one).
    pub fn pid(&self) -> i32 {
        self.process.pid
    }

    /// Pid of the server itself: the spawned process, or a wrapper's child.
    pub fn server_pid(&self) -> i32 {
        self.process.signal_target()
    }

    /// Fail if the server has exited since it became ready.
    pub fn check_alive(&mut self) -> Result<(), ServerError> {
        match self.process.try_exited() {
            Some(status) => Err(ServerError::Crashed {
                label: self.label.clone(),
                status: status.to_string(),
                log_tail: self.log_tail(),
            }),
            None => Ok(()),
        }
    }

    /// SIGTERM, time the exit (SIGKILL the group after `limit`), and assemble the record.
    pub async fn stop(self, limit: Duration, run_dir: &Path) -> BootRecord {
        self.stop_with_samples(limit, run_dir).await.0
    }

    /// [`stop`](Self::stop), also handing back the resource samples.
    pub async fn stop_with_samples(
        mut self,
        limit: Duration,
        run_dir: &Path,
    ) -> (BootRecord, Vec<ResourceSample>) {
        let t = Instant::now();
        self.process.terminate();
        let (status, shutdown_ms, hung) = match self.process.wait_for(limit).await {
            Some(s) => (Some(s), Some(t.elapsed().as_secs_f64() * 1000.0), false),
            None => (self.process.kill_and_reap().await, None, true),
        };
        self.process.kill_group();
        self.finish(run_dir, status, shutdown_ms, hung).await
    }

    /// SIGKILL the whole process group (a crash, not a shutdown) and assemble the record: no
    /// shutdown time, `exit_status` the signal.
    pub async fn kill(mut self, run_dir: &Path) -> (BootRecord, Vec<ResourceSample>) {
        let status = self.process.kill_and_reap().await;
        self.finish(run_dir, status, None, false).await
    }

    /// After the process ended: drain the log, stop the sampler, write the samples, assemble
    /// the record.
    async fn finish(
        mut self,
        run_dir: &Path,
        status: Option<std::process::ExitStatus>,
        shutdown_ms: Option<f64>,
        hung: bool,
    ) -> (BootRecord, Vec<ResourceSample>) {
        for p in self.pumps.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), p).await;
        }
        let samples = self.sampler.take().map(|s| s.finish()).unwrap_or_default();
        let flushed = self.sink.file.lock().expect("log file").flush();
        if let Err(e) = flushed {
            self.sink.write_failed(&e);
        }
        let _ = write_samples_csv(&self.log_path.with_extension("resources.csv"), &samples);
        let rec = self.record(
            run_dir,
            status.map(|s| s.to_string()),
            shutdown_ms,
            hung,
            &samples,
        );
        (rec, samples)
    }

    /// Ms since spawn, now.
    pub fn elapsed_ms(&self) -> f64 {
        ms_since(self.sink.spawn_instant)
    }

    pub fn time_to_ready_ms(&self) -> f64 {
        self.time_to_ready_ms
    }

    fn record(
        &self,
        run_dir: &Path,
        exit_status: Option<String>,
        shutdown_ms: Option<f64>,
        shutdown_hung: bool,
        samples: &[ResourceSample],
    ) -> BootRecord {
        let st = self.sink.state.lock().expect("log state");
        let profile = &self.sink.profile;
        let mut points = self.milestones.clone();
        if let Some(ms) = st.first_line_ms {
            points.insert("first_log_line".into(), ms);
        }
        points.extend(st.matcher.points());
        if let Some(at) = self.background.as_ref().and_then(|b| b.at_ms) {
            points.insert("background_done".into(), at);
        }
        if let Some(ms) = self
            .child_seen
            .as_ref()
            .and_then(|c| *c.lock().expect("child"))
        {
            points.insert("server_spawned".into(), ms);
        }
        let mut phases = phases(profile, &points);
        let subphases = subphases(profile, &phases, st.matcher.subphase_hits());
        for p in &mut phases {
            if let (Some(a), Some(b)) = (p.start_ms, p.end_ms) {
                p.resources = Some(crate::metrics::WindowResources::of(samples, a, b));
            }
        }
        BootRecord {
            label: self.label.clone(),
            warmup: false,
            cold: false,
            eviction: None,
            restore_seconds: None,
            spawn_unix_ms: self.sink.spawn_unix_ms,
            spawn_monotonic_s: self.spawn_monotonic_s,
            timestamp_source: if profile.has_log_timestamps() {
                TimestampSource::LogLine
            } else {
                TimestampSource::Arrival
            },
            points,
            phases,
            subphases,
            missing_markers: st
                .matcher
                .missing()
                .into_iter()
                // The background marker comes after ready: missing only when waited for.
                .filter(|m| {
                    self.background.is_some() || profile.background_marker.as_ref() != Some(m)
                })
                .collect(),
            server_reported_ms: st.matcher.reported(),
            time_to_ready_ms: self.time_to_ready_ms,
            background: self.background.clone(),
            shutdown_ms,
            shutdown_hung,
            exit_status,
            resources_to_ready: self.resources_to_ready,
            resources_total: ResourceSummary::of(samples),
            log_file: self
                .log_path
                .strip_prefix(run_dir)
                .unwrap_or(&self.log_path)
                .display()
                .to_string(),
            log_lines: st.lines,
            log_write_error: st.write_error.clone(),
            db_statements: None,
            work: None,
        }
    }
}

fn write_samples_csv(path: &Path, samples: &[ResourceSample]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        f,
        "t_ms,processes,cpu_user_s,cpu_sys_s,rss_bytes,fds,threads,read_bytes,write_bytes"
    )?;
    for s in samples {
        writeln!(
            f,
            "{:.1},{},{:.2},{:.2},{},{},{},{},{}",
            s.t_ms,
            s.processes,
            s.cpu_user_s,
            s.cpu_sys_s,
            s.rss_bytes,
            s.fds,
            s.threads,
            s.read_bytes,
            s.write_bytes
        )?;
    }
    f.flush()
}

/// When a wrapper's first child (the server) appears, in ms since spawn: a thread polls
/// `/proc/<pid>/task/<pid>/children` every 0.2 ms for up to 10 s. A profiler in launch mode
/// starts its clock when it spawns the server, so this is the offset of its time stamps.
fn watch_first_child(pid: i32, spawn: Instant) -> Arc<Mutex<Option<f64>>> {
    let seen = Arc::new(Mutex::new(None));
    let out = seen.clone();
    std::thread::spawn(move || {
        let path = format!("/proc/{pid}/task/{pid}/children");
        while spawn.elapsed() < Duration::from_secs(10) {
            match std::fs::read_to_string(&path) {
                Ok(s) if !s.trim().is_empty() => {
                    *out.lock().expect("child") = Some(ms_since(spawn));
                    return;
                }
                Ok(_) => std::thread::sleep(Duration::from_micros(200)),
                Err(_) => return,
            }
        }
    });
    seen
}

/// Spawn the server and wait until it is ready. On any failure the process group is killed
/// (the [`ServerProcess`] guard) and the error carries the log's tail.
pub async fn boot(spec: BootSpec<'_>) -> Result<RunningServer, ServerError> {
    let file =
        std::fs::File::create(&spec.log_path).map_err(|e| ServerError::io(&spec.log_path, e))?;
    let spawn_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
        * 1000.0;
    let spawn_instant = Instant::now();
    let spawn_monotonic_s = crate::util::time::monotonic_s();
    let mut command = spec.command;
    if let Some(c) = &spec.confine {
        c.confine(&mut command);
    }
    let mut process = ServerProcess::spawn(command)?;
    process.signal_child = spec.wrapper.is_some();
    let sink = Arc::new(LogSink {
        profile: spec.profile.clone(),
        on_marker: spec.on_marker.clone().map(|h| (process.pid, h)),
        wrapper_prefix: spec.wrapper.and_then(|w| w.line_prefix),
        spawn_instant,
        spawn_unix_ms,
        state: Mutex::new(LogState {
            tail: LogTail::default(),
            lines: 0,
            first_line_ms: None,
            matcher: MarkerMatcher::new(spec.profile.clone(), spawn_unix_ms),
            write_error: None,
        }),
        file: Mutex::new(std::io::BufWriter::new(file)),
    });
    let mut pumps = Vec::new();
    if let Some(out) = process.child.stdout.take() {
        pumps.push(tokio::spawn(pump(out, sink.clone())));
    }
    if let Some(err) = process.child.stderr.take() {
        pumps.push(tokio::spawn(pump(err, sink.clone())));
    }
    let mut pgids = vec![process.pid];
    pgids.extend(&spec.extra_pgids);
    let sampler = ResourceSampler::start(pgids, spawn_instant, Duration::from_millis(100), 36_000);
    let child_seen = spec
        .wrapper
        .map(|_| watch_first_child(process.pid, spawn_instant));

    let mut server = RunningServer {
        label: spec.label.clone(),
        port: spec.port,
        process,
        sink,
        pumps,
        sampler: Some(sampler),
        milestones: BTreeMap::from([("spawn".to_string(), 0.0)]),
        time_to_ready_ms: 0.0,
        resources_to_ready: ResourceSummary::default(),
        log_path: spec.log_path.clone(),
        spawn_monotonic_s,
        child_seen,
        background: None,
    };
    let deadline = spawn_instant + spec.timeout;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(spec.timeout)
        .build()
        .map_err(|e| ServerError::Spawn {
            command: "http client".into(),
            source: std::io::Error::other(e),
        })?;

    // Each probe polls until it succeeds, the server dies, or the deadline passes. Every
    // attempt is bounded by the time left (a request the server holds open cannot overrun the
    // deadline), and the error gives the real time elapsed.
    macro_rules! poll_until {
        ($what:expr, $interval_ms:expr, $attempt:expr) => {{
            loop {
                server.check_alive()?;
                let left = deadline.saturating_duration_since(Instant::now());
                let ok = !left.is_zero()
                    && tokio::time::timeout(left, async { $attempt })
                        .await
                        .unwrap_or(false);
                if ok {
                    break;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    server.check_alive()?;
                    return Err(ServerError::Timeout {
                        label: spec.label.clone(),
                        what: $what.to_string(),
                        after: spawn_instant.elapsed(),
                        log_tail: server.log_tail(),
                    });
                }
                tokio::time::sleep(Duration::from_millis($interval_ms).min(left)).await;
            }
            server
                .milestones
                .insert($what.to_string(), ms_since(spawn_instant));
        }};
    }

    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], spec.port));
    poll_until!(
        "port_open",
        5,
        tokio::net::TcpStream::connect(addr).await.is_ok()
    );
    let base = format!("http://127.0.0.1:{}", spec.port);
    let versions = format!("{base}/_matrix/client/versions");
    poll_until!(
        "versions_200",
        10,
        http.get(&versions)
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 200)
    );
    if let Some(token) = &spec.sync_token {
        let sync = format!("{base}/_matrix/client/v3/sync?timeout=0");
        poll_until!("sync_200", 10, {
            match http.get(&sync).bearer_auth(token).send().await {
                Ok(r) if r.status().as_u16() == 200 => r.bytes().await.is_ok(),
                _ => false,
            }
        });
    }
    server.time_to_ready_ms = ms_since(spawn_instant);
    if let Some(s) = &server.sampler {
        server.resources_to_ready = ResourceSummary::of(&s.snapshot());
    }
    if let Some(limit) = spec.background {
        server.background = Some(wait_background(&mut server, limit).await?);
    }
    Ok(server)
}

/// After ready: poll every 100 ms for the profile's background marker or a CPU-idle window,
/// at most `limit`.
async fn wait_background(
    server: &mut RunningServer,
    limit: Duration,
) -> Result<BackgroundDone, ServerError> {
    let ready = server.time_to_ready_ms;
    let marker = server.sink.profile.background_marker.clone();
    let limit_ms = limit.as_secs_f64() * 1000.0;
    loop {
        server.check_alive()?;
        if let Some(m) = &marker
            && let Some(&at) = server
                .sink
                .state
                .lock()
                .expect("log state")
                .matcher
                .points()
                .get(m)
        {
            let samples = server
                .sampler
                .as_ref()
                .map(|s| s.snapshot())
                .unwrap_or_default();
            return Ok(BackgroundDone {
                at_ms: Some(at),
                source: "marker".into(),
                limit_ms,
                cpu_s: cpu_between(&samples, ready, at),
            });
        }
        let samples = server
            .sampler
            .as_ref()
            .map(|s| s.snapshot())
            .unwrap_or_default();
        if let Some(at) = cpu_idle_since(
            &samples,
            ready,
            IDLE_WINDOW.as_secs_f64() * 1000.0,
            IDLE_CPU_SHARE,
        ) {
            return Ok(BackgroundDone {
                at_ms: Some(at),
                source: "cpu_idle".into(),
                limit_ms,
                cpu_s: cpu_between(&samples, ready, at),
            });
        }
        if server.elapsed_ms() - ready >= limit_ms {
            return Ok(BackgroundDone {
                at_ms: None,
                source: "limit".into(),
                limit_ms,
                cpu_s: cpu_between(&samples, ready, f64::INFINITY),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests;
