//! Extract's `include` patterns: only the members whose path, or a directory above it, matches
//! one of them are written (`www` is the whole folder, `www/*.png` its PNGs, `**/*.yaml` every
//! YAML file); the directories above them are made as needed, with their stored mode and mtime
//! when the archive has them. The filter sits between the member policy and the disk, so every
//! member still goes through the policy: a backup that extract refuses whole is refused in part
//! too, and nothing is ever written through a link.

use std::collections::HashSet;

use super::excludes::Pattern;
use super::policy::{ExtractSummary, MemberBytes, Rel, Sink};
use super::tar_reader::Member;
use super::ArchiveError;
use crate::common::text::quoted;

/// The compiled patterns, and which of them matched something.
#[derive(Debug)]
pub struct Include {
    patterns: Vec<Pattern>,
    matched: Vec<bool>,
}

impl Include {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, ArchiveError> {
        if patterns.is_empty() {
            return Err(ArchiveError::InvalidArgument(
                "include needs at least one pattern".into(),
            ));
        }
        let patterns = patterns
            .iter()
            .map(|p| Pattern::parse("include", p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Include {
            matched: vec![false; patterns.len()],
            patterns,
        })
    }

    /// Whether `rel` (a path inside the config dir) or a directory above it matches.
    fn wants(&mut self, rel: &Rel) -> bool {
        if rel.is_empty() {
            return false;
        }
        let text = String::from_utf8_lossy(rel);
        let cuts = text
            .match_indices('/')
            .map(|(at, _)| at)
            .chain([text.len()]);
        let prefixes: Vec<&str> = cuts.map(|at| &text[..at]).collect();
        let mut wanted = false;
        for (pattern, matched) in self.patterns.iter().zip(&mut self.matched) {
            if prefixes.iter().any(|p| pattern.matches(p)) {
                *matched = true;
                wanted = true;
            }
        }
        wanted
    }

    /// The patterns that matched nothing in the whole archive.
    pub fn unmatched(&self) -> Vec<&str> {
        self.patterns
            .iter()
            .zip(&self.matched)
            .filter(|(_, matched)| !**matched)
            .map(|(pattern, _)| pattern.as_str())
            .collect()
    }

    pub fn matched_any(&self) -> bool {
        self.matched.iter().any(|m| *m)
    }
}

/// A sink that passes on only what `include` wants, and counts what it passed on.
pub struct Filtered<'a, S> {
    inner: S,
    include: &'a mut Include,
    summary: &'a mut ExtractSummary,
    /// Directories made (the config dir itself from the start).
    made: HashSet<Vec<u8>>,
    /// Files written, for hard links to them.
    written: HashSet<Vec<u8>>,
}

impl<'a, S: Sink> Filtered<'a, S> {
    pub fn new(inner: S, include: &'a mut Include, summary: &'a mut ExtractSummary) -> Self {
        Filtered {
            inner,
            include,
            summary,
            made: HashSet::from([Vec::new()]),
            written: HashSet::new(),
        }
    }

    /// Makes the directories above `rel` that are not made yet, top down.
    fn parents(&mut self, rel: &Rel) -> Result<(), ArchiveError> {
        for (at, _) in rel.iter().enumerate().filter(|(_, &b)| b == b'/') {
            self.make(&rel[..at])?;
        }
        Ok(())
    }

    fn make(&mut self, dir: &Rel) -> Result<(), ArchiveError> {
        if !self.made.contains(dir) {
            self.inner.make_dir(dir)?;
            self.made.insert(dir.to_vec());
            self.summary.directories += 1;
        }
        Ok(())
    }
}

impl<S: Sink> Sink for Filtered<'_, S> {
    fn make_dir(&mut self, rel: &Rel) -> Result<(), ArchiveError> {
        if self.include.wants(rel) {
            self.parents(rel)?;
            self.make(rel)?;
        }
        Ok(())
    }

    fn write_file(
        &mut self,
        rel: &Rel,
        member: &Member,
        data: &mut MemberBytes<'_>,
        replace: bool,
    ) -> Result<u64, ArchiveError> {
        // Data left unread is read past by the tar reader: its checks still see every byte.
        if !self.include.wants(rel) {
            return Ok(0);
        }
        self.parents(rel)?;
        let written = self.inner.write_file(rel, member, data, replace)?;
        self.written.insert(rel.to_vec());
        self.summary.files += 1;
        self.summary.bytes += written;
        Ok(written)
    }

    fn hard_link(&mut self, source: &Rel, rel: &Rel, replace: bool) -> Result<(), ArchiveError> {
        if !self.include.wants(rel) {
            return Ok(());
        }
        if !self.written.contains(source) {
            log::warn!(
                target: "habackup.archive",
                "hard link {} not extracted: the file it links to, {}, is not included",
                quoted(rel),
                quoted(source)
            );
            return Ok(());
        }
        self.parents(rel)?;
        self.inner.hard_link(source, rel, replace)?;
        self.written.insert(rel.to_vec());
        self.summary.files += 1;
        Ok(())
    }

    fn symlink(&mut self, rel: &Rel, target: &[u8], replace: bool) -> Result<(), ArchiveError> {
        if !self.include.wants(rel) {
            return Ok(());
        }
        self.parents(rel)?;
        self.inner.symlink(rel, target, replace)?;
        self.summary.symlinks += 1;
        Ok(())
    }

    fn finish_dir(&mut self, rel: &Rel, mode: u32, mtime: i64) -> Result<(), ArchiveError> {
        if self.made.contains(rel) {
            self.inner.finish_dir(rel, mode, mtime)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_takes_what_it_matches_and_everything_below() {
        let mut include = Include::new(&["www", "custom_components/*/manifest.json"]).unwrap();
        assert!(include.wants(b"www"));
        assert!(include.wants(b"www/img/logo.png"));
        assert!(!include.wants(b"wwwx/logo.png"));
        assert!(!include.wants(b"custom_components/hacs"));
        assert!(include.wants(b"custom_components/hacs/manifest.json"));
        assert!(!include.wants(b""));
        assert!(include.matched_any());
        let mut yaml = Include::new(&["**/*.yaml", "nothing/here"]).unwrap();
        assert!(yaml.wants(b"configuration.yaml"));
        assert!(yaml.wants(b"packages/a/b.yaml"));
        assert!(!yaml.wants(b"packages/a/b.yml"));
        assert_eq!(yaml.unmatched(), ["nothing/here"]);
    }

    #[test]
    fn patterns_are_checked() {
        assert!(Include::new::<&str>(&[]).is_err());
        let err = Include::new(&["/etc/passwd"]).unwrap_err().to_string();
        assert!(err.contains("include pattern"), "{err}");
    }
}
