//! Checks on the server addresses a write benchmark is pointed at.

use std::net::SocketAddr;

use anyhow::bail;

/// Most servers one run talks to.
pub const TARGETS_MAX: usize = 16;

/// At least one target, at most [`TARGETS_MAX`], all in 127.0.0.0/8 (this
/// tool measures servers on this machine only).
pub fn check_targets(targets: &[SocketAddr]) -> anyhow::Result<()> {
    if targets.is_empty() || targets.len() > TARGETS_MAX {
        bail!("give 1..={TARGETS_MAX} targets, got {}", targets.len());
    }
    for t in targets {
        check_loopback(t)?;
    }
    Ok(())
}

/// `addr` is in 127.0.0.0/8.
pub fn check_loopback(addr: &SocketAddr) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() {
        bail!("{addr} is outside 127.0.0.0/8: this tool measures servers on this machine only");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_must_be_loopback_and_bounded() {
        let a: SocketAddr = "127.0.0.11:8500".parse().unwrap();
        check_targets(&[a]).unwrap();
        assert!(check_targets(&[]).unwrap_err().to_string().contains("1..=16"));
        assert!(check_targets(&[a; TARGETS_MAX + 1]).is_err());
        let far: SocketAddr = "192.168.0.1:8500".parse().unwrap();
        assert!(check_targets(&[a, far])
            .unwrap_err()
            .to_string()
            .contains("outside 127.0.0.0/8"));
    }
}
