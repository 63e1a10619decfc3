use super::*;

#[test]
fn mann_whitney_matches_known_exact_values() {
    // Complete separation of 5 vs 5: p = 2 / C(10, 5) = 2/252.
    let a = [1.0, 2.0, 3.0, 4.0, 5.0];
    let b = [6.0, 7.0, 8.0, 9.0, 10.0];
    assert!((mann_whitney(&a, &b) - 2.0 / 252.0).abs() < 1e-12);
    // Identical samples: p = 1.
    assert!((mann_whitney(&a, &a) - 1.0).abs() < 1e-12);
    // 3 vs 3 complete separation: 2/20.
    assert!((mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]) - 0.1).abs() < 1e-12);
    // Large samples take the sampled path and still find a clear shift.
    let a: Vec<f64> = (0..40).map(|i| i as f64).collect();
    let b: Vec<f64> = (0..40).map(|i| i as f64 + 30.0).collect();
    assert!(mann_whitney(&a, &b) < 0.001);
}

#[test]
fn detectable_grows_with_the_spread_and_shrinks_with_the_samples() {
    let gates = Gates {
        noise: 0.02,
        min_delta_ms: 0.0,
        ..Gates::default()
    };
    // Pairs whose log ratios spread by ±10% around 0.
    let pairs = |n: usize, spread: f64| -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| {
                let x = if i % 2 == 0 { spread } else { -spread };
                (1000.0, 1000.0 * (x * (1.0 + i as f64 / n as f64)).exp())
            })
            .collect()
    };
    let d = |n, s| {
        compare_paired("time_to_ready", &pairs(n, s), &gates)
            .detectable
            .expect("enough pairs")
    };
    // Identical pairs: nothing but the noise threshold.
    let same: Vec<(f64, f64)> = vec![(1000.0, 1000.0); 10];
    let m = compare_paired("time_to_ready", &same, &gates);
    assert!((m.detectable.unwrap() - 0.02).abs() < 1e-12);
    assert!(d(10, 0.10) > d(10, 0.03));
    assert!(d(40, 0.10) < d(10, 0.10));
    // 12–24% per pair with 10 pairs: a 12% change cannot be told from noise.
    let ten = d(10, 0.12);
    assert!(ten > 0.12 && ten < 0.5, "{ten}");
    // Too few pairs for the rank test to reach alpha: nothing is detectable.
    assert_eq!(
        compare_paired("time_to_ready", &pairs(4, 0.1), &gates).detectable,
        None
    );
    // Independent groups: the pooled spread of each side.
    let a = [100.0, 110.0, 90.0, 105.0, 95.0, 100.0];
    let g = compare_metric("time_to_ready", &a, &a, &gates);
    assert!(g.detectable.unwrap() > 0.1, "{:?}", g.detectable);
}

#[test]
fn work_metrics_gate_on_their_own_spread_with_a_floor() {
    let gates = Gates::default();
    // Five boots' counts 0.01% apart, as the work meter gives them.
    let base = [5.0602e9, 5.0607e9, 5.0604e9, 5.0601e9, 5.0605e9];
    let scaled = |f: f64| base.map(|x| x * f);
    let m = compare_metric("work.time_to_ready", &base, &scaled(1.0), &gates);
    assert_eq!(m.verdict, Verdict::NoChange);
    assert!(m.noise_threshold >= WORK_NOISE_FLOOR && m.noise_threshold < 0.01);
    // +1% is far beyond 4 × a 0.005% spread: called, however few the boots.
    let m = compare_metric("work.time_to_ready", &base, &scaled(1.01), &gates);
    assert_eq!(m.verdict, Verdict::Regressed, "{m:?}");
    assert!(m.detectable.unwrap() < 0.005, "{:?}", m.detectable);
    // +0.05%: significant by rank, but under the floor.
    let m = compare_metric("work.time_to_ready", &base, &scaled(1.0005), &gates);
    assert_eq!(m.verdict, Verdict::NoChange, "{m:?}");
    // A spread of ±1% raises the threshold above a +2% change.
    let wide = [5.0e9, 5.1e9, 4.95e9, 5.05e9, 4.9e9];
    let m = compare_metric("work.time_to_ready", &wide, &wide.map(|x| x * 1.02), &gates);
    assert!(m.noise_threshold > 0.02, "{m:?}");
    assert_ne!(m.verdict, Verdict::Regressed);
}

#[test]
fn signed_rank_matches_known_exact_values() {
    // All 5 differences positive: p = 2 / 2^5.
    assert!((signed_rank(&[1.0, 2.0, 3.0, 4.0, 5.0]) - 2.0 / 32.0).abs() < 1e-12);
    // Symmetric: p = 1.
    assert!((signed_rank(&[-1.0, 1.0]) - 1.0).abs() < 1e-12);
    // n = 10, one negative of rank 1: W+ = 54 of 55; P(W+ >= 54 or <= 1) = 4/1024.
    let d = [-0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
    assert!((signed_rank(&d) - 4.0 / 1024.0).abs() < 1e-12);
}

#[test]
fn pairs_see_through_a_drift_that_groups_cannot() {
    // The machine slows down by 40% over the run; the head is 5% slower in every pair.
    let pairs: Vec<(f64, f64)> = (0..10)
        .map(|i| {
            let drift = 1.0 + 0.04 * i as f64;
            (2000.0 * drift, 2100.0 * drift)
        })
        .collect();
    let g = Gates {
        noise: 0.02,
        ..Gates::default()
    };
    let paired = compare_paired("time_to_ready", &pairs, &g);
    assert_eq!(paired.verdict, Verdict::Regressed, "{paired:?}");
    assert!((paired.ratio - 1.05).abs() < 1e-9);
    assert_eq!(paired.pairs, 10);
    let (a, b): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
    let groups = compare_metric("time_to_ready", &a, &b, &g);
    assert_eq!(groups.verdict, Verdict::NoChange, "{groups:?}");
}

#[test]
fn a_comparison_with_undefined_ratios_round_trips_through_json() {
    let m = compare_metric("time_to_ready", &[1.0], &[2.0], &Gates::default());
    assert!(m.ratio_low.is_nan());
    let json = serde_json::to_string(&m).unwrap();
    let back: MetricComparison = serde_json::from_str(&json).unwrap();
    assert!(back.ratio_low.is_nan() && back.verdict == Verdict::NotEnoughSamples);
}

#[test]
fn ties_get_mid_ranks() {
    assert_eq!(ranks(&[5.0, 1.0, 5.0, 3.0]), vec![3.5, 1.0, 3.5, 2.0]);
}

#[test]
fn gates_need_significance_and_size() {
    let g = Gates::default();
    let base = [100.0, 101.0, 99.0, 100.5, 99.5, 100.2];
    // +40%: regressed.
    let slow: Vec<f64> = base.iter().map(|x| x * 1.4).collect();
    let m = compare_metric("phase.db_prepare", &base, &slow, &g);
    assert_eq!(m.verdict, Verdict::Regressed, "{m:?}");
    assert!(m.ratio_low > 1.3 && m.ratio_high < 1.5, "{m:?}");
    // +1%: significant but within the noise threshold.
    let drift: Vec<f64> = base.iter().map(|x| x * 1.01 + 0.5).collect();
    assert_eq!(
        compare_metric("t", &base, &drift, &g).verdict,
        Verdict::NoChange
    );
    // −30%: improved.
    let fast: Vec<f64> = base.iter().map(|x| x * 0.7).collect();
    assert_eq!(
        compare_metric("t", &base, &fast, &g).verdict,
        Verdict::Improved
    );
    // 3 vs 3 can never be significant at 0.05.
    let m = compare_metric("t", &base[..3], &slow[..3], &g);
    assert_eq!(m.verdict, Verdict::NotEnoughSamples);
    assert!((m.min_p - 0.1).abs() < 1e-12);
    // 4 → 6 ms is +50% but within the stamps' resolution.
    let tiny = [4.0, 4.0, 4.0, 4.0, 4.0];
    let tiny2 = [5.0, 5.0, 5.0, 5.0, 5.0];
    assert_eq!(
        compare_metric("phase.x", &tiny, &tiny2, &g).verdict,
        Verdict::NoChange
    );
    // A per-metric threshold can make a 40% change noise.
    let mut loose = Gates::default();
    loose.noise_by_metric.insert("phase.db_prepare".into(), 0.5);
    assert_eq!(
        compare_metric("phase.db_prepare", &base, &slow, &loose).verdict,
        Verdict::NoChange
    );
}

#[test]
fn small_time_changes_need_the_minimum_delta() {
    // The CI case: 12 → 16 ms on every boot, p ≈ 0.002, +33% — but 4 ms.
    let a = [12.0, 12.0, 11.0, 13.0, 12.0, 12.0];
    let b = [16.0, 15.0, 16.0, 17.0, 16.0, 16.0];
    let g = Gates::default();
    let m = compare_metric("phase.stores_start", &a, &b, &g);
    assert!(m.p_value.unwrap() < 0.01 && m.ratio_low > 1.05, "{m:?}");
    assert_eq!(m.verdict, Verdict::NoChange, "{m:?}");
    assert_eq!(m.min_delta, DEFAULT_MIN_DELTA_MS);
    // With the floor at 0 the resolution still applies (2 ms), and 4 ms passes it.
    let strict = Gates {
        min_delta_ms: 0.0,
        ..Gates::default()
    };
    let m = compare_metric("phase.stores_start", &a, &b, &strict);
    assert_eq!(m.verdict, Verdict::Regressed, "{m:?}");
    assert_eq!(m.min_delta, RESOLUTION_MS);
    // Bytes and seconds figures have no floor.
    let m = compare_metric("peak_rss", &a, &b, &g);
    assert_eq!((m.verdict, m.min_delta), (Verdict::Regressed, 0.0));
}

#[test]
fn a_whole_run_shift_is_named() {
    let m = |metric: &str, ratio: f64| {
        let a = [100.0, 101.0, 99.0, 100.5, 99.5, 100.2];
        let b: Vec<f64> = a.iter().map(|x| x * ratio).collect();
        compare_metric(metric, &a, &b, &Gates::default())
    };
    let shifted: Vec<_> = [
        "phase.a",
        "phase.b",
        "phase.c",
        "milestone.port_open",
        "shutdown",
    ]
    .iter()
    .map(|k| m(k, 1.14))
    .collect();
    let w = whole_run_shift(&shifted, 0.05).unwrap();
    assert!(w.contains("+14.0%") && w.contains("slower"), "{w}");
    // One phase regressing is not a shift.
    let mut one = vec![m("phase.a", 1.5)];
    one.extend(["phase.b", "phase.c", "shutdown", "time_to_ready"].map(|k| m(k, 1.0)));
    assert_eq!(whole_run_shift(&one, 0.05), None);
    // Mixed directions are not a shift.
    let mixed: Vec<_> = [1.2, 0.8, 1.2, 0.8, 1.2]
        .iter()
        .enumerate()
        .map(|(i, r)| m(&format!("phase.{i}"), *r))
        .collect();
    assert_eq!(whole_run_shift(&mixed, 0.05), None);
}
