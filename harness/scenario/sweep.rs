//! Validation of `[sweep]`: the swept dimension and its values.

use super::*;

pub(super) fn validate(
    loc: &Locator,
    raw: &RawScenario,
    dataset: &DatasetSpec,
    herd: Option<&HerdSpec>,
) -> Result<Option<SweepSpec>, ScenarioError> {
    let sweep = match &raw.sweep {
        None => None,
        Some(sw) => {
            let dimension = SweepDimension::ALL
                .iter()
                .find(|(n, _)| *n == sw.dimension.get_ref())
                .map(|(_, d)| *d)
                .ok_or_else(|| {
                    let names: Vec<&str> = SweepDimension::ALL.iter().map(|(n, _)| *n).collect();
                    loc.at(
                        sw.dimension.span(),
                        "sweep.dimension",
                        format!(
                            "{:?} is not a sweepable dimension: {}",
                            sw.dimension.get_ref(),
                            names.join(", ")
                        ),
                    )
                })?;
            let values = sw.values.get_ref().clone();
            let at = |m: String| loc.at(sw.values.span(), "sweep.values", m);
            if values.len() < 3 {
                return Err(at(format!(
                    "{} value(s): a fitted exponent needs at least 3",
                    values.len()
                )));
            }
            if values.windows(2).any(|w| w[0] >= w[1]) || values[0] == 0 {
                return Err(at("values must be positive and strictly ascending".into()));
            }
            for v in &values {
                dataset
                    .with(dimension, *v)
                    .check()
                    .map_err(|m| at(format!("at {} = {v}: {m}", dimension.name())))?;
                if let Some(h) = &herd
                    && dimension == SweepDimension::Users
                    && h.clients > *v
                {
                    return Err(at(format!(
                        "at users = {v}: the herd's {} clients need as many users",
                        h.clients
                    )));
                }
            }
            Some(SweepSpec {
                dimension,
                values,
                workloads: sw.workloads.unwrap_or(false),
            })
        }
    };
    Ok(sweep)
}
