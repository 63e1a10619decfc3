//! `hsbench ab`: base against head in one command. Both sides are installed (a git ref becomes
//! a worktree of the repository with its own cached virtualenv; a directory is used as it is; a
//! file is a native server's binary; a version is a PyPI release), share one fixture (the
//! base's: a head with new schema deltas applies them at boot, as an upgrade would), and boot in
//! turns, ABBA…, inside one run, so that the machine's drift falls on both alike. The result is
//! a run directory per side (`base/`, `head/`, each a complete run) and one comparison with the
//! two gates (`compare.md`, `compare.json`), sub-phases included, plus differential flamegraphs
//! when the scenario profiles.

use std::path::{Path, PathBuf};

use super::error::RunError;
use super::options::RunOptions;
use super::options::RunOutcome;
use super::turns::Turns;
use crate::analysis::compare::{self, CompareError, Comparison, GateOverrides, Gates};
use crate::result::{RunResult, RunStatus};
use crate::scenario::{Scenario, ServerKind};
use crate::server::ServerError;
use crate::server::git::{self, GitError};
use crate::server::synapse::{InstallStep, SynapseInstall};
use crate::util::exit::Exit;

#[derive(Debug, thiserror::Error)]
pub enum AbError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("{side}: {source}")]
    Install {
        side: String,
        #[source]
        source: ServerError,
    },
    /// A side's run failed or was interrupted; its directory holds what it measured.
    #[error("{side} ({}): {source}", dir.display())]
    Side {
        side: String,
        dir: PathBuf,
        #[source]
        source: Box<RunError>,
    },
    #[error(transparent)]
    Compare(#[from] CompareError),
    /// A signal while the sides were being installed (nothing measured yet).
    #[error("interrupted by {} while installing the sides", crate::util::interrupt::name(*signal))]
    Interrupted { signal: i32 },
    #[error("{}: {source}", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl AbError {
    pub fn exit_code(&self) -> Exit {
        match self {
            AbError::Usage(_) | AbError::Git(_) | AbError::Compare(_) => Exit::BadInput,
            AbError::Install { .. } => Exit::ServerFailed,
            AbError::Side { source, .. } => source.exit_code(),
            AbError::Output { .. } => Exit::NotWritable,
            AbError::Interrupted { signal } => Exit::Signal(*signal),
        }
    }
}

/// What one side of the comparison is, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SideSpec {
    /// A Synapse source directory, used as it is (uncommitted changes included).
    Checkout(PathBuf),
    /// A native server's binary.
    Binary(PathBuf),
    /// A commit of the repository, checked out into a worktree slot.
    Rev(String),
    /// A Synapse release from PyPI.
    Release(String),
}

impl SideSpec {
    /// A path that exists is a directory or a binary; otherwise a version number is a release
    /// (for a PyPI Synapse scenario without a repository) and anything else a git ref.
    pub fn parse(arg: &str, scenario: &Scenario, repo: Option<&Path>) -> SideSpec {
        let p = Path::new(arg);
        if p.is_dir() {
            return SideSpec::Checkout(crate::util::fs::absolute(p.to_path_buf()));
        }
        if p.is_file() {
            return SideSpec::Binary(crate::util::fs::absolute(p.to_path_buf()));
        }
        let looks_like_version =
            arg.chars().next().is_some_and(|c| c.is_ascii_digit()) && arg.contains('.');
        if looks_like_version
            && repo.is_none()
            && scenario.server.kind == ServerKind::Synapse
            && scenario.server.source.is_none()
        {
            return SideSpec::Release(arg.to_string());
        }
        SideSpec::Rev(arg.to_string())
    }
}

/// Timed boots a side when neither `--boots` nor the scenario asks for more: 8 against 8 can
/// reach p = 0.0002 and tell a shift of a few percent from boot-to-boot jitter; a scenario's 3
/// repeats cannot reach p < 0.05 at all.
pub const DEFAULT_BOOTS: u32 = 8;

/// Boots a side under the work meter (`[boot] meter = "work"`) when neither `--boots` nor the
/// scenario asks for more: instruction counts spread by a few hundredths of a percent, so the
/// rank-sum test's floor decides, and 5 against 5 reaches p = 0.008 (one boot out of place
/// still 0.016).
pub const DEFAULT_WORK_BOOTS: u32 = 5;

/// Boots a side `ab` and `bisect` take when not told.
pub fn default_boots(scenario: &Scenario) -> u32 {
    let floor = match scenario.boot.meter {
        crate::scenario::MeterMode::Work => DEFAULT_WORK_BOOTS,
        _ => DEFAULT_BOOTS,
    };
    scenario.boot.repeats.max(floor)
}

/// How to run `ab`.
#[derive(Debug, Clone)]
pub struct AbOptions {
    pub base: String,
    pub head: String,
    /// The repository git refs name (default: the scenario's `[server] source`).
    pub repo: Option<PathBuf>,
    /// Timed boots a side (default: the scenario's `[boot] repeats`, at least [`DEFAULT_BOOTS`]).
    pub boots: Option<u32>,
    /// Each side on a fixture of its own (default: the head boots on the base's).
    pub fresh_fixture: bool,
    pub gates: GateOverrides,
    /// Where the `ab` directory goes, quiet, fixtures, …; `run_id` names the directory.
    pub run: RunOptions,
    /// The worktree slots of the two sides.
    pub slots: [String; 2],
    /// The base's run, measured before (by an earlier `bisect` step): the base is not booted
    /// again. Only for `[boot] meter = "work"`, whose instruction counts do not drift with
    /// the machine as wall time does.
    pub base_run: Option<RunOutcome>,
}

impl AbOptions {
    pub fn new(base: &str, head: &str, run: RunOptions) -> Self {
        Self {
            base: base.into(),
            head: head.into(),
            repo: None,
            boots: None,
            fresh_fixture: false,
            gates: GateOverrides::default(),
            run,
            slots: ["base".into(), "head".into()],
            base_run: None,
        }
    }
}

/// One side, resolved and installed.
#[derive(Debug, Clone)]
pub struct Side {
    /// `base` or `head`.
    pub label: String,
    /// What the user gave.
    pub given: String,
    /// The commit, for a git side or a checkout in git.
    pub commit: Option<String>,
    /// The scenario as this side runs it.
    pub scenario: Scenario,
    /// The version its fixtures are keyed by (alone, without `ab`).
    pub fixture_version: String,
}

/// What `ab` hands back.
#[derive(Debug)]
pub struct AbOutcome {
    pub dir: PathBuf,
    pub base: RunOutcome,
    pub head: RunOutcome,
    pub comparison: Comparison,
    /// Differential flamegraphs, head against base (when the scenario profiles).
    pub flamediffs: Vec<crate::profile::FlameDiff>,
}

/// Resolve and install one side (blocking work on the blocking pool).
pub async fn prepare_side(
    scenario: &Scenario,
    label: &str,
    given: &str,
    repo: Option<&Path>,
    slot: &str,
    quiet: bool,
) -> Result<Side, AbError> {
    let say = |m: &str| {
        if !quiet {
            eprintln!("==> [{label}] {m}");
        }
    };
    let mut sc = scenario.clone();
    let install_err = |source| AbError::Install {
        side: label.to_string(),
        source,
    };
    let repo = repo
        .map(Path::to_path_buf)
        .or(scenario.server.source.clone());
    let spec = SideSpec::parse(given, scenario, repo.as_deref());
    let mut commit = None;
    let checkout = match spec {
        SideSpec::Binary(b) => {
            if sc.server.kind == ServerKind::Synapse {
                return Err(AbError::Usage(format!(
                    "{label}: {} is a file, and this scenario's server is Synapse: give a source \
                     directory, a git ref of the checkout, or a version",
                    b.display()
                )));
            }
            sc.server.binary = Some(b);
            None
        }
        SideSpec::Release(v) => {
            sc.server.version = v;
            None
        }
        SideSpec::Checkout(d) => Some(d),
        SideSpec::Rev(rev) => {
            if sc.server.kind != ServerKind::Synapse {
                return Err(AbError::Usage(format!(
                    "{label}: {rev:?} is not a file: for {} give the two binaries",
                    sc.server.kind.as_str()
                )));
            }
            let repo = repo.ok_or_else(|| {
                AbError::Usage(format!(
                    "{label}: {rev:?} is a git ref, and there is no repository to find it in: \
                     give --repo <checkout> or [server] source in the scenario"
                ))
            })?;
            let c = git::resolve(&repo, &rev)?;
            say(&format!(
                "{rev} = {} {}: worktree slot {slot:?}",
                &c[..12.min(c.len())],
                git::subject(&repo, &c)
            ));
            let (r, c2, s) = (repo.clone(), c.clone(), slot.to_string());
            let dir = tokio::task::spawn_blocking(move || git::worktree(&r, &c2, &s))
                .await
                .expect("worktree task")?;
            commit = Some(c);
            Some(dir)
        }
    };
    let fixture_version = match (&checkout, sc.server.kind) {
        (Some(dir), _) => {
            sc.server.source = Some(dir.clone());
            let (d, step) = (dir.clone(), InstallStep::default());
            let st = step.clone();
            let task =
                tokio::task::spawn_blocking(move || SynapseInstall::ensure_source_with(&d, &st));
            let what = format!("installing {}", dir.display());
            let i = super::wait::wait_showing_steps(quiet, &say, task, &what, &step)
                .await
                .map_err(install_err)?;
            if i.installed_now {
                say(&format!(
                    "installed {} in {:.0} s",
                    i.version, i.install_seconds
                ));
            }
            if commit.is_none() {
                commit = i.source.as_ref().and_then(|s| s.commit.clone());
            }
            i.fixture_version()
        }
        (None, ServerKind::Synapse) => {
            let (v, step) = (sc.server.version.clone(), InstallStep::default());
            let st = step.clone();
            let task = tokio::task::spawn_blocking(move || SynapseInstall::ensure_with(&v, &st));
            let what = format!("installing Synapse {} from PyPI", sc.server.version);
            super::wait::wait_showing_steps(quiet, &say, task, &what, &step)
                .await
                .map_err(install_err)?
                .version
        }
        (None, kind) => {
            let binary = sc.server.binary.clone().ok_or_else(|| {
                AbError::Usage(format!(
                    "{label}: {} needs a binary ([server] binary, or a path here)",
                    kind.as_str()
                ))
            })?;
            let profile = sc.server.profile().map_err(|e| {
                install_err(ServerError::Install {
                    step: "profile".into(),
                    source: e.into(),
                })
            })?;
            let launch = profile.launch.clone().ok_or_else(|| {
                install_err(ServerError::Install {
                    step: "profile".into(),
                    source: format!("profile {:?} has no [launch] section", profile.name).into(),
                })
            })?;
            let k = kind.as_str().to_string();
            tokio::task::spawn_blocking(move || {
                crate::server::native::NativeInstall::probe(&k, &binary, &launch)
            })
            .await
            .expect("probe task")
            .map_err(install_err)?
            .identity()
        }
    };
    Ok(Side {
        label: label.into(),
        given: given.into(),
        commit,
        scenario: sc,
        fixture_version,
    })
}

/// Base against head: both installed, one fixture, boots in turns, one comparison.
pub async fn ab(scenario: &Scenario, o: &AbOptions) -> Result<AbOutcome, AbError> {
    let mut scenario = scenario.clone();
    scenario.boot.repeats = o.boots.unwrap_or(default_boots(&scenario));
    if o.base_run.is_some() && scenario.boot.meter != crate::scenario::MeterMode::Work {
        return Err(AbError::Usage(
            "a base measured before is reused only under [boot] meter = \"work\": wall time \
             drifts with the machine, so both sides must boot in turns"
                .into(),
        ));
    }
    if scenario.sweep.is_some() {
        return Err(AbError::Usage(
            "ab compares two servers on one dataset; this scenario is a [sweep]".into(),
        ));
    }
    let quiet = o.run.quiet;
    let repo = o.repo.as_deref();
    let sides = async {
        let base = prepare_side(&scenario, "base", &o.base, repo, &o.slots[0], quiet).await?;
        let head = prepare_side(&scenario, "head", &o.head, repo, &o.slots[1], quiet).await?;
        Ok::<_, AbError>((base, head))
    };
    // An install takes minutes: a signal ends it (the runtime drops the blocking work).
    let (base, head) = tokio::select! {
        r = sides => r?,
        signal = crate::util::interrupt::interrupted() => {
            return Err(AbError::Interrupted { signal });
        }
    };
    let id = o
        .run
        .run_id
        .clone()
        .unwrap_or_else(|| format!("{}-ab", super::run_id(&scenario)));
    let dir = crate::util::fs::absolute(o.run.results_dir.join(&id));
    std::fs::create_dir_all(&dir).map_err(|source| AbError::Output {
        path: dir.clone(),
        source,
    })?;
    // A head whose own fixture key differs from the base's (new schema deltas, another
    // release) must boot on what the base built, as an upgrade would: the base builds (or finds)
    // the fixture before either side starts, so the head can never be the one that builds it.
    // A rebuild is done once, there too (two sides removing one fixture would race).
    let mut rebuild = o.run.rebuild_fixture;
    let differ = base.fixture_version != head.fixture_version;
    if !o.fresh_fixture && (differ || rebuild) {
        if !quiet && differ {
            eprintln!(
                "==> the head's schema differs from the base's ({} / {}): the base builds the \
                 fixture, the head applies its schema deltas to it at its first boot",
                base.fixture_version, head.fixture_version
            );
        }
        let seed = RunOptions {
            results_dir: dir.clone(),
            run_id: Some(format!("{}-fixture", base.label)),
            label: Some(format!("{} fixture", base.label)),
            seed_only: true,
            ..o.run.clone()
        };
        super::run(&base.scenario, &seed)
            .await
            .map_err(|source| AbError::Side {
                side: base.label.clone(),
                dir: dir.join(format!("{}-fixture", base.label)),
                source: Box::new(source),
            })?;
        rebuild = false;
    }
    let turns = Turns::new(2);
    let opts = |side: &Side, t: &Turns| RunOptions {
        results_dir: dir.clone(),
        run_id: Some(side.label.clone()),
        label: Some(side.label.clone()),
        fixture_version: (!o.fresh_fixture).then(|| base.fixture_version.clone()),
        turns: Some(t.clone()),
        rebuild_fixture: rebuild,
        ..o.run.clone()
    };
    let (base_opts, head_opts) = (opts(&base, &turns[0]), opts(&head, &turns[1]));
    let one = |side: &Side, opts: RunOptions, t: Turns| {
        let sc = side.scenario.clone();
        async move {
            let r = super::run(&sc, &opts).await;
            t.leave();
            r
        }
    };
    let (rb, rh) = match &o.base_run {
        Some(b) => {
            let head_opts = RunOptions {
                turns: None,
                ..head_opts
            };
            let sc = head.scenario.clone();
            (Ok(b.clone()), super::run(&sc, &head_opts).await)
        }
        None => {
            tokio::join!(
                one(&base, base_opts, turns[0].clone()),
                one(&head, head_opts, turns[1].clone())
            )
        }
    };
    let side_err = |side: &Side, source: RunError| AbError::Side {
        side: side.label.clone(),
        dir: dir.join(&side.label),
        source: Box::new(source),
    };
    // An interrupted side names the signal, whatever the other did.
    let (rb, rh) = match (rb, rh) {
        (Ok(b), Ok(h)) => (b, h),
        (Err(e @ RunError::Interrupted { .. }), _) => return Err(side_err(&base, e)),
        (_, Err(e @ RunError::Interrupted { .. })) => return Err(side_err(&head, e)),
        (Err(e), _) => return Err(side_err(&base, e)),
        (_, Err(e)) => return Err(side_err(&head, e)),
    };
    let comparison = compare_sides(&rb.result, &rh.result, &o.gates)?;
    let flamediffs = if scenario.profile.boot || scenario.profile.load {
        let (b, h, out) = (
            rb.run_dir.clone(),
            rh.run_dir.clone(),
            dir.join("flamediff"),
        );
        tokio::task::spawn_blocking(move || crate::profile::flamediff(&b, &h, &out))
            .await
            .expect("flamediff task")
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let md = markdown(
        &base,
        &head,
        &rb.result,
        &comparison,
        scenario.boot.repeats,
        o.base_run.is_some(),
    );
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        crate::util::fs::write_atomic(&path, bytes).map_err(|source| AbError::Output {
            path: path.clone(),
            source,
        })
    };
    write("compare.md", md.as_bytes())?;
    write(
        "compare.json",
        &serde_json::to_vec_pretty(&comparison).expect("a comparison serializes"),
    )?;
    Ok(AbOutcome {
        dir,
        base: rb,
        head: rh,
        comparison,
        flamediffs,
    })
}

/// The two sides compared with the head scenario's gates, as overridden.
fn compare_sides(
    base: &RunResult,
    head: &RunResult,
    overrides: &GateOverrides,
) -> Result<Comparison, CompareError> {
    let gates = overrides.apply(Gates::of_run(head));
    compare::compare_interleaved(base, head, &gates)
}

/// compare.md of an `ab` run: how it was measured, then the comparison.
pub fn markdown(
    base: &Side,
    head: &Side,
    base_result: &RunResult,
    c: &Comparison,
    boots: u32,
    base_reused: bool,
) -> String {
    let side = |s: &Side| match &s.commit {
        Some(c) if !s.given.starts_with(c.as_str()) => {
            format!("`{}` ({})", s.given, &c[..12.min(c.len())])
        }
        _ => format!("`{}`", s.given),
    };
    let status = match base_result.status {
        RunStatus::Complete => "",
        _ => " (base incomplete)",
    };
    let how = if base_reused {
        format!(
            "The head booted {boots} time(s) under the work meter; the base's boots are those \
             measured before, at {} (instruction counts do not drift with the machine), on the \
             same fixture.",
            base_result.started_at
        )
    } else {
        let unit =
            if base_result.boots.iter().all(|b| b.warmup) && !base_result.work_boots.is_empty() {
                "boot(s) under the work meter"
            } else {
                "timed boot(s)"
            };
        format!(
            "Base and head booted in turns (ABBA…) within one run, {boots} {unit} a side, on one \
             fixture: a drift of the machine falls on both. Each side's run is in `base/` and \
             `head/`."
        )
    };
    format!(
        "# ab: {} against {}{status}\n\n{how}\n\n{}",
        side(head),
        side(base),
        crate::report::compare::markdown(c)
    )
}
