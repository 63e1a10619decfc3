//! A small real sizing sweep on Synapse: three user counts, each a full run with its own
//! fixture and timed boots, then the fits, plots, reports and an extrapolation.

mod common;

use std::path::Path;

use hsbench::analysis::sweep::{extrapolate, load};
use hsbench::result::{RunResult, RunStatus};
use hsbench::run::sweep::run_sweep;
use hsbench::scenario::{self, SweepDimension};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_sweep_against_real_synapse() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sc = scenario::load(&manifest.join("tests/scenarios/tiny-sweep.toml")).unwrap();
    let sandbox = common::Sandbox::new();
    let opts = hsbench::run::RunOptions {
        verify: false,
        ..sandbox.opts.clone()
    };
    let out = run_sweep(&sc, &opts)
        .await
        .unwrap_or_else(|e| panic!("sweep failed: {e}"));
    let r = &out.result;
    assert_eq!(r.status, RunStatus::Complete);
    assert_eq!(r.dimension, SweepDimension::Users);
    assert_eq!(r.points.len(), 3);

    // Each point is a complete ordinary run over its own dataset.
    for p in &r.points {
        assert_eq!(p.status, RunStatus::Complete, "{p:?}");
        let text = std::fs::read_to_string(out.dir.join(&p.run_dir).join("result.json")).unwrap();
        let run: RunResult = serde_json::from_str(&text).unwrap();
        assert_eq!(run.dataset.as_ref().unwrap().totals.users as f64, p.value);
        assert_eq!(run.boots.len(), 2);
        assert!(
            run.herd.is_none(),
            "workloads are off by default in a sweep"
        );
        assert_eq!(
            p.metrics["time_to_ready"],
            run.boot_summary
                .as_ref()
                .unwrap()
                .time_to_ready_ms
                .as_ref()
                .unwrap()
                .median
        );
    }
    // More users, more data on disk.
    let size = |i: usize| r.points[i].metrics["data_size"];
    assert!(size(2) > size(0), "{} vs {}", size(2), size(0));

    // Every metric seen at every point is fitted over three points, with a plot.
    let fit = |m: &str| r.fits.iter().find(|f| f.metric == m).unwrap();
    for m in [
        "time_to_ready",
        "phase.import_config",
        "peak_rss",
        "data_size",
    ] {
        let f = fit(m);
        let pf = f.fit.as_ref().unwrap_or_else(|| panic!("{m} not fitted"));
        assert_eq!(pf.n, 3, "{m}");
        assert!(pf.b_low <= pf.b && pf.b <= pf.b_high, "{m}: {pf:?}");
        assert_eq!((pf.x_min, pf.x_max), (10.0, 40.0));
        assert!(out.dir.join(f.plot.as_ref().unwrap()).exists());
    }
    assert!(fit("data_size").fit.as_ref().unwrap().b > 0.0);

    // Files: JSON that reads back, Markdown with the sizing table, self-contained HTML.
    assert_eq!(&load(&out.dir).unwrap(), r);
    let md = std::fs::read_to_string(out.dir.join("summary.md")).unwrap();
    assert!(md.contains("### Sizing") && md.contains("| 40 |") && md.contains("phase.db_prepare"));
    let html = std::fs::read_to_string(out.dir.join("report.html")).unwrap();
    assert!(html.matches("<svg").count() >= 4);

    // Extrapolation: within a decade it answers, beyond it refuses.
    let rows = extrapolate(r, 200.0, false).unwrap();
    let ttr = rows.iter().find(|e| e.metric == "time_to_ready").unwrap();
    assert!(
        ttr.prediction.low <= ttr.prediction.value && ttr.prediction.value <= ttr.prediction.high
    );
    assert!(ttr.prediction.value > 0.0);
    assert!(extrapolate(r, 1000.0, false).is_err());
}
