//! Deterministic simulations: several [`GossipCore`]s over an in-memory
//! network with a fake clock (no sockets, no real time).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

use super::config::GossipTimings;
use super::core::{CoreError, GossipCore};
use super::identity::NodeIdentity;
use super::member::{MemberEvent, MemberStatus};

/// Simulated time per step.
const STEP_MS: u64 = 10;

struct SimNode {
    core: GossipCore,
    addr: SocketAddr,
    crashed: bool,
    events: Vec<MemberEvent>,
}

struct Sim {
    nodes: Vec<SimNode>,
    now_ms: u64,
    in_flight: Vec<(SocketAddr, Vec<u8>)>,
    /// Addresses cut off from everyone (both directions).
    isolated: HashSet<SocketAddr>,
    timings: GossipTimings,
}

fn addr_of(index: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, u8::try_from(index + 1).unwrap()], 8301))
}

fn name_of(index: usize) -> String {
    format!("node-{index}")
}

impl Sim {
    fn new(count: usize, timings: GossipTimings) -> Sim {
        let mut sim = Sim {
            nodes: Vec::new(),
            now_ms: 0,
            in_flight: Vec::new(),
            isolated: HashSet::new(),
            timings,
        };
        for index in 0..count {
            sim.nodes.push(sim.make_node(index, 1_000));
        }
        sim
    }

    fn make_node(&self, index: usize, generation: u64) -> SimNode {
        self.make_node_with_tags(index, generation, BTreeMap::new())
    }

    fn make_node_with_tags(&self, index: usize, generation: u64, tags: BTreeMap<String, String>) -> SimNode {
        let identity = NodeIdentity::new(&name_of(index), addr_of(index), generation, tags).unwrap();
        let core = GossipCore::new(identity, self.timings.clone(), 0xF0CA + index as u64, self.now_ms);
        SimNode {
            core,
            addr: addr_of(index),
            crashed: false,
            events: Vec::new(),
        }
    }

    /// Push-pull between `a` and `b`, as a TCP join would do.
    fn push_pull(&mut self, a: usize, b: usize) {
        let state_a = self.nodes[a].core.export_state();
        let state_b = self.nodes[b].core.export_state();
        let now = self.now_ms;
        self.nodes[a].core.apply_remote_state(now, state_b).unwrap();
        self.nodes[b].core.apply_remote_state(now, state_a).unwrap();
        self.collect();
    }

    fn join_all_to_first(&mut self) {
        for index in 1..self.nodes.len() {
            self.push_pull(index, 0);
        }
    }

    fn collect(&mut self) {
        for node in &mut self.nodes {
            let outbound: Vec<_> = node.core.drain_outbound().collect();
            if !node.crashed && !self.isolated.contains(&node.addr) {
                self.in_flight
                    .extend(outbound.into_iter().filter(|(to, _)| !self.isolated.contains(to)));
            }
            node.events.extend(node.core.drain_events());
        }
    }

    fn step(&mut self) {
        self.now_ms += STEP_MS;
        let packets = std::mem::take(&mut self.in_flight);
        for (to, packet) in packets {
            if let Some(node) = self.nodes.iter_mut().find(|n| n.addr == to && !n.crashed) {
                let _ = node.core.handle_packet(self.now_ms, &packet);
            }
        }
        for node in self.nodes.iter_mut().filter(|n| !n.crashed) {
            node.core.advance(self.now_ms);
        }
        self.collect();
    }

    /// Steps until `done` holds or `max_ms` of simulated time pass.
    fn run_until(&mut self, max_ms: u64, done: impl Fn(&Sim) -> bool) -> bool {
        let deadline = self.now_ms + max_ms;
        while self.now_ms < deadline {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    fn status(&self, observer: usize, target: usize) -> Option<MemberStatus> {
        self.nodes[observer]
            .core
            .members()
            .into_iter()
            .find(|m| m.name == name_of(target))
            .map(|m| m.status)
    }

    fn all_live_see(&self, target: usize, status: MemberStatus) -> bool {
        (0..self.nodes.len())
            .filter(|&i| i != target && !self.nodes[i].crashed)
            .all(|i| self.status(i, target) == Some(status))
    }

    fn converged(&self) -> bool {
        let count = self.nodes.len();
        self.nodes.iter().all(|n| {
            let members = n.core.members();
            members.len() == count && members.iter().all(|m| m.status == MemberStatus::Alive)
        })
    }
}

#[test]
fn five_members_converge() {
    let mut sim = Sim::new(5, GossipTimings::fast());
    sim.join_all_to_first();
    assert!(
        sim.run_until(5_000, Sim::converged),
        "did not converge in 5 s of simulated time"
    );
    let names: Vec<String> = sim.nodes[3].core.members().into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["node-0", "node-1", "node-2", "node-3", "node-4"]);
    let joined = sim.nodes[4]
        .events
        .iter()
        .filter(|e| matches!(e, MemberEvent::Joined(_)))
        .count();
    assert_eq!(
        joined, 5,
        "one Joined per member, self included: {:?}",
        sim.nodes[4].events
    );
}

#[test]
fn crashed_member_is_suspected_then_failed() {
    let timings = GossipTimings::fast();
    let mut sim = Sim::new(4, timings.clone());
    sim.join_all_to_first();
    assert!(sim.run_until(5_000, Sim::converged));
    sim.nodes[3].crashed = true;
    let crashed_at = sim.now_ms;
    assert!(
        sim.run_until(10_000, |s| s.all_live_see(3, MemberStatus::Failed)),
        "crash not detected"
    );
    let detected_after = sim.now_ms - crashed_at;
    assert!(
        detected_after >= timings.suspect_to_failed_ms,
        "failed after {detected_after} ms, before the suspicion timeout: suspicion was skipped"
    );
    assert_eq!(sim.status(0, 3).map(|s| s.code()), Some(4));
    assert!(sim.nodes[1]
        .events
        .iter()
        .any(|e| matches!(e, MemberEvent::Failed(m) if m.name == "node-3")));
    assert!(sim.all_live_see(1, MemberStatus::Alive), "healthy members stay alive");
}

#[test]
fn graceful_leave_is_seen_as_left_not_failed() {
    let mut sim = Sim::new(4, GossipTimings::fast());
    sim.join_all_to_first();
    assert!(sim.run_until(5_000, Sim::converged));
    let now = sim.now_ms;
    sim.nodes[2].core.leave(now).unwrap();
    assert!(sim.nodes[2].core.has_left());
    sim.collect();
    assert!(
        sim.run_until(3_000, |s| s.all_live_see(2, MemberStatus::Left)),
        "leave did not spread"
    );
    // Stays left (not failed) while the leaver is silent.
    sim.nodes[2].crashed = true;
    sim.run_until(3_000, |_| false);
    assert!(sim.all_live_see(2, MemberStatus::Left));
    assert!(sim.nodes[0]
        .events
        .iter()
        .any(|e| matches!(e, MemberEvent::Left(m) if m.status.code() == 3)));
    assert!(!sim.nodes[0].events.iter().any(|e| matches!(e, MemberEvent::Failed(_))));
}

#[test]
fn restarted_member_rejoins_with_a_higher_generation() {
    let mut sim = Sim::new(4, GossipTimings::fast());
    sim.join_all_to_first();
    assert!(sim.run_until(5_000, Sim::converged));
    sim.nodes[1].crashed = true;
    assert!(sim.run_until(10_000, |s| s.all_live_see(1, MemberStatus::Failed)));
    // Restart: same name and address, a later start time.
    let restarted = sim.make_node(1, 2_000);
    sim.nodes[1] = restarted;
    sim.push_pull(1, 0);
    assert!(
        sim.run_until(5_000, Sim::converged),
        "restarted member did not come back"
    );
    assert!(sim.nodes[3]
        .events
        .iter()
        .any(|e| matches!(e, MemberEvent::Joined(m) if m.name == "node-1")));
}

#[test]
fn partitioned_member_renews_its_identity_and_returns() {
    let mut sim = Sim::new(3, GossipTimings::fast());
    sim.join_all_to_first();
    assert!(sim.run_until(5_000, Sim::converged));
    let generation_before = sim.nodes[2].core.identity().generation;
    sim.isolated.insert(addr_of(2));
    assert!(sim.run_until(10_000, |s| s.status(0, 2) == Some(MemberStatus::Failed)));
    sim.isolated.clear();
    assert!(sim.run_until(15_000, Sim::converged), "partition did not heal");
    assert!(
        sim.nodes[2].core.identity().generation > generation_before,
        "identity was not renewed"
    );
}

#[test]
fn tags_change_propagates() {
    let mut sim = Sim::new(3, GossipTimings::fast());
    sim.join_all_to_first();
    assert!(sim.run_until(5_000, Sim::converged));
    let now = sim.now_ms;
    let tags = BTreeMap::from([("role".to_string(), "consul".to_string())]);
    sim.nodes[1].core.set_tags(now, tags).unwrap();
    sim.collect();
    let role_seen = |s: &Sim| {
        (0..3).all(|i| {
            s.nodes[i]
                .core
                .members()
                .iter()
                .any(|m| m.name == "node-1" && m.tags.get("role").map(String::as_str) == Some("consul"))
        })
    };
    assert!(sim.run_until(3_000, role_seen), "tags did not spread");
    assert!(sim.converged(), "a tags change must not look like a failure");
}

#[test]
fn force_leave_turns_failed_into_left_and_prune_forgets() {
    let mut sim = Sim::new(4, GossipTimings::fast());
    sim.join_all_to_first();
    assert!(sim.run_until(5_000, Sim::converged));
    let now = sim.now_ms;
    assert!(matches!(
        sim.nodes[0].core.force_leave(now, "nope", false),
        Err(CoreError::UnknownNode(_))
    ));
    assert!(matches!(
        sim.nodes[0].core.force_leave(now, "node-0", false),
        Err(CoreError::LocalNode(_))
    ));
    // An alive member is left alone.
    sim.nodes[0].core.force_leave(now, "node-1", false).unwrap();
    assert_eq!(sim.status(0, 1), Some(MemberStatus::Alive));

    sim.nodes[3].crashed = true;
    assert!(sim.run_until(10_000, |s| s.all_live_see(3, MemberStatus::Failed)));
    let now = sim.now_ms;
    sim.nodes[0].core.force_leave(now, "node-3", false).unwrap();
    assert_eq!(sim.status(0, 3), Some(MemberStatus::Left));
    sim.collect();
    assert!(
        sim.run_until(3_000, |s| s.all_live_see(3, MemberStatus::Left)),
        "force-leave did not spread"
    );

    let now = sim.now_ms;
    sim.nodes[1].core.force_leave(now, "node-3", true).unwrap();
    assert_eq!(sim.status(1, 3), None, "pruned member still listed");
    sim.run_until(1_000, |_| false);
    assert_eq!(sim.status(1, 3), None, "pruned member came back");
}

#[test]
fn failed_members_are_reaped_after_the_reap_time() {
    let timings = GossipTimings {
        reap_after_ms: 2_000,
        ..GossipTimings::fast()
    };
    let mut sim = Sim::new(3, timings);
    sim.join_all_to_first();
    assert!(sim.run_until(5_000, Sim::converged));
    sim.nodes[2].crashed = true;
    assert!(sim.run_until(10_000, |s| s.all_live_see(2, MemberStatus::Failed)));
    assert!(
        sim.run_until(5_000, |s| s.status(0, 2).is_none() && s.status(1, 2).is_none()),
        "not reaped"
    );
    assert!(sim.nodes[0].events.contains(&MemberEvent::Reaped("node-2".to_string())));
}

#[test]
fn member_cap_refuses_newcomers() {
    let timings = GossipTimings {
        members_max: 3,
        ..GossipTimings::fast()
    };
    let mut sim = Sim::new(5, timings);
    sim.join_all_to_first();
    sim.run_until(3_000, |_| false);
    for node in &sim.nodes {
        assert!(node.core.members().len() <= 3, "{} lists more than the cap", node.addr);
    }
    assert_eq!(sim.nodes[0].core.members().len(), 3);
    // A full node ignores packets from senders it does not list.
    let listed: Vec<String> = sim.nodes[0].core.members().into_iter().map(|m| m.name).collect();
    let outsider = (0..5)
        .find(|i| !listed.contains(&name_of(*i)))
        .expect("two nodes were refused");
    let now = sim.now_ms + 1_000;
    sim.nodes[outsider].core.advance(now);
    let first = sim.nodes[0].core.identity().clone();
    sim.nodes[outsider].core.announce(now, first).unwrap();
    let packets: Vec<_> = sim.nodes[outsider]
        .core
        .drain_outbound()
        .filter(|(to, _)| *to == addr_of(0))
        .collect();
    assert!(!packets.is_empty());
    for (_, packet) in packets {
        let refused = sim.nodes[0].core.handle_packet(now, &packet);
        assert_eq!(refused, Err(CoreError::MembersFull(name_of(outsider))));
    }
}

#[test]
fn oversized_and_garbage_packets_are_refused_without_panicking() {
    let mut sim = Sim::new(1, GossipTimings::fast());
    let core = &mut sim.nodes[0].core;
    assert_eq!(
        core.handle_packet(1, &[0u8; 1401]),
        Err(CoreError::PacketTooLarge { bytes: 1401, max: 1400 })
    );
    assert!(matches!(core.handle_packet(2, &[0xff; 64]), Err(CoreError::Foca(_))));
    assert!(matches!(core.handle_packet(3, &[]), Err(CoreError::Foca(_))));
    assert_eq!(core.members().len(), 1);
}

#[test]
fn send_queue_is_bounded() {
    let timings = GossipTimings {
        outbound_packets_max: 1,
        ..GossipTimings::fast()
    };
    let mut sim = Sim::new(5, timings);
    let remote: Vec<_> = (1..5).flat_map(|i| sim.nodes[i].core.export_state()).collect();
    let core = &mut sim.nodes[0].core;
    core.apply_remote_state(0, remote).unwrap();
    // Several gossip rounds without draining: only the newest packet stays.
    core.advance(1_000);
    assert!(core.outbound_dropped_total() > 0);
    assert_eq!(core.drain_outbound().count(), 1);
}

#[test]
fn packets_from_ourselves_are_ignored() {
    let mut sim = Sim::new(2, GossipTimings::fast());
    sim.join_all_to_first();
    assert!(sim.run_until(5_000, Sim::converged));
    let later = sim.now_ms + 1_000;
    sim.nodes[0].core.advance(later);
    let own: Vec<_> = sim.nodes[0].core.drain_outbound().collect();
    assert!(!own.is_empty(), "a second of timers produces probes or gossip");
    for (_, packet) in own {
        assert!(matches!(
            sim.nodes[0].core.handle_packet(later, &packet),
            Err(CoreError::Foca(_))
        ));
    }
    assert_eq!(sim.status(0, 1), Some(MemberStatus::Alive));
}

/// The tags a Consul server gossips (about 300 bytes).
fn server_tags(index: usize) -> BTreeMap<String, String> {
    [
        ("role", "consul".to_string()),
        ("dc", "dc1".to_string()),
        ("segment", String::new()),
        ("port", "8300".to_string()),
        ("build", "1.17.0:abcd1234".to_string()),
        ("vsn", "2".to_string()),
        ("vsn_min", "2".to_string()),
        ("vsn_max", "3".to_string()),
        ("raft_vsn", "3".to_string()),
        ("expect", "3".to_string()),
        ("id", format!("6a1b2c3d-0000-4000-8000-00000000000{}", index % 10)),
        ("wan_join_port", "8302".to_string()),
        ("grpc_port", "8502".to_string()),
        ("ft_fs", "1".to_string()),
        ("ft_si", "1".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[test]
fn seven_members_with_full_server_tags_converge() {
    let mut sim = Sim::new(0, GossipTimings::fast());
    for index in 0..7 {
        let node = sim.make_node_with_tags(index, 1_000, server_tags(index));
        sim.nodes.push(node);
    }
    // Each joins a different, already joined member: knowledge must spread by gossip.
    for index in 1..7 {
        sim.push_pull(index, index - 1);
    }
    assert!(
        sim.run_until(5_000, Sim::converged),
        "did not converge: {:?}",
        sim.nodes[0].core.members().len()
    );
    let started = sim.now_ms;
    sim.nodes[6].crashed = true;
    assert!(
        sim.run_until(10_000, |s| s.all_live_see(6, MemberStatus::Failed)),
        "crash not detected"
    );
    assert!(
        sim.now_ms - started < 5_000,
        "failure took {} ms to spread",
        sim.now_ms - started
    );
    let seen = sim.nodes[0]
        .core
        .members()
        .into_iter()
        .find(|m| m.name == "node-3")
        .unwrap();
    assert_eq!(seen.tags, server_tags(3));
}
