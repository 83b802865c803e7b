//! The JSON line a write benchmark prints last (and appends to a results
//! file), for modes whose summary is not a throughput [`crate::report::Summary`].

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// Prints `summary` as one JSON line; appends it to `json_out` too.
pub fn emit_json<S: Serialize>(summary: &S, json_out: Option<&Path>) -> anyhow::Result<()> {
    let line = serde_json::to_string(summary).context("serializing the summary")?;
    println!("{line}");
    match json_out {
        Some(path) => crate::report::append_line(path, &line),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_line_per_call() {
        let dir = std::env::temp_dir().join(format!("loadtest-emit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.jsonl");
        emit_json(&serde_json::json!({"a": 1}), Some(&path)).unwrap();
        emit_json(&serde_json::json!({"a": 2}), Some(&path)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"a\":2}\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
