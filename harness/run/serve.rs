//! `hsbench serve`: a booted server over a ready dataset, kept up for a person or another tool.

use super::ctx::Ctx;
use super::ctx::finish_files;
use super::error::RunError;
use super::error::output_error;
use super::options::stopped;
use super::options::{ServeHooks, ServeInfo};
use super::spec::boot_spec;
use super::target::Target;
use crate::boot::boot;
use crate::dataset::seed::Credentials;
use crate::util::fs::write_atomic;
use std::path::Path;
use std::time::Duration;

/// `serve`: one boot over the dataset, kept up until stopped; the credentials are written for
/// the shards that attach.
pub(super) async fn serve_stage(
    ctx: &mut Ctx<'_>,
    t: &Target,
    hooks: ServeHooks,
    serving: &std::sync::atomic::AtomicBool,
) -> Result<(), RunError> {
    let Target {
        inst,
        creds,
        profile,
        db,
        ..
    } = t;
    let run_dir = ctx.run_dir.clone();
    let shutdown = ctx.scenario.boot.shutdown_timeout;
    let spec = t.confined(boot_spec(
        inst,
        profile,
        &run_dir,
        "serve",
        Some(creds.tokens[0].clone()),
        ctx.scenario,
        &db.pgids(),
    )?);
    let mut server = boot(spec).await?;
    if let Err(e) = save_credentials(&hooks.credentials_out, creds) {
        let _ = server.stop(shutdown, &run_dir).await;
        return Err(e);
    }
    let info = ServeInfo {
        base_url: server.base_url(),
        credentials: hooks.credentials_out.clone(),
        server_pid: server.server_pid(),
        run_dir: run_dir.clone(),
    };
    let info_path = run_dir.join("serve.json");
    write_atomic(
        &info_path,
        &serde_json::to_vec_pretty(&info).expect("serializable"),
    )
    .map_err(output_error(info_path.clone()))?;
    ctx.result.files.push("serve.json".into());
    // And beside the credentials, where shards find both (`run --attach <that serve.json>`).
    let beside = hooks
        .credentials_out
        .parent()
        .unwrap_or(Path::new("."))
        .join("serve.json");
    if beside != info_path {
        write_atomic(
            &beside,
            &serde_json::to_vec_pretty(&info).expect("serializable"),
        )
        .map_err(output_error(beside))?;
    }
    ctx.save()?;
    ctx.say(&format!(
        "serving {} at {} (pid {}); credentials in {}; Ctrl+C or SIGTERM stops it",
        ctx.scenario.name,
        info.base_url,
        info.server_pid,
        info.credentials.display()
    ));
    serving.store(true, std::sync::atomic::Ordering::SeqCst);
    if let Some(tx) = hooks.ready {
        let _ = tx.send(info);
    }
    let stop = stopped(hooks.stop);
    tokio::pin!(stop);
    let alive = loop {
        tokio::select! {
            _ = &mut stop => break Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if let Err(e) = server.check_alive() {
                    break Err(e);
                }
            }
        }
    };
    ctx.result.workload_boot = Some(server.stop(shutdown, &run_dir).await);
    alive?;
    ctx.save()?;
    finish_files(ctx)
}

/// Create `path` (and its parent directories) readable by its owner only, with `bytes`.
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// Tokens go to `path` readable by its owner only: the run's private working directory, or
/// where `serve` was told to put them; never into results.
pub(super) fn save_credentials(path: &Path, creds: &Credentials) -> Result<(), RunError> {
    write_private(
        path,
        &serde_json::to_vec(creds).expect("credentials serialize"),
    )
    .map_err(|source| RunError::Output {
        path: path.to_path_buf(),
        source,
    })
}
