//! The sans-IO gossip core: a foca instance fed packets and the time (ms on
//! the caller's monotonic clock), producing packets to send, timers and
//! member events. Sockets and clocks live in `runtime.rs`; tests drive
//! several cores over a simulated network.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use foca::{Foca, NoCustomBroadcast, Notification, PostcardCodec, State, Timer};
use foca_rand::rngs::SmallRng;
use foca_rand::SeedableRng;

use super::config::GossipTimings;
use super::identity::NodeIdentity;
use super::member::{Member, MemberEvent, MemberStatus, MemberTable};
use super::timer_queue::TimerQueue;

/// One member as exchanged by push-pull (identity, incarnation, foca state).
pub type WireMember = foca::Member<NodeIdentity>;

type FocaInstance = Foca<NodeIdentity, PostcardCodec, SmallRng, NoCustomBroadcast>;

/// Why the core refused an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// A packet larger than `packet_bytes_max`.
    #[error("gossip packet of {bytes} bytes exceeds the {max} byte limit")]
    PacketTooLarge {
        /// Size received.
        bytes: usize,
        /// Configured limit.
        max: usize,
    },
    /// foca rejected the input (malformed, from ourselves, ...).
    #[error("gossip: {0}")]
    Foca(String),
    /// No such member.
    #[error("agent: No node found with name '{0}'")]
    UnknownNode(String),
    /// The operation makes no sense on the local node.
    #[error("agent: cannot force-leave the local node '{0}'")]
    LocalNode(String),
    /// The member table is full and the sender is not in it.
    #[error("gossip: member table full, ignoring packet from new member '{0}'")]
    MembersFull(String),
    /// This node has left the cluster.
    #[error("gossip: this node has left the cluster")]
    AlreadyLeft,
}

fn foca_error(error: foca::Error) -> CoreError {
    CoreError::Foca(error.to_string())
}

/// The side effects foca asks for during one call, collected for the edge.
struct CoreIo {
    now_ms: u64,
    timers: TimerQueue,
    outbound: VecDeque<(SocketAddr, Vec<u8>)>,
    outbound_max: usize,
    outbound_dropped_total: u64,
    membership_changed: bool,
}

impl foca::Runtime<NodeIdentity> for CoreIo {
    fn notify(&mut self, notification: Notification<'_, NodeIdentity>) {
        if let Notification::Rejoin(identity) = &notification {
            tracing::info!(
                generation = identity.generation,
                "gossip: declared failed by peers, rejoining"
            );
        }
        self.membership_changed = true;
    }

    fn send_to(&mut self, to: NodeIdentity, data: &[u8]) {
        if self.outbound.len() >= self.outbound_max {
            self.outbound.pop_front();
            self.outbound_dropped_total += 1;
            if self.outbound_dropped_total == 1 || self.outbound_dropped_total.is_multiple_of(1_000) {
                tracing::warn!(
                    outbound_packets_max = self.outbound_max,
                    dropped_total = self.outbound_dropped_total,
                    "gossip: send queue full, dropping the oldest packet"
                );
            }
        }
        self.outbound.push_back((to.addr, data.to_vec()));
    }

    fn submit_after(&mut self, event: Timer<NodeIdentity>, after: Duration) {
        let after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        self.timers.push(self.now_ms.saturating_add(after_ms), event);
    }
}

/// The gossip state machine of one node.
pub struct GossipCore {
    foca: FocaInstance,
    io: CoreIo,
    table: MemberTable,
    events: Vec<MemberEvent>,
    timings: GossipTimings,
    membership_len: usize,
    left: bool,
    /// While set, the leave announcement is re-gossiped at this time (ms).
    leave_regossip_at_ms: Option<u64>,
    /// When the leave announcement stops being re-gossiped.
    leave_regossip_until_ms: u64,
    /// Next reconnect round: failed members get an announce (serf's
    /// reconnect), every `announce_to_failed_period_ms`.
    reconnect_at_ms: u64,
}

/// Failed members announced to per reconnect round.
pub const RECONNECT_FANOUT_MAX: usize = 2;

impl GossipCore {
    /// A core for `identity`; `seed` feeds foca's member selection.
    pub fn new(identity: NodeIdentity, timings: GossipTimings, seed: u64, now_ms: u64) -> GossipCore {
        let timings_reconnect_ms = timings.announce_to_failed_period_ms;
        let foca = Foca::new(
            identity,
            timings.foca_config(),
            SmallRng::seed_from_u64(seed),
            PostcardCodec,
        );
        let io = CoreIo {
            now_ms,
            timers: TimerQueue::new(timings.timers_max),
            outbound: VecDeque::new(),
            outbound_max: timings.outbound_packets_max,
            outbound_dropped_total: 0,
            membership_changed: true,
        };
        let mut core = GossipCore {
            foca,
            io,
            table: MemberTable::new(timings.members_max),
            events: Vec::new(),
            timings,
            membership_len: 0,
            left: false,
            leave_regossip_at_ms: None,
            leave_regossip_until_ms: 0,
            reconnect_at_ms: now_ms.saturating_add(timings_reconnect_ms),
        };
        core.sync_table();
        core
    }

    /// The identity this node currently gossips as.
    pub fn identity(&self) -> &NodeIdentity {
        self.foca.identity()
    }

    /// Feeds one received UDP datagram.
    pub fn handle_packet(&mut self, now_ms: u64, data: &[u8]) -> Result<(), CoreError> {
        self.set_now(now_ms);
        if data.len() > self.timings.packet_bytes_max {
            return Err(CoreError::PacketTooLarge {
                bytes: data.len(),
                max: self.timings.packet_bytes_max,
            });
        }
        if self.table.len() >= self.timings.members_max {
            self.admit_known_sender(data)?;
        }
        let result = self.foca.handle_data(data, &mut self.io).map_err(foca_error);
        self.sync_table();
        result
    }

    /// With a full table only members already listed may talk to us, so a
    /// flood of new senders cannot grow foca's member list.
    fn admit_known_sender(&self, data: &[u8]) -> Result<(), CoreError> {
        let mut buffer = data;
        let header: foca::Header<NodeIdentity> =
            foca::Codec::<NodeIdentity>::decode_header(&mut PostcardCodec, &mut buffer)
                .map_err(|e| CoreError::Foca(e.to_string()))?;
        if self.table.identity(&header.src.name).is_none() {
            return Err(CoreError::MembersFull(header.src.name.to_string()));
        }
        Ok(())
    }

    /// Fires every timer due at `now_ms`.
    pub fn advance(&mut self, now_ms: u64) {
        self.set_now(now_ms);
        let fired_max = self.io.timers.len();
        for _ in 0..fired_max {
            let Some(timer) = self.io.timers.pop_due(now_ms) else {
                break;
            };
            if let Err(error) = self.foca.handle_timer(timer, &mut self.io) {
                tracing::debug!(%error, "gossip: timer");
            }
        }
        self.regossip_leave(now_ms);
        self.reconnect_failed(now_ms);
        self.sync_table();
    }

    /// Foca announces to failed members only while it has live ones, so
    /// after a full partition (every peer failed, on both sides) nobody
    /// would call first: like serf's reconnect, a few failed members get
    /// an announce every `announce_to_failed_period_ms`. A peer that still
    /// holds us as failed answers that we are down, and foca rejoins with a
    /// renewed identity.
    fn reconnect_failed(&mut self, now_ms: u64) {
        if now_ms < self.reconnect_at_ms || self.left {
            return;
        }
        self.reconnect_at_ms = now_ms.saturating_add(self.timings.announce_to_failed_period_ms);
        let failed: Vec<NodeIdentity> = self
            .table
            .members()
            .iter()
            .filter(|m| m.status == MemberStatus::Failed)
            .filter_map(|m| self.table.identity(&m.name).cloned())
            .take(RECONNECT_FANOUT_MAX)
            .collect();
        for target in failed {
            if let Err(error) = self.foca.announce(target, &mut self.io) {
                tracing::debug!(%error, "gossip: reconnect announce");
            }
        }
    }

    /// When [`GossipCore::advance`] should next be called.
    pub fn next_timer_ms(&self) -> Option<u64> {
        let next = match (self.io.timers.next_due_ms(), self.leave_regossip_at_ms) {
            (Some(timer), Some(regossip)) => Some(timer.min(regossip)),
            (timer, regossip) => timer.or(regossip),
        };
        Some(next.map_or(self.reconnect_at_ms, |due| due.min(self.reconnect_at_ms)))
    }

    /// After a leave foca stops probing, so the leave is pushed again every
    /// gossip period for `leave_propagate_ms_max` to make sure it spreads.
    fn regossip_leave(&mut self, now_ms: u64) {
        let Some(at_ms) = self.leave_regossip_at_ms else { return };
        if now_ms < at_ms {
            return;
        }
        if now_ms >= self.leave_regossip_until_ms {
            self.leave_regossip_at_ms = None;
            return;
        }
        if let Err(error) = self.foca.gossip(&mut self.io) {
            tracing::debug!(%error, "gossip: leave re-gossip");
        }
        self.leave_regossip_at_ms = Some(now_ms.saturating_add(self.timings.gossip_period_ms));
    }

    /// Packets to send, oldest first.
    pub fn drain_outbound(&mut self) -> impl Iterator<Item = (SocketAddr, Vec<u8>)> + '_ {
        self.io.outbound.drain(..)
    }

    /// Member events since the last call.
    pub fn drain_events(&mut self) -> Vec<MemberEvent> {
        std::mem::take(&mut self.events)
    }

    /// The member table (self included), sorted by name.
    pub fn members(&self) -> Vec<Member> {
        self.table.members()
    }

    /// Packets dropped because the send queue was full.
    pub fn outbound_dropped_total(&self) -> u64 {
        self.io.outbound_dropped_total
    }

    /// Asks `target` (known by its identity) for its members over UDP.
    pub fn announce(&mut self, now_ms: u64, target: NodeIdentity) -> Result<(), CoreError> {
        self.set_now(now_ms);
        let result = self.foca.announce(target, &mut self.io).map_err(foca_error);
        self.sync_table();
        result
    }

    /// Our full state for a push-pull exchange (self first).
    pub fn export_state(&self) -> Vec<WireMember> {
        let own_state = if self.left { State::Down } else { State::Alive };
        let own = WireMember::new(self.foca.identity().clone(), 0, own_state);
        std::iter::once(own)
            .chain(self.foca.iter_membership_state().cloned())
            .take(self.timings.members_max)
            .collect()
    }

    /// Merges a peer's push-pull state; returns how many entries were taken.
    /// Newcomers beyond the member cap are refused.
    pub fn apply_remote_state(&mut self, now_ms: u64, remote: Vec<WireMember>) -> Result<usize, CoreError> {
        self.set_now(now_ms);
        let own_name = self.foca.identity().name.clone();
        let mut room = self.timings.members_max.saturating_sub(self.table.len());
        let mut accepted = Vec::with_capacity(remote.len().min(self.timings.members_max));
        for member in remote {
            if member.id().name == own_name {
                continue;
            }
            if self.table.identity(&member.id().name).is_none() {
                if room == 0 {
                    tracing::warn!(node = %member.id().name, "gossip: member table full, refusing pushed member");
                    continue;
                }
                room -= 1;
            }
            accepted.push(member);
        }
        let taken = accepted.len();
        let result = self
            .foca
            .apply_many(accepted.into_iter(), true, &mut self.io)
            .map_err(foca_error);
        self.sync_table();
        result.map(|()| taken)
    }

    /// Announces a graceful leave: peers see this node as left.
    pub fn leave(&mut self, now_ms: u64) -> Result<(), CoreError> {
        self.set_now(now_ms);
        if self.left {
            return Ok(());
        }
        let leaving = self.foca.identity().clone().into_leaving();
        let result = self
            .foca
            .change_identity(leaving, &mut self.io)
            .and_then(|()| self.foca.leave_cluster(&mut self.io))
            .map_err(foca_error);
        self.left = true;
        self.leave_regossip_at_ms = Some(now_ms.saturating_add(self.timings.gossip_period_ms));
        self.leave_regossip_until_ms = now_ms.saturating_add(self.timings.leave_propagate_ms_max);
        self.io.membership_changed = true;
        self.sync_table();
        result
    }

    /// Whether [`GossipCore::leave`] was called.
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// Marks a failed member as left (`prune`: forget it now). A member that
    /// is still alive is left alone, as serf does (it would refute).
    pub fn force_leave(&mut self, now_ms: u64, name: &str, prune: bool) -> Result<(), CoreError> {
        self.set_now(now_ms);
        if *name == *self.foca.identity().name {
            return Err(CoreError::LocalNode(name.to_string()));
        }
        let Some(member) = self.table.get(name) else {
            return Err(CoreError::UnknownNode(name.to_string()));
        };
        let status = member.status;
        let identity = self
            .table
            .identity(name)
            .cloned()
            .ok_or_else(|| CoreError::UnknownNode(name.to_string()))?;
        if status == MemberStatus::Failed {
            let left = WireMember::down(identity.into_leaving());
            self.foca
                .apply_many(std::iter::once(left), true, &mut self.io)
                .map_err(foca_error)?;
            self.io.membership_changed = true;
            self.sync_table();
        }
        let now_down = matches!(
            self.table.get(name).map(|m| m.status),
            Some(MemberStatus::Left | MemberStatus::Failed)
        );
        if prune && now_down {
            self.table.prune(name, &mut self.events);
        }
        Ok(())
    }

    /// Gossips as a node with new tags (the generation grows so it wins).
    pub fn set_tags(&mut self, now_ms: u64, tags: std::collections::BTreeMap<String, String>) -> Result<(), CoreError> {
        self.set_now(now_ms);
        if self.left {
            return Err(CoreError::AlreadyLeft);
        }
        let next = self.foca.identity().with_tags(tags).map_err(CoreError::Foca)?;
        let result = self.foca.change_identity(next, &mut self.io).map_err(foca_error);
        self.io.membership_changed = true;
        self.sync_table();
        result
    }

    fn set_now(&mut self, now_ms: u64) {
        assert!(
            now_ms >= self.io.now_ms,
            "gossip clock went backwards: {now_ms} < {}",
            self.io.now_ms
        );
        self.io.now_ms = now_ms;
    }

    /// Re-derives the member table when foca's membership may have changed.
    fn sync_table(&mut self) {
        let membership_len = self.foca.iter_membership_state().len();
        if !self.io.membership_changed && membership_len == self.membership_len {
            return;
        }
        self.io.membership_changed = false;
        self.membership_len = membership_len;
        let own = self.foca.identity();
        let own_state = if self.left { State::Down } else { State::Alive };
        let view = std::iter::once((own, own_state)).chain(
            self.foca
                .iter_membership_state()
                .filter(|m| m.id().name != own.name)
                .map(|m| (m.id(), m.state())),
        );
        self.table.reconcile(view, &mut self.events);
    }
}
