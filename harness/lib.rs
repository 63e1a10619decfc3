//! hsbench: a benchmark and load-test harness for Matrix homeservers.
//!
//! The library is the product; `main.rs` only parses arguments, calls [`cli::execute`] and maps
//! the typed error to an exit code. The folders are floors, ground floor first; a module may use
//! the floors below it, never the ones above (`tests/architecture.rs` checks it):
//!
//! | floor | folder | what lives there |
//! |---|---|---|
//! | 1 | [`util`] | files, formatting, clocks, source spans, signals |
//! | 1 | [`stats`] | order statistics, rank tests, power-law fits |
//! | 2 | [`metrics`] | the metric catalogue, HDR histograms, resource sampling, the machine |
//! | 2 | [`matrix`] | the thin client-server API client |
//! | 2 | [`meter`] | the work meter: instructions per boot and phase under callgrind |
//! | 2 | [`server`] | server profiles, Synapse installs, native servers, private PostgreSQL |
//! | 3 | [`scenario`] | the scenario file, validated once into typed values |
//! | 3 | [`boot`] | timed boots: spawn, log markers, readiness, shutdown, boot summaries |
//! | 4 | [`dataset`] | the dataset plan, the API loader, the direct import, fixtures |
//! | 4 | [`profile`] | flamegraphs: py-spy, perf, folded stacks, flamediff |
//! | 5 | [`load`] | workloads: the request engine, herd, triggered, steady, catch-up |
//! | 6 | [`result`] | the result model, its reader and its JSON schema |
//! | 7 | [`analysis`] | figures by catalogue name, thresholds, compare verdicts, sweep fits |
//! | 8 | [`report`] | every output behind one exporter trait: Markdown, BMF, HTML, SVG |
//! | 9 | [`run`] | a run end to end: dataset, boots, workloads, profiles, baselines, sweeps |
//! | 9 | [`history`] | every run's metrics in a store, change points per series, the dashboard |
//! | 10 | [`cli`] | the command line: clap types, dispatch, per-command errors and exit codes |
//!
//! # Where a change goes
//!
//! - **A new workload**: its TOML table in `scenario/raw.rs`, its typed spec and validator in
//!   `scenario/workload.rs`; the driver in `load/<name>.rs` (requests through `load::engine`'s
//!   recorder, bodies through `load::body`); its result type in `result/mod.rs` (then
//!   `cargo run --release -- schema > schema/result.schema.json`; `tests/schema.rs` fails until
//!   it is current); its
//!   metrics in the catalogue (next item); the call in `run/workloads.rs`; its sections in
//!   `report/markdown.rs` and `report/html_workloads.rs`.
//! - **A new metric**: one entry in `metrics/catalogue.rs` (name, unit, what it means); its value
//!   in `analysis/figures.rs`. Thresholds, `compare`, BMF and the reports read it from there by
//!   its catalogue name.
//! - **A new output**: a type implementing [`report::Exporter`] in `report/<name>.rs`, listed in
//!   [`report::write_all`]; a golden file for the text a user reads (`tests/golden.rs`).
//! - **A new server kind**: a server profile (launch, log markers, phases, readiness) in
//!   `fixtures/servers/<kind>.toml`, registered in `server/profile.rs`; servers that are not
//!   Synapse start through `server/native.rs`.
//!
//! # Three things called "profile"
//!
//! - A **server profile** ([`server::ServerProfile`], `fixtures/servers/*.toml`): how to start a
//!   kind of server and read its boot from its log lines.
//! - A **profiler** ([`profile`]: py-spy, perf) and what it records: flamegraphs of a boot or a
//!   workload; `[profile]` in a scenario chooses one.
//! - A **profiled boot** (`run/profiling.rs`): the extra boot a run makes under the profiler,
//!   apart from the timed ones, so that the profiler's cost never lands in a timed figure; its
//!   overhead is reported against the unprofiled warm boots.

pub mod analysis;
pub mod boot;
pub mod cli;
pub mod dataset;
pub mod history;
pub mod load;
pub mod matrix;
pub mod meter;
pub mod metrics;
pub mod profile;
pub mod report;
pub mod result;
pub mod run;
pub mod scenario;
pub mod server;
pub mod stats;
pub mod util;
