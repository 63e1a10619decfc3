//! Scenario files: the TOML schema, its defaults, and validation into typed values.
//!
//! Parsing happens once, at the edge. Every error names the file, the line and column, and the
//! dotted path of the field that failed, so a user can jump straight to it. The rest of the
//! crate works on [`Scenario`] and never re-checks what validation has established.
//!
//! This file is the front door: [`Scenario`], [`load`] and [`parse`], and the order in which the
//! sections are validated. Each section's typed values live beside their validator (`dataset`,
//! `server`, `boot`, `workload`, `profile`, `sweep`, `gates` for `[thresholds]` and
//! `[compare]`; `arrivals` for open-model schedules), and are re-exported here; `raw` is the
//! file's own shape, `locate` turns a span into a located [`ScenarioError`].

pub mod arrivals;
mod boot;
mod dataset;
mod gates;
mod locate;
mod profile;
mod raw;
mod secs;
mod server;
mod sweep;
mod workload;

pub use boot::{
    BootPlan, CacheMode, DEFAULT_CRASH_WRITES, DEFAULT_SLOW_STATEMENTS, MeterMode, RestoreMode,
};
pub use dataset::{
    DEFAULT_HISTORY_SECONDS, DatasetSpec, LoadMethod, MAX_ROOMS, MAX_TIMELINE_EVENTS, MAX_USERS,
    PresenceMode, Registration,
};
pub use gates::{
    CompareSpec, DEFAULT_ALPHA, DEFAULT_ERROR_LIMIT, DEFAULT_MIN_DELTA_MS, DEFAULT_NOISE,
    ERROR_METRICS, Threshold,
};
pub use locate::{LoadError, ScenarioError};
pub use profile::{ProfileSpec, ProfilerChoice};
pub use server::{
    DEFAULT_SYNAPSE_VERSION, DatabaseKind, PgUrl, SYNAPSE_RESERVED_KEYS, ServerKind, ServerSpec,
};
pub use sweep::{SweepDimension, SweepSpec};
pub use workload::{
    CatchupSpec, HerdSpec, ReactionKind, SLIDING_LIST_TIMELINE_LIMIT, SteadySpec, SyncKind,
    SyncProtocol, TriggeredSpec, Workload, WorkloadKind,
};

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::util::span::clean_path;
use locate::Locator;
use raw::RawScenario;

/// The schema version this build reads. A scenario may state it as `schema = 1`.
pub const SCENARIO_SCHEMA: u32 = 1;

/// A validated scenario.
#[derive(Debug, Clone, schemars::JsonSchema, serde::Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    /// Path the scenario was read from.
    pub path: PathBuf,
    /// sha256 of the file's bytes: two results with the same hash ran the same scenario.
    pub sha256: String,
    pub dataset: DatasetSpec,
    pub server: ServerSpec,
    pub boot: BootPlan,
    /// The workloads in the order the file declares them (run in this order), at most one of
    /// each kind.
    #[serde(default)]
    pub workloads: Vec<Workload>,
    pub profile: ProfileSpec,
    pub sweep: Option<SweepSpec>,
    /// Absolute limits a run must meet (`[thresholds]`); `hsbench run` exits 1 when one fails.
    pub thresholds: Vec<Threshold>,
    /// The gates `hsbench compare` applies to runs of this scenario (`[compare]`).
    pub compare: CompareSpec,
}

impl Scenario {
    /// Whether a workload of this scenario speaks a sync protocol (every workload kind does:
    /// herd, triggered, steady, catch-up).
    pub fn speaks_sync(&self) -> bool {
        !self.workloads.is_empty()
    }

    /// This scenario with every sync workload over `protocol`: the same dataset, clients and
    /// timing. A herd over sliding sync loads room lists (no full-state or lazy-loading
    /// filter: those are v2's); a triggered herd's reaction becomes its counterpart (a v2
    /// full-state re-sync ↔ a sliding room subscription with all state; a v2 initial sync ↔ a
    /// sliding reconnection). Catch-up readers load their room list and open the room over
    /// sliding sync instead of an initial `/sync`.
    pub fn over_protocol(&self, protocol: SyncProtocol) -> Scenario {
        let mut s = self.clone();
        for w in &mut s.workloads {
            match w {
                Workload::Herd(h) => {
                    h.protocol = protocol;
                    if protocol == SyncProtocol::Sliding {
                        h.sync = SyncKind::Initial;
                        h.lazy_load_members = false;
                    }
                }
                Workload::Triggered(t) => {
                    t.protocol = protocol;
                    t.reaction = match (protocol, t.reaction) {
                        (SyncProtocol::Sliding, ReactionKind::FullState) => ReactionKind::Subscribe,
                        (SyncProtocol::Sliding, ReactionKind::Initial) => ReactionKind::Reconnect,
                        (SyncProtocol::V2, ReactionKind::Subscribe) => ReactionKind::FullState,
                        (SyncProtocol::V2, ReactionKind::Reconnect) => ReactionKind::Initial,
                        (_, r) => r,
                    };
                }
                Workload::Steady(st) => st.protocol = protocol,
                Workload::Catchup(c) => c.protocol = protocol,
            }
        }
        s
    }

    /// `[workload.herd]`, if the scenario has it.
    pub fn herd(&self) -> Option<&HerdSpec> {
        self.workloads.iter().find_map(|w| match w {
            Workload::Herd(h) => Some(h),
            _ => None,
        })
    }

    /// `[workload.triggered]`, if the scenario has it.
    pub fn triggered(&self) -> Option<&TriggeredSpec> {
        self.workloads.iter().find_map(|w| match w {
            Workload::Triggered(t) => Some(t),
            _ => None,
        })
    }

    /// `[workload.steady]`, if the scenario has it.
    pub fn steady(&self) -> Option<&SteadySpec> {
        self.workloads.iter().find_map(|w| match w {
            Workload::Steady(t) => Some(t),
            _ => None,
        })
    }

    /// `[workload.catchup]`, if the scenario has it.
    pub fn catchup(&self) -> Option<&CatchupSpec> {
        self.workloads.iter().find_map(|w| match w {
            Workload::Catchup(t) => Some(t),
            _ => None,
        })
    }
}

/// Read and validate a scenario file.
pub fn load(path: &Path) -> Result<Scenario, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse(path, &text)?)
}

/// Parse and validate scenario text; `path` is used for error messages and the default name.
pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    let loc = Locator { path, text };
    let de = toml::de::Deserializer::parse(text).map_err(|e| loc.toml_error("", &e))?;
    let raw: RawScenario = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = clean_path(&e.path().to_string());
        loc.toml_error(&field, e.inner())
    })?;
    validate(&loc, raw)
}

fn validate(loc: &Locator, raw: RawScenario) -> Result<Scenario, ScenarioError> {
    if let Some(schema) = &raw.schema
        && *schema.get_ref() != SCENARIO_SCHEMA
    {
        return Err(loc.at(
            schema.span(),
            "schema",
            format!(
                "this hsbench reads scenario schema {SCENARIO_SCHEMA}, the file says {}",
                schema.get_ref()
            ),
        ));
    }

    let mut dataset = dataset::validate(loc, &raw)?;
    let server = server::validate(loc, &raw)?;
    dataset::load_method(loc, &raw, &server, &mut dataset)?;
    let boot = boot::validate(loc, &raw, &server)?;
    let workloads = workload::validate(loc, &raw, &dataset)?;
    let profile = profile::validate(loc, &raw)?;
    let herd = workloads.iter().find_map(|w| match w {
        Workload::Herd(h) => Some(h),
        _ => None,
    });
    let sweep = sweep::validate(loc, &raw, &dataset, herd)?;
    let (thresholds, compare) = gates::validate(loc, &raw, &server)?;

    let name = match &raw.name {
        Some(n) if n.get_ref().trim().is_empty() => {
            return Err(loc.at(
                n.span(),
                "name",
                "is empty: it names the run (results/<time>-<name>); leave it out to use the file's name",
            ));
        }
        Some(n) => n.get_ref().clone(),
        None => loc
            .path
            .file_stem()
            .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned()),
    };
    Ok(Scenario {
        name,
        description: raw.description,
        path: loc.path.to_path_buf(),
        sha256: hex::encode(Sha256::digest(loc.text.as_bytes())),
        dataset,
        server,
        boot,
        workloads,
        profile,
        sweep,
        thresholds,
        compare,
    })
}

#[cfg(test)]
mod tests;
