//! Differential flamegraphs between runs (`hsbench flamediff`).

use super::flamegraph::differential;
use super::folded::Folded;
use super::tool::PROFILE_DIR;
use super::tool::{ProfilerError, io_err};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Folded profiles of a run directory by scope (`boot`, a phase name, `load.herd`), the
/// profiled boots of one scope merged (folded stacks add up).
pub fn run_profiles(run_dir: &Path) -> Result<BTreeMap<String, Folded>, ProfilerError> {
    let dir = run_dir.join(PROFILE_DIR);
    if !dir.is_dir() && run_dir.is_dir() {
        return Err(ProfilerError::NoProfiles {
            run: run_dir.to_path_buf(),
        });
    }
    let entries = std::fs::read_dir(&dir).map_err(io_err(&dir))?;
    let mut out: BTreeMap<String, Folded> = BTreeMap::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".folded") else {
            continue;
        };
        // `profile-<n>.<scope>` → `<scope>`; `load.<workload>` stays as it is.
        let scope = match stem.split_once('.') {
            Some((label, scope)) if label.starts_with("profile-") => scope.to_string(),
            _ => stem.to_string(),
        };
        let text = std::fs::read_to_string(e.path()).map_err(io_err(&e.path()))?;
        out.entry(scope).or_default().merge(&Folded::parse(&text));
    }
    Ok(out)
}

/// One differential flamegraph written by [`flamediff`].
#[derive(Debug, Clone)]
pub struct FlameDiff {
    pub scope: String,
    pub svg: PathBuf,
    pub before_total: u64,
    pub after_total: u64,
    /// Frames that grew the most, with their growth as a share of the candidate's total.
    pub top_growth: Vec<(String, f64)>,
}

/// Differential flamegraphs of `after` against `before`: two folded files (one SVG), or two
/// run directories (one SVG per scope both have). SVGs go into `out_dir`. Blocking.
pub fn flamediff(
    before: &Path,
    after: &Path,
    out_dir: &Path,
) -> Result<Vec<FlameDiff>, ProfilerError> {
    let load = |p: &Path| -> Result<BTreeMap<String, Folded>, ProfilerError> {
        if p.is_dir() {
            run_profiles(p)
        } else {
            let text = std::fs::read_to_string(p).map_err(io_err(p))?;
            let scope = p
                .file_stem()
                .map_or("profile".into(), |s| s.to_string_lossy().into_owned());
            Ok(BTreeMap::from([(scope, Folded::parse(&text))]))
        }
    };
    let (a, b) = (load(before)?, load(after)?);
    let pairs: Vec<(String, &Folded, &Folded)> = if !before.is_dir() && !after.is_dir() {
        let (fa, fb) = (a.values().next(), b.values().next());
        match (fa, fb) {
            (Some(fa), Some(fb)) => vec![("profile".to_string(), fa, fb)],
            _ => Vec::new(),
        }
    } else {
        a.iter()
            .filter_map(|(k, fa)| b.get(k).map(|fb| (k.clone(), fa, fb)))
            .collect()
    };
    if pairs.is_empty() {
        return Err(ProfilerError::Data {
            path: after.to_path_buf(),
            source: format!(
                "no profile in common with {} (profiles are in <run>/profile/*.folded)",
                before.display()
            )
            .into(),
        });
    }
    std::fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
    let mut out = Vec::new();
    for (scope, fa, fb) in pairs {
        let d = differential(
            fa,
            fb,
            &format!("{scope}: {} → {}", before.display(), after.display()),
            "widths: candidate · red grew, blue shrank (totals normalized)",
            "samples",
        );
        let svg = out_dir.join(format!("flamediff-{scope}.svg"));
        std::fs::write(&svg, d.svg.as_bytes()).map_err(io_err(&svg))?;
        out.push(FlameDiff {
            scope,
            svg,
            before_total: fa.total(),
            after_total: fb.total(),
            top_growth: d.top_growth(5),
        });
    }
    Ok(out)
}
