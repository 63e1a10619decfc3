//! One boot of a run: its spec, the fixture restored before it, its report line and
//! waterfall.

use super::ctx::Ctx;
use super::error::RunError;
use super::error::output_error;
use super::error::workload_error;
use crate::boot::{BootRecord, BootSpec};
use crate::dataset::fixture::{Fixture, FixtureError};
use crate::scenario::{RestoreMode, Scenario};
use crate::server::{Instance, ServerError, ServerProfile, free_port};
use crate::util::fs::write_atomic;
use std::path::Path;

/// The fixture every boot restores from with `[boot] restore = "each"` (`None`: restored once).
/// Synapse's config keys for the boots on the finished dataset: `[dataset] presence = "stays"`
/// (presence untracked), then the scenario's own `[server.synapse_config]`, which wins.
pub(super) fn boot_config(scenario: &Scenario) -> Option<serde_json::Value> {
    let mut o = serde_json::Map::new();
    if scenario.dataset.presence == crate::scenario::PresenceMode::Stays {
        o.insert(
            "presence".into(),
            serde_json::json!({"enabled": "untracked"}),
        );
    }
    if let Some(serde_json::Value::Object(extra)) = &scenario.server.synapse_config {
        o.extend(extra.clone());
    }
    (!o.is_empty()).then_some(serde_json::Value::Object(o))
}

pub(super) fn per_boot_fixture(ctx: &Ctx<'_>) -> Result<Option<Fixture>, RunError> {
    if ctx.scenario.boot.restore == RestoreMode::Once {
        return Ok(None);
    }
    let key = ctx
        .result
        .dataset
        .as_ref()
        .and_then(|d| d.fixture.as_ref())
        .map(|f| f.key.clone());
    key.as_deref()
        .and_then(|k| ctx.opts.fixtures.get(k))
        .map(Some)
        .ok_or_else(|| {
            workload_error("boot.restore")(
                "[boot] restore = \"each\" needs the dataset's fixture, and this run has none \
                 (the fixture cache could not keep it)",
            )
        })
}

/// `[boot] restore = "each"`: wipe the data directory and restore it from the fixture, so that
/// the next boot starts from the fixture's data, not from what the boot before it left (a
/// start-up that rewrites state, e.g. a presence reset, would otherwise be measured once and
/// skipped by every later boot). What the last boot wrote (new SSTs, WAL files, SQLite's -wal)
/// goes too. Returns the seconds it took.
pub(super) async fn restore_before_boot(
    ctx: &Ctx<'_>,
    inst: &Instance,
    fixture: Option<&Fixture>,
) -> Result<Option<f64>, RunError> {
    let Some(fx) = fixture else {
        return Ok(None);
    };
    let (store, fx, dd) = (
        ctx.opts.fixtures.clone(),
        fx.clone(),
        inst.data_dir().to_path_buf(),
    );
    let secs = tokio::task::spawn_blocking(move || {
        if dd.exists() {
            std::fs::remove_dir_all(&dd).map_err(|source| FixtureError::Io {
                path: dd.clone(),
                source,
            })?;
        }
        store.restore(&fx, &dd, None).map(|(secs, _)| secs)
    })
    .await
    .expect("restore task")?;
    Ok(Some(secs))
}

pub(super) fn boot_spec<'p>(
    inst: &Instance,
    profile: &'p ServerProfile,
    run_dir: &Path,
    label: &str,
    token: Option<String>,
    scenario: &Scenario,
    extra_pgids: &[i32],
) -> Result<BootSpec<'p>, RunError> {
    let port = free_port().map_err(|e| ServerError::io(Path::new("127.0.0.1:0"), e))?;
    inst.write_config(port)?;
    Ok(BootSpec {
        label: label.to_string(),
        profile,
        command: inst.command(port),
        port,
        sync_token: token,
        timeout: scenario.boot.timeout,
        log_path: run_dir.join(format!("{label}.log")),
        extra_pgids: extra_pgids.to_vec(),
        wrapper: None,
        background: None,
        on_marker: None,
        confine: None,
    })
}

/// `<label>-waterfall.svg` of one boot in the run directory, listed in the result's files.
pub(super) fn write_waterfall(
    ctx: &mut Ctx<'_>,
    inst: &Instance,
    rec: &BootRecord,
    samples: &[crate::metrics::ResourceSample],
    note: &str,
) -> Result<(), RunError> {
    let name = format!("{}-waterfall.svg", rec.label);
    let title = format!(
        "{} · {} · {}{note}",
        ctx.scenario.name,
        inst.title(),
        rec.label
    );
    let path = ctx.run_dir.join(&name);
    write_atomic(
        &path,
        crate::report::svg::waterfall(rec, samples, &title).as_bytes(),
    )
    .map_err(output_error(path))?;
    ctx.result.files.push(name);
    Ok(())
}

pub(super) fn report_boot(ctx: &Ctx<'_>, rec: &BootRecord) {
    let phases: Vec<String> = rec
        .phases
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p.name,
                p.duration_ms
                    .map_or("missing".into(), crate::util::fmt::fmt_ms)
            )
        })
        .collect();
    let background = match &rec.background {
        Some(b) => match b.at_ms {
            Some(at) => format!(
                "; background work done at {} ({})",
                crate::util::fmt::fmt_ms(at),
                b.source
            ),
            None => format!(
                "; background work not done within {}",
                crate::util::fmt::fmt_ms(b.limit_ms)
            ),
        },
        None => String::new(),
    };
    ctx.say(&format!(
        "  ready in {} ({}){background}; shutdown {}",
        crate::util::fmt::fmt_ms(rec.time_to_ready_ms),
        phases.join(", "),
        rec.shutdown_ms
            .map_or("HUNG (killed)".into(), crate::util::fmt::fmt_ms)
    ));
}
