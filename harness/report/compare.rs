//! `compare` as a pull request reads it: compare.md, the verdict first.

use crate::analysis::compare::{Comparison, MetricComparison, Verdict};
use crate::metrics::catalogue;

/// A metric's value in its unit (`_bytes`, `_s`, else milliseconds).
pub fn fmt_value(metric: &str, v: f64) -> String {
    catalogue::format(metric, v)
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
                format!(
                    "{} +{:.0}% (p={:.3})",
                    m.metric.trim_start_matches("phase."),
                    (m.ratio - 1.0) * 100.0,
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
    md.push_str(&format!(
        " Baseline {} run(s), candidate {} run(s); gates: {test}, and for times a change of more than {}.\n\n",
        c.baseline.len(),
        c.candidate.len(),
        crate::util::fmt::fmt_ms(
            c.metrics
                .iter()
                .map(|m| m.min_delta)
                .fold(0.0, f64::max)
        )
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
            if m.ratio.is_finite() {
                format!("{:+.1}%", (m.ratio - 1.0) * 100.0)
            } else {
                "–".to_string()
            },
            if m.ratio_low.is_nan() {
                "–".to_string()
            } else {
                format!(
                    "{:+.1}% … {:+.1}%",
                    (m.ratio_low - 1.0) * 100.0,
                    (m.ratio_high - 1.0) * 100.0
                )
            },
            m.p_value.map_or("–".into(), |p| format!("{p:.3}")),
            m.verdict.arrow(),
            m.detectable
                .map_or("–".into(), |d| format!("±{:.1}%", d * 100.0))
        ));
    }
    md
}
