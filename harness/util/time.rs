//! Clocks and instants: the monotonic clock perf stamps with, release instants.

/// CLOCK_MONOTONIC now, in seconds (the clock `perf record -k CLOCK_MONOTONIC` stamps with).
pub fn monotonic_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// `--release-at`: RFC 3339 (`2026-11-23T22:30:00Z`) or Unix seconds (`1795473000.5`).
pub fn parse_release_at(text: &str) -> Result<std::time::SystemTime, String> {
    if let Ok(secs) = text.trim().parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Ok(std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(secs));
    }
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&chrono::Utc).into())
        .map_err(|e| {
            format!(
                "--release-at {text:?}: {e}; write RFC 3339 (2026-11-23T22:30:00Z) or Unix seconds"
            )
        })
}
