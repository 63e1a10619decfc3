//! Shards: several hsbench processes (or Kubernetes pods) each run a slice of one workload's
//! clients against the same server, and `hsbench merge` combines their histograms.
//!
//! Shard `i` of `n` (0-based) takes clients `j` with `j % n == i`: user `j`'s token goes to
//! shard `j % n`, so the slices are disjoint, cover every client, and differ in size by at most
//! one. The shard comes from `--shard i/n`, else `HSBENCH_SHARD=i/n`, else a Kubernetes Indexed
//! Job's `JOB_COMPLETION_INDEX=i` with `HSBENCH_SHARDS=n`.
//!
//! Every workload shards; a sharded run has one workload, and every workload but a herd needs
//! the common release time (`--release-at`), its time zero:
//! - herd: each shard fires its slice at the release time;
//! - steady: each shard long-polls its slice and sends its share of the one schedule (messages
//!   `i % n == index`), numbered from the release time;
//! - triggered: the same for the long polls and the chatter; shard 0 sends the trigger, every
//!   shard's clients react to it;
//! - catch-up: each shard writes its share of the backlog before the release time, then runs
//!   its slice of the readers.
//!
//! A shard cannot time a delivery of another shard's message (it never saw that send's 200):
//! it keeps it (sequence number and time), and `hsbench merge` matches it with that shard's
//! send, so merged delivery histograms (and the triggered herd's merged recovery) count every
//! receiver of every message.

use crate::scenario::{Scenario, Workload, WorkloadKind};

/// Slice `index` of `count` (0-based).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ShardError {
    #[error("{source_name} = {value:?}: {message}")]
    Bad {
        source_name: String,
        value: String,
        message: String,
    },
    #[error(
        "scenario {scenario}: a sharded [workload.{workload}] needs --release-at (or HSBENCH_RELEASE_AT): every shard's schedule and message numbers count from that common time"
    )]
    NeedsRelease { scenario: String, workload: String },
    #[error(
        "scenario {scenario}: a sharded run fires one workload at the release time, and this one has {workloads}; shard them as separate scenarios"
    )]
    OneWorkload { scenario: String, workloads: String },
}

impl Shard {
    /// The whole load: one shard.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// `"i/n"` with `0 <= i < n`.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, ShardError> {
        let bad = |message: &str| ShardError::Bad {
            source_name: source_name.into(),
            value: text.into(),
            message: message.into(),
        };
        let (i, n) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| bad("write the shard as INDEX/COUNT, e.g. 0/4 (0-based)"))?;
        let index: u32 = i.trim().parse().map_err(|_| bad("INDEX is not a number"))?;
        let count: u32 = n.trim().parse().map_err(|_| bad("COUNT is not a number"))?;
        if count == 0 {
            return Err(bad("COUNT must be at least 1"));
        }
        if index >= count {
            return Err(bad("INDEX is 0-based and must be below COUNT"));
        }
        Ok(Self { index, count })
    }

    /// From the environment: `HSBENCH_SHARD=i/n`, else `JOB_COMPLETION_INDEX=i` (a Kubernetes
    /// Indexed Job) with `HSBENCH_SHARDS=n`. `None` when neither is set.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ShardError> {
        if let Some(v) = get("HSBENCH_SHARD") {
            return Self::parse(&v, "HSBENCH_SHARD").map(Some);
        }
        let Some(index) = get("JOB_COMPLETION_INDEX") else {
            return Ok(None);
        };
        let Some(count) = get("HSBENCH_SHARDS") else {
            return Err(ShardError::Bad {
                source_name: "JOB_COMPLETION_INDEX".into(),
                value: index,
                message: "set HSBENCH_SHARDS to the Job's completions (the shard count)".into(),
            });
        };
        Self::parse(
            &format!("{index}/{count}"),
            "JOB_COMPLETION_INDEX/HSBENCH_SHARDS",
        )
        .map(Some)
    }

    /// How many of clients `0..total` are this shard's.
    pub fn slice_len(&self, total: u64) -> u64 {
        let (i, n) = (self.index as u64, self.count as u64);
        if total <= i {
            0
        } else {
            (total - i).div_ceil(n)
        }
    }

    /// This shard's items: `items[j]` for `j % count == index`, in order.
    pub fn slice<T: Clone>(&self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .skip(self.index as usize)
            .step_by(self.count as usize)
            .cloned()
            .collect()
    }

    /// The scenario as this shard runs it: the herd's client count cut to the slice (the
    /// other workloads slice their clients themselves: they need every user, as senders, the
    /// trigger's sender or the backlog's writer). A sharded run has one workload, released at
    /// the common time; every workload but a herd requires that time.
    pub fn scenario(&self, sc: &Scenario, released: bool) -> Result<Scenario, ShardError> {
        let mut out = sc.clone();
        if self.count == 1 {
            return Ok(out);
        }
        if sc.workloads.len() > 1 {
            return Err(ShardError::OneWorkload {
                scenario: sc.name.clone(),
                workloads: sc
                    .workloads
                    .iter()
                    .map(|w| format!("[workload.{}]", w.name()))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if let Some(w) = sc.workloads.first()
            && !released
            && w.kind() != WorkloadKind::Herd
        {
            return Err(ShardError::NeedsRelease {
                scenario: sc.name.clone(),
                workload: w.name().into(),
            });
        }
        for w in &mut out.workloads {
            if let Workload::Herd(h) = w {
                h.clients = self.slice_len(h.clients);
            }
        }
        Ok(out)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_bad_values() {
        assert_eq!(
            Shard::parse("1/4", "--shard"),
            Ok(Shard { index: 1, count: 4 })
        );
        for bad in ["4/4", "1", "a/2", "0/0", "-1/2"] {
            let e = Shard::parse(bad, "--shard").unwrap_err().to_string();
            assert!(e.starts_with(&format!("--shard = {bad:?}")), "{e}");
        }
    }

    #[test]
    fn reads_the_environment_of_an_indexed_job() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Shard::from_env(env(&[])), Ok(None));
        assert_eq!(
            Shard::from_env(env(&[("HSBENCH_SHARD", "2/3")])),
            Ok(Some(Shard { index: 2, count: 3 }))
        );
        assert_eq!(
            Shard::from_env(env(&[
                ("JOB_COMPLETION_INDEX", "1"),
                ("HSBENCH_SHARDS", "2")
            ])),
            Ok(Some(Shard { index: 1, count: 2 }))
        );
        let e = Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "1")])).unwrap_err();
        assert!(e.to_string().contains("HSBENCH_SHARDS"), "{e}");
        // --shard-style precedence: HSBENCH_SHARD wins over the Job index.
        assert_eq!(
            Shard::from_env(env(&[
                ("HSBENCH_SHARD", "0/2"),
                ("JOB_COMPLETION_INDEX", "1"),
                ("HSBENCH_SHARDS", "2")
            ])),
            Ok(Some(Shard { index: 0, count: 2 }))
        );
    }

    #[test]
    fn slices_are_disjoint_and_cover_every_client() {
        for total in [0u64, 1, 2, 7, 100, 101] {
            for count in 1..=5u32 {
                let items: Vec<u64> = (0..total).collect();
                let mut seen = Vec::new();
                for index in 0..count {
                    let s = Shard { index, count };
                    let part = s.slice(&items);
                    assert_eq!(part.len() as u64, s.slice_len(total), "{total} {s}");
                    assert!(part.iter().all(|j| j % count as u64 == index as u64));
                    seen.extend(part);
                }
                seen.sort();
                assert_eq!(seen, items);
            }
        }
    }
}
