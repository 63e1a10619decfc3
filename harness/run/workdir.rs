//! The run's working directories (server data, sockets, a cluster's files): owned,
//! cleaned when stale.

use super::ctx::Ctx;
use super::error::RunError;
use crate::dataset::fixture::FixtureStore;
use std::path::{Path, PathBuf};

/// Where a run's working copies go: next to the fixtures (`<fixtures>/.work`) when that
/// filesystem shares extents, so that restoring a fixture is a reflink whatever its size;
/// otherwise the system's temporary directory. A PostgreSQL cluster also needs a path its
/// `postgres` user can reach (every ancestor searchable by others).
/// A fresh directory under `parent` for this run's data, private to its user (0700; a private
/// cluster's is handed to the cluster's user after) and stamped with this process as its owner,
/// so that a later run can remove it should this one be killed.
pub(super) fn owned_work_dir(prefix: &str, parent: &Path) -> Result<tempfile::TempDir, RunError> {
    use std::os::unix::fs::PermissionsExt;
    let out = |source| RunError::Output {
        path: parent.to_path_buf(),
        source,
    };
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(parent)
        .map_err(out)?;
    crate::util::owner::Owner::current()
        .stamp(dir.path())
        .map_err(|source| RunError::Output {
            path: dir.path().join(crate::util::owner::STAMP),
            source,
        })?;
    Ok(dir)
}

/// Where runs make their work directories: beside the fixtures (when reflinks work there) and
/// the system's temporary directory.
pub fn work_parents(store: &FixtureStore) -> Vec<PathBuf> {
    vec![store.root.join(".work"), std::env::temp_dir()]
}

/// Remove the work directories of runs whose process is gone, saying what went.
pub(super) fn clean_stale_work(ctx: &Ctx<'_>, work_parent: &Path) {
    let mut parents = work_parents(&ctx.opts.fixtures);
    parents.push(work_parent.to_path_buf());
    let stale = crate::util::owner::stale_dirs(&parents);
    let (removed, failed) = crate::util::owner::remove_stale(&stale);
    for s in removed {
        ctx.say(&format!(
            "removed {} ({}), left by {}",
            s.path.display(),
            crate::util::fmt::fmt_bytes(s.bytes as f64),
            s.owner.as_ref().map_or_else(
                || "an older hsbench".to_string(),
                |o| format!("a killed run (process {})", o.pid)
            )
        ));
    }
    for (s, e) in failed {
        ctx.say(&format!(
            "cannot remove {} (left by a killed run): {e}",
            s.path.display()
        ));
    }
}

pub(super) fn work_parent(store: &FixtureStore, for_postgres: bool) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let tmp = std::env::temp_dir();
    // The probe leaves nothing behind; `.work` is made only where it will be used.
    if std::fs::create_dir_all(&store.root).is_err()
        || !crate::dataset::fixture::reflinks_within(&store.root)
    {
        return tmp;
    }
    let dir = store.root.join(".work");
    if std::fs::create_dir_all(&dir).is_err() {
        return tmp;
    }
    let reachable = dir
        .ancestors()
        .skip(1)
        .all(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    if for_postgres && !reachable {
        return tmp;
    }
    dir
}
