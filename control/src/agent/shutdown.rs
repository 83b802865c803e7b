//! The agent's stop signal: triggered once (by SIGINT/SIGTERM, by
//! `PUT /v1/agent/leave`, or by a fatal error), awaited by every task.

use std::sync::Arc;

use tokio::sync::watch;

/// Why the agent is stopping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShutdownReason {
    /// A signal, by name (`SIGINT`, `SIGTERM`).
    Signal(&'static str),
    /// `PUT /v1/agent/leave`.
    Leave,
    /// Something the agent cannot run without failed.
    Fatal(String),
}

/// A cloneable handle on the stop signal. The first trigger wins.
#[derive(Debug, Clone)]
pub struct Shutdown {
    reason: Arc<watch::Sender<Option<ShutdownReason>>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            reason: Arc::new(watch::Sender::new(None)),
        }
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Starts the shutdown. Returns whether this call was the first.
    pub fn trigger(&self, reason: ShutdownReason) -> bool {
        self.reason.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(reason);
            true
        })
    }

    pub fn is_triggered(&self) -> bool {
        self.reason.borrow().is_some()
    }

    /// A `watch` that turns `true` at the trigger, for code that stops on a
    /// plain flag (the client state stream). Needs a tokio runtime.
    pub fn as_watch(&self) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(self.is_triggered());
        let me = self.clone();
        tokio::spawn(async move {
            me.wait().await;
            let _ = tx.send(true);
        });
        rx
    }

    /// Waits for the trigger and returns its reason.
    pub async fn wait(&self) -> ShutdownReason {
        let mut rx = self.reason.subscribe();
        let reason = rx
            .wait_for(Option::is_some)
            .await
            .expect("the sender lives as long as this handle");
        reason.clone().expect("waited for Some")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn first_trigger_wins_and_wakes_waiters() {
        let s = Shutdown::new();
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.wait().await }
        });
        assert!(!s.is_triggered());
        assert!(s.trigger(ShutdownReason::Leave));
        assert!(!s.trigger(ShutdownReason::Signal("SIGTERM")));
        let reason = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reason, ShutdownReason::Leave);
        assert_eq!(s.wait().await, ShutdownReason::Leave, "late waiters return at once");
    }
}
