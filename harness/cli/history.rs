//! `hsbench history`: add, import, list, check, report, bisect.

use crate::cli::args::{DetectArgs, HistoryAction, SidesArgs};
use crate::cli::error::CliError;
use crate::cli::out::outln;
use crate::cli::outcome::Outcome;
use crate::history::ingest::find_runs;
use crate::history::{
    HistoryError, Overrides, Series, Store, analyse, dashboard, from_bmf, from_run_dir, regressions,
};
use crate::util::fs::write_atomic;
use std::path::Path;

/// Run one `history` action against the store `db`.
pub fn execute(action: HistoryAction, db: &str) -> Result<Outcome, CliError> {
    match action {
        HistoryAction::Add {
            runs,
            commit,
            branch,
        } => {
            let mut store = Store::open(db)?;
            let o = Overrides { commit, branch };
            let mut added = 0;
            for dir in &runs {
                let run = from_run_dir(dir, &o)?;
                let new = store.add(&run)?;
                added += usize::from(new);
                outln!(
                    "{} {} ({} metrics, commit {}, {})",
                    if new {
                        "added"
                    } else {
                        "already in the history:"
                    },
                    run.run_id,
                    run.metrics.len(),
                    crate::history::series::short(&run.commit),
                    run.machine
                );
            }
            outln!("{added} of {} runs added to {}", runs.len(), store.target());
            Ok(Outcome::Ok)
        }
        HistoryAction::Import { dir } => import(&dir, db),
        HistoryAction::List { detect } => {
            let series = load(db, &detect)?;
            for s in &series {
                outln!("{} · {} runs", s.key.describe(), s.points.len());
                for f in &s.findings {
                    let what = match (f.is_regression(), f.change.reported) {
                        (true, _) => "REGRESSION",
                        (false, true) => "improvement",
                        (false, false) => "below --min-change",
                    };
                    outln!("  {what}: {} [{}]", f.describe(), f.id());
                }
            }
            Ok(Outcome::Ok)
        }
        HistoryAction::Check { last, detect } => {
            let series = load(db, &detect)?;
            let found = regressions(&series, last);
            let runs: usize = series.iter().map(|s| s.points.len()).max().unwrap_or(0);
            if found.is_empty() {
                outln!(
                    "history check: no regression among the last {last} runs of {} series (longest {runs} runs)",
                    series.len()
                );
                return Ok(Outcome::Ok);
            }
            for f in &found {
                eprintln!("REGRESSION {}", f.describe());
                eprintln!(
                    "  bisect it: hsbench history bisect {} <scenario.toml> --repo <checkout>",
                    f.id()
                );
            }
            outln!(
                "history check: {} regression(s) among the last {last} runs",
                found.len()
            );
            Ok(Outcome::GateFailed)
        }
        HistoryAction::Report { out, last, detect } => {
            let series = load(db, &detect)?;
            let html = dashboard::render(&series, last, &redacted(db), &out);
            let write = |name: &str, bytes: &[u8]| {
                let path = out.join(name);
                std::fs::create_dir_all(&out)
                    .and_then(|()| write_atomic(&path, bytes))
                    .map_err(|source| HistoryError::Io { path, source })
            };
            write("report.html", html.as_bytes())?;
            let json = serde_json::json!({
                "schema_version": 1,
                "store": redacted(db),
                "last": last,
                "series": series,
            });
            write(
                "history.json",
                &serde_json::to_vec_pretty(&json).expect("history serializes"),
            )?;
            outln!(
                "{} series, {} open regression(s): {}",
                series.len(),
                regressions(&series, last).len(),
                out.join("report.html").display()
            );
            Ok(Outcome::Ok)
        }
        HistoryAction::Bisect {
            change_point,
            sides,
            detect,
        } => bisect(&change_point, sides, &detect, db),
    }
}

fn redacted(db: &str) -> String {
    match Store::open(db) {
        Ok(s) => s.target().to_string(),
        Err(_) => db.to_string(),
    }
}

/// The store's runs as series, with their change points.
fn load(db: &str, detect: &DetectArgs) -> Result<Vec<Series>, HistoryError> {
    let mut store = Store::open(db)?;
    let runs = store.runs()?;
    Ok(analyse(&runs, &detect.detector()))
}

fn import(dir: &Path, db: &str) -> Result<Outcome, CliError> {
    let mut store = Store::open(db)?;
    let (runs, bmf) = find_runs(dir)?;
    let o = Overrides::default();
    let (mut added, mut known, mut refused) = (0, 0, 0);
    for r in &runs {
        match from_run_dir(r, &o) {
            Ok(run) => {
                if store.add(&run)? {
                    added += 1;
                } else {
                    known += 1;
                }
            }
            // A run that failed is left out, and said so; the others go in.
            Err(e @ HistoryError::NotComplete { .. }) => {
                refused += 1;
                eprintln!("skipped: {e}");
            }
            Err(e) => return Err(e.into()),
        }
    }
    for f in &bmf {
        let run = from_bmf(f, &o)?;
        if store.add(&run)? {
            added += 1;
        } else {
            known += 1;
        }
    }
    outln!(
        "{added} runs added, {known} already there, {refused} not complete (skipped) from {} run directories and {} BMF files under {} into {}",
        runs.len(),
        bmf.len(),
        dir.display(),
        store.target()
    );
    Ok(Outcome::Ok)
}

fn bisect(id: &str, sides: SidesArgs, detect: &DetectArgs, db: &str) -> Result<Outcome, CliError> {
    let series = load(db, detect)?;
    let all: Vec<_> = series.iter().flat_map(|s| &s.findings).collect();
    let Some(f) = all.iter().find(|f| f.id() == id) else {
        let known: Vec<String> = all.iter().map(|f| f.id()).collect();
        return Err(HistoryError::NoSuchChangePoint {
            wanted: id.to_string(),
            known: if known.is_empty() {
                "the history has no change point".into()
            } else {
                format!("known: {}", known.join(", "))
            },
        }
        .into());
    };
    eprintln!(
        "bisecting {}: good {} (last run before), bad {} (first run after)",
        f.describe(),
        f.commit_before,
        f.commit_after
    );
    let args = crate::cli::args::BisectArgs {
        common: sides,
        good: f.commit_before.clone(),
        bad: f.commit_after.clone(),
        metric: Some(f.key.metric.clone()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let out = rt.block_on(crate::cli::run::bisect(&args));
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    out
}
