//! Checks several config entry kinds share, in Consul's words: `Meta`
//! bounds (`validateConfigEntryMeta`), proxy and mesh gateway modes, the
//! mutual TLS mode, connection balancing. A failed check is the
//! `ConfigEntry.Apply` RPC's error: `500` and the text alone. Pure.

use serde_json::{Map, Value};

use super::super::check_def::Rejection;
use super::schema::{object_of, text_of};
use crate::http_api::proxy_def::multierror_text;

/// Most `Meta` pairs on an entry (Consul's `metaMaxKeyPairs`).
pub const ENTRY_META_PAIRS_MAX: usize = 64;
/// Longest `Meta` key in bytes (Consul's `metaKeyMaxLength`).
pub const ENTRY_META_KEY_BYTES_MAX: usize = 128;
/// Longest `Meta` value in bytes (Consul's `metaValueMaxLength`).
pub const ENTRY_META_VALUE_BYTES_MAX: usize = 512;

/// `500 <why>`: the RPC's error text.
pub fn rpc_error(why: impl Into<String>) -> Rejection {
    Rejection {
        status: 500,
        message: why.into(),
    }
}

/// Errors gathered like Consul's `multierror.Append` chain.
#[derive(Debug, Default)]
pub struct Errors(Vec<String>);

impl Errors {
    pub fn push(&mut self, error: impl Into<String>) {
        self.0.push(error.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok`, or the list as one `500`.
    pub fn into_result(self) -> Result<(), Rejection> {
        if self.0.is_empty() {
            return Ok(());
        }
        Err(rpc_error(multierror_text(&self.0)))
    }
}

/// `validateConfigEntryMeta`: every violation, in Consul's words. The
/// keys are visited in order so the list is stable.
pub fn meta_errors(object: &Map<String, Value>, errors: &mut Errors) {
    let Some(meta) = object_of(object, "Meta") else {
        return;
    };
    if meta.len() > ENTRY_META_PAIRS_MAX {
        errors.push(format!("Meta exceeds maximum element count {ENTRY_META_PAIRS_MAX}"));
    }
    for (key, value) in meta {
        if key.len() > ENTRY_META_KEY_BYTES_MAX {
            errors.push(format!(
                "Meta key {key:?} exceeds maximum length {ENTRY_META_KEY_BYTES_MAX}"
            ));
        }
        if value.as_str().map_or(0, str::len) > ENTRY_META_VALUE_BYTES_MAX {
            errors.push(format!(
                "Meta value for key {key:?} exceeds maximum length {ENTRY_META_VALUE_BYTES_MAX}"
            ));
        }
    }
}

/// `Meta` checked alone (kinds whose `Validate` returns it directly).
pub fn check_meta(object: &Map<String, Value>) -> Result<(), Rejection> {
    let mut errors = Errors::default();
    meta_errors(object, &mut errors);
    errors.into_result()
}

/// `Mode`: `""`, `direct` or `transparent`.
pub fn check_proxy_mode(object: &Map<String, Value>) -> Result<(), Rejection> {
    let mode = text_of(object, "Mode");
    if matches!(mode, "" | "direct" | "transparent") {
        return Ok(());
    }
    Err(rpc_error(format!("Invalid Proxy Mode: {mode:?}")))
}

/// `MeshGateway.Mode`: `""`, `none`, `local` or `remote`.
pub fn check_mesh_gateway_mode(object: &Map<String, Value>) -> Result<(), Rejection> {
    let Some(gateway) = object_of(object, "MeshGateway") else {
        return Ok(());
    };
    let mode = text_of(gateway, "Mode");
    if matches!(mode, "" | "none" | "local" | "remote") {
        return Ok(());
    }
    Err(rpc_error(format!("Invalid Mesh Gateway Mode: {mode:?}")))
}

/// `MutualTLSMode`: `""`, `strict` or `permissive`.
pub fn check_mutual_tls_mode(object: &Map<String, Value>) -> Result<(), Rejection> {
    let mode = text_of(object, "MutualTLSMode");
    if matches!(mode, "" | "strict" | "permissive") {
        return Ok(());
    }
    Err(rpc_error(format!(
        "Invalid MutualTLSMode {mode:?}. Must be one of \"\", \"strict\", or \"permissive\"."
    )))
}

/// Consul's `isValidConnectionBalance`: `""` or `exact_balance`.
pub fn is_valid_connection_balance(value: &str) -> bool {
    matches!(value, "" | "exact_balance")
}

/// `Expose.Paths`: each path's protocol is `http` or `http2` when set.
pub fn check_expose(object: &Map<String, Value>) -> Result<(), Rejection> {
    let Some(paths) = object_of(object, "Expose")
        .and_then(|e| e.get("Paths"))
        .and_then(Value::as_array)
    else {
        return Ok(());
    };
    for path in paths.iter().filter_map(Value::as_object) {
        let protocol = text_of(path, "Protocol").to_ascii_lowercase();
        if !matches!(protocol.as_str(), "" | "http" | "http2") {
            return Err(rpc_error(format!(
                "protocol '{protocol}' not supported for path: {}, must be in: [http http2]",
                text_of(path, "Path")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("an object"),
        }
    }

    #[test]
    fn meta_bounds_use_consuls_texts() {
        let long_key = "k".repeat(ENTRY_META_KEY_BYTES_MAX + 1);
        let e = check_meta(&obj(json!({"Meta": {long_key.clone(): "v", "b": "v".repeat(513)}}))).unwrap_err();
        assert_eq!(e.status, 500);
        assert_eq!(
            e.message,
            format!(
                "2 errors occurred:\n\t* Meta value for key \"b\" exceeds maximum length 512\n\t* Meta key \"{long_key}\" exceeds maximum length 128\n\n"
            )
        );
        let many: Map<String, Value> = (0..=ENTRY_META_PAIRS_MAX)
            .map(|i| (format!("k{i}"), json!("v")))
            .collect();
        let e = check_meta(&obj(json!({"Meta": many}))).unwrap_err();
        assert!(
            e.message.contains("Meta exceeds maximum element count 64"),
            "{}",
            e.message
        );
        assert!(check_meta(&obj(json!({"Meta": {"a": "b"}}))).is_ok());
    }

    #[test]
    fn modes() {
        assert!(check_proxy_mode(&obj(json!({"Mode": "transparent"}))).is_ok());
        let e = check_proxy_mode(&obj(json!({"Mode": "sideways"}))).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (500, "Invalid Proxy Mode: \"sideways\"")
        );
        assert!(check_mesh_gateway_mode(&obj(json!({"MeshGateway": {"Mode": "remote"}}))).is_ok());
        let e = check_mesh_gateway_mode(&obj(json!({"MeshGateway": {"Mode": "far"}}))).unwrap_err();
        assert_eq!(e.message, "Invalid Mesh Gateway Mode: \"far\"");
        let e = check_mutual_tls_mode(&obj(json!({"MutualTLSMode": "loose"}))).unwrap_err();
        assert!(e.message.starts_with("Invalid MutualTLSMode \"loose\""));
        let e = check_expose(&obj(json!({"Expose": {"Paths": [{"Path": "/m", "Protocol": "tcp"}]}}))).unwrap_err();
        assert_eq!(
            e.message,
            "protocol 'tcp' not supported for path: /m, must be in: [http http2]"
        );
    }
}
