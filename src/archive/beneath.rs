//! Opens entries of the config dir without following a symlink anywhere on the way.
//!
//! The walk lists the tree first and the archiver reads it afterwards: a directory replaced by a
//! symlink in between must not lead the reader out of the config dir. `openat2` with
//! `RESOLVE_NO_SYMLINKS` refuses any link in the path (ELOOP), so such an entry is skipped as one
//! that changed. Where `openat2` is unavailable (kernels before 5.6, some seccomp filters), a
//! plain `openat` below the config dir's descriptor is the fallback.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// `struct open_how` of `openat2(2)` (libc's is non-exhaustive, so it cannot be built here).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Set once `openat2` turned out to be missing, so it is not tried for every file.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// The config dir, opened once.
pub struct Tree {
    dir: File,
}

impl Tree {
    pub fn open(path: &Path) -> io::Result<Self> {
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)?;
        Ok(Tree { dir })
    }

    /// Opens `rel` (raw bytes, `/`-separated, empty for the config dir) with `flags` (`O_CLOEXEC`
    /// is added); ELOOP if a symlink lies on the way (or at the end, with `O_NOFOLLOW` and
    /// without `O_PATH`).
    pub fn open_entry(&self, rel: &[u8], flags: libc::c_int) -> io::Result<File> {
        let path = CString::new(if rel.is_empty() { b"." } else { rel })
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let flags = flags | libc::O_CLOEXEC;
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            let how = OpenHow {
                flags: flags as u64,
                mode: 0,
                resolve: libc::RESOLVE_NO_SYMLINKS,
            };
            // SAFETY: `path` is NUL-terminated and `how` outlives the call; a returned
            // descriptor is owned by nobody else.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    self.dir.as_raw_fd(),
                    path.as_ptr(),
                    &how as *const OpenHow,
                    std::mem::size_of::<OpenHow>(),
                )
            };
            if fd >= 0 {
                // SAFETY: a fresh descriptor from the kernel.
                return Ok(unsafe { File::from_raw_fd(fd as libc::c_int) });
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENOSYS | libc::EPERM) => NO_OPENAT2.store(true, Ordering::Relaxed),
                _ => return Err(e),
            }
        }
        // SAFETY: as above.
        let fd = unsafe { libc::openat(self.dir.as_raw_fd(), path.as_ptr(), flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor from the kernel.
        Ok(unsafe { File::from_raw_fd(fd) })
    }
}

/// The target of the symlink `link` was opened on (`O_PATH | O_NOFOLLOW`), as raw bytes.
pub fn read_link(link: &File) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes; the empty path names `link` itself.
        let n = unsafe {
            libc::readlinkat(
                link.as_raw_fd(),
                c"".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n < buf.len() {
            buf.truncate(n);
            return Ok(buf);
        }
        // Possibly cut: try again with room to spare (targets are at most PATH_MAX).
        buf.resize(buf.len() * 4, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn never_follows_a_link_on_the_way() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        std::fs::create_dir(root.path().join("real")).unwrap();
        std::fs::write(root.path().join("real/file"), "y").unwrap();
        symlink(outside.path(), root.path().join("swapped")).unwrap();
        symlink("x".repeat(300), root.path().join("long")).unwrap();
        let tree = Tree::open(root.path()).unwrap();
        assert!(tree.open_entry(b"real/file", libc::O_RDONLY).is_ok());
        let err = tree
            .open_entry(b"swapped/secret", libc::O_RDONLY)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
        let link = tree
            .open_entry(b"long", libc::O_PATH | libc::O_NOFOLLOW)
            .unwrap();
        assert!(link.metadata().unwrap().file_type().is_symlink());
        assert_eq!(read_link(&link).unwrap(), "x".repeat(300).as_bytes());
    }
}
