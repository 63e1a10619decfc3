//! Validation of `[boot]`: the boot plan.

use super::locate::{Locator, ScenarioError, duration, positive};
use super::raw::RawScenario;
use super::server::{DatabaseKind, ServerSpec};
use std::time::Duration;

/// Page-cache state of the timed boots.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CacheMode {
    /// Boots follow each other: the server's files stay in the page cache.
    Warm,
    /// Before each boot the server's files are evicted from the page cache.
    Cold,
    /// Each repeat is a cold boot followed by a warm one; reported separately.
    Both,
}

#[derive(Debug, Clone, schemars::JsonSchema, serde::Serialize)]
pub struct BootPlan {
    pub repeats: u32,
    /// Boots before the timed ones, recorded but left out of the statistics.
    pub warmup: u32,
    pub cache: CacheMode,
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub timeout: Duration,
    #[serde(with = "super::secs::humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub shutdown_timeout: Duration,
    /// Crash-restart cycles after the timed boots: boot, write, SIGKILL the process group with
    /// writes in flight, then time the next boot (recovery).
    #[serde(default)]
    pub crash_restarts: u32,
    /// Messages sent into the big room before the kill; the kill comes once half of them were
    /// acknowledged, so the rest are in flight. 0: kill as soon as the server is ready.
    #[serde(default)]
    pub crash_writes: u32,
    /// After ready, each timed boot waits at most this long for the start-up background work
    /// to finish (the profile's `[background]` marker, else CPU idle). `None`: no wait.
    #[serde(serialize_with = "super::secs::opt_secs")]
    #[schemars(with = "Option<f64>")]
    pub background: Option<Duration>,
    /// When the data directory is restored from the fixture: once per run, or before every boot
    /// (for servers whose start-up changes what the next start-up sees, e.g. a presence reset
    /// that leaves every user offline).
    pub restore: RestoreMode,
    /// On a private PostgreSQL cluster: every statement of a timed boot that runs at least this
    /// long is logged by PostgreSQL (`log_min_duration_statement`) and the slowest are attached
    /// to the boot. `None`: not logged (the default off PostgreSQL, or `"off"`).
    #[serde(serialize_with = "super::secs::opt_secs")]
    #[schemars(with = "Option<f64>")]
    pub slow_statements: Option<Duration>,
    /// What the timed boots measure: wall time, instructions under the work meter, or both.
    pub meter: MeterMode,
}

/// `[boot] meter`: what the timed boots measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, schemars::JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MeterMode {
    /// Wall time only (the default).
    #[default]
    Time,
    /// Instructions only: each of the `repeats` boots runs under the work meter (callgrind),
    /// and no unmetered boots run.
    Work,
    /// The timed boots as with `time`, then `repeats` boots under the work meter.
    Both,
}

impl MeterMode {
    /// Whether boots run under the work meter.
    pub fn work(self) -> bool {
        self != MeterMode::Time
    }

    /// Whether unmetered timed boots run.
    pub fn time(self) -> bool {
        self != MeterMode::Work
    }
}

/// `[boot] slow_statements` on a private PostgreSQL cluster when the scenario does not say.
pub const DEFAULT_SLOW_STATEMENTS: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreMode {
    Once,
    Each,
}

pub(super) fn validate(
    loc: &Locator,
    raw: &RawScenario,
    server: &ServerSpec,
) -> Result<BootPlan, ScenarioError> {
    let boot = match &raw.boot {
        None => BootPlan {
            repeats: 3,
            warmup: 0,
            cache: CacheMode::Warm,
            timeout: Duration::from_secs(300),
            shutdown_timeout: Duration::from_secs(30),
            crash_restarts: 0,
            crash_writes: DEFAULT_CRASH_WRITES,
            background: None,
            restore: RestoreMode::Once,
            slow_statements: None,
            meter: MeterMode::Time,
        },
        Some(b) => {
            let repeats = match &b.repeats {
                Some(r) => {
                    let v = positive(loc, r, "boot.repeats")?;
                    if v > 1000 {
                        return Err(loc.at(r.span(), "boot.repeats", "at most 1000"));
                    }
                    v as u32
                }
                None => 3,
            };
            let warmup = match &b.warmup {
                Some(w) if *w.get_ref() > 100 => {
                    return Err(loc.at(w.span(), "boot.warmup", "at most 100"));
                }
                Some(w) => *w.get_ref() as u32,
                None => 0,
            };
            let cache = match b.cache.as_ref().map(|c| (c.get_ref().as_str(), c.span())) {
                None | Some(("warm", _)) => CacheMode::Warm,
                Some(("cold", _)) => CacheMode::Cold,
                Some(("both", _)) => CacheMode::Both,
                Some((other, span)) => {
                    return Err(loc.at(
                        span,
                        "boot.cache",
                        format!("{other:?}: \"warm\", \"cold\" or \"both\""),
                    ));
                }
            };
            BootPlan {
                repeats,
                warmup,
                cache,
                timeout: duration(loc, &b.timeout, "boot.timeout", Duration::from_secs(300))?,
                shutdown_timeout: duration(
                    loc,
                    &b.shutdown_timeout,
                    "boot.shutdown_timeout",
                    Duration::from_secs(30),
                )?,
                crash_restarts: match &b.crash_restarts {
                    Some(c) if *c.get_ref() > 20 => {
                        return Err(loc.at(c.span(), "boot.crash_restarts", "at most 20"));
                    }
                    Some(c) => *c.get_ref() as u32,
                    None => 0,
                },
                crash_writes: match &b.crash_writes {
                    Some(c) if *c.get_ref() > 100_000 => {
                        return Err(loc.at(c.span(), "boot.crash_writes", "at most 100000"));
                    }
                    Some(c) => *c.get_ref() as u32,
                    None => DEFAULT_CRASH_WRITES,
                },
                background: match &b.background {
                    None => None,
                    Some(_) => Some(duration(
                        loc,
                        &b.background,
                        "boot.background",
                        Duration::ZERO,
                    )?)
                    .filter(|d| !d.is_zero()),
                },
                restore: match b.restore.as_ref().map(|r| (r.get_ref().as_str(), r.span())) {
                    None | Some(("once", _)) => RestoreMode::Once,
                    Some(("each", span)) => {
                        if server.database == DatabaseKind::Postgres
                            || server.postgres_url.is_some()
                        {
                            return Err(loc.at(
                                span,
                                "boot.restore",
                                "\"each\" restores the server's data directory, which holds the \
                                 database only on SQLite or a native server; not with PostgreSQL",
                            ));
                        }
                        RestoreMode::Each
                    }
                    Some((other, span)) => {
                        return Err(loc.at(
                            span,
                            "boot.restore",
                            format!("{other:?}: \"once\" or \"each\""),
                        ));
                    }
                },
                slow_statements: None,
                meter: match b.meter.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
                    None | Some(("time", _)) => MeterMode::Time,
                    Some(("work", _)) => MeterMode::Work,
                    Some(("both", _)) => MeterMode::Both,
                    Some((other, span)) => {
                        return Err(loc.at(
                            span,
                            "boot.meter",
                            format!("{other:?}: \"time\", \"work\" (instructions under callgrind) or \"both\""),
                        ));
                    }
                },
            }
        }
    };
    let private_pg = server.database == DatabaseKind::Postgres && server.postgres_url.is_none();
    let given = raw.boot.as_ref().and_then(|b| b.slow_statements.as_ref());
    let slow_statements = match given {
        None => private_pg.then_some(DEFAULT_SLOW_STATEMENTS),
        Some(v) if v.get_ref() == "off" => None,
        Some(v) if !private_pg => {
            return Err(loc.at(
                v.span(),
                "boot.slow_statements",
                "PostgreSQL's statement log is read from the private cluster hsbench starts \
                 ([server] database = \"postgres\" without postgres_url)",
            ));
        }
        Some(v) => {
            // "0s" is allowed here: every statement.
            let d = humantime::parse_duration(v.get_ref())
                .ok()
                .filter(|d| *d <= Duration::from_secs(3600))
                .ok_or_else(|| {
                    loc.at(
                        v.span(),
                        "boot.slow_statements",
                        format!(
                            "{:?}: a duration from \"0s\" (every statement) to \"1h\", or \"off\"",
                            v.get_ref()
                        ),
                    )
                })?;
            Some(d)
        }
    };
    Ok(BootPlan {
        slow_statements,
        ..boot
    })
}

/// Messages written before a crash-restart's SIGKILL, unless `[boot] crash_writes` says.
pub const DEFAULT_CRASH_WRITES: u32 = 200;
