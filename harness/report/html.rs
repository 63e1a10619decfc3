//! `report.html`: one self-contained page per run. Inline CSS and inline SVG only: no script,
//! no font, no image or stylesheet from anywhere, so it opens offline, from a CI artifact, or
//! attached to an issue. Flamegraphs stay separate files (inferno's SVGs carry their own
//! script for zooming) and are linked.
//!
//! Every section is built from `result.json` plus the files the run wrote beside it
//! (waterfalls, `.hist` histograms, the `.hlog` interval log, `.resources.csv` samples,
//! `compare.json`); a missing file leaves its section saying what is missing, never a broken page.

use std::fmt::Write;
use std::path::Path;

use crate::analysis::compare::Verdict;
use crate::boot::summary::{BootSummary, NamedStat, Stat};
use crate::report::html_workloads::{CORRECTED, RAW, percentile_points};
use crate::report::svg::{self, BoxRow, Panel};
use crate::result::{RunResult, RunStatus};
use crate::util::fmt::{esc, fmt_bytes, fmt_ms};

const WARM: &str = "#1f77b4";
const COLD: &str = "#9467bd";

const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1000px;padding:16px 20px 60px;color:#222;line-height:1.4}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}.meta{color:#555;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f5f5f5}
.pass{color:#2a7d2a}.fail{color:#b00020;font-weight:bold}.note{color:#666;font-size:13px}
.status{display:inline-block;padding:1px 8px;border-radius:9px;font-size:12px;color:#fff}
.status.complete{background:#2a7d2a}.status.failed,.status.interrupted,.status.killed{background:#b00020}.status.running{background:#b07000}
.error{background:#fff0f0;border:1px solid #e0b0b0;padding:8px;white-space:pre-wrap;font-family:monospace;font-size:12px}
svg.plot,figure svg{max-width:100%;height:auto}figure{margin:8px 0}details{margin:4px 0}summary{cursor:pointer}
nav a{margin-right:12px;font-size:13px}
table.compact{font-size:12px}table.compact td,table.compact th{padding:2px 5px;white-space:nowrap}
.alert{padding:6px 10px;margin:4px 0;border-radius:4px;font-size:14px}.alert.fail{background:#fde8ea;border:1px solid #b00020;color:#b00020;font-weight:bold}
.alert.warn{background:#fff6e0;border:1px solid #b07000;color:#6b4500}.partial{color:#b07000;font-weight:bold}
"#;

/// The report of the run in `dir`.
pub fn render(r: &RunResult, dir: &Path) -> String {
    let scenario = r.scenario_name();
    let server = r.server_label();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>hsbench · {} · {}</title><style>{CSS}</style></head><body>\n",
        esc(scenario),
        esc(&server)
    );
    let status = match r.status {
        RunStatus::Complete => "complete",
        RunStatus::Failed => "failed",
        RunStatus::Interrupted => "interrupted",
        RunStatus::Running => "running",
        RunStatus::Killed => "killed",
    };
    let _ = writeln!(
        h,
        "<h1>hsbench · {} · {}</h1><p class=\"meta\"><span class=\"status {status}\">{status}</span> \
         run <code>{}</code> · started {} · {:.0} s · hsbench {}{}</p>",
        esc(scenario),
        esc(&server),
        esc(&r.run_id),
        esc(&r.started_at),
        r.duration_s,
        esc(&r.harness.version),
        r.harness
            .git_revision
            .as_deref()
            .map(|g| format!(" ({})", esc(g)))
            .unwrap_or_default()
    );
    if let Some(d) = r.scenario["description"].as_str() {
        let _ = writeln!(h, "<p>{}</p>", esc(d));
    }
    alerts(&mut h, r);
    let mut nav = vec![("boot", "Boot")];
    if !r.work_boots.is_empty() {
        nav.push(("work", "Work"));
    }
    for (present, id, label) in [
        (r.herd.is_some(), "herd", "Herd"),
        (r.triggered.is_some(), "triggered", "Triggered herd"),
        (r.steady.is_some(), "steady", "Steady traffic"),
        (r.catchup.is_some(), "catchup", "Catch-up"),
    ] {
        if present {
            nav.push((id, label));
        }
    }
    nav.extend([
        ("resources", "Resources"),
        ("profiles", "Flamegraphs"),
        ("environment", "Environment"),
    ]);
    h.push_str("<nav>");
    for (id, label) in nav {
        let _ = write!(h, "<a href=\"#{id}\">{label}</a>");
    }
    h.push_str("</nav>\n");
    thresholds(&mut h, r);
    comparison(&mut h, dir);
    boot(&mut h, r, dir);
    if r.herd.is_some() {
        herd(&mut h, r, dir);
    }
    crate::report::html_workloads::triggered(&mut h, r, dir);
    crate::report::html_workloads::steady(&mut h, r, dir);
    crate::report::html_workloads::catchup(&mut h, r, dir);
    resources(&mut h, r, dir);
    profiles(&mut h, r);
    environment(&mut h, r);
    h.push_str("</body></html>\n");
    h
}

/// What failed or went wrong, first on the page: the run's error, failed gates (the error gate
/// included), hung shutdowns, a trigger the server did not take.
fn alerts(h: &mut String, r: &RunResult) {
    let failed: Vec<_> = r.thresholds.iter().filter(|t| !t.passed).collect();
    let warnings = crate::report::markdown::problems(r);
    if r.error.is_none() && failed.is_empty() && warnings.is_empty() {
        return;
    }
    h.push_str("<div class=\"alerts\" id=\"alerts\">\n");
    if let Some(e) = &r.error {
        let _ = writeln!(h, "<div class=\"error\" id=\"error\">{}</div>", esc(e));
    }
    for t in failed {
        let _ = writeln!(
            h,
            "<div class=\"alert fail\">FAILED: {}</div>",
            esc(&t.reason())
        );
    }
    for w in warnings {
        let _ = writeln!(h, "<div class=\"alert warn\">WARNING: {}</div>", esc(&w));
    }
    h.push_str("</div>\n");
}

fn thresholds(h: &mut String, r: &RunResult) {
    if r.thresholds.is_empty() {
        return;
    }
    h.push_str("<h2 id=\"thresholds\">Thresholds</h2><table><tr><th>metric</th><th>condition</th><th>value</th><th>result</th></tr>\n");
    for t in &r.thresholds {
        let value = t.value.map_or("—".into(), |v| {
            crate::metrics::catalogue::format(&t.metric, v)
        }) + &t
            .detail
            .as_deref()
            .map(|d| format!(" ({})", esc(d)))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{value}</td><td class=\"{}\">{}</td></tr>",
            esc(&t.metric),
            esc(&t.condition),
            if t.passed { "pass" } else { "fail" },
            if t.passed { "✓ passed" } else { "✗ failed" }
        );
    }
    h.push_str("</table>\n");
}

/// `compare.json`, written by `hsbench run --baseline NAME`.
fn comparison(h: &mut String, dir: &Path) {
    let Ok(text) = std::fs::read_to_string(dir.join("compare.json")) else {
        return;
    };
    let Ok(c) = serde_json::from_str::<crate::analysis::compare::Comparison>(&text) else {
        let _ = writeln!(
            h,
            "<h2 id=\"comparison\">Comparison</h2><p class=\"note\">compare.json is not readable.</p>"
        );
        return;
    };
    let regs = c.regressions();
    let _ = writeln!(
        h,
        "<h2 id=\"comparison\">Comparison with the baseline</h2><p>{}</p>",
        if regs.is_empty() {
            "<span class=\"pass\">No regression.</span>".to_string()
        } else {
            format!(
                "<span class=\"fail\">Regressed: {}</span>",
                regs.iter()
                    .map(|m| format!("{} {:+.0}%", esc(&m.metric), (m.ratio - 1.0) * 100.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    h.push_str("<table><tr><th>metric</th><th>baseline</th><th>candidate</th><th>change</th><th>95% interval</th><th>p</th><th>verdict</th><th title=\"the smallest change these samples would have called in about 95% of repeats\">detectable</th></tr>\n");
    let mut rows: Vec<_> = c.metrics.iter().collect();
    rows.sort_by(|a, b| b.ratio.total_cmp(&a.ratio));
    for m in rows {
        let f = |v: f64| crate::report::compare::fmt_value(&m.metric, v);
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:+.1}%</td><td>{:+.1}% … {:+.1}%</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            esc(&m.metric),
            f(m.baseline_median),
            f(m.candidate_median),
            (m.ratio - 1.0) * 100.0,
            (m.ratio_low - 1.0) * 100.0,
            (m.ratio_high - 1.0) * 100.0,
            m.p_value.map_or("—".into(), |p| format!("{p:.3}")),
            match m.verdict {
                Verdict::Regressed => "fail",
                Verdict::Improved => "pass",
                _ => "",
            },
            // No emoji: a machine without an emoji font would draw boxes.
            match m.verdict {
                Verdict::Regressed => "▲ regressed",
                Verdict::Improved => "▼ improved",
                Verdict::NoChange => "no change",
                Verdict::NotEnoughSamples => "not enough samples",
            },
            m.detectable
                .map_or("—".into(), |d| format!("±{:.1}%", d * 100.0))
        );
    }
    h.push_str("</table>\n");
}

fn stat_cells(s: Option<&Stat>) -> String {
    match s {
        Some(s) => format!(
            "<td>{}</td><td>{} – {}</td><td>{}</td><td>{}</td><td>{}</td>",
            fmt_ms(s.median),
            fmt_ms(s.median_ci_low),
            fmt_ms(s.median_ci_high),
            fmt_ms(s.min),
            fmt_ms(s.max),
            s.n
        ),
        None => "<td>—</td><td></td><td></td><td></td><td>0</td>".into(),
    }
}

fn summary_table(h: &mut String, title: &str, s: &BootSummary) {
    let _ = writeln!(
        h,
        "<h3>{}</h3><table class=\"phases\"><tr><th>phase</th><th>median</th><th>95% CI of median</th><th>min</th><th>max</th><th>n</th></tr>",
        esc(title)
    );
    let row = |h: &mut String, name: &str, st: Option<&Stat>, missing: u32| {
        let _ = writeln!(
            h,
            "<tr><td>{}{}</td>{}</tr>",
            esc(name),
            if missing > 0 {
                format!(" <span class=\"note\">(missing in {missing})</span>")
            } else {
                String::new()
            },
            stat_cells(st)
        );
    };
    for p in &s.phases {
        row(h, &p.name, p.stat.as_ref(), p.missing_in);
    }
    row(h, "time to ready", s.time_to_ready_ms.as_ref(), 0);
    let NamedStat {
        stat, missing_in, ..
    } = &s.shutdown_ms;
    row(h, "shutdown", stat.as_ref(), *missing_in);
    if let Some(bg) = &s.background_done_ms {
        row(
            h,
            "background work finished (from spawn)",
            bg.stat.as_ref(),
            bg.missing_in,
        );
    }
    for r in &s.server_reported_ms {
        row(
            h,
            &format!("{}, as the server reports it", r.name),
            r.stat.as_ref(),
            r.missing_in,
        );
    }
    h.push_str("</table>\n");
    if let Some(rss) = &s.peak_rss_bytes {
        let _ = writeln!(
            h,
            "<p class=\"note\">Peak RSS median {} (min {}, max {}); CPU to ready median {:.2} s.</p>",
            fmt_bytes(rss.median),
            fmt_bytes(rss.min),
            fmt_bytes(rss.max),
            s.cpu_seconds_to_ready.map_or(f64::NAN, |c| c.median)
        );
    }
    for o in &s.outliers {
        let _ = writeln!(
            h,
            "<p class=\"note\">Outlier: {} in {} = {} (median {}): {}</p>",
            esc(&o.metric),
            esc(&o.boot),
            fmt_ms(o.value),
            fmt_ms(o.median),
            esc(&o.advice)
        );
    }
}

fn boot(h: &mut String, r: &RunResult, dir: &Path) {
    h.push_str("<h2 id=\"boot\">Boot</h2>\n");
    let timed: Vec<_> = r.boots.iter().filter(|b| !b.warmup).collect();
    let work = crate::report::work::html(r);
    if timed.is_empty() {
        if work.is_empty() {
            h.push_str("<p class=\"note\">No timed boots in this run.</p>\n");
        } else {
            h.push_str("<p class=\"note\">No unmetered timed boots: this run counted work only (<code>[boot] meter = \"work\"</code>).</p>\n");
            h.push_str(&work);
        }
        return;
    }
    if let Some(s) = &r.boot_summary {
        summary_table(h, &format!("Warm boots ({})", s.boots), s);
    }
    if let Some(s) = &r.cold_boot_summary {
        summary_table(h, &format!("Cold boots ({})", s.boots), s);
    }
    if let Some(s) = &r.crash_boot_summary {
        summary_table(
            h,
            &format!(
                "First boots after a SIGKILL with writes in flight ({})",
                s.boots
            ),
            s,
        );
    }
    h.push_str(&work);
    // Box plots across repeats: every phase, time to ready, shutdown; warm and cold apart.
    let mut names: Vec<String> = timed[0].phases.iter().map(|p| p.name.clone()).collect();
    names.push("time to ready".into());
    names.push("shutdown".into());
    let values = |name: &str, cold: bool| -> Vec<f64> {
        timed
            .iter()
            .filter(|b| b.cold == cold)
            .filter_map(|b| match name {
                "time to ready" => Some(b.time_to_ready_ms),
                "shutdown" => b.shutdown_ms,
                _ => b
                    .phases
                    .iter()
                    .find(|p| p.name == name)
                    .and_then(|p| p.duration_ms),
            })
            .collect()
    };
    let any_cold = timed.iter().any(|b| b.cold);
    let rows: Vec<BoxRow> = names
        .iter()
        .map(|n| {
            let mut groups = vec![("warm".to_string(), WARM, values(n, false))];
            if any_cold {
                groups.push(("cold".to_string(), COLD, values(n, true)));
            }
            BoxRow {
                label: n.clone(),
                groups,
            }
        })
        .collect();
    let _ = writeln!(
        h,
        "<h3>Phases across repeats</h3><figure id=\"boxplots\">{}</figure>",
        svg::boxplots(
            &format!("Boot phases over {} timed boots", timed.len()),
            &rows
        )
    );
    // PostgreSQL's own view: the slowest statements from spawn to ready.
    let slowest = crate::report::markdown::slowest_statements(&timed, 10);
    if !slowest.is_empty() {
        let _ = writeln!(
            h,
            "<h3>Slowest start-up statements (PostgreSQL)</h3><p class=\"note\">From the private cluster's statement log (<code>log_min_duration_statement</code>), spawn to ready, over every timed boot.</p><table id=\"db-statements\"><tr><th>ran</th><th>ended after spawn</th><th>boot</th><th>statement</th></tr>"
        );
        for (label, st) in slowest {
            let _ = writeln!(
                h,
                "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td><code>{}</code></td></tr>",
                fmt_ms(st.ms),
                fmt_ms(st.ended_at_ms),
                esc(label),
                esc(&st.statement)
            );
        }
        h.push_str("</table>\n");
    }
    // Waterfalls, one per boot, from the SVG the run wrote.
    h.push_str("<h3>Waterfall per boot</h3>\n");
    for (i, b) in r.boots.iter().enumerate() {
        let file = dir.join(format!("{}-waterfall.svg", b.label));
        let label = format!(
            "{}{}{} · ready {}",
            b.label,
            if b.cold { " (cold)" } else { "" },
            if b.warmup { " (warm-up)" } else { "" },
            fmt_ms(b.time_to_ready_ms)
        );
        match std::fs::read_to_string(&file) {
            Ok(s) if s.trim_start().starts_with("<svg") => {
                let _ = writeln!(
                    h,
                    "<details class=\"waterfall\"{}><summary>{}</summary><figure>{}</figure></details>",
                    if i == 0 { " open" } else { "" },
                    esc(&label),
                    s.replacen("<svg ", "<svg class=\"plot waterfall\" ", 1)
                );
            }
            _ => {
                let _ = writeln!(
                    h,
                    "<p class=\"note\">{}: no waterfall ({} missing).</p>",
                    esc(&label),
                    esc(&file.file_name().unwrap_or_default().to_string_lossy())
                );
            }
        }
    }
}

fn herd(h: &mut String, r: &RunResult, dir: &Path) {
    h.push_str("<h2 id=\"herd\">Thundering herd</h2>\n");
    let Some(hr) = &r.herd else {
        h.push_str("<p class=\"note\">This run had no herd workload.</p>\n");
        return;
    };
    crate::report::html_workloads::partial(h, hr.partial);
    let _ = writeln!(
        h,
        "<p>{} clients, {} of <code>{}</code>; {}. {} requests answered, {} failed, {} received, wall {}.</p>",
        hr.clients,
        match (hr.protocol, hr.sync) {
            (crate::scenario::SyncProtocol::Sliding, _) => "sliding sync room lists",
            (_, crate::scenario::SyncKind::Initial) => "initial sync",
            (_, crate::scenario::SyncKind::FullState) => "full-state sync",
        },
        esc(&hr.endpoint),
        esc(&hr.model),
        hr.ok,
        hr.errors.values().sum::<u64>(),
        fmt_bytes(hr.bytes_received as f64),
        fmt_ms(hr.wall_ms)
    );
    if let Some(l) = &hr.room_list {
        h.push_str("<table id=\"herd-room-list\"><tr><th>room list, from each client's intended start</th><th>clients</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>\n");
        for (label, s) in [("first page", &l.first_page), ("whole list", &l.full_list)] {
            let _ = writeln!(
                h,
                "<tr><td>{label}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                s.count,
                crate::report::markdown::lat(s, s.p50_ms),
                crate::report::markdown::lat(s, s.p90_ms),
                crate::report::markdown::lat(s, s.p99_ms),
                crate::report::markdown::lat(s, s.max_ms)
            );
        }
        let _ = writeln!(
            h,
            "</table>\n<p class=\"note\">{} of {} clients loaded their list; {:.1} requests a client{}.</p>",
            l.loaded,
            l.loaded + l.failed,
            l.requests_per_client,
            l.rooms_per_client
                .map(|n| format!(", {n:.1} rooms a list"))
                .unwrap_or_default()
        );
    }
    h.push_str("<table id=\"herd-latency\"><tr><th>request latency</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>\n");
    for (label, s) in [
        ("corrected (from the intended start)", &hr.corrected),
        ("raw (from the actual send)", &hr.raw),
    ] {
        let _ = writeln!(
            h,
            "<tr><td>{label}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s.count,
            crate::report::markdown::lat(s, s.p50_ms),
            crate::report::markdown::lat(s, s.p90_ms),
            crate::report::markdown::lat(s, s.p99_ms),
            crate::report::markdown::lat(s, s.p999_ms),
            crate::report::markdown::lat(s, s.max_ms)
        );
    }
    h.push_str("</table>\n");
    if !hr.errors.is_empty() {
        h.push_str("<table><tr><th>error</th><th>count</th></tr>");
        for (k, v) in &hr.errors {
            let _ = write!(h, "<tr><td>{}</td><td>{v}</td></tr>", esc(k));
        }
        h.push_str("</table>\n");
    }
    let mut series = Vec::new();
    for (label, color, file) in [
        ("corrected", CORRECTED, "herd-sync.hist"),
        ("raw", RAW, "herd-sync-raw.hist"),
    ] {
        if let Some(p) = percentile_points(&dir.join(file)) {
            series.push((label.to_string(), color, p));
        }
    }
    if series.is_empty() {
        h.push_str(
            "<p class=\"note\">No histogram files (herd-sync.hist) beside result.json.</p>\n",
        );
    } else {
        let _ = writeln!(
            h,
            "<h3>Latency distribution</h3><figure id=\"percentiles\">{}</figure>",
            svg::percentiles(
                "Herd request latency by percentile: corrected vs raw",
                &series
            )
        );
    }
    match crate::metrics::read_interval_log(&dir.join("herd-sync.hlog")) {
        Ok(points) if !points.is_empty() => {
            let line = |tag: &str, f: fn(&crate::metrics::IntervalPoint) -> f64| -> Vec<(f64, f64)> {
                points
                    .iter()
                    .filter(|p| p.tag == tag && p.count > 0)
                    .map(|p| (p.start_s + p.duration_s / 2.0, f(p)))
                    .collect()
            };
            let throughput: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.tag == "corrected")
                .map(|p| (p.start_s + p.duration_s / 2.0, p.count as f64 / p.duration_s))
                .collect();
            let panels = vec![
                Panel::new("latency", "ms", vec![
                        ("corrected p50".into(), "#ff9896", line("corrected", |p| p.p50_ms)),
                        ("corrected p99".into(), CORRECTED, line("corrected", |p| p.p99_ms)),
                        ("raw p99".into(), RAW, line("raw", |p| p.p99_ms)),
                    ]),
                Panel::new("responses", "/s", vec![("completed".into(), "#2ca02c", throughput)]),
            ];
            let marks = vec![
                ("release".to_string(), 0.0, "#000"),
                ("last response".to_string(), hr.wall_ms / 1000.0, "#7f7f7f"),
            ];
            let _ = writeln!(
                h,
                "<h3>Latency over time</h3><p class=\"note\">From the interval log herd-sync.hlog ({} intervals of {}), by completion time since the release.</p><figure id=\"latency-over-time\">{}</figure>",
                points.iter().filter(|p| p.tag == "corrected").count(),
                fmt_ms(hr.interval_ms.unwrap_or(points[0].duration_s * 1000.0)),
                svg::timeseries("Herd latency and completions over time", &panels, &marks)
            );
        }
        _ => h.push_str(
            "<p class=\"note\">No interval log (herd-sync.hlog): latency over time is not available for this run.</p>\n",
        ),
    }
}

/// CPU (% of a core) and RSS over time of a resource-sample series.
fn resource_panels(samples: &[crate::metrics::ResourceSample]) -> Vec<Panel> {
    let rss: Vec<(f64, f64)> = samples
        .iter()
        .map(|p| (p.t_ms / 1000.0, p.rss_bytes as f64 / (1 << 20) as f64))
        .collect();
    let cpu: Vec<(f64, f64)> = crate::metrics::cpu_percent(samples)
        .into_iter()
        .map(|(t, c)| (t / 1000.0, c))
        .collect();
    let fds: Vec<(f64, f64)> = samples
        .iter()
        .map(|p| (p.t_ms / 1000.0, p.fds as f64))
        .collect();
    vec![
        Panel::new("CPU", "% of a core", vec![("CPU".into(), "#ff7f0e", cpu)]),
        Panel::new("RSS", "MiB", vec![("RSS".into(), "#1f77b4", rss)]),
        Panel::new("open fds", "", vec![("fds".into(), "#8c564b", fds)]),
    ]
}

fn resources(h: &mut String, r: &RunResult, dir: &Path) {
    h.push_str("<h2 id=\"resources\">Resources</h2><p class=\"note\">The server's process tree (and a private PostgreSQL's), sampled from /proc. Each boot's own timeline is under its waterfall.</p>\n");
    let mut any = false;
    if let Some(wb) = &r.workload_boot
        && let Ok(samples) = crate::metrics::read_samples_csv(&dir.join("workload.resources.csv"))
    {
        let mut marks = vec![("ready".to_string(), wb.time_to_ready_ms / 1000.0, "#2ca02c")];
        if let Some(hr) = &r.herd
            && let Some(rel) = hr.released_unix_ms
        {
            let t = (rel - wb.spawn_unix_ms) / 1000.0;
            marks.push(("herd".into(), t, CORRECTED));
            marks.push(("herd done".into(), t + hr.wall_ms / 1000.0, "#7f7f7f"));
        }
        let at = |origin_unix_ms: f64| (origin_unix_ms - wb.spawn_unix_ms) / 1000.0;
        if let Some(t) = &r.triggered {
            marks.push((
                "trigger".into(),
                at(t.origin_unix_ms) + t.recovery.trigger_s,
                "#000",
            ));
        }
        if let Some(t) = &r.steady {
            marks.push(("steady".into(), at(t.origin_unix_ms), "#2ca02c"));
        }
        if let Some(c) = &r.catchup {
            marks.push(("catch-up".into(), at(c.origin_unix_ms), "#9467bd"));
        }
        let _ = writeln!(
            h,
            "<h3>During the workloads</h3><figure id=\"workload-resources\">{}</figure>",
            svg::timeseries(
                "Server resources from spawn to shutdown (workload boot)",
                &resource_panels(&samples),
                &marks
            )
        );
        any = true;
    }
    if let Ok(samples) = crate::metrics::read_samples_csv(&dir.join("seed.resources.csv")) {
        let _ = writeln!(
            h,
            "<h3>While loading the dataset</h3><figure id=\"seed-resources\">{}</figure>",
            svg::timeseries(
                "Server resources while the dataset was loaded",
                &resource_panels(&samples),
                &[]
            )
        );
        any = true;
    }
    if !any {
        h.push_str("<p class=\"note\">No workload or loading timeline in this run.</p>\n");
    }
}

fn profiles(h: &mut String, r: &RunResult) {
    h.push_str("<h2 id=\"profiles\">Flamegraphs</h2>\n");
    let Some(p) = &r.profile else {
        h.push_str(
            "<p class=\"note\">Not profiled (add <code>[profile]</code> to the scenario).</p>\n",
        );
        return;
    };
    if let Some(why) = &p.unavailable {
        let _ = writeln!(h, "<p class=\"fail\">No profiles: {}</p>", esc(why));
    }
    if let Some(note) = &p.note {
        let _ = writeln!(h, "<p class=\"alert warn\">{}.</p>", esc(note));
    }
    let link = |h: &mut String, f: &crate::profile::FlameFile| match &f.svg {
        Some(svg) => {
            let _ = writeln!(
                h,
                "<li><a class=\"flamegraph\" href=\"{0}\">{1}</a> <span class=\"note\">{2} – {3}, {4} {5}</span></li>",
                esc(svg),
                esc(&f.scope),
                fmt_ms(f.from_ms),
                fmt_ms(f.to_ms),
                f.total,
                esc(&f.unit)
            );
        }
        None => {
            let _ = writeln!(
                h,
                "<li>{} <span class=\"note\">not drawn: {}</span></li>",
                esc(&f.scope),
                esc(f.note.as_deref().unwrap_or("no samples"))
            );
        }
    };
    for b in &p.boots {
        let _ = writeln!(
            h,
            "<h3>Boot {} ({})</h3><ul>",
            esc(&b.boot.label),
            esc(&b.mode)
        );
        for f in &b.flamegraphs {
            link(h, f);
        }
        h.push_str("</ul>\n");
        if let Some(e) = &b.error {
            let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(e));
        }
    }
    if !p.load.is_empty() {
        h.push_str("<h3>Workloads</h3><ul>\n");
        for l in &p.load {
            match &l.flamegraph {
                Some(f) => link(h, f),
                None => {
                    let _ = writeln!(
                        h,
                        "<li>{}: {}</li>",
                        esc(&l.workload),
                        esc(l.error.as_deref().unwrap_or("no flamegraph"))
                    );
                }
            }
        }
        h.push_str("</ul>\n");
    }
}

fn environment(h: &mut String, r: &RunResult) {
    let m = &r.machine;
    h.push_str("<h2 id=\"environment\">Environment</h2><table id=\"fingerprint\">\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(&v));
    };
    row("CPU", m.cpu_model.clone());
    row("cores", m.cores.to_string());
    row("memory", fmt_bytes(m.memory_bytes as f64));
    row("kernel", m.kernel.clone());
    row("OS", m.os.clone());
    row("host", m.hostname.clone());
    row(
        "hsbench",
        format!(
            "{} {}",
            r.harness.version,
            r.harness.git_revision.clone().unwrap_or_default()
        ),
    );
    row(
        "hsbench's own use",
        format!(
            "{:.1} CPU s, peak RSS {}",
            r.harness.self_usage.cpu_user_s + r.harness.self_usage.cpu_sys_s,
            fmt_bytes(r.harness.self_usage.max_rss_bytes as f64)
        ),
    );
    if let Some(s) = &r.server {
        row(
            "server",
            format!("{} {} on {}", s.kind, s.version, s.database),
        );
        if let Some(d) = &s.database_detail {
            row("database", d.clone());
        }
    }
    if let Some(l) = &r.limits {
        row("server limits", crate::server::limits::describe(&l.applied));
        row("throttling", l.throttling_line());
        for n in &l.applied.notes {
            row("limits note", n.clone());
        }
    }
    if let Some(d) = &r.dataset {
        let t = &d.totals;
        row(
            "dataset",
            format!(
                "{} users, {} rooms (largest {}), {} memberships, {} timeline events, {} state events (spec {})",
                t.users,
                t.rooms,
                t.largest_room,
                t.memberships,
                t.timeline_events,
                t.state_events,
                &d.spec_hash[..d.spec_hash.len().min(12)]
            ),
        );
        if let Some(f) = &d.fixture {
            row(
                "fixture",
                format!(
                    "{} ({}, {})",
                    f.key,
                    if f.reused {
                        "restored"
                    } else {
                        "built by this run"
                    },
                    fmt_bytes(f.size_bytes as f64)
                ),
            );
        }
    }
    h.push_str("</table>\n");
}
