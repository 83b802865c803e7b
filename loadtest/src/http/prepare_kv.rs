//! The `prepare-kv` sub-command: writes `--keys` keys of `--value-bytes`
//! through `PUT /v1/kv/<key>`, on a few keep-alive connections.

use std::time::Duration;

use anyhow::Context;
use rand::distributions::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cli::PrepareKvArgs;
use crate::http::bulk_write::write_all;

/// Key number `i` under `prefix`.
pub fn key_name(prefix: &str, i: u64) -> String {
    format!("{prefix}{i:06}")
}

/// The value of key number `i`: printable, `len` bytes, the same for the
/// same seed whichever writer writes it.
pub fn value_for(seed: u64, i: u64, len: usize) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    (0..len).map(|_| rng.sample(Alphanumeric)).collect()
}

/// The bytes of `PUT /v1/kv/<key>` with `value` as body.
pub fn put_request(host: &str, key: &str, value: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "PUT /v1/kv/{key} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: proconsul-loadtest\r\n\
Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        value.len()
    )
    .into_bytes();
    req.extend_from_slice(value);
    req
}

/// Runs the `prepare-kv` sub-command.
pub fn run(args: PrepareKvArgs) -> anyhow::Result<()> {
    args.validate()?;
    let host = args.target.to_string();
    let outcome = write_all(
        args.target,
        args.connections,
        Duration::from_millis(args.timeout_ms),
        args.keys,
        |i| {
            let key = key_name(&args.prefix, i);
            let request = put_request(&host, &key, &value_for(args.seed, i, args.value_bytes));
            (key, request)
        },
    )
    .context("prepare-kv")?;
    if let Some(path) = &args.paths_out {
        let mut text = String::with_capacity(args.keys as usize * (args.prefix.len() + 16));
        for i in 0..args.keys {
            text.push_str("/v1/kv/");
            text.push_str(&key_name(&args.prefix, i));
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "{}",
        serde_json::json!({
            "mode": "prepare-kv",
            "target": host,
            "keys": outcome.written,
            "value_bytes": args.value_bytes,
            "first_key": key_name(&args.prefix, 0),
            "elapsed_s": outcome.elapsed_s,
            "writes_per_s": outcome.written as f64 / outcome.elapsed_s.max(1e-9),
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_deterministic() {
        assert_eq!(key_name("bench/key-", 7), "bench/key-000007");
        assert_eq!(key_name("k", 1_234_567), "k1234567");
        let v = value_for(1, 7, 300);
        assert_eq!(v.len(), 300);
        assert!(v.iter().all(u8::is_ascii_alphanumeric));
        assert_eq!(v, value_for(1, 7, 300));
        assert_ne!(v, value_for(1, 8, 300));
        assert_ne!(v, value_for(2, 7, 300));
    }

    #[test]
    fn put_request_frames_the_value() {
        let req = put_request("h:1", "a/b", b"xyz");
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut parsed = httparse::Request::new(&mut headers);
        let httparse::Status::Complete(head) = parsed.parse(&req).unwrap() else {
            panic!("partial")
        };
        assert_eq!(parsed.method, Some("PUT"));
        assert_eq!(parsed.path, Some("/v1/kv/a/b"));
        assert_eq!(&req[head..], b"xyz");
    }
}
