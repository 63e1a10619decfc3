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
//! | 10 | [`cli`] | the command line: clap types, dispatch, per-command errors and exit codes |

pub mod analysis;
pub mod boot;
pub mod cli;
pub mod dataset;
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
