//! report.html's sections for the long-running workloads: the triggered herd (the storm and its
//! recovery), steady traffic and catch-up. Each is drawn from result.json and the files the
//! workload wrote beside it (`<workload>.hlog`, `<workload>-*.hist`, `triggered-resyncs.csv`);
//! a missing file leaves a note, never a broken page.

use std::fmt::Write;
use std::path::Path;

use crate::load::engine::EndpointResult;
use crate::metrics::IntervalPoint;
use crate::report::markdown::lat;
use crate::report::svg::{self, Line, Panel};
use crate::result::RunResult;
use crate::util::fmt::{esc, fmt_bytes, fmt_ms};

pub(crate) const CORRECTED: &str = "#d62728";
pub(crate) const RAW: &str = "#1f77b4";
const DELIVERY: &str = "#2ca02c";
const P90: &str = "#ff7f0e";
const MAX: &str = "#7f7f7f";

/// One row per endpoint: requests, answered, failed by kind, cut at the end, latencies of the
/// answered requests (corrected and raw), bytes.
fn endpoints_table(h: &mut String, id: &str, eps: &[EndpointResult]) {
    let _ = writeln!(
        h,
        "<table class=\"compact\" id=\"{id}\"><tr><th>endpoint</th><th>sent</th><th>answered</th><th>failed</th><th>cut at end</th>\
         <th>corrected p50</th><th>p90</th><th>p99</th><th>max</th><th>raw p50</th><th>raw p99</th><th>peak in flight</th><th>received</th></tr>"
    );
    for e in eps {
        let failed: u64 = e.errors.values().sum();
        let kinds = e
            .errors
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            h,
            "<tr><td><code title=\"{}\">{}</code></td><td>{}</td><td>{}</td><td class=\"{}\">{}{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.endpoint),
            esc(&e.name),
            e.started,
            e.ok,
            if failed > 0 { "fail" } else { "" },
            failed,
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", esc(&kinds))
            },
            e.cancelled,
            lat(&e.corrected, e.corrected.p50_ms),
            lat(&e.corrected, e.corrected.p90_ms),
            lat(&e.corrected, e.corrected.p99_ms),
            lat(&e.corrected, e.corrected.max_ms),
            lat(&e.raw, e.raw.p50_ms),
            lat(&e.raw, e.raw.p99_ms),
            e.peak_in_flight,
            fmt_bytes(e.bytes_in as f64)
        );
    }
    h.push_str("</table>\n<p class=\"note\">Latencies are of answered (2xx) requests only; failed requests are counted by kind beside them. Corrected latency counts from the intended start, raw from the actual send.</p>\n");
}

fn deliveries_table(h: &mut String, id: &str, d: &crate::load::engine::DeliveryResult) {
    let _ = writeln!(
        h,
        "<table id=\"{id}\"><tr><th>messages accepted</th><th>deliveries due</th><th>delivered</th><th>missing</th>\
         <th title=\"answers whose timeline was limited: the receiver paged back with /messages\">gaps</th><th>found in gaps</th>\
         <th>delivery p50</th><th>p90</th><th>p99</th><th>max</th></tr>\
         <tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        d.messages,
        d.expected,
        d.delivered,
        if d.missing > 0 { "fail" } else { "" },
        d.missing,
        d.gaps,
        d.backfilled,
        lat(&d.latency, d.latency.p50_ms),
        lat(&d.latency, d.latency.p90_ms),
        lat(&d.latency, d.latency.p99_ms),
        lat(&d.latency, d.latency.max_ms),
    );
}

/// The points of an interval log with `tag`, at each interval's middle.
fn series(
    points: &[IntervalPoint],
    tag: &str,
    f: impl Fn(&IntervalPoint) -> f64,
    with_data_only: bool,
) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter(|p| p.tag == tag && (!with_data_only || p.count > 0))
        .map(|p| (p.start_s + p.duration_s / 2.0, f(p)))
        .collect()
}

/// Delivery latency per interval: p50, p90 and max.
fn delivery_panel(points: &[IntervalPoint]) -> Panel {
    Panel::new(
        "delivery latency",
        "ms",
        vec![
            (
                "delivery p50".into(),
                DELIVERY,
                series(points, "delivery", |p| p.p50_ms, true),
            ),
            (
                "delivery p90".into(),
                P90,
                series(points, "delivery", |p| p.p90_ms, true),
            ),
            (
                "delivery max".into(),
                MAX,
                series(points, "delivery", |p| p.max_ms, true),
            ),
        ],
    )
}

fn per_s(p: &IntervalPoint) -> f64 {
    if p.duration_s > 0.0 {
        p.count as f64 / p.duration_s
    } else {
        0.0
    }
}

/// A percentile plot of the given `.hist` files (label, colour, file); `None` when none exists.
fn percentile_plot(
    dir: &Path,
    title: &str,
    files: &[(&str, &'static str, String)],
) -> Option<String> {
    let lines: Vec<Line> = files
        .iter()
        .filter_map(|(label, color, file)| {
            percentile_points(&dir.join(file)).map(|p| (label.to_string(), *color, p))
        })
        .collect();
    (!lines.is_empty()).then(|| svg::percentiles(title, &lines))
}

/// A workload a signal cut short says so under its heading.
pub fn partial(h: &mut String, yes: bool) {
    if yes {
        h.push_str("<p class=\"partial\">Partial: interrupted by a signal; the figures are of what was measured before it.</p>\n");
    }
}

fn missing(h: &mut String, what: &str, file: &str) {
    let _ = writeln!(
        h,
        "<p class=\"note\">No {what}: {} is missing beside result.json.</p>",
        esc(file)
    );
}

/// `t_s,resyncs_in_flight` rows of `triggered-resyncs.csv`.
fn read_gauge(path: &Path) -> Option<Vec<(f64, f64)>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .skip(1)
            .filter_map(|l| {
                let (t, n) = l.split_once(',')?;
                Some((t.parse().ok()?, n.parse().ok()?))
            })
            .collect(),
    )
}

/// The triggered herd: the storm a state event sets off, and whether the server recovered.
pub fn triggered(h: &mut String, r: &RunResult, dir: &Path) {
    let Some(t) = &r.triggered else { return };
    let rec = &t.recovery;
    h.push_str("<h2 id=\"triggered\">Triggered herd: the re-sync storm and the recovery</h2>\n");
    partial(h, t.partial);
    let recovered = match rec.time_to_recover_s {
        Some(s) => format!("<span class=\"pass\">recovered {s:.1} s after the trigger</span>"),
        None => format!(
            "<span class=\"fail\">not recovered within the {:.0} s observed after the trigger</span>",
            rec.observed_s
        ),
    };
    let _ = writeln!(
        h,
        "<p>{} long-poll clients of the big room, chatter at {}/s; after {:.1} s one client sends a state event \
         and every client that sees it reacts ({}). {recovered}. Peak {} re-syncs in flight{}; \
         {} clients re-synced, {} gave up after their retries{}; {} retries.{}</p>",
        t.clients,
        t.chatter_rate,
        rec.trigger_s,
        t.reaction.describe(),
        t.peak_concurrent_resyncs,
        t.time_to_saturation_s
            .map(|s| format!(" (90% of it {s:.1} s after the trigger)"))
            .unwrap_or_default(),
        t.reacted_ok,
        t.reacted_gave_up,
        t.never_saw_trigger()
            .map(|n| format!(", <span class=\"fail\">{n} never saw the trigger</span>"))
            .unwrap_or_default(),
        t.resync_retries,
        t.trigger_error
            .as_deref()
            .map(|e| format!(
                " <span class=\"fail\">The server did not take the trigger ({}).</span>",
                esc(e)
            ))
            .unwrap_or_default()
    );
    let _ = writeln!(
        h,
        "<p class=\"note\">Recovery: {}. Baseline delivery p90 {}, {:.1} deliveries/s: healthy means p90 ≤ {} and ≥ {:.1} deliveries/s.</p>",
        esc(rec.definition.trim_end_matches('.')),
        fmt_ms(rec.baseline_p90_ms),
        rec.baseline_per_s,
        fmt_ms(rec.latency_limit_ms),
        rec.throughput_floor_per_s
    );
    endpoints_table(h, "triggered-endpoints", &t.endpoints);
    deliveries_table(h, "triggered-deliveries", &t.deliveries);

    let mut marks = vec![("trigger sent".to_string(), rec.trigger_s, "#000")];
    if let Some(s) = t.trigger_seen_s {
        marks.push(("first seen".into(), s, "#9467bd"));
    }
    if let Some(d) = rec.degraded_at_s {
        marks.push(("degraded".into(), rec.trigger_s + d, "#b00020"));
    }
    if let Some(s) = rec.time_to_recover_s {
        marks.push(("recovered".into(), rec.trigger_s + s, "#2a7d2a"));
    }
    match crate::metrics::read_interval_log(&dir.join("triggered.hlog")) {
        Ok(points) if !points.is_empty() => {
            let mut latency = delivery_panel(&points);
            latency.band = Some((
                0.0,
                rec.latency_limit_ms,
                format!("healthy: p90 ≤ {}", fmt_ms(rec.latency_limit_ms)),
            ));
            let mut rate = Panel::new(
                "deliveries",
                "/s",
                vec![(
                    "deliveries/s".into(),
                    DELIVERY,
                    series(&points, "delivery", per_s, false),
                )],
            );
            rate.band = Some((
                rec.throughput_floor_per_s,
                f64::INFINITY,
                format!("healthy: ≥ {:.1}/s", rec.throughput_floor_per_s),
            ));
            let mut panels = vec![latency, rate];
            if let Some(g) = read_gauge(&dir.join("triggered-resyncs.csv")) {
                panels.push(Panel::new(
                    "re-syncs in flight",
                    "",
                    vec![("re-syncs in flight".into(), CORRECTED, g)],
                ));
            }
            let _ = writeln!(
                h,
                "<h3>Delivery latency, throughput and re-syncs over time</h3><figure id=\"triggered-over-time\">{}</figure>",
                svg::timeseries(
                    "Triggered herd: the chatter's deliveries against the baseline band",
                    &panels,
                    &marks
                )
            );
        }
        _ => missing(h, "timeline", "triggered.hlog"),
    }
    match percentile_plot(
        dir,
        "Reaction time (trigger seen → re-sync done) and re-sync latency",
        &[
            ("reaction time", "#9467bd", "triggered-reaction.hist".into()),
            ("re-sync corrected", CORRECTED, "triggered-resync.hist".into()),
            ("re-sync raw", RAW, "triggered-resync-raw.hist".into()),
        ],
    ) {
        Some(svg) => {
            let _ = writeln!(
                h,
                "<h3>Reaction time distribution</h3><p>Reaction time: p50 {}, p90 {}, p99 {}, max {} over {} clients.</p><figure id=\"triggered-reaction\">{svg}</figure>",
                lat(&t.reaction_time, t.reaction_time.p50_ms),
                lat(&t.reaction_time, t.reaction_time.p90_ms),
                lat(&t.reaction_time, t.reaction_time.p99_ms),
                lat(&t.reaction_time, t.reaction_time.max_ms),
                t.reaction_time.count
            );
        }
        None => h.push_str(
            "<p class=\"note\">No reaction-time distribution: no client re-synced (triggered-reaction.hist is absent).</p>\n",
        ),
    }
}

/// Steady traffic: intended against accepted send rate, send and delivery latency over time.
pub fn steady(h: &mut String, r: &RunResult, dir: &Path) {
    let Some(t) = &r.steady else { return };
    h.push_str("<h2 id=\"steady\">Steady traffic</h2>\n");
    partial(h, t.partial);
    let short = t.achieved_per_s < 0.95 * t.intended_per_s;
    let _ = writeln!(
        h,
        "<p>{} long-poll clients, {} senders, {} for {:.0} s: {:.2} messages/s intended, \
         <span class=\"{}\">{:.2}/s accepted</span>.</p>",
        t.clients,
        t.senders,
        t.arrivals,
        t.send_duration_s,
        t.intended_per_s,
        if short { "fail" } else { "pass" },
        t.achieved_per_s
    );
    endpoints_table(h, "steady-endpoints", &t.endpoints);
    deliveries_table(h, "steady-deliveries", &t.deliveries);
    match crate::metrics::read_interval_log(&dir.join("steady.hlog")) {
        Ok(points) if !points.is_empty() => {
            // Intended rate per interval from the schedule (over the sending time only).
            let intended: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.tag == "send.corrected" && p.duration_s > 0.0)
                .filter(|p| t.send_duration_s <= 0.0 || p.start_s < t.send_duration_s)
                .map(|p| {
                    let d = |s: f64| {
                        t.arrivals
                            .due_within(std::time::Duration::from_secs_f64(s.max(0.0)))
                    };
                    let (a, b) = (p.start_s, p.start_s + p.duration_s);
                    let share = r.shard.as_ref().map_or(1.0, |s| 1.0 / s.count as f64);
                    (
                        a + p.duration_s / 2.0,
                        (d(b) as f64 - d(a) as f64) * share / p.duration_s,
                    )
                })
                .collect();
            let panels = vec![
                Panel::new(
                    "send rate",
                    "/s",
                    vec![
                        ("intended".into(), MAX, intended),
                        (
                            "accepted".into(),
                            DELIVERY,
                            series(&points, "send.corrected", per_s, false),
                        ),
                    ],
                ),
                Panel::new(
                    "send latency",
                    "ms",
                    vec![
                        (
                            "send p50".into(),
                            "#ff9896",
                            series(&points, "send.corrected", |p| p.p50_ms, true),
                        ),
                        (
                            "send p99".into(),
                            CORRECTED,
                            series(&points, "send.corrected", |p| p.p99_ms, true),
                        ),
                    ],
                ),
                delivery_panel(&points),
            ];
            let marks = vec![("senders stop".to_string(), t.send_duration_s, "#7f7f7f")];
            let _ = writeln!(
                h,
                "<h3>Send rate and latency over time</h3><figure id=\"steady-over-time\">{}</figure>",
                svg::timeseries(
                    "Steady traffic: intended vs accepted sends, send and delivery latency",
                    &panels,
                    &marks
                )
            );
        }
        _ => missing(h, "timeline", "steady.hlog"),
    }
    if let Some(svg) = percentile_plot(
        dir,
        "Steady traffic: send (corrected, raw) and delivery latency by percentile",
        &[
            ("send corrected", CORRECTED, "steady-send.hist".into()),
            ("send raw", RAW, "steady-send-raw.hist".into()),
            ("delivery", DELIVERY, "steady-delivery.hist".into()),
        ],
    ) {
        let _ = writeln!(
            h,
            "<h3>Latency distribution</h3><figure id=\"steady-percentiles\">{svg}</figure>"
        );
    }
}

/// Horizontal bars (label, value), for a handful of counts.
fn bars(title: &str, rows: &[(&str, f64, &'static str)]) -> String {
    let (w, left, row_h, top) = (960.0, 220.0, 26.0, 40.0);
    let h = top + rows.len() as f64 * row_h + 12.0;
    let max = rows.iter().map(|r| r.1).fold(1.0, f64::max);
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="plot bars" width="{w}" height="{h:.0}" viewBox="0 0 {w} {h:.0}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="#fff"/><text x="10" y="20" font-size="15" font-weight="bold">{}</text>"##,
        esc(title)
    );
    for (i, (label, v, color)) in rows.iter().enumerate() {
        let y = top + i as f64 * row_h;
        let bw = v / max * (w - left - 120.0);
        let _ = write!(
            s,
            r##"<g class="bar" data-label="{l}"><text x="{:.0}" y="{:.0}" text-anchor="end">{l}</text><rect x="{left}" y="{y:.0}" width="{bw:.1}" height="{:.0}" fill="{color}"/><text x="{:.1}" y="{:.0}">{}</text></g>"##,
            left - 8.0,
            y + 15.0,
            row_h - 8.0,
            left + bw + 6.0,
            y + 15.0,
            crate::util::fmt::fmt_num(*v),
            l = esc(label)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Catch-up: readers paging through a backlog; per-reader time, unread counts before and after.
pub fn catchup(h: &mut String, r: &RunResult, dir: &Path) {
    let Some(c) = &r.catchup else { return };
    h.push_str("<h2 id=\"catchup\">Catch-up</h2>\n");
    partial(h, c.partial);
    let _ = writeln!(
        h,
        "<p>{} readers come back to {} unread messages each ({}) and page through them {} at a time. \
         <span class=\"{}\">{} of {} caught up</span>; per reader p50 {}, max {}; {} pages, {} messages read.</p>",
        c.readers,
        c.backlog,
        match c.protocol {
            crate::scenario::SyncProtocol::V2 => "/sync v2",
            crate::scenario::SyncProtocol::Sliding =>
                "sliding sync: room list, then the room opened",
        },
        c.page,
        if c.caught_up < c.readers {
            "fail"
        } else {
            "pass"
        },
        c.caught_up,
        c.readers,
        lat(&c.catch_up, c.catch_up.p50_ms),
        lat(&c.catch_up, c.catch_up.max_ms),
        c.pages,
        c.messages_read
    );
    endpoints_table(h, "catchup-endpoints", &c.endpoints);
    match percentile_plot(
        dir,
        "Catch-up time per reader (first request → receipt accepted)",
        &[("per reader", CORRECTED, "catchup-reader.hist".into())],
    ) {
        Some(svg) => {
            let _ = writeln!(
                h,
                "<h3>Catch-up time distribution</h3><figure id=\"catchup-time\">{svg}</figure>"
            );
        }
        None => missing(h, "catch-up time distribution", "catchup-reader.hist"),
    }
    let (Some(lo), Some(hi)) = (c.unread_before_min, c.unread_before_max) else {
        // Sliding sync: no unread counts from the server; what came back is the receipt.
        if let Some(echoed) = c.receipts_echoed {
            let _ = writeln!(
                h,
                "<h3>Receipts</h3><p id=\"catchup-unread\">Over sliding sync the server sends no unread counts (Synapse's <code>notification_count</code> is a fixed 0; clients count from receipts). <span class=\"{}\">{echoed} of {} readers' receipts came back</span> in the receipts extension of the connection's next answer.</p>",
                if echoed < c.readers { "fail" } else { "pass" },
                c.readers
            );
        }
        return;
    };
    let mut rows = vec![
        ("unread before (fewest)", lo as f64, "#1f77b4"),
        ("unread before (most)", hi as f64, "#1f77b4"),
    ];
    if let Some(a) = c.unread_after_max {
        rows.push(("unread after the receipt (most)", a as f64, DELIVERY));
    }
    let _ = writeln!(
        h,
        "<h3>Unread counts before and after</h3><figure id=\"catchup-unread\">{}</figure>{}",
        bars("Unread (notification) counts of the big room", &rows),
        if c.unread_after_max.is_none() {
            "<p class=\"note\">No sync after a receipt mentioned the room: the count after is not known.</p>"
        } else {
            ""
        }
    );
}

/// (percentile, ms) points of a `.hist` file, below the maximum.
pub(crate) fn percentile_points(path: &Path) -> Option<Vec<(f64, f64)>> {
    let hist = crate::metrics::read_histogram(path).ok()?;
    if hist.is_empty() {
        return None;
    }
    Some(
        hist.iter_quantiles(5)
            .map(|v| {
                (
                    v.quantile_iterated_to(),
                    v.value_iterated_to() as f64 / 1000.0,
                )
            })
            .filter(|(q, _)| *q < 1.0)
            .collect(),
    )
}
