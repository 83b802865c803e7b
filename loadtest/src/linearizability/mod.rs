//! A linearizability checker for a key/value store with reads, writes and
//! compare-and-set, in the style of Wing & Gong with Lowe's memoization
//! (as Knossos and Porcupine do it).
//!
//! Linearizability is local: a history is linearizable exactly when each
//! key's sub-history is, so [`check_history`] splits by key and checks each
//! with [`check_key`]. An operation whose outcome is unknown (a timeout, a
//! connection cut, a 500 during an election) may or may not have taken
//! effect: it is recorded with `returned: None` and may be placed anywhere
//! after its call, or nowhere.
//!
//! Values written in one history must be unique per key; that makes a
//! CAS on Consul's `ModifyIndex` equivalent to a CAS on the value the
//! client read (each write creates a new index and a new value).
//!
//! Everything is pure and bounded ([`SEARCH_STEPS_MAX`], [`OPS_PER_KEY_MAX`]).

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};

/// Most operations on one key a check accepts.
pub const OPS_PER_KEY_MAX: usize = 512;
/// Most search steps per key before the answer is "unknown".
pub const SEARCH_STEPS_MAX: u64 = 20_000_000;

/// What a client asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Read,
    Write(String),
    /// Set `new` if the current value is `expected` (`None`: absent).
    Cas {
        expected: Option<String>,
        new: String,
    },
}

/// What it was told, when it was told anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Read(Option<String>),
    Write,
    Cas(bool),
}

/// One operation of one client on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub key: String,
    pub input: Input,
    /// When the request was sent (any monotonic clock, e.g. ns).
    pub called: u64,
    /// When the answer arrived and what it was; `None` when unknown.
    pub returned: Option<(u64, Output)>,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// A key whose history has no legal order, with a short reason.
    Violation {
        key: String,
        reason: String,
    },
    /// The search or the history exceeded a bound.
    Unknown {
        key: String,
        reason: String,
    },
}

/// Checks a whole history, key by key.
pub fn check_history(ops: &[Operation]) -> Verdict {
    let mut by_key: BTreeMap<&str, Vec<Operation>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op.key.as_str()).or_default().push(op.clone());
    }
    for ops in by_key.into_values() {
        match check_key(&ops) {
            Verdict::Linearizable => {}
            other => return other,
        }
    }
    Verdict::Linearizable
}

/// Checks the operations of one key, starting from an absent value.
pub fn check_key(ops: &[Operation]) -> Verdict {
    let key = ops.first().map(|o| o.key.clone()).unwrap_or_default();
    if ops.len() > OPS_PER_KEY_MAX {
        return Verdict::Unknown {
            key,
            reason: format!("{} operations on one key exceed {OPS_PER_KEY_MAX}", ops.len()),
        };
    }
    // Reads without an answer have no effect: drop them.
    let ops: Vec<&Operation> = ops
        .iter()
        .filter(|o| !(o.input == Input::Read && o.returned.is_none()))
        .collect();
    let mut search = Search {
        ops: &ops,
        seen: HashSet::new(),
        steps: 0,
    };
    let mut done = vec![false; ops.len()];
    match search.dfs(&mut done, None) {
        Some(true) => Verdict::Linearizable,
        Some(false) => Verdict::Violation {
            key,
            reason: "no order of the operations agrees with their real-time order and answers".into(),
        },
        None => Verdict::Unknown {
            key,
            reason: format!("search exceeded {SEARCH_STEPS_MAX} steps"),
        },
    }
}

struct Search<'a> {
    ops: &'a [&'a Operation],
    /// (linearized set, state) pairs already explored.
    seen: HashSet<(Vec<bool>, Option<String>)>,
    steps: u64,
}

impl Search<'_> {
    /// Whether the remaining operations can be linearized from `state`;
    /// `None` when the step bound ran out.
    fn dfs(&mut self, done: &mut Vec<bool>, state: Option<String>) -> Option<bool> {
        self.steps += 1;
        if self.steps > SEARCH_STEPS_MAX {
            return None;
        }
        // Finished when every operation that returned is placed (those
        // without an answer may have never happened).
        if self
            .ops
            .iter()
            .zip(done.iter())
            .all(|(o, d)| *d || o.returned.is_none())
        {
            return Some(true);
        }
        if !self.seen.insert((done.clone(), state.clone())) {
            return Some(false);
        }
        // An operation may go next only if no pending operation returned
        // before it was called.
        let horizon = self
            .ops
            .iter()
            .zip(done.iter())
            .filter(|(_, d)| !**d)
            .filter_map(|(o, _)| o.returned.as_ref().map(|(t, _)| *t))
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..self.ops.len() {
            if done[i] || self.ops[i].called > horizon {
                continue;
            }
            let Some(next) = step(self.ops[i], &state) else {
                continue;
            };
            done[i] = true;
            let found = self.dfs(done, next);
            done[i] = false;
            match found {
                Some(true) => return Some(true),
                Some(false) => {}
                None => return None,
            }
        }
        Some(false)
    }
}

/// The state after `op` from `state`, or `None` when its answer is not
/// what the register would have answered.
fn step(op: &Operation, state: &Option<String>) -> Option<Option<String>> {
    let output = op.returned.as_ref().map(|(_, o)| o);
    match (&op.input, output) {
        (Input::Read, Some(Output::Read(seen))) => (seen == state).then(|| state.clone()),
        (Input::Read, _) => None,
        (Input::Write(v), None | Some(Output::Write)) => Some(Some(v.clone())),
        (Input::Write(_), Some(_)) => None,
        (Input::Cas { expected, new }, answer) => {
            let applies = expected == state;
            match answer {
                None => applies.then(|| Some(new.clone())),
                Some(Output::Cas(true)) => applies.then(|| Some(new.clone())),
                Some(Output::Cas(false)) => (!applies).then(|| state.clone()),
                Some(_) => None,
            }
        }
    }
}
