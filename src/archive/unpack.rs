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
use super::read::{
    decrypt, is_metadata, metadata_of_member, normalized, open_inner, stream_error, tar_error,
    InnerMember,
};
use super::tar_reader::TarReader;
use super::{ArchiveError, CancelToken};

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
    cancel: &CancelToken,
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
            .map(|(outcome, _)| outcome)
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

/// [`unpack`] for a backup read front to back from `reader` (a stored object streaming in;
/// `shown` names it in errors): the same policy, with the outer tar walked as it passes and the
/// inner archive decoded on the calling thread.
pub fn unpack_stream<R: Read, S: Sink>(
    reader: R,
    shown: &Path,
    password: Option<&str>,
    sink: S,
    cancel: &CancelToken,
) -> Result<Unpacked, ArchiveError> {
    let mut outer = TarReader::new(reader);
    let mut sink = Some(sink);
    let mut info: Option<BackupInfo> = None;
    let mut unpacked = None;
    while let Some(member) = outer.next_member().map_err(|e| tar_error(shown, e))? {
        cancel.check()?;
        let name = normalized(&member.name);
        if info.is_none() && is_metadata(name) {
            info = Some(metadata_of_member(&mut outer, member.size, shown)?);
            continue;
        }
        let inner_name = name == b"homeassistant.tar.gz" || name == b"homeassistant.tar";
        let Some(sink) = sink.take_if(|_| inner_name) else {
            continue;
        };
        let protected = info
            .as_ref()
            .ok_or_else(|| {
                ArchiveError::invalid(shown, "backup.json does not come before the archive")
            })?
            .protected;
        let mut inner = InnerMember {
            offset: 0,
            size: member.size,
            gzipped: name.ends_with(b".gz"),
            securetar_version: None,
        };
        let data = outer.data();
        let outcome = if protected {
            let decryptor = decrypt(data, password, shown)?;
            inner.securetar_version = Some(decryptor.header().version());
            let check_trailer = inner.securetar_version != Some(1);
            let stream = InnerStream::new(decryptor, inner.gzipped);
            decode_here(shown, stream, sink, cancel, check_trailer)?
        } else {
            decode_here(
                shown,
                InnerStream::new(data, inner.gzipped),
                sink,
                cancel,
                true,
            )?
        };
        unpacked = Some((inner, outcome));
    }
    let info = info.ok_or_else(|| ArchiveError::invalid(shown, "no backup.json in the archive"))?;
    let (inner, outcome) = unpacked
        .ok_or_else(|| ArchiveError::invalid(shown, "no homeassistant.tar.gz in the backup"))?;
    Ok(Unpacked {
        info,
        inner,
        outcome,
    })
}

/// Applies the inner archive's members on this thread, then its ends (gzip trailer, the
/// decryptor's FINAL tag and size).
fn decode_here<R: Read, S: Sink>(
    path: &Path,
    stream: InnerStream<R>,
    sink: S,
    cancel: &CancelToken,
    check_trailer: bool,
) -> Result<Outcome, ArchiveError> {
    let reader = TarReader::new(stream);
    let (outcome, rest) = apply(path, reader, Policy::new(path, sink), cancel, check_trailer)?;
    if check_trailer {
        rest.finish().map_err(|e| stream_error(path, e))?;
    }
    Ok(outcome)
}

/// Every member through the policy, the rest of the stream drained when `check_trailer` (so
/// the gzip CRC and length are checked even after the tar's end marker); returns what is left of
/// the stream.
fn apply<R: Read, S: Sink>(
    path: &Path,
    mut reader: TarReader<R>,
    mut policy: Policy<'_, S>,
    cancel: &CancelToken,
    check_trailer: bool,
) -> Result<(Outcome, R), ArchiveError> {
    while let Some(member) = reader.next_member().map_err(|e| tar_error(path, e))? {
        cancel.check()?;
        policy.member(&member, &mut reader.data())?;
    }
    let mut rest = reader.into_inner();
    if check_trailer {
        io::copy(&mut rest, &mut io::sink()).map_err(|e| stream_error(path, e))?;
    }
    cancel.check()?;
    Ok((policy.finish()?, rest))
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
enum InnerStream<R: Read> {
    Gzip(Box<GzDecoder<R>>),
    Plain(R),
}

impl<R: Read> InnerStream<R> {
    fn new(raw: R, gzipped: bool) -> Self {
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

impl<R: Read> Read for InnerStream<R> {
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
