//! Waiting on a long step while telling the user which step it is (a heartbeat line).

use super::ctx::Ctx;
use crate::server::synapse::InstallStep;
use std::time::{Duration, Instant};

/// Wait for a long blocking step (an install), showing what it does: on a terminal a spinner
/// with the step and the elapsed time; otherwise a line every 30 s, so that a first install that
/// takes minutes is never silent.
pub(super) async fn heartbeat<T>(
    ctx: &Ctx<'_>,
    task: tokio::task::JoinHandle<T>,
    what: &str,
    step: &InstallStep,
) -> T {
    let say = |m: &str| ctx.say(m);
    wait_showing_steps(ctx.opts.quiet, &say, task, what, step).await
}

/// [`heartbeat`] without a run: `say` prints a stage line.
pub(crate) async fn wait_showing_steps<T>(
    quiet: bool,
    say: &dyn Fn(&str),
    mut task: tokio::task::JoinHandle<T>,
    what: &str,
    step: &InstallStep,
) -> T {
    use std::io::IsTerminal;
    let started = Instant::now();
    let spinner = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .expect("spinner template"),
        );
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    });
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last_line = Instant::now();
    loop {
        tokio::select! {
            r = &mut task => {
                if let Some(pb) = &spinner {
                    pb.finish_and_clear();
                }
                return r.expect("blocking task");
            }
            _ = tick.tick() => {
                let now = step.get();
                let msg = if now.is_empty() { what.to_string() } else { format!("{what}: {now}") };
                match &spinner {
                    Some(pb) => pb.set_message(msg),
                    None if last_line.elapsed() >= Duration::from_secs(30) => {
                        last_line = Instant::now();
                        say(&format!("still {msg}: {:.0} s", started.elapsed().as_secs_f64()));
                    }
                    None => {}
                }
            }
        }
    }
}
