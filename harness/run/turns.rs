//! Taking turns: the runs of `hsbench ab` (base and head, each a full run in the same process)
//! measure in an interleaved order, ABBA…, one boot at a time, so that a drift of the machine
//! (load, thermal state, page cache) falls on both sides alike instead of on one.
//!
//! A side's k-th call of [`Turns::take`] is its k-th step; in round k the sides go in the order
//! 0, 1 when k is even and 1, 0 when it is odd. Whatever a side does outside a turn (install,
//! dataset, writing files) is unordered; the first turn waits until every side has arrived at
//! it, so that no side's install or fixture build overlaps the other's measurements. A side that
//! leaves (finished, failed, interrupted) is skipped from then on.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Debug)]
struct State {
    /// The position whose holder may go: round `cursor / sides`, place `cursor % sides`.
    cursor: usize,
    /// A turn is held (the cursor moves when it is released).
    held: bool,
    /// Sides that called `take` at least once.
    arrived: Vec<bool>,
    /// Sides that will take no more turns.
    gone: Vec<bool>,
    /// Turns taken per side.
    taken: Vec<usize>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    notify: Notify,
    sides: usize,
}

/// One side's handle on a shared order of turns.
#[derive(Debug, Clone)]
pub struct Turns {
    shared: Arc<Shared>,
    side: usize,
}

/// The side whose turn is at `pos` (ABBA for two sides: a round's order reverses every round).
fn side_at(pos: usize, sides: usize) -> usize {
    let (round, place) = (pos / sides, pos % sides);
    if round.is_multiple_of(2) {
        place
    } else {
        sides - 1 - place
    }
}

impl Turns {
    /// Handles for `sides` sides sharing one order.
    pub fn new(sides: usize) -> Vec<Turns> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                cursor: 0,
                held: false,
                arrived: vec![false; sides],
                gone: vec![false; sides],
                taken: vec![0; sides],
            }),
            notify: Notify::new(),
            sides,
        });
        (0..sides)
            .map(|side| Turns {
                shared: shared.clone(),
                side,
            })
            .collect()
    }

    pub fn side(&self) -> usize {
        self.side
    }

    /// Wait for this side's next turn; the turn lasts until the guard is dropped.
    pub async fn take(&self) -> TurnGuard {
        let n = self.shared.sides;
        {
            let mut st = self.shared.state.lock().expect("turns");
            st.arrived[self.side] = true;
        }
        self.shared.notify.notify_waiters();
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.shared.state.lock().expect("turns");
                let my_pos = st.taken[self.side] * n
                    + (0..n)
                        .position(|p| side_at(st.taken[self.side] * n + p, n) == self.side)
                        .expect("every side has a place in every round");
                let everyone_here = (0..n).all(|s| st.arrived[s] || st.gone[s]);
                // Skip the places of sides that left.
                while st.cursor < my_pos && st.gone[side_at(st.cursor, n)] && !st.held {
                    st.cursor += 1;
                }
                if everyone_here && !st.held && st.cursor == my_pos {
                    st.held = true;
                    st.taken[self.side] += 1;
                    return TurnGuard {
                        shared: self.shared.clone(),
                    };
                }
            }
            notified.await;
        }
    }

    /// This side takes no more turns (its run ended, well or not).
    pub fn leave(&self) {
        {
            let mut st = self.shared.state.lock().expect("turns");
            st.gone[self.side] = true;
        }
        self.shared.notify.notify_waiters();
    }
}

/// A turn being taken; dropping it passes the turn on.
#[derive(Debug)]
pub struct TurnGuard {
    shared: Arc<Shared>,
}

impl Drop for TurnGuard {
    fn drop(&mut self) {
        if let Ok(mut st) = self.shared.state.lock() {
            st.held = false;
            st.cursor += 1;
        }
        self.shared.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_sides_go_abba() {
        let order: Vec<usize> = (0..8).map(|p| side_at(p, 2)).collect();
        assert_eq!(order, [0, 1, 1, 0, 0, 1, 1, 0]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sides_interleave_whatever_their_speed() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let turns = Turns::new(2);
        let tasks: Vec<_> =
            turns
                .into_iter()
                .map(|t| {
                    let log = log.clone();
                    tokio::spawn(async move {
                        // Side 1 arrives late: side 0 must wait for it.
                        if t.side() == 1 {
                            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                        }
                        for _ in 0..4 {
                            let _g = t.take().await;
                            log.lock().unwrap().push(t.side());
                            tokio::time::sleep(std::time::Duration::from_millis(
                                if t.side() == 0 { 1 } else { 5 },
                            ))
                            .await;
                        }
                        t.leave();
                    })
                })
                .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*log.lock().unwrap(), [0, 1, 1, 0, 0, 1, 1, 0]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_side_that_leaves_does_not_block_the_other() {
        let turns = Turns::new(2);
        let (a, b) = (turns[0].clone(), turns[1].clone());
        b.leave();
        let run = tokio::spawn(async move {
            for _ in 0..3 {
                let _g = a.take().await;
            }
        });
        tokio::time::timeout(std::time::Duration::from_secs(5), run)
            .await
            .expect("side 0 went on alone")
            .unwrap();
    }
}
