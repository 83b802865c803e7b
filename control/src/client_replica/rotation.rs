//! Asking the servers in turn: a client agent's forwarded writes and its
//! read-index calls go to one server after another, from a start chosen
//! per call (so load spreads), until one answers or a bounded number have
//! been tried. A server's own answer (including "no leader") is final;
//! only an unreachable server, a refusal or an unexpected reply moves on.

use std::time::Duration;

use proconsul_shared::ipc::messages::ControlError;

use crate::raft::transport::call::call;
use crate::raft::transport::wire::{PeerReply, PeerRequest};
use crate::raft::transport::PeerFaults;
use crate::rpc::dispatch::no_known_servers;

/// Positions in a list of `servers_len` servers in the order they are
/// tried: from `start` (modulo the length, any `usize` is fine), wrapping
/// around, at most `tried_max` and never one twice. Pure.
pub fn turn_order(servers_len: usize, start: usize, tried_max: usize) -> impl Iterator<Item = usize> {
    let first = start.checked_rem(servers_len).unwrap_or(0);
    (0..servers_len.min(tried_max)).map(move |k| (first + k) % servers_len)
}

/// Sends `request` to the servers of `list` in [`turn_order`] and returns
/// the first answer `expected` accepts (it hands any other reply back,
/// boxed).
/// No server: `500 No known Consul servers`; none answered: a 500 naming
/// the last failure.
pub async fn call_in_turn<A>(
    list: &[String],
    start: usize,
    tried_max: usize,
    request: &PeerRequest,
    wait: Duration,
    faults: &PeerFaults,
    expected: impl Fn(PeerReply) -> Result<A, Box<PeerReply>>,
) -> Result<A, ControlError> {
    if list.is_empty() {
        return Err(no_known_servers());
    }
    let mut last_error = String::new();
    for position in turn_order(list.len(), start, tried_max) {
        let addr = &list[position];
        match call(addr, request, wait, faults).await.map(&expected) {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(other)) => match *other {
                PeerReply::Refused(why) => last_error = format!("{addr} refused: {why}"),
                other => last_error = format!("{addr}: unexpected reply {other:?}"),
            },
            Err(e) => last_error = e,
        }
    }
    Err(ControlError {
        status: 500,
        message: format!("rpc error making call: no server answered: {last_error}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_starts_anywhere_wraps_and_stops_at_the_limit() {
        assert_eq!(turn_order(5, 1, 3).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(turn_order(5, 8, 3).collect::<Vec<_>>(), [3, 4, 0]);
        assert_eq!(turn_order(2, 1, 3).collect::<Vec<_>>(), [1, 0], "never one twice");
        assert_eq!(
            turn_order(3, usize::MAX, 3).collect::<Vec<_>>(),
            [0, 1, 2],
            "a random start near usize::MAX does not overflow"
        );
        assert_eq!(turn_order(0, 7, 3).count(), 0);
    }

    #[tokio::test]
    async fn an_empty_list_is_no_known_servers() {
        let request = PeerRequest::ReadIndex { forwarded: false };
        let err = call_in_turn(
            &[],
            0,
            3,
            &request,
            Duration::from_secs(1),
            &PeerFaults::default(),
            |r| Err::<(), _>(Box::new(r)),
        )
        .await
        .unwrap_err();
        assert_eq!(err, no_known_servers());
    }
}
