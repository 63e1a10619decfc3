//! Command-line types (clap derive). They stay apart from the validated scenario: the CLI
//! parses arguments, `scenario::load` validates the file, `From` joins the two into
//! [`RunOptions`].

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::dataset::fixture::FixtureStore;
use crate::run::RunOptions;

const EXAMPLES: &str = "\
Examples:
  hsbench run scenarios/smoke.toml
  hsbench run scenarios/smoke.toml --server-version 1.163.2 --out /tmp/results
  hsbench check scenarios/smoke.toml
  hsbench seed scenarios/smoke.toml          # build the dataset fixture only
  hsbench fixtures list
  hsbench fixtures rm 3fa5                   # by key prefix; --all for every fixture
  hsbench fixtures verify                    # every fixture against its manifest
  hsbench clean                              # what killed runs left behind
  hsbench flamediff results/<base-run> results/<new-run>   # red = grew
  hsbench compare results/<base-run> results/<new-run>     # exit 1 on a regression
  hsbench ab scenarios/smoke.toml --repo ../synapse --base origin/develop --head HEAD
  hsbench bisect scenarios/smoke.toml --repo ../synapse --good v1.163.0 --bad HEAD \
      --metric time_to_ready
  hsbench run scenarios/sweep-users.toml     # a [sweep]: one run per value, fitted exponents
  hsbench size results/<id>-sweep --users 150000
  hsbench history add results/<run>          # into results/history.sqlite
  hsbench history check --last 5             # exit 1 on a recent regression change point
  hsbench history report --out results/history
  hsbench noise --window 2s                  # how steady is this machine: what 10 boots a side can tell

  hsbench completions bash > ~/.local/share/bash-completion/completions/hsbench

Exit codes (every command):
  0      ok
  1      a gate failed (thresholds, the error gate, lost writes) or `compare` found a regression
  2      bad input (scenario, arguments, a result or sweep that cannot be read)
  3      the server failed (install, crash, boot timeout)
  4      the dataset load or a workload failed
  5      results, fixture cache or an output file not writable; a damaged fixture
  128+N  interrupted by signal N (130 SIGINT, 143 SIGTERM, 129 SIGHUP)";

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
    /// Build (or find) the scenario's dataset fixture without timing boots or running workloads.
    Seed(RunArgs),
    /// Boot the scenario's server over its dataset and keep it serving (for `run --attach`
    /// shards) until SIGINT, SIGTERM or SIGHUP.
    Serve(ServeArgs),
    /// Base against head in one run: both sides installed (a git ref becomes a worktree of
    /// the repository with a cached virtualenv), one fixture, boots interleaved ABBA…, and one
    /// comparison with the two gates (sub-phases included). Exit 1 when the head regressed.
    Ab(AbArgs),
    /// Find the first commit between --good and --bad whose metric regresses against good:
    /// every step an `ab` of good against the commit tried. Writes bisect.md with every step.
    Bisect(BisectArgs),
    /// Parse and validate a scenario without running it.
    Check {
        /// Scenario file (TOML).
        scenario: PathBuf,
    },
    /// Differential flamegraphs of a candidate against a baseline: two run directories (one
    /// SVG per profile both have: boot, each phase, each workload) or two .folded files.
    Flamediff {
        /// Baseline run directory or .folded file.
        before: PathBuf,
        /// Candidate run directory or .folded file.
        after: PathBuf,
        /// Directory for the SVGs (default: the candidate run directory, else `.`).
        #[arg(long, short, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Compare a candidate with a baseline: every boot phase, milestone, shutdown, RSS, CPU and
    /// herd figure gets a verdict (Mann–Whitney significance and a bootstrap interval of the
    /// ratio of medians beyond the noise threshold). Exit 1 when anything regressed.
    Compare(CompareArgs),
    /// Extrapolate a sizing sweep to a value of its dimension: each phase, time to ready,
    /// peak RSS, data size and herd p99 with 95% prediction intervals.
    Size(SizeArgs),
    /// Put the sizing sweeps of different servers over one dataset side by side: per value,
    /// time to ready, the phase that dominates it and the start-up work after ready; each
    /// metric's growth exponent per server; predictions at `--at`.
    SideBySide(SideBySideArgs),
    /// Write summary.md, report.html and the dashboard exports of a run again from its
    /// result.json and files.
    Report {
        /// Run directory or its result.json.
        run: PathBuf,
    },
    /// Print the JSON Schema of result.json (published as schema/result.schema.json).
    Schema,
    /// Load a static loopback HTTP endpoint with hsbench's request path (closed loop, or an
    /// open-model fixed rate with coordinated-omission correction), reporting requests per
    /// CPU-second of the generator: the benchmark of the generator itself against wrk and oha.
    HttpLoad(HttpLoadArgs),
    /// How steady this machine is: compute, memory, page-fault and Python probes on every CPU
    /// at once, and the smallest change paired boots (as `ab` runs them) can tell from its
    /// jitter. Run it on a CI runner before trusting a gate to a few percent.
    Noise(NoiseArgs),
    /// Merge the histograms (`.hist`, HDR V2) of several run directories, e.g. shards of one
    /// load run on several machines, into one directory: merged `.hist`/`.hgrm` per histogram
    /// and `merged.json` with their percentiles.
    Merge {
        /// Run directories.
        #[arg(required = true, num_args = 1..)]
        dirs: Vec<PathBuf>,
        /// Output directory.
        #[arg(long, short, value_name = "DIR")]
        out: PathBuf,
    },
    /// List saved baselines.
    Baselines {
        /// Where baselines are kept.
        #[arg(long, default_value = "results/baselines", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff) of hsbench.
    Man,
    /// Remove what runs killed without a chance to clean up left behind: work directories
    /// (a server's data, credentials with access tokens) and private PostgreSQL clusters whose
    /// process is gone. Every run does this too before it starts.
    Clean {
        /// Fixture cache directory (default: <cache>/fixtures), beside which runs work.
        #[arg(long, value_name = "DIR")]
        fixtures_dir: Option<PathBuf>,
    },
    /// The history of runs a CI dashboard keeps: add runs to a store (SQLite by default,
    /// PostgreSQL by URL), find change points per metric and machine (E-Divisive means), fail
    /// when one is a recent regression, draw the dashboard, bisect a change point.
    History {
        #[command(subcommand)]
        action: HistoryAction,
        /// The store: a SQLite file, or a PostgreSQL URL (postgres://user:password@host/db).
        #[arg(long, global = true, default_value = crate::history::DEFAULT_DB, value_name = "FILE|URL")]
        db: String,
    },
    /// Manage the fixture cache.
    Fixtures {
        #[command(subcommand)]
        action: FixturesAction,
        /// Fixture cache directory (default: <cache>/fixtures).
        #[arg(long, global = true, value_name = "DIR")]
        fixtures_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum FixturesAction {
    /// List cached fixtures: key, scenario, server, database, totals, size; and what killed
    /// runs left behind.
    List,
    /// Check every cached fixture's files against its manifest (sizes, sampled content):
    /// exit 1 when one is damaged.
    Verify,
    /// Remove fixtures whose key starts with KEY, or all with --all.
    Rm {
        key: Option<String>,
        #[arg(long, conflicts_with = "key")]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum HistoryAction {
    /// Add run directories (idempotent by run id): commit, branch, time, machine, server and
    /// every catalogue metric. A run that did not complete is refused.
    Add {
        #[arg(required = true, num_args = 1..)]
        runs: Vec<PathBuf>,
        /// The commit the runs measured (default: the server checkout's HEAD, else the
        /// server's version).
        #[arg(long, value_name = "SHA")]
        commit: Option<String>,
        /// The branch (default: the checkout's).
        #[arg(long)]
        branch: Option<String>,
    },
    /// Add every run under a directory: run directories and BMF files (`bmf.json` without a
    /// result.json beside it, `*.bmf.json`), three levels deep.
    Import { dir: PathBuf },
    /// Every series (metric · scenario · server · machine) with its runs and change points.
    List {
        #[command(flatten)]
        detect: DetectArgs,
    },
    /// Exit 1 when a series' latest runs hold a regression: a change point upward among its
    /// last N runs, at least --min-change and significant at --significance.
    Check {
        /// Runs at the end of each series a change point must be among.
        #[arg(long, default_value_t = 5, value_name = "N")]
        last: usize,
        #[command(flatten)]
        detect: DetectArgs,
    },
    /// Write the dashboard: DIR/report.html (self-contained), DIR/history.json.
    Report {
        #[arg(long, short, default_value = "results/history", value_name = "DIR")]
        out: PathBuf,
        /// Runs at the end of a series whose change points are open regressions.
        #[arg(long, default_value_t = 5, value_name = "N")]
        last: usize,
        #[command(flatten)]
        detect: DetectArgs,
    },
    /// Bisect a change point (`<metric>@<first run after>`, as `list` and the dashboard name
    /// it): `hsbench bisect` between its two commits, on the metric, with the scenario given.
    Bisect {
        change_point: String,
        #[command(flatten)]
        sides: SidesArgs,
        #[command(flatten)]
        detect: DetectArgs,
    },
}

/// How change points are found.
#[derive(Debug, Clone, clap::Args)]
pub struct DetectArgs {
    /// Significance level of the permutation test.
    #[arg(long, default_value_t = 0.01, value_name = "P")]
    pub significance: f64,
    /// The smallest change of a series' median reported (0.01 = 1%).
    #[arg(long, default_value_t = 0.01, value_name = "SHARE")]
    pub min_change: f64,
    /// Permutations per test.
    #[arg(long, default_value_t = 199, value_name = "N")]
    pub permutations: usize,
}

impl DetectArgs {
    pub fn detector(&self) -> crate::stats::changepoint::Detector {
        crate::stats::changepoint::Detector {
            alpha: self.significance,
            permutations: self.permutations,
            min_magnitude: self.min_change,
            ..Default::default()
        }
    }
}

/// `hsbench noise`.
#[derive(Debug, clap::Args)]
pub struct NoiseArgs {
    /// How long to probe (shared by the probes: compute, memory, faults, python).
    #[arg(long, default_value = "90s", value_parser = humantime::parse_duration)]
    pub seconds: std::time::Duration,
    /// The length of the boots to stand for: the server's time to ready.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub window: std::time::Duration,
    /// Boots a side the floor is given for.
    #[arg(long, default_value_t = 10)]
    pub boots: usize,
    /// Significance level of the comparison (as `compare --alpha`).
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// The interpreter of the Python probe; default: `$HSBENCH_PYTHON`, else `python3` on
    /// PATH, and no Python probe when there is none.
    #[arg(long, value_name = "PATH", conflicts_with = "no_python")]
    pub python: Option<PathBuf>,
    /// Skip the Python probe.
    #[arg(long)]
    pub no_python: bool,
    /// Print the result as JSON (`schema_version` 1).
    #[arg(long)]
    pub json: bool,
}

/// The gates `compare`, `ab` and `bisect` take from the command line, each overriding the
/// scenario's `[compare]`.
#[derive(Debug, clap::Args)]
pub struct GateArgs {
    /// Changes within ± this share are noise (e.g. 0.05 = 5%); default: the candidate
    /// scenario's `[compare] noise` and `noise_by_metric`, else 0.05. Overrides both.
    #[arg(long, value_name = "SHARE")]
    pub noise: Option<f64>,
    /// Significance level of the rank test; default: `[compare] alpha`, else 0.05.
    #[arg(long)]
    pub alpha: Option<f64>,
    /// A time metric's medians must differ by more than this to count (e.g. "10ms", "0ms");
    /// default: `[compare] min_delta`, else 10ms.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub min_delta: Option<std::time::Duration>,
}

impl GateArgs {
    pub fn overrides(&self) -> crate::analysis::compare::GateOverrides {
        crate::analysis::compare::GateOverrides {
            noise: self.noise,
            alpha: self.alpha,
            min_delta_ms: self.min_delta.map(|d| d.as_secs_f64() * 1e3),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// BASELINE CANDIDATE, each a run directory, a result.json, or a directory of runs
    /// (samples pooled); with --baseline, only CANDIDATE.
    #[arg(num_args = 1..=2, required = true, value_name = "RUN")]
    pub runs: Vec<PathBuf>,
    /// Compare CANDIDATE with this saved baseline (`hsbench run --save-baseline NAME`).
    #[arg(long, value_name = "NAME")]
    pub baseline: Option<String>,
    /// Where baselines are kept.
    #[arg(long, default_value = "results/baselines", value_name = "DIR")]
    pub baselines_dir: PathBuf,
    #[command(flatten)]
    pub gates: GateArgs,
    /// Compare runs of different scenarios, datasets or databases anyway.
    #[arg(long)]
    pub force: bool,
    /// Also write the comparison as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write differential flamegraphs (when both sides have profiles) into this directory.
    #[arg(long, value_name = "DIR")]
    pub flamediff: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct SideBySideArgs {
    /// Sweep directories (`results/<id>-sweep`), one per server, over the same dataset spec.
    #[arg(required = true, num_args = 2..)]
    pub sweeps: Vec<PathBuf>,
    /// Also predict every server at this value of the swept dimension.
    #[arg(long, value_name = "N")]
    pub at: Option<u64>,
    /// Predict beyond 10× of a sweep's measured range anyway.
    #[arg(long)]
    pub force: bool,
    /// Directory for side-by-side.md, side-by-side.json and report.html (default:
    /// `results/side-by-side-<time>`).
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct SizeArgs {
    /// Sweep directory (`results/<id>-sweep`) or its sweep.json.
    pub sweep: PathBuf,
    #[arg(long, value_name = "N")]
    pub users: Option<u64>,
    #[arg(long, value_name = "N")]
    pub rooms: Option<u64>,
    #[arg(long, value_name = "N")]
    pub big_room_members: Option<u64>,
    #[arg(long, value_name = "N")]
    pub messages_per_room: Option<u64>,
    #[arg(long, value_name = "N")]
    pub dm_pairs: Option<u64>,
    #[arg(long, value_name = "N")]
    pub state_events_per_room: Option<u64>,
    /// For a sweep over `cpus`: the server's CPU quota in cores (e.g. 1.5).
    #[arg(long, value_name = "CORES")]
    pub cpus: Option<f64>,
    /// Extrapolate beyond 10× of the measured range anyway.
    #[arg(long)]
    pub force: bool,
}

impl SizeArgs {
    /// The (dimension, value) pairs given.
    pub fn given(&self) -> Vec<(&'static str, f64)> {
        let count = |v: Option<u64>| v.map(|v| v as f64);
        [
            ("users", count(self.users)),
            ("rooms", count(self.rooms)),
            ("big_room_members", count(self.big_room_members)),
            ("messages_per_room", count(self.messages_per_room)),
            ("dm_pairs", count(self.dm_pairs)),
            ("state_events_per_room", count(self.state_events_per_room)),
            ("cpus", self.cpus),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .collect()
    }
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    /// What the boots measure, overriding the scenario's `[boot] meter` (time, work, both).
    #[arg(long, value_enum, value_name = "METER")]
    pub meter: Option<MeterArg>,
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
    /// Build the dataset again even when its fixture is cached (replaces the fixture).
    #[arg(long)]
    pub rebuild_fixture: bool,
    /// A sweep: remove each point's fixture once the point is measured, when the sweep built it
    /// (for sweeps whose fixtures do not fit on the disk together).
    #[arg(long)]
    pub discard_fixtures: bool,
    /// Check a sample of users and rooms through the server's API against the plan.
    #[arg(long)]
    pub verify: bool,
    /// Fixture cache directory (default: <cache>/fixtures).
    #[arg(long, value_name = "DIR")]
    pub fixtures_dir: Option<PathBuf>,
    /// After the run, compare it with this saved baseline (`<baselines-dir>/NAME/<scenario>`),
    /// write compare.md and compare.json into the run directory, and exit 1 on a regression.
    #[arg(long, value_name = "NAME")]
    pub baseline: Option<String>,
    /// Save this run as the named baseline of its scenario (replacing the previous one).
    #[arg(long, value_name = "NAME")]
    pub save_baseline: Option<String>,
    /// Where baselines are kept (default: `<out>/baselines`, which with the default --out is
    /// `results/baselines`, where `hsbench compare --baseline` and `hsbench baselines` look).
    #[arg(long, value_name = "DIR")]
    pub baselines_dir: Option<PathBuf>,
    /// Run only the workloads, against an already running server: the `serve.json` that
    /// `hsbench serve` wrote (or its directory), or a loopback URL with --credentials.
    #[arg(
        long,
        value_name = "SERVE_JSON|URL",
        conflicts_with_all = ["baseline", "save_baseline", "baselines_dir", "rebuild_fixture", "verify"]
    )]
    pub attach: Option<String>,
    /// The dataset users' credentials that `hsbench serve` wrote (default: the one its
    /// serve.json names).
    #[arg(long, value_name = "FILE", requires = "attach")]
    pub credentials: Option<PathBuf>,
    /// With --attach: run clients j with j % COUNT == INDEX (0-based), e.g. 1/4. Default:
    /// $HSBENCH_SHARD, else $JOB_COMPLETION_INDEX/$HSBENCH_SHARDS (a Kubernetes Indexed Job),
    /// else the whole load.
    #[arg(long, value_name = "INDEX/COUNT", requires = "attach")]
    pub shard: Option<String>,
    /// With --attach: release the herd at this time (RFC 3339, or Unix seconds), so that every
    /// shard fires at the same instant. Default: $HSBENCH_RELEASE_AT, else when ready.
    #[arg(long, value_name = "TIME", requires = "attach")]
    pub release_at: Option<String>,
    /// Run the scenario once per sync protocol, its herd, triggered herd and steady traffic
    /// over each in turn on one fixture (the first is the reference), and write the runs side
    /// by side: `<results>/<run id>-protocols/protocols.{md,html,json}`. E.g. `v2,sliding`.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        conflicts_with_all = ["attach", "baseline", "save_baseline"]
    )]
    pub protocols: Vec<ProtocolArg>,
}

/// A sync protocol on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtocolArg {
    V2,
    Sliding,
}

impl From<ProtocolArg> for crate::scenario::SyncProtocol {
    fn from(p: ProtocolArg) -> Self {
        match p {
            ProtocolArg::V2 => Self::V2,
            ProtocolArg::Sliding => Self::Sliding,
        }
    }
}

/// `--meter`: what the boots measure, overriding `[boot] meter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MeterArg {
    /// Wall time only.
    Time,
    /// Instructions under the work meter (valgrind's callgrind) only.
    Work,
    /// Both: the timed boots, then as many under the work meter.
    Both,
}

impl From<MeterArg> for crate::scenario::MeterMode {
    fn from(m: MeterArg) -> Self {
        match m {
            MeterArg::Time => Self::Time,
            MeterArg::Work => Self::Work,
            MeterArg::Both => Self::Both,
        }
    }
}

/// What `ab` and `bisect` share: where results and fixtures go, the gates.
#[derive(Debug, clap::Args)]
pub struct SidesArgs {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    /// The repository the git refs name (default: the scenario's `[server] source`).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Boots a side (default: the scenario's `[boot] repeats`, at least 8, or 5 under the
    /// work meter). Timed boots run in turns and are compared pair by pair: fewer than 6 a
    /// side cannot reach p < 0.05 (work counts: fewer than 4).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub boots: Option<u32>,
    /// What the boots measure, overriding the scenario's `[boot] meter`: `work` gates on
    /// instructions (steady to a few hundredths of a percent on a noisy machine, ~30× slower
    /// boots), `time` on wall time, `both` on the two.
    #[arg(long, value_enum, value_name = "METER")]
    pub meter: Option<MeterArg>,
    /// Directory that receives the run directory.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub out: PathBuf,
    /// Fixture cache directory (default: <cache>/fixtures).
    #[arg(long, value_name = "DIR")]
    pub fixtures_dir: Option<PathBuf>,
    /// No stage lines.
    #[arg(long, short)]
    pub quiet: bool,
    /// Concurrent requests while loading the dataset.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub load_concurrency: u16,
    #[command(flatten)]
    pub gates: GateArgs,
}

impl SidesArgs {
    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            results_dir: self.out.clone(),
            quiet: self.quiet,
            load_concurrency: self.load_concurrency as usize,
            fixtures: self
                .fixtures_dir
                .as_ref()
                .map_or_else(FixtureStore::default, FixtureStore::new),
            ..RunOptions::default()
        }
    }
}

/// `hsbench ab`.
#[derive(Debug, clap::Args)]
pub struct AbArgs {
    #[command(flatten)]
    pub common: SidesArgs,
    /// The base: a git ref of the repository, a Synapse source directory, a native server's
    /// binary, or a Synapse version from PyPI.
    #[arg(long, value_name = "REF|DIR|BINARY|VERSION")]
    pub base: String,
    /// The head, in the same forms.
    #[arg(long, value_name = "REF|DIR|BINARY|VERSION")]
    pub head: String,
    /// Give the head a fixture of its own instead of booting it on the base's (the head's schema
    /// deltas then run while its fixture is built, not at each boot).
    #[arg(long)]
    pub fresh_fixture: bool,
    /// Only time boots: no workloads, no crash-restart cycles.
    #[arg(long)]
    pub boots_only: bool,
}

/// `hsbench bisect`.
#[derive(Debug, clap::Args)]
pub struct BisectArgs {
    #[command(flatten)]
    pub common: SidesArgs,
    /// A commit (ref) where the metric is good.
    #[arg(long, value_name = "REF")]
    pub good: String,
    /// A later commit where it regressed.
    #[arg(long, value_name = "REF")]
    pub bad: String,
    /// The metric (catalogue name: time_to_ready, phase.stores_start, subphase.<name>,
    /// work.phase.<name>, …). Default: work.time_to_ready when the scenario's `[boot] meter`
    /// counts work, else time_to_ready; with `meter = "work"` a time metric is read as its
    /// work twin (phase.X as work.phase.X).
    #[arg(long, value_name = "NAME")]
    pub metric: Option<String>,
}

/// `hsbench serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Scenario file (TOML): its dataset and server.
    pub scenario: PathBuf,
    /// Directory that receives the run directory `<run-id>/` (dataset, boot, serve.json).
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub out: PathBuf,
    /// Where to write the dataset users' credentials (mode 0600) for `run --attach`; a
    /// `serve.json` with the server's URL goes beside it. Default:
    /// <cache>/serve/<scenario name>/credentials.json.
    #[arg(long, value_name = "FILE")]
    pub credentials_out: Option<PathBuf>,
    /// Server version to install and serve, overriding `[server] version`.
    #[arg(long, value_name = "V")]
    pub server_version: Option<String>,
    /// Fixture cache directory (default: <cache>/fixtures).
    #[arg(long, value_name = "DIR")]
    pub fixtures_dir: Option<PathBuf>,
    /// No stage lines.
    #[arg(long, short)]
    pub quiet: bool,
}

impl From<&RunArgs> for RunOptions {
    fn from(a: &RunArgs) -> Self {
        RunOptions {
            results_dir: a.out.clone(),
            server_version: a.server_version.clone(),
            quiet: a.quiet,
            load_concurrency: a.load_concurrency as usize,
            fixtures: a
                .fixtures_dir
                .as_ref()
                .map_or_else(FixtureStore::default, FixtureStore::new),
            rebuild_fixture: a.rebuild_fixture,
            verify: a.verify,
            seed_only: false,
            discard_fixtures: a.discard_fixtures,
            ..RunOptions::default()
        }
    }
}

impl From<&ServeArgs> for RunOptions {
    fn from(a: &ServeArgs) -> Self {
        RunOptions {
            results_dir: a.out.clone(),
            server_version: a.server_version.clone(),
            quiet: a.quiet,
            fixtures: a
                .fixtures_dir
                .as_ref()
                .map_or_else(FixtureStore::default, FixtureStore::new),
            ..RunOptions::default()
        }
    }
}

/// `hsbench http-load`.
#[derive(Debug, clap::Args)]
pub struct HttpLoadArgs {
    /// `http://<loopback address>[:port]/path` (only 127.0.0.0/8, ::1 or localhost).
    pub url: String,
    /// Keep-alive connections (one worker each).
    #[arg(long, short, default_value_t = 50)]
    pub connections: usize,
    /// How long to send.
    #[arg(long, short, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: std::time::Duration,
    /// Requests per second (open model, latency corrected from each due time); without it, a
    /// closed loop.
    #[arg(long, short)]
    pub rate: Option<f64>,
    /// Runtime threads (1: a current-thread runtime).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}
