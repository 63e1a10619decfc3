//! The server under test over its finished dataset: the five values every stage after the
//! dataset reads, travelling as one.

use super::db::DbProcesses;
use crate::dataset::plan::DatasetPlan;
use crate::dataset::seed::Credentials;
use crate::server::{Instance, ServerProfile};

/// What the boots, the work meter, the profiler, the workloads, the crash cycles and `serve`
/// run against.
pub(super) struct Target {
    /// The server instance over its data directory (its config, its data, how it starts).
    pub(super) inst: Instance,
    /// The dataset's users (ids and tokens) and rooms.
    pub(super) creds: Credentials,
    /// The dataset's plan, which the workloads draw their users and rooms from.
    pub(super) plan: DatasetPlan,
    /// The server's log profile: its phase markers and statement sub-phases.
    pub(super) profile: ServerProfile,
    /// The database processes beside the server (a private PostgreSQL cluster) and their
    /// statement log.
    pub(super) db: DbProcesses,
}
