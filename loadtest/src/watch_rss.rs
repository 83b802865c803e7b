//! Resident memory of a server's process tree, from `/proc/<pid>/status`.

use std::collections::BTreeMap;

use crate::cpu::proc_stat::parse_process_stat;
use crate::cpu::tree::descendants;

/// `VmRSS` of a `/proc/<pid>/status` text, in bytes.
pub fn parse_vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut fields = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => value.checked_mul(1024),
        _ => None,
    }
}

/// `VmRSS` in bytes of `root` and each of its descendants now (processes
/// that vanish while read are skipped).
pub fn tree_rss_bytes(root: u32) -> BTreeMap<u32, u64> {
    descendants(root, &process_links())
        .into_iter()
        .filter_map(|pid| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            Some((pid, parse_vm_rss_bytes(&text)?))
        })
        .collect()
}

fn process_links() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let t = parse_process_stat(&text)?;
        Some((t.pid, t.ppid))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_rss_in_kib() {
        let status = "Name:\tproconsul\nVmPeak:\t  999 kB\nVmRSS:\t   20480 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss_bytes(status), Some(20480 * 1024));
        assert_eq!(parse_vm_rss_bytes("Name:\tkthreadd\n"), None);
        assert_eq!(parse_vm_rss_bytes("VmRSS:\t12 MB\n"), None);
        assert_eq!(parse_vm_rss_bytes("VmRSS:\tlots kB\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let rss = tree_rss_bytes(me);
        assert!(rss[&me] > 0);
    }
}
