//! Writes waiting for the local replica to reach their raft index
//! (read-your-writes), ordered by index so a new version releases exactly
//! the ones it satisfies (pure).

use std::collections::BTreeMap;

/// Identifies one waiting write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WaiterId {
    index: u64,
    seq: u64,
}

/// Too many writes are waiting on this core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many writes waiting for the replica on this core (limit {capacity})")]
pub struct WaitersFull {
    /// The limit that was hit.
    pub capacity: usize,
}

/// Waiters keyed by the index they need.
pub struct IndexWaiters<T> {
    waiting: BTreeMap<WaiterId, T>,
    next_seq: u64,
    capacity: usize,
}

impl<T> IndexWaiters<T> {
    /// An empty set holding at most `capacity` waiters.
    pub fn new(capacity: usize) -> IndexWaiters<T> {
        IndexWaiters {
            waiting: BTreeMap::new(),
            next_seq: 0,
            capacity,
        }
    }

    /// Waiters right now.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Adds a waiter for `index`.
    pub fn register(&mut self, index: u64, payload: T) -> Result<WaiterId, WaitersFull> {
        if self.waiting.len() >= self.capacity {
            return Err(WaitersFull {
                capacity: self.capacity,
            });
        }
        let id = WaiterId {
            index,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.waiting.insert(id, payload);
        Ok(id)
    }

    /// The payload of a waiter still registered.
    pub fn get_mut(&mut self, id: WaiterId) -> Option<&mut T> {
        self.waiting.get_mut(&id)
    }

    /// Removes a waiter.
    pub fn remove(&mut self, id: WaiterId) -> Option<T> {
        self.waiting.remove(&id)
    }

    /// Ids of every waiter whose index is `<= reached`, lowest first.
    pub fn reached(&self, reached: u64, out: &mut Vec<WaiterId>) {
        out.extend(self.waiting.keys().take_while(|id| id.index <= reached).copied());
    }

    /// Ids of every waiter (a restore: nobody will see their index soon).
    pub fn all(&self, out: &mut Vec<WaiterId>) {
        out.extend(self.waiting.keys().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_exactly_the_reached_indexes() {
        let mut w = IndexWaiters::new(10);
        let a = w.register(5, "a").unwrap();
        let b = w.register(7, "b").unwrap();
        let c = w.register(5, "c").unwrap();
        let mut out = Vec::new();
        w.reached(4, &mut out);
        assert!(out.is_empty());
        w.reached(5, &mut out);
        assert_eq!(out, vec![a, c]);
        out.clear();
        w.reached(100, &mut out);
        assert_eq!(out, vec![a, c, b]);
        assert_eq!(w.remove(b), Some("b"));
        assert_eq!(w.remove(b), None);
        out.clear();
        w.all(&mut out);
        assert_eq!(out, vec![a, c]);
    }

    #[test]
    fn capacity_is_enforced() {
        let mut w = IndexWaiters::new(1);
        let a = w.register(1, ()).unwrap();
        assert_eq!(w.register(2, ()).unwrap_err(), WaitersFull { capacity: 1 });
        w.remove(a);
        assert!(w.register(2, ()).is_ok());
        assert_eq!(w.len(), 1);
    }
}
