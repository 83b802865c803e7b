//! Go's `time.Duration.String()` for non-negative durations, formatted on
//! the stack: `0s`, `500ms`, `1.5µs`, `10s`, `1m30s`, `1h0m0s`. Consul
//! renders check intervals and timeouts this way.

/// Longest text of a `u64` nanosecond count (`5124095h34m33.709551615s`
/// is 24 bytes; `µ` takes two).
const TEXT_BYTES_MAX: usize = 32;

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// The text of one duration.
pub struct GoDurationText {
    buf: [u8; TEXT_BYTES_MAX],
    start: usize,
}

impl GoDurationText {
    /// Formats `ns` nanoseconds as Go does.
    pub fn new(ns: u64) -> GoDurationText {
        let mut buf = [0u8; TEXT_BYTES_MAX];
        let mut w = TEXT_BYTES_MAX;
        let mut u = ns;
        w -= 1;
        buf[w] = b's';
        if u < NANOS_PER_SECOND {
            let precision = if u == 0 {
                w -= 1;
                buf[w] = b'0';
                return GoDurationText { buf, start: w };
            } else if u < NANOS_PER_MICRO {
                w -= 1;
                buf[w] = b'n';
                0
            } else if u < NANOS_PER_MILLI {
                w -= 2;
                buf[w..w + 2].copy_from_slice("µ".as_bytes());
                3
            } else {
                w -= 1;
                buf[w] = b'm';
                6
            };
            (w, u) = write_fraction(&mut buf, w, u, precision);
            w = write_integer(&mut buf, w, u);
        } else {
            (w, u) = write_fraction(&mut buf, w, u, 9);
            w = write_integer(&mut buf, w, u % 60);
            u /= 60;
            if u > 0 {
                w -= 1;
                buf[w] = b'm';
                w = write_integer(&mut buf, w, u % 60);
                u /= 60;
                if u > 0 {
                    w -= 1;
                    buf[w] = b'h';
                    w = write_integer(&mut buf, w, u);
                }
            }
        }
        GoDurationText { buf, start: w }
    }

    /// The formatted text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[self.start..]).expect("duration text is ASCII or µ")
    }
}

/// Go's `fmtFrac`: the `precision` low digits of `v` as a fraction without
/// trailing zeros (nothing when they are all zero), right-aligned before
/// `w`. Returns the new start and `v` without those digits.
fn write_fraction(buf: &mut [u8; TEXT_BYTES_MAX], mut w: usize, mut v: u64, precision: u32) -> (usize, u64) {
    let mut printing = false;
    for _ in 0..precision {
        let digit = (v % 10) as u8;
        printing |= digit != 0;
        if printing {
            w -= 1;
            buf[w] = b'0' + digit;
        }
        v /= 10;
    }
    if printing {
        w -= 1;
        buf[w] = b'.';
    }
    (w, v)
}

/// Go's `fmtInt`: `v` in decimal, right-aligned before `w`.
fn write_integer(buf: &mut [u8; TEXT_BYTES_MAX], mut w: usize, mut v: u64) -> usize {
    if v == 0 {
        w -= 1;
        buf[w] = b'0';
        return w;
    }
    while v > 0 {
        w -= 1;
        buf[w] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(ns: u64) -> String {
        GoDurationText::new(ns).as_str().to_string()
    }

    #[test]
    fn matches_go_duration_string() {
        let s = NANOS_PER_SECOND;
        assert_eq!(text(0), "0s");
        assert_eq!(text(1), "1ns");
        assert_eq!(text(999), "999ns");
        assert_eq!(text(1_100), "1.1µs");
        assert_eq!(text(2_200_000), "2.2ms");
        assert_eq!(text(500 * NANOS_PER_MILLI), "500ms");
        assert_eq!(text(s), "1s");
        assert_eq!(text(10 * s), "10s");
        assert_eq!(text(1_500_000_000), "1.5s");
        assert_eq!(text(90 * s), "1m30s");
        assert_eq!(text(60 * s), "1m0s");
        assert_eq!(text(3600 * s), "1h0m0s");
        assert_eq!(text(3723 * s + 4_000_000), "1h2m3.004s");
        assert_eq!(text(u64::MAX), "5124095h34m33.709551615s");
    }
}
