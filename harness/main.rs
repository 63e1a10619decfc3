//! The `hsbench` binary: parse the arguments, run the command, exit with its code. Everything
//! else is the library's (`hsbench::cli`); the exit codes are listed in `hsbench --help`.

use std::process::ExitCode;

use clap::Parser;
use hsbench::cli::{Cli, execute};

fn main() -> ExitCode {
    match execute(Cli::parse()) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
