//! A server's process: started in its own process group, its log tail kept, stopped and
//! reaped (the whole tree) on drop; a free loopback port for it.

use super::error::ServerError;
use std::collections::VecDeque;
use std::time::Duration;

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
    pub(super) lines: VecDeque<String>,
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
    pub(super) reaped: bool,
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
