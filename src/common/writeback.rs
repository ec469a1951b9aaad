//! A file writer that hands what it wrote to the disk as it goes.
//!
//! Left alone, the kernel keeps a backup's bytes dirty in the page cache (several GiB fit under
//! its thresholds) and the final fsync writes them all at once: a burst of kernel work at the
//! end that competes with the event loop and adds to the backup's wall time. Starting the
//! writeback of every few MiB as soon as they are written (`sync_file_range`, which does not
//! wait) spreads that work over the backup and leaves the fsync little to do. The fsync is
//! still what makes the file durable; a writeback that cannot be started changes nothing.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;

/// Bytes written between two writeback requests: a request is kernel work the event loop may
/// wait behind (the kernel is not preemptible on many distributions), so not too small; and the
/// final fsync waits for at most this much, so not too large. 2, 8 and 16 MiB were measured
/// (benches/README.md, "Writeback"); 8 MiB kept the loop's lag where it was.
const STEP: u64 = 8 * 1024 * 1024;

pub struct Writeback<'a> {
    file: &'a mut File,
    /// The file offset the next write lands on.
    at: u64,
    /// Writeback has been requested for everything below this offset.
    requested: u64,
    /// False once the file system refused a request: it will refuse the next ones too.
    supported: bool,
}

impl<'a> Writeback<'a> {
    /// `at` is `file`'s current offset.
    pub fn new(file: &'a mut File, at: u64) -> Self {
        Writeback {
            file,
            at,
            requested: at,
            supported: true,
        }
    }

    fn request(&mut self) {
        let len = self.at - self.requested;
        // SAFETY: a plain syscall on a descriptor `self.file` owns; no memory is passed.
        let done = unsafe {
            libc::sync_file_range(
                self.file.as_raw_fd(),
                self.requested as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        if done != 0 {
            // Said once: every log record costs the engine's thread a trip through the GIL.
            self.supported = false;
            log::debug!(
                target: "habackup.archive",
                "early writeback not started, the final fsync writes everything: {}",
                io::Error::last_os_error()
            );
        }
        self.requested = self.at;
    }
}

impl Write for Writeback<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.at += n as u64;
        if self.supported && self.at - self.requested >= STEP {
            self.request();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom};

    #[test]
    fn bytes_arrive_unchanged_past_several_requests() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"head").unwrap();
        let data: Vec<u8> = (0..(3 * STEP as usize + 12_345))
            .map(|i| (i % 253) as u8)
            .collect();
        let mut writer = Writeback::new(&mut file, 4);
        for piece in data.chunks(1_000_003) {
            writer.write_all(piece).unwrap();
        }
        assert_eq!(writer.at, 4 + data.len() as u64);
        // 8 MiB in pieces of 1_000_003 bytes: a request after 9 and after 18 pieces.
        assert_eq!(writer.requested, 4 + 18 * 1_000_003);
        writer.flush().unwrap();
        let mut back = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut back).unwrap();
        assert_eq!(&back[..4], b"head");
        assert_eq!(&back[4..], &data[..]);
    }

    #[test]
    fn a_file_that_refuses_writeback_still_gets_every_byte() {
        // A pipe has no page cache to write back: sync_file_range fails with ESPIPE.
        let (mut reader, pipe) = std::io::pipe().unwrap();
        let mut file = File::from(std::os::fd::OwnedFd::from(pipe));
        let drained = std::thread::spawn(move || {
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            all
        });
        let data: Vec<u8> = (0..(2 * STEP as usize + 7))
            .map(|i| (i % 251) as u8)
            .collect();
        {
            let mut writer = Writeback::new(&mut file, 0);
            writer.write_all(&data).unwrap();
            assert!(!writer.supported, "the refusal is remembered");
        }
        drop(file);
        assert_eq!(drained.join().unwrap(), data);
    }
}
