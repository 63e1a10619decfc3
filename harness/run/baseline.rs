//! Named baselines, as criterion has them: `hsbench run <scenario> --save-baseline main` keeps a
//! copy of the run under `<results>/baselines/main/<scenario name>/`, and a later
//! `hsbench run <scenario> --baseline main` (or `hsbench compare --baseline main <run>`)
//! compares against it. Saving replaces the baseline of that scenario (a run already holds its
//! repeated boots); the copy is made beside the old one and renamed over it, so an interrupted
//! save never leaves half a baseline.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error(
        "baseline name {name:?} is not allowed: use letters, digits, '.', '_' and '-' (e.g. \"main\")"
    )]
    BadName { name: String },
    #[error(
        "no baseline {name:?} for scenario {scenario:?} in {}; save one with `hsbench run <scenario> --save-baseline {name}`{}",
        root.display(),
        if available.is_empty() { String::from(" (no baselines saved yet)") } else { format!(" (saved: {})", available.join(", ")) }
    )]
    Missing {
        name: String,
        scenario: String,
        root: PathBuf,
        /// `name/scenario` of every saved baseline.
        available: Vec<String>,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Read(#[from] crate::result::read::ReadError),
    #[error("cannot copy the run {} into the baselines: {source}", path.display())]
    Copy {
        path: PathBuf,
        #[source]
        source: crate::dataset::fixture::FixtureError,
    },
    #[error("against the baseline in {}: {source}", baseline.display())]
    Compare {
        baseline: PathBuf,
        #[source]
        source: crate::analysis::compare::CompareError,
    },
    #[error(transparent)]
    Rerender(#[from] crate::report::RerenderError),
}

/// A saved baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub name: String,
    pub scenario: String,
    pub run_id: String,
    pub dir: PathBuf,
}

/// The baselines under one root (`<results>/baselines` by default).
#[derive(Debug, Clone)]
pub struct BaselineStore {
    pub root: PathBuf,
}

fn check_name(name: &str) -> Result<(), BaselineError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(BaselineError::BadName { name: name.into() })
    }
}

/// Scenario names become directory names: anything but `[A-Za-z0-9._-]` becomes `_`.
fn dir_name(scenario: &str) -> String {
    scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl BaselineStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `<results_dir>/baselines`.
    pub fn in_results(results_dir: &Path) -> Self {
        Self::new(results_dir.join("baselines"))
    }

    fn dir(&self, name: &str, scenario: &str) -> PathBuf {
        self.root.join(name).join(dir_name(scenario))
    }

    /// Save the run in `run_dir` (a complete run of `scenario`) as baseline `name`, replacing
    /// the previous one.
    pub fn save(&self, name: &str, run_dir: &Path) -> Result<Baseline, BaselineError> {
        check_name(name)?;
        let result = run_dir.join("result.json");
        let r = crate::result::read::load_runs(&result)?;
        let scenario = r[0].scenario_name().to_string();
        let dest = self.dir(name, &scenario);
        let parent = dest.parent().expect("a baseline dir has a parent");
        std::fs::create_dir_all(parent).map_err(|source| BaselineError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
        let tmp = parent.join(format!(".{}.saving", dir_name(&scenario)));
        let _ = std::fs::remove_dir_all(&tmp);
        crate::dataset::fixture::copy_tree(run_dir, &tmp).map_err(|source| {
            BaselineError::Copy {
                path: run_dir.to_path_buf(),
                source,
            }
        })?;
        let old = parent.join(format!(".{}.old", dir_name(&scenario)));
        let _ = std::fs::remove_dir_all(&old);
        if dest.exists() {
            std::fs::rename(&dest, &old).map_err(|source| BaselineError::Io {
                path: dest.clone(),
                source,
            })?;
        }
        std::fs::rename(&tmp, &dest).map_err(|source| BaselineError::Io {
            path: dest.clone(),
            source,
        })?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(Baseline {
            name: name.into(),
            scenario,
            run_id: r[0].run_id.clone(),
            dir: dest,
        })
    }

    /// The baseline `name` of `scenario`, or an error that says how to make one and lists
    /// what is saved.
    pub fn find(&self, name: &str, scenario: &str) -> Result<Baseline, BaselineError> {
        check_name(name)?;
        let dir = self.dir(name, scenario);
        if dir.join("result.json").is_file() {
            let run_id = crate::result::read::load_runs(&dir)
                .ok()
                .and_then(|r| r.first().map(|r| r.run_id.clone()))
                .unwrap_or_default();
            return Ok(Baseline {
                name: name.into(),
                scenario: scenario.into(),
                run_id,
                dir,
            });
        }
        Err(BaselineError::Missing {
            name: name.into(),
            scenario: scenario.into(),
            root: self.root.clone(),
            available: self
                .list()
                .into_iter()
                .map(|b| format!("{}/{}", b.name, b.scenario))
                .collect(),
        })
    }

    /// Every saved baseline, sorted by name then scenario.
    pub fn list(&self) -> Vec<Baseline> {
        let mut out = Vec::new();
        let Ok(names) = std::fs::read_dir(&self.root) else {
            return out;
        };
        for n in names.flatten() {
            let name = n.file_name().to_string_lossy().into_owned();
            let Ok(scenarios) = std::fs::read_dir(n.path()) else {
                continue;
            };
            for s in scenarios.flatten() {
                let scenario = s.file_name().to_string_lossy().into_owned();
                if scenario.starts_with('.') || !s.path().join("result.json").is_file() {
                    continue;
                }
                let run_id = crate::result::read::load_runs(&s.path())
                    .ok()
                    .and_then(|r| r.first().map(|r| r.run_id.clone()))
                    .unwrap_or_default();
                out.push(Baseline {
                    name: name.clone(),
                    scenario,
                    run_id,
                    dir: s.path(),
                });
            }
        }
        out.sort_by(|a, b| (&a.name, &a.scenario).cmp(&(&b.name, &b.scenario)));
        out
    }
}

/// What `--baseline`/`--save-baseline` did after a run.
#[derive(Debug)]
pub struct BaselineOutcome {
    /// The comparison with the baseline (also written to compare.md/compare.json in the run
    /// directory).
    pub comparison: Option<crate::analysis::compare::Comparison>,
    pub saved: Option<Baseline>,
}

/// After a run: compare it with `compare_with` (found before the run, so a missing baseline
/// fails fast), then save it as `save_as`. Comparing comes first, so `--baseline main
/// --save-baseline main` compares with the previous baseline and then replaces it.
pub fn after_run(
    store: &BaselineStore,
    run_dir: &Path,
    compare_with: Option<&Baseline>,
    save_as: Option<&str>,
) -> Result<BaselineOutcome, BaselineError> {
    let mut comparison = None;
    if let Some(b) = compare_with {
        let c = crate::analysis::compare::compare_paths(
            &b.dir,
            run_dir,
            &crate::analysis::compare::GateOverrides::default(),
            false,
        )
        .map_err(|source| BaselineError::Compare {
            baseline: b.dir.clone(),
            source,
        })?;
        let md = format!(
            "{}\n\nBaseline `{}`: run {}.\n",
            crate::report::compare::markdown(&c).trim_end(),
            b.name,
            b.run_id
        );
        let write = |name: &str, bytes: &[u8]| {
            let p = run_dir.join(name);
            crate::util::fs::write_atomic(&p, bytes).map_err(|source| BaselineError::Io {
                path: p.clone(),
                source,
            })
        };
        write("compare.md", md.as_bytes())?;
        write(
            "compare.json",
            &serde_json::to_vec_pretty(&c).expect("a comparison serializes"),
        )?;
        comparison = Some(c);
        // report.html shows the comparison.
        crate::report::rerender(run_dir)?;
    }
    let saved = save_as.map(|n| store.save(n, run_dir)).transpose()?;
    Ok(BaselineOutcome { comparison, saved })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("main").is_ok());
        assert!(check_name("v1.2_rc-3").is_ok());
        for bad in ["", ".hidden", "a/b", "../x", "with space"] {
            assert!(
                matches!(check_name(bad), Err(BaselineError::BadName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn missing_baseline_hints_how_to_save_and_what_exists() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BaselineStore::new(tmp.path());
        let e = store.find("main", "smoke").unwrap_err().to_string();
        assert!(e.contains("--save-baseline main"), "{e}");
        assert!(e.contains("no baselines saved yet"), "{e}");
        let d = tmp.path().join("release").join("smoke");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("result.json"), "{}").unwrap();
        let e = store.find("main", "smoke").unwrap_err().to_string();
        assert!(e.contains("saved: release/smoke"), "{e}");
    }
}
