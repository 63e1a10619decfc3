//! The git side of measuring a server's commits (`hsbench ab`, `hsbench bisect`): resolve refs,
//! list a range, and check commits out into worktrees of the user's repository that hsbench
//! keeps in its cache (one per slot: `base`, `head`, `good`, `probe`), so that the user's own
//! checkout is never touched and each slot keeps its virtualenv and build state between runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::util::fs::cache_dir;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{}: not a git repository (git rev-parse: {stderr})", dir.display())]
    NotARepo { dir: PathBuf, stderr: String },
    #[error("{}: {rev:?} is not a commit of this repository ({stderr})", repo.display())]
    UnknownRev {
        repo: PathBuf,
        rev: String,
        stderr: String,
    },
    #[error("{}: `git {args}` failed: {stderr}", dir.display())]
    Failed {
        dir: PathBuf,
        args: String,
        stderr: String,
    },
    #[error("cannot run git in {}: {source}", dir.display())]
    Spawn {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `git -C dir args`: stdout (trimmed), or the failure with stderr.
fn git(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| GitError::Spawn {
            dir: dir.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        return Err(GitError::Failed {
            dir: dir.to_path_buf(),
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The top level of the repository `dir` is in.
pub fn toplevel(dir: &Path) -> Result<PathBuf, GitError> {
    git(dir, &["rev-parse", "--show-toplevel"])
        .map(PathBuf::from)
        .map_err(|e| match e {
            GitError::Failed { stderr, .. } => GitError::NotARepo {
                dir: dir.to_path_buf(),
                stderr,
            },
            e => e,
        })
}

/// The full commit id of `rev` (a branch, tag, `HEAD~2`, a short id).
pub fn resolve(repo: &Path, rev: &str) -> Result<String, GitError> {
    git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .map_err(|e| match e {
        GitError::Failed { stderr, .. } => GitError::UnknownRev {
            repo: repo.to_path_buf(),
            rev: rev.to_string(),
            stderr: if stderr.is_empty() {
                "git rev-parse found nothing".into()
            } else {
                stderr
            },
        },
        e => e,
    })
}

/// A commit's subject line.
pub fn subject(repo: &Path, commit: &str) -> String {
    git(repo, &["log", "-1", "--format=%s", commit]).unwrap_or_default()
}

/// The commits after `good` up to and including `bad`, oldest first, on the path between them
/// (`git rev-list --ancestry-path --first-parent good..bad`).
pub fn range(repo: &Path, good: &str, bad: &str) -> Result<Vec<String>, GitError> {
    let out = git(
        repo,
        &[
            "rev-list",
            "--reverse",
            "--ancestry-path",
            "--first-parent",
            &format!("{good}..{bad}"),
        ],
    )?;
    Ok(out.lines().map(str::to_string).collect())
}

/// A worktree of `repo` at `commit`, in the cache under the slot's name: created the first time,
/// then moved to the commit (`checkout --force --detach`, untracked non-ignored files removed)
/// so that what is installed is exactly the commit. Build state the repository ignores stays.
pub fn worktree(repo: &Path, commit: &str, slot: &str) -> Result<PathBuf, GitError> {
    let top = toplevel(repo)?;
    let common = git(
        &top,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )?;
    let key = hex::encode(&Sha256::digest(common.as_bytes())[..6]);
    let dir = cache_dir().join("worktrees").join(key).join(slot);
    if dir.join(".git").exists() && git(&dir, &["rev-parse", "--git-dir"]).is_ok() {
        git(
            &dir,
            &["checkout", "--quiet", "--force", "--detach", commit],
        )?;
        git(&dir, &["clean", "-fdq"])?;
    } else {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|source| GitError::Spawn {
                dir: dir.clone(),
                source,
            })?;
        }
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|source| GitError::Spawn {
                dir: parent.to_path_buf(),
                source,
            })?;
        }
        // A slot removed by hand leaves a stale registration behind.
        let _ = git(&top, &["worktree", "prune"]);
        git(
            &top,
            &[
                "worktree",
                "add",
                "--quiet",
                "--force",
                "--detach",
                &dir.to_string_lossy(),
                commit,
            ],
        )?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t.invalid"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }

    #[test]
    fn refs_ranges_and_worktree_slots() {
        let repo = tempfile::tempdir().unwrap();
        let r = repo.path();
        sh(r, &["init", "-q"]);
        for i in 0..4 {
            std::fs::write(r.join("f.txt"), format!("{i}\n")).unwrap();
            sh(r, &["add", "-A"]);
            sh(r, &["commit", "-qm", &format!("commit {i}")]);
        }
        let head = resolve(r, "HEAD").unwrap();
        let first = resolve(r, "HEAD~3").unwrap();
        assert_eq!(head.len(), 40);
        assert!(matches!(
            resolve(r, "no-such-branch"),
            Err(GitError::UnknownRev { .. })
        ));
        let commits = range(r, &first, &head).unwrap();
        assert_eq!(commits.len(), 3);
        assert_eq!(commits.last(), Some(&head));
        assert_eq!(subject(r, &commits[0]), "commit 1");

        // A unique slot name: the cache is shared with other tests.
        let slot = format!("unit-{}", std::process::id());
        let wt = worktree(r, &first, &slot).unwrap();
        assert_eq!(std::fs::read_to_string(wt.join("f.txt")).unwrap(), "0\n");
        std::fs::write(wt.join("stray.txt"), "x").unwrap();
        let again = worktree(r, &head, &slot).unwrap();
        assert_eq!(again, wt);
        assert_eq!(std::fs::read_to_string(wt.join("f.txt")).unwrap(), "3\n");
        assert!(!wt.join("stray.txt").exists(), "untracked files go");
        sh(r, &["worktree", "remove", "--force", &wt.to_string_lossy()]);
    }
}
