//! Open-model arrivals: when each request of a workload is *meant* to start.
//!
//! A closed-loop client (send, wait, send) slows down with the server and so under-reports
//! exactly the latency users feel when it is slow: coordinated omission. In an open model the
//! schedule is fixed in advance, request `i` is due at `intended(i)` whether or not earlier
//! ones have finished, and its latency is counted from that instant (corrected) as well as from
//! the moment it was actually sent (raw). The two are recorded in separate histograms.
//!
//! Nothing here allocates per request: `intended` is a closed form of the index.

use std::time::Duration;

/// An arrival-rate profile.
#[derive(
    Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Arrivals {
    /// `rate` requests per second, evenly spaced.
    Constant { rate: f64 },
    /// From `from` to `to` requests per second, linearly over `over_s` seconds, then `to`.
    Ramp { from: f64, to: f64, over_s: f64 },
}

impl std::fmt::Display for Arrivals {
    /// As a user reads it: `5 messages/s`, `1 → 20 messages/s over 60 s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Arrivals::Constant { rate } => write!(f, "{rate} messages/s"),
            Arrivals::Ramp { from, to, over_s } => {
                write!(f, "{from} → {to} messages/s over {over_s} s")
            }
        }
    }
}

impl Arrivals {
    /// The intended start of request `i` (0-based), after the workload's start.
    pub fn intended(&self, i: u64) -> Duration {
        let n = i as f64;
        let secs = match *self {
            Arrivals::Constant { rate } => n / rate,
            Arrivals::Ramp { from, to, over_s } => {
                // Requests due by t (t ≤ T): N(t) = from·t + (to − from)·t² / (2T).
                let slope = (to - from) / over_s;
                let at_end = from * over_s + slope * over_s * over_s / 2.0;
                if n <= at_end {
                    if slope.abs() < 1e-12 {
                        n / from
                    } else {
                        // Solve slope/2·t² + from·t − n = 0 for the positive root, in a form
                        // that stays exact when `from` is 0.
                        2.0 * n / (from + (from * from + 2.0 * slope * n).sqrt())
                    }
                } else {
                    over_s + (n - at_end) / to
                }
            }
        };
        Duration::from_secs_f64(secs.max(0.0))
    }

    /// How many requests are due within `span` (for sizing and reports).
    pub fn due_within(&self, span: Duration) -> u64 {
        let t = span.as_secs_f64();
        let n = match *self {
            Arrivals::Constant { rate } => rate * t,
            Arrivals::Ramp { from, to, over_s } => {
                let slope = (to - from) / over_s;
                if t <= over_s {
                    from * t + slope * t * t / 2.0
                } else {
                    from * over_s + slope * over_s * over_s / 2.0 + to * (t - over_s)
                }
            }
        };
        n.ceil().max(0.0) as u64
    }
}

/// One request's timing: `intended` from the schedule, `sent` when a connection actually took
/// it, `done` when its response ended; all as offsets from the workload's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub intended: Duration,
    pub sent: Duration,
    pub done: Duration,
}

impl Timing {
    /// From the intended start: what a user of an open system waits (coordinated-omission
    /// corrected).
    pub fn corrected(&self) -> Duration {
        self.done.saturating_sub(self.intended)
    }
    /// From the actual send: what the server took once it had the request.
    pub fn raw(&self) -> Duration {
        self.done.saturating_sub(self.sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_read_as_a_user_writes_them() {
        assert_eq!(Arrivals::Constant { rate: 5.0 }.to_string(), "5 messages/s");
        let r = Arrivals::Ramp {
            from: 1.0,
            to: 20.5,
            over_s: 60.0,
        };
        assert_eq!(r.to_string(), "1 → 20.5 messages/s over 60 s");
    }
    use crate::metrics::new_latency_histogram;

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let a = Arrivals::Constant { rate: 200.0 };
        assert_eq!(a.intended(0), Duration::ZERO);
        assert_eq!(a.intended(1), Duration::from_millis(5));
        assert_eq!(a.intended(1000), Duration::from_secs(5));
        assert_eq!(a.due_within(Duration::from_secs(5)), 1000);
    }

    #[test]
    fn ramp_follows_the_integral_of_its_rate() {
        // 0 → 100/s over 10 s: 500 requests by t = 10 s, then 100/s.
        let a = Arrivals::Ramp {
            from: 0.0,
            to: 100.0,
            over_s: 10.0,
        };
        let close = |d: Duration, s: f64| (d.as_secs_f64() - s).abs() < 1e-9;
        assert!(close(a.intended(500), 10.0));
        // N(t) = 5 t² → request 125 is due at t = 5 s.
        assert!(close(a.intended(125), 5.0));
        assert!(close(a.intended(600), 11.0));
        assert_eq!(a.due_within(Duration::from_secs(10)), 500);
        // Intended times never go backwards.
        let mut last = Duration::ZERO;
        for i in 0..2000 {
            let t = a.intended(i);
            assert!(t >= last);
            last = t;
        }
        // A flat "ramp" is a constant rate.
        let flat = Arrivals::Ramp {
            from: 50.0,
            to: 50.0,
            over_s: 4.0,
        };
        assert!(close(flat.intended(100), 2.0) && close(flat.intended(300), 6.0));
    }

    /// The textbook case: a server that stalls for 1 s under a 100/s load. The open model sends
    /// every request at its intended time, so each request due during the stall waits for its
    /// end; a closed-loop client sends nothing during the stall, and HdrHistogram's
    /// `record_correct` reconstructs the requests it failed to send. The latencies above the
    /// normal service time must be the same values.
    #[test]
    fn corrected_latency_matches_hdrhistogram_record_correct() {
        let interval = Duration::from_millis(10);
        let a = Arrivals::Constant { rate: 100.0 };
        let (stall_from, stall_to) = (Duration::from_millis(500), Duration::from_millis(1500));
        let service = Duration::from_millis(1);
        let answer = |sent: Duration| {
            if sent >= stall_from && sent < stall_to {
                stall_to + service
            } else {
                sent + service
            }
        };
        // Open model: 400 requests, each sent when due.
        let mut open = new_latency_histogram();
        for i in 0..400 {
            let intended = a.intended(i);
            let t = Timing {
                intended,
                sent: intended,
                done: answer(intended),
            };
            open.record(t.corrected().as_micros() as u64).unwrap();
        }
        // Closed loop at the same pace: the next request waits for the previous answer.
        let mut closed = new_latency_histogram();
        let mut next = Duration::ZERO;
        for _ in 0..400 {
            let done = answer(next);
            closed
                .record_correct(
                    (done - next).as_micros() as u64,
                    interval.as_micros() as u64,
                )
                .unwrap();
            next = (next + interval).max(done);
        }
        let slow = |h: &hdrhistogram::Histogram<u64>| -> Vec<(u64, u64)> {
            h.iter_recorded()
                .filter(|v| v.value_iterated_to() > 5_000)
                .map(|v| {
                    (
                        h.highest_equivalent(v.value_iterated_to()),
                        v.count_at_value(),
                    )
                })
                .collect()
        };
        let (o, c) = (slow(&open), slow(&closed));
        assert_eq!(o.len(), 100, "requests due during the stall: {o:?}");
        assert_eq!(o, c, "open-model corrected vs record_correct");
        assert_eq!(open.max(), closed.max());
        // Raw latencies of the closed loop alone hide the stall behind one sample.
        let mut raw_only = new_latency_histogram();
        let mut next = Duration::ZERO;
        for _ in 0..400 {
            let done = answer(next);
            raw_only.record((done - next).as_micros() as u64).unwrap();
            next = (next + interval).max(done);
        }
        assert!(raw_only.value_at_quantile(0.99) < 2_000);
        assert!(open.value_at_quantile(0.99) > 900_000);
    }
}
