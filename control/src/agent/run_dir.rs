//! The run directory: where `control.sock` and `dataplane.pid` live.
//! `<data_dir>/run/` when there is a data dir (so a restarted agent finds
//! its orphan data plane), else a private directory under `/tmp` removed
//! when the agent exits.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The control socket's file name.
pub const CONTROL_SOCKET: &str = "control.sock";

/// The run directory; a temporary one is removed on drop.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    temporary: bool,
}

impl RunDir {
    /// Creates (or reuses) the run directory, private to our user.
    pub fn create(data_dir: Option<&Path>) -> io::Result<RunDir> {
        match data_dir {
            Some(dir) => {
                let path = dir.join("run");
                std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&path)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
                Ok(RunDir { path, temporary: false })
            }
            None => {
                let path = PathBuf::from(format!(
                    "/tmp/proconsul-{}-{:08x}",
                    std::process::id(),
                    rand::random::<u32>()
                ));
                std::fs::DirBuilder::new().mode(0o700).create(&path)?;
                Ok(RunDir { path, temporary: true })
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn control_socket(&self) -> PathBuf {
        self.path.join(CONTROL_SOCKET)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_dirs_are_private_and_removed() {
        let r = RunDir::create(None).unwrap();
        let path = r.path().to_path_buf();
        assert!(path.starts_with("/tmp"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::write(r.control_socket(), b"x").unwrap();
        drop(r);
        assert!(!path.exists());
    }

    #[test]
    fn data_dir_run_dirs_persist() {
        let dir = tempfile::tempdir().unwrap();
        let r = RunDir::create(Some(dir.path())).unwrap();
        assert_eq!(r.path(), dir.path().join("run"));
        assert_eq!(r.control_socket(), dir.path().join("run/control.sock"));
        drop(r);
        assert!(dir.path().join("run").exists());
        RunDir::create(Some(dir.path())).unwrap();
    }
}
