//! Servers side by side as a reader sees them: `side-by-side.md` and the self-contained
//! `report.html` of `hsbench side-by-side`.

use crate::analysis::servers::{ServerSide, SideBySide, SidePoint};
use crate::metrics::catalogue;
use crate::result::RunStatus;
use crate::util::fmt::{esc, fmt_ms, fmt_num};

/// The shared dataset in one line.
fn dataset_line(s: &SideBySide) -> String {
    let d = &s.spec;
    format!(
        "seed {} · {} varies · {} rooms (big room {}, rooms up to {} members) · {} DMs · {} messages per room · {:.0}% online · {:.0}% with a second device",
        d.seed,
        s.dimension,
        fmt_num(d.rooms as f64),
        fmt_num(d.big_room_members as f64),
        d.max_room_members,
        fmt_num(d.dm_pairs as f64),
        d.messages_per_room,
        d.presence_share * 100.0,
        d.multi_device_share * 100.0
    )
}

fn ready_cell(p: &SidePoint) -> String {
    if p.status != RunStatus::Complete {
        return format!("{:?}", p.status);
    }
    match (p.time_to_ready_ms, p.cold_time_to_ready_ms) {
        (Some(w), Some(c)) => format!("{} (cold {})", fmt_ms(w), fmt_ms(c)),
        (Some(w), None) => fmt_ms(w),
        _ => "–".into(),
    }
}

fn dominant_cell(p: &SidePoint) -> String {
    p.dominant.as_ref().map_or("–".into(), |d| {
        format!("{} {} ({:.0}%)", d.phase, fmt_ms(d.ms), d.share * 100.0)
    })
}

fn background_cell(p: &SidePoint) -> String {
    match (p.background_ms, p.cpu_background_s) {
        (Some(b), _) if b <= 0.0 => "none (done by ready)".into(),
        (Some(b), Some(c)) => format!("{} ({c:.2} s CPU)", fmt_ms(b)),
        (Some(b), None) => fmt_ms(b),
        _ => "–".into(),
    }
}

/// Every value any server measured, ascending.
fn values(s: &SideBySide) -> Vec<f64> {
    let mut v: Vec<f64> = s
        .servers
        .iter()
        .flat_map(|x| x.points.iter().map(|p| p.value))
        .collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

/// Per value: one row, three cells per server (ready, dominant phase, background).
fn point_rows(s: &SideBySide) -> Vec<Vec<String>> {
    values(s)
        .into_iter()
        .map(|v| {
            let mut row = vec![fmt_num(v)];
            for srv in &s.servers {
                match srv.points.iter().find(|p| p.value == v) {
                    Some(p) => {
                        row.push(ready_cell(p));
                        row.push(dominant_cell(p));
                        row.push(background_cell(p));
                    }
                    None => row.extend(["–".into(), "–".into(), "–".into()]),
                }
            }
            row
        })
        .collect()
}

/// Every start-up metric any server fitted: time to ready first, then each server's phases in
/// the order of its profile, then the background work.
fn fit_metrics(s: &SideBySide) -> Vec<String> {
    let mut names: Vec<String> = vec!["time_to_ready".into(), "cold.time_to_ready".into()];
    for srv in &s.servers {
        if let Some(p) = srv.points.iter().find(|p| !p.phases.is_empty()) {
            for (ph, _) in &p.phases {
                let m = format!("phase.{ph}");
                if !names.contains(&m) {
                    names.push(m);
                }
            }
        }
    }
    names.extend(["background".into(), "cpu_background".into()]);
    names
        .into_iter()
        .filter(|m| {
            s.servers
                .iter()
                .any(|srv| srv.fits.iter().any(|f| &f.metric == m))
        })
        .collect()
}

fn fit_cell(srv: &ServerSide, metric: &str) -> String {
    match srv
        .fits
        .iter()
        .find(|f| f.metric == metric)
        .and_then(|f| f.fit.as_ref())
    {
        Some(f) => format!(
            "{:.2} ({:.2} … {:.2}){}",
            f.b,
            f.b_low,
            f.b_high,
            if f.b_low > 1.0 { " super-linear" } else { "" }
        ),
        None => "–".into(),
    }
}

fn predicted_cell(srv: &ServerSide, metric: &str) -> String {
    srv.predicted
        .iter()
        .find(|e| e.metric == metric)
        .map_or("–".into(), |e| {
            format!(
                "{} ({} – {})",
                catalogue::format(metric, e.prediction.value),
                catalogue::format(metric, e.prediction.low),
                catalogue::format(metric, e.prediction.high)
            )
        })
}

/// What a server's column stands on: the loading, the measured range, the sweep's status.
fn server_line(s: &SideBySide, srv: &ServerSide) -> String {
    let (min, max, n) = srv.measured;
    let mut line = format!(
        "loaded by {}; {n} points measured, {} {}–{}",
        srv.loaded_by,
        s.dimension,
        fmt_num(min),
        fmt_num(max)
    );
    if srv.sweep_status != RunStatus::Complete {
        line.push_str(&format!(
            " (the sweep was {}: the points it did not finish are left out)",
            format!("{:?}", srv.sweep_status).to_lowercase()
        ));
    }
    if let Some(at) = s.at.filter(|at| *at as f64 > max || (*at as f64) < min) {
        line.push_str(&format!(
            "; {} extrapolated {:.1}× beyond them",
            fmt_num(at as f64),
            crate::analysis::sweep::extrapolation_factor(at as f64, min, max)
        ));
    }
    line
}

/// A table of every start-up metric (rows) by server (columns), `cell` filling each.
fn metric_table_md(s: &SideBySide, cell: fn(&ServerSide, &str) -> String) -> String {
    let mut md = String::from("| metric |");
    for srv in &s.servers {
        md.push_str(&format!(" {} |", srv.server));
    }
    md.push_str("\n|---|");
    md.push_str(&"---:|".repeat(s.servers.len()));
    md.push('\n');
    for m in fit_metrics(s) {
        md.push_str(&format!("| {m} |"));
        for srv in &s.servers {
            md.push_str(&format!(" {} |", cell(srv, &m)));
        }
        md.push('\n');
    }
    md
}

/// [`metric_table_md`] as an HTML table.
fn metric_table_html(s: &SideBySide, cell: fn(&ServerSide, &str) -> String) -> String {
    let mut h = String::from("<table><tr><th>metric</th>");
    for srv in &s.servers {
        h.push_str(&format!("<th>{}</th>", esc(&srv.server)));
    }
    h.push_str("</tr>");
    for m in fit_metrics(s) {
        h.push_str(&format!("<tr><td>{}</td>", esc(&m)));
        for srv in &s.servers {
            h.push_str(&format!("<td>{}</td>", esc(&cell(srv, &m))));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    h
}

/// Which phase dominates at each server's largest completed point, in one sentence each.
fn verdicts(s: &SideBySide) -> Vec<String> {
    s.servers
        .iter()
        .filter_map(|srv| {
            let p = srv
                .points
                .iter()
                .rev()
                .find(|p| p.status == RunStatus::Complete)?;
            let d = p.dominant.as_ref()?;
            let mut line = format!(
                "{}: at {} = {}, `{}` dominates the time to ready ({} of {}, {:.0}%)",
                srv.server,
                s.dimension,
                fmt_num(p.value),
                d.phase,
                fmt_ms(d.ms),
                fmt_ms(p.time_to_ready_ms.unwrap_or(0.0)),
                d.share * 100.0
            );
            if let Some(b) = p.background_ms.filter(|b| *b > 0.0) {
                line.push_str(&format!(
                    "; the start-up work after ready takes {} more",
                    fmt_ms(b)
                ));
            }
            Some(line)
        })
        .collect()
}

pub fn markdown(s: &SideBySide) -> String {
    let mut md = format!(
        "## hsbench · servers side by side · {} = {}\n\nDataset: {}.\n\n",
        s.dimension,
        values(s)
            .iter()
            .map(|v| fmt_num(*v))
            .collect::<Vec<_>>()
            .join(", "),
        dataset_line(s)
    );
    for srv in &s.servers {
        md.push_str(&format!(
            "- **{}** ({}): {}\n",
            srv.server,
            srv.sweep_dir,
            server_line(s, srv)
        ));
    }
    md.push('\n');
    for v in verdicts(s) {
        md.push_str(&format!("{v}.\n\n"));
    }
    md.push_str(&format!(
        "### Time to ready (warm median; cold), the dominant phase, and the work after ready\n\n| {} |",
        s.dimension
    ));
    for srv in &s.servers {
        md.push_str(&format!(
            " {0}: ready | {0}: dominant phase | {0}: after ready (CPU) |",
            srv.server
        ));
    }
    md.push_str("\n|---:|");
    md.push_str(&"---:|---|---:|".repeat(s.servers.len()));
    md.push('\n');
    for row in point_rows(s) {
        md.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    md.push_str(&format!(
        "\n### Growth exponents: t = a · {}^b (b, 95% CI)\n\n",
        s.dimension
    ));
    md.push_str(&metric_table_md(s, fit_cell));
    if let Some(at) = s.at {
        md.push_str(&format!(
            "\n### Predicted at {} = {} (95% prediction interval)\n\n",
            s.dimension,
            fmt_num(at as f64)
        ));
        md.push_str(&metric_table_md(s, predicted_cell));
    }
    md.push_str(
        "\nPhase names are each server's own (from its profile): compare shapes and shares, not \
         phase against phase.\n",
    );
    md
}

/// The page: the tables of [`markdown`] and, per server, the log–log plots of time to ready and
/// of the work after ready, inline.
pub fn html(s: &SideBySide, plots: &[(String, String)]) -> String {
    let mut h = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>hsbench · servers side by side</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1500px}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}th{{background:#f4f4f4}}\
         .plots{{display:flex;flex-wrap:wrap;gap:12px}}</style></head><body>\
         <h1>hsbench · servers side by side · {}</h1><p>Dataset: {}.</p><ul>",
        esc(&s.dimension),
        esc(&dataset_line(s))
    );
    for srv in &s.servers {
        h.push_str(&format!(
            "<li><b>{}</b>: {}</li>",
            esc(&srv.server),
            esc(&server_line(s, srv))
        ));
    }
    h.push_str("</ul>");
    for v in verdicts(s) {
        h.push_str(&format!("<p>{}.</p>", esc(&v.replace('`', ""))));
    }
    h.push_str(&format!(
        "<h2>Time to ready, the dominant phase, and the work after ready</h2><table><tr><th rowspan=\"2\">{}</th>",
        esc(&s.dimension)
    ));
    for srv in &s.servers {
        h.push_str(&format!("<th colspan=\"3\">{}</th>", esc(&srv.server)));
    }
    h.push_str("</tr><tr>");
    for _ in &s.servers {
        h.push_str(
            "<th>ready (cold)</th><th>dominant phase (share)</th><th>after ready (CPU)</th>",
        );
    }
    h.push_str("</tr>");
    for row in point_rows(s) {
        h.push_str("<tr>");
        for c in row {
            h.push_str(&format!("<td>{}</td>", esc(&c)));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table><h2>Growth exponents (b, 95% CI)</h2>");
    h.push_str(&metric_table_html(s, fit_cell));
    if let Some(at) = s.at {
        h.push_str(&format!(
            "<h2>Predicted at {} = {}</h2>",
            esc(&s.dimension),
            fmt_num(at as f64)
        ));
        h.push_str(&metric_table_html(s, predicted_cell));
    }
    h.push_str("<h2>Plots</h2><div class=\"plots\">");
    for (_, svg) in plots {
        h.push_str("<div>");
        h.push_str(svg);
        h.push_str("</div>");
    }
    h.push_str(
        "</div><p>Phase names are each server's own (from its profile): compare shapes and \
         shares, not phase against phase.</p></body></html>\n",
    );
    h
}

/// The plots of the page: per server, time to ready and the work after ready over the sweep.
pub fn plots(s: &SideBySide) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for srv in &s.servers {
        for metric in ["time_to_ready", "background"] {
            let points: Vec<(f64, f64)> = srv
                .points
                .iter()
                .filter(|p| p.status == RunStatus::Complete)
                .filter_map(|p| {
                    let v = match metric {
                        "time_to_ready" => p.time_to_ready_ms,
                        _ => p.background_ms,
                    }?;
                    Some((p.value, v))
                })
                .filter(|(_, v)| *v > 0.0)
                .collect();
            // Nothing after ready at any point (all done by ready): no plot to draw.
            if points.is_empty() {
                continue;
            }
            let fit = srv
                .fits
                .iter()
                .find(|f| f.metric == metric)
                .and_then(|f| f.fit.as_ref());
            let name = format!("{} · {metric}", srv.server);
            let svg = crate::report::svg::loglog(
                &name,
                &s.dimension,
                catalogue::unit_of(metric).label(),
                &points,
                fit,
            );
            out.push((name, svg));
        }
    }
    out
}
