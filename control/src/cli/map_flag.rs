//! Repeatable `key=value` flags (`-node-meta`, `-meta`, `-tagged-address`),
//! parsed like Consul's `flags.FlagMapValue`: split at the first `=`, later
//! keys override earlier ones, a missing `=` is an error. Also Consul's
//! data sources (`-filter=@file`, `-filter=-`). Pure apart from
//! [`load_data_source`]'s reads.

use std::collections::BTreeMap;
use std::io::Read;

use super::flags::{FlagError, ParsedArgs};

/// Most `key=value` pairs one flag may carry.
pub const MAP_FLAG_ENTRIES_MAX: usize = 64;
/// Largest `@file` or stdin data source read.
pub const DATA_SOURCE_BYTES_MAX: u64 = 1024 * 1024;

/// The `key=value` pairs of a repeatable flag, keys sorted.
pub fn map_flag(args: &ParsedArgs, name: &str) -> Result<BTreeMap<String, String>, FlagError> {
    let mut map = BTreeMap::new();
    for item in args.values(name) {
        let invalid = |reason: String| FlagError::InvalidValue {
            name: name.to_string(),
            value: item.clone(),
            reason,
        };
        let Some((key, value)) = item.split_once('=') else {
            return Err(invalid(format!("Missing \"=\" value in argument: {item}")));
        };
        map.insert(key.to_string(), value.to_string());
        if map.len() > MAP_FLAG_ENTRIES_MAX {
            return Err(invalid(format!("more than {MAP_FLAG_ENTRIES_MAX} entries")));
        }
    }
    Ok(map)
}

/// Consul's `helpers.LoadDataSource`: `@path` reads the file, `-` reads
/// stdin, anything else is the data itself. Reads are bounded.
pub fn load_data_source(value: &str, stdin: &mut dyn Read) -> Result<String, String> {
    let mut text = String::new();
    if let Some(path) = value.strip_prefix('@') {
        let file = std::fs::File::open(path).map_err(|e| format!("Failed to read file: {e}"))?;
        read_bounded(file, &mut text).map_err(|e| format!("Failed to read file: {e}"))?;
        return Ok(text);
    }
    if value == "-" {
        read_bounded(stdin, &mut text).map_err(|e| format!("Failed to read stdin: {e}"))?;
        return Ok(text);
    }
    Ok(value.to_string())
}

fn read_bounded(source: impl Read, text: &mut String) -> std::io::Result<()> {
    let n = source.take(DATA_SOURCE_BYTES_MAX + 1).read_to_string(text)?;
    if n as u64 > DATA_SOURCE_BYTES_MAX {
        return Err(std::io::Error::other(format!(
            "more than {DATA_SOURCE_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::{parse, FlagSpec};

    const SPECS: &[FlagSpec] = &[FlagSpec::list("node-meta", "meta")];

    fn parsed(list: &[&str]) -> ParsedArgs {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        parse(SPECS, &list).unwrap()
    }

    #[test]
    fn pairs_split_at_the_first_equals_and_later_keys_win() {
        let m = map_flag(
            &parsed(&["-node-meta=rack=a=b", "-node-meta", "env=x", "-node-meta=env=y"]),
            "node-meta",
        )
        .unwrap();
        assert_eq!(m.get("rack").map(String::as_str), Some("a=b"));
        assert_eq!(m.get("env").map(String::as_str), Some("y"));
        assert!(map_flag(&parsed(&[]), "node-meta").unwrap().is_empty());
    }

    #[test]
    fn a_missing_equals_is_an_error_naming_the_flag() {
        let e = map_flag(&parsed(&["-node-meta=oops"]), "node-meta").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value \"oops\" for flag -node-meta: Missing \"=\" value in argument: oops"
        );
    }

    #[test]
    fn entries_are_bounded() {
        let items: Vec<String> = (0..=MAP_FLAG_ENTRIES_MAX)
            .map(|i| format!("-node-meta=k{i}=v"))
            .collect();
        let refs: Vec<&str> = items.iter().map(String::as_str).collect();
        let e = map_flag(&parsed(&refs), "node-meta").unwrap_err();
        assert!(e
            .to_string()
            .ends_with(&format!("more than {MAP_FLAG_ENTRIES_MAX} entries")));
    }

    #[test]
    fn data_sources() {
        let mut empty: &[u8] = b"";
        assert_eq!(load_data_source("Node == a", &mut empty).unwrap(), "Node == a");
        let mut stdin: &[u8] = b"from stdin";
        assert_eq!(load_data_source("-", &mut stdin).unwrap(), "from stdin");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "from file").unwrap();
        let at = format!("@{}", path.display());
        assert_eq!(load_data_source(&at, &mut empty).unwrap(), "from file");
        assert!(load_data_source("@/nonexistent/f", &mut empty)
            .unwrap_err()
            .starts_with("Failed to read file"));
        let big = vec![b'x'; DATA_SOURCE_BYTES_MAX as usize + 1];
        let mut big_stdin: &[u8] = &big;
        assert!(load_data_source("-", &mut big_stdin).unwrap_err().contains("more than"));
    }
}
