//! The inner tar: the config dir's entries as Home Assistant's writer stores them (`data/...`,
//! directories with a trailing slash, links as links), streamed into any writer.

use std::fs;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use super::beneath::{self, Tree};
use super::gzip::{write_error, CHUNK};
use super::tar_header::{self, EntryType, HeaderFields, BLOCK};
use super::walk::{EntryKind, WalkEntry};
use super::{ArchiveError, CancelToken, IoContext};
use crate::common::text;

/// Zeros for a file that shrank while it was backed up, written this much at a time.
const ZEROS: usize = 256 * 1024;
/// Largest read of a file's bytes at once.
const READ_MAX: usize = 256 * 1024;
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Reports `(bytes_done, bytes_total)` of file data read from the config dir.
pub type ProgressFn<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Where the inner tar goes: a writer that cuts the stream into chunks of [`CHUNK`] bytes and
/// hands each on once full. A file's bytes are read straight into the chunk: one copy out of the
/// page cache instead of two.
pub trait TarSink: Write {
    /// The chunk being filled; never full between calls.
    fn chunk(&mut self) -> &mut Vec<u8>;

    /// Hands on the chunk, which holds [`CHUNK`] bytes (or the last, shorter one).
    fn chunk_full(&mut self) -> io::Result<()>;

    /// Reads at most `max` (> 0) bytes of `file` into the chunk: `Ok(Ok(n))` took n bytes (0 at
    /// the end of the file), `Ok(Err(_))` reading the file failed, `Err(_)` the sink did.
    fn read_from(&mut self, file: &mut fs::File, max: usize) -> io::Result<io::Result<usize>> {
        // A full chunk is always handed on at once, so there is room: a read of 0 means the end.
        let room = CHUNK - self.chunk().len();
        let read = read_into_spare(file, self.chunk(), max.min(room));
        if self.chunk().len() == CHUNK {
            self.chunk_full()?;
        }
        Ok(read)
    }
}

/// `Write::write` of every [`TarSink`]: fills the chunk, handing it on each time it is full.
pub fn write_chunked(sink: &mut impl TarSink, mut buf: &[u8]) -> io::Result<usize> {
    let total = buf.len();
    while !buf.is_empty() {
        let chunk = sink.chunk();
        let n = (CHUNK - chunk.len()).min(buf.len());
        chunk.extend_from_slice(&buf[..n]);
        buf = &buf[n..];
        if chunk.len() == CHUNK {
            sink.chunk_full()?;
        }
    }
    Ok(total)
}

/// Appends at most `max` (> 0) bytes of `file` to `buffer` with one read(2) into its spare
/// capacity (grown if short): no zeroed buffer, no second copy.
fn read_into_spare(file: &mut fs::File, buffer: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    buffer.reserve(max);
    let spare = buffer.spare_capacity_mut();
    let want = max.min(spare.len());
    // SAFETY: read(2) writes at most `want` bytes at `spare`, memory `buffer` owns and has not
    // handed out; only the bytes it reports become part of the vector.
    let got = unsafe { libc::read(file.as_raw_fd(), spare.as_mut_ptr().cast(), want) };
    let got = usize::try_from(got).map_err(|_| io::Error::last_os_error())?;
    // SAFETY: the first `got` bytes of the spare capacity were just written by read(2).
    unsafe { buffer.set_len(buffer.len() + got) };
    Ok(got)
}

pub fn write_inner_tar<W: TarSink>(
    out: &mut W,
    tree: &Tree,
    entries: &[WalkEntry],
    cancel: &CancelToken,
    reporter: &mut Reporter<'_>,
) -> Result<(), ArchiveError> {
    let mut written = 0u64;
    for entry in entries {
        cancel.check()?;
        written += match entry.kind {
            EntryKind::Directory => write_directory(out, tree, entry)?,
            EntryKind::Symlink => write_symlink(out, tree, entry)?,
            EntryKind::File => write_file(out, tree, entry, reporter)?,
        };
    }
    let trailer = vec![0u8; tar_header::trailer_len(written) as usize];
    out.write_all(&trailer)
        .map_err(|e| write_error(e, b"inner tar"))
}

fn arcname(entry: &WalkEntry) -> Vec<u8> {
    let mut name = b"data".to_vec();
    if !entry.relative.is_empty() {
        name.push(b'/');
        name.extend_from_slice(&entry.relative);
    }
    name
}

/// Whether an entry is gone since the walk listed it (itself, or a directory above it).
fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Whether an entry, or a directory above it, became a symlink since the walk (openat2 refuses
/// to follow it).
fn through_link(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// Opens the entry itself, never a symlink on the way, and returns its metadata.
fn entry_meta(tree: &Tree, entry: &WalkEntry) -> io::Result<(fs::File, fs::Metadata)> {
    let file = tree.open_entry(&entry.relative, libc::O_PATH | libc::O_NOFOLLOW)?;
    let meta = file.metadata()?;
    Ok((file, meta))
}

fn write_directory(
    out: &mut impl Write,
    tree: &Tree,
    entry: &WalkEntry,
) -> Result<u64, ArchiveError> {
    let meta = match entry_meta(tree, entry) {
        Ok((_, m)) if m.is_dir() => m,
        Ok(_) => return Ok(changed(entry, "a directory")),
        Err(e) if gone(&e) => return Ok(vanished(entry)),
        Err(e) if through_link(&e) => return Ok(changed(entry, "a directory")),
        Err(e) => return Err(ArchiveError::io(&entry.full, e)),
    };
    // Python's tarfile and GNU tar name directories with a trailing slash.
    let mut name = arcname(entry);
    name.push(b'/');
    emit(out, &fields_of(&meta, &name, EntryType::Directory, 0, b""))
}

/// Stores the link itself, whatever it points to (outside the config dir, nowhere, or to a
/// target that is not UTF-8), as Home Assistant's writer does.
fn write_symlink(
    out: &mut impl Write,
    tree: &Tree,
    entry: &WalkEntry,
) -> Result<u64, ArchiveError> {
    let (link, meta) = match entry_meta(tree, entry) {
        Ok((link, m)) if m.file_type().is_symlink() => (link, m),
        Ok(_) => return Ok(changed(entry, "a symlink")),
        Err(e) if gone(&e) => return Ok(vanished(entry)),
        Err(e) if through_link(&e) => return Ok(changed(entry, "a symlink")),
        Err(e) => return Err(ArchiveError::io(&entry.full, e)),
    };
    let target = beneath::read_link(&link).at(&entry.full)?;
    emit(
        out,
        &fields_of(&meta, &arcname(entry), EntryType::Symlink, 0, &target),
    )
}

/// A member's header as the entry's metadata describes it (mode, mtime, owner).
fn fields_of<'a>(
    meta: &fs::Metadata,
    name: &'a [u8],
    entry_type: EntryType,
    size: u64,
    link_name: &'a [u8],
) -> HeaderFields<'a> {
    HeaderFields {
        name,
        entry_type,
        size,
        mode: meta.mode(),
        mtime: meta.mtime(),
        uid: u64::from(meta.uid()),
        gid: u64::from(meta.gid()),
        link_name,
    }
}

fn emit(out: &mut impl Write, fields: &HeaderFields<'_>) -> Result<u64, ArchiveError> {
    let header = tar_header::encode(fields);
    out.write_all(&header)
        .map_err(|e| write_error(e, fields.name))?;
    Ok(header.len() as u64)
}

fn vanished(entry: &WalkEntry) -> u64 {
    log::warn!(target: "habackup.archive", "{} vanished while it was backed up; skipped", text::path(&entry.full));
    0
}

/// Skips an entry that is no longer what the walk found: replaced since by a symlink (a loop
/// included), a FIFO, a socket or a directory. Like a vanished file, never worth failing for.
fn changed(entry: &WalkEntry, was: &str) -> u64 {
    log::warn!(
        target: "habackup.archive",
        "{} is no longer {was} (it changed while it was backed up); skipped",
        text::path(&entry.full)
    );
    0
}

/// Stores a file at the size it has when opened: a live file that grows is cut there, one that
/// shrinks is padded with zeros, so the header never lies.
fn write_file(
    out: &mut impl TarSink,
    tree: &Tree,
    entry: &WalkEntry,
    reporter: &mut Reporter<'_>,
) -> Result<u64, ArchiveError> {
    // O_NOFOLLOW/O_NONBLOCK (and no symlink on the way): a path swapped for a symlink or a FIFO
    // since the walk is never followed or waited on.
    let file = tree.open_entry(
        &entry.relative,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
    );
    let mut file = match file {
        Ok(f) => f,
        Err(e) if gone(&e) => return Ok(vanished(entry)),
        // ELOOP: a symlink now (O_NOFOLLOW); ENXIO: a socket or a device without a driver.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENXIO)) => {
            return Ok(changed(entry, "a regular file"))
        }
        Err(e) => return Err(ArchiveError::io(&entry.full, e)),
    };
    let meta = file.metadata().at(&entry.full)?;
    if !meta.is_file() {
        return Ok(changed(entry, "a regular file"));
    }
    let size = meta.len();
    let name = arcname(entry);
    let header_len = emit(out, &fields_of(&meta, &name, EntryType::File, size, b""))?;
    let mut remaining = size;
    while remaining > 0 {
        let want = remaining.min(READ_MAX as u64) as usize;
        let n = match out
            .read_from(&mut file, want)
            .map_err(|e| write_error(e, &name))?
        {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ArchiveError::io(&entry.full, e)),
        };
        if n == 0 {
            log::warn!(
                target: "habackup.archive",
                "{} shrank while it was backed up; padded {remaining} bytes with zeros",
                text::path(&entry.full)
            );
            write_zeros(out, remaining, &name)?;
            reporter.add(remaining);
            break;
        }
        remaining -= n as u64;
        reporter.add(n as u64);
    }
    let padding = tar_header::padding_after(size);
    out.write_all(&[0u8; BLOCK][..padding])
        .map_err(|e| write_error(e, &name))?;
    Ok(header_len + size + padding as u64)
}

fn write_zeros(out: &mut impl Write, count: u64, name: &[u8]) -> Result<(), ArchiveError> {
    let buffer = vec![0u8; ZEROS];
    let mut left = count;
    while left > 0 {
        let n = left.min(buffer.len() as u64) as usize;
        out.write_all(&buffer[..n])
            .map_err(|e| write_error(e, name))?;
        left -= n as u64;
    }
    Ok(())
}

pub struct Reporter<'a> {
    callback: Option<ProgressFn<'a>>,
    done: u64,
    total: u64,
    last: Instant,
}

impl<'a> Reporter<'a> {
    pub fn new(callback: Option<ProgressFn<'a>>, total: u64) -> Self {
        Reporter {
            callback,
            done: 0,
            total,
            last: Instant::now(),
        }
    }

    fn add(&mut self, n: u64) {
        self.done += n;
        // Files can grow after the walk; never report more done than total.
        self.total = self.total.max(self.done);
        if let Some(cb) = self.callback {
            if self.last.elapsed() >= PROGRESS_INTERVAL {
                self.last = Instant::now();
                cb(self.done, self.total);
            }
        }
    }

    pub fn finish(&mut self) {
        if let Some(cb) = self.callback {
            cb(self.done, self.done);
        }
    }
}
