//! Parsers for the two `/proc` files the meter reads. Both take the file's
//! text and never panic on malformed input.

/// The fields of `/proc/<pid>/stat` the meter needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessTimes {
    pub pid: u32,
    pub ppid: u32,
    /// User-mode time of the process (all its threads), in clock ticks.
    pub utime_ticks: u64,
    /// Kernel-mode time, in clock ticks.
    pub stime_ticks: u64,
}

impl ProcessTimes {
    /// `utime + stime`, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        self.utime_ticks + self.stime_ticks
    }
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses
/// and may itself hold spaces and parentheses, so the fields after it are
/// found from the *last* `)`.
pub fn parse_process_stat(text: &str) -> Option<ProcessTimes> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = text[..open].trim().parse().ok()?;
    // Fields after the name, starting at field 3 (`state`).
    let mut rest = text[close + 1..].split_ascii_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    // Fields 5..=13 (pgrp .. cmajflt) are skipped; utime is field 14.
    let mut rest = rest.skip(9);
    let utime_ticks = rest.next()?.parse().ok()?;
    let stime_ticks = rest.next()?.parse().ok()?;
    Some(ProcessTimes {
        pid,
        ppid,
        utime_ticks,
        stime_ticks,
    })
}

/// The aggregate `cpu` line of `/proc/stat`, in clock ticks summed over all cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SystemTimes {
    /// user + nice + system + idle + iowait + irq + softirq + steal.
    pub total_ticks: u64,
    /// idle + iowait.
    pub idle_ticks: u64,
    /// softirq alone (loopback networking is mostly accounted here).
    pub softirq_ticks: u64,
}

/// Parses the first (`cpu `) line of `/proc/stat`.
pub fn parse_system_stat(text: &str) -> Option<SystemTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().ok())
        .collect::<Option<Vec<u64>>>()?;
    if values.len() < 8 {
        return None;
    }
    Some(SystemTimes {
        total_ticks: values.iter().sum(),
        idle_ticks: values[3] + values[4],
        softirq_ticks: values[6],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of an nginx worker's line: the name holds a space and parentheses.
    const NGINX_STAT: &str = "4242 (nginx: worker (1)) S 4241 4241 4241 0 -1 4194624 1230 0 0 0 \
        1577 342 0 0 20 0 1 0 98765 12345678 900 18446744073709551615 1 1 0 0 0 0 0 4096 134 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn process_stat_fields_after_a_tricky_name() {
        let t = parse_process_stat(NGINX_STAT).expect("parses");
        assert_eq!(t.pid, 4242);
        assert_eq!(t.ppid, 4241);
        assert_eq!(t.utime_ticks, 1577);
        assert_eq!(t.stime_ticks, 342);
        assert_eq!(t.cpu_ticks(), 1919);
    }

    #[test]
    fn process_stat_garbage_is_none() {
        assert_eq!(parse_process_stat(""), None);
        assert_eq!(parse_process_stat("12 (x) S"), None);
        assert_eq!(parse_process_stat("12 (x) S 1 2 3 4 5 6 7 8 9 10 abc 3"), None);
        assert_eq!(parse_process_stat(") 12 ( S 1"), None);
        assert_eq!(parse_process_stat("x (y) S 1 2 3 4 5 6 7 8 9 10 11 12"), None);
    }

    #[test]
    fn system_stat_first_cpu_line() {
        let text = "cpu  100 5 50 1000 20 0 7 3 0 0\ncpu0 50 2 25 500 10 0 3 1 0 0\nintr 1 2 3\n";
        let s = parse_system_stat(text).expect("parses");
        assert_eq!(s.total_ticks, 100 + 5 + 50 + 1000 + 20 + 7 + 3);
        assert_eq!(s.idle_ticks, 1020);
        assert_eq!(s.softirq_ticks, 7);
    }

    #[test]
    fn system_stat_short_or_missing_line_is_none() {
        assert_eq!(parse_system_stat("cpu0 1 2 3\n"), None);
        assert_eq!(parse_system_stat("cpu  1 2 3\n"), None);
        assert_eq!(parse_system_stat("cpu  1 2 3 x 5 6 7 8\n"), None);
    }
}
