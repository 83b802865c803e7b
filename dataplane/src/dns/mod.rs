//! The DNS interface (Consul-compatible, DNS.md).
//!
//! Pure core: [`wire`] (parse queries, write responses), [`name`] (question
//! name → query form), [`zone`] (what the agent serves), [`answer`]
//! (response from a state). IO: [`udp`] and [`tcp`] servers, one set per
//! core on `SO_REUSEPORT` sockets. [`Responder`] glues a core's current
//! view to the answer builder with buffers reused across queries.

pub mod answer;
pub mod answer_cache;
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
use answer_cache::{AnswerCache, AnswerCacheStats};
use zone::Zone;

/// Per-core answering state: the zone derived from the current agent
/// description (rebuilt only when it changes) and scratch buffers.
pub struct Responder {
    zone: Option<(Arc<AgentInfo>, Zone)>,
    scratch: answer::Scratch,
    /// Repeated UDP questions answered without the full path.
    answers: AnswerCache,
}

impl Default for Responder {
    /// A responder whose shuffles are seeded from the clock and its address
    /// (distinct per core and per server loop).
    fn default() -> Self {
        let mut responder = Responder {
            zone: None,
            scratch: answer::Scratch::default(),
            answers: AnswerCache::default(),
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
            self.answers.clear();
        }
        let zone = &self.zone.as_ref().expect("zone set above").1;
        let state_index = view.state.index();
        if transport == Transport::Udp && self.answers.answer(packet, state_index, self.scratch.rng_mut(), out) {
            return Outcome::Send;
        }
        let outcome = answer::respond(packet, transport, &view.state, zone, now_unix_s, &mut self.scratch, out);
        if let (Transport::Udp, Outcome::Send, Some(cacheable)) =
            (transport, outcome, self.scratch.take_cacheable_answer())
        {
            self.answers.insert(packet, out, state_index, &cacheable);
        }
        outcome
    }

    /// Brings the answer cache's slots for `packet` toward the CPU (call
    /// for every query of a batch before answering the first).
    pub fn prefetch(&self, packet: &[u8]) {
        self.answers.prefetch(packet);
    }

    /// The answer cache's counters.
    pub fn answer_cache_stats(&self) -> AnswerCacheStats {
        self.answers.stats()
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

    /// `web` on node1 in a view of `domain` (a `PlainV4` service).
    fn web_view(domain: &str, web_address: &str) -> View {
        let mut state = State::default();
        register_node(&mut state, 1, "node1", "10.0.0.1", &[]);
        test_support::register_service(&mut state, 2, "node1", "web-1", "web", &[], web_address, 80);
        let mut agent = test_agent();
        agent.domain = domain.into();
        View {
            state: Arc::new(state),
            agent: Arc::new(agent),
            cluster: Arc::new(ClusterStatus::default()),
        }
    }

    #[test]
    fn repeated_udp_questions_come_from_the_answer_cache_until_the_view_moves() {
        let mut responder = Responder::default();
        let mut out = Vec::new();
        let web = query(b"\x03web\x07service\x06consul\x00");
        let mut ask = |responder: &mut Responder, view: &View, transport: Transport| {
            assert_eq!(responder.respond(&web, transport, view, 1, &mut out), Outcome::Send);
            let answer = out[out.len() - 4..].to_vec();
            (out[3] & 0x0f, answer)
        };
        let first = web_view("consul.", "");
        assert_eq!(ask(&mut responder, &first, Transport::Udp), (0, vec![10, 0, 0, 1]));
        assert_eq!(responder.answer_cache_stats().inserts, 1);
        for _ in 0..3 {
            assert_eq!(ask(&mut responder, &first, Transport::Udp), (0, vec![10, 0, 0, 1]));
        }
        assert_eq!(responder.answer_cache_stats().hits, 3);
        // TCP never reads the cache.
        assert_eq!(ask(&mut responder, &first, Transport::Tcp), (0, vec![10, 0, 0, 1]));
        assert_eq!(responder.answer_cache_stats().hits, 3);
        // A state at another index: the full path answers from it.
        // The replica moves on: web gets its own address at index 3.
        let mut state = (*first.state).clone();
        test_support::register_service(&mut state, 3, "node1", "web-1", "web", &[], "192.0.2.7", 80);
        let moved = View {
            state: Arc::new(state),
            agent: first.agent.clone(),
            cluster: first.cluster.clone(),
        };
        assert_eq!(ask(&mut responder, &moved, Transport::Udp), (0, vec![192, 0, 2, 7]));
        assert_eq!(responder.answer_cache_stats().hits, 3);
        // Another agent description (here another domain): nothing cached
        // for the old one answers.
        let other_domain = web_view("example.", "192.0.2.7");
        let hits = responder.answer_cache_stats().hits;
        let refused = View {
            state: moved.state.clone(),
            ..other_domain
        };
        assert_eq!(ask(&mut responder, &refused, Transport::Udp).0, wire::rcode::REFUSED);
        assert_eq!(responder.answer_cache_stats().hits, hits);
    }

    #[test]
    fn repeated_udp_srv_questions_come_from_the_answer_cache() {
        let mut responder = Responder::default();
        let mut out = Vec::new();
        let mut srv = query(b"\x04_web\x04_tcp\x07service\x06consul\x00");
        let at = srv.len() - 4;
        srv[at..at + 2].copy_from_slice(&wire::rtype::SRV.to_be_bytes());
        let view = web_view("consul.", "");
        let mut answers = Vec::new();
        for _ in 0..4 {
            assert_eq!(
                responder.respond(&srv, Transport::Udp, &view, 1, &mut out),
                Outcome::Send
            );
            answers.push(out.clone());
        }
        assert_eq!(responder.answer_cache_stats().inserts, 1);
        assert_eq!(responder.answer_cache_stats().hits, 3);
        assert!(
            answers.iter().all(|a| a == &answers[0]),
            "one instance: the same bytes each time"
        );
        // ANSWER 1 (SRV to node1.node.dc1.consul.), ADDITIONAL 1 (its A).
        assert_eq!(&answers[0][6..12], &[0, 1, 0, 0, 0, 1]);
        assert!(answers[0].windows(6).any(|w| w == b"\x05node1"));
        assert_eq!(&answers[0][answers[0].len() - 4..], &[10, 0, 0, 1]);
    }
}
