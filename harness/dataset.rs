//! The synthetic dataset: a deterministic model built from a seed.
//!
//! Nothing here talks to a server. The plan is computed lazily: each room draws its members and
//! messages from its own ChaCha stream (`seed`, stream = room index), so any room can be produced
//! on its own, in any order, without holding the whole plan in memory, and the same spec always
//! yields the same plan.

use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::scenario::DatasetSpec;

/// Exponent of the room-size power law: `P(size >= s) ∝ s^-(ALPHA-1)`. With 2.0 the median
/// ordinary room has 4 members and one room in ten has 20 or more (capped at the spec's maximum).
pub const ROOM_SIZE_ALPHA: f64 = 2.0;

/// A user of the plan. Users are numbered `0..users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPlan {
    pub index: u64,
    pub localpart: String,
    pub display_name: String,
}

/// A room of the plan. Room 0 is the big room; rooms `1..=rooms` are ordinary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomPlan {
    pub index: u64,
    pub name: String,
    /// Member user indices, the creator first; distinct.
    pub members: Vec<u64>,
}

impl RoomPlan {
    pub fn creator(&self) -> u64 {
        self.members[0]
    }
}

/// One message of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePlan {
    pub sender: u64,
    pub body: String,
}

/// Counts of everything the plan contains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlanTotals {
    pub users: u64,
    pub rooms: u64,
    /// Joins, creators included.
    pub memberships: u64,
    pub messages: u64,
    pub largest_room: u64,
}

#[derive(Debug, Clone)]
pub struct DatasetPlan {
    spec: DatasetSpec,
}

const WORDS: &[&str] = &[
    "the",
    "server",
    "room",
    "sync",
    "state",
    "member",
    "event",
    "hello",
    "matrix",
    "federation",
    "is",
    "slow",
    "today",
    "again",
    "restart",
    "takes",
    "minutes",
    "users",
    "join",
    "leave",
    "we",
    "should",
    "measure",
    "it",
    "before",
    "release",
    "and",
    "after",
    "cache",
    "database",
    "query",
    "thanks",
    "ok",
    "lunch",
    "meeting",
    "deploy",
    "ship",
    "fix",
    "bug",
    "review",
    "patch",
];

impl DatasetPlan {
    pub fn new(spec: DatasetSpec) -> Self {
        Self { spec }
    }

    pub fn spec(&self) -> &DatasetSpec {
        &self.spec
    }

    /// The localpart of user `i`: fixed width so that names sort like indices.
    pub fn localpart(i: u64) -> String {
        format!("hsb{i:07}")
    }

    pub fn user(&self, i: u64) -> UserPlan {
        UserPlan {
            index: i,
            localpart: Self::localpart(i),
            display_name: format!("Bench User {i}"),
        }
    }

    pub fn users(&self) -> impl Iterator<Item = UserPlan> + '_ {
        (0..self.spec.users).map(|i| self.user(i))
    }

    /// Number of rooms, the big room included.
    pub fn room_count(&self) -> u64 {
        self.spec.rooms + 1
    }

    fn rng(&self, stream: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.spec.seed);
        rng.set_stream(stream);
        rng
    }

    /// Room `i`: 0 is the big room (users `0..big_room_members`), others draw a power-law size.
    pub fn room(&self, i: u64) -> RoomPlan {
        if i == 0 {
            return RoomPlan {
                index: 0,
                name: "hq".into(),
                members: (0..self.spec.big_room_members).collect(),
            };
        }
        let mut rng = self.rng(i);
        let size = power_law_size(&mut rng, 2, self.spec.max_room_members);
        let members = index::sample(&mut rng, self.spec.users as usize, size as usize)
            .into_iter()
            .map(|u| u as u64)
            .collect();
        RoomPlan {
            index: i,
            name: format!("room-{i}"),
            members,
        }
    }

    pub fn rooms(&self) -> impl Iterator<Item = RoomPlan> + '_ {
        (0..self.room_count()).map(|i| self.room(i))
    }

    /// The messages of a room, in sending order. Senders are members of the room.
    pub fn messages<'a>(&self, room: &'a RoomPlan) -> impl Iterator<Item = MessagePlan> + 'a {
        // A stream distinct from the room's membership stream.
        let mut rng = self.rng(room.index | (1 << 63));
        (0..self.spec.messages_per_room).map(move |_| {
            let sender = room.members[rng.random_range(0..room.members.len())];
            MessagePlan {
                sender,
                body: message_body(&mut rng),
            }
        })
    }

    pub fn totals(&self) -> PlanTotals {
        let mut t = PlanTotals {
            users: self.spec.users,
            rooms: self.room_count(),
            ..Default::default()
        };
        for room in self.rooms() {
            let n = room.members.len() as u64;
            t.memberships += n;
            t.largest_room = t.largest_room.max(n);
        }
        t.messages = self.room_count() * self.spec.messages_per_room;
        t
    }
}

/// Discrete power law on `[min, max]` by inversion: `floor(min / u^(1/(alpha-1)))`.
fn power_law_size(rng: &mut impl Rng, min: u64, max: u64) -> u64 {
    let u: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let s = (min as f64 / u.powf(1.0 / (ROOM_SIZE_ALPHA - 1.0))).floor();
    (s as u64).clamp(min, max.max(min))
}

/// A chat-like body: log-normal word count (median ~7 words, long tail).
fn message_body(rng: &mut impl Rng) -> String {
    // Box-Muller for a standard normal.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    let words = ((2.0 + 0.8 * z).exp().round() as usize).clamp(1, 400);
    let mut body = String::with_capacity(words * 6);
    for w in 0..words {
        if w > 0 {
            body.push(' ');
        }
        body.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(seed: u64) -> DatasetSpec {
        DatasetSpec {
            seed,
            users: 500,
            rooms: 200,
            big_room_members: 300,
            messages_per_room: 5,
            max_room_members: 100,
        }
    }

    #[test]
    fn same_seed_same_plan_other_seed_other_plan() {
        let a = DatasetPlan::new(spec(1));
        let b = DatasetPlan::new(spec(1));
        let c = DatasetPlan::new(spec(2));
        let rooms_a: Vec<_> = a.rooms().collect();
        assert_eq!(rooms_a, b.rooms().collect::<Vec<_>>());
        assert_ne!(rooms_a, c.rooms().collect::<Vec<_>>());
        let msgs_a: Vec<_> = a.messages(&rooms_a[7]).collect();
        assert_eq!(msgs_a, b.messages(&rooms_a[7]).collect::<Vec<_>>());
        assert_eq!(a.totals(), b.totals());
    }

    #[test]
    fn rooms_are_well_formed_and_skewed() {
        let p = DatasetPlan::new(spec(9));
        let mut sizes = Vec::new();
        for room in p.rooms().skip(1) {
            let mut m = room.members.clone();
            m.sort_unstable();
            m.dedup();
            assert_eq!(m.len(), room.members.len(), "members distinct");
            assert!(room.members.len() >= 2 && room.members.len() <= 100);
            assert!(room.members.iter().all(|&u| u < 500));
            for msg in p.messages(&room) {
                assert!(room.members.contains(&msg.sender));
                assert!(!msg.body.is_empty());
            }
            sizes.push(room.members.len());
        }
        sizes.sort_unstable();
        let median = sizes[sizes.len() / 2];
        assert!((2..=8).contains(&median), "median room size {median}");
        assert!(*sizes.last().unwrap() >= 20, "a tail of large rooms");
        let big = p.room(0);
        assert_eq!(big.members.len(), 300);
        let t = p.totals();
        assert_eq!(t.rooms, 201);
        assert_eq!(t.messages, 201 * 5);
        assert_eq!(t.largest_room, 300);
        assert_eq!(
            t.memberships,
            300 + sizes.iter().map(|&s| s as u64).sum::<u64>()
        );
    }
}
