//! The raw schema (what the file says): `deny_unknown_fields` everywhere, so a typo is an error.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) schema: Option<Spanned<u32>>,
    pub(super) name: Option<Spanned<String>>,
    pub(super) description: Option<String>,
    pub(super) dataset: RawDataset,
    pub(super) server: Option<RawServer>,
    pub(super) boot: Option<RawBoot>,
    pub(super) workload: Option<RawWorkload>,
    pub(super) profile: Option<RawProfile>,
    pub(super) sweep: Option<RawSweep>,
    pub(super) thresholds: Option<std::collections::BTreeMap<String, Spanned<String>>>,
    pub(super) compare: Option<RawCompare>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCompare {
    pub(super) noise: Option<Spanned<f64>>,
    pub(super) alpha: Option<Spanned<f64>>,
    pub(super) noise_by_metric: Option<std::collections::BTreeMap<String, Spanned<f64>>>,
    pub(super) min_delta: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSweep {
    pub(super) dimension: Spanned<String>,
    pub(super) values: Spanned<Vec<f64>>,
    pub(super) workloads: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDataset {
    pub(super) seed: u64,
    pub(super) users: Spanned<u64>,
    pub(super) rooms: Spanned<u64>,
    pub(super) big_room_members: Spanned<u64>,
    pub(super) messages_per_room: Spanned<u64>,
    #[serde(default)]
    pub(super) max_room_members: Option<Spanned<u64>>,
    pub(super) display_name_share: Option<Spanned<f64>>,
    pub(super) avatar_share: Option<Spanned<f64>>,
    pub(super) presence_share: Option<Spanned<f64>>,
    pub(super) multi_device_share: Option<Spanned<f64>>,
    pub(super) private_room_share: Option<Spanned<f64>>,
    pub(super) dm_pairs: Option<u64>,
    pub(super) state_rooms: Option<Spanned<u64>>,
    pub(super) state_events_per_room: Option<u64>,
    pub(super) reply_share: Option<Spanned<f64>>,
    pub(super) reaction_share: Option<Spanned<f64>>,
    pub(super) edit_share: Option<Spanned<f64>>,
    pub(super) redaction_share: Option<Spanned<f64>>,
    pub(super) receipt_share: Option<Spanned<f64>>,
    pub(super) registration: Option<Spanned<String>>,
    pub(super) load: Option<Spanned<String>>,
    pub(super) history: Option<Spanned<String>>,
    pub(super) presence: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) kind: Option<Spanned<String>>,
    pub(super) version: Option<Spanned<String>>,
    pub(super) database: Option<Spanned<String>>,
    pub(super) postgres_url: Option<Spanned<String>>,
    pub(super) binary: Option<Spanned<String>>,
    pub(super) profile: Option<Spanned<String>>,
    pub(super) config_template: Option<Spanned<String>>,
    pub(super) source: Option<Spanned<String>>,
    pub(super) synapse_config: Option<Spanned<toml::Table>>,
    pub(super) cpus: Option<Spanned<f64>>,
    pub(super) memory: Option<Spanned<String>>,
    pub(super) cpuset: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBoot {
    pub(super) repeats: Option<Spanned<u64>>,
    pub(super) warmup: Option<Spanned<u64>>,
    pub(super) cache: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) shutdown_timeout: Option<Spanned<String>>,
    pub(super) crash_restarts: Option<Spanned<u64>>,
    pub(super) crash_writes: Option<Spanned<u64>>,
    pub(super) background: Option<Spanned<String>>,
    pub(super) restore: Option<Spanned<String>>,
    pub(super) slow_statements: Option<Spanned<String>>,
    pub(super) meter: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkload {
    pub(super) herd: Option<Spanned<RawHerd>>,
    pub(super) triggered: Option<Spanned<RawTriggered>>,
    pub(super) steady: Option<Spanned<RawSteady>>,
    pub(super) catchup: Option<Spanned<RawCatchup>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCatchup {
    pub(super) readers: Spanned<u64>,
    pub(super) protocol: Option<Spanned<String>>,
    pub(super) backlog: Spanned<u64>,
    pub(super) page: Option<Spanned<u64>>,
    pub(super) timeline_limit: Option<Spanned<u64>>,
    pub(super) request_timeout: Option<Spanned<String>>,
    pub(super) interval: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTriggered {
    pub(super) clients: Spanned<u64>,
    pub(super) protocol: Option<Spanned<String>>,
    pub(super) poll_timeout: Option<Spanned<String>>,
    pub(super) connect_ramp: Option<Spanned<String>>,
    pub(super) chatter_rate: Option<Spanned<f64>>,
    pub(super) baseline: Option<Spanned<String>>,
    pub(super) observe: Option<Spanned<String>>,
    pub(super) reaction: Option<Spanned<String>>,
    pub(super) resync_timeout: Option<Spanned<String>>,
    pub(super) retries: Option<Spanned<u64>>,
    pub(super) retry_delay: Option<Spanned<String>>,
    pub(super) tolerance: Option<Spanned<f64>>,
    pub(super) hold: Option<Spanned<String>>,
    pub(super) slack: Option<Spanned<String>>,
    pub(super) interval: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSteady {
    pub(super) clients: Spanned<u64>,
    pub(super) protocol: Option<Spanned<String>>,
    pub(super) senders: Option<Spanned<u64>>,
    pub(super) rate: Spanned<f64>,
    pub(super) ramp_to: Option<Spanned<f64>>,
    pub(super) ramp_over: Option<Spanned<String>>,
    pub(super) duration: Option<Spanned<String>>,
    pub(super) poll_timeout: Option<Spanned<String>>,
    pub(super) connect_ramp: Option<Spanned<String>>,
    pub(super) drain: Option<Spanned<String>>,
    pub(super) timeline_limit: Option<Spanned<u64>>,
    pub(super) poll_pause: Option<Spanned<String>>,
    pub(super) interval: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    pub(super) profiler: Option<Spanned<String>>,
    pub(super) boot: Option<bool>,
    pub(super) load: Option<bool>,
    pub(super) rate: Option<Spanned<u64>>,
    pub(super) boot_runs: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHerd {
    pub(super) clients: Spanned<u64>,
    pub(super) protocol: Option<Spanned<String>>,
    pub(super) sync: Option<Spanned<String>>,
    pub(super) request_timeout: Option<Spanned<String>>,
    pub(super) ramp: Option<Spanned<String>>,
    pub(super) lazy_load_members: Option<Spanned<bool>>,
}

// ---------------------------------------------------------------------------------------------
// Validated scenario (what the rest of the crate uses).
// ---------------------------------------------------------------------------------------------
