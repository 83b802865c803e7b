//! A fault-injection switch for partition tests: an isolated agent
//! neither sends nor accepts raft RPCs (nor client streams and forwarded
//! writes), and both its gossip pools drop every packet, as if its links
//! were cut, while its process keeps running. In-process tests flip it
//! directly; a real agent started with `-dev-fault-injection` flips it on
//! SIGUSR1/SIGUSR2 (`agent/fault_signals.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Shared by a server's transport client and listener. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct PeerFaults {
    isolated: Arc<AtomicBool>,
}

impl PeerFaults {
    /// Cuts (`true`) or restores (`false`) this server's raft links.
    pub fn set_isolated(&self, isolated: bool) {
        self.isolated.store(isolated, Ordering::SeqCst);
    }

    pub fn is_isolated(&self) -> bool {
        self.isolated.load(Ordering::SeqCst)
    }
}
