//! Validation of `[profile]`: the profiler.

use super::locate::{Locator, ScenarioError, positive};
use super::raw::RawScenario;

/// Which profiler samples the server (`[profile] profiler`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ProfilerChoice {
    /// py-spy for Synapse (Python); perf for native servers.
    Auto,
    PySpy,
    Perf,
    None,
}

/// `[profile]`: flamegraphs of the server during extra boots and during the workloads.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize)]
pub struct ProfileSpec {
    pub profiler: ProfilerChoice,
    /// Profile extra boots (after the timed ones, never mixed into their statistics).
    pub boot: bool,
    /// Profile the server while the workloads run (attached to the running process).
    pub load: bool,
    /// Samples per second.
    pub rate_hz: u32,
    /// How many profiled boots.
    pub boot_runs: u32,
}

impl ProfileSpec {
    /// Nothing profiled.
    pub fn off() -> Self {
        Self {
            profiler: ProfilerChoice::None,
            boot: false,
            load: false,
            rate_hz: 100,
            boot_runs: 1,
        }
    }

    pub fn enabled(&self) -> bool {
        self.profiler != ProfilerChoice::None && (self.boot || self.load)
    }
}

pub(super) fn validate(loc: &Locator, raw: &RawScenario) -> Result<ProfileSpec, ScenarioError> {
    let profile = match &raw.profile {
        None => ProfileSpec::off(),
        Some(p) => {
            let profiler = match p
                .profiler
                .as_ref()
                .map(|c| (c.get_ref().as_str(), c.span()))
            {
                None | Some(("auto", _)) => ProfilerChoice::Auto,
                Some(("py-spy", _)) => ProfilerChoice::PySpy,
                Some(("perf", _)) => ProfilerChoice::Perf,
                Some(("none", _)) => ProfilerChoice::None,
                Some((other, span)) => {
                    return Err(loc.at(
                        span,
                        "profile.profiler",
                        format!("{other:?}: \"auto\", \"py-spy\", \"perf\" or \"none\""),
                    ));
                }
            };
            let rate_hz = match &p.rate {
                None => 100,
                Some(r) => {
                    let v = positive(loc, r, "profile.rate")?;
                    if v > 1000 {
                        return Err(loc.at(
                            r.span(),
                            "profile.rate",
                            "at most 1000 samples per second (higher rates distort the server)",
                        ));
                    }
                    v as u32
                }
            };
            let boot_runs = match &p.boot_runs {
                None => 1,
                Some(r) => {
                    let v = positive(loc, r, "profile.boot_runs")?;
                    if v > 100 {
                        return Err(loc.at(r.span(), "profile.boot_runs", "at most 100"));
                    }
                    v as u32
                }
            };
            ProfileSpec {
                profiler,
                boot: p.boot.unwrap_or(true),
                load: p.load.unwrap_or(true),
                rate_hz,
                boot_runs,
            }
        }
    };
    Ok(profile)
}
