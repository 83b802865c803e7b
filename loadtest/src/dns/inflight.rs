//! Queries in flight, indexed by their 16-bit message id. Ids are handed
//! out in a rotating order, so an id is reused as late as possible; a
//! reply is matched by id and by the socket its query left from.

use crate::limits::DNS_WINDOW_MAX;

/// Size of the DNS id space.
pub const ID_SPACE: usize = 1 << 16;
const FREE: u64 = u64::MAX;

/// The outstanding queries.
#[derive(Debug)]
pub struct InFlight {
    /// Send time per id, [`FREE`] when the id is not in use.
    sent_ns: Vec<u64>,
    socket: Vec<u16>,
    query: Vec<u32>,
    outstanding: usize,
    window: usize,
    next_id: u16,
}

impl InFlight {
    /// A table allowing `window` queries outstanding.
    pub fn new(window: usize) -> InFlight {
        assert!(
            (1..=DNS_WINDOW_MAX).contains(&window),
            "window {window} outside 1..={DNS_WINDOW_MAX} (validated at the command line)"
        );
        InFlight {
            sent_ns: vec![FREE; ID_SPACE],
            socket: vec![0; ID_SPACE],
            query: vec![0; ID_SPACE],
            outstanding: 0,
            window,
            next_id: 0,
        }
    }

    /// Queries outstanding.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// How many more may be sent now.
    pub fn room(&self) -> usize {
        self.window - self.outstanding
    }

    /// Takes an id for query number `query` sent on `socket` at `now_ns`.
    /// The caller checks [`InFlight::room`] first.
    pub fn start(&mut self, socket: u16, query: u32, now_ns: u64) -> u16 {
        assert!(self.outstanding < self.window, "start() beyond the window");
        assert!(now_ns != FREE, "time sentinel reached");
        // At most `window` <= half of the id space is in use, so a free id
        // is found within one turn.
        for _ in 0..ID_SPACE {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            let slot = id as usize;
            if self.sent_ns[slot] == FREE {
                self.sent_ns[slot] = now_ns;
                self.socket[slot] = socket;
                self.query[slot] = query;
                self.outstanding += 1;
                return id;
            }
        }
        unreachable!("fewer than {ID_SPACE} ids in use, so one is free");
    }

    /// Gives back an id whose query could not be sent.
    pub fn cancel(&mut self, id: u16) {
        let slot = id as usize;
        assert!(self.sent_ns[slot] != FREE, "cancel of an id not in use");
        self.sent_ns[slot] = FREE;
        self.outstanding -= 1;
    }

    /// The query number outstanding under `id` on `socket`, if any.
    pub fn query_of(&self, id: u16, socket: u16) -> Option<u32> {
        let slot = id as usize;
        (self.sent_ns[slot] != FREE && self.socket[slot] == socket).then_some(self.query[slot])
    }

    /// The reply for `id` on `socket` arrived at `now_ns`: frees the id and
    /// returns the latency, or `None` if no such query is outstanding.
    pub fn complete(&mut self, id: u16, socket: u16, now_ns: u64) -> Option<u64> {
        self.query_of(id, socket)?;
        let slot = id as usize;
        let sent = self.sent_ns[slot];
        self.sent_ns[slot] = FREE;
        self.outstanding -= 1;
        Some(now_ns.saturating_sub(sent))
    }

    /// Frees every query sent more than `timeout_ns` before `now_ns`;
    /// returns how many (they are lost).
    pub fn expire(&mut self, now_ns: u64, timeout_ns: u64) -> u64 {
        if self.outstanding == 0 {
            return 0;
        }
        let mut expired = 0;
        for sent in self.sent_ns.iter_mut() {
            if *sent != FREE && now_ns.saturating_sub(*sent) > timeout_ns {
                *sent = FREE;
                expired += 1;
            }
        }
        self.outstanding -= expired as usize;
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bounds_starts_and_replies_free_ids() {
        let mut f = InFlight::new(3);
        let a = f.start(0, 10, 100);
        let b = f.start(1, 11, 200);
        let c = f.start(0, 12, 300);
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(f.room(), 0);
        assert_eq!(f.query_of(b, 1), Some(11));
        assert_eq!(f.query_of(b, 0), None, "a reply on another socket is not ours");
        assert_eq!(f.complete(b, 0, 1_000), None);
        assert_eq!(f.complete(b, 1, 1_000), Some(800));
        assert_eq!(f.complete(b, 1, 1_000), None, "a duplicate reply finds nothing");
        assert_eq!(f.room(), 1);
        f.cancel(a);
        assert_eq!(f.outstanding(), 1);
    }

    #[test]
    fn ids_rotate_so_reuse_is_late() {
        let mut f = InFlight::new(1);
        let first = f.start(0, 0, 1);
        f.complete(first, 0, 2);
        let second = f.start(0, 0, 3);
        assert_ne!(first, second, "a just-freed id is not handed out again at once");
    }

    #[test]
    fn expire_counts_only_old_queries() {
        let mut f = InFlight::new(10);
        f.start(0, 0, 1_000);
        f.start(0, 0, 2_000);
        let young = f.start(0, 0, 9_000);
        assert_eq!(f.expire(10_000, 5_000), 2);
        assert_eq!(f.outstanding(), 1);
        assert_eq!(f.complete(young, 0, 10_500), Some(1_500));
        assert_eq!(f.expire(1_000_000, 1), 0);
    }

    #[test]
    fn full_id_space_turns_are_handled() {
        let mut f = InFlight::new(DNS_WINDOW_MAX);
        // Three turns of the id space, always at the window.
        let mut live = std::collections::VecDeque::new();
        for t in 0..(3 * ID_SPACE as u64) {
            if f.room() == 0 {
                let id = live.pop_front().unwrap();
                assert!(f.complete(id, 0, t).is_some());
            }
            live.push_back(f.start(0, 0, t));
        }
        assert_eq!(f.outstanding(), DNS_WINDOW_MAX);
    }
}
