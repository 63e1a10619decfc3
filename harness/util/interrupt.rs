//! Signals that end a command: SIGINT (Ctrl+C), SIGTERM (`timeout`, systemd, Kubernetes, CI
//! cancellation) and SIGHUP (a closed terminal) all end `run`, `seed`, `serve` and sweeps the same
//! clean way: the running stage is dropped (its servers are killed by their guards, by process
//! group), the work directory is removed, and result.json says `interrupted`. A second signal
//! forces the exit at once (servers die with hsbench: they carry a parent-death signal).
//!
//! [`watch`] installs the handlers once per process (inside a tokio runtime) and hands out a
//! receiver; [`interrupted`] resolves with the first signal's number.

use std::sync::OnceLock;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

static FIRST: OnceLock<watch::Receiver<Option<i32>>> = OnceLock::new();

/// The name of a signal hsbench handles.
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

/// Install the handlers (once; must be called inside a tokio runtime) and return a receiver
/// that holds the first signal's number once one arrived.
pub fn watch() -> watch::Receiver<Option<i32>> {
    FIRST
        .get_or_init(|| {
            let (tx, rx) = watch::channel(None);
            let mut streams = Vec::new();
            for (kind, no) in [
                (SignalKind::interrupt(), libc::SIGINT),
                (SignalKind::terminate(), libc::SIGTERM),
                (SignalKind::hangup(), libc::SIGHUP),
            ] {
                match signal(kind) {
                    Ok(s) => streams.push((s, no)),
                    Err(e) => eprintln!("WARNING: cannot handle {}: {e}", name(no)),
                }
            }
            tokio::spawn(async move {
                let mut seen = 0u32;
                loop {
                    let next = futures::future::select_all(
                        streams
                            .iter_mut()
                            .map(|(s, no)| Box::pin(async move { s.recv().await.map(|_| *no) })),
                    );
                    let (got, _, _) = next.await;
                    let Some(no) = got else { return };
                    seen += 1;
                    if seen == 1 {
                        eprintln!(
                            "\n{}: stopping the servers and writing partial results (send it again to exit at once)",
                            name(no)
                        );
                        let _ = tx.send(Some(no));
                    } else {
                        eprintln!("{}: second signal, exiting now", name(no));
                        std::process::exit(i32::from(super::exit::Exit::Signal(no).code()));
                    }
                }
            });
            rx
        })
        .clone()
}

/// Resolves with the number of the first SIGINT, SIGTERM or SIGHUP (at once if one came
/// already).
pub async fn interrupted() -> i32 {
    let mut rx = watch();
    let got = rx.wait_for(Option::is_some).await.map(|v| *v);
    match got {
        Ok(Some(signal)) => signal,
        _ => std::future::pending().await,
    }
}

/// The first signal's number, if one arrived (without waiting).
pub fn pending() -> Option<i32> {
    FIRST.get().and_then(|rx| *rx.borrow())
}
