//! Fixtures: seed once, boot many. After a dataset is loaded, the server's data (its data
//! directory and, for PostgreSQL, the cluster's data directory) is snapshotted into a cache
//! keyed by everything that determines its bytes. Later runs restore the snapshot into a fresh
//! working directory instead of loading the dataset again.
//!
//! A fixture is complete only once its directory has been renamed into place with its manifest
//! inside: a build that fails or is interrupted leaves a `*.partial-*` directory, never a fixture.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::dataset::plan::PlanTotals;
use crate::dataset::seed::{Credentials, LoadReport};
use crate::scenario::DatasetSpec;

/// Bumped whenever the dataset model or the loader changes what a spec produces.
pub const MODEL_VERSION: u32 = 3;
/// The direct import's format: 3 since invites count in their target's notifications; 2 since
/// Synapse's background updates are finished over the empty schema before the import (1,
/// unrecorded: they ran over the imported rows at every boot).
pub const IMPORT_FORMAT: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("fixture {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("fixture manifest {}: {source}", path.display())]
    Manifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "fixture {key} is damaged: {file}: {what}; rebuild it with `hsbench run <scenario> --rebuild-fixture` (or remove it: `hsbench fixtures rm {key}`)"
    )]
    Damaged {
        key: String,
        /// The file, relative to the fixture's directory.
        file: String,
        what: String,
    },
    #[error("no fixture matches {0:?} (see `hsbench fixtures list`)")]
    NotFound(String),
    #[error("the fixture cache {} is not writable (set --fixtures-dir or HSBENCH_CACHE_DIR): {source}", path.display())]
    NotWritable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The lock of one fixture key, held while a run builds that fixture: a second run that needs
/// it waits, then reuses it. An advisory `flock`, released when the guard drops or the process
/// dies.
#[derive(Debug)]
pub struct BuildLock {
    _file: std::fs::File,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FixtureError + '_ {
    move |source| FixtureError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What identifies a fixture's content.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct FixtureIdentity {
    pub model_version: u32,
    pub spec: DatasetSpec,
    pub server_kind: String,
    pub server_version: String,
    /// `sqlite`, or `postgres-<major>`.
    pub database: String,
    /// How accounts were made when that changes what the server holds beyond the spec (a
    /// conduwuit-family server's users registered by an application service have no password).
    /// Absent otherwise, so that older fixtures keep their keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<String>,
    /// The direct import's format when it changes what the fixture holds ([`IMPORT_FORMAT`]);
    /// absent for fixtures loaded through the API, so that their keys stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_format: Option<u32>,
}

impl FixtureIdentity {
    pub fn key(&self) -> String {
        let json = serde_json::to_vec(self).expect("identity serializes");
        hex::encode(&Sha256::digest(&json)[..8])
    }
}

#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct FixtureManifest {
    pub key: String,
    pub identity: FixtureIdentity,
    pub created_at: String,
    pub scenario: String,
    pub totals: PlanTotals,
    pub load: LoadReport,
    /// Rows per table of the server's database at snapshot time.
    pub table_counts: BTreeMap<String, Option<u64>>,
    pub size_bytes: u64,
    /// Loading the dataset plus taking the snapshot.
    pub build_seconds: f64,
    /// Every file of the snapshot as saved (`fixture.json` aside): what a restore checks first.
    /// Empty in fixtures saved before hsbench kept it (those are not checked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileEntry>,
}

/// One file of a fixture as saved.
#[derive(
    Debug, Clone, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
pub struct FileEntry {
    /// Relative to the fixture's directory.
    pub path: String,
    pub size: u64,
    /// SHA-256 of the file's size and of [`SAMPLES`] blocks of [`SAMPLE_BLOCK`] bytes spread
    /// evenly over it, the first and the last included (the whole file when it is no longer
    /// than the samples): a truncation or a half-written copy always shows in the size, a
    /// damaged block wherever it falls in a file of up to 1 MiB, and in a sampled block beyond.
    pub sample_sha256: String,
}

/// Blocks hashed of each fixture file.
pub const SAMPLES: u64 = 16;
/// Bytes a block.
pub const SAMPLE_BLOCK: u64 = 64 * 1024;

/// [`FileEntry::sample_sha256`] of a file `size` bytes long.
fn sample_hash(path: &Path, size: u64) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    h.update(size.to_le_bytes());
    let mut buf = vec![0u8; SAMPLE_BLOCK as usize];
    let offsets: Vec<u64> = if size <= SAMPLES * SAMPLE_BLOCK {
        (0..size.div_ceil(SAMPLE_BLOCK))
            .map(|i| i * SAMPLE_BLOCK)
            .collect()
    } else {
        let last = size - SAMPLE_BLOCK;
        (0..SAMPLES).map(|i| last * i / (SAMPLES - 1)).collect()
    };
    for off in offsets {
        f.seek(SeekFrom::Start(off))?;
        let want = SAMPLE_BLOCK.min(size - off) as usize;
        f.read_exact(&mut buf[..want])?;
        h.update(&buf[..want]);
    }
    Ok(hex::encode(h.finalize()))
}

/// The entries of every regular file under `root` (relative paths, sorted), `skip` aside.
fn file_entries(root: &Path, skip: &str) -> Result<Vec<FileEntry>, FixtureError> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<FileEntry>) -> Result<(), FixtureError> {
        for e in std::fs::read_dir(dir).map_err(io(dir))? {
            let e = e.map_err(io(dir))?;
            let p = e.path();
            let ft = e.file_type().map_err(io(&p))?;
            if ft.is_dir() {
                walk(root, &p, out)?;
            } else if ft.is_file() {
                let size = e.metadata().map_err(io(&p))?.len();
                out.push(FileEntry {
                    path: p
                        .strip_prefix(root)
                        .expect("under the root")
                        .to_string_lossy()
                        .into_owned(),
                    size,
                    sample_sha256: sample_hash(&p, size).map_err(io(&p))?,
                });
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.retain(|f| f.path != skip);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// How a run got its dataset, for the results.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct FixtureUse {
    pub key: String,
    pub path: String,
    /// `true`: restored from the cache; `false`: built by this run.
    pub reused: bool,
    pub size_bytes: u64,
    pub snapshot_seconds: Option<f64>,
    pub restore_seconds: Option<f64>,
    /// Restore throughput, for comparison with a raw copy of the same bytes.
    pub restore_mib_per_s: Option<f64>,
    /// How the restore copied the fixture: `reflink` (extents shared, O(1) in the size: the
    /// fixture cache and the run's working directory on one XFS or btrfs), `copy`, or
    /// `reflink+copy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_method: Option<String>,
    pub table_counts: BTreeMap<String, Option<u64>>,
}

/// A fixture on disk.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub dir: PathBuf,
    pub manifest: FixtureManifest,
}

impl Fixture {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("synapse-data")
    }
    pub fn pgdata(&self) -> PathBuf {
        self.dir.join("pgdata")
    }
    /// Check the files against the manifest: each there, of its size, its samples unchanged.
    /// A fixture saved before manifests listed files passes unchecked.
    pub fn verify(&self) -> Result<(), FixtureError> {
        let damaged = |file: &str, what: String| FixtureError::Damaged {
            key: self.manifest.key.clone(),
            file: file.to_string(),
            what,
        };
        for f in &self.manifest.files {
            let p = self.dir.join(&f.path);
            let size = match std::fs::metadata(&p) {
                Ok(m) => m.len(),
                Err(e) => return Err(damaged(&f.path, format!("cannot be read ({e})"))),
            };
            if size != f.size {
                return Err(damaged(
                    &f.path,
                    format!("{size} bytes, {} when saved", f.size),
                ));
            }
            match sample_hash(&p, size) {
                Ok(h) if h == f.sample_sha256 => {}
                Ok(_) => {
                    return Err(damaged(
                        &f.path,
                        "its content changed since it was saved".into(),
                    ));
                }
                Err(e) => return Err(damaged(&f.path, format!("cannot be read ({e})"))),
            }
        }
        Ok(())
    }

    pub fn credentials(&self) -> Result<Credentials, FixtureError> {
        let p = self.dir.join("credentials.json");
        let bytes = std::fs::read(&p).map_err(io(&p))?;
        serde_json::from_slice(&bytes).map_err(|source| FixtureError::Manifest { path: p, source })
    }
}

/// Files at the top of a data directory that are not part of a snapshot (regenerated per boot).
/// Only the top level: deeper down a `.log` file is data (RocksDB's write-ahead log).
fn skip(name: &str) -> bool {
    name == "homeserver.pid" || name.starts_with("hsbench-") || name.ends_with(".log")
}

/// How a tree was copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Copied {
    pub bytes: u64,
    /// Bytes shared with the source through reflinks (`FICLONE`): no data moved, so the time
    /// does not grow with the size.
    pub reflinked_bytes: u64,
}

impl Copied {
    /// `reflink`, `copy`, or `reflink+copy` (some files could not be shared).
    pub fn method(&self) -> &'static str {
        match (self.reflinked_bytes, self.bytes) {
            (0, _) => "copy",
            (r, b) if r == b => "reflink",
            _ => "reflink+copy",
        }
    }

    fn add(&mut self, other: Copied) {
        self.bytes += other.bytes;
        self.reflinked_bytes += other.reflinked_bytes;
    }
}

/// Copy a directory tree. Each file is first cloned (`FICLONE`: a reflink, on XFS, btrfs and
/// other filesystems that share extents; O(1) in the file's size), else copied with
/// `std::fs::copy` (`copy_file_range`: an in-kernel copy).
pub fn copy_tree(from: &Path, to: &Path) -> Result<Copied, FixtureError> {
    copy_level(from, to, true)
}

fn copy_level(from: &Path, to: &Path, top: bool) -> Result<Copied, FixtureError> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    let mut copied = Copied::default();
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let name = entry.file_name();
        if top && skip(&name.to_string_lossy()) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        let ft = entry.file_type().map_err(io(&src))?;
        if ft.is_dir() {
            copied.add(copy_level(&src, &dst, false)?);
            // Modes matter: PostgreSQL refuses a data directory that is not 0700/0750.
            let perm = std::fs::metadata(&src).map_err(io(&src))?.permissions();
            std::fs::set_permissions(&dst, perm).map_err(io(&dst))?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&src).map_err(io(&src))?;
            std::os::unix::fs::symlink(target, &dst).map_err(io(&dst))?;
        } else {
            copied.add(copy_file(&src, &dst)?);
            let perm = std::fs::metadata(&src).map_err(io(&src))?.permissions();
            std::fs::set_permissions(&dst, perm).map_err(io(&dst))?;
        }
    }
    Ok(copied)
}

/// `FICLONE` from `linux/fs.h`: `_IOW(0x94, 9, int)`.
const FICLONE: libc::c_ulong = 0x4004_9409;

/// One file: a reflink where the filesystem shares extents, else a copy.
fn copy_file(src: &Path, dst: &Path) -> Result<Copied, FixtureError> {
    use std::os::fd::AsRawFd;
    let from = std::fs::File::open(src).map_err(io(src))?;
    let len = from.metadata().map_err(io(src))?.len();
    let to = std::fs::File::create(dst).map_err(io(dst))?;
    // SAFETY: both descriptors are open for the duration of the call.
    let cloned = unsafe { libc::ioctl(to.as_raw_fd(), FICLONE as _, from.as_raw_fd()) } == 0;
    if cloned {
        return Ok(Copied {
            bytes: len,
            reflinked_bytes: len,
        });
    }
    drop(to);
    let bytes = std::fs::copy(src, dst).map_err(io(src))?;
    Ok(Copied {
        bytes,
        reflinked_bytes: 0,
    })
}

/// Whether files under `dir` can be reflinked into `dir` (a probe of two small files).
pub fn reflinks_within(dir: &Path) -> bool {
    let Ok(probe) = tempfile::Builder::new()
        .prefix(".reflink-probe-")
        .tempdir_in(dir)
    else {
        return false;
    };
    let (a, b) = (probe.path().join("a"), probe.path().join("b"));
    std::fs::write(&a, b"hsbench").is_ok() && copy_file(&a, &b).is_ok_and(|c| c.reflinked_bytes > 0)
}

/// The fixture cache.
#[derive(Debug, Clone)]
pub struct FixtureStore {
    pub root: PathBuf,
}

impl Default for FixtureStore {
    fn default() -> Self {
        Self {
            root: crate::util::fs::cache_dir().join("fixtures"),
        }
    }
}

impl FixtureStore {
    /// A store at `root`, made absolute (servers and profilers get paths inside it).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: crate::util::fs::absolute(root.into()),
        }
    }

    /// Fail early, before a dataset is built, when the cache cannot take a fixture.
    pub fn check_writable(&self) -> Result<(), FixtureError> {
        let not_writable = |source| FixtureError::NotWritable {
            path: self.root.clone(),
            source,
        };
        std::fs::create_dir_all(&self.root).map_err(not_writable)?;
        tempfile::Builder::new()
            .prefix(".writable-")
            .tempfile_in(&self.root)
            .map(drop)
            .map_err(not_writable)
    }

    /// The build lock of `key` if no other process holds it (`None`: another run is building
    /// this fixture now).
    pub fn try_lock(&self, key: &str) -> Result<Option<BuildLock>, FixtureError> {
        use std::os::fd::AsRawFd;
        std::fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        let path = self.root.join(format!("{key}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            return Ok(Some(BuildLock { _file: file }));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Ok(None)
        } else {
            Err(FixtureError::Io { path, source: e })
        }
    }

    /// The complete fixture with this key, if any.
    pub fn get(&self, key: &str) -> Option<Fixture> {
        // Only a directory renamed into place is a fixture: never a build's `.partial-` one,
        // whatever it holds.
        let dir = self.root.join(key);
        let bytes = std::fs::read(dir.join("fixture.json")).ok()?;
        let manifest: FixtureManifest = serde_json::from_slice(&bytes).ok()?;
        (manifest.key == key).then_some(Fixture { dir, manifest })
    }

    pub fn list(&self) -> Vec<Fixture> {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut v: Vec<Fixture> = rd
            .flatten()
            .filter_map(|e| self.get(&e.file_name().to_string_lossy()))
            .collect();
        v.sort_by(|a, b| a.manifest.created_at.cmp(&b.manifest.created_at));
        v
    }

    /// Remove fixtures whose key starts with `prefix` (all with `None`), and any leftovers of
    /// interrupted builds. Returns how many fixtures were removed.
    pub fn remove(&self, prefix: Option<&str>) -> Result<usize, FixtureError> {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return match prefix {
                Some(p) => Err(FixtureError::NotFound(p.into())),
                None => Ok(0),
            };
        };
        let mut n = 0;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".lock") || name.starts_with('.') {
                // A build lock (perhaps held by a running build), or a probe file.
                continue;
            }
            let partial = name.contains(".partial-");
            if partial || prefix.is_none_or(|p| name.starts_with(p)) {
                std::fs::remove_dir_all(e.path()).map_err(io(&e.path()))?;
                n += usize::from(!partial);
            }
        }
        if n == 0
            && let Some(p) = prefix
        {
            return Err(FixtureError::NotFound(p.into()));
        }
        Ok(n)
    }

    /// Snapshot a stopped server's data into the cache, atomically.
    pub fn save(
        &self,
        mut manifest: FixtureManifest,
        data_dir: &Path,
        pgdata: Option<&Path>,
        creds: &Credentials,
    ) -> Result<(Fixture, f64), FixtureError> {
        let t = Instant::now();
        let final_dir = self.root.join(&manifest.key);
        let tmp = self
            .root
            .join(format!("{}.partial-{}", manifest.key, std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let mut size = copy_tree(data_dir, &tmp.join("synapse-data"))?.bytes;
        if let Some(pg) = pgdata {
            size += copy_tree(pg, &tmp.join("pgdata"))?.bytes;
            let perm = std::fs::metadata(pg).map_err(io(pg))?.permissions();
            std::fs::set_permissions(tmp.join("pgdata"), perm).map_err(io(pg))?;
        }
        let cp = tmp.join("credentials.json");
        std::fs::write(
            &cp,
            serde_json::to_vec(creds).expect("credentials serialize"),
        )
        .map_err(io(&cp))?;
        manifest.size_bytes = size;
        manifest.files = file_entries(&tmp, "fixture.json")?;
        manifest.build_seconds += t.elapsed().as_secs_f64();
        let mp = tmp.join("fixture.json");
        std::fs::write(
            &mp,
            serde_json::to_vec_pretty(&manifest).expect("manifest serializes"),
        )
        .map_err(io(&mp))?;
        if final_dir.exists() {
            // Another run finished the same fixture first: keep theirs.
            let _ = std::fs::remove_dir_all(&tmp);
        } else {
            std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
        }
        let fx = self
            .get(&manifest.key)
            .ok_or_else(|| FixtureError::NotFound(manifest.key.clone()))?;
        Ok((fx, t.elapsed().as_secs_f64()))
    }

    /// Copy a fixture's data into a fresh data directory (and PostgreSQL data directory).
    /// Returns the seconds and how it was copied.
    pub fn restore(
        &self,
        fx: &Fixture,
        data_dir: &Path,
        pgdata: Option<&Path>,
    ) -> Result<(f64, Copied), FixtureError> {
        let t = Instant::now();
        fx.verify()?;
        let mut copied = copy_tree(&fx.data_dir(), data_dir)?;
        if let Some(pg) = pgdata {
            copied.add(copy_tree(&fx.pgdata(), pg)?);
            let perm = std::fs::metadata(fx.pgdata())
                .map_err(io(&fx.pgdata()))?
                .permissions();
            std::fs::set_permissions(pg, perm).map_err(io(pg))?;
        }
        Ok((t.elapsed().as_secs_f64(), copied))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(seed: u64) -> FixtureIdentity {
        FixtureIdentity {
            model_version: MODEL_VERSION,
            spec: DatasetSpec::new(seed, 3, 1, 2, 1),
            server_kind: "synapse".into(),
            server_version: "1.163.2".into(),
            database: "sqlite".into(),
            accounts: None,
            import_format: None,
        }
    }

    fn manifest(id: FixtureIdentity) -> FixtureManifest {
        FixtureManifest {
            key: id.key(),
            identity: id,
            created_at: "2026-11-23T00:00:00Z".into(),
            scenario: "t".into(),
            totals: PlanTotals::default(),
            load: LoadReport {
                method: "test".into(),
                concurrency: 1,
                totals: PlanTotals::default(),
                steps: vec![],
                total_seconds: 0.0,
                partial: false,
            },
            table_counts: BTreeMap::new(),
            size_bytes: 0,
            build_seconds: 1.0,
            files: Vec::new(),
        }
    }

    #[test]
    fn a_damaged_or_half_copied_fixture_is_named_before_a_restore() {
        let cache = tempfile::tempdir().unwrap();
        let store = FixtureStore::new(cache.path());
        let data = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(data.path().join("homeserver.db"), &big).unwrap();
        std::fs::write(data.path().join("small"), b"abc").unwrap();
        let creds = Credentials {
            user_ids: vec![],
            tokens: vec!["t".into()],
            room_ids: vec![],
        };
        let (fx, _) = store
            .save(manifest(identity(2)), data.path(), None, &creds)
            .unwrap();
        // Every file but the manifest is listed, with its size.
        let listed: Vec<(&str, u64)> = fx
            .manifest
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.size))
            .collect();
        assert_eq!(
            listed,
            [
                (
                    "credentials.json",
                    std::fs::metadata(fx.dir.join("credentials.json"))
                        .unwrap()
                        .len()
                ),
                ("synapse-data/homeserver.db", 3_000_000),
                ("synapse-data/small", 3)
            ]
        );
        fx.verify().unwrap();
        let db = fx.data_dir().join("homeserver.db");
        let out = tempfile::tempdir().unwrap();
        // A block changed where a sample falls (the last block).
        let mut changed = big.clone();
        changed[2_999_999] ^= 1;
        std::fs::write(&db, &changed).unwrap();
        let e = store.restore(&fx, &out.path().join("a"), None).unwrap_err();
        assert!(e.to_string().contains("content changed"), "{e}");
        // Truncated, as a full disk leaves it: named, with the fix, before anything is copied.
        std::fs::write(&db, &big[..1_000_000]).unwrap();
        let e = store.restore(&fx, &out.path().join("b"), None).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains(&format!("fixture {} is damaged", fx.manifest.key))
                && text.contains("synapse-data/homeserver.db: 1000000 bytes, 3000000 when saved")
                && text.contains("--rebuild-fixture"),
            "{text}"
        );
        assert!(!out.path().join("b").exists());
        // A file missing (a copy stopped halfway).
        std::fs::remove_file(fx.data_dir().join("small")).unwrap();
        std::fs::write(&db, &big).unwrap();
        assert!(
            matches!(fx.verify(), Err(FixtureError::Damaged { file, .. }) if file == "synapse-data/small")
        );
        // A build killed halfway leaves a `.partial-` directory, manifest and all: never a fixture.
        let key = fx.manifest.key.clone();
        std::fs::remove_dir_all(&fx.dir).unwrap();
        let half = cache.path().join(format!("{key}.partial-4242"));
        std::fs::create_dir_all(&half).unwrap();
        std::fs::write(
            half.join("fixture.json"),
            serde_json::to_vec(&fx.manifest).unwrap(),
        )
        .unwrap();
        assert!(store.get(&key).is_none() && store.list().is_empty());
    }

    #[test]
    fn key_depends_on_every_part_of_the_identity() {
        let a = identity(1);
        assert_eq!(a.key(), identity(1).key());
        assert_ne!(a.key(), identity(2).key());
        let mut b = identity(1);
        b.database = "postgres-15".into();
        assert_ne!(a.key(), b.key());
        let mut c = identity(1);
        c.server_version = "1.163.3".into();
        assert_ne!(a.key(), c.key());
    }

    #[test]
    fn an_unwritable_cache_is_found_before_a_build_and_builds_are_locked() {
        // A path under a file can never be created (root ignores permission bits).
        let file = tempfile::NamedTempFile::new().unwrap();
        let bad = FixtureStore::new(file.path().join("fixtures"));
        match bad.check_writable() {
            Err(FixtureError::NotWritable { path, .. }) => assert_eq!(path, bad.root),
            other => panic!("{other:?}"),
        }
        let dir = tempfile::tempdir().unwrap();
        let store = FixtureStore::new(dir.path());
        store.check_writable().unwrap();
        // One holder per key; released when dropped.
        let held = store.try_lock("k").unwrap().expect("free");
        assert!(store.try_lock("k").unwrap().is_none());
        assert!(store.try_lock("other").unwrap().is_some());
        drop(held);
        assert!(store.try_lock("k").unwrap().is_some());
        // Lock files are neither fixtures nor removed with them.
        assert!(store.list().is_empty());
        assert_eq!(store.remove(None).unwrap(), 0);
    }

    #[test]
    fn save_restore_list_remove() {
        let cache = tempfile::tempdir().unwrap();
        let store = FixtureStore::new(cache.path());
        let data = tempfile::tempdir().unwrap();
        std::fs::write(data.path().join("homeserver.db"), vec![7u8; 100_000]).unwrap();
        std::fs::write(data.path().join("homeserver.pid"), "123").unwrap();
        std::fs::write(data.path().join("hsbench-overrides.yaml"), "{}").unwrap();
        std::fs::create_dir(data.path().join("media_store")).unwrap();
        std::fs::write(data.path().join("media_store/x"), "m").unwrap();
        let creds = Credentials {
            user_ids: vec![],
            tokens: vec!["t".into()],
            room_ids: vec![],
        };
        let m = manifest(identity(1));
        let key = m.key.clone();
        let (fx, _) = store.save(m, data.path(), None, &creds).unwrap();
        assert_eq!(fx.manifest.size_bytes, 100_001);
        assert!(!fx.data_dir().join("homeserver.pid").exists());
        assert_eq!(fx.credentials().unwrap().tokens, vec!["t".to_string()]);

        let out = tempfile::tempdir().unwrap();
        let target = out.path().join("d");
        let (_, copied) = store.restore(&fx, &target, None).unwrap();
        let bytes = copied.bytes;
        assert_eq!(bytes, 100_001);
        assert_eq!(
            std::fs::read(target.join("homeserver.db")).unwrap(),
            vec![7u8; 100_000]
        );
        assert_eq!(store.list().len(), 1);

        // A leftover of an interrupted build is never listed, and rm cleans it.
        std::fs::create_dir(cache.path().join(format!("{key}.partial-99"))).unwrap();
        assert_eq!(store.list().len(), 1);
        assert!(store.remove(Some("zz")).is_err());
        assert_eq!(store.remove(Some(&key[..4])).unwrap(), 1);
        assert!(store.list().is_empty());
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
    }
}
