//! Streams a backup's inner archive through the member policy: decryption and decompression on
//! one thread, the tar members applied (to disk, or to nothing) on the calling one. Extract and
//! verify both run exactly this, so they accept and refuse the same backups.

use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::thread;

use flate2::read::GzDecoder;

use super::metadata::BackupInfo;
use super::policy::{Outcome, Policy, Sink};
use super::read::{open_inner, stream_error, tar_error, InnerMember};
use super::tar_reader::TarReader;
use super::{ArchiveError, CancelFlag};

const CHUNK: usize = 1024 * 1024;

pub struct Unpacked {
    pub info: BackupInfo,
    pub inner: InnerMember,
    pub outcome: Outcome,
}

/// Opens the backup at `path` (checking the password first), and applies every member of its
/// inner archive to `sink`; then checks what follows the tar's end (gzip CRC and length, the
/// secretstream's FINAL tag and size) before the policy's last step (symlinks, directory times).
pub fn unpack<S: Sink>(
    path: &Path,
    password: Option<&str>,
    sink: S,
    cancel: &CancelFlag,
) -> Result<Unpacked, ArchiveError> {
    let (info, inner, raw) = open_inner(path, password)?;
    let gzipped = inner.gzipped;
    // securetar v1 padded every write, the gzip trailer's included: Home Assistant never reads
    // that trailer, so for v1 neither do we.
    let check_trailer = inner.securetar_version != Some(1);
    let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(4);
    let decoder_cancel = cancel.clone();
    // Decompression overlaps the members' work: inflate on one thread, tar + sink on this one.
    let outcome = thread::scope(|scope| {
        scope.spawn(move || {
            let mut reader = InnerStream::new(raw, gzipped);
            loop {
                if decoder_cancel.is_cancelled() {
                    return;
                }
                let mut buf = vec![0u8; CHUNK];
                let (n, failure) = read_full(&mut reader, &mut buf);
                if n > 0 {
                    buf.truncate(n);
                    if tx.send(Ok(buf)).is_err() {
                        return;
                    }
                }
                if let Some(e) = failure {
                    let _ = tx.send(Err(e));
                    return;
                }
                if n < CHUNK {
                    // The whole inner stream was consumed: the decryptor's own end checks
                    // (FINAL tag, nothing after it, the size) run now.
                    if let Err(e) = reader.finish() {
                        let _ = tx.send(Err(e));
                    }
                    return;
                }
            }
        });
        let reader = TarReader::new(ChannelReader {
            rx,
            current: Vec::new(),
            pos: 0,
        });
        // Owns the channel's end: whatever happens, the decoder thread stops when this returns.
        apply(path, reader, Policy::new(path, sink), cancel, check_trailer)
    })
    // A cancelled decoder ends its stream early: that is the cancellation, not a cut backup.
    .map_err(|e| {
        if cancel.is_cancelled() {
            ArchiveError::Cancelled
        } else {
            e
        }
    })?;
    Ok(Unpacked {
        info,
        inner,
        outcome,
    })
}

fn apply<S: Sink>(
    path: &Path,
    mut reader: TarReader<ChannelReader>,
    mut policy: Policy<'_, S>,
    cancel: &CancelFlag,
    check_trailer: bool,
) -> Result<Outcome, ArchiveError> {
    while let Some(member) = reader.next_member().map_err(|e| tar_error(path, e))? {
        cancel.check()?;
        policy.member(&member, &mut reader.data())?;
    }
    if check_trailer {
        // Drained to the end so the gzip CRC and length are checked even after the tar's end
        // marker.
        let mut rest = reader.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(|e| stream_error(path, e))?;
    }
    cancel.check()?;
    policy.finish()
}

/// Fills `buf` as far as the stream goes; returns the bytes read and the error that stopped it,
/// so data read before an error is never lost.
fn read_full(stream: &mut dyn Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Some(e)),
        }
    }
    (filled, None)
}

/// The inner archive's plaintext: gunzipped if need be, and able to drain what lies under the gzip
/// stream once it has ended.
enum InnerStream {
    Gzip(Box<GzDecoder<Box<dyn Read + Send>>>),
    Plain(Box<dyn Read + Send>),
}

impl InnerStream {
    fn new(raw: Box<dyn Read + Send>, gzipped: bool) -> Self {
        if gzipped {
            InnerStream::Gzip(Box::new(GzDecoder::new(raw)))
        } else {
            InnerStream::Plain(raw)
        }
    }

    /// Reads whatever follows the gzip member, so a decryptor sees its own end.
    fn finish(self) -> io::Result<()> {
        let mut rest = match self {
            InnerStream::Gzip(gz) => gz.into_inner(),
            InnerStream::Plain(raw) => raw,
        };
        io::copy(&mut rest, &mut io::sink()).map(|_| ())
    }
}

impl Read for InnerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            InnerStream::Gzip(gz) => gz.read(buf),
            InnerStream::Plain(raw) => raw.read(buf),
        }
    }
}

struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
