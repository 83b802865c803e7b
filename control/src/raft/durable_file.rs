//! Crash-safe file replacement: write a temporary file, fsync it, rename it
//! over the target, fsync the directory. A reader sees the old content or
//! the new one, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Flushes a directory's entries (a rename or create) to disk.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `dir/name` with `bytes` atomically and durably.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    write_atomically_with(dir, name, |f| f.write_all(bytes))
}

/// Replaces `dir/name` with whatever `fill` writes, atomically and durably.
pub fn write_atomically_with(dir: &Path, name: &str, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    fsync_dir(dir)
}

/// Reads `dir/name` if it exists, refusing files larger than `bytes_max`.
pub fn read_bounded(dir: &Path, name: &str, bytes_max: u64) -> io::Result<Option<Vec<u8>>> {
    let path = dir.join(name);
    let len = match fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if len > bytes_max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is {len} bytes, above the {bytes_max}-byte limit", path.display()),
        ));
    }
    fs::read(&path).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        write_atomically(dir.path(), "f", b"one").unwrap();
        write_atomically(dir.path(), "f", b"two").unwrap();
        assert_eq!(read_bounded(dir.path(), "f", 10).unwrap().unwrap(), b"two");
        assert!(!dir.path().join("f.tmp").exists());
    }

    #[test]
    fn missing_file_is_none_and_oversized_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_bounded(dir.path(), "absent", 10).unwrap(), None);
        write_atomically(dir.path(), "big", &[0u8; 11]).unwrap();
        let err = read_bounded(dir.path(), "big", 10).unwrap_err();
        assert!(err.to_string().contains("10-byte limit"), "{err}");
    }
}
