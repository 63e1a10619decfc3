//! Runs as the history takes them: a run directory's `result.json` (every catalogue metric,
//! the machine, the server and its commit), or a BMF file of a past run (its metrics only).

use crate::analysis::figures::figures;
use crate::history::error::HistoryError;
use crate::history::store::HistoryRun;
use crate::metrics::machine::Fingerprint;
use crate::result::RunStatus;
use crate::result::read::{read_result, result_file};
use std::path::{Path, PathBuf};

/// What the command line says about a run that its result does not (or says otherwise).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The commit the run measured (default: the server checkout's `HEAD`, else its version).
    pub commit: Option<String>,
    pub branch: Option<String>,
}

/// The series' machine: CPU model, cores and memory in whole GiB. The kernel, the OS and the
/// host name are kept for the reader but do not split a series (a CI runner's host name changes
/// every run).
pub fn machine_key(m: &Fingerprint) -> String {
    format!(
        "{} · {} cores · {} GiB",
        m.cpu_model,
        m.cores,
        (m.memory_bytes as f64 / (1u64 << 30) as f64).round()
    )
}

/// A run directory (or its `result.json`): a run that did not complete is refused.
pub fn from_run_dir(path: &Path, o: &Overrides) -> Result<HistoryRun, HistoryError> {
    let file = result_file(path);
    let r = read_result(&file)?;
    if r.status != RunStatus::Complete {
        let status = serde_json::to_value(r.status).expect("status serializes");
        return Err(HistoryError::NotComplete {
            path: file,
            run_id: r.run_id,
            status: status.as_str().unwrap_or("?").to_string(),
        });
    }
    let server = r.server.as_ref();
    let source = server.and_then(|s| s.source.as_ref());
    let version = server.map_or_else(String::new, |s| s.version.clone());
    let report = file
        .parent()
        .map(|d| d.join("report.html"))
        .filter(|p| p.is_file())
        .map(|p| std::path::absolute(&p).unwrap_or(p).display().to_string());
    Ok(HistoryRun {
        scenario: r.scenario_name().to_string(),
        server_kind: server.map_or_else(|| "unknown".into(), |s| s.kind.clone()),
        database: server.map_or_else(|| "unknown".into(), |s| s.database.clone()),
        commit: o
            .commit
            .clone()
            .or_else(|| source.and_then(|s| s.commit.clone()))
            .unwrap_or_else(|| version.clone()),
        branch: o
            .branch
            .clone()
            .or_else(|| source.and_then(|s| s.branch.clone())),
        server_version: version,
        started_at: r.started_at.clone(),
        machine: machine_key(&r.machine),
        machine_detail: r.machine.one_line(),
        report,
        metrics: figures(&r)
            .into_iter()
            .map(|f| (f.metric, f.value))
            .collect(),
        run_id: r.run_id,
    })
}

/// A BMF file (`{"<scenario>/<metric>": {"<measure>": {"value": …}}}`, as `bmf.json`): its
/// run id is its directory's name (or the file's), its time the file's modification time, its
/// machine and server unknown.
pub fn from_bmf(path: &Path, o: &Overrides) -> Result<HistoryRun, HistoryError> {
    let bad = |reason: String| HistoryError::Bmf {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|source| HistoryError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let map = v
        .as_object()
        .ok_or_else(|| bad("not a JSON object".into()))?;
    let mut scenario = None;
    let mut metrics = Vec::new();
    for (name, measures) in map {
        let (sc, metric) = name
            .split_once('/')
            .ok_or_else(|| bad(format!("benchmark {name:?} is not <scenario>/<metric>")))?;
        if scenario.get_or_insert_with(|| sc.to_string()) != sc {
            return Err(bad(format!("two scenarios: {sc:?} and {scenario:?}")));
        }
        let value = measures
            .as_object()
            .and_then(|m| m.values().next())
            .and_then(|m| m.get("value"))
            .and_then(|v| v.as_f64())
            .ok_or_else(|| bad(format!("{name:?} has no measure with a value")))?;
        metrics.push((metric.to_string(), value));
    }
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|source| HistoryError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let started_at = chrono::DateTime::<chrono::Utc>::from(modified)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("bmf");
    let run_id = match (stem, path.parent().and_then(|p| p.file_name())) {
        ("bmf", Some(dir)) => dir.to_string_lossy().into_owned(),
        _ => stem.to_string(),
    };
    Ok(HistoryRun {
        run_id: run_id.clone(),
        scenario: scenario.unwrap_or_else(|| "unknown".into()),
        server_kind: "unknown".into(),
        server_version: String::new(),
        database: "unknown".into(),
        // A BMF file names no commit: the run stands for it.
        commit: o.commit.clone().unwrap_or_else(|| run_id.clone()),
        branch: o.branch.clone(),
        started_at,
        machine: "unknown machine (BMF)".into(),
        machine_detail: "unknown machine (BMF)".into(),
        report: None,
        metrics,
    })
}

/// What `history import DIR` finds: run directories (with a `result.json`) and BMF files
/// outside them (`*.bmf.json`, or a `bmf.json` with no `result.json` beside it), three levels
/// deep at most, in name order.
pub fn find_runs(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), HistoryError> {
    let mut runs = Vec::new();
    let mut bmf = Vec::new();
    walk(dir, 0, &mut runs, &mut bmf)?;
    runs.sort();
    bmf.sort();
    Ok((runs, bmf))
}

fn walk(
    dir: &Path,
    depth: usize,
    runs: &mut Vec<PathBuf>,
    bmf: &mut Vec<PathBuf>,
) -> Result<(), HistoryError> {
    if dir.join("result.json").is_file() {
        runs.push(dir.to_path_buf());
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|source| HistoryError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() && depth < 3 {
            walk(&p, depth + 1, runs, bmf)?;
        } else if p.is_file() && (name == "bmf.json" || name.ends_with(".bmf.json")) {
            bmf.push(p);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bmf_file_gives_its_metrics_and_its_directory_as_run_id() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("20260101T000000Z-smoke");
        std::fs::create_dir(&run).unwrap();
        let f = run.join("bmf.json");
        std::fs::write(
            &f,
            r#"{"smoke/time_to_ready": {"milliseconds": {"value": 812.5, "lower_value": 800, "upper_value": 820}},
                "smoke/phase.db_prepare": {"milliseconds": {"value": 100.0}}}"#,
        )
        .unwrap();
        let r = from_bmf(&f, &Overrides::default()).unwrap();
        assert_eq!(r.run_id, "20260101T000000Z-smoke");
        assert_eq!(r.scenario, "smoke");
        assert!(r.metrics.contains(&("time_to_ready".into(), 812.5)));
        let (runs, bmf) = find_runs(dir.path()).unwrap();
        assert!(runs.is_empty());
        assert_eq!(bmf, vec![f.clone()]);
        std::fs::write(&f, r#"{"no-slash": {"ms": {"value": 1}}}"#).unwrap();
        let e = from_bmf(&f, &Overrides::default()).unwrap_err().to_string();
        assert!(
            e.contains("bmf.json") && e.contains("<scenario>/<metric>"),
            "{e}"
        );
    }
}
