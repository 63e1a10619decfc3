//! The work meter: a boot's instructions counted under a CPU simulator (valgrind's callgrind),
//! per phase, where wall time on a shared CI machine is noise (±15% between neighbouring runs)
//! and hardware counters are absent.
//!
//! How a phase's count is taken: the server runs under `valgrind --tool=callgrind`, and at each
//! of its profile's markers callgrind writes a dump of what it counted since the previous one.
//! - A Python server (Synapse) marks itself: a `sitecustomize` hook on the interpreter's
//!   `logging.StreamHandler` matches each line it writes against the markers and, on the first
//!   match of each, calls a one-line C library that issues callgrind's `DUMP_STATS_AT` client
//!   request. The dump lands on the exact instruction where the marker's line was written, so
//!   the count does not depend on when hsbench read the line.
//! - A native server is marked from outside: `callgrind_control --dump` when hsbench reads the
//!   marker's line. That boundary moves with scheduling, so its counts are steadier than time
//!   but less steady than in-process marks; the result says which kind ran.
//!
//! Deterministic inputs where the server allows them: `PYTHONHASHSEED=0`, and callgrind's own
//! serialised thread scheduling (valgrind runs one thread at a time; `--fair-sched=yes` gives
//! the threads turns in a fixed order).
mod error;
pub use error::MeterError;

pub mod callgrind;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use crate::server::postgres::{DbCounts, DbStatementCounts};

/// Boot timeouts are multiplied by this under the meter (callgrind runs Synapse 27–35× slower
/// than natively on the development VM).
pub const TIMEOUT_FACTOR: u32 = 50;

/// Functions kept per phase, by self cost: what `compare` diffs to name the function that got
/// more expensive.
pub const TOP_FUNCTIONS: usize = 60;

/// The C side of an in-process mark: callgrind's dump client request (a no-op outside
/// valgrind).
const MARK_C: &str = r#"#include <valgrind/callgrind.h>
void hsbench_mark(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }
"#;

/// Imported by the interpreter at start (`PYTHONPATH`): marks each profile marker's first line.
const SITECUSTOMIZE: &str = r#"# hsbench work meter: a callgrind dump at the first log line matching each marker.
import os

def _hsbench_meter():
    lib = os.environ.get("HSBENCH_METER_LIB")
    spec = os.environ.get("HSBENCH_METER_MARKERS")
    if not lib or not spec:
        return
    import ctypes, logging, re, sys
    mark = ctypes.CDLL(lib).hsbench_mark
    mark.argtypes = [ctypes.c_char_p]
    markers = []
    for item in spec.split("\x1e"):
        if not item:
            continue
        name, _, pattern = item.partition("\x1f")
        try:
            markers.append((name, re.compile(pattern)))
        except re.error as e:
            sys.stderr.write("hsbench-meter: marker %s: %s\n" % (name, e))
    seen = [False] * len(markers)
    emit = logging.StreamHandler.emit

    def metered_emit(self, record):
        emit(self, record)
        if all(seen):
            return
        try:
            text = self.format(record)
        except Exception:
            return
        for line in text.splitlines():
            for i, (name, rx) in enumerate(markers):
                if not seen[i] and rx.search(line):
                    seen[i] = True
                    mark(name.encode())
                    break

    logging.StreamHandler.emit = metered_emit

_hsbench_meter()
"#;

/// How the meter's dumps are placed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    /// The server marks its own log lines (the Python hook): exact.
    InProcess,
    /// hsbench asks for a dump when it reads a marker's line (`callgrind_control`).
    External,
}

/// valgrind, found and ready to meter a server.
#[derive(Debug, Clone)]
pub struct Meter {
    pub valgrind: PathBuf,
    /// `valgrind-3.19.0`.
    pub version: String,
    pub marks: MarkKind,
    /// With in-process marks: the directory holding the mark library and `sitecustomize.py`.
    hook_dir: Option<PathBuf>,
    callgrind_control: Option<PathBuf>,
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Meter {
    /// Find valgrind; for a Python server build the mark hook into the cache (once).
    pub fn find(marks: MarkKind) -> Result<Self, MeterError> {
        let valgrind = which("valgrind").ok_or_else(|| MeterError::Missing {
            what: "valgrind on PATH".into(),
        })?;
        let out = Command::new(&valgrind)
            .arg("--version")
            .output()
            .map_err(|source| MeterError::Io {
                path: valgrind.clone(),
                source,
            })?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let (hook_dir, callgrind_control) = match marks {
            MarkKind::InProcess => (Some(build_hook(&crate::util::fs::cache_dir())?), None),
            MarkKind::External => (
                None,
                Some(
                    which("callgrind_control").ok_or_else(|| MeterError::Missing {
                        what: "callgrind_control on PATH".into(),
                    })?,
                ),
            ),
        };
        Ok(Self {
            valgrind,
            version,
            marks,
            hook_dir,
            callgrind_control,
        })
    }

    /// `cmd` under callgrind, its output at `<out_prefix>.<pid>[.<part>]`; with in-process marks
    /// the hook learns the markers (name and regex) from the environment.
    pub fn wrap(&self, cmd: &Command, out_prefix: &Path, markers: &[(String, String)]) -> Command {
        let mut w = Command::new(&self.valgrind);
        w.args([
            "--tool=callgrind",
            "--cache-sim=no",
            "--dump-instr=no",
            "--dump-line=no",
            "--compress-pos=no",
            "--fair-sched=yes",
        ])
        .arg(format!("--callgrind-out-file={}.%p", out_prefix.display()))
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
        crate::util::process::carry_over(cmd, &mut w);
        w.env("PYTHONHASHSEED", "0");
        if let Some(dir) = &self.hook_dir {
            let mut path = dir.as_os_str().to_owned();
            if let Some(old) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
                path.push(":");
                path.push(old);
            }
            let spec: String = markers
                .iter()
                .map(|(n, r)| format!("{n}\x1f{r}\x1e"))
                .collect();
            w.env("PYTHONPATH", path)
                .env("HSBENCH_METER_LIB", dir.join(LIB_NAME))
                .env("HSBENCH_METER_MARKERS", spec);
        }
        w
    }

    /// With external marks: ask the callgrind process `pid` for a dump named `name` (in the
    /// background; the dump lands when callgrind next polls).
    pub fn mark_external(&self, pid: i32, name: &str) {
        let Some(ctl) = &self.callgrind_control else {
            return;
        };
        let mut c = Command::new(ctl);
        c.arg(format!("--dump={name}"))
            .arg(pid.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // Waited for, off the caller's thread: the dump must land before the next one.
        std::thread::spawn(move || {
            let _ = c.status();
        });
    }
}

const LIB_NAME: &str = "libhsbench_mark.so";

/// The hook's directory in the cache, named by its sources' hash; built with `cc` when absent.
fn build_hook(cache: &Path) -> Result<PathBuf, MeterError> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(MARK_C);
    h.update(SITECUSTOMIZE);
    let hash = format!("{:x}", h.finalize());
    let dir = cache.join("tools").join(format!("meter-{}", &hash[..12]));
    if dir.join(LIB_NAME).is_file() && dir.join("sitecustomize.py").is_file() {
        return Ok(dir);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MeterError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let src = dir.join("hsbench_mark.c");
    std::fs::write(&src, MARK_C).map_err(io(&src))?;
    let tmp = dir.join(format!("{LIB_NAME}.{}", std::process::id()));
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let out = Command::new(&cc)
        .args(["-shared", "-O2", "-fPIC", "-o"])
        .arg(&tmp)
        .arg(&src)
        .output()
        .map_err(|e| MeterError::Build {
            dir: dir.clone(),
            detail: format!("{}: {e}", cc.to_string_lossy()),
        })?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(MeterError::Build {
            dir: dir.clone(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    std::fs::rename(&tmp, dir.join(LIB_NAME)).map_err(io(&dir))?;
    crate::util::fs::write_atomic(&dir.join("sitecustomize.py"), SITECUSTOMIZE.as_bytes())
        .map_err(io(&dir))?;
    Ok(dir)
}

/// One function's self cost in a phase.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct FunctionWork {
    pub name: String,
    pub instructions: u64,
}

/// One phase's instructions.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct PhaseWork {
    pub name: String,
    /// `None` when a boundary was not marked (a milestone hsbench observes from outside, such
    /// as `versions_200`, or a marker that never came).
    pub instructions: Option<u64>,
    /// The phase's most expensive functions by self cost, at most [`TOP_FUNCTIONS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<FunctionWork>,
}

/// What the work meter counted in one boot.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct BootWork {
    /// `callgrind` (valgrind's version in the run's meter record).
    pub meter: String,
    pub marks: MarkKind,
    /// Instructions from spawn to each marker's dump.
    pub at_marker: BTreeMap<String, u64>,
    pub phases: Vec<PhaseWork>,
    /// Spawn to the last marker ending a phase that the server logged before it was ready
    /// (`work.time_to_ready`; Synapse's `listening`): the work of start-up, without what runs
    /// between that line and hsbench's probe (looping calls, background updates), which grows
    /// with the time the probe takes.
    pub to_ready: Option<u64>,
    /// The marker `to_ready` ends at.
    pub to_ready_marker: Option<String>,
    /// The whole process, spawn to exit (shutdown and whatever ran after ready included).
    pub total: u64,
    /// On a private PostgreSQL cluster: the database's share of the boot, by its own
    /// counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<DbWork>,
}

/// Statements kept in [`DbWork::statements`].
pub const TOP_STATEMENTS: usize = 15;

/// The private PostgreSQL cluster's work during one metered boot, from `pg_stat_statements`
/// (reset just before the server is spawned; the server's database only).
///
/// The database's counters are read when hsbench reads a marker's line, not at the exact
/// instruction the line was written (PostgreSQL runs outside the meter): a statement that ends
/// between the two counts in the phase before. Under the meter the server runs ~30× slower,
/// so that window is a small share of a phase; the spread of the counts over the metered boots
/// says how small.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct DbWork {
    /// From the reset to each marker.
    pub at_marker: BTreeMap<String, DbCounts>,
    pub phases: Vec<DbPhaseWork>,
    /// From the reset to [`BootWork::to_ready_marker`] (`work.db.blocks`, `work.db.calls`,
    /// `work.db.rows`).
    pub to_ready: Option<DbCounts>,
    /// From the reset to ready (hsbench's probe answered).
    pub at_ready: DbCounts,
    /// The statements that touched the most pages, reset to ready (at most
    /// [`TOP_STATEMENTS`]).
    pub statements: Vec<DbStatementCounts>,
}

/// One phase's share of the database's work.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct DbPhaseWork {
    pub name: String,
    /// `None` when a boundary was not read.
    pub counts: Option<DbCounts>,
}

impl DbWork {
    /// The database's work per phase from the counts read at each marker; `phases` are the
    /// profile's (name, from, to), `to_ready_marker` the marker the server's own count ends at.
    pub fn from_reads(
        at_marker: BTreeMap<String, DbCounts>,
        phases: &[(String, String, String)],
        to_ready_marker: Option<&str>,
        at_ready: DbCounts,
        statements: Vec<DbStatementCounts>,
    ) -> Self {
        let point = |name: &str| -> Option<DbCounts> {
            if name == "spawn" {
                return Some(DbCounts::default());
            }
            at_marker.get(name).copied()
        };
        let phases = phases
            .iter()
            .map(|(name, from, to)| DbPhaseWork {
                name: name.clone(),
                counts: point(from).zip(point(to)).map(|(a, b)| b.since(&a)),
            })
            .collect();
        Self {
            to_ready: to_ready_marker.and_then(|m| at_marker.get(m).copied()),
            at_marker,
            phases,
            at_ready,
            statements,
        }
    }
}

impl BootWork {
    /// The boot's counts from its callgrind parts: the cumulative count at each dump, phases
    /// between marks, and functions per phase. `phases` are the profile's (name, from, to);
    /// `ready_markers` the markers seen before ready, in log order.
    pub fn from_parts(
        parts: &[callgrind::Part],
        marks: MarkKind,
        phases: &[(String, String, String)],
        ready_markers: &[String],
    ) -> Self {
        let mut at_marker = BTreeMap::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        let mut sum = 0u64;
        for (i, p) in parts.iter().enumerate() {
            sum += p.instructions;
            if let Some(t) = &p.trigger
                && !at_marker.contains_key(t)
            {
                at_marker.insert(t.clone(), sum);
                index.insert(t.clone(), i);
            }
        }
        let total = sum;
        // A point's count and the parts up to it: spawn is 0, before the first part.
        let point = |name: &str| -> Option<(u64, Option<usize>)> {
            if name == "spawn" {
                return Some((0, None));
            }
            Some((*at_marker.get(name)?, Some(*index.get(name)?)))
        };
        let phase_ends: Vec<&String> = phases.iter().map(|(_, _, to)| to).collect();
        let phases = phases
            .iter()
            .map(|(name, from, to)| {
                let span = point(from).zip(point(to)).filter(|(a, b)| b.0 >= a.0);
                let functions = span
                    .map(|((_, a), (_, b))| {
                        let first = a.map_or(0, |i| i + 1);
                        let last = b.map_or(0, |i| i + 1);
                        top_functions(&parts[first.min(last)..last])
                    })
                    .unwrap_or_default();
                PhaseWork {
                    name: name.clone(),
                    instructions: span.map(|(a, b)| b.0 - a.0),
                    functions,
                }
            })
            .collect();
        // The last phase end the server marked before ready: its background work after that
        // (Synapse's looping calls, background updates) runs for as long as hsbench polls.
        let to_ready_marker = ready_markers
            .iter()
            .filter(|m| at_marker.contains_key(*m) && phase_ends.contains(m))
            .max_by_key(|m| at_marker[*m])
            .cloned();
        Self {
            meter: "callgrind".into(),
            marks,
            to_ready: to_ready_marker.as_ref().map(|m| at_marker[m]),
            to_ready_marker,
            at_marker,
            phases,
            total,
            db: None,
        }
    }
}

fn top_functions(parts: &[callgrind::Part]) -> Vec<FunctionWork> {
    let mut sum: std::collections::HashMap<&str, u64> = Default::default();
    for p in parts {
        for (f, c) in &p.functions {
            *sum.entry(f.as_str()).or_default() += c;
        }
    }
    let mut v: Vec<FunctionWork> = sum
        .into_iter()
        .filter(|(_, c)| *c > 0)
        .map(|(name, instructions)| FunctionWork {
            name: name.to_string(),
            instructions,
        })
        .collect();
    v.sort_by(|a, b| {
        b.instructions
            .cmp(&a.instructions)
            .then(a.name.cmp(&b.name))
    });
    v.truncate(TOP_FUNCTIONS);
    v
}

/// Read one boot's callgrind output (the process with the most instructions: the server, not a
/// launcher) into its counts, and delete the raw files unless `keep`.
pub fn read_boot(
    out_prefix: &Path,
    marks: MarkKind,
    phases: &[(String, String, String)],
    ready_markers: &[String],
    keep: bool,
) -> Result<BootWork, MeterError> {
    let procs = callgrind::read_parts(out_prefix)?;
    let main = procs
        .iter()
        .max_by_key(|(_, parts)| parts.iter().map(|p| p.instructions).sum::<u64>())
        .ok_or_else(|| MeterError::NoOutput {
            prefix: out_prefix.to_path_buf(),
        })?;
    let work = BootWork::from_parts(&main.1, marks, phases, ready_markers);
    if !keep {
        remove_output(out_prefix);
    }
    Ok(work)
}

/// Delete every callgrind file under `out_prefix`.
pub fn remove_output(out_prefix: &Path) {
    let dir = out_prefix.parent().unwrap_or(Path::new("."));
    let stem = out_prefix
        .file_name()
        .map(|s| format!("{}.", s.to_string_lossy()))
        .unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&stem) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// The run's record of the meter: which tool, how marks were taken, its slowdown.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct MeterRecord {
    /// `callgrind`.
    pub meter: String,
    /// valgrind's version.
    pub version: String,
    pub marks: MarkKind,
    /// The boot timeout under the meter is the scenario's times this.
    pub timeout_factor: u32,
    /// Median time to ready under the meter over the median of the unmetered boots of the same
    /// run (`None` without unmetered boots).
    #[serde(default)]
    pub slowdown: Option<f64>,
    /// Why a hardware counter (perf stat) was not used instead.
    pub why_not_perf: String,
}

#[cfg(test)]
mod tests {
    use super::callgrind::Part;
    use super::*;

    fn part(n: u32, trigger: Option<&str>, ir: u64, f: &[(&str, u64)]) -> Part {
        Part {
            number: n,
            trigger: trigger.map(str::to_string),
            instructions: ir,
            functions: f.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn phases_take_the_parts_between_their_marks() {
        let parts = [
            part(1, Some("a"), 100, &[("f", 60), ("g", 40)]),
            part(2, Some("b"), 10, &[("g", 10)]),
            part(3, Some("c"), 30, &[("h", 30)]),
            part(4, None, 5, &[("exit", 5)]),
        ];
        let phases = vec![
            ("first".to_string(), "spawn".to_string(), "a".to_string()),
            ("rest".to_string(), "a".to_string(), "c".to_string()),
            (
                "http".to_string(),
                "c".to_string(),
                "versions_200".to_string(),
            ),
        ];
        let w = BootWork::from_parts(
            &parts,
            MarkKind::InProcess,
            &phases,
            &["a".into(), "b".into(), "c".into()],
        );
        assert_eq!(w.at_marker["a"], 100);
        assert_eq!(w.at_marker["c"], 140);
        assert_eq!(w.phases[0].instructions, Some(100));
        assert_eq!(w.phases[0].functions[0].name, "f");
        assert_eq!(w.phases[1].instructions, Some(40));
        assert_eq!(
            w.phases[1].functions,
            vec![
                FunctionWork {
                    name: "h".into(),
                    instructions: 30
                },
                FunctionWork {
                    name: "g".into(),
                    instructions: 10
                }
            ]
        );
        assert_eq!(w.phases[2].instructions, None);
        assert_eq!(w.to_ready, Some(140));
        assert_eq!(w.to_ready_marker.as_deref(), Some("c"));
        assert_eq!(w.total, 145);
    }
}
