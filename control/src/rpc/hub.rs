//! Who is attached: the one data plane whose replication channel is open.
//!
//! The attach thread registers a session here; the supervisor watches it
//! (to adopt an orphan, or to notice a data plane went away) and asks the
//! attached data plane to exit through it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// The attached data plane as the supervisor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedDataplane {
    pub pid: u32,
    pub launch_fingerprint: String,
    /// Distinguishes successive attachments of the same pid.
    pub session: u64,
}

/// One open replication channel.
#[derive(Debug)]
pub struct AttachSession {
    pub info: AttachedDataplane,
    exit_requested: AtomicBool,
}

impl AttachSession {
    /// Whether the control plane wants this data plane to exit.
    pub fn exit_requested(&self) -> bool {
        self.exit_requested.load(Ordering::Acquire)
    }
}

/// The registry of the (at most one) attached data plane.
#[derive(Debug)]
pub struct AttachHub {
    current: Mutex<Option<Arc<AttachSession>>>,
    next_session: AtomicU64,
    status: watch::Sender<Option<AttachedDataplane>>,
}

impl Default for AttachHub {
    fn default() -> Self {
        AttachHub {
            current: Mutex::new(None),
            next_session: AtomicU64::new(1),
            status: watch::Sender::new(None),
        }
    }
}

impl AttachHub {
    pub fn new() -> Arc<AttachHub> {
        Arc::new(AttachHub::default())
    }

    /// Follows attach and detach events.
    pub fn subscribe(&self) -> watch::Receiver<Option<AttachedDataplane>> {
        self.status.subscribe()
    }

    /// The attached data plane, if any.
    pub fn attached(&self) -> Option<AttachedDataplane> {
        self.status.borrow().clone()
    }

    /// Registers a new replication channel. `None` when another data plane
    /// is attached: only one may be at a time.
    pub fn try_attach(&self, pid: u32, launch_fingerprint: String) -> Option<Arc<AttachSession>> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.is_some() {
            return None;
        }
        let session = Arc::new(AttachSession {
            info: AttachedDataplane {
                pid,
                launch_fingerprint,
                session: self.next_session.fetch_add(1, Ordering::Relaxed),
            },
            exit_requested: AtomicBool::new(false),
        });
        *current = Some(session.clone());
        self.status.send_replace(Some(session.info.clone()));
        Some(session)
    }

    /// Unregisters a channel that closed. A stale session (already replaced)
    /// changes nothing.
    pub fn detach(&self, session: &AttachSession) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|c| c.info.session == session.info.session) {
            *current = None;
            self.status.send_replace(None);
        }
    }

    /// Asks the attached data plane to exit (its channel sends `Shutdown`).
    /// Returns its pid, or `None` when nothing is attached.
    pub fn request_exit(&self) -> Option<u32> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current.as_ref().map(|s| {
            s.exit_requested.store(true, Ordering::Release);
            s.info.pid
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_attachment_at_a_time() {
        let hub = AttachHub::new();
        let mut rx = hub.subscribe();
        let a = hub.try_attach(10, "fp".into()).unwrap();
        assert!(hub.try_attach(11, "fp".into()).is_none(), "second attach is refused");
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().as_ref().map(|d| d.pid), Some(10));
        hub.detach(&a);
        assert_eq!(hub.attached(), None);
        let b = hub.try_attach(11, "fp".into()).unwrap();
        assert!(b.info.session > a.info.session);
        hub.detach(&a);
        assert_eq!(hub.attached().map(|d| d.pid), Some(11), "a stale detach is ignored");
    }

    #[test]
    fn exit_request_reaches_the_session() {
        let hub = AttachHub::new();
        assert_eq!(hub.request_exit(), None);
        let s = hub.try_attach(42, "fp".into()).unwrap();
        assert!(!s.exit_requested());
        assert_eq!(hub.request_exit(), Some(42));
        assert!(s.exit_requested());
    }
}
