//! Handing versions from the applier thread to the serving cores.
//!
//! The applier stores each new [`Version`] as the latest (one `ArcSwap`
//! store), pushes it on every core's bounded queue, and signals each core's
//! cross-thread waker. A core drains its queue (merging the change sets),
//! loads the latest version and installs it. A full queue sets the core's
//! overflow flag, which means "wake every parked query" (the changes were
//! lost, the latest state was not). Costs are per version, never per
//! request.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use arc_swap::ArcSwapOption;
use crossbeam::queue::ArrayQueue;

use crate::blocking::ChangeSet;
use crate::replica::version::Version;

/// Versions a core may have pending before its changes collapse into
/// "wake everything".
pub const CORE_QUEUE_VERSIONS_MAX: usize = 1024;

/// A waker that another thread can fire: set a flag, wake the stored waker.
#[derive(Default)]
pub struct CrossThreadSignal {
    notified: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl CrossThreadSignal {
    /// Marks the signal and wakes its waiter, if any. Any thread.
    pub fn notify(&self) {
        self.notified.store(true, Ordering::SeqCst);
        let waker = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Ready (and reset) once notified since the last ready poll.
    pub fn poll_notified(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.notified.swap(false, Ordering::SeqCst) {
            return Poll::Ready(());
        }
        *self.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        if self.notified.swap(false, Ordering::SeqCst) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Drops a stored waker on the calling thread (a core calls this as it
    /// exits so no other thread ever drops its task's waker).
    pub fn clear(&self) {
        let w = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(w);
    }
}

/// One core's inbox.
pub struct CoreFeed {
    versions: ArrayQueue<Arc<Version>>,
    overflow: AtomicBool,
    signal: CrossThreadSignal,
}

impl CoreFeed {
    fn new(capacity: usize) -> CoreFeed {
        CoreFeed {
            versions: ArrayQueue::new(capacity),
            overflow: AtomicBool::new(false),
            signal: CrossThreadSignal::default(),
        }
    }

    /// Ready when a version or a shutdown was signalled.
    pub fn poll_signal(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.signal.poll_notified(cx)
    }

    /// Waits for the next signal.
    pub async fn signalled(&self) {
        std::future::poll_fn(|cx| self.poll_signal(cx)).await
    }

    /// Moves every queued change into `into`; an overflow since the last
    /// drain turns it into "wake everything".
    pub fn drain(&self, into: &mut ChangeSet) {
        while let Some(v) = self.versions.pop() {
            into.merge(&v.changes);
        }
        if self.overflow.swap(false, Ordering::SeqCst) {
            into.merge(&ChangeSet::everything());
        }
    }

    /// See [`CrossThreadSignal::clear`].
    pub fn clear_waker(&self) {
        self.signal.clear();
    }
}

/// Shared between the applier and every core.
pub struct Hub {
    feeds: Vec<CoreFeed>,
    latest: ArcSwapOption<Version>,
    last_seq: AtomicU64,
    /// Sequence of the version in `latest`, stored after it (Release): a
    /// core that reads it (Acquire) and finds it newer than its own view
    /// installs `latest` before answering a request.
    published_seq: AtomicU64,
    shutdown: AtomicBool,
    exit_code: AtomicI32,
}

impl Hub {
    /// A hub for `cores` cores with the default queue size.
    pub fn new(cores: usize) -> Arc<Hub> {
        Hub::with_queue(cores, CORE_QUEUE_VERSIONS_MAX)
    }

    /// A hub whose per-core queues hold `queue_versions` versions.
    pub fn with_queue(cores: usize, queue_versions: usize) -> Arc<Hub> {
        Arc::new(Hub {
            feeds: (0..cores).map(|_| CoreFeed::new(queue_versions)).collect(),
            latest: ArcSwapOption::empty(),
            last_seq: AtomicU64::new(0),
            published_seq: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
            exit_code: AtomicI32::new(0),
        })
    }

    /// Number of cores.
    pub fn cores(&self) -> usize {
        self.feeds.len()
    }

    /// The inbox of core `id`.
    pub fn feed(&self, id: usize) -> &CoreFeed {
        &self.feeds[id]
    }

    /// Sequence of the newest published version: one plain load of a line
    /// that changes only when a version is published.
    pub fn published_seq(&self) -> u64 {
        self.published_seq.load(Ordering::Acquire)
    }

    /// The newest published version.
    pub fn latest(&self) -> Option<Arc<Version>> {
        self.latest.load_full()
    }

    /// Publishes a version to every core (applier thread only).
    pub fn publish(&self, version: Version) {
        let previous = self.last_seq.swap(version.seq, Ordering::SeqCst);
        assert!(
            version.seq > previous,
            "version sequence must increase: {} after {}",
            version.seq,
            previous
        );
        let version = Arc::new(version);
        let seq = version.seq;
        self.latest.store(Some(version.clone()));
        self.published_seq.store(seq, Ordering::Release);
        for feed in &self.feeds {
            if feed.versions.push(version.clone()).is_err() {
                feed.overflow.store(true, Ordering::SeqCst);
            }
            feed.signal.notify();
        }
    }

    /// Asks every thread to stop; the process exits with `code`.
    pub fn request_shutdown(&self, code: i32) {
        if !self.shutdown.swap(true, Ordering::SeqCst) {
            self.exit_code.store(code, Ordering::SeqCst);
        }
        for feed in &self.feeds {
            feed.signal.notify();
        }
    }

    /// Whether a shutdown was requested.
    pub fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// The exit code of the first shutdown request.
    pub fn exit_code(&self) -> i32 {
        self.exit_code.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::fixtures::test_agent;
    use crate::replica::version::LeaderInfo;
    use proconsul_shared::ipc::messages::ClusterStatus;
    use proconsul_shared::State;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;
    use std::time::Instant;

    fn version(seq: u64, key: &str) -> Version {
        let mut changes = ChangeSet {
            index_advanced: true,
            ..ChangeSet::default()
        };
        changes.kv_keys.push(key.to_string());
        Version {
            seq,
            state: Arc::new(State::default()),
            agent: Arc::new(test_agent()),
            cluster: Arc::new(ClusterStatus::default()),
            leader: LeaderInfo::fresh(Instant::now()),
            restore_generation: 0,
            changes: Arc::new(changes),
        }
    }

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn publish_reaches_every_core_and_wakes_it() {
        let hub = Hub::new(2);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(hub.feed(0).poll_signal(&mut cx).is_pending());
        hub.publish(version(1, "a"));
        hub.publish(version(2, "b"));
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the registered waker fired once");
        assert!(hub.feed(0).poll_signal(&mut cx).is_ready());
        assert!(hub.feed(0).poll_signal(&mut cx).is_pending(), "the signal resets");
        for core in 0..2 {
            let mut merged = ChangeSet::default();
            hub.feed(core).drain(&mut merged);
            assert_eq!(merged.kv_keys, vec!["a".to_string(), "b".to_string()]);
        }
        assert_eq!(hub.latest().unwrap().seq, 2);
    }

    #[test]
    fn full_queue_turns_into_wake_everything_without_losing_the_latest() {
        let hub = Hub::with_queue(1, 2);
        for seq in 1..=5 {
            hub.publish(version(seq, "k"));
        }
        let mut merged = ChangeSet::default();
        hub.feed(0).drain(&mut merged);
        assert!(merged.wake_all);
        assert_eq!(hub.latest().unwrap().seq, 5);
        let mut again = ChangeSet::default();
        hub.feed(0).drain(&mut again);
        assert!(again.is_empty(), "overflow is reported once");
    }

    #[test]
    #[should_panic(expected = "version sequence must increase")]
    fn sequence_must_increase() {
        let hub = Hub::new(1);
        hub.publish(version(2, "a"));
        hub.publish(version(2, "b"));
    }

    #[test]
    fn shutdown_keeps_the_first_code_and_signals_cores() {
        let hub = Hub::new(1);
        hub.request_shutdown(0);
        hub.request_shutdown(1);
        assert!(hub.is_shutdown());
        assert_eq!(hub.exit_code(), 0);
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        assert!(hub.feed(0).poll_signal(&mut Context::from_waker(&waker)).is_ready());
    }

    #[test]
    fn notify_from_another_thread_wakes_the_waiter() {
        let hub = Hub::new(1);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        assert!(hub.feed(0).poll_signal(&mut Context::from_waker(&waker)).is_pending());
        let h = hub.clone();
        std::thread::spawn(move || h.publish(version(1, "x"))).join().unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }
}
