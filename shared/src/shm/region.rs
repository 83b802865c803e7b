//! An anonymous shared-memory region: a memfd sized with ftruncate and
//! mapped shared. The fd travels to the other process over the unix socket.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use memmap2::{MmapMut, MmapOptions};

/// A mapped memfd. Dropping it unmaps and closes; the memory lives on while
/// the other process still maps it.
pub struct SharedRegion {
    file: File,
    map: MmapMut,
}

impl SharedRegion {
    /// Creates a new zero-filled region of `len` bytes.
    pub fn create(name: &str, len: u64) -> io::Result<SharedRegion> {
        let cname = std::ffi::CString::new(name).map_err(|_| io::Error::other("region name has a NUL"))?;
        let fd = nix::sys::memfd::memfd_create(&cname, nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
            .map_err(io::Error::from)?;
        let file = File::from(fd);
        file.set_len(len)?;
        Self::map(file)
    }

    /// Maps a region received from the other process.
    pub fn from_fd(fd: OwnedFd) -> io::Result<SharedRegion> {
        Self::map(File::from(fd))
    }

    fn map(file: File) -> io::Result<SharedRegion> {
        let len = file.metadata()?.len();
        if len == 0 {
            return Err(io::Error::other("shared region is empty"));
        }
        // SAFETY: the memfd is only ever resized by its creator before it is
        // shared; both sides treat the contents as untrusted and validate.
        let map = unsafe { MmapOptions::new().len(len as usize).map_mut(&file)? };
        Ok(SharedRegion { file, map })
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.map.as_ptr()
    }

    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}
