//! hsbench: a benchmark and load-test harness for Matrix homeservers.
//!
//! The library is the product; `main.rs` only parses arguments and maps errors to exit codes.
//! A run flows: [`scenario`] → [`dataset`] plan → [`seed`] (load through the API) →
//! [`boot`] (timed boots of a [`server`]) → [`load`] (workloads) → [`analysis`] → [`report`].

pub mod analysis;
pub mod baseline;
pub mod boot;
pub mod cache;
pub mod catchup;
pub mod cli;
pub mod clock;
pub mod compare;
pub mod dataset;
pub mod engine;
pub mod fit;
pub mod fixture;
pub mod generator;
pub mod html;
mod html_workloads;
pub mod import;
pub mod interrupt;
pub mod load;
pub mod machine;
pub mod matrix;
pub mod merge;
pub mod metrics;
pub mod profiler;
pub mod recovery;
pub mod report;
pub mod result;
pub mod run;
pub mod scenario;
pub mod schedule;
pub mod schema;
pub mod seed;
pub mod server;
pub mod shard;
pub mod svg;
pub mod sweep;
pub mod syncload;
