//! Fairness under a wake storm (issue #4 item 4): one core, 10,000 parked
//! queries of one key, and a datagram already waiting on a UDP socket of
//! the same core when the key changes. The datagram must be read before
//! the storm has woken every query: counted in woken queries, not time.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::test_core::{core_without_control_plane, poll_until, spawn_follower, HandPublishedReplica};
use crate::api::test_support::{set, state_with};
use crate::blocking::parking::WAKE_BATCH_MAX;
use crate::blocking::{WatchItem, WatchSet};
use crate::core::{Core, WaitOutcome};

const WATCHERS: usize = 10_000;
/// Bound on every wait in the test (polled in 1 ms steps).
const STEPS_MAX: usize = 10_000;

/// Polls until `done`, at most [`STEPS_MAX`] ms.
async fn until(done: impl Fn() -> bool) -> bool {
    poll_until(STEPS_MAX, done).await
}

#[test]
fn a_datagram_waiting_when_a_wake_storm_starts_is_read_before_it_ends() {
    let mut replica = HandPublishedReplica::new(state_with(&[set("hot", b"0"), set("cold", b"0")]));
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    let seen_at = rt.block_on(async move {
        let hub = replica.hub().clone();
        let core = Core::new(core_without_control_plane(&hub, "fairness-tests", WATCHERS));
        spawn_follower(&core, &hub);

        let index = core.view().state.index();
        let deadline = Instant::now() + Duration::from_secs(30);
        let answered = Rc::new(Cell::new(0usize));
        for _ in 0..WATCHERS {
            let (core, answered) = (core.clone(), answered.clone());
            monoio::spawn(async move {
                let watch = WatchSet::one(WatchItem::KvKey("hot".into()));
                if core.wait_change(&watch, index, deadline).await == WaitOutcome::Changed {
                    answered.set(answered.get() + 1);
                }
            });
        }
        let dns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        dns.set_nonblocking(true).unwrap();
        let dns_addr = dns.local_addr().unwrap();
        let dns = monoio::net::udp::UdpSocket::from_std(dns).unwrap();
        let seen_at: Rc<Cell<Option<usize>>> = Rc::new(Cell::new(None));
        {
            let (seen_at, answered) = (seen_at.clone(), answered.clone());
            monoio::spawn(async move {
                let (read, _) = dns.recv_from(vec![0u8; 64]).await;
                read.expect("the datagram");
                seen_at.set(Some(answered.get()));
            });
        }
        assert!(
            until(|| core.inner().parked_queries() == WATCHERS).await,
            "parked {} of {WATCHERS}",
            core.inner().parked_queries()
        );

        // The datagram is in the socket's queue before the storm starts.
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"query", dns_addr).unwrap();
        assert_eq!(replica.apply(&set("hot", b"1")), index + 1);

        assert!(
            until(|| answered.get() == WATCHERS && seen_at.get().is_some()).await,
            "answered {} of {WATCHERS}, datagram read: {:?}",
            answered.get(),
            seen_at.get()
        );
        assert_eq!(core.inner().parked_queries(), 0);
        hub.request_shutdown(0);
        seen_at.get().unwrap()
    });
    assert!(
        seen_at <= 4 * WAKE_BATCH_MAX,
        "the datagram was read after {seen_at} of {WATCHERS} woken queries"
    );
}
