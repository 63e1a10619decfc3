//! The chain cover index of a room's auth events, as Synapse computes it
//! (`_allocate_chain_ids`, `_calculate_chain_cover_index`, `_LinkMap`).

use std::collections::{BTreeMap, HashMap};

/// Chain cover index: event -> (chain, sequence), the state key of each state event, the last
/// sequence of each chain, and the links between chains.
#[derive(Default)]
pub(crate) struct ChainIndex {
    pub(crate) chain_of: HashMap<String, (i64, i64)>,
    pub(crate) key_of: HashMap<String, (String, String)>,
    pub(crate) chain_max: HashMap<i64, i64>,
    pub(crate) links: LinkMap,
}

/// Links between auth chains, as Synapse's `_LinkMap` keeps them: source chain -> target
/// chain -> source sequence -> target sequence.
#[derive(Default)]
pub struct LinkMap {
    pub(crate) maps: HashMap<i64, HashMap<i64, BTreeMap<i64, i64>>>,
}

impl LinkMap {
    /// Add a link unless an existing one makes it redundant (a link "crossing" it).
    pub fn add_link(&mut self, src: (i64, i64), target: (i64, i64)) -> bool {
        debug_assert_ne!(src.0, target.0);
        let current = self
            .maps
            .entry(src.0)
            .or_default()
            .entry(target.0)
            .or_default();
        if current
            .iter()
            .any(|(&cs, &ct)| cs <= src.1 && target.1 <= ct)
        {
            return false;
        }
        current.insert(src.1, target.1);
        true
    }

    /// Whether `target` is in the auth chain of `src` (following links transitively).
    pub fn exists_path_from(&self, src: (i64, i64), target: (i64, i64)) -> bool {
        if src.0 == target.0 {
            return target.1 <= src.1;
        }
        let mut visited: HashMap<i64, i64> = HashMap::new();
        let mut search = vec![src];
        while let Some((chain, seq)) = search.pop() {
            let v = visited.entry(chain).or_insert(0);
            *v = (*v).max(seq);
            let Some(m) = self.maps.get(&chain) else {
                continue;
            };
            for (&tc, links) in m {
                for (&ss, &ts) in links {
                    if ts <= visited.get(&tc).copied().unwrap_or(0) {
                        continue;
                    }
                    if ss <= seq {
                        if tc == target.0 {
                            if target.1 <= ts {
                                return true;
                            }
                        } else {
                            search.push((tc, ts));
                        }
                    }
                }
            }
        }
        false
    }
}

/// Place a new state event in the chain cover index as Synapse's `_allocate_chain_ids` and
/// `_calculate_chain_cover_index` do: it continues the chain of an auth event with the same
/// type and state key when that event ends its chain, else starts a chain; then it links to
/// the auth events not already reachable through another one; `last_chain` is the highest chain
/// id so far. Returns (chain, sequence, links).
pub(crate) fn chain_cover(
    state: &mut ChainIndex,
    last_chain: &mut i64,
    event_id: &str,
    key: &(String, String),
    auth: &[String],
) -> (i64, i64, Vec<(i64, i64)>) {
    let continued = auth
        .iter()
        .find(|a| state.key_of.get(*a) == Some(key))
        .and_then(|a| state.chain_of.get(a).copied())
        .filter(|(c, s)| state.chain_max.get(c) == Some(s));
    let (chain, seq) = match continued {
        Some((c, s)) => (c, s + 1),
        None => {
            *last_chain += 1;
            (*last_chain, 1)
        }
    };
    state.chain_max.insert(chain, seq);
    state.chain_of.insert(event_id.to_string(), (chain, seq));
    state.key_of.insert(event_id.to_string(), key.clone());
    let mut reduction: Vec<&String> = auth
        .iter()
        .filter(|a| state.chain_of[*a].0 != chain)
        .collect();
    for start in auth {
        for end in auth {
            if start != end
                && state
                    .links
                    .exists_path_from(state.chain_of[start], state.chain_of[end])
            {
                reduction.retain(|a| *a != end);
            }
        }
    }
    let mut links = Vec::new();
    for a in reduction {
        // Synapse persists every link of the reduction, redundant or not.
        let target = state.chain_of[a];
        state.links.add_link((chain, seq), target);
        links.push(target);
    }
    (chain, seq, links)
}
