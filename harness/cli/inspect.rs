//! The commands that read what runs left behind, or the scenario, without booting a server.

use super::out::{out, outln};
use std::path::{Path, PathBuf};

use super::args::{CompareArgs, FixturesAction, HttpLoadArgs, SideBySideArgs, SizeArgs};
use super::error::{
    CliError, CompareCommandError, FixturesCommandError, SideBySideCommandError, SizeCommandError,
};
use super::outcome::Outcome;
use crate::dataset::fixture::FixtureStore;
use crate::scenario::LoadError;
use crate::util::fmt::fmt_ms;

/// `hsbench check`: validate a scenario and print its dataset's totals.
pub fn check(path: &Path) -> Result<Outcome, LoadError> {
    let s = crate::scenario::load(path)?;
    let plan = crate::dataset::plan::DatasetPlan::new(s.dataset.clone());
    match plan.totals_within(std::time::Duration::from_millis(500)) {
        None => outln!(
            "{}: ok ({}): {} users, {} rooms ({} DMs), about {} timeline events \
             (the exact totals take longer to count than `check` waits; \
             `hsbench seed` reports them)",
            path.display(),
            s.name,
            s.dataset.users,
            plan.room_count(),
            s.dataset.dm_pairs,
            plan.expected_timeline_events()
        ),
        Some(t) => outln!(
            "{}: ok ({}): {} users ({} devices), {} rooms ({} DMs, largest {}), \
             {} memberships, {} timeline events, {} state events, {} receipts",
            path.display(),
            s.name,
            t.users,
            t.users + t.extra_devices,
            t.rooms,
            t.dm_rooms,
            t.largest_room,
            t.memberships,
            t.timeline_events,
            t.state_events,
            t.receipts
        ),
    }
    if let Some(sw) = &s.sweep {
        outln!(
            "sweep: {} = {:?} ({} runs{})",
            sw.dimension.name(),
            sw.values,
            sw.values.len(),
            if sw.workloads {
                ", with workloads"
            } else {
                ", boots only"
            }
        );
    }
    Ok(Outcome::Ok)
}

/// `hsbench compare`: exit 1 when anything regressed.
pub fn compare(args: &CompareArgs) -> Result<Outcome, CompareCommandError> {
    use crate::analysis::compare;
    let (base, cand) = match (&args.baseline, args.runs.as_slice()) {
        (Some(name), [cand]) => {
            let store = crate::run::baseline::BaselineStore::new(&args.baselines_dir);
            let scenario = crate::result::read::load_runs(cand)?[0]
                .scenario_name()
                .to_string();
            (store.find(name, &scenario)?.dir, cand.clone())
        }
        (None, [base, cand]) => (base.clone(), cand.clone()),
        (Some(_), _) => {
            return Err(CompareCommandError::Usage(
                "with --baseline NAME give only the candidate run".into(),
            ));
        }
        (None, _) => {
            return Err(CompareCommandError::Usage(
                "give BASELINE and CANDIDATE, or --baseline NAME and CANDIDATE".into(),
            ));
        }
    };
    let overrides = args.gates.overrides();
    let c = compare::compare_paths(&base, &cand, &overrides, args.force)?;
    outln!("{}", crate::report::compare::markdown(&c));
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&c).expect("a comparison serializes");
        std::fs::write(path, json).map_err(|source| CompareCommandError::Write {
            path: path.clone(),
            source,
        })?;
    }
    if let Some(dir) = &args.flamediff {
        match crate::profile::flamediff(&base, &cand, dir) {
            Ok(diffs) => {
                for d in diffs {
                    outln!("flamediff {}: {}", d.scope, d.svg.display());
                }
            }
            Err(e) => eprintln!("no differential flamegraphs: {e}"),
        }
    }
    Ok(if c.regressions().is_empty() {
        Outcome::Ok
    } else {
        Outcome::GateFailed
    })
}

/// `hsbench size`: a sweep extrapolated to one value of its dimension.
pub fn size(args: &SizeArgs) -> Result<Outcome, SizeCommandError> {
    use crate::analysis::sweep::{SizeError, extrapolate, load};
    let sweep = load(&args.sweep)?;
    let dim = sweep.dimension.name();
    let value = match args.given().as_slice() {
        [(name, v)] if *name == dim => *v,
        [(name, _)] => {
            return Err(SizeError::WrongDimension {
                swept: dim.into(),
                asked: (*name).into(),
            }
            .into());
        }
        _ => {
            return Err(SizeCommandError::Usage {
                flag: dim.replace('_', "-"),
            });
        }
    };
    let rows = extrapolate(&sweep, value, args.force)?;
    out!(
        "{}",
        crate::report::sweep::size_report(&sweep, value, &rows)
    );
    Ok(Outcome::Ok)
}

/// `hsbench side-by-side`: the sweeps of several servers over one dataset, next to each other.
pub fn side_by_side(args: &SideBySideArgs) -> Result<Outcome, SideBySideCommandError> {
    use crate::report::servers::{html, markdown, plots};
    let s = crate::analysis::servers::side_by_side(&args.sweeps, args.at, args.force)?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(format!(
            "side-by-side-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ))
    });
    let write = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        std::fs::create_dir_all(&out)
            .and_then(|()| crate::util::fs::write_atomic(&path, bytes))
            .map_err(|source| SideBySideCommandError::Write { path, source })
    };
    let md = markdown(&s);
    let mut json = serde_json::to_vec_pretty(&s).expect("side by side serializes");
    json.push(b'\n');
    write("side-by-side.json", &json)?;
    write("side-by-side.md", md.as_bytes())?;
    write("report.html", html(&s, &plots(&s)).as_bytes())?;
    out!("{md}");
    outln!("\nwritten: {}", out.display());
    Ok(Outcome::Ok)
}

/// `hsbench report`: a run's files written again from its result.json.
pub fn report(run: &Path) -> Result<Outcome, CliError> {
    for f in crate::report::rerender(run)? {
        outln!("{f}");
    }
    Ok(Outcome::Ok)
}

/// `hsbench flamediff`: differential flamegraphs, red where the candidate grew.
pub fn flamediff(before: &Path, after: &Path, out: Option<PathBuf>) -> Result<Outcome, CliError> {
    let out = out.unwrap_or_else(|| {
        if after.is_dir() {
            after.to_path_buf()
        } else {
            ".".into()
        }
    });
    for d in crate::profile::flamediff(before, after, &out)? {
        let growth: Vec<String> = d
            .top_growth
            .iter()
            .map(|(f, share)| format!("{f} +{:.1}%", share * 100.0))
            .collect();
        outln!(
            "{}: {} ({} → {} in the profiles' unit); grew most: {}",
            d.scope,
            d.svg.display(),
            d.before_total,
            d.after_total,
            if growth.is_empty() {
                "nothing".to_string()
            } else {
                growth.join(", ")
            }
        );
    }
    Ok(Outcome::Ok)
}

/// `hsbench merge`: the histograms of several run directories, merged.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Outcome, CliError> {
    let m = crate::load::merge::merge_dirs(dirs, out)?;
    for (name, h) in &m.histograms {
        outln!(
            "{name}: {} values from {} inputs, p50 {} p99 {} max {}",
            h.summary.count,
            h.inputs,
            fmt_ms(h.summary.p50_ms),
            fmt_ms(h.summary.p99_ms),
            fmt_ms(h.summary.max_ms)
        );
    }
    for (w, c) in &m.cross_shard_deliveries {
        outln!(
            "{w}: {} deliveries across shards matched with their sends, {} of messages no shard sent",
            c.matched,
            c.unmatched
        );
    }
    if let Some(r) = &m.triggered_recovery {
        outln!(
            "triggered: recovered over every shard {}",
            r.time_to_recover_s
                .map_or("never (within the observation)".into(), |s| format!(
                    "{s:.1} s after the trigger"
                ))
        );
    }
    outln!("merged: {}", out.display());
    Ok(Outcome::Ok)
}

/// `hsbench baselines`.
pub fn baselines(dir: &Path) -> Outcome {
    let all = crate::run::baseline::BaselineStore::new(dir).list();
    if all.is_empty() {
        outln!("no baselines in {}", dir.display());
    }
    for b in all {
        outln!(
            "{:<16} {:<24} run {}  {}",
            b.name,
            b.scenario,
            b.run_id,
            b.dir.display()
        );
    }
    Outcome::Ok
}

/// `hsbench fixtures list|rm`.
/// `hsbench clean`: remove what killed runs left behind, saying what and how much.
pub fn clean(dir: Option<PathBuf>) -> Outcome {
    let store = dir.map_or_else(FixtureStore::default, FixtureStore::new);
    let stale = crate::util::owner::stale_dirs(&crate::run::work_parents(&store));
    let (removed, failed) = crate::util::owner::remove_stale(&stale);
    if removed.is_empty() && failed.is_empty() {
        outln!("nothing left behind by killed runs");
    }
    for s in &removed {
        outln!(
            "removed {} ({}){}",
            s.path.display(),
            crate::util::fmt::fmt_bytes(s.bytes as f64),
            s.owner
                .as_ref()
                .map_or_else(String::new, |o| format!(", left by process {}", o.pid))
        );
    }
    let freed: u64 = removed.iter().map(|s| s.bytes).sum();
    if !removed.is_empty() {
        outln!("freed {}", crate::util::fmt::fmt_bytes(freed as f64));
    }
    for (s, e) in &failed {
        outln!("cannot remove {}: {e}", s.path.display());
    }
    if failed.is_empty() {
        Outcome::Ok
    } else {
        Outcome::GateFailed
    }
}

pub fn fixtures(
    action: FixturesAction,
    dir: Option<PathBuf>,
) -> Result<Outcome, FixturesCommandError> {
    let store = dir.map_or_else(FixtureStore::default, FixtureStore::new);
    match action {
        FixturesAction::List => {
            let all = store.list();
            if all.is_empty() {
                outln!("no fixtures in {}", store.root.display());
            }
            for fx in all {
                let m = &fx.manifest;
                outln!(
                    "{}  {:<12} {} {} {:<12} {:>7} users {:>6} rooms {:>8} memberships {:>9} timeline events {:>9.1} MiB  built {} in {:.0} s",
                    m.key,
                    m.scenario,
                    m.identity.server_kind,
                    m.identity.server_version,
                    m.identity.database,
                    m.totals.users,
                    m.totals.rooms,
                    m.totals.memberships,
                    m.totals.timeline_events,
                    m.size_bytes as f64 / (1 << 20) as f64,
                    m.created_at,
                    m.build_seconds
                );
            }
            let stale = crate::util::owner::stale_dirs(&crate::run::work_parents(&store));
            if !stale.is_empty() {
                let total: u64 = stale.iter().map(|s| s.bytes).sum();
                outln!(
                    "left by killed runs ({}; `hsbench clean` removes them):",
                    crate::util::fmt::fmt_bytes(total as f64)
                );
                for s in &stale {
                    outln!(
                        "  {}  {}",
                        s.path.display(),
                        crate::util::fmt::fmt_bytes(s.bytes as f64)
                    );
                }
            }
        }
        FixturesAction::Verify => {
            let all = store.list();
            if all.is_empty() {
                outln!("no fixtures in {}", store.root.display());
            }
            let mut damaged = 0;
            for fx in all {
                match fx.verify() {
                    Ok(()) if fx.manifest.files.is_empty() => outln!(
                        "{}  not checked: saved before fixtures listed their files",
                        fx.manifest.key
                    ),
                    Ok(()) => outln!(
                        "{}  ok ({} files, {:.1} MiB)",
                        fx.manifest.key,
                        fx.manifest.files.len(),
                        fx.manifest.size_bytes as f64 / (1 << 20) as f64
                    ),
                    Err(e) => {
                        damaged += 1;
                        outln!("{}  DAMAGED: {e}", fx.manifest.key);
                    }
                }
            }
            if damaged > 0 {
                return Ok(Outcome::GateFailed);
            }
        }
        FixturesAction::Rm { key, all } => {
            if key.is_none() && !all {
                return Err(FixturesCommandError::NoKey);
            }
            let n = store.remove(key.as_deref())?;
            outln!("removed {n} fixture(s)");
        }
    }
    Ok(Outcome::Ok)
}

/// `hsbench man`: the man page, from the same clap types as `--help`.
pub fn man() -> Result<Outcome, CliError> {
    let cmd = <super::args::Cli as clap::CommandFactory>::command();
    match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
        // `hsbench man | head` is a reader that had enough, not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Stdout(e)),
        _ => Ok(Outcome::Ok),
    }
}

/// `hsbench http-load`: the generator's own benchmark against a loopback endpoint.
pub fn http_load(a: &HttpLoadArgs) -> Result<Outcome, CliError> {
    use crate::load::generator::{GeneratorSpec, run};
    let (addr, host, path) = GeneratorSpec::parse_url(&a.url)?;
    let (r, _, _) = run(GeneratorSpec {
        addr,
        host,
        path,
        connections: a.connections,
        duration: a.duration,
        rate: a.rate,
        threads: a.threads,
    })?;
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&r).expect("serializable")
        );
        return Ok(Outcome::Ok);
    }
    outln!(
        "{}\n{} requests in {:.2} s ({:.0}/s), {} errors, {} bytes in\n\
         generator CPU {:.3} s user + {:.3} s sys: {:.0} requests per CPU-second\n\
         corrected p50 {:.3} ms p99 {:.3} ms max {:.3} ms\n\
         raw       p50 {:.3} ms p99 {:.3} ms max {:.3} ms",
        r.model,
        r.requests,
        r.wall_s,
        r.requests_per_s,
        r.errors,
        r.bytes_in,
        r.cpu_user_s,
        r.cpu_sys_s,
        r.requests_per_cpu_s,
        r.corrected.p50_ms,
        r.corrected.p99_ms,
        r.corrected.max_ms,
        r.raw.p50_ms,
        r.raw.p99_ms,
        r.raw.max_ms
    );
    if let Some(l) = &r.send_lag {
        outln!(
            "send lag  p50 {:.3} ms p99 {:.3} ms max {:.3} ms (hsbench's own lateness: due time → send)",
            l.p50_ms,
            l.p99_ms,
            l.max_ms
        );
    }
    Ok(Outcome::Ok)
}

/// `hsbench noise`: probe every CPU and print how steady the machine is.
pub fn noise(a: &super::args::NoiseArgs) -> Result<Outcome, CliError> {
    let r = crate::metrics::noise::measure(&crate::metrics::noise::NoiseSpec {
        seconds: a.seconds,
        window: a.window,
        boots: a.boots,
        alpha: a.alpha,
        python: match (&a.python, a.no_python) {
            (_, true) => None,
            (Some(p), false) => Some(p.clone()),
            // The Python hsbench uses everywhere else, else python3 on PATH.
            (None, false) => std::env::var_os("HSBENCH_PYTHON")
                .map(PathBuf::from)
                .or_else(|| on_path("python3")),
        },
    })?;
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&r).expect("serializable")
        );
    } else {
        out!("{}", crate::report::noise::text(&r));
    }
    Ok(Outcome::Ok)
}

/// The first `name` in a directory of PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
