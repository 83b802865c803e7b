//! Service virtual IPs: the address Consul gives every Connect-enabled
//! service (one with a `connect-proxy` instance for it or a Connect-native
//! instance of it), answered by `<service>.virtual.consul` and carried on
//! each such instance as `TaggedAddresses["consul-virtual"]`.
//!
//! Addresses come from 240.0.0.0/4, stored as the offset from 240.0.0.0:
//! the first is 240.0.0.1, the last 255.255.255.253 (255.255.255.254 is
//! Consul's exhaustion mark, 255.255.255.255 is broadcast). A freed
//! address is reused before the counter moves on, lowest first. Service
//! names compare case-insensitively.

use std::net::Ipv4Addr;

use imbl::{OrdMap, OrdSet};

/// 240.0.0.0, the base of the virtual IP range.
pub const VIRTUAL_IP_BASE: Ipv4Addr = Ipv4Addr::new(240, 0, 0, 0);
/// Largest offset handed out (255.255.255.253).
pub const VIRTUAL_IP_OFFSET_MAX: u32 = (1 << 28) - 3;

/// The address at `offset` from 240.0.0.0.
pub fn virtual_ip_at(offset: u32) -> Ipv4Addr {
    assert!(
        offset <= VIRTUAL_IP_OFFSET_MAX + 2,
        "virtual IP offset {offset} is outside 240.0.0.0/4"
    );
    Ipv4Addr::from(u32::from(VIRTUAL_IP_BASE) + offset)
}

/// The range is used up (Consul's error text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed updating virtual IP: cannot allocate any more unique service virtual IPs")]
pub struct VirtualIpsExhausted;

/// What [`VirtualIpTable::assign`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualIpAssignment {
    pub offset: u32,
    /// The service had no address before this call.
    pub new: bool,
}

/// Service name → virtual IP, with the allocator (free list and counter).
#[derive(Debug, Clone, Default)]
pub struct VirtualIpTable {
    /// Lower-cased service name → offset.
    by_service: OrdMap<String, u32>,
    /// Freed offsets below `counter`, reused lowest first.
    free: OrdSet<u32>,
    /// The highest offset ever handed out (0 = none yet).
    counter: u32,
}

impl VirtualIpTable {
    /// The virtual IP of `service`, if it has one.
    pub fn get(&self, service: &str) -> Option<Ipv4Addr> {
        self.offset(service).map(virtual_ip_at)
    }

    /// The offset of `service`'s virtual IP.
    pub fn offset(&self, service: &str) -> Option<u32> {
        if service.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_service.get(&service.to_ascii_lowercase()).copied()
        } else {
            self.by_service.get(service).copied()
        }
    }

    /// Number of services with an address.
    pub fn len(&self) -> usize {
        self.by_service.len()
    }

    /// Whether no service has an address.
    pub fn is_empty(&self) -> bool {
        self.by_service.is_empty()
    }

    /// Gives `service` an address unless it has one, taking offsets no
    /// higher than `offset_max` ([`VIRTUAL_IP_OFFSET_MAX`] outside tests).
    pub fn assign(&mut self, service: &str, offset_max: u32) -> Result<VirtualIpAssignment, VirtualIpsExhausted> {
        if let Some(offset) = self.offset(service) {
            return Ok(VirtualIpAssignment { offset, new: false });
        }
        let offset = self.next_free(offset_max)?;
        self.put(service, offset);
        Ok(VirtualIpAssignment { offset, new: true })
    }

    /// Whether [`VirtualIpTable::assign`] would succeed for `service`.
    pub fn can_assign(&self, service: &str, offset_max: u32) -> bool {
        self.offset(service).is_some() || self.next_free(offset_max).is_ok()
    }

    /// Records `service` → `offset` as the leader allocated it (a replica
    /// applying a delta). The offset is either on the free list or the
    /// next one after the counter.
    pub fn put(&mut self, service: &str, offset: u32) {
        assert!(offset >= 1, "virtual IP offset 0 is the range's network address");
        if self.free.remove(&offset).is_none() {
            assert_eq!(
                offset,
                self.counter + 1,
                "virtual IP offset {offset} is neither free nor next after {}",
                self.counter
            );
            self.counter = offset;
        }
        let previous = self.by_service.insert(service.to_ascii_lowercase(), offset);
        assert!(previous.is_none(), "service {service:?} already had a virtual IP");
    }

    /// Releases `service`'s address. Returns its offset.
    pub fn free(&mut self, service: &str) -> Option<u32> {
        let offset = self.by_service.remove(&service.to_ascii_lowercase())?;
        self.free.insert(offset);
        Some(offset)
    }

    /// Every `(lower-cased service name, offset)`, by name (snapshot).
    pub fn entries(&self) -> impl Iterator<Item = (&String, &u32)> {
        self.by_service.iter()
    }

    /// The free list, lowest first (snapshot).
    pub fn free_offsets(&self) -> impl Iterator<Item = &u32> {
        self.free.iter()
    }

    /// The highest offset ever handed out (snapshot).
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// Rebuilds the table from a snapshot's parts.
    pub fn restore(entries: Vec<(String, u32)>, free: Vec<u32>, counter: u32) -> VirtualIpTable {
        let mut table = VirtualIpTable {
            counter,
            ..VirtualIpTable::default()
        };
        for offset in free {
            assert!(
                offset >= 1 && offset <= counter,
                "freed virtual IP offset {offset} above counter {counter}"
            );
            table.free.insert(offset);
        }
        for (name, offset) in entries {
            assert!(
                offset >= 1 && offset <= counter,
                "virtual IP offset {offset} above counter {counter}"
            );
            table.by_service.insert(name.to_ascii_lowercase(), offset);
        }
        table
    }

    fn next_free(&self, offset_max: u32) -> Result<u32, VirtualIpsExhausted> {
        if let Some(lowest) = self.free.get_min() {
            return Ok(*lowest);
        }
        if self.counter >= offset_max.min(VIRTUAL_IP_OFFSET_MAX) {
            return Err(VirtualIpsExhausted);
        }
        Ok(self.counter + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_address_is_240_0_0_1_and_assignment_is_sticky() {
        let mut t = VirtualIpTable::default();
        let a = t.assign("web", VIRTUAL_IP_OFFSET_MAX).unwrap();
        assert_eq!(a, VirtualIpAssignment { offset: 1, new: true });
        assert_eq!(t.get("WEB"), Some(Ipv4Addr::new(240, 0, 0, 1)));
        assert_eq!(
            t.assign("Web", VIRTUAL_IP_OFFSET_MAX).unwrap(),
            VirtualIpAssignment { offset: 1, new: false }
        );
        assert_eq!(t.assign("api", VIRTUAL_IP_OFFSET_MAX).unwrap().offset, 2);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn freed_addresses_are_reused_lowest_first() {
        let mut t = VirtualIpTable::default();
        for name in ["a", "b", "c", "d"] {
            t.assign(name, VIRTUAL_IP_OFFSET_MAX).unwrap();
        }
        assert_eq!(t.free("c"), Some(3));
        assert_eq!(t.free("b"), Some(2));
        assert_eq!(t.free("b"), None, "freeing twice is a no-op");
        assert_eq!(t.assign("e", VIRTUAL_IP_OFFSET_MAX).unwrap().offset, 2);
        assert_eq!(t.assign("f", VIRTUAL_IP_OFFSET_MAX).unwrap().offset, 3);
        assert_eq!(t.assign("g", VIRTUAL_IP_OFFSET_MAX).unwrap().offset, 5);
        assert_eq!(t.get("b"), None);
    }

    #[test]
    fn exhaustion_is_an_error_not_a_wrap() {
        let mut t = VirtualIpTable::default();
        t.assign("a", 2).unwrap();
        t.assign("b", 2).unwrap();
        assert!(!t.can_assign("c", 2));
        assert!(t.can_assign("a", 2), "a service with an address never fails");
        let e = t.assign("c", 2).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed updating virtual IP: cannot allocate any more unique service virtual IPs"
        );
        t.free("a");
        assert_eq!(t.assign("c", 2).unwrap().offset, 1, "a freed address makes room");
    }

    #[test]
    fn range_ends_below_the_exhaustion_mark() {
        assert_eq!(virtual_ip_at(1), Ipv4Addr::new(240, 0, 0, 1));
        assert_eq!(virtual_ip_at(VIRTUAL_IP_OFFSET_MAX), Ipv4Addr::new(255, 255, 255, 253));
    }

    #[test]
    fn replica_puts_and_restore_rebuild_the_same_allocator() {
        let mut leader = VirtualIpTable::default();
        let mut replica = VirtualIpTable::default();
        for name in ["a", "b", "c"] {
            let a = leader.assign(name, VIRTUAL_IP_OFFSET_MAX).unwrap();
            replica.put(name, a.offset);
        }
        leader.free("a");
        replica.free("a");
        let a = leader.assign("d", VIRTUAL_IP_OFFSET_MAX).unwrap();
        replica.put("d", a.offset);
        let restored = VirtualIpTable::restore(
            leader.entries().map(|(n, o)| (n.clone(), *o)).collect(),
            leader.free_offsets().copied().collect(),
            leader.counter(),
        );
        for t in [&replica, &restored] {
            assert_eq!(t.entries().collect::<Vec<_>>(), leader.entries().collect::<Vec<_>>());
            assert_eq!(t.counter(), 3);
            assert_eq!(t.get("d"), Some(Ipv4Addr::new(240, 0, 0, 1)));
        }
    }

    #[test]
    #[should_panic(expected = "neither free nor next")]
    fn a_put_out_of_sequence_is_a_bug() {
        let mut t = VirtualIpTable::default();
        t.put("a", 5);
    }
}
