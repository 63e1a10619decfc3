//! The direct import's errors: what failed, where, and the source kept.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("signing key {path}: {source}")]
    SigningKey {
        path: PathBuf,
        #[source]
        source: crate::util::BoxError,
    },
    #[error("database {path}: step {step}: {source}")]
    Sql {
        path: PathBuf,
        step: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("PostgreSQL database {target}: step {step}: {said}")]
    Postgres {
        target: String,
        step: String,
        /// What the server said.
        said: String,
        #[source]
        source: postgres::Error,
    },
    #[error("step {step}: event {what}: {source}")]
    Event {
        step: &'static str,
        what: String,
        #[source]
        source: crate::util::BoxError,
    },
}
