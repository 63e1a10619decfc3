//! The metric catalogue: every figure hsbench reports, with one name, one unit and what it
//! measures. Thresholds, `[compare] noise_by_metric`, compare.md, sweeps, BMF,
//! github-action-benchmark, summary.md and report.html all spell a metric as it is here, so a
//! name copied from any output works in any input. `scenarios/README.md` lists the catalogue
//! (a test checks that the list matches).
//!
//! A boot metric also exists for the cold boots (`cold.` prefix) and for the boots after a crash
//! (`crash.`); `phase.<name>` takes the phases of the server's profile and `milestone.<name>`
//! the milestones hsbench observes itself.

use std::fmt;

use crate::util::fmt::{fmt_bytes, fmt_ms};

/// What a metric's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Ms,
    Bytes,
    Seconds,
    Percent,
    Count,
    /// Instructions counted by the work meter.
    Instructions,
}

impl Unit {
    /// The unit's short name, as BMF and github-action-benchmark write it.
    pub fn label(self) -> &'static str {
        match self {
            Unit::Ms => "ms",
            Unit::Bytes => "bytes",
            Unit::Seconds => "s",
            Unit::Percent => "%",
            Unit::Count => "count",
            Unit::Instructions => "instructions",
        }
    }

    /// A value as a reader sees it.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Ms => fmt_ms(v),
            Unit::Bytes => fmt_bytes(v),
            Unit::Seconds => format!("{v:.2} s"),
            Unit::Percent => format!("{v:.1}%"),
            Unit::Count => format!("{v:.0}"),
            Unit::Instructions => fmt_instructions(v),
        }
    }
}

/// `5.03 G`, `192.4 M`, `9.2 k` instructions (decimal prefixes, as valgrind's counts are read).
pub fn fmt_instructions(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.3} G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Where a metric's samples come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One sample per timed boot; also under `cold.` and `crash.`.
    Boot,
    /// One sample per run.
    Run,
    /// One sample per boot under the work meter (`[boot] meter = "work"` or `"both"`).
    Work,
}

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The name; `phase.<name>` and `milestone.<name>` are families.
    pub name: &'static str,
    pub unit: Unit,
    pub scope: Scope,
    /// What it measures, for the documentation.
    pub about: &'static str,
}

const fn e(name: &'static str, unit: Unit, scope: Scope, about: &'static str) -> Entry {
    Entry {
        name,
        unit,
        scope,
        about,
    }
}

use Scope::{Boot, Run, Work};
use Unit::{Bytes, Count, Instructions, Ms, Percent, Seconds};

/// Every metric, in the order reports list them.
pub const CATALOGUE: &[Entry] = &[
    e(
        "time_to_ready",
        Ms,
        Boot,
        "spawn until the first authenticated /sync answered 200",
    ),
    e(
        "phase.<name>",
        Ms,
        Boot,
        "one init phase of the server's profile, from its log lines",
    ),
    e(
        "subphase.<name>",
        Ms,
        Boot,
        "one sub-phase of the server's profile, `<sub-phase>: <name its line gave>` (a stream generator's scan, a migration), summed per boot; compared by `compare`, not exported to dashboards",
    ),
    e(
        "milestone.<name>",
        Ms,
        Boot,
        "spawn until a milestone hsbench observes: first_log_line, port_open, versions_200, sync_200",
    ),
    e(
        "shutdown",
        Ms,
        Boot,
        "SIGTERM until the process group exited",
    ),
    e(
        "background_done",
        Ms,
        Boot,
        "spawn until the start-up background work finished ([boot] background)",
    ),
    e(
        "background",
        Ms,
        Boot,
        "ready until the start-up background work finished (e.g. a presence reset after the listener is up)",
    ),
    e(
        "cpu_background",
        Seconds,
        Boot,
        "CPU time (user + system) of the process tree from ready until the background work finished",
    ),
    e(
        "peak_rss",
        Bytes,
        Boot,
        "peak resident memory of the server's process tree during the boot",
    ),
    e(
        "cpu_to_ready",
        Seconds,
        Boot,
        "CPU time (user + system) of the process tree until ready",
    ),
    e(
        "work.time_to_ready",
        Instructions,
        Work,
        "instructions under the work meter from spawn to the last start-up marker the server logged before it was ready (Synapse: `listening`)",
    ),
    e(
        "work.phase.<name>",
        Instructions,
        Work,
        "instructions under the work meter in one init phase of the server's profile (phases between two log markers; not those ending at a milestone hsbench observes from outside)",
    ),
    e(
        "work.db.blocks",
        Count,
        Work,
        "private PostgreSQL cluster, under the work meter: shared buffer pages the server's statements touched (pg_stat_statements shared_blks_hit + shared_blks_read) from spawn to the marker work.time_to_ready ends at",
    ),
    e(
        "work.db.calls",
        Count,
        Work,
        "private PostgreSQL cluster, under the work meter: statements the server ran (pg_stat_statements calls, nested ones included) from spawn to the marker work.time_to_ready ends at",
    ),
    e(
        "work.db.rows",
        Count,
        Work,
        "private PostgreSQL cluster, under the work meter: rows the server's statements returned or changed, spawn to the marker work.time_to_ready ends at",
    ),
    e(
        "work.db.phase.<name>",
        Count,
        Work,
        "private PostgreSQL cluster, under the work meter: shared buffer pages touched in one init phase (counters read when hsbench reads the phase's marker lines)",
    ),
    e(
        "data_size",
        Bytes,
        Run,
        "size of the dataset's fixture on disk",
    ),
    e(
        "herd.sync.p50",
        Ms,
        Run,
        "herd: latency of one sync request (v2 /sync, or one sliding sync request), median (answered requests, corrected)",
    ),
    e(
        "herd.sync.p90",
        Ms,
        Run,
        "herd: /sync latency, 90th percentile",
    ),
    e(
        "herd.sync.p99",
        Ms,
        Run,
        "herd: /sync latency, 99th percentile",
    ),
    e("herd.sync.max", Ms, Run, "herd: /sync latency, slowest"),
    e(
        "herd.first_page.p50",
        Ms,
        Run,
        "herd: a client's start until its first rooms were listed, median (sliding sync: the first answer; v2: its one answer)",
    ),
    e(
        "herd.first_page.p99",
        Ms,
        Run,
        "herd: a client's start until its first rooms were listed, 99th percentile",
    ),
    e(
        "herd.room_list.p50",
        Ms,
        Run,
        "herd: a client's start until every one of its rooms was listed, median (sliding sync: the list grown to its count; v2: its one answer)",
    ),
    e(
        "herd.room_list.p99",
        Ms,
        Run,
        "herd: a client's start until every one of its rooms was listed, 99th percentile",
    ),
    e(
        "herd.wall",
        Ms,
        Run,
        "herd: first request sent until the last answered",
    ),
    e(
        "triggered.recovery",
        Ms,
        Run,
        "triggered herd: trigger until the server recovered (or the observation ended)",
    ),
    e(
        "triggered.resync.p50",
        Ms,
        Run,
        "triggered herd: re-sync latency, median",
    ),
    e(
        "triggered.resync.p99",
        Ms,
        Run,
        "triggered herd: re-sync latency, 99th percentile",
    ),
    e(
        "triggered.delivery.p50",
        Ms,
        Run,
        "triggered herd: message delivery latency, median",
    ),
    e(
        "triggered.delivery.p99",
        Ms,
        Run,
        "triggered herd: message delivery latency, 99th percentile",
    ),
    e(
        "steady.send.p50",
        Ms,
        Run,
        "steady traffic: send latency, median",
    ),
    e(
        "steady.send.p99",
        Ms,
        Run,
        "steady traffic: send latency, 99th percentile",
    ),
    e(
        "steady.delivery.p50",
        Ms,
        Run,
        "steady traffic: delivery latency, median",
    ),
    e(
        "steady.delivery.p99",
        Ms,
        Run,
        "steady traffic: delivery latency, 99th percentile",
    ),
    e(
        "catchup.time.p50",
        Ms,
        Run,
        "catch-up: time for a reader to catch up, median",
    ),
    e(
        "catchup.time.max",
        Ms,
        Run,
        "catch-up: time for the slowest reader",
    ),
    e(
        "catchup.messages.p99",
        Ms,
        Run,
        "catch-up: /messages latency, 99th percentile",
    ),
    e(
        "herd.bytes",
        Bytes,
        Run,
        "herd: response bytes received, all requests",
    ),
    e(
        "herd.server_cpu",
        Seconds,
        Run,
        "herd: CPU time (user + system) of the server's process tree while the herd ran",
    ),
    e(
        "triggered.server_cpu",
        Seconds,
        Run,
        "triggered herd: CPU time of the server's process tree while the workload ran",
    ),
    e(
        "steady.server_cpu",
        Seconds,
        Run,
        "steady traffic: CPU time of the server's process tree while the workload ran",
    ),
    e(
        "catchup.server_cpu",
        Seconds,
        Run,
        "catch-up: CPU time of the server's process tree while the workload ran",
    ),
    e(
        "herd.errors",
        Percent,
        Run,
        "herd: share of requests that failed",
    ),
    e(
        "triggered.errors",
        Percent,
        Run,
        "triggered herd: share of requests that failed",
    ),
    e(
        "steady.errors",
        Percent,
        Run,
        "steady traffic: share of requests that failed",
    ),
    e(
        "catchup.errors",
        Percent,
        Run,
        "catch-up: share of requests that failed",
    ),
    e(
        "crash.lost_writes",
        Count,
        Run,
        "acknowledged writes missing after a crash and restart",
    ),
];

/// Prefixes of the boot metrics: warm boots have none.
pub const BOOT_PREFIXES: &[&str] = &["cold.", "crash."];

/// The milestones hsbench observes itself (ms since spawn).
pub const MILESTONES: &[&str] = &["first_log_line", "port_open", "versions_200", "sync_200"];

/// Names earlier versions wrote, and the name that replaced each.
const RENAMED: &[(&str, &str)] = &[
    ("herd.p50", "herd.sync.p50"),
    ("herd.p90", "herd.sync.p90"),
    ("herd.p99", "herd.sync.p99"),
    ("herd.max", "herd.sync.max"),
    ("peak_rss_bytes", "peak_rss"),
    ("cpu_to_ready_s", "cpu_to_ready"),
    ("data_size_bytes", "data_size"),
];

/// A metric name checked against the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    /// `""`, `"cold."` or `"crash."`.
    pub prefix: &'static str,
    pub entry: &'static Entry,
    /// The phase or milestone of a family.
    pub arg: Option<String>,
}

impl Metric {
    pub fn unit(&self) -> Unit {
        self.entry.unit
    }

    /// A workload metric (one sample per run, from a workload).
    pub fn is_workload(&self) -> bool {
        self.entry.scope == Scope::Run
            && !matches!(self.entry.name, "data_size" | "crash.lost_writes")
    }

    /// The error share of a workload (`<workload>.errors`).
    pub fn is_error_share(&self) -> bool {
        self.entry.unit == Unit::Percent
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.arg {
            Some(a) => {
                let family = self.entry.name.trim_end_matches("<name>");
                write!(f, "{}{family}{a}", self.prefix)
            }
            None => write!(f, "{}{}", self.prefix, self.entry.name),
        }
    }
}

/// A name the catalogue does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metric {name:?}{}: {hint}", renamed.as_ref().map(|r| format!(" (renamed: write {r:?})")).unwrap_or_default())]
pub struct UnknownMetric {
    pub name: String,
    /// The current name of a renamed metric.
    pub renamed: Option<String>,
    /// The names there are, for the message.
    pub hint: String,
}

fn entry(name: &str) -> Option<&'static Entry> {
    CATALOGUE.iter().find(|e| e.name == name)
}

/// Check `name` against the catalogue; `phases` are the phases of the server's profile.
pub fn parse(name: &str, phases: &[String]) -> Result<Metric, UnknownMetric> {
    let unknown = || {
        let (prefix, base) = split_prefix(name);
        UnknownMetric {
            name: name.to_string(),
            renamed: RENAMED
                .iter()
                .find(|(old, _)| *old == base)
                .map(|(_, new)| format!("{prefix}{new}")),
            hint: hint(phases),
        }
    };
    let (prefix, base) = split_prefix(name);
    let (entry, arg) = if let Some(p) = base.strip_prefix("work.db.phase.") {
        if !phases.iter().any(|q| q == p) {
            return Err(unknown());
        }
        (entry("work.db.phase.<name>"), Some(p.to_string()))
    } else if let Some(p) = base.strip_prefix("work.phase.") {
        if !phases.iter().any(|q| q == p) {
            return Err(unknown());
        }
        (entry("work.phase.<name>"), Some(p.to_string()))
    } else if let Some(p) = base.strip_prefix("phase.") {
        if !phases.iter().any(|q| q == p) {
            return Err(unknown());
        }
        (entry("phase.<name>"), Some(p.to_string()))
    } else if let Some(m) = base.strip_prefix("milestone.") {
        if !MILESTONES.contains(&m) {
            return Err(unknown());
        }
        (entry("milestone.<name>"), Some(m.to_string()))
    } else if let Some(sp) = base.strip_prefix("subphase.") {
        // Sub-phase names come from the server's log lines: known only after a boot.
        if sp.trim().is_empty() {
            return Err(unknown());
        }
        (entry("subphase.<name>"), Some(sp.to_string()))
    } else {
        (entry(base), None)
    };
    let entry = entry.ok_or_else(unknown)?;
    if !prefix.is_empty() && entry.scope != Scope::Boot {
        return Err(unknown());
    }
    Ok(Metric { prefix, entry, arg })
}

/// `cold.time_to_ready` → (`cold.`, `time_to_ready`); `crash.lost_writes` keeps its name.
fn split_prefix(name: &str) -> (&'static str, &str) {
    if entry(name).is_some() {
        return ("", name);
    }
    for p in BOOT_PREFIXES {
        if let Some(rest) = name.strip_prefix(p) {
            return (p, rest);
        }
    }
    ("", name)
}

/// The unit of a metric name (milliseconds for a name the catalogue lacks).
pub fn unit_of(name: &str) -> Unit {
    let (_, base) = split_prefix(name);
    let family = if base.starts_with("work.db.phase.") {
        "work.db.phase.<name>"
    } else if base.starts_with("work.phase.") {
        "work.phase.<name>"
    } else if base.starts_with("phase.") {
        "phase.<name>"
    } else if base.starts_with("subphase.") {
        "subphase.<name>"
    } else if base.starts_with("milestone.") {
        "milestone.<name>"
    } else {
        base
    };
    entry(family).map_or(Unit::Ms, |e| e.unit)
}

/// A metric counted under the work meter (`work.*`: instructions, and a private PostgreSQL
/// cluster's own counters).
pub fn is_work(name: &str) -> bool {
    name.starts_with("work.")
}

/// Format a value of the metric `name` in its unit.
pub fn format(name: &str, v: f64) -> String {
    unit_of(name).format(v)
}

/// The catalogue in one line, for an error message.
pub fn hint(phases: &[String]) -> String {
    let names: Vec<String> = CATALOGUE
        .iter()
        .map(|e| match e.name {
            "phase.<name>" => format!("phase.<{}>", phases.join("|")),
            "work.phase.<name>" => format!("work.phase.<{}>", phases.join("|")),
            "work.db.phase.<name>" => format!("work.db.phase.<{}>", phases.join("|")),
            "milestone.<name>" => format!("milestone.<{}>", MILESTONES.join("|")),
            n => n.to_string(),
        })
        .collect();
    format!(
        "{}; boot metrics also as cold.<metric> and crash.<metric> (see scenarios/README.md)",
        names.join(", ")
    )
}

/// The catalogue as the Markdown table `scenarios/README.md` shows (a test keeps them equal).
pub fn markdown_table() -> String {
    let mut s = String::from("| metric | unit | samples | what it measures |\n|---|---|---|---|\n");
    for e in CATALOGUE {
        let samples = match e.scope {
            Scope::Boot => "per timed boot; also `cold.`, `crash.`",
            Scope::Run => "per run",
            Scope::Work => "per boot under the work meter",
        };
        s.push_str(&format!(
            "| `{}` | {} | {samples} | {} |\n",
            e.name,
            e.unit.label(),
            e.about
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_and_prints_back() {
        let phases = vec!["db_prepare".to_string()];
        for e in CATALOGUE {
            let name = e.name.replace(
                "<name>",
                if e.name.starts_with("phase") || e.name.contains(".phase") {
                    "db_prepare"
                } else {
                    "port_open"
                },
            );
            let m = parse(&name, &phases).unwrap();
            assert_eq!(m.to_string(), name);
            if e.scope == Scope::Boot {
                for p in BOOT_PREFIXES {
                    let n = format!("{p}{name}");
                    assert_eq!(parse(&n, &phases).unwrap().to_string(), n);
                }
            }
        }
    }

    /// Sub-phase names come from log lines: any non-empty name, spelled as reports write it.
    #[test]
    fn subphases_take_the_names_reports_give_them() {
        for n in [
            "subphase.stream_generator: events",
            "cold.subphase.migration: 12 -> 13 finished",
        ] {
            assert_eq!(parse(n, &[]).unwrap().to_string(), n);
            assert_eq!(unit_of(n), Unit::Ms);
        }
        assert!(parse("subphase.", &[]).is_err());
        assert!(parse("subphase. ", &[]).is_err());
    }

    #[test]
    fn old_spellings_name_their_replacement() {
        let e = parse("cold.peak_rss_bytes", &[]).unwrap_err();
        assert_eq!(e.renamed.as_deref(), Some("cold.peak_rss"));
        assert!(e.to_string().contains("write \"cold.peak_rss\""), "{e}");
        assert!(parse("cold.herd.sync.p99", &[]).is_err());
        assert!(parse("phase.nope", &["db".into()]).is_err());
        assert_eq!(unit_of("crash.peak_rss"), Unit::Bytes);
        assert_eq!(unit_of("crash.lost_writes"), Unit::Count);
        assert_eq!(format("herd.errors", 2.0), "2.0%");
    }
}
