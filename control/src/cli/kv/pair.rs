//! Consul's `KVPair` JSON and how `kv get` prints it. Pure.

use base64::Engine;
use serde::Deserialize;

/// One entry of a `GET /v1/kv/...` answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KvPair {
    pub key: String,
    #[serde(default)]
    pub flags: u64,
    /// Base64, `null` for an empty value.
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub lock_index: u64,
    #[serde(default)]
    pub session: Option<String>,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

impl KvPair {
    /// The decoded value bytes.
    pub fn value_bytes(&self) -> Result<Vec<u8>, String> {
        match &self.value {
            None => Ok(Vec::new()),
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("bad base64 value for {}: {e}", self.key)),
        }
    }
}

/// Parses a KV answer body (a JSON array of pairs).
pub fn parse_pairs(body: &[u8]) -> Result<Vec<KvPair>, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid KV response: {e}"))
}

/// The value as printed: raw bytes, or base64 with `-base64`.
pub fn printable_value(pair: &KvPair, base64: bool) -> Result<Vec<u8>, String> {
    let bytes = pair.value_bytes()?;
    Ok(if base64 {
        base64::engine::general_purpose::STANDARD.encode(bytes).into_bytes()
    } else {
        bytes
    })
}

/// Width the names of `-detailed` are padded to (Go's tabwriter with
/// padding 6 over the longest name, `CreateIndex`/`ModifyIndex`).
const DETAILED_NAME_WIDTH: usize = 17;

/// The `-detailed` block for one pair (no trailing newline after the value).
pub fn detailed(pair: &KvPair, base64: bool) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut row = |name: &str, value: &[u8]| {
        out.extend_from_slice(format!("{name:<DETAILED_NAME_WIDTH$}").as_bytes());
        out.extend_from_slice(value);
    };
    row("CreateIndex", format!("{}\n", pair.create_index).as_bytes());
    row("Flags", format!("{}\n", pair.flags).as_bytes());
    row("Key", format!("{}\n", pair.key).as_bytes());
    row("LockIndex", format!("{}\n", pair.lock_index).as_bytes());
    row("ModifyIndex", format!("{}\n", pair.modify_index).as_bytes());
    let session = pair.session.as_deref().filter(|s| !s.is_empty()).unwrap_or("-");
    row("Session", format!("{session}\n").as_bytes());
    row("Value", &printable_value(pair, base64)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> KvPair {
        parse_pairs(
            br#"[{"LockIndex":0,"Key":"foo","Flags":3304740253564472344,"Value":"YmFy",
                  "CreateIndex":336,"ModifyIndex":340}]"#,
        )
        .unwrap()
        .remove(0)
    }

    #[test]
    fn decodes_values_and_large_flags() {
        let p = pair();
        assert_eq!(p.value_bytes().unwrap(), b"bar");
        assert_eq!(p.flags, 0x2ddccbc058a50c18);
        assert_eq!(printable_value(&p, true).unwrap(), b"YmFy");
        let empty = KvPair { value: None, ..p };
        assert_eq!(empty.value_bytes().unwrap(), b"");
        assert!(parse_pairs(b"{").is_err());
        let bad = KvPair {
            value: Some("!!".into()),
            ..empty
        };
        assert!(bad.value_bytes().is_err());
    }

    #[test]
    fn detailed_matches_consul_layout() {
        let text = String::from_utf8(detailed(&pair(), false).unwrap()).unwrap();
        assert_eq!(
            text,
            "CreateIndex      336\nFlags            3304740253564472344\nKey              foo\nLockIndex        0\nModifyIndex      340\nSession          -\nValue            bar"
        );
        let locked = KvPair {
            session: Some("abc".into()),
            ..pair()
        };
        assert!(String::from_utf8(detailed(&locked, true).unwrap())
            .unwrap()
            .contains("Session          abc\nValue            YmFy"));
    }
}
