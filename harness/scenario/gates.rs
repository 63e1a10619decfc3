//! Validation of `[thresholds]` and `[compare]`: the gates, with metric names checked against the catalogue.

use super::*;

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
