//! The text of `hsbench noise`: how steady the machine is, and what that lets a comparison of
//! boots detect.

use std::fmt::Write;

use crate::metrics::noise::{NoiseReport, ProbeKind};

fn pct(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// What the report says of the CPUs' correlation.
fn alike(r: Option<f64>) -> &'static str {
    match r {
        None => "one CPU",
        Some(r) if r >= 0.7 => "the CPUs slow down together",
        Some(r) if r >= 0.3 => "the CPUs slow down partly together",
        Some(_) => "each CPU slows down on its own: a probe on one cannot correct another",
    }
}

/// The whole report, as printed.
pub fn text(r: &NoiseReport) -> String {
    let mut s = String::new();
    let cpus = r
        .probes
        .iter()
        .filter(|p| p.kind == ProbeKind::Compute)
        .count();
    let pinned = r.probes.iter().all(|p| p.pinned);
    let _ = writeln!(
        s,
        "hsbench noise: {:.0} s on {cpus} CPU{} at once ({}), chunks of {:.0} ms, windows of {} \
         standing for boots",
        r.seconds,
        if cpus == 1 { "" } else { "s" },
        if pinned {
            "one thread pinned to each"
        } else {
            "not pinned: the kernel refused"
        },
        r.chunk_ms,
        secs(r.window_s)
    );
    let _ = writeln!(s, "machine: {}", r.machine.one_line());
    let c = &r.conditions;
    let mut seen = Vec::new();
    if c.free_page_reporting == Some(true) {
        seen.push(
            "free page reporting (virtio balloon): memory a process frees goes back to the host \
             and faults in on the host again"
                .to_string(),
        );
    }
    for a in &c.damon_actions {
        seen.push(format!(
            "DAMON scheme `{a}`: idle pages are dropped and fault back in"
        ));
    }
    if let Some(g) = c.governor.as_deref().filter(|g| *g != "performance") {
        seen.push(format!("CPU frequency governor `{g}` (not `performance`)"));
    }
    if seen.is_empty() {
        let _ = writeln!(
            s,
            "memory and frequency: nothing that adds jitter was found"
        );
    } else {
        let _ = writeln!(s, "adds jitter: {}", seen.join("; "));
    }
    match r.steal_share {
        Some(st) => {
            let _ = writeln!(
                s,
                "steal the kernel reports: {} (many hypervisors never report it)",
                pct(st)
            );
        }
        None => {
            let _ = writeln!(s, "steal the kernel reports: unknown (no /proc/stat)");
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| probe | CPU | chunks (python: processes) | chunk median | chunk CV | spread of neighbouring {} windows |",
        secs(r.window_s)
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
    for p in &r.probes {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} ms | {} | {} ({} windows) |",
            p.kind.name(),
            p.cpu,
            p.chunks,
            p.chunk_ms_median,
            pct(p.chunk_cv),
            p.window_spread.map_or("—".into(), pct),
            p.windows
        );
    }
    let _ = writeln!(s);
    for k in &r.kinds {
        let _ = writeln!(
            s,
            "{}: spread {} over every CPU; {}{}",
            k.kind.name(),
            k.window_spread
                .map_or("— (no CPU finished two windows)".into(), pct),
            k.cpu_correlation
                .map(|c| format!("correlation across CPUs {c:.2}: "))
                .unwrap_or_default(),
            alike(k.cpu_correlation)
        );
    }
    if r.python.is_none() {
        let _ = writeln!(
            s,
            "python: not run (no python3 on PATH, or --no-python; name one with --python)"
        );
    }
    let f = &r.floor;
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "The floor under a comparison of boots (paired, as `ab` runs them; α = {}, {:.0}% power; \
         from the {} probe's {}):",
        r.alpha,
        r.power * 100.0,
        f.kind.name(),
        pct(f.spread)
    );
    let _ = writeln!(
        s,
        "  {} boots a side: changes under ±{} cannot be told from this machine's jitter.",
        r.boots,
        pct(f.detectable)
    );
    let needs: Vec<String> = f
        .boots_for
        .iter()
        .map(|b| match b.boots {
            Some(n) => format!("±{}: {n}", pct(b.share)),
            None => format!("±{}: more than 10,000", pct(b.share)),
        })
        .collect();
    let _ = writeln!(s, "  Boots a side to detect {}.", needs.join(" · "));
    let _ = writeln!(
        s,
        "  A server adds its own jitter, and `compare`/`ab` their noise gate (`--noise`): this is \
         the least a comparison on this machine needs, not what it will see. Every compare.md \
         gives the `detectable` change of its own samples."
    );
    s
}

fn secs(s: f64) -> String {
    if s >= 1.0 && s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{:.0} ms", s * 1e3)
    }
}
