//! Servers under test: install, configure, and own their processes.
//!
//! Every server runs in a process group of its own. [`ServerProcess`] kills the whole group when
//! it is dropped, so an error, a panic or a Ctrl+C (which drops the run's future) never leaves a
//! server behind; `PR_SET_PDEATHSIG` covers hsbench itself being killed.

pub mod git;
pub mod native;
pub mod postgres;
pub mod profile;
pub mod synapse;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use profile::ServerProfile;

/// Errors of installing, starting or stopping a server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("installing the server failed at {step}: {source}")]
    Install {
        step: String,
        #[source]
        source: crate::util::BoxError,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the server ({command}): {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the server exited during {label} ({status}); last {} log lines:\n{}", log_tail.len(), log_tail.join("\n"))]
    Crashed {
        label: String,
        status: String,
        log_tail: Vec<String>,
    },
    #[error("{label}: {what} did not happen within the boot timeout (gave up after {:.1} s); last {} log lines:\n{}", after.as_secs_f64(), log_tail.len(), log_tail.join("\n"))]
    Timeout {
        label: String,
        what: String,
        after: Duration,
        log_tail: Vec<String>,
    },
}

impl ServerError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A free TCP port on 127.0.0.1 for a server to take.
///
/// Chosen below Linux's ephemeral range (32768–60999): a port from `bind(0)` is ephemeral, and
/// between its release and the server's bind an outgoing connection (hundreds during a herd)
/// may take it as its local port. A random port in 20000–32767 is checked by binding it.
pub fn free_port() -> std::io::Result<u16> {
    use rand::Rng;
    let mut rng = rand::rng();
    for _ in 0..200 {
        let port = rng.random_range(20_000..32_768);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

/// The last lines of a server's log, kept for error messages.
#[derive(Debug, Default)]
pub struct LogTail {
    lines: VecDeque<String>,
}

impl LogTail {
    pub const KEEP: usize = 30;

    pub fn push(&mut self, line: &str) {
        if self.lines.len() == Self::KEEP {
            self.lines.pop_front();
        }
        let mut l = line.to_string();
        if l.len() > 400 {
            let mut cut = 400;
            while !l.is_char_boundary(cut) {
                cut -= 1;
            }
            l.truncate(cut);
            l.push('…');
        }
        self.lines.push_back(l);
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }
}

/// A server process, leader of its own process group. Dropping it kills the group.
pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub pid: i32,
    /// The spawned process is a wrapper (a profiler): SIGTERM goes to its child.
    pub signal_child: bool,
    reaped: bool,
}

impl ServerProcess {
    /// Spawn `cmd` in a new process group with piped stdout/stderr.
    pub fn spawn(mut cmd: std::process::Command) -> Result<Self, ServerError> {
        use std::os::unix::process::CommandExt;
        let command = format!("{:?}", cmd);
        cmd.process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = tokio::process::Command::from(cmd)
            .spawn()
            .map_err(|source| ServerError::Spawn { command, source })?;
        let pid = child.id().expect("a just-spawned child has a pid") as i32;
        Ok(Self {
            child,
            pid,
            signal_child: false,
            reaped: false,
        })
    }

    /// Exit status if the process has exited (non-blocking).
    pub fn try_exited(&mut self) -> Option<std::process::ExitStatus> {
        match self.child.try_wait() {
            Ok(Some(s)) => {
                self.reaped = true;
                Some(s)
            }
            _ => None,
        }
    }

    /// The process that stands for the server: the spawned one, or with `signal_child` its
    /// first child (the leader itself while it has none yet).
    pub fn signal_target(&self) -> i32 {
        if !self.signal_child {
            return self.pid;
        }
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.pid))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
            .unwrap_or(self.pid)
    }

    /// Send SIGTERM to the server.
    pub fn terminate(&self) {
        // SAFETY: plain kill(2) on our own child (or its child), in our group.
        unsafe {
            libc::kill(self.signal_target(), libc::SIGTERM);
        }
    }

    /// SIGKILL the whole process group.
    pub fn kill_group(&self) {
        // SAFETY: killpg(2) on the group our child leads; ESRCH (already gone) is fine.
        unsafe {
            libc::killpg(self.pid, libc::SIGKILL);
        }
    }

    /// Wait for exit at most `limit`. `None` when it did not exit in time.
    pub async fn wait_for(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(s)) => {
                self.reaped = true;
                Some(s)
            }
            _ => None,
        }
    }

    /// Kill the group and reap the leader.
    pub async fn kill_and_reap(&mut self) -> Option<std::process::ExitStatus> {
        self.kill_group();
        self.wait_for(Duration::from_secs(10)).await
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Even after the leader exited, members of its group may live on: kill them all.
        self.kill_group();
        if !self.reaped {
            let _ = self.child.start_kill();
        }
    }
}

/// One server's data directory and how to start it: Synapse (installed by hsbench) or a
/// user-supplied binary started from its profile's `[launch]`.
#[derive(Debug, Clone)]
pub enum Instance {
    Synapse(synapse::SynapseInstance),
    Native(native::NativeInstance),
}

impl Instance {
    /// Write what a boot on `port` reads (config files).
    pub fn write_config(&self, port: u16) -> Result<(), ServerError> {
        match self {
            Instance::Synapse(i) => i.write_config(port),
            Instance::Native(i) => i.write_config(port),
        }
    }

    /// The command that starts the server on `port` (after [`write_config`](Self::write_config)).
    pub fn command(&self, port: u16) -> std::process::Command {
        match self {
            Instance::Synapse(i) => i.command(),
            Instance::Native(i) => i.command(port),
        }
    }

    /// What a cold boot evicts from the page cache.
    pub fn cache_roots(&self) -> Vec<PathBuf> {
        match self {
            Instance::Synapse(i) => i.cache_roots(),
            Instance::Native(i) => i.cache_roots(),
        }
    }

    pub fn data_dir(&self) -> &Path {
        match self {
            Instance::Synapse(i) => &i.data_dir,
            Instance::Native(i) => &i.data_dir,
        }
    }

    /// "Synapse 1.163.2", "tuwunel 1.4.0 (sha256 …)": for titles and messages.
    pub fn title(&self) -> String {
        match self {
            Instance::Synapse(i) => format!("Synapse {}", i.install.version),
            Instance::Native(i) => format!("{} · {}", i.install.kind, i.install.identity()),
        }
    }

    /// What hsbench configured, for the results: Synapse's overrides, a native server's
    /// rendered config.
    pub fn config_record(&self, port: u16) -> serde_json::Value {
        match self {
            Instance::Synapse(i) => i.overrides(port),
            Instance::Native(i) => serde_json::json!({
                "config_file": i.launch.config_name,
                "config": i.rendered_config(port).replace(&i.registration_token, "<registration token>"),
                "args": i.command(port).get_args().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>(),
            }),
        }
    }

    /// Rows per table (Synapse) or bytes per data-directory entry (native). Blocking.
    pub fn table_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Option<u64>>, ServerError> {
        match self {
            Instance::Synapse(i) => i.table_counts(),
            Instance::Native(i) => Ok(i.data_summary()),
        }
    }
}
