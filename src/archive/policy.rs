//! The one policy for a backup's members, shared by extract and verify: what may be restored,
//! decided from the archive alone, so a backup that verifies is a backup that extracts.
//!
//! Links follow Home Assistant (its writer stores symlinks as links, its restore recreates them):
//! a symlink is recreated as a link whatever it points to, but nothing is ever written through
//! one. Every path is modelled in memory; a member whose path runs through a symlink of the
//! archive (one met before it or after it) is refused, and symlinks are created only once every
//! other member is written, so the filesystem never holds a link while members are written.
//! Hard links must name a regular file extracted before them. Absolute paths, `..`, devices,
//! FIFOs and unknown member types are refused.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::tar_reader::{Kind, Member};
use super::ArchiveError;
use crate::common::text::quoted;

/// Longest name of one directory entry on Linux file systems.
const NAME_MAX: usize = 255;
/// Longest member path and symlink target accepted: what Linux takes (PATH_MAX less the NUL). No
/// file system can hold a longer one, so verify refuses it as extract would have to.
const MAX_PATH: usize = 4095;

/// `/`-separated path inside the config dir, raw bytes; empty for the config dir itself.
pub type Rel = [u8];

/// Where the policy's decisions are carried out: a directory on disk, or nowhere (verify).
/// Every call is already checked: parents exist and are real directories, nothing is a link.
pub trait Sink {
    /// Creates the directory `rel` (private to its owner until `finish_dir`).
    fn make_dir(&mut self, rel: &Rel) -> Result<(), ArchiveError>;
    /// Writes the regular file `rel` from `data`, `member.size` bytes; `replace`: a file
    /// written earlier has that name. Returns the bytes written.
    fn write_file(
        &mut self,
        rel: &Rel,
        member: &Member,
        data: &mut MemberBytes<'_>,
        replace: bool,
    ) -> Result<u64, ArchiveError>;
    /// Makes `rel` a hard link to the file `source`, extracted earlier.
    fn hard_link(&mut self, source: &Rel, rel: &Rel, replace: bool) -> Result<(), ArchiveError>;
    /// Creates the symlink `rel` -> `target` (never followed).
    fn symlink(&mut self, rel: &Rel, target: &[u8], replace: bool) -> Result<(), ArchiveError>;
    /// Gives the directory `rel` its stored mode and mtime (deepest first, after everything).
    fn finish_dir(&mut self, rel: &Rel, mode: u32, mtime: i64) -> Result<(), ArchiveError>;
    /// The member at `rel` passed the policy (after its own call above, in archive order; the
    /// config dir itself included, as an empty `rel`): for sinks that catalogue the archive.
    fn accepted(&mut self, rel: &Rel, member: &Member) {
        let _ = (rel, member);
    }
}

/// A member's data, for a sink: read errors already say what they mean for the backup.
pub struct MemberBytes<'a> {
    pub(crate) data: &'a mut dyn Read,
    pub(crate) archive: &'a Path,
}

impl MemberBytes<'_> {
    /// Like `Read::read`; a failure is the backup's (corrupt, truncated, unreadable).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, ArchiveError> {
        loop {
            match self.data.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(super::read::stream_error(self.archive, e)),
            }
        }
    }

    /// Reads the member to its end through `buffer` (so truncation is found), handing each
    /// piece to `each`; returns how many bytes it had. For sinks that look but never write.
    pub fn drain(
        &mut self,
        buffer: &mut Vec<u8>,
        mut each: impl FnMut(&[u8]),
    ) -> Result<u64, ArchiveError> {
        buffer.resize(256 * 1024, 0);
        let mut read = 0u64;
        loop {
            match self.read(buffer)? {
                0 => return Ok(read),
                n => {
                    each(&buffer[..n]);
                    read += n as u64;
                }
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct ExtractSummary {
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    pub bytes: u64,
}

/// What the policy saw once the archive is fully applied.
pub struct Outcome {
    pub summary: ExtractSummary,
    /// Members read (extension headers not counted).
    pub members: u64,
    /// Every symlink created, in archive order: (path inside the config dir, target).
    pub links: Vec<(Vec<u8>, Vec<u8>)>,
}

enum Node {
    /// `made_for`: the member whose path created it (itself, for a directory member).
    Dir {
        made_for: Vec<u8>,
        explicit: bool,
    },
    File,
    /// Created at the end; `over_file`: a file written earlier sits at this path until then.
    Symlink {
        target: Vec<u8>,
        order: usize,
        over_file: bool,
    },
}

pub struct Policy<'a, S> {
    archive: &'a Path,
    sink: S,
    nodes: HashMap<Vec<u8>, Node>,
    dir_meta: HashMap<Vec<u8>, (u32, i64)>,
    links_seen: usize,
    members: u64,
    summary: ExtractSummary,
}

impl<'a, S: Sink> Policy<'a, S> {
    pub fn new(archive: &'a Path, sink: S) -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(
            Vec::new(),
            Node::Dir {
                made_for: b"data".to_vec(),
                explicit: false,
            },
        );
        Policy {
            archive,
            sink,
            nodes,
            dir_meta: HashMap::new(),
            links_seen: 0,
            members: 0,
            summary: ExtractSummary::default(),
        }
    }

    fn refuse(&self, reason: String) -> ArchiveError {
        ArchiveError::invalid(self.archive, reason)
    }

    /// Applies one member; `data` is its content (read to the end for a regular file).
    pub fn member(&mut self, member: &Member, data: &mut dyn Read) -> Result<(), ArchiveError> {
        self.members += 1;
        let name = quoted(&member.name);
        let Some(rel) = self.relative(&member.name)? else {
            return Ok(());
        };
        let at = rel.clone();
        match member.kind {
            Kind::Directory => self.directory(rel, member),
            Kind::File => {
                let mut bytes = MemberBytes {
                    data,
                    archive: self.archive,
                };
                self.file(rel, member, &mut bytes)
            }
            Kind::Symlink => self.symlink(rel, member),
            Kind::HardLink => self.hard_link(rel, member),
            Kind::CharDevice | Kind::BlockDevice | Kind::Fifo => {
                Err(self.refuse(format!("member {name} is a device node or FIFO; refused")))
            }
            Kind::Sparse => Err(self.refuse(format!(
                "member {name} is a sparse file, which Home Assistant never writes; refused"
            ))),
            Kind::Other(byte) => Err(self.refuse(format!(
                "member {name} has an unsupported type (type byte 0x{byte:02x}); refused"
            ))),
        }?;
        self.sink.accepted(&at, member);
        Ok(())
    }

    /// Maps a member name to its path inside the config dir (empty for `data` itself), `None`
    /// for the Supervisor's harmless extras, and refuses everything else.
    fn relative(&self, name: &[u8]) -> Result<Option<Vec<u8>>, ArchiveError> {
        let shown = quoted(name);
        if name.starts_with(b"/") {
            return Err(self.refuse(format!("member {shown} has an absolute path; refused")));
        }
        let mut parts: Vec<&[u8]> = Vec::new();
        for part in name.split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => return Err(self.refuse(format!("member {shown} contains '..'; refused"))),
                p if p.contains(&0) => {
                    return Err(self.refuse(format!("member {shown} contains a NUL byte; refused")))
                }
                p if p.len() > NAME_MAX => {
                    return Err(self.refuse(format!(
                        "member {shown} has a name longer than {NAME_MAX} bytes, which no \
                         file system takes; refused"
                    )))
                }
                p => parts.push(p),
            }
        }
        if name.len() > MAX_PATH {
            return Err(self.refuse(format!(
                "member {shown} has a path longer than {MAX_PATH} bytes; refused"
            )));
        }
        match parts.split_first() {
            Some((&b"data", rest)) => Ok(Some(rest.join(&b'/'))),
            // The Supervisor's inner archive also holds its root and its own metadata file.
            None => Ok(None),
            Some((&b"homeassistant.json", [])) => Ok(None),
            _ => Err(self.refuse(format!("member {shown} is outside the data/ tree; refused"))),
        }
    }

    /// Makes sure every directory above `rel` exists as a real directory, creating the missing
    /// ones; refuses a path that runs through a symlink or a file of the archive.
    fn parents(&mut self, rel: &[u8], member: &Member) -> Result<(), ArchiveError> {
        let cuts: Vec<usize> = rel
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'/')
            .map(|(i, _)| i)
            .collect();
        for cut in cuts {
            let parent = &rel[..cut];
            match self.nodes.get(parent) {
                Some(Node::Dir { .. }) => {}
                Some(Node::Symlink { .. }) => {
                    return Err(self.through_link(&member.name, parent));
                }
                Some(Node::File) => {
                    return Err(self.refuse(format!(
                        "member {} needs {} as a directory, but the archive has a file there; \
                         refused",
                        quoted(&member.name),
                        shown(parent)
                    )))
                }
                None => {
                    self.sink.make_dir(parent)?;
                    self.nodes.insert(
                        parent.to_vec(),
                        Node::Dir {
                            made_for: member.name.clone(),
                            explicit: false,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    fn through_link(&self, member: &[u8], link: &[u8]) -> ArchiveError {
        self.refuse(format!(
            "member {} runs through the symlink {} of the archive; refused",
            quoted(member),
            shown(link)
        ))
    }

    fn directory(&mut self, rel: Vec<u8>, member: &Member) -> Result<(), ArchiveError> {
        self.parents(&rel, member)?;
        match self.nodes.get_mut(&rel) {
            Some(Node::Dir { explicit, .. }) => *explicit = true,
            Some(other) => {
                let what = if matches!(other, Node::File) {
                    "file"
                } else {
                    "symlink"
                };
                return Err(self.refuse(format!(
                    "{} is both a {what} and a directory in the archive; refused",
                    shown(&rel)
                )));
            }
            None => {
                self.sink.make_dir(&rel)?;
                self.nodes.insert(
                    rel.clone(),
                    Node::Dir {
                        made_for: member.name.clone(),
                        explicit: true,
                    },
                );
            }
        }
        self.dir_meta.insert(rel, (member.mode, member.mtime));
        self.summary.directories += 1;
        Ok(())
    }

    /// Checks that a file, hard link or symlink may take `rel`; returns whether a file written
    /// earlier is there (a later member of the same name replaces it, as tar does).
    fn claim(&mut self, rel: &[u8], member: &Member, what: &str) -> Result<bool, ArchiveError> {
        if rel.is_empty() {
            return Err(self.refuse(format!(
                "member {} is a {what} where the config dir should be; refused",
                quoted(&member.name)
            )));
        }
        self.parents(rel, member)?;
        match self.nodes.get(rel) {
            None => Ok(false),
            Some(Node::File) => Ok(true),
            // Not created yet: the later member simply wins.
            Some(Node::Symlink { over_file, .. }) => Ok(*over_file),
            Some(Node::Dir {
                made_for, explicit, ..
            }) => Err(if *explicit || what != "symlink" {
                self.refuse(format!(
                    "{} is both a directory and a {what} in the archive; refused",
                    shown(rel)
                ))
            } else {
                self.through_link(made_for, rel)
            }),
        }
    }

    fn file(
        &mut self,
        rel: Vec<u8>,
        member: &Member,
        data: &mut MemberBytes<'_>,
    ) -> Result<(), ArchiveError> {
        let replace = self.claim(&rel, member, "file")?;
        let written = self.sink.write_file(&rel, member, data, replace)?;
        self.nodes.insert(rel, Node::File);
        self.summary.files += 1;
        self.summary.bytes += written;
        Ok(())
    }

    fn symlink(&mut self, rel: Vec<u8>, member: &Member) -> Result<(), ArchiveError> {
        let name = quoted(&member.name);
        if member.link.is_empty() {
            return Err(self.refuse(format!("symlink {name} has an empty target; refused")));
        }
        if member.link.len() > MAX_PATH {
            return Err(self.refuse(format!(
                "symlink {name} has a target longer than {MAX_PATH} bytes; refused"
            )));
        }
        if member.link.contains(&0) {
            return Err(self.refuse(format!(
                "symlink {name} has a target with a NUL byte; refused"
            )));
        }
        let over_file = self.claim(&rel, member, "symlink")?;
        self.links_seen += 1;
        self.nodes.insert(
            rel,
            Node::Symlink {
                target: member.link.clone(),
                order: self.links_seen,
                over_file,
            },
        );
        Ok(())
    }

    fn hard_link(&mut self, rel: Vec<u8>, member: &Member) -> Result<(), ArchiveError> {
        let name = quoted(&member.name);
        let target = quoted(&member.link);
        let source = match self.relative(&member.link) {
            Ok(Some(source)) => source,
            _ => {
                return Err(self.refuse(format!(
                    "hard link {name} points to {target}, outside the config dir; refused"
                )))
            }
        };
        if source == rel {
            return Err(self.refuse(format!("hard link {name} points to itself; refused")));
        }
        if !matches!(self.nodes.get(&source), Some(Node::File)) {
            return Err(self.refuse(format!(
                "hard link {name} points to {target}, which is not a regular file extracted \
                 before it; refused"
            )));
        }
        let replace = self.claim(&rel, member, "hard link")?;
        self.sink.hard_link(&source, &rel, replace)?;
        self.nodes.insert(rel, Node::File);
        self.summary.files += 1;
        Ok(())
    }

    /// Creates the symlinks, then gives directories their modes and mtimes, deepest first (so
    /// creating what they hold does not change them again).
    pub fn finish(mut self) -> Result<Outcome, ArchiveError> {
        let mut links: Vec<(usize, Vec<u8>, Vec<u8>, bool)> = self
            .nodes
            .iter()
            .filter_map(|(rel, node)| match node {
                Node::Symlink {
                    target,
                    order,
                    over_file,
                } => Some((*order, rel.clone(), target.clone(), *over_file)),
                _ => None,
            })
            .collect();
        links.sort_by_key(|link| link.0);
        for (_, rel, target, over_file) in &links {
            self.sink.symlink(rel, target, *over_file)?;
            self.summary.symlinks += 1;
        }
        let mut dirs: Vec<(Vec<u8>, (u32, i64))> = self.dir_meta.drain().collect();
        dirs.sort_by(|a, b| depth(&b.0).cmp(&depth(&a.0)).then_with(|| a.0.cmp(&b.0)));
        for (rel, (mode, mtime)) in dirs {
            self.sink.finish_dir(&rel, mode, mtime)?;
        }
        Ok(Outcome {
            summary: self.summary,
            members: self.members,
            links: links
                .into_iter()
                .map(|(_, rel, target, _)| (rel, target))
                .collect(),
        })
    }
}

fn depth(rel: &[u8]) -> usize {
    if rel.is_empty() {
        0
    } else {
        1 + rel.iter().filter(|&&b| b == b'/').count()
    }
}

/// A path inside the config dir as the archive names it: `"data/..."`.
pub fn shown(rel: &[u8]) -> String {
    let mut name = b"data".to_vec();
    if !rel.is_empty() {
        name.push(b'/');
        name.extend_from_slice(rel);
    }
    quoted(&name)
}
