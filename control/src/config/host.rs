//! Facts about the machine the resolver needs: the hostname and the private
//! IPv4 addresses. The only IO in the config module besides reading files.

use std::ffi::CStr;
use std::net::Ipv4Addr;

use super::resolve::HostFacts;

/// Most interface addresses we look at.
const INTERFACE_ADDRS_MAX: usize = 4096;

/// The kernel's host name, or "" when it cannot be read.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its whole length; gethostname NUL-terminates
    // within it on success (we pass len - 1 to keep a final NUL).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return String::new();
    }
    CStr::from_bytes_until_nul(&buf)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether Consul would consider the address "private" when picking a bind
/// address: RFC 1918 and RFC 6598 (carrier-grade NAT).
pub fn is_private(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private() || (a == 100 && (64..128).contains(&b))
}

/// Private IPv4 addresses on up interfaces.
pub fn private_ipv4_addrs() -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cursor = head;
    let mut seen = 0;
    while !cursor.is_null() && seen < INTERFACE_ADDRS_MAX {
        seen += 1;
        // SAFETY: cursor is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cursor };
        let up = ifa.ifa_flags & libc::IFF_UP as u32 != 0;
        if up && !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr is non-null and points at a sockaddr.
            let family = unsafe { (*ifa.ifa_addr).sa_family } as i32;
            if family == libc::AF_INET {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if is_private(ip) && !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
        cursor = ifa.ifa_next;
    }
    // SAFETY: head came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// Everything above, gathered once.
pub fn host_facts() -> HostFacts {
    HostFacts {
        hostname: hostname(),
        private_ipv4: private_ipv4_addrs(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges() {
        assert!(is_private(Ipv4Addr::new(10, 1, 2, 3)));
        assert!(is_private(Ipv4Addr::new(172, 16, 0, 1)));
        assert!(is_private(Ipv4Addr::new(192, 168, 0, 1)));
        assert!(is_private(Ipv4Addr::new(100, 64, 0, 1)));
        assert!(!is_private(Ipv4Addr::new(100, 128, 0, 1)));
        assert!(!is_private(Ipv4Addr::new(127, 0, 0, 1)));
        assert!(!is_private(Ipv4Addr::new(8, 8, 8, 8)));
    }

    #[test]
    fn host_facts_are_readable() {
        let facts = host_facts();
        assert!(!facts.hostname.is_empty());
        assert!(facts.private_ipv4.iter().all(|ip| is_private(*ip)));
    }
}
