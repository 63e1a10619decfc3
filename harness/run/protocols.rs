//! `hsbench run --protocols v2,sliding`: one scenario, its sync workloads over each protocol in
//! turn on one fixture, and the runs side by side (protocols.md, protocols.html, protocols.json).

use std::path::PathBuf;

use super::error::RunError;
use super::options::RunOptions;
use super::options::RunOutcome;
use super::{run, run_id};
use crate::analysis::protocols::{ProtocolSides, sides};
use crate::result::RunStatus;
use crate::scenario::{Scenario, SyncProtocol};

pub struct ProtocolsOutcome {
    /// Where protocols.md, protocols.html and protocols.json are.
    pub dir: PathBuf,
    pub runs: Vec<(SyncProtocol, RunOutcome)>,
    pub sides: ProtocolSides,
}

/// Runs `scenario` over each protocol (the first is the reference of the ratios), then writes
/// the side-by-side files. An interrupted run ends the sequence; the files cover the runs made.
pub async fn run_protocols(
    scenario: &Scenario,
    opts: &RunOptions,
    protocols: &[SyncProtocol],
) -> Result<ProtocolsOutcome, RunError> {
    let base = opts.run_id.clone().unwrap_or_else(|| run_id(scenario));
    let mut runs = Vec::new();
    for &p in protocols {
        let sc = scenario.over_protocol(p);
        let o = RunOptions {
            run_id: Some(format!("{base}-{}", p.name())),
            ..opts.clone()
        };
        let out = run(&sc, &o).await?;
        let stop = out.result.status == RunStatus::Interrupted;
        runs.push((p, out));
        if stop {
            break;
        }
    }
    let labelled: Vec<(String, &crate::result::RunResult, String)> = runs
        .iter()
        .map(|(p, o)| {
            let dir = o
                .run_dir
                .file_name()
                .map(|n| format!("../{}", n.to_string_lossy()))
                .unwrap_or_default();
            (p.name().to_string(), &o.result, dir)
        })
        .collect();
    let sides = sides(&scenario.name, &labelled);
    let dir = opts.results_dir.join(format!("{base}-protocols"));
    let write = |name: &str, bytes: Vec<u8>| {
        let path = dir.join(name);
        crate::util::fs::write_atomic(&path, &bytes).map_err(|source| RunError::Output {
            path: path.clone(),
            source,
        })
    };
    std::fs::create_dir_all(&dir).map_err(|source| RunError::Output {
        path: dir.clone(),
        source,
    })?;
    let mut json = serde_json::to_vec_pretty(&sides).expect("serializes");
    json.push(b'\n');
    write("protocols.json", json)?;
    write(
        "protocols.md",
        crate::report::protocols::markdown(&sides).into_bytes(),
    )?;
    write(
        "protocols.html",
        crate::report::protocols::html(&sides).into_bytes(),
    )?;
    Ok(ProtocolsOutcome { dir, runs, sides })
}
