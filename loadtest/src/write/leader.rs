//! Which server leads: Consul's `GET /v1/status/leader` (`"ip:port"` of the
//! leader's raft address) or etcd's `POST /v3/maintenance/status` (the
//! member answering is the leader when its `member_id` is the `leader`).
//! Parsing is pure; [`find_leader`] asks the servers, bounded in time.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::write::client::Connection;
use crate::write::protocol::WriteProtocol;

/// Timeout of one leader question.
const ASK_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between rounds of questions.
const ROUND_PAUSE: Duration = Duration::from_millis(10);

/// The IP of the leader named by a `/v1/status/leader` body (`""` when
/// there is none).
pub fn consul_leader_ip(body: &[u8]) -> Option<IpAddr> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let addr = value.as_str()?;
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    addr.parse().ok()
}

/// A gateway uint64: a JSON string of digits or a number.
fn json_u64(v: &serde_json::Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

/// Whether the etcd member that answered this status body is the leader.
pub fn etcd_answerer_is_leader(body: &[u8]) -> Option<bool> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let me = json_u64(&value["header"]["member_id"])?;
    let leader = json_u64(&value["leader"])?;
    Some(leader != 0 && me == leader)
}

/// The leader and when it was learnt.
#[derive(Debug, Clone, Copy)]
pub struct LeaderView {
    pub leader: SocketAddr,
    pub seen_at: Instant,
}

/// Asks `target` which of `targets` leads.
fn ask(protocol: WriteProtocol, target: SocketAddr, targets: &[SocketAddr]) -> Option<SocketAddr> {
    let mut conn = Connection::new(target, ASK_TIMEOUT);
    let host = target.to_string();
    match protocol {
        WriteProtocol::Consul => {
            let req = format!("GET /v1/status/leader HTTP/1.1\r\nHost: {host}\r\n\r\n");
            let a = conn.exchange(req.as_bytes()).ok()?;
            let ip = consul_leader_ip(&a.body).filter(|_| a.status == 200)?;
            targets.iter().copied().find(|t| t.ip() == ip)
        }
        WriteProtocol::Etcd => {
            let req = format!(
                "POST /v3/maintenance/status HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
            );
            let a = conn.exchange(req.as_bytes()).ok()?;
            (a.status == 200 && etcd_answerer_is_leader(&a.body)?).then_some(target)
        }
    }
}

/// Asks the `targets` in rounds until one of them is named leader (and is
/// not `other_than`), or `deadline` passes.
pub fn find_leader(
    protocol: WriteProtocol,
    targets: &[SocketAddr],
    other_than: Option<SocketAddr>,
    deadline: Instant,
) -> anyhow::Result<LeaderView> {
    loop {
        for &t in targets {
            if let Some(leader) = ask(protocol, t, targets) {
                if Some(leader) != other_than {
                    return Ok(LeaderView {
                        leader,
                        seen_at: Instant::now(),
                    });
                }
            }
        }
        if Instant::now() >= deadline {
            bail!("no leader among {targets:?} by the deadline");
        }
        std::thread::sleep(ROUND_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consul_leader_bodies() {
        assert_eq!(
            consul_leader_ip(br#""127.0.0.11:8300""#),
            Some("127.0.0.11".parse().unwrap())
        );
        assert_eq!(consul_leader_ip(br#""""#), None, "no leader");
        assert_eq!(consul_leader_ip(b"not json"), None);
        assert_eq!(consul_leader_ip(b"[]"), None);
    }

    #[test]
    fn etcd_status_bodies() {
        let leader = br#"{"header":{"cluster_id":"1","member_id":"42","revision":"3","raft_term":"2"},"version":"3.4.23","leader":"42"}"#;
        let follower = br#"{"header":{"member_id":"41"},"leader":"42"}"#;
        let numbers = br#"{"header":{"member_id":7},"leader":7}"#;
        let none = br#"{"header":{"member_id":"0"},"leader":"0"}"#;
        assert_eq!(etcd_answerer_is_leader(leader), Some(true));
        assert_eq!(etcd_answerer_is_leader(follower), Some(false));
        assert_eq!(etcd_answerer_is_leader(numbers), Some(true));
        assert_eq!(etcd_answerer_is_leader(none), Some(false));
        assert_eq!(etcd_answerer_is_leader(b"{}"), None);
    }

    #[test]
    fn finding_a_leader_among_dead_servers_ends_at_the_deadline() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let started = Instant::now();
        let err = find_leader(
            WriteProtocol::Consul,
            &[dead],
            None,
            started + Duration::from_millis(100),
        );
        assert!(err.unwrap_err().to_string().contains("no leader"));
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
