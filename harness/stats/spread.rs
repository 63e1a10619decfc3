//! Spread of a sample and the change it lets a comparison detect.

/// The power a comparison's `detectable` change is worked out for: the change it would call
/// in 95% of repeats.
pub const DETECTION_POWER: f64 = 0.95;

/// The median (NaN for an empty sample).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// 1.4826 × the median absolute deviation: the standard deviation of a normal sample, robust
/// to the odd outlier a boot can be.
pub fn robust_sd(v: &[f64]) -> f64 {
    let m = median(v);
    let dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    1.4826 * median(&dev)
}

/// The multiple of a log ratio's standard error a change must reach to be called, by a
/// two-sided test at `alpha`, in a share `power` of repeats: t(1 − α/2) + t(power) with `df`
/// degrees of freedom.
pub fn detection_factor(alpha: f64, power: f64, df: f64) -> f64 {
    super::dist::student_t_quantile(1.0 - alpha / 2.0, df)
        + super::dist::student_t_quantile(power, df)
}

/// The smallest change (as a share, on the log scale) that `n` paired samples whose log ratios
/// spread by `sd` detect at `alpha` with `power`; infinite below two pairs.
pub fn detectable_paired(sd: f64, n: usize, alpha: f64, power: f64) -> f64 {
    if n < 2 {
        return f64::INFINITY;
    }
    detection_factor(alpha, power, (n - 1) as f64) * sd / (n as f64).sqrt()
}

/// The fewest pairs (2 up to `limit`) with which [`detectable_paired`] reaches `share`; `None`
/// when even `limit` pairs do not.
pub fn pairs_to_detect(sd: f64, share: f64, alpha: f64, power: f64, limit: usize) -> Option<usize> {
    (2..=limit).find(|&n| detectable_paired(sd, n, alpha, power) <= share)
}

/// Standard deviation over mean.
pub fn cv(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    if v.len() < 2 {
        return 0.0;
    }
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    var.sqrt() / mean
}

/// Pearson's correlation (None when either side is constant or too short).
pub fn correlation(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len().min(b.len());
    if n < 3 {
        return None;
    }
    let (a, b) = (&a[..n], &b[..n]);
    let ma = a.iter().sum::<f64>() / n as f64;
    let mb = b.iter().sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_robust_sd() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        // Deviations from 3: 2, 1, 0, 1, 97 → median 1.
        assert!((robust_sd(&[1.0, 2.0, 3.0, 4.0, 100.0]) - 1.4826).abs() < 1e-12);
        assert_eq!(robust_sd(&[5.0; 4]), 0.0);
    }

    #[test]
    fn detectable_shrinks_with_pairs_and_grows_with_spread() {
        // 10 pairs, 9 df: t(0.975) = 2.262, t(0.95) ≈ 1.833.
        let d = detectable_paired(0.1, 10, 0.05, 0.95);
        assert!(
            (d - (2.262 + 1.833) * 0.1 / 10f64.sqrt()).abs() < 0.002,
            "{d}"
        );
        assert!(detectable_paired(0.1, 20, 0.05, 0.95) < d);
        assert!(detectable_paired(0.2, 10, 0.05, 0.95) > d);
        assert_eq!(detectable_paired(0.1, 1, 0.05, 0.95), f64::INFINITY);
        assert_eq!(detectable_paired(0.0, 2, 0.05, 0.95), 0.0);
    }

    #[test]
    fn pairs_to_detect_is_the_first_that_reaches() {
        let n = pairs_to_detect(0.1, 0.05, 0.05, 0.95, 10_000).unwrap();
        assert!(detectable_paired(0.1, n, 0.05, 0.95) <= 0.05);
        assert!(detectable_paired(0.1, n - 1, 0.05, 0.95) > 0.05);
        assert_eq!(pairs_to_detect(0.0, 0.05, 0.05, 0.95, 100), Some(2));
        assert_eq!(pairs_to_detect(1.0, 0.01, 0.05, 0.95, 100), None);
    }

    #[test]
    fn correlation_of_alike_and_opposite_series() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((correlation(&a, &[2.0, 4.0, 6.0, 8.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((correlation(&a, &[4.0, 3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(correlation(&a, &[1.0; 4]), None);
    }

    #[test]
    fn cv_is_the_sample_sd_over_the_mean() {
        assert_eq!(cv(&[2.0; 5]), 0.0);
        assert_eq!(cv(&[1.0]), 0.0);
        // mean 2, sample variance 1.
        assert!((cv(&[1.0, 2.0, 3.0]) - 0.5).abs() < 1e-12);
    }
}
