//! Validation of `[thresholds]` and `[compare]`: the gates, with metric names checked against the catalogue.

use super::locate::{Locator, ScenarioError};
use super::raw::RawScenario;
use super::server::ServerSpec;
use crate::metrics::catalogue;
use toml::Spanned;

/// `[compare]`: how large a change must be, and how sure, before `hsbench compare` calls it a
/// regression. Read from the candidate run's scenario; `--noise`/`--alpha` override.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct CompareSpec {
    /// Changes whose ratio-of-medians interval stays within ± this share are noise.
    pub noise: f64,
    /// Significance level of the rank test.
    pub alpha: f64,
    /// Per-metric noise shares (`"phase.db_prepare" = 0.10`), overriding `noise`.
    pub noise_by_metric: std::collections::BTreeMap<String, f64>,
    /// A time metric's medians must differ by more than this many milliseconds to count
    /// (`min_delta = "10ms"`): a 12 → 16 ms phase is +33% of nothing a user waits for.
    #[serde(default = "default_min_delta_ms")]
    pub min_delta_ms: f64,
}

pub(super) fn default_min_delta_ms() -> f64 {
    DEFAULT_MIN_DELTA_MS
}

/// Significance level of the rank test (`[compare] alpha`).
pub const DEFAULT_ALPHA: f64 = 0.05;
/// Default noise threshold (`[compare] noise`): changes within ±5% are noise.
pub const DEFAULT_NOISE: f64 = 0.05;
/// Default minimum delta of a time metric's medians, in milliseconds (`[compare] min_delta`).
pub const DEFAULT_MIN_DELTA_MS: f64 = 10.0;

impl Default for CompareSpec {
    fn default() -> Self {
        Self {
            noise: DEFAULT_NOISE,
            alpha: DEFAULT_ALPHA,
            noise_by_metric: Default::default(),
            min_delta_ms: default_min_delta_ms(),
        }
    }
}

/// `metric = "< limit"`: the run's median (or the herd's percentile) must stay below `limit`.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct Threshold {
    /// A figure of the run: `time_to_ready`, `phase.<name>`, `shutdown`, `peak_rss`, their
    /// `cold.` variants, `herd.sync.p50|p90|p99|max`, `herd.wall`, the workloads' figures and
    /// their error shares (`<workload>.errors`).
    pub metric: String,
    /// `<` or `<=`.
    pub inclusive: bool,
    /// Milliseconds; bytes for `peak_rss`; percent for `<workload>.errors`.
    pub limit: f64,
    /// The text as written, for reports.
    pub text: String,
}

/// The error gate's metrics: the share of a workload's requests that failed, in percent
/// (`"herd.errors" = "< 5%"`). A workload without one is held to [`DEFAULT_ERROR_LIMIT`].
pub const ERROR_METRICS: &[&str] = &[
    "herd.errors",
    "triggered.errors",
    "steady.errors",
    "catchup.errors",
];

/// The error gate a workload meets when `[thresholds]` does not set its own: fewer than 1% of
/// its requests failed.
pub const DEFAULT_ERROR_LIMIT: f64 = 1.0;

impl Threshold {
    /// The default error gate of `workload`: `<workload>.errors < 1%`.
    pub fn default_error_gate(workload: &str) -> Self {
        Self {
            metric: format!("{workload}.errors"),
            inclusive: false,
            limit: DEFAULT_ERROR_LIMIT,
            text: format!("< {DEFAULT_ERROR_LIMIT}% (default)"),
        }
    }
}

/// Parse one threshold; `metric` may carry a `boot.` prefix (`boot.shutdown`).
pub(super) fn parse_threshold(
    metric: &str,
    text: &str,
    phases: &[String],
) -> Result<Threshold, String> {
    // `boot.shutdown` was once written for `shutdown`.
    let m = metric.strip_prefix("boot.").unwrap_or(metric);
    let unit = catalogue::parse(m, phases)
        .map_err(|e| e.to_string())?
        .unit();
    let t = text.trim();
    let (inclusive, rest) = if let Some(r) = t.strip_prefix("<=") {
        (true, r)
    } else if let Some(r) = t.strip_prefix('<') {
        (false, r)
    } else {
        return Err(format!(
            "{text:?}: write an upper bound, e.g. \"< 10s\" or \"<= 512MiB\""
        ));
    };
    let rest = rest.trim();
    let limit = if unit == catalogue::Unit::Percent {
        let num = rest.strip_suffix('%').ok_or_else(|| {
            format!("{rest:?}: an error limit is a share of the requests, e.g. \"< 5%\"")
        })?;
        let v: f64 = num
            .trim()
            .parse()
            .map_err(|_| format!("{rest:?} is not a percentage, e.g. \"5%\""))?;
        if !(0.0..=100.0).contains(&v) {
            return Err(format!("{rest:?}: a percentage from 0% to 100%"));
        }
        v
    } else if unit == catalogue::Unit::Bytes {
        crate::util::fmt::parse_bytes(rest)?
    } else if unit == catalogue::Unit::Count {
        rest.parse::<f64>()
            .map_err(|_| format!("{rest:?} is not a count, e.g. \"1\""))?
    } else if unit == catalogue::Unit::Instructions {
        let (num, k) = match rest.trim_end().chars().last() {
            Some('k') => (&rest[..rest.len() - 1], 1e3),
            Some('M') => (&rest[..rest.len() - 1], 1e6),
            Some('G') => (&rest[..rest.len() - 1], 1e9),
            _ => (rest, 1.0),
        };
        num.trim().parse::<f64>().map_err(|_| {
            format!("{rest:?} is not an instruction count, e.g. \"5.2G\" or \"190M\"")
        })? * k
    } else if unit == catalogue::Unit::Seconds {
        humantime::parse_duration(rest)
            .map_err(|e| format!("{rest:?} is not a duration ({e}); e.g. \"10s\" or \"500ms\""))?
            .as_secs_f64()
    } else {
        humantime::parse_duration(rest)
            .map_err(|e| format!("{rest:?} is not a duration ({e}); e.g. \"10s\" or \"500ms\""))?
            .as_secs_f64()
            * 1000.0
    };
    Ok(Threshold {
        metric: m.to_string(),
        inclusive,
        limit,
        text: t.to_string(),
    })
}

pub(super) fn validate(
    loc: &Locator,
    raw: &RawScenario,
    server: &ServerSpec,
) -> Result<(Vec<Threshold>, CompareSpec), ScenarioError> {
    let server_profile = server
        .profile()
        .map_err(|e| loc.at(0..0, "server.profile", e.to_string()))?;
    let phases: Vec<String> = server_profile
        .phases
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let mut thresholds = Vec::new();
    for (metric, text) in raw.thresholds.iter().flatten() {
        thresholds.push(
            parse_threshold(metric, text.get_ref(), &phases)
                .map_err(|m| loc.at(text.span(), &format!("thresholds.{metric}"), m))?,
        );
    }

    let mut compare = CompareSpec::default();
    if let Some(c) = &raw.compare {
        let share = |v: &Spanned<f64>, field: &str| -> Result<f64, ScenarioError> {
            let x = *v.get_ref();
            if (0.0..1.0).contains(&x) {
                Ok(x)
            } else {
                Err(loc.at(
                    v.span(),
                    field,
                    format!("{x} is not a share in [0, 1): e.g. 0.05 for 5%"),
                ))
            }
        };
        if let Some(n) = &c.noise {
            compare.noise = share(n, "compare.noise")?;
        }
        if let Some(a) = &c.alpha {
            let x = *a.get_ref();
            if !(x > 0.0 && x <= 0.5) {
                return Err(loc.at(
                    a.span(),
                    "compare.alpha",
                    format!("{x} is not a significance level in (0, 0.5]: e.g. 0.05"),
                ));
            }
            compare.alpha = x;
        }
        if let Some(v) = &c.min_delta {
            let d = humantime::parse_duration(v.get_ref()).map_err(|e| {
                loc.at(
                    v.span(),
                    "compare.min_delta",
                    format!(
                        "{:?} is not a duration ({e}); write e.g. \"10ms\" or \"0ms\"",
                        v.get_ref()
                    ),
                )
            })?;
            compare.min_delta_ms = d.as_secs_f64() * 1e3;
        }
        for (metric, v) in c.noise_by_metric.iter().flatten() {
            let field = format!("compare.noise_by_metric.{metric}");
            if let Err(e) = catalogue::parse(metric, &phases) {
                return Err(loc.at(v.span(), &field, e.to_string()));
            }
            compare
                .noise_by_metric
                .insert(metric.clone(), share(v, &field)?);
        }
    }
    Ok((thresholds, compare))
}
