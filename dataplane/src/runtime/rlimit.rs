//! The descriptor limit: raised to the hard limit at start (every parked
//! blocking query holds a connection), and the per-core parked-query cap
//! derived from it.

/// Parked queries per core never exceed this, whatever the fd limit.
pub const PARKED_PER_CORE_CEILING: usize = 1 << 20;
/// Parked queries per core are allowed at least this many.
pub const PARKED_PER_CORE_FLOOR: usize = 1024;

/// Raises RLIMIT_NOFILE's soft limit to its hard limit. Returns the
/// resulting soft limit.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: valid in-pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return raised.rlim_cur;
        }
    }
    lim.rlim_cur
}

/// The parked-query cap of one core: every descriptor the process may
/// hold could be a parked connection on the same core.
pub fn parked_per_core(nofile: u64) -> usize {
    (nofile.min(usize::MAX as u64) as usize).clamp(PARKED_PER_CORE_FLOOR, PARKED_PER_CORE_CEILING)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_follows_the_fd_limit_within_bounds() {
        assert_eq!(parked_per_core(20_000), 20_000);
        assert_eq!(parked_per_core(10), PARKED_PER_CORE_FLOOR);
        assert_eq!(parked_per_core(u64::MAX), PARKED_PER_CORE_CEILING);
        assert!(raise_nofile() >= 1);
    }
}
