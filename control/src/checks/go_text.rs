//! Go's spelling of durations and system errors, which Consul's check
//! outputs carry (`Timed out (30s) running check`, `dial tcp 127.0.0.1:1:
//! connect: connection refused`). Pure.

use std::time::Duration;

/// Go's `time.Duration.String()`: `0s`, `250ms`, `1.5s`, `1m30s`, `1h0m0s`.
pub fn go_duration(d: Duration) -> String {
    const NS_PER_S: u128 = 1_000_000_000;
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", with_fraction(ns, 1_000, 3));
    }
    if ns < NS_PER_S {
        return format!("{}ms", with_fraction(ns, 1_000_000, 6));
    }
    let hours = ns / (3600 * NS_PER_S);
    let minutes = ns / (60 * NS_PER_S) % 60;
    let seconds = with_fraction(ns % (60 * NS_PER_S), NS_PER_S, 9);
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

/// `value / unit` with the fraction's trailing zeros trimmed.
fn with_fraction(value: u128, unit: u128, digits: usize) -> String {
    let whole = value / unit;
    let fraction = value % unit;
    if fraction == 0 {
        return whole.to_string();
    }
    let fraction = format!("{fraction:0digits$}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

/// A system error as Go's `syscall.Errno` spells it: the C library's text
/// with a lower-case first letter (`connection refused`).
pub fn go_errno_text(error: &std::io::Error) -> String {
    if let Some(code) = error.raw_os_error() {
        let text = std::io::Error::from_raw_os_error(code).to_string();
        let text = text.split(" (os error").next().unwrap_or(&text);
        return lower_first(text);
    }
    match error.kind() {
        std::io::ErrorKind::TimedOut => "i/o timeout".to_string(),
        _ => lower_first(&error.to_string()),
    }
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(12)), "12ns");
        assert_eq!(go_duration(Duration::from_nanos(1_500)), "1.5µs");
        assert_eq!(go_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(go_duration(Duration::from_micros(1_250)), "1.25ms");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(1_500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_millis(3_723_500)), "1h2m3.5s");
    }

    #[test]
    fn errno_text_like_go() {
        let refused = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(go_errno_text(&refused), "connection refused");
        let timed_out = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert_eq!(go_errno_text(&timed_out), "i/o timeout");
        assert_eq!(go_errno_text(&std::io::Error::other("Boom")), "boom");
    }
}
