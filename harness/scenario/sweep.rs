//! Validation of `[sweep]`: the swept dimension and its values.

use super::dataset::DatasetSpec;
use super::locate::{Locator, ScenarioError};
use super::raw::RawScenario;
use super::workload::HerdSpec;

/// The dataset dimension a sweep varies.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SweepDimension {
    Users,
    Rooms,
    BigRoomMembers,
    MessagesPerRoom,
    DmPairs,
    StateEventsPerRoom,
    /// `[server] cpus`: the server's CPU quota (a sizing sweep over hardware; the dataset
    /// and its fixture stay the same).
    Cpus,
}

impl SweepDimension {
    pub const ALL: [(&'static str, SweepDimension); 7] = [
        ("users", SweepDimension::Users),
        ("rooms", SweepDimension::Rooms),
        ("big_room_members", SweepDimension::BigRoomMembers),
        ("messages_per_room", SweepDimension::MessagesPerRoom),
        ("dm_pairs", SweepDimension::DmPairs),
        ("state_events_per_room", SweepDimension::StateEventsPerRoom),
        ("cpus", SweepDimension::Cpus),
    ];

    /// A dimension of the dataset (whole numbers), not of the server's hardware.
    pub fn is_dataset(self) -> bool {
        self != SweepDimension::Cpus
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, d)| *d == self)
            .map(|(n, _)| *n)
            .expect("every dimension is named")
    }
}

/// `[sweep]`: run the scenario once per value of one dataset dimension.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize)]
pub struct SweepSpec {
    pub dimension: SweepDimension,
    /// Ascending, at least three (a fitted exponent needs a confidence interval); whole
    /// numbers for a dataset dimension.
    pub values: Vec<f64>,
    /// Run the scenario's workloads at every point too (default: boots only).
    pub workloads: bool,
}

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
            if values.iter().any(|v| !v.is_finite())
                || values.windows(2).any(|w| w[0] >= w[1])
                || values[0] <= 0.0
            {
                return Err(at("values must be positive and strictly ascending".into()));
            }
            for &v in &values {
                if !dimension.is_dataset() {
                    if !(0.01..=1024.0).contains(&v) {
                        return Err(at(format!(
                            "cpus = {v} is not a CPU quota: cores from 0.01 to 1024"
                        )));
                    }
                    continue;
                }
                if v.fract() != 0.0 || v > u32::MAX as f64 {
                    return Err(at(format!(
                        "{} = {v}: a dataset dimension takes whole numbers",
                        dimension.name()
                    )));
                }
                let v = v as u64;
                dataset
                    .with(dimension, v)
                    .check()
                    .map_err(|m| at(format!("at {} = {v}: {m}", dimension.name())))?;
                if let Some(h) = &herd
                    && dimension == SweepDimension::Users
                    && h.clients > v
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

impl DatasetSpec {
    /// This spec with `dim` set to `value`; a default that depends on the user count
    /// (`max_room_members`) follows it. Checked with [`DatasetSpec::check`].
    pub fn with(&self, dim: SweepDimension, value: u64) -> Self {
        let mut d = self.clone();
        match dim {
            SweepDimension::Users => {
                d.users = value;
                d.max_room_members = d.max_room_members.min(value.max(2));
            }
            SweepDimension::Rooms => d.rooms = value,
            SweepDimension::BigRoomMembers => d.big_room_members = value,
            SweepDimension::MessagesPerRoom => d.messages_per_room = value,
            SweepDimension::DmPairs => d.dm_pairs = value,
            SweepDimension::StateEventsPerRoom => d.state_events_per_room = value,
            SweepDimension::Cpus => {}
        }
        d
    }
}
