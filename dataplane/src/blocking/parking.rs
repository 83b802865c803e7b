//! Parked queries on one core: the [`WatchRegistry`] plus a waker per
//! query, as futures. Single-threaded (`RefCell`), no clocks: each parked
//! query's deadline is kept here (one ordered set per core, not one timer
//! per query); the core's version follower sleeps until the earliest and
//! calls [`Parking::expire`] with the time.
//!
//! Fairness (issue #4 item 4): a change that affects many parked queries
//! does not wake them all at once. [`Parking::wake`] queues them and
//! releases at most [`WAKE_BATCH_MAX`]; the core's version follower
//! releases the rest batch by batch ([`Parking::release_batch`]), yielding
//! to the runtime between batches so DNS and plain reads on the same core
//! are served during a wake storm. With wake pacing on
//! ([`Parking::set_release_on_wake`] false, see [`super::wake_pacing`])
//! [`Parking::wake`] only queues: the follower decides when each batch goes
//! out, and changes that land meanwhile merge into the queue.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::blocking::changes::ChangeSet;
use crate::blocking::index_waiters::{IndexWaiters, WaiterId, WaitersFull};
use crate::blocking::registry::{ParkId, RegistryFull, WatchRegistry};
use crate::blocking::watch::WatchSet;

/// Most parked queries woken in one batch; the core serves other ready
/// work (DNS, plain reads, IO completions) between batches.
pub const WAKE_BATCH_MAX: usize = 256;

/// The waker slot of one parked query or waiting write.
#[derive(Default)]
struct Wakeup {
    waker: Option<Waker>,
    woken: bool,
    /// In the wake backlog (queued once, however many changes hit it).
    queued: bool,
    /// Woken because its deadline passed.
    expired: bool,
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
    /// Affected queries not woken yet, in wake order. Each parked query
    /// is in it at most once, so it never outgrows the registry.
    backlog: RefCell<VecDeque<ParkId>>,
    /// The task that releases the backlog and keeps the deadline timer
    /// (the core's version follower).
    backlog_waker: RefCell<Option<Waker>>,
    /// Every parked query's deadline, earliest first.
    deadlines: RefCell<BTreeSet<(Instant, ParkId)>>,
    /// [`Parking::wake`] releases the first batch itself (pacing off).
    release_on_wake: Cell<bool>,
}

/// Why a [`Parked`] query woke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParkedWake {
    /// Something it watches changed.
    Changed,
    /// Its deadline passed.
    Expired,
}

impl Parking {
    /// Room for `queries_max` parked queries and `writes_max` waiting writes.
    pub fn new(queries_max: usize, writes_max: usize) -> Parking {
        Parking {
            queries: RefCell::new(WatchRegistry::new(queries_max)),
            writes: RefCell::new(IndexWaiters::new(writes_max)),
            backlog: RefCell::new(VecDeque::new()),
            backlog_waker: RefCell::new(None),
            deadlines: RefCell::new(BTreeSet::new()),
            release_on_wake: Cell::new(true),
        }
    }

    /// Whether [`Parking::wake`] wakes the first batch itself (true, the
    /// default) or only queues and tells the releasing task (wake pacing:
    /// that task decides when each batch goes out).
    pub fn set_release_on_wake(&self, release: bool) {
        self.release_on_wake.set(release);
    }

    /// Affected queries waiting to be woken by [`Parking::release_batch`].
    pub fn backlog(&self) -> usize {
        self.backlog.borrow().len()
    }

    /// Parked queries right now.
    pub fn parked(&self) -> usize {
        self.queries.borrow().len()
    }

    /// Writes waiting for their index right now.
    pub fn waiting_writes(&self) -> usize {
        self.writes.borrow().len()
    }

    /// Parks a query until something in `watch` changes or `deadline`
    /// passes (see [`Parking::expire`]). The returned future deregisters
    /// when dropped (cancel-safe).
    pub fn park(&self, watch: &WatchSet, deadline: Instant) -> Result<Parked<'_>, RegistryFull> {
        let id = self.queries.borrow_mut().register(watch, Wakeup::default())?;
        let earliest = {
            let mut deadlines = self.deadlines.borrow_mut();
            let earliest = deadlines.first().is_none_or(|(first, _)| deadline < *first);
            deadlines.insert((deadline, id));
            earliest
        };
        if earliest {
            // The timer must be re-armed earlier.
            if let Some(w) = self.backlog_waker.borrow_mut().take() {
                w.wake();
            }
        }
        Ok(Parked {
            parking: self,
            id,
            deadline,
        })
    }

    /// The earliest deadline of a parked query.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.borrow().first().map(|(at, _)| *at)
    }

    /// Wakes up to `batch_max` parked queries whose deadline is at or
    /// before `now`, earliest first. Returns how many it woke; more may
    /// be due if that is `batch_max`.
    pub fn expire(&self, now: Instant, batch_max: usize) -> usize {
        let mut wakers = Vec::new();
        let mut expired = 0;
        {
            let mut queries = self.queries.borrow_mut();
            let mut deadlines = self.deadlines.borrow_mut();
            while expired < batch_max {
                match deadlines.first() {
                    Some((at, _)) if *at <= now => {}
                    _ => break,
                }
                let Some((_, id)) = deadlines.pop_first() else {
                    break;
                };
                let Some(w) = queries.get_mut(id) else {
                    debug_assert!(false, "a deadline outlived its parked query");
                    continue;
                };
                expired += 1;
                w.expired = true;
                if let Some(waker) = w.fire() {
                    wakers.push(waker);
                }
            }
        }
        for w in wakers {
            w.wake();
        }
        expired
    }

    /// Waits until a version at or above `index` is installed.
    pub fn wait_index(&self, index: u64) -> Result<IndexReached<'_>, WaitersFull> {
        let id = self.writes.borrow_mut().register(index, Wakeup::default())?;
        Ok(IndexReached { parking: self, id })
    }

    /// Queues the queries `changes` affects and wakes the first
    /// [`WAKE_BATCH_MAX`] of them (unless [`Parking::set_release_on_wake`]
    /// turned that off); wakes the writes `index` satisfies
    /// (every write when `changes.wake_all`). Returns how many queries
    /// `changes` affected. The rest of the queue is released by
    /// [`Parking::release_batch`], which the task polling
    /// [`Parking::poll_backlog`] is woken to call.
    pub fn wake(&self, changes: &ChangeSet, index: u64) -> usize {
        let mut ids = Vec::new();
        {
            let mut queries = self.queries.borrow_mut();
            queries.affected(changes, &mut ids);
            let mut backlog = self.backlog.borrow_mut();
            for id in &ids {
                if let Some(w) = queries.get_mut(*id) {
                    if !w.queued && !w.woken {
                        w.queued = true;
                        backlog.push_back(*id);
                    }
                }
            }
            debug_assert!(
                backlog.len() <= queries.len(),
                "each parked query is queued at most once"
            );
        }
        let affected = ids.len();
        let mut wakers = Vec::new();
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
        if self.release_on_wake.get() {
            self.release_batch(WAKE_BATCH_MAX);
        }
        if self.backlog() > 0 {
            if let Some(w) = self.backlog_waker.borrow_mut().take() {
                w.wake();
            }
        }
        affected
    }

    /// Wakes up to `batch_max` queued queries (those still parked), in the
    /// order they were queued. Returns how many it woke.
    pub fn release_batch(&self, batch_max: usize) -> usize {
        let mut wakers = Vec::with_capacity(batch_max.min(WAKE_BATCH_MAX));
        let mut released = 0;
        {
            let mut queries = self.queries.borrow_mut();
            let mut backlog = self.backlog.borrow_mut();
            while released < batch_max {
                let Some(id) = backlog.pop_front() else {
                    break;
                };
                // Gone meanwhile (its client hung up or it timed out).
                let Some(w) = queries.get_mut(id) else {
                    continue;
                };
                w.queued = false;
                released += 1;
                if let Some(waker) = w.fire() {
                    wakers.push(waker);
                }
            }
        }
        for w in wakers {
            w.wake();
        }
        released
    }

    /// Ready while queued queries wait for [`Parking::release_batch`];
    /// otherwise remembers `cx`'s waker for the next [`Parking::wake`]
    /// that leaves a backlog, or the next [`Parking::park`] whose deadline
    /// comes before every other.
    pub fn poll_backlog(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.backlog() > 0 {
            return Poll::Ready(());
        }
        let mut slot = self.backlog_waker.borrow_mut();
        match &*slot {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// A parked query: ready when something it watches changed or its
/// deadline passed.
pub struct Parked<'a> {
    parking: &'a Parking,
    id: ParkId,
    deadline: Instant,
}

impl Future for Parked<'_> {
    type Output = ParkedWake;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ParkedWake> {
        let mut queries = self.parking.queries.borrow_mut();
        match queries.get_mut(self.id) {
            Some(w) => w.poll(cx).map(|()| {
                if w.expired {
                    ParkedWake::Expired
                } else {
                    ParkedWake::Changed
                }
            }),
            None => Poll::Ready(ParkedWake::Changed),
        }
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.parking.queries.borrow_mut().deregister(self.id);
        self.parking.deadlines.borrow_mut().remove(&(self.deadline, self.id));
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

    fn later() -> Instant {
        Instant::now() + std::time::Duration::from_secs(600)
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
        let mut parked = parking
            .park(&WatchSet::one(WatchItem::KvKey("k".into())), later())
            .unwrap();
        assert!(poll_once(&mut parked, &waker).is_pending());
        assert_eq!(parking.wake(&key_change("other"), 2), 0);
        assert_eq!(counter.0.load(Ordering::SeqCst), 0);
        assert!(poll_once(&mut parked, &waker).is_pending());
        assert_eq!(parking.wake(&key_change("k"), 3), 1);
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert_eq!(poll_once(&mut parked, &waker), Poll::Ready(ParkedWake::Changed));
        drop(parked);
        assert_eq!(parking.parked(), 0, "dropping deregisters");
        assert_eq!(parking.next_deadline(), None, "and forgets its deadline");
    }

    #[test]
    fn dropping_an_unwoken_query_deregisters_it() {
        let parking = Parking::new(1, 1);
        let parked = parking.park(&WatchSet::one(WatchItem::Nodes), later()).unwrap();
        assert!(
            parking.park(&WatchSet::one(WatchItem::Nodes), later()).is_err(),
            "cap of one"
        );
        drop(parked);
        assert!(parking.park(&WatchSet::one(WatchItem::Nodes), later()).is_ok());
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

    #[test]
    fn a_storm_is_woken_in_batches_in_queue_order() {
        let parking = Parking::new(2_000, 1);
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let watch = WatchSet::one(WatchItem::KvKey("hot".into()));
        let mut parked: Vec<Parked<'_>> = (0..1_000).map(|_| parking.park(&watch, later()).unwrap()).collect();
        for p in &mut parked {
            assert!(poll_once(p, &waker).is_pending());
        }
        let backlog_counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let backlog_waker = Waker::from(backlog_counter.clone());
        assert!(parking
            .poll_backlog(&mut Context::from_waker(&backlog_waker))
            .is_pending());

        assert_eq!(parking.wake(&key_change("hot"), 2), 1_000, "all affected");
        assert_eq!(counter.0.load(Ordering::SeqCst), WAKE_BATCH_MAX, "one batch woken");
        assert_eq!(parking.backlog(), 1_000 - WAKE_BATCH_MAX);
        assert_eq!(
            backlog_counter.0.load(Ordering::SeqCst),
            1,
            "the releasing task is told"
        );
        let ready = parked
            .iter_mut()
            .filter_map(|p| poll_once(p, &waker).is_ready().then_some(()))
            .count();
        assert_eq!(ready, WAKE_BATCH_MAX, "queries still queued are not ready");

        // A second change before the backlog drains queues nobody twice.
        parking.wake(&key_change("hot"), 3);
        assert_eq!(parking.backlog(), 1_000 - 2 * WAKE_BATCH_MAX);
        // Queued queries that went away meanwhile are skipped, not counted.
        let mut dropped = 0;
        parked.retain_mut(|p| {
            if dropped < 100 && poll_once(p, &waker).is_pending() {
                dropped += 1;
                return false;
            }
            true
        });
        assert_eq!(parked.len(), 900);
        let mut released = 0;
        for _ in 0..10 {
            if parking.backlog() == 0 {
                break;
            }
            released += parking.release_batch(WAKE_BATCH_MAX);
        }
        assert_eq!(released, 900 - 2 * WAKE_BATCH_MAX);
        assert_eq!(counter.0.load(Ordering::SeqCst), 900);
        assert!(parked.iter_mut().all(|p| poll_once(p, &waker).is_ready()));
        assert!(parking
            .poll_backlog(&mut Context::from_waker(&backlog_waker))
            .is_pending());
        drop(parked);
        assert_eq!(parking.parked(), 0);
    }

    #[test]
    fn deadlines_expire_earliest_first_in_batches() {
        let parking = Parking::new(100, 1);
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let pump = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let pump_waker = Waker::from(pump.clone());
        let t0 = Instant::now();
        let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
        let watch = WatchSet::one(WatchItem::Nodes);
        assert!(parking.poll_backlog(&mut Context::from_waker(&pump_waker)).is_pending());
        let mut late = parking.park(&watch, at(500)).unwrap();
        assert_eq!(pump.0.load(Ordering::SeqCst), 1, "a first deadline re-arms the timer");
        assert!(parking.poll_backlog(&mut Context::from_waker(&pump_waker)).is_pending());
        let mut soon: Vec<Parked<'_>> = (0..10).map(|_| parking.park(&watch, at(100)).unwrap()).collect();
        assert_eq!(pump.0.load(Ordering::SeqCst), 2, "an earlier deadline re-arms it");
        assert!(poll_once(&mut late, &waker).is_pending());
        for p in &mut soon {
            assert!(poll_once(p, &waker).is_pending());
        }
        assert_eq!(parking.next_deadline(), Some(at(100)));
        assert_eq!(parking.expire(at(99), 100), 0, "nothing due yet");
        assert_eq!(parking.expire(at(100), 4), 4, "a batch at most");
        assert_eq!(parking.expire(at(200), 100), 6);
        assert_eq!(counter.0.load(Ordering::SeqCst), 10);
        for p in &mut soon {
            assert_eq!(poll_once(p, &waker), Poll::Ready(ParkedWake::Expired));
        }
        assert!(
            poll_once(&mut late, &waker).is_pending(),
            "a later deadline still waits"
        );
        assert_eq!(parking.next_deadline(), Some(at(500)));
        drop(soon);
        drop(late);
        assert_eq!(parking.next_deadline(), None);
        assert_eq!(parking.parked(), 0);
    }

    #[test]
    fn held_wakes_merge_and_each_watcher_wakes_once() {
        let parking = Parking::new(100, 1);
        parking.set_release_on_wake(false);
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let pump = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let pump_waker = Waker::from(pump.clone());
        let hot = WatchSet::one(WatchItem::KvKey("hot".into()));
        let warm = WatchSet::one(WatchItem::KvKey("warm".into()));
        let mut parked: Vec<Parked<'_>> = (0..10).map(|_| parking.park(&hot, later()).unwrap()).collect();
        parked.extend((0..5).map(|_| parking.park(&warm, later()).unwrap()));
        for p in &mut parked {
            assert!(poll_once(p, &waker).is_pending());
        }
        assert!(parking.poll_backlog(&mut Context::from_waker(&pump_waker)).is_pending());
        let told = pump.0.load(Ordering::SeqCst);

        // Three changes while held: queued, nobody woken yet.
        assert_eq!(parking.wake(&key_change("hot"), 2), 10);
        assert_eq!(pump.0.load(Ordering::SeqCst), told + 1, "the releasing task is told");
        assert_eq!(parking.wake(&key_change("hot"), 3), 10);
        assert_eq!(parking.wake(&key_change("warm"), 4), 5);
        assert_eq!(counter.0.load(Ordering::SeqCst), 0, "held: nobody woken");
        assert_eq!(parking.backlog(), 15, "merged: each watcher queued once");
        assert!(parked.iter_mut().all(|p| poll_once(p, &waker).is_pending()));

        assert_eq!(parking.release_batch(WAKE_BATCH_MAX), 15);
        assert_eq!(counter.0.load(Ordering::SeqCst), 15, "each watcher woken once");
        assert!(parked.iter_mut().all(|p| poll_once(p, &waker).is_ready()));
        assert_eq!(parking.release_batch(WAKE_BATCH_MAX), 0);
        assert_eq!(counter.0.load(Ordering::SeqCst), 15);
    }
}
