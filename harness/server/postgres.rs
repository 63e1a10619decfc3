//! A private PostgreSQL cluster from the system's binaries: `initdb` into the run's working
//! directory, `postgres` on 127.0.0.1 and a free port with a private socket directory, a database
//! created the way Synapse requires (UTF8, C collation, from template0), and a clean stop. When
//! hsbench runs as root the cluster runs as the `postgres` user (initdb refuses root).
//!
//! The postmaster is a [`ServerProcess`]: its whole process group is killed if the cluster is
//! dropped without a clean stop (error, panic, Ctrl+C).

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::error::ServerError;
use super::process::ServerProcess;
use super::profile::StatementSubphaseDef;

/// The database and role Synapse uses in a private cluster.
pub const PG_USER: &str = "synapse";
pub const PG_DATABASE: &str = "synapse";

/// The PostgreSQL binaries to use.
#[derive(Debug, Clone, schemars::JsonSchema, serde::Serialize)]
pub struct PgBinaries {
    pub bin_dir: PathBuf,
    /// Full version, e.g. `15.18`.
    pub version: String,
    pub major: String,
}

impl PgBinaries {
    /// `$HSBENCH_PG_BINDIR`, else `pg_config --bindir` when it has `postgres`, else the newest
    /// `/usr/lib/postgresql/*/bin` (Debian's layout).
    pub fn find() -> Result<Self, ServerError> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(d) = std::env::var_os("HSBENCH_PG_BINDIR") {
            candidates.push(d.into());
        }
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
            && out.status.success()
        {
            candidates.push(String::from_utf8_lossy(&out.stdout).trim().into());
        }
        if let Ok(rd) = std::fs::read_dir("/usr/lib/postgresql") {
            let mut versions: Vec<(u32, PathBuf)> = rd
                .flatten()
                .filter_map(|e| {
                    let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                    Some((v, e.path().join("bin")))
                })
                .collect();
            versions.sort();
            candidates.extend(versions.into_iter().rev().map(|(_, p)| p));
        }
        for dir in candidates {
            let postgres = dir.join("postgres");
            if !postgres.is_file() || !dir.join("initdb").is_file() {
                continue;
            }
            let out = Command::new(&postgres)
                .arg("--version")
                .output()
                .map_err(|e| ServerError::io(&postgres, e))?;
            // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
            let text = String::from_utf8_lossy(&out.stdout);
            let version = text
                .split_whitespace()
                .nth(2)
                .unwrap_or("unknown")
                .to_string();
            let major = version.split('.').next().unwrap_or("0").to_string();
            return Ok(Self {
                bin_dir: dir,
                version,
                major,
            });
        }
        Err(ServerError::Install {
            step: "find PostgreSQL".into(),
            source: "no PostgreSQL server binaries (postgres, initdb) found: install Debian's \
                      `postgresql` package or set HSBENCH_PG_BINDIR"
                .into(),
        })
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }
}

/// The user the cluster runs as: `postgres` when hsbench is root, else hsbench's own user.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

fn run_as() -> Result<Option<RunAs>, ServerError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = CString::new("postgres").expect("no NUL");
    // SAFETY: getpwnam returns a pointer to static storage or NULL; we copy the ids at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(ServerError::Install {
            step: "PostgreSQL user".into(),
            source: "hsbench runs as root and PostgreSQL refuses root.into(), but there is no \
                      `postgres` user (install Debian's `postgresql` package)"
                .into(),
        });
    }
    // SAFETY: pw is non-null and points to a valid passwd struct.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(Some(RunAs { uid, gid }))
}

fn chown_tree(path: &Path, who: RunAs) -> Result<(), ServerError> {
    std::os::unix::fs::chown(path, Some(who.uid), Some(who.gid))
        .map_err(|e| ServerError::io(path, e))?;
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).map_err(|e| ServerError::io(path, e))? {
            let e = e.map_err(|e| ServerError::io(path, e))?;
            chown_tree(&e.path(), who)?;
        }
    }
    Ok(())
}

fn checked(mut cmd: Command, step: &str) -> Result<String, ServerError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ServerError::Spawn {
            command: format!("{cmd:?}"),
            source: e,
        })?;
    if !out.status.success() {
        return Err(ServerError::Install {
            step: step.into(),
            source: format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .into(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The settings a fixture is built with ([`PgCluster::start_for_build`]). Measured on
/// startup-100k-postgres: with the defaults a checkpoint every 12–21 s wrote and synced the
/// import's WAL, the index builds' included.
const BUILD_SETTINGS: &[&str] = &[
    "fsync=off",
    "full_page_writes=off",
    "synchronous_commit=off",
    "wal_level=minimal",
    "max_wal_senders=0",
];

/// The settings under which the private cluster counts its own work per statement
/// (`pg_stat_statements`, for boots under the work meter): every statement, nested ones
/// included, nothing kept across restarts; autovacuum off, hsbench vacuums before each boot
/// ([`StatCounter::settle`]).
pub const STAT_STATEMENTS_SETTINGS: &[&str] = &[
    "shared_preload_libraries=pg_stat_statements",
    "pg_stat_statements.track=all",
    "pg_stat_statements.save=off",
    "pg_stat_statements.max=10000",
    "autovacuum=off",
];

/// A private PostgreSQL cluster.
pub struct PgCluster {
    pub bins: PgBinaries,
    pub pgdata: PathBuf,
    pub socket_dir: PathBuf,
    pub port: u16,
    run_as: Option<RunAs>,
    process: Option<ServerProcess>,
    pumps: Vec<tokio::task::JoinHandle<()>>,
    /// Where the running postmaster logs (set by [`start`](Self::start)).
    log_path: Option<PathBuf>,
}

impl PgCluster {
    /// A cluster whose data directory is `root/data` (created by [`init`](Self::init) or
    /// restored from a fixture by the caller), with its socket in `root/socket`.
    pub fn new(bins: PgBinaries, root: &Path) -> Result<Self, ServerError> {
        let run_as = run_as()?;
        let socket_dir = root.join("socket");
        std::fs::create_dir_all(&socket_dir).map_err(|e| ServerError::io(&socket_dir, e))?;
        if let Some(who) = run_as {
            // The cluster's user must be able to reach its directory: hsbench changes no
            // permissions outside it, so say which ancestor is in the way.
            use std::os::unix::fs::PermissionsExt;
            for parent in root.ancestors().skip(1) {
                if let Ok(meta) = std::fs::metadata(parent)
                    && meta.permissions().mode() & 0o001 == 0
                {
                    return Err(ServerError::Install {
                        step: "PostgreSQL directory".into(),
                        source: format!(
                            "the `postgres` user cannot reach {} ({} is not searchable by \
                             others); use a cluster directory directly under /tmp",
                            root.display(),
                            parent.display()
                        )
                        .into(),
                    });
                }
            }
            chown_tree(root, who)?;
        }
        Ok(Self {
            bins,
            pgdata: root.join("data"),
            socket_dir,
            port: 0,
            run_as,
            process: None,
            pumps: Vec::new(),
            log_path: None,
        })
    }

    fn command(&self, bin: &str) -> Command {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(self.bins.bin(bin));
        if let Some(who) = self.run_as {
            cmd.uid(who.uid).gid(who.gid);
        }
        cmd.env("LC_ALL", "C").env("TZ", "UTC");
        cmd
    }

    /// Make the data directory's files the cluster user's (after a restore).
    pub fn fix_ownership(&self) -> Result<(), ServerError> {
        if let Some(who) = self.run_as {
            chown_tree(&self.pgdata, who)?;
        }
        Ok(())
    }

    /// `initdb` a new cluster (trust auth on loopback, UTF8, C locale).
    pub fn init(&self) -> Result<(), ServerError> {
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(&self.pgdata).args([
            "-U",
            PG_USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        checked(cmd, "initdb").map(|_| ())
    }

    /// Start the postmaster on 127.0.0.1:`port`, logging into `log_path`, and wait until it
    /// accepts connections.
    pub async fn start(&mut self, port: u16, log_path: &Path) -> Result<(), ServerError> {
        self.start_with(port, log_path, &[]).await
    }

    /// [`start`](Self::start) for building a fixture: without durability (no fsync, no
    /// full-page images, index builds not WAL-logged), which changes how fast the rows get
    /// there, not what they are. The data directory is a scratch copy until it is saved, after
    /// a clean shutdown; timed boots start the saved copy with the defaults.
    pub async fn start_for_build(&mut self, port: u16, log_path: &Path) -> Result<(), ServerError> {
        self.start_with(port, log_path, BUILD_SETTINGS).await
    }

    async fn start_with(
        &mut self,
        port: u16,
        log_path: &Path,
        settings: &[&str],
    ) -> Result<(), ServerError> {
        self.port = port;
        self.log_path = Some(log_path.to_path_buf());
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(&self.pgdata)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(&self.socket_dir)
            .args(["-c", "listen_addresses=127.0.0.1"])
            // The statement log's lines start with a stamp hsbench reads (`StatementLog`).
            .args(["-c", LOG_LINE_PREFIX_SETTING]);
        for s in settings {
            cmd.args(["-c", s]);
        }
        let mut process = ServerProcess::spawn(cmd)?;
        // Appended to: a restart (before a cold boot) keeps one log.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(|e| ServerError::io(log_path, e))?;
        let file = std::sync::Arc::new(std::sync::Mutex::new(file));
        for stream in [
            process
                .child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            process
                .child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let file = file.clone();
            self.pumps.push(tokio::spawn(async move {
                use std::io::Write;
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(stream).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    let _ = writeln!(file.lock().expect("pg log"), "{l}");
                }
            }));
        }
        self.process = Some(process);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.process.as_mut().and_then(|p| p.try_exited()) {
                for h in self.pumps.drain(..) {
                    let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
                }
                return Err(ServerError::Crashed {
                    label: "PostgreSQL start".into(),
                    status: status.to_string(),
                    log_tail: tail(log_path),
                });
            }
            let ready = Command::new(self.bins.bin("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ServerError::Timeout {
                    label: "PostgreSQL start".into(),
                    what: "accepting connections".into(),
                    after: Duration::from_secs(60),
                    log_tail: tail(log_path),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stop the running cluster and start it again on its port with `settings` (none: the
    /// defaults); `false` when it never started.
    pub async fn restart_with(&mut self, settings: &[&str]) -> Result<bool, ServerError> {
        let Some(log) = self.log_path() else {
            return Ok(false);
        };
        let port = self.port;
        self.stop().await;
        self.start_with(port, &log, settings).await?;
        Ok(true)
    }

    /// The statement counters of this running cluster, started with
    /// [`STAT_STATEMENTS_SETTINGS`]: creates the extension in the `postgres` database (the
    /// server's own database is left as the fixture has it).
    pub fn stat_counter(&self) -> Result<StatCounter, ServerError> {
        let c = StatCounter {
            bins: self.bins.clone(),
            port: self.port,
        };
        c.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")?;
        Ok(c)
    }

    /// Run SQL as the cluster's superuser against `database`.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, ServerError> {
        psql(&self.bins, self.port, database, sql)
    }

    /// Create Synapse's database: UTF8, C collation, from template0 (Synapse refuses others).
    pub fn create_synapse_database(&self) -> Result<(), ServerError> {
        self.psql(
            "postgres",
            &format!(
                "CREATE DATABASE {PG_DATABASE} ENCODING 'UTF8' LC_COLLATE='C' LC_CTYPE='C' \
                 TEMPLATE template0"
            ),
        )
        .map(|_| ())
    }

    /// Fast shutdown (SIGINT) and wait; SIGKILL the group after 60 s.
    pub async fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            // SAFETY: kill(2) on our own child.
            unsafe {
                libc::kill(p.pid, libc::SIGINT);
            }
            if p.wait_for(Duration::from_secs(60)).await.is_none() {
                p.kill_and_reap().await;
            }
        }
        for h in self.pumps.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
        }
    }

    /// The port of its last start.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The log file of its last start (`None` before the first).
    pub fn log_path(&self) -> Option<PathBuf> {
        self.log_path.clone()
    }

    /// Process group id of the postmaster while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.process.as_ref().map(|p| p.pid)
    }
}

/// `log_line_prefix`: the stamp (with milliseconds, UTC: the cluster runs with `TZ=UTC`) and
/// the backend's pid.
const LOG_LINE_PREFIX_SETTING: &str = "log_line_prefix=%m [%p] ";

/// The slowest statements [`StatementLog::read`] keeps.
pub const SLOWEST_KEPT: usize = 10;
/// A kept statement's text is cut after this many characters.
pub const STATEMENT_CHARS: usize = 400;

/// What PostgreSQL ran during a window (a boot from spawn to ready), from its own statement
/// log (`log_min_duration_statement`).
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct DbStatements {
    /// The log's threshold: statements shorter than this were not logged, ms.
    pub threshold_ms: f64,
    /// Statements logged in the window (those at or over the threshold).
    pub count: u64,
    /// Their summed duration, ms.
    pub total_ms: f64,
    /// The slowest, slowest first (at most [`SLOWEST_KEPT`]).
    pub slowest: Vec<DbStatement>,
}

/// One logged statement.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct DbStatement {
    /// How long it ran, ms (PostgreSQL's own figure).
    pub ms: f64,
    /// When it ended, ms after the window's start (the boot's spawn).
    pub ended_at_ms: f64,
    /// Its text, whitespace collapsed, cut after [`STATEMENT_CHARS`] characters.
    pub statement: String,
}

/// A logged statement one of the profile's `[[statement_subphases]]` matched.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementHit {
    /// Which rule (index into the profile's `statement_subphases`).
    pub def: usize,
    /// What its `(?P<name>…)` captured.
    pub name: Option<String>,
    /// When it ended, ms after the window's start.
    pub ended_at_ms: f64,
    /// How long it ran, ms (PostgreSQL's own figure).
    pub ms: f64,
}

/// The private cluster's statement log: switched on around a window, then read back from the
/// cluster's log file.
#[derive(Debug, Clone)]
pub struct StatementLog {
    bins: PgBinaries,
    port: u16,
    log_path: PathBuf,
    threshold: Duration,
}

impl PgCluster {
    /// The statement log of this running cluster (`None` before [`start`](Self::start)); it is
    /// read from the log file of the current start (a restart after a snapshot logs elsewhere).
    pub fn statement_log(&self, threshold: Duration) -> Option<StatementLog> {
        Some(StatementLog {
            bins: self.bins.clone(),
            port: self.port,
            log_path: self.log_path.clone()?,
            threshold,
        })
    }
}

impl StatementLog {
    fn psql(&self, sql: &str) -> Result<String, ServerError> {
        psql(&self.bins, self.port, "postgres", sql)
    }

    /// Switch the log on (`true`: statements at or over the threshold) or off, for every
    /// session (`ALTER SYSTEM`, reloaded), and wait until a new session sees it. Returns the
    /// log file's length at that moment: where the window's lines start.
    pub fn switch(&self, on: bool) -> Result<u64, ServerError> {
        let want = if on {
            format!("{}", self.threshold.as_millis())
        } else {
            "-1".to_string()
        };
        self.psql(&format!(
            "ALTER SYSTEM SET log_min_duration_statement = {want}"
        ))?;
        self.psql("SELECT pg_reload_conf()")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let now = self.psql("SHOW log_min_duration_statement")?;
            let ms = now.trim().trim_end_matches("ms").trim();
            let seen = if on { ms != "-1" } else { ms == "-1" };
            if seen || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(std::fs::metadata(&self.log_path).map_or(0, |m| m.len()))
    }

    /// Read the statements logged from byte `from` of the log whose end stamps fall in
    /// `[start_unix_ms, end_unix_ms]`; times are placed relative to `start_unix_ms`.
    pub fn read(&self, from: u64, start_unix_ms: f64, end_unix_ms: f64) -> DbStatements {
        self.read_matching(from, start_unix_ms, end_unix_ms, &[]).0
    }

    /// [`read`](Self::read), and every statement of the window that one of `rules` matches
    /// (the profile's `[[statement_subphases]]`; the first rule that matches takes it).
    pub fn read_matching(
        &self,
        from: u64,
        start_unix_ms: f64,
        end_unix_ms: f64,
        rules: &[StatementSubphaseDef],
    ) -> (DbStatements, Vec<StatementHit>) {
        let mut hits = Vec::new();
        use std::io::{BufRead, Seek};
        let mut out = DbStatements {
            threshold_ms: self.threshold.as_secs_f64() * 1e3,
            count: 0,
            total_ms: 0.0,
            slowest: Vec::new(),
        };
        let Ok(mut f) = std::fs::File::open(&self.log_path) else {
            return (out, hits);
        };
        if f.seek(std::io::SeekFrom::Start(from)).is_err() {
            return (out, hits);
        }
        let mut lines = std::io::BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .peekable();
        while let Some(line) = lines.next() {
            let Some((stamp_ms, ms, text)) = parse_duration_line(&line) else {
                continue;
            };
            // A statement's own line breaks continue on lines starting with a tab.
            let mut statement = text.to_string();
            while let Some(next) = lines.peek() {
                if !next.starts_with('\t') {
                    break;
                }
                if statement.len() < STATEMENT_CHARS * 4 {
                    statement.push(' ');
                    statement.push_str(next.trim());
                }
                lines.next();
            }
            if stamp_ms < start_unix_ms - 1.0 || stamp_ms > end_unix_ms + 1.0 {
                continue;
            }
            out.count += 1;
            out.total_ms += ms;
            let ended_at_ms = stamp_ms - start_unix_ms;
            // Whitespace collapsed once: matched whole, kept cut.
            let whole = statement.split_whitespace().collect::<Vec<_>>().join(" ");
            if !rules.is_empty() {
                let hit = rules.iter().enumerate().find_map(|(def, r)| {
                    let c = r.regex.captures(&whole)?;
                    Some(StatementHit {
                        def,
                        name: c.name("name").map(|m| m.as_str().to_string()),
                        ended_at_ms,
                        ms,
                    })
                });
                hits.extend(hit);
            }
            keep_slowest(
                &mut out.slowest,
                DbStatement {
                    ms,
                    ended_at_ms,
                    statement: cut(whole),
                },
            );
        }
        (out, hits)
    }
}

/// Keep the [`SLOWEST_KEPT`] slowest, slowest first.
fn keep_slowest(kept: &mut Vec<DbStatement>, s: DbStatement) {
    if kept.len() == SLOWEST_KEPT && kept.last().is_some_and(|l| l.ms >= s.ms) {
        return;
    }
    let at = kept.partition_point(|k| k.ms >= s.ms);
    kept.insert(at, s);
    kept.truncate(SLOWEST_KEPT);
}

/// Whitespace collapsed, cut after [`STATEMENT_CHARS`] characters (with `…`).
fn collapse(s: &str) -> String {
    cut(s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Cut after [`STATEMENT_CHARS`] characters (with `…`).
fn cut(joined: String) -> String {
    if joined.chars().count() <= STATEMENT_CHARS {
        return joined;
    }
    let mut cut: String = joined.chars().take(STATEMENT_CHARS).collect();
    cut.push('…');
    cut
}

/// A `duration:` line of the statement log: its stamp (Unix ms), the duration (ms) and the
/// statement. `2026-12-01 00:12:34.567 UTC [123] LOG:  duration: 17.5 ms  statement: SELECT 1`
/// (the simple protocol) or `… execute <name>: SELECT …` (the extended one).
fn parse_duration_line(line: &str) -> Option<(f64, f64, &str)> {
    let (stamp, rest) = line.split_at_checked(23)?;
    let stamp = chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S%.3f").ok()?;
    let stamp_ms = stamp.and_utc().timestamp_millis() as f64;
    let rest = rest.strip_prefix(" UTC [")?;
    let rest = &rest[rest.find("] LOG:  duration: ")? + "] LOG:  duration: ".len()..];
    let (ms, rest) = rest.split_once(" ms  ")?;
    let ms: f64 = ms.parse().ok()?;
    let text = if let Some(t) = rest.strip_prefix("statement: ") {
        t
    } else if rest.starts_with("execute ") {
        rest.split_once(": ")?.1
    } else {
        return None;
    };
    Some((stamp_ms, ms, text))
}

/// PostgreSQL's own count of the work it did for one database: statements run, rows they
/// returned or touched, and shared buffer pages they hit or read (`pg_stat_statements`). The
/// same statements over the same data give the same counts, whatever the machine's speed.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    schemars::JsonSchema,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct DbCounts {
    pub calls: u64,
    pub rows: u64,
    pub shared_blks_hit: u64,
    pub shared_blks_read: u64,
}

impl DbCounts {
    /// Pages the statements touched: `shared_blks_hit + shared_blks_read` (the work, whether
    /// the page was in PostgreSQL's buffers or not).
    pub fn blocks(&self) -> u64 {
        self.shared_blks_hit + self.shared_blks_read
    }

    /// `self - earlier`, saturating (a counter reset shows as 0, never as a wrap).
    pub fn since(&self, earlier: &DbCounts) -> DbCounts {
        DbCounts {
            calls: self.calls.saturating_sub(earlier.calls),
            rows: self.rows.saturating_sub(earlier.rows),
            shared_blks_hit: self.shared_blks_hit.saturating_sub(earlier.shared_blks_hit),
            shared_blks_read: self
                .shared_blks_read
                .saturating_sub(earlier.shared_blks_read),
        }
    }
}

/// One normalised statement's counts.
#[derive(
    Debug, Clone, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
pub struct DbStatementCounts {
    /// `pg_stat_statements`' normalised text (constants as `$1`), whitespace collapsed, cut
    /// after [`STATEMENT_CHARS`] characters.
    pub statement: String,
    #[serde(flatten)]
    pub counts: DbCounts,
}

/// The statement counters of a private cluster running with [`STAT_STATEMENTS_SETTINGS`]:
/// reset before a boot, read at each of its markers.
#[derive(Debug, Clone)]
pub struct StatCounter {
    bins: PgBinaries,
    port: u16,
}

/// The counters' columns, summed.
const COUNT_COLUMNS: &str = "coalesce(sum(calls), 0), coalesce(sum(rows), 0), \
     coalesce(sum(shared_blks_hit), 0), coalesce(sum(shared_blks_read), 0)";

impl StatCounter {
    fn psql(&self, sql: &str) -> Result<String, ServerError> {
        psql(&self.bins, self.port, "postgres", sql)
    }

    /// The server's database only: hsbench's own queries run in `postgres`.
    fn of_database(database: &str) -> String {
        format!(
            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '{}')",
            database.replace('\'', "''")
        )
    }

    /// Bring `database` to the same state before each metered boot: `VACUUM (ANALYZE)` (the
    /// dead rows of the last boot or the dataset load removed, hint bits and the visibility map
    /// set, the planner's statistics current), with autovacuum off in
    /// [`STAT_STATEMENTS_SETTINGS`] so that nothing changes it during a boot. Without it the
    /// first boot after a load visits the load's dead rows through the indexes: measured on the
    /// tiny fixture, 448 blocks on the first boot, 353 on each after.
    pub fn settle(&self, database: &str) -> Result<(), ServerError> {
        psql(&self.bins, self.port, database, "VACUUM (ANALYZE)").map(|_| ())
    }

    /// Forget every statement counted so far.
    pub fn reset(&self) -> Result<(), ServerError> {
        self.psql("SELECT pg_stat_statements_reset()").map(|_| ())
    }

    /// The counts of `database`'s statements since the last reset.
    pub fn totals(&self, database: &str) -> Result<DbCounts, ServerError> {
        let out = self.psql(&format!(
            "SELECT {COUNT_COLUMNS} {}",
            Self::of_database(database)
        ))?;
        parse_counts(out.trim()).ok_or_else(|| ServerError::Install {
            step: "pg_stat_statements".into(),
            source: format!("unreadable counters: {out:?}").into(),
        })
    }

    /// `database`'s `n` statements that touched the most pages since the last reset.
    pub fn top(&self, database: &str, n: usize) -> Result<Vec<DbStatementCounts>, ServerError> {
        // Unit separators: a statement's text holds any other character.
        let out = self.psql(&format!(
            "SELECT calls || chr(31) || rows || chr(31) || shared_blks_hit || chr(31) || \
             shared_blks_read || chr(31) || query || chr(30) {} \
             ORDER BY shared_blks_hit + shared_blks_read DESC, calls DESC, query LIMIT {n}",
            Self::of_database(database)
        ))?;
        Ok(out
            .split('\u{1e}')
            .filter_map(|rec| {
                let rec = rec.trim_start_matches('\n');
                let mut f = rec.splitn(5, '\u{1f}');
                let counts = DbCounts {
                    calls: f.next()?.trim().parse().ok()?,
                    rows: f.next()?.trim().parse().ok()?,
                    shared_blks_hit: f.next()?.trim().parse().ok()?,
                    shared_blks_read: f.next()?.trim().parse().ok()?,
                };
                Some(DbStatementCounts {
                    statement: collapse(f.next()?),
                    counts,
                })
            })
            .collect())
    }
}

/// `calls|rows|hit|read` as psql prints one row (`-A`, `|` between columns).
fn parse_counts(line: &str) -> Option<DbCounts> {
    let mut f = line.split('|').map(|x| x.trim().parse::<u64>());
    Some(DbCounts {
        calls: f.next()?.ok()?,
        rows: f.next()?.ok()?,
        shared_blks_hit: f.next()?.ok()?,
        shared_blks_read: f.next()?.ok()?,
    })
}

/// Run SQL as the superuser of the cluster on 127.0.0.1:`port` against `database`.
fn psql(bins: &PgBinaries, port: u16, database: &str, sql: &str) -> Result<String, ServerError> {
    let mut cmd = Command::new(bins.bin("psql"));
    cmd.args([
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "127.0.0.1",
    ])
    .arg("-p")
    .arg(port.to_string())
    .args(["-U", PG_USER, "-d", database, "-c", sql]);
    checked(cmd, &format!("psql: {sql}"))
}

fn tail(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<String> = text.lines().map(String::from).collect();
    lines[lines.len().saturating_sub(30)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_log_lines_are_read() {
        let l = "2026-12-01 00:12:34.567 UTC [4242] LOG:  duration: 17.532 ms  statement: SELECT MAX(stream_ordering) FROM events";
        let (stamp, ms, text) = parse_duration_line(l).unwrap();
        assert_eq!(stamp, 1_796_083_954_567.0);
        assert_eq!(ms, 17.532);
        assert_eq!(text, "SELECT MAX(stream_ordering) FROM events");
        let l = "2026-12-01 00:12:34.567 UTC [4242] LOG:  duration: 2.000 ms  execute <unnamed>: SELECT 1";
        assert_eq!(parse_duration_line(l).unwrap().2, "SELECT 1");
        for other in [
            "2026-12-01 00:12:34.567 UTC [4242] LOG:  database system is ready",
            "\tFROM events",
            "",
        ] {
            assert!(parse_duration_line(other).is_none(), "{other}");
        }
        let mut kept = Vec::new();
        for ms in [3.0, 9.0, 1.0, 7.0, 9.5, 2.0, 8.0, 4.0, 6.0, 5.0, 0.5, 10.0] {
            keep_slowest(
                &mut kept,
                DbStatement {
                    ms,
                    ended_at_ms: 0.0,
                    statement: String::new(),
                },
            );
        }
        let got: Vec<f64> = kept.iter().map(|k| k.ms).collect();
        assert_eq!(got, [10.0, 9.5, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0]);
        assert_eq!(collapse("SELECT\n\t a  FROM b"), "SELECT a FROM b");
    }

    /// A real cluster: init, start, create Synapse's database with the required collation,
    /// stop; nothing left running.
    #[tokio::test]
    async fn private_cluster_lifecycle() {
        let Ok(bins) = PgBinaries::find() else {
            panic!("PostgreSQL binaries are required (.ci/run installs them)");
        };
        let root = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let mut pg = PgCluster::new(bins, root.path()).unwrap();
        pg.init().unwrap();
        let port = crate::server::free_port().unwrap();
        pg.start(port, &logs.path().join("pg.log")).await.unwrap();
        pg.create_synapse_database().unwrap();
        let coll = pg
            .psql(
                "postgres",
                "SELECT datcollate || ',' || pg_encoding_to_char(encoding) FROM pg_database \
                 WHERE datname = 'synapse'",
            )
            .unwrap();
        assert_eq!(coll.trim(), "C,UTF8");
        // The statement log: on, a slow statement, off; read back with its duration.
        let statements = pg.statement_log(Duration::from_millis(50)).unwrap();
        let from = statements.switch(true).unwrap();
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64()
                * 1e3
        };
        let start = now();
        pg.psql("postgres", "SELECT pg_sleep(0.2)").unwrap();
        pg.psql("postgres", "SELECT 1").unwrap();
        statements.switch(false).unwrap();
        pg.psql("postgres", "SELECT pg_sleep(0.1)").unwrap();
        let end = now();
        // The cluster's log reaches the file through this runtime's pump tasks.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rules = [crate::server::profile::StatementSubphaseDef {
            name: "sleep".into(),
            regex: regex::Regex::new(r"pg_sleep\((?P<name>[0-9.]+)\)").unwrap(),
            parent: "p".into(),
        }];
        let (got, hits) = statements.read_matching(from, start, end, &rules);
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].name.as_deref(), Some("0.2"));
        assert!(
            hits[0].ms >= 200.0 && hits[0].ended_at_ms >= hits[0].ms,
            "{hits:?}"
        );
        assert_eq!(got, statements.read(from, start, end));
        assert_eq!(got.count, 1, "{got:?}");
        assert!(got.slowest[0].ms >= 200.0, "{got:?}");
        assert!(
            got.slowest[0].statement.contains("pg_sleep(0.2)"),
            "{got:?}"
        );
        assert!(got.slowest[0].ended_at_ms >= 0.0, "{got:?}");
        let pid = pg.pid().unwrap();
        pg.stop().await;
        assert!(
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_err(),
            "postmaster still there"
        );
        let log = std::fs::read_to_string(logs.path().join("pg.log")).unwrap();
        assert!(log.contains("database system is shut down"), "{log}");
    }
}
