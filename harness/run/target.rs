//! The server under test over its finished dataset: the five values every stage after the
//! dataset reads, travelling as one.

use super::db::DbProcesses;
use crate::boot::BootSpec;
use crate::dataset::plan::DatasetPlan;
use crate::dataset::seed::Credentials;
use crate::server::limits::Confinement;
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
    /// The server's resource limits, in force for every boot on the finished dataset (last:
    /// dropped after the processes it holds).
    pub(super) confine: Option<std::sync::Arc<Confinement>>,
}

impl Target {
    /// `spec` with the server's resource limits.
    pub(super) fn confined<'p>(&self, mut spec: BootSpec<'p>) -> BootSpec<'p> {
        spec.confine = self.confine.clone();
        spec
    }
}
