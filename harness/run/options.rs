//! What a caller sets for a run (RunOptions, the serve hooks) and what it gets back.

use super::error::RunError;
use super::turns;
use crate::dataset::fixture::FixtureStore;
use crate::dataset::seed::Credentials;
use crate::result::RunResult;
use std::path::{Path, PathBuf};

/// How to run (from the CLI or a test), beside the scenario itself.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Parent of run directories (`results/` by default).
    pub results_dir: PathBuf,
    /// Overrides `[server] version`.
    pub server_version: Option<String>,
    /// No progress bars, no stage lines, no summary on stderr.
    pub quiet: bool,
    /// Concurrent requests while loading the dataset.
    pub load_concurrency: usize,
    /// The fixture cache.
    pub fixtures: FixtureStore,
    /// Build the dataset again even when its fixture is cached.
    pub rebuild_fixture: bool,
    /// Check a sample of the dataset through the server's API before the workloads.
    pub verify: bool,
    /// Stop once the dataset fixture exists (`hsbench seed`).
    pub seed_only: bool,
    /// Name of the run directory (default: `<UTC time>-<scenario name>`).
    pub run_id: Option<String>,
    /// Prefix of the stage lines (`base`, `head`: two runs of `hsbench ab` share stderr).
    pub label: Option<String>,
    /// Key the dataset fixture by this server version instead of the run's own: the head of
    /// `hsbench ab` boots on the base's fixture (and applies its own schema deltas at boot, as
    /// an upgrade would).
    pub fixture_version: Option<String>,
    /// Measure in turns with other runs of this process (`hsbench ab`): each timed or profiled
    /// boot is one turn, the rest of the run (workloads, files) one more.
    pub turns: Option<turns::Turns>,
    /// Time boots only: no workloads, no crash-restart cycles (`hsbench bisect` of a boot metric).
    pub boots_only: bool,
    /// A sweep removes each point's fixture after the point when this run built it (for
    /// sweeps whose fixtures do not fit on the disk together).
    pub discard_fixtures: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            results_dir: PathBuf::from("results"),
            server_version: None,
            quiet: false,
            load_concurrency: 8,
            fixtures: FixtureStore::default(),
            rebuild_fixture: false,
            verify: false,
            seed_only: false,
            run_id: None,
            label: None,
            fixture_version: None,
            turns: None,
            boots_only: false,
            discard_fixtures: false,
        }
    }
}

/// What a finished run hands back.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_dir: PathBuf,
    pub result: RunResult,
}

/// `hsbench serve`: boot the scenario's server over its dataset and keep it up for others to
/// load (shards with `--attach`), until `stop` turns true or the server dies. A stop before the
/// server serves (while installing or building the dataset) interrupts the run.
pub struct ServeHooks {
    /// Where the dataset users' credentials (access tokens) are written, mode 0600.
    pub credentials_out: PathBuf,
    /// Told once the server answers an authenticated /sync.
    pub ready: Option<tokio::sync::oneshot::Sender<ServeInfo>>,
    pub stop: tokio::sync::watch::Receiver<bool>,
}

/// Resolves once `rx` holds true (never, if its sender is gone first).
pub(super) async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What a served server offers (also `serve.json` in its run directory; no tokens in it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ServeInfo {
    pub base_url: String,
    pub credentials: PathBuf,
    pub server_pid: i32,
    pub run_dir: PathBuf,
}

/// `hsbench run --attach`: the workloads only, against a server already running on loopback
/// (e.g. `hsbench serve`), for one shard of the clients.
#[derive(Debug, Clone)]
pub struct Attach {
    pub base_url: String,
    pub credentials: Credentials,
    pub shard: crate::load::shard::Shard,
    /// Release the herd at this wall-clock time, so the shards fire together.
    pub release_at: Option<std::time::SystemTime>,
}

impl Attach {
    /// From the command line: `target` is a `serve.json` (or its directory) or a URL; the
    /// credentials file defaults to the one serve.json names; the shard comes from `shard`,
    /// else the environment ([`crate::load::shard::Shard::from_env`]); the release time from
    /// `release_at`, else `HSBENCH_RELEASE_AT`.
    pub fn resolve(
        target: &str,
        credentials: Option<&Path>,
        shard: Option<&str>,
        release_at: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, RunError> {
        let bad = |message: String| RunError::Attach {
            url: target.to_string(),
            source: message.into(),
        };
        let (base_url, serve_creds) =
            if target.starts_with("http://") || target.starts_with("https://") {
                (target.to_string(), None)
            } else {
                let mut p = PathBuf::from(target);
                if p.is_dir() {
                    p = p.join("serve.json");
                }
                let info: ServeInfo = std::fs::read(&p)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
                    .map_err(|e| {
                        bad(format!(
                            "not a URL, and {} is not a serve.json: {e}",
                            p.display()
                        ))
                    })?;
                (info.base_url, Some(info.credentials))
            };
        let shard = match shard {
            Some(s) => crate::load::shard::Shard::parse(s, "--shard")?,
            None => crate::load::shard::Shard::from_env(&env)?
                .unwrap_or(crate::load::shard::Shard::WHOLE),
        };
        let release_at = match release_at
            .map(str::to_string)
            .or_else(|| env("HSBENCH_RELEASE_AT"))
        {
            None => None,
            Some(t) => Some(crate::util::time::parse_release_at(&t).map_err(bad)?),
        };
        let path = credentials
            .map(Path::to_path_buf)
            .or(serve_creds)
            .ok_or_else(|| bad("give --credentials FILE (the one `hsbench serve` wrote)".into()))?;
        let credentials = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| bad(format!("credentials {}: {e}", path.display())))?;
        Ok(Self {
            base_url,
            credentials,
            shard,
            release_at,
        })
    }
}
