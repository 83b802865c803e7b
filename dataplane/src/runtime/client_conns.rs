//! Open HTTP connections per client IP, shared by every serving thread,
//! for `limits.http_max_conns_per_client`.
//!
//! Touched only on accept and on close (never per request): a
//! [`ConnCounts`] (pure) behind one mutex. A connection over the limit is
//! answered 429 and closed by the accept path.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Distinct client IPs tracked at once. Beyond it a new IP is refused
/// like an over-limit one, so the table cannot grow without bound.
pub const CLIENT_IPS_MAX: usize = 1 << 18;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// This IP already holds `limit` connections.
    #[error("client {ip} already holds {limit} connections (limits.http_max_conns_per_client)")]
    OverLimit {
        /// The client.
        ip: IpAddr,
        /// The configured limit.
        limit: u32,
    },
    /// [`CLIENT_IPS_MAX`] distinct IPs are connected already.
    #[error("{CLIENT_IPS_MAX} distinct client IPs are connected already")]
    TooManyClients,
}

/// Open connections per IP (pure bookkeeping). Only IPs with at least one
/// open connection are present.
#[derive(Debug, Default)]
pub struct ConnCounts {
    open: HashMap<IpAddr, u32>,
}

impl ConnCounts {
    /// Counts one more connection from `ip` unless that would exceed
    /// `limit` (0 = unlimited).
    pub fn admit(&mut self, ip: IpAddr, limit: u32) -> Result<(), Refused> {
        if !self.open.contains_key(&ip) && self.open.len() >= CLIENT_IPS_MAX {
            return Err(Refused::TooManyClients);
        }
        let count = self.open.entry(ip).or_insert(0);
        if limit != 0 && *count >= limit {
            return Err(Refused::OverLimit { ip, limit });
        }
        *count = count.checked_add(1).expect("connections per IP fit u32");
        Ok(())
    }

    /// Forgets one connection from `ip` (which must have been admitted).
    pub fn release(&mut self, ip: IpAddr) {
        let count = self
            .open
            .get_mut(&ip)
            .expect("released a connection that was never admitted");
        assert!(*count > 0, "connection count of {ip} underflows");
        *count -= 1;
        if *count == 0 {
            self.open.remove(&ip);
        }
    }

    /// Open connections from `ip`.
    pub fn open_from(&self, ip: IpAddr) -> u32 {
        self.open.get(&ip).copied().unwrap_or(0)
    }

    /// Distinct IPs with an open connection.
    pub fn clients(&self) -> usize {
        self.open.len()
    }
}

/// The process-wide table, shared by the serving threads.
#[derive(Debug)]
pub struct ClientConns {
    limit: u32,
    counts: Mutex<ConnCounts>,
}

impl ClientConns {
    /// A table enforcing `limit` connections per IP (0 = unlimited).
    pub fn new(limit: u32) -> Arc<ClientConns> {
        Arc::new(ClientConns {
            limit,
            counts: Mutex::new(ConnCounts::default()),
        })
    }

    /// The configured limit (0 = unlimited).
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Admits one connection from `ip`; the returned guard releases it when
    /// dropped (when the connection closes).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnSlot, Refused> {
        self.lock().admit(ip, self.limit)?;
        Ok(ConnSlot {
            table: self.clone(),
            ip,
        })
    }

    /// Open connections from `ip` now.
    pub fn open_from(&self, ip: IpAddr) -> u32 {
        self.lock().open_from(ip)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConnCounts> {
        // A panic while holding the lock leaves the counts consistent
        // (every mutation is a single step), so poisoning is ignored.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One admitted connection; releases its count on drop.
#[derive(Debug)]
pub struct ConnSlot {
    table: Arc<ClientConns>,
    ip: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.table.lock().release(self.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn admits_up_to_the_limit_per_ip() {
        let mut c = ConnCounts::default();
        for _ in 0..3 {
            c.admit(ip(1), 3).unwrap();
        }
        assert_eq!(c.admit(ip(1), 3), Err(Refused::OverLimit { ip: ip(1), limit: 3 }));
        assert_eq!(c.open_from(ip(1)), 3);
        // Another IP has its own budget.
        c.admit(ip(2), 3).unwrap();
        assert_eq!(c.clients(), 2);
        c.release(ip(1));
        c.admit(ip(1), 3).unwrap();
        assert_eq!(c.open_from(ip(1)), 3);
    }

    #[test]
    fn zero_is_unlimited_and_empty_entries_are_dropped() {
        let mut c = ConnCounts::default();
        for _ in 0..1000 {
            c.admit(ip(1), 0).unwrap();
        }
        assert_eq!(c.open_from(ip(1)), 1000);
        for _ in 0..1000 {
            c.release(ip(1));
        }
        assert_eq!(c.clients(), 0);
        assert_eq!(c.open_from(ip(1)), 0);
    }

    #[test]
    fn the_number_of_distinct_ips_is_bounded() {
        let mut c = ConnCounts::default();
        for i in 0..CLIENT_IPS_MAX as u32 {
            c.open.insert(IpAddr::V4(Ipv4Addr::from(i)), 1);
        }
        assert_eq!(
            c.admit(IpAddr::V4(Ipv4Addr::from(u32::MAX)), 0),
            Err(Refused::TooManyClients)
        );
        // An IP already present still gets its own budget.
        c.admit(IpAddr::V4(Ipv4Addr::from(0)), 0).unwrap();
    }

    #[test]
    #[should_panic(expected = "never admitted")]
    fn releasing_an_unknown_ip_is_a_bug() {
        ConnCounts::default().release(ip(9));
    }

    #[test]
    fn slots_release_on_drop_across_threads() {
        let table = ClientConns::new(2);
        let a = table.admit(ip(1)).unwrap();
        let b = std::thread::spawn({
            let table = table.clone();
            move || table.admit(ip(1)).unwrap()
        })
        .join()
        .unwrap();
        assert!(matches!(table.admit(ip(1)), Err(Refused::OverLimit { limit: 2, .. })));
        drop(a);
        assert_eq!(table.open_from(ip(1)), 1);
        let c = table.admit(ip(1)).unwrap();
        drop((b, c));
        assert_eq!(table.open_from(ip(1)), 0);
    }
}
