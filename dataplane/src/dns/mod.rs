//! The DNS interface (Consul-compatible, DNS.md).
//!
//! Pure core: [`wire`] (parse queries, write responses), [`name`] (question
//! name → query form), [`zone`] (what the agent serves), [`answer`]
//! (response from a state). IO: [`udp`] and [`tcp`] servers, one set per
//! core on `SO_REUSEPORT` sockets. [`Responder`] glues a core's current
//! view to the answer builder with buffers reused across queries.

pub mod answer;
pub mod name;
pub mod ptr;
pub mod recursor;
pub mod rng;
pub mod service_cache;
pub mod tcp;
#[cfg(test)]
pub(crate) mod test_support;
pub mod udp;
pub mod udp_batch;
pub mod wire;
pub mod zone;

use std::sync::Arc;

use proconsul_shared::agent_info::AgentInfo;

use crate::core::View;
pub use answer::{Outcome, Transport};
use zone::Zone;

/// Per-core answering state: the zone derived from the current agent
/// description (rebuilt only when it changes) and scratch buffers.
pub struct Responder {
    zone: Option<(Arc<AgentInfo>, Zone)>,
    scratch: answer::Scratch,
}

impl Default for Responder {
    /// A responder whose shuffles are seeded from the clock and its address
    /// (distinct per core and per server loop).
    fn default() -> Self {
        let mut responder = Responder {
            zone: None,
            scratch: answer::Scratch::default(),
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let place = &responder as *const Responder as u64;
        responder.scratch = answer::Scratch::with_seed(nanos ^ place.rotate_left(32));
        responder
    }
}

impl Responder {
    /// The zone of the agent description in use (after a first query).
    pub fn zone(&self) -> Option<&Zone> {
        self.zone.as_ref().map(|(_, z)| z)
    }

    /// Writes the response to `packet` into `out` using `view`, or says to
    /// drop or forward it.
    pub fn respond(
        &mut self,
        packet: &[u8],
        transport: Transport,
        view: &View,
        now_unix_s: u32,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let fresh = match &self.zone {
            Some((agent, _)) => Arc::ptr_eq(agent, &view.agent),
            None => false,
        };
        if !fresh {
            self.zone = Some((view.agent.clone(), Zone::from_agent(&view.agent)));
        }
        let zone = &self.zone.as_ref().expect("zone set above").1;
        answer::respond(packet, transport, &view.state, zone, now_unix_s, &mut self.scratch, out)
    }
}

/// Seconds since the epoch for SOA serials (wraps like Consul's uint32).
pub fn unix_now_s() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::fixtures::{register_node, test_agent};
    use proconsul_shared::ipc::messages::ClusterStatus;
    use proconsul_shared::State;

    fn view(domain: &str) -> View {
        let mut state = State::default();
        register_node(&mut state, 1, "node1", "10.0.0.1", &[]);
        let mut agent = test_agent();
        agent.domain = domain.into();
        View {
            state: Arc::new(state),
            agent: Arc::new(agent),
            cluster: Arc::new(ClusterStatus::default()),
        }
    }

    fn query(name: &[u8]) -> Vec<u8> {
        let mut p = vec![0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        p.extend_from_slice(name);
        p.extend_from_slice(&[0, 1, 0, 1]);
        p
    }

    #[test]
    fn responder_follows_the_agent_description_of_each_view() {
        let mut responder = Responder::default();
        let mut out = Vec::new();
        let consul = view("consul.");
        assert_eq!(
            responder.respond(
                &query(b"\x05node1\x04node\x06consul\x00"),
                Transport::Udp,
                &consul,
                1,
                &mut out
            ),
            Outcome::Send
        );
        assert_eq!(out[3] & 0x0f, wire::rcode::NOERROR);
        let example = view("example.");
        assert_eq!(
            responder.respond(
                &query(b"\x05node1\x04node\x06consul\x00"),
                Transport::Udp,
                &example,
                1,
                &mut out
            ),
            Outcome::Send
        );
        assert_eq!(out[3] & 0x0f, wire::rcode::REFUSED, "the new domain applies at once");
        assert_eq!(
            responder.respond(
                &query(b"\x05node1\x04node\x07example\x00"),
                Transport::Udp,
                &example,
                1,
                &mut out
            ),
            Outcome::Send
        );
        assert_eq!(out[3] & 0x0f, wire::rcode::NOERROR);
    }
}
