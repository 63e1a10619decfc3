//! Summaries over repeated boots: median, min, max and mean of every phase and milestone.
//! Samples are never dropped; a phase missing from some boots says in how many it was missing.

use crate::boot::BootRecord;

/// Order statistics of a set of samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stat {
    pub n: u32,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
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
        Some(Self {
            n: n as u32,
            median,
            min: v[0],
            max: v[n - 1],
            mean: v.iter().sum::<f64>() / n as f64,
        })
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NamedStat {
    pub name: String,
    /// Milliseconds (or the unit the field name says).
    pub stat: Option<Stat>,
    /// Boots in which this was not observed.
    pub missing_in: u32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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
    let col = |f: &dyn Fn(&BootRecord) -> f64| Stat::of(&boots.iter().map(f).collect::<Vec<_>>());
    BootSummary {
        boots: boots.len() as u32,
        time_to_ready_ms: col(&|b| b.time_to_ready_ms),
        shutdown_ms: named("shutdown", boots.iter().map(|b| b.shutdown_ms)),
        phases,
        points,
        peak_rss_bytes: col(&|b| b.resources_total.peak_rss_bytes as f64),
        cpu_seconds_to_ready: col(&|b| {
            b.resources_to_ready.cpu_user_s + b.resources_to_ready.cpu_sys_s
        }),
        read_bytes_to_ready: col(&|b| b.resources_to_ready.read_bytes as f64),
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
}
