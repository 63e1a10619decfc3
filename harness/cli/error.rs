//! Each command's error type, and the exit code of each (the table in `--help`).

use std::path::PathBuf;

use crate::analysis::compare::CompareError;
use crate::analysis::sweep::SizeError;
use crate::dataset::fixture::FixtureError;
use crate::load::generator::GeneratorError;
use crate::load::merge::MergeError;
use crate::profile::ProfilerError;
use crate::report::RerenderError;
use crate::result::read::ReadError;
use crate::run::RunError;
use crate::run::baseline::BaselineError;
use crate::scenario::LoadError;
use crate::util::exit::Exit;

/// `run`, `seed` and `serve`.
#[derive(Debug, thiserror::Error)]
pub enum RunCommandError {
    #[error(transparent)]
    Run(#[from] RunError),
    /// The baseline named by `--baseline` is missing, or saving/comparing one failed.
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    #[error("{0}")]
    Usage(String),
}

impl RunCommandError {
    pub fn exit_code(&self) -> Exit {
        match self {
            RunCommandError::Run(e) => e.exit_code(),
            RunCommandError::Baseline(BaselineError::Io { .. }) => Exit::NotWritable,
            RunCommandError::Baseline(_) | RunCommandError::Usage(_) => Exit::BadInput,
        }
    }
}

/// `compare`.
#[derive(Debug, thiserror::Error)]
pub enum CompareCommandError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    #[error(transparent)]
    Compare(#[from] CompareError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CompareCommandError {
    pub fn exit_code(&self) -> Exit {
        match self {
            CompareCommandError::Write { .. } => Exit::NotWritable,
            _ => Exit::BadInput,
        }
    }
}

/// `size`.
#[derive(Debug, thiserror::Error)]
pub enum SizeCommandError {
    #[error(transparent)]
    Size(#[from] SizeError),
    #[error("give the value of the swept dimension once: --{flag} N")]
    Usage { flag: String },
}

/// `side-by-side`.
#[derive(Debug, thiserror::Error)]
pub enum SideBySideCommandError {
    #[error(transparent)]
    Input(#[from] crate::analysis::servers::SideBySideError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `fixtures`.
#[derive(Debug, thiserror::Error)]
pub enum FixturesCommandError {
    #[error("name a key (prefix) or --all")]
    NoKey,
    #[error(transparent)]
    Fixture(#[from] FixtureError),
}

/// A command's error, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Run(#[from] RunCommandError),
    #[error(transparent)]
    Check(#[from] LoadError),
    #[error(transparent)]
    Compare(#[from] CompareCommandError),
    #[error(transparent)]
    Size(#[from] SizeCommandError),
    #[error(transparent)]
    SideBySide(#[from] SideBySideCommandError),
    #[error(transparent)]
    Report(#[from] RerenderError),
    #[error("hsbench flamediff: {0}")]
    Flamediff(#[from] ProfilerError),
    #[error("hsbench merge: {0}")]
    Merge(#[from] MergeError),
    #[error("hsbench http-load: {0}")]
    HttpLoad(#[from] GeneratorError),
    #[error("hsbench noise: {0}")]
    Noise(#[from] crate::metrics::noise::NoiseError),
    #[error(transparent)]
    Fixtures(#[from] FixturesCommandError),
    /// `ab` and `bisect`.
    #[error(transparent)]
    Ab(#[from] Box<crate::run::ab::AbError>),
    #[error("hsbench history: {0}")]
    History(#[from] crate::history::HistoryError),
    #[error("cannot write to stdout: {0}")]
    Stdout(#[source] std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl CliError {
    /// The exit code `--help` documents for this error.
    pub fn exit_code(&self) -> Exit {
        match self {
            CliError::Run(e) => e.exit_code(),
            CliError::Ab(e) => e.exit_code(),
            CliError::Compare(e) => e.exit_code(),
            CliError::Report(RerenderError::Write { .. }) => Exit::NotWritable,
            CliError::SideBySide(SideBySideCommandError::Write { .. }) => Exit::NotWritable,
            CliError::Flamediff(ProfilerError::Io { source, .. })
            | CliError::Merge(MergeError::Io { source, .. })
                if source.kind() != std::io::ErrorKind::NotFound =>
            {
                Exit::NotWritable
            }
            CliError::Fixtures(FixturesCommandError::Fixture(FixtureError::NotFound(_))) => {
                Exit::BadInput
            }
            CliError::Fixtures(FixturesCommandError::Fixture(_)) => Exit::NotWritable,
            CliError::Stdout(_) | CliError::Runtime(_) => Exit::NotWritable,
            CliError::History(
                crate::history::HistoryError::Io { .. }
                | crate::history::HistoryError::Sqlite { .. }
                | crate::history::HistoryError::Postgres { .. },
            ) => Exit::NotWritable,
            CliError::History(_) => Exit::BadInput,
            CliError::Check(_)
            | CliError::Size(_)
            | CliError::SideBySide(_)
            | CliError::Report(_)
            | CliError::Flamediff(_)
            | CliError::Merge(_)
            | CliError::HttpLoad(_)
            | CliError::Noise(_)
            | CliError::Fixtures(_) => Exit::BadInput,
        }
    }
}
