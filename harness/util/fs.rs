//! Files: atomic writes, tree sizes, the cache directory, absolute paths.

use std::path::{Path, PathBuf};

/// Write `path` through a temporary file beside it and a rename, so a reader never sees half a
/// file; the temporary file is removed when the write fails (a full disk leaves nothing new).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

pub fn tree_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// hsbench's cache: `$HSBENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/hsbench`, else `~/.cache/hsbench`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HSBENCH_CACHE_DIR") {
        return absolute(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return absolute(PathBuf::from(d).join("hsbench"));
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    absolute(PathBuf::from(home).join(".cache/hsbench"))
}

/// `path` made absolute against the working directory (unchanged if it already is, or if the
/// working directory is gone). Every path a child process receives goes through this: a server
/// or profiler runs in a directory of its own, where a relative path means something else.
pub fn absolute(path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        return path;
    }
    std::path::absolute(&path).unwrap_or(path)
}

/// `target` as a path relative to the directory `from` (both made absolute first, `..` for each
/// of `from`'s components past the common prefix): a link that still resolves when the two
/// trees are copied together (a CI artifact of `results/`).
pub fn relative(target: &Path, from: &Path) -> PathBuf {
    let (t, f) = (absolute(target.to_path_buf()), absolute(from.to_path_buf()));
    let (tc, fc): (Vec<_>, Vec<_>) = (t.components().collect(), f.components().collect());
    let common = tc.iter().zip(&fc).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..fc.len() {
        out.push("..");
    }
    for c in &tc[common..] {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_path_walks_up_to_the_common_directory() {
        let r = |t: &str, f: &str| relative(Path::new(t), Path::new(f)).display().to_string();
        assert_eq!(
            r("/a/b/run/report.html", "/a/b/history"),
            "../run/report.html"
        );
        assert_eq!(r("/a/b/report.html", "/a/b"), "report.html");
        assert_eq!(r("/x/r.html", "/a/b"), "../../x/r.html");
    }
}
