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
