//! The sensitivity of the work gate, from two pools of metered boots (a benchmark, never a
//! timed test; `benches/work_sensitivity.sh` makes the pools and runs this).
//!
//!   cargo run --release --example work_sensitivity -- <base-run> <head-run> [trials] [boots] [seed] [metric]
//!
//! `<base-run>` and `<head-run>` are result.json files (or their run directories) whose
//! `work_boots` are the pools: the base side's boots and the head side's (the head adds a known
//! amount of work). Each trial draws `boots` boots a side without replacement and compares them
//! with `hsbench compare`'s own code and the head scenario's gates:
//! - A/B: `boots` base boots against `boots` head boots: is `metric` (default
//!   `work.time_to_ready`; `work.db.calls` for work in a start-up query on PostgreSQL) regressed?
//! - A/A: two disjoint draws of `boots` from the base pool: is any metric regressed?
//!
//! The trials share boots (they are draws from pools, not independent boots), so the rates are
//! what the gate's statistics do with these boots' spread; the pools' own A/A spread per metric
//! is printed beside them. Output: Markdown on stdout.

use std::path::Path;

use hsbench::analysis::compare::{Gates, Verdict, compare};
use hsbench::metrics::catalogue;
use hsbench::result::RunResult;
use rand::SeedableRng;
use rand::seq::SliceRandom;

fn load(path: &str) -> RunResult {
    let file = hsbench::result::read::result_file(Path::new(path));
    hsbench::result::read::read_result(&file).unwrap_or_else(|e| {
        eprintln!("{}: {e}", file.display());
        std::process::exit(2)
    })
}

/// `run` with only `boots` as its metered boots (and no timed ones).
fn with_boots(run: &RunResult, boots: &[hsbench::boot::BootRecord]) -> RunResult {
    let mut r = run.clone();
    r.boots.clear();
    r.boot_summary = None;
    r.cold_boot_summary = None;
    r.work_boots = boots.to_vec();
    r
}

fn spread(v: &[f64]) -> f64 {
    let med = hsbench::stats::spread::median(v);
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(*x), b.max(*x))
        });
    if med > 0.0 { (hi - lo) / med } else { 0.0 }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!(
            "usage: work_sensitivity <base-run> <head-run> [trials=20] [boots=5] [seed=1] [metric=work.time_to_ready]"
        );
        std::process::exit(2);
    }
    let num = |i: usize, d: u64| args.get(i).map_or(d, |s| s.parse().expect("a number"));
    let (trials, boots, seed) = (num(2, 20) as usize, num(3, 5) as usize, num(4, 1));
    let (base, head) = (load(&args[0]), load(&args[1]));
    let (pa, pb) = (base.work_boots.clone(), head.work_boots.clone());
    if pa.len() < 2 * boots || pb.len() < boots {
        eprintln!(
            "the pools are too small: {} base and {} head boots for {boots} a side (A/A draws \
             two disjoint sets from the base pool: it needs {})",
            pa.len(),
            pb.len(),
            2 * boots
        );
        std::process::exit(2);
    }
    let gates = Gates::of_run(&head);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let metric = args.get(5).map_or("work.time_to_ready", String::as_str);
    if !catalogue::is_work(metric) {
        eprintln!("{metric}: not a work.* metric of the catalogue");
        std::process::exit(2);
    }

    let mut out = String::new();
    let mut ab_hits = 0;
    let mut aa_false = 0;
    let mut rows = String::new();
    let mut ratios = Vec::new();
    let mut detectable = Vec::new();
    for t in 1..=trials {
        // A/B
        let mut a = pa.clone();
        a.shuffle(&mut rng);
        let mut b = pb.clone();
        b.shuffle(&mut rng);
        let c = compare(
            &[with_boots(&base, &a[..boots])],
            &[with_boots(&head, &b[..boots])],
            &gates,
            false,
        )
        .expect("compare");
        let m = c.metrics.iter().find(|m| m.metric == metric).expect(metric);
        let hit = m.verdict == Verdict::Regressed;
        ab_hits += hit as usize;
        ratios.push(m.ratio);
        detectable.push(m.noise_threshold);
        let named = c
            .work_attribution
            .first()
            .and_then(|w| w.functions.first())
            .map_or("-".to_string(), |f| format!("`{}`", f.name));
        // A/A
        let mut s = pa.clone();
        s.shuffle(&mut rng);
        let aa = compare(
            &[with_boots(&base, &s[..boots])],
            &[with_boots(&base, &s[boots..2 * boots])],
            &gates,
            false,
        )
        .expect("compare");
        let regressed: Vec<&str> = aa
            .metrics
            .iter()
            .filter(|m| m.verdict == Verdict::Regressed)
            .map(|m| m.metric.as_str())
            .collect();
        aa_false += (!regressed.is_empty()) as usize;
        let aa_m = aa
            .metrics
            .iter()
            .find(|m| m.metric == metric)
            .expect(metric);
        rows.push_str(&format!(
            "| {t} | {:+.3}% | {:.4} | {:?} | {named} | {:+.4}% | {} |\n",
            (m.ratio - 1.0) * 100.0,
            m.p_value.unwrap_or(1.0),
            m.verdict,
            (aa_m.ratio - 1.0) * 100.0,
            if regressed.is_empty() {
                "-".to_string()
            } else {
                regressed.join(", ")
            }
        ));
    }
    let med = |v: &[f64]| hsbench::stats::spread::median(v);
    out.push_str(&format!(
        "# Work gate sensitivity\n\nPools: {} base boots ({}), {} head boots ({}); {trials} trials of {boots} boots a side, drawn without replacement (seed {seed}); gates: alpha {}, work noise max({} × pooled sd of log counts, {:.1}%).\n\n",
        pa.len(),
        args[0],
        pb.len(),
        args[1],
        gates.alpha,
        hsbench::analysis::compare::WORK_NOISE_SDS,
        hsbench::analysis::compare::WORK_NOISE_FLOOR * 100.0,
    ));
    out.push_str(&format!(
        "- A/B: the head's added work called a regression of `{metric}` in **{ab_hits} of {trials}** trials (median change {:+.3}%, median detectable ±{:.3}%).\n",
        (med(&ratios) - 1.0) * 100.0,
        med(&detectable) * 100.0
    ));
    out.push_str(&format!(
        "- A/A: **{aa_false} of {trials}** trials called any metric regressed.\n\n"
    ));
    out.push_str("A/A spread of the whole base pool, (max − min) / median, per metric:\n\n| metric | median | spread |\n|---|---:|---:|\n");
    let mut by_metric: Vec<(String, Vec<f64>)> = Vec::new();
    for b in &pa {
        for (k, v) in hsbench::analysis::figures::work_values(b) {
            match by_metric.iter_mut().find(|(n, _)| *n == k) {
                Some((_, s)) => s.push(v),
                None => by_metric.push((k, vec![v])),
            }
        }
    }
    for (k, v) in &by_metric {
        out.push_str(&format!(
            "| {k} | {} | {:.4}% |\n",
            catalogue::format(k, med(v)),
            spread(v) * 100.0
        ));
    }
    out.push_str("\n| trial | A/B change | p | verdict | top grown function | A/A change | A/A regressed |\n|---:|---:|---:|---|---|---:|---|\n");
    out.push_str(&rows);
    print!("{out}");
}
