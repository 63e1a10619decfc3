//! A sizing sweep as a reader sees it: the Markdown summary, the self-contained HTML page and
//! the `hsbench size` table.

use crate::analysis::sweep::MAX_EXTRAPOLATION;
use crate::analysis::sweep::{
    Extrapolation, MetricFit, SweepResult, extrapolation_factor, measured_range,
};
use crate::metrics::catalogue;
use crate::result::RunStatus;

/// Per value: what an operator asks first.
const SIZING_COLUMNS: &[(&str, &str)] = &[
    ("time_to_ready", "time to ready (warm)"),
    ("cold.time_to_ready", "time to ready (cold)"),
    ("peak_rss", "peak RSS"),
    ("data_size", "data size"),
    ("herd.sync.p99", "herd p99"),
];

fn sizing_rows(r: &SweepResult) -> (Vec<&str>, Vec<Vec<String>>) {
    let cols: Vec<&(&str, &str)> = SIZING_COLUMNS
        .iter()
        .filter(|(m, _)| r.points.iter().any(|p| p.metrics.contains_key(*m)))
        .collect();
    let head = cols.iter().map(|(_, h)| *h).collect();
    let rows = r
        .points
        .iter()
        .map(|p| {
            let mut row = vec![crate::util::fmt::fmt_num(p.value)];
            if p.status != RunStatus::Complete {
                row.push(format!(
                    "{:?}: {}",
                    p.status,
                    p.error.as_deref().unwrap_or("")
                ));
                return row;
            }
            for (m, _) in &cols {
                row.push(
                    p.metrics
                        .get(*m)
                        .map_or("–".into(), |v| catalogue::format(m, *v)),
                );
            }
            row
        })
        .collect();
    (head, rows)
}

fn fit_cells(f: &MetricFit) -> [String; 4] {
    match &f.fit {
        Some(x) => [
            format!("{:.2}", x.b),
            format!("{:.2} … {:.2}", x.b_low, x.b_high),
            format!("{:.3}", x.r2),
            if f.superlinear {
                "**super-linear**".into()
            } else if x.b_high < 1.0 {
                "sub-linear".into()
            } else {
                "linear or below".into()
            },
        ],
        None => ["–".into(), "–".into(), "–".into(), "too few points".into()],
    }
}

/// The metrics seen at too few points to fit (a sub-phase that appears at some values only, a
/// statement under the log's threshold elsewhere): named once, not a table row each.
fn unfitted_note(r: &SweepResult) -> Option<String> {
    let names: Vec<&str> = r
        .fits
        .iter()
        .filter(|f| f.fit.is_none())
        .map(|f| f.metric.as_str())
        .collect();
    (!names.is_empty()).then(|| {
        format!(
            "Too few points to fit (above zero at fewer than 3 values): {}.",
            names.join(", ")
        )
    })
}

/// PostgreSQL's slowest start-up statements at each point: the query that grew.
fn statements_md(md: &mut String, r: &SweepResult) {
    if r.points.iter().all(|p| p.slowest_statements.is_empty()) {
        return;
    }
    md.push_str(&format!(
        "\n### Slowest start-up statements per point (PostgreSQL, spawn to ready)\n\n| {} | statement | ran |\n|---:|---|---:|\n",
        r.dimension.name()
    ));
    for p in &r.points {
        for s in &p.slowest_statements {
            md.push_str(&format!(
                "| {} | `{}` | {} |\n",
                crate::util::fmt::fmt_num(p.value),
                s.statement.replace('|', "\\|").replace('`', "'"),
                crate::util::fmt::fmt_ms(s.ms)
            ));
        }
    }
}

pub fn markdown(r: &SweepResult) -> String {
    let dim = r.dimension.name();
    let mut md = format!(
        "## hsbench sweep · {} · {dim} = {}\n\nstatus: {:?}{}\n\n",
        r.scenario,
        r.values
            .iter()
            .map(|v| crate::util::fmt::fmt_num(*v))
            .collect::<Vec<_>>()
            .join(", "),
        r.status,
        r.error
            .as_ref()
            .map_or(String::new(), |e| format!(" ({e})"))
    );
    if let Some(w) = &r.worst_phase {
        md.push_str(&format!(
            "**Worst phase: `{w}` grows super-linearly with {dim}.**\n\n"
        ));
    } else if r.status == RunStatus::Complete {
        md.push_str("No boot phase grows significantly faster than linearly over this range.\n\n");
    }
    if let Some(w) = &r.worst_subphase {
        md.push_str(&format!(
            "**Worst sub-phase: `{w}` grows super-linearly with {dim}.**\n\n"
        ));
    }
    let (head, rows) = sizing_rows(r);
    md.push_str(&format!(
        "### Sizing\n\n| {dim} | {} |\n|---:|",
        head.join(" | ")
    ));
    md.push_str(&"---:|".repeat(head.len()));
    md.push('\n');
    for row in rows {
        md.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    md.push_str(&format!(
        "\n### Growth: t = a · {dim}^b (least squares on log–log, 95% CI of b)\n\n| metric | b | 95% CI | R² | verdict | plot |\n|---|---:|---|---:|---|---|\n"
    ));
    for f in r.fits.iter().filter(|f| f.fit.is_some()) {
        let [b, ci, r2, verdict] = fit_cells(f);
        md.push_str(&format!(
            "| {} | {b} | {ci} | {r2} | {verdict} | {} |\n",
            f.metric,
            f.plot
                .as_ref()
                .map_or(String::new(), |p| format!("[svg]({p})"))
        ));
    }
    if let Some(note) = unfitted_note(r) {
        md.push_str(&format!("\n{note}\n"));
    }
    statements_md(&mut md, r);
    md.push_str(&format!(
        "\nExtrapolate with `hsbench size <this directory> --{} N` (within {MAX_EXTRAPOLATION}× of the measured range).\n",
        dim.replace('_', "-")
    ));
    md
}

pub fn html(r: &SweepResult, plots: &[(String, String)]) -> String {
    let esc = crate::util::fmt::esc;
    let dim = r.dimension.name();
    let mut h = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>hsbench sweep · {}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#f4f4f4}}\
         .plots{{display:flex;flex-wrap:wrap;gap:12px}}.warn{{color:#b00;font-weight:bold}}</style></head><body>\
         <h1>hsbench sweep · {} · {dim}</h1><p>status {:?} · started {}</p>",
        esc(&r.scenario),
        esc(&r.scenario),
        r.status,
        esc(&r.started_at)
    );
    if let Some(w) = &r.worst_phase {
        h.push_str(&format!(
            "<p class=\"warn\">Worst phase: {} grows super-linearly with {dim}.</p>",
            esc(w)
        ));
    }
    if let Some(w) = &r.worst_subphase {
        h.push_str(&format!(
            "<p class=\"warn\">Worst sub-phase: {} grows super-linearly with {dim}.</p>",
            esc(w)
        ));
    }
    let (head, rows) = sizing_rows(r);
    h.push_str(&format!("<h2>Sizing</h2><table><tr><th>{dim}</th>"));
    for c in head {
        h.push_str(&format!("<th>{}</th>", esc(c)));
    }
    h.push_str("</tr>");
    for row in rows {
        h.push_str("<tr>");
        for c in row {
            h.push_str(&format!("<td>{}</td>", esc(&c)));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table><h2>Growth</h2><table><tr><th>metric</th><th>b</th><th>95% CI</th><th>R²</th><th>verdict</th></tr>");
    for f in r.fits.iter().filter(|f| f.fit.is_some()) {
        let [b, ci, r2, verdict] = fit_cells(f);
        h.push_str(&format!(
            "<tr><td style=\"text-align:left\">{}</td><td>{b}</td><td>{ci}</td><td>{r2}</td><td>{}</td></tr>",
            esc(&f.metric),
            esc(&verdict.replace("**", ""))
        ));
    }
    h.push_str("</table>");
    if let Some(note) = unfitted_note(r) {
        h.push_str(&format!("<p>{}</p>", esc(&note)));
    }
    if r.points.iter().any(|p| !p.slowest_statements.is_empty()) {
        h.push_str(&format!(
            "<h2>Slowest start-up statements per point (PostgreSQL)</h2><table><tr><th>{dim}</th><th>statement</th><th>ran</th></tr>"
        ));
        for p in &r.points {
            for st in &p.slowest_statements {
                h.push_str(&format!(
                    "<tr><td>{}</td><td style=\"text-align:left\"><code>{}</code></td><td>{}</td></tr>",
                    crate::util::fmt::fmt_num(p.value),
                    esc(&st.statement),
                    crate::util::fmt::fmt_ms(st.ms)
                ));
            }
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Plots</h2><div class=\"plots\">");
    for (_, svg) in plots {
        h.push_str("<div>");
        h.push_str(svg);
        h.push_str("</div>");
    }
    h.push_str("</div></body></html>\n");
    h
}

/// The `hsbench size` table.
pub fn size_report(r: &SweepResult, value: f64, rows: &[Extrapolation]) -> String {
    let dim = r.dimension.name();
    let (min, max, n) = measured_range(r);
    let factor = extrapolation_factor(value, min, max);
    let mut s = format!(
        "{} at {dim} = {value}, from the sweep {} (fitted over {dim} {min}–{max}, {} points)\n",
        r.scenario, r.sweep_id, n
    );
    if factor > 1.0 {
        s.push_str(&format!(
            "EXTRAPOLATED {factor:.1}× beyond the measured range: the intervals assume the same growth law holds there\n"
        ));
    }
    s.push_str(&format!(
        "\n{:<28} {:>12} {:>27} {:>6}\n",
        "metric", "predicted", "95% prediction interval", "b"
    ));
    for e in rows {
        s.push_str(&format!(
            "{:<28} {:>12} {:>27} {:>6.2}\n",
            e.metric,
            catalogue::format(&e.metric, e.prediction.value),
            format!(
                "{} – {}",
                catalogue::format(&e.metric, e.prediction.low),
                catalogue::format(&e.metric, e.prediction.high)
            ),
            e.b
        ));
    }
    s
}
