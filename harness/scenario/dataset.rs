//! Validation of `[dataset]`: the dataset's size and shape, and how it is loaded.

use super::*;

pub(super) fn validate(loc: &Locator, raw: &RawScenario) -> Result<DatasetSpec, ScenarioError> {
    let d = &raw.dataset;
    let users = positive(loc, &d.users, "dataset.users")?;
    for (v, field, max) in [
        (&d.users, "dataset.users", MAX_USERS),
        (&d.rooms, "dataset.rooms", MAX_ROOMS),
    ] {
        if *v.get_ref() > max {
            return Err(loc.at(
                v.span(),
                field,
                format!(
                    "{} is more than the largest dataset hsbench plans ({max})",
                    v.get_ref()
                ),
            ));
        }
    }
    let events = (d.rooms.get_ref() + 1).saturating_mul(*d.messages_per_room.get_ref());
    if events > MAX_TIMELINE_EVENTS {
        return Err(loc.at(
            d.messages_per_room.span(),
            "dataset.messages_per_room",
            format!(
                "{} rooms × {} messages is {events} timeline events, more than the largest dataset hsbench plans ({MAX_TIMELINE_EVENTS})",
                d.rooms.get_ref() + 1,
                d.messages_per_room.get_ref()
            ),
        ));
    }
    let big = positive(loc, &d.big_room_members, "dataset.big_room_members")?;
    if big > users {
        return Err(loc.at(
            d.big_room_members.span(),
            "dataset.big_room_members",
            format!("{big} members cannot come from {users} users"),
        ));
    }
    let max_room_members = match &d.max_room_members {
        Some(m) => {
            let v = *m.get_ref();
            if v < 2 || v > users {
                return Err(loc.at(
                    m.span(),
                    "dataset.max_room_members",
                    format!("must be between 2 and dataset.users ({users}), not {v}"),
                ));
            }
            v
        }
        None => users.clamp(2, 50),
    };
    if users < 2 && *d.rooms.get_ref() > 0 {
        return Err(loc.at(
            d.users.span(),
            "dataset.users",
            "rooms need at least 2 users",
        ));
    }
    let mut dataset = DatasetSpec::new(
        d.seed,
        users,
        *d.rooms.get_ref(),
        big,
        *d.messages_per_room.get_ref(),
    );
    dataset.max_room_members = max_room_members;
    let share = |v: &Option<Spanned<f64>>, field: &str, default: f64| match v {
        None => Ok(default),
        Some(x) if (0.0..=1.0).contains(x.get_ref()) => Ok(*x.get_ref()),
        Some(x) => Err(loc.at(
            x.span(),
            field,
            format!("a share is between 0 and 1, not {}", x.get_ref()),
        )),
    };
    for (raw, field, slot) in [
        (
            &d.display_name_share,
            "dataset.display_name_share",
            &mut dataset.display_name_share,
        ),
        (
            &d.avatar_share,
            "dataset.avatar_share",
            &mut dataset.avatar_share,
        ),
        (
            &d.presence_share,
            "dataset.presence_share",
            &mut dataset.presence_share,
        ),
        (
            &d.multi_device_share,
            "dataset.multi_device_share",
            &mut dataset.multi_device_share,
        ),
        (
            &d.private_room_share,
            "dataset.private_room_share",
            &mut dataset.private_room_share,
        ),
        (
            &d.reply_share,
            "dataset.reply_share",
            &mut dataset.reply_share,
        ),
        (
            &d.reaction_share,
            "dataset.reaction_share",
            &mut dataset.reaction_share,
        ),
        (&d.edit_share, "dataset.edit_share", &mut dataset.edit_share),
        (
            &d.redaction_share,
            "dataset.redaction_share",
            &mut dataset.redaction_share,
        ),
        (
            &d.receipt_share,
            "dataset.receipt_share",
            &mut dataset.receipt_share,
        ),
    ] {
        *slot = share(raw, field, *slot)?;
    }
    let mix =
        dataset.reply_share + dataset.reaction_share + dataset.edit_share + dataset.redaction_share;
    if mix > 1.0 {
        let span = d
            .reply_share
            .as_ref()
            .map_or(d.messages_per_room.span(), |x| x.span());
        return Err(loc.at(
            span,
            "dataset.reply_share",
            format!("reply + reaction + edit + redaction shares add up to {mix:.2}, more than 1"),
        ));
    }
    if users < 2 && d.dm_pairs.unwrap_or(0) > 0 {
        return Err(loc.at(
            d.users.span(),
            "dataset.users",
            "DM pairs need at least 2 users",
        ));
    }
    dataset.dm_pairs = d.dm_pairs.unwrap_or(0);
    if let Some(sr) = &d.state_rooms {
        if *sr.get_ref() > dataset.rooms {
            return Err(loc.at(
                sr.span(),
                "dataset.state_rooms",
                format!("at most dataset.rooms ({})", dataset.rooms),
            ));
        }
        dataset.state_rooms = *sr.get_ref();
    }
    dataset.state_events_per_room = d.state_events_per_room.unwrap_or(0);
    if let Some(r) = &d.registration {
        dataset.registration = match r.get_ref().as_str() {
            "appservice" => Registration::Appservice,
            "password" => Registration::Password,
            other => {
                return Err(loc.at(
                    r.span(),
                    "dataset.registration",
                    format!("{other:?}: \"appservice\" or \"password\""),
                ));
            }
        }
    }
    if let Some(h) = &raw.dataset.history {
        let d = duration(loc, &raw.dataset.history, "dataset.history", Duration::ZERO)?;
        if !(MIN_HISTORY..=MAX_HISTORY).contains(&d) {
            return Err(loc.at(
                h.span(),
                "dataset.history",
                format!(
                    "{:?} is outside the history hsbench dates events in (1h to 20 years)",
                    h.get_ref()
                ),
            ));
        }
        dataset.history_seconds = d.as_secs();
    }
    Ok(dataset)
}

const MIN_HISTORY: Duration = Duration::from_secs(3600);
const MAX_HISTORY: Duration = Duration::from_secs(20 * 365 * 86_400);

pub(super) fn load_method(
    loc: &Locator,
    raw: &RawScenario,
    server: &ServerSpec,
    dataset: &mut DatasetSpec,
) -> Result<(), ScenarioError> {
    if let Some(p) = &raw.dataset.presence {
        dataset.presence = match p.get_ref().as_str() {
            "tracked" => PresenceMode::Tracked,
            "stays" if server.kind != ServerKind::Synapse => {
                return Err(loc.at(
                    p.span(),
                    "dataset.presence",
                    format!(
                        "\"stays\" turns Synapse's presence tracking off; hsbench has no such switch for a {} server (use \"tracked\")",
                        server.kind.as_str()
                    ),
                ));
            }
            "stays" => PresenceMode::Stays,
            other => {
                return Err(loc.at(
                    p.span(),
                    "dataset.presence",
                    format!("{other:?}: \"tracked\" or \"stays\""),
                ));
            }
        };
    }
    if let Some(l) = &raw.dataset.load {
        dataset.load = match l.get_ref().as_str() {
            "api" => LoadMethod::Api,
            "direct" if server.kind != ServerKind::Synapse => {
                return Err(loc.at(
                    l.span(),
                    "dataset.load",
                    format!(
                        "\"direct\" writes Synapse's own tables; a {} server loads through the API (\"api\")",
                        server.kind.as_str()
                    ),
                ));
            }
            "direct" => LoadMethod::Direct,
            other => {
                return Err(loc.at(
                    l.span(),
                    "dataset.load",
                    format!("{other:?}: \"api\" or \"direct\""),
                ));
            }
        };
    }
    Ok(())
}
