//! Microsecond-precise waits inside a tokio runtime.
//!
//! tokio's timer wheel has millisecond ticks: `sleep_until(t)` wakes up to a millisecond after
//! `t`, which at a fixed rate of thousands of requests per second would put the generator's own
//! lateness into every coordinated-omission-corrected latency. A separate clock thread wakes on
//! time but, on a loaded core, preempts the runtime thread for every request. A Linux `timerfd`
//! is the third way: an hrtimer whose expiry makes the runtime's own epoll wake, so the wait
//! is precise to microseconds and costs no extra thread or context switch.
//!
//! Elsewhere (or if the timerfd cannot be made) [`PreciseTimer`] falls back to tokio's timer.

use std::time::{Duration, Instant};

/// One reusable precise timer; one per task that waits.
pub struct PreciseTimer {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<linux::TimerFd>>,
}

impl PreciseTimer {
    /// Must be called inside a tokio runtime with IO enabled.
    pub fn new() -> Self {
        Self {
            #[cfg(target_os = "linux")]
            fd: linux::TimerFd::new().ok().and_then(|t| {
                // SAFETY: a TimerFd owns its fd for its whole life and always returns that fd
                // from as_raw_fd, as `register` requires.
                unsafe {
                    tokio::io::unix::AsyncFd::register_with_interest(
                        t,
                        tokio::io::Interest::READABLE,
                    )
                }
                .ok()
            }),
        }
    }

    /// Whether waits are precise (a timerfd), not tokio's millisecond ticks.
    pub fn is_precise(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            self.fd.is_some()
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }

    /// Wait until `deadline` (returns at once if it has passed).
    pub async fn sleep_until(&mut self, deadline: Instant) {
        let now = Instant::now();
        if deadline <= now {
            return;
        }
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd
            && fd.get_ref().arm(deadline - now).is_ok()
        {
            loop {
                let Ok(mut guard) = fd.readable().await else {
                    break;
                };
                match guard.try_io(|inner| inner.get_ref().read()) {
                    Ok(Ok(_expiries)) => return,
                    // A failing timerfd: finish the wait on tokio's timer.
                    Ok(Err(_)) => break,
                    Err(_would_block) => continue,
                }
            }
        }
        tokio::time::sleep_until(deadline.into()).await;
    }

    /// Wait for `d`.
    pub async fn sleep(&mut self, d: Duration) {
        self.sleep_until(Instant::now() + d).await;
    }
}

impl Default for PreciseTimer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::time::Duration;

    pub struct TimerFd(OwnedFd);

    impl TimerFd {
        pub fn new() -> std::io::Result<Self> {
            // SAFETY: timerfd_create has no preconditions; a non-negative result is a new fd
            // that nothing else owns.
            let fd = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: `fd` was just created and is owned by no one else.
            Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
        }

        /// One expiry after `d` (at least 1 ns: a zero value would disarm it).
        pub fn arm(&self, d: Duration) -> std::io::Result<()> {
            let d = d.max(Duration::from_nanos(1));
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: d.as_secs() as libc::time_t,
                    tv_nsec: d.subsec_nanos() as libc::c_long,
                },
            };
            // SAFETY: the fd is a timerfd we own; `spec` is a valid itimerspec; the old value
            // may be null.
            let r = unsafe {
                libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut())
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        }

        /// Consume the expiry count; `WouldBlock` while not expired.
        pub fn read(&self) -> std::io::Result<u64> {
            let mut buf = [0u8; 8];
            // SAFETY: reading 8 bytes into an 8-byte buffer from a timerfd we own.
            let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(u64::from_ne_bytes(buf))
        }
    }

    impl AsRawFd for TimerFd {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_raw_fd()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A precise wait never returns early. (How late it wakes is a figure, not a test: the
    /// machine is shared; `http-load` reports it as `send_lag`.)
    #[tokio::test(flavor = "current_thread")]
    async fn never_wakes_before_the_deadline() {
        let mut t = PreciseTimer::new();
        assert!(t.is_precise() || !cfg!(target_os = "linux"));
        let start = Instant::now();
        let step = Duration::from_micros(200);
        for i in 1..=200u32 {
            let due = start + step * i;
            t.sleep_until(due).await;
            let now = Instant::now();
            assert!(now >= due, "woke {:?} early", due - now);
        }
        t.sleep(Duration::from_micros(50)).await;
        // A passed deadline returns at once.
        t.sleep_until(start).await;
    }
}
