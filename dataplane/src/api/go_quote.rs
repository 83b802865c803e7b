//! Go's `strconv.Quote` (`%q`), for error messages that must read exactly
//! like Consul's (`invalid session "abc"`, `Invalid max_stale value "x"`).

use std::fmt::Write;

/// Quotes `s` as Go's `strconv.Quote` does: `\a \b \f \n \r \t \v \\ \"`
/// escapes, printable characters as they are, other control characters as
/// `\xNN` (ASCII) or `\uNNNN`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                write!(out, "\\x{:02x}", c as u32).expect("writing to a String cannot fail");
            }
            c if c.is_control() => {
                write!(out, "\\u{:04x}", c as u32).expect("writing to a String cannot fail");
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::go_quote;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("abc"), r#""abc""#);
        assert_eq!(go_quote(""), r#""""#);
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\n\t\r\u{7}\u{8}\u{b}\u{c}"), r#""\n\t\r\a\b\v\f""#);
        assert_eq!(go_quote("\u{1}\u{7f}"), r#""\x01\x7f""#);
        assert_eq!(go_quote("\u{85}"), r#""\u0085""#);
        assert_eq!(go_quote("héllo 世界"), "\"héllo 世界\"");
    }
}
