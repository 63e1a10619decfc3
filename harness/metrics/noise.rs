//! How steady this machine's CPUs are: the floor under every time hsbench compares.
//!
//! A fixed amount of work runs over and over on every CPU at once, one thread pinned to each,
//! in chunks of about [`CHUNK`]: a compute loop (registers only), a pointer chase through
//! [`CHASE_BYTES`] per CPU (cache and memory misses, as an interpreter's work is), and fresh
//! memory mapped, touched and unmapped (page faults, as a starting process takes by the
//! thousand; under a hypervisor that takes freed memory back, each may fault on the host too).
//! Last, where `python3` is found, fresh interpreters each running a fixed loop for about a
//! window: a process start and an interpreter's large, branchy code, which suffer from a busy
//! neighbour on the same physical core far more than the loops above. A
//! boot is a fixed amount of work too, so consecutive chunks summed over a boot's length stand
//! for boots, and the spread of neighbouring windows' log ratios is the jitter that paired
//! boots (`ab`'s ABBA order) cannot pair away. A server adds its own jitter on top: this is a
//! floor, not a forecast.
//!
//! The chunk series are bounded: `seconds / CHUNK` entries per CPU and probe, allocated up
//! front.

use std::time::{Duration, Instant};

use crate::metrics::machine::Fingerprint;
use crate::stats::spread::{
    DETECTION_POWER, correlation, cv, detectable_paired, median, pairs_to_detect, robust_sd,
};

/// Version of the `noise --json` document.
pub const NOISE_SCHEMA_VERSION: u32 = 1;

/// The work of one chunk is sized to take about this long.
pub const CHUNK: Duration = Duration::from_millis(50);

/// The pointer chase's working set per CPU: larger than a core's share of a server CPU's last
/// level cache, so most steps miss it.
pub const CHASE_BYTES: usize = 32 << 20;

/// The fewest windows per CPU and probe that give a spread.
const MIN_WINDOWS: usize = 3;

/// The changes the report says how many boots need.
pub const SHARES: [f64; 3] = [0.02, 0.05, 0.10];

/// More boots than this a side count as "not within reach".
const BOOTS_LIMIT: usize = 10_000;

/// What to measure.
#[derive(Debug, Clone)]
pub struct NoiseSpec {
    /// Every probe together (a third each).
    pub seconds: Duration,
    /// The length of the boots to stand for (a server's time to ready).
    pub window: Duration,
    /// Boots a side the floor is given for.
    pub boots: usize,
    /// Significance level of the comparison.
    pub alpha: f64,
    /// The interpreter of the Python probe (None: no Python probe).
    pub python: Option<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum NoiseError {
    #[error(
        "`--seconds` {seconds:?} gives each of {probes} probes {:?}, fewer than {MIN_WINDOWS} \
         windows of `--window` {window:?}: give at least {:?}",
        *seconds / *probes,
        *window * MIN_WINDOWS as u32 * *probes
    )]
    TooShort {
        seconds: Duration,
        window: Duration,
        probes: u32,
    },
    #[error(
        "no probe finished two windows of `--window` {window:?} in `--seconds` {seconds:?}: \
         the machine is slower than that; give more seconds"
    )]
    TooFewWindows { seconds: Duration, window: Duration },
    #[error("`--window` {0:?} is shorter than one chunk ({CHUNK:?})")]
    WindowTooShort(Duration),
    #[error("`--boots` {0} must be at least 2")]
    TooFewBoots(usize),
    #[error("`--alpha` {0} must be within (0, 1)")]
    Alpha(f64),
    #[error("cannot read the CPUs this process may run on: {0}")]
    Affinity(#[source] std::io::Error),
    #[error("a probe thread failed: {0}")]
    Thread(String),
    #[error("the Python probe: `{} -c …` {what}", python.display())]
    Python {
        python: std::path::PathBuf,
        what: String,
    },
}

/// Which work a probe repeats.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// An integer recurrence in registers: the CPU's own speed.
    Compute,
    /// A random pointer chase through [`CHASE_BYTES`]: caches and memory.
    Memory,
    /// [`FAULT_BYTES`] of fresh anonymous memory mapped, each page touched, unmapped: page
    /// faults.
    Fault,
    /// A fresh `python3` per sample, running a fixed dict-and-string loop sized to a window.
    Python,
}

/// The fault probe's mapping.
pub const FAULT_BYTES: usize = 4 << 20;

/// Every probe, in the order they run (the last only where `python` runs).
pub const PROBES: [ProbeKind; 4] = [
    ProbeKind::Compute,
    ProbeKind::Memory,
    ProbeKind::Fault,
    ProbeKind::Python,
];

/// The Python probe's work: `n` from the command line.
const PYTHON_LOOP: &str = "import sys\nn = int(sys.argv[1])\nd = {}\nfor i in range(n):\n    d[str(i)] = [i] * 3\ns = 0\nfor k, v in d.items():\n    s += len(k) + v[1]\n";

impl ProbeKind {
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Compute => "compute",
            ProbeKind::Memory => "memory",
            ProbeKind::Fault => "fault",
            ProbeKind::Python => "python",
        }
    }
}

/// One probe on one CPU.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ProbeSeries {
    pub kind: ProbeKind,
    pub cpu: usize,
    /// Whether the thread was pinned to `cpu` (else it ran where the kernel put it).
    pub pinned: bool,
    pub chunks: usize,
    pub chunk_ms_median: f64,
    /// Standard deviation over mean of the chunks' times.
    pub chunk_cv: f64,
    /// Windows of `window_s`: how many, and the robust standard deviation of neighbouring
    /// windows' log ratios (None: fewer than two windows, the machine was too slow for the
    /// time given).
    pub windows: usize,
    pub window_spread: Option<f64>,
}

/// One probe over every CPU.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct KindSummary {
    pub kind: ProbeKind,
    /// The robust standard deviation of neighbouring windows' log ratios, every CPU's pooled
    /// (None: no CPU had two windows).
    pub window_spread: Option<f64>,
    /// The mean correlation, over pairs of CPUs, of their chunk times in the same quarter
    /// second: near 1 when the CPUs slow down together (a probe on one could correct the
    /// other), near 0 when each slows down on its own. None with one CPU.
    pub cpu_correlation: Option<f64>,
}

/// Boots a side for a change.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct BootsFor {
    pub share: f64,
    /// None: more than 10,000.
    pub boots: Option<usize>,
}

/// What the worse probe allows a paired comparison.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Floor {
    /// The probe whose spread it comes from (the larger).
    pub kind: ProbeKind,
    pub spread: f64,
    /// The smallest change `boots` pairs detect at `alpha` with 95% power, from this jitter
    /// alone (a comparison's noise gate and the server's own jitter add to it).
    pub detectable: f64,
    pub boots_for: Vec<BootsFor>,
}

/// The `noise` command's result.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct NoiseReport {
    pub schema_version: u32,
    pub machine: Fingerprint,
    pub seconds: f64,
    pub window_s: f64,
    pub chunk_ms: f64,
    pub boots: usize,
    pub alpha: f64,
    pub power: f64,
    /// The share of CPU time the kernel says the hypervisor took (None where /proc/stat is
    /// missing). Many hypervisors never report it, so 0 proves little.
    pub steal_share: Option<f64>,
    pub conditions: Conditions,
    /// The Python probe's interpreter (None: not run).
    pub python: Option<String>,
    pub probes: Vec<ProbeSeries>,
    pub kinds: Vec<KindSummary>,
    pub floor: Floor,
}

impl NoiseSpec {
    /// How many probes run: the Python one only with an interpreter.
    fn probes(&self) -> u32 {
        PROBES.len() as u32 - u32::from(self.python.is_none())
    }

    /// Each probe's share of the time.
    fn phase(&self) -> Duration {
        self.seconds / self.probes()
    }

    fn validate(&self) -> Result<(), NoiseError> {
        if self.window < CHUNK {
            return Err(NoiseError::WindowTooShort(self.window));
        }
        if self.phase() < self.window * MIN_WINDOWS as u32 {
            return Err(NoiseError::TooShort {
                seconds: self.seconds,
                window: self.window,
                probes: self.probes(),
            });
        }
        if self.boots < 2 {
            return Err(NoiseError::TooFewBoots(self.boots));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(NoiseError::Alpha(self.alpha));
        }
        Ok(())
    }
}

/// Run every probe on every CPU this process may use and work out the floor.
pub fn measure(spec: &NoiseSpec) -> Result<NoiseReport, NoiseError> {
    spec.validate()?;
    let cpus = allowed_cpus()?;
    let steal_before = cpu_times();
    let phase = spec.phase();
    // The interpreter itself, not a wrapper (a pyenv shim is a shell script).
    let python = spec.python.as_deref().map(resolve_python).transpose()?;
    let mut probes = Vec::new();
    let mut kinds = Vec::new();
    for kind in PROBES {
        let runs = match (kind, &python) {
            (ProbeKind::Python, None) => continue,
            (ProbeKind::Python, Some(py)) => run_python(py, &cpus, phase, spec.window)?,
            _ => run_phase(kind, &cpus, phase)?,
        };
        let mut pooled = Vec::new();
        for run in &runs {
            let durations: Vec<f64> = run.chunks.iter().map(|c| c.1).collect();
            let typical = median(&durations);
            let per_window = ((spec.window.as_secs_f64() / typical).round() as usize).max(1);
            let logs = neighbour_logs(&durations, per_window);
            pooled.extend_from_slice(&logs);
            probes.push(ProbeSeries {
                kind,
                cpu: run.cpu,
                pinned: run.pinned,
                chunks: durations.len(),
                chunk_ms_median: typical * 1e3,
                chunk_cv: cv(&durations),
                windows: durations.len() / per_window,
                window_spread: spread(&logs),
            });
        }
        kinds.push(KindSummary {
            kind,
            window_spread: spread(&pooled),
            cpu_correlation: cpu_correlation(&runs, phase),
        });
    }
    let steal_share = match (steal_before, cpu_times()) {
        (Some((s0, t0)), Some((s1, t1))) if t1 > t0 => Some((s1 - s0) as f64 / (t1 - t0) as f64),
        _ => None,
    };
    let (worst_kind, worst) = kinds
        .iter()
        .filter_map(|k| Some((k.kind, k.window_spread?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .ok_or(NoiseError::TooFewWindows {
            seconds: spec.seconds,
            window: spec.window,
        })?;
    let floor = Floor {
        kind: worst_kind,
        spread: worst,
        detectable: detectable_paired(worst, spec.boots, spec.alpha, DETECTION_POWER),
        boots_for: SHARES
            .iter()
            .map(|&share| BootsFor {
                share,
                boots: pairs_to_detect(worst, share, spec.alpha, DETECTION_POWER, BOOTS_LIMIT),
            })
            .collect(),
    };
    Ok(NoiseReport {
        schema_version: NOISE_SCHEMA_VERSION,
        machine: Fingerprint::current(),
        seconds: spec.seconds.as_secs_f64(),
        window_s: spec.window.as_secs_f64(),
        chunk_ms: CHUNK.as_secs_f64() * 1e3,
        boots: spec.boots,
        alpha: spec.alpha,
        power: DETECTION_POWER,
        steal_share,
        conditions: Conditions::current(),
        python: python.as_ref().map(|p| p.display().to_string()),
        probes,
        kinds,
        floor,
    })
}

/// Log ratios of neighbouring windows of `per_window` consecutive chunks (each window the time
/// the same work took).
pub fn neighbour_logs(durations: &[f64], per_window: usize) -> Vec<f64> {
    let windows: Vec<f64> = durations
        .chunks_exact(per_window.max(1))
        .map(|w| w.iter().sum())
        .collect();
    windows
        .windows(2)
        .filter(|w| w[0] > 0.0 && w[1] > 0.0)
        .map(|w| (w[1] / w[0]).ln())
        .collect()
}

/// The robust spread of log ratios; None without any.
fn spread(logs: &[f64]) -> Option<f64> {
    (!logs.is_empty()).then(|| robust_sd(logs))
}

/// The width of the time bins CPUs are compared in.
const BIN: Duration = Duration::from_millis(250);

/// Mean over pairs of CPUs of the correlation of their mean chunk time per [`BIN`].
fn cpu_correlation(runs: &[PhaseRun], phase: Duration) -> Option<f64> {
    let bins = (phase.as_secs_f64() / BIN.as_secs_f64()).ceil() as usize;
    let per_cpu: Vec<Vec<f64>> = runs
        .iter()
        .map(|r| {
            let mut sum = vec![0.0; bins];
            let mut count = vec![0u32; bins];
            for &(start, d) in &r.chunks {
                let i = ((start / BIN.as_secs_f64()) as usize).min(bins - 1);
                sum[i] += d;
                count[i] += 1;
            }
            sum.iter()
                .zip(&count)
                .map(|(s, &c)| if c == 0 { f64::NAN } else { s / c as f64 })
                .collect()
        })
        .collect();
    let mut rs = Vec::new();
    for i in 0..per_cpu.len() {
        for j in i + 1..per_cpu.len() {
            let (a, b): (Vec<f64>, Vec<f64>) = per_cpu[i]
                .iter()
                .zip(&per_cpu[j])
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|(x, y)| (*x, *y))
                .unzip();
            rs.extend(correlation(&a, &b));
        }
    }
    (!rs.is_empty()).then(|| rs.iter().sum::<f64>() / rs.len() as f64)
}

/// One probe's run on one CPU: (start since the phase began, duration) of each chunk, seconds.
struct PhaseRun {
    cpu: usize,
    pinned: bool,
    chunks: Vec<(f64, f64)>,
}

/// Run `kind` on every CPU at once for `phase`.
fn run_phase(
    kind: ProbeKind,
    cpus: &[usize],
    phase: Duration,
) -> Result<Vec<PhaseRun>, NoiseError> {
    let capacity = (phase.as_secs_f64() / CHUNK.as_secs_f64() * 2.0).ceil() as usize + 16;
    on_every_cpu(
        kind,
        cpus,
        phase,
        capacity,
        || {
            let mut work = Work::new(kind);
            work.calibrate();
            work
        },
        |work| {
            let t = Instant::now();
            work.chunk();
            Ok(t.elapsed().as_secs_f64())
        },
    )
}

/// On one thread pinned to each CPU at once: `setup`, then, once every thread is set up,
/// `sample` (which returns its duration in seconds) over and over for `phase`, at most
/// `capacity` times.
fn on_every_cpu<W>(
    kind: ProbeKind,
    cpus: &[usize],
    phase: Duration,
    capacity: usize,
    setup: impl Fn() -> W + Sync,
    sample: impl Fn(&mut W) -> Result<f64, NoiseError> + Sync,
) -> Result<Vec<PhaseRun>, NoiseError> {
    let barrier = std::sync::Barrier::new(cpus.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = cpus
            .iter()
            .map(|&cpu| {
                let (barrier, setup, sample) = (&barrier, &setup, &sample);
                s.spawn(move || -> Result<PhaseRun, NoiseError> {
                    let pinned = pin_to(cpu);
                    let mut state = setup();
                    let mut chunks = Vec::with_capacity(capacity);
                    barrier.wait();
                    let begin = Instant::now();
                    while begin.elapsed() < phase && chunks.len() < capacity {
                        let start = begin.elapsed().as_secs_f64();
                        chunks.push((start, sample(&mut state)?));
                    }
                    Ok(PhaseRun {
                        cpu,
                        pinned,
                        chunks,
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().map_err(|_| {
                    NoiseError::Thread(format!("the {} probe panicked", kind.name()))
                })?
            })
            .collect()
    })
}

/// The interpreter `python` runs (`sys.executable`).
fn resolve_python(python: &std::path::Path) -> Result<std::path::PathBuf, NoiseError> {
    let out = std::process::Command::new(python)
        .args(["-c", "import sys; print(sys.executable)"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| NoiseError::Python {
            python: python.to_path_buf(),
            what: format!("cannot start: {e}"),
        })?;
    let exe = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || exe.is_empty() {
        return Err(NoiseError::Python {
            python: python.to_path_buf(),
            what: format!(
                "does not say its executable ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(exe.into())
}

/// One run of the Python probe's loop with `n`, pinned where the calling thread is: its wall
/// time in seconds.
fn python_once(python: &std::path::Path, n: u64) -> Result<f64, NoiseError> {
    let fail = |what: String| NoiseError::Python {
        python: python.to_path_buf(),
        what,
    };
    let mut cmd = std::process::Command::new(python);
    cmd.args(["-c", PYTHON_LOOP, &n.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe; it only arms the child's death with ours.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    let t = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| fail(format!("cannot start: {e}")))?;
    let took = t.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(fail(format!(
            "failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(took)
}

/// The Python probe on every CPU at once for `phase`: interpreters sized to `window`, one after
/// another on each CPU.
fn run_python(
    python: &std::path::Path,
    cpus: &[usize],
    phase: Duration,
    window: Duration,
) -> Result<Vec<PhaseRun>, NoiseError> {
    // Size the loop on the first CPU: grow n until a run takes a fifth of the window, scale,
    // then once more.
    let mut n: u64 = 20_000;
    let calibrate = || -> Result<u64, NoiseError> {
        pin_to(cpus[0]);
        loop {
            let took = python_once(python, n)?;
            if took >= window.as_secs_f64() / 5.0 || n >= 1 << 32 {
                n = ((n as f64) * window.as_secs_f64() / took).max(1.0) as u64;
                let took = python_once(python, n)?;
                return Ok(((n as f64) * window.as_secs_f64() / took).max(1.0) as u64);
            }
            n *= 4;
        }
    };
    let n = std::thread::scope(|s| s.spawn(calibrate).join())
        .map_err(|_| NoiseError::Thread("the Python probe's calibration panicked".into()))??;
    let capacity = (phase.as_secs_f64() / window.as_secs_f64() * 4.0).ceil() as usize + 4;
    on_every_cpu(
        ProbeKind::Python,
        cpus,
        phase,
        capacity,
        || (),
        |_| python_once(python, n),
    )
}

/// A probe's work, sized to [`CHUNK`].
struct Work {
    kind: ProbeKind,
    steps: u64,
    state: u64,
    next: Vec<u32>,
}

impl Work {
    fn new(kind: ProbeKind) -> Self {
        let next = match kind {
            ProbeKind::Compute | ProbeKind::Fault | ProbeKind::Python => Vec::new(),
            ProbeKind::Memory => chase_cycle(CHASE_BYTES / 4, 0x9e37_79b9_7f4a_7c15),
        };
        Work {
            kind,
            // A first chunk well under a millisecond, whatever the kind.
            steps: match kind {
                ProbeKind::Compute => 1 << 16,
                ProbeKind::Memory => 1 << 10,
                ProbeKind::Fault | ProbeKind::Python => 1,
            },
            state: 1,
            next,
        }
    }

    /// Size the chunk: time growing step counts until one takes a tenth of a chunk, then
    /// scale, then once more from a whole chunk.
    fn calibrate(&mut self) {
        loop {
            let t = Instant::now();
            self.chunk();
            let took = t.elapsed();
            if took >= CHUNK / 10 || self.steps >= 1 << 40 {
                self.rescale(took);
                break;
            }
            self.steps *= 4;
        }
        let t = Instant::now();
        self.chunk();
        self.rescale(t.elapsed());
    }

    fn rescale(&mut self, took: Duration) {
        let factor = CHUNK.as_secs_f64() / took.as_secs_f64().max(1e-9);
        self.steps = ((self.steps as f64 * factor) as u64).max(1);
    }

    fn chunk(&mut self) {
        match self.kind {
            ProbeKind::Compute => {
                let mut x = self.state;
                for _ in 0..self.steps {
                    x = x
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                }
                self.state = std::hint::black_box(x);
            }
            ProbeKind::Memory => {
                let mut p = (self.state % self.next.len() as u64) as u32;
                for _ in 0..self.steps {
                    p = self.next[p as usize];
                }
                self.state = std::hint::black_box(p) as u64;
            }
            ProbeKind::Fault => {
                for _ in 0..self.steps {
                    fault_in(FAULT_BYTES);
                }
            }
            ProbeKind::Python => unreachable!("the Python probe runs processes"),
        }
    }
}

/// Map `bytes` of fresh anonymous memory, write one byte a page, unmap it.
fn fault_in(bytes: usize) {
    #[cfg(unix)]
    {
        // SAFETY: a private anonymous mapping of our own; every write is inside it, and it is
        // unmapped once, here.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return;
            }
            let base = p.cast::<u8>();
            for off in (0..bytes).step_by(4096) {
                std::ptr::write_volatile(base.add(off), 1);
            }
            libc::munmap(p, bytes);
        }
    }
    #[cfg(not(unix))]
    std::hint::black_box(vec![1u8; bytes]);
}

/// What the machine does that makes times jitter, where Linux says so.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Conditions {
    /// A virtio balloon with free page reporting: memory the guest frees goes back to the
    /// host, and faults in again on the host when used (None: no balloon device).
    pub free_page_reporting: Option<bool>,
    /// The actions of the kernel's DAMON schemes running (`pageout`: pages idle for a while are
    /// written out or dropped, and fault back in).
    pub damon_actions: Vec<String>,
    /// The CPU frequency governor of CPU 0 (None: no cpufreq, as in most VMs).
    pub governor: Option<String>,
}

impl Conditions {
    pub fn current() -> Self {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
        };
        // VIRTIO_BALLOON_F_REPORTING is feature bit 5; sysfs lists the bits as '0'/'1' from bit 0.
        let free_page_reporting = std::fs::read_dir("/sys/bus/virtio/drivers/virtio_balloon")
            .ok()
            .and_then(|dir| {
                dir.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("virtio"))
                    .find_map(|e| read(&e.path().join("features").to_string_lossy()))
            })
            .map(|bits| bits.as_bytes().get(5) == Some(&b'1'));
        let mut damon_actions = Vec::new();
        let root = "/sys/kernel/mm/damon/admin/kdamonds";
        if let Some(n) = read(&format!("{root}/nr_kdamonds")).and_then(|n| n.parse::<usize>().ok())
        {
            for k in 0..n {
                if read(&format!("{root}/{k}/state")).as_deref() != Some("on") {
                    continue;
                }
                for entry in std::fs::read_dir(format!("{root}/{k}/contexts"))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let schemes = entry.path().join("schemes");
                    for scheme in std::fs::read_dir(&schemes).into_iter().flatten().flatten() {
                        if let Some(a) = read(&scheme.path().join("action").to_string_lossy())
                            && !damon_actions.contains(&a)
                        {
                            damon_actions.push(a);
                        }
                    }
                }
            }
        }
        Conditions {
            free_page_reporting,
            damon_actions,
            governor: read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        }
    }
}

/// A random single cycle over `n` slots (Sattolo's algorithm): following it visits every slot
/// in an order the prefetcher cannot guess.
fn chase_cycle(n: usize, seed: u64) -> Vec<u32> {
    let mut next: Vec<u32> = (0..n as u32).collect();
    let mut x = seed;
    for i in (1..n).rev() {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let j = (r % i as u64) as usize;
        next.swap(i, j);
    }
    next
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Result<Vec<usize>, NoiseError> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity writes at most
        // size_of::<cpu_set_t>() bytes into it.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let rc =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if rc != 0 {
            return Err(NoiseError::Affinity(std::io::Error::last_os_error()));
        }
        // SAFETY: CPU_ISSET reads the set we own, for indices below CPU_SETSIZE.
        Ok((0..libc::CPU_SETSIZE as usize)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect())
    }
    #[cfg(not(target_os = "linux"))]
    Ok((0..crate::util::thread::cores()).collect())
}

/// Pin the calling thread to `cpu`; false when the kernel refused.
fn pin_to(cpu: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: the set is ours and `cpu` is below CPU_SETSIZE (it came from
        // sched_getaffinity); pid 0 is the calling thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpu;
        false
    }
}

/// (steal, total) jiffies of all CPUs from /proc/stat.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.len() == 8).then(|| (v[7], v.iter().sum()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbour_logs_sum_windows_of_work() {
        // Windows of 2 chunks: 2, 4, 2 → ln 2, ln 0.5.
        let logs = neighbour_logs(&[1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 9.0], 2);
        assert_eq!(logs.len(), 2);
        assert!((logs[0] - 2f64.ln()).abs() < 1e-12);
        assert!((logs[1] + 2f64.ln()).abs() < 1e-12);
        assert!(neighbour_logs(&[1.0; 10], 3).iter().all(|l| *l == 0.0));
    }

    #[test]
    fn the_chase_is_one_cycle_through_every_slot() {
        let next = chase_cycle(1000, 7);
        let (mut p, mut seen) = (0usize, vec![false; 1000]);
        for _ in 0..1000 {
            assert!(!seen[p], "slot {p} visited twice");
            seen[p] = true;
            p = next[p] as usize;
        }
        assert_eq!(p, 0, "back at the start after every slot");
    }

    #[test]
    fn bad_specs_name_the_option() {
        let spec = |seconds: u64, window_ms: u64, boots: usize, alpha: f64| NoiseSpec {
            seconds: Duration::from_secs(seconds),
            window: Duration::from_millis(window_ms),
            boots,
            alpha,
            python: None,
        };
        let err = |s: NoiseSpec| measure(&s).unwrap_err().to_string();
        assert!(err(spec(12, 2000, 10, 0.05)).contains("`--seconds`"));
        assert!(err(spec(60, 10, 10, 0.05)).contains("`--window`"));
        assert!(err(spec(60, 2000, 1, 0.05)).contains("`--boots`"));
        assert!(err(spec(60, 2000, 10, 1.5)).contains("`--alpha`"));
    }

    /// The probes on this machine: every CPU measured by every probe, the floor from the worst.
    /// (The Python probe runs in tests/cli.rs, through the binary.) Bounds are loose: a busy
    /// machine makes fewer, slower chunks.
    #[test]
    fn measures_every_cpu_with_every_probe() {
        let r = measure(&NoiseSpec {
            seconds: Duration::from_secs(3),
            window: Duration::from_millis(200),
            boots: 10,
            alpha: 0.05,
            python: None,
        })
        .unwrap();
        let cpus = allowed_cpus().unwrap().len();
        assert_eq!(r.probes.len(), 3 * cpus);
        assert!(r.python.is_none());
        for p in &r.probes {
            // 1 s of ~50 ms chunks at most twice over (the bound the series is allocated to).
            assert!(p.chunks >= 1 && p.chunks <= 1_000 / 50 * 2 + 16, "{p:?}");
            assert!(p.chunk_ms_median > 0.0, "{p:?}");
            assert!(p.chunk_cv.is_finite() && p.chunk_cv >= 0.0, "{p:?}");
            assert!(
                p.window_spread.is_none_or(|s| s.is_finite() && s >= 0.0),
                "{p:?}"
            );
        }
        let kinds: Vec<ProbeKind> = r.kinds.iter().map(|k| k.kind).collect();
        assert_eq!(kinds, PROBES[..3]);
        assert_eq!(r.kinds[0].cpu_correlation.is_some(), cpus > 1);
        let worst = r
            .kinds
            .iter()
            .filter_map(|k| k.window_spread)
            .fold(0.0, f64::max);
        assert_eq!(r.floor.spread, worst);
        assert_eq!(
            r.floor.detectable,
            detectable_paired(worst, 10, 0.05, DETECTION_POWER)
        );
        assert_eq!(r.floor.boots_for.len(), SHARES.len());
    }
}
