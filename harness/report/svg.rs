//! Self-contained SVG plots (no scripts, no external resources).
//!
//! The boot waterfall: each phase a bar on a time axis from spawn, the milestones hsbench
//! observed as dashed lines, and under it the sampled process set's RSS and CPU use over the
//! same axis, like `systemd-analyze plot`.

use std::fmt::Write;

use crate::boot::{BootRecord, PhaseTiming};
use crate::metrics::ResourceSample;

use crate::util::fmt::{esc, fmt_ms, fmt_num};

const MILESTONES: &[(&str, &str)] = &[
    ("port_open", "#7f7f7f"),
    ("versions_200", "#2ca02c"),
    ("sync_200", "#d62728"),
    ("background_done", "#9467bd"),
];

/// Sub-phase rows drawn per phase (the longest ones).
const SUB_ROWS: usize = 6;

/// The waterfall's rows: each phase, then its longest sub-phases (at most [`SUB_ROWS`], in log
/// order), marked `true` (drawn indented); and how many sub-phases were left out.
fn waterfall_rows(rec: &BootRecord) -> (Vec<(&PhaseTiming, bool)>, usize) {
    let mut rows: Vec<(&PhaseTiming, bool)> = Vec::new();
    let mut hidden = 0usize;
    for p in &rec.phases {
        rows.push((p, false));
        let mut subs: Vec<(usize, &PhaseTiming)> = rec
            .subphases
            .iter()
            .enumerate()
            .filter(|(_, sp)| sp.parent.as_deref() == Some(p.name.as_str()))
            .collect();
        if subs.len() > SUB_ROWS {
            hidden += subs.len() - SUB_ROWS;
            subs.sort_by(|a, b| {
                b.1.duration_ms
                    .unwrap_or(0.0)
                    .total_cmp(&a.1.duration_ms.unwrap_or(0.0))
            });
            subs.truncate(SUB_ROWS);
            subs.sort_by_key(|(i, _)| *i);
        }
        rows.extend(subs.into_iter().map(|(_, sp)| (sp, true)));
    }
    (rows, hidden)
}

/// The waterfall of one boot.
pub fn waterfall(rec: &BootRecord, samples: &[ResourceSample], title: &str) -> String {
    let (left, right, width) = (170.0, 20.0, 960.0);
    let row = 22.0;
    let top = 48.0;
    let (rows, hidden) = waterfall_rows(rec);
    let phases: Vec<&PhaseTiming> = rows.iter().map(|(p, _)| *p).collect();
    let bars_h = row * phases.len() as f64;
    let chart_top = top + bars_h + 40.0;
    let chart_h = 120.0;
    let height = chart_top + 2.0 * (chart_h + 30.0) + 20.0;
    let end = phases
        .iter()
        .filter_map(|p| p.end_ms)
        .fold(rec.time_to_ready_ms, f64::max)
        .max(rec.points.get("background_done").copied().unwrap_or(0.0))
        .max(1.0)
        * 1.04;
    let x = |ms: f64| left + (ms.clamp(0.0, end) / end) * (width - left - right);

    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0}" viewBox="0 0 {width} {height:.0}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="20" font-size="15" font-weight="bold">{}</text>
<text x="10" y="38" fill="#555">ready (first /sync 200) at {} · shutdown {} · times from {} · dashed: grey port open, green /versions 200, red /sync 200, purple background work done</text>
"##,
        esc(title),
        fmt_ms(rec.time_to_ready_ms),
        rec.shutdown_ms.map_or("hung".to_string(), fmt_ms),
        match rec.timestamp_source {
            crate::boot::TimestampSource::LogLine => "the server's log stamps",
            crate::boot::TimestampSource::Arrival => "log line arrival",
        }
    );
    // Time grid.
    let step = nice_step(end / 8.0);
    let mut t = 0.0;
    while t <= end {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2:.0}" stroke="#eee"/><text x="{0:.1}" y="{3:.0}" text-anchor="middle" fill="#777" font-size="10">{4}</text>"##,
            x(t),
            top - 4.0,
            height - 20.0,
            height - 6.0,
            fmt_ms(t)
        );
        t += step;
    }
    // Phase bars.
    let palette = [
        "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#2ca02c",
    ];
    let mut color = 0usize;
    for (i, (p, sub)) in rows.iter().enumerate() {
        let y = top + i as f64 * row;
        if !sub {
            color = i;
        }
        let label = if *sub {
            // "schema: 73/01event_failed_pull_attempts.sql" → "↳ 73/01event_failed_pull…"
            let short = p.name.split_once(": ").map_or(p.name.as_str(), |(_, n)| n);
            let mut l: String = short.chars().take(22).collect();
            if short.chars().count() > 22 {
                l.push('…');
            }
            format!("↳ {l}")
        } else {
            p.name.clone()
        };
        let _ = writeln!(
            s,
            r##"<text x="{:.0}" y="{:.1}" text-anchor="end"{}>{}</text>"##,
            left - 8.0,
            y + 15.0,
            if *sub {
                r##" font-size="10" fill="#555""##
            } else {
                ""
            },
            esc(&label)
        );
        match (p.start_ms, p.end_ms) {
            (Some(a), Some(b)) => {
                let w = (x(b) - x(a)).max(1.5);
                let (class, inset) = if *sub {
                    ("subphase", 6.0)
                } else {
                    ("phase", 3.0)
                };
                let _ = writeln!(
                    s,
                    r##"<rect class="{class}" x="{:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{}"{}><title>{}: {} ({} → {})</title></rect><text x="{:.1}" y="{:.1}" font-size="11" fill="#333">{}</text>"##,
                    x(a),
                    y + inset,
                    row - 2.0 * inset,
                    palette[color % palette.len()],
                    if *sub { r#" fill-opacity="0.55""# } else { "" },
                    esc(&p.name),
                    fmt_ms(b - a),
                    esc(&p.from),
                    esc(&p.to),
                    x(a) + w + 4.0,
                    y + 15.0,
                    fmt_ms(b - a)
                );
            }
            _ => {
                let _ = writeln!(
                    s,
                    r##"<text x="{:.0}" y="{:.1}" fill="#c00" font-size="11">missing</text>"##,
                    left + 4.0,
                    y + 15.0
                );
            }
        }
    }
    if hidden > 0 {
        let _ = writeln!(
            s,
            r##"<text x="{:.0}" y="{:.1}" fill="#777" font-size="10">{hidden} shorter sub-phases not drawn (all are in result.json)</text>"##,
            left,
            top + bars_h + 14.0
        );
    }
    for (name, color) in MILESTONES {
        if let Some(ms) = rec.points.get(*name) {
            let _ = writeln!(
                s,
                r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2:.0}" stroke="{color}" stroke-dasharray="4 3"><title>{name} at {3}</title></line>"##,
                x(*ms),
                top,
                height - 20.0,
                fmt_ms(*ms)
            );
        }
    }
    // Resource charts.
    let window: Vec<&ResourceSample> = samples.iter().filter(|p| p.t_ms <= end).collect();
    let rss: Vec<(f64, f64)> = window
        .iter()
        .map(|p| (p.t_ms, p.rss_bytes as f64 / (1 << 20) as f64))
        .collect();
    let cpu = crate::metrics::cpu_percent(window.iter().copied());
    for (k, (label, unit, series, color)) in [
        ("RSS", "MiB", &rss, "#1f77b4"),
        ("CPU", "% of a core", &cpu, "#ff7f0e"),
    ]
    .into_iter()
    .enumerate()
    {
        let y0 = chart_top + k as f64 * (chart_h + 30.0);
        let max = series.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0);
        let y = |v: f64| y0 + chart_h - v / max * chart_h;
        let _ = writeln!(
            s,
            r##"<text x="{:.0}" y="{:.1}" text-anchor="end">{label}</text><text x="{:.0}" y="{:.1}" text-anchor="end" fill="#777" font-size="10">max {max:.0} {unit}</text><rect x="{left}" y="{y0:.1}" width="{:.1}" height="{chart_h}" fill="none" stroke="#ccc"/>"##,
            left - 8.0,
            y0 + 14.0,
            left - 8.0,
            y0 + 28.0,
            width - left - right
        );
        if !series.is_empty() {
            let pts: Vec<String> = series
                .iter()
                .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
                .collect();
            let _ = writeln!(
                s,
                r##"<polyline class="series" points="{}" fill="none" stroke="{color}" stroke-width="1.5"/>"##,
                pts.join(" ")
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1e-3);
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|v| *v >= raw)
        .unwrap_or(10.0 * p)
}

/// A log–log plot of one metric over a sweep: the measured points, the fitted line (dashed
/// beyond the measured range, where it is an extrapolation) and the exponent with its interval.
pub fn loglog(
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64)],
    fit: Option<&crate::stats::fit::PowerFit>,
) -> String {
    let (w, h) = (640.0, 420.0);
    let (left, right, top, bottom) = (80.0, 20.0, 56.0, 50.0);
    let pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .collect();
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="20" font-size="15" font-weight="bold">{}</text>
"##,
        esc(title)
    );
    if pts.is_empty() {
        s.push_str(r##"<text x="10" y="44" fill="#555">no positive values to plot</text></svg>"##);
        return s;
    }
    let sub = match fit {
        Some(f) => format!(
            "t = {} · n^{:.2} (95% CI of the exponent {:.2} … {:.2}, R² {:.3}, {} points){}",
            fmt_num(f.a),
            f.b,
            f.b_low,
            f.b_high,
            f.r2,
            f.n,
            if f.superlinear() {
                " · SUPER-LINEAR"
            } else {
                ""
            }
        ),
        None => "too few points for a fit".into(),
    };
    let _ = writeln!(
        s,
        r##"<text x="10" y="40" fill="#555">{}</text>"##,
        esc(&sub)
    );
    let lx = |v: f64| v.log10();
    let (mut x0, mut x1) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(lx(p.0)), b.max(lx(p.0)))
        });
    let (mut y0, mut y1) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(lx(p.1)), b.max(lx(p.1)))
        });
    // At least one decade on each axis, padded.
    for (lo, hi) in [(&mut x0, &mut x1), (&mut y0, &mut y1)] {
        let mid = (*lo + *hi) / 2.0;
        let half = ((*hi - *lo) / 2.0).max(0.5) * 1.1;
        *lo = mid - half;
        *hi = mid + half;
    }
    let px = |v: f64| left + (lx(v) - x0) / (x1 - x0) * (w - left - right);
    let py = |v: f64| h - bottom - (lx(v) - y0) / (y1 - y0) * (h - top - bottom);
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="{top}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
        w - left - right,
        h - top - bottom
    );
    // Ticks at 1, 2, 5 × powers of ten.
    for (lo, hi, is_x) in [(x0, x1, true), (y0, y1, false)] {
        let mut e = lo.floor() as i32;
        while (e as f64) <= hi {
            for m in [1.0, 2.0, 5.0] {
                let v = m * 10f64.powi(e);
                let l = lx(v);
                if l < lo || l > hi {
                    continue;
                }
                let label = fmt_num(v);
                if is_x {
                    let x = px(v);
                    let _ = writeln!(
                        s,
                        r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle" fill="#555">{label}</text>"##,
                        h - bottom,
                        h - bottom + 16.0
                    );
                } else {
                    let y = py(v);
                    let _ = writeln!(
                        s,
                        r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end" fill="#555">{label}</text>"##,
                        w - right,
                        left - 6.0,
                        y + 4.0
                    );
                }
            }
            e += 1;
        }
    }
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">{}</text>"##,
        (left + w - right) / 2.0,
        h - 10.0,
        esc(x_label),
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0,
        esc(y_label)
    );
    if let Some(f) = fit {
        let at = |x: f64| (px(x), py(f.a * x.powf(f.b)));
        let (a0, a1) = (10f64.powf(x0), 10f64.powf(x1));
        for (from, to, dash) in [
            (a0, f.x_min, "5,4"),
            (f.x_min, f.x_max, "none"),
            (f.x_max, a1, "5,4"),
        ] {
            let ((u0, v0), (u1, v1)) = (at(from), at(to));
            let _ = writeln!(
                s,
                r##"<line x1="{u0:.1}" y1="{v0:.1}" x2="{u1:.1}" y2="{v1:.1}" stroke="#d62728" stroke-width="1.5" stroke-dasharray="{dash}"/>"##
            );
        }
    }
    for (x, y) in &pts {
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="#1f77b4"><title>{} → {}</title></circle>"##,
            px(*x),
            py(*y),
            fmt_num(*x),
            fmt_num(*y)
        );
    }
    // Clip nothing: the frame is drawn last so lines beyond it stay inside the picture's margin.
    s.push_str("</svg>\n");
    s
}

/// Quartiles (type 7, as numpy's default) of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 1 {
        return sorted[0];
    }
    let h = (n - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// One row of a box plot: a label and up to two sample sets (e.g. warm and cold boots).
pub struct BoxRow {
    pub label: String,
    pub groups: Vec<(String, &'static str, Vec<f64>)>,
}

/// Horizontal box plots, one row per label (e.g. per boot phase), a box per group: whiskers at
/// min and max, box from the first to the third quartile, a bar at the median and every sample
/// as a dot (with few repeats the dots say more than the box). Each row has its own scale,
/// since phases differ by orders of magnitude; the row's range is written at its right.
pub fn boxplots(title: &str, rows: &[BoxRow]) -> String {
    let (width, left, right) = (960.0, 190.0, 150.0);
    let group_h = 14.0;
    let groups = rows
        .iter()
        .map(|r| r.groups.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let row_h = groups as f64 * (group_h + 4.0) + 10.0;
    let top = 40.0;
    let height = top + row_h * rows.len() as f64 + 30.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="plot boxplot" width="{width}" height="{height:.0}" viewBox="0 0 {width} {height:.0}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="20" font-size="15" font-weight="bold">{}</text>
<text x="10" y="34" fill="#555" font-size="11">whiskers min–max, box quartiles, bar median, dots every boot; each row on its own scale (range at right)</text>"##,
        esc(title)
    );
    let mut legend = Vec::new();
    for (ri, r) in rows.iter().enumerate() {
        let y0 = top + ri as f64 * row_h + 6.0;
        let all: Vec<f64> = r.groups.iter().flat_map(|g| g.2.iter().copied()).collect();
        if all.is_empty() {
            continue;
        }
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if hi - lo < 1e-9 {
            (lo - 0.5, hi + 0.5)
        } else {
            let pad = (hi - lo) * 0.05;
            (lo - pad, hi + pad)
        };
        let x = |v: f64| left + (v - lo) / (hi - lo) * (width - left - right);
        let _ = writeln!(
            s,
            r##"<text x="{:.0}" y="{:.1}" text-anchor="end">{}</text><line x1="{left}" x2="{:.0}" y1="{:.1}" y2="{:.1}" stroke="#eee"/><text x="{:.0}" y="{:.1}" fill="#777" font-size="10">{} – {}</text>"##,
            left - 8.0,
            y0 + row_h / 2.0 - 2.0,
            esc(&r.label),
            width - right,
            y0 + row_h - 6.0,
            y0 + row_h - 6.0,
            width - right + 8.0,
            y0 + row_h / 2.0 - 2.0,
            fmt_ms(lo.max(0.0)),
            fmt_ms(hi)
        );
        for (gi, (name, color, vals)) in r.groups.iter().enumerate() {
            if !legend.iter().any(|(n, _): &(String, &str)| n == name) {
                legend.push((name.clone(), *color));
            }
            if vals.is_empty() {
                continue;
            }
            let mut v = vals.clone();
            v.sort_by(f64::total_cmp);
            let (q1, med, q3) = (quantile(&v, 0.25), quantile(&v, 0.5), quantile(&v, 0.75));
            let yc = y0 + gi as f64 * (group_h + 4.0) + group_h / 2.0;
            let _ = writeln!(
                s,
                r##"<g class="box" data-label="{label}" data-group="{g}" data-n="{n}" data-median="{med:.3}"><title>{label} ({g}): median {m}, n={n}</title><line x1="{:.1}" x2="{:.1}" y1="{yc:.1}" y2="{yc:.1}" stroke="{color}"/><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{group_h}" fill="{color}" fill-opacity="0.25" stroke="{color}"/><line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2.5"/>"##,
                x(v[0]),
                x(v[v.len() - 1]),
                x(q1),
                yc - group_h / 2.0,
                (x(q3) - x(q1)).max(1.0),
                x(med),
                x(med),
                yc - group_h / 2.0,
                yc + group_h / 2.0,
                label = esc(&r.label),
                g = esc(name),
                n = v.len(),
                m = fmt_ms(med),
            );
            for p in &v {
                let _ = write!(
                    s,
                    r##"<circle cx="{:.1}" cy="{yc:.1}" r="2.2" fill="{color}"/>"##,
                    x(*p)
                );
            }
            s.push_str("</g>\n");
        }
    }
    for (i, (name, color)) in legend.iter().enumerate() {
        let lx = left + i as f64 * 120.0;
        let _ = writeln!(
            s,
            r##"<rect x="{lx:.0}" y="{:.0}" width="12" height="12" fill="{color}" fill-opacity="0.5"/><text x="{:.0}" y="{:.0}">{}</text>"##,
            height - 22.0,
            lx + 16.0,
            height - 12.0,
            esc(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A latency percentile-distribution plot as HdrHistogram draws it: percentile on a log axis of
/// 1/(1−p) (so 90%, 99%, 99.9% are evenly spaced), latency on a linear axis. `series` are
/// (label, colour, points (percentile in [0,1), ms)).
pub fn percentiles(title: &str, series: &[Line]) -> String {
    let (w, h) = (960.0, 380.0);
    let (left, right, top, bottom) = (80.0, 160.0, 48.0, 44.0);
    let nines = |p: f64| (1.0 / (1.0 - p.min(0.999_999))).log10();
    let max_x = series
        .iter()
        .flat_map(|s| s.2.iter().map(|(p, _)| nines(*p)))
        .fold(2.0, f64::max)
        .ceil();
    let max_y = series
        .iter()
        .flat_map(|s| s.2.iter().map(|(_, v)| *v))
        .fold(1.0, f64::max)
        * 1.05;
    let x = |p: f64| left + nines(p) / max_x * (w - left - right);
    let y = |v: f64| top + (1.0 - v / max_y) * (h - top - bottom);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="plot percentiles" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="20" font-size="15" font-weight="bold">{}</text>
<text x="10" y="36" fill="#555" font-size="11">latency by percentile; x axis log 1/(1−p)</text>
<rect x="{left}" y="{top}" width="{:.0}" height="{:.0}" fill="none" stroke="#ccc"/>"##,
        esc(title),
        w - left - right,
        h - top - bottom
    );
    for k in 0..=(max_x as u32) {
        let label = match k {
            0 => "0%".to_string(),
            1 => "90%".into(),
            2 => "99%".into(),
            k => format!("99.{}%", "9".repeat(k as usize - 2)),
        };
        let p = 1.0 - 10f64.powi(-(k as i32));
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{top}" y2="{1:.0}" stroke="#eee"/><text x="{0:.1}" y="{2:.0}" text-anchor="middle" fill="#555">{label}</text>"##,
            x(p),
            h - bottom,
            h - bottom + 16.0
        );
    }
    let step = nice_step(max_y / 5.0);
    let mut v = 0.0;
    while v <= max_y {
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{xr:.0}" y1="{yv:.1}" y2="{yv:.1}" stroke="#eee"/><text x="{xl:.0}" y="{yt:.1}" text-anchor="end" fill="#555">{label}</text>"##,
            xr = w - right,
            yv = y(v),
            xl = left - 6.0,
            yt = y(v) + 4.0,
            label = fmt_ms(v)
        );
        v += step;
    }
    for (i, (label, color, pts)) in series.iter().enumerate() {
        if pts.is_empty() {
            continue;
        }
        let path: Vec<String> = pts
            .iter()
            .map(|(p, v)| format!("{:.1},{:.1}", x(*p), y(*v)))
            .collect();
        let _ = writeln!(
            s,
            r##"<polyline class="series" data-label="{l}" data-points="{n}" points="{}" fill="none" stroke="{color}" stroke-width="2"/><rect x="{:.0}" y="{:.0}" width="12" height="3" fill="{color}"/><text x="{:.0}" y="{:.0}">{l}</text>"##,
            path.join(" "),
            w - right + 10.0,
            top + 10.0 + 18.0 * i as f64,
            w - right + 28.0,
            top + 15.0 + 18.0 * i as f64,
            l = esc(label),
            n = pts.len()
        );
    }
    s.push_str("</svg>\n");
    s
}

/// One line of a [`timeseries`] panel: (label, colour, points (seconds, value)).
pub type Line = (String, &'static str, Vec<(f64, f64)>);

/// A panel of a [`timeseries`] chart.
pub struct Panel {
    pub label: String,
    pub unit: String,
    pub lines: Vec<Line>,
    /// A shaded band of values (low, high, label), e.g. the healthy range a recovery is judged
    /// against; `high` may be infinite (up to the panel's top).
    pub band: Option<(f64, f64, String)>,
}

impl Panel {
    pub fn new(label: &str, unit: &str, lines: Vec<Line>) -> Self {
        Self {
            label: label.into(),
            unit: unit.into(),
            lines,
            band: None,
        }
    }
}

/// Stacked panels over one time axis (seconds), with vertical marks (label, seconds, colour),
/// e.g. a herd's release and its last response, or a trigger and the recovery.
pub fn timeseries(title: &str, panels: &[Panel], marks: &[(String, f64, &'static str)]) -> String {
    let (w, left, right) = (960.0, 150.0, 160.0);
    let (panel_h, gap, top) = (130.0, 26.0, 48.0);
    // Mark labels take up to three rows, so that close marks stay readable.
    let label_rows = marks.len().clamp(1, 3) as f64;
    let h = top + panels.len() as f64 * (panel_h + gap) + 12.0 + 12.0 * label_rows;
    let all_t = panels
        .iter()
        .flat_map(|p| p.lines.iter().flat_map(|l| l.2.iter().map(|q| q.0)))
        .chain(marks.iter().map(|m| m.1));
    let (t0, t1) = all_t.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| {
        (a.min(t), b.max(t))
    });
    let (t0, t1) = if t0.is_finite() && t1 > t0 {
        (t0, t1)
    } else {
        (0.0, 1.0)
    };
    let x = |t: f64| left + (t - t0) / (t1 - t0) * (w - left - right);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="plot timeseries" width="{w}" height="{h:.0}" viewBox="0 0 {w} {h:.0}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="20" font-size="15" font-weight="bold">{}</text>"##,
        esc(title)
    );
    let mut legend_i = 0;
    for (pi, p) in panels.iter().enumerate() {
        let y0 = top + pi as f64 * (panel_h + gap);
        let max = p
            .lines
            .iter()
            .flat_map(|l| l.2.iter().map(|q| q.1))
            .fold(0.0, f64::max)
            .max(1e-9)
            * 1.05;
        let max = match &p.band {
            Some((_, hi, _)) if hi.is_finite() => max.max(hi * 1.05),
            Some((lo, _, _)) => max.max(lo * 1.2),
            None => max,
        };
        let y = |v: f64| y0 + panel_h - v.min(max) / max * panel_h;
        if let Some((lo, hi, label)) = &p.band {
            let (ya, yb) = (y(hi.min(max)), y(*lo));
            let _ = writeln!(
                s,
                r##"<g class="band" data-label="{l}"><rect x="{left}" y="{ya:.1}" width="{:.0}" height="{:.1}" fill="#2ca02c" fill-opacity="0.10"/><text x="{:.0}" y="{:.1}" fill="#2a7d2a" font-size="10" text-anchor="end">{l}</text></g>"##,
                w - left - right,
                (yb - ya).max(0.0),
                w - right - 4.0,
                ya + 11.0,
                l = esc(label)
            );
        }
        let _ = writeln!(
            s,
            r##"<rect x="{left}" y="{y0:.1}" width="{:.0}" height="{panel_h}" fill="none" stroke="#ccc"/><text x="{:.0}" y="{:.1}" text-anchor="end">{}</text><text x="{:.0}" y="{:.1}" text-anchor="end" fill="#777" font-size="10">max {} {}</text>"##,
            w - left - right,
            left - 8.0,
            y0 + 14.0,
            esc(&p.label),
            left - 8.0,
            y0 + 28.0,
            fmt_num(max / 1.05),
            esc(&p.unit)
        );
        for (label, color, pts) in &p.lines {
            if pts.is_empty() {
                continue;
            }
            let path: Vec<String> = pts
                .iter()
                .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
                .collect();
            let _ = writeln!(
                s,
                r##"<polyline class="series" data-label="{l}" data-points="{n}" points="{}" fill="none" stroke="{color}" stroke-width="1.5"/><rect x="{:.0}" y="{:.0}" width="12" height="3" fill="{color}"/><text x="{:.0}" y="{:.0}" font-size="11">{l}</text>"##,
                path.join(" "),
                w - right + 10.0,
                top + 10.0 + 16.0 * legend_i as f64,
                w - right + 28.0,
                top + 15.0 + 16.0 * legend_i as f64,
                l = esc(label),
                n = pts.len()
            );
            legend_i += 1;
        }
    }
    let axis_top = h - 18.0 - 12.0 * label_rows;
    for (i, (label, t, color)) in marks.iter().enumerate() {
        let row = (i % 3) as f64;
        let _ = writeln!(
            s,
            r##"<g class="mark" data-label="{l}"><line x1="{0:.1}" x2="{0:.1}" y1="{top}" y2="{1:.0}" stroke="{color}" stroke-dasharray="5 3"/><text x="{0:.1}" y="{2:.0}" fill="{color}" font-size="11" text-anchor="middle">{l}</text></g>"##,
            x(*t),
            axis_top + 12.0 * row,
            axis_top + 10.0 + 12.0 * row,
            l = esc(label)
        );
    }
    let step = nice_step((t1 - t0) / 8.0);
    let mut t = (t0 / step).ceil() * step;
    while t <= t1 + 1e-9 {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.0}" text-anchor="middle" fill="#555" font-size="10">{}</text>"##,
            x(t),
            h - 4.0,
            fmt_num(t) + " s"
        );
        t += step;
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::{PhaseTiming, TimestampSource};
    use crate::metrics::ResourceSummary;

    #[test]
    fn loglog_plots_points_and_the_fit() {
        let pts = [(1e3, 10.0), (2e3, 40.0), (4e3, 160.0)];
        let f = crate::stats::fit::PowerFit::fit(&pts).unwrap();
        let svg = loglog("db_prepare", "users", "ms", &pts, Some(&f));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("n^2.00") && svg.contains("SUPER-LINEAR"));
        assert_eq!(svg.matches("stroke=\"#d62728\"").count(), 3);
        assert!(loglog("x", "n", "ms", &[], None).contains("no positive values"));
    }

    #[test]
    fn waterfall_draws_every_phase_and_both_charts() {
        let phase = |name: &str, a: Option<f64>, b: Option<f64>| PhaseTiming {
            name: name.into(),
            from: "x".into(),
            to: "y".into(),
            start_ms: a,
            end_ms: b,
            duration_ms: a.zip(b).map(|(a, b)| b - a),
            resources: None,
            parent: None,
        };
        let rec = BootRecord {
            label: "boot-1".into(),
            warmup: false,
            cold: false,
            eviction: None,
            restore_seconds: None,
            spawn_unix_ms: 0.0,
            spawn_monotonic_s: 0.0,
            timestamp_source: TimestampSource::LogLine,
            points: [("sync_200".to_string(), 1900.0)].into(),
            phases: vec![
                phase("import_config", Some(0.0), Some(1500.0)),
                phase("db_prepare", Some(1500.0), Some(1510.0)),
                phase("listen", None, None),
            ],
            subphases: (0..9)
                .map(|i| PhaseTiming {
                    name: format!("schema: 73/{i:02}x.sql"),
                    parent: Some("db_prepare".into()),
                    ..phase("s", Some(1500.0 + i as f64), Some(1501.0 + i as f64 * 1.01))
                })
                .collect(),
            missing_markers: vec![],
            server_reported_ms: Default::default(),
            time_to_ready_ms: 1900.0,
            background: None,
            shutdown_ms: Some(40.0),
            shutdown_hung: false,
            exit_status: None,
            resources_to_ready: ResourceSummary::default(),
            resources_total: ResourceSummary::default(),
            log_file: "boot-1.log".into(),
            log_lines: 1,
            log_write_error: None,
            db_statements: None,
            work: None,
        };
        let samples: Vec<ResourceSample> = (0..20)
            .map(|i| ResourceSample {
                t_ms: i as f64 * 100.0,
                cpu_user_s: i as f64 * 0.09,
                rss_bytes: (i + 1) << 20,
                processes: 1,
                ..Default::default()
            })
            .collect();
        let svg = waterfall(&rec, &samples, "Synapse <1.163.2> boot-1");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches(r#"class="phase""#).count(), 2);
        // The six longest of nine sub-phases, nested under db_prepare; the rest counted.
        assert_eq!(svg.matches(r#"class="subphase""#).count(), 6);
        assert!(svg.contains("↳ 73/08x.sql") && !svg.contains("↳ 73/00x.sql"));
        assert!(svg.contains("3 shorter sub-phases not drawn"));
        assert!(svg.contains("missing"));
        assert_eq!(svg.matches(r#"class="series""#).count(), 2);
        assert!(svg.contains("Synapse &lt;1.163.2&gt;"), "title escaped");
        assert!(svg.contains("sync_200 at 1.90 s"));
        assert!((nice_step(237.0) - 500.0).abs() < 1e-9);
    }
}
