use std::process::ExitCode;

use clap::Parser;
use hsbench::cli::{Cli, Command};
use hsbench::run::{RunError, RunOptions, run};
use hsbench::{report, scenario};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(async {
        match cli.command {
            Command::Check { scenario } => match scenario::load(&scenario) {
                Ok(s) => {
                    println!("{}: ok ({})", scenario.display(), s.name);
                    0
                }
                Err(e) => fail(&RunError::from(e)),
            },
            Command::Run(args) => {
                let scenario = match scenario::load(&args.scenario) {
                    Ok(s) => s,
                    Err(e) => return fail(&RunError::from(e)),
                };
                match run(&scenario, &RunOptions::from(&args)).await {
                    Ok(out) => {
                        println!("{}", report::markdown(&out.result));
                        println!("results: {}", out.run_dir.display());
                        0
                    }
                    Err(e) => fail(&e),
                }
            }
        }
    });
    ExitCode::from(code as u8)
}

fn fail(e: &RunError) -> i32 {
    eprintln!("error: {:#}", anyhow::Error::msg(e.to_string()));
    e.exit_code()
}
