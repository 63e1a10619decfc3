//! `hsbench compare`: is the candidate slower than the baseline, for real?
//!
//! Every metric gets a verdict from **two gates**, as criterion does:
//!
//! 1. **Significance**: a two-sided Mann–Whitney U test (the exact permutation distribution of
//!    the rank sum, mid-ranks for ties). Boot timings are few (3–10 per run), skewed (a slow
//!    cold-ish first boot, a competing process) and not normal; a rank test assumes nothing
//!    about their shape, one outlier cannot drag it, and with its exact distribution it is
//!    valid at these sample sizes, where a t-test's normal approximation is not. Its price:
//!    with n samples per side the smallest possible p is 2 / C(2n, n) — 0.1 for 3 vs 3, so a
//!    3-boot run can never show a significant change, and hsbench says "not enough samples"
//!    rather than pretending (5 vs 5 reaches 0.008).
//! 2. **Magnitude**: a bootstrap 95% confidence interval of the ratio of medians
//!    (candidate / baseline; 10,000 resamples, fixed seed, so a comparison is reproducible).
//!    A change counts only when that whole interval lies beyond the noise threshold (default
//!    ±5%), so a statistically detectable 0.5% drift is "no change".
//!
//! Regressed = significant and the interval wholly above `1 + threshold`; improved = significant
//! and wholly below `1 − threshold`; otherwise no change (or not enough samples). Time metrics
//! also need a median difference above the **minimum delta** (`[compare] min_delta`, default
//! [`DEFAULT_MIN_DELTA_MS`], never below [`RESOLUTION_MS`]): Synapse's log stamps have 1 ms
//! resolution, and on a shared machine back-to-back runs drift by 10–15% as a whole (measured on
//! the project's CI: a 12 → 16 ms phase, p = 0.009), so a few milliseconds on a phase of a few
//! milliseconds is nothing a user waits for.
//!
//! When nearly every time metric moved the same way, the comparison warns that the whole run
//! shifted: a slower machine, or a change that slows everything (the verdicts still stand).

use std::collections::BTreeMap;
use std::path::Path;

use rand::{Rng, SeedableRng};

use crate::analysis::figures::samples;
use crate::metrics::catalogue::{self, Unit};
use crate::result::RunResult;
use crate::result::read::{ReadError, load_runs};
use crate::stats::spread::{DETECTION_POWER, detection_factor, median, robust_sd};

pub use crate::scenario::{DEFAULT_ALPHA, DEFAULT_MIN_DELTA_MS, DEFAULT_NOISE};
const BOOTSTRAP_RESAMPLES: usize = 10_000;
/// Smallest difference of medians a time metric (ms) must show to count: twice the 1 ms
/// resolution of log stamps.
pub const RESOLUTION_MS: f64 = 2.0;
/// Above this many arrangements the permutation distribution is sampled, not enumerated.
const EXACT_LIMIT: u64 = 200_000;

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(
        "the runs differ in {what} (baseline {baseline}, candidate {candidate}): comparing them would measure the difference, not a regression; pass --force to compare anyway"
    )]
    Mismatch {
        what: String,
        baseline: String,
        candidate: String,
    },
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Regressed,
    Improved,
    NoChange,
    NotEnoughSamples,
}

impl Verdict {
    pub fn arrow(self) -> &'static str {
        match self {
            Verdict::Regressed => "🔴 regressed",
            Verdict::Improved => "🟢 improved",
            Verdict::NoChange => "no change",
            Verdict::NotEnoughSamples => "not enough samples",
        }
    }
}

/// JSON has no NaN: serde_json writes it as `null`; read `null` back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(<Option<f64> as serde::Deserialize>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// One metric compared.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct MetricComparison {
    pub metric: String,
    pub baseline_n: usize,
    pub candidate_n: usize,
    #[serde(deserialize_with = "nan_if_null")]
    pub baseline_median: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub candidate_median: f64,
    /// candidate median / baseline median.
    #[serde(deserialize_with = "nan_if_null")]
    pub ratio: f64,
    /// 95% bootstrap interval of the ratio of medians.
    #[serde(deserialize_with = "nan_if_null")]
    pub ratio_low: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub ratio_high: f64,
    /// Two-sided Mann–Whitney p-value; `None` when a side has fewer than 2 samples.
    pub p_value: Option<f64>,
    /// The smallest p these sample sizes can reach.
    pub min_p: f64,
    pub noise_threshold: f64,
    /// For time metrics, the smallest difference of medians (ms) that counts; 0 otherwise.
    #[serde(default)]
    pub min_delta: f64,
    pub verdict: Verdict,
    /// Boots compared in pairs (`hsbench ab`: the k-th boot of each side, taken one right after
    /// the other): the number of pairs, whose ratios the rank test (Wilcoxon signed-rank) and
    /// the interval are of. 0: the two sides' samples compared as independent groups.
    #[serde(default)]
    pub pairs: usize,
    /// The smallest change (a fraction: 0.12 is ±12%) this comparison would have called in
    /// about 95% of repeats, at the spread its own samples show: the noise threshold plus
    /// (t(1−α/2) + t(0.95)) standard errors of the log ratio, the spread taken robustly
    /// (1.4826 × the median absolute deviation; of the pairs' log ratios when paired, of each
    /// side's logs pooled otherwise). A "no change" means no change larger than this; `None`
    /// when the samples cannot say (too few, or values ≤ 0).
    #[serde(default)]
    pub detectable: Option<f64>,
}

/// Thresholds of the gates.
#[derive(Debug, Clone)]
pub struct Gates {
    pub alpha: f64,
    pub noise: f64,
    /// Per-metric noise thresholds overriding `noise`.
    pub noise_by_metric: BTreeMap<String, f64>,
    /// Smallest difference of medians (ms) a time metric must show.
    pub min_delta_ms: f64,
}

impl Gates {
    /// The gates a run's scenario declares (`[compare]`), defaults when it declares none
    /// (or the result predates `[compare]`).
    pub fn of_run(run: &RunResult) -> Self {
        let spec: crate::scenario::CompareSpec = run
            .scenario
            .get("compare")
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default();
        Self {
            alpha: spec.alpha,
            noise: spec.noise,
            noise_by_metric: spec.noise_by_metric,
            min_delta_ms: spec.min_delta_ms,
        }
    }
}

impl Default for Gates {
    fn default() -> Self {
        Self {
            alpha: DEFAULT_ALPHA,
            noise: DEFAULT_NOISE,
            noise_by_metric: BTreeMap::new(),
            min_delta_ms: DEFAULT_MIN_DELTA_MS,
        }
    }
}

fn binomial(n: u64, k: u64) -> u64 {
    let k = k.min(n - k);
    let mut r: u64 = 1;
    for i in 0..k {
        r = r.saturating_mul(n - i) / (i + 1);
    }
    r
}

/// Mid-ranks of the pooled samples (ties share the mean of their ranks), 1-based.
fn ranks(pooled: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..pooled.len()).collect();
    idx.sort_by(|&a, &b| pooled[a].total_cmp(&pooled[b]));
    let mut r = vec![0.0; pooled.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && pooled[idx[j + 1]] == pooled[idx[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        for k in &idx[i..=j] {
            r[*k] = mid;
        }
        i = j + 1;
    }
    r
}

/// Two-sided Mann–Whitney U p-value: the share of all splits of the pooled ranks into groups of
/// the two sizes whose rank sum is at least as far from its mean as the observed one. Exact
/// enumeration up to [`EXACT_LIMIT`] splits, else 100,000 seeded random splits.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len(), b.len());
    let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
    let r = ranks(&pooled);
    let n = n1 + n2;
    let mean = n1 as f64 * (n + 1) as f64 / 2.0;
    let observed = (r[..n1].iter().sum::<f64>() - mean).abs();
    let eps = 1e-9;
    if binomial(n as u64, n1 as u64) <= EXACT_LIMIT {
        let (mut extreme, mut total) = (0u64, 0u64);
        // Enumerate n1-subsets of 0..n by a combination counter.
        let mut c: Vec<usize> = (0..n1).collect();
        loop {
            let s: f64 = c.iter().map(|&i| r[i]).sum();
            total += 1;
            if (s - mean).abs() >= observed - eps {
                extreme += 1;
            }
            // Next combination.
            let mut i = n1;
            loop {
                if i == 0 {
                    return extreme as f64 / total as f64;
                }
                i -= 1;
                if c[i] < n - n1 + i {
                    c[i] += 1;
                    for j in i + 1..n1 {
                        c[j] = c[j - 1] + 1;
                    }
                    break;
                }
            }
        }
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x6d77);
    let mut idx: Vec<usize> = (0..n).collect();
    let trials = 100_000;
    let mut extreme = 0;
    for _ in 0..trials {
        // Partial Fisher–Yates: the first n1 positions are a uniform random subset.
        for i in 0..n1 {
            let j = rng.random_range(i..n);
            idx.swap(i, j);
        }
        let s: f64 = idx[..n1].iter().map(|&i| r[i]).sum();
        if (s - mean).abs() >= observed - eps {
            extreme += 1;
        }
    }
    (extreme + 1) as f64 / (trials + 1) as f64
}

/// 95% bootstrap percentile interval of median(b) / median(a).
pub fn ratio_ci(a: &[f64], b: &[f64]) -> (f64, f64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0xb007);
    let mut ratios = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
    let mut ra = vec![0.0; a.len()];
    let mut rb = vec![0.0; b.len()];
    for _ in 0..BOOTSTRAP_RESAMPLES {
        for x in ra.iter_mut() {
            *x = a[rng.random_range(0..a.len())];
        }
        for x in rb.iter_mut() {
            *x = b[rng.random_range(0..b.len())];
        }
        let ma = median(&ra);
        if ma > 0.0 {
            ratios.push(median(&rb) / ma);
        }
    }
    if ratios.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    ratios.sort_by(f64::total_cmp);
    let q = |p: f64| ratios[((ratios.len() - 1) as f64 * p).round() as usize];
    (q(0.025), q(0.975))
}

/// Counted under the work meter (`work.*`: instructions, and the database's own counters).
pub fn is_work_metric(metric: &str) -> bool {
    catalogue::is_work(metric)
}

/// A work metric's noise threshold is measured, not assumed: this many standard deviations of
/// the log counts its own samples show (pooled over both sides)…
pub const WORK_NOISE_SDS: f64 = 4.0;
/// …and at least this share (0.1%): below it, a count's change is the hook's own jitter.
pub const WORK_NOISE_FLOOR: f64 = 0.001;

/// Milliseconds (everything but `_bytes` and `_s` figures).
fn is_time_metric(metric: &str) -> bool {
    catalogue::unit_of(metric) == Unit::Ms
}

/// When at least 80% of the time metrics (and at least 4) moved the same way and their median
/// ratio is beyond the noise threshold, the whole run shifted.
fn whole_run_shift(metrics: &[MetricComparison], noise: f64) -> Option<String> {
    let ratios: Vec<f64> = metrics
        .iter()
        .filter(|m| is_time_metric(&m.metric) && m.ratio.is_finite())
        .map(|m| m.ratio)
        .collect();
    if ratios.len() < 4 {
        return None;
    }
    let up = ratios.iter().filter(|r| **r > 1.0).count();
    let down = ratios.iter().filter(|r| **r < 1.0).count();
    let same_way = up.max(down) as f64 / ratios.len() as f64;
    let med = median(&ratios);
    (same_way >= 0.8 && (med - 1.0).abs() > noise).then(|| {
        format!(
            "{:.0}% of the time metrics moved the same way (median change {:+.1}%): the whole run shifted — a {} machine during one side, or a change that affects everything. Interleave baseline and candidate runs on a quiet machine to tell which.",
            same_way * 100.0,
            (med - 1.0) * 100.0,
            if med > 1.0 { "slower" } else { "faster" }
        )
    })
}

/// Compare one metric's samples.
pub fn compare_metric(metric: &str, a: &[f64], b: &[f64], gates: &Gates) -> MetricComparison {
    let (ma, mb) = (median(a), median(b));
    let ratio = if ma > 0.0 { mb / ma } else { f64::NAN };
    let enough = a.len() >= 2 && b.len() >= 2;
    let min_p = if enough {
        2.0 / binomial((a.len() + b.len()) as u64, a.len() as u64) as f64
    } else {
        1.0
    };
    let p_value = enough.then(|| mann_whitney(a, b));
    let (lo, hi) = if enough && ma > 0.0 {
        ratio_ci(a, b)
    } else {
        (f64::NAN, f64::NAN)
    };
    judge(
        metric,
        (a.len(), b.len()),
        (ma, mb),
        (ratio, lo, hi),
        (p_value, min_p),
        enough && ma > 0.0,
        gates,
        0,
        Spread::groups(a, b),
    )
}

/// One metric's verdict from its statistics: both gates (the rank test's p below alpha, the
/// ratio's interval beyond the metric's noise threshold) and, for times, the minimum delta.
#[allow(clippy::too_many_arguments)]
fn judge(
    metric: &str,
    (baseline_n, candidate_n): (usize, usize),
    (ma, mb): (f64, f64),
    (ratio, lo, hi): (f64, f64, f64),
    (p_value, min_p): (Option<f64>, f64),
    enough: bool,
    gates: &Gates,
    pairs: usize,
    spread: Option<Spread>,
) -> MetricComparison {
    let noise = match gates.noise_by_metric.get(metric) {
        Some(n) => *n,
        None if is_work_metric(metric) => spread.map_or(gates.noise, |sp| {
            (WORK_NOISE_SDS * sp.sd_log).max(WORK_NOISE_FLOOR)
        }),
        None => gates.noise,
    };
    let is_time = is_time_metric(metric);
    let min_delta = if is_time {
        gates.min_delta_ms.max(RESOLUTION_MS)
    } else {
        0.0
    };
    let resolved = !is_time || (mb - ma).abs() > min_delta;
    let verdict = match p_value {
        _ if !enough || min_p >= gates.alpha => Verdict::NotEnoughSamples,
        _ if !resolved => Verdict::NoChange,
        Some(p) if p < gates.alpha && lo > 1.0 + noise => Verdict::Regressed,
        Some(p) if p < gates.alpha && hi < 1.0 - noise => Verdict::Improved,
        _ => Verdict::NoChange,
    };
    MetricComparison {
        metric: metric.to_string(),
        baseline_n,
        candidate_n,
        baseline_median: ma,
        candidate_median: mb,
        ratio,
        ratio_low: lo,
        ratio_high: hi,
        p_value,
        min_p,
        noise_threshold: noise,
        min_delta,
        verdict,
        pairs,
        detectable: spread.filter(|_| enough && min_p < gates.alpha).map(|sp| {
            let t = detection_factor(gates.alpha, DETECTION_POWER, sp.df);
            let by_delta = if is_time && ma > 0.0 {
                min_delta / ma
            } else {
                0.0
            };
            (noise + t * sp.se_log).max(by_delta)
        }),
    }
}

/// The standard error of a comparison's log ratio and its degrees of freedom.
#[derive(Debug, Clone, Copy)]
struct Spread {
    se_log: f64,
    df: f64,
    /// The spread of one sample's log (pooled over the sides; of a pair's log ratio over √2).
    sd_log: f64,
}

impl Spread {
    /// Of paired log ratios.
    fn paired(logs: &[f64]) -> Option<Self> {
        let n = logs.len();
        (n >= 2).then(|| Spread {
            se_log: robust_sd(logs) / (n as f64).sqrt(),
            df: (n - 1) as f64,
            sd_log: robust_sd(logs) / std::f64::consts::SQRT_2,
        })
    }

    /// Of two independent groups (their logs; each side's spread pooled).
    fn groups(a: &[f64], b: &[f64]) -> Option<Self> {
        let (na, nb) = (a.len(), b.len());
        if na < 2 || nb < 2 || a.iter().chain(b).any(|x| *x <= 0.0) {
            return None;
        }
        let la: Vec<f64> = a.iter().map(|x| x.ln()).collect();
        let lb: Vec<f64> = b.iter().map(|x| x.ln()).collect();
        let (sa, sb) = (robust_sd(&la), robust_sd(&lb));
        let df = (na + nb - 2) as f64;
        let pooled = (((na - 1) as f64 * sa * sa + (nb - 1) as f64 * sb * sb) / df).sqrt();
        Some(Spread {
            se_log: pooled * (1.0 / na as f64 + 1.0 / nb as f64).sqrt(),
            df,
            sd_log: pooled,
        })
    }
}

/// Two-sided exact Wilcoxon signed-rank p-value of paired differences (zeros dropped, ties
/// given their average rank): the share of the 2^n sign assignments whose positive rank sum is
/// at least as far from its mean as the observed one.
pub fn signed_rank(d: &[f64]) -> f64 {
    let nz: Vec<f64> = d.iter().copied().filter(|x| *x != 0.0).collect();
    let n = nz.len();
    if n == 0 {
        return 1.0;
    }
    let abs: Vec<f64> = nz.iter().map(|x| x.abs()).collect();
    // Doubled ranks are integers even with ties (average ranks are halves).
    let r2: Vec<usize> = ranks(&abs)
        .iter()
        .map(|r| (r * 2.0).round() as usize)
        .collect();
    let total: usize = r2.iter().sum();
    let observed: usize = nz
        .iter()
        .zip(&r2)
        .filter(|(x, _)| **x > 0.0)
        .map(|(_, r)| *r)
        .sum();
    // counts[s] = sign assignments whose positive doubled-rank sum is s.
    let mut counts = vec![0f64; total + 1];
    counts[0] = 1.0;
    for &r in &r2 {
        for s in (r..=total).rev() {
            counts[s] += counts[s - r];
        }
    }
    let mean = total as f64 / 2.0;
    let dist = (observed as f64 - mean).abs() - 1e-9;
    let all: f64 = counts.iter().sum();
    let extreme: f64 = counts
        .iter()
        .enumerate()
        .filter(|(s, _)| (*s as f64 - mean).abs() >= dist)
        .map(|(_, c)| c)
        .sum();
    (extreme / all).min(1.0)
}

/// Compare one metric over paired samples (base, head): the ratio is the median of the pairs'
/// ratios, its 95% interval a bootstrap over pairs, the rank test Wilcoxon's signed-rank on the
/// log ratios. A drift of the machine that moves both boots of a pair moves neither ratio.
pub fn compare_paired(metric: &str, pairs: &[(f64, f64)], gates: &Gates) -> MetricComparison {
    let a: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let b: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    let (ma, mb) = (median(&a), median(&b));
    let usable = pairs.iter().all(|p| p.0 > 0.0 && p.1 > 0.0);
    let logs: Vec<f64> = if usable {
        pairs.iter().map(|(x, y)| (y / x).ln()).collect()
    } else {
        Vec::new()
    };
    let n = logs.len();
    let enough = n >= 2;
    let min_p = if enough {
        2.0 / 2f64.powi(n as i32)
    } else {
        1.0
    };
    let p_value = enough.then(|| signed_rank(&logs));
    let ratio = if enough {
        median(&logs).exp()
    } else {
        f64::NAN
    };
    let (lo, hi) = if enough {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0xab);
        let mut meds = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
        let mut buf = vec![0.0; n];
        for _ in 0..BOOTSTRAP_RESAMPLES {
            for x in buf.iter_mut() {
                *x = logs[rng.random_range(0..n)];
            }
            meds.push(median(&buf));
        }
        meds.sort_by(f64::total_cmp);
        let q = |p: f64| meds[((meds.len() - 1) as f64 * p).round() as usize].exp();
        (q(0.025), q(0.975))
    } else {
        (f64::NAN, f64::NAN)
    };
    judge(
        metric,
        (a.len(), b.len()),
        (ma, mb),
        (ratio, lo, hi),
        (p_value, min_p),
        enough,
        gates,
        n,
        Spread::paired(&logs),
    )
}

/// Two runs whose boots were taken in turns (`hsbench ab`): every boot metric compared over the
/// pairs of boots with the same label (the k-th boot of each side, taken one after the other),
/// the rest as [`compare`] does.
pub fn compare_interleaved(
    base: &RunResult,
    head: &RunResult,
    gates: &Gates,
) -> Result<Comparison, CompareError> {
    let mut c = compare(
        std::slice::from_ref(base),
        std::slice::from_ref(head),
        gates,
        false,
    )?;
    let (pb, ph) = (
        crate::analysis::figures::per_boot(base),
        crate::analysis::figures::per_boot(head),
    );
    for m in c.metrics.iter_mut() {
        let pairs: Vec<(f64, f64)> = pb
            .iter()
            .filter_map(|(label, vb)| {
                let vh = &ph.iter().find(|(l, _)| l == label)?.1;
                Some((*vb.get(&m.metric)?, *vh.get(&m.metric)?))
            })
            .collect();
        // Instruction counts do not drift with the machine: pairing them gains nothing and
        // the signed-rank test needs 6 pairs to reach 5%; the rank-sum test needs 4 a side.
        if pairs.len() >= 2 && !is_work_metric(&m.metric) {
            *m = compare_paired(&m.metric, &pairs, gates);
        }
    }
    Ok(c)
}

/// The result of `hsbench compare`.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct Comparison {
    pub baseline: Vec<String>,
    pub candidate: Vec<String>,
    /// The servers of each side (version, and a checkout's branch and commit), each once.
    #[serde(default)]
    pub baseline_servers: Vec<String>,
    #[serde(default)]
    pub candidate_servers: Vec<String>,
    pub scenario: String,
    pub alpha: f64,
    pub metrics: Vec<MetricComparison>,
    /// Warnings (different machines, …).
    pub warnings: Vec<String>,
    /// For each work metric that regressed: the functions whose instructions grew most.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub work_attribution: Vec<WorkAttribution>,
}

/// Where a work regression's instructions went: the functions (callgrind's self cost, C
/// functions of the interpreter and its libraries for a Python server) that grew most in the
/// phase, by median over each side's metered boots.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct WorkAttribution {
    /// `work.phase.<name>` or `work.time_to_ready` (every phase to ready).
    pub metric: String,
    /// The change of the metric's median, instructions.
    pub delta: f64,
    /// At most [`ATTRIBUTION_FUNCTIONS`], largest growth first.
    pub functions: Vec<FunctionChange>,
}

/// One function's self cost on each side (medians over the boots; 0 where it was not among a
/// boot's most expensive functions).
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct FunctionChange {
    pub name: String,
    pub baseline: f64,
    pub candidate: f64,
}

/// Functions named per regressed work metric.
pub const ATTRIBUTION_FUNCTIONS: usize = 5;

/// Each metered boot's self cost per function in the phases `metric` covers.
fn boot_functions(runs: &[RunResult], metric: &str) -> Vec<BTreeMap<String, f64>> {
    let phase = metric.strip_prefix("work.phase.");
    runs.iter()
        .flat_map(|r| &r.work_boots)
        .filter_map(|b| b.work.as_ref())
        .map(|w| {
            let mut m: BTreeMap<String, f64> = BTreeMap::new();
            for ph in &w.phases {
                let counted = match phase {
                    Some(p) => ph.name == p,
                    None => ph.instructions.is_some(),
                };
                if counted {
                    for f in &ph.functions {
                        *m.entry(f.name.clone()).or_default() += f.instructions as f64;
                    }
                }
            }
            m
        })
        .collect()
}

/// The functions that grew most in each regressed work metric.
fn attribute(
    metrics: &[MetricComparison],
    baseline: &[RunResult],
    candidate: &[RunResult],
) -> Vec<WorkAttribution> {
    metrics
        .iter()
        .filter(|m| {
            m.verdict == Verdict::Regressed && catalogue::unit_of(&m.metric) == Unit::Instructions
        })
        .map(|m| {
            let (a, b) = (
                boot_functions(baseline, &m.metric),
                boot_functions(candidate, &m.metric),
            );
            let names: std::collections::BTreeSet<&String> =
                a.iter().chain(&b).flat_map(|f| f.keys()).collect();
            let med = |side: &[BTreeMap<String, f64>], n: &str| {
                let v: Vec<f64> = side
                    .iter()
                    .map(|f| f.get(n).copied().unwrap_or(0.0))
                    .collect();
                if v.is_empty() { 0.0 } else { median(&v) }
            };
            let mut functions: Vec<FunctionChange> = names
                .into_iter()
                .map(|n| FunctionChange {
                    name: n.clone(),
                    baseline: med(&a, n),
                    candidate: med(&b, n),
                })
                .filter(|f| f.candidate > f.baseline)
                .collect();
            functions.sort_by(|x, y| {
                (y.candidate - y.baseline)
                    .total_cmp(&(x.candidate - x.baseline))
                    .then(x.name.cmp(&y.name))
            });
            functions.truncate(ATTRIBUTION_FUNCTIONS);
            WorkAttribution {
                metric: m.metric.clone(),
                delta: m.candidate_median - m.baseline_median,
                functions,
            }
        })
        .collect()
}

impl Comparison {
    pub fn regressions(&self) -> Vec<&MetricComparison> {
        self.metrics
            .iter()
            .filter(|m| m.verdict == Verdict::Regressed)
            .collect()
    }
}

fn describe(r: &RunResult) -> (String, String, String) {
    let scenario = r.scenario_name();
    let dataset = r
        .dataset
        .as_ref()
        .map_or("?".to_string(), |d| d.spec_hash.clone());
    let db = r
        .server
        .as_ref()
        .map_or("?".to_string(), |s| s.database.clone());
    (scenario.to_string(), dataset, db)
}

/// Compare `candidate` runs against `baseline` runs. Refuses different scenarios, datasets or
/// databases unless `force`; warns when the machines differ.
/// Gates given on the command line; each overrides the candidate scenario's `[compare]`.
#[derive(Debug, Clone, Default)]
pub struct GateOverrides {
    pub noise: Option<f64>,
    pub alpha: Option<f64>,
    /// Minimum delta of a time metric's medians, ms.
    pub min_delta_ms: Option<f64>,
}

impl GateOverrides {
    /// `gates` with these overrides applied (an explicit noise is a decision about every metric).
    pub fn apply(&self, mut gates: Gates) -> Gates {
        if let Some(n) = self.noise {
            gates.noise = n;
            gates.noise_by_metric.clear();
        }
        if let Some(a) = self.alpha {
            gates.alpha = a;
        }
        if let Some(d) = self.min_delta_ms {
            gates.min_delta_ms = d;
        }
        gates
    }
}

/// Load both sides and compare them with the candidate scenario's gates (`[compare]`), as
/// overridden.
pub fn compare_paths(
    baseline: &Path,
    candidate: &Path,
    overrides: &GateOverrides,
    force: bool,
) -> Result<Comparison, CompareError> {
    let base = load_runs(baseline)?;
    let cand = load_runs(candidate)?;
    let gates = overrides.apply(Gates::of_run(&cand[0]));
    compare(&base, &cand, &gates, force)
}

pub fn compare(
    baseline: &[RunResult],
    candidate: &[RunResult],
    gates: &Gates,
    force: bool,
) -> Result<Comparison, CompareError> {
    let (bs, bd, bdb) = describe(&baseline[0]);
    let (cs, cd, cdb) = describe(&candidate[0]);
    let mut warnings = Vec::new();
    for (what, x, y) in [
        ("scenario", &bs, &cs),
        ("dataset (spec hash)", &bd, &cd),
        ("database", &bdb, &cdb),
    ] {
        if x != y {
            if !force {
                return Err(CompareError::Mismatch {
                    what: what.into(),
                    baseline: x.clone(),
                    candidate: y.clone(),
                });
            }
            warnings.push(format!("forced: the runs differ in {what} ({x} vs {y})"));
        }
    }
    let (bm, cm) = (&baseline[0].machine, &candidate[0].machine);
    if serde_json::to_value(bm).ok() != serde_json::to_value(cm).ok() {
        warnings.push(
            "the runs come from different machines (fingerprints differ): a change may be the machine's"
                .into(),
        );
    }
    let (a, b) = (samples(baseline), samples(candidate));
    let metrics: Vec<MetricComparison> = a
        .iter()
        .filter_map(|(k, va)| b.get(k).map(|vb| compare_metric(k, va, vb, gates)))
        .collect();
    warnings.extend(whole_run_shift(&metrics, gates.noise));
    let servers = |runs: &[RunResult]| {
        let mut v: Vec<String> = Vec::new();
        for r in runs {
            let l = r.server_label();
            if !v.contains(&l) {
                v.push(l);
            }
        }
        v
    };
    Ok(Comparison {
        baseline: baseline.iter().map(|r| r.run_id.clone()).collect(),
        candidate: candidate.iter().map(|r| r.run_id.clone()).collect(),
        baseline_servers: servers(baseline),
        candidate_servers: servers(candidate),
        scenario: cs,
        alpha: gates.alpha,
        work_attribution: attribute(&metrics, baseline, candidate),
        metrics,
        warnings,
    })
}

#[cfg(test)]
mod tests;
