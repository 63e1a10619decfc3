//! Synapse as the server under test: installed from PyPI into a cached virtualenv, configured by
//! its own `--generate-config` plus hsbench's benchmark overrides.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::json;

use super::error::ServerError;
use crate::util::fs::cache_dir;

/// Server name of every hsbench dataset (never resolvable: nothing federates).
pub const SERVER_NAME: &str = "hsbench.local";

/// hsbench's application-service registration, inside the data directory.
pub const APPSERVICE_FILE: &str = "appservice-hsbench.yaml";

/// A Synapse installed in a virtualenv.
#[derive(Debug, Clone, schemars::JsonSchema, serde::Serialize)]
pub struct SynapseInstall {
    pub version: String,
    pub venv: PathBuf,
    pub python: PathBuf,
    /// Whether this run installed it (false: reused from the cache).
    pub installed_now: bool,
    /// Seconds the install took (0 when reused).
    pub install_seconds: f64,
    /// Where a source install came from (`[server] source`); `None` for a PyPI release.
    pub source: Option<SourceInfo>,
}

impl SynapseInstall {
    /// What keys this install's dataset fixtures: a release's version, or for a checkout its
    /// version and a hash of its database schema ([`SourceInfo::schema`]), so that commits which
    /// leave the schema alone share one fixture.
    pub fn fixture_version(&self) -> String {
        self.source
            .as_ref()
            .map_or_else(|| self.version.clone(), |s| s.schema.clone())
    }
}

/// Where a source install came from, so that a result can be traced to its commit.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct SourceInfo {
    /// The checkout, canonical.
    pub path: String,
    /// `git rev-parse HEAD`; `None` outside git.
    pub commit: Option<String>,
    /// The branch checked out; `None` on a detached HEAD or outside git.
    pub branch: Option<String>,
    /// Uncommitted changes to tracked files, or untracked source files (outside git: unknown,
    /// `false`).
    pub dirty: bool,
    /// The tree's fingerprint (the `+src.<fingerprint>` of the version).
    pub fingerprint: String,
    /// What keys its fixtures: `<version>+schema.<hash of synapse/storage/schema/>`.
    pub schema: String,
}

impl SourceInfo {
    /// `main @ 1a2b3c4d5e, uncommitted changes`, or the path outside git.
    pub fn describe(&self) -> String {
        match &self.commit {
            Some(c) => format!(
                "{} @ {}{}",
                self.branch.as_deref().unwrap_or("detached"),
                &c[..c.len().min(10)],
                if self.dirty {
                    ", uncommitted changes"
                } else {
                    ""
                }
            ),
            None => format!("{} (not a git checkout)", self.path),
        }
    }
}

/// Hash of a checkout's database schema (`synapse/storage/schema/`: every file's relative path
/// and content, in order): what decides whether a fixture built by one commit fits another.
pub fn schema_hash(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    fn walk(root: &Path, d: &Path, h: &mut Sha256) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let name = e.file_name();
            if name.to_string_lossy() == "__pycache__" {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, h);
            } else if let Ok(mut f) = std::fs::File::open(&p) {
                h.update(
                    p.strip_prefix(root)
                        .unwrap_or(&p)
                        .to_string_lossy()
                        .as_bytes(),
                );
                h.update(b"\0");
                let _ = std::io::copy(&mut f, h);
                h.update(b"\0");
            }
        }
    }
    let root = dir.join("synapse/storage/schema");
    let mut h = Sha256::new();
    walk(&root, &root, &mut h);
    hex::encode(&h.finalize()[..8])
}

/// `git -C <dir> <args>`, quietly; `None` when git cannot run.
fn git_in(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
}

/// The commit, branch and dirtiness of a git checkout; `None` outside git.
fn git_state(dir: &Path) -> Option<(String, Option<String>, bool)> {
    let git = |args: &[&str]| git_in(dir, args);
    let head = git(&["rev-parse", "HEAD"]).filter(|o| o.status.success())?;
    let commit = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let branch = git(&["symbolic-ref", "--short", "-q", "HEAD"])
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|b| !b.is_empty());
    let changed = git(&["diff", "HEAD", "--quiet"]).is_some_and(|o| o.status.code() == Some(1));
    let untracked = git(&["ls-files", "--others", "--exclude-standard"])
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|f| !is_build_output(f))
        })
        .unwrap_or(false);
    Some((commit, branch, changed || untracked))
}

/// Files a build of the checkout makes (never source): a checkout without a .gitignore (the
/// sdist, a fresh clone of a fork) lists them as untracked.
fn is_build_output(f: &str) -> bool {
    ["target/", "build/", "dist/"]
        .iter()
        .any(|d| f.starts_with(d))
        || f.contains("__pycache__/")
        || f.contains(".egg-info/")
        || f.ends_with(".so")
        || f.ends_with(".pyc")
}

fn run_checked(cmd: &mut std::process::Command, what: &str) -> Result<String, ServerError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ServerError::Install {
            step: what.to_string(),
            source: format!("cannot start {:?}: {e}", cmd.get_program()).into(),
        })?;
    if !out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(ServerError::Install {
            step: what.to_string(),
            source: format!("{} failed:\n{}", what, tail.join("\n")).into(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// What a long install is doing now (`venv`, `dependencies`, `building Synapse and its Rust
/// extension`, …), for a progress line; shared with the thread that installs.
#[derive(Debug, Clone, Default)]
pub struct InstallStep(std::sync::Arc<std::sync::Mutex<String>>);

impl InstallStep {
    pub fn set(&self, step: &str) {
        if let Ok(mut s) = self.0.lock()
            && *s != step
        {
            step.clone_into(&mut s);
        }
    }

    pub fn get(&self) -> String {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The step a line of pip's output starts.
fn pip_step(line: &str) -> Option<&'static str> {
    let l = line.trim_start();
    if l.starts_with("Installing build dependencies") {
        Some("build dependencies")
    } else if l.starts_with("Getting requirements to build") || l.starts_with("Preparing metadata")
    {
        Some("reading the package's metadata")
    } else if l.starts_with("Collecting")
        || l.starts_with("Downloading")
        || l.starts_with("Requirement already satisfied")
        || l.starts_with("Using cached")
    {
        Some("dependencies")
    } else if l.starts_with("Building wheel for matrix-synapse")
        || l.starts_with("Building wheel for matrix_synapse")
    {
        Some("building Synapse and its Rust extension (cargo)")
    } else if l.starts_with("Building wheel") {
        Some("building wheels")
    } else if l.starts_with("Installing collected packages") {
        Some("installing")
    } else {
        None
    }
}

/// pip, its output read line by line into `step`; on failure the error holds the output's tail.
fn run_pip(
    cmd: &mut std::process::Command,
    what: &str,
    step: &InstallStep,
) -> Result<(), ServerError> {
    use std::io::BufRead;
    let fail = |source: String| ServerError::Install {
        step: what.to_string(),
        source: source.into(),
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start {:?}: {e}", cmd.get_program())))?;
    let stderr = child.stderr.take().expect("piped stderr");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut text);
        text
    });
    let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let stdout = child.stdout.take().expect("piped stdout");
    for line in std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
    {
        if let Some(s) = pip_step(&line) {
            step.set(s);
        }
        if tail.len() == 30 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let status = child.wait().map_err(|e| fail(e.to_string()))?;
    let errors = errors.join().unwrap_or_default();
    if !status.success() {
        let mut lines: Vec<String> = tail.into_iter().collect();
        lines.extend(errors.lines().map(str::to_string));
        let n = lines.len().saturating_sub(40);
        return Err(fail(format!("{what} failed:\n{}", lines[n..].join("\n"))));
    }
    Ok(())
}

/// Where every source install builds Synapse's Rust extension: one cargo target directory
/// shared by all checkouts and worktrees, so that a commit that changes only Python files does
/// not rebuild the extension and a new worktree compiles only Synapse's own crate.
pub fn cargo_target_dir() -> PathBuf {
    cache_dir().join("synapse-cargo-target")
}

/// Create `root` and hold its lock file: concurrent installers (tests, parallel runs) of one
/// virtualenv serialize on it. The lock is released when the file is dropped.
fn lock_root(root: &Path) -> Result<std::fs::File, ServerError> {
    std::fs::create_dir_all(root).map_err(|e| ServerError::io(root, e))?;
    let lock_path = root.join(".lock");
    let lock = std::fs::File::create(&lock_path).map_err(|e| ServerError::io(&lock_path, e))?;
    lock.lock().map_err(|e| ServerError::io(&lock_path, e))?;
    Ok(lock)
}

/// A virtualenv from `$HSBENCH_PYTHON` (default `python3`).
fn create_venv(venv: &Path) -> Result<(), ServerError> {
    let base_python = std::env::var_os("HSBENCH_PYTHON").unwrap_or_else(|| "python3".into());
    run_checked(
        std::process::Command::new(&base_python)
            .args(["-m", "venv"])
            .arg(venv),
        "python3 -m venv (on Debian: apt-get install python3-venv)",
    )
    .map(|_| ())
}

impl SynapseInstall {
    /// Install `matrix-synapse==version` into `<cache>/synapse-<version>/venv` unless a
    /// complete install is already there. Concurrent callers (tests, parallel runs) serialize
    /// on a lock file. Blocking: call from `spawn_blocking`.
    pub fn ensure(version: &str) -> Result<Self, ServerError> {
        Self::ensure_with(version, &InstallStep::default())
    }

    /// [`Self::ensure`], saying in `step` what it is doing.
    pub fn ensure_with(version: &str, step: &InstallStep) -> Result<Self, ServerError> {
        let root = cache_dir().join(format!("synapse-{version}"));
        let _lock = lock_root(&root)?;

        let venv = root.join("venv");
        let python = venv.join("bin/python");
        let marker = root.join(".complete");
        if std::fs::read_to_string(&marker).is_ok_and(|v| v.trim() == version) {
            return Ok(Self {
                version: version.to_string(),
                venv,
                python,
                installed_now: false,
                install_seconds: 0.0,
                source: None,
            });
        }
        let started = std::time::Instant::now();
        let _ = std::fs::remove_dir_all(&venv);
        step.set("virtualenv");
        create_venv(&venv)?;
        step.set("dependencies");
        run_pip(
            std::process::Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--progress-bar",
                "off",
                &format!("matrix-synapse=={version}"),
            ]),
            &format!("pip install matrix-synapse=={version}"),
            step,
        )?;
        let got = run_checked(
            std::process::Command::new(&python)
                .args(["-c", "import synapse; print(synapse.__version__)"]),
            "import synapse",
        )?;
        if got != version {
            return Err(ServerError::Install {
                step: "version check".into(),
                source: format!("asked for Synapse {version}, the venv has {got}").into(),
            });
        }
        std::fs::write(&marker, version).map_err(|e| ServerError::io(&marker, e))?;
        Ok(Self {
            version: version.to_string(),
            venv,
            python,
            installed_now: true,
            install_seconds: started.elapsed().as_secs_f64(),
            source: None,
        })
    }
}

/// What identifies the state of a source checkout: its git HEAD and uncommitted changes, or
/// (without git) the sizes and modification times of its source files.
pub fn source_fingerprint(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let git = |args: &[&str]| {
        git_in(dir, args)
            .filter(|o| o.status.success())
            .map(|o| o.stdout)
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(head) => {
            h.update(&head);
            h.update(git(&["diff", "HEAD"]).unwrap_or_default());
            // Untracked files count, except what building the checkout makes (a checkout
            // without a .gitignore: the sdist, a fresh clone of a fork).
            let untracked =
                git(&["ls-files", "--others", "--exclude-standard"]).unwrap_or_default();
            for f in String::from_utf8_lossy(&untracked).lines() {
                if !is_build_output(f) {
                    // Name and content: editing a new, uncommitted file is a new state.
                    h.update(f.as_bytes());
                    h.update(b"\n");
                    if let Ok(mut file) = std::fs::File::open(dir.join(f)) {
                        let _ = std::io::copy(&mut file, &mut h);
                    }
                }
            }
        }
        None => {
            fn walk(d: &Path, h: &mut Sha256) {
                let Ok(rd) = std::fs::read_dir(d) else { return };
                let mut entries: Vec<_> = rd.flatten().collect();
                entries.sort_by_key(|e| e.file_name());
                for e in entries {
                    let name = e.file_name();
                    let n = name.to_string_lossy();
                    if n.starts_with('.') || n == "target" || n == "build" || n == "__pycache__" {
                        continue;
                    }
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p, h);
                    } else if let Ok(m) = e.metadata() {
                        h.update(p.to_string_lossy().as_bytes());
                        h.update(m.len().to_le_bytes());
                        if let Ok(t) = m.modified()
                            && let Ok(d) = t.duration_since(std::time::UNIX_EPOCH)
                        {
                            h.update(d.as_nanos().to_le_bytes());
                        }
                    }
                }
            }
            walk(dir, &mut h);
        }
    }
    hex::encode(&h.finalize()[..8])
}

impl SynapseInstall {
    /// Install a Synapse source checkout (`[server] source`) into a virtualenv of its own,
    /// `<cache>/synapse-src-<path hash>/venv`, again whenever the checkout changed (its git HEAD,
    /// uncommitted changes, untracked files). `pip install <dir>` builds Synapse's Rust extension,
    /// so a Rust toolchain must be on PATH. The version is Synapse's own plus `+src.<fingerprint>`.
    /// Blocking.
    pub fn ensure_source(dir: &Path) -> Result<Self, ServerError> {
        Self::ensure_source_with(dir, &InstallStep::default())
    }

    /// [`Self::ensure_source`], saying in `step` what it is doing.
    pub fn ensure_source_with(dir: &Path, step: &InstallStep) -> Result<Self, ServerError> {
        use sha2::{Digest, Sha256};
        if !dir.join("pyproject.toml").is_file() {
            return Err(ServerError::Install {
                step: "source checkout".into(),
                source: format!(
                    "{} has no pyproject.toml: not a Synapse source checkout",
                    dir.display()
                )
                .into(),
            });
        }
        let canonical = dir.canonicalize().map_err(|e| ServerError::io(dir, e))?;
        let path_key = hex::encode(&Sha256::digest(canonical.to_string_lossy().as_bytes())[..6]);
        let root = cache_dir().join(format!("synapse-src-{path_key}"));
        let _lock = lock_root(&root)?;
        let venv = root.join("venv");
        let python = venv.join("bin/python");
        let marker = root.join(".complete");
        let fingerprint = source_fingerprint(&canonical);
        let installed = |installed_now: bool, secs: f64| -> Result<Self, ServerError> {
            let got = run_checked(
                std::process::Command::new(&python)
                    .args(["-c", "import synapse; print(synapse.__version__)"]),
                "import synapse",
            )?;
            let (commit, branch, dirty) = match git_state(&canonical) {
                Some((c, b, d)) => (Some(c), b, d),
                None => (None, None, false),
            };
            Ok(Self {
                version: format!("{got}+src.{fingerprint}"),
                venv: venv.clone(),
                python: python.clone(),
                installed_now,
                install_seconds: secs,
                source: Some(SourceInfo {
                    path: canonical.display().to_string(),
                    commit,
                    branch,
                    dirty,
                    fingerprint: fingerprint.clone(),
                    schema: format!("{got}+schema.{}", schema_hash(&canonical)),
                }),
            })
        };
        if std::fs::read_to_string(&marker).is_ok_and(|v| v.trim() == fingerprint) {
            return installed(false, 0.0);
        }
        let started = std::time::Instant::now();
        let fresh_venv = !python.is_file();
        if fresh_venv {
            step.set("virtualenv");
            create_venv(&venv)?;
        }
        let _ = std::fs::remove_file(&marker);
        let pip = |extra: &[&str], what: &str| {
            step.set("pip");
            run_pip(
                std::process::Command::new(&python)
                    .env("CARGO_TARGET_DIR", cargo_target_dir())
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--disable-pip-version-check",
                        "--progress-bar",
                        "off",
                    ])
                    .args(extra)
                    .arg(&canonical),
                what,
                step,
            )
        };
        let what = format!("pip install {} (the checkout)", canonical.display());
        if fresh_venv {
            pip(&[], &what)?;
        } else {
            // Rebuild only the checkout; dependencies again only when they no longer fit.
            pip(&["--force-reinstall", "--no-deps"], &what)?;
            let consistent = std::process::Command::new(&python)
                .args(["-m", "pip", "check"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !consistent {
                pip(&[], &what)?;
            }
        }
        std::fs::write(&marker, &fingerprint).map_err(|e| ServerError::io(&marker, e))?;
        installed(true, started.elapsed().as_secs_f64())
    }
}

/// Where Synapse keeps its database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbTarget {
    /// `homeserver.db` inside the data directory.
    Sqlite,
    /// A PostgreSQL database reached over TCP on loopback.
    Postgres {
        host: String,
        port: u16,
        user: String,
        password: Option<String>,
        database: String,
    },
}

impl DbTarget {
    /// A PostgreSQL target as a libpq connection string, and as `postgresql://user@host:port/db`
    /// (no password) for messages; `None` for SQLite.
    pub fn conninfo(&self) -> Option<(String, String)> {
        let DbTarget::Postgres {
            host,
            port,
            user,
            password,
            database,
        } = self
        else {
            return None;
        };
        let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
        let mut c = format!(
            "host={} port={port} user={} dbname={}",
            quote(host),
            quote(user),
            quote(database)
        );
        if let Some(p) = password {
            c.push_str(&format!(" password={}", quote(p)));
        }
        Some((c, format!("postgresql://{user}@{host}:{port}/{database}")))
    }
}

impl SynapseInstall {
    /// Make sure the venv can talk to PostgreSQL: Synapse's `postgres` extra is psycopg2,
    /// installed here as the `psycopg2-binary` wheel (no compiler or libpq headers needed).
    /// Blocking.
    pub fn ensure_postgres_driver(&self) -> Result<(), ServerError> {
        let probe = std::process::Command::new(&self.python)
            .args(["-c", "import psycopg2"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if probe.is_ok_and(|s| s.success()) {
            return Ok(());
        }
        let _lock = lock_root(self.venv.parent().unwrap_or(&self.venv))?;
        run_checked(
            std::process::Command::new(&self.python).args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                "psycopg2-binary",
            ]),
            "pip install psycopg2-binary",
        )
        .map(|_| ())
    }
}

/// One Synapse data directory with its configuration.
#[derive(Debug, Clone)]
pub struct SynapseInstance {
    pub install: SynapseInstall,
    pub data_dir: PathBuf,
    pub db: DbTarget,
    /// The scenario's own Synapse config keys (`[server.synapse_config]`), merged last.
    pub extra: Option<serde_json::Value>,
}

/// Rate limits raised far beyond any load hsbench makes: otherwise a load test measures the
/// limiter (defaults are e.g. 0.2 messages/s and 0.17 registrations/s per client).
fn rate_limits() -> serde_json::Value {
    let unlimited = json!({"per_second": 1_000_000, "burst_count": 1_000_000});
    let mut o = serde_json::Map::new();
    for key in [
        "rc_message",
        "rc_registration",
        "rc_registration_token_validity",
        "rc_admin_redaction",
        "rc_joins_per_room",
        "rc_key_requests",
        "rc_3pid_validation",
        "rc_third_party_invite",
        "rc_media_create",
        "rc_delayed_event_mgmt",
        "rc_room_creation",
        "rc_reports",
        "rc_user_directory",
        "rc_profile",
    ] {
        o.insert(key.into(), unlimited.clone());
    }
    o.insert(
        "rc_login".into(),
        json!({"address": unlimited, "account": unlimited, "failed_attempts": unlimited}),
    );
    o.insert(
        "rc_joins".into(),
        json!({"local": unlimited, "remote": unlimited}),
    );
    o.insert(
        "rc_invites".into(),
        json!({"per_room": unlimited, "per_user": unlimited, "per_issuer": unlimited}),
    );
    o.insert("rc_presence".into(), json!({"per_user": unlimited}));
    serde_json::Value::Object(o)
}

impl SynapseInstance {
    /// Generate Synapse's own config (signing key, secrets) in a fresh data directory.
    pub fn generate(
        install: &SynapseInstall,
        data_dir: &Path,
        db: DbTarget,
    ) -> Result<Self, ServerError> {
        std::fs::create_dir_all(data_dir).map_err(|e| ServerError::io(data_dir, e))?;
        let config = data_dir.join("homeserver.yaml");
        run_checked(
            std::process::Command::new(&install.python)
                .args(["-m", "synapse.app.homeserver", "--server-name", SERVER_NAME])
                .arg("--config-path")
                .arg(&config)
                .args(["--generate-config", "--report-stats=no"])
                .arg("--data-directory")
                .arg(data_dir)
                .current_dir(data_dir),
            "synapse --generate-config",
        )?;
        // An application service whose namespace covers the dataset's users: registering
        // through it skips password hashing and every rate limit.
        let token = |rng: &mut rand_chacha::ChaCha20Rng| -> String {
            use rand::Rng;
            (0..32)
                .map(|_| {
                    char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)])
                })
                .collect()
        };
        let mut rng = <rand_chacha::ChaCha20Rng as rand::SeedableRng>::from_os_rng();
        let registration = json!({
            "id": "hsbench",
            "url": null,
            "as_token": token(&mut rng),
            "hs_token": token(&mut rng),
            "sender_localpart": "hsbench-appservice",
            "rate_limited": false,
            "namespaces": {
                "users": [{"exclusive": false, "regex": format!("@hsb[0-9]+:{SERVER_NAME}")}],
                "rooms": [], "aliases": []
            }
        });
        let path = data_dir.join(APPSERVICE_FILE);
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&registration).expect("json"),
        )
        .map_err(|e| ServerError::io(&path, e))?;
        Ok(Self {
            install: install.clone(),
            data_dir: data_dir.to_path_buf(),
            db,
            extra: None,
        })
    }

    /// The application service token, when the data directory has hsbench's registration.
    pub fn appservice_token(&self) -> Option<String> {
        let bytes = std::fs::read(self.data_dir.join(APPSERVICE_FILE)).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        v["as_token"].as_str().map(str::to_string)
    }

    /// What a cold boot evicts from the page cache: the data directory, the virtualenv and the
    /// base interpreter's standard library (read from the venv's `pyvenv.cfg`).
    pub fn cache_roots(&self) -> Vec<PathBuf> {
        let mut roots = vec![self.data_dir.clone(), self.install.venv.clone()];
        if let Ok(cfg) = std::fs::read_to_string(self.install.venv.join("pyvenv.cfg"))
            && let Some(home) = cfg
                .lines()
                .find_map(|l| l.strip_prefix("home = ").map(str::trim))
            && let Some(base) = Path::new(home).parent()
        {
            roots.push(base.join("lib"));
        }
        roots
    }

    /// An instance over an existing data directory (a restored fixture).
    pub fn existing(install: &SynapseInstall, data_dir: &Path, db: DbTarget) -> Self {
        Self {
            install: install.clone(),
            data_dir: data_dir.to_path_buf(),
            db,
            extra: None,
        }
    }

    fn database_config(&self) -> serde_json::Value {
        match &self.db {
            DbTarget::Sqlite => json!({
                "name": "sqlite3",
                "args": {"database": self.data_dir.join("homeserver.db")}
            }),
            DbTarget::Postgres {
                host,
                port,
                user,
                password,
                database,
            } => {
                let mut args = json!({"user": user, "host": host, "port": port,
                                      "dbname": database, "cp_min": 5, "cp_max": 10});
                if let Some(p) = password {
                    args["password"] = json!(p);
                }
                json!({"name": "psycopg2", "args": args, "allow_unsafe_locale": false})
            }
        }
    }

    /// The benchmark overrides, merged over the generated config (Synapse merges the top-level
    /// keys of several `--config-path` files, later files winning). JSON is valid YAML.
    pub fn overrides(&self, port: u16) -> serde_json::Value {
        let mut v = json!({
            // Loopback only, one plain-HTTP client listener.
            "listeners": [{
                "port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": false,
                "x_forwarded": false, "resources": [{"names": ["client"], "compress": false}]
            }],
            // Every path points into this data directory, so a restored fixture works anywhere.
            "database": self.database_config(),
            "media_store_path": self.data_dir.join("media_store"),
            "signing_key_path": self.data_dir.join(format!("{SERVER_NAME}.signing.key")),
            "pid_file": self.data_dir.join("homeserver.pid"),
            // Console logging without the buffered handler (it holds INFO lines for ~5 s).
            "log_config": self.log_config_path(),
            "no_redirect_stdio": true,
            // Nothing leaves the machine.
            "trusted_key_servers": [],
            "suppress_key_server_warning": true,
            "report_stats": false,
            "enable_metrics": false,
            // Open registration without verification: the loader registers users through the API.
            "enable_registration": true,
            "enable_registration_without_verification": true,
            // Password hashing at the minimum cost: registration measures Synapse, not bcrypt.
            "bcrypt_rounds": 4,
            // Background updates back to back: a fresh database is not busy for a minute.
            "background_updates": {"sleep_enabled": false, "background_update_duration_ms": 500},
        });
        if let (Some(o), serde_json::Value::Object(rc)) = (v.as_object_mut(), rate_limits()) {
            o.extend(rc);
        }
        let appservice = self.data_dir.join(APPSERVICE_FILE);
        if appservice.is_file() {
            v["app_service_config_files"] = json!([appservice]);
        }
        if let (Some(o), Some(serde_json::Value::Object(extra))) = (v.as_object_mut(), &self.extra)
        {
            o.extend(extra.clone());
        }
        v
    }

    pub fn log_config_path(&self) -> PathBuf {
        self.data_dir.join("hsbench-log.yaml")
    }

    pub fn overrides_path(&self) -> PathBuf {
        self.data_dir.join("hsbench-overrides.yaml")
    }

    /// Write the log config and the overrides for a boot on `port`.
    pub fn write_config(&self, port: u16) -> Result<(), ServerError> {
        let log = json!({
            "version": 1,
            "formatters": {"precise": {"format":
                "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s"}},
            "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "precise",
                                     "stream": "ext://sys.stderr"}},
            "loggers": {"synapse.storage.SQL": {"level": "INFO"}},
            "root": {"level": "INFO", "handlers": ["console"]},
            "disable_existing_loggers": false
        });
        let write = |path: PathBuf, v: &serde_json::Value| {
            std::fs::write(&path, serde_json::to_vec_pretty(v).expect("json"))
                .map_err(|e| ServerError::io(&path, e))
        };
        write(self.log_config_path(), &log)?;
        write(self.overrides_path(), &self.overrides(port))
    }

    /// The command that starts this instance (config must have been written).
    pub fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.install.python);
        cmd.args(["-m", "synapse.app.homeserver", "--config-path"])
            .arg(self.data_dir.join("homeserver.yaml"))
            .arg("--config-path")
            .arg(self.overrides_path())
            .current_dir(&self.data_dir)
            .env("TZ", "UTC")
            .env("PYTHONUNBUFFERED", "1");
        cmd
    }
}

/// Counts rows of the tables that describe a dataset; run by the venv's Python so that no
/// database driver is needed in hsbench itself.
const COUNT_TABLES: &str = r#"
import json, sys
cfg = json.loads(sys.argv[1])
args = cfg["args"]
tables = ["users", "profiles", "devices", "access_tokens", "rooms", "events", "event_json",
          "room_memberships", "local_current_membership", "current_state_events", "state_groups",
          "state_groups_state", "receipts_linearized", "presence_stream", "event_push_actions",
          "event_push_summary", "stream_ordering_to_exterm", "state_events", "event_edges",
          "event_auth", "event_auth_chains", "event_auth_chain_links", "event_relations",
          "redactions", "event_search", "user_directory", "users_in_public_rooms",
          "users_who_share_private_rooms", "room_stats_current", "sliding_sync_joined_rooms",
          "sliding_sync_membership_snapshots", "account_data", "user_directory_search",
          "event_to_state_groups", "current_state_delta_stream", "receipts_graph"]
if cfg["name"] == "sqlite3":
    import sqlite3
    conn = sqlite3.connect(args["database"])
else:
    import psycopg2
    conn = psycopg2.connect(**{k: v for k, v in args.items()
                               if k in ("host", "port", "user", "password", "dbname")})
out = {}
for t in tables:
    try:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM " + t)
        out[t] = cur.fetchone()[0]
    except Exception:
        conn.rollback()
        out[t] = None
print(json.dumps(out))
"#;

/// How far Synapse's notification bookkeeping has come: the receipts and events it has folded
/// into `event_push_summary` (its `_rotate_notifs` loop, every 30 s) against the newest ones.
const PUSH_BOOKKEEPING: &str = r#"
import json, sys
cfg = json.loads(sys.argv[1])
args = cfg["args"]
if cfg["name"] == "sqlite3":
    import sqlite3
    conn = sqlite3.connect(args["database"])
else:
    import psycopg2
    conn = psycopg2.connect(**{k: v for k, v in args.items()
                               if k in ("host", "port", "user", "password", "dbname")})
cur = conn.cursor()
def one(q):
    cur.execute(q)
    return cur.fetchone()[0] or 0
print(json.dumps([
    one("SELECT stream_id FROM event_push_summary_last_receipt_stream_id"),
    one("SELECT MAX(stream_id) FROM receipts_linearized"),
    one("SELECT stream_ordering FROM event_push_summary_stream_ordering"),
    one("SELECT MAX(stream_ordering) FROM event_push_actions"),
]))
"#;

/// Where Synapse's notification bookkeeping stands (see [`SynapseInstance::push_bookkeeping`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushBookkeeping {
    pub receipts_folded: i64,
    pub receipts_newest: i64,
    pub events_folded: i64,
    pub events_newest: i64,
}

impl PushBookkeeping {
    /// Every receipt and every push action is in the notification summaries: unread counts
    /// read from this database are right from the first request.
    pub fn caught_up(&self) -> bool {
        self.receipts_folded >= self.receipts_newest && self.events_folded >= self.events_newest
    }
}

impl SynapseInstance {
    /// Where the running server's notification bookkeeping stands. Blocking.
    pub fn push_bookkeeping(&self) -> Result<PushBookkeeping, ServerError> {
        let out = run_checked(
            std::process::Command::new(&self.install.python)
                .args(["-c", PUSH_BOOKKEEPING])
                .arg(self.database_config().to_string()),
            "read the notification bookkeeping",
        )?;
        let v: [i64; 4] = serde_json::from_str(&out).map_err(|e| ServerError::Install {
            step: "read the notification bookkeeping".into(),
            source: format!("unexpected output {out:?}: {e}").into(),
        })?;
        Ok(PushBookkeeping {
            receipts_folded: v[0],
            receipts_newest: v[1],
            events_folded: v[2],
            events_newest: v[3],
        })
    }

    /// Rows per table of this instance's database (the server may be running or stopped).
    /// Blocking: call from `spawn_blocking`.
    pub fn table_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Option<u64>>, ServerError> {
        // The same database settings Synapse is given.
        let cfg = self.database_config();
        let out = run_checked(
            std::process::Command::new(&self.install.python)
                .args(["-c", COUNT_TABLES])
                .arg(cfg.to_string()),
            "count the database's rows",
        )?;
        serde_json::from_str(&out).map_err(|e| ServerError::Install {
            step: "count the database's rows".into(),
            source: format!("unexpected output {out:?}: {e}").into(),
        })
    }
}

#[cfg(test)]
mod tests;
