//! Full verification: decrypt, decompress and check every member as extract would, writing
//! nothing.

use std::collections::HashMap;
use std::path::Path;

use std::io::Read;

use super::policy::{shown, MemberBytes, Rel, Sink};
use super::tar_reader::Member;
use super::unpack::{unpack, unpack_stream, Unpacked};
use super::{ArchiveError, CancelToken};
use crate::common::text::quoted;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub members: u64,
    /// Bytes of file data in the inner archive.
    pub bytes: u64,
    pub protected: bool,
    pub securetar_version: Option<u8>,
    /// What restores but deserves a look: symlinks pointing outside the config dir.
    pub warnings: Vec<String>,
}

/// Checks everything a restore would rely on: the SecureTar MACs, FINAL tag and plaintext size
/// (v3) or length (v2), the gzip CRC and length, and every member against extract's own policy
/// (the same code, run against a sink that writes nothing).
pub fn verify_archive(
    path: &Path,
    password: Option<&str>,
    cancel: &CancelToken,
) -> Result<VerifyReport, ArchiveError> {
    let unpacked = unpack(path, password, NoSink { buffer: Vec::new() }, cancel)?;
    Ok(report(unpacked))
}

/// [`verify_archive`] for a backup read front to back from `reader` (a stored object, never
/// written to disk; `shown` names it in errors).
pub fn verify_stream<R: Read>(
    reader: R,
    shown: &Path,
    password: Option<&str>,
    cancel: &CancelToken,
) -> Result<VerifyReport, ArchiveError> {
    let unpacked = unpack_stream(
        reader,
        shown,
        password,
        NoSink { buffer: Vec::new() },
        cancel,
    )?;
    Ok(report(unpacked))
}

fn report(unpacked: Unpacked) -> VerifyReport {
    let outcome = unpacked.outcome;
    VerifyReport {
        members: outcome.members,
        bytes: outcome.summary.bytes,
        protected: unpacked.info.protected,
        securetar_version: unpacked.inner.securetar_version,
        warnings: links_leaving(&outcome.links),
    }
}

/// Reads file data to the end (so truncation is found) and writes nothing.
struct NoSink {
    buffer: Vec<u8>,
}

impl Sink for NoSink {
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
        data.drain(&mut self.buffer, |_| {})
    }

    fn hard_link(&mut self, _: &Rel, _: &Rel, _: bool) -> Result<(), ArchiveError> {
        Ok(())
    }

    fn symlink(&mut self, _: &Rel, _: &[u8], _: bool) -> Result<(), ArchiveError> {
        Ok(())
    }

    fn finish_dir(&mut self, _: &Rel, _: u32, _: i64) -> Result<(), ArchiveError> {
        Ok(())
    }
}

/// Symlinks whose target, followed through the archive's own links, leaves the config dir
/// (absolute targets included: they point wherever that path leads on the restoring machine).
pub fn links_leaving(links: &[(Vec<u8>, Vec<u8>)]) -> Vec<String> {
    let by_path: HashMap<&[u8], &[u8]> = links
        .iter()
        .map(|(rel, target)| (rel.as_slice(), target.as_slice()))
        .collect();
    links
        .iter()
        .filter(|(rel, target)| {
            let mut dir: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
            dir.pop();
            // A symlink loop never arrives anywhere, so it leaves nothing.
            let mut budget = 40;
            resolve(&by_path, dir, target, &mut budget) == Err(Leaves::Outside)
        })
        .map(|(rel, target)| {
            format!(
                "symlink {} points to {}, outside the config dir: it is restored as a link, and \
                 what it points to is not in the backup",
                shown(rel),
                quoted(target)
            )
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq)]
enum Leaves {
    Outside,
    Loop,
}

fn resolve<'a>(
    links: &HashMap<&[u8], &'a [u8]>,
    mut path: Vec<&'a [u8]>,
    target: &'a [u8],
    budget: &mut u32,
) -> Result<Vec<&'a [u8]>, Leaves> {
    if target.starts_with(b"/") {
        return Err(Leaves::Outside);
    }
    for part in target.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if path.pop().is_none() {
                    return Err(Leaves::Outside);
                }
            }
            name => {
                path.push(name);
                if let Some(next) = links.get(path.join(&b'/').as_slice()) {
                    if *budget == 0 {
                        return Err(Leaves::Loop);
                    }
                    *budget -= 1;
                    path.pop();
                    path = resolve(links, path, next, budget)?;
                }
            }
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaving(links: &[(&str, &str)]) -> Vec<String> {
        let links: Vec<(Vec<u8>, Vec<u8>)> = links
            .iter()
            .map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec()))
            .collect();
        links_leaving(&links)
            .into_iter()
            .map(|w| w.split('"').nth(1).unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn finds_links_that_leave_through_other_links() {
        assert_eq!(
            leaving(&[
                ("abs", "/etc/passwd"),
                ("inside", "sub/file"),
                ("sub/up", ".."),
                ("up", ".."),
                ("esc", "sub/up/../../outside"),
                ("chain", "esc"),
                ("loop1", "loop2"),
                ("loop2", "loop1"),
                ("dangling", "sub/missing/deeper"),
            ]),
            ["data/abs", "data/up", "data/esc", "data/chain"]
        );
    }
}
