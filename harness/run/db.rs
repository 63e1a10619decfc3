//! The private PostgreSQL cluster's processes and statement log, as the run's stages see them.

use super::error::RunError;
use crate::server::limits::Confinement;
use crate::server::postgres::PgCluster;
use std::path::PathBuf;
use std::time::Duration;

/// A private database's part in the measurements: its files are evicted for cold boots (and
/// the cluster restarted, so that its own buffers are empty too) and its processes are sampled
/// with the server's.
pub(super) struct DbProcesses {
    pub(super) cache_roots: Vec<PathBuf>,
    pub(super) threshold: Option<Duration>,
    /// The private cluster, while it runs.
    pub(super) cluster: tokio::sync::Mutex<Option<PgCluster>>,
    /// Its process groups and statement log, as of its last start.
    pub(super) now: std::sync::Mutex<DbNow>,
    /// The server's resource limits, which the cluster's processes share (they join the
    /// server's cgroups after each start).
    confine: Option<std::sync::Arc<Confinement>>,
}

#[derive(Clone)]
pub(super) struct DbNow {
    pub(super) pgids: Vec<i32>,
    /// The private cluster's statement log (`[boot] slow_statements`), read for each timed
    /// boot.
    pub(super) statements: Option<crate::server::postgres::StatementLog>,
}

impl DbProcesses {
    pub(super) fn new(
        pg: Option<PgCluster>,
        threshold: Option<Duration>,
        confine: Option<std::sync::Arc<Confinement>>,
    ) -> Result<Self, RunError> {
        let now = DbNow::of(pg.as_ref(), threshold);
        if let Some(c) = &confine {
            c.adopt(&now.pgids)?;
        }
        Ok(Self {
            cache_roots: pg.iter().map(|c| c.pgdata.clone()).collect(),
            threshold,
            cluster: tokio::sync::Mutex::new(pg),
            now: std::sync::Mutex::new(now),
            confine,
        })
    }

    pub(super) fn pgids(&self) -> Vec<i32> {
        self.now.lock().expect("db state").pgids.clone()
    }

    pub(super) fn statements(&self) -> Option<crate::server::postgres::StatementLog> {
        self.now.lock().expect("db state").statements.clone()
    }

    /// Before a cold boot: restart the private cluster (its shared buffers hold what the last
    /// boot read; a fresh postmaster starts with them empty). `false`: there is none.
    pub(super) async fn restart(&self) -> Result<bool, RunError> {
        self.restart_with(&[]).await
    }

    /// Restart the private cluster with `settings` (none: the defaults); `false`: there is
    /// none, or it never started (no log yet).
    pub(super) async fn restart_with(&self, settings: &[&str]) -> Result<bool, RunError> {
        let mut guard = self.cluster.lock().await;
        let Some(c) = guard.as_mut() else {
            return Ok(false);
        };
        if !c.restart_with(settings).await? {
            return Ok(false);
        }
        let now = DbNow::of(Some(c), self.threshold);
        if let Some(c) = &self.confine {
            c.adopt(&now.pgids)?;
        }
        *self.now.lock().expect("db state") = now;
        Ok(true)
    }

    /// The private cluster restarted to count its statements (`pg_stat_statements`), for the
    /// boots under the work meter; `None`: there is no private cluster.
    pub(super) async fn count_statements(
        &self,
    ) -> Result<Option<crate::server::postgres::StatCounter>, RunError> {
        use crate::server::postgres::STAT_STATEMENTS_SETTINGS;
        if !self.restart_with(STAT_STATEMENTS_SETTINGS).await? {
            return Ok(None);
        }
        let guard = self.cluster.lock().await;
        Ok(guard.as_ref().map(|c| c.stat_counter()).transpose()?)
    }
}

impl DbNow {
    pub(super) fn of(pg: Option<&PgCluster>, threshold: Option<Duration>) -> Self {
        Self {
            pgids: pg.iter().filter_map(|c| c.pid()).collect(),
            statements: pg.and_then(|c| threshold.and_then(|t| c.statement_log(t))),
        }
    }
}

/// Switch the private cluster's statement log on or off (psql calls, off the runtime's
/// threads); on: where the boot's lines start in the log.
pub(super) async fn switch_statement_log(
    log: &crate::server::postgres::StatementLog,
    on: bool,
) -> Result<u64, RunError> {
    let log = log.clone();
    Ok(tokio::task::spawn_blocking(move || log.switch(on))
        .await
        .expect("statement log task")?)
}
