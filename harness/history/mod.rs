//! Floor 9: the history of runs a CI performance dashboard keeps: a store of every run's
//! catalogue metrics ([`store`]: a SQLite file by default, PostgreSQL by URL for a team), the
//! runs read from their directories or from BMF files ([`ingest`]), change points per metric and
//! machine ([`series`], E-Divisive means from [`crate::stats::changepoint`]), the check a CI job
//! gates on, and a self-contained dashboard ([`dashboard`]).
//!
//! A series is one metric of one scenario on one server kind and database, on one kind of
//! machine (CPU model, cores, memory): runs from different machines are never mixed.

pub mod dashboard;
pub mod error;
pub mod ingest;
pub mod series;
pub mod store;

pub use error::HistoryError;
pub use ingest::{Overrides, from_bmf, from_run_dir};
pub use series::{Finding, Series, SeriesKey, analyse, regressions};
pub use store::{HistoryRun, Store};

/// The store's default place, relative to the working directory (beside the runs).
pub const DEFAULT_DB: &str = "results/history.sqlite";
