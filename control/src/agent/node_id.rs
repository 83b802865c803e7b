//! The node ID: given in the config, or random in `-dev`, or kept in
//! `<data_dir>/node-id` across restarts (created on first start).

use std::io;
use std::path::Path;

/// The file under the data dir that keeps the node ID.
pub const NODE_ID_FILE: &str = "node-id";
/// Largest node-id file we read.
const NODE_ID_FILE_BYTES_MAX: u64 = 1024;

/// A new random node ID.
pub fn random_node_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// Validates the contents of a node-id file. Pure.
pub fn parse_node_id_file(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    uuid::Uuid::parse_str(trimmed)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| format!("node ID {trimmed:?} is not a valid UUID"))
}

/// Reads `<data_dir>/node-id`, creating it with a random ID if absent.
pub fn load_or_create(data_dir: &Path) -> io::Result<String> {
    let path = data_dir.join(NODE_ID_FILE);
    match std::fs::metadata(&path) {
        Ok(meta) => {
            if meta.len() > NODE_ID_FILE_BYTES_MAX {
                return Err(io::Error::other(format!(
                    "{} is {} bytes, over the {NODE_ID_FILE_BYTES_MAX}-byte limit",
                    path.display(),
                    meta.len()
                )));
            }
            let text = std::fs::read_to_string(&path)?;
            parse_node_id_file(&text).map_err(|e| io::Error::other(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id = random_node_id();
            let tmp = data_dir.join(format!("{NODE_ID_FILE}.tmp"));
            std::fs::write(&tmp, &id)?;
            std::fs::rename(&tmp, &path)?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

/// The node ID for this run.
pub fn resolve_node_id(configured: Option<&str>, dev: bool, data_dir: Option<&Path>) -> io::Result<String> {
    match (configured, data_dir) {
        (Some(id), _) => Ok(id.to_string()),
        (None, Some(dir)) if !dev => load_or_create(dir),
        _ => Ok(random_node_id()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persisted_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let first = resolve_node_id(None, false, Some(dir.path())).unwrap();
        let second = resolve_node_id(None, false, Some(dir.path())).unwrap();
        assert_eq!(first, second);
        assert_eq!(std::fs::read_to_string(dir.path().join(NODE_ID_FILE)).unwrap(), first);
    }

    #[test]
    fn configured_wins_and_dev_is_random() {
        let dir = tempfile::tempdir().unwrap();
        let id = "adf4238a-882b-9ddc-4a9d-5b6758e4159e";
        assert_eq!(resolve_node_id(Some(id), false, Some(dir.path())).unwrap(), id);
        let a = resolve_node_id(None, true, Some(dir.path())).unwrap();
        let b = resolve_node_id(None, true, None).unwrap();
        assert_ne!(a, b);
        assert!(!dir.path().join(NODE_ID_FILE).exists(), "dev mode keeps nothing");
    }

    #[test]
    fn corrupt_or_huge_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(NODE_ID_FILE), "not-a-uuid").unwrap();
        let e = load_or_create(dir.path()).unwrap_err();
        assert!(e.to_string().contains("is not a valid UUID"), "{e}");
        std::fs::write(dir.path().join(NODE_ID_FILE), "a".repeat(2000)).unwrap();
        assert!(load_or_create(dir.path())
            .unwrap_err()
            .to_string()
            .contains("byte limit"));
        assert_eq!(
            parse_node_id_file(" ADF4238A-882B-9DDC-4A9D-5B6758E4159E\n").unwrap(),
            "adf4238a-882b-9ddc-4a9d-5b6758e4159e"
        );
    }
}
