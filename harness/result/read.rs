//! The one reader of `result.json`: a run directory, the file itself, or a directory of run
//! directories.

use std::path::{Path, PathBuf};

use super::{RunResult, RunStatus};

/// Why runs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not an hsbench result: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{}: no complete run here (a run directory, its result.json, or a directory of run directories){}",
        path.display(),
        if skipped.is_empty() { String::new() } else { format!("; left out: {}", skipped.join("; ")) }
    )]
    NoCompleteRun {
        path: PathBuf,
        /// The runs found that did not complete, each with its status (and why).
        skipped: Vec<String>,
    },
}

/// The `result.json` of a run directory, or the file itself.
pub fn result_file(path: &Path) -> PathBuf {
    if path.is_file() {
        path.to_path_buf()
    } else {
        path.join("result.json")
    }
}

/// Read one `result.json`, whatever its status.
pub fn read_result(file: &Path) -> Result<RunResult, ReadError> {
    let text = std::fs::read_to_string(file).map_err(|source| ReadError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let mut r: RunResult = serde_json::from_str(&text).map_err(|source| ReadError::Parse {
        path: file.to_path_buf(),
        source,
    })?;
    r.settle_status();
    Ok(r)
}

/// Read the runs at `path`: a run directory, a `result.json`, or a directory of run
/// directories (all runs of one side pool their samples). Runs that did not complete are
/// skipped.
pub fn load_runs(path: &Path) -> Result<Vec<RunResult>, ReadError> {
    let mut runs = Vec::new();
    if path.is_file() || path.join("result.json").is_file() {
        runs.push(read_result(&result_file(path))?);
    } else {
        let entries = std::fs::read_dir(path).map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path().join("result.json"))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            runs.push(read_result(&f)?);
        }
    }
    // Never pooled: a run that failed, was interrupted, is still running or was killed.
    let skipped: Vec<String> = runs
        .iter()
        .filter(|r| r.status != RunStatus::Complete)
        .map(|r| {
            let status = serde_json::to_value(r.status).expect("status serializes");
            let status = status.as_str().unwrap_or("?").to_string();
            match &r.error {
                Some(e) => format!("{} {status} ({})", r.run_id, e.lines().next().unwrap_or("")),
                None => format!("{} {status}", r.run_id),
            }
        })
        .collect();
    runs.retain(|r| r.status == RunStatus::Complete);
    if runs.is_empty() {
        return Err(ReadError::NoCompleteRun {
            path: path.to_path_buf(),
            skipped,
        });
    }
    Ok(runs)
}
