//! One published version of the replica: what every core installs as its
//! view, plus what changed since the previous version.

use std::sync::Arc;
use std::time::Instant;

use proconsul_shared::agent_info::AgentInfo;
use proconsul_shared::ipc::messages::ClusterStatus;
use proconsul_shared::State;

use crate::blocking::ChangeSet;
use crate::core::LeaderStatus;

/// Leadership as the applier last assessed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderInfo {
    /// Whether a leader is known.
    pub known_leader: bool,
    /// Milliseconds since the last leader contact, as of `observed_at`.
    pub last_contact_ms: u64,
    /// When the figure above was true.
    pub observed_at: Instant,
    /// Whether the contact age keeps growing from `observed_at` (control
    /// plane lost or silent): readers then add the time elapsed since.
    pub growing: bool,
}

impl LeaderInfo {
    /// A known leader with fresh contact.
    pub fn fresh(now: Instant) -> LeaderInfo {
        LeaderInfo {
            known_leader: true,
            last_contact_ms: 0,
            observed_at: now,
            growing: false,
        }
    }

    /// No leader known, contact lost at `since`.
    pub fn lost(since: Instant) -> LeaderInfo {
        LeaderInfo {
            known_leader: false,
            last_contact_ms: 0,
            observed_at: since,
            growing: true,
        }
    }

    /// The status to report at `now`.
    pub fn status_at(&self, now: Instant) -> LeaderStatus {
        let extra = if self.growing {
            now.saturating_duration_since(self.observed_at).as_millis() as u64
        } else {
            0
        };
        LeaderStatus {
            known_leader: self.known_leader,
            last_contact_ms: self.last_contact_ms.saturating_add(extra),
        }
    }
}

/// Everything a core needs to serve reads, at one point in time.
#[derive(Debug, Clone)]
pub struct Version {
    /// Publication sequence number, strictly increasing.
    pub seq: u64,
    /// The replica state.
    pub state: Arc<State>,
    /// The agent's description.
    pub agent: Arc<AgentInfo>,
    /// Leader and raft peers.
    pub cluster: Arc<ClusterStatus>,
    /// Leadership at publication.
    pub leader: LeaderInfo,
    /// Bumped each time the state was replaced by one at a lower index
    /// (a snapshot restore): blocking queries must answer at once.
    pub restore_generation: u64,
    /// What changed since the version with `seq - 1`.
    pub changes: Arc<ChangeSet>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn growing_contact_adds_elapsed_time() {
        let t0 = Instant::now();
        let lost = LeaderInfo::lost(t0);
        let later = lost.status_at(t0 + Duration::from_millis(1500));
        assert_eq!(
            later,
            LeaderStatus {
                known_leader: false,
                last_contact_ms: 1500
            }
        );
        let fresh = LeaderInfo::fresh(t0);
        assert_eq!(fresh.status_at(t0 + Duration::from_secs(9)).last_contact_ms, 0);
        assert!(fresh.status_at(t0).known_leader);
    }
}
