//! Loading a dataset plan into a live server through the Client-Server API, with bounded
//! concurrency, a progress bar per step, and the rate of every step measured.

use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use ruma::api::auth_scheme::SendAccessToken;
use ruma::api::client::account::register;
use ruma::api::client::config::set_global_account_data;
use ruma::api::client::membership::join_room_by_id;
use ruma::api::client::message::send_message_event;
use ruma::api::client::presence::set_presence;
use ruma::api::client::receipt::create_receipt;
use ruma::api::client::redact::redact_event;
use ruma::api::client::room::{Visibility, create_room};
use ruma::api::client::uiaa::{AuthData, Dummy, RegistrationToken};
use ruma::presence::PresenceState;
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};

use crate::dataset::plan::{
    DatasetPlan, EventKind, PlanTotals, RoomKind, STATE_EVENT_TYPE, UserPlan,
};
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
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct LoadStep {
    pub name: String,
    pub count: u64,
    pub seconds: f64,
    pub rate_per_s: f64,
}

#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct LoadReport {
    pub method: String,
    pub concurrency: usize,
    pub totals: PlanTotals,
    pub steps: Vec<LoadStep>,
    pub total_seconds: f64,
    /// Cut by a signal: only the steps that finished before it are listed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// The finished steps of a load in progress, shared with the run, so that a load a signal
/// cuts short still reports what it did.
#[derive(Debug, Clone, Default)]
pub struct StepLog(std::sync::Arc<std::sync::Mutex<(Option<Instant>, Vec<LoadStep>)>>);

impl StepLog {
    fn start(&self) {
        let mut g = self.0.lock().expect("not poisoned");
        *g = (Some(Instant::now()), Vec::new());
    }

    fn push(&self, step: LoadStep) {
        self.0.lock().expect("not poisoned").1.push(step);
    }

    /// The steps logged so far as a load report of a plan with `totals`, marked partial
    /// (`None` before any load).
    pub fn partial_report(&self, concurrency: usize, totals: PlanTotals) -> Option<LoadReport> {
        let g = self.0.lock().expect("not poisoned");
        let started = g.0?;
        Some(LoadReport {
            method: "client-server API (interrupted)".into(),
            concurrency,
            totals,
            steps: g.1.clone(),
            total_seconds: started.elapsed().as_secs_f64(),
            partial: true,
        })
    }
}

/// A load's steps, each also logged to the run's [`StepLog`].
pub(crate) struct Steps<'a> {
    list: Vec<LoadStep>,
    log: Option<&'a StepLog>,
    /// Say each step as it ends (progress bars are hidden when stderr is not a terminal).
    show: bool,
}

impl<'a> Steps<'a> {
    pub(crate) fn new(log: Option<&'a StepLog>, show: bool) -> Self {
        if let Some(l) = log {
            l.start();
        }
        Self {
            list: Vec::new(),
            log,
            show,
        }
    }

    pub(crate) fn push(&mut self, step: LoadStep) {
        if self.show {
            eprintln!(
                "==>   {}: {} in {:.1} s ({:.1}/s)",
                step.name, step.count, step.seconds, step.rate_per_s
            );
        }
        if let Some(l) = self.log {
            l.push(step.clone());
        }
        self.list.push(step);
    }
}

/// A progress bar with rate and ETA for one loading step (hidden when `show` is false).
pub(crate) fn bar(step: &str, len: u64, show: bool) -> ProgressBar {
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

/// How users are registered and log in.
#[derive(Clone, Copy)]
pub enum Registrar<'a> {
    /// Through the application service with this token: no password hashing, no rate limits.
    Appservice(&'a str),
    /// `/register` with a password and `m.login.dummy`.
    Password,
    /// `/register` with a password and the `m.login.registration_token` stage (servers that
    /// allow registration only with a token: the conduwuit family, Conduit).
    Token(&'a str),
    /// The conduwuit family with hsbench's application service: users the plan puts online
    /// register with a password and the registration token, the rest through the application
    /// service. These servers count an account without a password as not local
    /// (`list_local_users`), and the start-up presence reset walks only local users: its
    /// subjects, the online users, keep their passwords; the argon2 hash of everyone else's
    /// (~41 ms of server CPU each on tuwunel 1.4.6) is saved.
    AppserviceExceptOnline {
        appservice: &'a str,
        /// The registration token (`None`: open registration with `m.login.dummy`).
        token: Option<&'a str>,
    },
}

impl<'a> Registrar<'a> {
    /// How `user` registers and logs in.
    pub fn for_user(self, user: &UserPlan) -> Registrar<'a> {
        match self {
            Registrar::AppserviceExceptOnline { token, .. } if user.presence_online => {
                token.map_or(Registrar::Password, Registrar::Token)
            }
            Registrar::AppserviceExceptOnline { appservice, .. } => {
                Registrar::Appservice(appservice)
            }
            r => r,
        }
    }

    /// For the load report: how accounts were made.
    pub fn describe(self) -> &'static str {
        match self {
            Registrar::Appservice(_) => "users registered by an application service",
            Registrar::Password => "users registered with a password and m.login.dummy",
            Registrar::Token(_) => {
                "users registered with a password and m.login.registration_token"
            }
            Registrar::AppserviceExceptOnline { .. } => {
                "users the plan puts online registered with a password, the others by an \
                 application service"
            }
        }
    }
}

async fn register_user(
    client: &MatrixClient,
    localpart: &str,
    registrar: Registrar<'_>,
) -> Result<(OwnedUserId, String), CallError> {
    let resp = match registrar {
        Registrar::Appservice(token) => {
            let mut req = register::v3::Request::new();
            req.username = Some(localpart.to_string());
            req.login_type = Some(register::LoginType::ApplicationService);
            req.initial_device_display_name = Some("hsbench".into());
            client
                .send_with(req, SendAccessToken::Appservice(token))
                .await?
        }
        Registrar::AppserviceExceptOnline { .. } => {
            unreachable!("resolved per user by Registrar::for_user")
        }
        Registrar::Password | Registrar::Token(_) => {
            let make = |session: Option<String>| {
                let mut req = register::v3::Request::new();
                req.username = Some(localpart.to_string());
                req.password = Some(password(localpart));
                req.initial_device_display_name = Some("hsbench".into());
                req.auth = Some(match registrar {
                    Registrar::Token(token) => {
                        let mut t = RegistrationToken::new(token.to_string());
                        t.session = session;
                        AuthData::RegistrationToken(t)
                    }
                    _ => {
                        let mut dummy = Dummy::new();
                        dummy.session = session;
                        AuthData::Dummy(dummy)
                    }
                });
                req
            };
            match client.send(make(None), None).await {
                Ok(r) => r,
                // Servers that insist on a UIA session first: answer with it.
                Err(CallError::Status {
                    status: 401,
                    uia_session: Some(s),
                    ..
                }) => client.send(make(Some(s)), None).await?,
                Err(e) => return Err(e),
            }
        }
    };
    let token = resp.access_token.ok_or_else(|| CallError::Decode {
        endpoint: "POST /_matrix/client/v3/register".into(),
        source: "no access_token in the answer".into(),
    })?;
    Ok((resp.user_id, token))
}

/// Wait until the server accepts hsbench's application service token (a server that registers
/// it from its admin console does so just after it starts listening): `whoami` as the service.
pub async fn wait_for_appservice(
    client: &MatrixClient,
    token: &str,
    within: std::time::Duration,
) -> Result<(), CallError> {
    use ruma::api::client::account::whoami;
    let deadline = Instant::now() + within;
    loop {
        match client
            .send_with(
                whoami::v3::Request::new(),
                SendAccessToken::Appservice(token),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

/// A second login of a user: a new device with its own token.
async fn login_again(
    client: &MatrixClient,
    localpart: &str,
    registrar: Registrar<'_>,
) -> Result<(), CallError> {
    use ruma::api::client::session::login;
    use ruma::api::client::uiaa::{MatrixUserIdentifier, UserIdentifier};
    let id = UserIdentifier::Matrix(MatrixUserIdentifier::new(localpart.to_string()));
    let (info, access) = match registrar {
        Registrar::Appservice(token) => (
            login::v3::LoginInfo::ApplicationService(login::v3::ApplicationService::new(id)),
            SendAccessToken::Appservice(token),
        ),
        Registrar::AppserviceExceptOnline { .. } => {
            unreachable!("resolved per user by Registrar::for_user")
        }
        Registrar::Password | Registrar::Token(_) => (
            login::v3::LoginInfo::Password(login::v3::Password::new(id, password(localpart))),
            SendAccessToken::None,
        ),
    };
    let mut req = login::v3::Request::new(info);
    req.initial_device_display_name = Some("hsbench second device".into());
    client.send_with(req, access).await.map(|_| ())
}

fn raw_json<T>(v: serde_json::Value) -> ruma::serde::Raw<T> {
    ruma::serde::Raw::from_json(
        serde_json::value::to_raw_value(&v).expect("a JSON value serializes"),
    )
}

/// Runs one loading step: `items` through `f`, `concurrency` at a time, with a progress bar and
/// the step's rate recorded. The first failure stops the step.
async fn run_step<I, F, Fut>(
    steps: &mut Steps<'_>,
    name: &'static str,
    len: u64,
    show: bool,
    concurrency: usize,
    items: I,
    f: F,
) -> Result<(), SeedError>
where
    I: Iterator,
    F: Fn(I::Item) -> Fut,
    Fut: std::future::Future<Output = Result<u64, SeedError>>,
{
    let t = Instant::now();
    let pb = bar(name, len, show);
    let done = futures::stream::iter(items)
        .map(|item| {
            let fut = f(item);
            let pb = &pb;
            async move {
                let n = fut.await?;
                pb.inc(n);
                Ok::<u64, SeedError>(n)
            }
        })
        .buffer_unordered(concurrency)
        .try_fold(0u64, |acc, n| async move { Ok(acc + n) })
        .await;
    pb.finish_and_clear();
    let count = done?;
    if len > 0 {
        steps.push(step(name, count, t));
    }
    Ok(())
}

/// Load `plan` into the server behind `client`.
pub async fn load(
    client: &MatrixClient,
    plan: &DatasetPlan,
    concurrency: usize,
    show_progress: bool,
    registrar: Registrar<'_>,
    log: Option<&StepLog>,
) -> Result<(Credentials, LoadReport), SeedError> {
    let started = Instant::now();
    let totals = plan.totals();
    let mut steps = Steps::new(log, show_progress);
    let s = Seeder {
        client,
        plan,
        conc: concurrency,
        show: show_progress,
        registrar,
        totals: &totals,
    };
    let (user_ids, tokens) = register_users(s, &mut steps).await?;
    let mut creds = Credentials {
        user_ids,
        tokens,
        room_ids: Vec::new(),
    };
    profiles(s, &mut steps, &creds).await?;
    creds.room_ids = create_rooms(s, &mut steps, &creds).await?;
    joins(s, &mut steps, &creds).await?;
    direct(s, &mut steps, &creds).await?;
    let targets = timelines(s, &mut steps, &creds).await?;
    receipts(s, &mut steps, &creds, targets).await?;
    Ok((
        creds,
        LoadReport {
            method: format!("client-server API; {}", registrar.describe()),
            concurrency,
            totals,
            steps: steps.list,
            total_seconds: started.elapsed().as_secs_f64(),
            partial: false,
        },
    ))
}

/// What every loading step needs: the server, the plan and its totals, how many requests at
/// once, whether to show progress, and how users register.
#[derive(Clone, Copy)]
struct Seeder<'a> {
    client: &'a MatrixClient,
    plan: &'a DatasetPlan,
    totals: &'a PlanTotals,
    conc: usize,
    show: bool,
    registrar: Registrar<'a>,
}

/// The event each planned read receipt points at: (room index, [(member, event id)]).
type ReceiptTargets = Vec<(usize, Vec<(u64, OwnedEventId)>)>;

/// A failed request of a step, as the error the load stops with.
fn fail(step: &'static str, request: String) -> impl FnOnce(CallError) -> SeedError {
    move |source| SeedError {
        step,
        request,
        source,
    }
}

/// Users: one step per way of registering; their ids and tokens by user index.
async fn register_users(
    s: Seeder<'_>,
    steps: &mut Steps<'_>,
) -> Result<(Vec<OwnedUserId>, Vec<String>), SeedError> {
    let Seeder {
        client,
        plan,
        conc,
        show,
        registrar,
        totals,
    } = s;
    // 1. Users: one step per way of registering (their rates differ by orders of magnitude).
    let mut users: Vec<(u64, OwnedUserId, String)> = Vec::with_capacity(totals.users as usize);
    let ways: Vec<(&'static str, bool)> = match registrar {
        Registrar::AppserviceExceptOnline { .. } => {
            vec![
                ("register (appservice)", false),
                ("register (password)", true),
            ]
        }
        _ => vec![("register", false)],
    };
    let split = ways.len() > 1;
    for (name, online) in ways {
        let count = if split {
            plan.users().filter(|u| u.presence_online == online).count() as u64
        } else {
            totals.users
        };
        let t = Instant::now();
        let pb = bar(name, count, show);
        let mut part: Vec<(u64, OwnedUserId, String)> = futures::stream::iter(
            plan.users()
                .filter(|u| !split || u.presence_online == online),
        )
        .map(|u| {
            let pb = &pb;
            async move {
                let r = register_user(client, &u.localpart, registrar.for_user(&u))
                    .await
                    .map_err(fail("register", format!("register {}", u.localpart)))?;
                pb.inc(1);
                Ok::<_, SeedError>((u.index, r.0, r.1))
            }
        })
        .buffer_unordered(conc)
        .try_collect()
        .await?;
        pb.finish_and_clear();
        users.append(&mut part);
        if count > 0 || !split {
            steps.push(step(name, count, t));
        }
    }
    users.sort_by_key(|u| u.0);
    let (user_ids, tokens): (Vec<_>, Vec<_>) = users.into_iter().map(|(_, id, t)| (id, t)).unzip();
    Ok((user_ids, tokens))
}

/// Display names, avatars, second devices and presence.
async fn profiles(
    s: Seeder<'_>,
    steps: &mut Steps<'_>,
    creds: &Credentials,
) -> Result<(), SeedError> {
    let Seeder {
        client,
        plan,
        conc,
        show,
        registrar,
        totals,
    } = s;
    let (user_ids, tokens) = (&creds.user_ids, &creds.tokens);
    // 2. Profiles, devices and presence (display names before any join, so that membership
    //    events carry them and no room needs updating afterwards).
    run_step(
        steps,
        "display names",
        totals.display_names,
        show,
        conc,
        plan.users().filter(|u| u.display_name.is_some()),
        |u| async move {
            #[allow(deprecated)]
            let req = ruma::api::client::profile::set_display_name::v3::Request::new(
                user_ids[u.index as usize].clone(),
                u.display_name.clone(),
            );
            client
                .send(req, Some(&tokens[u.index as usize]))
                .await
                .map_err(fail(
                    "display names",
                    format!("display name of {}", u.localpart),
                ))?;
            Ok(1)
        },
    )
    .await?;
    run_step(
        steps,
        "avatars",
        totals.avatars,
        show,
        conc,
        plan.users().filter(|u| u.avatar_url.is_some()),
        |u| async move {
            let url = u.avatar_url.clone().expect("filtered");
            #[allow(deprecated)]
            let req = ruma::api::client::profile::set_avatar_url::v3::Request::new(
                user_ids[u.index as usize].clone(),
                Some(url.into()),
            );
            client
                .send(req, Some(&tokens[u.index as usize]))
                .await
                .map_err(fail("avatars", format!("avatar of {}", u.localpart)))?;
            Ok(1)
        },
    )
    .await?;
    run_step(
        steps,
        "devices",
        totals.extra_devices,
        show,
        conc,
        plan.users().filter(|u| u.devices > 1),
        |u| async move {
            login_again(client, &u.localpart, registrar.for_user(&u))
                .await
                .map_err(fail("devices", format!("second login of {}", u.localpart)))?;
            Ok(1)
        },
    )
    .await?;
    run_step(
        steps,
        "presence",
        totals.presence_online,
        show,
        conc,
        plan.users().filter(|u| u.presence_online),
        |u| async move {
            let req = set_presence::v3::Request::new(
                user_ids[u.index as usize].clone(),
                PresenceState::Online,
            );
            client
                .send(req, Some(&tokens[u.index as usize]))
                .await
                .map_err(fail("presence", format!("presence of {}", u.localpart)))?;
            Ok(1)
        },
    )
    .await?;
    Ok(())
}

/// Rooms, created by their first member with their invites and initial state; their ids by room index.
async fn create_rooms(
    s: Seeder<'_>,
    steps: &mut Steps<'_>,
    creds: &Credentials,
) -> Result<Vec<OwnedRoomId>, SeedError> {
    let Seeder {
        client,
        plan,
        conc,
        show,
        totals,
        ..
    } = s;
    let (user_ids, tokens) = (&creds.user_ids, &creds.tokens);
    // 3. Rooms, created by their first member, with their invites and initial state.
    let t = Instant::now();
    let pb = bar("rooms", totals.rooms, show);
    let mut rooms: Vec<(u64, OwnedRoomId)> = futures::stream::iter(plan.rooms())
        .map(|room| {
            let pb = &pb;
            async move {
                let mut req = create_room::v3::Request::new();
                req.visibility = Visibility::Private;
                req.preset = Some(match room.kind {
                    RoomKind::Big | RoomKind::Public => create_room::v3::RoomPreset::PublicChat,
                    RoomKind::Private => create_room::v3::RoomPreset::PrivateChat,
                    RoomKind::Direct => create_room::v3::RoomPreset::TrustedPrivateChat,
                });
                // Batched where the API allows: invites and large initial state ride on the
                // createRoom request itself.
                match room.kind {
                    RoomKind::Direct => req.is_direct = true,
                    _ => req.name = Some(room.name.clone()),
                }
                req.invite = room
                    .invited()
                    .iter()
                    .map(|&u| user_ids[u as usize].clone())
                    .collect();
                req.initial_state = (0..room.state_events)
                    .map(|k| {
                        raw_json(serde_json::json!({
                            "type": STATE_EVENT_TYPE, "state_key": format!("k{k}"),
                            "content": {"value": k, "note": "hsbench large-state room"}
                        }))
                    })
                    .collect();
                let resp = client
                    .send(req, Some(&tokens[room.creator() as usize]))
                    .await
                    .map_err(fail("rooms", format!("createRoom {}", room.name)))?;
                pb.inc(1);
                Ok::<_, SeedError>((room.index, resp.room_id))
            }
        })
        .buffer_unordered(conc)
        .try_collect()
        .await?;
    pb.finish_and_clear();
    rooms.sort_by_key(|r| r.0);
    let room_ids: Vec<OwnedRoomId> = rooms.into_iter().map(|r| r.1).collect();
    steps.push(step("rooms", totals.rooms, t));
    Ok(room_ids)
}

/// Joins of every member but the creator.
async fn joins(s: Seeder<'_>, steps: &mut Steps<'_>, creds: &Credentials) -> Result<(), SeedError> {
    let Seeder {
        client,
        plan,
        conc,
        show,
        registrar,
        totals,
    } = s;
    let (user_ids, tokens, room_ids) = (&creds.user_ids, &creds.tokens, &creds.room_ids);
    // 4. Joins (the creator is already in; invited members accept).
    let joins_as_service = matches!(registrar, Registrar::AppserviceExceptOnline { .. });
    run_step(
        steps,
        "joins",
        totals.memberships - totals.rooms,
        show,
        conc,
        round_robin_joins(plan),
        |(room, user)| async move {
            let room_id = room_ids[room as usize].clone();
            let req = join_room_by_id::v3::Request::new(room_id.clone());
            // A user without a password joins through the application service that registered
            // it: the conduwuit family takes such an account acting on its own for a guest,
            // and guests may not join rooms that forbid guest access.
            let joined = match registrar.for_user(&plan.user(user)) {
                Registrar::Appservice(t) if joins_as_service => {
                    client.send_as(req, t, &user_ids[user as usize]).await
                }
                _ => client.send(req, Some(&tokens[user as usize])).await,
            };
            joined.map_err(fail(
                "joins",
                format!("join {room_id} as {}", DatasetPlan::localpart(user)),
            ))?;
            Ok(1)
        },
    )
    .await?;
    Ok(())
}

/// `m.direct` account data.
async fn direct(
    s: Seeder<'_>,
    steps: &mut Steps<'_>,
    creds: &Credentials,
) -> Result<(), SeedError> {
    let Seeder {
        client,
        plan,
        conc,
        show,
        ..
    } = s;
    let (user_ids, tokens, room_ids) = (&creds.user_ids, &creds.tokens, &creds.room_ids);
    // 5. `m.direct` account data of both members of every DM, as clients write it.
    let user_id_of = |u: u64| user_ids[u as usize].to_string();
    let direct = plan.direct_content(&user_id_of, room_ids);
    run_step(
        steps,
        "m.direct",
        direct.len() as u64,
        show,
        conc,
        direct.into_iter(),
        |(u, content)| async move {
            let req = set_global_account_data::v3::Request::new_raw(
                user_ids[u as usize].clone(),
                "m.direct".into(),
                raw_json(content),
            );
            client
                .send(req, Some(&tokens[u as usize]))
                .await
                .map_err(fail(
                    "m.direct",
                    format!("m.direct of {}", DatasetPlan::localpart(u)),
                ))?;
            Ok(1)
        },
    )
    .await?;
    Ok(())
}

/// The timelines; the event each read receipt points at, by room.
async fn timelines(
    s: Seeder<'_>,
    steps: &mut Steps<'_>,
    creds: &Credentials,
) -> Result<ReceiptTargets, SeedError> {
    let Seeder {
        client,
        plan,
        conc,
        show,
        totals,
        ..
    } = s;
    let (tokens, room_ids) = (&creds.tokens, &creds.room_ids);
    // 6. Timelines: each room in order (replies, reactions, edits and redactions point at
    //    earlier events), rooms side by side, in the order of their planned last activity (the
    //    API cannot backdate events, but the room list's order by recency is the plan's).
    //    Only the event ids that receipts need are kept.
    let t = Instant::now();
    let pb = bar("timeline", totals.timeline_events, show);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut order: Vec<(i64, u64)> = plan
        .rooms()
        .map(|r| (plan.room_span(&r, now_ms).1, r.index))
        .collect();
    order.sort_unstable();
    let receipt_targets: Vec<(usize, Vec<(u64, OwnedEventId)>)> = futures::stream::iter(
        order.into_iter().map(|(_, i)| plan.room(i)),
    )
        .map(|room| {
            let pb = &pb;
            async move {
                let room_id = room_ids[room.index as usize].clone();
                let timeline = plan.timeline(&room);
                let receipts = plan.receipts(&room);
                let mut ids: Vec<Option<OwnedEventId>> = vec![None; timeline.len()];
                for (i, e) in timeline.iter().enumerate() {
                    let txn = ruma::OwnedTransactionId::from(format!("hsb-{}-{i}", room.index));
                    let token = &tokens[e.sender as usize];
                    let target = |to: &usize| ids[*to].clone().expect("targets are earlier events");
                    let request = format!("event {i} ({}) into {}", e.event_type(), room.name);
                    let event_id = match &e.kind {
                        EventKind::Redaction { to } => {
                            let req = redact_event::v3::Request::new(room_id.clone(), target(to), txn);
                            client.send(req, Some(token)).await.map(|r| r.event_id)
                        }
                        kind => {
                            let content = match kind {
                                EventKind::Message { body } => serde_json::json!({"msgtype": "m.text", "body": body}),
                                EventKind::Reply { to, body } => serde_json::json!({
                                    "msgtype": "m.text", "body": body,
                                    "m.relates_to": {"m.in_reply_to": {"event_id": target(to)}}}),
                                EventKind::Reaction { to, key } => serde_json::json!({
                                    "m.relates_to": {"rel_type": "m.annotation", "event_id": target(to), "key": key}}),
                                EventKind::Edit { to, body } => serde_json::json!({
                                    "msgtype": "m.text", "body": format!("* {body}"),
                                    "m.new_content": {"msgtype": "m.text", "body": body},
                                    "m.relates_to": {"rel_type": "m.replace", "event_id": target(to)}}),
                                EventKind::Redaction { .. } => unreachable!(),
                            };
                            let req = send_message_event::v3::Request::new_raw(
                                room_id.clone(), txn, e.event_type().into(), raw_json(content));
                            client.send(req, Some(token)).await.map(|r| r.event_id)
                        }
                    }
                    .map_err(fail("timeline", request))?;
                    ids[i] = Some(event_id);
                    pb.inc(1);
                }
                Ok::<_, SeedError>((
                    room.index as usize,
                    receipts
                        .into_iter()
                        .map(|(m, at)| (m, ids[at].clone().expect("sent")))
                        .collect::<Vec<_>>(),
                ))
            }
        })
        .buffered(conc)
        .try_collect()
        .await?;
    pb.finish_and_clear();
    steps.push(step("timeline", totals.timeline_events, t));
    Ok(receipt_targets)
}

/// Read receipts, each on its planned event.
async fn receipts(
    s: Seeder<'_>,
    steps: &mut Steps<'_>,
    creds: &Credentials,
    receipt_targets: ReceiptTargets,
) -> Result<(), SeedError> {
    let Seeder {
        client,
        conc,
        show,
        totals,
        ..
    } = s;
    let (tokens, room_ids) = (&creds.tokens, &creds.room_ids);
    // 7. Read receipts.
    run_step(
        steps,
        "receipts",
        totals.receipts,
        show,
        conc,
        receipt_targets
            .iter()
            .flat_map(|(room, v)| v.iter().map(move |(m, id)| (*room, *m, id.clone()))),
        |(room, member, event_id)| async move {
            let req = create_receipt::v3::Request::new(
                room_ids[room].clone(),
                create_receipt::v3::ReceiptType::Read,
                event_id,
            );
            client
                .send(req, Some(&tokens[member as usize]))
                .await
                .map_err(fail(
                    "receipts",
                    format!(
                        "receipt of {} in room {room}",
                        DatasetPlan::localpart(member)
                    ),
                ))?;
            Ok(1)
        },
    )
    .await?;
    Ok(())
}

/// Every join of the plan (room, user), dealt round-robin over the rooms: a server serialises
/// the joins of one room (its state lock), so concurrent requests go to different rooms.
fn round_robin_joins(plan: &DatasetPlan) -> impl Iterator<Item = (u64, u64)> + use<> {
    let mut rooms: Vec<(u64, Vec<u64>)> = plan
        .rooms()
        .map(|r| (r.index, r.members[1..].to_vec()))
        .collect();
    // Largest first: round k visits only the rooms with more than k joins left to make.
    rooms.sort_by_key(|r| std::cmp::Reverse(r.1.len()));
    let rounds = rooms.first().map_or(0, |r| r.1.len());
    (0..rounds).flat_map(move |k| {
        rooms
            .iter()
            .take_while(|(_, members)| members.len() > k)
            .map(|(room, members)| (*room, members[k]))
            .collect::<Vec<_>>()
    })
}

/// A finished loading step and its rate.
pub(crate) fn step(name: &str, count: u64, t: Instant) -> LoadStep {
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
