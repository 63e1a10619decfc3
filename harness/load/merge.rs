//! `hsbench merge <dirs…>`: combine the histograms of several run directories (shards of one
//! load, or repeats) into one. Every `.hist` file (HDR V2 + DEFLATE) present in any directory is
//! read and added to the others of the same name; HDR histograms merge exactly (counts per
//! bucket add), so the merged percentiles are those of one run that made all the requests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// Per sharded workload: deliveries that crossed shards, matched here with their sends.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub cross_shard_deliveries: BTreeMap<String, CrossShard>,
    /// A sharded triggered herd's time to recover, computed again over every shard's
    /// deliveries (each shard's own result sees only its slice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triggered_recovery: Option<crate::load::recovery::Recovery>,
}

/// Deliveries one shard saw of messages another shard sent.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CrossShard {
    /// Matched with a send of another shard and added to `<workload>-delivery`.
    pub matched: u64,
    /// Of a message no shard's sends list (its send failed or never got a 200).
    pub unmatched: u64,
}

/// Read a shard's `seq,unix_ns` file.
fn read_seq_times(path: &Path) -> Result<Vec<(u64, u64)>, MergeError> {
    let text = std::fs::read_to_string(path).map_err(|source| MergeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            l.split_once(',')
                .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
                .ok_or_else(|| MergeError::Incompatible {
                    path: path.to_path_buf(),
                    message: format!("line {}: {l:?} is not `seq,unix_ns`", i + 1),
                })
        })
        .collect()
}

/// Time the deliveries that crossed shards: each `<workload>-foreign-deliveries.csv` row is
/// matched with the `<workload>-sends.csv` row of the same sequence number (from any shard);
/// the latency (delivery − the send's 200, 0 when earlier) is added to the workload's merged
/// delivery histogram, so it holds every delivery, as a single run's does.
type CrossShardMatches = BTreeMap<String, (CrossShard, Vec<(u64, u64)>)>;

/// Returns per workload the counts and the matched deliveries as (Unix ns seen, latency µs).
fn match_cross_shard(
    dirs: &[PathBuf],
    acc: &mut BTreeMap<String, (usize, Histogram<u64>)>,
) -> Result<CrossShardMatches, MergeError> {
    const SENDS: &str = "-sends.csv";
    const FOREIGN: &str = "-foreign-deliveries.csv";
    let mut sends: BTreeMap<String, std::collections::HashMap<u64, u64>> = BTreeMap::new();
    let mut foreign: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for path in files {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(w) = name.strip_suffix(SENDS) {
                sends
                    .entry(w.to_string())
                    .or_default()
                    .extend(read_seq_times(&path)?);
            } else if let Some(w) = name.strip_suffix(FOREIGN) {
                foreign
                    .entry(w.to_string())
                    .or_default()
                    .extend(read_seq_times(&path)?);
            }
        }
    }
    let mut out = BTreeMap::new();
    for (w, rows) in foreign {
        let sent = sends.get(&w);
        let mut c = CrossShard::default();
        let mut matched = Vec::new();
        let slot = acc
            .entry(format!("{w}-delivery"))
            .or_insert_with(|| (0, crate::metrics::new_latency_histogram()));
        for (seq, seen) in rows {
            match sent.and_then(|m| m.get(&seq)) {
                Some(&ok_at) => {
                    let lat = (seen.saturating_sub(ok_at) / 1000).max(1);
                    let _ = slot.1.record(lat);
                    matched.push((seen, lat));
                    c.matched += 1;
                }
                None => c.unmatched += 1,
            }
        }
        out.insert(w, (c, matched));
    }
    Ok(out)
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
    let cross = match_cross_shard(dirs, &mut acc)?;
    let triggered_recovery = match cross.get("triggered") {
        Some((_, matched)) => triggered_recovery(dirs, matched)?,
        None => None,
    };
    let cross_shard_deliveries = cross.into_iter().map(|(w, (c, _))| (w, c)).collect();
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
        cross_shard_deliveries,
        triggered_recovery,
    };
    let json = serde_json::to_vec_pretty(&merged).expect("serializable");
    let path = out.join("merged.json");
    crate::util::fs::write_atomic(&path, &json)
        .map_err(|source| MergeError::Io { path, source })?;
    Ok(merged)
}

/// A sharded triggered herd's recovery over every shard: each shard's per-interval delivery
/// histograms (`triggered.hlog`, tag `delivery`) plus the deliveries matched across shards,
/// binned by when they were seen after the common origin, under the rule and trigger time the
/// shards reported (the trigger's send as shard 0 saw it). `None` without shard results.
fn triggered_recovery(
    dirs: &[PathBuf],
    matched: &[(u64, u64)],
) -> Result<Option<crate::load::recovery::Recovery>, MergeError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MergeError::Io { path, source }
    };
    let mut shards = Vec::new();
    for dir in dirs {
        let path = dir.join("result.json");
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| MergeError::Incompatible {
                path: path.clone(),
                message: e.to_string(),
            })?;
        if v["triggered"].is_object() && v["shard"].is_object() {
            shards.push((dir.clone(), v));
        }
    }
    let Some((_, first)) = shards.first() else {
        return Ok(None);
    };
    let t = &first["triggered"];
    let num = |v: &serde_json::Value, what: &str| {
        v.as_f64().ok_or_else(|| MergeError::Incompatible {
            path: dirs[0].join("result.json"),
            message: format!("no number at {what}"),
        })
    };
    let interval_ms = num(&t["interval_ms"], "triggered.interval_ms")?;
    let origin_ms = num(&t["origin_unix_ms"], "triggered.origin_unix_ms")?;
    let wall_s = num(&t["wall_s"], "triggered.wall_s")?;
    let rule = crate::load::recovery::RecoveryRule {
        tolerance: num(&t["recovery"]["tolerance"], "triggered.recovery.tolerance")?,
        hold: Duration::from_secs_f64(
            num(&t["recovery"]["hold_ms"], "triggered.recovery.hold_ms")? / 1e3,
        ),
        slack: Duration::from_secs_f64(
            num(&t["recovery"]["slack_ms"], "triggered.recovery.slack_ms")? / 1e3,
        ),
    };
    // The trigger's send as the shard that sent it (shard 0) measured it.
    let trigger_s = shards
        .iter()
        .find(|(_, v)| v["shard"]["index"] == 0)
        .unwrap_or(&shards[0])
        .1["triggered"]["recovery"]["trigger_s"]
        .as_f64()
        .unwrap_or(0.0);
    let interval = Duration::from_secs_f64(interval_ms / 1e3);
    let n = ((wall_s / interval.as_secs_f64()) + 1e-9).floor() as usize;
    let mut hists: Vec<Histogram<u64>> = (0..n)
        .map(|_| crate::metrics::new_latency_histogram())
        .collect();
    for (dir, _) in &shards {
        let path = dir.join("triggered.hlog");
        for (tag, start_s, _, h) in
            crate::metrics::read_interval_histograms(&path).map_err(io(&path))?
        {
            let i = (start_s / interval.as_secs_f64() + 1e-6).floor() as usize;
            if tag == "delivery"
                && let Some(slot) = hists.get_mut(i)
            {
                let _ = slot.add(&h);
            }
        }
    }
    let origin_ns = (origin_ms * 1e6) as u64;
    for &(seen, lat) in matched {
        let i =
            (seen.saturating_sub(origin_ns) as f64 / 1e9 / interval.as_secs_f64()).floor() as usize;
        if let Some(slot) = hists.get_mut(i) {
            let _ = slot.record(lat);
        }
    }
    let obs: Vec<crate::load::recovery::IntervalObs<'_>> = hists
        .iter()
        .map(|h| crate::load::recovery::IntervalObs {
            deliveries: h.len(),
            latency: Some(h),
        })
        .collect();
    Ok(Some(crate::load::recovery::compute(
        &obs,
        interval,
        Duration::from_secs_f64(trigger_s),
        rule,
    )))
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

    /// Two steady shards: each timed the deliveries of its own messages; the deliveries of the
    /// other shard's messages are matched at merge, and the merged delivery histogram equals
    /// the one a single run would have recorded.
    #[test]
    fn cross_shard_deliveries_are_matched_with_the_other_shards_sends() {
        let tmp = tempfile::tempdir().unwrap();
        let base = 1_700_000_000_000_000_000u64; // unix ns
        // Message q (shard q % 2) got its 200 at base + q ms; receiver r (shard r % 2) saw it
        // (q * 7 + r * 3) % 50 + 1 ms later.
        let ok_at = |q: u64| base + q * 1_000_000;
        let lat_us = |q: u64, r: u64| ((q * 7 + r * 3) % 50 + 1) * 1000;
        let mut single = crate::metrics::new_latency_histogram();
        let mut dirs = Vec::new();
        for shard in 0..2u64 {
            let mut local = crate::metrics::new_latency_histogram();
            let mut sends = String::from("seq,unix_ns\n");
            let mut foreign = String::from("seq,unix_ns\n");
            for q in 0..40u64 {
                if q % 2 == shard {
                    sends.push_str(&format!("{q},{}\n", ok_at(q)));
                }
                for r in (0..6u64).filter(|r| r % 2 == shard) {
                    single.record(lat_us(q, r)).unwrap();
                    if q % 2 == shard {
                        local.record(lat_us(q, r)).unwrap();
                    } else {
                        foreign.push_str(&format!("{q},{}\n", ok_at(q) + lat_us(q, r) * 1000));
                    }
                }
            }
            // A delivery of a message nobody sent.
            foreign.push_str(&format!("999,{}\n", base));
            let d = tmp.path().join(format!("shard-{shard}"));
            std::fs::create_dir_all(&d).unwrap();
            write_histogram(&d, "steady-delivery", &local).unwrap();
            std::fs::write(d.join("steady-sends.csv"), sends).unwrap();
            std::fs::write(d.join("steady-foreign-deliveries.csv"), foreign).unwrap();
            dirs.push(d);
        }
        let out = tmp.path().join("merged");
        let m = merge_dirs(&dirs, &out).unwrap();
        let merged = read_histogram(&out.join("steady-delivery.hist")).unwrap();
        assert_eq!(merged, single);
        assert_eq!(merged.len(), 40 * 6);
        assert_eq!(
            m.cross_shard_deliveries["steady"],
            CrossShard {
                matched: 40 * 6 / 2,
                unmatched: 2
            }
        );
        // A malformed row names the file and line.
        std::fs::write(dirs[1].join("steady-sends.csv"), "seq,unix_ns\n1;2\n").unwrap();
        let e = merge_dirs(&dirs, &out).unwrap_err().to_string();
        assert!(
            e.contains("steady-sends.csv") && e.contains("line 2"),
            "{e}"
        );
    }
}
