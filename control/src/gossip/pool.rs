//! The two serf pools an agent can be in: the LAN pool (every agent of a
//! datacenter, port 8301) and the WAN pool (servers of every datacenter,
//! port 8302, members named `<node>.<datacenter>`). Pure.

use super::SERF_LAN_PORT;

/// Default serf WAN port.
pub const SERF_WAN_PORT: u16 = 8302;

/// Which gossip pool an instance runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// Agents of one datacenter.
    Lan,
    /// Servers of all federated datacenters.
    Wan,
}

impl Pool {
    /// The port a join address without one uses.
    pub fn default_port(self) -> u16 {
        match self {
            Pool::Lan => SERF_LAN_PORT,
            Pool::Wan => SERF_WAN_PORT,
        }
    }

    /// `LAN` or `WAN`, as Consul's logs name the pools.
    pub fn name(self) -> &'static str {
        match self {
            Pool::Lan => "LAN",
            Pool::Wan => "WAN",
        }
    }
}

/// A server's member name in the WAN pool: `<node>.<datacenter>`.
pub fn wan_member_name(node: &str, datacenter: &str) -> String {
    format!("{node}.{datacenter}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_have_consuls_ports_and_names() {
        assert_eq!(Pool::Lan.default_port(), 8301);
        assert_eq!(Pool::Wan.default_port(), 8302);
        assert_eq!((Pool::Lan.name(), Pool::Wan.name()), ("LAN", "WAN"));
    }

    #[test]
    fn wan_names_carry_the_datacenter() {
        assert_eq!(wan_member_name("s1", "dc2"), "s1.dc2");
    }
}
