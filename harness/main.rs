use std::process::ExitCode;

use clap::Parser;
use hsbench::cli::{Cli, Command, CompareArgs, FixturesAction, HttpLoadArgs, RunArgs, SizeArgs};
use hsbench::dataset::fixture::FixtureStore;
use hsbench::run::{RunError, RunOptions, run};
use hsbench::{report, scenario};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The generator runs on a runtime of its own (current-thread by default).
    if let Command::HttpLoad(args) = &cli.command {
        return http_load(args);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(async {
        match cli.command {
            Command::Check { scenario } => match scenario::load(&scenario) {
                Ok(s) => {
                    let plan = hsbench::dataset::plan::DatasetPlan::new(s.dataset.clone());
                    let Some(t) = plan.totals_within(std::time::Duration::from_millis(500))
                    else {
                        println!(
                            "{}: ok ({}): {} users, {} rooms ({} DMs), about {} timeline events \
                             (the exact totals take longer to count than `check` waits; \
                             `hsbench seed` reports them)",
                            scenario.display(),
                            s.name,
                            s.dataset.users,
                            plan.room_count(),
                            s.dataset.dm_pairs,
                            plan.expected_timeline_events()
                        );
                        return 0;
                    };
                    println!(
                        "{}: ok ({}): {} users ({} devices), {} rooms ({} DMs, largest {}), \
                         {} memberships, {} timeline events, {} state events, {} receipts",
                        scenario.display(),
                        s.name,
                        t.users,
                        t.users + t.extra_devices,
                        t.rooms,
                        t.dm_rooms,
                        t.largest_room,
                        t.memberships,
                        t.timeline_events,
                        t.state_events,
                        t.receipts
                    );
                    if let Some(sw) = &s.sweep {
                        println!(
                            "sweep: {} = {:?} ({} runs{})",
                            sw.dimension.name(),
                            sw.values,
                            sw.values.len(),
                            if sw.workloads {
                                ", with workloads"
                            } else {
                                ", boots only"
                            }
                        );
                    }
                    0
                }
                Err(e) => fail(&RunError::from(e)),
            },
            Command::Run(args) => run_cmd(&args, false).await,
            Command::Seed(args) => run_cmd(&args, true).await,
            Command::Serve(args) => serve_cmd(&args).await,
            Command::Flamediff { before, after, out } => flamediff(&before, &after, out),
            Command::Size(args) => size(&args),
            Command::Compare(args) => compare(&args),
            Command::Report { run } => match report::rerender(&run) {
                Ok(files) => {
                    for f in files {
                        println!("{f}");
                    }
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    2
                }
            },
            Command::HttpLoad(_) => unreachable!("handled before the runtime starts"),
            Command::Merge { dirs, out } => match hsbench::load::merge::merge_dirs(&dirs, &out) {
                Ok(m) => {
                    for (name, h) in &m.histograms {
                        println!(
                            "{name}: {} values from {} inputs, p50 {} p99 {} max {}",
                            h.summary.count,
                            h.inputs,
                            hsbench::util::fmt::fmt_ms(h.summary.p50_ms),
                            hsbench::util::fmt::fmt_ms(h.summary.p99_ms),
                            hsbench::util::fmt::fmt_ms(h.summary.max_ms)
                        );
                    }
                    for (w, c) in &m.cross_shard_deliveries {
                        println!(
                            "{w}: {} deliveries across shards matched with their sends, {} of messages no shard sent",
                            c.matched, c.unmatched
                        );
                    }
                    if let Some(r) = &m.triggered_recovery {
                        println!(
                            "triggered: recovered over every shard {}",
                            r.time_to_recover_s.map_or("never (within the observation)".into(), |s| format!("{s:.1} s after the trigger"))
                        );
                    }
                    println!("merged: {}", out.display());
                    0
                }
                Err(e) => {
                    eprintln!("hsbench merge: {e}");
                    2
                }
            },
            Command::Schema => {
                print!("{}", hsbench::result::schema::result_schema_text());
                0
            }
            Command::Baselines { dir } => {
                let all = hsbench::run::baseline::BaselineStore::new(&dir).list();
                if all.is_empty() {
                    println!("no baselines in {}", dir.display());
                }
                for b in all {
                    println!(
                        "{:<16} {:<24} run {}  {}",
                        b.name,
                        b.scenario,
                        b.run_id,
                        b.dir.display()
                    );
                }
                0
            }
            Command::Fixtures {
                action,
                fixtures_dir,
            } => fixtures(
                action,
                fixtures_dir.map_or_else(FixtureStore::default, FixtureStore::new),
            ),
        }
    });
    // Blocking work a signal cut short (a copy, an import) is not waited for.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    ExitCode::from(code as u8)
}

/// `hsbench serve`: stops on SIGINT, SIGTERM (what Kubernetes sends) or SIGHUP.
async fn serve_cmd(args: &hsbench::cli::ServeArgs) -> i32 {
    hsbench::util::interrupt::watch();
    let scenario = match scenario::load(&args.scenario) {
        Ok(s) => s,
        Err(e) => return fail(&RunError::from(e)),
    };
    let credentials_out = args.credentials_out.clone().unwrap_or_else(|| {
        hsbench::util::fs::cache_dir()
            .join("serve")
            .join(&scenario.name)
            .join("credentials.json")
    });
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        hsbench::util::interrupt::interrupted().await;
        let _ = stop_tx.send(true);
        // Keep the sender alive: a dropped sender would read as "never stopped".
        std::future::pending::<()>().await
    });
    let hooks = hsbench::run::ServeHooks {
        credentials_out,
        ready: None,
        stop,
    };
    match hsbench::run::serve(&scenario, &RunOptions::from(args), hooks).await {
        Ok(out) => {
            println!("stopped; results: {}", out.run_dir.display());
            0
        }
        Err(e) => fail(&e),
    }
}

/// `run --attach`: the workloads of one shard against a running server.
async fn attached_cmd(args: &RunArgs, scenario: &scenario::Scenario, target: &str) -> i32 {
    let attach = match hsbench::run::Attach::resolve(
        target,
        args.credentials.as_deref(),
        args.shard.as_deref(),
        args.release_at.as_deref(),
        |k| std::env::var(k).ok(),
    ) {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    match hsbench::run::run_attached(scenario, &RunOptions::from(args), attach).await {
        Ok(out) => {
            println!("{}", report::markdown(&out.result));
            println!("results: {}", out.run_dir.display());
            let failed = out.result.thresholds.iter().any(|t| !t.passed);
            if failed { 1 } else { 0 }
        }
        Err(e) => fail(&e),
    }
}

async fn run_cmd(args: &RunArgs, seed_only: bool) -> i32 {
    hsbench::util::interrupt::watch();
    let scenario = match scenario::load(&args.scenario) {
        Ok(s) => s,
        Err(e) => return fail(&RunError::from(e)),
    };
    if let Some(url) = &args.attach {
        if seed_only {
            eprintln!(
                "error: `hsbench seed` builds a fixture; --attach runs workloads (use `hsbench run --attach`)"
            );
            return 2;
        }
        return attached_cmd(args, &scenario, url).await;
    }
    let opts = RunOptions {
        seed_only,
        ..RunOptions::from(args)
    };
    let baselines = hsbench::run::baseline::BaselineStore::in_results(&opts.results_dir);
    // A missing baseline fails before the run, not after it.
    let compare_with = match args
        .baseline
        .as_deref()
        .map(|n| baselines.find(n, &scenario.name))
    {
        None => None,
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if scenario.sweep.is_some() && !seed_only {
        return match hsbench::run::sweep::run_sweep(&scenario, &opts).await {
            Ok(out) => {
                println!("{}", hsbench::run::sweep::markdown(&out.result));
                println!("results: {}", out.dir.display());
                0
            }
            Err(e) => fail(&e),
        };
    }
    match run(&scenario, &opts).await {
        Ok(out) => {
            println!("{}", report::markdown(&out.result));
            println!("results: {}", out.run_dir.display());
            let failed: Vec<String> = out
                .result
                .thresholds
                .iter()
                .filter(|t| !t.passed)
                .map(|t| t.reason())
                .collect();
            let mut code = 0;
            if !failed.is_empty() {
                eprintln!("FAILED: {}", failed.join("; "));
                code = 1;
            }
            match hsbench::run::baseline::after_run(
                &baselines,
                &out.run_dir,
                compare_with.as_ref(),
                args.save_baseline.as_deref(),
            ) {
                Ok(o) => {
                    if let Some(c) = &o.comparison {
                        println!("{}", hsbench::analysis::compare::markdown(c));
                        if !c.regressions().is_empty() {
                            code = 1;
                        }
                    }
                    if let Some(b) = &o.saved {
                        println!("saved as baseline {:?}: {}", b.name, b.dir.display());
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    code = 2;
                }
            }
            code
        }
        Err(e) => fail(&e),
    }
}

fn fixtures(action: FixturesAction, store: FixtureStore) -> i32 {
    match action {
        FixturesAction::List => {
            let all = store.list();
            if all.is_empty() {
                println!("no fixtures in {}", store.root.display());
            }
            for fx in all {
                let m = &fx.manifest;
                println!(
                    "{}  {:<12} {} {} {:<12} {:>7} users {:>6} rooms {:>8} memberships {:>9} timeline events {:>9.1} MiB  built {} in {:.0} s",
                    m.key,
                    m.scenario,
                    m.identity.server_kind,
                    m.identity.server_version,
                    m.identity.database,
                    m.totals.users,
                    m.totals.rooms,
                    m.totals.memberships,
                    m.totals.timeline_events,
                    m.size_bytes as f64 / (1 << 20) as f64,
                    m.created_at,
                    m.build_seconds
                );
            }
            0
        }
        FixturesAction::Rm { key, all } => {
            if key.is_none() && !all {
                eprintln!("error: name a key (prefix) or --all");
                return 2;
            }
            match store.remove(key.as_deref()) {
                Ok(n) => {
                    println!("removed {n} fixture(s)");
                    0
                }
                Err(e) => fail(&RunError::from(e)),
            }
        }
    }
}

fn flamediff(
    before: &std::path::Path,
    after: &std::path::Path,
    out: Option<std::path::PathBuf>,
) -> i32 {
    let out = out.unwrap_or_else(|| {
        if after.is_dir() {
            after.to_path_buf()
        } else {
            ".".into()
        }
    });
    match hsbench::profile::flamediff(before, after, &out) {
        Ok(diffs) => {
            for d in diffs {
                let growth: Vec<String> = d
                    .top_growth
                    .iter()
                    .map(|(f, share)| format!("{f} +{:.1}%", share * 100.0))
                    .collect();
                println!(
                    "{}: {} ({} → {} in the profiles' unit); grew most: {}",
                    d.scope,
                    d.svg.display(),
                    d.before_total,
                    d.after_total,
                    if growth.is_empty() {
                        "nothing".to_string()
                    } else {
                        growth.join(", ")
                    }
                );
            }
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn compare(args: &CompareArgs) -> i32 {
    use hsbench::analysis::compare;
    let (base, cand) = match (&args.baseline, args.runs.as_slice()) {
        (Some(name), [cand]) => {
            let store = hsbench::run::baseline::BaselineStore::new(&args.baselines_dir);
            let scenario = match compare::load_runs(cand) {
                Ok(r) => r[0].scenario_name().to_string(),
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            };
            match store.find(name, &scenario) {
                Ok(b) => (b.dir, cand.clone()),
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            }
        }
        (None, [base, cand]) => (base.clone(), cand.clone()),
        (Some(_), _) => {
            eprintln!("error: with --baseline NAME give only the candidate run");
            return 2;
        }
        (None, _) => {
            eprintln!("error: give BASELINE and CANDIDATE, or --baseline NAME and CANDIDATE");
            return 2;
        }
    };
    let overrides = compare::GateOverrides {
        noise: args.noise,
        alpha: args.alpha,
        min_delta_ms: args.min_delta.map(|d| d.as_secs_f64() * 1e3),
    };
    let c = match compare::compare_paths(&base, &cand, &overrides, args.force) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    println!("{}", compare::markdown(&c));
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&c).expect("a comparison serializes");
        if let Err(e) = std::fs::write(path, json) {
            eprintln!("error: {}: {e}", path.display());
            return 5;
        }
    }
    if let Some(dir) = &args.flamediff {
        match hsbench::profile::flamediff(&base, &cand, dir) {
            Ok(diffs) => {
                for d in diffs {
                    println!("flamediff {}: {}", d.scope, d.svg.display());
                }
            }
            Err(e) => eprintln!("no differential flamegraphs: {e}"),
        }
    }
    if c.regressions().is_empty() { 0 } else { 1 }
}

fn size(args: &SizeArgs) -> i32 {
    let sweep = match hsbench::run::sweep::load(&args.sweep) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let given = args.given();
    let dim = sweep.dimension.name();
    let value = match given.as_slice() {
        [(name, v)] if *name == dim => *v,
        [(name, _)] => {
            let e = hsbench::run::sweep::SizeError::WrongDimension {
                swept: dim.into(),
                asked: (*name).into(),
            };
            eprintln!("error: {e}");
            return 2;
        }
        _ => {
            eprintln!(
                "error: give the value of the swept dimension once: --{} N",
                dim.replace('_', "-")
            );
            return 2;
        }
    };
    match hsbench::run::sweep::extrapolate(&sweep, value, args.force) {
        Ok(rows) => {
            print!("{}", hsbench::run::sweep::size_report(&sweep, value, &rows));
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn fail(e: &RunError) -> i32 {
    eprintln!("error: {e}");
    e.exit_code()
}

fn http_load(a: &HttpLoadArgs) -> ExitCode {
    use hsbench::load::generator::{GeneratorSpec, run};
    let result = GeneratorSpec::parse_url(&a.url).and_then(|(addr, host, path)| {
        run(GeneratorSpec {
            addr,
            host,
            path,
            connections: a.connections,
            duration: a.duration,
            rate: a.rate,
            threads: a.threads,
        })
    });
    match result {
        Err(e) => {
            eprintln!("hsbench http-load: {e}");
            ExitCode::from(2)
        }
        Ok((r, _, _)) => {
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&r).expect("serializable")
                );
            } else {
                println!(
                    "{}\n{} requests in {:.2} s ({:.0}/s), {} errors, {} bytes in\n\
                     generator CPU {:.3} s user + {:.3} s sys: {:.0} requests per CPU-second\n\
                     corrected p50 {:.3} ms p99 {:.3} ms max {:.3} ms\n\
                     raw       p50 {:.3} ms p99 {:.3} ms max {:.3} ms",
                    r.model,
                    r.requests,
                    r.wall_s,
                    r.requests_per_s,
                    r.errors,
                    r.bytes_in,
                    r.cpu_user_s,
                    r.cpu_sys_s,
                    r.requests_per_cpu_s,
                    r.corrected.p50_ms,
                    r.corrected.p99_ms,
                    r.corrected.max_ms,
                    r.raw.p50_ms,
                    r.raw.p99_ms,
                    r.raw.max_ms
                );
                if let Some(l) = &r.send_lag {
                    println!(
                        "send lag  p50 {:.3} ms p99 {:.3} ms max {:.3} ms (hsbench's own lateness: due time → send)",
                        l.p50_ms, l.p99_ms, l.max_ms
                    );
                }
            }
            ExitCode::SUCCESS
        }
    }
}
