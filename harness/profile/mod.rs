//! Profiling the server under test: py-spy for Python servers (Synapse), `perf` for native ones;
//! stacks folded per boot phase; flamegraphs and differential flamegraphs rendered by inferno.
//!
//! Two ways to run a profiler:
//! - **launch** (boots): the server is started *by* the profiler, so interpreter start-up and
//!   imports are in the profile. py-spy writes a Chrome trace (`--format chrometrace --idle`):
//!   every thread at every sample with the time it was taken, which is what lets hsbench cut the
//!   boot into its phases. Such profiles are **wall-clock** (idle threads included, counts in µs):
//!   a phase is wall time, so its flamegraph shows where that wall time went, waiting included.
//!   Each stack is rooted at its thread's name. perf writes samples with CLOCK_MONOTONIC stamps
//!   (`-k CLOCK_MONOTONIC`), sliced the same way (on-CPU samples).
//! - **attach** (workloads): the profiler attaches to the running server's pid. py-spy runs
//!   `--nonblocking` (it never pauses the server; stacks may rarely be torn) and writes folded
//!   on-CPU samples (`--format raw`, idle threads left out).
//!
//! Folded stacks (`frame;frame;frame count`) are the data kept next to every SVG: they merge and
//! diff; the SVG is a view of them.

mod flamediff;
mod flamegraph;
mod folded;
mod perf;
mod pyspy;
mod record;
mod tool;

pub use flamediff::*;
pub use flamegraph::*;
pub use folded::*;
pub use perf::*;
pub use pyspy::*;
pub use record::*;
pub use tool::*;

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ph: &str, name: &str, ts: u64, tid: u64) -> TraceEvent {
        TraceEvent {
            ph: ph.into(),
            name: name.into(),
            ts,
            tid,
            args: TraceArgs {
                filename: "m.py".into(),
                name: None,
            },
        }
    }

    fn meta(tid: u64, name: &str) -> TraceEvent {
        TraceEvent {
            ph: "M".into(),
            name: "thread_name".into(),
            ts: 0,
            tid,
            args: TraceArgs {
                filename: String::new(),
                name: Some(format!("1234: {name}")),
            },
        }
    }

    /// main → a (0–300 µs), main → b (300–1000 µs) on one thread; a pool thread waits 0–1000.
    fn trace() -> Vec<TraceEvent> {
        vec![
            meta(0, "MainThread"),
            ev("B", "main", 0, 0),
            ev("B", "a", 0, 0),
            ev("B", "wait", 0, 1),
            ev("E", "a", 300, 0),
            ev("B", "b", 300, 0),
            ev("E", "b", 1000, 0),
            ev("E", "main", 1000, 0),
            ev("E", "wait", 1000, 1),
        ]
    }

    #[test]
    fn chrometrace_timeline_weights_each_stack_by_its_time() {
        let tl = Timeline::from_events(&trace());
        assert_eq!(tl.end_us, 1000);
        let all = tl.window(0, 10_000);
        assert_eq!(all.0["MainThread;main (m.py);a (m.py)"], 300);
        assert_eq!(all.0["MainThread;main (m.py);b (m.py)"], 700);
        // Unnamed threads are numbered by first appearance.
        assert_eq!(all.0["thread 2;wait (m.py)"], 1000);
        assert_eq!(all.total(), 2000);
        // A window cuts segments at its edges.
        let w = tl.window(200, 400);
        assert_eq!(w.0["MainThread;main (m.py);a (m.py)"], 100);
        assert_eq!(w.0["MainThread;main (m.py);b (m.py)"], 100);
        assert_eq!(w.0["thread 2;wait (m.py)"], 200);
        assert_eq!(w.inclusive("main (m.py)"), 200);
        assert!(tl.window(1000, 2000).is_empty());
    }

    /// Two runs without `[profile]`: the error says so and what to add, not "No such file".
    #[test]
    fn flamediff_of_runs_without_profiles_says_what_to_add() {
        let (a, b, out) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let e = flamediff(a.path(), b.path(), out.path()).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, ProfilerError::NoProfiles { .. }), "{e:?}");
        assert!(
            text.contains(&a.path().display().to_string())
                && text.contains("has no profiles")
                && text.contains("add [profile]"),
            "{text}"
        );
    }

    #[test]
    fn frame_files_are_shortened_to_module_paths() {
        assert_eq!(
            frame_label(
                "setup",
                "/c/venv/lib/python3.11/site-packages/synapse/server.py"
            ),
            "setup (synapse/server.py)"
        );
        assert_eq!(
            frame_label(
                "compile",
                "/root/.pyenv/versions/3.11.7/lib/python3.11/re/_compiler.py"
            ),
            "compile (re/_compiler.py)"
        );
        assert_eq!(
            frame_label("x", "<frozen importlib._bootstrap>"),
            "x (<frozen importlib._bootstrap>)"
        );
    }

    #[test]
    fn folded_roundtrips_and_merges() {
        let text = "a;b 3\na;c 2\n\n 1\nbroken\n";
        let f = Folded::parse(text);
        assert_eq!(f.total(), 5);
        assert_eq!(Folded::parse(&f.to_text()), f);
        let mut g = f.clone();
        g.merge(&f);
        assert_eq!(g.0["a;b"], 6);
        assert!(g.has_frame("c") && !g.has_frame("d"));
        // Only a waiting leaf makes a stack idle, not the frame further up.
        let mut h = Folded::parse("t;wait 7\nt;wait;x 1\nt;run 2\n");
        assert_eq!(h.remove_idle(&["wait".to_string()]), 7);
        assert_eq!(h.total(), 3);
    }

    #[test]
    fn differential_of_identical_profiles_has_no_growth() {
        let f = Timeline::from_events(&trace()).window(0, 1000);
        let d = differential(&f, &f, "same", "", "µs");
        assert_eq!(d.lines.len(), f.0.len());
        assert!(!d.has_growth(), "{:?}", d.lines);
        assert!(d.top_growth(5).is_empty());
        assert!(d.svg.starts_with("<?xml") && d.svg.contains("main (m.py)"));
    }

    #[test]
    fn differential_names_the_frame_that_grew() {
        let before = Folded::parse("main;load 100\nmain;serve 100\n");
        let after = Folded::parse("main;load 300\nmain;serve 100\n");
        let d = differential(&before, &after, "grew", "", "samples");
        assert!(d.has_growth());
        let top = d.top_growth(3);
        // After normalization `before` is scaled to 400: load 200 → 300, serve 200 → 100.
        assert_eq!(top[0].0, "load");
        assert!((top[0].1 - 0.25).abs() < 1e-9, "{top:?}");
        assert!(!top.iter().any(|(f, _)| f == "serve"));
    }

    #[test]
    fn flamediff_pairs_run_profiles_by_scope() {
        let (a, b, out) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        for (dir, load) in [(&a, 10), (&b, 30)] {
            let p = dir.path().join("profile");
            std::fs::create_dir_all(&p).unwrap();
            for n in [1, 2] {
                std::fs::write(
                    p.join(format!("profile-{n}.boot.folded")),
                    format!("main;load {load}\nmain;serve 10\n"),
                )
                .unwrap();
            }
            std::fs::write(p.join("load.herd.folded"), "main;sync 5\n").unwrap();
        }
        std::fs::write(a.path().join("profile/profile-1.only_a.folded"), "x 1\n").unwrap();
        let diffs = flamediff(a.path(), b.path(), out.path()).unwrap();
        let scopes: Vec<&str> = diffs.iter().map(|d| d.scope.as_str()).collect();
        assert_eq!(scopes, ["boot", "load.herd"]);
        // Two boots merged per side.
        assert_eq!((diffs[0].before_total, diffs[0].after_total), (40, 80));
        assert_eq!(diffs[0].top_growth[0].0, "load");
        assert!(diffs[1].top_growth.is_empty());
        assert!(out.path().join("flamediff-boot.svg").exists());
        // Folded files directly.
        let one = flamediff(
            &a.path().join("profile/load.herd.folded"),
            &b.path().join("profile/profile-1.boot.folded"),
            out.path(),
        )
        .unwrap();
        assert_eq!(one.len(), 1);
        assert!(flamediff(a.path(), &out.path().join("missing"), out.path()).is_err());
    }

    #[test]
    fn perf_script_blocks_are_sliced_by_time() {
        let text = "\
prog 10/10   100.250000: cpu-clock:ppp: 
\t    1111 spin_a+0x1 (/bin/prog)
\t    2222 main+0x2 (/bin/prog)

prog 10/10   100.750000: cpu-clock:ppp: 
\t    3333 spin_b+0x1 (/bin/prog)
\t    2222 main+0x2 (/bin/prog)

";
        let s = PerfSamples::parse(text);
        assert_eq!(s.len(), 2);
        let a = s.window(100.0, 100.5);
        assert_eq!(a.total(), 1);
        assert!(a.has_frame("spin_a") && !a.has_frame("spin_b"), "{a:?}");
        assert_eq!(s.window(100.0, 101.0).total(), 2);
    }

    #[test]
    fn render_titles_the_graph_and_handles_empty_input() {
        let f = Folded::parse("main;work 5\n");
        let svg = render(&f, "Synapse 1.163.2 · boot", "5 samples", "samples");
        assert!(svg.contains("Synapse 1.163.2 · boot") && svg.contains("work"));
        let empty = render(&Folded::default(), "nothing", "", "samples");
        assert!(empty.contains("no samples"));
    }

    #[test]
    fn a_torn_frame_name_leaves_the_svg_valid_xml() {
        // Bytes py-spy --nonblocking read from a frame being rewritten: a NUL and a CR.
        let f = Folded::parse("main;\u{e8a8}\0x (\r);leaf 1\nmain;work 4\n");
        assert_eq!(f.total(), 5);
        assert!(f.has_frame("\u{e8a8}\u{FFFD}x (\u{FFFD})"), "{f:?}");
        let svg = render(&f, "torn", "5 samples", "samples");
        // XML 1.0 allows no control character but tab, LF and CR.
        let forbidden = |c: char| c.is_control() && !matches!(c, '\t' | '\n' | '\r');
        assert!(!svg.contains(forbidden), "{svg}");
        assert!(svg.contains("x (\u{FFFD})"), "{svg}");
    }
}
