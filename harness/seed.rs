//! Loading a dataset plan into a live server through the Client-Server API, with bounded
//! concurrency, a progress bar per step, and the rate of every step measured.

use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use ruma::api::client::account::register;
use ruma::api::client::membership::join_room_by_id;
use ruma::api::client::message::send_message_event;
use ruma::api::client::room::{Visibility, create_room};
use ruma::api::client::uiaa::{AuthData, Dummy};
use ruma::events::room::message::RoomMessageEventContent;
use ruma::{OwnedRoomId, OwnedUserId};

use crate::dataset::{DatasetPlan, PlanTotals};
use crate::matrix::{CallError, MatrixClient};

/// A loading step failed: which step, which request, and what the server answered.
#[derive(Debug, thiserror::Error)]
#[error("loading the dataset failed at step `{step}` ({request}): {source}")]
pub struct SeedError {
    pub step: &'static str,
    pub request: String,
    #[source]
    pub source: CallError,
}

/// Access tokens of the dataset's users, by user index. Kept in the run's working directory,
/// never in results.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    pub user_ids: Vec<OwnedUserId>,
    pub tokens: Vec<String>,
    pub room_ids: Vec<OwnedRoomId>,
}

/// One loading step and its measured rate.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoadStep {
    pub name: String,
    pub count: u64,
    pub seconds: f64,
    pub rate_per_s: f64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoadReport {
    pub method: String,
    pub concurrency: usize,
    pub totals: PlanTotals,
    pub steps: Vec<LoadStep>,
    pub total_seconds: f64,
}

fn bar(step: &str, len: u64, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "  {prefix:>9} [{bar:30}] {pos}/{len} {per_sec:>10} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_prefix(step.to_string());
    pb
}

fn password(localpart: &str) -> String {
    format!("hsbench-{localpart}")
}

async fn register_user(
    client: &MatrixClient,
    localpart: &str,
) -> Result<(OwnedUserId, String), CallError> {
    let make = |session: Option<String>| {
        let mut req = register::v3::Request::new();
        req.username = Some(localpart.to_string());
        req.password = Some(password(localpart));
        req.initial_device_display_name = Some("hsbench".into());
        let mut dummy = Dummy::new();
        dummy.session = session;
        req.auth = Some(AuthData::Dummy(dummy));
        req
    };
    let resp = match client.send(make(None), None).await {
        Ok(r) => r,
        // Servers that insist on a UIA session first: answer with it.
        Err(CallError::Status {
            status: 401,
            uia_session: Some(s),
            ..
        }) => client.send(make(Some(s)), None).await?,
        Err(e) => return Err(e),
    };
    let token = resp.access_token.ok_or_else(|| CallError::Decode {
        endpoint: "POST /_matrix/client/v3/register".into(),
        message: "no access_token in the answer".into(),
    })?;
    Ok((resp.user_id, token))
}

/// Load `plan` into the server behind `client`.
pub async fn load(
    client: &MatrixClient,
    plan: &DatasetPlan,
    concurrency: usize,
    show_progress: bool,
) -> Result<(Credentials, LoadReport), SeedError> {
    let started = Instant::now();
    let totals = plan.totals();
    let mut steps = Vec::new();

    // 1. Users.
    let t = Instant::now();
    let pb = bar("register", totals.users, show_progress);
    let mut users: Vec<(u64, OwnedUserId, String)> = futures::stream::iter(plan.users())
        .map(|u| {
            let pb = &pb;
            async move {
                let r = register_user(client, &u.localpart)
                    .await
                    .map_err(|source| SeedError {
                        step: "register",
                        request: format!("register {}", u.localpart),
                        source,
                    })?;
                pb.inc(1);
                Ok::<_, SeedError>((u.index, r.0, r.1))
            }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    pb.finish_and_clear();
    users.sort_by_key(|u| u.0);
    let (user_ids, tokens): (Vec<_>, Vec<_>) = users.into_iter().map(|(_, id, t)| (id, t)).unzip();
    steps.push(step("register", totals.users, t));

    // 2. Rooms, created by their first member.
    let t = Instant::now();
    let pb = bar("rooms", totals.rooms, show_progress);
    let mut rooms: Vec<(u64, OwnedRoomId)> = futures::stream::iter(plan.rooms())
        .map(|room| {
            let (pb, tokens) = (&pb, &tokens);
            async move {
                let mut req = create_room::v3::Request::new();
                req.name = Some(room.name.clone());
                req.preset = Some(create_room::v3::RoomPreset::PublicChat);
                req.visibility = Visibility::Private;
                let resp = client
                    .send(req, Some(&tokens[room.creator() as usize]))
                    .await
                    .map_err(|source| SeedError {
                        step: "rooms",
                        request: format!("createRoom {}", room.name),
                        source,
                    })?;
                pb.inc(1);
                Ok::<_, SeedError>((room.index, resp.room_id))
            }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    pb.finish_and_clear();
    rooms.sort_by_key(|r| r.0);
    let room_ids: Vec<OwnedRoomId> = rooms.into_iter().map(|r| r.1).collect();
    steps.push(step("rooms", totals.rooms, t));

    // 3. Joins (the creator is already in).
    let t = Instant::now();
    let joins = totals.memberships - totals.rooms;
    let pb = bar("joins", joins, show_progress);
    futures::stream::iter(plan.rooms().flat_map(|r| {
        r.members[1..]
            .iter()
            .map(|&u| (r.index, u))
            .collect::<Vec<_>>()
    }))
    .map(|(room, user)| {
        let (pb, tokens, room_ids) = (&pb, &tokens, &room_ids);
        async move {
            let room_id = room_ids[room as usize].clone();
            client
                .send(
                    join_room_by_id::v3::Request::new(room_id.clone()),
                    Some(&tokens[user as usize]),
                )
                .await
                .map_err(|source| SeedError {
                    step: "joins",
                    request: format!("join {} as {}", room_id, DatasetPlan::localpart(user)),
                    source,
                })?;
            pb.inc(1);
            Ok::<_, SeedError>(())
        }
    })
    .buffer_unordered(concurrency)
    .try_collect::<Vec<()>>()
    .await?;
    pb.finish_and_clear();
    steps.push(step("joins", joins, t));

    // 4. Messages.
    let t = Instant::now();
    let pb = bar("messages", totals.messages, show_progress);
    futures::stream::iter(plan.rooms().flat_map(|r| {
        plan.messages(&r)
            .enumerate()
            .map(|(i, m)| (r.index, i, m))
            .collect::<Vec<_>>()
    }))
    .map(|(room, i, msg)| {
        let (pb, tokens, room_ids) = (&pb, &tokens, &room_ids);
        async move {
            let room_id = room_ids[room as usize].clone();
            let txn = ruma::OwnedTransactionId::from(format!("hsb-{room}-{i}"));
            let content = RoomMessageEventContent::text_plain(msg.body);
            let req = send_message_event::v3::Request::new(room_id.clone(), txn, &content)
                .expect("a text message serializes");
            client
                .send(req, Some(&tokens[msg.sender as usize]))
                .await
                .map_err(|source| SeedError {
                    step: "messages",
                    request: format!("message {i} into {room_id}"),
                    source,
                })?;
            pb.inc(1);
            Ok::<_, SeedError>(())
        }
    })
    .buffer_unordered(concurrency)
    .try_collect::<Vec<()>>()
    .await?;
    pb.finish_and_clear();
    steps.push(step("messages", totals.messages, t));

    Ok((
        Credentials {
            user_ids,
            tokens,
            room_ids,
        },
        LoadReport {
            method: "client-server API (register with m.login.dummy, createRoom, join, send)"
                .into(),
            concurrency,
            totals,
            steps,
            total_seconds: started.elapsed().as_secs_f64(),
        },
    ))
}

fn step(name: &str, count: u64, t: Instant) -> LoadStep {
    let seconds = t.elapsed().as_secs_f64();
    LoadStep {
        name: name.into(),
        count,
        seconds,
        rate_per_s: if seconds > 0.0 {
            count as f64 / seconds
        } else {
            0.0
        },
    }
}

/// What checking a loaded dataset through the server's own API found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VerifyReport {
    pub users_checked: u64,
    pub rooms_checked: u64,
    /// Individual comparisons made (joined rooms per user, members and messages per room).
    pub checks: u64,
    /// Every difference from the plan; empty when the server holds exactly the plan.
    pub mismatches: Vec<String>,
}

/// A deterministic sample of `n` indices out of `0..total`: first, last and evenly spaced.
fn sample(total: u64, n: u64) -> Vec<u64> {
    if total <= n {
        return (0..total).collect();
    }
    let mut v: Vec<u64> = (0..n).map(|i| i * (total - 1) / (n - 1).max(1)).collect();
    v.dedup();
    v
}

/// Compare the server's answers with the plan for a sample of users and rooms: each sampled
/// user's joined rooms (exact set), each sampled room's joined members (exact set) and its
/// message count.
pub async fn verify(
    client: &MatrixClient,
    plan: &DatasetPlan,
    creds: &Credentials,
    users: u64,
    rooms: u64,
) -> Result<VerifyReport, SeedError> {
    use ruma::api::Direction;
    use ruma::api::client::filter::RoomEventFilter;
    use ruma::api::client::membership::{joined_members, joined_rooms};
    use ruma::api::client::message::get_message_events;
    use std::collections::{BTreeMap, BTreeSet};

    let err = |request: String| {
        move |source| SeedError {
            step: "verify",
            request,
            source,
        }
    };
    let mut report = VerifyReport::default();
    let user_sample = sample(plan.spec().users, users);
    let room_sample = sample(plan.room_count(), rooms);
    let mut expected_rooms: BTreeMap<u64, BTreeSet<OwnedRoomId>> =
        user_sample.iter().map(|&u| (u, BTreeSet::new())).collect();
    for room in plan.rooms() {
        for m in &room.members {
            if let Some(set) = expected_rooms.get_mut(m) {
                set.insert(creds.room_ids[room.index as usize].clone());
            }
        }
    }
    for (&u, expected) in &expected_rooms {
        let resp = client
            .send(
                joined_rooms::v3::Request::new(),
                Some(&creds.tokens[u as usize]),
            )
            .await
            .map_err(err(format!(
                "joined_rooms as {}",
                DatasetPlan::localpart(u)
            )))?;
        let got: BTreeSet<OwnedRoomId> = resp.joined_rooms.into_iter().collect();
        report.users_checked += 1;
        report.checks += 1;
        if &got != expected {
            report.mismatches.push(format!(
                "{}: joined {} rooms, the plan says {}",
                DatasetPlan::localpart(u),
                got.len(),
                expected.len()
            ));
        }
    }
    for &r in &room_sample {
        let room = plan.room(r);
        let room_id = creds.room_ids[r as usize].clone();
        let token = &creds.tokens[room.creator() as usize];
        let resp = client
            .send(
                joined_members::v3::Request::new(room_id.clone()),
                Some(token),
            )
            .await
            .map_err(err(format!("joined_members of {}", room.name)))?;
        let got: BTreeSet<&OwnedUserId> = resp.joined.keys().collect();
        let expected: BTreeSet<&OwnedUserId> = room
            .members
            .iter()
            .map(|&m| &creds.user_ids[m as usize])
            .collect();
        report.rooms_checked += 1;
        report.checks += 2;
        if got != expected {
            report.mismatches.push(format!(
                "{}: {} joined members, the plan says {}",
                room.name,
                got.len(),
                expected.len()
            ));
        }
        let mut req = get_message_events::v3::Request::new(room_id, Direction::Backward);
        let want = plan.spec().messages_per_room;
        req.limit = ruma::UInt::try_from(want + 10).unwrap_or(ruma::UInt::MAX);
        let mut filter = RoomEventFilter::default();
        filter.types = Some(vec!["m.room.message".into()]);
        req.filter = filter;
        let resp = client
            .send(req, Some(token))
            .await
            .map_err(err(format!("messages of {}", room.name)))?;
        if resp.chunk.len() as u64 != want {
            report.mismatches.push(format!(
                "{}: {} messages, the plan says {want}",
                room.name,
                resp.chunk.len()
            ));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sample_is_deterministic_and_covers_ends() {
        assert_eq!(super::sample(5, 10), vec![0, 1, 2, 3, 4]);
        assert_eq!(super::sample(100, 3), vec![0, 49, 99]);
        assert_eq!(super::sample(1000, 5), vec![0, 249, 499, 749, 999]);
    }
}
