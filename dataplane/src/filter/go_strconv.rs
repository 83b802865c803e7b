//! The few Go `strconv` rules go-bexpr relies on, as pure functions:
//! unquoting string literals (`strconv.Unquote`) and coercing a literal to
//! the type of the field it is compared with (`ParseBool`, `ParseInt` and
//! `ParseUint` with base 0, `ParseFloat`).

/// Go's `strconv.Unquote` for a literal the grammar already delimited:
/// `` `raw` `` (carriage returns dropped) or `"escaped"`. `None` is Go's
/// "invalid syntax". Escapes producing bytes that are not UTF-8 (`"\xff"`)
/// are replaced by U+FFFD.
pub(crate) fn unquote(literal: &str) -> Option<String> {
    if let Some(body) = literal.strip_prefix('`').and_then(|rest| rest.strip_suffix('`')) {
        if body.contains('`') {
            return None;
        }
        return Some(body.chars().filter(|&c| c != '\r').collect());
    }
    let body = literal.strip_prefix('"')?.strip_suffix('"')?;
    if body.contains('\n') || body.contains('"') {
        return None;
    }
    if !body.contains('\\') {
        return Some(body.to_string());
    }
    let mut bytes = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(c) = rest.chars().next() {
        if c != '\\' {
            let mut utf8 = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            rest = &rest[c.len_utf8()..];
            continue;
        }
        rest = unescape_one(&rest[1..], &mut bytes)?;
    }
    Some(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// Decodes the escape after a backslash into `out`; returns what follows.
fn unescape_one<'s>(after_backslash: &'s str, out: &mut Vec<u8>) -> Option<&'s str> {
    let kind = after_backslash.chars().next().filter(char::is_ascii)? as u8;
    let rest = &after_backslash[1..];
    let simple = match kind {
        b'a' => Some(0x07),
        b'b' => Some(0x08),
        b'f' => Some(0x0c),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(0x0b),
        b'\\' => Some(b'\\'),
        b'"' => Some(b'"'),
        _ => None,
    };
    if let Some(byte) = simple {
        out.push(byte);
        return Some(rest);
    }
    match kind {
        b'x' => {
            let digits = rest.get(..2)?;
            out.push(u8::from_str_radix(digits, 16).ok().filter(|_| is_hex(digits))?);
            Some(&rest[2..])
        }
        b'0'..=b'7' => {
            let digits = after_backslash.get(..3)?;
            if !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return None;
            }
            out.push(u8::try_from(u32::from_str_radix(digits, 8).ok()?).ok()?);
            Some(&after_backslash[3..])
        }
        b'u' | b'U' => {
            let width = if kind == b'u' { 4 } else { 8 };
            let digits = rest.get(..width)?;
            if !is_hex(digits) {
                return None;
            }
            let c = char::from_u32(u32::from_str_radix(digits, 16).ok()?)?;
            let mut utf8 = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            Some(&rest[width..])
        }
        _ => None,
    }
}

fn is_hex(digits: &str) -> bool {
    digits.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: optional sign, `0x`/`0o`/`0b`/`0`
/// prefixes, `_` digit separators.
pub(crate) fn parse_i64(s: &str) -> Option<i64> {
    let (negative, unsigned) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = parse_u64(unsigned)?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !underscores_ok(s) {
        return None;
    }
    let bytes = s.as_bytes();
    let (radix, digits) = if bytes[0] == b'0' && bytes.len() > 1 {
        match bytes[1].to_ascii_lowercase() {
            b'b' if bytes.len() >= 3 => (2, &s[2..]),
            b'o' if bytes.len() >= 3 => (8, &s[2..]),
            b'x' if bytes.len() >= 3 => (16, &s[2..]),
            _ => (8, &s[1..]),
        }
    } else {
        (10, s)
    };
    let mut value: u64 = 0;
    let mut any_digit = false;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let digit = c.to_digit(radix)?;
        value = value.checked_mul(u64::from(radix))?.checked_add(u64::from(digit))?;
        any_digit = true;
    }
    any_digit.then_some(value)
}

/// Go's `underscoreOK`: `_` only between digits (a base prefix counts as a
/// digit), never first, last or doubled.
fn underscores_ok(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut index = 0;
    let mut last = b'^';
    let mut hex = false;
    if bytes.len() >= 2 && bytes[0] == b'0' && matches!(bytes[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        index = 2;
        last = b'0';
        hex = bytes[1].eq_ignore_ascii_case(&b'x');
    }
    for &b in &bytes[index..] {
        if b.is_ascii_digit() || (hex && b.is_ascii_hexdigit()) {
            last = b'0';
        } else if b == b'_' {
            if last != b'0' {
                return false;
            }
            last = b'_';
        } else if last == b'_' {
            return false;
        } else {
            last = b'!';
        }
    }
    last != b'_'
}

/// Go's `strconv.ParseFloat(s, 64)` for the decimal forms a filter uses.
pub(crate) fn parse_f64(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains('_') {
        return None;
    }
    s.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquote_raw_strings_keep_everything_but_carriage_returns() {
        assert_eq!(unquote("`a\\nb`").as_deref(), Some("a\\nb"));
        assert_eq!(unquote("`a\r\nb`").as_deref(), Some("a\nb"));
        assert_eq!(unquote("``").as_deref(), Some(""));
    }

    #[test]
    fn unquote_interprets_go_escapes() {
        assert_eq!(unquote(r#""plain""#).as_deref(), Some("plain"));
        assert_eq!(unquote(r#""a\tb\n""#).as_deref(), Some("a\tb\n"));
        assert_eq!(unquote(r#""\x41\101\u00e9\U0001F600""#).as_deref(), Some("AAé😀"));
        assert_eq!(
            unquote(r#""\\ \a\b\f\v\r""#).as_deref(),
            Some("\\ \u{7}\u{8}\u{c}\u{b}\r")
        );
        assert_eq!(unquote("\"tab\there\"").as_deref(), Some("tab\there"));
        assert_eq!(unquote(r#""\xff""#).as_deref(), Some("\u{fffd}"));
    }

    #[test]
    fn unquote_rejects_what_go_rejects() {
        for bad in [
            r#""\q""#,
            r#""\é""#,
            r#""\'""#,
            r#""\x4""#,
            r#""\xZZ""#,
            r#""\400""#,
            r#""\12""#,
            r#""\uD800""#,
            r#""\U00110000""#,
            r#""trailing\""#,
            "\"new\nline\"",
            "\"unterminated",
            "no quotes",
        ] {
            assert_eq!(unquote(bad), None, "{bad:?} must be invalid syntax");
        }
    }

    #[test]
    fn parse_bool_accepts_exactly_go_spellings() {
        for yes in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(yes), Some(true));
        }
        for no in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(no), Some(false));
        }
        for bad in ["", "yes", "tRuE", "2"] {
            assert_eq!(parse_bool(bad), None);
        }
    }

    #[test]
    fn parse_integers_with_go_base_prefixes() {
        assert_eq!(parse_i64("80"), Some(80));
        assert_eq!(parse_i64("-80"), Some(-80));
        assert_eq!(parse_i64("+7"), Some(7));
        assert_eq!(parse_i64("0x50"), Some(80));
        assert_eq!(parse_i64("0X1f"), Some(31));
        assert_eq!(parse_i64("0o17"), Some(15));
        assert_eq!(parse_i64("017"), Some(15));
        assert_eq!(parse_i64("0b101"), Some(5));
        assert_eq!(parse_i64("1_000"), Some(1000));
        assert_eq!(parse_i64("0x_1F"), Some(31));
        assert_eq!(parse_i64("0"), Some(0));
        assert_eq!(parse_i64("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "-",
            "08",
            "0x",
            "1__0",
            "_1",
            "1_",
            "abc",
            "9223372036854775808",
            "1.5",
        ] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64("18446744073709551616"), None);
    }

    #[test]
    fn parse_floats() {
        assert_eq!(parse_f64("1.5"), Some(1.5));
        assert_eq!(parse_f64("-0.25"), Some(-0.25));
        assert_eq!(parse_f64("1e3"), Some(1000.0));
        assert_eq!(parse_f64("x"), None);
        assert_eq!(parse_f64(""), None);
    }
}
