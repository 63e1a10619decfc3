//! `compare` as a pull request reads it: compare.md, the verdict first.

use crate::analysis::compare::{
    Comparison, MetricComparison, Verdict, WORK_NOISE_FLOOR, WORK_NOISE_SDS, is_work_metric,
};
use crate::metrics::catalogue;

/// A metric's value in its unit (`_bytes`, `_s`, else milliseconds).
pub fn fmt_value(metric: &str, v: f64) -> String {
    catalogue::format(metric, v)
}

/// A relative change (0.021 → `+2.1%`): to a hundredth of a percent for instruction counts,
/// whose noise is that small, else to a tenth.
pub fn fmt_change(metric: &str, fraction: f64) -> String {
    // Rounded first, so a change that rounds to zero reads +0.00%, never -0.00%.
    let digits = if is_work_metric(metric) { 2 } else { 1 };
    let scale = 10f64.powi(digits);
    let pct = (fraction * 100.0 * scale).round() / scale + 0.0;
    if !fraction.is_finite() {
        "–".into()
    } else {
        format!("{pct:+.digits$}%", digits = digits as usize)
    }
}

/// A detectable change (`±0.3%`), as precise as [`fmt_change`].
fn fmt_detectable(metric: &str, fraction: f64) -> String {
    if crate::analysis::compare::is_work_metric(metric) {
        format!("±{:.2}%", fraction * 100.0)
    } else {
        format!("±{:.1}%", fraction * 100.0)
    }
}

/// Markdown for a pull request: the verdict first, naming the regressed phases.
pub fn markdown(c: &Comparison) -> String {
    let regs = c.regressions();
    let mut md = format!("## hsbench compare · {}\n\n", c.scenario);
    let mut regs = regs;
    // Largest change first: the phase to look at.
    regs.sort_by(|a, b| b.ratio.total_cmp(&a.ratio));
    if regs.is_empty() {
        md.push_str("**No regression.**");
    } else {
        let names: Vec<String> = regs
            .iter()
            .map(|m| {
                let change = if is_work_metric(&m.metric) {
                    fmt_change(&m.metric, m.ratio - 1.0)
                } else {
                    format!("{:+.0}%", (m.ratio - 1.0) * 100.0)
                };
                format!(
                    "{} {change} (p={:.3})",
                    m.metric.trim_start_matches("phase."),
                    m.p_value.unwrap_or(1.0)
                )
            })
            .collect();
        md.push_str(&format!("**Regressed: {}.**", names.join(", ")));
    }
    let pairs = c.metrics.iter().map(|m| m.pairs).max().unwrap_or(0);
    let test = if pairs > 0 {
        format!(
            "boot metrics over {pairs} pairs of boots taken one after the other (Wilcoxon signed-rank p < {a}, the 95% bootstrap interval of the median pair ratio beyond the noise threshold), the others Mann–Whitney p < {a} and the interval of the ratio of medians",
            a = c.alpha
        )
    } else {
        format!(
            "Mann–Whitney p < {}, the 95% bootstrap interval of the ratio of medians beyond the noise threshold",
            c.alpha
        )
    };
    let times = c
        .metrics
        .iter()
        .any(|m| catalogue::unit_of(&m.metric) == catalogue::Unit::Ms);
    md.push_str(&format!(
        " Baseline {} run(s), candidate {} run(s); gates: {test}{}.\n\n",
        c.baseline.len(),
        c.candidate.len(),
        if times {
            format!(
                ", and for times a change of more than {}",
                crate::util::fmt::fmt_ms(c.metrics.iter().map(|m| m.min_delta).fold(0.0, f64::max))
            )
        } else {
            String::new()
        }
    ));
    if !c.baseline_servers.is_empty() || !c.candidate_servers.is_empty() {
        md.push_str(&format!(
            "Baseline: {}. Candidate: {}.\n\n",
            c.baseline_servers.join("; "),
            c.candidate_servers.join("; ")
        ));
    }
    for w in &c.warnings {
        md.push_str(&format!("⚠ {w}\n\n"));
    }
    md.push_str(&gates_fired(c));
    // `subphase.<name>`, `cold.subphase.<name>`, `crash.subphase.<name>`.
    let is_sub = |m: &&MetricComparison| {
        ["", "cold.", "crash."]
            .iter()
            .any(|p| m.metric.starts_with(&format!("{p}subphase.")))
    };
    let (subs, main): (Vec<&MetricComparison>, Vec<&MetricComparison>) =
        c.metrics.iter().partition(is_sub);
    md.push_str(&table(&main));
    if !subs.is_empty() {
        let changed: Vec<&MetricComparison> = subs
            .iter()
            .copied()
            .filter(|m| matches!(m.verdict, Verdict::Regressed | Verdict::Improved))
            .collect();
        md.push_str(&format!(
            "\n#### Sub-phases: {} compared, {} changed\n\n",
            subs.len(),
            changed.len()
        ));
        if changed.is_empty() {
            md.push_str("No sub-phase changed beyond the gates.\n");
        } else {
            md.push_str("A sub-phase whose log line marks its end is timed from the line before it: work between two lines is charged to the later one.\n\n");
            md.push_str(&table(&changed));
        }
    }
    md.push_str(&attribution(c));
    if c.metrics.iter().any(|m| m.detectable.is_some()) {
        md.push_str("\n`detectable`: the smallest change these samples would have called in about 95% of repeats, at the spread they show (the noise threshold plus (t(1−α/2) + t(0.95)) standard errors of the log ratio). A \"no change\" rules out only changes larger than it; more boots, or a quieter machine, make it smaller.\n");
    }
    if c.metrics
        .iter()
        .any(|m| m.verdict == Verdict::NotEnoughSamples && m.baseline_n >= 2)
    {
        md.push_str("\nWith n boots per side the smallest reachable p is 2/C(2n, n): 3 vs 3 cannot reach 0.05; use `[boot] repeats` ≥ 5.\n");
    }
    md
}

/// The metrics' rows under one header.
fn table(metrics: &[&MetricComparison]) -> String {
    let mut md = String::from(
        "| metric | baseline | candidate | change | 95% CI | p | verdict | detectable |\n|---|---:|---:|---:|---|---:|---|---:|\n",
    );
    for m in metrics {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            m.metric,
            fmt_value(&m.metric, m.baseline_median),
            fmt_value(&m.metric, m.candidate_median),
            // Two zero medians (no failed request on either side) have no ratio.
            fmt_change(&m.metric, m.ratio - 1.0),
            if m.ratio_low.is_nan() {
                "–".to_string()
            } else {
                format!(
                    "{} … {}",
                    fmt_change(&m.metric, m.ratio_low - 1.0),
                    fmt_change(&m.metric, m.ratio_high - 1.0)
                )
            },
            m.p_value.map_or("–".into(), |p| format!("{p:.3}")),
            m.verdict.arrow(),
            m.detectable
                .map_or("–".into(), |d| fmt_detectable(&m.metric, d))
        ));
    }
    md
}

/// Which of the two gates fired: work (instructions under the work meter) and wall time, and
/// what each one's verdict means. Empty when the comparison has no work metric.
fn gates_fired(c: &Comparison) -> String {
    let work: Vec<&MetricComparison> = c
        .metrics
        .iter()
        .filter(|m| is_work_metric(&m.metric))
        .collect();
    if work.is_empty() {
        return String::new();
    }
    let names = |ms: &[&MetricComparison]| -> String {
        ms.iter()
            .map(|m| format!("`{}`", m.metric))
            .collect::<Vec<_>>()
            .join(", ")
    };
    fn regressed<'a>(ms: &[&'a MetricComparison]) -> Vec<&'a MetricComparison> {
        ms.iter()
            .copied()
            .filter(|m| m.verdict == Verdict::Regressed)
            .collect()
    }
    let time: Vec<&MetricComparison> = c
        .metrics
        .iter()
        .filter(|m| catalogue::unit_of(&m.metric) == catalogue::Unit::Ms)
        .filter(|m| {
            let base = m.metric.trim_start_matches("cold.");
            base == "time_to_ready" || base.starts_with("phase.") || base.starts_with("subphase.")
        })
        .collect();
    let (wr, tr) = (regressed(&work), regressed(&time));
    let mut s = String::from("#### Two gates: work and wall time\n\n");
    s.push_str(&format!(
        "- **Work** (instructions under the work meter; noise threshold per metric: {WORK_NOISE_SDS:.0} × \
         the spread of the counts of both sides, at least {:.1}%): {}.\n",
        WORK_NOISE_FLOOR * 100.0,
        if wr.is_empty() {
            "did not fire".to_string()
        } else {
            format!("**fired** on {}", names(&wr))
        }
    ));
    if time.is_empty() {
        s.push_str("- **Wall time**: not measured (`[boot] meter = \"work\"`).\n");
    } else {
        s.push_str(&format!(
            "- **Wall time**: {}.\n",
            if tr.is_empty() {
                "did not fire".to_string()
            } else {
                format!("**fired** on {}", names(&tr))
            }
        ));
    }
    let why = match (wr.is_empty(), tr.is_empty() || time.is_empty()) {
        (false, _) => {
            "The head executes more instructions: CPU work was added (see where the \
             instructions went below)."
        }
        (true, false) => {
            "Wall time grew but the instructions did not: time spent waiting (sleeps, I/O, \
             locks, the database), which costs no instructions of the server's process."
        }
        (true, true) => "",
    };
    if !why.is_empty() {
        s.push_str(&format!("\n{why}\n"));
    }
    s.push('\n');
    s
}

/// For each work metric that regressed: the functions whose instructions grew most.
fn attribution(c: &Comparison) -> String {
    let mut s = String::new();
    for a in &c.work_attribution {
        s.push_str(&format!(
            "\n#### Where the instructions went: `{}` ({}{} instructions)\n\n",
            a.metric,
            if a.delta >= 0.0 { "+" } else { "−" },
            catalogue::Unit::Instructions.format(a.delta.abs())
        ));
        if a.functions.is_empty() {
            s.push_str("No function among each boot's most expensive ones grew.\n");
            continue;
        }
        s.push_str("Self cost per function under callgrind (median over each side's boots; a C function of the interpreter or a native library for a Python server).\n\n| function | baseline | candidate | grew by |\n|---|---:|---:|---:|\n");
        for f in &a.functions {
            s.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                f.name.replace('|', "\\|"),
                catalogue::Unit::Instructions.format(f.baseline),
                catalogue::Unit::Instructions.format(f.candidate),
                catalogue::Unit::Instructions.format(f.candidate - f.baseline)
            ));
        }
    }
    s
}
