//! The run's error: which stage failed, with its source kept.

use crate::dataset::fixture::FixtureError;
use crate::dataset::seed::SeedError;
use crate::server::ServerError;
use crate::util::exit::Exit;
use std::path::PathBuf;

/// Why a run failed. [`RunError::exit_code`] maps each kind to the CLI's documented exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Scenario(#[from] crate::scenario::LoadError),
    #[error("cannot write results: {}: {source}", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Seed(#[from] Box<SeedError>),
    #[error("direct import: {0}")]
    Import(#[from] crate::dataset::import::ImportError),
    #[error("workload `{workload}` failed: {source}")]
    Workload {
        workload: String,
        /// The workload's own error (a call, a setup step), or what went wrong as text.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    #[error("interrupted by {}; servers stopped, partial results written", crate::util::interrupt::name(*signal))]
    Interrupted { signal: i32 },
    #[error(transparent)]
    Shard(#[from] crate::load::shard::ShardError),
    #[error(transparent)]
    Profile(#[from] crate::server::profile::ProfileError),
    #[error(transparent)]
    Meter(#[from] crate::meter::MeterError),
    #[error(transparent)]
    Limits(#[from] crate::server::limits::LimitsError),
    #[error(
        "the kernel's OOM killer killed {kills} process(es) of the server: its memory limit ({limit}) is too small for it; {source}"
    )]
    OutOfMemory {
        kills: u64,
        limit: String,
        #[source]
        source: Box<RunError>,
    },
    #[error("--attach {url}: {source}")]
    Attach {
        url: String,
        #[source]
        source: crate::util::BoxError,
    },
}

impl RunError {
    /// The documented exit code of this failure (a damaged fixture is [`Exit::NotWritable`],
    /// a missing one bad input).
    pub fn exit_code(&self) -> Exit {
        match self {
            RunError::Scenario(_) => Exit::BadInput,
            RunError::Server(_) => Exit::ServerFailed,
            RunError::Seed(_) | RunError::Import(_) | RunError::Workload { .. } => Exit::LoadFailed,
            RunError::Fixture(FixtureError::NotFound(_)) => Exit::BadInput,
            RunError::Output { .. } | RunError::Fixture(_) => Exit::NotWritable,
            RunError::Interrupted { signal } => Exit::Signal(*signal),
            RunError::Shard(_) | RunError::Attach { .. } | RunError::Profile(_) => Exit::BadInput,
            RunError::Meter(
                crate::meter::MeterError::Missing { .. } | crate::meter::MeterError::Build { .. },
            ) => Exit::BadInput,
            RunError::Meter(_) => Exit::ServerFailed,
            RunError::Limits(crate::server::limits::LimitsError::Invalid(_)) => Exit::BadInput,
            RunError::Limits(_) => Exit::NotWritable,
            RunError::OutOfMemory { source, .. } => source.exit_code(),
        }
    }
}

pub(super) fn workload_error<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
    workload: &str,
) -> impl FnOnce(E) -> RunError {
    let workload = workload.to_string();
    move |e| RunError::Workload {
        workload,
        source: e.into(),
    }
}

pub(super) fn output_error(path: PathBuf) -> impl FnOnce(std::io::Error) -> RunError {
    move |source| RunError::Output { path, source }
}
