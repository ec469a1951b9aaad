//! Writes a Home Assistant backup: outer tar { backup.json, homeassistant.tar.gz { data/... } }.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use serde_json::{Map, Value};

use super::config_dir::{ha_version, read_instance_id};
use super::destination::Destination;
use super::gzip::{write_gzip, ChunkWriter, GzipOptions};
use super::metadata::{backup_extra, make_slug, render_backup_json, BackupInfo, NewBackupJson};
use crate::common::atomic::TempFile;
use crate::common::digest::sha256_hex;
use crate::common::text::escape;
use crate::common::writeback::Writeback;
use crate::securetar::Encryptor;

use super::beneath::Tree;
use super::encrypt_thread::{on_own_thread, CountingWriter, ThreadedError};
pub use super::inner_tar::ProgressFn;
use super::inner_tar::{write_inner_tar, Reporter};
use super::tar_header::{self, EntryType, HeaderFields};
use super::walk::walk;
use super::{priority, ArchiveError, CancelToken, Excludes, IoContext};

const INNER_NAME: &[u8] = b"homeassistant.tar.gz";

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
    /// Run the engine's threads as background work (`HABACKUP_PRIORITY`, see `priority`), so an
    /// event loop sharing the cores keeps its timing.
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
    F: FnOnce(&mut BufWriter<Writeback<'_>>) -> Result<InnerWritten, ArchiveError>,
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
    // Small: it gathers tar headers and securetar's blocks. The compressed chunks (up to about
    // 1 MiB each) are larger than it and go to the file without being copied into it first.
    let mut out = BufWriter::with_capacity(64 * 1024, Writeback::new(&mut *file, 0));
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

/// The outer header is patched after the data, so the digest is taken by reading the file back
/// (from the page cache) once it is complete. The fsync of the commit comes after it, alone:
/// run beside the digest it was faster, but two busy threads in kernel and SHA code at once
/// kept the event loop waiting (p99 lag 0.9 ms instead of 0.5 on the media-heavy set); the
/// writeback started while writing (`Writeback`) already left it little to do.
fn sha256_of(file: &mut File, dest: &Path, cancel: &CancelToken) -> Result<String, ArchiveError> {
    file.seek(SeekFrom::Start(0)).at(dest)?;
    sha256_hex(file, cancel).at(dest)
}
