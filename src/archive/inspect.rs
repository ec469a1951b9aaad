//! Looking inside backups without extracting them: the members of one (path, type, size,
//! mtime, mode, link), and what differs between two, each file's content compared by a sha256
//! taken as the archives stream. Both run the one pipeline and member policy that extract and
//! verify run (`unpack`, `policy`), against a sink that writes nothing and only takes notes: a
//! backup that lists is one that extracts.

use std::collections::BTreeMap;
use std::path::Path;
use std::thread;

use sha2::{Digest, Sha256};

use super::policy::{MemberBytes, Rel, Sink};
use super::tar_reader::{Kind, Member};
use super::unpack::unpack;
use super::{ArchiveError, CancelToken};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    File,
    Directory,
    Symlink,
    HardLink,
}

/// One member of a backup's config dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Inside the config dir, `/`-separated, raw bytes (names need not be UTF-8).
    pub path: Vec<u8>,
    pub kind: MemberKind,
    /// Bytes of content: a file's (a hard link's file's), 0 for the others.
    pub size: u64,
    /// Seconds since the epoch (may be negative).
    pub mtime: i64,
    /// Permission bits.
    pub mode: u32,
    /// A symlink's target as stored, or the path of the file a hard link names.
    pub link: Option<Vec<u8>>,
    /// The content's sha256, when it was asked for (files and hard links only).
    sha256: Option<[u8; 32]>,
}

/// What differs from backup A to backup B, each list by path.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ArchiveDiff {
    /// In B only.
    pub added: Vec<MemberInfo>,
    /// In A only.
    pub removed: Vec<MemberInfo>,
    /// In both, with another type, content (size or bytes) or link target: (A's, B's).
    pub changed: Vec<(MemberInfo, MemberInfo)>,
}

type Members = BTreeMap<Vec<u8>, MemberInfo>;

/// Notes every member the policy accepts; with `digest`, hashes each file's content.
struct Catalog<'a> {
    members: &'a mut Members,
    digest: bool,
    /// What the last `write_file` / `hard_link` saw, for the `accepted` that follows it.
    content: Option<[u8; 32]>,
    source: Option<Vec<u8>>,
    buffer: Vec<u8>,
}

impl Sink for Catalog<'_> {
    fn make_dir(&mut self, _: &Rel) -> Result<(), ArchiveError> {
        Ok(())
    }

    fn write_file(
        &mut self,
        _: &Rel,
        _: &Member,
        data: &mut MemberBytes<'_>,
        _: bool,
    ) -> Result<u64, ArchiveError> {
        let mut hasher = self.digest.then(Sha256::new);
        let read = data.drain(&mut self.buffer, |piece| {
            if let Some(hasher) = &mut hasher {
                hasher.update(piece);
            }
        })?;
        self.content = hasher.map(|h| h.finalize().into());
        Ok(read)
    }

    fn hard_link(&mut self, source: &Rel, _: &Rel, _: bool) -> Result<(), ArchiveError> {
        self.source = Some(source.to_vec());
        Ok(())
    }

    fn symlink(&mut self, _: &Rel, _: &[u8], _: bool) -> Result<(), ArchiveError> {
        Ok(())
    }

    fn finish_dir(&mut self, _: &Rel, _: u32, _: i64) -> Result<(), ArchiveError> {
        Ok(())
    }

    fn accepted(&mut self, rel: &Rel, member: &Member) {
        if rel.is_empty() {
            return;
        }
        let mut info = MemberInfo {
            path: rel.to_vec(),
            kind: MemberKind::Directory,
            size: 0,
            mtime: member.mtime,
            mode: member.mode,
            link: None,
            sha256: None,
        };
        match member.kind {
            Kind::File => {
                info.kind = MemberKind::File;
                info.size = member.size;
                info.sha256 = self.content.take();
            }
            Kind::Symlink => {
                info.kind = MemberKind::Symlink;
                info.link = Some(member.link.clone());
            }
            Kind::HardLink => {
                info.kind = MemberKind::HardLink;
                let source = self.source.take().unwrap_or_default();
                if let Some(file) = self.members.get(&source) {
                    info.size = file.size;
                    info.sha256 = file.sha256;
                }
                info.link = Some(source);
            }
            // The policy accepts no other kind.
            _ => {}
        }
        self.members.insert(info.path.clone(), info);
    }
}

fn catalog(
    path: &Path,
    password: Option<&str>,
    digest: bool,
    cancel: &CancelToken,
) -> Result<Members, ArchiveError> {
    let mut members = Members::new();
    let sink = Catalog {
        members: &mut members,
        digest,
        content: None,
        source: None,
        buffer: Vec::new(),
    };
    unpack(path, password, sink, cancel)?;
    Ok(members)
}

/// The members of the backup at `path` (its config dir, sorted by path), read through the whole
/// archive: a corrupt one is an error, as for verify.
pub fn list_members(
    path: &Path,
    password: Option<&str>,
    cancel: &CancelToken,
) -> Result<Vec<MemberInfo>, ArchiveError> {
    Ok(catalog(path, password, false, cancel)?
        .into_values()
        .collect())
}

/// What differs between the backups at `a` and `b` (both streamed at once, `password_a` and
/// `password_b` for protected ones): paths added, removed, and changed (another type, other
/// content, another link target). Modes and mtimes are not compared.
pub fn diff_archives(
    a: &Path,
    b: &Path,
    password_a: Option<&str>,
    password_b: Option<&str>,
    cancel: &CancelToken,
) -> Result<ArchiveDiff, ArchiveError> {
    let (before, after) = thread::scope(|scope| {
        let other = scope.spawn(|| catalog(b, password_b, true, cancel));
        let here = catalog(a, password_a, true, cancel);
        let there = other
            .join()
            .unwrap_or_else(|_| Err(ArchiveError::invalid(b, "the reader thread failed")));
        (here, there)
    });
    let (mut before, after) = (before?, after?);
    let mut diff = ArchiveDiff::default();
    for (path, new) in after {
        match before.remove(&path) {
            None => diff.added.push(new),
            Some(old) if differs(&old, &new) => diff.changed.push((old, new)),
            Some(_) => {}
        }
    }
    diff.removed = before.into_values().collect();
    Ok(diff)
}

fn differs(a: &MemberInfo, b: &MemberInfo) -> bool {
    let content = |m: &MemberInfo| matches!(m.kind, MemberKind::File | MemberKind::HardLink);
    match (content(a), content(b)) {
        (true, true) => a.size != b.size || a.sha256 != b.sha256,
        (false, false) => a.kind != b.kind || a.link != b.link,
        _ => true,
    }
}
