//! Writes a Home Assistant backup: outer tar { backup.json, homeassistant.tar.gz { data/... } }.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::config_dir::{ha_version, read_instance_id};
use super::destination::Destination;
use super::gzip::{write_error, write_gzip, ChunkWriter, GzipOptions};
use super::metadata::{backup_extra, make_slug, render_backup_json, BackupInfo, NewBackupJson};
use crate::common::atomic::TempFile;
use crate::common::digest::sha256_hex;
use crate::common::text::{self, escape};
use crate::securetar::Encryptor;

use super::beneath::{self, Tree};
use super::encrypt_thread::{on_own_thread, CountingWriter, ThreadedError};
use super::tar_header::{self, EntryType, HeaderFields, BLOCK};
use super::walk::{walk, EntryKind, WalkEntry};
use super::{priority, ArchiveError, CancelToken, Excludes, IoContext};

const INNER_NAME: &[u8] = b"homeassistant.tar.gz";
const COPY_BUFFER: usize = 256 * 1024;
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Reports `(bytes_done, bytes_total)` of file data read from the config dir.
pub type ProgressFn<'a> = &'a (dyn Fn(u64, u64) + Sync);

pub struct CreateOptions {
    pub name: String,
    pub include_database: bool,
    /// `None`: Home Assistant's defaults. Custom patterns replace them.
    pub excludes: Option<Vec<String>>,
    /// `None`: the config dir's `.HA_VERSION`; a dir without one is refused (not a Home
    /// Assistant config dir).
    pub ha_version: Option<String>,
    pub extra: Map<String, Value>,
    pub compresslevel: u32,
    pub threads: usize,
    /// Run the engine's threads as background work (`SCHED_IDLE`), so an event loop sharing the
    /// cores keeps its timing.
    pub background: bool,
    /// Encrypts the inner archive with securetar when set.
    pub password: Option<String>,
    /// 3 (Argon2id + XChaCha20-Poly1305, Home Assistant's default) or 2 (AES-128-CBC).
    pub securetar_version: u8,
}

impl CreateOptions {
    pub fn new(name: impl Into<String>) -> Self {
        CreateOptions {
            name: name.into(),
            include_database: true,
            excludes: None,
            ha_version: None,
            extra: Map::new(),
            compresslevel: 6,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            background: true,
            password: None,
            securetar_version: 3,
        }
    }
}

/// Creates the backup of `config_dir` at `dest`: an existing directory, or a path ending in `/`
/// (created), gets `<slug>.tar`; any other path is the file to write, which must not exist. The
/// file appears atomically; on failure or cancellation nothing is left behind, not even the
/// directory created for it.
pub fn create_archive(
    config_dir: &Path,
    dest: &Path,
    options: &CreateOptions,
    cancel: &CancelToken,
    progress: Option<ProgressFn<'_>>,
) -> Result<BackupInfo, ArchiveError> {
    if options.background {
        // Threads inherit the scheduling policy, so the pipeline's threads are background too.
        priority::run_in_background(|| {
            create_in_this_thread(config_dir, dest, options, cancel, progress)
        })
    } else {
        create_in_this_thread(config_dir, dest, options, cancel, progress)
    }
}

fn create_in_this_thread(
    config_dir: &Path,
    dest: &Path,
    options: &CreateOptions,
    cancel: &CancelToken,
    progress: Option<ProgressFn<'_>>,
) -> Result<BackupInfo, ArchiveError> {
    if options.compresslevel > 9 {
        return Err(ArchiveError::InvalidArgument(format!(
            "compresslevel must be 0-9, not {}",
            options.compresslevel
        )));
    }
    if !(2..=3).contains(&options.securetar_version) {
        return Err(ArchiveError::InvalidArgument(format!(
            "securetar_version must be 2 or 3, not {}",
            options.securetar_version
        )));
    }
    if options.name.trim().is_empty() {
        return Err(ArchiveError::InvalidArgument(
            "a backup needs a name (Home Assistant shows it); the name is empty".into(),
        ));
    }
    // A restore of this dir that was killed half way is finished before it is backed up.
    super::restore::recover(config_dir)?;
    let ha_version = ha_version(config_dir, options.ha_version.as_deref())?;
    let excludes = match &options.excludes {
        Some(patterns) => Excludes::new(patterns, options.include_database)?,
        None => Excludes::defaults(options.include_database),
    };
    let listing = walk(config_dir, &excludes)?;
    for pattern in excludes.unmatched_custom() {
        log::warn!(
            target: "habackup.archive",
            "exclude pattern \"{}\" matched nothing in {}",
            escape(pattern),
            config_dir.display()
        );
    }
    let destination = Destination::prepare(dest)?;
    let tree = Tree::open(config_dir).at(config_dir)?;

    let now = chrono::Utc::now();
    let date = now.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
    let slug = make_slug(&date, &options.name);
    let extra = backup_extra(&read_instance_id(config_dir), &options.extra);
    let backup_json = render_backup_json(&NewBackupJson {
        date: &date,
        name: &options.name,
        slug: &slug,
        extra: &extra,
        exclude_database: !options.include_database,
        ha_version: &ha_version,
        protected: options.password.is_some(),
    });

    let dest = destination.file(&slug);
    let mut temp =
        TempFile::create_beside(&dest).map_err(|e| ArchiveError::write_failed(&dest, e, None))?;
    // Errors name the backup's own path: the temp file's name means nothing to the user.
    let temp_path = dest.clone();
    let mtime = now.timestamp();
    let size = write_outer(temp.file(), &temp_path, &backup_json, mtime, |out| {
        let gzip = GzipOptions {
            level: options.compresslevel,
            threads: options.threads,
        };
        let mut reporter = Reporter::new(progress, listing.file_bytes);
        let mut produce = |chunks: &mut ChunkWriter| {
            write_inner_tar(chunks, &tree, &listing.entries, cancel, &mut reporter)
        };
        let inner = match &options.password {
            None => {
                let summary = write_gzip(out, &temp_path, &gzip, cancel, produce)?;
                InnerWritten {
                    len: summary.compressed,
                    securetar_header: None,
                }
            }
            Some(password) => {
                // Encryption wraps the parallel gzip stream, so a protected backup compresses
                // exactly like an unprotected one.
                let encryptor = Encryptor::new(
                    CountingWriter::new(out),
                    password,
                    options.securetar_version,
                )
                .map_err(|e| encrypt_error(&temp_path, e))?;
                let (counted, header) = on_own_thread(encryptor, |sink| {
                    write_gzip(sink, &temp_path, &gzip, cancel, &mut produce).map(|_| ())
                })
                .map_err(|e| match e {
                    ThreadedError::Work(e) => e,
                    ThreadedError::Sink(e) => encrypt_error(&temp_path, e),
                })?;
                InnerWritten {
                    len: counted.count,
                    securetar_header: Some(header),
                }
            }
        };
        reporter.finish();
        Ok(inner)
    })?;
    cancel.check()?;
    let sha256 = sha256_of(temp.file(), &dest, cancel)?;
    temp.commit_new(&dest).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => ArchiveError::failed(
            &dest,
            "appeared while the backup was written; it was left as it is",
        ),
        _ => ArchiveError::io(&dest, e),
    })?;
    destination.keep();

    Ok(BackupInfo {
        slug,
        name: options.name.clone(),
        date,
        size,
        path: Some(dest),
        protected: options.password.is_some(),
        compressed: true,
        homeassistant_version: Some(ha_version),
        database_included: options.include_database,
        sha256: Some(sha256),
        extra,
        homeassistant_included: true,
        addons: Vec::new(),
        folders: Vec::new(),
    })
}

/// Writes the outer tar around the inner member that `inner` streams; returns the file size.
fn write_outer<F>(
    file: &mut File,
    path: &Path,
    backup_json: &[u8],
    mtime: i64,
    inner: F,
) -> Result<u64, ArchiveError>
where
    F: FnOnce(&mut BufWriter<&mut File>) -> Result<InnerWritten, ArchiveError>,
{
    let mut head = tar_header::encode(&member_header(
        b"./backup.json",
        backup_json.len() as u64,
        mtime,
    ));
    head.extend_from_slice(backup_json);
    tar_header::pad_to_block(&mut head);
    let inner_header_at = head.len() as u64;
    // The inner member's size is known only at the end: write a placeholder and patch it.
    head.extend_from_slice(&tar_header::encode(&member_header(INNER_NAME, 0, mtime)));

    let failed = |e| ArchiveError::write_failed(path, e, None);
    let mut out = BufWriter::with_capacity(1024 * 1024, &mut *file);
    out.write_all(&head).map_err(failed)?;
    let written = inner(&mut out)?;
    let inner_len = written.len;
    let padding = tar_header::padding_after(inner_len) as u64;
    let members_len = head.len() as u64 + inner_len + padding;
    let trailer = tar_header::trailer_len(members_len);
    out.write_all(&vec![0u8; (padding + trailer) as usize])
        .map_err(failed)?;
    out.flush().map_err(failed)?;
    drop(out);

    let header = tar_header::encode(&member_header(INNER_NAME, inner_len, mtime));
    file.seek(SeekFrom::Start(inner_header_at)).at(path)?;
    file.write_all(&header).map_err(failed)?;
    // securetar's header carries the plaintext size, also known only now.
    if let Some(securetar_header) = written.securetar_header {
        file.write_all(&securetar_header).map_err(failed)?;
    }
    Ok(members_len + trailer)
}

/// What the inner member's writer produced.
struct InnerWritten {
    len: u64,
    securetar_header: Option<Vec<u8>>,
}

fn encrypt_error(path: &Path, e: io::Error) -> ArchiveError {
    match e.kind() {
        io::ErrorKind::InvalidInput => ArchiveError::InvalidArgument(e.to_string()),
        _ => ArchiveError::write_failed(path, e, None),
    }
}

fn member_header(name: &[u8], size: u64, mtime: i64) -> HeaderFields<'_> {
    HeaderFields {
        name,
        entry_type: EntryType::File,
        size,
        mode: 0o644,
        mtime,
        uid: 0,
        gid: 0,
        link_name: b"",
    }
}

fn write_inner_tar(
    out: &mut ChunkWriter,
    tree: &Tree,
    entries: &[WalkEntry],
    cancel: &CancelToken,
    reporter: &mut Reporter<'_>,
) -> Result<(), ArchiveError> {
    let mut written = 0u64;
    let mut buffer = vec![0u8; COPY_BUFFER];
    for entry in entries {
        cancel.check()?;
        written += match entry.kind {
            EntryKind::Directory => write_directory(out, tree, entry)?,
            EntryKind::Symlink => write_symlink(out, tree, entry)?,
            EntryKind::File => write_file(out, tree, entry, &mut buffer, reporter)?,
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
    out: &mut ChunkWriter,
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
    emit(
        out,
        &HeaderFields {
            name: &name,
            entry_type: EntryType::Directory,
            size: 0,
            mode: meta.mode(),
            mtime: meta.mtime(),
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            link_name: b"",
        },
    )
}

/// Stores the link itself, whatever it points to (outside the config dir, nowhere, or to a
/// target that is not UTF-8), as Home Assistant's writer does.
fn write_symlink(
    out: &mut ChunkWriter,
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
        &HeaderFields {
            name: &arcname(entry),
            entry_type: EntryType::Symlink,
            size: 0,
            mode: meta.mode(),
            mtime: meta.mtime(),
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            link_name: &target,
        },
    )
}

fn emit(out: &mut ChunkWriter, fields: &HeaderFields<'_>) -> Result<u64, ArchiveError> {
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
    out: &mut ChunkWriter,
    tree: &Tree,
    entry: &WalkEntry,
    buffer: &mut [u8],
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
    let header_len = emit(
        out,
        &HeaderFields {
            name: &name,
            entry_type: EntryType::File,
            size,
            mode: meta.mode(),
            mtime: meta.mtime(),
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            link_name: b"",
        },
    )?;
    let mut remaining = size;
    while remaining > 0 {
        let want = remaining.min(buffer.len() as u64) as usize;
        let n = match file.read(&mut buffer[..want]) {
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
            write_zeros(out, remaining, buffer, &name)?;
            reporter.add(remaining);
            break;
        }
        out.write_all(&buffer[..n])
            .map_err(|e| write_error(e, &name))?;
        remaining -= n as u64;
        reporter.add(n as u64);
    }
    let padding = tar_header::padding_after(size);
    out.write_all(&[0u8; BLOCK][..padding])
        .map_err(|e| write_error(e, &name))?;
    Ok(header_len + size + padding as u64)
}

fn write_zeros(
    out: &mut ChunkWriter,
    count: u64,
    buffer: &mut [u8],
    name: &[u8],
) -> Result<(), ArchiveError> {
    buffer.fill(0);
    let mut left = count;
    while left > 0 {
        let n = left.min(buffer.len() as u64) as usize;
        out.write_all(&buffer[..n])
            .map_err(|e| write_error(e, name))?;
        left -= n as u64;
    }
    Ok(())
}

struct Reporter<'a> {
    callback: Option<ProgressFn<'a>>,
    done: u64,
    total: u64,
    last: Instant,
}

impl<'a> Reporter<'a> {
    fn new(callback: Option<ProgressFn<'a>>, total: u64) -> Self {
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

    fn finish(&mut self) {
        if let Some(cb) = self.callback {
            cb(self.done, self.done);
        }
    }
}

/// The outer header is patched after the data, so the digest is taken by reading the file back
/// (from the page cache) once it is complete.
fn sha256_of(file: &mut File, dest: &Path, cancel: &CancelToken) -> Result<String, ArchiveError> {
    file.seek(SeekFrom::Start(0)).at(dest)?;
    sha256_hex(file, cancel).at(dest)
}
