//! Go's `time.ParseDuration`, for `?wait=` and `?max_stale=`.
//!
//! A duration is an optional sign and a sequence of decimal numbers, each
//! with an optional fraction and a unit: `300ms`, `-1.5h`, `2h45m`, `60000ms`.
//! Units: `ns`, `us` (`µs`, `μs`), `ms`, `s`, `m`, `h`. `0` alone needs no
//! unit. The result is in nanoseconds and must fit an `i64`, as in Go.

use std::fmt;

/// Why a duration did not parse. Go reports `time: invalid duration "<s>"`
/// and friends; callers here only need to know it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Empty, a missing number or unit, or garbage.
    Invalid,
    /// A unit Go does not know (`10d`).
    UnknownUnit,
    /// Outside the range of `i64` nanoseconds (about 292 years).
    Overflow,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DurationError::Invalid => "invalid duration",
            DurationError::UnknownUnit => "unknown unit in duration",
            DurationError::Overflow => "duration out of range",
        })
    }
}

const NANOS_PER_MS: u64 = 1_000_000;

/// Parses a Go duration into signed nanoseconds.
pub fn parse_go_duration_ns(s: &str) -> Result<i64, DurationError> {
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(DurationError::Invalid);
    }
    // Accumulate in u64 like Go does, so that -9223372036854775808ns parses.
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (whole, after_whole) = leading_int(rest)?;
        let whole_digits = rest.len() - after_whole.len();
        rest = after_whole;
        let (mut fraction, mut fraction_scale, mut fraction_digits) = (0u64, 1.0f64, 0usize);
        if let Some(after_dot) = rest.strip_prefix('.') {
            let (f, scale, after_fraction) = leading_fraction(after_dot);
            fraction_digits = after_dot.len() - after_fraction.len();
            fraction = f;
            fraction_scale = scale;
            rest = after_fraction;
        }
        if whole_digits == 0 && fraction_digits == 0 {
            return Err(DurationError::Invalid);
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(DurationError::Invalid);
        }
        let unit_ns = unit_nanos(&rest[..unit_len])?;
        rest = &rest[unit_len..];
        let mut value = whole.checked_mul(unit_ns).ok_or(DurationError::Overflow)?;
        if fraction > 0 {
            // Go: v += uint64(float64(f) * (float64(unit) / scale))
            value = value
                .checked_add((fraction as f64 * (unit_ns as f64 / fraction_scale)) as u64)
                .ok_or(DurationError::Overflow)?;
        }
        total = total.checked_add(value).ok_or(DurationError::Overflow)?;
        if total > 1u64 << 63 {
            return Err(DurationError::Overflow);
        }
    }
    if negative {
        Ok((total as i64).wrapping_neg())
    } else if total > i64::MAX as u64 {
        Err(DurationError::Overflow)
    } else {
        Ok(total as i64)
    }
}

/// Parses a Go duration into milliseconds, truncating like Go's
/// `d / time.Millisecond`.
pub fn parse_go_duration_ms(s: &str) -> Result<i64, DurationError> {
    parse_go_duration_ns(s).map(|ns| ns / NANOS_PER_MS as i64)
}

fn leading_int(s: &str) -> Result<(u64, &str), DurationError> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let mut value: u64 = 0;
    for b in s[..digits].bytes() {
        if value > (1u64 << 63) / 10 {
            return Err(DurationError::Overflow);
        }
        value = value * 10 + u64::from(b - b'0');
        if value > 1u64 << 63 {
            return Err(DurationError::Overflow);
        }
    }
    Ok((value, &s[digits..]))
}

/// Go's `leadingFraction`: digits after the dot, ignoring those that would
/// overflow (they cannot change the result meaningfully).
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (mut value, mut scale, mut overflow) = (0u64, 1.0f64, false);
    for b in s[..digits].bytes() {
        if overflow {
            continue;
        }
        if value > (i64::MAX as u64) / 10 {
            overflow = true;
            continue;
        }
        let next = value * 10 + u64::from(b - b'0');
        if next > i64::MAX as u64 {
            overflow = true;
            continue;
        }
        value = next;
        scale *= 10.0;
    }
    (value, scale, &s[digits..])
}

fn unit_nanos(unit: &str) -> Result<u64, DurationError> {
    Ok(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => NANOS_PER_MS,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3600 * 1_000_000_000,
        _ => return Err(DurationError::UnknownUnit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn parses_go_examples() {
        assert_eq!(parse_go_duration_ns("10s"), Ok(10 * S));
        assert_eq!(parse_go_duration_ns("5m"), Ok(300 * S));
        assert_eq!(parse_go_duration_ns("60000ms"), Ok(60 * S));
        assert_eq!(parse_go_duration_ns("1h30m"), Ok(5400 * S));
        assert_eq!(parse_go_duration_ns("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_go_duration_ns(".5s"), Ok(500_000_000));
        assert_eq!(parse_go_duration_ns("1.s"), Ok(S));
        assert_eq!(parse_go_duration_ns("-1.5h"), Ok(-5400 * S));
        assert_eq!(parse_go_duration_ns("+3ms"), Ok(3_000_000));
        assert_eq!(parse_go_duration_ns("0"), Ok(0));
        assert_eq!(parse_go_duration_ns("-0"), Ok(0));
        assert_eq!(parse_go_duration_ns("0s"), Ok(0));
        assert_eq!(parse_go_duration_ns("1ns"), Ok(1));
        assert_eq!(parse_go_duration_ns("1us"), Ok(1_000));
        assert_eq!(parse_go_duration_ns("1µs"), Ok(1_000));
        assert_eq!(parse_go_duration_ns("1μs"), Ok(1_000));
        assert_eq!(parse_go_duration_ns("2h45m30.5s"), Ok(9930 * S + 500_000_000));
        assert_eq!(parse_go_duration_ns("0.000000001s"), Ok(1));
        assert_eq!(parse_go_duration_ns("9223372036854775807ns"), Ok(i64::MAX));
        assert_eq!(parse_go_duration_ns("-9223372036854775808ns"), Ok(i64::MIN));
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in ["", "1", "s", "-", "+", ".s", "1.2.3s", " 10s", "ms10", "--1s"] {
            assert_eq!(parse_go_duration_ns(bad), Err(DurationError::Invalid), "{bad:?}");
        }
        for bad in ["10d", "3sec", "1S", "1H", "1e3s", "10 s", "10s "] {
            assert_eq!(parse_go_duration_ns(bad), Err(DurationError::UnknownUnit), "{bad:?}");
        }
        for bad in ["9223372036854775808ns", "3000000h", "99999999999999999999s"] {
            assert_eq!(parse_go_duration_ns(bad), Err(DurationError::Overflow), "{bad:?}");
        }
    }

    #[test]
    fn milliseconds_truncate() {
        assert_eq!(parse_go_duration_ms("1500us"), Ok(1));
        assert_eq!(parse_go_duration_ms("60000ms"), Ok(60_000));
        assert_eq!(parse_go_duration_ms("-10s"), Ok(-10_000));
    }
}
