//! Safe extraction of a backup's config dir.
//!
//! Every member must live under `data/`; absolute paths, `..`, links that leave the tree, device
//! nodes and FIFOs are refused. Symlinks are created only after every file is written, so nothing is
//! ever written through a link from the archive. The tree is built in a temp dir beside `dest` and
//! renamed into place when complete.

use std::collections::HashSet;
use std::fs::{self, File, FileTimes};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, SystemTime};

use flate2::read::GzDecoder;

use super::read::{open_inner, Opened};
use super::{ArchiveError, CancelToken, IoContext};
use crate::common::atomic::TempDir;

const CHUNK: usize = 1024 * 1024;

#[derive(Debug, Default, Clone, Copy)]
pub struct ExtractSummary {
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    pub bytes: u64,
}

/// Extracts the config dir stored in the backup at `path` into `dest` (absent or empty).
pub fn extract_archive(
    path: &Path,
    dest: &Path,
    cancel: &CancelToken,
) -> Result<ExtractSummary, ArchiveError> {
    extract_protected_archive(path, dest, None, cancel)
}

/// `extract_archive` for a backup that may be password-protected.
pub fn extract_protected_archive(
    path: &Path,
    dest: &Path,
    password: Option<&str>,
    cancel: &CancelToken,
) -> Result<ExtractSummary, ArchiveError> {
    // Extraction (and the key derivation before it) must not stall the event loop: `priority`.
    super::priority::run_in_background(|| {
        check_destination(dest)?;
        // The password is checked before anything is written.
        let opened = open_inner(path, password)?;
        let temp = TempDir::create_beside(dest).at(dest)?;
        let summary = unpack_into(path, opened, temp.path(), cancel)?;
        cancel.check()?;
        temp.commit(dest).at(dest)?;
        Ok(summary)
    })
}

/// Fills the empty directory `root` with the config dir stored in the backup at `path`, whose
/// inner archive `opened` is (see `open_inner`), on the calling thread. On an error `root`
/// holds a partial tree: the caller owns it and removes it.
pub(crate) fn unpack_into(
    path: &Path,
    opened: Opened,
    root: &Path,
    cancel: &CancelToken,
) -> Result<ExtractSummary, ArchiveError> {
    let (_info, inner, raw) = opened;
    let gzipped = inner.gzipped;
    // securetar v1 padded every write, the gzip trailer's included: Home Assistant never reads
    // that trailer, so for v1 neither do we.
    let check_trailer = inner.securetar_version != Some(1);
    let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(4);
    let decoder_cancel = cancel.clone();
    // Decompression and file writes overlap: inflate on one thread, tar + disk on this one.
    let summary = thread::scope(|scope| {
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
        let mut reader = ChannelReader {
            rx,
            current: Vec::new(),
            pos: 0,
        };
        let result = Unpacker::new(path, root, cancel).run(&mut reader);
        // Drain to the end so the gzip CRC and length (and the decryptor's end) are checked even
        // after the tar's end marker.
        let drained = result.and_then(|summary| {
            if check_trailer {
                io::copy(&mut reader, &mut io::sink()).map_err(|e| corrupt(path, &e))?;
            }
            Ok(summary)
        });
        drop(reader);
        drained
    })?;
    Ok(summary)
}

fn check_destination(dest: &Path) -> Result<(), ArchiveError> {
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ArchiveError::io(dest, e)),
        Ok(meta) if meta.is_dir() => {
            let mut entries = fs::read_dir(dest).at(dest)?;
            if entries.next().is_some() {
                Err(ArchiveError::InvalidArgument(format!(
                    "destination {} is not empty",
                    dest.display()
                )))
            } else {
                Ok(())
            }
        }
        Ok(_) => Err(ArchiveError::InvalidArgument(format!(
            "destination {} exists and is not a directory",
            dest.display()
        ))),
    }
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
pub(crate) enum InnerStream<R: Read> {
    Gzip(Box<GzDecoder<R>>),
    Plain(R),
}

impl<R: Read> InnerStream<R> {
    pub(crate) fn new(raw: R, gzipped: bool) -> Self {
        if gzipped {
            InnerStream::Gzip(Box::new(GzDecoder::new(raw)))
        } else {
            InnerStream::Plain(raw)
        }
    }

    /// Reads whatever follows the gzip member, so a decryptor sees its own end.
    pub(crate) fn finish(self) -> io::Result<()> {
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

fn corrupt(path: &Path, e: &io::Error) -> ArchiveError {
    ArchiveError::invalid(
        path,
        format!("corrupt or truncated Home Assistant archive: {e}"),
    )
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

struct DeferredDir {
    path: PathBuf,
    mode: u32,
    mtime: u64,
}

struct DeferredLink {
    name: String,
    relative: String,
    target: String,
}

struct Unpacker<'a> {
    archive_path: &'a Path,
    root: &'a Path,
    cancel: &'a CancelToken,
    files: HashSet<String>,
    dirs: Vec<DeferredDir>,
    links: Vec<DeferredLink>,
    summary: ExtractSummary,
}

impl<'a> Unpacker<'a> {
    fn new(archive_path: &'a Path, root: &'a Path, cancel: &'a CancelToken) -> Self {
        Unpacker {
            archive_path,
            root,
            cancel,
            files: HashSet::new(),
            dirs: Vec::new(),
            links: Vec::new(),
            summary: ExtractSummary::default(),
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> ArchiveError {
        ArchiveError::invalid(self.archive_path, reason)
    }

    fn run(mut self, reader: &mut ChannelReader) -> Result<ExtractSummary, ArchiveError> {
        let mut archive = tar::Archive::new(reader);
        let entries = archive
            .entries()
            .map_err(|e| corrupt(self.archive_path, &e))?;
        for entry in entries {
            self.cancel.check()?;
            let mut entry = entry.map_err(|e| corrupt(self.archive_path, &e))?;
            self.unpack(&mut entry)?;
        }
        self.finish()
    }

    fn unpack<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ArchiveError> {
        let raw = entry.path_bytes().into_owned();
        let name =
            String::from_utf8(raw).map_err(|_| self.invalid("a member name is not UTF-8"))?;
        let Some(relative) = self.relative_path(&name)? else {
            return Ok(());
        };
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644) & 0o777;
        let mtime = header.mtime().unwrap_or(0);
        let kind = header.entry_type();
        let target = self.root.join(&relative);
        match kind {
            tar::EntryType::Directory => {
                if !relative.is_empty() {
                    self.make_dir(&target)?;
                }
                self.summary.directories += 1;
                self.dirs.push(DeferredDir {
                    path: target,
                    mode,
                    mtime,
                });
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if relative.is_empty() {
                    return Err(self.invalid(format!(
                        "member {name:?} is a file where the config dir should be"
                    )));
                }
                self.write_file(entry, &relative, &target, mode, mtime)?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .map(|l| String::from_utf8(l.into_owned()))
                    .transpose()
                    .map_err(|_| {
                        self.invalid(format!("symlink {name:?} has a target that is not UTF-8"))
                    })?
                    .unwrap_or_default();
                if relative.is_empty() {
                    return Err(self.invalid(format!(
                        "member {name:?} is a symlink where the config dir should be"
                    )));
                }
                self.links.push(DeferredLink {
                    name,
                    relative,
                    target: link,
                });
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .map(|l| String::from_utf8(l.into_owned()))
                    .transpose()
                    .map_err(|_| {
                        self.invalid(format!("hardlink {name:?} has a target that is not UTF-8"))
                    })?
                    .unwrap_or_default();
                let Some(source) = self.relative_path(&link)? else {
                    return Err(self.invalid(format!(
                        "hardlink {name:?} points outside the config dir: {link:?}"
                    )));
                };
                if !self.files.contains(&source) {
                    return Err(self.invalid(format!(
                        "hardlink {name:?} points to {link:?}, which is not a file extracted before it"
                    )));
                }
                self.prepare_parent(&target)?;
                self.remove_existing(&target)?;
                fs::hard_link(self.root.join(&source), &target).at(&target)?;
                self.files.insert(relative);
                self.summary.files += 1;
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                return Err(
                    self.invalid(format!("member {name:?} is a device node or FIFO; refused"))
                );
            }
            other => {
                return Err(
                    self.invalid(format!("member {name:?} has an unsupported type {other:?}"))
                );
            }
        }
        Ok(())
    }

    /// Maps a member name to its path inside the config dir (`Some("")` for `data` itself), `None`
    /// for the Supervisor's harmless extras, and refuses everything else.
    fn relative_path(&self, name: &str) -> Result<Option<String>, ArchiveError> {
        if name.starts_with('/') {
            return Err(self.invalid(format!("member {name:?} has an absolute path; refused")));
        }
        let mut parts = Vec::new();
        for part in name.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(self.invalid(format!("member {name:?} contains '..'; refused"))),
                p if p.contains('\0') => {
                    return Err(self.invalid(format!("member {name:?} contains NUL")))
                }
                p => parts.push(p),
            }
        }
        match parts.split_first() {
            Some((&"data", rest)) => Ok(Some(rest.join("/"))),
            // The Supervisor's inner archive also holds its root and its own metadata file.
            None => Ok(None),
            Some((&"homeassistant.json", [])) => Ok(None),
            _ => Err(self.invalid(format!(
                "member {name:?} is outside the data/ tree; refused"
            ))),
        }
    }

    /// A relative target is resolved from the link's directory and must stay inside the tree. The
    /// link itself must not sit below another link from the archive, and its target must not pass
    /// through one: either could lead the path anywhere, whatever order links are checked in.
    fn check_link(
        &self,
        link: &DeferredLink,
        all_links: &HashSet<&str>,
    ) -> Result<(), ArchiveError> {
        let (name, target) = (&link.name, &link.target);
        let escapes = || {
            self.invalid(format!(
                "symlink {name:?} points to {target:?}, outside the config dir; refused"
            ))
        };
        if target.is_empty() || target.starts_with('/') {
            return Err(escapes());
        }
        let mut resolved: Vec<&str> = link.relative.split('/').collect();
        resolved.pop();
        for depth in 1..=resolved.len() {
            if all_links.contains(resolved[..depth].join("/").as_str()) {
                return Err(self.invalid(format!(
                    "symlink {name:?} sits below another symlink; refused"
                )));
            }
        }
        let parts: Vec<&str> = target
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        for (i, part) in parts.iter().enumerate() {
            if *part == ".." {
                if resolved.pop().is_none() {
                    return Err(escapes());
                }
            } else {
                resolved.push(part);
                if i + 1 < parts.len() && all_links.contains(resolved.join("/").as_str()) {
                    return Err(self.invalid(format!(
                        "symlink {name:?} points through another symlink ({target:?}); refused"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Clears the way for a member that a later entry of the archive replaces.
    fn remove_existing(&self, target: &Path) -> Result<(), ArchiveError> {
        match fs::symlink_metadata(target) {
            Ok(m) if m.is_dir() => Err(self.invalid(format!(
                "{} is both a directory and a file or link in the archive; refused",
                self.display(target)
            ))),
            Ok(_) => fs::remove_file(target).at(target),
            Err(_) => Ok(()),
        }
    }

    /// A path inside the tree as the archive names it (`data/...`), not the temp dir.
    fn display(&self, target: &Path) -> String {
        match target.strip_prefix(self.root) {
            Ok(rel) => format!("data/{}", rel.display()),
            Err(_) => target.display().to_string(),
        }
    }

    fn make_dir(&self, target: &Path) -> Result<(), ArchiveError> {
        match fs::symlink_metadata(target) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(self.invalid(format!(
                "{} is both a file and a directory in the archive",
                target.display()
            ))),
            Err(_) => {
                fs::create_dir_all(target).at(target)?;
                fs::set_permissions(target, fs::Permissions::from_mode(0o700)).at(target)
            }
        }
    }

    fn prepare_parent(&self, target: &Path) -> Result<(), ArchiveError> {
        match target.parent() {
            Some(parent) if parent != self.root => self.make_dir(parent),
            _ => Ok(()),
        }
    }

    fn write_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        relative: &str,
        target: &Path,
        mode: u32,
        mtime: u64,
    ) -> Result<(), ArchiveError> {
        self.prepare_parent(target)?;
        self.remove_existing(target)?;
        let mut file = File::create(target).at(target)?;
        let copied = io::copy(entry, &mut file).map_err(|e| corrupt(self.archive_path, &e))?;
        file.flush().at(target)?;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .at(target)?;
        file.set_times(FileTimes::new().set_modified(epoch(mtime)))
            .at(target)?;
        self.files.insert(relative.to_string());
        self.summary.files += 1;
        self.summary.bytes += copied;
        Ok(())
    }

    fn finish(mut self) -> Result<ExtractSummary, ArchiveError> {
        let links = std::mem::take(&mut self.links);
        let all_links: HashSet<&str> = links.iter().map(|l| l.relative.as_str()).collect();
        for link in &links {
            self.check_link(link, &all_links)?;
        }
        // Every link is now known to sit in real directories and point inside the tree, so
        // creating them cannot write through one another.
        for link in &links {
            let target = self.root.join(&link.relative);
            self.prepare_parent(&target)?;
            self.remove_existing(&target)?;
            std::os::unix::fs::symlink(&link.target, &target).at(&target)?;
            self.files.remove(&link.relative);
            self.summary.symlinks += 1;
        }
        // Deepest first, so setting a parent's mtime is not undone by its children.
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.path.components().count()));
        for dir in dirs {
            let times = FileTimes::new().set_modified(epoch(dir.mtime));
            File::open(&dir.path)
                .and_then(|f| f.set_times(times))
                .at(&dir.path)?;
            fs::set_permissions(&dir.path, fs::Permissions::from_mode(dir.mode | 0o700))
                .at(&dir.path)?;
        }
        Ok(self.summary)
    }
}

fn epoch(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}
