//! A pid file (`-pid-file`, `<run_dir>/dataplane.pid`): written at start,
//! removed at exit only if it still names this process.

use std::io;
use std::path::{Path, PathBuf};

/// The pid file of this process; removed on drop.
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Writes `pid` to `path`, creating the directory if needed.
    pub fn create(path: &Path, pid: u32) -> io::Result<PidFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, format!("{pid}\n"))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            pid,
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .map(|s| s.trim() == self.pid.to_string())
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
    fn removed_on_drop_only_if_still_ours() {
        let dir = std::env::temp_dir().join(format!("pc-pid-{}", std::process::id()));
        let path = dir.join("run/dataplane.pid");
        let f = PidFile::create(&path, 4242).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "4242\n");
        drop(f);
        assert!(!path.exists());

        let f = PidFile::create(&path, 1).unwrap();
        std::fs::write(&path, "2\n").unwrap();
        drop(f);
        assert!(path.exists(), "another process's pid file is left alone");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
