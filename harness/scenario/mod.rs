//! Scenario files: the TOML schema, its defaults, and validation into typed values.
//!
//! Parsing happens once, at the edge. Every error names the file, the line and column, and the
//! dotted path of the field that failed, so a user can jump straight to it. The rest of the
//! crate works on [`Scenario`] and never re-checks what validation has established.

pub mod arrivals;
mod boot;
mod dataset;
mod gates;
mod profile;
mod server;
mod sweep;
mod workload;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::metrics::catalogue;
use crate::util::span::{clean_path, line_col};

/// The schema version this build reads. A scenario may state it as `schema = 1`.
pub const SCENARIO_SCHEMA: u32 = 1;

/// The Synapse version installed when a scenario does not pin one.
pub const DEFAULT_SYNAPSE_VERSION: &str = "1.163.2";

/// Messages written before a crash-restart's SIGKILL, unless `[boot] crash_writes` says.
pub const DEFAULT_CRASH_WRITES: u32 = 200;

/// A scenario that failed to parse or validate, located in its file.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}:{column}: `{field}`: {message}", path.display())]
pub struct ScenarioError {
    pub path: PathBuf,
    /// 1-based line of the offending value (or of the table, for a missing field).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Dotted path of the field, e.g. `workload.herd.clients`.
    pub field: String,
    pub message: String,
}

/// Reading a scenario file from disk failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read scenario {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] ScenarioError),
}

// ---------------------------------------------------------------------------------------------
// Raw schema (what the file says). `deny_unknown_fields` everywhere: a typo is an error.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    schema: Option<Spanned<u32>>,
    name: Option<Spanned<String>>,
    description: Option<String>,
    dataset: RawDataset,
    server: Option<RawServer>,
    boot: Option<RawBoot>,
    workload: Option<RawWorkload>,
    profile: Option<RawProfile>,
    sweep: Option<RawSweep>,
    thresholds: Option<std::collections::BTreeMap<String, Spanned<String>>>,
    compare: Option<RawCompare>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompare {
    noise: Option<Spanned<f64>>,
    alpha: Option<Spanned<f64>>,
    noise_by_metric: Option<std::collections::BTreeMap<String, Spanned<f64>>>,
    min_delta: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    dimension: Spanned<String>,
    values: Spanned<Vec<u64>>,
    workloads: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataset {
    seed: u64,
    users: Spanned<u64>,
    rooms: Spanned<u64>,
    big_room_members: Spanned<u64>,
    messages_per_room: Spanned<u64>,
    #[serde(default)]
    max_room_members: Option<Spanned<u64>>,
    display_name_share: Option<Spanned<f64>>,
    avatar_share: Option<Spanned<f64>>,
    presence_share: Option<Spanned<f64>>,
    multi_device_share: Option<Spanned<f64>>,
    private_room_share: Option<Spanned<f64>>,
    dm_pairs: Option<u64>,
    state_rooms: Option<Spanned<u64>>,
    state_events_per_room: Option<u64>,
    reply_share: Option<Spanned<f64>>,
    reaction_share: Option<Spanned<f64>>,
    edit_share: Option<Spanned<f64>>,
    redaction_share: Option<Spanned<f64>>,
    receipt_share: Option<Spanned<f64>>,
    registration: Option<Spanned<String>>,
    load: Option<Spanned<String>>,
    history: Option<Spanned<String>>,
    presence: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    kind: Option<Spanned<String>>,
    version: Option<Spanned<String>>,
    database: Option<Spanned<String>>,
    postgres_url: Option<Spanned<String>>,
    binary: Option<Spanned<String>>,
    profile: Option<Spanned<String>>,
    config_template: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    synapse_config: Option<Spanned<toml::Table>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoot {
    repeats: Option<Spanned<u64>>,
    warmup: Option<Spanned<u64>>,
    cache: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    shutdown_timeout: Option<Spanned<String>>,
    crash_restarts: Option<Spanned<u64>>,
    crash_writes: Option<Spanned<u64>>,
    background: Option<Spanned<String>>,
    restore: Option<Spanned<String>>,
    slow_statements: Option<Spanned<String>>,
    meter: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    herd: Option<Spanned<RawHerd>>,
    triggered: Option<Spanned<RawTriggered>>,
    steady: Option<Spanned<RawSteady>>,
    catchup: Option<Spanned<RawCatchup>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatchup {
    readers: Spanned<u64>,
    protocol: Option<Spanned<String>>,
    backlog: Spanned<u64>,
    page: Option<Spanned<u64>>,
    timeline_limit: Option<Spanned<u64>>,
    request_timeout: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTriggered {
    clients: Spanned<u64>,
    protocol: Option<Spanned<String>>,
    poll_timeout: Option<Spanned<String>>,
    connect_ramp: Option<Spanned<String>>,
    chatter_rate: Option<Spanned<f64>>,
    baseline: Option<Spanned<String>>,
    observe: Option<Spanned<String>>,
    reaction: Option<Spanned<String>>,
    resync_timeout: Option<Spanned<String>>,
    retries: Option<Spanned<u64>>,
    retry_delay: Option<Spanned<String>>,
    tolerance: Option<Spanned<f64>>,
    hold: Option<Spanned<String>>,
    slack: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSteady {
    clients: Spanned<u64>,
    protocol: Option<Spanned<String>>,
    senders: Option<Spanned<u64>>,
    rate: Spanned<f64>,
    ramp_to: Option<Spanned<f64>>,
    ramp_over: Option<Spanned<String>>,
    duration: Option<Spanned<String>>,
    poll_timeout: Option<Spanned<String>>,
    connect_ramp: Option<Spanned<String>>,
    drain: Option<Spanned<String>>,
    timeline_limit: Option<Spanned<u64>>,
    poll_pause: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    profiler: Option<Spanned<String>>,
    boot: Option<bool>,
    load: Option<bool>,
    rate: Option<Spanned<u64>>,
    boot_runs: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHerd {
    clients: Spanned<u64>,
    protocol: Option<Spanned<String>>,
    sync: Option<Spanned<String>>,
    request_timeout: Option<Spanned<String>>,
    ramp: Option<Spanned<String>>,
    lazy_load_members: Option<Spanned<bool>>,
}

// ---------------------------------------------------------------------------------------------
// Validated scenario (what the rest of the crate uses).
// ---------------------------------------------------------------------------------------------

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

fn default_min_delta_ms() -> f64 {
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
fn parse_threshold(metric: &str, text: &str, phases: &[String]) -> Result<Threshold, String> {
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
        let (num, unit) = rest
            .find(|c: char| c.is_ascii_alphabetic())
            .map_or((rest, ""), |i| rest.split_at(i));
        let k: f64 = match unit.trim() {
            "" | "B" => 1.0,
            "KiB" => 1024.0,
            "MiB" => 1024.0 * 1024.0,
            "GiB" => 1024.0 * 1024.0 * 1024.0,
            other => return Err(format!("{other:?} is not a size unit: B, KiB, MiB, GiB")),
        };
        num.trim()
            .parse::<f64>()
            .map_err(|_| format!("{rest:?} is not a size, e.g. \"512MiB\""))?
            * k
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
}

impl SweepDimension {
    pub const ALL: [(&'static str, SweepDimension); 6] = [
        ("users", SweepDimension::Users),
        ("rooms", SweepDimension::Rooms),
        ("big_room_members", SweepDimension::BigRoomMembers),
        ("messages_per_room", SweepDimension::MessagesPerRoom),
        ("dm_pairs", SweepDimension::DmPairs),
        ("state_events_per_room", SweepDimension::StateEventsPerRoom),
    ];

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
    /// Ascending, at least three (a fitted exponent needs a confidence interval).
    pub values: Vec<u64>,
    /// Run the scenario's workloads at every point too (default: boots only).
    pub workloads: bool,
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
        }
        d
    }

    /// The constraints between fields (each field's own range is checked when parsing).
    pub fn check(&self) -> Result<(), String> {
        if self.users == 0 || self.big_room_members == 0 {
            return Err("users and big_room_members must be at least 1".into());
        }
        if self.big_room_members > self.users {
            return Err(format!(
                "big_room_members ({}) cannot come from {} users",
                self.big_room_members, self.users
            ));
        }
        if self.users < 2 && (self.rooms > 0 || self.dm_pairs > 0) {
            return Err("rooms and DM pairs need at least 2 users".into());
        }
        if self.state_rooms > self.rooms {
            return Err(format!(
                "state_rooms ({}) exceeds rooms ({})",
                self.state_rooms, self.rooms
            ));
        }
        Ok(())
    }
}

/// The synthetic dataset to build. Deterministic from `seed`.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct DatasetSpec {
    pub seed: u64,
    pub users: u64,
    /// Rooms besides the big room.
    pub rooms: u64,
    /// Members of the one big room (the first `big_room_members` users).
    pub big_room_members: u64,
    /// Mean timeline events per room (messages, replies, reactions, edits, redactions);
    /// each room's count is drawn from a log-normal around it.
    pub messages_per_room: u64,
    /// Upper bound of an ordinary room's size (sizes follow a power law between 2 and this).
    pub max_room_members: u64,
    /// Share of users with a display name (set before they join rooms).
    pub display_name_share: f64,
    /// Share of users with an avatar (an `mxc://` URL in their profile, set before they join
    /// rooms). Left out of the spec's hash when 0, so older fixtures keep their keys.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub avatar_share: f64,
    /// Share of users who set their presence online.
    pub presence_share: f64,
    /// Share of users with a second device (a second login).
    pub multi_device_share: f64,
    /// Share of ordinary rooms that are private (members are invited, then join).
    pub private_room_share: f64,
    /// Direct-message rooms between two users.
    pub dm_pairs: u64,
    /// Ordinary rooms (the first ones) that carry large state.
    pub state_rooms: u64,
    /// Custom state events in each of those rooms.
    pub state_events_per_room: u64,
    /// Shares of timeline events that are replies, reactions, edits and redactions (the rest
    /// are plain messages).
    pub reply_share: f64,
    pub reaction_share: f64,
    pub edit_share: f64,
    pub redaction_share: f64,
    /// Share of memberships that send a read receipt (at a random point of the timeline).
    pub receipt_share: f64,
    /// `appservice`: users are registered by an application service (no password hashing);
    /// `password`: through `/register` with a password and `m.login.dummy`.
    pub registration: Registration,
    /// `api`: through the client-server API (any server); `direct`: rows written straight into
    /// a stopped Synapse's database (see `import`). Left out of fixture keys when `api`, so the
    /// fixtures built before the key existed keep their keys.
    #[serde(default, skip_serializing_if = "LoadMethod::is_api")]
    pub load: LoadMethod,
    /// The span of time the rooms' history covers, in seconds (`history = "90d"`): events are
    /// dated inside it, monotonic per room, with a diurnal rhythm, the last one in the past.
    /// Honoured by the direct import; the API cannot backdate events (they carry the time
    /// they were sent).
    /// Left out of the spec's hash when it is the default, so specs keep their hashes.
    #[serde(
        default = "default_history",
        skip_serializing_if = "is_default_history"
    )]
    pub history_seconds: u64,
    /// What happens to the planned presence during a run: `tracked` (the server's own
    /// timeouts apply: Synapse turns planned "online" users offline 30 s after each boot unless
    /// they sync) or `stays` (Synapse's presence is untracked: the planned states hold for the
    /// whole run, and syncs no longer change them). Left out of fixture keys when `tracked`.
    #[serde(default, skip_serializing_if = "PresenceMode::is_tracked")]
    pub presence: PresenceMode,
}

/// `[dataset] presence`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    schemars::JsonSchema,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PresenceMode {
    #[default]
    Tracked,
    Stays,
}

impl PresenceMode {
    pub fn is_tracked(&self) -> bool {
        *self == PresenceMode::Tracked
    }
}

/// The default `[dataset] history`: 90 days.
pub const DEFAULT_HISTORY_SECONDS: u64 = 90 * 86_400;

fn default_history() -> u64 {
    DEFAULT_HISTORY_SECONDS
}

fn is_default_history(s: &u64) -> bool {
    *s == DEFAULT_HISTORY_SECONDS
}

/// How a dataset gets into the server.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    schemars::JsonSchema,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum LoadMethod {
    #[default]
    Api,
    Direct,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl LoadMethod {
    pub fn is_api(&self) -> bool {
        *self == LoadMethod::Api
    }
}

/// How the loader registers users.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    schemars::JsonSchema,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    Appservice,
    Password,
}

impl DatasetSpec {
    /// A spec with the model's default shares (what a scenario gets for keys it leaves out).
    pub fn new(seed: u64, users: u64, rooms: u64, big_room_members: u64, messages: u64) -> Self {
        Self {
            seed,
            users,
            rooms,
            big_room_members,
            messages_per_room: messages,
            max_room_members: users.clamp(2, 50),
            display_name_share: 0.8,
            avatar_share: 0.0,
            presence_share: 0.2,
            multi_device_share: 0.1,
            private_room_share: 0.3,
            dm_pairs: 0,
            state_rooms: 0,
            state_events_per_room: 0,
            reply_share: 0.1,
            reaction_share: 0.1,
            edit_share: 0.03,
            redaction_share: 0.02,
            receipt_share: 0.5,
            registration: Registration::Appservice,
            load: LoadMethod::Api,
            history_seconds: DEFAULT_HISTORY_SECONDS,
            presence: PresenceMode::Tracked,
        }
    }
}

impl DatasetSpec {
    /// A stable hash of the spec: part of every fixture key and printed in every result.
    pub fn spec_hash(&self) -> String {
        let json = serde_json::to_vec(self).expect("a DatasetSpec always serializes");
        hex::encode(&Sha256::digest(&json)[..8])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerKind {
    /// Installed by hsbench from PyPI into its cache.
    Synapse,
    Conduwuit,
    Continuwuity,
    Tuwunel,
    Conduit,
    /// Any command, with a profile of the user's (`[server] profile`).
    Generic,
}

impl ServerKind {
    pub const ALL: &[ServerKind] = &[
        ServerKind::Synapse,
        ServerKind::Conduwuit,
        ServerKind::Continuwuity,
        ServerKind::Tuwunel,
        ServerKind::Conduit,
        ServerKind::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServerKind::Synapse => "synapse",
            ServerKind::Conduwuit => "conduwuit",
            ServerKind::Continuwuity => "continuwuity",
            ServerKind::Tuwunel => "tuwunel",
            ServerKind::Conduit => "conduit",
            ServerKind::Generic => "generic",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// An existing PostgreSQL database on this machine (`[server] postgres_url`).
#[derive(Debug, Clone, PartialEq, Eq, schemars::JsonSchema, serde::Serialize)]
pub struct PgUrl {
    pub host: String,
    pub port: u16,
    pub user: String,
    #[serde(skip)]
    pub password: Option<String>,
    pub database: String,
}

#[derive(Debug, Clone, schemars::JsonSchema, serde::Serialize)]
pub struct ServerSpec {
    pub kind: ServerKind,
    pub version: String,
    pub database: DatabaseKind,
    /// `None` with `Postgres`: hsbench starts a private cluster.
    pub postgres_url: Option<PgUrl>,
    /// The server's binary, for every kind but Synapse (absolute: resolved against the
    /// scenario's directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<PathBuf>,
    /// A profile file of the user's, instead of the built-in one (required for `generic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<PathBuf>,
    /// A config template of the user's, instead of the profile's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_template: Option<PathBuf>,
    /// Synapse from a source checkout (installed into a venv of its own) instead of PyPI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
    /// Synapse config keys of the scenario's (`[server.synapse_config]`), merged over hsbench's
    /// own for every boot on the finished dataset (never while the fixture is built, so one
    /// fixture serves every configuration). Keys hsbench owns are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synapse_config: Option<serde_json::Value>,
}

/// Synapse config keys hsbench sets itself and a scenario may not override: where the server
/// listens, its data, its identity and its logging.
pub const SYNAPSE_RESERVED_KEYS: [&str; 10] = [
    "listeners",
    "database",
    "server_name",
    "media_store_path",
    "signing_key_path",
    "pid_file",
    "log_config",
    "no_redirect_stdio",
    "app_service_config_files",
    "trusted_key_servers",
];

impl ServerSpec {
    /// The server profile this spec names: its own file, or the one shipped for its kind.
    pub fn profile(
        &self,
    ) -> Result<crate::server::ServerProfile, crate::server::profile::ProfileError> {
        match &self.profile {
            Some(p) => crate::server::ServerProfile::load(p),
            None => Ok(crate::server::ServerProfile::builtin(self.kind.as_str())
                .expect("every kind but generic has a shipped profile (generic requires one)")),
        }
    }

    fn synapse(version: String) -> Self {
        Self {
            kind: ServerKind::Synapse,
            version,
            database: DatabaseKind::Sqlite,
            postgres_url: None,
            binary: None,
            profile: None,
            config_template: None,
            source: None,
            synapse_config: None,
        }
    }
}

/// `${NAME}` replaced by the environment variable `NAME` (a CI job points `binary` at the build
/// it made). An unset variable is an error.
fn expand_env(text: &str) -> Result<String, String> {
    let re = regex::Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}").expect("valid regex");
    let mut missing = None;
    let out = re.replace_all(text, |c: &regex::Captures| match std::env::var(&c[1]) {
        Ok(v) => v,
        Err(_) => {
            missing.get_or_insert_with(|| c[1].to_string());
            String::new()
        }
    });
    match missing {
        Some(name) => Err(format!("environment variable {name} is not set")),
        None => Ok(out.into_owned()),
    }
}

/// `a/b/../c` → `a/c`, lexically (symlinks kept: a virtualenv's python must be run through its
/// own link).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Parse `postgresql://user[:password]@host[:port]/database`; the host must be loopback.
fn parse_pg_url(s: &str) -> Result<PgUrl, String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(format!(
            "scheme must be postgresql://, not {}://",
            url.scheme()
        ));
    }
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_matches(['[', ']'])
        .to_string();
    if !matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1") {
        return Err(format!(
            "host {host:?} is not loopback: hsbench only talks to 127.0.0.1, localhost or ::1"
        ));
    }
    let database = url.path().trim_start_matches('/').to_string();
    if database.is_empty() || url.username().is_empty() {
        return Err("name the user and the database: postgresql://USER@127.0.0.1:5432/DB".into());
    }
    Ok(PgUrl {
        host,
        port: url.port().unwrap_or(5432),
        user: url.username().to_string(),
        password: url.password().map(str::to_string),
        database,
    })
}

/// Page-cache state of the timed boots.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CacheMode {
    /// Boots follow each other: the server's files stay in the page cache.
    Warm,
    /// Before each boot the server's files are evicted from the page cache.
    Cold,
    /// Each repeat is a cold boot followed by a warm one; reported separately.
    Both,
}

#[derive(Debug, Clone, schemars::JsonSchema, serde::Serialize)]
pub struct BootPlan {
    pub repeats: u32,
    /// Boots before the timed ones, recorded but left out of the statistics.
    pub warmup: u32,
    pub cache: CacheMode,
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub timeout: Duration,
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub shutdown_timeout: Duration,
    /// Crash-restart cycles after the timed boots: boot, write, SIGKILL the process group with
    /// writes in flight, then time the next boot (recovery).
    #[serde(default)]
    pub crash_restarts: u32,
    /// Messages sent into the big room before the kill; the kill comes once half of them were
    /// acknowledged, so the rest are in flight. 0: kill as soon as the server is ready.
    #[serde(default)]
    pub crash_writes: u32,
    /// After ready, each timed boot waits at most this long for the start-up background work
    /// to finish (the profile's `[background]` marker, else CPU idle). `None`: no wait.
    #[serde(serialize_with = "opt_secs")]
    #[schemars(with = "Option<f64>")]
    pub background: Option<Duration>,
    /// When the data directory is restored from the fixture: once per run, or before every boot
    /// (for servers whose start-up changes what the next start-up sees, e.g. a presence reset
    /// that leaves every user offline).
    pub restore: RestoreMode,
    /// On a private PostgreSQL cluster: every statement of a timed boot that runs at least this
    /// long is logged by PostgreSQL (`log_min_duration_statement`) and the slowest are attached
    /// to the boot. `None`: not logged (the default off PostgreSQL, or `"off"`).
    #[serde(serialize_with = "opt_secs")]
    #[schemars(with = "Option<f64>")]
    pub slow_statements: Option<Duration>,
    /// What the timed boots measure: wall time, instructions under the work meter, or both.
    pub meter: MeterMode,
}

/// `[boot] meter`: what the timed boots measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, schemars::JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MeterMode {
    /// Wall time only (the default).
    #[default]
    Time,
    /// Instructions only: each of the `repeats` boots runs under the work meter (callgrind),
    /// and no unmetered boots run.
    Work,
    /// The timed boots as with `time`, then `repeats` boots under the work meter.
    Both,
}

impl MeterMode {
    /// Whether boots run under the work meter.
    pub fn work(self) -> bool {
        self != MeterMode::Time
    }

    /// Whether unmetered timed boots run.
    pub fn time(self) -> bool {
        self != MeterMode::Work
    }
}

/// `[boot] slow_statements` on a private PostgreSQL cluster when the scenario does not say.
pub const DEFAULT_SLOW_STATEMENTS: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreMode {
    Once,
    Each,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SyncKind {
    /// `/sync` with no `since` token: the first sync of a new login.
    Initial,
    /// `/sync?since=<token>&full_state=true`: what naive clients do after a state change.
    FullState,
}

/// What a triggered herd's client does when it sees the trigger.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ReactionKind {
    /// v2: `/sync` with no `since` token.
    Initial,
    /// v2: `/sync?since=<token>&full_state=true`.
    FullState,
    /// Sliding sync: open the room (a room subscription with all of its state and a 20-event
    /// timeline).
    Subscribe,
    /// Sliding sync: start the connection over (the room list loaded again).
    Reconnect,
}

impl ReactionKind {
    /// What the clients do, as reports say it.
    pub fn describe(self) -> &'static str {
        match self {
            ReactionKind::Initial => "initial re-sync",
            ReactionKind::FullState => "full-state re-sync",
            ReactionKind::Subscribe => "sliding sync room subscription (all state)",
            ReactionKind::Reconnect => "sliding sync reconnection (room list reloaded)",
        }
    }
}

/// The timeline limit of every room of a sliding sync room list once it grows past its first
/// page (matrix-rust-sdk's room list service); `load::sliding` sends it.
pub const SLIDING_LIST_TIMELINE_LIMIT: u32 = 10;

/// The sync protocol a workload's clients speak.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    schemars::JsonSchema,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SyncProtocol {
    /// `GET /_matrix/client/v3/sync`.
    #[default]
    V2,
    /// Simplified sliding sync (MSC4186), as matrix-rust-sdk's room list sends it.
    Sliding,
}

impl SyncProtocol {
    /// The name scenario files and reports use.
    pub fn name(self) -> &'static str {
        match self {
            SyncProtocol::V2 => "v2",
            SyncProtocol::Sliding => "sliding",
        }
    }
}

#[derive(Debug, Clone, schemars::JsonSchema, serde::Serialize)]
pub struct HerdSpec {
    pub clients: u64,
    /// `/sync` v2 or sliding sync.
    pub protocol: SyncProtocol,
    pub sync: SyncKind,
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub request_timeout: Duration,
    /// Client i's request is due at `ramp * i / clients` after the release (0: all at once).
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub ramp: Duration,
    /// Send the filter real clients send (`lazy_load_members`, a limited timeline) instead of
    /// none.
    pub lazy_load_members: bool,
}

/// A workload table of the scenario.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    schemars::JsonSchema,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    Herd,
    Triggered,
    Steady,
    Catchup,
}

/// One workload of a scenario, validated.
#[derive(Debug, Clone, schemars::JsonSchema, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Workload {
    Herd(HerdSpec),
    Triggered(TriggeredSpec),
    Steady(SteadySpec),
    Catchup(CatchupSpec),
}

impl Workload {
    pub fn kind(&self) -> WorkloadKind {
        match self {
            Workload::Herd(_) => WorkloadKind::Herd,
            Workload::Triggered(_) => WorkloadKind::Triggered,
            Workload::Steady(_) => WorkloadKind::Steady,
            Workload::Catchup(_) => WorkloadKind::Catchup,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
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

impl WorkloadKind {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Herd => "herd",
            WorkloadKind::Triggered => "triggered",
            WorkloadKind::Steady => "steady",
            WorkloadKind::Catchup => "catchup",
        }
    }
}

/// `[workload.triggered]`: the matrix.org outage on demand. `clients` users of the big room sit
/// in long-poll incremental `/sync` loops while a chatter sender posts into the big room at a
/// fixed rate; after `baseline` one client sends a state event (the trigger); every client that
/// sees it re-syncs the way naive SDKs did (`reaction`), with a client timeout and retries.
/// Recovery is computed from the chatter's deliveries (see `recovery.rs`).
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize)]
pub struct TriggeredSpec {
    pub clients: u64,
    /// `/sync` v2 or sliding sync long polls.
    pub protocol: SyncProtocol,
    /// Long-poll timeout of the incremental syncs.
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub poll_timeout: Duration,
    /// The clients start their first long poll spread evenly over this (0: all at once); the
    /// workload's time zero comes after it, so the measurement sees parked clients only.
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub connect_ramp: Duration,
    /// Chatter messages per second into the big room (open model), the whole time.
    pub chatter_rate: f64,
    /// Steady state before the trigger (the recovery baseline).
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub baseline: Duration,
    /// How long to watch after the trigger.
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub observe: Duration,
    /// What a client does on seeing the trigger: a `full_state` re-sync from its token, or an
    /// `initial` sync without one.
    pub reaction: ReactionKind,
    /// Client timeout of one re-sync attempt.
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub resync_timeout: Duration,
    /// Attempts after a failed or timed-out re-sync.
    pub retries: u32,
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub retry_delay: Duration,
    /// Recovery: allowed relative worsening of delivery p90 and throughput.
    pub tolerance: f64,
    /// Recovery: window length that must be healthy.
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub hold: Duration,
    /// Recovery: absolute slack added to the latency limit.
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub slack: Duration,
    /// Interval of the interval log and the recovery computation.
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub interval: Duration,
}

/// `[workload.steady]`: `clients` users in long-poll `/sync` loops; the first `senders` of them
/// send messages into their own rooms at `rate` per second (open model; ramping to `ramp_to`
/// over `ramp_over` when given) for `duration`; every syncing member of the room should receive
/// each message (delivery latency), and hsbench waits up to `drain` for the last deliveries.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize)]
pub struct SteadySpec {
    pub clients: u64,
    /// `/sync` v2 or sliding sync long polls.
    pub protocol: SyncProtocol,
    pub senders: u64,
    pub arrivals: crate::scenario::arrivals::Arrivals,
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub duration: Duration,
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub poll_timeout: Duration,
    /// The clients start their first long poll spread evenly over this (0: all at once); the
    /// workload's time zero comes after it, so the measurement sees parked clients only.
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub connect_ramp: Duration,
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub drain: Duration,
    /// v2 receivers' sync filter: at most this many of a room's new events per answer (more
    /// leave a gap, which the receiver pages back through). `None`: no filter, the server's
    /// default (10 on Synapse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline_limit: Option<u64>,
    /// Each receiver waits this long after every answer before its next long poll (a client in
    /// the background or on a slow network); 0 by default. Longer than the time between two
    /// of a room's messages, it makes gaps certain whatever the server's speed.
    #[serde(
        with = "humantime_serde_secs",
        skip_serializing_if = "Duration::is_zero"
    )]
    #[schemars(with = "f64")]
    pub poll_pause: Duration,
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub interval: Duration,
}

/// `[workload.catchup]`: `readers` big-room members come back to `backlog` unread messages,
/// page back through them with `/messages` (`page` at a time) and send a read receipt.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize)]
pub struct CatchupSpec {
    pub readers: u64,
    /// How a reader syncs: a v2 initial `/sync`, or a sliding sync room list then the room
    /// opened (a room subscription), as matrix-rust-sdk does.
    pub protocol: SyncProtocol,
    pub backlog: u64,
    pub page: u64,
    /// The room's timeline limit on first sight: the v2 initial sync's (with member
    /// lazy-loading, as real clients ask) or the sliding room subscription's.
    pub timeline_limit: u64,
    /// A reader's whole catch-up gives up after this long.
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub request_timeout: Duration,
    #[serde(with = "humantime_serde_secs")]
    #[schemars(with = "f64")]
    pub interval: Duration,
}

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

fn opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

mod humantime_serde_secs {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------------------------

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

struct Locator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Locator<'_> {
    fn at(&self, span: Range<usize>, field: &str, message: impl Into<String>) -> ScenarioError {
        let (line, column) = line_col(self.text, span.start);
        ScenarioError {
            path: self.path.to_path_buf(),
            line,
            column,
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn toml_error(&self, field: &str, e: &toml::de::Error) -> ScenarioError {
        let span = e.span().unwrap_or(0..0);
        let field = if field.is_empty() || field == "." {
            "(document)"
        } else {
            field
        };
        self.at(span, field, e.message().trim())
    }
}

/// The largest dataset hsbench plans: far beyond the 150k users the seeds name, and small
/// enough that a plan's totals stay countable.
pub const MAX_USERS: u64 = 10_000_000;
pub const MAX_ROOMS: u64 = 1_000_000;
pub const MAX_TIMELINE_EVENTS: u64 = 100_000_000;

fn positive(loc: &Locator, v: &Spanned<u64>, field: &str) -> Result<u64, ScenarioError> {
    if *v.get_ref() == 0 {
        return Err(loc.at(v.span(), field, "must be at least 1"));
    }
    Ok(*v.get_ref())
}

/// An optional number in `[lo, hi]`.
fn share_in(
    loc: &Locator,
    v: &Option<Spanned<f64>>,
    field: &str,
    default: f64,
    lo: f64,
    hi: f64,
) -> Result<f64, ScenarioError> {
    let Some(v) = v else { return Ok(default) };
    let x = *v.get_ref();
    if !(lo..=hi).contains(&x) {
        return Err(loc.at(
            v.span(),
            field,
            format!("{x} is out of range: between {lo} and {hi}"),
        ));
    }
    Ok(x)
}

fn duration(
    loc: &Locator,
    v: &Option<Spanned<String>>,
    field: &str,
    default: Duration,
) -> Result<Duration, ScenarioError> {
    let Some(v) = v else { return Ok(default) };
    let d = humantime::parse_duration(v.get_ref()).map_err(|e| {
        loc.at(
            v.span(),
            field,
            format!(
                "{:?} is not a duration ({e}); write e.g. \"90s\", \"2m\" or \"500ms\"",
                v.get_ref()
            ),
        )
    })?;
    if d.is_zero() {
        return Err(loc.at(v.span(), field, "must be longer than zero"));
    }
    Ok(d)
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
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
[dataset]
seed = 7
users = 10
rooms = 2
big_room_members = 5
messages_per_room = 3

[server]
version = "1.163.2"

[boot]
repeats = 2
timeout = "90s"

[workload.herd]
clients = 4
sync = "full_state"
"#;

    fn err(text: &str) -> ScenarioError {
        parse(Path::new("s.toml"), text).expect_err("must fail")
    }

    #[test]
    fn boot_meter_parses_and_a_bad_value_names_its_field_and_line() {
        let s = parse(Path::new("s.toml"), GOOD).unwrap();
        assert_eq!(s.boot.meter, MeterMode::Time, "time unless asked");
        for (v, want) in [
            ("time", MeterMode::Time),
            ("work", MeterMode::Work),
            ("both", MeterMode::Both),
        ] {
            let text = GOOD.replace("repeats = 2", &format!("repeats = 2\nmeter = \"{v}\""));
            assert_eq!(parse(Path::new("s.toml"), &text).unwrap().boot.meter, want);
        }
        let e = err(&GOOD.replace("repeats = 2", "repeats = 2\nmeter = \"cycles\""));
        assert_eq!((e.field.as_str(), e.line), ("boot.meter", 15), "{e}");
        assert!(e.to_string().contains("\"cycles\""), "{e}");
    }

    #[test]
    fn a_scenario_goes_over_either_protocol() {
        let smoke =
            load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/smoke.toml")).unwrap();
        assert!(smoke.speaks_sync());
        let sliding = smoke.over_protocol(SyncProtocol::Sliding);
        let herd = sliding.herd().unwrap();
        assert_eq!(
            (herd.protocol, herd.sync),
            (SyncProtocol::Sliding, SyncKind::Initial)
        );
        let t = sliding.triggered().unwrap();
        assert_eq!(
            (t.protocol, t.reaction),
            (SyncProtocol::Sliding, ReactionKind::Subscribe)
        );
        assert_eq!(sliding.dataset, smoke.dataset, "one dataset");
        let back = sliding.over_protocol(SyncProtocol::V2);
        let t = back.triggered().unwrap();
        assert_eq!(
            (t.protocol, t.reaction),
            (SyncProtocol::V2, ReactionKind::FullState)
        );
        assert_eq!(back.herd().unwrap().clients, smoke.herd().unwrap().clients);
        if let Some(c) = sliding.catchup() {
            assert_eq!(c.protocol, SyncProtocol::Sliding);
            assert_eq!(back.catchup().unwrap().protocol, SyncProtocol::V2);
        }
    }

    #[test]
    fn history_and_presence_are_checked_where_they_are_written() {
        let with = |extra: &str| {
            GOOD.replace(
                "messages_per_room = 3",
                &format!("messages_per_room = 3\n{extra}"),
            )
        };
        let sc = parse(Path::new("s.toml"), GOOD).unwrap();
        assert_eq!(sc.dataset.history_seconds, DEFAULT_HISTORY_SECONDS);
        assert_eq!(sc.dataset.presence, PresenceMode::Tracked);
        let sc = parse(
            Path::new("s.toml"),
            &with("history = \"30d\"\npresence = \"stays\""),
        )
        .unwrap();
        assert_eq!(sc.dataset.history_seconds, 30 * 86_400);
        assert_eq!(sc.dataset.presence, PresenceMode::Stays);
        for (extra, line) in [
            ("history = \"10m\"", 9),
            ("history = \"soon\"", 9),
            ("presence = \"always\"", 9),
        ] {
            let e = err(&with(extra));
            assert_eq!(e.line, line, "{extra}: {e}");
            assert!(e.field.starts_with("dataset."), "{extra}: {e}");
        }
        let native = with("presence = \"stays\"").replace(
            "version = \"1.163.2\"",
            "kind = \"tuwunel\"\nbinary = \"/bin/true\"",
        );
        let e = err(&native);
        assert_eq!(e.field, "dataset.presence", "{e}");
        assert!(e.to_string().contains("tuwunel"), "{e}");
    }

    #[test]
    fn dataset_load_is_api_unless_direct_and_direct_needs_synapse_on_its_own_database() {
        let sc = parse(Path::new("s.toml"), GOOD).unwrap();
        assert_eq!(sc.dataset.load, LoadMethod::Api);
        let direct = GOOD.replace(
            "messages_per_room = 3",
            "messages_per_room = 3\nload = \"direct\"",
        );
        let sc = parse(Path::new("s.toml"), &direct).unwrap();
        assert_eq!(sc.dataset.load, LoadMethod::Direct);
        // `api` stays out of the spec's hash: fixtures built before the key keep their keys.
        let api = GOOD.replace(
            "messages_per_room = 3",
            "messages_per_room = 3\nload = \"api\"",
        );
        let a = parse(Path::new("s.toml"), &api).unwrap();
        assert_eq!(
            a.dataset.spec_hash(),
            parse(Path::new("s.toml"), GOOD)
                .unwrap()
                .dataset
                .spec_hash()
        );
        assert_ne!(a.dataset.spec_hash(), sc.dataset.spec_hash());
        let e = err(&GOOD.replace(
            "messages_per_room = 3",
            "messages_per_room = 3\nload = \"bulk\"",
        ));
        assert_eq!((e.field.as_str(), e.line), ("dataset.load", 9));
        // Into the private PostgreSQL cluster, or a user's (empty) database on this machine.
        let pg = direct.replace("[server]", "[server]\ndatabase = \"postgres\"");
        let sc = parse(Path::new("s.toml"), &pg).unwrap();
        assert_eq!(
            (sc.dataset.load, sc.server.database),
            (LoadMethod::Direct, DatabaseKind::Postgres)
        );
        let external = pg.replace(
            "database = \"postgres\"",
            "database = \"postgres\"\npostgres_url = \"postgresql://u@127.0.0.1/db\"",
        );
        let sc = parse(Path::new("s.toml"), &external).unwrap();
        assert_eq!(sc.dataset.load, LoadMethod::Direct);
        assert!(sc.server.postgres_url.is_some());
    }

    #[test]
    fn synapse_config_is_kept_as_json_and_refuses_keys_hsbench_owns() {
        let text = GOOD.replace(
            "[boot]",
            "[server.synapse_config]\npresence = { enabled = false }\ncaches = { global_factor = 2.0 }\n\n[boot]",
        );
        let s = parse(Path::new("s.toml"), &text).unwrap();
        assert_eq!(
            s.server.synapse_config,
            Some(serde_json::json!({
                "presence": {"enabled": false},
                "caches": {"global_factor": 2.0}
            }))
        );
        let e = err(&GOOD.replace(
            "[boot]",
            "[server.synapse_config]\nlisteners = []\n\n[boot]",
        ));
        assert_eq!(e.field, "server.synapse_config.listeners");
        assert_eq!(e.line, 13);
        assert!(e.message.contains("reserved"), "{e}");
        let native = GOOD.replace(
            "[server]\nversion = \"1.163.2\"",
            "[server]\nkind = \"tuwunel\"\nbinary = \"Cargo.toml\"\n[server.synapse_config]\npresence = { enabled = false }",
        );
        let e = err(&native);
        assert_eq!(e.field, "server.synapse_config");
    }

    #[test]
    fn load_workloads_parse_in_file_order_with_defaults() {
        let text = GOOD.replace(
            "[workload.herd]",
            "[workload.steady]\nclients = 8\nrate = 5\nramp_to = 20\nramp_over = \"10s\"\n\n[workload.triggered]\nclients = 5\nchatter_rate = 1.5\n\n[workload.herd]",
        );
        let s = parse(Path::new("s.toml"), &text).unwrap();
        assert_eq!(
            s.workloads.iter().map(Workload::kind).collect::<Vec<_>>(),
            [
                WorkloadKind::Steady,
                WorkloadKind::Triggered,
                WorkloadKind::Herd
            ]
        );
        let t = s.triggered().unwrap().clone();
        assert_eq!(
            (t.clients, t.chatter_rate, t.reaction, t.retries),
            (5, 1.5, ReactionKind::FullState, 3)
        );
        assert_eq!(t.poll_timeout, Duration::from_secs(30));
        assert_eq!(t.connect_ramp, Duration::ZERO);
        assert_eq!(t.interval, Duration::from_secs(1));
        let st = s.steady().unwrap().clone();
        assert_eq!((st.clients, st.senders), (8, 8));
        assert_eq!(st.timeline_limit, None);
        assert_eq!(
            st.arrivals,
            crate::scenario::arrivals::Arrivals::Ramp {
                from: 5.0,
                to: 20.0,
                over_s: 10.0
            }
        );
    }

    #[test]
    fn load_workload_errors_name_the_field_and_line() {
        let with =
            |extra: &str| GOOD.replace("[workload.herd]", &format!("{extra}\n[workload.herd]"));
        let e = err(&with("[workload.triggered]\nclients = 6"));
        assert_eq!(e.field, "workload.triggered.clients");
        assert!(e.message.contains("big room"), "{e}");
        assert_eq!(e.line, 18);
        let e = err(&with("[workload.triggered]\nclients = 2\nchatter_rate = 0"));
        assert_eq!(e.field, "workload.triggered.chatter_rate");
        let e = err(&with(
            "[workload.triggered]\nclients = 2\nreaction = \"panic\"",
        ));
        assert_eq!(e.field, "workload.triggered.reaction");
        // Reactions belong to a protocol; protocols are named.
        let e = err(&with(
            "[workload.triggered]\nclients = 2\nprotocol = \"sliding\"\nreaction = \"full_state\"",
        ));
        assert_eq!(e.field, "workload.triggered.reaction");
        assert!(e.message.contains("subscribe"), "{e}");
        let e = err(&with(
            "[workload.triggered]\nclients = 2\nreaction = \"reconnect\"",
        ));
        assert!(e.message.contains("protocol = \"sliding\""), "{e}");
        let e = err(&with(
            "[workload.steady]\nclients = 4\nrate = 1\nprotocol = \"v3\"",
        ));
        assert_eq!(e.field, "workload.steady.protocol");
        assert!(e.message.contains("\"sliding\""), "{e}");
        let s = parse(
            Path::new("s.toml"),
            &with("[workload.triggered]\nclients = 2\nprotocol = \"sliding\""),
        )
        .unwrap();
        let t = s.triggered().unwrap();
        assert_eq!(
            (t.protocol, t.reaction),
            (SyncProtocol::Sliding, ReactionKind::Subscribe)
        );
        let e = err(&GOOD.replace("[workload.herd]", "[workload.herd]\nprotocol = \"sliding\""));
        assert_eq!(e.field, "workload.herd.sync");
        let e = err(&GOOD.replace(
            "sync = \"full_state\"",
            "protocol = \"sliding\"\nlazy_load_members = true",
        ));
        assert_eq!(e.field, "workload.herd.lazy_load_members");
        let e = err(&with("[workload.triggered]\nclients = 2\ntolerance = 1.5"));
        assert_eq!(e.field, "workload.triggered.tolerance");
        let e = err(&with(
            "[workload.triggered]\nclients = 2\nbaseline = \"1s\"",
        ));
        assert_eq!(e.field, "workload.triggered.baseline");
        let e = err(&with(
            "[workload.steady]\nclients = 4\nsenders = 5\nrate = 1",
        ));
        assert_eq!(e.field, "workload.steady.senders");
        let e = err(&with(
            "[workload.steady]\nclients = 4\nrate = 1\nramp_over = \"5s\"",
        ));
        assert_eq!(e.field, "workload.steady.ramp_over");
        let steady = |extra: &str| {
            with(&format!(
                "[workload.steady]\nclients = 4\nrate = 1\n{extra}"
            ))
        };
        let limit = parse(Path::new("s.toml"), &steady("timeline_limit = 1")).unwrap();
        assert_eq!(limit.steady().unwrap().timeline_limit, Some(1));
        for bad in [
            "timeline_limit = 0",
            "timeline_limit = 1001",
            "protocol = \"sliding\"\ntimeline_limit = 20",
        ] {
            let e = err(&steady(bad));
            assert_eq!(e.field, "workload.steady.timeline_limit", "{bad}");
        }
        let e = err(&GOOD.replace("name = \"t\"", "name = \" \""));
        assert_eq!(e.field, "name", "{e}");
        let pause = parse(Path::new("s.toml"), &steady("poll_pause = \"2s\"")).unwrap();
        assert_eq!(pause.steady().unwrap().poll_pause, Duration::from_secs(2));
        assert_eq!(limit.steady().unwrap().poll_pause, Duration::ZERO);
        let e = err(&steady("poll_pause = \"soon\""));
        assert_eq!(e.field, "workload.steady.poll_pause");
        let e = err(&with("[workload.steady]\nclients = 4\nrate = 1\nbogus = 1"));
        assert!(e.to_string().contains("bogus"), "{e}");
        let c = parse(
            Path::new("s.toml"),
            &with("[workload.catchup]\nreaders = 2\nbacklog = 50"),
        )
        .unwrap()
        .catchup()
        .unwrap()
        .clone();
        assert_eq!(
            (c.readers, c.protocol, c.backlog, c.page, c.timeline_limit),
            (2, SyncProtocol::V2, 50, 100, 20)
        );
        let sliding = parse(
            Path::new("s.toml"),
            &with("[workload.catchup]\nreaders = 2\nbacklog = 50\nprotocol = \"sliding\""),
        )
        .unwrap();
        assert_eq!(sliding.catchup().unwrap().protocol, SyncProtocol::Sliding);
        let e = err(&with(
            "[workload.catchup]\nreaders = 2\nbacklog = 50\nprotocol = \"v5\"",
        ));
        assert_eq!(e.field, "workload.catchup.protocol");
        let e = err(&with("[workload.catchup]\nreaders = 50\nbacklog = 5"));
        assert_eq!(e.field, "workload.catchup.readers");
        let e = err(&with(
            "[workload.catchup]\nreaders = 2\nbacklog = 5\npage = 0",
        ));
        assert_eq!(e.field, "workload.catchup.page");
        // Thresholds on the new figures are known; cold. variants are not.
        let ok = GOOD.to_string() + "[thresholds]\n\"triggered.recovery\" = \"< 60s\"\n";
        assert!(parse(Path::new("s.toml"), &ok).is_ok());
        let bad = GOOD.to_string() + "[thresholds]\n\"cold.steady.send.p99\" = \"< 60s\"\n";
        assert!(parse(Path::new("s.toml"), &bad).is_err());
    }

    #[test]
    fn good_file_parses_with_defaults() {
        let s = parse(Path::new("s.toml"), GOOD).unwrap();
        assert_eq!(s.name, "t");
        assert_eq!(s.dataset.users, 10);
        assert_eq!(s.dataset.max_room_members, 10);
        assert_eq!(s.server.version, "1.163.2");
        assert_eq!(s.boot.repeats, 2);
        assert_eq!(s.boot.timeout, Duration::from_secs(90));
        assert_eq!(s.boot.shutdown_timeout, Duration::from_secs(30));
        let h = s.herd().unwrap().clone();
        assert_eq!((h.clients, h.sync), (4, SyncKind::FullState));
        assert_eq!(h.request_timeout, Duration::from_secs(120));
    }

    #[test]
    fn unknown_field_is_located() {
        let e = err(&GOOD.replace("rooms = 2", "rooms = 2\nromos = 3"));
        assert_eq!((e.line, e.column), (7, 1), "{e}");
        assert_eq!(e.field, "dataset.romos");
        assert!(e.message.contains("unknown field `romos`"), "{e}");
    }

    #[test]
    fn datasets_beyond_the_planned_size_are_located() {
        let e = err(&GOOD.replace("users = 10", "users = 99999999999999"));
        assert_eq!(
            (e.line, e.column, e.field.as_str()),
            (5, 9, "dataset.users"),
            "{e}"
        );
        assert!(e.message.contains("largest dataset"), "{e}");
        let e = err(&GOOD.replace("messages_per_room = 3", "messages_per_room = 99999999999"));
        assert_eq!(e.field, "dataset.messages_per_room", "{e}");
    }

    #[test]
    fn error_gates_parse_as_percentages() {
        let ok = parse(
            Path::new("s.toml"),
            &format!("{GOOD}\n[thresholds]\n\"herd.errors\" = \"< 5%\"\n"),
        )
        .unwrap();
        assert_eq!(ok.thresholds[0].limit, 5.0);
        let e = err(&format!(
            "{GOOD}\n[thresholds]\n\"herd.errors\" = \"< 5s\"\n"
        ));
        assert_eq!(e.field, "thresholds.herd.errors");
        assert!(e.message.contains("share of the requests"), "{e}");
    }

    #[test]
    fn wrong_type_is_located() {
        let e = err(&GOOD.replace("users = 10", "users = \"ten\""));
        assert_eq!((e.line, e.column), (5, 9), "{e}");
        assert_eq!(e.field, "dataset.users");
    }

    #[test]
    fn too_many_clients_is_located() {
        let e = err(&GOOD.replace("clients = 4", "clients = 11"));
        assert_eq!(e.field, "workload.herd.clients");
        assert_eq!((e.line, e.column), (18, 11), "{e}");
        assert!(e.message.contains("need as many users"), "{e}");
        let shown = e.to_string();
        assert!(
            shown.starts_with("s.toml:18:11: `workload.herd.clients`:"),
            "{shown}"
        );
    }

    #[test]
    fn bad_duration_and_enum_are_located() {
        let e = err(&GOOD.replace("\"90s\"", "\"soon\""));
        assert_eq!(
            (e.field.as_str(), e.line, e.column),
            ("boot.timeout", 15, 11)
        );
        let e = err(&GOOD.replace("\"full_state\"", "\"partial\""));
        assert_eq!(
            (e.field.as_str(), e.line, e.column),
            ("workload.herd.sync", 19, 8)
        );
    }

    #[test]
    fn missing_field_and_syntax_error_are_reported() {
        let e = err(&GOOD.replace("seed = 7\n", ""));
        assert_eq!(e.field, "dataset");
        assert!(e.message.contains("missing field `seed`"), "{e}");
        let e = err("[dataset\nseed = 1");
        assert_eq!(e.line, 1, "{e}");
    }

    #[test]
    fn zero_and_big_room_checks() {
        let e = err(&GOOD.replace("repeats = 2", "repeats = 0"));
        assert_eq!(e.field, "boot.repeats");
        let e = err(&GOOD.replace("big_room_members = 5", "big_room_members = 50"));
        assert_eq!(e.field, "dataset.big_room_members");
        let e = err(&GOOD.replace("[server]", "[server]\ndatabase = \"mysql\""));
        assert_eq!((e.field.as_str(), e.line), ("server.database", 11));
    }

    #[test]
    fn boot_background_and_crash_restarts_parse() {
        let s = parse(
            Path::new("s.toml"),
            &GOOD.replace(
                "[boot]",
                "[boot]\nbackground = \"45s\"\ncrash_restarts = 2\ncrash_writes = 0",
            ),
        )
        .unwrap();
        assert_eq!(s.boot.background, Some(Duration::from_secs(45)));
        assert_eq!((s.boot.crash_restarts, s.boot.crash_writes), (2, 0));
        let s = parse(Path::new("s.toml"), GOOD).unwrap();
        assert_eq!(s.boot.background, None);
        assert_eq!(
            (s.boot.crash_restarts, s.boot.crash_writes),
            (0, DEFAULT_CRASH_WRITES)
        );
        let e = err(&GOOD.replace("[boot]", "[boot]\ncrash_restarts = 21"));
        assert_eq!((e.field.as_str(), e.line), ("boot.crash_restarts", 14));
        let e = err(&GOOD.replace("[boot]", "[boot]\nbackground = \"soon\""));
        assert_eq!(e.field, "boot.background");
    }

    #[test]
    fn native_servers_need_a_binary_and_take_no_synapse_settings() {
        let server = |body: &str| {
            GOOD.replace(
                "[server]\nversion = \"1.163.2\"",
                &format!("[server]\n{body}"),
            )
        };
        // /bin/sh stands in for a server binary: only its existence is checked here.
        let s = parse(
            Path::new("s.toml"),
            &server("kind = \"tuwunel\"\nbinary = \"/bin/sh\""),
        )
        .unwrap();
        assert_eq!(s.server.kind, ServerKind::Tuwunel);
        assert_eq!(s.server.binary.as_deref(), Some(Path::new("/bin/sh")));
        assert_eq!(s.server.profile().unwrap().name, "tuwunel");
        let e = err(&server("kind = \"tuwunel\""));
        assert_eq!((e.field.as_str(), e.line), ("server.binary", 11));
        let e = err(&server(
            "kind = \"conduwuit\"\nbinary = \"/no/such/server\"",
        ));
        assert_eq!((e.field.as_str(), e.line), ("server.binary", 12));
        assert!(e.message.contains("/no/such/server is not a file"), "{e}");
        let e = err(&server(
            "kind = \"conduit\"\nbinary = \"/bin/sh\"\nversion = \"1\"",
        ));
        assert_eq!(e.field, "server.version");
        let e = err(&server(
            "kind = \"conduit\"\nbinary = \"/bin/sh\"\ndatabase = \"postgres\"",
        ));
        assert_eq!(e.field, "server.database");
        let e = err(&server("binary = \"/bin/sh\""));
        assert_eq!(e.field, "server.binary");
        let e = err(&server("kind = \"generic\"\nbinary = \"/bin/sh\""));
        assert_eq!(e.field, "server.profile");
        let e = err(&server("kind = \"dendrite\""));
        assert!(e.message.contains("\"generic\""), "{e}");
        let e = err(&server(
            "kind = \"tuwunel\"\nbinary = \"${HSBENCH_SURELY_UNSET_VAR}/tuwunel\"",
        ));
        assert!(
            e.message.contains("HSBENCH_SURELY_UNSET_VAR is not set"),
            "{e}"
        );
        // A generic profile of the user's, relative to the scenario's directory.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/servers/x.toml");
        let s = parse(
            &dir,
            &server("kind = \"generic\"\nbinary = \"/bin/sh\"\nprofile = \"generic-synapse.toml\""),
        )
        .unwrap();
        assert_eq!(s.server.profile().unwrap().name, "generic-synapse");
        // Thresholds name the profile's phases, not Synapse's.
        let e = err(&server(
            "kind = \"tuwunel\"\nbinary = \"/bin/sh\"\n[thresholds]\n\"phase.db_prepare\" = \"< 1s\"",
        ));
        assert_eq!(e.field, "thresholds.phase.db_prepare");
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), Path::new("/a/c/d"));
        // A Synapse source checkout: a directory with pyproject.toml, not with `version`.
        let e = err(&GOOD.replace(
            "[server]\nversion = \"1.163.2\"",
            "[server]\nsource = \"/tmp\"",
        ));
        assert_eq!(e.field, "server.source");
        assert!(e.message.contains("not a Synapse source checkout"), "{e}");
        let root = env!("CARGO_MANIFEST_DIR");
        let e = err(&GOOD.replace("[server]", &format!("[server]\nsource = \"{root}\"")));
        assert_eq!(e.field, "server.version");
        // (hsbench's own root has a Cargo.toml, no pyproject.toml)
        assert!(!Path::new(root).join("pyproject.toml").exists());
    }

    #[test]
    fn postgres_url_must_be_loopback() {
        let pg = |url: &str| {
            GOOD.replace(
                "[server]",
                &format!("[server]\ndatabase = \"postgres\"\npostgres_url = \"{url}\""),
            )
        };
        let s = parse(
            Path::new("s.toml"),
            &pg("postgresql://syn:pw@127.0.0.1:5433/syn"),
        )
        .unwrap();
        let u = s.server.postgres_url.unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.user.as_str()),
            ("127.0.0.1", 5433, "syn")
        );
        assert_eq!(u.password.as_deref(), Some("pw"));
        let e = err(&pg("postgresql://syn@db.example.org/syn"));
        assert_eq!((e.field.as_str(), e.line), ("server.postgres_url", 12));
        assert!(e.message.contains("not loopback"), "{e}");
        let s = parse(
            Path::new("s.toml"),
            &GOOD.replace("[server]", "[server]\ndatabase = \"postgres\""),
        )
        .unwrap();
        assert_eq!(s.server.database, DatabaseKind::Postgres);
        assert!(s.server.postgres_url.is_none());
        // The start-up statement log: on by default on the private cluster only.
        assert_eq!(s.boot.slow_statements, Some(DEFAULT_SLOW_STATEMENTS));
        let sqlite = parse(Path::new("s.toml"), GOOD).unwrap();
        assert_eq!(sqlite.boot.slow_statements, None);
        let with = |server: &str, v: &str| {
            GOOD.replace("[server]", &format!("[server]\n{server}"))
                .replace("[boot]", &format!("[boot]\nslow_statements = \"{v}\""))
        };
        let pg = "database = \"postgres\"";
        for (v, want) in [
            ("0s", Some(Duration::ZERO)),
            ("250ms", Some(Duration::from_millis(250))),
            ("off", None),
        ] {
            let s = parse(Path::new("s.toml"), &with(pg, v)).unwrap();
            assert_eq!(s.boot.slow_statements, want, "{v}");
        }
        for (server, v) in [(pg, "2h"), (pg, "soon"), ("", "5ms")] {
            let e = err(&with(server, v));
            assert_eq!(e.field, "boot.slow_statements", "{server} {v}: {e}");
        }
        let e = err(&with(
            "database = \"postgres\"\npostgres_url = \"postgresql://s@127.0.0.1/s\"",
            "5ms",
        ));
        assert!(e.message.contains("private cluster"), "{e}");
    }

    #[test]
    fn sweep_is_validated_at_every_value() {
        let ok = parse(
            Path::new("s.toml"),
            &format!("{GOOD}\n[sweep]\ndimension = \"users\"\nvalues = [5, 10, 40]\n"),
        )
        .unwrap();
        let sw = ok.sweep.unwrap();
        assert_eq!(
            (sw.dimension, sw.values.len(), sw.workloads),
            (SweepDimension::Users, 3, false)
        );
        let e = err(&format!(
            "{GOOD}\n[sweep]\ndimension = \"users\"\nvalues = [2, 10, 40]\n"
        ));
        assert_eq!(e.field, "sweep.values");
        assert!(e.message.contains("at users = 2"), "{e}");
        let e = err(&format!(
            "{GOOD}\n[sweep]\ndimension = \"users\"\nvalues = [10, 5, 40]\n"
        ));
        assert!(e.message.contains("ascending"), "{e}");
        let e = err(&format!(
            "{GOOD}\n[sweep]\ndimension = \"users\"\nvalues = [10, 40]\n"
        ));
        assert!(e.message.contains("at least 3"), "{e}");
        let e = err(&format!(
            "{GOOD}\n[sweep]\ndimension = \"cats\"\nvalues = [1, 2, 3]\n"
        ));
        assert_eq!(e.field, "sweep.dimension");
        assert!(e.message.contains("big_room_members"), "{e}");
    }

    #[test]
    fn compare_gates_parse_and_errors_are_located() {
        let ok = parse(
            Path::new("t.toml"),
            &format!(
                "{GOOD}\n[compare]\nnoise = 0.08\nalpha = 0.01\n[compare.noise_by_metric]\n\"phase.db_prepare\" = 0.2\n\"cold.milestone.port_open\" = 0.15\n\"herd.sync.p99\" = 0.3\n"
            ),
        )
        .unwrap();
        assert_eq!((ok.compare.noise, ok.compare.alpha), (0.08, 0.01));
        assert_eq!(ok.compare.noise_by_metric["phase.db_prepare"], 0.2);
        assert_eq!(ok.compare.noise_by_metric.len(), 3);
        // Defaults without the table.
        let d = parse(Path::new("t.toml"), GOOD).unwrap();
        assert_eq!(d.compare, CompareSpec::default());
        assert_eq!(d.compare.min_delta_ms, DEFAULT_MIN_DELTA_MS);
        let ok = parse(
            Path::new("t.toml"),
            &format!("{GOOD}\n[compare]\nmin_delta = \"250ms\"\n"),
        )
        .unwrap();
        assert_eq!(ok.compare.min_delta_ms, 250.0);
        let e = err(&format!("{GOOD}\n[compare]\nmin_delta = \"soon\"\n"));
        assert_eq!(e.field, "compare.min_delta");
        let e = err(&format!("{GOOD}\n[compare]\nnoise = 1.5\n"));
        assert_eq!(e.field, "compare.noise");
        assert!(e.message.contains("[0, 1)"), "{e}");
        let e = err(&format!("{GOOD}\n[compare]\nalpha = 0\n"));
        assert_eq!(e.field, "compare.alpha");
        let e = err(&format!(
            "{GOOD}\n[compare.noise_by_metric]\n\"phase.nope\" = 0.1\n"
        ));
        assert_eq!(e.field, "compare.noise_by_metric.phase.nope");
        assert!(e.message.contains("phase.<"), "{e}");
        assert!(e.line > 20, "{e}");
    }

    #[test]
    fn thresholds_parse_and_errors_are_located() {
        let ok = parse(
            Path::new("t.toml"),
            &format!(
                "{GOOD}\n[thresholds]\ntime_to_ready = \"< 10s\"\n\"boot.shutdown\" = \"<= 3s\"\n\"herd.sync.p99\" = \"< 500ms\"\npeak_rss = \"< 512MiB\"\n\"phase.db_prepare\" = \"< 2s\"\n"
            ),
        )
        .unwrap();
        let t = |m: &str| {
            ok.thresholds
                .iter()
                .find(|t| t.metric == m)
                .unwrap()
                .clone()
        };
        assert_eq!(t("time_to_ready").limit, 10_000.0);
        assert!(t("shutdown").inclusive && t("shutdown").limit == 3000.0);
        assert_eq!(t("herd.sync.p99").limit, 500.0);
        assert_eq!(t("peak_rss").limit, 512.0 * 1024.0 * 1024.0);
        let e = err(&format!(
            "{GOOD}\n[thresholds]\ntime_to_ready = \"> 10s\"\n"
        ));
        assert_eq!(e.field, "thresholds.time_to_ready");
        assert!(e.message.contains("upper bound"), "{e}");
        let e = err(&format!(
            "{GOOD}\n[thresholds]\n\"phase.nope\" = \"< 1s\"\n"
        ));
        assert!(
            e.message.contains("unknown metric") && e.message.contains("db_prepare"),
            "{e}"
        );
        let e = err(&format!(
            "{GOOD}\n[thresholds]\npeak_rss = \"< 5 parsecs\"\n"
        ));
        assert!(e.message.contains("size unit"), "{e}");
    }

    #[test]
    fn spec_hash_is_stable_and_sensitive() {
        let a = parse(Path::new("a.toml"), GOOD).unwrap().dataset;
        let mut b = a.clone();
        assert_eq!(a.spec_hash(), b.spec_hash());
        b.seed += 1;
        assert_ne!(a.spec_hash(), b.spec_hash());
    }
}
