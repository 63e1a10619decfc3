//! Validation of `[boot]`: the boot plan.

use super::*;

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
