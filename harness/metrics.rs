//! Measurements: HDR latency histograms and their summaries, and resource samples of a process
//! group read from /proc.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};

/// Latencies are recorded in microseconds, 1 µs to 1 hour, 3 significant digits.
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            min_ms: ms(h.min()),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// HdrHistogram's percentile-distribution text (`.hgrm`), values in milliseconds, the format
/// the Java tools and the online plotter read.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    out.push_str("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    if !h.is_empty() {
        let mut cumulative = 0u64;
        for v in h.iter_quantiles(5) {
            cumulative += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let value_ms = v.value_iterated_to() as f64 / 1000.0;
            if q < 1.0 {
                out.push_str(&format!(
                    "{value_ms:12.3} {q:14.12} {cumulative:10} {:14.2}\n",
                    1.0 / (1.0 - q)
                ));
            } else {
                out.push_str(&format!("{value_ms:12.3} {q:14.12} {cumulative:10}\n"));
            }
        }
    }
    out.push_str(&format!(
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]\n",
        h.mean() / 1000.0,
        h.stdev() / 1000.0
    ));
    out.push_str(&format!(
        "#[Max     = {:12.3}, Total count    = {:12}]\n",
        h.max() as f64 / 1000.0,
        h.len()
    ));
    out.push_str(&format!(
        "#[Buckets = {:12}, SubBuckets     = {:12}]\n",
        h.buckets(),
        (2 * 10u64.pow(h.sigfig() as u32)).next_power_of_two()
    ));
    out
}

/// Write `<stem>.hgrm` (text) and `<stem>.hist` (HDR V2 + DEFLATE, mergeable with other runs).
pub fn write_histogram(dir: &Path, stem: &str, h: &Histogram<u64>) -> std::io::Result<()> {
    std::fs::write(dir.join(format!("{stem}.hgrm")), hgrm(h))?;
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    std::fs::File::create(dir.join(format!("{stem}.hist")))?.write_all(&buf)
}

// ---------------------------------------------------------------------------------------------
// Resources of a process group, from /proc
// ---------------------------------------------------------------------------------------------

/// One sample of a process group's resources.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ResourceSample {
    /// Milliseconds since the server was spawned.
    pub t_ms: f64,
    pub processes: u32,
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    pub rss_bytes: u64,
    pub fds: u64,
    pub threads: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
}

/// Peaks and totals over a window of samples.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ResourceSummary {
    pub samples: u64,
    /// Most processes seen at once (the server's, plus a private database's).
    #[serde(default)]
    pub peak_processes: u32,
    pub peak_rss_bytes: u64,
    pub peak_fds: u64,
    pub peak_threads: u64,
    /// CPU seconds used (user, system) by the group up to the last sample.
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    /// Bytes the group read from / wrote to storage up to the last sample.
    pub read_bytes: u64,
    pub write_bytes: u64,
}

impl ResourceSummary {
    pub fn of(samples: &[ResourceSample]) -> Self {
        let mut s = Self {
            samples: samples.len() as u64,
            ..Self::default()
        };
        for x in samples {
            s.peak_processes = s.peak_processes.max(x.processes);
            s.peak_rss_bytes = s.peak_rss_bytes.max(x.rss_bytes);
            s.peak_fds = s.peak_fds.max(x.fds);
            s.peak_threads = s.peak_threads.max(x.threads);
            s.cpu_user_s = s.cpu_user_s.max(x.cpu_user_s);
            s.cpu_sys_s = s.cpu_sys_s.max(x.cpu_sys_s);
            s.read_bytes = s.read_bytes.max(x.read_bytes);
            s.write_bytes = s.write_bytes.max(x.write_bytes);
        }
        s
    }
}

/// Resources used during one window `[from_ms, to_ms]` of a boot, from the samples around it
/// (10 Hz: windows shorter than the interval are approximate).
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct WindowResources {
    pub cpu_s: f64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub peak_rss_bytes: u64,
}

impl WindowResources {
    pub fn of(samples: &[ResourceSample], from_ms: f64, to_ms: f64) -> Self {
        // The last sample at or before the window's start, and the first at or after its end.
        let before = samples.iter().rev().find(|s| s.t_ms <= from_ms);
        let after = samples.iter().find(|s| s.t_ms >= to_ms).or(samples.last());
        let zero = ResourceSample::default();
        let (a, b) = (before.unwrap_or(&zero), after.unwrap_or(&zero));
        let peak = samples
            .iter()
            .filter(|s| s.t_ms >= from_ms && s.t_ms <= to_ms)
            .chain(after)
            .map(|s| s.rss_bytes)
            .max()
            .unwrap_or(0);
        Self {
            cpu_s: ((b.cpu_user_s + b.cpu_sys_s) - (a.cpu_user_s + a.cpu_sys_s)).max(0.0),
            read_bytes: b.read_bytes.saturating_sub(a.read_bytes),
            write_bytes: b.write_bytes.saturating_sub(a.write_bytes),
            peak_rss_bytes: peak,
        }
    }
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_PAGESIZE) }) as u64
}

/// Sum the resources of every process whose process group is `pgid`.
pub fn sample_group(pgid: i32, t_ms: f64) -> ResourceSample {
    sample_groups(&[pgid], t_ms)
}

/// Sum the resources of every process in any of these process groups (the server's, and its
/// private database's).
pub fn sample_groups(pgids: &[i32], t_ms: f64) -> ResourceSample {
    let tck = clk_tck();
    let page = page_size();
    let mut s = ResourceSample {
        t_ms,
        ..Default::default()
    };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return s;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // Fields counted from `state` (field 3 of proc(5)).
        if f.len() < 22 || !f[2].parse::<i32>().is_ok_and(|g| pgids.contains(&g)) {
            continue;
        }
        let num = |i: usize| f[i].parse::<u64>().unwrap_or(0);
        s.processes += 1;
        s.cpu_user_s += num(11) as f64 / tck;
        s.cpu_sys_s += num(12) as f64 / tck;
        s.threads += num(17);
        s.rss_bytes += num(21) * page;
        if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            s.fds += fds.count() as u64;
        }
        if let Ok(io) = std::fs::read_to_string(format!("/proc/{pid}/io")) {
            for line in io.lines() {
                if let Some(v) = line.strip_prefix("read_bytes: ") {
                    s.read_bytes += v.trim().parse::<u64>().unwrap_or(0);
                } else if let Some(v) = line.strip_prefix("write_bytes: ") {
                    s.write_bytes += v.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    s
}

/// Samples a process group every `interval` on a blocking thread until stopped.
pub struct ResourceSampler {
    samples: Arc<Mutex<Vec<ResourceSample>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl ResourceSampler {
    /// Start sampling `pgid`; `t0` is the spawn instant; at most `max_samples` are kept
    /// (bounded: at 10 Hz, an hour is 36,000 samples).
    pub fn start(pgids: Vec<i32>, t0: Instant, interval: Duration, max_samples: usize) -> Self {
        let samples = Arc::new(Mutex::new(Vec::with_capacity(1024)));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s2, stop2) = (samples.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name("hsbench-sampler".into())
            .spawn(move || {
                let mut next = Instant::now();
                while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                    let x = sample_groups(&pgids, t0.elapsed().as_secs_f64() * 1000.0);
                    {
                        let mut v = s2.lock().expect("sampler lock");
                        if x.processes > 0 && v.len() < max_samples {
                            v.push(x);
                        }
                    }
                    next += interval;
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else {
                        next = now;
                    }
                }
            })
            .expect("spawn sampler thread");
        Self {
            samples,
            stop,
            handle: Some(handle),
        }
    }

    /// Samples so far.
    pub fn snapshot(&self) -> Vec<ResourceSample> {
        self.samples.lock().expect("sampler lock").clone()
    }

    /// Stop and return every sample.
    pub fn finish(mut self) -> Vec<ResourceSample> {
        self.stop_thread();
        std::mem::take(&mut *self.samples.lock().expect("sampler lock"))
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for ResourceSampler {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// hsbench's own CPU seconds (user, system) and peak RSS, from getrusage.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct SelfUsage {
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    pub max_rss_bytes: u64,
}

pub fn self_usage() -> SelfUsage {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    SelfUsage {
        cpu_user_s: tv(ru.ru_utime),
        cpu_sys_s: tv(ru.ru_stime),
        max_rss_bytes: ru.ru_maxrss as u64 * 1024,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_hgrm_agree_with_the_histogram() {
        let mut h = new_latency_histogram();
        for ms in 1..=1000u64 {
            h.record(ms * 1000).unwrap();
        }
        let s = LatencySummary::of(&h);
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99_ms - 990.0).abs() < 1.5, "{s:?}");
        assert!((s.max_ms - 1000.0).abs() < 1.0, "{s:?}");
        let text = hgrm(&h);
        assert!(text.starts_with("       Value     Percentile"));
        assert!(text.contains("Total count    =         1000"), "{text}");
    }

    #[test]
    fn hist_file_roundtrips_and_merges() {
        use hdrhistogram::serialization::Deserializer;
        let dir = tempfile::tempdir().unwrap();
        let mut a = new_latency_histogram();
        a.record(1500).unwrap();
        a.record(2500).unwrap();
        write_histogram(dir.path(), "x", &a).unwrap();
        let bytes = std::fs::read(dir.path().join("x.hist")).unwrap();
        let back: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .unwrap();
        assert_eq!(back, a);
        let mut merged = new_latency_histogram();
        merged.add(&back).unwrap();
        merged.add(&back).unwrap();
        assert_eq!(merged.len(), 4);
    }

    #[test]
    fn window_resources_take_deltas_around_the_window() {
        let at = |t_ms: f64, cpu: f64, read: u64, rss: u64| ResourceSample {
            t_ms,
            cpu_user_s: cpu,
            read_bytes: read,
            rss_bytes: rss,
            processes: 1,
            ..Default::default()
        };
        let s = [
            at(0.0, 0.0, 0, 10),
            at(100.0, 0.1, 100, 50),
            at(200.0, 0.3, 400, 40),
            at(300.0, 0.3, 400, 20),
        ];
        let w = WindowResources::of(&s, 100.0, 200.0);
        assert!((w.cpu_s - 0.2).abs() < 1e-9);
        assert_eq!((w.read_bytes, w.peak_rss_bytes), (300, 50));
        let w = WindowResources::of(&s, 150.0, 1000.0);
        assert!((w.cpu_s - 0.2).abs() < 1e-9, "{w:?}");
    }

    #[test]
    fn samples_own_process_group() {
        // SAFETY: getpgrp has no preconditions.
        let pgid = unsafe { libc::getpgrp() };
        let s = sample_group(pgid, 0.0);
        assert!(s.processes >= 1);
        assert!(s.rss_bytes > 0 && s.threads >= 1 && s.fds >= 1, "{s:?}");
    }
}
