//! Who owns a work directory or a result in progress: the process (pid, its start time in clock
//! ticks since boot, the machine's boot id), so that a later run can tell a live owner from one
//! that is gone (`kill -9`, an OOM kill, a lost machine) and clean up after it.
//!
//! A pid alone is not enough: pids are reused, and a machine that rebooted has the same pids
//! again. The start time tells a reused pid apart, the boot id a rebooted machine.

use std::path::{Path, PathBuf};

/// The file an owned directory carries at its top.
pub const STAMP: &str = ".hsbench-owner.json";

/// Prefixes of the directories a run makes beside its data (its work directory, a private
/// PostgreSQL cluster's).
pub const WORK_PREFIXES: [&str; 2] = ["hsbench-work-", "hsbench-pg-"];

/// A directory made less than this long ago without a stamp may be a run's that is about to
/// write one: it is left alone.
const UNSTAMPED_GRACE: std::time::Duration = std::time::Duration::from_secs(120);

/// A process, as the kernel knows it.
#[derive(
    Debug, Clone, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
pub struct Owner {
    pub pid: u32,
    /// The process's start time, clock ticks after boot (`/proc/<pid>/stat`, field 22).
    pub start_ticks: u64,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// A running process's start time (clock ticks after boot); `None` when there is no such
/// process or it has ended (a zombie waiting for its parent is gone too).
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    // Field 3, the state; the start time is field 22, 19 fields after it.
    if matches!(rest.next(), Some("Z" | "X")) {
        return None;
    }
    rest.nth(18)?.parse().ok()
}

impl Owner {
    /// This process.
    pub fn current() -> Self {
        let pid = std::process::id();
        Self {
            pid,
            start_ticks: start_ticks(pid).unwrap_or(0),
            boot_id: boot_id(),
        }
    }

    /// Whether the owning process still runs (on this boot, with the same start time).
    pub fn is_alive(&self) -> bool {
        self.boot_id == boot_id() && start_ticks(self.pid) == Some(self.start_ticks)
    }

    /// Write the stamp into `dir`.
    pub fn stamp(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).expect("owner serializes");
        crate::util::fs::write_atomic(&dir.join(STAMP), &bytes)
    }

    /// The stamp of `dir`, if it has a readable one.
    pub fn of(dir: &Path) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(dir.join(STAMP)).ok()?).ok()
    }
}

/// A directory left by a run whose process is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub path: PathBuf,
    pub bytes: u64,
    /// `None`: the directory has no stamp (left by an hsbench from before stamps).
    pub owner: Option<Owner>,
}

/// The work directories under `parents` whose owner is gone: stamped by a process that no
/// longer runs, or unstamped and older than a run needs to stamp one.
pub fn stale_dirs(parents: &[PathBuf]) -> Vec<Stale> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for parent in parents {
        let Ok(rd) = std::fs::read_dir(parent) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !WORK_PREFIXES.iter().any(|p| name.starts_with(p))
                || !e.file_type().is_ok_and(|t| t.is_dir())
            {
                continue;
            }
            let path = e.path();
            if !seen.insert(path.clone()) {
                continue;
            }
            let owner = Owner::of(&path);
            let stale = match &owner {
                Some(o) => !o.is_alive(),
                None => std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > UNSTAMPED_GRACE),
            };
            if stale {
                out.push(Stale {
                    bytes: crate::util::fs::tree_size(&path),
                    path,
                    owner,
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Remove stale directories; what was removed (and what could not be, with why).
pub fn remove_stale(stale: &[Stale]) -> (Vec<&Stale>, Vec<(&Stale, std::io::Error)>) {
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    for s in stale {
        match std::fs::remove_dir_all(&s.path) {
            Ok(()) => removed.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => failed.push((s, e)),
        }
    }
    (removed, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_gone_one_is_not() {
        let me = Owner::current();
        assert!(me.start_ticks > 0 && !me.boot_id.is_empty(), "{me:?}");
        assert!(me.is_alive());
        // Same pid, another start time: a reused pid.
        let reused = Owner {
            start_ticks: me.start_ticks + 1,
            ..me.clone()
        };
        assert!(!reused.is_alive());
        // Another boot.
        let rebooted = Owner {
            boot_id: "00000000-0000-0000-0000-000000000000".into(),
            ..me.clone()
        };
        assert!(!rebooted.is_alive());
    }

    #[test]
    fn stale_directories_are_found_by_their_owners() {
        let parent = tempfile::tempdir().unwrap();
        let live = parent.path().join("hsbench-work-live");
        let gone = parent.path().join("hsbench-pg-gone");
        let fresh = parent.path().join("hsbench-work-unstamped");
        let other = parent.path().join("not-ours");
        for d in [&live, &gone, &fresh, &other] {
            std::fs::create_dir(d).unwrap();
        }
        Owner::current().stamp(&live).unwrap();
        let dead = Owner {
            start_ticks: 1,
            ..Owner::current()
        };
        dead.stamp(&gone).unwrap();
        std::fs::write(gone.join("credentials.json"), b"tokens").unwrap();
        let stale = stale_dirs(&[parent.path().to_path_buf(), parent.path().to_path_buf()]);
        // The live one is kept, the unstamped one is too young to judge, the other is not ours.
        assert_eq!(stale.len(), 1, "{stale:?}");
        assert_eq!(stale[0].path, gone);
        assert_eq!(stale[0].owner.as_ref(), Some(&dead));
        assert!(stale[0].bytes >= 6);
        let (removed, failed) = remove_stale(&stale);
        assert_eq!((removed.len(), failed.len()), (1, 0));
        assert!(!gone.exists() && live.exists() && fresh.exists());
    }
}
