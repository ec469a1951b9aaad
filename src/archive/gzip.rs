//! A gzip writer that compresses on several threads and still emits ONE standard gzip member.
//!
//! The producer (the tar writer) fills fixed-size chunks; workers deflate them independently (each
//! primed with the previous 32 KiB, ending on a byte boundary); the calling thread writes them in
//! order and combines their CRC32s. Memory is bounded by a fixed pool of chunk buffers.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;

use super::deflate::{ChunkCompressor, FINAL_BLOCK, WINDOW};
use super::inner_tar::{write_chunked, TarSink};
use super::{ArchiveError, CancelToken, Cancelled};

pub const CHUNK: usize = 1024 * 1024;

/// gzip header: magic, deflate, no flags, mtime 0, max-compression hint 0, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff];

pub struct GzipOptions {
    pub level: u32,
    pub threads: usize,
}

struct Job {
    seq: u64,
    before: Vec<u8>,
    data: Vec<u8>,
}

struct Done {
    seq: u64,
    data: Vec<u8>,
    compressed: io::Result<Vec<u8>>,
    crc: crc32fast::Hasher,
}

enum Message {
    Chunk(Done),
    /// The producer finished after this many chunks.
    End(u64),
    /// The producer failed; it reports its own error.
    Failed,
}

/// What the written gzip member holds.
#[derive(Debug, Clone, Copy)]
pub struct GzipSummary {
    #[cfg_attr(not(test), allow(dead_code))] // checked by the tests
    pub uncompressed: u64,
    pub compressed: u64,
}

/// Turns an error from a `ChunkWriter` write into the archive error it stands for. (A writer
/// that failed on its own stops the producer too; `write_gzip` then reports the writer's error.)
pub fn write_error(e: io::Error, what: &[u8]) -> ArchiveError {
    if Cancelled::is(&e) {
        ArchiveError::Cancelled
    } else {
        ArchiveError::InvalidArgument(format!(
            "compression stopped while writing {}: {e}",
            crate::common::text::escaped(what)
        ))
    }
}

/// The `Write` end handed to the producer: cuts the stream into chunks for the workers.
pub struct ChunkWriter {
    current: Vec<u8>,
    previous_tail: Vec<u8>,
    next_seq: u64,
    free: Receiver<Vec<u8>>,
    jobs: SyncSender<Job>,
    cancel: CancelToken,
}

impl ChunkWriter {
    fn take_buffer(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = self
            .free
            .recv()
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "compression stopped"))?;
        buf.clear();
        Ok(buf)
    }

    fn send_current(&mut self) -> io::Result<()> {
        if self.cancel.is_cancelled() {
            return Err(Cancelled::io());
        }
        let next = self.take_buffer()?;
        let data = std::mem::replace(&mut self.current, next);
        let before = std::mem::take(&mut self.previous_tail);
        self.previous_tail = data[data.len().saturating_sub(WINDOW)..].to_vec();
        let job = Job {
            seq: self.next_seq,
            before,
            data,
        };
        self.next_seq += 1;
        self.jobs
            .send(job)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "compression stopped"))
    }

    fn finish(mut self) -> io::Result<u64> {
        if !self.current.is_empty() {
            self.send_current()?;
        }
        Ok(self.next_seq)
    }
}

impl TarSink for ChunkWriter {
    fn chunk(&mut self) -> &mut Vec<u8> {
        &mut self.current
    }

    fn chunk_full(&mut self) -> io::Result<()> {
        self.send_current()
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write_chunked(self, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `produce` on its own thread, compresses what it writes on `options.threads` workers and
/// writes one gzip member to `out`. `out_path` names the output in errors.
pub fn write_gzip<W, P>(
    out: &mut W,
    out_path: &std::path::Path,
    options: &GzipOptions,
    cancel: &CancelToken,
    produce: P,
) -> Result<GzipSummary, ArchiveError>
where
    W: Write,
    P: FnOnce(&mut ChunkWriter) -> Result<(), ArchiveError> + Send,
{
    let threads = options.threads.max(1);
    let pool = threads * 2 + 2;
    let (free_tx, free_rx) = mpsc::sync_channel::<Vec<u8>>(pool);
    for _ in 0..pool {
        free_tx
            .send(Vec::with_capacity(CHUNK))
            .map_err(|_| ArchiveError::InvalidArgument("buffer pool closed".into()))?;
    }
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(pool);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, done_rx) = mpsc::channel::<Message>();

    thread::scope(|scope| {
        for _ in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            let level = options.level;
            scope.spawn(move || compress_worker(level, &job_rx, &done_tx));
        }
        let producer_done = done_tx.clone();
        drop(done_tx);
        let producer_cancel = cancel.clone();
        let producer = scope.spawn(move || {
            let mut writer = ChunkWriter {
                current: Vec::with_capacity(CHUNK),
                previous_tail: Vec::new(),
                next_seq: 0,
                free: free_rx,
                jobs: job_tx,
                cancel: producer_cancel,
            };
            let result = produce(&mut writer);
            let count = match result {
                Ok(()) => writer
                    .finish()
                    .map_err(|e| write_error(e, b"the last chunk")),
                Err(e) => Err(e),
            };
            // Workers stop once the job channel (owned by the writer) is dropped.
            let _ = producer_done.send(match &count {
                Ok(n) => Message::End(*n),
                Err(_) => Message::Failed,
            });
            count
        });

        let written = write_in_order(out, out_path, cancel, &done_rx, &free_tx);
        // Unblock a producer that waits for buffers if writing failed.
        drop(free_tx);
        drop(done_rx);
        let produced = producer
            .join()
            .map_err(|_| ArchiveError::InvalidArgument("archive producer panicked".into()))?;
        match (produced, written) {
            // A producer that failed (or was cancelled) tells the writer to stop with
            // `Cancelled`: the producer's error is the cause.
            (Err(produced), Ok(_) | Err(ArchiveError::Cancelled)) => Err(produced),
            // A writer that failed on its own (a full disk) starves the producer, whose
            // "compression stopped" only follows from it.
            (_, Err(written)) => Err(written),
            (Ok(_), Ok(summary)) => Ok(summary),
        }
    })
}

fn compress_worker(level: u32, jobs: &Mutex<Receiver<Job>>, done: &Sender<Message>) {
    let mut compressor = ChunkCompressor::new(level);
    loop {
        let job = {
            let Ok(guard) = jobs.lock() else { return };
            match guard.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let mut crc = crc32fast::Hasher::new();
        crc.update(&job.data);
        let mut out = Vec::new();
        let compressed = compressor
            .compress(&job.before, &job.data, &mut out)
            .map(|()| out);
        let message = Message::Chunk(Done {
            seq: job.seq,
            data: job.data,
            compressed,
            crc,
        });
        if done.send(message).is_err() {
            return;
        }
    }
}

fn write_in_order<W: Write>(
    out: &mut W,
    out_path: &std::path::Path,
    cancel: &CancelToken,
    done: &Receiver<Message>,
    free: &SyncSender<Vec<u8>>,
) -> Result<GzipSummary, ArchiveError> {
    out.write_all(&GZIP_HEADER)
        .map_err(|e| ArchiveError::write_failed(out_path, e, None))?;
    let mut compressed_len = GZIP_HEADER.len() as u64;
    let mut uncompressed = 0u64;
    let mut crc = crc32fast::Hasher::new();
    let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next = 0u64;
    let mut total: Option<u64> = None;
    while total != Some(next) {
        cancel.check()?;
        match done.recv() {
            Ok(Message::Chunk(chunk)) => {
                pending.insert(chunk.seq, chunk);
            }
            Ok(Message::End(count)) => total = Some(count),
            // The producer's own error is what the caller reports.
            Ok(Message::Failed) | Err(_) => return Err(ArchiveError::Cancelled),
        }
        while let Some(chunk) = pending.remove(&next) {
            let bytes = chunk
                .compressed
                .map_err(|e| ArchiveError::io(out_path, e))?;
            out.write_all(&bytes)
                .map_err(|e| ArchiveError::write_failed(out_path, e, None))?;
            compressed_len += bytes.len() as u64;
            uncompressed += chunk.data.len() as u64;
            crc.combine(&chunk.crc);
            let _ = free.send(chunk.data);
            next += 1;
        }
    }
    let mut trailer = Vec::with_capacity(13);
    trailer.extend_from_slice(&FINAL_BLOCK);
    trailer.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32 by definition.
    trailer.extend_from_slice(&(uncompressed as u32).to_le_bytes());
    out.write_all(&trailer)
        .map_err(|e| ArchiveError::write_failed(out_path, e, None))?;
    compressed_len += trailer.len() as u64;
    Ok(GzipSummary {
        uncompressed,
        compressed: compressed_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn multi_threaded_output_is_one_member() {
        let data: Vec<u8> = (0..3_500_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut out = Vec::new();
        let options = GzipOptions {
            level: 6,
            threads: 3,
        };
        let summary = write_gzip(
            &mut out,
            "mem".as_ref(),
            &options,
            &CancelToken::new(),
            |w| w.write_all(&data).map_err(|e| ArchiveError::io("mem", e)),
        )
        .unwrap();
        assert_eq!(summary.uncompressed, data.len() as u64);
        assert_eq!(summary.compressed, out.len() as u64);
        // A single-member decoder stops after the first member: it must see everything.
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn empty_stream() {
        let mut out = Vec::new();
        let options = GzipOptions {
            level: 6,
            threads: 2,
        };
        write_gzip(
            &mut out,
            "mem".as_ref(),
            &options,
            &CancelToken::new(),
            |_| Ok(()),
        )
        .unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }

    #[test]
    fn producer_error_wins() {
        let mut out = Vec::new();
        let options = GzipOptions {
            level: 6,
            threads: 2,
        };
        let err = write_gzip(
            &mut out,
            "mem".as_ref(),
            &options,
            &CancelToken::new(),
            |w| {
                w.write_all(&vec![1u8; 5 * CHUNK])
                    .map_err(|e| ArchiveError::io("mem", e))?;
                Err(ArchiveError::invalid("src", "boom"))
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
    }
}

#[cfg(test)]
mod cancel_tests {
    use super::*;

    #[test]
    fn cancellation_stops_the_pipeline() {
        let cancel = CancelToken::new();
        let mut out = Vec::new();
        let options = GzipOptions {
            level: 6,
            threads: 2,
        };
        let flag = cancel.clone();
        let err = write_gzip(&mut out, "mem".as_ref(), &options, &cancel, |w| {
            for i in 0..200 {
                if i == 20 {
                    flag.cancel();
                }
                w.write_all(&vec![(i % 7) as u8; CHUNK / 2])
                    .map_err(|e| write_error(e, b"mem"))?;
            }
            Ok(())
        })
        .unwrap_err();
        assert!(matches!(err, ArchiveError::Cancelled), "{err}");
    }
}
