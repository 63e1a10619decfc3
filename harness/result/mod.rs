//! The result of a run: what `result.json` holds. `schema_version` bumps on a breaking change.

pub mod read;
pub mod schema;

use crate::boot::BootRecord;
use crate::boot::summary::BootSummary;
use crate::dataset::plan::PlanTotals;
use crate::dataset::seed::LoadReport;
use crate::load::herd::HerdResult;
use crate::metrics::SelfUsage;
use crate::metrics::machine::Fingerprint;
use crate::scenario::{DatasetSpec, Scenario};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still running: a file with this status is a partial result of a run in progress (or of
    /// one that was killed without a chance to write more).
    Running,
    Complete,
    Failed,
    Interrupted,
    /// Never written by a run: the reader's verdict on a `running` result whose process is
    /// gone (`kill -9`, an OOM kill, a lost machine). `error` says the last stage it reached.
    Killed,
}

/// What the server spent while one workload ran: its process tree's CPU and I/O between the
/// workload's start and end, and its resident memory at the end.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct WorkloadServerLoad {
    /// `herd`, `triggered`, `steady` or `catchup`.
    pub workload: String,
    pub cpu_s: f64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub rss_after_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct HarnessInfo {
    pub name: String,
    pub version: String,
    pub git_revision: Option<String>,
    /// hsbench's own CPU and memory over the whole run.
    pub self_usage: SelfUsage,
}

#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct ServerInfo {
    pub kind: String,
    pub version: String,
    /// `sqlite`, `postgres-<major>` (private cluster) or `postgres-external`.
    pub database: String,
    pub database_detail: Option<String>,
    pub install_dir: String,
    pub installed_now: bool,
    pub install_seconds: f64,
    /// What hsbench changed in the server's generated config, and why: see README.
    pub config_overrides: serde_json::Value,
    /// A source install's checkout, commit, branch and uncommitted changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::server::synapse::SourceInfo>,
}

#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct DatasetInfo {
    pub spec: DatasetSpec,
    pub spec_hash: String,
    pub totals: PlanTotals,
    /// How the dataset was loaded (for a reused fixture: when it was built).
    pub load: Option<LoadReport>,
    pub fixture: Option<crate::dataset::fixture::FixtureUse>,
    /// The dataset checked through the server's own API (`--verify`).
    pub verify: Option<crate::dataset::verify::VerifyReport>,
}

impl DatasetInfo {
    /// What the plan says, before anything was loaded, restored or verified.
    pub fn planned(plan: &crate::dataset::plan::DatasetPlan) -> Self {
        let spec = plan.spec().clone();
        Self {
            spec_hash: spec.spec_hash(),
            totals: plan.totals(),
            spec,
            load: None,
            fixture: None,
            verify: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct RunResult {
    pub schema_version: u32,
    pub run_id: String,
    pub status: RunStatus,
    /// The process writing this result: a `running` result whose owner is gone reads as
    /// `killed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<crate::util::owner::Owner>,
    pub error: Option<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_s: f64,
    pub harness: HarnessInfo,
    pub machine: Fingerprint,
    pub scenario: serde_json::Value,
    pub server: Option<ServerInfo>,
    /// `[server] cpus`, `memory`, `cpuset`: the server's limits, how they were applied and
    /// the throttling the kernel counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<crate::server::limits::LimitsRecord>,
    pub dataset: Option<DatasetInfo>,
    /// The measured boots, in order.
    pub boots: Vec<BootRecord>,
    /// Statistics of the warm timed boots (warm-up boots left out).
    pub boot_summary: Option<BootSummary>,
    /// Statistics of the cold timed boots (`[boot] cache = "cold"` or `"both"`).
    #[serde(default)]
    pub cold_boot_summary: Option<BootSummary>,
    /// Crash-restart cycles (`[boot] crash_restarts`): the killed boot and the recovery boot.
    #[serde(default)]
    pub crash_restarts: Vec<CrashRestart>,
    /// Statistics of the recovery boots (each the first boot after a SIGKILL).
    #[serde(default)]
    pub crash_boot_summary: Option<BootSummary>,
    /// `[boot] meter = "work"` or `"both"`: the boots under the work meter, each with its
    /// instruction counts (`work`), and which meter ran with its slowdown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub work_boots: Vec<BootRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter: Option<crate::meter::MeterRecord>,
    /// The boot that loaded the dataset and the boot that ran the workloads: recorded for
    /// completeness, not part of the boot statistics.
    pub seed_boot: Option<BootRecord>,
    /// With a direct import: the boot on the imported data whose API was checked against the
    /// plan before the fixture was saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_check_boot: Option<BootRecord>,
    pub workload_boot: Option<BootRecord>,
    pub herd: Option<HerdResult>,
    /// `[workload.triggered]`: the re-sync storm and the recovery.
    #[serde(default)]
    pub triggered: Option<crate::load::triggered::TriggeredResult>,
    /// `[workload.steady]`: send and delivery latency under open-model traffic.
    #[serde(default)]
    pub steady: Option<crate::load::steady::SteadyResult>,
    /// `[workload.catchup]`: readers paging through an unread backlog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catchup: Option<crate::load::catchup::CatchupResult>,
    /// The server's process tree (and its private PostgreSQL cluster) while each workload ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_load: Vec<WorkloadServerLoad>,
    /// Flamegraphs of profiled boots and workloads (`[profile]`).
    #[serde(default)]
    pub profile: Option<crate::profile::ProfileResult>,
    /// `[thresholds]` checked against this run (empty without thresholds).
    #[serde(default)]
    pub thresholds: Vec<ThresholdResult>,
    /// `hsbench run --attach … --shard i/n`: which slice of the clients this run was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// Files of this run directory besides result.json, relative to it.
    pub files: Vec<String>,
}

/// One crash-restart cycle: a boot killed with SIGKILL (its whole process group) while writes
/// were in flight, and the next boot over the same data, timed like any other.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct CrashRestart {
    /// The killed boot (no shutdown: `exit_status` is the signal).
    pub killed: BootRecord,
    /// Messages sent into the big room before and during the kill.
    pub writes_sent: u64,
    /// Of those, acknowledged (200) before the kill.
    pub writes_acked: u64,
    /// Ms from the killed boot's ready to the SIGKILL.
    pub killed_after_ms: f64,
    /// The first boot after the kill (recovery: WAL replay, crash checks).
    pub recovery: BootRecord,
    /// Acknowledged writes read back (by event id) from the recovered server.
    #[serde(default)]
    pub writes_checked: Option<u64>,
    /// Of those, missing after the recovery: acknowledged but lost. Any loss fails the run.
    #[serde(default)]
    pub writes_lost: Option<u64>,
    /// The first lost event ids (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_event_ids: Vec<String>,
    /// Why the read-back could not be done (then durability is unknown, and the run fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_back_error: Option<String>,
}

/// A shard's place in a sharded load.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct ShardInfo {
    /// 0-based.
    pub index: u32,
    pub count: u32,
    /// The running server the shard loaded.
    pub attached_to: String,
    /// Dataset users in this shard's slice.
    pub clients: u64,
    /// When the herd was released (RFC 3339), if the shards were given a common time.
    pub release_at: Option<String>,
}

impl RunResult {
    /// The scenario's name as recorded in the result (`scenario` when it has none).
    pub fn scenario_name(&self) -> &str {
        self.scenario
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("scenario")
    }

    /// `<kind> <version> (<database>)`, for titles.
    pub fn server_label(&self) -> String {
        self.server
            .as_ref()
            .map(|s| {
                // A native server's version line names it already ("tuwunel 1.4.6 (sha256 …)").
                let named = s
                    .version
                    .to_lowercase()
                    .starts_with(&format!("{} ", s.kind.to_lowercase()));
                let from = s
                    .source
                    .as_ref()
                    .map(|src| format!(" [{}]", src.describe()))
                    .unwrap_or_default();
                if named {
                    format!("{}{from} ({})", s.version, s.database)
                } else {
                    format!("{} {}{from} ({})", s.kind, s.version, s.database)
                }
            })
            .unwrap_or_else(|| "server not installed".into())
    }

    /// What a result had recorded when it was last saved, for a run that stopped without a
    /// word (a `killed` one): its last stage.
    pub fn last_stage(&self) -> String {
        let workloads: Vec<&str> = [
            ("herd", self.herd.is_some()),
            ("triggered", self.triggered.is_some()),
            ("steady", self.steady.is_some()),
            ("catchup", self.catchup.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, done)| done.then_some(n))
        .collect();
        if self.workload_boot.is_some() || !workloads.is_empty() {
            if workloads.is_empty() {
                "the workloads (none finished)".into()
            } else {
                format!("the workloads ({} finished)", workloads.join(", "))
            }
        } else if !self.boots.is_empty() {
            format!("the timed boots ({} finished)", self.boots.len())
        } else if self.dataset.as_ref().is_some_and(|d| d.fixture.is_some()) {
            "the timed boots (none finished)".into()
        } else if self.dataset.is_some() {
            "the dataset".into()
        } else if self.server.is_some() {
            "the server's set-up".into()
        } else {
            "the install".into()
        }
    }

    /// A `running` result whose writer is gone is `killed` (its error names the last stage);
    /// any other is left as it is.
    pub fn settle_status(&mut self) {
        if self.status == RunStatus::Running
            && let Some(o) = &self.owner
            && !o.is_alive()
        {
            self.error = Some(format!(
                "killed: process {} ended without writing its status, during {}",
                o.pid,
                self.last_stage()
            ));
            self.status = RunStatus::Killed;
        }
    }

    pub fn new(run_id: &str, scenario: &Scenario) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            run_id: run_id.to_string(),
            status: RunStatus::Running,
            owner: Some(crate::util::owner::Owner::current()),
            error: None,
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            finished_at: None,
            duration_s: 0.0,
            harness: HarnessInfo {
                name: "hsbench".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                git_revision: crate::metrics::machine::git_revision(),
                self_usage: SelfUsage::default(),
            },
            machine: Fingerprint::current(),
            scenario: serde_json::to_value(scenario).expect("a scenario serializes"),
            server: None,
            limits: None,
            dataset: None,
            boots: Vec::new(),
            boot_summary: None,
            cold_boot_summary: None,
            crash_restarts: Vec::new(),
            crash_boot_summary: None,
            work_boots: Vec::new(),
            meter: None,
            seed_boot: None,
            import_check_boot: None,
            workload_boot: None,
            herd: None,
            triggered: None,
            steady: None,
            catchup: None,
            server_load: Vec::new(),
            profile: None,
            thresholds: Vec::new(),
            shard: None,
            files: Vec::new(),
        }
    }
}

/// One `[thresholds]` entry checked against the run's figures.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct ThresholdResult {
    pub metric: String,
    /// As written: `< 10s`; a default gate says so: `< 1% (default)`.
    pub condition: String,
    /// The run's figure (a median for boot metrics; percent for `<workload>.errors`); `None`
    /// when the run has no such figure.
    pub value: Option<f64>,
    pub passed: bool,
    /// What the figure stands for, where a number alone does not say it (the error gate:
    /// `150 of 150 requests failed (timeout 150)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ThresholdResult {
    /// `herd.errors 100.0% (150 of 150 requests failed (timeout 150)), limit < 1% (default)`.
    pub fn reason(&self) -> String {
        let value = self.value.map_or("no such figure in this run".into(), |v| {
            crate::metrics::catalogue::format(&self.metric, v)
        });
        let detail = self
            .detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        format!("{} {value}{detail}, limit {}", self.metric, self.condition)
    }
}
