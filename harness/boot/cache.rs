//! Page-cache control for cold boots: evict a server's files (its data, its database's data,
//! its installation) from the page cache before a boot, and check that they really left it.
//!
//! `posix_fadvise(POSIX_FADV_DONTNEED)` on every file needs no privileges and touches only
//! these files; dirty pages are written back first (`fdatasync`) since the kernel keeps dirty
//! pages. Where `/proc/sys/vm/drop_caches` is writable, the whole page cache is dropped too.

use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// What an eviction did.
#[derive(
    Debug, Clone, Default, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
pub struct Eviction {
    pub files: u64,
    pub bytes: u64,
    /// `posix_fadvise(DONTNEED)` per file, plus `drop_caches` when it was permitted.
    pub method: String,
    pub drop_caches: bool,
    pub roots: Vec<String>,
}

fn walk(path: &Path, f: &mut dyn FnMut(&Path, u64)) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        if let Ok(rd) = std::fs::read_dir(path) {
            for e in rd.flatten() {
                walk(&e.path(), f);
            }
        }
    } else if meta.is_file() {
        f(path, meta.len());
    }
}

/// Write back and evict one file's pages.
pub fn evict_file(path: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    let fd = file.as_raw_fd();
    // SAFETY: fd is a valid open descriptor for the duration of these calls.
    unsafe {
        libc::fdatasync(fd);
        let rc = libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED);
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
    }
    Ok(())
}

/// Evict every file under `roots` from the page cache (and drop all caches where permitted).
pub fn evict(roots: &[PathBuf]) -> Eviction {
    let mut ev = Eviction {
        roots: roots.iter().map(|r| r.display().to_string()).collect(),
        ..Default::default()
    };
    for root in roots {
        walk(root, &mut |p, len| {
            if evict_file(p).is_ok() {
                ev.files += 1;
                ev.bytes += len;
            }
        });
    }
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    ev.drop_caches = std::fs::write("/proc/sys/vm/drop_caches", "1").is_ok();
    ev.method = if ev.drop_caches {
        "posix_fadvise(DONTNEED) on every file, then drop_caches".into()
    } else {
        "posix_fadvise(DONTNEED) on every file (drop_caches not permitted)".into()
    };
    ev
}

/// Resident and total pages of a file, from `mincore` over a read-only mapping.
pub fn resident_pages(path: &Path) -> std::io::Result<(usize, usize)> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len() as usize;
    if len == 0 {
        return Ok((0, 0));
    }
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let pages = len.div_ceil(page);
    // SAFETY: a private read-only mapping of an open file of `len` bytes; unmapped below.
    unsafe {
        let addr = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        );
        if addr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let mut vec = vec![0u8; pages];
        let rc = libc::mincore(addr, len, vec.as_mut_ptr());
        libc::munmap(addr, len);
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((vec.iter().filter(|b| **b & 1 == 1).count(), pages))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn eviction_really_evicts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.bin");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![42u8; 8 << 20]).unwrap();
        f.sync_all().unwrap();
        drop(f);
        // Read it back: now it is in the page cache.
        let mut buf = Vec::new();
        std::fs::File::open(&path)
            .unwrap()
            .read_to_end(&mut buf)
            .unwrap();
        let (before, total) = resident_pages(&path).unwrap();
        assert_eq!(total, (8 << 20) / 4096);
        assert!(before > total / 2, "{before}/{total} resident after a read");
        let ev = evict(&[dir.path().to_path_buf()]);
        assert_eq!((ev.files, ev.bytes), (1, 8 << 20));
        let (after, _) = resident_pages(&path).unwrap();
        assert!(
            after < total / 10,
            "{after}/{total} still resident after eviction"
        );
    }
}
