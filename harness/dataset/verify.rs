//! Checking a loaded dataset through the server's own API against its plan: a sample of
//! users' joined rooms, rooms' members and message counts, and the DMs' `m.direct`.

use crate::dataset::plan::{DatasetPlan, STATE_EVENT_TYPE};
use crate::dataset::seed::{Credentials, SeedError};
use crate::matrix::{CallError, MatrixClient};
use ruma::api::Direction;
use ruma::api::client::filter::RoomEventFilter;
use ruma::api::client::membership::{joined_members, joined_rooms};
use ruma::api::client::message::get_message_events;
use ruma::{OwnedRoomId, OwnedUserId};
use std::collections::{BTreeMap, BTreeSet};

/// What checking a loaded dataset through the server's own API found.
#[derive(
    Debug, Clone, Default, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize,
)]
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
/// message count, the `m.direct` account data of a sample of DM members.
pub async fn verify(
    client: &MatrixClient,
    plan: &DatasetPlan,
    creds: &Credentials,
    users: u64,
    rooms: u64,
) -> Result<VerifyReport, SeedError> {
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
        check_room(client, plan, creds, r, &mut report).await?;
    }
    check_direct(client, plan, creds, users, &mut report).await?;
    check_profiles(client, plan, creds, &user_sample, &mut report).await?;
    Ok(report)
}

/// A failed request of the verification.
fn err(request: String) -> impl FnOnce(CallError) -> SeedError {
    move |source| SeedError {
        step: "verify",
        request,
        source,
    }
}

/// One room: its joined members, its timeline events by type (exactly as planned; redacted
/// messages keep their type), its custom state.
async fn check_room(
    client: &MatrixClient,
    plan: &DatasetPlan,
    creds: &Credentials,
    r: u64,
    report: &mut VerifyReport,
) -> Result<(), SeedError> {
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
    report.checks += 1;
    if got != expected {
        report.mismatches.push(format!(
            "{}: {} joined members, the plan says {}",
            room.name,
            got.len(),
            expected.len()
        ));
    }
    // Timeline events by type, exactly as planned (redacted messages keep their type).
    let timeline = plan.timeline(&room);
    for event_type in ["m.room.message", "m.reaction", "m.room.redaction"] {
        let want = timeline
            .iter()
            .filter(|e| e.event_type() == event_type)
            .count();
        // Servers cap a page (Synapse at 1,000 events): page back until the room's start.
        let mut got = 0usize;
        let mut from: Option<String> = None;
        loop {
            let mut req =
                get_message_events::v3::Request::new(room_id.clone(), Direction::Backward);
            req.from = from.take();
            req.limit =
                ruma::UInt::try_from((want - got.min(want)) as u64 + 10).unwrap_or(ruma::UInt::MAX);
            let mut filter = RoomEventFilter::default();
            filter.types = Some(vec![event_type.into()]);
            req.filter = filter;
            let resp = client
                .send(req, Some(token))
                .await
                .map_err(err(format!("{event_type} events of {}", room.name)))?;
            got += resp.chunk.len();
            // No `end`: the room's start. An empty page ends it too (some servers always
            // send `end`).
            match resp.end {
                Some(end) if got <= want && !resp.chunk.is_empty() => from = Some(end),
                _ => break,
            }
        }
        report.checks += 1;
        if got != want {
            report.mismatches.push(format!(
                "{}: {got} {event_type} events, the plan says {want}",
                room.name
            ));
        }
    }
    if room.state_events > 0 {
        use ruma::api::client::state::get_state_events;
        let resp = client
            .send(
                get_state_events::v3::Request::new(room_id.clone()),
                Some(token),
            )
            .await
            .map_err(err(format!("state of {}", room.name)))?;
        let got = resp
            .room_state
            .iter()
            .filter(|e| {
                e.get_field::<String>("type").ok().flatten().as_deref() == Some(STATE_EVENT_TYPE)
            })
            .count() as u64;
        report.checks += 1;
        if got != room.state_events {
            report.mismatches.push(format!(
                "{}: {got} {STATE_EVENT_TYPE} events, the plan says {}",
                room.name, room.state_events
            ));
        }
    }
    Ok(())
}

/// `m.direct` of members of DMs spread over the plan, exactly as planned.
async fn check_direct(
    client: &MatrixClient,
    plan: &DatasetPlan,
    creds: &Credentials,
    users: u64,
    report: &mut VerifyReport,
) -> Result<(), SeedError> {
    let user_id_of = |u: u64| creds.user_ids[u as usize].to_string();
    let direct = plan.direct_content(&user_id_of, &creds.room_ids);
    for i in sample(direct.len() as u64, users) {
        use ruma::api::client::config::get_global_account_data;
        let (u, want) = &direct[i as usize];
        let req = get_global_account_data::v3::Request::new(
            creds.user_ids[*u as usize].clone(),
            "m.direct".into(),
        );
        let resp = client
            .send(req, Some(&creds.tokens[*u as usize]))
            .await
            .map_err(err(format!("m.direct of {}", DatasetPlan::localpart(*u))))?;
        report.checks += 1;
        let got: serde_json::Value =
            serde_json::from_str(resp.account_data.json().get()).unwrap_or_default();
        if &got != want {
            report.mismatches.push(format!(
                "{}: m.direct {got}, the plan says {want}",
                DatasetPlan::localpart(*u)
            ));
        }
    }
    Ok(())
}

/// Display names and avatars, as the profile API answers them.
async fn check_profiles(
    client: &MatrixClient,
    plan: &DatasetPlan,
    creds: &Credentials,
    user_sample: &[u64],
    report: &mut VerifyReport,
) -> Result<(), SeedError> {
    for &u in user_sample {
        #[allow(deprecated)]
        let req = ruma::api::client::profile::get_display_name::v3::Request::new(
            creds.user_ids[u as usize].clone(),
        );
        let resp = client
            .send(req, Some(&creds.tokens[u as usize]))
            .await
            .map_err(err(format!(
                "display name of {}",
                DatasetPlan::localpart(u)
            )))?;
        report.checks += 1;
        let planned = plan.user(u);
        #[allow(deprecated)]
        let req = ruma::api::client::profile::get_avatar_url::v3::Request::new(
            creds.user_ids[u as usize].clone(),
        );
        let avatar = client
            .send(req, Some(&creds.tokens[u as usize]))
            .await
            .map_err(err(format!("avatar of {}", DatasetPlan::localpart(u))))?;
        report.checks += 1;
        let got = avatar.avatar_url.map(|m| m.to_string());
        if got != planned.avatar_url {
            report.mismatches.push(format!(
                "{}: avatar {got:?}, the plan says {:?}",
                DatasetPlan::localpart(u),
                planned.avatar_url
            ));
        }
        let want = planned.display_name;
        // Synapse gives every new user their localpart as display name.
        let default = Some(DatasetPlan::localpart(u));
        if resp.displayname != want && !(want.is_none() && resp.displayname == default) {
            report.mismatches.push(format!(
                "{}: display name {:?}, the plan says {want:?}",
                DatasetPlan::localpart(u),
                resp.displayname
            ));
        }
    }
    Ok(())
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
