//! The bytes of one write for each system measured, and what counts as its
//! acknowledgement (pure). Consul: `PUT /v1/kv/<key>` with the raw value as
//! body, answered `200 true`. etcd 3.4: `POST /v3/kv/put` on its HTTP/JSON
//! gateway with base64 key and value, answered `200` with a JSON object
//! holding the raft `header`.

use clap::ValueEnum;

/// The API a write speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteProtocol {
    /// Consul's KV API (Proconsul).
    Consul,
    /// etcd v3's HTTP/JSON gateway.
    Etcd,
}

const BASE64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4), as etcd's gateway expects
/// for `bytes` fields and as Consul renders KV values.
pub fn base64_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for (i, s) in sextets.iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(BASE64_ALPHABET[*s as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The request bytes of writing `value` under `key` to `host`.
pub fn put_request(protocol: WriteProtocol, host: &str, key: &str, value: &[u8]) -> Vec<u8> {
    match protocol {
        WriteProtocol::Consul => crate::http::prepare_kv::put_request(host, key, value),
        WriteProtocol::Etcd => {
            let body = format!(
                "{{\"key\":\"{}\",\"value\":\"{}\"}}",
                base64_encode(key.as_bytes()),
                base64_encode(value)
            );
            let mut req = format!(
                "POST /v3/kv/put HTTP/1.1\r\nHost: {host}\r\nUser-Agent: proconsul-loadtest\r\n\
Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            req.extend_from_slice(body.as_bytes());
            req
        }
    }
}

/// Whether `(status, body)` acknowledges a write.
pub fn is_acked(protocol: WriteProtocol, status: u16, body: &[u8]) -> bool {
    if status != 200 {
        return false;
    }
    match protocol {
        WriteProtocol::Consul => body.trim_ascii() == b"true",
        // A put answers `{"header":{"cluster_id":..,"revision":..}}`; an
        // error answers a non-200 status with `{"error":..,"code":..}`.
        WriteProtocol::Etcd => body.windows(8).any(|w| w == b"\"header\""),
    }
}

/// Key number `i` of the key space (`<prefix><i>`, six digits at least).
pub fn key_name(prefix: &str, i: u64) -> String {
    format!("{prefix}{i:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let vectors: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in vectors {
            assert_eq!(base64_encode(input), expected, "{input:?}");
        }
        assert_eq!(base64_encode(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn etcd_put_is_a_json_post_with_base64_fields() {
        let req = put_request(WriteProtocol::Etcd, "127.0.0.1:2379", "k1", b"v");
        let text = String::from_utf8(req).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /v3/kv/put HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("Host: 127.0.0.1:2379\r\n"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert_eq!(body, r#"{"key":"azE=","value":"dg=="}"#);
        let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(parsed["key"], "azE=");
    }

    #[test]
    fn consul_put_carries_the_raw_value() {
        let req = put_request(WriteProtocol::Consul, "127.0.0.1:8500", "bench/k", b"abc");
        let text = String::from_utf8(req).unwrap();
        assert!(text.starts_with("PUT /v1/kv/bench/k HTTP/1.1\r\n"), "{text}");
        assert!(text.ends_with("Content-Length: 3\r\n\r\nabc"), "{text}");
    }

    #[test]
    fn acknowledgements_per_protocol() {
        assert!(is_acked(WriteProtocol::Consul, 200, b"true\n"));
        assert!(!is_acked(WriteProtocol::Consul, 200, b"false"));
        assert!(!is_acked(WriteProtocol::Consul, 500, b"true"));
        let ok = br#"{"header":{"cluster_id":"1","member_id":"2","revision":"7","raft_term":"2"}}"#;
        assert!(is_acked(WriteProtocol::Etcd, 200, ok));
        assert!(!is_acked(WriteProtocol::Etcd, 200, b"{}"));
        assert!(!is_acked(
            WriteProtocol::Etcd,
            503,
            br#"{"error":"etcdserver: leader changed","code":14}"#
        ));
    }

    #[test]
    fn key_names_are_zero_padded() {
        assert_eq!(key_name("bench/w-", 7), "bench/w-000007");
        assert_eq!(key_name("k", 1_234_567), "k1234567");
    }
}
