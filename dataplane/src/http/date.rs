//! The `Date` response header (RFC 9110 IMF-fixdate, as Go sends it):
//! pure formatting from unix seconds, plus a per-thread cache so a busy
//! core formats it once a second.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const HTTP_DATE_BYTES: usize = 29;

/// Formats `unix_secs` as an IMF-fixdate.
pub fn format_http_date(unix_secs: u64) -> [u8; HTTP_DATE_BYTES] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
    ];
    let days = unix_secs / 86_400;
    let secs_of_day = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS[(days % 7) as usize];
    let mut out = [0u8; HTTP_DATE_BYTES];
    out[..3].copy_from_slice(weekday);
    out[3..5].copy_from_slice(b", ");
    two_digits(&mut out[5..7], day);
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    out[11] = b' ';
    let year = year.min(9999);
    two_digits(&mut out[12..14], year / 100);
    two_digits(&mut out[14..16], year % 100);
    out[16] = b' ';
    two_digits(&mut out[17..19], secs_of_day / 3600);
    out[19] = b':';
    two_digits(&mut out[20..22], secs_of_day / 60 % 60);
    out[22] = b':';
    two_digits(&mut out[23..25], secs_of_day % 60);
    out[25..].copy_from_slice(b" GMT");
    out
}

fn two_digits(out: &mut [u8], value: u64) {
    out[0] = b'0' + (value / 10 % 10) as u8;
    out[1] = b'0' + (value % 10) as u8;
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31); Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

thread_local! {
    static CACHED: Cell<(u64, [u8; HTTP_DATE_BYTES])> = const { Cell::new((u64::MAX, [0; HTTP_DATE_BYTES])) };
}

/// The current date header value, formatted at most once a second per thread.
pub fn now() -> [u8; HTTP_DATE_BYTES] {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with(|cell| {
        let (cached_secs, cached) = cell.get();
        if cached_secs == secs {
            return cached;
        }
        let fresh = format_http_date(secs);
        cell.set((secs, fresh));
        fresh
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(secs: u64) -> String {
        String::from_utf8(format_http_date(secs).to_vec()).unwrap()
    }

    #[test]
    fn known_dates() {
        assert_eq!(fmt(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(fmt(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(fmt(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(fmt(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(fmt(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
    }

    #[test]
    fn cached_value_is_a_valid_date() {
        let a = now();
        assert_eq!(&a[25..], b" GMT");
        assert_eq!(a[3], b',');
    }
}
