//! Parked queries on one core: the [`WatchRegistry`] plus a waker per
//! query, as futures. Single-threaded (`RefCell`), no clocks: the caller
//! races a [`Parked`] future against its deadline.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::blocking::changes::ChangeSet;
use crate::blocking::index_waiters::{IndexWaiters, WaiterId, WaitersFull};
use crate::blocking::registry::{ParkId, RegistryFull, WatchRegistry};
use crate::blocking::watch::WatchSet;

/// The waker slot of one parked query or waiting write.
#[derive(Default)]
struct Wakeup {
    waker: Option<Waker>,
    woken: bool,
}

impl Wakeup {
    fn fire(&mut self) -> Option<Waker> {
        self.woken = true;
        self.waker.take()
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.woken {
            return Poll::Ready(());
        }
        match &self.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => self.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Every parked blocking query and every write waiting for its index on
/// one core.
pub struct Parking {
    queries: RefCell<WatchRegistry<Wakeup>>,
    writes: RefCell<IndexWaiters<Wakeup>>,
}

impl Parking {
    /// Room for `queries_max` parked queries and `writes_max` waiting writes.
    pub fn new(queries_max: usize, writes_max: usize) -> Parking {
        Parking {
            queries: RefCell::new(WatchRegistry::new(queries_max)),
            writes: RefCell::new(IndexWaiters::new(writes_max)),
        }
    }

    /// Parked queries right now.
    pub fn parked(&self) -> usize {
        self.queries.borrow().len()
    }

    /// Writes waiting for their index right now.
    pub fn waiting_writes(&self) -> usize {
        self.writes.borrow().len()
    }

    /// Parks a query until something in `watch` changes. The returned
    /// future deregisters when dropped (cancel-safe).
    pub fn park(&self, watch: &WatchSet) -> Result<Parked<'_>, RegistryFull> {
        let id = self.queries.borrow_mut().register(watch, Wakeup::default())?;
        Ok(Parked { parking: self, id })
    }

    /// Waits until a version at or above `index` is installed.
    pub fn wait_index(&self, index: u64) -> Result<IndexReached<'_>, WaitersFull> {
        let id = self.writes.borrow_mut().register(index, Wakeup::default())?;
        Ok(IndexReached { parking: self, id })
    }

    /// Wakes the queries `changes` affects and the writes `index` satisfies
    /// (every write when `changes.wake_all`). Returns how many queries woke.
    pub fn wake(&self, changes: &ChangeSet, index: u64) -> usize {
        let mut wakers = Vec::new();
        let mut ids = Vec::new();
        {
            let mut queries = self.queries.borrow_mut();
            queries.affected(changes, &mut ids);
            for id in &ids {
                if let Some(w) = queries.get_mut(*id).and_then(Wakeup::fire) {
                    wakers.push(w);
                }
            }
        }
        let woken = ids.len();
        let mut write_ids: Vec<WaiterId> = Vec::new();
        {
            let mut writes = self.writes.borrow_mut();
            if changes.wake_all {
                writes.all(&mut write_ids);
            } else {
                writes.reached(index, &mut write_ids);
            }
            for id in write_ids {
                if let Some(w) = writes.get_mut(id).and_then(Wakeup::fire) {
                    wakers.push(w);
                }
            }
        }
        for w in wakers {
            w.wake();
        }
        woken
    }
}

/// A parked query: ready when something it watches changed.
pub struct Parked<'a> {
    parking: &'a Parking,
    id: ParkId,
}

impl Future for Parked<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut queries = self.parking.queries.borrow_mut();
        match queries.get_mut(self.id) {
            Some(w) => w.poll(cx),
            None => Poll::Ready(()),
        }
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.parking.queries.borrow_mut().deregister(self.id);
    }
}

/// A write waiting for the replica: ready once the index is installed (or
/// the state was replaced).
pub struct IndexReached<'a> {
    parking: &'a Parking,
    id: WaiterId,
}

impl Future for IndexReached<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut writes = self.parking.writes.borrow_mut();
        match writes.get_mut(self.id) {
            Some(w) => w.poll(cx),
            None => Poll::Ready(()),
        }
    }
}

impl Drop for IndexReached<'_> {
    fn drop(&mut self) {
        self.parking.writes.borrow_mut().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocking::watch::WatchItem;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_once<F: Future + Unpin>(f: &mut F, waker: &Waker) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(waker))
    }

    fn key_change(key: &str) -> ChangeSet {
        ChangeSet {
            index_advanced: true,
            kv_keys: vec![key.to_string()],
            ..ChangeSet::default()
        }
    }

    #[test]
    fn parked_query_wakes_on_its_key_only() {
        let parking = Parking::new(10, 10);
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut parked = parking.park(&WatchSet::one(WatchItem::KvKey("k".into()))).unwrap();
        assert!(poll_once(&mut parked, &waker).is_pending());
        assert_eq!(parking.wake(&key_change("other"), 2), 0);
        assert_eq!(counter.0.load(Ordering::SeqCst), 0);
        assert!(poll_once(&mut parked, &waker).is_pending());
        assert_eq!(parking.wake(&key_change("k"), 3), 1);
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(poll_once(&mut parked, &waker).is_ready());
        drop(parked);
        assert_eq!(parking.parked(), 0, "dropping deregisters");
    }

    #[test]
    fn dropping_an_unwoken_query_deregisters_it() {
        let parking = Parking::new(1, 1);
        let parked = parking.park(&WatchSet::one(WatchItem::Nodes)).unwrap();
        assert!(parking.park(&WatchSet::one(WatchItem::Nodes)).is_err(), "cap of one");
        drop(parked);
        assert!(parking.park(&WatchSet::one(WatchItem::Nodes)).is_ok());
    }

    #[test]
    fn writes_wake_when_their_index_is_installed_or_on_restore() {
        let parking = Parking::new(10, 10);
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut at5 = parking.wait_index(5).unwrap();
        let mut at9 = parking.wait_index(9).unwrap();
        assert!(poll_once(&mut at5, &waker).is_pending());
        assert!(poll_once(&mut at9, &waker).is_pending());
        parking.wake(&ChangeSet::default(), 6);
        assert!(poll_once(&mut at5, &waker).is_ready());
        assert!(poll_once(&mut at9, &waker).is_pending());
        parking.wake(&ChangeSet::everything(), 1);
        assert!(poll_once(&mut at9, &waker).is_ready(), "a restore releases every write");
        drop(at5);
        drop(at9);
        assert_eq!(parking.waiting_writes(), 0);
    }
}
