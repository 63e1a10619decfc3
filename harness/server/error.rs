//! Why a server could not be installed, started or stopped, with its source and its log tail.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors of installing, starting or stopping a server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("installing the server failed at {step}: {source}")]
    Install {
        step: String,
        #[source]
        source: crate::util::BoxError,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the server ({command}): {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the server exited during {label} ({status}); last {} log lines:\n{}", log_tail.len(), log_tail.join("\n"))]
    Crashed {
        label: String,
        status: String,
        log_tail: Vec<String>,
    },
    #[error("{label}: {what} did not happen within the boot timeout (gave up after {:.1} s); last {} log lines:\n{}", after.as_secs_f64(), log_tail.len(), log_tail.join("\n"))]
    Timeout {
        label: String,
        what: String,
        after: Duration,
        log_tail: Vec<String>,
    },
}

impl ServerError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
