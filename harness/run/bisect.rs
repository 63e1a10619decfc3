//! `hsbench bisect`: the first commit between a good and a bad ref whose metric regresses
//! against the good side. Every step is an `ab` of the good commit against the commit tried
//! (boots in turns, the same gates as `compare`), with a bounded number of boots a side; the
//! good side is measured again at every step, so a drift of the machine over the bisection
//! never decides a verdict. The first step checks that the bad ref does regress.
//!
//! Under `[boot] meter = "work"` the metric is an instruction count (`work.time_to_ready` by
//! default): counts do not drift with the machine, so the good side's boots of the first step
//! serve every later step, and each step boots only the commit it tries.

use std::path::PathBuf;
use std::time::Instant;

use super::ab::{AbError, AbOptions, ab};
use super::options::RunOptions;
use crate::analysis::compare::{GateOverrides, Verdict};
use crate::scenario::Scenario;
use crate::server::git;

/// How to bisect.
#[derive(Debug, Clone)]
pub struct BisectOptions {
    pub good: String,
    pub bad: String,
    /// A catalogue name (`time_to_ready`, `phase.stores_start`, `subphase.<name>`,
    /// `work.phase.<name>`, …); `None`: see [`default_metric`].
    pub metric: Option<String>,
    pub repo: Option<PathBuf>,
    /// Boots a side at each step (default: [`super::ab::default_boots`]: the scenario's
    /// `[boot] repeats`, at least 8, or 5 under the work meter).
    pub boots: Option<u32>,
    pub gates: GateOverrides,
    /// Where the bisection's directory goes; `run_id` names it.
    pub run: RunOptions,
}

/// One commit tried.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct BisectStep {
    pub commit: String,
    pub subject: String,
    /// Position in the range (1 = the first commit after good).
    pub position: usize,
    pub good_median: f64,
    pub median: f64,
    /// median / good median − 1.
    pub change: f64,
    pub p_value: Option<f64>,
    pub verdict: Verdict,
    /// The step's `ab` directory.
    pub dir: String,
    pub seconds: f64,
}

/// bisect.json.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct BisectResult {
    pub schema_version: u32,
    pub scenario: String,
    pub metric: String,
    pub good: String,
    pub bad: String,
    /// Commits after good up to bad (first-parent).
    pub range: usize,
    pub boots_per_side: u32,
    pub steps: Vec<BisectStep>,
    /// The first commit that regresses; `None` when bad does not regress against good.
    pub first_bad: Option<String>,
    pub first_bad_subject: Option<String>,
    pub seconds: f64,
}

pub const BISECT_SCHEMA_VERSION: u32 = 1;

/// The metric a bisection follows: the one asked for, read as its work twin when the scenario
/// counts only work (`time_to_ready` → `work.time_to_ready`, `phase.X` → `work.phase.X`);
/// unasked, `work.time_to_ready` where the work meter runs, else `time_to_ready`.
pub fn default_metric(scenario: &Scenario, asked: Option<&str>) -> String {
    use crate::scenario::MeterMode;
    match (asked, scenario.boot.meter) {
        (None, MeterMode::Time) => "time_to_ready".into(),
        (None, _) => "work.time_to_ready".into(),
        (Some("time_to_ready"), MeterMode::Work) => "work.time_to_ready".into(),
        (Some(m), MeterMode::Work) if m.starts_with("phase.") => format!("work.{m}"),
        (Some(m), _) => m.into(),
    }
}

/// What `bisect` hands back.
#[derive(Debug)]
pub struct BisectOutcome {
    pub dir: PathBuf,
    pub result: BisectResult,
}

pub async fn bisect(scenario: &Scenario, o: &BisectOptions) -> Result<BisectOutcome, AbError> {
    let started = Instant::now();
    let profile = scenario.server.profile().map_err(|e| {
        AbError::Usage(format!(
            "{}: [server] profile: {e}",
            scenario.path.display()
        ))
    })?;
    let phases: Vec<String> = profile.phases.iter().map(|p| p.name.clone()).collect();
    let metric_name = default_metric(scenario, o.metric.as_deref());
    let metric = crate::metrics::catalogue::parse(&metric_name, &phases)
        .map_err(|e| AbError::Usage(format!("--metric {metric_name:?}: {e}")))?;
    // Only under "work" alone: with "both" the steps' timed boots must still run in turns.
    let reuse_good = scenario.boot.meter == crate::scenario::MeterMode::Work
        && crate::analysis::compare::is_work_metric(&metric_name);
    let repo = o
        .repo
        .clone()
        .or(scenario.server.source.clone())
        .ok_or_else(|| {
            AbError::Usage(
                "bisect walks a git history: give --repo <checkout> or [server] source".into(),
            )
        })?;
    let good = git::resolve(&repo, &o.good)?;
    let bad = git::resolve(&repo, &o.bad)?;
    let commits = git::range(&repo, &good, &bad)?;
    if commits.is_empty() {
        return Err(AbError::Usage(format!(
            "no commits between --good {} and --bad {} (is good an ancestor of bad?)",
            o.good, o.bad
        )));
    }
    let id = o
        .run
        .run_id
        .clone()
        .unwrap_or_else(|| format!("{}-bisect", super::run_id(scenario)));
    let dir = crate::util::fs::absolute(o.run.results_dir.join(&id));
    let boots = o.boots.unwrap_or(super::ab::default_boots(scenario));
    let mut result = BisectResult {
        schema_version: BISECT_SCHEMA_VERSION,
        scenario: scenario.name.clone(),
        metric: metric_name.clone(),
        good: o.good.clone(),
        bad: o.bad.clone(),
        range: commits.len(),
        boots_per_side: boots,
        steps: Vec::new(),
        first_bad: None,
        first_bad_subject: None,
        seconds: 0.0,
    };
    let say = |m: &str| {
        if !o.run.quiet {
            eprintln!("==> [bisect] {m}");
        }
    };
    if reuse_good {
        say(&format!(
            "{metric_name} counts instructions: the good side's boots of step 1 serve every step"
        ));
    }
    // The good side's run, once measured, when it serves every step.
    let mut good_run: Option<super::options::RunOutcome> = None;
    // One step: good against commits[i], the verdict on the metric.
    let mut step = async |i: usize, result: &mut BisectResult| -> Result<Verdict, AbError> {
        let c = &commits[i];
        let short = &c[..12.min(c.len())];
        say(&format!(
            "step {}: {short} ({}/{} in the range) {}",
            result.steps.len() + 1,
            i + 1,
            commits.len(),
            git::subject(&repo, c)
        ));
        let t = Instant::now();
        let mut ab_opts = AbOptions::new(
            &good,
            c,
            RunOptions {
                results_dir: dir.clone(),
                run_id: Some(format!("step-{}-{short}", result.steps.len() + 1)),
                boots_only: !metric.is_workload(),
                ..o.run.clone()
            },
        );
        ab_opts.repo = Some(repo.clone());
        ab_opts.boots = Some(boots);
        ab_opts.gates = o.gates.clone();
        ab_opts.slots = ["good".into(), "probe".into()];
        ab_opts.base_run = good_run.clone();
        let out = ab(scenario, &ab_opts).await?;
        if reuse_good && good_run.is_none() {
            good_run = Some(out.base.clone());
        }
        let m = out
            .comparison
            .metrics
            .iter()
            .find(|m| m.metric == metric_name)
            .ok_or_else(|| {
                AbError::Usage(format!(
                    "--metric {:?} was not measured by this scenario (measured: {})",
                    metric_name,
                    out.comparison
                        .metrics
                        .iter()
                        .map(|m| m.metric.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        say(&format!(
            "{short}: {} → {} ({}, p = {}): {}",
            crate::metrics::catalogue::format(&m.metric, m.baseline_median),
            crate::metrics::catalogue::format(&m.metric, m.candidate_median),
            crate::report::compare::fmt_change(&m.metric, m.ratio - 1.0),
            m.p_value.map_or("–".into(), |p| format!("{p:.3}")),
            m.verdict.arrow()
        ));
        result.steps.push(BisectStep {
            commit: c.clone(),
            subject: git::subject(&repo, c),
            position: i + 1,
            good_median: m.baseline_median,
            median: m.candidate_median,
            change: m.ratio - 1.0,
            p_value: m.p_value,
            verdict: m.verdict,
            dir: out.dir.display().to_string(),
            seconds: t.elapsed().as_secs_f64(),
        });
        let _ = save(&dir, result);
        Ok(m.verdict)
    };
    // Bad first: a bisection of a range that does not regress would name a random commit.
    let last = commits.len() - 1;
    if step(last, &mut result).await? == Verdict::Regressed {
        // Invariant: commits[hi] regresses; commits[lo] does not (lo = -1: good itself).
        let (mut lo, mut hi): (isize, isize) = (-1, last as isize);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if step(mid as usize, &mut result).await? == Verdict::Regressed {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let hi = hi as usize;
        result.first_bad = Some(commits[hi].clone());
        result.first_bad_subject = Some(git::subject(&repo, &commits[hi]));
    }
    result.seconds = started.elapsed().as_secs_f64();
    save(&dir, &result)?;
    Ok(BisectOutcome { dir, result })
}

fn save(dir: &std::path::Path, r: &BisectResult) -> Result<(), AbError> {
    let out = |path: PathBuf| {
        move |source| AbError::Output {
            path: path.clone(),
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(out(dir.to_path_buf()))?;
    let json = serde_json::to_vec_pretty(r).expect("bisect result serializes");
    crate::util::fs::write_atomic(&dir.join("bisect.json"), &json)
        .map_err(out(dir.join("bisect.json")))?;
    crate::util::fs::write_atomic(&dir.join("bisect.md"), markdown(r).as_bytes())
        .map_err(out(dir.join("bisect.md")))
}

/// bisect.md: the verdict, then every step tried.
pub fn markdown(r: &BisectResult) -> String {
    let mut s = format!("# bisect: {} from {} to {}\n\n", r.metric, r.good, r.bad);
    match (&r.first_bad, &r.first_bad_subject) {
        (Some(c), subject) => s.push_str(&format!(
            "**First bad commit: {} {}** ({} commit(s) in the range, {} step(s), {} {} a side \
             per step, {:.0} s).\n\n",
            &c[..12.min(c.len())],
            subject.as_deref().unwrap_or(""),
            r.range,
            r.steps.len(),
            r.boots_per_side,
            if crate::analysis::compare::is_work_metric(&r.metric) {
                "boots under the work meter"
            } else {
                "timed boots"
            },
            r.seconds
        )),
        _ if r.steps.is_empty() => s.push_str("Not finished.\n\n"),
        _ if r.seconds == 0.0 => s.push_str("Running…\n\n"),
        _ => s.push_str(&format!(
            "**No regression of {} between {} and {}**: the bad side does not regress against the \
             good one, so there is nothing to bisect.\n\n",
            r.metric, r.good, r.bad
        )),
    }
    s.push_str(
        "| step | commit | position | subject | good | this commit | change | p | verdict |\n",
    );
    s.push_str("|---:|---|---:|---|---:|---:|---:|---:|---|\n");
    for (i, st) in r.steps.iter().enumerate() {
        s.push_str(&format!(
            "| {} | {} | {}/{} | {} | {} | {} | {} | {} | {} |\n",
            i + 1,
            &st.commit[..12.min(st.commit.len())],
            st.position,
            r.range,
            st.subject.replace('|', "\\|"),
            crate::metrics::catalogue::format(&r.metric, st.good_median),
            crate::metrics::catalogue::format(&r.metric, st.median),
            crate::report::compare::fmt_change(&r.metric, st.change),
            st.p_value.map_or("–".into(), |p| format!("{p:.3}")),
            st.verdict.arrow()
        ));
    }
    s
}
