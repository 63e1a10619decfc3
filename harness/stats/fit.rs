//! Power-law fits `t = a · n^b` by least squares on log–log data, with a confidence interval
//! for the exponent and prediction intervals for extrapolation.
//!
//! On logs the model is a straight line, `ln t = ln a + b · ln n`, and ordinary least squares
//! gives `b`, its standard error `s / √Sxx` and a Student-t interval with n − 2 degrees of
//! freedom. Multiplicative noise (what timings have) is additive on logs, which is why the fit
//! is done there. A phase is *super-linear* when the whole 95% interval of `b` lies above 1.

use crate::stats::dist::t975;

/// A fitted `t = a · n^b`.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct PowerFit {
    pub a: f64,
    pub b: f64,
    /// 95% confidence interval of `b`.
    pub b_low: f64,
    pub b_high: f64,
    /// Coefficient of determination on the logs.
    pub r2: f64,
    pub n: usize,
    /// The range of `n` the fit saw.
    pub x_min: f64,
    pub x_max: f64,
    /// Residual standard error on the logs, mean of ln n, and Σ(ln n − mean)².
    pub s: f64,
    pub mean_lx: f64,
    pub sxx: f64,
}

/// A value predicted by a fit, with its 95% prediction interval.
#[derive(
    Debug, Clone, Copy, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
pub struct Prediction {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

impl PowerFit {
    /// Least squares on `(ln x, ln y)`. Points with `x ≤ 0` or `y ≤ 0` can't be on a log
    /// scale and are left out; `None` with fewer than three usable points or one distinct `x`.
    pub fn fit(points: &[(f64, f64)]) -> Option<Self> {
        let pts: Vec<(f64, f64)> = points
            .iter()
            .filter(|(x, y)| *x > 0.0 && *y > 0.0 && x.is_finite() && y.is_finite())
            .map(|(x, y)| (x.ln(), y.ln()))
            .collect();
        let n = pts.len();
        if n < 3 {
            return None;
        }
        let mean_lx = pts.iter().map(|p| p.0).sum::<f64>() / n as f64;
        let mean_ly = pts.iter().map(|p| p.1).sum::<f64>() / n as f64;
        let sxx: f64 = pts.iter().map(|p| (p.0 - mean_lx).powi(2)).sum();
        if sxx <= 0.0 {
            return None;
        }
        let sxy: f64 = pts.iter().map(|p| (p.0 - mean_lx) * (p.1 - mean_ly)).sum();
        let b = sxy / sxx;
        let ln_a = mean_ly - b * mean_lx;
        let sse: f64 = pts.iter().map(|p| (p.1 - ln_a - b * p.0).powi(2)).sum();
        let sst: f64 = pts.iter().map(|p| (p.1 - mean_ly).powi(2)).sum();
        let s = (sse / (n - 2) as f64).sqrt();
        let half = t975(n - 2) * s / sxx.sqrt();
        let xs = points
            .iter()
            .filter(|(x, y)| *x > 0.0 && *y > 0.0)
            .map(|p| p.0);
        Some(Self {
            a: ln_a.exp(),
            b,
            b_low: b - half,
            b_high: b + half,
            r2: if sst > 0.0 { 1.0 - sse / sst } else { 1.0 },
            n,
            x_min: xs.clone().fold(f64::INFINITY, f64::min),
            x_max: xs.fold(0.0, f64::max),
            s,
            mean_lx,
            sxx,
        })
    }

    /// The whole 95% interval of the exponent lies above 1.
    pub fn superlinear(&self) -> bool {
        self.b_low > 1.0
    }

    /// The fitted value at `x` and a 95% prediction interval for a new measurement there
    /// (widens with the distance of ln x from the data's centre).
    pub fn predict(&self, x: f64) -> Prediction {
        let lx = x.ln();
        let centre = self.a.ln() + self.b * lx;
        let se =
            self.s * (1.0 + 1.0 / self.n as f64 + (lx - self.mean_lx).powi(2) / self.sxx).sqrt();
        let half = t975(self.n - 2) * se;
        Prediction {
            value: centre.exp(),
            low: (centre - half).exp(),
            high: (centre + half).exp(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn noiseless_power_laws_are_recovered_exactly() {
        for (a, b) in [(3.0, 1.0), (0.5, 2.0), (100.0, 0.0), (7.0, 1.37)] {
            let pts: Vec<(f64, f64)> = [1e3, 2e3, 5e3, 1e4, 1e5]
                .iter()
                .map(|&x: &f64| (x, a * x.powf(b)))
                .collect();
            let f = PowerFit::fit(&pts).unwrap();
            assert!((f.b - b).abs() < 1e-9, "{f:?}");
            assert!((f.a - a).abs() / a < 1e-6, "{f:?}");
            assert!((f.b_high - f.b_low).abs() < 1e-6, "{f:?}");
            assert!((f.r2 - 1.0).abs() < 1e-9 || b == 0.0);
            assert_eq!(f.superlinear(), b > 1.0);
            let p = f.predict(2e5);
            assert!((p.value / (a * 2e5f64.powf(b)) - 1.0).abs() < 1e-6);
        }
    }

    /// With 10% multiplicative noise, the 95% interval of b covers the true exponent in about
    /// 95% of repeated experiments, and a quadratic law is flagged as super-linear.
    #[test]
    fn noisy_fits_cover_the_true_exponent() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
        let xs = [1e3, 2e3, 4e3, 8e3, 16e3];
        let trials = 2000;
        let mut covered = 0;
        let mut flagged = 0;
        for _ in 0..trials {
            let pts: Vec<(f64, f64)> = xs
                .iter()
                .map(|&x: &f64| {
                    // Normal noise on the log by Box–Muller, sd 0.1.
                    let (u1, u2): (f64, f64) = (rng.random(), rng.random());
                    let z =
                        (-2.0 * (1.0 - u1).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                    (x, 2.0 * x * x * (0.1 * z).exp())
                })
                .collect();
            let f = PowerFit::fit(&pts).unwrap();
            if f.b_low <= 2.0 && 2.0 <= f.b_high {
                covered += 1;
            }
            if f.superlinear() {
                flagged += 1;
            }
        }
        let coverage = covered as f64 / trials as f64;
        assert!((0.93..=0.97).contains(&coverage), "coverage {coverage}");
        assert!(flagged as f64 / trials as f64 > 0.99, "{flagged}");
    }

    #[test]
    fn unusable_points_are_left_out() {
        assert!(PowerFit::fit(&[(1.0, 1.0), (2.0, 2.0)]).is_none());
        assert!(PowerFit::fit(&[(5.0, 1.0), (5.0, 2.0), (5.0, 3.0)]).is_none());
        let f = PowerFit::fit(&[(1.0, 1.0), (2.0, 2.0), (4.0, 0.0), (8.0, 8.0)]).unwrap();
        assert_eq!(f.n, 3);
        assert!((f.b - 1.0).abs() < 1e-9);
        assert!((t975(4) - 2.776).abs() < 1e-9 && t975(1000) == 1.96);
    }
}
