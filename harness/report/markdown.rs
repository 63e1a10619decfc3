//! summary.md: the run's Markdown report, and the warnings and statement tables HTML shares.

use crate::analysis::figures::fmt_errors;
use crate::boot::BootRecord;
use crate::boot::summary::{NamedStat, Stat};
use crate::metrics::catalogue;
use crate::result::{RunResult, RunStatus, ThresholdResult};
use crate::util::fmt::{fmt_bytes, fmt_ms};

/// What went wrong in a run besides failed gates, one line each, for the top of summary.md and
/// report.html: hung shutdowns, a trigger the server did not take, partial workloads.
pub fn problems(r: &RunResult) -> Vec<String> {
    let mut out = Vec::new();
    let boots = r
        .boots
        .iter()
        .chain(r.seed_boot.iter())
        .chain(r.import_check_boot.iter())
        .chain(r.workload_boot.iter())
        .chain(r.crash_restarts.iter().map(|c| &c.recovery));
    for b in boots {
        if b.shutdown_hung {
            out.push(format!(
                "{}: the shutdown hung (no exit within shutdown_timeout after SIGTERM; the process group was SIGKILLed)",
                b.label
            ));
        }
        if let Some(e) = &b.log_write_error {
            out.push(format!(
                "{}: the server's log {} is incomplete: writing it failed {e}",
                b.label, b.log_file
            ));
        }
    }
    if let Some(t) = &r.triggered
        && let Some(e) = &t.trigger_error
    {
        out.push(format!(
            "triggered: the server did not take the trigger ({e}); the clients had no event to react to"
        ));
    }
    out
}

/// The mark of figures a signal cut short.
pub(super) fn partial(yes: bool) -> &'static str {
    if yes {
        " — **partial: interrupted by a signal**"
    } else {
        ""
    }
}

/// A latency figure of a summary: "—" when nothing was answered (0 ms would read as fast).
pub fn lat(s: &crate::metrics::LatencySummary, v: f64) -> String {
    if s.count == 0 {
        "—".into()
    } else {
        fmt_ms(v)
    }
}

pub(super) fn stat_row(
    label: &str,
    s: Option<Stat>,
    missing: u32,
    fmt: &dyn Fn(f64) -> String,
) -> String {
    match s {
        Some(s) => format!(
            "| {label} | {} | {} – {}{} | {} | {} | {}{} |\n",
            fmt(s.median),
            fmt(s.median_ci_low),
            fmt(s.median_ci_high),
            if s.median_ci_level < 0.95 {
                format!(" ({:.0}%)", s.median_ci_level * 100.0)
            } else {
                String::new()
            },
            fmt(s.min),
            fmt(s.max),
            s.n,
            if missing > 0 {
                format!(" (missing in {missing})")
            } else {
                String::new()
            }
        ),
        None => format!("| {label} | — | — | — | — | missing in {missing} |\n"),
    }
}

pub(super) fn named_row(s: &NamedStat) -> String {
    stat_row(&s.name, s.stat, s.missing_in, &fmt_ms)
}

/// Start-up statements listed in summary.md per cache mode (the slowest over its boots).
pub(super) const STATEMENT_ROWS: usize = 5;
/// A statement's text in summary.md is cut after this many characters (result.json keeps more).
pub(super) const STATEMENT_MD_CHARS: usize = 160;

/// The slowest statements the database logged over `boots` from spawn to ready, slowest
/// first, each with its boot's label.
pub fn slowest_statements<'a>(
    boots: &[&'a BootRecord],
    n: usize,
) -> Vec<(&'a str, &'a crate::server::postgres::DbStatement)> {
    let mut all: Vec<(&str, &crate::server::postgres::DbStatement)> = boots
        .iter()
        .filter_map(|b| b.db_statements.as_ref().map(|d| (b.label.as_str(), d)))
        .flat_map(|(label, d)| d.slowest.iter().map(move |s| (label, s)))
        .collect();
    all.sort_by(|a, b| b.1.ms.total_cmp(&a.1.ms));
    all.truncate(n);
    all
}

/// PostgreSQL's own view of the boots: how many statements it logged and the slowest.
pub(super) fn statements_md(md: &mut String, boots: &[&BootRecord]) {
    let logged: Vec<&crate::server::postgres::DbStatements> = boots
        .iter()
        .filter_map(|b| b.db_statements.as_ref())
        .collect();
    let Some(first) = logged.first() else { return };
    let mut counts: Vec<u64> = logged.iter().map(|d| d.count).collect();
    let mut totals: Vec<f64> = logged.iter().map(|d| d.total_ms).collect();
    counts.sort_unstable();
    totals.sort_by(f64::total_cmp);
    md.push_str(&format!(
        "\nPostgreSQL's statement log, spawn to ready (statements of {} or more): median {} statements a boot, {} in all; the slowest:\n",
        fmt_ms(first.threshold_ms),
        counts[counts.len() / 2],
        fmt_ms(totals[totals.len() / 2]),
    ));
    let rows = slowest_statements(boots, STATEMENT_ROWS);
    if rows.is_empty() {
        md.push_str("none logged\n");
        return;
    }
    md.push_str("\n| statement | ran | ended after spawn | boot |\n|---|---:|---:|---|\n");
    for (label, st) in rows {
        let mut text: String = st.statement.chars().take(STATEMENT_MD_CHARS).collect();
        if st.statement.chars().count() > STATEMENT_MD_CHARS {
            text.push('…');
        }
        md.push_str(&format!(
            "| `{}` | {} | {} | {label} |\n",
            text.replace('`', "'").replace('|', "\\|"),
            fmt_ms(st.ms),
            fmt_ms(st.ended_at_ms),
        ));
    }
}

/// Sub-phases listed in summary.md per cache mode (the longest; all are in result.json).
pub(super) const SUBPHASE_ROWS: usize = 8;

pub(super) fn boot_section(
    md: &mut String,
    boots: &[&BootRecord],
    b: &crate::boot::summary::BootSummary,
    cache: &str,
) {
    let source = match boots.first().map(|b| b.timestamp_source) {
        Some(crate::boot::TimestampSource::LogLine) => "the server's own log stamps",
        _ => "log line arrival",
    };
    let how = if cache == "cold" {
        let ev = boots.iter().find_map(|b| b.eviction.as_ref());
        format!(
            ", page cache evicted before each boot: {}",
            ev.map_or("?".to_string(), |e| format!(
                "{} files, {} ({})",
                e.files,
                fmt_bytes(e.bytes as f64),
                e.method
            ))
        )
    } else {
        String::new()
    };
    let heading = if cache == "after a crash" {
        format!(
            "### Boot after a crash (SIGKILL with writes in flight): {} boots",
            b.boots
        )
    } else {
        format!("### Boot, {cache} cache: {} boots", b.boots)
    };
    md.push_str(&format!("{heading} (phases from {source}{how})\n\n"));
    md.push_str(
        "| phase | median | 95% CI of median | min | max | n |\n|---|---:|---:|---:|---:|---|\n",
    );
    for p in &b.phases {
        md.push_str(&named_row(p));
    }
    md.push_str(&stat_row(
        "**time to ready** (spawn → first /sync 200)",
        b.time_to_ready_ms,
        0,
        &fmt_ms,
    ));
    let hung = boots.iter().filter(|x| x.shutdown_hung).count();
    md.push_str(&named_row(&NamedStat {
        name: if hung > 0 {
            format!("shutdown (SIGTERM → exit; **hung in {hung}**, SIGKILLed)")
        } else {
            "shutdown (SIGTERM → exit)".into()
        },
        ..b.shutdown_ms.clone()
    }));
    if let Some(bg) = &b.background_done_ms {
        let mut how: Vec<&str> = boots
            .iter()
            .filter_map(|x| x.background.as_ref().map(|g| g.source.as_str()))
            .collect();
        how.sort_unstable();
        how.dedup();
        md.push_str(&named_row(&NamedStat {
            name: format!("background work finished (spawn → {})", how.join(", ")),
            ..bg.clone()
        }));
    }
    // Durations the server printed itself (e.g. tuwunel's `Opened database. … time=`), beside
    // hsbench's phases.
    for r in &b.server_reported_ms {
        md.push_str(&named_row(&NamedStat {
            name: format!("{}, as the server reports it", r.name),
            ..r.clone()
        }));
    }
    md.push_str(&stat_row("peak RSS", b.peak_rss_bytes, 0, &|v| {
        fmt_bytes(v)
    }));
    md.push_str(&stat_row(
        "CPU to ready (user+sys)",
        b.cpu_seconds_to_ready,
        0,
        &|v| format!("{v:.2} s"),
    ));
    md.push_str(&stat_row(
        "disk read to ready",
        b.read_bytes_to_ready,
        0,
        &|v| fmt_bytes(v),
    ));
    let missing: Vec<&str> = boots
        .iter()
        .flat_map(|b| b.missing_markers.iter().map(String::as_str))
        .collect();
    if b.phase_resources.iter().any(|p| p.cpu_s.is_some()) {
        md.push_str(
            "\n| phase resources (median) | CPU | disk read | disk written | peak RSS |\n|---|---:|---:|---:|---:|\n",
        );
        let med = |s: &Option<Stat>, f: &dyn Fn(f64) -> String| {
            s.map_or("—".to_string(), |s| f(s.median))
        };
        for p in &b.phase_resources {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                p.name,
                med(&p.cpu_s, &|v| format!("{v:.2} s")),
                med(&p.read_bytes, &fmt_bytes),
                med(&p.write_bytes, &fmt_bytes),
                med(&p.peak_rss_bytes, &fmt_bytes)
            ));
        }
        md.push_str("\n(sampled at 10 Hz: phases shorter than 100 ms are approximate)\n");
    }
    // Sub-phases: the longest by median over this cache mode's boots.
    let mut subs: std::collections::BTreeMap<(&str, &str), Vec<f64>> = Default::default();
    for x in boots {
        for sp in &x.subphases {
            if let Some(d) = sp.duration_ms {
                subs.entry((sp.parent.as_deref().unwrap_or(""), sp.name.as_str()))
                    .or_default()
                    .push(d);
            }
        }
    }
    if !subs.is_empty() {
        let mut rows: Vec<(f64, &str, &str, usize)> = subs
            .iter_mut()
            .map(|((parent, name), v)| {
                v.sort_by(f64::total_cmp);
                (v[v.len() / 2], *parent, *name, v.len())
            })
            .collect();
        rows.sort_by(|a, b| b.0.total_cmp(&a.0));
        md.push_str(&format!(
            "\n| longest sub-phases ({} of {}) | in phase | median | boots |\n|---|---|---:|---:|\n",
            rows.len().min(SUBPHASE_ROWS),
            rows.len()
        ));
        for (median, parent, name, n) in rows.into_iter().take(SUBPHASE_ROWS) {
            md.push_str(&format!(
                "| {name} | {parent} | {} | {n} |\n",
                fmt_ms(median)
            ));
        }
    }
    statements_md(md, boots);
    for w in &b.outliers {
        md.push_str(&format!(
            "\n⚠ outlier: {} of {} = {} (median {}, modified z {:.1}): {}\n",
            w.metric,
            w.boot,
            fmt_ms(w.value),
            fmt_ms(w.median),
            w.modified_z,
            w.advice
        ));
    }
    if b.boots > 1
        && let Some(why) = crate::boot::summary::outliers_unchecked(b.boots as usize)
    {
        md.push_str(&format!("\n{why}.\n"));
    }
    if !missing.is_empty() {
        let mut m = missing.clone();
        m.sort_unstable();
        m.dedup();
        md.push_str(&format!(
            "\nMarkers never seen in some boots: {}\n",
            m.join(", ")
        ));
    }
    md.push('\n');
}

pub fn markdown(r: &RunResult) -> String {
    let mut md = String::new();
    head(&mut md, r);
    dataset_md(&mut md, r);
    boots_md(&mut md, r);
    md.push_str(&super::work::markdown(r));
    waterfalls_md(&mut md, r);
    herd_md(&mut md, r);
    triggered_md(&mut md, r);
    steady_md(&mut md, r);
    catchup_md(&mut md, r);
    thresholds_md(&mut md, r);
    if let Some(p) = &r.profile {
        profile_section(&mut md, p);
    }
    load_md(&mut md, r);
    let u = &r.harness.self_usage;
    md.push_str(&format!(
        "hsbench itself: {:.2} s CPU (user+sys), peak RSS {}\n",
        u.cpu_user_s + u.cpu_sys_s,
        fmt_bytes(u.max_rss_bytes as f64)
    ));
    md
}

/// The title, the failures and warnings first, the run's status, the machine and the shard.
fn head(md: &mut String, r: &RunResult) {
    let scenario = r.scenario_name();
    let server = r.server_label();
    md.push_str(&format!("## hsbench · {scenario} · {server}\n\n"));
    // The reason a run failed comes first, then what else went wrong.
    let failed: Vec<&ThresholdResult> = r.thresholds.iter().filter(|t| !t.passed).collect();
    for t in &failed {
        md.push_str(&format!("> **FAILED** {}\n", t.reason()));
    }
    let warnings = problems(r);
    for w in &warnings {
        md.push_str(&format!("> **WARNING** {w}\n"));
    }
    if !failed.is_empty() || !warnings.is_empty() {
        md.push('\n');
    }
    let status = match r.status {
        RunStatus::Complete if !failed.is_empty() => format!(
            "complete, **{} of {} gates failed**",
            failed.len(),
            r.thresholds.len()
        ),
        RunStatus::Complete => "complete".to_string(),
        RunStatus::Running => "partial (run in progress)".to_string(),
        RunStatus::Killed => format!(
            "**killed**: {}",
            r.error.as_deref().unwrap_or("its process is gone")
        ),
        RunStatus::Failed => format!(
            "**failed**: {}",
            r.error
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        ),
        RunStatus::Interrupted => "**interrupted**".to_string(),
    };
    md.push_str(&format!(
        "Run `{}` · {status} · {:.0} s · hsbench {}{}\n\n",
        r.run_id,
        r.duration_s,
        r.harness.version,
        r.harness
            .git_revision
            .as_deref()
            .map(|g| format!(" ({})", &g[..g.len().min(10)]))
            .unwrap_or_default()
    ));
    md.push_str(&format!("Machine: {}\n\n", r.machine.one_line()));
    if let Some(l) = &r.limits {
        md.push_str(&format!(
            "Server limits: {} · {}\n\n",
            crate::server::limits::describe(&l.applied),
            l.throttling_line()
        ));
        for n in &l.applied.notes {
            md.push_str(&format!("- {n}\n"));
        }
        if !l.applied.notes.is_empty() {
            md.push('\n');
        }
    }
    if let Some(s) = &r.shard {
        md.push_str(&format!(
            "Shard {} of {} (0-based): {} of the dataset's users, attached to {}{}. Combine the shards with `hsbench merge <shard dirs…> --out DIR`.\n\n",
            s.index,
            s.count,
            s.clients,
            s.attached_to,
            s.release_at
                .as_deref()
                .map(|t| format!(", herd released at {t}"))
                .unwrap_or_default()
        ));
    }
}

/// The dataset in one line: its seed, spec, sizes, history and fixture.
fn dataset_md(md: &mut String, r: &RunResult) {
    if let Some(d) = &r.dataset {
        md.push_str(&format!(
            "Dataset: seed {} · spec `{}` · {} users ({} devices) · {} rooms (largest {}, {} private, {} DMs) · {} memberships · {} timeline events · {} state events · {} receipts · {} · {}{}\n\n",
            d.spec.seed,
            d.spec_hash,
            d.totals.users,
            d.totals.users + d.totals.extra_devices,
            d.totals.rooms,
            d.totals.largest_room,
            d.totals.private_rooms,
            d.totals.dm_rooms,
            d.totals.memberships,
            d.totals.timeline_events,
            d.totals.state_events,
            d.totals.receipts,
            match d.spec.load {
                crate::scenario::LoadMethod::Direct => format!(
                    "history over {} days",
                    d.spec.history_seconds.div_ceil(86_400)
                ),
                crate::scenario::LoadMethod::Api => "events dated when loaded".to_string(),
            },
            match d.spec.presence {
                crate::scenario::PresenceMode::Tracked => "presence tracked by the server",
                crate::scenario::PresenceMode::Stays => "presence stays as planned",
            },
            d.fixture
                .as_ref()
                .map(|f| format!(
                    " · fixture `{}` ({}, {})",
                    f.key,
                    if f.reused { "restored" } else { "built by this run" },
                    fmt_bytes(f.size_bytes as f64)
                ))
                .unwrap_or_default()
        ));
    }
}

/// The boot sections: warm, cold, after a crash (with the crash table).
fn boots_md(md: &mut String, r: &RunResult) {
    if let Some(b) = &r.boot_summary {
        let boots: Vec<&BootRecord> = r.boots.iter().filter(|x| !x.warmup && !x.cold).collect();
        boot_section(md, &boots, b, "warm");
    }
    if let Some(b) = &r.cold_boot_summary {
        let boots: Vec<&BootRecord> = r.boots.iter().filter(|x| !x.warmup && x.cold).collect();
        boot_section(md, &boots, b, "cold");
    }
    if let Some(b) = &r.crash_boot_summary {
        let boots: Vec<&BootRecord> = r.crash_restarts.iter().map(|c| &c.recovery).collect();
        boot_section(md, &boots, b, "after a crash");
        md.push_str("| crash | killed after ready | writes acknowledged / sent | acknowledged but lost | recovery: time to ready |\n|---|---:|---:|---:|---:|\n");
        for (i, c) in r.crash_restarts.iter().enumerate() {
            md.push_str(&format!(
                "| {} | {} | {} / {} | {} | {} |\n",
                i + 1,
                fmt_ms(c.killed_after_ms),
                c.writes_acked,
                c.writes_sent,
                match (c.writes_lost, c.writes_checked) {
                    (Some(0), Some(n)) => format!("0 of {n}"),
                    (Some(l), Some(n)) => format!("**{l} of {n}**"),
                    _ => format!(
                        "**unknown** ({})",
                        c.read_back_error.as_deref().unwrap_or("not read back")
                    ),
                },
                fmt_ms(c.recovery.time_to_ready_ms)
            ));
        }
        md.push('\n');
    }
}

/// Links to the boot waterfalls.
fn waterfalls_md(md: &mut String, r: &RunResult) {
    let svgs: Vec<&String> = r
        .files
        .iter()
        .filter(|f| f.ends_with("-waterfall.svg"))
        .collect();
    if !svgs.is_empty() {
        md.push_str("Boot waterfalls (phases, milestones, RSS and CPU): ");
        let links: Vec<String> = svgs
            .iter()
            .map(|f| format!("[{}]({f})", f.trim_end_matches("-waterfall.svg")))
            .collect();
        md.push_str(&links.join(" · "));
        md.push_str("\n\n");
    }
}

/// How a workload's clients synced, in a heading.
fn protocol_words(p: crate::scenario::SyncProtocol) -> &'static str {
    match p {
        crate::scenario::SyncProtocol::V2 => "/sync v2",
        crate::scenario::SyncProtocol::Sliding => "sliding sync (MSC4186)",
    }
}

/// The herd: room list, latencies, errors, hsbench's own CPU.
fn herd_md(md: &mut String, r: &RunResult) {
    if let Some(h) = &r.herd {
        let sliding = h.protocol == crate::scenario::SyncProtocol::Sliding;
        let what = match (sliding, h.sync) {
            (true, _) => "sliding sync room lists (MSC4186)",
            (false, crate::scenario::SyncKind::Initial) => "initial /sync",
            (false, crate::scenario::SyncKind::FullState) => "full-state /sync",
        };
        md.push_str(&format!(
            "### Herd: {} clients, {what} at one instant{}\n\n",
            h.clients,
            partial(h.partial)
        ));
        if let Some(l) = &h.room_list {
            md.push_str("| room list (from each client's intended start) | p50 | p90 | p99 | max | clients |\n|---|---:|---:|---:|---:|---:|\n");
            for (label, s) in [("first page", &l.first_page), ("whole list", &l.full_list)] {
                md.push_str(&format!(
                    "| {label} | {} | {} | {} | {} | {} |\n",
                    lat(s, s.p50_ms),
                    lat(s, s.p90_ms),
                    lat(s, s.p99_ms),
                    lat(s, s.max_ms),
                    s.count
                ));
            }
            md.push_str(&format!(
                "\n{} of {} clients loaded their list{} · {:.1} requests a client{}\n\n",
                l.loaded,
                l.loaded + l.failed,
                if l.failed > 0 {
                    format!(" · **{} failed**", l.failed)
                } else {
                    String::new()
                },
                l.requests_per_client,
                l.rooms_per_client
                    .map(|n| format!(" · {n:.1} rooms a list"))
                    .unwrap_or_default()
            ));
        }
        md.push_str("| latency (answered requests) | p50 | p90 | p99 | p99.9 | max | count |\n|---|---:|---:|---:|---:|---:|---:|\n");
        for (label, s) in [
            ("corrected (from intended start)", &h.corrected),
            ("raw (from send)", &h.raw),
        ] {
            md.push_str(&format!(
                "| {label} | {} | {} | {} | {} | {} | {} |\n",
                lat(s, s.p50_ms),
                lat(s, s.p90_ms),
                lat(s, s.p99_ms),
                lat(s, s.p999_ms),
                lat(s, s.max_ms),
                s.count
            ));
        }
        let errors = fmt_errors(&h.errors);
        md.push_str(&format!(
            "\n{} ok of {} requests · errors: {errors} · wall {} · {} received\n\n",
            h.ok,
            h.ok + h.errors.values().sum::<u64>(),
            fmt_ms(h.wall_ms),
            fmt_bytes(h.bytes_received as f64)
        ));
        if let (Some(cpu), Some(share)) = (h.harness_cpu_s, h.harness_cpu_share) {
            if share > crate::load::herd::HARNESS_CPU_LIMIT {
                md.push_str(&format!(
                    "> ⚠️ **hsbench itself used {:.0}% of a core** ({cpu:.2} CPU s) during the herd: above {:.0}%, the harness may have limited these figures. Use fewer clients per process (`--shard`) or a bigger machine.\n\n",
                    share * 100.0,
                    crate::load::herd::HARNESS_CPU_LIMIT * 100.0
                ));
            } else {
                md.push_str(&format!(
                    "hsbench's own CPU during the herd: {cpu:.2} s ({:.0}% of a core).\n\n",
                    share * 100.0
                ));
            }
        }
    }
}

/// The triggered herd: time to recover, re-syncs, endpoints.
fn triggered_md(md: &mut String, r: &RunResult) {
    if let Some(t) = &r.triggered {
        md.push_str(&format!(
            "### Triggered herd: {} long-poll clients, {} on the trigger, {}/s chatter{}\n\n",
            t.clients,
            t.reaction.describe(),
            t.chatter_rate,
            partial(t.partial)
        ));
        let rc = &t.recovery;
        if rc.baseline_per_s == 0.0 {
            md.push_str(
                "> ⚠️ **No deliveries during the baseline**: the server was already failing to deliver before the trigger, so the figures below have no baseline to recover to.\n\n",
            );
        }
        md.push_str(&format!(
            "**Time to recover: {}** · degraded {} after the trigger · worst window delivery p90 {} (baseline {}, limit {}) · lowest {:.0} deliveries/s (baseline {:.0}/s, floor {:.0}/s)\n\n",
            rc.time_to_recover_s.map_or(
                format!("not recovered within {:.0} s", rc.observed_s),
                |s| format!("{s:.1} s")
            ),
            rc.degraded_at_s.map_or("never".into(), |s| format!("{s:.1} s")),
            fmt_ms(rc.worst_p90_ms),
            fmt_ms(rc.baseline_p90_ms),
            fmt_ms(rc.latency_limit_ms),
            rc.lowest_per_s,
            rc.baseline_per_s,
            rc.throughput_floor_per_s,
        ));
        md.push_str(&format!(
            "Peak {} re-syncs in flight{} · {} clients re-synced, {} gave up{} · {} retries · reaction (trigger seen → re-synced) p50 {} p99 {} max {}\n\n",
            t.peak_concurrent_resyncs,
            t.time_to_saturation_s
                .map_or(String::new(), |s| format!(", reached {s:.2} s after the trigger")),
            t.reacted_ok,
            t.reacted_gave_up,
            t.never_saw_trigger()
                .map(|n| format!(", **{n} never saw the trigger**"))
                .unwrap_or_default(),
            t.resync_retries,
            fmt_ms(t.reaction_time.p50_ms),
            fmt_ms(t.reaction_time.p99_ms),
            fmt_ms(t.reaction_time.max_ms),
        ));
        endpoints_md(md, &t.endpoints, &t.deliveries);
        harness_md(md, &t.harness, "triggered herd");
        md.push_str(&format!("Recovery rule: {}.\n\n", rc.definition));
    }
}

/// The steady workload: rates and endpoints.
fn steady_md(md: &mut String, r: &RunResult) {
    if let Some(t) = &r.steady {
        md.push_str(&format!(
            "### Steady: {} long-poll clients, {} senders, {:.1} messages/s intended, {:.1}/s accepted{}\n\n",
            t.clients,
            t.senders,
            t.intended_per_s,
            t.achieved_per_s,
            partial(t.partial)
        ));
        endpoints_md(md, &t.endpoints, &t.deliveries);
        harness_md(md, &t.harness, "steady workload");
    }
}

/// The catch-up workload: time to read everything, pages, unread counts.
fn catchup_md(md: &mut String, r: &RunResult) {
    if let Some(c) = &r.catchup {
        md.push_str(&format!(
            "### Catch-up: {} readers, {} unread messages each, {} per page, over {}{}\n\n",
            c.readers,
            c.backlog,
            c.page,
            protocol_words(c.protocol),
            partial(c.partial)
        ));
        let counts = match (c.unread_before_min, c.unread_before_max, c.receipts_echoed) {
            (Some(lo), Some(hi), _) => format!(
                "unread count before {lo}–{hi}, after {}",
                c.unread_after_max
                    .map_or("not reported".into(), |n| n.to_string())
            ),
            (_, _, Some(echoed)) => format!(
                "{echoed} of {} receipts came back on the connection (sliding sync sends no unread counts)",
                c.readers
            ),
            _ => "no unread count reported".into(),
        };
        md.push_str(&format!(
            "**Catch-up time** (first request → read receipt accepted): p50 {} · max {} · {} of {} readers read everything · {} pages · {counts}\n\n",
            fmt_ms(c.catch_up.p50_ms),
            fmt_ms(c.catch_up.max_ms),
            c.caught_up,
            c.readers,
            c.pages,
        ));
        endpoints_md(
            md,
            &c.endpoints,
            &crate::load::engine::DeliveryResult::default(),
        );
        md.push_str(&format!(
            "Backlog written (setup, not timed) in {:.1} s ({:.0} messages/s).\n\n",
            c.backlog_write_s, c.backlog_write_per_s
        ));
        harness_md(md, &c.harness, "catch-up");
    }
}

/// The gates, each with its value.
fn thresholds_md(md: &mut String, r: &RunResult) {
    if !r.thresholds.is_empty() {
        let failed = r.thresholds.iter().filter(|t| !t.passed).count();
        md.push_str(&format!(
            "### Thresholds: {}\n\n| metric | condition | value | |\n|---|---|---:|---|\n",
            if failed == 0 {
                "all passed".to_string()
            } else {
                format!("**{failed} failed**")
            }
        ));
        for t in &r.thresholds {
            let value = match t.value {
                None => "no data".to_string(),
                Some(v) => catalogue::format(&t.metric, v),
            } + &t
                .detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            md.push_str(&format!(
                "| {} | {} | {value} | {} |\n",
                t.metric,
                t.condition,
                if t.passed { "✅" } else { "❌ failed" }
            ));
        }
        md.push('\n');
    }
}

/// How the dataset was loaded, step by step.
fn load_md(md: &mut String, r: &RunResult) {
    if let Some(load) = r.dataset.as_ref().and_then(|d| d.load.as_ref()) {
        md.push_str(&format!(
            "### Dataset load ({:.1} s; {}){}\n\n| step | count | seconds | rate |\n|---|---:|---:|---:|\n",
            load.total_seconds,
            if load.method.starts_with("direct") {
                load.method.clone()
            } else {
                format!("{} concurrent requests", load.concurrency)
            },
            partial(load.partial)
        ));
        for s in &load.steps {
            md.push_str(&format!(
                "| {} | {} | {:.1} | {:.1}/s |\n",
                s.name, s.count, s.seconds, s.rate_per_s
            ));
        }
        md.push('\n');
    }
}

pub(super) fn pct(c: &crate::profile::Change) -> String {
    c.relative()
        .map_or("–".into(), |r| format!("{:+.0}%", r * 100.0))
}

pub(super) fn profile_section(md: &mut String, p: &crate::profile::ProfileResult) {
    md.push_str(
        "### Profiles

",
    );
    if let Some(why) = &p.unavailable {
        md.push_str(&format!(
            "**No profiles: {why}**

"
        ));
        return;
    }
    if let Some(t) = &p.tool {
        md.push_str(&format!(
            "{} {} at {} Hz.\n\n",
            t.kind.name(),
            t.version,
            p.rate_hz
        ));
    }
    if let Some(note) = &p.note {
        md.push_str(&format!("**Note: {note}.**\n\n"));
    }
    for b in &p.boots {
        md.push_str(&format!(
            "**{}** ({}; ready in {}): ",
            b.boot.label,
            b.mode,
            fmt_ms(b.boot.time_to_ready_ms)
        ));
        let links: Vec<String> = b
            .flamegraphs
            .iter()
            .map(|f| match &f.svg {
                Some(svg) => format!("[{}]({svg})", f.scope),
                None => format!("{} ({})", f.scope, f.note.as_deref().unwrap_or("none")),
            })
            .collect();
        md.push_str(&links.join(" · "));
        if let Some(e) = &b.error {
            md.push_str(&format!(" **no flamegraphs: {e}**"));
        }
        md.push_str("\n\n");
        if let Some(o) = &b.overhead {
            md.push_str(&format!(
                "Profiler overhead against the median of {} unprofiled warm boots: time to ready {} → {} ({})",
                o.baseline_boots,
                fmt_ms(o.time_to_ready_ms.without),
                fmt_ms(o.time_to_ready_ms.with),
                pct(&o.time_to_ready_ms)
            ));
            if let Some(c) = &o.server_cpu_to_ready_s {
                md.push_str(&format!(
                    "; server CPU to ready {:.2} s → {:.2} s ({})",
                    c.without,
                    c.with,
                    pct(c)
                ));
            }
            if let Some(cpu) = b.profiler_cpu_s {
                md.push_str(&format!("; the profiler itself {cpu:.2} s CPU"));
            }
            md.push_str("\n\n| phase | without | with | change |\n|---|---:|---:|---:|\n");
            for ph in &o.phases {
                md.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    ph.name,
                    fmt_ms(ph.change.without),
                    fmt_ms(ph.change.with),
                    pct(&ph.change)
                ));
            }
            md.push('\n');
        }
    }
    for l in &p.load {
        md.push_str(&format!("**load: {}** ({}): ", l.workload, l.mode));
        match (&l.flamegraph, &l.error) {
            (_, Some(e)) => md.push_str(&format!("**no profile: {e}**")),
            (Some(f), None) => match &f.svg {
                Some(svg) => md.push_str(&format!("[flamegraph]({svg}), {} samples", f.total)),
                None => md.push_str(f.note.as_deref().unwrap_or("no samples")),
            },
            (None, None) => md.push_str("no profile"),
        }
        if let (Some(r), Some(server)) = (&l.report, l.server_cpu_s)
            && let Some(cpu) = r.profiler_cpu_s
        {
            md.push_str(&format!(
                "; profiler CPU {cpu:.2} s vs server CPU {server:.2} s over {:.1} s",
                r.duration_s
            ));
        }
        md.push_str("\n\n");
    }
}

/// The endpoint table and the delivery line of a long-running workload.
pub(super) fn endpoints_md(
    md: &mut String,
    eps: &[crate::load::engine::EndpointResult],
    d: &crate::load::engine::DeliveryResult,
) {
    md.push_str("| endpoint | model | ok / done | errors | cut at end | corrected p50 | p99 | max | raw p50 | p99 | max | in / out |\n|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for e in eps {
        let errors = fmt_errors(&e.errors);
        md.push_str(&format!(
            "| `{}` | {} | {} / {} | {errors} | {} | {} | {} | {} | {} | {} | {} | {} / {} |\n",
            e.name,
            e.model.split(';').next().unwrap_or(""),
            e.ok,
            e.completed,
            e.cancelled,
            lat(&e.corrected, e.corrected.p50_ms),
            lat(&e.corrected, e.corrected.p99_ms),
            lat(&e.corrected, e.corrected.max_ms),
            lat(&e.raw, e.raw.p50_ms),
            lat(&e.raw, e.raw.p99_ms),
            lat(&e.raw, e.raw.max_ms),
            fmt_bytes(e.bytes_in as f64),
            fmt_bytes(e.bytes_out as f64),
        ));
    }
    if d.messages == 0 {
        md.push('\n');
        return;
    }
    md.push_str(&format!(
        "\nDelivery (send's 200 → receiver's /sync answer): {} messages, {} of {} deliveries seen ({} missing), p50 {} p90 {} p99 {} max {}\n",
        d.messages,
        d.delivered,
        d.expected,
        d.missing,
        lat(&d.latency, d.latency.p50_ms),
        lat(&d.latency, d.latency.p90_ms),
        lat(&d.latency, d.latency.p99_ms),
        lat(&d.latency, d.latency.max_ms),
    ));
    if d.gaps > 0 {
        md.push_str(&format!(
            "\nReceivers fell behind: {} answers had a limited timeline (a gap); paging back through them with /messages found {} of the deliveries.\n",
            d.gaps, d.backfilled
        ));
    }
    md.push('\n');
}

/// hsbench's own load during a workload, loud when it may have been the bottleneck.
pub(super) fn harness_md(md: &mut String, h: &crate::load::workload::HarnessLoad, what: &str) {
    if h.cpu_share > crate::load::herd::HARNESS_CPU_LIMIT {
        md.push_str(&format!(
            "> ⚠️ **hsbench itself used {:.0}% of a core** ({:.2} CPU s) during the {what}: above {:.0}%, the harness may have limited these figures.\n\n",
            h.cpu_share * 100.0,
            h.cpu_s,
            crate::load::herd::HARNESS_CPU_LIMIT * 100.0
        ));
    } else {
        md.push_str(&format!(
            "hsbench's own use during the {what}: {:.2} CPU s ({:.0}% of a core), peak RSS {}.\n\n",
            h.cpu_s,
            h.cpu_share * 100.0,
            fmt_bytes(h.max_rss_bytes as f64)
        ));
    }
}
