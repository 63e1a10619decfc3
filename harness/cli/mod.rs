//! Floor 10: the command line. [`args`] holds the clap types; [`execute`] runs a parsed command
//! and returns what it ended with; [`CliError`] carries each command's own error and the exit
//! code the `--help` text documents.
mod outcome;
pub use outcome::Outcome;

pub mod args;
mod error;
mod history;
mod inspect;
pub(crate) mod out;
mod run;

pub use args::{Cli, Command};
pub use error::{
    CliError, CompareCommandError, FixturesCommandError, RunCommandError, SizeCommandError,
};

/// Run one parsed command to its end.
pub fn execute(cli: Cli) -> Result<Outcome, CliError> {
    match cli.command {
        // The generator runs on a runtime of its own (current-thread by default).
        Command::HttpLoad(a) => inspect::http_load(&a),
        // Blocking probe threads, one per CPU: no runtime beside them.
        Command::Noise(a) => inspect::noise(&a),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut cmd, "hsbench", &mut text);
            out::out!("{}", String::from_utf8_lossy(&text));
            Ok(Outcome::Ok)
        }
        Command::Man => inspect::man(),
        // The store's clients are blocking (PostgreSQL's included); `bisect` starts a runtime.
        Command::History { action, db } => history::execute(action, &db),
        command => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(CliError::Runtime)?;
            let out = rt.block_on(dispatch(command));
            // Blocking work a signal cut short (a copy, an import) is not waited for.
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
            out
        }
    }
}

async fn dispatch(command: Command) -> Result<Outcome, CliError> {
    match command {
        Command::Run(a) => Ok(run::run(&a, false).await?),
        Command::Seed(a) => Ok(run::run(&a, true).await?),
        Command::Serve(a) => Ok(run::serve(&a).await?),
        Command::Ab(a) => run::ab(&a).await,
        Command::Bisect(a) => run::bisect(&a).await,
        Command::Check { scenario } => Ok(inspect::check(&scenario)?),
        Command::Flamediff { before, after, out } => inspect::flamediff(&before, &after, out),
        Command::Size(a) => Ok(inspect::size(&a)?),
        Command::SideBySide(a) => Ok(inspect::side_by_side(&a)?),
        Command::Compare(a) => Ok(inspect::compare(&a)?),
        Command::Report { run } => inspect::report(&run),
        Command::Merge { dirs, out } => inspect::merge(&dirs, &out),
        Command::Schema => {
            out::out!("{}", crate::result::schema::result_schema_text());
            Ok(Outcome::Ok)
        }
        Command::Baselines { dir } => Ok(inspect::baselines(&dir)),
        Command::Fixtures {
            action,
            fixtures_dir,
        } => Ok(inspect::fixtures(action, fixtures_dir)?),
        Command::Clean { fixtures_dir } => Ok(inspect::clean(fixtures_dir)),
        Command::HttpLoad(_)
        | Command::Noise(_)
        | Command::Completions { .. }
        | Command::Man
        | Command::History { .. } => {
            unreachable!("handled before the runtime starts")
        }
    }
}
