//! Golden files of the text a user reads: summary.md, compare.md, the sweep summary and the
//! `hsbench size` table, report.html's outline, and one SVG of each kind, all rendered from
//! fixed inputs (`tests/data/golden/run/`: a real tiny-load run against Synapse, kept as it was
//! written). A formatting change shows here as a diff.
//!
//! When a change is meant, rewrite the files and review the diff in git:
//! `HSBENCH_BLESS=1 cargo test --release --test golden`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hsbench::analysis::compare::{Gates, compare};
use hsbench::analysis::sweep::{
    SWEEP_SCHEMA_VERSION, SweepPoint, SweepResult, extrapolate, fit_all, worst_phase,
    worst_subphase,
};
use hsbench::report::Exporter;
use hsbench::result::RunResult;
use hsbench::result::RunStatus;
use hsbench::scenario::SweepDimension;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn run_dir() -> PathBuf {
    root().join("data/golden/run")
}

fn run() -> RunResult {
    hsbench::result::read::read_result(&run_dir().join("result.json")).unwrap()
}

/// Compare `actual` with `tests/golden/<name>`, or rewrite it under `HSBENCH_BLESS=1`.
fn golden(name: &str, actual: &str) {
    let path = root().join("golden").join(name);
    if std::env::var_os("HSBENCH_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; write it with HSBENCH_BLESS=1 cargo test --release --test golden",
            path.display()
        )
    });
    if expected == actual {
        return;
    }
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let first = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    panic!(
        "{} differs from the golden file at line {} (golden {} lines, now {}):\n  golden: {:?}\n  now:    {:?}\n\
         If the change is meant: HSBENCH_BLESS=1 cargo test --release --test golden, and review the diff.",
        path.display(),
        first + 1,
        e.len(),
        a.len(),
        e.get(first).unwrap_or(&"<end>"),
        a.get(first).unwrap_or(&"<end>"),
    );
}

/// The structure of an HTML page: its headings, the ids of its sections and plots, and how
/// many figures, tables and SVGs it has. Text inside is left to summary.md's golden file.
fn outline(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let tag: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let end = rest.find('>').unwrap_or(rest.len());
        let attrs = &rest[..end];
        if matches!(tag.as_str(), "h1" | "h2" | "h3") {
            let close = format!("</{tag}>");
            let text_end = rest.find(&close).unwrap_or(end);
            let text = strip_tags(&rest[end + 1..text_end.max(end + 1)]);
            out.push_str(&format!("{tag} {}\n", text.trim()));
        }
        if let Some(j) = attrs.find(" id=\"") {
            let id = &attrs[j + 5..];
            let id = &id[..id.find('"').unwrap_or(id.len())];
            out.push_str(&format!("  #{id} ({tag})\n"));
        }
        rest = &rest[end.min(rest.len())..];
    }
    for tag in ["<svg", "<table", "<figure", "<details", "<script", "<img"] {
        out.push_str(&format!("count {tag}> {}\n", html.matches(tag).count()));
    }
    out
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in s.chars() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

#[test]
fn summary_md() {
    golden("summary.md", &hsbench::report::markdown(&run()));
}

/// Catch-up over sliding sync: the summary's catch-up section says what came back (the
/// receipts) and claims no unread counts (the server sends none).
#[test]
fn catchup_over_sliding_sync_md() {
    let mut r = run();
    let c = r.catchup.as_mut().unwrap();
    c.protocol = hsbench::scenario::SyncProtocol::Sliding;
    (c.unread_before_min, c.unread_before_max, c.unread_after_max) = (None, None, None);
    c.receipts_echoed = Some(4);
    let md = hsbench::report::markdown(&r);
    let start = md.find("### Catch-up").unwrap();
    let end = start + md[start..].find("| endpoint").unwrap();
    golden("catchup-sliding.md", &md[start..end]);
}

/// Receivers that fell behind: the steady section says how many gaps they paged back through
/// and how many deliveries were found there.
#[test]
fn steady_gaps_md() {
    let mut r = run();
    let d = &mut r.steady.as_mut().unwrap().deliveries;
    (d.gaps, d.backfilled) = (12, 340);
    let md = hsbench::report::markdown(&r);
    let start = md.find("### Steady").unwrap();
    let start = start + md[start..].find("Delivery (").unwrap();
    let end = start + md[start..].find("hsbench's own use").unwrap();
    golden("steady-gaps.md", &md[start..end]);
}

#[test]
fn report_html_outline() {
    let html = hsbench::report::HtmlExporter.render(&run(), &run_dir());
    let html = String::from_utf8(html).unwrap();
    golden("report.html.outline", &outline(&html));
}

#[test]
fn dashboard_exports() {
    let r = run();
    for e in [
        &hsbench::report::BmfExporter as &dyn Exporter,
        &hsbench::report::GithubBenchmarkExporter,
    ] {
        let text = String::from_utf8(e.render(&r, &run_dir())).unwrap();
        golden(e.file_name(), &text);
    }
}

/// One scenario over two protocols: the golden run as "v2" and, with its herd twice as slow and
/// half the bytes, as "sliding".
#[test]
fn protocols_md_and_html() {
    let a = run();
    let mut b = run();
    if let Some(h) = b.herd.as_mut() {
        for s in [&mut h.corrected, &mut h.raw] {
            s.p50_ms *= 2.0;
            s.p90_ms *= 2.0;
            s.p99_ms *= 2.0;
            s.max_ms *= 2.0;
        }
        h.bytes_received /= 2;
    }
    let sides = hsbench::analysis::protocols::sides(
        "tiny-load",
        &[
            ("v2".into(), &a, "../run-v2".into()),
            ("sliding".into(), &b, "../run-sliding".into()),
        ],
    );
    let herd = sides
        .rows
        .iter()
        .find(|r| r.metric == "herd.sync.p50")
        .unwrap();
    assert!((herd.ratios[1].unwrap() - 2.0).abs() < 1e-9);
    let bytes = sides
        .rows
        .iter()
        .find(|r| r.metric == "herd.bytes")
        .unwrap();
    assert!((bytes.ratios[1].unwrap() - 0.5).abs() < 0.01);
    golden(
        "protocols.md",
        &hsbench::report::protocols::markdown(&sides),
    );
    let html = hsbench::report::protocols::html(&sides);
    assert!(html.contains("href=\"../run-sliding/report.html\""));
    assert!(html.contains("class=\"n worse\">2.00×"));
    assert!(html.contains("class=\"n better\">0.50×"));
}

#[test]
fn compare_md() {
    // The candidate: five copies of the run with every phase 60% slower and one sub-phase (the
    // push rules' stream generator) ten times slower, against five copies of the run as it was
    // (5 vs 5 boots reach p = 0.008: the phases and that sub-phase regress; the workloads'
    // figures, one per run and equal, do not).
    let a = run();
    let mut b = run();
    for boot in &mut b.boots {
        for p in &mut boot.phases {
            if let Some(d) = p.duration_ms.as_mut() {
                *d *= 1.6;
            }
        }
        for sp in &mut boot.subphases {
            if sp.name == "stream_generator: push_rules"
                && let Some(d) = sp.duration_ms.as_mut()
            {
                *d = *d * 10.0 + 20.0;
            }
        }
    }
    let c = compare(&vec![a; 5], &vec![b; 5], &Gates::default(), false).unwrap();
    golden("compare.md", &hsbench::report::compare::markdown(&c));
}

/// Under the work meter: a real `ab` step of tests/work_meter.rs (4 metered boots a side of
/// Synapse 1.163.2 from a git checkout, the head's store constructor computing a big-integer
/// power; functions kept to 8 per phase), its summary section and its comparison.
#[test]
fn work_meter_md() {
    let read = |side: &str| {
        hsbench::result::read::read_result(&root().join(format!("data/golden/work/{side}.json")))
            .unwrap()
    };
    let (base, head) = (read("base"), read("head"));
    golden("work-summary.md", &hsbench::report::work::markdown(&head));
    let c =
        hsbench::analysis::compare::compare_interleaved(&base, &head, &Gates::default()).unwrap();
    golden("work-compare.md", &hsbench::report::compare::markdown(&c));
}

/// A sweep over four values with exact growth laws: time to ready linear, one phase
/// quadratic, peak RSS as the square root.
fn sweep() -> SweepResult {
    let points: Vec<SweepPoint> = [1_000u64, 2_000, 4_000, 8_000]
        .iter()
        .map(|&v| {
            let x = v as f64;
            let metrics: BTreeMap<String, f64> = [
                ("time_to_ready", 2.0 * x),
                ("phase.db_prepare", 1e-3 * x * x),
                ("peak_rss", 1e6 * x.sqrt()),
                ("data_size", 4096.0 * x),
                ("herd.sync.p99", 40.0 + 0.01 * x),
            ]
            .into_iter()
            // A statement's sub-phase over the log's threshold at the two largest values only:
            // too few points to fit, named once under the table.
            .chain((v >= 4_000).then_some(("subphase.prefill: events", 1e-4 * x)))
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            SweepPoint {
                value: v as f64,
                run_dir: format!("points/users-{v}"),
                status: RunStatus::Complete,
                error: None,
                metrics,
                slowest_statements: Vec::new(),
            }
        })
        .collect();
    let fits = fit_all(&points);
    SweepResult {
        schema_version: SWEEP_SCHEMA_VERSION,
        sweep_id: "golden-sweep".into(),
        scenario: "golden".into(),
        scenario_sha256: "0".repeat(64),
        dimension: SweepDimension::Users,
        values: points.iter().map(|p| p.value).collect(),
        status: RunStatus::Complete,
        error: None,
        started_at: "2026-11-30T00:00:00Z".into(),
        finished_at: Some("2026-11-30T01:00:00Z".into()),
        worst_phase: worst_phase(&fits),
        worst_subphase: worst_subphase(&fits),
        points,
        fits,
    }
}

#[test]
fn sweep_summary_size_table_and_page() {
    let s = sweep();
    golden("sweep-summary.md", &hsbench::report::sweep::markdown(&s));
    let rows = extrapolate(&s, 16_000.0, false).unwrap();
    golden(
        "size.txt",
        &hsbench::report::sweep::size_report(&s, 16_000.0, &rows),
    );
    golden(
        "sweep-report.html.outline",
        &outline(&hsbench::report::sweep::html(&s, &[])),
    );
}

#[test]
fn one_svg_of_each_kind() {
    use hsbench::report::svg;
    let r = run();
    let boot = r.boots.iter().find(|b| !b.warmup).unwrap();
    let samples = hsbench::metrics::read_samples_csv(
        &run_dir().join(format!("{}.resources.csv", boot.label)),
    )
    .unwrap_or_default();
    golden("waterfall.svg", &svg::waterfall(boot, &samples, "boot"));

    let s = sweep();
    let f = s
        .fits
        .iter()
        .find(|f| f.metric == "phase.db_prepare")
        .unwrap();
    let pts: Vec<(f64, f64)> = s
        .points
        .iter()
        .map(|p| (p.value, p.metrics["phase.db_prepare"]))
        .collect();
    golden(
        "loglog.svg",
        &svg::loglog(
            "db_prepare vs users",
            "users",
            &f.unit,
            &pts,
            f.fit.as_ref(),
        ),
    );

    golden(
        "boxplots.svg",
        &svg::boxplots(
            "phases",
            &[svg::BoxRow {
                label: "db_prepare".into(),
                groups: vec![
                    ("warm".into(), "#1f77b4", vec![10.0, 12.0, 11.0, 30.0, 9.5]),
                    ("cold".into(), "#9467bd", vec![40.0, 44.0, 39.0]),
                ],
            }],
        ),
    );
    golden(
        "percentiles.svg",
        &svg::percentiles(
            "latency",
            &[(
                "corrected".to_string(),
                "#d62728",
                vec![(0.5, 12.0), (0.9, 40.0), (0.99, 120.0), (0.999, 300.0)],
            )],
        ),
    );
    golden(
        "timeseries.svg",
        &svg::timeseries(
            "delivery",
            &[svg::Panel::new(
                "p50",
                "ms",
                vec![(
                    "p50".to_string(),
                    "#2ca02c",
                    vec![(0.0, 10.0), (1.0, 12.0), (2.0, 200.0), (3.0, 15.0)],
                )],
            )],
            &[("trigger".to_string(), 1.5, "#000")],
        ),
    );
}

/// Two real sweeps over one dataset (`scenarios/presence-reset*.toml`: tuwunel 1.4.6 and Synapse
/// 1.163.2, 10k → 150k users), kept as written (each sweep.json with the result.json of its
/// first point), put side by side with a prediction at 300k.
#[test]
fn side_by_side_md_and_page() {
    use hsbench::analysis::servers::side_by_side;
    use hsbench::report::servers::{html, markdown, plots};
    let dirs = [
        PathBuf::from("tests/data/golden/side-by-side/tuwunel"),
        PathBuf::from("tests/data/golden/side-by-side/synapse"),
    ];
    let s = side_by_side(&dirs, Some(300_000), false).unwrap();
    assert_eq!(s.servers.len(), 2);
    golden("side-by-side.md", &markdown(&s));
    golden("side-by-side.html.outline", &outline(&html(&s, &plots(&s))));
}

/// `hsbench noise`'s text, from a fixed report (a 2-vCPU VM's figures).
#[test]
fn noise_text() {
    use hsbench::metrics::machine::Fingerprint;
    use hsbench::metrics::noise::{
        BootsFor, Conditions, Floor, KindSummary, NOISE_SCHEMA_VERSION, NoiseReport, ProbeKind,
        ProbeSeries,
    };
    let kinds = [
        (ProbeKind::Compute, 0.011, Some(0.53)),
        (ProbeKind::Memory, 0.034, Some(0.10)),
        (ProbeKind::Fault, 0.034, Some(0.28)),
        (ProbeKind::Python, 0.114, Some(0.72)),
    ];
    let probes = kinds
        .iter()
        .flat_map(|&(kind, spread, _)| {
            (0..2).map(move |cpu| ProbeSeries {
                kind,
                cpu,
                pinned: true,
                chunks: if kind == ProbeKind::Python { 11 } else { 440 },
                chunk_ms_median: if kind == ProbeKind::Python {
                    1993.9
                } else {
                    50.4
                },
                chunk_cv: spread * 1.5,
                windows: 11,
                window_spread: Some(spread * (0.9 + 0.2 * cpu as f64)),
            })
        })
        .collect();
    let r = NoiseReport {
        schema_version: NOISE_SCHEMA_VERSION,
        machine: Fingerprint {
            cpu_model: "AMD EPYC".into(),
            cores: 2,
            memory_bytes: 25_275_990_016,
            kernel: "6.18.44".into(),
            os: "Debian GNU/Linux 12 (bookworm)".into(),
            hostname: "vm".into(),
        },
        seconds: 90.0,
        window_s: 2.0,
        chunk_ms: 50.0,
        boots: 10,
        alpha: 0.05,
        power: 0.95,
        steal_share: Some(0.002),
        conditions: Conditions {
            free_page_reporting: Some(true),
            damon_actions: vec!["pageout".into()],
            governor: None,
        },
        python: Some("/usr/bin/python3.11".into()),
        probes,
        kinds: kinds
            .iter()
            .map(|&(kind, window_spread, cpu_correlation)| KindSummary {
                kind,
                window_spread: Some(window_spread),
                cpu_correlation,
            })
            .collect(),
        floor: Floor {
            kind: ProbeKind::Python,
            spread: 0.114,
            detectable: 0.1476,
            boots_for: vec![
                BootsFor {
                    share: 0.02,
                    boots: Some(425),
                },
                BootsFor {
                    share: 0.05,
                    boots: Some(70),
                },
                BootsFor {
                    share: 0.10,
                    boots: Some(20),
                },
            ],
        },
    };
    golden("noise.txt", &hsbench::report::noise::text(&r));
}

/// The history's text: each change point's line (as `history list` and `check` print it) and
/// the dashboard's outline, from twelve copies of the golden run, the last five with a slower
/// start (fixed factors, so the series and its change points are the same on every machine).
#[test]
fn history_lines_and_dashboard() {
    use hsbench::history::{Overrides, analyse, dashboard, from_run_dir};
    use hsbench::stats::changepoint::Detector;
    let base = from_run_dir(&run_dir(), &Overrides::default()).unwrap();
    let jitter = [
        1.0, 1.004, 0.997, 1.002, 0.999, 1.003, 0.996, 1.001, 0.998, 1.002, 1.0, 0.997,
    ];
    let runs: Vec<_> = (0..12)
        .map(|i| {
            let mut r = base.clone();
            r.run_id = format!("run-{i:02}");
            r.commit = format!("{i:02}{}", "c0ffee".repeat(7))
                .chars()
                .take(40)
                .collect();
            r.started_at = format!("2026-01-01T00:{i:02}:00.000Z");
            r.report = None;
            let slow = if i >= 7 { 1.08 } else { 1.0 };
            for (m, v) in r.metrics.iter_mut() {
                *v *= jitter[i] * if m == "time_to_ready" { slow } else { 1.0 };
            }
            r
        })
        .collect();
    let series = analyse(&runs, &Detector::default());
    let lines: String = series
        .iter()
        .flat_map(|s| &s.findings)
        .map(|f| format!("{} [{}]\n", f.describe(), f.id()))
        .collect();
    assert!(lines.contains("time_to_ready +8."), "{lines}");
    golden("history-change-points.txt", &lines);
    golden(
        "history-report.html.outline",
        &outline(&dashboard::render(
            &series,
            5,
            "results/history.sqlite",
            Path::new("results/history"),
        )),
    );
}
