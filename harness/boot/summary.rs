//! Summaries over repeated boots: median, min, max and mean of every phase and milestone.
//! Samples are never dropped; a phase missing from some boots says in how many it was missing.

use crate::boot::BootRecord;

/// Order statistics of a set of samples.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    schemars::JsonSchema,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Stat {
    pub n: u32,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Distribution-free confidence interval of the median: order statistics `x(j)..x(k)`
    /// chosen from the binomial(n, ½) law, the narrowest whose coverage is at least 95%.
    pub median_ci_low: f64,
    pub median_ci_high: f64,
    /// The coverage that interval really has (below 0.95 when n < 6: with so few samples the
    /// widest interval, min..max, is all there is).
    pub median_ci_level: f64,
}

/// P(X ≤ k) for X ~ Binomial(n, ½).
fn binom_half_cdf(n: u32, k: i64) -> f64 {
    if k < 0 {
        return 0.0;
    }
    let mut c = 1.0f64; // C(n, 0)
    let mut sum = 0.0;
    for i in 0..=(k.min(n as i64) as u32) {
        if i > 0 {
            c = c * f64::from(n - i + 1) / f64::from(i);
        }
        sum += c;
    }
    sum / 2f64.powi(n as i32)
}

/// 0-based indices (j, k) of the order statistics bounding the median's CI, and its coverage.
pub fn median_ci_indices(n: u32) -> (usize, usize, f64) {
    // [x(j), x(n-1-j)] (0-based) covers the median with probability 1 - 2·P(X ≤ j).
    let mut best = 0u32;
    let mut level = 1.0 - 2.0 * binom_half_cdf(n, 0);
    for j in 1..n / 2 {
        let l = 1.0 - 2.0 * binom_half_cdf(n, i64::from(j));
        if l < 0.95 {
            break;
        }
        (best, level) = (j, l);
    }
    (best as usize, (n - 1 - best) as usize, level)
}

impl Stat {
    /// `None` for no samples.
    pub fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        let (j, k, level) = median_ci_indices(n as u32);
        Some(Self {
            n: n as u32,
            median,
            min: v[0],
            max: v[n - 1],
            mean: v.iter().sum::<f64>() / n as f64,
            median_ci_low: v[j],
            median_ci_high: v[k],
            median_ci_level: level,
        })
    }
}

/// Modified z-scores (Iglewicz and Hoaglin): `0.6745·(x − median) / MAD`. `None` when the MAD
/// is zero (more than half the samples equal), where no score is defined.
pub fn modified_z_scores(samples: &[f64]) -> Option<Vec<f64>> {
    let median = Stat::of(samples)?.median;
    let dev: Vec<f64> = samples.iter().map(|x| (x - median).abs()).collect();
    let mad = Stat::of(&dev)?.median;
    if mad == 0.0 {
        return None;
    }
    Some(
        samples
            .iter()
            .map(|x| 0.6745 * (x - median) / mad)
            .collect(),
    )
}

/// Samples further than this (in modified z) from the median are reported as outliers.
pub const OUTLIER_Z: f64 = 3.5;

/// Fewer boots than this are never searched for outliers: with 3 or 4 values the MAD is the
/// distance to one or two neighbours and the modified z-score explodes on any difference.
pub const MIN_OUTLIER_BOOTS: usize = 5;

/// A MAD below this (ms) is the timestamps' resolution (log lines and probes stamp to the
/// millisecond), not a spread: no score is computed from it.
pub const OUTLIER_RESOLUTION_MS: f64 = 1.0;

/// Why a set of boots was not searched for outliers, if it was not.
pub fn outliers_unchecked(boots: usize) -> Option<String> {
    (boots < MIN_OUTLIER_BOOTS).then(|| {
        format!(
            "outliers not checked: {boots} boot{}, a modified z-score needs {MIN_OUTLIER_BOOTS} or more",
            if boots == 1 { "" } else { "s" }
        )
    })
}

/// A sample that stands out from the others: reported, never dropped.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct OutlierWarning {
    /// The phase or metric.
    pub metric: String,
    /// The boot it came from.
    pub boot: String,
    pub value: f64,
    pub median: f64,
    pub modified_z: f64,
    pub advice: String,
}

fn outliers(metric: &str, labels: &[String], values: &[Option<f64>]) -> Vec<OutlierWarning> {
    let present: Vec<(usize, f64)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .collect();
    let xs: Vec<f64> = present.iter().map(|p| p.1).collect();
    if xs.len() < MIN_OUTLIER_BOOTS {
        return Vec::new();
    }
    let (Some(z), Some(stat)) = (modified_z_scores(&xs), Stat::of(&xs)) else {
        return Vec::new();
    };
    let mad = Stat::of(
        &xs.iter()
            .map(|x| (x - stat.median).abs())
            .collect::<Vec<_>>(),
    )
    .map_or(0.0, |s| s.median);
    if mad < OUTLIER_RESOLUTION_MS {
        return Vec::new();
    }
    present
        .iter()
        .zip(z)
        .filter(|(_, z)| z.abs() > OUTLIER_Z)
        .map(|((i, v), z)| OutlierWarning {
            metric: metric.to_string(),
            boot: labels[*i].clone(),
            value: *v,
            median: stat.median,
            modified_z: z,
            advice: if labels[*i].ends_with("-1") && z > 0.0 {
                "the first boot is slower: caches were cold; add warm-up boots or report cold \
                 boots separately"
                    .into()
            } else {
                "another process may have competed for the machine; repeat the run on a quiet \
                 machine or with more repeats"
                    .into()
            },
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct NamedStat {
    pub name: String,
    /// Milliseconds (or the unit the field name says).
    pub stat: Option<Stat>,
    /// Boots in which this was not observed.
    pub missing_in: u32,
}

#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct BootSummary {
    pub boots: u32,
    pub time_to_ready_ms: Option<Stat>,
    pub shutdown_ms: NamedStat,
    pub phases: Vec<NamedStat>,
    /// Points (markers and milestones) in ms since spawn, ordered by median time.
    pub points: Vec<NamedStat>,
    pub peak_rss_bytes: Option<Stat>,
    pub cpu_seconds_to_ready: Option<Stat>,
    pub read_bytes_to_ready: Option<Stat>,
    /// Boots whose phase or time to ready stands out (modified z-score above 3.5).
    pub outliers: Vec<OutlierWarning>,
    /// What each phase used, over the boots.
    #[serde(default)]
    pub phase_resources: Vec<PhaseResourceStat>,
    /// Spawn until the start-up background work finished (`[boot] background`), over the boots
    /// that waited; `missing_in` counts those where it did not finish within the limit.
    #[serde(default)]
    pub background_done_ms: Option<NamedStat>,
    /// Durations the server reported itself, by marker ([`BootRecord::server_reported_ms`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_reported_ms: Vec<NamedStat>,
}

/// Resources used during one phase, over the boots.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct PhaseResourceStat {
    pub name: String,
    pub cpu_s: Option<Stat>,
    pub read_bytes: Option<Stat>,
    pub write_bytes: Option<Stat>,
    pub peak_rss_bytes: Option<Stat>,
}

fn named(name: &str, values: impl Iterator<Item = Option<f64>>) -> NamedStat {
    let all: Vec<Option<f64>> = values.collect();
    let present: Vec<f64> = all.iter().flatten().copied().collect();
    NamedStat {
        name: name.to_string(),
        stat: Stat::of(&present),
        missing_in: (all.len() - present.len()) as u32,
    }
}

pub fn summarize_boots(boots: &[BootRecord]) -> BootSummary {
    let phase_names: Vec<String> = boots
        .first()
        .map(|b| b.phases.iter().map(|p| p.name.clone()).collect())
        .unwrap_or_default();
    let phases = phase_names
        .iter()
        .map(|name| {
            named(
                name,
                boots.iter().map(|b| {
                    b.phases
                        .iter()
                        .find(|p| &p.name == name)
                        .and_then(|p| p.duration_ms)
                }),
            )
        })
        .collect();
    let mut point_names: Vec<String> = boots
        .iter()
        .flat_map(|b| b.points.keys().cloned())
        .collect();
    point_names.sort();
    point_names.dedup();
    let mut points: Vec<NamedStat> = point_names
        .iter()
        .map(|name| named(name, boots.iter().map(|b| b.points.get(name).copied())))
        .collect();
    points.sort_by(|a, b| {
        let m = |s: &NamedStat| s.stat.map_or(f64::MAX, |s| s.median);
        m(a).total_cmp(&m(b))
    });
    let labels: Vec<String> = boots.iter().map(|b| b.label.clone()).collect();
    let mut warnings = outliers(
        "time_to_ready",
        &labels,
        &boots
            .iter()
            .map(|b| Some(b.time_to_ready_ms))
            .collect::<Vec<_>>(),
    );
    for name in &phase_names {
        let values: Vec<Option<f64>> = boots
            .iter()
            .map(|b| {
                b.phases
                    .iter()
                    .find(|p| &p.name == name)
                    .and_then(|p| p.duration_ms)
            })
            .collect();
        warnings.extend(outliers(name, &labels, &values));
    }
    let col = |f: &dyn Fn(&BootRecord) -> f64| Stat::of(&boots.iter().map(f).collect::<Vec<_>>());
    let mut reported: Vec<&str> = boots
        .iter()
        .flat_map(|b| b.server_reported_ms.keys().map(String::as_str))
        .collect();
    reported.sort_unstable();
    reported.dedup();
    let server_reported_ms = reported
        .iter()
        .map(|m| {
            named(
                m,
                boots.iter().map(|b| b.server_reported_ms.get(*m).copied()),
            )
        })
        .collect();
    BootSummary {
        server_reported_ms,
        boots: boots.len() as u32,
        time_to_ready_ms: col(&|b| b.time_to_ready_ms),
        shutdown_ms: named("shutdown", boots.iter().map(|b| b.shutdown_ms)),
        background_done_ms: boots.iter().any(|b| b.background.is_some()).then(|| {
            named(
                "background_done",
                boots
                    .iter()
                    .filter_map(|b| b.background.as_ref())
                    .map(|bg| bg.at_ms),
            )
        }),
        phases,
        points,
        peak_rss_bytes: col(&|b| b.resources_total.peak_rss_bytes as f64),
        cpu_seconds_to_ready: col(&|b| {
            b.resources_to_ready.cpu_user_s + b.resources_to_ready.cpu_sys_s
        }),
        read_bytes_to_ready: col(&|b| b.resources_to_ready.read_bytes as f64),
        outliers: warnings,
        phase_resources: phase_names
            .iter()
            .map(|name| {
                let of = |f: &dyn Fn(&crate::metrics::WindowResources) -> f64| {
                    let v: Vec<f64> = boots
                        .iter()
                        .filter_map(|b| b.phases.iter().find(|p| &p.name == name))
                        .filter_map(|p| p.resources.as_ref().map(f))
                        .collect();
                    Stat::of(&v)
                };
                PhaseResourceStat {
                    name: name.clone(),
                    cpu_s: of(&|r| r.cpu_s),
                    read_bytes: of(&|r| r.read_bytes as f64),
                    write_bytes: of(&|r| r.write_bytes as f64),
                    peak_rss_bytes: of(&|r| r.peak_rss_bytes as f64),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_median_even_and_odd() {
        let s = Stat::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.mean), (2.0, 1.0, 3.0, 2.0));
        let s = Stat::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(Stat::of(&[]).is_none());
    }

    #[test]
    fn median_ci_from_order_statistics() {
        // n = 5: only min..max, coverage 1 - 2/32 = 0.9375.
        let (j, k, level) = median_ci_indices(5);
        assert_eq!((j, k), (0, 4));
        assert!((level - 0.9375).abs() < 1e-12);
        // n = 10: x(2)..x(9) (1-based), coverage 1 - 2·P(X≤1) = 0.9785.
        let (j, k, level) = median_ci_indices(10);
        assert_eq!((j, k), (1, 8));
        assert!((level - 0.978515625).abs() < 1e-9, "{level}");
        // n = 20: x(6)..x(15), coverage 0.9586.
        let (j, k, level) = median_ci_indices(20);
        assert_eq!((j, k), (5, 14));
        assert!((level - 0.9586105).abs() < 1e-6, "{level}");
        let s = Stat::of(&(1..=20).map(f64::from).collect::<Vec<_>>()).unwrap();
        assert_eq!((s.median_ci_low, s.median_ci_high), (6.0, 15.0));
    }

    #[test]
    fn outliers_by_modified_z_are_reported_not_dropped() {
        let z = modified_z_scores(&[10.0, 11.0, 9.0, 10.0, 30.0]).unwrap();
        // median 10, MAD 1: the 30 scores 0.6745·20 = 13.49.
        assert!((z[4] - 13.49).abs() < 1e-9, "{z:?}");
        assert!(z[..4].iter().all(|z| z.abs() < 1.0));
        assert!(modified_z_scores(&[5.0, 5.0, 5.0, 9.0]).is_none(), "MAD 0");
        let labels: Vec<String> = (1..=5).map(|i| format!("boot-{i}")).collect();
        let w = outliers(
            "db_prepare",
            &labels,
            &[Some(10.0), Some(11.0), Some(9.0), Some(10.0), Some(30.0)],
        );
        assert_eq!(w.len(), 1);
        assert_eq!((w[0].boot.as_str(), w[0].value), ("boot-5", 30.0));
        let w = outliers(
            "x",
            &labels,
            &[Some(30.0), Some(11.0), Some(9.0), Some(10.0), Some(10.0)],
        );
        assert!(w[0].advice.contains("cold"), "{w:?}");
        // Three boots: a modified z-score means nothing, whatever the values.
        assert!(outliers("x", &labels[..3], &[Some(90.0), Some(90.1), Some(73.0)]).is_empty());
        assert!(outliers_unchecked(3).unwrap().contains("3 boots"));
        assert_eq!(outliers_unchecked(5), None);
        // A spread at the clock's resolution (MAD 0.1 ms) is no spread.
        let w = outliers(
            "http_ready",
            &labels,
            &[Some(90.0), Some(90.1), Some(89.9), Some(90.0), Some(73.0)],
        );
        assert!(w.is_empty(), "{w:?}");
    }
}
