//! Change points in a series of runs: E-Divisive means (Matteson & James, 2014), as MongoDB's
//! CI and Apache Otava (formerly Hunter) use it, with a permutation test for significance.
//!
//! The divergence between the runs before a split and after it is the energy distance of their
//! values (`|x - y|`, α = 1): it reacts to a shift of the distribution, not only of a mean, and
//! needs no model of the noise. The best split of a segment is tested by permuting the segment:
//! the share of permutations whose best split diverges at least as much is the p-value. Splits
//! are found hierarchically: the most divergent significant split of any segment is taken, and
//! its two sides are searched again, until no segment has one. A change point smaller than the
//! minimum magnitude stays a split of the series but is not reported as a change.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// How change points are searched and tested.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detector {
    /// Significance level of the permutation test (e.g. 0.01).
    pub alpha: f64,
    /// Permutations per test (the smallest p-value is 1 / (permutations + 1)).
    pub permutations: usize,
    /// The smallest relative change of the median reported (e.g. 0.01 for 1%).
    pub min_magnitude: f64,
    /// Fewest runs on each side of a split.
    pub min_segment: usize,
    /// Seed of the permutations and of the bootstrap (the same series gives the same answer).
    pub seed: u64,
}

impl Default for Detector {
    fn default() -> Self {
        Detector {
            alpha: 0.01,
            permutations: 199,
            min_magnitude: 0.01,
            min_segment: 3,
            seed: 0x5eed,
        }
    }
}

/// A change point: the series moves from one level to another between `index - 1` and `index`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChangePoint {
    /// The first run after the change (an index into the series).
    pub index: usize,
    /// Median of the runs before it (back to the previous change point) and after it (to the
    /// next one).
    pub before: f64,
    pub after: f64,
    /// `after / before - 1`.
    pub change: f64,
    /// A 95% bootstrap interval of `change` (percentiles of resampled medians).
    pub change_low: f64,
    pub change_high: f64,
    /// The permutation test's p-value.
    pub p_value: f64,
    /// Runs on each side that the figures above are drawn from.
    pub runs_before: usize,
    pub runs_after: usize,
    /// At least the minimum magnitude: a change to report, not only a split of the series.
    pub reported: bool,
}

/// The energy-distance statistic of every split of `x`: `q[t]` compares `x[..t]` with `x[t..]`
/// (`t` from `min` to `n - min`; other entries are 0).
fn q_values(x: &[f64], min: usize) -> Vec<f64> {
    let n = x.len();
    let mut q = vec![0.0; n + 1];
    if n < 2 * min.max(1) {
        return q;
    }
    // d[i][j] = |x_i - x_j|; row sums over ranges from prefix sums.
    let mut prefix = vec![vec![0.0; n + 1]; n];
    for i in 0..n {
        for j in 0..n {
            prefix[i][j + 1] = prefix[i][j] + (x[i] - x[j]).abs();
        }
    }
    // within(a, b): sum over pairs i < j in [a, b) of d, built incrementally.
    // left[t] = within(0, t), right[t] = within(t, n).
    let mut left = vec![0.0; n + 1];
    for t in 1..=n {
        left[t] = left[t - 1] + prefix[t - 1][t - 1];
    }
    let mut right = vec![0.0; n + 1];
    for t in (0..n).rev() {
        right[t] = right[t + 1] + (prefix[t][n] - prefix[t][t + 1]);
    }
    // between(t) = sum_{i < t <= j} d; moving i = t from the right side to the left.
    let mut between = 0.0;
    for t in 1..n {
        let i = t - 1;
        // i leaves the right side: its pairs with [t, n) become between pairs; its pairs with
        // [0, i) were between pairs and become within the left side.
        between += (prefix[i][n] - prefix[i][t]) - prefix[i][i];
        if t < min || n - t < min {
            continue;
        }
        let (a, b) = (t as f64, (n - t) as f64);
        let mean_between = between / (a * b);
        let mean_left = if t > 1 {
            left[t] / (a * (a - 1.0) / 2.0)
        } else {
            0.0
        };
        let mean_right = if n - t > 1 {
            right[t] / (b * (b - 1.0) / 2.0)
        } else {
            0.0
        };
        q[t] = a * b / (a + b) * (2.0 * mean_between - mean_left - mean_right);
    }
    q
}

/// The best split of `x` and its statistic.
fn best_split(x: &[f64], min: usize) -> Option<(usize, f64)> {
    let q = q_values(x, min);
    (min.max(1)..=x.len().saturating_sub(min.max(1)))
        .map(|t| (t, q[t]))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|(_, v)| *v > 0.0)
}

fn median(v: &[f64]) -> f64 {
    crate::stats::spread::median(v)
}

impl Detector {
    /// The p-value of the best split of `x` (statistic `observed`) by permutation.
    fn p_value(&self, x: &[f64], observed: f64, rng: &mut ChaCha8Rng) -> f64 {
        let mut y = x.to_vec();
        let mut at_least = 0usize;
        for _ in 0..self.permutations {
            y.shuffle(rng);
            if best_split(&y, self.min_segment).is_some_and(|(_, q)| q >= observed) {
                at_least += 1;
            }
        }
        (at_least + 1) as f64 / (self.permutations + 1) as f64
    }

    /// The change points of `series`, in order of index.
    pub fn detect(&self, series: &[f64]) -> Vec<ChangePoint> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        // Splits found so far (with their p-values); segments are the ranges between them.
        let mut splits: Vec<(usize, f64)> = Vec::new();
        // Segments already tested without a significant split.
        let mut settled: Vec<(usize, usize)> = Vec::new();
        loop {
            let mut bounds: Vec<usize> = splits.iter().map(|s| s.0).collect();
            bounds.push(0);
            bounds.push(series.len());
            bounds.sort_unstable();
            bounds.dedup();
            // The most divergent split of any unsettled segment.
            let best = bounds
                .windows(2)
                .filter(|w| !settled.contains(&(w[0], w[1])))
                .filter_map(|w| {
                    best_split(&series[w[0]..w[1]], self.min_segment)
                        .map(|(t, q)| ((w[0], w[1]), w[0] + t, q))
                })
                .max_by(|a, b| a.2.total_cmp(&b.2));
            let Some((seg, at, q)) = best else {
                break;
            };
            let p = self.p_value(&series[seg.0..seg.1], q, &mut rng);
            if p <= self.alpha {
                splits.push((at, p));
            } else {
                settled.push(seg);
            }
        }
        splits.sort_by_key(|s| s.0);
        let mut out = Vec::with_capacity(splits.len());
        for (k, &(at, p)) in splits.iter().enumerate() {
            let from = if k == 0 { 0 } else { splits[k - 1].0 };
            let to = splits.get(k + 1).map_or(series.len(), |s| s.0);
            let (a, b) = (&series[from..at], &series[at..to]);
            let (before, after) = (median(a), median(b));
            let change = ratio(after, before);
            let (change_low, change_high) = self.interval(a, b, &mut rng);
            out.push(ChangePoint {
                index: at,
                before,
                after,
                change,
                change_low,
                change_high,
                p_value: p,
                runs_before: a.len(),
                runs_after: b.len(),
                reported: change.abs() >= self.min_magnitude,
            });
        }
        out
    }

    /// A 95% percentile-bootstrap interval of `median(b) / median(a) - 1`.
    fn interval(&self, a: &[f64], b: &[f64], rng: &mut ChaCha8Rng) -> (f64, f64) {
        use rand::Rng;
        const RESAMPLES: usize = 1000;
        let mut changes = Vec::with_capacity(RESAMPLES);
        let mut ra = vec![0.0; a.len()];
        let mut rb = vec![0.0; b.len()];
        for _ in 0..RESAMPLES {
            for v in ra.iter_mut() {
                *v = a[rng.random_range(0..a.len())];
            }
            for v in rb.iter_mut() {
                *v = b[rng.random_range(0..b.len())];
            }
            changes.push(ratio(median(&rb), median(&ra)));
        }
        changes.sort_by(f64::total_cmp);
        let at = |q: f64| changes[((RESAMPLES - 1) as f64 * q).round() as usize];
        (at(0.025), at(0.975))
    }
}

fn ratio(after: f64, before: f64) -> f64 {
    if before == 0.0 {
        if after == 0.0 { 0.0 } else { f64::INFINITY }
    } else {
        after / before - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// A series of `n` runs around 100 with relative noise `noise` (normal), stepping by `step`
    /// at `at` and drifting by `drift` over the whole series.
    fn series(seed: u64, n: usize, noise: f64, step: f64, at: usize, drift: f64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                // Box–Muller.
                let (u1, u2): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                let level = if i >= at { 1.0 + step } else { 1.0 };
                100.0 * level * (1.0 + drift * i as f64 / n as f64) * (1.0 + noise * z)
            })
            .collect()
    }

    /// Over `seeds` series: the share with a reported change point within `tolerance` runs of
    /// `at`, and the share with a reported change point elsewhere.
    fn rates(
        seeds: u64,
        f: impl Fn(u64) -> Vec<f64>,
        at: Option<usize>,
        tolerance: usize,
    ) -> (f64, f64) {
        let d = Detector::default();
        let (mut hit, mut false_alarm) = (0, 0);
        for s in 0..seeds {
            let cps: Vec<ChangePoint> =
                d.detect(&f(s)).into_iter().filter(|c| c.reported).collect();
            let near = |c: &ChangePoint| at.is_some_and(|a| c.index.abs_diff(a) <= tolerance);
            if cps.iter().any(near) {
                hit += 1;
            }
            if cps.iter().any(|c| !near(c)) {
                false_alarm += 1;
            }
        }
        (hit as f64 / seeds as f64, false_alarm as f64 / seeds as f64)
    }

    #[test]
    fn a_clean_step_is_found_where_it_is_with_its_size() {
        let x: Vec<f64> = (0..30)
            .map(|i| if i < 20 { 100.0 } else { 110.0 })
            .collect();
        let cps = Detector::default().detect(&x);
        assert_eq!(cps.len(), 1, "{cps:?}");
        let c = &cps[0];
        assert_eq!(c.index, 20);
        assert!((c.change - 0.10).abs() < 1e-12, "{c:?}");
        assert!(c.reported && c.p_value <= 0.01);
        assert_eq!((c.runs_before, c.runs_after), (20, 10));
    }

    #[test]
    fn the_statistic_matches_its_definition() {
        // q(t) computed from the definition, pair by pair, against the prefix-sum version.
        let x = series(7, 17, 0.05, 0.2, 9, 0.0);
        let q = q_values(&x, 2);
        for t in 2..=15 {
            let (a, b) = (&x[..t], &x[t..]);
            let mean = |u: &[f64], v: &[f64]| {
                let mut s = 0.0;
                for p in u {
                    for r in v {
                        s += (p - r).abs();
                    }
                }
                s / (u.len() * v.len()) as f64
            };
            // Within a side: the mean over distinct pairs (self-pairs are 0 and excluded).
            let within = |u: &[f64]| {
                let n = u.len() as f64;
                if n < 2.0 {
                    0.0
                } else {
                    mean(u, u) * n * n / (n * (n - 1.0))
                }
            };
            let (n1, n2) = (a.len() as f64, b.len() as f64);
            let want = n1 * n2 / (n1 + n2) * (2.0 * mean(a, b) - within(a) - within(b));
            assert!(
                (q[t] - want).abs() < 1e-9 * want.abs().max(1.0),
                "t={t}: {} vs {want}",
                q[t]
            );
        }
    }

    #[test]
    fn detection_and_false_alarm_rates_on_synthetic_series() {
        // 40 runs, the step at run 30 (ten runs after it, as a dashboard sees a recent change).
        let seeds = 100;
        let (n, at) = (40, 30);
        let step5 = rates(seeds, |s| series(s, n, 0.03, 0.05, at, 0.0), Some(at), 2);
        let step2 = rates(
            seeds,
            |s| series(1000 + s, n, 0.003, 0.02, at, 0.0),
            Some(at),
            1,
        );
        let noise = rates(seeds, |s| series(2000 + s, n, 0.03, 0.0, n, 0.0), None, 0);
        let drift = rates(seeds, |s| series(3000 + s, n, 0.01, 0.0, n, 0.05), None, 0);
        // What `history check --last 5` sees in pure noise: a reported rise among the last 5.
        let d = Detector::default();
        let check_alarms = (0..seeds)
            .filter(|&s| {
                d.detect(&series(2000 + s, n, 0.03, 0.0, n, 0.0))
                    .iter()
                    .any(|c| c.reported && c.change > 0.0 && n - c.index <= 5)
            })
            .count() as f64
            / seeds as f64;
        println!(
            "| series (40 runs, {seeds} seeds; alpha {}, {} permutations, min change {:.0}%) | found at the step (±2; ±1) | other change points reported |",
            d.alpha,
            d.permutations,
            d.min_magnitude * 100.0
        );
        println!("|---|---:|---:|");
        let pct = |v: f64| format!("{:.0}%", v * 100.0);
        println!(
            "| +5% step at run 30 in 3% noise | {} | {} |",
            pct(step5.0),
            pct(step5.1)
        );
        println!(
            "| +2% step at run 30 in 0.3% noise | {} | {} |",
            pct(step2.0),
            pct(step2.1)
        );
        println!(
            "| pure 3% noise | — | {} (a rise among the last 5 runs: {}) |",
            pct(noise.1),
            pct(check_alarms)
        );
        println!(
            "| +5% drift over 40 runs in 1% noise | — | {} (a drift is a change) |",
            pct(drift.1)
        );
        // Seeded series: these are the measured rates (67%, 100%, 2%, 0%), with room for a
        // change of the generator.
        assert!(step5.0 >= 0.60, "+5% in 3% noise found in {}", pct(step5.0));
        assert!(
            step2.0 >= 0.98,
            "+2% in 0.3% noise found in {}",
            pct(step2.0)
        );
        assert!(noise.1 <= 0.05, "pure noise: {} false alarms", pct(noise.1));
        assert!(
            check_alarms <= 0.02,
            "history check on pure noise: {}",
            pct(check_alarms)
        );
        assert!(step5.1 <= 0.20 && step2.1 <= 0.02, "{step5:?} {step2:?}");
        assert!(
            drift.1 >= 0.90,
            "a 5% drift in 1% noise found in {}",
            pct(drift.1)
        );
    }

    #[test]
    fn the_same_series_gives_the_same_answer() {
        let x = series(5, 40, 0.03, 0.05, 30, 0.0);
        let d = Detector::default();
        assert_eq!(d.detect(&x), d.detect(&x));
    }

    #[test]
    fn short_series_and_constant_series_have_no_change_point() {
        let d = Detector::default();
        assert!(d.detect(&[]).is_empty());
        assert!(d.detect(&[1.0, 2.0, 3.0]).is_empty());
        assert!(d.detect(&[5.0; 30]).is_empty());
    }
}
