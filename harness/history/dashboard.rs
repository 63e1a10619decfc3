//! `history report`: one self-contained `report.html` (no script, nothing fetched): the open
//! regressions first, then one trend plot per series: every run a point (linked to its
//! report), each stretch between change points drawn as its median with the band of its middle
//! half, each change point marked with its commit range and size.

use crate::history::series::{Finding, Series, regressions, short};
use crate::metrics::catalogue;
use crate::stats::spread::median;
use crate::util::fmt::esc;
use crate::util::fs::relative;
use std::path::Path;

const CSS: &str = "body{font-family:system-ui,-apple-system,\"Segoe UI\",sans-serif;margin:0 auto;max-width:1040px;padding:16px 20px 60px;color:#222;line-height:1.4}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}h3{font-size:14px;margin:18px 0 4px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}
th{background:#f4f4f4}.bad{color:#b00020;font-weight:600}.good{color:#1b7f3b}.muted{color:#777;font-size:12px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:4px 28px}.plot{margin:0 0 10px}
svg text{font-family:system-ui,sans-serif}";

/// The dashboard of `series`, regressions counted among each series' last `last` runs, to be
/// written into the directory `out`: each run's report is linked relative to it, so the links
/// hold when the results are copied or downloaded together (a CI artifact of `results/`).
pub fn render(series: &[Series], last: usize, store: &str, out: &Path) -> String {
    let mut h = String::new();
    h.push_str(&format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>hsbench history</title><style>{CSS}</style></head><body>\n<h1>hsbench history</h1>\n<p class=\"muted\">{} series from {} · change points by E-Divisive means (permutation test) · regressions among the last {last} runs of a series</p>\n",
        series.len(),
        esc(store)
    ));
    let open = regressions(series, last);
    if open.is_empty() {
        h.push_str("<h2>Open regressions: none</h2>\n");
    } else {
        h.push_str(&format!(
            "<h2 class=\"bad\">Open regressions: {}</h2>\n<table><tr><th>metric</th><th>change</th><th>95% interval</th><th>between</th><th>p</th><th>series</th><th>bisect</th></tr>\n",
            open.len()
        ));
        for f in &open {
            h.push_str(&regression_row(f));
        }
        h.push_str("</table>\n");
    }
    let mut groups: Vec<(String, Vec<&Series>)> = Vec::new();
    for s in series.iter().filter(|s| s.points.len() >= 2) {
        let g = format!(
            "{} · {} {} · {}",
            s.key.scenario, s.key.server_kind, s.key.database, s.key.machine
        );
        match groups.iter_mut().find(|(k, _)| *k == g) {
            Some((_, v)) => v.push(s),
            None => groups.push((g, vec![s])),
        }
    }
    for (g, mut list) in groups {
        // Time to ready first, then the phases, the milestones and the rest, each by name.
        list.sort_by_key(|s| (rank(&s.key.metric), s.key.metric.clone()));
        h.push_str(&format!("<h2>{}</h2>\n<div class=\"grid\">\n", esc(&g)));
        for s in list {
            h.push_str(&format!(
                "<div class=\"plot\" id=\"{}\"><h3>{}</h3>{}</div>\n",
                esc(&anchor(s)),
                esc(&s.key.metric),
                plot(s, out)
            ));
        }
        h.push_str("</div>\n");
    }
    // A series with one run has no trend yet: its value, so a first dashboard is not empty.
    let single: Vec<&Series> = series.iter().filter(|s| s.points.len() == 1).collect();
    if !single.is_empty() {
        h.push_str(&format!(
            "<h2>One run so far</h2>\n<p class=\"muted\">{} series have one run: a series' trend plot and its change points start with its second run.</p>\n<table><tr><th>series</th><th>metric</th><th>value</th><th>commit</th><th>run</th></tr>\n",
            single.len()
        ));
        for s in single {
            let p = &s.points[0];
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>\n",
                esc(&format!(
                    "{} · {} {} · {}",
                    s.key.scenario, s.key.server_kind, s.key.database, s.key.machine
                )),
                esc(&s.key.metric),
                esc(&catalogue::format(&s.key.metric, p.value)),
                esc(short(&p.commit)),
                esc(&p.run_id)
            ));
        }
        h.push_str("</table>\n");
    }
    h.push_str("</body></html>\n");
    h
}

/// A run's report as a link from the directory `out`: relative, each byte outside a path's
/// plain characters percent-encoded.
fn href(report: &Path, out: &Path) -> String {
    let rel = relative(report, out);
    let mut h = String::new();
    for b in rel.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            h.push(b as char);
        } else {
            h.push_str(&format!("%{b:02X}"));
        }
    }
    h
}

/// A commit as a plot's label: at most 10 characters.
fn label(commit: &str) -> String {
    short(commit).chars().take(10).collect()
}

fn rank(metric: &str) -> u8 {
    match metric {
        "time_to_ready" => 0,
        m if m.starts_with("phase.") => 1,
        m if m.starts_with("milestone.") => 2,
        m if m.starts_with("work.") => 3,
        _ => 4,
    }
}

fn anchor(s: &Series) -> String {
    format!(
        "{}-{}-{}-{}",
        s.key.scenario, s.key.server_kind, s.key.database, s.key.metric
    )
    .replace(
        |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '.',
        "_",
    )
}

fn regression_row(f: &Finding) -> String {
    let pct = |v: f64| format!("{:+.1}%", v * 100.0);
    format!(
        "<tr><td>{}</td><td class=\"bad\">{}</td><td>{} … {}</td><td><code>{}</code> → <code>{}</code></td><td>{:.3}</td><td>{}</td><td><code>hsbench history bisect {}</code></td></tr>\n",
        esc(&f.key.metric),
        pct(f.change.change),
        pct(f.change.change_low),
        pct(f.change.change_high),
        esc(short(&f.commit_before)),
        esc(short(&f.commit_after)),
        f.change.p_value,
        esc(&format!(
            "{} · {} {} · {}",
            f.key.scenario, f.key.server_kind, f.key.database, f.key.machine
        )),
        esc(&f.id())
    )
}

/// One series' trend plot as inline SVG.
fn plot(s: &Series, out: &Path) -> String {
    let (w, hgt) = (500.0, 190.0);
    let (left, right, top, bottom) = (66.0, 10.0, 24.0, 30.0);
    let n = s.points.len();
    let values: Vec<f64> = s.points.iter().map(|p| p.value).collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.1).max(hi.abs() * 0.01).max(1e-9);
    let (y0, y1) = ((lo - pad).max(0.0), hi + pad);
    let x = |i: f64| left + (w - left - right) * if n > 1 { i / (n - 1) as f64 } else { 0.5 };
    let y = |v: f64| top + (hgt - top - bottom) * (1.0 - (v - y0) / (y1 - y0));
    let fmt = |v: f64| catalogue::format(&s.key.metric, v);
    let mut g = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {hgt}\" width=\"100%\" role=\"img\" aria-label=\"{}\">",
        esc(&s.key.describe())
    );
    // Axes and three value ticks.
    for k in 0..3 {
        let v = y0 + (y1 - y0) * k as f64 / 2.0;
        g.push_str(&format!(
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#666\">{}</text>",
            w - right,
            y(v),
            y(v),
            left - 6.0,
            y(v) + 4.0,
            esc(&fmt(v))
        ));
    }
    // Each stretch between change points: its median and the band of its middle half.
    let mut bounds: Vec<usize> = vec![0];
    bounds.extend(s.findings.iter().map(|f| f.change.index));
    bounds.push(n);
    for seg in bounds.windows(2) {
        let (a, b) = (seg[0], seg[1]);
        let mut v = values[a..b].to_vec();
        v.sort_by(f64::total_cmp);
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        let (xa, xb) = (
            x(a as f64 - 0.4).max(left),
            x(b as f64 - 0.6).min(w - right),
        );
        g.push_str(&format!(
            "<rect x=\"{xa:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#4a78c2\" opacity=\"0.12\"/><line x1=\"{xa:.1}\" x2=\"{xb:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#4a78c2\" stroke-width=\"2\"><title>median {} over {} runs</title></line>",
            y(q(0.75)),
            (xb - xa).max(1.0),
            (y(q(0.25)) - y(q(0.75))).max(1.0),
            y(median(&v)),
            y(median(&v)),
            esc(&fmt(median(&v))),
            b - a
        ));
    }
    // Change points: a dashed line before the first run after the change, its size and range.
    for f in &s.findings {
        let cx = x(f.change.index as f64 - 0.5);
        let colour = if f.is_regression() {
            "#b00020"
        } else if f.change.reported {
            "#1b7f3b"
        } else {
            "#999"
        };
        g.push_str(&format!(
            "<line x1=\"{cx:.1}\" x2=\"{cx:.1}\" y1=\"{top}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"{}\" fill=\"{colour}\">{:+.1}% · {} → {}</text>",
            hgt - bottom,
            if cx > w / 2.0 { cx - 4.0 } else { cx + 4.0 },
            top - 8.0,
            if cx > w / 2.0 { "end" } else { "start" },
            f.change.change * 100.0,
            esc(&label(&f.commit_before)),
            esc(&label(&f.commit_after))
        ));
    }
    // The runs: a point each, linked to its report.
    for (i, p) in s.points.iter().enumerate() {
        let dot = format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"#222\"><title>{} · {} · {}</title></circle>",
            x(i as f64),
            y(p.value),
            esc(&fmt(p.value)),
            esc(short(&p.commit)),
            esc(&p.run_id)
        );
        match &p.report {
            Some(r) => g.push_str(&format!(
                "<a href=\"{}\">{dot}</a>",
                href(Path::new(r), out)
            )),
            None => g.push_str(&dot),
        }
    }
    // When the first and the last run started, under the axis (each point names its commit).
    for (i, anchor) in [(0, "start"), (n - 1, "end")] {
        let at = &s.points[i].started_at;
        g.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"{anchor}\" fill=\"#666\">{}</text>",
            x(i as f64),
            hgt - 12.0,
            esc(&at.get(..16).unwrap_or(at).replace('T', " "))
        ));
    }
    g.push_str("</svg>");
    g
}
