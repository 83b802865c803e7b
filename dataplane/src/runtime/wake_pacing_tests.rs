//! Wake pacing on a real core (issue #4): with DNS datagrams waiting on
//! the core's UDP socket, a parked query's wake-up is held (at least the
//! bound, counted from the first change) and then delivered, once, with
//! the newest state, although the DNS queue never empties; with the DNS
//! queue empty it is delivered without a hold.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::test_core::{core_without_control_plane, poll_until, spawn_follower, HandPublishedReplica};
use crate::api::test_support::{set, state_with};
use crate::blocking::{WatchItem, WatchSet};
use crate::core::{Core, WaitOutcome};

/// Bound on every wait in the test (polled in 1 ms steps).
const STEPS_MAX: usize = 20_000;
/// The hold bound under test: long enough that the writes between the
/// first change and the delivery land inside it.
const HOLD_MS: u64 = 1_000;
const WATCHERS: usize = 20;

/// Polls until `done`, at most [`STEPS_MAX`] ms.
async fn until(done: impl Fn() -> bool) -> bool {
    poll_until(STEPS_MAX, done).await
}

/// What the watchers saw.
struct Outcome {
    /// Answers (one per watcher expected).
    answered: usize,
    /// Index of the view each watcher answered from (all equal expected).
    indexes: Vec<u64>,
    /// Index after the last write.
    newest: u64,
    /// From the first write to the first answer.
    first_answer_after: Duration,
    /// The DNS datagram was still queued when the watchers answered.
    dns_still_pending: bool,
}

/// `WATCHERS` parked queries of `hot` on one core with pacing at
/// `HOLD_MS`; a DNS socket of the core holds a datagram nobody reads when
/// `dns_busy`; three writes to `hot`, 10 ms apart.
fn storm(dns_busy: bool) -> Outcome {
    let mut replica = HandPublishedReplica::new(state_with(&[set("hot", b"0")]));
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    rt.block_on(async move {
        let hub = replica.hub().clone();
        let core = Core::new(core_without_control_plane(&hub, "wake-pacing-tests", 100).with_wake_hold_ms_max(HOLD_MS));
        let dns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        core.inner().watch_dns_socket(&dns).unwrap();
        if dns_busy {
            let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            client.send_to(b"query", dns.local_addr().unwrap()).unwrap();
            assert!(until(|| core.inner().dns_datagrams_waiting()).await);
        }
        spawn_follower(&core, &hub);

        let index = core.view().state.index();
        let deadline = Instant::now() + Duration::from_secs(60);
        let indexes: Rc<std::cell::RefCell<Vec<u64>>> = Rc::default();
        let first_answer_at: Rc<Cell<Option<Instant>>> = Rc::default();
        for _ in 0..WATCHERS {
            let (core, indexes, first_answer_at) = (core.clone(), indexes.clone(), first_answer_at.clone());
            monoio::spawn(async move {
                let watch = WatchSet::one(WatchItem::KvKey("hot".into()));
                if core.wait_change(&watch, index, deadline).await == WaitOutcome::Changed {
                    if first_answer_at.get().is_none() {
                        first_answer_at.set(Some(Instant::now()));
                    }
                    indexes.borrow_mut().push(core.view().state.index());
                }
            });
        }
        assert!(until(|| core.inner().parked_queries() == WATCHERS).await);

        let mut newest = index;
        let mut first_write_at = None;
        for value in [b"1", b"2", b"3"] {
            newest = replica.apply(&set("hot", value));
            first_write_at.get_or_insert_with(Instant::now);
            monoio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            until(|| indexes.borrow().len() == WATCHERS).await,
            "answered {} of {WATCHERS}",
            indexes.borrow().len()
        );
        let dns_still_pending = core.inner().dns_datagrams_waiting();
        hub.request_shutdown(0);
        let indexes = indexes.borrow().clone();
        Outcome {
            answered: indexes.len(),
            indexes,
            newest,
            first_answer_after: first_answer_at.get().unwrap() - first_write_at.unwrap(),
            dns_still_pending,
        }
    })
}

#[test]
fn a_held_wake_is_delivered_by_the_bound_once_with_the_newest_index() {
    let seen = storm(true);
    assert_eq!(seen.answered, WATCHERS, "every watcher answered once");
    assert!(
        seen.indexes.iter().all(|i| *i == seen.newest),
        "writes made while held coalesce into the newest: {:?}, newest {}",
        seen.indexes,
        seen.newest
    );
    assert!(
        seen.first_answer_after >= Duration::from_millis(HOLD_MS),
        "held while dns waited: answered after {:?}",
        seen.first_answer_after
    );
    assert!(
        seen.dns_still_pending,
        "delivered by the bound, not because dns went quiet"
    );
}

#[test]
fn with_dns_idle_nothing_is_held() {
    let seen = storm(false);
    assert_eq!(seen.answered, WATCHERS);
    assert!(!seen.dns_still_pending);
    // Answered at the first write, before the later ones landed.
    assert!(
        seen.indexes.iter().all(|i| *i < seen.newest),
        "{:?}, newest {}",
        seen.indexes,
        seen.newest
    );
}
