//! The profilers themselves: finding or installing py-spy and perf, launching a server under one, attaching to a running one.

use crate::util::fs::cache_dir;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// `perf record`'s arguments up to the sampling rate: DWARF call graphs (native servers are
/// built without frame pointers), timestamps on CLOCK_MONOTONIC (hsbench's phase clock).
const PERF_RECORD: [&str; 7] = [
    "record",
    "-q",
    "--call-graph",
    "dwarf",
    "-k",
    "CLOCK_MONOTONIC",
    "-F",
];

/// The py-spy release hsbench installs into its tool cache.
pub const PY_SPY_VERSION: &str = "0.4.3";

#[derive(Debug, thiserror::Error)]
pub enum ProfilerError {
    #[error("profiler {tool} is unavailable{hint}: {source}")]
    Unavailable {
        tool: String,
        /// What to do about it, or what the machine says (empty, or starting with `" ("`).
        hint: String,
        #[source]
        source: CommandError,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} has no profiles (no {}/ directory): add [profile] to the scenario and run it again",
        run.display(),
        PROFILE_DIR
    )]
    NoProfiles { run: PathBuf },
    #[error("{}: {source}", path.display())]
    Data {
        path: PathBuf,
        #[source]
        source: crate::util::BoxError,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ProfilerError + '_ {
    move |source| ProfilerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ToolKind {
    PySpy,
    Perf,
}

impl ToolKind {
    /// The tool's own name: `py-spy`, `perf`.
    pub fn name(self) -> &'static str {
        match self {
            ToolKind::PySpy => "py-spy",
            ToolKind::Perf => "perf",
        }
    }
}

/// A profiler found (or installed) on this machine.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct Tool {
    pub kind: ToolKind,
    pub path: PathBuf,
    pub version: String,
}

/// A helper command that could not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot start {program}")]
    Start {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {tail}")]
    Failed {
        program: String,
        status: std::process::ExitStatus,
        /// The last 20 lines of its output.
        tail: String,
    },
}

/// Run `cmd` and return its output (stdout, then stderr).
pub(crate) fn output_of(cmd: &mut std::process::Command) -> Result<String, CommandError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| CommandError::Start {
            program: program.clone(),
            source,
        })?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        Err(CommandError::Failed {
            program,
            status: out.status,
            tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        })
    }
}

impl Tool {
    /// py-spy from PyPI, installed once into `<cache>/tools/py-spy-<version>/venv` (a wheel
    /// with the static binary; no compiler needed). Blocking.
    pub fn py_spy() -> Result<Self, ProfilerError> {
        let unavailable = |source| ProfilerError::Unavailable {
            tool: "py-spy".into(),
            hint: String::new(),
            source,
        };
        let root = cache_dir()
            .join("tools")
            .join(format!("py-spy-{PY_SPY_VERSION}"));
        std::fs::create_dir_all(&root).map_err(io_err(&root))?;
        let lock_path = root.join(".lock");
        let lock = std::fs::File::create(&lock_path).map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;
        let venv = root.join("venv");
        let bin = venv.join("bin/py-spy");
        let marker = root.join(".complete");
        if !std::fs::read_to_string(&marker).is_ok_and(|v| v.trim() == PY_SPY_VERSION) {
            let _ = std::fs::remove_dir_all(&venv);
            let python = std::env::var_os("HSBENCH_PYTHON").unwrap_or_else(|| "python3".into());
            output_of(
                std::process::Command::new(&python)
                    .args(["-m", "venv"])
                    .arg(&venv),
            )
            .map_err(unavailable)?;
            output_of(std::process::Command::new(venv.join("bin/python")).args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                &format!("py-spy=={PY_SPY_VERSION}"),
            ]))
            .map_err(unavailable)?;
            std::fs::write(&marker, PY_SPY_VERSION).map_err(io_err(&marker))?;
        }
        let version =
            output_of(std::process::Command::new(&bin).arg("--version")).map_err(unavailable)?;
        Ok(Self {
            kind: ToolKind::PySpy,
            path: bin,
            version: version.trim().trim_start_matches("py-spy ").to_string(),
        })
    }

    /// `perf` from the system (Debian: `apt-get install linux-perf`), checked by recording a
    /// trivial command: a kernel that refuses `perf_event_open` (perf_event_paranoid, seccomp
    /// in containers) is reported here, not mid-run. Blocking.
    pub fn perf() -> Result<Self, ProfilerError> {
        let unavailable = |hint: String, source| ProfilerError::Unavailable {
            tool: "perf".into(),
            hint,
            source,
        };
        let bin =
            std::env::var_os("HSBENCH_PERF").map_or_else(|| PathBuf::from("perf"), PathBuf::from);
        let version = output_of(std::process::Command::new(&bin).arg("--version"))
            .map_err(|e| unavailable(" (on Debian: apt-get install linux-perf)".into(), e))?;
        let probe = tempfile::NamedTempFile::new().map_err(io_err(Path::new("/tmp")))?;
        output_of(
            std::process::Command::new(&bin)
                .args(["record", "-q", "-g", "-F", "99", "-o"])
                .arg(probe.path())
                .args(["--", "true"]),
        )
        .map_err(|e| {
            let paranoid =
                std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").unwrap_or_default();
            unavailable(
                format!(
                    " (perf record does not work here: kernel.perf_event_paranoid = {})",
                    paranoid.trim()
                ),
                e,
            )
        })?;
        Ok(Self {
            kind: ToolKind::Perf,
            path: bin,
            version: version
                .trim()
                .trim_start_matches("perf version ")
                .to_string(),
        })
    }

    /// How boots are profiled, for the result.
    pub fn launch_mode(&self) -> &'static str {
        match self.kind {
            ToolKind::PySpy => "py-spy launch, chrometrace --idle (wall-clock, all threads)",
            ToolKind::Perf => "perf record -g launch, CLOCK_MONOTONIC (on-CPU)",
        }
    }

    /// How running servers are profiled, for the result.
    pub fn attach_mode(&self) -> &'static str {
        match self.kind {
            ToolKind::PySpy => "py-spy attach --nonblocking, raw (on-CPU, idle threads excluded)",
            ToolKind::Perf => "perf record -g -p (on-CPU)",
        }
    }

    /// Prefix of the lines the profiler itself prints into the server's output stream.
    pub fn own_line_prefix(&self) -> Option<&'static str> {
        match self.kind {
            ToolKind::PySpy => Some("py-spy> "),
            ToolKind::Perf => None,
        }
    }

    /// `cmd` started under the profiler, which writes its profile to `out`. Environment and
    /// working directory are carried over; signals meant for the server go to the profiler's
    /// child (see [`crate::boot::BootSpec::wrapped`]).
    pub fn wrap_launch(
        &self,
        cmd: &std::process::Command,
        out: &Path,
        rate_hz: u32,
    ) -> std::process::Command {
        let mut w = std::process::Command::new(&self.path);
        match self.kind {
            ToolKind::PySpy => {
                w.args(["record", "--format", "chrometrace", "--idle", "--nolineno"])
                    .arg("--rate")
                    .arg(rate_hz.to_string())
                    .arg("--output")
                    .arg(out);
            }
            ToolKind::Perf => {
                w.args(PERF_RECORD)
                    .arg(rate_hz.to_string())
                    .arg("-o")
                    .arg(out);
            }
        }
        w.arg("--").arg(cmd.get_program()).args(cmd.get_args());
        crate::util::process::carry_over(cmd, &mut w);
        w
    }

    /// Attach to a running process; [`Attached::stop`] ends the recording.
    pub fn attach(&self, pid: i32, out: &Path, rate_hz: u32) -> Result<Attached, ProfilerError> {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(&self.path);
        match self.kind {
            ToolKind::PySpy => {
                cmd.args(["record", "--format", "raw", "--nonblocking", "--nolineno"])
                    .arg("--rate")
                    .arg(rate_hz.to_string())
                    .arg("--pid")
                    .arg(pid.to_string())
                    .arg("--output")
                    .arg(out);
            }
            ToolKind::Perf => {
                cmd.args(PERF_RECORD)
                    .arg(rate_hz.to_string())
                    .arg("-p")
                    .arg(pid.to_string())
                    .arg("-o")
                    .arg(out);
            }
        }
        let log_path = out.with_extension("profiler.log");
        let log = std::fs::File::create(&log_path).map_err(io_err(&log_path))?;
        let log2 = log.try_clone().map_err(io_err(&log_path))?;
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(io_err(&self.path))?;
        Ok(Attached {
            child,
            out: out.to_path_buf(),
            log_path,
            started: std::time::Instant::now(),
        })
    }
}

/// A profiler attached to a running server. Dropping it kills the profiler's group.
pub struct Attached {
    child: std::process::Child,
    out: PathBuf,
    log_path: PathBuf,
    started: std::time::Instant,
}

/// What an attached recording cost and produced.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct AttachReport {
    pub duration_s: f64,
    /// CPU seconds the profiler itself used (user + system).
    pub profiler_cpu_s: Option<f64>,
}

impl Attached {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGINT (both profilers write their output on it), then wait up to `limit`. Blocking.
    pub fn stop(mut self, limit: Duration) -> Result<AttachReport, ProfilerError> {
        let cpu = process_cpu_s(self.pid());
        let duration_s = self.started.elapsed().as_secs_f64();
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.pid(), libc::SIGINT);
        }
        let deadline = std::time::Instant::now() + limit;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => break None,
            }
        };
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let tail = || {
            log.lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        };
        match status {
            None => Err(ProfilerError::Data {
                path: self.out.clone(),
                source: format!("the profiler did not stop within {limit:?}:\n{}", tail()).into(),
            }),
            Some(_) if !self.out.exists() => Err(ProfilerError::Data {
                path: self.out.clone(),
                source: format!("the profiler wrote no output:\n{}", tail()).into(),
            }),
            Some(_) => Ok(AttachReport {
                duration_s,
                profiler_cpu_s: cpu,
            }),
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        // SAFETY: killpg(2) on the group our child leads; ESRCH (already gone) is fine.
        unsafe {
            libc::killpg(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.try_wait();
    }
}

/// CPU seconds (user + system) a live process has used, from `/proc/<pid>/stat`.
pub fn process_cpu_s(pid: i32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / tck)
}

/// The directory of a run that holds its profiles (raw recordings, folded stacks, SVGs).
pub const PROFILE_DIR: &str = "profile";
