//! One metric catalogue, one spelling: every name of the catalogue is accepted by every input
//! (`[thresholds]`, `[compare] noise_by_metric`), every name an output shows (figures, compare,
//! sweeps, BMF, github-action-benchmark, threshold results) is a catalogue name, and
//! scenarios/README.md lists exactly the catalogue.

use std::path::{Path, PathBuf};

use hsbench::metrics::catalogue::{self, BOOT_PREFIXES, CATALOGUE, MILESTONES, Scope, Unit};
use hsbench::report::Exporter;
use hsbench::server::ServerProfile;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every concrete name of the catalogue for a server with `phases`.
fn all_names(phases: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for e in CATALOGUE {
        let bases: Vec<String> = match e.name {
            // `phase.<name>`, `work.phase.<name>`, `work.db.phase.<name>`: one per phase.
            n if n.ends_with("phase.<name>") => {
                let prefix = n.trim_end_matches("<name>");
                phases.iter().map(|p| format!("{prefix}{p}")).collect()
            }
            "milestone.<name>" => MILESTONES
                .iter()
                .map(|m| format!("milestone.{m}"))
                .collect(),
            n => vec![n.to_string()],
        };
        for b in bases {
            if e.scope == Scope::Boot {
                for p in BOOT_PREFIXES {
                    out.push(format!("{p}{b}"));
                }
            }
            out.push(b);
        }
    }
    out
}

/// A limit in the metric's unit, as a user writes it.
fn limit(name: &str) -> &'static str {
    match catalogue::unit_of(name) {
        Unit::Ms | Unit::Seconds => "< 10s",
        Unit::Bytes => "< 512MiB",
        Unit::Percent => "< 5%",
        Unit::Count => "< 1",
        Unit::Instructions => "< 20G",
    }
}

#[test]
fn every_catalogue_name_is_accepted_by_every_input() {
    // A scenario with every table but the gates (tiny.toml's own [thresholds] cut off).
    let tiny = std::fs::read_to_string(root().join("tests/scenarios/tiny.toml")).unwrap();
    let base = tiny[..tiny.find("[thresholds]").unwrap_or(tiny.len())].to_string();
    let phases: Vec<String> = ServerProfile::builtin("synapse")
        .unwrap()
        .phases
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let names = all_names(&phases);
    assert!(names.len() > 60, "{names:?}");
    let mut text = base.clone();
    text.push_str("\n[thresholds]\n");
    for n in &names {
        text.push_str(&format!("{n:?} = {:?}\n", limit(n)));
    }
    text.push_str("\n[compare.noise_by_metric]\n");
    for n in &names {
        text.push_str(&format!("{n:?} = 0.1\n"));
    }
    let s = hsbench::scenario::parse(Path::new("catalogue.toml"), &text)
        .unwrap_or_else(|e| panic!("a catalogue name was refused: {e}"));
    assert_eq!(s.thresholds.len(), names.len());
    assert_eq!(s.compare.noise_by_metric.len(), names.len());

    // An old spelling is refused with its new one, located.
    let old = format!("{base}\n[thresholds]\n\"herd.p99\" = \"< 1s\"\n");
    let e = hsbench::scenario::parse(Path::new("old.toml"), &old).unwrap_err();
    assert!(e.to_string().contains("herd.sync.p99"), "{e}");
    assert!(e.to_string().contains("old.toml:"), "{e}");
}

#[test]
fn every_name_an_output_shows_is_a_catalogue_name() {
    let dir = root().join("tests/data/golden/run");
    let r = hsbench::result::read::read_result(&dir.join("result.json")).unwrap();
    let phases: Vec<String> = r.boots[0].phases.iter().map(|p| p.name.clone()).collect();
    let check = |what: &str, name: &str| {
        catalogue::parse(name, &phases)
            .unwrap_or_else(|e| panic!("{what} shows {name:?}, which the inputs refuse: {e}"));
    };
    let figures = hsbench::analysis::figures::figures(&r);
    for f in &figures {
        check("summary.md / report.html figures", &f.metric);
        assert_eq!(f.unit, catalogue::unit_of(&f.metric), "{}", f.metric);
    }
    // The run had every workload: their figures are all there.
    for m in [
        "time_to_ready",
        "peak_rss",
        "cpu_to_ready",
        "herd.sync.p99",
        "triggered.recovery",
        "steady.delivery.p99",
        "catchup.time.p50",
        "herd.errors",
        "data_size",
    ] {
        assert!(figures.iter().any(|f| f.metric == m), "no figure {m}");
    }
    for name in hsbench::analysis::figures::samples(std::slice::from_ref(&r)).keys() {
        check("compare.md", name);
    }
    for name in hsbench::analysis::sweep::metrics_of(&r).keys() {
        check("a sweep", name);
    }
    for t in &r.thresholds {
        check("the threshold results", &t.metric);
    }
    let scenario = r.scenario_name();
    let bmf: serde_json::Value =
        serde_json::from_slice(&hsbench::report::BmfExporter.render(&r, &dir)).unwrap();
    for key in bmf.as_object().unwrap().keys() {
        check("BMF", key.strip_prefix(&format!("{scenario}/")).unwrap());
    }
    let gh: serde_json::Value =
        serde_json::from_slice(&hsbench::report::GithubBenchmarkExporter.render(&r, &dir)).unwrap();
    for e in gh.as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        check(
            "github-action-benchmark",
            name.strip_prefix(&format!("{scenario} ")).unwrap(),
        );
    }
}

#[test]
fn the_scenarios_readme_lists_the_catalogue() {
    let path = root().join("scenarios/README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let begin = text
        .find("<!-- catalogue:begin")
        .expect("catalogue:begin marker");
    let begin = begin + text[begin..].find("-->\n").unwrap() + 4;
    let end = text
        .find("<!-- catalogue:end -->")
        .expect("catalogue:end marker");
    let table = catalogue::markdown_table();
    if std::env::var_os("HSBENCH_BLESS").is_some_and(|v| v == "1") {
        let new = format!("{}{table}{}", &text[..begin], &text[end..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    assert_eq!(
        &text[begin..end],
        table,
        "scenarios/README.md's catalogue differs from harness/metrics/catalogue.rs; \
         HSBENCH_BLESS=1 cargo test --release --test catalogue rewrites it"
    );
}
