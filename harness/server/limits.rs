//! Resource limits for the server under test (`[server] cpus`, `memory`, `cpuset`): its process
//! tree runs in a cgroup of its own with a CPU quota, a memory limit and a cpuset (cgroup v2
//! where the controllers are enabled for hsbench's cgroup, else the v1 hierarchies mounted
//! for `cpu`, `cpuset` and `memory`), and hsbench's own threads (the load generator) leave the
//! server's cores. Where no cgroup can be made (not root, no delegation), the server is pinned
//! to its cores by CPU affinity and the result says what was not limited.
//!
//! The kernel's own counters are read back: throttled periods and time from `cpu.stat`, the
//! memory limit's hits, the peak and OOM kills.

use std::ffi::CString;
use std::path::{Path, PathBuf};

/// What a scenario asks for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Limits {
    /// CPU quota in cores (`1.5`: 150 ms of CPU time per 100 ms period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Memory limit of the process tree, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// The cores the server may run on (default with `cpus`: the last ⌈cpus⌉ cores, so that
    /// the load generator keeps the others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset: Option<Vec<usize>>,
}

/// How the limits were applied.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    CgroupV2,
    CgroupV1,
    /// No cgroup could be made: the server pinned to its cores, nothing else limited.
    Affinity,
}

/// What was applied, as the result records it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Applied {
    pub mechanism: Mechanism,
    /// The CPU quota read back from the cgroup, in cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// The memory limit read back from the cgroup, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// The server's cores.
    pub server_cores: Vec<usize>,
    /// hsbench's cores (the load generator): none of the server's when the machine has cores
    /// to spare.
    pub generator_cores: Vec<usize>,
    /// The cgroup directories the server ran in.
    pub cgroups: Vec<String>,
    /// What the scenario asked for that could not be applied, and why; and what is outside the
    /// limits (a private PostgreSQL cluster).
    pub notes: Vec<String>,
}

/// The limits of a run as its result records them: what the scenario asked for, what was
/// applied, and what the kernel counted.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct LimitsRecord {
    pub asked: Limits,
    pub applied: Applied,
    /// Over every boot and workload of the run.
    pub throttling: Throttling,
    /// hsbench's own threads (the load generator) checked after the workloads: how many may
    /// run on one of the server's cores (none, unless the server has every core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<GeneratorCheck>,
}

/// Where hsbench's own threads may run, read from the kernel (`Cpus_allowed_list` of each
/// thread in `/proc/self/task`).
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct GeneratorCheck {
    pub threads: usize,
    /// Threads allowed on at least one of the server's cores.
    pub on_server_cores: usize,
}

impl LimitsRecord {
    /// The kernel's counters in one line (`throttled in 65 of 66 periods (3.15 s held back);
    /// memory peak 89.0 MiB, limit hit 0 times, 0 OOM kills`).
    pub fn throttling_line(&self) -> String {
        let t = &self.throttling;
        let mut parts = Vec::new();
        if self.applied.cpus.is_some() {
            parts.push(format!(
                "CPU quota ran out in {} of {} periods ({:.2} s held back)",
                t.throttled_periods, t.periods, t.throttled_s
            ));
        }
        if self.applied.memory_bytes.is_some() {
            parts.push(format!(
                "memory peak {}, limit hit {} times, {} OOM kills",
                t.memory_peak_bytes
                    .map(|b| crate::util::fmt::fmt_bytes(b as f64))
                    .unwrap_or_else(|| "not reported".into()),
                t.memory_limit_hits,
                t.oom_kills
            ));
        }
        if let Some(g) = &self.generator {
            parts.push(format!(
                "{} of hsbench's {} threads allowed on the server's cores",
                g.on_server_cores, g.threads
            ));
        }
        if parts.is_empty() {
            return "no counters (nothing but the cores limited)".into();
        }
        parts.join("; ")
    }
}

/// The kernel's counters of the limits, over the run so far.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Throttling {
    /// CFS periods in which the group ran, and those in which its quota ran out.
    pub periods: u64,
    pub throttled_periods: u64,
    /// Time the group was held back by its quota, in seconds.
    pub throttled_s: f64,
    /// Times the memory limit was hit (v1 `memory.failcnt`, v2 `memory.events` max).
    pub memory_limit_hits: u64,
    /// Processes the kernel's OOM killer killed in the group.
    pub oom_kills: u64,
    /// The group's peak memory, in bytes (where the kernel reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_peak_bytes: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    #[error("resource limits: {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("resource limits: {0}")]
    Invalid(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LimitsError + '_ {
    move |source| LimitsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The limits in force for one run: the cgroups made for it (removed on drop, after any
/// process left in them is killed) or the affinity the server gets.
#[derive(Debug)]
pub struct Confinement {
    pub applied: Applied,
    /// `cgroup.procs` of each cgroup the server joins (NUL-terminated for `pre_exec`).
    procs: Vec<CString>,
    dirs: Vec<PathBuf>,
    v2: bool,
    /// The affinity of hsbench's threads before it left the server's cores.
    own_affinity: Option<Vec<usize>>,
}

/// One mounted cgroup hierarchy and hsbench's place in it.
#[derive(Debug, Clone)]
struct Hierarchy {
    /// v1: the controllers of the mount (`cpu`, `cpuacct`…); v2: empty.
    controllers: Vec<String>,
    /// hsbench's own cgroup in it.
    own: PathBuf,
}

/// The cgroup hierarchies mounted here, each with hsbench's own cgroup in it.
fn hierarchies() -> (Option<Hierarchy>, Vec<Hierarchy>) {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let own_path = |controller: Option<&str>| -> String {
        own.lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, ':');
                Some((f.next()?, f.next()?, f.next()?))
            })
            .find(|(_, c, _)| match controller {
                None => c.is_empty(),
                Some(want) => c.split(',').any(|c| c == want),
            })
            .map(|(_, _, p)| p.trim_start_matches('/').to_string())
            .unwrap_or_default()
    };
    let (mut v2, mut v1) = (None, Vec::new());
    for l in mounts.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let [_, at, kind, opts, ..] = f[..] else {
            continue;
        };
        let mount = PathBuf::from(at);
        let inside = |rel: String| {
            let p = mount.join(rel);
            if p.is_dir() { p } else { mount.clone() }
        };
        match kind {
            "cgroup2" => {
                v2 = Some(Hierarchy {
                    controllers: Vec::new(),
                    own: inside(own_path(None)),
                })
            }
            "cgroup" => {
                let controllers: Vec<String> = opts
                    .split(',')
                    .filter(|o| ["cpu", "cpuacct", "cpuset", "memory"].contains(o))
                    .map(String::from)
                    .collect();
                if let Some(first) = controllers.first() {
                    let own = inside(own_path(Some(first)));
                    v1.push(Hierarchy { controllers, own });
                }
            }
            _ => {}
        }
    }
    (v2, v1)
}

/// A list of cores as the kernel writes it (`0-3,6`).
pub fn parse_cores(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let num = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| format!("{s:?}: {x:?} is not a core number (e.g. \"0-1,3\")"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("{s:?}: the range {part:?} runs backwards"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        return Err(format!("{s:?} names no core"));
    }
    Ok(out)
}

/// What was applied, in one line (`0.5 CPU, 1.0 GiB, cores 1 (cgroup v1); hsbench on cores 0`).
pub fn describe(a: &Applied) -> String {
    let mut parts = Vec::new();
    if let Some(c) = a.cpus {
        parts.push(format!("{c} CPU"));
    }
    if let Some(m) = a.memory_bytes {
        parts.push(crate::util::fmt::fmt_bytes(m as f64));
    }
    parts.push(format!("cores {}", cores_text(&a.server_cores)));
    let how = match a.mechanism {
        Mechanism::CgroupV2 => "cgroup v2",
        Mechanism::CgroupV1 => "cgroup v1",
        Mechanism::Affinity => "CPU affinity only",
    };
    format!(
        "{} ({how}); hsbench on cores {}",
        parts.join(", "),
        cores_text(&a.generator_cores)
    )
}

fn cores_text(c: &[usize]) -> String {
    c.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

/// The cores this process may run on.
fn own_cores() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

fn cpu_set(cores: &[usize]) -> libc::cpu_set_t {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET only sets bits inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cores {
            libc::CPU_SET(c, &mut set);
        }
        set
    }
}

/// Every thread of this process onto `cores` (threads made later inherit it from their maker).
fn pin_own_threads(cores: &[usize]) {
    let set = cpu_set(cores);
    let tasks = std::fs::read_dir("/proc/self/task").into_iter().flatten();
    for t in tasks.flatten() {
        if let Ok(tid) = t.file_name().to_string_lossy().parse::<libc::pid_t>() {
            // SAFETY: sched_setaffinity on a thread of our own process with a valid set.
            unsafe {
                libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
            }
        }
    }
}

impl Confinement {
    /// Make the cgroups of `limits` for the server (`name`: unique per run), or fall back to
    /// affinity. `Ok(None)` when the limits ask for nothing.
    pub fn create(limits: &Limits, name: &str) -> Result<Option<Self>, LimitsError> {
        if limits.cpus.is_none() && limits.memory.is_none() && limits.cpuset.is_none() {
            return Ok(None);
        }
        let available = own_cores();
        let server_cores = match (&limits.cpuset, limits.cpus) {
            (Some(set), _) => {
                if let Some(c) = set.iter().find(|c| !available.contains(c)) {
                    return Err(LimitsError::Invalid(format!(
                        "cpuset core {c} is not one this process may use ({})",
                        cores_text(&available)
                    )));
                }
                set.clone()
            }
            (None, Some(cpus)) => {
                let n = (cpus.ceil() as usize).clamp(1, available.len());
                available[available.len() - n..].to_vec()
            }
            (None, None) => available.clone(),
        };
        let rest: Vec<usize> = available
            .iter()
            .copied()
            .filter(|c| !server_cores.contains(c))
            .collect();
        let mut notes = Vec::new();
        let generator_cores = if rest.is_empty() {
            notes.push(format!(
                "the server has every core hsbench may use ({}): the load generator shares them",
                cores_text(&available)
            ));
            available.clone()
        } else {
            rest
        };
        let mut c = Self {
            applied: Applied {
                mechanism: Mechanism::Affinity,
                cpus: None,
                memory_bytes: None,
                server_cores,
                generator_cores,
                cgroups: Vec::new(),
                notes,
            },
            procs: Vec::new(),
            dirs: Vec::new(),
            v2: false,
            own_affinity: None,
        };
        let made = match c.make_v2(limits, name) {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => c.make_v1(limits, name),
        };
        if let Err(e) = made {
            c.remove_dirs();
            c.applied.mechanism = Mechanism::Affinity;
            let mut not = Vec::new();
            if limits.cpus.is_some() {
                not.push("the CPU quota");
            }
            if limits.memory.is_some() {
                not.push("the memory limit");
            }
            c.applied.notes.push(format!(
                "no cgroup could be made ({e}): the server is pinned to its cores by affinity; {} not applied",
                if not.is_empty() { "nothing else".to_string() } else { not.join(" and ") }
            ));
        }
        if c.applied.generator_cores != available {
            c.own_affinity = Some(available);
            pin_own_threads(&c.applied.generator_cores);
        }
        Ok(Some(c))
    }

    /// cgroup v2, where hsbench's cgroup delegates the controllers the limits need to a child.
    fn make_v2(&mut self, limits: &Limits, name: &str) -> Result<bool, LimitsError> {
        let Some(h) = hierarchies().0 else {
            return Ok(false);
        };
        let parent = h.own;
        let enabled =
            std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
        let mut need = vec!["cpuset"];
        if limits.cpus.is_some() {
            need.push("cpu");
        }
        if limits.memory.is_some() {
            need.push("memory");
        }
        if !need
            .iter()
            .all(|n| enabled.split_whitespace().any(|e| e == *n))
        {
            return Ok(false);
        }
        reap_stale(&parent);
        let dir = parent.join(name);
        std::fs::create_dir(&dir).map_err(io(&dir))?;
        self.dirs.push(dir.clone());
        self.v2 = true;
        let write = |file: &str, v: String| {
            let p = dir.join(file);
            std::fs::write(&p, v).map_err(io(&p))
        };
        write("cpuset.cpus", cores_text(&self.applied.server_cores))?;
        self.read_back_cores(&dir);
        if let Some(cpus) = limits.cpus {
            write(
                "cpu.max",
                format!("{} 100000", (cpus * 100_000.0).round() as u64),
            )?;
            let back = std::fs::read_to_string(dir.join("cpu.max")).unwrap_or_default();
            let mut f = back.split_whitespace();
            if let (Some(q), Some(p)) = (
                f.next().and_then(|q| q.parse::<f64>().ok()),
                f.next().and_then(|p| p.parse::<f64>().ok()),
            ) {
                self.applied.cpus = Some(q / p);
            }
        }
        if let Some(m) = limits.memory {
            write("memory.max", m.to_string())?;
            write("memory.swap.max", "0".into()).ok();
            self.applied.memory_bytes = read_u64(&dir.join("memory.max"));
        }
        self.join(&dir);
        self.applied.mechanism = Mechanism::CgroupV2;
        Ok(true)
    }

    /// cgroup v1: a child of hsbench's cgroup in the `cpu`, `cpuset` and `memory` hierarchies.
    fn make_v1(&mut self, limits: &Limits, name: &str) -> Result<(), LimitsError> {
        let v1 = hierarchies().1;
        let find = |c: &str| {
            v1.iter()
                .find(|h| h.controllers.iter().any(|x| x == c))
                .cloned()
                .ok_or_else(|| {
                    LimitsError::Invalid(format!("no cgroup v1 hierarchy has the {c} controller"))
                })
        };
        let cpuset = find("cpuset")?;
        let cpu = limits.cpus.map(|_| find("cpu")).transpose()?;
        let memory = limits.memory.map(|_| find("memory")).transpose()?;
        // Controllers mounted together (`cpu,cpuset`) share one cgroup, joined once.
        let make = |s: &mut Self, h: &Hierarchy| -> Result<PathBuf, LimitsError> {
            let dir = h.own.join(name);
            if s.dirs.contains(&dir) {
                return Ok(dir);
            }
            reap_stale(&h.own);
            std::fs::create_dir(&dir).map_err(io(&dir))?;
            s.dirs.push(dir.clone());
            s.join(&dir);
            Ok(dir)
        };
        let write = |dir: &Path, file: &str, v: &str| {
            let p = dir.join(file);
            std::fs::write(&p, v).map_err(io(&p))
        };
        let dir = make(self, &cpuset)?;
        let mems =
            std::fs::read_to_string(cpuset.own.join("cpuset.mems")).unwrap_or_else(|_| "0".into());
        write(&dir, "cpuset.mems", mems.trim())?;
        write(&dir, "cpuset.cpus", &cores_text(&self.applied.server_cores))?;
        self.read_back_cores(&dir);
        if let (Some(h), Some(cpus)) = (&cpu, limits.cpus) {
            let dir = make(self, h)?;
            write(&dir, "cpu.cfs_period_us", "100000")?;
            write(
                &dir,
                "cpu.cfs_quota_us",
                &((cpus * 100_000.0).round() as u64).to_string(),
            )?;
            if let (Some(q), Some(p)) = (
                read_u64(&dir.join("cpu.cfs_quota_us")),
                read_u64(&dir.join("cpu.cfs_period_us")),
            ) {
                self.applied.cpus = Some(q as f64 / p as f64);
            }
        }
        if let (Some(h), Some(m)) = (&memory, limits.memory) {
            let dir = make(self, h)?;
            write(&dir, "memory.limit_in_bytes", &m.to_string())?;
            // No swap past the limit, where the kernel accounts it.
            write(&dir, "memory.memsw.limit_in_bytes", &m.to_string()).ok();
            self.applied.memory_bytes = read_u64(&dir.join("memory.limit_in_bytes"));
        }
        self.applied.mechanism = Mechanism::CgroupV1;
        Ok(())
    }

    /// The server's cores as the kernel holds them (`cpuset.cpus`).
    fn read_back_cores(&mut self, dir: &Path) {
        let back = std::fs::read_to_string(dir.join("cpuset.cpus")).unwrap_or_default();
        if let Ok(cores) = parse_cores(&back) {
            self.applied.server_cores = cores;
        }
    }

    fn join(&mut self, dir: &Path) {
        self.applied.cgroups.push(dir.display().to_string());
        let procs = dir.join("cgroup.procs");
        self.procs
            .push(CString::new(procs.as_os_str().as_encoded_bytes()).expect("a path has no NUL"));
    }

    /// Make `cmd`'s process join the server's cgroups (its children inherit them) or, with
    /// affinity only, run on the server's cores.
    pub fn confine(&self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        let procs = self.procs.clone();
        let set = cpu_set(&self.applied.server_cores);
        // SAFETY: between fork and exec only async-signal-safe calls: open, write, close and
        // sched_setaffinity on buffers made before the fork.
        unsafe {
            cmd.pre_exec(move || {
                for p in &procs {
                    let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // "0": the writing process itself.
                    let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                    libc::close(fd);
                    if n != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
                Ok(())
            });
        }
    }

    /// Move the running processes of the process groups `pgids` (a private PostgreSQL cluster,
    /// started before the limits) into the server's cgroups, or onto its cores; the processes
    /// they start later inherit them. Scanned until no member is new (a postmaster forks while
    /// it is moved). Returns how many processes moved.
    pub fn adopt(&self, pgids: &[i32]) -> Result<usize, LimitsError> {
        let set = cpu_set(&self.applied.server_cores);
        let mut moved: Vec<i32> = Vec::new();
        for _ in 0..5 {
            let new: Vec<i32> = group_members(pgids)
                .into_iter()
                .filter(|p| !moved.contains(p))
                .collect();
            if new.is_empty() {
                break;
            }
            for &pid in &new {
                for d in &self.dirs {
                    let path = d.join("cgroup.procs");
                    match std::fs::write(&path, pid.to_string()) {
                        Ok(()) => {}
                        // It ended meanwhile.
                        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                        Err(e) => return Err(io(&path)(e)),
                    }
                }
                // SAFETY: sched_setaffinity of another process with a valid set; a process
                // that ended meanwhile makes it fail, which changes nothing.
                unsafe {
                    libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set);
                }
            }
            moved.extend(new);
        }
        Ok(moved.len())
    }

    /// The kernel's counters for the server's cgroups so far (zero under affinity).
    pub fn throttling(&self) -> Throttling {
        let mut t = Throttling::default();
        for d in &self.dirs {
            if let Ok(stat) = std::fs::read_to_string(d.join("cpu.stat")) {
                for l in stat.lines() {
                    let mut f = l.split_whitespace();
                    let (Some(k), Some(v)) =
                        (f.next(), f.next().and_then(|v| v.parse::<u64>().ok()))
                    else {
                        continue;
                    };
                    match k {
                        "nr_periods" => t.periods = v,
                        "nr_throttled" => t.throttled_periods = v,
                        "throttled_time" => t.throttled_s = v as f64 / 1e9,
                        "throttled_usec" => t.throttled_s = v as f64 / 1e6,
                        _ => {}
                    }
                }
            }
            if self.v2 {
                let events = std::fs::read_to_string(d.join("memory.events")).unwrap_or_default();
                for l in events.lines() {
                    match l.split_once(' ') {
                        Some(("max", v)) => t.memory_limit_hits = v.trim().parse().unwrap_or(0),
                        Some(("oom_kill", v)) => t.oom_kills = v.trim().parse().unwrap_or(0),
                        _ => {}
                    }
                }
                t.memory_peak_bytes = t.memory_peak_bytes.or(read_u64(&d.join("memory.peak")));
            } else if d.join("memory.failcnt").is_file() {
                // Charges refused at the limit, of memory or (with swap accounted) of memory
                // and swap together.
                t.memory_limit_hits = read_u64(&d.join("memory.failcnt"))
                    .unwrap_or(0)
                    .max(read_u64(&d.join("memory.memsw.failcnt")).unwrap_or(0));
                t.memory_peak_bytes = read_u64(&d.join("memory.max_usage_in_bytes"));
                let oom = std::fs::read_to_string(d.join("memory.oom_control")).unwrap_or_default();
                t.oom_kills = oom
                    .lines()
                    .find_map(|l| l.strip_prefix("oom_kill "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
            }
        }
        t
    }

    /// Where hsbench's threads may run now, against the server's cores.
    pub fn generator_check(&self) -> GeneratorCheck {
        let mut c = GeneratorCheck::default();
        for t in std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(status) = std::fs::read_to_string(t.path().join("status")) else {
                continue;
            };
            let Some(allowed) = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .and_then(|l| parse_cores(l).ok())
            else {
                continue;
            };
            c.threads += 1;
            if allowed
                .iter()
                .any(|a| self.applied.server_cores.contains(a))
            {
                c.on_server_cores += 1;
            }
        }
        c
    }

    /// The processes in the server's cgroups now.
    pub fn pids(&self) -> Vec<i32> {
        members(&self.dirs)
    }

    fn remove_dirs(&mut self) {
        for d in self.dirs.drain(..).rev() {
            let _ = std::fs::remove_dir(&d);
        }
        self.procs.clear();
        self.applied.cgroups.clear();
    }
}

/// The processes whose process group is one of `pgids`.
fn group_members(pgids: &[i32]) -> Vec<i32> {
    if pgids.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`: comm may hold spaces and parentheses.
        let pgrp = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2))
            .and_then(|g| g.parse::<i32>().ok());
        if pgrp.is_some_and(|g| pgids.contains(&g)) {
            out.push(pid);
        }
    }
    out
}

/// The prefix of the cgroups hsbench makes: `hsbench-<pid>-<run>`.
const PREFIX: &str = "hsbench-";

/// The name of a run's cgroups: hsbench's pid (a later hsbench removes the cgroups of one
/// that died without removing its own) and the run's id.
pub fn cgroup_name(run_id: &str) -> String {
    let run: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{PREFIX}{}-{run}", std::process::id())
}

/// Remove the cgroups under `parent` left by an hsbench that is no longer running (killed
/// before its cleanup), after killing what is left in them.
fn reap_stale(parent: &Path) {
    for e in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = e.path();
        kill_members(std::slice::from_ref(&dir));
        let _ = std::fs::remove_dir(&dir);
    }
}

/// The processes in the cgroups `dirs`.
fn members(dirs: &[PathBuf]) -> Vec<i32> {
    let mut out: Vec<i32> = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// SIGKILL what is left in the cgroups `dirs` (a cgroup with members cannot be removed), and
/// wait up to a second for them to leave.
fn kill_members(dirs: &[PathBuf]) {
    for _ in 0..50 {
        let left = members(dirs);
        if left.is_empty() {
            break;
        }
        for p in left {
            // SAFETY: kill(2) of a process in a cgroup hsbench made for a server.
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

impl Drop for Confinement {
    fn drop(&mut self) {
        // A process left in the cgroups (a server that outlived its group) is killed: a cgroup
        // with members cannot be removed.
        kill_members(&self.dirs);
        self.remove_dirs();
        if let Some(cores) = self.own_affinity.take() {
            pin_own_threads(&cores);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_lists_parse_as_the_kernel_writes_them() {
        assert_eq!(parse_cores("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_cores("1").unwrap(), vec![1]);
        assert!(parse_cores("2-1").unwrap_err().contains("backwards"));
        assert!(parse_cores("x").unwrap_err().contains("not a core number"));
    }
}
