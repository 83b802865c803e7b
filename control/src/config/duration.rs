//! Go duration strings (`300s`, `1m30s`, `60000ms`, `1.5h`), as Consul's
//! config and query parameters spell them. Pure.

/// Longest duration accepted, in milliseconds (a year): anything longer is a
/// typo, and the bound keeps the arithmetic far from overflow.
pub const DURATION_MS_MAX: u64 = 365 * 24 * 3600 * 1000;

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("time: invalid duration {0:?}")]
    Invalid(String),
    #[error("duration {0:?} exceeds the {DURATION_MS_MAX} ms limit")]
    TooLong(String),
}

fn unit_ns(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1.0,
        "us" | "µs" | "μs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return None,
    })
}

/// Parses a Go duration into whole milliseconds (rounded down). Negative
/// durations are refused: no setting here means anything by them.
pub fn parse_duration_ms(text: &str) -> Result<u64, DurationError> {
    let invalid = || DurationError::Invalid(text.to_string());
    let s = text.strip_prefix('+').unwrap_or(text);
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total_ns = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let ns = unit_ns(&rest[..unit_len]).ok_or_else(invalid)?;
        rest = &rest[unit_len..];
        total_ns += value * ns;
        if total_ns / 1e6 > DURATION_MS_MAX as f64 {
            return Err(DurationError::TooLong(text.to_string()));
        }
    }
    Ok((total_ns / 1e6) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_forms() {
        assert_eq!(parse_duration_ms("300s"), Ok(300_000));
        assert_eq!(parse_duration_ms("60000ms"), Ok(60_000));
        assert_eq!(parse_duration_ms("1m30s"), Ok(90_000));
        assert_eq!(parse_duration_ms("1.5h"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("0"), Ok(0));
        assert_eq!(parse_duration_ms("1500us"), Ok(1));
        assert_eq!(parse_duration_ms("+10m"), Ok(600_000));
    }

    #[test]
    fn bad_forms() {
        for bad in ["", "10", "s", "1x", "-5s", "1..2s", ".s", "5 s"] {
            assert_eq!(parse_duration_ms(bad), Err(DurationError::Invalid(bad.into())), "{bad}");
        }
        assert_eq!(
            parse_duration_ms("100000h"),
            Err(DurationError::TooLong("100000h".into()))
        );
    }
}
