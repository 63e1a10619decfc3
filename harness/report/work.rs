//! The work meter's section of summary.md and report.html: instructions per phase and to
//! ready over the metered boots, their spread (what a gate on them can detect), the phase's
//! time beside them when the run also timed boots, the meter that ran and its slowdown, and
//! the functions that cost most.

use std::collections::BTreeMap;

use crate::boot::BootRecord;
use crate::metrics::catalogue::{self, fmt_instructions};
use crate::result::RunResult;
use crate::stats::spread::median;
use crate::util::fmt::{esc, fmt_ms};

/// One row: a work metric over the metered boots.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkRow {
    /// `work.time_to_ready` or `work.phase.<name>`.
    pub metric: String,
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// (max − min) / median: the A/A spread of the run's own boots.
    pub spread: f64,
    /// The same phase's median wall time over the run's timed boots (ms), when it timed any.
    pub time_ms: Option<f64>,
}

/// The rows, to ready first, then the phases in the profile's order.
pub fn rows(r: &RunResult) -> Vec<WorkRow> {
    let mut samples: Vec<(String, Vec<f64>)> = Vec::new();
    for b in &r.work_boots {
        for (k, v) in crate::analysis::figures::work_values(b) {
            match samples.iter_mut().find(|(n, _)| *n == k) {
                Some((_, s)) => s.push(v),
                None => samples.push((k, vec![v])),
            }
        }
    }
    // work.time_to_ready ends at a marker (Synapse: `listening`): the unmetered boots' time
    // to that marker stands beside it.
    let ready_marker = r
        .work_boots
        .iter()
        .find_map(|b| b.work.as_ref()?.to_ready_marker.clone());
    let time = |metric: &str| -> Option<f64> {
        let s = r.boot_summary.as_ref()?;
        let phase = metric
            .strip_prefix("work.db.phase.")
            .or_else(|| metric.strip_prefix("work.phase."));
        let (list, name) = match phase {
            Some(p) => (&s.phases, p),
            None => (&s.points, ready_marker.as_deref()?),
        };
        list.iter()
            .find(|n| n.name == name)
            .and_then(|n| n.stat.as_ref())
            .map(|st| st.median)
    };
    samples
        .into_iter()
        .map(|(metric, v)| {
            let med = median(&v);
            let (min, max) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                    (a.min(*x), b.max(*x))
                });
            WorkRow {
                time_ms: time(&metric),
                n: v.len(),
                spread: if med > 0.0 { (max - min) / med } else { 0.0 },
                metric,
                median: med,
                min,
                max,
            }
        })
        .collect()
}

/// The private PostgreSQL cluster's statements that touched the most pages, reset to ready, in
/// the boot whose page count to ready is the median one.
pub fn top_statements(r: &RunResult) -> Vec<crate::meter::DbStatementCounts> {
    let mut dbs: Vec<&crate::meter::DbWork> = r
        .work_boots
        .iter()
        .filter_map(|b| b.work.as_ref()?.db.as_ref())
        .collect();
    dbs.sort_by_key(|d| d.at_ready.blocks());
    dbs.get(dbs.len() / 2)
        .map(|d| d.statements.clone())
        .unwrap_or_default()
}

/// The most expensive functions to ready (self cost, summed over the phases to ready) of the
/// boot whose count to ready is the median one.
pub fn top_functions(r: &RunResult, n: usize) -> Vec<(String, u64)> {
    let mut boots: Vec<&BootRecord> = r
        .work_boots
        .iter()
        .filter(|b| b.work.as_ref().is_some_and(|w| w.to_ready.is_some()))
        .collect();
    boots.sort_by_key(|b| b.work.as_ref().and_then(|w| w.to_ready));
    let Some(b) = boots.get(boots.len() / 2) else {
        return Vec::new();
    };
    let mut f: BTreeMap<&str, u64> = BTreeMap::new();
    for ph in &b.work.as_ref().expect("filtered").phases {
        for fw in &ph.functions {
            *f.entry(fw.name.as_str()).or_default() += fw.instructions;
        }
    }
    let mut v: Vec<(String, u64)> = f.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

fn meter_line(r: &RunResult) -> String {
    let Some(m) = &r.meter else {
        return String::new();
    };
    let marks = match m.marks {
        crate::meter::MarkKind::InProcess => {
            "the count read at each marker line by a hook in the server's process"
        }
        crate::meter::MarkKind::External => {
            "the count read at each marker line by callgrind_control"
        }
    };
    format!(
        "{} (valgrind {}), {marks}; timeouts ×{}; {}.",
        m.meter,
        m.version.trim_start_matches("valgrind-"),
        m.timeout_factor,
        match m.slowdown {
            Some(s) => format!("{s:.1}× slower than the unmetered boots"),
            None => "slowdown not measured (no unmetered timed boots: `meter = \"work\"`)".into(),
        }
    )
}

/// summary.md's section; empty without metered boots.
pub fn markdown(r: &RunResult) -> String {
    let rows = rows(r);
    if rows.is_empty() {
        return String::new();
    }
    let mut md = format!(
        "### Work: instructions under the work meter ({} boot(s))\n\nMeter: {}\n\n",
        r.work_boots.len(),
        meter_line(r)
    );
    md.push_str(
        "| metric | median | min | max | spread | wall time (unmetered) |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for w in &rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {:.3}% | {} |\n",
            w.metric,
            catalogue::format(&w.metric, w.median),
            catalogue::format(&w.metric, w.min),
            catalogue::format(&w.metric, w.max),
            w.spread * 100.0,
            w.time_ms.map_or("–".into(), fmt_ms)
        ));
    }
    md.push_str(
        "\n`spread`: (max − min) / median over this run's metered boots, the same fixture restored \
         before each: the A/A noise a work gate sees (`compare` calls a change only beyond 4 × its \
         standard deviation, and never below 0.1%).\n",
    );
    let top = top_functions(r, 10);
    if !top.is_empty() {
        md.push_str("\nCostliest functions to ready (self cost, the median boot):\n\n| function | instructions |\n|---|---:|\n");
        for (name, n) in &top {
            md.push_str(&format!(
                "| `{}` | {} |\n",
                name.replace('|', "\\|"),
                fmt_instructions(*n as f64)
            ));
        }
    }
    let statements = top_statements(r);
    if !statements.is_empty() {
        md.push_str(
            "\nPostgreSQL's share (`work.db.*`, its own counters from pg_stat_statements, read when \
             hsbench reads each marker's line): the statements that touched the most pages, spawn \
             to ready, the median boot:\n\n| statement | calls | rows | blocks hit | blocks read |\n|---|---:|---:|---:|---:|\n",
        );
        for st in &statements {
            md.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                st.statement.replace('|', "\\|"),
                st.counts.calls,
                st.counts.rows,
                st.counts.shared_blks_hit,
                st.counts.shared_blks_read
            ));
        }
    }
    md.push('\n');
    md
}

/// report.html's section; empty without metered boots.
pub fn html(r: &RunResult) -> String {
    let rows = rows(r);
    if rows.is_empty() {
        return String::new();
    }
    let mut h = format!(
        "<h3 id=\"work\">Work: instructions under the work meter ({} boot(s))</h3>\n<p class=\"note\">{}</p>\n",
        r.work_boots.len(),
        esc(&meter_line(r))
    );
    h.push_str(
        "<table><tr><th>metric</th><th>median</th><th>min</th><th>max</th><th>spread</th><th>wall time (unmetered)</th></tr>\n",
    );
    for w in &rows {
        h.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.3}%</td><td class=\"num\">{}</td></tr>\n",
            esc(&w.metric),
            catalogue::format(&w.metric, w.median),
            catalogue::format(&w.metric, w.min),
            catalogue::format(&w.metric, w.max),
            w.spread * 100.0,
            w.time_ms.map_or("–".into(), fmt_ms)
        ));
    }
    h.push_str("</table>\n<p class=\"note\">spread: (max − min) / median over the metered boots, the same fixture restored before each: the A/A noise a work gate sees.</p>\n");
    let top = top_functions(r, 10);
    if !top.is_empty() {
        h.push_str("<table><tr><th>costliest functions to ready (self cost, the median boot)</th><th>instructions</th></tr>\n");
        for (name, n) in &top {
            h.push_str(&format!(
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td></tr>\n",
                esc(name),
                fmt_instructions(*n as f64)
            ));
        }
        h.push_str("</table>\n");
    }
    let statements = top_statements(r);
    if !statements.is_empty() {
        h.push_str(
            "<p class=\"note\">PostgreSQL's share (work.db.*, its own counters from pg_stat_statements, read when hsbench reads each marker's line): the statements that touched the most pages, spawn to ready, the median boot.</p>\n<table><tr><th>statement</th><th>calls</th><th>rows</th><th>blocks hit</th><th>blocks read</th></tr>\n",
        );
        for st in &statements {
            h.push_str(&format!(
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
                esc(&st.statement),
                st.counts.calls,
                st.counts.rows,
                st.counts.shared_blks_hit,
                st.counts.shared_blks_read
            ));
        }
        h.push_str("</table>\n");
    }
    h
}
