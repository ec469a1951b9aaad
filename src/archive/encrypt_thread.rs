//! Encrypts the inner archive on a thread of its own while it is being compressed.

use std::io::{self, Write};
use std::sync::mpsc;

use super::ArchiveError;
use crate::securetar::Encryptor;

/// Why the work stopped: its own error, or the encrypting sink's (a full disk).
pub enum ThreadedError {
    Work(ArchiveError),
    Sink(io::Error),
}

/// Runs `work` writing into `sink` on another thread, and returns what `sink.finish()` gives.
/// The secretstream is sequential (each chunk's nonce follows from the previous MAC), so a
/// thread of its own lets it overlap compression instead of stalling the writer.
pub fn on_own_thread<W, F>(encryptor: Encryptor<W>, work: F) -> Result<(W, Vec<u8>), ThreadedError>
where
    W: Write + Send,
    F: FnOnce(&mut ChannelWriter) -> Result<(), ArchiveError>,
{
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(4);
        let encrypting = scope.spawn(move || {
            let mut encryptor = encryptor;
            for buf in rx {
                encryptor.write_all(&buf)?;
            }
            encryptor.finish()
        });
        let mut sink = ChannelWriter { tx: Some(tx) };
        let worked = work(&mut sink);
        sink.tx = None;
        let finished = encrypting
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the encryption thread panicked")));
        // A sink failure (full disk) explains a producer that stopped, so it wins.
        let finished = finished.map_err(ThreadedError::Sink)?;
        worked.map_err(ThreadedError::Work)?;
        Ok(finished)
    })
}

/// Hands written bytes to another thread.
pub struct ChannelWriter {
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let sent = self.tx.as_ref().map(|tx| tx.send(buf.to_vec()));
        match sent {
            Some(Ok(())) => Ok(buf.len()),
            _ => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the encryption thread stopped",
            )),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts the bytes that pass through, to size the inner member.
pub struct CountingWriter<W> {
    inner: W,
    pub count: u64,
}

impl<W> CountingWriter<W> {
    pub fn new(inner: W) -> Self {
        CountingWriter { inner, count: 0 }
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
