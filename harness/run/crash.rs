//! Crash-restart cycles: SIGKILL under writes, the recovery boot, and the read-back of every
//! acknowledged write.

use super::ctx::Ctx;
use super::dataset::api_client;
use super::error::RunError;
use super::spec::boot_spec;
use super::spec::report_boot;
use super::spec::write_waterfall;
use super::target::Target;
use crate::boot::summary::summarize_boots;
use crate::boot::{BootRecord, boot};
use crate::matrix::MatrixClient;
use std::time::{Duration, Instant};

/// `[boot] crash_restarts` (after the workloads): boot, send `crash_writes` messages into the
/// big room from up to eight of its members, SIGKILL the server's process group once half were acknowledged (the
/// rest in flight), then time the next boot over the same data. What a crash costs at the next
/// start (WAL replay, crash checks) is the figure operators ask for.
pub(super) async fn crash_restarts(
    ctx: &mut Ctx<'_>,
    t: &Target,
    probe_token: &str,
) -> Result<(), RunError> {
    let Target {
        inst,
        creds,
        plan,
        profile,
        db,
        ..
    } = t;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let scenario = ctx.scenario;
    if scenario.boot.crash_restarts == 0 {
        return Ok(());
    }
    let run_dir = ctx.run_dir.clone();
    let shutdown = scenario.boot.shutdown_timeout;
    let writers: Vec<String> = plan
        .room(0)
        .members
        .iter()
        .take(8)
        .map(|&m| creds.tokens[m as usize].clone())
        .collect();
    let room_id = creds.room_ids[0].clone();
    let total = u64::from(scenario.boot.crash_writes);
    // Both boots of a cycle: warm, probed with the dataset's first user.
    let spec = |label: &str| {
        boot_spec(
            inst,
            profile,
            &run_dir,
            label,
            Some(probe_token.to_string()),
            scenario,
            &db.pgids(),
        )
        .map(|s| t.confined(s))
    };
    for i in 1..=scenario.boot.crash_restarts {
        let label = format!("crash-{i}");
        ctx.say(&format!(
            "{label}: boot, {total} writes into the big room, SIGKILL with half acknowledged"
        ));
        let server = boot(spec(&label)?).await?;
        let client = api_client(&server.base_url(), Duration::from_secs(30), "crash writes")?;
        let (sent, acked) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        // The event ids the server acknowledged: each must be there after the crash.
        let acked_ids = Arc::new(std::sync::Mutex::new(Vec::<ruma::OwnedEventId>::new()));
        let writer = {
            let (sent, acked, writers, room_id, acked_ids) = (
                sent.clone(),
                acked.clone(),
                writers.clone(),
                room_id.clone(),
                acked_ids.clone(),
            );
            tokio::spawn(async move {
                use futures::StreamExt;
                futures::stream::iter(0..total)
                    .for_each_concurrent(8, |k| {
                        let (client, sent, acked, acked_ids) = (&client, &sent, &acked, &acked_ids);
                        let token = writers[k as usize % writers.len()].clone();
                        let room_id = room_id.clone();
                        async move {
                            let content = serde_json::json!({
                                "msgtype": "m.text",
                                "body": format!("crash write {k} of {total}")
                            });
                            let raw = ruma::serde::Raw::from_json(
                                serde_json::value::to_raw_value(&content).expect("json"),
                            );
                            let req = ruma::api::client::message::send_message_event::v3::Request::new_raw(
                                room_id,
                                ruma::OwnedTransactionId::from(format!("hsb-crash-{i}-{k}")),
                                "m.room.message".into(),
                                raw,
                            );
                            sent.fetch_add(1, Ordering::Relaxed);
                            if let Ok(resp) = client.send(req, Some(&token)).await {
                                acked_ids.lock().expect("not poisoned").push(resp.event_id);
                                acked.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    })
                    .await;
            })
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while acked.load(Ordering::Relaxed) < total.div_ceil(2)
            && !writer.is_finished()
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let killed_after_ms = server.elapsed_ms() - server.time_to_ready_ms();
        let (killed, _) = server.kill(&run_dir).await;
        writer.abort();
        let _ = writer.await;
        let (writes_sent, writes_acked) =
            (sent.load(Ordering::Relaxed), acked.load(Ordering::Relaxed));
        ctx.say(&format!(
            "  killed {} after ready: {writes_acked} of {writes_sent} writes acknowledged",
            crate::util::fmt::fmt_ms(killed_after_ms)
        ));

        let server = boot(spec(&format!("after-crash-{i}"))?).await?;
        // Jepsen-style: read every acknowledged write back from the recovered server.
        let ids = std::mem::take(&mut *acked_ids.lock().expect("not poisoned"));
        let reader = api_client(
            &server.base_url(),
            Duration::from_secs(30),
            "crash read-back",
        )?;
        let durability = read_back(&reader, &writers[0], &room_id, &ids).await;
        let (recovery, samples) = server.stop_with_samples(shutdown, &run_dir).await;
        write_waterfall(
            ctx,
            inst,
            &recovery,
            &samples,
            " (first boot after SIGKILL)",
        )?;
        report_boot(ctx, &recovery);
        match &durability {
            Ok(d) if d.lost.is_empty() => ctx.say(&format!(
                "  read back: all {} acknowledged writes present",
                d.checked
            )),
            Ok(d) => ctx.say(&format!(
                "  LOST: {} of {} acknowledged writes are missing after the crash",
                d.lost.len(),
                d.checked
            )),
            Err(e) => ctx.say(&format!("  read back failed: {e}")),
        }
        let (writes_checked, writes_lost, lost_event_ids, read_back_error) = match durability {
            Ok(d) => (
                Some(d.checked),
                Some(d.lost.len() as u64),
                d.lost.into_iter().take(20).collect(),
                None,
            ),
            Err(e) => (None, None, Vec::new(), Some(e.to_string())),
        };
        ctx.result.crash_restarts.push(crate::result::CrashRestart {
            killed,
            writes_sent,
            writes_acked,
            killed_after_ms,
            recovery,
            writes_checked,
            writes_lost,
            lost_event_ids,
            read_back_error,
        });
        let recoveries: Vec<BootRecord> = ctx
            .result
            .crash_restarts
            .iter()
            .map(|c| c.recovery.clone())
            .collect();
        ctx.result.crash_boot_summary = Some(summarize_boots(&recoveries));
        ctx.save()?;
    }
    Ok(())
}

/// What reading the acknowledged writes back after a crash found.
pub(super) struct Durability {
    checked: u64,
    /// Acknowledged before the SIGKILL, missing after the recovery boot.
    lost: Vec<String>,
}

/// Fetch every acknowledged event from the recovered server (8 at a time); a 404 is a lost
/// write, any other failure makes the check fail (it says nothing about durability).
pub(super) async fn read_back(
    client: &MatrixClient,
    token: &str,
    room_id: &ruma::OwnedRoomId,
    ids: &[ruma::OwnedEventId],
) -> Result<Durability, crate::matrix::CallError> {
    use futures::StreamExt;
    let results: Vec<Result<Option<String>, crate::matrix::CallError>> = futures::stream::iter(ids)
        .map(|id| async move {
            let req = ruma::api::client::room::get_room_event::v3::Request::new(
                room_id.clone(),
                id.clone(),
            );
            match client.send(req, Some(token)).await {
                Ok(_) => Ok(None),
                Err(crate::matrix::CallError::Status { status: 404, .. }) => {
                    Ok(Some(id.to_string()))
                }
                Err(e) => Err(e),
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut lost = Vec::new();
    for r in results {
        if let Some(id) = r? {
            lost.push(id);
        }
    }
    Ok(Durability {
        checked: ids.len() as u64,
        lost,
    })
}
