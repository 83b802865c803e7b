//! `-pid-file`: the agent's PID, written at start and removed at exit.

use std::io;
use std::path::{Path, PathBuf};

/// A written pid file; dropping it removes the file if it still holds our
/// PID.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes our PID to `path` (replacing what was there).
    pub fn write(path: &Path) -> io::Result<PidFile> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, format!("{}", std::process::id()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .map(|t| t.trim() == std::process::id().to_string())
            .unwrap_or(false);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_then_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/agent.pid");
        let f = PidFile::write(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), std::process::id().to_string());
        drop(f);
        assert!(!path.exists());
    }

    #[test]
    fn someone_elses_pid_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.pid");
        let f = PidFile::write(&path).unwrap();
        std::fs::write(&path, "1").unwrap();
        drop(f);
        assert!(path.exists());
    }
}
