//! Command-line types (clap derive). They stay apart from the validated scenario: the CLI
//! parses arguments, `scenario::load` validates the file, `TryFrom` joins the two.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::run::RunOptions;

const EXAMPLES: &str = "\
Examples:
  hsbench run scenarios/smoke.toml
  hsbench run scenarios/smoke.toml --server-version 1.163.2 --out /tmp/results
  hsbench check scenarios/smoke.toml

Exit codes: 0 ok · 2 bad input · 3 server failed (install, crash, boot timeout)
            4 dataset load or workload failed · 5 results not writable · 130 interrupted";

/// Benchmark and load-test harness for Matrix homeservers.
#[derive(Debug, Parser)]
#[command(name = "hsbench", version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario: install the server, build the dataset, time boots, run workloads.
    Run(RunArgs),
    /// Parse and validate a scenario without running it.
    Check {
        /// Scenario file (TOML).
        scenario: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    /// Directory that receives the run directory `<run-id>/`.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub out: PathBuf,
    /// Server version to install and test, overriding `[server] version`.
    #[arg(long, value_name = "V")]
    pub server_version: Option<String>,
    /// No progress bars or stage lines; the summary still goes to stdout.
    #[arg(long, short)]
    pub quiet: bool,
    /// Concurrent requests while loading the dataset.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub load_concurrency: u16,
}

impl From<&RunArgs> for RunOptions {
    fn from(a: &RunArgs) -> Self {
        RunOptions {
            results_dir: a.out.clone(),
            server_version: a.server_version.clone(),
            quiet: a.quiet,
            load_concurrency: a.load_concurrency as usize,
        }
    }
}
