//! Validation of `[dataset]`: the dataset's size and shape, and how it is loaded.

use super::locate::{Locator, ScenarioError, duration, positive};
use super::raw::RawScenario;
use super::server::{ServerKind, ServerSpec};
use sha2::{Digest, Sha256};
use std::time::Duration;
use toml::Spanned;

impl DatasetSpec {
    /// The constraints between fields (each field's own range is checked when parsing).
    pub fn check(&self) -> Result<(), String> {
        if self.users == 0 || self.big_room_members == 0 {
            return Err("users and big_room_members must be at least 1".into());
        }
        if self.big_room_members > self.users {
            return Err(format!(
                "big_room_members ({}) cannot come from {} users",
                self.big_room_members, self.users
            ));
        }
        if self.users < 2 && (self.rooms > 0 || self.dm_pairs > 0) {
            return Err("rooms and DM pairs need at least 2 users".into());
        }
        if self.state_rooms > self.rooms {
            return Err(format!(
                "state_rooms ({}) exceeds rooms ({})",
                self.state_rooms, self.rooms
            ));
        }
        Ok(())
    }
}

/// The synthetic dataset to build. Deterministic from `seed`.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema, serde::Serialize, serde::Deserialize)]
pub struct DatasetSpec {
    pub seed: u64,
    pub users: u64,
    /// Rooms besides the big room.
    pub rooms: u64,
    /// Members of the one big room (the first `big_room_members` users).
    pub big_room_members: u64,
    /// Mean timeline events per room (messages, replies, reactions, edits, redactions);
    /// each room's count is drawn from a log-normal around it.
    pub messages_per_room: u64,
    /// Upper bound of an ordinary room's size (sizes follow a power law between 2 and this).
    pub max_room_members: u64,
    /// Share of users with a display name (set before they join rooms).
    pub display_name_share: f64,
    /// Share of users with an avatar (an `mxc://` URL in their profile, set before they join
    /// rooms). Left out of the spec's hash when 0, so older fixtures keep their keys.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub avatar_share: f64,
    /// Share of users who set their presence online.
    pub presence_share: f64,
    /// Share of users with a second device (a second login).
    pub multi_device_share: f64,
    /// Share of ordinary rooms that are private (members are invited, then join).
    pub private_room_share: f64,
    /// Direct-message rooms between two users.
    pub dm_pairs: u64,
    /// Ordinary rooms (the first ones) that carry large state.
    pub state_rooms: u64,
    /// Custom state events in each of those rooms.
    pub state_events_per_room: u64,
    /// Shares of timeline events that are replies, reactions, edits and redactions (the rest
    /// are plain messages).
    pub reply_share: f64,
    pub reaction_share: f64,
    pub edit_share: f64,
    pub redaction_share: f64,
    /// Share of memberships that send a read receipt (at a random point of the timeline).
    pub receipt_share: f64,
    /// `appservice`: users are registered by an application service (no password hashing);
    /// `password`: through `/register` with a password and `m.login.dummy`.
    pub registration: Registration,
    /// `api`: through the client-server API (any server); `direct`: rows written straight into
    /// a stopped Synapse's database (see `import`). Left out of fixture keys when `api`, so the
    /// fixtures built before the key existed keep their keys.
    #[serde(default, skip_serializing_if = "LoadMethod::is_api")]
    pub load: LoadMethod,
    /// The span of time the rooms' history covers, in seconds (`history = "90d"`): events are
    /// dated inside it, monotonic per room, with a diurnal rhythm, the last one in the past.
    /// Honoured by the direct import; the API cannot backdate events (they carry the time
    /// they were sent).
    /// Left out of the spec's hash when it is the default, so specs keep their hashes.
    #[serde(
        default = "default_history",
        skip_serializing_if = "is_default_history"
    )]
    pub history_seconds: u64,
    /// What happens to the planned presence during a run: `tracked` (the server's own
    /// timeouts apply: Synapse turns planned "online" users offline 30 s after each boot unless
    /// they sync) or `stays` (Synapse's presence is untracked: the planned states hold for the
    /// whole run, and syncs no longer change them). Left out of fixture keys when `tracked`.
    #[serde(default, skip_serializing_if = "PresenceMode::is_tracked")]
    pub presence: PresenceMode,
}

/// `[dataset] presence`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    schemars::JsonSchema,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PresenceMode {
    #[default]
    Tracked,
    Stays,
}

impl PresenceMode {
    pub fn is_tracked(&self) -> bool {
        *self == PresenceMode::Tracked
    }
}

/// The default `[dataset] history`: 90 days.
pub const DEFAULT_HISTORY_SECONDS: u64 = 90 * 86_400;

pub(super) fn default_history() -> u64 {
    DEFAULT_HISTORY_SECONDS
}

pub(super) fn is_default_history(s: &u64) -> bool {
    *s == DEFAULT_HISTORY_SECONDS
}

/// How a dataset gets into the server.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    schemars::JsonSchema,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum LoadMethod {
    #[default]
    Api,
    Direct,
}

pub(super) fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl LoadMethod {
    pub fn is_api(&self) -> bool {
        *self == LoadMethod::Api
    }
}

/// How the loader registers users.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    schemars::JsonSchema,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    Appservice,
    Password,
}

impl DatasetSpec {
    /// A spec with the model's default shares (what a scenario gets for keys it leaves out).
    pub fn new(seed: u64, users: u64, rooms: u64, big_room_members: u64, messages: u64) -> Self {
        Self {
            seed,
            users,
            rooms,
            big_room_members,
            messages_per_room: messages,
            max_room_members: users.clamp(2, 50),
            display_name_share: 0.8,
            avatar_share: 0.0,
            presence_share: 0.2,
            multi_device_share: 0.1,
            private_room_share: 0.3,
            dm_pairs: 0,
            state_rooms: 0,
            state_events_per_room: 0,
            reply_share: 0.1,
            reaction_share: 0.1,
            edit_share: 0.03,
            redaction_share: 0.02,
            receipt_share: 0.5,
            registration: Registration::Appservice,
            load: LoadMethod::Api,
            history_seconds: DEFAULT_HISTORY_SECONDS,
            presence: PresenceMode::Tracked,
        }
    }
}

impl DatasetSpec {
    /// A stable hash of the spec: part of every fixture key and printed in every result.
    pub fn spec_hash(&self) -> String {
        let json = serde_json::to_vec(self).expect("a DatasetSpec always serializes");
        hex::encode(&Sha256::digest(&json)[..8])
    }
}

/// The largest dataset hsbench plans: far beyond the 150k users the seeds name, and small
/// enough that a plan's totals stay countable.
pub const MAX_USERS: u64 = 10_000_000;
pub const MAX_ROOMS: u64 = 1_000_000;
pub const MAX_TIMELINE_EVENTS: u64 = 100_000_000;

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
