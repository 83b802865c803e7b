//! A streaming JSON writer that renders straight into an output buffer and
//! matches Go's `encoding/json` byte for byte: the same string escaping
//! (`<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c` ...), the same
//! float formatting, and `json.MarshalIndent(v, "", "    ")` plus a trailing
//! newline in pretty mode (what Consul sends for `?pretty` and `-dev`).
//!
//! No allocation of its own; the caller owns the buffer.

use base64::Engine;

/// Deepest nesting the writer supports (one bit of state per level).
pub const DEPTH_MAX: u32 = 63;

/// Writes one JSON document into `out`.
pub struct JsonWriter<'o> {
    out: &'o mut Vec<u8>,
    pretty: bool,
    /// Open containers.
    depth: u32,
    /// Bit `d` is set when the container at depth `d` has an element.
    nonempty: u64,
    /// The next value completes a `"key":` pair (no separator before it).
    after_key: bool,
}

impl<'o> JsonWriter<'o> {
    /// A writer appending to `out`; `pretty` selects 4-space indentation.
    pub fn new(out: &'o mut Vec<u8>, pretty: bool) -> JsonWriter<'o> {
        JsonWriter {
            out,
            pretty,
            depth: 0,
            nonempty: 0,
            after_key: false,
        }
    }

    /// Ends the document: pretty output gets Consul's trailing newline.
    pub fn finish(self) {
        assert_eq!(self.depth, 0, "JSON document finished with open containers");
        if self.pretty {
            self.out.push(b'\n');
        }
    }

    /// Opens an object in value position.
    pub fn begin_object(&mut self) {
        self.open(b'{');
    }

    /// Closes the innermost object.
    pub fn end_object(&mut self) {
        self.close(b'}');
    }

    /// Opens an array in value position.
    pub fn begin_array(&mut self) {
        self.open(b'[');
    }

    /// Closes the innermost array.
    pub fn end_array(&mut self) {
        self.close(b']');
    }

    /// Writes an object key; the next call writes its value.
    pub fn key(&mut self, key: &str) {
        debug_assert!(!self.after_key, "two keys in a row");
        self.element_prefix();
        write_escaped_str(self.out, key);
        if self.pretty {
            self.out.extend_from_slice(b": ");
        } else {
            self.out.push(b':');
        }
        self.after_key = true;
    }

    /// A string value.
    pub fn string(&mut self, value: &str) {
        self.value_prefix();
        write_escaped_str(self.out, value);
    }

    /// An unsigned integer value (full u64 range, never a float).
    pub fn u64(&mut self, value: u64) {
        self.value_prefix();
        let mut buf = itoa::Buffer::new();
        self.out.extend_from_slice(buf.format(value).as_bytes());
    }

    /// A signed integer value.
    pub fn i64(&mut self, value: i64) {
        self.value_prefix();
        let mut buf = itoa::Buffer::new();
        self.out.extend_from_slice(buf.format(value).as_bytes());
    }

    /// A float, formatted as Go's `encoding/json` does (`0`, `1.5`,
    /// `0.00001`, `1e-7`, `1e+21`). Non-finite values become `null`.
    pub fn f64(&mut self, value: f64) {
        self.value_prefix();
        write_go_float(self.out, value);
    }

    /// `true` or `false`.
    pub fn bool(&mut self, value: bool) {
        self.value_prefix();
        self.out.extend_from_slice(if value { b"true" } else { b"false" });
    }

    /// `null`.
    pub fn null(&mut self) {
        self.value_prefix();
        self.out.extend_from_slice(b"null");
    }

    /// Bytes as Go renders a `[]byte`: standard padded base64, or `null`
    /// when empty (Consul's KV `Value` for an empty value).
    pub fn base64_or_null(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            self.null();
            return;
        }
        self.value_prefix();
        self.out.push(b'"');
        let start = self.out.len();
        let encoded_len = base64::encoded_len(bytes.len(), true).expect("value length fits base64");
        self.out.resize(start + encoded_len, 0);
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(bytes, &mut self.out[start..])
            .expect("output sized by encoded_len");
        debug_assert_eq!(written, encoded_len);
        self.out.push(b'"');
    }

    /// A string array value.
    pub fn string_array<'s>(&mut self, items: impl IntoIterator<Item = &'s str>) {
        self.begin_array();
        for item in items {
            self.string(item);
        }
        self.end_array();
    }

    fn open(&mut self, bracket: u8) {
        self.value_prefix();
        assert!(self.depth < DEPTH_MAX, "JSON nesting deeper than {DEPTH_MAX}");
        self.depth += 1;
        self.nonempty &= !(1u64 << self.depth);
        self.out.push(bracket);
    }

    fn close(&mut self, bracket: u8) {
        assert!(self.depth > 0, "JSON container closed twice");
        debug_assert!(!self.after_key, "key without a value");
        let had_elements = self.nonempty & (1u64 << self.depth) != 0;
        self.depth -= 1;
        if self.pretty && had_elements {
            self.newline_indent();
        }
        self.out.push(bracket);
    }

    fn value_prefix(&mut self) {
        if self.after_key {
            self.after_key = false;
        } else if self.depth > 0 {
            self.element_prefix();
        }
    }

    fn element_prefix(&mut self) {
        let bit = 1u64 << self.depth;
        if self.nonempty & bit != 0 {
            self.out.push(b',');
        }
        self.nonempty |= bit;
        if self.pretty {
            self.newline_indent();
        }
    }

    fn newline_indent(&mut self) {
        self.out.push(b'\n');
        for _ in 0..self.depth {
            self.out.extend_from_slice(b"    ");
        }
    }
}

/// What a byte needs when it appears in a JSON string (Go rules).
const PLAIN: u8 = 0;
/// Escaped as `\u00XX`.
const UNICODE: u8 = 1;
/// First byte of U+2028 / U+2029 (`E2 80 A8` / `E2 80 A9`): look ahead.
const LEAD_E2: u8 = 2;

const fn escape_table() -> [u8; 256] {
    let mut t = [PLAIN; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = UNICODE;
        b += 1;
    }
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t[b'<' as usize] = UNICODE;
    t[b'>' as usize] = UNICODE;
    t[b'&' as usize] = UNICODE;
    t[0xe2] = LEAD_E2;
    t
}

static ESCAPE: [u8; 256] = escape_table();
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `s` as a quoted JSON string with Go's escaping.
pub fn write_escaped_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let kind = ESCAPE[b as usize];
        if kind == PLAIN {
            i += 1;
            continue;
        }
        if kind == LEAD_E2 {
            let separator = bytes.get(i + 1) == Some(&0x80) && matches!(bytes.get(i + 2), Some(0xa8) | Some(0xa9));
            if !separator {
                i += 1;
                continue;
            }
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(if bytes[i + 2] == 0xa8 { b"\\u2028" } else { b"\\u2029" });
            i += 3;
            start = i;
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if kind == UNICODE {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]);
        } else {
            out.extend_from_slice(&[b'\\', kind]);
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Formats a float as Go's `encoding/json`: shortest round-trip digits,
/// plain notation for 1e-6 <= |v| < 1e21, exponent notation outside it.
pub fn write_go_float(out: &mut Vec<u8>, value: f64) {
    use std::io::Write;
    if !value.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let abs = value.abs();
    if abs == 0.0 {
        out.push(b'0');
    } else if (1e-6..1e21).contains(&abs) {
        // Display gives the shortest round-trip digits without an exponent.
        write!(out, "{value}").expect("writing to a Vec cannot fail");
    } else {
        let start = out.len();
        write!(out, "{value:e}").expect("writing to a Vec cannot fail");
        // Go writes a sign on positive exponents (`1e+21`).
        if let Some(e) = out[start..].iter().position(|&b| b == b'e') {
            let at = start + e + 1;
            if out.get(at) != Some(&b'-') {
                out.insert(at, b'+');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(pretty: bool, f: impl FnOnce(&mut JsonWriter)) -> String {
        let mut out = Vec::new();
        let mut w = JsonWriter::new(&mut out, pretty);
        f(&mut w);
        w.finish();
        String::from_utf8(out).unwrap()
    }

    fn escaped(s: &str) -> String {
        let mut out = Vec::new();
        write_escaped_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escaping_matches_go() {
        assert_eq!(escaped("plain/key"), r#""plain/key""#);
        assert_eq!(escaped("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(escaped("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(escaped("\u{1}\u{1f}"), r#""\u0001\u001f""#);
        assert_eq!(escaped("<a&b>"), r#""\u003ca\u0026b\u003e""#);
        assert_eq!(escaped("x\u{2028}y\u{2029}z"), r#""x\u2028y\u2029z""#);
        // Other characters starting with 0xE2 pass through unchanged.
        assert_eq!(escaped("€ → ✓"), "\"€ → ✓\"");
        assert_eq!(escaped("\u{7f}é日本"), "\"\u{7f}é日本\"");
        assert_eq!(escaped(""), r#""""#);
    }

    #[test]
    fn escaping_agrees_with_serde_json_outside_go_extras() {
        // Every string serde_json escapes identically must come out the
        // same; every string must parse back to itself.
        let samples = [
            "simple",
            "with \"quotes\" and \\ backslashes",
            "controls \u{0}\u{1}\u{2}\u{7}\u{b}\u{e}\u{1b}\u{1f}",
            "tabs\tnew\nlines\r",
            "unicode ünïcödé 中文 🎉",
            "\u{7f}\u{80}\u{9f}",
        ];
        for s in samples {
            assert_eq!(escaped(s), serde_json::to_string(s).unwrap(), "for {s:?}");
        }
        for s in samples.iter().copied().chain(["<tag>&", "\u{2028}\u{2029}", "\u{e2}x"]) {
            let back: String = serde_json::from_str(&escaped(s)).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn compact_document() {
        let s = render(false, |w| {
            w.begin_object();
            w.key("A");
            w.u64(u64::MAX);
            w.key("B");
            w.begin_array();
            w.string("x");
            w.null();
            w.bool(true);
            w.end_array();
            w.key("C");
            w.begin_object();
            w.end_object();
            w.key("D");
            w.begin_array();
            w.end_array();
            w.key("E");
            w.i64(-3);
            w.end_object();
        });
        assert_eq!(
            s,
            r#"{"A":18446744073709551615,"B":["x",null,true],"C":{},"D":[],"E":-3}"#
        );
    }

    #[test]
    fn pretty_document_matches_go_marshal_indent() {
        let s = render(true, |w| {
            w.begin_array();
            // Keys in sorted order so serde_json's map renders them alike.
            w.begin_object();
            w.key("List");
            w.string_array(["a", "b"]);
            w.key("LockIndex");
            w.u64(0);
            w.key("Meta");
            w.begin_object();
            w.end_object();
            w.key("Tags");
            w.begin_array();
            w.end_array();
            w.end_object();
            w.end_array();
        });
        let expected = "[\n    {\n        \"List\": [\n            \"a\",\n            \"b\"\n        ],\n        \"LockIndex\": 0,\n        \"Meta\": {},\n        \"Tags\": []\n    }\n]\n";
        assert_eq!(s, expected);
        // Same structure as serde_json's 4-space pretty printer.
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        let mut serde_out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut serde_out, fmt);
        serde::Serialize::serialize(&v, &mut ser).unwrap();
        serde_out.push(b'\n');
        assert_eq!(String::from_utf8(serde_out).unwrap(), expected);
    }

    #[test]
    fn scalar_documents() {
        assert_eq!(render(false, |w| w.bool(true)), "true");
        assert_eq!(render(true, |w| w.bool(false)), "false\n");
        assert_eq!(render(false, |w| w.string("")), r#""""#);
        assert_eq!(render(false, |w| w.string_array([])), "[]");
    }

    #[test]
    fn base64_values() {
        assert_eq!(render(false, |w| w.base64_or_null(b"")), "null");
        assert_eq!(render(false, |w| w.base64_or_null(b"test")), r#""dGVzdA==""#);
        assert_eq!(render(false, |w| w.base64_or_null(&[0xff, 0xfe])), r#""//4=""#);
    }

    #[test]
    fn floats_match_go() {
        let f = |v: f64| {
            let mut out = Vec::new();
            write_go_float(&mut out, v);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(f(0.0), "0");
        assert_eq!(f(-0.0), "0");
        assert_eq!(f(1.5), "1.5");
        assert_eq!(f(10.0e-6), "0.00001");
        assert_eq!(f(1e-7), "1e-7");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(123456.0), "123456");
        assert_eq!(f(-2.25), "-2.25");
        assert_eq!(f(f64::NAN), "null");
    }

    #[test]
    #[should_panic(expected = "open containers")]
    fn unfinished_document_is_a_bug() {
        let mut out = Vec::new();
        let mut w = JsonWriter::new(&mut out, false);
        w.begin_array();
        w.finish();
    }
}
