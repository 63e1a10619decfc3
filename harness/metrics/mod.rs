//! Measurements: HDR latency histograms and their summaries, and resource samples of a process
//! group read from /proc.

pub mod catalogue;
pub mod machine;
pub mod noise;

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
#[derive(
    Debug, Clone, Default, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
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

/// Read a histogram written by [`write_histogram`] (`.hist`, HDR V2 with or without DEFLATE).
/// Read a V2 histogram file; the error says what is wrong, the caller names the path.
pub fn read_histogram(path: &Path) -> std::io::Result<Histogram<u64>> {
    let bytes = std::fs::read(path)?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| std::io::Error::other(format!("not an HDR histogram (V2): {e:?}")))
}

/// Latencies over time: one histogram per fixed interval, by when each request *ended*.
/// Bounded: at most `max_intervals`; later completions land in the last interval.
#[derive(Debug, Clone)]
pub struct IntervalSeries {
    pub interval: Duration,
    pub hists: Vec<Histogram<u64>>,
    max_intervals: usize,
}

impl IntervalSeries {
    pub fn new(interval: Duration, max_intervals: usize) -> Self {
        assert!(!interval.is_zero() && max_intervals > 0);
        Self {
            interval,
            hists: Vec::new(),
            max_intervals,
        }
    }

    /// A round interval that splits `span` into about `target` intervals (10 ms to 10 s).
    pub fn interval_for(span: Duration, target: u32) -> Duration {
        let want = span.as_secs_f64() * 1000.0 / target.max(1) as f64;
        let steps = [10u64, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000];
        let ms = steps
            .iter()
            .copied()
            .find(|&s| s as f64 >= want)
            .unwrap_or(10_000);
        Duration::from_millis(ms)
    }

    /// Record a latency (µs) of a request that ended `at` after the series' start.
    pub fn record(&mut self, at: Duration, latency_us: u64) {
        let i = ((at.as_nanos() / self.interval.as_nanos()) as usize).min(self.max_intervals - 1);
        while self.hists.len() <= i {
            self.hists.push(new_latency_histogram());
        }
        let _ = self.hists[i].record(latency_us.max(1));
    }

    /// Add another series of the same interval length, interval by interval.
    pub fn merge(&mut self, other: &IntervalSeries) {
        if other.hists.is_empty() {
            return;
        }
        debug_assert_eq!(self.interval, other.interval);
        while self.hists.len() < other.hists.len() {
            self.hists.push(new_latency_histogram());
        }
        for (a, b) in self.hists.iter_mut().zip(&other.hists) {
            let _ = a.add(b);
        }
    }

    /// Total count over all intervals.
    pub fn count(&self) -> u64 {
        self.hists.iter().map(|h| h.len()).sum()
    }
}

/// One interval of an interval log, summarized.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalPoint {
    pub tag: String,
    /// Seconds since the log's base time (the workload's start).
    pub start_s: f64,
    pub duration_s: f64,
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Write an HdrHistogram interval log (`.hlog`, the format of the Java `HistogramLogWriter`,
/// readable by HdrHistogram's log processors): one tagged histogram per interval and series,
/// timestamps in seconds since `base` (the workload's start, also written as StartTime).
pub fn write_interval_log(
    path: &Path,
    base: std::time::SystemTime,
    comment: &str,
    series: &[(&str, &IntervalSeries)],
) -> std::io::Result<()> {
    use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
    let mut buf = Vec::new();
    {
        let mut ser = V2DeflateSerializer::new();
        let mut w = IntervalLogWriterBuilder::new()
            .add_comment(comment)
            .add_comment("values in microseconds; intervals by completion time")
            .with_start_time(base)
            .with_base_time(base)
            .begin_log_with(&mut buf, &mut ser)?;
        let n = series.iter().map(|(_, s)| s.hists.len()).max().unwrap_or(0);
        for i in 0..n {
            for (tag, s) in series {
                let Some(h) = s.hists.get(i) else { continue };
                let start = s.interval * i as u32;
                w.write_histogram(h, start, s.interval, Tag::new(tag))
                    .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
            }
        }
    }
    crate::util::fs::write_atomic(path, &buf)
}

/// Read an interval log written by [`write_interval_log`].
pub fn read_interval_log(path: &Path) -> std::io::Result<Vec<IntervalPoint>> {
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(read_interval_histograms(path)?
        .into_iter()
        .map(|(tag, start_s, duration_s, h)| IntervalPoint {
            tag,
            start_s,
            duration_s,
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        })
        .collect())
}

/// One entry of an interval log: tag, start (s after the base time), duration (s), histogram.
pub type IntervalEntry = (String, f64, f64, Histogram<u64>);

/// The histograms of an interval log, entry by entry.
pub fn read_interval_histograms(path: &Path) -> std::io::Result<Vec<IntervalEntry>> {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let bytes = std::fs::read(path)?;
    let mut out = Vec::new();
    let mut de = hdrhistogram::serialization::Deserializer::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry =
            entry.map_err(|e| std::io::Error::other(format!("{}: {e:?}", path.display())))?;
        if let LogEntry::Interval(ih) = entry {
            use base64::Engine;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(ih.encoded_histogram())
                .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
            let h: Histogram<u64> = de
                .deserialize(&mut raw.as_slice())
                .map_err(|e| std::io::Error::other(format!("not an HDR histogram (V2): {e:?}")))?;
            out.push((
                ih.tag().map(|t| t.as_str().to_string()).unwrap_or_default(),
                ih.start_timestamp().as_secs_f64(),
                ih.duration().as_secs_f64(),
                h,
            ));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Resources of a process group, from /proc
// ---------------------------------------------------------------------------------------------

/// One sample of a process group's resources.
#[derive(Debug, Clone, Copy, Default, schemars::JsonSchema, serde::Serialize)]
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

/// Read the samples a boot wrote to `<label>.resources.csv`.
pub fn read_samples_csv(path: &Path) -> std::io::Result<Vec<ResourceSample>> {
    let text = std::fs::read_to_string(path)?;
    let bad = |line: usize| {
        std::io::Error::other(format!("{}:{line}: not a resource sample", path.display()))
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 9 {
            return Err(bad(i + 1));
        }
        let fl = |k: usize| f[k].parse::<f64>().map_err(|_| bad(i + 1));
        let int = |k: usize| f[k].parse::<u64>().map_err(|_| bad(i + 1));
        out.push(ResourceSample {
            t_ms: fl(0)?,
            processes: int(1)? as u32,
            cpu_user_s: fl(2)?,
            cpu_sys_s: fl(3)?,
            rss_bytes: int(4)?,
            fds: int(5)?,
            threads: int(6)?,
            read_bytes: int(7)?,
            write_bytes: int(8)?,
        });
    }
    Ok(out)
}

/// CPU use between consecutive samples, as (ms, % of one core) at each later sample.
pub fn cpu_percent<'a>(samples: impl IntoIterator<Item = &'a ResourceSample>) -> Vec<(f64, f64)> {
    let v: Vec<&ResourceSample> = samples.into_iter().collect();
    v.windows(2)
        .map(|w| {
            let dt = (w[1].t_ms - w[0].t_ms) / 1000.0;
            let used = (w[1].cpu_user_s + w[1].cpu_sys_s) - (w[0].cpu_user_s + w[0].cpu_sys_s);
            (w[1].t_ms, if dt > 0.0 { 100.0 * used / dt } else { 0.0 })
        })
        .collect()
}

/// Peaks and totals over a window of samples.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    schemars::JsonSchema,
    serde::Serialize,
    serde::Deserialize,
    PartialEq,
)]
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
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    schemars::JsonSchema,
    serde::Serialize,
    serde::Deserialize,
    PartialEq,
)]
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
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    schemars::JsonSchema,
    serde::Serialize,
    serde::Deserialize,
    PartialEq,
)]
pub struct SelfUsage {
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    pub max_rss_bytes: u64,
}

/// Raise this process's soft limit on open files to its hard limit (thousands of client
/// connections need thousands of descriptors). Returns (soft before, soft after).
pub fn raise_nofile_limit() -> (u64, u64) {
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return (0, 0);
    }
    let before = lim.rlim_cur as u64;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return (before, before);
        }
    }
    (before, lim.rlim_cur as u64)
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
    fn nofile_limit_is_raised_to_the_hard_limit() {
        let (_, after) = raise_nofile_limit();
        let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(after, lim.rlim_max as u64);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
    }

    #[test]
    fn interval_log_round_trips_every_count() {
        let mut c = IntervalSeries::new(Duration::from_millis(100), 5);
        for i in 0..50u64 {
            c.record(Duration::from_millis(i * 13), 1000 + i * 100);
        }
        // Past the last interval: kept in the last one, never dropped.
        c.record(Duration::from_secs(60), 7);
        assert_eq!(c.hists.len(), 5);
        assert_eq!(c.count(), 51);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.hlog");
        write_interval_log(
            &p,
            std::time::SystemTime::now(),
            "test",
            &[("corrected", &c)],
        )
        .unwrap();
        let back = read_interval_log(&p).unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back.iter().map(|p| p.count).sum::<u64>(), 51);
        assert!(
            back.iter()
                .all(|p| p.tag == "corrected" && p.duration_s == 0.1)
        );
        assert_eq!(back[1].start_s, 0.1);
        // 0..99 ms holds i = 0..7 (0, 13, …, 91 ms): max 1.7 ms.
        assert_eq!(back[0].count, 8);
        assert!((back[0].max_ms - 1.7).abs() < 0.01, "{}", back[0].max_ms);
        assert_eq!(
            IntervalSeries::interval_for(Duration::from_secs(3), 30),
            Duration::from_millis(100)
        );
        assert_eq!(
            IntervalSeries::interval_for(Duration::from_millis(40), 30),
            Duration::from_millis(10)
        );
    }

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
