//! Where an upload's bytes come from: a backup file, read on the blocking pool, or a stream of
//! chunks handed over by a caller (Home Assistant's `open_stream`, another store). Either way
//! they arrive as chunks in a bounded channel, counted and hashed on the way, and the source's
//! verdict (bytes, sha256) comes once they have all been sent.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;

use super::error::StoreError;
use crate::archive::{ArchiveError, CancelToken, IoContext};
use crate::common::digest::hex;

const READ_CHUNK: usize = 1024 * 1024;
/// Chunks read ahead of the network; bounds the reader's share of memory.
pub const READ_AHEAD: usize = 4;

/// An upload's bytes: the chunks, and the source's verdict once they are all sent.
pub struct Reader {
    pub chunks: mpsc::Receiver<Bytes>,
    done: JoinHandle<Result<(u64, String), StoreError>>,
    /// Set by the consumer when it stops reading but may still hold the receiver (an HTTP
    /// client that got its answer early): the reader must not wait on a full channel forever.
    stop: CancelToken,
}

/// What can be read again from the start (a file) and what only once (a stream).
pub enum Source {
    File { path: PathBuf, size: u64 },
    Stream(Option<mpsc::Receiver<Bytes>>),
}

impl Source {
    /// Whether the bytes can be read again from the start, for a retry of the whole upload.
    pub fn replayable(&self) -> bool {
        matches!(self, Source::File { .. })
    }

    /// Starts reading; a stream can be started once (a retry needs a new one).
    pub fn open(&mut self, expected: Option<u64>, cancel: &CancelToken) -> Option<Reader> {
        match self {
            Source::File { path, size } => {
                Some(Reader::from_file(path.clone(), *size, cancel.clone()))
            }
            Source::Stream(rx) => rx.take().map(|rx| Reader::from_channel(rx, expected)),
        }
    }
}

impl Reader {
    fn from_file(path: PathBuf, size: u64, cancel: CancelToken) -> Reader {
        let (tx, chunks) = mpsc::channel(READ_AHEAD);
        let stop = CancelToken::new();
        let stopped = stop.clone();
        let done = tokio::task::spawn_blocking(move || {
            let mut file = File::open(&path).at(&path)?;
            let mut hasher = Sha256::new();
            let mut total = 0u64;
            loop {
                cancel.check()?;
                let mut buf = BytesMut::zeroed(READ_CHUNK);
                let mut filled = 0;
                while filled < READ_CHUNK {
                    let n = file.read(&mut buf[filled..]).at(&path)?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    break;
                }
                buf.truncate(filled);
                hasher.update(&buf);
                total += filled as u64;
                if total > size {
                    break;
                }
                let mut chunk = buf.freeze();
                loop {
                    match tx.try_send(chunk) {
                        Ok(()) => break,
                        Err(TrySendError::Full(back)) => {
                            if stopped.is_cancelled() || cancel.is_cancelled() {
                                return Err(StoreError::Cancelled);
                            }
                            chunk = back;
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        // The uploader stopped (failure or cancel) and says why itself.
                        Err(TrySendError::Closed(_)) => return Err(StoreError::Cancelled),
                    }
                }
            }
            if total != size {
                return Err(ArchiveError::invalid(
                    &path,
                    format!("the file changed size while it was uploaded ({size} bytes expected)"),
                )
                .into());
            }
            Ok((total, hex(&hasher.finalize())))
        });
        Reader { chunks, done, stop }
    }

    /// Chunks from a caller, hashed as they pass; `expected` is the size announced for them.
    fn from_channel(mut input: mpsc::Receiver<Bytes>, expected: Option<u64>) -> Reader {
        let (tx, chunks) = mpsc::channel(READ_AHEAD);
        let stop = CancelToken::new();
        let stopped = stop.clone();
        let done = tokio::spawn(async move {
            let mut hasher = Sha256::new();
            let mut total = 0u64;
            while let Some(chunk) = input.recv().await {
                total += chunk.len() as u64;
                if expected.is_some_and(|size| total > size) {
                    break;
                }
                hasher.update(&chunk);
                match stopped.run(tx.send(chunk)).await {
                    Ok(Ok(())) => {}
                    // The consumer stopped (failure or cancel) and says why itself.
                    _ => return Err(StoreError::Cancelled),
                }
            }
            match expected {
                Some(size) if total != size => Err(StoreError::Failed(format!(
                    "the backup stream gave {} bytes where {size} were announced",
                    if total > size {
                        format!("more than {size}")
                    } else {
                        total.to_string()
                    }
                ))),
                _ => Ok((total, hex(&hasher.finalize()))),
            }
        });
        Reader { chunks, done, stop }
    }

    /// The consumer is done with the chunks, whether it read them all or not.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// The bytes read and their sha256, or why the source failed.
    pub async fn finish(self) -> Result<(u64, String), StoreError> {
        self.stop();
        drop(self.chunks);
        self.done
            .await
            .map_err(|e| StoreError::Failed(format!("upload source failed: {e}")))?
    }
}
