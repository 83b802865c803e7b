//! The member table seen by the agent: one row per node name with the serf
//! status (alive 1, leaving 2, left 3, failed 4), derived from foca's view
//! and diffed into [`MemberEvent`]s.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use foca::State;

use super::identity::NodeIdentity;

/// Serf member status, as `/v1/agent/members` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    /// Reachable (foca alive or suspect).
    Alive,
    /// Announced a graceful leave, still reachable.
    Leaving,
    /// Left on purpose.
    Left,
    /// Stopped answering probes and did not refute the suspicion.
    Failed,
}

impl MemberStatus {
    /// Consul's integer: 1 alive, 2 leaving, 3 left, 4 failed.
    pub fn code(&self) -> u8 {
        match self {
            MemberStatus::Alive => 1,
            MemberStatus::Leaving => 2,
            MemberStatus::Left => 3,
            MemberStatus::Failed => 4,
        }
    }

    /// Lower-case name as `consul members` prints it.
    pub fn as_str(&self) -> &'static str {
        match self {
            MemberStatus::Alive => "alive",
            MemberStatus::Leaving => "leaving",
            MemberStatus::Left => "left",
            MemberStatus::Failed => "failed",
        }
    }

    /// The serf status of an identity in a foca state.
    pub fn of(identity: &NodeIdentity, state: State) -> MemberStatus {
        match (state, identity.leaving) {
            (State::Alive | State::Suspect, false) => MemberStatus::Alive,
            (State::Alive | State::Suspect, true) => MemberStatus::Leaving,
            (State::Down, false) => MemberStatus::Failed,
            (State::Down, true) => MemberStatus::Left,
        }
    }
}

/// One cluster member as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Node name.
    pub name: String,
    /// Gossip address.
    pub addr: IpAddr,
    /// Gossip port (8301 by default).
    pub port: u16,
    /// Serf tags.
    pub tags: BTreeMap<String, String>,
    /// Serf status.
    pub status: MemberStatus,
}

impl Member {
    fn from_identity(identity: &NodeIdentity, status: MemberStatus) -> Member {
        Member {
            name: identity.name.to_string(),
            addr: identity.addr.ip(),
            port: identity.addr.port(),
            tags: (*identity.tags).clone(),
            status,
        }
    }
}

/// A change in the member table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// A new member, or a failed/left one that came back alive.
    Joined(Member),
    /// Address, tags or a non-terminal status (leaving) changed.
    Updated(Member),
    /// The member stopped answering.
    Failed(Member),
    /// The member left gracefully (or was force-left).
    Left(Member),
    /// The member was forgotten (reap time elapsed or pruned).
    Reaped(String),
}

/// Member rows keyed by name, bounded by `members_max`.
#[derive(Debug)]
pub struct MemberTable {
    rows: BTreeMap<String, Row>,
    /// Names force-left with prune, with the generation that was pruned:
    /// hidden until that node shows up with a newer generation.
    pruned: HashMap<String, u64>,
    members_max: usize,
    refused_total: u64,
}

#[derive(Debug, Clone)]
struct Row {
    identity: NodeIdentity,
    member: Member,
}

impl MemberTable {
    /// An empty table holding at most `members_max` rows (self included).
    pub fn new(members_max: usize) -> MemberTable {
        assert!(members_max > 0, "members_max must be > 0");
        MemberTable {
            rows: BTreeMap::new(),
            pruned: HashMap::new(),
            members_max,
            refused_total: 0,
        }
    }

    /// All members sorted by name.
    pub fn members(&self) -> Vec<Member> {
        self.rows.values().map(|row| row.member.clone()).collect()
    }

    /// Number of members listed.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no member is listed.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// One member by name.
    pub fn get(&self, name: &str) -> Option<&Member> {
        self.rows.get(name).map(|row| &row.member)
    }

    /// The identity currently listed for `name`.
    pub fn identity(&self, name: &str) -> Option<&NodeIdentity> {
        self.rows.get(name).map(|row| &row.identity)
    }

    /// How many newcomers were refused because the table was full.
    pub fn refused_total(&self) -> u64 {
        self.refused_total
    }

    /// Whether a newcomer could be admitted now.
    pub fn has_room_for(&self, name: &str) -> bool {
        self.rows.contains_key(name) || self.rows.len() < self.members_max
    }

    /// Hides `name` until it comes back with a newer generation.
    pub fn prune(&mut self, name: &str, events: &mut Vec<MemberEvent>) {
        if let Some(row) = self.rows.remove(name) {
            self.pruned.insert(name.to_string(), row.identity.generation);
            events.push(MemberEvent::Reaped(name.to_string()));
        }
    }

    /// Replaces the table with `view` (every identity foca knows plus self),
    /// appending the differences to `events`.
    pub fn reconcile<'a>(
        &mut self,
        view: impl Iterator<Item = (&'a NodeIdentity, State)>,
        events: &mut Vec<MemberEvent>,
    ) {
        let mut seen: HashMap<&str, ()> = HashMap::new();
        for (identity, state) in view {
            let name: &str = &identity.name;
            if let Some(pruned_generation) = self.pruned.get(name) {
                if identity.generation <= *pruned_generation {
                    seen.insert(name, ());
                    continue;
                }
                self.pruned.remove(name);
            }
            seen.insert(name, ());
            self.apply_one(identity, state, events);
        }
        let gone: Vec<String> = self
            .rows
            .keys()
            .filter(|name| !seen.contains_key(name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.rows.remove(&name);
            events.push(MemberEvent::Reaped(name));
        }
        self.pruned.retain(|name, _| seen.contains_key(name.as_str()));
        assert!(self.rows.len() <= self.members_max, "member table over its cap");
    }

    fn apply_one(&mut self, identity: &NodeIdentity, state: State, events: &mut Vec<MemberEvent>) {
        let status = MemberStatus::of(identity, state);
        let member = Member::from_identity(identity, status);
        let name: &str = &identity.name;
        let Some(row) = self.rows.get_mut(name) else {
            if self.rows.len() >= self.members_max {
                self.refused_total += 1;
                if self.refused_total == 1 || self.refused_total.is_multiple_of(1_000) {
                    tracing::warn!(
                        node = name,
                        members_max = self.members_max,
                        refused_total = self.refused_total,
                        "gossip: member table full, refusing new member"
                    );
                }
                return;
            }
            events.push(event_for(None, &member));
            self.rows.insert(
                name.to_string(),
                Row {
                    identity: identity.clone(),
                    member,
                },
            );
            return;
        };
        if row.member != member {
            events.push(event_for(Some(row.member.status), &member));
        }
        row.identity = identity.clone();
        row.member = member;
    }
}

fn event_for(previous: Option<MemberStatus>, member: &Member) -> MemberEvent {
    let was_down = matches!(previous, None | Some(MemberStatus::Failed | MemberStatus::Left));
    match member.status {
        MemberStatus::Alive if was_down => MemberEvent::Joined(member.clone()),
        MemberStatus::Alive | MemberStatus::Leaving => MemberEvent::Updated(member.clone()),
        MemberStatus::Failed => MemberEvent::Failed(member.clone()),
        MemberStatus::Left => MemberEvent::Left(member.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str, generation: u64) -> NodeIdentity {
        NodeIdentity::new(name, "127.0.0.9:8301".parse().unwrap(), generation, BTreeMap::new()).unwrap()
    }

    #[test]
    fn codes_match_consul() {
        let codes: Vec<u8> = [
            MemberStatus::Alive,
            MemberStatus::Leaving,
            MemberStatus::Left,
            MemberStatus::Failed,
        ]
        .iter()
        .map(MemberStatus::code)
        .collect();
        assert_eq!(codes, vec![1, 2, 3, 4]);
        assert_eq!(
            MemberStatus::of(&id("a", 1).into_leaving(), State::Down),
            MemberStatus::Left
        );
        assert_eq!(MemberStatus::of(&id("a", 1), State::Suspect), MemberStatus::Alive);
    }

    #[test]
    fn transitions_produce_events() {
        let mut table = MemberTable::new(10);
        let mut events = Vec::new();
        let a = id("a", 1);
        table.reconcile([(&a, State::Alive)].into_iter(), &mut events);
        assert!(matches!(&events[..], [MemberEvent::Joined(m)] if m.name == "a" && m.port == 8301));
        events.clear();
        table.reconcile([(&a, State::Suspect)].into_iter(), &mut events);
        assert!(events.is_empty(), "suspect is still alive: {events:?}");
        table.reconcile([(&a, State::Down)].into_iter(), &mut events);
        assert!(matches!(&events[..], [MemberEvent::Failed(m)] if m.status.code() == 4));
        events.clear();
        let back = id("a", 2);
        table.reconcile([(&back, State::Alive)].into_iter(), &mut events);
        assert!(matches!(&events[..], [MemberEvent::Joined(_)]));
        events.clear();
        let leaving = back.clone().into_leaving();
        table.reconcile([(&leaving, State::Down)].into_iter(), &mut events);
        assert!(matches!(&events[..], [MemberEvent::Left(m)] if m.status == MemberStatus::Left));
        events.clear();
        table.reconcile(std::iter::empty(), &mut events);
        assert_eq!(events, vec![MemberEvent::Reaped("a".to_string())]);
        assert!(table.members().is_empty());
    }

    #[test]
    fn full_table_refuses_newcomers() {
        let mut table = MemberTable::new(2);
        let mut events = Vec::new();
        let ids = [id("a", 1), id("b", 1), id("c", 1)];
        table.reconcile(ids.iter().map(|i| (i, State::Alive)), &mut events);
        assert_eq!(table.members().len(), 2);
        assert_eq!(table.refused_total(), 1);
        assert!(table.get("c").is_none());
        assert!(!table.has_room_for("c"));
        assert!(table.has_room_for("a"));
    }

    #[test]
    fn pruned_member_stays_hidden_until_a_newer_generation() {
        let mut table = MemberTable::new(10);
        let mut events = Vec::new();
        let old = id("a", 1).into_leaving();
        table.reconcile([(&old, State::Down)].into_iter(), &mut events);
        table.prune("a", &mut events);
        assert_eq!(events.last(), Some(&MemberEvent::Reaped("a".to_string())));
        events.clear();
        table.reconcile([(&old, State::Down)].into_iter(), &mut events);
        assert!(events.is_empty() && table.get("a").is_none());
        let new = id("a", 5);
        table.reconcile([(&new, State::Alive)].into_iter(), &mut events);
        assert_eq!(table.get("a").map(|m| m.status), Some(MemberStatus::Alive));
    }

    #[test]
    fn members_are_sorted_by_name() {
        let mut table = MemberTable::new(10);
        let ids = [id("c", 1), id("a", 1), id("b", 1)];
        table.reconcile(ids.iter().map(|i| (i, State::Alive)), &mut Vec::new());
        let names: Vec<String> = table.members().into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
