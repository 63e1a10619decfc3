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
    /// A direct import writes a whole dataset into an empty Synapse database (one whose schema
    /// Synapse has just created); this one already holds users.
    #[error(
        "database {target} already holds {users} users: a direct import needs the empty \
         database of a fresh Synapse (drop and re-create it, or give another)"
    )]
    NotEmpty { target: String, users: i64 },
    #[error("step {step}: event {what}: {source}")]
    Event {
        step: &'static str,
        what: String,
        #[source]
        source: crate::util::BoxError,
    },
}
