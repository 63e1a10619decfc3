//! What can go wrong with the history: the store, a run that cannot be read, a bad argument.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history store {target}: {step}: {source}")]
    Sqlite {
        target: String,
        step: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("history store {target}: {step}: {source}")]
    Postgres {
        target: String,
        step: &'static str,
        #[source]
        source: postgres::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Read(#[from] crate::result::read::ReadError),
    #[error("{path}: not a BMF file ({reason})")]
    Bmf { path: PathBuf, reason: String },
    #[error(
        "{path}: run {run_id} is {status}, not complete: a run that did not complete never enters the history"
    )]
    NotComplete {
        path: PathBuf,
        run_id: String,
        status: String,
    },
    #[error("no change point {wanted:?}: {known}")]
    NoSuchChangePoint { wanted: String, known: String },
}
