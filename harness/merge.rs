//! `hsbench merge <dirs…>`: combine the histograms of several run directories (shards of one
//! load, or repeats) into one. Every `.hist` file (HDR V2 + DEFLATE) present in any directory is
//! read and added to the others of the same name; HDR histograms merge exactly (counts per
//! bucket add), so the merged percentiles are those of one run that made all the requests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use crate::metrics::{LatencySummary, read_histogram, write_histogram};

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot be merged: {message}")]
    Incompatible { path: PathBuf, message: String },
    #[error("no .hist files in {0:?}")]
    Empty(Vec<PathBuf>),
}

/// What `merge` wrote: per histogram, its summary and how many inputs it came from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Merged {
    pub schema_version: u32,
    pub inputs: Vec<PathBuf>,
    pub histograms: BTreeMap<String, MergedHistogram>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MergedHistogram {
    pub inputs: usize,
    pub summary: LatencySummary,
}

/// Merge in memory: the sum of histograms.
pub fn merge_histograms<'a>(
    hists: impl IntoIterator<Item = &'a Histogram<u64>>,
) -> Result<Histogram<u64>, String> {
    let mut out = crate::metrics::new_latency_histogram();
    for h in hists {
        out.add(h).map_err(|e| format!("{e:?}"))?;
    }
    Ok(out)
}

/// Merge the `.hist` files of `dirs` into `out` (`<stem>.hist`, `<stem>.hgrm`, `merged.json`).
pub fn merge_dirs(dirs: &[PathBuf], out: &Path) -> Result<Merged, MergeError> {
    let mut acc: BTreeMap<String, (usize, Histogram<u64>)> = BTreeMap::new();
    for dir in dirs {
        let entries = std::fs::read_dir(dir).map_err(|source| MergeError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "hist"))
            .collect();
        files.sort();
        for path in files {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let h = read_histogram(&path).map_err(|source| MergeError::Io {
                path: path.clone(),
                source,
            })?;
            let slot = acc
                .entry(stem)
                .or_insert_with(|| (0, crate::metrics::new_latency_histogram()));
            slot.1.add(&h).map_err(|e| MergeError::Incompatible {
                path: path.clone(),
                message: format!("{e:?}"),
            })?;
            slot.0 += 1;
        }
    }
    if acc.is_empty() {
        return Err(MergeError::Empty(dirs.to_vec()));
    }
    std::fs::create_dir_all(out).map_err(|source| MergeError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let mut histograms = BTreeMap::new();
    for (stem, (n, h)) in &acc {
        write_histogram(out, stem, h).map_err(|source| MergeError::Io {
            path: out.join(format!("{stem}.hist")),
            source,
        })?;
        histograms.insert(
            stem.clone(),
            MergedHistogram {
                inputs: *n,
                summary: LatencySummary::of(h),
            },
        );
    }
    let merged = Merged {
        schema_version: 1,
        inputs: dirs.to_vec(),
        histograms,
    };
    let json = serde_json::to_vec_pretty(&merged).expect("serializable");
    let path = out.join("merged.json");
    crate::report::write_atomic(&path, &json).map_err(|source| MergeError::Io { path, source })?;
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Shards' histograms, written and read back as files and merged, equal the histogram of one
    /// run that recorded every value.
    #[test]
    fn merged_shards_equal_a_single_run() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let values: Vec<u64> = (0..30_000)
            .map(|_| (rng.random::<f64>().powi(4) * 5e6) as u64 + 1)
            .collect();
        let mut single = crate::metrics::new_latency_histogram();
        for &v in &values {
            single.record(v).unwrap();
        }
        let tmp = tempfile::tempdir().unwrap();
        let mut dirs = Vec::new();
        for shard in 0..3 {
            let mut h = crate::metrics::new_latency_histogram();
            for &v in values.iter().skip(shard).step_by(3) {
                h.record(v).unwrap();
            }
            let d = tmp.path().join(format!("shard-{shard}"));
            std::fs::create_dir_all(&d).unwrap();
            write_histogram(&d, "steady-send", &h).unwrap();
            dirs.push(d);
        }
        // One shard also has a histogram the others lack.
        write_histogram(&dirs[0], "herd-sync", &single).unwrap();
        let out = tmp.path().join("merged");
        let m = merge_dirs(&dirs, &out).unwrap();
        let merged = read_histogram(&out.join("steady-send.hist")).unwrap();
        assert_eq!(merged, single);
        assert_eq!(merged.len(), 30_000);
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(merged.value_at_quantile(q), single.value_at_quantile(q));
        }
        assert_eq!(m.histograms["steady-send"].inputs, 3);
        assert_eq!(m.histograms["herd-sync"].inputs, 1);
        assert_eq!(
            m.histograms["steady-send"].summary,
            LatencySummary::of(&single)
        );
        assert!(out.join("merged.json").is_file() && out.join("steady-send.hgrm").is_file());
        // In memory too.
        let a = read_histogram(&dirs[1].join("steady-send.hist")).unwrap();
        let b = read_histogram(&dirs[2].join("steady-send.hist")).unwrap();
        let c = read_histogram(&dirs[0].join("steady-send.hist")).unwrap();
        assert_eq!(merge_histograms([&a, &b, &c]).unwrap(), single);
        assert!(matches!(
            merge_dirs(&[tmp.path().join("merged-none")], &out),
            Err(MergeError::Io { .. })
        ));
    }
}
